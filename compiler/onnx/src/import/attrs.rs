//! Reading a node: its name, attributes with their ONNX defaults, axes, declared shapes.

use super::*;

pub(super) fn node_name(n: &pb::NodeProto, index: usize) -> String {
    if n.name.is_empty() {
        format!("{}_{index}", n.op_type)
    } else {
        n.name.clone()
    }
}

pub(super) fn normalize_axis(axis: i64, rank: usize) -> Option<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    (0..rank as i64).contains(&a).then_some(a as usize)
}

pub(super) fn attr<'a>(n: &'a pb::NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

pub(super) fn attr_f(n: &pb::NodeProto, name: &str) -> Option<f32> {
    attr(n, name).map(|a| a.f)
}

pub(super) fn attr_i(n: &pb::NodeProto, name: &str) -> Option<i64> {
    attr(n, name).map(|a| a.i)
}

pub(super) fn attr_ints<'a>(n: &'a pb::NodeProto, name: &str) -> Option<&'a [i64]> {
    attr(n, name).map(|a| a.ints.as_slice())
}

pub(super) fn value_info_shape(
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
