//! Segmented models: the manifest of a model cut into segments, the witness file that
//! carries the boundaries between them, and proving one segment from it.
//!
//! ```text
//! DIR/segments.json          the manifest (this module's Manifest)
//! DIR/segment-0/…            circuit.json, pk, vk, srs: a model directory per segment
//! input ──witness──▶ WITNESS.json (packed input boundary of every segment, salts)
//! WITNESS.json ──prove_segment(i)──▶ proof of segment i      (what a cluster worker runs)
//! proofs in order ──BundleFile──▶ verify_bundle
//! ```
//!
//! The witness file is private: it holds the intermediate activations and the salts that
//! hide them in the proofs.

use serde::{Deserialize, Serialize};
use zkinfer_circuits::halo2_proofs::halo2curves::bn256::Fr;
use zkinfer_circuits::halo2_proofs::halo2curves::ff::Field;
use zkinfer_circuits::segments::PlannedSegment;
use zkinfer_circuits::Salts;
use zkinfer_prover::{CompiledCircuit, Engine, Params, ProverKey};
use zkinfer_qir::{QModel, ValueId};
use zkinfer_verifier::artifact::{check_json_format, FORMAT_VERSION};
use zkinfer_verifier::{fr_from_hex, fr_to_hex, ProofFile, VerifyError};

use crate::PipelineError;

pub const MANIFEST_FORMAT: &str = "zkinfer-segments";
pub const WITNESS_FORMAT: &str = "zkinfer-witness";

/// A tensor crossing a cut, as the manifest names it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoundaryTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub scale: i32,
}

/// One segment of the manifest: where its files are and what the planner predicted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentEntry {
    /// `segment-<i>`, relative to the model directory.
    pub dir: String,
    /// The whole model's ops `[start, end)` this segment proves.
    pub ops: [usize; 2],
    pub inputs: Vec<BoundaryTensor>,
    pub outputs: Vec<BoundaryTensor>,
    pub k: u32,
    pub rows: usize,
    pub predicted_s: f64,
    pub predicted_mb: f64,
}

/// `DIR/segments.json`: a model cut into segments, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub model: String,
    pub source: String,
    /// The memory budget the segments were planned for.
    pub budget_mb: f64,
    pub segments: Vec<SegmentEntry>,
}

/// The directory name of segment `i`.
pub fn segment_dir(i: usize) -> String {
    format!("segment-{i}")
}

impl Manifest {
    pub fn new(whole: &QModel, source: String, budget_mb: f64, planned: &[PlannedSegment]) -> Self {
        let tensors = |ids: &[ValueId]| {
            ids.iter()
                .map(|&id| {
                    let v = whole.value(id);
                    BoundaryTensor {
                        name: v.name.clone(),
                        shape: v.shape.clone(),
                        scale: v.scale,
                    }
                })
                .collect()
        };
        Manifest {
            format: MANIFEST_FORMAT.into(),
            version: FORMAT_VERSION,
            model: whole.name.clone(),
            source,
            budget_mb,
            segments: planned
                .iter()
                .enumerate()
                .map(|(i, p)| SegmentEntry {
                    dir: segment_dir(i),
                    ops: [p.segment.ops.start, p.segment.ops.end],
                    inputs: tensors(&p.segment.inputs),
                    outputs: tensors(&p.segment.outputs),
                    k: p.plan.layout.k,
                    rows: p.plan.rows(),
                    predicted_s: p.plan.predicted.prove_s,
                    predicted_mb: p.plan.predicted.peak_mb,
                })
                .collect(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Parses and checks a manifest: two or more segments, named `segment-<i>` in order,
    /// their ops consecutive.
    pub fn from_json(bytes: &[u8]) -> Result<Self, VerifyError> {
        let bad = |reason: String| VerifyError::Format {
            what: "segment manifest".into(),
            reason,
        };
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
        check_json_format(&v, MANIFEST_FORMAT, "segment manifest")?;
        let m: Manifest = serde_json::from_value(v).map_err(|e| bad(e.to_string()))?;
        let n = m.segments.len();
        if !(2..=zkinfer_verifier::bundle::MAX_SEGMENTS).contains(&n) {
            return Err(bad(format!(
                "{n} segments; a segmented model has at least 2"
            )));
        }
        for (i, s) in m.segments.iter().enumerate() {
            if s.dir != segment_dir(i) {
                return Err(bad(format!(
                    "segment {i} is in `{}`; it must be `{}`",
                    s.dir,
                    segment_dir(i)
                )));
            }
            let follows = i == 0 || m.segments[i - 1].ops[1] == s.ops[0];
            if s.ops[0] >= s.ops[1] || !follows || (i == 0 && s.ops[0] != 0) {
                return Err(bad(format!(
                    "segment {i} has ops {:?}: segments cover consecutive ranges from op 0",
                    s.ops
                )));
            }
        }
        Ok(m)
    }
}

/// What `zkinfer witness` writes: each segment's input boundary, packed (the model's
/// quantized input for the first), and the salt of each cut. Private.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessFile {
    pub format: String,
    pub version: u32,
    pub model: String,
    pub inputs: Vec<Vec<i64>>,
    /// `0x`-hex field elements, one per cut.
    pub salts: Vec<String>,
}

impl WitnessFile {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, VerifyError> {
        let bad = |reason: String| VerifyError::Format {
            what: "witness file".into(),
            reason,
        };
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
        check_json_format(&v, WITNESS_FORMAT, "witness file")?;
        let w: WitnessFile = serde_json::from_value(v).map_err(|e| bad(e.to_string()))?;
        if w.inputs.is_empty() || w.salts.len() + 1 != w.inputs.len() {
            return Err(bad(format!(
                "{} boundaries and {} salts; a model of n segments has n and n - 1",
                w.inputs.len(),
                w.salts.len()
            )));
        }
        Ok(w)
    }

    /// The salts of segment `i`'s ends.
    pub fn salts(&self, i: usize) -> Result<Salts, PipelineError> {
        let salt = |j: usize| -> Result<Fr, PipelineError> {
            fr_from_hex(&self.salts[j]).ok_or_else(|| {
                bad_witness(format!(
                    "salt {j} is not a canonical field element in 0x-hex"
                ))
            })
        };
        Ok(Salts {
            input: if i > 0 { salt(i - 1)? } else { Fr::zero() },
            output: if i < self.salts.len() {
                salt(i)?
            } else {
                Fr::zero()
            },
        })
    }
}

fn bad_witness(reason: String) -> PipelineError {
    PipelineError::InputData(zkinfer_compiler::CompileError::InputData { reason })
}

/// Runs the segments' models one after another on the float input `sample` (quantized at
/// the model's input scale), and draws a fresh random salt for every cut.
pub fn witness(segments: &[CompiledCircuit], sample: &[f32]) -> Result<WitnessFile, PipelineError> {
    let first = &segments
        .first()
        .ok_or_else(|| bad_witness("a model has at least one segment".into()))?
        .model;
    let mut inputs = vec![zkinfer_compiler::quantize_input(first, sample)];
    for (i, s) in segments.iter().enumerate().take(segments.len() - 1) {
        let trace = s.model.run(&inputs[i])?;
        inputs.push(trace.get(s.model.output).to_vec());
    }
    let mut rng = rand::rngs::OsRng;
    Ok(WitnessFile {
        format: WITNESS_FORMAT.into(),
        version: FORMAT_VERSION,
        model: segments
            .first()
            .map(|s| s.model.name.clone())
            .unwrap_or_default(),
        inputs,
        salts: (1..segments.len())
            .map(|_| fr_to_hex(&Fr::random(&mut rng)))
            .collect(),
    })
}

/// Proves segment `i` of `n` from the witness file: its circuit run on its input
/// boundary, which must give the next segment's input boundary.
pub fn prove_segment(
    engine: &dyn Engine,
    circuit: &CompiledCircuit,
    key: &ProverKey,
    params: &Params,
    file: &WitnessFile,
    i: usize,
) -> Result<ProofFile, PipelineError> {
    let n = file.inputs.len();
    if i >= n {
        return Err(bad_witness(format!(
            "holds the boundaries of {n} segments; there is no segment {i}"
        )));
    }
    let model = std::sync::Arc::new(circuit.model.clone());
    let trace = model.run(&file.inputs[i])?;
    if let Some(next) = file.inputs.get(i + 1) {
        if trace.get(model.output) != next.as_slice() {
            return Err(bad_witness(format!(
                "segment {i} computes another output boundary than the file's input of segment {}; \
                 the witness is of another model or input (run `zkinfer witness` again)",
                i + 1
            )));
        }
    }
    let w = zkinfer_prover::witness(model, key, std::sync::Arc::new(trace), file.salts(i)?)?;
    Ok(zkinfer_prover::prove_witness(engine, key, params, w)?)
}
