//! The one tagged lookup table every nonlinear check shares.
//!
//! Rows are `(tag, x, f(x))`. Tag 0 holds only `(0, 0, 0)`, so a lookup whose tag is 0
//! on a row forces its inputs to zero there: chips switch lookups off by writing tag 0.
//! Tag 1 is ReLU over `x ∈ [-2^(B-1), 2^(B-1))`; it doubles as the range check of the
//! circuit (`(v, v)` is in it iff `0 ≤ v < 2^(B-1)`). Tags 2, 3, … are the model's
//! tabulated functions (`QModel::tables`), over the same inputs or, for a table of
//! narrower inputs (`TableSpec::in_bits`), over `[-2^(w-1), 2^(w-1))`: its lookup then
//! bounds its input to `w` bits, and the function costs `2^w` rows. With hashed weights,
//! tag [`WEIGHT_TAG`] holds `(x, x)` for `x ∈ [0, 2^b)`: the range check of the packed
//! `b`-bit weights.
//!
//! With limb-decomposed range checks (`Layout::limb_bits = L > 0`) tags 1 and
//! [`WEIGHT_TAG`] are absent: a `B`-bit value is `hi·2^L + lo`, `lo` checked against
//! [`RANGE_TAG`]` + L` (`[0, 2^L)`) and `hi` against [`SIGN_TAG`], which also gives its
//! sign, so ReLU and the range check cost `2^(L+1) + 2^(B-L)` rows instead of `2^B` (see
//! [`crate::elementwise`]); a packed `b`-bit weight is two limbs of [`weight_limbs`]`(b)`
//! bits against the same ranges (see [`crate::params::PackConfig`]), which then reach
//! `⌈b/2⌉` bits where that is more than `L`.

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

/// One bank of the table: three lookup columns, `(tag, x, f(x))`.
#[derive(Clone, Debug)]
pub struct TableColumns {
    pub tag: TableColumn,
    pub input: TableColumn,
    pub output: TableColumn,
}

/// The table, in `Layout::banks` banks side by side: bank 0 holds the range checks (and
/// the weights' range), and the tabulated functions are dealt round the banks
/// ([`banks_of`]), so that the table's rows are its largest bank's, not the sum.
#[derive(Clone, Debug)]
pub struct TableConfig {
    pub banks: Vec<TableColumns>,
}

/// The bank of each of `model`'s tabulated functions, bank 0 being the range checks':
/// largest table first, each into the bank with the fewest rows so far (the lowest on a
/// tie). Tables of one size are so dealt round the banks from bank 1; tables of narrower
/// inputs ([`zkinfer_qir::TableSpec::in_bits`]) fill the gaps beside wider ones.
pub fn banks_of(model: &QModel, layout: &Layout) -> Vec<usize> {
    let banks = layout.banks.max(1);
    let mut fill = vec![1usize; banks];
    fill[0] = range_rows(model, layout);
    let mut order: Vec<usize> = (0..model.tables.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(model.tables[i].rows(model.act_bits)));
    let mut bank = vec![0; model.tables.len()];
    for i in order {
        let b = (0..banks).min_by_key(|&b| fill[b]).unwrap_or(0);
        fill[b] += model.tables[i].rows(model.act_bits);
        bank[i] = b;
    }
    bank
}

/// The first tag of the limb ranges: tag `RANGE_TAG + j` holds `(x, x)` for `x ∈ [0, 2^j)`.
pub const RANGE_TAG: u64 = 1 << 18;
/// The tag of the high limb's sign: `(h, [h ≥ 0])` for `h ∈ [-2^(B-1-L), 2^(B-1-L))`.
pub const SIGN_TAG: u64 = 1 << 19;

/// The low and high limbs' widths of a packed `bits`-bit weight: `⌊b/2⌋` and `⌈b/2⌉`.
pub fn weight_limbs(bits: u32) -> (u32, u32) {
    (bits / 2, bits - bits / 2)
}

/// The widest range tag in limbs (`RANGE_TAG + j` for `j ≤` this): the limb width `L`, or
/// a hashed weight's high limb where that is wider. 0 without limbs.
pub fn range_top(layout: &Layout) -> u32 {
    if layout.limb_bits == 0 {
        0
    } else {
        layout.limb_bits.max(weight_limbs(layout.weight_bits).1)
    }
}

/// The range checks' rows, `(tag, x, f(x))`, for `B = act_bits`: with `limb_bits` 0,
/// ReLU over all `2^B` values (tag [`RELU_TAG`]); with `L = limb_bits`, the ranges
/// `[0, 2^j)` for `j ≤` [`range_top`] and the sign of a `(B-L)`-bit high limb. The zero
/// row first.
pub fn range_entries(act_bits: u32, layout: &Layout) -> Vec<(u64, i64, i64)> {
    let limb_bits = layout.limb_bits;
    let mut rows = vec![(0, 0, 0)];
    if limb_bits == 0 {
        let half = 1i64 << (act_bits - 1);
        rows.extend((-half..half).map(|x| (RELU_TAG, x, x.max(0))));
    } else {
        for j in 0..=range_top(layout) {
            rows.extend((0..1i64 << j).map(|x| (RANGE_TAG + u64::from(j), x, x)));
        }
        let half = 1i64 << (act_bits - 1 - limb_bits);
        rows.extend((-half..half).map(|h| (SIGN_TAG, h, i64::from(h >= 0))));
    }
    rows
}

/// Rows the table occupies for `model`: its largest bank's.
pub fn table_rows(model: &QModel, layout: &Layout) -> usize {
    let bank = banks_of(model, layout);
    let mut fill = vec![1usize; layout.banks.max(1)];
    fill[0] = range_rows(model, layout);
    for (t, &b) in model.tables.iter().zip(&bank) {
        fill[b] += t.rows(model.act_bits);
    }
    fill.into_iter().max().unwrap_or(0)
}

/// Rows of bank 0 without the functions: its zero row, the range checks and the hashed
/// weights' range.
fn range_rows(model: &QModel, layout: &Layout) -> usize {
    if layout.limb_bits == 0 {
        let weights = if layout.weight_bits > 0 {
            1usize << layout.weight_bits
        } else {
            0
        };
        1 + (1usize << model.act_bits) + weights
    } else {
        (1usize << (range_top(layout) + 1)) + (1usize << (model.act_bits - layout.limb_bits))
    }
}

impl TableColumns {
    /// Assigns `rows` from row 0.
    pub fn assign(
        &self,
        layouter: &mut impl Layouter<Fr>,
        rows: impl IntoIterator<Item = (u64, i64, i64)> + Clone,
    ) -> Result<(), Error> {
        layouter.assign_table(
            || "tagged nonlinearity table",
            |mut table| {
                for (row, (tag, x, y)) in rows.clone().into_iter().enumerate() {
                    table.assign_cell(|| "tag", self.tag, row, || Value::known(Fr::from(tag)))?;
                    table.assign_cell(|| "x", self.input, row, || Value::known(fe(x)))?;
                    table.assign_cell(|| "f(x)", self.output, row, || Value::known(fe(y)))?;
                }
                Ok(())
            },
        )
    }
}

impl TableConfig {
    pub fn configure(meta: &mut ConstraintSystem<Fr>, banks: usize) -> Self {
        let banks = (0..banks.max(1))
            .map(|_| TableColumns {
                tag: meta.lookup_table_column(),
                input: meta.lookup_table_column(),
                output: meta.lookup_table_column(),
            })
            .collect();
        TableConfig { banks }
    }

    /// The bank of the range checks.
    pub fn ranges(&self) -> &TableColumns {
        &self.banks[0]
    }

    pub fn load(
        &self,
        layouter: &mut impl Layouter<Fr>,
        model: &QModel,
        layout: &Layout,
    ) -> Result<(), Error> {
        let act_bits = model.act_bits;
        let bank = banks_of(model, layout);
        for (b, columns) in self.banks.iter().enumerate() {
            let functions = model
                .tables
                .iter()
                .enumerate()
                .filter(|&(i, _)| bank[i] == b)
                .flat_map(move |(i, t)| {
                    t.inputs(act_bits)
                        .map(move |x| (tag(Activation::Table(i)), x, t.eval(x, act_bits)))
                });
            if b == 0 {
                // Hashed weights' range, where it is not checked in limbs.
                let weight_bits = if layout.limb_bits == 0 {
                    layout.weight_bits
                } else {
                    0
                };
                let weights = (0..(1i64 << weight_bits))
                    .filter(|_| weight_bits > 0)
                    .map(|x| (WEIGHT_TAG, x, x));
                let ranges = range_entries(act_bits, layout);
                columns.assign(layouter, ranges.into_iter().chain(functions).chain(weights))?;
            } else {
                columns.assign(layouter, std::iter::once((0, 0, 0)).chain(functions))?;
            }
        }
        Ok(())
    }
}
