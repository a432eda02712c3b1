//! Helpers for zkinfer's end-to-end tests: building ONNX models in memory, running the
//! float reference (tract) on them, and compiling and proving the shared models.

// Test support: a failure here is a failed test, so panicking is the right report.
#![allow(clippy::expect_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use zkinfer_circuits::halo2_proofs::halo2curves::bn256::Bn256;
use zkinfer_circuits::halo2_proofs::poly::kzg::commitment::ParamsKZG;

use prost::Message;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};
use tract_onnx::pb::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use tract_onnx::prelude::*;

/// A shared model compiled by the library pipeline (default settings, as `zkinfer
/// compile` does); returns its integer model with its first calibration sample, quantized.
pub fn compile_shared(name: &str) -> (zkinfer_qir::QModel, Vec<i64>) {
    let dir = shared_models();
    let text = std::fs::read_to_string(dir.join(format!("{name}.input.json"))).expect("input");
    let compiled = zkinfer_pipeline::compile(
        &dir.join(format!("{name}.onnx")),
        &text,
        &zkinfer_pipeline::CompileOptions::default(),
    )
    .expect("compiles");
    let model = compiled.model;
    let data = zkinfer_compiler::parse_input_json(&text, &[model.value(model.input).shape.clone()])
        .expect("parses");
    let input = zkinfer_compiler::quantize_input(&model, &data.samples[0]);
    (model, input)
}

/// The statement a verifier needs for `model`, with the planner's layout.
pub fn info_for(
    model: &zkinfer_qir::QModel,
    vis: zkinfer_circuits::Visibility,
) -> zkinfer_verifier::StatementInfo {
    let (plan, _) =
        zkinfer_circuits::plan_layout(model, vis, None, Default::default()).expect("plans");
    zkinfer_prover::artifact::statement_info(model, &plan.layout)
}

/// A shared model compiled, keyed (development SRS) and proven on the CPU.
pub struct Proven {
    pub model: Arc<zkinfer_qir::QModel>,
    pub input: Vec<i64>,
    pub info: zkinfer_verifier::StatementInfo,
    pub pk: zkinfer_prover::ProverKey,
    pub vk: zkinfer_verifier::VerifierKey,
    pub proof: zkinfer_verifier::ProofFile,
}

pub fn prove_shared(name: &str) -> Proven {
    let (q, input) = compile_shared(name);
    prove_model(q, input, zkinfer_circuits::Visibility::default())
}

/// `model` keyed (development SRS) and proven on `input` with visibility `vis`.
pub fn prove_model(
    q: zkinfer_qir::QModel,
    input: Vec<i64>,
    vis: zkinfer_circuits::Visibility,
) -> Proven {
    let model = Arc::new(q);
    let info = info_for(&model, vis);
    let params = dev_srs(info.layout.k);
    let params = &*params;
    let (pk, vk) = zkinfer_prover::setup(model.clone(), info.clone(), params).expect("keys");
    let trace = Arc::new(model.run(&input).expect("runs"));
    let proof = zkinfer_pipeline::prove(
        &zkinfer_prover::CpuEngine,
        model.clone(),
        &pk,
        params,
        trace,
    )
    .expect("proves");
    Proven {
        model,
        input,
        info,
        pk,
        vk,
        proof,
    }
}

/// The development SRS of size `2^k`, generated once per test process.
pub fn dev_srs(k: u32) -> Arc<ParamsKZG<Bn256>> {
    static SRS: OnceLock<Mutex<HashMap<u32, Arc<ParamsKZG<Bn256>>>>> = OnceLock::new();
    let cache = SRS.get_or_init(Default::default);
    if let Some(p) = cache.lock().expect("srs cache").get(&k) {
        return p.clone();
    }
    let p = Arc::new(zkinfer_prover::dev_srs(k));
    cache.lock().expect("srs cache").insert(k, p.clone());
    p
}

/// `../shared/models` seen from the workspace root.
pub fn shared_models() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/models")
}

pub fn float_tensor(name: &str, dims: &[i64], data: Vec<f32>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 1,
        float_data: data,
        ..Default::default()
    }
}

pub fn int_tensor(name: &str, data: Vec<i64>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: vec![data.len() as i64],
        data_type: 7,
        int64_data: data,
        ..Default::default()
    }
}

pub fn value_info(name: &str, dims: &[i64]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|&d| Dimension {
            value: Some(dimension::Value::DimValue(d)),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: 1,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A float tensor whose shape the file leaves to inference.
pub fn value_info_any(name: &str) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: 1,
                shape: None,
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[derive(Clone)]
pub enum Attr {
    F(f32),
    I(i64),
    Ints(Vec<i64>),
    Floats(Vec<f32>),
    S(String),
    Strings(Vec<&'static str>),
    T(Box<TensorProto>),
}

pub fn node(op: &str, inputs: &[&str], output: &str, attrs: Vec<(&str, Attr)>) -> NodeProto {
    let attribute = attrs
        .into_iter()
        .map(|(name, a)| {
            let mut p = AttributeProto {
                name: name.into(),
                ..Default::default()
            };
            match a {
                Attr::F(f) => {
                    p.r#type = AttributeType::Float as i32;
                    p.f = f;
                }
                Attr::I(i) => {
                    p.r#type = AttributeType::Int as i32;
                    p.i = i;
                }
                Attr::Ints(v) => {
                    p.r#type = AttributeType::Ints as i32;
                    p.ints = v;
                }
                Attr::Floats(v) => {
                    p.r#type = AttributeType::Floats as i32;
                    p.floats = v;
                }
                Attr::S(v) => {
                    p.r#type = AttributeType::String as i32;
                    p.s = v.into_bytes();
                }
                Attr::Strings(v) => {
                    p.r#type = AttributeType::Strings as i32;
                    p.strings = v.iter().map(|s| s.as_bytes().to_vec()).collect();
                }
                Attr::T(t) => {
                    p.r#type = AttributeType::Tensor as i32;
                    p.t = Some(*t);
                }
            }
            p
        })
        .collect();
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: format!("{op}:{output}"),
        op_type: op.into(),
        attribute,
        ..Default::default()
    }
}

pub fn model(
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    input: ValueInfoProto,
    output: ValueInfoProto,
) -> ModelProto {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(GraphProto {
            node: nodes,
            name: "test".into(),
            initializer: inits,
            input: vec![input],
            output: vec![output],
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn encode(m: &ModelProto) -> Vec<u8> {
    m.encode_to_vec()
}

/// Runs an ONNX model with tract on one input; returns the flattened output.
pub fn tract_run(onnx: &[u8], shape: &[usize], input: &[f32]) -> Vec<f32> {
    let model = tract_onnx::onnx()
        .model_for_read(&mut &onnx[..])
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .expect("tract loads the model");
    let x = tract_ndarray::ArrayD::from_shape_vec(shape.to_vec(), input.to_vec()).expect("shape");
    let out = model
        .run(tvec!(Tensor::from(x).into()))
        .expect("tract runs the model");
    let view = out[0].to_plain_array_view::<f32>().expect("f32 output");
    view.iter().copied().collect()
}

/// tract's outputs (each flattened, as f32) for several inputs.
pub fn tract_run_many(onnx: &[u8], inputs: &[(&[usize], &[f32])]) -> Vec<Vec<f32>> {
    let model = tract_onnx::onnx()
        .model_for_read(&mut &onnx[..])
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .expect("tract loads the model");
    let tensors = inputs
        .iter()
        .map(|(shape, data)| {
            let x = tract_ndarray::ArrayD::from_shape_vec(shape.to_vec(), data.to_vec())
                .expect("shape");
            Tensor::from(x).into()
        })
        .collect();
    let out = model.run(tensors).expect("tract runs the model");
    out.iter()
        .map(|t| {
            let t = t.cast_to::<f32>().expect("a number output");
            let view = t.to_plain_array_view::<f32>().expect("f32 output");
            view.iter().copied().collect()
        })
        .collect()
}

/// Deterministic pseudo-random floats in [-1, 1).
pub fn floats(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}
