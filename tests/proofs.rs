//! Real proofs (KZG, SHPLONK) on a shared model, and the ways a proof must fail.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, OnceLock};

use zkinfer_circuits::fe;
use zkinfer_circuits::halo2_proofs::poly::commitment::Params;
use zkinfer_prover::{dev_srs, read_halo2_params, setup, ProverKey};
use zkinfer_qir::QOp;
use zkinfer_tests::{prove_shared, Proven};
use zkinfer_verifier::artifact::FORMAT_VERSION;
use zkinfer_verifier::{
    fr_from_hex, fr_to_hex, verify, ProofFile, Verdict, VerifierKey, VerifyError,
};

fn fixture() -> &'static Proven {
    static F: OnceLock<Proven> = OnceLock::new();
    F.get_or_init(|| prove_shared("mlp_tiny"))
}

fn is_invalid(v: Verdict) -> bool {
    matches!(v, Verdict::Invalid { .. })
}

#[test]
fn valid_proof_verifies_and_states_the_interpreters_output() {
    let f = fixture();
    let Verdict::Valid { public } = verify(&f.vk, &f.proof) else {
        panic!("valid proof rejected")
    };
    let output = public.output.unwrap();
    let trace = f.model.run(&f.input).unwrap();
    let scale = f.model.value(f.model.output).scale;
    let expected: Vec<f64> = trace
        .get(f.model.output)
        .iter()
        .map(|&v| zkinfer_qir::dequantize(v, scale))
        .collect();
    assert_eq!(output, expected);
}

#[test]
fn keys_and_proofs_round_trip_through_their_files() {
    let f = fixture();
    let vk = VerifierKey::from_bytes(&f.vk.to_bytes()).unwrap();
    assert_eq!(vk.model_id(), f.vk.model_id());
    let proof = ProofFile::parse(&f.proof.to_json()).unwrap();
    assert!(matches!(verify(&vk, &proof), Verdict::Valid { .. }));
    let pk = ProverKey::from_bytes(&f.pk.to_bytes()).unwrap();
    assert_eq!(pk.info, f.info);
}

#[test]
fn every_flipped_proof_byte_region_is_rejected() {
    let f = fixture();
    let bytes = hex_bytes(&f.proof.proof);
    // First commitment, a middle evaluation, the final opening.
    for at in [0, 31, bytes.len() / 2, bytes.len() - 1] {
        let mut b = bytes.clone();
        b[at] ^= 0x01;
        let mut p = f.proof.clone();
        p.proof = format!("0x{}", hex(&b));
        assert!(is_invalid(verify(&f.vk, &p)), "flip at byte {at} accepted");
    }
}

#[test]
fn altered_public_output_or_input_is_rejected() {
    let f = fixture();
    let n = f.proof.instances.len();
    for (at, fix_output) in [(n - 1, true), (0, false)] {
        let mut p = f.proof.clone();
        let x = fr_from_hex(&p.instances[at]).unwrap();
        p.instances[at] = fr_to_hex(&(x + fe(1)));
        if fix_output {
            // Keep the stated output consistent so only the cryptography can catch it.
            let stated = p.output.as_mut().unwrap();
            let m = stated.values.len();
            stated.values[m - 1] += 2f64.powi(-stated.scale);
        }
        assert!(
            is_invalid(verify(&f.vk, &p)),
            "altered instance {at} accepted"
        );
    }
    // The stated output must match the instances.
    let mut p = f.proof.clone();
    p.output.as_mut().unwrap().values[0] += 1.0;
    assert!(is_invalid(verify(&f.vk, &p)));
}

#[test]
fn proof_for_one_model_fails_under_another_models_key() {
    let f = fixture();
    let mut other = (*f.model).clone();
    if let Some(QOp::Linear(l)) = other.ops.iter_mut().find(|op| matches!(op, QOp::Linear(_))) {
        l.weight[0] += 1;
    }
    let other = Arc::new(other);
    let params = dev_srs(f.info.layout.k);
    let (_, vk_b) = setup(other, f.info.clone(), &params).unwrap();
    assert_ne!(
        vk_b.model_id(),
        f.vk.model_id(),
        "weights must change the model id"
    );
    assert!(is_invalid(verify(&vk_b, &f.proof)));
    // Even with the model id relabelled, the cryptography must reject it.
    let mut p = f.proof.clone();
    p.model_id = vk_b.model_id();
    assert!(is_invalid(verify(&vk_b, &p)));
}

/// x → exp(x·x / 4) on 6 elements, 8-bit activations, the exponential's table holding
/// inputs of `in_bits` bits (0: every 8-bit value).
fn exp_of_square(in_bits: u32) -> zkinfer_qir::QModel {
    use zkinfer_qir::{Activation, Func, Mul, QModel, QValue, Rescale, TableSpec, ValueId};
    let v = |name: &str| QValue {
        name: name.into(),
        shape: vec![6],
        scale: 0,
    };
    QModel {
        name: "exp_of_square".into(),
        values: vec![v("x"), v("sq"), v("e")],
        input: ValueId(0),
        output: ValueId(2),
        ops: vec![
            QOp::Mul(Mul {
                a: ValueId(0),
                b: ValueId(0),
                output: ValueId(1),
            }),
            QOp::Rescale(Rescale {
                input: ValueId(1),
                output: ValueId(2),
                shift: 2,
                act: Activation::Table(0),
            }),
        ],
        act_bits: 8,
        tables: vec![TableSpec {
            func: Func::Exp,
            in_scale: 4,
            out_scale: 3,
            in_bits,
        }],
    }
}

/// A function table's input width (`TableSpec::in_bits`, a field of the compiled model)
/// is bound by the key: the same model and layout with a table of every activation value
/// is another model id, and its proof of an input the narrower table does not hold —
/// valid under its own key — is refused under the narrower model's key, relabelled or not.
#[test]
fn a_function_tables_input_width_is_bound_by_the_key() {
    let (narrow, full) = (Arc::new(exp_of_square(5)), Arc::new(exp_of_square(0)));
    // The layout of the full table, for both: only the table's contents differ.
    let info = zkinfer_tests::info_for(&full, Default::default());
    let params = dev_srs(info.layout.k);
    let (_, vk_narrow) = setup(narrow.clone(), info.clone(), &params).unwrap();
    let (pk_full, vk_full) = setup(full.clone(), info.clone(), &params).unwrap();
    assert_ne!(vk_narrow.model_id(), vk_full.model_id());
    // 9 · 9 / 4 = 20: an 8-bit value, not a 5-bit one.
    let input = vec![-5, -3, 0, 2, 4, 9];
    assert!(narrow.run(&input).is_err());
    let trace = Arc::new(full.run(&input).unwrap());
    let proof = zkinfer_pipeline::prove(
        &zkinfer_prover::CpuEngine,
        full.clone(),
        &pk_full,
        &params,
        trace,
    )
    .unwrap();
    assert!(matches!(verify(&vk_full, &proof), Verdict::Valid { .. }));
    assert!(is_invalid(verify(&vk_narrow, &proof)));
    let mut relabelled = proof.clone();
    relabelled.model_id = vk_narrow.model_id();
    assert!(is_invalid(verify(&vk_narrow, &relabelled)));
}

#[test]
fn truncated_empty_and_random_proofs_are_rejected() {
    let f = fixture();
    let bytes = hex_bytes(&f.proof.proof);
    let mut seed = 0x1234_5678u64;
    let random: Vec<u8> = (0..bytes.len())
        .map(|_| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            (seed >> 56) as u8
        })
        .collect();
    for b in [&bytes[..bytes.len() / 2], &[][..], &random[..]] {
        let mut p = f.proof.clone();
        p.proof = format!("0x{}", hex(b));
        assert!(is_invalid(verify(&f.vk, &p)));
    }
    let mut p = f.proof.clone();
    p.instances.pop();
    assert!(is_invalid(verify(&f.vk, &p)));
    let mut p = f.proof.clone();
    p.proof = "zz".into();
    assert!(is_invalid(verify(&f.vk, &p)));
}

#[test]
fn other_format_versions_are_errors_not_verdicts() {
    let f = fixture();
    let mut vk = f.vk.to_bytes();
    vk[8] = 0;
    assert!(matches!(
        VerifierKey::from_bytes(&vk),
        Err(VerifyError::Version { found: 0, .. })
    ));
    assert!(VerifierKey::from_bytes(&vk[..100]).is_err());
    let json = f
        .proof
        .to_json()
        .replace(&format!("\"version\": {FORMAT_VERSION}"), "\"version\": 0");
    assert!(matches!(
        ProofFile::parse(&json),
        Err(VerifyError::Version { .. })
    ));
    assert!(ProofFile::parse("{}").is_err());
}

#[test]
fn a_halo2_params_file_is_trimmed_to_the_circuit() {
    let f = fixture();
    let k = f.info.layout.k;
    let mut file = Vec::new();
    dev_srs(k + 1).write(&mut file).unwrap();
    let params = read_halo2_params(&file, k).unwrap();
    assert_eq!(params.k(), k);
    assert!(read_halo2_params(&file, k + 2).is_err());
    assert!(read_halo2_params(b"garbage", k).is_err());
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hex_bytes(s: &str) -> Vec<u8> {
    let s = s.trim_start_matches("0x");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The halo2 key inside a key file: its offset (after the container header, `k` and the
/// three KZG points).
fn halo2_key_at(vk: &[u8]) -> usize {
    let len = u32::from_le_bytes(vk[12..16].try_into().unwrap()) as usize;
    16 + len + 4 + 64 + 128 + 128
}

fn format_error(bytes: &[u8]) -> String {
    match VerifierKey::from_bytes(bytes) {
        Err(VerifyError::Format { reason, .. }) => reason,
        other => panic!("expected a format error, got {other:?}"),
    }
}

#[test]
fn a_halo2_key_is_checked_before_halo2_reads_it() {
    let f = fixture();
    let vk = f.vk.to_bytes();
    let at = halo2_key_at(&vk);
    // A k of 26 in the halo2 key: halo2 would build a 2^26 domain and allocate its
    // selectors (2^26 bytes each) before reading a byte of them.
    let mut big = vk.clone();
    big[at + 1..at + 5].copy_from_slice(&26u32.to_le_bytes());
    assert!(format_error(&big).contains("inconsistent sizes"));
    // Compressed selectors claimed by a short key: refused before halo2 allocates
    // `selectors × 2^k` for them.
    let mut short = vk[..at + 10].to_vec();
    short[at + 5] = 1;
    assert!(format_error(&short).contains("selectors need"));
    assert!(format_error(&vk[..vk.len() - 1]).contains("halo2 verifying key"));
    // One fixed commitment fewer (and its bytes gone): the verifier would index past it.
    let mut fewer = vk.clone();
    let n = u32::from_le_bytes(fewer[at + 6..at + 10].try_into().unwrap());
    fewer[at + 6..at + 10].copy_from_slice(&(n - 1).to_le_bytes());
    fewer.drain(at + 10..at + 10 + 64);
    let reason = format_error(&fewer);
    assert!(reason.contains("fixed"), "{reason}");
    // A byte after the key.
    let mut longer = vk.clone();
    longer.push(0);
    assert!(format_error(&longer).contains("after the halo2 verifying key"));
    // A fixed commitment off the curve.
    let mut off = vk.clone();
    off[at + 10] ^= 1;
    assert!(format_error(&off).contains("not a BN254 point"));
}
