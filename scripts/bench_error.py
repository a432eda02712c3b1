"""Output error only, zkinfer and EZKL side by side in one run, against onnxruntime.

Called by scripts/bench-error.sh. For each model: onnxruntime's float output on the model's
input file (neither tool's code); zkinfer's proven output (compile, setup --dev-srs, prove
with the given binary, at the default settings or with the flags in $COMPILE_ARGS); EZKL 23.0.5's output from its witness
after the same settings as scripts/bench.sh (gen_settings, calibrate_settings with target
"resources", compile_circuit, gen_witness: its proving does not change the output, so it
is not run). Prints a markdown table of the max absolute errors.
"""
import json
import os
import sys

import bench
import ezkl

sys.path.insert(0, os.path.dirname(bench.EZKL_RUN))
import ezkl_run  # noqa: E402


def zkinfer_output(name, binary):
    d = os.path.join(bench.WORK, name, "zkinfer-error")
    onnx = os.path.join(bench.MODELS, f"{name}.onnx")
    inp = os.path.join(bench.MODELS, f"{name}.input.json")
    proof = os.path.join(d, "proof.json")
    extra = os.environ.get("COMPILE_ARGS", "").split()
    bench.run([binary, "compile", onnx, "--calibration", inp, "--out", d] + extra)
    k = json.load(open(os.path.join(d, "circuit.json")))["plan"]["layout"]["k"]
    bench.run([binary, "setup", d, "--dev-srs"])
    bench.run([binary, "prove", d, "--input", inp, "--proof", proof, "--engine", "cpu"])
    return k, json.load(open(proof))["output"]["values"]


def ezkl_output(name):
    d = os.path.join(bench.WORK, name, "ezkl-error")
    os.makedirs(d, exist_ok=True)
    onnx = os.path.join(bench.MODELS, f"{name}.onnx")
    data = os.path.join(bench.MODELS, f"{name}.input.json")
    p = lambda n: os.path.join(d, n)  # noqa: E731
    logrows = bench.ezkl_logrows(name, d)
    ezkl_run.call(ezkl.compile_circuit, model=onnx, compiled_circuit=p("model.compiled"),
                  settings_path=p("settings.json"))
    ezkl_run.call(ezkl.gen_witness, data=data, model=p("model.compiled"), output=p("witness.json"))
    witness = json.load(open(p("witness.json")))
    return logrows, [float(v) for v in witness["pretty_elements"]["rescaled_outputs"][0]]


def main(binary, models):
    lines = [
        "| model | zkinfer k | zkinfer max abs error | EZKL logrows | EZKL max abs error | zkinfer / EZKL |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in models:
        ref = bench.reference(name)
        k, z = zkinfer_output(name, binary)
        logrows, e = ezkl_output(name)
        ze, ee = bench.max_error(z, ref), bench.max_error(e, ref)
        lines.append(f"| {name} | {k} | {ze:.5f} | {logrows} | {ee:.5f} | {ze / ee:.2f}x |")
        print(lines[-1], file=sys.stderr)
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
