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
    dequantize, quantize as quantize_value, Activation, Add, AddOperand, Fidelity, Func, Linear,
    Mul as QMul, QModel, QOp, QValue, Rearrange, Rescale, Reshape, TableSpec, ValueId,
};

use crate::graph::{broadcast_index, transpose_index, Graph, Op, Tensor};
use crate::CompileError;

/// Calibrated ranges may be exceeded by a margin of this factor before a value overflows.
const HEADROOM: f64 = 1.25;

/// Knobs of the quantizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuantConfig {
    /// Signed bit width of activations after a rescale (the lookup table has `2^act_bits` rows).
    pub act_bits: u32,
    /// Signed bit width of quantized weights (before clamping to keep rescales in range).
    pub weight_bits: u32,
}

impl Default for QuantConfig {
    fn default() -> Self {
        QuantConfig {
            act_bits: 12,
            weight_bits: 12,
        }
    }
}

/// Largest magnitude of every float tensor over the calibration samples.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub samples: usize,
    pub max_abs: BTreeMap<String, f32>,
}

pub fn calibrate(graph: &Graph, samples: &[Vec<f32>]) -> Result<Calibration, CompileError> {
    let mut cal = Calibration::default();
    for s in samples {
        for (name, t) in graph.run(s)? {
            let m = cal.max_abs.entry(name).or_insert(0.0);
            *m = m.max(t.max_abs());
        }
        cal.samples += 1;
    }
    Ok(cal)
}

/// Index of the largest element (first on ties).
pub fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, &x)| {
            if x > bv {
                (i, x)
            } else {
                (bi, bv)
            }
        })
        .0
}

/// Runs float and quantized models on each sample and compares the outputs.
pub fn fidelity(
    graph: &Graph,
    model: &QModel,
    samples: &[Vec<f32>],
) -> Result<Fidelity, CompileError> {
    let (mut max_err, mut sum_err, mut count, mut out_max) = (0f64, 0f64, 0usize, 0f64);
    let mut agree = 0;
    let out_shape = graph.output_shape();
    let is_class_vector = out_shape.iter().filter(|&&d| d > 1).count() == 1;
    for s in samples {
        let float = graph.run(s)?;
        let fo: Vec<f64> = float[&graph.output]
            .data
            .iter()
            .map(|&v| v as f64)
            .collect();
        let qo = run_quantized(model, s)?;
        for (a, b) in fo.iter().zip(&qo) {
            let e = (a - b).abs();
            max_err = max_err.max(e);
            sum_err += e;
            count += 1;
            out_max = out_max.max(a.abs());
        }
        if argmax(&fo) == argmax(&qo) {
            agree += 1;
        }
    }
    Ok(Fidelity {
        samples: samples.len(),
        max_abs_error: max_err,
        mean_abs_error: if count == 0 {
            0.0
        } else {
            sum_err / count as f64
        },
        output_max_abs: out_max,
        argmax_agree: is_class_vector.then_some(agree),
    })
}

/// Quantizes a float input at the model's input scale.
pub fn quantize_input(model: &QModel, input: &[f32]) -> Vec<i64> {
    let scale = model.value(model.input).scale;
    input
        .iter()
        .map(|&x| quantize_value(x as f64, scale))
        .collect()
}

/// Quantizes, runs the integer model and dequantizes its output.
pub fn run_quantized(model: &QModel, input: &[f32]) -> Result<Vec<f64>, CompileError> {
    let trace = model.run(&quantize_input(model, input))?;
    let scale = model.value(model.output).scale;
    Ok(trace
        .get(model.output)
        .iter()
        .map(|&v| dequantize(v, scale))
        .collect())
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

struct Quantizer<'a> {
    graph: &'a Graph,
    cal: &'a Calibration,
    cfg: QuantConfig,
    values: Vec<QValue>,
    ops: Vec<QOp>,
    map: BTreeMap<String, QTensor>,
    tables: Vec<TableSpec>,
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
    let mut q = Quantizer {
        graph,
        cal,
        cfg,
        values: Vec::new(),
        ops: Vec::new(),
        map: BTreeMap::new(),
        tables: Vec::new(),
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
    let model = QModel {
        name: graph.name.clone(),
        values: q.values,
        input,
        output: out.id,
        ops: q.ops,
        act_bits: cfg.act_bits,
        tables: q.tables,
    };
    model.validate()?;
    Ok(model)
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
        let m = self.cal.max_abs.get(name).copied().unwrap_or(0.0) as f64;
        scale_for(m, self.cfg.act_bits, HEADROOM)
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

    fn get(&self, name: &str) -> QTensor {
        self.map[name]
    }

    /// The tensor at its calibrated scale, inserting a rescale if it is an accumulator.
    fn bounded(&mut self, name: &str, node: &str) -> Result<QTensor, CompileError> {
        let t = self.get(name);
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

    /// `y[r, n] = bias + Σ_k x[r, k] · w[n, k]`; `weight` is `[out, in]`, `bias` `[out]` or `[rows·out]`.
    #[allow(clippy::too_many_arguments)]
    fn linear(
        &mut self,
        node: &str,
        x: QTensor,
        out_name: &str,
        out_shape: Vec<usize>,
        weight: &[f32],
        in_features: usize,
        out_features: usize,
        bias: Option<Vec<f32>>,
    ) -> Result<QTensor, CompileError> {
        let natural = scale_for(max_abs(weight), self.cfg.weight_bits, 1.0);
        // Keep the later rescale's shift below act_bits so one remainder lookup suffices.
        let max_w = self.target_scale(out_name) + self.max_shift() - x.scale;
        let ws = natural.min(max_w);
        let acc_scale = x.scale + ws;
        let weight_q: Vec<i64> = weight
            .iter()
            .map(|&w| quantize_value(w as f64, ws))
            .collect();
        let bias_q = match bias {
            Some(b) => b
                .iter()
                .map(|&v| quantize_value(v as f64, acc_scale))
                .collect(),
            None => vec![0; out_features],
        };
        if weight_q
            .iter()
            .chain(&bias_q)
            .any(|v| v.unsigned_abs() >= 1 << 40)
        {
            return Err(CompileError::Quantize {
                node: node.to_string(),
                reason: "weights or bias too large to quantize at this scale".into(),
            });
        }
        let id = self.value(&format!("{out_name}/acc"), out_shape, acc_scale);
        self.ops.push(QOp::Linear(Linear {
            input: x.id,
            output: id,
            in_features,
            out_features,
            weight: weight_q,
            weight_scale: ws,
            bias: bias_q,
        }));
        Ok(QTensor {
            id,
            scale: acc_scale,
            at_target: false,
            nonneg: false,
        })
    }

    /// Average pooling as a linear layer with one output and weights `1 / window size`,
    /// applied to each (channel, position) window.
    fn pool(
        &mut self,
        node: &str,
        input: &str,
        out: &str,
        xs: &[usize],
        window: &crate::graph::Window,
        out_shape: &[usize],
    ) -> Result<QTensor, CompileError> {
        let (n, c, h, w) = (xs[0], xs[1], xs[2], xs[3]);
        let (oh, ow) = (out_shape[2], out_shape[3]);
        let (kh, kw) = (window.kernel[0], window.kernel[1]);
        let taps = window.taps(h, w, oh, ow);
        let index = (0..n * c)
            .flat_map(|plane| {
                taps.iter()
                    .flatten()
                    .map(move |t| t.map(|o| plane * h * w + o))
            })
            .collect();
        let x = self.bounded(input, node)?;
        let rows = n * c * oh * ow;
        let cols = self.gather(x, &format!("{out}/windows"), vec![rows, kh * kw], index);
        let weight = vec![1.0 / (kh * kw) as f32; kh * kw];
        let y = self.linear(node, cols, out, vec![rows, 1], &weight, kh * kw, 1, None)?;
        // rows are (plane, position): already NCHW order.
        let id = self.value(&format!("{out}/nchw"), out_shape.to_vec(), y.scale);
        self.ops.push(QOp::Reshape(Reshape {
            input: y.id,
            output: id,
        }));
        Ok(QTensor { id, ..y })
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

    /// `out = a + sign · b`, scales aligned by powers of two; either side may be a constant.
    fn add(
        &mut self,
        node: &str,
        a: &str,
        b: &str,
        sign: i64,
        out: &str,
        out_shape: &[usize],
    ) -> Result<QTensor, CompileError> {
        let unsupported = |reason: &str| CompileError::Quantize {
            node: node.to_string(),
            reason: reason.to_string(),
        };
        let (ca, cb) = (self.constant(a).cloned(), self.constant(b).cloned());
        match (ca, cb) {
            (Some(_), Some(_)) => Err(unsupported("both operands are constants; fold them first")),
            (None, None) => {
                // Both at their calibrated scales, so aligning them cannot inflate the scale
                // past what one rescale can bring back.
                let x = self.bounded(a, node)?;
                let x = self.broadcast(x, a, out_shape);
                let y = self.bounded(b, node)?;
                let y = self.broadcast(y, b, out_shape);
                let s = x.scale.max(y.scale);
                if s - x.scale.min(y.scale) > 40 {
                    return Err(unsupported("operand scales differ by more than 2^40"));
                }
                let id = self.value(out, out_shape.to_vec(), s);
                self.ops.push(QOp::Add(Add {
                    a: x.id,
                    b: AddOperand::Value {
                        id: y.id,
                        mul: sign * pow2(s - y.scale),
                    },
                    output: id,
                    a_mul: vec![pow2(s - x.scale)],
                }));
                Ok(QTensor {
                    id,
                    scale: s,
                    at_target: false,
                    nonneg: false,
                })
            }
            (ca, cb) => {
                // var ± c, or c ± var: the variable side times ±1 plus the constant.
                let (var, c, var_sign, c_sign) = match (ca, cb) {
                    (None, Some(c)) => (a, c, 1, sign),
                    (Some(c), _) => (b, c, sign, 1),
                    (None, None) => unreachable!("handled above"),
                };
                let x = self.get(var);
                let x = self.broadcast(x, var, out_shape);
                let idx = broadcast_index(&c.shape, out_shape);
                let k = idx
                    .iter()
                    .map(|&i| c_sign * quantize_value(c.data[i] as f64, x.scale))
                    .collect();
                Ok(self.affine(x, out, out_shape, vec![var_sign], k, x.scale))
            }
        }
    }

    /// `out = x · mul + k` with integer factors, at `scale`.
    fn affine(
        &mut self,
        x: QTensor,
        out: &str,
        out_shape: &[usize],
        mul: Vec<i64>,
        k: Vec<i64>,
        scale: i32,
    ) -> QTensor {
        let id = self.value(out, out_shape.to_vec(), scale);
        self.ops.push(QOp::Add(Add {
            a: x.id,
            b: AddOperand::Constant(k),
            output: id,
            a_mul: mul,
        }));
        QTensor {
            id,
            scale,
            at_target: false,
            nonneg: false,
        }
    }

    /// `out = x · factor + offset` element-wise with real factors: the factors get their
    /// own scale (like weights), the result is an accumulator at `scale(x) + that scale`.
    fn scale_and_shift(
        &mut self,
        node: &str,
        x: QTensor,
        out: &str,
        out_shape: &[usize],
        factors: &[f32],
        offsets: &[f32],
    ) -> Result<QTensor, CompileError> {
        let natural = scale_for(max_abs(factors), self.cfg.weight_bits, 1.0);
        let fs = natural.min(self.target_scale(out) + self.max_shift() - x.scale);
        let acc = x.scale + fs;
        let mul: Vec<i64> = factors
            .iter()
            .map(|&f| quantize_value(f as f64, fs))
            .collect();
        let k: Vec<i64> = offsets
            .iter()
            .map(|&b| quantize_value(b as f64, acc))
            .collect();
        if mul.iter().chain(&k).any(|v| v.unsigned_abs() >= 1 << 40) {
            return Err(CompileError::Quantize {
                node: node.to_string(),
                reason: "factors too large to quantize at this scale".into(),
            });
        }
        let mul = if mul.iter().all(|&m| m == mul[0]) {
            vec![mul[0]]
        } else {
            mul
        };
        Ok(self.affine(x, out, out_shape, mul, k, acc))
    }

    /// `m[r] = max_t x[index[r][t]]` as a chain of `max(m, v) = m + relu(v − m)`; every
    /// difference passes the ReLU lookup, so `x` must have a bit of headroom (or be ≥ 0).
    fn max_chain(&mut self, x: QTensor, out: &str, index: &[Vec<Option<usize>>]) -> QTensor {
        let rows = index.len();
        let width = index.first().map_or(0, |r| r.len());
        let tap = |q: &mut Self, t: usize| {
            let idx = index.iter().map(|r| r[t]).collect();
            q.gather(x, &format!("{out}/tap{t}"), vec![rows], idx)
        };
        let mut m = tap(self, 0);
        for t in 1..width {
            let v = tap(self, t);
            let d = self.value(&format!("{out}/d{t}"), vec![rows], x.scale);
            self.ops.push(QOp::Add(Add {
                a: v.id,
                b: AddOperand::Value { id: m.id, mul: -1 },
                output: d,
                a_mul: vec![1],
            }));
            let r = self.value(&format!("{out}/r{t}"), vec![rows], x.scale);
            self.ops.push(QOp::Rescale(Rescale {
                input: d,
                output: r,
                shift: 0,
                act: Activation::Relu,
            }));
            let next = self.value(&format!("{out}/m{t}"), vec![rows], x.scale);
            self.ops.push(QOp::Add(Add {
                a: r,
                b: AddOperand::Value { id: m.id, mul: 1 },
                output: next,
                a_mul: vec![1],
            }));
            m = QTensor { id: next, ..m };
        }
        m
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

    /// Sums groups of `len` consecutive elements, each times `weight` (at `weight_scale`).
    fn row_sum(
        &mut self,
        x: QTensor,
        name: &str,
        rows: usize,
        len: usize,
        weight: i64,
        weight_scale: i32,
    ) -> QTensor {
        let id = self.value(name, vec![rows, 1], x.scale + weight_scale);
        self.ops.push(QOp::Linear(Linear {
            input: x.id,
            output: id,
            in_features: len,
            out_features: 1,
            weight: vec![weight; len],
            weight_scale,
            bias: vec![0],
        }));
        QTensor {
            id,
            scale: x.scale + weight_scale,
            at_target: false,
            nonneg: x.nonneg && weight >= 0,
        }
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

    /// Softmax over the last axis: `e = exp(x − max)`, `y = e · (1 / Σ e)`. Ranges are
    /// known (`e ∈ (0, 1]`, `Σ e ∈ [1, len]`), so no calibration is needed inside.
    fn softmax(
        &mut self,
        node: &str,
        input: &str,
        out: &str,
        shape: &[usize],
    ) -> Result<QTensor, CompileError> {
        let bits = self.cfg.act_bits as i32;
        let len = *shape.last().unwrap_or(&1);
        let rows = shape.iter().product::<usize>() / len.max(1);
        let x = self.bounded(input, node)?;
        // One bit of headroom so x − max stays inside the lookup's range.
        let half = self.rescale_to(
            node,
            x,
            &format!("{out}/half"),
            &[rows, len],
            x.scale - 1,
            Activation::Identity,
        )?;
        let index: Vec<Vec<Option<usize>>> = (0..rows)
            .map(|r| (0..len).map(|j| Some(r * len + j)).collect())
            .collect();
        let m = self.max_chain(half, &format!("{out}/max"), &index);
        let m = self.spread(m, &format!("{out}/max_b"), rows, len);
        let d = self.value(&format!("{out}/shifted"), vec![rows, len], half.scale);
        self.ops.push(QOp::Add(Add {
            a: half.id,
            b: AddOperand::Value { id: m.id, mul: -1 },
            output: d,
            a_mul: vec![1],
        }));
        let d = QTensor { id: d, ..half };
        let e_scale = bits - 2;
        let exp = self.table(TableSpec {
            func: Func::Exp,
            in_scale: d.scale,
            out_scale: e_scale,
        });
        let e = self.rescale_to(
            node,
            d,
            &format!("{out}/exp"),
            &[rows, len],
            d.scale,
            Activation::Table(exp),
        )?;
        let e = QTensor { nonneg: true, ..e };
        let sum = self.row_sum(e, &format!("{out}/sum"), rows, len, 1, 0);
        let sum_scale = scale_for(len as f64, self.cfg.act_bits, 1.0).min(e_scale);
        let recip = self.table(TableSpec {
            func: Func::Reciprocal,
            in_scale: sum_scale,
            out_scale: e_scale,
        });
        let r = self.rescale_to(
            node,
            sum,
            &format!("{out}/recip"),
            &[rows, 1],
            sum_scale,
            Activation::Table(recip),
        )?;
        let r = self.spread(r, &format!("{out}/recip_b"), rows, len);
        let y = self.product(e, r, &format!("{out}/prod"), &[rows, len]);
        let id = self.value(out, shape.to_vec(), y.scale);
        self.ops.push(QOp::Reshape(Reshape {
            input: y.id,
            output: id,
        }));
        Ok(QTensor {
            id,
            nonneg: true,
            ..y
        })
    }

    /// LayerNormalization over the last axis: `(x − mean) · rsqrt(var + ε) · γ + β`.
    /// Ranges come from the input's calibrated bound `M`: `|x − mean| < 2M`, `var ≤ M²`,
    /// `|x − mean| · rsqrt(var) ≤ sqrt(len − 1)`.
    #[allow(clippy::too_many_arguments)]
    fn layer_norm(
        &mut self,
        node: &str,
        input: &str,
        out: &str,
        shape: &[usize],
        gamma: &[f32],
        beta: &[f32],
        epsilon: f32,
    ) -> Result<QTensor, CompileError> {
        let bits = self.cfg.act_bits as i32;
        let len = *shape.last().unwrap_or(&1);
        let rows = shape.iter().product::<usize>() / len.max(1);
        let x = self.bounded(input, node)?;
        let max_x =
            (self.cal.max_abs.get(input).copied().unwrap_or(0.0) as f64).max(2f64.powi(-x.scale));
        // mean = Σ x · round(2^(B-1) / len) / 2^(B-1)
        let wscale = bits - 1;
        let w = ((1i64 << wscale) as f64 / len as f64).round() as i64;
        let sum = self.row_sum(x, &format!("{out}/mean_acc"), rows, len, w, wscale);
        let mean = self.rescale_to(
            node,
            sum,
            &format!("{out}/mean"),
            &[rows, 1],
            x.scale,
            Activation::Identity,
        )?;
        let mean = self.spread(mean, &format!("{out}/mean_b"), rows, len);
        let c = self.value(&format!("{out}/centred_acc"), vec![rows, len], x.scale);
        self.ops.push(QOp::Add(Add {
            a: x.id,
            b: AddOperand::Value {
                id: mean.id,
                mul: -1,
            },
            output: c,
            a_mul: vec![1],
        }));
        let c = QTensor {
            id: c,
            at_target: false,
            nonneg: false,
            ..x
        };
        // |c| < 2^B at x's scale: one bit less keeps it bounded.
        let c = self.rescale_to(
            node,
            c,
            &format!("{out}/centred"),
            &[rows, len],
            x.scale - 1,
            Activation::Identity,
        )?;
        let sq = self.product(c, c, &format!("{out}/sq"), &[rows, len]);
        let sq = QTensor { nonneg: true, ..sq };
        let var = self.row_sum(sq, &format!("{out}/var_acc"), rows, len, w, wscale);
        let eps = quantize_value(epsilon as f64, var.scale).max(1);
        let var = self.affine(
            var,
            &format!("{out}/var_eps"),
            &[rows, 1],
            vec![1],
            vec![eps; rows],
            var.scale,
        );
        let v_scale = scale_for(max_x * max_x, self.cfg.act_bits, HEADROOM).min(var.scale);
        // var ≥ one unit at v_scale (ε included), so rsqrt(var) ≤ 2^(v_scale / 2).
        let r_scale = scale_for(2f64.powf(v_scale as f64 / 2.0), self.cfg.act_bits, 1.0);
        let rsqrt = self.table(TableSpec {
            func: Func::Rsqrt,
            in_scale: v_scale,
            out_scale: r_scale,
        });
        let r = self.rescale_to(
            node,
            var,
            &format!("{out}/rstd"),
            &[rows, 1],
            v_scale,
            Activation::Table(rsqrt),
        )?;
        let r = self.spread(r, &format!("{out}/rstd_b"), rows, len);
        let norm = self.product(c, r, &format!("{out}/normed_acc"), &[rows, len]);
        let n_scale = scale_for((len as f64).sqrt(), self.cfg.act_bits, 1.0).min(norm.scale);
        let norm = self.rescale_to(
            node,
            norm,
            &format!("{out}/normed"),
            &[rows, len],
            n_scale,
            Activation::Identity,
        )?;
        let fa: Vec<f32> = (0..rows * len).map(|i| gamma[i % len]).collect();
        let fb: Vec<f32> = (0..rows * len).map(|i| beta[i % len]).collect();
        self.scale_and_shift(node, norm, out, shape, &fa, &fb)
    }

    /// Max pooling as a chain of `max(m, t) = m + relu(t − m)` over the window taps; the
    /// ReLU's lookup bounds each difference, so inputs get one bit of headroom unless
    /// they are known non-negative.
    fn max_pool(
        &mut self,
        node: &str,
        input: &str,
        out: &str,
        window: &crate::graph::Window,
        out_shape: &[usize],
    ) -> Result<QTensor, CompileError> {
        let xs = self.shape(input);
        let (n, c, h, w) = (xs[0], xs[1], xs[2], xs[3]);
        let mut x = self.bounded(input, node)?;
        if !x.nonneg {
            if window.pads.iter().any(|&p| p > 0) {
                return Err(CompileError::Quantize {
                    node: node.to_string(),
                    reason: "padded max pooling of a possibly negative input is not supported"
                        .into(),
                });
            }
            let id = self.value(&format!("{input}/half"), xs.clone(), x.scale - 1);
            self.ops.push(QOp::Rescale(Rescale {
                input: x.id,
                output: id,
                shift: 1,
                act: Activation::Identity,
            }));
            x = QTensor {
                id,
                scale: x.scale - 1,
                ..x
            };
        }
        let taps = window.taps(h, w, out_shape[2], out_shape[3]);
        let index: Vec<Vec<Option<usize>>> = (0..n * c)
            .flat_map(|plane| {
                taps.iter()
                    .map(move |p| p.iter().map(|t| t.map(|o| plane * h * w + o)).collect())
            })
            .collect();
        let m = self.max_chain(x, out, &index);
        let id = self.value(out, out_shape.to_vec(), x.scale);
        self.ops.push(QOp::Reshape(Reshape {
            input: m.id,
            output: id,
        }));
        Ok(QTensor {
            id,
            scale: x.scale,
            at_target: true,
            nonneg: x.nonneg,
        })
    }

    /// The index of the table for `spec`, adding it on first use.
    fn table(&mut self, spec: TableSpec) -> usize {
        match self.tables.iter().position(|t| *t == spec) {
            Some(i) => i,
            None => {
                self.tables.push(spec);
                self.tables.len() - 1
            }
        }
    }

    /// `out = f(input)` through a lookup, fused with the rescale the input may need.
    fn unary(
        &mut self,
        node: &str,
        input: &str,
        out: &str,
        out_shape: &[usize],
        func: Func,
    ) -> Result<QTensor, CompileError> {
        let x = self.get(input);
        let shift = if x.at_target {
            0
        } else {
            (x.scale - self.target_scale(input)).max(0)
        };
        if shift > self.max_shift() {
            return Err(CompileError::Quantize {
                node: node.to_string(),
                reason:
                    "the rescale before this function exceeds the remainder check; use more --bits"
                        .into(),
            });
        }
        let out_scale = self.target_scale(out);
        let t = self.table(TableSpec {
            func,
            in_scale: x.scale - shift,
            out_scale,
        });
        let id = self.value(out, out_shape.to_vec(), out_scale);
        self.ops.push(QOp::Rescale(Rescale {
            input: x.id,
            output: id,
            shift: shift as u32,
            act: Activation::Table(t),
        }));
        Ok(QTensor {
            id,
            scale: out_scale,
            at_target: true,
            nonneg: matches!(func, Func::Exp | Func::Sigmoid | Func::Sqrt),
        })
    }

    /// `out = a · b` element-wise for two computed tensors (broadcast first).
    fn mul_values(
        &mut self,
        node: &str,
        a: &str,
        b: &str,
        out: &str,
        out_shape: &[usize],
    ) -> Result<QTensor, CompileError> {
        let x = self.bounded(a, node)?;
        let x = self.broadcast(x, a, out_shape);
        let y = self.bounded(b, node)?;
        let y = self.broadcast(y, b, out_shape);
        Ok(self.product(x, y, out, out_shape))
    }

    fn product(&mut self, x: QTensor, y: QTensor, out: &str, out_shape: &[usize]) -> QTensor {
        let scale = x.scale + y.scale;
        let id = self.value(out, out_shape.to_vec(), scale);
        self.ops.push(QOp::Mul(QMul {
            a: x.id,
            b: y.id,
            output: id,
        }));
        QTensor {
            id,
            scale,
            at_target: false,
            nonneg: x.nonneg && y.nonneg,
        }
    }

    /// `a · b` for two computed tensors (numpy matmul): every product is one row, and a
    /// linear layer with unit weights sums each dot product.
    fn matmul_values(
        &mut self,
        node: &str,
        a: &str,
        b: &str,
        out: &str,
        out_shape: &[usize],
    ) -> Result<QTensor, CompileError> {
        let (sa, sb) = (self.shape(a), self.shape(b));
        let Some((a2, b2, batch)) = crate::graph::matmul_dims(&sa, &sb) else {
            return Err(CompileError::Quantize {
                node: node.to_string(),
                reason: "shapes cannot be multiplied".into(),
            });
        };
        let (m, k, n) = (a2[a2.len() - 2], a2[a2.len() - 1], b2[b2.len() - 1]);
        let nb: usize = batch.iter().product();
        let ia = broadcast_index(&a2[..a2.len() - 2], &batch);
        let ib = broadcast_index(&b2[..b2.len() - 2], &batch);
        let rows = nb * m * n;
        let (mut ga, mut gb) = (Vec::with_capacity(rows * k), Vec::with_capacity(rows * k));
        for bi in 0..nb {
            for i in 0..m {
                for j in 0..n {
                    for p in 0..k {
                        ga.push(ia[bi] * m * k + i * k + p);
                        gb.push(ib[bi] * k * n + p * n + j);
                    }
                }
            }
        }
        let x = self.bounded(a, node)?;
        let y = self.bounded(b, node)?;
        let x = self.rearrange(x, &format!("{out}/lhs"), vec![rows, k], ga);
        let y = self.rearrange(y, &format!("{out}/rhs"), vec![rows, k], gb);
        let p = self.product(x, y, &format!("{out}/products"), &[rows, k]);
        let id = self.value(&format!("{out}/acc"), vec![rows, 1], p.scale);
        self.ops.push(QOp::Linear(Linear {
            input: p.id,
            output: id,
            in_features: k,
            out_features: 1,
            weight: vec![1; k],
            weight_scale: 0,
            bias: vec![0],
        }));
        let out_id = self.value(out, out_shape.to_vec(), p.scale);
        self.ops.push(QOp::Reshape(Reshape {
            input: id,
            output: out_id,
        }));
        Ok(QTensor {
            id: out_id,
            scale: p.scale,
            at_target: false,
            nonneg: false,
        })
    }

    fn node(&mut self, node: &crate::graph::Node) -> Result<(), CompileError> {
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
                let x = self.get(&node.inputs[0]);
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
                    (None, None) => {
                        return Err(unsupported(
                            "dividing by a computed tensor is not supported in this version",
                        ))
                    }
                    (Some(_), None) => {
                        return Err(unsupported(
                            "dividing by a computed tensor is not supported in this version",
                        ))
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
                let x = self.bounded(var, name)?;
                let x = self.broadcast(x, var, &out_shape);
                let zeros = vec![0f32; factors.len()];
                self.scale_and_shift(name, x, out, &out_shape, &factors, &zeros)?
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
                if *group != 1 {
                    return Err(unsupported(
                        "grouped convolution (group > 1) is not supported in this version",
                    ));
                }
                let input = &node.inputs[0];
                let xs = self.shape(input);
                if xs[0] != 1 {
                    return Err(unsupported("batch size above 1"));
                }
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
                let (cin, h, wd) = (xs[1], xs[2], xs[3]);
                let (cout, oh, ow) = (out_shape[1], out_shape[2], out_shape[3]);
                let (kh, kw) = (window.kernel[0], window.kernel[1]);
                // im2col: one row per output position, [cin, kh, kw] features (W's layout).
                let index = window
                    .taps(h, wd, oh, ow)
                    .iter()
                    .flat_map(|p| {
                        (0..cin).flat_map(move |c| p.iter().map(move |t| t.map(|o| c * h * wd + o)))
                    })
                    .collect();
                let x = self.bounded(input, name)?;
                let features = cin * kh * kw;
                let cols = self.gather(x, &format!("{out}/im2col"), vec![oh * ow, features], index);
                let y = self.linear(
                    name,
                    cols,
                    out,
                    vec![oh * ow, cout],
                    &w.data,
                    features,
                    cout,
                    bias,
                )?;
                // [positions, cout] → NCHW
                let back = (0..cout * oh * ow)
                    .map(|f| (f % (oh * ow)) * cout + f / (oh * ow))
                    .collect();
                self.rearrange(y, &format!("{out}/nchw"), out_shape.clone(), back)
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
                let window = crate::graph::Window {
                    kernel: [xs[2], xs[3]],
                    strides: [1, 1],
                    dilations: [1, 1],
                    pads: [0; 4],
                };
                self.pool(name, input, out, &xs, &window, &out_shape)?
            }
            Op::Relu => {
                let input = &node.inputs[0];
                let x = self.get(input);
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
                let x = self.get(&node.inputs[0]);
                let id = self.value(out, out_shape.clone(), x.scale);
                self.ops.push(QOp::Reshape(Reshape {
                    input: x.id,
                    output: id,
                }));
                QTensor { id, ..x }
            }
            Op::Transpose { perm } => {
                let input = &node.inputs[0];
                let x = self.get(input);
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
