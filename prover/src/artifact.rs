//! The compiled-circuit file (`DIR/circuit.json`): the integer model, its layout and
//! its fidelity report.

use serde::{Deserialize, Serialize};
use zkinfer_circuits::params::Params;
use zkinfer_circuits::{Layout, ParamsMode, Plan};
use zkinfer_qir::{Fidelity, Part, QModel};
use zkinfer_verifier::artifact::{check_json_format, fr_to_hex, Certificate, StatementInfo};
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
    /// The ONNX graph's inputs, in the order the model's input packs them (one, or
    /// several): how an input file is read. The same in every segment's file.
    #[serde(default)]
    pub inputs: Vec<Part>,
    /// The ONNX graph's outputs, in the order the model's output packs them: how the
    /// output is shown (a label, then probabilities). Display only: the statement binds
    /// the packed output.
    #[serde(default)]
    pub outputs: Vec<Part>,
    /// A capability certificate's circuit: its batch and classes (bound in the header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Certificate>,
}

/// What a verifier must know about `model` laid out as `layout` (with hashed weights,
/// their hash, computed natively).
pub fn statement_info(model: &QModel, layout: &Layout) -> StatementInfo {
    let input = model.value(model.input);
    let output = model.value(model.output);
    StatementInfo {
        model: model.name.clone(),
        layout: layout.clone(),
        input_shape: input.shape.clone(),
        input_scale: input.scale,
        input_bits: model.act_bits,
        output_shape: output.shape.clone(),
        output_scale: output.scale,
        params_hash: (layout.visibility.params == ParamsMode::Hashed)
            .then(|| fr_to_hex(&Params::of(model).hash(layout.weight_bits))),
        certificate: None,
    }
}

impl CompiledCircuit {
    /// The shapes of the inputs an input file gives: the graph's, or (a file without
    /// them) the model input's.
    pub fn input_shapes(&self) -> Vec<Vec<usize>> {
        if self.inputs.is_empty() {
            vec![self.model.value(self.model.input).shape.clone()]
        } else {
            self.inputs.iter().map(|p| p.shape.clone()).collect()
        }
    }

    pub fn info(&self) -> StatementInfo {
        StatementInfo {
            certificate: self.certificate.clone(),
            ..statement_info(&self.model, &self.plan.layout)
        }
    }

    /// The circuit with its hashed parameters replaced, to publish it: every weight the
    /// same value of the weights' width, every bias and constant 0. With hashed weights
    /// the verifying key does not depend on their values, only on their width, so keys
    /// made from the redacted circuit have the model id's digest of the original's (what
    /// an auditor reproduces without the weights). `None` for fixed weights, which the
    /// key commits to.
    pub fn redacted(&self) -> Option<CompiledCircuit> {
        use zkinfer_qir::{AddOperand, QOp};
        if self.plan.layout.visibility.params != ParamsMode::Hashed {
            return None;
        }
        let bits = zkinfer_circuits::params::weight_bits(&self.model);
        let placeholder = -(1i64 << (bits.clamp(2, 32) - 1));
        let mut c = self.clone();
        for op in &mut c.model.ops {
            match op {
                QOp::Linear(l) => {
                    l.weight.iter_mut().for_each(|w| *w = placeholder);
                    l.bias.iter_mut().for_each(|b| *b = 0);
                }
                QOp::Add(a) => {
                    if let AddOperand::Constant(k) = &mut a.b {
                        k.iter_mut().for_each(|v| *v = 0);
                        a.a_mul.iter_mut().for_each(|m| *m = 0);
                    }
                }
                _ => {}
            }
        }
        Some(c)
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
        c.plan.layout.check(&c.model).map_err(bad)?;
        Ok(c)
    }
}
