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

/// The `input_shapes` of an input file, if it gives them (they fix the model's symbolic
/// dimensions at import). Text that is not JSON gives none here: [`parse_input_json`]
/// then says what it expected.
pub fn input_shapes(text: &str) -> Result<Option<Vec<Vec<usize>>>, CompileError> {
    let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_str(text) else {
        return Ok(None);
    };
    match fields.remove("input_shapes") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v)
            .map(Some)
            .map_err(|e| CompileError::InputData {
                reason: format!("`input_shapes` must be one array of sizes per model input: {e}"),
            }),
    }
}

/// A shape without its dimensions of size 1: two shapes that agree on it lay out the
/// same flattened values.
fn squeezed(shape: &[usize]) -> Vec<usize> {
    shape.iter().copied().filter(|&d| d != 1).collect()
}

/// Parses the JSON text for a model whose inputs have the shapes `parts` (in order).
///
/// With one input, a batch may be given either as several arrays or as one array holding
/// `n · expected` values. With several, as EZKL writes them: one array per input, a
/// sample's arrays one after the other (several samples: `n · inputs` arrays); a sample
/// is their concatenation, the model's packed input.
pub fn parse_input_json(text: &str, parts: &[Vec<usize>]) -> Result<InputData, CompileError> {
    let err = |reason: String| CompileError::InputData { reason };
    let raw: Raw = serde_json::from_str(text).map_err(|e| {
        err(format!(
            "expected {{\"input_data\": [[numbers...]]}} (EZKL's format): {e}"
        ))
    })?;
    if let Some(shapes) = &raw.input_shapes {
        if shapes.len() != parts.len() {
            return Err(err(format!(
                "`input_shapes` names {} inputs; the model has {}, of shapes {parts:?}",
                shapes.len(),
                parts.len()
            )));
        }
        for (i, (given, shape)) in shapes.iter().zip(parts).enumerate() {
            if squeezed(given) != squeezed(shape) {
                return Err(err(format!(
                    "`input_shapes[{i}]` is {given:?}; the model input is {shape:?}"
                )));
            }
        }
    }
    if raw.input_data.is_empty() {
        return Err(err("`input_data` holds no sample".into()));
    }
    let finite = |i: usize, s: &[f64]| match s.iter().position(|v| !v.is_finite()) {
        Some(j) => Err(err(format!(
            "`input_data[{i}]` value {j} is not a finite number"
        ))),
        None => Ok(()),
    };
    let mut samples = Vec::new();
    if let [shape] = parts {
        let expected: usize = shape.iter().product();
        for (i, s) in raw.input_data.iter().enumerate() {
            if expected == 0 || s.is_empty() || !s.len().is_multiple_of(expected) {
                return Err(err(format!(
                    "`input_data[{i}]` has {} values; the model input takes {expected} per sample",
                    s.len()
                )));
            }
            finite(i, s)?;
            samples.extend(
                s.chunks(expected)
                    .map(|c| c.iter().map(|&v| v as f32).collect()),
            );
        }
        return Ok(InputData { samples });
    }
    if !raw.input_data.len().is_multiple_of(parts.len()) {
        return Err(err(format!(
            "`input_data` holds {} arrays; the model has {} inputs, one array each per sample",
            raw.input_data.len(),
            parts.len()
        )));
    }
    for (n, group) in raw.input_data.chunks(parts.len()).enumerate() {
        let mut sample = Vec::new();
        for (j, (s, shape)) in group.iter().zip(parts).enumerate() {
            let i = n * parts.len() + j;
            let expected: usize = shape.iter().product();
            if s.len() != expected {
                return Err(err(format!(
                    "`input_data[{i}]` has {} values; input {j} of the model ({shape:?}) takes \
                     {expected}",
                    s.len()
                )));
            }
            finite(i, s)?;
            sample.extend(s.iter().map(|&v| v as f32));
        }
        samples.push(sample);
    }
    Ok(InputData { samples })
}

/// A labelled dataset: EZKL's input JSON with one integer label per sample,
/// `{"input_data": [[...], ...], "labels": [2, 0, ...]}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub samples: Vec<Vec<f32>>,
    pub labels: Vec<i64>,
}

/// Parses a labelled dataset for a model whose inputs have the shapes `parts`.
pub fn parse_dataset_json(text: &str, parts: &[Vec<usize>]) -> Result<Dataset, CompileError> {
    let err = |reason: String| CompileError::InputData { reason };
    let mut v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        err(format!(
            "expected {{\"input_data\": [[numbers...]], \"labels\": [integers...]}}: {e}"
        ))
    })?;
    let labels = v
        .as_object_mut()
        .and_then(|o| o.remove("labels"))
        .ok_or_else(|| err("no `labels`: a dataset gives one integer label per sample".into()))?;
    let labels: Vec<i64> = serde_json::from_value(labels)
        .map_err(|e| err(format!("`labels` must be an array of integers: {e}")))?;
    let samples = parse_input_json(&v.to_string(), parts)?.samples;
    if samples.len() != labels.len() {
        return Err(err(format!(
            "{} samples and {} labels; a dataset gives one label per sample",
            samples.len(),
            labels.len()
        )));
    }
    Ok(Dataset { samples, labels })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_labelled_dataset() {
        let d = parse_dataset_json(
            r#"{"input_data": [[1, 2], [3, 4]], "labels": [1, 0]}"#,
            &[vec![2]],
        )
        .unwrap();
        assert_eq!(d.samples, vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
        assert_eq!(d.labels, vec![1, 0]);
        for bad in [
            r#"{"input_data": [[1, 2]]}"#,
            r#"{"input_data": [[1, 2]], "labels": [0.5]}"#,
            r#"{"input_data": [[1, 2]], "labels": [0, 1]}"#,
            r#"{"input_data": [[1, 2]], "labels": [0], "extra": 1}"#,
        ] {
            assert!(parse_dataset_json(bad, &[vec![2]]).is_err(), "{bad}");
        }
    }

    #[test]
    fn input_shapes_are_read_where_given() {
        let given = r#"{"input_data": [[1.0]], "input_shapes": [[1, 3], [2]]}"#;
        assert_eq!(
            input_shapes(given).unwrap(),
            Some(vec![vec![1, 3], vec![2]])
        );
        assert_eq!(input_shapes(r#"{"input_data": [[1.0]]}"#).unwrap(), None);
        // Not JSON: none here, and parse_input_json says what it expected.
        assert_eq!(input_shapes("not json").unwrap(), None);
        let e = input_shapes(r#"{"input_shapes": ["a"]}"#).unwrap_err();
        assert!(
            e.to_string().contains("`input_shapes` must be one array"),
            "{e}"
        );
    }

    #[test]
    fn reads_ezkl_format_and_batches() {
        let d = parse_input_json(r#"{"input_data": [[1, 2, 3, 4]]}"#, &[vec![2]]).unwrap();
        assert_eq!(d.samples, vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
        let d = parse_input_json(r#"{"input_data": [[1, 2], [3, 4]]}"#, &[vec![2]]).unwrap();
        assert_eq!(d.samples.len(), 2);
    }

    #[test]
    fn reads_the_files_ezkl_writes() {
        let text = r#"{"input_shapes": [[3, 2]], "input_data": [[1, 2, 3, 4, 5, 6]],
                       "output_data": [[0.5, 0.25]]}"#;
        let d = parse_input_json(text, &[vec![1, 3, 2]]).unwrap();
        assert_eq!(d.samples, vec![vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]);
        // The shape is checked against the model's, not only the number of values.
        let e = parse_input_json(text, &[vec![1, 2, 3]]).unwrap_err();
        assert!(e.to_string().contains("`input_shapes[0]` is [3, 2]"), "{e}");
        let two = r#"{"input_shapes": [[3, 2], [1]], "input_data": [[1, 2, 3, 4, 5, 6]]}"#;
        let e = parse_input_json(two, &[vec![3, 2]]).unwrap_err();
        assert!(e.to_string().contains("names 2 inputs"), "{e}");
    }

    #[test]
    fn several_inputs_are_one_array_each_and_packed() {
        let parts = [vec![1, 2], vec![3]];
        let text = r#"{"input_shapes": [[1, 2], [3]], "input_data": [[1, 2], [3, 4, 5]]}"#;
        let d = parse_input_json(text, &parts).unwrap();
        assert_eq!(d.samples, vec![vec![1.0, 2.0, 3.0, 4.0, 5.0]]);
        // Two samples: four arrays.
        let text = r#"{"input_data": [[1, 2], [3, 4, 5], [6, 7], [8, 9, 10]]}"#;
        assert_eq!(parse_input_json(text, &parts).unwrap().samples.len(), 2);
        // An array of the wrong length is named with the input it belongs to.
        let e = parse_input_json(r#"{"input_data": [[1, 2], [3, 4]]}"#, &parts).unwrap_err();
        assert!(
            e.to_string().contains("input 1 of the model ([3]) takes 3"),
            "{e}"
        );
        let e = parse_input_json(r#"{"input_data": [[1, 2]]}"#, &parts).unwrap_err();
        assert!(e.to_string().contains("one array each"), "{e}");
    }

    #[test]
    fn rejects_wrong_lengths_and_shapes() {
        let e = parse_input_json(r#"{"input_data": [[1, 2, 3]]}"#, &[vec![2]]).unwrap_err();
        assert!(e.to_string().contains("3 values"), "{e}");
        assert!(parse_input_json(r#"{"input": [[1]]}"#, &[vec![1]]).is_err());
        assert!(parse_input_json(r#"{"input_data": []}"#, &[vec![1]]).is_err());
        assert!(parse_input_json("not json", &[vec![1]]).is_err());
    }
}
