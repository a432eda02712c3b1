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


def zkinfer(name):
    d = os.path.join(WORK, name, "zkinfer")
    onnx = os.path.join(MODELS, f"{name}.onnx")
    inp = os.path.join(MODELS, f"{name}.input.json")
    proof = os.path.join(d, "proof.json")
    out, t_compile, _ = run([ZKINFER, "compile", onnx, "--calibration", inp, "--out", d])
    rows = int(re.search(r"rows\s+(\d+) used", out).group(1))
    k = int(re.search(r"\n  k\s+(\d+)", out).group(1))
    cols = re.search(r"columns\s+(\d+) advice, (\d+) fixed, (\d+) lookups", out).groups()
    err = float(re.search(r"max \|error\| ([0-9.e-]+)", out).group(1))
    _, t_setup, rss_setup = run([ZKINFER, "setup", d, "--dev-srs"])
    out, t_prove, rss_prove = run([ZKINFER, "prove", d, "--input", inp, "--proof", proof])
    prove_only = float(re.search(r"prove ([0-9.]+) s", out).group(1))
    _, t_verify, _ = run([ZKINFER, "verify", d, "--proof", proof])
    proof_bytes = len(bytes.fromhex(json.load(open(proof))["proof"][2:]))
    return {
        "rows": rows, "k": k, "columns": "{}a/{}f/{}l".format(*cols), "compile": t_compile,
        "setup": t_setup, "prove": t_prove, "prove_core": prove_only, "verify": t_verify,
        "proof_bytes": proof_bytes, "peak_mb": max(rss_setup, rss_prove), "max_err": err,
    }


def ezkl(name):
    d = os.path.join(WORK, name, "ezkl")
    os.makedirs(d, exist_ok=True)
    out, _, _ = run([sys.executable, EZKL_RUN, os.path.join(MODELS, f"{name}.onnx"),
                     os.path.join(MODELS, f"{name}.input.json"), d])
    return json.loads(out.strip().splitlines()[-1])


def main(models):
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                         capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    lines = [
        f"Machine: {os.cpu_count()} cores ({cpu}); zkinfer commit {commit}; EZKL 23.0.5.",
        "",
        "| model | tool | rows | k | columns | setup s | prove s | verify s | proof B | peak MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in models:
        z = zkinfer(name)
        e = ezkl(name)
        s = e["seconds"]
        lines.append(
            f"| {name} | zkinfer | {z['rows']} | {z['k']} | {z['columns']} | {z['setup']:.2f} | "
            f"{z['prove']:.2f} ({z['prove_core']:.2f} proving) | {z['verify']:.3f} | {z['proof_bytes']} | {z['peak_mb']:.0f} |")
        lines.append(
            f"| {name} | EZKL | – | {e['logrows']} | – | {s['setup']:.2f} (+{s['gen_srs']:.2f} srs) | "
            f"{s['prove']:.2f} | {s['verify']:.3f} | {e['proof_bytes']} | {e['peak_rss_mb']} (whole pipeline) |")
        lines.append(
            f"| {name} | EZKL / zkinfer | | | | {s['setup'] / z['setup']:.1f}x | {s['prove'] / z['prove']:.1f}x | "
            f"{s['verify'] / z['verify']:.1f}x | | |")
        print(f"{name}: zkinfer max |error| {z['max_err']}", file=sys.stderr)
    table = "\n".join(lines)
    os.makedirs(WORK, exist_ok=True)
    open(os.path.join(WORK, "results.md"), "w").write(table + "\n")
    print(table)


if __name__ == "__main__":
    main(sys.argv[1:])
