//! A capability certificate as one EVM call: `CertificateVerifier`, generated for a
//! certificate circuit's key, takes every batch proof of a certificate (each the calldata
//! of `zkinfer encode-calldata`, in dataset order), has the key's `Halo2Verifier` check
//! each, and returns what they prove together, computed on chain exactly as the native
//! verifier computes it (`zkinfer_verifier::certificate::claim`): the weights hash, the
//! dataset id (Keccak-256 of the key's packing prefix, the number of batches and each
//! batch's input hash, little-endian), the number of samples and the sum of the proven
//! counts.
//!
//! The weights hash is pinned by `Halo2Verifier` itself (it reverts on a proof of other
//! weights), so the contract pair binds the whole model id.

use sha3::{Digest, Keccak256};
use zkinfer_circuits::{InputMode, OutputMode, ParamsMode};
use zkinfer_verifier::certificate::{dataset_id_prefix, MAX_BATCHES};
use zkinfer_verifier::VerifierKey;

use crate::solc::{Bytecode, Solc};
use crate::split::unexpected;
use crate::EvmError;

/// The certificate contract of a certificate key, compiled.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct CertificateContract {
    /// `contract CertificateVerifier { … }`, without license or pragma.
    pub code: String,
    pub bytecode: Bytecode,
}

/// Where a certificate batch's public values sit in its calldata (32-byte words; the
/// weights hash is word 0).
const INPUT_HASH_WORD: usize = 1;
const COUNT_WORD: usize = 2;

/// The source of `CertificateVerifier` for `key`, whose verifier takes calldata of
/// `calldata_len` bytes; `None` when the key is not a certificate circuit's.
pub fn certificate_code(
    key: &VerifierKey,
    calldata_len: usize,
) -> Result<Option<String>, EvmError> {
    let info = &key.info;
    let Some(spec) = &info.certificate else {
        return Ok(None);
    };
    let vis = info.visibility();
    if vis.params != ParamsMode::Hashed
        || vis.input != InputMode::Hashed
        || vis.output != OutputMode::Public
        || info.output_len() != 1
    {
        return Err(EvmError::Generate(format!(
            "a certificate circuit's statement is weights hashed, input hashed and one public \
             count; this key's is {vis} with {} outputs",
            info.output_len()
        )));
    }
    let weights_hash = info
        .params_hash
        .as_deref()
        .ok_or_else(|| unexpected("a certificate key without a weights hash"))?;
    // The count is an integer at the output's scale: `count · 2^scale`.
    let scale = u32::try_from(info.output_scale)
        .ok()
        .filter(|&s| s < 128)
        .ok_or_else(|| {
            EvmError::Generate(format!(
                "the certificate's count has scale {}; the contract reads counts of scale 0 to 127",
                info.output_scale
            ))
        })?;
    let unit = format!("{:#x}", 1u128 << scale);
    let prefix = hex::encode(dataset_id_prefix(info, spec));
    let word = |w: usize| format!("{}:{}", 32 * w, 32 * w + 32);
    let (hash_at, count_at) = (word(INPUT_HASH_WORD), word(COUNT_WORD));
    if calldata_len < 32 * (COUNT_WORD + 1) {
        return Err(unexpected(
            "a certificate verifier's calldata shorter than its public values",
        ));
    }
    let batch = spec.batch;
    Ok(Some(format!(
        r#"/// zkinfer's capability certificate of model `{model}` (model id {model_id}):
/// `certify(batches)` has the model's Halo2Verifier check every batch proof and returns
/// "the model with this weights hash classifies `correct` of the `samples` samples of
/// dataset `dataset` correctly", each number computed here from the verified proofs.
contract CertificateVerifier {{
    /// The certificate circuit's Halo2Verifier: its constants are the key's, and it
    /// reverts on a proof of another weights hash.
    address public immutable verifier;
    uint256 public constant WEIGHTS_HASH = {weights_hash};
    uint256 public constant BATCH = {batch};

    constructor(address halo2Verifier) {{
        require(halo2Verifier.code.length > 0, "zkinfer: the verifier is not a contract");
        verifier = halo2Verifier;
    }}

    /// `batches`: the calldata of each batch proof (`zkinfer encode-calldata`), in dataset
    /// order. Reverts unless every one verifies.
    function certify(bytes[] calldata batches)
        external
        view
        returns (uint256 weightsHash, bytes32 dataset, uint256 samples, uint256 correct)
    {{
        uint256 n = batches.length;
        require(n > 0 && n <= {max_batches}, "zkinfer: a certificate has 1 to {max_batches} batches");
        // The dataset id's preimage: the key's packing prefix, n (u64, little-endian),
        // then each batch's input hash as 32 little-endian bytes.
        bytes memory prefix = hex"{prefix}";
        uint256 p = prefix.length;
        bytes memory preimage = new bytes(p + 8 + 32 * n);
        for (uint256 i = 0; i < p; i++) {{
            preimage[i] = prefix[i];
        }}
        for (uint256 i = 0; i < 8; i++) {{
            preimage[p + i] = bytes1(uint8(n >> (8 * i)));
        }}
        for (uint256 i = 0; i < n; i++) {{
            bytes calldata b = batches[i];
            require(b.length == {calldata_len}, "zkinfer: a batch is not the calldata of one proof");
            (bool ok, ) = verifier.staticcall(b);
            require(ok, "zkinfer: a batch proof does not verify");
            uint256 q = uint256(bytes32(b[{count_at}]));
            require(q % {unit} == 0 && q / {unit} <= BATCH, "zkinfer: a proven count is not a whole number within the batch");
            correct += q / {unit};
            uint256 h = littleEndian(uint256(bytes32(b[{hash_at}])));
            uint256 at = p + 8 + 32 * i;
            assembly {{
                mstore(add(add(preimage, 0x20), at), h)
            }}
        }}
        return (WEIGHTS_HASH, keccak256(preimage), BATCH * n, correct);
    }}

    /// The 32 bytes of `v` in reverse order.
    function littleEndian(uint256 v) internal pure returns (uint256) {{
        v = ((v & 0xff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00) >> 8)
            | ((v & 0x00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff) << 8);
        v = ((v & 0xffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000) >> 16)
            | ((v & 0x0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff) << 16);
        v = ((v & 0xffffffff00000000ffffffff00000000ffffffff00000000ffffffff00000000) >> 32)
            | ((v & 0x00000000ffffffff00000000ffffffff00000000ffffffff00000000ffffffff) << 32);
        v = ((v & 0xffffffffffffffff0000000000000000ffffffffffffffff0000000000000000) >> 64)
            | ((v & 0x0000000000000000ffffffffffffffff0000000000000000ffffffffffffffff) << 64);
        return (v >> 128) | (v << 128);
    }}
}}
"#,
        model = info.model,
        model_id = key.model_id(),
        max_batches = MAX_BATCHES,
    )))
}

/// Compiles `code` ([`certificate_code`]).
pub(crate) fn compile(code: String, solc: &Solc) -> Result<CertificateContract, EvmError> {
    let source = format!("{}\n{code}", crate::split::PRAGMA);
    let bytecode = solc
        .compile(&[(source, "CertificateVerifier")])?
        .pop()
        .ok_or_else(|| EvmError::Solc("the compiler returned no CertificateVerifier".into()))?;
    Ok(CertificateContract { code, bytecode })
}

/// What `CertificateVerifier.certify` returned.
#[derive(Clone, Debug, PartialEq)]
pub struct EvmClaim {
    /// `0x`-hex, 32 bytes, as the native verifier writes field elements.
    pub weights_hash: String,
    pub dataset: String,
    pub samples: u64,
    pub correct: u64,
}

/// The ABI call `certify(bytes[] batches)`.
pub fn certify_calldata(batches: &[Vec<u8>]) -> Vec<u8> {
    let word = |v: usize| {
        let mut w = [0u8; 32];
        w[24..].copy_from_slice(&(v as u64).to_be_bytes());
        w
    };
    let padded = |b: &[u8]| 32 + b.len().div_ceil(32) * 32;
    let mut out = Keccak256::digest(b"certify(bytes[])")[..4].to_vec();
    out.extend(word(0x20));
    out.extend(word(batches.len()));
    // Each element's offset, from the start of the offsets.
    let mut at = 32 * batches.len();
    for b in batches {
        out.extend(word(at));
        at += padded(b);
    }
    for b in batches {
        out.extend(word(b.len()));
        out.extend(b);
        out.resize(out.len() + (padded(b) - 32 - b.len()), 0);
    }
    out
}

/// Decodes `certify`'s four return words; `None` unless exactly that.
pub(crate) fn decode_claim(out: &[u8]) -> Option<EvmClaim> {
    if out.len() != 128 {
        return None;
    }
    let small = |w: &[u8]| -> Option<u64> {
        w[..24]
            .iter()
            .all(|&b| b == 0)
            .then(|| w[24..].try_into().ok().map(u64::from_be_bytes))
            .flatten()
    };
    Some(EvmClaim {
        weights_hash: format!("0x{}", hex::encode(&out[..32])),
        dataset: format!("0x{}", hex::encode(&out[32..64])),
        samples: small(&out[64..96])?,
        correct: small(&out[96..128])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certify_calldata_is_the_abi_encoding_of_bytes_arrays() {
        let data = certify_calldata(&[vec![1, 2, 3], vec![4; 33]]);
        let word = |i: usize| hex::encode(&data[4 + 32 * i..4 + 32 * i + 32]);
        let int = |v: u8| format!("{}{v:02x}", "00".repeat(31));
        assert_eq!(
            hex::encode(&data[..4]),
            hex::encode(&Keccak256::digest(b"certify(bytes[])")[..4])
        );
        assert_eq!(word(0), int(0x20));
        assert_eq!(word(1), int(2));
        // Offsets from the first offset word: 2 words of offsets, then 1 + 1 words.
        assert_eq!(word(2), int(0x40));
        assert_eq!(word(3), int(0x80));
        assert_eq!(word(4), int(3));
        assert_eq!(&data[4 + 32 * 5..4 + 32 * 5 + 4], &[1, 2, 3, 0]);
        assert_eq!(word(6), int(33));
        assert_eq!(data.len(), 4 + 32 * 9);
    }

    #[test]
    fn a_claim_is_four_words_with_small_counts() {
        let mut out = vec![0u8; 128];
        out[31] = 7;
        out[63] = 9;
        out[95] = 10;
        out[127] = 8;
        let c = decode_claim(&out).unwrap();
        assert_eq!((c.samples, c.correct), (10, 8));
        assert!(c.weights_hash.ends_with("07") && c.dataset.ends_with("09"));
        out[64] = 1;
        assert_eq!(decode_claim(&out), None);
        assert_eq!(decode_claim(&out[..96]), None);
    }
}
