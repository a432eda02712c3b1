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

/// The shape of a graph input, and whether it holds integers (or booleans): those are
/// read as numbers.
pub(super) fn value_info_shape(
    v: &pb::ValueInfoProto,
    notes: &mut Vec<String>,
) -> Result<(Vec<usize>, bool), CompileError> {
    let err = |reason: String| CompileError::Parse {
        path: String::new(),
        reason: format!("input `{}`: {reason}", v.name),
    };
    let Some(pb::type_proto::Value::TensorType(t)) =
        v.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Err(err("not a tensor".into()));
    };
    use pb::tensor_proto::DataType as D;
    let integer = match D::try_from(t.elem_type) {
        Ok(D::Float | D::Double | D::Float16 | D::Bfloat16) => false,
        Ok(
            D::Int8
            | D::Int16
            | D::Int32
            | D::Int64
            | D::Uint8
            | D::Uint16
            | D::Uint32
            | D::Uint64
            | D::Bool,
        ) => true,
        _ => {
            return Err(err(format!(
                "element type {} is not a number type (float, integer or bool)",
                t.elem_type
            )))
        }
    };
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
            // An unnamed dimension (skl2onnx writes its batch axis so).
            None if axis == 0 && dims.len() > 1 => {
                notes.push(format!(
                    "input `{}`: unnamed batch dimension fixed to 1",
                    v.name
                ));
                shape.push(1);
            }
            _ => return Err(err(format!("dimension {axis} is not a positive constant"))),
        }
    }
    Ok((shape, integer))
}
