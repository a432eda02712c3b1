//! The aggregation verifying key, for `verify` and the Solidity verifier (the proving
//! key and key generation are in `keygen`, with the `prove` feature). The aggregate id
//! binds everything verification reads, as the model id does for one proof.

use std::io::Cursor;

use halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine};
use halo2_proofs::halo2curves::ff::PrimeField;
use halo2_proofs::plonk::VerifyingKey;
use halo2_proofs::poly::kzg::commitment::ParamsKZG;
use halo2_proofs::SerdeFormat;
use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};
use zkinfer_verifier::artifact::{key_head, read_container, read_key_head, write_container};
use zkinfer_verifier::{guard, kzg_params, SrsPoints, VerifyError};

use crate::circuit::Link;
use crate::shape::{Layout, Shape};
use crate::tree::Tree;

const AVK_MAGIC: &[u8; 8] = b"ZKINFAVK";

/// The aggregation circuit's sizes `zkinfer aggregate --k` makes: a key claiming more is
/// refused before halo2 builds its domain (FFT tables of `2^(k+2)` points).
pub const MIN_DEGREE: u32 = 18;
pub const MAX_DEGREE: u32 = 25;

/// What halo2's key reader trusts before reading: its version byte, the key's `k` equal
/// to the header's, and uncompressed selectors (key generation writes them so; halo2
/// would allocate `selectors × 2^k` for compressed ones before reading a byte of them).
pub(crate) fn check_halo2_prefix(bytes: &[u8], k: u32) -> Result<(), String> {
    match bytes {
        [2, a, b, c, d, 0, ..] if u32::from_le_bytes([*a, *b, *c, *d]) == k => Ok(()),
        [2, a, b, c, d, 0, ..] => Err(format!(
            "the halo2 key is for k {}, its header says {k}",
            u32::from_le_bytes([*a, *b, *c, *d])
        )),
        [2, _, _, _, _, _, ..] => Err(
            "the halo2 key has compressed selectors; aggregation keys are written without".into(),
        ),
        [_, _, _, _, _, _, ..] => Err("the halo2 key's version byte is not 2".into()),
        _ => Err("truncated halo2 key".into()),
    }
}

/// What the aggregation circuit is: the model and segments it folds, where their links
/// sit, and halo2-base's layout of the circuit (columns, and where its rows break).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateInfo {
    pub model: String,
    /// The folded model's id (its segment keys' id, as a bundle's).
    pub model_id: String,
    /// Each segment's number of public values.
    pub num_instances: Vec<usize>,
    pub links: Vec<Link>,
    pub config: Layout,
    pub break_points: Vec<Vec<usize>>,
    /// A node of a tree of aggregations; absent for the one aggregation circuit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<Tree>,
}

impl AggregateInfo {
    /// Bounds a file may claim before halo2 allocates by them.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let c = &self.config;
        if !(MIN_DEGREE..=MAX_DEGREE).contains(&c.degree)
            || c.lookup_bits >= c.degree as usize
            || c.num_advice == 0
            || c.num_advice > 512
            || c.num_lookup_advice > 512
            || c.num_fixed > 64
        {
            return Err(format!("an implausible aggregation circuit layout: {c:?}"));
        }
        let n = self.num_instances.len();
        if n == 0 || n > zkinfer_verifier::bundle::MAX_SEGMENTS {
            return Err(format!("aggregates {n} proofs"));
        }
        if let Some(t) = self.tree {
            let max = zkinfer_verifier::bundle::MAX_SEGMENTS;
            if t.leaf == 0 || t.leaf > max || t.arity < 2 || t.arity > max || t.node >= 2 * max {
                return Err(format!("an implausible tree of aggregations: {t:?}"));
            }
        }
        Ok(())
    }
}

/// The verifying key of the aggregation circuit, with the KZG points its accumulator is
/// decided with.
#[derive(Clone, Debug)]
pub struct AggregateVerifierKey {
    pub info: AggregateInfo,
    pub k: u32,
    pub srs: SrsPoints,
    pub vk: VerifyingKey<G1Affine>,
}

/// `0x<keccak>`: Keccak-256 of the tag, the info, `k`, the SRS fingerprint and the halo2
/// verifying key's digest (which binds the circuit: its constants are the segments'
/// verifying keys).
pub fn aggregate_id(
    info: &AggregateInfo,
    k: u32,
    srs: &SrsPoints,
    vk: &VerifyingKey<G1Affine>,
) -> String {
    let header = serde_json::to_vec(info).unwrap_or_default();
    let mut h = Keccak256::new();
    h.update(b"zkinfer aggregate id v1");
    h.update((header.len() as u64).to_le_bytes());
    h.update(&header);
    h.update(k.to_le_bytes());
    h.update(srs.fingerprint().as_bytes());
    h.update(vk.transcript_repr().to_repr());
    format!("0x{}", hex_encode(&h.finalize()))
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl AggregateVerifierKey {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut body = key_head(self.k, &self.srs);
        body.extend_from_slice(&self.vk.to_bytes(SerdeFormat::RawBytes));
        write_container(AVK_MAGIC, &self.info, &body)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, VerifyError> {
        let what = "aggregation verifying key";
        let (info, body): (AggregateInfo, _) = read_container(bytes, AVK_MAGIC, what)?;
        let bad = |reason: String| VerifyError::Format {
            what: what.into(),
            reason,
        };
        info.validate().map_err(bad)?;
        let mut r = Cursor::new(body);
        let (k, srs) = read_key_head(&mut r).map_err(bad)?;
        if k != info.config.degree {
            return Err(bad(format!(
                "k {k} is not the circuit's degree {}",
                info.config.degree
            )));
        }
        let start = r.position() as usize;
        check_halo2_prefix(&body[start.min(body.len())..], k).map_err(bad)?;
        let config = info.config;
        let vk = guard(|| {
            VerifyingKey::<G1Affine>::read::<_, Shape<Fr>>(&mut r, SerdeFormat::RawBytes, config)
        })
        .ok_or_else(|| bad("malformed halo2 verifying key".into()))?
        .map_err(|e| bad(format!("halo2 verifying key: {e}")))?;
        if r.position() != body.len() as u64 {
            return Err(bad("bytes after the halo2 verifying key".into()));
        }
        if !vk
            .fixed_commitments()
            .iter()
            .chain(vk.permutation().commitments())
            .all(zkinfer_verifier::identity::in_g1)
        {
            return Err(bad(
                "a commitment of the halo2 key is not a BN254 point".into()
            ));
        }
        Ok(AggregateVerifierKey { info, k, srs, vk })
    }

    pub fn id(&self) -> String {
        aggregate_id(&self.info, self.k, &self.srs, &self.vk)
    }

    /// halo2's KZG verifier parameters for this key (`g`, `g2`, `s·g2`, `n = 2^k`).
    pub fn verifier_params(&self) -> Option<ParamsKZG<Bn256>> {
        kzg_params(self.k, vec![self.srs.g], Some(vec![self.srs.g]), &self.srs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_aggregation_key_is_an_error() {
        assert!(AggregateVerifierKey::from_bytes(b"not a key").is_err());
        // A header that claims an implausible circuit is refused before halo2 reads it.
        let info = AggregateInfo {
            model: "m".into(),
            model_id: "0x01".into(),
            num_instances: vec![3],
            links: vec![],
            config: Layout {
                degree: 21,
                num_advice: 100_000,
                num_lookup_advice: 1,
                num_fixed: 1,
                lookup_bits: 20,
            },
            break_points: vec![],
            tree: None,
        };
        let bytes = write_container(AVK_MAGIC, &info, &[0; 64]);
        let e = AggregateVerifierKey::from_bytes(&bytes)
            .unwrap_err()
            .to_string();
        assert!(e.contains("implausible"), "{e}");
    }

    /// The committed fixture's aggregation key with its halo2 part edited by `f`.
    fn edited(
        f: impl FnOnce(&mut AggregateInfo, &mut [u8]),
    ) -> Result<AggregateVerifierKey, String> {
        let bytes = include_bytes!("../../tests/fixtures/aggregate/m/aggregate/vk");
        let (mut info, body): (AggregateInfo, _) = read_container(bytes, AVK_MAGIC, "key").unwrap();
        let mut body = body.to_vec();
        // The key head: k (4 bytes), g (64), g2 and s·g2 (128 each).
        f(&mut info, &mut body[4 + 64 + 2 * 128..]);
        AggregateVerifierKey::from_bytes(&write_container(AVK_MAGIC, &info, &body))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_key_claiming_more_than_it_holds_is_refused_before_halo2_reads_it() {
        assert!(edited(|_, _| ()).is_ok());
        let e = edited(|_, h| h[5] = 1).unwrap_err();
        assert!(e.contains("compressed selectors"), "{e}");
        let e = edited(|_, h| h[1] = 25).unwrap_err();
        assert!(e.contains("halo2 key is for k 25"), "{e}");
        let e = edited(|_, h| h[0] = 3).unwrap_err();
        assert!(e.contains("version"), "{e}");
        let e = edited(|i, _| i.config.degree = 26).unwrap_err();
        assert!(e.contains("implausible"), "{e}");
    }
}
