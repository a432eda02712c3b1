//! `certify` and the verification of certificates: every batch of a labelled dataset
//! proven by a certificate circuit (`compile --certify N`), and the claim they make
//! together (see `zkinfer_verifier::certificate`).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use zkinfer_pipeline::certificate::{dataset_batches, per_sample};
use zkinfer_prover::{read_srs, srs_points, Engine, ProverKey};
use zkinfer_verifier::certificate::{claim, dataset_id_of, is_certificate, stated};
use zkinfer_verifier::{verify_certificate, CertificateFile, Claim, VerifierKey};

use crate::commands::{pinned, print_srs};
use crate::files::{load_circuit, load_vk, read, read_text, write, Paths};
use crate::progress::{secs, step};

/// Whether the file at `path` is a certificate.
pub fn is_certificate_file(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .map(|t| is_certificate(&t))
        .unwrap_or(false)
}

/// Proves every batch of `dataset` with the certificate circuit of `dir` on `engine`;
/// writes the certificate to `out` and prints its claim.
pub fn certify(engine: &dyn Engine, dir: &Path, dataset: &Path, out: &Path) -> Result<()> {
    let total = Instant::now();
    let paths = Paths::new(dir);
    let compiled = load_circuit(dir)?;
    let Some(spec) = compiled.certificate.clone() else {
        bail!(
            "{}: not a certificate circuit; compile the model with `--certify N` (N samples a \
             proof)",
            paths.circuit.display()
        );
    };
    let batches = dataset_batches(&compiled, &read_text(dataset)?)
        .map_err(|e| anyhow::Error::new(e).context(dataset.display().to_string()))?;
    let pk = ProverKey::from_bytes(&read(&paths.pk, "proving key")?)
        .with_context(|| paths.pk.display().to_string())?;
    let params =
        read_srs(&read(&paths.srs, "SRS")?).with_context(|| paths.srs.display().to_string())?;
    let key = load_vk(dir)?;
    if pk.info != compiled.info() || key.info != compiled.info() {
        bail!(
            "{}: the keys were made for another compiled circuit; run `zkinfer setup` again",
            dir.display()
        );
    }
    if srs_points(&params).is_insecure_dev_srs() {
        eprintln!("warning: these keys use the insecure development SRS");
    }
    eprintln!(
        "certifying `{}` on {} samples: {} batch(es) of {}, 2^{} rows each, {}",
        compiled.model.name,
        batches.len() * spec.batch,
        batches.len(),
        spec.batch,
        pk.info.layout.k,
        engine.name()
    );
    let model = Arc::new(compiled.model);
    let mut proofs = Vec::with_capacity(batches.len());
    for (i, batch) in batches.iter().enumerate() {
        let t = Instant::now();
        let trace = zkinfer_pipeline::trace(&model, batch).with_context(|| {
            format!(
                "{}: batch {i} (samples {}..{})",
                dataset.display(),
                i * spec.batch,
                (i + 1) * spec.batch
            )
        })?;
        let count = trace.get(model.output).first().copied().unwrap_or(0)
            >> model.value(model.output).scale.max(0);
        let witness =
            zkinfer_prover::witness(model.clone(), &pk, Arc::new(trace), Default::default())?;
        proofs.push(zkinfer_prover::prove_witness(
            engine, &pk, &params, witness,
        )?);
        eprintln!(
            "  batch {}/{}: {count}/{} correct, proven in {}",
            i + 1,
            batches.len(),
            spec.batch,
            secs(t.elapsed())
        );
    }
    let claim = claim(&key, &proofs)
        .map_err(|why| anyhow::anyhow!("the certificate's own proofs do not verify: {why}"))?;
    let cert = CertificateFile::new(model.name.clone(), &claim, proofs);
    write(out, cert.to_json().as_bytes())?;
    println!("certificate -> {}", out.display());
    println!("  {}", claim.sentence());
    println!("  model id  {}", claim.model_id);
    println!("  time      {}", secs(total.elapsed()));
    Ok(())
}

/// Verifies the certificate at `path` with the key of `dir` (pinned to `expected_id` if
/// given); with `dataset`, also that it is that dataset's. Prints the claim.
pub fn verify(
    dir: &Path,
    path: &Path,
    expected_id: Option<&str>,
    dataset: Option<&Path>,
) -> Result<bool> {
    let key = load_vk(dir)?;
    let cert =
        CertificateFile::parse(&read_text(path)?).with_context(|| path.display().to_string())?;
    if !pinned(&key, dir, expected_id, "invalid") {
        return Ok(false);
    }
    let start = Instant::now();
    let claim = match verify_certificate(&key, &cert) {
        Ok(c) => c,
        Err(reason) => {
            println!("invalid: {reason}");
            return Ok(false);
        }
    };
    let elapsed = start.elapsed();
    if !of_dataset(&key, &claim, dataset, "invalid")? {
        return Ok(false);
    }
    println!("valid: {}", claim.sentence());
    print_claim(&key, &claim, dataset);
    println!("  time      verify {}", secs(elapsed));
    Ok(true)
}

/// Verifies the certificate at `path` in an in-process EVM: one call of the key's
/// `CertificateVerifier`, which has `Halo2Verifier` check every batch proof and returns
/// the claim; that claim must be what the file states (and, with `dataset`, of that
/// dataset). Prints it.
pub fn verify_evm(
    dir: &Path,
    path: &Path,
    expected_id: Option<&str>,
    dataset: Option<&Path>,
) -> Result<bool> {
    crate::segmented::refuse_evm(dir)?;
    let key = load_vk(dir)?;
    let (cert, batches) = batch_calldata(path)?;
    if !pinned(&key, dir, expected_id, "rejected") {
        return Ok(false);
    }
    if key.info.certificate.is_none() {
        bail!(
            "{}: the verifying key is not a certificate circuit's (`compile --certify N`)",
            dir.display()
        );
    }
    // Each proof file's own statement (its model id and stated output), as for one proof;
    // the contract checks the proofs.
    for (i, proof) in cert.proofs.iter().enumerate() {
        if let Err(reason) = zkinfer_verifier::statement(&key, proof) {
            println!("rejected: batch {i}: {reason}");
            return Ok(false);
        }
    }
    let (build, t_build) = crate::evm::build(&key)?;
    if key.srs.is_insecure_dev_srs() {
        eprintln!("{}", crate::commands::DEV_SRS_WARNING);
    }
    let (run, t_evm) = step(
        &format!(
            "deploying and calling CertificateVerifier.certify with {} batch proof(s) in revm",
            batches.len()
        ),
        || zkinfer_evm::certify_in_evm(&build, &batches),
    );
    let run = run?;
    let Some(returned) = &run.claim else {
        println!(
            "rejected: {}",
            run.run
                .reason
                .as_deref()
                .unwrap_or("the contract returned no claim")
        );
        crate::evm::print_run(&run.run, t_build, t_evm);
        return Ok(false);
    };
    if key.info.params_hash.as_deref() != Some(returned.weights_hash.as_str()) {
        bail!(
            "the contract returned weights hash {}, not its key's: the verifier is broken",
            returned.weights_hash
        );
    }
    let claim = Claim {
        model_id: key.model_id(),
        params_hash: returned.weights_hash.clone(),
        dataset: returned.dataset.clone(),
        samples: returned.samples,
        correct: returned.correct,
    };
    if let Err(reason) = stated(&key, &cert, &claim) {
        println!(
            "rejected: the contract proves {}; {reason}",
            claim.sentence()
        );
        return Ok(false);
    }
    if !of_dataset(&key, &claim, dataset, "rejected")? {
        return Ok(false);
    }
    println!("accepted: {}", claim.sentence());
    print_claim(&key, &claim, dataset);
    println!(
        "  call      CertificateVerifier.certify, {} batch proof(s) in one call",
        batches.len()
    );
    crate::evm::print_run(&run.run, t_build, t_evm);
    Ok(true)
}

/// The certificate at `path` and the calldata of each of its batch proofs.
pub(crate) fn batch_calldata(path: &Path) -> Result<(CertificateFile, Vec<Vec<u8>>)> {
    let cert =
        CertificateFile::parse(&read_text(path)?).with_context(|| path.display().to_string())?;
    let batches = cert
        .proofs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            zkinfer_evm::calldata(p)
                .map_err(|e| anyhow::anyhow!("{}: batch {i}: {e}", path.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((cert, batches))
}

/// Whether `claim` is of the labelled dataset at `dataset` (if one is given); prints why
/// not after `verdict`.
fn of_dataset(
    key: &VerifierKey,
    claim: &Claim,
    dataset: Option<&Path>,
    verdict: &str,
) -> Result<bool> {
    let Some(data) = dataset else {
        return Ok(true);
    };
    let id = dataset_id(key, data)?;
    if id != claim.dataset {
        println!(
            "{verdict}: the certificate is of dataset {}; {} is dataset {id}",
            claim.dataset,
            data.display()
        );
        return Ok(false);
    }
    Ok(true)
}

/// The model id, dataset and SRS lines under a verified claim.
fn print_claim(key: &VerifierKey, claim: &Claim, dataset: Option<&Path>) {
    println!("  model id  {} (`{}`)", claim.model_id, key.info.model);
    if let Some(data) = dataset {
        println!(
            "  dataset   {} is dataset {}",
            data.display(),
            claim.dataset
        );
    }
    print_srs(key);
}

/// The dataset id of the labelled dataset at `path` for a certificate key.
fn dataset_id(key: &VerifierKey, path: &Path) -> Result<String> {
    let batch = key.info.certificate.as_ref().map_or(0, |c| c.batch);
    let Some(sample) = per_sample(key.info.input_len(), batch) else {
        bail!("the verifying key is not a certificate's");
    };
    let data = zkinfer_compiler::parse_dataset_json(&read_text(path)?, &[vec![sample]])
        .with_context(|| path.display().to_string())?;
    dataset_id_of(key, &data.samples, &data.labels)
        .map_err(anyhow::Error::msg)
        .with_context(|| path.display().to_string())
}

/// Writes `dir`'s compiled circuit, its hashed weights replaced, to `out/circuit.json`.
pub fn redact(dir: &Path, out: &Path) -> Result<()> {
    let compiled = load_circuit(dir)?;
    let Some(redacted) = compiled.redacted() else {
        bail!(
            "{}: the weights are fixed columns, which the verifying key commits to; only a \
             circuit with --params hashed has a key that does not depend on them",
            Paths::new(dir).circuit.display()
        );
    };
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let path = Paths::new(out).circuit;
    write(&path, &redacted.to_json())?;
    println!(
        "redacted circuit of `{}` -> {} (weights replaced; `zkinfer setup {}` makes keys \
         with the same model id digest)",
        redacted.model.name,
        path.display(),
        out.display()
    );
    Ok(())
}
