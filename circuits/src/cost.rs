//! The cost model: what proving a layout takes, in seconds and megabytes.
//!
//! halo2's prover does two kinds of heavy work. It commits to every polynomial it
//! creates over the `2^k` rows (multi-scalar multiplications): the advice columns, three
//! per lookup (permuted input, permuted table, product), one per permutation product
//! chunk, the random polynomial and the `degree − 1` quotient pieces. And it evaluates
//! the constraints on the extended domain (`2^k` times the next power of two of
//! `degree − 1`), which needs every column there: advice, fixed (selectors included),
//! instance, the lookups' five polynomials, the permutation's sigma columns and
//! products. Prove time is modelled as linear in those two amounts of work and in the
//! number of committed polynomials (each commitment and transform has a fixed cost
//! whatever its size: on circuits of many columns at small `k`, such as lenet5's, it is
//! a fifth of the time, which a model in the rows' work alone under-priced), and the
//! peak memory of `setup` and of `prove` each as affine in the columns resident at `2^k`
//! rows (the key's fixed and permutation polynomials, twice each, the witness columns,
//! the lookup polynomials), in one extended-domain column, and in the fixed columns alone
//! (key generation holds them in a third form, the assembly, while it builds the key:
//! the setup peak of a circuit with many weight columns).
//!
//! The constants are fitted by `scripts/calibrate.sh` (least squares of the relative
//! error over the shared models at several widths, visibilities and both linear
//! arguments, and four large models at `k` 15 to 17) on the 2-core development machine
//! (Intel Xeon, 24 GiB); a machine with more cores proves faster, so absolute figures
//! are that machine's, while the planner only needs them to rank layouts.
//! `scripts/bench.sh` prints each prediction beside the measurement.

use serde::{Deserialize, Serialize};

// Fitted by `scripts/calibrate.sh` (the fit and its errors are in docs/BENCHMARKS.md).
/// Seconds per hundred committed polynomials, per million committed field elements, per
/// million extended-domain evaluations.
const T_POLYS: f64 = 0.2370;
const T_COMMIT: f64 = 1.976;
const T_EXTENDED: f64 = 0.2875;
/// Seconds the aggregation circuit (`zkinfer aggregate`, 2^21 rows) spends proving per
/// hundred commitments of an inner proof and its key: mlp_tiny's two 8-bit segments,
/// 146 commitments with range checks by table and 178 in limbs, folded in 224.5 s and
/// 270.7 s on the reference machine (docs/BENCHMARKS.md).
const T_AGGREGATE: f64 = 144.4;
/// Memory, `[setup, prove]`: MB, MB per resident MB, per extended-column MB, per fixed MB.
const M0: [f64; 2] = [10.47, 11.37];
const M_RESIDENT: [f64; 2] = [1.343, 1.933];
const M_EXTENDED: [f64; 2] = [9.147, 6.459];
const M_FIXED: [f64; 2] = [3.530, 0.6804];

/// The shape of a layout's constraint system, as the prover sees it.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub k: u32,
    pub advice: usize,
    /// Fixed columns, selectors included.
    pub fixed: usize,
    pub instance: usize,
    pub lookups: usize,
    /// Columns in the permutation argument.
    pub permutation: usize,
    /// Maximum constraint degree.
    pub degree: usize,
}

/// The work one proof of a layout does, in the units the constants are per.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Terms {
    /// Hundreds of committed polynomials.
    #[serde(default)]
    pub polys: f64,
    /// Hundreds of commitments an aggregation circuit verifies for one proof: the
    /// committed polynomials and the key's fixed and permutation commitments.
    #[serde(default)]
    pub verified: f64,
    /// Millions of field elements committed to (`2^k` × committed polynomials).
    pub commit: f64,
    /// Millions of extended-domain evaluations (extended size × columns there).
    pub extended: f64,
    /// MB of the columns held at `2^k` rows while proving.
    pub resident_mb: f64,
    /// MB of one extended-domain column.
    pub extended_mb: f64,
    /// MB of the fixed columns (selectors included) at `2^k` rows.
    #[serde(default)]
    pub fixed_mb: f64,
}

/// Predicted proving time and peak memory.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub prove_s: f64,
    /// The larger of `setup_mb` and `prove_mb`: what a memory budget is held to.
    pub peak_mb: f64,
    /// Peak of `setup` (key generation) alone.
    #[serde(default)]
    pub setup_mb: f64,
    /// Peak of `prove` alone.
    #[serde(default)]
    pub prove_mb: f64,
}

const FIELD_BYTES: f64 = 32.0;

impl Shape {
    /// Permutation product chunks: each holds `degree − 2` columns.
    pub fn permutation_chunks(&self) -> usize {
        self.permutation
            .div_ceil(self.degree.saturating_sub(2).max(1))
    }

    /// `log2` of the extended domain's size.
    pub fn extended_k(&self) -> u32 {
        let quotient = self.degree.saturating_sub(1).max(1);
        self.k + quotient.next_power_of_two().trailing_zeros()
    }

    pub fn terms(&self) -> Terms {
        let n = (1u64 << self.k) as f64;
        let ext = (1u64 << self.extended_k()) as f64;
        let chunks = self.permutation_chunks() as f64;
        let (a, f, l, p) = (
            self.advice as f64,
            self.fixed as f64,
            self.lookups as f64,
            self.permutation as f64,
        );
        let pieces = self.degree.saturating_sub(1) as f64;
        let committed = a + 3.0 * l + chunks + pieces + 1.0;
        let on_extended = a + f + self.instance as f64 + 5.0 * l + chunks + p;
        let resident = 2.0 * (f + p + a) + 5.0 * l + 2.0 * chunks + 3.0;
        Terms {
            polys: committed / 100.0,
            verified: (committed + f + p) / 100.0,
            commit: n * committed / 1e6,
            extended: ext * on_extended / 1e6,
            resident_mb: n * resident * FIELD_BYTES / 1e6,
            extended_mb: ext * FIELD_BYTES / 1e6,
            fixed_mb: n * f * FIELD_BYTES / 1e6,
        }
    }
}

impl Terms {
    /// Predicted seconds that folding one proof of this layout adds to an aggregation
    /// (keys and proof), which grows with its commitments, not its rows.
    pub fn aggregation_s(&self) -> f64 {
        T_AGGREGATE * self.verified
    }

    pub fn predict(&self) -> Prediction {
        let mb = |i: usize| {
            M0[i]
                + M_RESIDENT[i] * self.resident_mb
                + M_EXTENDED[i] * self.extended_mb
                + M_FIXED[i] * self.fixed_mb
        };
        let (setup_mb, prove_mb) = (mb(0), mb(1));
        Prediction {
            prove_s: T_POLYS * self.polys + T_COMMIT * self.commit + T_EXTENDED * self.extended,
            peak_mb: setup_mb.max(prove_mb),
            setup_mb,
            prove_mb,
        }
    }
}
