#!/usr/bin/env python3
"""Proves a segmented zkinfer model on a Ray cluster, one Ray task per segment, and with
--aggregate folds the proofs into one by a tree of aggregations, one task per node.

    python scripts/ray/prove_ray.py DIR --input INPUT.json --proof OUT.json \
        [--address ADDR] [--zkinfer PATH] \
        [--aggregate [--leaf N] [--arity A] [--k K] [--srs FILE | --dev-srs]]

The driver runs `zkinfer witness` once locally, then submits one task per segment
(num_cpus=1, memory = the manifest's predicted_mb). No shared file system is assumed:
the driver ray.put()s the manifest, the witness and the segment's own files
(circuit.json, pk, srs; every segment's vk too with --aggregate), and the task lays them out in a fresh
temporary DIR and runs `zkinfer prove TMPDIR --segment I --engine cpu` (with
--aggregate, `zkinfer fold TMPDIR --segment I`). The parts come back as text and the
driver runs `zkinfer bundle` on them.

With --aggregate, the tree (`zkinfer fold DIR --plan`) is submitted at once as a graph of
tasks: a node's task takes its parts' task results as arguments, so Ray starts it when
they are done and a tree level's nodes run side by side. A node's task lays out the
segments' verifying keys, its children's aggregation verifying keys and its parts' files,
makes the node's aggregation keys there (a proving key is gigabytes: making it on the
worker, ~1 minute, beats shipping it) and runs `zkinfer fold TMPDIR --node J`; it returns
its part file and its verifying key. The root's task writes the aggregated proof, which
`zkinfer fold` verifies; the driver writes it to OUT, the nodes' verifying keys to
DIR/aggregate/ (where `zkinfer verify` reads the root's), and checks it with `zkinfer
verify`. `zkinfer` must be installed on every node (the same path as --zkinfer, or a
bare name found on the nodes' PATH); see README.md.
"""

import argparse
import hashlib
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ray

SEGMENT_FILES = ("circuit.json", "pk", "srs")


class DriverError(Exception):
    pass


def _layout(model, manifest, files):
    """Writes the manifest and {relative path: bytes} under the model directory."""
    model.mkdir(parents=True)
    (model / "segments.json").write_bytes(manifest)
    for rel, data in files.items():
        path = model / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _run_task(result, cmd, out):
    """Runs zkinfer on a worker; fills result["proof"] with OUT's text, or the error."""
    start = time.monotonic()
    try:
        run = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        result["error"] = f"cannot run {cmd[0]!r} on {result['host']}: {e}"
        return False
    result["seconds"] = time.monotonic() - start
    if run.returncode != 0:
        said = (run.stderr.strip() + "\n" + run.stdout.strip()[-2000:]).strip()
        result["error"] = f"zkinfer {cmd[1]} exited {run.returncode}:\n{said}"
    elif not out.is_file():
        result["error"] = f"zkinfer {cmd[1]} wrote no {out.name}"
    else:
        result["proof"] = out.read_text()
        return True
    return False


def _result(what, index):
    return {what: index, "node": ray.get_runtime_context().get_node_id(),
            "host": socket.gethostname(), "proof": None, "error": None, "seconds": 0.0}


def _resolve(files):
    """{relative path: ref} -> {relative path: bytes}."""
    return dict(zip(files, ray.get(list(files.values()))))


@ray.remote
def prove_segment(zkinfer, index, manifest, witness, files, aggregate):
    """Runs on a worker: rebuilds a one-segment DIR under a temp dir and proves it (for
    aggregation: `zkinfer fold --segment`, a part file)."""
    result = _result("segment", index)
    with tempfile.TemporaryDirectory(prefix=f"zkinfer-seg{index}-") as tmp:
        model = Path(tmp, "model")
        _layout(model, manifest, _resolve(files))
        Path(tmp, "witness.json").write_bytes(witness)
        proof = Path(tmp, "proof.json")
        if aggregate:
            cmd = [zkinfer, "fold", str(model), "--segment", str(index),
                   "--witness", str(Path(tmp, "witness.json")), "--out", str(proof)]
        else:
            cmd = [zkinfer, "prove", str(model), "--witness", str(Path(tmp, "witness.json")),
                   "--segment", str(index), "--proof", str(proof), "--engine", "cpu"]
        _run_task(result, cmd, proof)
    return result


@ray.remote
def fold_node(zkinfer, index, root, manifest, files, fold_args, srs, *parts):
    """Runs on a worker once its parts' tasks are done: lays out the segments' verifying
    keys and the children's aggregation verifying keys, writes the parts' files, and runs
    `zkinfer fold --node`, which makes this node's keys there. Returns the node's part
    file (the aggregated proof, for the root) and its verifying key."""
    result = _result("fold", index)
    result["vk"] = None
    failed = [p for p in parts if p["error"]]
    if failed:
        result["error"] = "a part failed"
        return result
    with tempfile.TemporaryDirectory(prefix=f"zkinfer-node{index}-") as tmp:
        model = Path(tmp, "model")
        files = _resolve(files)
        for p in parts:
            if p.get("vk") is not None:
                files[f"aggregate/node-{p['fold']}/vk"] = p["vk"]
        _layout(model, manifest, files)
        cmd = [zkinfer, "fold", str(model), "--node", str(index)]
        for j, p in enumerate(parts):
            path = Path(tmp, f"part-{j}.json")
            path.write_text(p["proof"])
            cmd.append(str(path))
        if srs is not None:
            Path(tmp, "srs").write_bytes(srs)  # a top-level ref: Ray passed its bytes
            cmd += ["--srs", str(Path(tmp, "srs"))]
        out = Path(tmp, "out.json")
        if _run_task(result, cmd + ["--out", str(out)] + fold_args, out):
            vk = model / "aggregate" / ("vk" if root else f"node-{index}/vk")
            result["vk"] = vk.read_bytes()
    return result


def _run_local(cmd):
    try:
        run = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        raise DriverError(f"cannot run {cmd[0]!r}: {e}") from None
    if run.returncode != 0:
        said = (run.stderr.strip() + "\n" + run.stdout.strip()).strip()
        raise DriverError(f"{' '.join(cmd[:2])} exited {run.returncode}:\n{said}")
    return run.stdout


def _load_manifest(model_dir):
    path = model_dir / "segments.json"
    try:
        raw = path.read_bytes()
        manifest = json.loads(raw)
    except (OSError, ValueError) as e:
        raise DriverError(f"cannot read {path}: {e}") from None
    if manifest.get("format") != "zkinfer-segments" or not manifest.get("segments"):
        raise DriverError(f"{path} is not a zkinfer segments manifest")
    return raw, manifest["segments"]


def _check_reachable(address):
    """Fails fast on a dead HOST:PORT: ray.init() would retry for many minutes."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" and the like: Ray resolves (and reports) those itself
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as e:
        raise DriverError(f"no Ray cluster answers at {address}: {e}") from None


def _memory_bytes(seg):
    return math.ceil(float(seg.get("predicted_mb") or 0) * 1e6)


def _check_memory(segments, fold_mb=0):
    """Refuses tasks no node can hold: Ray would otherwise wait for them forever."""
    nodes = [n for n in ray.nodes() if n.get("Alive") and n["Resources"].get("CPU", 0) >= 1]
    if not nodes:
        raise DriverError("the Ray cluster has no alive node with a CPU")
    largest = max(nodes, key=lambda n: n["Resources"].get("memory", 0))
    cap = largest["Resources"].get("memory", 0)
    needs = [(f"segment {i}", _memory_bytes(seg), seg.get("predicted_mb", 0))
             for i, seg in enumerate(segments)]
    if fold_mb:
        needs.append(("an aggregation node", math.ceil(fold_mb * 1e6), fold_mb))
    for what, need, mb in needs:
        if need > cap:
            raise DriverError(
                f"{what} needs {mb:.0f} MB but the largest node "
                f"({largest['NodeManagerAddress']}, {largest['NodeID'][:8]}) offers "
                f"{cap / 1e6:.0f} MB of Ray memory")


def _plan(zkinfer, model_dir, fold_args):
    """The tree of aggregations: `zkinfer fold DIR --plan`."""
    cmd = [zkinfer, "fold", str(model_dir), "--plan", *fold_args]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        raise DriverError(f"cannot run {zkinfer!r}: {e}") from None
    if run.returncode != 0:
        raise DriverError(f"zkinfer fold --plan exited {run.returncode}:\n{run.stderr.strip()}")
    try:
        plan = json.loads(run.stdout)
    except ValueError as e:
        raise DriverError(f"zkinfer fold --plan printed no JSON plan: {e}") from None
    if plan.get("format") != "zkinfer-aggregate-plan" or not plan.get("nodes"):
        raise DriverError("zkinfer fold --plan printed no aggregation plan")
    return plan


def _short(result):
    return f"{result['host']}/{result['node'][:8]}"


class Puts:
    """ray.put()s files once each (equal contents, e.g. a shared srs, go once)."""

    def __init__(self):
        self.refs = {}

    def file(self, path):
        data = Path(path).read_bytes()
        key = hashlib.sha256(data).digest()
        if key not in self.refs:
            self.refs[key] = ray.put(data)
        return self.refs[key]


def _write_keys(model_dir, plan, folds):
    """Writes the nodes' verifying keys into DIR/aggregate/ (the root's as DIR/aggregate/vk,
    what `zkinfer verify` reads); a proving key beside a replaced verifying key is stale
    and removed (`zkinfer aggregate` would make it again)."""
    count = len(plan["nodes"])
    for j in range(count):
        rel = Path("aggregate") / ("vk" if j + 1 == count else f"node-{j}/vk")
        path = model_dir / rel
        vk = folds[j]["vk"]
        if path.is_file() and path.read_bytes() == vk:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(vk)
        stale = path.with_name("pk")
        if stale.is_file():
            stale.unlink()
            print(f"keys: removed {stale} (the proving key of the replaced {rel})", flush=True)


def run(model_dir, input_path, proof_path, address="auto", zkinfer=None, aggregate=None):
    """Proves DIR on the cluster at `address` and writes the bundle, or with `aggregate`
    (a dict of `leaf`, `arity`, `k`, `srs`, `dev_srs`) the aggregated proof; returns the
    segments' results, then the nodes'."""
    model_dir, proof_path = Path(model_dir).resolve(), Path(proof_path).resolve()
    zkinfer = zkinfer or os.environ.get("ZKINFER", "zkinfer")
    if os.sep in zkinfer:  # a path: make it absolute, workers do not share our cwd
        zkinfer = os.path.abspath(zkinfer)
    manifest_raw, segments = _load_manifest(model_dir)
    plan, fold_args = None, []
    if aggregate is not None:
        for flag in ("leaf", "arity", "k"):
            if aggregate.get(flag) is not None:
                fold_args += [f"--{flag}", str(aggregate[flag])]
        if aggregate.get("dev_srs"):
            fold_args.append("--dev-srs")
        plan = _plan(zkinfer, model_dir, fold_args + (
            ["--srs", str(Path(aggregate["srs"]).resolve())] if aggregate.get("srs") else []))

    connected_here = not ray.is_initialized()
    if connected_here:
        _check_reachable(address)
        try:
            ray.init(address=address)
        except ConnectionError as e:
            raise DriverError(f"cannot connect to the Ray cluster at {address!r}: {e}") from None
    if __name__ != "__main__":  # imported (e.g. by cluster_test.py): ship our code by value
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    results, folds = {}, {}
    try:
        _check_memory(segments, max(n["predicted_mb"] for n in plan["nodes"]) if plan else 0)
        with tempfile.TemporaryDirectory(prefix="zkinfer-ray-") as tmp:
            witness = Path(tmp, "witness.json")
            print(f"witness: zkinfer witness {model_dir} --input {input_path}", flush=True)
            _run_local([zkinfer, "witness", str(model_dir), "--input", str(input_path),
                        "--out", str(witness)])
            manifest_ref, witness_ref = ray.put(manifest_raw), ray.put(witness.read_bytes())

            puts = Puts()
            pending = {}  # ref -> ("segment" | "node", index)
            seg_refs = []
            # A part names the model by every segment's verifying key (small): with
            # --aggregate, each task gets them all.
            vks = {f"{seg['dir']}/vk": puts.file(model_dir / seg["dir"] / "vk")
                   for seg in segments} if plan else {}
            for i, seg in enumerate(segments):
                files = {f"{seg['dir']}/{name}": puts.file(model_dir / seg["dir"] / name)
                         for name in SEGMENT_FILES}
                files.update(vks)
                task = prove_segment.options(num_cpus=1, memory=_memory_bytes(seg) or None,
                                             scheduling_strategy="SPREAD")
                ref = task.remote(zkinfer, i, manifest_ref, witness_ref, files, plan is not None)
                pending[ref] = ("segment", i)
                seg_refs.append(ref)
                print(f"segment {i}: submitted (k={seg.get('k')}, "
                      f"{seg.get('predicted_mb', 0):.0f} MB)", flush=True)

            if plan:
                # Every node at once: a node's task waits (in Ray, not here) for its parts.
                srs = puts.file(aggregate["srs"]) if aggregate.get("srs") else None
                node_refs = []
                count = len(plan["nodes"])
                for node in plan["nodes"]:
                    j = node["node"]
                    parts = [seg_refs[p["segment"]] if "segment" in p else node_refs[p["node"]]
                             for p in node["parts"]]
                    task = fold_node.options(num_cpus=1,
                                             memory=math.ceil(node["predicted_mb"] * 1e6),
                                             scheduling_strategy="SPREAD")
                    ref = task.remote(zkinfer, j, j + 1 == count, manifest_ref, vks,
                                      fold_args, srs, *parts)
                    node_refs.append(ref)
                    pending[ref] = ("node", j)
                    said = ", ".join(f"{k} {v}" for p in node["parts"] for k, v in p.items())
                    print(f"node {j}: submitted ({said}; 2^{plan['k']} rows, "
                          f"{node['predicted_mb']:.0f} MB)", flush=True)

            while pending:
                [ref], _ = ray.wait(list(pending), num_returns=1)
                what, i = pending.pop(ref)
                try:
                    res = ray.get(ref)
                except ray.exceptions.RayError as e:
                    res = {"error": f"task failed: {e}"}
                if res["error"]:
                    for other in pending:
                        ray.cancel(other)
                    raise DriverError(f"{what} {i} failed: {res['error']}")
                (results if what == "segment" else folds)[i] = res
                print(f"{what} {i}: done on node {_short(res)} in {res['seconds']:.1f} s",
                      flush=True)

            proof_path.parent.mkdir(parents=True, exist_ok=True)
            if plan:
                proof_path.write_text(folds[len(plan["nodes"]) - 1]["proof"])
                _write_keys(model_dir, plan, folds)
                said = _run_local([zkinfer, "verify", str(model_dir), "--proof", str(proof_path)])
                print(f"verify: {said.splitlines()[0] if said else ''}", flush=True)
            else:
                parts = []
                for i in range(len(segments)):
                    part = Path(tmp, f"part-{i}.json")
                    part.write_text(results[i]["proof"])
                    parts.append(str(part))
                _run_local([zkinfer, "bundle", str(model_dir), "--out", str(proof_path),
                            *parts])
    finally:
        if connected_here:
            ray.shutdown()

    print(f"\n{'task':>9}  {'node':<28} {'seconds':>8} {'pred s':>7} {'pred MB':>8}")
    for i, seg in enumerate(segments):
        r = results[i]
        print(f"{'seg ' + str(i):>9}  {_short(r):<28} {r['seconds']:>8.1f} "
              f"{seg.get('predicted_s', 0):>7.1f} {seg.get('predicted_mb', 0):>8.0f}")
    for j in sorted(folds):
        r = folds[j]
        print(f"{'node ' + str(j):>9}  {_short(r):<28} {r['seconds']:>8.1f} {'':>7} "
              f"{plan['nodes'][j]['predicted_mb']:>8.0f}")
    done = [results[i] for i in range(len(segments))] + [folds[j] for j in sorted(folds)]
    what = (f"aggregated proof ({len(segments)} segments, {len(folds)} aggregation"
            f"{'s' if len(folds) != 1 else ''})" if plan else f"bundle ({len(segments)} segments)")
    print(f"\n{what}: {proof_path}, on {len({r['node'] for r in done})} nodes")
    return done


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dir", help="segmented model directory (with segments.json)")
    p.add_argument("--input", required=True, help="input tensor JSON")
    p.add_argument("--proof", required=True,
                   help="where to write the proof bundle (with --aggregate: the aggregated proof)")
    p.add_argument("--address", default="auto", help="Ray cluster address (default: auto)")
    p.add_argument("--zkinfer", help="zkinfer binary, the same on every node "
                   "(default: $ZKINFER, else zkinfer on PATH)")
    g = p.add_argument_group("aggregation (as `zkinfer aggregate`)")
    g.add_argument("--aggregate", action="store_true",
                   help="fold the segment proofs into one proof, node by node on the cluster")
    g.add_argument("--leaf", type=int, help="segments a leaf of the tree (default: one "
                   "node folds every segment)")
    g.add_argument("--arity", type=int, help="nodes a parent (default 2)")
    g.add_argument("--k", type=int, help="the aggregation circuits' 2^k rows (default 21)")
    srs = g.add_mutually_exclusive_group()
    srs.add_argument("--srs", help="the aggregation's SRS file (shipped to the nodes)")
    srs.add_argument("--dev-srs", action="store_true",
                     help="the deterministic, publicly known SRS (INSECURE)")
    a = p.parse_args(argv)
    aggregate = None
    if a.aggregate:
        aggregate = {"leaf": a.leaf, "arity": a.arity, "k": a.k, "srs": a.srs,
                     "dev_srs": a.dev_srs}
    elif any(v for v in (a.leaf, a.arity, a.k, a.srs, a.dev_srs)):
        p.error("--leaf, --arity, --k, --srs and --dev-srs go with --aggregate")
    try:
        run(a.dir, a.input, a.proof, a.address, a.zkinfer, aggregate)
    except DriverError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
