//! The model's parameters, as `--params hashed` commits to them.
//!
//! The parameters are every constant the weights determine: each linear layer's weights
//! and biases (in op order), and the multipliers and constants of every addition of a
//! constant tensor (affine normalisations, folded biases). Rescale shifts and tabulated
//! functions are the quantization schedule: they stay in the circuit, like the
//! architecture.
//!
//! The hashed message packs the weights, `⌊252 / b⌋` to a field element, where every
//! weight is a `b`-bit signed integer stored as `w + 2^(b-1)` (range-checked in the
//! circuit, so the packing is injective); the first weight of a chunk is the most
//! significant. The remaining parameters (biases, multipliers, constants, which need more
//! bits) follow, one field element each. The message is hashed with Poseidon in
//! [`Domain::Params`].

use halo2_proofs::circuit::{Cell, Region, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{Advice, Column, ConstraintSystem, Error, Expression, Selector};
use halo2_proofs::poly::Rotation;
use zkinfer_qir::{AddOperand, QModel, QOp};

use crate::fe;
use crate::poseidon::{hash, Domain};
use crate::table::{TableConfig, WEIGHT_TAG};

/// Where an op's parameters start in [`Params::weights`] and [`Params::wide`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpParams {
    pub weight: usize,
    pub bias: usize,
    /// Add of a constant: the multipliers, then the constants.
    pub mul: usize,
    pub constant: usize,
}

/// The model's parameters in message order.
#[derive(Clone, Debug, Default)]
pub struct Params {
    pub weights: Vec<i64>,
    pub wide: Vec<i64>,
    /// Per op (`None` for ops without parameters).
    pub index: Vec<Option<OpParams>>,
}

impl Params {
    pub fn of(model: &QModel) -> Self {
        let mut p = Params::default();
        for op in &model.ops {
            let entry = match op {
                QOp::Linear(l) => {
                    let at = OpParams {
                        weight: p.weights.len(),
                        bias: p.wide.len(),
                        ..OpParams::default()
                    };
                    p.weights.extend_from_slice(&l.weight);
                    p.wide.extend_from_slice(&l.bias);
                    Some(at)
                }
                QOp::Add(a) => match &a.b {
                    AddOperand::Constant(k) => {
                        let mul = p.wide.len();
                        p.wide.extend_from_slice(&a.a_mul);
                        let constant = p.wide.len();
                        p.wide.extend_from_slice(k);
                        Some(OpParams {
                            mul,
                            constant,
                            ..OpParams::default()
                        })
                    }
                    AddOperand::Value { .. } => None,
                },
                _ => None,
            };
            p.index.push(entry);
        }
        p
    }

    /// The message the hash absorbs (see the module documentation).
    pub fn message(&self, bits: u32) -> Vec<Fr> {
        let mut m: Vec<Fr> = self
            .weights
            .chunks(per_element(bits))
            .map(|c| pack(c, bits))
            .collect();
        m.extend(self.wide.iter().map(|&v| fe(v)));
        m
    }

    pub fn hash(&self, bits: u32) -> Fr {
        hash(Domain::Params, &self.message(bits))
    }
}

/// Weights packed into one field element.
pub fn per_element(bits: u32) -> usize {
    (252 / bits.max(1)) as usize
}

/// The offset that makes a `bits`-bit signed weight non-negative.
pub fn offset(bits: u32) -> i64 {
    1i64 << (bits - 1)
}

/// One chunk of weights as a field element.
pub fn pack(chunk: &[i64], bits: u32) -> Fr {
    let base = Fr::from(1u64 << bits);
    chunk
        .iter()
        .fold(Fr::zero(), |acc, &w| acc * base + fe(w + offset(bits)))
}

/// The smallest signed width (at least 2 bits) that holds every linear weight.
pub fn weight_bits(model: &QModel) -> u32 {
    let (lo, hi) = model
        .ops
        .iter()
        .filter_map(|op| match op {
            QOp::Linear(l) => Some(l.weight.iter()),
            _ => None,
        })
        .flatten()
        .fold((0i64, 0i64), |(lo, hi), &w| (lo.min(w), hi.max(w)));
    (2..=32)
        .find(|&b| lo >= -(1i64 << (b - 1)) && hi < (1i64 << (b - 1)))
        .unwrap_or(33)
}

/// Where chunk `c` of a packed sequence goes: lane `c mod lanes`, from row
/// `(c / lanes) · per` (a chunk holds up to `per` values, one a row).
pub fn chunk_slot(c: usize, lanes: usize, per: usize) -> (usize, usize) {
    let lanes = lanes.max(1);
    (c % lanes, (c / lanes) * per)
}

/// One packing lane: a value a row, packed by a running sum
/// `acc = acc_prev · 2^b + (v + 2^(b-1))` that restarts every chunk. The packing is
/// injective only for `b`-bit signed values: a lane for weights range-checks them by
/// lookup; a lane for a segment boundary does not, since its values are copies of cells
/// the circuit already bounds to the activation width (a rescale's lookup, or the linked
/// input's range check).
#[derive(Clone, Debug)]
pub struct PackConfig {
    pub w: Column<Advice>,
    pub acc: Column<Advice>,
    pub q_first: Selector,
    pub q_step: Selector,
}

impl PackConfig {
    /// A lane for `bits`-bit values, range-checked against `range` when given.
    pub fn configure(
        meta: &mut ConstraintSystem<Fr>,
        range: Option<&TableConfig>,
        bits: u32,
    ) -> Self {
        let (w, acc) = (meta.advice_column(), meta.advice_column());
        meta.enable_equality(w);
        meta.enable_equality(acc);
        let (q_first, q_step) = (meta.complex_selector(), meta.complex_selector());
        let off = Expression::Constant(fe(offset(bits)));
        let base = Expression::Constant(Fr::from(1u64 << bits));
        meta.create_gate("packing", |meta| {
            let first = meta.query_selector(q_first);
            let step = meta.query_selector(q_step);
            let w = meta.query_advice(w, Rotation::cur());
            let cur = meta.query_advice(acc, Rotation::cur());
            let prev = meta.query_advice(acc, Rotation::prev());
            vec![
                first * (cur.clone() - w.clone() - off.clone()),
                step * (cur - prev * base - w - off.clone()),
            ]
        });
        if let Some(table) = range.map(TableConfig::ranges) {
            meta.lookup("weight range", |meta| {
                let q = meta.query_selector(q_first) + meta.query_selector(q_step);
                let w = meta.query_advice(w, Rotation::cur());
                let shifted = q.clone() * (w + off);
                vec![
                    (q * Expression::Constant(Fr::from(WEIGHT_TAG)), table.tag),
                    (shifted.clone(), table.input),
                    (shifted, table.output),
                ]
            });
        }
        PackConfig {
            w,
            acc,
            q_first,
            q_step,
        }
    }

    /// Lays out one chunk (the values as field elements) from `row`; returns the values'
    /// cells, the packed cell and its value.
    pub fn assign_chunk(
        &self,
        region: &mut Region<'_, Fr>,
        row: usize,
        chunk: &[Value<Fr>],
        bits: u32,
    ) -> Result<(Vec<Cell>, Cell, Value<Fr>), Error> {
        let base = Fr::from(1u64 << bits);
        let off = fe(offset(bits));
        let mut acc = Value::known(Fr::zero());
        let mut cells = Vec::with_capacity(chunk.len());
        let mut packed = None;
        for (t, &w) in chunk.iter().enumerate() {
            if t == 0 {
                self.q_first.enable(region, row + t)?;
            } else {
                self.q_step.enable(region, row + t)?;
            }
            acc = acc * Value::known(base) + w + Value::known(off);
            cells.push(region.assign_advice(self.w, row + t, w).cell());
            packed = Some(region.assign_advice(self.acc, row + t, acc).cell());
        }
        Ok((cells, packed.ok_or(Error::Synthesis)?, acc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_is_positional_and_offset() {
        // [-2, 1] at 3 bits: (−2+4)·8 + (1+4) = 21.
        assert_eq!(pack(&[-2, 1], 3), Fr::from(21));
        assert_eq!(per_element(12), 21);
    }
}
