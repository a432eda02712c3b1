//! KZG structured reference strings: a deterministic development SRS, halo2 params
//! files, and zkinfer's own SRS file (the parameters trimmed to the circuit's `k`).

use halo2_proofs::halo2curves::bn256::Bn256;
use halo2_proofs::poly::commitment::Params;
use halo2_proofs::poly::kzg::commitment::ParamsKZG;
use halo2_proofs::SerdeFormat;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use zkinfer_verifier::artifact::{read_container, write_container};

use crate::{guard, ProveError};

const SRS_MAGIC: &[u8; 8] = b"ZKINFSRS";

/// A deterministic SRS whose secret anyone can recompute. **Insecure**: proofs made
/// with it can be forged. For development and tests only.
pub fn dev_srs(k: u32) -> ParamsKZG<Bn256> {
    ParamsKZG::<Bn256>::setup(
        k,
        ChaCha20Rng::from_seed(*b"zkinfer insecure development srs"),
    )
}

/// Reads a halo2 KZG params file (as written by halo2's `Params::write`, e.g. from a
/// powers-of-tau conversion) and trims it to `2^k` points.
pub fn read_halo2_params(bytes: &[u8], k: u32) -> Result<ParamsKZG<Bn256>, ProveError> {
    // halo2's reader trusts the size field; check it against the length first.
    check_size(bytes, 64, 128, "not a halo2 KZG params file (BN254)")?;
    // Same layout as halo2's `Params::write`, but every point is checked on load.
    let mut params =
        guard(|| ParamsKZG::<Bn256>::read_custom(&mut &bytes[..], SerdeFormat::RawBytes))
            .ok_or_else(|| ProveError::Srs("not a halo2 KZG params file: malformed points".into()))?
            .map_err(|e| ProveError::Srs(format!("not a halo2 KZG params file: {e}")))?;
    if params.k() < k {
        return Err(ProveError::Srs(format!(
            "the params file supports circuits up to 2^{} rows; this circuit needs 2^{k}",
            params.k()
        )));
    }
    if params.k() > k {
        params.downsize(k);
    }
    Ok(params)
}

/// Checks that `bytes` is `k (u32) | 2·2^k G1 points | 2 G2 points` for the stated `k`.
fn check_size(bytes: &[u8], g1: usize, g2: usize, what: &str) -> Result<(), ProveError> {
    let k = bytes
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| ProveError::Srs(format!("{what}: too short")))?;
    if k > 28 {
        return Err(ProveError::Srs(format!("{what}: claims 2^{k} points")));
    }
    let expected = 4 + 2 * (1usize << k) * g1 + 2 * g2;
    if bytes.len() != expected {
        return Err(ProveError::Srs(format!(
            "{what}: 2^{k} points need {expected} bytes, the file has {}",
            bytes.len()
        )));
    }
    Ok(())
}

/// zkinfer's SRS file: the parameters of exactly the circuit's size, stored with the keys.
pub fn write_srs(params: &ParamsKZG<Bn256>, dev: bool) -> Vec<u8> {
    let mut body = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = params.write_custom(&mut body, SerdeFormat::RawBytes);
    write_container(
        SRS_MAGIC,
        &serde_json::json!({ "k": params.k(), "insecure_dev_srs": dev }),
        &body,
    )
}

/// Reads [`write_srs`]'s format; returns the parameters and whether they are the dev SRS.
pub fn read_srs(bytes: &[u8]) -> Result<(ParamsKZG<Bn256>, bool), ProveError> {
    let (header, body): (serde_json::Value, _) = read_container(bytes, SRS_MAGIC, "SRS file")?;
    check_size(body, 64, 128, "corrupt SRS file")?;
    let params = guard(|| ParamsKZG::<Bn256>::read_custom(&mut &body[..], SerdeFormat::RawBytes))
        .ok_or_else(|| ProveError::Srs("corrupt SRS file".into()))?
        .map_err(|e| ProveError::Srs(format!("corrupt SRS file: {e}")))?;
    let dev = header
        .get("insecure_dev_srs")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    Ok((params, dev))
}
