//! Freivalds' argument: a linear layer applied to many rows, checked by a random linear
//! combination of its rows instead of row by row.
//!
//! A linear op over `R` input rows computes `Y = X·Wᵀ + b` (`X` is `R × M`, `W` is
//! `N × M`). The dot-product layout ([`crate::linear`]) spends `R·N·(M + 1)`
//! multiply-accumulates on it, and its fixed weight columns hold `W` once per row. Here
//! `X` (copies of the input cells) and `Y` (the outputs, free cells the later ops read)
//! are committed in the first phase; a challenge `α` is drawn from the transcript after
//! them; and with `r = (α^(R−1), …, α, 1)` the second phase checks, for every neuron `n`,
//!
//! ```text
//! (rᵀY)_n = (rᵀ1)·b_n + Σ_j (rᵀX)_j · W[n][j]
//! ```
//!
//! The combinations `rᵀ·column` are Horner sequences in the *Horner lanes*: a
//! first-phase value column `v` and a second-phase column `h`, with
//!
//! ```text
//! first row of a sequence:  h = v
//! later rows:               h = h[prev] · α + v
//! ```
//!
//! so the last `h` of a sequence of `R` values is its combination. One sequence per input
//! feature, one of ones (for the bias), one per neuron: `R·(M + 1 + N)` cells. The right
//! side is then one vector times `Wᵀ`: the dot-product gate's shape over second-phase
//! columns, reading the linear section's weight columns on rows of their own (so `W`
//! appears once), its sums copy-constrained to the neurons' combinations.
//!
//! If `Y ≠ X·Wᵀ + b`, some neuron's row differences `D_i` are not all zero and
//! `Σ_i α^(R−1−i) D_i` is a nonzero polynomial of degree `< R` in `α`, drawn after `X`
//! and `Y` were committed (KZG binds them): that neuron's check, and so the layer's,
//! passes with probability at most `(R − 1)/|F|` (every checked layer shares `α`). Under
//! Fiat–Shamir a prover who tries `Q` transcripts gets `Q·(R − 1)/|F|`, negligible with
//! `|F| ≈ 2^254` and `R ≤ 2^28`. As with the dot products, equality is in the field; the
//! rescale after the layer bounds what it reads.

use halo2_proofs::circuit::{Cell, Region, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{
    Advice, Challenge, Column, ConstraintSystem, Error, FirstPhase, SecondPhase, Selector,
};
use halo2_proofs::poly::Rotation;
use zkinfer_qir::{Linear, QModel, QOp, ValueId};

use crate::fe;
use crate::linear::{block_gate, block_rows, enable_block_row, weight_at, LinearConfig};
use crate::wires::{Source, Wires};

/// Whether the argument applies to `op`: a layer applied to two rows or more whose bias
/// is shared by its rows.
pub fn is_eligible(op: &Linear, model: &QModel) -> bool {
    op.rows(model) >= 2 && op.bias.len() == op.out_features
}

/// Rows the check of `op` takes in the linear section: one input row's blocks.
pub fn matvec_rows(op: &Linear, x_cols: usize, acc_cols: usize) -> usize {
    op.out_features.div_ceil(acc_cols) * block_rows(op.in_features, x_cols)
}

/// The Horner sequences of `op`: how many, and their length.
pub fn sequences(op: &Linear, model: &QModel) -> (usize, usize) {
    (op.in_features + 1 + op.out_features, op.rows(model))
}

/// Where sequences go: an op's sequences in rounds, one sequence per lane, each round on
/// the rows after the previous one (every lane's sequences start on the same rows, so the
/// lanes share their selectors; a lane idle in an op's last round holds zeros, which
/// satisfy both constraints).
#[derive(Clone, Debug)]
pub struct Placement {
    lanes: usize,
    rows: usize,
}

impl Placement {
    pub fn new(lanes: usize) -> Self {
        Placement {
            lanes: lanes.max(1),
            rows: 0,
        }
    }

    /// The lane and first row of each of `count` sequences of `len` values (a multiple of
    /// the lanes, or the last round's idle lanes are not written).
    pub fn place(&mut self, count: usize, len: usize) -> Vec<(usize, usize)> {
        let base = self.rows;
        self.rows += count.div_ceil(self.lanes) * len;
        (0..count)
            .map(|s| (s % self.lanes, base + (s / self.lanes) * len))
            .collect()
    }

    /// Rows the lanes take.
    pub fn rows(&self) -> usize {
        self.rows
    }
}

/// Rows the Horner lanes take when the ops `freivalds` (indices into `model.ops`) are
/// checked by the argument.
pub fn horner_rows(model: &QModel, freivalds: &[usize], lanes: usize) -> usize {
    let mut placement = Placement::new(lanes);
    for &i in freivalds {
        if let Some(QOp::Linear(op)) = model.ops.get(i) {
            let (count, len) = sequences(op, model);
            placement.place(count, len);
        }
    }
    placement.rows()
}

#[derive(Clone, Copy, Debug)]
pub struct HornerLane {
    /// First phase: the values combined.
    pub v: Column<Advice>,
    /// Second phase: the running combination.
    pub h: Column<Advice>,
}

#[derive(Clone, Debug)]
pub struct FreivaldsConfig {
    pub alpha: Challenge,
    pub lanes: Vec<HornerLane>,
    /// The first row of a round of sequences, and the others (shared by the lanes).
    pub q_start: Selector,
    pub q_next: Selector,
    /// Second phase: the combined input row, laid across the blocks' `D` columns.
    pub x: Vec<Column<Advice>>,
    /// Second phase: the running sums of the combined row times `Wᵀ`.
    pub acc: Vec<Column<Advice>>,
    pub q_first: Selector,
    pub q_step: Selector,
}

/// A sequence laid out in the first phase, to be combined in the second.
struct Sequence {
    lane: usize,
    row: usize,
    values: Vec<Value<Fr>>,
}

/// A checked op between the phases: its sequences (ones, the `M` input features, the `N`
/// neurons) and the first row of its blocks in the linear section.
pub struct Pending<'o> {
    op: &'o Linear,
    block_row: usize,
    sequences: Vec<Sequence>,
}

impl FreivaldsConfig {
    pub fn configure(meta: &mut ConstraintSystem<Fr>, linear: &LinearConfig, lanes: usize) -> Self {
        // The first-phase columns must exist before the challenge that follows them.
        let v: Vec<_> = (0..lanes)
            .map(|_| meta.advice_column_in(FirstPhase))
            .collect();
        let alpha = meta.challenge_usable_after(FirstPhase);
        let lanes: Vec<HornerLane> = v
            .into_iter()
            .map(|v| HornerLane {
                v,
                h: meta.advice_column_in(SecondPhase),
            })
            .collect();
        let (q_start, q_next) = (meta.selector(), meta.selector());
        let (d_cols, c_cols) = (linear.x.len(), linear.acc.len());
        let x: Vec<_> = (0..d_cols)
            .map(|_| meta.advice_column_in(SecondPhase))
            .collect();
        let acc: Vec<_> = (0..c_cols)
            .map(|_| meta.advice_column_in(SecondPhase))
            .collect();
        for lane in &lanes {
            meta.enable_equality(lane.v);
            meta.enable_equality(lane.h);
        }
        for c in x.iter().chain(&acc) {
            meta.enable_equality(*c);
        }
        for lane in &lanes {
            meta.create_gate("horner", |meta| {
                let start = meta.query_selector(q_start);
                let step = meta.query_selector(q_next);
                let v = meta.query_advice(lane.v, Rotation::cur());
                let h = meta.query_advice(lane.h, Rotation::cur());
                let prev = meta.query_advice(lane.h, Rotation::prev());
                let alpha = meta.query_challenge(alpha);
                vec![
                    start * (h.clone() - v.clone()),
                    step * (h - prev * alpha - v),
                ]
            });
        }
        let q_first = meta.selector();
        let q_step = meta.selector();
        block_gate(
            meta,
            "freivalds matvec",
            &x,
            &acc,
            &linear.w,
            (q_first, q_step),
            false,
        );
        FreivaldsConfig {
            alpha,
            lanes,
            q_start,
            q_next,
            x,
            acc,
            q_first,
            q_step,
        }
    }

    /// First phase of `op`: its weights and selectors on the linear section's rows from
    /// `block_row`, and its sequences' values (the input copied in, the outputs defined
    /// here). Returns the next free row of the linear section and the op's pending
    /// second phase.
    #[allow(clippy::too_many_arguments)]
    pub fn assign_first<'o>(
        &self,
        linear: &LinearConfig,
        region: &mut Region<'_, Fr>,
        wires: &mut Wires<'_>,
        model: &QModel,
        op: &'o Linear,
        op_index: usize,
        block_row: usize,
        placement: &mut Placement,
    ) -> Result<(usize, Pending<'o>), Error> {
        // The check combines one bias per neuron: a layout read from a file that names
        // another op must not prove a different layer.
        if !is_eligible(op, model) {
            return Err(Error::Synthesis);
        }
        let (m, n_out, rows) = (op.in_features, op.out_features, op.rows(model));
        let (d_cols, c_cols) = (self.x.len(), self.acc.len());
        let brows = block_rows(m, d_cols);
        let mut offset = block_row;
        for n0 in (0..n_out).step_by(c_cols) {
            for t in 0..brows {
                let row = offset + t;
                enable_block_row(region, (self.q_first, self.q_step), t, row)?;
                linear.place_weights(region, wires, op, op_index, 0, n0, t, row)?;
            }
            offset += brows;
        }
        // The sequences: the ones (their combination multiplies the bias), the input
        // features (copies of the input's cells), the neurons (the op's outputs, defined
        // here).
        // Lanes idle in the last round hold sequences of zeros (the gates read them).
        let count = m + 1 + n_out;
        let slots = placement.place(count.next_multiple_of(self.lanes.len()), rows);
        let mut sequences = Vec::with_capacity(slots.len());
        for (s, &(lane, row)) in slots.iter().enumerate() {
            let v = self.lanes[lane].v;
            if lane == 0 {
                for i in 0..rows {
                    if i == 0 {
                        self.q_start.enable(region, row)?;
                    } else {
                        self.q_next.enable(region, row + i)?;
                    }
                }
            }
            let mut values = Vec::with_capacity(rows);
            for i in 0..rows {
                let value = if s == 0 {
                    let one = Value::known(Fr::one());
                    let cell = region.assign_advice(v, row + i, one).cell();
                    wires.tie_one(region, cell)?;
                    one
                } else if s <= m {
                    wires.copy_in(region, v, row + i, op.input, i * m + s - 1)?;
                    value(wires, op.input, i * m + s - 1)
                } else if s >= count {
                    let zero = Value::known(Fr::zero());
                    region.assign_advice(v, row + i, zero);
                    zero
                } else {
                    let at = i * n_out + s - 1 - m;
                    let value = value(wires, op.output, at);
                    let cell = region.assign_advice(v, row + i, value).cell();
                    wires.define(op.output, at, cell);
                    value
                };
                values.push(value);
            }
            sequences.push(Sequence { lane, row, values });
        }
        #[cfg(test)]
        tamper::first(region, self, &mut sequences);
        Ok((
            offset,
            Pending {
                op,
                block_row,
                sequences,
            },
        ))
    }

    /// Second phase of a pending op: the sequences' combinations under the challenge,
    /// and the combined input row times `Wᵀ`, tied to the neurons' combinations.
    pub fn assign_second(&self, region: &mut Region<'_, Fr>, p: &Pending<'_>) -> Result<(), Error> {
        let alpha = region.get_challenge(self.alpha);
        let mut combined: Vec<(Cell, Value<Fr>)> = Vec::with_capacity(p.sequences.len());
        for s in &p.sequences {
            let hl = self.lanes[s.lane];
            let mut h = Value::known(Fr::zero());
            let mut last = None;
            for (i, v) in s.values.iter().enumerate() {
                h = if i == 0 { *v } else { h * alpha + *v };
                last = Some(region.assign_advice(hl.h, s.row + i, h).cell());
            }
            combined.push((last.ok_or(Error::Synthesis)?, h));
        }
        #[cfg(test)]
        tamper::second(region, self, &p.sequences);
        let op = p.op;
        let (m, n_out) = (op.in_features, op.out_features);
        let (d_cols, c_cols) = (self.x.len(), self.acc.len());
        let brows = block_rows(m, d_cols);
        // `combined`: [ones, x_0 … x_{M−1}, y_0 … y_{N−1}]; the row `[1, x_0, …]` of the
        // dot-product layout is its first M + 1 entries.
        let mut offset = p.block_row;
        for n0 in (0..n_out).step_by(c_cols) {
            let mut sums = vec![Value::known(Fr::zero()); c_cols];
            for t in 0..brows {
                let row = offset + t;
                let mut xs = Vec::with_capacity(d_cols);
                for d in 0..d_cols {
                    let j = t * d_cols + d;
                    let xv = if j <= m {
                        let (cell, v) = combined[j];
                        let x = region.assign_advice(self.x[d], row, v).cell();
                        region.constrain_equal(x, cell);
                        v
                    } else {
                        // Padding faces weight 0.
                        region.assign_advice(self.x[d], row, Value::known(Fr::zero()));
                        Value::known(Fr::zero())
                    };
                    xs.push(xv);
                }
                for (c, sum) in sums.iter_mut().enumerate() {
                    let n = n0 + c;
                    for (d, xv) in xs.iter().enumerate() {
                        let (w, _) = weight_at(op, 0, n, t * d_cols + d);
                        *sum = *sum + *xv * Value::known(fe(w));
                    }
                    let cell = region.assign_advice(self.acc[c], row + 1, *sum).cell();
                    if t + 1 == brows && n < n_out {
                        region.constrain_equal(cell, combined[m + 1 + n].0);
                    }
                }
            }
            offset += brows;
        }
        Ok(())
    }
}

/// The witness value of element `i` of `id` (a view's element resolved to its source).
fn value(wires: &Wires<'_>, id: ValueId, i: usize) -> Value<Fr> {
    match wires.resolve(id, i) {
        Source::Element(root, j) => wires.value(root, j),
        Source::Zero => wires.value(id, i).map(|_| Fr::zero()),
    }
}

/// Test hooks that write one wrong cell, as a cheating prover would, to check that the
/// constraints reject it.
#[cfg(test)]
pub(crate) mod tamper {
    use std::cell::Cell;

    use super::*;

    #[derive(Clone, Copy, Debug)]
    pub enum Tamper {
        /// Adds 1 to value `i` of sequence `seq` in the first phase (the copy of an
        /// operand, or an output the later ops do not read).
        Value { seq: usize, i: usize },
        /// Adds 1 to the running combination `i` of sequence `seq`.
        Combination { seq: usize, i: usize },
    }

    thread_local! {
        pub static AT: Cell<Option<Tamper>> = const { Cell::new(None) };
    }

    pub(super) fn first(region: &mut Region<'_, Fr>, f: &FreivaldsConfig, seqs: &mut [Sequence]) {
        if let Some(Tamper::Value { seq, i }) = AT.with(Cell::get) {
            let s = &mut seqs[seq];
            s.values[i] = s.values[i] + Value::known(Fr::one());
            region.assign_advice(f.lanes[s.lane].v, s.row + i, s.values[i]);
        }
    }

    pub(super) fn second(region: &mut Region<'_, Fr>, f: &FreivaldsConfig, seqs: &[Sequence]) {
        if let Some(Tamper::Combination { seq, i }) = AT.with(Cell::get) {
            let s = &seqs[seq];
            let alpha = region.get_challenge(f.alpha);
            let h = s.values[..=i]
                .iter()
                .fold(Value::known(Fr::zero()), |h, v| h * alpha + *v);
            region.assign_advice(f.lanes[s.lane].h, s.row + i, h + Value::known(Fr::one()));
        }
    }
}
