//! Folding at import: BatchNormalization into the Conv before it, the erf form of GELU
//! into one function, shape arithmetic on integer constants, and nodes of float constants.

use super::*;

/// Fuses every GELU written out as `x · ½ · (1 + erf(x / √2))` (PyTorch's exact `gelu`
/// and BERT's, as exporters write them: `Div` by √2 or `Mul` by 1/√2, `Erf`, `Add` 1, and
/// two `Mul`s by `x` and ½ in any order) into one `Gelu`: one tabulated function where the
/// five ops took about nine element-wise rows an element, and one rounding instead of
/// four. Only chains whose intermediate tensors nothing else reads are fused.
pub(super) fn fuse_gelus(
    nodes: &mut Vec<Node>,
    constants: &BTreeMap<String, Tensor>,
    shapes: &mut BTreeMap<String, Vec<usize>>,
    graph_output: &str,
    notes: &mut Vec<String>,
) {
    let mut fused = 0;
    while let Some((result, x, gone)) = gelu_chain(nodes, constants, shapes, graph_output) {
        nodes[result].op = Op::Unary(zkinfer_qir::Func::Gelu { tanh: false });
        nodes[result].inputs = vec![x];
        let mut gone = gone;
        gone.sort_unstable();
        for i in gone.into_iter().rev() {
            let n = nodes.remove(i);
            shapes.remove(&n.output);
        }
        fused += 1;
    }
    if fused > 0 {
        notes.push(format!(
            "{fused} GELU(s) written as x·½·(1 + erf(x/√2)) fused into one function"
        ));
    }
}

/// The first fusable GELU chain: the index of its last node, its input `x`, and the
/// indices of its other nodes.
fn gelu_chain(
    nodes: &[Node],
    constants: &BTreeMap<String, Tensor>,
    shapes: &BTreeMap<String, Vec<usize>>,
    graph_output: &str,
) -> Option<(usize, String, Vec<usize>)> {
    let producer: BTreeMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.output.as_str(), i))
        .collect();
    // The one node reading `t` (none for the graph output or a tensor read twice).
    let only_reader = |t: &str| -> Option<usize> {
        if t == graph_output {
            return None;
        }
        let mut readers = nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.inputs.iter().any(|i| i == t));
        match (readers.next(), readers.next()) {
            (Some((i, n)), None) if n.inputs.iter().filter(|i| *i == t).count() == 1 => Some(i),
            _ => None,
        }
    };
    let scalar = |t: &str, value: f32| {
        constants
            .get(t)
            .is_some_and(|c| c.data.len() == 1 && (c.data[0] - value).abs() < 1e-4)
    };
    // The operand of a commutative binary node besides `t`.
    let other = |n: &Node, t: &str| -> Option<String> {
        match n.inputs.as_slice() {
            [a, b] if a == t => Some(b.clone()),
            [a, b] if b == t => Some(a.clone()),
            _ => None,
        }
    };
    let half = 0.5f32;
    let sqrt2 = std::f32::consts::SQRT_2;
    for (e, erf) in nodes.iter().enumerate() {
        if erf.op != Op::Unary(zkinfer_qir::Func::Erf) {
            continue;
        }
        let Some(&d) = erf.inputs.first().and_then(|i| producer.get(i.as_str())) else {
            continue;
        };
        let div = &nodes[d];
        let x = match (&div.op, div.inputs.as_slice()) {
            (Op::Div, [x, c]) if scalar(c, sqrt2) => x.clone(),
            (Op::Mul, [a, b]) if scalar(b, 1.0 / sqrt2) => a.clone(),
            (Op::Mul, [a, b]) if scalar(a, 1.0 / sqrt2) => b.clone(),
            _ => continue,
        };
        if only_reader(&div.output) != Some(e) {
            continue;
        }
        let Some(a) = only_reader(&erf.output) else {
            continue;
        };
        let add = &nodes[a];
        if add.op != Op::Add || !other(add, &erf.output).is_some_and(|c| scalar(&c, 1.0)) {
            continue;
        }
        let Some(m1) = only_reader(&add.output) else {
            continue;
        };
        let mul1 = &nodes[m1];
        if mul1.op != Op::Mul {
            continue;
        }
        let Some(factor) = other(mul1, &add.output) else {
            continue;
        };
        let mut gone = vec![d, e, a];
        let result = if factor == x {
            // (1 + erf) · x, then · ½.
            let Some(m2) = only_reader(&mul1.output) else {
                continue;
            };
            let mul2 = &nodes[m2];
            if mul2.op != Op::Mul || !other(mul2, &mul1.output).is_some_and(|c| scalar(&c, half)) {
                continue;
            }
            gone.push(m1);
            m2
        } else if scalar(&factor, half) {
            // (1 + erf) · ½, then · x.
            let Some(m2) = only_reader(&mul1.output) else {
                continue;
            };
            let mul2 = &nodes[m2];
            if mul2.op != Op::Mul || other(mul2, &mul1.output).as_ref() != Some(&x) {
                continue;
            }
            gone.push(m1);
            m2
        } else {
            // (x · ½) · (1 + erf).
            let Some(&h) = producer.get(factor.as_str()) else {
                continue;
            };
            let halved = &nodes[h];
            if halved.op != Op::Mul
                || other(halved, &x).is_none_or(|c| !scalar(&c, half))
                || only_reader(&halved.output) != Some(m1)
            {
                continue;
            }
            gone.push(h);
            m1
        };
        // `x` must not broadcast: the function keeps its shape.
        if shapes.get(&x) != shapes.get(&nodes[result].output) {
            continue;
        }
        return Some((result, x, gone));
    }
    None
}

/// Folds every BatchNormalization whose input is the output of a Conv with constant
/// weights (and bias), read by nothing else, into that Conv: `W'[o] = a[o] · W[o]`,
/// `b'[o] = a[o] · b[o] + c[o]` with the normalisation's affine `a · x + c`. The folded
/// model computes the same function with no element-wise rows for the normalisation.
pub(super) fn fold_batch_norms(
    nodes: &mut Vec<Node>,
    constants: &mut BTreeMap<String, Tensor>,
    shapes: &mut BTreeMap<String, Vec<usize>>,
    graph_output: &str,
    notes: &mut Vec<String>,
) {
    let mut i = 0;
    while i < nodes.len() {
        if let Some((conv, w, b)) = foldable(nodes, constants, graph_output, i) {
            let bn = nodes.remove(i);
            let conv = if conv > i { conv - 1 } else { conv };
            let w_name = format!("{}/folded_weight", bn.output);
            let b_name = format!("{}/folded_bias", bn.output);
            shapes.insert(w_name.clone(), w.shape.clone());
            shapes.insert(b_name.clone(), b.shape.clone());
            constants.insert(w_name.clone(), w);
            constants.insert(b_name.clone(), b);
            let c = &mut nodes[conv];
            shapes.remove(&c.output);
            c.inputs = vec![c.inputs[0].clone(), w_name, b_name];
            c.output = bn.output.clone();
            notes.push(format!(
                "folded BatchNormalization `{}` into Conv `{}`",
                bn.name, c.name
            ));
        } else {
            i += 1;
        }
    }
}

/// For a foldable BatchNormalization at `i`: its Conv's index and the folded weight and bias.
pub(super) fn foldable(
    nodes: &[Node],
    constants: &BTreeMap<String, Tensor>,
    graph_output: &str,
    i: usize,
) -> Option<(usize, Tensor, Tensor)> {
    let Op::BatchNormalization { epsilon } = nodes[i].op else {
        return None;
    };
    let src = &nodes[i].inputs[0];
    let readers = nodes.iter().filter(|n| n.inputs.contains(src)).count();
    if readers != 1 || src == graph_output {
        return None;
    }
    let conv = nodes
        .iter()
        .position(|n| &n.output == src && matches!(n.op, Op::Conv { .. }))?;
    let p = nodes[i].inputs[1..5]
        .iter()
        .map(|name| constants.get(name))
        .collect::<Option<Vec<_>>>()?;
    let (a, c) = crate::graph::batch_norm_affine(p[0], p[1], p[2], p[3], epsilon);
    let w = constants.get(nodes[conv].inputs.get(1)?)?;
    let cout = *w.shape.first()?;
    if a.len() != cout || c.len() != cout || cout == 0 {
        return None;
    }
    let bias = match nodes[conv].inputs.get(2) {
        Some(b) => constants.get(b)?.data.clone(),
        None => vec![0.0; cout],
    };
    if bias.len() != cout {
        return None;
    }
    let per = w.data.len() / cout;
    let weight = w
        .data
        .iter()
        .enumerate()
        .map(|(j, v)| v * a[j / per])
        .collect();
    let bias = (0..cout).map(|o| bias[o] * a[o] + c[o]).collect();
    Some((
        conv,
        Tensor::new(w.shape.clone(), weight),
        Tensor::new(vec![cout], bias),
    ))
}

/// `op` applied to integer constants (shaped `out`), if it moves elements or is integer
/// arithmetic, as exporters write shape computations (`x.size(1) // heads`); `None`
/// otherwise, or where it divides by zero or overflows.
pub(super) fn fold_ints(
    op: &Op,
    ints: &[&(Vec<usize>, Vec<i64>)],
    out: &[usize],
) -> Option<Vec<i64>> {
    let x = &ints.first()?.1;
    // Element-wise over the inputs broadcast to `out`.
    let broadcast = |f: &dyn Fn(i64, i64) -> Option<i64>| -> Option<Vec<i64>> {
        let at: Vec<Vec<usize>> = ints
            .iter()
            .map(|(shape, _)| crate::graph::broadcast_index(shape, out))
            .collect();
        (0..out.iter().product::<usize>())
            .map(|e| {
                let mut acc = ints[0].1[at[0][e]];
                for (k, (_, v)) in ints.iter().enumerate().skip(1) {
                    acc = f(acc, v[at[k][e]])?;
                }
                Some(acc)
            })
            .collect()
    };
    Some(match op {
        Op::Add | Op::Sum => broadcast(&|a, b| a.checked_add(b))?,
        Op::Sub => broadcast(&|a, b| a.checked_sub(b))?,
        Op::Mul => broadcast(&|a, b| a.checked_mul(b))?,
        // Truncating, as ONNX's Div on integers.
        Op::IntDiv => broadcast(&|a, b| a.checked_div(b))?,
        Op::Max => broadcast(&|a, b| Some(a.max(b)))?,
        Op::Min => broadcast(&|a, b| Some(a.min(b)))?,
        Op::Neg => x.iter().map(|v| v.checked_neg()).collect::<Option<_>>()?,
        Op::Reshape | Op::Identity => x.clone(),
        Op::Select { index } => index.iter().map(|j| j.map_or(0, |j| x[j])).collect(),
        Op::Concat { index } => index
            .iter()
            .map(|at| at.map_or(0, |(k, j)| ints[k].1[j]))
            .collect(),
        Op::Transpose { perm } => crate::graph::transpose_index(&ints[0].0, perm)
            .into_iter()
            .map(|j| x[j])
            .collect(),
        _ => return None,
    })
}

/// Pushes `node` onto `nodes`, or, where its inputs are all float constants (a `Sqrt`
/// of a constant head size, a `Cast` of a constant epsilon, as exporters write them),
/// evaluates it with the float interpreter and makes its output a constant: the nodes
/// imported after it then see a constant operand where they take one, and no rows are
/// spent on it.
pub(super) fn push_or_fold(
    node: Node,
    nodes: &mut Vec<Node>,
    constants: &mut BTreeMap<String, Tensor>,
    shapes: &BTreeMap<String, Vec<usize>>,
    folded: &mut usize,
) -> Result<(), CompileError> {
    if !node.inputs.iter().all(|i| constants.contains_key(i)) {
        nodes.push(node);
        return Ok(());
    }
    const NOTHING: &str = "\u{0}constant folding";
    // A graph of this one node, its constants, and an input it does not read.
    let mut sub_shapes: BTreeMap<String, Vec<usize>> = node
        .inputs
        .iter()
        .chain([&node.output])
        .filter_map(|t| shapes.get(t).map(|s| (t.clone(), s.clone())))
        .collect();
    sub_shapes.insert(NOTHING.into(), vec![1]);
    let graph = Graph {
        name: node.name.clone(),
        input: NOTHING.into(),
        output: node.output.clone(),
        inputs: vec![zkinfer_qir::Part {
            name: NOTHING.into(),
            shape: vec![1],
            integer: false,
        }],
        outputs: Vec::new(),
        constants: node
            .inputs
            .iter()
            .map(|i| (i.clone(), constants[i].clone()))
            .collect(),
        nodes: vec![node.clone()],
        shapes: sub_shapes,
    };
    let value =
        graph
            .run(&[0.0])?
            .remove(&node.output)
            .ok_or_else(|| CompileError::InvalidNode {
                node: node.name.clone(),
                op: node.op.name().into(),
                reason: "its constant inputs gave no output".into(),
            })?;
    if let Some(v) = value.data.iter().find(|v| !v.is_finite()) {
        return Err(CompileError::InvalidNode {
            node: node.name.clone(),
            op: node.op.name().into(),
            reason: format!("its constant inputs give {v}, not a finite number"),
        });
    }
    constants.insert(node.output, value);
    *folded += 1;
    Ok(())
}
