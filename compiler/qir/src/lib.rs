//! The quantized integer IR (QIR) and its reference interpreter.
//!
//! A [`QModel`] is what a zkinfer circuit proves: a list of integer operations on
//! fixed-point tensors. [`QModel::run`] is the reference semantics; every chip in
//! `zkinfer-circuits` is tested against it, and witness generation reads its
//! [`Trace`]. The IR is plain data (serde) so it can be stored in the compiled
//! artifact and reloaded by the prover.
//!
//! Number format: a value `v` with scale `s` stands for the real number `v / 2^s`.
//! Values produced by a [`Rescale`] are *bounded*: they lie in
//! `[-2^(act_bits-1), 2^(act_bits-1))`, which the circuit enforces with a lookup.

use std::ops::Range;

use serde::{Deserialize, Serialize};

mod segment;
mod split;
pub use segment::Segment;

/// Index of a tensor in [`QModel::values`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ValueId(pub usize);

/// A tensor of the integer model: its name (from the ONNX graph), shape and scale.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QValue {
    pub name: String,
    pub shape: Vec<usize>,
    /// Fixed-point scale: the integer `v` means `v / 2^scale`.
    pub scale: i32,
}

impl QValue {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `y[r, n] = bias[n or r·N+n] + Σ_m x[r, m] · weight[n, m]` for every row `r` of the input
/// (all leading dimensions flattened). No rescale: the output has scale
/// `scale(x) + weight_scale`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Linear {
    pub input: ValueId,
    pub output: ValueId,
    pub in_features: usize,
    pub out_features: usize,
    /// Row-major `[out_features, in_features]`.
    pub weight: Vec<i64>,
    pub weight_scale: i32,
    /// `out_features` entries (broadcast over rows) or `rows · out_features`.
    pub bias: Vec<i64>,
}

impl Linear {
    /// Number of independent input rows the layer is applied to.
    pub fn rows(&self, model: &QModel) -> usize {
        model.value(self.input).len() / self.in_features.max(1)
    }

    pub fn bias_for(&self, row: usize, n: usize) -> i64 {
        if self.bias.len() == self.out_features {
            self.bias[n]
        } else {
            self.bias[row * self.out_features + n]
        }
    }
}

/// `y = floor(x / 2^shift)`, checked to be bounded; then `z = act(y)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rescale {
    pub input: ValueId,
    pub output: ValueId,
    pub shift: u32,
    pub act: Activation,
}

/// What a rescale applies to its bounded result: nothing, ReLU, or a tabulated function
/// (`QModel::tables[i]`). All three are one lookup in the circuit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    Identity,
    Relu,
    Table(usize),
}

/// A real constant of a tabulated function, compared by its bits (so functions are `Eq`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Real(pub f64);

impl PartialEq for Real {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Real {}

/// One tensor of a model with several inputs (or outputs), which are packed, in order,
/// into the one input (output) vector the circuit proves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    pub name: String,
    pub shape: Vec<usize>,
    /// An integer or boolean ONNX input (read as numbers: exact while the input's scale
    /// is at least 2^0).
    #[serde(default)]
    pub integer: bool,
}

impl Part {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A function tabulated over the bounded input range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Func {
    Exp,
    Erf,
    Sigmoid,
    Tanh,
    Sqrt,
    Rsqrt,
    Reciprocal,
    /// `min(max(x, min), max)`.
    Clip {
        min: Real,
        max: Real,
    },
    /// `x` for `x ≥ 0`, else `alpha · x`.
    LeakyRelu {
        alpha: Real,
    },
    Abs,
    Sign,
    Floor,
    Ceil,
    /// Round half to even, as ONNX's `Round`.
    Round,
    /// Rounds toward zero: a cast to an integer type.
    Trunc,
    /// `1` where `x ≠ 0`, else `0`: a cast to bool, `Or` and `Xor` of 0/1 values.
    NonZero,
    /// `1` where `x = 0`, else `0`: `Equal` of a difference, `Not`.
    IsZero,
    /// `1` where `x < 0`, else `0`: `Less` and `Greater` of a difference.
    Negative,
    /// `1` where `x ≥ 0`, else `0`: `LessOrEqual` and `GreaterOrEqual` of a difference.
    NonNegative,
    /// The index the largest `ArgMax`/`ArgMin` rank `x` stands for: `len − x`, or
    /// `x − 1` when the last index is selected.
    ArgIndex {
        len: u32,
        last: bool,
    },
    Log,
    Softplus,
    Softsign,
    HardSwish,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Asinh,
    Acosh,
    Atanh,
    /// `x^exponent` for a constant exponent.
    Pow {
        exponent: Real,
    },
    /// `x` for `x ≥ 0`, else `alpha · (e^x − 1)`.
    Elu {
        alpha: Real,
    },
    /// `max(0, x) + min(0, alpha · (e^(x / alpha) − 1))`.
    Celu {
        alpha: Real,
    },
    /// `gamma · x` for `x > 0`, else `gamma · alpha · (e^x − 1)`.
    Selu {
        alpha: Real,
        gamma: Real,
    },
    /// `max(0, min(1, alpha · x + beta))`.
    HardSigmoid {
        alpha: Real,
        beta: Real,
    },
    /// `x` for `x > alpha`, else `0`.
    ThresholdedRelu {
        alpha: Real,
    },
    /// `x · Φ(x)` (`0.5 · x · (1 + erf(x / √2))`), or with `tanh` its approximation
    /// `0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))`, as ONNX's `Gelu`.
    Gelu {
        tanh: bool,
    },
    /// `x · tanh(ln(1 + e^x))`.
    Mish,
    /// `x + bias` for `x < −lambd`, `x − bias` for `x > lambd`, else `0`.
    Shrink {
        bias: Real,
        lambd: Real,
    },
    /// The two halves of a saturating rescale (`zkinfer-compiler`'s narrowed ranges), read
    /// on the multiples of `range` that a value's high part stands for: with `select`,
    /// `1` where `−range ≤ x < range` (the value is inside its range), else `0`; without,
    /// `x` clamped to `[−range, range]` (a table's output then saturates `range` itself
    /// to the largest value its width holds).
    Saturate {
        range: Real,
        select: bool,
    },
    /// ONNX's `QuantizeLinear` of one scale: `round(x / scale) + zero_point` (half to
    /// even), saturated to `[min, max]` (the zero point's type).
    Quantize {
        scale: Real,
        zero_point: i64,
        min: i64,
        max: i64,
    },
}

impl Func {
    pub fn eval(self, x: f64) -> f64 {
        match self {
            Func::Exp => x.exp(),
            Func::Erf => erf(x),
            Func::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Func::Tanh => x.tanh(),
            Func::Sqrt => x.max(0.0).sqrt(),
            Func::Rsqrt => 1.0 / x.sqrt(),
            Func::Reciprocal => 1.0 / x,
            Func::Clip { min, max } => x.max(min.0).min(max.0),
            Func::LeakyRelu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha.0 * x
                }
            }
            Func::Abs => x.abs(),
            Func::Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }
            Func::Floor => x.floor(),
            Func::Ceil => x.ceil(),
            Func::Round => x.round_ties_even(),
            Func::Trunc => x.trunc(),
            Func::NonZero => f64::from(u8::from(x != 0.0)),
            Func::IsZero => f64::from(u8::from(x == 0.0)),
            Func::Negative => f64::from(u8::from(x < 0.0)),
            Func::NonNegative => f64::from(u8::from(x >= 0.0)),
            Func::ArgIndex { len, last } => {
                if last {
                    x - 1.0
                } else {
                    f64::from(len) - x
                }
            }
            Func::Log => x.ln(),
            // ln(1 + e^x), without overflow for large x.
            Func::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
            Func::Softsign => x / (1.0 + x.abs()),
            Func::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
            Func::Sin => x.sin(),
            Func::Cos => x.cos(),
            Func::Tan => x.tan(),
            Func::Asin => x.asin(),
            Func::Acos => x.acos(),
            Func::Atan => x.atan(),
            Func::Sinh => x.sinh(),
            Func::Cosh => x.cosh(),
            Func::Asinh => x.asinh(),
            Func::Acosh => x.acosh(),
            Func::Atanh => x.atanh(),
            Func::Pow { exponent } => x.powf(exponent.0),
            Func::Elu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha.0 * x.exp_m1()
                }
            }
            Func::Celu { alpha } => x.max(0.0) + (alpha.0 * (x / alpha.0).exp_m1()).min(0.0),
            Func::Selu { alpha, gamma } => {
                if x > 0.0 {
                    gamma.0 * x
                } else {
                    gamma.0 * alpha.0 * x.exp_m1()
                }
            }
            Func::HardSigmoid { alpha, beta } => (alpha.0 * x + beta.0).clamp(0.0, 1.0),
            Func::ThresholdedRelu { alpha } => {
                if x > alpha.0 {
                    x
                } else {
                    0.0
                }
            }
            Func::Gelu { tanh: false } => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
            Func::Gelu { tanh: true } => {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
            }
            Func::Mish => x * (x.max(0.0) + (-x.abs()).exp().ln_1p()).tanh(),
            Func::Saturate { range, select } => {
                if select {
                    f64::from(u8::from(-range.0 <= x && x < range.0))
                } else {
                    x.clamp(-range.0, range.0)
                }
            }
            Func::Quantize {
                scale,
                zero_point,
                min,
                max,
            } => {
                ((x / scale.0).round_ties_even() + zero_point as f64).clamp(min as f64, max as f64)
            }
            Func::Shrink { bias, lambd } => {
                if x < -lambd.0 {
                    x + bias.0
                } else if x > lambd.0 {
                    x - bias.0
                } else {
                    0.0
                }
            }
        }
    }

    /// The largest magnitude of any output, where it is known whatever the input: the
    /// output scale must hold it even where calibration never saw it (a step that
    /// calibration saw only at 0, an index it saw only small).
    pub fn bound(self) -> Option<f64> {
        match self {
            Func::NonZero | Func::IsZero | Func::Negative | Func::NonNegative | Func::Sign => {
                Some(1.0)
            }
            Func::ArgIndex { len, .. } => Some(f64::from(len)),
            Func::Saturate {
                select: true,
                range: _,
            } => Some(1.0),
            Func::Saturate { range, .. } => Some(range.0),
            Func::Quantize { min, max, .. } => Some(min.abs().max(max.abs()) as f64),
            _ => None,
        }
    }

    /// Whether `f` is continuous where it is defined: rounding its input to the nearest
    /// grid point then errs no more than flooring it. The steps (sign, floor, comparisons,
    /// the argmax index, a threshold) are defined by which side of a boundary the input
    /// lies on, which a floor of a finer value keeps and a rounding may not.
    pub fn is_continuous(self) -> bool {
        !matches!(
            self,
            Func::Sign
                | Func::Floor
                | Func::Ceil
                | Func::Round
                | Func::Trunc
                | Func::NonZero
                | Func::IsZero
                | Func::Negative
                | Func::NonNegative
                | Func::ArgIndex { .. }
                | Func::ThresholdedRelu { .. }
                | Func::Shrink { .. }
                | Func::Quantize { .. }
                | Func::Saturate { .. }
        )
    }

    /// Whether every output is `≥ 0` (lets a later op skip a sign check).
    pub fn nonneg(self) -> bool {
        match self {
            Func::Exp
            | Func::Sigmoid
            | Func::Sqrt
            | Func::Abs
            | Func::NonZero
            | Func::IsZero
            | Func::Negative
            | Func::NonNegative
            | Func::ArgIndex { .. }
            | Func::Softplus
            | Func::Cosh
            | Func::Acos
            | Func::HardSigmoid { .. }
            | Func::Saturate { select: true, .. } => true,
            Func::Clip { min, .. } => min.0 >= 0.0,
            Func::Quantize { min, .. } => min >= 0,
            Func::Pow { exponent } => exponent.0.rem_euclid(2.0) == 0.0,
            _ => false,
        }
    }

    /// The ONNX op type this function is imported from (the steps that comparisons are
    /// lowered to are named by what they test).
    pub fn op_type(self) -> &'static str {
        match self {
            Func::Exp => "Exp",
            Func::Erf => "Erf",
            Func::Sigmoid => "Sigmoid",
            Func::Tanh => "Tanh",
            Func::Sqrt => "Sqrt",
            Func::Rsqrt => "Rsqrt",
            Func::Reciprocal => "Reciprocal",
            Func::Clip { .. } => "Clip",
            Func::LeakyRelu { .. } => "LeakyRelu",
            Func::Abs => "Abs",
            Func::Sign => "Sign",
            Func::Floor => "Floor",
            Func::Ceil => "Ceil",
            Func::Round => "Round",
            Func::Trunc => "Cast",
            Func::NonZero => "NonZero",
            Func::IsZero => "IsZero",
            Func::Negative => "Negative",
            Func::NonNegative => "NonNegative",
            Func::ArgIndex { .. } => "ArgIndex",
            Func::Log => "Log",
            Func::Softplus => "Softplus",
            Func::Softsign => "Softsign",
            Func::HardSwish => "HardSwish",
            Func::Sin => "Sin",
            Func::Cos => "Cos",
            Func::Tan => "Tan",
            Func::Asin => "Asin",
            Func::Acos => "Acos",
            Func::Atan => "Atan",
            Func::Sinh => "Sinh",
            Func::Cosh => "Cosh",
            Func::Asinh => "Asinh",
            Func::Acosh => "Acosh",
            Func::Atanh => "Atanh",
            Func::Pow { .. } => "Pow",
            Func::Elu { .. } => "Elu",
            Func::Celu { .. } => "Celu",
            Func::Selu { .. } => "Selu",
            Func::HardSigmoid { .. } => "HardSigmoid",
            Func::ThresholdedRelu { .. } => "ThresholdedRelu",
            Func::Gelu { .. } => "Gelu",
            Func::Mish => "Mish",
            Func::Shrink { .. } => "Shrink",
            Func::Quantize { .. } => "QuantizeLinear",
            Func::Saturate { .. } => "Clip",
        }
    }
}

/// The error function (Abramowitz–Stegun 7.1.26 is too coarse for 12+ bits; this is the
/// series/continued-fraction pair, accurate to ~1e-12).
pub fn erf(x: f64) -> f64 {
    let t = x.abs();
    let v = if t < 2.5 {
        // Maclaurin series.
        let (mut term, mut sum, mut n) = (t, t, 0.0);
        while term.abs() > 1e-17 * sum.abs().max(1e-300) {
            n += 1.0;
            term *= -t * t / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        // Continued fraction for erfc.
        let mut f = 0.0;
        for k in (1..60).rev() {
            f = (k as f64 / 2.0) / (t + f);
        }
        1.0 - (-t * t).exp() / std::f64::consts::PI.sqrt() / (t + f)
    };
    if x < 0.0 {
        -v
    } else {
        v
    }
}

/// `f` on inputs at `in_scale`, outputs at `out_scale`, saturating to the bounded range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSpec {
    pub func: Func,
    pub in_scale: i32,
    pub out_scale: i32,
    /// The signed width of the inputs the table holds, narrower than the model's
    /// activations (`2^in_bits` rows instead of `2^act_bits`; its lookup then bounds the
    /// input to that width), or 0: the activations' width. Outputs keep the activations'.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub in_bits: u32,
}

fn is_zero(bits: &u32) -> bool {
    *bits == 0
}

impl TableSpec {
    /// The signed width of the table's inputs in a model of `act_bits`-bit activations.
    pub fn input_bits(&self, act_bits: u32) -> u32 {
        if self.in_bits == 0 {
            act_bits
        } else {
            self.in_bits.min(act_bits)
        }
    }

    /// The table's rows in a model of `act_bits`-bit activations: every input it holds.
    pub fn rows(&self, act_bits: u32) -> usize {
        1usize << self.input_bits(act_bits)
    }

    /// The inputs the table holds, `[-2^(w-1), 2^(w-1))` for `w` its input width.
    pub fn inputs(&self, act_bits: u32) -> std::ops::Range<i64> {
        let (min, max) = signed_range(self.input_bits(act_bits));
        min..max + 1
    }

    /// The table's output for the integer input `x` of a `bits`-bit model.
    pub fn eval(&self, x: i64, bits: u32) -> i64 {
        let (min, max) = signed_range(bits);
        let y = self.func.eval(dequantize(x, self.in_scale)) * 2f64.powi(self.out_scale);
        if y.is_nan() {
            0
        } else {
            (y.round().clamp(min as f64, max as f64)) as i64
        }
    }
}

/// `c = a · a_mul + b · b_mul` element-wise (scale alignment by powers of two), or
/// `c = a · a_mul + constant` when `b` is a constant tensor. `a_mul` holds one factor for
/// every element, or a single one for all (multiplication by a constant, affine
/// normalisation, negation and subtraction are all this op).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Add {
    pub a: ValueId,
    pub b: AddOperand,
    pub output: ValueId,
    pub a_mul: Vec<i64>,
}

impl Add {
    pub fn a_mul_at(&self, i: usize) -> i64 {
        if self.a_mul.len() == 1 {
            self.a_mul[0]
        } else {
            self.a_mul[i]
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AddOperand {
    Value {
        id: ValueId,
        mul: i64,
    },
    /// One constant per output element, already at the output scale.
    Constant(Vec<i64>),
}

/// `c = a · b` element-wise, both computed: the output scale is the sum of theirs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mul {
    pub a: ValueId,
    pub b: ValueId,
    pub output: ValueId,
}

/// Same elements, new shape (Reshape, Flatten, Identity).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reshape {
    pub input: ValueId,
    pub output: ValueId,
}

/// `y[i] = x[index[i]]`, or 0 where the index is `None`: a permutation, selection or
/// zero-padding of elements (Transpose, broadcasting, convolution windows). Costs no rows
/// in a circuit: it only changes which cells are copied (padding copies a constant 0).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rearrange {
    pub input: ValueId,
    pub output: ValueId,
    pub index: Vec<Option<usize>>,
}

/// `y[i] = inputs[k][j]` where `index[i] = (k, j)`, or 0 where it is `None`: elements
/// gathered from several values of one scale (Concat, the groups of a grouped
/// convolution). Like [`Rearrange`], it costs no rows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Concat {
    pub inputs: Vec<ValueId>,
    pub output: ValueId,
    pub index: Vec<Option<(usize, usize)>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QOp {
    Linear(Linear),
    Rescale(Rescale),
    Add(Add),
    Mul(Mul),
    Reshape(Reshape),
    Rearrange(Rearrange),
    Concat(Concat),
}

impl QOp {
    pub fn output(&self) -> ValueId {
        match self {
            QOp::Linear(op) => op.output,
            QOp::Rescale(op) => op.output,
            QOp::Add(op) => op.output,
            QOp::Mul(op) => op.output,
            QOp::Reshape(op) => op.output,
            QOp::Rearrange(op) => op.output,
            QOp::Concat(op) => op.output,
        }
    }

    pub fn inputs(&self) -> Vec<ValueId> {
        match self {
            QOp::Linear(op) => vec![op.input],
            QOp::Rescale(op) => vec![op.input],
            QOp::Add(op) => match &op.b {
                AddOperand::Value { id, .. } => vec![op.a, *id],
                AddOperand::Constant(_) => vec![op.a],
            },
            QOp::Mul(op) => vec![op.a, op.b],
            QOp::Reshape(op) => vec![op.input],
            QOp::Rearrange(op) => vec![op.input],
            QOp::Concat(op) => op.inputs.clone(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            QOp::Linear(_) => "Linear",
            QOp::Rescale(_) => "Rescale",
            QOp::Add(_) => "Add",
            QOp::Mul(_) => "Mul",
            QOp::Reshape(_) => "Reshape",
            QOp::Rearrange(_) => "Rearrange",
            QOp::Concat(_) => "Concat",
        }
    }
}

/// A quantized model: one input tensor, one output tensor, ops in execution order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QModel {
    pub name: String,
    pub values: Vec<QValue>,
    pub input: ValueId,
    pub output: ValueId,
    pub ops: Vec<QOp>,
    /// Signed bit width of bounded values (rescale outputs).
    pub act_bits: u32,
    /// Functions tabulated for [`Activation::Table`].
    #[serde(default)]
    pub tables: Vec<TableSpec>,
}

/// Why a model cannot run or is malformed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum QirError {
    #[error("input has {got} elements, the model's input `{name}` expects {expected}")]
    InputLength {
        name: String,
        expected: usize,
        got: usize,
    },
    #[error(
        "value {value} of `{name}` (op {op}, element {index}) is outside the {bits}-bit range \
         [{min}, {max}] the circuit can prove; the input lies outside the calibrated range \
         (recompile with calibration data that covers it, or more --bits)"
    )]
    OutOfRange {
        op: usize,
        name: String,
        index: usize,
        value: i64,
        bits: u32,
        min: i64,
        max: i64,
    },
    #[error(
        "input element {index} of `{name}` is {value}, outside the {bits}-bit range [{min}, {max}] \
         of the model's quantized input (the input lies outside the calibrated range: recompile \
         with calibration data that covers it, or more --bits)"
    )]
    InputOutOfRange {
        name: String,
        index: usize,
        value: i64,
        bits: u32,
        min: i64,
        max: i64,
    },
    #[error("arithmetic overflow in op {op} ({kind}) computing `{name}`")]
    Overflow {
        op: usize,
        kind: &'static str,
        name: String,
    },
    #[error("malformed model: op {op} ({kind}): {reason}")]
    Malformed {
        op: usize,
        kind: &'static str,
        reason: String,
    },
}

/// Every value of a run, indexed by [`ValueId`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    pub values: Vec<Vec<i64>>,
}

impl Trace {
    pub fn get(&self, id: ValueId) -> &[i64] {
        &self.values[id.0]
    }
}

/// `floor(x / 2^shift)` and the remainder in `[0, 2^shift)`.
pub fn floor_shift(x: i64, shift: u32) -> (i64, i64) {
    let y = x >> shift; // arithmetic shift is floor division by 2^shift
    (y, x - (y << shift))
}

/// The bounded range `[min, max]` of `bits`-bit signed values.
pub fn signed_range(bits: u32) -> (i64, i64) {
    (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1)
}

/// Quantizes a real number at `scale` (round half away from zero).
pub fn quantize(x: f64, scale: i32) -> i64 {
    (x * 2f64.powi(scale)).round() as i64
}

pub fn dequantize(v: i64, scale: i32) -> f64 {
    v as f64 / 2f64.powi(scale)
}

impl QModel {
    pub fn value(&self, id: ValueId) -> &QValue {
        &self.values[id.0]
    }

    /// Checks the structural invariants the interpreter and the circuit rely on, so a
    /// corrupted artifact is an error rather than a panic.
    pub fn validate(&self) -> Result<(), QirError> {
        let n = self.values.len();
        let bad = |op: usize, kind: &'static str, reason: String| QirError::Malformed {
            op,
            kind,
            reason,
        };
        if self.input.0 >= n || self.output.0 >= n {
            return Err(bad(0, "model", "input or output id out of range".into()));
        }
        if !(2..=30).contains(&self.act_bits) {
            return Err(bad(
                0,
                "model",
                format!("act_bits {} not in 2..=30", self.act_bits),
            ));
        }
        if let Some(t) = self
            .tables
            .iter()
            .find(|t| t.in_bits != 0 && !(2..=self.act_bits).contains(&t.in_bits))
        {
            return Err(bad(
                0,
                "model",
                format!(
                    "the {} table's input width {} is not in 2..={} (the activations')",
                    t.func.op_type(),
                    t.in_bits,
                    self.act_bits
                ),
            ));
        }
        let mut defined = vec![false; n];
        defined[self.input.0] = true;
        for (i, op) in self.ops.iter().enumerate() {
            let kind = op.kind();
            for id in op.inputs().into_iter().chain([op.output()]) {
                if id.0 >= n {
                    return Err(bad(i, kind, format!("value id {} out of range", id.0)));
                }
            }
            for id in op.inputs() {
                if !defined[id.0] {
                    return Err(bad(
                        i,
                        kind,
                        format!("reads `{}` before it is defined", self.value(id).name),
                    ));
                }
            }
            if defined[op.output().0] {
                return Err(bad(
                    i,
                    kind,
                    format!("redefines `{}`", self.value(op.output()).name),
                ));
            }
            defined[op.output().0] = true;
            let len = |id: ValueId| self.value(id).len();
            let out = len(op.output());
            match op {
                QOp::Linear(l) => {
                    let ok = l.in_features > 0
                        && l.out_features > 0
                        && len(l.input).is_multiple_of(l.in_features)
                        && l.weight.len() == l.in_features * l.out_features
                        && out == l.rows(self) * l.out_features
                        && (l.bias.len() == l.out_features || l.bias.len() == out);
                    if !ok {
                        return Err(bad(i, kind, "inconsistent shapes".into()));
                    }
                }
                QOp::Rescale(r) => {
                    if matches!(r.act, Activation::Table(t) if t >= self.tables.len()) {
                        return Err(bad(i, kind, "unknown table".into()));
                    }
                    if len(r.input) != out || r.shift > 2 * (self.act_bits - 1) {
                        return Err(bad(i, kind, format!("shift {} or shapes invalid", r.shift)));
                    }
                }
                QOp::Add(a) => {
                    let b_ok = match &a.b {
                        AddOperand::Value { id, .. } => len(*id) == out,
                        AddOperand::Constant(c) => c.len() == out,
                    };
                    if len(a.a) != out || !b_ok || !(a.a_mul.len() == 1 || a.a_mul.len() == out) {
                        return Err(bad(i, kind, "operand lengths differ".into()));
                    }
                }
                QOp::Mul(m) => {
                    if len(m.a) != out || len(m.b) != out {
                        return Err(bad(i, kind, "operand lengths differ".into()));
                    }
                }
                QOp::Reshape(r) => {
                    if len(r.input) != out {
                        return Err(bad(i, kind, "element counts differ".into()));
                    }
                }
                QOp::Rearrange(r) => {
                    if r.index.len() != out || r.index.iter().flatten().any(|&j| j >= len(r.input))
                    {
                        return Err(bad(i, kind, "index out of range".into()));
                    }
                }
                QOp::Concat(c) => {
                    let scale = self.value(c.output).scale;
                    let ok = !c.inputs.is_empty()
                        && c.index.len() == out
                        && c.inputs.iter().all(|&id| self.value(id).scale == scale)
                        && c.index
                            .iter()
                            .flatten()
                            .all(|&(k, j)| c.inputs.get(k).is_some_and(|&id| j < len(id)));
                    if !ok {
                        return Err(bad(i, kind, "index out of range or scales differ".into()));
                    }
                }
            }
        }
        if !defined[self.output.0] {
            return Err(bad(
                self.ops.len(),
                "model",
                "output is never computed".into(),
            ));
        }
        Ok(())
    }

    /// Runs the model on a quantized input. This *is* the semantics the circuit proves.
    pub fn run(&self, input: &[i64]) -> Result<Trace, QirError> {
        self.validate()?;
        let input_value = self.value(self.input);
        if input.len() != input_value.len() {
            return Err(QirError::InputLength {
                name: input_value.name.clone(),
                expected: input_value.len(),
                got: input.len(),
            });
        }
        self.check_input(input)?;
        let mut values: Vec<Vec<i64>> = vec![Vec::new(); self.values.len()];
        values[self.input.0] = input.to_vec();
        self.run_ops(0..self.ops.len(), &mut values)?;
        Ok(Trace { values })
    }

    /// The input is as bounded as every rescaled value: the statement is about
    /// `act_bits`-bit integers (the circuit range-checks a private or hashed input, the
    /// verifier a public one).
    fn check_input(&self, input: &[i64]) -> Result<(), QirError> {
        let (min, max) = signed_range(self.act_bits);
        match input.iter().position(|v| !(min..=max).contains(v)) {
            Some(index) => Err(QirError::InputOutOfRange {
                name: self.value(self.input).name.clone(),
                index,
                value: input[index],
                bits: self.act_bits,
                min,
                max,
            }),
            None => Ok(()),
        }
    }

    /// Runs the ops in `range` on `values` (indexed by [`ValueId`]; every value they read
    /// is set), setting the values they define.
    fn run_ops(&self, range: Range<usize>, values: &mut [Vec<i64>]) -> Result<(), QirError> {
        for (i, op) in self
            .ops
            .iter()
            .enumerate()
            .take(range.end)
            .skip(range.start)
        {
            let name = &self.value(op.output()).name;
            let overflow = || QirError::Overflow {
                op: i,
                kind: op.kind(),
                name: name.clone(),
            };
            let out = match op {
                QOp::Linear(l) => {
                    let x = &values[l.input.0];
                    let rows = l.rows(self);
                    let mut y = Vec::with_capacity(rows * l.out_features);
                    for r in 0..rows {
                        let xr = &x[r * l.in_features..(r + 1) * l.in_features];
                        for n in 0..l.out_features {
                            let w = &l.weight[n * l.in_features..(n + 1) * l.in_features];
                            let mut acc = l.bias_for(r, n) as i128;
                            for (a, b) in xr.iter().zip(w) {
                                acc += *a as i128 * *b as i128;
                            }
                            y.push(i64::try_from(acc).map_err(|_| overflow())?);
                        }
                    }
                    y
                }
                QOp::Rescale(r) => {
                    // A table narrower than the activations bounds its input to its width.
                    let bits = match r.act {
                        Activation::Table(t) => self.tables[t].input_bits(self.act_bits),
                        _ => self.act_bits,
                    };
                    let (lo, hi) = signed_range(bits);
                    let mut z = Vec::with_capacity(values[r.input.0].len());
                    for (index, &x) in values[r.input.0].iter().enumerate() {
                        let (y, _) = floor_shift(x, r.shift);
                        if y < lo || y > hi {
                            return Err(QirError::OutOfRange {
                                op: i,
                                name: name.clone(),
                                index,
                                value: y,
                                bits,
                                min: lo,
                                max: hi,
                            });
                        }
                        z.push(match r.act {
                            Activation::Identity => y,
                            Activation::Relu => y.max(0),
                            Activation::Table(t) => self.tables[t].eval(y, self.act_bits),
                        });
                    }
                    z
                }
                QOp::Add(a) => {
                    let xa = &values[a.a.0];
                    let mut c = Vec::with_capacity(xa.len());
                    for (j, &va) in xa.iter().enumerate() {
                        let vb = match &a.b {
                            AddOperand::Value { id, mul } => values[id.0][j].checked_mul(*mul),
                            AddOperand::Constant(k) => Some(k[j]),
                        };
                        let v = va
                            .checked_mul(a.a_mul_at(j))
                            .zip(vb)
                            .and_then(|(p, q)| p.checked_add(q))
                            .ok_or_else(overflow)?;
                        c.push(v);
                    }
                    c
                }
                QOp::Mul(m) => {
                    let (a, b) = (&values[m.a.0], &values[m.b.0]);
                    a.iter()
                        .zip(b)
                        .map(|(x, y)| x.checked_mul(*y).ok_or_else(overflow))
                        .collect::<Result<Vec<_>, _>>()?
                }
                QOp::Reshape(r) => values[r.input.0].clone(),
                QOp::Rearrange(r) => {
                    let x = &values[r.input.0];
                    r.index.iter().map(|j| j.map_or(0, |j| x[j])).collect()
                }
                QOp::Concat(c) => c
                    .index
                    .iter()
                    .map(|at| at.map_or(0, |(k, j)| values[c.inputs[k].0][j]))
                    .collect(),
            };
            values[op.output().0] = out;
        }
        Ok(())
    }

    /// Number of multiply-accumulates, for reports.
    pub fn macs(&self) -> usize {
        self.ops
            .iter()
            .map(|op| match op {
                QOp::Linear(l) => l.rows(self) * l.in_features * l.out_features,
                _ => 0,
            })
            .sum()
    }
}

/// How closely the integer model follows its float source (a compile-time report,
/// stored with the compiled circuit).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fidelity {
    pub samples: usize,
    pub max_abs_error: f64,
    pub mean_abs_error: f64,
    /// Largest magnitude of the float output, to read the errors against.
    pub output_max_abs: f64,
    /// Samples whose quantized argmax equals the float argmax (class vectors only).
    pub argmax_agree: Option<usize>,
}

impl std::fmt::Display for Fidelity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "max |error| {:.5}, mean |error| {:.5} (output range ±{:.3}, {} sample{})",
            self.max_abs_error,
            self.mean_abs_error,
            self.output_max_abs,
            self.samples,
            if self.samples == 1 { "" } else { "s" }
        )?;
        if let Some(a) = self.argmax_agree {
            write!(f, ", argmax agrees on {a}/{}", self.samples)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_follow_the_onnx_spec_where_references_differ() {
        // Celu keeps alpha outside the exponential (tract 0.23 drops it).
        let celu = Func::Celu { alpha: Real(2.0) };
        assert!((celu.eval(-1.0) - 2.0 * ((-0.5f64).exp() - 1.0)).abs() < 1e-12);
        assert_eq!(celu.eval(1.5), 1.5);
        // Round is half to even; a cast to an integer type rounds toward zero.
        assert_eq!(Func::Round.eval(2.5), 2.0);
        assert_eq!(Func::Round.eval(-1.5), -2.0);
        assert_eq!(Func::Trunc.eval(-1.7), -1.0);
        // Softplus does not overflow where e^x would.
        assert_eq!(Func::Softplus.eval(1000.0), 1000.0);
        assert!(Func::Softplus.nonneg() && !Func::Log.nonneg());
        assert!(Func::Pow {
            exponent: Real(2.0)
        }
        .nonneg());
        assert!(!Func::Pow {
            exponent: Real(3.0)
        }
        .nonneg());
    }
    use proptest::prelude::*;

    fn value(name: &str, shape: Vec<usize>, scale: i32) -> QValue {
        QValue {
            name: name.into(),
            shape,
            scale,
        }
    }

    fn tiny() -> QModel {
        QModel {
            name: "tiny".into(),
            values: vec![
                value("x", vec![1, 3], 4),
                value("h", vec![1, 2], 8),
                value("r", vec![1, 2], 4),
            ],
            input: ValueId(0),
            output: ValueId(2),
            ops: vec![
                QOp::Linear(Linear {
                    input: ValueId(0),
                    output: ValueId(1),
                    in_features: 3,
                    out_features: 2,
                    weight: vec![1, 2, 3, -4, -5, -6],
                    weight_scale: 4,
                    bias: vec![10, -10],
                }),
                QOp::Rescale(Rescale {
                    input: ValueId(1),
                    output: ValueId(2),
                    shift: 4,
                    act: Activation::Relu,
                }),
            ],
            act_bits: 8,
            tables: vec![],
        }
    }

    #[test]
    fn linear_then_relu() {
        let t = tiny().run(&[16, 32, -16]).unwrap();
        // 16 + 64 - 48 + 10 = 42; -64 - 160 + 96 - 10 = -138
        assert_eq!(t.get(ValueId(1)), &[42, -138]);
        assert_eq!(t.get(ValueId(2)), &[2, 0]);
    }

    #[test]
    fn out_of_range_is_an_error() {
        // An input outside the act_bits range is not in the statement's domain...
        let err = tiny().run(&[16, 1000, -1000]).unwrap_err();
        assert!(
            matches!(
                err,
                QirError::InputOutOfRange {
                    index: 1,
                    value: 1000,
                    ..
                }
            ),
            "{err}"
        );
        assert!(tiny().run(&[127, -128, 0]).is_ok());
        // ...and a rescaled value outside it cannot be proven.
        let mut wide = tiny();
        if let QOp::Linear(l) = &mut wide.ops[0] {
            l.weight = vec![10, 20, 30, -40, -50, -60];
        }
        let err = wide.run(&[100, 100, 100]).unwrap_err();
        assert!(matches!(err, QirError::OutOfRange { .. }), "{err}");
    }

    /// `tiny` with its ReLU replaced by `exp` tabulated over `in_bits`-bit inputs.
    fn tiny_exp(in_bits: u32) -> QModel {
        let mut m = tiny();
        if let QOp::Rescale(r) = &mut m.ops[1] {
            r.act = Activation::Table(0);
        }
        m.tables = vec![TableSpec {
            func: Func::Exp,
            in_scale: 4,
            out_scale: 4,
            in_bits,
        }];
        m
    }

    /// A table of narrower inputs than the activations holds `2^in_bits` of them and
    /// bounds what it is applied to to that width; a width of 0 is the activations'.
    #[test]
    fn a_narrower_table_bounds_its_input() {
        let (narrow, full) = (tiny_exp(6), tiny_exp(0));
        assert_eq!(narrow.tables[0].rows(8), 64);
        assert_eq!(narrow.tables[0].inputs(8), -32..32);
        assert_eq!(full.tables[0].rows(8), 256);
        assert_eq!(tiny_exp(9).tables[0].input_bits(8), 8);
        // h = [42, -138] → [2, -9] after the shift: inside 6 bits.
        assert_eq!(narrow.run(&[16, 32, -16]), full.run(&[16, 32, -16]));
        // h = [394, -970] → [24, -61]: -61 is an 8-bit value but not a 6-bit one.
        let input = [64, 64, 64];
        let h = full.run(&input).unwrap().get(ValueId(1)).to_vec();
        let y: Vec<i64> = h.iter().map(|&v| floor_shift(v, 4).0).collect();
        assert!(
            y.iter().any(|v| !(-32..32).contains(v)) && y.iter().all(|v| (-128..128).contains(v)),
            "{y:?}"
        );
        let err = narrow.run(&input).unwrap_err();
        assert!(
            matches!(
                err,
                QirError::OutOfRange {
                    bits: 6,
                    min: -32,
                    max: 31,
                    ..
                }
            ),
            "{err}"
        );
        // A width above the activations', or below 2, is malformed.
        let bad = |m: QModel| matches!(m.validate(), Err(QirError::Malformed { .. }));
        assert!(bad(tiny_exp(9)) && bad(tiny_exp(1)));
        assert!(narrow.validate().is_ok() && full.validate().is_ok());
        // Serialized, the width is absent where it is the activations' (models and
        // their ids from before it are unchanged) and kept where it is narrower.
        let json = |m: &QModel| serde_json::to_string(&m.tables[0]).unwrap();
        assert!(!json(&full).contains("in_bits"));
        let back: TableSpec = serde_json::from_str(&json(&narrow)).unwrap();
        assert_eq!(back, narrow.tables[0]);
    }

    #[test]
    fn wrong_input_length_is_an_error() {
        assert!(matches!(
            tiny().run(&[1]),
            Err(QirError::InputLength { .. })
        ));
    }

    #[test]
    fn malformed_models_are_rejected() {
        let mut m = tiny();
        if let QOp::Linear(l) = &mut m.ops[0] {
            l.weight.pop();
        }
        assert!(matches!(m.validate(), Err(QirError::Malformed { .. })));
        let mut m = tiny();
        m.ops.swap(0, 1);
        assert!(matches!(m.validate(), Err(QirError::Malformed { .. })));
    }

    #[test]
    fn erf_is_accurate_and_tables_saturate() {
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.520_499_877_8),
            (-1.0, -0.842_700_792_9),
            (3.0, 0.999_977_909_5),
        ] {
            assert!((erf(x) - want).abs() < 1e-9, "erf({x}) = {}", erf(x));
        }
        let exp = TableSpec {
            func: Func::Exp,
            in_scale: 4,
            out_scale: 4,
            in_bits: 0,
        };
        assert_eq!(exp.eval(0, 8), 16);
        assert_eq!(
            exp.eval(100, 8),
            127,
            "saturates at the top of the 8-bit range"
        );
        let recip = TableSpec {
            func: Func::Reciprocal,
            in_scale: 0,
            out_scale: 4,
            in_bits: 0,
        };
        assert_eq!(recip.eval(0, 8), 127, "1/0 saturates");
    }

    proptest! {
        #[test]
        fn floor_shift_is_floor_division(x in -1_000_000i64..1_000_000, s in 0u32..20) {
            let (y, rem) = floor_shift(x, s);
            prop_assert_eq!(y, x.div_euclid(1 << s));
            prop_assert!((0..(1i64 << s)).contains(&rem));
            prop_assert_eq!(y * (1 << s) + rem, x);
        }
    }
}
