//! Array ops: `Expand`, `Tile`, `Trilu`, `GatherElements`, `GatherND` and `Split`
//! with constant indices, shapes or sizes are element maps (no rows); `OneHot` and
//! `Gather` of computed indices from a constant table (an embedding) are one-hot
//! products: a zero test of the index against every position, times the table.
//! `DepthToSpace` and `SpaceToDepth` are element maps; `Hardmax` the one-hot of a proven
//! `ArgMax`; `CumSum` a product by a constant triangular matrix.
//! `ScatterElements` and `ScatterND` with constant indices are element maps of two
//! sources, or with a reduction, sums, products, maxima or minima of those maps.

use crate::graph::{broadcast_index, Sources};

use super::super::*;
use super::{Lowered, NodeCx};
use zkinfer_qir::Func;

/// An int64 constant input, or a clear error naming it.
fn int_input(
    cx: &NodeCx<'_>,
    i: usize,
    what: &str,
) -> Result<(Vec<usize>, Vec<i64>), CompileError> {
    let name = &cx.ins[i];
    cx.int_constants
        .get(name)
        .cloned()
        .ok_or_else(|| cx.invalid(format!("{what} `{name}` must be a constant int64 tensor")))
}

fn select(index: Vec<Option<usize>>, x: &str, out: Vec<usize>) -> Lowered {
    (Op::Select { index }, vec![x.to_owned()], out)
}

/// The elements of `x` that `index` picks, and `value` where it picks none (a constant
/// added to the element map, where `value` is not 0).
pub(super) fn select_or_fill(
    cx: &NodeCx<'_>,
    index: Vec<Option<usize>>,
    x: &str,
    out: Vec<usize>,
    value: f32,
) -> Lowered {
    if value == 0.0 || index.iter().all(Option::is_some) {
        return select(index, x, out);
    }
    let fill: Vec<f32> = index
        .iter()
        .map(|i| if i.is_some() { 0.0 } else { value })
        .collect();
    let placed = cx.emit(
        "placed",
        Op::Select { index },
        vec![x.to_owned()],
        out.clone(),
    );
    let fill = cx.emit_constant("fill", Tensor::new(out.clone(), fill));
    (Op::Add, vec![placed, fill], out)
}

/// The coordinates of flat position `flat` of `shape`.
fn coords(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut c = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        c[d] = flat % shape[d];
        flat /= shape[d];
    }
    c
}

fn flat(c: &[usize], shape: &[usize]) -> usize {
    c.iter().zip(shape).fold(0, |acc, (&i, &d)| acc * d + i)
}

/// An index in `-dim..dim` (negative from the end) as a position.
fn wrap(i: i64, dim: usize) -> Result<usize, String> {
    let j = if i < 0 { i + dim as i64 } else { i };
    usize::try_from(j)
        .ok()
        .filter(|&j| j < dim)
        .ok_or_else(|| format!("index {i} out of range for dimension {dim}"))
}

/// `Expand(x, shape)`: numpy broadcasting of x and the constant shape.
pub(super) fn import_expand(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    cx.arity(2, 2)?;
    let x = cx.shape_of(&cx.ins[0])?;
    let (_, shape) = int_input(cx, 1, "the shape")?;
    let shape: Vec<usize> = shape
        .iter()
        .map(|&d| usize::try_from(d).ok())
        .collect::<Option<_>>()
        .ok_or_else(|| cx.invalid(format!("negative dimension in {shape:?}")))?;
    let out = broadcast_shape(&x, &shape)
        .ok_or_else(|| cx.invalid(format!("{x:?} does not broadcast to {shape:?}")))?;
    let index = broadcast_index(&x, &out).into_iter().map(Some).collect();
    Ok(select(index, &cx.ins[0], out))
}

/// `Tile(x, repeats)`.
pub(super) fn import_tile(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    cx.arity(2, 2)?;
    let x = cx.shape_of(&cx.ins[0])?;
    let (_, repeats) = int_input(cx, 1, "repeats")?;
    if repeats.len() != x.len() || repeats.iter().any(|&r| r < 0) {
        return Err(cx.invalid(format!(
            "repeats {repeats:?} must be one non-negative count per axis of {x:?}"
        )));
    }
    let out: Vec<usize> = x
        .iter()
        .zip(&repeats)
        .map(|(&d, &r)| d * r as usize)
        .collect();
    let index = (0..out.iter().product())
        .map(|f| {
            let c: Vec<usize> = coords(f, &out)
                .iter()
                .zip(&x)
                .map(|(&c, &d)| c % d)
                .collect();
            Some(flat(&c, &x))
        })
        .collect();
    Ok(select(index, &cx.ins[0], out))
}

/// `Trilu(x, k)`: the upper (or lower) triangle of the last two axes, zeros elsewhere.
pub(super) fn import_trilu(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    cx.arity(1, 2)?;
    let x = cx.shape_of(&cx.ins[0])?;
    if x.len() < 2 {
        return Err(cx.invalid(format!("the input must have two axes or more, got {x:?}")));
    }
    let k = match cx.ins.get(1) {
        None => 0,
        Some(_) => int_input(cx, 1, "k")?.1.first().copied().unwrap_or(0),
    };
    let upper = attr_i(cx.n, "upper").unwrap_or(1) != 0;
    let (h, w) = (x[x.len() - 2], x[x.len() - 1]);
    let index = (0..x.iter().product::<usize>())
        .map(|f| {
            let (i, j) = (((f / w) % h) as i64, (f % w) as i64);
            let keep = if upper { j - i >= k } else { j - i <= k };
            keep.then_some(f)
        })
        .collect();
    Ok(select(index, &cx.ins[0], x))
}

/// `GatherElements(x, indices, axis)`: with constant indices an element map; with
/// computed ones, each output the sum of its candidates along the axis times the
/// index's proven one-hot.
pub(super) fn import_gather_elements(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    cx.arity(2, 2)?;
    let x = cx.shape_of(&cx.ins[0])?;
    let axis = normalize_axis(attr_i(cx.n, "axis").unwrap_or(0), x.len())
        .ok_or_else(|| cx.invalid(format!("axis out of range for {x:?}")))?;
    let computed = !cx.int_constants.contains_key(&cx.ins[1]);
    let ishape = if computed {
        cx.shape_of(&cx.ins[1])?
    } else {
        int_input(cx, 1, "indices")?.0
    };
    if ishape.len() != x.len()
        || ishape
            .iter()
            .zip(&x)
            .enumerate()
            .any(|(d, (&i, &s))| d != axis && i > s)
    {
        return Err(cx.invalid(format!(
            "indices of shape {ishape:?} do not fit data of shape {x:?} outside axis {axis}"
        )));
    }
    if computed {
        return gather_elements_computed(cx, &x, &ishape, axis);
    }
    let (_, idx) = int_input(cx, 1, "indices")?;
    let mut index = Vec::with_capacity(idx.len());
    for (f, &i) in idx.iter().enumerate() {
        let mut c = coords(f, &ishape);
        c[axis] = wrap(i, x[axis]).map_err(|e| cx.invalid(e))?;
        index.push(Some(flat(&c, &x)));
    }
    Ok(select(index, &cx.ins[0], ishape))
}

/// `GatherElements` of computed indices: for output `f`, the `depth` elements of the data
/// along the axis at `f`'s other coordinates (an element map, or constants), times the
/// one-hot of `f`'s index, summed.
fn gather_elements_computed(
    cx: &NodeCx<'_>,
    x: &[usize],
    ishape: &[usize],
    axis: usize,
) -> Result<Lowered, CompileError> {
    let (data, idx) = (&cx.ins[0], &cx.ins[1]);
    let (m, depth) = (ishape.iter().product::<usize>(), x[axis]);
    let hot = one_hot(cx, idx, ishape, depth, "hot");
    let index: Vec<usize> = (0..m)
        .flat_map(|f| {
            let c = coords(f, ishape);
            (0..depth).map(move |l| {
                let mut c = c.clone();
                c[axis] = l;
                flat(&c, x)
            })
        })
        .collect();
    let candidates = match cx.constants.get(data) {
        Some(t) => cx.emit_constant(
            "candidates",
            Tensor::new(vec![m, depth], index.iter().map(|&i| t.data[i]).collect()),
        ),
        None => cx.emit(
            "candidates",
            Op::Select {
                index: index.into_iter().map(Some).collect(),
            },
            vec![data.clone()],
            vec![m, depth],
        ),
    };
    let picked = cx.emit("picked", Op::Mul, vec![hot, candidates], vec![m, depth]);
    let sum = Op::Reduce {
        index: (0..m * depth).collect(),
        len: depth,
        mean: false,
    };
    let sum = cx.emit("sum", sum, vec![picked], vec![m]);
    Ok((Op::Reshape, vec![sum], ishape.to_vec()))
}

/// `DepthToSpace` (`blocksize`, modes `DCR` and `CRD`) and `SpaceToDepth`: element maps
/// between `[N, C, H, W]` and `[N, C / b², H·b, W·b]`.
pub(super) fn import_depth_space(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    cx.arity(1, 1)?;
    let x = cx.shape_of(&cx.ins[0])?;
    let b = attr_i(cx.n, "blocksize")
        .and_then(|b| usize::try_from(b).ok())
        .filter(|&b| b > 0)
        .ok_or_else(|| cx.invalid("`blocksize` must be a positive integer".into()))?;
    let &[n, c, h, w] = x.as_slice() else {
        return Err(cx.invalid(format!("the input must be [N, C, H, W], got {x:?}")));
    };
    if cx.n.op_type == "SpaceToDepth" {
        if h % b != 0 || w % b != 0 {
            return Err(cx.invalid(format!("H and W of {x:?} must be multiples of {b}")));
        }
        let out = vec![n, c * b * b, h / b, w / b];
        let index = (0..out.iter().product::<usize>())
            .map(|f| {
                let o = coords(f, &out);
                let (n, d, y, z) = (o[0], o[1], o[2], o[3]);
                let (block, ch) = (d / c, d % c);
                Some(flat(&[n, ch, y * b + block / b, z * b + block % b], &x))
            })
            .collect();
        return Ok(select(index, &cx.ins[0], out));
    }
    if c % (b * b) != 0 {
        return Err(cx.invalid(format!("C of {x:?} must be a multiple of {}", b * b)));
    }
    let crd = match attr(cx.n, "mode").map(|a| String::from_utf8_lossy(&a.s).into_owned()) {
        None => false,
        Some(m) if m == "DCR" => false,
        Some(m) if m == "CRD" => true,
        Some(m) => return Err(cx.invalid(format!("mode `{m}` is not one of DCR, CRD"))),
    };
    let cb = c / (b * b);
    let out = vec![n, cb, h * b, w * b];
    let index = (0..out.iter().product::<usize>())
        .map(|f| {
            let o = coords(f, &out);
            let (n, ch, y, z) = (o[0], o[1], o[2], o[3]);
            let (i, j) = (y % b, z % b);
            let d = if crd {
                ch * b * b + i * b + j
            } else {
                (i * b + j) * cb + ch
            };
            Some(flat(&[n, d, y / b, z / b], &x))
        })
        .collect();
    Ok(select(index, &cx.ins[0], out))
}

/// `Hardmax`: 1 at the first largest element along the axis, 0 elsewhere: the proven
/// `ArgMax`'s one-hot, placed back along the axis. Before opset 13 the input is
/// flattened to 2-D at the axis, as `Softmax` is.
pub(super) fn import_hardmax(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    cx.arity(1, 1)?;
    let x = cx.shape_of(&cx.ins[0])?;
    let axis = super::normalize::softmax_axis(cx, &x)?;
    let (input, shape, axis) = if cx.opset >= 13 {
        (cx.ins[0].clone(), x.clone(), axis)
    } else {
        let flat2 = vec![
            x[..axis].iter().product::<usize>(),
            x[axis..].iter().product::<usize>(),
        ];
        let r = cx.emit("2d", Op::Reshape, vec![cx.ins[0].clone()], flat2.clone());
        (r, flat2, 1)
    };
    let depth = shape[axis];
    let mut kept = shape.clone();
    kept[axis] = 1;
    let argmax = Op::ArgExtreme {
        axis,
        max: true,
        last: false,
    };
    let idx = cx.emit("argmax", argmax, vec![input], kept.clone());
    let hot = one_hot(cx, &idx, &kept, depth, "hot");
    let index: Vec<Option<usize>> = (0..shape.iter().product::<usize>())
        .map(|f| {
            let mut c = coords(f, &shape);
            let l = c[axis];
            c[axis] = 0;
            Some(flat(&c, &kept) * depth + l)
        })
        .collect();
    if cx.opset >= 13 {
        return Ok(select(index, &hot, shape));
    }
    let y = cx.emit("placed", Op::Select { index }, vec![hot], shape);
    Ok((Op::Reshape, vec![y], x))
}

/// `CumSum(x, axis)` (`exclusive`, `reverse`): along the axis, a product by a constant
/// triangular matrix (the axis moved last and back).
pub(super) fn import_cumsum(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    cx.arity(2, 2)?;
    let x = cx.shape_of(&cx.ins[0])?;
    let (_, a) = int_input(cx, 1, "axis")?;
    let axis = match a[..] {
        [a] => normalize_axis(a, x.len()),
        _ => None,
    }
    .ok_or_else(|| cx.invalid(format!("axis {a:?} must be one axis of {x:?}")))?;
    let exclusive = attr_i(cx.n, "exclusive").unwrap_or(0) != 0;
    let reverse = attr_i(cx.n, "reverse").unwrap_or(0) != 0;
    let len = x[axis];
    // Mᵀ [len, len]: column i sums the inputs j it includes.
    let mut m = vec![0.0f32; len * len];
    for i in 0..len {
        for j in 0..len {
            let included = match (reverse, exclusive) {
                (false, false) => j <= i,
                (false, true) => j < i,
                (true, false) => j >= i,
                (true, true) => j > i,
            };
            if included {
                m[j * len + i] = 1.0;
            }
        }
    }
    let matrix = cx.emit_constant("sums", Tensor::new(vec![len, len], m));
    let rank = x.len();
    let mut perm: Vec<usize> = (0..rank).filter(|&d| d != axis).collect();
    perm.push(axis);
    let moved: Vec<usize> = perm.iter().map(|&d| x[d]).collect();
    let t = cx.emit(
        "axis_last",
        Op::Transpose { perm: perm.clone() },
        vec![cx.ins[0].clone()],
        moved.clone(),
    );
    let p = cx.emit("summed", Op::MatMul, vec![t, matrix], moved);
    let mut back = vec![0; rank];
    for (i, &d) in perm.iter().enumerate() {
        back[d] = i;
    }
    Ok((Op::Transpose { perm: back }, vec![p], x))
}

/// `GatherND(x, indices, batch_dims)` with constant indices.
pub(super) fn import_gather_nd(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    cx.arity(2, 2)?;
    let x = cx.shape_of(&cx.ins[0])?;
    let (ishape, idx) = int_input(cx, 1, "indices")?;
    let b = usize::try_from(attr_i(cx.n, "batch_dims").unwrap_or(0)).unwrap_or(usize::MAX);
    let Some(&m) = ishape.last() else {
        return Err(cx.invalid("indices must have at least one axis".into()));
    };
    if b >= ishape.len() || b + m > x.len() || ishape[..b] != x[..b] {
        return Err(cx.invalid(format!(
            "indices of shape {ishape:?} with batch_dims {b} do not fit data of shape {x:?}"
        )));
    }
    let slice: Vec<usize> = x[b + m..].to_vec();
    let inner: usize = slice.iter().product();
    let out: Vec<usize> = ishape[..ishape.len() - 1]
        .iter()
        .chain(&slice)
        .copied()
        .collect();
    let tuples = idx.len() / m;
    let per_batch = tuples / ishape[..b].iter().product::<usize>().max(1);
    let mut index = Vec::with_capacity(tuples * inner);
    for t in 0..tuples {
        let batch = coords(t / per_batch, &x[..b]);
        let mut c = batch;
        for (d, &i) in idx[t * m..(t + 1) * m].iter().enumerate() {
            c.push(wrap(i, x[b + d]).map_err(|e| cx.invalid(e))?);
        }
        c.extend(std::iter::repeat_n(0, slice.len()));
        let start = flat(&c, &x);
        index.extend((0..inner).map(|i| Some(start + i)));
    }
    Ok(select(index, &cx.ins[0], out))
}

/// `Split(x, split, axis)`: each output a slice of x (the first is this node's op, the
/// others are emitted under their names).
pub(super) fn import_split(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    cx.arity(1, 2)?;
    let x = cx.shape_of(&cx.ins[0])?;
    let axis = normalize_axis(attr_i(cx.n, "axis").unwrap_or(0), x.len())
        .ok_or_else(|| cx.invalid(format!("axis out of range for {x:?}")))?;
    let outputs = cx.n.output.len();
    let sizes: Vec<usize> = match (cx.ins.get(1), attr_ints(cx.n, "split")) {
        (Some(_), _) => int_input(cx, 1, "split")?
            .1
            .iter()
            .map(|&s| s.max(0) as usize)
            .collect(),
        (None, Some(s)) => s.iter().map(|&s| s.max(0) as usize).collect(),
        (None, None) => {
            let parts = outputs;
            let per = x[axis].div_ceil(parts.max(1));
            (0..parts)
                .map(|p| per.min(x[axis].saturating_sub(p * per)))
                .collect()
        }
    };
    if sizes.len() != outputs || sizes.iter().sum::<usize>() != x[axis] {
        return Err(cx.invalid(format!(
            "split sizes {sizes:?} must be one per output ({outputs}) and sum to {} (axis {axis} of {x:?})",
            x[axis]
        )));
    }
    let mut at = 0i64;
    let mut first = None;
    for (o, &size) in sizes.iter().enumerate() {
        let end = at + size as i64;
        let (index, out) =
            slice_index(&x, &[at], &[end], &[axis as i64], &[1]).map_err(|e| cx.invalid(e))?;
        at = end;
        let lowered = select(index, &cx.ins[0], out);
        match o {
            0 => first = Some(lowered),
            _ if cx.n.output[o].is_empty() => {}
            _ => cx.emit_output(&cx.n.output[o], lowered.0, lowered.1, lowered.2),
        }
    }
    first.ok_or_else(|| cx.invalid("no output".into()))
}

/// Emits the one-hot of computed indices `idx` (any shape, values in `-depth..depth`,
/// negative from the end as ONNX counts them) over a last axis of `depth`.
fn one_hot(cx: &NodeCx<'_>, idx: &str, shape: &[usize], depth: usize, tag: &str) -> String {
    let m: usize = shape.iter().product();
    let column = cx.emit(
        &format!("{tag}_column"),
        Op::Reshape,
        vec![idx.to_owned()],
        vec![m, 1],
    );
    let mut hot = Vec::new();
    for (suffix, offset) in [("", 0i64), ("_from_end", -(depth as i64))] {
        let positions = cx.emit_constant(
            &format!("{tag}_positions{suffix}"),
            Tensor::new(
                vec![depth],
                (0..depth).map(|j| (j as i64 + offset) as f32).collect(),
            ),
        );
        let diff = cx.emit(
            &format!("{tag}_diff{suffix}"),
            Op::Sub,
            vec![column.clone(), positions],
            vec![m, depth],
        );
        hot.push(cx.emit(
            &format!("{tag}_is{suffix}"),
            Op::Unary(Func::IsZero),
            vec![diff],
            vec![m, depth],
        ));
    }
    cx.emit(&format!("{tag}_one_hot"), Op::Add, hot, vec![m, depth])
}

/// `OneHot(indices, depth, values)`: `values[1]` where the index is, `values[0]`
/// elsewhere, along `axis`.
pub(super) fn import_one_hot(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    cx.arity(3, 3)?;
    let idx = &cx.ins[0];
    let ishape = cx.shape_of(idx)?;
    let depth = match cx.constants.get(&cx.ins[1]) {
        Some(t) => t.data.first().map(|&d| d as i64),
        None => int_input(cx, 1, "depth")?.1.first().copied(),
    }
    .and_then(|d| usize::try_from(d).ok())
    .filter(|&d| d > 0)
    .ok_or_else(|| cx.invalid("depth must be a positive constant".into()))?;
    let values: Vec<f32> = match cx.constants.get(&cx.ins[2]) {
        Some(t) => t.data.clone(),
        None => int_input(cx, 2, "values")?
            .1
            .iter()
            .map(|&v| v as f32)
            .collect(),
    };
    let [off, on] = values[..] else {
        return Err(cx.invalid(format!("values must be [off, on], got {values:?}")));
    };
    let rank = ishape.len() + 1;
    let axis = normalize_axis(attr_i(cx.n, "axis").unwrap_or(-1), rank)
        .ok_or_else(|| cx.invalid(format!("axis out of range for rank {rank}")))?;
    let hot = one_hot(cx, idx, &ishape, depth, "hot");
    let last: Vec<usize> = ishape.iter().copied().chain([depth]).collect();
    let mut y = cx.emit("hot_shaped", Op::Reshape, vec![hot], last.clone());
    if (off, on) != (0.0, 1.0) {
        let scale = cx.emit_constant("on_minus_off", Tensor::new(vec![], vec![on - off]));
        y = cx.emit("scaled", Op::Mul, vec![y, scale], last.clone());
        let base = cx.emit_constant("off", Tensor::new(vec![], vec![off]));
        y = cx.emit("shifted", Op::Add, vec![y, base], last.clone());
    }
    if axis == rank - 1 {
        return Ok((Op::Identity, vec![y], last));
    }
    // The depth axis moved from last to `axis`.
    let mut perm: Vec<usize> = (0..rank - 1).collect();
    perm.insert(axis, rank - 1);
    let out: Vec<usize> = perm.iter().map(|&p| last[p]).collect();
    Ok((Op::Transpose { perm }, vec![y], out))
}

/// `Gather` of computed indices from a constant table along axis 0 (an embedding):
/// the indices' one-hot times the table.
pub(super) fn import_gather_computed(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let (data, idx) = (&cx.ins[0], &cx.ins[1]);
    let table: Tensor = match (cx.constants.get(data), cx.int_constants.get(data)) {
        (Some(t), _) => t.clone(),
        (None, Some((shape, v))) => {
            Tensor::new(shape.clone(), v.iter().map(|&v| v as f32).collect())
        }
        (None, None) => {
            return Err(cx.invalid(format!(
                "indices `{idx}` are computed and so is the data `{data}`: only constant \
                 indices, or computed indices into a constant table, are supported"
            )))
        }
    };
    let axis = normalize_axis(attr_i(cx.n, "axis").unwrap_or(0), table.shape.len());
    if axis != Some(0) {
        return Err(
            cx.invalid("computed indices into a constant table are supported along axis 0".into())
        );
    }
    if !cx.is_integer(idx) {
        return Err(cx.invalid(format!("the indices `{idx}` must be integers")));
    }
    let ishape = cx.shape_of(idx)?;
    let v = table.shape[0];
    let row: usize = table.shape[1..].iter().product();
    let m: usize = ishape.iter().product();
    let hot = one_hot(cx, idx, &ishape, v, "rows");
    let t = cx.emit_constant("table", Tensor::new(vec![v, row], table.data.clone()));
    let gemm = Op::Gemm(Gemm {
        alpha: 1.0,
        beta: 1.0,
        trans_a: false,
        trans_b: false,
    });
    let picked = cx.emit("picked", gemm, vec![hot, t], vec![m, row]);
    let out: Vec<usize> = ishape.iter().chain(&table.shape[1..]).copied().collect();
    Ok((Op::Reshape, vec![picked], out))
}

/// `ScatterElements(data, indices, updates)` and `ScatterND` with constant indices. With
/// `reduction` none, each output element is an element of `updates` where one is
/// scattered (the last, where several are), else of `data`: an element map, no rows.
/// With a reduction, see [`scatter_reduce`].
pub(super) fn import_scatter(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    cx.arity(3, 3)?;
    let (data, updates) = (&cx.ins[0], &cx.ins[2]);
    let x = cx.shape_of(data)?;
    let u = cx.shape_of(updates)?;
    let (ishape, idx) = int_input(cx, 1, "indices")?;
    let reduction = attr(cx.n, "reduction").map_or("none".into(), |a| {
        String::from_utf8_lossy(&a.s).into_owned()
    });
    // The elements of `updates` scattered to each output position, in order.
    let mut scattered: Vec<Vec<usize>> = vec![Vec::new(); x.iter().product()];
    if cx.n.op_type == "ScatterElements" || cx.n.op_type == "Scatter" {
        let axis = normalize_axis(attr_i(cx.n, "axis").unwrap_or(0), x.len())
            .ok_or_else(|| cx.invalid(format!("axis out of range for {x:?}")))?;
        if ishape != u || ishape.len() != x.len() {
            return Err(cx.invalid(format!(
                "indices {ishape:?} and updates {u:?} must have one shape, of data's rank {}",
                x.len()
            )));
        }
        for (j, &i) in idx.iter().enumerate() {
            let mut c = coords(j, &ishape);
            if c.iter()
                .zip(&x)
                .enumerate()
                .any(|(d, (&c, &s))| d != axis && c >= s)
            {
                return Err(cx.invalid(format!("indices {ishape:?} exceed data {x:?}")));
            }
            c[axis] = wrap(i, x[axis]).map_err(|e| cx.invalid(e))?;
            scattered[flat(&c, &x)].push(j);
        }
    } else {
        let Some(&m) = ishape.last() else {
            return Err(cx.invalid("indices must have at least one axis".into()));
        };
        let tuples = ishape[..ishape.len() - 1].to_vec();
        let want: Vec<usize> = tuples.iter().chain(&x[m.min(x.len())..]).copied().collect();
        if m > x.len() || u != want {
            return Err(cx.invalid(format!(
                "updates {u:?} must be {want:?} for indices {ishape:?} into data {x:?}"
            )));
        }
        let inner: usize = x[m..].iter().product();
        for t in 0..idx.len() / m.max(1) {
            let mut c = Vec::with_capacity(x.len());
            for (d, &i) in idx[t * m..(t + 1) * m].iter().enumerate() {
                c.push(wrap(i, x[d]).map_err(|e| cx.invalid(e))?);
            }
            c.extend(std::iter::repeat_n(0, x.len() - m));
            let start = flat(&c, &x);
            for k in 0..inner {
                scattered[start + k].push(t * inner + k);
            }
        }
    }
    if reduction != "none" {
        return scatter_reduce(cx, &reduction, &scattered, x);
    }
    let index: Sources = scattered
        .iter()
        .enumerate()
        .map(|(p, s)| Some(s.last().map_or((0, p), |&j| (1, j))))
        .collect();
    // A constant source: the computed one's elements in place (zeros elsewhere) plus the
    // constant's elements where the computed one has none.
    let constant = |s: &String| cx.constants.get(s);
    let (computed, k, fixed) = match (constant(data), constant(updates)) {
        (None, None) => return Ok((Op::Concat { index }, vec![data.clone(), updates.clone()], x)),
        (Some(d), None) => (updates, 1, (d, 0)),
        (None, Some(t)) => (data, 0, (t, 1)),
        (Some(_), Some(_)) => return Err(cx.invalid("data and updates are both constant".into())),
    };
    let picked = index
        .iter()
        .map(|s| s.filter(|&(i, _)| i == k).map(|(_, j)| j))
        .collect();
    let placed = cx.emit(
        "placed",
        Op::Select { index: picked },
        vec![computed.clone()],
        x.clone(),
    );
    let rest: Vec<f32> = index
        .iter()
        .map(|s| match s {
            Some((i, j)) if *i == fixed.1 => fixed.0.data[*j],
            _ => 0.0,
        })
        .collect();
    let rest = cx.emit_constant("constant_part", Tensor::new(x.clone(), rest));
    Ok((Op::Add, vec![placed, rest], x))
}

/// A scatter with a `reduction`: in round `r`, every output position that has an `r`-th
/// scattered element of `updates` combines it with what it holds, the others keep it.
/// `add` is one sum of `data` and the rounds (zero where a position has no element);
/// `max` and `min` one maximum or minimum of `data` and the rounds (`data`'s own element
/// where a position has none); `mul` a product per round, then the product or the
/// element before it, position by position.
fn scatter_reduce(
    cx: &NodeCx<'_>,
    reduction: &str,
    scattered: &[Vec<usize>],
    x: Vec<usize>,
) -> Result<Lowered, CompileError> {
    let (data, updates) = (&cx.ins[0], &cx.ins[2]);
    if cx.constants.contains_key(updates) {
        return Err(cx.invalid(format!(
            "updates `{updates}` are constant; a scatter with reduction `{reduction}` needs computed updates"
        )));
    }
    let data_constant = cx.constants.contains_key(data);
    if data_constant && reduction != "add" {
        return Err(cx.invalid(format!(
            "data `{data}` is constant; a scatter with reduction `{reduction}` needs computed data (`add` takes either)"
        )));
    }
    let rounds = scattered.iter().map(Vec::len).max().unwrap_or(0);
    // The `r`-th element scattered to each position, if it has one.
    let nth =
        |r: usize| -> Vec<Option<usize>> { scattered.iter().map(|s| s.get(r).copied()).collect() };
    let picked = |r: usize| {
        cx.emit(
            &format!("round{r}"),
            Op::Select { index: nth(r) },
            vec![updates.clone()],
            x.clone(),
        )
    };
    match reduction {
        "add" => {
            let mut parts: Vec<String> = (0..rounds).map(picked).collect();
            if data_constant || parts.is_empty() {
                let sum = match parts.len() {
                    0 => return Ok((Op::Identity, vec![data.clone()], x)),
                    1 => parts.remove(0),
                    _ => cx.emit("sum", Op::Sum, parts, x.clone()),
                };
                return Ok((Op::Add, vec![sum, data.clone()], x));
            }
            parts.insert(0, data.clone());
            Ok((Op::Sum, parts, x))
        }
        "max" | "min" => {
            let mut parts = vec![data.clone()];
            for r in 0..rounds {
                let index = nth(r)
                    .into_iter()
                    .enumerate()
                    .map(|(p, j)| Some(j.map_or((0, p), |j| (1, j))))
                    .collect();
                parts.push(cx.emit(
                    &format!("round{r}"),
                    Op::Concat { index },
                    vec![data.clone(), updates.clone()],
                    x.clone(),
                ));
            }
            let op = if reduction == "max" { Op::Max } else { Op::Min };
            Ok((op, parts, x))
        }
        "mul" => {
            let mut held = data.clone();
            for r in 0..rounds {
                let by = picked(r);
                let product = cx.emit(
                    &format!("product{r}"),
                    Op::Mul,
                    vec![held.clone(), by],
                    x.clone(),
                );
                let index: Sources = nth(r)
                    .into_iter()
                    .enumerate()
                    .map(|(p, j)| Some(if j.is_some() { (0, p) } else { (1, p) }))
                    .collect();
                let inputs = vec![product, held];
                if r + 1 == rounds {
                    return Ok((Op::Concat { index }, inputs, x));
                }
                held = cx.emit(&format!("held{r}"), Op::Concat { index }, inputs, x.clone());
            }
            Ok((Op::Identity, vec![held], x))
        }
        _ => Err(cx.invalid(format!(
            "reduction `{reduction}` is not one of none, add, mul, max, min"
        ))),
    }
}

/// How one axis is resized: the coordinate transformation, and the crop of
/// `tf_crop_and_resize` (start and end as fractions of the axis, and the value of outputs
/// outside it).
struct AxisResize<'a> {
    mode: &'a str,
    crop: Option<(f64, f64, f32)>,
}

impl AxisResize<'_> {
    /// Where output position `x` of an axis of `len` resized by `scale` to `out` elements
    /// samples the input, as `coordinate_transformation_mode` says (the resized length in
    /// the formulas is `len · scale`, not rounded, as ONNX's reference computes it); `None`
    /// outside the crop of `tf_crop_and_resize`.
    fn coordinate(
        &self,
        x: usize,
        len: usize,
        scale: f64,
        out: usize,
    ) -> Result<Option<f64>, String> {
        let (x, len) = (x as f64, len as f64);
        let width = len * scale;
        Ok(Some(match self.mode {
            "half_pixel" => (x + 0.5) / scale - 0.5,
            "pytorch_half_pixel" if width > 1.0 => (x + 0.5) / scale - 0.5,
            "pytorch_half_pixel" => -0.5,
            "align_corners" if width > 1.0 => x * (len - 1.0) / (width - 1.0),
            "align_corners" => 0.0,
            "asymmetric" => x / scale,
            "tf_half_pixel_for_nn" => (x + 0.5) / scale,
            "half_pixel_symmetric" => {
                let adjustment = out as f64 / width;
                let center = len / 2.0;
                center * (1.0 - adjustment) + (x + 0.5) / scale - 0.5
            }
            "tf_crop_and_resize" => {
                let Some((start, end, _)) = self.crop else {
                    return Err("tf_crop_and_resize needs a constant `roi`".into());
                };
                let c = if width == 1.0 {
                    (end - start) * (len - 1.0) / 2.0
                } else {
                    x * (end - start) * (len - 1.0) / (width - 1.0)
                } + start * (len - 1.0);
                if c < 0.0 || c > len - 1.0 {
                    return Ok(None);
                }
                c
            }
            other => {
                return Err(format!(
                    "coordinate_transformation_mode `{other}` is not supported"
                ))
            }
        }))
    }

    /// The value of outputs outside the crop.
    fn extrapolation(&self) -> f32 {
        self.crop.map_or(0.0, |(_, _, v)| v)
    }
}

/// The interpolation of `linear` and `cubic` resizing, as ONNX's reference computes it:
/// the coefficients of the input elements around a coordinate whose distance past its
/// left neighbour is `ratio` (in `(0, 1]`), for an axis resized by `scale`; with
/// `antialias`, a filter widened by `1 / scale` where it downsamples.
#[derive(Clone, Copy)]
enum Interpolation {
    Linear { antialias: bool },
    Cubic { a: f64, antialias: bool },
}

impl Interpolation {
    fn coefficients(self, ratio: f64, scale: f64) -> Vec<f64> {
        let cubic = |a: f64, x: f64| {
            let x = x.abs();
            if x <= 1.0 {
                ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
            } else if x < 2.0 {
                ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
            } else {
                0.0
            }
        };
        let normalized = |c: Vec<f64>| {
            let sum: f64 = c.iter().sum();
            c.into_iter().map(|v| v / sum).collect()
        };
        match self {
            Interpolation::Linear { antialias: false } => vec![1.0 - ratio, ratio],
            Interpolation::Cubic {
                a,
                antialias: false,
            } => [1.0 + ratio, ratio, 1.0 - ratio, 2.0 - ratio]
                .iter()
                .map(|&x| cubic(a, x))
                .collect(),
            Interpolation::Linear { antialias: true } => {
                let scale = scale.min(1.0);
                let start = (-1.0 / scale).floor() as i64 + 1;
                normalized(
                    (start..start + 2 - 2 * start)
                        .map(|i| (1.0 - ((i as f64 - ratio) * scale).abs()).clamp(0.0, 1.0))
                        .collect(),
                )
            }
            Interpolation::Cubic { a, antialias: true } => {
                let scale = scale.min(1.0);
                let start = (-2.0 / scale).floor() as i64 + 1;
                normalized(
                    (start..2 - start)
                        .map(|i| cubic(a, scale * (i as f64 - ratio)))
                        .collect(),
                )
            }
        }
    }
}

/// The `n` positions nearest to `x` (the smaller first on a tie), in order: the
/// neighbours ONNX's reference interpolates, which may lie outside the axis.
fn neighbours(x: f64, n: usize) -> Vec<i64> {
    let below = n.div_ceil(2) as i64;
    let mut v: Vec<i64> = (x.floor() as i64 - below..=x.floor() as i64 + below + 1).collect();
    v.sort_by(|a, b| {
        (x - *a as f64)
            .abs()
            .total_cmp(&(x - *b as f64).abs())
            .then(a.cmp(b))
    });
    v.truncate(n);
    v.sort_unstable();
    v
}

/// `Resize` (opset 10+) and `Upsample` with constant scales or sizes: `nearest` picks an
/// input element (an element map, no rows); `linear` and `cubic` (with or without
/// `antialias`) are, per resized axis, a product by a constant interpolation matrix
/// (each output a weighted sum of its neighbours, the edge element repeated past the
/// ends), the axis moved last and back. Outputs outside the crop of
/// `tf_crop_and_resize` are the extrapolation value.
pub(super) fn import_resize(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    let x = cx.shape_of(&cx.ins[0])?;
    let rank = x.len();
    let input = |i: usize| n.input.get(i).filter(|s| !s.is_empty());
    let floats_of = |name: &String| -> Result<Vec<f64>, CompileError> {
        match (cx.constants.get(name), cx.int_constants.get(name)) {
            (Some(t), _) => Ok(t.data.iter().map(|&v| f64::from(v)).collect()),
            (None, Some((_, v))) => Ok(v.iter().map(|&v| v as f64).collect()),
            (None, None) => Err(cx.invalid(format!("`{name}` must be a constant"))),
        }
    };
    let attr_s = |name: &str, default: &str| {
        attr(n, name).map_or(default.to_string(), |a| {
            String::from_utf8_lossy(&a.s).into_owned()
        })
    };
    let upsample = n.op_type == "Upsample";
    let (scales_at, sizes_at) = if upsample || cx.opset < 11 {
        (1, usize::MAX)
    } else {
        (2, 3)
    };
    let axes: Vec<usize> = match attr_ints(n, "axes") {
        Some(a) => a
            .iter()
            .map(|&v| normalize_axis(v, rank))
            .collect::<Option<_>>()
            .ok_or_else(|| cx.invalid(format!("axes {a:?} out of range for rank {rank}")))?,
        None => (0..rank).collect(),
    };
    let mut scale = vec![1.0f64; rank];
    let mut out = x.clone();
    match (input(sizes_at), input(scales_at)) {
        (Some(sizes), _) => {
            let s = floats_of(sizes)?;
            if s.len() != axes.len() {
                return Err(
                    cx.invalid(format!("sizes {s:?} must hold one value per axis {axes:?}"))
                );
            }
            let ratios = axes.iter().zip(&s).map(|(&a, &v)| v / x[a] as f64);
            let kept = match attr_s("keep_aspect_ratio_policy", "stretch").as_str() {
                "stretch" => None,
                "not_larger" => Some(ratios.fold(f64::INFINITY, f64::min)),
                "not_smaller" => Some(ratios.fold(0.0, f64::max)),
                other => {
                    return Err(cx.invalid(format!(
                        "keep_aspect_ratio_policy `{other}` is not one of stretch, not_larger, not_smaller"
                    )))
                }
            };
            for (&a, &v) in axes.iter().zip(&s) {
                (scale[a], out[a]) = match kept {
                    // The aspect kept: one scale for every axis, sizes rounded half up.
                    Some(r) => (r, (r * x[a] as f64 + 0.5) as usize),
                    None => (v / x[a] as f64, v as usize),
                };
            }
        }
        (None, Some(scales)) => {
            let s = floats_of(scales)?;
            if s.len() != axes.len() {
                return Err(cx.invalid(format!(
                    "scales {s:?} must hold one value per axis {axes:?}"
                )));
            }
            for (&a, &v) in axes.iter().zip(&s) {
                scale[a] = v;
                out[a] = (x[a] as f64 * v).floor() as usize;
            }
        }
        (None, None) => match attr(n, "scales").filter(|_| upsample) {
            // Upsample before opset 9: the scales as an attribute.
            Some(a) if a.floats.len() == rank => {
                for (d, &v) in a.floats.iter().enumerate() {
                    scale[d] = f64::from(v);
                    out[d] = (x[d] as f64 * f64::from(v)).floor() as usize;
                }
            }
            _ => return Err(cx.invalid("scales or sizes are required".into())),
        },
    }
    if out.contains(&0) {
        return Err(cx.invalid(format!("the output {out:?} would be empty")));
    }
    let antialias = attr_i(n, "antialias").unwrap_or(0) != 0;
    let default_transform = if upsample || cx.opset < 11 {
        "asymmetric"
    } else {
        "half_pixel"
    };
    let transform = attr_s("coordinate_transformation_mode", default_transform);
    // The crop of tf_crop_and_resize: `roi` holds the starts, then the ends, of `axes`.
    let mut crop: Vec<Option<(f64, f64, f32)>> = vec![None; rank];
    if transform == "tf_crop_and_resize" {
        let roi = input(1)
            .ok_or_else(|| cx.invalid("tf_crop_and_resize needs `roi`".into()))
            .and_then(floats_of)?;
        if roi.len() != 2 * axes.len() {
            return Err(cx.invalid(format!(
                "roi {roi:?} must hold a start and an end for each axis {axes:?}"
            )));
        }
        let value = attr_f(n, "extrapolation_value").unwrap_or(0.0);
        for (i, &a) in axes.iter().enumerate() {
            crop[a] = Some((roi[i], roi[axes.len() + i], value));
        }
        for a in (0..rank).filter(|a| !axes.contains(a)) {
            crop[a] = Some((0.0, 1.0, value));
        }
    }
    let resizing = |a: usize| AxisResize {
        mode: &transform,
        crop: crop[a],
    };
    let coordinate = |a: usize, i: usize| {
        resizing(a)
            .coordinate(i, x[a], scale[a], out[a])
            .map_err(|e| cx.invalid(e))
    };
    let mode = attr_s("mode", "nearest");
    let interpolation = match mode.as_str() {
        "nearest" if antialias => {
            return Err(cx.invalid("antialias=1 applies to linear and cubic, not nearest".into()))
        }
        "nearest" => None,
        "linear" => Some(Interpolation::Linear { antialias }),
        "cubic" => Some(Interpolation::Cubic {
            a: f64::from(attr_f(n, "cubic_coeff_a").unwrap_or(-0.75)),
            antialias,
        }),
        other => {
            return Err(cx.invalid(format!(
                "mode `{other}` is not supported (nearest, linear and cubic are)"
            )))
        }
    };
    let Some(interpolation) = interpolation else {
        let rounding = attr_s(
            "nearest_mode",
            if upsample || cx.opset < 11 {
                "floor"
            } else {
                "round_prefer_floor"
            },
        );
        let mut pick: Vec<Vec<Option<usize>>> = Vec::with_capacity(rank);
        for a in 0..rank {
            let mut v = Vec::with_capacity(out[a]);
            for i in 0..out[a] {
                let Some(c) = coordinate(a, i)? else {
                    v.push(None);
                    continue;
                };
                let r = match rounding.as_str() {
                    "round_prefer_floor" if c.fract() == 0.5 => c.floor(),
                    "round_prefer_floor" => c.round(),
                    "round_prefer_ceil" => (c + 0.5).floor(),
                    "floor" => c.floor(),
                    "ceil" => c.ceil(),
                    other => {
                        return Err(cx.invalid(format!("nearest_mode `{other}` is not supported")))
                    }
                };
                v.push(Some(r.clamp(0.0, x[a] as f64 - 1.0) as usize));
            }
            pick.push(v);
        }
        let index: Vec<Option<usize>> = (0..out.iter().product::<usize>())
            .map(|f| {
                let c: Option<Vec<usize>> = coords(f, &out)
                    .iter()
                    .enumerate()
                    .map(|(a, &i)| pick[a][i])
                    .collect();
                c.map(|c| flat(&c, &x))
            })
            .collect();
        let value = crop.iter().flatten().next().map_or(0.0, |c| c.2);
        return Ok(select_or_fill(cx, index, &cx.ins[0], out, value));
    };
    let exclude_outside = attr_i(n, "exclude_outside").unwrap_or(0) != 0;
    let mut y = cx.ins[0].clone();
    let mut shape = x.clone();
    let resized: Vec<usize> = (0..rank)
        .filter(|&a| {
            out[a] != x[a]
                || scale[a] != 1.0
                || crop[a].is_some_and(|(s, e, _)| (s, e) != (0.0, 1.0))
        })
        .collect();
    for &a in &resized {
        // Mᵀ [len, out]: column i holds output i's weights; outputs outside the crop
        // have none and take the extrapolation value.
        let (len, o) = (x[a], out[a]);
        let mut m = vec![0.0f32; len * o];
        let mut outside = vec![0.0f32; o];
        for i in 0..o {
            let Some(c) = coordinate(a, i)? else {
                outside[i] = resizing(a).extrapolation();
                continue;
            };
            let ratio = if c.fract() == 0.0 { 1.0 } else { c - c.floor() };
            let mut coefficients = interpolation.coefficients(ratio, scale[a]);
            let at = neighbours(c, coefficients.len());
            if exclude_outside {
                for (w, &j) in coefficients.iter_mut().zip(&at) {
                    if j < 0 || j >= len as i64 {
                        *w = 0.0;
                    }
                }
                let sum: f64 = coefficients.iter().sum();
                coefficients.iter_mut().for_each(|w| *w /= sum);
            }
            for (w, &j) in coefficients.iter().zip(&at) {
                let j = j.clamp(0, len as i64 - 1) as usize;
                m[j * o + i] += *w as f32;
            }
        }
        let matrix = cx.emit_constant(&format!("axis{a}"), Tensor::new(vec![len, o], m));
        let mut perm: Vec<usize> = (0..rank).filter(|&d| d != a).collect();
        perm.push(a);
        let moved: Vec<usize> = perm.iter().map(|&d| shape[d]).collect();
        let t = cx.emit(
            &format!("axis{a}_last"),
            Op::Transpose { perm: perm.clone() },
            vec![y],
            moved.clone(),
        );
        let mut product = moved.clone();
        product[rank - 1] = o;
        let mut p = cx.emit(
            &format!("axis{a}_resized"),
            Op::MatMul,
            vec![t, matrix],
            product.clone(),
        );
        if outside.iter().any(|&v| v != 0.0) {
            let bias = cx.emit_constant(&format!("axis{a}_outside"), Tensor::new(vec![o], outside));
            p = cx.emit(
                &format!("axis{a}_extrapolated"),
                Op::Add,
                vec![p, bias],
                product.clone(),
            );
        }
        let mut back = vec![0; rank];
        for (i, &d) in perm.iter().enumerate() {
            back[d] = i;
        }
        shape[a] = o;
        if Some(&a) == resized.last() {
            return Ok((Op::Transpose { perm: back }, vec![p], out));
        }
        y = cx.emit(
            &format!("axis{a}_back"),
            Op::Transpose { perm: back },
            vec![p],
            shape.clone(),
        );
    }
    Ok((Op::Identity, vec![y], out))
}
