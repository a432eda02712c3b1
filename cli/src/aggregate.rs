//! `zkinfer aggregate`: a model's proofs (one per segment, or the one circuit) folded
//! into one proof with 13 public values, and its verification natively and in the EVM.
//!
//! ```text
//! DIR/aggregate/pk, DIR/aggregate/vk   the aggregation keys (made on first use; the
//!                                      root's, for a tree of aggregations)
//! DIR/aggregate/node-<i>/{pk,vk}       a tree's inner nodes' keys
//! ```
//!
//! `zkinfer fold` ([`crate::fold`]) takes the same steps one process each, for a cluster.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use zkinfer_aggregate::{
    AggregateFile, AggregateKey, AggregateVerifierKey, Node, Part, Snark, Tree,
};
use zkinfer_prover::{read_srs, ProverKey};
use zkinfer_verifier::{Verdict, VerifierKey};

use crate::commands::{load_srs, print_public, print_srs};
use crate::files::{load_circuit, load_vk, read, read_text, write, Paths};
use crate::progress::{secs, step};
use crate::segmented;

/// The model's segment directories in order (the model directory itself when whole).
pub(crate) fn segment_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    if segmented::is_segmented(dir) {
        let n = segmented::load_manifest(dir)?.segments.len();
        Ok((0..n).map(|i| dir.join(format!("segment-{i}"))).collect())
    } else {
        Ok(vec![dir.to_path_buf()])
    }
}

fn key_paths(dir: &Path) -> (PathBuf, PathBuf) {
    let d = dir.join("aggregate");
    (d.join("pk"), d.join("vk"))
}

/// The keys of node `node` of `count`: the root's are DIR/aggregate/{pk,vk} (what
/// `verify` reads), an inner node's DIR/aggregate/node-<i>/{pk,vk}.
pub(crate) fn node_key_paths(dir: &Path, node: usize, count: usize) -> (PathBuf, PathBuf) {
    if node + 1 == count {
        key_paths(dir)
    } else {
        let d = dir.join("aggregate").join(format!("node-{node}"));
        (d.join("pk"), d.join("vk"))
    }
}

/// How `aggregate` and `aggregate-id` fold: the SRS, the circuits' size, and the tree.
pub struct Folding<'a> {
    pub srs: Option<&'a Path>,
    pub dev: bool,
    pub k: u32,
    /// Segments a leaf of a tree of aggregations (none: one circuit folds them all).
    pub leaf: Option<usize>,
    /// Nodes a parent, with `leaf`.
    pub arity: usize,
}

impl Folding<'_> {
    /// The tree for `n` segments (none where one leaf would fold them all), as node
    /// `node`.
    pub(crate) fn tree(&self, n: usize, node: usize) -> Option<Tree> {
        self.leaf.filter(|&leaf| leaf < n).map(|leaf| Tree {
            leaf,
            arity: self.arity,
            node,
        })
    }
}

/// The verifying keys of the model's segments, in order.
pub(crate) fn segment_keys(dir: &Path) -> Result<Vec<VerifierKey>> {
    segment_dirs(dir)?.iter().map(|d| load_vk(d)).collect()
}

fn load_aggregate_vk(dir: &Path) -> Result<AggregateVerifierKey> {
    let (_, vk) = key_paths(dir);
    let bytes = read(&vk, "aggregation verifying key")
        .context("run `zkinfer aggregate` first: it makes the aggregation keys")?;
    AggregateVerifierKey::from_bytes(&bytes).with_context(|| vk.display().to_string())
}

/// The model's name: the manifest's for a segmented model.
fn model_name(dir: &Path, circuits: &[zkinfer_prover::CompiledCircuit]) -> Result<String> {
    if segmented::is_segmented(dir) {
        Ok(segmented::load_manifest(dir)?.model)
    } else {
        Ok(circuits
            .first()
            .map(|c| c.model.name.clone())
            .unwrap_or_default())
    }
}

/// `zkinfer aggregate-id DIR`: the aggregate id recomputed from the segment keys (the
/// aggregation circuit's verifying key, deterministic), so that whoever trusts the model
/// id can pin aggregated proofs without trusting DIR/aggregate/vk. `Ok(false)` when DIR
/// holds an aggregation key with another id.
pub fn aggregate_id(dir: &Path, folding: &Folding<'_>) -> Result<bool> {
    let keys = segment_keys(dir)?;
    let circuits = segment_dirs(dir)?
        .iter()
        .map(|d| load_circuit(d))
        .collect::<Result<Vec<_>>>()?;
    let k = folding.k;
    let (params, _) = load_srs(folding.srs, folding.dev, k)?;
    let name = model_name(dir, &circuits)?;
    // The tree asked for, else the held key's.
    let held_tree = load_aggregate_vk(dir).ok().and_then(|v| v.info.tree);
    let shape = match (folding.tree(keys.len(), 0), held_tree, folding.leaf) {
        (Some(t), _, _) => Some((t.leaf, t.arity)),
        (None, Some(t), None) => Some((t.leaf, t.arity)),
        _ => None,
    };
    let (avk, t) = step(
        &format!("generating the aggregation verifying key (2^{k} rows)"),
        || match shape {
            None => {
                zkinfer_aggregate::verifying_key(&params, &name, &keys, None, &Default::default())
            }
            Some((leaf, arity)) => zkinfer_aggregate::tree_verifying_keys(
                &params,
                &name,
                &keys,
                leaf,
                arity,
                |i, n| eprintln!("  node {i} of {n}"),
            )
            .and_then(|mut all| {
                all.pop().ok_or_else(|| {
                    zkinfer_aggregate::AggregateError::Keygen("an empty tree".into())
                })
            }),
        },
    );
    let avk = avk?;
    println!("aggregate id {}", avk.id());
    if let Some((leaf, arity)) = shape {
        println!(
            "  tree      {leaf} segment(s) a leaf, {arity} nodes a parent{}",
            if folding.leaf.is_none() {
                " (the shape DIR/aggregate/vk names; --leaf to choose it)"
            } else {
                ""
            }
        );
    }
    println!("  folds     model id {}", zkinfer_verifier::keys_id(&keys));
    println!("  time      {}", secs(t));
    let (_, vk_path) = key_paths(dir);
    match std::fs::read(&vk_path) {
        Ok(bytes) => {
            let held = AggregateVerifierKey::from_bytes(&bytes)
                .with_context(|| vk_path.display().to_string())?;
            let same = held.id() == avk.id();
            println!(
                "  {}  {} is aggregate id {}",
                if same { "matches" } else { "DIFFERS" },
                vk_path.display(),
                held.id()
            );
            if !same {
                let (a, b) = (&held.info, &avk.info);
                let layout = |i: &zkinfer_aggregate::keys::AggregateInfo| {
                    serde_json::to_string(&(&i.config, &i.break_points)).ok()
                };
                let what = [
                    (a.model != b.model, "the model name"),
                    (a.model_id != b.model_id, "the folded model id"),
                    (
                        a.links != b.links || a.num_instances != b.num_instances,
                        "the links",
                    ),
                    (a.tree != b.tree, "the tree of aggregations"),
                    (layout(a) != layout(b), "the circuit's layout"),
                    (held.srs != avk.srs || held.k != avk.k, "the SRS or k"),
                    (
                        held.vk.transcript_repr() != avk.vk.transcript_repr(),
                        "the halo2 verifying key",
                    ),
                ];
                let differ: Vec<&str> = what.iter().filter(|(d, _)| *d).map(|(_, w)| *w).collect();
                println!("  differs in {}", differ.join(", "));
            }
            Ok(same)
        }
        Err(_) => Ok(true),
    }
}

/// Node `j`'s aggregation keys where DIR holds them for this model, `k`, tree and SRS
/// (one pair), else `None`.
fn held_node_keys(
    dir: &Path,
    params: &zkinfer_prover::Params,
    keys: &[VerifierKey],
    folding: &Folding<'_>,
    j: usize,
    count: usize,
) -> Result<Option<(AggregateKey, AggregateVerifierKey)>> {
    let (pk_path, vk_path) = node_key_paths(dir, j, count);
    let Ok(bytes) = std::fs::read(&vk_path) else {
        return Ok(None);
    };
    let avk =
        AggregateVerifierKey::from_bytes(&bytes).with_context(|| vk_path.display().to_string())?;
    if avk.info.model_id != zkinfer_verifier::keys_id(keys)
        || avk.info.config.degree != folding.k
        || avk.info.tree != folding.tree(keys.len(), j)
    {
        return Ok(None);
    }
    if avk.srs != zkinfer_prover::srs_points(params) {
        bail!(
            "{} was made with another SRS; remove {} to make the aggregation keys again",
            vk_path.display(),
            dir.join("aggregate").display()
        );
    }
    let Ok(bytes) = std::fs::read(&pk_path) else {
        return Ok(None);
    };
    let apk = AggregateKey::from_bytes(&bytes).with_context(|| pk_path.display().to_string())?;
    Ok(zkinfer_aggregate::same_circuit(&apk, &avk).then_some((apk, avk)))
}

/// Node `j`'s aggregation keys: DIR's where it holds this node's (unless `remake`: the
/// node folds a node whose keys were just made, whose verifying key its own holds), else made from the segment keys and
/// `children` (the verifying keys of the nodes it folds) and written to DIR. Returns the
/// key generation time when made.
#[allow(clippy::too_many_arguments)]
pub(crate) fn node_keys(
    dir: &Path,
    params: &zkinfer_prover::Params,
    keys: &[VerifierKey],
    name: &str,
    folding: &Folding<'_>,
    nodes: &[Node],
    j: usize,
    children: &BTreeMap<usize, AggregateVerifierKey>,
    remake: bool,
) -> Result<(AggregateKey, AggregateVerifierKey, Option<Duration>)> {
    let count = nodes.len();
    if !remake {
        if let Some((apk, avk)) = held_node_keys(dir, params, keys, folding, j, count)? {
            return Ok((apk, avk, None));
        }
    }
    let mut earlier = zkinfer_aggregate::Earlier::new();
    for part in &nodes[j].parts {
        if let Part::Node(c) = *part {
            let key = children.get(&c).ok_or_else(|| {
                anyhow::anyhow!("node {j} folds node {c}, whose aggregation key is not given")
            })?;
            earlier.insert(c, key.vk.clone());
        }
    }
    let what = if count == 1 {
        format!(
            "generating the aggregation keys (2^{} rows; once per model)",
            folding.k
        )
    } else {
        format!(
            "generating the aggregation keys of node {j} of {count} (2^{} rows; once per model)",
            folding.k
        )
    };
    let (made, t) = step(&what, || {
        zkinfer_aggregate::setup(params, name, keys, folding.tree(keys.len(), j), &earlier)
    });
    let (apk, avk) = made?;
    let (pk_path, vk_path) = node_key_paths(dir, j, count);
    if let Some(parent) = pk_path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    write(&pk_path, &apk.to_bytes())?;
    write(&vk_path, &avk.to_bytes())?;
    Ok((apk, avk, Some(t)))
}

/// Segment `i`'s proof for aggregation (Poseidon transcript) from its boundary input
/// and salts, and its statement.
pub(crate) fn segment_snark(
    d: &Path,
    circuit: &zkinfer_prover::CompiledCircuit,
    key: &VerifierKey,
    (i, n): (usize, usize),
    input: &[i64],
    salts: zkinfer_circuits::Salts,
) -> Result<(Snark, zkinfer_verifier::ProofFile)> {
    let paths = Paths::new(d);
    let pk = ProverKey::from_bytes(&read(&paths.pk, "proving key")?)
        .with_context(|| paths.pk.display().to_string())?;
    if pk.info != circuit.info() || pk.pk.get_vk().transcript_repr() != key.vk.transcript_repr() {
        bail!(
            "{}: the keys in {} were made for another compiled circuit, or are not one \
             pair; run `zkinfer setup` again",
            paths.pk.display(),
            d.display()
        );
    }
    let params =
        read_srs(&read(&paths.srs, "SRS")?).with_context(|| paths.srs.display().to_string())?;
    let model = Arc::new(circuit.model.clone());
    let trace = Arc::new(model.run(input).with_context(|| format!("segment {i}"))?);
    let witness = zkinfer_prover::witness(model, &pk, trace, salts)
        .with_context(|| format!("segment {i}"))?;
    let statement = zkinfer_aggregate::statement_file(key, &witness);
    let (snark, _) = step(
        &format!("proving segment {i} of {n} for aggregation"),
        || zkinfer_aggregate::prove_inner(&params, &pk, witness),
    );
    Ok((snark.with_context(|| format!("segment {i}"))?, statement))
}

/// What one node of the aggregation made: an inner node's proof, or the root's file.
pub(crate) enum Folded {
    Inner(Box<Snark>),
    Root(Box<AggregateFile>),
}

/// Proves node `j` of `nodes` over `snarks` (its parts' proofs, in order) with its keys;
/// the root's proof becomes the aggregated file of `statements`.
pub(crate) fn prove_node(
    params: &zkinfer_prover::Params,
    (apk, avk): (&AggregateKey, &AggregateVerifierKey),
    nodes: &[Node],
    j: usize,
    snarks: Vec<Snark>,
    statements: Vec<zkinfer_verifier::ProofFile>,
) -> Result<Folded> {
    let count = nodes.len();
    if j + 1 < count {
        let (snark, _) = step(&format!("aggregating node {j} of {count}"), || {
            zkinfer_aggregate::prove_node(params, apk, &nodes[j], snarks)
        });
        return Ok(Folded::Inner(Box::new(
            snark.with_context(|| format!("node {j}"))?,
        )));
    }
    let what = if count == 1 {
        "aggregating".to_string()
    } else {
        format!("aggregating the root, node {j} of {count}")
    };
    let (made, _) = step(&what, || {
        zkinfer_aggregate::prove(params, apk, &nodes[j], snarks)
    });
    let (instances, proof) = made?;
    Ok(Folded::Root(Box::new(AggregateFile::new(
        avk, statements, &instances, &proof,
    ))))
}

pub(crate) fn print_aggregated(
    file: &AggregateFile,
    proof_path: &Path,
    segments: usize,
    count: usize,
) {
    println!(
        "aggregated proof of `{}` ({segments} proof{} folded{}) -> {}",
        file.model,
        if segments == 1 { "" } else { "s" },
        if count == 1 {
            String::new()
        } else {
            format!(" by a tree of {count} aggregations")
        },
        proof_path.display()
    );
    println!("  model id      {}", file.model_id);
    println!("  aggregate id  {}", file.aggregate_id);
    println!(
        "  proof         {} bytes, {} public values",
        (file.proof.len() - 2) / 2,
        zkinfer_aggregate::NUM_INSTANCE
    );
}

/// `zkinfer aggregate DIR --input X --proof OUT`.
pub fn aggregate(dir: &Path, input: &Path, proof_path: &Path, folding: &Folding<'_>) -> Result<()> {
    let dirs = segment_dirs(dir)?;
    let keys = segment_keys(dir)?;
    let circuits = dirs
        .iter()
        .map(|d| load_circuit(d))
        .collect::<Result<Vec<_>>>()?;
    let nodes = zkinfer_aggregate::tree::nodes(&keys, folding.tree(keys.len(), 0))?;
    let count = nodes.len();
    let (params, t_srs) = load_srs(folding.srs, folding.dev, folding.k)?;
    let name = model_name(dir, &circuits)?;
    let sample = zkinfer_pipeline::input_sample(&circuits[0], &read_text(input)?)
        .map_err(|e| anyhow::Error::new(e).context(input.display().to_string()))?;
    let w = zkinfer_pipeline::segments::witness(&circuits, &sample)
        .with_context(|| format!("running the model on {}", input.display()))?;
    let start = Instant::now();
    let mut segment_snarks = Vec::with_capacity(dirs.len());
    let mut statements = Vec::with_capacity(dirs.len());
    for (i, (d, circuit)) in dirs.iter().zip(&circuits).enumerate() {
        let (snark, statement) = segment_snark(
            d,
            circuit,
            &keys[i],
            (i, dirs.len()),
            &w.inputs[i],
            w.salts(i)?,
        )?;
        segment_snarks.push(Some(snark));
        statements.push(statement);
    }
    let t_inner = start.elapsed();
    let mut t_keygen: Option<Duration> = None;
    let mut t_agg = Duration::ZERO;
    let mut children = BTreeMap::new();
    let mut node_snarks = Vec::with_capacity(count);
    let mut file = None;
    let mut remade = Vec::with_capacity(count);
    for j in 0..count {
        // A node over a child whose keys were just made holds that child's new key.
        let over_remade = nodes[j]
            .parts
            .iter()
            .any(|p| matches!(*p, Part::Node(c) if remade.get(c) == Some(&true)));
        let (apk, avk, made) = node_keys(
            dir,
            &params,
            &keys,
            &name,
            folding,
            &nodes,
            j,
            &children,
            over_remade,
        )?;
        remade.push(made.is_some());
        if let Some(t) = made {
            t_keygen = Some(t_keygen.unwrap_or_default() + t);
        }
        let snarks = nodes[j]
            .parts
            .iter()
            .map(|part| match *part {
                Part::Segment(i) => segment_snarks.get_mut(i).and_then(Option::take),
                Part::Node(c) => node_snarks.get_mut(c).and_then(Option::take),
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| anyhow::anyhow!("node {j} folds a proof twice"))?;
        let start = Instant::now();
        match prove_node(&params, (&apk, &avk), &nodes, j, snarks, statements.clone())? {
            Folded::Inner(snark) => node_snarks.push(Some(*snark)),
            Folded::Root(f) => file = Some(*f),
        }
        t_agg += start.elapsed();
        children.insert(j, avk);
    }
    let file = file.ok_or_else(|| anyhow::anyhow!("an aggregation of no node"))?;
    write(proof_path, file.to_json().as_bytes())?;
    print_aggregated(&file, proof_path, dirs.len(), count);
    println!(
        "  time          srs {}, keygen {}, segments {}, aggregation {}",
        secs(t_srs),
        t_keygen.map(secs).unwrap_or_else(|| "cached".into()),
        secs(t_inner),
        secs(t_agg)
    );
    println!("  peak memory   {}", segmented::peak_rss());
    Ok(())
}

/// Whether `proof_path` holds an aggregated proof (by its `format`).
pub fn is_aggregate(proof_path: &Path) -> bool {
    std::fs::read_to_string(proof_path)
        .map(|t| AggregateFile::is_aggregate(&t))
        .unwrap_or(false)
}

fn load_file(proof_path: &Path) -> Result<AggregateFile> {
    AggregateFile::parse(&read_text(proof_path)?).with_context(|| proof_path.display().to_string())
}

/// Whether the aggregation key is the one `expected_id` names. An aggregated proof is
/// pinned by the **aggregate id**: it binds the aggregation circuit, whose constants are
/// the segments' verifying keys, and the model id it folds; the model id alone does not
/// bind the aggregation key a directory holds.
fn pinned(
    avk: &AggregateVerifierKey,
    dir: &Path,
    expected_id: Option<&str>,
    verdict: &str,
) -> bool {
    match expected_id {
        Some(want) if want != avk.id() => {
            let folded = if want == avk.info.model_id {
                " (that is the model id it folds; an aggregated proof is pinned by its aggregate \
                 id, which `zkinfer aggregate` prints)"
            } else {
                ""
            };
            println!(
                "{verdict}: {}'s aggregation key is aggregate id {}, not the required {want}{folded}",
                dir.display(),
                avk.id()
            );
            false
        }
        _ => true,
    }
}

/// `zkinfer verify` of an aggregated proof: `Ok(true)` valid, `Ok(false)` invalid.
pub fn verify(dir: &Path, proof_path: &Path, expected_id: Option<&str>) -> Result<bool> {
    let keys = segment_keys(dir)?;
    let avk = load_aggregate_vk(dir)?;
    let file = load_file(proof_path)?;
    let id = zkinfer_verifier::keys_id(&keys);
    if !pinned(&avk, dir, expected_id, "invalid") {
        return Ok(false);
    }
    let start = Instant::now();
    let verdict = zkinfer_aggregate::verify(&keys, &avk, &file);
    let elapsed = start.elapsed();
    match verdict {
        Verdict::Valid { public } => {
            println!(
                "valid: `{}` in one aggregated proof of {} (aggregate id {}, folding model id {id})",
                avk.info.model,
                keys.len(),
                avk.id()
            );
            let last = keys
                .last()
                .map(|k| k.info.output_shape.clone())
                .unwrap_or_default();
            let parts = load_circuit(dir)
                .or_else(|_| load_circuit(&dir.join(format!("segment-{}", keys.len() - 1))))
                .map(|c| c.outputs)
                .unwrap_or_default();
            print_public(&public, &last, &parts);
            if let Some(k) = keys.last() {
                print_srs(k);
            }
            println!("  time      verify {}", secs(elapsed));
            Ok(true)
        }
        Verdict::Invalid { reason } => {
            println!("invalid: {reason}");
            Ok(false)
        }
    }
}

/// `zkinfer verify-evm` of an aggregated proof: the statement natively (the contract
/// sees only its digest), then the one contract in revm.
pub fn verify_evm(dir: &Path, proof_path: &Path, expected_id: Option<&str>) -> Result<bool> {
    let keys = segment_keys(dir)?;
    let avk = load_aggregate_vk(dir)?;
    let file = load_file(proof_path)?;
    if !pinned(&avk, dir, expected_id, "rejected") {
        return Ok(false);
    }
    if let Verdict::Invalid { reason } = zkinfer_aggregate::verify(&keys, &avk, &file) {
        println!("rejected: {reason}");
        return Ok(false);
    }
    let solc = zkinfer_evm::Solc::find()?;
    let params = avk
        .verifier_params()
        .ok_or_else(|| anyhow::anyhow!("the aggregation key's SRS points are unusable"))?;
    let (build, t_build) = step("generating and compiling the aggregation verifier", || {
        zkinfer_evm::build_aggregation_verifier(
            &params,
            &avk.vk,
            zkinfer_aggregate::NUM_INSTANCE,
            &solc,
        )
    });
    let build = build?;
    let calldata = file
        .calldata()
        .map_err(|e| anyhow::anyhow!("{}: {e}", proof_path.display()))?;
    let (run, t_evm) = step("deploying and calling in revm", || {
        zkinfer_evm::deploy_and_call(&build.bytecode, calldata)
    });
    let run = run?;
    match &run.reason {
        None => println!(
            "accepted: `{}` (aggregate id {})",
            avk.info.model, file.aggregate_id
        ),
        Some(reason) => println!("rejected: {reason}"),
    }
    println!(
        "  gas       {} for the call (deployment {})",
        run.gas_used, run.deploy_gas
    );
    println!(
        "  code      {} contract{}, {:?} bytes deployed (EIP-170 limit {} each)",
        run.code_sizes.len(),
        if run.code_sizes.len() == 1 { "" } else { "s" },
        run.code_sizes,
        zkinfer_evm::MAX_CODE_SIZE
    );
    println!(
        "  time      generate and compile {}, evm {}",
        secs(t_build),
        secs(t_evm)
    );
    Ok(run.accepted)
}
