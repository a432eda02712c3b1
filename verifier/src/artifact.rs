//! On-disk formats shared by prover and verifier: a binary container (magic, format
//! version, JSON header, body) for keys, the verifying-key file, and the JSON proof file.

use std::io::{Cursor, Read};

use halo2_proofs::halo2curves::bn256::{Fr, G1Affine, G2Affine};
use halo2_proofs::halo2curves::ff::PrimeField;
use halo2_proofs::plonk::VerifyingKey;
use halo2_proofs::{SerdeCurveAffine, SerdeFormat};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zkinfer_circuits::{Layout, ModelCircuit, ParamsMode, Visibility};

use crate::VerifyError;

/// Version of every binary container and of the proof JSON. Bumped on any change.
pub const FORMAT_VERSION: u32 = 2;
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
    let header = bytes
        .get(16..16 + len)
        .ok_or_else(|| bad("truncated header".into()))?;
    let header = serde_json::from_slice(header).map_err(|e| bad(format!("bad header: {e}")))?;
    Ok((header, &bytes[16 + len..]))
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

/// What a verifier must know about the statement besides the halo2 key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementInfo {
    pub model: String,
    pub layout: Layout,
    pub input_shape: Vec<usize>,
    pub input_scale: i32,
    pub output_shape: Vec<usize>,
    pub output_scale: i32,
    /// With `--params hashed`: the Poseidon hash of this model's weights, which the first
    /// public value must equal (the halo2 key itself serves every model of the shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params_hash: Option<String>,
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

    pub fn input_len(&self) -> usize {
        self.input_shape.iter().product()
    }

    pub fn output_len(&self) -> usize {
        self.output_shape.iter().product()
    }
}

/// The verifying key file: statement, the SRS elements a KZG verifier needs
/// (`g`, `g2`, `s·g2`), and the halo2 verifying key.
#[derive(Clone, Debug)]
pub struct VerifierKey {
    pub info: StatementInfo,
    pub k: u32,
    pub g: G1Affine,
    pub g2: G2Affine,
    pub s_g2: G2Affine,
    pub vk: VerifyingKey<G1Affine>,
}

impl VerifierKey {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&self.k.to_le_bytes());
        // Writing to a Vec cannot fail.
        let _ = self.g.write(&mut body, SerdeFormat::RawBytes);
        let _ = self.g2.write(&mut body, SerdeFormat::RawBytes);
        let _ = self.s_g2.write(&mut body, SerdeFormat::RawBytes);
        body.extend_from_slice(&self.vk.to_bytes(SerdeFormat::RawBytes));
        write_container(VK_MAGIC, &self.info, &body)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, VerifyError> {
        let (info, body): (StatementInfo, _) = read_container(bytes, VK_MAGIC, "verifying key")?;
        let bad = |reason: String| VerifyError::Format {
            what: "verifying key".into(),
            reason,
        };
        let mut r = Cursor::new(body);
        let mut k = [0u8; 4];
        r.read_exact(&mut k).map_err(|e| bad(e.to_string()))?;
        let k = u32::from_le_bytes(k);
        let g = G1Affine::read(&mut r, SerdeFormat::RawBytes)
            .map_err(|e| bad(format!("SRS g: {e}")))?;
        let g2 = G2Affine::read(&mut r, SerdeFormat::RawBytes)
            .map_err(|e| bad(format!("SRS g2: {e}")))?;
        let s_g2 = G2Affine::read(&mut r, SerdeFormat::RawBytes)
            .map_err(|e| bad(format!("SRS s_g2: {e}")))?;
        info.layout.validate().map_err(bad)?;
        let hashed = info.layout.visibility.params == ParamsMode::Hashed;
        match &info.params_hash {
            Some(h) if hashed && fr_from_hex(h).is_some() => {}
            None if !hashed => {}
            _ => {
                return Err(bad(
                    "`params_hash` must be a field element in 0x-hex exactly when the weights are hashed"
                        .into(),
                ))
            }
        }
        let layout = info.layout.clone();
        let vk = crate::guard(|| {
            VerifyingKey::<G1Affine>::read::<_, ModelCircuit>(&mut r, SerdeFormat::RawBytes, layout)
        })
        .ok_or_else(|| bad("malformed halo2 verifying key".into()))?
        .map_err(|e| bad(format!("halo2 verifying key: {e}")))?;
        if vk.get_domain().k() != k || info.layout.k != k {
            return Err(bad(format!(
                "inconsistent sizes: SRS k={k}, key k={}, layout k={}",
                vk.get_domain().k(),
                info.layout.k
            )));
        }
        Ok(VerifierKey {
            info,
            k,
            g,
            g2,
            s_g2,
            vk,
        })
    }

    /// The model commitment. With fixed weights: the verifying key's transcript digest,
    /// which binds the circuit's structure and, as fixed columns, the weights. With
    /// hashed weights: `<digest>:<weights hash>`, the architecture's key and the weights.
    pub fn model_id(&self) -> String {
        model_id(&self.vk, self.info.params_hash.as_deref())
    }
}

/// See [`VerifierKey::model_id`].
pub fn model_id(vk: &VerifyingKey<G1Affine>, params_hash: Option<&str>) -> String {
    let digest = fr_to_hex(&vk.transcript_repr());
    match params_hash {
        Some(h) => format!("{digest}:{h}"),
        None => digest,
    }
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
        let bad = |reason: String| VerifyError::Format {
            what: "proof file".into(),
            reason,
        };
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
        check_json_format(&v, PROOF_FORMAT, "proof file")?;
        serde_json::from_value(v).map_err(|e| bad(e.to_string()))
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
        let bytes = self
            .proof
            .strip_prefix("0x")
            .and_then(|h| hex::decode(h).ok())
            .ok_or("the proof bytes are not 0x-hex")?;
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
    fn field_hex_round_trips() {
        let x = Fr::from(123456789u64);
        assert_eq!(fr_from_hex(&fr_to_hex(&x)), Some(x));
        assert_eq!(fr_from_hex(&fr_to_hex(&-x)), Some(-x));
        assert_eq!(fr_from_hex("0x12"), None);
        assert_eq!(fr_from_hex(&format!("0x{}", "ff".repeat(32))), None);
    }
}
