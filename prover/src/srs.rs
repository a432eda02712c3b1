//! KZG structured reference strings: a deterministic development SRS, ceremony files
//! (snarkjs / Perpetual Powers of Tau `.ptau`, and halo2 params files), and zkinfer's own
//! SRS file (the parameters trimmed to the circuit's `k`).

use std::io::{Read, Seek, SeekFrom};

use halo2_proofs::arithmetic::{best_multiexp, parallelize};
use halo2_proofs::halo2curves::bn256::{pairing, Bn256, Fq, Fr, G1Affine, G2Affine, G1};
use halo2_proofs::halo2curves::ff::{Field, PrimeField};
use halo2_proofs::halo2curves::group::prime::PrimeCurveAffine;
use halo2_proofs::halo2curves::group::{Curve, Group};
use halo2_proofs::poly::commitment::{Params, ParamsProver};
use halo2_proofs::poly::kzg::commitment::ParamsKZG;
use halo2_proofs::{SerdeCurveAffine, SerdeFormat};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use zkinfer_verifier::artifact::{read_container, write_container};
use zkinfer_verifier::identity::{in_g1, in_g2};
use zkinfer_verifier::{kzg_params, SrsPoints};

use crate::{guard, ProveError};

const SRS_MAGIC: &[u8; 8] = b"ZKINFSRS";

/// A deterministic SRS whose secret anyone can recompute. **Insecure**: proofs made
/// with it can be forged. For development and tests only.
///
/// The same parameters as halo2's `ParamsKZG::setup` with the seeded generator (the
/// secret is its first draw), computed ~15× faster: halo2 multiplies the generator by
/// each power of the secret and each Lagrange basis value with a full scalar
/// multiplication (2·2^k of them: 6 minutes at k 21 on two cores); here the scalars are
/// field arithmetic and each point is 16 (32 for small k) additions from a table of the
/// generator's multiples (fixed-base windows).
pub fn dev_srs(k: u32) -> ParamsKZG<Bn256> {
    let s = Fr::random(ChaCha20Rng::from_seed(DEV_SEED));
    let n = 1usize << k;
    let mut powers = vec![Fr::ONE; n];
    for i in 1..n {
        powers[i] = powers[i - 1] * s;
    }
    // L_i(s) = ω^i (s^n − 1) / (n (s − ω^i)) over the 2^k-th roots of unity, as halo2's.
    let mut omega = Fr::ROOT_OF_UNITY;
    for _ in k..Fr::S {
        omega = omega.square();
    }
    let mut roots = vec![Fr::ONE; n];
    for i in 1..n {
        roots[i] = roots[i - 1] * omega;
    }
    let mut denominators: Vec<Fr> = roots.iter().map(|w| s - w).collect();
    halo2_proofs::halo2curves::ff::BatchInvert::batch_invert(&mut denominators);
    let n_inv: Fr = Option::from(Fr::from(n as u64).invert()).unwrap_or(Fr::ZERO);
    let multiplier = (s.pow_vartime([n as u64]) - Fr::ONE) * n_inv;
    let lagrange: Vec<Fr> = roots
        .iter()
        .zip(&denominators)
        .map(|(w, d)| multiplier * w * d)
        .collect();
    let table = FixedBase::new(n);
    let g = table.mul_all(&powers);
    let g_lagrange = table.mul_all(&lagrange);
    let points = SrsPoints {
        g: G1Affine::generator(),
        g2: G2Affine::generator(),
        s_g2: (G2Affine::generator() * s).to_affine(),
    };
    // `kzg_params` refuses only k > 28, where halo2's setup would refuse as well.
    kzg_params(k, g, Some(g_lagrange), &points)
        .unwrap_or_else(|| ParamsKZG::<Bn256>::setup(k, ChaCha20Rng::from_seed(DEV_SEED)))
}

const DEV_SEED: [u8; 32] = *b"zkinfer insecure development srs";

/// Multiples of the G1 generator by windows of `bytes` bytes: `rows[j][d] = d·2^(8·bytes·j)·G`.
struct FixedBase {
    bytes: usize,
    rows: Vec<Vec<G1Affine>>,
}

impl FixedBase {
    /// 16-bit windows (a table of 2^20 points, ~1 s) for many scalars; bytes below 2^14.
    fn new(scalars: usize) -> Self {
        let bytes = if scalars >= 1 << 14 { 2 } else { 1 };
        let mut base = G1::generator();
        let rows = (0..32 / bytes)
            .map(|_| {
                let mut row = vec![G1::identity(); 1 << (8 * bytes)];
                for d in 1..row.len() {
                    row[d] = row[d - 1] + base;
                }
                base = row[row.len() - 1] + base;
                let mut affine = vec![G1Affine::identity(); row.len()];
                G1::batch_normalize(&row, &mut affine);
                affine
            })
            .collect();
        FixedBase { bytes, rows }
    }

    /// `x·G` for every `x`, in parallel.
    fn mul_all(&self, scalars: &[Fr]) -> Vec<G1Affine> {
        let mut projective = vec![G1::identity(); scalars.len()];
        parallelize(&mut projective, |out, start| {
            for (o, x) in out.iter_mut().zip(&scalars[start..]) {
                let repr = x.to_repr();
                let bytes = repr.as_ref();
                let mut acc = G1::identity();
                for (j, row) in self.rows.iter().enumerate() {
                    let w = &bytes[self.bytes * j..self.bytes * (j + 1)];
                    let d = w.iter().rev().fold(0usize, |d, &b| d << 8 | b as usize);
                    if d != 0 {
                        acc += row[d];
                    }
                }
                *o = acc;
            }
        });
        let mut affine = vec![G1Affine::identity(); scalars.len()];
        parallelize(&mut affine, |out, start| {
            G1::batch_normalize(&projective[start..start + out.len()], out);
        });
        affine
    }
}

/// The points a verifier of proofs made with `params` uses.
pub fn srs_points(params: &ParamsKZG<Bn256>) -> SrsPoints {
    SrsPoints {
        g: params.get_g()[0],
        g2: params.g2(),
        s_g2: params.s_g2(),
    }
}

fn srs_error(what: &str, reason: impl std::fmt::Display) -> ProveError {
    ProveError::Srs(format!("{what}: {reason}"))
}

/// Reads a ceremony's SRS — a snarkjs / Perpetual Powers of Tau `.ptau` file (BN254), or
/// a halo2 KZG params file — and returns the parameters for `2^k` rows. A `.ptau` file
/// is read only as far as needed (its first `2^k` powers), so a large ceremony file
/// serves a small circuit without being loaded whole.
pub fn read_ceremony_srs<R: Read + Seek>(
    r: &mut R,
    k: u32,
) -> Result<ParamsKZG<Bn256>, ProveError> {
    let mut magic = [0u8; 4];
    let io = |e: std::io::Error| srs_error("reading the SRS file", e);
    r.read_exact(&mut magic).map_err(io)?;
    r.seek(SeekFrom::Start(0)).map_err(io)?;
    if &magic == b"ptau" {
        return read_ptau(r, k);
    }
    let mut bytes = Vec::new();
    r.read_to_end(&mut bytes).map_err(io)?;
    read_halo2_params(&bytes, k)
}

/// Reads a halo2 KZG params file (as written by halo2's `Params::write`, e.g. from a
/// powers-of-tau conversion) and trims it to `2^k` points.
pub fn read_halo2_params(bytes: &[u8], k: u32) -> Result<ParamsKZG<Bn256>, ProveError> {
    // halo2's reader trusts the size field; check it against the length first.
    check_size(
        bytes,
        64,
        128,
        "not a .ptau file nor a halo2 KZG params file (BN254)",
    )?;
    // Same layout as halo2's `Params::write`; halo2 reads raw points without a curve
    // check, so the powers are checked here and the Lagrange basis recomputed from them.
    let params = guard(|| ParamsKZG::<Bn256>::read_custom(&mut &bytes[..], SerdeFormat::RawBytes))
        .ok_or_else(|| ProveError::Srs("not a halo2 KZG params file: malformed points".into()))?
        .map_err(|e| ProveError::Srs(format!("not a halo2 KZG params file: {e}")))?;
    if params.k() < k {
        return Err(ProveError::Srs(format!(
            "the params file supports circuits up to 2^{} rows; this circuit needs 2^{k}",
            params.k()
        )));
    }
    let g = params.get_g()[..1 << k].to_vec();
    let points = srs_points(&params);
    let bad = |e: String| srs_error("the params file", e);
    if let Some(i) = g.iter().position(|p| !in_g1(p)) {
        return Err(bad(format!("point {i} is not a BN254 G1 point")));
    }
    points
        .check()
        .and_then(|_| check_powers(&g, &points))
        .map_err(bad)?;
    kzg_params(k, g, None, &points).ok_or_else(|| bad("unusable points".into()))
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

/// Bytes of a G1 and a G2 point in a `.ptau` file: affine coordinates in Montgomery form,
/// little-endian limbs (snarkjs' "LEM"), which is halo2curves' raw encoding.
const PTAU_G1: u64 = 64;
const PTAU_G2: u64 = 128;

/// Reads the first `2^k` powers of a snarkjs `.ptau` file: the header section (field
/// size, modulus, power), `tauG1` (section 2, `2^(power+1) − 1` points) and `tauG2`
/// (section 3, `2^power` points). Every point is checked to be on its curve; `g` and
/// `g2` must be the generators, and a random linear combination checks that the G1
/// points are consecutive powers of the secret in `s·g2`.
pub fn read_ptau<R: Read + Seek>(r: &mut R, k: u32) -> Result<ParamsKZG<Bn256>, ProveError> {
    let bad = |reason: String| srs_error(".ptau file", reason);
    let io = |e: std::io::Error| srs_error(".ptau file", format!("truncated or unreadable ({e})"));
    let u32_at = |r: &mut R| -> Result<u32, ProveError> {
        let mut b = [0u8; 4];
        r.read_exact(&mut b).map_err(io)?;
        Ok(u32::from_le_bytes(b))
    };
    let len = r.seek(SeekFrom::End(0)).map_err(io)?;
    r.seek(SeekFrom::Start(4)).map_err(io)?;
    let version = u32_at(r)?;
    if version != 1 {
        return Err(bad(format!(
            "version {version}; this zkinfer reads version 1"
        )));
    }
    let n_sections = u32_at(r)?;
    // Section id → (offset, size).
    let mut sections = std::collections::BTreeMap::new();
    let mut at = 12u64;
    for _ in 0..n_sections.min(64) {
        r.seek(SeekFrom::Start(at)).map_err(io)?;
        let id = u32_at(r)?;
        let mut size = [0u8; 8];
        r.read_exact(&mut size).map_err(io)?;
        let size = u64::from_le_bytes(size);
        let start = at + 12;
        at = start
            .checked_add(size)
            .filter(|&end| end <= len)
            .ok_or_else(|| bad(format!("section {id} runs past the end of the file")))?;
        sections.insert(id, (start, size));
    }
    let section = |id: u32, name: &str| {
        sections
            .get(&id)
            .copied()
            .ok_or_else(|| bad(format!("no section {id} ({name})")))
    };
    // Header: n8, q (n8 bytes), power, ceremony power.
    let (start, size) = section(1, "header")?;
    r.seek(SeekFrom::Start(start)).map_err(io)?;
    let n8 = u32_at(r)?;
    let mut q = [0u8; 32];
    if n8 != 32 || size < 44 {
        return Err(bad(format!(
            "a field of {n8} bytes: not a BN254 (bn128) file"
        )));
    }
    r.read_exact(&mut q).map_err(io)?;
    if q != modulus_le() {
        return Err(bad("its curve is not BN254 (bn128)".into()));
    }
    let power = u32_at(r)?;
    if power < k {
        return Err(bad(format!(
            "it holds 2^{power} powers of tau; this circuit needs 2^{k} (use a file made with \
             power {k} or more)"
        )));
    }
    if power > 28 {
        return Err(bad(format!("it claims 2^{power} powers")));
    }
    let n = 1u64 << k;
    let (g1_start, g1_size) = section(2, "tauG1")?;
    let (g2_start, g2_size) = section(3, "tauG2")?;
    if g1_size != ((2u64 << power) - 1) * PTAU_G1 || g2_size != (1u64 << power) * PTAU_G2 {
        return Err(bad(format!(
            "sections tauG1/tauG2 have {g1_size}/{g2_size} bytes; 2^{power} powers need {}/{}",
            ((2u64 << power) - 1) * PTAU_G1,
            (1u64 << power) * PTAU_G2
        )));
    }
    r.seek(SeekFrom::Start(g1_start)).map_err(io)?;
    let mut g1 = vec![0u8; (n * PTAU_G1) as usize];
    r.read_exact(&mut g1).map_err(io)?;
    let g = g1
        .chunks_exact(PTAU_G1 as usize)
        .enumerate()
        .map(|(i, mut c)| {
            G1Affine::read(&mut c, SerdeFormat::RawBytes)
                .ok()
                .filter(in_g1)
                .ok_or_else(|| bad(format!("tauG1 point {i} is not a BN254 G1 point")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    r.seek(SeekFrom::Start(g2_start)).map_err(io)?;
    let mut g2 = vec![0u8; (2 * PTAU_G2) as usize];
    r.read_exact(&mut g2).map_err(io)?;
    let [g2, s_g2] = [0, 1].map(|i| {
        G2Affine::read(
            &mut &g2[i * PTAU_G2 as usize..(i + 1) * PTAU_G2 as usize],
            SerdeFormat::RawBytes,
        )
        .ok()
        .filter(in_g2)
        .ok_or_else(|| bad(format!("tauG2 point {i} is not a BN254 G2 point")))
    });
    let points = SrsPoints {
        g: g[0],
        g2: g2?,
        s_g2: s_g2?,
    };
    points.check().map_err(bad)?;
    check_powers(&g, &points).map_err(bad)?;
    kzg_params(k, g, None, &points).ok_or_else(|| bad("unusable points".into()))
}

/// BN254's base field modulus, little-endian, as a `.ptau` header states it.
fn modulus_le() -> [u8; 32] {
    // −1 is p − 1; add one to its little-endian bytes.
    let mut le = (-Fq::ONE).to_repr();
    let mut carry = 1u16;
    for b in le.as_mut() {
        let v = *b as u16 + carry;
        *b = v as u8;
        carry = v >> 8;
    }
    le
}

/// `g[i+1] = s·g[i]` for every `i`, by one random linear combination:
/// `e(Σ rᵢ·g[i+1], g2) = e(Σ rᵢ·g[i], s·g2)`.
fn check_powers(g: &[G1Affine], points: &SrsPoints) -> Result<(), String> {
    if g.len() < 2 {
        return Ok(());
    }
    let mut rng = rand::thread_rng();
    let r: Vec<Fr> = (1..g.len()).map(|_| Fr::random(&mut rng)).collect();
    let lhs = best_multiexp(&r, &g[1..]).to_affine();
    let rhs = best_multiexp(&r, &g[..g.len() - 1]).to_affine();
    if pairing(&lhs, &points.g2) == pairing(&rhs, &points.s_g2) {
        Ok(())
    } else {
        Err("its G1 points are not successive powers of the secret in its G2 points".into())
    }
}

/// zkinfer's SRS file: the parameters of exactly the circuit's size, stored with the keys.
pub fn write_srs(params: &ParamsKZG<Bn256>) -> Vec<u8> {
    let mut body = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = params.write_custom(&mut body, SerdeFormat::RawBytes);
    write_container(
        SRS_MAGIC,
        &serde_json::json!({ "k": params.k(), "fingerprint": srs_points(params).fingerprint() }),
        &body,
    )
}

/// Reads [`write_srs`]'s format.
pub fn read_srs(bytes: &[u8]) -> Result<ParamsKZG<Bn256>, ProveError> {
    let (_, body): (serde_json::Value, _) = read_container(bytes, SRS_MAGIC, "SRS file")?;
    check_size(body, 64, 128, "corrupt SRS file")?;
    guard(|| ParamsKZG::<Bn256>::read_custom(&mut &body[..], SerdeFormat::RawBytes))
        .ok_or_else(|| ProveError::Srs("corrupt SRS file".into()))?
        .map_err(|e| ProveError::Srs(format!("corrupt SRS file: {e}")))
}

#[cfg(test)]
mod tests {
    // Test code: a panic is the failure report.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use zkinfer_verifier::DEV_SRS_FINGERPRINT;

    #[test]
    fn the_dev_srs_is_halo2s_setup_with_the_seed() {
        for k in [1, 4, 7, 14] {
            let fast = dev_srs(k);
            let slow = ParamsKZG::<Bn256>::setup(k, ChaCha20Rng::from_seed(DEV_SEED));
            // The file holds g, the Lagrange basis, g2 and s·g2.
            let bytes = |p: &ParamsKZG<Bn256>| {
                let mut b = Vec::new();
                p.write_custom(&mut b, SerdeFormat::RawBytes).unwrap();
                b
            };
            assert_eq!(bytes(&fast), bytes(&slow), "k {k}");
        }
    }

    #[test]
    fn the_dev_srs_has_the_published_fingerprint_at_every_size() {
        for k in [1, 4, 9] {
            assert_eq!(srs_points(&dev_srs(k)).fingerprint(), DEV_SRS_FINGERPRINT);
        }
        assert!(srs_points(&dev_srs(3)).is_insecure_dev_srs());
    }

    #[test]
    fn the_modulus_is_bn254s_base_field() {
        let mut be = modulus_le();
        be.reverse();
        assert_eq!(
            hex::encode(be),
            "30644e72e131a029b85045b68181585d97816a916871ca8d3c208c16d87cfd47"
        );
    }

    /// A `.ptau` file as snarkjs lays it out (header, tauG1, tauG2), made from the
    /// development SRS with `2^power` powers; `edit` may change the sections first.
    fn ptau(power: u32, edit: impl FnOnce(&mut Vec<u8>, &mut Vec<u8>, &mut Vec<u8>)) -> Vec<u8> {
        let big = dev_srs(power + 1);
        let mut header = 32u32.to_le_bytes().to_vec();
        header.extend(modulus_le());
        header.extend(power.to_le_bytes());
        header.extend(power.to_le_bytes());
        let mut g1 = Vec::new();
        for p in &big.get_g()[..(2 << power) - 1] {
            p.write(&mut g1, SerdeFormat::RawBytes).unwrap();
        }
        let mut g2 = Vec::new();
        big.g2().write(&mut g2, SerdeFormat::RawBytes).unwrap();
        big.s_g2().write(&mut g2, SerdeFormat::RawBytes).unwrap();
        g2.resize(128 << power, 0);
        edit(&mut header, &mut g1, &mut g2);
        let mut out = b"ptau".to_vec();
        out.extend(1u32.to_le_bytes());
        out.extend(3u32.to_le_bytes());
        for (id, body) in [(1u32, header), (2, g1), (3, g2)] {
            out.extend(id.to_le_bytes());
            out.extend((body.len() as u64).to_le_bytes());
            out.extend(body);
        }
        out
    }

    fn read(bytes: &[u8], k: u32) -> Result<ParamsKZG<Bn256>, String> {
        read_ceremony_srs(&mut std::io::Cursor::new(bytes), k).map_err(|e| e.to_string())
    }

    #[test]
    fn a_ptau_file_reads_as_the_same_powers() {
        let file = ptau(5, |_, _, _| {});
        let dev = dev_srs(4);
        let params = read(&file, 4).unwrap();
        assert_eq!(params.k(), 4);
        // The same powers, Lagrange basis and points, byte for byte.
        let bytes = |p: &ParamsKZG<Bn256>| {
            let mut b = Vec::new();
            p.write_custom(&mut b, SerdeFormat::RawBytes).unwrap();
            b
        };
        assert_eq!(bytes(&params), bytes(&dev));
        assert_eq!(srs_points(&params), srs_points(&dev));
        // Its own size and less are served; more is not.
        assert!(read(&file, 5).is_ok());
        assert!(read(&file, 6).unwrap_err().contains("2^5 powers"));
    }

    #[test]
    fn malformed_ptau_files_are_errors_that_say_why() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (ptau(4, |h, _, _| h[4] ^= 1), "not BN254"),
            (ptau(4, |h, _, _| h[0] = 48), "not a BN254"),
            (ptau(4, |_, g1, _| g1[64 * 3] ^= 1), "tauG1 point 3"),
            (
                ptau(4, |_, g1, _| g1.truncate(g1.len() - 64)),
                "tauG1/tauG2",
            ),
            (
                ptau(4, |_, g1, _| {
                    let (a, b) = g1.split_at_mut(64 * 6);
                    a[64 * 5..].copy_from_slice(&b[..64]);
                }),
                "successive powers",
            ),
            (
                ptau(4, |_, _, g2| g2[128..256].copy_from_slice(&[0; 128])),
                "known secret",
            ),
            (b"ptau".to_vec(), "truncated"),
        ];
        for (file, why) in cases {
            let err = read(&file, 4).unwrap_err();
            assert!(err.contains(why), "expected `{why}`: {err}");
        }
        let mut cut = ptau(4, |_, _, _| {});
        cut.truncate(cut.len() - 1);
        assert!(read(&cut, 4).unwrap_err().contains("past the end"));
        assert!(read(b"garbage!", 4).is_err());
    }

    #[test]
    fn a_consistent_srs_passes_the_powers_check_and_a_broken_one_fails() {
        let params = dev_srs(4);
        let points = srs_points(&params);
        let mut g = params.get_g().to_vec();
        assert!(check_powers(&g, &points).is_ok());
        g[5] = g[6];
        assert!(check_powers(&g, &points).is_err());
    }
}
