//! The files of a model directory, and reading/writing them with the path in errors.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use zkinfer_prover::CompiledCircuit;
use zkinfer_verifier::{ProofFile, VerifierKey};

pub struct Paths {
    pub circuit: PathBuf,
    pub pk: PathBuf,
    pub vk: PathBuf,
    pub srs: PathBuf,
}

impl Paths {
    pub fn new(dir: &Path) -> Self {
        Paths {
            circuit: dir.join("circuit.json"),
            pk: dir.join("pk"),
            vk: dir.join("vk"),
            srs: dir.join("srs"),
        }
    }
}

pub fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {what} {}", path.display()))
}

/// Reads a text file (an input or calibration JSON), with the path in the error.
pub fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

pub fn load_circuit(dir: &Path) -> Result<CompiledCircuit> {
    let path = Paths::new(dir).circuit;
    let bytes = std::fs::read(&path)
        .with_context(|| format!("reading {} (run `zkinfer compile` first)", path.display()))?;
    CompiledCircuit::from_json(&bytes).with_context(|| path.display().to_string())
}

pub fn load_vk(dir: &Path) -> Result<VerifierKey> {
    let path = Paths::new(dir).vk;
    let bytes = read(&path, "verifying key")?;
    VerifierKey::from_bytes(&bytes).with_context(|| path.display().to_string())
}

pub fn load_proof(path: &Path) -> Result<ProofFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    ProofFile::parse(&text).with_context(|| path.display().to_string())
}
