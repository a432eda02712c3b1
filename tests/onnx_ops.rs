//! Every supported ONNX op and attribute: the float interpreter against tract, the
//! quantized model against the float one, and the circuit against the integer
//! interpreter (MockProver).

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::Framework;
use zkinfer_circuits::halo2_proofs::dev::MockProver;
use zkinfer_circuits::{plan_layout, ModelCircuit};
use zkinfer_compiler::import::import_proto;
use zkinfer_compiler::{
    calibrate, fidelity, import_onnx, quantize, quantize_input, CompileError, QuantConfig,
};
use zkinfer_tests::{
    encode, float_tensor, floats, int_tensor, model, node, shared_models, tract_run, value_info,
    value_info_any, Attr,
};

/// Float reference, quantized fidelity and MockProver on one model; returns the
/// quantized model.
fn check(m: &ModelProto, input_shape: &[usize]) -> zkinfer_qir::QModel {
    let onnx = encode(m);
    let graph = import_proto(m).expect("imports").graph;
    let n: usize = input_shape.iter().product();
    let samples: Vec<Vec<f32>> = (0..3).map(|s| floats(s, n)).collect();
    for x in &samples {
        let ours = &graph.run(x).expect("float run")[&graph.output].data;
        let tract = tract_run(&onnx, input_shape, x);
        assert_eq!(ours.len(), tract.len());
        for (a, b) in ours.iter().zip(&tract) {
            assert!((a - b).abs() < 1e-4, "float interpreter {a} vs tract {b}");
        }
    }
    let cal = calibrate(&graph, &samples).unwrap();
    let q = quantize(
        &graph,
        &cal,
        QuantConfig {
            act_bits: 10,
            weight_bits: 10,
        },
    )
    .unwrap();
    let fid = fidelity(&graph, &q, &samples).unwrap();
    assert!(
        fid.max_abs_error <= 0.05 * fid.output_max_abs.max(0.1),
        "quantized output too far from float: {fid}"
    );
    let trace = q.run(&quantize_input(&q, &samples[0])).unwrap();
    let (plan, _) = plan_layout(&q, Default::default(), None, Default::default()).unwrap();
    let instances = ModelCircuit::instances(&q, &plan.layout, &trace, &Default::default());
    let circuit =
        ModelCircuit::with_trace(Arc::new(q.clone()), plan.layout.clone(), Arc::new(trace));
    let prover = MockProver::run(plan.layout.k, &circuit, vec![instances]).unwrap();
    assert_eq!(prover.verify(), Ok(()));
    q
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
        node("Where", &["x", "x", "x"], "a", vec![]),
        node("Relu", &["a"], "b", vec![]),
        custom,
        node("LSTM", &["c"], "y", vec![]),
    ];
    let m = model(nodes, vec![], value_info("x", &[1, 4]), value_info_any("y"));
    let err = import_proto(&m).unwrap_err();
    let CompileError::Unsupported { nodes } = &err else {
        panic!("expected Unsupported, got {err}");
    };
    let ops: Vec<&str> = nodes.iter().map(|(op, _)| op.as_str()).collect();
    assert_eq!(ops, ["Where", "com.example::Fancy", "LSTM"]);
    let msg = err.to_string();
    assert!(
        msg.contains("LSTM (node `LSTM:y`)") && msg.contains("Supported: Add"),
        "{msg}"
    );
}

#[test]
fn softmax_and_layer_norm_match_tract() {
    let inits = vec![
        float_tensor("gamma", &[8], floats(61, 8)),
        float_tensor("beta", &[8], floats(62, 8)),
        float_tensor("W", &[8, 8], floats(63, 64)),
    ];
    let mut ln = node(
        "LayerNormalization",
        &["x", "gamma", "beta"],
        "n",
        vec![("epsilon", Attr::F(1e-5))],
    );
    ln.attribute.push(tract_onnx::pb::AttributeProto {
        name: "axis".into(),
        r#type: tract_onnx::pb::attribute_proto::AttributeType::Int as i32,
        i: -1,
        ..Default::default()
    });
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
    // A ReLU of a constant (no constant folding): an error naming the node, not a panic.
    let inits = vec![float_tensor("c", &[1, 4], floats(3, 4))];
    let nodes = vec![
        node("Relu", &["c"], "r", vec![]),
        node("Add", &["x", "r"], "y", vec![]),
    ];
    let m = model(nodes, inits, value_info("x", &[1, 4]), value_info_any("y"));
    let graph = import_proto(&m).unwrap().graph;
    let cal = calibrate(&graph, &[floats(1, 4)]).unwrap();
    let err = quantize(&graph, &cal, QuantConfig::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Relu:r") && err.contains("`c` is a constant"),
        "{err}"
    );
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
    let data = parse_input_json(&text, graph.input_shape().iter().product()).unwrap();
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
