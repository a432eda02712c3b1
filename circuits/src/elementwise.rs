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
//! a lane is four advice columns, three fixed ones and four selectors.

use halo2_proofs::circuit::{Cell, Region, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{
    Advice, Column, ConstraintSystem, Error, Expression, Fixed, Selector, VirtualCells,
};
use halo2_proofs::poly::Rotation;
use zkinfer_qir::{floor_shift, Activation, Add, AddOperand, Mul, QModel, Rescale};

use crate::table::{tag, TableConfig, RELU_TAG};
use crate::wires::{Param, Wires};
use crate::{fe, fe128};

#[derive(Clone, Debug)]
pub struct LaneConfig {
    pub in0: Column<Advice>,
    pub in1: Column<Advice>,
    pub aux: Column<Advice>,
    pub out: Column<Advice>,
    pub f_a: Column<Fixed>,
    pub f_b: Column<Fixed>,
    /// The constant of an addition; on activation rows, the lookup's tag.
    pub f_k: Column<Fixed>,
    pub q_rescale: Selector,
    /// Rescale rows whose result is bounded (all but the first row of a wide rescale).
    pub q_act: Selector,
    pub q_add: Selector,
    pub q_mul: Selector,
}

impl LaneConfig {
    pub fn configure(meta: &mut ConstraintSystem<Fr>, table: &TableConfig) -> Self {
        let [in0, in1, aux, out] = [(); 4].map(|_| meta.advice_column());
        let [f_a, f_b, f_k] = [(); 3].map(|_| meta.fixed_column());
        for c in [in0, in1, out] {
            meta.enable_equality(c);
        }
        let q_rescale = meta.complex_selector();
        let q_act = meta.complex_selector();
        let q_add = meta.selector();
        let q_mul = meta.selector();
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
            let q = meta.query_selector(q_act);
            let tag = meta.query_fixed(f_k, Rotation::cur());
            let y = meta.query_advice(in1, Rotation::cur());
            let z = meta.query_advice(out, Rotation::cur());
            vec![
                (q.clone() * tag, table.tag),
                (q.clone() * y, table.input),
                (q * z, table.output),
            ]
        });
        let range_tag = |meta: &mut VirtualCells<'_, Fr>| {
            meta.query_selector(q_rescale) * Expression::Constant(Fr::from(RELU_TAG))
        };
        meta.lookup("remainder range", |meta| {
            let tag = range_tag(meta);
            let rem = meta.query_advice(aux, Rotation::cur());
            vec![
                (tag, table.tag),
                (rem.clone(), table.input),
                (rem, table.output),
            ]
        });
        meta.lookup("remainder below 2^shift", |meta| {
            let tag = range_tag(meta);
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
            q_rescale,
            q_act,
            q_add,
            q_mul,
        }
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
        region.assign_advice(self.aux, row, known(parts.map(|p| p.1)));
        region.assign_advice(self.out, row, Value::known(Fr::zero()));
        self.rescale_fixed(region, model, s1, None, row);
        Ok((y1, parts.map(|p| p.0)))
    }

    fn rescale_fixed(
        &self,
        region: &mut Region<'_, Fr>,
        model: &QModel,
        shift: u32,
        act: Option<Activation>,
        row: usize,
    ) {
        let half_bits = model.act_bits - 1;
        region.assign_fixed(self.f_a, row, Fr::from(1u64 << shift));
        region.assign_fixed(self.f_b, row, Fr::from(1u64 << (half_bits - shift)));
        // The first row of a wide rescale has no activation (q_act off; tag 0).
        let act_tag = match act {
            Some(a) => tag(a),
            None => 0,
        };
        region.assign_fixed(self.f_k, row, Fr::from(act_tag));
    }

    /// One element of a rescale at `row` (for a wide rescale, its second row: the input is
    /// `from = (cell, value)` of the first row and the shift what is left).
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
    ) -> Result<(), Error> {
        self.q_rescale.enable(region, row)?;
        self.q_act.enable(region, row)?;
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
        let known = |v: Option<i128>| v.map(fe128).map(Value::known).unwrap_or(Value::unknown());
        let y_cell = region
            .assign_advice(self.in1, row, known(y.map(i128::from)))
            .cell();
        region.assign_advice(self.aux, row, known(rem));
        let z_cell = region
            .assign_advice(self.out, row, known(z.map(i128::from)))
            .cell();
        self.rescale_fixed(region, model, shift, Some(op.act), row);
        let result = if op.act == Activation::Identity {
            y_cell
        } else {
            z_cell
        };
        wires.define(op.output, i, result);
        Ok(())
    }

    /// The range check of element `i` of the model input, which becomes its canonical
    /// cell: `(RELU, x, relu(x))` is in the table iff `x` is a `B`-bit signed integer. For
    /// a private or hashed input, which no public value pins (a `q_act` row with neither
    /// gate: `aux` is tied to 0 by the range lookups' tag 0).
    pub fn assign_input_range(
        &self,
        region: &mut Region<'_, Fr>,
        wires: &mut Wires<'_>,
        input: zkinfer_qir::ValueId,
        i: usize,
        row: usize,
    ) -> Result<(), Error> {
        self.q_act.enable(region, row)?;
        let x = wires.raw(input, i);
        region.assign_advice(self.in0, row, Value::known(Fr::zero()));
        let known = |v: Option<i64>| v.map(fe).map(Value::known).unwrap_or(Value::unknown());
        let cell = region.assign_advice(self.in1, row, known(x)).cell();
        region.assign_advice(self.aux, row, Value::known(Fr::zero()));
        region.assign_advice(self.out, row, known(x.map(|x| x.max(0))));
        region.assign_fixed(self.f_k, row, Fr::from(RELU_TAG));
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
/// lookups' `q_rescale · RELU`, the activation's `q_act · f_k`) switch their lookups on
/// exactly where the gates are.
#[cfg(test)]
mod tests {
    // Test code: a panic is the failure report.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use halo2_proofs::circuit::{Layouter, SimpleFloorPlanner};
    use halo2_proofs::dev::MockProver;
    use halo2_proofs::plonk::Circuit;

    use super::*;

    /// Activation width of the test table.
    const B: u32 = 8;

    /// What one row holds: selectors on, advice `[in0, in1, aux, out]`, fixed
    /// `[f_a, f_b, f_k]`.
    #[derive(Clone, Copy, Default)]
    struct Row {
        rescale: bool,
        act: bool,
        add: bool,
        mul: bool,
        advice: [i64; 4],
        fixed: [i64; 3],
    }

    #[derive(Clone)]
    struct OneRow(Row);

    impl Circuit<Fr> for OneRow {
        type Config = (LaneConfig, TableConfig);
        type FloorPlanner = SimpleFloorPlanner;
        type Params = ();

        fn without_witnesses(&self) -> Self {
            self.clone()
        }

        fn configure(meta: &mut ConstraintSystem<Fr>) -> Self::Config {
            let table = TableConfig::configure(meta);
            (LaneConfig::configure(meta, &table), table)
        }

        fn synthesize(
            &self,
            (lane, table): Self::Config,
            mut layouter: impl Layouter<Fr>,
        ) -> Result<(), Error> {
            layouter.assign_table(
                || "table",
                |mut t| {
                    let half = 1i64 << (B - 1);
                    let rows = std::iter::once((0, 0, 0))
                        .chain((-half..half).map(|x| (RELU_TAG, x, x.max(0))));
                    for (row, (tag, x, y)) in rows.enumerate() {
                        t.assign_cell(|| "tag", table.tag, row, || Value::known(Fr::from(tag)))?;
                        t.assign_cell(|| "x", table.input, row, || Value::known(fe(x)))?;
                        t.assign_cell(|| "y", table.output, row, || Value::known(fe(y)))?;
                    }
                    Ok(())
                },
            )?;
            let r = self.0;
            layouter.assign_region(
                || "row",
                |mut region| {
                    for (on, q) in [
                        (r.rescale, lane.q_rescale),
                        (r.act, lane.q_act),
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
                    Ok(())
                },
            )
        }
    }

    fn accepts(row: Row) -> bool {
        MockProver::run(B + 2, &OneRow(row), vec![])
            .unwrap()
            .verify()
            .is_ok()
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

    #[test]
    fn other_rows_keep_their_remainder_at_zero_whatever_their_constant() {
        let add = |aux, k| Row {
            add: true,
            advice: [2, 3, aux, 2 * 3 + 3 * 5 + k],
            fixed: [3, 5, k],
            ..Row::default()
        };
        // An addition's constant sits where an activation row's tag does: not a tag here.
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
}
