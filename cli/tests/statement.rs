//! The model id binds the whole verifying statement (issue 13): one regression test per
//! attack that was reproduced against the key and proof files, each rejected with exit 1
//! (an invalid proof) or 2 (an unusable file) and a message that says what is wrong;
//! and keys from a snarkjs powers-of-tau ceremony, natively and in the EVM.
//!
//! The model is mlp_tiny at 8 bits (k 9), so that a powers-of-tau file of power 10 made
//! with snarkjs in seconds serves it (`scripts/ptau/make-ptau.sh`).

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{code, edit_header, ok, s, stderr, stdout, vk_parts, zkinfer};
use zkinfer_tests::shared_models;

/// Two key directories of one compiled circuit, set up from the development SRS (`dev`)
/// and from a snarkjs ceremony (`ptau`), each with a proof of the same input.
struct Fixture {
    root: PathBuf,
    dev: PathBuf,
    ptau: PathBuf,
    dev_id: String,
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn input() -> PathBuf {
    shared_models().join("mlp_tiny.input.json")
}

fn model_id(dir: &Path) -> String {
    ok(&["model-id", s(dir)]).trim().to_string()
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("statement");
        let _ = std::fs::remove_dir_all(&root);
        let ptau_file = workspace().join("target/ptau/pot10.ptau");
        let made = std::process::Command::new(workspace().join("scripts/ptau/make-ptau.sh"))
            .args([s(&ptau_file), "10"])
            .status()
            .expect("runs scripts/ptau/make-ptau.sh (Node and npm)");
        assert!(made.success(), "making the .ptau file failed");
        let onnx = shared_models().join("mlp_tiny.onnx");
        let dev = root.join("dev");
        let ptau = root.join("ptau");
        for (dir, srs) in [
            (&dev, vec!["--dev-srs"]),
            (&ptau, vec!["--srs", s(&ptau_file)]),
        ] {
            ok(&[
                "compile",
                s(&onnx),
                "--calibration",
                s(&input()),
                "--out",
                s(dir),
                "--bits",
                "8",
            ]);
            let mut setup = vec!["setup", s(dir)];
            setup.extend(srs);
            let out = ok(&setup);
            assert!(out.contains("srs       fingerprint 0x"), "{out}");
            let proof = dir.join("proof.json");
            ok(&[
                "prove",
                s(dir),
                "--input",
                s(&input()),
                "--proof",
                s(&proof),
                "--engine",
                "cpu",
            ]);
        }
        let dev_id = model_id(&dev);
        Fixture {
            root,
            dev,
            ptau,
            dev_id,
        }
    })
}

/// A copy of `from`'s key directory (vk and proof) under `name`, for tampering.
fn copy(from: &Path, name: &str) -> PathBuf {
    let to = fixture().root.join(name);
    std::fs::create_dir_all(&to).unwrap();
    for f in ["vk", "proof.json", "circuit.json"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
    to
}

/// Offset of `g2` in a key file (after k and g; `s·g2` follows it, 128 bytes each).
fn g2_at(vk: &[u8]) -> usize {
    vk_parts(vk).1 + 4 + 64
}

fn edit_proof(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("proof.json");
    let mut p: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    f(&mut p);
    std::fs::write(&path, serde_json::to_vec(&p).unwrap()).unwrap();
}

/// `verify` (and, with `evm`, `verify-evm`) of `dir`'s proof: the exit code, after
/// checking that nothing panicked and the output says `why`.
fn verdict(cmd: &str, dir: &Path, pin: Option<&str>, why: &str) -> i32 {
    let proof = dir.join("proof.json");
    let mut args = vec![cmd, s(dir), "--proof", s(&proof)];
    if let Some(id) = pin {
        args.extend(["--model-id", id]);
    }
    let out = zkinfer(&args);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!text.contains("panicked"), "{cmd}: {text}");
    assert!(text.contains(why), "{cmd}: expected `{why}` in:\n{text}");
    code(&out)
}

#[test]
fn attack_1_kzg_points_of_the_identity_are_refused() {
    let f = fixture();
    let dir = copy(&f.dev, "identity-points");
    let mut vk = std::fs::read(dir.join("vk")).unwrap();
    let at = g2_at(&vk);
    // g2 and s·g2 as the G2 identity: the pairing would accept any proof.
    vk[at..at + 256].fill(0);
    std::fs::write(dir.join("vk"), vk).unwrap();
    edit_proof(&dir, |p| p["output"]["values"][0] = 1.5.into());
    assert_eq!(verdict("verify", &dir, None, "KZG point"), 2);
    assert_eq!(verdict("verify-evm", &dir, None, "KZG point"), 2);
}

#[test]
fn attack_1_another_ceremonys_points_are_another_model_id() {
    let f = fixture();
    // The same circuit set up from another SRS is another model id: pinning the id pins
    // the ceremony, natively and for the contract compiled from the key.
    assert_ne!(model_id(&f.ptau), f.dev_id);
    assert_eq!(verdict("verify", &f.ptau, None, "valid"), 0);
    assert_eq!(
        verdict("verify", &f.ptau, Some(&f.dev_id), "not the required"),
        1
    );
    assert_eq!(
        verdict("verify-evm", &f.ptau, Some(&f.dev_id), "not the required"),
        1
    );
    // The dev key with the ceremony's s·g2 spliced in: a usable key, another model id.
    let dir = copy(&f.dev, "spliced-points");
    let mut vk = std::fs::read(dir.join("vk")).unwrap();
    let other = std::fs::read(f.ptau.join("vk")).unwrap();
    let (at, from) = (g2_at(&vk) + 128, g2_at(&other) + 128);
    vk[at..at + 128].copy_from_slice(&other[from..from + 128]);
    std::fs::write(dir.join("vk"), vk).unwrap();
    let spliced = model_id(&dir);
    assert_ne!(spliced, f.dev_id);
    assert_eq!(
        verdict("verify", &dir, Some(&f.dev_id), "not the required"),
        1
    );
    // Relabelled to the spliced key's id, the proof is checked and fails the pairing.
    edit_proof(&dir, |p| p["model_id"] = spliced.clone().into());
    assert_eq!(verdict("verify", &dir, None, "does not verify"), 1);
}

#[test]
fn attack_2_a_rewritten_header_is_another_model_id() {
    let f = fixture();
    // Input [1, 16] and output [1, 4] re-split as [1, 18] and [1, 2]: the same number of
    // public values, two of the outputs now read as inputs.
    let dir = copy(&f.dev, "header");
    edit_header(&dir, |h| {
        h["input_shape"] = serde_json::json!([1, 18]);
        h["output_shape"] = serde_json::json!([1, 2]);
    });
    let forged = model_id(&dir);
    assert_ne!(forged, f.dev_id);
    assert_eq!(verdict("verify", &dir, None, "is for model id"), 1);
    edit_proof(&dir, |p| {
        p["model_id"] = forged.clone().into();
        let values = p["output"]["values"].as_array().unwrap()[2..].to_vec();
        p["output"]["values"] = values.into();
        p["output"]["shape"] = serde_json::json!([1, 2]);
    });
    assert_eq!(
        verdict("verify", &dir, Some(&f.dev_id), "not the required"),
        1
    );
    assert_eq!(
        verdict("verify-evm", &dir, Some(&f.dev_id), "not the required"),
        1
    );
    // Every field of the header is in the id.
    for (field, value) in [
        ("model", serde_json::json!("other")),
        ("input_scale", serde_json::json!(0)),
        ("output_scale", serde_json::json!(0)),
        ("input_bits", serde_json::json!(12)),
    ] {
        let dir = copy(&f.dev, &format!("header-{field}"));
        edit_header(&dir, |h| h[field] = value);
        assert_ne!(model_id(&dir), f.dev_id, "{field} is not bound");
    }
    // A field the format does not have is refused, not ignored.
    let dir = copy(&f.dev, "header-unknown");
    edit_header(&dir, |h| h["note"] = "ignored?".into());
    assert_eq!(verdict("verify", &dir, None, "unknown field"), 2);
}

/// How the circuit range-checks (`--range`: limb width, table banks) is part of the
/// layout, which the header carries: a key whose header claims other range checks is
/// another model id, and its proof does not verify (the constraint system it would
/// rebuild is another one).
#[test]
fn attack_2_other_range_checks_in_the_header_are_refused() {
    let f = fixture();
    let header = vk_parts(&std::fs::read(f.dev.join("vk")).unwrap()).0;
    let limb_bits = header["layout"]["limb_bits"].as_u64().unwrap();
    assert!(
        limb_bits > 0,
        "the 8-bit mlp_tiny is range-checked in limbs"
    );
    for (field, value) in [("limb_bits", 0), ("limb_bits", limb_bits + 1), ("banks", 2)] {
        let dir = copy(&f.dev, &format!("range-{field}-{value}"));
        edit_header(&dir, |h| h["layout"][field] = value.into());
        let out = zkinfer(&["verify", s(&dir), "--proof", s(&dir.join("proof.json"))]);
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(!text.contains("panicked"), "{field} {value}: {text}");
        assert_ne!(code(&out), 0, "{field} {value}: {text}");
        let id = zkinfer(&["model-id", s(&dir)]);
        assert!(
            code(&id) != 0 || stdout(&id).trim() != f.dev_id,
            "{field} {value} is not bound"
        );
    }
}

#[test]
fn attack_3_a_public_input_outside_the_quantized_width_is_invalid() {
    let f = fixture();
    let dir = copy(&f.dev, "input-2-62");
    edit_proof(&dir, |p| {
        p["instances"][0] = format!("0x{:064x}", 1u64 << 62).into()
    });
    assert_eq!(
        verdict("verify", &dir, None, "is not an integer in [-128, 127]"),
        1
    );
    assert_eq!(
        verdict("verify-evm", &dir, None, "is not an integer in [-128, 127]"),
        1
    );
}

#[test]
fn attack_4_an_honest_prover_cannot_prove_a_private_input_outside_the_width() {
    // The circuit range-checks a private input (the cheat itself, a field element that
    // is no such integer, fails MockProver: circuits' tests); here the prover refuses an
    // input outside the calibrated range with the reason.
    let f = fixture();
    let dir = f.root.join("private");
    ok(&[
        "compile",
        s(&shared_models().join("mlp_tiny.onnx")),
        "--calibration",
        s(&input()),
        "--out",
        s(&dir),
        "--bits",
        "8",
        "--input",
        "private",
    ]);
    ok(&["setup", s(&dir), "--dev-srs"]);
    let x: serde_json::Value = serde_json::from_slice(&std::fs::read(input()).unwrap()).unwrap();
    let big: Vec<f64> = x["input_data"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() * 1000.0)
        .collect();
    let file = dir.join("big.json");
    std::fs::write(
        &file,
        serde_json::json!({ "input_data": [big] }).to_string(),
    )
    .unwrap();
    let out = zkinfer(&[
        "prove",
        s(&dir),
        "--input",
        s(&file),
        "--proof",
        s(&dir.join("p.json")),
        "--engine",
        "cpu",
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("outside the 8-bit range"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn attack_5_a_header_whose_sizes_overflow_is_an_error_not_a_panic() {
    let f = fixture();
    for (name, shape) in [
        ("overflow", serde_json::json!([1u64 << 40, 1u64 << 40])),
        ("huge", serde_json::json!([1u64 << 30])),
        ("empty", serde_json::json!([0])),
    ] {
        let dir = copy(&f.dev, &format!("shape-{name}"));
        edit_header(&dir, |h| h["input_shape"] = shape);
        assert_eq!(verdict("verify", &dir, None, "`input_shape`"), 2);
        assert_eq!(verdict("verify-evm", &dir, None, "`input_shape`"), 2);
    }
}

#[test]
fn attack_6_a_public_value_that_is_not_canonical_is_invalid() {
    // x + r reads as x modulo r; the file must carry x itself. (The contract's own check
    // is in tests/evm.rs.)
    let f = fixture();
    let dir = copy(&f.dev, "non-canonical");
    let r = "30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001";
    edit_proof(&dir, |p| {
        let last = p["instances"].as_array().unwrap().len() - 1;
        let x = p["instances"][last].as_str().unwrap().to_string();
        p["instances"][last] = add_hex(&x, r).into();
    });
    assert_eq!(verdict("verify", &dir, None, "canonical"), 1);
    assert_eq!(verdict("verify-evm", &dir, None, "canonical"), 1);
}

/// `0x`-hex sum of two 256-bit big-endian hex numbers (no overflow past 256 bits here).
fn add_hex(a: &str, b: &str) -> String {
    let digits = |h: &str| -> Vec<u8> {
        let h = format!("{:0>64}", h.trim_start_matches("0x"));
        (0..32)
            .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    };
    let (a, b) = (digits(a), digits(b));
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in (0..32).rev() {
        let v = a[i] as u16 + b[i] as u16 + carry;
        out[i] = v as u8;
        carry = v >> 8;
    }
    format!(
        "0x{}",
        out.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

#[test]
fn attack_7_the_stated_output_must_be_the_proven_one_exactly() {
    let f = fixture();
    let dir = copy(&f.dev, "output-step");
    // Far below 1e-9, the old tolerance: at output scales of 30 and more that was a step.
    edit_proof(&dir, |p| {
        let v = p["output"]["values"][0].as_f64().unwrap();
        p["output"]["values"][0] = (v + 1e-12).into();
    });
    assert_eq!(
        verdict("verify", &dir, None, "is not the proven public output"),
        1
    );
}

#[test]
fn attack_8_development_keys_verify_with_a_warning_and_ceremony_keys_without() {
    let f = fixture();
    let warning = "insecure development SRS";
    let out = zkinfer(&["verify", s(&f.dev), "--proof", s(&f.dev.join("proof.json"))]);
    assert_eq!(code(&out), 0);
    assert!(stderr(&out).contains(warning), "{}", stderr(&out));
    assert!(stderr(&out).contains("anyone can forge"));
    let out = zkinfer(&[
        "verify",
        s(&f.ptau),
        "--proof",
        s(&f.ptau.join("proof.json")),
    ]);
    assert_eq!(code(&out), 0);
    assert!(!stderr(&out).contains(warning), "{}", stderr(&out));
    // The fingerprint is the ceremony's, whatever k: the same in both listings.
    let fingerprint = |text: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix("srs       fingerprint "))
            .map(str::to_string)
            .unwrap()
    };
    assert_ne!(
        fingerprint(&stdout(&out)),
        fingerprint(&ok(&[
            "verify",
            s(&f.dev),
            "--proof",
            s(&f.dev.join("proof.json"))
        ]))
    );
}

#[test]
fn a_ceremony_key_verifies_natively_and_in_the_evm_pinned_to_its_id() {
    let f = fixture();
    let id = model_id(&f.ptau);
    assert_eq!(verdict("verify", &f.ptau, Some(&id), "valid"), 0);
    assert_eq!(verdict("verify-evm", &f.ptau, Some(&id), "accepted"), 0);
    // Its proof, altered, is rejected by both.
    let dir = copy(&f.ptau, "ptau-tampered");
    edit_proof(&dir, |p| {
        let hex = p["proof"].as_str().unwrap().to_string();
        let i = hex.len() / 2;
        let c = if &hex[i..i + 1] == "0" { "1" } else { "0" };
        p["proof"] = format!("{}{}{}", &hex[..i], c, &hex[i + 1..]).into();
    });
    assert_eq!(verdict("verify", &dir, Some(&id), "does not verify"), 1);
    assert_eq!(verdict("verify-evm", &dir, Some(&id), "reverted"), 1);
    // export-solidity names the key it compiled, and refuses another.
    let sol = f.root.join("Verifier.sol");
    let out = ok(&[
        "export-solidity",
        s(&f.ptau),
        "--out",
        s(&sol),
        "--model-id",
        &id,
    ]);
    assert!(out.contains(&id));
    assert!(std::fs::read_to_string(&sol).unwrap().contains(&id));
    let out = zkinfer(&[
        "export-solidity",
        s(&f.ptau),
        "--out",
        s(&sol),
        "--model-id",
        &f.dev_id,
    ]);
    assert_eq!(code(&out), 2);
}

#[test]
fn keys_of_the_previous_format_are_refused_with_the_reason() {
    let f = fixture();
    let dir = copy(&f.dev, "old-format");
    let mut vk = std::fs::read(dir.join("vk")).unwrap();
    vk[8..12].copy_from_slice(&2u32.to_le_bytes());
    std::fs::write(dir.join("vk"), vk).unwrap();
    assert_eq!(verdict("verify", &dir, None, "format version 2"), 2);
}
