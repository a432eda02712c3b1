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
    calibrate, error_growth, fidelity, import_onnx_shaped, input_shapes, layer_errors,
    outlier_bits, parse_input_json, quantize, quantize_for_target, quantize_input, Imported,
    LayerError, QuantConfig, Target,
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
    /// Bits by which one tensor's range is narrowed ([`Widened::Range`]), else 0.
    pub narrowed: u32,
    /// The model's widths, or one tensor's (whose width is then `weight_bits` or
    /// `table_bits`, or whose range is `narrowed`).
    pub widened: Widened,
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
    /// With [`Bits::Widest`], widths per tensor after the model's (see [`tensor_widths`]).
    pub per_tensor: bool,
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
            per_tensor: true,
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
    let shapes = input_shapes(calibration).map_err(PipelineError::InputData)?;
    let imported = import_onnx_shaped(onnx, shapes.as_deref())?;
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
    let at = |cfg: &QuantConfig| quantize(&graph, &cal, cfg.clone());
    let table_bits = options.table_bits.unwrap_or(0);
    let mut planned = None;
    let mut widths = Vec::new();
    let (mut model, fid, trials) = match options.bits {
        Bits::Fixed(bits) => {
            let q = at(&QuantConfig {
                act_bits: bits,
                weight_bits,
                table_bits,
                ..QuantConfig::default()
            })?;
            let f = fidelity(&graph, &q, samples)?;
            (q, f, Vec::new())
        }
        Bits::Target(target) => quantize_for_target(&graph, &cal, samples, weight_bits, target)?,
        Bits::Widest => {
            let fid = |q: &QModel| fidelity(&graph, q, samples);
            let growth = |q: &QModel| {
                let layers = layer_errors(&graph, q, samples)?;
                Ok(error_growth(&graph, &layers)
                    .into_iter()
                    .map(|(name, _)| name)
                    .collect())
            };
            let half = |q: &QModel, which: usize| {
                if !options.per_tensor || samples.len() < TENSOR_SAMPLES {
                    return Ok(None);
                }
                let (choose, confirm) = samples.split_at(samples.len() / 2);
                let half = if which == 0 { choose } else { confirm };
                Ok(Some(fidelity(&graph, q, half)?))
            };
            let outliers = |name: &str, bits: u32| outlier_bits(&cal, name, bits);
            let (q, f, plans, tried) =
                widest(at, fid, half, growth, &outliers, weight_bits, options)?;
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

/// [`Bits::Widest`]: quantizes with `at` from the narrowest activations of
/// [`WIDEST_BITS`] and `weight_bits` up, and tries every wider activation width, then
/// weight width at the chosen activations (unless [`CompileOptions::weight_bits`] fixes
/// them); at each activation width of a model with continuous tabulated functions, their
/// tables' input width from the activations' own down to the narrowest activations'
/// (never coarser than the reference reads them), until one costs no more (unless
/// [`CompileOptions::table_bits`] fixes it). Of those whose whole-model circuit costs what
/// the narrowest one's does ([`costs_no_more`]), it takes the one whose output error
/// (`fid`) is least without losing argmax agreement. Then, tensor by tensor where the
/// error grows most first (`growth`), the same for one tensor's function inputs and
/// weights above the model's widths (see [`tensor_widths`]). Returns that model with its
/// fidelity and plans (none where the model is to be segmented, which stays at the
/// narrowest widths), and every set of widths tried.
fn widest(
    at: impl Fn(&QuantConfig) -> Result<QModel, zkinfer_compiler::CompileError>,
    fid: impl Fn(&QModel) -> Result<Fidelity, zkinfer_compiler::CompileError>,
    half: impl Fn(&QModel, usize) -> Result<Option<Fidelity>, zkinfer_compiler::CompileError>,
    growth: impl Fn(&QModel) -> Result<Vec<String>, zkinfer_compiler::CompileError>,
    outliers: &dyn Fn(&str, u32) -> u32,
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
    let config = |act_bits, weight_bits, table_bits| QuantConfig {
        act_bits,
        weight_bits,
        table_bits,
        ..QuantConfig::default()
    };
    // (activations, weights, tables); a table width of 0 is the activations'.
    let mut widths = (*WIDEST_BITS.start(), weight_bits, fixed_table);
    let mut best = at(&config(widths.0, widths.1, widths.2))?;
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
        narrowed: 0,
        widened: Widened::Model,
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
                    narrowed: 0,
                    widened: Widened::Model,
                    plan: Err(String::new()),
                    fidelity: None,
                    taken: false,
                };
                let wider = at(&config(next.0, next.1, table_bits))
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
                if improves(&f, &best_fid) {
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
    let model_wide = config(widths.0, widths.1, widths.2);
    let search = TensorSearch {
        at: &at,
        fid: &fid,
        half: &half,
        plan: &plan,
        outliers,
        reference,
        max_k,
    };
    let (_, best, best_fid, best_plans) = tensor_widths(
        &search,
        (model_wide, best, best_fid, best_plans),
        &growth,
        options,
        &mut tried,
    )?;
    Ok((best, best_fid, Some(best_plans), tried))
}

/// The output error of `f` is below `best`'s (or equal, for a wider width), without
/// losing argmax agreement: the error is not monotonic in a width, so each is measured.
fn improves(f: &Fidelity, best: &Fidelity) -> bool {
    let agrees = |f: &Fidelity| f.argmax_agree.unwrap_or(0);
    f.max_abs_error <= best.max_abs_error && agrees(f) >= agrees(best)
}

/// What a [`Widening`] widened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Widened {
    /// The model's widths.
    Model,
    /// The input width of one tensor's continuous functions (its node's tables).
    Functions(String),
    /// One tensor's weights.
    Weights(String),
    /// One tensor's range, narrowed towards its range robust to outliers (see
    /// [`zkinfer_compiler::TensorWidths::ranges`]).
    Range(String),
}

/// What [`tensor_widths`] tries a width with: `at`, `plan` and `fid` as for the model's
/// widths; `half` the fidelity on the first or second half of the calibration samples
/// (the first chooses, the second confirms), `None` with too few samples.
struct TensorSearch<'a, A, F, H, P> {
    at: &'a A,
    fid: &'a F,
    half: &'a H,
    plan: &'a P,
    /// The narrowings worth trying for a tensor's range at an activation width
    /// ([`outlier_bits`]).
    outliers: &'a dyn Fn(&str, u32) -> u32,
    reference: Cost,
    max_k: u32,
}

/// The widths, model, fidelity and plans taken so far.
type Taken = (QuantConfig, QModel, Fidelity, Planned);

/// The fewest calibration samples with which [`tensor_widths`] chooses widths per tensor:
/// half of them choose, the other half must agree. On one sample (measured on the
/// shared models' own) a width that lowers its error as often raises the error on other
/// inputs: a single tensor's width moves the output less than the sample's noise.
pub const TENSOR_SAMPLES: usize = 16;

/// Widths per tensor, after the model's: for each tensor where the error grows (`growth`
/// of the model taken, largest growth first), its functions' input width from the
/// activations' down to one above the model's (the widest that costs no more, as for
/// the model), then its weights' from the widest of [`WIDEST_BITS`] down to one above
/// the model's (each that costs no more, until one is taken), then its range narrowed
/// by the bits its range robust to outliers lies below its largest ([`outlier_bits`])
/// down to 1 (the same way). A width is taken where it lowers the mean error without
/// raising the largest or losing argmax agreement on both halves of the calibration
/// samples (`half`; none with fewer than [`TENSOR_SAMPLES`]). A wider table for a
/// tensor that spoils the output is where a bank's spare rows pay; wider weights for one
/// layer where all of them would cost more; a narrowed range for a small tensor with a
/// rare large value that does not reach the output (a ReLU's negative outlier).
fn tensor_widths<A, F, H, P>(
    search: &TensorSearch<'_, A, F, H, P>,
    taken: Taken,
    growth: impl Fn(&QModel) -> Result<Vec<String>, zkinfer_compiler::CompileError>,
    options: &CompileOptions,
    tried: &mut Vec<Widening>,
) -> Result<Taken, PipelineError>
where
    A: Fn(&QuantConfig) -> Result<QModel, zkinfer_compiler::CompileError>,
    F: Fn(&QModel) -> Result<Fidelity, zkinfer_compiler::CompileError>,
    H: Fn(&QModel, usize) -> Result<Option<Fidelity>, zkinfer_compiler::CompileError>,
    P: Fn(&QModel) -> Result<Planned, zkinfer_circuits::CircuitError>,
{
    let (mut cfg, mut best, mut best_fid, mut best_plans) = taken;
    let (Some(choose), Some(confirm)) = ((search.half)(&best, 0)?, (search.half)(&best, 1)?) else {
        return Ok((cfg, best, best_fid, best_plans));
    };
    let mut best_halves = [choose, confirm];
    let better = |f: &Fidelity, b: &Fidelity| improves(f, b) && f.mean_abs_error < b.mean_abs_error;
    let top_weights = *WIDEST_BITS.end();
    for name in growth(&best)? {
        let functions = cfg.table_bits;
        let kinds = [
            (
                Widened::Functions(name.clone()),
                // Only where the model's tables are narrower than the activations.
                if options.table_bits.is_none() && functions != 0 && functions < cfg.act_bits {
                    (functions + 1..=cfg.act_bits).rev().collect()
                } else {
                    Vec::new()
                },
            ),
            (
                Widened::Weights(name.clone()),
                if options.weight_bits.is_none() {
                    (cfg.weight_bits + 1..=top_weights).rev().collect()
                } else {
                    Vec::new()
                },
            ),
            (
                Widened::Range(name.clone()),
                (1..=(search.outliers)(&name, cfg.act_bits)).rev().collect(),
            ),
        ];
        for (widened, widths) in kinds {
            for bits in widths {
                let mut c = cfg.clone();
                let map = match &widened {
                    Widened::Functions(_) => &mut c.tensors.tables,
                    Widened::Range(_) => &mut c.tensors.ranges,
                    _ => &mut c.tensors.weights,
                };
                map.insert(name.clone(), bits);
                let mut trial = Widening {
                    act_bits: c.act_bits,
                    weight_bits: c
                        .tensors
                        .weights
                        .get(&name)
                        .copied()
                        .unwrap_or(c.weight_bits),
                    table_bits: c.tensors.tables.get(&name).copied().unwrap_or(c.table_bits),
                    narrowed: c.tensors.ranges.get(&name).copied().unwrap_or(0),
                    widened: widened.clone(),
                    plan: Err(String::new()),
                    fidelity: None,
                    taken: false,
                };
                let quantized = (search.at)(&c).map_err(|e| e.to_string());
                // The tensor's node has no such width (no table, no weights), or it is
                // bounded below the width tried: a narrower one changes nothing either.
                if quantized.as_ref().is_ok_and(|q| *q == best) {
                    break;
                }
                let planned = quantized.and_then(|q| {
                    let plans = (search.plan)(&q).map_err(|e| e.to_string())?;
                    Ok((q, plans))
                });
                let (q, plans) = match planned {
                    Ok(planned) => planned,
                    Err(e) => {
                        trial.plan = Err(e);
                        tried.push(trial);
                        continue;
                    }
                };
                let cost = Cost::of(&plans.0);
                trial.plan = Ok(cost);
                if !costs_no_more(cost, search.reference, search.max_k) {
                    tried.push(trial);
                    continue;
                }
                // The second half is measured only where the first sees a gain.
                let Some(choose) = (search.half)(&q, 0)? else {
                    break;
                };
                let confirm = if better(&choose, &best_halves[0]) {
                    (search.half)(&q, 1)?.filter(|f| better(f, &best_halves[1]))
                } else {
                    None
                };
                trial.taken = confirm.is_some();
                if let Some(confirm) = confirm {
                    let f = (search.fid)(&q)?;
                    trial.fidelity = Some(f.clone());
                    // A width taken earlier for the same tensor and kind is replaced.
                    for t in tried.iter_mut().filter(|t| t.widened == widened) {
                        t.taken = false;
                    }
                    cfg = c;
                    best = q;
                    best_fid = f;
                    best_halves = [choose, confirm];
                    best_plans = plans;
                } else {
                    trial.fidelity = Some(choose);
                }
                let stop = trial.taken || matches!(widened, Widened::Functions(_));
                tried.push(trial);
                if stop {
                    break;
                }
            }
        }
    }
    Ok((cfg, best, best_fid, best_plans))
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
