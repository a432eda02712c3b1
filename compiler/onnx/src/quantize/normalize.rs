//! Softmax and layer normalisation, composed from the other lowerings with ranges known
//! by construction or from the input's calibrated bound.

use super::*;

impl Quantizer<'_> {
    /// Softmax over the last axis: `e = exp(x − max)`, `y = e · (1 / Σ e)`. Ranges are
    /// known (`e ∈ (0, 1]`, `Σ e ∈ [1, len]`) but for `x − max`, which the calibrated
    /// spread of the rows bounds (`Calibration::inner`).
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
        // x − max must stay inside the lookup's range: |x − max| ≤ 2M for inputs bounded
        // by M, one bit more than x, unless calibration bounds the rows' spread (largest
        // minus smallest) more tightly, as it mostly does. The input is rescaled once,
        // straight to that scale (and so rounded to nearest where it is an accumulator).
        let x = self.get(input)?;
        let target = self.target_scale(input);
        let half_scale = match self.cal.inner.get(&format!("{out}/spread")) {
            Some(&s) if s > 0.0 => scale_for(f64::from(s), self.cfg.act_bits, HEADROOM).min(target),
            _ => target - 1,
        }
        .min(x.scale);
        let half = self.rescale_to(
            node,
            x,
            &format!("{out}/half"),
            &[rows, len],
            half_scale,
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
        // The exponential's table may read its input coarser than the activations
        // (`Self::func_bits`): then the same bound at its width, one more rescale on the
        // row the lookup takes anyway.
        let exp_bits = self.func_bits(Func::Exp);
        let exp_scale = match self.cal.inner.get(&format!("{out}/spread")) {
            Some(&s) if s > 0.0 => scale_for(f64::from(s), exp_bits, HEADROOM),
            _ => self.target_scale_at(input, exp_bits) - 1,
        }
        .min(d.scale);
        let e_scale = bits - 2;
        let exp = self.table(Func::Exp, exp_scale, e_scale);
        let e = self.rescale_to(
            node,
            d,
            &format!("{out}/exp"),
            &[rows, len],
            exp_scale,
            Activation::Table(exp),
        )?;
        let e = QTensor { nonneg: true, ..e };
        let sum = self.row_sum(e, &format!("{out}/sum"), rows, len, 1, 0, 0);
        let sum_scale = scale_for(len as f64, self.func_bits(Func::Reciprocal), 1.0).min(e_scale);
        let recip = self.table(Func::Reciprocal, sum_scale, e_scale);
        let r0 = self.rescale_to(
            node,
            sum,
            &format!("{out}/recip0"),
            &[rows, 1],
            sum_scale,
            Activation::Table(recip),
        )?;
        // The table reads the sum at a scale coarse enough for its largest value (len),
        // which leaves a sum near 1 (a peaked row) few significant bits. One Newton step
        // on the exact sum, r = r0 · (2 − Σe · r0), squares the relative error, at a few
        // ops per row.
        let p = self.product(sum, r0, &format!("{out}/recip_check"), &[rows, 1]);
        let two = 2 * pow2(p.scale);
        let q = self.affine(
            p,
            &format!("{out}/recip_step"),
            &[rows, 1],
            vec![-1],
            vec![two; rows],
            p.scale,
        );
        let r = self.product(r0, q, &format!("{out}/recip_acc"), &[rows, 1]);
        // A constant term (zero), so that its rescale rounds (see `round_to_nearest`).
        let r = self.affine(
            r,
            &format!("{out}/recip_k"),
            &[rows, 1],
            vec![1],
            vec![0; rows],
            r.scale,
        );
        let r = self.rescale_to(
            node,
            r,
            &format!("{out}/recip"),
            &[rows, 1],
            e_scale,
            Activation::Identity,
        )?;
        let r = self.spread(r, &format!("{out}/recip_b"), rows, len);
        let y = self.product(e, r, &format!("{out}/prod"), &[rows, len]);
        // A constant term (zero) on the probabilities: the rescale that bounds them then
        // rounds to nearest (see `round_to_nearest`). A floor would bias every one of them
        // by half a unit down, and a weighted sum over a row by len halves.
        let y = self.affine(
            y,
            &format!("{out}/prod_k"),
            &[rows, len],
            vec![1],
            vec![0; rows * len],
            y.scale,
        );
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

    /// The weight of a mean over `len` elements, `2^ws / len` at scale `ws` made an
    /// integer by `to_integer`: the finest that `weight_bits` holds, and `ws ≤ max_ws`. A
    /// coarse one is a systematic error: `round(2^11 / 768) = 3` is 12.5% off
    /// `2^11 / 768`, where `ws = 20` gives `1365`, 0.02% off.
    fn mean_weight(&self, len: usize, max_ws: i32, to_integer: fn(f64) -> f64) -> (i64, i32) {
        let limit = (1i64 << (self.weight_bits() - 1)) - 1;
        let weight = |ws: i32| to_integer((ws as f64).exp2() / len as f64) as i64;
        let mut ws = max_ws.clamp(0, 62);
        while ws > 0 && weight(ws) > limit {
            ws -= 1;
        }
        (weight(ws).max(1), ws)
    }

    /// The reciprocal square root of the layer normalisation `out`: the table's input and
    /// output scales, which every layer normalisation of the model shares (a table each
    /// would cost `2^B` rows each), and this one's variance and result scales.
    ///
    /// One table serves all exactly: read at scale `a`, an integer variance `V` of scale
    /// `v = a + 2m` stands for `2^(2m)` times its value, whose reciprocal square root is
    /// `2^(−m)` times the one wanted, so the table's output, of scale `b`, is the result at
    /// scale `b − m`. Each normalisation takes the finest variance scale its range allows
    /// (one bit less where the parity differs from `a`), and `b` is the finest at which no
    /// normalisation's reciprocal square root saturates.
    ///
    /// Calibration bounds the variance and its reciprocal square root far tighter than
    /// the worst cases (`var ≤ M²` for inputs bounded by `M`, `rsqrt(var) ≤
    /// 2^(v/2)`), which leave them few significant bits; the worst cases stand where
    /// calibration saw nothing. Past its bound the reciprocal square root saturates (the
    /// table clamps); a variance past its bound fails its range check, as any calibrated
    /// tensor does.
    fn rsqrt_scales(&self, out: &str) -> RsqrtScales {
        let bits = self.cfg.act_bits;
        let inner = |out: &str, what: &str| {
            self.cal
                .inner
                .get(&format!("{out}/{what}"))
                .map(|&m| f64::from(m))
                .filter(|m| *m > 0.0 && m.is_finite())
        };
        // (output name, variance scale, largest reciprocal square root), per normalisation.
        let mut norms: Vec<(&str, i32, f64)> = Vec::new();
        for n in &self.graph.nodes {
            let Op::LayerNormalization { epsilon } = n.op else {
                continue;
            };
            let Some(input) = n.inputs.first() else {
                continue;
            };
            let max_x = (self.cal.max_abs.get(input).copied().unwrap_or(0.0) as f64)
                .max(2f64.powi(-self.target_scale(input)));
            let var = inner(&n.output, "var").map_or(max_x * max_x, |v| v + f64::from(epsilon));
            let mut v = scale_for(var, self.func_bits(Func::Rsqrt), HEADROOM);
            if let Some(&(_, a, _)) = norms.first() {
                v -= (v - a).rem_euclid(2);
            }
            // var ≥ one unit at v (ε included), so rsqrt(var) ≤ 2^(v / 2).
            let bound = 2f64.powf(v as f64 / 2.0);
            let rstd = inner(&n.output, "rstd").map_or(bound, |r| r.min(bound));
            norms.push((n.output.as_str(), v, rstd));
        }
        let a = norms.first().map_or(bits as i32 - 2, |n| n.1);
        let half = |v: i32| (v - a).div_euclid(2);
        let b = norms
            .iter()
            .map(|&(_, v, rstd)| scale_for(rstd, bits, HEADROOM) + half(v))
            .min()
            .unwrap_or(bits as i32 - 2);
        let v = norms.iter().find(|n| n.0 == out).map_or(a, |n| n.1);
        RsqrtScales {
            table_in: a,
            table_out: b,
            var: v,
            result: b - half(v),
        }
    }

    /// LayerNormalization over the last axis: `(x − mean) · rsqrt(var + ε) · γ + β`.
    /// `|x − mean| < 2M` for the input's calibrated bound `M`; the reciprocal square
    /// root's scales are [`Self::rsqrt_scales`]'s.
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
        let len = *shape.last().unwrap_or(&1);
        let rows = shape.iter().product::<usize>() / len.max(1);
        let x = self.bounded(input, node)?;
        // mean = Σ x · round(2^ws / len) / 2^ws
        let (w, wscale) = self.mean_weight(len, self.max_shift(), f64::round);
        let sum = self.row_sum(x, &format!("{out}/mean_acc"), rows, len, w, wscale, 0);
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
        let scales = self.rsqrt_scales(out);
        // The variance sums c² with the weight w = ⌊2^ws / len⌋ ≥ 1 (so 2^ws ≥ len), and
        // its rescale, from 2·c.scale + ws to the variance's scale, must stay provable.
        // c keeps x's scale where that allows: |c| < 2^B there, one bit past the range
        // check, but only its square's sum and its product with the reciprocal square
        // root are read, and they are rescaled (so bounded) in their turn. Else c gives
        // up the bits it must, rescaled (which bounds it).
        let log_len = (len as f64).log2().ceil() as i32;
        let excess = 2 * x.scale + log_len - scales.var - self.max_shift();
        let c = if excess > 0 {
            let scale = x.scale - (excess + 1) / 2;
            self.rescale_to(
                node,
                c,
                &format!("{out}/centred"),
                &[rows, len],
                scale,
                Activation::Identity,
            )?
        } else {
            c
        };
        let sq = self.product(c, c, &format!("{out}/sq"), &[rows, len]);
        let sq = QTensor { nonneg: true, ..sq };
        let (w, wscale) =
            self.mean_weight(len, self.max_shift() - sq.scale + scales.var, f64::floor);
        // The sum weighs each square by w / 2^ws = ρ / len, with ½ < ρ ≤ 1: it computes
        // ρ·(var + ε), ε being its bias, never more than var + ε, and the table
        // ρ^(−1/2)·rsqrt(var + ε). γ takes √ρ back, so no error of w's remains.
        let rho = w as f64 * len as f64 / (wscale as f64).exp2();
        let eps = quantize_value(epsilon as f64 * rho, sq.scale + wscale).max(1);
        let var = self.row_sum(sq, &format!("{out}/var_acc"), rows, len, w, wscale, eps);
        let shift = var.scale - scales.var;
        if !(0..=self.max_shift()).contains(&shift) {
            return Err(CompileError::Quantize {
                node: node.to_string(),
                reason: format!("rescaling the variance by 2^{shift} is outside the remainder check; use more --bits"),
            });
        }
        let rsqrt = self.table(Func::Rsqrt, scales.table_in, scales.table_out);
        let id = self.value(&format!("{out}/rstd"), vec![rows, 1], scales.result);
        self.ops.push(QOp::Rescale(Rescale {
            input: var.id,
            output: id,
            shift: shift as u32,
            act: Activation::Table(rsqrt),
        }));
        let r = QTensor {
            id,
            scale: scales.result,
            at_target: true,
            nonneg: true,
        };
        let r = self.spread(r, &format!("{out}/rstd_b"), rows, len);
        let norm = self.product(c, r, &format!("{out}/normed_acc"), &[rows, len]);
        // γ and β apply to the product itself: it is small (both factors are), and one
        // rescale after the affine map, rounding to nearest, loses less than two.
        let fa: Vec<f32> = (0..rows * len)
            .map(|i| (f64::from(gamma[i % len]) * rho.sqrt()) as f32)
            .collect();
        let fb: Vec<f32> = (0..rows * len).map(|i| beta[i % len]).collect();
        self.scale_and_shift(node, norm, out, shape, &fa, &fb)
    }
}

/// See [`Quantizer::rsqrt_scales`].
struct RsqrtScales {
    table_in: i32,
    table_out: i32,
    /// The variance's scale (`table_in` plus an even number).
    var: i32,
    /// The reciprocal square root's scale.
    result: i32,
}
