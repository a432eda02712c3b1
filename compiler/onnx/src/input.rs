//! Input samples in EZKL's JSON format: `{"input_data": [[...flattened floats...], ...]}`,
//! as EZKL writes them: `input_shapes` (one shape per model input) is checked against the
//! model, `output_data` is ignored.

use serde::Deserialize;

use crate::CompileError;

/// One or more flattened input samples.
#[derive(Clone, Debug, PartialEq)]
pub struct InputData {
    pub samples: Vec<Vec<f32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    input_data: Vec<Vec<f64>>,
    #[serde(default)]
    input_shapes: Option<Vec<Vec<usize>>>,
    #[serde(default)]
    #[allow(dead_code)]
    output_data: Option<serde_json::Value>,
}

/// A shape without its dimensions of size 1: two shapes that agree on it lay out the
/// same flattened values.
fn squeezed(shape: &[usize]) -> Vec<usize> {
    shape.iter().copied().filter(|&d| d != 1).collect()
}

/// Parses the JSON text for a model whose input has `shape`.
///
/// A batch may be given either as several arrays or as one array holding
/// `n · expected` values.
pub fn parse_input_json(text: &str, shape: &[usize]) -> Result<InputData, CompileError> {
    let err = |reason: String| CompileError::InputData { reason };
    let expected: usize = shape.iter().product();
    let raw: Raw = serde_json::from_str(text).map_err(|e| {
        err(format!(
            "expected {{\"input_data\": [[numbers...]]}} (EZKL's format): {e}"
        ))
    })?;
    if let Some(shapes) = &raw.input_shapes {
        if shapes.len() != 1 {
            return Err(err(format!(
                "`input_shapes` names {} inputs; the model has 1, of shape {shape:?}",
                shapes.len()
            )));
        }
        if squeezed(&shapes[0]) != squeezed(shape) {
            return Err(err(format!(
                "`input_shapes[0]` is {:?}; the model input is {shape:?}",
                shapes[0]
            )));
        }
    }
    if raw.input_data.is_empty() {
        return Err(err("`input_data` holds no sample".into()));
    }
    let mut samples = Vec::new();
    for (i, s) in raw.input_data.iter().enumerate() {
        if expected == 0 || s.is_empty() || !s.len().is_multiple_of(expected) {
            return Err(err(format!(
                "`input_data[{i}]` has {} values; the model input takes {expected} per sample",
                s.len()
            )));
        }
        for chunk in s.chunks(expected) {
            if let Some(j) = chunk.iter().position(|v| !v.is_finite()) {
                return Err(err(format!(
                    "`input_data[{i}]` value {j} is not a finite number"
                )));
            }
            samples.push(chunk.iter().map(|&v| v as f32).collect());
        }
    }
    Ok(InputData { samples })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ezkl_format_and_batches() {
        let d = parse_input_json(r#"{"input_data": [[1, 2, 3, 4]]}"#, &[2]).unwrap();
        assert_eq!(d.samples, vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
        let d = parse_input_json(r#"{"input_data": [[1, 2], [3, 4]]}"#, &[2]).unwrap();
        assert_eq!(d.samples.len(), 2);
    }

    #[test]
    fn reads_the_files_ezkl_writes() {
        let text = r#"{"input_shapes": [[3, 2]], "input_data": [[1, 2, 3, 4, 5, 6]],
                       "output_data": [[0.5, 0.25]]}"#;
        let d = parse_input_json(text, &[1, 3, 2]).unwrap();
        assert_eq!(d.samples, vec![vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]);
        // The shape is checked against the model's, not only the number of values.
        let e = parse_input_json(text, &[1, 2, 3]).unwrap_err();
        assert!(e.to_string().contains("`input_shapes[0]` is [3, 2]"), "{e}");
        let two = r#"{"input_shapes": [[3, 2], [1]], "input_data": [[1, 2, 3, 4, 5, 6]]}"#;
        let e = parse_input_json(two, &[3, 2]).unwrap_err();
        assert!(e.to_string().contains("names 2 inputs"), "{e}");
    }

    #[test]
    fn rejects_wrong_lengths_and_shapes() {
        let e = parse_input_json(r#"{"input_data": [[1, 2, 3]]}"#, &[2]).unwrap_err();
        assert!(e.to_string().contains("3 values"), "{e}");
        assert!(parse_input_json(r#"{"input": [[1]]}"#, &[1]).is_err());
        assert!(parse_input_json(r#"{"input_data": []}"#, &[1]).is_err());
        assert!(parse_input_json("not json", &[1]).is_err());
    }
}
