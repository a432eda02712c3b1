//! The one tagged lookup table every nonlinear check shares.
//!
//! Rows are `(tag, x, f(x))`. Tag 0 holds only `(0, 0, 0)`, so a lookup whose tag is 0
//! on a row forces its inputs to zero there: chips switch lookups off by writing tag 0.
//! Tag 1 is ReLU over `x ∈ [-2^(B-1), 2^(B-1))`; it doubles as the range check of the
//! circuit (`(v, v)` is in it iff `0 ≤ v < 2^(B-1)`). Tags 2, 3, … are the model's
//! tabulated functions (`QModel::tables`), over the same inputs. With hashed weights,
//! tag [`WEIGHT_TAG`] holds `(x, x)` for `x ∈ [0, 2^b)`: the range check of the packed
//! `b`-bit weights.

use halo2_proofs::circuit::{Layouter, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{ConstraintSystem, Error, TableColumn};

use zkinfer_qir::{Activation, QModel};

use crate::fe;
use crate::layout::Layout;

/// The tag of ReLU (and of the range check).
pub const RELU_TAG: u64 = 1;
/// The tag of the packed weights' range check (far above the function tags).
pub const WEIGHT_TAG: u64 = 1 << 20;

/// The lookup tag of an activation.
pub fn tag(act: Activation) -> u64 {
    match act {
        Activation::Identity | Activation::Relu => RELU_TAG,
        Activation::Table(i) => RELU_TAG + 1 + i as u64,
    }
}

#[derive(Clone, Debug)]
pub struct TableConfig {
    pub tag: TableColumn,
    pub input: TableColumn,
    pub output: TableColumn,
}

/// Rows the table occupies for `model`.
pub fn table_rows(model: &QModel, layout: &Layout) -> usize {
    let weights = if layout.weight_bits > 0 {
        1usize << layout.weight_bits
    } else {
        0
    };
    1 + (1 + model.tables.len()) * (1usize << model.act_bits) + weights
}

impl TableConfig {
    pub fn configure(meta: &mut ConstraintSystem<Fr>) -> Self {
        TableConfig {
            tag: meta.lookup_table_column(),
            input: meta.lookup_table_column(),
            output: meta.lookup_table_column(),
        }
    }

    pub fn load(
        &self,
        layouter: &mut impl Layouter<Fr>,
        model: &QModel,
        layout: &Layout,
    ) -> Result<(), Error> {
        let act_bits = model.act_bits;
        layouter.assign_table(
            || "tagged nonlinearity table",
            |mut table| {
                let mut row = 0;
                let mut put = |tag: u64, x: i64, y: i64| -> Result<(), Error> {
                    table.assign_cell(|| "tag", self.tag, row, || Value::known(Fr::from(tag)))?;
                    table.assign_cell(|| "x", self.input, row, || Value::known(fe(x)))?;
                    table.assign_cell(|| "f(x)", self.output, row, || Value::known(fe(y)))?;
                    row += 1;
                    Ok(())
                };
                put(0, 0, 0)?;
                let half = 1i64 << (act_bits - 1);
                for x in -half..half {
                    put(RELU_TAG, x, x.max(0))?;
                }
                for (i, t) in model.tables.iter().enumerate() {
                    for x in -half..half {
                        put(tag(Activation::Table(i)), x, t.eval(x, act_bits))?;
                    }
                }
                if layout.weight_bits > 0 {
                    for x in 0..1i64 << layout.weight_bits {
                        put(WEIGHT_TAG, x, x)?;
                    }
                }
                Ok(())
            },
        )
    }
}
