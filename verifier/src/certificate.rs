//! Capability certificates: "the model with this id classifies `correct` of these `n`
//! samples correctly", proven without revealing the model.
//!
//! A certificate's circuit ([`crate::artifact::Certificate`] in its header) runs the
//! model on a batch of samples whose labels follow them in its input, takes each
//! sample's argmax, compares it with the label and sums the matches: its one public
//! output is that count, computed in the circuit. Its weights are hashed (the weights
//! hash is the model's public id), its input is hashed (the batch's hash). A certificate
//! file holds one proof per batch; the verifier checks each, sums the counts, and
//! recomputes the dataset id from the batches' hashes, in order:
//!
//! `dataset id = Keccak-256("zkinfer dataset id v2" ‖ batch ‖ classes ‖ input length ‖
//! input scale ‖ input bits ‖ batches ‖ hash_0 ‖ …)` (numbers as little-endian u64, hashes
//! as 32-byte little-endian field elements).
//!
//! Anyone holding the dataset recomputes the id with [`dataset_id_of`]: the samples are
//! quantized exactly as the prover's input and hashed as the circuit hashes it.

use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::halo2curves::ff::PrimeField;
use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};
use zkinfer_circuits::poseidon::{hash, Domain};

use crate::artifact::{
    fr_from_hex, has_json_format, parse_json_file, Certificate, ProofFile, StatementInfo,
    FORMAT_VERSION,
};
use crate::identity::hex32;
use crate::{verify, Verdict, VerifierKey, VerifyError};

pub const CERTIFICATE_FORMAT: &str = "zkinfer-certificate";

/// The most batches a certificate may hold (a bound on what a file may claim).
pub const MAX_BATCHES: usize = 1 << 16;

/// The certificate file (JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateFile {
    pub format: String,
    pub version: u32,
    pub model: String,
    /// The certificate circuit's model id (`0x<digest>:<weights hash>`).
    pub model_id: String,
    /// [`dataset_id`] of the batches' input hashes.
    pub dataset: String,
    /// Samples, `batch ×` the number of proofs.
    pub samples: u64,
    /// Samples whose proven argmax equals their label: the sum of the proofs' outputs.
    pub correct: u64,
    /// One proof per batch, in dataset order.
    pub proofs: Vec<ProofFile>,
}

impl CertificateFile {
    /// The certificate of `claim`, made of these proofs.
    pub fn new(model: String, claim: &Claim, proofs: Vec<ProofFile>) -> Self {
        CertificateFile {
            format: CERTIFICATE_FORMAT.into(),
            version: FORMAT_VERSION,
            model,
            model_id: claim.model_id.clone(),
            dataset: claim.dataset.clone(),
            samples: claim.samples,
            correct: claim.correct,
            proofs,
        }
    }

    pub fn parse(text: &str) -> Result<Self, VerifyError> {
        let c: CertificateFile = parse_json_file(text, CERTIFICATE_FORMAT, "certificate")?;
        if c.proofs.is_empty() || c.proofs.len() > MAX_BATCHES {
            return Err(VerifyError::Format {
                what: "certificate".into(),
                reason: format!(
                    "holds {} proofs; a certificate has 1 to {MAX_BATCHES}",
                    c.proofs.len()
                ),
            });
        }
        Ok(c)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// Whether `text` is a certificate (by its `format`).
pub fn is_certificate(text: &str) -> bool {
    has_json_format(text, CERTIFICATE_FORMAT)
}

/// What a valid certificate states.
#[derive(Clone, Debug, PartialEq)]
pub struct Claim {
    pub model_id: String,
    /// The weights hash: the hidden model's public id.
    pub params_hash: String,
    pub dataset: String,
    pub samples: u64,
    pub correct: u64,
}

impl Claim {
    /// `model 0x… classifies 438/450 of dataset 0x… (97.33%)`.
    pub fn sentence(&self) -> String {
        format!(
            "model {} classifies {}/{} of dataset {} ({:.2}%)",
            self.params_hash,
            self.correct,
            self.samples,
            self.dataset,
            100.0 * self.correct as f64 / self.samples.max(1) as f64
        )
    }
}

/// The dataset id of batches with these input hashes, in order, under a certificate
/// circuit's statement: besides the hashes it binds how the samples were packed and
/// quantized (batch, classes, values per batch, input scale and width), so one id never
/// names two datasets under two keys.
pub fn dataset_id(info: &StatementInfo, spec: &Certificate, hashes: &[Fr]) -> String {
    dataset_digest(dataset_params(info, spec), hashes)
}

/// The packing parameters a dataset id binds (see [`dataset_id`]).
fn dataset_params(info: &StatementInfo, spec: &Certificate) -> [u64; 5] {
    [
        spec.batch as u64,
        spec.classes as u64,
        info.input_len() as u64,
        i64::from(info.input_scale) as u64,
        u64::from(info.input_bits),
    ]
}

/// The bytes a dataset id's preimage starts with under this statement, before the number
/// of batches and their hashes: the EVM's certificate contract holds them as a constant.
pub fn dataset_id_prefix(info: &StatementInfo, spec: &Certificate) -> Vec<u8> {
    prefix(dataset_params(info, spec))
}

fn prefix(params: [u64; 5]) -> Vec<u8> {
    let mut p = b"zkinfer dataset id v2".to_vec();
    for x in params {
        p.extend(x.to_le_bytes());
    }
    p
}

/// Keccak-256 of the prefix, the number of batches (u64, little-endian) and each batch
/// hash as its 32-byte little-endian representation.
fn dataset_digest(params: [u64; 5], hashes: &[Fr]) -> String {
    let mut h = Keccak256::new();
    h.update(prefix(params));
    h.update((hashes.len() as u64).to_le_bytes());
    for x in hashes {
        h.update(x.to_repr());
    }
    hex32(&h.finalize())
}

/// The input hash of one batch as the circuit computes it: the samples' values, then
/// their labels, quantized at the key's input scale.
pub fn batch_hash(key: &VerifierKey, samples: &[Vec<f32>], labels: &[i64]) -> Result<Fr, String> {
    let info = &key.info;
    let classes = info.certificate.as_ref().map_or(0, |c| c.classes);
    if let Some(l) = labels.iter().find(|&&l| !(0..classes as i64).contains(&l)) {
        return Err(format!(
            "the label {l} is not a class of this certificate (0 to {})",
            classes.saturating_sub(1)
        ));
    }
    let (min, max) = info.input_range();
    let values = samples
        .iter()
        .flatten()
        .map(|&x| f64::from(x))
        .chain(labels.iter().map(|&l| l as f64))
        .map(|x| {
            let q = zkinfer_qir::quantize(x, info.input_scale);
            if (min..=max).contains(&q) {
                Ok(zkinfer_circuits::fe(q))
            } else {
                Err(format!(
                    "the value {x} quantizes to {q}, outside [{min}, {max}], the range of this \
                     certificate's input"
                ))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    if values.len() != info.input_len() {
        return Err(format!(
            "a batch of {} samples and labels holds {} values; this certificate's input has {}",
            labels.len(),
            values.len(),
            info.input_len()
        ));
    }
    Ok(hash(Domain::Input, &values))
}

/// The dataset id of `samples` (each one flattened sample) with their `labels`, in
/// batches of the key's certificate batch.
pub fn dataset_id_of(
    key: &VerifierKey,
    samples: &[Vec<f32>],
    labels: &[i64],
) -> Result<String, String> {
    let spec = key
        .info
        .certificate
        .as_ref()
        .ok_or("this verifying key is not a certificate's")?;
    let batch = spec.batch;
    if samples.len() != labels.len() {
        return Err(format!(
            "{} samples and {} labels; a dataset gives one label per sample",
            samples.len(),
            labels.len()
        ));
    }
    if samples.is_empty() || !samples.len().is_multiple_of(batch) {
        return Err(format!(
            "{} samples is not a multiple of this certificate's batch of {batch}",
            samples.len()
        ));
    }
    let hashes = samples
        .chunks(batch)
        .zip(labels.chunks(batch))
        .map(|(s, l)| batch_hash(key, s, l))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(dataset_id(&key.info, spec, &hashes))
}

/// Checks every proof of the certificate against the key (a certificate's), and that its
/// stated model id, dataset id, sample count and correct count are what the proofs prove.
/// `Err` is the reason it is invalid.
pub fn verify_certificate(key: &VerifierKey, cert: &CertificateFile) -> Result<Claim, String> {
    let claim = claim(key, &cert.proofs)?;
    stated(key, cert, &claim)?;
    Ok(claim)
}

/// Checks that what the certificate file states (model, model id, counts, dataset) is
/// `claim`, what its proofs prove (natively, or as the EVM's certificate contract
/// returned it).
pub fn stated(key: &VerifierKey, cert: &CertificateFile, claim: &Claim) -> Result<(), String> {
    if cert.model != key.info.model {
        return Err(format!(
            "the certificate names model `{}`; this verifying key's is `{}`",
            cert.model, key.info.model
        ));
    }
    if cert.model_id != claim.model_id {
        return Err(format!(
            "the certificate is for model id {}, this verifying key is model id {}",
            cert.model_id, claim.model_id
        ));
    }
    if cert.samples != claim.samples || cert.correct != claim.correct {
        return Err(format!(
            "the certificate states {}/{}; its proofs prove {}/{}",
            cert.correct, cert.samples, claim.correct, claim.samples
        ));
    }
    if cert.dataset != claim.dataset {
        return Err(format!(
            "the certificate states dataset {}; its proofs' inputs are dataset {}",
            cert.dataset, claim.dataset
        ));
    }
    Ok(())
}

/// What these batch proofs prove together, each checked against the key (a
/// certificate's). `Err` is the reason one is invalid.
pub fn claim(key: &VerifierKey, proofs: &[ProofFile]) -> Result<Claim, String> {
    let Some(spec) = &key.info.certificate else {
        return Err("this verifying key is not a certificate circuit's".into());
    };
    if proofs.is_empty() {
        return Err("a certificate has at least one proof".into());
    }
    let mut hashes = Vec::with_capacity(proofs.len());
    let mut correct = 0u64;
    let mut params_hash = String::new();
    for (i, proof) in proofs.iter().enumerate() {
        let public = match verify(key, proof) {
            Verdict::Valid { public } => public,
            Verdict::Invalid { reason } => return Err(format!("batch {i}: {reason}")),
        };
        let (Some(h), Some(out), Some(w)) = (public.input_hash, public.output, public.params_hash)
        else {
            return Err(format!("batch {i}: the statement is not a certificate's"));
        };
        let count = match out.as_slice() {
            [c] if c.fract() == 0.0 && (0.0..=spec.batch as f64).contains(c) => *c as u64,
            _ => {
                return Err(format!(
                    "batch {i}: the proven count {out:?} is not a whole number in 0..={}",
                    spec.batch
                ))
            }
        };
        correct = correct.checked_add(count).ok_or("the count overflows")?;
        hashes.push(fr_from_hex(&h).ok_or(format!("batch {i}: unreadable input hash"))?);
        params_hash = w;
    }
    let samples = (spec.batch as u64)
        .checked_mul(proofs.len() as u64)
        .ok_or("the number of samples overflows")?;
    Ok(Claim {
        model_id: key.model_id(),
        params_hash,
        dataset: dataset_id(&key.info, spec, &hashes),
        samples,
        correct,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dataset_id_binds_every_batch_hash_their_order_and_the_packing() {
        let (a, b) = (Fr::from(1u64), Fr::from(2u64));
        let p = [5, 10, 325, 4, 12];
        let id = dataset_digest(p, &[a, b]);
        assert_ne!(id, dataset_digest(p, &[b, a]));
        assert_ne!(id, dataset_digest(p, &[a]));
        assert_ne!(id, dataset_digest(p, &[a, b, b]));
        for i in 0..p.len() {
            let mut q = p;
            q[i] += 1;
            assert_ne!(id, dataset_digest(q, &[a, b]), "parameter {i}");
        }
        assert_eq!(id, dataset_digest(p, &[a, b]));
    }

    #[test]
    fn unreadable_certificates_are_format_errors() {
        let ok = r#"{"format": "zkinfer-certificate", "version": VERSION, "model": "m",
            "model_id": "0x", "dataset": "0x", "samples": 1, "correct": 1, "proofs": []}"#
            .replace("VERSION", &FORMAT_VERSION.to_string());
        // No proofs at all.
        assert!(CertificateFile::parse(&ok).is_err());
        assert!(CertificateFile::parse("{}").is_err());
        assert!(
            CertificateFile::parse(&ok.replace("\"correct\"", "\"extra\": 1, \"correct\""))
                .is_err()
        );
        assert!(is_certificate(&ok));
        assert!(!is_certificate(r#"{"format": "zkinfer-bundle"}"#));
    }

    #[test]
    fn the_claim_reads_as_a_sentence() {
        let c = Claim {
            model_id: "0xab:0xcd".into(),
            params_hash: "0xcd".into(),
            dataset: "0xef".into(),
            samples: 450,
            correct: 438,
        };
        assert_eq!(
            c.sentence(),
            "model 0xcd classifies 438/450 of dataset 0xef (97.33%)"
        );
    }
}
