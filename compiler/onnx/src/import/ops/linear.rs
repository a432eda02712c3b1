//! Linear ops: Gemm, Conv, pooling by averaging, MatMul.

use super::super::*;
use super::{Lowered, NodeCx};

/// `Gemm`.
pub(super) fn import_gemm(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    let ins = &cx.ins;
    cx.arity(2, 3)?;
    let gemm = Gemm {
        alpha: attr_f(n, "alpha").unwrap_or(1.0),
        beta: attr_f(n, "beta").unwrap_or(1.0),
        trans_a: attr_i(n, "transA").unwrap_or(0) != 0,
        trans_b: attr_i(n, "transB").unwrap_or(0) != 0,
    };
    let (a, b) = (cx.shape_of(&ins[0])?, cx.shape_of(&ins[1])?);
    if a.len() != 2 || b.len() != 2 {
        return Err(cx.invalid(format!("A and B must be 2-D, got {a:?} and {b:?}")));
    }
    let (m, ka) = if gemm.trans_a {
        (a[1], a[0])
    } else {
        (a[0], a[1])
    };
    let (kb, nn) = if gemm.trans_b {
        (b[1], b[0])
    } else {
        (b[0], b[1])
    };
    if ka != kb {
        return Err(cx.invalid(format!(
            "inner dimensions differ: A' is {m}x{ka}, B' is {kb}x{nn} (transA={}, transB={})",
            gemm.trans_a as u8, gemm.trans_b as u8
        )));
    }
    if let Some(c) = ins.get(2) {
        let cs = cx.shape_of(c)?;
        if broadcast_shape(&cs, &[m, nn]).as_deref() != Some(&[m, nn][..]) {
            return Err(cx.invalid(format!(
                "C of shape {cs:?} does not broadcast to [{m}, {nn}]"
            )));
        }
    }
    let computed = |s: &String| !cx.constants.contains_key(s) && !cx.int_constants.contains_key(s);
    let both = computed(&ins[0]) && computed(&ins[1]);
    if !both && !ins.get(2).is_some_and(computed) {
        return Ok((Op::Gemm(gemm), ins.clone(), vec![m, nn]));
    }
    // Two computed operands, or a computed C: lowered to a product (a MatMul of the
    // operands, transposed as asked, times alpha; or the Gemm without C) and an
    // addition of beta · C.
    let scaled = |x: String, by: f32, tag: &str, shape: Vec<usize>| {
        if by == 1.0 {
            return x;
        }
        if let Some(t) = cx.constants.get(&x) {
            let data = t.data.iter().map(|v| v * by).collect();
            return cx.emit_constant(tag, Tensor::new(t.shape.clone(), data));
        }
        let k = cx.emit_constant(&format!("{tag}_factor"), Tensor::new(vec![], vec![by]));
        cx.emit(tag, Op::Mul, vec![x, k], shape)
    };
    let transposed = |x: &String, shape: &[usize], yes: bool, tag: &str| {
        if yes {
            let t = vec![shape[1], shape[0]];
            cx.emit(tag, Op::Transpose { perm: vec![1, 0] }, vec![x.clone()], t)
        } else {
            x.clone()
        }
    };
    let (op, operands) = if both {
        let a2 = transposed(&ins[0], &a, gemm.trans_a, "a_t");
        let b2 = transposed(&ins[1], &b, gemm.trans_b, "b_t");
        if gemm.alpha != 1.0 {
            let ab = cx.emit("matmul", Op::MatMul, vec![a2, b2], vec![m, nn]);
            let k = cx.emit_constant("alpha", Tensor::new(vec![], vec![gemm.alpha]));
            (Op::Mul, vec![ab, k])
        } else {
            (Op::MatMul, vec![a2, b2])
        }
    } else {
        (Op::Gemm(gemm.clone()), ins[..2].to_vec())
    };
    match ins.get(2) {
        None => Ok((op, operands, vec![m, nn])),
        Some(c) => {
            let ab = cx.emit("ab", op, operands, vec![m, nn]);
            let c = scaled(c.clone(), gemm.beta, "beta_c", cx.shape_of(c)?);
            Ok((Op::Add, vec![ab, c], vec![m, nn]))
        }
    }
}

/// `Conv`.
pub(super) fn import_conv(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    let ins = &cx.ins;
    let constants = cx.constants;
    cx.arity(2, 3)?;
    let x = cx.shape_of(&ins[0])?;
    let w = constants
        .get(&ins[1])
        .ok_or_else(|| cx.invalid("the weights W must be a constant (initializer)".into()))?
        .shape
        .clone();
    if !matches!((x.len(), w.len()), (4, 4) | (3, 3)) {
        return Err(cx.invalid(format!(
            "only 1-D (NCL) and 2-D (NCHW) convolution is supported; X is {x:?}, W is {w:?}"
        )));
    }
    // W [Cout, Cin/group, K] of a 1-D convolution has the layout of [Cout, Cin/group, 1, K].
    let kernel = [w.get(3).map_or(1, |_| w[2]), *w.last().unwrap_or(&1)];
    let group = attr_i(n, "group").unwrap_or(1);
    if group < 1 || x[1] % group as usize != 0 || w[0] % group as usize != 0 {
        return Err(cx.invalid(format!(
            "group {group} does not divide channels {} and {}",
            x[1], w[0]
        )));
    }
    let group = group as usize;
    if w[1] * group != x[1] {
        return Err(cx.invalid(format!(
            "W expects {} input channels, X has {}",
            w[1] * group,
            x[1]
        )));
    }
    if let Some(k) = attr_ints(n, "kernel_shape") {
        if k.iter().map(|&v| v as usize).ne(w[2..].iter().copied()) {
            return Err(cx.invalid(format!("kernel_shape {k:?} differs from W's {:?}", &w[2..])));
        }
    }
    if let Some(b) = ins.get(2) {
        let bs = constants.get(b).map(|t| t.shape.clone());
        if bs != Some(vec![w[0]]) {
            return Err(cx.invalid(format!("B must be a constant of shape [{}]", w[0])));
        }
    }
    let window = window(n, &x, kernel).map_err(|e| cx.invalid(e))?;
    let out = window_output(&window, &x, w[0]).map_err(|e| cx.invalid(e))?;
    Ok((Op::Conv { window, group }, ins.clone(), out))
}

/// `AveragePool`.
pub(super) fn import_average_pool(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    let ins = &cx.ins;
    cx.arity(1, 1)?;
    let x = cx.shape_of(&ins[0])?;
    let (window, out) = pool_window(n, &x).map_err(|e| cx.invalid(e))?;
    let count_include_pad = attr_i(n, "count_include_pad").unwrap_or(0) != 0;
    if count_include_pad || window.pads.iter().all(|&p| p == 0) {
        return Ok((
            Op::AveragePool {
                window,
                count_include_pad,
            },
            ins.clone(),
            out,
        ));
    }
    // Padding not counted: the mean over the whole window (padding as 0), times
    // window size / taps inside the input, a constant per output position.
    let [_, _, h, w] = crate::graph::nchw(&x);
    let [_, _, oh, ow] = crate::graph::nchw(&out);
    let size = (window.kernel[0] * window.kernel[1]) as f32;
    let factors: Vec<f32> = window
        .taps(h, w, oh, ow)
        .iter()
        .map(|p| size / p.iter().flatten().count().max(1) as f32)
        .collect();
    let mut fshape = vec![1; out.len()];
    fshape[out.len() - 1] = ow;
    if out.len() == 4 {
        fshape[2] = oh;
    }
    let whole = cx.emit(
        "whole",
        Op::AveragePool {
            window,
            count_include_pad: true,
        },
        ins.clone(),
        out.clone(),
    );
    let f = cx.emit_constant("inside", Tensor::new(fshape, factors));
    Ok((Op::Mul, vec![whole, f], out))
}

/// `GlobalAveragePool`.
pub(super) fn import_global_average_pool(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let ins = &cx.ins;
    cx.arity(1, 1)?;
    let x = cx.shape_of(&ins[0])?;
    let out = match x.len() {
        3 => vec![x[0], x[1], 1],
        4 => vec![x[0], x[1], 1, 1],
        _ => return Err(cx.invalid(format!("only NCL and NCHW input is supported; X is {x:?}"))),
    };
    Ok((Op::GlobalAveragePool, ins.clone(), out))
}

/// `MatMul`.
pub(super) fn import_matmul(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let ins = &cx.ins;
    cx.arity(2, 2)?;
    let (a, b) = (cx.shape_of(&ins[0])?, cx.shape_of(&ins[1])?);
    let (a2, b2, mut batch) = matmul_dims(&a, &b)
        .ok_or_else(|| cx.invalid(format!("shapes {a:?} and {b:?} cannot be multiplied")))?;
    if a.len() > 1 {
        batch.push(a2[a2.len() - 2]);
    }
    if b.len() > 1 {
        batch.push(b2[b2.len() - 1]);
    }
    Ok((Op::MatMul, ins.clone(), batch))
}
