//! Normalisations and reductions: Softmax, LogSoftmax, LayerNormalization,
//! BatchNormalization, InstanceNormalization, GlobalMaxPool, the Reduce family.

use super::super::*;
use super::{Lowered, NodeCx};

/// `Softmax`.
pub(super) fn import_softmax(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let ins = &cx.ins;
    let opset = cx.opset;
    cx.arity(1, 1)?;
    let x = cx.shape_of(&ins[0])?;
    let axis = softmax_axis(cx, &x)?;
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

/// The `axis` of `Softmax`, `LogSoftmax` and `Hardmax` on an input shaped `x`: by
/// default the last from opset 13, the second before.
pub(super) fn softmax_axis(cx: &NodeCx<'_>, x: &[usize]) -> Result<usize, CompileError> {
    let default = if cx.opset >= 13 { -1 } else { 1 };
    normalize_axis(attr_i(cx.n, "axis").unwrap_or(default), x.len())
        .ok_or_else(|| cx.invalid(format!("axis out of range for {x:?}")))
}

/// `LayerNormalization` over the axes from `axis` on (others than the last: over the
/// input flattened to `[outer, inner]`, and back); its optional `Mean` and `InvStdDev`
/// outputs are emitted as a mean, a mean of squared differences and a reciprocal square
/// root.
pub(super) fn import_layer_normalization(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    use zkinfer_qir::Func;
    let n = cx.n;
    let ins = &cx.ins;
    cx.arity(2, 3)?;
    let x = cx.shape_of(&ins[0])?;
    let axis = normalize_axis(attr_i(n, "axis").unwrap_or(-1), x.len())
        .ok_or_else(|| cx.invalid(format!("axis out of range for {x:?}")))?;
    let (outer, inner) = (
        x[..axis].iter().product::<usize>(),
        x[axis..].iter().product::<usize>(),
    );
    let mut params = Vec::new();
    for p in &ins[1..] {
        let t = cx
            .constants
            .get(p)
            .filter(|t| t.len() == inner)
            .ok_or_else(|| cx.invalid(format!("`{p}` must be a constant with {inner} values")))?;
        params.push(if axis + 1 == x.len() {
            p.clone()
        } else {
            cx.emit_constant(
                &format!("{p}_flat"),
                Tensor::new(vec![inner], t.data.clone()),
            )
        });
    }
    if attr_i(n, "stash_type").unwrap_or(1) != 1 {
        return Err(cx.invalid("stash_type other than float32 is not supported".into()));
    }
    let epsilon = attr_f(n, "epsilon").unwrap_or(1e-5);
    let flat = vec![outer, inner];
    // Over the last axis the op applies as it is; otherwise over `[outer, inner]`.
    let direct = axis + 1 == x.len();
    let wanted = |i: usize| n.output.get(i).filter(|s| !s.is_empty());
    let rows = if x == flat || (direct && wanted(1).is_none() && wanted(2).is_none()) {
        ins[0].clone()
    } else {
        cx.emit("rows", Op::Reshape, vec![ins[0].clone()], flat.clone())
    };
    let stats: Vec<usize> = x[..axis]
        .iter()
        .copied()
        .chain(std::iter::repeat_n(1, x.len() - axis))
        .collect();
    if wanted(1).is_some() || wanted(2).is_some() {
        let (index, len, _) = reduce_index(&flat, &[1], true);
        let reduce = Op::Reduce {
            index,
            len,
            mean: true,
        };
        let mean = cx.emit("mean", reduce.clone(), vec![rows.clone()], vec![outer, 1]);
        if let Some(m) = wanted(1) {
            cx.emit_output(m, Op::Reshape, vec![mean.clone()], stats.clone());
        }
        if let Some(s) = wanted(2) {
            let diff = cx.emit("diff", Op::Sub, vec![rows.clone(), mean], flat.clone());
            let square = cx.emit("square", Op::Mul, vec![diff.clone(), diff], flat.clone());
            let var = cx.emit("var", reduce, vec![square], vec![outer, 1]);
            let eps = cx.emit_constant("epsilon", Tensor::new(vec![], vec![epsilon]));
            let shifted = cx.emit("var_eps", Op::Add, vec![var, eps], vec![outer, 1]);
            let inv = cx.emit(
                "inv_std",
                Op::Unary(Func::Rsqrt),
                vec![shifted],
                vec![outer, 1],
            );
            cx.emit_output(s, Op::Reshape, vec![inv], stats);
        }
    }
    if direct {
        return Ok((Op::LayerNormalization { epsilon }, ins.clone(), x));
    }
    let inputs: Vec<String> = [rows].into_iter().chain(params).collect();
    let y = cx.emit("normed", Op::LayerNormalization { epsilon }, inputs, flat);
    Ok((Op::Reshape, vec![y], x))
}

/// `ReduceSum`, `ReduceMean`, `ReduceSumSquare`, `ReduceL1`, `ReduceL2`, `ReduceLogSum`
/// (an element-wise map, a sum, a tabulated function), `ReduceLogSumExp`
/// ([`shifted_log_sum_exp`]), `ReduceMax`, `ReduceMin` (the reduced positions side by
/// side, then proven maxima or minima), `ReduceProd` (their products, one after another).
pub(super) fn import_reduce(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    use zkinfer_qir::Func;
    let n = cx.n;
    let ins = &cx.ins;
    cx.arity(1, 2)?;
    let x = cx.shape_of(&ins[0])?;
    // Opset 18+ (ReduceSum: 13+) take the axes as an optional constant input.
    let axes: Option<Vec<i64>> = match ins.get(1) {
        Some(a) => Some(
            cx.int_constants
                .get(a)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| cx.invalid(format!("axes `{a}` must be a constant")))?,
        ),
        None => attr_ints(n, "axes").map(<[i64]>::to_vec),
    };
    let keepdims = attr_i(n, "keepdims").unwrap_or(1) != 0;
    let noop = attr_i(n, "noop_with_empty_axes").unwrap_or(0) != 0;
    let mut axes: Vec<usize> = match axes {
        Some(a) if !a.is_empty() => a
            .iter()
            .map(|&v| normalize_axis(v, x.len()))
            .collect::<Option<_>>()
            .ok_or_else(|| cx.invalid(format!("axes {a:?} out of range for rank {}", x.len())))?,
        _ if noop => vec![],
        _ => (0..x.len()).collect(),
    };
    axes.sort_unstable();
    axes.dedup();
    let (index, len, out) = reduce_index(&x, &axes, keepdims);
    if len == 0 {
        return Err(cx.invalid(format!("the reduced axes {axes:?} of {x:?} are empty")));
    }
    let data = ins[0].clone();
    let op_type = n.op_type.as_str();
    if matches!(op_type, "ReduceMax" | "ReduceMin") {
        if len == 1 {
            return Ok((
                Op::Select {
                    index: index.into_iter().map(Some).collect(),
                },
                vec![data],
                out,
            ));
        }
        let op = if op_type == "ReduceMax" {
            Op::Max
        } else {
            Op::Min
        };
        return Ok((op, lanes(cx, &data, &index, len, &out, ""), out));
    }
    let summand = match op_type {
        "ReduceSumSquare" | "ReduceL2" => {
            cx.emit("square", Op::Mul, vec![data.clone(), data], x.clone())
        }
        "ReduceL1" => cx.emit("abs", Op::Unary(Func::Abs), vec![data], x.clone()),
        "ReduceLogSumExp" => {
            let (_, log_sum, max, kept) = shifted_log_sum_exp(cx, &data, &x, &axes);
            if keepdims {
                return Ok((Op::Add, vec![log_sum, max], out));
            }
            let lse = cx.emit("lse", Op::Add, vec![log_sum, max], kept);
            return Ok((Op::Reshape, vec![lse], out));
        }
        _ => data,
    };
    if op_type == "ReduceProd" {
        if len == 1 {
            let index = index.into_iter().map(Some).collect();
            return Ok((Op::Select { index }, vec![summand], out));
        }
        // Products of the lanes, one after another.
        let lanes = lanes(cx, &summand, &index, len, &out, "");
        let mut product = lanes[0].clone();
        for (j, lane) in lanes.iter().enumerate().skip(1) {
            let inputs = vec![product, lane.clone()];
            if j + 1 == len {
                return Ok((Op::Mul, inputs, out));
            }
            product = cx.emit(&format!("product{j}"), Op::Mul, inputs, out.clone());
        }
    }
    let mean = op_type == "ReduceMean";
    let reduce = Op::Reduce { index, len, mean };
    let after = match op_type {
        "ReduceL2" => Func::Sqrt,
        "ReduceLogSum" => Func::Log,
        _ => return Ok((reduce, vec![summand], out)),
    };
    let sum = cx.emit("sum", reduce, vec![summand], out.clone());
    Ok((Op::Unary(after), vec![sum], out))
}

/// `GlobalMaxPool`: the largest element of each sample's channel, `[N, C, 1, …]`.
pub(super) fn import_global_max_pool(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    cx.arity(1, 1)?;
    let x = cx.shape_of(&cx.ins[0])?;
    if x.len() < 3 {
        return Err(cx.invalid(format!("the input must be [N, C, spatial...], got {x:?}")));
    }
    let axes: Vec<usize> = (2..x.len()).collect();
    let (index, len, out) = reduce_index(&x, &axes, true);
    if len == 1 {
        let index = index.into_iter().map(Some).collect();
        return Ok((Op::Select { index }, cx.ins.clone(), out));
    }
    Ok((Op::Max, lanes(cx, &cx.ins[0], &index, len, &out, ""), out))
}

/// The reduced positions of `data` side by side: lane `j` holds the `j`-th element of
/// each output element of a reduction (`index`, `len` each), shaped `out`.
fn lanes(
    cx: &NodeCx<'_>,
    data: &str,
    index: &[usize],
    len: usize,
    out: &[usize],
    tag: &str,
) -> Vec<String> {
    (0..len)
        .map(|j| {
            let pick = index
                .iter()
                .skip(j)
                .step_by(len)
                .map(|&i| Some(i))
                .collect();
            cx.emit(
                &format!("{tag}lane{j}"),
                Op::Select { index: pick },
                vec![data.to_owned()],
                out.to_vec(),
            )
        })
        .collect()
}

/// A log-sum-exp over `axes` of `data` (shape `x`), in the form whose exponentials lie in
/// `(0, 1]` whatever the input's range: `x − m` for `m` the proven maximum, and
/// `ln Σ exp(x − m)` and `m` with the reduced axes kept (length 1), whose shape is the
/// fourth value. `exp(x)` itself overflows any fixed-point range from `x` ≈ 22 on.
fn shifted_log_sum_exp(
    cx: &NodeCx<'_>,
    data: &str,
    x: &[usize],
    axes: &[usize],
) -> (String, String, String, Vec<usize>) {
    use zkinfer_qir::Func;
    let (index, len, kept) = reduce_index(x, axes, true);
    let max = if len == 1 {
        let index = index.iter().map(|&i| Some(i)).collect();
        cx.emit(
            "max",
            Op::Select { index },
            vec![data.to_owned()],
            kept.clone(),
        )
    } else {
        let lanes = lanes(cx, data, &index, len, &kept, "max_");
        cx.emit("max", Op::Max, lanes, kept.clone())
    };
    let shifted = cx.emit(
        "shifted",
        Op::Sub,
        vec![data.to_owned(), max.clone()],
        x.to_vec(),
    );
    let exp = cx.emit(
        "exp",
        Op::Unary(Func::Exp),
        vec![shifted.clone()],
        x.to_vec(),
    );
    let reduce = Op::Reduce {
        index,
        len,
        mean: false,
    };
    let sum = cx.emit("sum", reduce, vec![exp], kept.clone());
    let log_sum = cx.emit("log_sum", Op::Unary(Func::Log), vec![sum], kept.clone());
    (shifted, log_sum, max, kept)
}

/// `LogSoftmax`: `x − m − ln Σ exp(x − m)` over the axis ([`shifted_log_sum_exp`]); before
/// opset 13, over every axis from `axis` on (the input flattened to 2-D there).
pub(super) fn import_log_softmax(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    cx.arity(1, 1)?;
    let x = cx.shape_of(&cx.ins[0])?;
    let axis = softmax_axis(cx, &x)?;
    let axes: Vec<usize> = if cx.opset >= 13 {
        vec![axis]
    } else {
        (axis..x.len()).collect()
    };
    let (shifted, log_sum, _, _) = shifted_log_sum_exp(cx, &cx.ins[0], &x, &axes);
    Ok((Op::Sub, vec![shifted, log_sum], x))
}

/// `InstanceNormalization`: per sample and channel over the spatial axes, a layer
/// normalisation of `[N, C, spatial]` with unit scale, then the per-channel scale and bias.
pub(super) fn import_instance_normalization(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    cx.arity(3, 3)?;
    let x = cx.shape_of(&cx.ins[0])?;
    if x.len() < 3 {
        return Err(cx.invalid(format!("the input must be [N, C, spatial...], got {x:?}")));
    }
    let (c, spatial) = (x[1], x[2..].iter().product::<usize>());
    for p in &cx.ins[1..] {
        if cx.constants.get(p).map(|t| t.len()) != Some(c) {
            return Err(cx.invalid(format!("`{p}` must be a constant with {c} values")));
        }
    }
    let epsilon = attr_f(cx.n, "epsilon").unwrap_or(1e-5);
    let flat = vec![x[0], c, spatial];
    let rows = cx.emit("rows", Op::Reshape, vec![cx.ins[0].clone()], flat.clone());
    let unit = cx.emit_constant("unit", Tensor::new(vec![spatial], vec![1.0; spatial]));
    let normed = cx.emit(
        "normed",
        Op::LayerNormalization { epsilon },
        vec![rows, unit],
        flat,
    );
    let back = cx.emit("back", Op::Reshape, vec![normed], x.clone());
    let per_channel: Vec<usize> = [c]
        .into_iter()
        .chain(std::iter::repeat_n(1, x.len() - 2))
        .collect();
    let param = |i: usize, tag: &str| {
        let t = &cx.constants[&cx.ins[i]];
        cx.emit_constant(tag, Tensor::new(per_channel.clone(), t.data.clone()))
    };
    let scaled = cx.emit("scaled", Op::Mul, vec![back, param(1, "scale")], x.clone());
    Ok((Op::Add, vec![scaled, param(2, "bias")], x))
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
