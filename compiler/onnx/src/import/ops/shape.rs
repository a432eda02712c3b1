//! Shape ops: Squeeze/Unsqueeze, Flatten, Reshape, Slice/Gather/Pad, Concat, Transpose.
//! They cost no rows: they only choose which cells are copied.

use super::super::*;
use super::{Lowered, NodeCx};

/// `Squeeze`, `Unsqueeze`.
pub(super) fn import_squeeze_unsqueeze(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    let ins = &cx.ins;
    let int_constants = cx.int_constants;
    cx.arity(1, 2)?;
    let s = cx.shape_of(&ins[0])?;
    let axes: Option<Vec<i64>> = match ins.get(1) {
        Some(a) => Some(
            int_constants
                .get(a)
                .ok_or_else(|| cx.invalid(format!("axes `{a}` must be a constant int64 tensor")))?
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
                        cx.invalid(format!(
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
        let axes = axes.ok_or_else(|| cx.invalid("axes are required".into()))?;
        let rank = s.len() + axes.len();
        let mut axes: Vec<usize> = axes
            .iter()
            .map(|&a| normalize_axis(a, rank))
            .collect::<Option<_>>()
            .ok_or_else(|| cx.invalid(format!("axes {axes:?} out of range for rank {rank}")))?;
        axes.sort_unstable();
        axes.dedup();
        if axes.len() + s.len() != rank {
            return Err(cx.invalid("axes repeat".into()));
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
    Ok((Op::Reshape, vec![ins[0].clone()], out))
}

/// `Flatten`.
pub(super) fn import_flatten(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    let ins = &cx.ins;
    cx.arity(1, 1)?;
    let s = cx.shape_of(&ins[0])?;
    // In [-r, r]; a negative axis counts from r (the rank), not from r + 1.
    let a = attr_i(n, "axis").unwrap_or(1);
    let rank = s.len() as i64;
    let axis = usize::try_from(if a < 0 { a + rank } else { a })
        .ok()
        .filter(|&a| a <= s.len())
        .ok_or_else(|| cx.invalid(format!("axis {a} out of range for rank {rank}")))?;
    let outer: usize = s[..axis].iter().product();
    let inner: usize = s[axis..].iter().product();
    Ok((Op::Reshape, vec![ins[0].clone()], vec![outer, inner]))
}

/// `Reshape`.
pub(super) fn import_reshape(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    let ins = &cx.ins;
    let opset = cx.opset;
    let int_constants = cx.int_constants;
    cx.arity(2, 2)?;
    let s = cx.shape_of(&ins[0])?;
    let (_, target) = int_constants.get(&ins[1]).ok_or_else(|| {
        cx.invalid(format!(
            "the target shape `{}` must be a constant int64 tensor",
            ins[1]
        ))
    })?;
    let allow_zero = opset >= 14 && attr_i(n, "allowzero").unwrap_or(0) != 0;
    let out = reshape_target(&s, target, allow_zero).map_err(|e| cx.invalid(e))?;
    Ok((Op::Reshape, vec![ins[0].clone()], out))
}

/// `Slice`, `Gather` (constant indices) and `Pad` ([`import_pad`]): element maps.
pub(super) fn import_element_map(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    let ins = &cx.ins;
    let int_constants = cx.int_constants;
    let x = cx.shape_of(&ins[0])?;
    let ints = |i: usize| -> Result<Option<Vec<i64>>, CompileError> {
        match ins.get(i) {
            None => Ok(None),
            Some(name) => int_constants
                .get(name)
                .map(|(_, v)| Some(v.clone()))
                .ok_or_else(|| cx.invalid(format!("`{name}` must be a constant int64 tensor"))),
        }
    };
    let (index, out) = match n.op_type.as_str() {
        "Slice" => {
            // Before opset 10, starts, ends and axes are attributes.
            let (starts, ends, axes, steps) = if cx.opset < 10 {
                cx.arity(1, 1)?;
                let required = |name: &str| {
                    attr_ints(n, name).map(<[i64]>::to_vec).ok_or_else(|| {
                        cx.invalid(format!("the `{name}` attribute is required (opset < 10)"))
                    })
                };
                (
                    required("starts")?,
                    required("ends")?,
                    attr_ints(n, "axes").map(<[i64]>::to_vec),
                    None,
                )
            } else {
                cx.arity(3, 5)?;
                (
                    ints(1)?.unwrap_or_default(),
                    ints(2)?.unwrap_or_default(),
                    ints(3)?,
                    ints(4)?,
                )
            };
            let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
            let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
            slice_index(&x, &starts, &ends, &axes, &steps).map_err(|e| cx.invalid(e))?
        }
        "Gather" => {
            cx.arity(2, 2)?;
            if !int_constants.contains_key(&ins[1]) {
                return super::array::import_gather_computed(cx);
            }
            let (ishape, idx) = int_constants.get(&ins[1]).cloned().ok_or_else(|| {
                cx.invalid(format!(
                    "indices `{}` must be a constant int64 tensor",
                    ins[1]
                ))
            })?;
            let axis = normalize_axis(attr_i(n, "axis").unwrap_or(0), x.len())
                .ok_or_else(|| cx.invalid(format!("axis out of range for {x:?}")))?;
            gather_index(&x, axis, &ishape, &idx).map_err(|e| cx.invalid(e))?
        }
        _ => return import_pad(cx, &x),
    };
    Ok((Op::Select { index }, vec![ins[0].clone()], out))
}

/// `Pad`: an element map (modes `reflect`, `edge`, `wrap` read input elements), and for
/// mode `constant` a nonzero value added where nothing is read.
fn import_pad(cx: &NodeCx<'_>, x: &[usize]) -> Result<Lowered, CompileError> {
    let (n, ins) = (cx.n, &cx.ins);
    let mode = match attr(n, "mode").map(|a| String::from_utf8_lossy(&a.s).into_owned()) {
        None => PadMode::Constant,
        Some(m) => match m.as_str() {
            "constant" => PadMode::Constant,
            "reflect" => PadMode::Reflect,
            "edge" => PadMode::Edge,
            "wrap" => PadMode::Wrap,
            _ => {
                return Err(cx.invalid(format!(
                    "mode `{m}` is not one of constant, reflect, edge, wrap"
                )))
            }
        },
    };
    // By position: an omitted optional input (`""`) keeps the others' places.
    let input = |i: usize| n.input.get(i).filter(|name| !name.is_empty());
    let ints = |i: usize| -> Result<Option<Vec<i64>>, CompileError> {
        match input(i) {
            None => Ok(None),
            Some(name) => cx
                .int_constants
                .get(name)
                .map(|(_, v)| Some(v.clone()))
                .ok_or_else(|| cx.invalid(format!("`{name}` must be a constant int64 tensor"))),
        }
    };
    let (pads, value) = if cx.opset < 11 {
        // Before opset 11, pads and the value are attributes (`paddings` in opset 1).
        cx.arity(1, 1)?;
        let pads = attr_ints(n, "pads")
            .or_else(|| attr_ints(n, "paddings"))
            .map(<[i64]>::to_vec)
            .ok_or_else(|| cx.invalid("the `pads` attribute is required (opset < 11)".into()))?;
        (pads, attr(n, "value").map_or(0.0, |a| a.f))
    } else {
        cx.arity(2, 4)?;
        let value = match input(2) {
            None => 0.0,
            Some(c) => match (cx.constants.get(c), cx.int_constants.get(c)) {
                (Some(t), _) if t.data.len() == 1 => t.data[0],
                (None, Some((_, v))) if v.len() == 1 => v[0] as f32,
                _ => {
                    return Err(
                        cx.invalid(format!("constant_value `{c}` must be a constant scalar"))
                    )
                }
            },
        };
        let pads = ints(1)?.unwrap_or_default();
        let pads = match ints(3)? {
            // Opset 18: pads for the listed axes only.
            Some(axes) => pads_for_axes(&pads, &axes, x.len()).map_err(|e| cx.invalid(e))?,
            None => pads,
        };
        (pads, value)
    };
    let (index, out) = pad_index(x, &pads, mode).map_err(|e| cx.invalid(e))?;
    let value = if mode == PadMode::Constant {
        value
    } else {
        0.0
    };
    Ok(super::array::select_or_fill(cx, index, &ins[0], out, value))
}

/// Expands opset 18's `Pad` pads for some `axes` (begins then ends) to every axis.
fn pads_for_axes(pads: &[i64], axes: &[i64], rank: usize) -> Result<Vec<i64>, String> {
    if pads.len() != 2 * axes.len() {
        return Err(format!(
            "pads {pads:?} must hold two values per axis of {axes:?}"
        ));
    }
    let mut full = vec![0; 2 * rank];
    for (i, &a) in axes.iter().enumerate() {
        let a = normalize_axis(a, rank)
            .ok_or_else(|| format!("axis {a} out of range for rank {rank}"))?;
        full[a] = pads[i];
        full[rank + a] = pads[axes.len() + i];
    }
    Ok(full)
}

/// `Concat`.
pub(super) fn import_concat(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    let ins = &cx.ins;
    if ins.is_empty() {
        return Err(cx.invalid("expected at least one input".into()));
    }
    let shapes_in = ins
        .iter()
        .map(|s| cx.shape_of(s))
        .collect::<Result<Vec<_>, _>>()?;
    let rank = shapes_in[0].len();
    let axis =
        attr_i(n, "axis").ok_or_else(|| cx.invalid("the `axis` attribute is required".into()))?;
    let axis = normalize_axis(axis, rank)
        .ok_or_else(|| cx.invalid(format!("axis {axis} out of range for rank {rank}")))?;
    let (index, out) = concat_index(&shapes_in, axis).map_err(|e| cx.invalid(e))?;
    Ok((Op::Concat { index }, ins.clone(), out))
}

/// `Transpose`.
pub(super) fn import_transpose(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    let ins = &cx.ins;
    cx.arity(1, 1)?;
    let s = cx.shape_of(&ins[0])?;
    let perm: Vec<usize> = match attr_ints(n, "perm") {
        Some(p) => p
            .iter()
            .map(|&v| normalize_axis(v, s.len()))
            .collect::<Option<_>>()
            .ok_or_else(|| cx.invalid(format!("perm {p:?} out of range for rank {}", s.len())))?,
        None => (0..s.len()).rev().collect(),
    };
    let mut seen = perm.clone();
    seen.sort_unstable();
    if seen != (0..s.len()).collect::<Vec<_>>() {
        return Err(cx.invalid(format!(
            "perm {perm:?} is not a permutation of 0..{}",
            s.len()
        )));
    }
    let out = perm.iter().map(|&p| s[p]).collect();
    Ok((Op::Transpose { perm }, ins.clone(), out))
}
