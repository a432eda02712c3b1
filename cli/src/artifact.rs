//! The compiled-circuit file (`DIR/circuit.json`) and the artifact paths of a model dir.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use zkinfer_circuits::Plan;
use zkinfer_compiler::Fidelity;
use zkinfer_qir::QModel;
use zkinfer_verifier::artifact::{StatementInfo, FORMAT_VERSION};

pub const CIRCUIT_FORMAT: &str = "zkinfer-circuit";

/// What `compile` writes: the integer model, its layout and how faithful it is.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CompiledCircuit {
    pub format: String,
    pub version: u32,
    pub source: String,
    pub model: QModel,
    pub plan: Plan,
    pub fidelity: Fidelity,
}

impl CompiledCircuit {
    pub fn info(&self) -> StatementInfo {
        let input = self.model.value(self.model.input);
        let output = self.model.value(self.model.output);
        StatementInfo {
            model: self.model.name.clone(),
            layout: self.plan.layout.clone(),
            input_shape: input.shape.clone(),
            input_scale: input.scale,
            output_shape: output.shape.clone(),
            output_scale: output.scale,
        }
    }

    pub fn load(dir: &Path) -> Result<Self> {
        let path = Paths::new(dir).circuit;
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {} (run `zkinfer compile` first)", path.display()))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
        if v.get("format").and_then(|f| f.as_str()) != Some(CIRCUIT_FORMAT) {
            bail!("{}: not a zkinfer compiled circuit", path.display());
        }
        let version = v.get("version").and_then(|f| f.as_u64()).unwrap_or(0);
        if version != FORMAT_VERSION as u64 {
            bail!(
                "{}: format version {version}, this zkinfer reads version {FORMAT_VERSION}; recompile the model",
                path.display()
            );
        }
        let c: CompiledCircuit = serde_json::from_value(v)
            .with_context(|| format!("{}: malformed compiled circuit", path.display()))?;
        c.model
            .validate()
            .with_context(|| format!("{}: invalid integer model", path.display()))?;
        Ok(c)
    }
}

/// Files of a model directory.
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

pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}
