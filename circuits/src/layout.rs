//! The layout: how many columns each section gets, and the `k` that fits it.
//!
//! [`plan_layout`] searches column counts for the cheapest circuit under a simple cost
//! model: proving work grows with `2^k × (advice columns + 3 × lookups + permutation
//! columns + fixed columns / 4)`. Row counts come from the chips' own formulas, so the
//! plan is exactly what synthesis will lay out.

use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{Circuit, ConstraintSystem};
use serde::{Deserialize, Serialize};
use zkinfer_qir::QModel;

use crate::cost::{Prediction, Shape, Terms};
use crate::model::ModelCircuit;
use crate::params::{per_element, weight_bits};
use crate::poseidon::BLOCK_ROWS;
use crate::rows::{elementwise_elements, hash_work, linear_section_rows, pack_rows};
use crate::table::table_rows;
use crate::CircuitError;

/// How the weights are committed to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamsMode {
    /// In fixed columns: the verifying key commits to them.
    #[default]
    Fixed,
    /// Private witness; their Poseidon hash is the first public value.
    Hashed,
}

/// What the verifier sees of the input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputMode {
    #[default]
    Public,
    Private,
    Hashed,
}

/// What the verifier sees of the output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputMode {
    #[default]
    Public,
    Hashed,
}

/// What the statement makes public. The public values are, in order: the weights hash
/// (`params = hashed`), the quantized input or its hash (`input = public | hashed`), and
/// the quantized output or its hash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Visibility {
    pub params: ParamsMode,
    pub input: InputMode,
    pub output: OutputMode,
}

impl Visibility {
    /// Every combination, for tests and reports.
    pub fn all() -> Vec<Visibility> {
        let mut all = Vec::new();
        for params in [ParamsMode::Fixed, ParamsMode::Hashed] {
            for input in [InputMode::Public, InputMode::Private, InputMode::Hashed] {
                for output in [OutputMode::Public, OutputMode::Hashed] {
                    all.push(Visibility {
                        params,
                        input,
                        output,
                    });
                }
            }
        }
        all
    }

    /// Number of public values for an input of `n_in` and an output of `n_out` elements.
    pub fn public_values(&self, n_in: usize, n_out: usize) -> usize {
        let params = usize::from(self.params == ParamsMode::Hashed);
        let input = match self.input {
            InputMode::Public => n_in,
            InputMode::Private => 0,
            InputMode::Hashed => 1,
        };
        let output = match self.output {
            OutputMode::Public => n_out,
            OutputMode::Hashed => 1,
        };
        params + input + output
    }

    pub fn hashes_anything(&self) -> bool {
        self.params == ParamsMode::Hashed
            || self.input == InputMode::Hashed
            || self.output == OutputMode::Hashed
    }
}

/// Lower-case names, as the CLI flags and the files spell them.
macro_rules! named {
    ($t:ty { $($v:ident => $n:literal),* }) => {
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(match self { $(Self::$v => $n),* })
            }
        }
        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($n => Ok(Self::$v),)*
                    _ => Err(format!("`{s}` is not one of: {}", [$($n),*].join(", "))),
                }
            }
        }
    };
}
named!(ParamsMode { Fixed => "fixed", Hashed => "hashed" });
named!(InputMode { Public => "public", Private => "private", Hashed => "hashed" });
named!(OutputMode { Public => "public", Hashed => "hashed" });

impl std::fmt::Display for Visibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "params {}, input {}, output {}",
            self.params, self.input, self.output
        )
    }
}

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
    pub visibility: Visibility,
    /// Poseidon lanes (0 when nothing is hashed).
    pub hash_lanes: usize,
    /// Weight-packing lanes (0 unless the weights are hashed).
    pub pack_lanes: usize,
    /// Signed width of the packed weights (0 unless the weights are hashed).
    pub weight_bits: u32,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            k: 0,
            x_cols: 1,
            acc_cols: 1,
            lanes: 1,
            visibility: Visibility::default(),
            hash_lanes: 0,
            pack_lanes: 0,
            weight_bits: 0,
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
            && (1..=256).contains(&self.lanes)
            && self.hash_lanes <= 64
            && self.pack_lanes <= 64
            && (self.hash_lanes > 0) == self.visibility.hashes_anything()
            && (self.pack_lanes > 0) == (self.visibility.params == ParamsMode::Hashed)
            && if self.pack_lanes > 0 {
                (2..=MAX_WEIGHT_BITS).contains(&self.weight_bits)
            } else {
                self.weight_bits == 0
            };
        if ok {
            Ok(())
        } else {
            Err(format!("layout out of bounds: {self:?}"))
        }
    }
}

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
        };
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

/// The widest weights `--params hashed` packs (its range table has `2^bits` rows).
pub const MAX_WEIGHT_BITS: u32 = 16;

/// A layout with the figures that justify it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub layout: Layout,
    pub linear_rows: usize,
    pub elementwise_rows: usize,
    pub table_rows: usize,
    /// Poseidon rows per hash lane (0 when nothing is hashed).
    #[serde(default)]
    pub hash_rows: usize,
    /// Weight-packing rows per packing lane.
    #[serde(default)]
    pub pack_rows: usize,
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
        self.linear_rows
            .max(self.elementwise_rows)
            .max(self.table_rows)
            .max(self.hash_rows)
            .max(self.pack_rows)
            .max(self.instance_rows)
    }
}

/// The constraint system of a layout, and the rows halo2 reserves for blinding.
fn shape(layout: &Layout) -> (Shape, usize) {
    let mut cs = ConstraintSystem::<Fr>::default();
    ModelCircuit::configure_with_params(&mut cs, layout.clone());
    let shape = Shape {
        k: layout.k,
        advice: cs.num_advice_columns(),
        fixed: cs.num_fixed_columns() + cs.num_selectors(),
        instance: cs.num_instance_columns(),
        lookups: cs.lookups().len(),
        permutation: cs.permutation().get_columns().len(),
        degree: cs.degree(),
    };
    (shape, cs.blinding_factors() + 1)
}

/// A candidate layout: column counts and lanes (its `k` is chosen by [`evaluate`]).
#[derive(Clone, Copy, Debug)]
pub struct Candidate {
    pub x_cols: usize,
    pub acc_cols: usize,
    pub lanes: usize,
    pub hash_lanes: usize,
    pub pack_lanes: usize,
}

/// Evaluates one candidate layout.
pub fn evaluate(
    model: &QModel,
    visibility: Visibility,
    c: Candidate,
) -> Result<Plan, CircuitError> {
    let hashed = visibility.params == ParamsMode::Hashed;
    let weight_bits = if hashed { weight_bits(model) } else { 0 };
    if hashed && weight_bits > MAX_WEIGHT_BITS {
        return Err(CircuitError::WeightsTooWide {
            bits: weight_bits,
            max: MAX_WEIGHT_BITS,
        });
    }
    let linear = linear_section_rows(model, c.x_cols, c.acc_cols);
    let elementwise = elementwise_elements(model, &visibility).div_ceil(c.lanes);
    let (hash_blocks, weights) = hash_work(model, &visibility, weight_bits);
    let hash_rows = hash_blocks.div_ceil(c.hash_lanes.max(1)) * BLOCK_ROWS;
    let pack_rows = pack_rows(weights, per_element(weight_bits.max(1)), c.pack_lanes);
    let mut layout = Layout {
        k: 0,
        x_cols: c.x_cols,
        acc_cols: c.acc_cols,
        lanes: c.lanes,
        visibility,
        hash_lanes: c.hash_lanes,
        pack_lanes: c.pack_lanes,
        weight_bits,
    };
    let table = table_rows(model, &layout);
    let instance = visibility.public_values(
        model.value(model.input).len(),
        model.value(model.output).len(),
    );
    let (mut s, reserved_rows) = shape(&layout);
    let rows = linear
        .max(elementwise)
        .max(table)
        .max(instance)
        .max(hash_rows)
        .max(pack_rows);
    let k = (4..=28)
        .find(|&k| (1usize << k) >= rows + reserved_rows)
        .ok_or(CircuitError::TooLarge { rows })?;
    layout.k = k;
    s.k = k;
    let terms = s.terms();
    Ok(Plan {
        layout,
        linear_rows: linear,
        elementwise_rows: elementwise,
        table_rows: table,
        hash_rows,
        pack_rows,
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
/// within `max_memory_mb` (when given), and the runner-up.
pub fn plan_layout(
    model: &QModel,
    visibility: Visibility,
    max_memory_mb: Option<f64>,
) -> Result<(Plan, Option<Plan>), CircuitError> {
    model.validate()?;
    let hashes = visibility.hashes_anything();
    let packs = visibility.params == ParamsMode::Hashed;
    let hash_options: &[usize] = if hashes { &[1, 2, 4, 8, 16] } else { &[0] };
    let pack_options: &[usize] = if packs { &[1, 2, 4, 8] } else { &[0] };
    let mut plans = Vec::new();
    for x_cols in [1, 2, 4, 8, 16, 32, 64] {
        for acc_cols in [1, 2, 4, 8, 16, 32] {
            if x_cols * acc_cols > 256 {
                continue;
            }
            for lanes in [1, 2, 4, 8, 16] {
                for &hash_lanes in hash_options {
                    for &pack_lanes in pack_options {
                        let c = Candidate {
                            x_cols,
                            acc_cols,
                            lanes,
                            hash_lanes,
                            pack_lanes,
                        };
                        match evaluate(model, visibility, c) {
                            Ok(p) => plans.push(p),
                            Err(e @ CircuitError::WeightsTooWide { .. }) => return Err(e),
                            Err(_) => {}
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
    plans.sort_by(|a, b| {
        a.predicted
            .prove_s
            .total_cmp(&b.predicted.prove_s)
            .then(columns(a).cmp(&columns(b)))
    });
    let mut it = plans.into_iter();
    let best = it
        .next()
        .ok_or(CircuitError::TooLarge { rows: usize::MAX })?;
    Ok((best, it.next()))
}
