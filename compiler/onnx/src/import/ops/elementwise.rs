//! Element-wise ops: arithmetic, tabulated functions, Clip, LeakyRelu, Sum/Max/Min,
//! Relu, Identity, MaxPool.

use super::super::*;
use super::{Lowered, NodeCx};

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
    Ok((op, ins.clone(), s))
}

/// `Neg`.
pub(super) fn import_neg(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let ins = &cx.ins;
    cx.arity(1, 1)?;
    Ok((Op::Neg, ins.clone(), cx.shape_of(&ins[0])?))
}

/// `Exp`, `Erf`, `Sigmoid`, `Tanh`, `Sqrt`, `Reciprocal`.
pub(super) fn import_tabulated(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    let ins = &cx.ins;
    cx.arity(1, 1)?;
    use zkinfer_qir::Func;
    let f = match n.op_type.as_str() {
        "Exp" => Func::Exp,
        "Erf" => Func::Erf,
        "Sigmoid" => Func::Sigmoid,
        "Tanh" => Func::Tanh,
        "Sqrt" => Func::Sqrt,
        _ => Func::Reciprocal,
    };
    Ok((Op::Unary(f), ins.clone(), cx.shape_of(&ins[0])?))
}

/// `Clip`.
pub(super) fn import_clip(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    let constants = cx.constants;
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
            .ok_or_else(|| cx.invalid(format!("`{name}` must be a constant scalar"))),
        None => Ok(attr_f(n, attr_name).unwrap_or(default)),
    };
    let min = bound(1, "min", f32::NEG_INFINITY)?;
    let max = bound(2, "max", f32::INFINITY)?;
    let x = n.input.first().cloned().unwrap_or_default();
    let f = zkinfer_qir::Func::Clip {
        min: zkinfer_qir::Real(min as f64),
        max: zkinfer_qir::Real(max as f64),
    };
    Ok((Op::Unary(f), vec![x.clone()], cx.shape_of(&x)?))
}

/// `LeakyRelu`.
pub(super) fn import_leaky_relu(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    let ins = &cx.ins;
    cx.arity(1, 1)?;
    let alpha = attr_f(n, "alpha").unwrap_or(0.01);
    let f = zkinfer_qir::Func::LeakyRelu {
        alpha: zkinfer_qir::Real(alpha as f64),
    };
    Ok((Op::Unary(f), ins.clone(), cx.shape_of(&ins[0])?))
}

/// `Sum`, `Max`, `Min`.
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
        "Sum" => Op::Sum,
        "Max" => Op::Max,
        _ => Op::Min,
    };
    Ok((op, ins.clone(), out))
}

/// `MaxPool`.
pub(super) fn import_max_pool(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    let ins = &cx.ins;
    cx.arity(1, 1)?;
    let x = cx.shape_of(&ins[0])?;
    if attr_i(n, "storage_order").unwrap_or(0) != 0 {
        return Err(cx.invalid("storage_order=1 is not supported".into()));
    }
    let (window, oh, ow) = pool_window(n, &x).map_err(|e| cx.invalid(e))?;
    Ok((
        Op::MaxPool { window },
        ins.clone(),
        vec![x[0], x[1], oh, ow],
    ))
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
