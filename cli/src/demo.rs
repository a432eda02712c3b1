//! `zkinfer demo`: the whole pipeline on an embedded model (a 16-8-4 MLP with seeded
//! random weights), including a tampered proof that must be rejected.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::commands;
use crate::engines::{self, EngineChoice};

const MODEL: &[u8] = include_bytes!("../../examples/models/mlp_tiny.onnx");
const INPUT: &[u8] = include_bytes!("../../examples/models/mlp_tiny.input.json");

pub fn run(dir: Option<PathBuf>) -> Result<ExitCode> {
    let tmp;
    let dir = match dir {
        Some(d) => d,
        None => {
            tmp = tempdir()?;
            tmp.clone()
        }
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let model = dir.join("mlp_tiny.onnx");
    let input = dir.join("mlp_tiny.input.json");
    std::fs::write(&model, MODEL).with_context(|| format!("writing {}", model.display()))?;
    std::fs::write(&input, INPUT).with_context(|| format!("writing {}", input.display()))?;
    let out = dir.join("mlp_tiny");
    let proof = dir.join("proof.json");

    println!("== 1/5 compile: ONNX -> quantized circuit");
    commands::compile(&model, &input, &out, &Default::default())?;
    println!("\n== 2/5 setup: keys (development SRS)");
    commands::setup(&out, None, true)?;
    println!("\n== 3/5 prove");
    engines::prove(EngineChoice::Auto, &out, &input, &proof, 1)?;
    println!("\n== 4/5 verify");
    if !commands::verify(&out, &proof, None)? {
        bail!("the demo proof did not verify");
    }
    println!("\n== 5/5 verify a tampered proof (one output changed): must be rejected");
    let text =
        std::fs::read_to_string(&proof).with_context(|| format!("reading {}", proof.display()))?;
    let mut p = zkinfer_verifier::ProofFile::parse(&text)?;
    let last = p.instances.len() - 1;
    let x = zkinfer_verifier::fr_from_hex(&p.instances[last]).context("demo proof instance")?;
    p.instances[last] = zkinfer_verifier::fr_to_hex(&(x + zkinfer_circuits::fe(1)));
    let stated = p
        .output
        .as_mut()
        .context("the demo proof states its output")?;
    let n = stated.values.len();
    stated.values[n - 1] += 2f64.powi(-stated.scale);
    let tampered = dir.join("proof.tampered.json");
    std::fs::write(&tampered, p.to_json())
        .with_context(|| format!("writing {}", tampered.display()))?;
    if commands::verify(&out, &tampered, None)? {
        bail!("a tampered proof verified: this is a soundness bug");
    }
    println!("\ndemo complete: artifacts in {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

fn tempdir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("zkinfer-demo-{}", std::process::id()));
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    Ok(d)
}
