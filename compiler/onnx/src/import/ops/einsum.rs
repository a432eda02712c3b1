//! `Einsum` of one or two operands, lowered to what is already proven: a label repeated
//! in one operand (a diagonal) or summed in one operand only is an element map or a
//! reduction of it; two operands are a batched `MatMul` between transposes and reshapes
//! (which cost no rows).

use super::super::*;
use super::{Lowered, NodeCx};

/// A dimension's label: a letter, or (`ELLIPSIS + k`) the `k`-th dimension an ellipsis
/// stands for, counted from the right.
type Label = u32;
const ELLIPSIS: Label = 1 << 16;

/// The labels of one term of the equation, its ellipsis expanded to `rank` dimensions.
fn labels(term: &str, rank: Option<usize>) -> Result<Vec<Label>, String> {
    let (before, after) = match term.split_once("...") {
        Some((b, a)) => (b, Some(a)),
        None => (term, None),
    };
    let letters = |s: &str| -> Result<Vec<Label>, String> {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphabetic() {
                    Ok(c as Label)
                } else {
                    Err(format!("`{c}` is not a label (a letter or `...`)"))
                }
            })
            .collect()
    };
    let mut v = letters(before)?;
    if let Some(after) = after {
        let after = letters(after)?;
        let named = v.len() + after.len();
        let dots = match rank {
            Some(r) if r >= named => r - named,
            Some(r) => return Err(format!("`{term}` names more dimensions than its rank {r}")),
            None => 0,
        };
        v.extend((0..dots).rev().map(|k| ELLIPSIS + k as Label));
        v.extend(after);
    }
    Ok(v)
}

/// The strides of a row-major `shape`.
fn strides(shape: &[usize]) -> Vec<usize> {
    (0..shape.len())
        .map(|d| shape[d + 1..].iter().product())
        .collect()
}

/// `x` (labelled `ls`, shaped `shape`) with each label once, in first-appearance order,
/// keeping those in `keep` and summing the others (a repeated label takes the diagonal).
/// Unchanged where there is nothing to do.
fn reduce_operand(
    cx: &NodeCx<'_>,
    x: &str,
    ls: &[Label],
    size: &BTreeMap<Label, usize>,
    keep: &[Label],
    tag: &str,
) -> (String, Vec<Label>) {
    let mut unique: Vec<Label> = Vec::new();
    for &l in ls {
        if !unique.contains(&l) {
            unique.push(l);
        }
    }
    let (kept, summed): (Vec<Label>, Vec<Label>) = unique.iter().partition(|l| keep.contains(l));
    if summed.is_empty() && unique.len() == ls.len() {
        return (x.to_owned(), ls.to_vec());
    }
    let shape: Vec<usize> = ls.iter().map(|l| size[l]).collect();
    let st = strides(&shape);
    let out: Vec<usize> = kept.iter().map(|l| size[l]).collect();
    let sums: Vec<usize> = summed.iter().map(|l| size[l]).collect();
    let (n_out, len) = (
        out.iter().product::<usize>(),
        sums.iter().product::<usize>(),
    );
    let coords = |mut f: usize, dims: &[usize]| {
        let mut c = vec![0; dims.len()];
        for d in (0..dims.len()).rev() {
            c[d] = f % dims[d];
            f /= dims[d];
        }
        c
    };
    let mut index = Vec::with_capacity(n_out * len);
    for o in 0..n_out {
        let oc = coords(o, &out);
        for s in 0..len {
            let sc = coords(s, &sums);
            let at = |l: &Label| match kept.iter().position(|k| k == l) {
                Some(p) => oc[p],
                None => sc[summed.iter().position(|k| k == l).unwrap_or(0)],
            };
            index.push(ls.iter().zip(&st).map(|(l, s)| at(l) * s).sum::<usize>());
        }
    }
    let name = if len == 1 {
        let index = index.into_iter().map(Some).collect();
        cx.emit(tag, Op::Select { index }, vec![x.to_owned()], out)
    } else {
        let reduce = Op::Reduce {
            index,
            len,
            mean: false,
        };
        cx.emit(tag, reduce, vec![x.to_owned()], out)
    };
    (name, kept)
}

/// `x` (labelled `ls`) transposed to `order` (a permutation of `ls`), if it is not in it.
fn arranged(
    cx: &NodeCx<'_>,
    x: String,
    ls: &[Label],
    order: &[Label],
    size: &BTreeMap<Label, usize>,
    tag: &str,
) -> String {
    if ls == order {
        return x;
    }
    let perm: Vec<usize> = order
        .iter()
        .map(|l| ls.iter().position(|k| k == l).unwrap_or(0))
        .collect();
    let shape = order.iter().map(|l| size[l]).collect();
    cx.emit(tag, Op::Transpose { perm }, vec![x], shape)
}

/// `Einsum` (`equation`, explicit or implicit output, `...`): one operand is summed,
/// transposed or its diagonal taken; two are contracted by a batched `MatMul`.
pub(super) fn import_einsum(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let equation: String = attr(cx.n, "equation")
        .map(|a| String::from_utf8_lossy(&a.s).into_owned())
        .ok_or_else(|| cx.invalid("the `equation` attribute is required".into()))?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let (lhs, rhs) = match equation.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (equation.as_str(), None),
    };
    let terms: Vec<&str> = lhs.split(',').collect();
    if terms.len() != cx.ins.len() || !(1..=2).contains(&terms.len()) {
        return Err(cx.invalid(format!(
            "`{equation}` has {} operands and the node {}; one or two are supported",
            terms.len(),
            cx.ins.len()
        )));
    }
    let bad = |e: String| cx.invalid(format!("equation `{equation}`: {e}"));
    let mut ops: Vec<(String, Vec<Label>)> = Vec::new();
    let mut size: BTreeMap<Label, usize> = BTreeMap::new();
    for (term, x) in terms.iter().zip(&cx.ins) {
        let shape = cx.shape_of(x)?;
        let ls = labels(term, Some(shape.len())).map_err(bad)?;
        if ls.len() != shape.len() {
            return Err(bad(format!(
                "`{term}` labels {} dimensions of {x:?}, shaped {shape:?}",
                ls.len()
            )));
        }
        for (&l, &s) in ls.iter().zip(&shape) {
            match size.insert(l, s) {
                Some(t) if t != s => {
                    return Err(bad(format!(
                        "a label stands for sizes {t} and {s} (broadcasting is not supported)"
                    )))
                }
                _ => {}
            }
        }
        ops.push((x.clone(), ls));
    }
    let out: Vec<Label> = match rhs {
        Some(r) => {
            // The output's ellipsis stands for every dimension an operand's does.
            let dots = size.keys().filter(|&&l| l >= ELLIPSIS).count();
            match r.split_once("...") {
                None => labels(r, None).map_err(bad)?,
                Some((b, a)) => {
                    let mut v = labels(b, None).map_err(bad)?;
                    v.extend((0..dots).rev().map(|k| ELLIPSIS + k as Label));
                    v.extend(labels(a, None).map_err(bad)?);
                    v
                }
            }
        }
        None => {
            // Implicit: the ellipsis, then the letters that appear once, in order.
            let all: Vec<Label> = ops.iter().flat_map(|(_, ls)| ls.clone()).collect();
            let mut v: Vec<Label> = size
                .keys()
                .copied()
                .filter(|&l| l >= ELLIPSIS)
                .rev()
                .collect();
            v.extend(
                size.keys()
                    .copied()
                    .filter(|&l| l < ELLIPSIS && all.iter().filter(|&&k| k == l).count() == 1),
            );
            v
        }
    };
    if let Some(l) = out.iter().find(|l| !size.contains_key(l)) {
        return Err(bad(format!(
            "the output label `{}` labels no input",
            char::from_u32(*l).unwrap_or('?')
        )));
    }
    let out_shape: Vec<usize> = out.iter().map(|l| size[l]).collect();
    if let [(x, ls)] = ops.as_slice() {
        let (y, ys) = reduce_operand(cx, x, ls, &size, &out, "reduced");
        let perm: Vec<usize> = out
            .iter()
            .map(|l| ys.iter().position(|k| k == l).unwrap_or(0))
            .collect();
        return Ok((Op::Transpose { perm }, vec![y], out_shape));
    }
    let (a, la) = (&ops[0].0, &ops[0].1);
    let (b, lb) = (&ops[1].0, &ops[1].1);
    // The labels of `from` that `keep` keeps, in order.
    let those = |from: &[Label], keep: &dyn Fn(&Label) -> bool| -> Vec<Label> {
        from.iter().copied().filter(|l| keep(l)).collect()
    };
    let keep_a = those(la, &|l| out.contains(l) || lb.contains(l));
    let keep_b = those(lb, &|l| out.contains(l) || la.contains(l));
    let (a, la) = reduce_operand(cx, a, la, &size, &keep_a, "a_reduced");
    let (b, lb) = reduce_operand(cx, b, lb, &size, &keep_b, "b_reduced");
    let batch = those(&out, &|l| la.contains(l) && lb.contains(l));
    let left = those(&out, &|l| la.contains(l) && !lb.contains(l));
    let right = those(&out, &|l| lb.contains(l) && !la.contains(l));
    let inner = those(&la, &|l| lb.contains(l) && !out.contains(l));
    let prod = |ls: &[Label]| ls.iter().map(|l| size[l]).product::<usize>();
    let (nb, m, k, n) = (prod(&batch), prod(&left), prod(&inner), prod(&right));
    let order_a: Vec<Label> = [&batch[..], &left, &inner].concat();
    let order_b: Vec<Label> = [&batch[..], &inner, &right].concat();
    let a = arranged(cx, a, &la, &order_a, &size, "a_arranged");
    let b = arranged(cx, b, &lb, &order_b, &size, "b_arranged");
    let (sa, sb, sp) = if nb == 1 {
        (vec![m, k], vec![k, n], vec![m, n])
    } else {
        (vec![nb, m, k], vec![nb, k, n], vec![nb, m, n])
    };
    let a = cx.emit("a_matrix", Op::Reshape, vec![a], sa);
    let b = cx.emit("b_matrix", Op::Reshape, vec![b], sb);
    let p = cx.emit("product", Op::MatMul, vec![a, b], sp);
    let got: Vec<Label> = [&batch[..], &left, &right].concat();
    let p = cx.emit("unflattened", Op::Reshape, vec![p], prod_shape(&got, &size));
    let perm: Vec<usize> = out
        .iter()
        .map(|l| got.iter().position(|k| k == l).unwrap_or(0))
        .collect();
    Ok((Op::Transpose { perm }, vec![p], out_shape))
}

fn prod_shape(ls: &[Label], size: &BTreeMap<Label, usize>) -> Vec<usize> {
    ls.iter().map(|l| size[l]).collect()
}
