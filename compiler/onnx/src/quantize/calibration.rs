//! Calibration (float ranges of every tensor) and the fidelity report.

use super::*;

/// Largest magnitude of every float tensor over the calibration samples.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub samples: usize,
    pub max_abs: BTreeMap<String, f32>,
    /// Largest magnitudes inside a node, which no tensor of the graph holds, by
    /// `{node output}/{what}`: a layer normalisation's variance (`var`) and reciprocal
    /// standard deviation (`rstd`), a softmax's largest difference within a row (`spread`).
    #[serde(default)]
    pub inner: BTreeMap<String, f32>,
}

pub fn calibrate(graph: &Graph, samples: &[Vec<f32>]) -> Result<Calibration, CompileError> {
    let mut cal = Calibration::default();
    for s in samples {
        let run = graph.run(s)?;
        for node in &graph.nodes {
            let Some(x) = node.inputs.first().and_then(|i| run.get(i)) else {
                continue;
            };
            let ranges = match node.op {
                Op::LayerNormalization { epsilon } => layer_norm_ranges(x, epsilon).to_vec(),
                Op::Softmax => vec![("spread", softmax_spread(x))],
                _ => continue,
            };
            for (what, m) in ranges {
                let e = cal
                    .inner
                    .entry(format!("{}/{what}", node.output))
                    .or_insert(0.0);
                *e = e.max(m);
            }
        }
        for (name, t) in run {
            let m = cal.max_abs.entry(name).or_insert(0.0);
            *m = m.max(t.max_abs());
        }
        cal.samples += 1;
    }
    Ok(cal)
}

/// The largest spread (largest minus smallest element) of a softmax's input rows.
fn softmax_spread(x: &Tensor) -> f32 {
    let len = *x.shape.last().unwrap_or(&1);
    x.data
        .chunks(len.max(1))
        .map(|r| {
            let (lo, hi) = r
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                });
            hi - lo
        })
        .fold(0f32, f32::max)
}

/// The largest variance and reciprocal standard deviation of a layer normalisation of
/// `x` over its last axis (as [`Graph::run`] computes them).
fn layer_norm_ranges(x: &Tensor, epsilon: f32) -> [(&'static str, f32); 2] {
    let len = *x.shape.last().unwrap_or(&1);
    let (mut var_max, mut rstd_max) = (0f32, 0f32);
    for r in x.data.chunks(len.max(1)) {
        let mean = r.iter().sum::<f32>() / len as f32;
        let var = r.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / len as f32;
        let rs = 1.0 / (var + epsilon).sqrt();
        var_max = var_max.max(var);
        rstd_max = rstd_max.max(rs);
    }
    [("var", var_max), ("rstd", rstd_max)]
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
    // The class vectors among the outputs (several are packed one after the other):
    // the argmax agrees when it does in each.
    let class_vector = |shape: &[usize]| shape.iter().filter(|&&d| d > 1).count() == 1;
    let mut classes = Vec::new();
    if graph.outputs.len() > 1 {
        let mut at = 0;
        for p in &graph.outputs {
            if class_vector(&p.shape) {
                classes.push(at..at + p.len());
            }
            at += p.len();
        }
    } else if class_vector(graph.output_shape()) {
        classes.push(0..graph.output_shape().iter().product());
    }
    let is_class_vector = !classes.is_empty();
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
        if classes
            .iter()
            .all(|r| argmax(&fo[r.clone()]) == argmax(&qo[r.clone()]))
        {
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

/// The quantization error of one tensor of the integer model: the largest
/// `|float − dequantized integer|` over the samples, against the float tensor's range.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerError {
    pub name: String,
    pub max_abs_error: f64,
    /// The float tensor's largest magnitude over the samples.
    pub max_abs: f64,
}

impl LayerError {
    /// The error relative to the range (0 for an all-zero tensor).
    pub fn relative(&self) -> f64 {
        if self.max_abs > 0.0 {
            self.max_abs_error / self.max_abs
        } else {
            0.0
        }
    }
}

/// The error layer by layer: every tensor of the integer model that is a tensor of the
/// float graph (the last value of its name, as many elements), in the integer model's order, compared
/// with it on every sample (the integer interpreter's trace, dequantized at the tensor's
/// scale, against the float interpreter's).
pub fn layer_errors(
    graph: &Graph,
    model: &QModel,
    samples: &[Vec<f32>],
) -> Result<Vec<LayerError>, CompileError> {
    // A tensor is the last integer value of its name (earlier ones are its accumulator
    // before a rescale, and the like).
    let last: BTreeMap<&str, usize> = model
        .values
        .iter()
        .enumerate()
        .map(|(i, v)| (v.name.as_str(), i))
        .collect();
    let mut layers: Vec<LayerError> = Vec::new();
    for (k, s) in samples.iter().enumerate() {
        let float = graph.run(s)?;
        let trace = model.run(&quantize_input(model, s))?;
        let mut at = 0;
        for (i, v) in model.values.iter().enumerate() {
            let Some(f) = float
                .get(&v.name)
                .filter(|f| f.data.len() == v.len() && last.get(v.name.as_str()) == Some(&i))
            else {
                continue;
            };
            let q = trace.get(zkinfer_qir::ValueId(i));
            let (mut err, mut range) = (0f64, 0f64);
            for (&a, &b) in f.data.iter().zip(q) {
                err = err.max((a as f64 - dequantize(b, v.scale)).abs());
                range = range.max((a as f64).abs());
            }
            if k == 0 {
                layers.push(LayerError {
                    name: v.name.clone(),
                    max_abs_error: err,
                    max_abs: range,
                });
            } else if let Some(l) = layers.get_mut(at) {
                l.max_abs_error = l.max_abs_error.max(err);
                l.max_abs = l.max_abs.max(range);
            }
            at += 1;
        }
    }
    Ok(layers)
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
