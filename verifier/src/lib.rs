//! The native zkinfer verifier: checks a proof file against a verifying-key file.
//!
//! Malformed or tampered input is never a panic and never "valid": anything that does
//! not verify is [`Verdict::Invalid`] with the reason; unreadable files (wrong magic,
//! other format version) are [`VerifyError`]s.

pub mod artifact;
pub mod bundle;
pub mod certificate;
pub mod identity;
pub mod transcript;

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

use halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine};
use halo2_proofs::plonk::verify_proof;
use halo2_proofs::poly::kzg::commitment::{KZGCommitmentScheme, ParamsKZG};
use halo2_proofs::poly::kzg::multiopen::VerifierSHPLONK;
use halo2_proofs::poly::kzg::strategy::SingleStrategy;
use halo2_proofs::transcript::TranscriptReadBuffer;
use halo2_proofs::{SerdeCurveAffine, SerdeFormat};
use zkinfer_circuits::{fe_to_i64, InputMode, OutputMode, ParamsMode};

pub use artifact::{
    fr_from_hex, fr_to_hex, Certificate, OutputValues, ProofFile, StatementInfo, VerifierKey,
};
pub use bundle::{bundle_id, is_bundle, keys_id, verify_bundle, BundleFile};
pub use certificate::{is_certificate, verify_certificate, CertificateFile, Claim};
pub use identity::{model_id, SrsPoints, DEV_SRS_FINGERPRINT};
pub use transcript::KeccakTranscript;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("{what}: {reason}")]
    Format { what: String, reason: String },
    #[error("{what}: format version {found}, this zkinfer reads version {expected}; regenerate it with this version")]
    Version {
        what: String,
        found: u32,
        expected: u32,
    },
}

/// What a statement makes public, decoded: each field is present exactly when the
/// key's visibility makes that part public.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Public {
    pub params_hash: Option<String>,
    /// The quantized input, dequantized.
    pub input: Option<Vec<f64>>,
    pub input_hash: Option<String>,
    /// The quantized output, dequantized.
    pub output: Option<Vec<f64>>,
    pub output_hash: Option<String>,
    /// A segment's linked boundaries: the salted hashes its neighbours must match.
    pub input_link: Option<String>,
    pub output_link: Option<String>,
}

/// The outcome of checking a well-formed proof file.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// The proof is valid for these public values.
    Valid {
        public: Public,
    },
    Invalid {
        reason: String,
    },
}

thread_local! {
    /// How many [`guard`]s this thread is inside: its panics are then not printed.
    static GUARDED: Cell<u32> = const { Cell::new(0) };
}

/// Runs `f`, turning a panic inside a dependency into `None`, without printing it.
///
/// The panic hook is wrapped once, process-wide, and stays silent only for a thread
/// inside a guard: swapping the global hook around each call (as this did) raced between
/// threads, and one guard restoring another's silent hook left every later panic of the
/// process unreported.
pub fn guard<T>(f: impl FnOnce() -> T) -> Option<T> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARDED.with(Cell::get) == 0 {
                previous(info);
            }
        }));
    });
    GUARDED.with(|g| g.set(g.get() + 1));
    let r = catch_unwind(AssertUnwindSafe(f)).ok();
    GUARDED.with(|g| g.set(g.get() - 1));
    r
}

/// halo2's `ParamsKZG` from powers `g` of the secret (and their Lagrange basis, computed
/// from `g` when `None`) and the verifier's points. halo2 builds parameters only from
/// others (`from_parts` is a method), so this starts from the smallest set, read from
/// bytes.
pub fn kzg_params(
    k: u32,
    g: Vec<G1Affine>,
    g_lagrange: Option<Vec<G1Affine>>,
    points: &SrsPoints,
) -> Option<ParamsKZG<Bn256>> {
    let SrsPoints { g: g0, g2, s_g2 } = *points;
    let mut bytes = 0u32.to_le_bytes().to_vec();
    g0.write(&mut bytes, SerdeFormat::RawBytes).ok()?;
    g0.write(&mut bytes, SerdeFormat::RawBytes).ok()?;
    g2.write(&mut bytes, SerdeFormat::RawBytes).ok()?;
    s_g2.write(&mut bytes, SerdeFormat::RawBytes).ok()?;
    let one = ParamsKZG::<Bn256>::read_custom(&mut bytes.as_slice(), SerdeFormat::RawBytes).ok()?;
    (k <= 28).then(|| one.from_parts(k, g, g_lagrange, g2, s_g2))
}

/// The KZG verifier parameters (`g`, `g2`, `s·g2`) as halo2's `ParamsKZG`: halo2's KZG
/// verifier reads only g[0], g2, s_g2 and n = 2^k, so a size-1 set relabelled with `k`.
pub fn verifier_params(key: &VerifierKey) -> Option<ParamsKZG<Bn256>> {
    let g = key.srs.g;
    kzg_params(key.k, vec![g], Some(vec![g]), &key.srs)
}

/// A proof file whose statement matches the key: the public instances, the proof bytes
/// and what they state. Both the native and the EVM verifier start from this.
#[derive(Clone, Debug)]
pub struct Statement {
    pub instances: Vec<Fr>,
    pub proof: Vec<u8>,
    pub public: Public,
}

/// Checks the proof file's statement against the key (visibility, model id, weights hash,
/// number of public values, canonical encodings, a public input within the input width,
/// stated output = proven output, exactly) without checking the proof.
pub fn statement(key: &VerifierKey, proof: &ProofFile) -> Result<Statement, String> {
    let info = &key.info;
    let vis = info.visibility();
    if proof.visibility != vis {
        return Err(format!(
            "the proof's statement makes public {}; this key's makes public {vis}",
            proof.visibility
        ));
    }
    let expected = info.public_values();
    if proof.instances.len() != expected {
        return Err(format!(
            "the proof carries {} public values; this model's statement ({vis}) has {expected}",
            proof.instances.len(),
        ));
    }
    if proof.model_id != key.model_id() {
        return Err(format!(
            "the proof is for model id {}, this verifying key is model id {}",
            proof.model_id,
            key.model_id()
        ));
    }
    let (instances, bytes) = proof.public_values()?;
    let mut rest = instances.as_slice();
    let mut take = |n: usize| -> Result<&[Fr], String> {
        let (head, tail) = rest
            .split_at_checked(n)
            .ok_or("the proof carries fewer public values than its statement")?;
        rest = tail;
        Ok(head)
    };
    // A public value as the signed integer it encodes, within `[min, max]`.
    let integer = |x: &Fr, j: usize, what: &str, (min, max): (i64, i64)| {
        fe_to_i64(x)
            .filter(|v| (min..=max).contains(v))
            .ok_or(format!(
                "public {what} {j} ({}) is not an integer in [{min}, {max}], the range of \
                 this model's quantized {what}",
                fr_to_hex(x)
            ))
    };
    let mut public = Public::default();
    if vis.params == ParamsMode::Hashed {
        let h = fr_to_hex(&take(1)?[0]);
        if info.params_hash.as_deref() != Some(h.as_str()) {
            return Err(format!(
                "the proof is for weights hash {h}, this verifying key's weights hash is {}",
                info.params_hash.as_deref().unwrap_or("(none)")
            ));
        }
        public.params_hash = Some(h);
    }
    match vis.input {
        InputMode::Public => {
            let range = info.input_range();
            let input = take(info.input_len())?
                .iter()
                .enumerate()
                .map(|(j, x)| {
                    integer(x, j, "input", range)
                        .map(|q| zkinfer_qir::dequantize(q, info.input_scale))
                })
                .collect::<Result<Vec<f64>, String>>()?;
            public.input = Some(input);
        }
        InputMode::Private => {}
        InputMode::Hashed => public.input_hash = Some(fr_to_hex(&take(1)?[0])),
        InputMode::Linked => public.input_link = Some(fr_to_hex(&take(1)?[0])),
    }
    match vis.output {
        OutputMode::Public => {
            // The circuit bounds every output element (to at most 30 bits); within 2^53 a
            // dequantized integer is one f64, so the file's values must equal them exactly.
            const EXACT: i64 = 1 << 53;
            let output = take(info.output_len())?
                .iter()
                .enumerate()
                .map(|(j, x)| {
                    integer(x, j, "output", (-EXACT, EXACT))
                        .map(|q| zkinfer_qir::dequantize(q, info.output_scale))
                })
                .collect::<Result<Vec<f64>, String>>()?;
            let stated = proof
                .output
                .as_ref()
                .ok_or("the proof file states no `output`")?;
            if stated.scale != info.output_scale
                || stated.shape != info.output_shape
                || stated.values.len() != output.len()
            {
                return Err(
                    "the `output` in the file has another shape or scale than the proven output"
                        .into(),
                );
            }
            // Exact: JSON round-trips an f64.
            if let Some(j) = (0..output.len()).find(|&j| stated.values[j] != output[j]) {
                return Err(format!(
                    "the `output` value {j} in the file ({}) is not the proven public output ({})",
                    stated.values[j], output[j]
                ));
            }
            public.output = Some(output);
        }
        OutputMode::Linked => {
            if proof.output.is_some() {
                return Err(
                    "the output is a linked boundary, yet the proof file states output values"
                        .into(),
                );
            }
            public.output_link = Some(fr_to_hex(&take(1)?[0]));
        }
        OutputMode::Hashed => {
            if proof.output.is_some() {
                return Err("the output is hashed, yet the proof file states output values".into());
            }
            public.output_hash = Some(fr_to_hex(&take(1)?[0]));
        }
    }
    if !rest.is_empty() {
        return Err("the proof carries more public values than its statement".into());
    }
    Ok(Statement {
        instances,
        proof: bytes,
        public,
    })
}

/// Checks the proof's statement against the key, then the proof itself.
pub fn verify(key: &VerifierKey, proof: &ProofFile) -> Verdict {
    let invalid = |reason: String| Verdict::Invalid { reason };
    let Statement {
        instances,
        proof: bytes,
        public,
    } = match statement(key, proof) {
        Ok(s) => s,
        Err(reason) => return invalid(reason),
    };
    let Some(params) = verifier_params(key) else {
        return invalid("the verifying key's SRS points are unusable".into());
    };
    let ok = guard(|| {
        let mut transcript = KeccakTranscript::init(bytes.as_slice());
        verify_proof::<KZGCommitmentScheme<Bn256>, VerifierSHPLONK<'_, Bn256>, _, _, _>(
            &params,
            &key.vk,
            SingleStrategy::new(&params),
            &[&[&instances]],
            &mut transcript,
        )
        .map(|_| transcript.into_stream().len())
    });
    match ok {
        // One proof, one encoding: bytes the verifier never read would make the proof
        // file malleable.
        Some(Ok(0)) => Verdict::Valid { public },
        Some(Ok(rest)) => invalid(format!(
            "the proof has {rest} bytes after its end (a proof is exactly what the verifier reads)"
        )),
        Some(Err(e)) => invalid(format!("the proof does not verify: {e:?}")),
        None => invalid("the proof does not verify: malformed proof bytes".into()),
    }
}
