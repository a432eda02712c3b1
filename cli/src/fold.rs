//! `zkinfer fold`: the steps of `zkinfer aggregate` one process each, for a cluster
//! (scripts/ray/prove_ray.py --aggregate): the tree's plan, a segment's proof for
//! aggregation, and a node folded from its parts' files ([`zkinfer_aggregate::PartFile`]).
//! A node makes its keys where DIR lacks them, from the segment keys and its children's
//! verifying keys, so that a worker needs only small files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use zkinfer_aggregate::{AggregateVerifierKey, Part, PartFile};
use zkinfer_verifier::Verdict;

use crate::aggregate::{
    node_key_paths, node_keys, print_aggregated, prove_node, segment_dirs, segment_keys,
    segment_snark, Folded, Folding,
};
use crate::commands::load_srs;
use crate::files::{load_circuit, read, read_text, write};
use crate::progress::secs;
use crate::segmented;

/// A node of a distributed aggregation as `zkinfer fold --plan` prints it.
#[derive(serde::Serialize)]
struct PlannedNode {
    node: usize,
    /// `{"segment": i}` or `{"node": c}`, in the order `fold --node` takes them.
    parts: Vec<BTreeMap<&'static str, usize>>,
    /// The predicted peak memory of its `fold --node` (key generation, then proving).
    predicted_mb: f64,
}

/// The peak memory of one `fold --node` at 2^21 rows, measured on mlp_tiny's tree of
/// three (docs/BENCHMARKS.md): 8.2 GB for a leaf of one segment, 12.9 GB for a root of
/// two nodes; each part after the first is taken to add the difference. Scaled with the
/// rows.
fn predicted_mb(parts: usize, k: u32) -> f64 {
    let at_k21 = 8_300.0 + 4_700.0 * parts.saturating_sub(1) as f64;
    (at_k21 * 2f64.powi(k as i32 - 21)).round()
}

/// `zkinfer fold DIR --plan`: the tree's nodes and what each folds, as JSON, for a
/// driver that proves them on a cluster (children before parents; the root last).
pub fn plan(dir: &Path, folding: &Folding<'_>) -> Result<()> {
    let keys = segment_keys(dir)?;
    let nodes = zkinfer_aggregate::tree::nodes(&keys, folding.tree(keys.len(), 0))?;
    let planned: Vec<PlannedNode> = nodes
        .iter()
        .map(|n| PlannedNode {
            node: n.index,
            parts: n
                .parts
                .iter()
                .map(|p| match *p {
                    Part::Segment(i) => BTreeMap::from([("segment", i)]),
                    Part::Node(c) => BTreeMap::from([("node", c)]),
                })
                .collect(),
            predicted_mb: predicted_mb(n.parts.len(), folding.k),
        })
        .collect();
    let doc = serde_json::json!({
        "format": "zkinfer-aggregate-plan",
        "model_id": zkinfer_verifier::keys_id(&keys),
        "segments": keys.len(),
        "k": folding.k,
        "leaf": folding.tree(keys.len(), 0).map(|t| t.leaf),
        "arity": folding.arity,
        "nodes": planned,
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}

/// `zkinfer fold DIR --segment I --witness W --out PART`: segment I's proof for
/// aggregation, as a part file for `fold --node`.
pub fn fold_segment(dir: &Path, i: usize, witness: &Path, out: &Path) -> Result<()> {
    if !segmented::is_segmented(dir) {
        bail!(
            "{} is not a segmented model: `fold --segment` proves one segment of a segmented \
             model (`zkinfer aggregate` folds a one-circuit model)",
            dir.display()
        );
    }
    let (manifest, w) = segmented::load_witness_of(dir, witness, i)?;
    let dirs = segment_dirs(dir)?;
    let n = dirs.len();
    let d = &dirs[i];
    let keys = segment_keys(dir)?;
    let circuit = load_circuit(d)?;
    let start = Instant::now();
    let (snark, statement) =
        segment_snark(d, &circuit, &keys[i], (i, n), &w.inputs[i], w.salts(i)?)?;
    let part = PartFile::of_segment(&manifest.model, &keys, i, statement, &snark);
    write(out, part.to_json().as_bytes())?;
    println!(
        "part: segment {i} of {n} of `{}` for aggregation -> {} ({}, peak memory {})",
        part.model,
        out.display(),
        secs(start.elapsed()),
        segmented::peak_rss()
    );
    Ok(())
}

/// `zkinfer fold DIR --node J --out OUT PART...`: node J of the aggregation from its
/// parts' files, in order. An inner node writes its part file; the root writes the
/// aggregated proof and verifies it (`Ok(false)`: it does not verify). The node's keys
/// are DIR's where it holds them, else made from the segment keys and its children's
/// verifying keys (DIR/aggregate/node-<c>/vk, which `fold` writes).
pub fn fold_node(
    dir: &Path,
    j: usize,
    parts: &[PathBuf],
    out: &Path,
    folding: &Folding<'_>,
) -> Result<bool> {
    let keys = segment_keys(dir)?;
    let nodes = zkinfer_aggregate::tree::nodes(&keys, folding.tree(keys.len(), 0))?;
    let count = nodes.len();
    let node = nodes.get(j).ok_or_else(|| {
        anyhow::anyhow!(
            "--node {j}: this aggregation of {} segments has nodes 0 to {} (`fold --plan` \
             lists them)",
            keys.len(),
            count - 1
        )
    })?;
    let names: Vec<String> = node
        .parts
        .iter()
        .map(|p| match *p {
            Part::Segment(i) => format!("segment {i}"),
            Part::Node(c) => format!("node {c}"),
        })
        .collect();
    if parts.len() != node.parts.len() {
        bail!(
            "node {j} folds {} ({}); given {} part file{}",
            node.parts.len(),
            names.join(", "),
            parts.len(),
            if parts.len() == 1 { "" } else { "s" }
        );
    }
    let start = Instant::now();
    let mut children = BTreeMap::new();
    for part in &node.parts {
        if let Part::Node(c) = *part {
            let (_, vk_path) = node_key_paths(dir, c, count);
            let bytes = read(&vk_path, "aggregation verifying key").with_context(|| {
                format!("node {j} folds node {c}: `fold --node {c}` writes its verifying key")
            })?;
            let key = AggregateVerifierKey::from_bytes(&bytes)
                .with_context(|| vk_path.display().to_string())?;
            children.insert(c, key);
        }
    }
    // The parts first: a wrong one is named before the keys cost minutes.
    let mut snarks = Vec::with_capacity(parts.len());
    let mut statements = Vec::new();
    for (path, &want) in parts.iter().zip(&node.parts) {
        let file =
            PartFile::parse(&read_text(path)?).with_context(|| path.display().to_string())?;
        let child = match want {
            Part::Node(c) => children.get(&c),
            Part::Segment(_) => None,
        };
        let snark = file
            .snark(want, &keys, &nodes, child)
            .with_context(|| path.display().to_string())?;
        snarks.push(snark);
        statements.extend(file.statements);
    }
    let (params, _) = load_srs(folding.srs, folding.dev, folding.k)?;
    let name = if segmented::is_segmented(dir) {
        segmented::load_manifest(dir)?.model
    } else {
        load_circuit(dir)?.model.name
    };
    let (apk, avk, made) = node_keys(
        dir, &params, &keys, &name, folding, &nodes, j, &children, false,
    )?;
    let t = |made: Option<Duration>| {
        format!(
            "{}, keygen {}, peak memory {}",
            secs(start.elapsed()),
            made.map(secs).unwrap_or_else(|| "cached".into()),
            segmented::peak_rss()
        )
    };
    match prove_node(&params, (&apk, &avk), &nodes, j, snarks, statements.clone())? {
        Folded::Inner(snark) => {
            let part = PartFile::of_node(&avk, statements, &snark);
            write(out, part.to_json().as_bytes())?;
            println!(
                "part: node {j} of {count} ({}) -> {} ({})",
                names.join(", "),
                out.display(),
                t(made)
            );
            Ok(true)
        }
        Folded::Root(file) => {
            write(out, file.to_json().as_bytes())?;
            print_aggregated(&file, out, keys.len(), count);
            println!("  time          {}", t(made));
            match zkinfer_aggregate::verify(&keys, &avk, &file) {
                Verdict::Valid { .. } => {
                    println!("  verified      valid");
                    Ok(true)
                }
                Verdict::Invalid { reason } => {
                    println!("  verified      INVALID: {reason}");
                    Ok(false)
                }
            }
        }
    }
}
