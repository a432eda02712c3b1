//! The compiled-circuit file (`DIR/circuit.json`): the integer model, its layout and
//! its fidelity report.

use serde::{Deserialize, Serialize};
use zkinfer_circuits::Plan;
use zkinfer_qir::{Fidelity, QModel};
use zkinfer_verifier::artifact::{check_json_format, StatementInfo};
use zkinfer_verifier::VerifyError;

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

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, VerifyError> {
        let bad = |reason: String| VerifyError::Format {
            what: "compiled circuit".into(),
            reason,
        };
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
        check_json_format(&v, CIRCUIT_FORMAT, "compiled circuit")?;
        let c: CompiledCircuit = serde_json::from_value(v).map_err(|e| bad(e.to_string()))?;
        c.model.validate().map_err(|e| bad(e.to_string()))?;
        c.plan.layout.validate().map_err(bad)?;
        Ok(c)
    }
}
