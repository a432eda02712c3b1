//! Lowerings onto the element-wise lanes: additions, constant factors, products,
//! max chains and tabulated functions.

use super::*;

impl Quantizer<'_> {
    /// `out = a + sign · b`, scales aligned by powers of two; either side may be a constant.
    pub(super) fn add(
        &mut self,
        node: &str,
        a: &str,
        b: &str,
        sign: i64,
        out: &str,
        out_shape: &[usize],
    ) -> Result<QTensor, CompileError> {
        let unsupported = |reason: &str| CompileError::Quantize {
            node: node.to_string(),
            reason: reason.to_string(),
        };
        let (ca, cb) = (self.constant(a).cloned(), self.constant(b).cloned());
        match (ca, cb) {
            (Some(_), Some(_)) => Err(unsupported("both operands are constants; fold them first")),
            (None, None) => {
                // Both at their calibrated scales, so aligning them cannot inflate the scale
                // past what one rescale can bring back.
                let x = self.bounded_as(a, node, out_shape)?;
                let y = self.bounded_as(b, node, out_shape)?;
                let s = x.scale.max(y.scale);
                if s - x.scale.min(y.scale) > 40 {
                    return Err(unsupported("operand scales differ by more than 2^40"));
                }
                let id = self.value(out, out_shape.to_vec(), s);
                self.ops.push(QOp::Add(Add {
                    a: x.id,
                    b: AddOperand::Value {
                        id: y.id,
                        mul: sign * pow2(s - y.scale),
                    },
                    output: id,
                    a_mul: vec![pow2(s - x.scale)],
                }));
                Ok(QTensor {
                    id,
                    scale: s,
                    at_target: false,
                    nonneg: false,
                })
            }
            (ca, cb) => {
                // var ± c, or c ± var: the variable side times ±1 plus the constant.
                let (var, c, var_sign, c_sign) = match (ca, cb) {
                    (None, Some(c)) => (a, c, 1, sign),
                    (Some(c), _) => (b, c, sign, 1),
                    (None, None) => unreachable!("handled above"),
                };
                let x = self.get(var)?;
                let x = self.broadcast(x, var, out_shape);
                let idx = broadcast_index(&c.shape, out_shape);
                let k = idx
                    .iter()
                    .map(|&i| c_sign * quantize_value(c.data[i] as f64, x.scale))
                    .collect();
                Ok(self.affine(x, out, out_shape, vec![var_sign], k, x.scale))
            }
        }
    }

    /// Gathers elements of several graph tensors into one value (no rows), after bounding
    /// them (broadcast to `broadcast` if given) and bringing them to one scale: `Up` to the
    /// largest (a multiplication by a power of two, exact) or `Down` to the smallest (a
    /// rescale, which keeps every value bounded).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn join(
        &mut self,
        node: &str,
        inputs: &[String],
        broadcast: Option<&[usize]>,
        align: Align,
        out: &str,
        out_shape: Vec<usize>,
        index: Vec<Option<(usize, usize)>>,
    ) -> Result<QTensor, CompileError> {
        let unsupported = |reason: &str| CompileError::Quantize {
            node: node.to_string(),
            reason: reason.to_string(),
        };
        let mut parts = Vec::with_capacity(inputs.len());
        for name in inputs {
            if self.constant(name).is_some() {
                return Err(unsupported("a constant input is not supported here"));
            }
            parts.push(match broadcast {
                Some(shape) => self.bounded_as(name, node, shape)?,
                None => self.bounded(name, node)?,
            });
        }
        let scales = parts.iter().map(|t| t.scale);
        let (lo, hi) = (scales.clone().min().unwrap_or(0), scales.max().unwrap_or(0));
        if hi - lo > 40 {
            return Err(unsupported("input scales differ by more than 2^40"));
        }
        let s = match align {
            Align::Up => hi,
            Align::Down => lo,
        };
        let mut ids = Vec::with_capacity(parts.len());
        for (k, (t, name)) in parts.iter().zip(inputs).enumerate() {
            let shape = match broadcast {
                Some(shape) => shape.to_vec(),
                None => self.shape(name),
            };
            let aligned = format!("{out}/in{k}");
            ids.push(if t.scale == s {
                t.id
            } else if t.scale < s {
                let len = shape.iter().product();
                self.affine(
                    *t,
                    &aligned,
                    &shape,
                    vec![pow2(s - t.scale)],
                    vec![0; len],
                    s,
                )
                .id
            } else {
                let id = self.value(&aligned, shape, s);
                self.ops.push(QOp::Rescale(Rescale {
                    input: t.id,
                    output: id,
                    shift: (t.scale - s) as u32,
                    act: Activation::Identity,
                }));
                id
            });
        }
        let id = self.value(out, out_shape, s);
        self.ops.push(QOp::Concat(Concat {
            inputs: ids,
            output: id,
            index,
        }));
        Ok(QTensor {
            id,
            scale: s,
            at_target: false,
            nonneg: parts.iter().all(|t| t.nonneg),
        })
    }

    /// Sum, Max or Min of several tensors, broadcast to `out_shape`: the inputs joined as
    /// `[elements, inputs]` rows, then a unit-weight row sum or a max/min chain.
    pub(super) fn nary(
        &mut self,
        node: &str,
        inputs: &[String],
        op: &Op,
        out: &str,
        out_shape: &[usize],
    ) -> Result<QTensor, CompileError> {
        let (n, k) = (out_shape.iter().product::<usize>(), inputs.len());
        let index = (0..n * k).map(|f| Some((f % k, f / k))).collect();
        let align = if matches!(op, Op::Sum) {
            Align::Up
        } else {
            Align::Down
        };
        let rows = format!("{out}/rows");
        let x = self.join(
            node,
            inputs,
            Some(out_shape),
            align,
            &rows,
            vec![n, k],
            index,
        )?;
        let y = if matches!(op, Op::Sum) {
            self.row_sum(x, &format!("{out}/sum"), n, k, 1, 0, 0)
        } else {
            let x = self.halved_unless_nonneg(x, &rows, &[n, k]);
            let taps: Vec<Vec<Option<usize>>> = (0..n)
                .map(|i| (0..k).map(|t| Some(i * k + t)).collect())
                .collect();
            self.max_chain(x, out, &taps, matches!(op, Op::Min))
        };
        let id = self.value(out, out_shape.to_vec(), y.scale);
        self.ops.push(QOp::Reshape(Reshape {
            input: y.id,
            output: id,
        }));
        Ok(QTensor { id, ..y })
    }

    /// `x` itself if it is never negative, else `x / 2` (one bit less): then the
    /// difference of two of its elements is bounded, as a max/min chain needs.
    pub(super) fn halved_unless_nonneg(
        &mut self,
        x: QTensor,
        name: &str,
        shape: &[usize],
    ) -> QTensor {
        if x.nonneg {
            return x;
        }
        let id = self.value(&format!("{name}/half"), shape.to_vec(), x.scale - 1);
        self.ops.push(QOp::Rescale(Rescale {
            input: x.id,
            output: id,
            shift: 1,
            act: Activation::Identity,
        }));
        QTensor {
            id,
            scale: x.scale - 1,
            ..x
        }
    }

    /// `out = x · mul + k` with integer factors, at `scale`.
    pub(super) fn affine(
        &mut self,
        x: QTensor,
        out: &str,
        out_shape: &[usize],
        mul: Vec<i64>,
        k: Vec<i64>,
        scale: i32,
    ) -> QTensor {
        let id = self.value(out, out_shape.to_vec(), scale);
        self.ops.push(QOp::Add(Add {
            a: x.id,
            b: AddOperand::Constant(k),
            output: id,
            a_mul: mul,
        }));
        QTensor {
            id,
            scale,
            at_target: false,
            nonneg: false,
        }
    }

    /// `out = x · factor + offset` element-wise with real factors: the factors get their
    /// own scale (like weights), the result is an accumulator at `scale(x) + that scale`.
    pub(super) fn scale_and_shift(
        &mut self,
        node: &str,
        x: QTensor,
        out: &str,
        out_shape: &[usize],
        factors: &[f32],
        offsets: &[f32],
    ) -> Result<QTensor, CompileError> {
        let natural = scale_for(max_abs(factors), self.weight_bits(), 1.0);
        let fs = natural.min(self.target_scale(out) + self.max_shift() - x.scale);
        let acc = x.scale + fs;
        let mul: Vec<i64> = factors
            .iter()
            .map(|&f| quantize_value(f as f64, fs))
            .collect();
        let k: Vec<i64> = offsets
            .iter()
            .map(|&b| quantize_value(b as f64, acc))
            .collect();
        if mul.iter().chain(&k).any(|v| v.unsigned_abs() >= 1 << 40) {
            return Err(CompileError::Quantize {
                node: node.to_string(),
                reason: "factors too large to quantize at this scale".into(),
            });
        }
        let mul = if mul.iter().all(|&m| m == mul[0]) {
            vec![mul[0]]
        } else {
            mul
        };
        Ok(self.affine(x, out, out_shape, mul, k, acc))
    }

    /// `out = trunc(x / d)` element-wise for an integer `x` and constant integer divisors
    /// (ONNX's `Div` on integers), exactly: `x · m`, with `m` the scaled reciprocal of `d`
    /// rounded away from zero, rescaled (a floor) into a truncation table that reads the
    /// quotient with fractional bits. Rounded away from zero, an exact multiple of `d`
    /// never lands below its quotient; the fractional bits keep a negative quotient from
    /// landing on the next integer down. The scales are the first (fewest fractional
    /// bits, then smallest shift) for which every integer input whose quotient the table
    /// holds gives exactly `trunc(x / d)`, checked by enumerating them.
    pub(super) fn int_div(
        &mut self,
        node: &str,
        x: QTensor,
        out: &str,
        out_shape: &[usize],
        divisors: &[i64],
    ) -> Result<QTensor, CompileError> {
        let bits = self.cfg.act_bits;
        let out_scale = self.target_scale(out);
        // The quotient before its truncation is within 1 of the truncated one.
        let seen = self.cal.max_abs.get(out).copied().unwrap_or(0.0) as f64 + 1.0;
        let natural = scale_for(seen, bits, HEADROOM);
        let mut distinct = divisors.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        for in_scale in natural..natural + 3 {
            let spec = TableSpec {
                func: Func::Trunc,
                in_scale,
                out_scale,
                in_bits: 0,
            };
            for shift in 0..=self.max_shift() {
                let fs = in_scale + shift - x.scale;
                let Some(muls) = distinct
                    .iter()
                    .map(|&d| reciprocal_away_from_zero(d, fs, bits))
                    .collect::<Option<Vec<i64>>>()
                else {
                    continue;
                };
                let exact = distinct
                    .iter()
                    .zip(&muls)
                    .all(|(&d, &m)| int_div_is_exact(x.scale, d, m, shift, &spec, bits));
                if !exact {
                    continue;
                }
                let mul: Vec<i64> = divisors
                    .iter()
                    .map(|d| muls[distinct.binary_search(d).unwrap_or(0)])
                    .collect();
                let mul = if muls.len() == 1 { vec![muls[0]] } else { mul };
                let real = format!("{out}/real");
                let zeros = vec![0; divisors.len()];
                let acc = self.affine(x, &real, out_shape, mul, zeros, x.scale + fs);
                let t = self.table(Func::Trunc, in_scale, out_scale);
                return Ok(self.rescale_into(acc.id, shift, t, out, out_shape, out_scale, false));
            }
        }
        Err(CompileError::Quantize {
            node: node.to_string(),
            reason: format!(
                "no scales make the integer division by {distinct:?} exact at {bits}-bit \
                 activations for the quotients calibration saw (up to {seen}); use more --bits"
            ),
        })
    }

    /// `m[r] = max_t x[index[r][t]]` as a chain of `max(m, v) = m + relu(v − m)`; every
    /// difference passes the ReLU lookup, so `x` must have a bit of headroom (or be ≥ 0).
    pub(super) fn max_chain(
        &mut self,
        x: QTensor,
        out: &str,
        index: &[Vec<Option<usize>>],
        min: bool,
    ) -> QTensor {
        // max(v, m) = m + relu(v − m); min(v, m) = m − relu(m − v).
        let sign = if min { -1 } else { 1 };
        let rows = index.len();
        let width = index.first().map_or(0, |r| r.len());
        let tap = |q: &mut Self, t: usize| {
            let idx = index.iter().map(|r| r[t]).collect();
            q.gather(x, &format!("{out}/tap{t}"), vec![rows], idx)
        };
        let mut m = tap(self, 0);
        for t in 1..width {
            let v = tap(self, t);
            let d = self.value(&format!("{out}/d{t}"), vec![rows], x.scale);
            self.ops.push(QOp::Add(Add {
                a: v.id,
                b: AddOperand::Value {
                    id: m.id,
                    mul: -sign,
                },
                output: d,
                a_mul: vec![sign],
            }));
            let r = self.value(&format!("{out}/r{t}"), vec![rows], x.scale);
            self.ops.push(QOp::Rescale(Rescale {
                input: d,
                output: r,
                shift: 0,
                act: Activation::Relu,
            }));
            let next = self.value(&format!("{out}/m{t}"), vec![rows], x.scale);
            self.ops.push(QOp::Add(Add {
                a: r,
                b: AddOperand::Value { id: m.id, mul: 1 },
                output: next,
                a_mul: vec![sign],
            }));
            m = QTensor { id: next, ..m };
        }
        m
    }

    /// Max pooling as a chain of `max(m, t) = m + relu(t − m)` over the window taps; the
    /// ReLU's lookup bounds each difference, so inputs get one bit of headroom unless
    /// they are known non-negative.
    pub(super) fn max_pool(
        &mut self,
        node: &str,
        input: &str,
        out: &str,
        window: &crate::graph::Window,
        out_shape: &[usize],
    ) -> Result<QTensor, CompileError> {
        let xs = self.shape(input);
        let [n, c, h, w] = crate::graph::nchw(&xs);
        let [_, _, oh, ow] = crate::graph::nchw(out_shape);
        let x = self.bounded(input, node)?;
        let x = self.halved_unless_nonneg(x, input, &xs);
        let taps = window.taps(h, w, oh, ow);
        // ONNX pads max pooling with −∞: a padded tap is no candidate. Each window's taps
        // inside the input are kept, and the window filled up with its first one (a
        // repeated candidate leaves the maximum as it is).
        if taps.iter().any(|p| p.iter().all(Option::is_none)) {
            return Err(CompileError::Quantize {
                node: node.to_string(),
                reason: "a pooling window lies wholly in the padding".into(),
            });
        }
        let index: Vec<Vec<Option<usize>>> = (0..n * c)
            .flat_map(|plane| {
                taps.iter().map(move |p| {
                    let inside: Vec<usize> =
                        p.iter().flatten().map(|o| plane * h * w + o).collect();
                    (0..p.len())
                        .map(|t| Some(*inside.get(t).unwrap_or(&inside[0])))
                        .collect()
                })
            })
            .collect();
        let m = self.max_chain(x, out, &index, false);
        let id = self.value(out, out_shape.to_vec(), x.scale);
        self.ops.push(QOp::Reshape(Reshape {
            input: m.id,
            output: id,
        }));
        Ok(QTensor {
            id,
            scale: x.scale,
            at_target: true,
            nonneg: x.nonneg,
        })
    }

    /// `ArgMax`/`ArgMin` along `axis`, every step proven. With `m` the max (min) chain's
    /// result over the candidates `x_t` of a row, `d_t = x_t − m` (`m − x_t`) is never
    /// positive and is 0 exactly at the extremes; a lookup gives `1` there, scaled by the
    /// candidate's rank `L − t` (`t + 1` for the last index); the largest rank `M`, by a
    /// max chain of non-negative values, gives the index `L − M` (`M − 1`) by a lookup.
    /// The candidates are the values the max chain compares (halved when they may be
    /// negative, so that differences stay in range): ties are decided at that precision.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn arg_extreme(
        &mut self,
        node: &str,
        input: &str,
        out: &str,
        axis: usize,
        max: bool,
        last: bool,
        out_shape: &[usize],
    ) -> Result<QTensor, CompileError> {
        let xs = self.shape(input);
        let len = xs[axis];
        let rows = xs.iter().product::<usize>() / len.max(1);
        let x = self.bounded(input, node)?;
        let x = self.halved_unless_nonneg(x, input, &xs);
        let taps = along_axis(&xs, axis);
        let m = self.max_chain(x, &format!("{out}/extreme"), &taps, !max);
        let bits = self.cfg.act_bits;
        let rank_scale = scale_for(len as f64, bits, HEADROOM);
        let is_zero = self.table(Func::IsZero, x.scale, rank_scale);
        let candidates: Vec<QTensor> = (0..len)
            .map(|t| {
                let index = taps.iter().map(|r| r[t]).collect();
                self.gather(x, &format!("{out}/x{t}"), vec![rows], index)
            })
            .collect();
        let rank = |t: usize| if last { t + 1 } else { len - t } as i64;
        let ranks = self.ranked_hits(&candidates, m, max, rank, is_zero, rank_scale, out);
        let joined = self.columns(&ranks, &format!("{out}/ranks"), rows, ranks[0]);
        let per_row = by_rows(rows, len);
        let top = self.max_chain(joined, &format!("{out}/top"), &per_row, false);
        let len = u32::try_from(len).map_err(|_| CompileError::Quantize {
            node: node.to_string(),
            reason: "the axis is too long".into(),
        })?;
        let out_scale = scale_for(f64::from(len), bits, HEADROOM);
        let index = self.table(Func::ArgIndex { len, last }, rank_scale, out_scale);
        let id = self.value(out, out_shape.to_vec(), out_scale);
        self.ops.push(QOp::Rescale(Rescale {
            input: top.id,
            output: id,
            shift: 0,
            act: Activation::Table(index),
        }));
        Ok(QTensor {
            id,
            scale: out_scale,
            at_target: true,
            nonneg: true,
        })
    }

    /// `TopK` along `axis` (`spec` is axis, k, largest): `k` rounds of
    /// [`Self::arg_extreme`]'s proven selection. Round `j` takes the extreme `m_j` of the
    /// candidates (its value) and, of those equal to it and not taken yet, the lowest
    /// index (its index). A taken candidate is then moved to the row's opposite extreme
    /// `μ` — past no other, so every later difference stays in the range the lookups
    /// check — and its rank is zeroed, so that when the rest equal `μ` it is not taken
    /// twice. The node's two outputs are two nodes: the first lowers the rounds, the
    /// second reads them.
    pub(super) fn top_k(
        &mut self,
        node: &str,
        input: &str,
        out: &str,
        spec: (usize, usize, bool),
        indices: bool,
        out_shape: &[usize],
    ) -> Result<QTensor, CompileError> {
        let (axis, k, _) = spec;
        let key = (input.to_string(), spec.0, spec.1, spec.2);
        if !self.top_k.contains_key(&key) {
            let rounds = self.top_k_rounds(node, input, out, spec)?;
            self.top_k.insert(key.clone(), rounds);
        }
        let rounds = &self.top_k[&key];
        let parts = if indices {
            rounds.indices.clone()
        } else {
            rounds.values.clone()
        };
        let inner: usize = self.shape(input)[axis + 1..].iter().product();
        let total: usize = out_shape.iter().product();
        let index = (0..total)
            .map(|f| {
                let (o, j, i) = (f / (k * inner), (f / inner) % k, f % inner);
                Some((j, o * inner + i))
            })
            .collect();
        let id = self.value(out, out_shape.to_vec(), parts[0].scale);
        self.ops.push(QOp::Concat(Concat {
            inputs: parts.iter().map(|t| t.id).collect(),
            output: id,
            index,
        }));
        Ok(QTensor { id, ..parts[0] })
    }

    fn top_k_rounds(
        &mut self,
        node: &str,
        input: &str,
        out: &str,
        (axis, k, largest): (usize, usize, bool),
    ) -> Result<TopKRounds, CompileError> {
        let xs = self.shape(input);
        let len = xs[axis];
        let rows = xs.iter().product::<usize>() / len.max(1);
        let bits = self.cfg.act_bits;
        let rank_scale = scale_for(len as f64, bits, HEADROOM);
        let len32 = u32::try_from(len).ok().filter(|_| rank_scale >= 0);
        let Some(len32) = len32 else {
            return Err(CompileError::Quantize {
                node: node.to_string(),
                reason: format!("an axis of {len} is too long to rank at {bits} bits"),
            });
        };
        let x = self.bounded(input, node)?;
        let x = self.halved_unless_nonneg(x, input, &xs);
        let name = format!("{out}/topk");
        let taps = along_axis(&xs, axis);
        let per_row = by_rows(rows, len);
        let columns: Vec<QTensor> = (0..len)
            .map(|t| {
                let index = taps.iter().map(|r| r[t]).collect();
                self.gather(x, &format!("{name}/x{t}"), vec![rows], index)
            })
            .collect();
        // μ, and what a candidate moves by when taken: c − μ.
        let floor = self.max_chain(x, &format!("{name}/floor"), &taps, largest);
        let lift: Vec<QTensor> = (0..len)
            .map(|t| self.difference(columns[t], floor, &format!("{name}/lift{t}"), rows))
            .collect();
        let is_zero = self.table(Func::IsZero, x.scale, rank_scale);
        let is_rank = self.table(Func::IsZero, rank_scale, 0);
        let out_scale = scale_for(len as f64, bits, HEADROOM);
        let index_of = self.table(
            Func::ArgIndex {
                len: len32,
                last: false,
            },
            rank_scale,
            out_scale,
        );
        let lookup = |q: &mut Self, x: QTensor, name: &str, table, scale| {
            let id = q.value(name, vec![rows], scale);
            q.ops.push(QOp::Rescale(Rescale {
                input: x.id,
                output: id,
                shift: 0,
                act: Activation::Table(table),
            }));
            QTensor {
                id,
                scale,
                at_target: true,
                nonneg: true,
            }
        };
        let mut candidates = columns.clone();
        // τ_t: 1 once candidate t is taken (scale 0); none before the first round.
        let mut taken: Option<Vec<QTensor>> = None;
        let mut rounds = TopKRounds {
            values: Vec::with_capacity(k),
            indices: Vec::with_capacity(k),
        };
        for j in 0..k {
            let r = format!("{name}/round{j}");
            let joined = self.columns(&candidates, &format!("{r}/candidates"), rows, x);
            let m = self.max_chain(joined, &format!("{r}/extreme"), &per_row, !largest);
            let hits = self.ranked_hits(
                &candidates,
                m,
                largest,
                |t| (len - t) as i64,
                is_zero,
                rank_scale,
                &r,
            );
            let mut ranks = Vec::with_capacity(len);
            for (t, &rank) in hits.iter().enumerate() {
                ranks.push(match &taken {
                    None => rank,
                    // rank − rank · τ_t: no rank for a taken candidate.
                    Some(tau) => {
                        let lost = self.product(rank, tau[t], &format!("{r}/lost{t}"), &[rows]);
                        let id = self.value(&format!("{r}/ranked{t}"), vec![rows], rank_scale);
                        self.ops.push(QOp::Add(Add {
                            a: rank.id,
                            b: AddOperand::Value {
                                id: lost.id,
                                mul: -1,
                            },
                            output: id,
                            a_mul: vec![1],
                        }));
                        QTensor { id, ..rank }
                    }
                });
            }
            let joined = self.columns(&ranks, &format!("{r}/ranks"), rows, ranks[0]);
            let top = self.max_chain(joined, &format!("{r}/top"), &per_row, false);
            let index = lookup(self, top, &format!("{r}/index"), index_of, out_scale);
            rounds.values.push(m);
            rounds.indices.push(index);
            if j + 1 == k {
                break;
            }
            let mut next = Vec::with_capacity(len);
            for t in 0..len {
                // The one candidate whose rank is the top one (ranks differ, and the top
                // is never 0): every step in the circuit's constants, none a weight.
                let off = self.difference(top, ranks[t], &format!("{r}/off{t}"), rows);
                let hot = lookup(self, off, &format!("{r}/hot{t}"), is_rank, 0);
                let tau = match &taken {
                    None => hot,
                    Some(tau) => {
                        let id = self.value(&format!("{r}/taken{t}"), vec![rows], 0);
                        self.ops.push(QOp::Add(Add {
                            a: tau[t].id,
                            b: AddOperand::Value { id: hot.id, mul: 1 },
                            output: id,
                            a_mul: vec![1],
                        }));
                        QTensor { id, ..hot }
                    }
                };
                // c_t − τ_t · (c_t − μ): μ once taken, c_t until then.
                let moved = self.product(tau, lift[t], &format!("{r}/moved{t}"), &[rows]);
                candidates[t] = self.difference(columns[t], moved, &format!("{r}/c{t}"), rows);
                next.push(tau);
            }
            taken = Some(next);
        }
        Ok(rounds)
    }

    /// For each candidate `t` of a row whose extreme (`max`, else min) is `m`: `rank(t)`
    /// where it equals `m`, else 0, at `rank_scale`. A lookup marks the equal ones; the
    /// rank is an addition of computed values (`hit · rank + hit · 0`), so its factors are
    /// the circuit's constants, never hashed weights: an argmax means the same under
    /// every weights hash.
    #[allow(clippy::too_many_arguments)]
    fn ranked_hits(
        &mut self,
        candidates: &[QTensor],
        m: QTensor,
        max: bool,
        rank: impl Fn(usize) -> i64,
        is_zero: usize,
        rank_scale: i32,
        name: &str,
    ) -> Vec<QTensor> {
        let rows = self.values[m.id.0].shape.iter().product();
        (0..candidates.len())
            .map(|t| {
                let (a, b) = if max {
                    (candidates[t], m)
                } else {
                    (m, candidates[t])
                };
                let d = self.difference(a, b, &format!("{name}/d{t}"), rows);
                let hit = self.value(&format!("{name}/hit{t}"), vec![rows], rank_scale);
                self.ops.push(QOp::Rescale(Rescale {
                    input: d.id,
                    output: hit,
                    shift: 0,
                    act: Activation::Table(is_zero),
                }));
                let r = self.value(&format!("{name}/rank{t}"), vec![rows], rank_scale);
                self.ops.push(QOp::Add(Add {
                    a: hit,
                    b: AddOperand::Value { id: hit, mul: 0 },
                    output: r,
                    a_mul: vec![rank(t)],
                }));
                QTensor {
                    id: r,
                    scale: rank_scale,
                    at_target: true,
                    nonneg: true,
                }
            })
            .collect()
    }

    /// `a − b`, element-wise at `a`'s scale (the scales must agree).
    fn difference(&mut self, a: QTensor, b: QTensor, out: &str, rows: usize) -> QTensor {
        let id = self.value(out, vec![rows], a.scale);
        self.ops.push(QOp::Add(Add {
            a: a.id,
            b: AddOperand::Value { id: b.id, mul: -1 },
            output: id,
            a_mul: vec![1],
        }));
        QTensor {
            id,
            at_target: true,
            nonneg: false,
            ..a
        }
    }

    /// `len` tensors of `rows` elements side by side: `[rows, len]`, with `like`'s scale
    /// and flags.
    fn columns(&mut self, parts: &[QTensor], out: &str, rows: usize, like: QTensor) -> QTensor {
        let len = parts.len();
        let id = self.value(out, vec![rows, len], like.scale);
        self.ops.push(QOp::Concat(Concat {
            inputs: parts.iter().map(|t| t.id).collect(),
            output: id,
            index: (0..rows * len).map(|f| Some((f % len, f / len))).collect(),
        }));
        QTensor { id, ..like }
    }

    /// The sum of all elements of `x` by halving: each step adds the first half of the
    /// elements to the second (zero-padded), an addition of computed values whose factors
    /// are constants of the circuit; nothing is rescaled, so the sum is exact at `x`'s
    /// scale.
    pub(super) fn tally(&mut self, x: QTensor, out: &str, out_shape: &[usize]) -> QTensor {
        let mut cur = x;
        let mut len: usize = self.values[x.id.0].shape.iter().product();
        let mut step = 0;
        while len > 1 {
            let half = len.div_ceil(2);
            let first = self.gather(
                cur,
                &format!("{out}/lo{step}"),
                vec![half],
                (0..half).map(Some).collect(),
            );
            let second = self.gather(
                cur,
                &format!("{out}/hi{step}"),
                vec![half],
                (half..2 * half).map(|i| (i < len).then_some(i)).collect(),
            );
            let sum = self.value(&format!("{out}/sum{step}"), vec![half], x.scale);
            self.ops.push(QOp::Add(Add {
                a: first.id,
                b: AddOperand::Value {
                    id: second.id,
                    mul: 1,
                },
                output: sum,
                a_mul: vec![1],
            }));
            cur = QTensor {
                id: sum,
                at_target: false,
                ..x
            };
            len = half;
            step += 1;
        }
        let id = self.value(out, out_shape.to_vec(), x.scale);
        self.ops.push(QOp::Reshape(Reshape {
            input: cur.id,
            output: id,
        }));
        QTensor {
            id,
            at_target: false,
            ..x
        }
    }

    /// `out = f(input)` through a lookup, fused with the rescale the input may need.
    pub(super) fn unary(
        &mut self,
        node: &str,
        input: &str,
        out: &str,
        out_shape: &[usize],
        func: Func,
    ) -> Result<QTensor, CompileError> {
        let x = self.get(input)?;
        // The table reads its input at its own width, which may be narrower than the
        // activations' ([`Self::func_bits`]): a value at its target scale is rescaled again.
        let bits = self.func_bits(func);
        let target = self.target_scale_at(input, bits);
        let shift = if x.at_target && bits == self.cfg.act_bits {
            0
        } else {
            (x.scale - target).max(0)
        };
        if shift > self.max_shift() {
            return Err(CompileError::Quantize {
                node: node.to_string(),
                reason:
                    "the rescale before this function exceeds the remainder check; use more --bits"
                        .into(),
            });
        }
        let out_scale = match func.bound() {
            Some(bound) => {
                let seen = self.cal.max_abs.get(out).copied().unwrap_or(0.0) as f64;
                scale_for(seen.max(bound), self.cfg.act_bits, HEADROOM)
            }
            None => self.target_scale(out),
        };
        let t = self.table(func, x.scale - shift, out_scale);
        Ok(self.rescale_into(x.id, shift, t, out, out_shape, out_scale, func.nonneg()))
    }

    /// `out = table(floor(input / 2^shift))`, at the table's output scale.
    #[allow(clippy::too_many_arguments)]
    fn rescale_into(
        &mut self,
        input: ValueId,
        shift: i32,
        table: usize,
        out: &str,
        out_shape: &[usize],
        out_scale: i32,
        nonneg: bool,
    ) -> QTensor {
        let id = self.value(out, out_shape.to_vec(), out_scale);
        self.ops.push(QOp::Rescale(Rescale {
            input,
            output: id,
            shift: shift as u32,
            act: Activation::Table(table),
        }));
        QTensor {
            id,
            scale: out_scale,
            at_target: true,
            nonneg,
        }
    }

    /// `out = a · b` element-wise for two computed tensors (broadcast first).
    pub(super) fn mul_values(
        &mut self,
        node: &str,
        a: &str,
        b: &str,
        out: &str,
        out_shape: &[usize],
    ) -> Result<QTensor, CompileError> {
        let x = self.bounded_as(a, node, out_shape)?;
        let y = self.bounded_as(b, node, out_shape)?;
        Ok(self.product(x, y, out, out_shape))
    }

    pub(super) fn product(
        &mut self,
        x: QTensor,
        y: QTensor,
        out: &str,
        out_shape: &[usize],
    ) -> QTensor {
        let scale = x.scale + y.scale;
        let id = self.value(out, out_shape.to_vec(), scale);
        self.ops.push(QOp::Mul(QMul {
            a: x.id,
            b: y.id,
            output: id,
        }));
        QTensor {
            id,
            scale,
            at_target: false,
            nonneg: x.nonneg && y.nonneg,
        }
    }
}

/// For each row of a tensor of `shape` along `axis` (each position off the axis), the
/// flat indices of its elements in order along the axis.
fn along_axis(shape: &[usize], axis: usize) -> Vec<Vec<Option<usize>>> {
    let len = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let rows = shape.iter().product::<usize>() / len.max(1);
    (0..rows)
        .map(|r| {
            (0..len)
                .map(|t| Some(((r / inner) * len + t) * inner + r % inner))
                .collect()
        })
        .collect()
}

/// The rows of a `[rows, len]` tensor.
fn by_rows(rows: usize, len: usize) -> Vec<Vec<Option<usize>>> {
    (0..rows)
        .map(|r| (0..len).map(|t| Some(r * len + t)).collect())
        .collect()
}

/// `2^fs / d` rounded away from zero, where it fits a constant factor (below 2^40) and
/// its product with a `bits`-bit value fits 62 bits.
fn reciprocal_away_from_zero(d: i64, fs: i32, bits: u32) -> Option<i64> {
    if !(0..=80).contains(&fs) {
        return None;
    }
    let p = 1i128 << fs;
    let a = d.unsigned_abs() as i128;
    let m = (p + a - 1) / a;
    let cap = 1i128 << 40.min(63 - bits as i32);
    (m < cap).then(|| (m as i64) * d.signum())
}

/// Whether `x · m`, floored by `2^shift` and read by `spec`'s truncation table, is
/// `trunc(x / d)` at the table's output scale for every integer `x` a `bits`-bit value
/// at `x_scale` holds whose rescaled value the table holds (the others fail its lookup,
/// as any value out of range does).
fn int_div_is_exact(x_scale: i32, d: i64, m: i64, shift: i32, spec: &TableSpec, bits: u32) -> bool {
    let (lo, hi) = zkinfer_qir::signed_range(bits);
    let held = spec.inputs(bits);
    let limit = 2f64.powi(spec.out_scale);
    (lo..=hi).all(|xq| {
        let x = dequantize(xq, x_scale);
        if x.fract() != 0.0 {
            return true;
        }
        let v = (xq as i128 * m as i128).div_euclid(1i128 << shift);
        if v < held.start as i128 || v >= held.end as i128 {
            return true;
        }
        let want = ((x / d as f64).trunc() * limit)
            .round()
            .clamp(lo as f64, hi as f64) as i64;
        spec.eval(v as i64, bits) == want
    })
}
