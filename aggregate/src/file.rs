//! The aggregated proof file and its native verifier.

use halo2_proofs::halo2curves::bn256::{Bn256, Fq, Fr, G1Affine, G2Affine, G2Prepared};
use halo2_proofs::halo2curves::ff::PrimeField;
use halo2_proofs::halo2curves::group::Group;
use halo2_proofs::halo2curves::pairing::{MillerLoopResult, MultiMillerLoop};
use halo2_proofs::halo2curves::CurveAffine;
use serde::{Deserialize, Serialize};
use zkinfer_verifier::artifact::{
    fr_from_hex, fr_to_hex, has_json_format, hex_bytes, parse_json_file, FORMAT_VERSION,
};
use zkinfer_verifier::bundle::linked_statement;
use zkinfer_verifier::{keys_id, statement, ProofFile, Public, Verdict, VerifierKey, VerifyError};

use crate::circuit::{ACCUMULATOR_LIMBS, BITS, LIMBS};
use crate::keys::AggregateVerifierKey;

pub const AGGREGATE_FORMAT: &str = "zkinfer-aggregate";
pub const AGGREGATE_PROTOCOL: &str = "snark-verifier aggregation (KZG accumulation of SHPLONK proofs with Poseidon transcripts) in a halo2-axiom PLONK proof, KZG on BN254, SHPLONK, Keccak-256 EVM transcript";

/// An aggregated proof (JSON): every folded proof's statement (its public values; no
/// proof bytes), and one proof of them all whose public values are the accumulator's
/// limbs and the Poseidon digest of those statements.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateFile {
    pub format: String,
    pub version: u32,
    pub protocol: String,
    pub model: String,
    /// The folded model's id (as a bundle's).
    pub model_id: String,
    /// The aggregation key's id.
    pub aggregate_id: String,
    /// Each folded proof's statement, in segment order: a proof file without proof bytes.
    pub statements: Vec<ProofFile>,
    /// The KZG accumulator, 12 limbs of 88 bits, `0x`-hex.
    pub accumulator: Vec<String>,
    /// Poseidon of every statement's public values (of a tree's root: of its children's
    /// digests and exposed links, [`crate::tree`]), `0x`-hex.
    pub digest: String,
    /// The aggregated proof's bytes, `0x`-hex.
    pub proof: String,
}

impl AggregateFile {
    pub fn parse(text: &str) -> Result<Self, VerifyError> {
        let what = "aggregated proof";
        let bad = |reason: String| VerifyError::Format {
            what: what.into(),
            reason,
        };
        let f: Self = parse_json_file(text, AGGREGATE_FORMAT, what)?;
        if f.statements.is_empty() || f.statements.len() > zkinfer_verifier::bundle::MAX_SEGMENTS {
            return Err(bad(format!("holds {} statements", f.statements.len())));
        }
        Ok(f)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Whether `text` is an aggregated proof file (by its `format` field).
    pub fn is_aggregate(text: &str) -> bool {
        has_json_format(text, AGGREGATE_FORMAT)
    }

    /// The aggregated proof's public values (accumulator limbs, then the digest) and its
    /// bytes, decoded.
    pub fn public_values(&self) -> Result<(Vec<Fr>, Vec<u8>), String> {
        if self.accumulator.len() != ACCUMULATOR_LIMBS {
            return Err(format!(
                "the accumulator has {} limbs, not {ACCUMULATOR_LIMBS}",
                self.accumulator.len()
            ));
        }
        let mut instances = self
            .accumulator
            .iter()
            .chain([&self.digest])
            .map(|s| fr_from_hex(s))
            .collect::<Option<Vec<Fr>>>()
            .ok_or(
                "an accumulator limb or the digest is not a canonical field element in 0x-hex",
            )?;
        instances.shrink_to_fit();
        let bytes = hex_bytes(&self.proof).ok_or("the proof bytes are not 0x-hex")?;
        Ok((instances, bytes))
    }

    #[cfg(feature = "prove")]
    /// The calldata of the aggregation verifier contract: the 13 public values as 32-byte
    /// big-endian words, then the proof bytes.
    pub fn calldata(&self) -> Result<Vec<u8>, String> {
        let (instances, proof) = self.public_values()?;
        Ok(snark_verifier::loader::evm::encode_calldata(
            &[instances],
            &proof,
        ))
    }

    /// Assembles the file of an aggregated proof of `statements`.
    pub fn new(
        key: &AggregateVerifierKey,
        statements: Vec<ProofFile>,
        instances: &[Fr],
        proof: &[u8],
    ) -> Self {
        let (acc, digest) = instances.split_at(instances.len().saturating_sub(1));
        AggregateFile {
            format: AGGREGATE_FORMAT.into(),
            version: FORMAT_VERSION,
            protocol: AGGREGATE_PROTOCOL.into(),
            model: key.info.model.clone(),
            model_id: key.info.model_id.clone(),
            aggregate_id: key.id(),
            statements,
            accumulator: acc.iter().map(fr_to_hex).collect(),
            digest: digest.first().map(fr_to_hex).unwrap_or_default(),
            proof: format!("0x{}", hex::encode(proof)),
        }
    }
}

/// Verifies an aggregated proof against the model's segment keys (in order) and its
/// aggregation key: every statement against its key (as for a proof), every link, the
/// digest of the statements, the aggregated proof, and the accumulator's pairing.
pub fn verify(keys: &[VerifierKey], key: &AggregateVerifierKey, file: &AggregateFile) -> Verdict {
    match check(keys, key, file) {
        Ok(public) => Verdict::Valid { public },
        Err(reason) => Verdict::Invalid { reason },
    }
}

fn check(
    keys: &[VerifierKey],
    key: &AggregateVerifierKey,
    file: &AggregateFile,
) -> Result<Public, String> {
    let id = keys_id(keys);
    // What the aggregation key's header says of the model must be the keys' (the circuit
    // itself is bound by the aggregate id, which the caller pins): the root of the tree
    // it names (or the one node), folding these segments.
    let nodes = crate::tree::nodes(keys, key.info.tree).map_err(|e| e.to_string())?;
    let root = nodes.last().ok_or("an aggregation of no node")?;
    if key.info.tree.is_some_and(|t| t.node + 1 != nodes.len()) {
        return Err("the aggregation key is an inner node of its tree, not its root".into());
    }
    if key.info.links != root.links
        || key.info.num_instances != root.num_instances
        || root.public_values() != crate::NUM_INSTANCE
    {
        return Err("the aggregation key folds another chain of segments than these keys".into());
    }
    if let Some(i) = keys.iter().position(|k| k.srs != key.srs) {
        return Err(format!(
            "segment {i}'s key was made with another SRS ({}) than the aggregation key ({})",
            keys[i].srs.fingerprint(),
            key.srs.fingerprint()
        ));
    }
    if key.info.model_id != id {
        return Err(format!(
            "the aggregation key is for model id {}, the segment keys are model id {id}",
            key.info.model_id
        ));
    }
    let aggregate_id = key.id();
    if file.aggregate_id != aggregate_id {
        return Err(format!(
            "the proof is for aggregation key {}, this aggregation key is {aggregate_id}",
            file.aggregate_id
        ));
    }
    if file.model_id != id {
        return Err(format!(
            "the proof is for model id {}, these keys are model id {id}",
            file.model_id
        ));
    }
    if file.statements.len() != keys.len() {
        return Err(format!(
            "the proof states {} segments; the model has {}",
            file.statements.len(),
            keys.len()
        ));
    }
    let mut publics = Vec::with_capacity(keys.len());
    let mut instances = Vec::with_capacity(keys.len());
    for (i, (k, s)) in keys.iter().zip(&file.statements).enumerate() {
        if s.proof != "0x" {
            return Err(format!(
                "statement {i} carries proof bytes; an aggregated proof's do not"
            ));
        }
        let st = statement(k, s).map_err(|e| format!("segment {i} of {}: {e}", keys.len()))?;
        publics.push(st.public);
        instances.push(st.instances);
    }
    let public = linked_statement(&id, &publics)?;
    let (values, proof) = file.public_values()?;
    let stated = crate::tree::statement_values(&nodes, &instances)?;
    let digest = stated
        .last()
        .and_then(|v| v.first())
        .copied()
        .unwrap_or_default();
    if values[ACCUMULATOR_LIMBS] != digest {
        return Err(format!(
            "the digest {} is not the digest of the stated public values ({})",
            file.digest,
            fr_to_hex(&digest)
        ));
    }
    crate::verify_outer(key, &values, &proof)?;
    decide(key, &values[..ACCUMULATOR_LIMBS])?;
    Ok(public)
}

/// The final pairing of the folded proofs: the accumulator `(lhs, rhs)` from its limbs,
/// `e(lhs, g2) = e(rhs, s·g2)` (snark-verifier's KZG decider; tested equal to it).
pub(crate) fn decide(key: &AggregateVerifierKey, limbs: &[Fr]) -> Result<(), String> {
    let (lhs, rhs) = accumulator(limbs)
        .ok_or("the accumulator is not a pair of curve points in limbs of 88 bits")?;
    pairing_holds(&lhs, &rhs, &key.srs.g2, &key.srs.s_g2)
        .then_some(())
        .ok_or_else(|| "the accumulator's pairing check fails".into())
}

/// `e(lhs, g2) · e(rhs, −s·g2) = 1`.
pub(crate) fn pairing_holds(
    lhs: &G1Affine,
    rhs: &G1Affine,
    g2: &G2Affine,
    s_g2: &G2Affine,
) -> bool {
    let g2 = G2Prepared::from(*g2);
    let minus_s_g2 = G2Prepared::from(-*s_g2);
    Bn256::multi_miller_loop(&[(lhs, &g2), (rhs, &minus_s_g2)])
        .final_exponentiation()
        .is_identity()
        .into()
}

/// The accumulator's two points from its `4·LIMBS` limbs (`lhs.x, lhs.y, rhs.x, rhs.y`).
pub(crate) fn accumulator(limbs: &[Fr]) -> Option<(G1Affine, G1Affine)> {
    if limbs.len() != 4 * LIMBS {
        return None;
    }
    let point = |l: &[Fr]| -> Option<G1Affine> {
        let (x, y) = (coordinate(&l[..LIMBS])?, coordinate(&l[LIMBS..])?);
        Option::from(G1Affine::from_xy(x, y))
    };
    Some((point(&limbs[..2 * LIMBS])?, point(&limbs[2 * LIMBS..])?))
}

/// A base-field element from `LIMBS` little-endian limbs of `BITS` bits: each limb below
/// `2^BITS`, the value below the modulus (one encoding per element).
fn coordinate(limbs: &[Fr]) -> Option<Fq> {
    const BYTES: usize = BITS / 8;
    const _: () = assert!(BITS.is_multiple_of(8) && LIMBS * BITS >= 256);
    let mut bytes = [0u8; LIMBS * BYTES];
    for (i, limb) in limbs.iter().enumerate() {
        let repr = limb.to_repr();
        if repr[BYTES..].iter().any(|&b| b != 0) {
            return None;
        }
        bytes[i * BYTES..(i + 1) * BYTES].copy_from_slice(&repr[..BYTES]);
    }
    if bytes[32..].iter().any(|&b| b != 0) {
        return None;
    }
    let mut repr = <Fq as PrimeField>::Repr::default();
    repr.as_mut().copy_from_slice(&bytes[..32]);
    Option::from(Fq::from_repr(repr))
}

#[cfg(test)]
mod tests {
    use halo2_proofs::halo2curves::ff::Field;

    use super::*;
    use crate::circuit::statement_digest;

    fn file() -> AggregateFile {
        AggregateFile {
            format: AGGREGATE_FORMAT.into(),
            version: FORMAT_VERSION,
            protocol: AGGREGATE_PROTOCOL.into(),
            model: "m".into(),
            model_id: "0x01".into(),
            aggregate_id: "0x02".into(),
            statements: vec![],
            accumulator: vec![fr_to_hex(&Fr::one()); ACCUMULATOR_LIMBS],
            digest: fr_to_hex(&Fr::one()),
            proof: "0x00".into(),
        }
    }

    /// `LIMBS` limbs of `BITS` bits of a 32-byte little-endian value.
    fn limbs_of(bytes: [u8; 32]) -> Vec<Fr> {
        (0..LIMBS)
            .map(|i| {
                let mut repr = [0u8; 32];
                let end = ((i + 1) * BITS / 8).min(32);
                repr[..end - i * BITS / 8].copy_from_slice(&bytes[i * BITS / 8..end]);
                Fr::from_repr(repr).unwrap()
            })
            .collect()
    }

    fn encode(p: &G1Affine) -> Vec<Fr> {
        let c = p.coordinates().unwrap();
        [limbs_of(c.x().to_repr()), limbs_of(c.y().to_repr())].concat()
    }

    #[test]
    fn the_accumulator_is_decoded_and_decided_as_snark_verifier_does() {
        use halo2_proofs::halo2curves::bn256::G2Affine;
        // e(s·P, g2) = e(P, s·g2): the pair (s·P, P) is a valid accumulator.
        let secret = Fr::from(7);
        let p = G1Affine::from(G1Affine::generator() * Fr::from(11));
        let (lhs, rhs) = (G1Affine::from(p * secret), p);
        let g2 = G2Affine::generator();
        let s_g2 = G2Affine::from(g2 * secret);
        assert!(pairing_holds(&lhs, &rhs, &g2, &s_g2));
        assert!(!pairing_holds(&rhs, &lhs, &g2, &s_g2));
        let limbs = [encode(&lhs), encode(&rhs)].concat();
        assert_eq!(accumulator(&limbs), Some((lhs, rhs)));
        #[cfg(feature = "prove")]
        {
            use snark_verifier::loader::native::NativeLoader;
            use snark_verifier::pcs::kzg::LimbsEncoding;
            use snark_verifier::pcs::AccumulatorEncoding;
            let refs: Vec<&Fr> = limbs.iter().collect();
            let theirs = <LimbsEncoding<LIMBS, BITS> as AccumulatorEncoding<
                G1Affine,
                NativeLoader,
            >>::from_repr(&refs)
            .unwrap();
            assert_eq!((theirs.lhs, theirs.rhs), (lhs, rhs));
        }
        // A limb of 88 bits or more, a coordinate off the curve, the wrong count: refused.
        let mut wide = limbs.clone();
        wide[0] += Fr::from(2).pow([BITS as u64]);
        assert_eq!(accumulator(&wide), None);
        let mut off = limbs.clone();
        off[0] += Fr::one();
        assert_eq!(accumulator(&off), None);
        assert_eq!(accumulator(&limbs[1..]), None);
        // The base field's modulus as limbs (x = p, not reduced): refused.
        let mut modulus = [0u8; 32];
        let m = hex::decode("30644e72e131a029b85045b68181585d97816a916871ca8d3c208c16d87cfd47")
            .unwrap();
        for (i, b) in m.iter().rev().enumerate() {
            modulus[i] = *b;
        }
        let mut unreduced = limbs;
        unreduced[..LIMBS].copy_from_slice(&limbs_of(modulus));
        assert_eq!(accumulator(&unreduced), None);
    }

    #[test]
    fn malformed_aggregated_proofs_are_errors_that_say_why() {
        let bad = |f: AggregateFile| {
            AggregateFile::parse(&serde_json::to_string(&f).unwrap())
                .unwrap_err()
                .to_string()
        };
        assert!(bad(file()).contains("0 statements"));
        let mut f = file();
        f.format = "zkinfer-proof".into();
        assert!(bad(f).contains("format"));
        let text = serde_json::to_string(&file())
            .unwrap()
            .replace("\"digest\"", "\"extra\":1,\"digest\"");
        assert!(AggregateFile::parse(&text)
            .unwrap_err()
            .to_string()
            .contains("extra"));
        assert!(!AggregateFile::is_aggregate(
            "{\"format\":\"zkinfer-proof\"}"
        ));
        assert!(AggregateFile::is_aggregate(
            &serde_json::to_string(&file()).unwrap()
        ));
        // The public values: 12 canonical limbs, a canonical digest.
        let mut f = file();
        f.accumulator.pop();
        assert!(f.public_values().unwrap_err().contains("11 limbs"));
        let mut f = file();
        f.digest = format!("0x{}", "ff".repeat(32));
        assert!(f.public_values().unwrap_err().contains("canonical"));
        let (values, bytes) = file().public_values().unwrap();
        assert_eq!((values.len(), bytes), (ACCUMULATOR_LIMBS + 1, vec![0]));
    }

    #[test]
    fn the_statement_digest_binds_every_value_and_its_place() {
        let a = statement_digest(&[vec![Fr::one(), Fr::zero()], vec![Fr::from(2)]]);
        assert_ne!(
            a,
            statement_digest(&[vec![Fr::one(), Fr::one()], vec![Fr::from(2)]])
        );
        assert_ne!(
            a,
            statement_digest(&[vec![Fr::zero(), Fr::one()], vec![Fr::from(2)]])
        );
        assert_ne!(a, statement_digest(&[vec![Fr::one(), Fr::zero()]]));
        assert_eq!(
            a,
            statement_digest(&[vec![Fr::one(), Fr::zero()], vec![Fr::from(2)]])
        );
    }
}
