"""Calibrates zkinfer's cost model (circuits/src/cost.rs) against measured proofs.

Called by scripts/calibrate.sh. For each configuration (a shared model compiled at some
activation width and visibility), runs compile, setup and prove as separate processes
(wall time from `prove`'s own report, peak RSS from /usr/bin/time), reads the cost
model's work terms and its prediction from circuit.json, then

  - fits prove seconds = t0 + t_commit * commit + t_extended * extended, and
    peak MB = m0 + m_resident * resident + m_extended * extended_mb,
    minimising the squared *relative* error (the target is a relative one);
  - prints the fitted constants as Rust, and a table of every configuration with the
    measured figures, the compiled-in prediction and its error.
"""
import json
import os
import re
import sys

from bench import MODELS, WORK, ZKINFER, run

CONFIGS = [
    ("mlp_mnist", ["--bits", "8"]),
    ("lenet5", ["--bits", "10"]),
    ("mlp_tiny", []),
    ("mlp_mnist", []),
    ("mlp_wide", []),
    ("lenet5", []),
    ("cnn_cifar", []),
    ("attn_block", []),
    ("mlp_tiny", ["--bits", "14"]),
    ("lenet5", ["--bits", "14"]),
    ("mlp_mnist", ["--params", "hashed"]),
    ("lenet5", ["--params", "hashed", "--input", "hashed", "--output", "hashed"]),
]


def measure(name, flags):
    d = os.path.join(WORK, "calibrate", "_".join([name] + [f.strip("-") for f in flags]))
    inp = os.path.join(MODELS, f"{name}.input.json")
    run([ZKINFER, "compile", os.path.join(MODELS, f"{name}.onnx"), "--calibration", inp,
         "--out", d] + flags)
    plan = json.load(open(os.path.join(d, "circuit.json")))["plan"]
    _, _, rss_setup = run([ZKINFER, "setup", d, "--dev-srs"])
    out, _, rss_prove = run([ZKINFER, "prove", d, "--input", inp, "--proof",
                             os.path.join(d, "proof.json"), "--engine", "cpu"])
    prove = float(re.search(r"prove ([0-9.]+) s", out).group(1))
    label = f"{name} {' '.join(flags)}".strip()
    return {"label": label, "k": plan["layout"]["k"], "terms": plan["terms"],
            "predicted": plan["predicted"], "prove_s": prove,
            "peak_mb": max(rss_setup, rss_prove), "setup_mb": rss_setup, "prove_mb": rss_prove}


def fit(rows, ys):
    """Least squares of relative error: minimises sum(((x.c - y) / y)^2)."""
    n = len(rows[0])
    a = [[0.0] * n for _ in range(n)]
    b = [0.0] * n
    for x, y in zip(rows, ys):
        w = 1.0 / (y * y)
        for i in range(n):
            b[i] += w * x[i] * y
            for j in range(n):
                a[i][j] += w * x[i] * x[j]
    # Gaussian elimination with partial pivoting.
    for i in range(n):
        p = max(range(i, n), key=lambda r: abs(a[r][i]))
        a[i], a[p] = a[p], a[i]
        b[i], b[p] = b[p], b[i]
        for r in range(i + 1, n):
            f = a[r][i] / a[i][i]
            for c in range(i, n):
                a[r][c] -= f * a[i][c]
            b[r] -= f * b[i]
    c = [0.0] * n
    for i in reversed(range(n)):
        c[i] = (b[i] - sum(a[i][j] * c[j] for j in range(i + 1, n))) / a[i][i]
    return c


def main():
    data = [measure(name, flags) for name, flags in CONFIGS]
    t = fit([[1.0, d["terms"]["commit"], d["terms"]["extended"]] for d in data],
            [d["prove_s"] for d in data])
    m = fit([[1.0, d["terms"]["resident_mb"], d["terms"]["extended_mb"]] for d in data],
            [d["peak_mb"] for d in data])
    print("fitted constants (paste into circuits/src/cost.rs):")
    print(f"  prove: t0 {t[0]:.4e}, t_commit {t[1]:.4e}, t_extended {t[2]:.4e}")
    print(f"  memory: m0 {m[0]:.4e}, m_resident {m[1]:.4e}, m_extended {m[2]:.4e}")
    print()
    print("| configuration | k | prove s | predicted | error | refit error | "
          "peak MB (setup / prove) | predicted | error | refit error |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    worst = [0.0] * 4
    for d in data:
        x = d["terms"]
        errors = [
            d["predicted"]["prove_s"] / d["prove_s"] - 1,
            (t[0] + t[1] * x["commit"] + t[2] * x["extended"]) / d["prove_s"] - 1,
            d["predicted"]["peak_mb"] / d["peak_mb"] - 1,
            (m[0] + m[1] * x["resident_mb"] + m[2] * x["extended_mb"]) / d["peak_mb"] - 1,
        ]
        worst = [max(w, abs(e)) for w, e in zip(worst, errors)]
        print(f"| {d['label']} | {d['k']} | {d['prove_s']:.2f} | {d['predicted']['prove_s']:.2f} | "
              f"{errors[0]:+.0%} | {errors[1]:+.0%} | {d['peak_mb']:.0f} ({d['setup_mb']:.0f} / "
              f"{d['prove_mb']:.0f}) | {d['predicted']['peak_mb']:.0f} | {errors[2]:+.0%} | {errors[3]:+.0%} |")
    print(f"\nworst error, compiled-in constants: prove {worst[0]:.0%}, memory {worst[2]:.0%}; "
          f"refitted: prove {worst[1]:.0%}, memory {worst[3]:.0%}")


if __name__ == "__main__":
    sys.exit(main())
