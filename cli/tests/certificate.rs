//! Capability certificates end to end (issue 18): the digits MLP (trained on real data)
//! compiled as a certificate circuit of 5 samples a proof, 10 test images certified in
//! two batches, the proven count equal to the integer interpreter's and the float
//! model's; and every cheat (a count, sample number, dataset or model id altered, a batch
//! omitted or reordered, a proof's count changed, another dataset or header) rejected,
//! natively and by the certificate contract in one EVM call.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{code, compile_args, edit_header, ok, s, stderr, stdout, zkinfer};
use serde_json::{json, Value};
use zkinfer_tests::shared_models;

const BATCH: usize = 5;

struct Fixture {
    root: PathBuf,
    dir: PathBuf,
    /// The first 10 test images with their labels, and its certificate.
    dataset: PathBuf,
    cert: PathBuf,
    /// The samples whose float argmax equals the label, of those 10.
    float_correct: usize,
}

fn real() -> PathBuf {
    shared_models().join("real")
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// The first `n` samples of the digits test set, labels edited by `f`.
fn write_dataset(path: &Path, n: usize, f: impl FnOnce(&mut Vec<i64>)) {
    let test = read_json(&real().join("digits_test.json"));
    let samples: Vec<Value> = test["input_data"].as_array().unwrap()[..n].to_vec();
    let mut labels: Vec<i64> = test["labels"].as_array().unwrap()[..n]
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    f(&mut labels);
    let data = json!({"input_data": samples, "labels": labels});
    std::fs::write(path, serde_json::to_vec(&data).unwrap()).unwrap();
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("certificate");
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("digits");
        let compiled = ok(&[
            "compile",
            s(&real().join("digits_mlp.onnx")),
            "--calibration",
            s(&real().join("digits_mlp.calibration.json")),
            "--out",
            s(&dir),
            "--certify",
            &BATCH.to_string(),
        ]);
        assert!(
            compiled.contains("params hashed, input hashed, output public: 3 public values"),
            "{compiled}"
        );
        ok(&["setup", s(&dir), "--dev-srs"]);
        let dataset = root.join("ten.json");
        write_dataset(&dataset, 2 * BATCH, |_| {});
        let cert = root.join("cert.json");
        let out = ok(&[
            "certify",
            s(&dir),
            "--dataset",
            s(&dataset),
            "--out",
            s(&cert),
        ]);
        assert!(out.contains("classifies"), "{out}");

        // The float model's predictions (zkinfer's float interpreter is tested against
        // tract and onnxruntime elsewhere).
        let graph = zkinfer_compiler::import_onnx(&real().join("digits_mlp.onnx"))
            .unwrap()
            .graph;
        let data = read_json(&dataset);
        let mut float_correct = 0;
        for (x, label) in data["input_data"]
            .as_array()
            .unwrap()
            .iter()
            .zip(data["labels"].as_array().unwrap())
        {
            let x: Vec<f32> = x
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            let run = graph.run(&x).unwrap();
            let p: Vec<f64> = run["probabilities"]
                .data
                .iter()
                .map(|&v| v as f64)
                .collect();
            if zkinfer_compiler::quantize::argmax(&p) as i64 == label.as_i64().unwrap() {
                float_correct += 1;
            }
        }
        Fixture {
            root,
            dir,
            dataset,
            cert,
            float_correct,
        }
    })
}

/// Runs `command` (`verify` or `verify-evm`) on the fixture's certificate edited by `f`;
/// returns (exit code, stdout).
fn run_edited(
    command: &str,
    name: &str,
    extra: &[&str],
    f: impl FnOnce(&mut Value),
) -> (i32, String) {
    let fx = fixture();
    let mut c = read_json(&fx.cert);
    f(&mut c);
    let path = fx.root.join(name);
    std::fs::write(&path, serde_json::to_vec(&c).unwrap()).unwrap();
    let mut args = vec![command, s(&fx.dir), "--proof", s(&path)];
    args.extend_from_slice(extra);
    let out = zkinfer(&args);
    (code(&out), stdout(&out))
}

#[test]
fn a_certificate_states_the_proven_count_of_its_dataset() {
    let fx = fixture();
    let c = read_json(&fx.cert);
    assert_eq!(c["samples"], 2 * BATCH);
    assert_eq!(c["proofs"].as_array().unwrap().len(), 2);
    // The count is the circuit's; the quantized model agrees with the float one here.
    assert_eq!(c["correct"].as_u64().unwrap() as usize, fx.float_correct);
    let out = ok(&[
        "verify",
        s(&fx.dir),
        "--proof",
        s(&fx.cert),
        "--dataset",
        s(&fx.dataset),
    ]);
    let sentence = format!(
        "valid: model {} classifies {}/{} of dataset {}",
        c["model_id"].as_str().unwrap().split(':').nth(1).unwrap(),
        fx.float_correct,
        2 * BATCH,
        c["dataset"].as_str().unwrap()
    );
    assert!(out.starts_with(&sentence), "{out}\nexpected: {sentence}");
    // Pinned by the certificate circuit's model id.
    let id = ok(&["model-id", s(&fx.dir)]);
    ok(&[
        "verify",
        s(&fx.dir),
        "--proof",
        s(&fx.cert),
        "--model-id",
        id.trim(),
    ]);
}

type Edit = Box<dyn FnOnce(&mut Value)>;

/// A certificate's statements altered, each with what it alters; `correct` is the
/// fixture's count.
fn cheats(correct: u64) -> Vec<(&'static str, Edit)> {
    vec![
        (
            "count",
            Box::new(move |c| c["correct"] = json!(correct + 1)),
        ),
        ("samples", Box::new(|c| c["samples"] = json!(2 * BATCH - 1))),
        (
            "model name",
            Box::new(|c| c["model"] = json!("another model")),
        ),
        (
            "dataset",
            Box::new(|c| {
                c["dataset"] = json!(format!("0x{}", "11".repeat(32)));
            }),
        ),
        (
            "model id",
            Box::new(|c| {
                let id = c["model_id"].as_str().unwrap().replacen("0x", "0x1", 1);
                c["model_id"] = json!(id);
            }),
        ),
        (
            "a batch omitted",
            Box::new(|c| {
                c["proofs"].as_array_mut().unwrap().pop();
            }),
        ),
        (
            // A proof's public count raised by one, with the stated values to match.
            "a proven count",
            Box::new(move |c| {
                let p = &mut c["proofs"][0];
                let scale = p["output"]["scale"].as_i64().unwrap() as i32;
                let inst = p["instances"].as_array_mut().unwrap();
                let last = inst.len() - 1;
                let hex = inst[last].as_str().unwrap().to_string();
                let v = u128::from_str_radix(&hex[hex.len() - 32..], 16).unwrap();
                let step = 1u128 << scale.max(0);
                inst[last] = format!("{}{:032x}", &hex[..hex.len() - 32], v + step).into();
                let v0 = p["output"]["values"][0].as_f64().unwrap();
                p["output"]["values"][0] = json!(v0 + 1.0);
                c["correct"] = json!(correct + 1);
            }),
        ),
    ]
}

#[test]
fn altered_statements_are_invalid() {
    every_cheat_is_refused("verify", "invalid");
}

/// Runs `command` on every cheat of [`cheats`] and on reordered batches: each refused
/// with `verdict`. Reordered batches are a valid certificate of another dataset: accepted
/// as that, refused as this one.
fn every_cheat_is_refused(command: &str, verdict: &str) {
    let fx = fixture();
    let correct = read_json(&fx.cert)["correct"].as_u64().unwrap();
    for (what, f) in cheats(correct) {
        let (rc, out) = run_edited(command, &format!("{command}-edited.json"), &[], f);
        assert_eq!(rc, 1, "{command}, {what}: {out}");
        assert!(out.starts_with(verdict), "{command}, {what}: {out}");
        if command == "verify-evm" && what == "a proven count" {
            // The contract itself reverts.
            assert!(out.contains("a batch proof does not verify"), "{out}");
        }
    }
    let swap = |c: &mut Value| c["proofs"].as_array_mut().unwrap().swap(0, 1);
    let name = format!("{command}-swapped.json");
    let (rc, out) = run_edited(command, &name, &[], |c| {
        swap(c);
        c["dataset"] = json!("0x00");
    });
    assert_eq!(rc, 1, "{command}: {out}");
    let swapped = out
        .split("its proofs' inputs are dataset ")
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    let stating = |c: &mut Value| {
        swap(c);
        c["dataset"] = json!(swapped);
    };
    let (rc, out) = run_edited(command, &name, &[], stating);
    assert_eq!(rc, 0, "{command}: {out}");
    let (rc, out) = run_edited(command, &name, &["--dataset", s(&fx.dataset)], stating);
    assert_eq!(rc, 1, "{command}: {out}");
    assert!(out.contains("is dataset"), "{command}: {out}");
}

#[test]
fn the_evm_verifies_a_certificate_in_one_call() {
    let fx = fixture();
    let native = ok(&["verify", s(&fx.dir), "--proof", s(&fx.cert)]);
    let sentence = native
        .lines()
        .next()
        .unwrap()
        .strip_prefix("valid: ")
        .unwrap();
    let out = ok(&[
        "verify-evm",
        s(&fx.dir),
        "--proof",
        s(&fx.cert),
        "--dataset",
        s(&fx.dataset),
    ]);
    assert!(
        out.starts_with(&format!("accepted: {sentence}")),
        "{out}\nnative: {native}"
    );
    assert!(out.contains("2 batch proof(s) in one call"), "{out}");

    every_cheat_is_refused("verify-evm", "rejected");

    // The call's calldata, for a wallet: certify(bytes[]) with both batches.
    let data = ok(&["encode-calldata", "--proof", s(&fx.cert)]);
    let selector = hex::encode(&zkinfer_evm::certify_calldata(&[])[..4]);
    assert!(data.trim().starts_with(&format!("0x{selector}")), "{data}");
}

/// The verifier contract of a hashed-weights key pins the weights hash: built for
/// another weights hash (the same circuit), it refuses a genuine proof that its own
/// key's contract accepts.
#[test]
fn a_contract_for_another_weights_hash_refuses_the_proof() {
    use zkinfer_verifier::{ProofFile, VerifierKey};
    let fx = fixture();
    let key = VerifierKey::from_bytes(&std::fs::read(fx.dir.join("vk")).unwrap()).unwrap();
    let proof = read_json(&fx.cert)["proofs"][0].to_string();
    let data = zkinfer_evm::calldata(&ProofFile::parse(&proof).unwrap()).unwrap();
    let solc = zkinfer_evm::Solc::find().expect("a Solidity compiler (scripts/install-solc.sh)");
    let call = |key: &VerifierKey| {
        let build = zkinfer_evm::build_verifier(key, &solc).unwrap();
        zkinfer_evm::deploy_and_call(&build.bytecode, data.clone())
            .unwrap()
            .accepted
    };
    assert!(call(&key));
    let mut other = key.clone();
    other.info.params_hash = Some(format!("0x{}", "01".repeat(32)));
    assert_ne!(other.info.params_hash, key.info.params_hash);
    assert!(!call(&other), "a contract of another weights hash accepted");
}

#[test]
fn a_certificate_of_part_of_the_dataset_or_other_labels_is_not_of_the_dataset() {
    let fx = fixture();
    // A genuine certificate of the first batch alone: valid, but not of the ten samples.
    let five = fx.root.join("five.json");
    write_dataset(&five, BATCH, |_| {});
    let part = fx.root.join("cert-five.json");
    ok(&[
        "certify",
        s(&fx.dir),
        "--dataset",
        s(&five),
        "--out",
        s(&part),
    ]);
    ok(&[
        "verify",
        s(&fx.dir),
        "--proof",
        s(&part),
        "--dataset",
        s(&five),
    ]);
    let out = zkinfer(&[
        "verify",
        s(&fx.dir),
        "--proof",
        s(&part),
        "--dataset",
        s(&fx.dataset),
    ]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    // The same images with one label changed are another dataset.
    let relabelled = fx.root.join("relabelled.json");
    write_dataset(&relabelled, 2 * BATCH, |l| l[3] = (l[3] + 1) % 10);
    let out = zkinfer(&[
        "verify",
        s(&fx.dir),
        "--proof",
        s(&fx.cert),
        "--dataset",
        s(&relabelled),
    ]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
}

#[test]
fn a_header_claiming_another_batch_is_another_model() {
    let fx = fixture();
    let other = fx.root.join("other-header");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(fx.dir.join("vk"), other.join("vk")).unwrap();
    // 5 samples of 64 values and 5 labels: 325 values, which 25 divides too.
    edit_header(&other, |h| h["certificate"]["batch"] = json!(25));
    let out = zkinfer(&["verify", s(&other), "--proof", s(&fx.cert)]);
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
}

#[test]
fn unusable_inputs_are_errors() {
    let fx = fixture();
    let seven = fx.root.join("seven.json");
    write_dataset(&seven, 7, |_| {});
    let out = zkinfer(&[
        "certify",
        s(&fx.dir),
        "--dataset",
        s(&seven),
        "--out",
        s(&fx.root.join("x.json")),
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("7 samples is not a multiple of the certificate's batch of 5"),
        "{}",
        stderr(&out)
    );
    let unlabelled = fx.root.join("unlabelled.json");
    std::fs::write(&unlabelled, r#"{"input_data": [[0.0]]}"#).unwrap();
    let out = zkinfer(&[
        "certify",
        s(&fx.dir),
        "--dataset",
        s(&unlabelled),
        "--out",
        s(&fx.root.join("x.json")),
    ]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("labels"), "{}", stderr(&out));
    // A certificate circuit's visibility is its own.
    let out = zkinfer(&[
        "compile",
        s(&real().join("digits_mlp.onnx")),
        "--calibration",
        s(&real().join("digits_mlp.calibration.json")),
        "--out",
        s(&fx.root.join("y")),
        "--certify",
        "5",
        "--params",
        "fixed",
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    // --dataset is for certificates only; a certificate's batch proof is an ordinary proof.
    let c = read_json(&fx.cert);
    let proof = fx.root.join("batch0.json");
    std::fs::write(&proof, serde_json::to_vec(&c["proofs"][0]).unwrap()).unwrap();
    ok(&["verify", s(&fx.dir), "--proof", s(&proof)]);
    let out = zkinfer(&[
        "verify",
        s(&fx.dir),
        "--proof",
        s(&proof),
        "--dataset",
        s(&fx.dataset),
    ]);
    assert_eq!(code(&out), 2);
}

#[test]
fn a_redacted_circuit_reproduces_the_key_without_the_weights() {
    let fx = fixture();
    let public = fx.root.join("redacted");
    ok(&["redact", s(&fx.dir), "--out", s(&public)]);
    let c = read_json(&public.join("circuit.json"));
    // No weight survives: every linear layer's weights are one value, biases 0.
    for op in c["model"]["ops"].as_array().unwrap() {
        if let Some(l) = op.get("Linear") {
            let w = l["weight"].as_array().unwrap();
            assert!(w.iter().all(|x| x == &w[0]), "{}", l["weight"]);
            assert!(l["bias"].as_array().unwrap().iter().all(|b| b == 0));
        }
    }
    ok(&["setup", s(&public), "--dev-srs"]);
    let digest = |dir: &Path| {
        ok(&["model-id", s(dir)])
            .trim()
            .split(':')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(digest(&public), digest(&fx.dir));
    // So the certificate's proofs verify under the reproduced key but for its weights
    // hash, which is of other weights.
    let out = zkinfer(&["verify", s(&public), "--proof", s(&fx.cert)]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
}

/// `--certify auto --samples M`: every divisor of M into at most 16 batches is compiled
/// and the one predicted to prove all M fastest is taken; under a memory budget below
/// its predicted peak, that batch is refused for the budget and the fastest of those
/// within it is taken. The widths are fixed: the width search, tested elsewhere, would
/// run for every batch (about 2.5 minutes a compile here, against 5 s).
#[test]
fn the_planner_chooses_the_batch_within_the_memory_budget() {
    let fx = fixture();
    let (onnx, calibration) = (
        real().join("digits_mlp.onnx"),
        real().join("digits_mlp.calibration.json"),
    );
    let compile = |dir: &str, extra: &[&str]| {
        let dir = fx.root.join(dir);
        let fixed = [
            "--certify",
            "auto",
            "--samples",
            "90",
            "--bits",
            "12",
            "--weight-bits",
            "12",
        ];
        let mut args = compile_args(&onnx, &calibration, &dir, &fixed);
        args.extend_from_slice(extra);
        let out = zkinfer(&args);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        (out, dir)
    };
    // Each batch line: (batch, peak MB, predicted seconds in all, chosen); and the
    // batches refused for the budget.
    type Tried = (usize, f64, f64, bool);
    let trials = |err: &str| -> (Vec<Tried>, Vec<usize>) {
        let mut tried = Vec::new();
        let mut refused = Vec::new();
        let number = |l: &str, after: &str, before: &str| -> f64 {
            let l = l.split(after).nth(1).unwrap();
            l.split(before).next().unwrap().parse().unwrap()
        };
        for l in err.lines().map(str::trim_start) {
            let Some(rest) = l.strip_prefix("batch ") else {
                continue;
            };
            let batch: usize = rest.split_whitespace().next().unwrap().parse().unwrap();
            if l.contains("does not compile") {
                assert!(l.contains("over the memory budget"), "{l}");
                refused.push(batch);
            } else {
                let peak = number(l, "(peak ", " MB)");
                let total = number(l, "MB), ", " s in all");
                tried.push((batch, peak, total, l.ends_with("<- chosen")));
            }
        }
        (tried, refused)
    };
    let chosen_of = |tried: &[Tried]| {
        let best = tried.iter().min_by(|a, b| a.2.total_cmp(&b.2)).unwrap();
        let chosen: Vec<_> = tried.iter().filter(|t| t.3).collect();
        assert_eq!(chosen.len(), 1, "{tried:?}");
        assert_eq!(chosen[0].0, best.0, "not the fastest in all: {tried:?}");
        *best
    };
    let batch_of = |dir: &Path| {
        read_json(&dir.join("circuit.json"))["certificate"]["batch"]
            .as_u64()
            .unwrap() as usize
    };

    let (out, dir) = compile("auto", &[]);
    let (tried, refused) = trials(&stderr(&out));
    assert!(refused.is_empty(), "{refused:?}");
    let mut batches: Vec<usize> = tried.iter().map(|t| t.0).collect();
    batches.sort();
    assert_eq!(batches, vec![6, 9, 10, 15, 18, 30, 45, 90]);
    let first = chosen_of(&tried);
    assert_eq!(batch_of(&dir), first.0);

    let budget = first.1.floor() - 1.0;
    let (out, dir) = compile("auto-budget", &["--max-memory", &format!("{budget}")]);
    let (within, refused) = trials(&stderr(&out));
    assert!(refused.contains(&first.0), "{}", stderr(&out));
    assert!(within.iter().all(|t| t.1 <= budget), "{within:?}");
    let second = chosen_of(&within);
    assert_ne!(second.0, first.0);
    assert_eq!(batch_of(&dir), second.0);

    let z = fx.root.join("z");
    for (args, expected) in [
        (vec!["--certify", "auto"], "--certify auto needs --samples"),
        (
            vec!["--certify", "5", "--samples", "10"],
            "--samples is for --certify auto",
        ),
        (
            vec!["--certify", "none"],
            "neither a positive batch size nor `auto`",
        ),
        (
            vec!["--certify", "auto", "--samples", "90", "--max-memory", "100"],
            "no batch size of 90 samples compiles as one certificate circuit within the memory budget",
        ),
    ] {
        let mut all = vec![
            "compile",
            s(&onnx),
            "--calibration",
            s(&calibration),
            "--out",
            s(&z),
        ];
        all.extend(args);
        let out = zkinfer(&all);
        assert_eq!(code(&out), 2, "{}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{}", stderr(&out));
    }
}
