//! One proof for many: a model's proofs (its segments, or the one circuit) folded into
//! one proof by snark-verifier's aggregation circuit — KZG accumulation over SHPLONK, on
//! halo2-base — whose public values are a constant 13 (the accumulator's limbs and one
//! Poseidon digest of the statement) whatever the model, so that one contract verifies it.
//! Many segments fold by a tree of such circuits ([`tree`]); the digest is then nested
//! (a node's digest covers its children's digests), and [`verify`] recomputes it.
//!
//! ```text
//! segment proofs, Poseidon transcript (prove_inner) ──▶ Snark
//! Snarks ──aggregation circuit (links equal, digest)──▶ AggregateFile (Keccak transcript)
//! AggregateFile + segment keys + aggregation key ──verify──▶ the statement, or why not
//! ```
//!
//! The inner proofs use snark-verifier's Poseidon transcript (cheap to replay inside a
//! circuit); the aggregated proof uses the Keccak-256 EVM transcript of every other
//! zkinfer proof. Proving is CPU-only: the GPU engine writes Keccak transcripts.

pub mod circuit;
mod file;
#[cfg(feature = "prove")]
pub mod keygen;
pub mod keys;
#[cfg(feature = "prove")]
pub mod part;
#[cfg(feature = "prove")]
mod prove;
pub mod shape;
pub mod tree;

use halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine};
use halo2_proofs::plonk::verify_proof;
use halo2_proofs::poly::kzg::commitment::KZGCommitmentScheme;
use halo2_proofs::poly::kzg::multiopen::VerifierSHPLONK;
use halo2_proofs::poly::kzg::strategy::SingleStrategy;
use halo2_proofs::transcript::TranscriptReadBuffer;
use zkinfer_circuits::{InputMode, OutputMode, ParamsMode};
use zkinfer_verifier::{guard, VerifierKey};

pub use circuit::{statement_digest, Link, NUM_INSTANCE};
pub use file::{verify, AggregateFile, AGGREGATE_FORMAT};
#[cfg(feature = "prove")]
pub use keygen::{same_circuit, setup, tree_verifying_keys, verifying_key, AggregateKey, Earlier};
pub use keys::{aggregate_id, AggregateVerifierKey};
#[cfg(feature = "prove")]
pub use part::PartFile;
#[cfg(feature = "prove")]
pub use prove::{prove, prove_inner, prove_node, statement_file};
#[cfg(feature = "prove")]
pub use snark_verifier_sdk::Snark;
pub use tree::{Node, Part, Tree};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AggregateError {
    #[error("{0}")]
    Input(String),
    #[error("aggregation key generation failed: {0}")]
    Keygen(String),
    #[error("aggregation failed: {0}")]
    Prove(String),
    #[error(transparent)]
    Format(#[from] zkinfer_verifier::VerifyError),
}

/// The links between consecutive segments: each one's output link (its last public
/// value) against the next one's input link (first, or second after a weights hash).
pub fn links(keys: &[VerifierKey]) -> Result<Vec<Link>, AggregateError> {
    zkinfer_verifier::bundle::check_chain(keys)
        .map_err(|e| AggregateError::Input(format!("the segment keys do not form a model: {e}")))?;
    Ok(keys
        .windows(2)
        .enumerate()
        .map(|(i, pair)| {
            let (a, b) = (&pair[0].info, &pair[1].info);
            debug_assert_eq!(a.visibility().output, OutputMode::Linked);
            debug_assert_eq!(b.visibility().input, InputMode::Linked);
            let first = usize::from(b.visibility().params == ParamsMode::Hashed);
            Link {
                output: (i, a.public_values() - 1),
                input: (i + 1, first),
            }
        })
        .collect())
}

/// Verifies an aggregated proof's halo2 part (the accumulator is decided separately).
pub(crate) fn verify_outer(
    key: &AggregateVerifierKey,
    instances: &[Fr],
    proof: &[u8],
) -> Result<(), String> {
    let params = key
        .verifier_params()
        .ok_or("the aggregation key's SRS points are unusable")?;
    let ok = guard(|| {
        let mut transcript = <zkinfer_verifier::KeccakTranscript<&[u8]> as TranscriptReadBuffer<
            _,
            G1Affine,
            _,
        >>::init(proof);
        verify_proof::<KZGCommitmentScheme<Bn256>, VerifierSHPLONK<'_, Bn256>, _, _, _>(
            &params,
            &key.vk,
            SingleStrategy::new(&params),
            &[&[instances]],
            &mut transcript,
        )
        .map(|_| transcript.into_stream().len())
    });
    match ok {
        Some(Ok(0)) => Ok(()),
        // One proof, one encoding, as for every zkinfer proof.
        Some(Ok(rest)) => Err(format!(
            "the aggregated proof has {rest} bytes after its end (a proof is exactly what the verifier reads)"
        )),
        Some(Err(e)) => Err(format!("the aggregated proof does not verify: {e:?}")),
        None => Err("the aggregated proof does not verify: malformed proof bytes".into()),
    }
}
