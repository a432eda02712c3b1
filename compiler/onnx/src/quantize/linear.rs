//! Lowerings onto the linear chip: dense layers, pooling windows, row sums and
//! products of two computed matrices.

use super::*;

impl Quantizer<'_> {
    /// `y[r, n] = bias + Σ_k x[r, k] · w[n, k]`; `weight` is `[out, in]`, `bias` `[out]` or `[rows·out]`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn linear(
        &mut self,
        node: &str,
        x: QTensor,
        out_name: &str,
        out_shape: Vec<usize>,
        weight: &[f32],
        in_features: usize,
        out_features: usize,
        bias: Option<Vec<f32>>,
    ) -> Result<QTensor, CompileError> {
        let ws = self.weight_scale(weight, out_name, x.scale);
        self.linear_at(
            node,
            x,
            out_name,
            out_shape,
            weight,
            in_features,
            out_features,
            bias,
            ws,
        )
    }

    /// The scale of `weight` feeding `out_name` from an input at `x_scale`: the finest
    /// that fits `weight_bits`, kept low enough that the later rescale's shift stays below
    /// `act_bits` (so one remainder lookup suffices).
    pub(super) fn weight_scale(&self, weight: &[f32], out_name: &str, x_scale: i32) -> i32 {
        let natural = scale_for(max_abs(weight), self.weight_bits(), 1.0);
        let max_w = self.target_scale(out_name) + self.max_shift() - x_scale;
        natural.min(max_w)
    }

    /// [`Self::linear`] with the weights at scale `ws`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn linear_at(
        &mut self,
        node: &str,
        x: QTensor,
        out_name: &str,
        out_shape: Vec<usize>,
        weight: &[f32],
        in_features: usize,
        out_features: usize,
        bias: Option<Vec<f32>>,
        ws: i32,
    ) -> Result<QTensor, CompileError> {
        let acc_scale = x.scale + ws;
        let weight_q: Vec<i64> = weight
            .iter()
            .map(|&w| quantize_value(w as f64, ws))
            .collect();
        let bias_q = match bias {
            Some(b) => b
                .iter()
                .map(|&v| quantize_value(v as f64, acc_scale))
                .collect(),
            None => vec![0; out_features],
        };
        if weight_q
            .iter()
            .chain(&bias_q)
            .any(|v| v.unsigned_abs() >= 1 << 40)
        {
            return Err(CompileError::Quantize {
                node: node.to_string(),
                reason: "weights or bias too large to quantize at this scale".into(),
            });
        }
        let id = self.value(&format!("{out_name}/acc"), out_shape, acc_scale);
        self.ops.push(QOp::Linear(Linear {
            input: x.id,
            output: id,
            in_features,
            out_features,
            weight: weight_q,
            weight_scale: ws,
            bias: bias_q,
        }));
        Ok(QTensor {
            id,
            scale: acc_scale,
            at_target: false,
            nonneg: false,
        })
    }

    /// Average pooling as a linear layer with one output and weights `1 / window size`,
    /// applied to each (channel, position) window.
    pub(super) fn pool(
        &mut self,
        node: &str,
        input: &str,
        out: &str,
        xs: &[usize],
        window: &crate::graph::Window,
        out_shape: &[usize],
    ) -> Result<QTensor, CompileError> {
        let [n, c, h, w] = crate::graph::nchw(xs);
        let [_, _, oh, ow] = crate::graph::nchw(out_shape);
        let (kh, kw) = (window.kernel[0], window.kernel[1]);
        let taps = window.taps(h, w, oh, ow);
        let index = (0..n * c)
            .flat_map(|plane| {
                taps.iter()
                    .flatten()
                    .map(move |t| t.map(|o| plane * h * w + o))
            })
            .collect();
        let x = self.bounded(input, node)?;
        let rows = n * c * oh * ow;
        let cols = self.gather(x, &format!("{out}/windows"), vec![rows, kh * kw], index);
        let weight = vec![1.0 / (kh * kw) as f32; kh * kw];
        let y = self.linear(node, cols, out, vec![rows, 1], &weight, kh * kw, 1, None)?;
        // rows are (plane, position): already NCHW order.
        let id = self.value(&format!("{out}/nchw"), out_shape.to_vec(), y.scale);
        self.ops.push(QOp::Reshape(Reshape {
            input: y.id,
            output: id,
        }));
        Ok(QTensor { id, ..y })
    }

    /// Sums groups of `len` consecutive elements, each times `weight` (at `weight_scale`),
    /// plus `bias` (at the sum's scale).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn row_sum(
        &mut self,
        x: QTensor,
        name: &str,
        rows: usize,
        len: usize,
        weight: i64,
        weight_scale: i32,
        bias: i64,
    ) -> QTensor {
        let id = self.value(name, vec![rows, 1], x.scale + weight_scale);
        self.ops.push(QOp::Linear(Linear {
            input: x.id,
            output: id,
            in_features: len,
            out_features: 1,
            weight: vec![weight; len],
            weight_scale,
            bias: vec![bias],
        }));
        QTensor {
            id,
            scale: x.scale + weight_scale,
            at_target: false,
            nonneg: x.nonneg && weight >= 0,
        }
    }

    /// `a · b` for two computed tensors (numpy matmul): every product is one row, and a
    /// linear layer with unit weights sums each dot product.
    pub(super) fn matmul_values(
        &mut self,
        node: &str,
        a: &str,
        b: &str,
        out: &str,
        out_shape: &[usize],
    ) -> Result<QTensor, CompileError> {
        let (sa, sb) = (self.shape(a), self.shape(b));
        let Some((a2, b2, batch)) = crate::graph::matmul_dims(&sa, &sb) else {
            return Err(CompileError::Quantize {
                node: node.to_string(),
                reason: "shapes cannot be multiplied".into(),
            });
        };
        let (m, k, n) = (a2[a2.len() - 2], a2[a2.len() - 1], b2[b2.len() - 1]);
        let nb: usize = batch.iter().product();
        let ia = broadcast_index(&a2[..a2.len() - 2], &batch);
        let ib = broadcast_index(&b2[..b2.len() - 2], &batch);
        let rows = nb * m * n;
        let (mut ga, mut gb) = (Vec::with_capacity(rows * k), Vec::with_capacity(rows * k));
        for bi in 0..nb {
            for i in 0..m {
                for j in 0..n {
                    for p in 0..k {
                        ga.push(ia[bi] * m * k + i * k + p);
                        gb.push(ib[bi] * k * n + p * n + j);
                    }
                }
            }
        }
        let x = self.bounded(a, node)?;
        let y = self.bounded(b, node)?;
        let x = self.rearrange(x, &format!("{out}/lhs"), vec![rows, k], ga);
        let y = self.rearrange(y, &format!("{out}/rhs"), vec![rows, k], gb);
        let p = self.product(x, y, &format!("{out}/products"), &[rows, k]);
        let id = self.value(&format!("{out}/acc"), vec![rows, 1], p.scale);
        self.ops.push(QOp::Linear(Linear {
            input: p.id,
            output: id,
            in_features: k,
            out_features: 1,
            weight: vec![1; k],
            weight_scale: 0,
            bias: vec![0],
        }));
        let out_id = self.value(out, out_shape.to_vec(), p.scale);
        self.ops.push(QOp::Reshape(Reshape {
            input: id,
            output: out_id,
        }));
        Ok(QTensor {
            id: out_id,
            scale: p.scale,
            at_target: false,
            nonneg: false,
        })
    }
}
