//! Decoding a TensorProto's payload (float32/float64 or int32/int64, raw little-endian
//! bytes or typed fields) per the ONNX spec, with the shape checked against the data.

use tract_onnx::pb;

use crate::graph::Tensor;

pub enum Decoded {
    Float(Tensor),
    Int(Vec<usize>, Vec<i64>),
}

/// Decodes a TensorProto's payload (float32/float64 or int32/int64) per the ONNX spec.
pub fn decode_tensor(t: &pb::TensorProto) -> Result<Decoded, String> {
    use pb::tensor_proto::DataType;
    if t.data_location == Some(pb::tensor_proto::DataLocation::External as i32) {
        return Err(
            "external tensor data is not supported; save the model with weights inside".into(),
        );
    }
    let shape = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("negative dimension {d}")))
        .collect::<Result<Vec<_>, _>>()?;
    let n: usize = shape.iter().product();
    let raw = &t.raw_data;
    let check = |len: usize| {
        if len == n {
            Ok(())
        } else {
            Err(format!(
                "shape {shape:?} needs {n} values, the tensor holds {len}"
            ))
        }
    };
    let chunks = |w: usize| -> Result<Vec<&[u8]>, String> {
        if raw.len() != n * w {
            return Err(format!(
                "shape {shape:?} needs {} bytes of raw data, found {}",
                n * w,
                raw.len()
            ));
        }
        Ok(raw.chunks_exact(w).collect())
    };
    let dt = t.data_type;
    if dt == DataType::Float as i32 {
        let data: Vec<f32> = if raw.is_empty() {
            t.float_data.clone()
        } else {
            chunks(4)?
                .iter()
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        };
        check(data.len())?;
        Ok(Decoded::Float(Tensor::new(shape, data)))
    } else if dt == DataType::Double as i32 {
        let data: Vec<f32> = if raw.is_empty() {
            t.double_data.iter().map(|&v| v as f32).collect()
        } else {
            chunks(8)?
                .iter()
                .map(|c| f64::from_le_bytes(std::array::from_fn(|i| c[i])) as f32)
                .collect()
        };
        check(data.len())?;
        Ok(Decoded::Float(Tensor::new(shape, data)))
    } else if dt == DataType::Int64 as i32 {
        let data: Vec<i64> = if raw.is_empty() {
            t.int64_data.clone()
        } else {
            chunks(8)?
                .iter()
                .map(|c| i64::from_le_bytes(std::array::from_fn(|i| c[i])))
                .collect()
        };
        check(data.len())?;
        Ok(Decoded::Int(shape, data))
    } else if dt == DataType::Int32 as i32 {
        let data: Vec<i64> = if raw.is_empty() {
            t.int32_data.iter().map(|&v| v as i64).collect()
        } else {
            chunks(4)?
                .iter()
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                .collect()
        };
        check(data.len())?;
        Ok(Decoded::Int(shape, data))
    } else {
        Err(format!(
            "data type {dt} is not supported (float32, float64, int32, int64 are)"
        ))
    }
}
