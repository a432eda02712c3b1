"""Exports scikit-learn classifiers as users export them (skl2onnx, zipmap off), trained
on scikit-learn's bundled handwritten digits (8x8 images scaled to [0, 1]), with the
files zkinfer reads: a calibration file (training images), one input and the held-out
test set with its labels and onnxruntime's outputs.

    python scripts/sklearn_export.py OUT_DIR
"""
import json
import os
import sys

import numpy as np
import onnxruntime as ort
from skl2onnx import to_onnx
from sklearn.datasets import load_digits
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

MODELS = {
    "mlp": lambda: MLPClassifier(hidden_layer_sizes=(32,), max_iter=400, random_state=0),
    "logistic": lambda: LogisticRegression(max_iter=500),
    "random_forest": lambda: RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0),
    "gradient_boosting": lambda: GradientBoostingClassifier(
        n_estimators=10, max_depth=3, random_state=0
    ),
}


def main(out):
    os.makedirs(out, exist_ok=True)
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(x, digits.target, test_size=450, random_state=0)
    rows = lambda a: [[float(v) for v in r] for r in a]
    with open(os.path.join(out, "calibration.json"), "w") as f:
        json.dump({"input_data": rows(xtr[:128])}, f)
    with open(os.path.join(out, "input.json"), "w") as f:
        json.dump({"input_data": rows(xte[:1])}, f)
    summary = {}
    for name, make in MODELS.items():
        model = make().fit(xtr, ytr)
        onx = to_onnx(model, xtr[:1], options={"zipmap": False}, target_opset={"": 17, "ai.onnx.ml": 1})
        path = os.path.join(out, f"{name}.onnx")
        with open(path, "wb") as f:
            f.write(onx.SerializeToString())
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        label, probabilities = sess.run(None, {sess.get_inputs()[0].name: xte})
        ops = sorted({f"{n.domain + '::' if n.domain else ''}{n.op_type}" for n in onx.graph.node})
        summary[name] = {
            "ops": ops,
            "accuracy": float((label == yte).mean()),
            "right": int((label == yte).sum()),
        }
        with open(os.path.join(out, f"{name}.test.json"), "w") as f:
            json.dump(
                {
                    "input_data": rows(xte),
                    "labels": [int(v) for v in yte],
                    "onnxruntime_labels": [int(v) for v in label],
                    "onnxruntime_probabilities": rows(probabilities),
                },
                f,
            )
    json.dump(summary, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main(sys.argv[1])
