//! The subcommands. Each reads its files, calls the libraries and reports.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use zkinfer_circuits::{Objective, Plan, Visibility};
use zkinfer_compiler::quantize::argmax;
use zkinfer_pipeline::{Compilation, PipelineError, Widened};
use zkinfer_prover::{
    dev_srs, read_ceremony_srs, read_srs, srs_points, write_srs, CompiledCircuit, Engine, ProverKey,
};
use zkinfer_qir::{dequantize, Part};
use zkinfer_verifier::{Public, Verdict, VerifierKey};

pub use zkinfer_pipeline::certificate::Batch;
pub use zkinfer_pipeline::{Bits, CompileOptions};

use crate::files::{load_circuit, load_proof, load_vk, read, read_text, write, Paths};
use crate::progress::{secs, step};
use crate::segmented;

/// A pipeline error, with `file` named when the data in it is what is wrong.
fn in_file(file: &Path) -> impl Fn(PipelineError) -> anyhow::Error + '_ {
    move |e| match e {
        PipelineError::InputData(e) => anyhow::Error::new(e).context(file.display().to_string()),
        e => e.into(),
    }
}

pub fn compile(
    model: &Path,
    calibration: &Path,
    out: &Path,
    options: &CompileOptions,
) -> Result<Compilation> {
    let text = read_text(calibration)?;
    let compilation =
        zkinfer_pipeline::compile(model, &text, options).map_err(in_file(calibration))?;
    for note in &compilation.notes {
        eprintln!("note: {note}");
    }
    for (b, r) in &compilation.trials {
        let mark = if *b == compilation.model.act_bits {
            " <- chosen"
        } else {
            ""
        };
        match r {
            Ok(f) => eprintln!("  bits {b:2}  {f}{mark}"),
            Err(e) => eprintln!("  bits {b:2}  does not quantize: {e}"),
        }
    }
    if let Some(Batch::Fit { samples }) = options.certificate {
        for t in &compilation.batches {
            let mark = if t.taken { " <- chosen" } else { "" };
            match &t.plan {
                Ok(c) => eprintln!(
                    "  batch {:4} x {:2}  k {}, predicted prove {:.2} s a batch (peak {:.0} MB), \
                     {:.1} s in all{mark}",
                    t.batch,
                    samples / t.batch,
                    c.k,
                    c.prove_s,
                    c.peak_mb,
                    t.total_s(samples).unwrap_or(f64::NAN)
                ),
                Err(e) => eprintln!("  batch {:4}  does not compile: {e}", t.batch),
            }
        }
    }
    let tensors = compilation
        .widths
        .iter()
        .filter(|w| w.widened != Widened::Model)
        .count();
    for w in &compilation.widths {
        let mark = if w.taken { " <- chosen" } else { "" };
        let tensor = match &w.widened {
            Widened::Model => None,
            Widened::Functions(t) => Some((t, "function inputs", w.table_bits)),
            Widened::Weights(t) => Some((t, "weights", w.weight_bits)),
            Widened::Range(t) => Some((t, "range narrowed by bits (saturating)", w.narrowed)),
        };
        if let Some((t, what, bits)) = tensor {
            // Of the per-tensor widths (often a hundred), those taken.
            if let (true, Ok(c), Some(f)) = (w.taken, &w.plan, &w.fidelity) {
                eprintln!(
                    "  `{t}`: {what} {bits:2}  k {}, predicted prove {:.2} s, max |error| {:.5}{mark}",
                    c.k, c.prove_s, f.max_abs_error
                );
            }
            continue;
        }
        let bits = if w.table_bits < w.act_bits {
            format!(
                "bits {:2}, weights {:2}, function inputs {:2}",
                w.act_bits, w.weight_bits, w.table_bits
            )
        } else {
            format!("bits {:2}, weights {:2}", w.act_bits, w.weight_bits)
        };
        match &w.plan {
            Ok(zkinfer_pipeline::Cost { k, prove_s: s, .. }) => match &w.fidelity {
                Some(f) => eprintln!(
                    "  {bits}  k {k}, predicted prove {s:.2} s, max |error| {:.5}{mark}",
                    f.max_abs_error
                ),
                None => eprintln!("  {bits}  k {k}, predicted prove {s:.2} s: costs more{mark}"),
            },
            Err(e) => eprintln!("  {bits}  does not compile: {e}"),
        }
    }
    if tensors > 0 {
        let taken = compilation
            .widths
            .iter()
            .filter(|w| w.taken && w.widened != Widened::Model)
            .count();
        eprintln!("  per tensor, where the error grows: {tensors} widths tried, {taken} taken");
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    // What an earlier compile left would not fit this circuit: remove it.
    segmented::clear(out)?;
    println!(
        "compiled {} ({} nodes, {} MACs) -> {}",
        model.display(),
        compilation.nodes,
        compilation.model.macs(),
        out.display()
    );
    if compilation.is_segmented() {
        segmented::write_compiled(model, out, &compilation, options)?;
    } else {
        let compiled = &compilation.circuits[0];
        write(&Paths::new(out).circuit, &compiled.to_json())?;
        print_plan(
            compiled,
            compiled.plan.layout.visibility,
            compilation.runner_up.as_ref(),
        );
    }
    if options.objective == Objective::Aggregate {
        let (commitments, secs) = compilation.circuits.iter().fold((0.0, 0.0), |(n, s), c| {
            let t = &c.plan.terms;
            (n + 100.0 * t.verified, s + t.aggregation_s())
        });
        println!(
            "  folding   planned for `zkinfer aggregate` (--aggregate): {commitments:.0} \
             commitments to verify, predicted {secs:.0} s of aggregation"
        );
    }
    println!("  fidelity  {}", compilation.circuits[0].fidelity);
    print_layers(&compilation.layers);
    Ok(compilation)
}

/// The error layer by layer, where it grows: every tensor whose error relative to its
/// range exceeds all earlier ones', and the output.
fn print_layers(layers: &[zkinfer_compiler::LayerError]) {
    let Some(last) = layers.last() else {
        return;
    };
    let mut worst = -1.0;
    let mut rows = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        if l.relative() > worst || i + 1 == layers.len() {
            worst = worst.max(l.relative());
            rows.push(l);
        }
    }
    println!(
        "  error by layer, where it grows ({} of {} tensors; max |float − integer| over the \
         samples, against the tensor's range):",
        rows.len(),
        layers.len()
    );
    let width = rows.iter().map(|l| l.name.len()).max().unwrap_or(0).min(40);
    for l in rows {
        let mark = if std::ptr::eq(l, last) {
            "  (the output)"
        } else {
            ""
        };
        let name: String = l.name.chars().take(40).collect();
        println!(
            "    {name:<width$}  {:>10.5} / ±{:<9.4} {:>7.3}%{mark}",
            l.max_abs_error,
            l.max_abs,
            100.0 * l.relative()
        );
    }
}

fn print_plan(compiled: &CompiledCircuit, vis: Visibility, runner_up: Option<&Plan>) {
    let p = &compiled.plan;
    let l = &p.layout;
    println!(
        "  rows      {} used of {} usable (linear {}, element-wise {}, lookup table {})",
        p.rows(),
        p.usable_rows,
        p.linear_rows,
        p.elementwise_rows,
        p.table_rows
    );
    if !l.freivalds.is_empty() {
        println!(
            "  freivalds {} of {} linear layers by a random combination of their rows \
             (--linear): {} rows x {} Horner lanes",
            l.freivalds.len(),
            compiled
                .model
                .ops
                .iter()
                .filter(|op| matches!(op, zkinfer_qir::QOp::Linear(_)))
                .count(),
            p.horner_rows,
            l.horner_lanes
        );
        if l.product_lanes > 0 {
            let products = zkinfer_circuits::freivalds::products(&compiled.model);
            let n = l
                .freivalds
                .iter()
                .filter(|&&i| matches!(products.get(i), Some(Some(_))))
                .count();
            println!(
                "            {n} of them products of two activations, checked as matrix \
                 products (no multiplies): {} inner-product rows",
                p.product_rows
            );
        }
    }
    if p.hash_rows + p.pack_rows > 0 {
        println!(
            "            poseidon {} per lane x {} lane(s), weight packing {} per lane x {}",
            p.hash_rows, l.hash_lanes, p.pack_rows, l.pack_lanes
        );
    }
    println!("  public    {vis}: {} public values", p.instance_rows);
    println!(
        "  k         {} ({}-bit activations)",
        l.k, compiled.model.act_bits
    );
    println!(
        "  columns   {} advice, {} fixed, {} lookups (linear {}x{}, {} element-wise lane{}, {})",
        p.advice_columns,
        p.fixed_columns,
        p.lookups,
        l.x_cols,
        l.acc_cols,
        l.lanes,
        if l.lanes == 1 { "" } else { "s" },
        range_checks(l)
    );
    println!(
        "  predicted prove {:.2} s, peak {:.0} MB (setup {:.0}, prove {:.0}; cost model, \
         2-core reference machine)",
        p.predicted.prove_s, p.predicted.peak_mb, p.predicted.setup_mb, p.predicted.prove_mb
    );
    if let Some(r) = runner_up {
        println!(
            "  runner-up k {}, linear {}x{}, {} lanes, {}: {} advice, {} fixed, {} lookups; \
             predicted prove {:.2} s, peak {:.0} MB",
            r.layout.k,
            r.layout.x_cols,
            r.layout.acc_cols,
            r.layout.lanes,
            range_checks(&r.layout),
            r.advice_columns,
            r.fixed_columns,
            r.lookups,
            r.predicted.prove_s,
            r.predicted.peak_mb
        );
    }
}

/// The SRS `setup` makes keys with, at 2^k powers: read from a ceremony's file, or the
/// insecure development SRS; with the time it took.
pub fn load_srs(
    srs: Option<&Path>,
    dev: bool,
    k: u32,
) -> Result<(zkinfer_prover::Params, std::time::Duration)> {
    Ok(match (srs, dev) {
        (Some(file), _) => {
            let mut f = std::fs::File::open(file)
                .with_context(|| format!("reading SRS {}", file.display()))?;
            let (p, t) = step(&format!("reading SRS (2^{k} powers)"), || {
                read_ceremony_srs(&mut f, k)
            });
            (p.with_context(|| file.display().to_string())?, t)
        }
        (None, true) => {
            eprintln!(
                "warning: --dev-srs uses a publicly known secret: anyone can forge proofs for these keys. \
                 Use --srs with a trusted-setup file for anything real."
            );
            step(&format!("generating development SRS (2^{k})"), || {
                dev_srs(k)
            })
        }
        (None, false) => bail!(
            "choose an SRS: --srs FILE (a .ptau file of a powers-of-tau ceremony, or a halo2 KZG \
             params file) or --dev-srs (insecure, for development)"
        ),
    })
}

pub fn setup(dir: &Path, srs: Option<&Path>, dev: bool) -> Result<()> {
    if segmented::is_segmented(dir) {
        return segmented::setup(dir, srs, dev);
    }
    let compiled = load_circuit(dir)?;
    let k = compiled.plan.layout.k;
    let paths = Paths::new(dir);
    let (params, t_srs) = load_srs(srs, dev, k)?;
    let (keys, t_keygen) = step(&format!("generating keys (2^{k} rows)"), || {
        zkinfer_pipeline::setup(&compiled, &params)
    });
    let (pk, vk) = keys?;
    let (pk_bytes, vk_bytes) = (pk.to_bytes(), vk.to_bytes());
    write(&paths.pk, &pk_bytes)?;
    write(&paths.vk, &vk_bytes)?;
    write(&paths.srs, &write_srs(&params))?;
    println!("keys for `{}` -> {}", compiled.model.name, dir.display());
    println!("  model id  {}", vk.model_id());
    print_srs(&vk);
    println!("  pk        {} bytes", pk_bytes.len());
    println!("  vk        {} bytes", vk_bytes.len());
    let cs = pk.pk.get_vk().cs();
    println!(
        "  columns   {} advice, {} fixed after selector compression, {} in the permutation",
        cs.num_advice_columns(),
        cs.num_fixed_columns(),
        cs.permutation().get_columns().len()
    );
    println!("  time      srs {}, keygen {}", secs(t_srs), secs(t_keygen));
    Ok(())
}

/// Prints the output; several graph outputs (`parts`, packed in order) one by one.
pub fn print_output(values: &[f64], shape: &[usize], parts: &[Part]) {
    let show = |values: &[f64], shape: &[usize], label: &str| {
        let shown: Vec<String> = values.iter().take(32).map(|v| format!("{v:.4}")).collect();
        let more = if values.len() > 32 {
            format!(", … ({} values)", values.len())
        } else {
            String::new()
        };
        println!("  {label:<9} {:?} [{}{}]", shape, shown.join(", "), more);
        if shape.iter().filter(|&&d| d > 1).count() == 1 {
            println!("  {:<9} {}", "argmax", argmax(values));
        }
    };
    let packed: usize = parts.iter().map(Part::len).sum();
    if parts.len() < 2 || packed != values.len() {
        return show(values, shape, "output");
    }
    let mut at = 0;
    for p in parts {
        show(
            &values[at..at + p.len()],
            &p.shape,
            &format!("`{}`", p.name),
        );
        at += p.len();
    }
}

/// Proves on `engine`; prints the output and per-stage timings.
pub fn prove(engine: &dyn Engine, dir: &Path, input: &Path, proof_path: &Path) -> Result<()> {
    if segmented::is_segmented(dir) {
        return segmented::prove(engine, dir, input, proof_path, 1);
    }
    let total = Instant::now();
    let paths = Paths::new(dir);
    let t = Instant::now();
    let compiled = load_circuit(dir)?;
    let pk_bytes = read(&paths.pk, "proving key")?;
    let srs_bytes = read(&paths.srs, "SRS")?;
    let (loaded, t_load) = step("loading keys", || -> Result<_> {
        let pk =
            ProverKey::from_bytes(&pk_bytes).with_context(|| paths.pk.display().to_string())?;
        let params = read_srs(&srs_bytes).with_context(|| paths.srs.display().to_string())?;
        Ok((pk, params))
    });
    let (pk, params) = loaded?;
    let t_load = t_load + t.elapsed().saturating_sub(t_load);
    if pk.info != compiled.info() {
        bail!(
            "{}: the keys were made for another compiled circuit; run `zkinfer setup` again",
            paths.pk.display()
        );
    }
    if srs_points(&params).is_insecure_dev_srs() {
        eprintln!("warning: these keys use the insecure development SRS");
    }
    let sample =
        zkinfer_pipeline::input_sample(&compiled, &read_text(input)?).map_err(in_file(input))?;
    let parts = compiled.outputs.clone();
    let model = Arc::new(compiled.model);
    let t = Instant::now();
    let trace = zkinfer_pipeline::trace(&model, &sample)
        .with_context(|| format!("computing the witness for {}", input.display()))?;
    let t_witness = t.elapsed();
    let trace_output = trace.get(model.output).to_vec();
    let (witness, t_columns) = step("laying out the witness", || {
        zkinfer_prover::witness(model.clone(), &pk, Arc::new(trace), Default::default())
    });
    let witness = witness?;
    let (proof, t_prove) = step(
        &format!("proving (2^{} rows, {})", pk.info.layout.k, engine.name()),
        || zkinfer_prover::prove_witness(engine, &pk, &params, witness),
    );
    let proof = proof?;
    write(proof_path, proof.to_json().as_bytes())?;
    let proof_bytes = proof.proof.len() / 2 - 1;
    println!("proof of `{}` -> {}", model.name, proof_path.display());
    // The prover knows the output even when the statement only hashes it.
    let output = trace_output
        .iter()
        .map(|&v| dequantize(v, pk.info.output_scale))
        .collect::<Vec<_>>();
    print_output(&output, &pk.info.output_shape, &parts);
    if proof.output.is_none() {
        println!("            (the proof states only its hash)");
    }
    println!(
        "  proof     {proof_bytes} bytes, {} public values",
        proof.instances.len()
    );
    println!(
        "  time      load {}, witness {} (trace {}, columns {}), prove {} ({}), total {}",
        secs(t_load),
        secs(t_witness + t_columns),
        secs(t_witness),
        secs(t_columns),
        secs(t_prove),
        engine.name(),
        secs(total.elapsed())
    );
    Ok(())
}

/// Prints the model commitment of `dir` (see `zkinfer model-id --help`).
pub fn model_id(dir: &Path) -> Result<()> {
    if segmented::is_segmented(dir) {
        println!("{}", segmented::model_id(dir)?);
        return Ok(());
    }
    let paths = Paths::new(dir);
    if paths.vk.exists() {
        let key = load_vk(dir)?;
        println!("{}", key.model_id());
        return Ok(());
    }
    let compiled = load_circuit(dir)?;
    let info = compiled.info();
    match info.params_hash {
        Some(h) => {
            eprintln!(
                "note: {} has no verifying key yet; this is the weights hash alone \
                 (run `zkinfer setup` for the full model id, <key digest>:<weights hash>)",
                dir.display()
            );
            println!("{h}");
            Ok(())
        }
        None => bail!(
            "{}: the weights are fixed, so the model id is the verifying key's digest; \
             run `zkinfer setup` first",
            paths.vk.display()
        ),
    }
}

/// Prints the SRS fingerprint of `key`, and a warning for the development SRS.
pub fn print_srs(key: &VerifierKey) {
    println!("  srs       fingerprint {}", key.srs.fingerprint());
    if key.srs.is_insecure_dev_srs() {
        eprintln!("{DEV_SRS_WARNING}");
    }
}

/// What `verify` says of a key made with `setup --dev-srs`.
pub const DEV_SRS_WARNING: &str = "warning: this key was made with the insecure development \
     SRS (setup --dev-srs): its secret is public, so anyone can forge proofs that verify \
     under it; this verdict proves nothing";

/// Prints what a valid proof makes public.
pub fn print_public(public: &Public, shape: &[usize], parts: &[Part]) {
    if let Some(h) = &public.params_hash {
        println!("  weights   hash {h}");
    }
    match (&public.input, &public.input_hash) {
        (Some(v), _) => println!("  input     public ({} values)", v.len()),
        (None, Some(h)) => println!("  input     hash {h}"),
        (None, None) => println!("  input     private"),
    }
    match (&public.output, &public.output_hash) {
        (Some(v), _) => print_output(v, shape, parts),
        (None, Some(h)) => println!("  output    hash {h}"),
        (None, None) => {}
    }
}

/// `Ok(true)` valid, `Ok(false)` invalid, `Err` for unreadable input.
pub fn verify(dir: &Path, proof_path: &Path, expected_id: Option<&str>) -> Result<bool> {
    if segmented::is_segmented(dir) {
        return segmented::verify(dir, proof_path, expected_id);
    }
    let key = load_vk(dir)?;
    let proof = load_proof(proof_path)?;
    if !pinned(&key, dir, expected_id, "invalid") {
        return Ok(false);
    }
    let start = Instant::now();
    let verdict = zkinfer_verifier::verify(&key, &proof);
    let elapsed = start.elapsed();
    match verdict {
        Verdict::Valid { public } => {
            println!("valid: `{}` (model id {})", key.info.model, key.model_id());
            let parts = load_circuit(dir).map(|c| c.outputs).unwrap_or_default();
            print_public(&public, &key.info.output_shape, &parts);
            print_srs(&key);
            println!("  time      verify {}", secs(elapsed));
            Ok(true)
        }
        Verdict::Invalid { reason } => {
            println!("invalid: {reason}");
            Ok(false)
        }
    }
}

/// Whether `key` is the model `expected_id` names (always, when none is given); prints
/// `verdict: why` when it is not.
pub fn pinned(key: &VerifierKey, dir: &Path, expected_id: Option<&str>, verdict: &str) -> bool {
    match expected_id {
        Some(id) if id != key.model_id() => {
            println!(
                "{verdict}: {} is model id {}, not the required {id} (its header, k, KZG points, \
                 verifying key or weights hash differ)",
                dir.display(),
                key.model_id()
            );
            false
        }
        _ => true,
    }
}

/// How a layout range-checks values (`compile --range`), in words.
fn range_checks(l: &zkinfer_circuits::Layout) -> String {
    match l.limb_bits {
        0 => "range checks by table".into(),
        b => format!("range checks in {b}-bit limbs"),
    }
}
