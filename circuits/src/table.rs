//! The one tagged lookup table every nonlinear check shares.
//!
//! Rows are `(tag, x, f(x))`. Tag 0 holds only `(0, 0, 0)`, so a lookup whose tag is 0
//! on a row forces its inputs to zero there: chips switch lookups off by writing tag 0.
//! [`TableFn::Relu`] covers `x ∈ [-2^(B-1), 2^(B-1))` and doubles as the range check
//! of the circuit (`(v, v)` is in it iff `0 ≤ v < 2^(B-1)`).

use halo2_proofs::circuit::{Layouter, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{ConstraintSystem, Error, TableColumn};

use crate::fe;

/// A function tabulated in the lookup table; its tag is its discriminant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum TableFn {
    Relu = 1,
}

impl TableFn {
    pub const ALL: [TableFn; 1] = [TableFn::Relu];

    pub fn tag(self) -> u64 {
        self as u64
    }

    pub fn eval(self, x: i64) -> i64 {
        match self {
            TableFn::Relu => x.max(0),
        }
    }
}

#[derive(Clone, Debug)]
pub struct TableConfig {
    pub tag: TableColumn,
    pub input: TableColumn,
    pub output: TableColumn,
}

/// Rows the table occupies for `act_bits`-bit inputs.
pub fn table_rows(act_bits: u32) -> usize {
    1 + TableFn::ALL.len() * (1usize << act_bits)
}

impl TableConfig {
    pub fn configure(meta: &mut ConstraintSystem<Fr>) -> Self {
        TableConfig {
            tag: meta.lookup_table_column(),
            input: meta.lookup_table_column(),
            output: meta.lookup_table_column(),
        }
    }

    pub fn load(&self, layouter: &mut impl Layouter<Fr>, act_bits: u32) -> Result<(), Error> {
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
                for f in TableFn::ALL {
                    for x in -half..half {
                        put(f.tag(), x, f.eval(x))?;
                    }
                }
                Ok(())
            },
        )
    }
}
