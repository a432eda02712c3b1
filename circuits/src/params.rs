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
use halo2_proofs::plonk::{
    Advice, Column, ConstraintSystem, Error, Expression, Selector, VirtualCells,
};
use halo2_proofs::poly::Rotation;
use zkinfer_qir::{AddOperand, QModel, QOp};

use crate::fe;
use crate::poseidon::{hash, Domain};
use crate::table::{weight_limbs, TableConfig, RANGE_TAG, WEIGHT_TAG};

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
///
/// A weight's offset value `u = w + 2^(b-1)` is looked up whole against the table's
/// `[0, 2^b)` ([`WEIGHT_TAG`]), or, where the range checks are in limbs, as two limbs:
/// `hi` (an advice cell) against `[0, 2^⌈b/2⌉)` and `lo = u − hi·2^⌊b/2⌋` (an
/// expression) against `[0, 2^⌊b/2⌋)`, which together hold `u` to `[0, 2^b)` without a
/// table of `2^b` rows.
#[derive(Clone, Debug)]
pub struct PackConfig {
    pub w: Column<Advice>,
    pub acc: Column<Advice>,
    pub q_first: Selector,
    pub q_step: Selector,
    /// The high limb of each weight, where weights are range-checked in limbs.
    pub hi: Option<Column<Advice>>,
}

/// How a packing lane range-checks its values.
#[derive(Clone, Copy, Debug)]
pub enum PackRange<'a> {
    /// Not at all (a boundary's values are bounded where they are computed).
    None,
    /// Against the table's `[0, 2^b)` ([`WEIGHT_TAG`]).
    Table(&'a TableConfig),
    /// In two limbs against the table's ranges ([`weight_limbs`]).
    Limbs(&'a TableConfig),
}

impl PackConfig {
    /// A lane for `bits`-bit values, range-checked as `range` says.
    pub fn configure(meta: &mut ConstraintSystem<Fr>, range: PackRange<'_>, bits: u32) -> Self {
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
        // `(tag, x, x)` looked up where either selector is on, `(0, 0, 0)` elsewhere.
        let range_lookup =
            |meta: &mut ConstraintSystem<Fr>,
             name: &'static str,
             table: &TableConfig,
             tag: u64,
             x: &dyn Fn(&mut VirtualCells<'_, Fr>) -> Expression<Fr>| {
                let table = table.ranges().clone();
                meta.lookup(name, |meta| {
                    let q = meta.query_selector(q_first) + meta.query_selector(q_step);
                    let x = q.clone() * x(meta);
                    vec![
                        (q * Expression::Constant(Fr::from(tag)), table.tag),
                        (x.clone(), table.input),
                        (x, table.output),
                    ]
                });
            };
        let shifted = move |meta: &mut VirtualCells<'_, Fr>| {
            meta.query_advice(w, Rotation::cur()) + Expression::Constant(fe(offset(bits)))
        };
        let mut hi = None;
        match range {
            PackRange::None => {}
            PackRange::Table(table) => {
                range_lookup(meta, "weight range", table, WEIGHT_TAG, &shifted);
            }
            PackRange::Limbs(table) => {
                let (lo_bits, hi_bits) = weight_limbs(bits);
                let high = meta.advice_column();
                let base = Expression::Constant(Fr::from(1u64 << lo_bits));
                let low = move |meta: &mut VirtualCells<'_, Fr>| {
                    shifted(meta) - meta.query_advice(high, Rotation::cur()) * base.clone()
                };
                let high_tag = RANGE_TAG + u64::from(hi_bits);
                range_lookup(
                    meta,
                    "weight low limb",
                    table,
                    RANGE_TAG + u64::from(lo_bits),
                    &low,
                );
                range_lookup(meta, "weight high limb", table, high_tag, &|meta| {
                    meta.query_advice(high, Rotation::cur())
                });
                hi = Some(high);
            }
        }
        PackConfig {
            w,
            acc,
            q_first,
            q_step,
            hi,
        }
    }

    /// Lays out one chunk of weights from `row` ([`PackConfig::assign_chunk`]) with their
    /// high limbs where they are range-checked in limbs.
    pub fn assign_weights(
        &self,
        region: &mut Region<'_, Fr>,
        row: usize,
        chunk: &[i64],
        bits: u32,
    ) -> Result<(Vec<Cell>, Cell, Value<Fr>), Error> {
        let values: Vec<_> = chunk.iter().map(|&w| Value::known(fe(w))).collect();
        let packed = self.assign_chunk(region, row, &values, bits)?;
        if let Some(hi) = self.hi {
            let (lo_bits, _) = weight_limbs(bits);
            for (t, &w) in chunk.iter().enumerate() {
                let high = (w + offset(bits)) >> lo_bits;
                region.assign_advice(hi, row + t, Value::known(fe(high)));
            }
        }
        Ok(packed)
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
    // Test code: a panic is the failure report.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use halo2_proofs::circuit::{Layouter, SimpleFloorPlanner};
    use halo2_proofs::dev::MockProver;
    use halo2_proofs::plonk::Circuit;

    use super::*;
    use crate::table::range_entries;
    use crate::Layout;

    /// Weight width of the limb tests, and the activation width of their table.
    const BITS: u32 = 8;
    const ACT: u32 = 8;

    /// One weight `.0` alone in a chunk of a packing lane that range-checks in limbs,
    /// with `.1` as its high limb (honest: `(w + 2^(b-1)) >> ⌊b/2⌋`).
    #[derive(Clone)]
    struct OneWeight(i64, i64);

    impl Circuit<Fr> for OneWeight {
        type Config = (PackConfig, TableConfig);
        type FloorPlanner = SimpleFloorPlanner;
        type Params = ();

        fn without_witnesses(&self) -> Self {
            self.clone()
        }

        fn configure(meta: &mut ConstraintSystem<Fr>) -> Self::Config {
            let table = TableConfig::configure(meta, 1);
            (
                PackConfig::configure(meta, PackRange::Limbs(&table), BITS),
                table,
            )
        }

        fn synthesize(
            &self,
            (pack, table): Self::Config,
            mut layouter: impl Layouter<Fr>,
        ) -> Result<(), Error> {
            let layout = Layout {
                limb_bits: ACT / 2,
                weight_bits: BITS,
                ..Layout::default()
            };
            table
                .ranges()
                .assign(&mut layouter, range_entries(ACT, &layout))?;
            layouter.assign_region(
                || "weight",
                |mut region| {
                    let w = Value::known(fe(self.0));
                    pack.assign_chunk(&mut region, 0, &[w], BITS)?;
                    let hi = pack.hi.ok_or(Error::Synthesis)?;
                    region.assign_advice(hi, 0, Value::known(fe(self.1)));
                    Ok(())
                },
            )
        }
    }

    fn accepts(w: i64, hi: i64) -> bool {
        MockProver::run(ACT + 2, &OneWeight(w, hi), vec![])
            .unwrap()
            .verify()
            .is_ok()
    }

    #[test]
    fn weight_limbs_hold_a_weight_to_its_width_whatever_the_high_limb() {
        let (lo_bits, hi_bits) = weight_limbs(BITS);
        let half = offset(BITS);
        let honest = |w: i64| (w + half) >> lo_bits;
        for w in [-half, -1, 0, 1, half - 1] {
            assert!(accepts(w, honest(w)), "in range: {w}");
            assert!(
                !accepts(w, honest(w) + 1),
                "{w} with a high limb one too many"
            );
            assert!(
                !accepts(w, honest(w) - 1),
                "{w} with a high limb one too few"
            );
        }
        // Out of range by one at either end, or by a whole `2^b` (the packing's collision),
        // with every high limb a prover could write (and a few outside the table).
        let highs = -2..(1i64 << hi_bits) + 2;
        for w in [-half - 1, half, half + (1 << BITS), -half - (1 << BITS)] {
            for hi in highs.clone() {
                assert!(!accepts(w, hi), "out of range: {w} with high limb {hi}");
            }
        }
    }

    #[test]
    fn packing_is_positional_and_offset() {
        // [-2, 1] at 3 bits: (−2+4)·8 + (1+4) = 21.
        assert_eq!(pack(&[-2, 1], 3), Fr::from(21));
        assert_eq!(per_element(12), 21);
    }
}
