//! Softmax and layer normalisation, composed from the other lowerings with ranges known
//! by construction or from the input's calibrated bound.

use super::*;

impl Quantizer<'_> {
    /// Softmax over the last axis: `e = exp(x − max)`, `y = e · (1 / Σ e)`. Ranges are
    /// known (`e ∈ (0, 1]`, `Σ e ∈ [1, len]`), so no calibration is needed inside.
    pub(super) fn softmax(
        &mut self,
        node: &str,
        input: &str,
        out: &str,
        shape: &[usize],
    ) -> Result<QTensor, CompileError> {
        let bits = self.cfg.act_bits as i32;
        let len = *shape.last().unwrap_or(&1);
        let rows = shape.iter().product::<usize>() / len.max(1);
        let x = self.bounded(input, node)?;
        // One bit of headroom so x − max stays inside the lookup's range.
        let half = self.rescale_to(
            node,
            x,
            &format!("{out}/half"),
            &[rows, len],
            x.scale - 1,
            Activation::Identity,
        )?;
        let index: Vec<Vec<Option<usize>>> = (0..rows)
            .map(|r| (0..len).map(|j| Some(r * len + j)).collect())
            .collect();
        let m = self.max_chain(half, &format!("{out}/max"), &index, false);
        let m = self.spread(m, &format!("{out}/max_b"), rows, len);
        let d = self.value(&format!("{out}/shifted"), vec![rows, len], half.scale);
        self.ops.push(QOp::Add(Add {
            a: half.id,
            b: AddOperand::Value { id: m.id, mul: -1 },
            output: d,
            a_mul: vec![1],
        }));
        let d = QTensor { id: d, ..half };
        let e_scale = bits - 2;
        let exp = self.table(TableSpec {
            func: Func::Exp,
            in_scale: d.scale,
            out_scale: e_scale,
        });
        let e = self.rescale_to(
            node,
            d,
            &format!("{out}/exp"),
            &[rows, len],
            d.scale,
            Activation::Table(exp),
        )?;
        let e = QTensor { nonneg: true, ..e };
        let sum = self.row_sum(e, &format!("{out}/sum"), rows, len, 1, 0);
        let sum_scale = scale_for(len as f64, self.cfg.act_bits, 1.0).min(e_scale);
        let recip = self.table(TableSpec {
            func: Func::Reciprocal,
            in_scale: sum_scale,
            out_scale: e_scale,
        });
        let r = self.rescale_to(
            node,
            sum,
            &format!("{out}/recip"),
            &[rows, 1],
            sum_scale,
            Activation::Table(recip),
        )?;
        let r = self.spread(r, &format!("{out}/recip_b"), rows, len);
        let y = self.product(e, r, &format!("{out}/prod"), &[rows, len]);
        let id = self.value(out, shape.to_vec(), y.scale);
        self.ops.push(QOp::Reshape(Reshape {
            input: y.id,
            output: id,
        }));
        Ok(QTensor {
            id,
            nonneg: true,
            ..y
        })
    }

    /// LayerNormalization over the last axis: `(x − mean) · rsqrt(var + ε) · γ + β`.
    /// Ranges come from the input's calibrated bound `M`: `|x − mean| < 2M`, `var ≤ M²`,
    /// `|x − mean| · rsqrt(var) ≤ sqrt(len − 1)`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn layer_norm(
        &mut self,
        node: &str,
        input: &str,
        out: &str,
        shape: &[usize],
        gamma: &[f32],
        beta: &[f32],
        epsilon: f32,
    ) -> Result<QTensor, CompileError> {
        let bits = self.cfg.act_bits as i32;
        let len = *shape.last().unwrap_or(&1);
        let rows = shape.iter().product::<usize>() / len.max(1);
        let x = self.bounded(input, node)?;
        let max_x =
            (self.cal.max_abs.get(input).copied().unwrap_or(0.0) as f64).max(2f64.powi(-x.scale));
        // mean = Σ x · round(2^(B-1) / len) / 2^(B-1)
        let wscale = bits - 1;
        let w = ((1i64 << wscale) as f64 / len as f64).round() as i64;
        let sum = self.row_sum(x, &format!("{out}/mean_acc"), rows, len, w, wscale);
        let mean = self.rescale_to(
            node,
            sum,
            &format!("{out}/mean"),
            &[rows, 1],
            x.scale,
            Activation::Identity,
        )?;
        let mean = self.spread(mean, &format!("{out}/mean_b"), rows, len);
        let c = self.value(&format!("{out}/centred_acc"), vec![rows, len], x.scale);
        self.ops.push(QOp::Add(Add {
            a: x.id,
            b: AddOperand::Value {
                id: mean.id,
                mul: -1,
            },
            output: c,
            a_mul: vec![1],
        }));
        let c = QTensor {
            id: c,
            at_target: false,
            nonneg: false,
            ..x
        };
        // |c| < 2^B at x's scale: one bit less keeps it bounded.
        let c = self.rescale_to(
            node,
            c,
            &format!("{out}/centred"),
            &[rows, len],
            x.scale - 1,
            Activation::Identity,
        )?;
        let sq = self.product(c, c, &format!("{out}/sq"), &[rows, len]);
        let sq = QTensor { nonneg: true, ..sq };
        let var = self.row_sum(sq, &format!("{out}/var_acc"), rows, len, w, wscale);
        let eps = quantize_value(epsilon as f64, var.scale).max(1);
        let var = self.affine(
            var,
            &format!("{out}/var_eps"),
            &[rows, 1],
            vec![1],
            vec![eps; rows],
            var.scale,
        );
        let v_scale = scale_for(max_x * max_x, self.cfg.act_bits, HEADROOM).min(var.scale);
        // var ≥ one unit at v_scale (ε included), so rsqrt(var) ≤ 2^(v_scale / 2).
        let r_scale = scale_for(2f64.powf(v_scale as f64 / 2.0), self.cfg.act_bits, 1.0);
        let rsqrt = self.table(TableSpec {
            func: Func::Rsqrt,
            in_scale: v_scale,
            out_scale: r_scale,
        });
        let r = self.rescale_to(
            node,
            var,
            &format!("{out}/rstd"),
            &[rows, 1],
            v_scale,
            Activation::Table(rsqrt),
        )?;
        let r = self.spread(r, &format!("{out}/rstd_b"), rows, len);
        let norm = self.product(c, r, &format!("{out}/normed_acc"), &[rows, len]);
        let n_scale = scale_for((len as f64).sqrt(), self.cfg.act_bits, 1.0).min(norm.scale);
        let norm = self.rescale_to(
            node,
            norm,
            &format!("{out}/normed"),
            &[rows, len],
            n_scale,
            Activation::Identity,
        )?;
        let fa: Vec<f32> = (0..rows * len).map(|i| gamma[i % len]).collect();
        let fb: Vec<f32> = (0..rows * len).map(|i| beta[i % len]).collect();
        self.scale_and_shift(node, norm, out, shape, &fa, &fb)
    }
}
