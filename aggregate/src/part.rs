//! The parts of an aggregation that travels: a segment's proof for aggregation, or an
//! inner node's proof of a tree, as a file that another process (a cluster worker) folds
//! into the next node. `zkinfer fold` makes and reads them; `zkinfer aggregate` keeps
//! the same proofs in memory.
//!
//! A part file carries its proof's public values and bytes (snark-verifier's Poseidon
//! transcript) and the statements of the segments under it; the folding process rebuilds
//! the proof's protocol from the verifying key it already trusts (a segment's, or the
//! node's aggregation key), so nothing in the file chooses what circuit it is checked
//! against. Reading a part checks all of it natively — the statements against their
//! keys, the stated values against the proof's public values, the proof, and a node's
//! accumulator — so that a bad part is named where it enters, not as a failed fold.

use halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine};
use halo2_proofs::plonk::{verify_proof, VerifyingKey};
use halo2_proofs::poly::kzg::commitment::{KZGCommitmentScheme, ParamsKZG};
use halo2_proofs::poly::kzg::multiopen::VerifierSHPLONK;
use halo2_proofs::poly::kzg::strategy::SingleStrategy;
use serde::{Deserialize, Serialize};
use snark_verifier::loader::native::NativeLoader;
use snark_verifier::system::halo2::{compile, Config as ProtocolConfig};
use snark_verifier::verifier::plonk::PlonkProtocol;
use snark_verifier_sdk::halo2::aggregation::AggregationCircuit;
use snark_verifier_sdk::halo2::{PoseidonTranscript, POSEIDON_SPEC};
use snark_verifier_sdk::{CircuitExt, Snark};
use zkinfer_verifier::artifact::{
    fr_from_hex, fr_to_hex, hex_bytes, parse_json_file, FORMAT_VERSION,
};
use zkinfer_verifier::{guard, keys_id, statement, verifier_params, ProofFile, VerifierKey};

use crate::circuit::ACCUMULATOR_LIMBS;
use crate::keys::AggregateVerifierKey;
use crate::tree::{Node, Part};
use crate::AggregateError;

pub const PART_FORMAT: &str = "zkinfer-aggregate-part";

/// A proof that a node of an aggregation folds (JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartFile {
    pub format: String,
    pub version: u32,
    pub model: String,
    /// The folded model's id (as a bundle's).
    pub model_id: String,
    /// The segment whose proof this is (0-based), or none for a node's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<usize>,
    /// The node of the tree whose proof this is (0-based, leaves first), or none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<usize>,
    /// A node's aggregation key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate_id: Option<String>,
    /// The statements of the segments under this part, in segment order (a proof file
    /// without proof bytes each).
    pub statements: Vec<ProofFile>,
    /// The proof's public values, `0x`-hex.
    pub instances: Vec<String>,
    /// The proof's bytes (Poseidon transcript), `0x`-hex.
    pub proof: String,
}

fn bad(reason: String) -> AggregateError {
    AggregateError::Input(reason)
}

/// The protocol snark-verifier replays for a proof of `vk` with `n` public values
/// (`params` give only its size); an aggregation's proofs carry their accumulator.
pub(crate) fn protocol(
    params: &ParamsKZG<Bn256>,
    vk: &VerifyingKey<G1Affine>,
    n: usize,
    accumulator: bool,
) -> Option<PlonkProtocol<G1Affine>> {
    let config = ProtocolConfig::kzg().with_num_instance(vec![n]);
    let config = if accumulator {
        config.with_accumulator_indices(AggregationCircuit::accumulator_indices())
    } else {
        config
    };
    guard(|| compile(params, vk, config))
}

/// Whether `proof` (Poseidon transcript) is a valid halo2 proof of `vk` for `instances`,
/// with the opening's pairing checked against `params`.
pub(crate) fn poseidon_proof_holds(
    params: &ParamsKZG<Bn256>,
    vk: &VerifyingKey<G1Affine>,
    instances: &[Fr],
    proof: &[u8],
) -> bool {
    guard(|| {
        let mut t =
            PoseidonTranscript::<NativeLoader, &[u8]>::from_spec(proof, POSEIDON_SPEC.clone());
        verify_proof::<KZGCommitmentScheme<Bn256>, VerifierSHPLONK<'_, Bn256>, _, _, _>(
            params,
            vk,
            SingleStrategy::new(params),
            &[&[instances]],
            &mut t,
        )
        .is_ok()
    }) == Some(true)
}

/// The segments under `part`, in order.
pub fn segments_under(nodes: &[Node], part: Part) -> Vec<usize> {
    match part {
        Part::Segment(i) => vec![i],
        Part::Node(c) => nodes
            .get(c)
            .map(|n| {
                n.parts
                    .iter()
                    .flat_map(|&p| segments_under(nodes, p))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

impl PartFile {
    fn new(model: &str, model_id: String, statements: Vec<ProofFile>, snark: &Snark) -> PartFile {
        PartFile {
            format: PART_FORMAT.into(),
            version: FORMAT_VERSION,
            model: model.to_string(),
            model_id,
            segment: None,
            node: None,
            aggregate_id: None,
            statements,
            instances: snark.instances.iter().flatten().map(fr_to_hex).collect(),
            proof: format!("0x{}", hex::encode(&snark.proof)),
        }
    }

    /// The part of segment `index` of `model` (whose segment keys are `keys`): its proof
    /// for aggregation and its statement.
    pub fn of_segment(
        model: &str,
        keys: &[VerifierKey],
        index: usize,
        statement: ProofFile,
        snark: &Snark,
    ) -> PartFile {
        PartFile {
            segment: Some(index),
            ..PartFile::new(model, keys_id(keys), vec![statement], snark)
        }
    }

    /// The part of the inner node whose aggregation key is `key`: its proof and the
    /// statements of the segments under it.
    pub fn of_node(
        key: &AggregateVerifierKey,
        statements: Vec<ProofFile>,
        snark: &Snark,
    ) -> PartFile {
        PartFile {
            node: Some(key.info.tree.map_or(0, |t| t.node)),
            aggregate_id: Some(key.id()),
            ..PartFile::new(
                &key.info.model,
                key.info.model_id.clone(),
                statements,
                snark,
            )
        }
    }

    pub fn parse(text: &str) -> Result<PartFile, zkinfer_verifier::VerifyError> {
        parse_json_file(text, PART_FORMAT, "aggregation part")
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// What the file says it is.
    pub fn part(&self) -> Result<Part, AggregateError> {
        match (self.segment, self.node) {
            (Some(i), None) => Ok(Part::Segment(i)),
            (None, Some(j)) => Ok(Part::Node(j)),
            _ => Err(bad(
                "an aggregation part is of one segment or one node: give `segment` or `node`"
                    .into(),
            )),
        }
    }

    /// The proof a node folds as its part `want`, checked natively, and the statements
    /// under it: `keys` are the model's segment keys, `nodes` its tree's nodes, and
    /// `child` the aggregation key of node `want` when it is a node.
    pub fn snark(
        &self,
        want: Part,
        keys: &[VerifierKey],
        nodes: &[Node],
        child: Option<&AggregateVerifierKey>,
    ) -> Result<Snark, AggregateError> {
        let is = self.part()?;
        let name = |p: Part| match p {
            Part::Segment(i) => format!("segment {i}"),
            Part::Node(j) => format!("node {j}"),
        };
        if is != want {
            return Err(bad(format!(
                "this is the part of {}; the node folds {} here",
                name(is),
                name(want)
            )));
        }
        let id = keys_id(keys);
        if self.model_id != id {
            return Err(bad(format!(
                "the part is of model id {}; these segment keys are model id {id}",
                self.model_id
            )));
        }
        // A node's part is of the key its parent holds for it (checked first: its
        // statements would otherwise be read against the wrong segments).
        if let Part::Node(c) = want {
            let key = child.ok_or_else(|| {
                bad(format!(
                    "node {c}'s aggregation key is needed to read its part"
                ))
            })?;
            if self.aggregate_id.as_deref() != Some(key.id().as_str())
                || key.info.tree.map(|t| t.node) != Some(c)
            {
                return Err(bad(format!(
                    "the part is of aggregation key {}; node {c}'s is {}",
                    self.aggregate_id.as_deref().unwrap_or("(none)"),
                    key.id()
                )));
            }
        }
        let under = segments_under(nodes, want);
        if self.statements.len() != under.len() || under.is_empty() {
            return Err(bad(format!(
                "the part states {} segments; {} has {} under it",
                self.statements.len(),
                name(want),
                under.len()
            )));
        }
        // Every segment's statement against its key, then the values the proof must
        // expose: a segment's public values, or a node's digest and links over them.
        let mut stated = vec![Vec::new(); keys.len()];
        for (&i, s) in under.iter().zip(&self.statements) {
            let key = keys
                .get(i)
                .ok_or_else(|| bad(format!("segment {i} is not among the keys")))?;
            if s.proof != "0x" {
                return Err(bad(format!(
                    "the statement of segment {i} carries proof bytes; a part's do not"
                )));
            }
            stated[i] = statement(key, s)
                .map_err(|e| bad(format!("the statement of segment {i}: {e}")))?
                .instances;
        }
        let instances = self
            .instances
            .iter()
            .map(|h| fr_from_hex(h))
            .collect::<Option<Vec<Fr>>>()
            .ok_or_else(|| {
                bad("a public value is not a canonical field element in 0x-hex".into())
            })?;
        let proof = hex_bytes(&self.proof).ok_or_else(|| bad("the proof is not 0x-hex".into()))?;
        let (vk, params, accumulator, expected) = match want {
            Part::Segment(i) => {
                let key = &keys[i];
                let params = verifier_params(key)
                    .ok_or_else(|| bad(format!("segment {i}'s key has unusable SRS points")))?;
                (&key.vk, params, false, stated[i].clone())
            }
            Part::Node(c) => {
                let key = child.ok_or_else(|| {
                    bad(format!(
                        "node {c}'s aggregation key is needed to read its part"
                    ))
                })?;
                // The values of every other segment do not enter node c's.
                for (i, s) in stated.iter_mut().enumerate() {
                    if s.is_empty() {
                        *s = vec![Fr::from(0); keys[i].info.public_values()];
                    }
                }
                let values = crate::tree::statement_values(nodes, &stated).map_err(bad)?;
                let params = key
                    .verifier_params()
                    .ok_or_else(|| bad(format!("node {c}'s key has unusable SRS points")))?;
                (&key.vk, params, true, values[c].clone())
            }
        };
        let skip = if accumulator { ACCUMULATOR_LIMBS } else { 0 };
        if instances.len() != skip + expected.len() || instances[skip..] != expected[..] {
            return Err(bad(format!(
                "the public values of the part of {} are not those of its statements",
                name(want)
            )));
        }
        if !poseidon_proof_holds(&params, vk, &instances, &proof) {
            return Err(bad(format!("the proof of {} does not verify", name(want))));
        }
        if let (Part::Node(_), Some(key)) = (want, child) {
            crate::file::decide(key, &instances[..ACCUMULATOR_LIMBS])
                .map_err(|e| bad(format!("{}: {e}", name(want))))?;
        }
        let protocol = protocol(&params, vk, instances.len(), accumulator)
            .ok_or_else(|| bad(format!("snark-verifier cannot read {}'s key", name(want))))?;
        Ok(Snark::new(protocol, vec![instances], proof))
    }
}
