//! Convolution and pooling over three spatial axes (`[N, C, D, H, W]`), lowered at import
//! to what is already proven: the windows' elements gathered side by side (an element map,
//! no rows), then a `MatMul` by the constant weights (convolution), a proven `Max` of the
//! lanes (max pooling), or a sum times a constant per position (average pooling). One and
//! two spatial axes keep their own lowering.

use super::super::*;
use super::{Lowered, NodeCx};

/// The geometry of a window over the spatial axes of `x`.
struct Volume {
    kernel: Vec<usize>,
    strides: Vec<usize>,
    dilations: Vec<usize>,
    /// Padding before each spatial axis.
    begin: Vec<usize>,
    /// The spatial input and output sizes.
    input: Vec<usize>,
    out: Vec<usize>,
}

fn flat_of(c: &[usize], dims: &[usize]) -> usize {
    c.iter().zip(dims).fold(0, |f, (&c, &d)| f * d + c)
}

fn coords_of(mut f: usize, dims: &[usize]) -> Vec<usize> {
    let mut c = vec![0; dims.len()];
    for d in (0..dims.len()).rev() {
        c[d] = f % dims[d];
        f /= dims[d];
    }
    c
}

impl Volume {
    fn new(n: &pb::NodeProto, x: &[usize], kernel: Vec<usize>) -> Result<Self, String> {
        let nd = x.len() - 2;
        let input = x[2..].to_vec();
        let list = |name: &str| -> Result<Vec<usize>, String> {
            match attr_ints(n, name) {
                None => Ok(vec![1; nd]),
                Some(v) if v.len() == nd && v.iter().all(|&a| a >= 1) => {
                    Ok(v.iter().map(|&a| a as usize).collect())
                }
                Some(v) => Err(format!("{name} {v:?} must be {nd} positive integers")),
            }
        };
        let (strides, dilations) = (list("strides")?, list("dilations")?);
        let auto_pad = attr(n, "auto_pad").map(|a| String::from_utf8_lossy(&a.s).into_owned());
        let (begin, end): (Vec<usize>, Vec<usize>) = match auto_pad.as_deref().unwrap_or("NOTSET") {
            "NOTSET" | "" => match attr_ints(n, "pads") {
                None => (vec![0; nd], vec![0; nd]),
                Some(p) if p.len() == 2 * nd && p.iter().all(|&v| v >= 0) => (
                    p[..nd].iter().map(|&v| v as usize).collect(),
                    p[nd..].iter().map(|&v| v as usize).collect(),
                ),
                Some(p) => {
                    return Err(format!(
                        "pads {p:?} must be {} non-negative integers",
                        2 * nd
                    ))
                }
            },
            "VALID" => (vec![0; nd], vec![0; nd]),
            mode @ ("SAME_UPPER" | "SAME_LOWER") => (0..nd)
                .map(|a| {
                    let (len, s, d, k) = (input[a], strides[a], dilations[a], kernel[a]);
                    let total = ((len.div_ceil(s) - 1) * s + d * (k - 1) + 1).saturating_sub(len);
                    let (small, big) = (total / 2, total - total / 2);
                    if mode == "SAME_UPPER" {
                        (small, big)
                    } else {
                        (big, small)
                    }
                })
                .unzip(),
            other => return Err(format!("auto_pad `{other}` is not supported")),
        };
        let ceil = attr_i(n, "ceil_mode").unwrap_or(0) != 0;
        let mut out = Vec::with_capacity(nd);
        for a in 0..nd {
            let span = dilations[a] * (kernel[a] - 1) + 1;
            let room = (input[a] + begin[a] + end[a])
                .checked_sub(span)
                .ok_or_else(|| format!("the window does not fit the input {x:?}"))?;
            let mut o = room / strides[a] + 1;
            if ceil {
                o = room.div_ceil(strides[a]) + 1;
                // The last window must start inside the input or its leading padding.
                if (o - 1) * strides[a] >= input[a] + begin[a] {
                    o -= 1;
                }
            }
            out.push(o);
        }
        Ok(Volume {
            kernel,
            strides,
            dilations,
            begin,
            input,
            out,
        })
    }

    /// For each output position and kernel offset (both flat), the flat spatial input
    /// position, or `None` in the padding.
    fn taps(&self) -> Vec<Vec<Option<usize>>> {
        let positions: usize = self.out.iter().product();
        let offsets: usize = self.kernel.iter().product();
        (0..positions)
            .map(|p| {
                let o = coords_of(p, &self.out);
                (0..offsets)
                    .map(|k| {
                        let kc = coords_of(k, &self.kernel);
                        let c: Option<Vec<usize>> = (0..o.len())
                            .map(|a| {
                                (o[a] * self.strides[a] + kc[a] * self.dilations[a])
                                    .checked_sub(self.begin[a])
                                    .filter(|&i| i < self.input[a])
                            })
                            .collect();
                        c.map(|c| flat_of(&c, &self.input))
                    })
                    .collect()
            })
            .collect()
    }

    /// The taps of output position `p` an average counts: inside the input, or with
    /// `padding` all of them (the end `ceil_mode` adds included, as ONNX's reference and
    /// onnxruntime count it).
    fn counted(&self, p: usize, padding: bool) -> usize {
        if padding {
            return self.kernel.iter().product();
        }
        let o = coords_of(p, &self.out);
        (0..o.len())
            .map(|a| {
                let (lo, hi) = (self.begin[a], self.begin[a] + self.input[a]);
                (0..self.kernel[a])
                    .filter(|&j| {
                        (lo..hi).contains(&(o[a] * self.strides[a] + j * self.dilations[a]))
                    })
                    .count()
            })
            .product()
    }
}

/// `Conv` over three spatial axes (`group` 1): the windows gathered as
/// `[N · positions, C · kernel]`, times the weights as `[C · kernel, M]`, plus the bias,
/// back to `[N, M, D', H', W']`.
pub(super) fn import_conv_3d(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let x = cx.shape_of(&cx.ins[0])?;
    let w = cx
        .constants
        .get(&cx.ins[1])
        .ok_or_else(|| cx.invalid(format!("the weights `{}` must be a constant", cx.ins[1])))?;
    let (m, c) = (w.shape[0], x[1]);
    if attr_i(cx.n, "group").unwrap_or(1) != 1 || w.shape.len() != 5 || w.shape[1] != c {
        return Err(cx.invalid(format!(
            "a 3-D convolution needs W [M, {c}, kD, kH, kW] and group 1; W is {:?}",
            w.shape
        )));
    }
    let v = Volume::new(cx.n, &x, w.shape[2..].to_vec()).map_err(|e| cx.invalid(e))?;
    let (taps, k) = (v.taps(), v.kernel.iter().product::<usize>());
    let (batch, positions, spatial) = (x[0], taps.len(), v.input.iter().product::<usize>());
    let features = c * k;
    let mut index = Vec::with_capacity(batch * positions * features);
    for b in 0..batch {
        for t in &taps {
            for ch in 0..c {
                index.extend(t.iter().map(|s| s.map(|s| (b * c + ch) * spatial + s)));
            }
        }
    }
    let cols = cx.emit(
        "columns",
        Op::Select { index },
        vec![cx.ins[0].clone()],
        vec![batch * positions, features],
    );
    // W [M, C·k] as [C·k, M].
    let wt: Vec<f32> = (0..features * m)
        .map(|f| w.data[(f % m) * features + f / m])
        .collect();
    let wt = cx.emit_constant("weights", Tensor::new(vec![features, m], wt));
    let mut y = cx.emit(
        "product",
        Op::MatMul,
        vec![cols, wt],
        vec![batch * positions, m],
    );
    if let Some(b) = cx.ins.get(2) {
        if cx.constants.get(b).map(|t| t.shape.clone()) != Some(vec![m]) {
            return Err(cx.invalid(format!("B must be a constant of shape [{m}]")));
        }
        y = cx.emit(
            "biased",
            Op::Add,
            vec![y, b.clone()],
            vec![batch * positions, m],
        );
    }
    let rows = cx.emit("rows", Op::Reshape, vec![y], vec![batch, positions, m]);
    let t = cx.emit(
        "channels_first",
        Op::Transpose {
            perm: vec![0, 2, 1],
        },
        vec![rows],
        vec![batch, m, positions],
    );
    let out: Vec<usize> = [batch, m]
        .into_iter()
        .chain(v.out.iter().copied())
        .collect();
    Ok((Op::Reshape, vec![t], out))
}

/// `MaxPool` and `AveragePool` over three spatial axes: one lane of the input per kernel
/// offset, then a proven `Max` (padding never a candidate: a window's first tap stands in
/// for it), or the lanes' sum times `1 / taps counted` per position.
pub(super) fn import_pool_3d(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    cx.arity(1, 1)?;
    let x = cx.shape_of(&cx.ins[0])?;
    let kernel: Vec<usize> = attr_ints(cx.n, "kernel_shape")
        .filter(|k| k.len() == x.len() - 2 && k.iter().all(|&v| v >= 1))
        .ok_or_else(|| {
            cx.invalid("kernel_shape must hold one positive size per spatial axis".into())
        })?
        .iter()
        .map(|&v| v as usize)
        .collect();
    if cx.n.op_type == "MaxPool" && attr_i(cx.n, "storage_order").unwrap_or(0) != 0 {
        return Err(cx.invalid("storage_order=1 is not supported".into()));
    }
    let v = Volume::new(cx.n, &x, kernel).map_err(|e| cx.invalid(e))?;
    let taps = v.taps();
    let (planes, spatial) = (x[0] * x[1], v.input.iter().product::<usize>());
    let out: Vec<usize> = x[..2]
        .iter()
        .copied()
        .chain(v.out.iter().copied())
        .collect();
    let max = cx.n.op_type == "MaxPool";
    let lanes: Vec<String> = (0..v.kernel.iter().product::<usize>())
        .map(|k| {
            let index = (0..planes)
                .flat_map(|pl| {
                    taps.iter().map(move |t| {
                        let tap = if max {
                            t[k].or_else(|| t.iter().flatten().next().copied())
                        } else {
                            t[k]
                        };
                        tap.map(|s| pl * spatial + s)
                    })
                })
                .collect();
            cx.emit(
                &format!("lane{k}"),
                Op::Select { index },
                vec![cx.ins[0].clone()],
                out.clone(),
            )
        })
        .collect();
    if max {
        return Ok((Op::Max, lanes, out));
    }
    let padding = attr_i(cx.n, "count_include_pad").unwrap_or(0) != 0;
    let factors: Vec<f32> = (0..taps.len())
        .map(|p| 1.0 / v.counted(p, padding).max(1) as f32)
        .collect();
    let fshape: Vec<usize> = [1, 1].into_iter().chain(v.out.iter().copied()).collect();
    let sum = cx.emit("sum", Op::Sum, lanes, out.clone());
    let f = cx.emit_constant("inverse_taps", Tensor::new(fshape, factors));
    Ok((Op::Mul, vec![sum, f], out))
}
