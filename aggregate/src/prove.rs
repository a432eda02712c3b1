//! Proving: segment proofs with the Poseidon transcript the aggregation circuit replays,
//! and the aggregated proof itself (the `prove` feature; the verifier needs none of it).

use halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine};
use halo2_proofs::plonk::{create_proof, create_proof_from_advice};
use halo2_proofs::poly::commitment::ParamsProver;
use halo2_proofs::poly::kzg::commitment::{KZGCommitmentScheme, ParamsKZG};
use halo2_proofs::poly::kzg::multiopen::ProverSHPLONK;
use halo2_proofs::transcript::{EncodedChallenge, TranscriptWriterBuffer};
use rand::rngs::OsRng;
use snark_verifier::loader::native::NativeLoader;
use snark_verifier_sdk::halo2::aggregation::AggregationCircuit;
use snark_verifier_sdk::halo2::{PoseidonTranscript, POSEIDON_SPEC};
use snark_verifier_sdk::Snark;
use zkinfer_prover::{Columns, ProverKey, Witness};
use zkinfer_verifier::artifact::{fr_to_hex, FORMAT_VERSION, PROOF_FORMAT, PROTOCOL};
use zkinfer_verifier::{guard, ProofFile, VerifierKey};

use crate::part::{poseidon_proof_holds, protocol};
use crate::tree::Node;
use crate::{circuit, AggregateError, AggregateKey};

/// A folded proof's statement as the aggregated proof file states it: a proof file of
/// `key`'s model with `witness`'s public values and output, and no proof bytes.
pub fn statement_file(key: &VerifierKey, witness: &Witness) -> ProofFile {
    ProofFile {
        format: PROOF_FORMAT.into(),
        version: FORMAT_VERSION,
        protocol: PROTOCOL.into(),
        model: key.info.model.clone(),
        model_id: key.model_id(),
        proof: "0x".into(),
        visibility: key.info.visibility(),
        instances: witness.instances.iter().map(fr_to_hex).collect(),
        output: witness.output().cloned(),
    }
}

/// Proves a segment's witness with snark-verifier's Poseidon transcript (what the
/// aggregation circuit replays), checks the proof, and returns it with its protocol.
pub fn prove_inner(
    params: &ParamsKZG<Bn256>,
    key: &ProverKey,
    witness: Witness,
) -> Result<Snark, AggregateError> {
    let Witness {
        columns, instances, ..
    } = witness;
    let fail = |e: String| AggregateError::Prove(format!("proving a segment for aggregation: {e}"));
    let mut transcript =
        PoseidonTranscript::<NativeLoader, Vec<u8>>::from_spec(vec![], POSEIDON_SPEC.clone());
    match columns {
        Columns::Advice(advice) => create_proof_from_advice::<
            KZGCommitmentScheme<Bn256>,
            ProverSHPLONK<'_, Bn256>,
            _,
            _,
            _,
        >(params, &key.pk, &[instances.as_slice()], advice, OsRng, &mut transcript),
        Columns::TwoPhase(circuit) => create_proof::<
            KZGCommitmentScheme<Bn256>,
            ProverSHPLONK<'_, Bn256>,
            _,
            _,
            _,
            _,
        >(
            params,
            &key.pk,
            &[*circuit],
            &[&[instances.as_slice()]],
            OsRng,
            &mut transcript,
        ),
    }
    .map_err(|e| fail(format!("{e:?}")))?;
    let proof = transcript.finalize();
    let vk = key.pk.get_vk();
    if !poseidon_proof_holds(params.verifier_params(), vk, &instances, &proof) {
        return Err(fail("the proof does not verify".into()));
    }
    let protocol = protocol(params, vk, instances.len(), false)
        .ok_or_else(|| fail("snark-verifier cannot read this circuit".into()))?;
    Ok(Snark::new(protocol, vec![instances], proof))
}

/// The accumulator limbs and the digest, as the aggregated proof's public values.
pub(crate) type Instances = Vec<Fr>;

/// The circuit of `key`'s node over `snarks` (its parts' proofs, in order) for proving,
/// and its public values.
fn prover_circuit(
    params: &ParamsKZG<Bn256>,
    key: &AggregateKey,
    node: &Node,
    snarks: Vec<Snark>,
) -> Result<(AggregationCircuit, Instances), AggregateError> {
    key.check_snarks(&snarks)?;
    if node.index != key.info.tree.map_or(0, |t| t.node)
        || node.num_instances != key.info.num_instances
        || node.links != key.info.links
    {
        return Err(AggregateError::Input(
            "the aggregation key folds other proofs than this node of the tree".into(),
        ));
    }
    let circuit = guard(|| {
        circuit::build(
            circuit::Stage::Prover,
            key.info.config.into(),
            params,
            snarks,
            node,
        )
        .use_break_points(key.info.break_points.clone())
    })
    .ok_or_else(|| AggregateError::Prove("an inner proof does not verify".into()))?;
    let instances = circuit.builder.assigned_instances[0]
        .iter()
        .map(|v| *v.value())
        .collect::<Vec<Fr>>();
    Ok((circuit, instances))
}

/// Proves the aggregation of `snarks` (the proofs `node` folds, in order) with `key`,
/// the root's (or the only) aggregation key: a proof with the Keccak transcript that the
/// native, wasm and EVM verifiers check.
pub fn prove(
    params: &ParamsKZG<Bn256>,
    key: &AggregateKey,
    node: &Node,
    snarks: Vec<Snark>,
) -> Result<(Instances, Vec<u8>), AggregateError> {
    let (circuit, instances) = prover_circuit(params, key, node, snarks)?;
    let transcript = <zkinfer_verifier::KeccakTranscript<Vec<u8>> as TranscriptWriterBuffer<
        _,
        G1Affine,
        _,
    >>::init(Vec::new());
    let proof = create(params, key, circuit, &instances, transcript)?;
    Ok((instances, proof))
}

/// halo2's SHPLONK prover on the aggregation circuit, writing `transcript`.
fn create<E: EncodedChallenge<G1Affine>, T: TranscriptWriterBuffer<Vec<u8>, G1Affine, E>>(
    params: &ParamsKZG<Bn256>,
    key: &AggregateKey,
    circuit: AggregationCircuit,
    instances: &[Fr],
    mut transcript: T,
) -> Result<Vec<u8>, AggregateError> {
    create_proof::<KZGCommitmentScheme<Bn256>, ProverSHPLONK<'_, Bn256>, _, _, _, _>(
        params,
        &key.pk,
        &[circuit],
        &[&[instances]],
        OsRng,
        &mut transcript,
    )
    .map_err(|e| AggregateError::Prove(format!("{e:?}")))?;
    Ok(transcript.finalize())
}

/// Proves an inner node of a tree of aggregations, as [`prove`] the root, with the
/// Poseidon transcript its parent replays: a snark whose accumulator its parent folds.
pub fn prove_node(
    params: &ParamsKZG<Bn256>,
    key: &AggregateKey,
    node: &Node,
    snarks: Vec<Snark>,
) -> Result<Snark, AggregateError> {
    let (circuit, instances) = prover_circuit(params, key, node, snarks)?;
    let protocol = protocol(params, key.pk.get_vk(), instances.len(), true)
        .ok_or_else(|| AggregateError::Prove("snark-verifier cannot read a node's key".into()))?;
    let transcript =
        PoseidonTranscript::<NativeLoader, Vec<u8>>::from_spec(vec![], POSEIDON_SPEC.clone());
    let proof = create(params, key, circuit, &instances, transcript)?;
    Ok(Snark::new(protocol, vec![instances], proof))
}
