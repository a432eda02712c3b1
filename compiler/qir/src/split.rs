//! Splitting one linear layer into parts, so that a segment can end inside it.
//!
//! A linear op, the ops that carry its accumulator to a rescale (a constant addition, a
//! reshape, a permutation: each element of the rescale's input is `acc[π(e)]·M_e + K_e`
//! for a bijection `π`) and the rescale become `parts` chains, each on a share of the
//! work, and a concatenation of their outputs into the rescale's output:
//! - by rows (positions of a convolution, tokens of a sequence), each part reads its
//!   rows of the input, gathered straight from the value the input is a view of (a
//!   convolution's windows are rearranged from the feature map, never materialized
//!   whole);
//! - by output features, when there are fewer rows than parts (a vector times a matrix);
//!   each part gathers its whole input from the view's source in the same way.
//!
//! Every value the parts produce is a rescale output, so the cuts between them are
//! bounded cuts ([`QModel::bounded_cuts`]), and the model computes exactly what it did.

use crate::{
    Add, AddOperand, Concat, Linear, QModel, QOp, QValue, QirError, Rearrange, Rescale, ValueId,
};

/// A linear op's chain to its rescale: the ops on the way (the linear's first, the
/// rescale's last; other ops may lie between them), and for each element `e` of the
/// rescale's input `(π(e), M_e, K_e)`.
struct Chain {
    ops: Vec<usize>,
    elements: Vec<(usize, i64, i64)>,
}

impl QModel {
    /// The chain from linear op `i` to the rescale its accumulator reaches, when every
    /// value on the way is read only by the next op and the way is a bijection.
    fn chain(&self, i: usize) -> Option<Chain> {
        let Some(QOp::Linear(l)) = self.ops.get(i) else {
            return None;
        };
        let readers = |id: ValueId| {
            self.ops
                .iter()
                .filter(|op| op.inputs().contains(&id))
                .count()
        };
        let n = self.value(l.output).len();
        let mut elements: Vec<(usize, i64, i64)> = (0..n).map(|g| (g, 1, 0)).collect();
        let mut cur = l.output;
        let mut ops = vec![i];
        for (j, op) in self.ops.iter().enumerate().skip(i + 1) {
            if cur == self.output || readers(cur) != 1 {
                return None;
            }
            if !op.inputs().contains(&cur) {
                continue;
            }
            ops.push(j);
            elements = match op {
                QOp::Rescale(r) if r.input == cur => {
                    let mut seen = vec![false; n];
                    for &(g, _, _) in &elements {
                        if std::mem::replace(&mut seen[g], true) {
                            return None;
                        }
                    }
                    return (elements.len() == n).then_some(Chain { ops, elements });
                }
                QOp::Add(a) if a.a == cur => {
                    let AddOperand::Constant(k) = &a.b else {
                        return None;
                    };
                    let mut next = Vec::with_capacity(elements.len());
                    for (e, &(g, m, c)) in elements.iter().enumerate() {
                        let am = a.a_mul_at(e);
                        next.push((g, m.checked_mul(am)?, c.checked_mul(am)?.checked_add(k[e])?));
                    }
                    next
                }
                QOp::Reshape(_) => elements,
                QOp::Rearrange(r) => r
                    .index
                    .iter()
                    .map(|&t| t.and_then(|t| elements.get(t).copied()))
                    .collect::<Option<_>>()?,
                QOp::Concat(c) if c.inputs.len() == 1 => c
                    .index
                    .iter()
                    .map(|&t| t.and_then(|(_, t)| elements.get(t).copied()))
                    .collect::<Option<_>>()?,
                _ => return None,
            };
            cur = op.output();
        }
        None
    }

    /// Whether op `i` is a linear op whose accumulator reaches a rescale in a way
    /// [`QModel::split_linear`] can split (see the module documentation).
    pub fn is_splittable_linear(&self, i: usize) -> bool {
        self.chain(i).is_some()
    }

    /// The model with linear op `i` (and its chain to the rescale) split into `parts` (see
    /// the module documentation; fewer when it has fewer rows and features), the view
    /// its input was removed when nothing else reads it.
    pub fn split_linear(&self, i: usize, parts: usize) -> Result<QModel, QirError> {
        let (Some(chain), Some(QOp::Linear(l))) = (self.chain(i), self.ops.get(i)) else {
            return Err(QirError::Malformed {
                op: i,
                kind: "split",
                reason: format!("op {i} is not a linear op whose accumulator reaches a rescale"),
            });
        };
        let rescale = chain.ops[chain.ops.len() - 1];
        let QOp::Rescale(r) = &self.ops[rescale] else {
            unreachable!("a chain ends at a rescale")
        };
        if parts < 2 {
            return Err(QirError::Malformed {
                op: i,
                kind: "split",
                reason: format!("{parts} parts are fewer than 2"),
            });
        }
        let rows = l.rows(self);
        let (in_f, out_f) = (l.in_features, l.out_features);
        let by_rows = rows >= parts;
        let total = if by_rows { rows } else { out_f };
        let parts = parts.min(total);
        let share = |j: usize| (total * j / parts)..(total * (j + 1) / parts);
        // The input as a view of its source: rows are gathered from the source directly.
        let (source, view): (ValueId, Vec<Option<usize>>) =
            match self.ops.iter().find(|op| op.output() == l.input) {
                Some(QOp::Rearrange(v)) => (v.input, v.index.clone()),
                _ => (l.input, (0..self.value(l.input).len()).map(Some).collect()),
            };
        // The rescale input's element of each accumulator element.
        let mut element_of = vec![0usize; rows * out_f];
        for (e, &(g, _, _)) in chain.elements.iter().enumerate() {
            element_of[g] = e;
        }
        let affine = chain.elements.iter().any(|&(_, m, k)| (m, k) != (1, 0));
        let mut m = self.clone();
        let add = |m: &mut QModel, name: String, shape: Vec<usize>, scale: i32| {
            m.values.push(QValue { name, shape, scale });
            ValueId(m.values.len() - 1)
        };
        let acc_scale = self.value(l.output).scale;
        let (sum_scale, z_scale) = (self.value(r.input).scale, self.value(r.output).scale);
        let base = self.value(r.output).name.clone();
        // The accumulator element of part `j`'s element `t`.
        let global = |j: usize, t: usize| {
            let s = share(j);
            if by_rows {
                s.start * out_f + t
            } else {
                let (row, f) = (t / s.len(), t % s.len());
                row * out_f + s.start + f
            }
        };
        let mut ops = Vec::new();
        let mut outputs = Vec::new();
        for j in 0..parts {
            let s = share(j);
            let n = s.len();
            let (input, shape, weight, bias) = if by_rows {
                let x = add(
                    &mut m,
                    format!("{base}/rows {}..{}", s.start, s.end),
                    vec![n, in_f],
                    self.value(l.input).scale,
                );
                ops.push(QOp::Rearrange(Rearrange {
                    input: source,
                    output: x,
                    index: view[s.start * in_f..s.end * in_f].to_vec(),
                }));
                let bias = if l.bias.len() == out_f {
                    l.bias.clone()
                } else {
                    l.bias[s.start * out_f..s.end * out_f].to_vec()
                };
                (x, vec![n, out_f], l.weight.clone(), bias)
            } else {
                let weight = l.weight[s.start * in_f..s.end * in_f].to_vec();
                let bias = if l.bias.len() == out_f {
                    l.bias[s.clone()].to_vec()
                } else {
                    (0..rows)
                        .flat_map(|row| l.bias[row * out_f + s.start..row * out_f + s.end].to_vec())
                        .collect()
                };
                // Each part gathers the whole input from the view's source, so that the
                // view (which may repeat elements) is not live between parts.
                let input = if source == l.input {
                    l.input
                } else {
                    let x = add(
                        &mut m,
                        format!("{base}/input part {j}"),
                        self.value(l.input).shape.clone(),
                        self.value(l.input).scale,
                    );
                    ops.push(QOp::Rearrange(Rearrange {
                        input: source,
                        output: x,
                        index: view.clone(),
                    }));
                    x
                };
                (input, vec![rows, n], weight, bias)
            };
            let len = shape.iter().product::<usize>();
            let acc = add(
                &mut m,
                format!("{base}/acc part {j}"),
                shape.clone(),
                acc_scale,
            );
            ops.push(QOp::Linear(Linear {
                input,
                output: acc,
                in_features: in_f,
                out_features: if by_rows { out_f } else { n },
                weight,
                weight_scale: l.weight_scale,
                bias,
            }));
            let mut rescaled = acc;
            if affine {
                let terms: Vec<(i64, i64)> = (0..len)
                    .map(|t| {
                        let (_, m, k) = chain.elements[element_of[global(j, t)]];
                        (m, k)
                    })
                    .collect();
                rescaled = add(
                    &mut m,
                    format!("{base}/sum part {j}"),
                    shape.clone(),
                    sum_scale,
                );
                ops.push(QOp::Add(Add {
                    a: acc,
                    b: AddOperand::Constant(terms.iter().map(|&(_, k)| k).collect()),
                    output: rescaled,
                    a_mul: terms.iter().map(|&(m, _)| m).collect(),
                }));
            }
            let z = add(&mut m, format!("{base}/part {j}"), shape, z_scale);
            ops.push(QOp::Rescale(Rescale {
                input: rescaled,
                output: z,
                shift: r.shift,
                act: r.act,
            }));
            outputs.push(z);
        }
        let part_of = |x: usize| (0..parts).find(|&j| share(j).contains(&x)).unwrap_or(0);
        let index = chain
            .elements
            .iter()
            .map(|&(g, _, _)| {
                let (row, f) = (g / out_f, g % out_f);
                Some(if by_rows {
                    let j = part_of(row);
                    (j, (row - share(j).start) * out_f + f)
                } else {
                    let j = part_of(f);
                    let s = share(j);
                    (j, row * s.len() + f - s.start)
                })
            })
            .collect();
        ops.push(QOp::Concat(Concat {
            inputs: outputs,
            output: r.output,
            index,
        }));
        // The parts go where the linear op was (what they read is computed before it; what
        // reads the rescale's output, after that), so that no accumulator of another
        // branch whose ops lay between is live across their cuts.
        for &at in chain.ops[1..].iter().rev() {
            m.ops.remove(at);
        }
        m.ops.splice(i..i + 1, ops);
        // The view the parts gathered from, when nothing else reads it now.
        if source != l.input && l.input != self.output {
            let unread = !m.ops.iter().any(|op| op.inputs().contains(&l.input));
            if let Some(at) = m.ops.iter().position(|op| op.output() == l.input) {
                if unread {
                    m.ops.remove(at);
                }
            }
        }
        m.validate()?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    // Test code: a panic is the failure report.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{Activation, Add, AddOperand, Concat, Reshape};

    /// x[1, 4, 3] → im2col-like view v[6, 6] (overlapping windows, zero padding) →
    /// Linear(6 → 5, per-row bias) → rescale relu → reshape out.
    fn model() -> QModel {
        let value = |name: &str, shape: Vec<usize>, scale| QValue {
            name: name.into(),
            shape,
            scale,
        };
        let index: Vec<Option<usize>> = (0..36)
            .map(|e| {
                let j = (e / 6) * 2 + e % 6;
                (j < 12 && e % 7 != 3).then_some(j)
            })
            .collect();
        QModel {
            name: "split".into(),
            values: vec![
                value("x", vec![1, 4, 3], 4),
                value("v", vec![6, 6], 4),
                value("a", vec![6, 5], 8),
                value("z", vec![6, 5], 4),
                value("out", vec![30], 4),
            ],
            input: ValueId(0),
            output: ValueId(4),
            ops: vec![
                QOp::Rearrange(Rearrange {
                    input: ValueId(0),
                    output: ValueId(1),
                    index,
                }),
                QOp::Linear(Linear {
                    input: ValueId(1),
                    output: ValueId(2),
                    in_features: 6,
                    out_features: 5,
                    weight: (0..30).map(|i| (i * 7) % 11 - 5).collect(),
                    weight_scale: 4,
                    bias: (0..30).map(|i| i * 3 - 40).collect(),
                }),
                QOp::Rescale(Rescale {
                    input: ValueId(2),
                    output: ValueId(3),
                    shift: 4,
                    act: Activation::Relu,
                }),
                QOp::Reshape(Reshape {
                    input: ValueId(3),
                    output: ValueId(4),
                }),
            ],
            act_bits: 10,
            tables: vec![],
        }
    }

    #[test]
    fn a_split_linear_computes_the_same_and_cuts_between_its_parts() {
        let m = model();
        let x: Vec<i64> = (0..12).map(|i| i * 37 % 200 - 100).collect();
        let want = m.run(&x).unwrap();
        assert!(m.is_splittable_linear(1) && !m.is_splittable_linear(2));
        // By rows (2, 3, 6 parts) and, past the 6 rows, by output features.
        for parts in [2, 3, 6, 8, 40] {
            let s = m.split_linear(1, parts).unwrap();
            let got = s.run(&x).unwrap();
            assert_eq!(got.get(s.output), want.get(m.output), "{parts} parts");
            // A bounded cut after every part but the last.
            let n = if parts > 6 { parts.min(5) } else { parts };
            let cuts = s.bounded_cuts();
            let inside: Vec<usize> = cuts
                .iter()
                .copied()
                .filter(|&c| c > 1 && c < s.ops.len() - 2)
                .collect();
            assert!(inside.len() >= n - 1, "{parts} parts: cuts {cuts:?}");
        }
        assert!(m.split_linear(2, 2).is_err());
        assert!(m.split_linear(1, 1).is_err());
    }

    /// A bias added as its own op and the accumulator transposed (as a MatMul and a
    /// convolution's channel order are imported) before the rescale, an op of another
    /// branch between them.
    #[test]
    fn a_chain_of_additions_and_permutations_splits_too() {
        let mut m = model();
        let value = |name: &str, scale| QValue {
            name: name.into(),
            shape: vec![6, 5],
            scale,
        };
        m.values.push(value("a+k", 8));
        m.values.push(value("(a+k)ᵀ", 8));
        let (sum, transposed) = (ValueId(5), ValueId(6));
        let add = QOp::Add(Add {
            a: ValueId(2),
            b: AddOperand::Constant((0..30).map(|i| i * 5 - 70).collect()),
            output: sum,
            a_mul: (0..30).map(|i| 1 + i % 3).collect(),
        });
        let transpose = QOp::Concat(Concat {
            inputs: vec![sum],
            output: transposed,
            index: (0..30).map(|e| Some((0, (e % 6) * 5 + e / 6))).collect(),
        });
        if let QOp::Rescale(r) = &mut m.ops[2] {
            r.input = transposed;
        }
        // An op of another branch between the chain's ops.
        m.values.push(QValue {
            name: "x'".into(),
            shape: vec![12],
            scale: 4,
        });
        let other_branch = QOp::Reshape(Reshape {
            input: ValueId(0),
            output: ValueId(7),
        });
        m.ops.splice(2..2, [add, other_branch, transpose]);
        m.validate().unwrap();
        let x: Vec<i64> = (0..12).map(|i| i * 53 % 200 - 100).collect();
        let want = m.run(&x).unwrap();
        assert!(m.is_splittable_linear(1));
        for parts in [2, 4, 8] {
            let s = m.split_linear(1, parts).unwrap();
            let got = s.run(&x).unwrap();
            assert_eq!(got.get(s.output), want.get(m.output), "{parts} parts");
        }
        // The sum read by another op too: not a chain.
        let mut other = m.clone();
        if let QOp::Reshape(r) = &mut other.ops[6] {
            r.input = sum;
        }
        other.values[4].shape = vec![30];
        assert!(!other.is_splittable_linear(1));
    }
}
