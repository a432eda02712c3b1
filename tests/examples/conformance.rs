//! Runs the `onnx` package's backend node tests (`onnx/backend/test/data/node/*`: a
//! model, its inputs and expected outputs) for every supported operator:
//!
//!   cargo run --release -p zkinfer-tests --example conformance -- NODE_DIR [FILTER]
//!
//! (`scripts/conformance.sh` installs the package and passes its directory.) A test
//! counts when every op of its graph is supported; it passes when the float interpreter
//! gives the expected outputs (|Δ| ≤ 1e-4 + 1e-3·|expected|) and the quantized model's
//! circuit is satisfied by the integer interpreter's trace (MockProver). The node tests
//! give axes, shapes, indices and parameters as graph inputs where exported models hold
//! constants; when the importer names such an input as needing a constant, the test is
//! run again with that input bound to its test value (reported as `pass*`). Prints one
//! line per test (the reason of each failure), a count per operator, and pass / total.

// A tool: a panic is a bug report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use prost::Message;
use tract_onnx::pb;
use tract_onnx::prelude::Framework;
use zkinfer_circuits::halo2_proofs::dev::MockProver;
use zkinfer_circuits::{plan_layout, ModelCircuit};
use zkinfer_compiler::import::import_proto;
use zkinfer_compiler::proto::{decode_tensor, Decoded};
use zkinfer_compiler::{calibrate, quantize, quantize_input, supported_ops, QuantConfig};

fn tensor(path: &Path) -> Result<(Vec<usize>, Vec<f32>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let t = pb::TensorProto::decode(&bytes[..]).map_err(|e| format!("{}: {e}", path.display()))?;
    match decode_tensor(&t) {
        Ok(Decoded::Float(t)) => Ok((t.shape, t.data)),
        Ok(Decoded::Int(shape, v)) => Ok((shape, v.iter().map(|&x| x as f32).collect())),
        Err(e) => Err(format!("tensor `{}`: {e}", t.name)),
    }
}

fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".pb"))
    });
    // input_2.pb before input_10.pb.
    v.sort_by_key(|p| {
        let n = p
            .file_stem()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let digits: String = n.chars().filter(char::is_ascii_digit).collect();
        (digits.parse::<usize>().unwrap_or(0), n)
    });
    v
}

/// Runs one node test: `Ok(())` when it passes, else the reason. The graph inputs named
/// in `bound` become initializers holding their test values (see [`needs_constant`]).
fn run(dir: &Path, model: &pb::ModelProto, bound: &[String]) -> Result<(), String> {
    let data = dir.join("test_data_set_0");
    let inputs = files(&data, "input_");
    let outputs = files(&data, "output_");
    let graph = model.graph.as_ref().ok_or("no graph")?;
    let graph_inputs: Vec<&pb::ValueInfoProto> = graph
        .input
        .iter()
        .filter(|i| !graph.initializer.iter().any(|t| t.name == i.name))
        .collect();
    let mut model = model.clone();
    let g = model.graph.as_mut().ok_or("no graph")?;
    for (v, f) in graph_inputs.iter().zip(&inputs) {
        if bound.contains(&v.name) {
            let bytes = std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
            let mut t =
                pb::TensorProto::decode(&bytes[..]).map_err(|e| format!("{}: {e}", f.display()))?;
            t.name = v.name.clone();
            g.initializer.push(t);
            g.input.retain(|i| i.name != v.name);
        }
    }
    let g = import_proto(&model)
        .map_err(|e| format!("import: {e}"))?
        .graph;
    // The node tests store bfloat16 data as uint16 bit patterns.
    let bf16 = |v: &pb::ValueInfoProto| {
        matches!(v.r#type.as_ref().and_then(|t| t.value.as_ref()),
            Some(pb::type_proto::Value::TensorType(t)) if t.elem_type == 16)
    };
    let read = |f: &PathBuf, bits16: bool| -> Result<Vec<f32>, String> {
        let v = tensor(f)?.1;
        Ok(if bits16 {
            v.iter()
                .map(|&b| f32::from_bits((b as u32) << 16))
                .collect()
        } else {
            v
        })
    };
    // Several inputs and outputs: packed in order, as the model packs them.
    let mut x = Vec::new();
    for (j, f) in inputs.iter().enumerate() {
        let input = graph_inputs.get(j);
        if input.is_some_and(|v| bound.contains(&v.name)) {
            continue;
        }
        x.extend(read(f, input.is_some_and(|v| bf16(v)))?);
    }
    let mut expected = Vec::new();
    for (j, f) in outputs.iter().enumerate() {
        expected.extend(read(f, graph.output.get(j).is_some_and(bf16))?);
    }
    let ours = g.run(&x).map_err(|e| format!("float run: {e}"))?;
    let y = &ours[&g.output];
    if y.data.len() != expected.len() {
        return Err(format!(
            "{} output values, expected {}",
            y.data.len(),
            expected.len()
        ));
    }
    for (i, (a, b)) in y.data.iter().zip(&expected).enumerate() {
        let ok = a == b || (a - b).abs() <= 1e-4 + 1e-3 * b.abs() || (a.is_nan() && b.is_nan());
        if !ok {
            return Err(format!("float output [{i}] is {a}, expected {b}"));
        }
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "input value [{i}] is {}: a circuit proves finite numbers only",
            x[i]
        ));
    }
    let samples = vec![x];
    let cal = calibrate(&g, &samples).map_err(|e| format!("calibrate: {e}"))?;
    let q = quantize(&g, &cal, QuantConfig::default()).map_err(|e| format!("quantize: {e}"))?;
    let trace = q
        .run(&quantize_input(&q, &samples[0]))
        .map_err(|e| format!("integer run: {e}"))?;
    let (plan, _) = plan_layout(&q, Default::default(), None, Default::default())
        .map_err(|e| format!("layout: {e}"))?;
    let instances = ModelCircuit::instances(&q, &plan.layout, &trace, &Default::default());
    let circuit =
        ModelCircuit::with_trace(Arc::new(q.clone()), plan.layout.clone(), Arc::new(trace));
    let prover = MockProver::run(plan.layout.k, &circuit, vec![instances])
        .map_err(|e| format!("circuit: {e}"))?;
    prover
        .verify()
        .map_err(|e| format!("circuit not satisfied: {} failures", e.len()))
}

/// The graph input an import failure says must be a constant (axes, shapes, indices,
/// depths, normalisation parameters — initializers in an exported model, inputs in the
/// node tests): the first backticked name in the reason that is a graph input not yet
/// bound.
fn needs_constant(reason: &str, model: &pb::ModelProto, bound: &[String]) -> Option<String> {
    let asks = [
        "must be a constant",
        "are computed and so is",
        "is not a positive constant",
    ];
    if !reason.starts_with("import:") || !asks.iter().any(|a| reason.contains(a)) {
        return None;
    }
    // An empty input: an empty list of axes (an int64 vector) is bound; empty data is
    // a tensor the circuit cannot hold.
    let empty = reason.contains("is not a positive constant");
    let axes_like = |i: &pb::ValueInfoProto| {
        matches!(i.r#type.as_ref().and_then(|t| t.value.as_ref()),
            Some(pb::type_proto::Value::TensorType(t))
                if t.elem_type == 7 && t.shape.as_ref().is_some_and(|s| s.dim.len() == 1))
    };
    let graph = model.graph.as_ref()?;
    reason
        .split('`')
        .skip(1)
        .step_by(2)
        .find(|name| {
            graph
                .input
                .iter()
                .any(|i| i.name == *name && (!empty || axes_like(i)))
                && !bound.iter().any(|b| b == name)
        })
        .map(str::to_string)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(root) = args.first() else {
        eprintln!("usage: conformance NODE_DIR [FILTER]");
        std::process::exit(2);
    };
    let filter = args.get(1).cloned().unwrap_or_default();
    let supported = supported_ops();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap_or_else(|e| {
            eprintln!("error: {root}: {e}");
            std::process::exit(2)
        })
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("model.onnx").exists())
        .filter(|p| p.to_string_lossy().contains(&filter))
        .collect();
    dirs.sort();
    let mut per_op: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let (mut passed, mut passed_bound, mut total) = (0, 0, 0);
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let Ok(model) = tract_onnx::onnx().proto_model_for_path(dir.join("model.onnx")) else {
            continue;
        };
        let ops: Vec<String> = model
            .graph
            .iter()
            .flat_map(|g| &g.node)
            .map(|n| n.op_type.clone())
            .collect();
        let Some(op) = ops.last().cloned() else {
            continue;
        };
        if ops.iter().any(|o| !supported.contains(&o.as_str())) {
            continue;
        }
        total += 1;
        // As given; then, while the importer names a graph input it needs as a constant,
        // with that input bound to its test value.
        let mut bound: Vec<String> = Vec::new();
        let result = loop {
            let r = std::panic::catch_unwind(|| run(dir, &model, &bound))
                .unwrap_or_else(|_| Err("panicked".into()));
            match r
                .as_ref()
                .err()
                .and_then(|e| needs_constant(e, &model, &bound))
            {
                Some(input) => bound.push(input),
                None => break r,
            }
        };
        let entry = per_op.entry(op).or_default();
        entry.1 += 1;
        let with = if bound.is_empty() {
            String::new()
        } else {
            format!(" (constant: {})", bound.join(", "))
        };
        match result {
            Ok(()) => {
                entry.0 += 1;
                if bound.is_empty() {
                    passed += 1;
                    println!("pass  {name}");
                } else {
                    passed_bound += 1;
                    println!("pass* {name}{with}");
                }
            }
            Err(reason) => println!("FAIL  {name}{with}: {reason}"),
        }
    }
    println!("\n| operator | pass / tests |\n|---|---:|");
    for (op, (p, t)) in &per_op {
        println!("| {op} | {p} / {t} |");
    }
    println!(
        "\nnode tests of supported operators: {} / {total} pass ({passed} as given, \
         {passed_bound} with the inputs the importer needs as constants bound to their \
         test values, marked pass*)",
        passed + passed_bound
    );
}
