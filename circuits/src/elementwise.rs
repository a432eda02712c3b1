//! Element-wise ops, one element per row of a *lane* (a set of four advice columns).
//!
//! Rescale (with optional ReLU), `q_rescale` rows:
//! ```text
//! in0 = in1 · 2^shift + aux        (gate; f_a = 2^shift)
//! (RELU, in1, out)       ∈ table   in1 is bounded and out = relu(in1)
//! (RELU, aux, aux)       ∈ table   0 ≤ aux < 2^(B-1)
//! (RELU, aux·f_b, aux·f_b) ∈ table with f_b = 2^(B-1-shift): aux < 2^shift
//! ```
//! so `in1 = floor(in0 / 2^shift)` exactly: with `in1` and `aux` small, the field
//! equation is an integer equation. The result is `out` for a ReLU, `in1` otherwise.
//!
//! Add, `q_add` rows: `out = in0 · f_a + in1 · f_b + f_k` (scale alignment by powers of
//! two, or a constant operand in `f_k`).
//!
//! Range lookups use the fixed tag column `tag_range`; on rows that are not rescales the
//! tag is 0, which forces `aux` to 0 (see [`crate::table`]).

use halo2_proofs::circuit::{Region, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{Advice, Column, ConstraintSystem, Error, Fixed, Selector};
use halo2_proofs::poly::Rotation;
use zkinfer_qir::{floor_shift, Add, AddOperand, QModel, Rescale};

use crate::table::{TableConfig, TableFn};
use crate::wires::Wires;
use crate::{fe, fe128};

#[derive(Clone, Debug)]
pub struct LaneConfig {
    pub in0: Column<Advice>,
    pub in1: Column<Advice>,
    pub aux: Column<Advice>,
    pub out: Column<Advice>,
    pub f_a: Column<Fixed>,
    pub f_b: Column<Fixed>,
    pub f_k: Column<Fixed>,
    pub tag_act: Column<Fixed>,
    pub tag_range: Column<Fixed>,
    pub q_rescale: Selector,
    pub q_add: Selector,
}

impl LaneConfig {
    pub fn configure(meta: &mut ConstraintSystem<Fr>, table: &TableConfig) -> Self {
        let [in0, in1, aux, out] = [(); 4].map(|_| meta.advice_column());
        let [f_a, f_b, f_k, tag_act, tag_range] = [(); 5].map(|_| meta.fixed_column());
        for c in [in0, in1, out] {
            meta.enable_equality(c);
        }
        let q_rescale = meta.complex_selector();
        let q_add = meta.selector();
        meta.create_gate("rescale", |meta| {
            let q = meta.query_selector(q_rescale);
            let a = meta.query_advice(in0, Rotation::cur());
            let y = meta.query_advice(in1, Rotation::cur());
            let rem = meta.query_advice(aux, Rotation::cur());
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
        meta.lookup("activation", |meta| {
            let q = meta.query_selector(q_rescale);
            let tag = meta.query_fixed(tag_act, Rotation::cur());
            let y = meta.query_advice(in1, Rotation::cur());
            let z = meta.query_advice(out, Rotation::cur());
            vec![
                (tag, table.tag),
                (q.clone() * y, table.input),
                (q * z, table.output),
            ]
        });
        meta.lookup("remainder range", |meta| {
            let tag = meta.query_fixed(tag_range, Rotation::cur());
            let rem = meta.query_advice(aux, Rotation::cur());
            vec![
                (tag, table.tag),
                (rem.clone(), table.input),
                (rem, table.output),
            ]
        });
        meta.lookup("remainder below 2^shift", |meta| {
            let tag = meta.query_fixed(tag_range, Rotation::cur());
            let rem = meta.query_advice(aux, Rotation::cur());
            let scaled = rem * meta.query_fixed(f_b, Rotation::cur());
            vec![
                (tag, table.tag),
                (scaled.clone(), table.input),
                (scaled, table.output),
            ]
        });
        LaneConfig {
            in0,
            in1,
            aux,
            out,
            f_a,
            f_b,
            f_k,
            tag_act,
            tag_range,
            q_rescale,
            q_add,
        }
    }

    /// One element of a rescale at `row`.
    pub fn assign_rescale(
        &self,
        region: &mut Region<'_, Fr>,
        wires: &mut Wires<'_>,
        model: &QModel,
        op: &Rescale,
        i: usize,
        row: usize,
    ) -> Result<(), Error> {
        self.q_rescale.enable(region, row)?;
        wires.copy_in(region, self.in0, row, op.input, i)?;
        // Outputs come from the trace (a corrupted trace must fail here); the pre-activation
        // of a ReLU and the remainder are derived from the input.
        let (y, z) = match (wires.raw(op.input, i), wires.raw(op.output, i)) {
            (Some(x), Some(o)) if op.relu => (Some(floor_shift(x, op.shift).0), Some(o)),
            (Some(_), Some(o)) => (Some(o), Some(TableFn::Relu.eval(o))),
            _ => (None, None),
        };
        let rem = wires
            .raw(op.input, i)
            .zip(y)
            .map(|(x, y)| x as i128 - ((y as i128) << op.shift));
        let known = |v: Option<i128>| v.map(fe128).map(Value::known).unwrap_or(Value::unknown());
        let y_cell = region
            .assign_advice(self.in1, row, known(y.map(i128::from)))
            .cell();
        region.assign_advice(self.aux, row, known(rem));
        let z_cell = region
            .assign_advice(self.out, row, known(z.map(i128::from)))
            .cell();
        let half_bits = model.act_bits - 1;
        region.assign_fixed(self.f_a, row, Fr::from(1u64 << op.shift));
        region.assign_fixed(self.f_b, row, Fr::from(1u64 << (half_bits - op.shift)));
        region.assign_fixed(self.tag_act, row, Fr::from(TableFn::Relu.tag()));
        region.assign_fixed(self.tag_range, row, Fr::from(TableFn::Relu.tag()));
        wires.define(op.output, i, if op.relu { z_cell } else { y_cell });
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
}
