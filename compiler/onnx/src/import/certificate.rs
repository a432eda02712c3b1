//! The graph a capability certificate proves: the model applied to a batch of samples,
//! followed by the check of every prediction against its label and their count.
//!
//! ```text
//! images [B, …] ──model──▶ scores [B, C] ──ArgMax──▶ predicted [B]
//! labels [B] ──────────────────────────────Equal──▶ correct [B] ──Cast, Tally──▶ count [1]
//! ```
//!
//! It is built as ONNX nodes appended to the model's own graph and imported like any
//! model, so the argmax and the comparison are proven by the same lowerings as a user's
//! `ArgMax` and `Equal`; the count is a tree of additions ([`Op::Tally`]). With hashed
//! weights (a certificate's), nothing after the model has a hashed parameter: every
//! factor of the tail is a constant of the circuit, which the verifying key binds.

use std::path::Path;

use tract_onnx::pb;

use super::{import_proto, Imported};
use crate::graph::{Node, Op};
use crate::CompileError;

/// The graph input the labels are read from (packed after the model's input).
pub const LABELS: &str = "zkinfer:labels";
/// The certificate's one output: the number of samples whose argmax equals the label.
pub const COUNT: &str = "zkinfer:count";

/// What a certificate graph proves, beside the graph itself.
#[derive(Clone, Debug)]
pub struct CertificateGraph {
    pub imported: Imported,
    /// The model as it is, batch 1 (for the float model's predictions).
    pub model: Imported,
    /// Samples per proof.
    pub batch: usize,
    /// Length of the class-score vector the argmax is taken over.
    pub classes: usize,
    /// Which output of the model holds the class scores (its name).
    pub scores: String,
}

impl CertificateGraph {
    /// Calibration inputs of the certificate graph from `samples` of the model (batch 1):
    /// each batch filled with the samples in turn, labelled with the float model's
    /// predictions (so the count reaches the batch), and one more batch labelled with the
    /// last class (so the input's range holds every label).
    pub fn calibration(&self, samples: &[Vec<f32>]) -> Result<Vec<Vec<f32>>, CompileError> {
        let Some(first) = samples.first() else {
            return Err(CompileError::InputData {
                reason: "no calibration sample".into(),
            });
        };
        let mut labels = Vec::with_capacity(samples.len());
        for s in samples {
            let run = self.model.graph.run(s)?;
            let scores: Vec<f64> = run
                .get(&self.scores)
                .map(|t| t.data.iter().map(|&v| f64::from(v)).collect())
                .unwrap_or_default();
            labels.push(crate::quantize::argmax(&scores) as f32);
        }
        let (n, batch) = (samples.len(), self.batch);
        let mut packed: Vec<Vec<f32>> = (0..n.div_ceil(batch))
            .map(|j| {
                let at: Vec<usize> = (0..batch).map(|i| (j * batch + i) % n).collect();
                let mut v: Vec<f32> = at.iter().flat_map(|&i| samples[i].clone()).collect();
                v.extend(at.iter().map(|&i| labels[i]));
                v
            })
            .collect();
        let mut last: Vec<f32> = (0..batch).flat_map(|_| first.clone()).collect();
        last.extend(std::iter::repeat_n((self.classes - 1) as f32, batch));
        packed.push(last);
        Ok(packed)
    }
}

/// Imports `path` as a certificate graph over batches of `batch` samples.
pub fn import_certificate(path: &Path, batch: usize) -> Result<CertificateGraph, CompileError> {
    super::with_onnx(path, |proto| certificate_proto(proto, batch))
}

/// [`import_certificate`] of a decoded model.
pub fn certificate_proto(
    proto: &pb::ModelProto,
    batch: usize,
) -> Result<CertificateGraph, CompileError> {
    let config = |reason: String| CompileError::Config { reason };
    if batch == 0 {
        return Err(config(
            "the certificate's batch must be at least 1 sample".into(),
        ));
    }
    let model = import_proto(proto)?;
    if model.graph.inputs.len() != 1 {
        return Err(config(format!(
            "a certificate needs a model with one input (images, features); this one has {}",
            model.graph.inputs.len()
        )));
    }
    // The class scores: the first output of shape [1, C] with C > 1.
    let Some(scores) = model
        .graph
        .outputs
        .iter()
        .find(|p| p.shape.len() == 2 && p.shape[0] == 1 && p.shape[1] > 1)
        .cloned()
    else {
        return Err(config(format!(
            "a certificate takes the argmax of an output of class scores, shape [N, C]; the \
             model's outputs are {}",
            model
                .graph
                .outputs
                .iter()
                .map(|p| format!("`{}` {:?}", p.name, p.shape))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let classes = scores.shape[1];

    let mut proto = proto.clone();
    let g = proto
        .graph
        .as_mut()
        .ok_or_else(|| config("the model has no graph".into()))?;
    let initializers: Vec<String> = g.initializer.iter().map(|t| t.name.clone()).collect();
    fn dims(v: &mut pb::ValueInfoProto) -> Option<&mut Vec<pb::tensor_shape_proto::Dimension>> {
        let pb::type_proto::Value::TensorType(t) = v.r#type.as_mut()?.value.as_mut()?;
        t.shape.as_mut().map(|s| &mut s.dim)
    }
    for v in g
        .input
        .iter_mut()
        .filter(|v| !initializers.contains(&v.name))
    {
        let name = v.name.clone();
        let Some(dim) = dims(v).and_then(|d| d.first_mut()) else {
            return Err(config(format!("input `{name}` has no batch dimension")));
        };
        use pb::tensor_shape_proto::dimension::Value;
        match &dim.value {
            None | Some(Value::DimParam(_)) | Some(Value::DimValue(1)) => {}
            Some(Value::DimValue(d)) => {
                return Err(config(format!(
                    "input `{name}`'s first dimension is {d}, not a batch dimension (1 or symbolic)"
                )))
            }
        }
        dim.value = Some(Value::DimValue(batch as i64));
    }
    let tensor_type = |elem_type: pb::tensor_proto::DataType, dims: &[usize]| pb::TypeProto {
        value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
            elem_type: elem_type as i32,
            shape: Some(pb::TensorShapeProto {
                dim: dims
                    .iter()
                    .map(|&d| pb::tensor_shape_proto::Dimension {
                        value: Some(pb::tensor_shape_proto::dimension::Value::DimValue(d as i64)),
                        ..Default::default()
                    })
                    .collect(),
            }),
        })),
        ..Default::default()
    };
    // The tail's names are zkinfer's: no tensor of the model may use the prefix (an
    // initializer named like the labels would otherwise stand in for them).
    let names = g
        .node
        .iter()
        .flat_map(|n| n.input.iter().chain(&n.output))
        .chain(g.input.iter().map(|v| &v.name))
        .chain(g.output.iter().map(|v| &v.name))
        .chain(g.value_info.iter().map(|v| &v.name))
        .chain(g.initializer.iter().map(|t| &t.name))
        .chain(
            g.sparse_initializer
                .iter()
                .filter_map(|t| t.values.as_ref().map(|v| &v.name)),
        );
    if let Some(name) = names.into_iter().find(|n| n.starts_with("zkinfer:")) {
        return Err(config(format!(
            "a tensor is named `{name}`; names starting with `zkinfer:` are the certificate \
             graph's"
        )));
    }
    g.input.push(pb::ValueInfoProto {
        name: LABELS.into(),
        r#type: Some(tensor_type(pb::tensor_proto::DataType::Int64, &[batch])),
        ..Default::default()
    });
    let int_attr = |name: &str, i: i64| pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i,
        ..Default::default()
    };
    let node = |op: &str, inputs: &[&str], output: &str, attribute: Vec<pb::AttributeProto>| {
        pb::NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            name: output.into(),
            op_type: op.into(),
            attribute,
            ..Default::default()
        }
    };
    let tail = ["predicted", "correct", "correct:float"].map(|s| format!("zkinfer:{s}"));
    let [predicted, correct, correct_float] = &tail;
    g.node.push(node(
        "ArgMax",
        &[&scores.name],
        predicted,
        vec![int_attr("axis", 1), int_attr("keepdims", 0)],
    ));
    g.node
        .push(node("Equal", &[predicted, LABELS], correct, Vec::new()));
    g.node.push(node(
        "Cast",
        &[correct],
        correct_float,
        vec![int_attr("to", pb::tensor_proto::DataType::Float as i64)],
    ));
    g.output = vec![pb::ValueInfoProto {
        name: correct_float.clone(),
        r#type: Some(tensor_type(pb::tensor_proto::DataType::Float, &[batch])),
        ..Default::default()
    }];
    // Only what the count depends on: the model's other outputs (a label it computes
    // itself, say) would cost rows and prove nothing. ONNX lists nodes in topological
    // order, so one backward pass finds them.
    let mut needed: std::collections::BTreeSet<String> = [correct_float.clone()].into();
    let mut keep = vec![false; g.node.len()];
    for (i, n) in g.node.iter().enumerate().rev() {
        if n.output.iter().any(|o| needed.contains(o)) {
            keep[i] = true;
            needed.extend(n.input.iter().cloned());
        }
    }
    let mut k = keep.into_iter();
    g.node.retain(|_| k.next().unwrap_or(false));
    let mut imported = import_proto(&proto)?;
    // The count: a tree of additions, not ONNX's ReduceSum (a linear layer whose unit
    // weights would be hashed weights, which the prover chooses).
    let graph = &mut imported.graph;
    graph.nodes.push(Node {
        name: COUNT.into(),
        op: Op::Tally,
        inputs: vec![correct_float.clone()],
        output: COUNT.into(),
    });
    graph.shapes.insert(COUNT.into(), vec![1]);
    graph.output = COUNT.into();
    graph.outputs = vec![zkinfer_qir::Part {
        name: COUNT.into(),
        shape: vec![1],
        integer: false,
    }];
    // What the verifier reads the statement as: the samples, then exactly their labels,
    // and one output, the count.
    let sample = model.graph.inputs[0].shape.split_first().map(|(_, s)| s);
    let inputs = &imported.graph.inputs;
    let expected_input = |p: &zkinfer_qir::Part| {
        p.shape.split_first().map(|(&b, s)| (b, s)) == sample.map(|s| (batch, s))
    };
    let shape_ok = matches!(inputs.as_slice(), [x, l]
        if expected_input(x) && l.name == LABELS && l.shape == [batch] && l.integer)
        && imported.graph.outputs.len() == 1
        && imported.graph.output == COUNT
        && imported.graph.output_shape() == [1];
    if !shape_ok {
        return Err(config(format!(
            "the certificate graph does not have the inputs [{batch} samples, {batch} labels] \
             and the one output `{COUNT}` [1] (its inputs: {:?})",
            inputs
                .iter()
                .map(|p| (&p.name, &p.shape))
                .collect::<Vec<_>>()
        )));
    }
    Ok(CertificateGraph {
        imported,
        model,
        batch,
        classes,
        scores: scores.name,
    })
}
