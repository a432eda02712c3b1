//! Choosing where to prove: `--engine auto|cpu|cuda`.
//!
//! The CUDA prover is a separate executable, `zkinfer-cuda` (built by
//! `scripts/build-gpu.sh`), because its GPU memory pool initialises before `main` and
//! aborts the process on a machine without a GPU. It is found through the
//! `ZKINFER_CUDA` environment variable, next to this executable, or on `PATH`, and is
//! asked to `probe` the device before it is trusted with a proof.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use zkinfer_prover::CpuEngine;

use crate::commands;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EngineChoice {
    /// The GPU when the GPU build is installed and a device answers, else the CPU.
    Auto,
    Cpu,
    Cuda,
}

const GPU_EXE: &str = "zkinfer-cuda";

fn find_gpu_build() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ZKINFER_CUDA") {
        return Some(PathBuf::from(p));
    }
    let sibling = std::env::current_exe().ok()?.parent()?.join(GPU_EXE);
    if sibling.is_file() {
        return Some(sibling);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(GPU_EXE))
        .find(|p| p.is_file())
}

/// Asks the GPU build for its device; `Err` says why it cannot prove here.
fn probe(exe: &Path) -> Result<String, String> {
    let out = Command::new(exe)
        .arg("probe")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output");
        Err(format!("no usable GPU ({}: {last})", exe.display()))
    }
}

fn delegate(exe: &Path, dir: &Path, input: &Path, proof: &Path) -> Result<()> {
    let status = Command::new(exe)
        .arg("prove")
        .arg(dir)
        .arg("--input")
        .arg(input)
        .arg("--proof")
        .arg(proof)
        .status()
        .with_context(|| format!("running {}", exe.display()))?;
    if !status.success() {
        bail!("the GPU prover {} failed ({status})", exe.display());
    }
    Ok(())
}

pub fn prove(choice: EngineChoice, dir: &Path, input: &Path, proof: &Path) -> Result<()> {
    match choice {
        EngineChoice::Cpu => commands::prove(&CpuEngine, dir, input, proof),
        EngineChoice::Cuda => {
            let Some(exe) = find_gpu_build() else {
                bail!("--engine cuda: the GPU build `{GPU_EXE}` is not installed (build it with scripts/build-gpu.sh, put it next to zkinfer or on PATH, or set ZKINFER_CUDA)");
            };
            let device = probe(&exe).map_err(|why| anyhow::anyhow!("--engine cuda: {why}"))?;
            eprintln!("proving on {device}");
            delegate(&exe, dir, input, proof)
        }
        EngineChoice::Auto => match find_gpu_build().map(|exe| probe(&exe).map(|d| (exe, d))) {
            Some(Ok((exe, device))) => {
                eprintln!("proving on {device}");
                delegate(&exe, dir, input, proof)
            }
            Some(Err(why)) => {
                eprintln!("note: proving on the CPU: {why}");
                commands::prove(&CpuEngine, dir, input, proof)
            }
            None => {
                eprintln!("note: proving on the CPU (no GPU build `{GPU_EXE}` installed)");
                commands::prove(&CpuEngine, dir, input, proof)
            }
        },
    }
}
