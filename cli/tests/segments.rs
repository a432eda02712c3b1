//! Segmented proving end to end (issue 14): attn_block cut into three segments, with its
//! residual branch crossing a cut, proven as a bundle (in one process with --jobs, and
//! segment by segment from a witness file as cluster workers do, and on a local 3-node
//! Ray cluster); the bundle's output is the whole circuit's; and every cheat on a bundle
//! is rejected with exit 1 (invalid) or 2 (unusable file), never a panic.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{code, ok, s, stderr, stdout, zkinfer};
use serde_json::Value;
use zkinfer_tests::shared_models;

struct Fixture {
    root: PathBuf,
    /// attn_block in 3 segments, keys and a bundle (`bundle.json`) of `input()`.
    dir: PathBuf,
    /// A bundle of the same model on another input.
    other_input: PathBuf,
}

fn input() -> PathBuf {
    shared_models().join("attn_block.input.json")
}

fn compile(dir: &Path, model: &str, extra: &[&str]) -> String {
    let models = shared_models();
    let mut args = vec![
        "compile".to_string(),
        s(&models.join(format!("{model}.onnx"))).into(),
        "--calibration".into(),
        s(&models.join(format!("{model}.input.json"))).into(),
        "--out".into(),
        s(dir).into(),
        "--bits".into(),
        "8".into(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("segments");
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("attn");
        let out = compile(&dir, "attn_block", &["--segments", "3"]);
        assert!(out.contains("segments  3"), "{out}");
        ok(&["setup", s(&dir), "--dev-srs"]);
        let bundle = dir.join("bundle.json");
        let out = ok(&[
            "prove",
            s(&dir),
            "--input",
            s(&input()),
            "--proof",
            s(&bundle),
            "--engine",
            "cpu",
            "--jobs",
            "2",
        ]);
        assert!(
            out.contains("proof bundle of `attn_block` (3 segments)"),
            "{out}"
        );
        // Another input: every element nudged.
        let text = std::fs::read_to_string(input()).unwrap();
        let mut v: Value = serde_json::from_str(&text).unwrap();
        for x in v["input_data"][0].as_array_mut().unwrap() {
            *x = Value::from(x.as_f64().unwrap() * 0.5 + 0.01);
        }
        let other_input = root.join("other.input.json");
        std::fs::write(&other_input, v.to_string()).unwrap();
        ok(&[
            "prove",
            s(&dir),
            "--input",
            s(&other_input),
            "--proof",
            s(&root.join("other.json")),
            "--engine",
            "cpu",
        ]);
        Fixture {
            root,
            dir,
            other_input,
        }
    })
}

/// `zkinfer witness` of `input()` into `name` under the fixture's root.
fn witness(fx: &Fixture, name: &str) -> PathBuf {
    let w = fx.root.join(name);
    ok(&[
        "witness",
        s(&fx.dir),
        "--input",
        s(&input()),
        "--out",
        s(&w),
    ]);
    w
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// `verify` of the fixture's keys on a bundle edited by `f`; returns the exit code and
/// prints the verdict for the log.
fn verify_edited(name: &str, f: impl FnOnce(&mut Value)) -> (i32, String) {
    let fx = fixture();
    let mut b = read_json(&fx.dir.join("bundle.json"));
    f(&mut b);
    let path = fx.root.join(format!("{name}.json"));
    std::fs::write(&path, b.to_string()).unwrap();
    let out = zkinfer(&["verify", s(&fx.dir), "--proof", s(&path)]);
    let said = format!("{}{}", stdout(&out), stderr(&out));
    eprintln!("{name}: exit {:?}: {said}", out.status.code());
    (code(&out), said)
}

#[test]
fn a_segmented_bundle_verifies_and_states_the_whole_circuits_output() {
    let fx = fixture();
    let manifest = read_json(&fx.dir.join("segments.json"));
    let segs = manifest["segments"].as_array().unwrap();
    assert_eq!(segs.len(), 3);
    // The residual branch crosses a cut: a boundary of several tensors.
    assert!(
        segs.iter()
            .any(|s| s["outputs"].as_array().unwrap().len() > 1),
        "{manifest}"
    );
    let out = ok(&[
        "verify",
        s(&fx.dir),
        "--proof",
        s(&fx.dir.join("bundle.json")),
    ]);
    assert!(
        out.contains("valid: `attn_block` in 3 linked segments"),
        "{out}"
    );
    let id = ok(&["model-id", s(&fx.dir)]).trim().to_string();
    ok(&[
        "verify",
        s(&fx.dir),
        "--proof",
        s(&fx.dir.join("bundle.json")),
        "--model-id",
        &id,
    ]);
    // The same model as one circuit proves the same output.
    let whole = fx.root.join("whole");
    compile(&whole, "attn_block", &[]);
    assert!(!whole.join("segments.json").exists());
    ok(&["setup", s(&whole), "--dev-srs"]);
    let proof = whole.join("proof.json");
    ok(&[
        "prove",
        s(&whole),
        "--input",
        s(&input()),
        "--proof",
        s(&proof),
        "--engine",
        "cpu",
    ]);
    let bundle = read_json(&fx.dir.join("bundle.json"));
    let last = &bundle["proofs"][2]["output"];
    assert_eq!(last, &read_json(&proof)["output"]);
    // Intermediate segments state no output values: only their links.
    assert!(bundle["proofs"][0].get("output").is_none());
}

#[test]
fn workers_prove_segments_from_a_witness_file_and_bundle_them() {
    let fx = fixture();
    let w = witness(fx, "witness.json");
    let mut parts = Vec::new();
    for i in 0..3 {
        let p = fx.root.join(format!("part{i}.json"));
        ok(&[
            "prove",
            s(&fx.dir),
            "--witness",
            s(&w),
            "--segment",
            &i.to_string(),
            "--proof",
            s(&p),
            "--engine",
            "cpu",
        ]);
        parts.push(p);
    }
    let b = fx.root.join("bundled.json");
    let mut args = vec!["bundle", s(&fx.dir), "--out", s(&b)];
    args.extend(parts.iter().map(|p| s(p)));
    ok(&args);
    ok(&["verify", s(&fx.dir), "--proof", s(&b)]);
    // Parts out of order do not bundle.
    let out = zkinfer(&[
        "bundle",
        s(&fx.dir),
        "--out",
        s(&fx.root.join("x.json")),
        s(&parts[0]),
        s(&parts[2]),
        s(&parts[1]),
    ]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    // A witness file of another model, or a segment that does not exist: errors.
    let out = zkinfer(&[
        "prove",
        s(&fx.dir),
        "--witness",
        s(&w),
        "--segment",
        "3",
        "--proof",
        s(&fx.root.join("x.json")),
        "--engine",
        "cpu",
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("--segment 3"), "{}", stderr(&out));
    let mut bad = read_json(&w);
    bad["inputs"][1][0] = Value::from(bad["inputs"][1][0].as_i64().unwrap() + 1);
    let bad_path = fx.root.join("bad-witness.json");
    std::fs::write(&bad_path, bad.to_string()).unwrap();
    let out = zkinfer(&[
        "prove",
        s(&fx.dir),
        "--witness",
        s(&bad_path),
        "--segment",
        "0",
        "--proof",
        s(&fx.root.join("x.json")),
        "--engine",
        "cpu",
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("another output boundary"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn reordered_dropped_or_duplicated_segments_are_invalid() {
    let (c, why) = verify_edited("swapped", |b| {
        let p = b["proofs"].as_array_mut().unwrap();
        p.swap(1, 2);
    });
    assert_eq!(c, 1, "{why}");
    let (c, why) = verify_edited("dropped", |b| {
        b["proofs"].as_array_mut().unwrap().remove(1);
    });
    assert_eq!(c, 1, "{why}");
    assert!(why.contains("3 segments"), "{why}");
    let (c, why) = verify_edited("duplicated", |b| {
        let p = b["proofs"].as_array_mut().unwrap();
        p[2] = p[1].clone();
    });
    assert_eq!(c, 1, "{why}");
    let (c, why) = verify_edited("appended", |b| {
        let p = b["proofs"].as_array_mut().unwrap();
        let last = p[2].clone();
        p.push(last);
    });
    assert_eq!(c, 1, "{why}");
}

#[test]
fn a_segment_or_boundary_from_another_input_does_not_link() {
    let fx = fixture();
    let other = read_json(&fx.root.join("other.json"));
    // Each proof of the other bundle is valid on its own; spliced in, its links differ
    // (other boundary values, other salts).
    for i in 0..3 {
        let (c, why) = verify_edited(&format!("spliced{i}"), |b| {
            b["proofs"][i] = other["proofs"][i].clone();
        });
        assert_eq!(c, 1, "segment {i}: {why}");
        assert!(why.contains("does not link"), "segment {i}: {why}");
    }
    // The other bundle as a whole is valid: a fresh input is a fresh statement.
    ok(&[
        "verify",
        s(&fx.dir),
        "--proof",
        s(&fx.root.join("other.json")),
    ]);
    // A link value rewritten to match is a public value the proof was not made for.
    let (c, why) = verify_edited("relinked", |b| {
        let link = b["proofs"][0]["instances"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        b["proofs"][1] = other["proofs"][1].clone();
        b["proofs"][1]["instances"][0] = link;
    });
    assert_eq!(c, 1, "{why}");
    assert!(why.contains("does not verify"), "{why}");
    let _ = &fx.other_input;
}

#[test]
fn an_altered_statement_or_another_models_bundle_is_invalid() {
    let fx = fixture();
    let (c, why) = verify_edited("output", |b| {
        let v = &mut b["proofs"][2]["output"]["values"][0];
        *v = Value::from(v.as_f64().unwrap() + 0.0625);
    });
    assert_eq!(c, 1, "{why}");
    let (c, why) = verify_edited("input", |b| {
        b["proofs"][0]["instances"][0] =
            Value::from("0x0000000000000000000000000000000000000000000000000000000000000005");
    });
    assert_eq!(c, 1, "{why}");
    let (c, why) = verify_edited("model-id", |b| {
        b["model_id"] = Value::from(format!("0x{}", "ab".repeat(32)));
    });
    assert_eq!(c, 1, "{why}");
    // A pinned id other than the keys'.
    let out = zkinfer(&[
        "verify",
        s(&fx.dir),
        "--proof",
        s(&fx.dir.join("bundle.json")),
        "--model-id",
        &format!("0x{}", "cd".repeat(32)),
    ]);
    assert_eq!(code(&out), 1);
    // Another model, cut in two: its bundle is not this model's.
    let mlp = fx.root.join("mlp");
    compile(&mlp, "mlp_tiny", &["--segments", "2"]);
    ok(&["setup", s(&mlp), "--dev-srs"]);
    let theirs = mlp.join("bundle.json");
    ok(&[
        "prove",
        s(&mlp),
        "--input",
        s(&shared_models().join("mlp_tiny.input.json")),
        "--proof",
        s(&theirs),
        "--engine",
        "cpu",
    ]);
    let out = zkinfer(&["verify", s(&fx.dir), "--proof", s(&theirs)]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    // Its segment spliced into ours.
    let (c, why) = verify_edited("other-model", |b| {
        b["proofs"][2] = read_json(&theirs)["proofs"][1].clone();
    });
    assert_eq!(c, 1, "{why}");
}

#[test]
fn unusable_bundles_are_errors_and_the_evm_path_says_it_is_not_there_yet() {
    let fx = fixture();
    let path = fx.root.join("truncated.json");
    let text = std::fs::read_to_string(fx.dir.join("bundle.json")).unwrap();
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    let out = zkinfer(&["verify", s(&fx.dir), "--proof", s(&path)]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let (c, why) = verify_edited("empty", |b| {
        b["proofs"] = Value::Array(vec![]);
    });
    assert_eq!(c, 2, "{why}");
    // A single proof file where a bundle is due.
    let single = fx.root.join("single.json");
    let b = read_json(&fx.dir.join("bundle.json"));
    std::fs::write(&single, b["proofs"][0].to_string()).unwrap();
    let out = zkinfer(&["verify", s(&fx.dir), "--proof", s(&single)]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("bundles"), "{}", stderr(&out));
    let out = zkinfer(&[
        "verify-evm",
        s(&fx.dir),
        "--proof",
        s(&fx.dir.join("bundle.json")),
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("not yet verifiable on chain"),
        "{}",
        stderr(&out)
    );
}

/// A local Ray cluster of three nodes (head and two workers, processes on this machine)
/// proves the segments, each task shipped its segment's files through Ray's object store;
/// the bundle verifies.
#[test]
fn a_ray_cluster_proves_the_segments() {
    let fx = fixture();
    let ws = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let venv = std::process::Command::new(ws.join("scripts/ray/setup-venv.sh"))
        .current_dir(&ws)
        .output()
        .expect("runs scripts/ray/setup-venv.sh");
    assert!(
        venv.status.success(),
        "{}",
        String::from_utf8_lossy(&venv.stderr)
    );
    let python = String::from_utf8_lossy(&venv.stdout).trim().to_string();
    let bundle = fx.root.join("ray-bundle.json");
    let out = std::process::Command::new(&python)
        .arg(ws.join("scripts/ray/cluster_test.py"))
        .args([
            s(&fx.dir),
            "--input",
            s(&input()),
            "--proof",
            s(&bundle),
            "--zkinfer",
            env!("CARGO_BIN_EXE_zkinfer"),
        ])
        .output()
        .expect("runs cluster_test.py");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    eprintln!("{said}");
    ok(&["verify", s(&fx.dir), "--proof", s(&bundle)]);
}

/// The steps of a distributed aggregation (`zkinfer fold`, what the Ray driver's tasks
/// run): the plan of a tree over three segments, a segment's part file, and a node that
/// refuses a wrong part, a wrong count of parts, a node that is not there and a child
/// whose key it does not have — all before any aggregation key is made.
#[test]
fn fold_plans_a_tree_proves_a_part_and_refuses_wrong_parts() {
    let fx = fixture();
    let plan: Value =
        serde_json::from_str(&ok(&["fold", s(&fx.dir), "--plan", "--leaf", "1"])).unwrap();
    assert_eq!(plan["format"], "zkinfer-aggregate-plan");
    assert_eq!(plan["segments"], 3);
    let nodes = plan["nodes"].as_array().unwrap();
    // Leaves 0, 1, 2; node 3 folds 0 and 1; node 2, alone at its level, goes up as it
    // is; the root folds 3 and 2.
    assert_eq!(nodes.len(), 5);
    assert_eq!(
        nodes[3]["parts"],
        serde_json::json!([{"node": 0}, {"node": 1}])
    );
    assert_eq!(
        nodes[4]["parts"],
        serde_json::json!([{"node": 3}, {"node": 2}])
    );
    let flat: Value = serde_json::from_str(&ok(&["fold", s(&fx.dir), "--plan"])).unwrap();
    assert_eq!(flat["nodes"].as_array().unwrap().len(), 1);

    let w = witness(fx, "fold-witness.json");
    let part = fx.root.join("fold-part0.json");
    let out = ok(&[
        "fold",
        s(&fx.dir),
        "--segment",
        "0",
        "--witness",
        s(&w),
        "--out",
        s(&part),
    ]);
    assert!(out.contains("segment 0 of 3"), "{out}");
    let file = read_json(&part);
    assert_eq!(file["format"], "zkinfer-aggregate-part");
    assert_eq!(file["segment"], 0);
    assert_eq!(file["statements"].as_array().unwrap().len(), 1);

    let out_file = fx.root.join("fold-out.json");
    let fold = |extra: &[&str]| {
        let mut args = vec![
            "fold",
            s(&fx.dir),
            "--leaf",
            "1",
            "--dev-srs",
            "--out",
            s(&out_file),
        ];
        args.extend_from_slice(extra);
        let out = zkinfer(&args);
        assert_eq!(code(&out), 2, "{extra:?}: {}{}", stdout(&out), stderr(&out));
        assert!(!out_file.exists());
        stderr(&out)
    };
    let err = fold(&["--node", "1", s(&part)]);
    assert!(
        err.contains("the part of segment 0") && err.contains("segment 1"),
        "{err}"
    );
    let err = fold(&["--node", "9", s(&part)]);
    assert!(err.contains("nodes 0 to 4"), "{err}");
    let err = fold(&["--node", "0", s(&part), s(&part)]);
    assert!(err.contains("node 0 folds 1 (segment 0); given 2"), "{err}");
    let err = fold(&["--node", "3", s(&part), s(&part)]);
    assert!(err.contains("fold --node 0"), "{err}");
    let out = zkinfer(&["fold", s(&fx.dir)]);
    assert_eq!(code(&out), 2);
}

/// `zkinfer verify` of the committed aggregated proof (mlp_tiny in 2 segments folded into
/// one, `scripts/make-aggregate-fixture.sh`): valid, pinned by its aggregate id; the model
/// id it folds is not that pin.
#[test]
fn verify_reads_an_aggregated_proof_and_its_pin() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/aggregate");
    let (dir, proof) = (root.join("m"), root.join("aggregate.json"));
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&proof).unwrap()).unwrap();
    let out = ok(&["verify", s(&dir), "--proof", s(&proof)]);
    assert!(
        out.contains("valid: `mlp_tiny` in one aggregated proof of 2"),
        "{out}"
    );
    let id = file["aggregate_id"].as_str().unwrap();
    ok(&["verify", s(&dir), "--proof", s(&proof), "--model-id", id]);
    let folded = file["model_id"].as_str().unwrap();
    let out = zkinfer(&[
        "verify",
        s(&dir),
        "--proof",
        s(&proof),
        "--model-id",
        folded,
    ]);
    assert_eq!(code(&out), 1);
    assert!(stdout(&out).contains("aggregate id"), "{}", stdout(&out));
}

/// `compile --aggregate` plans the segments for folding: fewer commitments than the
/// default plan (here the one-table range checks where proving alone takes limbs), said
/// on its output; it does not combine with `--certify`, whose batches are not folded.
#[test]
fn compile_for_aggregation_plans_fewer_commitments() {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("segments-aggregate");
    let _ = std::fs::remove_dir_all(&root);
    let verified = |dir: &Path| -> (f64, Vec<u64>) {
        (0..2).fold((0.0, Vec::new()), |(n, mut limbs), i| {
            let c = read_json(&dir.join(format!("segment-{i}/circuit.json")));
            limbs.push(c["plan"]["layout"]["limb_bits"].as_u64().unwrap());
            (n + c["plan"]["terms"]["verified"].as_f64().unwrap(), limbs)
        })
    };
    let fast = root.join("fast");
    compile(&fast, "mlp_tiny", &["--segments", "2"]);
    let folded = root.join("folded");
    let out = compile(&folded, "mlp_tiny", &["--segments", "2", "--aggregate"]);
    assert!(out.contains("planned for `zkinfer aggregate`"), "{out}");
    let ((fast_n, fast_limbs), (folded_n, folded_limbs)) = (verified(&fast), verified(&folded));
    assert!(folded_n < fast_n, "{folded_n} commitments against {fast_n}");
    assert_eq!(folded_limbs, [0, 0]);
    assert!(fast_limbs.iter().all(|&l| l > 0), "{fast_limbs:?}");

    let models = shared_models();
    let out = zkinfer(&[
        "compile",
        s(&models.join("mlp_tiny.onnx")),
        "--calibration",
        s(&models.join("mlp_tiny.input.json")),
        "--out",
        s(&root.join("cert")),
        "--certify",
        "2",
        "--aggregate",
    ]);
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert!(err.contains("--aggregate"), "{err}");

    // A tree's shape is checked before any key is made: --arity needs --leaf, a leaf
    // folds at least one segment and a parent at least two nodes.
    let input = models.join("mlp_tiny.input.json");
    for (extra, says) in [
        (&["--arity", "3"][..], "--leaf"),
        (&["--leaf", "0"][..], "--leaf"),
        (&["--leaf", "1", "--arity", "1"][..], "--arity"),
    ] {
        let mut args = vec![
            "aggregate",
            s(&folded),
            "--input",
            s(&input),
            "--proof",
            "unused.json",
            "--dev-srs",
        ];
        args.extend_from_slice(extra);
        let out = zkinfer(&args);
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{extra:?}: {err}");
        assert!(err.contains(says), "{extra:?}: {err}");
    }
}
