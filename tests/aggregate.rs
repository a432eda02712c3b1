//! Aggregation (issue 18): a model's segment proofs folded into one proof, verified
//! natively and in the EVM; every cheat on the aggregated statement is refused.
//!
//! The verifier's tests read committed aggregated proofs, so that every cheat is tried
//! without waiting for a fold (a 2^21-row proof takes minutes): `fixtures/aggregate`
//! (mlp_tiny in 2 segments folded by one circuit, `scripts/make-aggregate-fixture.sh`)
//! and `fixtures/aggregate-tree` (the same segments folded by a tree of three
//! aggregations, each proof passed on as the part file a cluster worker writes, `zkinfer
//! fold`; remade by the tree test with `ZKINFER_REMAKE_TREE=1`). Both are checked to be
//! what the current code makes: the segment keys are made afresh, and two aggregation
//! verifying keys from them (a leaf of the tree and its root; the one circuit and the tree
//! share `circuit::build`), each compared with the committed one. The other two (the one
//! circuit's and the second leaf's: ~7 minutes more at k 21) are `--ignored`, run by
//! `scripts/bench-aggregate.sh`, and the one circuit's node (its links and public values)
//! is compared in the test command without a key.

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
/// compiles it: the segment keys, and, only to remake the committed tree (see
/// [`REMAKE_TREE`]), their proofs with the Poseidon transcript and their statements, and
/// segment 1 proven on another input (a cheat's proof: valid alone, but not linked to
/// segment 0's output).
struct Segments {
    big: Arc<zkinfer_prover::Params>,
    keys: Vec<VerifierKey>,
    proven: Option<Proven>,
}

struct Proven {
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
        let remaking = std::env::var_os(REMAKE_TREE).is_some();
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
            if remaking {
                let (snark, statement) = prove(&wf);
                if i == 1 {
                    unlinked = Some(prove(&wo).0);
                }
                snarks.push(snark);
                statements.push(statement);
            }
            keys.push(vk);
        }
        let proven = unlinked.map(|unlinked| Proven {
            snarks,
            statements,
            unlinked,
        });
        Segments { big, keys, proven }
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

/// The committed fixture is of this code's segments and node: its segment keys are the
/// fresh ones byte for byte, and its key's node (the statements' public values and the
/// links between the segments) is the one this code lays out for them. The circuit
/// itself is the tree's (`circuit::build`), whose keys the tree test makes afresh; this
/// one's key is made afresh by [`every_committed_key_is_what_this_code_makes`].
#[test]
fn the_committed_fixture_is_of_this_codes_segments_and_node() {
    let s = segments();
    let fx = fixture();
    let stale = "tests/fixtures/aggregate is stale: rerun scripts/make-aggregate-fixture.sh";
    for (fresh, committed) in s.keys.iter().zip(&fx.keys) {
        assert_eq!(fresh.to_bytes(), committed.to_bytes(), "{stale}");
    }
    let node = &zkinfer_aggregate::tree::nodes(&s.keys, None).unwrap()[0];
    let info = &fx.avk.info;
    assert_eq!(info.model_id, zkinfer_verifier::keys_id(&s.keys), "{stale}");
    assert_eq!(info.num_instances, node.num_instances, "{stale}");
    assert_eq!(info.links, node.links, "{stale}");
    assert_eq!(info.tree, None);
}

/// The committed keys the test command reads without making them are what this code
/// makes (key generation is deterministic): the one circuit's aggregation verifying key
/// over the fresh segment keys is the fixture's (its aggregate id binds the segment keys
/// and the circuit), and the tree's second leaf's is the committed one. Two 2^21-row key
/// generations (~7 minutes here); `scripts/bench-aggregate.sh` runs it.
#[test]
#[ignore = "two 2^21-row key generations, ~7 minutes: scripts/bench-aggregate.sh runs it"]
fn every_committed_key_is_what_this_code_makes() {
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
    let t = Instant::now();
    let leaf1 =
        zkinfer_aggregate::verifying_key(&s.big, "mlp_tiny", &s.keys, tree(1), &Default::default())
            .unwrap();
    eprintln!("node 1 verifying key: {:?}", t.elapsed());
    assert_eq!(
        leaf1.to_bytes(),
        committed_node_key(1).to_bytes(),
        "{TREE} is stale: rerun the tree test with {REMAKE_TREE}=1 and {REMAKE_CHEAT}=1"
    );
}

/// The committed verifying key of the tree's node `j` (a leaf: the root's is
/// `m/aggregate/vk`), as a tree's keys are laid out (`DIR/aggregate/node-<j>/vk`).
fn committed_node_key(j: usize) -> AggregateVerifierKey {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(TREE)
        .join(format!("m/aggregate/node-{j}/vk"));
    AggregateVerifierKey::from_bytes(&std::fs::read(&path).unwrap()).unwrap()
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

/// The committed tree of aggregations (see the tree test): its segment and leaf part
/// files, its root's aggregated proof with the keys a verifier reads (as
/// `fixtures/aggregate` holds them: the WebAssembly verifier's test reads it too), and a
/// cheat's root.
const TREE: &str = "fixtures/aggregate-tree";
/// Set, the tree test folds the tree afresh and rewrites [`TREE`] (~25 minutes, 14 GB).
const REMAKE_TREE: &str = "ZKINFER_REMAKE_TREE";
/// Set with [`REMAKE_TREE`], the cheat's root is remade too (two k 21 proofs more).
const REMAKE_CHEAT: &str = "ZKINFER_REMAKE_TREE_CHEAT";

/// The tree of the tree test: one segment a leaf, two children a node.
fn tree(node: usize) -> Option<zkinfer_aggregate::Tree> {
    Some(zkinfer_aggregate::Tree {
        leaf: 1,
        arity: 2,
        node,
    })
}

/// Folds the segments by the tree afresh, as `zkinfer fold` does node by node, and
/// writes [`TREE`]; returns the nodes' verifying keys. Each proof reaches its node as a
/// part file, read back checked. The root over a leaf of segment 1 proven on another
/// input is remade only when [`REMAKE_CHEAT`] is set.
fn remake_tree(s: &Segments, dir: &std::path::Path) -> Vec<AggregateVerifierKey> {
    use zkinfer_aggregate::Part;
    let p = s.proven.as_ref().unwrap();
    let nodes = zkinfer_aggregate::tree::nodes(&s.keys, tree(0)).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let write = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();
    // One node's keys at a time (a proving key is gigabytes): each node's proofs are
    // made while its key is held.
    let mut earlier = zkinfer_aggregate::Earlier::new();
    let mut keys = |j: usize| {
        let t = Instant::now();
        let (apk, avk) =
            zkinfer_aggregate::setup(&s.big, "mlp_tiny", &s.keys, tree(j), &earlier).unwrap();
        eprintln!("node {j} keys: {:?} {:?}", t.elapsed(), avk.info.config);
        earlier.insert(j, avk.vk.clone());
        (apk, avk)
    };
    let fold = |j: usize, apk: &zkinfer_aggregate::AggregateKey, parts: Vec<_>| {
        let t = Instant::now();
        let proof = zkinfer_aggregate::prove_node(&s.big, apk, &nodes[j], parts).unwrap();
        eprintln!("node {j}: {:?}", t.elapsed());
        proof
    };
    let segment = |i: usize| {
        let part = PartFile::of_segment(
            "mlp_tiny",
            &s.keys,
            i,
            p.statements[i].clone(),
            &p.snarks[i],
        );
        write(&format!("segment-{i}.part.json"), part.to_json());
        part.snark(Part::Segment(i), &s.keys, &nodes, None).unwrap()
    };
    let (seg0, seg1) = (segment(0), segment(1));
    let (apk, leaf0_key) = keys(0);
    let leaf0 = fold(0, &apk, vec![seg0]);
    drop(apk);
    let (apk, leaf1_key) = keys(1);
    let leaf1 = fold(1, &apk, vec![seg1]);
    let cheat = std::env::var_os(REMAKE_CHEAT).is_some();
    let unlinked = cheat.then(|| fold(1, &apk, vec![p.unlinked.clone()]));
    drop(apk);
    let node_part = |key: &AggregateVerifierKey, i: usize, snark| {
        let part = PartFile::of_node(key, vec![p.statements[i].clone()], snark);
        write(&format!("node-{i}.part.json"), part.to_json());
        part.snark(Part::Node(i), &s.keys, &nodes, Some(key))
            .unwrap()
    };
    let (leaf0, leaf1) = (
        node_part(&leaf0_key, 0, &leaf0),
        node_part(&leaf1_key, 1, &leaf1),
    );
    let (apk, root) = keys(2);
    let t = Instant::now();
    let (instances, proof) =
        zkinfer_aggregate::prove(&s.big, &apk, &nodes[2], vec![leaf0.clone(), leaf1]).unwrap();
    eprintln!("root: {:?}, {} bytes", t.elapsed(), proof.len());
    write(
        "aggregate.json",
        AggregateFile::new(&root, p.statements.clone(), &instances, &proof).to_json(),
    );
    if let Some(unlinked) = unlinked {
        let (i, proof) =
            zkinfer_aggregate::prove(&s.big, &apk, &nodes[2], vec![leaf0, unlinked]).unwrap();
        write(
            "unlinked.json",
            AggregateFile::new(&root, p.statements.clone(), &i, &proof).to_json(),
        );
    }
    for (i, key) in s.keys.iter().enumerate() {
        let seg = dir.join(format!("m/segment-{i}"));
        std::fs::create_dir_all(&seg).unwrap();
        std::fs::write(seg.join("vk"), key.to_bytes()).unwrap();
    }
    for (j, key) in [&leaf0_key, &leaf1_key].into_iter().enumerate() {
        let node = dir.join(format!("m/aggregate/node-{j}"));
        std::fs::create_dir_all(&node).unwrap();
        std::fs::write(node.join("vk"), key.to_bytes()).unwrap();
    }
    std::fs::write(dir.join("m/aggregate/vk"), root.to_bytes()).unwrap();
    vec![leaf0_key, leaf1_key, root]
}

/// A tree of aggregations over the same segments, one a leaf: two leaves folding a
/// segment each (Poseidon transcripts, their accumulators and links exposed) and a root
/// folding both, linking them. Verified natively and in the EVM (one contract, 13
/// public values); a root over a leaf whose segment was proven on another input than
/// the first segment's output (each leaf valid alone) does not verify. Each proof
/// reaches its node through a part file, read back checked: a part whose statement,
/// public values or proof bytes were altered, or given in another part's place, is
/// refused.
///
/// The tree's proofs are committed ([`TREE`]; three 2^21-row proofs would take CI 20 to
/// 40 minutes): the test makes the first leaf's verifying key from the fresh segment keys
/// with this code, and the root's from it and the committed second leaf's (the root's
/// circuit holds its children's keys, theirs the segments'), and checks every committed
/// file against them, so a change to the circuits fails it until the tree is remade with
/// [`REMAKE_TREE`] set (with [`REMAKE_CHEAT`] too where the root's key changed). The
/// second leaf's key is made afresh by `every_committed_key_is_what_this_code_makes`.
#[test]
fn a_tree_of_aggregations_verifies_and_links_its_leaves() {
    use zkinfer_aggregate::Part;
    let s = segments();
    let _one = heavy();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(TREE);
    let nodes = zkinfer_aggregate::tree::nodes(&s.keys, tree(0)).unwrap();
    assert_eq!(nodes.len(), 3);
    assert_eq!(nodes[2].parts, vec![Part::Node(0), Part::Node(1)]);
    let node_keys = if s.proven.is_some() {
        remake_tree(s, &dir)
    } else {
        // The first leaf's key and the root's afresh, the second leaf's committed (made
        // afresh by `every_committed_key_is_what_this_code_makes`).
        let make = |j: usize, earlier: &zkinfer_aggregate::Earlier| {
            let t = Instant::now();
            let avk =
                zkinfer_aggregate::verifying_key(&s.big, "mlp_tiny", &s.keys, tree(j), earlier)
                    .unwrap();
            eprintln!("node {j} verifying key: {:?}", t.elapsed());
            avk
        };
        let leaf0 = make(0, &Default::default());
        let leaf1 = committed_node_key(1);
        let earlier = [(0, leaf0.vk.clone()), (1, leaf1.vk.clone())].into();
        let root = make(2, &earlier);
        vec![leaf0, leaf1, root]
    };
    let [leaf0_key, leaf1_key, root] = &node_keys[..] else {
        panic!("three nodes")
    };
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    assert_eq!(
        committed_node_key(0).to_bytes(),
        leaf0_key.to_bytes(),
        "{TREE}/m/aggregate/node-0/vk is stale: rerun this test with {REMAKE_TREE}=1 and {REMAKE_CHEAT}=1"
    );
    // The committed root was made with this code: its key is the one just made.
    let file = AggregateFile::parse(&read("aggregate.json")).unwrap();
    assert_eq!(
        file.aggregate_id,
        root.id(),
        "{TREE} is stale: rerun this test with {REMAKE_TREE}=1 and {REMAKE_CHEAT}=1"
    );
    assert_eq!(
        std::fs::read(dir.join("m/aggregate/vk")).unwrap(),
        root.to_bytes()
    );
    for (i, key) in s.keys.iter().enumerate() {
        let vk = std::fs::read(dir.join(format!("m/segment-{i}/vk"))).unwrap();
        assert_eq!(vk, key.to_bytes(), "{TREE}/m/segment-{i}/vk");
    }
    // Every proof of the tree travels as the part file a cluster worker writes (`zkinfer
    // fold`) and is read back, checked, by the node that folds it.
    let part = |name: &str| PartFile::parse(&read(name)).unwrap();
    let travel = |part: &PartFile, want: Part, child: Option<&AggregateVerifierKey>| {
        PartFile::parse(&part.to_json())
            .unwrap()
            .snark(want, &s.keys, &nodes, child)
    };
    let parts_cheats_refused =
        |part: &PartFile, want: Part, child: Option<&AggregateVerifierKey>| {
            for (cheat, why) in part_cheats(part) {
                let err = travel(&cheat, want, child).unwrap_err().to_string();
                assert!(err.contains(why), "{why}: {err}");
            }
        };
    let seg0 = part("segment-0.part.json");
    travel(&seg0, Part::Segment(0), None).unwrap();
    travel(&part("segment-1.part.json"), Part::Segment(1), None).unwrap();
    parts_cheats_refused(&seg0, Part::Segment(0), None);
    let err = travel(&seg0, Part::Segment(1), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("the part of segment 0"), "{err}");
    let (part0, part1) = (part("node-0.part.json"), part("node-1.part.json"));
    parts_cheats_refused(&part0, Part::Node(0), Some(leaf0_key));
    let err = travel(&part1, Part::Node(0), Some(leaf0_key))
        .unwrap_err()
        .to_string();
    assert!(err.contains("the part of node 1"), "{err}");
    let mut renamed = part1.clone();
    renamed.node = Some(0);
    let err = travel(&renamed, Part::Node(0), Some(leaf0_key))
        .unwrap_err()
        .to_string();
    assert!(err.contains("aggregation key"), "{err}");
    let leaf0 = travel(&part0, Part::Node(0), Some(leaf0_key)).unwrap();
    travel(&part1, Part::Node(1), Some(leaf1_key)).unwrap();
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
    let fx = Fixture {
        keys: s.keys.clone(),
        avk: root.clone(),
        file,
    };
    let v = zkinfer_aggregate::verify(&fx.keys, &fx.avk, &fx.file);
    assert!(matches!(v, Verdict::Valid { .. }), "{v:?}");
    let verifier = evm_accepts(&fx);
    // The root is bound to its tree: an inner node's key, or the one-circuit fold's
    // digest, is refused.
    let v = zkinfer_aggregate::verify(&fx.keys, leaf0_key, &fx.file);
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
    let file = AggregateFile::parse(&read("unlinked.json")).unwrap();
    assert_eq!(
        file.aggregate_id,
        root.id(),
        "{TREE}/unlinked.json is stale: rerun this test with {REMAKE_TREE}=1 and {REMAKE_CHEAT}=1"
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
