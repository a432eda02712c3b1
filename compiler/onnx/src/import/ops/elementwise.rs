//! Element-wise ops: arithmetic, tabulated functions, Clip, LeakyRelu, Sum/Max/Min,
//! Relu, Identity, MaxPool.

use super::super::*;
use super::{Lowered, NodeCx};
use crate::graph::broadcast_index;

/// `Add`, `Sub`, `Mul`, `Div`.
pub(super) fn import_arithmetic(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    let ins = &cx.ins;
    cx.arity(2, 2)?;
    let (a, b) = (cx.shape_of(&ins[0])?, cx.shape_of(&ins[1])?);
    let s = broadcast_shape(&a, &b)
        .ok_or_else(|| cx.invalid(format!("shapes {a:?} and {b:?} do not broadcast")))?;
    let op = match n.op_type.as_str() {
        "Add" => Op::Add,
        "Sub" => Op::Sub,
        "Mul" => Op::Mul,
        _ => Op::Div,
    };
    let computed = |i: &String| !cx.constants.contains_key(i) && !cx.int_constants.contains_key(i);
    if op == Op::Div && cx.is_integer(&ins[0]) && cx.is_integer(&ins[1]) {
        // Integer division truncates toward zero (ONNX's `Div` on integer types): by a
        // constant, exactly; by a computed divisor, through its tabulated reciprocal.
        if !computed(&ins[1]) {
            return Ok((Op::IntDiv, ins.clone(), s));
        }
        let recip = cx.emit(
            "recip",
            Op::Unary(zkinfer_qir::Func::Reciprocal),
            vec![ins[1].clone()],
            b,
        );
        let q = cx.emit("real", Op::Mul, vec![ins[0].clone(), recip], s.clone());
        return Ok((Op::Unary(zkinfer_qir::Func::Trunc), vec![q], s));
    }
    if op == Op::Div && computed(&ins[1]) {
        // a / b = a · (1 / b): the reciprocal tabulated over the range calibration sees
        // for it, then a product of two computed tensors.
        let recip = cx.emit(
            "recip",
            Op::Unary(zkinfer_qir::Func::Reciprocal),
            vec![ins[1].clone()],
            b,
        );
        return Ok((Op::Mul, vec![ins[0].clone(), recip], s));
    }
    Ok((op, ins.clone(), s))
}

/// Comparisons and logic, lowered to arithmetic and a tabulated step, so that every
/// bit is proven: `Less`, `Greater`, `LessOrEqual`, `GreaterOrEqual` and `Equal` test the
/// difference of their operands; `Not`, `And`, `Or` and `Xor` take 0/1 values (booleans
/// are 0 and 1 in the float graph); `Where(c, x, y)` is `y + c · (x − y)`.
pub(super) fn import_logic(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    use zkinfer_qir::Func;
    let ins = &cx.ins;
    let op_type = cx.n.op_type.as_str();
    if op_type == "Not" {
        cx.arity(1, 1)?;
        return Ok((Op::Unary(Func::IsZero), ins.clone(), cx.shape_of(&ins[0])?));
    }
    let arity = if op_type == "Where" { 3 } else { 2 };
    cx.arity(arity, arity)?;
    let mut s = cx.shape_of(&ins[0])?;
    for i in &ins[1..] {
        let t = cx.shape_of(i)?;
        s = broadcast_shape(&s, &t)
            .ok_or_else(|| cx.invalid(format!("shapes {s:?} and {t:?} do not broadcast")))?;
    }
    let (a, b) = (&ins[0], &ins[1]);
    let part = |suffix: &str, op: Op, x: &String, y: &String| {
        cx.emit(suffix, op, vec![x.clone(), y.clone()], s.clone())
    };
    let step = |f: Func, input: String| (Op::Unary(f), vec![input], s.clone());
    Ok(match op_type {
        "Less" => step(Func::Negative, part("diff", Op::Sub, a, b)),
        "Greater" => step(Func::Negative, part("diff", Op::Sub, b, a)),
        "LessOrEqual" => step(Func::NonNegative, part("diff", Op::Sub, b, a)),
        "GreaterOrEqual" => step(Func::NonNegative, part("diff", Op::Sub, a, b)),
        "Equal" => step(Func::IsZero, part("diff", Op::Sub, a, b)),
        "Xor" => step(Func::NonZero, part("diff", Op::Sub, a, b)),
        "Or" => step(Func::NonZero, part("sum", Op::Add, a, b)),
        "And" => (Op::Mul, vec![a.clone(), b.clone()], s.clone()),
        "Where" => {
            let (x, y) = (&ins[1], &ins[2]);
            let d = match (constant_values(cx, x), constant_values(cx, y)) {
                // Two constant branches (a loss's weights or an ignored index's 0): their
                // difference is a constant, computed here.
                (Some((xs, xv)), Some((ys, yv))) => {
                    let shape = broadcast_shape(&xs, &ys).ok_or_else(|| {
                        cx.invalid(format!("shapes {xs:?} and {ys:?} do not broadcast"))
                    })?;
                    let (xi, yi) = (broadcast_index(&xs, &shape), broadcast_index(&ys, &shape));
                    let diff = xi.iter().zip(&yi).map(|(&i, &j)| xv[i] - yv[j]).collect();
                    cx.emit_constant("diff", Tensor::new(shape, diff))
                }
                _ => part("diff", Op::Sub, x, y),
            };
            let p = part("chosen", Op::Mul, a, &d);
            (Op::Add, vec![y.clone(), p], s.clone())
        }
        other => return Err(cx.invalid(format!("`{other}` is not a comparison"))),
    })
}

/// The shape and values of a float or integer constant.
fn constant_values(cx: &NodeCx<'_>, name: &str) -> Option<(Vec<usize>, Vec<f32>)> {
    match (cx.constants.get(name), cx.int_constants.get(name)) {
        (Some(t), _) => Some((t.shape.clone(), t.data.clone())),
        (None, Some((shape, v))) => Some((shape.clone(), v.iter().map(|&v| v as f32).collect())),
        (None, None) => None,
    }
}

/// `ArgMax`, `ArgMin` (`axis`, `keepdims`, `select_last_index`).
pub(super) fn import_arg_extreme(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    let ins = &cx.ins;
    cx.arity(1, 1)?;
    let x = cx.shape_of(&ins[0])?;
    let axis = attr_i(n, "axis").unwrap_or(0);
    let axis = normalize_axis(axis, x.len())
        .ok_or_else(|| cx.invalid(format!("axis {axis} out of range for {x:?}")))?;
    if x[axis] == 0 || u32::try_from(x[axis]).is_err() {
        return Err(cx.invalid(format!("axis {axis} of {x:?} is empty or too long")));
    }
    let mut out = x.clone();
    if attr_i(n, "keepdims").unwrap_or(1) != 0 {
        out[axis] = 1;
    } else {
        out.remove(axis);
    }
    let op = Op::ArgExtreme {
        axis,
        max: n.op_type == "ArgMax",
        last: attr_i(n, "select_last_index").unwrap_or(0) != 0,
    };
    Ok((op, ins.clone(), out))
}

/// `TopK` (`axis`, `largest`, `sorted`; `k` an input from opset 10, an attribute
/// before): the values output is this node, the indices output a node emitted before it.
/// Both are sorted (what `sorted=1` asks, and an order `sorted=0` allows).
pub(super) fn import_top_k(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    let ins = &cx.ins;
    let k = if cx.opset >= 10 {
        cx.arity(2, 2)?;
        match cx.int_constants.get(&ins[1]) {
            Some((_, v)) if v.len() == 1 => v[0],
            _ => {
                return Err(cx.invalid(format!(
                    "K `{}` must be a constant int64 tensor of one element",
                    ins[1]
                )))
            }
        }
    } else {
        cx.arity(1, 1)?;
        attr_i(n, "k").ok_or_else(|| cx.invalid("attribute `k` is missing".into()))?
    };
    let x = cx.shape_of(&ins[0])?;
    let axis = attr_i(n, "axis").unwrap_or(-1);
    let axis = normalize_axis(axis, x.len())
        .ok_or_else(|| cx.invalid(format!("axis {axis} out of range for {x:?}")))?;
    let len = x[axis];
    let k = usize::try_from(k)
        .ok()
        .filter(|&k| (1..=len).contains(&k) && u32::try_from(len).is_ok())
        .ok_or_else(|| {
            cx.invalid(format!(
                "k = {k} must be between 1 and the length {len} of axis {axis} of {x:?}"
            ))
        })?;
    let largest = attr_i(n, "largest").unwrap_or(1) != 0;
    let mut out = x.clone();
    out[axis] = k;
    let op = |indices| Op::TopK {
        axis,
        k,
        largest,
        indices,
    };
    if let Some(indices) = n.output.get(1).filter(|o| !o.is_empty()) {
        cx.emit_output(indices, op(true), vec![ins[0].clone()], out.clone());
    }
    Ok((op(false), vec![ins[0].clone()], out))
}

/// `Neg`.
pub(super) fn import_neg(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let ins = &cx.ins;
    cx.arity(1, 1)?;
    Ok((Op::Neg, ins.clone(), cx.shape_of(&ins[0])?))
}

/// Functions of one value, tabulated: `Exp`, `Erf`, `Sigmoid`, `Tanh`, `Sqrt`,
/// `Reciprocal`, `Abs`, `Sign`, `Floor`, `Ceil`, `Round`, `Log`, `Softplus`, `Softsign`,
/// `HardSwish`, `Mish`, the trigonometric and hyperbolic functions, and those with
/// attributes: `LeakyRelu`, `Elu`, `Celu`, `Selu`, `HardSigmoid`, `ThresholdedRelu`,
/// `Gelu` (exact or its tanh approximation), `Shrink`.
pub(super) fn import_tabulated(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    let ins = &cx.ins;
    cx.arity(1, 1)?;
    use zkinfer_qir::{Func, Real};
    let a = |name: &str, default: f32| Real(f64::from(attr_f(n, name).unwrap_or(default)));
    let f = match n.op_type.as_str() {
        "Exp" => Func::Exp,
        "Erf" => Func::Erf,
        "Sigmoid" => Func::Sigmoid,
        "Tanh" => Func::Tanh,
        "Sqrt" => Func::Sqrt,
        "Reciprocal" => Func::Reciprocal,
        "Abs" => Func::Abs,
        "Sign" => Func::Sign,
        "Floor" => Func::Floor,
        "Ceil" => Func::Ceil,
        "Round" => Func::Round,
        "Log" => Func::Log,
        "Softplus" => Func::Softplus,
        "Softsign" => Func::Softsign,
        "HardSwish" => Func::HardSwish,
        "Mish" => Func::Mish,
        "Gelu" => Func::Gelu {
            tanh: gelu_tanh(cx)?,
        },
        "Shrink" => Func::Shrink {
            bias: a("bias", 0.0),
            lambd: a("lambd", 0.5),
        },
        "Sin" => Func::Sin,
        "Cos" => Func::Cos,
        "Tan" => Func::Tan,
        "Asin" => Func::Asin,
        "Acos" => Func::Acos,
        "Atan" => Func::Atan,
        "Sinh" => Func::Sinh,
        "Cosh" => Func::Cosh,
        "Asinh" => Func::Asinh,
        "Acosh" => Func::Acosh,
        "Atanh" => Func::Atanh,
        "LeakyRelu" => Func::LeakyRelu {
            alpha: a("alpha", 0.01),
        },
        "Elu" => Func::Elu {
            alpha: a("alpha", 1.0),
        },
        "Celu" => Func::Celu {
            alpha: a("alpha", 1.0),
        },
        "Selu" => Func::Selu {
            alpha: a("alpha", 1.673_263_2),
            gamma: a("gamma", 1.050_701),
        },
        "HardSigmoid" => Func::HardSigmoid {
            alpha: a("alpha", 0.2),
            beta: a("beta", 0.5),
        },
        "ThresholdedRelu" => Func::ThresholdedRelu {
            alpha: a("alpha", 1.0),
        },
        other => return Err(cx.invalid(format!("`{other}` is not a tabulated function"))),
    };
    if let Func::Celu { alpha } = f {
        if alpha.0 == 0.0 {
            return Err(cx.invalid("`alpha` must not be 0".into()));
        }
    }
    Ok((Op::Unary(f), ins.clone(), cx.shape_of(&ins[0])?))
}

/// Whether a `Gelu` takes the tanh approximation (`approximate`: `none` or `tanh`).
fn gelu_tanh(cx: &NodeCx<'_>) -> Result<bool, CompileError> {
    match attr(cx.n, "approximate").map(|a| String::from_utf8_lossy(&a.s).into_owned()) {
        None => Ok(false),
        Some(m) if m == "none" => Ok(false),
        Some(m) if m == "tanh" => Ok(true),
        Some(m) => Err(cx.invalid(format!("approximate `{m}` is not one of none, tanh"))),
    }
}

/// `Pow` with a constant scalar exponent (tabulated), or one per element
/// ([`pow_per_element`]).
pub(super) fn import_pow(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let ins = &cx.ins;
    cx.arity(2, 2)?;
    let exponent = match (cx.constants.get(&ins[1]), cx.int_constants.get(&ins[1])) {
        (Some(t), _) if t.data.len() == 1 => f64::from(t.data[0]),
        (_, Some((_, v))) if v.len() == 1 => v[0] as f64,
        _ => return pow_per_element(cx),
    };
    let f = zkinfer_qir::Func::Pow {
        exponent: zkinfer_qir::Real(exponent),
    };
    Ok((Op::Unary(f), vec![ins[0].clone()], cx.shape_of(&ins[0])?))
}

/// `Pow` with an exponent per element: `x^y = exp(y · ln x)`, a tabulated logarithm, a
/// product and a tabulated exponential, for a positive base (a constant base's logarithm
/// is a constant). A base that calibration sees at or below zero makes the logarithm
/// not finite there, and calibration refuses it, naming `<output>/ln_base`. An integer
/// base is refused: its powers are exact integers, which the tables do not give.
fn pow_per_element(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    use zkinfer_qir::Func;
    let (x, y) = (&cx.ins[0], &cx.ins[1]);
    if cx.is_integer(x) {
        return Err(cx.invalid(format!(
            "an integer base `{x}` with an exponent per element `{y}` (exact integer powers are not tabulated; a constant scalar exponent is)"
        )));
    }
    let (a, b) = (cx.shape_of(x)?, cx.shape_of(y)?);
    let s = broadcast_shape(&a, &b)
        .ok_or_else(|| cx.invalid(format!("shapes {a:?} and {b:?} do not broadcast")))?;
    let ln = match cx.constants.get(x) {
        Some(t) => {
            if let Some(v) = t.data.iter().find(|v| v.is_nan() || **v <= 0.0) {
                return Err(cx.invalid(format!(
                    "the constant base `{x}` holds {v}; with an exponent per element the base must be positive"
                )));
            }
            let data = t.data.iter().map(|v| v.ln()).collect();
            cx.emit_constant("ln_base", Tensor::new(t.shape.clone(), data))
        }
        None => cx.emit("ln_base", Op::Unary(Func::Log), vec![x.clone()], a),
    };
    let power = cx.emit("y_ln_base", Op::Mul, vec![y.clone(), ln], s.clone());
    Ok((Op::Unary(Func::Exp), vec![power], s))
}

/// `Cast`: to a float type it is the identity, to an integer type it rounds toward
/// zero, to bool it tests `≠ 0` (both tabulated). `CastLike` casts to its second input's
/// type (a float, or an integer).
pub(super) fn import_cast(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let ins = &cx.ins;
    use tract_onnx::pb::tensor_proto::DataType;
    let to = if cx.n.op_type == "CastLike" {
        // The type of `target_type`, where the graph gives it; else a float, or an
        // integer (booleans are integers here).
        cx.arity(2, 2)?;
        match cx.elem_types.get(&ins[1]) {
            Some(&t) => i64::from(t),
            None if cx.is_integer(&ins[1]) => DataType::Int64 as i64,
            None => DataType::Float as i64,
        }
    } else {
        cx.arity(1, 1)?;
        attr_i(cx.n, "to").ok_or_else(|| cx.invalid("the `to` attribute is required".into()))?
    };
    let ins = &ins[..1];
    let shape = cx.shape_of(&ins[0])?;
    let Ok(to) = DataType::try_from(to as i32) else {
        return Err(cx.invalid(format!("`to` {to} is not an ONNX data type")));
    };
    use DataType::*;
    let op = match to {
        Float | Double => Op::Identity,
        // Shape arithmetic on integer constants stays integer: it folds.
        Int8 | Int16 | Int32 | Int64 | Uint8 | Uint16 | Uint32 | Uint64
            if cx.int_constants.contains_key(&ins[0]) =>
        {
            Op::Identity
        }
        Int8 | Int16 | Int32 | Int64 | Uint8 | Uint16 | Uint32 | Uint64 => {
            Op::Unary(zkinfer_qir::Func::Trunc)
        }
        Bool => Op::Unary(zkinfer_qir::Func::NonZero),
        other => {
            return Err(cx.invalid(format!(
                "casting to {} is not supported",
                other.as_str_name()
            )))
        }
    };
    Ok((op, vec![ins[0].clone()], shape))
}

/// `Clip`: a tabulated clip between constant bounds; a computed (scalar) bound is a
/// proven `Max` or `Min`.
pub(super) fn import_clip(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    use zkinfer_qir::{Func, Real};
    let n = cx.n;
    // Opset 11+: optional inputs min and max (constants, or computed scalars: then a
    // proven `Max`/`Min`); before: attributes.
    enum Bound {
        Constant(f32),
        Computed(String),
    }
    let bound = |pos: usize, attr_name: &str, default: f32| match n
        .input
        .get(pos)
        .filter(|s| !s.is_empty())
    {
        Some(name) => match cx.constants.get(name) {
            Some(t) if t.data.len() == 1 => Ok(Bound::Constant(t.data[0])),
            Some(_) => Err(cx.invalid(format!("`{name}` must be a scalar"))),
            None if cx.shape_of(name)?.iter().product::<usize>() == 1 => {
                Ok(Bound::Computed(name.clone()))
            }
            None => Err(cx.invalid(format!("`{name}` must be a scalar"))),
        },
        None => Ok(Bound::Constant(attr_f(n, attr_name).unwrap_or(default))),
    };
    let (min, max) = (
        bound(1, "min", f32::NEG_INFINITY)?,
        bound(2, "max", f32::INFINITY)?,
    );
    let x = n.input.first().cloned().unwrap_or_default();
    let shape = cx.shape_of(&x)?;
    let clip = |lo: f32, hi: f32| {
        Op::Unary(Func::Clip {
            min: Real(f64::from(lo)),
            max: Real(f64::from(hi)),
        })
    };
    if let (Bound::Constant(lo), Bound::Constant(hi)) = (&min, &max) {
        return Ok((clip(*lo, *hi), vec![x], shape));
    }
    // `min(max(x, min), max)`, one bound after the other.
    let lower = match min {
        Bound::Constant(lo) if lo == f32::NEG_INFINITY => x,
        Bound::Constant(lo) => cx.emit("lower", clip(lo, f32::INFINITY), vec![x], shape.clone()),
        Bound::Computed(lo) => cx.emit("lower", Op::Max, vec![x, lo], shape.clone()),
    };
    Ok(match max {
        Bound::Constant(hi) if hi == f32::INFINITY => (Op::Identity, vec![lower], shape),
        Bound::Constant(hi) => (clip(f32::NEG_INFINITY, hi), vec![lower], shape),
        Bound::Computed(hi) => (Op::Min, vec![lower, hi], shape),
    })
}

/// `Sum`, `Max`, `Min`, `Mean` (the sum times `1/n`). Constant inputs are combined
/// into one constant at import, which then joins the computed ones' result: added, or
/// as `c + relu(r − c)` (`Max`) and `c − relu(c − r)` (`Min`).
pub(super) fn import_variadic(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    let ins = &cx.ins;
    if ins.is_empty() {
        return Err(cx.invalid("expected at least one input".into()));
    }
    let mut out = cx.shape_of(&ins[0])?;
    for i in &ins[1..] {
        let s = cx.shape_of(i)?;
        out = broadcast_shape(&out, &s)
            .ok_or_else(|| cx.invalid(format!("shapes {out:?} and {s:?} do not broadcast")))?;
    }
    let op = match n.op_type.as_str() {
        "Sum" | "Mean" => Op::Sum,
        "Max" => Op::Max,
        _ => Op::Min,
    };
    let (constant, computed): (Vec<&String>, Vec<&String>) =
        ins.iter().partition(|i| constant_values(cx, i).is_some());
    // Every input constant: the whole node folds at import.
    let joined = if constant.is_empty() || computed.is_empty() {
        None
    } else {
        let mut acc: Option<(Vec<usize>, Vec<f32>)> = None;
        for c in &constant {
            let Some((shape, v)) = constant_values(cx, c) else {
                continue;
            };
            acc = Some(match acc {
                None => (shape, v),
                Some((s, a)) => {
                    let both = broadcast_shape(&s, &shape).ok_or_else(|| {
                        cx.invalid(format!("shapes {s:?} and {shape:?} do not broadcast"))
                    })?;
                    let (ia, ib) = (broadcast_index(&s, &both), broadcast_index(&shape, &both));
                    let f = |x: f32, y: f32| match op {
                        Op::Sum => x + y,
                        Op::Max => x.max(y),
                        _ => x.min(y),
                    };
                    let joined = ia.iter().zip(&ib).map(|(&i, &j)| f(a[i], v[j])).collect();
                    (both, joined)
                }
            });
        }
        acc
    };
    let last = |op: Op, inputs: Vec<String>| -> Result<Lowered, CompileError> {
        if n.op_type != "Mean" {
            return Ok((op, inputs, out.clone()));
        }
        let sum = cx.emit("sum", op, inputs, out.clone());
        let k = cx.emit_constant(
            "inverse_count",
            Tensor::new(vec![], vec![1.0 / ins.len() as f32]),
        );
        Ok((Op::Mul, vec![sum, k], out.clone()))
    };
    let Some((shape, values)) = joined else {
        return last(op, ins.clone());
    };
    let c = cx.emit_constant("constants", Tensor::new(shape, values));
    let computed: Vec<String> = computed.into_iter().cloned().collect();
    let r = match computed.as_slice() {
        [one] => one.clone(),
        _ => cx.emit("computed", op.clone(), computed, out.clone()),
    };
    match op {
        Op::Sum => last(Op::Add, vec![r, c]),
        Op::Max => {
            let d = cx.emit("above", Op::Sub, vec![r, c.clone()], out.clone());
            let p = cx.emit("excess", Op::Relu, vec![d], out.clone());
            last(Op::Add, vec![p, c])
        }
        _ => {
            let d = cx.emit("below", Op::Sub, vec![c.clone(), r], out.clone());
            let p = cx.emit("shortfall", Op::Relu, vec![d], out.clone());
            last(Op::Sub, vec![c, p])
        }
    }
}

/// `Dropout` at inference: the identity (its `ratio` is ignored there, as ONNX says). A
/// `training_mode` that is a constant true, or a read `mask` output, is refused.
pub(super) fn import_dropout(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    let training = n.input.get(2).filter(|t| !t.is_empty());
    if let Some(t) = training {
        let on = match (cx.constants.get(t), cx.int_constants.get(t)) {
            (Some(c), _) => c.data.iter().any(|&v| v != 0.0),
            (None, Some((_, v))) => v.iter().any(|&v| v != 0),
            (None, None) => {
                return Err(cx.invalid(format!(
                    "training_mode `{t}` must be a constant (at inference, false)"
                )))
            }
        };
        if on {
            return Err(cx.invalid(
                "training_mode is true: a random mask cannot be proven as a function of the input"
                    .into(),
            ));
        }
    }
    Ok((
        Op::Identity,
        vec![cx.ins[0].clone()],
        cx.shape_of(&cx.ins[0])?,
    ))
}

/// `MaxPool`.
pub(super) fn import_max_pool(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    let ins = &cx.ins;
    cx.arity(1, 1)?;
    let x = cx.shape_of(&ins[0])?;
    if x.len() == 5 {
        return super::volume::import_pool_3d(cx);
    }
    if attr_i(n, "storage_order").unwrap_or(0) != 0 {
        return Err(cx.invalid("storage_order=1 is not supported".into()));
    }
    let (window, out) = pool_window(n, &x).map_err(|e| cx.invalid(e))?;
    Ok((Op::MaxPool { window }, ins.clone(), out))
}

/// `Relu`, `Identity`.
pub(super) fn import_relu_identity(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    let ins = &cx.ins;
    cx.arity(1, 1)?;
    let op = if n.op_type == "Relu" {
        Op::Relu
    } else {
        Op::Identity
    };
    Ok((op, ins.clone(), cx.shape_of(&ins[0])?))
}

/// `PRelu(x, slope)` = `Relu(x) − slope · Relu(−x)` (slope broadcast to x).
pub(super) fn import_prelu(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    cx.arity(2, 2)?;
    let (x, slope) = (&cx.ins[0], &cx.ins[1]);
    let (xs, ss) = (cx.shape_of(x)?, cx.shape_of(slope)?);
    let out = broadcast_shape(&xs, &ss)
        .filter(|o| *o == xs)
        .ok_or_else(|| cx.invalid(format!("slope {ss:?} does not broadcast to x {xs:?}")))?;
    let pos = cx.emit("positive", Op::Relu, vec![x.clone()], out.clone());
    let neg_x = cx.emit("neg", Op::Neg, vec![x.clone()], out.clone());
    let neg = cx.emit("negative", Op::Relu, vec![neg_x], out.clone());
    let sloped = cx.emit("sloped", Op::Mul, vec![neg, slope.clone()], out.clone());
    Ok((Op::Sub, vec![pos, sloped], out))
}
