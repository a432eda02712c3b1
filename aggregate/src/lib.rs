//! One proof for many: a model's proofs (its segments, or the one circuit) folded into
//! one proof by snark-verifier's aggregation circuit — KZG accumulation over SHPLONK, on
//! halo2-base — whose public values are a constant 13 (the accumulator's limbs and one
//! Poseidon digest of the statement) whatever the model, so that one contract verifies it.
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
pub mod keys;

use halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine};
use halo2_proofs::plonk::{create_proof, create_proof_from_advice, verify_proof};
use halo2_proofs::poly::commitment::ParamsProver;
use halo2_proofs::poly::kzg::commitment::{KZGCommitmentScheme, ParamsKZG};
use halo2_proofs::poly::kzg::multiopen::{ProverSHPLONK, VerifierSHPLONK};
use halo2_proofs::poly::kzg::strategy::SingleStrategy;
use halo2_proofs::transcript::{TranscriptReadBuffer, TranscriptWriterBuffer};
use rand::rngs::OsRng;
use snark_verifier::loader::native::NativeLoader;
use snark_verifier::system::halo2::{compile, Config as ProtocolConfig};
use snark_verifier_sdk::halo2::{PoseidonTranscript, POSEIDON_SPEC};
use zkinfer_circuits::{InputMode, OutputMode, ParamsMode};
use zkinfer_prover::{Columns, ProverKey, Witness};
use zkinfer_verifier::artifact::{fr_to_hex, FORMAT_VERSION, PROOF_FORMAT, PROTOCOL};
use zkinfer_verifier::{guard, ProofFile, VerifierKey};

pub use circuit::{statement_digest, Link, NUM_INSTANCE};
pub use file::{verify, AggregateFile, AGGREGATE_FORMAT};
pub use keys::{
    aggregate_id, same_circuit, setup, verifying_key, AggregateKey, AggregateVerifierKey,
};
pub use snark_verifier_sdk::Snark;

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

/// A folded proof's statement as the aggregated proof file states it: a proof file of
/// `key`'s model with `witness`'s public values and output, and no proof bytes.
pub fn statement_file(key: &VerifierKey, witness: &Witness) -> ProofFile {
    ProofFile {
        format: PROOF_FORMAT.into(),
        version: FORMAT_VERSION,
        protocol: PROTOCOL.into(),
        model: key.info.model.clone(),
        model_id: key.model_id(),
        proof: "0x".into(),
        visibility: key.info.visibility(),
        instances: witness.instances.iter().map(fr_to_hex).collect(),
        output: witness.output().cloned(),
    }
}

/// Proves a segment's witness with snark-verifier's Poseidon transcript (what the
/// aggregation circuit replays), checks the proof, and returns it with its protocol.
pub fn prove_inner(
    params: &ParamsKZG<Bn256>,
    key: &ProverKey,
    witness: Witness,
) -> Result<Snark, AggregateError> {
    let Witness {
        columns, instances, ..
    } = witness;
    let fail = |e: String| AggregateError::Prove(format!("proving a segment for aggregation: {e}"));
    let mut transcript =
        PoseidonTranscript::<NativeLoader, Vec<u8>>::from_spec(vec![], POSEIDON_SPEC.clone());
    match columns {
        Columns::Advice(advice) => create_proof_from_advice::<
            KZGCommitmentScheme<Bn256>,
            ProverSHPLONK<'_, Bn256>,
            _,
            _,
            _,
        >(params, &key.pk, &[instances.as_slice()], advice, OsRng, &mut transcript),
        Columns::TwoPhase(circuit) => create_proof::<
            KZGCommitmentScheme<Bn256>,
            ProverSHPLONK<'_, Bn256>,
            _,
            _,
            _,
            _,
        >(
            params,
            &key.pk,
            &[*circuit],
            &[&[instances.as_slice()]],
            OsRng,
            &mut transcript,
        ),
    }
    .map_err(|e| fail(format!("{e:?}")))?;
    let proof = transcript.finalize();
    let vk = key.pk.get_vk();
    let ok = guard(|| {
        let mut t = PoseidonTranscript::<NativeLoader, &[u8]>::from_spec(
            proof.as_slice(),
            POSEIDON_SPEC.clone(),
        );
        let verifier = params.verifier_params();
        verify_proof::<KZGCommitmentScheme<Bn256>, VerifierSHPLONK<'_, Bn256>, _, _, _>(
            verifier,
            vk,
            SingleStrategy::new(verifier),
            &[&[instances.as_slice()]],
            &mut t,
        )
        .is_ok()
    });
    if ok != Some(true) {
        return Err(fail("the proof does not verify".into()));
    }
    let protocol = guard(|| {
        compile(
            params,
            vk,
            ProtocolConfig::kzg().with_num_instance(vec![instances.len()]),
        )
    })
    .ok_or_else(|| fail("snark-verifier cannot read this circuit".into()))?;
    Ok(Snark::new(protocol, vec![instances], proof))
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

/// The accumulator limbs and the digest, as the aggregated proof's public values.
pub(crate) type Instances = Vec<Fr>;

/// Proves the aggregation of `snarks` (one per segment of `key`'s model, in order).
pub fn prove(
    params: &ParamsKZG<Bn256>,
    key: &AggregateKey,
    snarks: Vec<Snark>,
) -> Result<(Instances, Vec<u8>), AggregateError> {
    key.check_snarks(&snarks)?;
    let circuit = guard(|| {
        circuit::build(
            circuit::Stage::Prover,
            key.info.config,
            params,
            snarks,
            &key.info.links,
        )
        .use_break_points(key.info.break_points.clone())
    })
    .ok_or_else(|| AggregateError::Prove("an inner proof does not verify".into()))?;
    let instances = circuit.builder.assigned_instances[0]
        .iter()
        .map(|v| *v.value())
        .collect::<Vec<Fr>>();
    let mut transcript = <zkinfer_verifier::KeccakTranscript<Vec<u8>> as TranscriptWriterBuffer<
        _,
        G1Affine,
        _,
    >>::init(Vec::new());
    create_proof::<KZGCommitmentScheme<Bn256>, ProverSHPLONK<'_, Bn256>, _, _, _, _>(
        params,
        &key.pk,
        &[circuit],
        &[&[instances.as_slice()]],
        OsRng,
        &mut transcript,
    )
    .map_err(|e| AggregateError::Prove(format!("{e:?}")))?;
    Ok((instances, transcript.finalize()))
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
    });
    match ok {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(format!("the aggregated proof does not verify: {e:?}")),
        None => Err("the aggregated proof does not verify: malformed proof bytes".into()),
    }
}
