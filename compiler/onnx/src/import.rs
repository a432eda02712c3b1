//! ONNX → float graph IR.
//!
//! The protobuf is decoded by `tract-onnx` (a real ONNX parser); this module maps
//! nodes to typed [`Op`]s, applies each attribute's ONNX default, and infers every
//! tensor's shape. Every unsupported node is reported at once, before any other work.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use tract_onnx::pb;
use tract_onnx::pb::tensor_shape_proto::dimension::Value as Dim;
use tract_onnx::prelude::Framework;

use crate::graph::{broadcast_shape, matmul_dims, Gemm, Graph, Node, Op, Tensor, Window};
use crate::proto::{decode_tensor, Decoded};
use crate::CompileError;

/// ONNX op types this version can compile.
pub const SUPPORTED_OPS: &[&str] = &[
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "Div",
    "Erf",
    "Exp",
    "Flatten",
    "Gather",
    "Gemm",
    "GlobalAveragePool",
    "Identity",
    "LayerNormalization",
    "LeakyRelu",
    "MatMul",
    "Max",
    "MaxPool",
    "Min",
    "Mul",
    "Neg",
    "Pad",
    "Reciprocal",
    "ReduceMean",
    "ReduceSum",
    "Relu",
    "Reshape",
    "Shape",
    "Sigmoid",
    "Slice",
    "Softmax",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Sum",
    "Tanh",
    "Transpose",
    "Unsqueeze",
];

/// A model loaded from disk, with notes about assumptions made while importing.
#[derive(Clone, Debug)]
pub struct Imported {
    pub graph: Graph,
    /// Things a user should know (e.g. a symbolic batch dimension fixed to 1).
    pub notes: Vec<String>,
}

/// Reads and imports an ONNX file.
pub fn import_onnx(path: &Path) -> Result<Imported, CompileError> {
    let parse_err = |reason: String| CompileError::Parse {
        path: path.display().to_string(),
        reason,
    };
    let proto = tract_onnx::onnx()
        .proto_model_for_path(path)
        .map_err(|e| parse_err(format!("not a readable ONNX model: {e:#}")))?;
    import_proto(&proto).map_err(|e| match e {
        CompileError::Parse { reason, .. } => parse_err(reason),
        other => other,
    })
}

/// Imports a decoded ONNX model.
pub fn import_proto(proto: &pb::ModelProto) -> Result<Imported, CompileError> {
    let parse_err = |reason: String| CompileError::Parse {
        path: String::new(),
        reason,
    };
    let g = proto
        .graph
        .as_ref()
        .ok_or_else(|| parse_err("the model has no graph".into()))?;
    let opset = proto
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .unwrap_or(1);

    // Every unsupported node, at once.
    let unsupported: Vec<(String, String)> = g
        .node
        .iter()
        .enumerate()
        .filter(|(_, n)| {
            !(n.domain.is_empty() || n.domain == "ai.onnx")
                || !SUPPORTED_OPS.contains(&n.op_type.as_str())
        })
        .map(|(i, n)| {
            let op = if n.domain.is_empty() {
                n.op_type.clone()
            } else {
                format!("{}::{}", n.domain, n.op_type)
            };
            (op, node_name(n, i))
        })
        .collect();
    if !unsupported.is_empty() {
        return Err(CompileError::Unsupported { nodes: unsupported });
    }

    let mut notes = Vec::new();
    let mut constants: BTreeMap<String, Tensor> = BTreeMap::new();
    let mut int_constants: BTreeMap<String, (Vec<usize>, Vec<i64>)> = BTreeMap::new();
    for t in &g.initializer {
        match decode_tensor(t).map_err(|r| parse_err(format!("initializer `{}`: {r}", t.name)))? {
            Decoded::Float(x) => {
                constants.insert(t.name.clone(), x);
            }
            Decoded::Int(shape, v) => {
                int_constants.insert(t.name.clone(), (shape, v));
            }
        }
    }

    let inputs: Vec<&pb::ValueInfoProto> = g
        .input
        .iter()
        .filter(|i| !constants.contains_key(&i.name) && !int_constants.contains_key(&i.name))
        .collect();
    let [input] = inputs.as_slice() else {
        return Err(parse_err(format!(
            "zkinfer proves models with exactly one input tensor; this graph has {}: {}",
            inputs.len(),
            inputs
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let [output] = g.output.as_slice() else {
        return Err(parse_err(format!(
            "zkinfer proves models with exactly one output tensor; this graph has {}",
            g.output.len()
        )));
    };
    let input_shape = value_info_shape(input, &mut notes)?;

    let mut shapes: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    shapes.insert(input.name.clone(), input_shape);
    for (name, t) in &constants {
        shapes.insert(name.clone(), t.shape.clone());
    }
    let mut nodes = Vec::new();
    for (i, n) in g.node.iter().enumerate() {
        let name = node_name(n, i);
        let invalid = |reason: String| CompileError::InvalidNode {
            node: name.clone(),
            op: n.op_type.clone(),
            reason,
        };
        let [out] = n.output.as_slice() else {
            return Err(invalid(format!(
                "expected one output, found {}",
                n.output.len()
            )));
        };
        if n.op_type == "Constant" {
            let attr = n
                .attribute
                .iter()
                .find(|a| a.name == "value")
                .and_then(|a| a.t.as_ref())
                .ok_or_else(|| {
                    invalid("only the `value` (tensor) form of Constant is supported".into())
                })?;
            match decode_tensor(attr).map_err(invalid)? {
                Decoded::Float(t) => {
                    shapes.insert(out.clone(), t.shape.clone());
                    constants.insert(out.clone(), t);
                }
                Decoded::Int(shape, v) => {
                    int_constants.insert(out.clone(), (shape, v));
                }
            }
            continue;
        }
        // Shape and ConstantOfShape fold to constants: every shape is static here.
        if n.op_type == "Shape" {
            let x = n
                .input
                .first()
                .and_then(|x| shapes.get(x))
                .ok_or_else(|| invalid("its input has no known shape".into()))?;
            let rank = x.len() as i64;
            let clamp = |v: i64| (if v < 0 { v + rank } else { v }).clamp(0, rank) as usize;
            let start = clamp(attr_i(n, "start").unwrap_or(0));
            let end = clamp(attr_i(n, "end").unwrap_or(rank));
            let dims: Vec<i64> = x[start..end.max(start)].iter().map(|&d| d as i64).collect();
            int_constants.insert(out.clone(), (vec![dims.len()], dims));
            continue;
        }
        if n.op_type == "ConstantOfShape" {
            let (_, dims) = n
                .input
                .first()
                .and_then(|x| int_constants.get(x))
                .ok_or_else(|| invalid("its shape input must be a constant".into()))?;
            let shape = dims
                .iter()
                .map(|&d| usize::try_from(d).ok())
                .collect::<Option<Vec<usize>>>()
                .ok_or_else(|| invalid(format!("negative dimension in {dims:?}")))?;
            let len: usize = shape.iter().product();
            let value = match attr(n, "value").and_then(|a| a.t.as_ref()) {
                None => Decoded::Float(Tensor::new(vec![1], vec![0.0])),
                Some(t) => decode_tensor(t).map_err(invalid)?,
            };
            match value {
                Decoded::Float(t) if t.data.len() == 1 => {
                    shapes.insert(out.clone(), shape.clone());
                    constants.insert(out.clone(), Tensor::new(shape, vec![t.data[0]; len]));
                }
                Decoded::Int(_, v) if v.len() == 1 => {
                    int_constants.insert(out.clone(), (shape, vec![v[0]; len]));
                }
                _ => return Err(invalid("`value` must hold one element".into())),
            }
            continue;
        }
        // Inputs that are present (ONNX marks an omitted optional input with "").
        let ins: Vec<String> = n.input.iter().filter(|s| !s.is_empty()).cloned().collect();
        // Integer tensors (shapes and indices) have shapes too: shape arithmetic on them
        // folds below.
        let shape_of = |s: &String| -> Result<Vec<usize>, CompileError> {
            shapes
                .get(s)
                .or_else(|| int_constants.get(s).map(|(shape, _)| shape))
                .cloned()
                .ok_or_else(|| invalid(format!("input `{s}` is not defined before this node")))
        };
        let arity = |lo: usize, hi: usize| -> Result<(), CompileError> {
            if ins.len() < lo || ins.len() > hi {
                Err(invalid(format!(
                    "expected {lo}..={hi} inputs, found {}",
                    ins.len()
                )))
            } else {
                Ok(())
            }
        };
        let (op, inputs, out_shape) = match n.op_type.as_str() {
            "Gemm" => {
                arity(2, 3)?;
                let gemm = Gemm {
                    alpha: attr_f(n, "alpha").unwrap_or(1.0),
                    beta: attr_f(n, "beta").unwrap_or(1.0),
                    trans_a: attr_i(n, "transA").unwrap_or(0) != 0,
                    trans_b: attr_i(n, "transB").unwrap_or(0) != 0,
                };
                let (a, b) = (shape_of(&ins[0])?, shape_of(&ins[1])?);
                if a.len() != 2 || b.len() != 2 {
                    return Err(invalid(format!("A and B must be 2-D, got {a:?} and {b:?}")));
                }
                let (m, ka) = if gemm.trans_a {
                    (a[1], a[0])
                } else {
                    (a[0], a[1])
                };
                let (kb, nn) = if gemm.trans_b {
                    (b[1], b[0])
                } else {
                    (b[0], b[1])
                };
                if ka != kb {
                    return Err(invalid(format!(
                        "inner dimensions differ: A' is {m}x{ka}, B' is {kb}x{nn} (transA={}, transB={})",
                        gemm.trans_a as u8, gemm.trans_b as u8
                    )));
                }
                if let Some(c) = ins.get(2) {
                    let cs = shape_of(c)?;
                    if broadcast_shape(&cs, &[m, nn]).as_deref() != Some(&[m, nn][..]) {
                        return Err(invalid(format!(
                            "C of shape {cs:?} does not broadcast to [{m}, {nn}]"
                        )));
                    }
                }
                (Op::Gemm(gemm), ins.clone(), vec![m, nn])
            }
            "Conv" => {
                arity(2, 3)?;
                let x = shape_of(&ins[0])?;
                let w = constants
                    .get(&ins[1])
                    .ok_or_else(|| {
                        invalid("the weights W must be a constant (initializer)".into())
                    })?
                    .shape
                    .clone();
                if x.len() != 4 || w.len() != 4 {
                    return Err(invalid(format!(
                        "only 2-D convolution (NCHW) is supported; X is {x:?}, W is {w:?}"
                    )));
                }
                let group = attr_i(n, "group").unwrap_or(1);
                if group < 1 || x[1] % group as usize != 0 || w[0] % group as usize != 0 {
                    return Err(invalid(format!(
                        "group {group} does not divide channels {} and {}",
                        x[1], w[0]
                    )));
                }
                let group = group as usize;
                if w[1] * group != x[1] {
                    return Err(invalid(format!(
                        "W expects {} input channels, X has {}",
                        w[1] * group,
                        x[1]
                    )));
                }
                if let Some(k) = attr_ints(n, "kernel_shape") {
                    if k != [w[2] as i64, w[3] as i64] {
                        return Err(invalid(format!(
                            "kernel_shape {k:?} differs from W's {:?}",
                            &w[2..]
                        )));
                    }
                }
                if let Some(b) = ins.get(2) {
                    let bs = constants.get(b).map(|t| t.shape.clone());
                    if bs != Some(vec![w[0]]) {
                        return Err(invalid(format!("B must be a constant of shape [{}]", w[0])));
                    }
                }
                let window = window(n, &x, [w[2], w[3]]).map_err(invalid)?;
                let (oh, ow) = window
                    .output(x[2], x[3])
                    .ok_or_else(|| invalid(format!("the kernel does not fit the input {x:?}")))?;
                (
                    Op::Conv { window, group },
                    ins.clone(),
                    vec![x[0], w[0], oh, ow],
                )
            }
            "AveragePool" => {
                arity(1, 1)?;
                let x = shape_of(&ins[0])?;
                let (window, oh, ow) = pool_window(n, &x).map_err(invalid)?;
                let count_include_pad = attr_i(n, "count_include_pad").unwrap_or(0) != 0;
                (
                    Op::AveragePool {
                        window,
                        count_include_pad,
                    },
                    ins.clone(),
                    vec![x[0], x[1], oh, ow],
                )
            }
            "GlobalAveragePool" => {
                arity(1, 1)?;
                let x = shape_of(&ins[0])?;
                if x.len() != 4 {
                    return Err(invalid(format!("only NCHW input is supported; X is {x:?}")));
                }
                (Op::GlobalAveragePool, ins.clone(), vec![x[0], x[1], 1, 1])
            }
            "MatMul" => {
                arity(2, 2)?;
                let (a, b) = (shape_of(&ins[0])?, shape_of(&ins[1])?);
                let (a2, b2, mut batch) = matmul_dims(&a, &b).ok_or_else(|| {
                    invalid(format!("shapes {a:?} and {b:?} cannot be multiplied"))
                })?;
                if a.len() > 1 {
                    batch.push(a2[a2.len() - 2]);
                }
                if b.len() > 1 {
                    batch.push(b2[b2.len() - 1]);
                }
                (Op::MatMul, ins.clone(), batch)
            }
            "Add" | "Sub" | "Mul" | "Div" => {
                arity(2, 2)?;
                let (a, b) = (shape_of(&ins[0])?, shape_of(&ins[1])?);
                let s = broadcast_shape(&a, &b)
                    .ok_or_else(|| invalid(format!("shapes {a:?} and {b:?} do not broadcast")))?;
                let op = match n.op_type.as_str() {
                    "Add" => Op::Add,
                    "Sub" => Op::Sub,
                    "Mul" => Op::Mul,
                    _ => Op::Div,
                };
                (op, ins.clone(), s)
            }
            "Neg" => {
                arity(1, 1)?;
                (Op::Neg, ins.clone(), shape_of(&ins[0])?)
            }
            "Softmax" => {
                arity(1, 1)?;
                let x = shape_of(&ins[0])?;
                let default = if opset >= 13 { -1 } else { 1 };
                let axis = normalize_axis(attr_i(n, "axis").unwrap_or(default), x.len())
                    .ok_or_else(|| invalid(format!("axis out of range for {x:?}")))?;
                // Before opset 13 the axis flattens everything after it: the same as the
                // last axis exactly when it is the last axis.
                if axis + 1 != x.len() && x[axis + 1..].iter().any(|&d| d != 1) {
                    return Err(invalid(format!(
                        "only softmax over the last axis is supported (axis {axis} of {x:?})"
                    )));
                }
                (Op::Softmax, ins.clone(), x)
            }
            "LayerNormalization" => {
                arity(2, 3)?;
                let x = shape_of(&ins[0])?;
                let axis = normalize_axis(attr_i(n, "axis").unwrap_or(-1), x.len())
                    .ok_or_else(|| invalid(format!("axis out of range for {x:?}")))?;
                if axis + 1 != x.len() {
                    return Err(invalid(format!(
                        "only normalisation over the last axis is supported (axis {axis} of {x:?})"
                    )));
                }
                let d = x[axis];
                for p in &ins[1..] {
                    if constants.get(p).map(|t| t.len()) != Some(d) {
                        return Err(invalid(format!("`{p}` must be a constant with {d} values")));
                    }
                }
                if attr_i(n, "stash_type").unwrap_or(1) != 1 {
                    return Err(invalid(
                        "stash_type other than float32 is not supported".into(),
                    ));
                }
                let epsilon = attr_f(n, "epsilon").unwrap_or(1e-5);
                (Op::LayerNormalization { epsilon }, ins.clone(), x)
            }
            "Exp" | "Erf" | "Sigmoid" | "Tanh" | "Sqrt" | "Reciprocal" => {
                arity(1, 1)?;
                use zkinfer_qir::Func;
                let f = match n.op_type.as_str() {
                    "Exp" => Func::Exp,
                    "Erf" => Func::Erf,
                    "Sigmoid" => Func::Sigmoid,
                    "Tanh" => Func::Tanh,
                    "Sqrt" => Func::Sqrt,
                    _ => Func::Reciprocal,
                };
                (Op::Unary(f), ins.clone(), shape_of(&ins[0])?)
            }
            "Clip" => {
                // Opset 11+: optional constant inputs min and max; before: attributes.
                let bound = |pos: usize, attr_name: &str, default: f32| match n
                    .input
                    .get(pos)
                    .filter(|s| !s.is_empty())
                {
                    Some(name) => constants
                        .get(name)
                        .filter(|t| t.data.len() == 1)
                        .map(|t| t.data[0])
                        .ok_or_else(|| invalid(format!("`{name}` must be a constant scalar"))),
                    None => Ok(attr_f(n, attr_name).unwrap_or(default)),
                };
                let min = bound(1, "min", f32::NEG_INFINITY)?;
                let max = bound(2, "max", f32::INFINITY)?;
                let x = n.input.first().cloned().unwrap_or_default();
                let f = zkinfer_qir::Func::Clip {
                    min: zkinfer_qir::Real(min as f64),
                    max: zkinfer_qir::Real(max as f64),
                };
                (Op::Unary(f), vec![x.clone()], shape_of(&x)?)
            }
            "LeakyRelu" => {
                arity(1, 1)?;
                let alpha = attr_f(n, "alpha").unwrap_or(0.01);
                let f = zkinfer_qir::Func::LeakyRelu {
                    alpha: zkinfer_qir::Real(alpha as f64),
                };
                (Op::Unary(f), ins.clone(), shape_of(&ins[0])?)
            }
            "Sum" | "Max" | "Min" => {
                if ins.is_empty() {
                    return Err(invalid("expected at least one input".into()));
                }
                let mut out = shape_of(&ins[0])?;
                for i in &ins[1..] {
                    let s = shape_of(i)?;
                    out = broadcast_shape(&out, &s).ok_or_else(|| {
                        invalid(format!("shapes {out:?} and {s:?} do not broadcast"))
                    })?;
                }
                let op = match n.op_type.as_str() {
                    "Sum" => Op::Sum,
                    "Max" => Op::Max,
                    _ => Op::Min,
                };
                (op, ins.clone(), out)
            }
            "ReduceSum" | "ReduceMean" => {
                let x = shape_of(&ins[0])?;
                // Opset 18+ (ReduceSum: 13+) take the axes as an optional constant input.
                let axes: Option<Vec<i64>> = match ins.get(1) {
                    Some(a) => Some(
                        int_constants
                            .get(a)
                            .map(|(_, v)| v.clone())
                            .ok_or_else(|| invalid(format!("axes `{a}` must be a constant")))?,
                    ),
                    None => attr_ints(n, "axes").map(<[i64]>::to_vec),
                };
                let keepdims = attr_i(n, "keepdims").unwrap_or(1) != 0;
                let noop = attr_i(n, "noop_with_empty_axes").unwrap_or(0) != 0;
                let axes: Vec<usize> = match axes {
                    Some(a) if !a.is_empty() => a
                        .iter()
                        .map(|&v| normalize_axis(v, x.len()))
                        .collect::<Option<_>>()
                        .ok_or_else(|| {
                            invalid(format!("axes {a:?} out of range for rank {}", x.len()))
                        })?,
                    _ if noop => vec![],
                    _ => (0..x.len()).collect(),
                };
                let mut axes = axes;
                axes.sort_unstable();
                axes.dedup();
                let (index, len, out) = reduce_index(&x, &axes, keepdims);
                let mean = n.op_type == "ReduceMean";
                (Op::Reduce { index, len, mean }, vec![ins[0].clone()], out)
            }
            "BatchNormalization" => {
                arity(5, 5)?;
                let x = shape_of(&ins[0])?;
                if x.len() < 2 {
                    return Err(invalid(format!("X must have a channel axis, got {x:?}")));
                }
                if attr_i(n, "training_mode").unwrap_or(0) != 0 {
                    return Err(invalid("training_mode=1 is not inference".into()));
                }
                for p in &ins[1..] {
                    let shape = constants.get(p).map(|t| t.shape.clone());
                    if shape != Some(vec![x[1]]) {
                        return Err(invalid(format!(
                            "`{p}` must be a constant of shape [{}]",
                            x[1]
                        )));
                    }
                }
                let epsilon = attr_f(n, "epsilon").unwrap_or(1e-5);
                (Op::BatchNormalization { epsilon }, ins.clone(), x)
            }
            "MaxPool" => {
                arity(1, 1)?;
                let x = shape_of(&ins[0])?;
                if attr_i(n, "storage_order").unwrap_or(0) != 0 {
                    return Err(invalid("storage_order=1 is not supported".into()));
                }
                let (window, oh, ow) = pool_window(n, &x).map_err(invalid)?;
                (
                    Op::MaxPool { window },
                    ins.clone(),
                    vec![x[0], x[1], oh, ow],
                )
            }
            "Squeeze" | "Unsqueeze" => {
                arity(1, 2)?;
                let s = shape_of(&ins[0])?;
                let axes: Option<Vec<i64>> = match ins.get(1) {
                    Some(a) => Some(
                        int_constants
                            .get(a)
                            .ok_or_else(|| {
                                invalid(format!("axes `{a}` must be a constant int64 tensor"))
                            })?
                            .1
                            .clone(),
                    ),
                    None => attr_ints(n, "axes").map(|a| a.to_vec()),
                };
                let out = if n.op_type == "Squeeze" {
                    match axes {
                        None => s.iter().copied().filter(|&d| d != 1).collect(),
                        Some(axes) => {
                            let axes: Vec<usize> = axes
                                .iter()
                                .map(|&a| normalize_axis(a, s.len()).filter(|&a| s[a] == 1))
                                .collect::<Option<_>>()
                                .ok_or_else(|| {
                                    invalid(format!(
                                        "axes {axes:?} must name dimensions of size 1 in {s:?}"
                                    ))
                                })?;
                            s.iter()
                                .enumerate()
                                .filter(|(i, _)| !axes.contains(i))
                                .map(|(_, &d)| d)
                                .collect()
                        }
                    }
                } else {
                    let axes = axes.ok_or_else(|| invalid("axes are required".into()))?;
                    let rank = s.len() + axes.len();
                    let mut axes: Vec<usize> = axes
                        .iter()
                        .map(|&a| normalize_axis(a, rank))
                        .collect::<Option<_>>()
                        .ok_or_else(|| {
                            invalid(format!("axes {axes:?} out of range for rank {rank}"))
                        })?;
                    axes.sort_unstable();
                    axes.dedup();
                    if axes.len() + s.len() != rank {
                        return Err(invalid("axes repeat".into()));
                    }
                    let mut dims = s.iter();
                    (0..rank)
                        .map(|i| {
                            if axes.contains(&i) {
                                1
                            } else {
                                dims.next().copied().unwrap_or(1)
                            }
                        })
                        .collect()
                };
                (Op::Reshape, vec![ins[0].clone()], out)
            }
            "Relu" | "Identity" => {
                arity(1, 1)?;
                let op = if n.op_type == "Relu" {
                    Op::Relu
                } else {
                    Op::Identity
                };
                (op, ins.clone(), shape_of(&ins[0])?)
            }
            "Flatten" => {
                arity(1, 1)?;
                let s = shape_of(&ins[0])?;
                let axis = normalize_axis(attr_i(n, "axis").unwrap_or(1), s.len() + 1)
                    .ok_or_else(|| invalid(format!("axis out of range for rank {}", s.len())))?;
                let outer: usize = s[..axis].iter().product();
                let inner: usize = s[axis..].iter().product();
                (Op::Reshape, vec![ins[0].clone()], vec![outer, inner])
            }
            "Reshape" => {
                arity(2, 2)?;
                let s = shape_of(&ins[0])?;
                let (_, target) = int_constants.get(&ins[1]).ok_or_else(|| {
                    invalid(format!(
                        "the target shape `{}` must be a constant int64 tensor",
                        ins[1]
                    ))
                })?;
                let allow_zero = opset >= 14 && attr_i(n, "allowzero").unwrap_or(0) != 0;
                let out = reshape_target(&s, target, allow_zero).map_err(invalid)?;
                (Op::Reshape, vec![ins[0].clone()], out)
            }
            "Slice" | "Gather" | "Pad" => {
                let x = shape_of(&ins[0])?;
                let ints = |i: usize| -> Result<Option<Vec<i64>>, CompileError> {
                    match ins.get(i) {
                        None => Ok(None),
                        Some(name) => int_constants
                            .get(name)
                            .map(|(_, v)| Some(v.clone()))
                            .ok_or_else(|| {
                                invalid(format!("`{name}` must be a constant int64 tensor"))
                            }),
                    }
                };
                let (index, out) = match n.op_type.as_str() {
                    "Slice" => {
                        arity(3, 5)?;
                        let starts = ints(1)?.unwrap_or_default();
                        let ends = ints(2)?.unwrap_or_default();
                        let axes = ints(3)?.unwrap_or_else(|| (0..starts.len() as i64).collect());
                        let steps = ints(4)?.unwrap_or_else(|| vec![1; starts.len()]);
                        slice_index(&x, &starts, &ends, &axes, &steps).map_err(invalid)?
                    }
                    "Gather" => {
                        arity(2, 2)?;
                        let (ishape, idx) =
                            int_constants.get(&ins[1]).cloned().ok_or_else(|| {
                                invalid(format!(
                                    "indices `{}` must be a constant int64 tensor",
                                    ins[1]
                                ))
                            })?;
                        let axis = normalize_axis(attr_i(n, "axis").unwrap_or(0), x.len())
                            .ok_or_else(|| invalid(format!("axis out of range for {x:?}")))?;
                        gather_index(&x, axis, &ishape, &idx).map_err(invalid)?
                    }
                    _ => {
                        arity(2, 3)?;
                        let mode =
                            attr(n, "mode").map(|a| String::from_utf8_lossy(&a.s).into_owned());
                        if mode.as_deref().is_some_and(|m| m != "constant") {
                            return Err(invalid(format!(
                                "mode `{}` is not supported (constant is)",
                                mode.unwrap_or_default()
                            )));
                        }
                        if let Some(c) = ins.get(2) {
                            let zero = constants
                                .get(c)
                                .is_some_and(|t| t.data.iter().all(|&v| v == 0.0));
                            if !zero {
                                return Err(invalid(
                                    "only zero padding is supported (constant_value = 0)".into(),
                                ));
                            }
                        }
                        let pads = ints(1)?.unwrap_or_default();
                        pad_index(&x, &pads).map_err(invalid)?
                    }
                };
                (Op::Select { index }, vec![ins[0].clone()], out)
            }
            "Concat" => {
                if ins.is_empty() {
                    return Err(invalid("expected at least one input".into()));
                }
                let shapes_in = ins.iter().map(shape_of).collect::<Result<Vec<_>, _>>()?;
                let rank = shapes_in[0].len();
                let axis = attr_i(n, "axis")
                    .ok_or_else(|| invalid("the `axis` attribute is required".into()))?;
                let axis = normalize_axis(axis, rank)
                    .ok_or_else(|| invalid(format!("axis {axis} out of range for rank {rank}")))?;
                let (index, out) = concat_index(&shapes_in, axis).map_err(invalid)?;
                (Op::Concat { index }, ins.clone(), out)
            }
            "Transpose" => {
                arity(1, 1)?;
                let s = shape_of(&ins[0])?;
                let perm: Vec<usize> = match attr_ints(n, "perm") {
                    Some(p) => p
                        .iter()
                        .map(|&v| normalize_axis(v, s.len()))
                        .collect::<Option<_>>()
                        .ok_or_else(|| {
                            invalid(format!("perm {p:?} out of range for rank {}", s.len()))
                        })?,
                    None => (0..s.len()).rev().collect(),
                };
                let mut seen = perm.clone();
                seen.sort_unstable();
                if seen != (0..s.len()).collect::<Vec<_>>() {
                    return Err(invalid(format!(
                        "perm {perm:?} is not a permutation of 0..{}",
                        s.len()
                    )));
                }
                let out = perm.iter().map(|&p| s[p]).collect();
                (Op::Transpose { perm }, ins.clone(), out)
            }
            other => unreachable!("`{other}` passed the supported-op check"),
        };
        for i in &inputs {
            shape_of(i)?;
        }
        // Shape arithmetic on integer constants (Shape → Gather → Unsqueeze → Concat →
        // Reshape, as exporters write `x.view(x.size(0), -1)`) folds to a constant.
        let ints: Vec<&(Vec<usize>, Vec<i64>)> =
            inputs.iter().filter_map(|i| int_constants.get(i)).collect();
        if !ints.is_empty() {
            if ints.len() != inputs.len() {
                return Err(invalid(
                    "integer tensors are supported only in shape arithmetic, not mixed with float data"
                        .into(),
                ));
            }
            let data = fold_ints(&op, &ints).ok_or_else(|| {
                invalid(format!(
                    "integer tensors are supported only in shape arithmetic (Gather, Slice, \
                     Concat, Squeeze, Unsqueeze, Reshape, Flatten, Transpose, Identity), not {}",
                    n.op_type
                ))
            })?;
            int_constants.insert(out.clone(), (out_shape, data));
            continue;
        }
        if shapes.contains_key(out) || constants.contains_key(out) {
            return Err(invalid(format!("output `{out}` is defined twice")));
        }
        shapes.insert(out.clone(), out_shape);
        nodes.push(Node {
            name,
            op,
            inputs,
            output: out.clone(),
        });
    }
    if !shapes.contains_key(&output.name) {
        return Err(parse_err(format!(
            "graph output `{}` is never computed",
            output.name
        )));
    }
    if constants.contains_key(&output.name) {
        return Err(parse_err(format!(
            "graph output `{}` is a constant",
            output.name
        )));
    }
    fold_batch_norms(
        &mut nodes,
        &mut constants,
        &mut shapes,
        &output.name,
        &mut notes,
    );
    // Constants no node reads are dropped so the compiled artifact stays small.
    let used: BTreeSet<&String> = nodes.iter().flat_map(|n| n.inputs.iter()).collect();
    constants.retain(|k, _| used.contains(k));
    shapes.retain(|k, _| !int_constants.contains_key(k));
    Ok(Imported {
        graph: Graph {
            name: if g.name.is_empty() {
                "model".into()
            } else {
                g.name.clone()
            },
            input: input.name.clone(),
            output: output.name.clone(),
            nodes,
            constants,
            shapes,
        },
        notes,
    })
}

/// Folds every BatchNormalization whose input is the output of a Conv with constant
/// weights (and bias), read by nothing else, into that Conv: `W'[o] = a[o] · W[o]`,
/// `b'[o] = a[o] · b[o] + c[o]` with the normalisation's affine `a · x + c`. The folded
/// model computes the same function with no element-wise rows for the normalisation.
fn fold_batch_norms(
    nodes: &mut Vec<Node>,
    constants: &mut BTreeMap<String, Tensor>,
    shapes: &mut BTreeMap<String, Vec<usize>>,
    graph_output: &str,
    notes: &mut Vec<String>,
) {
    let mut i = 0;
    while i < nodes.len() {
        if let Some((conv, w, b)) = foldable(nodes, constants, graph_output, i) {
            let bn = nodes.remove(i);
            let conv = if conv > i { conv - 1 } else { conv };
            let w_name = format!("{}/folded_weight", bn.output);
            let b_name = format!("{}/folded_bias", bn.output);
            shapes.insert(w_name.clone(), w.shape.clone());
            shapes.insert(b_name.clone(), b.shape.clone());
            constants.insert(w_name.clone(), w);
            constants.insert(b_name.clone(), b);
            let c = &mut nodes[conv];
            shapes.remove(&c.output);
            c.inputs = vec![c.inputs[0].clone(), w_name, b_name];
            c.output = bn.output.clone();
            notes.push(format!(
                "folded BatchNormalization `{}` into Conv `{}`",
                bn.name, c.name
            ));
        } else {
            i += 1;
        }
    }
}

/// For a foldable BatchNormalization at `i`: its Conv's index and the folded weight and bias.
fn foldable(
    nodes: &[Node],
    constants: &BTreeMap<String, Tensor>,
    graph_output: &str,
    i: usize,
) -> Option<(usize, Tensor, Tensor)> {
    let Op::BatchNormalization { epsilon } = nodes[i].op else {
        return None;
    };
    let src = &nodes[i].inputs[0];
    let readers = nodes.iter().filter(|n| n.inputs.contains(src)).count();
    if readers != 1 || src == graph_output {
        return None;
    }
    let conv = nodes
        .iter()
        .position(|n| &n.output == src && matches!(n.op, Op::Conv { .. }))?;
    let p = nodes[i].inputs[1..5]
        .iter()
        .map(|name| constants.get(name))
        .collect::<Option<Vec<_>>>()?;
    let (a, c) = crate::graph::batch_norm_affine(p[0], p[1], p[2], p[3], epsilon);
    let w = constants.get(nodes[conv].inputs.get(1)?)?;
    let cout = *w.shape.first()?;
    if a.len() != cout || c.len() != cout || cout == 0 {
        return None;
    }
    let bias = match nodes[conv].inputs.get(2) {
        Some(b) => constants.get(b)?.data.clone(),
        None => vec![0.0; cout],
    };
    if bias.len() != cout {
        return None;
    }
    let per = w.data.len() / cout;
    let weight = w
        .data
        .iter()
        .enumerate()
        .map(|(j, v)| v * a[j / per])
        .collect();
    let bias = (0..cout).map(|o| bias[o] * a[o] + c[o]).collect();
    Some((
        conv,
        Tensor::new(w.shape.clone(), weight),
        Tensor::new(vec![cout], bias),
    ))
}

fn strides_of(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// The element map of an output of shape `out` whose coordinate on each axis maps to
/// an input coordinate (or to padding) through `axis_map`.
fn map_coords(
    x: &[usize],
    out: &[usize],
    axis_map: impl Fn(usize, usize) -> Option<usize>,
) -> Vec<Option<usize>> {
    let (xs, os) = (strides_of(x), strides_of(out));
    let n: usize = out.iter().product();
    (0..n)
        .map(|flat| {
            let mut src = 0;
            for axis in 0..out.len() {
                src += axis_map(axis, (flat / os[axis]) % out[axis])? * xs[axis];
            }
            Some(src)
        })
        .collect()
}

/// ONNX Slice: negative indices count from the end, bounds are clamped, steps may be negative.
fn slice_index(
    x: &[usize],
    starts: &[i64],
    ends: &[i64],
    axes: &[i64],
    steps: &[i64],
) -> Result<(Vec<Option<usize>>, Vec<usize>), String> {
    if starts.len() != ends.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err("starts, ends, axes and steps must have the same length".into());
    }
    let rank = x.len();
    let mut first = vec![0i64; rank];
    let mut step = vec![1i64; rank];
    let mut out = x.to_vec();
    for k in 0..starts.len() {
        let axis = normalize_axis(axes[k], rank)
            .ok_or_else(|| format!("axis {} out of range", axes[k]))?;
        let (dim, st) = (x[axis] as i64, steps[k]);
        if st == 0 {
            return Err("a step of 0".into());
        }
        let fix = |v: i64| if v < 0 { v + dim } else { v };
        let (s, e) = if st > 0 {
            (fix(starts[k]).clamp(0, dim), fix(ends[k]).clamp(0, dim))
        } else {
            (
                fix(starts[k]).clamp(0, dim - 1),
                fix(ends[k]).clamp(-1, dim - 1),
            )
        };
        let len = if st > 0 {
            (e - s + st - 1).max(0) / st
        } else {
            (s - e - st - 1).max(0) / -st
        };
        first[axis] = s;
        step[axis] = st;
        out[axis] = len as usize;
    }
    let index = map_coords(x, &out, |axis, c| {
        Some((first[axis] + c as i64 * step[axis]) as usize)
    });
    Ok((index, out))
}

/// ONNX Gather with constant indices along `axis`.
fn gather_index(
    x: &[usize],
    axis: usize,
    ishape: &[usize],
    idx: &[i64],
) -> Result<(Vec<Option<usize>>, Vec<usize>), String> {
    let dim = x[axis] as i64;
    let idx: Vec<usize> = idx
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + dim } else { i };
            (0..dim)
                .contains(&j)
                .then_some(j as usize)
                .ok_or(format!("index {i} out of range for dimension {dim}"))
        })
        .collect::<Result<_, _>>()?;
    let mut out: Vec<usize> = x[..axis].to_vec();
    out.extend_from_slice(ishape);
    out.extend_from_slice(&x[axis + 1..]);
    let (outer, inner) = (
        x[..axis].iter().product::<usize>(),
        x[axis + 1..].iter().product::<usize>(),
    );
    let mut index = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &j in &idx {
            for i in 0..inner {
                index.push(Some((o * x[axis] + j) * inner + i));
            }
        }
    }
    Ok((index, out))
}

/// ONNX Pad (constant 0): `pads` = begins then ends per axis; negative values crop.
fn pad_index(x: &[usize], pads: &[i64]) -> Result<(Vec<Option<usize>>, Vec<usize>), String> {
    let rank = x.len();
    if pads.len() != 2 * rank {
        return Err(format!(
            "pads has {} values; a rank-{rank} input needs {}",
            pads.len(),
            2 * rank
        ));
    }
    let out: Vec<usize> = (0..rank)
        .map(|a| {
            let d = x[a] as i64 + pads[a] + pads[a + rank];
            usize::try_from(d).map_err(|_| format!("pads {pads:?} crop more than the input {x:?}"))
        })
        .collect::<Result<_, _>>()?;
    let index = map_coords(x, &out, |axis, c| {
        let src = c as i64 - pads[axis];
        (0..x[axis] as i64).contains(&src).then_some(src as usize)
    });
    Ok((index, out))
}

/// The window and output size of a 2-D pooling node (AveragePool, MaxPool) on `x`.
fn pool_window(n: &pb::NodeProto, x: &[usize]) -> Result<(Window, usize, usize), String> {
    if x.len() != 4 {
        return Err(format!("only 2-D pooling (NCHW) is supported; X is {x:?}"));
    }
    let k = attr_ints(n, "kernel_shape").ok_or("kernel_shape is required")?;
    let [kh, kw] = k else {
        return Err(format!("kernel_shape {k:?} must have 2 entries"));
    };
    if *kh < 1 || *kw < 1 {
        return Err(format!("kernel_shape {k:?} must be positive"));
    }
    if attr_i(n, "ceil_mode").unwrap_or(0) != 0 {
        return Err("ceil_mode=1 is not supported".into());
    }
    let window = window(n, x, [*kh as usize, *kw as usize])?;
    let (oh, ow) = window
        .output(x[2], x[3])
        .ok_or_else(|| format!("the window does not fit the input {x:?}"))?;
    Ok((window, oh, ow))
}

/// Window attributes of Conv/AveragePool with the spec's defaults; `auto_pad` becomes pads.
fn window(n: &pb::NodeProto, x: &[usize], kernel: [usize; 2]) -> Result<Window, String> {
    let pair = |name: &str| -> Result<[usize; 2], String> {
        match attr_ints(n, name) {
            None => Ok([1, 1]),
            Some([a, b]) if *a >= 1 && *b >= 1 => Ok([*a as usize, *b as usize]),
            Some(v) => Err(format!("{name} {v:?} must be two positive integers")),
        }
    };
    let strides = pair("strides")?;
    let dilations = pair("dilations")?;
    let auto_pad = attr(n, "auto_pad").map(|a| String::from_utf8_lossy(&a.s).into_owned());
    let pads = match auto_pad.as_deref().unwrap_or("NOTSET") {
        "NOTSET" | "" => match attr_ints(n, "pads") {
            None => [0; 4],
            Some(p) if p.len() == 4 && p.iter().all(|&v| v >= 0) => {
                [p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize]
            }
            Some(p) => return Err(format!("pads {p:?} must be four non-negative integers")),
        },
        "VALID" => [0; 4],
        mode @ ("SAME_UPPER" | "SAME_LOWER") => {
            let mut pads = [0; 4];
            for axis in 0..2 {
                let (len, s, d, k) = (x[2 + axis], strides[axis], dilations[axis], kernel[axis]);
                let out = len.div_ceil(s);
                let total = ((out - 1) * s + d * (k - 1) + 1).saturating_sub(len);
                let small = total / 2;
                let (begin, end) = if mode == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
                pads[axis] = begin;
                pads[axis + 2] = end;
            }
            pads
        }
        other => {
            return Err(format!(
                "auto_pad `{other}` is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER"
            ))
        }
    };
    Ok(Window {
        kernel,
        strides,
        dilations,
        pads,
    })
}

fn node_name(n: &pb::NodeProto, index: usize) -> String {
    if n.name.is_empty() {
        format!("{}_{index}", n.op_type)
    } else {
        n.name.clone()
    }
}

/// `op` applied to integer constants, if it only moves elements.
fn fold_ints(op: &Op, ints: &[&(Vec<usize>, Vec<i64>)]) -> Option<Vec<i64>> {
    let x = &ints.first()?.1;
    Some(match op {
        Op::Reshape | Op::Identity => x.clone(),
        Op::Select { index } => index.iter().map(|j| j.map_or(0, |j| x[j])).collect(),
        Op::Concat { index } => index
            .iter()
            .map(|at| at.map_or(0, |(k, j)| ints[k].1[j]))
            .collect(),
        Op::Transpose { perm } => crate::graph::transpose_index(&ints[0].0, perm)
            .into_iter()
            .map(|j| x[j])
            .collect(),
        _ => return None,
    })
}

/// A reduction over `axes` as rows to sum: the input elements of each output element,
/// consecutive in the returned index (`len` each), and the output shape.
fn reduce_index(x: &[usize], axes: &[usize], keepdims: bool) -> (Vec<usize>, usize, Vec<usize>) {
    let strides: Vec<usize> = (0..x.len()).map(|d| x[d + 1..].iter().product()).collect();
    let kept: Vec<usize> = (0..x.len()).filter(|d| !axes.contains(d)).collect();
    let len: usize = axes.iter().map(|&d| x[d]).product();
    let rows: usize = kept.iter().map(|&d| x[d]).product();
    let coords = |mut f: usize, dims: &[usize]| {
        let mut c = vec![0; dims.len()];
        for (i, &d) in dims.iter().enumerate().rev() {
            c[i] = f % x[d];
            f /= x[d];
        }
        c
    };
    let mut index = Vec::with_capacity(rows * len);
    for r in 0..rows {
        let base: usize = coords(r, &kept)
            .iter()
            .zip(&kept)
            .map(|(c, &d)| c * strides[d])
            .sum();
        for t in 0..len {
            let off: usize = coords(t, axes)
                .iter()
                .zip(axes)
                .map(|(c, &d)| c * strides[d])
                .sum();
            index.push(base + off);
        }
    }
    let out = if keepdims {
        (0..x.len())
            .map(|d| if axes.contains(&d) { 1 } else { x[d] })
            .collect()
    } else {
        kept.iter().map(|&d| x[d]).collect()
    };
    (index, len, out)
}

/// The element map of a Concat along `axis`: output element → (input, element), and the
/// output shape. Every input must match the first outside `axis`.
fn concat_index(
    shapes: &[Vec<usize>],
    axis: usize,
) -> Result<(crate::graph::Sources, Vec<usize>), String> {
    let first = &shapes[0];
    for (k, s) in shapes.iter().enumerate() {
        let same = s.len() == first.len()
            && s.iter()
                .zip(first)
                .enumerate()
                .all(|(d, (a, b))| d == axis || a == b);
        if !same {
            return Err(format!(
                "input {k} has shape {s:?}; it must match {first:?} except along axis {axis}"
            ));
        }
    }
    let outer: usize = first[..axis].iter().product();
    let inner: usize = first[axis + 1..].iter().product();
    let mut out = first.clone();
    out[axis] = shapes.iter().map(|s| s[axis]).sum();
    let mut index = Vec::with_capacity(out.iter().product());
    for o in 0..outer {
        for (k, s) in shapes.iter().enumerate() {
            let d = s[axis];
            for a in 0..d {
                for t in 0..inner {
                    index.push(Some((k, (o * d + a) * inner + t)));
                }
            }
        }
    }
    Ok((index, out))
}

fn normalize_axis(axis: i64, rank: usize) -> Option<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    (0..rank as i64).contains(&a).then_some(a as usize)
}

fn attr<'a>(n: &'a pb::NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

fn attr_f(n: &pb::NodeProto, name: &str) -> Option<f32> {
    attr(n, name).map(|a| a.f)
}

fn attr_i(n: &pb::NodeProto, name: &str) -> Option<i64> {
    attr(n, name).map(|a| a.i)
}

fn attr_ints<'a>(n: &'a pb::NodeProto, name: &str) -> Option<&'a [i64]> {
    attr(n, name).map(|a| a.ints.as_slice())
}

/// ONNX Reshape: `0` copies the input dimension (unless `allowzero`), `-1` is inferred.
fn reshape_target(input: &[usize], target: &[i64], allow_zero: bool) -> Result<Vec<usize>, String> {
    let total: usize = input.iter().product();
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &d) in target.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            -1 => return Err(format!("target shape {target:?} has more than one -1")),
            0 if !allow_zero => out.push(*input.get(i).ok_or_else(|| {
                format!("target shape {target:?}: 0 at axis {i} beyond input rank")
            })?),
            d if d >= 0 => out.push(d as usize),
            d => return Err(format!("target shape {target:?} has invalid dimension {d}")),
        }
    }
    let known: usize = out.iter().product();
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(format!(
                "cannot reshape {input:?} ({total} elements) to {target:?}"
            ));
        }
        out[i] = total / known;
    }
    if out.iter().product::<usize>() != total {
        return Err(format!(
            "cannot reshape {input:?} ({total} elements) to {target:?}"
        ));
    }
    Ok(out)
}

fn value_info_shape(
    v: &pb::ValueInfoProto,
    notes: &mut Vec<String>,
) -> Result<Vec<usize>, CompileError> {
    let err = |reason: String| CompileError::Parse {
        path: String::new(),
        reason: format!("input `{}`: {reason}", v.name),
    };
    let Some(pb::type_proto::Value::TensorType(t)) =
        v.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Err(err("not a tensor".into()));
    };
    if t.elem_type != pb::tensor_proto::DataType::Float as i32 {
        return Err(err(format!("element type {} is not float32", t.elem_type)));
    }
    let dims = &t.shape.as_ref().ok_or_else(|| err("no shape".into()))?.dim;
    let mut shape = Vec::with_capacity(dims.len());
    for (axis, d) in dims.iter().enumerate() {
        match &d.value {
            Some(Dim::DimValue(x)) if *x > 0 => shape.push(*x as usize),
            Some(Dim::DimParam(p)) if axis == 0 => {
                notes.push(format!(
                    "input `{}`: symbolic batch dimension `{p}` fixed to 1",
                    v.name
                ));
                shape.push(1);
            }
            _ => return Err(err(format!("dimension {axis} is not a positive constant"))),
        }
    }
    Ok(shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_pad_and_gather_index_maps() {
        // [0..6) as [2, 3]: rows reversed, last column dropped.
        let (idx, out) = slice_index(&[2, 3], &[-1, 0], &[-3, 2], &[0, 1], &[-1, 1]).unwrap();
        assert_eq!(out, vec![2, 2]);
        assert_eq!(idx, vec![Some(3), Some(4), Some(0), Some(1)]);
        // pad one zero before, crop one element after.
        let (idx, out) = pad_index(&[3], &[1, -1]).unwrap();
        assert_eq!(out, vec![3]);
        assert_eq!(idx, vec![None, Some(0), Some(1)]);
        assert!(pad_index(&[3], &[0, -4]).is_err());
        let (idx, out) = gather_index(&[2, 3], 1, &[2], &[-1, 0]).unwrap();
        assert_eq!(out, vec![2, 2]);
        assert_eq!(idx, vec![Some(2), Some(0), Some(5), Some(3)]);
        assert!(gather_index(&[2, 3], 1, &[1], &[3]).is_err());
    }

    #[test]
    fn reshape_follows_the_spec() {
        assert_eq!(reshape_target(&[2, 3, 4], &[0, -1], false), Ok(vec![2, 12]));
        assert_eq!(reshape_target(&[2, 3, 4], &[-1], false), Ok(vec![24]));
        assert!(reshape_target(&[2, 3, 4], &[-1, -1], false).is_err());
        assert!(reshape_target(&[2, 3, 4], &[5, -1], false).is_err());
        assert_eq!(reshape_target(&[2, 3], &[6, 1], false), Ok(vec![6, 1]));
    }
}
