//! zkinfer's verifier compiled to WebAssembly: the same checks as `zkinfer verify`, on
//! the same key and proof files, for Node and the browser.
//!
//! `verify(vk, proof_json)` returns whether the proof is valid; a key or proof file that
//! cannot be read at all (wrong magic, another format version, not JSON) throws, as the
//! command line exits 2 rather than calling it invalid.

use wasm_bindgen::prelude::*;
use zkinfer_verifier::{ProofFile, Verdict, VerifierKey};

fn key(vk: &[u8]) -> Result<VerifierKey, JsError> {
    VerifierKey::from_bytes(vk).map_err(|e| JsError::new(&e.to_string()))
}

fn verdict(vk: &[u8], proof_json: &str) -> Result<(VerifierKey, Verdict), JsError> {
    let key = key(vk)?;
    let proof = ProofFile::parse(proof_json).map_err(|e| JsError::new(&e.to_string()))?;
    let verdict = zkinfer_verifier::verify(&key, &proof);
    Ok((key, verdict))
}

/// `true` when the proof is valid for this verifying key.
#[wasm_bindgen]
pub fn verify(vk: &[u8], proof_json: &str) -> Result<bool, JsError> {
    Ok(matches!(verdict(vk, proof_json)?.1, Verdict::Valid { .. }))
}

/// The verdict as JSON: `{"valid": true, "model_id", "model", "visibility", "output": [...],
/// …}` (each public part present when the statement makes it public: `params_hash`,
/// `input`, `input_hash`, `output`, `output_hash`) or `{"valid": false, "reason": "..."}`.
#[wasm_bindgen]
pub fn verify_report(vk: &[u8], proof_json: &str) -> Result<String, JsError> {
    let (key, verdict) = verdict(vk, proof_json)?;
    let report = match verdict {
        Verdict::Valid { public } => serde_json::json!({
            "valid": true,
            "model": key.info.model,
            "model_id": key.model_id(),
            "visibility": key.info.visibility(),
            "params_hash": public.params_hash,
            "input": public.input,
            "input_hash": public.input_hash,
            "output": public.output,
            "output_hash": public.output_hash,
            "output_shape": key.info.output_shape,
        }),
        Verdict::Invalid { reason } => serde_json::json!({ "valid": false, "reason": reason }),
    };
    Ok(report.to_string())
}

/// The model commitment of a verifying key, as `zkinfer verify` prints it.
#[wasm_bindgen]
pub fn model_id(vk: &[u8]) -> Result<String, JsError> {
    Ok(key(vk)?.model_id())
}
