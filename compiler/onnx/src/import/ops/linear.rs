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
    if x.len() == 5 {
        return super::volume::import_conv_3d(cx);
    }
    let w = constants
        .get(&ins[1])
        .ok_or_else(|| {
            cx.invalid(format!(
                "the weights `{}` must be a constant (initializer)",
                cx.ins[1]
            ))
        })?
        .shape
        .clone();
    if !matches!((x.len(), w.len()), (4, 4) | (3, 3)) {
        return Err(cx.invalid(format!(
            "only 1-D (NCL), 2-D (NCHW) and 3-D (NCDHW) convolution is supported; X is {x:?}, W is {w:?}"
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
    if x.len() == 5 {
        return super::volume::import_pool_3d(cx);
    }
    let (window, out) = pool_window(n, &x).map_err(|e| cx.invalid(e))?;
    let count_include_pad = attr_i(n, "count_include_pad").unwrap_or(0) != 0;
    // Counted padding is every tap the window holds, the end `ceil_mode` adds included
    // (as ONNX's reference and onnxruntime count it).
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
    // Padding not counted: the mean over the whole window (padding as 0), times window
    // size / the taps inside the input, a constant per output position.
    let [_, _, h, w] = crate::graph::nchw(&x);
    let [_, _, oh, ow] = crate::graph::nchw(&out);
    let inside = |axis: usize, o: usize, len: usize| {
        let (k, s, d) = (
            window.kernel[axis],
            window.strides[axis],
            window.dilations[axis],
        );
        // Positions in the padded frame: the input starts at `pads[axis]`.
        let (lo, hi) = (window.pads[axis], window.pads[axis] + len);
        (0..k)
            .filter(|j| (lo..hi).contains(&(o * s + j * d)))
            .count()
    };
    let size = (window.kernel[0] * window.kernel[1]) as f32;
    let factors: Vec<f32> = (0..oh * ow)
        .map(|p| size / (inside(0, p / ow, h) * inside(1, p % ow, w)).max(1) as f32)
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

/// `ConvTranspose` (1-D and 2-D, any group): a convolution of the input spread out by
/// the strides (zeros between its elements) and padded by `dilation·(k − 1) − pad` on
/// each side (cropped where that is negative) — an element map, no rows — with the
/// kernel flipped and its channel axes swapped, stride 1.
pub(super) fn import_conv_transpose(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    cx.arity(2, 3)?;
    let x = cx.shape_of(&cx.ins[0])?;
    let w = cx.constants.get(&cx.ins[1]).ok_or_else(|| {
        cx.invalid(format!(
            "the weights `{}` must be a constant (initializer)",
            cx.ins[1]
        ))
    })?;
    if !matches!((x.len(), w.shape.len()), (4, 4) | (3, 3)) {
        return Err(cx.invalid(format!(
            "only 1-D (NCL) and 2-D (NCHW) transposed convolution is supported; X is {x:?}, W is {:?}",
            w.shape
        )));
    }
    let one_d = x.len() == 3;
    let group = usize::try_from(attr_i(n, "group").unwrap_or(1)).unwrap_or(0);
    if group == 0 || x[1] % group != 0 || w.shape[0] != x[1] {
        return Err(cx.invalid(format!(
            "W {:?} must have X's {} input channels first, in {group} groups",
            w.shape, x[1]
        )));
    }
    let (cin_g, cout_g) = (x[1] / group, w.shape[1]);
    let cout = cout_g * group;
    let kernel = [
        if one_d { 1 } else { w.shape[2] },
        w.shape[w.shape.len() - 1],
    ];
    // One value per spatial axis (a 1-D convolution's height is a neutral axis of 1).
    let per_axis = |name: &str, default: i64, neutral: i64| -> Result<[i64; 2], CompileError> {
        match attr_ints(n, name) {
            None => Ok([if one_d { neutral } else { default }, default]),
            Some(&[a, b]) if !one_d => Ok([a, b]),
            Some(&[b]) if one_d => Ok([neutral, b]),
            Some(v) => Err(cx.invalid(format!(
                "{name} {v:?} must hold {} values",
                if one_d { "one" } else { "two" }
            ))),
        }
    };
    let strides = per_axis("strides", 1, 1)?;
    let dilations = per_axis("dilations", 1, 1)?;
    let out_pad = per_axis("output_padding", 0, 0)?;
    if strides.iter().chain(&dilations).any(|&v| v < 1) || out_pad.iter().any(|&v| v < 0) {
        return Err(cx.invalid(
            "strides and dilations must be positive, output_padding non-negative".into(),
        ));
    }
    if let Some(k) = attr_ints(n, "kernel_shape") {
        let want = &w.shape[2..];
        if k.iter().map(|&v| v as usize).ne(want.iter().copied()) {
            return Err(cx.invalid(format!("kernel_shape {k:?} differs from W's {want:?}")));
        }
    }
    let spatial = [if one_d { 1 } else { x[2] }, x[x.len() - 1]];
    // Where the pads come from: given, or from output_shape / auto_pad (the spec's
    // total padding, split as it says).
    let auto_pad = attr(n, "auto_pad").map(|a| String::from_utf8_lossy(&a.s).into_owned());
    let auto_pad = auto_pad.as_deref().unwrap_or("NOTSET");
    let full = |a: usize| {
        strides[a] * (spatial[a] as i64 - 1)
            + out_pad[a]
            + (kernel[a] as i64 - 1) * dilations[a]
            + 1
    };
    let target: Option<[i64; 2]> = match (attr_ints(n, "output_shape"), auto_pad) {
        (Some(s), _) => Some(match (one_d, s.len()) {
            (true, 1) => [1, s[0]],
            (false, 2) => [s[0], s[1]],
            (_, l) if l == x.len() => [if one_d { 1 } else { s[2] }, s[l - 1]],
            _ => return Err(cx.invalid(format!("output_shape {s:?} does not fit X {x:?}"))),
        }),
        (None, "SAME_UPPER" | "SAME_LOWER") => Some([0, 1].map(|a| spatial[a] as i64 * strides[a])),
        (None, "NOTSET" | "" | "VALID") => None,
        (None, other) => return Err(cx.invalid(format!("auto_pad `{other}` is not an ONNX mode"))),
    };
    let (begin, end): ([i64; 2], [i64; 2]) = match target {
        Some(t) => {
            let total = [0, 1].map(|a| full(a) - t[a]);
            let half = total.map(|v| v.div_euclid(2));
            if auto_pad == "SAME_UPPER" {
                (half, [0, 1].map(|a| total[a] - half[a]))
            } else {
                ([0, 1].map(|a| total[a] - half[a]), half)
            }
        }
        None => match attr_ints(n, "pads") {
            None => ([0; 2], [0; 2]),
            Some(&[t, l, b, r]) if !one_d => ([t, l], [b, r]),
            Some(&[l, r]) if one_d => ([0, l], [0, r]),
            Some(p) => return Err(cx.invalid(format!("pads {p:?} do not fit X {x:?}"))),
        },
    };
    // The spread input: position p of axis a holds x[(p − left)/s] where that is a
    // multiple of s inside the input, else 0.
    let mut len = [0usize; 2];
    let mut left = [0i64; 2];
    for a in 0..2 {
        let reach = dilations[a] * (kernel[a] as i64 - 1);
        left[a] = reach - begin[a];
        let l = (spatial[a] as i64 - 1) * strides[a] + 1 + left[a] + reach - end[a] + out_pad[a];
        if l < reach + 1 {
            return Err(cx.invalid(format!(
                "the pads {begin:?}/{end:?} leave no output along spatial axis {a}"
            )));
        }
        len[a] = l as usize;
    }
    let source = |a: usize, p: usize| -> Option<usize> {
        let q = p as i64 - left[a];
        (q >= 0 && q % strides[a] == 0 && q / strides[a] < spatial[a] as i64)
            .then(|| (q / strides[a]) as usize)
    };
    let mut index = Vec::with_capacity(x[0] * x[1] * len[0] * len[1]);
    for plane in 0..x[0] * x[1] {
        for i in 0..len[0] {
            for j in 0..len[1] {
                index.push(
                    source(0, i)
                        .zip(source(1, j))
                        .map(|(si, sj)| (plane * spatial[0] + si) * spatial[1] + sj),
                );
            }
        }
    }
    let spread_shape: Vec<usize> = if one_d {
        vec![x[0], x[1], len[1]]
    } else {
        vec![x[0], x[1], len[0], len[1]]
    };
    let spread = cx.emit(
        "spread",
        Op::Select { index },
        vec![cx.ins[0].clone()],
        spread_shape.clone(),
    );
    // W [Cin, Cout/g, kh, kw] → W' [Cout, Cin/g, kh, kw], flipped.
    let (kh, kw) = (kernel[0], kernel[1]);
    let mut flipped = vec![0.0; w.data.len()];
    for g in 0..group {
        for co in 0..cout_g {
            for ci in 0..cin_g {
                for a in 0..kh {
                    for b in 0..kw {
                        let src = (((g * cin_g + ci) * cout_g + co) * kh + a) * kw + b;
                        let dst = (((g * cout_g + co) * cin_g + ci) * kh + (kh - 1 - a)) * kw
                            + (kw - 1 - b);
                        flipped[dst] = w.data[src];
                    }
                }
            }
        }
    }
    let w_shape: Vec<usize> = [cout, cin_g]
        .into_iter()
        .chain(w.shape[2..].iter().copied())
        .collect();
    let weights = cx.emit_constant("flipped", Tensor::new(w_shape, flipped));
    if let Some(b) = cx.ins.get(2) {
        if cx.constants.get(b).map(|t| t.shape.clone()) != Some(vec![cout]) {
            return Err(cx.invalid(format!("B must be a constant of shape [{cout}]")));
        }
    }
    let window = Window {
        kernel,
        strides: [1, 1],
        dilations: dilations.map(|d| d as usize),
        pads: [0; 4],
    };
    let out = window_output(&window, &spread_shape, cout).map_err(|e| cx.invalid(e))?;
    let mut inputs = vec![spread, weights];
    inputs.extend(cx.ins.get(2).cloned());
    Ok((Op::Conv { window, group }, inputs, out))
}
