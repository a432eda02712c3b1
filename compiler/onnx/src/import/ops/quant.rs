//! `QuantizeLinear` and `DequantizeLinear`, as static quantization tools write them
//! around each op (QDQ): a dequantized constant folds to the float weights it stands
//! for; a quantization of a computed tensor is one tabulated step function (rounding
//! and saturation proven by the lookup), its dequantization an affine map.

use tract_onnx::pb::tensor_proto::DataType;

use super::super::*;
use super::{Lowered, NodeCx};

/// The saturation range of a quantized type.
fn range(t: i32) -> Option<(i64, i64)> {
    Some(match DataType::try_from(t).ok()? {
        DataType::Uint8 => (0, 255),
        DataType::Int8 => (-128, 127),
        DataType::Uint16 => (0, 65_535),
        DataType::Int16 => (-32_768, 32_767),
        _ => return None,
    })
}

/// The scale (float constants) and zero point (integer constants, or 0) at inputs 1 and
/// 2, each one value or one per element along `axis` of `shape`; and the zero point's
/// type (`uint8` without one, as ONNX says).
fn parameters(
    cx: &NodeCx<'_>,
    shape: &[usize],
) -> Result<(Vec<f32>, Vec<i64>, i32, usize), CompileError> {
    let n = cx.n;
    if attr_i(n, "block_size").unwrap_or(0) != 0 {
        return Err(cx.invalid("blocked quantization (block_size) is not supported".into()));
    }
    let input = |i: usize| n.input.get(i).filter(|s| !s.is_empty());
    let scale_name = input(1).ok_or_else(|| cx.invalid("the scale is required".into()))?;
    let scale = cx
        .constants
        .get(scale_name)
        .map(|t| t.data.clone())
        .ok_or_else(|| {
            cx.invalid(format!(
                "the scale `{scale_name}` must be a constant (float)"
            ))
        })?;
    let (zero, ty) = match input(2) {
        None => (vec![0], DataType::Uint8 as i32),
        Some(z) => match (cx.int_constants.get(z), cx.elem_types.get(z)) {
            (Some((_, v)), Some(&t)) => (v.clone(), t),
            _ => {
                return Err(cx.invalid(format!("the zero point `{z}` must be a constant (integer)")))
            }
        },
    };
    let axis = normalize_axis(attr_i(n, "axis").unwrap_or(1), shape.len().max(1)).unwrap_or(0);
    let per_axis = shape.get(axis).copied().unwrap_or(1);
    for (what, len) in [("scale", scale.len()), ("zero point", zero.len())] {
        if len != 1 && len != per_axis {
            return Err(cx.invalid(format!(
                "the {what} has {len} values: one, or one per element of axis {axis} of {shape:?}"
            )));
        }
    }
    if scale.iter().any(|&s| !(s.is_finite() && s > 0.0)) {
        return Err(cx.invalid(format!("the scale {scale:?} must be positive")));
    }
    Ok((scale, zero, ty, axis))
}

/// The position along `axis` of flat element `f` of `shape`.
fn along(f: usize, shape: &[usize], axis: usize) -> usize {
    let inner: usize = shape[axis + 1..].iter().product();
    (f / inner.max(1)) % shape[axis].max(1)
}

/// `DequantizeLinear(x, scale, zero_point)`: `(x − zero_point) · scale`, per tensor or per
/// element of `axis`. Of a constant it is the float constant; of a computed tensor (a
/// `QuantizeLinear`'s output) an affine map.
pub(super) fn import_dequantize(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    cx.arity(2, 3)?;
    let x = &cx.ins[0];
    let shape = cx.shape_of(x)?;
    let (scale, zero, _, axis) = parameters(cx, &shape)?;
    let at = |v: &[i64], f: usize| {
        if v.len() == 1 {
            v[0]
        } else {
            v[along(f, &shape, axis)]
        }
    };
    let s_at = |f: usize| {
        if scale.len() == 1 {
            scale[0]
        } else {
            scale[along(f, &shape, axis)]
        }
    };
    if let Some((_, v)) = cx.int_constants.get(x) {
        let data = v
            .iter()
            .enumerate()
            .map(|(f, &q)| (q - at(&zero, f)) as f32 * s_at(f))
            .collect();
        let w = cx.emit_constant("dequantized", Tensor::new(shape.clone(), data));
        return Ok((Op::Identity, vec![w], shape));
    }
    let len: usize = shape.iter().product();
    let zero_f: Vec<f32> = (0..len).map(|f| at(&zero, f) as f32).collect();
    let scale_f: Vec<f32> = (0..len).map(s_at).collect();
    let z = cx.emit_constant("zero_point", Tensor::new(shape.clone(), zero_f));
    let s = cx.emit_constant("scale", Tensor::new(shape.clone(), scale_f));
    let centered = cx.emit("centered", Op::Sub, vec![x.clone(), z], shape.clone());
    Ok((Op::Mul, vec![centered, s], shape))
}

/// `QuantizeLinear(x, scale, zero_point)` of one scale and zero point into an 8-bit type:
/// one tabulated step function of `x`, its rounding (half to even) and saturation proven
/// by the lookup.
pub(super) fn import_quantize(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    cx.arity(2, 3)?;
    let x = &cx.ins[0];
    let shape = cx.shape_of(x)?;
    let (scale, zero, ty, _) = parameters(cx, &shape)?;
    let (min, max) = range(ty).filter(|(lo, hi)| hi - lo <= 255).ok_or_else(|| {
        cx.invalid(format!(
            "quantizing to element type {ty}: only 8-bit types (uint8, int8) are supported"
        ))
    })?;
    if scale.len() != 1 || zero.len() != 1 {
        return Err(cx.invalid(
            "per-axis quantization of a computed tensor is not supported (one scale and zero point are)"
                .into(),
        ));
    }
    if attr_i(cx.n, "saturate").is_some_and(|s| s == 0) {
        return Err(cx.invalid("saturate=0 applies to float8 types only".into()));
    }
    let f = zkinfer_qir::Func::Quantize {
        scale: zkinfer_qir::Real(f64::from(scale[0])),
        zero_point: zero[0],
        min,
        max,
    };
    Ok((Op::Unary(f), vec![x.clone()], shape))
}
