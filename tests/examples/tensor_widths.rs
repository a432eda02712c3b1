//! Widths per tensor against the model's widths alone, on inputs the calibration did not
//! see:
//!
//!   cargo run --release -p zkinfer-tests --example tensor_widths -- MODEL...
//!
//! MODEL is a path under `../shared/models` without `.onnx` (`large/resnet8_c16`,
//! `real/digits_mlp`). Each is compiled with the default settings on a calibration set:
//! the digits MLP on its calibration file (128 training images), the others on 32
//! samples drawn around their one input sample (`0.85·x + 0.1·max(|x|, 0.1)·u`, `u`
//! uniform in [−1, 1), seeded), once with `--no-per-tensor` (the model-wide widths
//! alone) and once by default (with widths per tensor). Both are compared on those
//! samples and on held-out inputs: the 450 digits test images, or 16 more samples
//! drawn as above from another seed. Prints the compile times, the widths per
//! tensor tried and taken, each narrowed range tried and how it did, and both
//! fidelities on both sets.

// A tool: a panic is a bug report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use zkinfer_compiler::{fidelity, import_onnx, parse_input_json};
use zkinfer_pipeline::{compile, CompileOptions, Widened};
use zkinfer_tests::shared_models;

/// `n` samples around `x`, from `seed` (xorshift).
fn around(x: &[f32], n: usize, mut seed: u64) -> Vec<Vec<f32>> {
    let mut uniform = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % 2000) as f32 / 1000.0 - 1.0
    };
    (0..n)
        .map(|_| {
            x.iter()
                .map(|&v| 0.85 * v + 0.1 * v.abs().max(0.1) * uniform())
                .collect()
        })
        .collect()
}

fn numbers(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn main() {
    for name in std::env::args().skip(1) {
        let path = shared_models().join(format!("{name}.onnx"));
        let graph = import_onnx(&path).unwrap().graph;
        let shapes: Vec<Vec<usize>> = graph.inputs.iter().map(|p| p.shape.clone()).collect();
        let (calibration, held_out) = if name.ends_with("digits_mlp") {
            let test = std::fs::read_to_string(path.with_file_name("digits_test.json")).unwrap();
            let test: serde_json::Value = serde_json::from_str(&test).unwrap();
            let images = test["input_data"]
                .as_array()
                .unwrap()
                .iter()
                .map(numbers)
                .collect();
            (
                std::fs::read_to_string(path.with_extension("calibration.json")).unwrap(),
                images,
            )
        } else {
            let text = std::fs::read_to_string(path.with_extension("input.json")).unwrap();
            let x = parse_input_json(&text, &shapes).unwrap().samples.remove(0);
            (
                serde_json::json!({ "input_data": around(&x, 32, 999) }).to_string(),
                around(&x, 16, 12345),
            )
        };
        let samples = parse_input_json(&calibration, &shapes).unwrap().samples;
        let timed = |per_tensor| {
            let options = CompileOptions {
                per_tensor,
                ..CompileOptions::default()
            };
            let start = std::time::Instant::now();
            let c = compile(&path, &calibration, &options).unwrap();
            (c, start.elapsed().as_secs_f64())
        };
        let (wide, wide_s) = timed(false);
        let (c, seconds) = timed(true);
        let base = &wide.circuits[0].model;
        let chosen = &c.circuits[0].model;
        let per_tensor: Vec<String> = c
            .widths
            .iter()
            .filter(|w| w.taken && w.widened != Widened::Model)
            .map(|w| match &w.widened {
                Widened::Functions(t) => format!("{t}: function inputs {}", w.table_bits),
                Widened::Weights(t) => format!("{t}: weights {}", w.weight_bits),
                Widened::Range(t) => format!("{t}: range narrowed by {} bits", w.narrowed),
                Widened::Model => unreachable!(),
            })
            .collect();
        let count = |f: fn(&Widened) -> bool| c.widths.iter().filter(|w| f(&w.widened)).count();
        println!(
            "{name}: {} calibration samples, compiled in {wide_s:.1} s (--no-per-tensor), \
             {seconds:.1} s; {} widths per tensor tried ({} of them narrowed ranges), \
             taken: {per_tensor:?}",
            samples.len(),
            count(|w| *w != Widened::Model),
            count(|w| matches!(w, Widened::Range(_))),
        );
        // Each narrowed range tried: what it would cost, and how it did on the first half
        // of the calibration samples where it costs no more.
        for w in &c.widths {
            let Widened::Range(t) = &w.widened else {
                continue;
            };
            let outcome = match (&w.plan, &w.fidelity) {
                (Err(e), _) => format!("does not compile: {e}"),
                (Ok(cost), None) => format!(
                    "k {}, predicted prove {:.2} s: costs more",
                    cost.k, cost.prove_s
                ),
                (Ok(cost), Some(f)) => format!(
                    "k {}, predicted prove {:.2} s, first half: {f}",
                    cost.k, cost.prove_s
                ),
            };
            let taken = if w.taken { " <- taken" } else { "" };
            println!("  `{t}` narrowed by {}: {outcome}{taken}", w.narrowed);
        }
        for (set, data) in [("calibration", &samples), ("held out", &held_out)] {
            println!(
                "  {set:11}  model-wide: {}\n  {:11}  per tensor: {}",
                fidelity(&graph, base, data).unwrap(),
                "",
                fidelity(&graph, chosen, data).unwrap()
            );
        }
    }
}
