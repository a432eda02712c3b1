//! zkinfer's verifier compiled to WebAssembly: the same checks as `zkinfer verify`, on
//! the same key and proof files, for Node and the browser.
//!
//! `verify(vk, proof_json)` returns whether the proof is valid; `verify_bundle(vks,
//! bundle_json)` does the same for a segmented model's bundle, with the segments' keys
//! in order, `verify_aggregate(vks, avk, aggregate_json)` for an aggregated proof with
//! the aggregation key too, `verify_certificate(vk, certificate_json)` for a capability
//! certificate; a key or proof file that
//! cannot be read at all (wrong magic, another format version, not JSON) throws, as the
//! command line exits 2 rather than calling it invalid.

use wasm_bindgen::prelude::*;
use zkinfer_aggregate::{AggregateFile, AggregateVerifierKey};
use zkinfer_verifier::{
    keys_id, BundleFile, CertificateFile, Claim, ProofFile, Verdict, VerifierKey,
};

fn key(vk: &[u8]) -> Result<VerifierKey, JsError> {
    VerifierKey::from_bytes(vk).map_err(|e| JsError::new(&e.to_string()))
}

fn verdict(
    vk: &[u8],
    proof_json: &str,
    model_id: Option<String>,
) -> Result<(VerifierKey, Verdict), JsError> {
    let key = key(vk)?;
    let proof = ProofFile::parse(proof_json).map_err(|e| JsError::new(&e.to_string()))?;
    let verdict = match model_id {
        Some(id) if id != key.model_id() => Verdict::Invalid {
            reason: format!(
                "the key is model id {}, not the required {id} (its header, k, KZG points, \
                 verifying key or weights hash differ)",
                key.model_id()
            ),
        },
        _ => zkinfer_verifier::verify(&key, &proof),
    };
    Ok((key, verdict))
}

/// `true` when the proof is valid for this verifying key and, when `model_id` is given,
/// the key is that model (the id pins the key's header, KZG points and halo2 key).
#[wasm_bindgen]
pub fn verify(vk: &[u8], proof_json: &str, model_id: Option<String>) -> Result<bool, JsError> {
    Ok(matches!(
        verdict(vk, proof_json, model_id)?.1,
        Verdict::Valid { .. }
    ))
}

/// The verdict as JSON: `{"valid": true, "model_id", "model", "visibility", "output": [...],
/// …}` (each public part present when the statement makes it public: `params_hash`,
/// `input`, `input_hash`, `output`, `output_hash`) or `{"valid": false, "reason": "..."}`;
/// both with `srs_fingerprint`, `insecure_dev_srs` and, for a key made with the
/// development SRS, a `warning` that its proofs can be forged. `model_id`, when given,
/// must be the key's.
#[wasm_bindgen]
pub fn verify_report(
    vk: &[u8],
    proof_json: &str,
    model_id: Option<String>,
) -> Result<String, JsError> {
    let (key, verdict) = verdict(vk, proof_json, model_id)?;
    let mut report = match verdict {
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
    srs_fields(&mut report, &key);
    Ok(report.to_string())
}

/// A report's `srs_fingerprint`, `insecure_dev_srs` and, for a key made with the
/// development SRS, `warning`.
fn srs_fields(report: &mut serde_json::Value, key: &VerifierKey) {
    let dev = key.srs.is_insecure_dev_srs();
    report["srs_fingerprint"] = key.srs.fingerprint().into();
    report["insecure_dev_srs"] = dev.into();
    if dev {
        report["warning"] = "this key was made with the insecure development SRS: anyone can \
                             forge proofs that verify under it"
            .into();
    }
}

/// The model commitment of a verifying key, as `zkinfer verify` prints it.
#[wasm_bindgen]
pub fn model_id(vk: &[u8]) -> Result<String, JsError> {
    Ok(key(vk)?.model_id())
}

/// The SRS fingerprint of a verifying key: which trusted setup it relies on.
#[wasm_bindgen]
pub fn srs_fingerprint(vk: &[u8]) -> Result<String, JsError> {
    Ok(key(vk)?.srs.fingerprint())
}

/// A segmented model's bundle against its segments' keys (in order): the verdict and the
/// keys' model id.
fn bundle_verdict(
    vks: &[Vec<u8>],
    bundle_json: &str,
    model_id: Option<String>,
) -> Result<(Vec<VerifierKey>, String, Verdict), JsError> {
    let keys = vks
        .iter()
        .map(|vk| key(vk))
        .collect::<Result<Vec<_>, _>>()?;
    let bundle = BundleFile::parse(bundle_json).map_err(|e| JsError::new(&e.to_string()))?;
    let id = keys_id(&keys);
    let verdict = match model_id {
        Some(want) if want != id => Verdict::Invalid {
            reason: format!("the keys are model id {id}, not the required {want}"),
        },
        _ => zkinfer_verifier::verify_bundle(&keys, &bundle),
    };
    Ok((keys, id, verdict))
}

fn bytes(vks: Vec<js_sys::Uint8Array>) -> Vec<Vec<u8>> {
    vks.iter().map(js_sys::Uint8Array::to_vec).collect()
}

/// `true` when the proof bundle of a segmented model is valid for the segments' keys
/// `vks` (in order: `DIR/segment-0/vk`, …): every segment's proof, every link between
/// them, the statement and the model id (pinned when `model_id` is given).
#[wasm_bindgen]
pub fn verify_bundle(
    vks: Vec<js_sys::Uint8Array>,
    bundle_json: &str,
    model_id: Option<String>,
) -> Result<bool, JsError> {
    Ok(matches!(
        bundle_verdict(&bytes(vks), bundle_json, model_id)?.2,
        Verdict::Valid { .. }
    ))
}

/// [`verify_bundle`]'s verdict as JSON, as [`verify_report`] gives one (with `segments`).
#[wasm_bindgen]
pub fn verify_bundle_report(
    vks: Vec<js_sys::Uint8Array>,
    bundle_json: &str,
    model_id: Option<String>,
) -> Result<String, JsError> {
    let (keys, id, verdict) = bundle_verdict(&bytes(vks), bundle_json, model_id)?;
    let last = &keys[keys.len() - 1];
    let mut report = match verdict {
        Verdict::Valid { public } => linked_report(&last.info.model, &id, &keys, &public),
        Verdict::Invalid { reason } => serde_json::json!({ "valid": false, "reason": reason }),
    };
    srs_fields(&mut report, last);
    Ok(report.to_string())
}

/// A valid verdict on a linked statement (a bundle's, or an aggregated proof's): the
/// model, its id, the segments and what the statement makes public.
fn linked_report(
    model: &str,
    model_id: &str,
    keys: &[VerifierKey],
    public: &zkinfer_verifier::Public,
) -> serde_json::Value {
    let last = &keys[keys.len() - 1];
    serde_json::json!({
        "valid": true,
        "model": model,
        "model_id": model_id,
        "segments": keys.len(),
        "params_hash": public.params_hash,
        "input": public.input,
        "input_hash": public.input_hash,
        "output": public.output,
        "output_hash": public.output_hash,
        "output_shape": last.info.output_shape,
    })
}

/// A capability certificate against its circuit's key: the claim, or why it is invalid.
fn certificate_verdict(
    vk: &[u8],
    certificate_json: &str,
    model_id: Option<String>,
) -> Result<(VerifierKey, Result<Claim, String>), JsError> {
    let key = key(vk)?;
    let cert =
        CertificateFile::parse(certificate_json).map_err(|e| JsError::new(&e.to_string()))?;
    let verdict = match model_id {
        Some(id) if id != key.model_id() => Err(format!(
            "the key is model id {}, not the required {id}",
            key.model_id()
        )),
        _ => zkinfer_verifier::verify_certificate(&key, &cert),
    };
    Ok((key, verdict))
}

/// `true` when the capability certificate is valid for the certificate circuit's key
/// `vk` (pinned to `model_id` when given): every batch proof, and the count, sample
/// number and dataset id it states.
#[wasm_bindgen]
pub fn verify_certificate(
    vk: &[u8],
    certificate_json: &str,
    model_id: Option<String>,
) -> Result<bool, JsError> {
    Ok(certificate_verdict(vk, certificate_json, model_id)?
        .1
        .is_ok())
}

/// [`verify_certificate`]'s verdict as JSON: `{"valid": true, "claim": "model 0x…
/// classifies 438/450 of dataset 0x… (97.33%)", "model_id", "params_hash", "dataset",
/// "samples", "correct", …}` or `{"valid": false, "reason": "..."}`, with the SRS fields
/// of [`verify_report`].
#[wasm_bindgen]
pub fn verify_certificate_report(
    vk: &[u8],
    certificate_json: &str,
    model_id: Option<String>,
) -> Result<String, JsError> {
    let (key, verdict) = certificate_verdict(vk, certificate_json, model_id)?;
    let mut report = match verdict {
        Ok(c) => serde_json::json!({
            "valid": true,
            "claim": c.sentence(),
            "model": key.info.model,
            "model_id": c.model_id,
            "params_hash": c.params_hash,
            "dataset": c.dataset,
            "samples": c.samples,
            "correct": c.correct,
        }),
        Err(reason) => serde_json::json!({ "valid": false, "reason": reason }),
    };
    srs_fields(&mut report, &key);
    Ok(report.to_string())
}

/// The keys an aggregated proof is verified with, read once: the segments' verifying keys
/// (in order, as for [`verify_bundle`]) and the aggregation verifying key
/// (`DIR/aggregate/vk`). Reading the aggregation key is the slow part (halo2 precomputes
/// FFT tables for its 2^21-row domain: seconds in wasm); verifying is milliseconds, so a
/// page that checks several proofs keeps one `AggregateVerifier`.
#[wasm_bindgen]
pub struct AggregateVerifier {
    keys: Vec<VerifierKey>,
    avk: AggregateVerifierKey,
}

#[wasm_bindgen]
impl AggregateVerifier {
    /// Reads the keys; throws when one cannot be read.
    #[wasm_bindgen(constructor)]
    pub fn new(vks: Vec<js_sys::Uint8Array>, avk: &[u8]) -> Result<AggregateVerifier, JsError> {
        let keys = bytes(vks)
            .iter()
            .map(|vk| key(vk))
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(JsError::new("no segment keys given"));
        }
        let avk =
            AggregateVerifierKey::from_bytes(avk).map_err(|e| JsError::new(&e.to_string()))?;
        Ok(AggregateVerifier { keys, avk })
    }

    /// The aggregate id of the aggregation key, as `zkinfer aggregate` prints it: what an
    /// aggregated proof is pinned by.
    #[wasm_bindgen(getter)]
    pub fn aggregate_id(&self) -> String {
        self.avk.id()
    }

    fn verdict(
        &self,
        aggregate_json: &str,
        aggregate_id: Option<String>,
    ) -> Result<Verdict, JsError> {
        let file =
            AggregateFile::parse(aggregate_json).map_err(|e| JsError::new(&e.to_string()))?;
        Ok(match aggregate_id {
            Some(want) if want != self.avk.id() => Verdict::Invalid {
                reason: format!(
                    "the aggregation key is aggregate id {}, not the required {want}",
                    self.avk.id()
                ),
            },
            _ => zkinfer_aggregate::verify(&self.keys, &self.avk, &file),
        })
    }

    /// `true` when the aggregated proof is valid for these keys, pinned to `aggregate_id`
    /// when given: the one folded proof, its accumulator's pairing, the digest of every
    /// stated public value, the links and the statement.
    pub fn verify(
        &self,
        aggregate_json: &str,
        aggregate_id: Option<String>,
    ) -> Result<bool, JsError> {
        Ok(matches!(
            self.verdict(aggregate_json, aggregate_id)?,
            Verdict::Valid { .. }
        ))
    }

    /// [`AggregateVerifier::verify`]'s verdict as JSON, as [`verify_bundle_report`] gives
    /// one (with `aggregate_id`).
    pub fn report(
        &self,
        aggregate_json: &str,
        aggregate_id: Option<String>,
    ) -> Result<String, JsError> {
        let last = &self.keys[self.keys.len() - 1];
        let mut report = match self.verdict(aggregate_json, aggregate_id)? {
            Verdict::Valid { public } => {
                let info = &self.avk.info;
                let mut r = linked_report(&info.model, &info.model_id, &self.keys, &public);
                r["aggregate_id"] = self.avk.id().into();
                r
            }
            Verdict::Invalid { reason } => serde_json::json!({ "valid": false, "reason": reason }),
        };
        srs_fields(&mut report, last);
        Ok(report.to_string())
    }
}

/// `new AggregateVerifier(vks, avk).verify(aggregate_json, aggregate_id)` in one call.
#[wasm_bindgen]
pub fn verify_aggregate(
    vks: Vec<js_sys::Uint8Array>,
    avk: &[u8],
    aggregate_json: &str,
    aggregate_id: Option<String>,
) -> Result<bool, JsError> {
    AggregateVerifier::new(vks, avk)?.verify(aggregate_json, aggregate_id)
}
