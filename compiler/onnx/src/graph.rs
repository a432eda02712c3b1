//! The float graph IR: typed ops with resolved shapes, and its interpreter.
//!
//! The interpreter is the float reference: calibration runs it to find each tensor's
//! range, and fidelity reports compare the quantized model against it.

use std::collections::BTreeMap;

use crate::CompileError;

/// A dense row-major f32 tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Tensor { shape, data }
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn max_abs(&self) -> f32 {
        self.data.iter().fold(0f32, |m, v| m.max(v.abs()))
    }
}

/// `Y = alpha · A' · B' + beta · C` with `A' = transA ? Aᵀ : A` (ONNX Gemm).
#[derive(Clone, Debug, PartialEq)]
pub struct Gemm {
    pub alpha: f32,
    pub beta: f32,
    pub trans_a: bool,
    pub trans_b: bool,
}

/// 2-D window geometry shared by Conv and pooling, with ONNX defaults resolved and
/// `auto_pad` turned into explicit pads.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    /// `[top, left, bottom, right]`
    pub pads: [usize; 4],
}

impl Window {
    /// Output height and width for an input of `h × w`.
    pub fn output(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let dim = |n: usize, k: usize, s: usize, d: usize, p: usize| {
            let span = d * (k - 1) + 1;
            (n + p >= span).then(|| (n + p - span) / s + 1)
        };
        Some((
            dim(
                h,
                self.kernel[0],
                self.strides[0],
                self.dilations[0],
                self.pads[0] + self.pads[2],
            )?,
            dim(
                w,
                self.kernel[1],
                self.strides[1],
                self.dilations[1],
                self.pads[1] + self.pads[3],
            )?,
        ))
    }

    /// For each output position of an `h × w` plane (row-major), its window's input
    /// offsets `ih · w + iw` in kernel order, `None` in the padding.
    pub fn taps(&self, h: usize, w: usize, oh: usize, ow: usize) -> Vec<Vec<Option<usize>>> {
        let (kh, kw) = (self.kernel[0], self.kernel[1]);
        (0..oh * ow)
            .map(|p| {
                (0..kh * kw)
                    .map(|t| {
                        self.source(p / ow, p % ow, t / kw, t % kw, h, w)
                            .map(|(ih, iw)| ih * w + iw)
                    })
                    .collect()
            })
            .collect()
    }

    /// For output position `(oh, ow)` and kernel offset `(kh, kw)`, the input position, or
    /// `None` in the padding.
    pub fn source(
        &self,
        oh: usize,
        ow: usize,
        kh: usize,
        kw: usize,
        h: usize,
        w: usize,
    ) -> Option<(usize, usize)> {
        let ih = (oh * self.strides[0] + kh * self.dilations[0]).checked_sub(self.pads[0])?;
        let iw = (ow * self.strides[1] + kw * self.dilations[1]).checked_sub(self.pads[1])?;
        (ih < h && iw < w).then_some((ih, iw))
    }
}

/// For each output element, the (input, element) it copies, or `None` for a zero.
pub type Sources = Vec<Option<(usize, usize)>>;

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Gemm(Gemm),
    /// 2-D convolution, NCHW, `group` groups; inputs X, W and optional B.
    Conv {
        window: Window,
        group: usize,
    },
    /// Mean over each window; padding counts only if `count_include_pad`.
    AveragePool {
        window: Window,
        count_include_pad: bool,
    },
    GlobalAveragePool,
    /// Maximum over each window (padding never wins).
    MaxPool {
        window: Window,
    },
    /// Inference-mode batch normalisation over axis 1; inputs X, scale, B, mean, var.
    BatchNormalization {
        epsilon: f32,
    },
    /// numpy `matmul` semantics, batch dimensions broadcast.
    MatMul,
    /// numpy-broadcasting element-wise arithmetic.
    Add,
    Sub,
    Mul,
    Div,
    /// ONNX's `Div` on integers, `trunc(a / b)`, by a constant divisor: quantized to an
    /// exact integer division (checked at compile time over every integer input whose
    /// quotient the truncation table holds).
    IntDiv,
    Neg,
    /// Softmax over the last axis.
    Softmax,
    /// Layer normalisation over the last axis; inputs X, scale and optional bias.
    LayerNormalization {
        epsilon: f32,
    },
    /// A smooth element-wise function (Exp, Erf, Sigmoid, Tanh, Sqrt, Reciprocal).
    Unary(zkinfer_qir::Func),
    Relu,
    /// Same elements, the output's shape (Reshape, Flatten).
    Reshape,
    Transpose {
        perm: Vec<usize>,
    },
    /// `y[i] = x[index[i]]`, or 0 where `None`: Slice, Gather with constant indices and
    /// zero Pad, resolved to an element map at import.
    Select {
        index: Vec<Option<usize>>,
    },
    /// `y[i] = inputs[k][j]` for `index[i] = (k, j)`: Concat, resolved to an element map
    /// at import.
    Concat {
        index: Sources,
    },
    /// The index of the first (`last`: last) largest (`max`, else smallest) element
    /// along `axis`, as a number.
    ArgExtreme {
        axis: usize,
        max: bool,
        last: bool,
    },
    /// `TopK`: the `k` largest (`largest`, else smallest) elements along `axis`, in
    /// order, equal values by lower index first; their values, or (`indices`) their
    /// indices as numbers. A node's two outputs are two nodes of the graph, which the
    /// quantizer lowers once.
    TopK {
        axis: usize,
        k: usize,
        largest: bool,
        indices: bool,
    },
    /// Element-wise over inputs broadcast to the output (numpy rules).
    Sum,
    Max,
    Min,
    /// ReduceSum / ReduceMean: output element `r` is the sum (or mean) of the input
    /// elements `index[r·len .. (r+1)·len]`.
    Reduce {
        index: Vec<usize>,
        len: usize,
        mean: bool,
    },
    Identity,
    /// The sum of every input element, as a tree of additions with no parameters (a
    /// certificate's count of correct predictions: its constants must not be hashed
    /// weights, which the prover chooses).
    Tally,
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Gemm(_) => "Gemm",
            Op::Conv { .. } => "Conv",
            Op::AveragePool { .. } => "AveragePool",
            Op::GlobalAveragePool => "GlobalAveragePool",
            Op::MaxPool { .. } => "MaxPool",
            Op::BatchNormalization { .. } => "BatchNormalization",
            Op::Sub => "Sub",
            Op::Mul => "Mul",
            Op::Div | Op::IntDiv => "Div",
            Op::Neg => "Neg",
            Op::Softmax => "Softmax",
            Op::LayerNormalization { .. } => "LayerNormalization",
            Op::Unary(f) => f.op_type(),
            Op::MatMul => "MatMul",
            Op::Add => "Add",
            Op::Relu => "Relu",
            Op::Reshape => "Reshape",
            Op::Transpose { .. } => "Transpose",
            Op::Select { .. } => "Select",
            Op::Concat { .. } => "Concat",
            Op::Sum => "Sum",
            Op::Max => "Max",
            Op::ArgExtreme { max: true, .. } => "ArgMax",
            Op::ArgExtreme { max: false, .. } => "ArgMin",
            Op::TopK { .. } => "TopK",
            Op::Min => "Min",
            Op::Reduce { mean: false, .. } => "ReduceSum",
            Op::Reduce { mean: true, .. } => "ReduceMean",
            Op::Identity => "Identity",
            Op::Tally => "Tally",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The ONNX node name, or `<op_type>_<index>` when the file leaves it empty.
    pub name: String,
    pub op: Op,
    /// Tensor names: graph input, constant (initializer) or another node's output.
    pub inputs: Vec<String>,
    pub output: String,
}

/// A model with one input and one output; nodes in topological order.
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    pub name: String,
    /// The one input tensor; with several graph inputs, their packing (see `inputs`).
    pub input: String,
    /// The one output tensor; with several graph outputs, their packing.
    pub output: String,
    /// The graph's inputs in order: one, or the parts `input` packs.
    pub inputs: Vec<zkinfer_qir::Part>,
    /// The graph's outputs in order: one, or the parts `output` packs.
    pub outputs: Vec<zkinfer_qir::Part>,
    pub nodes: Vec<Node>,
    pub constants: BTreeMap<String, Tensor>,
    /// The shape of every tensor: input, constants, node outputs.
    pub shapes: BTreeMap<String, Vec<usize>>,
}

impl Graph {
    pub fn input_shape(&self) -> &[usize] {
        &self.shapes[&self.input]
    }

    pub fn output_shape(&self) -> &[usize] {
        &self.shapes[&self.output]
    }

    /// Runs the float model; returns every tensor by name (constants excluded).
    pub fn run(&self, input: &[f32]) -> Result<BTreeMap<String, Tensor>, CompileError> {
        let shape = self.input_shape().to_vec();
        let expected: usize = shape.iter().product();
        if input.len() != expected {
            return Err(CompileError::InputData {
                reason: format!(
                    "the model input `{}` has shape {:?} ({} values), the sample has {}",
                    self.input,
                    shape,
                    expected,
                    input.len()
                ),
            });
        }
        let mut env: BTreeMap<String, Tensor> = BTreeMap::new();
        env.insert(self.input.clone(), Tensor::new(shape, input.to_vec()));
        for node in &self.nodes {
            let get = |i: usize| -> &Tensor {
                let name = &node.inputs[i];
                env.get(name)
                    .or_else(|| self.constants.get(name))
                    .unwrap_or_else(|| unreachable!("import checks that `{name}` is defined"))
            };
            let out_shape = self.shapes[&node.output].clone();
            let out = match &node.op {
                Op::Gemm(g) => {
                    let c = node.inputs.get(2).map(|_| get(2));
                    gemm(g, get(0), get(1), c, &out_shape)
                }
                Op::MatMul => matmul(get(0), get(1), &out_shape),
                Op::Conv { window, group } => {
                    let b = node.inputs.get(2).map(|_| get(2));
                    conv(get(0), get(1), b, window, *group, &out_shape)
                }
                Op::AveragePool {
                    window,
                    count_include_pad,
                } => average_pool(get(0), window, *count_include_pad, &out_shape),
                Op::GlobalAveragePool => {
                    let x = get(0);
                    let [_, _, h, w] = nchw(&x.shape);
                    let window = Window {
                        kernel: [h, w],
                        strides: [1, 1],
                        dilations: [1, 1],
                        pads: [0; 4],
                    };
                    average_pool(x, &window, false, &out_shape)
                }
                Op::Add => broadcast_binary(get(0), get(1), &out_shape, |a, b| a + b),
                Op::Sub => broadcast_binary(get(0), get(1), &out_shape, |a, b| a - b),
                Op::Mul => broadcast_binary(get(0), get(1), &out_shape, |a, b| a * b),
                Op::Div => broadcast_binary(get(0), get(1), &out_shape, |a, b| a / b),
                Op::IntDiv => broadcast_binary(get(0), get(1), &out_shape, |a, b| (a / b).trunc()),
                Op::Neg => Tensor::new(out_shape, get(0).data.iter().map(|v| -v).collect()),
                Op::Softmax => {
                    let x = get(0);
                    let len = *x.shape.last().unwrap_or(&1);
                    let data = x
                        .data
                        .chunks(len.max(1))
                        .flat_map(|r| {
                            let m = r.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                            let e: Vec<f32> = r.iter().map(|v| (v - m).exp()).collect();
                            let s: f32 = e.iter().sum();
                            e.into_iter().map(move |v| v / s)
                        })
                        .collect();
                    Tensor::new(out_shape, data)
                }
                Op::LayerNormalization { epsilon } => {
                    let x = get(0);
                    let g = get(1);
                    let b = node.inputs.get(2).map(|_| get(2));
                    let len = *x.shape.last().unwrap_or(&1);
                    let data = x
                        .data
                        .chunks(len.max(1))
                        .flat_map(|r| {
                            let mean = r.iter().sum::<f32>() / len as f32;
                            let var =
                                r.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / len as f32;
                            let rs = 1.0 / (var + epsilon).sqrt();
                            r.iter().enumerate().map(move |(j, v)| {
                                (v - mean) * rs * g.data[j] + b.map_or(0.0, |b| b.data[j])
                            })
                        })
                        .collect();
                    Tensor::new(out_shape, data)
                }
                Op::Unary(f) => Tensor::new(
                    out_shape,
                    get(0)
                        .data
                        .iter()
                        .map(|&v| f.eval(v as f64) as f32)
                        .collect(),
                ),
                Op::MaxPool { window } => max_pool(get(0), window, &out_shape),
                Op::BatchNormalization { epsilon } => {
                    let (a, b) = batch_norm_affine(get(1), get(2), get(3), get(4), *epsilon);
                    let x = get(0);
                    let (c, plane) = (x.shape[1], x.shape[2..].iter().product::<usize>());
                    let data = x.data.iter().enumerate().map(|(i, v)| {
                        let ch = (i / plane) % c;
                        v * a[ch] + b[ch]
                    });
                    Tensor::new(out_shape, data.collect())
                }
                Op::Relu => {
                    let x = get(0);
                    Tensor::new(out_shape, x.data.iter().map(|v| v.max(0.0)).collect())
                }
                Op::Reshape | Op::Identity => Tensor::new(out_shape, get(0).data.clone()),
                Op::Tally => Tensor::new(out_shape, vec![get(0).data.iter().sum()]),
                Op::ArgExtreme { axis, max, last } => {
                    let x = get(0);
                    let len = x.shape[*axis];
                    let inner: usize = x.shape[axis + 1..].iter().product();
                    let outer = x.data.len() / (len * inner).max(1);
                    let better = |v: f32, best: f32| match (*max, *last) {
                        (true, false) => v > best,
                        (true, true) => v >= best,
                        (false, false) => v < best,
                        (false, true) => v <= best,
                    };
                    let data = (0..outer * inner)
                        .map(|r| {
                            let at = |t: usize| x.data[((r / inner) * len + t) * inner + r % inner];
                            let best =
                                (1..len).fold(0, |b, t| if better(at(t), at(b)) { t } else { b });
                            best as f32
                        })
                        .collect();
                    Tensor::new(out_shape, data)
                }
                Op::TopK {
                    axis,
                    k,
                    largest,
                    indices,
                } => {
                    let x = get(0);
                    let len = x.shape[*axis];
                    let inner: usize = x.shape[axis + 1..].iter().product();
                    let outer = x.data.len() / (len * inner).max(1);
                    let mut data = vec![0.0; outer * k * inner];
                    for o in 0..outer {
                        for i in 0..inner {
                            let at = |t: usize| x.data[(o * len + t) * inner + i];
                            let mut order: Vec<usize> = (0..len).collect();
                            // Stable: equal values keep the lower index first.
                            order.sort_by(|&a, &b| {
                                let c = at(a).total_cmp(&at(b));
                                if *largest {
                                    c.reverse()
                                } else {
                                    c
                                }
                            });
                            for (j, &t) in order.iter().take(*k).enumerate() {
                                data[(o * k + j) * inner + i] =
                                    if *indices { t as f32 } else { at(t) };
                            }
                        }
                    }
                    Tensor::new(out_shape, data)
                }
                Op::Sum | Op::Max | Op::Min => {
                    let f = match node.op {
                        Op::Sum => |a: f32, b: f32| a + b,
                        Op::Max => f32::max,
                        _ => f32::min,
                    };
                    let first = broadcast_binary(get(0), get(0), &out_shape, |a, _| a);
                    (1..node.inputs.len()).fold(first, |acc, i| {
                        broadcast_binary(&acc, get(i), &out_shape, f)
                    })
                }
                Op::Reduce { index, len, mean } => {
                    let x = get(0);
                    let div = if *mean { *len as f32 } else { 1.0 };
                    let data = index
                        .chunks((*len).max(1))
                        .map(|r| r.iter().map(|&j| x.data[j]).sum::<f32>() / div)
                        .collect();
                    Tensor::new(out_shape, data)
                }
                Op::Concat { index } => Tensor::new(
                    out_shape,
                    index
                        .iter()
                        .map(|at| at.map_or(0.0, |(k, j)| get(k).data[j]))
                        .collect(),
                ),
                Op::Select { index } => {
                    let x = get(0);
                    Tensor::new(
                        out_shape,
                        index.iter().map(|j| j.map_or(0.0, |j| x.data[j])).collect(),
                    )
                }
                Op::Transpose { perm } => {
                    let x = get(0);
                    let index = transpose_index(&x.shape, perm);
                    Tensor::new(out_shape, index.iter().map(|&i| x.data[i]).collect())
                }
            };
            env.insert(node.output.clone(), out);
        }
        Ok(env)
    }
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// For each element of the output of `Transpose(perm)` on `shape`, the input index.
pub fn transpose_index(shape: &[usize], perm: &[usize]) -> Vec<usize> {
    let in_strides = strides(shape);
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let n: usize = out_shape.iter().product();
    let out_strides = strides(&out_shape);
    (0..n)
        .map(|flat| {
            let mut src = 0;
            for (axis, &p) in perm.iter().enumerate() {
                let coord = (flat / out_strides[axis]) % out_shape[axis];
                src += coord * in_strides[p];
            }
            src
        })
        .collect()
}

/// numpy broadcast of two shapes, or `None` when they are incompatible.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| {
        if i + s.len() >= rank {
            s[i + s.len() - rank]
        } else {
            1
        }
    };
    (0..rank)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// For each element of a tensor of shape `out`, the index of the element of a tensor of
/// shape `from` that numpy broadcasting reads.
pub fn broadcast_index(from: &[usize], out: &[usize]) -> Vec<usize> {
    let rank = out.len();
    let offset = rank - from.len();
    let from_strides = strides(from);
    let out_strides = strides(out);
    let n: usize = out.iter().product();
    (0..n)
        .map(|flat| {
            let mut src = 0;
            for (i, &d) in from.iter().enumerate() {
                if d != 1 {
                    let coord = (flat / out_strides[i + offset]) % out[i + offset];
                    src += coord * from_strides[i];
                }
            }
            src
        })
        .collect()
}

fn broadcast_binary(a: &Tensor, b: &Tensor, out: &[usize], f: impl Fn(f32, f32) -> f32) -> Tensor {
    let ia = broadcast_index(&a.shape, out);
    let ib = broadcast_index(&b.shape, out);
    let data = ia
        .iter()
        .zip(&ib)
        .map(|(&i, &j)| f(a.data[i], b.data[j]))
        .collect();
    Tensor::new(out.to_vec(), data)
}

fn gemm(g: &Gemm, a: &Tensor, b: &Tensor, c: Option<&Tensor>, out: &[usize]) -> Tensor {
    let (m, n) = (out[0], out[1]);
    let k = if g.trans_a { a.shape[0] } else { a.shape[1] };
    let at = |i: usize, p: usize| {
        if g.trans_a {
            a.data[p * m + i]
        } else {
            a.data[i * k + p]
        }
    };
    let bt = |p: usize, j: usize| {
        if g.trans_b {
            b.data[j * k + p]
        } else {
            b.data[p * n + j]
        }
    };
    let ci = c.map(|c| broadcast_index(&c.shape, out));
    let mut data = Vec::with_capacity(m * n);
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0f32;
            for p in 0..k {
                acc += at(i, p) * bt(p, j);
            }
            let mut v = g.alpha * acc;
            if let (Some(c), Some(ci)) = (c, &ci) {
                v += g.beta * c.data[ci[i * n + j]];
            }
            data.push(v);
        }
    }
    Tensor::new(out.to_vec(), data)
}

/// `[N, C, H, W]` of a 2-D tensor, `[N, C, 1, L]` of a 1-D one (`[N, C, L]`, as 1-D
/// convolution and pooling take it): one code path for both.
pub fn nchw(shape: &[usize]) -> [usize; 4] {
    match *shape {
        [n, c, h, w] => [n, c, h, w],
        [n, c, l] => [n, c, 1, l],
        // The importer admits rank 3 and 4 only.
        _ => [1, 1, 1, shape.iter().product()],
    }
}

fn conv(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    win: &Window,
    group: usize,
    out: &[usize],
) -> Tensor {
    let [n, cin, h, wd] = nchw(&x.shape);
    let [_, cout, oh, ow] = nchw(out);
    let (cin_g, cout_g) = (cin / group, cout / group);
    let (kh, kw) = (win.kernel[0], win.kernel[1]);
    let mut data = vec![0f32; n * cout * oh * ow];
    for bi in 0..n {
        for co in 0..cout {
            let g = co / cout_g;
            for y in 0..oh {
                for xo in 0..ow {
                    let mut acc = b.map_or(0.0, |b| b.data[co]);
                    for ci in 0..cin_g {
                        let c = g * cin_g + ci;
                        for i in 0..kh {
                            for j in 0..kw {
                                if let Some((ih, iw)) = win.source(y, xo, i, j, h, wd) {
                                    acc += x.data[((bi * cin + c) * h + ih) * wd + iw]
                                        * w.data[((co * cin_g + ci) * kh + i) * kw + j];
                                }
                            }
                        }
                    }
                    data[((bi * cout + co) * oh + y) * ow + xo] = acc;
                }
            }
        }
    }
    Tensor::new(out.to_vec(), data)
}

/// Per-channel `(a, b)` with `BatchNormalization(x) = a · x + b`.
pub fn batch_norm_affine(
    scale: &Tensor,
    bias: &Tensor,
    mean: &Tensor,
    var: &Tensor,
    epsilon: f32,
) -> (Vec<f32>, Vec<f32>) {
    let a: Vec<f32> = scale
        .data
        .iter()
        .zip(&var.data)
        .map(|(g, v)| g / (v + epsilon).sqrt())
        .collect();
    let b = bias
        .data
        .iter()
        .zip(&mean.data)
        .zip(&a)
        .map(|((beta, m), a)| beta - m * a)
        .collect();
    (a, b)
}

fn max_pool(x: &Tensor, win: &Window, out: &[usize]) -> Tensor {
    let [n, c, h, w] = nchw(&x.shape);
    let [_, _, oh, ow] = nchw(out);
    let taps = win.taps(h, w, oh, ow);
    let data = (0..n * c)
        .flat_map(|plane| {
            taps.iter().map(move |t| {
                t.iter()
                    .flatten()
                    .map(|o| x.data[plane * h * w + o])
                    .fold(f32::NEG_INFINITY, f32::max)
            })
        })
        .collect();
    Tensor::new(out.to_vec(), data)
}

fn average_pool(x: &Tensor, win: &Window, count_include_pad: bool, out: &[usize]) -> Tensor {
    let [n, c, h, w] = nchw(&x.shape);
    let [_, _, oh, ow] = nchw(out);
    let mut data = Vec::with_capacity(n * c * oh * ow);
    for plane in 0..n * c {
        for y in 0..oh {
            for xo in 0..ow {
                let (mut acc, mut count) = (0f32, 0usize);
                for i in 0..win.kernel[0] {
                    for j in 0..win.kernel[1] {
                        if let Some((ih, iw)) = win.source(y, xo, i, j, h, w) {
                            acc += x.data[(plane * h + ih) * w + iw];
                            count += 1;
                        }
                    }
                }
                let count = if count_include_pad {
                    win.kernel[0] * win.kernel[1]
                } else {
                    count
                };
                data.push(acc / count.max(1) as f32);
            }
        }
    }
    Tensor::new(out.to_vec(), data)
}

/// Shapes of a matmul's operands as numpy sees them: 1-D operands are promoted.
pub fn matmul_dims(a: &[usize], b: &[usize]) -> Option<(Vec<usize>, Vec<usize>, Vec<usize>)> {
    let a2 = if a.len() == 1 {
        vec![1, a[0]]
    } else {
        a.to_vec()
    };
    let b2 = if b.len() == 1 {
        vec![b[0], 1]
    } else {
        b.to_vec()
    };
    if a2.len() < 2 || b2.len() < 2 || a2[a2.len() - 1] != b2[b2.len() - 2] {
        return None;
    }
    let batch = broadcast_shape(&a2[..a2.len() - 2], &b2[..b2.len() - 2])?;
    Some((a2, b2, batch))
}

fn matmul(a: &Tensor, b: &Tensor, out: &[usize]) -> Tensor {
    let Some((a2, b2, batch)) = matmul_dims(&a.shape, &b.shape) else {
        unreachable!("import checks matmul shapes")
    };
    let (m, k, n) = (a2[a2.len() - 2], a2[a2.len() - 1], b2[b2.len() - 1]);
    let nb: usize = batch.iter().product();
    let ia = broadcast_index(&a2[..a2.len() - 2], &batch);
    let ib = broadcast_index(&b2[..b2.len() - 2], &batch);
    let mut data = Vec::with_capacity(nb * m * n);
    for bi in 0..nb {
        let (oa, ob) = (ia[bi] * m * k, ib[bi] * k * n);
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0f32;
                for p in 0..k {
                    acc += a.data[oa + i * k + p] * b.data[ob + p * n + j];
                }
                data.push(acc);
            }
        }
    }
    Tensor::new(out.to_vec(), data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_swaps_axes() {
        // [[0,1,2],[3,4,5]] -> [[0,3],[1,4],[2,5]]
        assert_eq!(transpose_index(&[2, 3], &[1, 0]), vec![0, 3, 1, 4, 2, 5]);
    }

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast_shape(&[2, 3], &[3]), Some(vec![2, 3]));
        assert_eq!(broadcast_shape(&[2, 1], &[1, 4]), Some(vec![2, 4]));
        assert_eq!(broadcast_shape(&[2, 3], &[2]), None);
        assert_eq!(broadcast_index(&[3], &[2, 3]), vec![0, 1, 2, 0, 1, 2]);
        assert_eq!(broadcast_index(&[2, 1], &[2, 3]), vec![0, 0, 0, 1, 1, 1]);
    }

    #[test]
    fn gemm_honours_every_attribute() {
        // A = [[1,2]] (1x2), B^T stored as [[1,0],[0,1],[1,1]] (3x2), C = [1,1,1]
        let a = Tensor::new(vec![1, 2], vec![1.0, 2.0]);
        let b = Tensor::new(vec![3, 2], vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
        let c = Tensor::new(vec![3], vec![1.0, 1.0, 1.0]);
        let g = Gemm {
            alpha: 2.0,
            beta: 0.5,
            trans_a: false,
            trans_b: true,
        };
        let y = gemm(&g, &a, &b, Some(&c), &[1, 3]);
        assert_eq!(y.data, vec![2.5, 4.5, 6.5]);
        // transA: A stored as [[1],[2]] (2x1)
        let at = Tensor::new(vec![2, 1], vec![1.0, 2.0]);
        let g = Gemm { trans_a: true, ..g };
        assert_eq!(
            gemm(&g, &at, &b, Some(&c), &[1, 3]).data,
            vec![2.5, 4.5, 6.5]
        );
    }

    #[test]
    fn matmul_broadcasts_batches() {
        let a = Tensor::new(vec![2, 1, 2], vec![1.0, 2.0, 3.0, 4.0]);
        let b = Tensor::new(vec![2, 1], vec![1.0, 1.0]);
        assert_eq!(matmul(&a, &b, &[2, 1, 1]).data, vec![3.0, 7.0]);
    }
}
