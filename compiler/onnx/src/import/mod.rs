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
use zkinfer_qir::Part;

mod attrs;
pub mod certificate;
mod fold;
mod index;
mod ops;

use attrs::*;
use fold::*;
use index::*;

/// Whether the output of `n` (read from `inputs`) holds integers, as ONNX types it:
/// comparisons, logic and arg-extremes always; integer casts; ops closed over the
/// integers when every input holds integers.
fn holds_integers(
    n: &pb::NodeProto,
    integers: &BTreeSet<String>,
    int_constants: &BTreeMap<String, (Vec<usize>, Vec<i64>)>,
) -> bool {
    let data = |i: &String| integers.contains(i) || int_constants.contains_key(i);
    let present: Vec<&String> = n.input.iter().filter(|i| !i.is_empty()).collect();
    match n.op_type.as_str() {
        "Less"
        | "Greater"
        | "LessOrEqual"
        | "GreaterOrEqual"
        | "Equal"
        | "Not"
        | "And"
        | "Or"
        | "Xor"
        | "ArgMax"
        | "ArgMin"
        | "LinearClassifier"
        | "QuantizeLinear"
        | "TreeEnsembleClassifier" => true,
        "Cast" => {
            use pb::tensor_proto::DataType as D;
            !matches!(
                D::try_from(attr_i(n, "to").unwrap_or(0) as i32),
                Ok(D::Float | D::Double | D::Float16 | D::Bfloat16)
            )
        }
        // The data input decides; the others are indices, shapes or axes.
        "Identity"
        | "Dropout"
        | "Neg"
        | "Abs"
        | "Sign"
        | "Relu"
        | "Reshape"
        | "Flatten"
        | "Squeeze"
        | "Unsqueeze"
        | "Transpose"
        | "Slice"
        | "Gather"
        | "Pad"
        | "ReduceSum"
        | "ReduceMax"
        | "ReduceMin"
        | "Expand"
        | "Tile"
        | "Trilu"
        | "GatherElements"
        | "GatherND"
        | "Split"
        | "ArrayFeatureExtractor" => present.first().is_some_and(|i| data(i)),
        "OneHot" => present.get(2).is_some_and(|i| data(i)),
        "CastLike" => present.get(1).is_some_and(|i| data(i)),
        "ScatterElements" | "ScatterND" => {
            present.len() == 3 && data(present[0]) && data(present[2])
        }
        "Where" => present.len() == 3 && data(present[1]) && data(present[2]),
        "Add" | "Sub" | "Mul" | "Div" | "Max" | "Min" | "Sum" | "Concat" | "ReduceProd" => {
            present.iter().all(|i| data(i))
        }
        _ => false,
    }
}

/// "`x` [1, 4], `y` [1, 3]".
fn describe(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|p| format!("`{}` {:?}", p.name, p.shape))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Ops whose operands are all numbers (no indices, shapes or axes).
const NUMERIC_OPS: &[&str] = &[
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Max",
    "Min",
    "Sum",
    "Concat",
    "Where",
    "Less",
    "Greater",
    "LessOrEqual",
    "GreaterOrEqual",
    "Equal",
    "And",
    "Or",
    "Xor",
];

/// The tensor several graph inputs are packed into, in order.
pub const PACKED_INPUTS: &str = "zkinfer:inputs";
/// The tensor several graph outputs are packed into, in order.
pub const PACKED_OUTPUTS: &str = "zkinfer:outputs";

/// Op types folded to constants before dispatch (every shape is static here).
const FOLDED_OPS: &[&str] = &[
    "Constant",
    "ConstantOfShape",
    "Shape",
    "Size",
    "Range",
    "NonZero",
];

/// ONNX op types this version can compile, sorted: the importers' table and the ops
/// folded to constants.
pub fn supported_ops() -> Vec<&'static str> {
    let mut ops: Vec<&str> = ops::IMPORTERS
        .iter()
        .map(|(op, _)| *op)
        .chain(FOLDED_OPS.iter().copied())
        .collect();
    ops.sort_unstable();
    ops
}

/// A model loaded from disk, with notes about assumptions made while importing.
#[derive(Clone, Debug)]
pub struct Imported {
    pub graph: Graph,
    /// Things a user should know (e.g. a symbolic batch dimension fixed to 1).
    pub notes: Vec<String>,
}

/// Reads and imports an ONNX file.
pub fn import_onnx(path: &Path) -> Result<Imported, CompileError> {
    import_onnx_shaped(path, None)
}

/// [`import_onnx`] with the inputs' shapes, where the model leaves dimensions symbolic
/// (EZKL's `input_shapes`: one shape per graph input, in order).
pub fn import_onnx_shaped(
    path: &Path,
    shapes: Option<&[Vec<usize>]>,
) -> Result<Imported, CompileError> {
    with_onnx(path, |p| import_proto_shaped(p, shapes))
}

/// Decodes the ONNX file at `path` and applies `f` to it, naming the file in parse errors.
pub(crate) fn with_onnx<T>(
    path: &Path,
    f: impl FnOnce(&pb::ModelProto) -> Result<T, CompileError>,
) -> Result<T, CompileError> {
    let parse_err = |reason: String| CompileError::Parse {
        path: path.display().to_string(),
        reason,
    };
    let proto = tract_onnx::onnx()
        .proto_model_for_path(path)
        .map_err(|e| parse_err(format!("not a readable ONNX model: {e:#}")))?;
    f(&proto).map_err(|e| match e {
        CompileError::Parse { reason, .. } => parse_err(reason),
        other => other,
    })
}

/// Imports a decoded ONNX model.
pub fn import_proto(proto: &pb::ModelProto) -> Result<Imported, CompileError> {
    import_proto_shaped(proto, None)
}

/// [`import_proto`] with the inputs' shapes ([`import_onnx_shaped`]).
pub fn import_proto_shaped(
    proto: &pb::ModelProto,
    shapes: Option<&[Vec<usize>]>,
) -> Result<Imported, CompileError> {
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
            let ml = ops::ML_OPS.contains(&n.op_type.as_str());
            let domain = if ml {
                n.domain == "ai.onnx.ml"
            } else {
                n.domain.is_empty() || n.domain == "ai.onnx"
            };
            !domain || !supported_ops().contains(&n.op_type.as_str())
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
    // The ONNX element types of initializers, `Constant` tensors and graph inputs (a
    // quantized tensor's range is its zero point's type; `CastLike` casts to its
    // target's).
    let mut elem_types: BTreeMap<String, i32> = BTreeMap::new();
    for t in &g.initializer {
        elem_types.insert(t.name.clone(), t.data_type);
        match decode_tensor(t).map_err(|r| parse_err(format!("initializer `{}`: {r}", t.name)))? {
            Decoded::Float(x) => {
                constants.insert(t.name.clone(), x);
            }
            Decoded::Int(shape, v) => {
                int_constants.insert(t.name.clone(), (shape, v));
            }
        }
    }
    for i in &g.input {
        if let Some(pb::type_proto::Value::TensorType(t)) =
            i.r#type.as_ref().and_then(|t| t.value.as_ref())
        {
            elem_types.entry(i.name.clone()).or_insert(t.elem_type);
        }
    }

    let inputs: Vec<&pb::ValueInfoProto> = g
        .input
        .iter()
        .filter(|i| !constants.contains_key(&i.name) && !int_constants.contains_key(&i.name))
        .collect();
    if inputs.is_empty() || g.output.is_empty() {
        return Err(parse_err(format!(
            "the graph has {} inputs and {} outputs besides its initializers; it needs at \
             least one of each",
            inputs.len(),
            g.output.len()
        )));
    }
    if let Some(shapes) = shapes.filter(|s| s.len() != inputs.len()) {
        return Err(CompileError::InputData {
            reason: format!(
                "`input_shapes` names {} inputs; the model has {} ({})",
                shapes.len(),
                inputs.len(),
                inputs
                    .iter()
                    .map(|i| format!("`{}`", i.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    let mut bound = BTreeMap::new();
    let parts = inputs
        .iter()
        .enumerate()
        .map(|(k, i)| {
            let given = shapes.map(|s| s[k].as_slice());
            let (shape, integer) = value_info_shape(i, &mut notes, given, &mut bound)?;
            Ok(Part {
                name: i.name.clone(),
                shape,
                integer,
            })
        })
        .collect::<Result<Vec<_>, CompileError>>()?;
    let taken = |name: &str| {
        g.node.iter().any(|n| n.output.iter().any(|o| o == name))
            || g.input.iter().any(|i| i.name == name)
    };
    let mut shapes: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (name, t) in &constants {
        shapes.insert(name.clone(), t.shape.clone());
    }
    let mut nodes = Vec::new();
    // Nodes of constant inputs evaluated at import.
    let mut folded = 0;
    let mut integers: BTreeSet<String> = parts
        .iter()
        .filter(|p| p.integer)
        .map(|p| p.name.clone())
        .collect();
    // Several inputs are packed, in order, into one vector; each is a slice of it (no rows).
    let input = if let [one] = parts.as_slice() {
        shapes.insert(one.name.clone(), one.shape.clone());
        one.name.clone()
    } else {
        let packed = PACKED_INPUTS.to_string();
        if taken(&packed) {
            return Err(parse_err(format!(
                "a tensor is named `{packed}`, the name zkinfer packs several inputs under"
            )));
        }
        let mut offset = 0;
        for p in &parts {
            nodes.push(Node {
                name: format!("{packed}/{}", p.name),
                op: Op::Select {
                    index: (offset..offset + p.len()).map(Some).collect(),
                },
                inputs: vec![packed.clone()],
                output: p.name.clone(),
            });
            shapes.insert(p.name.clone(), p.shape.clone());
            offset += p.len();
        }
        shapes.insert(packed.clone(), vec![offset]);
        notes.push(format!(
            "the {} inputs ({}) are packed in this order into one input of {offset} values",
            parts.len(),
            describe(&parts)
        ));
        packed
    };
    for (i, n) in g.node.iter().enumerate() {
        let name = node_name(n, i);
        // A node with several outputs may leave its first unnamed (a recurrent layer's
        // Y when only the last state is read): it gets a name of its own, as the
        // importer lowers the node under that name.
        let unnamed_first;
        let n = match n.output.first() {
            Some(o) if o.is_empty() && n.output.len() > 1 => {
                let mut named = n.clone();
                named.output[0] = format!("{name}:unread-output");
                unnamed_first = named;
                &unnamed_first
            }
            _ => n,
        };
        let invalid = |reason: String| CompileError::InvalidNode {
            node: name.clone(),
            op: n.op_type.clone(),
            reason,
        };
        let out = match n.output.as_slice() {
            [out] => out,
            [out, ..] if ops::MULTI_OUTPUT_OPS.contains(&n.op_type.as_str()) => out,
            _ => {
                return Err(invalid(format!(
                    "expected one output, found {}",
                    n.output.len()
                )))
            }
        };
        if n.op_type == "Constant" {
            // `value` (a tensor), or `value_float(s)` / `value_int(s)` (a scalar or a 1-D
            // tensor); strings and sparse tensors are not numbers here.
            let decoded = match n.attribute.first().map(|a| (a.name.as_str(), a)) {
                Some(("value", a)) => match a.t.as_ref() {
                    Some(t) => {
                        elem_types.insert(out.clone(), t.data_type);
                        decode_tensor(t).map_err(invalid)?
                    }
                    None => return Err(invalid("`value` holds no tensor".into())),
                },
                Some(("value_float", a)) => Decoded::Float(Tensor::new(vec![], vec![a.f])),
                Some(("value_floats", a)) => {
                    Decoded::Float(Tensor::new(vec![a.floats.len()], a.floats.clone()))
                }
                Some(("value_int", a)) => Decoded::Int(vec![], vec![a.i]),
                Some(("value_ints", a)) => Decoded::Int(vec![a.ints.len()], a.ints.clone()),
                Some((other, _)) => {
                    return Err(invalid(format!(
                        "a Constant given as `{other}` is not supported (value, value_float(s) and value_int(s) are)"
                    )))
                }
                None => return Err(invalid("a Constant needs a value attribute".into())),
            };
            match decoded {
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
        // Size: the element count of a tensor whose shape is known.
        if n.op_type == "Size" {
            let x = n
                .input
                .first()
                .and_then(|x| {
                    shapes
                        .get(x)
                        .cloned()
                        .or_else(|| int_constants.get(x).map(|c| c.0.clone()))
                })
                .ok_or_else(|| invalid("its input has no known shape".into()))?;
            int_constants.insert(
                out.clone(),
                (vec![], vec![x.iter().product::<usize>() as i64]),
            );
            continue;
        }
        // Range of constants: start, start + delta, … short of limit.
        if n.op_type == "Range" {
            let scalar = |i: usize| -> Result<(f64, bool), CompileError> {
                let name = n.input.get(i).cloned().unwrap_or_default();
                match (constants.get(&name), int_constants.get(&name)) {
                    (Some(t), _) if t.data.len() == 1 => Ok((f64::from(t.data[0]), false)),
                    (None, Some((_, v))) if v.len() == 1 => Ok((v[0] as f64, true)),
                    _ => Err(invalid(format!("`{name}` must be a constant scalar"))),
                }
            };
            let (start, int) = scalar(0)?;
            let (limit, _) = scalar(1)?;
            let (delta, _) = scalar(2)?;
            let count = ((limit - start) / delta).ceil().max(0.0);
            if delta == 0.0 || !count.is_finite() || !(1.0..=1e7).contains(&count) {
                return Err(invalid(format!(
                    "Range({start}, {limit}, {delta}) has no finite, nonempty length"
                )));
            }
            let values = (0..count as usize).map(|i| start + i as f64 * delta);
            if int {
                int_constants.insert(
                    out.clone(),
                    (vec![count as usize], values.map(|v| v as i64).collect()),
                );
            } else {
                shapes.insert(out.clone(), vec![count as usize]);
                constants.insert(
                    out.clone(),
                    Tensor::new(vec![count as usize], values.map(|v| v as f32).collect()),
                );
            }
            continue;
        }
        // NonZero of a constant: the coordinates of its nonzero elements, [rank, count].
        if n.op_type == "NonZero" {
            let x = n.input.first().cloned().unwrap_or_default();
            let (shape, nonzero): (Vec<usize>, Vec<bool>) =
                match (constants.get(&x), int_constants.get(&x)) {
                    (Some(t), _) => (t.shape.clone(), t.data.iter().map(|&v| v != 0.0).collect()),
                    (None, Some((s, v))) => (s.clone(), v.iter().map(|&v| v != 0).collect()),
                    (None, None) => {
                        return Err(invalid(format!(
                            "`{x}` is computed: the number of its nonzero elements, and so \
                             this output's shape, would depend on the input"
                        )))
                    }
                };
            let found: Vec<usize> = (0..nonzero.len()).filter(|&i| nonzero[i]).collect();
            let mut coords = vec![0i64; shape.len() * found.len()];
            for (k, &f) in found.iter().enumerate() {
                let mut rest = f;
                for d in (0..shape.len()).rev() {
                    coords[d * found.len() + k] = (rest % shape[d]) as i64;
                    rest /= shape[d];
                }
            }
            int_constants.insert(out.clone(), (vec![shape.len(), found.len()], coords));
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
        let mut ins: Vec<String> = n.input.iter().filter(|s| !s.is_empty()).cloned().collect();
        // An integer constant operand of arithmetic on integer computed tensors is a
        // number like them (not shape arithmetic).
        if NUMERIC_OPS.contains(&n.op_type.as_str()) && ins.iter().any(|i| integers.contains(i)) {
            for i in ins.iter_mut().filter(|i| int_constants.contains_key(*i)) {
                let (shape, v) = &int_constants[i];
                let name = format!("{i}:as-number");
                shapes.insert(name.clone(), shape.clone());
                constants.insert(
                    name.clone(),
                    Tensor::new(shape.clone(), v.iter().map(|&x| x as f32).collect()),
                );
                integers.insert(name.clone());
                *i = name;
            }
        }
        let cx = ops::NodeCx {
            n,
            name: &name,
            ins,
            opset,
            shapes: &shapes,
            constants: &constants,
            int_constants: &int_constants,
            elem_types: &elem_types,
            integers: &integers,
            emitted: Default::default(),
            emitted_constants: Default::default(),
        };
        let importer = ops::IMPORTERS
            .iter()
            .find(|(op, _)| *op == n.op_type)
            .map(|(_, f)| f)
            .ok_or_else(|| invalid(format!("`{}` passed the supported-op check", n.op_type)))?;
        let (op, inputs, out_shape) = importer(&cx)?;
        let emitted = cx.emitted.take();
        let emitted_constants = cx.emitted_constants.take();
        for i in &inputs {
            if !emitted.iter().any(|e| &e.0 == i) && !emitted_constants.iter().any(|e| &e.0 == i) {
                cx.shape_of(i)?;
            }
        }
        for (name, t) in emitted_constants {
            if shapes.contains_key(&name) || constants.contains_key(&name) {
                return Err(invalid(format!("output `{name}` is defined twice")));
            }
            shapes.insert(name.clone(), t.shape.clone());
            constants.insert(name, t);
        }
        if !emitted.is_empty() && inputs.iter().any(|i| int_constants.contains_key(i)) {
            return Err(invalid(
                "integer tensors are supported only in shape arithmetic".into(),
            ));
        }
        for (part, op, ins, shape) in emitted {
            if shapes.contains_key(&part) || constants.contains_key(&part) {
                return Err(invalid(format!("output `{part}` is defined twice")));
            }
            shapes.insert(part.clone(), shape);
            if matches!(op, Op::TopK { indices: true, .. }) {
                integers.insert(part.clone());
            }
            let node = Node {
                name: format!("{name}/{}", part.rsplit('/').next().unwrap_or_default()),
                op,
                inputs: ins,
                output: part,
            };
            push_or_fold(node, &mut nodes, &mut constants, &shapes, &mut folded)?;
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
            let data = fold_ints(&op, &ints, &out_shape).ok_or_else(|| {
                invalid(format!(
                    "integer tensors are supported only in shape arithmetic (Gather, Slice, \
                     Concat, Squeeze, Unsqueeze, Reshape, Flatten, Transpose, Identity, Add, \
                     Sub, Mul, Div, Neg, Max, Min, Sum without overflow or division by zero), \
                     not {}",
                    n.op_type
                ))
            })?;
            int_constants.insert(out.clone(), (out_shape, data));
            continue;
        }
        if shapes.contains_key(out) || constants.contains_key(out) {
            return Err(invalid(format!("output `{out}` is defined twice")));
        }
        if holds_integers(n, &integers, &int_constants) {
            integers.insert(out.clone());
        }
        shapes.insert(out.clone(), out_shape);
        let node = Node {
            name,
            op,
            inputs,
            output: out.clone(),
        };
        push_or_fold(node, &mut nodes, &mut constants, &shapes, &mut folded)?;
    }
    if folded > 0 {
        notes.push(format!(
            "{folded} node(s) of constant inputs evaluated at import (constant folding)"
        ));
    }
    let mut outputs = Vec::new();
    for o in &g.output {
        if int_constants.contains_key(&o.name) {
            return Err(parse_err(format!(
                "graph output `{}` is an integer constant (shape arithmetic): it does not \
                 depend on the input, so there is nothing to prove",
                o.name
            )));
        }
        if constants.contains_key(&o.name) {
            return Err(parse_err(format!(
                "graph output `{}` is a constant: it does not depend on the input, so there \
                 is nothing to prove",
                o.name
            )));
        }
        let Some(shape) = shapes.get(&o.name) else {
            return Err(parse_err(format!(
                "graph output `{}` is never computed",
                o.name
            )));
        };
        outputs.push(Part {
            name: o.name.clone(),
            shape: shape.clone(),
            integer: false,
        });
    }
    // Several outputs are packed, in order, into one vector (no rows).
    let output = if let [one] = outputs.as_slice() {
        one.name.clone()
    } else {
        let packed = PACKED_OUTPUTS.to_string();
        if taken(&packed) {
            return Err(parse_err(format!(
                "a tensor is named `{packed}`, the name zkinfer packs several outputs under"
            )));
        }
        let index = outputs
            .iter()
            .enumerate()
            .flat_map(|(k, p)| (0..p.len()).map(move |j| Some((k, j))))
            .collect::<Vec<_>>();
        shapes.insert(packed.clone(), vec![index.len()]);
        nodes.push(Node {
            name: packed.clone(),
            op: Op::Concat { index },
            inputs: outputs.iter().map(|p| p.name.clone()).collect(),
            output: packed.clone(),
        });
        notes.push(format!(
            "the {} outputs ({}) are packed in this order into one output",
            outputs.len(),
            describe(&outputs)
        ));
        packed
    };
    fold_batch_norms(&mut nodes, &mut constants, &mut shapes, &output, &mut notes);
    fuse_gelus(&mut nodes, &constants, &mut shapes, &output, &mut notes);
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
            input,
            output,
            inputs: parts,
            outputs,
            nodes,
            constants,
            shapes,
        },
        notes,
    })
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
        let (idx, out) = pad_index(&[3], &[1, -1], PadMode::Constant).unwrap();
        assert_eq!(out, vec![3]);
        assert_eq!(idx, vec![None, Some(0), Some(1)]);
        assert!(pad_index(&[3], &[0, -4], PadMode::Constant).is_err());
        // [a b c] by 4 before and 2 after, numpy's way.
        let modes = [
            (PadMode::Reflect, [0, 1, 2, 1, 0, 1, 2, 1, 0]),
            (PadMode::Edge, [0, 0, 0, 0, 0, 1, 2, 2, 2]),
            (PadMode::Wrap, [2, 0, 1, 2, 0, 1, 2, 0, 1]),
        ];
        for (mode, want) in modes {
            let (idx, out) = pad_index(&[3], &[4, 2], mode).unwrap();
            assert_eq!(out, [9]);
            assert_eq!(idx, want.map(Some), "{mode:?}");
        }
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
