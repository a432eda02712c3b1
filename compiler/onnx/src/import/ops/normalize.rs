//! Normalisations and reductions: Softmax, LayerNormalization, BatchNormalization,
//! ReduceSum/ReduceMean.

use super::super::*;
use super::{Lowered, NodeCx};

/// `Softmax`.
pub(super) fn import_softmax(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    let ins = &cx.ins;
    let opset = cx.opset;
    cx.arity(1, 1)?;
    let x = cx.shape_of(&ins[0])?;
    let default = if opset >= 13 { -1 } else { 1 };
    let axis = normalize_axis(attr_i(n, "axis").unwrap_or(default), x.len())
        .ok_or_else(|| cx.invalid(format!("axis out of range for {x:?}")))?;
    if axis + 1 == x.len() || x[axis + 1..].iter().all(|&d| d == 1) {
        return Ok((Op::Softmax, ins.clone(), x));
    }
    if opset < 13 {
        // Before opset 13 the input is flattened to 2-D at the axis: a softmax over the
        // last axis of `[outer, inner]`, reshaped back (reshapes cost no rows).
        let flat = vec![
            x[..axis].iter().product::<usize>(),
            x[axis..].iter().product::<usize>(),
        ];
        let two_d = cx.emit("2d", Op::Reshape, vec![ins[0].clone()], flat.clone());
        let y = cx.emit("softmax", Op::Softmax, vec![two_d], flat);
        return Ok((Op::Reshape, vec![y], x));
    }
    // Another axis: moved last, and back (transposes cost no rows).
    let mut perm: Vec<usize> = (0..x.len()).filter(|&d| d != axis).collect();
    perm.push(axis);
    let moved: Vec<usize> = perm.iter().map(|&d| x[d]).collect();
    let mut back = vec![0; perm.len()];
    for (i, &d) in perm.iter().enumerate() {
        back[d] = i;
    }
    let t = cx.emit(
        "moved",
        Op::Transpose { perm },
        vec![ins[0].clone()],
        moved.clone(),
    );
    let y = cx.emit("softmax", Op::Softmax, vec![t], moved);
    Ok((Op::Transpose { perm: back }, vec![y], x))
}

/// `LayerNormalization`.
pub(super) fn import_layer_normalization(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    let ins = &cx.ins;
    let constants = cx.constants;
    cx.arity(2, 3)?;
    let x = cx.shape_of(&ins[0])?;
    let axis = normalize_axis(attr_i(n, "axis").unwrap_or(-1), x.len())
        .ok_or_else(|| cx.invalid(format!("axis out of range for {x:?}")))?;
    if axis + 1 != x.len() {
        return Err(cx.invalid(format!(
            "only normalisation over the last axis is supported (axis {axis} of {x:?})"
        )));
    }
    let d = x[axis];
    for p in &ins[1..] {
        if constants.get(p).map(|t| t.len()) != Some(d) {
            return Err(cx.invalid(format!("`{p}` must be a constant with {d} values")));
        }
    }
    if attr_i(n, "stash_type").unwrap_or(1) != 1 {
        return Err(cx.invalid("stash_type other than float32 is not supported".into()));
    }
    let epsilon = attr_f(n, "epsilon").unwrap_or(1e-5);
    Ok((Op::LayerNormalization { epsilon }, ins.clone(), x))
}

/// `ReduceSum`, `ReduceMean`.
pub(super) fn import_reduce(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    let ins = &cx.ins;
    let int_constants = cx.int_constants;
    let x = cx.shape_of(&ins[0])?;
    // Opset 18+ (ReduceSum: 13+) take the axes as an optional constant input.
    let axes: Option<Vec<i64>> = match ins.get(1) {
        Some(a) => Some(
            int_constants
                .get(a)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| cx.invalid(format!("axes `{a}` must be a constant")))?,
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
            .ok_or_else(|| cx.invalid(format!("axes {a:?} out of range for rank {}", x.len())))?,
        _ if noop => vec![],
        _ => (0..x.len()).collect(),
    };
    let mut axes = axes;
    axes.sort_unstable();
    axes.dedup();
    let (index, len, out) = reduce_index(&x, &axes, keepdims);
    let mean = n.op_type == "ReduceMean";
    Ok((Op::Reduce { index, len, mean }, vec![ins[0].clone()], out))
}

/// `BatchNormalization`.
pub(super) fn import_batch_normalization(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    let ins = &cx.ins;
    let constants = cx.constants;
    cx.arity(5, 5)?;
    let x = cx.shape_of(&ins[0])?;
    if x.len() < 2 {
        return Err(cx.invalid(format!("X must have a channel axis, got {x:?}")));
    }
    if attr_i(n, "training_mode").unwrap_or(0) != 0 {
        return Err(cx.invalid("training_mode=1 is not inference".into()));
    }
    for p in &ins[1..] {
        let shape = constants.get(p).map(|t| t.shape.clone());
        if shape != Some(vec![x[1]]) {
            return Err(cx.invalid(format!("`{p}` must be a constant of shape [{}]", x[1])));
        }
    }
    let epsilon = attr_f(n, "epsilon").unwrap_or(1e-5);
    Ok((Op::BatchNormalization { epsilon }, ins.clone(), x))
}
