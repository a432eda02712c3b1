"""Runs zkinfer and EZKL on each model and prints a markdown table.

Called by scripts/bench.sh (which builds zkinfer and provides EZKL). Each zkinfer stage
runs as its own process under /usr/bin/time (wall time and that process's peak RSS).
"""
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "..", "shared", "models")
EZKL_RUN = os.path.join(ROOT, "..", "shared", "bench", "ezkl_run.py")
ZKINFER = os.path.join(ROOT, "target", "release", "zkinfer")
WORK = os.path.join(ROOT, "target", "bench")


def run(cmd):
    """Runs cmd; returns (stdout, wall seconds, peak RSS MB of that process)."""
    rss_file = os.path.join(WORK, "rss.txt")
    os.makedirs(WORK, exist_ok=True)
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-o", rss_file, "-f", "%M"] + cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p.stdout, dt, int(open(rss_file).read().split()[-1]) / 1024


def reference(name):
    """The float model's output on the model's input, from onnxruntime (neither tool's code)."""
    import numpy as np
    import onnxruntime as ort
    sess = ort.InferenceSession(os.path.join(MODELS, f"{name}.onnx"), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    data = json.load(open(os.path.join(MODELS, f"{name}.input.json")))["input_data"][0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    out = sess.run(None, {inp.name: np.array(data, dtype=np.float32).reshape(shape)})[0]
    return [float(v) for v in out.reshape(-1)]


def max_error(values, ref):
    if len(values) != len(ref):
        sys.exit(f"output has {len(values)} values, the float model {len(ref)}")
    return max(abs(a - b) for a, b in zip(values, ref))


def zkinfer(name):
    d = os.path.join(WORK, name, "zkinfer")
    onnx = os.path.join(MODELS, f"{name}.onnx")
    inp = os.path.join(MODELS, f"{name}.input.json")
    proof = os.path.join(d, "proof.json")
    out, t_compile, _ = run([ZKINFER, "compile", onnx, "--calibration", inp, "--out", d])
    plan = json.load(open(os.path.join(d, "circuit.json")))["plan"]
    _, t_setup, rss_setup = run([ZKINFER, "setup", d, "--dev-srs"])
    out, t_prove, rss_prove = run([ZKINFER, "prove", d, "--input", inp, "--proof", proof, "--engine", "cpu"])
    prove_only = float(re.search(r"prove ([0-9.]+) s", out).group(1))
    _, t_verify, _ = run([ZKINFER, "verify", d, "--proof", proof])
    p = json.load(open(proof))
    rows = max(plan[f] for f in ("linear_rows", "elementwise_rows", "table_rows", "hash_rows",
                                 "pack_rows", "instance_rows"))
    return {
        "rows": rows, "k": plan["layout"]["k"],
        "columns": f"{plan['advice_columns']}a/{plan['fixed_columns']}f/{plan['lookups']}l",
        "compile": t_compile, "setup": t_setup, "prove": t_prove, "prove_core": prove_only,
        "verify": t_verify, "proof_bytes": len(bytes.fromhex(p["proof"][2:])),
        "peak_mb": max(rss_setup, rss_prove), "predicted": plan["predicted"],
        "output": p["output"]["values"],
    }


# EZKL needs memory roughly in proportion to 2^logrows (4.9 GB at 19 on this machine's
# lenet5); above this the script records EZKL's logrows and does not run its pipeline.
EZKL_MAX_LOGROWS = int(os.environ.get("EZKL_MAX_LOGROWS", "20"))


def ezkl_logrows(name, d):
    """The rows EZKL chooses for the model: gen_settings + calibrate, as ezkl_run.py does."""
    sys.path.insert(0, os.path.dirname(EZKL_RUN))
    import ezkl
    import ezkl_run
    onnx, data = os.path.join(MODELS, f"{name}.onnx"), os.path.join(MODELS, f"{name}.input.json")
    settings = os.path.join(d, "settings.json")
    args = ezkl.PyRunArgs()
    args.input_visibility, args.output_visibility, args.param_visibility = "private", "public", "fixed"
    ezkl_run.call(ezkl.gen_settings, model=onnx, output=settings, py_run_args=args)
    ezkl_run.call(ezkl.calibrate_settings, data=data, model=onnx, settings=settings, target="resources")
    return json.load(open(settings))["run_args"]["logrows"]


def ezkl(name):
    d = os.path.join(WORK, name, "ezkl")
    os.makedirs(d, exist_ok=True)
    logrows = ezkl_logrows(name, d)
    if logrows > EZKL_MAX_LOGROWS:
        return {"logrows": logrows, "skipped": True}
    out, _, _ = run([sys.executable, EZKL_RUN, os.path.join(MODELS, f"{name}.onnx"),
                     os.path.join(MODELS, f"{name}.input.json"), d])
    e = json.loads(out.strip().splitlines()[-1])
    witness = json.load(open(os.path.join(d, "witness.json")))
    e["output"] = [float(v) for v in witness["pretty_elements"]["rescaled_outputs"][0]]
    return e


def main(models):
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                         capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    lines = [
        f"Machine: {os.cpu_count()} cores ({cpu}); zkinfer commit {commit}; EZKL 23.0.5.",
        "",
        "| model | tool | rows | k | columns | setup s | prove s | verify s | proof B | peak MB | max abs error |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    predictions = [
        "",
        "Cost model (circuits/src/cost.rs): predicted at compile time vs measured.",
        "",
        "| model | k | prove s (create_proof) | predicted | error | peak MB | predicted | error |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in models:
        ref = reference(name)
        z = zkinfer(name)
        z_err = max_error(z["output"], ref)
        lines.append(
            f"| {name} | zkinfer | {z['rows']} | {z['k']} | {z['columns']} | {z['setup']:.2f} | "
            f"{z['prove']:.2f} ({z['prove_core']:.2f} proving) | {z['verify']:.3f} | {z['proof_bytes']} | "
            f"{z['peak_mb']:.0f} | {z_err:.5f} |")
        pt, pm = z["predicted"]["prove_s"], z["predicted"]["peak_mb"]
        predictions.append(
            f"| {name} | {z['k']} | {z['prove_core']:.2f} | {pt:.2f} | {pt / z['prove_core'] - 1:+.0%} | "
            f"{z['peak_mb']:.0f} | {pm:.0f} | {pm / z['peak_mb'] - 1:+.0%} |")
        e = ezkl(name)
        if e.get("skipped"):
            lines.append(
                f"| {name} | EZKL | – | {e['logrows']} | – | not run: k {e['logrows']} > "
                f"{EZKL_MAX_LOGROWS} (EZKL_MAX_LOGROWS) | | | | | |")
            continue
        s = e["seconds"]
        e_err = max_error(e["output"], ref)
        lines.append(
            f"| {name} | EZKL | – | {e['logrows']} | – | {s['setup']:.2f} (+{s['gen_srs']:.2f} srs) | "
            f"{s['prove']:.2f} | {s['verify']:.3f} | {e['proof_bytes']} | {e['peak_rss_mb']} (whole pipeline) | "
            f"{e_err:.5f} |")
        lines.append(
            f"| {name} | EZKL / zkinfer | | | | {s['setup'] / z['setup']:.1f}x | {s['prove'] / z['prove']:.1f}x | "
            f"{s['verify'] / z['verify']:.1f}x | | {e['peak_rss_mb'] / z['peak_mb']:.1f}x | "
            f"{e_err / z_err if z_err else float('inf'):.1f}x |")
    table = "\n".join(lines + predictions)
    os.makedirs(WORK, exist_ok=True)
    open(os.path.join(WORK, "results.md"), "w").write(table + "\n")
    print(table)


if __name__ == "__main__":
    main(sys.argv[1:])
