//! Freivalds' argument: a linear layer applied to many rows, checked by a random linear
//! combination of its rows instead of row by row.
//!
//! A linear op over `R` input rows computes `Y = X·Wᵀ + b` (`X` is `R × M`, `W` is
//! `N × M`). The dot-product layout ([`crate::linear`]) spends `R·N·(M + 1)`
//! multiply-accumulates on it, and its fixed weight columns hold `W` once per row. Here
//! `X` (copies of the input cells) and `Y` (the outputs, free cells the later ops read)
//! are committed in the first phase; a challenge `α` is drawn from the transcript after
//! them; and with `r = (α^(R−1), …, α, 1)` the second phase checks, for every neuron `n`,
//!
//! ```text
//! (rᵀY)_n = (rᵀ1)·b_n + Σ_j (rᵀX)_j · W[n][j]
//! ```
//!
//! The combinations `rᵀ·column` are Horner sequences in the *Horner lanes*: a
//! first-phase value column `v` and a second-phase column `h`, with
//!
//! ```text
//! first row of a sequence:  h = v
//! later rows:               h = h[prev] · α + v
//! ```
//!
//! so the last `h` of a sequence of `R` values is its combination. One sequence per input
//! feature, one of ones (for the bias), one per neuron: `R·(M + 1 + N)` cells. The right
//! side is then one vector times `Wᵀ`: the dot-product gate's shape over second-phase
//! columns, reading the linear section's weight columns on rows of their own (so `W`
//! appears once), its sums copy-constrained to the neurons' combinations.
//!
//! If `Y ≠ X·Wᵀ + b`, some neuron's row differences `D_i` are not all zero and
//! `Σ_i α^(R−1−i) D_i` is a nonzero polynomial of degree `< R` in `α`, drawn after `X`
//! and `Y` were committed (KZG binds them): that neuron's check, and so the layer's,
//! passes with probability at most `(R − 1)/|F|` (every checked layer shares `α`). Under
//! Fiat–Shamir a prover who tries `Q` transcripts gets `Q·(R − 1)/|F|`, negligible with
//! `|F| ≈ 2^254` and `R ≤ 2^28`. As with the dot products, equality is in the field; the
//! rescale after the layer bounds what it reads.
//!
//! ## Products of two activations
//!
//! A product of two computed tensors (`Q·Kᵀ`, `softmax·V`) reaches the IR as a `Mul` of
//! gathered operand pairs and a linear op of ones that sums each pair's row
//! ([`Product`]): `C_p = Σ_k X[p][k] · Y[p][k] + b`, one lane row per multiply. Where those
//! rows are a batched matrix product (row `(t, i, j)` of `X` is row `i` of `A_t`, and of
//! `Y` column `j` of `B_t`; found and verified element by element from the operands'
//! sources), the argument checks `C_t = A_t·B_t + b` for every batch `t` without the
//! multiplies: with a second challenge `β`,
//!
//! ```text
//! Σ_i α^(R−1−i) · (Σ_j β^(N−1−j) C[i][j])  =  Σ_k u_k · w_k + (Σ_i α^i) · b · (Σ_j β^j)
//! u_k = Σ_i α^(R−1−i) A[i][k]      w_k = Σ_j β^(N−1−j) B[k][j]
//! ```
//!
//! Every sum over `i` or `j` is a Horner sequence (by `α` over `R` rows, by `β` over `N`
//! columns; the powers `α^t` are the sequence of `(1, 0, …, 0)`), and the two sides are
//! running sums of products in the *inner-product lane* (`s = s[prev] + a·b`). A wrong
//! `C` makes the difference a nonzero polynomial in `(α, β)` of degree `< R + N − 1`,
//! which vanishes with probability at most `(R + N − 2)/|F|`. The cells are
//! `|A| + |B| + |C|` and `R + K + 1` inner-product rows per batch, where the multiplies
//! took `R·N·K` lane rows.

use halo2_proofs::circuit::{Cell, Region, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{
    Advice, Challenge, Column, ConstraintSystem, Error, FirstPhase, SecondPhase, Selector,
};
use halo2_proofs::poly::Rotation;
use zkinfer_qir::{Linear, Mul, QModel, QOp, ValueId};

use crate::fe;
use crate::linear::{block_gate, block_rows, enable_block_row, weight_at, LinearConfig};
use crate::wires::{Aliases, Source, Wires};

/// Whether the argument applies to `op`: a layer applied to two rows or more whose bias
/// is shared by its rows.
pub fn is_eligible(op: &Linear, model: &QModel) -> bool {
    op.rows(model) >= 2 && op.bias.len() == op.out_features
}

/// A linear op that sums the rows of a `Mul` of two activations, whose pairs form a
/// batched matrix product `C_t = A_t·B_t + bias` (`batches` of `R × K` times `K × N`):
/// checked without its multiplies (see the module's doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Product {
    /// The index of the `Mul` among the model's ops.
    pub mul: usize,
    pub batches: usize,
    pub r: usize,
    pub k: usize,
    pub n: usize,
}

impl Product {
    /// Element of the `Mul`'s first operand that holds `A_b[i][k]`.
    pub fn a_index(&self, b: usize, i: usize, k: usize) -> usize {
        (b * self.r + i) * self.n * self.k + k
    }

    /// Element of the `Mul`'s second operand that holds `B_b[k][j]`.
    pub fn b_index(&self, b: usize, k: usize, j: usize) -> usize {
        (b * self.r * self.n + j) * self.k + k
    }

    /// Element of the sums (the linear op's output) that holds `C_b[i][j]`.
    pub fn c_index(&self, b: usize, i: usize, j: usize) -> usize {
        (b * self.r + i) * self.n + j
    }

    /// The sequences by `α` (the ones, the powers, `A`'s columns; `R` long) and by `β`
    /// (the bias, `B`'s rows, `C`'s rows; `N` long).
    pub fn sequences(&self) -> [(usize, usize); 2] {
        [
            (2 + self.batches * self.k, self.r),
            (1 + self.batches * (self.k + self.r), self.n),
        ]
    }

    /// Rows of the inner-product lane: `R` terms and `K + 1` a batch.
    pub fn inner_rows(&self) -> usize {
        self.batches * (self.r + self.k + 1)
    }

    /// Cells the check lays out: two a Horner element, three an inner-product row.
    pub fn cells(&self) -> usize {
        2 * self.sequences().iter().map(|(c, l)| c * l).sum::<usize>() + 3 * self.inner_rows()
    }

    /// The multiplies it saves: the `Mul`'s lane rows.
    pub fn multiplies(&self) -> usize {
        self.batches * self.r * self.n * self.k
    }
}

/// The products of `model`, by op index: the linear ops of ones that sum the rows of a
/// `Mul` read by nothing else, whose operand pairs are a batched matrix product.
pub fn products(model: &QModel) -> Vec<Option<Product>> {
    let aliases = Aliases::new(model);
    let mut producer = vec![None; model.values.len()];
    let mut readers = vec![0usize; model.values.len()];
    for (i, op) in model.ops.iter().enumerate() {
        producer[op.output().0] = Some(i);
        for v in op.inputs() {
            readers[v.0] += 1;
        }
    }
    model
        .ops
        .iter()
        .map(|op| match op {
            QOp::Linear(l) if readers[l.input.0] == 1 && l.input != model.output => {
                let mul = producer[l.input.0]?;
                match &model.ops[mul] {
                    QOp::Mul(m) => product_of(model, &aliases, l, m, mul),
                    _ => None,
                }
            }
            _ => None,
        })
        .collect()
}

/// The batched matrix product `l` sums the rows of `m` as: `N` is the run of rows with
/// `A`'s first row, `R` the run of `N`-row blocks with `B`'s first block, and every row is
/// then checked against its `A` row and `B` column. Any sums of pairs are one (each row its
/// own batch, `1 × K` times `K × 1`, where the runs are 1); the planner takes the check
/// where it saves cells.
fn product_of(
    model: &QModel,
    aliases: &Aliases<'_>,
    l: &Linear,
    m: &Mul,
    mul: usize,
) -> Option<Product> {
    let (k, rows) = (l.in_features, l.rows(model));
    if l.out_features != 1 || l.bias.len() != 1 || l.weight.iter().any(|&w| w != 1) || k == 0 {
        return None;
    }
    let sources = |id| -> Vec<Source> { (0..rows * k).map(|e| aliases.resolve(id, e)).collect() };
    let (x, y) = (sources(m.a), sources(m.b));
    let row = |s: &[Source], p: usize| s[p * k..(p + 1) * k].to_vec();
    let n = (0..rows).take_while(|&p| row(&x, p) == row(&x, 0)).count();
    if n == 0 || rows % n != 0 {
        return None;
    }
    let groups = rows / n;
    let block = |g: usize| &y[g * n * k..(g + 1) * n * k];
    let r = (0..groups).take_while(|&g| block(g) == block(0)).count();
    if r == 0 || groups % r != 0 {
        return None;
    }
    let product = Product {
        mul,
        batches: groups / r,
        r,
        k,
        n,
    };
    for b in 0..product.batches {
        for i in 0..r {
            let a_row = row(&x, (b * r + i) * n);
            for j in 0..n {
                let p = product.c_index(b, i, j);
                if row(&x, p) != a_row || row(&y, p) != row(&y, b * r * n + j) {
                    return None;
                }
            }
        }
    }
    Some(product)
}

/// Rows the check of `op` takes in the linear section: one input row's blocks.
pub fn matvec_rows(op: &Linear, x_cols: usize, acc_cols: usize) -> usize {
    op.out_features.div_ceil(acc_cols) * block_rows(op.in_features, x_cols)
}

/// The Horner sequences of `op`: how many, and their length.
pub fn sequences(op: &Linear, model: &QModel) -> (usize, usize) {
    (op.in_features + 1 + op.out_features, op.rows(model))
}

/// Where sequences go: an op's sequences in rounds, one sequence per lane, each round on
/// the rows after the previous one (every lane's sequences start on the same rows, so the
/// lanes share their selectors; a lane idle in an op's last round holds zeros, which
/// satisfy both constraints).
#[derive(Clone, Debug)]
pub struct Placement {
    lanes: usize,
    rows: usize,
}

impl Placement {
    pub fn new(lanes: usize) -> Self {
        Placement {
            lanes: lanes.max(1),
            rows: 0,
        }
    }

    /// The lane and first row of each of `count` sequences of `len` values (a multiple of
    /// the lanes, or the last round's idle lanes are not written).
    pub fn place(&mut self, count: usize, len: usize) -> Vec<(usize, usize)> {
        let base = self.rows;
        self.rows += count.div_ceil(self.lanes) * len;
        (0..count)
            .map(|s| (s % self.lanes, base + (s / self.lanes) * len))
            .collect()
    }

    /// Rows the lanes take.
    pub fn rows(&self) -> usize {
        self.rows
    }
}

/// Rows the Horner lanes take when the ops `freivalds` (indices into `model.ops`) are
/// checked by the argument, `products` those of them checked as products.
pub fn horner_rows(
    model: &QModel,
    freivalds: &[usize],
    products: &[Option<Product>],
    lanes: usize,
) -> usize {
    let mut placement = Placement::new(lanes);
    for &i in freivalds {
        match (products.get(i).copied().flatten(), model.ops.get(i)) {
            (Some(p), _) => {
                for (count, len) in p.sequences() {
                    placement.place(count, len);
                }
            }
            (None, Some(QOp::Linear(op))) => {
                let (count, len) = sequences(op, model);
                placement.place(count, len);
            }
            _ => {}
        }
    }
    placement.rows()
}

/// The products among the ops `freivalds` (by op index into `products`).
pub fn checked<'a>(
    freivalds: &'a [usize],
    products: &'a [Option<Product>],
) -> impl Iterator<Item = Product> + 'a {
    freivalds
        .iter()
        .filter_map(|&i| products.get(i).copied().flatten())
}

/// Rows of the inner-product lane.
pub fn inner_rows(freivalds: &[usize], products: &[Option<Product>]) -> usize {
    checked(freivalds, products).map(|p| p.inner_rows()).sum()
}

#[derive(Clone, Copy, Debug)]
pub struct HornerLane {
    /// First phase: the values combined.
    pub v: Column<Advice>,
    /// Second phase: the running combination.
    pub h: Column<Advice>,
}

/// The challenge a sequence is combined by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    Alpha,
    Beta,
}

/// What products of two activations add: the second challenge, its Horner step, and the
/// inner-product lane (second phase: `s = a·b` on a run's first row, `s = s[prev] + a·b`
/// on the others).
#[derive(Clone, Debug)]
pub struct ProductConfig {
    pub beta: Challenge,
    pub q_next_beta: Selector,
    pub a: Column<Advice>,
    pub b: Column<Advice>,
    pub s: Column<Advice>,
    pub q_first: Selector,
    pub q_step: Selector,
}

#[derive(Clone, Debug)]
pub struct FreivaldsConfig {
    pub alpha: Challenge,
    pub lanes: Vec<HornerLane>,
    /// The first row of a round of sequences, and the others (shared by the lanes).
    pub q_start: Selector,
    pub q_next: Selector,
    /// Second phase: the combined input row, laid across the blocks' `D` columns.
    pub x: Vec<Column<Advice>>,
    /// Second phase: the running sums of the combined row times `Wᵀ`.
    pub acc: Vec<Column<Advice>>,
    pub q_first: Selector,
    pub q_step: Selector,
    /// Present when the layout checks products of two activations.
    pub product: Option<ProductConfig>,
}

/// A sequence laid out in the first phase, to be combined in the second.
struct Sequence {
    lane: usize,
    row: usize,
    base: Base,
    values: Vec<Value<Fr>>,
}

enum Check<'o> {
    /// A linear layer: its first row of blocks in the linear section.
    Matvec { op: &'o Linear, block_row: usize },
    /// A product of two activations; `alpha` sequences by `α` come first.
    Product { product: Product, alpha: usize },
}

/// A checked op between the phases: its sequences (for a layer: ones, the `M` input
/// features, the `N` neurons) and what the second phase checks of them.
pub struct Pending<'o> {
    check: Check<'o>,
    sequences: Vec<Sequence>,
}

impl FreivaldsConfig {
    pub fn configure(
        meta: &mut ConstraintSystem<Fr>,
        linear: &LinearConfig,
        lanes: usize,
        products: bool,
    ) -> Self {
        // The first-phase columns must exist before the challenge that follows them.
        let v: Vec<_> = (0..lanes)
            .map(|_| meta.advice_column_in(FirstPhase))
            .collect();
        let alpha = meta.challenge_usable_after(FirstPhase);
        let beta = products.then(|| meta.challenge_usable_after(FirstPhase));
        let lanes: Vec<HornerLane> = v
            .into_iter()
            .map(|v| HornerLane {
                v,
                h: meta.advice_column_in(SecondPhase),
            })
            .collect();
        let (q_start, q_next) = (meta.selector(), meta.selector());
        let q_next_beta = beta.map(|_| meta.selector());
        let (d_cols, c_cols) = (linear.x.len(), linear.acc.len());
        let x: Vec<_> = (0..d_cols)
            .map(|_| meta.advice_column_in(SecondPhase))
            .collect();
        let acc: Vec<_> = (0..c_cols)
            .map(|_| meta.advice_column_in(SecondPhase))
            .collect();
        for lane in &lanes {
            meta.enable_equality(lane.v);
            meta.enable_equality(lane.h);
        }
        for c in x.iter().chain(&acc) {
            meta.enable_equality(*c);
        }
        for lane in &lanes {
            meta.create_gate("horner", |meta| {
                let start = meta.query_selector(q_start);
                let step = meta.query_selector(q_next);
                let v = meta.query_advice(lane.v, Rotation::cur());
                let h = meta.query_advice(lane.h, Rotation::cur());
                let prev = meta.query_advice(lane.h, Rotation::prev());
                let alpha = meta.query_challenge(alpha);
                let mut constraints = vec![
                    start * (h.clone() - v.clone()),
                    step * (h.clone() - prev.clone() * alpha - v.clone()),
                ];
                if let (Some(beta), Some(q)) = (beta, q_next_beta) {
                    let step = meta.query_selector(q);
                    let beta = meta.query_challenge(beta);
                    constraints.push(step * (h - prev * beta - v));
                }
                constraints
            });
        }
        let q_first = meta.selector();
        let q_step = meta.selector();
        block_gate(
            meta,
            "freivalds matvec",
            &x,
            &acc,
            &linear.w,
            (q_first, q_step),
            false,
        );
        let product = match (beta, q_next_beta) {
            (Some(beta), Some(q_next_beta)) => {
                let [a, b, s] = [0; 3].map(|_| meta.advice_column_in(SecondPhase));
                for c in [a, b, s] {
                    meta.enable_equality(c);
                }
                let (q_first, q_step) = (meta.selector(), meta.selector());
                meta.create_gate("inner product", |meta| {
                    let first = meta.query_selector(q_first);
                    let step = meta.query_selector(q_step);
                    let a = meta.query_advice(a, Rotation::cur());
                    let b = meta.query_advice(b, Rotation::cur());
                    let s_cur = meta.query_advice(s, Rotation::cur());
                    let prev = meta.query_advice(s, Rotation::prev());
                    let ab = a * b;
                    vec![
                        first * (s_cur.clone() - ab.clone()),
                        step * (s_cur - prev - ab),
                    ]
                });
                Some(ProductConfig {
                    beta,
                    q_next_beta,
                    a,
                    b,
                    s,
                    q_first,
                    q_step,
                })
            }
            _ => None,
        };
        FreivaldsConfig {
            alpha,
            lanes,
            q_start,
            q_next,
            x,
            acc,
            q_first,
            q_step,
            product,
        }
    }

    /// Enables the selectors of a round's sequences of `len` rows from `row` (once per
    /// round: the lanes share them).
    fn enable_round(
        &self,
        region: &mut Region<'_, Fr>,
        row: usize,
        len: usize,
        base: Base,
    ) -> Result<(), Error> {
        let next = match base {
            Base::Alpha => self.q_next,
            Base::Beta => self.product.as_ref().ok_or(Error::Synthesis)?.q_next_beta,
        };
        for i in 0..len {
            if i == 0 {
                self.q_start.enable(region, row)?;
            } else {
                next.enable(region, row + i)?;
            }
        }
        Ok(())
    }

    /// First phase of `op`: its weights and selectors on the linear section's rows from
    /// `block_row`, and its sequences' values (the input copied in, the outputs defined
    /// here). Returns the next free row of the linear section and the op's pending
    /// second phase.
    #[allow(clippy::too_many_arguments)]
    pub fn assign_first<'o>(
        &self,
        linear: &LinearConfig,
        region: &mut Region<'_, Fr>,
        wires: &mut Wires<'_>,
        model: &QModel,
        op: &'o Linear,
        op_index: usize,
        block_row: usize,
        placement: &mut Placement,
    ) -> Result<(usize, Pending<'o>), Error> {
        // The check combines one bias per neuron: a layout read from a file that names
        // another op must not prove a different layer.
        if !is_eligible(op, model) {
            return Err(Error::Synthesis);
        }
        let (m, n_out, rows) = (op.in_features, op.out_features, op.rows(model));
        let (d_cols, c_cols) = (self.x.len(), self.acc.len());
        let brows = block_rows(m, d_cols);
        let mut offset = block_row;
        for n0 in (0..n_out).step_by(c_cols) {
            for t in 0..brows {
                let row = offset + t;
                enable_block_row(region, (self.q_first, self.q_step), t, row)?;
                linear.place_weights(region, wires, op, op_index, 0, n0, t, row)?;
            }
            offset += brows;
        }
        // The sequences: the ones (their combination multiplies the bias), the input
        // features (copies of the input's cells), the neurons (the op's outputs, defined
        // here).
        // Lanes idle in the last round hold sequences of zeros (the gates read them).
        let count = m + 1 + n_out;
        let slots = placement.place(count.next_multiple_of(self.lanes.len()), rows);
        let mut sequences = Vec::with_capacity(slots.len());
        for (s, &(lane, row)) in slots.iter().enumerate() {
            let v = self.lanes[lane].v;
            if lane == 0 {
                self.enable_round(region, row, rows, Base::Alpha)?;
            }
            let mut values = Vec::with_capacity(rows);
            for i in 0..rows {
                let value = if s == 0 {
                    let one = Value::known(Fr::one());
                    let cell = region.assign_advice(v, row + i, one).cell();
                    wires.tie_one(region, cell)?;
                    one
                } else if s <= m {
                    wires.copy_in(region, v, row + i, op.input, i * m + s - 1)?;
                    value(wires, op.input, i * m + s - 1)
                } else if s >= count {
                    let zero = Value::known(Fr::zero());
                    region.assign_advice(v, row + i, zero);
                    zero
                } else {
                    let at = i * n_out + s - 1 - m;
                    let value = value(wires, op.output, at);
                    let cell = region.assign_advice(v, row + i, value).cell();
                    wires.define(op.output, at, cell);
                    value
                };
                values.push(value);
            }
            sequences.push(Sequence {
                lane,
                row,
                base: Base::Alpha,
                values,
            });
        }
        #[cfg(test)]
        tamper::first(region, self, &mut sequences);
        Ok((
            offset,
            Pending {
                check: Check::Matvec { op, block_row },
                sequences,
            },
        ))
    }

    /// First phase of a product `op` (the sums of `product`'s `Mul`, which is not laid
    /// out): the sequences by `α` (ones, the powers `(1, 0, …, 0)`, `A`'s columns copied
    /// in) and by `β` (the bias, `B`'s rows copied in, `C`'s rows: the op's outputs,
    /// defined here).
    pub fn assign_product_first<'o>(
        &self,
        region: &mut Region<'_, Fr>,
        wires: &mut Wires<'_>,
        model: &QModel,
        op: &'o Linear,
        product: Product,
        placement: &mut Placement,
    ) -> Result<Pending<'o>, Error> {
        let Some(QOp::Mul(mul)) = model.ops.get(product.mul) else {
            return Err(Error::Synthesis);
        };
        let bias = *op.bias.first().ok_or(Error::Synthesis)?;
        let Product {
            batches, r, k, n, ..
        } = product;
        let lanes = self.lanes.len();
        let [(count_a, _), (count_b, _)] = product.sequences();
        let alpha_slots = placement.place(count_a.next_multiple_of(lanes), r);
        let beta_slots = placement.place(count_b.next_multiple_of(lanes), n);
        let mut sequences = Vec::with_capacity(alpha_slots.len() + beta_slots.len());
        let mut bias_cell: Option<Cell> = None;
        for (base, slots) in [(Base::Alpha, &alpha_slots), (Base::Beta, &beta_slots)] {
            let len = if base == Base::Alpha { r } else { n };
            for (s, &(lane, row)) in slots.iter().enumerate() {
                let v = self.lanes[lane].v;
                if lane == 0 {
                    self.enable_round(region, row, len, base)?;
                }
                let mut values = Vec::with_capacity(len);
                for t in 0..len {
                    let at = row + t;
                    let value = match (base, s) {
                        // The ones, and the powers' leading one.
                        (Base::Alpha, 0) | (Base::Alpha, 1) if s == 0 || t == 0 => {
                            let one = Value::known(Fr::one());
                            let cell = region.assign_advice(v, at, one).cell();
                            wires.tie_one(region, cell)?;
                            one
                        }
                        (Base::Alpha, 1) => {
                            let zero = Value::known(Fr::zero());
                            let cell = region.assign_advice(v, at, zero).cell();
                            wires.tie_zero(region, cell)?;
                            zero
                        }
                        (Base::Alpha, s) if s < count_a => {
                            let (b, kk) = ((s - 2) / k, (s - 2) % k);
                            let e = product.a_index(b, t, kk);
                            wires.copy_in(region, v, at, mul.a, e)?;
                            value(wires, mul.a, e)
                        }
                        (Base::Beta, 0) => {
                            let b = Value::known(fe(bias));
                            let cell = region.assign_advice(v, at, b).cell();
                            match bias_cell {
                                Some(c) => region.constrain_equal(cell, c),
                                None => {
                                    region.constrain_constant(cell, fe(bias))?;
                                    bias_cell = Some(cell);
                                }
                            }
                            b
                        }
                        (Base::Beta, s) if s < 1 + batches * k => {
                            let (b, kk) = ((s - 1) / k, (s - 1) % k);
                            let e = product.b_index(b, kk, t);
                            wires.copy_in(region, v, at, mul.b, e)?;
                            value(wires, mul.b, e)
                        }
                        (Base::Beta, s) if s < count_b => {
                            let c = s - 1 - batches * k;
                            let e = product.c_index(c / r, c % r, t);
                            let value = value(wires, op.output, e);
                            let cell = region.assign_advice(v, at, value).cell();
                            wires.define(op.output, e, cell);
                            value
                        }
                        // Idle lanes of a round's last sequences.
                        _ => {
                            let zero = Value::known(Fr::zero());
                            region.assign_advice(v, at, zero);
                            zero
                        }
                    };
                    values.push(value);
                }
                sequences.push(Sequence {
                    lane,
                    row,
                    base,
                    values,
                });
            }
        }
        #[cfg(test)]
        tamper::first(region, self, &mut sequences);
        Ok(Pending {
            check: Check::Product {
                product,
                alpha: alpha_slots.len(),
            },
            sequences,
        })
    }

    /// The running combination of a sequence under its challenge: every cell and value.
    fn combine(
        &self,
        region: &mut Region<'_, Fr>,
        s: &Sequence,
    ) -> Result<Vec<(Cell, Value<Fr>)>, Error> {
        let by = match s.base {
            Base::Alpha => region.get_challenge(self.alpha),
            Base::Beta => region.get_challenge(self.product.as_ref().ok_or(Error::Synthesis)?.beta),
        };
        let hl = self.lanes[s.lane];
        let mut h = Value::known(Fr::zero());
        let mut cells = Vec::with_capacity(s.values.len());
        for (i, v) in s.values.iter().enumerate() {
            h = if i == 0 { *v } else { h * by + *v };
            cells.push((region.assign_advice(hl.h, s.row + i, h).cell(), h));
        }
        Ok(cells)
    }

    /// Second phase of a pending op: the sequences' combinations under the challenges,
    /// and for a layer the combined input row times `Wᵀ`, tied to the neurons'
    /// combinations; for a product the two sides' inner products from `inner_row` of the
    /// inner-product lane (advanced past them), tied to each other.
    pub fn assign_second(
        &self,
        region: &mut Region<'_, Fr>,
        p: &Pending<'_>,
        inner_row: &mut usize,
    ) -> Result<(), Error> {
        let mut combined: Vec<Vec<(Cell, Value<Fr>)>> = Vec::with_capacity(p.sequences.len());
        for s in &p.sequences {
            combined.push(self.combine(region, s)?);
        }
        #[cfg(test)]
        tamper::second(region, self, &p.sequences);
        let last = |s: usize| combined[s].last().copied().ok_or(Error::Synthesis);
        match p.check {
            Check::Matvec { op, block_row } => {
                let combined = (0..combined.len())
                    .map(last)
                    .collect::<Result<Vec<_>, _>>()?;
                self.matvec_second(region, op, block_row, &combined)
            }
            Check::Product { product, alpha } => {
                let Product { batches, r, k, .. } = product;
                let powers = &combined[1];
                for b in 0..batches {
                    // Σ_i α^(R−1−i) · c_i, c_i the combination of C's row i.
                    let left = (0..r)
                        .map(|i| {
                            Ok((
                                powers[r - 1 - i],
                                last(alpha + 1 + batches * k + b * r + i)?,
                            ))
                        })
                        .collect::<Result<Vec<_>, Error>>()?;
                    // Σ_k u_k · w_k + (Σ α^i) · b · (Σ β^j).
                    let mut right = (0..k)
                        .map(|kk| Ok((last(2 + b * k + kk)?, last(alpha + 1 + b * k + kk)?)))
                        .collect::<Result<Vec<_>, Error>>()?;
                    right.push((last(0)?, last(alpha)?));
                    let l = self.inner_product(region, &left, inner_row)?;
                    let rt = self.inner_product(region, &right, inner_row)?;
                    region.constrain_equal(l, rt);
                }
                Ok(())
            }
        }
    }

    /// `Σ a·b` over `terms` in the inner-product lane from `row` (advanced past them), each
    /// factor a copy of its cell; returns the sum's cell.
    #[allow(clippy::type_complexity)]
    fn inner_product(
        &self,
        region: &mut Region<'_, Fr>,
        terms: &[((Cell, Value<Fr>), (Cell, Value<Fr>))],
        row: &mut usize,
    ) -> Result<Cell, Error> {
        let pc = self.product.as_ref().ok_or(Error::Synthesis)?;
        let mut sum = Value::known(Fr::zero());
        let mut last = None;
        for (t, &((ac, av), (bc, bv))) in terms.iter().enumerate() {
            let at = *row + t;
            if t == 0 {
                pc.q_first.enable(region, at)?;
            } else {
                pc.q_step.enable(region, at)?;
            }
            let a = region.assign_advice(pc.a, at, av).cell();
            region.constrain_equal(a, ac);
            let b = region.assign_advice(pc.b, at, bv).cell();
            region.constrain_equal(b, bc);
            sum = sum + av * bv;
            last = Some(region.assign_advice(pc.s, at, sum).cell());
        }
        *row += terms.len();
        last.ok_or(Error::Synthesis)
    }

    /// The combined input row of a layer times `Wᵀ` on its blocks from `block_row`, the
    /// sums tied to the neurons' combinations. `combined`: `[ones, x_0 … x_{M−1}, y_0 …
    /// y_{N−1}]`; the row `[1, x_0, …]` of the dot-product layout is its first `M + 1`
    /// entries.
    fn matvec_second(
        &self,
        region: &mut Region<'_, Fr>,
        op: &Linear,
        block_row: usize,
        combined: &[(Cell, Value<Fr>)],
    ) -> Result<(), Error> {
        let (m, n_out) = (op.in_features, op.out_features);
        let (d_cols, c_cols) = (self.x.len(), self.acc.len());
        let brows = block_rows(m, d_cols);
        let mut offset = block_row;
        for n0 in (0..n_out).step_by(c_cols) {
            let mut sums = vec![Value::known(Fr::zero()); c_cols];
            for t in 0..brows {
                let row = offset + t;
                let mut xs = Vec::with_capacity(d_cols);
                for d in 0..d_cols {
                    let j = t * d_cols + d;
                    let xv = if j <= m {
                        let (cell, v) = combined[j];
                        let x = region.assign_advice(self.x[d], row, v).cell();
                        region.constrain_equal(x, cell);
                        v
                    } else {
                        // Padding faces weight 0.
                        region.assign_advice(self.x[d], row, Value::known(Fr::zero()));
                        Value::known(Fr::zero())
                    };
                    xs.push(xv);
                }
                for (c, sum) in sums.iter_mut().enumerate() {
                    let n = n0 + c;
                    for (d, xv) in xs.iter().enumerate() {
                        let (w, _) = weight_at(op, 0, n, t * d_cols + d);
                        *sum = *sum + *xv * Value::known(fe(w));
                    }
                    let cell = region.assign_advice(self.acc[c], row + 1, *sum).cell();
                    if t + 1 == brows && n < n_out {
                        region.constrain_equal(cell, combined[m + 1 + n].0);
                    }
                }
            }
            offset += brows;
        }
        Ok(())
    }
}

/// The witness value of element `i` of `id` (a view's element resolved to its source).
fn value(wires: &Wires<'_>, id: ValueId, i: usize) -> Value<Fr> {
    match wires.resolve(id, i) {
        Source::Element(root, j) => wires.value(root, j),
        Source::Zero => wires.value(id, i).map(|_| Fr::zero()),
    }
}

/// Test hooks that write one wrong cell, as a cheating prover would, to check that the
/// constraints reject it.
#[cfg(test)]
pub(crate) mod tamper {
    use std::cell::Cell;

    use super::*;

    #[derive(Clone, Copy, Debug)]
    pub enum Tamper {
        /// Adds 1 to value `i` of sequence `seq` in the first phase (the copy of an
        /// operand, or an output the later ops do not read).
        Value { seq: usize, i: usize },
        /// Adds 1 to the running combination `i` of sequence `seq`.
        Combination { seq: usize, i: usize },
    }

    thread_local! {
        pub static AT: Cell<Option<Tamper>> = const { Cell::new(None) };
    }

    pub(super) fn first(region: &mut Region<'_, Fr>, f: &FreivaldsConfig, seqs: &mut [Sequence]) {
        if let Some(Tamper::Value { seq, i }) = AT.with(Cell::get) {
            let s = &mut seqs[seq];
            s.values[i] = s.values[i] + Value::known(Fr::one());
            region.assign_advice(f.lanes[s.lane].v, s.row + i, s.values[i]);
        }
    }

    pub(super) fn second(region: &mut Region<'_, Fr>, f: &FreivaldsConfig, seqs: &[Sequence]) {
        if let Some(Tamper::Combination { seq, i }) = AT.with(Cell::get) {
            let s = &seqs[seq];
            let by = match (s.base, &f.product) {
                (Base::Beta, Some(p)) => region.get_challenge(p.beta),
                _ => region.get_challenge(f.alpha),
            };
            let h = s.values[..=i]
                .iter()
                .fold(Value::known(Fr::zero()), |h, v| h * by + *v);
            region.assign_advice(f.lanes[s.lane].h, s.row + i, h + Value::known(Fr::one()));
        }
    }
}
