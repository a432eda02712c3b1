//! The planner: [`plan_layout`] searches column counts for the layout the cost model
//! ([`crate::cost`]) predicts proves fastest. Row counts come from [`crate::rows`], which
//! synthesis reads too, so a plan is exactly what synthesis lays out.

use std::cell::RefCell;
use std::collections::HashMap;

use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{Circuit, ConstraintSystem};
use serde::{Deserialize, Serialize};
use zkinfer_qir::{QModel, QOp};

use crate::cost::{Prediction, Shape, Terms};
use crate::freivalds::{
    horner_rows, inner_rows, is_eligible, matvec_rows, products, sequences, Product,
};
use crate::layout::{
    Arguments, Layout, LinearArgument, Objective, ParamsMode, RangeCheck, Visibility, MAX_BANKS,
    MAX_WEIGHT_BITS,
};
use crate::model::ModelCircuit;
use crate::params::{per_element, weight_bits};
use crate::poseidon::BLOCK_ROWS;
use crate::rows::{
    elementwise_elements, hash_work, linear_section_rows, link_rows, pack_rows, product_savings,
};
use crate::table::table_rows;
use crate::CircuitError;

impl Layout {
    /// Checks that this layout is the one the planner derives for `model` with these
    /// column counts: the rows fit `k`, and hashed weights fit `weight_bits`.
    pub fn check(&self, model: &QModel) -> Result<(), String> {
        let c = Candidate {
            x_cols: self.x_cols,
            acc_cols: self.acc_cols,
            lanes: self.lanes,
            hash_lanes: self.hash_lanes,
            pack_lanes: self.pack_lanes,
            link_lanes: self.link_lanes,
            horner_lanes: self.horner_lanes,
            freivalds: self.freivalds.clone(),
            products: self.product_lanes > 0,
            limbs: self.limb_bits > 0,
            banks: self.banks,
        };
        if let Some(&i) = self
            .freivalds
            .iter()
            .find(|&&i| !matches!(model.ops.get(i), Some(QOp::Linear(l)) if is_eligible(l, model)))
        {
            return Err(format!(
                "op {i} is not a linear layer Freivalds' argument applies to"
            ));
        }
        let plan = evaluate(model, self.visibility, c).map_err(|e| e.to_string())?;
        if &plan.layout == self {
            Ok(())
        } else {
            Err(format!(
                "the layout does not fit the model (it needs {:?})",
                plan.layout
            ))
        }
    }
}

/// A layout with the figures that justify it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub layout: Layout,
    pub linear_rows: usize,
    /// Rows the Horner lanes take (Freivalds' argument; 0 without it).
    #[serde(default)]
    pub horner_rows: usize,
    /// Rows of the inner-product lane (products of two activations; 0 without them).
    #[serde(default)]
    pub product_rows: usize,
    pub elementwise_rows: usize,
    pub table_rows: usize,
    /// Poseidon rows per hash lane (0 when nothing is hashed).
    #[serde(default)]
    pub hash_rows: usize,
    /// Weight-packing rows per packing lane.
    #[serde(default)]
    pub pack_rows: usize,
    /// Boundary-packing rows per boundary lane.
    #[serde(default)]
    pub link_rows: usize,
    pub instance_rows: usize,
    /// Rows halo2 leaves usable at this `k` (the rest hold blinding factors).
    pub usable_rows: usize,
    pub advice_columns: usize,
    pub fixed_columns: usize,
    pub lookups: usize,
    /// The proving work of this layout, under the cost model ([`crate::cost`]).
    #[serde(default)]
    pub terms: Terms,
    /// Its predicted proving time and peak memory.
    #[serde(default)]
    pub predicted: Prediction,
}

impl Plan {
    pub fn rows(&self) -> usize {
        self.rows_but_table().max(self.table_rows)
    }

    /// The rows of every section but the lookup table.
    pub fn rows_but_table(&self) -> usize {
        self.linear_rows
            .max(self.horner_rows)
            .max(self.product_rows)
            .max(self.elementwise_rows)
            .max(self.hash_rows)
            .max(self.pack_rows)
            .max(self.link_rows)
            .max(self.instance_rows)
    }
}

/// The constraint system of a layout, and the rows halo2 reserves for blinding: one
/// configured.
fn configured(layout: &Layout) -> (Shape, usize) {
    let mut cs = ConstraintSystem::<Fr>::default();
    ModelCircuit::configure_with_params(&mut cs, layout.clone());
    let shape = Shape {
        k: 0,
        advice: cs.num_advice_columns(),
        fixed: cs.num_fixed_columns() + cs.num_selectors(),
        instance: cs.num_instance_columns(),
        lookups: cs.lookups().len(),
        permutation: cs.permutation().get_columns().len(),
        degree: cs.degree(),
    };
    (shape, cs.blinding_factors() + 1)
}

/// Sets one kind of lane of a layout to two.
type TwoLanes = fn(&mut Layout);

/// The constraint system of a layout, and the rows halo2 reserves for blinding.
///
/// The constraint system depends on the column counts and the visibility only (not on
/// `k`, nor on which ops Freivalds' argument checks). Its columns, lookups and
/// permutation columns are sums over its parts, and lanes of one kind are alike: the
/// shape is the one of the layout with at most one lane of each kind, plus for each kind
/// with more the columns one more lane adds (degree and blinding rows are the maximum
/// over alike lanes, the one-lane layout's). So planning configures a few constraint
/// systems per linear block, not one per candidate (configuring was most of its time
/// with many hash lanes). Cached per thread: the segment planner prices the same
/// candidates for many ranges of ops.
fn shape(layout: &Layout) -> (Shape, usize) {
    thread_local! {
        static SHAPES: RefCell<HashMap<Layout, (Shape, usize)>> = RefCell::new(HashMap::new());
    }
    let cached = |l: &Layout| {
        SHAPES.with(|cache| {
            *cache
                .borrow_mut()
                .entry(l.clone())
                .or_insert_with_key(configured)
        })
    };
    let unit = Layout {
        k: 0,
        freivalds: Vec::new(),
        lanes: 1,
        hash_lanes: layout.hash_lanes.min(1),
        pack_lanes: layout.pack_lanes.min(1),
        link_lanes: layout.link_lanes.min(1),
        horner_lanes: layout.horner_lanes.min(1),
        ..layout.clone()
    };
    let (one, reserved) = cached(&unit);
    let mut shape = one;
    let more: [(usize, TwoLanes); 5] = [
        (layout.lanes, |l| l.lanes = 2),
        (layout.hash_lanes, |l| l.hash_lanes = 2),
        (layout.pack_lanes, |l| l.pack_lanes = 2),
        (layout.link_lanes, |l| l.link_lanes = 2),
        (layout.horner_lanes, |l| l.horner_lanes = 2),
    ];
    for (n, two_of) in more {
        if n > 1 {
            let mut two = unit.clone();
            two_of(&mut two);
            let (two, _) = cached(&two);
            let times = n - 1;
            shape.advice += times * (two.advice - one.advice);
            shape.fixed += times * (two.fixed - one.fixed);
            shape.instance += times * (two.instance - one.instance);
            shape.lookups += times * (two.lookups - one.lookups);
            shape.permutation += times * (two.permutation - one.permutation);
        }
    }
    shape.k = layout.k;
    (shape, reserved)
}

/// A candidate layout: column counts and lanes, and the linear ops Freivalds' argument
/// checks (its `k` is chosen by [`evaluate`]).
#[derive(Clone, Debug)]
pub struct Candidate {
    pub x_cols: usize,
    pub acc_cols: usize,
    pub lanes: usize,
    pub hash_lanes: usize,
    pub pack_lanes: usize,
    pub link_lanes: usize,
    pub horner_lanes: usize,
    pub freivalds: Vec<usize>,
    /// The ops among `freivalds` that sum products of two activations are checked as
    /// matrix products ([`Product`]).
    pub products: bool,
    /// Range checks decomposed into limbs ([`limb_bits`]).
    pub limbs: bool,
    /// Banks of the lookup table ([`crate::table`]).
    pub banks: usize,
}

/// The layout's `limb_bits` for `model`: [`limb_bits`] with limbs, 0 without.
fn chosen_limb_bits(model: &QModel, limbs: bool) -> u32 {
    if limbs {
        limb_bits(model.act_bits)
    } else {
        0
    }
}

/// The limb width of `B`-bit range checks: `⌊B/2⌋`, the least table (`2^(L+1) + 2^(B-L)`
/// rows) for which a remainder below `2^(B-1)` splits into two limbs.
pub fn limb_bits(act_bits: u32) -> u32 {
    act_bits / 2
}

/// The linear ops of `model` that `argument` checks by Freivalds' argument with blocks of
/// `x_cols × acc_cols`: with `auto`, each eligible op whose check lays out fewer cells
/// than its dot products — `2·R·(M + 1 + N)` Horner cells and one input row's blocks,
/// against `R` rows of blocks, each block row `D + C` advice and `C·D` weight cells — and
/// each of `products` (by op index) whose check lays out fewer cells than its multiplies'
/// lane rows (four advice cells each).
pub fn freivalds_ops(
    model: &QModel,
    argument: LinearArgument,
    x_cols: usize,
    acc_cols: usize,
    products: &[Option<Product>],
) -> Vec<usize> {
    let per_block_row = x_cols + acc_cols + x_cols * acc_cols;
    model
        .ops
        .iter()
        .enumerate()
        .filter_map(|(i, op)| match op {
            QOp::Linear(l) if is_eligible(l, model) => {
                let cheaper = match products.get(i).copied().flatten() {
                    Some(p) => p.cells() < 4 * p.multiplies(),
                    None => {
                        let matvec = matvec_rows(l, x_cols, acc_cols) * per_block_row;
                        let (count, len) = sequences(l, model);
                        2 * count * len + matvec < len * matvec
                    }
                };
                let chosen = match argument {
                    LinearArgument::Dot => false,
                    LinearArgument::Freivalds => true,
                    LinearArgument::Auto => cheaper,
                };
                chosen.then_some(i)
            }
            _ => None,
        })
        .collect()
}

/// What pricing a candidate needs of the model and statement that no candidate changes
/// (computed once per [`plan_layout`], not once per candidate).
struct ModelWork {
    weight_bits: u32,
    /// The products of two activations, by op index (none with hashed weights: their
    /// check's bias and ones are constants of the circuit, not hashed parameters).
    products: Vec<Option<Product>>,
    elementwise: usize,
    hash_blocks: usize,
    weights: usize,
}

fn model_work(model: &QModel, visibility: &Visibility) -> Result<ModelWork, CircuitError> {
    let hashed = visibility.params == ParamsMode::Hashed;
    let weight_bits = if hashed { weight_bits(model) } else { 0 };
    if hashed && weight_bits > MAX_WEIGHT_BITS {
        return Err(CircuitError::WeightsTooWide {
            bits: weight_bits,
            max: MAX_WEIGHT_BITS,
        });
    }
    let (hash_blocks, weights) = hash_work(model, visibility, weight_bits);
    Ok(ModelWork {
        weight_bits,
        products: if hashed { Vec::new() } else { products(model) },
        elementwise: elementwise_elements(model, visibility),
        hash_blocks,
        weights,
    })
}

impl ModelWork {
    /// The products `c` checks as products (none unless it does).
    fn products_of(&self, c: &Candidate) -> &[Option<Product>] {
        if c.products {
            &self.products
        } else {
            &[]
        }
    }
}

/// Evaluates one candidate layout.
pub fn evaluate(
    model: &QModel,
    visibility: Visibility,
    c: Candidate,
) -> Result<Plan, CircuitError> {
    let work = model_work(model, &visibility)?;
    let linear = linear_section_rows(
        model,
        c.x_cols,
        c.acc_cols,
        &c.freivalds,
        work.products_of(&c),
    );
    evaluate_with(model, visibility, c, &work, linear)
}

/// [`evaluate`] with the model's work and the candidate's linear rows computed.
fn evaluate_with(
    model: &QModel,
    visibility: Visibility,
    c: Candidate,
    work: &ModelWork,
    linear: usize,
) -> Result<Plan, CircuitError> {
    let weight_bits = work.weight_bits;
    let products = work.products_of(&c);
    let horner = horner_rows(model, &c.freivalds, products, c.horner_lanes);
    let product_rows = inner_rows(&c.freivalds, products);
    let elementwise =
        (work.elementwise - product_savings(&c.freivalds, products)).div_ceil(c.lanes);
    let hash_rows = work.hash_blocks.div_ceil(c.hash_lanes.max(1)) * BLOCK_ROWS;
    let pack_rows = pack_rows(work.weights, per_element(weight_bits.max(1)), c.pack_lanes);
    let link_rows = link_rows(model, &visibility, c.link_lanes);
    let mut layout = Layout {
        k: 0,
        x_cols: c.x_cols,
        acc_cols: c.acc_cols,
        lanes: c.lanes,
        visibility,
        hash_lanes: c.hash_lanes,
        pack_lanes: c.pack_lanes,
        weight_bits,
        link_lanes: c.link_lanes,
        link_bits: if c.link_lanes > 0 { model.act_bits } else { 0 },
        horner_lanes: c.horner_lanes,
        freivalds: c.freivalds.clone(),
        product_lanes: usize::from(product_rows > 0),
        limb_bits: chosen_limb_bits(model, c.limbs),
        banks: c.banks,
    };
    let table = table_rows(model, &layout);
    let instance = visibility.public_values(
        model.value(model.input).len(),
        model.value(model.output).len(),
    );
    let (mut s, reserved_rows) = shape(&layout);
    let rows = linear
        .max(horner)
        .max(product_rows)
        .max(elementwise)
        .max(table)
        .max(instance)
        .max(hash_rows)
        .max(pack_rows)
        .max(link_rows);
    let k = (4..=28)
        .find(|&k| (1usize << k) >= rows + reserved_rows)
        .ok_or(CircuitError::TooLarge { rows })?;
    layout.k = k;
    s.k = k;
    let terms = s.terms();
    Ok(Plan {
        layout,
        linear_rows: linear,
        horner_rows: horner,
        product_rows,
        elementwise_rows: elementwise,
        table_rows: table,
        hash_rows,
        pack_rows,
        link_rows,
        instance_rows: instance,
        usable_rows: (1usize << k) - reserved_rows,
        advice_columns: s.advice,
        fixed_columns: s.fixed,
        lookups: s.lookups,
        predicted: terms.predict(),
        terms,
    })
}

/// The layout of `model` with `visibility` that the cost model predicts proves fastest
/// (or, for [`Objective::Aggregate`], proves and folds fastest) within `max_memory_mb`
/// (when given), and the runner-up; `arguments` say which argument checks the linear
/// layers and how values are range-checked.
pub fn plan_layout(
    model: &QModel,
    visibility: Visibility,
    max_memory_mb: Option<f64>,
    arguments: Arguments,
) -> Result<(Plan, Option<Plan>), CircuitError> {
    model.validate()?;
    let Arguments {
        linear,
        range,
        objective,
    } = arguments;
    let work = model_work(model, &visibility)?;
    let limb_options: &[bool] = match range {
        RangeCheck::Auto => &[false, true],
        RangeCheck::Table => &[false],
        RangeCheck::Limbs => &[true],
    };
    // More banks than tables (the range checks' and each function's) buy nothing. The
    // first option is the simplest: one table, in limbs if they are forced.
    let table_options: Vec<(bool, usize)> = limb_options
        .iter()
        .flat_map(|&l| (1..=MAX_BANKS.min(1 + model.tables.len())).map(move |b| (l, b)))
        .collect();
    let hashes = visibility.hashes_anything();
    let packs = visibility.params == ParamsMode::Hashed;
    let hash_options: &[usize] = if hashes { &[1, 2, 4, 8, 16] } else { &[0] };
    let pack_options: &[usize] = if packs { &[1, 2, 4, 8] } else { &[0] };
    let link_options: &[usize] = if visibility.is_linked() {
        &[1, 2, 4]
    } else {
        &[0]
    };
    let mut plans = Vec::new();
    for x_cols in [1, 2, 4, 8, 16, 32, 64] {
        for acc_cols in [1, 2, 4, 8, 16, 32] {
            if x_cols * acc_cols > 256 {
                continue;
            }
            // With `auto`, the layouts without the argument compete too: the cost model
            // decides whether the cells it saves pay for its columns.
            let mut sets = vec![freivalds_ops(
                model,
                linear,
                x_cols,
                acc_cols,
                &work.products,
            )];
            if linear == LinearArgument::Auto && !sets[0].is_empty() {
                sets.push(Vec::new());
            }
            for freivalds in &sets {
                let linear_rows =
                    linear_section_rows(model, x_cols, acc_cols, freivalds, &work.products);
                let horner_options: &[usize] = if freivalds.is_empty() {
                    &[0]
                } else {
                    &[2, 4, 8, 16, 32]
                };
                for lanes in [1, 2, 3, 4, 6, 8, 12, 16] {
                    for &hash_lanes in hash_options {
                        for (&pack_lanes, &link_lanes, &horner_lanes) in
                            pack_options.iter().flat_map(|p| {
                                link_options.iter().flat_map(move |l| {
                                    horner_options.iter().map(move |h| (p, l, h))
                                })
                            })
                        {
                            // The first table option's others rows, reserved rows and k.
                            let mut base: Option<(usize, usize, u32)> = None;
                            for &(limbs, banks) in &table_options {
                                // Limbs and banks cost columns and lookups, and pay only by
                                // lowering the `k` the table sets: a variant whose table
                                // cannot is not priced.
                                if let Some((others, reserved, k)) = base {
                                    let table = table_rows(
                                        model,
                                        &Layout {
                                            weight_bits: work.weight_bits,
                                            limb_bits: chosen_limb_bits(model, limbs),
                                            banks,
                                            ..Layout::default()
                                        },
                                    );
                                    if others.max(table) + reserved > 1usize << (k - 1) {
                                        continue;
                                    }
                                }
                                let c = Candidate {
                                    x_cols,
                                    acc_cols,
                                    lanes,
                                    hash_lanes,
                                    pack_lanes,
                                    link_lanes,
                                    horner_lanes,
                                    freivalds: freivalds.clone(),
                                    products: true,
                                    limbs,
                                    banks,
                                };
                                // A candidate too large for any `k` is not a plan.
                                if let Ok(p) =
                                    evaluate_with(model, visibility, c, &work, linear_rows)
                                {
                                    if base.is_none() {
                                        let reserved = (1usize << p.layout.k) - p.usable_rows;
                                        base = Some((p.rows_but_table(), reserved, p.layout.k));
                                    }
                                    plans.push(p);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    let least = plans
        .iter()
        .map(|p| p.predicted.peak_mb)
        .min_by(f64::total_cmp)
        .ok_or(CircuitError::TooLarge { rows: usize::MAX })?;
    if let Some(budget) = max_memory_mb {
        plans.retain(|p| p.predicted.peak_mb <= budget);
        if plans.is_empty() {
            return Err(CircuitError::OverMemory { budget, least });
        }
    }
    let columns = |p: &Plan| p.advice_columns + p.fixed_columns;
    let cost = |p: &Plan| match objective {
        Objective::Prove => p.predicted.prove_s,
        Objective::Aggregate => p.predicted.prove_s + p.terms.aggregation_s(),
    };
    plans.sort_by(|a, b| {
        cost(a)
            .total_cmp(&cost(b))
            .then(columns(a).cmp(&columns(b)))
    });
    let mut it = plans.into_iter();
    let best = it
        .next()
        .ok_or(CircuitError::TooLarge { rows: usize::MAX })?;
    Ok((best, it.next()))
}

#[cfg(test)]
mod tests {
    // Test code: a panic is the failure report.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{InputMode, OutputMode};

    /// The shape summed from one-lane layouts is the configured one, for every kind of
    /// lane, hashed statements, linked boundaries, Freivalds' argument, limbs and banks.
    #[test]
    fn summed_shapes_are_configured_shapes() {
        let hashed = Visibility {
            params: ParamsMode::Hashed,
            input: InputMode::Hashed,
            output: OutputMode::Hashed,
        };
        let linked = Visibility {
            input: InputMode::Linked,
            output: OutputMode::Linked,
            ..Visibility::default()
        };
        let layouts = [
            Layout {
                lanes: 5,
                ..Layout::default()
            },
            Layout {
                x_cols: 4,
                acc_cols: 2,
                lanes: 3,
                visibility: hashed,
                hash_lanes: 4,
                pack_lanes: 3,
                weight_bits: 12,
                limb_bits: 6,
                banks: 3,
                ..Layout::default()
            },
            Layout {
                lanes: 2,
                visibility: linked,
                hash_lanes: 2,
                link_lanes: 4,
                link_bits: 12,
                horner_lanes: 8,
                freivalds: vec![0],
                limb_bits: 4,
                ..Layout::default()
            },
            Layout {
                lanes: 3,
                horner_lanes: 5,
                freivalds: vec![0],
                product_lanes: 1,
                ..Layout::default()
            },
        ];
        for layout in layouts {
            let (mut summed, reserved) = shape(&layout);
            summed.k = 0;
            let (configured, configured_reserved) = configured(&layout);
            assert_eq!(
                (summed.advice, summed.fixed, summed.instance),
                (configured.advice, configured.fixed, configured.instance),
                "{layout:?}"
            );
            assert_eq!(
                (summed.lookups, summed.permutation, summed.degree, reserved),
                (
                    configured.lookups,
                    configured.permutation,
                    configured.degree,
                    configured_reserved
                ),
                "{layout:?}"
            );
        }
    }
}
