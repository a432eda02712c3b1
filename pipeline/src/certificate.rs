//! Capability certificates: the circuit that counts a batch's correct predictions, and a
//! labelled dataset cut into its batches (see `zkinfer_verifier::certificate`).

use std::path::Path;

use zkinfer_circuits::{InputMode, OutputMode, ParamsMode, Visibility};
use zkinfer_compiler::{import_certificate, parse_dataset_json, parse_input_json, CompileError};
use zkinfer_prover::CompiledCircuit;
use zkinfer_verifier::Certificate;

use crate::{compile_laid_out, Compilation, CompileOptions, Cost, PipelineError};

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

/// How many samples a certificate's circuit proves at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Batch {
    /// This many.
    Fixed(usize),
    /// The divisor of a dataset of `samples` samples (at most [`MAX_BATCHES`] batches)
    /// whose circuit is predicted to prove the whole dataset fastest within the memory
    /// budget: larger batches share the weights' and lookup tables' cost and Freivalds'
    /// argument turns each linear layer into one matrix product, smaller ones fit.
    Fit { samples: usize },
}

/// The most batches [`Batch::Fit`] cuts a dataset into (each is a proof to make and
/// check: a certificate of many verifies slower).
pub const MAX_BATCHES: usize = 16;

/// One batch size [`Batch::Fit`] tried: its circuit's cost, or why it has none.
#[derive(Clone, Debug)]
pub struct BatchTrial {
    pub batch: usize,
    pub plan: Result<Cost, String>,
    pub taken: bool,
}

impl BatchTrial {
    /// The predicted prove seconds of the whole dataset of `samples`.
    pub fn total_s(&self, samples: usize) -> Option<f64> {
        let cost = self.plan.as_ref().ok()?;
        Some(cost.prove_s * (samples / self.batch) as f64)
    }
}

/// [`compile_certificate`] for a [`Batch`]: with `Fit`, every candidate batch size is
/// compiled and the one predicted to prove the dataset fastest is returned, with every
/// trial in [`Compilation::batches`].
pub fn compile_batched(
    onnx: &Path,
    calibration: &str,
    batch: Batch,
    options: &CompileOptions,
) -> Result<Compilation, PipelineError> {
    let samples = match batch {
        Batch::Fixed(b) => return compile_certificate(onnx, calibration, b, options),
        Batch::Fit { samples } => samples,
    };
    let candidates: Vec<usize> = (1..=samples)
        .rev()
        .filter(|b| samples.is_multiple_of(*b) && samples / b <= MAX_BATCHES)
        .collect();
    if candidates.is_empty() {
        return Err(config("a dataset of 0 samples has no batch".into()));
    }
    let mut best: Option<(f64, Compilation)> = None;
    let mut trials = Vec::new();
    for b in candidates {
        let (trial, compiled) = match compile_certificate(onnx, calibration, b, options) {
            Ok(c) => {
                let plan = Ok(Cost::of(&c.circuits[0].plan));
                (plan, Some(c))
            }
            Err(e) => (Err(e.to_string()), None),
        };
        let trial = BatchTrial {
            batch: b,
            plan: trial,
            taken: false,
        };
        if let (Some(c), Some(total)) = (compiled, trial.total_s(samples)) {
            if best.as_ref().is_none_or(|(t, _)| total < *t) {
                best = Some((total, c));
            }
        }
        trials.push(trial);
    }
    let Some((_, mut chosen)) = best else {
        let why: Vec<String> = trials
            .iter()
            .filter_map(|t| t.plan.as_ref().err().map(|e| format!("{}: {e}", t.batch)))
            .collect();
        return Err(config(format!(
            "no batch size of {samples} samples compiles as one certificate circuit within \
             the memory budget; tried {}",
            why.join("; ")
        )));
    };
    let taken = chosen.circuits[0]
        .certificate
        .as_ref()
        .map(|c| c.batch)
        .unwrap_or(0);
    for t in &mut trials {
        t.taken = t.batch == taken;
    }
    chosen.batches = trials;
    Ok(chosen)
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
    // No widths per tensor: the output is a count, which the search for each batch size
    // would only measure again (and a batch packs few calibration samples).
    let options = CompileOptions {
        visibility: VISIBILITY,
        min_segments: 1,
        per_tensor: false,
        certificate: None,
        ..*options
    };
    let mut c = match compile_laid_out(onnx, cert.imported, &packed, &options, false) {
        Err(PipelineError::Layout(zkinfer_circuits::CircuitError::OverMemory {
            budget,
            least,
        })) => {
            return Err(config(format!(
                "the certificate circuit for batches of {batch} is predicted to need \
                 {least:.0} MB at least, over the memory budget of {budget:.0} MB, and a \
                 certificate is one circuit; use a smaller --certify batch"
            )))
        }
        c => c?,
    };
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
