//! Linear layers: `C` output neurons × `D` inputs per row.
//!
//! A block computes `C` neurons of one input row. Its input `[1, x_0, …, x_{M-1}]` is
//! laid across the `D` x-columns, `D` elements a row; the fixed column `w[c][d]` holds
//! the matching weight of neuron `c` (the bias faces the leading 1). Each accumulator
//! column `acc[c]` carries the running sum to the next row:
//!
//! ```text
//! first row:  x_0 = 1,  acc_c[next] = Σ_d x_d · w_cd
//! later rows:           acc_c[next] = acc_c[cur] + Σ_d x_d · w_cd
//! ```
//!
//! The sum lands in `acc_c` on the row after the block, which is the next block's first
//! row (whose `acc` it does not read), so blocks pack with no gap. Weights are fixed
//! columns (the verifying key commits to them), or with `--params hashed` advice cells
//! copied from the hashed parameters ([`crate::params`]); padding weights are then tied
//! to the constant 0.

use halo2_proofs::circuit::{Region, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{
    Advice, Column, ConstraintSystem, Error, Expression, Fixed, Selector, VirtualCells,
};
use halo2_proofs::poly::Rotation;
use zkinfer_qir::{Linear, QModel};

use crate::wires::{Param, Wires};
use crate::{fe, fe128};

/// Where the weights live.
#[derive(Clone, Copy, Debug)]
pub enum WeightColumn {
    Fixed(Column<Fixed>),
    Advice(Column<Advice>),
}

impl WeightColumn {
    fn query(&self, meta: &mut VirtualCells<'_, Fr>) -> Expression<Fr> {
        match self {
            WeightColumn::Fixed(c) => meta.query_fixed(*c, Rotation::cur()),
            WeightColumn::Advice(c) => meta.query_advice(*c, Rotation::cur()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct LinearConfig {
    pub x: Vec<Column<Advice>>,
    pub acc: Vec<Column<Advice>>,
    /// `w[c][d]`
    pub w: Vec<Vec<WeightColumn>>,
    pub q_first: Selector,
    pub q_step: Selector,
}

/// Rows one block of a layer with `in_features` inputs takes with `x_cols` columns.
pub fn block_rows(in_features: usize, x_cols: usize) -> usize {
    (in_features + 1).div_ceil(x_cols)
}

/// Rows a linear op takes (excluding the single trailing row of the whole section).
pub fn linear_rows(op: &Linear, model: &QModel, x_cols: usize, acc_cols: usize) -> usize {
    op.rows(model) * op.out_features.div_ceil(acc_cols) * block_rows(op.in_features, x_cols)
}

/// The gate of a block of dot products: on its first row `acc_c[next] = Σ_d x_d · w_cd`,
/// on the others `acc_c[next] = acc_c[cur] + Σ_d x_d · w_cd`; with `leading_one`, `x_0 = 1`
/// on the first row (the bias's input).
pub fn block_gate(
    meta: &mut ConstraintSystem<Fr>,
    name: &'static str,
    x: &[Column<Advice>],
    acc: &[Column<Advice>],
    w: &[Vec<WeightColumn>],
    (q_first, q_step): (Selector, Selector),
    leading_one: bool,
) {
    meta.create_gate(name, |meta| {
        let first = meta.query_selector(q_first);
        let step = meta.query_selector(q_step);
        let xs: Vec<_> = x
            .iter()
            .map(|c| meta.query_advice(*c, Rotation::cur()))
            .collect();
        let mut constraints = Vec::new();
        if leading_one {
            constraints.push(first.clone() * (xs[0].clone() - Expression::Constant(Fr::one())));
        }
        for (c, acc_col) in acc.iter().enumerate() {
            let cur = meta.query_advice(*acc_col, Rotation::cur());
            let next = meta.query_advice(*acc_col, Rotation::next());
            let dot = xs
                .iter()
                .zip(&w[c])
                .map(|(xv, wc)| xv.clone() * wc.query(meta))
                .reduce(|a, b| a + b)
                .unwrap_or(Expression::Constant(Fr::zero()));
            constraints.push(first.clone() * (next.clone() - dot.clone()));
            constraints.push(step.clone() * (next - cur - dot));
        }
        constraints
    });
}

/// Switches on, at `row`, the gate of a block's row `t`: its first row's or a later one's.
pub fn enable_block_row(
    region: &mut Region<'_, Fr>,
    (q_first, q_step): (Selector, Selector),
    t: usize,
    row: usize,
) -> Result<(), Error> {
    if t == 0 {
        q_first.enable(region, row)
    } else {
        q_step.enable(region, row)
    }
}

/// The weight block row `t` of neuron `n` faces at input position `d` of a block of
/// `x_cols` inputs (`[1, x_0, …]`: the bias first), with the parameter it is tied to
/// when the weights are hashed.
pub fn weight_at<'o>(op: &'o Linear, r: usize, n: usize, j: usize) -> (i64, Option<Param<'o>>) {
    let m = op.in_features;
    if n >= op.out_features {
        (0, None)
    } else if j > m {
        (0, Some(Param::Zero))
    } else if j == 0 {
        (op.bias_for(r, n), Some(Param::Bias(op, r, n)))
    } else {
        (op.weight[n * m + j - 1], Some(Param::Weight(n * m + j - 1)))
    }
}

impl LinearConfig {
    pub fn configure(
        meta: &mut ConstraintSystem<Fr>,
        x_cols: usize,
        acc_cols: usize,
        hashed: bool,
    ) -> Self {
        let x: Vec<_> = (0..x_cols).map(|_| meta.advice_column()).collect();
        let acc: Vec<_> = (0..acc_cols).map(|_| meta.advice_column()).collect();
        let mut weight_column = || {
            if hashed {
                let c = meta.advice_column();
                meta.enable_equality(c);
                WeightColumn::Advice(c)
            } else {
                WeightColumn::Fixed(meta.fixed_column())
            }
        };
        let w: Vec<Vec<_>> = (0..acc_cols)
            .map(|_| (0..x_cols).map(|_| weight_column()).collect())
            .collect();
        for c in x.iter().chain(&acc) {
            meta.enable_equality(*c);
        }
        let q_first = meta.selector();
        let q_step = meta.selector();
        block_gate(meta, "linear", &x, &acc, &w, (q_first, q_step), true);
        LinearConfig {
            x,
            acc,
            w,
            q_first,
            q_step,
        }
    }

    /// Zeroes the accumulators on the section's first row (no block result lands there).
    pub fn init(&self, region: &mut Region<'_, Fr>, offset: usize) {
        for c in &self.acc {
            region.assign_advice(*c, offset, Value::known(Fr::zero()));
        }
    }

    /// Writes, on `row`, the weights of neurons `n0..n0 + C` (of input row `r`) that
    /// block row `t` faces; returns them, `[c][d]`.
    #[allow(clippy::too_many_arguments)]
    pub fn place_weights(
        &self,
        region: &mut Region<'_, Fr>,
        wires: &mut Wires<'_>,
        op: &Linear,
        op_index: usize,
        r: usize,
        n0: usize,
        t: usize,
        row: usize,
    ) -> Result<Vec<Vec<i64>>, Error> {
        let d_cols = self.x.len();
        let mut out = Vec::with_capacity(self.w.len());
        for (c, columns) in self.w.iter().enumerate() {
            let mut ws = Vec::with_capacity(d_cols);
            for (d, column) in columns.iter().enumerate() {
                let (wv, param) = weight_at(op, r, n0 + c, t * d_cols + d);
                match column {
                    WeightColumn::Fixed(col) => {
                        region.assign_fixed(*col, row, fe(wv));
                    }
                    WeightColumn::Advice(col) => {
                        let cell = region.assign_advice(*col, row, Value::known(fe(wv))).cell();
                        if let Some(p) = param {
                            wires.tie_param(region, cell, op_index, p)?;
                        }
                    }
                }
                ws.push(wv);
            }
            out.push(ws);
        }
        Ok(out)
    }

    /// Lays out `op` from `offset`; returns the next free row.
    pub fn assign(
        &self,
        region: &mut Region<'_, Fr>,
        wires: &mut Wires<'_>,
        model: &QModel,
        op: &Linear,
        op_index: usize,
        mut offset: usize,
    ) -> Result<usize, Error> {
        let (d_cols, c_cols) = (self.x.len(), self.acc.len());
        let m = op.in_features;
        let brows = block_rows(m, d_cols);
        for r in 0..op.rows(model) {
            for n0 in (0..op.out_features).step_by(c_cols) {
                // Running sums per neuron of the block (known only when proving).
                let mut sums: Vec<Option<i128>> = vec![wires.raw(op.input, 0).map(|_| 0); c_cols];
                for t in 0..brows {
                    let row = offset + t;
                    enable_block_row(region, (self.q_first, self.q_step), t, row)?;
                    let mut xrow: Vec<Option<i128>> = Vec::with_capacity(d_cols);
                    for d in 0..d_cols {
                        let j = t * d_cols + d; // position in [1, x_0, ..]
                        if j == 0 {
                            region.assign_advice(self.x[d], row, Value::known(Fr::one()));
                            xrow.push(Some(1));
                        } else if j <= m {
                            let idx = r * m + j - 1;
                            wires.copy_in(region, self.x[d], row, op.input, idx)?;
                            xrow.push(wires.raw(op.input, idx).map(i128::from));
                        } else {
                            region.assign_advice(self.x[d], row, Value::known(Fr::zero()));
                            xrow.push(Some(0));
                        }
                    }
                    let w = self.place_weights(region, wires, op, op_index, r, n0, t, row)?;
                    for (c, sum) in sums.iter_mut().enumerate() {
                        if let Some(s) = sum.as_mut() {
                            for (xv, wv) in xrow.iter().zip(&w[c]) {
                                *s += xv.unwrap_or(0) * *wv as i128;
                            }
                        }
                        let v = match sum {
                            Some(s) => Value::known(fe128(*s)),
                            None => Value::unknown(),
                        };
                        let cell = region.assign_advice(self.acc[c], row + 1, v).cell();
                        let n = n0 + c;
                        if t + 1 == brows && n < op.out_features {
                            wires.define(op.output, r * op.out_features + n, cell);
                        }
                    }
                }
                offset += brows;
            }
        }
        Ok(offset)
    }
}
