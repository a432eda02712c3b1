//! Every supported ONNX op and attribute: the float interpreter against tract, the
//! quantized model against the float one, and the circuit against the integer
//! interpreter (MockProver).

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tract_onnx::pb::{ModelProto, NodeProto};
use tract_onnx::prelude::Framework;
use zkinfer_circuits::halo2_proofs::dev::MockProver;
use zkinfer_circuits::{plan_layout, ModelCircuit};
use zkinfer_compiler::import::import_proto;
use zkinfer_compiler::{
    calibrate, fidelity, import_onnx, quantize, quantize_input, run_quantized, CompileError,
    QuantConfig,
};
use zkinfer_tests::{
    encode, float_tensor, floats, int_tensor, model, node, shared_models, tract_run,
    tract_run_many, value_info, value_info_any, Attr,
};

/// Float reference, quantized fidelity and MockProver on one model; returns the
/// quantized model.
fn check(m: &ModelProto, input_shape: &[usize]) -> zkinfer_qir::QModel {
    let n: usize = input_shape.iter().product();
    let samples: Vec<Vec<f32>> = (0..3).map(|s| floats(s, n)).collect();
    check_on(m, &samples)
}

/// [`check`] on the given samples (packed: several inputs one after the other).
fn check_on(m: &ModelProto, samples: &[Vec<f32>]) -> zkinfer_qir::QModel {
    let onnx = encode(m);
    let graph = import_proto(m).expect("imports").graph;
    for x in samples {
        let ours = &graph.run(x).expect("float run")[&graph.output].data;
        let mut at = 0;
        let feeds: Vec<(&[usize], &[f32])> = graph
            .inputs
            .iter()
            .map(|p| {
                at += p.len();
                (p.shape.as_slice(), &x[at - p.len()..at])
            })
            .collect();
        let tract = tract_run_many(&onnx, &feeds).concat();
        assert_eq!(ours.len(), tract.len());
        for (a, b) in ours.iter().zip(&tract) {
            assert!(
                (a - b).abs() < 1e-4,
                "float interpreter {a} vs tract {b}: {ours:?} vs {tract:?}"
            );
        }
    }
    prove_matches(&graph, samples)
}

/// Quantizes `graph` on `samples`, asserts the quantized output near the float one and
/// the circuit satisfied by the integer interpreter's trace of the first sample.
fn prove_matches(
    graph: &zkinfer_compiler::graph::Graph,
    samples: &[Vec<f32>],
) -> zkinfer_qir::QModel {
    let cal = calibrate(graph, samples).unwrap();
    let q = quantize(
        graph,
        &cal,
        QuantConfig {
            act_bits: 10,
            weight_bits: 10,
            ..QuantConfig::default()
        },
    )
    .unwrap();
    let fid = fidelity(graph, &q, samples).unwrap();
    assert!(
        fid.max_abs_error <= 0.05 * fid.output_max_abs.max(0.1),
        "quantized output too far from float: {fid}"
    );
    satisfied(&q, &samples[0]);
    q
}

/// MockProver: `q`'s circuit, at the planner's layout, is satisfied by the integer
/// interpreter's trace of the float input `x`.
fn satisfied(q: &zkinfer_qir::QModel, x: &[f32]) {
    let trace = q.run(&quantize_input(q, x)).unwrap();
    let (plan, _) = plan_layout(q, Default::default(), None, Default::default()).unwrap();
    let instances = ModelCircuit::instances(q, &plan.layout, &trace, &Default::default());
    let circuit =
        ModelCircuit::with_trace(Arc::new(q.clone()), plan.layout.clone(), Arc::new(trace));
    let prover = MockProver::run(plan.layout.k, &circuit, vec![instances]).unwrap();
    assert_eq!(prover.verify(), Ok(()));
}

fn gemm_model(
    trans_a: bool,
    trans_b: bool,
    alpha: f32,
    beta: f32,
    c_dims: Option<&[i64]>,
    m: i64,
) -> (ModelProto, Vec<usize>) {
    let (k, n) = (5i64, 3i64);
    let a_dims = if trans_a { [k, m] } else { [m, k] };
    let b_dims = if trans_b { [n, k] } else { [k, n] };
    let mut inits = vec![float_tensor("B", &b_dims, floats(7, (k * n) as usize))];
    let mut inputs = vec!["A", "B"];
    if let Some(cd) = c_dims {
        let len: i64 = cd.iter().product();
        inits.push(float_tensor("C", cd, floats(8, len as usize)));
        inputs.push("C");
    }
    let attrs = vec![
        ("alpha", Attr::F(alpha)),
        ("beta", Attr::F(beta)),
        ("transA", Attr::I(trans_a as i64)),
        ("transB", Attr::I(trans_b as i64)),
    ];
    let g = node("Gemm", &inputs, "Y", attrs);
    let r = node("Relu", &["Y"], "Z", vec![]);
    let mp = model(
        vec![g, r],
        inits,
        value_info("A", &a_dims),
        value_info("Z", &[m, n]),
    );
    (mp, a_dims.iter().map(|&d| d as usize).collect())
}

#[test]
fn gemm_attributes_match_tract() {
    for trans_a in [false, true] {
        for trans_b in [false, true] {
            for c in [
                None,
                Some(&[3i64][..]),
                Some(&[1, 3][..]),
                Some(&[2, 3][..]),
            ] {
                let (m, shape) = gemm_model(trans_a, trans_b, 0.75, 1.5, c, 2);
                check(&m, &shape);
            }
        }
    }
}

#[test]
fn gemm_with_constant_a_matches_tract() {
    // Y = A·X with A constant [2, 4], X the input [4, 3].
    let inits = vec![
        float_tensor("A", &[2, 4], floats(3, 8)),
        float_tensor("C", &[3], floats(4, 3)),
    ];
    let g = node(
        "Gemm",
        &["A", "X", "C"],
        "Y",
        vec![("alpha", Attr::F(1.25))],
    );
    let m = model(
        vec![g],
        inits,
        value_info("X", &[4, 3]),
        value_info("Y", &[2, 3]),
    );
    check(&m, &[4, 3]);
}

#[test]
fn matmul_add_reshape_transpose_flatten_identity_match_tract() {
    // x [2, 3, 4] · W [4, 5] + b [5] → relu → transpose(0,2,1) → reshape [2, 15] → flatten → identity
    let inits = vec![
        float_tensor("W", &[4, 5], floats(11, 20)),
        float_tensor("b", &[5], floats(12, 5)),
        int_tensor("shape", vec![2, -1]),
    ];
    let nodes = vec![
        node("MatMul", &["x", "W"], "h", vec![]),
        node("Add", &["h", "b"], "hb", vec![]),
        node("Relu", &["hb"], "r", vec![]),
        node(
            "Transpose",
            &["r"],
            "t",
            vec![("perm", Attr::Ints(vec![0, 2, 1]))],
        ),
        node("Reshape", &["t", "shape"], "s", vec![]),
        node("Flatten", &["s"], "f", vec![("axis", Attr::I(1))]),
        node("Identity", &["f"], "y", vec![]),
    ];
    let m = model(
        nodes,
        inits,
        value_info("x", &[2, 3, 4]),
        value_info("y", &[2, 15]),
    );
    check(&m, &[2, 3, 4]);
}

#[test]
fn matmul_with_constant_left_and_residual_add_match_tract() {
    // y = W · x + x  (W [3, 3] constant, x [3, 2] input): computed + computed addition.
    let inits = vec![float_tensor("W", &[3, 3], floats(21, 9))];
    let nodes = vec![
        node("MatMul", &["W", "x"], "h", vec![]),
        node("Add", &["h", "x"], "y", vec![]),
    ];
    let m = model(
        nodes,
        inits,
        value_info("x", &[3, 2]),
        value_info("y", &[3, 2]),
    );
    check(&m, &[3, 2]);
}

#[test]
fn shared_mlps_match_tract() {
    for name in ["mlp_tiny", "mlp_mnist"] {
        let path = shared_models().join(format!("{name}.onnx"));
        let graph = import_onnx(&path).unwrap().graph;
        let onnx = std::fs::read(&path).unwrap();
        let x = floats(99, graph.input_shape().iter().product());
        let ours = &graph.run(&x).unwrap()[&graph.output].data;
        let tract = tract_run(&onnx, graph.input_shape(), &x);
        for (a, b) in ours.iter().zip(&tract) {
            assert!((a - b).abs() < 1e-4, "{name}: {a} vs {b}");
        }
    }
}

#[test]
fn unsupported_ops_are_all_named_before_any_work() {
    let mut custom = node("Fancy", &["b"], "c", vec![]);
    custom.domain = "com.example".into();
    let nodes = vec![
        node("Mod", &["x", "x"], "a", vec![]),
        node("Relu", &["a"], "b", vec![]),
        custom,
        node("Unique", &["c"], "y", vec![]),
    ];
    let m = model(nodes, vec![], value_info("x", &[1, 4]), value_info_any("y"));
    let err = import_proto(&m).unwrap_err();
    let CompileError::Unsupported { nodes } = &err else {
        panic!("expected Unsupported, got {err}");
    };
    let ops: Vec<&str> = nodes.iter().map(|(op, _)| op.as_str()).collect();
    assert_eq!(ops, ["Mod", "com.example::Fancy", "Unique"]);
    let msg = err.to_string();
    assert!(
        msg.contains("Unique (node `Unique:y`)") && msg.contains("Supported: Abs"),
        "{msg}"
    );
}

/// `LayerNormalization(x, gamma, beta)` over the last axis, ε = 1e-5.
fn layer_norm_of_x(out: &str) -> NodeProto {
    let mut ln = node(
        "LayerNormalization",
        &["x", "gamma", "beta"],
        out,
        vec![("epsilon", Attr::F(1e-5))],
    );
    ln.attribute.push(tract_onnx::pb::AttributeProto {
        name: "axis".into(),
        r#type: tract_onnx::pb::attribute_proto::AttributeType::Int as i32,
        i: -1,
        ..Default::default()
    });
    ln
}

#[test]
fn softmax_and_layer_norm_match_tract() {
    let inits = vec![
        float_tensor("gamma", &[8], floats(61, 8)),
        float_tensor("beta", &[8], floats(62, 8)),
        float_tensor("W", &[8, 8], floats(63, 64)),
    ];
    let ln = layer_norm_of_x("n");
    let nodes = vec![
        ln,
        node("MatMul", &["n", "W"], "h", vec![]),
        node("Softmax", &["h"], "y", vec![("axis", Attr::I(-1))]),
    ];
    let mut m = model(
        nodes,
        inits,
        value_info("x", &[1, 3, 8]),
        value_info_any("y"),
    );
    m.opset_import[0].version = 17;
    check(&m, &[1, 3, 8]);
}

#[test]
fn shared_attention_block_matches_tract_and_satisfies_its_circuit() {
    let path = shared_models().join("attn_block.onnx");
    let bytes = std::fs::read(&path).unwrap();
    let proto = tract_onnx::onnx()
        .proto_model_for_read(&mut &bytes[..])
        .unwrap();
    check(&proto, &[1, 8, 16]);
}

fn conv_model(
    attrs: Vec<(&str, Attr)>,
    bias: bool,
    x: [i64; 4],
    cout: i64,
    k: [i64; 2],
) -> ModelProto {
    let mut inits = vec![float_tensor(
        "W",
        &[cout, x[1], k[0], k[1]],
        floats(31, (cout * x[1] * k[0] * k[1]) as usize),
    )];
    let mut inputs = vec!["X", "W"];
    if bias {
        inits.push(float_tensor("B", &[cout], floats(32, cout as usize)));
        inputs.push("B");
    }
    let c = node("Conv", &inputs, "Y", attrs);
    let r = node("Relu", &["Y"], "Z", vec![]);
    // The output's declared shape is not used for inference; tract infers it too.
    model(vec![c, r], inits, value_info("X", &x), value_info_any("Z"))
}

#[test]
fn conv_attributes_match_tract() {
    let x = [1, 2, 7, 6];
    let s = |v: &str| Attr::S(v.into());
    let cases: Vec<Vec<(&str, Attr)>> = vec![
        vec![],
        vec![
            ("strides", Attr::Ints(vec![2, 1])),
            ("pads", Attr::Ints(vec![1, 0, 2, 1])),
        ],
        vec![
            ("dilations", Attr::Ints(vec![2, 1])),
            ("pads", Attr::Ints(vec![1, 1, 1, 1])),
        ],
        vec![
            ("auto_pad", s("SAME_UPPER")),
            ("strides", Attr::Ints(vec![2, 2])),
        ],
        vec![("auto_pad", s("SAME_LOWER"))],
        vec![
            ("auto_pad", s("VALID")),
            ("strides", Attr::Ints(vec![1, 2])),
        ],
        vec![("kernel_shape", Attr::Ints(vec![3, 2]))],
    ];
    for (i, attrs) in cases.into_iter().enumerate() {
        check(&conv_model(attrs, i % 2 == 0, x, 3, [3, 2]), &[1, 2, 7, 6]);
    }
}

/// Conv with `group` groups: W is `[cout, cin / group, k, k]`.
fn grouped_conv_model(x: [i64; 4], cout: i64, group: i64, attrs: Vec<(&str, Attr)>) -> ModelProto {
    let cin_g = x[1] / group;
    let inits = vec![
        float_tensor(
            "W",
            &[cout, cin_g, 3, 3],
            floats(33, (cout * cin_g * 9) as usize),
        ),
        float_tensor("B", &[cout], floats(34, cout as usize)),
    ];
    let mut attrs = attrs;
    attrs.push(("group", Attr::I(group)));
    let c = node("Conv", &["X", "W", "B"], "Y", attrs);
    let r = node("Relu", &["Y"], "Z", vec![]);
    model(vec![c, r], inits, value_info("X", &x), value_info_any("Z"))
}

#[test]
fn grouped_and_depthwise_conv_match_tract() {
    // Two groups of two channels, three outputs each.
    check(
        &grouped_conv_model([1, 4, 6, 5], 6, 2, vec![]),
        &[1, 4, 6, 5],
    );
    // Depthwise (group = channels), strided and padded, two outputs per channel.
    let attrs = vec![
        ("strides", Attr::Ints(vec![2, 2])),
        ("pads", Attr::Ints(vec![1, 1, 1, 1])),
    ];
    check(
        &grouped_conv_model([1, 3, 7, 6], 6, 3, attrs),
        &[1, 3, 7, 6],
    );
}

#[test]
fn concat_matches_tract_across_axes_and_scales() {
    // Two branches of different ranges (so different scales) joined along channels, then
    // the result joined with itself along the last axis.
    let inits = vec![
        float_tensor("Wa", &[3, 2, 3, 3], floats(41, 54)),
        float_tensor(
            "Wb",
            &[2, 2, 1, 1],
            floats(42, 4).iter().map(|v| v * 0.02).collect(),
        ),
    ];
    let nodes = vec![
        node(
            "Conv",
            &["X", "Wa"],
            "A",
            vec![("pads", Attr::Ints(vec![1, 1, 1, 1]))],
        ),
        node("Relu", &["A"], "Ar", vec![]),
        node("Conv", &["X", "Wb"], "B", vec![]),
        node("Concat", &["Ar", "B"], "C", vec![("axis", Attr::I(1))]),
        node("Concat", &["C", "C"], "D", vec![("axis", Attr::I(-1))]),
    ];
    let m = model(
        nodes,
        inits,
        value_info("X", &[1, 2, 4, 5]),
        value_info_any("D"),
    );
    let q = check(&m, &[1, 2, 4, 5]);
    // The branches' scales differed, so one was aligned before the join.
    assert!(q.values.iter().any(|v| v.name.starts_with("C/in")));
    // Shapes that differ outside the axis, and a missing axis, are clear errors.
    let bad = model(
        vec![node("Concat", &["X", "X"], "Y", vec![])],
        vec![],
        value_info("X", &[1, 2]),
        value_info_any("Y"),
    );
    let err = import_proto(&bad).unwrap_err().to_string();
    assert!(err.contains("`axis` attribute is required"), "{err}");
}

#[test]
fn clip_leaky_relu_sum_max_min_and_reductions_match_tract() {
    let inits = vec![
        float_tensor("lo", &[], vec![-0.5]),
        float_tensor("hi", &[], vec![0.8]),
        int_tensor("axes1", vec![1]),
    ];
    let nodes = vec![
        node("Clip", &["X", "lo", "hi"], "A", vec![]),
        node("LeakyRelu", &["X"], "B", vec![("alpha", Attr::F(0.1))]),
        node(
            "ReduceMean",
            &["X"],
            "R",
            vec![("axes", Attr::Ints(vec![2]))],
        ),
        node("Max", &["A", "R"], "M", vec![]),
        node("Min", &["B", "M"], "N", vec![]),
        node("Sum", &["A", "N", "R"], "S", vec![]),
        node(
            "ReduceSum",
            &["S", "axes1"],
            "T",
            vec![("keepdims", Attr::I(0))],
        ),
    ];
    let m = model(
        nodes,
        inits,
        value_info("X", &[2, 3, 4]),
        value_info_any("T"),
    );
    check(&m, &[2, 3, 4]);
    // Clip with only a maximum (the minimum omitted), and reductions over every axis.
    let inits = vec![float_tensor("hi", &[], vec![0.3])];
    let nodes = vec![
        node("Clip", &["X", "", "hi"], "A", vec![]),
        node("ReduceSum", &["A"], "S", vec![]),
        node("Sum", &["A", "S"], "Y", vec![]),
    ];
    let m = model(nodes, inits, value_info("X", &[3, 5]), value_info_any("Y"));
    check(&m, &[3, 5]);
}

#[test]
fn shape_and_constant_of_shape_fold_to_constants() {
    let half = float_tensor("v", &[1], vec![0.5]);
    let nodes = vec![
        node("Shape", &["X"], "shp", vec![]),
        node("Flatten", &["X"], "F", vec![("axis", Attr::I(0))]),
        node("Relu", &["F"], "G", vec![]),
        node("Reshape", &["G", "shp"], "H", vec![]),
        node(
            "ConstantOfShape",
            &["shp"],
            "C",
            vec![("value", Attr::T(Box::new(half)))],
        ),
        node("Add", &["H", "C"], "Y", vec![]),
    ];
    let m = model(nodes, vec![], value_info("X", &[2, 6]), value_info_any("Y"));
    check(&m, &[2, 6]);

    // `x.view(x.size(0), -1)` as PyTorch exports it: shape arithmetic on integers folds.
    let zero = tract_onnx::pb::TensorProto {
        name: "zero".into(),
        dims: vec![],
        data_type: 7,
        int64_data: vec![0],
        ..Default::default()
    };
    let inits = vec![
        zero,
        int_tensor("minus1", vec![-1]),
        int_tensor("ax0", vec![0]),
    ];
    let nodes = vec![
        node("Relu", &["X"], "R", vec![]),
        node("Shape", &["R"], "shp", vec![]),
        node("Gather", &["shp", "zero"], "n", vec![("axis", Attr::I(0))]),
        node("Unsqueeze", &["n", "ax0"], "n1", vec![]),
        node(
            "Concat",
            &["n1", "minus1"],
            "target",
            vec![("axis", Attr::I(0))],
        ),
        node("Reshape", &["R", "target"], "Y", vec![]),
    ];
    let m = model(
        nodes,
        inits,
        value_info("X", &[2, 3, 4]),
        value_info_any("Y"),
    );
    let graph = import_proto(&m).unwrap().graph;
    assert_eq!(graph.shapes[&graph.output], vec![2, 12]);
    check(&m, &[2, 3, 4]);
    // Integer data mixed with float data is still an error.
    let nodes = vec![node("Add", &["X", "minus1"], "Y", vec![])];
    let m = model(
        nodes,
        vec![int_tensor("minus1", vec![-1])],
        value_info("X", &[1]),
        value_info_any("Y"),
    );
    let err = import_proto(&m).unwrap_err().to_string();
    assert!(err.contains("only in shape arithmetic"), "{err}");
}

#[test]
fn pooling_matches_tract() {
    let pools = vec![
        node(
            "AveragePool",
            &["X"],
            "Y",
            vec![
                ("kernel_shape", Attr::Ints(vec![2, 2])),
                ("strides", Attr::Ints(vec![2, 2])),
            ],
        ),
        node(
            "AveragePool",
            &["X"],
            "Y",
            vec![
                ("kernel_shape", Attr::Ints(vec![3, 3])),
                ("pads", Attr::Ints(vec![1, 1, 1, 1])),
                ("count_include_pad", Attr::I(1)),
            ],
        ),
        node("GlobalAveragePool", &["X"], "Y", vec![]),
    ];
    for p in pools {
        let m = model(
            vec![p],
            vec![],
            value_info("X", &[1, 3, 6, 6]),
            value_info_any("Y"),
        );
        check(&m, &[1, 3, 6, 6]);
    }
}

#[test]
fn shared_cnns_match_tract_and_lenet5_satisfies_its_circuit() {
    for name in ["lenet5", "cnn_cifar"] {
        let path = shared_models().join(format!("{name}.onnx"));
        let graph = import_onnx(&path).unwrap().graph;
        let onnx = std::fs::read(&path).unwrap();
        let x = floats(5, graph.input_shape().iter().product());
        let ours = &graph.run(&x).unwrap()[&graph.output].data;
        let tract = tract_run(&onnx, graph.input_shape(), &x);
        for (a, b) in ours.iter().zip(&tract) {
            assert!((a - b).abs() < 1e-4, "{name}: {a} vs {b}");
        }
    }
    let path = shared_models().join("lenet5.onnx");
    let bytes = std::fs::read(&path).unwrap();
    let proto = tract_onnx::onnx()
        .proto_model_for_read(&mut &bytes[..])
        .unwrap();
    check(&proto, &[1, 1, 28, 28]);
}

#[test]
fn malformed_models_are_clear_errors() {
    // Inner dimensions differ.
    let inits = vec![float_tensor("B", &[4, 3], floats(1, 12))];
    let g = node("Gemm", &["A", "B"], "Y", vec![]);
    let m = model(
        vec![g],
        inits,
        value_info("A", &[1, 5]),
        value_info("Y", &[1, 3]),
    );
    let err = import_proto(&m).unwrap_err().to_string();
    assert!(
        err.contains("Gemm:Y") && err.contains("inner dimensions"),
        "{err}"
    );
    // Reading a tensor nobody defines.
    let r = node("Relu", &["nope"], "Y", vec![]);
    let m = model(
        vec![r],
        vec![],
        value_info("A", &[1, 5]),
        value_info("Y", &[1, 5]),
    );
    let err = import_proto(&m).unwrap_err().to_string();
    assert!(err.contains("`nope` is not defined"), "{err}");
    // A ReLU of a constant folds at import: the addition takes a constant operand.
    let inits = vec![float_tensor("c", &[1, 4], floats(3, 4))];
    let nodes = vec![
        node("Relu", &["c"], "r", vec![]),
        node("Add", &["x", "r"], "y", vec![]),
    ];
    let m = model(nodes, inits, value_info("x", &[1, 4]), value_info_any("y"));
    let graph = import_proto(&m).unwrap().graph;
    assert_eq!(graph.nodes.len(), 1);
    let relu: Vec<f32> = floats(3, 4).iter().map(|v| v.max(0.0)).collect();
    assert_eq!(graph.constants["r"].data, relu);
    check(&m, &[1, 4]);
    // Not an ONNX file at all.
    let dir = std::env::temp_dir().join(format!("zkinfer-bad-{}", std::process::id()));
    std::fs::write(&dir, b"definitely not protobuf \xff\xff").unwrap();
    let err = import_onnx(&dir).unwrap_err().to_string();
    assert!(err.contains(&dir.display().to_string()), "{err}");
    let _ = std::fs::remove_file(&dir);
}

#[test]
fn batchnorm_maxpool_and_constant_arithmetic_match_tract() {
    let c = 3usize;
    let inits = vec![
        float_tensor("W", &[3, 2, 3, 3], floats(41, 54)),
        float_tensor("gamma", &[3], vec![1.5, 0.5, -1.0]),
        float_tensor("beta", &[3], floats(42, c)),
        float_tensor("mean", &[3], floats(43, c)),
        float_tensor("var", &[3], vec![0.5, 1.0, 2.0]),
        float_tensor("k", &[3, 1, 1], floats(44, c)),
        float_tensor("two", &[], vec![2.0]),
        float_tensor("three", &[1], vec![3.0]),
        int_tensor("ax0", vec![0]),
        int_tensor("ax1", vec![1]),
    ];
    let nodes = vec![
        node(
            "Conv",
            &["X", "W"],
            "c",
            vec![("pads", Attr::Ints(vec![1, 1, 1, 1]))],
        ),
        node(
            "BatchNormalization",
            &["c", "gamma", "beta", "mean", "var"],
            "bn",
            vec![],
        ),
        // MaxPool of a possibly negative input (no ReLU before it), strided.
        node(
            "MaxPool",
            &["bn"],
            "mp",
            vec![
                ("kernel_shape", Attr::Ints(vec![2, 2])),
                ("strides", Attr::Ints(vec![2, 2])),
            ],
        ),
        node("Relu", &["mp"], "r", vec![]),
        // Padded max pooling of a non-negative input.
        node(
            "MaxPool",
            &["r"],
            "mp2",
            vec![
                ("kernel_shape", Attr::Ints(vec![3, 3])),
                ("pads", Attr::Ints(vec![1, 1, 1, 1])),
            ],
        ),
        node("Sub", &["mp2", "k"], "s", vec![]),
        node("Mul", &["s", "two"], "m", vec![]),
        node("Div", &["m", "three"], "d", vec![]),
        node("Sub", &["d", "r"], "dr", vec![]),
        node("Neg", &["dr"], "n", vec![]),
        node("Squeeze", &["n", "ax0"], "sq", vec![]),
        node("Unsqueeze", &["sq", "ax1"], "y", vec![]),
    ];
    let m = model(
        nodes,
        inits,
        value_info("X", &[1, 2, 6, 6]),
        value_info_any("y"),
    );
    // The normalisation after the convolution is folded into its weights.
    let imported = import_proto(&m).unwrap();
    assert!(imported
        .notes
        .iter()
        .any(|n| n.contains("folded BatchNormalization")));
    assert!(!imported
        .graph
        .nodes
        .iter()
        .any(|n| n.op.name() == "BatchNormalization"));
    check(&m, &[1, 2, 6, 6]);

    // One that follows no convolution stays an element-wise affine map.
    let inits = vec![
        float_tensor("gamma", &[2], vec![1.5, -0.5]),
        float_tensor("beta", &[2], floats(45, 2)),
        float_tensor("mean", &[2], floats(46, 2)),
        float_tensor("var", &[2], vec![0.5, 2.0]),
    ];
    let nodes = vec![
        node("Relu", &["X"], "r", vec![]),
        node(
            "BatchNormalization",
            &["r", "gamma", "beta", "mean", "var"],
            "y",
            vec![],
        ),
    ];
    let m = model(
        nodes,
        inits,
        value_info("X", &[1, 2, 3, 3]),
        value_info_any("y"),
    );
    assert!(import_proto(&m).unwrap().notes.is_empty());
    check(&m, &[1, 2, 3, 3]);
}

#[test]
fn products_of_computed_tensors_and_smooth_functions_match_tract() {
    // q = x·Wq, k = x·Wk (x [1, 4, 6]); s = q·kᵀ; gelu(s) written as exporters write it;
    // then sigmoid, tanh, exp, sqrt and reciprocal of positive values.
    let inits = vec![
        float_tensor("Wq", &[6, 5], floats(51, 30)),
        float_tensor("Wk", &[6, 5], floats(52, 30)),
        float_tensor("isq2", &[], vec![std::f32::consts::FRAC_1_SQRT_2]),
        float_tensor("one", &[], vec![1.0]),
        float_tensor("half", &[], vec![0.5]),
    ];
    let nodes = vec![
        node("MatMul", &["x", "Wq"], "q", vec![]),
        node("MatMul", &["x", "Wk"], "k", vec![]),
        node(
            "Transpose",
            &["k"],
            "kt",
            vec![("perm", Attr::Ints(vec![0, 2, 1]))],
        ),
        node("MatMul", &["q", "kt"], "s", vec![]),
        node("Mul", &["s", "isq2"], "g0", vec![]),
        node("Erf", &["g0"], "g1", vec![]),
        node("Add", &["g1", "one"], "g2", vec![]),
        node("Mul", &["s", "g2"], "g3", vec![]),
        node("Mul", &["g3", "half"], "g", vec![]),
        node("Sigmoid", &["g"], "sg", vec![]),
        node("Tanh", &["g"], "th", vec![]),
        node("Exp", &["th"], "ex", vec![]),
        node("Sqrt", &["ex"], "sq", vec![]),
        node("Add", &["sg", "half"], "sp", vec![]),
        node("Reciprocal", &["sp"], "rc", vec![]),
        node("Mul", &["sq", "rc"], "y", vec![]),
    ];
    let m = model(
        nodes,
        inits,
        value_info("x", &[1, 4, 6]),
        value_info_any("y"),
    );
    check(&m, &[1, 4, 6]);
}

/// GELU written out as `x · ½ · (1 + erf(x / √2))`, in the orders exporters write it,
/// fuses into one `Gelu` (one function table instead of five ops), matching tract; a chain
/// whose intermediate another node reads does not fuse.
#[test]
fn erf_gelus_fuse_into_one_function() {
    use zkinfer_compiler::Op;
    let inits = || {
        vec![
            float_tensor("isq2", &[], vec![std::f32::consts::FRAC_1_SQRT_2]),
            float_tensor("sq2", &[], vec![std::f32::consts::SQRT_2]),
            float_tensor("one", &[], vec![1.0]),
            float_tensor("half", &[], vec![0.5]),
        ]
    };
    let head = |scaled: NodeProto| {
        vec![
            scaled,
            node("Erf", &["g0"], "g1", vec![]),
            node("Add", &["one", "g1"], "g2", vec![]),
        ]
    };
    // PyTorch's exact gelu: x / √2, (1 + erf) · x, then · ½.
    let mut torch = head(node("Div", &["x", "sq2"], "g0", vec![]));
    torch.push(node("Mul", &["x", "g2"], "g3", vec![]));
    torch.push(node("Mul", &["g3", "half"], "y", vec![]));
    // BERT's: x · ½ first.
    let mut bert = head(node("Mul", &["isq2", "x"], "g0", vec![]));
    bert.push(node("Mul", &["x", "half"], "h", vec![]));
    bert.push(node("Mul", &["h", "g2"], "y", vec![]));
    // (1 + erf) · ½, then · x.
    let mut halved = head(node("Mul", &["x", "isq2"], "g0", vec![]));
    halved.push(node("Mul", &["half", "g2"], "g3", vec![]));
    halved.push(node("Mul", &["g3", "x"], "y", vec![]));
    for (form, nodes) in [("torch", torch), ("bert", bert), ("halved", halved)] {
        let m = model(
            nodes,
            inits(),
            value_info("x", &[2, 5]),
            value_info_any("y"),
        );
        let imported = import_proto(&m).unwrap();
        let ops: Vec<&Op> = imported.graph.nodes.iter().map(|n| &n.op).collect();
        assert_eq!(
            ops,
            vec![&Op::Unary(zkinfer_qir::Func::Gelu { tanh: false })],
            "{form}"
        );
        assert!(
            imported.notes.iter().any(|n| n.contains("GELU")),
            "{form}: {:?}",
            imported.notes
        );
        check(&m, &[2, 5]);
    }
    // The scaled input read again: the chain stays five ops.
    let mut read = head(node("Mul", &["x", "isq2"], "g0", vec![]));
    read.push(node("Mul", &["x", "g2"], "g3", vec![]));
    read.push(node("Mul", &["g3", "half"], "g", vec![]));
    read.push(node("Add", &["g", "g0"], "y", vec![]));
    let m = model(read, inits(), value_info("x", &[2, 5]), value_info_any("y"));
    let graph = import_proto(&m).unwrap().graph;
    assert!(graph
        .nodes
        .iter()
        .any(|n| n.op == Op::Unary(zkinfer_qir::Func::Erf)));
    check(&m, &[2, 5]);
}

/// A model of `x [1, n]` whose output concatenates every branch along axis 1.
fn branches(
    n: i64,
    inits: Vec<tract_onnx::pb::TensorProto>,
    mut nodes: Vec<tract_onnx::pb::NodeProto>,
    outputs: &[&str],
) -> ModelProto {
    nodes.push(node("Concat", outputs, "y", vec![("axis", Attr::I(1))]));
    model(nodes, inits, value_info("x", &[1, n]), value_info_any("y"))
}

#[test]
fn smooth_tabulated_functions_match_tract() {
    // Domains kept where each function is defined and not steep: Log of softplus,
    // Asin/Acos/Atanh of 0.9·softsign, Acosh of cosh + 0.5.
    let f = |name: &str, v: f32| float_tensor(name, &[], vec![v]);
    let inits = vec![f("c09", 0.9), f("half", 0.5), f("two", 2.0), f("e15", 1.5)];
    let attr = |k: &'static str, v: f32| vec![(k, Attr::F(v))];
    let unary = |op: &str, x: &str, y: &str| node(op, &[x], y, vec![]);
    let nodes = vec![
        unary("Abs", "x", "abs"),
        unary("Softplus", "x", "sp"),
        unary("Log", "sp", "log"),
        unary("Softsign", "x", "ss"),
        node("Mul", &["ss", "c09"], "ss9", vec![]),
        unary("Asin", "ss9", "asin"),
        unary("Acos", "ss9", "acos"),
        unary("Atanh", "ss9", "atanh"),
        unary("Atan", "x", "atan"),
        unary("Sin", "x", "sin"),
        unary("Cos", "x", "cos"),
        unary("Tan", "x", "tan"),
        unary("Sinh", "x", "sinh"),
        unary("Cosh", "x", "cosh"),
        unary("Asinh", "x", "asinh"),
        node("Add", &["cosh", "half"], "ch", vec![]),
        unary("Acosh", "ch", "acosh"),
        node("Elu", &["x"], "elu", attr("alpha", 0.7)),
        // Celu at its default alpha: tract 0.23 leaves out the alpha factor of ONNX's
        // `min(0, alpha · (exp(x / alpha) − 1))` (same thing at alpha 1).
        unary("Celu", "x", "celu"),
        unary("Selu", "x", "selu"),
        node("HardSigmoid", &["x"], "hsig", attr("alpha", 0.3)),
        node("Mul", &["x", "two"], "x2", vec![]),
        unary("HardSwish", "x2", "hsw"),
        node("Pow", &["x", "two"], "sq", vec![]),
        node("Pow", &["sp", "e15"], "p15", vec![]),
    ];
    let outs = [
        "abs", "log", "ss", "asin", "acos", "atanh", "atan", "sin", "cos", "tan", "sinh", "cosh",
        "asinh", "acosh", "elu", "celu", "selu", "hsig", "hsw", "sq", "p15",
    ];
    check(&branches(8, inits, nodes, &outs), &[1, 8]);
}

#[test]
fn step_functions_and_casts_match_tract_exactly() {
    let samples = grid_samples(8);
    let inits = vec![float_tensor("three", &[], vec![3.0])];
    let cast = |x: &str, y: &str, to: i64| node("Cast", &[x], y, vec![("to", Attr::I(to))]);
    let nodes = vec![
        node("Mul", &["x", "three"], "x3", vec![]),
        node("Sign", &["x"], "sign", vec![]),
        node("Floor", &["x3"], "floor", vec![]),
        node("Ceil", &["x3"], "ceil", vec![]),
        node("Round", &["x3"], "round", vec![]),
        // Float → int64 truncates toward zero; → bool tests ≠ 0; back to float.
        cast("x3", "i", 7),
        cast("i", "trunc", 1),
        node("Relu", &["x"], "r", vec![]),
        cast("r", "b", 9),
        cast("b", "nonzero", 1),
        cast("x", "d", 11),
        cast("d", "same", 1),
        node(
            "ThresholdedRelu",
            &["x"],
            "thr",
            vec![("alpha", Attr::F(0.5))],
        ),
    ];
    let outs = [
        "sign", "floor", "ceil", "round", "trunc", "nonzero", "same", "thr",
    ];
    let m = branches(8, inits, nodes, &outs);
    let q = check_on(&m, &samples);
    // Exact: every step of the quantized model lands where the float one does.
    let fid = fidelity(&import_proto(&m).unwrap().graph, &q, &samples).unwrap();
    assert_eq!(fid.max_abs_error, 0.0, "{fid}");
}

#[test]
fn slice_and_pad_attributes_of_old_opsets_match_tract() {
    // Opset 9: Slice takes starts/ends/axes, Pad takes pads (and value) as attributes.
    let ints = |v: &[i64]| Attr::Ints(v.to_vec());
    let nodes = vec![
        node(
            "Slice",
            &["x"],
            "s",
            vec![
                ("starts", ints(&[1, 0])),
                ("ends", ints(&[5, -1])),
                ("axes", ints(&[2, 3])),
            ],
        ),
        node(
            "Pad",
            &["s"],
            "p",
            vec![
                ("pads", ints(&[0, 0, 1, 2, 0, 0, 0, 1])),
                ("value", Attr::F(0.0)),
            ],
        ),
        node("Conv", &["p", "W"], "y", vec![]),
    ];
    let inits = vec![float_tensor("W", &[2, 3, 2, 2], floats(72, 24))];
    let mut m = model(
        nodes,
        inits,
        value_info("x", &[1, 3, 5, 4]),
        value_info_any("y"),
    );
    m.opset_import[0].version = 9;
    check(&m, &[1, 3, 5, 4]);
    // A nonzero pad value, and the edge and reflect modes.
    for (mode, value) in [("constant", 2.0), ("edge", 0.0), ("reflect", 0.0)] {
        let nodes = vec![node(
            "Pad",
            &["x"],
            "y",
            vec![
                ("pads", ints(&[0, 2, 0, 1])),
                ("value", Attr::F(value)),
                ("mode", Attr::S(mode.into())),
            ],
        )];
        let mut m = model(nodes, vec![], value_info("x", &[1, 3]), value_info_any("y"));
        m.opset_import[0].version = 9;
        check(&m, &[1, 3]);
    }
}

#[test]
fn a_model_of_shape_ops_only_satisfies_its_circuit() {
    // The output is input elements as they are: they need cells to be bound to.
    let inits = vec![
        int_tensor("shape", vec![1, 2, 6]),
        int_tensor("starts", vec![1]),
        int_tensor("ends", vec![5]),
        int_tensor("axes", vec![2]),
    ];
    let nodes = vec![
        node("Identity", &["x"], "i", vec![]),
        node("Flatten", &["i"], "f", vec![]),
        node("Reshape", &["f", "shape"], "r", vec![]),
        node("Slice", &["r", "starts", "ends", "axes"], "y", vec![]),
    ];
    let m = model(
        nodes,
        inits,
        value_info("x", &[1, 3, 4]),
        value_info_any("y"),
    );
    let q = check(&m, &[1, 3, 4]);
    assert!(zkinfer_circuits::rows::output_shows_input(&q));
}

#[test]
fn division_by_a_computed_tensor_matches_tract() {
    // y = (x·W) / (sigmoid(x·W) + 0.5): the divisor is computed, in [0.5, 1.5].
    let inits = vec![
        float_tensor("W", &[6, 5], floats(81, 30)),
        float_tensor("half", &[], vec![0.5]),
    ];
    let nodes = vec![
        node("MatMul", &["x", "W"], "h", vec![]),
        node("Sigmoid", &["h"], "s", vec![]),
        node("Add", &["s", "half"], "d", vec![]),
        node("Div", &["h", "d"], "y", vec![]),
    ];
    let m = model(nodes, inits, value_info("x", &[1, 6]), value_info_any("y"));
    check(&m, &[1, 6]);
}

#[test]
fn a_batch_of_several_samples_matches_tract() {
    // x [2, 3, 6, 6]: convolution, pooling and a classifier over a batch of two.
    let inits = vec![
        float_tensor("W", &[4, 3, 3, 3], floats(91, 108)),
        float_tensor("B", &[4], floats(92, 4)),
        float_tensor("Wf", &[4, 5], floats(93, 20)),
    ];
    let nodes = vec![
        node(
            "Conv",
            &["x", "W", "B"],
            "c",
            vec![("pads", Attr::Ints(vec![1, 1, 1, 1]))],
        ),
        node("Relu", &["c"], "r", vec![]),
        node(
            "MaxPool",
            &["r"],
            "p",
            vec![
                ("kernel_shape", Attr::Ints(vec![2, 2])),
                ("strides", Attr::Ints(vec![2, 2])),
            ],
        ),
        node("GlobalAveragePool", &["p"], "g", vec![]),
        node("Flatten", &["g"], "f", vec![]),
        node("MatMul", &["f", "Wf"], "y", vec![]),
    ];
    let m = model(
        nodes,
        inits,
        value_info("x", &[2, 3, 6, 6]),
        value_info_any("y"),
    );
    check(&m, &[2, 3, 6, 6]);
}

#[test]
fn padded_max_pooling_of_negative_values_ignores_the_padding() {
    // ONNX pads max pooling with −∞: a window of negative values at the border keeps its
    // own maximum, not the padding's 0.
    let nodes = vec![node(
        "MaxPool",
        &["x"],
        "y",
        vec![
            ("kernel_shape", Attr::Ints(vec![3, 3])),
            ("strides", Attr::Ints(vec![2, 2])),
            ("pads", Attr::Ints(vec![1, 1, 1, 1])),
        ],
    )];
    let m = model(
        nodes,
        vec![],
        value_info("x", &[1, 2, 5, 5]),
        value_info_any("y"),
    );
    let n = 50;
    let negative: Vec<Vec<f32>> = (0..3)
        .map(|s| floats(s, n).iter().map(|v| -v.abs() - 0.1).collect())
        .collect();
    check_on(&m, &negative);
    check(&m, &[1, 2, 5, 5]);
}

#[test]
fn one_dimensional_convolution_and_pooling_match_tract() {
    // x [1, 3, 12] as PyTorch's Conv1d/MaxPool1d/AvgPool1d export it.
    let ints = |v: &[i64]| Attr::Ints(v.to_vec());
    let inits = vec![
        float_tensor("W", &[4, 3, 3], floats(101, 36)),
        float_tensor("B", &[4], floats(102, 4)),
        float_tensor("W2", &[4, 2, 2], floats(103, 16)),
    ];
    let nodes = vec![
        node(
            "Conv",
            &["x", "W", "B"],
            "c",
            vec![("pads", ints(&[1, 1])), ("dilations", ints(&[2]))],
        ),
        node(
            "MaxPool",
            &["c"],
            "m",
            vec![
                ("kernel_shape", ints(&[3])),
                ("strides", ints(&[2])),
                ("pads", ints(&[1, 1])),
            ],
        ),
        node(
            "Conv",
            &["m", "W2"],
            "g",
            vec![("group", Attr::I(2)), ("strides", ints(&[1]))],
        ),
        node(
            "AveragePool",
            &["g"],
            "a",
            vec![("kernel_shape", ints(&[2])), ("strides", ints(&[1]))],
        ),
        node("GlobalAveragePool", &["a"], "y", vec![]),
    ];
    let m = model(
        nodes,
        inits,
        value_info("x", &[1, 3, 12]),
        value_info_any("y"),
    );
    check(&m, &[1, 3, 12]);
}

#[test]
fn average_pool_with_ceil_mode_matches_tract() {
    // x [1, 2, 5, 6], 2x3 windows, stride 2: the last windows run past the end (not
    // counted), with padding counted or not.
    let ints = |v: &[i64]| Attr::Ints(v.to_vec());
    for include in [0, 1] {
        let nodes = vec![node(
            "AveragePool",
            &["x"],
            "y",
            vec![
                ("kernel_shape", ints(&[2, 3])),
                ("strides", ints(&[2, 2])),
                ("pads", ints(&[1, 0, 0, 1])),
                ("ceil_mode", Attr::I(1)),
                ("count_include_pad", Attr::I(include)),
            ],
        )];
        let m = model(
            nodes,
            vec![],
            value_info("x", &[1, 2, 5, 6]),
            value_info_any("y"),
        );
        check(&m, &[1, 2, 5, 6]);
    }
}

#[test]
fn three_d_convolution_and_pooling_match_tract() {
    // x [1, 2, 3, 4, 5]: a 3-D convolution (padding, stride, bias), then max pooling with
    // padding and average pooling with uncounted padding and ceil_mode, joined.
    let ints = |v: &[i64]| Attr::Ints(v.to_vec());
    let inits = vec![
        float_tensor("W", &[3, 2, 2, 2, 3], floats(95, 72)),
        float_tensor("B", &[3], vec![0.1, -0.2, 0.05]),
    ];
    let nodes = vec![
        node(
            "Conv",
            &["x", "W", "B"],
            "c",
            vec![
                ("pads", ints(&[1, 0, 1, 0, 1, 1])),
                ("strides", ints(&[1, 2, 1])),
            ],
        ),
        node(
            "MaxPool",
            &["c"],
            "m",
            vec![
                ("kernel_shape", ints(&[2, 2, 2])),
                ("pads", ints(&[1, 1, 0, 0, 0, 1])),
            ],
        ),
        node(
            "AveragePool",
            &["c"],
            "a",
            vec![
                ("kernel_shape", ints(&[2, 2, 3])),
                ("strides", ints(&[2, 1, 2])),
                ("pads", ints(&[0, 1, 1, 0, 0, 1])),
                ("ceil_mode", Attr::I(1)),
            ],
        ),
        node("Flatten", &["m"], "mf", vec![("axis", Attr::I(0))]),
        node("Flatten", &["a"], "af", vec![("axis", Attr::I(0))]),
        node("Concat", &["mf", "af"], "y", vec![("axis", Attr::I(1))]),
    ];
    let m = model(
        nodes,
        inits,
        value_info("x", &[1, 2, 3, 4, 5]),
        value_info_any("y"),
    );
    check(&m, &[1, 2, 3, 4, 5]);
}

#[test]
fn clip_by_computed_bounds_matches_tract() {
    // Bounds computed from x: lo its mean (a scalar), hi = lo + 0.5; Clip with both,
    // with lo only, and with hi only (then the constant lower bound of the attribute-less
    // form is none).
    let inits = vec![float_tensor("half", &[], vec![0.5])];
    let nodes = vec![
        node("ReduceMean", &["x"], "lo", vec![("keepdims", Attr::I(0))]),
        node("Add", &["lo", "half"], "hi", vec![]),
        node("Clip", &["x", "lo", "hi"], "both", vec![]),
        node("Clip", &["x", "lo"], "low", vec![]),
        node("Clip", &["x", "", "hi"], "high", vec![]),
        node(
            "Concat",
            &["both", "low", "high"],
            "y",
            vec![("axis", Attr::I(0))],
        ),
    ];
    let m = model(nodes, inits, value_info("x", &[2, 3]), value_info_any("y"));
    check(&m, &[2, 3]);
}

/// Samples on the grid (4k + 1)/64: exact at the input scale, never 0, and 3x never
/// within 1/64 of an integer or a half, so rounding cannot flip a step.
fn grid_samples(n: usize) -> Vec<Vec<f32>> {
    (0..3)
        .map(|s| {
            floats(s, n)
                .iter()
                .map(|v| ((v * 16.0).round() * 4.0 + 1.0) / 64.0)
                .collect()
        })
        .collect()
}

#[test]
fn comparisons_logic_and_where_match_tract_exactly() {
    let inits = vec![
        float_tensor("three", &[], vec![3.0]),
        float_tensor("c03", &[], vec![0.3]),
    ];
    let bin = |op: &str, a: &str, b: &str, y: &str| node(op, &[a, b], y, vec![]);
    let float = |x: &str, y: &str| node("Cast", &[x], y, vec![("to", Attr::I(1))]);
    let nodes = vec![
        bin("Mul", "x", "three", "x3"),
        node("Neg", &["x"], "negx", vec![]),
        node("Round", &["x3"], "round", vec![]),
        node("Floor", &["x3"], "floor", vec![]),
        bin("Less", "x", "c03", "lt"),
        bin("Greater", "x", "negx", "gt"),
        bin("LessOrEqual", "round", "floor", "le"),
        bin("GreaterOrEqual", "x", "c03", "ge"),
        bin("Equal", "round", "floor", "eq"),
        node("Not", &["lt"], "not", vec![]),
        bin("And", "lt", "gt", "and"),
        bin("Or", "lt", "gt", "or"),
        bin("Xor", "eq", "gt", "xor"),
        node("Where", &["gt", "x", "negx"], "abs", vec![]),
        float("lt", "f1"),
        float("gt", "f2"),
        float("le", "f3"),
        float("ge", "f4"),
        float("eq", "f5"),
        float("not", "f6"),
        float("and", "f7"),
        float("or", "f8"),
        float("xor", "f9"),
    ];
    let outs = ["f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "abs"];
    let m = branches(8, inits, nodes, &outs);
    let samples = grid_samples(8);
    let q = check_on(&m, &samples);
    let fid = fidelity(&import_proto(&m).unwrap().graph, &q, &samples).unwrap();
    assert_eq!(fid.max_abs_error, 0.0, "{fid}");
}

/// The last value a lookup produces: a comparison's bit, an argmax's index.
fn last_lookup(q: &zkinfer_qir::QModel) -> zkinfer_qir::ValueId {
    q.ops
        .iter()
        .rev()
        .find_map(|op| match op {
            zkinfer_qir::QOp::Rescale(r) if matches!(r.act, zkinfer_qir::Activation::Table(_)) => {
                Some(r.output)
            }
            _ => None,
        })
        .expect("a lookup")
}

/// Changes element 0 of `id` in the integer interpreter's trace (and of the public output
/// with it, where the output is the same cells), and asserts that MockProver refuses it.
fn assert_tampering_refused(
    q: &zkinfer_qir::QModel,
    sample: &[f32],
    id: zkinfer_qir::ValueId,
    f: impl Fn(i64) -> i64,
) {
    assert_trace_refused(q, sample, |trace| {
        let same_cells = trace.get(id) == trace.get(q.output);
        let v = f(trace.values[id.0][0]);
        trace.values[id.0][0] = v;
        if same_cells {
            trace.values[q.output.0][0] = v;
        }
    });
}

/// Changes the integer interpreter's trace of `sample` with `tamper` (the public output
/// is read from the changed trace), and asserts that MockProver refuses it.
fn assert_trace_refused(
    q: &zkinfer_qir::QModel,
    sample: &[f32],
    tamper: impl FnOnce(&mut zkinfer_qir::Trace),
) {
    let mut trace = q.run(&quantize_input(q, sample)).unwrap();
    let (plan, _) = plan_layout(q, Default::default(), None, Default::default()).unwrap();
    tamper(&mut trace);
    let instances = ModelCircuit::instances(q, &plan.layout, &trace, &Default::default());
    let circuit =
        ModelCircuit::with_trace(Arc::new(q.clone()), plan.layout.clone(), Arc::new(trace));
    let prover = MockProver::run(plan.layout.k, &circuit, vec![instances]).unwrap();
    assert!(prover.verify().is_err(), "a tampered value was accepted");
}

#[test]
fn a_tampered_comparison_bit_fails_the_circuit() {
    // Less(x, 0.3): flip one proven bit; the public output (a cast: the same cells) is
    // changed with it, so that only the comparison itself can refuse it.
    let inits = vec![float_tensor("c03", &[], vec![0.3])];
    let nodes = vec![
        node("Less", &["x", "c03"], "lt", vec![]),
        node("Cast", &["lt"], "y", vec![("to", Attr::I(1))]),
    ];
    let m = model(nodes, inits, value_info("x", &[1, 8]), value_info_any("y"));
    let samples = grid_samples(8);
    let q = check_on(&m, &samples);
    let bit = last_lookup(&q);
    let one = 1i64 << q.value(bit).scale;
    assert_tampering_refused(&q, &samples[0], bit, |v| one - v);
}

#[test]
fn argmax_and_argmin_match_tract_exactly_ties_included() {
    // Grid inputs tie often: the first (ArgMax) and last (ArgMin, select_last_index)
    // of equal values must be taken, exactly as the float model does.
    let nodes = vec![
        node("ArgMax", &["x"], "amax", vec![("axis", Attr::I(2))]),
        node(
            "ArgMin",
            &["x"],
            "amin",
            vec![
                ("axis", Attr::I(1)),
                ("keepdims", Attr::I(0)),
                ("select_last_index", Attr::I(1)),
            ],
        ),
        node("Cast", &["amax"], "fmax", vec![("to", Attr::I(1))]),
        node("Cast", &["amin"], "fmin", vec![("to", Attr::I(1))]),
        node("Flatten", &["fmax"], "a", vec![]),
        node("Flatten", &["fmin"], "b", vec![]),
        node("Concat", &["a", "b"], "y", vec![("axis", Attr::I(1))]),
    ];
    let m = model(
        nodes,
        vec![],
        value_info("x", &[1, 2, 8]),
        value_info_any("y"),
    );
    let samples: Vec<Vec<f32>> = grid_samples(16)
        .into_iter()
        .map(|s| {
            s.iter()
                .map(|v| (v * 4.0).round() / 4.0 + 1.0 / 64.0)
                .collect()
        })
        .collect();
    let q = check_on(&m, &samples);
    let fid = fidelity(&import_proto(&m).unwrap().graph, &q, &samples).unwrap();
    assert_eq!(fid.max_abs_error, 0.0, "{fid}");
}

#[test]
fn a_wrong_argmax_fails_the_circuit() {
    let inits = vec![float_tensor("W", &[8, 6], floats(111, 48))];
    let nodes = vec![
        node("MatMul", &["x", "W"], "h", vec![]),
        node("ArgMax", &["h"], "i", vec![("axis", Attr::I(1))]),
        node("Cast", &["i"], "y", vec![("to", Attr::I(1))]),
    ];
    let m = model(nodes, inits, value_info("x", &[1, 8]), value_info_any("y"));
    let samples = grid_samples(8);
    let q = check_on(&m, &samples);
    let index = last_lookup(&q);
    let one = 1i64 << q.value(index).scale;
    // Another index (the next one, or the one before the last).
    assert_tampering_refused(&q, &samples[0], index, |v| {
        if v < 5 * one {
            v + one
        } else {
            v - one
        }
    });
}

/// `TopK` (largest over the last axis, smallest over axis 1, opset 11): values and
/// indices, ties by lower index first.
fn top_k_model() -> ModelProto {
    let float = |x: &str, y: &str| node("Cast", &[x], y, vec![("to", Attr::I(1))]);
    let flat = |x: &str, y: &str| node("Flatten", &[x], y, vec![]);
    let top_k = |k: &str, out: &str, attrs| {
        let mut n = node("TopK", &["x", k], out, attrs);
        n.output.push(format!("{out}_i"));
        n
    };
    let nodes = vec![
        top_k("k3", "hi", vec![]),
        top_k(
            "k2",
            "lo",
            vec![("axis", Attr::I(1)), ("largest", Attr::I(0))],
        ),
        float("hi_i", "hi_f"),
        float("lo_i", "lo_f"),
        flat("hi", "a"),
        flat("hi_f", "b"),
        flat("lo", "c"),
        flat("lo_f", "d"),
        node(
            "Concat",
            &["a", "b", "c", "d"],
            "y",
            vec![("axis", Attr::I(1))],
        ),
    ];
    let inits = vec![int_tensor("k3", vec![3]), int_tensor("k2", vec![2])];
    model(
        nodes,
        inits,
        value_info("x", &[1, 2, 8]),
        value_info_any("y"),
    )
}

#[test]
fn top_k_matches_tract_exactly_ties_included() {
    let m = top_k_model();
    let samples: Vec<Vec<f32>> = grid_samples(16)
        .into_iter()
        .map(|s| {
            s.iter()
                .map(|v| (v * 4.0).round() / 4.0 + 1.0 / 8.0)
                .collect()
        })
        .collect();
    // Multiples of 1/8 are exact at the output's scale, so the values must come out
    // exactly too. The grid does tie: the order of equal values is tested, not assumed.
    assert!(samples.iter().any(|s| {
        let row = &s[..8];
        (0..8).any(|i| (i + 1..8).any(|j| row[i] == row[j]))
    }));
    let q = check_on(&m, &samples);
    let fid = fidelity(&import_proto(&m).unwrap().graph, &q, &samples).unwrap();
    assert_eq!(fid.max_abs_error, 0.0, "{fid}");
}

#[test]
fn a_wrong_top_k_fails_the_circuit() {
    let m = top_k_model();
    let samples = grid_samples(16);
    let q = check_on(&m, &samples);
    let named = |suffix: &str| {
        let at = q.values.iter().position(|v| v.name.ends_with(suffix));
        zkinfer_qir::ValueId(at.unwrap_or_else(|| panic!("no value `…{suffix}`")))
    };
    // A second-round index moved by one; a first-round pick that says candidate 0 was
    // (or was not) taken, so that it could be taken again or never.
    let index = named("hi_i/topk/round1/index");
    let one = 1i64 << q.value(index).scale;
    assert_tampering_refused(&q, &samples[0], index, |v| {
        if v < one {
            v + one
        } else {
            v - one
        }
    });
    assert_tampering_refused(&q, &samples[0], named("hi_i/topk/round0/hot0"), |v| 1 - v);
    // A value that is not the row's extreme.
    assert_tampering_refused(&q, &samples[0], named("hi_i/topk/round0/extreme/m7"), |v| {
        v - 1
    });
}

#[test]
fn softmax_over_any_axis_matches_tract() {
    // Opset 13: over axis 1 of [1, 4, 3]; opset 11: flattened from axis 1 of [1, 2, 3, 2].
    let nodes = vec![node("Softmax", &["x"], "y", vec![("axis", Attr::I(1))])];
    let m = model(
        nodes.clone(),
        vec![],
        value_info("x", &[1, 4, 3]),
        value_info_any("y"),
    );
    check(&m, &[1, 4, 3]);
    let mut m = model(
        nodes,
        vec![],
        value_info("x", &[1, 2, 3, 2]),
        value_info_any("y"),
    );
    m.opset_import[0].version = 11;
    check(&m, &[1, 2, 3, 2]);
}

#[test]
fn max_pooling_with_ceil_mode_matches_tract() {
    // 5 × 6 input, kernel 2, stride 2: ceil mode gives 3 × 3 windows, the last ones
    // running past the end.
    let nodes = vec![node(
        "MaxPool",
        &["x"],
        "y",
        vec![
            ("kernel_shape", Attr::Ints(vec![2, 2])),
            ("strides", Attr::Ints(vec![2, 2])),
            ("ceil_mode", Attr::I(1)),
        ],
    )];
    let m = model(
        nodes,
        vec![],
        value_info("x", &[1, 2, 5, 6]),
        value_info_any("y"),
    );
    let q = check(&m, &[1, 2, 5, 6]);
    assert_eq!(q.value(q.output).shape, [1, 2, 3, 3]);
}

#[test]
fn several_inputs_and_outputs_are_packed_in_order() {
    // Inputs x [1, 4] and y [1, 3]; outputs a = x·W + y and b = relu(y), packed.
    let inits = vec![float_tensor("W", &[4, 3], floats(121, 12))];
    let nodes = vec![
        node("MatMul", &["x", "W"], "h", vec![]),
        node("Add", &["h", "y"], "a", vec![]),
        node("Relu", &["y"], "b", vec![]),
    ];
    let mut m = model(nodes, inits, value_info("x", &[1, 4]), value_info_any("a"));
    let g = m.graph.as_mut().unwrap();
    g.input.push(value_info("y", &[1, 3]));
    g.output.push(value_info_any("b"));
    let imported = import_proto(&m).unwrap();
    let names =
        |parts: &[zkinfer_qir::Part]| parts.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&imported.graph.inputs), ["x", "y"]);
    assert_eq!(names(&imported.graph.outputs), ["a", "b"]);
    assert!(
        imported.notes.iter().any(|n| n.contains("packed")),
        "{:?}",
        imported.notes
    );
    let q = check(&m, &[7]);
    assert_eq!(q.value(q.input).shape, [7]);
    assert_eq!(q.value(q.output).shape, [6]);
    // An EZKL input file gives one array per input.
    let text = r#"{"input_data": [[0.1, 0.2, 0.3, 0.4], [0.5, -0.6, 0.7]]}"#;
    let shapes: Vec<Vec<usize>> = imported
        .graph
        .inputs
        .iter()
        .map(|p| p.shape.clone())
        .collect();
    let d = zkinfer_compiler::parse_input_json(text, &shapes).unwrap();
    assert_eq!(d.samples[0].len(), 7);
}

/// A graph input of ONNX element type `elem` (7 int64, 9 bool).
fn typed_value_info(name: &str, dims: &[i64], elem: i32) -> tract_onnx::pb::ValueInfoProto {
    let mut v = value_info(name, dims);
    if let Some(tract_onnx::pb::type_proto::Value::TensorType(t)) =
        v.r#type.as_mut().and_then(|t| t.value.as_mut())
    {
        t.elem_type = elem;
    }
    v
}

#[test]
fn integer_and_boolean_inputs_are_numbers() {
    // ids: int64 [1, 3], keep: bool [1, 3], x: float [1, 3];
    // y = Where(keep, x · ids, 0.5), proven; ids that a 2^0 scale cannot hold are refused.
    let typed = |name: &str, elem: i32| typed_value_info(name, &[1, 3], elem);
    let inits = vec![float_tensor("half", &[], vec![0.5])];
    let nodes = vec![
        node("Cast", &["ids"], "f", vec![("to", Attr::I(1))]),
        node("Mul", &["x", "f"], "p", vec![]),
        node("Where", &["keep", "p", "half"], "y", vec![]),
    ];
    let mut m = model(nodes, inits, typed("ids", 7), value_info_any("y"));
    let g = m.graph.as_mut().unwrap();
    g.input.push(typed("keep", 9));
    g.input.push(value_info("x", &[1, 3]));
    let graph = import_proto(&m).unwrap().graph;
    assert!(graph.inputs[0].integer && graph.inputs[1].integer && !graph.inputs[2].integer);
    // Packed: ids, keep, x.
    let samples: Vec<Vec<f32>> = (0..3)
        .map(|s| {
            let x = floats(s, 3);
            let mut v = vec![s as f32, 2.0, -3.0, 1.0, 0.0, 1.0];
            v.extend(x);
            v
        })
        .collect();
    for v in &samples {
        let y = &graph.run(v).unwrap()[&graph.output].data;
        let expected: Vec<f32> = (0..3)
            .map(|i| {
                if v[3 + i] != 0.0 {
                    v[6 + i] * v[i]
                } else {
                    0.5
                }
            })
            .collect();
        assert_eq!(y, &expected);
    }
    let cal = calibrate(&graph, &samples).unwrap();
    let q = quantize(&graph, &cal, QuantConfig::default()).unwrap();
    satisfied(&q, &samples[1]);
}

#[test]
fn integer_division_truncates_and_integer_constants_are_numbers() {
    // a: int64 [1, 4]; y = a / 3 + a / -7 + 1 on integers (ONNX's Div truncates toward
    // zero, as Rust's does).
    let a = typed_value_info("a", &[1, 4], 7);
    let inits = vec![
        int_tensor("three", vec![3]),
        int_tensor("minus_seven", vec![-7]),
        int_tensor("one", vec![1]),
    ];
    let nodes = vec![
        node("Div", &["a", "three"], "q", vec![]),
        node("Div", &["a", "minus_seven"], "p", vec![]),
        node("Add", &["q", "p"], "s", vec![]),
        node("Add", &["s", "one"], "r", vec![]),
        node("Cast", &["r"], "y", vec![("to", Attr::I(1))]),
    ];
    let m = model(nodes, inits, a, value_info_any("y"));
    let graph = import_proto(&m).unwrap().graph;
    let want = |v: f32| (v as i64 / 3 + v as i64 / -7 + 1) as f32;
    let x = [7.0, -7.0, 2.0, 10.0];
    let y = &graph.run(&x).unwrap()[&graph.output].data;
    assert_eq!(y, &[2.0, 0.0, 1.0, 3.0]);
    assert_eq!(y, &x.map(want));
    // Quantized, the divisions are exact on every integer calibration saw, exact
    // multiples (which a reciprocal rounded to nearest put one below) and negative ones
    // included, and the circuit is satisfied.
    let samples: Vec<Vec<f32>> = (-64..64)
        .step_by(4)
        .map(|s| (s..s + 4).map(|v| v as f32).collect())
        .collect();
    let cal = calibrate(&graph, &samples).unwrap();
    let q = quantize(&graph, &cal, QuantConfig::default()).unwrap();
    let scale = q.value(q.output).scale;
    for x in &samples {
        let trace = q.run(&quantize_input(&q, x)).unwrap();
        let got: Vec<f32> = trace
            .get(q.output)
            .iter()
            .map(|&v| zkinfer_qir::dequantize(v, scale) as f32)
            .collect();
        let expected: Vec<f32> = x.iter().map(|&v| want(v)).collect();
        assert_eq!(got, expected, "{x:?}");
    }
    // Where no scales make it exact (5-bit activations: a quotient's fractional bits
    // and its integer part do not both fit), the division is refused, not approximated.
    let narrow = QuantConfig {
        act_bits: 5,
        ..Default::default()
    };
    let err = quantize(&graph, &cal, narrow).unwrap_err().to_string();
    assert!(err.contains("exact"), "{err}");
    satisfied(&q, &[-21.0, -42.0, 21.0, -63.0]);
}

#[test]
fn gemm_of_computed_operands_and_a_computed_c_matches_tract() {
    // Y = A · Bᵀ + C with A [2, 5], B [3, 5] and C [2, 3] all graph inputs;
    // Z = Gemm(A, W) + C with a constant W and a computed C (U: times beta);
    // V = 0.5 · B · Aᵀ - 2 · K with two computed operands and a constant C.
    let inits = vec![
        float_tensor("W", &[5, 3], floats(131, 15)),
        float_tensor("K", &[1, 2], floats(132, 2)),
    ];
    let nodes = vec![
        node("Gemm", &["A", "B", "C"], "Y", vec![("transB", Attr::I(1))]),
        node("Gemm", &["A", "W", "C"], "Z", vec![]),
        node(
            "Gemm",
            &["B", "A", "K"],
            "V",
            vec![
                ("transB", Attr::I(1)),
                ("alpha", Attr::F(0.5)),
                ("beta", Attr::F(-2.0)),
            ],
        ),
        node("Gemm", &["A", "W", "C"], "U", vec![("beta", Attr::F(0.25))]),
    ];
    let mut m = model(nodes, inits, value_info("A", &[2, 5]), value_info_any("Y"));
    let g = m.graph.as_mut().unwrap();
    g.input.push(value_info("B", &[3, 5]));
    g.input.push(value_info("C", &[2, 3]));
    for out in ["Z", "V", "U"] {
        g.output.push(value_info_any(out));
    }
    check(&m, &[31]);
}

#[test]
fn padded_average_pooling_without_the_padding_in_the_count_matches_tract() {
    // count_include_pad = 0 (the default): border windows divide by the taps inside.
    let nodes = vec![node(
        "AveragePool",
        &["x"],
        "y",
        vec![
            ("kernel_shape", Attr::Ints(vec![3, 3])),
            ("strides", Attr::Ints(vec![2, 2])),
            ("pads", Attr::Ints(vec![1, 1, 1, 1])),
        ],
    )];
    let m = model(
        nodes,
        vec![],
        value_info("x", &[1, 2, 5, 5]),
        value_info_any("y"),
    );
    check(&m, &[1, 2, 5, 5]);
}

#[test]
fn cast_needs_a_known_type() {
    let nodes = vec![node("Cast", &["x"], "y", vec![("to", Attr::I(8))])];
    let m = model(nodes, vec![], value_info("x", &[1, 4]), value_info_any("y"));
    let e = import_proto(&m).unwrap_err().to_string();
    assert!(e.contains("casting to STRING"), "{e}");
}

#[test]
fn slice_gather_and_pad_match_tract() {
    // x [1, 3, 5, 4]: slice with negative index and step, gather channels, zero-pad
    // on two sides, then a conv so the result feeds real rows.
    let inits = vec![
        int_tensor("starts", vec![1, -1]),
        int_tensor("ends", vec![5, -5]),
        int_tensor("axes", vec![2, 3]),
        int_tensor("steps", vec![2, -1]),
        int_tensor("ch", vec![2, 0]),
        int_tensor("pads", vec![0, 0, 1, 2, 0, 0, 0, 1]),
        float_tensor("W", &[2, 2, 2, 2], floats(71, 16)),
    ];
    let nodes = vec![
        node(
            "Slice",
            &["x", "starts", "ends", "axes", "steps"],
            "s",
            vec![],
        ),
        node("Gather", &["s", "ch"], "g", vec![("axis", Attr::I(1))]),
        node("Pad", &["g", "pads"], "p", vec![]),
        node("Conv", &["p", "W"], "y", vec![]),
    ];
    let mut m = model(
        nodes,
        inits,
        value_info("x", &[1, 3, 5, 4]),
        value_info_any("y"),
    );
    m.opset_import[0].version = 13;
    check(&m, &[1, 3, 5, 4]);
}

#[test]
fn target_size_takes_the_narrowest_acceptable_width_and_accuracy_the_best() {
    use zkinfer_compiler::quantize::acceptable;
    use zkinfer_compiler::{parse_input_json, quantize_for_target, Target};
    let dir = shared_models();
    let graph = import_onnx(&dir.join("lenet5.onnx")).unwrap().graph;
    let text = std::fs::read_to_string(dir.join("lenet5.input.json")).unwrap();
    let data = parse_input_json(&text, &[graph.input_shape().to_vec()]).unwrap();
    let cal = calibrate(&graph, &data.samples).unwrap();
    let (q, f, trials) =
        quantize_for_target(&graph, &cal, &data.samples, 12, Target::Size).unwrap();
    assert!(acceptable(&f), "{f}");
    for (b, r) in &trials {
        if *b < q.act_bits {
            assert!(
                r.as_ref().map_or(true, |f| !acceptable(f)),
                "{b} bits was enough: {r:?}"
            );
        }
    }
    let (qa, fa, _) =
        quantize_for_target(&graph, &cal, &data.samples, 12, Target::Accuracy).unwrap();
    assert!(
        qa.act_bits >= q.act_bits && fa.max_abs_error <= f.max_abs_error,
        "{fa} vs {f}"
    );
}

/// MockProver: `c`'s circuit is satisfied by the integer interpreter's trace of the first
/// sample of `text` (EZKL's input JSON).
fn satisfied_on_its_input(c: &zkinfer_prover::artifact::CompiledCircuit, text: &str) {
    let data =
        zkinfer_compiler::parse_input_json(text, &[c.model.value(c.model.input).shape.clone()])
            .unwrap();
    let q = &c.model;
    let trace = q.run(&quantize_input(q, &data.samples[0])).unwrap();
    let instances = ModelCircuit::instances(q, &c.plan.layout, &trace, &Default::default());
    let circuit =
        ModelCircuit::with_trace(Arc::new(q.clone()), c.plan.layout.clone(), Arc::new(trace));
    let prover = MockProver::run(c.plan.layout.k, &circuit, vec![instances]).unwrap();
    assert_eq!(prover.verify(), Ok(()));
}

/// The default widths: of those whose circuit costs what the 12-bit one does (12-bit
/// weights), the most accurate on the calibration samples. Where the rows set `k`
/// (resnet8_c16: 49k rows of work at k 15) it widens the activations and weights, keeps
/// `k` and the predicted prove time, lowers the error, and the circuit is satisfied by
/// the integer interpreter; where the 2^bits-row table set `k` (mlp_tiny), range checks
/// in limbs make `k` smaller and wider activations cheap.
#[test]
fn the_default_widths_are_the_most_accurate_that_cost_what_12_bits_do() {
    use zkinfer_pipeline::{compile, costs_no_more, Bits, CompileOptions, Cost, WIDEST_BITS};
    let compile_at = |path: &std::path::Path, bits, weight_bits| {
        let text = std::fs::read_to_string(path.with_extension("input.json")).unwrap();
        let options = CompileOptions {
            bits,
            weight_bits,
            ..CompileOptions::default()
        };
        (compile(path, &text, &options).unwrap(), text)
    };
    let path = shared_models().join("large/resnet8_c16.onnx");
    let (wide, text) = compile_at(&path, Bits::Widest, None);
    let (narrow, _) = compile_at(&path, Bits::Fixed(*WIDEST_BITS.start()), Some(12));
    let (c, n) = (&wide.circuits[0], &narrow.circuits[0]);
    assert!(
        c.model.act_bits > 12,
        "resnet8_c16 stayed at {} bits",
        c.model.act_bits
    );
    assert_eq!(c.plan.layout.k, n.plan.layout.k);
    let cost = |c: &zkinfer_prover::artifact::CompiledCircuit| Cost::of(&c.plan);
    // resnet8_c16's k is set by its rows: the one-table 12-bit circuit's is the same.
    let max_k = n.plan.layout.k;
    assert!(costs_no_more(cost(c), cost(n), max_k));
    assert!(
        c.fidelity.max_abs_error < n.fidelity.max_abs_error,
        "{} vs {}",
        c.fidelity,
        n.fidelity
    );
    // The first trial is the reference; the chosen one is the most accurate of those
    // that cost no more, and it is what was compiled.
    let w = &wide.widths;
    assert_eq!((w[0].act_bits, w[0].weight_bits), (12, 12));
    // One calibration sample: no widths per tensor (too few to tell them from noise).
    assert!(w
        .iter()
        .all(|t| t.widened == zkinfer_pipeline::Widened::Model));
    let taken: Vec<_> = w.iter().filter(|t| t.taken).collect();
    assert_eq!(taken.len(), 1, "{w:?}");
    assert_eq!(taken[0].act_bits, c.model.act_bits);
    let best = taken[0].fidelity.as_ref().unwrap().max_abs_error;
    assert_eq!(best, c.fidelity.max_abs_error);
    for t in w {
        let free = costs_no_more(t.plan.clone().unwrap(), cost(n), max_k);
        assert_eq!(free, t.fidelity.is_some(), "{t:?}");
        if let Some(f) = &t.fidelity {
            assert!(
                f.max_abs_error >= best,
                "{t:?} is more accurate than the chosen"
            );
        }
    }
    // Every activation width is tried (cost is not monotonic in it), then the weights.
    let acts: Vec<u32> = w
        .iter()
        .filter(|t| t.weight_bits == 12)
        .map(|t| t.act_bits)
        .collect();
    assert_eq!(acts, WIDEST_BITS.collect::<Vec<_>>());

    satisfied_on_its_input(c, &text);

    // mlp_tiny does 200 rows of work: one 2^12-row table of every value set its k (13);
    // with range checks in limbs the table is a few hundred rows, and 2 more bits cost
    // less than WIDEST_SLACK_S.
    let tiny_path = shared_models().join("mlp_tiny.onnx");
    let (tiny, _) = compile_at(&tiny_path, Bits::Widest, None);
    let text = std::fs::read_to_string(tiny_path.with_extension("input.json")).unwrap();
    let one_table = CompileOptions {
        bits: Bits::Fixed(12),
        weight_bits: Some(12),
        range: zkinfer_circuits::RangeCheck::Table,
        ..CompileOptions::default()
    };
    let table = compile(&tiny_path, &text, &one_table).unwrap();
    let (t, r) = (&tiny.circuits[0], &table.circuits[0]);
    assert!(t.model.act_bits > 12, "{:?}", tiny.widths);
    assert!(t.plan.layout.limb_bits > 0);
    assert_eq!(r.plan.layout.k, 13);
    assert!(t.plan.layout.k < r.plan.layout.k, "{:?}", tiny.widths);
    assert!(t.fidelity.max_abs_error < r.fidelity.max_abs_error);
}

/// Where a model's tabulated functions would set `k` at wider activations (attn_block:
/// exp, erf, reciprocal and rsqrt, each a table of every activation value), the default
/// reads them at a narrower width than the activations: the chosen circuit costs what
/// the 12-bit one does, has less error than the widest circuit whose tables hold every
/// activation value (the default before), and is satisfied by the integer interpreter.
#[test]
fn narrower_function_tables_buy_wider_activations() {
    use zkinfer_pipeline::{compile, costs_no_more, Bits, CompileOptions, Cost};
    let path = shared_models().join("attn_block.onnx");
    let text = std::fs::read_to_string(path.with_extension("input.json")).unwrap();
    let at = |bits, table_bits| {
        let options = CompileOptions {
            bits,
            table_bits,
            ..CompileOptions::default()
        };
        compile(&path, &text, &options).unwrap()
    };
    let chosen = at(Bits::Widest, None);
    // A table width at or above the activations' is theirs: the tables hold every value.
    let full = at(Bits::Widest, Some(16));
    let reference = at(Bits::Fixed(12), None);
    let (c, f, r) = (
        &chosen.circuits[0],
        &full.circuits[0],
        &reference.circuits[0],
    );
    assert!(f.model.tables.iter().all(|t| t.in_bits == 0));
    let narrowed: Vec<_> = c.model.tables.iter().filter(|t| t.in_bits > 0).collect();
    assert!(!narrowed.is_empty(), "{:?}", chosen.widths);
    assert!(narrowed
        .iter()
        .all(|t| t.func.is_continuous() && t.in_bits < c.model.act_bits));
    assert!(c.model.act_bits > f.model.act_bits, "{:?}", chosen.widths);
    let max_k = r.plan.layout.k;
    assert!(costs_no_more(Cost::of(&c.plan), Cost::of(&r.plan), max_k));
    assert!(
        c.fidelity.max_abs_error < f.fidelity.max_abs_error,
        "{} vs {}",
        c.fidelity,
        f.fidelity
    );
    // The trial chosen is the one compiled, and it says which width its tables read.
    let taken: Vec<_> = chosen.widths.iter().filter(|t| t.taken).collect();
    assert_eq!(taken.len(), 1, "{:?}", chosen.widths);
    assert_eq!(taken[0].table_bits, narrowed[0].in_bits);

    satisfied_on_its_input(c, &text);
}

/// A node of the `ai.onnx.ml` domain with the given outputs.
fn ml_node(op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<(&str, Attr)>) -> NodeProto {
    let mut n = node(op, inputs, outputs[0], attrs);
    n.domain = "ai.onnx.ml".into();
    n.output = outputs.iter().map(|o| o.to_string()).collect();
    n
}

/// `m` importing the `ai.onnx.ml` opset too.
fn with_ml_opset(mut m: ModelProto) -> ModelProto {
    m.opset_import.push(tract_onnx::pb::OperatorSetIdProto {
        domain: "ai.onnx.ml".into(),
        version: 1,
    });
    m
}

/// Two trees over 4 features: tree 0 `f0 ≤ 0.1 ? (f2 < -0.2 ? leaf : leaf) : leaf`,
/// tree 1 `f1 > 0.25 ? leaf : (f3 ≥ 0.5 ? leaf : leaf)`; leaves (tree, node) in the order
/// (0, 2), (0, 3), (0, 4), (1, 1), (1, 3), (1, 4).
fn two_trees() -> Vec<(&'static str, Attr)> {
    vec![
        (
            "nodes_treeids",
            Attr::Ints(vec![0, 0, 0, 0, 0, 1, 1, 1, 1, 1]),
        ),
        (
            "nodes_nodeids",
            Attr::Ints(vec![0, 1, 2, 3, 4, 0, 1, 2, 3, 4]),
        ),
        (
            "nodes_featureids",
            Attr::Ints(vec![0, 2, 0, 0, 0, 1, 0, 3, 0, 0]),
        ),
        (
            "nodes_modes",
            Attr::Strings(vec![
                "BRANCH_LEQ",
                "BRANCH_LT",
                "LEAF",
                "LEAF",
                "LEAF",
                "BRANCH_GT",
                "LEAF",
                "BRANCH_GTE",
                "LEAF",
                "LEAF",
            ]),
        ),
        (
            "nodes_values",
            Attr::Floats(vec![0.1, -0.2, 0.0, 0.0, 0.0, 0.25, 0.0, 0.5, 0.0, 0.0]),
        ),
        (
            "nodes_truenodeids",
            Attr::Ints(vec![1, 3, 0, 0, 0, 1, 0, 3, 0, 0]),
        ),
        (
            "nodes_falsenodeids",
            Attr::Ints(vec![2, 4, 0, 0, 0, 2, 0, 4, 0, 0]),
        ),
    ]
}

const LEAVES: [(i64, i64); 6] = [(0, 2), (0, 3), (0, 4), (1, 1), (1, 3), (1, 4)];

/// The leaf each tree of [`two_trees`] reaches for `x`, as an index into [`LEAVES`].
fn reached_leaves(x: &[f32]) -> [usize; 2] {
    let t0 = if x[0] > 0.1 {
        0
    } else if x[2] < -0.2 {
        1
    } else {
        2
    };
    let t1 = if x[1] > 0.25 {
        3
    } else if x[3] >= 0.5 {
        4
    } else {
        5
    };
    [t0, t1]
}

#[test]
fn tree_ensemble_classifier_matches_a_walk_of_its_trees() {
    // Three classes labelled 3, 5, 7; every leaf weighs every class; softmax scores;
    // a batch of two samples. Outputs: label and probabilities. (tract 0.23.9 sums
    // leaves off the path on some of these inputs: the reference walks the trees.)
    let weights = floats(41, 18);
    let mut attrs = two_trees();
    attrs.extend([
        ("classlabels_int64s", Attr::Ints(vec![3, 5, 7])),
        (
            "class_treeids",
            Attr::Ints(LEAVES.iter().flat_map(|l| [l.0; 3]).collect()),
        ),
        (
            "class_nodeids",
            Attr::Ints(LEAVES.iter().flat_map(|l| [l.1; 3]).collect()),
        ),
        ("class_ids", Attr::Ints((0..18).map(|i| i % 3).collect())),
        ("class_weights", Attr::Floats(weights.clone())),
        ("base_values", Attr::Floats(vec![0.1, -0.1, 0.05])),
        ("post_transform", Attr::S("SOFTMAX".into())),
    ]);
    let nodes = vec![
        ml_node(
            "TreeEnsembleClassifier",
            &["x"],
            &["label", "probabilities"],
            attrs,
        ),
        node("Cast", &["label"], "y", vec![("to", Attr::I(1))]),
    ];
    let mut m = model(nodes, vec![], value_info("x", &[2, 4]), value_info_any("y"));
    m.graph
        .as_mut()
        .unwrap()
        .output
        .push(value_info_any("probabilities"));
    let graph = import_proto(&with_ml_opset(m)).expect("imports").graph;
    let samples: Vec<Vec<f32>> = (0..6).map(|s| floats(50 + s, 8)).collect();
    for x in &samples {
        let ours = &graph.run(x).expect("float run")[&graph.output].data;
        let (mut labels, mut probabilities) = (Vec::new(), Vec::new());
        for row in x.chunks(4) {
            let [a, b] = reached_leaves(row);
            let raw: Vec<f32> = (0..3)
                .map(|c| [0.1, -0.1, 0.05][c] + weights[3 * a + c] + weights[3 * b + c])
                .collect();
            let best = (0..3).fold(0, |m, c| if raw[c] > raw[m] { c } else { m });
            labels.push([3.0, 5.0, 7.0][best]);
            let z: f32 = raw.iter().map(|v| v.exp()).sum();
            probabilities.extend(raw.iter().map(|v| v.exp() / z));
        }
        let want: Vec<f32> = labels.into_iter().chain(probabilities).collect();
        for (a, b) in ours.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5, "{ours:?} vs the walk {want:?}");
        }
    }
    prove_matches(&graph, &samples);
}

/// A regressor over [`two_trees`] with two targets, averaged, and its reference.
fn tree_regressor() -> (ModelProto, impl Fn(&[f32]) -> Vec<f32>) {
    let w = floats(43, 12);
    let mut attrs = two_trees();
    attrs.extend([
        ("n_targets", Attr::I(2)),
        (
            "target_treeids",
            Attr::Ints(LEAVES.iter().flat_map(|l| [l.0; 2]).collect()),
        ),
        (
            "target_nodeids",
            Attr::Ints(LEAVES.iter().flat_map(|l| [l.1; 2]).collect()),
        ),
        ("target_ids", Attr::Ints((0..12).map(|i| i % 2).collect())),
        ("target_weights", Attr::Floats(w.clone())),
        ("base_values", Attr::Floats(vec![0.5, -0.25])),
        ("aggregate_function", Attr::S("AVERAGE".into())),
    ]);
    let nodes = vec![ml_node("TreeEnsembleRegressor", &["x"], &["y"], attrs)];
    let m = model(nodes, vec![], value_info("x", &[1, 4]), value_info_any("y"));
    let reference = move |x: &[f32]| {
        let [a, b] = reached_leaves(x);
        vec![
            0.5 + (w[2 * a] + w[2 * b]) / 2.0,
            -0.25 + (w[2 * a + 1] + w[2 * b + 1]) / 2.0,
        ]
    };
    (with_ml_opset(m), reference)
}

#[test]
fn tree_ensemble_regressor_averages_the_trees_it_reaches() {
    // tract has no TreeEnsembleRegressor: the reference walks the trees.
    let (m, reference) = tree_regressor();
    let graph = import_proto(&m).expect("imports").graph;
    let samples: Vec<Vec<f32>> = (0..8).map(|s| floats(60 + s, 4)).collect();
    for x in &samples {
        let ours = &graph.run(x).expect("float run")[&graph.output].data;
        let want = reference(x);
        for (a, b) in ours.iter().zip(&want) {
            assert!(
                (a - b).abs() < 1e-5,
                "float interpreter {a} vs reference {b}"
            );
        }
    }
    prove_matches(&graph, &samples);
}

#[test]
fn a_tampered_tree_comparison_or_reached_leaf_fails_the_circuit() {
    let (m, _) = tree_regressor();
    let graph = import_proto(&m).expect("imports").graph;
    let samples: Vec<Vec<f32>> = (0..8).map(|s| floats(60 + s, 4)).collect();
    let q = prove_matches(&graph, &samples);
    let lookups: Vec<zkinfer_qir::ValueId> = q
        .ops
        .iter()
        .filter_map(|op| match op {
            zkinfer_qir::QOp::Rescale(r) if matches!(r.act, zkinfer_qir::Activation::Table(_)) => {
                Some(r.output)
            }
            _ => None,
        })
        .collect();
    // The first lookup is a comparison bit, the last the reached-path indicators.
    assert!(lookups.len() >= 2, "{lookups:?}");
    for id in [lookups[0], lookups[lookups.len() - 1]] {
        let one = 1i64 << q.value(id).scale;
        assert_tampering_refused(&q, &samples[0], id, |v| one - v);
    }
}

#[test]
fn linear_classifier_normalizer_and_regressor_match_tract() {
    // A LogisticRegression as skl2onnx exports it (LinearClassifier with LOGISTIC, then
    // an L1 Normalizer), and a LinearRegressor with two targets, on one input.
    let nodes = vec![
        ml_node(
            "LinearClassifier",
            &["x"],
            &["label", "scores"],
            vec![
                ("classlabels_ints", Attr::Ints(vec![0, 1, 2])),
                ("coefficients", Attr::Floats(floats(71, 15))),
                ("intercepts", Attr::Floats(vec![0.2, -0.1, 0.0])),
                ("post_transform", Attr::S("LOGISTIC".into())),
            ],
        ),
        ml_node(
            "Normalizer",
            &["scores"],
            &["probabilities"],
            vec![("norm", Attr::S("L1".into()))],
        ),
        ml_node(
            "LinearRegressor",
            &["x"],
            &["r"],
            vec![
                ("targets", Attr::I(2)),
                ("coefficients", Attr::Floats(floats(72, 10))),
                ("intercepts", Attr::Floats(vec![0.3, -0.4])),
            ],
        ),
        node("Cast", &["label"], "y", vec![("to", Attr::I(1))]),
    ];
    let mut m = model(nodes, vec![], value_info("x", &[2, 5]), value_info_any("y"));
    let g = m.graph.as_mut().unwrap();
    g.output.push(value_info_any("probabilities"));
    g.output.push(value_info_any("r"));
    let samples: Vec<Vec<f32>> = (0..4).map(|s| floats(80 + s, 10)).collect();
    check_on(&with_ml_opset(m), &samples);
}

#[test]
fn array_feature_extractor_matches_tract() {
    // Constant indices into a computed tensor; computed indices (an argmax) into
    // constant class labels, as skl2onnx maps a classifier's argmax to its label.
    let inits = vec![
        int_tensor("classes", vec![10, 20, 30, 40, 50, 60]),
        int_tensor("picks", vec![4, 0, 2]),
    ];
    let nodes = vec![
        node("ArgMax", &["x"], "i", vec![("axis", Attr::I(1))]),
        ml_node("ArrayFeatureExtractor", &["classes", "i"], &["c"], vec![]),
        node("Cast", &["c"], "y", vec![("to", Attr::I(1))]),
        ml_node("ArrayFeatureExtractor", &["x", "picks"], &["z"], vec![]),
    ];
    let mut m = model(nodes, inits, value_info("x", &[1, 6]), value_info_any("y"));
    m.graph.as_mut().unwrap().output.push(value_info_any("z"));
    let samples: Vec<Vec<f32>> = (0..4).map(|s| floats(90 + s, 6)).collect();
    check_on(&with_ml_opset(m), &samples);
}

#[test]
fn ml_ops_refuse_what_they_cannot_prove_by_name() {
    let cases: Vec<(NodeProto, &str)> = vec![
        (
            ml_node(
                "LinearClassifier",
                &["x"],
                &["label", "scores"],
                vec![
                    ("classlabels_strings", Attr::Strings(vec!["a", "b"])),
                    ("coefficients", Attr::Floats(floats(1, 8))),
                ],
            ),
            "string class labels",
        ),
        (
            ml_node(
                "LinearClassifier",
                &["x"],
                &["label", "scores"],
                vec![
                    ("classlabels_ints", Attr::Ints(vec![0, 1])),
                    ("coefficients", Attr::Floats(floats(1, 4))),
                ],
            ),
            "binary layout",
        ),
        (
            ml_node(
                "Normalizer",
                &["x"],
                &["y"],
                vec![("norm", Attr::S("MAX".into()))],
            ),
            "norm MAX",
        ),
    ];
    for (n, want) in cases {
        let m = with_ml_opset(model(
            vec![n],
            vec![],
            value_info("x", &[1, 4]),
            value_info_any("y"),
        ));
        let err = import_proto(&m).expect_err("refused").to_string();
        assert!(err.contains(want), "{err}");
    }
    // A tree whose branch leads nowhere (so that node 3 hangs loose).
    let mut attrs = two_trees();
    attrs[5] = (
        "nodes_truenodeids",
        Attr::Ints(vec![1, 9, 0, 0, 0, 1, 0, 3, 0, 0]),
    );
    attrs.extend([
        ("n_targets", Attr::I(1)),
        ("target_treeids", Attr::Ints(vec![0])),
        ("target_nodeids", Attr::Ints(vec![2])),
        ("target_ids", Attr::Ints(vec![0])),
        ("target_weights", Attr::Floats(vec![1.0])),
    ]);
    let n = ml_node("TreeEnsembleRegressor", &["x"], &["y"], attrs);
    let m = with_ml_opset(model(
        vec![n],
        vec![],
        value_info("x", &[1, 4]),
        value_info_any("y"),
    ));
    let err = import_proto(&m).expect_err("refused").to_string();
    assert!(err.contains("tree 0 has 2 roots"), "{err}");
    // An ML op type in the default domain is not an ML op.
    let mut n = ml_node("Normalizer", &["x"], &["y"], vec![]);
    n.domain = String::new();
    let m = model(
        vec![n],
        vec![],
        value_info("x", &[1, 4]),
        value_info_any("y"),
    );
    assert!(matches!(
        import_proto(&m),
        Err(CompileError::Unsupported { .. })
    ));
}

#[test]
fn the_scikit_learn_digits_classifier_proves_the_float_label_on_all_450_test_images() {
    // skl2onnx's MLPClassifier (Cast, MatMul, Softmax, ArgMax, ArrayFeatureExtractor,
    // two outputs), compiled with the default settings on its calibration file; every
    // test image through the integer interpreter the circuit is tested against.
    let real = shared_models().join("real");
    let calibration = std::fs::read_to_string(real.join("digits_mlp.calibration.json")).unwrap();
    let c = zkinfer_pipeline::compile(
        &real.join("digits_mlp.onnx"),
        &calibration,
        &Default::default(),
    )
    .expect("compiles");
    let graph = import_onnx(&real.join("digits_mlp.onnx")).unwrap().graph;
    let test = std::fs::read_to_string(real.join("digits_test.json")).unwrap();
    let test: serde_json::Value = serde_json::from_str(&test).unwrap();
    let numbers = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let samples: Vec<Vec<f32>> = test["input_data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| numbers(s).into_iter().map(|x| x as f32).collect())
        .collect();
    let labels = numbers(&test["labels"]);
    assert_eq!((samples.len(), labels.len()), (450, 450));
    let (mut float_right, mut proven_right) = (0, 0);
    for (x, &label) in samples.iter().zip(&labels) {
        let float = graph.run(x).unwrap()[&graph.output].data.clone();
        let ours = zkinfer_compiler::run_quantized(&c.model, x).unwrap();
        // Packed outputs: the label, then the 10 probabilities.
        assert_eq!(ours.len(), 11);
        assert_eq!(
            ours[0], float[0] as f64,
            "proven label differs from the float model's"
        );
        float_right += usize::from(float[0] as f64 == label);
        proven_right += usize::from(ours[0] == label);
    }
    assert_eq!((float_right, proven_right), (438, 438));
    // 128 calibration samples: widths per tensor were tried (half choose, half confirm),
    // and the fidelity compiled is that of the last width taken.
    use zkinfer_pipeline::Widened;
    assert!(c.widths.iter().any(|w| w.widened != Widened::Model));
    let last = c.widths.iter().rev().find(|w| w.taken).unwrap();
    assert_eq!(last.fidelity.as_ref(), Some(&c.circuits[0].fidelity));
}

/// A width given for one tensor (`QuantConfig::tensors`) changes that tensor's node
/// only: attn_block's functions read at 12 bits beside 13-bit activations, one node's at
/// 13; the circuit is satisfied; a width for a tensor the graph does not make, or
/// outside the widths allowed, is refused naming it.
#[test]
fn a_tensor_width_changes_that_tensors_node_only() {
    use zkinfer_compiler::{parse_input_json, TensorWidths};
    let path = shared_models().join("attn_block.onnx");
    let graph = import_onnx(&path).unwrap().graph;
    let text = std::fs::read_to_string(path.with_extension("input.json")).unwrap();
    let samples = parse_input_json(&text, &[graph.input_shape().to_vec()])
        .unwrap()
        .samples;
    let cal = calibrate(&graph, &samples).unwrap();
    let at = |tensors: TensorWidths| {
        quantize(
            &graph,
            &cal,
            QuantConfig {
                act_bits: 13,
                weight_bits: 12,
                table_bits: 12,
                tensors,
            },
        )
    };
    let base = at(TensorWidths::default()).unwrap();
    let narrowed = |q: &zkinfer_qir::QModel| q.tables.iter().filter(|t| t.in_bits == 12).count();
    assert!(narrowed(&base) > 1);
    let mut widened = Vec::new();
    for n in &graph.nodes {
        let mut tensors = TensorWidths::default();
        tensors.tables.insert(n.output.clone(), 13);
        let q = at(tensors).unwrap();
        if q != base {
            // That node's tables hold every activation value; the others' stay narrow
            // (a narrow table another node shares stays too).
            assert!(narrowed(&q) > 0, "{}", n.output);
            assert!(q
                .tables
                .iter()
                .any(|t| t.func.is_continuous() && t.in_bits == 0));
            widened.push((n.output.clone(), q));
        }
    }
    assert!(!widened.is_empty() && widened.len() < graph.nodes.len());
    satisfied(&widened[0].1, &samples[0]);
    // Wider weights for one node change its weights, not the tables.
    let weighted = graph
        .nodes
        .iter()
        .find_map(|n| {
            let mut tensors = TensorWidths::default();
            tensors.weights.insert(n.output.clone(), 16);
            let q = at(tensors).unwrap();
            (q != base).then_some(q)
        })
        .expect("a node with weights");
    assert_eq!(weighted.tables, base.tables);
    satisfied(&weighted, &samples[0]);

    let mut unknown = TensorWidths::default();
    unknown.weights.insert("no_such_tensor".into(), 14);
    let err = at(unknown).unwrap_err().to_string();
    assert!(
        err.contains("`no_such_tensor`") && err.contains("no node"),
        "{err}"
    );
    let mut wide = TensorWidths::default();
    wide.tables.insert(widened[0].0.clone(), 14);
    let err = at(wide).unwrap_err().to_string();
    assert!(
        err.contains(&widened[0].0) && err.contains("2..=13"),
        "{err}"
    );
}

/// Where the error grows: a node whose output the integer model does not name (a
/// product its consumer rescales) shares the growth of the measured node it feeds, so
/// that its weights are among the widths tried; a node that lowers the error is not.
#[test]
fn error_growth_reaches_the_unmeasured_product_behind_a_tensor() {
    use zkinfer_compiler::{error_growth, LayerError};
    let m = model(
        vec![
            node("MatMul", &["x", "w"], "m", vec![]),
            node("Reshape", &["m", "shape"], "r", vec![]),
            node("Relu", &["r"], "y", vec![]),
        ],
        vec![
            float_tensor("w", &[4, 4], floats(1, 16)),
            int_tensor("shape", vec![1, 4]),
        ],
        value_info("x", &[1, 4]),
        value_info("y", &[1, 4]),
    );
    let graph = import_proto(&m).unwrap().graph;
    let layer = |name: &str, rel: f64| LayerError {
        name: name.into(),
        max_abs_error: rel,
        max_abs: 1.0,
    };
    let layers = [layer("x", 0.001), layer("r", 0.004), layer("y", 0.003)];
    let grows = error_growth(&graph, &layers);
    let names: Vec<&str> = grows.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["m", "r"]);
    assert!(grows.iter().all(|(_, g)| (g - 0.003).abs() < 1e-12));
}

/// An int64 constant of the given shape.
fn int_tensor_shaped(name: &str, dims: &[i64], data: Vec<i64>) -> tract_onnx::pb::TensorProto {
    let mut t = int_tensor(name, data);
    t.dims = dims.to_vec();
    t
}

#[test]
fn array_ops_with_constant_indices_match_tract() {
    // x [2, 3, 4] → Expand to [2, 2, 3, 4] → Tile ×[1, 1, 1, 2] → Trilu (upper, k 1)
    // → GatherElements along axis 3 → GatherND (batch_dims 1) → Split in two, summed.
    let inits = vec![
        int_tensor("shape", vec![2, 1, 1, 1]),
        int_tensor("reps", vec![1, 1, 1, 2]),
        int_tensor_shaped("k", &[], vec![1]),
        int_tensor("ax2", vec![2]),
        int_tensor_shaped(
            "ge",
            &[2, 2, 3, 3],
            (0..36).map(|i| (i * 5 % 8) - 4).collect(),
        ),
        int_tensor_shaped("nd", &[2, 2, 2], vec![0, 1, 1, 2, 1, 0, 0, 2]),
        int_tensor("parts", vec![1, 2]),
    ];
    let nodes = vec![
        node("Expand", &["x", "shape"], "e", vec![]),
        node("Tile", &["e", "reps"], "t", vec![]),
        node("Trilu", &["t", "k"], "u", vec![]),
        node(
            "GatherElements",
            &["u", "ge"],
            "g",
            vec![("axis", Attr::I(3))],
        ),
        node(
            "GatherND",
            &["g", "nd"],
            "n",
            vec![("batch_dims", Attr::I(1))],
        ),
    ];
    let mut split = node("Split", &["n", "parts"], "a", vec![("axis", Attr::I(2))]);
    split.output.push("b".into());
    let tail = vec![
        split,
        node("ReduceSum", &["b", "ax2"], "bs", vec![]),
        node("Add", &["a", "bs"], "y", vec![]),
    ];
    let m = model(
        nodes.into_iter().chain(tail).collect(),
        inits,
        value_info("x", &[2, 3, 4]),
        value_info_any("y"),
    );
    check(&m, &[2, 3, 4]);
    // Split into equal parts without sizes (the opset-18 `num_outputs` form counts outputs).
    let mut split = node("Split", &["x"], "p", vec![("axis", Attr::I(1))]);
    split.output.extend(["q".to_string(), "r".to_string()]);
    let nodes = vec![
        split,
        node("Mul", &["p", "q"], "pq", vec![]),
        node("Sub", &["pq", "r"], "y", vec![]),
    ];
    let m = model(
        nodes,
        vec![],
        value_info("x", &[2, 3, 4]),
        value_info_any("y"),
    );
    check(&m, &[2, 3, 4]);
}

#[test]
fn reductions_prelu_and_instance_normalization_match_tract() {
    let inits = vec![
        float_tensor("slope", &[3, 1, 1], vec![0.1, -0.2, 0.5]),
        float_tensor("scale", &[3], vec![1.5, 0.5, -1.0]),
        float_tensor("bias", &[3], vec![0.1, 0.0, -0.3]),
    ];
    let axes = |a: Vec<i64>| vec![("axes", Attr::Ints(a))];
    let nodes = vec![
        node("PRelu", &["x", "slope"], "p", vec![]),
        node(
            "InstanceNormalization",
            &["p", "scale", "bias"],
            "i",
            vec![],
        ),
        node("ReduceMax", &["i"], "mx", axes(vec![2])),
        node("ReduceMin", &["p"], "mn", axes(vec![2])),
        node("ReduceL1", &["x"], "l1", axes(vec![2])),
        node("ReduceL2", &["x"], "l2", axes(vec![2])),
        node("ReduceSumSquare", &["x"], "ss", axes(vec![2])),
        node("ReduceLogSumExp", &["x"], "lse", axes(vec![2])),
        node("Sum", &["mx", "mn", "l1", "l2", "ss", "lse"], "y", vec![]),
    ];
    let m = model(
        nodes,
        inits,
        value_info("x", &[1, 3, 2, 4]),
        value_info_any("y"),
    );
    check(&m, &[1, 3, 2, 4]);
    // ReduceMax over every axis, keepdims 0: one proven maximum of all elements.
    let nodes = vec![node(
        "ReduceMax",
        &["x"],
        "y",
        vec![("keepdims", Attr::I(0))],
    )];
    let m = model(nodes, vec![], value_info("x", &[2, 5]), value_info_any("y"));
    check(&m, &[2, 5]);
}

#[test]
fn one_hot_and_embedding_gather_of_computed_indices_match_tract() {
    // ids = ArgMax(x) (computed integers) select rows of a constant table, also counted
    // from the end (ids − 5); OneHot(ids) with values [−1, 2] along axis 1.
    let table: Vec<f32> = floats(9, 15);
    let inits = vec![
        float_tensor("table", &[5, 3], table),
        int_tensor("five", vec![5]),
        int_tensor("depth", vec![5]),
        float_tensor("values", &[2], vec![-1.0, 2.0]),
    ];
    let nodes = vec![
        node(
            "ArgMax",
            &["x"],
            "ids",
            vec![("axis", Attr::I(2)), ("keepdims", Attr::I(0))],
        ),
        node("Gather", &["table", "ids"], "rows", vec![]),
        node("Sub", &["ids", "five"], "back", vec![]),
        node("Gather", &["table", "back"], "rows_back", vec![]),
        node("Add", &["rows", "rows_back"], "emb", vec![]),
        node(
            "OneHot",
            &["ids", "depth", "values"],
            "hot",
            vec![("axis", Attr::I(1))],
        ),
        node("ReduceSum", &["hot"], "h", vec![]),
        node("Add", &["emb", "h"], "y", vec![]),
    ];
    let m = model(
        nodes,
        inits,
        value_info("x", &[1, 4, 5]),
        value_info_any("y"),
    );
    check_on(&m, &grid_samples(20));
}

#[test]
fn a_public_output_with_padding_zeros_is_bound_to_zero() {
    // The output is the input's lower triangle: its zeros are no op's output, so they are
    // bound to a constant zero cell; a claimed nonzero there fails.
    let nodes = vec![node("Trilu", &["x"], "y", vec![("upper", Attr::I(0))])];
    let m = model(nodes, vec![], value_info("x", &[3, 4]), value_info_any("y"));
    let q = check(&m, &[3, 4]);
    let x = floats(1, 12);
    let trace = q.run(&quantize_input(&q, &x)).unwrap();
    let (plan, _) = plan_layout(&q, Default::default(), None, Default::default()).unwrap();
    let mut instances = ModelCircuit::instances(&q, &plan.layout, &trace, &Default::default());
    // Element (0, 1) of the output is above the diagonal: a zero. The public values are
    // the input's 12 elements, then the output's.
    let at = instances.len() - 12 + 1;
    instances[at] = zkinfer_circuits::halo2_proofs::halo2curves::bn256::Fr::from(1);
    let circuit =
        ModelCircuit::with_trace(Arc::new(q.clone()), plan.layout.clone(), Arc::new(trace));
    let prover = MockProver::run(plan.layout.k, &circuit, vec![instances]).unwrap();
    assert!(
        prover.verify().is_err(),
        "a nonzero padding output was accepted"
    );
}

#[test]
fn transposed_convolution_matches_tract() {
    // 2-D: strides, pads, output_padding, dilations, groups; 1-D; output_shape.
    type Case = (Vec<i64>, Vec<i64>, Vec<(&'static str, Attr)>);
    let cases: Vec<Case> = vec![
        (vec![1, 2, 3, 3], vec![2, 3, 3, 3], vec![]),
        (
            vec![1, 2, 3, 4],
            vec![2, 2, 3, 2],
            vec![
                ("strides", Attr::Ints(vec![2, 3])),
                ("pads", Attr::Ints(vec![1, 0, 2, 1])),
                ("output_padding", Attr::Ints(vec![1, 0])),
            ],
        ),
        (
            vec![1, 4, 3, 3],
            vec![4, 1, 2, 2],
            vec![
                ("group", Attr::I(2)),
                ("dilations", Attr::Ints(vec![2, 1])),
                ("strides", Attr::Ints(vec![2, 2])),
            ],
        ),
        (
            vec![1, 2, 5],
            vec![2, 3, 3],
            vec![
                ("strides", Attr::Ints(vec![2])),
                ("pads", Attr::Ints(vec![1, 1])),
            ],
        ),
        (
            vec![1, 1, 3, 3],
            vec![1, 2, 3, 3],
            vec![
                ("strides", Attr::Ints(vec![3, 2])),
                ("output_shape", Attr::Ints(vec![10, 8])),
            ],
        ),
    ];
    for (x, w, attrs) in cases {
        let cout = w[1]
            * attrs
                .iter()
                .find_map(|(k, v)| match (k, v) {
                    (&"group", Attr::I(g)) => Some(*g),
                    _ => None,
                })
                .unwrap_or(1);
        let wlen: i64 = w.iter().product();
        let inits = vec![
            float_tensor("W", &w, floats(3, wlen as usize)),
            float_tensor("B", &[cout], floats(4, cout as usize)),
        ];
        let nodes = vec![node("ConvTranspose", &["x", "W", "B"], "y", attrs)];
        let m = model(nodes, inits, value_info("x", &x), value_info_any("y"));
        let shape: Vec<usize> = x.iter().map(|&d| d as usize).collect();
        check(&m, &shape);
    }
}

/// A recurrent node `op` over x [seq, batch, I] with weights for its gates of `hidden`
/// units; every output named in `outputs` is a graph output.
fn recurrent_model(
    op: &str,
    x: [i64; 3],
    hidden: i64,
    dirs: i64,
    extra_inputs: Vec<(&str, tract_onnx::pb::TensorProto)>,
    attrs: Vec<(&str, Attr)>,
    outputs: &[&str],
) -> ModelProto {
    let i = x[2];
    let gates = match op {
        "RNN" => 1,
        "GRU" => 3,
        _ => 4,
    };
    let scaled = |seed, n: i64| floats(seed, n as usize).iter().map(|v| v * 0.6).collect();
    let mut inits = vec![
        float_tensor(
            "W",
            &[dirs, gates * hidden, i],
            scaled(11, dirs * gates * hidden * i),
        ),
        float_tensor(
            "R",
            &[dirs, gates * hidden, hidden],
            scaled(12, dirs * gates * hidden * hidden),
        ),
        float_tensor(
            "B",
            &[dirs, 2 * gates * hidden],
            scaled(13, dirs * 2 * gates * hidden),
        ),
    ];
    let mut inputs = vec!["x", "W", "R", "B"];
    for (slot, t) in extra_inputs {
        inputs.push(slot);
        if !t.name.is_empty() {
            inits.push(t);
        }
    }
    let mut n = node(op, &inputs, outputs[0], attrs);
    n.output = outputs.iter().map(|s| s.to_string()).collect();
    let first = outputs.iter().find(|s| !s.is_empty()).unwrap();
    let mut m = model(vec![n], inits, value_info("x", &x), value_info_any(first));
    let g = m.graph.as_mut().unwrap();
    for o in outputs.iter().filter(|s| !s.is_empty()).skip(1) {
        g.output.push(value_info_any(o));
    }
    m
}

/// The float interpreter against a reference output for the input `floats(0, n)`, then
/// the circuit (MockProver) on three samples.
fn matches_reference(m: &ModelProto, n: usize, reference: &[f32]) {
    let graph = import_proto(m).unwrap().graph;
    let ours = &graph.run(&floats(0, n)).unwrap()[&graph.output].data;
    assert_eq!(ours.len(), reference.len());
    for (a, b) in ours.iter().zip(reference) {
        assert!(
            (a - b).abs() < 1e-5,
            "{ours:?} vs the reference {reference:?}"
        );
    }
    prove_matches(&graph, &(0..3).map(|s| floats(s, n)).collect::<Vec<_>>());
}

#[test]
#[allow(clippy::excessive_precision)] // onnxruntime's outputs as it printed them
fn recurrent_layers_unrolled_match_tract_and_onnxruntime() {
    // tract 0.23.9 is the reference where it is right: forward layers with their default
    // activations. It ignores `direction: reverse` for GRU and `activations` for RNN, and
    // differs on a bidirectional LSTM with initial states; there the reference is
    // onnxruntime 1.32.0 (scripts/sklearn.sh's venv) on the input `floats(0, n)`.
    let h = 3;
    let hidden = ("hidden_size", Attr::I(h));
    let bidirectional = ("direction", Attr::S("bidirectional".into()));
    // LSTM forward: Y, Y_h and Y_c; bidirectional; forward from constant initial states
    // with peepholes.
    let m = recurrent_model(
        "LSTM",
        [3, 1, 4],
        h,
        1,
        vec![],
        vec![hidden.clone()],
        &["Y", "Y_h", "Y_c"],
    );
    check(&m, &[3, 1, 4]);
    let attrs = vec![hidden.clone(), bidirectional.clone()];
    let m = recurrent_model("LSTM", [2, 2, 4], h, 2, vec![], attrs, &["Y", "Y_h", "Y_c"]);
    check(&m, &[2, 2, 4]);
    let states = |dirs: i64| {
        vec![
            ("", Default::default()),
            (
                "h0",
                float_tensor("h0", &[dirs, 2, h], floats(21, (dirs * 2 * h) as usize)),
            ),
            (
                "c0",
                float_tensor("c0", &[dirs, 2, h], floats(22, (dirs * 2 * h) as usize)),
            ),
            (
                "P",
                float_tensor("P", &[dirs, 3 * h], floats(23, (dirs * 3 * h) as usize)),
            ),
        ]
    };
    let m = recurrent_model(
        "LSTM",
        [2, 2, 4],
        h,
        1,
        states(1),
        vec![hidden.clone()],
        &["Y", "Y_h"],
    );
    check(&m, &[2, 2, 4]);
    // Bidirectional from constant initial states, with peepholes; Y unnamed, Y_h read.
    let attrs = vec![hidden.clone(), bidirectional.clone()];
    let m = recurrent_model("LSTM", [2, 2, 4], h, 2, states(2), attrs, &["", "Y_h"]);
    let onnxruntime = [
        -0.17906272,
        0.14633062,
        -0.06413344,
        0.0510133,
        0.06076057,
        -0.12412778,
        0.30754942,
        -0.14805858,
        -0.01818162,
        0.40158206,
        -0.02475645,
        -0.09559202,
    ];
    matches_reference(&m, 16, &onnxruntime);
    // GRU: both reset modes, forward, reverse and bidirectional (Y then Y_h).
    let gru: [(i64, &str, i64, &[f32]); 4] = [
        (
            0,
            "reverse",
            1,
            &[
                -0.12738903,
                0.027525656,
                -0.3121182,
                -0.11145996,
                -0.096685648,
                -0.31145981,
                -0.064967498,
                -0.15691081,
                -0.23483987,
                -0.12738903,
                0.027525656,
                -0.3121182,
            ],
        ),
        (
            1,
            "forward",
            1,
            &[
                -0.023252903,
                -0.042740069,
                -0.19752033,
                -0.047728807,
                -0.16865805,
                -0.31275052,
                -0.091716051,
                -0.30472377,
                -0.41470915,
                -0.091716051,
                -0.30472377,
                -0.41470915,
            ],
        ),
        (
            1,
            "bidirectional",
            2,
            &[
                -0.023252903,
                -0.042740069,
                -0.19752033,
                0.36205733,
                0.2192255,
                -0.27396852,
                -0.047728807,
                -0.16865805,
                -0.31275052,
                0.24526903,
                0.21181685,
                -0.3691535,
                -0.091716051,
                -0.30472377,
                -0.41470915,
                0.098325431,
                0.20793143,
                -0.29215765,
                -0.091716051,
                -0.30472377,
                -0.41470915,
                0.36205733,
                0.2192255,
                -0.27396852,
            ],
        ),
        (
            0,
            "bidirectional",
            2,
            &[
                -0.05130893,
                0.030815875,
                -0.18081234,
                0.45446235,
                0.20022276,
                -0.53947246,
                -0.083573982,
                -0.036766231,
                -0.2972194,
                0.35125303,
                0.20231903,
                -0.51283324,
                -0.12159797,
                -0.12694123,
                -0.40725955,
                0.19264884,
                0.21073094,
                -0.3420828,
                -0.12159797,
                -0.12694123,
                -0.40725955,
                0.45446235,
                0.20022276,
                -0.53947246,
            ],
        ),
    ];
    for (lbr, dir, dirs, onnxruntime) in gru {
        let attrs = vec![
            hidden.clone(),
            ("linear_before_reset", Attr::I(lbr)),
            ("direction", Attr::S(dir.into())),
        ];
        let m = recurrent_model("GRU", [3, 1, 2], h, dirs, vec![], attrs, &["Y", "Y_h"]);
        if dir == "forward" {
            check(&m, &[3, 1, 2]);
        }
        matches_reference(&m, 6, onnxruntime);
    }
    // RNN: Tanh from a constant initial state (tract), Relu (onnxruntime).
    let h0 = || {
        vec![
            ("", Default::default()),
            ("h0", float_tensor("h0", &[1, 1, h], floats(24, 3))),
        ]
    };
    let m = recurrent_model("RNN", [4, 1, 2], h, 1, h0(), vec![hidden.clone()], &["Y"]);
    check(&m, &[4, 1, 2]);
    let attrs = vec![hidden, ("activations", Attr::Strings(vec!["Relu"]))];
    let m = recurrent_model("RNN", [4, 1, 2], h, 1, h0(), attrs, &["Y"]);
    let onnxruntime = [
        0.0,
        0.57734078,
        0.0,
        0.0021730959,
        0.11834792,
        0.0,
        0.55282211,
        0.0,
        0.0,
        0.48241514,
        0.0,
        0.0,
    ];
    matches_reference(&m, 8, &onnxruntime);
}

#[test]
fn scatter_and_nonzero_of_a_constant_match_tract() {
    // ScatterElements of computed updates into x along axis 1 (a negative index, and a
    // position written twice: the last wins); ScatterND of x's rows into a constant;
    // NonZero of a constant mask picking elements with GatherND.
    let inits = vec![
        int_tensor_shaped("ie", &[2, 2], vec![0, -1, 2, 1]),
        int_tensor_shaped("ind", &[2, 1], vec![2, 0]),
        float_tensor("base", &[3, 4], floats(31, 12)),
        float_tensor(
            "mask",
            &[2, 4],
            vec![0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 2.0, -1.0],
        ),
    ];
    let nodes = vec![
        node("Slice", &["x", "s0", "s2", "ax1"], "u", vec![]),
        node("Relu", &["u"], "ru", vec![]),
        node(
            "ScatterElements",
            &["x", "ie", "ru"],
            "se",
            vec![("axis", Attr::I(1))],
        ),
        node("ScatterND", &["base", "ind", "x"], "sn", vec![]),
        node("NonZero", &["mask"], "nz", vec![]),
        node("Transpose", &["nz"], "nzt", vec![]),
        node("GatherND", &["se", "nzt"], "picked", vec![]),
        node(
            "ReduceSum",
            &["sn", "ax1"],
            "snr",
            vec![("keepdims", Attr::I(0))],
        ),
        node(
            "Concat",
            &["picked", "snr"],
            "y",
            vec![("axis", Attr::I(0))],
        ),
    ];
    let mut inits = inits;
    inits.extend([
        int_tensor("s0", vec![0]),
        int_tensor("s2", vec![2]),
        int_tensor("ax1", vec![1]),
    ]);
    let m = model(nodes, inits, value_info("x", &[2, 4]), value_info_any("y"));
    check(&m, &[2, 4]);
}

#[test]
fn pow_with_an_exponent_per_element_matches_tract() {
    // (|x| + 0.5)^x and 3^x with a constant base, broadcast: exp(x · ln base), proven.
    let inits = vec![
        float_tensor("half", &[], vec![0.5]),
        float_tensor("three", &[1, 1], vec![3.0]),
    ];
    let nodes = vec![
        node("Abs", &["x"], "a", vec![]),
        node("Add", &["a", "half"], "base", vec![]),
        node("Pow", &["base", "x"], "p", vec![]),
        node("Pow", &["three", "x"], "q", vec![]),
        node("Concat", &["p", "q"], "y", vec![("axis", Attr::I(0))]),
    ];
    let m = model(nodes, inits, value_info("x", &[2, 3]), value_info_any("y"));
    check(&m, &[2, 3]);

    // A base calibration sees negative: ln is not finite there, and calibration says so.
    let nodes = vec![node("Pow", &["x", "x"], "y", vec![])];
    let m = model(nodes, vec![], value_info("x", &[2, 3]), value_info_any("y"));
    let graph = import_proto(&m).unwrap().graph;
    let err = calibrate(&graph, &[floats(0, 6)]).unwrap_err().to_string();
    assert!(
        err.contains("`y/ln_base`") && err.contains("not a finite number"),
        "{err}"
    );
    // A constant base that is not positive, and an integer base, are refused at import.
    let inits = vec![float_tensor("b", &[2], vec![2.0, 0.0])];
    let nodes = vec![node("Pow", &["b", "x"], "y", vec![])];
    let m = model(nodes, inits, value_info("x", &[2]), value_info_any("y"));
    let err = import_proto(&m).unwrap_err().to_string();
    assert!(err.contains("constant base `b` holds 0"), "{err}");
    let nodes = vec![
        node("Cast", &["x"], "f", vec![("to", Attr::I(1))]),
        node("Pow", &["ids", "f"], "y", vec![]),
    ];
    let mut m = model(
        nodes,
        vec![],
        typed_value_info("ids", &[3], 7),
        value_info_any("y"),
    );
    m.graph.as_mut().unwrap().input.push(value_info("x", &[3]));
    let err = import_proto(&m).unwrap_err().to_string();
    assert!(err.contains("an integer base `ids`"), "{err}");
}

#[test]
fn log_softmax_and_log_sum_exp_of_large_inputs_match_tract() {
    // x · 40: exp(x) itself would reach e^40, far past any fixed-point range; the
    // max-shifted form keeps every exponential in (0, 1]. LogSoftmax over axis 1 and
    // (opset 11) over every axis from 1; ReduceLogSumExp with and without keepdims.
    let inits = vec![
        float_tensor("forty", &[], vec![40.0]),
        int_tensor("ax", vec![2]),
    ];
    let nodes = vec![
        node("Mul", &["x", "forty"], "big", vec![]),
        node("LogSoftmax", &["big"], "ls", vec![("axis", Attr::I(1))]),
        node("Flatten", &["ls"], "lsf", vec![]),
        node("ReduceLogSumExp", &["big", "ax"], "lse", vec![]),
        node("Flatten", &["lse"], "lsef", vec![]),
        node(
            "ReduceLogSumExp",
            &["big", "ax"],
            "lse0",
            vec![("keepdims", Attr::I(0))],
        ),
        node(
            "Concat",
            &["lsf", "lsef", "lse0"],
            "y",
            vec![("axis", Attr::I(1))],
        ),
    ];
    let mut m = model(
        nodes,
        inits,
        value_info("x", &[2, 3, 4]),
        value_info_any("y"),
    );
    m.opset_import[0].version = 18;
    check(&m, &[2, 3, 4]);
    let nodes = vec![node("LogSoftmax", &["x"], "y", vec![("axis", Attr::I(1))])];
    let mut m = model(
        nodes,
        vec![],
        value_info("x", &[2, 3, 4]),
        value_info_any("y"),
    );
    m.opset_import[0].version = 11;
    check(&m, &[2, 3, 4]);
}

/// `v` with its dimensions named where `names` has a name (`""`: keep the size).
fn symbolic(
    mut v: tract_onnx::pb::ValueInfoProto,
    names: &[&str],
) -> tract_onnx::pb::ValueInfoProto {
    use tract_onnx::pb::tensor_shape_proto::dimension::Value;
    if let Some(tract_onnx::pb::type_proto::Value::TensorType(t)) =
        v.r#type.as_mut().and_then(|t| t.value.as_mut())
    {
        for (d, name) in t.shape.as_mut().unwrap().dim.iter_mut().zip(names) {
            if !name.is_empty() {
                d.value = Some(Value::DimParam(name.to_string()));
            }
        }
    }
    v
}

#[test]
fn symbolic_dimensions_take_their_sizes_from_input_shapes() {
    // x [batch, seq, 4] and b [batch, seq, 2], as exporters write a sequence model with
    // dynamic axes: `input_shapes` fixes `seq` (one size for both inputs).
    use zkinfer_compiler::import::import_proto_shaped;
    let nodes = vec![
        node("MatMul", &["x", "W"], "p", vec![]),
        node("Add", &["p", "b"], "y", vec![]),
    ];
    let inits = vec![float_tensor("W", &[4, 2], floats(61, 8))];
    let x = symbolic(value_info("x", &[1, 1, 4]), &["batch", "seq"]);
    let mut m = model(nodes, inits, x, value_info_any("y"));
    let b = symbolic(value_info("b", &[1, 1, 2]), &["batch", "seq"]);
    m.graph.as_mut().unwrap().input.push(b);
    let shapes = vec![vec![1, 3, 4], vec![1, 3, 2]];
    let imported = import_proto_shaped(&m, Some(&shapes)).unwrap();
    let got: Vec<&[usize]> = imported
        .graph
        .inputs
        .iter()
        .map(|p| p.shape.as_slice())
        .collect();
    assert_eq!(got, [&[1, 3, 4][..], &[1, 3, 2]]);
    assert!(imported
        .notes
        .iter()
        .any(|n| n.contains("`seq` fixed to 3")));
    // Without them, the error says which dimension and how to give it; sizes that differ
    // for one name, or differ from a constant dimension, are refused.
    let e = import_proto(&m).unwrap_err().to_string();
    assert!(
        e.contains("dimension 1 is symbolic (`seq`)") && e.contains("input_shapes"),
        "{e}"
    );
    let e = import_proto_shaped(&m, Some(&[vec![1, 3, 4], vec![1, 5, 2]]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("`seq`) 5, and another input's `seq` 3"), "{e}");
    let e = import_proto_shaped(&m, Some(&[vec![1, 3, 5], vec![1, 3, 2]]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("the model fixes dimension 2 to 4"), "{e}");
    let e = import_proto_shaped(&m, Some(&[vec![1, 3, 4]]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`input_shapes` names 1 inputs; the model has 2"),
        "{e}"
    );
    // `compile` reads them from the calibration file, as EZKL writes it.
    let path = std::env::temp_dir().join(format!("zkinfer-symbolic-{}.onnx", std::process::id()));
    std::fs::write(&path, encode(&m)).unwrap();
    let x = floats(62, 12);
    let b = floats(63, 6);
    let calibration = serde_json::json!({
        "input_data": [x, b],
        "input_shapes": shapes,
        "output_data": [[0.0]],
    })
    .to_string();
    let c = zkinfer_pipeline::compile(&path, &calibration, &Default::default());
    std::fs::remove_file(&path).unwrap();
    let c = c.expect("compiles");
    assert_eq!(c.model.value(c.model.input).shape, [18]);
}

#[test]
fn gather_elements_of_computed_indices_and_where_of_constants_match_tract() {
    // Each row's maximum picked by its ArgMax (torch.gather by computed indices), from x
    // and from a constant table along axis 0; Where choosing between two constants by
    // whether that ArgMax is 1.
    let inits = vec![
        float_tensor("table", &[4, 3], floats(71, 12)),
        float_tensor("a", &[3, 1], vec![0.5, -0.25, 0.75]),
        float_tensor("b", &[4], vec![-1.0, 0.0, 1.0, 0.125]),
        int_tensor("one", vec![1]),
    ];
    let nodes = vec![
        node("ArgMax", &["x"], "i", vec![("axis", Attr::I(1))]),
        node(
            "GatherElements",
            &["x", "i"],
            "g",
            vec![("axis", Attr::I(1))],
        ),
        node("Transpose", &["i"], "it", vec![]),
        node(
            "GatherElements",
            &["table", "it"],
            "t",
            vec![("axis", Attr::I(0))],
        ),
        node("Flatten", &["t"], "tf", vec![("axis", Attr::I(0))]),
        node("Flatten", &["g"], "gf", vec![("axis", Attr::I(0))]),
        node("Equal", &["i", "one"], "at1", vec![]),
        node("Where", &["at1", "a", "b"], "w", vec![]),
        node("Flatten", &["w"], "wf", vec![("axis", Attr::I(0))]),
        node(
            "Concat",
            &["gf", "tf", "wf"],
            "y",
            vec![("axis", Attr::I(1))],
        ),
    ];
    let m = model(nodes, inits, value_info("x", &[3, 4]), value_info_any("y"));
    check(&m, &[3, 4]);
}

#[test]
fn shape_arithmetic_and_constant_subgraphs_fold_at_import() {
    // x [2, 12] viewed as [2, 3, 12 / 3] with the last size computed from the shape
    // (Shape, Gather, Div, Unsqueeze, Concat, as exporters write `x.size(1) // heads`),
    // then scaled by 1 / Sqrt(Cast(4)): no node of constants is left to the quantizer.
    let inits = vec![
        int_tensor("one", vec![1]),
        int_tensor("heads", vec![3]),
        int_tensor("two", vec![2]),
        float_tensor("four", &[], vec![4.0]),
    ];
    let nodes = vec![
        node("Shape", &["x"], "s", vec![]),
        node("Gather", &["s", "one"], "width", vec![("axis", Attr::I(0))]),
        node("Div", &["width", "heads"], "head", vec![]),
        node("Neg", &["head"], "minus", vec![]),
        node("Neg", &["minus"], "head2", vec![]),
        node(
            "Concat",
            &["two", "heads", "head2"],
            "shape",
            vec![("axis", Attr::I(0))],
        ),
        node("Reshape", &["x", "shape"], "r", vec![]),
        node("Cast", &["four"], "four_f", vec![("to", Attr::I(1))]),
        node("Sqrt", &["four_f"], "root", vec![]),
        node("Div", &["r", "root"], "y", vec![]),
    ];
    let m = model(nodes, inits, value_info("x", &[2, 12]), value_info_any("y"));
    let imported = import_proto(&m).unwrap();
    let ops: Vec<&str> = imported.graph.nodes.iter().map(|n| n.op.name()).collect();
    assert_eq!(ops, ["Reshape", "Div"], "{ops:?}");
    assert_eq!(imported.graph.shapes["y"], [2, 3, 4]);
    check(&m, &[2, 12]);
    // An output that does not depend on the input is refused, saying so.
    let nodes = vec![node("Sqrt", &["four"], "y", vec![])];
    let inits = vec![float_tensor("four", &[], vec![4.0])];
    let m = model(nodes, inits, value_info("x", &[2]), value_info_any("y"));
    let e = import_proto(&m).unwrap_err().to_string();
    assert!(e.contains("graph output `y` is a constant"), "{e}");
}

#[test]
fn more_operators_match_tract() {
    // x [1, 8, 2, 2]: Dropout (inference), DepthToSpace and back, Hardmax over channels,
    // CumSum along the width, GlobalMaxPool, Mean / Max / Min with a constant,
    // ReduceProd and ReduceLogSum (of exponentials) over the channels, Gelu (both
    // forms), Mish, Shrink, CastLike to a float; each flattened and joined.
    let inits = vec![
        float_tensor("half", &[1], vec![0.5]),
        int_tensor_shaped("w_axis", &[], vec![3]),
        int_tensor("channels", vec![1]),
        float_tensor("like", &[1], vec![0.0]),
    ];
    let flat = |x: &str, y: &str| node("Flatten", &[x], y, vec![("axis", Attr::I(0))]);
    let s = |v: &str| Attr::S(v.into());
    let nodes = vec![
        node("Dropout", &["x"], "d", vec![]),
        node(
            "DepthToSpace",
            &["d"],
            "ds",
            vec![("blocksize", Attr::I(2)), ("mode", s("CRD"))],
        ),
        node(
            "SpaceToDepth",
            &["ds"],
            "sd",
            vec![("blocksize", Attr::I(2))],
        ),
        node("Hardmax", &["x"], "hm", vec![("axis", Attr::I(1))]),
        node(
            "CumSum",
            &["x", "w_axis"],
            "cs",
            vec![("reverse", Attr::I(1))],
        ),
        node("GlobalMaxPool", &["x"], "gm", vec![]),
        node("Mean", &["x", "half", "sd"], "mean", vec![]),
        node("Max", &["x", "half"], "mx", vec![]),
        node("Min", &["x", "half"], "mn", vec![]),
        node("ReduceProd", &["x", "channels"], "rp", vec![]),
        node("Exp", &["x"], "e", vec![]),
        node("ReduceLogSum", &["e", "channels"], "rl", vec![]),
        node("Gelu", &["x"], "g", vec![]),
        node("Gelu", &["x"], "gt", vec![("approximate", s("tanh"))]),
        node("Mish", &["x"], "mi", vec![]),
        node(
            "Shrink",
            &["x"],
            "sh",
            vec![("bias", Attr::F(0.1)), ("lambd", Attr::F(0.3))],
        ),
        node("CastLike", &["x", "like"], "cl", vec![]),
        flat("sd", "f0"),
        flat("hm", "f1"),
        flat("cs", "f2"),
        flat("gm", "f3"),
        flat("mean", "f4"),
        flat("mx", "f5"),
        flat("mn", "f6"),
        flat("rp", "f7"),
        flat("rl", "f8"),
        flat("g", "f9"),
        flat("gt", "f10"),
        flat("mi", "f11"),
        flat("sh", "f12"),
        flat("cl", "f13"),
        node(
            "Concat",
            &[
                "f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "f10", "f11", "f12",
                "f13",
            ],
            "y",
            vec![("axis", Attr::I(1))],
        ),
    ];
    let mut m = model(
        nodes,
        inits,
        value_info("x", &[1, 8, 2, 2]),
        value_info_any("y"),
    );
    m.opset_import[0].version = 20;
    check(&m, &[1, 8, 2, 2]);
}

#[test]
fn einsum_matches_tract() {
    // x [2, 3, 4]: attention scores `bqd,bkd->bqk` of x with itself, a projection by
    // constant weights, a sum over an axis, and the diagonal of a square slice.
    let inits = vec![
        float_tensor("W", &[4, 5], floats(81, 20)),
        int_tensor("s0", vec![0]),
        int_tensor("s3", vec![3]),
        int_tensor("ax2", vec![2]),
    ];
    let e = |eq: &str| ("equation", Attr::S(eq.into()));
    let flat = |x: &str, y: &str| node("Flatten", &[x], y, vec![("axis", Attr::I(0))]);
    let nodes = vec![
        node("Einsum", &["x", "x"], "scores", vec![e("bqd,bkd->bqk")]),
        node("Einsum", &["x", "W"], "proj", vec![e("bqd,de->bqe")]),
        node("Einsum", &["x"], "sum", vec![e("bqd->bd")]),
        node("Slice", &["x", "s0", "s3", "ax2"], "square", vec![]),
        node("Einsum", &["square"], "diag", vec![e("bii->bi")]),
        flat("scores", "f0"),
        flat("proj", "f1"),
        flat("sum", "f3"),
        flat("diag", "f4"),
        node(
            "Concat",
            &["f0", "f1", "f3", "f4"],
            "y",
            vec![("axis", Attr::I(1))],
        ),
    ];
    let m = model(
        nodes,
        inits,
        value_info("x", &[2, 3, 4]),
        value_info_any("y"),
    );
    check(&m, &[2, 3, 4]);
    // The implicit output is the labels that appear once, in order (numpy's `beq`), and
    // an ellipsis stands for the leading axes: tract 0.23.9 differs from numpy on both,
    // so the float interpreter is compared with the explicit forms.
    let implicit = |eq: &str| {
        let nodes = vec![node("Einsum", &["x", "W"], "y", vec![e(eq)])];
        let inits = vec![float_tensor("W", &[4, 5], floats(81, 20))];
        let m = model(
            nodes,
            inits,
            value_info("x", &[2, 3, 4]),
            value_info_any("y"),
        );
        let g = import_proto(&m).unwrap().graph;
        let y = g.run(&floats(5, 24)).unwrap().remove("y").unwrap();
        (g.shapes["y"].clone(), y.data)
    };
    assert_eq!(implicit("bqd,de"), implicit("bqd,de->beq"));
    assert_eq!(implicit("bqd,de").0, [2, 5, 3]);
    assert_eq!(implicit("...d,de->...e"), implicit("bqd,de->bqe"));
    // Three operands, and one label for two sizes, are refused by name.
    for (eq, ins, want) in [
        (
            "ab,bc,cd->ad",
            vec!["x", "x", "x"],
            "one or two are supported",
        ),
        ("abc,abc->ab", vec!["x", "W"], "labels 3 dimensions"),
    ] {
        let nodes = vec![node("Einsum", &ins, "y", vec![e(eq)])];
        let inits = vec![float_tensor("W", &[4, 5], floats(81, 20))];
        let m = model(
            nodes,
            inits,
            value_info("x", &[2, 3, 4]),
            value_info_any("y"),
        );
        let err = import_proto(&m).unwrap_err().to_string();
        assert!(err.contains(want), "{err}");
    }
}

/// An 8-bit integer tensor (`uint8` when `unsigned`, else `int8`), as quantization tools
/// write zero points and weights.
fn int8_tensor(
    name: &str,
    dims: &[i64],
    data: Vec<i32>,
    unsigned: bool,
) -> tract_onnx::pb::TensorProto {
    tract_onnx::pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: if unsigned { 2 } else { 3 },
        int32_data: data,
        ..Default::default()
    }
}

#[test]
fn quantize_dequantize_pairs_match_tract() {
    // A QDQ model as onnxruntime's static quantization writes it: x quantized to uint8
    // (zero point 128) and back, a MatMul by int8 weights dequantized per output column
    // (a constant), ReLU, quantized and dequantized again.
    let w: Vec<i32> = floats(91, 12).iter().map(|v| (v * 127.0) as i32).collect();
    let inits = vec![
        float_tensor("s_x", &[], vec![0.02]),
        int8_tensor("z_x", &[], vec![128], true),
        int8_tensor("W_q", &[4, 3], w, false),
        float_tensor("s_w", &[3], vec![0.01, 0.02, 0.015]),
        int8_tensor("z_w", &[3], vec![0, 0, 0], false),
        float_tensor("s_y", &[], vec![0.05]),
        int8_tensor("z_y", &[], vec![0], true),
    ];
    let nodes = vec![
        node("QuantizeLinear", &["x", "s_x", "z_x"], "x_q", vec![]),
        node("DequantizeLinear", &["x_q", "s_x", "z_x"], "x_dq", vec![]),
        node(
            "DequantizeLinear",
            &["W_q", "s_w", "z_w"],
            "W",
            vec![("axis", Attr::I(1))],
        ),
        node("MatMul", &["x_dq", "W"], "p", vec![]),
        node("Relu", &["p"], "r", vec![]),
        node("QuantizeLinear", &["r", "s_y", "z_y"], "r_q", vec![]),
        node("DequantizeLinear", &["r_q", "s_y", "z_y"], "y", vec![]),
    ];
    let mut m = model(nodes, inits, value_info("x", &[2, 4]), value_info_any("y"));
    m.opset_import[0].version = 13;
    let q = check(&m, &[2, 4]);
    // Both quantizations are one table each; the weights are constants.
    let steps = q
        .tables
        .iter()
        .filter(|t| matches!(t.func, zkinfer_qir::Func::Quantize { .. }))
        .count();
    assert_eq!(steps, 2);
    // A quantization to 16 bits, or per axis of a computed tensor, is refused by name.
    let inits = vec![
        float_tensor("s", &[2], vec![0.1, 0.2]),
        int8_tensor("z", &[2], vec![0, 0], false),
    ];
    let nodes = vec![node("QuantizeLinear", &["x", "s", "z"], "y", vec![])];
    let m = model(nodes, inits, value_info("x", &[2, 2]), value_info_any("y"));
    let e = import_proto(&m).unwrap_err().to_string();
    assert!(
        e.contains("per-axis quantization of a computed tensor"),
        "{e}"
    );
}

#[test]
fn scatters_with_a_reduction_match_tract() {
    // ScatterElements along axis 1 with a position written twice (add sums both, max and
    // min keep the extreme with data's element); ScatterND of single elements, one of
    // them twice, with mul, and of a row into a constant with add.
    let red = |r: &str| ("reduction", Attr::S(r.into()));
    let inits = vec![
        int_tensor_shaped("ie", &[2, 2], vec![1, 1, 3, 0]),
        int_tensor_shaped("ind", &[3, 2], vec![0, 1, 0, 1, 1, 2]),
        int_tensor_shaped("row", &[1, 1], vec![1]),
        float_tensor("base", &[2, 4], floats(51, 8)),
        int_tensor("s0", vec![0]),
        int_tensor("s2", vec![2]),
        int_tensor("s3", vec![3]),
        int_tensor("ax1", vec![1]),
        int_tensor("s1", vec![1]),
        int_tensor("flat", vec![8]),
    ];
    let scatter_elements = |r: &str, out: &str| {
        node(
            "ScatterElements",
            &["x", "ie", "u"],
            out,
            vec![("axis", Attr::I(1)), red(r)],
        )
    };
    let nodes = vec![
        node("Slice", &["x", "s0", "s2", "ax1"], "u", vec![]),
        scatter_elements("add", "a"),
        scatter_elements("max", "b"),
        scatter_elements("min", "c"),
        node("Reshape", &["x", "flat"], "xf", vec![]),
        node("Slice", &["xf", "s0", "s3"], "v", vec![]),
        node("ScatterND", &["x", "ind", "v"], "d", vec![red("mul")]),
        node("Slice", &["x", "s0", "s1"], "x0", vec![]),
        node("ScatterND", &["base", "row", "x0"], "e", vec![red("add")]),
        node(
            "Concat",
            &["a", "b", "c", "d", "e"],
            "y",
            vec![("axis", Attr::I(0))],
        ),
    ];
    let m = model(nodes, inits, value_info("x", &[2, 4]), value_info_any("y"));
    check(&m, &[2, 4]);
}

#[test]
fn layer_normalization_over_several_axes_with_its_statistics_matches_tract() {
    let inits = vec![
        float_tensor("scale", &[3, 4], floats(41, 12)),
        float_tensor("bias", &[3, 4], floats(42, 12)),
    ];
    let mut ln = node(
        "LayerNormalization",
        &["x", "scale", "bias"],
        "y",
        vec![("axis", Attr::I(1))],
    );
    ln.output
        .extend(["mean".to_string(), "inv_std".to_string()]);
    let mut m = model(
        vec![ln],
        inits,
        value_info("x", &[2, 3, 4]),
        value_info_any("y"),
    );
    let g = m.graph.as_mut().unwrap();
    g.output.push(value_info_any("mean"));
    g.output.push(value_info_any("inv_std"));
    check(&m, &[2, 3, 4]);
}

#[test]
fn resize_and_upsample_match_tract() {
    // Opset-13 Resize: X, roi (empty), scales or sizes.
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        Option<Vec<f32>>,
        Option<Vec<i64>>,
    );
    let cases: Vec<Case> = vec![
        (
            "nearest",
            "asymmetric",
            "floor",
            Some(vec![1.0, 1.0, 2.0, 3.0]),
            None,
        ),
        (
            "nearest",
            "half_pixel",
            "round_prefer_floor",
            Some(vec![1.0, 1.0, 1.5, 0.5]),
            None,
        ),
        (
            "nearest",
            "align_corners",
            "round_prefer_ceil",
            None,
            Some(vec![1, 2, 5, 7]),
        ),
        (
            "linear",
            "half_pixel",
            "round_prefer_floor",
            Some(vec![1.0, 1.0, 2.0, 2.0]),
            None,
        ),
        (
            "linear",
            "align_corners",
            "round_prefer_floor",
            None,
            Some(vec![1, 2, 5, 3]),
        ),
        (
            "linear",
            "asymmetric",
            "round_prefer_floor",
            Some(vec![1.0, 1.0, 0.5, 1.5]),
            None,
        ),
        (
            "linear",
            "pytorch_half_pixel",
            "round_prefer_floor",
            None,
            Some(vec![1, 2, 1, 6]),
        ),
    ];
    for (mode, transform, nearest, scales, sizes) in cases {
        let mut inits = vec![float_tensor("roi", &[0], vec![])];
        let mut inputs = vec!["x", "roi"];
        if let Some(s) = scales {
            inits.push(float_tensor("scales", &[4], s));
            inputs.push("scales");
        } else {
            inputs.push("");
        }
        if let Some(s) = sizes {
            inits.push(int_tensor("sizes", s));
            inputs.push("sizes");
        }
        let attrs = vec![
            ("mode", Attr::S(mode.into())),
            ("coordinate_transformation_mode", Attr::S(transform.into())),
            ("nearest_mode", Attr::S(nearest.into())),
        ];
        let nodes = vec![node("Resize", &inputs, "y", attrs)];
        let m = model(
            nodes,
            inits,
            value_info("x", &[1, 2, 3, 4]),
            value_info_any("y"),
        );
        check(&m, &[1, 2, 3, 4]);
    }
}

#[test]
#[allow(clippy::excessive_precision)] // the reference's outputs as it printed them
fn cubic_antialiased_and_cropped_resizes_match_the_onnx_reference() {
    // Opset 19 on x = floats(0, 20) as [1, 1, 4, 5]; each reference is onnx 1.17's
    // `ReferenceEvaluator` on the same input (tract has no cubic, antialias or crop).
    let s = |v: &str| Attr::S(v.into());
    // (attributes, roi, scales, sizes, reference)
    type Case = (
        Vec<(&'static str, Attr)>,
        Option<Vec<f32>>,
        Option<Vec<f32>>,
        Option<Vec<i64>>,
        Vec<f32>,
    );
    let cases: Vec<Case> = vec![
        (
            vec![("mode", s("cubic"))],
            None,
            Some(vec![1.0, 1.0, 1.5, 0.6]),
            None,
            vec![
                -0.4373203, -0.2117304, -0.0037056, -0.5886121, -0.0437115, 0.0961473, -0.6865209,
                -0.1349130, 0.1220865, -0.5840130, -0.7119740, -0.0556083, -0.0169125, -0.7620742,
                0.0571866, 0.4776954, -0.5541350, 0.2413991,
            ],
        ),
        (
            vec![("mode", s("linear")), ("antialias", Attr::I(1))],
            None,
            None,
            Some(vec![1, 1, 2, 3]),
            vec![
                -0.5106184, -0.1554710, 0.0333460, -0.0831225, -0.2614480, 0.0713967,
            ],
        ),
        (
            vec![
                ("mode", s("cubic")),
                ("antialias", Attr::I(1)),
                ("cubic_coeff_a", Attr::F(-0.5)),
                ("exclude_outside", Attr::I(1)),
            ],
            None,
            Some(vec![1.0, 1.0, 0.5, 0.8]),
            None,
            vec![
                -0.6703847, -0.1682158, -0.1056687, 0.0720344, -0.1206490, -0.3048312, -0.0875594,
                0.0369142,
            ],
        ),
        (
            vec![
                ("mode", s("linear")),
                ("coordinate_transformation_mode", s("tf_crop_and_resize")),
                ("extrapolation_value", Attr::F(0.5)),
                ("axes", Attr::Ints(vec![2, 3])),
            ],
            Some(vec![0.2, -0.1, 0.9, 1.2]),
            None,
            Some(vec![3, 4]),
            vec![
                0.5, -0.0922690, -0.1328157, 0.5, 0.5, -0.6369038, 0.4462711, 0.5, 0.5, 0.0479935,
                0.1193139, 0.5,
            ],
        ),
        (
            vec![
                ("mode", s("nearest")),
                ("keep_aspect_ratio_policy", s("not_smaller")),
                ("axes", Attr::Ints(vec![2, 3])),
            ],
            None,
            None,
            Some(vec![3, 3]),
            vec![
                -0.7966025, 0.2106466, -0.2327485, 0.1217192, -0.8417794, -0.2880412, -0.1068448,
                0.2666056, 0.0264485, 0.9494081, -0.1791170, 0.3670261,
            ],
        ),
    ];
    for (attrs, roi, scales, sizes, reference) in cases {
        let mut inits = vec![];
        let mut names = vec!["x", "", "", ""];
        for (at, name, v) in [(1, "roi", roi), (2, "scales", scales)] {
            if let Some(v) = v {
                names[at] = name;
                inits.push(float_tensor(name, &[v.len() as i64], v));
            }
        }
        if let Some(v) = sizes {
            names[3] = "sizes";
            inits.push(int_tensor("sizes", v));
        }
        while names.last() == Some(&"") {
            names.pop();
        }
        let nodes = vec![node("Resize", &names, "y", attrs)];
        let mut m = model(
            nodes,
            inits,
            value_info("x", &[1, 1, 4, 5]),
            value_info_any("y"),
        );
        m.opset_import[0].version = 19;
        matches_reference(&m, 20, &reference);
    }
}

#[test]
fn the_error_by_layer_is_the_integer_interpreters_against_the_float_graph() {
    // lenet5 at 12-bit activations and weights: every reported tensor, recomputed here
    // from the two interpreters' runs; the last is the model's output, whose error is the
    // fidelity report's.
    let models = shared_models();
    let cal = std::fs::read_to_string(models.join("lenet5.input.json")).unwrap();
    let options = zkinfer_pipeline::CompileOptions {
        bits: zkinfer_pipeline::Bits::Fixed(12),
        weight_bits: Some(12),
        ..Default::default()
    };
    let c =
        zkinfer_pipeline::compile(&models.join("lenet5.onnx"), &cal, &options).expect("compiles");
    let graph = import_onnx(&models.join("lenet5.onnx")).unwrap().graph;
    let sample = zkinfer_pipeline::input_sample(&c.circuits[0], &cal).unwrap();
    let float = graph.run(&sample).unwrap();
    let trace = c
        .model
        .run(&zkinfer_compiler::quantize_input(&c.model, &sample))
        .unwrap();
    assert!(c.layers.len() >= 8, "{:?}", c.layers);
    for l in &c.layers {
        let id = (0..c.model.values.len())
            .rev()
            .find(|&i| c.model.values[i].name == l.name)
            .unwrap();
        let v = &c.model.values[id];
        let f = &float[&l.name].data;
        let q = trace.get(zkinfer_qir::ValueId(id));
        let err = f
            .iter()
            .zip(q)
            .map(|(&a, &b)| (a as f64 - zkinfer_qir::dequantize(b, v.scale)).abs())
            .fold(0f64, f64::max);
        let range = f.iter().map(|a| a.abs() as f64).fold(0f64, f64::max);
        assert_eq!((l.max_abs_error, l.max_abs), (err, range), "{}", l.name);
    }
    let out = c.layers.last().unwrap();
    assert_eq!(out.name, graph.output);
    assert_eq!(out.max_abs_error, c.circuits[0].fidelity.max_abs_error);
    // Errors grow with depth here: the output's is larger than the input's rounding (with
    // the default's 16-bit weights it no longer is).
    assert!(out.relative() > c.layers[0].relative());
}

/// A certificate graph: the samples then exactly their labels as inputs, the count as the
/// one output, computed from the class scores; a model that names a tensor like the
/// certificate's (an initializer posing as the labels), has no class scores or a fixed
/// batch of more than one is refused; and the count the integer model computes is the
/// float model's agreement with the labels.
#[test]
fn certificate_graphs_count_argmax_agreement_and_refuse_impostors() {
    use zkinfer_compiler::import::certificate::{certificate_proto, LABELS};
    let (m, _) = gemm_model(false, false, 1.0, 1.0, Some(&[3]), 1);
    let batch = 4;
    let cert = certificate_proto(&m, batch).unwrap();
    assert_eq!(cert.classes, 3);
    let g = &cert.imported.graph;
    assert_eq!(g.inputs.len(), 2);
    assert_eq!(g.inputs[0].shape, vec![batch, 5]);
    assert_eq!(
        (g.inputs[1].name.as_str(), &g.inputs[1].shape),
        (LABELS, &vec![batch])
    );
    assert_eq!(g.output_shape(), [1]);

    // The integer model counts exactly the samples whose float argmax is the label.
    let samples: Vec<Vec<f32>> = (0..batch as u64).map(|s| floats(40 + s, 5)).collect();
    let predicted: Vec<usize> = samples
        .iter()
        .map(|x| {
            let run = cert.model.graph.run(x).unwrap();
            let z: Vec<f64> = run["Z"].data.iter().map(|&v| v as f64).collect();
            zkinfer_compiler::quantize::argmax(&z)
        })
        .collect();
    let packed = |labels: &[usize]| {
        let mut v: Vec<f32> = samples.concat();
        v.extend(labels.iter().map(|&l| l as f32));
        v
    };
    let cal = calibrate(g, &cert.calibration(&samples).unwrap()).unwrap();
    let q = quantize(g, &cal, QuantConfig::default()).unwrap();
    // The tail has no parameter that hashed weights would let the prover choose.
    assert_eq!(
        zkinfer_pipeline::certificate::tail_with_parameters(&q),
        None
    );
    for wrong in 0..=batch {
        // The first `wrong` labels moved to another class.
        let labels: Vec<usize> = (0..batch)
            .map(|i| {
                if i < wrong {
                    (predicted[i] + 1) % 3
                } else {
                    predicted[i]
                }
            })
            .collect();
        let out = zkinfer_compiler::run_quantized(&q, &packed(&labels)).unwrap();
        assert_eq!(out, vec![(batch - wrong) as f64], "{wrong} wrong labels");
    }

    let mut impostor = m.clone();
    let gp = impostor.graph.as_mut().unwrap();
    gp.initializer
        .push(float_tensor(LABELS, &[batch as i64], vec![0.0; batch]));
    let e = certificate_proto(&impostor, batch).unwrap_err().to_string();
    assert!(e.contains("zkinfer:"), "{e}");

    let (no_scores, _) = gemm_model(false, false, 1.0, 1.0, None, 1);
    let mut no_scores = no_scores;
    let gp = no_scores.graph.as_mut().unwrap();
    gp.node.push(node(
        "ReduceSum",
        &["Z"],
        "S",
        vec![("keepdims", Attr::I(0))],
    ));
    gp.output = vec![value_info_any("S")];
    let e = certificate_proto(&no_scores, batch)
        .unwrap_err()
        .to_string();
    assert!(e.contains("class scores"), "{e}");

    // Three rows of a fixed batch, flattened into one score vector.
    let (mut fixed, _) = gemm_model(false, false, 1.0, 1.0, None, 3);
    let gp = fixed.graph.as_mut().unwrap();
    gp.initializer.push(int_tensor("flat", vec![1, 9]));
    gp.node.push(node("Reshape", &["Z", "flat"], "F", vec![]));
    gp.output = vec![value_info("F", &[1, 9])];
    let e = certificate_proto(&fixed, batch).unwrap_err().to_string();
    assert!(e.contains("not a batch dimension"), "{e}");
}

/// Quantizes `m` at the default widths on `samples` and checks its circuit on each of
/// them with MockProver; returns the graph and the quantized model.
fn default_widths(
    m: &ModelProto,
    samples: &[Vec<f32>],
) -> (zkinfer_compiler::graph::Graph, zkinfer_qir::QModel) {
    let graph = import_proto(m).unwrap().graph;
    let cal = calibrate(&graph, samples).unwrap();
    let q = quantize(&graph, &cal, QuantConfig::default()).unwrap();
    let (plan, _) = plan_layout(&q, Default::default(), None, Default::default()).unwrap();
    for s in samples {
        let trace = q.run(&quantize_input(&q, s)).unwrap();
        let instances = ModelCircuit::instances(&q, &plan.layout, &trace, &Default::default());
        let circuit =
            ModelCircuit::with_trace(Arc::new(q.clone()), plan.layout.clone(), Arc::new(trace));
        let prover = MockProver::run(plan.layout.k, &circuit, vec![instances]).unwrap();
        assert_eq!(prover.verify(), Ok(()));
    }
    (graph, q)
}

/// `relu(x · W)` for a `[1, 1]` input and `W = 11/16`, then `op` (if any) against
/// `0.0048828125` (`10 / 2048`).
fn scaled_by_eleven_sixteenths(op: Option<&str>) -> ModelProto {
    let mut inits = vec![float_tensor("W", &[1, 1], vec![11.0 / 16.0])];
    let mut nodes = vec![
        node("MatMul", &["x", "W"], "p", vec![]),
        node("Relu", &["p"], "v", vec![]),
    ];
    let out = match op {
        Some(op) => {
            inits.push(float_tensor("c", &[1, 1], vec![10.0 / 2048.0]));
            nodes.push(node(op, &["v", "c"], "y", vec![]));
            "y"
        }
        None => "v",
    };
    model(nodes, inits, value_info("x", &[1, 1]), value_info_any(out))
}

#[test]
fn a_rescale_rounds_to_nearest_and_a_comparison_keeps_the_floor() {
    // Calibrated on x = 1, the product (at most 11/16) gets scale 2^11. x = 7/1024 and
    // the weight are exact at their scales, so the accumulator is exactly 77/16384 =
    // 9.625 / 2048: rounded, the output is 10/2048 (a floor would give 9/2048).
    let samples = vec![vec![1.0], vec![7.0 / 1024.0]];
    let (_, q) = default_widths(&scaled_by_eleven_sixteenths(None), &samples);
    assert_eq!(q.value(q.output).scale, 11);
    let out = run_quantized(&q, &samples[1]).unwrap();
    assert_eq!(out, vec![10.0 / 2048.0]);
    // 9.625 / 2048 < 10 / 2048: the comparison reads the ReLU's floor, exact, not the
    // rounding.
    let (_, q) = default_widths(&scaled_by_eleven_sixteenths(Some("Less")), &samples);
    assert_eq!(run_quantized(&q, &samples[1]).unwrap(), vec![1.0]);
    let (_, q) = default_widths(
        &scaled_by_eleven_sixteenths(Some("GreaterOrEqual")),
        &samples,
    );
    assert_eq!(run_quantized(&q, &samples[1]).unwrap(), vec![0.0]);
}

#[test]
fn a_chain_of_rescales_has_no_drift() {
    // Ten 16 × 16 layers: a floor at each would shift every output by about half a unit
    // per layer, all in one direction; rounding keeps the mean error near zero.
    let mut inits = Vec::new();
    let mut nodes = Vec::new();
    let mut at = "x".to_string();
    for l in 0..10 {
        let w: Vec<f32> = floats(300 + l, 256).iter().map(|v| v * 0.4).collect();
        inits.push(float_tensor(&format!("W{l}"), &[16, 16], w));
        nodes.push(node(
            "MatMul",
            &[&at, &format!("W{l}")],
            &format!("h{l}"),
            vec![],
        ));
        at = format!("h{l}");
    }
    let m = model(nodes, inits, value_info("x", &[1, 16]), value_info_any(&at));
    let samples: Vec<Vec<f32>> = (0..8).map(|s| floats(400 + s, 16)).collect();
    let (graph, q) = default_widths(&m, &samples);
    let ulp = (-(q.value(q.output).scale as f64)).exp2();
    let (mut sum, mut n) = (0f64, 0usize);
    for s in &samples {
        let float = &graph.run(s).unwrap()[&graph.output].data;
        for (a, b) in float.iter().zip(run_quantized(&q, s).unwrap()) {
            sum += b - *a as f64;
            n += 1;
        }
    }
    let drift = sum / n as f64 / ulp;
    assert!(drift.abs() < 0.5, "mean error {drift} units of the output");
}

#[test]
fn layer_norm_over_768_and_peaked_softmax_rows_stay_within_one_percent() {
    // round(2^11 / 768) = 3 made the mean and variance 12.5% off; a softmax row whose
    // sum is near 1 read it with 6 fractional bits. Both at the default 12 bits.
    let inits = vec![
        float_tensor("gamma", &[768], floats(71, 768)),
        float_tensor("beta", &[768], floats(72, 768)),
    ];
    let ln = layer_norm_of_x("y");
    let mut m = model(
        vec![ln],
        inits,
        value_info("x", &[1, 2, 768]),
        value_info_any("y"),
    );
    m.opset_import[0].version = 17;
    let samples: Vec<Vec<f32>> = (0..2)
        .map(|s| floats(80 + s, 1536).iter().map(|v| v * 3.0 + 0.5).collect())
        .collect();
    let (graph, q) = default_widths(&m, &samples);
    let f = fidelity(&graph, &q, &samples).unwrap();
    assert!(f.max_abs_error <= 0.01 * f.output_max_abs, "{f}");

    // Rows of 64 logits in [-8, 8]: most rows have one or two large terms.
    let (m, samples) = softmax_rows(4, 8.0, 90);
    let (graph, q) = default_widths(&m, &samples);
    let f = fidelity(&graph, &q, &samples).unwrap();
    assert!(f.max_abs_error <= 0.01 * f.output_max_abs, "{f}");
}

/// A softmax over `rows` rows of 64 logits, and two samples of logits uniform in
/// `[-scale, scale]` (seeds from `seed`).
fn softmax_rows(rows: usize, scale: f32, seed: u64) -> (ModelProto, Vec<Vec<f32>>) {
    let nodes = vec![node("Softmax", &["x"], "y", vec![("axis", Attr::I(-1))])];
    let m = model(
        nodes,
        vec![],
        value_info("x", &[rows as i64, 64]),
        value_info_any("y"),
    );
    let samples = (0..2)
        .map(|s| {
            floats(seed + s, rows * 64)
                .iter()
                .map(|v| v * scale)
                .collect()
        })
        .collect();
    (m, samples)
}

#[test]
fn softmax_probabilities_have_no_drift() {
    // Diffuse rows: 64 probabilities each, most of them small. A floor when they are
    // bounded would pull every one down by half a unit on average, and an attention
    // output (a weighted sum over the row) by 32 units.
    let (m, samples) = softmax_rows(8, 2.0, 500);
    let (_, q) = default_widths(&m, &samples);
    // Each row's probabilities sum to 1: their quantized sum is off by the bias.
    let (mut total, mut rows) = (0f64, 0usize);
    for s in &samples {
        for row in run_quantized(&q, s).unwrap().chunks(64) {
            total += row.iter().sum::<f64>() - 1.0;
            rows += 1;
        }
    }
    let drift = total / rows as f64;
    assert!(
        drift.abs() < 0.002,
        "a row's probabilities sum to 1 {drift:+}"
    );
}

/// `x · 1.5` into a ReLU (the graph's output, `r`), and `x · 1.5` read by a linear layer
/// too where `linear`: the product `m` is an accumulator whose range a narrowing may
/// saturate on both ways it is bounded (a ReLU's rescale, a consumer's).
fn saturation_model(n: i64, linear: bool) -> ModelProto {
    let mut nodes = vec![
        node("Mul", &["x", "c"], "m", vec![]),
        node("Relu", &["m"], "r", vec![]),
    ];
    let mut inits = vec![float_tensor("c", &[], vec![1.5])];
    let out = if linear {
        nodes.push(node("MatMul", &["m", "w"], "b", vec![]));
        nodes.push(node("Concat", &["r", "b"], "y", vec![("axis", Attr::I(1))]));
        inits.push(float_tensor("w", &[n, 4], floats(8, n as usize * 4)));
        value_info("y", &[1, n + 4])
    } else {
        value_info("r", &[1, n])
    };
    model(nodes, inits, value_info("x", &[1, n]), out)
}

/// 40 samples in [−1, 1) of 256 values; one value of one sample is −40.
fn samples_with_an_outlier() -> Vec<Vec<f32>> {
    outlying_samples(40, 256)
}

/// `n` samples in [−1, 1) of `len` values; value 5 of sample 3 is −40.
fn outlying_samples(n: u64, len: usize) -> Vec<Vec<f32>> {
    let mut samples: Vec<Vec<f32>> = (0..n).map(|s| floats(s, len)).collect();
    samples[3][5] = -40.0;
    samples
}

/// The index of the last value named `name` (an accumulator and its bounded value share
/// the tensor's name).
fn value_named(q: &zkinfer_qir::QModel, name: &str) -> zkinfer_qir::ValueId {
    zkinfer_qir::ValueId(q.values.iter().rposition(|v| v.name == name).unwrap())
}

/// `q` with the range of `m` narrowed by `narrowing` bits (none: as calibrated), at
/// 12-bit activations and weights.
fn narrowed(
    graph: &zkinfer_compiler::graph::Graph,
    cal: &zkinfer_compiler::Calibration,
    narrowing: Option<u32>,
) -> zkinfer_qir::QModel {
    let mut tensors = zkinfer_compiler::TensorWidths::default();
    if let Some(n) = narrowing {
        tensors.ranges.insert("m".into(), n);
    }
    let cfg = QuantConfig {
        act_bits: 12,
        weight_bits: 12,
        tensors,
        ..QuantConfig::default()
    };
    quantize(graph, cal, cfg).unwrap()
}

/// Ranges robust to outliers (issue 17). Calibration finds that all but one of the
/// 10,240 values of `m` lie 2^6 below its largest (with its headroom); a range narrowed by that many bits gives the
/// others steps 64 times finer, and the outlier saturates to the range's low edge. The
/// circuit is satisfied, on both ways `m` is bounded (its ReLU, a linear layer) with
/// one saturation; a prover who changes a lookup of the saturation, claims a value beyond
/// the range inside it, or moves a value inside it, is refused.
#[test]
fn a_narrowed_range_saturates_outliers_and_its_circuit_refuses_other_values() {
    use zkinfer_compiler::outlier_bits;
    use zkinfer_qir::{Activation, Func, QOp};
    let samples = samples_with_an_outlier();
    let graph = import_proto(&saturation_model(256, false)).unwrap().graph;
    let cal = calibrate(&graph, &samples).unwrap();
    assert_eq!(cal.max_abs["m"], 60.0);
    assert!(cal.robust["m"] < 1.6, "{}", cal.robust["m"]);
    let narrowing = outlier_bits(&cal, "m", 12);
    assert_eq!(narrowing, 6);
    // x's largest is one value of 10,240 too, but x is an input: its range is the
    // statement's, and nothing saturates it.
    let (plain, q) = (
        narrowed(&graph, &cal, None),
        narrowed(&graph, &cal, Some(narrowing)),
    );
    let saturations = q
        .tables
        .iter()
        .filter(|t| matches!(t.func, Func::Saturate { .. }))
        .count();
    assert_eq!(saturations, 2);
    // The ReLU's output is at m's calibrated scale.
    let m = value_named(&q, "m");
    assert_eq!(q.value(m).scale, plain.value(plain.output).scale + 6);

    // Inside the range, m is the floor at the finer scale; the outlier is the low edge.
    let half = 1i64 << 11;
    let trace = q.run(&quantize_input(&q, &samples[3])).unwrap();
    let step = 2f64.powi(-q.value(m).scale);
    let x_step = 2f64.powi(-q.value(q.input).scale);
    for (i, &v) in trace.get(m).iter().enumerate() {
        let float = 1.5 * f64::from(samples[3][i]);
        if i == 5 {
            assert_eq!(v, -half);
        } else {
            let real = v as f64 * step;
            assert!(
                (real - float).abs() < step + 1.5 * x_step,
                "{i}: {real} vs {float}"
            );
        }
    }
    let bulk: Vec<Vec<f32>> = samples
        .iter()
        .enumerate()
        .filter(|&(k, _)| k != 3)
        .map(|(_, s)| s.clone())
        .collect();
    let (before, after) = (
        fidelity(&graph, &plain, &bulk).unwrap(),
        fidelity(&graph, &q, &bulk).unwrap(),
    );
    assert!(
        after.mean_abs_error < before.mean_abs_error,
        "{after} vs {before}"
    );
    satisfied(&q, &samples[3]);

    // Both ways m is bounded take the one saturation, and the circuit is satisfied.
    let linear = import_proto(&saturation_model(256, true)).unwrap().graph;
    let both = narrowed(
        &linear,
        &calibrate(&linear, &samples).unwrap(),
        Some(narrowing),
    );
    let highs = both
        .values
        .iter()
        .filter(|v| v.name == "m/saturate/high")
        .count();
    assert_eq!(highs, 1);
    // Its two consumers read it through rescales by 2^0 (a ReLU's, the linear layer's):
    // only rescales make bounded values, where segments may cut.
    let kept = value_named(&both, "m/saturate/kept");
    let y = both
        .ops
        .iter()
        .find_map(|op| match op {
            QOp::Add(a) if a.a == kept => Some(a.output),
            _ => None,
        })
        .unwrap();
    let readers: Vec<_> = both
        .ops
        .iter()
        .filter(|op| op.inputs().contains(&y))
        .map(|op| match op {
            QOp::Rescale(r) => (r.shift, r.act),
            other => panic!("{} reads the saturated value", other.kind()),
        })
        .collect();
    assert_eq!(
        readers,
        [(0, Activation::Relu), (0, Activation::Identity)],
        "{readers:?}"
    );
    satisfied(&both, &samples[3]);

    // Tampering with element 5 (saturated low: hi far below −1, r = 0) or 7 (inside the
    // range, r > 0), the public output kept consistent, is refused.
    let [high, rest, low, inside, edge, kept] = ["high", "rest", "low", "inside", "edge", "kept"]
        .map(|p| value_named(&q, &format!("m/saturate/{p}")));
    let r = q.output;
    let shift = q
        .ops
        .iter()
        .find_map(|op| match op {
            QOp::Rescale(s) if s.output == low => Some(s.shift),
            _ => None,
        })
        .unwrap();
    // The inside bit set for a value beyond the range: y = lo − 2^h, still r = 0.
    assert_trace_refused(&q, &samples[3], |t| {
        t.values[inside.0][5] = 1;
        t.values[kept.0][5] = t.values[low.0][5];
        t.values[m.0][5] = t.values[low.0][5] + t.values[edge.0][5];
    });
    // The edge of a value beyond the range claimed to be 0: y = 0, r = 0.
    assert_trace_refused(&q, &samples[3], |t| {
        t.values[edge.0][5] = 0;
        t.values[m.0][5] = 0;
    });
    // hi claimed −1 (inside the range), everything after it recomputed from it.
    assert_trace_refused(&q, &samples[3], |t| {
        let x = t.values[rest.0][5] + (t.values[high.0][5] << (shift + 11));
        let rest_v = x + (1i64 << (shift + 11));
        let lo = rest_v >> shift;
        t.values[high.0][5] = -1;
        t.values[rest.0][5] = rest_v;
        t.values[low.0][5] = lo;
        t.values[inside.0][5] = 1;
        t.values[edge.0][5] = -half;
        t.values[kept.0][5] = lo;
        t.values[m.0][5] = lo - half;
        t.values[r.0][5] = (lo - half).max(0);
    });
    // A value inside the range, one step off, and r with it.
    let mut positive = samples[3].clone();
    positive[7] = 0.5;
    assert_trace_refused(&q, &positive, |t| {
        t.values[m.0][7] += 1;
        t.values[r.0][7] += 1;
    });
}

/// A narrowed range keeps a value beyond the calibrated one provable: `m = x²` at its
/// largest calibrated value (x = −40) sets a range that x = 60, inside x's own range,
/// takes `m` beyond. Without the narrowing the proof fails there; with it, `m` saturates
/// to the high edge and the circuit is satisfied.
#[test]
fn a_narrowed_range_proves_values_beyond_the_calibrated_range() {
    use zkinfer_compiler::outlier_bits;
    let nodes = vec![node("Mul", &["x", "x"], "m", vec![])];
    let m = model(
        nodes,
        vec![],
        value_info("x", &[1, 256]),
        value_info("m", &[1, 256]),
    );
    let graph = import_proto(&m).unwrap().graph;
    let samples = samples_with_an_outlier();
    let cal = calibrate(&graph, &samples).unwrap();
    let narrowing = outlier_bits(&cal, "m", 12);
    assert_eq!(narrowing, zkinfer_compiler::MAX_NARROWING);
    let (plain, q) = (
        narrowed(&graph, &cal, None),
        narrowed(&graph, &cal, Some(narrowing)),
    );
    let mut far = samples[0].clone();
    far[9] = 60.0;
    let err = plain.run(&quantize_input(&plain, &far)).unwrap_err();
    assert!(
        matches!(err, zkinfer_qir::QirError::OutOfRange { .. }),
        "{err}"
    );
    let trace = q.run(&quantize_input(&q, &far)).unwrap();
    assert_eq!(trace.get(q.output)[9], (1 << 11) - 1);
    satisfied(&q, &far);
    satisfied(&q, &samples[3]);
}

/// The default search narrows a range where that pays: `m = 1.5·x`'s one outlier goes
/// into a ReLU, which zeroes it either way, so a range 2^6 narrower lowers the error on
/// both halves of the calibration samples; and `m` is small beside the linear layer that
/// follows, so its saturation costs less than [`zkinfer_pipeline::WIDEST_SLACK`] more.
/// It is taken, and the compiled model saturates there.
#[test]
fn the_default_search_narrows_a_range_where_the_error_falls() {
    use zkinfer_pipeline::{compile_imported, CompileOptions, Widened};
    let nodes = vec![
        node("Mul", &["x", "c"], "m", vec![]),
        node("Relu", &["m"], "r", vec![]),
        node("MatMul", &["r", "w"], "y", vec![]),
    ];
    let inits = vec![
        float_tensor("c", &[], vec![1.5]),
        float_tensor("w", &[32, 1024], floats(8, 32 * 1024)),
    ];
    let m = model(
        nodes,
        inits,
        value_info("x", &[1, 32]),
        value_info("y", &[1, 1024]),
    );
    // One value of 10,240 is the outlier.
    let samples = outlying_samples(320, 32);
    let compile = |per_tensor| {
        let imported = import_proto(&m).unwrap();
        let options = CompileOptions {
            per_tensor,
            ..CompileOptions::default()
        };
        compile_imported(
            std::path::Path::new("saturation"),
            imported,
            &samples,
            &options,
        )
        .unwrap()
    };
    let (plain, c) = (compile(false), compile(true));
    let narrowed: Vec<_> = c
        .widths
        .iter()
        .filter(|w| w.taken && w.widened == Widened::Range("m".into()))
        .collect();
    assert_eq!(narrowed.len(), 1, "{:#?}", c.widths);
    assert!(narrowed[0].narrowed >= 1);
    let (f, g) = (&c.circuits[0].fidelity, &plain.circuits[0].fidelity);
    assert!(
        f.mean_abs_error < g.mean_abs_error && f.max_abs_error <= g.max_abs_error,
        "{f} vs {g}"
    );
    assert!(c.model.values.iter().any(|v| v.name == "m/saturate/high"));
}
