//! The commands on a segmented model directory: `DIR/segments.json` and one model
//! directory per segment, `DIR/segment-<i>/` (see `zkinfer_pipeline::segments`).

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use zkinfer_pipeline::segments::{segment_dir, Manifest, WitnessFile};
use zkinfer_pipeline::{Compilation, CompileOptions};
use zkinfer_prover::{read_srs, write_srs, CompiledCircuit, Engine, ProverKey};
use zkinfer_verifier::{keys_id, verify_bundle, BundleFile, ProofFile, Verdict, VerifierKey};

use crate::commands::{load_srs, print_output, print_public, print_srs};
use crate::files::{load_circuit, load_proof, load_vk, read, read_text, write, Paths};
use crate::progress::{secs, step};

const MANIFEST: &str = "segments.json";

pub fn is_segmented(dir: &Path) -> bool {
    dir.join(MANIFEST).is_file()
}

/// Removes what `compile` writes into `dir` (a whole model's files or a segmented
/// model's), so that a new compile leaves no stale keys beside it.
pub fn clear(dir: &Path) -> Result<()> {
    let p = Paths::new(dir);
    for f in [p.circuit, p.pk, p.vk, p.srs, dir.join(MANIFEST)] {
        if f.is_file() {
            std::fs::remove_file(&f).with_context(|| format!("removing {}", f.display()))?;
        }
    }
    for i in 0.. {
        let d = dir.join(segment_dir(i));
        if !d.is_dir() {
            break;
        }
        std::fs::remove_dir_all(&d).with_context(|| format!("removing {}", d.display()))?;
    }
    Ok(())
}

/// Writes the manifest and every segment's circuit; prints the segment table.
pub fn write_compiled(
    model: &Path,
    out: &Path,
    compilation: &Compilation,
    options: &CompileOptions,
) -> Result<()> {
    let budget = options.max_memory_mb.unwrap_or(f64::INFINITY);
    let manifest = Manifest::new(
        &compilation.model,
        model.display().to_string(),
        budget,
        &compilation.segments,
    );
    for (i, c) in compilation.circuits.iter().enumerate() {
        let d = out.join(segment_dir(i));
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        write(&Paths::new(&d).circuit, &c.to_json())?;
    }
    write(&out.join(MANIFEST), &manifest.to_json())?;
    let n = manifest.segments.len();
    println!(
        "  segments  {n}, linked by salted Poseidon hashes of their boundaries ({})",
        options.visibility
    );
    println!(
        "  {:>3}  {:>11}  {:>8}  {:>3}  {:>9}  {:>9}  boundary out",
        "seg", "ops", "rows", "k", "pred. s", "pred. MB"
    );
    for (i, s) in manifest.segments.iter().enumerate() {
        let out = if i + 1 == n {
            "(the model output)".to_string()
        } else {
            s.outputs
                .iter()
                .map(|t| format!("{} {:?}", t.name, t.shape))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "  {:>3}  {:>11}  {:>8}  {:>3}  {:>9.1}  {:>9.0}  {}",
            i,
            format!("{}..{}", s.ops[0], s.ops[1]),
            s.rows,
            s.k,
            s.predicted_s,
            s.predicted_mb,
            out
        );
    }
    let total: f64 = manifest.segments.iter().map(|s| s.predicted_s).sum();
    let peak = manifest
        .segments
        .iter()
        .map(|s| s.predicted_mb)
        .fold(0.0, f64::max);
    println!(
        "  predicted prove {total:.1} s in all, peak {peak:.0} MB (one segment at a time; \
         cost model, 2-core reference machine)"
    );
    Ok(())
}

pub fn load_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST);
    let bytes = read(&path, "segment manifest")?;
    Manifest::from_json(&bytes).with_context(|| path.display().to_string())
}

fn seg(dir: &Path, i: usize) -> PathBuf {
    dir.join(segment_dir(i))
}

/// Sets up every segment with one SRS (read once, at the largest `k`).
pub fn setup(dir: &Path, srs: Option<&Path>, dev: bool) -> Result<()> {
    let manifest = load_manifest(dir)?;
    let circuits = (0..manifest.segments.len())
        .map(|i| load_circuit(&seg(dir, i)))
        .collect::<Result<Vec<_>>>()?;
    let k_max = circuits.iter().map(|c| c.plan.layout.k).max().unwrap_or(1);
    let (params, t_srs) = load_srs(srs, dev, k_max)?;
    let n = circuits.len();
    let mut ids = Vec::new();
    let mut t_keygen = Duration::ZERO;
    let mut last_vk = None;
    let mut smaller: Vec<(u32, zkinfer_prover::Params)> = Vec::new();
    for (i, c) in circuits.iter().enumerate() {
        let k = c.plan.layout.k;
        // The powers of the largest segment's k serve it as they are; a smaller k's are
        // their prefix (halo2 recomputes its Lagrange basis: done once per k).
        if !smaller.iter().any(|(kk, _)| *kk == k) && k < k_max {
            let mut p = params.clone();
            zkinfer_circuits::halo2_proofs::poly::commitment::Params::downsize(&mut p, k);
            smaller.push((k, p));
        }
        let p = smaller
            .iter()
            .find(|(kk, _)| *kk == k)
            .map_or(&params, |(_, p)| p);
        let (keys, t) = step(
            &format!("segment {i}/{n}: generating keys (2^{k} rows)"),
            || zkinfer_pipeline::setup(c, p),
        );
        let (pk, vk) = keys?;
        t_keygen += t;
        let paths = Paths::new(&seg(dir, i));
        write(&paths.pk, &pk.to_bytes())?;
        write(&paths.vk, &vk.to_bytes())?;
        write(&paths.srs, &write_srs(p))?;
        eprintln!("segment {i}/{n}: keys in {} (k {k})", secs(t));
        ids.push(vk.model_id());
        last_vk = Some(vk);
    }
    println!(
        "keys for `{}` ({n} segments) -> {}",
        manifest.model,
        dir.display()
    );
    println!("  model id  {}", zkinfer_verifier::bundle_id(&ids));
    if let Some(vk) = last_vk {
        print_srs(&vk);
    }
    println!("  time      srs {}, keygen {}", secs(t_srs), secs(t_keygen));
    Ok(())
}

fn load_witness(path: &Path) -> Result<WitnessFile> {
    let bytes = read(path, "witness file")?;
    WitnessFile::from_json(&bytes).with_context(|| path.display().to_string())
}

/// DIR's manifest and the witness file `witness` of its segments, for segment `i`.
pub fn load_witness_of(dir: &Path, witness: &Path, i: usize) -> Result<(Manifest, WitnessFile)> {
    let manifest = load_manifest(dir)?;
    let w = load_witness(witness)?;
    let n = manifest.segments.len();
    if w.inputs.len() != n {
        bail!(
            "{}: holds {} segments' boundaries; {} has {n} segments",
            witness.display(),
            w.inputs.len(),
            dir.display()
        );
    }
    if i >= n {
        bail!(
            "--segment {i}: {} has segments 0 to {}",
            dir.display(),
            n - 1
        );
    }
    Ok((manifest, w))
}

fn compute_witness(dir: &Path, input: &Path) -> Result<(Manifest, WitnessFile)> {
    let manifest = load_manifest(dir)?;
    let circuits = (0..manifest.segments.len())
        .map(|i| load_circuit(&seg(dir, i)))
        .collect::<Result<Vec<CompiledCircuit>>>()?;
    let sample = zkinfer_pipeline::input_sample(&circuits[0], &read_text(input)?)
        .map_err(|e| anyhow::Error::new(e).context(input.display().to_string()))?;
    let w = zkinfer_pipeline::segments::witness(&circuits, &sample)
        .with_context(|| format!("computing the witness for {}", input.display()))?;
    Ok((manifest, w))
}

/// `zkinfer witness`: the boundaries of every cut, and fresh salts.
pub fn witness(dir: &Path, input: &Path, out: &Path) -> Result<()> {
    let (manifest, w) = compute_witness(dir, input)?;
    write(out, &w.to_json())?;
    println!(
        "witness of `{}` ({} segments) -> {} (private: it holds the activations between segments and their salts)",
        manifest.model,
        w.inputs.len(),
        out.display()
    );
    Ok(())
}

/// Proves segment `i` of `dir` from `w`; returns the proof and the seconds it took.
fn prove_one(
    engine: &dyn Engine,
    dir: &Path,
    w: &WitnessFile,
    i: usize,
) -> Result<(ProofFile, Duration)> {
    let d = seg(dir, i);
    let paths = Paths::new(&d);
    let circuit = load_circuit(&d)?;
    let pk = ProverKey::from_bytes(&read(&paths.pk, "proving key")?)
        .with_context(|| paths.pk.display().to_string())?;
    if pk.info != circuit.info() {
        bail!(
            "{}: the keys were made for another compiled circuit; run `zkinfer setup` again",
            paths.pk.display()
        );
    }
    let params =
        read_srs(&read(&paths.srs, "SRS")?).with_context(|| paths.srs.display().to_string())?;
    let start = Instant::now();
    let proof = zkinfer_pipeline::segments::prove_segment(engine, &circuit, &pk, &params, w, i)
        .with_context(|| format!("segment {i}"))?;
    Ok((proof, start.elapsed()))
}

/// `zkinfer prove --witness W --segment I`: one segment's proof file.
pub fn prove_segment(
    engine: &dyn Engine,
    dir: &Path,
    witness: &Path,
    i: usize,
    proof: &Path,
) -> Result<()> {
    let (manifest, w) = load_witness_of(dir, witness, i)?;
    let n = manifest.segments.len();
    let (r, _) = step(
        &format!(
            "segment {i}/{n}: proving (2^{} rows)",
            manifest.segments[i].k
        ),
        || prove_one(engine, dir, &w, i),
    );
    let (p, t) = r?;
    write(proof, p.to_json().as_bytes())?;
    println!(
        "proof of segment {i}/{n} of `{}` -> {} ({}, peak memory {})",
        manifest.model,
        proof.display(),
        secs(t),
        peak_rss()
    );
    Ok(())
}

/// A counting semaphore of megabytes: segments proven side by side keep their predicted
/// peaks within the budget (one over the budget alone runs by itself).
struct Memory {
    free: Mutex<f64>,
    freed: Condvar,
    budget: f64,
}

impl Memory {
    fn acquire(&self, mb: f64) -> f64 {
        let want = mb.min(self.budget);
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free < want {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= want;
        want
    }

    fn release(&self, mb: f64) {
        *self.free.lock().unwrap_or_else(|e| e.into_inner()) += mb;
        self.freed.notify_all();
    }
}

/// A segment's proof and the time it took, or why it failed.
type Proven = Result<(ProofFile, Duration)>;

/// `zkinfer prove` on a segmented model: the witness, every segment's proof (`jobs` side
/// by side within the memory budget), and the bundle.
pub fn prove(
    engine: &dyn Engine,
    dir: &Path,
    input: &Path,
    proof: &Path,
    jobs: usize,
) -> Result<()> {
    let total = Instant::now();
    let (manifest, w) = compute_witness(dir, input)?;
    let n = manifest.segments.len();
    let budget = if manifest.budget_mb.is_finite() {
        manifest.budget_mb
    } else {
        f64::MAX
    };
    let memory = Memory {
        free: Mutex::new(budget),
        freed: Condvar::new(),
        budget,
    };
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<Proven>>> = Mutex::new((0..n).map(|_| None).collect());
    eprintln!(
        "proving {n} segments of `{}`, {} at a time within {} ({})",
        manifest.model,
        jobs.max(1),
        if budget == f64::MAX {
            "no memory budget".to_string()
        } else {
            format!("{budget:.0} MB")
        },
        engine.name()
    );
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, n) {
            scope.spawn(|| loop {
                let i = {
                    let mut next = next.lock().unwrap_or_else(|e| e.into_inner());
                    let i = *next;
                    *next += 1;
                    i
                };
                if i >= n {
                    break;
                }
                let s = &manifest.segments[i];
                let held = memory.acquire(s.predicted_mb);
                eprintln!(
                    "segment {i}/{n}: proving (2^{} rows, predicted {:.1} s, {:.0} MB)",
                    s.k, s.predicted_s, s.predicted_mb
                );
                let r = prove_one(engine, dir, &w, i);
                memory.release(held);
                match &r {
                    Ok((_, t)) => eprintln!("segment {i}/{n}: done in {}", secs(*t)),
                    Err(e) => eprintln!("segment {i}/{n}: failed: {e:#}"),
                }
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    let mut proofs = Vec::with_capacity(n);
    let mut times = Vec::with_capacity(n);
    for (i, r) in results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .enumerate()
    {
        let (p, t) = r.with_context(|| format!("segment {i} was not proven"))??;
        proofs.push(p);
        times.push(t);
    }
    let keys = load_keys(dir, n)?;
    let bundle = BundleFile::new(manifest.model.clone(), keys_id(&keys), proofs);
    write(proof, bundle.to_json().as_bytes())?;
    println!(
        "proof bundle of `{}` ({n} segments) -> {}",
        manifest.model,
        proof.display()
    );
    match bundle.proofs.last().and_then(|p| p.output.as_ref()) {
        Some(out) => {
            let parts = load_circuit(&seg(dir, n - 1))
                .map(|c| c.outputs)
                .unwrap_or_default();
            print_output(&out.values, &out.shape, &parts)
        }
        None => println!("  output    (the bundle states only its hash)"),
    }
    println!(
        "  {:>3}  {:>3}  {:>10}  {:>10}  {:>9}",
        "seg", "k", "pred. s", "proved s", "pred. MB"
    );
    for (i, (s, t)) in manifest.segments.iter().zip(&times).enumerate() {
        println!(
            "  {i:>3}  {:>3}  {:>10.1}  {:>10.1}  {:>9.0}",
            s.k,
            s.predicted_s,
            t.as_secs_f64(),
            s.predicted_mb
        );
    }
    println!(
        "  time      total {}, peak memory {}",
        secs(total.elapsed()),
        peak_rss()
    );
    Ok(())
}

/// `zkinfer bundle`: the segment proofs (in order) as one bundle, checked to verify.
pub fn bundle(dir: &Path, parts: &[PathBuf], out: &Path) -> Result<bool> {
    let manifest = load_manifest(dir)?;
    let keys = load_keys(dir, manifest.segments.len())?;
    let proofs = parts
        .iter()
        .map(|p| load_proof(p))
        .collect::<Result<Vec<_>>>()?;
    let bundle = BundleFile::new(manifest.model.clone(), keys_id(&keys), proofs);
    match verify_bundle(&keys, &bundle) {
        Verdict::Valid { .. } => {
            write(out, bundle.to_json().as_bytes())?;
            println!(
                "proof bundle of `{}` ({} segments) -> {}",
                manifest.model,
                parts.len(),
                out.display()
            );
            Ok(true)
        }
        Verdict::Invalid { reason } => {
            println!("invalid: {reason}");
            Ok(false)
        }
    }
}

/// The verifying keys of the `n` segments, in order.
pub fn load_keys(dir: &Path, n: usize) -> Result<Vec<VerifierKey>> {
    (0..n).map(|i| load_vk(&seg(dir, i))).collect()
}

/// The model id of a segmented model (see `zkinfer_verifier::bundle_id`).
pub fn model_id(dir: &Path) -> Result<String> {
    let manifest = load_manifest(dir)?;
    Ok(keys_id(&load_keys(dir, manifest.segments.len())?))
}

/// `zkinfer verify` on a segmented model: the bundle against every segment's key.
pub fn verify(dir: &Path, proof_path: &Path, expected_id: Option<&str>) -> Result<bool> {
    let manifest = load_manifest(dir)?;
    let keys = load_keys(dir, manifest.segments.len())?;
    let text = read_text(proof_path)?;
    if !zkinfer_verifier::is_bundle(&text) {
        bail!(
            "{}: {} is a segmented model, whose proofs are bundles (format \"zkinfer-bundle\", \
             written by `zkinfer prove` or `zkinfer bundle`)",
            proof_path.display(),
            dir.display()
        );
    }
    let bundle = BundleFile::parse(&text).with_context(|| proof_path.display().to_string())?;
    let id = keys_id(&keys);
    if let Some(want) = expected_id {
        if want != id {
            println!(
                "invalid: {} is model id {id}, not the required {want} (its segments' keys differ)",
                dir.display()
            );
            return Ok(false);
        }
    }
    let start = Instant::now();
    let verdict = verify_bundle(&keys, &bundle);
    let elapsed = start.elapsed();
    match verdict {
        Verdict::Valid { public } => {
            println!(
                "valid: `{}` in {} linked segments (model id {id})",
                manifest.model,
                keys.len()
            );
            let last = &keys[keys.len() - 1];
            let parts = load_circuit(&seg(dir, keys.len() - 1))
                .map(|c| c.outputs)
                .unwrap_or_default();
            print_public(&public, &last.info.output_shape, &parts);
            print_srs(last);
            println!("  time      verify {}", secs(elapsed));
            Ok(true)
        }
        Verdict::Invalid { reason } => {
            println!("invalid: {reason}");
            Ok(false)
        }
    }
}

/// This process's peak resident memory, from `/proc/self/status` where there is one.
pub fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?.to_string();
            let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{:.0} MB", kb / 1000.0))
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Refuses the EVM path for a segmented model: its bundles are not verifiable on chain
/// until aggregation folds them into one proof.
pub fn refuse_evm(dir: &Path) -> Result<()> {
    if is_segmented(dir) {
        bail!(
            "{} is a segmented model: a bundle of segment proofs is not yet verifiable on chain \
             (that needs aggregation into one proof); verify it with `zkinfer verify`",
            dir.display()
        );
    }
    Ok(())
}
