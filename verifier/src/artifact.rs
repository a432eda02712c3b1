//! On-disk formats shared by prover and verifier: a binary container (magic, format
//! version, JSON header, body) for keys, the verifying-key file, and the JSON proof file.

use std::io::{Cursor, Read};

use halo2_proofs::halo2curves::bn256::{Fr, G1Affine, G2Affine};
use halo2_proofs::halo2curves::ff::PrimeField;
use halo2_proofs::plonk::{Circuit, ConstraintSystem, VerifyingKey};
use halo2_proofs::{SerdeCurveAffine, SerdeFormat};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zkinfer_circuits::{Layout, ModelCircuit, ParamsMode, Visibility};

use crate::identity::{self, SrsPoints};
use crate::VerifyError;

/// Version of every binary container and of the proof JSON. Bumped on any change.
pub const FORMAT_VERSION: u32 = 3;
pub const VK_MAGIC: &[u8; 8] = b"ZKINFVK\0";
pub const PK_MAGIC: &[u8; 8] = b"ZKINFPK\0";
pub const PROOF_FORMAT: &str = "zkinfer-proof";
/// What the proof bytes are, spelled out for other tools.
pub const PROTOCOL: &str = "halo2-axiom PLONK, KZG on BN254, SHPLONK, Keccak-256 EVM transcript";

/// `magic | version u32 LE | header length u32 LE | header JSON | body`.
pub fn write_container(magic: &[u8; 8], header: &impl Serialize, body: &[u8]) -> Vec<u8> {
    let header = serde_json::to_vec(header).unwrap_or_default();
    let mut out = Vec::with_capacity(16 + header.len() + body.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(body);
    out
}

/// Reads a container written by [`write_container`]; `what` names the file in errors.
pub fn read_container<'a, H: DeserializeOwned>(
    bytes: &'a [u8],
    magic: &[u8; 8],
    what: &str,
) -> Result<(H, &'a [u8]), VerifyError> {
    let bad = |reason: String| VerifyError::Format {
        what: what.to_string(),
        reason,
    };
    if bytes.len() < 16 || &bytes[..8] != magic {
        return Err(bad(format!(
            "not a zkinfer {what} (expected magic {:?})",
            String::from_utf8_lossy(&magic[..7])
        )));
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != FORMAT_VERSION {
        return Err(VerifyError::Version {
            what: what.to_string(),
            found: version,
            expected: FORMAT_VERSION,
        });
    }
    let len = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]) as usize;
    let end = 16usize
        .checked_add(len)
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| bad("truncated header".into()))?;
    let header =
        serde_json::from_slice(&bytes[16..end]).map_err(|e| bad(format!("bad header: {e}")))?;
    Ok((header, &bytes[end..]))
}

/// Checks the `format` and `version` fields of a zkinfer JSON file.
pub fn check_json_format(
    v: &serde_json::Value,
    format: &str,
    what: &str,
) -> Result<(), VerifyError> {
    if v.get("format").and_then(|f| f.as_str()) != Some(format) {
        return Err(VerifyError::Format {
            what: what.to_string(),
            reason: format!("not a zkinfer {what} (field `format` must be \"{format}\")"),
        });
    }
    match v.get("version").and_then(|f| f.as_u64()) {
        Some(x) if x == FORMAT_VERSION as u64 => Ok(()),
        found => Err(VerifyError::Version {
            what: what.to_string(),
            found: found.unwrap_or(0) as u32,
            expected: FORMAT_VERSION,
        }),
    }
}

/// Parses a zkinfer JSON file of `format` (a `what`, for errors): JSON, then its
/// `format` and `version`, then the fields of `T`.
pub fn parse_json_file<T: serde::de::DeserializeOwned>(
    text: &str,
    format: &str,
    what: &str,
) -> Result<T, VerifyError> {
    let bad = |reason: String| VerifyError::Format {
        what: what.into(),
        reason,
    };
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    check_json_format(&v, format, what)?;
    serde_json::from_value(v).map_err(|e| bad(e.to_string()))
}

/// Whether `text` is a zkinfer JSON file of `format` (by its `format` field alone).
pub fn has_json_format(text: &str, format: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("format")?.as_str().map(|f| f == format))
        .unwrap_or(false)
}

/// The most elements an input or output may have (a bound on what a file may claim).
pub const MAX_ELEMENTS: usize = 1 << 28;

/// What a verifier must know about the statement besides the halo2 key. Every field is
/// bound by the model id ([`crate::identity::model_id`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementInfo {
    pub model: String,
    pub layout: Layout,
    pub input_shape: Vec<usize>,
    pub input_scale: i32,
    /// Signed width of the quantized input: every input element lies in
    /// `[-2^(bits-1), 2^(bits-1))` (checked by the verifier when the input is public,
    /// range-checked in the circuit when it is private or hashed).
    pub input_bits: u32,
    pub output_shape: Vec<usize>,
    pub output_scale: i32,
    /// With `--params hashed`: the Poseidon hash of this model's weights, which the first
    /// public value must equal (the halo2 key itself serves every model of the shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params_hash: Option<String>,
    /// A capability certificate's circuit (see [`Certificate`]): what its output means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Certificate>,
}

/// The circuit of a capability certificate: the model applied to `batch` samples whose
/// labels follow them in the input, and one output, the number of samples whose argmax
/// over the `classes` scores equals the label. The circuit computes it; this header says
/// how to read the statement, and is bound by the model id like every header field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    pub batch: usize,
    pub classes: usize,
}

/// Elements of a tensor of `shape`, if at least 1 and at most [`MAX_ELEMENTS`].
fn elements(shape: &[usize]) -> Option<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|n| (1..=MAX_ELEMENTS).contains(n))
}

impl StatementInfo {
    pub fn visibility(&self) -> Visibility {
        self.layout.visibility
    }

    /// Number of public values of the statement.
    pub fn public_values(&self) -> usize {
        self.visibility()
            .public_values(self.input_len(), self.output_len())
    }

    /// Elements of the input (0 for a header that [`Self::validate`] refuses).
    pub fn input_len(&self) -> usize {
        elements(&self.input_shape).unwrap_or(0)
    }

    /// Elements of the output (0 for a header that [`Self::validate`] refuses).
    pub fn output_len(&self) -> usize {
        elements(&self.output_shape).unwrap_or(0)
    }

    /// The range `[min, max]` of a quantized input element.
    pub fn input_range(&self) -> (i64, i64) {
        zkinfer_qir::signed_range(self.input_bits)
    }

    /// Checks every size and number a file may claim, so that nothing downstream
    /// overflows, panics or allocates without bound.
    pub fn validate(&self) -> Result<(), String> {
        self.layout.validate()?;
        for (what, shape) in [("input", &self.input_shape), ("output", &self.output_shape)] {
            if elements(shape).is_none() {
                return Err(format!(
                    "`{what}_shape` {shape:?} must have between 1 and {MAX_ELEMENTS} elements"
                ));
            }
        }
        for (what, scale) in [("input", self.input_scale), ("output", self.output_scale)] {
            if !(-126..=126).contains(&scale) {
                return Err(format!("`{what}_scale` {scale} is not in -126..=126"));
            }
        }
        if !(2..=30).contains(&self.input_bits) {
            return Err(format!("`input_bits` {} is not in 2..=30", self.input_bits));
        }
        if let Some(c) = &self.certificate {
            let v = self.visibility();
            if v.params != ParamsMode::Hashed
                || v.input != zkinfer_circuits::InputMode::Hashed
                || v.output != zkinfer_circuits::OutputMode::Public
                || self.output_len() != 1
                || self.output_scale < 0
                || self.input_scale < 0
                || c.batch == 0
                || c.classes < 2
                || !self.input_len().is_multiple_of(c.batch)
            {
                return Err(
                    "a certificate's circuit hashes its weights and its input, makes \
                     its one output (the count, at a scale of 2^0 or finer) public, reads its \
                     labels exactly (an input scale of 2^0 or finer), and has a batch of at least 1 sample dividing the input and at least 2 classes"
                        .into(),
                );
            }
        }
        let hashed = self.layout.visibility.params == ParamsMode::Hashed;
        // Canonical spelling only (as `fr_to_hex` writes it): one statement, one id.
        match &self.params_hash {
            Some(h) if hashed && fr_from_hex(h).is_some_and(|x| &fr_to_hex(&x) == h) => Ok(()),
            None if !hashed => Ok(()),
            _ => Err(
                "`params_hash` must be a field element in 0x-hex exactly when the weights are hashed"
                    .into(),
            ),
        }
    }
}

/// The verifying key file: statement, the SRS points a KZG verifier needs
/// (`g`, `g2`, `s·g2`), and the halo2 verifying key.
#[derive(Clone, Debug)]
pub struct VerifierKey {
    pub info: StatementInfo,
    pub k: u32,
    pub srs: SrsPoints,
    pub vk: VerifyingKey<G1Affine>,
}

impl VerifierKey {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut body = key_head(self.k, &self.srs);
        body.extend_from_slice(&self.vk.to_bytes(SerdeFormat::RawBytes));
        write_container(VK_MAGIC, &self.info, &body)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, VerifyError> {
        let (info, body): (StatementInfo, _) = read_container(bytes, VK_MAGIC, "verifying key")?;
        let bad = |reason: String| VerifyError::Format {
            what: "verifying key".into(),
            reason,
        };
        info.validate().map_err(bad)?;
        let mut r = Cursor::new(body);
        let (k, srs) = read_key_head(&mut r).map_err(bad)?;
        let at = r.position() as usize;
        check_halo2_key_size(&body[at.min(body.len())..], k, &info.layout).map_err(bad)?;
        let layout = info.layout.clone();
        let vk = crate::guard(|| {
            VerifyingKey::<G1Affine>::read::<_, ModelCircuit>(&mut r, SerdeFormat::RawBytes, layout)
        })
        .ok_or_else(|| bad("malformed halo2 verifying key".into()))?
        .map_err(|e| bad(format!("halo2 verifying key: {e}")))?;
        // The verifier indexes the fixed commitments by the constraint system's columns.
        if vk.fixed_commitments().len() != vk.cs().num_fixed_columns() {
            return Err(bad(format!(
                "the halo2 key has {} fixed commitments; its constraint system has {} fixed columns",
                vk.fixed_commitments().len(),
                vk.cs().num_fixed_columns()
            )));
        }
        // halo2 reads raw points without a curve check; the digest binds them, and a
        // point off the curve is refused here all the same.
        let commitments = vk.fixed_commitments().iter();
        if !commitments
            .chain(vk.permutation().commitments())
            .all(identity::in_g1)
        {
            return Err(bad(
                "a commitment of the halo2 key is not a BN254 point".into()
            ));
        }
        if r.position() != body.len() as u64 {
            return Err(bad(format!(
                "{} bytes after the halo2 verifying key",
                body.len() as u64 - r.position()
            )));
        }
        Ok(VerifierKey { info, k, srs, vk })
    }

    /// The model commitment: a digest of everything verification reads
    /// ([`identity::model_id`]).
    pub fn model_id(&self) -> String {
        identity::model_id(&self.info, self.k, &self.srs, &self.vk)
    }
}

/// The head of a verifying key's body: `k` (u32 LE), then the SRS points `g ‖ g2 ‖ s·g2`.
pub fn key_head(k: u32, srs: &SrsPoints) -> Vec<u8> {
    let mut body = k.to_le_bytes().to_vec();
    // Writing to a Vec cannot fail.
    let _ = srs.g.write(&mut body, SerdeFormat::RawBytes);
    let _ = srs.g2.write(&mut body, SerdeFormat::RawBytes);
    let _ = srs.s_g2.write(&mut body, SerdeFormat::RawBytes);
    body
}

/// Reads [`key_head`]; the points must be a powers-of-tau SRS's ([`SrsPoints::check`]).
pub fn read_key_head(r: &mut Cursor<&[u8]>) -> Result<(u32, SrsPoints), String> {
    let mut k = [0u8; 4];
    r.read_exact(&mut k).map_err(|e| e.to_string())?;
    let g = G1Affine::read(r, SerdeFormat::RawBytes).map_err(|e| format!("SRS g: {e}"))?;
    let g2 = G2Affine::read(r, SerdeFormat::RawBytes).map_err(|e| format!("SRS g2: {e}"))?;
    let s_g2 = G2Affine::read(r, SerdeFormat::RawBytes).map_err(|e| format!("SRS s_g2: {e}"))?;
    let srs = SrsPoints { g, g2, s_g2 };
    srs.check()?;
    Ok((u32::from_le_bytes(k), srs))
}

/// `0x`-hex bytes.
pub fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    s.strip_prefix("0x").and_then(|h| hex::decode(h).ok())
}

/// What halo2's reader trusts before it reads a byte, checked first: its version byte, a
/// `k` equal to the key's and the layout's, and, with compressed selectors (halo2
/// allocates `selectors × 2^k` before reading them), that the file holds those bytes, so a
/// small file cannot claim a huge allocation.
fn check_halo2_key_size(bytes: &[u8], k: u32, layout: &Layout) -> Result<(), String> {
    let (Some(&version), Some(key_k), Some(&compressed)) = (
        bytes.first(),
        bytes
            .get(1..5)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes),
        bytes.get(5),
    ) else {
        return Err("truncated halo2 verifying key".into());
    };
    if version != 2 || compressed > 1 {
        return Err("not a halo2-axiom verifying key (version 2)".into());
    }
    if key_k != k || layout.k != k {
        return Err(format!(
            "inconsistent sizes: SRS k={k}, key k={key_k}, layout k={}",
            layout.k
        ));
    }
    if compressed == 1 {
        let mut cs = ConstraintSystem::<Fr>::default();
        ModelCircuit::configure_with_params(&mut cs, layout.clone());
        let need = cs.num_selectors().saturating_mul((1usize << k).div_ceil(8));
        if bytes.len() < need {
            return Err(format!(
                "truncated halo2 verifying key: its selectors need {need} bytes, it has {}",
                bytes.len()
            ));
        }
    }
    Ok(())
}

/// The dequantized output as it appears in a proof file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputValues {
    pub shape: Vec<usize>,
    pub scale: i32,
    pub values: Vec<f64>,
}

/// The proof file (JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProofFile {
    pub format: String,
    pub version: u32,
    pub protocol: String,
    pub model: String,
    pub model_id: String,
    /// Proof bytes, `0x`-hex.
    pub proof: String,
    /// What the public values are (see `zkinfer_circuits::Visibility`).
    pub visibility: Visibility,
    /// Public values in the order `visibility` gives (weights hash, input or its hash,
    /// output or its hash), `0x`-hex big-endian.
    pub instances: Vec<String>,
    /// The output the instances encode, dequantized (checked against them on verify);
    /// absent when the output is hashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputValues>,
}

impl ProofFile {
    pub fn parse(text: &str) -> Result<Self, VerifyError> {
        parse_json_file(text, PROOF_FORMAT, "proof file")
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The public instances and the proof bytes, decoded from their hex.
    pub fn public_values(&self) -> Result<(Vec<Fr>, Vec<u8>), String> {
        let instances = self
            .instances
            .iter()
            .map(|s| fr_from_hex(s))
            .collect::<Option<Vec<Fr>>>()
            .ok_or("a public value is not a canonical field element in 0x-hex")?;
        let bytes = hex_bytes(&self.proof).ok_or("the proof bytes are not 0x-hex")?;
        Ok((instances, bytes))
    }
}

/// `0x`-hex, big-endian (as the EVM reads a uint256).
pub fn fr_to_hex(x: &Fr) -> String {
    let mut b = x.to_repr();
    b.as_mut().reverse();
    format!("0x{}", hex::encode(b.as_ref()))
}

/// Parses [`fr_to_hex`]'s format; `None` unless it is a canonical field element.
pub fn fr_from_hex(s: &str) -> Option<Fr> {
    let bytes = hex::decode(s.strip_prefix("0x")?).ok()?;
    let mut repr: [u8; 32] = bytes.try_into().ok()?;
    repr.reverse();
    Option::from(Fr::from_repr(repr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_checks_magic_and_version() {
        let bytes = write_container(VK_MAGIC, &"hello", b"body");
        let (h, body): (String, _) = read_container(&bytes, VK_MAGIC, "key").unwrap();
        assert_eq!((h.as_str(), body), ("hello", &b"body"[..]));
        assert!(matches!(
            read_container::<String>(&bytes, PK_MAGIC, "key"),
            Err(VerifyError::Format { .. })
        ));
        let mut old = bytes.clone();
        old[8] = 0;
        assert!(matches!(
            read_container::<String>(&old, VK_MAGIC, "key"),
            Err(VerifyError::Version { found: 0, .. })
        ));
        assert!(read_container::<String>(&bytes[..10], VK_MAGIC, "key").is_err());
    }

    #[test]
    fn a_weights_hash_must_be_spelt_canonically() {
        use zkinfer_circuits::{ParamsMode, Visibility};
        let mut info = StatementInfo {
            model: "m".into(),
            layout: Layout {
                k: 10,
                visibility: Visibility {
                    params: ParamsMode::Hashed,
                    ..Visibility::default()
                },
                hash_lanes: 1,
                pack_lanes: 1,
                weight_bits: 12,
                ..Layout::default()
            },
            input_shape: vec![1, 4],
            input_scale: 5,
            input_bits: 12,
            output_shape: vec![1, 2],
            output_scale: 5,
            params_hash: Some(fr_to_hex(&Fr::from(0xabcdefu64))),
            certificate: None,
        };
        assert_eq!(info.validate(), Ok(()));
        info.params_hash = info.params_hash.map(|h| h.replace("abcdef", "ABCDEF"));
        assert!(info.validate().is_err());
        info.params_hash = None;
        assert!(info.validate().is_err());
    }

    #[test]
    fn field_hex_round_trips() {
        let x = Fr::from(123456789u64);
        assert_eq!(fr_from_hex(&fr_to_hex(&x)), Some(x));
        assert_eq!(fr_from_hex(&fr_to_hex(&-x)), Some(-x));
        assert_eq!(fr_from_hex("0x12"), None);
        assert_eq!(fr_from_hex(&format!("0x{}", "ff".repeat(32))), None);
    }
}
