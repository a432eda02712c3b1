//! The aggregation keys: generated once per model (its segments' verifying keys are
//! constants of the circuit), the proving key for `aggregate`, the verifying key for
//! `verify` and the Solidity verifier. The aggregate id binds everything verification
//! reads, as the model id does for one proof.

use std::io::Cursor;

use halo2_proofs::halo2curves::bn256::{Bn256, G1Affine};
use halo2_proofs::halo2curves::ff::PrimeField;
use halo2_proofs::plonk::{keygen_pk, keygen_vk, ProvingKey, VerifyingKey};
use halo2_proofs::poly::commitment::{Params, ParamsProver};
use halo2_proofs::poly::kzg::commitment::ParamsKZG;
use halo2_proofs::SerdeFormat;
use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};
use snark_verifier_sdk::halo2::aggregation::{AggregationCircuit, AggregationConfigParams};
use snark_verifier_sdk::halo2::gen_dummy_snark_from_vk;
use snark_verifier_sdk::{Snark, SHPLONK};
use zkinfer_verifier::artifact::{key_head, read_container, read_key_head, write_container};
use zkinfer_verifier::{guard, kzg_params, verifier_params, SrsPoints, VerifierKey, VerifyError};

use crate::circuit::{self, Link, Stage};
use crate::AggregateError;

const APK_MAGIC: &[u8; 8] = b"ZKINFAPK";
const AVK_MAGIC: &[u8; 8] = b"ZKINFAVK";

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
    pub config: AggregationConfigParams,
    pub break_points: Vec<Vec<usize>>,
}

impl AggregateInfo {
    /// Bounds a file may claim before halo2 allocates by them.
    fn validate(&self) -> Result<(), String> {
        let c = &self.config;
        if !(10..=26).contains(&c.degree)
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
        Ok(())
    }
}

/// The proving key of the aggregation circuit.
pub struct AggregateKey {
    pub info: AggregateInfo,
    pub pk: ProvingKey<G1Affine>,
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

fn srs_points(params: &ParamsKZG<Bn256>) -> SrsPoints {
    SrsPoints {
        g: params.get_g()[0],
        g2: params.g2(),
        s_g2: params.s_g2(),
    }
}

/// The aggregation circuit of the model whose segments' verifying keys are `keys`, laid
/// out for key generation (on placeholder proofs: key generation reads no witness).
fn keygen_circuit(
    params: &ParamsKZG<Bn256>,
    keys: &[VerifierKey],
) -> Result<(AggregationCircuit, Vec<Link>, AggregationConfigParams), AggregateError> {
    let links = crate::links(keys)?;
    let points = srs_points(params);
    if let Some(i) = keys.iter().position(|k| k.srs != points) {
        return Err(AggregateError::Input(format!(
            "segment {i}'s key was made with another SRS than the aggregation's ({}, not {})",
            keys[i].srs.fingerprint(),
            points.fingerprint()
        )));
    }
    let degree = params.k();
    let snarks = keys
        .iter()
        .map(|key| {
            let p = verifier_params(key).ok_or_else(|| {
                AggregateError::Input("a segment key's SRS points are unusable".into())
            })?;
            guard(|| {
                gen_dummy_snark_from_vk::<SHPLONK>(
                    &p,
                    &key.vk,
                    vec![key.info.public_values()],
                    None,
                )
            })
            .ok_or_else(|| {
                AggregateError::Keygen("snark-verifier cannot read a segment key".into())
            })
        })
        .collect::<Result<Vec<Snark>, _>>()?;
    let start = AggregationConfigParams {
        degree,
        lookup_bits: degree as usize - 1,
        ..Default::default()
    };
    let mut circuit = guard(|| circuit::build(Stage::Keygen, start, params, snarks, &links))
        .ok_or_else(|| AggregateError::Keygen("building the aggregation circuit".into()))?;
    let config = guard(|| circuit.calculate_params(Some(20)))
        .ok_or_else(|| AggregateError::Keygen("laying out the aggregation circuit".into()))?;
    Ok((circuit, links, config))
}

/// The aggregation verifying key of the model named `model` whose segments' verifying
/// keys are `keys` (in order), with `params` of `2^k` points from the segments' SRS.
/// Deterministic: a verifier who trusts the model id recomputes the aggregate id from the
/// segment keys with this, without the proving key's cost.
pub fn verifying_key(
    params: &ParamsKZG<Bn256>,
    model: &str,
    keys: &[VerifierKey],
) -> Result<AggregateVerifierKey, AggregateError> {
    let (circuit, links, config) = keygen_circuit(params, keys)?;
    let vk = keygen_vk(params, &circuit).map_err(|e| AggregateError::Keygen(format!("{e:?}")))?;
    Ok(AggregateVerifierKey {
        info: info(model, keys, links, config, &circuit),
        k: params.k(),
        srs: srs_points(params),
        vk,
    })
}

fn info(
    model: &str,
    keys: &[VerifierKey],
    links: Vec<Link>,
    config: AggregationConfigParams,
    circuit: &AggregationCircuit,
) -> AggregateInfo {
    AggregateInfo {
        model: model.to_string(),
        model_id: zkinfer_verifier::keys_id(keys),
        num_instances: keys.iter().map(|k| k.info.public_values()).collect(),
        links,
        config,
        break_points: circuit.break_points(),
    }
}

/// Generates the aggregation keys (proving and verifying) as [`verifying_key`] does the
/// verifying key.
pub fn setup(
    params: &ParamsKZG<Bn256>,
    model: &str,
    keys: &[VerifierKey],
) -> Result<(AggregateKey, AggregateVerifierKey), AggregateError> {
    let (circuit, links, config) = keygen_circuit(params, keys)?;
    let vk = keygen_vk(params, &circuit).map_err(|e| AggregateError::Keygen(format!("{e:?}")))?;
    let pk = keygen_pk(params, vk.clone(), &circuit)
        .map_err(|e| AggregateError::Keygen(format!("{e:?}")))?;
    let info = info(model, keys, links, config, &circuit);
    let verifier = AggregateVerifierKey {
        info: info.clone(),
        k: params.k(),
        srs: srs_points(params),
        vk,
    };
    Ok((AggregateKey { info, pk }, verifier))
}

/// The aggregation keys are one pair: the same circuit (info and halo2 verifying key).
pub fn same_circuit(pk: &AggregateKey, vk: &AggregateVerifierKey) -> bool {
    serde_json::to_vec(&pk.info).ok() == serde_json::to_vec(&vk.info).ok()
        && pk.pk.get_vk().transcript_repr() == vk.vk.transcript_repr()
}

impl AggregateKey {
    pub fn to_bytes(&self) -> Vec<u8> {
        write_container(
            APK_MAGIC,
            &self.info,
            &self.pk.to_bytes(SerdeFormat::RawBytes),
        )
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AggregateError> {
        let (info, body): (AggregateInfo, _) =
            read_container(bytes, APK_MAGIC, "aggregation proving key")?;
        let bad =
            |e: String| AggregateError::Keygen(format!("corrupt aggregation proving key: {e}"));
        info.validate().map_err(bad)?;
        let config = info.config;
        let pk = guard(|| {
            ProvingKey::<G1Affine>::read::<_, AggregationCircuit>(
                &mut &body[..],
                SerdeFormat::RawBytes,
                config,
            )
        })
        .ok_or_else(|| bad("malformed".into()))?
        .map_err(|e| bad(e.to_string()))?;
        Ok(AggregateKey { info, pk })
    }

    /// The snarks are this key's: as many, each with its number of public values.
    pub(crate) fn check_snarks(&self, snarks: &[Snark]) -> Result<(), AggregateError> {
        let found: Vec<usize> = snarks
            .iter()
            .map(|s| s.instances.iter().map(Vec::len).sum())
            .collect();
        if found != self.info.num_instances {
            return Err(AggregateError::Input(format!(
                "the aggregation key folds proofs with {:?} public values; given {found:?}",
                self.info.num_instances
            )));
        }
        Ok(())
    }
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
        let config = info.config;
        let vk = guard(|| {
            VerifyingKey::<G1Affine>::read::<_, AggregationCircuit>(
                &mut r,
                SerdeFormat::RawBytes,
                config,
            )
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
        assert!(AggregateKey::from_bytes(b"ZKINFAPK").is_err());
        // A header that claims an implausible circuit is refused before halo2 reads it.
        let info = AggregateInfo {
            model: "m".into(),
            model_id: "0x01".into(),
            num_instances: vec![3],
            links: vec![],
            config: AggregationConfigParams {
                degree: 21,
                num_advice: 100_000,
                num_lookup_advice: 1,
                num_fixed: 1,
                lookup_bits: 20,
            },
            break_points: vec![],
        };
        let bytes = write_container(AVK_MAGIC, &info, &[0; 64]);
        let e = AggregateVerifierKey::from_bytes(&bytes)
            .unwrap_err()
            .to_string();
        assert!(e.contains("implausible"), "{e}");
    }
}
