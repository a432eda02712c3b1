//! Segments: a model's ops cut into consecutive ranges, each to be proven as a circuit
//! of its own, and the values that cross each cut.
//!
//! A [`Segment`] is a range of ops with its boundaries: the values live across its start
//! (defined before it, read by it or later: the model input for the first) and across its
//! end (the model output for the last). Where a residual branch crosses a cut, a boundary
//! holds several tensors, and a value a segment does not read passes through it; so one
//! segment's output boundary is exactly the next one's input boundary, which is what
//! linking their proofs needs. [`QModel::run_segment`] runs a segment from its input
//! boundary alone; run one after another, the segments compute exactly
//! [`QModel::run`]'s values. A cut whose values are all *bounded* (rescale outputs, the
//! model input, or views of them: `act_bits`-bit integers) can be linked by a
//! range-checked commitment; [`QModel::bounded_cuts`] lists those cuts.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::{
    Activation, AddOperand, Concat, QModel, QOp, QValue, QirError, Rearrange, Rescale, Reshape,
    TableSpec, ValueId,
};

/// A range of a model's ops and the values live across its ends, in id order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub ops: Range<usize>,
    /// Values live across its start: the model input for the first segment.
    pub inputs: Vec<ValueId>,
    /// Values live across its end: the model output for the last segment.
    pub outputs: Vec<ValueId>,
}

impl QModel {
    fn malformed_cut(&self, reason: String) -> QirError {
        QirError::Malformed {
            op: self.ops.len(),
            kind: "segment",
            reason,
        }
    }

    /// The values live across cut `c` (before op `c`): defined before it (or the model
    /// input) and read by op `c` or a later one, in id order; the model input at 0 and
    /// the model output at the end.
    pub fn live_at(&self, c: usize) -> Vec<ValueId> {
        if c == 0 {
            return vec![self.input];
        }
        if c >= self.ops.len() {
            return vec![self.output];
        }
        let defined: Vec<ValueId> = self.ops[..c]
            .iter()
            .map(QOp::output)
            .chain([self.input])
            .collect();
        let mut live: Vec<ValueId> = self.ops[c..]
            .iter()
            .flat_map(QOp::inputs)
            .filter(|id| defined.contains(id))
            .collect();
        live.sort();
        live.dedup();
        live
    }

    /// The segment of the ops in `ops` (non-empty, within the model).
    pub fn segment(&self, ops: Range<usize>) -> Result<Segment, QirError> {
        if ops.start >= ops.end || ops.end > self.ops.len() {
            return Err(self.malformed_cut(format!(
                "ops {ops:?} are not a non-empty range of the model's {} ops",
                self.ops.len()
            )));
        }
        Ok(Segment {
            inputs: self.live_at(ops.start),
            outputs: self.live_at(ops.end),
            ops,
        })
    }

    /// The segments between `cuts` (op indices, strictly increasing, each in
    /// `1..ops.len()`): `[0, c1)`, `[c1, c2)`, …, `[ck, ops.len())`.
    pub fn split(&self, cuts: &[usize]) -> Result<Vec<Segment>, QirError> {
        let n = self.ops.len();
        if cuts.windows(2).any(|w| w[0] >= w[1]) || cuts.iter().any(|&c| c == 0 || c >= n) {
            return Err(self.malformed_cut(format!(
                "cuts {cuts:?} must increase strictly within 1..{n}"
            )));
        }
        let mut bounds = vec![0];
        bounds.extend_from_slice(cuts);
        bounds.push(n);
        bounds
            .windows(2)
            .map(|w| self.segment(w[0]..w[1]))
            .collect()
    }

    /// Whether every element of `id` is an `act_bits`-bit integer by construction: a
    /// rescale output or the model input, or a reshape, rearrangement or concatenation of
    /// such values (padding zeros included).
    pub fn is_bounded(&self, id: ValueId) -> bool {
        if id == self.input {
            return true;
        }
        match self.ops.iter().find(|op| op.output() == id) {
            Some(QOp::Rescale(_)) => true,
            Some(QOp::Reshape(r)) => self.is_bounded(r.input),
            Some(QOp::Rearrange(r)) => self.is_bounded(r.input),
            Some(QOp::Concat(c)) => c.inputs.iter().all(|&i| self.is_bounded(i)),
            _ => false,
        }
    }

    /// The cuts (op indices in `1..ops.len()`) whose live values are all bounded and none
    /// a view that grows (a convolution's windows repeat each element up to 9 times:
    /// linking them would hash every repeat, where the values before the view hold the
    /// same information).
    pub fn bounded_cuts(&self) -> Vec<usize> {
        (1..self.ops.len())
            .filter(|&c| {
                self.live_at(c)
                    .iter()
                    .all(|&id| self.is_bounded(id) && !self.is_growing_view(id))
            })
            .collect()
    }

    /// Whether `id` is a rearrangement or concatenation with more elements than it reads.
    fn is_growing_view(&self, id: ValueId) -> bool {
        let len = |id: ValueId| self.value(id).len();
        match self.ops.iter().find(|op| op.output() == id) {
            Some(QOp::Rearrange(r)) => len(id) > len(r.input),
            Some(QOp::Concat(c)) => len(id) > c.inputs.iter().map(|&i| len(i)).sum(),
            _ => false,
        }
    }

    /// Runs `segment` on the values of its input boundary (in its order) and returns the
    /// values of its output boundary. The model input, when it is one of them, must be in
    /// range as for [`QModel::run`].
    pub fn run_segment(
        &self,
        segment: &Segment,
        inputs: &[Vec<i64>],
    ) -> Result<Vec<Vec<i64>>, QirError> {
        self.validate()?;
        let check = self.segment(segment.ops.clone())?;
        if &check != segment {
            return Err(self.malformed_cut(format!(
                "the segment of ops {:?} has boundary {:?} → {:?}, not the one given",
                segment.ops, check.inputs, check.outputs
            )));
        }
        if inputs.len() != segment.inputs.len() {
            return Err(self.malformed_cut(format!(
                "ops {:?} take {} boundary values, {} were given",
                segment.ops,
                segment.inputs.len(),
                inputs.len()
            )));
        }
        let mut values: Vec<Vec<i64>> = vec![Vec::new(); self.values.len()];
        for (&id, v) in segment.inputs.iter().zip(inputs) {
            let value = self.value(id);
            if v.len() != value.len() {
                return Err(QirError::InputLength {
                    name: value.name.clone(),
                    expected: value.len(),
                    got: v.len(),
                });
            }
            if id == self.input {
                self.check_input(v)?;
            }
            values[id.0] = v.clone();
        }
        self.run_ops(segment.ops.clone(), &mut values)?;
        // A value may pass through (an output that is also an input): clone, not take.
        Ok(segment
            .outputs
            .iter()
            .map(|id| values[id.0].clone())
            .collect())
    }
}

impl QOp {
    /// This op with every value id mapped by `f`.
    fn map_ids(&self, f: impl Fn(ValueId) -> ValueId) -> QOp {
        let mut op = self.clone();
        match &mut op {
            QOp::Linear(l) => (l.input, l.output) = (f(l.input), f(l.output)),
            QOp::Rescale(r) => (r.input, r.output) = (f(r.input), f(r.output)),
            QOp::Add(a) => {
                (a.a, a.output) = (f(a.a), f(a.output));
                if let AddOperand::Value { id, .. } = &mut a.b {
                    *id = f(*id);
                }
            }
            QOp::Mul(m) => (m.a, m.b, m.output) = (f(m.a), f(m.b), f(m.output)),
            QOp::Reshape(r) => (r.input, r.output) = (f(r.input), f(r.output)),
            QOp::Rearrange(r) => (r.input, r.output) = (f(r.input), f(r.output)),
            QOp::Concat(c) => {
                c.output = f(c.output);
                c.inputs.iter_mut().for_each(|id| *id = f(*id));
            }
        }
        op
    }
}

impl QModel {
    /// `segment` as a model of its own, what a segment's circuit proves: its input is the
    /// segment's input boundary and its output the output boundary, each packed into one
    /// flat tensor when it holds several (the tensors' elements one after another, in
    /// boundary order: rearranged out of the packed input, concatenated into the packed
    /// output, which is a view of the integers, with the first tensor's scale). Only the
    /// tables its ops use are kept. Running it on the packed input boundary gives the
    /// packed output boundary ([`Self::pack`]).
    pub fn segment_model(&self, segment: &Segment) -> Result<QModel, QirError> {
        self.validate()?;
        if &self.segment(segment.ops.clone())? != segment {
            return Err(self.malformed_cut(format!(
                "ops {:?} do not have the boundary given",
                segment.ops
            )));
        }
        // A link packs its boundary's values `⌊252 / act_bits⌋` to a field element, which
        // is injective only for `act_bits`-bit values: a boundary must be bounded.
        let interior = |c: usize| c > 0 && c < self.ops.len();
        for c in [segment.ops.start, segment.ops.end] {
            if interior(c) && !self.bounded_cuts().contains(&c) {
                return Err(self.malformed_cut(format!(
                    "cut {c} is not bounded: a value crossing it is not an act_bits-bit \
                     integer, or is a view that repeats elements"
                )));
            }
        }
        let ops = &self.ops[segment.ops.clone()];
        let mut values: Vec<QValue> = Vec::new();
        let mut ids: Vec<Option<ValueId>> = vec![None; self.values.len()];
        let new_value = |values: &mut Vec<QValue>, v: QValue| {
            values.push(v);
            ValueId(values.len() - 1)
        };
        let mut new_ops = Vec::new();
        // The input boundary, packed when it holds several tensors.
        let input = if let [only] = segment.inputs[..] {
            let id = new_value(&mut values, self.value(only).clone());
            ids[only.0] = Some(id);
            id
        } else {
            let total: usize = segment.inputs.iter().map(|&i| self.value(i).len()).sum();
            let packed = new_value(
                &mut values,
                QValue {
                    name: format!("boundary in ({} tensors)", segment.inputs.len()),
                    shape: vec![total],
                    scale: self.value(segment.inputs[0]).scale,
                },
            );
            let mut offset = 0;
            for &t in &segment.inputs {
                let n = self.value(t).len();
                let id = new_value(&mut values, self.value(t).clone());
                ids[t.0] = Some(id);
                new_ops.push(QOp::Rearrange(Rearrange {
                    input: packed,
                    output: id,
                    index: (offset..offset + n).map(Some).collect(),
                }));
                offset += n;
            }
            packed
        };
        // The ops, their values and tables renumbered.
        let mut tables: Vec<TableSpec> = Vec::new();
        for op in ops {
            let out = op.output();
            ids[out.0] = Some(new_value(&mut values, self.value(out).clone()));
            let mut op = op.map_ids(|id| ids[id.0].unwrap_or(id));
            if let QOp::Rescale(Rescale {
                act: Activation::Table(t),
                ..
            }) = &mut op
            {
                let spec = self.tables[*t];
                *t = match tables.iter().position(|s| *s == spec) {
                    Some(i) => i,
                    None => {
                        tables.push(spec);
                        tables.len() - 1
                    }
                };
            }
            new_ops.push(op);
        }
        let mapped = |id: ValueId| {
            ids[id.0].ok_or_else(|| {
                self.malformed_cut(format!(
                    "value `{}` crosses the end of ops {:?} but is not defined in them",
                    self.value(id).name,
                    segment.ops
                ))
            })
        };
        // Every value the ops read is defined in the segment or crosses its start.
        for op in ops {
            for id in op.inputs() {
                mapped(id)?;
            }
        }
        let output = if let [only] = segment.outputs[..] {
            mapped(only)?
        } else {
            let scale = self.value(segment.outputs[0]).scale;
            let mut parts = Vec::new();
            let mut index = Vec::new();
            for (k, &t) in segment.outputs.iter().enumerate() {
                let mut id = mapped(t)?;
                if values[id.0].scale != scale {
                    // A view at the packed tensor's scale: the same integers.
                    let view = QValue {
                        scale,
                        ..values[id.0].clone()
                    };
                    let v = new_value(&mut values, view);
                    new_ops.push(QOp::Reshape(Reshape {
                        input: id,
                        output: v,
                    }));
                    id = v;
                }
                parts.push(id);
                index.extend((0..values[id.0].len()).map(|j| Some((k, j))));
            }
            let packed = new_value(
                &mut values,
                QValue {
                    name: format!("boundary out ({} tensors)", segment.outputs.len()),
                    shape: vec![index.len()],
                    scale,
                },
            );
            new_ops.push(QOp::Concat(Concat {
                inputs: parts,
                output: packed,
                index,
            }));
            packed
        };
        let model = QModel {
            name: format!(
                "{} ops {}..{}",
                self.name, segment.ops.start, segment.ops.end
            ),
            values,
            input,
            output,
            ops: new_ops,
            act_bits: self.act_bits,
            tables,
        };
        model.validate()?;
        Ok(model)
    }

    /// The values of a boundary, packed as [`Self::segment_model`] packs them.
    pub fn pack(boundary: &[Vec<i64>]) -> Vec<i64> {
        boundary.concat()
    }
}

#[cfg(test)]
mod tests {
    // Test code: a panic is the failure report.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{Activation, Add, AddOperand, Linear, QValue, Rescale, Reshape};

    fn value(name: &str, n: usize) -> QValue {
        QValue {
            name: name.into(),
            shape: vec![1, n],
            scale: 4,
        }
    }

    fn linear(input: usize, output: usize, n: usize, seed: i64) -> QOp {
        QOp::Linear(Linear {
            input: ValueId(input),
            output: ValueId(output),
            in_features: n,
            out_features: n,
            weight: (0..(n * n) as i64).map(|i| (i * seed) % 7 - 3).collect(),
            weight_scale: 4,
            bias: vec![seed; n],
        })
    }

    fn rescale(input: usize, output: usize, act: Activation) -> QOp {
        QOp::Rescale(Rescale {
            input: ValueId(input),
            output: ValueId(output),
            shift: 4,
            act,
        })
    }

    /// x → h = relu(x·W1) → g = h·W2 → a = h + g → y = rescale(a): the residual `h`
    /// crosses every cut between its definition and the addition.
    fn residual() -> QModel {
        let n = 4;
        QModel {
            name: "residual".into(),
            values: ["x", "p", "h", "q", "g", "a", "y", "z"]
                .iter()
                .map(|s| value(s, n))
                .collect(),
            input: ValueId(0),
            output: ValueId(7),
            ops: vec![
                linear(0, 1, n, 3),
                rescale(1, 2, Activation::Relu),
                linear(2, 3, n, 5),
                rescale(3, 4, Activation::Identity),
                QOp::Add(Add {
                    a: ValueId(2),
                    b: AddOperand::Value {
                        id: ValueId(4),
                        mul: 1,
                    },
                    output: ValueId(5),
                    a_mul: vec![1],
                }),
                rescale(5, 6, Activation::Identity),
                QOp::Reshape(Reshape {
                    input: ValueId(6),
                    output: ValueId(7),
                }),
            ],
            act_bits: 10,
            tables: vec![],
        }
    }

    #[test]
    fn a_residual_branch_crosses_a_cut_as_a_second_boundary_tensor() {
        let m = residual();
        let ids = |v: &[usize]| v.iter().map(|&i| ValueId(i)).collect::<Vec<_>>();
        // After g: both h (read by the addition) and g cross.
        let s = m.segment(4..7).unwrap();
        assert_eq!((s.inputs, s.outputs), (ids(&[2, 4]), ids(&[7])));
        // h passes through the segment of g's ops, which also outputs g.
        let s = m.segment(2..4).unwrap();
        assert_eq!((s.inputs, s.outputs), (ids(&[2]), ids(&[2, 4])));
        let s = m.segment(0..2).unwrap();
        assert_eq!((s.inputs, s.outputs), (ids(&[0]), ids(&[2])));
        // Only cuts where every crossing value is a rescale output are bounded: not
        // between a linear op and its rescale, nor between the addition and its rescale.
        assert_eq!(m.bounded_cuts(), vec![2, 4, 6]);
        assert!(m.is_bounded(ValueId(7)) && !m.is_bounded(ValueId(5)));
    }

    #[test]
    fn segments_run_one_after_another_compute_the_model() {
        let m = residual();
        let x: Vec<i64> = vec![100, -37, 250, 8];
        let full = m.run(&x).unwrap();
        // Every set of cuts, bounded or not: each segment runs on exactly the values the
        // one before it output, which are the full run's values.
        for mask in 0u32..1 << 6 {
            let cuts: Vec<usize> = (1..7).filter(|c| mask & (1 << (c - 1)) != 0).collect();
            let mut boundary = vec![x.clone()];
            for s in m.split(&cuts).unwrap() {
                boundary = m.run_segment(&s, &boundary).unwrap();
                for (id, v) in s.outputs.iter().zip(&boundary) {
                    assert_eq!(v, full.get(*id), "cuts {cuts:?}: value {id:?}");
                }
            }
            assert_eq!(boundary, vec![full.get(m.output).to_vec()]);
        }
    }

    #[test]
    fn segment_models_compute_the_packed_boundaries() {
        let m = residual();
        let x: Vec<i64> = vec![100, -37, 250, 8];
        let full = m.run(&x).unwrap();
        // The bounded cuts: a segment's input boundary is range-checked like a model input.
        for cuts in [vec![2, 4], vec![2, 4, 6], vec![4], vec![6]] {
            let mut boundary = vec![x.clone()];
            for s in m.split(&cuts).unwrap() {
                let sm = m.segment_model(&s).unwrap();
                let packed = QModel::pack(&boundary);
                let trace = sm.run(&packed).unwrap();
                boundary = m.run_segment(&s, &boundary).unwrap();
                assert_eq!(
                    trace.get(sm.output),
                    QModel::pack(&boundary),
                    "{cuts:?} {s:?}"
                );
            }
            assert_eq!(boundary, vec![full.get(m.output).to_vec()]);
        }
        // A model cut nowhere is itself, renamed.
        let whole = m.segment_model(&m.segment(0..7).unwrap()).unwrap();
        assert_eq!(whole.run(&x).unwrap().get(whole.output), full.get(m.output));
    }

    #[test]
    fn bad_cuts_and_boundaries_are_errors() {
        let m = residual();
        assert!(m.split(&[0]).is_err());
        assert!(m.split(&[3, 3]).is_err());
        assert!(m.split(&[7]).is_err());
        assert!(m.segment(2..2).is_err());
        let s = m.segment(4..7).unwrap();
        assert!(m.run_segment(&s, &[vec![1; 4]]).is_err());
        assert!(m.run_segment(&s, &[vec![1; 4], vec![1; 3]]).is_err());
        let mut forged = s.clone();
        forged.inputs.pop();
        assert!(m.run_segment(&forged, &[vec![1; 4]]).is_err());
        // A segment model (what a circuit proves) only at bounded cuts: an accumulator's
        // values could collide when packed for the link.
        let unbounded = (1..7).find(|c| !m.bounded_cuts().contains(c)).unwrap();
        for s in m.split(&[unbounded]).unwrap() {
            assert!(m.segment_model(&s).is_err(), "cut {unbounded}");
        }
        // The model input keeps its range in the first segment.
        let first = m.segment(0..2).unwrap();
        assert!(matches!(
            m.run_segment(&first, &[vec![600, 0, 0, 0]]),
            Err(QirError::InputOutOfRange { .. })
        ));
    }
}
