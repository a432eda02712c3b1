//! The layout: how many columns each section gets, and the `k` that fits it.
//!
//! [`plan_layout`] searches column counts for the cheapest circuit under a simple cost
//! model: proving work grows with `2^k × (advice columns + 3 × lookups + permutation
//! columns + fixed columns / 4)`. Row counts come from the chips' own formulas, so the
//! plan is exactly what synthesis will lay out.

use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{Circuit, ConstraintSystem};
use serde::{Deserialize, Serialize};
use zkinfer_qir::{QModel, QOp};

use crate::linear::linear_rows;
use crate::model::ModelCircuit;
use crate::table::table_rows;
use crate::CircuitError;

/// Column counts of a model circuit, and its size `2^k`. This is the circuit's
/// `Circuit::Params`: key generation and key loading rebuild the constraint system from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub k: u32,
    /// Inputs per row of a linear block (`D`).
    pub x_cols: usize,
    /// Output neurons per linear block (`C`).
    pub acc_cols: usize,
    /// Element-wise lanes (`E`).
    pub lanes: usize,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            k: 0,
            x_cols: 1,
            acc_cols: 1,
            lanes: 1,
        }
    }
}

impl Layout {
    /// Bounds that keep a layout read from a file from exhausting memory.
    pub fn validate(&self) -> Result<(), String> {
        let ok = (1..=28).contains(&self.k)
            && (1..=1024).contains(&self.x_cols)
            && (1..=1024).contains(&self.acc_cols)
            && self.x_cols * self.acc_cols <= 4096
            && (1..=256).contains(&self.lanes);
        if ok {
            Ok(())
        } else {
            Err(format!("layout out of bounds: {self:?}"))
        }
    }
}

/// A layout with the figures that justify it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub layout: Layout,
    pub linear_rows: usize,
    pub elementwise_rows: usize,
    pub table_rows: usize,
    pub instance_rows: usize,
    /// Rows halo2 leaves usable at this `k` (the rest hold blinding factors).
    pub usable_rows: usize,
    pub advice_columns: usize,
    pub fixed_columns: usize,
    pub lookups: usize,
    /// Relative proving cost under the cost model (unitless, comparable between plans).
    pub cost: f64,
}

impl Plan {
    pub fn rows(&self) -> usize {
        self.linear_rows
            .max(self.elementwise_rows)
            .max(self.table_rows)
            .max(self.instance_rows)
    }
}

/// Columns, lookups and unusable rows of a layout, read from the constraint system.
struct Shape {
    advice: usize,
    fixed: usize,
    lookups: usize,
    permutation: usize,
    degree: usize,
    reserved_rows: usize,
}

fn shape(layout: &Layout) -> Shape {
    let mut cs = ConstraintSystem::<Fr>::default();
    ModelCircuit::configure_with_params(&mut cs, layout.clone());
    let selectors = cs.num_selectors();
    Shape {
        advice: cs.num_advice_columns(),
        fixed: cs.num_fixed_columns() + selectors,
        lookups: cs.lookups().len(),
        permutation: cs.permutation().get_columns().len(),
        degree: cs.degree(),
        reserved_rows: cs.blinding_factors() + 1,
    }
}

/// Rows the element-wise lanes need in all.
pub fn elementwise_elements(model: &QModel) -> usize {
    model
        .ops
        .iter()
        .map(|op| match op {
            // A wide rescale (shift ≥ B) takes two rows.
            QOp::Rescale(r) => {
                model.value(r.output).len() * if r.shift < model.act_bits { 1 } else { 2 }
            }
            QOp::Add(a) => model.value(a.output).len(),
            QOp::Mul(m) => model.value(m.output).len(),
            _ => 0,
        })
        .sum()
}

/// Evaluates one candidate layout (its `k` is chosen here).
pub fn evaluate(
    model: &QModel,
    x_cols: usize,
    acc_cols: usize,
    lanes: usize,
) -> Result<Plan, CircuitError> {
    let linear = model
        .ops
        .iter()
        .map(|op| match op {
            QOp::Linear(l) => linear_rows(l, model, x_cols, acc_cols),
            _ => 0,
        })
        .sum::<usize>()
        + 1;
    let elementwise = elementwise_elements(model).div_ceil(lanes);
    let table = table_rows(model);
    let instance = model.value(model.input).len() + model.value(model.output).len();
    let mut layout = Layout {
        k: 0,
        x_cols,
        acc_cols,
        lanes,
    };
    let s = shape(&layout);
    let rows = linear.max(elementwise).max(table).max(instance);
    let k = (4..=28)
        .find(|&k| (1usize << k) >= rows + s.reserved_rows)
        .ok_or(CircuitError::TooLarge { rows })?;
    layout.k = k;
    let chunk = s.degree.saturating_sub(2).max(1);
    let cost = (1u64 << k) as f64
        * (s.advice as f64
            + 3.0 * s.lookups as f64
            + s.permutation.div_ceil(chunk) as f64
            + s.fixed as f64 / 4.0);
    Ok(Plan {
        layout,
        linear_rows: linear,
        elementwise_rows: elementwise,
        table_rows: table,
        instance_rows: instance,
        usable_rows: (1usize << k) - s.reserved_rows,
        advice_columns: s.advice,
        fixed_columns: s.fixed,
        lookups: s.lookups,
        cost,
    })
}

/// The cheapest layout for `model` under the cost model, and the runner-up.
pub fn plan_layout(model: &QModel) -> Result<(Plan, Option<Plan>), CircuitError> {
    model.validate()?;
    let mut plans = Vec::new();
    for x_cols in [1, 2, 4, 8, 16, 32, 64] {
        for acc_cols in [1, 2, 4, 8, 16, 32] {
            if x_cols * acc_cols > 256 {
                continue;
            }
            for lanes in [1, 2, 4, 8, 16] {
                if let Ok(p) = evaluate(model, x_cols, acc_cols, lanes) {
                    plans.push(p);
                }
            }
        }
    }
    let columns = |p: &Plan| p.advice_columns + p.fixed_columns;
    plans.sort_by(|a, b| a.cost.total_cmp(&b.cost).then(columns(a).cmp(&columns(b))));
    let mut it = plans.into_iter();
    let best = it
        .next()
        .ok_or(CircuitError::TooLarge { rows: usize::MAX })?;
    Ok((best, it.next()))
}
