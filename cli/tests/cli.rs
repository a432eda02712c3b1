//! The command-line contract: artifacts, outputs and exit codes (0 valid, 1 invalid,
//! 2 error) on the shared reference models.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{code, compile_args, edit_header, ok, s, zkinfer};

use zkinfer_tests::{encode, model, node, shared_models, tract_run, value_info, value_info_any};

struct Run {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    proof: PathBuf,
}

/// compile → setup → prove → verify on a shared model; checks the proven output
/// against tract's float output within the reported fidelity.
fn pipeline(name: &str) -> Run {
    pipeline_with(name, &[])
}

/// [`pipeline`] with more `compile` flags.
fn pipeline_with(name: &str, flags: &[&str]) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let models = shared_models();
    let onnx = models.join(format!("{name}.onnx"));
    let input = models.join(format!("{name}.input.json"));
    let dir = tmp.path().join(name);
    let proof = tmp.path().join("proof.json");
    let mut args = vec![
        "compile",
        s(&onnx),
        "--calibration",
        s(&input),
        "--out",
        s(&dir),
    ];
    args.extend_from_slice(flags);
    let compiled = ok(&args);
    assert!(
        compiled.contains("k ") && compiled.contains("fidelity"),
        "{compiled}"
    );
    let out = zkinfer(&["setup", s(&dir), "--dev-srs"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("anyone can forge proofs"));
    let proved = ok(&["prove", s(&dir), "--input", s(&input), "--proof", s(&proof)]);
    assert!(
        proved.contains("output") && proved.contains("prove"),
        "{proved}"
    );
    assert!(ok(&["verify", s(&dir), "--proof", s(&proof)]).starts_with("valid"));

    // The proven output is the float model's within the fidelity compile reported.
    let circuit: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("circuit.json")).unwrap()).unwrap();
    let max_err = circuit["fidelity"]["max_abs_error"].as_f64().unwrap();
    let p: serde_json::Value = serde_json::from_slice(&std::fs::read(&proof).unwrap()).unwrap();
    let proven: Vec<f64> = p["output"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let x: serde_json::Value = serde_json::from_slice(&std::fs::read(&input).unwrap()).unwrap();
    let x: Vec<f32> = x["input_data"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let shape: Vec<usize> = circuit["model"]["values"][0]["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let float = tract_run(&std::fs::read(&onnx).unwrap(), &shape, &x);
    assert_eq!(float.len(), proven.len());
    for (a, b) in float.iter().zip(&proven) {
        assert!(
            (*a as f64 - b).abs() <= max_err + 1e-6,
            "{name}: float {a} vs proven {b} (fidelity {max_err})"
        );
    }
    Run {
        _tmp: tmp,
        dir,
        proof,
    }
}

/// Checks a tampered copy of the run's proof with `verify` or `verify-evm`; returns the
/// exit code after checking the verdict line.
fn tamper(run: &Run, verifier: &str, f: impl FnOnce(&mut serde_json::Value)) -> i32 {
    let mut p: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&run.proof).unwrap()).unwrap();
    f(&mut p);
    let bad = run.dir.join("tampered.json");
    std::fs::write(&bad, serde_json::to_vec(&p).unwrap()).unwrap();
    let out = zkinfer(&[verifier, s(&run.dir), "--proof", s(&bad)]);
    let verdict = String::from_utf8_lossy(&out.stdout);
    assert!(
        verdict.starts_with("invalid") || verdict.starts_with("rejected"),
        "{verifier}: {verdict}"
    );
    code(&out)
}

fn flip_byte(p: &mut serde_json::Value) {
    let hex = p["proof"].as_str().unwrap().to_string();
    let i = hex.len() / 2;
    let c = if &hex[i..i + 1] == "0" { "1" } else { "0" };
    p["proof"] = format!("{}{}{}", &hex[..i], c, &hex[i + 1..]).into();
}

/// Adds one to the last public output and keeps the stated output consistent with it.
fn bump_output(p: &mut serde_json::Value) {
    let inst = p["instances"].as_array_mut().unwrap();
    let last = inst.len() - 1;
    let hex = inst[last].as_str().unwrap().to_string();
    let v = u128::from_str_radix(&hex[hex.len() - 32..], 16).unwrap();
    inst[last] = format!("{}{:032x}", &hex[..hex.len() - 32], v.wrapping_add(1)).into();
    let scale = p["output"]["scale"].as_i64().unwrap() as i32;
    let vals = p["output"]["values"].as_array_mut().unwrap();
    let n = vals.len() - 1;
    vals[n] = (vals[n].as_f64().unwrap() + 2f64.powi(-scale)).into();
}

#[test]
fn mlp_tiny_end_to_end_and_tampering() {
    let run = pipeline("mlp_tiny");
    assert_eq!(tamper(&run, "verify", flip_byte), 1);
    assert_eq!(tamper(&run, "verify", bump_output), 1);
    // Bytes after the proof: the same proof, another encoding, is refused.
    assert_eq!(
        tamper(&run, "verify", |p| {
            p["proof"] = format!("{}00", p["proof"].as_str().unwrap()).into();
        }),
        1
    );

    // The same proof bytes in the EVM: the Solidity verifier, compiled and deployed in revm.
    let out = ok(&["verify-evm", s(&run.dir), "--proof", s(&run.proof)]);
    assert!(out.starts_with("accepted") && out.contains("gas"), "{out}");
    assert_eq!(tamper(&run, "verify-evm", flip_byte), 1);
    // An altered public output (the stated output kept consistent): the contract reverts.
    assert_eq!(tamper(&run, "verify-evm", bump_output), 1);
    // A stated output that differs from the proven one never reaches the EVM.
    assert_eq!(
        tamper(&run, "verify-evm", |p| p["output"]["values"][0] =
            9.0.into()),
        1
    );

    let sol = run.dir.join("Verifier.sol");
    ok(&["export-solidity", s(&run.dir), "--out", s(&sol)]);
    assert!(std::fs::read_to_string(&sol)
        .unwrap()
        .contains("contract Halo2Verifier"));
    let data = run.dir.join("calldata.bin");
    ok(&[
        "encode-calldata",
        "--proof",
        s(&run.proof),
        "--out",
        s(&data),
    ]);
    let p: serde_json::Value = serde_json::from_slice(&std::fs::read(&run.proof).unwrap()).unwrap();
    let expected = 32 * p["instances"].as_array().unwrap().len()
        + (p["proof"].as_str().unwrap().len() - 2) / 2;
    assert_eq!(std::fs::read(&data).unwrap().len(), expected);

    // No compiler: a clear error, exit 2.
    let out = Command::new(env!("CARGO_BIN_EXE_zkinfer"))
        .args(["verify-evm", s(&run.dir), "--proof", s(&run.proof)])
        .env("ZKINFER_SOLC", run.dir.join("no-such-solc"))
        .env("XDG_CACHE_HOME", run.dir.join("empty-cache"))
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("ZKINFER_SOLC"));
}

/// A circuit with a second phase (Freivalds' argument checks attn_block's linear layers,
/// and its products of two activations, `Q·Kᵀ` and `softmax·V`, under a second
/// challenge): its proof verifies natively and in the EVM, and tampered copies do not.
#[test]
fn freivalds_proofs_verify_natively_and_in_the_evm() {
    let run = pipeline_with("attn_block", &["--linear", "freivalds"]);
    let circuit: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.dir.join("circuit.json")).unwrap()).unwrap();
    let layout = &circuit["plan"]["layout"];
    assert!(layout["horner_lanes"].as_u64().unwrap() > 0, "{layout}");
    assert!(
        !layout["freivalds"].as_array().unwrap().is_empty(),
        "{layout}"
    );
    assert_eq!(layout["product_lanes"].as_u64(), Some(1), "{layout}");
    assert_eq!(tamper(&run, "verify", flip_byte), 1);
    assert_eq!(tamper(&run, "verify", bump_output), 1);
    let out = ok(&["verify-evm", s(&run.dir), "--proof", s(&run.proof)]);
    assert!(out.starts_with("accepted"), "{out}");
    assert_eq!(tamper(&run, "verify-evm", flip_byte), 1);
    assert_eq!(tamper(&run, "verify-evm", bump_output), 1);

    // The key's layout names the checked layers and the Horner lanes: both are in the
    // model id, so a key that checks fewer layers (or lays them out otherwise) is
    // another model, and a proof pinned to this one does not verify under it.
    let id = ok(&["model-id", s(&run.dir)]).trim().to_string();
    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit); 3] = [
        ("freivalds", |h| {
            let ops = h["layout"]["freivalds"].as_array_mut().unwrap();
            ops.pop();
        }),
        // The products checked as dot products of their rows instead.
        ("product_lanes", |h| h["layout"]["product_lanes"] = 0.into()),
        ("horner_lanes", |h| {
            let lanes = h["layout"]["horner_lanes"].as_u64().unwrap();
            h["layout"]["horner_lanes"] = (lanes + 1).into();
        }),
    ];
    for (field, edit) in edits {
        let dir = run.dir.join(format!("edited-{field}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["vk", "circuit.json"] {
            std::fs::copy(run.dir.join(f), dir.join(f)).unwrap();
        }
        edit_header(&dir, edit);
        let out = zkinfer(&[
            "verify",
            s(&dir),
            "--proof",
            s(&run.proof),
            "--model-id",
            &id,
        ]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!text.contains("panicked"), "{field}: {text}");
        assert_ne!(code(&out), 0, "{field} edited, still valid: {text}");
        if let Ok(other) = std::str::from_utf8(&zkinfer(&["model-id", s(&dir)]).stdout) {
            assert_ne!(other.trim(), id, "{field} is not bound by the model id");
        }
    }
}

#[test]
fn mlp_mnist_end_to_end_and_tampering() {
    let run = pipeline("mlp_mnist");
    assert_eq!(tamper(&run, "verify", flip_byte), 1);
    assert_eq!(tamper(&run, "verify", bump_output), 1);
}

/// Adds one to the last public value (an output hash): only the proof can catch it.
fn bump_last_instance(p: &mut serde_json::Value) {
    let inst = p["instances"].as_array_mut().unwrap();
    let last = inst.len() - 1;
    let hex = inst[last].as_str().unwrap().to_string();
    let v = u128::from_str_radix(&hex[hex.len() - 32..], 16).unwrap();
    inst[last] = format!("{}{:032x}", &hex[..hex.len() - 32], v.wrapping_add(1)).into();
}

#[test]
fn hashed_statement_model_ids_and_unreadable_proofs() {
    let tmp = tempfile::tempdir().unwrap();
    let models = shared_models();
    let input = models.join("mlp_tiny.input.json");
    let dir = tmp.path().join("m");
    let proof = tmp.path().join("proof.json");
    let compiled = ok(&[
        "compile",
        s(&models.join("mlp_tiny.onnx")),
        "--calibration",
        s(&input),
        "--out",
        s(&dir),
        "--params",
        "hashed",
        "--input",
        "hashed",
        "--output",
        "hashed",
    ]);
    assert!(compiled.contains("3 public values"), "{compiled}");
    // Before setup: the weights hash alone, computed natively.
    let weights_hash = ok(&["model-id", s(&dir)]).trim().to_string();
    assert!(weights_hash.starts_with("0x") && weights_hash.len() == 66);
    ok(&["setup", s(&dir), "--dev-srs"]);
    let id = ok(&["model-id", s(&dir)]).trim().to_string();
    assert!(id.ends_with(&format!(":{weights_hash}")), "{id}");
    ok(&["prove", s(&dir), "--input", s(&input), "--proof", s(&proof)]);
    let out = ok(&["verify", s(&dir), "--proof", s(&proof), "--model-id", &id]);
    assert!(
        out.starts_with("valid")
            && out.contains("input     hash")
            && out.contains("output    hash"),
        "{out}"
    );
    let out = zkinfer(&[
        "verify",
        s(&dir),
        "--proof",
        s(&proof),
        "--model-id",
        &weights_hash,
    ]);
    assert_eq!(code(&out), 1);
    assert!(String::from_utf8_lossy(&out.stdout).contains("not the required"));
    let run = Run {
        _tmp: tmp,
        dir: dir.clone(),
        proof: proof.clone(),
    };
    assert_eq!(tamper(&run, "verify", bump_last_instance), 1);
    assert_eq!(tamper(&run, "verify", flip_byte), 1);
    // Three public values whatever the model's size: the EVM verifier is one contract.
    let out = ok(&["verify-evm", s(&dir), "--proof", s(&proof)]);
    assert!(out.starts_with("accepted"), "{out}");
    assert_eq!(tamper(&run, "verify-evm", bump_last_instance), 1);

    // Unreadable proof files are errors (exit 2) that say what is wrong.
    let text = std::fs::read_to_string(&proof).unwrap();
    let bad = dir.join("bad.json");
    let v2 = format!(
        "\"version\": {}",
        zkinfer_verifier::artifact::FORMAT_VERSION
    );
    for (content, expected) in [
        (String::new(), "not JSON"),
        ("\u{1}\u{7f}garbage".to_string(), "not JSON"),
        (text[..text.len() / 2].to_string(), "not JSON"),
        (text.replace(&v2, "\"version\": 1"), "format version 1"),
    ] {
        std::fs::write(&bad, &content).unwrap();
        let out = zkinfer(&["verify", s(&dir), "--proof", s(&bad)]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 2, "{err}");
        assert!(err.contains(expected) && err.contains("bad.json"), "{err}");
    }
    // A verifying key of an older format version.
    let vk = dir.join("vk");
    let mut bytes = std::fs::read(&vk).unwrap();
    bytes[8] = 1;
    std::fs::write(&vk, &bytes).unwrap();
    let out = zkinfer(&["verify", s(&dir), "--proof", s(&proof)]);
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("format version 1"));
}

#[test]
fn errors_exit_2_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let models = shared_models();
    let input = models.join("mlp_tiny.input.json");
    let dir = tmp.path().join("m");
    let tiny = models.join("mlp_tiny.onnx");
    // `zkinfer compile MODEL --calibration CAL --out DIR EXTRA…`
    let compile = |model: &Path, cal: &Path, extra: &[&str]| {
        let mut args = vec![
            "compile",
            s(model),
            "--calibration",
            s(cal),
            "--out",
            s(&dir),
        ];
        args.extend_from_slice(extra);
        zkinfer(&args)
    };

    // A model with operators zkinfer does not prove: all are named, with their nodes.
    let unsupported = tmp.path().join("unsupported.onnx");
    let nodes = vec![
        node("Mod", &["x", "x"], "a", vec![]),
        node("Unique", &["a"], "y", vec![]),
    ];
    let m = model(
        nodes,
        vec![],
        value_info("x", &[1, 16]),
        value_info_any("y"),
    );
    std::fs::write(&unsupported, encode(&m)).unwrap();
    let out = compile(&unsupported, &input, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 2);
    assert!(
        err.contains("unsupported ONNX operators")
            && err.contains("Mod (node `Mod:a`)")
            && err.contains("Unique"),
        "{err}"
    );

    let missing = tmp.path().join("missing.onnx");
    let out = compile(&missing, &input, &[]);
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.onnx"));

    // Calibration data of the wrong length names the file and the lengths.
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, r#"{"input_data": [[1.0, 2.0]]}"#).unwrap();
    let out = compile(&tiny, &bad, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 2);
    assert!(
        err.contains("bad.json") && err.contains("takes 16 per sample"),
        "{err}"
    );

    // A memory budget not even the smallest segment fits names the ops and the smallest
    // prediction.
    let out = compile(&tiny, &input, &["--max-memory", "5"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 2);
    assert!(
        err.contains("over --max-memory 5 MB")
            && err.contains("predicted to need")
            && err.contains("ops 0.."),
        "{err}"
    );
    for bad_budget in ["--max-memory=0", "--max-memory=-3", "--max-memory=abc"] {
        let out = compile(&tiny, &input, &[bad_budget]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 2);
        assert!(
            err.contains("is not a positive number of megabytes"),
            "{err}"
        );
    }

    let out = compile(&tiny, &input, &[]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let compiled = String::from_utf8_lossy(&out.stdout);
    assert!(
        compiled.contains("predicted prove") && compiled.contains("runner-up"),
        "{compiled}"
    );
    let out = zkinfer(&["setup", s(&dir)]);
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--dev-srs"));

    // Verifying without keys, or with a key from another format version.
    let out = zkinfer(&["verify", s(&dir), "--proof", s(&bad)]);
    assert_eq!(code(&out), 2);
    ok(&["setup", s(&dir), "--dev-srs"]);
    let proof = tmp.path().join("p.json");
    ok(&["prove", s(&dir), "--input", s(&input), "--proof", s(&proof)]);
    let vk = dir.join("vk");
    let mut bytes = std::fs::read(&vk).unwrap();
    bytes[8] = 0;
    std::fs::write(&vk, &bytes).unwrap();
    let out = zkinfer(&["verify", s(&dir), "--proof", s(&proof)]);
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("format version 0"));

    // A proof file that is not JSON is an error, not a verdict.
    let out = zkinfer(&["prove", s(&dir), "--input", s(&bad), "--proof", s(&proof)]);
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.json"));
}

#[test]
fn demo_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(&["demo", "--dir", s(tmp.path())]);
    assert!(
        out.contains("demo complete") && out.contains("invalid:"),
        "{out}"
    );
}

#[test]
fn engine_choice_falls_back_only_when_asked_to() {
    let tmp = tempfile::tempdir().unwrap();
    let models = shared_models();
    let input = models.join("mlp_tiny.input.json");
    let dir = tmp.path().join("m");
    let proof = tmp.path().join("p.json");
    ok(&[
        "compile",
        s(&models.join("mlp_tiny.onnx")),
        "--calibration",
        s(&input),
        "--out",
        s(&dir),
    ]);
    ok(&["setup", s(&dir), "--dev-srs"]);
    // A GPU build that finds no device (here: one that always fails its probe).
    let no_gpu = |engine: &str| {
        Command::new(env!("CARGO_BIN_EXE_zkinfer"))
            .args([
                "prove",
                s(&dir),
                "--input",
                s(&input),
                "--proof",
                s(&proof),
                "--engine",
                engine,
            ])
            .env("ZKINFER_CUDA", "/bin/false")
            .output()
            .unwrap()
    };
    let out = no_gpu("cuda");
    assert_eq!(code(&out), 2, "--engine cuda must not fall back silently");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no usable GPU"));
    let out = no_gpu("auto");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("note: proving on the CPU"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("(cpu)"));
    assert!(ok(&["verify", s(&dir), "--proof", s(&proof)]).starts_with("valid"));
}

/// With 16 or more calibration samples `compile` also tries widths per tensor and says
/// how many it tried and took; `--no-per-tensor` keeps the model's widths.
#[test]
fn compile_tries_widths_per_tensor_unless_told_not_to() {
    let tmp = tempfile::tempdir().unwrap();
    let real = shared_models().join("real");
    let onnx = real.join("digits_mlp.onnx");
    let calibration = real.join("digits_mlp.calibration.json");
    let dir = tmp.path().join("digits");
    let compile = |flags: &[&str]| {
        let out = zkinfer(&compile_args(&onnx, &calibration, &dir, flags));
        assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = compile(&[]);
    assert!(
        err.contains("per tensor, where the error grows: ") && err.contains(" widths tried, "),
        "{err}"
    );
    let err = compile(&["--no-per-tensor"]);
    assert!(!err.contains("per tensor"), "{err}");
}
