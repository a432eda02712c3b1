//! zkinfer's compiler front end: ONNX import into a typed float graph IR, the float
//! interpreter, calibration, quantization into the integer IR (`zkinfer-qir`) and the
//! fidelity report.
//!
//! ```text
//! model.onnx ──import──▶ Graph ──calibrate(samples)──▶ Calibration ──quantize──▶ QModel
//! ```

pub mod graph;
pub mod import;
pub mod input;
pub mod proto;
pub mod quantize;

pub use graph::{Graph, Node, Op, Tensor};
pub use import::certificate::{import_certificate, CertificateGraph};
pub use import::{import_onnx, import_onnx_shaped, supported_ops, Imported};
pub use input::{input_shapes, parse_dataset_json, parse_input_json, Dataset, InputData};
pub use quantize::{
    calibrate, error_growth, fidelity, layer_errors, outlier_bits, quantize, quantize_for_target,
    quantize_input, run_quantized, Calibration, LayerError, QuantConfig, Target, TensorWidths,
    MAX_NARROWING, OUTLIERS,
};
pub use zkinfer_qir::Fidelity;

/// Everything that can go wrong between an ONNX file and an integer model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    #[error("{path}: {reason}")]
    Parse { path: String, reason: String },
    #[error(
        "unsupported ONNX operators: {}. Supported: {}",
        nodes.iter().map(|(op, node)| format!("{op} (node `{node}`)")).collect::<Vec<_>>().join(", "),
        supported_ops().join(", ")
    )]
    Unsupported {
        /// `(op type, node name)` of every unsupported node.
        nodes: Vec<(String, String)>,
    },
    #[error("node `{node}` ({op}): {reason}")]
    InvalidNode {
        node: String,
        op: String,
        reason: String,
    },
    #[error("cannot quantize node `{node}`: {reason}")]
    Quantize { node: String, reason: String },
    #[error("input data: {reason}")]
    InputData { reason: String },
    #[error("configuration: {reason}")]
    Config { reason: String },
    #[error(transparent)]
    Integer(#[from] zkinfer_qir::QirError),
}
