//! One importer per ONNX op type, by family; [`IMPORTERS`] is the table the importer
//! dispatches on and the supported-op list is derived from.

use std::collections::BTreeMap;

use tract_onnx::pb;

use crate::graph::{Op, Tensor};
use crate::CompileError;

mod elementwise;
mod linear;
mod normalize;
mod shape;

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
    ("Add", elementwise::import_arithmetic),
    ("Sub", elementwise::import_arithmetic),
    ("Mul", elementwise::import_arithmetic),
    ("Div", elementwise::import_arithmetic),
    ("Neg", elementwise::import_neg),
    ("Softmax", normalize::import_softmax),
    ("LayerNormalization", normalize::import_layer_normalization),
    ("Exp", elementwise::import_tabulated),
    ("Erf", elementwise::import_tabulated),
    ("Sigmoid", elementwise::import_tabulated),
    ("Tanh", elementwise::import_tabulated),
    ("Sqrt", elementwise::import_tabulated),
    ("Reciprocal", elementwise::import_tabulated),
    ("Clip", elementwise::import_clip),
    ("LeakyRelu", elementwise::import_leaky_relu),
    ("Sum", elementwise::import_variadic),
    ("Max", elementwise::import_variadic),
    ("Min", elementwise::import_variadic),
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
}

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
