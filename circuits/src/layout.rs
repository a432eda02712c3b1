//! The layout: how many columns each section of the model circuit gets, and the `k` that
//! fits it — plain data, the circuit's `Circuit::Params`, which the chips read and the
//! planner ([`crate::plan`]) chooses. With it, the statement's visibility modes.

use serde::{Deserialize, Serialize};

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
    /// A segment's input boundary, linked to the previous segment's output: its salted
    /// hash in the boundary domain is public (see [`Visibility`]).
    Linked,
}

/// What the verifier sees of the output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputMode {
    #[default]
    Public,
    Hashed,
    /// A segment's output boundary, linked to the next segment's input.
    Linked,
}

/// What the statement makes public. The public values are, in order: the weights hash
/// (`params = hashed`), the quantized input or its hash (`input = public | hashed |
/// linked`), and the quantized output or its hash.
///
/// `linked` is a segment's boundary with its neighbour (set by the segment planner, not
/// a user's choice): the Poseidon hash, in a domain of its own, of a private random salt
/// followed by the boundary's elements. Two proofs whose output and input link values
/// are equal have the same boundary values (the hash binds), and the salt hides them:
/// the activations between segments are never revealed, not even to a verifier who can
/// guess the input.
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
            InputMode::Hashed | InputMode::Linked => 1,
        };
        let output = match self.output {
            OutputMode::Public => n_out,
            OutputMode::Hashed | OutputMode::Linked => 1,
        };
        params + input + output
    }

    pub fn hashes_anything(&self) -> bool {
        self.params == ParamsMode::Hashed
            || matches!(self.input, InputMode::Hashed | InputMode::Linked)
            || matches!(self.output, OutputMode::Hashed | OutputMode::Linked)
    }

    /// Whether either end is a segment boundary.
    pub fn is_linked(&self) -> bool {
        self.input == InputMode::Linked || self.output == OutputMode::Linked
    }
}

/// Which argument checks the linear layers (`compile --linear`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinearArgument {
    /// Per layer, whichever lays out fewer cells (see [`crate::plan`]).
    #[default]
    Auto,
    /// Dot products, row by row ([`crate::linear`]).
    Dot,
    /// Freivalds' argument wherever it applies ([`crate::freivalds`]).
    Freivalds,
}

/// How activations and remainders are range-checked (`compile --range`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RangeCheck {
    /// Whichever the cost model predicts proves faster (see [`crate::plan`]).
    #[default]
    Auto,
    /// Against one table of every `B`-bit value: one lookup a value, `2^B` rows.
    Table,
    /// In two limbs ([`Layout::limb_bits`]): two lookups a value, `~2^(B/2+1)` rows.
    Limbs,
}

/// What the planner minimises (`compile --aggregate`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// The predicted time to prove.
    #[default]
    Prove,
    /// The time to prove and to fold the proof into an aggregation
    /// ([`crate::cost::Terms::aggregation_s`]): an aggregation circuit verifies every
    /// commitment of a proof and its key, at a cost far above proving a small circuit,
    /// so this takes the layouts of fewest commitments.
    Aggregate,
}

/// The planner's choices of argument: how linear layers and range checks are proven,
/// and what it minimises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Arguments {
    pub linear: LinearArgument,
    pub range: RangeCheck,
    pub objective: Objective,
}

impl From<LinearArgument> for Arguments {
    fn from(linear: LinearArgument) -> Self {
        Arguments {
            linear,
            ..Arguments::default()
        }
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
named!(InputMode { Public => "public", Private => "private", Hashed => "hashed", Linked => "linked" });
named!(OutputMode { Public => "public", Hashed => "hashed", Linked => "linked" });
named!(LinearArgument { Auto => "auto", Dot => "dot", Freivalds => "freivalds" });
named!(RangeCheck { Auto => "auto", Table => "table", Limbs => "limbs" });

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
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// Boundary-packing lanes (0 unless a boundary is linked).
    #[serde(default)]
    pub link_lanes: usize,
    /// Signed width of the packed boundary values, the model's activation width (0 unless
    /// a boundary is linked).
    #[serde(default)]
    pub link_bits: u32,
    /// Horner lanes of Freivalds' argument (0 unless an op uses it).
    #[serde(default)]
    pub horner_lanes: usize,
    /// The linear ops (indices into the model's ops, ascending) checked by Freivalds'
    /// argument ([`crate::freivalds`]) instead of dot products.
    #[serde(default)]
    pub freivalds: Vec<usize>,
    /// Inner-product lanes (0 or 1): with one, the ops among `freivalds` that sum the
    /// products of two activations ([`crate::freivalds::Product`]) are checked as matrix
    /// products, under a second challenge, and their multiplies are not laid out. Never
    /// with hashed weights: the check's ones and bias are constants, not hashed parameters.
    /// Not written when 0, so that every layout without products (every key made before
    /// them) serializes, and so hashes into its model id, as it did.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub product_lanes: usize,
    /// How activations and remainders are range-checked: 0, against the one table of all
    /// `2^B` values (tag RELU); `L > 0`, decomposed into `L`-bit limbs against tables of
    /// `2^(L+1)` and `2^(B-L)` rows ([`crate::table`], [`crate::elementwise`]).
    #[serde(default)]
    pub limb_bits: u32,
    /// Banks the lookup table is laid out in, side by side ([`crate::table`]): the
    /// tabulated functions are dealt round them, each bank a lookup on every lane.
    #[serde(default = "one")]
    pub banks: usize,
}

fn one() -> usize {
    1
}

fn is_zero(n: &usize) -> bool {
    *n == 0
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
            link_lanes: 0,
            link_bits: 0,
            horner_lanes: 0,
            freivalds: Vec::new(),
            product_lanes: 0,
            limb_bits: 0,
            banks: 1,
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
            }
            && self.link_lanes <= 64
            && (self.link_lanes > 0) == self.visibility.is_linked()
            && if self.link_lanes > 0 {
                (2..=30).contains(&self.link_bits)
            } else {
                self.link_bits == 0
            }
            && self.horner_lanes <= 256
            && (self.horner_lanes > 0) != self.freivalds.is_empty()
            && self.freivalds.windows(2).all(|w| w[0] < w[1])
            && self.product_lanes <= usize::from(self.horner_lanes > 0)
            && (self.product_lanes == 0 || self.visibility.params != ParamsMode::Hashed)
            && self.limb_bits <= MAX_LIMB_BITS
            && (1..=MAX_BANKS).contains(&self.banks);
        if ok {
            Ok(())
        } else {
            Err(format!("layout out of bounds: {self:?}"))
        }
    }
}

/// The most banks the table is laid out in.
pub const MAX_BANKS: usize = 4;

/// The widest limb of a decomposed range check (half the widest activation width).
pub const MAX_LIMB_BITS: u32 = 15;

/// The widest weights `--params hashed` packs (range-checked in a table of `2^bits` rows,
/// or in two limbs of at most 8 bits: [`crate::params::PackConfig`]).
pub const MAX_WEIGHT_BITS: u32 = 16;
