//! Setup (SRS, key generation) and proving for zkinfer model circuits.
//!
//! Proofs use SHPLONK over KZG/BN254 with snark-verifier's Keccak-256 EVM transcript,
//! so the same bytes verify natively, in wasm and in the exported Solidity verifier.

pub mod artifact;
pub mod engine;
pub mod keys;
pub mod srs;

use std::sync::Arc;

use halo2_proofs::halo2curves::bn256::{Bn256, Fr};
use halo2_proofs::poly::kzg::commitment::ParamsKZG;
use zkinfer_circuits::witness::advice_columns;
use zkinfer_circuits::{ModelCircuit, OutputMode, Salts};
use zkinfer_qir::{dequantize, QModel, Trace};
use zkinfer_verifier::artifact::{
    fr_to_hex, OutputValues, ProofFile, FORMAT_VERSION, PROOF_FORMAT, PROTOCOL,
};

pub use artifact::CompiledCircuit;
pub use engine::{Columns, CpuEngine, Engine};
pub use keys::{setup, ProverKey};
pub use srs::{dev_srs, read_ceremony_srs, read_halo2_params, read_srs, srs_points, write_srs};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProveError {
    #[error("SRS: {0}")]
    Srs(String),
    #[error("key generation failed: {0}")]
    Keygen(String),
    #[error("proving failed: {0}")]
    Prove(String),
    #[error(transparent)]
    Model(#[from] zkinfer_qir::QirError),
    #[error(transparent)]
    Format(#[from] zkinfer_verifier::VerifyError),
}

/// The KZG parameters (structured reference string) the prover commits with.
pub type Params = ParamsKZG<Bn256>;

/// A model's witness as the engines take it, with the public values it proves.
pub struct Witness {
    pub columns: Columns,
    pub instances: Vec<Fr>,
    output: Option<OutputValues>,
}

impl Witness {
    /// The public output as the proof file states it (absent when it is not public).
    pub fn output(&self) -> Option<&OutputValues> {
        self.output.as_ref()
    }
}

/// Lays out the witness of `trace` (the integer interpreter's run of `model`) in the
/// advice columns of `key`'s circuit; `salts` blind a segment's linked boundaries.
pub fn witness(
    model: Arc<QModel>,
    key: &ProverKey,
    trace: Arc<Trace>,
    salts: Salts,
) -> Result<Witness, ProveError> {
    let info = &key.info;
    let instances = ModelCircuit::instances(&model, &info.layout, &trace, &salts);
    let output = (info.visibility().output == OutputMode::Public).then(|| OutputValues {
        shape: info.output_shape.clone(),
        scale: info.output_scale,
        values: trace
            .get(model.output)
            .iter()
            .map(|&v| dequantize(v, info.output_scale))
            .collect(),
    });
    let circuit = ModelCircuit::with_trace(model, info.layout.clone(), trace).salted(salts);
    let columns = if circuit.layout.horner_lanes > 0 {
        Columns::TwoPhase(Box::new(circuit))
    } else {
        Columns::Advice(
            advice_columns(&circuit)
                .map_err(|e| ProveError::Prove(format!("laying out the witness: {e:?}")))?,
        )
    };
    Ok(Witness {
        columns,
        instances,
        output,
    })
}

/// Proves on `engine` the statement of `witness`.
pub fn prove_witness(
    engine: &dyn Engine,
    key: &ProverKey,
    params: &ParamsKZG<Bn256>,
    witness: Witness,
) -> Result<ProofFile, ProveError> {
    let info = &key.info;
    let Witness {
        columns,
        instances,
        output,
    } = witness;
    let proof = engine.create_proof(params, &key.pk, columns, &instances)?;
    Ok(ProofFile {
        format: PROOF_FORMAT.into(),
        version: FORMAT_VERSION,
        protocol: PROTOCOL.into(),
        model: info.model.clone(),
        model_id: key.model_id(params),
        proof: format!("0x{}", hex_encode(&proof)),
        visibility: info.visibility(),
        instances: instances.iter().map(fr_to_hex).collect(),
        output,
    })
}

/// Proves on `engine` that `model` maps the quantized input of `trace` to its output:
/// [`witness`], then [`prove_witness`]. For a whole model (no linked boundary).
pub fn prove(
    engine: &dyn Engine,
    model: Arc<QModel>,
    key: &ProverKey,
    params: &ParamsKZG<Bn256>,
    trace: Arc<Trace>,
) -> Result<ProofFile, ProveError> {
    let w = witness(model, key, trace, Salts::default())?;
    prove_witness(engine, key, params, w)
}

/// Runs `f`, turning a panic inside a dependency (on malformed input) into `None`.
pub(crate) fn guard<T>(f: impl FnOnce() -> T) -> Option<T> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok();
    std::panic::set_hook(hook);
    r
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
