//! Decoding a TensorProto's payload (float16/32/64, bool and integers up to 64 bits, raw
//! little-endian bytes or typed fields) per the ONNX spec, with the shape checked against
//! the data.

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
    } else if let Some((width, signed)) = narrow_integer(dt) {
        // bool and 8/16-bit integers: one value per `int32_data` entry, or `width` bytes.
        let data: Vec<i64> = if raw.is_empty() {
            t.int32_data.iter().map(|&v| v as i64).collect()
        } else {
            chunks(width)?
                .iter()
                .map(|c| match (width, signed) {
                    (1, true) => c[0] as i8 as i64,
                    (1, false) => c[0] as i64,
                    (_, true) => i16::from_le_bytes([c[0], c[1]]) as i64,
                    (_, false) => u16::from_le_bytes([c[0], c[1]]) as i64,
                })
                .collect()
        };
        check(data.len())?;
        Ok(Decoded::Int(shape, data))
    } else if dt == DataType::Uint32 as i32 || dt == DataType::Uint64 as i32 {
        let width = if dt == DataType::Uint32 as i32 { 4 } else { 8 };
        let data: Vec<i64> = if raw.is_empty() {
            t.uint64_data
                .iter()
                .map(|&v| i64::try_from(v))
                .collect::<Result<_, _>>()
        } else {
            chunks(width)?
                .iter()
                .map(|c| {
                    let mut b = [0u8; 8];
                    b[..width].copy_from_slice(c);
                    i64::try_from(u64::from_le_bytes(b))
                })
                .collect::<Result<_, _>>()
        }
        .map_err(|_| "an unsigned value does not fit 63 bits".to_string())?;
        check(data.len())?;
        Ok(Decoded::Int(shape, data))
    } else if dt == DataType::Float16 as i32 {
        let bits: Vec<u16> = if raw.is_empty() {
            t.int32_data.iter().map(|&v| v as u16).collect()
        } else {
            chunks(2)?
                .iter()
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect()
        };
        check(bits.len())?;
        Ok(Decoded::Float(Tensor::new(
            shape,
            bits.into_iter().map(half_to_f32).collect(),
        )))
    } else {
        Err(format!(
            "data type {dt} is not supported (float16/32/64, bool and integers up to 64 bits are)"
        ))
    }
}

/// Byte width and signedness of bool and the 8- and 16-bit integer types.
fn narrow_integer(dt: i32) -> Option<(usize, bool)> {
    use pb::tensor_proto::DataType as D;
    match D::try_from(dt).ok()? {
        D::Bool | D::Uint8 => Some((1, false)),
        D::Int8 => Some((1, true)),
        D::Int16 => Some((2, true)),
        D::Uint16 => Some((2, false)),
        _ => None,
    }
}

/// IEEE 754 half precision to single.
fn half_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f32::from(h & 0x3ff);
    sign * match exp {
        0 => frac * 2f32.powi(-24),
        31 if frac == 0.0 => f32::INFINITY,
        31 => f32::NAN,
        e => (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(dt: pb::tensor_proto::DataType, dims: &[i64], bytes: &[u8]) -> pb::TensorProto {
        pb::TensorProto {
            dims: dims.to_vec(),
            data_type: dt as i32,
            raw_data: bytes.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn decodes_bool_narrow_integers_and_half_floats() {
        use pb::tensor_proto::DataType as D;
        let ints = |t| match decode_tensor(&t) {
            Ok(Decoded::Int(_, v)) => v,
            _ => panic!("integers expected"),
        };
        assert_eq!(ints(raw(D::Bool, &[3], &[1, 0, 1])), [1, 0, 1]);
        assert_eq!(ints(raw(D::Int8, &[2], &[0xff, 7])), [-1, 7]);
        assert_eq!(ints(raw(D::Uint16, &[1], &[0x34, 0x12])), [0x1234]);
        let Ok(Decoded::Float(t)) =
            decode_tensor(&raw(D::Float16, &[3], &[0, 0x3c, 0, 0xc0, 0, 0x38]))
        else {
            panic!("floats expected")
        };
        assert_eq!(t.data, [1.0, -2.0, 0.5]);
        // A short payload is named, not read past.
        let e = decode_tensor(&raw(D::Int16, &[2], &[1, 0, 2]))
            .err()
            .unwrap();
        assert!(e.contains("4 bytes"), "{e}");
    }
}
