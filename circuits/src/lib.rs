//! halo2 chips for quantized neural-network ops, and the model circuit that strings
//! them together.
//!
//! | chip | proves |
//! |---|---|
//! | [`linear::LinearConfig`] | dot products of linear layers, weights in fixed columns |
//! | [`freivalds::FreivaldsConfig`] | linear layers over many rows, by a random combination of the rows |
//! | [`elementwise::LaneConfig`] | rescale (floor division, range-checked remainder), ReLU, add |
//! | [`table::TableConfig`] | the shared tagged lookup table (nonlinearities and range checks) |
//!
//! [`ModelCircuit`] proves exactly what [`zkinfer_qir::QModel::run`] computes; the
//! tests check every chip against that interpreter with `MockProver`.

pub mod cost;
pub mod elementwise;
pub mod freivalds;
pub mod layout;
pub mod linear;
pub mod model;
pub mod params;
pub mod plan;
pub mod poseidon;
pub mod rows;
pub mod segments;
pub mod table;
pub mod wires;
pub mod witness;

pub use halo2_proofs;
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::halo2curves::ff::PrimeField;

pub use layout::{
    Arguments, InputMode, Layout, LinearArgument, Objective, OutputMode, ParamsMode, RangeCheck,
    Visibility,
};
pub use model::{link, ModelCircuit, Salts};
pub use plan::{plan_layout, Plan};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CircuitError {
    #[error("the circuit needs {rows} rows, more than 2^28; the model is too large")]
    TooLarge { rows: usize },
    #[error(
        "--params hashed packs weights of at most {max} bits; this model's weights need {bits} \
         (quantize with fewer weight bits, or keep --params fixed)"
    )]
    WeightsTooWide { bits: u32, max: u32 },
    #[error(
        "no layout fits in --max-memory {budget:.0} MB: the smallest is predicted to need \
         {least:.0} MB (allow more memory, or compile with fewer --bits)"
    )]
    OverMemory { budget: f64, least: f64 },
    #[error(
        "ops {ops} (from `{first}`) cannot be cut smaller where the activations are bounded, \
         and are predicted to need {least:.0} MB, over --max-memory {budget:.0} MB (allow more \
         memory, or compile with fewer --bits)"
    )]
    SegmentOverMemory {
        ops: String,
        first: String,
        budget: f64,
        least: f64,
    },
    #[error(transparent)]
    Model(#[from] zkinfer_qir::QirError),
}

/// A signed integer as a field element (negative values wrap to `p - |v|`).
pub fn fe(v: i64) -> Fr {
    let x = Fr::from(v.unsigned_abs());
    if v < 0 {
        -x
    } else {
        x
    }
}

pub fn fe128(v: i128) -> Fr {
    let x = Fr::from_u128(v.unsigned_abs());
    if v < 0 {
        -x
    } else {
        x
    }
}

/// The signed integer a field element encodes, if it is within `i64`.
pub fn fe_to_i64(x: &Fr) -> Option<i64> {
    let small = |f: &Fr| -> Option<u64> {
        let repr = f.to_repr();
        let bytes = repr.as_ref();
        if bytes[8..].iter().any(|&b| b != 0) {
            return None;
        }
        Some(u64::from_le_bytes(bytes[..8].try_into().ok()?))
    };
    if let Some(v) = small(x) {
        return i64::try_from(v).ok();
    }
    let v = small(&-*x)?;
    i64::try_from(v).ok().map(|v| -v)
}

#[cfg(test)]
mod tests;
