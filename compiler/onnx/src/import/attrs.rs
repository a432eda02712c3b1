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
/// read as numbers. `given` (EZKL's `input_shapes` entry for it) fixes its symbolic
/// dimensions, where it has some, and must agree with its constant ones; a symbolic
/// dimension's name takes one size in every input (`bound`). Without `given`, a symbolic
/// or unnamed batch dimension (the first) is fixed to 1, and any other is an error
/// saying how to fix it.
pub(super) fn value_info_shape(
    v: &pb::ValueInfoProto,
    notes: &mut Vec<String>,
    given: Option<&[usize]>,
    bound: &mut BTreeMap<String, usize>,
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
    // A model whose shape is all constants keeps it (`parse_input_json` then checks the
    // given shape against it, up to dimensions of size 1).
    let symbolic = dims
        .iter()
        .any(|d| !matches!(d.value, Some(Dim::DimValue(x)) if x > 0));
    if let Some(given) = given.filter(|_| symbolic) {
        if given.len() != dims.len() {
            return Err(err(format!(
                "`input_shapes` gives it {given:?}, of rank {}; the model's has rank {}",
                given.len(),
                dims.len()
            )));
        }
        for (axis, (d, &size)) in dims.iter().zip(given).enumerate() {
            match &d.value {
                Some(Dim::DimValue(x)) if *x == size as i64 => {}
                Some(Dim::DimValue(x)) => {
                    return Err(err(format!(
                        "`input_shapes` gives it {given:?}; the model fixes dimension {axis} to {x}"
                    )))
                }
                _ if size == 0 => {
                    return Err(err(format!(
                        "`input_shapes` gives it {given:?}: dimension {axis} is empty"
                    )))
                }
                Some(Dim::DimParam(p)) => match bound.get(p) {
                    Some(&b) if b != size => {
                        return Err(err(format!(
                            "`input_shapes` gives its dimension {axis} (`{p}`) {size}, and another input's `{p}` {b}"
                        )))
                    }
                    Some(_) => {}
                    None => {
                        bound.insert(p.clone(), size);
                        notes.push(format!(
                            "symbolic dimension `{p}` fixed to {size} by `input_shapes`"
                        ));
                    }
                },
                None => notes.push(format!(
                    "input `{}`: unnamed dimension {axis} fixed to {size} by `input_shapes`",
                    v.name
                )),
            }
        }
        return Ok((given.to_vec(), integer));
    }
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
            Some(Dim::DimParam(p)) => {
                return Err(err(format!(
                    "dimension {axis} is symbolic (`{p}`): give its size in the calibration file's `input_shapes` (EZKL's format: one shape per model input)"
                )))
            }
            None => {
                return Err(err(format!(
                    "dimension {axis} has no size: give it in the calibration file's `input_shapes` (EZKL's format: one shape per model input)"
                )))
            }
            _ => return Err(err(format!("dimension {axis} is not a positive constant"))),
        }
    }
    Ok((shape, integer))
}
