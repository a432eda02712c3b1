//! ONNX-ML ops (domain `ai.onnx.ml`) as scikit-learn (skl2onnx), XGBoost and LightGBM
//! exports hold them, lowered to ops of the float graph, so each is proven by the
//! arguments those ops already have:
//!
//! - a tree ensemble is comparisons of features with thresholds (one bit each, proven
//!   by a lookup on the difference), for every root-to-leaf path the count of its steps
//!   the input did *not* take (a sum of the path's literals, gathered without rows; zero
//!   exactly on the path reached), a zero test of those counts, and a matrix product of
//!   the reached-path indicators with the leaves' weights; no traversal is claimed,
//!   every bit is constrained;
//! - a linear classifier or regressor is a `Gemm` and its post transform; the label is
//!   the argmax of the scores, mapped through the class labels by a one-hot product.

use std::collections::BTreeMap;

use zkinfer_qir::Func;

use super::super::*;
use super::{Lowered, NodeCx};

/// Op types of the `ai.onnx.ml` domain with an importer.
pub(in crate::import) const ML_OPS: &[&str] = &[
    "ArrayFeatureExtractor",
    "LinearClassifier",
    "LinearRegressor",
    "Normalizer",
    "TreeEnsembleClassifier",
    "TreeEnsembleRegressor",
];

fn floats<'a>(n: &'a pb::NodeProto, name: &str) -> &'a [f32] {
    attr(n, name).map_or(&[], |a| a.floats.as_slice())
}

fn ints<'a>(n: &'a pb::NodeProto, name: &str) -> &'a [i64] {
    attr_ints(n, name).unwrap_or(&[])
}

fn string(n: &pb::NodeProto, name: &str) -> Option<String> {
    attr(n, name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

fn strings(n: &pb::NodeProto, name: &str) -> Vec<String> {
    attr(n, name).map_or(Vec::new(), |a| {
        a.strings
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    })
}

/// The batch of feature vectors an ML op reads: `[N, F]` (a `[F]` vector is one sample).
fn features(cx: &NodeCx<'_>) -> Result<(String, usize, usize), CompileError> {
    let x = &cx.ins[0];
    match cx.shape_of(x)?.as_slice() {
        &[n, f] => Ok((x.clone(), n, f)),
        &[f] => Ok((
            cx.emit("as_batch", Op::Reshape, vec![x.clone()], vec![1, f]),
            1,
            f,
        )),
        s => Err(cx.invalid(format!(
            "X must be [N, F] (a batch of feature vectors), got {s:?}"
        ))),
    }
}

/// Integer class labels (`classlabels_int64s` / `classlabels_ints`): string labels have
/// no number to prove.
fn class_labels(cx: &NodeCx<'_>, ints_name: &str) -> Result<Vec<i64>, CompileError> {
    let labels = ints(cx.n, ints_name);
    if labels.is_empty() {
        let s = strings(cx.n, "classlabels_strings");
        return Err(cx.invalid(if s.is_empty() {
            format!("`{ints_name}` is missing")
        } else {
            format!(
                "string class labels ({}) are not supported: a circuit proves numbers; \
                 export with integer labels",
                s.len()
            )
        }));
    }
    Ok(labels.to_vec())
}

fn gemm_op() -> Op {
    Op::Gemm(Gemm {
        alpha: 1.0,
        beta: 1.0,
        trans_a: false,
        trans_b: false,
    })
}

/// `table[idx]` for a computed integer `idx` (any shape) and a constant table: a one-hot
/// of `idx` (a zero test of `idx − j` for every `j`) times the table. The last op is
/// returned, the others emitted under `tag`.
fn lookup(cx: &NodeCx<'_>, idx: String, shape: Vec<usize>, table: &[f32], tag: &str) -> Lowered {
    let m: usize = shape.iter().product();
    let k = table.len();
    let flat = cx.emit(&format!("{tag}_column"), Op::Reshape, vec![idx], vec![m, 1]);
    let js = cx.emit_constant(
        &format!("{tag}_positions"),
        Tensor::new(vec![k], (0..k).map(|j| j as f32).collect()),
    );
    let diff = cx.emit(&format!("{tag}_diff"), Op::Sub, vec![flat, js], vec![m, k]);
    let hot = cx.emit(
        &format!("{tag}_one_hot"),
        Op::Unary(Func::IsZero),
        vec![diff],
        vec![m, k],
    );
    let t = cx.emit_constant(
        &format!("{tag}_table"),
        Tensor::new(vec![k, 1], table.to_vec()),
    );
    let picked = cx.emit(
        &format!("{tag}_picked"),
        gemm_op(),
        vec![hot, t],
        vec![m, 1],
    );
    (Op::Reshape, vec![picked], shape)
}

/// The label of each row of `scores` `[N, K]`: the class label at its argmax (the
/// first on ties, as ONNX Runtime does).
fn label_of(cx: &NodeCx<'_>, scores: String, n: usize, labels: &[i64]) -> Lowered {
    let argmax = Op::ArgExtreme {
        axis: 1,
        max: true,
        last: false,
    };
    if labels.iter().enumerate().all(|(j, &l)| l == j as i64) {
        return (argmax, vec![scores], vec![n]);
    }
    let idx = cx.emit("argmax", argmax, vec![scores], vec![n]);
    let table: Vec<f32> = labels.iter().map(|&l| l as f32).collect();
    lookup(cx, idx, vec![n], &table, "label")
}

/// A post transform of raw scores `[N, K]`.
fn post_transform(
    cx: &NodeCx<'_>,
    scores: String,
    shape: Vec<usize>,
) -> Result<String, CompileError> {
    match string(cx.n, "post_transform").as_deref().unwrap_or("NONE") {
        "NONE" => Ok(scores),
        "LOGISTIC" => Ok(cx.emit("logistic", Op::Unary(Func::Sigmoid), vec![scores], shape)),
        "SOFTMAX" => Ok(cx.emit("softmax", Op::Softmax, vec![scores], shape)),
        other => Err(cx.invalid(format!(
            "post_transform {other} is not supported (NONE, LOGISTIC and SOFTMAX are)"
        ))),
    }
}

/// Emits the scores output (`output[1]`) of a classifier, if the graph reads it.
fn scores_output(cx: &NodeCx<'_>, scores: String, shape: Vec<usize>) {
    if let Some(name) = cx.n.output.get(1).filter(|s| !s.is_empty()) {
        cx.emit_output(name, Op::Identity, vec![scores], shape);
    }
}

/// `ArrayFeatureExtractor(X, Y)`: `X[..., Y]` along X's last axis. Constant indices
/// are an element map; computed indices into a constant vector (a classifier's labels)
/// a one-hot lookup.
pub(super) fn import_array_feature_extractor(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    cx.arity(2, 2)?;
    let (x, y) = (&cx.ins[0], &cx.ins[1]);
    let xs = cx.shape_of(x)?;
    let ys = cx.shape_of(y)?;
    let Some(&last) = xs.last() else {
        return Err(cx.invalid("X must have at least one axis".into()));
    };
    let out: Vec<usize> = xs[..xs.len() - 1].iter().chain(&ys).copied().collect();
    if let Some((_, idx)) = cx.int_constants.get(y) {
        let mut pick = Vec::with_capacity(idx.len());
        for &i in idx {
            let j = usize::try_from(i)
                .ok()
                .filter(|&j| j < last)
                .ok_or_else(|| cx.invalid(format!("index {i} out of range for {last}")))?;
            pick.push(j);
        }
        let rows: usize = xs[..xs.len() - 1].iter().product();
        let index = (0..rows)
            .flat_map(|r| pick.iter().map(move |&j| Some(r * last + j)))
            .collect();
        return Ok((Op::Select { index }, vec![x.clone()], out));
    }
    let table: Vec<f32> = if let Some((_, v)) = cx.int_constants.get(x) {
        v.iter().map(|&v| v as f32).collect()
    } else if let Some(t) = cx.constants.get(x) {
        t.data.clone()
    } else {
        return Err(cx.invalid(
            "X and the indices Y are both computed: only constant indices, or computed \
             indices into a constant X, are supported"
                .into(),
        ));
    };
    if xs.len() != 1 {
        return Err(cx.invalid(format!(
            "computed indices into a constant X of shape {xs:?}: X must be a vector"
        )));
    }
    if !cx.is_integer(y) {
        return Err(cx.invalid(format!("the indices `{y}` must be integers")));
    }
    Ok(lookup(cx, y.clone(), out, &table, "lookup"))
}

/// `LinearClassifier`: scores `X · Cᵀ + intercepts` and their post transform; the label
/// is the class at the argmax of the raw scores (the post transforms are monotone).
pub(super) fn import_linear_classifier(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    cx.arity(1, 1)?;
    let labels = class_labels(cx, "classlabels_ints")?;
    let (x, n, f) = features(cx)?;
    let k = labels.len();
    let coef = floats(cx.n, "coefficients");
    if coef.len() != k * f {
        let hint = if coef.len() == f && k == 2 {
            " (one row for two classes: the binary layout, where ONNX Runtime derives the \
             second class's score; export both rows)"
        } else {
            ""
        };
        return Err(cx.invalid(format!(
            "{} coefficients for {k} classes × {f} features{hint}",
            coef.len()
        )));
    }
    let raw = linear_scores(cx, x, n, f, k, coef, floats(cx.n, "intercepts"))?;
    let scores = post_transform(cx, raw.clone(), vec![n, k])?;
    scores_output(cx, scores, vec![n, k]);
    Ok(label_of(cx, raw, n, &labels))
}

/// `LinearRegressor`: `X · Cᵀ + intercepts` for `targets` outputs.
pub(super) fn import_linear_regressor(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    cx.arity(1, 1)?;
    let (x, n, f) = features(cx)?;
    let t = usize::try_from(attr_i(cx.n, "targets").unwrap_or(1))
        .ok()
        .filter(|&t| t > 0)
        .ok_or_else(|| cx.invalid("`targets` must be positive".into()))?;
    let coef = floats(cx.n, "coefficients");
    if coef.len() != t * f {
        return Err(cx.invalid(format!(
            "{} coefficients for {t} targets × {f} features",
            coef.len()
        )));
    }
    if string(cx.n, "post_transform").is_some_and(|p| p != "NONE") {
        return Err(cx.invalid("a regressor's post_transform must be NONE".into()));
    }
    let raw = linear_scores(cx, x, n, f, t, coef, floats(cx.n, "intercepts"))?;
    Ok((Op::Identity, vec![raw], vec![n, t]))
}

/// Emits `X [N, F] · coefᵀ + intercepts` (`coef` row-major `[K, F]`).
fn linear_scores(
    cx: &NodeCx<'_>,
    x: String,
    n: usize,
    f: usize,
    k: usize,
    coef: &[f32],
    intercepts: &[f32],
) -> Result<String, CompileError> {
    if !intercepts.is_empty() && intercepts.len() != k {
        return Err(cx.invalid(format!("{} intercepts for {k} outputs", intercepts.len())));
    }
    let w: Vec<f32> = (0..f * k).map(|i| coef[(i % k) * f + i / k]).collect();
    let w = cx.emit_constant("coefficients", Tensor::new(vec![f, k], w));
    let mut ins = vec![x, w];
    if !intercepts.is_empty() {
        ins.push(cx.emit_constant("intercepts", Tensor::new(vec![k], intercepts.to_vec())));
    }
    Ok(cx.emit("scores", gemm_op(), ins, vec![n, k]))
}

/// `Normalizer` (`L1`, `L2`): each row divided by its norm.
pub(super) fn import_normalizer(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    cx.arity(1, 1)?;
    let (x, n, c) = features(cx)?;
    let norm = string(cx.n, "norm").unwrap_or_else(|| "MAX".into());
    let (index, len, _) = reduce_index(&[n, c], &[1], true);
    let reduce = Op::Reduce {
        index,
        len,
        mean: false,
    };
    let norm_of = match norm.as_str() {
        "L1" => {
            let a = cx.emit("abs", Op::Unary(Func::Abs), vec![x.clone()], vec![n, c]);
            cx.emit("l1", reduce, vec![a], vec![n, 1])
        }
        "L2" => {
            let sq = cx.emit("square", Op::Mul, vec![x.clone(), x.clone()], vec![n, c]);
            let s = cx.emit("sum_of_squares", reduce, vec![sq], vec![n, 1]);
            cx.emit("l2", Op::Unary(Func::Sqrt), vec![s], vec![n, 1])
        }
        other => return Err(cx.invalid(format!("norm {other} is not supported (L1 and L2 are)"))),
    };
    let inv = cx.emit(
        "inverse",
        Op::Unary(Func::Reciprocal),
        vec![norm_of],
        vec![n, 1],
    );
    Ok((Op::Mul, vec![x, inv], vec![n, c]))
}

/// A branch of a tree: its feature, threshold and comparison.
struct Branch {
    feature: usize,
    threshold: f32,
    mode: Mode,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Mode {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
}

/// One root-to-leaf path: the branches it passes with the side it takes (`true`: the
/// comparison holds), and the leaf's weights by output.
struct Path {
    steps: Vec<(usize, bool)>,
    weights: BTreeMap<usize, f32>,
}

/// `TreeEnsembleClassifier` and `TreeEnsembleRegressor` (attributes as in ONNX-ML
/// opset 1–3 with `nodes_values`; leaves' weights summed, or averaged for a regressor
/// with `aggregate_function` AVERAGE).
pub(super) fn import_tree_ensemble(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    cx.arity(1, 1)?;
    let node = cx.n;
    let classifier = node.op_type == "TreeEnsembleClassifier";
    let (x, n, f) = features(cx)?;
    let pre = if classifier { "class" } else { "target" };
    let labels = if classifier {
        class_labels(cx, "classlabels_int64s")?
    } else {
        Vec::new()
    };
    let outputs = if classifier {
        labels.len()
    } else {
        usize::try_from(attr_i(node, "n_targets").unwrap_or(1))
            .ok()
            .filter(|&t| t > 0)
            .ok_or_else(|| cx.invalid("`n_targets` must be positive".into()))?
    };
    if attr(node, "nodes_values_as_tensor").is_some()
        || attr(node, "base_values_as_tensor").is_some()
    {
        return Err(cx.invalid(
            "double-precision `*_as_tensor` attributes are not supported (nodes_values and \
             base_values are)"
                .into(),
        ));
    }
    let tree_ids = ints(node, "nodes_treeids");
    let node_ids = ints(node, "nodes_nodeids");
    let feature_ids = ints(node, "nodes_featureids");
    let modes = strings(node, "nodes_modes");
    let values = floats(node, "nodes_values");
    let true_ids = ints(node, "nodes_truenodeids");
    let false_ids = ints(node, "nodes_falsenodeids");
    let count = tree_ids.len();
    let lens = [
        ("nodes_nodeids", node_ids.len()),
        ("nodes_featureids", feature_ids.len()),
        ("nodes_modes", modes.len()),
        ("nodes_values", values.len()),
        ("nodes_truenodeids", true_ids.len()),
        ("nodes_falsenodeids", false_ids.len()),
    ];
    if count == 0 {
        return Err(cx.invalid("`nodes_treeids` is empty: no tree".into()));
    }
    if let Some((name, len)) = lens.iter().find(|(_, l)| *l != count) {
        return Err(cx.invalid(format!(
            "`{name}` has {len} entries, `nodes_treeids` {count}"
        )));
    }
    let leaf_tree = ints(node, &format!("{pre}_treeids"));
    let leaf_node = ints(node, &format!("{pre}_nodeids"));
    let leaf_out = ints(node, &format!("{pre}_ids"));
    let leaf_weight = floats(node, &format!("{pre}_weights"));
    let nl = leaf_tree.len();
    if [leaf_node.len(), leaf_out.len(), leaf_weight.len()] != [nl; 3] {
        return Err(cx.invalid(format!(
            "`{pre}_treeids`, `{pre}_nodeids`, `{pre}_ids` and `{pre}_weights` differ in length"
        )));
    }
    let at: BTreeMap<(i64, i64), usize> = (0..count)
        .map(|i| ((tree_ids[i], node_ids[i]), i))
        .collect();
    if at.len() != count {
        return Err(cx.invalid("a (tree, node) id appears twice".into()));
    }
    let mut leaf_weights: BTreeMap<(i64, i64), BTreeMap<usize, f32>> = BTreeMap::new();
    for j in 0..nl {
        let key = (leaf_tree[j], leaf_node[j]);
        let out = usize::try_from(leaf_out[j])
            .ok()
            .filter(|&o| o < outputs)
            .ok_or_else(|| {
                cx.invalid(format!(
                    "`{pre}_ids` entry {j} is {}, outside 0..{outputs}",
                    leaf_out[j]
                ))
            })?;
        match at.get(&key) {
            Some(&i) if modes[i] == "LEAF" => {
                *leaf_weights.entry(key).or_default().entry(out).or_default() += leaf_weight[j];
            }
            _ => {
                return Err(cx.invalid(format!(
                    "`{pre}_nodeids` entry {j} (tree {}, node {}) is not a LEAF node",
                    key.0, key.1
                )))
            }
        }
    }
    if classifier && outputs == 2 && leaf_out.iter().all(|&o| o == leaf_out[0]) {
        return Err(cx.invalid(
            "binary classifier with the weights of one class only (ONNX Runtime derives \
             the other class's score): not supported; export the weights of both classes"
                .into(),
        ));
    }

    // Branches by (tree, node), and every root-to-leaf path of every tree.
    let mut branches: Vec<Branch> = Vec::new();
    let mut branch_of: BTreeMap<usize, usize> = BTreeMap::new();
    for i in 0..count {
        let mode = match modes[i].as_str() {
            "LEAF" => continue,
            "BRANCH_LEQ" => Mode::Leq,
            "BRANCH_LT" => Mode::Lt,
            "BRANCH_GTE" => Mode::Gte,
            "BRANCH_GT" => Mode::Gt,
            "BRANCH_EQ" => Mode::Eq,
            "BRANCH_NEQ" => Mode::Neq,
            other => return Err(cx.invalid(format!("node mode `{other}` is unknown"))),
        };
        let feature = usize::try_from(feature_ids[i])
            .ok()
            .filter(|&j| j < f)
            .ok_or_else(|| {
                cx.invalid(format!(
                    "node {} of tree {} reads feature {} of {f}",
                    node_ids[i], tree_ids[i], feature_ids[i]
                ))
            })?;
        branch_of.insert(i, branches.len());
        branches.push(Branch {
            feature,
            threshold: values[i],
            mode,
        });
    }
    let mut trees: Vec<i64> = tree_ids.to_vec();
    trees.sort_unstable();
    trees.dedup();
    let mut paths: Vec<Path> = Vec::new();
    for &t in &trees {
        let children: Vec<i64> = (0..count)
            .filter(|&i| tree_ids[i] == t && modes[i] != "LEAF")
            .flat_map(|i| [true_ids[i], false_ids[i]])
            .collect();
        let roots: Vec<i64> = (0..count)
            .filter(|&i| tree_ids[i] == t && !children.contains(&node_ids[i]))
            .map(|i| node_ids[i])
            .collect();
        let [root] = roots.as_slice() else {
            return Err(cx.invalid(format!(
                "tree {t} has {} roots (nodes no branch leads to), expected one",
                roots.len()
            )));
        };
        let size = (0..count).filter(|&i| tree_ids[i] == t).count();
        let mut stack = vec![(*root, Vec::new())];
        while let Some((id, steps)) = stack.pop() {
            let i = *at.get(&(t, id)).ok_or_else(|| {
                cx.invalid(format!("tree {t} leads to node {id}, which is not defined"))
            })?;
            if steps.len() > size {
                return Err(cx.invalid(format!("tree {t} has a cycle through node {id}")));
            }
            match branch_of.get(&i) {
                None => paths.push(Path {
                    weights: leaf_weights.get(&(t, id)).cloned().unwrap_or_default(),
                    steps,
                }),
                Some(&b) => {
                    for (side, next) in [(true, true_ids[i]), (false, false_ids[i])] {
                        let mut s = steps.clone();
                        s.push((b, side));
                        stack.push((next, s));
                    }
                }
            }
        }
    }
    let l = paths.len();

    // The comparison bits `[N, B]`, grouped by mode: a selection of the features, their
    // difference with the thresholds and a tabulated sign test.
    let mut order: Vec<usize> = (0..branches.len()).collect();
    order.sort_by_key(|&b| branches[b].mode);
    let mut position = vec![0; branches.len()];
    for (p, &b) in order.iter().enumerate() {
        position[b] = p;
    }
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for mode in [
        Mode::Leq,
        Mode::Lt,
        Mode::Gte,
        Mode::Gt,
        Mode::Eq,
        Mode::Neq,
    ] {
        let members: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&b| branches[b].mode == mode)
            .collect();
        if members.is_empty() {
            continue;
        }
        let g = members.len();
        let tag = format!("{mode:?}").to_lowercase();
        let index = (0..n)
            .flat_map(|r| members.iter().map(move |&b| (r, b)))
            .map(|(r, b)| Some(r * f + branches[b].feature))
            .collect();
        let picked = cx.emit(
            &format!("{tag}_features"),
            Op::Select { index },
            vec![x.clone()],
            vec![n, g],
        );
        let thresholds = cx.emit_constant(
            &format!("{tag}_thresholds"),
            Tensor::new(
                vec![g],
                members.iter().map(|&b| branches[b].threshold).collect(),
            ),
        );
        // x ≤ t ⇔ t − x ≥ 0; x < t ⇔ x − t < 0; x ≥ t ⇔ x − t ≥ 0; x > t ⇔ t − x < 0.
        let (operands, func) = match mode {
            Mode::Leq => ([thresholds, picked], Func::NonNegative),
            Mode::Lt => ([picked, thresholds], Func::Negative),
            Mode::Gte => ([picked, thresholds], Func::NonNegative),
            Mode::Gt => ([thresholds, picked], Func::Negative),
            Mode::Eq => ([picked, thresholds], Func::IsZero),
            Mode::Neq => ([picked, thresholds], Func::NonZero),
        };
        let diff = cx.emit(
            &format!("{tag}_diff"),
            Op::Sub,
            operands.to_vec(),
            vec![n, g],
        );
        let bits = cx.emit(
            &format!("{tag}_bits"),
            Op::Unary(func),
            vec![diff],
            vec![n, g],
        );
        groups.push((bits, members));
    }
    let bits = match groups.as_slice() {
        [] => None,
        [(one, _)] => Some(one.clone()),
        _ => {
            let shapes: Vec<Vec<usize>> = groups.iter().map(|(_, m)| vec![n, m.len()]).collect();
            let (index, shape) = concat_index(&shapes, 1).map_err(|e| cx.invalid(e))?;
            let ins = groups.iter().map(|(g, _)| g.clone()).collect();
            Some(cx.emit("bits", Op::Concat { index }, ins, shape))
        }
    };

    // Missed branches per path: the sum, over its steps, of the literal it needs false
    // (1 − bit where it takes the true side, the bit where it takes the false side);
    // zero exactly on the path taken. The literals are gathered per path (no rows) and
    // summed: work ∝ paths × depth, not branches × paths.
    let Some(bits) = bits else {
        return Err(cx.invalid(
            "every tree is a single leaf: the output does not depend on the input".into(),
        ));
    };
    let b = branches.len();
    let one = cx.emit_constant("one", Tensor::new(vec![], vec![1.0]));
    let nots = cx.emit("not_bits", Op::Sub, vec![one, bits.clone()], vec![n, b]);
    let (index, shape) = concat_index(&[vec![n, b], vec![n, b]], 1).map_err(|e| cx.invalid(e))?;
    let literals = cx.emit("literals", Op::Concat { index }, vec![bits, nots], shape);
    let depth = paths
        .iter()
        .map(|p| p.steps.len())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut index = Vec::with_capacity(n * l * depth);
    for r in 0..n {
        for p in &paths {
            for d in 0..depth {
                // The true side is missed when the bit is 0: it reads 1 − bit.
                index.push(
                    p.steps
                        .get(d)
                        .map(|&(br, side)| r * 2 * b + position[br] + if side { b } else { 0 }),
                );
            }
        }
    }
    let on_path = cx.emit(
        "path_literals",
        Op::Select { index },
        vec![literals],
        vec![n, l, depth],
    );
    let sum = Op::Reduce {
        index: (0..n * l * depth).collect(),
        len: depth,
        mean: false,
    };
    let missed = cx.emit("missed", sum, vec![on_path], vec![n, l]);
    let reached = cx.emit("reached", Op::Unary(Func::IsZero), vec![missed], vec![n, l]);

    // Scores: reached paths times their leaves' weights, plus the base values.
    let average = !classifier
        && string(node, "aggregate_function")
            .as_deref()
            .unwrap_or("SUM")
            != "SUM";
    if average && string(node, "aggregate_function").as_deref() != Some("AVERAGE") {
        return Err(cx.invalid(
            "aggregate_function MIN and MAX are not supported (SUM and AVERAGE are)".into(),
        ));
    }
    let per = if average { trees.len() as f32 } else { 1.0 };
    let mut v = vec![0f32; l * outputs];
    for (p, path) in paths.iter().enumerate() {
        for (&o, &wt) in &path.weights {
            v[p * outputs + o] = wt / per;
        }
    }
    let base = floats(node, "base_values");
    if !base.is_empty() && base.len() != outputs {
        return Err(cx.invalid(format!("{} base_values for {outputs} outputs", base.len())));
    }
    let mut ins = vec![
        reached,
        cx.emit_constant("leaf_weights", Tensor::new(vec![l, outputs], v)),
    ];
    if !base.is_empty() {
        ins.push(cx.emit_constant("base_values", Tensor::new(vec![outputs], base.to_vec())));
    }
    let raw = cx.emit("raw_scores", gemm_op(), ins, vec![n, outputs]);
    let scores = post_transform(cx, raw.clone(), vec![n, outputs])?;
    if !classifier {
        return Ok((Op::Identity, vec![scores], vec![n, outputs]));
    }
    scores_output(cx, scores, vec![n, outputs]);
    Ok(label_of(cx, raw, n, &labels))
}
