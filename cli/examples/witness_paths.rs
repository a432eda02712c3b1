//! Measures what writing the advice columns directly saves over halo2's own witness
//! collection, in one process on one set of keys:
//!
//!     cargo run --release --example witness_paths -- DIR INPUT.json [RUNS]
//!
//! DIR is a model directory after `zkinfer compile` and `zkinfer setup`. Each run proves
//! once through `create_proof` (the circuit synthesized by halo2's layouter into its
//! `Assigned` witness table) and once through `advice_columns` + `create_proof_from_advice`
//! (zkinfer's path), alternating; both proofs are verified. Prints the median of each.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rand::rngs::OsRng;
use zkinfer::files::{load_circuit, read, Paths};
use zkinfer_circuits::halo2_proofs::halo2curves::bn256::Bn256;
use zkinfer_circuits::halo2_proofs::plonk::create_proof;
use zkinfer_circuits::halo2_proofs::poly::kzg::commitment::KZGCommitmentScheme;
use zkinfer_circuits::halo2_proofs::poly::kzg::multiopen::ProverSHPLONK;
use zkinfer_circuits::halo2_proofs::transcript::TranscriptWriterBuffer;
use zkinfer_circuits::ModelCircuit;
use zkinfer_compiler::{parse_input_json, quantize_input};
use zkinfer_prover::engine::ProofTranscript;
use zkinfer_prover::{read_srs, CpuEngine, ProverKey};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, input) = match &args[..] {
        [d, i, ..] => (PathBuf::from(d), PathBuf::from(i)),
        _ => bail!("usage: witness_paths DIR INPUT.json [RUNS]"),
    };
    let runs: usize = args.get(2).map_or(Ok(3), |r| r.parse())?;
    let paths = Paths::new(&dir);
    let compiled = load_circuit(&dir)?;
    let pk = ProverKey::from_bytes(&read(&paths.pk, "proving key")?)?;
    let params = read_srs(&read(&paths.srs, "SRS")?)?;
    let model = Arc::new(compiled.model);
    let text = std::fs::read_to_string(&input).with_context(|| input.display().to_string())?;
    let data = parse_input_json(&text, &[model.value(model.input).shape.clone()])?;
    let trace = Arc::new(model.run(&quantize_input(&model, &data.samples[0]))?);
    let vk = zkinfer::files::load_vk(&dir)?;

    let valid = |proof: &zkinfer_verifier::ProofFile, path: &str| -> Result<()> {
        match zkinfer_verifier::verify(&vk, proof) {
            zkinfer_verifier::Verdict::Valid { .. } => Ok(()),
            v => bail!("the proof of the {path} path does not verify: {v:?}"),
        }
    };

    let (mut layouter, mut direct, mut columns) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        let w = zkinfer_prover::witness(model.clone(), &pk, trace.clone(), Default::default())?;
        columns.push(t.elapsed().as_secs_f64());
        let mut proof = zkinfer_prover::prove_witness(&CpuEngine, &pk, &params, w)?;
        direct.push(t.elapsed().as_secs_f64());
        valid(&proof, "direct")?;

        let t = Instant::now();
        let instances =
            ModelCircuit::instances(&model, &pk.info.layout, &trace, &Default::default());
        let circuit =
            ModelCircuit::with_trace(model.clone(), pk.info.layout.clone(), trace.clone());
        let mut transcript = ProofTranscript::init(Vec::new());
        create_proof::<KZGCommitmentScheme<Bn256>, ProverSHPLONK<'_, Bn256>, _, _, _, _>(
            &params,
            &pk.pk,
            &[circuit],
            &[&[&instances]],
            OsRng,
            &mut transcript,
        )
        .map_err(|e| anyhow::anyhow!("create_proof: {e:?}"))?;
        layouter.push(t.elapsed().as_secs_f64());
        proof.proof = format!("0x{}", hex::encode(transcript.finalize()));
        valid(&proof, "layouter")?;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (l, d, c) = (
        median(&mut layouter),
        median(&mut direct),
        median(&mut columns),
    );
    println!(
        "{}: k {}, {} runs (median): create_proof {l:.3} s; advice_columns {c:.3} s + \
         create_proof_from_advice = {d:.3} s; saves {:.3} s ({:.0}%)",
        model.name,
        pk.info.layout.k,
        runs,
        l - d,
        100.0 * (l - d) / l
    );
    Ok(())
}
