//! Calibration, quantization and the fidelity report.
//!
//! Calibration runs the float graph on sample inputs and records each tensor's largest
//! magnitude. Quantization then gives every tensor a power-of-two scale: the largest
//! that keeps its calibrated range (with headroom) inside the `act_bits`-bit signed
//! range the circuit's lookup table checks. Linear layers accumulate at
//! `scale(x) + scale(w)` and are rescaled lazily, when a consumer needs a bounded value
//! (a ReLU, the next linear layer, the graph output).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use zkinfer_qir::{
    dequantize, quantize as quantize_value, Activation, Add, AddOperand, Concat, Fidelity, Func,
    Linear, Mul as QMul, QModel, QOp, QValue, Real, Rearrange, Rescale, Reshape, TableSpec,
    ValueId,
};

use crate::graph::{broadcast_index, transpose_index, Graph, Op, Tensor};
use crate::CompileError;

mod calibration;
mod elementwise;
mod linear;
mod normalize;
mod target;

pub use calibration::{
    argmax, calibrate, error_growth, fidelity, layer_errors, quantize_input, run_quantized,
    Calibration, LayerError, OUTLIERS,
};
pub use target::{acceptable, quantize_for_target, Target, Trial, TARGET_BITS};

/// Calibrated ranges may be exceeded by a margin of this factor before a value overflows.
const HEADROOM: f64 = 1.25;

/// Knobs of the quantizer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuantConfig {
    /// Signed bit width of activations after a rescale (the lookup table has `2^act_bits` rows).
    pub act_bits: u32,
    /// Signed bit width of quantized weights (before clamping to keep rescales in range).
    pub weight_bits: u32,
    /// Signed bit width at which continuous tabulated functions (exp, erf, reciprocal,
    /// …) read their inputs, where narrower than `act_bits`: each such table then has
    /// `2^table_bits` rows. 0: `act_bits`.
    #[serde(default)]
    pub table_bits: u32,
    /// Widths of single tensors over the model-wide ones above.
    #[serde(default)]
    pub tensors: TensorWidths,
}

impl Default for QuantConfig {
    fn default() -> Self {
        QuantConfig {
            act_bits: 12,
            weight_bits: 12,
            table_bits: 0,
            tensors: TensorWidths::default(),
        }
    }
}

/// Widths chosen for single tensors (by the output tensor of the node that makes them),
/// where the model-wide ones of [`QuantConfig`] would be too coarse or cost too much.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorWidths {
    /// The width at which the node's continuous functions' tables read their inputs
    /// (over [`QuantConfig::table_bits`]; at most the activations').
    #[serde(default)]
    pub tables: BTreeMap<String, u32>,
    /// The signed width of the node's weights, factors and mean weights (over
    /// [`QuantConfig::weight_bits`]).
    #[serde(default)]
    pub weights: BTreeMap<String, u32>,
    /// Bits by which the tensor's range is narrowed below its calibrated largest
    /// magnitude (towards its [`Calibration::robust`] range): its values take steps
    /// `2^bits` times finer, and a value beyond the narrowed range saturates to its edge
    /// instead of failing the proof (see [`Quantizer::saturated`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ranges: BTreeMap<String, u32>,
}

/// The most bits [`TensorWidths::ranges`] narrows a tensor's range by.
pub const MAX_NARROWING: u32 = 8;

/// A tensor whose range is narrowed saturates values up to `2^SATURATED_BITS` times its
/// calibrated range (with headroom); beyond that its proof fails, as any value's beyond
/// its range does. Its two lookups hold `2^(n + SATURATED_BITS + 1)` rows for a
/// narrowing by `n` bits.
pub const SATURATED_BITS: u32 = 3;

/// The bits by which `name`'s range robust to outliers lies below its largest magnitude
/// (with the headroom that range keeps) at `bits`-bit activations: the narrowings of
/// [`TensorWidths::ranges`] worth trying, at most [`MAX_NARROWING`].
pub fn outlier_bits(cal: &Calibration, name: &str, bits: u32) -> u32 {
    let (Some(&largest), Some(&robust)) = (cal.max_abs.get(name), cal.robust.get(name)) else {
        return 0;
    };
    if robust <= 0.0 || largest <= 0.0 {
        return 0;
    }
    let gained =
        scale_for(f64::from(robust), bits, 1.0) - scale_for(f64::from(largest), bits, HEADROOM);
    gained.clamp(0, MAX_NARROWING as i32) as u32
}

/// Refuses a tensor width for a tensor no node of `graph` makes, or outside the widths
/// the model-wide ones may take.
fn check_tensor_widths(graph: &Graph, cfg: &QuantConfig) -> Result<(), CompileError> {
    let widths = [
        ("function input", &cfg.tensors.tables, 2..=cfg.act_bits),
        ("weight", &cfg.tensors.weights, 2..=24),
        ("range narrowing", &cfg.tensors.ranges, 1..=MAX_NARROWING),
    ];
    for (what, map, allowed) in widths {
        for (name, &bits) in map {
            if !graph.nodes.iter().any(|n| &n.output == name) {
                return Err(CompileError::Config {
                    reason: format!(
                        "a {what} width is given for `{name}`, which no node of the graph outputs"
                    ),
                });
            }
            if !allowed.contains(&bits) {
                return Err(CompileError::Config {
                    reason: format!(
                        "the {what} width of `{name}` must be in {}..={}, got {bits}",
                        allowed.start(),
                        allowed.end()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// A float tensor's place in the integer model.
#[derive(Clone, Copy, Debug)]
struct QTensor {
    id: ValueId,
    scale: i32,
    /// At the tensor's own calibrated scale (an input or a rescale output), as opposed
    /// to an accumulator at a product scale that still needs a rescale.
    at_target: bool,
    /// Known to be ≥ 0 (a ReLU output, or a max/selection of such values).
    nonneg: bool,
}

/// Which common scale [`Quantizer::join`] brings its inputs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Align {
    Up,
    Down,
}

struct Quantizer<'a> {
    graph: &'a Graph,
    cal: &'a Calibration,
    cfg: QuantConfig,
    /// The output tensor of the node being lowered: the key of its own widths.
    output: String,
    values: Vec<QValue>,
    ops: Vec<QOp>,
    map: BTreeMap<String, QTensor>,
    tables: Vec<TableSpec>,
    /// The node being lowered, for error messages.
    node: String,
    /// `TopK` rounds already lowered, by (input, axis, k, largest): each round's value and
    /// index, so that the node's second output reuses what its first built.
    top_k: BTreeMap<(String, usize, usize, bool), TopKRounds>,
    /// Tensors that saturate at their narrowed range ([`Quantizer::saturated`]).
    narrowed: std::collections::BTreeSet<String>,
}

/// Per round of a `TopK`: the value taken and its index, one element per row.
struct TopKRounds {
    values: Vec<QTensor>,
    indices: Vec<QTensor>,
}

pub fn quantize(
    graph: &Graph,
    cal: &Calibration,
    cfg: QuantConfig,
) -> Result<QModel, CompileError> {
    if !(4..=24).contains(&cfg.act_bits) || !(2..=24).contains(&cfg.weight_bits) {
        return Err(CompileError::Config {
            reason: format!(
                "--bits must be in 4..=24 and weight bits in 2..=24, got {} and {}",
                cfg.act_bits, cfg.weight_bits
            ),
        });
    }
    check_tensor_widths(graph, &cfg)?;
    let mut q = Quantizer {
        graph,
        cal,
        cfg,
        output: String::new(),
        values: Vec::new(),
        ops: Vec::new(),
        map: BTreeMap::new(),
        tables: Vec::new(),
        node: String::new(),
        top_k: BTreeMap::new(),
        narrowed: Default::default(),
    };
    let input_scale = q.target_scale(&graph.input);
    let input = q.value(&graph.input, graph.input_shape().to_vec(), input_scale);
    q.map.insert(
        graph.input.clone(),
        QTensor {
            id: input,
            scale: input_scale,
            at_target: true,
            nonneg: false,
        },
    );
    for node in &graph.nodes {
        q.node(node)?;
    }
    let out = q.bounded(&graph.output, &graph.output)?;
    let mut model = QModel {
        name: graph.name.clone(),
        values: q.values,
        input,
        output: out.id,
        ops: q.ops,
        act_bits: q.cfg.act_bits,
        tables: q.tables,
    };
    round_to_nearest(&mut model);
    model.validate()?;
    Ok(model)
}

/// Whether every element of `v` is an element of an op with a constant term (a linear
/// layer's bias, an addition's constant) that only `v` reads (through reshapes,
/// rearrangements and concatenations); collects those ops.
fn accumulators(
    model: &QModel,
    uses: &[usize],
    producer: &[Option<usize>],
    v: ValueId,
    linears: &mut Vec<usize>,
) -> bool {
    if uses[v.0] != 1 {
        return false;
    }
    match producer[v.0].map(|p| (p, &model.ops[p])) {
        Some((_, QOp::Reshape(r))) => accumulators(model, uses, producer, r.input, linears),
        // Every element it moves (or repeats) is an accumulator's.
        Some((_, QOp::Rearrange(r))) => accumulators(model, uses, producer, r.input, linears),
        Some((_, QOp::Concat(c))) => c
            .inputs
            .iter()
            .all(|&i| accumulators(model, uses, producer, i, linears)),
        Some((p, QOp::Linear(_))) => {
            linears.push(p);
            true
        }
        Some((
            p,
            QOp::Add(Add {
                b: AddOperand::Constant(_),
                ..
            }),
        )) => {
            linears.push(p);
            true
        }
        _ => false,
    }
}

/// Makes the rescales of accumulators round to nearest instead of flooring.
///
/// A rescale is a floor, `⌊x / 2^s⌋`: it errs by up to one unit, −½ on average, and
/// through a deep network these biases add up layer after layer. Where the rescaled value
/// is made of the results of ops with a constant term (see [`accumulators`]) that nothing
/// else reads, adding `2^(s−1)` to those constants makes the same floor a rounding,
/// `⌊(x + 2^(s−1)) / 2^s⌋`, at no cost in the circuit: a bias is a parameter like any
/// other. Only where what follows is continuous (no activation, ReLU, a continuous
/// tabulated function): a step function, and a comparison of the rescaled value, keep
/// the floor, which decides exactly which side of a boundary the value lies on.
fn round_to_nearest(model: &mut QModel) {
    let mut uses = vec![0usize; model.values.len()];
    for op in &model.ops {
        for v in op.inputs() {
            uses[v.0] += 1;
        }
    }
    uses[model.output.0] += 1;
    let mut producer = vec![None; model.values.len()];
    for (i, op) in model.ops.iter().enumerate() {
        producer[op.output().0] = Some(i);
    }
    let is_step = |act: Activation| match act {
        Activation::Identity | Activation::Relu => false,
        Activation::Table(t) => model.tables.get(t).is_none_or(|t| !t.func.is_continuous()),
    };
    // Values a step function reads exactly: through data movement, additions and
    // rescales by 2^0 (a comparison reads a difference). Their floors stay floors, so
    // that a comparison with a constant is exact where the value is.
    let mut exact = vec![false; model.values.len()];
    for op in model.ops.iter().rev() {
        let passes = match op {
            QOp::Rescale(r) => is_step(r.act) || (r.shift == 0 && exact[r.output.0]),
            QOp::Reshape(_) | QOp::Rearrange(_) | QOp::Concat(_) | QOp::Add(_) => {
                exact[op.output().0]
            }
            QOp::Linear(_) | QOp::Mul(_) => false,
        };
        if passes {
            for v in op.inputs() {
                exact[v.0] = true;
            }
        }
    }
    for r in 0..model.ops.len() {
        let QOp::Rescale(rescale) = &model.ops[r] else {
            continue;
        };
        if rescale.shift == 0 || is_step(rescale.act) || exact[rescale.output.0] {
            continue;
        }
        let half = 1i64 << (rescale.shift - 1);
        let mut linears = Vec::new();
        if accumulators(model, &uses, &producer, rescale.input, &mut linears) {
            for p in linears {
                let constants = match &mut model.ops[p] {
                    QOp::Linear(l) => &mut l.bias,
                    QOp::Add(Add {
                        b: AddOperand::Constant(c),
                        ..
                    }) => c,
                    _ => continue,
                };
                for c in constants {
                    *c += half;
                }
            }
        }
    }
}

fn pow2(e: i32) -> i64 {
    1i64 << e
}

fn max_abs(v: &[f32]) -> f64 {
    v.iter().fold(0f64, |m, x| m.max(x.abs() as f64))
}

/// Largest scale `s` with `max_abs · headroom · 2^s ≤ 2^(bits-1) - 1`.
fn scale_for(max_abs: f64, bits: u32, headroom: f64) -> i32 {
    let limit = ((1i64 << (bits - 1)) - 1) as f64;
    if max_abs <= 0.0 || !max_abs.is_finite() {
        return bits as i32 - 2;
    }
    ((limit / (max_abs * headroom)).log2().floor() as i32).clamp(-16, 30)
}

impl Quantizer<'_> {
    /// The largest rescale one op can prove (two rows of `act_bits - 1` bits each).
    fn max_shift(&self) -> i32 {
        2 * (self.cfg.act_bits as i32 - 1)
    }

    fn target_scale(&self, name: &str) -> i32 {
        self.target_scale_at(name, self.cfg.act_bits)
    }

    /// The scale at which `name`'s calibrated range fills `bits` signed bits (with headroom).
    /// Narrower where the tensor saturates at a narrowed range ([`Self::saturated`]).
    fn target_scale_at(&self, name: &str, bits: u32) -> i32 {
        let m = self.cal.max_abs.get(name).copied().unwrap_or(0.0) as f64;
        let narrowing = match self.narrowed.contains(name) {
            true => self.cfg.tensors.ranges.get(name).copied().unwrap_or(0) as i32,
            false => 0,
        };
        scale_for(m, bits, HEADROOM) + narrowing
    }

    fn value(&mut self, name: &str, shape: Vec<usize>, scale: i32) -> ValueId {
        self.values.push(QValue {
            name: name.to_string(),
            shape,
            scale,
        });
        ValueId(self.values.len() - 1)
    }

    fn shape(&self, name: &str) -> Vec<usize> {
        self.graph.shapes[name].clone()
    }

    /// The integer tensor computed for `name`; a constant where a computed tensor is
    /// expected (e.g. a ReLU of an initializer) is an error, not a panic.
    fn get(&self, name: &str) -> Result<QTensor, CompileError> {
        self.map
            .get(name)
            .copied()
            .ok_or_else(|| CompileError::Quantize {
                node: self.node.clone(),
                reason: format!("`{name}` is a constant where this op takes a computed tensor"),
            })
    }

    /// The tensor at its calibrated scale, inserting a rescale if it is an accumulator.
    fn bounded(&mut self, name: &str, node: &str) -> Result<QTensor, CompileError> {
        let t = self.get(name)?;
        if t.at_target {
            return Ok(t);
        }
        let target = self.target_scale(name);
        let shift = (t.scale - target).max(0);
        if shift > self.max_shift() {
            return Err(CompileError::Quantize {
                node: node.to_string(),
                reason: format!(
                    "rescaling `{name}` by 2^{shift} exceeds the {}-bit remainder check; use more --bits",
                    self.cfg.act_bits
                ),
            });
        }
        let scale = t.scale - shift;
        let id = self.value(name, self.shape(name), scale);
        self.ops.push(QOp::Rescale(Rescale {
            input: t.id,
            output: id,
            shift: shift as u32,
            act: Activation::Identity,
        }));
        let b = QTensor {
            id,
            scale,
            at_target: true,
            nonneg: false,
        };
        self.map.insert(name.to_string(), b);
        Ok(b)
    }

    /// The accumulator `x` of tensor `name`, where [`TensorWidths::ranges`] narrows that
    /// tensor's range by `n` bits: `y = clamp(⌊x / 2^s⌋, −2^h, 2^h − 1)` at the narrowed
    /// scale (`h = act_bits − 1`, `s` the shift to it), which every consumer then reads as
    /// the tensor (its target scale is the narrowed one from here on). `None` where no
    /// range is narrowed, or `x` is not `2^0` to `2^h` above the narrowed scale (the parts
    /// below need their shifts within the remainder check).
    ///
    /// Made of ops every circuit has, so their constraints are the proof:
    /// - `hi = ⌊x / 2^(s+h)⌋`, bounded, and to `n + SATURATED_BITS + 1` signed bits by
    ///   the lookups below: `x` may lie `2^SATURATED_BITS` times beyond its calibrated
    ///   range (with headroom) before the proof fails, where it could not lie beyond it
    ///   at all without the narrowing;
    /// - `rest = x − 2^(s+h)·hi`, in `[0, 2^(s+h))`, and `lo = ⌊rest / 2^s⌋`, bounded to
    ///   `[0, 2^h)` by its own rescale: together `⌊x / 2^s⌋ = 2^h·hi + lo` exactly;
    /// - `inside = [hi ∈ {−1, 0}]` and `edge = clamp(2^h·hi, −2^h, 2^h − 1)`, two lookups
    ///   of `hi` ([`Func::Saturate`]);
    /// - `y = inside·lo + edge`: `⌊x / 2^s⌋` inside the range, its nearer edge beyond it.
    ///   `inside` and `edge` are table outputs and `lo` is bounded, so `y` lies in
    ///   `[−2^h, 2^h)` whatever the prover's witness; it is still an accumulator, which
    ///   its consumer's rescale by `2^0` bounds like any other (a ReLU's costs nothing
    ///   more), so that only rescales make bounded values (segment cuts rely on it).
    ///
    /// The floor is not turned into a rounding ([`round_to_nearest`]): the narrowed step
    /// is at least twice as fine, so its floor errs less than a rounding at the calibrated
    /// scale would.
    fn saturated(&mut self, x: QTensor, name: &str) -> Option<QTensor> {
        let narrowing = *self.cfg.tensors.ranges.get(name)?;
        let half = self.cfg.act_bits as i32 - 1;
        let scale = self.target_scale(name) + narrowing as i32;
        let shift = x.scale - scale;
        if x.at_target || !(0..=half).contains(&shift) {
            return None;
        }
        let shape = self.shape(name);
        let high = self.value(
            &format!("{name}/saturate/high"),
            shape.clone(),
            scale - half,
        );
        self.ops.push(QOp::Rescale(Rescale {
            input: x.id,
            output: high,
            shift: (shift + half) as u32,
            act: Activation::Identity,
        }));
        let rest = self.value(&format!("{name}/saturate/rest"), shape.clone(), x.scale);
        self.ops.push(QOp::Add(Add {
            a: x.id,
            b: AddOperand::Value {
                id: high,
                mul: -pow2(shift + half),
            },
            output: rest,
            a_mul: vec![1],
        }));
        let low = self.value(&format!("{name}/saturate/low"), shape.clone(), scale);
        self.ops.push(QOp::Rescale(Rescale {
            input: rest,
            output: low,
            shift: shift as u32,
            act: Activation::Identity,
        }));
        // One unit of `hi` stands for the narrowed range, 2^h steps of the narrowed scale.
        let range = Real(2f64.powi(half - scale));
        let halves = [(true, "inside", 0), (false, "edge", scale)];
        // `hi` within SATURATED_BITS more bits than the narrowing: its tables stay small.
        let bits = narrowing + SATURATED_BITS + 1;
        let [inside, edge] = halves.map(|(select, what, out_scale)| {
            let func = Func::Saturate { range, select };
            let table = self.table_at(func, scale - half, out_scale, bits);
            let id = self.value(&format!("{name}/saturate/{what}"), shape.clone(), out_scale);
            self.ops.push(QOp::Rescale(Rescale {
                input: high,
                output: id,
                shift: 0,
                act: Activation::Table(table),
            }));
            id
        });
        let kept = self.value(&format!("{name}/saturate/kept"), shape.clone(), scale);
        self.ops.push(QOp::Mul(QMul {
            a: inside,
            b: low,
            output: kept,
        }));
        let y = self.value(name, shape, scale);
        self.ops.push(QOp::Add(Add {
            a: kept,
            b: AddOperand::Value { id: edge, mul: 1 },
            output: y,
            a_mul: vec![1],
        }));
        self.narrowed.insert(name.to_string());
        Some(QTensor {
            id: y,
            scale,
            at_target: false,
            nonneg: x.nonneg,
        })
    }

    fn rearrange(
        &mut self,
        x: QTensor,
        name: &str,
        shape: Vec<usize>,
        index: Vec<usize>,
    ) -> QTensor {
        self.gather(x, name, shape, index.into_iter().map(Some).collect())
    }

    /// Selects elements of `x`; `None` is a zero (padding).
    fn gather(
        &mut self,
        x: QTensor,
        name: &str,
        shape: Vec<usize>,
        index: Vec<Option<usize>>,
    ) -> QTensor {
        let id = self.value(name, shape, x.scale);
        self.ops.push(QOp::Rearrange(Rearrange {
            input: x.id,
            output: id,
            index,
        }));
        QTensor { id, ..x }
    }

    fn constant(&self, name: &str) -> Option<&Tensor> {
        self.graph.constants.get(name)
    }

    /// The tensor at its calibrated scale, broadcast (numpy rules) to `shape`.
    fn bounded_as(
        &mut self,
        name: &str,
        node: &str,
        shape: &[usize],
    ) -> Result<QTensor, CompileError> {
        let t = self.bounded(name, node)?;
        Ok(self.broadcast(t, name, shape))
    }

    /// `t` broadcast (numpy rules) from tensor `from`'s shape to `shape`.
    fn broadcast(&mut self, t: QTensor, from: &str, shape: &[usize]) -> QTensor {
        let fs = self.shape(from);
        if fs == shape {
            t
        } else {
            let idx = broadcast_index(&fs, shape);
            self.rearrange(t, &format!("{from}/broadcast"), shape.to_vec(), idx)
        }
    }

    /// `t` rescaled to `scale` (floor), then `act`; an error if the shift is too large.
    fn rescale_to(
        &mut self,
        node: &str,
        t: QTensor,
        name: &str,
        shape: &[usize],
        scale: i32,
        act: Activation,
    ) -> Result<QTensor, CompileError> {
        let shift = t.scale - scale;
        if !(0..=self.max_shift()).contains(&shift) {
            return Err(CompileError::Quantize {
                node: node.to_string(),
                reason: format!("rescaling `{name}` by 2^{shift} is outside the {}-bit remainder check; use more --bits", self.cfg.act_bits),
            });
        }
        // A tabulated function's output has the table's own scale.
        let out_scale = match act {
            Activation::Table(i) => self.tables[i].out_scale,
            _ => scale,
        };
        let id = self.value(name, shape.to_vec(), out_scale);
        self.ops.push(QOp::Rescale(Rescale {
            input: t.id,
            output: id,
            shift: shift as u32,
            act,
        }));
        Ok(QTensor {
            id,
            scale: out_scale,
            at_target: true,
            nonneg: act == Activation::Relu || t.nonneg,
        })
    }

    /// Repeats each of `rows` values `len` times (broadcast along the last axis).
    fn spread(&mut self, t: QTensor, name: &str, rows: usize, len: usize) -> QTensor {
        self.rearrange(
            t,
            name,
            vec![rows, len],
            (0..rows * len).map(|i| i / len).collect(),
        )
    }

    /// The width at which a table of `func` reads its inputs: a continuous function's
    /// at [`QuantConfig::table_bits`] where that is narrower than the activations (fewer
    /// table rows, a coarser input); a step function's (a sign, a comparison, a rounding,
    /// an index) at the activations' own, where it is exact.
    /// The node's own width where [`TensorWidths::tables`] gives one.
    fn func_bits(&self, func: Func) -> u32 {
        let bits = self.cfg.act_bits;
        let table_bits = self
            .cfg
            .tensors
            .tables
            .get(&self.output)
            .copied()
            .unwrap_or(self.cfg.table_bits);
        if func.is_continuous() && table_bits != 0 {
            table_bits.clamp(2, bits)
        } else {
            bits
        }
    }

    /// The signed width of the weights (and constant factors) of the node being lowered:
    /// its own where [`TensorWidths::weights`] gives one, else the model's.
    fn weight_bits(&self) -> u32 {
        self.cfg
            .tensors
            .weights
            .get(&self.output)
            .copied()
            .unwrap_or(self.cfg.weight_bits)
    }

    /// The index of the table of `func` from inputs at `in_scale` to outputs at
    /// `out_scale`, at the width [`Self::func_bits`] gives; added on first use.
    fn table(&mut self, func: Func, in_scale: i32, out_scale: i32) -> usize {
        let bits = self.func_bits(func);
        self.table_at(func, in_scale, out_scale, bits)
    }

    /// [`Self::table`] reading its inputs at `bits` (the activations' where wider).
    fn table_at(&mut self, func: Func, in_scale: i32, out_scale: i32, bits: u32) -> usize {
        let spec = TableSpec {
            func,
            in_scale,
            out_scale,
            in_bits: if bits < self.cfg.act_bits { bits } else { 0 },
        };
        match self.tables.iter().position(|t| *t == spec) {
            Some(i) => i,
            None => {
                self.tables.push(spec);
                self.tables.len() - 1
            }
        }
    }

    /// Lowers `node`; its output saturates where its range is narrowed.
    fn node(&mut self, node: &crate::graph::Node) -> Result<(), CompileError> {
        self.lower(node)?;
        if let Some(&t) = self.map.get(&node.output) {
            if let Some(y) = self.saturated(t, &node.output) {
                self.map.insert(node.output.clone(), y);
            }
        }
        Ok(())
    }

    fn lower(&mut self, node: &crate::graph::Node) -> Result<(), CompileError> {
        self.node = node.name.clone();
        self.output = node.output.clone();
        let name = node.name.as_str();
        let out = node.output.as_str();
        let out_shape = self.shape(out);
        let unsupported = |reason: &str| CompileError::Quantize {
            node: name.to_string(),
            reason: reason.to_string(),
        };
        let result = match &node.op {
            Op::Gemm(g) => {
                let (a, b) = (&node.inputs[0], &node.inputs[1]);
                let (m, n) = (out_shape[0], out_shape[1]);
                let c = node.inputs.get(2).map(|c| {
                    self.constant(c)
                        .cloned()
                        .ok_or_else(|| unsupported("a computed C operand is not supported"))
                });
                let c = c.transpose()?.map(|c| {
                    let idx = broadcast_index(&c.shape, &[m, n]);
                    (
                        idx.iter()
                            .map(|&i| c.data[i] * g.beta)
                            .collect::<Vec<f32>>(),
                        c.shape.clone(),
                    )
                });
                match (self.constant(a).cloned(), self.constant(b).cloned()) {
                    (None, Some(bw)) => {
                        let k = if g.trans_a {
                            self.shape(a)[0]
                        } else {
                            self.shape(a)[1]
                        };
                        let mut x = self.bounded(a, name)?;
                        if g.trans_a {
                            let idx = transpose_index(&self.shape(a), &[1, 0]);
                            x = self.rearrange(x, &format!("{a}/T"), vec![m, k], idx);
                        }
                        // weight as [out = n, in = k]
                        let w: Vec<f32> = if g.trans_b {
                            bw.data.clone()
                        } else {
                            transpose_index(&bw.shape, &[1, 0])
                                .iter()
                                .map(|&i| bw.data[i])
                                .collect()
                        };
                        let w: Vec<f32> = w.iter().map(|v| v * g.alpha).collect();
                        let bias = c.map(|(full, shape)| {
                            let per_feature = shape.len() <= 1 || shape[0] == 1;
                            if per_feature {
                                full[..n].to_vec()
                            } else {
                                full
                            }
                        });
                        self.linear(name, x, out, out_shape.clone(), &w, k, n, bias)?
                    }
                    (Some(aw), None) => {
                        // Y = A'·B'  ⇔  Yᵀ = B'ᵀ·A'ᵀ: a linear layer on the columns of B'.
                        let k = if g.trans_a { aw.shape[0] } else { aw.shape[1] };
                        let mut x = self.bounded(b, name)?;
                        if !g.trans_b {
                            let idx = transpose_index(&self.shape(b), &[1, 0]);
                            x = self.rearrange(x, &format!("{b}/T"), vec![n, k], idx);
                        }
                        let w: Vec<f32> = if g.trans_a {
                            transpose_index(&aw.shape, &[1, 0])
                                .iter()
                                .map(|&i| aw.data[i])
                                .collect()
                        } else {
                            aw.data.clone()
                        };
                        let w: Vec<f32> = w.iter().map(|v| v * g.alpha).collect();
                        let bias = c.map(|(full, _)| {
                            transpose_index(&[m, n], &[1, 0])
                                .iter()
                                .map(|&i| full[i])
                                .collect()
                        });
                        let yt =
                            self.linear(name, x, &format!("{out}/T"), vec![n, m], &w, k, m, bias)?;
                        self.rearrange(
                            yt,
                            out,
                            out_shape.clone(),
                            transpose_index(&[n, m], &[1, 0]),
                        )
                    }
                    (None, None) => {
                        return Err(unsupported(
                            "multiplying two computed tensors is not supported in this version",
                        ))
                    }
                    (Some(_), Some(_)) => {
                        return Err(unsupported("both operands are constants; fold them first"))
                    }
                }
            }
            Op::MatMul => {
                let (a, b) = (&node.inputs[0], &node.inputs[1]);
                match (self.constant(a).cloned(), self.constant(b).cloned()) {
                    (None, Some(bw)) => {
                        if bw.shape.len() > 2 {
                            return Err(unsupported(
                                "a constant right operand with batch dimensions",
                            ));
                        }
                        let (k, n) = if bw.shape.len() == 1 {
                            (bw.shape[0], 1)
                        } else {
                            (bw.shape[0], bw.shape[1])
                        };
                        let x = self.bounded(a, name)?;
                        let w: Vec<f32> = transpose_index(&[k, n], &[1, 0])
                            .iter()
                            .map(|&i| bw.data[i])
                            .collect();
                        self.linear(name, x, out, out_shape.clone(), &w, k, n, None)?
                    }
                    (Some(aw), None) => {
                        if aw.shape.len() != 2 {
                            return Err(unsupported("a constant left operand must be 2-D"));
                        }
                        let (m, k) = (aw.shape[0], aw.shape[1]);
                        let bs = self.shape(b);
                        let x = self.bounded(b, name)?;
                        if bs.len() == 1 {
                            self.linear(name, x, out, out_shape.clone(), &aw.data, k, m, None)?
                        } else {
                            // [.., K, N] → [.., N, K], linear to [.., N, M], back to [.., M, N].
                            let r = bs.len();
                            let mut perm: Vec<usize> = (0..r).collect();
                            perm.swap(r - 2, r - 1);
                            let mut xs = bs.clone();
                            xs.swap(r - 2, r - 1);
                            let xt = self.rearrange(
                                x,
                                &format!("{b}/T"),
                                xs.clone(),
                                transpose_index(&bs, &perm),
                            );
                            let mut ys = xs.clone();
                            ys[r - 1] = m;
                            let yt = self.linear(
                                name,
                                xt,
                                &format!("{out}/T"),
                                ys.clone(),
                                &aw.data,
                                k,
                                m,
                                None,
                            )?;
                            self.rearrange(yt, out, out_shape.clone(), transpose_index(&ys, &perm))
                        }
                    }
                    (None, None) => self.matmul_values(name, a, b, out, &out_shape)?,
                    (Some(_), Some(_)) => {
                        return Err(unsupported("both operands are constants; fold them first"))
                    }
                }
            }
            Op::Add => self.add(name, &node.inputs[0], &node.inputs[1], 1, out, &out_shape)?,
            Op::Sub => self.add(name, &node.inputs[0], &node.inputs[1], -1, out, &out_shape)?,
            Op::Neg => {
                let x = self.get(&node.inputs[0])?;
                let zeros = vec![0; out_shape.iter().product()];
                self.affine(x, out, &out_shape, vec![-1], zeros, x.scale)
            }
            Op::Mul | Op::Div => {
                let (a, b) = (&node.inputs[0], &node.inputs[1]);
                let (var, c) = match (self.constant(a).cloned(), self.constant(b).cloned()) {
                    (None, Some(c)) => (a, c),
                    (Some(c), None) if node.op == Op::Mul => (b, c),
                    (None, None) if node.op == Op::Mul => {
                        let r = self.mul_values(name, a, b, out, &out_shape)?;
                        self.map.insert(out.to_string(), r);
                        return Ok(());
                    }
                    // The importer lowers a division by a computed tensor to a product
                    // with its reciprocal.
                    (None, None) | (Some(_), None) => {
                        return Err(unsupported("dividing by a computed tensor"))
                    }
                    (Some(_), Some(_)) => {
                        return Err(unsupported("both operands are constants; fold them first"))
                    }
                };
                let idx = broadcast_index(&c.shape, &out_shape);
                let mut factors: Vec<f32> = idx.iter().map(|&i| c.data[i]).collect();
                if node.op == Op::Div {
                    if factors.contains(&0.0) {
                        return Err(unsupported("division by zero"));
                    }
                    factors.iter_mut().for_each(|f| *f = 1.0 / *f);
                }
                let x = self.bounded_as(var, name, &out_shape)?;
                let zeros = vec![0f32; factors.len()];
                self.scale_and_shift(name, x, out, &out_shape, &factors, &zeros)?
            }
            Op::IntDiv => {
                let c = self
                    .constant(&node.inputs[1])
                    .cloned()
                    .ok_or_else(|| unsupported("an integer division by a computed divisor"))?;
                let idx = broadcast_index(&c.shape, &out_shape);
                let divisors: Vec<i64> = idx.iter().map(|&i| c.data[i] as i64).collect();
                if divisors.contains(&0) {
                    return Err(unsupported("division by zero"));
                }
                let x = self.bounded_as(&node.inputs[0], name, &out_shape)?;
                self.int_div(name, x, out, &out_shape, &divisors)?
            }
            Op::BatchNormalization { epsilon } => {
                let c = |i: usize| {
                    self.constant(&node.inputs[i])
                        .cloned()
                        .ok_or_else(|| unsupported("computed parameters"))
                };
                let (a, b) =
                    crate::graph::batch_norm_affine(&c(1)?, &c(2)?, &c(3)?, &c(4)?, *epsilon);
                let (ch, plane) = (out_shape[1], out_shape[2..].iter().product::<usize>());
                let n: usize = out_shape.iter().product();
                let fa: Vec<f32> = (0..n).map(|i| a[(i / plane) % ch]).collect();
                let fb: Vec<f32> = (0..n).map(|i| b[(i / plane) % ch]).collect();
                let x = self.bounded(&node.inputs[0], name)?;
                self.scale_and_shift(name, x, out, &out_shape, &fa, &fb)?
            }
            Op::MaxPool { window } => {
                self.max_pool(name, &node.inputs[0], out, window, &out_shape)?
            }
            Op::Softmax => self.softmax(name, &node.inputs[0], out, &out_shape)?,
            Op::LayerNormalization { epsilon } => {
                let c = |i: usize| {
                    self.constant(&node.inputs[i])
                        .map(|t| t.data.clone())
                        .ok_or_else(|| unsupported("computed scale or bias"))
                };
                let gamma = c(1)?;
                let len = *out_shape.last().unwrap_or(&1);
                let beta = if node.inputs.len() > 2 {
                    c(2)?
                } else {
                    vec![0.0; len]
                };
                self.layer_norm(
                    name,
                    &node.inputs[0],
                    out,
                    &out_shape,
                    &gamma,
                    &beta,
                    *epsilon,
                )?
            }
            Op::Unary(func) => self.unary(name, &node.inputs[0], out, &out_shape, *func)?,
            Op::Conv { window, group } => {
                let input = &node.inputs[0];
                let xs = self.shape(input);
                let w = self
                    .constant(&node.inputs[1])
                    .cloned()
                    .ok_or_else(|| unsupported("computed weights"))?;
                let bias = match node.inputs.get(2) {
                    Some(b) => Some(
                        self.constant(b)
                            .cloned()
                            .ok_or_else(|| unsupported("computed bias"))?
                            .data,
                    ),
                    None => None,
                };
                let [batch, cin, h, wd] = crate::graph::nchw(&xs);
                let [_, cout, oh, ow] = crate::graph::nchw(&out_shape);
                // Every sample of a batch is more rows of the same linear layers.
                let positions = batch * oh * ow;
                let (kh, kw) = (window.kernel[0], window.kernel[1]);
                let (cin_g, cout_g) = (cin / group, cout / group);
                let taps = window.taps(h, wd, oh, ow);
                let x = self.bounded(input, name)?;
                let features = cin_g * kh * kw;
                // One linear layer a group, all at the scale of the whole weight tensor, so
                // that the groups' accumulators share a scale and concatenate.
                let ws = self.weight_scale(&w.data, out, x.scale);
                let mut groups = Vec::with_capacity(*group);
                for g in 0..*group {
                    // im2col: one row per sample and output position, [cin_g, kh, kw]
                    // features (W's layout).
                    let index = (0..batch)
                        .flat_map(|n| taps.iter().map(move |p| (n, p)))
                        .flat_map(|(n, p)| {
                            (g * cin_g..(g + 1) * cin_g).flat_map(move |c| {
                                p.iter().map(move |t| t.map(|o| (n * cin + c) * h * wd + o))
                            })
                        })
                        .collect();
                    let cols = self.gather(
                        x,
                        &format!("{out}/g{g}/im2col"),
                        vec![positions, features],
                        index,
                    );
                    let rows = g * cout_g..(g + 1) * cout_g;
                    let y = self.linear_at(
                        name,
                        cols,
                        &format!("{out}/g{g}"),
                        vec![positions, cout_g],
                        &w.data[rows.start * features..rows.end * features],
                        features,
                        cout_g,
                        bias.as_ref().map(|b| b[rows].to_vec()),
                        ws,
                    )?;
                    groups.push(y);
                }
                // [group][sample · position, cout_g] → NCHW
                let index = (0..batch * cout * oh * ow)
                    .map(|f| {
                        let (n, f) = (f / (cout * oh * ow), f % (cout * oh * ow));
                        let (c, p) = (f / (oh * ow), f % (oh * ow));
                        Some((c / cout_g, (n * oh * ow + p) * cout_g + c % cout_g))
                    })
                    .collect();
                let id = self.value(out, out_shape.clone(), groups[0].scale);
                self.ops.push(QOp::Concat(Concat {
                    inputs: groups.iter().map(|t| t.id).collect(),
                    output: id,
                    index,
                }));
                QTensor { id, ..groups[0] }
            }
            Op::Concat { index } => self.join(
                name,
                &node.inputs,
                None,
                Align::Up,
                out,
                out_shape.clone(),
                index.clone(),
            )?,
            Op::Sum | Op::Max | Op::Min => {
                self.nary(name, &node.inputs, &node.op, out, &out_shape)?
            }
            Op::ArgExtreme { axis, max, last } => {
                self.arg_extreme(name, &node.inputs[0], out, *axis, *max, *last, &out_shape)?
            }
            Op::TopK {
                axis,
                k,
                largest,
                indices,
            } => self.top_k(
                name,
                &node.inputs[0],
                out,
                (*axis, *k, *largest),
                *indices,
                &out_shape,
            )?,
            Op::Reduce { index, len, mean } => {
                let x = self.bounded(&node.inputs[0], name)?;
                let rows = index.len() / (*len).max(1);
                let index = index.iter().map(|&j| Some(j)).collect();
                let cols = self.gather(x, &format!("{out}/rows"), vec![rows, *len], index);
                let y = if *mean {
                    let w = vec![1.0 / *len as f32; *len];
                    self.linear(name, cols, out, vec![rows, 1], &w, *len, 1, None)?
                } else {
                    self.row_sum(cols, &format!("{out}/sum"), rows, *len, 1, 0, 0)
                };
                let id = self.value(out, out_shape.clone(), y.scale);
                self.ops.push(QOp::Reshape(Reshape {
                    input: y.id,
                    output: id,
                }));
                QTensor { id, ..y }
            }
            Op::AveragePool {
                window,
                count_include_pad,
            } => {
                let input = &node.inputs[0];
                let xs = self.shape(input);
                let padded = window.pads.iter().any(|&p| p > 0);
                if padded && !count_include_pad {
                    return Err(unsupported(
                        "padding with count_include_pad=0 (a divisor that varies per window)",
                    ));
                }
                self.pool(name, input, out, &xs, window, &out_shape)?
            }
            Op::GlobalAveragePool => {
                let input = &node.inputs[0];
                let xs = self.shape(input);
                let [_, _, h, w] = crate::graph::nchw(&xs);
                let window = crate::graph::Window {
                    kernel: [h, w],
                    strides: [1, 1],
                    dilations: [1, 1],
                    pads: [0; 4],
                };
                self.pool(name, input, out, &xs, &window, &out_shape)?
            }
            Op::Relu => {
                let input = &node.inputs[0];
                let x = self.get(input)?;
                let shift = if x.at_target {
                    0
                } else {
                    (x.scale - self.target_scale(input)).max(0)
                };
                if shift > self.max_shift() {
                    return Err(unsupported(
                        "the rescale before this ReLU exceeds the remainder check; use more --bits",
                    ));
                }
                let scale = x.scale - shift;
                let id = self.value(out, out_shape.clone(), scale);
                self.ops.push(QOp::Rescale(Rescale {
                    input: x.id,
                    output: id,
                    shift: shift as u32,
                    act: Activation::Relu,
                }));
                QTensor {
                    id,
                    scale,
                    at_target: true,
                    nonneg: true,
                }
            }
            Op::Reshape | Op::Identity => {
                let x = self.get(&node.inputs[0])?;
                let id = self.value(out, out_shape.clone(), x.scale);
                self.ops.push(QOp::Reshape(Reshape {
                    input: x.id,
                    output: id,
                }));
                QTensor { id, ..x }
            }
            Op::Select { index } => {
                let x = self.get(&node.inputs[0])?;
                self.gather(x, out, out_shape.clone(), index.clone())
            }
            Op::Tally => {
                let x = self.get(&node.inputs[0])?;
                self.tally(x, out, &out_shape)
            }
            Op::Transpose { perm } => {
                let input = &node.inputs[0];
                let x = self.get(input)?;
                let idx = transpose_index(&self.shape(input), perm);
                self.rearrange(x, out, out_shape.clone(), idx)
            }
        };
        self.map.insert(out.to_string(), result);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_keeps_range_inside_bits() {
        // 12 bits: limit 2047; 1.0 * 1.25 * 2^s <= 2047 -> s = 10
        assert_eq!(scale_for(1.0, 12, HEADROOM), 10);
        assert_eq!(scale_for(100.0, 12, HEADROOM), 4);
        assert_eq!(scale_for(0.0, 12, HEADROOM), 10);
    }

    #[test]
    fn argmax_takes_first_maximum() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, -1.0]), 1);
    }
}
