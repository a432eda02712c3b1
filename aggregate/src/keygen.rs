//! The aggregation keys' generation (once per model: its segments' verifying keys are
//! constants of the circuit) and the proving key for `aggregate` (the `prove` feature).

use std::collections::BTreeMap;

use halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine};
use halo2_proofs::plonk::{keygen_pk, keygen_vk, ProvingKey, VerifyingKey};
use halo2_proofs::poly::commitment::{Params, ParamsProver};
use halo2_proofs::poly::kzg::commitment::ParamsKZG;
use halo2_proofs::SerdeFormat;
use snark_verifier_sdk::halo2::aggregation::{AggregationCircuit, AggregationConfigParams};
use snark_verifier_sdk::halo2::gen_dummy_snark_from_vk;
use snark_verifier_sdk::CircuitExt;
use snark_verifier_sdk::{Snark, SHPLONK};
use zkinfer_verifier::artifact::{read_container, write_container};
use zkinfer_verifier::{guard, verifier_params, SrsPoints, VerifierKey};

use crate::circuit::{self, Stage};
use crate::keys::{AggregateInfo, AggregateVerifierKey};
use crate::shape::{Layout, Shape};
use crate::tree::{Node, Part, Tree};
use crate::AggregateError;

const APK_MAGIC: &[u8; 8] = b"ZKINFAPK";

/// The verifying keys of a tree's earlier nodes, by node index.
pub type Earlier = BTreeMap<usize, VerifyingKey<G1Affine>>;

/// The proving key of the aggregation circuit.
pub struct AggregateKey {
    pub info: AggregateInfo,
    pub pk: ProvingKey<G1Affine>,
}

fn srs_points(params: &ParamsKZG<Bn256>) -> SrsPoints {
    SrsPoints {
        g: params.get_g()[0],
        g2: params.g2(),
        s_g2: params.s_g2(),
    }
}

/// Node `tree.node` of the aggregation of the model whose segments' verifying keys are
/// `keys` (the one node without a tree), laid out for key generation (on placeholder
/// proofs: key generation reads no witness); `earlier` holds the verifying keys of the
/// earlier nodes it folds, by node index (others may be absent: a tree level's nodes are
/// made side by side).
fn keygen_circuit(
    params: &ParamsKZG<Bn256>,
    keys: &[VerifierKey],
    tree: Option<Tree>,
    earlier: &Earlier,
) -> Result<(AggregationCircuit, Node, AggregationConfigParams), AggregateError> {
    let nodes = crate::tree::nodes(keys, tree)?;
    let index = tree.map_or(0, |t| t.node);
    let node = nodes[index].clone();
    let points = srs_points(params);
    if let Some(i) = keys.iter().position(|k| k.srs != points) {
        return Err(AggregateError::Input(format!(
            "segment {i}'s key was made with another SRS than the aggregation's ({}, not {})",
            keys[i].srs.fingerprint(),
            points.fingerprint()
        )));
    }
    let degree = params.k();
    let snarks = node
        .parts
        .iter()
        .map(|part| match *part {
            Part::Segment(i) => {
                let key = &keys[i];
                let p = verifier_params(key).ok_or_else(|| {
                    AggregateError::Input("a segment key's SRS points are unusable".into())
                })?;
                guard(|| {
                    gen_dummy_snark_from_vk::<SHPLONK>(
                        &p,
                        &key.vk,
                        vec![key.info.public_values()],
                        None,
                    )
                })
                .ok_or_else(|| {
                    AggregateError::Keygen("snark-verifier cannot read a segment key".into())
                })
            }
            Part::Node(c) => {
                let vk = earlier.get(&c).ok_or_else(|| {
                    AggregateError::Input(format!(
                        "node {index} folds node {c}, whose verifying key is not given"
                    ))
                })?;
                guard(|| {
                    gen_dummy_snark_from_vk::<SHPLONK>(
                        params,
                        vk,
                        vec![nodes[c].public_values()],
                        AggregationCircuit::accumulator_indices(),
                    )
                })
                .ok_or_else(|| {
                    AggregateError::Keygen("snark-verifier cannot read a node's key".into())
                })
            }
        })
        .collect::<Result<Vec<Snark>, _>>()?;
    let start = AggregationConfigParams {
        degree,
        lookup_bits: degree as usize - 1,
        ..Default::default()
    };
    let mut circuit = guard(|| circuit::build(Stage::Keygen, start, params, snarks, &node))
        .ok_or_else(|| AggregateError::Keygen("building the aggregation circuit".into()))?;
    let config = guard(|| circuit.calculate_params(Some(20)))
        .ok_or_else(|| AggregateError::Keygen("laying out the aggregation circuit".into()))?;
    Ok((circuit, node, config))
}

/// The aggregation verifying key of the model named `model` whose segments' verifying
/// keys are `keys` (in order), with `params` of `2^k` points from the segments' SRS: of
/// node `tree.node` of a tree of aggregations (`earlier`: the earlier nodes' verifying
/// keys by index), or of the one aggregation circuit without a tree. Deterministic: a verifier
/// who trusts the model id recomputes the aggregate id from the segment keys with this,
/// without the proving key's cost.
pub fn verifying_key(
    params: &ParamsKZG<Bn256>,
    model: &str,
    keys: &[VerifierKey],
    tree: Option<Tree>,
    earlier: &Earlier,
) -> Result<AggregateVerifierKey, AggregateError> {
    let (circuit, node, config) = keygen_circuit(params, keys, tree, earlier)?;
    let vk = keygen_vk(params, &circuit).map_err(|e| AggregateError::Keygen(format!("{e:?}")))?;
    Ok(AggregateVerifierKey {
        info: info(model, keys, tree, node, config, &circuit),
        k: params.k(),
        srs: srs_points(params),
        vk,
    })
}

fn info(
    model: &str,
    keys: &[VerifierKey],
    tree: Option<Tree>,
    node: Node,
    config: AggregationConfigParams,
    circuit: &AggregationCircuit,
) -> AggregateInfo {
    AggregateInfo {
        model: model.to_string(),
        model_id: zkinfer_verifier::keys_id(keys),
        num_instances: node.num_instances,
        links: node.links,
        config: Layout::from(config),
        break_points: circuit.break_points(),
        tree,
    }
}

/// Generates the aggregation keys (proving and verifying) as [`verifying_key`] does the
/// verifying key.
pub fn setup(
    params: &ParamsKZG<Bn256>,
    model: &str,
    keys: &[VerifierKey],
    tree: Option<Tree>,
    earlier: &Earlier,
) -> Result<(AggregateKey, AggregateVerifierKey), AggregateError> {
    let (circuit, node, config) = keygen_circuit(params, keys, tree, earlier)?;
    let vk = keygen_vk(params, &circuit).map_err(|e| AggregateError::Keygen(format!("{e:?}")))?;
    let pk = keygen_pk(params, vk.clone(), &circuit)
        .map_err(|e| AggregateError::Keygen(format!("{e:?}")))?;
    let info = info(model, keys, tree, node, config, &circuit);
    let verifier = AggregateVerifierKey {
        info: info.clone(),
        k: params.k(),
        srs: srs_points(params),
        vk,
    };
    Ok((AggregateKey { info, pk }, verifier))
}

/// The verifying keys of every node of a tree of aggregations (`leaf` segments a leaf,
/// `arity` nodes a parent), leaves first, the root last: what `aggregate-id` recomputes.
pub fn tree_verifying_keys(
    params: &ParamsKZG<Bn256>,
    model: &str,
    keys: &[VerifierKey],
    leaf: usize,
    arity: usize,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<AggregateVerifierKey>, AggregateError> {
    let count = crate::tree::nodes(
        keys,
        Some(Tree {
            leaf,
            arity,
            node: 0,
        }),
    )?
    .len();
    let mut made: Vec<AggregateVerifierKey> = Vec::with_capacity(count);
    let mut earlier = Earlier::new();
    for node in 0..count {
        progress(node, count);
        let tree = Tree { leaf, arity, node };
        let key = verifying_key(params, model, keys, Some(tree), &earlier)?;
        earlier.insert(node, key.vk.clone());
        made.push(key);
    }
    Ok(made)
}

/// The aggregation keys are one pair: the same circuit (info and halo2 verifying key).
pub fn same_circuit(pk: &AggregateKey, vk: &AggregateVerifierKey) -> bool {
    serde_json::to_vec(&pk.info).ok() == serde_json::to_vec(&vk.info).ok()
        && pk.pk.get_vk().transcript_repr() == vk.vk.transcript_repr()
}

impl AggregateKey {
    pub fn to_bytes(&self) -> Vec<u8> {
        write_container(
            APK_MAGIC,
            &self.info,
            &self.pk.to_bytes(SerdeFormat::RawBytes),
        )
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AggregateError> {
        let (info, body): (AggregateInfo, _) =
            read_container(bytes, APK_MAGIC, "aggregation proving key")?;
        let bad =
            |e: String| AggregateError::Keygen(format!("corrupt aggregation proving key: {e}"));
        info.validate().map_err(bad)?;
        crate::keys::check_halo2_prefix(body, info.config.degree).map_err(bad)?;
        let config = info.config;
        let pk = guard(|| {
            ProvingKey::<G1Affine>::read::<_, Shape<Fr>>(
                &mut &body[..],
                SerdeFormat::RawBytes,
                config,
            )
        })
        .ok_or_else(|| bad("malformed".into()))?
        .map_err(|e| bad(e.to_string()))?;
        Ok(AggregateKey { info, pk })
    }

    /// The snarks are this key's: as many, each with its number of public values.
    #[cfg(feature = "prove")]
    pub(crate) fn check_snarks(&self, snarks: &[Snark]) -> Result<(), AggregateError> {
        let found: Vec<usize> = snarks
            .iter()
            .map(|s| s.instances.iter().map(Vec::len).sum())
            .collect();
        if found != self.info.num_instances {
            return Err(AggregateError::Input(format!(
                "the aggregation key folds proofs with {:?} public values; given {found:?}",
                self.info.num_instances
            )));
        }
        Ok(())
    }
}
