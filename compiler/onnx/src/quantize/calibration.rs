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
    /// Every tensor's range robust to outliers: the magnitude that all but one in
    /// [`OUTLIERS`] of its elements over all samples lie within (to 1/8 of an octave,
    /// never above its largest). Where it is well below the largest, a range narrowed
    /// towards it ([`crate::TensorWidths::ranges`]) gives the other elements finer steps.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub robust: BTreeMap<String, f32>,
}

/// The share of a tensor's elements that may lie beyond its robust range.
pub const OUTLIERS: f64 = 1e-4;

/// Magnitudes by octave eighths, from 2^-64 to 2^64: enough to find a quantile of a
/// tensor's elements over many samples without keeping them.
#[derive(Clone, Debug)]
struct Magnitudes {
    zeros: u64,
    bins: Vec<u64>,
}

impl Magnitudes {
    const PER_OCTAVE: f64 = 8.0;
    const LOWEST: f64 = -64.0;
    const BINS: usize = 1024;

    fn new() -> Self {
        Magnitudes {
            zeros: 0,
            bins: vec![0; Self::BINS],
        }
    }

    fn add(&mut self, data: &[f32]) {
        for &v in data {
            let m = f64::from(v.abs());
            if m == 0.0 || !m.is_finite() {
                self.zeros += 1;
                continue;
            }
            let bin = ((m.log2() - Self::LOWEST) * Self::PER_OCTAVE).floor();
            self.bins[bin.clamp(0.0, (Self::BINS - 1) as f64) as usize] += 1;
        }
    }

    /// The upper edge of the lowest bin above which at most `share` of the elements lie.
    fn quantile(&self, share: f64) -> f64 {
        let total = self.zeros + self.bins.iter().sum::<u64>();
        let allowed = (total as f64 * share).floor() as u64;
        let mut above = 0u64;
        for (i, &n) in self.bins.iter().enumerate().rev() {
            if above + n > allowed {
                return 2f64.powf((i + 1) as f64 / Self::PER_OCTAVE + Self::LOWEST);
            }
            above += n;
        }
        0.0
    }
}

/// Refuses a sample on which a tensor is not finite (a logarithm of 0 or of a negative
/// number, a division by 0): a circuit proves finite numbers only, and a range that
/// skipped it would be silently wrong.
pub fn calibrate(graph: &Graph, samples: &[Vec<f32>]) -> Result<Calibration, CompileError> {
    let mut cal = Calibration::default();
    let mut magnitudes: BTreeMap<String, Magnitudes> = BTreeMap::new();
    for (k, s) in samples.iter().enumerate() {
        let run = graph.run(s)?;
        if let Some(node) = graph.nodes.iter().find(|n| {
            run.get(&n.output)
                .is_some_and(|t| t.data.iter().any(|v| !v.is_finite()))
        }) {
            return Err(CompileError::Quantize {
                node: node.output.clone(),
                reason: format!(
                    "on calibration sample {k} its {} gives a value that is not a finite number (a circuit proves finite numbers only)",
                    node.op.name()
                ),
            });
        }
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
            magnitudes
                .entry(name.clone())
                .or_insert_with(Magnitudes::new)
                .add(&t.data);
            let m = cal.max_abs.entry(name).or_insert(0.0);
            *m = m.max(t.max_abs());
        }
        cal.samples += 1;
    }
    for (name, m) in magnitudes {
        let largest = cal.max_abs.get(&name).copied().unwrap_or(0.0);
        cal.robust
            .insert(name, (m.quantile(OUTLIERS) as f32).min(largest));
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

/// `f` of every sample, in order, on as many threads as the machine has (the float and
/// integer interpreters are single-threaded, and each sample is independent).
fn per_sample<T: Send>(
    samples: &[Vec<f32>],
    f: impl Fn(&[f32]) -> Result<T, CompileError> + Sync,
) -> Result<Vec<T>, CompileError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || samples.len() < 2 {
        return samples.iter().map(|s| f(s)).collect();
    }
    let chunk = samples.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = samples
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|s| f(s)).collect::<Vec<_>>()))
            .collect();
        let mut all = Vec::with_capacity(samples.len());
        for h in handles {
            match h.join() {
                Ok(results) => all.extend(results),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all.into_iter().collect()
    })
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
    let outputs = per_sample(samples, |s| {
        let float = graph.run(s)?;
        let fo: Vec<f64> = float[&graph.output]
            .data
            .iter()
            .map(|&v| v as f64)
            .collect();
        Ok((fo, run_quantized(model, s)?))
    })?;
    for (fo, qo) in outputs {
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
    // Per sample: each tensor's (largest error, largest magnitude), in model order.
    let runs = per_sample(samples, |s| {
        let float = graph.run(s)?;
        let trace = model.run(&quantize_input(model, s))?;
        let mut tensors = Vec::new();
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
            tensors.push((v.name.clone(), err, range));
        }
        Ok(tensors)
    })?;
    let mut layers: Vec<LayerError> = Vec::new();
    for (k, tensors) in runs.into_iter().enumerate() {
        for (at, (name, err, range)) in tensors.into_iter().enumerate() {
            if k == 0 {
                layers.push(LayerError {
                    name,
                    max_abs_error: err,
                    max_abs: range,
                });
            } else if let Some(l) = layers.get_mut(at) {
                l.max_abs_error = l.max_abs_error.max(err);
                l.max_abs = l.max_abs.max(range);
            }
        }
    }
    Ok(layers)
}

/// Where the error grows: every node's output tensor whose relative error (of `layers`)
/// is above the largest of its inputs', with that growth, largest first. A node whose
/// output `layers` does not hold (an accumulator its consumer rescales, say) shares the
/// growth of the nearest measured node it feeds, and its inputs stand for it there.
pub fn error_growth(graph: &Graph, layers: &[LayerError]) -> Vec<(String, f64)> {
    let rel: BTreeMap<&str, f64> = layers
        .iter()
        .map(|l| (l.name.as_str(), l.relative()))
        .collect();
    let producer: BTreeMap<&str, &crate::graph::Node> =
        graph.nodes.iter().map(|n| (n.output.as_str(), n)).collect();
    // The unmeasured nodes behind `name` (through unmeasured nodes only), and the largest
    // relative error of the measured tensors they read.
    fn behind<'g>(
        name: &'g str,
        rel: &BTreeMap<&str, f64>,
        producer: &BTreeMap<&str, &'g crate::graph::Node>,
        nodes: &mut Vec<&'g str>,
    ) -> f64 {
        if let Some(&r) = rel.get(name) {
            return r;
        }
        let Some(n) = producer.get(name) else {
            return 0.0; // a constant
        };
        if nodes.contains(&name) {
            return 0.0;
        }
        nodes.push(name);
        n.inputs
            .iter()
            .map(|i| behind(i, rel, producer, nodes))
            .fold(0f64, f64::max)
    }
    let mut grows: BTreeMap<String, f64> = BTreeMap::new();
    for n in &graph.nodes {
        let Some(&out) = rel.get(n.output.as_str()) else {
            continue;
        };
        let mut unmeasured = Vec::new();
        let from = n
            .inputs
            .iter()
            .map(|i| behind(i, &rel, &producer, &mut unmeasured))
            .fold(0f64, f64::max);
        if out > from {
            for name in std::iter::once(n.output.as_str()).chain(unmeasured) {
                let g = grows.entry(name.to_string()).or_insert(0.0);
                *g = g.max(out - from);
            }
        }
    }
    let mut grows: Vec<(String, f64)> = grows.into_iter().collect();
    grows.sort_by(|a, b| b.1.total_cmp(&a.1));
    grows
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
