//! Element-wise ops, one element per row of a *lane* (a set of four advice columns).
//!
//! Rescale (with optional ReLU), `q_rescale` rows:
//! ```text
//! in0 = in1 · 2^shift + aux        (gate; f_a = 2^shift)
//! (f_k, in1, out)        ∈ table   f_k the activation's tag (RELU, or a tabulated
//!                                  function's): in1 is bounded and out = f(in1)
//! (RELU, aux, aux)       ∈ table   0 ≤ aux < 2^(B-1)
//! (RELU, aux·f_b, aux·f_b) ∈ table with f_b = 2^(B-1-shift): aux < 2^shift
//! ```
//! so `in1 = floor(in0 / 2^shift)` exactly: with `in1` and `aux` small, the field
//! equation is an integer equation. The result is `out` for a ReLU, `in1` otherwise.
//! A shift of `B` or more takes two rows: the first divides by `2^(shift - B + 1)` with its
//! activation tag 0 (no bound on its result), the second divides that by `2^(B-1)` and
//! bounds the final result, which bounds the intermediate as well.
//!
//! Add, `q_add` rows: `out = in0 · f_a + in1 · f_b + f_k` (scale alignment by powers of
//! two, or a constant operand in `f_k`). Mul, `q_mul` rows: `out = in0 · in1`.
//!
//! The activation lookup's tag, `q_act · f_k` (the add gate's constant column, free on
//! the rows that look up), selects ReLU or one of the model's tabulated functions.
//!
//! With hashed weights the multiplier and constant of an addition of a constant are
//! parameters, not fixed cells: the element takes a `q_mul` row `t = a · mul` and a
//! `q_add` row `out = t + constant`, both parameters copied from the hashed ones.
//!
//! The range lookups' tag is `q_rescale · RELU`; on rows that are not rescales it is 0,
//! which forces `aux` to 0 (see [`crate::table`]). Neither tag needs a column of its own:
//! a lane is four advice columns, three fixed ones, and three selectors plus one for each
//! bank of the table (`q_act`, whose lookup reads that bank).
//!
//! With limbs of `L` bits (`Layout::limb_bits`), no lookup reads `2^B` rows but the
//! tabulated functions': the remainder is `aux + rem_hi·2^L`, each limb bounded by the
//! tag in `f_b` and `f_t` (`RANGE + j`: below `2^j`, `j ≤ L`, so `aux < 2^min(shift, L)`
//! and `rem_hi < 2^(shift - min(shift, L))`), and a ReLU or range-checked result takes a
//! `q_bound` row:
//! ```text
//! in1 = hi·2^L + lo,  out = s·in1          (gate)
//! (RANGE + L, lo, lo)  ∈ table             0 ≤ lo < 2^L
//! (SIGN, hi, s)        ∈ table             -2^(B-1-L) ≤ hi < 2^(B-1-L), s = [hi ≥ 0]
//! ```
//! so `in1` is a `B`-bit signed integer and `out = relu(in1)`. The tags are the constant
//! on `q_bound` and `q_rescale · f_b`, `q_rescale · f_t`: zero off those rows, which forces
//! the limbs to 0 there. A limb lane is eight advice columns, four fixed ones, and four
//! selectors plus one for each bank.

use halo2_proofs::circuit::{Cell, Region, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{
    Advice, Column, ConstraintSystem, Error, Expression, Fixed, Selector, VirtualCells,
};
use halo2_proofs::poly::Rotation;
use zkinfer_qir::{floor_shift, Activation, Add, AddOperand, Mul, QModel, Rescale};

use crate::table::{tag, TableConfig, RANGE_TAG, RELU_TAG, SIGN_TAG};
use crate::wires::{Param, Wires};
use crate::{fe, fe128};

#[derive(Clone, Debug)]
pub struct LaneConfig {
    pub in0: Column<Advice>,
    pub in1: Column<Advice>,
    /// The remainder of a rescale (its low limb, with limbs).
    pub aux: Column<Advice>,
    pub out: Column<Advice>,
    pub f_a: Column<Fixed>,
    /// An addition's second multiplier; on rescale rows the remainder's bound (see the
    /// module's documentation).
    pub f_b: Column<Fixed>,
    /// The constant of an addition; on activation rows, the lookup's tag.
    pub f_k: Column<Fixed>,
    pub q_rescale: Selector,
    /// Rows whose `in1` is looked up in a function's table (with limbs, only the
    /// tabulated functions; without, ReLU and the range check too): one selector and one
    /// lookup for each bank of the table.
    pub q_act: Vec<Selector>,
    pub q_add: Selector,
    pub q_mul: Selector,
    /// The columns of limb-decomposed range checks (`Layout::limb_bits > 0`).
    pub limbs: Option<Limbs>,
}

/// The lookup `(tag, v, v)` of the `(tag, v)` that `f` queries: `v` in the range `tag` names.
fn range_lookup(
    meta: &mut ConstraintSystem<Fr>,
    table: &TableConfig,
    name: &'static str,
    f: impl Fn(&mut VirtualCells<'_, Fr>) -> (Expression<Fr>, Expression<Fr>),
) {
    let table = table.ranges();
    meta.lookup(name, |meta| {
        let (tag, v) = f(meta);
        vec![
            (tag, table.tag),
            (v.clone(), table.input),
            (v, table.output),
        ]
    });
}

/// A lane's limb columns: `in1 = hi·2^L + lo` bounded and `out = relu(in1)` on
/// `q_bound` rows, and the remainder's high limb on rescale rows.
#[derive(Clone, Debug)]
pub struct Limbs {
    pub bits: u32,
    pub rem_hi: Column<Advice>,
    pub hi: Column<Advice>,
    pub lo: Column<Advice>,
    /// `[hi ≥ 0]`, from the sign table.
    pub sign: Column<Advice>,
    /// The remainder's high limb's bound, `RANGE_TAG + j` for `rem_hi < 2^j`.
    pub f_t: Column<Fixed>,
    pub q_bound: Selector,
}

impl LaneConfig {
    /// A lane; `limb_bits` is `Layout::limb_bits` (0: range checks against the RELU table).
    pub fn configure(meta: &mut ConstraintSystem<Fr>, table: &TableConfig, limb_bits: u32) -> Self {
        let [in0, in1, aux, out] = [(); 4].map(|_| meta.advice_column());
        let [f_a, f_b, f_k] = [(); 3].map(|_| meta.fixed_column());
        for c in [in0, in1, out] {
            meta.enable_equality(c);
        }
        let q_rescale = meta.complex_selector();
        let q_act: Vec<Selector> = table
            .banks
            .iter()
            .map(|_| meta.complex_selector())
            .collect();
        let q_add = meta.selector();
        let q_mul = meta.selector();
        let limbs = (limb_bits > 0).then(|| {
            let [rem_hi, hi, lo, sign] = [(); 4].map(|_| meta.advice_column());
            Limbs {
                bits: limb_bits,
                rem_hi,
                hi,
                lo,
                sign,
                f_t: meta.fixed_column(),
                q_bound: meta.complex_selector(),
            }
        });
        meta.create_gate("mul", |meta| {
            let q = meta.query_selector(q_mul);
            let a = meta.query_advice(in0, Rotation::cur());
            let b = meta.query_advice(in1, Rotation::cur());
            let c = meta.query_advice(out, Rotation::cur());
            vec![q * (a * b - c)]
        });
        meta.create_gate("rescale", |meta| {
            let q = meta.query_selector(q_rescale);
            let a = meta.query_advice(in0, Rotation::cur());
            let y = meta.query_advice(in1, Rotation::cur());
            let mut rem = meta.query_advice(aux, Rotation::cur());
            if let Some(l) = &limbs {
                let base = Expression::Constant(Fr::from(1u64 << l.bits));
                rem = rem + meta.query_advice(l.rem_hi, Rotation::cur()) * base;
            }
            let pow = meta.query_fixed(f_a, Rotation::cur());
            vec![q * (a - y * pow - rem)]
        });
        meta.create_gate("add", |meta| {
            let q = meta.query_selector(q_add);
            let a = meta.query_advice(in0, Rotation::cur());
            let b = meta.query_advice(in1, Rotation::cur());
            let c = meta.query_advice(out, Rotation::cur());
            let ma = meta.query_fixed(f_a, Rotation::cur());
            let mb = meta.query_fixed(f_b, Rotation::cur());
            let k = meta.query_fixed(f_k, Rotation::cur());
            vec![q * (a * ma + b * mb + k - c)]
        });
        for (&q_act, bank) in q_act.iter().zip(&table.banks) {
            meta.lookup("activation", |meta| {
                let q = meta.query_selector(q_act);
                let tag = meta.query_fixed(f_k, Rotation::cur());
                let y = meta.query_advice(in1, Rotation::cur());
                let z = meta.query_advice(out, Rotation::cur());
                vec![
                    (q.clone() * tag, bank.tag),
                    (q.clone() * y, bank.input),
                    (q * z, bank.output),
                ]
            });
        }
        match &limbs {
            None => {
                let range_tag = |meta: &mut VirtualCells<'_, Fr>| {
                    meta.query_selector(q_rescale) * Expression::Constant(Fr::from(RELU_TAG))
                };
                range_lookup(meta, table, "remainder range", |meta| {
                    (range_tag(meta), meta.query_advice(aux, Rotation::cur()))
                });
                range_lookup(meta, table, "remainder below 2^shift", |meta| {
                    let rem = meta.query_advice(aux, Rotation::cur());
                    (
                        range_tag(meta),
                        rem * meta.query_fixed(f_b, Rotation::cur()),
                    )
                });
            }
            Some(l) => {
                let (rem_hi, hi, lo, sign, f_t, q_bound) =
                    (l.rem_hi, l.hi, l.lo, l.sign, l.f_t, l.q_bound);
                range_lookup(meta, table, "remainder low limb", |meta| {
                    let tag =
                        meta.query_selector(q_rescale) * meta.query_fixed(f_b, Rotation::cur());
                    (tag, meta.query_advice(aux, Rotation::cur()))
                });
                range_lookup(meta, table, "remainder high limb", |meta| {
                    let tag =
                        meta.query_selector(q_rescale) * meta.query_fixed(f_t, Rotation::cur());
                    (tag, meta.query_advice(rem_hi, Rotation::cur()))
                });
                let lo_tag = Expression::Constant(Fr::from(RANGE_TAG + u64::from(limb_bits)));
                range_lookup(meta, table, "low limb", |meta| {
                    let q = meta.query_selector(q_bound);
                    (q * lo_tag.clone(), meta.query_advice(lo, Rotation::cur()))
                });
                let table = table.ranges();
                meta.lookup("high limb and sign", |meta| {
                    let q = meta.query_selector(q_bound);
                    let h = meta.query_advice(hi, Rotation::cur());
                    let s = meta.query_advice(sign, Rotation::cur());
                    vec![
                        (q * Expression::Constant(Fr::from(SIGN_TAG)), table.tag),
                        (h, table.input),
                        (s, table.output),
                    ]
                });
                meta.create_gate("limbs and relu", |meta| {
                    let q = meta.query_selector(q_bound);
                    let y = meta.query_advice(in1, Rotation::cur());
                    let z = meta.query_advice(out, Rotation::cur());
                    let h = meta.query_advice(hi, Rotation::cur());
                    let lo = meta.query_advice(lo, Rotation::cur());
                    let s = meta.query_advice(sign, Rotation::cur());
                    let base = Expression::Constant(Fr::from(1u64 << limb_bits));
                    vec![q.clone() * (y.clone() - h * base - lo), q * (z - s * y)]
                });
            }
        }
        LaneConfig {
            in0,
            in1,
            aux,
            out,
            f_a,
            f_b,
            f_k,
            q_rescale,
            q_act,
            q_add,
            q_mul,
            limbs,
        }
    }

    /// A rescale's remainder at `row`: `aux`, or with limbs `aux + rem_hi·2^L`.
    fn assign_remainder(&self, region: &mut Region<'_, Fr>, rem: Option<i128>, row: usize) {
        let known = |v: Option<i128>| v.map(fe128).map(Value::known).unwrap_or(Value::unknown());
        match &self.limbs {
            None => {
                region.assign_advice(self.aux, row, known(rem));
            }
            Some(l) => {
                let mask = (1i128 << l.bits) - 1;
                region.assign_advice(self.aux, row, known(rem.map(|r| r & mask)));
                region.assign_advice(l.rem_hi, row, known(rem.map(|r| r >> l.bits)));
            }
        }
    }

    /// Bounds `in1 = y` at `row` to `B` bits, with `out = relu(y)`: the RELU lookup
    /// (`q_act`, tag in `f_k`), or with limbs `y = hi·2^L + lo` (`q_bound`).
    fn assign_bound(
        &self,
        region: &mut Region<'_, Fr>,
        y: Option<i64>,
        row: usize,
    ) -> Result<(), Error> {
        let known = |v: Option<i64>| v.map(fe).map(Value::known).unwrap_or(Value::unknown());
        match &self.limbs {
            None => {
                self.q_act[0].enable(region, row)?;
                region.assign_fixed(self.f_k, row, Fr::from(RELU_TAG));
            }
            Some(l) => {
                l.q_bound.enable(region, row)?;
                region.assign_fixed(self.f_k, row, Fr::zero());
                region.assign_advice(l.hi, row, known(y.map(|y| y >> l.bits)));
                region.assign_advice(l.lo, row, known(y.map(|y| y & ((1i64 << l.bits) - 1))));
                region.assign_advice(l.sign, row, known(y.map(|y| i64::from(y >= 0))));
            }
        }
        Ok(())
    }

    /// The first row of a wide rescale (`shift ≥ B`): `in1 = floor(in0 / 2^s1)` with a
    /// range-checked remainder but no activation lookup. Its result is not bounded here;
    /// the second row ([`Self::assign_rescale`] from this cell) bounds it, which makes this
    /// row's field equation an integer one too. Returns the intermediate cell and value.
    #[allow(clippy::too_many_arguments)]
    pub fn assign_rescale_high(
        &self,
        region: &mut Region<'_, Fr>,
        wires: &mut Wires<'_>,
        model: &QModel,
        op: &Rescale,
        i: usize,
        s1: u32,
        row: usize,
    ) -> Result<(Cell, Option<i64>), Error> {
        self.q_rescale.enable(region, row)?;
        wires.copy_in(region, self.in0, row, op.input, i)?;
        let parts = wires.raw(op.input, i).map(|x| floor_shift(x, s1));
        let known = |v: Option<i64>| v.map(fe).map(Value::known).unwrap_or(Value::unknown());
        let y1 = region
            .assign_advice(self.in1, row, known(parts.map(|p| p.0)))
            .cell();
        self.assign_remainder(region, parts.map(|p| i128::from(p.1)), row);
        region.assign_advice(self.out, row, Value::known(Fr::zero()));
        self.rescale_fixed(region, model, s1, row)?;
        // No activation: q_act off, tag 0.
        region.assign_fixed(self.f_k, row, Fr::zero());
        Ok((y1, parts.map(|p| p.0)))
    }

    /// A rescale row's multiplier `2^shift` and the remainder's bound: `f_b = 2^(B-1-shift)`
    /// (`aux·f_b` is below `2^(B-1)`), or with limbs the tags of `[0, 2^j)` for each limb.
    fn rescale_fixed(
        &self,
        region: &mut Region<'_, Fr>,
        model: &QModel,
        shift: u32,
        row: usize,
    ) -> Result<(), Error> {
        region.assign_fixed(self.f_a, row, Fr::from(1u64 << shift));
        match &self.limbs {
            None => {
                let half_bits = model.act_bits - 1;
                region.assign_fixed(self.f_b, row, Fr::from(1u64 << (half_bits - shift)));
            }
            Some(l) => {
                let low = shift.min(l.bits);
                if shift - low > l.bits {
                    return Err(Error::Synthesis);
                }
                region.assign_fixed(self.f_b, row, Fr::from(RANGE_TAG + u64::from(low)));
                region.assign_fixed(l.f_t, row, Fr::from(RANGE_TAG + u64::from(shift - low)));
            }
        }
        Ok(())
    }

    /// One element of a rescale at `row` (for a wide rescale, its second row: the input is
    /// `from = (cell, value)` of the first row and the shift what is left); `banks` is
    /// [`crate::table::banks_of`], the table bank of each function.
    #[allow(clippy::too_many_arguments)]
    pub fn assign_rescale(
        &self,
        region: &mut Region<'_, Fr>,
        wires: &mut Wires<'_>,
        model: &QModel,
        op: &Rescale,
        i: usize,
        from: Option<(Cell, Option<i64>, u32)>,
        row: usize,
        banks: &[usize],
    ) -> Result<(), Error> {
        self.q_rescale.enable(region, row)?;
        let (x, shift) = match from {
            None => {
                wires.copy_in(region, self.in0, row, op.input, i)?;
                (wires.raw(op.input, i), op.shift)
            }
            Some((cell, value, shift)) => {
                let known = value.map(fe).map(Value::known).unwrap_or(Value::unknown());
                let c = region.assign_advice(self.in0, row, known).cell();
                region.constrain_equal(c, cell);
                (value, shift)
            }
        };
        // Outputs come from the trace (a corrupted trace must fail here); the pre-activation
        // of an activation and the remainder are derived from the input.
        let (y, z) = match (x, wires.raw(op.output, i)) {
            (Some(x), Some(o)) if op.act != Activation::Identity => {
                (Some(floor_shift(x, shift).0), Some(o))
            }
            (Some(_), Some(o)) => (Some(o), Some(o.max(0))),
            _ => (None, None),
        };
        let rem = x.zip(y).map(|(x, y)| x as i128 - ((y as i128) << shift));
        let known = |v: Option<i64>| v.map(fe).map(Value::known).unwrap_or(Value::unknown());
        let y_cell = region.assign_advice(self.in1, row, known(y)).cell();
        self.assign_remainder(region, rem, row);
        let z_cell = region.assign_advice(self.out, row, known(z)).cell();
        self.rescale_fixed(region, model, shift, row)?;
        match (op.act, &self.limbs) {
            (Activation::Table(i), _) => {
                let bank = banks.get(i).copied().ok_or(Error::Synthesis)?;
                let q_act = self.q_act.get(bank).ok_or(Error::Synthesis)?;
                q_act.enable(region, row)?;
                region.assign_fixed(self.f_k, row, Fr::from(tag(op.act)));
            }
            _ => self.assign_bound(region, y, row)?,
        }
        let result = if op.act == Activation::Identity {
            y_cell
        } else {
            z_cell
        };
        wires.define(op.output, i, result);
        Ok(())
    }

    /// The range check of element `i` of the model input, which becomes its canonical
    /// cell: `(RELU, x, relu(x))` is in the table iff `x` is a `B`-bit signed integer (or
    /// its limbs are in theirs). For a private or hashed input, which no public value pins
    /// (a bounded row with no gate of the rescale: `aux` is tied to 0 by the range
    /// lookups' tag 0).
    pub fn assign_input_range(
        &self,
        region: &mut Region<'_, Fr>,
        wires: &mut Wires<'_>,
        input: zkinfer_qir::ValueId,
        i: usize,
        row: usize,
    ) -> Result<(), Error> {
        let x = wires.raw(input, i);
        region.assign_advice(self.in0, row, Value::known(Fr::zero()));
        let known = |v: Option<i64>| v.map(fe).map(Value::known).unwrap_or(Value::unknown());
        let cell = region.assign_advice(self.in1, row, known(x)).cell();
        region.assign_advice(self.aux, row, Value::known(Fr::zero()));
        region.assign_advice(self.out, row, known(x.map(|x| x.max(0))));
        self.assign_bound(region, x, row)?;
        wires.define(input, i, cell);
        Ok(())
    }

    /// One element of a product of two computed values at `row`.
    pub fn assign_mul(
        &self,
        region: &mut Region<'_, Fr>,
        wires: &mut Wires<'_>,
        op: &Mul,
        i: usize,
        row: usize,
    ) -> Result<(), Error> {
        self.q_mul.enable(region, row)?;
        wires.copy_in(region, self.in0, row, op.a, i)?;
        wires.copy_in(region, self.in1, row, op.b, i)?;
        region.assign_advice(self.aux, row, Value::known(Fr::zero()));
        let c = region
            .assign_advice(self.out, row, wires.value(op.output, i))
            .cell();
        wires.define(op.output, i, c);
        Ok(())
    }

    /// One element of an addition at `row`.
    pub fn assign_add(
        &self,
        region: &mut Region<'_, Fr>,
        wires: &mut Wires<'_>,
        op: &Add,
        i: usize,
        row: usize,
    ) -> Result<(), Error> {
        self.q_add.enable(region, row)?;
        wires.copy_in(region, self.in0, row, op.a, i)?;
        let (b_mul, k) = match &op.b {
            AddOperand::Value { id, mul } => {
                wires.copy_in(region, self.in1, row, *id, i)?;
                (*mul, 0)
            }
            AddOperand::Constant(c) => {
                region.assign_advice(self.in1, row, Value::known(Fr::zero()));
                (0, c[i])
            }
        };
        region.assign_advice(self.aux, row, Value::known(Fr::zero()));
        let c = region
            .assign_advice(self.out, row, wires.value(op.output, i))
            .cell();
        region.assign_fixed(self.f_a, row, fe(op.a_mul_at(i)));
        region.assign_fixed(self.f_b, row, fe(b_mul));
        region.assign_fixed(self.f_k, row, fe(k));
        wires.define(op.output, i, c);
        Ok(())
    }

    /// With hashed weights, the first row of element `i` of an addition of a constant:
    /// `t = a · mul`. Returns `t`'s cell and value.
    pub fn assign_param_product(
        &self,
        region: &mut Region<'_, Fr>,
        wires: &mut Wires<'_>,
        op: &Add,
        op_index: usize,
        i: usize,
        row: usize,
    ) -> Result<(Cell, Option<i64>), Error> {
        self.q_mul.enable(region, row)?;
        wires.copy_in(region, self.in0, row, op.a, i)?;
        let mul = op.a_mul_at(i);
        let m = region
            .assign_advice(self.in1, row, Value::known(fe(mul)))
            .cell();
        wires.tie_param(region, m, op_index, Param::Mul(op, i))?;
        region.assign_advice(self.aux, row, Value::known(Fr::zero()));
        let t = wires.raw(op.a, i).map(|a| a * mul);
        let known = t.map(fe).map(Value::known).unwrap_or(Value::unknown());
        let cell = region.assign_advice(self.out, row, known).cell();
        Ok((cell, t))
    }

    /// The second row: `out = t + constant`.
    #[allow(clippy::too_many_arguments)]
    pub fn assign_param_sum(
        &self,
        region: &mut Region<'_, Fr>,
        wires: &mut Wires<'_>,
        op: &Add,
        op_index: usize,
        i: usize,
        (t_cell, t): (Cell, Option<i64>),
        row: usize,
    ) -> Result<(), Error> {
        self.q_add.enable(region, row)?;
        let known = t.map(fe).map(Value::known).unwrap_or(Value::unknown());
        let c = region.assign_advice(self.in0, row, known).cell();
        region.constrain_equal(c, t_cell);
        let AddOperand::Constant(k) = &op.b else {
            return Err(Error::Synthesis);
        };
        let kc = region
            .assign_advice(self.in1, row, Value::known(fe(k[i])))
            .cell();
        wires.tie_param(region, kc, op_index, Param::Constant(i))?;
        region.assign_advice(self.aux, row, Value::known(Fr::zero()));
        let out = region
            .assign_advice(self.out, row, wires.value(op.output, i))
            .cell();
        region.assign_fixed(self.f_a, row, Fr::one());
        region.assign_fixed(self.f_b, row, Fr::one());
        region.assign_fixed(self.f_k, row, Fr::zero());
        wires.define(op.output, i, out);
        Ok(())
    }
}

/// One lane's constraints on hand-written rows: the tags that are expressions (the range
/// lookups' `q_rescale · RELU`, the activation's `q_act · f_k`, the limbs' `q_bound ·
/// RANGE` and `q_rescale · f_b`) switch their lookups on exactly where the gates are.
#[cfg(test)]
mod tests {
    // Test code: a panic is the failure report.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use halo2_proofs::circuit::{Layouter, SimpleFloorPlanner};
    use halo2_proofs::dev::MockProver;
    use halo2_proofs::plonk::Circuit;

    use super::*;
    use crate::table::range_entries;

    /// Activation width of the test table, and its limbs.
    const B: u32 = 8;
    const L: u32 = 4;

    /// What one row holds: selectors on, advice `[in0, in1, aux, out]` and with limbs
    /// `[rem_hi, hi, lo, sign]`, fixed `[f_a, f_b, f_k]` and with limbs `f_t`.
    #[derive(Clone, Copy, Default)]
    struct Row {
        rescale: bool,
        act: bool,
        add: bool,
        mul: bool,
        bound: bool,
        advice: [i64; 4],
        limbs: [i64; 4],
        fixed: [i64; 3],
        f_t: i64,
    }

    /// One row of a lane with `.1`-bit limbs (0: none).
    #[derive(Clone)]
    struct OneRow(Row, u32);

    impl Circuit<Fr> for OneRow {
        type Config = (LaneConfig, TableConfig);
        type FloorPlanner = SimpleFloorPlanner;
        type Params = u32;

        fn without_witnesses(&self) -> Self {
            self.clone()
        }

        fn params(&self) -> u32 {
            self.1
        }

        fn configure_with_params(meta: &mut ConstraintSystem<Fr>, limb_bits: u32) -> Self::Config {
            let table = TableConfig::configure(meta, 1);
            (LaneConfig::configure(meta, &table, limb_bits), table)
        }

        fn configure(meta: &mut ConstraintSystem<Fr>) -> Self::Config {
            Self::configure_with_params(meta, 0)
        }

        fn synthesize(
            &self,
            (lane, table): Self::Config,
            mut layouter: impl Layouter<Fr>,
        ) -> Result<(), Error> {
            table.ranges().assign(
                &mut layouter,
                range_entries(
                    B,
                    &crate::Layout {
                        limb_bits: self.1,
                        ..crate::Layout::default()
                    },
                ),
            )?;
            let r = self.0;
            layouter.assign_region(
                || "row",
                |mut region| {
                    for (on, q) in [
                        (r.rescale, lane.q_rescale),
                        (r.act, lane.q_act[0]),
                        (r.add, lane.q_add),
                        (r.mul, lane.q_mul),
                    ] {
                        if on {
                            q.enable(&mut region, 0)?;
                        }
                    }
                    for (c, v) in [lane.in0, lane.in1, lane.aux, lane.out]
                        .iter()
                        .zip(r.advice)
                    {
                        region.assign_advice(*c, 0, Value::known(fe(v)));
                    }
                    for (c, v) in [lane.f_a, lane.f_b, lane.f_k].iter().zip(r.fixed) {
                        region.assign_fixed(*c, 0, fe(v));
                    }
                    if let Some(l) = &lane.limbs {
                        if r.bound {
                            l.q_bound.enable(&mut region, 0)?;
                        }
                        for (c, v) in [l.rem_hi, l.hi, l.lo, l.sign].iter().zip(r.limbs) {
                            region.assign_advice(*c, 0, Value::known(fe(v)));
                        }
                        region.assign_fixed(l.f_t, 0, fe(r.f_t));
                    }
                    Ok(())
                },
            )
        }
    }

    fn accepts_with(row: Row, limb_bits: u32) -> bool {
        MockProver::run(B + 2, &OneRow(row, limb_bits), vec![])
            .unwrap()
            .verify()
            .is_ok()
    }

    fn accepts(row: Row) -> bool {
        accepts_with(row, 0)
    }

    /// A rescale by 2^3 with ReLU of `in0`, the quotient, remainder and result given.
    fn rescale(in0: i64, y: i64, rem: i64, out: i64) -> Row {
        Row {
            rescale: true,
            act: true,
            advice: [in0, y, rem, out],
            fixed: [1 << 3, 1 << (B - 1 - 3), RELU_TAG as i64],
            ..Row::default()
        }
    }

    #[test]
    fn rescale_rows_check_quotient_remainder_and_activation() {
        assert!(accepts(rescale(-45, -6, 3, 0)));
        assert!(accepts(rescale(45, 5, 5, 5)));
        // The remainder at or past 2^shift, or negative, with the gate still satisfied.
        assert!(!accepts(rescale(45, 4, 13, 4)));
        assert!(!accepts(rescale(45, 6, -3, 6)));
        // A ReLU output that is not relu(in1), and a quotient past B bits.
        assert!(!accepts(rescale(-45, -6, 3, -6)));
        assert!(!accepts(rescale(1 << (B + 3), 1 << B, 0, 1 << B)));
    }

    /// A rescale by `2^shift` with ReLU in 4-bit limbs: `in0 = y·2^shift + rem` with
    /// `rem = rem_lo + rem_hi·2^4`, `y = hi·2^4 + lo`, `out = sign·y`; the limbs are given
    /// as they are (not derived), so that each can be pushed out of its range alone.
    #[allow(clippy::too_many_arguments)]
    fn limb_rescale(
        shift: u32,
        y: i64,
        (rem_lo, rem_hi): (i64, i64),
        (hi, lo): (i64, i64),
        sign: i64,
        out: i64,
    ) -> Row {
        let low = shift.min(L);
        Row {
            rescale: true,
            bound: true,
            advice: [(y << shift) + rem_lo + (rem_hi << L), y, rem_lo, out],
            limbs: [rem_hi, hi, lo, sign],
            fixed: [1 << shift, (RANGE_TAG + u64::from(low)) as i64, 0],
            f_t: (RANGE_TAG + u64::from(shift - low)) as i64,
            ..Row::default()
        }
    }

    /// The honest row of a rescale of `in0` by `2^shift` with ReLU.
    fn honest(in0: i64, shift: u32) -> Row {
        let (y, rem) = floor_shift(in0, shift);
        limb_rescale(
            shift,
            y,
            (rem & 15, rem >> L),
            (y >> L, y & 15),
            i64::from(y >= 0),
            y.max(0),
        )
    }

    #[test]
    fn limb_rows_reject_an_out_of_range_value_in_each_limb() {
        for (in0, shift) in [
            (-45, 3),
            (45, 3),
            (1000, 5),
            (-2000, 7),
            (127, 0),
            (-128 << 7, 7),
        ] {
            assert!(accepts_with(honest(in0, shift), L), "{in0} >> {shift}");
        }
        // 45 >> 3 as 4·8 + 13: the low remainder limb at or past 2^shift.
        assert!(!accepts_with(limb_rescale(3, 4, (13, 0), (0, 4), 1, 4), L));
        // A negative low remainder limb, and a high remainder limb past 2^(shift - L).
        assert!(!accepts_with(limb_rescale(3, 6, (-3, 0), (0, 6), 1, 6), L));
        assert!(!accepts_with(limb_rescale(6, 1, (0, 4), (0, 1), 1, 1), L));
        assert!(accepts_with(limb_rescale(6, 1, (0, 3), (0, 1), 1, 1), L));
        // The low remainder limb at 2^L with the high limb one less (same remainder).
        assert!(!accepts_with(limb_rescale(6, 1, (16, 2), (0, 1), 1, 1), L));
        // The low limb of y at 2^L (hi one less), and negative (hi one more).
        assert!(!accepts_with(
            limb_rescale(3, 40, (0, 0), (1, 24), 1, 40),
            L
        ));
        assert!(!accepts_with(
            limb_rescale(3, 40, (0, 0), (3, -8), 1, 40),
            L
        ));
        // y past B bits: the high limb out of the sign table, at both ends.
        assert!(accepts_with(
            limb_rescale(3, 127, (0, 0), (7, 15), 1, 127),
            L
        ));
        assert!(!accepts_with(
            limb_rescale(3, 128, (0, 0), (8, 0), 1, 128),
            L
        ));
        assert!(accepts_with(
            limb_rescale(3, -128, (0, 0), (-8, 0), 0, 0),
            L
        ));
        assert!(!accepts_with(
            limb_rescale(3, -129, (0, 0), (-9, 15), 0, 0),
            L
        ));
        // A wrong sign (ReLU passes a negative value, or zeroes a positive one).
        assert!(!accepts_with(
            limb_rescale(3, -6, (3, 0), (-1, 10), 1, -6),
            L
        ));
        assert!(!accepts_with(limb_rescale(3, 5, (5, 0), (0, 5), 0, 0), L));
        assert!(!accepts_with(limb_rescale(3, 5, (5, 0), (0, 5), 1, 0), L));
        // Limbs that do not add up to y.
        assert!(!accepts_with(limb_rescale(3, 5, (5, 0), (0, 6), 1, 5), L));
    }

    #[test]
    fn other_rows_keep_their_remainder_at_zero_whatever_their_constant() {
        for limb_bits in [0, L] {
            let accepts = |row| accepts_with(row, limb_bits);
            let add = |aux, k| Row {
                add: true,
                advice: [2, 3, aux, 2 * 3 + 3 * 5 + k],
                fixed: [3, 5, k],
                ..Row::default()
            };
            // An addition's constant sits where an activation row's tag does: not a tag
            // here, nor is its multiplier where a rescale row has its remainder's tag.
            assert!(accepts(add(0, 7)));
            assert!(accepts(add(0, RELU_TAG as i64)));
            assert!(!accepts(add(1, 7)));
            assert!(!accepts(add(3, RELU_TAG as i64)));
            let mul = |aux| Row {
                mul: true,
                advice: [4, -5, aux, -20],
                ..Row::default()
            };
            assert!(accepts(mul(0)));
            assert!(!accepts(mul(2)));
            // A row with no gate at all: out and in1 free, aux not.
            assert!(accepts(Row {
                advice: [9, 1000, 0, -77],
                fixed: [0, 0, 5],
                ..Row::default()
            }));
            assert!(!accepts(Row {
                advice: [0, 0, 1, 0],
                ..Row::default()
            }));
        }
        // With limbs, neither limb of a remainder nor of a bound survives off their rows,
        // whatever the fixed cells hold.
        for limbs in [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]] {
            let row = Row {
                add: true,
                advice: [2, 3, 0, 2 + 3 * (RANGE_TAG as i64)],
                fixed: [1, RANGE_TAG as i64, 0],
                f_t: (RANGE_TAG + 2) as i64,
                limbs,
                ..Row::default()
            };
            assert!(!accepts_with(row, L), "{limbs:?}");
            assert!(accepts_with(
                Row {
                    limbs: [0; 4],
                    ..row
                },
                L
            ));
        }
    }
}
