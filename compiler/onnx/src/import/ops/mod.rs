//! One importer per ONNX op type, by family; [`IMPORTERS`] is the table the importer
//! dispatches on and the supported-op list is derived from.

use std::cell::RefCell;
use std::collections::BTreeMap;

use tract_onnx::pb;

use crate::graph::{Op, Tensor};
use crate::CompileError;

mod array;
mod einsum;
mod elementwise;
mod linear;
mod ml;
mod normalize;
mod quant;
mod recurrent;
mod shape;
mod volume;

/// What an importer makes of a node: its op, the inputs it reads, its output shape.
pub(super) type Lowered = (Op, Vec<String>, Vec<usize>);

/// Imports one node of the op type it is registered for.
pub(super) type Importer = fn(&NodeCx<'_>) -> Result<Lowered, CompileError>;

/// Every op type with an importer. (`Constant`, `Shape` and `ConstantOfShape` fold to
/// constants before dispatch.)
pub(super) const IMPORTERS: &[(&str, Importer)] = &[
    ("Gemm", linear::import_gemm),
    ("Conv", linear::import_conv),
    ("AveragePool", linear::import_average_pool),
    ("GlobalAveragePool", linear::import_global_average_pool),
    ("MatMul", linear::import_matmul),
    ("Einsum", einsum::import_einsum),
    ("Add", elementwise::import_arithmetic),
    ("Sub", elementwise::import_arithmetic),
    ("Mul", elementwise::import_arithmetic),
    ("Div", elementwise::import_arithmetic),
    ("Neg", elementwise::import_neg),
    ("Softmax", normalize::import_softmax),
    ("LogSoftmax", normalize::import_log_softmax),
    ("LayerNormalization", normalize::import_layer_normalization),
    ("Exp", elementwise::import_tabulated),
    ("Erf", elementwise::import_tabulated),
    ("Sigmoid", elementwise::import_tabulated),
    ("Tanh", elementwise::import_tabulated),
    ("Sqrt", elementwise::import_tabulated),
    ("Reciprocal", elementwise::import_tabulated),
    ("Abs", elementwise::import_tabulated),
    ("Sign", elementwise::import_tabulated),
    ("Floor", elementwise::import_tabulated),
    ("Ceil", elementwise::import_tabulated),
    ("Round", elementwise::import_tabulated),
    ("Log", elementwise::import_tabulated),
    ("Softplus", elementwise::import_tabulated),
    ("Softsign", elementwise::import_tabulated),
    ("HardSwish", elementwise::import_tabulated),
    ("Mish", elementwise::import_tabulated),
    ("Gelu", elementwise::import_tabulated),
    ("Shrink", elementwise::import_tabulated),
    ("Sin", elementwise::import_tabulated),
    ("Cos", elementwise::import_tabulated),
    ("Tan", elementwise::import_tabulated),
    ("Asin", elementwise::import_tabulated),
    ("Acos", elementwise::import_tabulated),
    ("Atan", elementwise::import_tabulated),
    ("Sinh", elementwise::import_tabulated),
    ("Cosh", elementwise::import_tabulated),
    ("Asinh", elementwise::import_tabulated),
    ("Acosh", elementwise::import_tabulated),
    ("Atanh", elementwise::import_tabulated),
    ("LeakyRelu", elementwise::import_tabulated),
    ("Elu", elementwise::import_tabulated),
    ("Celu", elementwise::import_tabulated),
    ("Selu", elementwise::import_tabulated),
    ("HardSigmoid", elementwise::import_tabulated),
    ("ThresholdedRelu", elementwise::import_tabulated),
    ("Pow", elementwise::import_pow),
    ("Cast", elementwise::import_cast),
    ("QuantizeLinear", quant::import_quantize),
    ("DequantizeLinear", quant::import_dequantize),
    ("CastLike", elementwise::import_cast),
    ("Dropout", elementwise::import_dropout),
    ("Clip", elementwise::import_clip),
    ("Less", elementwise::import_logic),
    ("Greater", elementwise::import_logic),
    ("LessOrEqual", elementwise::import_logic),
    ("GreaterOrEqual", elementwise::import_logic),
    ("Equal", elementwise::import_logic),
    ("Not", elementwise::import_logic),
    ("And", elementwise::import_logic),
    ("Or", elementwise::import_logic),
    ("Xor", elementwise::import_logic),
    ("Where", elementwise::import_logic),
    ("ArgMax", elementwise::import_arg_extreme),
    ("ArgMin", elementwise::import_arg_extreme),
    ("TopK", elementwise::import_top_k),
    ("Sum", elementwise::import_variadic),
    ("Max", elementwise::import_variadic),
    ("Min", elementwise::import_variadic),
    ("Mean", elementwise::import_variadic),
    ("ReduceSum", normalize::import_reduce),
    ("ReduceMean", normalize::import_reduce),
    ("BatchNormalization", normalize::import_batch_normalization),
    ("MaxPool", elementwise::import_max_pool),
    ("Squeeze", shape::import_squeeze_unsqueeze),
    ("Unsqueeze", shape::import_squeeze_unsqueeze),
    ("Relu", elementwise::import_relu_identity),
    ("Identity", elementwise::import_relu_identity),
    ("Flatten", shape::import_flatten),
    ("Reshape", shape::import_reshape),
    ("Slice", shape::import_element_map),
    ("Gather", shape::import_element_map),
    ("Pad", shape::import_element_map),
    ("Concat", shape::import_concat),
    ("Transpose", shape::import_transpose),
    ("ConvTranspose", linear::import_conv_transpose),
    ("RNN", recurrent::import_recurrent),
    ("GRU", recurrent::import_recurrent),
    ("LSTM", recurrent::import_recurrent),
    ("Expand", array::import_expand),
    ("Tile", array::import_tile),
    ("Trilu", array::import_trilu),
    ("GatherElements", array::import_gather_elements),
    ("GatherND", array::import_gather_nd),
    ("Split", array::import_split),
    ("OneHot", array::import_one_hot),
    ("DepthToSpace", array::import_depth_space),
    ("SpaceToDepth", array::import_depth_space),
    ("Hardmax", array::import_hardmax),
    ("CumSum", array::import_cumsum),
    ("Resize", array::import_resize),
    ("Upsample", array::import_resize),
    ("ScatterElements", array::import_scatter),
    ("ScatterND", array::import_scatter),
    ("ReduceMax", normalize::import_reduce),
    ("ReduceMin", normalize::import_reduce),
    ("ReduceL1", normalize::import_reduce),
    ("ReduceL2", normalize::import_reduce),
    ("ReduceSumSquare", normalize::import_reduce),
    ("ReduceLogSumExp", normalize::import_reduce),
    ("ReduceLogSum", normalize::import_reduce),
    ("ReduceProd", normalize::import_reduce),
    ("GlobalMaxPool", normalize::import_global_max_pool),
    ("PRelu", elementwise::import_prelu),
    (
        "InstanceNormalization",
        normalize::import_instance_normalization,
    ),
    ("ArrayFeatureExtractor", ml::import_array_feature_extractor),
    ("LinearClassifier", ml::import_linear_classifier),
    ("LinearRegressor", ml::import_linear_regressor),
    ("Normalizer", ml::import_normalizer),
    ("TreeEnsembleClassifier", ml::import_tree_ensemble),
    ("TreeEnsembleRegressor", ml::import_tree_ensemble),
];

pub(super) use ml::ML_OPS;

/// Op types whose nodes have more than one output (the importer emits the others).
pub(super) const MULTI_OUTPUT_OPS: &[&str] = &[
    "LinearClassifier",
    "TreeEnsembleClassifier",
    "Split",
    "TopK",
    "RNN",
    "GRU",
    "LSTM",
    "LayerNormalization",
];

/// What an importer reads: the node, its present inputs, and what is known so far.
pub(super) struct NodeCx<'a> {
    pub n: &'a pb::NodeProto,
    pub name: &'a str,
    /// Inputs that are present (ONNX marks an omitted optional input with "").
    pub ins: Vec<String>,
    pub opset: i64,
    pub shapes: &'a BTreeMap<String, Vec<usize>>,
    pub constants: &'a BTreeMap<String, Tensor>,
    pub int_constants: &'a BTreeMap<String, (Vec<usize>, Vec<i64>)>,
    /// The ONNX element types of initializers, constants and graph inputs.
    pub elem_types: &'a BTreeMap<String, i32>,
    /// Computed tensors that hold integers (from integer or boolean graph inputs, casts,
    /// comparisons): a division of two of them truncates, as ONNX's integer `Div` does.
    pub integers: &'a std::collections::BTreeSet<String>,
    /// Nodes of the graph this node is lowered to before its own (see [`NodeCx::emit`]).
    pub emitted: RefCell<Vec<Emitted>>,
    /// Constants those nodes read (see [`NodeCx::emit_constant`]).
    pub emitted_constants: RefCell<Vec<(String, Tensor)>>,
}

/// A node an importer lowers part of its node to: output name, op, inputs, shape.
pub(super) type Emitted = (String, Op, Vec<String>, Vec<usize>);

impl NodeCx<'_> {
    pub fn invalid(&self, reason: String) -> CompileError {
        CompileError::InvalidNode {
            node: self.name.to_string(),
            op: self.n.op_type.clone(),
            reason,
        }
    }

    /// The shape of a float or integer tensor defined before this node.
    pub fn shape_of(&self, s: &String) -> Result<Vec<usize>, CompileError> {
        self.shapes
            .get(s)
            .or_else(|| self.int_constants.get(s).map(|(shape, _)| shape))
            .cloned()
            .ok_or_else(|| self.invalid(format!("input `{s}` is not defined before this node")))
    }

    /// Lowers part of this node to a node of its own, named `<output>/<suffix>`, placed
    /// before it; returns that name. The part is then a tensor of the float graph like
    /// any other: the float interpreter computes it and calibration sees its range (a
    /// comparison's difference, a divisor's reciprocal).
    pub fn emit(&self, suffix: &str, op: Op, inputs: Vec<String>, shape: Vec<usize>) -> String {
        let name = format!(
            "{}/{suffix}",
            self.n.output.first().map_or("", String::as_str)
        );
        self.emitted
            .borrow_mut()
            .push((name.clone(), op, inputs, shape));
        name
    }

    /// Emits the node that computes this node's output `name` other than its first.
    pub fn emit_output(&self, name: &str, op: Op, inputs: Vec<String>, shape: Vec<usize>) {
        self.emitted
            .borrow_mut()
            .push((name.to_string(), op, inputs, shape));
    }

    /// Whether `s` holds integers: an integer constant or an integer computed tensor.
    pub fn is_integer(&self, s: &str) -> bool {
        self.integers.contains(s) || self.int_constants.contains_key(s)
    }

    /// A constant that an emitted node or this node reads, named `<output>/<suffix>`.
    pub fn emit_constant(&self, suffix: &str, t: Tensor) -> String {
        let name = format!(
            "{}/{suffix}",
            self.n.output.first().map_or("", String::as_str)
        );
        self.emitted_constants.borrow_mut().push((name.clone(), t));
        name
    }

    pub fn arity(&self, lo: usize, hi: usize) -> Result<(), CompileError> {
        if self.ins.len() < lo || self.ins.len() > hi {
            Err(self.invalid(format!(
                "expected {lo}..={hi} inputs, found {}",
                self.ins.len()
            )))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_op_type_has_one_importer_and_is_listed() {
        let mut ops: Vec<&str> = super::IMPORTERS.iter().map(|(op, _)| *op).collect();
        ops.sort_unstable();
        let n = ops.len();
        ops.dedup();
        assert_eq!(ops.len(), n, "an op type with two importers");
        let supported = crate::supported_ops();
        assert!(ops.iter().all(|op| supported.contains(op)));
        assert!(supported.windows(2).all(|w| w[0] < w[1]));
    }
}
