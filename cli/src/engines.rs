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

use crate::{commands, segmented};

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

/// What the GPU build is asked to prove: a whole input, or one segment from a witness.
enum Job<'a> {
    Input { input: &'a Path, jobs: usize },
    Segment { witness: &'a Path, segment: usize },
}

fn delegate(exe: &Path, dir: &Path, job: &Job<'_>, proof: &Path) -> Result<()> {
    let mut cmd = Command::new(exe);
    cmd.arg("prove").arg(dir).arg("--proof").arg(proof);
    match job {
        Job::Input { input, .. } => cmd.arg("--input").arg(input),
        Job::Segment { witness, segment } => cmd
            .arg("--witness")
            .arg(witness)
            .arg("--segment")
            .arg(segment.to_string()),
    };
    let status = cmd
        .status()
        .with_context(|| format!("running {}", exe.display()))?;
    if !status.success() {
        bail!("the GPU prover {} failed ({status})", exe.display());
    }
    Ok(())
}

fn on_cpu(dir: &Path, job: &Job<'_>, proof: &Path) -> Result<()> {
    match job {
        Job::Input { input, jobs } if segmented::is_segmented(dir) => {
            segmented::prove(&CpuEngine, dir, input, proof, *jobs)
        }
        Job::Input { input, .. } => commands::prove(&CpuEngine, dir, input, proof),
        Job::Segment { witness, segment } => {
            segmented::prove_segment(&CpuEngine, dir, witness, *segment, proof)
        }
    }
}

pub fn prove(
    choice: EngineChoice,
    dir: &Path,
    input: &Path,
    proof: &Path,
    jobs: usize,
) -> Result<()> {
    run(choice, dir, &Job::Input { input, jobs }, proof)
}

pub fn prove_segment(
    choice: EngineChoice,
    dir: &Path,
    witness: &Path,
    segment: usize,
    proof: &Path,
) -> Result<()> {
    run(choice, dir, &Job::Segment { witness, segment }, proof)
}

/// Where a proof of DIR will be made, and why.
#[derive(Debug)]
pub enum Chosen {
    /// The GPU build `exe`, which answered with `device`.
    Gpu { exe: PathBuf, device: String },
    /// The CPU; `notice` says why not the GPU when `--engine auto` fell back.
    Cpu { notice: Option<String> },
}

/// Resolves `--engine` for DIR: finds and probes the GPU build where the choice needs it.
pub fn choose(choice: EngineChoice, dir: &Path) -> Result<Chosen> {
    let cpu = |why: String| {
        Ok(Chosen::Cpu {
            notice: Some(format!("note: proving on the CPU: {why}")),
        })
    };
    match choice {
        EngineChoice::Cpu => Ok(Chosen::Cpu { notice: None }),
        EngineChoice::Cuda => {
            let Some(exe) = find_gpu_build() else {
                bail!("--engine cuda: the GPU build `{GPU_EXE}` is not installed (build it with scripts/build-gpu.sh, put it next to zkinfer or on PATH, or set ZKINFER_CUDA)");
            };
            let device = probe(&exe).map_err(|why| anyhow::anyhow!("--engine cuda: {why}"))?;
            Ok(Chosen::Gpu { exe, device })
        }
        EngineChoice::Auto if two_phase(dir) => cpu(
            "this circuit checks linear layers by Freivalds' argument (two phases), which \
             the CUDA engine does not prove (compile with --linear dot for the GPU)"
                .to_string(),
        ),
        EngineChoice::Auto => match find_gpu_build().map(|exe| probe(&exe).map(|d| (exe, d))) {
            Some(Ok((exe, device))) => Ok(Chosen::Gpu { exe, device }),
            Some(Err(why)) => cpu(why),
            None => cpu(format!("no GPU build `{GPU_EXE}` installed")),
        },
    }
}

fn run(choice: EngineChoice, dir: &Path, job: &Job<'_>, proof: &Path) -> Result<()> {
    match choose(choice, dir)? {
        Chosen::Gpu { exe, device } => {
            eprintln!("proving on {device}");
            delegate(&exe, dir, job, proof)
        }
        Chosen::Cpu { notice } => {
            if let Some(notice) = notice {
                eprintln!("{notice}");
            }
            on_cpu(dir, job, proof)
        }
    }
}

/// Whether DIR's circuit, or any of its segments', has a second phase (Freivalds'
/// argument). An unreadable file says no here: proving reports it properly.
fn two_phase(dir: &Path) -> bool {
    #[derive(serde::Deserialize)]
    struct Compiled {
        plan: Plan,
    }
    #[derive(serde::Deserialize)]
    struct Plan {
        layout: Layout,
    }
    #[derive(serde::Deserialize)]
    struct Layout {
        #[serde(default)]
        horner_lanes: usize,
    }
    let uses = |path: PathBuf| {
        std::fs::File::open(path)
            .ok()
            .and_then(|f| serde_json::from_reader::<_, Compiled>(std::io::BufReader::new(f)).ok())
            .is_some_and(|c| c.plan.layout.horner_lanes > 0)
    };
    if uses(dir.join("circuit.json")) {
        return true;
    }
    (0..)
        .map(|i| dir.join(format!("segment-{i}")))
        .take_while(|d| d.is_dir())
        .any(|d| uses(d.join("circuit.json")))
}
