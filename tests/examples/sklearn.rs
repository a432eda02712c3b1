//! Evaluates scikit-learn classifiers exported with skl2onnx (`scripts/sklearn.sh` makes
//! them) on their held-out test set, through the integer interpreter that each circuit
//! is tested against: what a proof of each test image would state.
//!
//!   cargo run --release -p zkinfer-tests --example sklearn -- DIR MODEL...
//!
//! DIR holds `calibration.json` and, per model, `MODEL.onnx` and `MODEL.test.json`
//! (`input_data`, `labels`, and onnxruntime's `onnxruntime_labels` and
//! `onnxruntime_probabilities`). Prints one table row per model: k, the float model's
//! accuracy (onnxruntime), the proven one, the labels equal to onnxruntime's, and the
//! largest probability error.

// A tool: a panic is a bug report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

fn numbers(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, models) = args.split_first().expect("usage: sklearn DIR MODEL...");
    let dir = Path::new(dir);
    let calibration = std::fs::read_to_string(dir.join("calibration.json")).unwrap();
    println!("| model | k | float accuracy (onnxruntime) | proven accuracy | labels = onnxruntime | max |Δ probability| |");
    println!("|---|---:|---:|---:|---:|---:|");
    for name in models {
        let c = zkinfer_pipeline::compile(
            &dir.join(format!("{name}.onnx")),
            &calibration,
            &Default::default(),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let test: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{name}.test.json"))).unwrap(),
        )
        .unwrap();
        let labels = numbers(&test["labels"]);
        let ort_labels = numbers(&test["onnxruntime_labels"]);
        let ort_probabilities: Vec<Vec<f64>> = test["onnxruntime_probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(numbers)
            .collect();
        let samples = test["input_data"].as_array().unwrap();
        let (mut float_right, mut right, mut same, mut worst) = (0, 0, 0, 0f64);
        for (i, x) in samples.iter().enumerate() {
            let x: Vec<f32> = numbers(x).into_iter().map(|v| v as f32).collect();
            // Packed outputs: the label, then the probabilities.
            let out = zkinfer_compiler::run_quantized(&c.model, &x).unwrap();
            float_right += usize::from(ort_labels[i] == labels[i]);
            right += usize::from(out[0] == labels[i]);
            same += usize::from(out[0] == ort_labels[i]);
            for (a, b) in out[1..].iter().zip(&ort_probabilities[i]) {
                worst = worst.max((a - b).abs());
            }
        }
        let n = samples.len();
        let pct = |k: usize| format!("{k}/{n} ({:.2}%)", 100.0 * k as f64 / n as f64);
        let k = c
            .circuits
            .iter()
            .map(|c| c.plan.layout.k)
            .max()
            .unwrap_or(0);
        println!(
            "| {name} | {k} | {} | {} | {same}/{n} | {worst:.4} |",
            pct(float_right),
            pct(right)
        );
    }
}
