//! Trees of aggregations: a model with many segments folded by several aggregation
//! circuits, each within the memory one circuit may take, instead of one circuit that
//! verifies every segment proof.
//!
//! ```text
//!                root (Keccak transcript: the proof a contract verifies)
//!              /      \
//!        node 0        node 1      (Poseidon transcripts: folded again)
//!       /     \       /    \
//!   seg 0   seg 1  seg 2   seg 3   (`leaf` segments a leaf, `arity` nodes a parent)
//! ```
//!
//! Every node is snark-verifier's aggregation circuit with zkinfer's additions
//! ([`crate::circuit::build`]): the links between the parts it folds constrained equal,
//! the Poseidon digest of their statement values exposed, and — so that its parent can
//! link it to its neighbours — the input link of its first part and the output link of
//! its last part exposed after the digest, where they exist (the root has neither: its
//! public values are the usual 13). A node folding aggregated proofs folds their
//! accumulators into its own (snark-verifier's accumulator indices), and its digest
//! covers their digests and exposed links, not their accumulator limbs. The tree is
//! derived from the segment count, `leaf` and `arity`, all bound by the root's aggregate
//! id (its circuit holds its children's verifying keys as constants, and theirs their
//! children's), so the native verifier recomputes every node's digest from the segment
//! statements and checks one proof.

use halo2_proofs::halo2curves::bn256::Fr;
use serde::{Deserialize, Serialize};
use zkinfer_verifier::VerifierKey;

use crate::circuit::{statement_digest, Link, NUM_INSTANCE};
use crate::AggregateError;

/// The shape of a tree of aggregations: `leaf` consecutive segments a leaf node, then
/// `arity` consecutive nodes a parent, up to one root; `node` is the position of the
/// key's own node among the nodes, leaves first (the root is the last).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tree {
    pub leaf: usize,
    pub arity: usize,
    pub node: usize,
}

/// What a node folds: a segment's proof, or the proof of an earlier node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Segment(usize),
    Node(usize),
}

/// One aggregation circuit of a tree (or the only one): what it folds, how many public
/// values each folded proof has, the links between them, and which folded public values
/// it exposes after its digest (its first part's input link, its last part's output
/// link), as `(part, index)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The node's place among the tree's nodes, leaves first (the key's `Tree::node`).
    pub index: usize,
    pub parts: Vec<Part>,
    pub num_instances: Vec<usize>,
    pub links: Vec<Link>,
    pub ends: Vec<(usize, usize)>,
}

impl Node {
    /// The node's own number of public values: accumulator, digest, exposed links.
    pub fn public_values(&self) -> usize {
        NUM_INSTANCE + self.ends.len()
    }
}

/// Where each folded proof's links sit among its public values.
#[derive(Clone, Copy)]
struct Ends {
    input: Option<usize>,
    output: Option<usize>,
    count: usize,
}

/// The nodes of the aggregation of the segments with keys `keys`: one node folding every
/// segment without a tree, else the tree's nodes, leaves first, the root last.
pub fn nodes(keys: &[VerifierKey], tree: Option<Tree>) -> Result<Vec<Node>, AggregateError> {
    let seg_links = crate::links(keys)?;
    let n = keys.len();
    // Each segment's links: its input at the place the chain's link reads it.
    let mut segs: Vec<Ends> = keys
        .iter()
        .map(|k| Ends {
            input: None,
            output: None,
            count: k.info.public_values(),
        })
        .collect();
    for l in &seg_links {
        segs[l.output.0].output = Some(l.output.1);
        segs[l.input.0].input = Some(l.input.1);
    }
    let (leaf, arity) = match tree {
        None => (n, 2),
        Some(t) => {
            if t.leaf == 0 || t.arity < 2 {
                return Err(AggregateError::Input(format!(
                    "a tree of aggregations folds at least 1 segment a leaf and 2 nodes a \
                     parent; asked for {} and {}",
                    t.leaf, t.arity
                )));
            }
            (t.leaf, t.arity)
        }
    };
    let nodes = grow(segs, leaf, arity);
    if let Some(t) = tree.filter(|t| t.node >= nodes.len()) {
        return Err(AggregateError::Input(format!(
            "a tree of {n} segments, {} a leaf and {} a parent, has {} nodes, not a node {}",
            t.leaf,
            t.arity,
            nodes.len(),
            t.node
        )));
    }
    Ok(nodes)
}

/// The nodes over segments with links `segments`: `leaf` segments a leaf, then `arity`
/// nodes a parent, up to one root.
fn grow(segments: Vec<Ends>, leaf: usize, arity: usize) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    let mut level: Vec<(Part, Ends)> = segments
        .into_iter()
        .enumerate()
        .map(|(i, e)| (Part::Segment(i), e))
        .collect();
    let mut group = leaf;
    loop {
        let mut next = Vec::new();
        for chunk in level.chunks(group) {
            if let [(Part::Node(_), _)] = chunk {
                // A node left alone at its level goes up as it is (wrapping it in a node
                // of one part would cost a fold and prove nothing more).
                next.push(chunk[0]);
                continue;
            }
            let node = node_of(nodes.len(), chunk);
            let ends = Ends {
                input: chunk[0].1.input.map(|_| NUM_INSTANCE),
                output: chunk[chunk.len() - 1]
                    .1
                    .output
                    .map(|_| node.public_values() - 1),
                count: node.public_values(),
            };
            next.push((Part::Node(nodes.len()), ends));
            nodes.push(node);
        }
        if next.len() == 1 {
            return nodes;
        }
        level = next;
        group = arity;
    }
}

fn node_of(index: usize, chunk: &[(Part, Ends)]) -> Node {
    // Consecutive parts of a chain of segments: each has the link its neighbour needs
    // (`crate::links` checked the chain), so a missing one is no link at all.
    let links = chunk
        .windows(2)
        .enumerate()
        .filter_map(|(j, pair)| {
            Some(Link {
                output: (j, pair[0].1.output?),
                input: (j + 1, pair[1].1.input?),
            })
        })
        .collect();
    let last = chunk.len() - 1;
    let ends = chunk[0]
        .1
        .input
        .map(|i| (0, i))
        .into_iter()
        .chain(chunk[last].1.output.map(|o| (last, o)))
        .collect();
    Node {
        index,
        parts: chunk.iter().map(|(p, _)| *p).collect(),
        num_instances: chunk.iter().map(|(_, e)| e.count).collect(),
        links,
        ends,
    }
}

/// Each node's public values after its accumulator (its digest, then its exposed
/// links), computed natively from the segments' public values, leaves first.
pub fn statement_values(nodes: &[Node], segments: &[Vec<Fr>]) -> Result<Vec<Vec<Fr>>, String> {
    let mut out: Vec<Vec<Fr>> = Vec::with_capacity(nodes.len());
    for node in nodes {
        // What each part states (a node's accumulator is folded, not stated).
        let mut parts: Vec<&[Fr]> = Vec::with_capacity(node.parts.len());
        for p in &node.parts {
            parts.push(match *p {
                Part::Segment(i) => segments
                    .get(i)
                    .ok_or_else(|| format!("segment {i} is not stated"))?,
                Part::Node(j) => out.get(j).ok_or("a node folds a later node")?,
            });
        }
        let stated: Vec<Vec<Fr>> = parts.iter().map(|v| v.to_vec()).collect();
        let mut values = vec![statement_digest(&stated)];
        for &(part, index) in &node.ends {
            let offset = match node.parts[part] {
                Part::Segment(_) => 0,
                Part::Node(_) => crate::circuit::ACCUMULATOR_LIMBS,
            };
            let v = index
                .checked_sub(offset)
                .and_then(|i| parts[part].get(i))
                .ok_or("an exposed link is not among the stated values")?;
            values.push(*v);
        }
        out.push(values);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(n: usize, leaf: usize, arity: usize) -> Vec<Vec<Part>> {
        // Segments with 5 public values, linked at 0 and 4 (no hashed weights).
        let segs = (0..n)
            .map(|i| Ends {
                input: (i > 0).then_some(0),
                output: (i + 1 < n).then_some(4),
                count: 5,
            })
            .collect();
        grow(segs, leaf, arity)
            .into_iter()
            .map(|n| n.parts)
            .collect()
    }

    #[test]
    fn a_tree_folds_every_segment_once_in_order() {
        use Part::*;
        assert_eq!(
            shape(2, 1, 2),
            vec![vec![Segment(0)], vec![Segment(1)], vec![Node(0), Node(1)]]
        );
        // The leaf of segment 4, alone at its level, goes up to the root as it is.
        assert_eq!(
            shape(5, 2, 2),
            vec![
                vec![Segment(0), Segment(1)],
                vec![Segment(2), Segment(3)],
                vec![Segment(4)],
                vec![Node(0), Node(1)],
                vec![Node(3), Node(2)],
            ]
        );
        assert_eq!(
            shape(7, 1, 3),
            vec![
                vec![Segment(0)],
                vec![Segment(1)],
                vec![Segment(2)],
                vec![Segment(3)],
                vec![Segment(4)],
                vec![Segment(5)],
                vec![Segment(6)],
                vec![Node(0), Node(1), Node(2)],
                vec![Node(3), Node(4), Node(5)],
                vec![Node(7), Node(8), Node(6)],
            ]
        );
        assert_eq!(
            shape(3, 3, 2),
            vec![vec![Segment(0), Segment(1), Segment(2)]]
        );
    }

    #[test]
    fn a_nodes_links_and_ends_are_its_parts_boundaries() {
        let e = |input, output, count| Ends {
            input,
            output,
            count,
        };
        // The middle leaf of three: its first segment takes a link at 1 (hashed weights).
        let node = node_of(
            0,
            &[
                (Part::Segment(2), e(Some(1), Some(6), 7)),
                (Part::Segment(3), e(Some(0), Some(4), 5)),
            ],
        );
        assert_eq!(
            node.links,
            vec![Link {
                output: (0, 6),
                input: (1, 0)
            }]
        );
        assert_eq!(node.ends, vec![(0, 1), (1, 4)]);
        assert_eq!(node.public_values(), NUM_INSTANCE + 2);
        // The values a parent sees: the digest of both segments, then the two links.
        let segs: Vec<Vec<Fr>> = (0..4)
            .map(|i| {
                (0..[5, 5, 7, 5][i])
                    .map(|j| Fr::from(10 * i as u64 + j))
                    .collect()
            })
            .collect();
        let v = statement_values(std::slice::from_ref(&node), &segs).unwrap();
        assert_eq!(
            v[0],
            vec![
                statement_digest(&[segs[2].clone(), segs[3].clone()]),
                segs[2][1],
                segs[3][4]
            ]
        );
        // A parent of that node reads its links past the accumulator.
        let parent = Node {
            index: 1,
            parts: vec![Part::Node(0)],
            num_instances: vec![NUM_INSTANCE + 2],
            links: vec![],
            ends: vec![(0, NUM_INSTANCE + 1)],
        };
        let v = statement_values(&[node, parent], &segs).unwrap();
        assert_eq!(v[1][1], segs[3][4]);
        assert_eq!(v[1][0], statement_digest(&[v[0].clone()]));
    }
}
