//! Capability certificates: the circuit that counts a batch's correct predictions, and a
//! labelled dataset cut into its batches (see `zkinfer_verifier::certificate`).

use std::path::Path;

use zkinfer_circuits::{InputMode, OutputMode, ParamsMode, Visibility};
use zkinfer_compiler::{import_certificate, parse_dataset_json, parse_input_json, CompileError};
use zkinfer_prover::CompiledCircuit;
use zkinfer_verifier::Certificate;

use crate::{compile_imported, Compilation, CompileOptions, PipelineError};

/// What a certificate's statement makes public: the weights hash (the hidden model's
/// id), the batch's hash (its part of the dataset id) and the count.
pub const VISIBILITY: Visibility = Visibility {
    params: ParamsMode::Hashed,
    input: InputMode::Hashed,
    output: OutputMode::Public,
};

fn config(reason: String) -> PipelineError {
    PipelineError::Compile(CompileError::Config { reason })
}

/// Compiles the certificate circuit of `onnx` for batches of `batch` samples, calibrated
/// on the samples of `calibration` (see `CertificateGraph::calibration`).
pub fn compile_certificate(
    onnx: &Path,
    calibration: &str,
    batch: usize,
    options: &CompileOptions,
) -> Result<Compilation, PipelineError> {
    let cert = import_certificate(onnx, batch)?;
    let model = &cert.model.graph;
    let parts: Vec<Vec<usize>> = model.inputs.iter().map(|p| p.shape.clone()).collect();
    let samples = parse_input_json(calibration, &parts)
        .map_err(PipelineError::InputData)?
        .samples;
    let packed = cert.calibration(&samples)?;
    let options = CompileOptions {
        visibility: VISIBILITY,
        min_segments: 1,
        certificate: None,
        ..*options
    };
    let mut c = compile_imported(onnx, cert.imported, &packed, &options)?;
    if c.is_segmented() {
        return Err(config(format!(
            "the certificate circuit for batches of {batch} does not fit the memory budget as \
             one circuit; use a smaller --certify batch"
        )));
    }
    let output = c.model.value(c.model.output);
    // The count must be exact: a whole number at a scale of 2^0 or finer.
    if output.scale < 0 {
        return Err(config(format!(
            "the count is at a scale of 2^{}; use more --bits",
            output.scale
        )));
    }
    // Nothing after the model may have hashed parameters, which the prover chooses: the
    // argmax, the comparison and the count are the circuit's, bound by its key.
    if let Some(op) = tail_with_parameters(&c.model) {
        return Err(config(format!(
            "the certificate's `{op}` has parameters that would be hashed with the weights"
        )));
    }
    let spec = Certificate {
        batch,
        classes: cert.classes,
    };
    for circuit in &mut c.circuits {
        circuit.certificate = Some(spec.clone());
    }
    c.notes.push(format!(
        "certificate circuit: batches of {batch} samples, then their {batch} labels; its one \
         output counts the samples whose argmax over the {} scores of `{}` equals the label",
        cert.classes, cert.scores
    ));
    Ok(c)
}

/// The labelled samples of `dataset` (EZKL's input JSON plus `labels`) for a certificate
/// circuit, packed as its input, one vector per batch, in order.
pub fn dataset_batches(
    circuit: &CompiledCircuit,
    dataset: &str,
) -> Result<Vec<Vec<f32>>, PipelineError> {
    let spec = circuit
        .certificate
        .as_ref()
        .ok_or_else(|| config("this compiled circuit is not a certificate's".into()))?;
    let sample = per_sample(circuit.model.value(circuit.model.input).len(), spec.batch)
        .ok_or_else(|| config("the certificate's input does not hold its batch".into()))?;
    let data = parse_dataset_json(dataset, &[vec![sample]]).map_err(PipelineError::InputData)?;
    if let Some(i) = data
        .labels
        .iter()
        .position(|&l| !(0..spec.classes as i64).contains(&l))
    {
        return Err(PipelineError::InputData(CompileError::InputData {
            reason: format!(
                "`labels[{i}]` is {}, not a class of this model (0 to {})",
                data.labels[i],
                spec.classes - 1
            ),
        }));
    }
    let n = data.samples.len();
    if !n.is_multiple_of(spec.batch) {
        return Err(PipelineError::InputData(CompileError::InputData {
            reason: format!(
                "{n} samples is not a multiple of the certificate's batch of {}; compile with a \
                 --certify batch that divides the dataset",
                spec.batch
            ),
        }));
    }
    Ok(data
        .samples
        .chunks(spec.batch)
        .zip(data.labels.chunks(spec.batch))
        .map(|(s, l)| {
            let mut v: Vec<f32> = s.concat();
            v.extend(l.iter().map(|&x| x as f32));
            v
        })
        .collect())
}

/// Values per sample of a certificate input of `len` values in batches of `batch`
/// (each sample's values, then one label each).
pub fn per_sample(len: usize, batch: usize) -> Option<usize> {
    (batch > 0 && len.is_multiple_of(batch) && len / batch > 1).then(|| len / batch - 1)
}

/// The first op of a certificate's tail (its values are named `zkinfer:…`) with
/// parameters: a linear layer or an addition of a constant, which hashed weights would
/// let the prover choose.
pub fn tail_with_parameters(model: &zkinfer_qir::QModel) -> Option<String> {
    use zkinfer_qir::{AddOperand, QOp};
    model.ops.iter().find_map(|op| {
        let name = &model.value(op.output()).name;
        let parametric = match op {
            QOp::Linear(_) => true,
            QOp::Add(a) => matches!(a.b, AddOperand::Constant(_)),
            _ => false,
        };
        (parametric && name.starts_with("zkinfer:") && name != "zkinfer:inputs")
            .then(|| name.clone())
    })
}
