"""Calibrates zkinfer's cost model (circuits/src/cost.rs) against measured proofs.

Called by scripts/calibrate.sh. For each configuration (a shared model compiled at some
activation width and visibility), runs compile, setup and prove as separate processes
(wall time from `prove`'s own report, peak RSS from /usr/bin/time), reads the cost
model's work terms and its prediction from circuit.json, then

  - fits prove seconds = t_polys * polys + t_commit * commit + t_extended * extended
    (committed polynomials, committed elements, extended-domain evaluations), and the peak
    MB of setup and of prove, each m0 + m_resident * resident + m_extended * extended_mb
    + m_fixed * fixed_mb,
    minimising the squared *relative* error (the target is a relative one);
  - saves the measurements (target/bench/calibrate/data.json; `--refit` fits them again
    without measuring);
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
    # Both linear arguments on the same models (the two-phase circuits prove through
    # halo2's layouter and have far fewer rows per weight), and circuits of the size
    # segments have (k 15 to 17).
    ("cnn_cifar", ["--linear", "dot"]),
    ("cnn_cifar", ["--linear", "freivalds"]),
    ("lenet5", ["--linear", "freivalds"]),
    ("attn_block", ["--linear", "freivalds"]),
    ("large/enc_tiny", []),
    ("large/resnet8_c16", ["--linear", "dot"]),
    ("large/resnet8_c16", ["--linear", "freivalds"]),
    ("large/resnet20_c16", ["--linear", "freivalds"]),
    ("large/bert_tiny_like", ["--linear", "freivalds"]),
]


def measure(name, flags):
    d = os.path.join(WORK, "calibrate", "_".join([name.replace("/", "_")] + [f.strip("-") for f in flags]))
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
    saved = os.path.join(WORK, "calibrate", "data.json")
    if sys.argv[1:] == ["--refit"]:
        data = json.load(open(saved))  # the last run's measurements, refitted
    else:
        data = [measure(name, flags) for name, flags in CONFIGS]
        json.dump(data, open(saved, "w"), indent=1)
    # Committed polynomials (hundreds), from the committed elements at 2^k rows (a file of
    # an older version has no `polys`).
    polys = lambda d: d["terms"].get("polys") or d["terms"]["commit"] * 1e6 / 2 ** d["k"] / 100
    time_terms = lambda d: [polys(d), d["terms"]["commit"], d["terms"]["extended"]]
    t = fit([time_terms(d) for d in data], [d["prove_s"] for d in data])
    mem = lambda x: [1.0, x["resident_mb"], x["extended_mb"], x["fixed_mb"]]
    ms = fit([mem(d["terms"]) for d in data], [d["setup_mb"] for d in data])
    mp = fit([mem(d["terms"]) for d in data], [d["prove_mb"] for d in data])
    apply = lambda c, x: sum(a * b for a, b in zip(c, mem(x)))
    print("fitted constants (paste into circuits/src/cost.rs):")
    print(f"  prove: t_polys {t[0]:.4e}, t_commit {t[1]:.4e}, t_extended {t[2]:.4e}")
    for name, c in (("setup", ms), ("prove", mp)):
        print(f"  {name} memory: m0 {c[0]:.4e}, m_resident {c[1]:.4e}, "
              f"m_extended {c[2]:.4e}, m_fixed {c[3]:.4e}")
    print()
    print("| configuration | k | prove s | predicted | error | refit error | "
          "setup MB | refit error | prove MB | refit error | peak: predicted | error |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    worst = [0.0] * 5
    for d in data:
        x = d["terms"]
        errors = [
            d["predicted"]["prove_s"] / d["prove_s"] - 1,
            sum(a * b for a, b in zip(t, time_terms(d))) / d["prove_s"] - 1,
            apply(ms, x) / d["setup_mb"] - 1,
            apply(mp, x) / d["prove_mb"] - 1,
            d["predicted"]["peak_mb"] / d["peak_mb"] - 1,
        ]
        worst = [max(w, abs(e)) for w, e in zip(worst, errors)]
        print(f"| {d['label']} | {d['k']} | {d['prove_s']:.2f} | {d['predicted']['prove_s']:.2f} | "
              f"{errors[0]:+.0%} | {errors[1]:+.0%} | {d['setup_mb']:.0f} | {errors[2]:+.0%} | "
              f"{d['prove_mb']:.0f} | {errors[3]:+.0%} | {d['predicted']['peak_mb']:.0f} | "
              f"{errors[4]:+.0%} |")
    print(f"\nworst error, compiled-in constants: prove {worst[0]:.0%}, peak memory {worst[4]:.0%}; "
          f"refitted: prove {worst[1]:.0%}, setup memory {worst[2]:.0%}, prove memory {worst[3]:.0%}")


if __name__ == "__main__":
    sys.exit(main())
