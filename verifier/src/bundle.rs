//! Proof bundles: a model cut into segments, one proof each, linked at every cut.
//!
//! Segment `i`'s circuit proves `i`'s ops from its input boundary to its output
//! boundary. Its neighbours are linked by their boundaries' salted Poseidon hashes
//! (`linked` in [`zkinfer_circuits::Visibility`]): segment `i`'s output link must equal
//! segment `i+1`'s input link, so the boundary values are the same in both proofs, and
//! stay hidden. The first segment's input and the last one's output are the statement's
//! (public, private or hashed as compiled).
//!
//! The bundle's model id ([`bundle_id`]) digests the segments' model ids in order, so
//! pinning it pins every segment's key, their order and the statement. A model of one
//! segment is a plain proof file with its plain model id; a bundle has two or more.

use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};
use zkinfer_circuits::{InputMode, OutputMode};

use crate::artifact::{has_json_format, parse_json_file, ProofFile, FORMAT_VERSION};
use crate::identity::hex32;
use crate::{verify, Public, Verdict, VerifierKey, VerifyError};

pub const BUNDLE_FORMAT: &str = "zkinfer-bundle";

/// The most segments a bundle may have (a bound on what a file may claim).
pub const MAX_SEGMENTS: usize = 4096;

/// The proof bundle file (JSON): one proof file per segment, in segment order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleFile {
    pub format: String,
    pub version: u32,
    pub model: String,
    /// [`bundle_id`] of the segments' keys.
    pub model_id: String,
    pub proofs: Vec<ProofFile>,
}

impl BundleFile {
    pub fn new(model: String, model_id: String, proofs: Vec<ProofFile>) -> Self {
        BundleFile {
            format: BUNDLE_FORMAT.into(),
            version: FORMAT_VERSION,
            model,
            model_id,
            proofs,
        }
    }

    pub fn parse(text: &str) -> Result<Self, VerifyError> {
        let b: BundleFile = parse_json_file(text, BUNDLE_FORMAT, "proof bundle")?;
        if b.proofs.is_empty() || b.proofs.len() > MAX_SEGMENTS {
            return Err(VerifyError::Format {
                what: "proof bundle".into(),
                reason: format!(
                    "holds {} proofs; a bundle has 1 to {MAX_SEGMENTS}",
                    b.proofs.len()
                ),
            });
        }
        Ok(b)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// Whether `text` is a proof bundle rather than a single proof file (by its `format`).
pub fn is_bundle(text: &str) -> bool {
    has_json_format(text, BUNDLE_FORMAT)
}

/// The model id of the segments `ids` (their [`crate::model_id`]s, in order): one
/// segment's own id, or for several `0x<digest>` where digest = Keccak-256 of the tag
/// `zkinfer bundle id v1`, the number of segments and each segment's key digest
/// (length-prefixed). With hashed weights, `:<weights digest>` follows, the Keccak-256
/// of the tag `zkinfer bundle weights v1` and the segments' weights hashes in order.
pub fn bundle_id(ids: &[String]) -> String {
    if let [only] = ids {
        return only.clone();
    }
    let split: Vec<(&str, Option<&str>)> = ids
        .iter()
        .map(|id| match id.split_once(':') {
            Some((key, weights)) => (key, Some(weights)),
            None => (id.as_str(), None),
        })
        .collect();
    let mut h = Keccak256::new();
    h.update(b"zkinfer bundle id v1");
    h.update((ids.len() as u64).to_le_bytes());
    for (key, _) in &split {
        h.update((key.len() as u64).to_le_bytes());
        h.update(key.as_bytes());
    }
    let digest = hex32(&h.finalize());
    let weights: Vec<&str> = split.iter().filter_map(|(_, w)| *w).collect();
    if weights.is_empty() {
        return digest;
    }
    let mut h = Keccak256::new();
    h.update(b"zkinfer bundle weights v1");
    h.update((weights.len() as u64).to_le_bytes());
    for w in weights {
        h.update((w.len() as u64).to_le_bytes());
        h.update(w.as_bytes());
    }
    format!("{digest}:{}", hex32(&h.finalize()))
}

/// The model id of a segmented model's keys, in segment order.
pub fn keys_id(keys: &[VerifierKey]) -> String {
    bundle_id(&keys.iter().map(VerifierKey::model_id).collect::<Vec<_>>())
}

/// Checks that `keys` are the segments of one model: the first and the last ends are the
/// statement's, every cut between them is linked, and each output boundary has as many
/// elements as the next input boundary.
pub fn check_chain(keys: &[VerifierKey]) -> Result<(), String> {
    let n = keys.len();
    if n == 0 || n > MAX_SEGMENTS {
        return Err(format!("{n} segment keys; a model has 1 to {MAX_SEGMENTS}"));
    }
    for (i, key) in keys.iter().enumerate() {
        let vis = key.info.visibility();
        let input_linked = vis.input == InputMode::Linked;
        let output_linked = vis.output == OutputMode::Linked;
        if input_linked != (i > 0) || output_linked != (i + 1 < n) {
            return Err(format!(
                "segment {i} of {n} makes public {vis}: a segment's input must be linked \
                 exactly when it is not the first, its output exactly when it is not the last"
            ));
        }
    }
    for (i, pair) in keys.windows(2).enumerate() {
        let (out, inp) = (pair[0].info.output_len(), pair[1].info.input_len());
        if out != inp {
            return Err(format!(
                "segment {i} outputs a boundary of {out} elements, segment {} takes {inp}",
                i + 1
            ));
        }
    }
    Ok(())
}

/// Verifies a bundle against the segments' keys (in order): the chain of keys, the
/// bundle's model id, every segment's proof under its key, and every link. The public
/// values are the statement's: the first segment's input, the last one's output, and
/// with hashed weights the bundle's weights digest.
pub fn verify_bundle(keys: &[VerifierKey], bundle: &BundleFile) -> Verdict {
    let invalid = |reason: String| Verdict::Invalid { reason };
    if let Err(reason) = check_chain(keys) {
        return invalid(format!("the segment keys do not form a model: {reason}"));
    }
    let id = keys_id(keys);
    if bundle.model_id != id {
        return invalid(format!(
            "the bundle is for model id {}, these keys are model id {id}",
            bundle.model_id
        ));
    }
    if bundle.proofs.len() != keys.len() {
        return invalid(format!(
            "the bundle holds {} segment proofs; the model has {} segments",
            bundle.proofs.len(),
            keys.len()
        ));
    }
    let mut publics: Vec<Public> = Vec::with_capacity(keys.len());
    for (i, (key, proof)) in keys.iter().zip(&bundle.proofs).enumerate() {
        match verify(key, proof) {
            Verdict::Valid { public } => publics.push(public),
            Verdict::Invalid { reason } => {
                return invalid(format!("segment {i} of {}: {reason}", keys.len()))
            }
        }
    }
    match linked_statement(&id, &publics) {
        Ok(public) => Verdict::Valid { public },
        Err(reason) => invalid(reason),
    }
}

/// The whole model's statement from its segments' (`publics`, in order, of the model with
/// id `id`), once every cut links: the first segment's input, the last one's output, and
/// with hashed weights the weights digest of `id`.
pub fn linked_statement(id: &str, publics: &[Public]) -> Result<Public, String> {
    for (i, pair) in publics.windows(2).enumerate() {
        let (out, inp) = (&pair[0].output_link, &pair[1].input_link);
        if out.is_none() || out != inp {
            return Err(format!(
                "the boundary between segments {i} and {} does not link: segment {i} output \
                 {}, segment {} took {}",
                i + 1,
                out.as_deref().unwrap_or("(none)"),
                i + 1,
                inp.as_deref().unwrap_or("(none)")
            ));
        }
    }
    let (Some(first), Some(last)) = (publics.first(), publics.last()) else {
        return Err("no segment".into());
    };
    Ok(Public {
        params_hash: id.split_once(':').map(|(_, w)| w.to_string()),
        input: first.input.clone(),
        input_hash: first.input_hash.clone(),
        output: last.output.clone(),
        output_hash: last.output_hash.clone(),
        input_link: None,
        output_link: None,
    })
}
