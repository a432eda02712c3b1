//! Recurrent layers (`RNN`, `GRU`, `LSTM`), unrolled over the static sequence length:
//! every step is products by the constant weights (`Gemm`), element-wise products and
//! sums of computed tensors, and tabulated activations, so every step is proven like any
//! other layer. The input projection of all steps is one `Gemm`; the state starts at 0,
//! at a constant, or at a graph input.

use zkinfer_qir::{Func, Real};

use crate::graph::Sources;

use super::super::*;
use super::{Lowered, NodeCx};

/// A term of a sum: a computed `[batch, H]` tensor or a constant one (row-major).
enum Term {
    Computed(String),
    Constant(Vec<f32>),
}

/// An activation as the node names it, with its `activation_alpha`/`beta`.
fn activation(
    name: &str,
    alpha: &mut impl Iterator<Item = f32>,
    beta: &mut impl Iterator<Item = f32>,
) -> Result<Op, String> {
    let mut a = |default: f32| Real(f64::from(alpha.next().unwrap_or(default)));
    let f = match name {
        "Relu" => return Ok(Op::Relu),
        "Tanh" => Func::Tanh,
        "Sigmoid" => Func::Sigmoid,
        "Softsign" => Func::Softsign,
        "Softplus" => Func::Softplus,
        "HardSigmoid" => {
            let alpha = a(0.2);
            Func::HardSigmoid {
                alpha,
                beta: Real(f64::from(beta.next().unwrap_or(0.5))),
            }
        }
        "LeakyRelu" => Func::LeakyRelu { alpha: a(0.01) },
        "ThresholdedRelu" => Func::ThresholdedRelu { alpha: a(1.0) },
        "Elu" => Func::Elu { alpha: a(1.0) },
        other => return Err(format!("activation `{other}` is not supported")),
    };
    Ok(Op::Unary(f))
}

/// `RNN`, `GRU`, `LSTM` (forward, reverse, bidirectional; `layout` 0 and 1; biases,
/// initial states, peepholes, `clip`, the activations ONNX lists; GRU's
/// `linear_before_reset`). `sequence_lens` must cover the whole sequence.
pub(super) fn import_recurrent(cx: &NodeCx<'_>) -> Result<Lowered, CompileError> {
    let n = cx.n;
    let kind = n.op_type.as_str();
    let gates = match kind {
        "RNN" => 1,
        "GRU" => 3,
        _ => 4,
    };
    let input = |i: usize| n.input.get(i).filter(|s| !s.is_empty());
    let constant = |i: usize, what: &str| -> Result<Option<&Tensor>, CompileError> {
        match input(i) {
            None => Ok(None),
            Some(name) => cx.constants.get(name).map(Some).ok_or_else(|| {
                cx.invalid(format!("{what} `{name}` must be a constant (initializer)"))
            }),
        }
    };
    let x_name = input(0).ok_or_else(|| cx.invalid("the input X is required".into()))?;
    let xs = cx.shape_of(x_name)?;
    let layout = attr_i(n, "layout").unwrap_or(0);
    let [seq, batch, isz] = match (&xs[..], layout) {
        (&[s, b, i], 0) => [s, b, i],
        (&[b, s, i], 1) => [s, b, i],
        _ => return Err(cx.invalid(format!("X {xs:?} must be 3-D, layout 0 or 1"))),
    };
    let w = constant(1, "W")?.ok_or_else(|| cx.invalid("the weights W are required".into()))?;
    let r = constant(2, "R")?.ok_or_else(|| cx.invalid("the weights R are required".into()))?;
    let [dirs, gh, wi] = w.shape[..] else {
        return Err(cx.invalid(format!("W {:?} must be 3-D", w.shape)));
    };
    let h = gh / gates;
    if gh != gates * h || wi != isz || r.shape != [dirs, gh, h] {
        return Err(cx.invalid(format!(
            "W {:?} and R {:?} do not fit X {xs:?} with {gates} gates",
            w.shape, r.shape
        )));
    }
    if attr_i(n, "hidden_size").is_some_and(|s| s as usize != h) {
        return Err(cx.invalid(format!("hidden_size differs from W's {h}")));
    }
    let direction = attr(n, "direction").map_or("forward".into(), |a| {
        String::from_utf8_lossy(&a.s).into_owned()
    });
    let reverse: Vec<bool> = match (direction.as_str(), dirs) {
        ("forward", 1) => vec![false],
        ("reverse", 1) => vec![true],
        ("bidirectional", 2) => vec![false, true],
        (d, _) => {
            return Err(cx.invalid(format!(
                "direction `{d}` does not fit W's {dirs} directions"
            )))
        }
    };
    let zeros = Tensor::new(vec![dirs, 2 * gh], vec![0.0; dirs * 2 * gh]);
    let b = constant(3, "B")?.unwrap_or(&zeros);
    if b.shape != [dirs, 2 * gh] {
        return Err(cx.invalid(format!("B {:?} must be [{dirs}, {}]", b.shape, 2 * gh)));
    }
    if let Some(lens) = input(4) {
        let full = cx
            .int_constants
            .get(lens)
            .is_some_and(|(_, v)| v.len() == batch && v.iter().all(|&l| l as usize == seq));
        if !full {
            return Err(cx.invalid(format!(
                "sequence_lens `{lens}` must be a constant equal to the sequence length {seq} for every sample"
            )));
        }
    }
    if attr_i(n, "input_forget").unwrap_or(0) != 0 {
        return Err(cx.invalid("input_forget=1 is not supported".into()));
    }
    let lbr = attr_i(n, "linear_before_reset").unwrap_or(0) != 0;
    let clip = attr(n, "clip").map(|a| a.f);
    let defaults: &[&str] = match kind {
        "RNN" => &["Tanh"],
        "GRU" => &["Sigmoid", "Tanh"],
        _ => &["Sigmoid", "Tanh", "Tanh"],
    };
    let names: Vec<String> = match attr(n, "activations") {
        Some(a) => a
            .strings
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
        None => defaults
            .iter()
            .cycle()
            .take(defaults.len() * dirs)
            .map(|s| s.to_string())
            .collect(),
    };
    if names.len() != defaults.len() * dirs {
        return Err(cx.invalid(format!(
            "{} activations given, {} expected",
            names.len(),
            defaults.len() * dirs
        )));
    }
    let (mut alpha, mut beta) = (
        attr(n, "activation_alpha")
            .map_or(vec![], |a| a.floats.clone())
            .into_iter(),
        attr(n, "activation_beta")
            .map_or(vec![], |a| a.floats.clone())
            .into_iter(),
    );
    let acts: Vec<Op> = names
        .iter()
        .map(|s| activation(s, &mut alpha, &mut beta))
        .collect::<Result<_, _>>()
        .map_err(|e| cx.invalid(e))?;
    let hb = vec![batch, h];
    let state_shape = [dirs, batch, h];
    let state_shape = if layout == 0 {
        state_shape.to_vec()
    } else {
        vec![batch, dirs, h]
    };
    // An initial state's slice for direction d: absent or all zero, a constant, or computed.
    let initial = |i: usize, d: usize, tag: &str| -> Result<Option<Term>, CompileError> {
        let Some(name) = input(i) else {
            return Ok(None);
        };
        let s = cx.shape_of(name)?;
        if s != state_shape {
            return Err(cx.invalid(format!("{tag} `{name}` is {s:?}, expected {state_shape:?}")));
        }
        let at = |b: usize, k: usize| {
            if layout == 0 {
                (d * batch + b) * h + k
            } else {
                (b * dirs + d) * h + k
            }
        };
        let index: Vec<usize> = (0..batch)
            .flat_map(|b| (0..h).map(move |k| (b, k)))
            .map(|(b, k)| at(b, k))
            .collect();
        Ok(match cx.constants.get(name) {
            Some(t) if t.data.iter().all(|&v| v == 0.0) => None,
            Some(t) => Some(Term::Constant(index.iter().map(|&j| t.data[j]).collect())),
            None => Some(Term::Computed(cx.emit(
                &format!("{tag}{d}"),
                Op::Select {
                    index: index.into_iter().map(Some).collect(),
                },
                vec![name.clone()],
                hb.clone(),
            ))),
        })
    };
    let peepholes = if kind == "LSTM" {
        constant(7, "P")?
    } else {
        None
    };
    if let Some(p) = peepholes {
        if p.shape != [dirs, 3 * h] {
            return Err(cx.invalid(format!("P {:?} must be [{dirs}, {}]", p.shape, 3 * h)));
        }
    }
    // Every step's input projection at once: X as [seq·batch, I].
    let steps = if layout == 0 {
        x_name.clone()
    } else {
        cx.emit(
            "time_major",
            Op::Transpose {
                perm: vec![1, 0, 2],
            },
            vec![x_name.clone()],
            vec![seq, batch, isz],
        )
    };
    let rows = cx.emit("steps", Op::Reshape, vec![steps], vec![seq * batch, isz]);
    let gemm = || {
        Op::Gemm(Gemm {
            alpha: 1.0,
            beta: 1.0,
            trans_a: false,
            trans_b: true,
        })
    };
    // Sums terms: the constants on the host, the computed ones by `Add`.
    let sum = |terms: Vec<Term>, tag: &str| -> String {
        let mut constant = vec![0.0f32; batch * h];
        let mut computed = Vec::new();
        for t in terms {
            match t {
                Term::Computed(s) => computed.push(s),
                Term::Constant(v) => constant.iter_mut().zip(v).for_each(|(a, b)| *a += b),
            }
        }
        if computed.is_empty() || constant.iter().any(|&v| v != 0.0) {
            computed.push(cx.emit_constant(
                &format!("{tag}_constant"),
                Tensor::new(hb.clone(), constant),
            ));
        }
        let mut acc = computed[0].clone();
        for (i, t) in computed[1..].iter().enumerate() {
            acc = cx.emit(
                &format!("{tag}_sum{i}"),
                Op::Add,
                vec![acc, t.clone()],
                hb.clone(),
            );
        }
        acc
    };
    let apply = |op: &Op, x: String, tag: &str| -> String {
        let x = match clip {
            Some(c) => cx.emit(
                &format!("{tag}_clipped"),
                Op::Unary(Func::Clip {
                    min: Real(-f64::from(c)),
                    max: Real(f64::from(c)),
                }),
                vec![x],
                hb.clone(),
            ),
            None => x,
        };
        cx.emit(tag, op.clone(), vec![x], hb.clone())
    };
    let mul = |a: &str, b: &Term, tag: &str| -> Term {
        match b {
            Term::Computed(s) => {
                Term::Computed(cx.emit(tag, Op::Mul, vec![a.to_string(), s.clone()], hb.clone()))
            }
            Term::Constant(v) => {
                let k =
                    cx.emit_constant(&format!("{tag}_factor"), Tensor::new(hb.clone(), v.clone()));
                Term::Computed(cx.emit(tag, Op::Mul, vec![a.to_string(), k], hb.clone()))
            }
        }
    };
    // Gate g's columns of R (or W), as a constant [H, cols].
    let gate_rows = |t: &Tensor, d: usize, g: &[usize], cols: usize| -> Vec<f32> {
        g.iter()
            .flat_map(|&g| {
                let start = (d * gh + g * h) * cols;
                t.data[start..start + h * cols].iter().copied()
            })
            .collect()
    };
    // h · R_gᵀ for the gates `g` (each [batch, H]), the state computed or constant.
    let recur = |state: &Term, d: usize, g: &[usize], tag: &str| -> Vec<Term> {
        let rg = gate_rows(r, d, g, h);
        let k = g.len() * h;
        match state {
            Term::Computed(s) => {
                let rt = cx.emit_constant(&format!("{tag}_r"), Tensor::new(vec![k, h], rg));
                let all = cx.emit(tag, gemm(), vec![s.clone(), rt], vec![batch, k]);
                (0..g.len())
                    .map(|j| {
                        let index = (0..batch)
                            .flat_map(|b| (0..h).map(move |c| Some(b * k + j * h + c)))
                            .collect();
                        Term::Computed(cx.emit(
                            &format!("{tag}_g{j}"),
                            Op::Select { index },
                            vec![all.clone()],
                            hb.clone(),
                        ))
                    })
                    .collect()
            }
            Term::Constant(v) => (0..g.len())
                .map(|j| {
                    let mut out = vec![0.0f32; batch * h];
                    for b in 0..batch {
                        for c in 0..h {
                            out[b * h + c] =
                                (0..h).map(|m| v[b * h + m] * rg[(j * h + c) * h + m]).sum();
                        }
                    }
                    Term::Constant(out)
                })
                .collect(),
        }
    };
    let mut ys: Vec<Vec<String>> = Vec::new();
    let (mut last_h, mut last_c) = (Vec::new(), Vec::new());
    for (d, &rev) in reverse.iter().enumerate() {
        let act = &acts[d * defaults.len()..(d + 1) * defaults.len()];
        // Biases: Wb + Rb, but for GRU's hidden gate with linear_before_reset, Rb stays
        // inside the reset product.
        let bias: Vec<f32> = (0..gh)
            .map(|j| {
                let rb = b.data[d * 2 * gh + gh + j];
                let inside = kind == "GRU" && lbr && j >= 2 * h;
                b.data[d * 2 * gh + j] + if inside { 0.0 } else { rb }
            })
            .collect();
        let wt = cx.emit_constant(
            &format!("d{d}_w"),
            Tensor::new(
                vec![gh, isz],
                gate_rows(w, d, &(0..gates).collect::<Vec<_>>(), isz),
            ),
        );
        let bt = cx.emit_constant(&format!("d{d}_b"), Tensor::new(vec![gh], bias));
        let xg = cx.emit(
            &format!("d{d}_x"),
            gemm(),
            vec![rows.clone(), wt, bt],
            vec![seq * batch, gh],
        );
        let x_gate = |t: usize, g: usize| -> Term {
            let index = (0..batch)
                .flat_map(|b| (0..h).map(move |c| Some((t * batch + b) * gh + g * h + c)))
                .collect();
            Term::Computed(cx.emit(
                &format!("d{d}_t{t}_x{g}"),
                Op::Select { index },
                vec![xg.clone()],
                hb.clone(),
            ))
        };
        let p = |g: usize| {
            peepholes.map(|p| p.data[d * 3 * h + g * h..d * 3 * h + (g + 1) * h].to_vec())
        };
        let mut state: Option<Term> = initial(5, d, "initial_h")?;
        let mut cell: Option<Term> = if kind == "LSTM" {
            initial(6, d, "initial_c")?
        } else {
            None
        };
        let mut outs = vec![String::new(); seq];
        for step in 0..seq {
            let t = if rev { seq - 1 - step } else { step };
            let tag = format!("d{d}_t{t}");
            let new_h = match kind {
                "RNN" => {
                    let mut terms = vec![x_gate(t, 0)];
                    if let Some(s) = &state {
                        terms.extend(recur(s, d, &[0], &format!("{tag}_hr")));
                    }
                    apply(
                        &act[0],
                        sum(terms, &format!("{tag}_pre")),
                        &format!("{tag}_h"),
                    )
                }
                "GRU" => {
                    let hr = match &state {
                        Some(s) => recur(
                            s,
                            d,
                            if lbr { &[0, 1, 2] } else { &[0, 1] },
                            &format!("{tag}_hr"),
                        ),
                        None => vec![],
                    };
                    let mut hr = hr.into_iter();
                    let mut gate = |g: usize, name: &str| {
                        let mut terms = vec![x_gate(t, g)];
                        terms.extend(hr.next());
                        apply(
                            &act[0],
                            sum(terms, &format!("{tag}_{name}_pre")),
                            &format!("{tag}_{name}"),
                        )
                    };
                    let z = gate(0, "z");
                    let rg = gate(1, "r");
                    let mut terms = vec![x_gate(t, 2)];
                    match (&state, lbr) {
                        (None, false) => {}
                        (Some(s), false) => {
                            let rs = mul(&rg, s, &format!("{tag}_rs"));
                            terms.extend(recur(&rs, d, &[2], &format!("{tag}_rsr")));
                        }
                        (_, true) => {
                            // r ⊙ (H₋₁ · Rhᵀ + Rbh), H₋₁ · Rhᵀ absent from a zero state.
                            let rbh = &b.data[d * 2 * gh + gh + 2 * h..d * 2 * gh + gh + 3 * h];
                            let rbh: Vec<f32> =
                                (0..batch).flat_map(|_| rbh.iter().copied()).collect();
                            let linear = match hr.next() {
                                Some(t) => Term::Computed(sum(
                                    vec![t, Term::Constant(rbh)],
                                    &format!("{tag}_hlin"),
                                )),
                                None => Term::Constant(rbh),
                            };
                            terms.push(mul(&rg, &linear, &format!("{tag}_rh")));
                        }
                    }
                    let cand = apply(
                        &act[1],
                        sum(terms, &format!("{tag}_n_pre")),
                        &format!("{tag}_n"),
                    );
                    // H = (1 − z) ⊙ n + z ⊙ H₋₁ = n + z ⊙ (H₋₁ − n)
                    let back = match &state {
                        None => {
                            let zn = cx.emit(
                                &format!("{tag}_zn"),
                                Op::Mul,
                                vec![z, cand.clone()],
                                hb.clone(),
                            );
                            cx.emit(&format!("{tag}_h"), Op::Sub, vec![cand, zn], hb.clone())
                        }
                        Some(s) => {
                            let diff = match s {
                                Term::Computed(s) => cx.emit(
                                    &format!("{tag}_diff"),
                                    Op::Sub,
                                    vec![s.clone(), cand.clone()],
                                    hb.clone(),
                                ),
                                Term::Constant(v) => {
                                    let k = cx.emit_constant(
                                        &format!("{tag}_h0"),
                                        Tensor::new(hb.clone(), v.clone()),
                                    );
                                    cx.emit(
                                        &format!("{tag}_diff"),
                                        Op::Sub,
                                        vec![k, cand.clone()],
                                        hb.clone(),
                                    )
                                }
                            };
                            let zd =
                                cx.emit(&format!("{tag}_zd"), Op::Mul, vec![z, diff], hb.clone());
                            cx.emit(&format!("{tag}_h"), Op::Add, vec![cand, zd], hb.clone())
                        }
                    };
                    back
                }
                _ => {
                    // Gates i, o, f, c: i and f see C₋₁ through the peepholes, o sees C.
                    let mut hr = match &state {
                        Some(s) => recur(s, d, &[0, 1, 2, 3], &format!("{tag}_hr")),
                        None => vec![],
                    }
                    .into_iter();
                    let mut pre = |g: usize| -> Vec<Term> {
                        let mut terms = vec![x_gate(t, g)];
                        terms.extend(hr.next());
                        terms
                    };
                    let (mut i_terms, o_terms, mut f_terms, g_terms) =
                        (pre(0), pre(1), pre(2), pre(3));
                    let peep = |g: usize, c: &Term, tag: &str| -> Option<Term> {
                        let p = p(g)?;
                        let p: Vec<f32> = (0..batch).flat_map(|_| p.iter().copied()).collect();
                        Some(match c {
                            Term::Computed(c) => {
                                let k = cx
                                    .emit_constant(&format!("{tag}_p"), Tensor::new(hb.clone(), p));
                                Term::Computed(cx.emit(
                                    tag,
                                    Op::Mul,
                                    vec![c.clone(), k],
                                    hb.clone(),
                                ))
                            }
                            Term::Constant(v) => {
                                Term::Constant(v.iter().zip(&p).map(|(a, b)| a * b).collect())
                            }
                        })
                    };
                    if let Some(c) = &cell {
                        i_terms.extend(peep(0, c, &format!("{tag}_pi")));
                        f_terms.extend(peep(2, c, &format!("{tag}_pf")));
                    }
                    let gate = |op: &Op, terms: Vec<Term>, name: &str| {
                        apply(
                            op,
                            sum(terms, &format!("{tag}_{name}_pre")),
                            &format!("{tag}_{name}"),
                        )
                    };
                    let i = gate(&act[0], i_terms, "i");
                    let f = gate(&act[0], f_terms, "f");
                    let g = gate(&act[1], g_terms, "g");
                    let mut c_terms = vec![Term::Computed(cx.emit(
                        &format!("{tag}_ig"),
                        Op::Mul,
                        vec![i, g],
                        hb.clone(),
                    ))];
                    if let Some(c) = &cell {
                        c_terms.push(mul(&f, c, &format!("{tag}_fc")));
                    }
                    let c_new = sum(c_terms, &format!("{tag}_c"));
                    let mut o_terms = o_terms;
                    o_terms.extend(peep(
                        1,
                        &Term::Computed(c_new.clone()),
                        &format!("{tag}_po"),
                    ));
                    let o = apply(
                        &act[0],
                        sum(o_terms, &format!("{tag}_o_pre")),
                        &format!("{tag}_o"),
                    );
                    let hc = apply(&act[2], c_new.clone(), &format!("{tag}_hc"));
                    cell = Some(Term::Computed(c_new));
                    cx.emit(&format!("{tag}_h"), Op::Mul, vec![o, hc], hb.clone())
                }
            };
            outs[t] = new_h.clone();
            state = Some(Term::Computed(new_h));
        }
        let name = |t: Option<Term>| match t {
            Some(Term::Computed(s)) => Ok(s),
            _ => Err(cx.invalid(format!("the sequence of X {xs:?} is empty"))),
        };
        last_h.push(name(state)?);
        if kind == "LSTM" {
            last_c.push(name(cell)?);
        }
        ys.push(outs);
    }
    // Y [seq, dirs, batch, H] (layout 1: [batch, seq, dirs, H]); Y_h, Y_c [dirs, batch, H]
    // (layout 1: [batch, dirs, H]): element maps of the steps' states.
    let inputs: Vec<String> = ys.concat();
    let mut y_index = Vec::with_capacity(seq * dirs * batch * h);
    let y_shape = if layout == 0 {
        vec![seq, dirs, batch, h]
    } else {
        vec![batch, seq, dirs, h]
    };
    for a in 0..y_shape[0] {
        for b2 in 0..y_shape[1] {
            for c in 0..y_shape[2] {
                let (t, d, bt) = if layout == 0 { (a, b2, c) } else { (b2, c, a) };
                for k in 0..h {
                    y_index.push(Some((d * seq + t, bt * h + k)));
                }
            }
        }
    }
    let state_index = || -> Sources {
        let mut v = Vec::with_capacity(dirs * batch * h);
        for a in 0..state_shape[0] {
            for b2 in 0..state_shape[1] {
                let (d, bt) = if layout == 0 { (a, b2) } else { (b2, a) };
                v.extend((0..h).map(|k| Some((d, bt * h + k))));
            }
        }
        v
    };
    let outputs = &n.output;
    if let Some(y_h) = outputs.get(1).filter(|s| !s.is_empty()) {
        cx.emit_output(
            y_h,
            Op::Concat {
                index: state_index(),
            },
            last_h,
            state_shape.clone(),
        );
    }
    if let Some(y_c) = outputs.get(2).filter(|s| !s.is_empty()) {
        cx.emit_output(
            y_c,
            Op::Concat {
                index: state_index(),
            },
            last_c,
            state_shape.clone(),
        );
    }
    Ok((Op::Concat { index: y_index }, inputs, y_shape))
}
