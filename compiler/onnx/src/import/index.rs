//! Index arithmetic of the shape ops: which source element each output element copies
//! (Slice, Gather, Pad, Concat, reductions, reshapes, pooling windows).

use super::*;

pub(super) fn strides_of(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// The element map of an output of shape `out` whose coordinate on each axis maps to
/// an input coordinate (or to padding) through `axis_map`.
pub(super) fn map_coords(
    x: &[usize],
    out: &[usize],
    axis_map: impl Fn(usize, usize) -> Option<usize>,
) -> Vec<Option<usize>> {
    let (xs, os) = (strides_of(x), strides_of(out));
    let n: usize = out.iter().product();
    (0..n)
        .map(|flat| {
            let mut src = 0;
            for axis in 0..out.len() {
                src += axis_map(axis, (flat / os[axis]) % out[axis])? * xs[axis];
            }
            Some(src)
        })
        .collect()
}

/// ONNX Slice: negative indices count from the end, bounds are clamped, steps may be negative.
pub(super) fn slice_index(
    x: &[usize],
    starts: &[i64],
    ends: &[i64],
    axes: &[i64],
    steps: &[i64],
) -> Result<(Vec<Option<usize>>, Vec<usize>), String> {
    if starts.len() != ends.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err("starts, ends, axes and steps must have the same length".into());
    }
    let rank = x.len();
    let mut first = vec![0i64; rank];
    let mut step = vec![1i64; rank];
    let mut out = x.to_vec();
    for k in 0..starts.len() {
        let axis = normalize_axis(axes[k], rank)
            .ok_or_else(|| format!("axis {} out of range", axes[k]))?;
        let (dim, st) = (x[axis] as i64, steps[k]);
        if st == 0 {
            return Err("a step of 0".into());
        }
        let fix = |v: i64| if v < 0 { v + dim } else { v };
        let (s, e) = if st > 0 {
            (fix(starts[k]).clamp(0, dim), fix(ends[k]).clamp(0, dim))
        } else {
            (
                fix(starts[k]).clamp(0, dim - 1),
                fix(ends[k]).clamp(-1, dim - 1),
            )
        };
        let len = if st > 0 {
            (e - s + st - 1).max(0) / st
        } else {
            (s - e - st - 1).max(0) / -st
        };
        first[axis] = s;
        step[axis] = st;
        out[axis] = len as usize;
    }
    let index = map_coords(x, &out, |axis, c| {
        Some((first[axis] + c as i64 * step[axis]) as usize)
    });
    Ok((index, out))
}

/// ONNX Gather with constant indices along `axis`.
pub(super) fn gather_index(
    x: &[usize],
    axis: usize,
    ishape: &[usize],
    idx: &[i64],
) -> Result<(Vec<Option<usize>>, Vec<usize>), String> {
    let dim = x[axis] as i64;
    let idx: Vec<usize> = idx
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + dim } else { i };
            (0..dim)
                .contains(&j)
                .then_some(j as usize)
                .ok_or(format!("index {i} out of range for dimension {dim}"))
        })
        .collect::<Result<_, _>>()?;
    let mut out: Vec<usize> = x[..axis].to_vec();
    out.extend_from_slice(ishape);
    out.extend_from_slice(&x[axis + 1..]);
    let (outer, inner) = (
        x[..axis].iter().product::<usize>(),
        x[axis + 1..].iter().product::<usize>(),
    );
    let mut index = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &j in &idx {
            for i in 0..inner {
                index.push(Some((o * x[axis] + j) * inner + i));
            }
        }
    }
    Ok((index, out))
}

/// How `Pad` fills what lies outside the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PadMode {
    /// A constant (`None` in the index).
    Constant,
    /// Mirrored about the edge element, which is not repeated.
    Reflect,
    /// The edge element repeated.
    Edge,
    /// The input repeated, as if it were circular.
    Wrap,
}

impl PadMode {
    /// The input position `src` of an axis of `len` stands for (`None` for a constant).
    fn source(self, src: i64, len: usize) -> Option<usize> {
        let n = len as i64;
        if (0..n).contains(&src) {
            return Some(src as usize);
        }
        match self {
            PadMode::Constant => None,
            PadMode::Edge => Some(src.clamp(0, n - 1) as usize),
            PadMode::Wrap => Some(src.rem_euclid(n) as usize),
            PadMode::Reflect if n == 1 => Some(0),
            PadMode::Reflect => {
                // numpy's `reflect`, repeated for pads wider than the input.
                let period = 2 * (n - 1);
                let r = src.rem_euclid(period);
                Some((if r < n { r } else { period - r }) as usize)
            }
        }
    }
}

/// ONNX Pad: `pads` = begins then ends per axis; negative values crop; outside the input
/// a constant (`None`), or the element `mode` names.
pub(super) fn pad_index(
    x: &[usize],
    pads: &[i64],
    mode: PadMode,
) -> Result<(Vec<Option<usize>>, Vec<usize>), String> {
    let rank = x.len();
    if pads.len() != 2 * rank {
        return Err(format!(
            "pads has {} values; a rank-{rank} input needs {}",
            pads.len(),
            2 * rank
        ));
    }
    let out: Vec<usize> = (0..rank)
        .map(|a| {
            let d = x[a] as i64 + pads[a] + pads[a + rank];
            usize::try_from(d).map_err(|_| format!("pads {pads:?} crop more than the input {x:?}"))
        })
        .collect::<Result<_, _>>()?;
    if mode != PadMode::Constant && x.contains(&0) {
        return Err(format!("mode {mode:?} pads an empty input {x:?}"));
    }
    let index = map_coords(x, &out, |axis, c| {
        mode.source(c as i64 - pads[axis], x[axis])
    });
    Ok((index, out))
}

/// A reduction over `axes` as rows to sum: the input elements of each output element,
/// consecutive in the returned index (`len` each), and the output shape.
pub(super) fn reduce_index(
    x: &[usize],
    axes: &[usize],
    keepdims: bool,
) -> (Vec<usize>, usize, Vec<usize>) {
    let strides: Vec<usize> = (0..x.len()).map(|d| x[d + 1..].iter().product()).collect();
    let kept: Vec<usize> = (0..x.len()).filter(|d| !axes.contains(d)).collect();
    let len: usize = axes.iter().map(|&d| x[d]).product();
    let rows: usize = kept.iter().map(|&d| x[d]).product();
    let coords = |mut f: usize, dims: &[usize]| {
        let mut c = vec![0; dims.len()];
        for (i, &d) in dims.iter().enumerate().rev() {
            c[i] = f % x[d];
            f /= x[d];
        }
        c
    };
    let mut index = Vec::with_capacity(rows * len);
    for r in 0..rows {
        let base: usize = coords(r, &kept)
            .iter()
            .zip(&kept)
            .map(|(c, &d)| c * strides[d])
            .sum();
        for t in 0..len {
            let off: usize = coords(t, axes)
                .iter()
                .zip(axes)
                .map(|(c, &d)| c * strides[d])
                .sum();
            index.push(base + off);
        }
    }
    let out = if keepdims {
        (0..x.len())
            .map(|d| if axes.contains(&d) { 1 } else { x[d] })
            .collect()
    } else {
        kept.iter().map(|&d| x[d]).collect()
    };
    (index, len, out)
}

/// The element map of a Concat along `axis`: output element → (input, element), and the
/// output shape. Every input must match the first outside `axis`.
pub(super) fn concat_index(
    shapes: &[Vec<usize>],
    axis: usize,
) -> Result<(crate::graph::Sources, Vec<usize>), String> {
    let first = &shapes[0];
    for (k, s) in shapes.iter().enumerate() {
        let same = s.len() == first.len()
            && s.iter()
                .zip(first)
                .enumerate()
                .all(|(d, (a, b))| d == axis || a == b);
        if !same {
            return Err(format!(
                "input {k} has shape {s:?}; it must match {first:?} except along axis {axis}"
            ));
        }
    }
    let outer: usize = first[..axis].iter().product();
    let inner: usize = first[axis + 1..].iter().product();
    let mut out = first.clone();
    out[axis] = shapes.iter().map(|s| s[axis]).sum();
    let mut index = Vec::with_capacity(out.iter().product());
    for o in 0..outer {
        for (k, s) in shapes.iter().enumerate() {
            let d = s[axis];
            for a in 0..d {
                for t in 0..inner {
                    index.push(Some((k, (o * d + a) * inner + t)));
                }
            }
        }
    }
    Ok((index, out))
}

/// ONNX Reshape: `0` copies the input dimension (unless `allowzero`), `-1` is inferred.
pub(super) fn reshape_target(
    input: &[usize],
    target: &[i64],
    allow_zero: bool,
) -> Result<Vec<usize>, String> {
    let total: usize = input.iter().product();
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &d) in target.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            -1 => return Err(format!("target shape {target:?} has more than one -1")),
            0 if !allow_zero => out.push(*input.get(i).ok_or_else(|| {
                format!("target shape {target:?}: 0 at axis {i} beyond input rank")
            })?),
            d if d >= 0 => out.push(d as usize),
            d => return Err(format!("target shape {target:?} has invalid dimension {d}")),
        }
    }
    let known: usize = out.iter().product();
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(format!(
                "cannot reshape {input:?} ({total} elements) to {target:?}"
            ));
        }
        out[i] = total / known;
    }
    if out.iter().product::<usize>() != total {
        return Err(format!(
            "cannot reshape {input:?} ({total} elements) to {target:?}"
        ));
    }
    Ok(out)
}

/// The window and output size of a 2-D pooling node (AveragePool, MaxPool) on `x`.
/// The window of a pooling node over `x` (its end padding extended by `ceil_mode`), and
/// its output shape.
pub(super) fn pool_window(n: &pb::NodeProto, x: &[usize]) -> Result<(Window, Vec<usize>), String> {
    if x.len() != 3 && x.len() != 4 {
        return Err(format!(
            "only 1-D (NCL), 2-D (NCHW) and 3-D (NCDHW) pooling is supported; X is {x:?}"
        ));
    }
    let k = attr_ints(n, "kernel_shape").ok_or("kernel_shape is required")?;
    let (kh, kw) = match k {
        [kh, kw] if x.len() == 4 => (kh, kw),
        [kw] if x.len() == 3 => (&1, kw),
        _ => {
            return Err(format!(
                "kernel_shape {k:?} must have {} entries",
                x.len() - 2
            ))
        }
    };
    if *kh < 1 || *kw < 1 {
        return Err(format!("kernel_shape {k:?} must be positive"));
    }
    let mut window = window(n, x, [*kh as usize, *kw as usize])?;
    if attr_i(n, "ceil_mode").unwrap_or(0) != 0 {
        // Output sizes rounded up: the last window may run past the end: more padding
        // at the end. For a max, padding is never a candidate; an average counts it as
        // padding (see `import_average_pool`).
        let [_, _, h, w] = crate::graph::nchw(x);
        for (axis, len) in [h, w].into_iter().enumerate() {
            let (k, s, d) = (
                window.kernel[axis],
                window.strides[axis],
                window.dilations[axis],
            );
            let (begin, end) = (window.pads[axis], window.pads[axis + 2]);
            let span = d * (k - 1) + 1;
            let Some(room) = (len + begin + end).checked_sub(span) else {
                continue;
            };
            let mut out = room.div_ceil(s) + 1;
            // The last window must start inside the input or its leading padding.
            if (out - 1) * s >= len + begin {
                out -= 1;
            }
            window.pads[axis + 2] += ((out - 1) * s + span).saturating_sub(len + begin + end);
        }
    }
    let out = window_output(&window, x, x[1])?;
    Ok((window, out))
}

/// The output shape of a window over `x` (`[N, C, H, W]` or `[N, C, L]`) with
/// `channels` output channels.
pub(super) fn window_output(
    window: &Window,
    x: &[usize],
    channels: usize,
) -> Result<Vec<usize>, String> {
    let [_, _, h, w] = crate::graph::nchw(x);
    let (oh, ow) = window
        .output(h, w)
        .ok_or_else(|| format!("the window does not fit the input {x:?}"))?;
    Ok(if x.len() == 3 {
        vec![x[0], channels, ow]
    } else {
        vec![x[0], channels, oh, ow]
    })
}

/// Window attributes of Conv/AveragePool/MaxPool with the spec's defaults; `auto_pad`
/// becomes pads. A 1-D window (`x` is `[N, C, L]`) is the 2-D one of height 1.
pub(super) fn window(n: &pb::NodeProto, x: &[usize], kernel: [usize; 2]) -> Result<Window, String> {
    let one_d = x.len() == 3;
    let x = &crate::graph::nchw(x);
    let pair = |name: &str| -> Result<[usize; 2], String> {
        match attr_ints(n, name) {
            None => Ok([1, 1]),
            Some([a, b]) if !one_d && *a >= 1 && *b >= 1 => Ok([*a as usize, *b as usize]),
            Some([b]) if one_d && *b >= 1 => Ok([1, *b as usize]),
            Some(v) => Err(format!(
                "{name} {v:?} must be {} positive integers",
                if one_d { "one" } else { "two" }
            )),
        }
    };
    let strides = pair("strides")?;
    let dilations = pair("dilations")?;
    let auto_pad = attr(n, "auto_pad").map(|a| String::from_utf8_lossy(&a.s).into_owned());
    let pads = match auto_pad.as_deref().unwrap_or("NOTSET") {
        "NOTSET" | "" => match attr_ints(n, "pads") {
            None => [0; 4],
            Some(p) if !one_d && p.len() == 4 && p.iter().all(|&v| v >= 0) => {
                [p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize]
            }
            Some(p) if one_d && p.len() == 2 && p.iter().all(|&v| v >= 0) => {
                [0, p[0] as usize, 0, p[1] as usize]
            }
            Some(p) => {
                return Err(format!(
                    "pads {p:?} must be {} non-negative integers",
                    if one_d { "two" } else { "four" }
                ))
            }
        },
        "VALID" => [0; 4],
        mode @ ("SAME_UPPER" | "SAME_LOWER") => {
            let mut pads = [0; 4];
            for axis in 0..2 {
                let (len, s, d, k) = (x[2 + axis], strides[axis], dilations[axis], kernel[axis]);
                let out = len.div_ceil(s);
                let total = ((out - 1) * s + d * (k - 1) + 1).saturating_sub(len);
                let small = total / 2;
                let (begin, end) = if mode == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
                pads[axis] = begin;
                pads[axis + 2] = end;
            }
            pads
        }
        other => {
            return Err(format!(
                "auto_pad `{other}` is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER"
            ))
        }
    };
    Ok(Window {
        kernel,
        strides,
        dilations,
        pads,
    })
}
