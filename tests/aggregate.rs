//! Aggregation (issue 18): a model's segment proofs folded into one proof, verified
//! natively and in the EVM; every cheat on the aggregated statement is refused.
//!
//! The verifier's tests read the committed aggregated proof of `fixtures/aggregate`
//! (mlp_tiny in 2 segments, `scripts/make-aggregate-fixture.sh`), so that every cheat is
//! tried without waiting for a fold. One test folds the same bundle afresh by a tree of
//! three aggregations (~16 minutes on two cores, one node at a time), each proof passed
//! on as the part file a cluster worker writes (`zkinfer fold`), and tries a cheat on
//! its links and on the part files; another checks that the committed fixture is what
//! the current code makes.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use zkinfer_aggregate::{AggregateFile, AggregateVerifierKey, PartFile};
use zkinfer_circuits::halo2_proofs::halo2curves::bn256::Fr;
use zkinfer_circuits::halo2_proofs::poly::commitment::Params;
use zkinfer_pipeline::{compile, CompileOptions};
use zkinfer_tests::shared_models;
use zkinfer_verifier::{Verdict, VerifierKey};

struct Fixture {
    keys: Vec<VerifierKey>,
    avk: AggregateVerifierKey,
    file: AggregateFile,
}

/// The degree of the aggregation circuit in these tests.
const AGG_K: u32 = 21;

/// The committed aggregated proof and the keys it is verified with.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/aggregate");
        let read = |p: &str| std::fs::read(dir.join(p)).unwrap();
        let keys = (0..2)
            .map(|i| VerifierKey::from_bytes(&read(&format!("m/segment-{i}/vk"))).unwrap())
            .collect();
        let avk = AggregateVerifierKey::from_bytes(&read("m/aggregate/vk")).unwrap();
        let text = String::from_utf8(read("aggregate.json")).unwrap();
        let file = AggregateFile::parse(&text).unwrap();
        Fixture { keys, avk, file }
    })
}

/// mlp_tiny in 2 segments planned for folding, as `scripts/make-aggregate-fixture.sh`
/// compiles it: the segment keys, their proofs with the Poseidon transcript and their
/// statements, made once for the fresh folds; and segment 1 proven on another input (a
/// cheat's proof: valid alone, but not linked to segment 0's output).
struct Segments {
    big: Arc<zkinfer_prover::Params>,
    keys: Vec<VerifierKey>,
    snarks: Vec<zkinfer_aggregate::Snark>,
    statements: Vec<zkinfer_verifier::ProofFile>,
    unlinked: zkinfer_aggregate::Snark,
}

fn segments() -> &'static Segments {
    static S: OnceLock<Segments> = OnceLock::new();
    S.get_or_init(|| {
        let models = shared_models();
        let cal = std::fs::read_to_string(models.join("mlp_tiny.input.json")).unwrap();
        let options = CompileOptions {
            bits: zkinfer_pipeline::Bits::Fixed(8),
            min_segments: 2,
            objective: zkinfer_circuits::Objective::Aggregate,
            ..Default::default()
        };
        let c = compile(&models.join("mlp_tiny.onnx"), &cal, &options).unwrap();
        assert_eq!(c.circuits.len(), 2);
        let t = Instant::now();
        let big = zkinfer_tests::dev_srs(AGG_K);
        eprintln!("srs k={AGG_K}: {:?}", t.elapsed());
        let sample = zkinfer_pipeline::input_sample(&c.circuits[0], &cal).unwrap();
        let other: Vec<f32> = sample.iter().map(|x| 0.5 * x).collect();
        let wf = zkinfer_pipeline::segments::witness(&c.circuits, &sample).unwrap();
        let wo = zkinfer_pipeline::segments::witness(&c.circuits, &other).unwrap();
        let (mut keys, mut snarks, mut statements, mut unlinked) = (vec![], vec![], vec![], None);
        for (i, circuit) in c.circuits.iter().enumerate() {
            let k = circuit.plan.layout.k;
            let mut params = (*big).clone();
            params.downsize(k);
            let (pk, vk) = zkinfer_pipeline::setup(circuit, &params).unwrap();
            let model = Arc::new(circuit.model.clone());
            let prove = |w: &zkinfer_pipeline::segments::WitnessFile| {
                let trace = Arc::new(model.run(&w.inputs[i]).unwrap());
                let w = zkinfer_prover::witness(model.clone(), &pk, trace, w.salts(i).unwrap())
                    .unwrap();
                let statement = zkinfer_aggregate::statement_file(&vk, &w);
                (
                    zkinfer_aggregate::prove_inner(&params, &pk, w).unwrap(),
                    statement,
                )
            };
            let (snark, statement) = prove(&wf);
            if i == 1 {
                unlinked = Some(prove(&wo).0);
            }
            snarks.push(snark);
            statements.push(statement);
            keys.push(vk);
        }
        Segments {
            big,
            keys,
            snarks,
            statements,
            unlinked: unlinked.unwrap(),
        }
    })
}

/// An aggregation circuit's key generation or proof takes 7 to 13 GB: one at a time.
fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn the_committed_aggregated_proof_verifies() {
    let fx = fixture();
    let t = Instant::now();
    let v = zkinfer_aggregate::verify(&fx.keys, &fx.avk, &fx.file);
    eprintln!("verified in {:?}", t.elapsed());
    assert!(matches!(v, Verdict::Valid { .. }), "{v:?}");
}

/// Where the test command's fresh tree of aggregations leaves its files, as the fixture
/// holds them, for the WebAssembly verifier (scripts/test-wasm.sh).
fn tree_dir() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        std::path::PathBuf::from,
    );
    target.join("aggregate-tree")
}

/// Writes an aggregated proof and its keys as the fixture holds them (for
/// scripts/test-wasm.sh).
fn leave_for_wasm(fx: &Fixture, dir: &std::path::Path) {
    for (i, key) in fx.keys.iter().enumerate() {
        let seg = dir.join(format!("m/segment-{i}"));
        std::fs::create_dir_all(&seg).unwrap();
        std::fs::write(seg.join("vk"), key.to_bytes()).unwrap();
    }
    std::fs::create_dir_all(dir.join("m/aggregate")).unwrap();
    std::fs::write(dir.join("m/aggregate/vk"), fx.avk.to_bytes()).unwrap();
    std::fs::write(dir.join("aggregate.json"), fx.file.to_json()).unwrap();
}

/// The committed fixture is what this code makes: key generation is deterministic, so
/// the aggregation verifying key of one circuit over the fresh segments' keys is the
/// fixture's (its aggregate id binds the segment keys and the circuit). The tree test
/// proves with the same code.
#[test]
fn the_committed_fixture_is_what_this_code_makes() {
    let s = segments();
    let _one = heavy();
    let t = Instant::now();
    let avk =
        zkinfer_aggregate::verifying_key(&s.big, "mlp_tiny", &s.keys, None, &Default::default())
            .unwrap();
    eprintln!("aggregation verifying key: {:?}", t.elapsed());
    assert_eq!(
        avk.id(),
        fixture().avk.id(),
        "tests/fixtures/aggregate is stale: rerun scripts/make-aggregate-fixture.sh"
    );
}

/// `verify` of the fixture's proof edited by `f`: the reason it is refused.
fn refused(f: impl FnOnce(&mut AggregateFile)) -> String {
    let fx = fixture();
    let mut file = fx.file.clone();
    f(&mut file);
    match zkinfer_aggregate::verify(&fx.keys, &fx.avk, &file) {
        Verdict::Invalid { reason } => reason,
        v => panic!("an edited aggregated proof was accepted: {v:?}"),
    }
}

/// The committed root of the tree test over a leaf whose segment was proven on another
/// input, and the variable that has the test remake it.
const UNLINKED_ROOT: &str = "fixtures/aggregate-tree-unlinked.json";
const REMAKE_CHEAT: &str = "ZKINFER_REMAKE_TREE_CHEAT";

/// A tree of aggregations over the same segments, one a leaf: two leaves folding a
/// segment each (Poseidon transcripts, their accumulators and links exposed) and a root
/// folding both, linking them. Verified natively and in the EVM (one contract, 13
/// public values); a root over a leaf whose segment was proven on another input than
/// the first segment's output (each leaf valid alone; committed, see [`UNLINKED_ROOT`])
/// does not verify. Each proof reaches its node through a part file, read back checked:
/// a part whose statement, public values or proof bytes were altered, or given in
/// another part's place, is refused.
#[test]
fn a_tree_of_aggregations_verifies_and_links_its_leaves() {
    use zkinfer_aggregate::{Part, Tree};
    let s = segments();
    let _one = heavy();
    let tree = |node| {
        Some(Tree {
            leaf: 1,
            arity: 2,
            node,
        })
    };
    let nodes = zkinfer_aggregate::tree::nodes(&s.keys, tree(0)).unwrap();
    assert_eq!(nodes.len(), 3);
    assert_eq!(nodes[2].parts, vec![Part::Node(0), Part::Node(1)]);
    // One node's keys at a time (a proving key is gigabytes): each node's proofs, the
    // cheat's included, are made while its key is held.
    let mut earlier = zkinfer_aggregate::Earlier::new();
    let mut keys = |j: usize| {
        let t = Instant::now();
        let (apk, avk) =
            zkinfer_aggregate::setup(&s.big, "mlp_tiny", &s.keys, tree(j), &earlier).unwrap();
        eprintln!("node {j} keys: {:?} {:?}", t.elapsed(), avk.info.config);
        earlier.insert(j, avk.vk.clone());
        (apk, avk)
    };
    let leaf = |j: usize,
                apk: &zkinfer_aggregate::AggregateKey,
                snark: &zkinfer_aggregate::Snark| {
        let t = Instant::now();
        let p = zkinfer_aggregate::prove_node(&s.big, apk, &nodes[j], vec![snark.clone()]).unwrap();
        eprintln!("leaf {j}: {:?}", t.elapsed());
        p
    };
    // Every proof of the tree travels as the part file a cluster worker writes (`zkinfer
    // fold`) and is read back, checked, by the node that folds it.
    let travel = |part: &PartFile, want: Part, child: Option<&AggregateVerifierKey>| {
        PartFile::parse(&part.to_json())
            .unwrap()
            .snark(want, &s.keys, &nodes, child)
    };
    let seg_part = |i: usize| {
        PartFile::of_segment(
            "mlp_tiny",
            &s.keys,
            i,
            s.statements[i].clone(),
            &s.snarks[i],
        )
    };
    let parts_cheats_refused =
        |part: &PartFile, want: Part, child: Option<&AggregateVerifierKey>| {
            for (cheat, why) in part_cheats(part) {
                let err = travel(&cheat, want, child).unwrap_err().to_string();
                assert!(err.contains(why), "{why}: {err}");
            }
        };
    parts_cheats_refused(&seg_part(0), Part::Segment(0), None);
    let err = travel(&seg_part(0), Part::Segment(1), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("the part of segment 0"), "{err}");
    let (apk, leaf0_key) = keys(0);
    let leaf0 = leaf(
        0,
        &apk,
        &travel(&seg_part(0), Part::Segment(0), None).unwrap(),
    );
    drop(apk);
    let (apk, leaf1_key) = keys(1);
    let leaf1 = leaf(
        1,
        &apk,
        &travel(&seg_part(1), Part::Segment(1), None).unwrap(),
    );
    // Segment 1 proven on another input: its leaf is a valid proof, but not linked to
    // segment 0's output. Made only to remake the committed cheat (below).
    let remake = std::env::var_os(REMAKE_CHEAT).is_some();
    let unlinked = remake.then(|| leaf(1, &apk, &s.unlinked));
    drop(apk);
    let part0 = PartFile::of_node(&leaf0_key, vec![s.statements[0].clone()], &leaf0);
    let part1 = PartFile::of_node(&leaf1_key, vec![s.statements[1].clone()], &leaf1);
    parts_cheats_refused(&part0, Part::Node(0), Some(&leaf0_key));
    let err = travel(&part1, Part::Node(0), Some(&leaf0_key))
        .unwrap_err()
        .to_string();
    assert!(err.contains("the part of node 1"), "{err}");
    let mut renamed = part1.clone();
    renamed.node = Some(0);
    let err = travel(&renamed, Part::Node(0), Some(&leaf0_key))
        .unwrap_err()
        .to_string();
    assert!(err.contains("aggregation key"), "{err}");
    let leaf0 = travel(&part0, Part::Node(0), Some(&leaf0_key)).unwrap();
    let leaf1 = travel(&part1, Part::Node(1), Some(&leaf1_key)).unwrap();
    // A leaf exposes its accumulator, its digest and its segment's link to the other, and
    // its parent reads the accumulator as one to fold (without the indices a parent would
    // take it for plain values, and an honest tree would still verify: a leaf over a
    // proof that fails its pairing would then pass, so the indices are pinned here).
    assert_eq!(
        leaf0.instances[0].len(),
        zkinfer_aggregate::NUM_INSTANCE + 1
    );
    let limbs: Vec<(usize, usize)> = (0..12).map(|i| (0, i)).collect();
    assert_eq!(leaf0.protocol.accumulator_indices, vec![limbs]);
    let (apk, root) = keys(2);
    let t = Instant::now();
    let (instances, proof) =
        zkinfer_aggregate::prove(&s.big, &apk, &nodes[2], vec![leaf0.clone(), leaf1]).unwrap();
    eprintln!("root: {:?}, {} bytes", t.elapsed(), proof.len());
    // The root over the unlinked leaf, made by this code with these keys: committed, as
    // it takes a leaf and a root proof (~8 minutes) to make.
    let cheat_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(UNLINKED_ROOT);
    if let Some(unlinked) = unlinked {
        let (i, p) =
            zkinfer_aggregate::prove(&s.big, &apk, &nodes[2], vec![leaf0, unlinked]).unwrap();
        let file = AggregateFile::new(&root, s.statements.clone(), &i, &p);
        std::fs::write(&cheat_path, file.to_json()).unwrap();
    }
    drop(apk);
    let fx = Fixture {
        keys: s.keys.clone(),
        avk: root.clone(),
        file: AggregateFile::new(&root, s.statements.clone(), &instances, &proof),
    };
    let v = zkinfer_aggregate::verify(&fx.keys, &fx.avk, &fx.file);
    assert!(matches!(v, Verdict::Valid { .. }), "{v:?}");
    let verifier = evm_accepts(&fx);
    let dir = tree_dir();
    let _ = std::fs::remove_dir_all(&dir);
    leave_for_wasm(&fx, &dir);
    // The root is bound to its tree: an inner node's key, or the one-circuit fold's
    // digest, is refused.
    let v = zkinfer_aggregate::verify(&fx.keys, &leaf0_key, &fx.file);
    assert!(matches!(v, Verdict::Invalid { .. }), "{v:?}");
    let mut flat = fx.file.clone();
    redigest(&mut flat);
    let v = zkinfer_aggregate::verify(&fx.keys, &fx.avk, &flat);
    assert!(
        matches!(v, Verdict::Invalid { ref reason } if reason.contains("digest")),
        "{v:?}"
    );
    // The root over the unlinked leaf: the link between the leaves does not hold. Made
    // with this very root key (its id).
    let file = AggregateFile::parse(&std::fs::read_to_string(&cheat_path).unwrap()).unwrap();
    assert_eq!(
        file.aggregate_id,
        root.id(),
        "{UNLINKED_ROOT} is stale: rerun this test with {REMAKE_CHEAT}=1"
    );
    // The contract sees only the digest and the accumulator: it refuses the proof.
    let run = zkinfer_evm::deploy_and_call(&verifier, file.calldata().unwrap()).unwrap();
    assert!(
        !run.accepted,
        "the EVM accepted a tree over unlinked segments"
    );
    let v = zkinfer_aggregate::verify(&fx.keys, &fx.avk, &file);
    assert!(matches!(v, Verdict::Invalid { .. }), "{v:?}");
}

/// A part file's cheats, each with what its refusal says: a statement's last public value
/// raised (its output too, where public) and, in a segment's part, the proof's public
/// value with it (the proof refuses it), a public value the statements do not give,
/// and the proof's last byte changed.
fn part_cheats(part: &PartFile) -> Vec<(PartFile, &'static str)> {
    let mut raised = part.clone();
    let last = raised.statements.last_mut().unwrap();
    let n = last.instances.len();
    last.instances[n - 1] = bumped(&last.instances[n - 1]);
    if let Some(out) = last.output.as_mut() {
        let v = out.values.len() - 1;
        out.values[v] += 2f64.powi(-out.scale);
    }
    if part.segment.is_some() {
        let m = raised.instances.len();
        raised.instances[m - 1] = bumped(&raised.instances[m - 1]);
    }
    let mut value = part.clone();
    let m = value.instances.len();
    value.instances[m - 1] = bumped(&value.instances[m - 1]);
    let mut bytes = part.clone();
    let tail = if bytes.proof.ends_with('0') { "1" } else { "0" };
    bytes.proof.pop();
    bytes.proof.push_str(tail);
    vec![
        (
            raised,
            if part.segment.is_some() {
                "does not verify"
            } else {
                "not those of its statements"
            },
        ),
        (value, "not those of its statements"),
        (bytes, "does not verify"),
    ]
}

/// `h` plus one, as 0x-hex.
fn bumped(h: &str) -> String {
    zkinfer_verifier::fr_to_hex(&(zkinfer_verifier::fr_from_hex(h).unwrap() + Fr::one()))
}

/// The last output element raised by one step, in the public values and the stated output.
fn raise_output(f: &mut AggregateFile) {
    let last = f.statements.last_mut().unwrap();
    let n = last.instances.len();
    last.instances[n - 1] = bumped(&last.instances[n - 1]);
    let out = last.output.as_mut().unwrap();
    let v = out.values.len() - 1;
    out.values[v] += 2f64.powi(-out.scale);
}

/// The digest of the file's statements as they now are (what a cheat would recompute).
fn redigest(f: &mut AggregateFile) {
    let all: Vec<Vec<Fr>> = f
        .statements
        .iter()
        .map(|s| {
            s.instances
                .iter()
                .map(|h| zkinfer_verifier::fr_from_hex(h).unwrap())
                .collect()
        })
        .collect();
    f.digest = zkinfer_verifier::fr_to_hex(&zkinfer_aggregate::statement_digest(&all));
}

#[test]
fn every_cheat_on_an_aggregated_proof_is_refused() {
    let fx = fixture();
    // A stated output value changed (with its public value).
    let why = refused(raise_output);
    assert!(why.contains("digest"), "{why}");
    // The digest recomputed for that edit: the proof refuses it.
    let why = refused(|f| {
        raise_output(f);
        redigest(f);
    });
    assert!(why.contains("does not verify"), "{why}");
    // A link between the segments changed on both sides (they still agree).
    let why = refused(|f| {
        let n = f.statements[0].instances.len();
        f.statements[0].instances[n - 1] = bumped(&f.statements[0].instances[n - 1]);
        f.statements[1].instances[0] = bumped(&f.statements[1].instances[0]);
        redigest(f);
    });
    assert!(why.contains("does not verify"), "{why}");
    // An accumulator limb changed: the proof, or the pairing, refuses it.
    let why = refused(|f| f.accumulator[0] = bumped(&f.accumulator[0]));
    assert!(
        why.contains("does not verify") || why.contains("accumulator"),
        "{why}"
    );
    // A segment dropped, the model or aggregation id of another key, proof bytes flipped.
    assert!(refused(|f| drop(f.statements.pop())).contains("segments"));
    assert!(refused(|f| f.aggregate_id = "0x00".into()).contains("aggregation key"));
    assert!(refused(|f| f.model_id = "0x00".into()).contains("model id"));
    let why = refused(|f| {
        let mut b = f.proof.clone().into_bytes();
        let i = b.len() / 2;
        b[i] = if b[i] == b'0' { b'1' } else { b'0' };
        f.proof = String::from_utf8(b).unwrap();
    });
    assert!(why.contains("does not verify"), "{why}");
    // Bytes after the proof's end (one proof, one encoding).
    let why = refused(|f| f.proof.push_str("00"));
    assert!(why.contains("after its end"), "{why}");
    // The segment keys in another order.
    let mut swapped = fx.keys.clone();
    swapped.swap(0, 1);
    let v = zkinfer_aggregate::verify(&swapped, &fx.avk, &fx.file);
    assert!(matches!(v, Verdict::Invalid { .. }), "{v:?}");
}

#[test]
fn the_evm_verifies_an_aggregated_proof_and_refuses_another_digest() {
    let _ = evm_accepts(fixture());
}

/// One contract verifies the aggregated proof in revm within 600k gas, and refuses another
/// digest or an altered proof.
fn evm_accepts(fx: &Fixture) -> Vec<zkinfer_evm::Bytecode> {
    let solc = zkinfer_evm::Solc::find().expect("a Solidity compiler (scripts/install-solc.sh)");
    let params = fx.avk.verifier_params().unwrap();
    let build = zkinfer_evm::build_aggregation_verifier(
        &params,
        &fx.avk.vk,
        zkinfer_aggregate::NUM_INSTANCE,
        &solc,
    )
    .unwrap();
    let run = zkinfer_evm::deploy_and_call(&build.bytecode, fx.file.calldata().unwrap()).unwrap();
    eprintln!(
        "aggregation verifier: {} contract(s) {:?} bytes, call {} gas",
        run.code_sizes.len(),
        run.code_sizes,
        run.gas_used
    );
    assert!(run.accepted, "{:?}", run.reason);
    // The target: one contract within EIP-170 (the generated code's reads folded
    // into loops) and a call within 600k gas.
    assert_eq!(run.code_sizes.len(), 1, "{:?}", run.code_sizes);
    assert!(run.gas_used <= 600_000, "{} gas", run.gas_used);
    // The digest of another statement: refused.
    let mut other = fx.file.clone();
    other.digest = bumped(&other.digest);
    let run = zkinfer_evm::deploy_and_call(&build.bytecode, other.calldata().unwrap()).unwrap();
    assert!(!run.accepted);
    // A commitment of the proof altered (the first, read by the folded loop), and the
    // last byte of the proof: refused.
    let calldata = fx.file.calldata().unwrap();
    let first_point = 32 * zkinfer_aggregate::NUM_INSTANCE;
    for at in [first_point + 5, calldata.len() - 1] {
        let mut bad = calldata.clone();
        bad[at] ^= 1;
        let run = zkinfer_evm::deploy_and_call(&build.bytecode, bad).unwrap();
        assert!(!run.accepted, "byte {at} altered");
    }
    build.bytecode
}
