//! Folding at import: BatchNormalization into the Conv before it, and shape arithmetic
//! on integer constants.

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

/// `op` applied to integer constants, if it only moves elements.
pub(super) fn fold_ints(op: &Op, ints: &[&(Vec<usize>, Vec<i64>)]) -> Option<Vec<i64>> {
    let x = &ints.first()?.1;
    Some(match op {
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
