//! Proving engines: the seam between zkinfer and whatever computes a halo2 proof.
//!
//! An engine takes the witness ([`Columns`]: advice columns, see
//! [`zkinfer_circuits::witness`], or for a two-phase circuit the circuit itself) and
//! returns the proof bytes of the Keccak-256 EVM transcript; everything around it
//! (witness, instances, proof file) is shared, so every engine's proof verifies with the
//! same verifier. The CPU engine is halo2-axiom's prover; the CUDA engine lives in the
//! separate GPU build (`gpu/`).

use halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine};
use halo2_proofs::plonk::{
    create_proof as create_proof_from_circuit, create_proof_from_advice, ProvingKey,
};
use halo2_proofs::poly::kzg::commitment::{KZGCommitmentScheme, ParamsKZG};
use halo2_proofs::poly::kzg::multiopen::ProverSHPLONK;
use halo2_proofs::transcript::TranscriptWriterBuffer;
use rand::rngs::OsRng;

use zkinfer_circuits::ModelCircuit;

use crate::ProveError;

/// A witness as an engine takes it.
pub enum Columns {
    /// The advice columns, written before proving (single-phase circuits).
    Advice(Vec<Vec<Fr>>),
    /// A circuit with a second phase (Freivalds' argument): its second-phase columns
    /// depend on a challenge drawn after the first phase is committed, so the prover
    /// synthesizes it while proving (halo2's layouter path).
    TwoPhase(Box<ModelCircuit>),
}

/// The transcript every engine writes.
pub type ProofTranscript = zkinfer_verifier::KeccakTranscript<Vec<u8>>;

pub trait Engine: Sync {
    /// Short name for reports (`cpu`, `cuda`).
    fn name(&self) -> &'static str;

    /// Proves the circuit of `pk` with the witness `columns` for the public `instances`.
    fn create_proof(
        &self,
        params: &ParamsKZG<Bn256>,
        pk: &ProvingKey<G1Affine>,
        columns: Columns,
        instances: &[Fr],
    ) -> Result<Vec<u8>, ProveError>;
}

/// halo2-axiom's multi-threaded CPU prover.
pub struct CpuEngine;

impl Engine for CpuEngine {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn create_proof(
        &self,
        params: &ParamsKZG<Bn256>,
        pk: &ProvingKey<G1Affine>,
        columns: Columns,
        instances: &[Fr],
    ) -> Result<Vec<u8>, ProveError> {
        let mut transcript = ProofTranscript::init(Vec::new());
        match columns {
            Columns::Advice(advice) => {
                create_proof_from_advice::<
                    KZGCommitmentScheme<Bn256>,
                    ProverSHPLONK<'_, Bn256>,
                    _,
                    _,
                    _,
                >(params, pk, &[instances], advice, OsRng, &mut transcript)
            }
            Columns::TwoPhase(circuit) => create_proof_from_circuit::<
                KZGCommitmentScheme<Bn256>,
                ProverSHPLONK<'_, Bn256>,
                _,
                _,
                _,
                _,
            >(
                params,
                pk,
                &[*circuit],
                &[&[instances]],
                OsRng,
                &mut transcript,
            ),
        }
        .map_err(|e| ProveError::Prove(format!("{e:?}")))?;
        Ok(transcript.finalize())
    }
}
