#!/usr/bin/env python3
"""Proves a segmented zkinfer model on a Ray cluster, one Ray task per segment.

    python scripts/ray/prove_ray.py DIR --input INPUT.json --proof BUNDLE.json \
        [--address ADDR] [--zkinfer PATH]

The driver runs `zkinfer witness` once locally, then submits one task per segment
(num_cpus=1, memory = the manifest's predicted_mb). No shared file system is assumed:
the driver ray.put()s the manifest, the witness and the segment's own files
(circuit.json, pk, srs), and the task lays them out in a fresh temporary DIR and runs
`zkinfer prove TMPDIR --segment I --engine cpu`. The parts come back as text and the
driver runs `zkinfer bundle` on them. `zkinfer` must be installed on every node (the
same path as --zkinfer, or a bare name found on the nodes' PATH); see README.md.
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


@ray.remote
def prove_segment(zkinfer, index, seg_dir, manifest, witness, files):
    """Runs on a worker: rebuilds a one-segment DIR under a temp dir and proves it."""
    result = {"segment": index, "node": ray.get_runtime_context().get_node_id(),
              "host": socket.gethostname(), "proof": None, "error": None, "seconds": 0.0}
    with tempfile.TemporaryDirectory(prefix=f"zkinfer-seg{index}-") as tmp:
        model = Path(tmp, "model")
        (model / seg_dir).mkdir(parents=True)
        (model / "segments.json").write_bytes(manifest)
        for name, data in zip(files, ray.get(list(files.values()))):
            (model / seg_dir / name).write_bytes(data)
        Path(tmp, "witness.json").write_bytes(witness)
        proof = Path(tmp, "proof.json")
        cmd = [zkinfer, "prove", str(model), "--witness", str(Path(tmp, "witness.json")),
               "--segment", str(index), "--proof", str(proof), "--engine", "cpu"]
        start = time.monotonic()
        try:
            run = subprocess.run(cmd, capture_output=True, text=True)
        except OSError as e:
            result["error"] = f"cannot run {zkinfer!r} on {result['host']}: {e}"
            return result
        result["seconds"] = time.monotonic() - start
        if run.returncode != 0:
            result["error"] = f"zkinfer prove exited {run.returncode}:\n{run.stderr.strip()}"
        elif not proof.is_file():
            result["error"] = "zkinfer prove wrote no proof file"
        else:
            result["proof"] = proof.read_text()
    return result


def _run_local(cmd):
    try:
        run = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        raise DriverError(f"cannot run {cmd[0]!r}: {e}") from None
    if run.returncode != 0:
        raise DriverError(f"{' '.join(cmd[:2])} exited {run.returncode}:\n{run.stderr.strip()}")


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


def _check_memory(segments):
    """Refuses segments no node can hold: Ray would otherwise wait for them forever."""
    nodes = [n for n in ray.nodes() if n.get("Alive") and n["Resources"].get("CPU", 0) >= 1]
    if not nodes:
        raise DriverError("the Ray cluster has no alive node with a CPU")
    largest = max(nodes, key=lambda n: n["Resources"].get("memory", 0))
    cap = largest["Resources"].get("memory", 0)
    for i, seg in enumerate(segments):
        if _memory_bytes(seg) > cap:
            raise DriverError(
                f"segment {i} needs {seg['predicted_mb']:.0f} MB but the largest node "
                f"({largest['NodeManagerAddress']}, {largest['NodeID'][:8]}) offers "
                f"{cap / 1e6:.0f} MB of Ray memory")


def _short(result):
    return f"{result['host']}/{result['node'][:8]}"


def run(model_dir, input_path, proof_path, address="auto", zkinfer=None):
    """Proves DIR on the cluster at `address`, writes the bundle; returns per-segment results."""
    model_dir, proof_path = Path(model_dir).resolve(), Path(proof_path).resolve()
    zkinfer = zkinfer or os.environ.get("ZKINFER", "zkinfer")
    if os.sep in zkinfer:  # a path: make it absolute, workers do not share our cwd
        zkinfer = os.path.abspath(zkinfer)
    manifest_raw, segments = _load_manifest(model_dir)

    connected_here = not ray.is_initialized()
    if connected_here:
        _check_reachable(address)
        try:
            ray.init(address=address)
        except ConnectionError as e:
            raise DriverError(f"cannot connect to the Ray cluster at {address!r}: {e}") from None
    if __name__ != "__main__":  # imported (e.g. by cluster_test.py): ship our code by value
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        _check_memory(segments)
        with tempfile.TemporaryDirectory(prefix="zkinfer-ray-") as tmp:
            witness = Path(tmp, "witness.json")
            print(f"witness: zkinfer witness {model_dir} --input {input_path}", flush=True)
            _run_local([zkinfer, "witness", str(model_dir), "--input", str(input_path),
                        "--out", str(witness)])
            manifest_ref, witness_ref = ray.put(manifest_raw), ray.put(witness.read_bytes())

            pending, puts = {}, {}  # puts: sha256 -> ref, so equal files (e.g. srs) go once
            for i, seg in enumerate(segments):
                files = {}
                for name in SEGMENT_FILES:
                    data = (model_dir / seg["dir"] / name).read_bytes()
                    key = hashlib.sha256(data).digest()
                    if key not in puts:
                        puts[key] = ray.put(data)
                    files[name] = puts[key]
                task = prove_segment.options(num_cpus=1, memory=_memory_bytes(seg) or None,
                                             scheduling_strategy="SPREAD")
                ref = task.remote(zkinfer, i, seg["dir"], manifest_ref, witness_ref, files)
                pending[ref] = i
                print(f"segment {i}: submitted (k={seg.get('k')}, "
                      f"{seg.get('predicted_mb', 0):.0f} MB)", flush=True)

            results = {}
            while pending:
                [ref], _ = ray.wait(list(pending), num_returns=1)
                i = pending.pop(ref)
                try:
                    res = ray.get(ref)
                except ray.exceptions.RayError as e:
                    res = {"error": f"task failed: {e}"}
                if res["error"]:
                    for other in pending:
                        ray.cancel(other)
                    raise DriverError(f"segment {i} failed: {res['error']}")
                results[i] = res
                print(f"segment {i}: done on node {_short(res)} in {res['seconds']:.1f} s",
                      flush=True)

            parts = []
            for i in range(len(segments)):
                part = Path(tmp, f"part-{i}.json")
                part.write_text(results[i]["proof"])
                parts.append(str(part))
            proof_path.parent.mkdir(parents=True, exist_ok=True)
            _run_local([zkinfer, "bundle", str(model_dir), "--out", str(proof_path), *parts])
    finally:
        if connected_here:
            ray.shutdown()

    print(f"\n{'segment':>7}  {'node':<28} {'seconds':>8} {'pred s':>7} {'pred MB':>8}")
    for i, seg in enumerate(segments):
        r = results[i]
        print(f"{i:>7}  {_short(r):<28} {r['seconds']:>8.1f} "
              f"{seg.get('predicted_s', 0):>7.1f} {seg.get('predicted_mb', 0):>8.0f}")
    print(f"\nbundle: {proof_path} ({len(segments)} segments on "
          f"{len({r['node'] for r in results.values()})} nodes)")
    return [results[i] for i in range(len(segments))]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dir", help="segmented model directory (with segments.json)")
    p.add_argument("--input", required=True, help="input tensor JSON")
    p.add_argument("--proof", required=True, help="where to write the proof bundle")
    p.add_argument("--address", default="auto", help="Ray cluster address (default: auto)")
    p.add_argument("--zkinfer", help="zkinfer binary, the same on every node "
                   "(default: $ZKINFER, else zkinfer on PATH)")
    a = p.parse_args(argv)
    try:
        run(a.dir, a.input, a.proof, a.address, a.zkinfer)
    except DriverError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
