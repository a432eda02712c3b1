//! What a verifier trusts, as one digest: the model id.
//!
//! Verification reads the key file's header (shapes, scales, input width, visibility,
//! layout), `k`, the KZG points of the pairing (`g`, `g2`, `s·g2`) and the halo2
//! verifying key; with hashed weights also the weights hash. The model id is a Keccak-256
//! digest of all of them (the weights hash appended as `:<hash>`), so a verifier who pins
//! a model id pins every byte that decides its verdict, the trusted setup included.
//!
//! The SRS fingerprint names a trusted setup by its secret's public image: Keccak-256 of
//! `g ‖ g2 ‖ s·g2` in Ethereum's encoding (EIP-196/197: big-endian coordinates, `x.c1`
//! before `x.c0` in G2). It does not depend on `k`, so every circuit set up from one
//! ceremony has the same fingerprint.

use halo2_proofs::halo2curves::bn256::{Fq, Fr, G1Affine, G2Affine};
use halo2_proofs::halo2curves::ff::{Field, PrimeField};
use halo2_proofs::halo2curves::group::prime::PrimeCurveAffine;
use halo2_proofs::halo2curves::group::Group;
use halo2_proofs::halo2curves::CurveAffine;
use halo2_proofs::plonk::VerifyingKey;
use sha3::{Digest, Keccak256};

use crate::artifact::StatementInfo;

/// The fingerprint of zkinfer's development SRS (`setup --dev-srs`), whose secret anyone
/// can recompute: a key with these points verifies forged proofs. (The prover crate's
/// tests check this against the development SRS it generates.)
pub const DEV_SRS_FINGERPRINT: &str =
    "0xbfc055fc6ef3668339e8367e430901458716bdd04493c76f49bcc0031a2c3193";

/// The KZG points a verifier uses: `g` (G1 generator), `g2` (G2 generator) and `s·g2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SrsPoints {
    pub g: G1Affine,
    pub g2: G2Affine,
    pub s_g2: G2Affine,
}

fn fq_be(x: &Fq) -> [u8; 32] {
    let mut b = x.to_repr();
    b.as_mut().reverse();
    b
}

/// A G1 point as the EVM's precompiles read it: `x ‖ y`, zeros for the identity.
fn g1_bytes(p: &G1Affine) -> Vec<u8> {
    if bool::from(p.is_identity()) {
        return vec![0; 64];
    }
    [fq_be(&p.x), fq_be(&p.y)].concat()
}

/// A G2 point as EIP-197 reads it: `x.c1 ‖ x.c0 ‖ y.c1 ‖ y.c0`, zeros for the identity.
fn g2_bytes(p: &G2Affine) -> Vec<u8> {
    if bool::from(p.is_identity()) {
        return vec![0; 128];
    }
    [
        fq_be(&p.x.c1),
        fq_be(&p.x.c0),
        fq_be(&p.y.c1),
        fq_be(&p.y.c0),
    ]
    .concat()
}

pub(crate) fn hex32(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

impl SrsPoints {
    /// Keccak-256 of `g ‖ g2 ‖ s·g2`, `0x`-hex (see the module docs).
    pub fn fingerprint(&self) -> String {
        hex32(&self.fingerprint_bytes())
    }

    fn fingerprint_bytes(&self) -> [u8; 32] {
        let mut h = Keccak256::new();
        h.update(g1_bytes(&self.g));
        h.update(g2_bytes(&self.g2));
        h.update(g2_bytes(&self.s_g2));
        h.finalize().into()
    }

    /// Points of a powers-of-tau SRS: `g` and `g2` the BN254 generators (as in every
    /// ceremony and in halo2's setup), `s·g2` neither the identity nor `g2` (a secret of
    /// 0 or 1). Anything else makes the pairing check meaningless.
    pub fn check(&self) -> Result<(), String> {
        if self.g != G1Affine::generator() || self.g2 != G2Affine::generator() {
            return Err("its KZG points `g` and `g2` are not the BN254 generators".into());
        }
        if !in_g2(&self.s_g2) {
            return Err("its KZG point `s·g2` is not a point of BN254's G2".into());
        }
        if bool::from(self.s_g2.is_identity()) || self.s_g2 == self.g2 {
            return Err("its KZG point `s·g2` is the identity or `g2`: a known secret".into());
        }
        Ok(())
    }

    /// The development SRS: public secret, forgeable proofs.
    pub fn is_insecure_dev_srs(&self) -> bool {
        self.fingerprint() == DEV_SRS_FINGERPRINT
    }
}

/// On the twist curve and in the prime-order subgroup: `(r − 1)·p + p` is the identity.
pub fn in_g2(p: &G2Affine) -> bool {
    bool::from(p.is_on_curve()) && bool::from((p.to_curve() * -Fr::ONE + p).is_identity())
}

/// On the curve (BN254's G1 has cofactor 1, so that is the group).
pub fn in_g1(p: &G1Affine) -> bool {
    bool::from(p.is_on_curve())
}

/// The header as the digest reads it: the parsed fields re-encoded (field order fixed by
/// the type, no whitespace), so two files that parse alike digest alike. The weights
/// hash is left out: it is the model id's second part.
fn canonical_header(info: &StatementInfo) -> Vec<u8> {
    let mut info = info.clone();
    info.params_hash = None;
    serde_json::to_vec(&info).unwrap_or_default()
}

/// The model id of a verifying statement: `0x<digest>` with fixed weights,
/// `0x<digest>:<weights hash>` with hashed ones, where digest = Keccak-256 of the tag
/// `zkinfer model id v3`, the canonical header (length-prefixed), `k`, the SRS
/// fingerprint and the halo2 verifying key's transcript digest (which binds the
/// constraint system, the fixed columns, with fixed weights the weights, and the
/// permutation).
pub fn model_id(
    info: &StatementInfo,
    k: u32,
    points: &SrsPoints,
    vk: &VerifyingKey<G1Affine>,
) -> String {
    let header = canonical_header(info);
    let mut h = Keccak256::new();
    h.update(b"zkinfer model id v3");
    h.update((header.len() as u64).to_le_bytes());
    h.update(&header);
    h.update(k.to_le_bytes());
    h.update(points.fingerprint_bytes());
    h.update(vk.transcript_repr().to_repr());
    let digest = hex32(&h.finalize());
    match &info.params_hash {
        Some(w) => format!("{digest}:{w}"),
        None => digest,
    }
}
