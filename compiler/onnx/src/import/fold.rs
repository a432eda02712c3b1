//! Folding at import: BatchNormalization into the Conv before it, shape arithmetic on
//! integer constants, and nodes of float constants.

use super::*;

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
