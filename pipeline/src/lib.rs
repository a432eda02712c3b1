//! zkinfer's pipeline as a library — compile → setup → prove → verify — with the
//! artifacts as values. The command line and the tests both call it, so what a test
//! proves is what `zkinfer` does; files, flags and progress stay in the CLI.
//!
//! ```text
//! model.onnx + samples ──compile──▶ CompiledCircuit ──setup(SRS)──▶ ProverKey, VerifierKey
//!          input sample ──trace──▶ Trace ──prove(engine)──▶ ProofFile ──verify──▶ Verdict
//! ```

pub mod certificate;
pub mod segments;

use std::path::Path;
use std::sync::Arc;

use zkinfer_circuits::segments::{plan_segments, PlannedSegment};
use zkinfer_circuits::{Arguments, LinearArgument, Objective, Plan, RangeCheck, Visibility};
use zkinfer_compiler::quantize::Trial;
use zkinfer_compiler::{
    calibrate, fidelity, import_onnx, layer_errors, parse_input_json, quantize,
    quantize_for_target, quantize_input, Imported, LayerError, QuantConfig, Target,
};
use zkinfer_prover::artifact::CIRCUIT_FORMAT;
use zkinfer_prover::{CompiledCircuit, ProverKey};
use zkinfer_qir::{Fidelity, QModel, Trace};
use zkinfer_verifier::artifact::FORMAT_VERSION;
use zkinfer_verifier::VerifierKey;

pub use zkinfer_prover::{dev_srs, prove};
pub use zkinfer_verifier::{verify, Verdict};

/// A failure of one stage, with the stage's own error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    #[error(transparent)]
    Compile(#[from] zkinfer_compiler::CompileError),
    /// The calibration or input data does not fit the model (the caller names its file).
    #[error(transparent)]
    InputData(zkinfer_compiler::CompileError),
    #[error(transparent)]
    Layout(#[from] zkinfer_circuits::CircuitError),
    #[error(transparent)]
    Prove(#[from] zkinfer_prover::ProveError),
    #[error(transparent)]
    Model(#[from] zkinfer_qir::QirError),
}

/// How `compile` sets the activation width.
#[derive(Clone, Copy, Debug)]
pub enum Bits {
    Fixed(u32),
    Target(Target),
    /// Of the activation widths of [`WIDEST_BITS`], then the weight widths of the same
    /// range (unless [`CompileOptions::weight_bits`] fixes them), whose circuit costs what
    /// the narrowest's does ([`costs_no_more`]), the most accurate on the calibration
    /// samples. Where the lookup tables do not set `k`, precision is free up to there.
    Widest,
}

/// The widths [`Bits::Widest`] tries, narrowest (the reference) first: of activations,
/// and of weights.
pub const WIDEST_BITS: std::ops::RangeInclusive<u32> = 12..=16;

/// How much more predicted prove time [`Bits::Widest`] accepts for a wider width: a
/// fraction of the narrowest's, or seconds, whichever is more.
pub const WIDEST_SLACK: f64 = 0.02;
pub const WIDEST_SLACK_S: f64 = 0.25;

/// A circuit's `k`, and its predicted prove seconds and peak memory (MB).
#[derive(Clone, Copy, Debug)]
pub struct Cost {
    pub k: u32,
    pub prove_s: f64,
    pub peak_mb: f64,
}

impl Cost {
    pub fn of(plan: &Plan) -> Cost {
        Cost {
            k: plan.layout.k,
            prove_s: plan.predicted.prove_s,
            peak_mb: plan.predicted.peak_mb,
        }
    }
}

/// Whether a circuit costs what the `reference` does for [`Bits::Widest`]: its `k` at
/// most `max_k` (the 12-bit circuit's with every value range-checked in one table: no
/// default needs a larger SRS than 12 bits did), and its predicted prove time within
/// [`WIDEST_SLACK`] of the reference's or within [`WIDEST_SLACK_S`] — less than a
/// proof's fixed costs (loading keys and SRS, writing the proof), which a user of a
/// small model does not tell from noise, and which buys it 2 to 4 more bits.
pub fn costs_no_more(cost: Cost, reference: Cost, max_k: u32) -> bool {
    cost.k <= max_k
        && cost.prove_s
            <= (reference.prove_s * (1.0 + WIDEST_SLACK)).max(reference.prove_s + WIDEST_SLACK_S)
}

/// One set of widths [`Bits::Widest`] tried: its whole-model circuit's `k` and predicted
/// prove seconds, or why it has none; and its output's fidelity where it costs no more.
#[derive(Clone, Debug)]
pub struct Widening {
    pub act_bits: u32,
    pub weight_bits: u32,
    /// The width the continuous functions' tables read their inputs at (`act_bits`
    /// where they are not narrower; [`QuantConfig::table_bits`]).
    pub table_bits: u32,
    pub plan: Result<Cost, String>,
    pub fidelity: Option<Fidelity>,
    pub taken: bool,
}

/// How `compile` quantizes and lays out a model.
#[derive(Clone, Copy, Debug)]
pub struct CompileOptions {
    pub bits: Bits,
    pub visibility: Visibility,
    /// The planner keeps to layouts predicted to prove within this many MB, and cuts the
    /// model into segments when no single circuit fits.
    pub max_memory_mb: Option<f64>,
    /// Cut into at least this many segments (for parallel provers), where the model has
    /// enough cuts; 1 keeps a model that fits whole.
    pub min_segments: usize,
    /// Which argument checks the linear layers.
    pub linear: LinearArgument,
    /// How values are range-checked.
    pub range: RangeCheck,
    /// What the planner minimises: the proof's time, or its time with folding it into
    /// an aggregation (`zkinfer aggregate`).
    pub objective: Objective,
    /// The weights' signed width; `None`: 12 bits, widened by [`Bits::Widest`] where free.
    pub weight_bits: Option<u32>,
    /// The width at which continuous functions' tables read their inputs, where narrower
    /// than the activations (see [`QuantConfig::table_bits`]); `None`: the activations'
    /// with fixed widths, chosen with them by [`Bits::Widest`].
    pub table_bits: Option<u32>,
    /// Compile the model's capability certificate circuit instead (see [`certificate`]),
    /// for batches of a given size or of the size the planner chooses; its visibility is
    /// the certificate's.
    pub certificate: Option<certificate::Batch>,
}

impl CompileOptions {
    /// The planner's choices of argument.
    pub fn arguments(&self) -> Arguments {
        Arguments {
            linear: self.linear,
            range: self.range,
            objective: self.objective,
        }
    }
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            bits: Bits::Widest,
            visibility: Visibility::default(),
            max_memory_mb: None,
            min_segments: 1,
            linear: LinearArgument::default(),
            range: RangeCheck::default(),
            objective: Objective::default(),
            weight_bits: None,
            table_bits: None,
            certificate: None,
        }
    }
}

/// What `compile` made, and what it found on the way.
#[derive(Clone, Debug)]
pub struct Compilation {
    /// The whole integer model.
    pub model: QModel,
    /// One circuit for the whole model, or one per segment in order.
    pub circuits: Vec<CompiledCircuit>,
    /// With several circuits: the segments, as planned.
    pub segments: Vec<PlannedSegment>,
    /// Things a user should know about the import (e.g. a batch dimension fixed to 1).
    pub notes: Vec<String>,
    /// Nodes of the imported float graph.
    pub nodes: usize,
    /// With `Bits::Target`: every width tried and its fidelity.
    pub trials: Vec<Trial>,
    /// With `Bits::Widest`: every pair of widths tried, its circuit's cost and, where it
    /// costs no more, its fidelity.
    pub widths: Vec<Widening>,
    /// With a certificate's `Batch::Fit`: every batch size tried and its cost.
    pub batches: Vec<certificate::BatchTrial>,
    /// The planner's second-best layout (of a whole-model circuit).
    pub runner_up: Option<Plan>,
    /// The quantization error tensor by tensor on the calibration samples, in model order.
    pub layers: Vec<LayerError>,
}

impl Compilation {
    pub fn is_segmented(&self) -> bool {
        self.circuits.len() > 1
    }
}

/// Imports `onnx`, calibrates on the samples of `calibration` (EZKL's input JSON),
/// quantizes and lays out the circuit.
pub fn compile(
    onnx: &Path,
    calibration: &str,
    options: &CompileOptions,
) -> Result<Compilation, PipelineError> {
    if let Some(batch) = options.certificate {
        return certificate::compile_batched(onnx, calibration, batch, options);
    }
    let imported = import_onnx(onnx)?;
    let parts: Vec<Vec<usize>> = imported
        .graph
        .inputs
        .iter()
        .map(|p| p.shape.clone())
        .collect();
    let samples = parse_input_json(calibration, &parts)
        .map_err(PipelineError::InputData)?
        .samples;
    compile_imported(onnx, imported, &samples, options)
}

/// Calibrates `imported` (read from `onnx`) on `samples` (packed inputs), quantizes and
/// lays out the circuit.
pub fn compile_imported(
    onnx: &Path,
    imported: Imported,
    samples: &[Vec<f32>],
    options: &CompileOptions,
) -> Result<Compilation, PipelineError> {
    compile_laid_out(onnx, imported, samples, options, true)
}

/// [`compile_imported`]; a model that does not fit the memory budget as one circuit is
/// cut into segments if `segment`, and is an [`zkinfer_circuits::CircuitError::OverMemory`]
/// error otherwise.
pub(crate) fn compile_laid_out(
    onnx: &Path,
    imported: Imported,
    samples: &[Vec<f32>],
    options: &CompileOptions,
    segment: bool,
) -> Result<Compilation, PipelineError> {
    let graph = imported.graph;
    let cal = calibrate(&graph, samples)?;
    let weight_bits = options
        .weight_bits
        .unwrap_or(QuantConfig::default().weight_bits);
    let at = |act_bits: u32, weight_bits: u32, table_bits: u32| {
        let cfg = QuantConfig {
            act_bits,
            weight_bits,
            table_bits,
        };
        quantize(&graph, &cal, cfg)
    };
    let table_bits = options.table_bits.unwrap_or(0);
    let mut planned = None;
    let mut widths = Vec::new();
    let (mut model, fid, trials) = match options.bits {
        Bits::Fixed(bits) => {
            let q = at(bits, weight_bits, table_bits)?;
            let f = fidelity(&graph, &q, samples)?;
            (q, f, Vec::new())
        }
        Bits::Target(target) => quantize_for_target(&graph, &cal, samples, weight_bits, target)?,
        Bits::Widest => {
            let fid = |q: &QModel| fidelity(&graph, q, samples);
            let (q, f, plans, tried) = widest(at, fid, weight_bits, options)?;
            planned = plans;
            widths = tried;
            (q, f, Vec::new())
        }
    };
    let layers = layer_errors(&graph, &model, samples)?;
    // Integer and boolean inputs are numbers: exact only at a scale of 2^0 or finer.
    let input_scale = model.value(model.input).scale;
    let integer: Vec<&str> = graph
        .inputs
        .iter()
        .filter(|p| p.integer)
        .map(|p| p.name.as_str())
        .collect();
    if !integer.is_empty() && input_scale < 0 {
        return Err(PipelineError::InputData(
            zkinfer_compiler::CompileError::InputData {
                reason: format!(
                    "the integer inputs {integer:?} would be quantized at 2^{input_scale} and \
                     lose their low bits (the calibrated input range is too wide for {} bits); \
                     use more --bits",
                    model.act_bits
                ),
            },
        ));
    }
    let circuit = |model: QModel, plan: Plan| CompiledCircuit {
        format: CIRCUIT_FORMAT.into(),
        version: FORMAT_VERSION,
        source: onnx.display().to_string(),
        model,
        plan,
        fidelity: fid.clone(),
        inputs: graph.inputs.clone(),
        outputs: graph.outputs.clone(),
        certificate: None,
    };
    let vis = options.visibility;
    if vis.is_linked() {
        return Err(PipelineError::Layout(
            zkinfer_circuits::CircuitError::Model(zkinfer_qir::QirError::Malformed {
                op: 0,
                kind: "model",
                reason: "`linked` is a segment boundary, set by the planner; a statement's \
                         input is public, private or hashed, its output public or hashed"
                    .into(),
            }),
        ));
    }
    let whole = if options.min_segments > 1 {
        None
    } else if let Some(plans) = planned {
        Some(plans)
    } else {
        match zkinfer_circuits::plan_layout(&model, vis, options.max_memory_mb, options.arguments())
        {
            Ok(plans) => Some(plans),
            // Too large for one circuit within the budget: cut it.
            Err(zkinfer_circuits::CircuitError::OverMemory { .. }) if segment => None,
            Err(e) => return Err(e.into()),
        }
    };
    let (circuits, segments, runner_up) = match (whole, options.max_memory_mb) {
        (Some((plan, runner_up)), _) => (vec![circuit(model.clone(), plan)], vec![], runner_up),
        (None, budget) => {
            // The model the segments are of: large linear layers may be split.
            let (split, planned) = plan_segments(
                &model,
                vis,
                budget.unwrap_or(f64::INFINITY),
                options.min_segments,
                options.arguments(),
            )?;
            let circuits = planned
                .iter()
                .map(|p| circuit(p.model.clone(), p.plan.clone()))
                .collect();
            model = split;
            (circuits, planned, None)
        }
    };
    Ok(Compilation {
        model,
        circuits,
        segments,
        notes: imported.notes,
        nodes: graph.nodes.len(),
        trials,
        widths,
        batches: Vec::new(),
        runner_up,
        layers,
    })
}

/// A whole-model circuit's plan and the planner's runner-up.
type Planned = (Plan, Option<Plan>);

/// [`Bits::Widest`]: quantizes with `at(act_bits, weight_bits, table_bits)` from the
/// narrowest activations of [`WIDEST_BITS`] and `weight_bits` up, and tries every wider
/// activation width, then weight width at the chosen activations (unless
/// [`CompileOptions::weight_bits`] fixes them); at each activation width of a model with
/// continuous tabulated functions, their tables' input width from the activations' own
/// down to the narrowest activations' (never coarser than the reference reads them),
/// until one costs no more (unless [`CompileOptions::table_bits`] fixes it). Of those whose whole-model circuit
/// costs what the narrowest one's does ([`costs_no_more`]), it takes the one whose output
/// error (`fid`) is least without losing argmax agreement. Returns that model with its
/// fidelity and plans (none where the model is to be segmented, which stays at the
/// narrowest widths), and every set of widths tried.
fn widest(
    at: impl Fn(u32, u32, u32) -> Result<QModel, zkinfer_compiler::CompileError>,
    fid: impl Fn(&QModel) -> Result<Fidelity, zkinfer_compiler::CompileError>,
    weight_bits: u32,
    options: &CompileOptions,
) -> Result<(QModel, Fidelity, Option<Planned>, Vec<Widening>), PipelineError> {
    let plan = |q: &QModel| {
        zkinfer_circuits::plan_layout(
            q,
            options.visibility,
            options.max_memory_mb,
            options.arguments(),
        )
    };
    let fixed_table = options.table_bits.unwrap_or(0);
    // (activations, weights, tables); a table width of 0 is the activations'.
    let mut widths = (*WIDEST_BITS.start(), weight_bits, fixed_table);
    let mut best = at(widths.0, widths.1, widths.2)?;
    let mut best_fid = fid(&best)?;
    if options.min_segments > 1 || options.visibility.is_linked() {
        return Ok((best, best_fid, None, Vec::new()));
    }
    let mut best_plans = match plan(&best) {
        Ok(plans) => plans,
        // Segmented, or an error the caller reports when it lays the model out.
        Err(_) => return Ok((best, best_fid, None, Vec::new())),
    };
    let reference = Cost::of(&best_plans.0);
    // The 12-bit circuit with one table: the largest `k` a wider width may take.
    let one_table = Arguments {
        range: RangeCheck::Table,
        ..options.arguments()
    };
    let max_k =
        zkinfer_circuits::plan_layout(&best, options.visibility, options.max_memory_mb, one_table)
            .map_or(reference.k, |(p, _)| p.layout.k.max(reference.k));
    let table_width = |q: &QModel| {
        q.tables
            .iter()
            .map(|t| t.input_bits(q.act_bits))
            .min()
            .unwrap_or(q.act_bits)
    };
    let mut tried = vec![Widening {
        act_bits: widths.0,
        weight_bits: widths.1,
        table_bits: table_width(&best),
        plan: Ok(reference),
        fidelity: Some(best_fid.clone()),
        taken: true,
    }];
    // Whether the model has a table a narrower input width would shrink.
    let narrows = best.tables.iter().any(|t| t.func.is_continuous()) && fixed_table == 0;
    // Activations first (their rounding is most of the error), then weights.
    let steps: &[(u32, u32)] = if options.weight_bits.is_some() {
        &[(1, 0)]
    } else {
        &[(1, 0), (0, 1)]
    };
    for &(da, dw) in steps {
        let mut at_width = (widths.0, widths.1);
        loop {
            let next = (at_width.0 + da, at_width.1 + dw);
            at_width = next;
            let end = *WIDEST_BITS.end();
            if (da > 0 && next.0 > end) || (dw > 0 && next.1 > end) {
                break;
            }
            // The functions' input widths to try at these activations, widest first: the
            // first that costs no more is the one (a narrower one only loses precision).
            // None is coarser than the narrowest activations': measured, 11-bit function
            // inputs beside 16-bit activations halved attn_block's error, but their
            // circuit (k 12, range checks in limbs, the table in four banks: 24 lookups)
            // proved 30–60% slower than the 12-bit one where the cost model predicted
            // 12% (docs/BENCHMARKS.md); it under-prices many lookups at small `k`.
            let tables: Vec<u32> = if da > 0 && narrows {
                let low = *WIDEST_BITS.start();
                std::iter::once(0).chain((low..next.0).rev()).collect()
            } else {
                vec![widths.2]
            };
            let mut failed = false;
            for table_bits in tables {
                let mut trial = Widening {
                    act_bits: next.0,
                    weight_bits: next.1,
                    table_bits: next.0,
                    plan: Err(String::new()),
                    fidelity: None,
                    taken: false,
                };
                let wider = at(next.0, next.1, table_bits)
                    .map_err(|e| e.to_string())
                    .and_then(|q| {
                        let plans = plan(&q).map_err(|e| e.to_string())?;
                        Ok((q, plans))
                    });
                let (q, plans) = match wider {
                    Ok(w) => w,
                    Err(e) => {
                        trial.plan = Err(e);
                        tried.push(trial);
                        failed = true;
                        break;
                    }
                };
                trial.table_bits = table_width(&q);
                let cost = Cost::of(&plans.0);
                trial.plan = Ok(cost);
                // Nor is the cost monotonic in a width: a wider table may take limbs, or
                // another layout, and cost less than a narrower one.
                if !costs_no_more(cost, reference, max_k) {
                    tried.push(trial);
                    continue;
                }
                let f = fid(&q)?;
                trial.fidelity = Some(f.clone());
                tried.push(trial);
                // The most accurate free width wins (a wider one on a tie); the error is
                // not always monotonic in a width, so a worse one does not end the search.
                let agrees = |f: &Fidelity| f.argmax_agree.unwrap_or(0);
                if f.max_abs_error <= best_fid.max_abs_error && agrees(&f) >= agrees(&best_fid) {
                    widths = (next.0, next.1, table_bits);
                    best = q;
                    best_fid = f;
                    best_plans = plans;
                }
                break;
            }
            if failed {
                break;
            }
        }
    }
    let chosen = (widths.0, widths.1, table_width(&best));
    for w in &mut tried {
        w.taken = (w.act_bits, w.weight_bits, w.table_bits) == chosen;
    }
    Ok((best, best_fid, Some(best_plans), tried))
}

/// The proving and verifying keys of `circuit` with the SRS `params`.
pub fn setup(
    circuit: &CompiledCircuit,
    params: &zkinfer_prover::Params,
) -> Result<(ProverKey, VerifierKey), PipelineError> {
    Ok(zkinfer_prover::setup(
        Arc::new(circuit.model.clone()),
        circuit.info(),
        params,
    )?)
}

/// The one input sample of `input` (EZKL's input JSON) for `circuit` (the whole
/// model's, or its first segment's), packed as the model's input.
pub fn input_sample(circuit: &CompiledCircuit, input: &str) -> Result<Vec<f32>, PipelineError> {
    let mut data =
        parse_input_json(input, &circuit.input_shapes()).map_err(PipelineError::InputData)?;
    match data.samples.len() {
        1 => Ok(data.samples.remove(0)),
        n => Err(PipelineError::InputData(
            zkinfer_compiler::CompileError::InputData {
                reason: format!(
                    "holds {n} samples; a proof is of one inference, give it one sample"
                ),
            },
        )),
    }
}

/// The integer interpreter's run of `model` on one float input sample: quantized at the
/// model's input scale, refused if it leaves the quantized width.
pub fn trace(model: &QModel, sample: &[f32]) -> Result<Trace, PipelineError> {
    Ok(model.run(&quantize_input(model, sample))?)
}
