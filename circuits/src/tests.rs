//! MockProver tests: every chip against the integer interpreter on random inputs, and a
//! corrupted witness for each that must be rejected.

use std::sync::Arc;

use halo2_proofs::dev::MockProver;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use zkinfer_qir::{
    Activation, Add, AddOperand, Linear, QModel, QOp, QValue, Rearrange, Rescale, Reshape, Trace,
    ValueId,
};

use crate::plan::{evaluate, Candidate};
use crate::{fe, fe_to_i64, InputMode, ModelCircuit, OutputMode, ParamsMode, Visibility};

const BITS: u32 = 8;

fn v(name: &str, shape: Vec<usize>) -> QValue {
    QValue {
        name: name.into(),
        shape,
        scale: 0,
    }
}

/// Runs MockProver for `model` on `input` with the given column counts; `corrupt` may
/// alter the trace first.
fn mock(
    model: &QModel,
    input: &[i64],
    cols: (usize, usize, usize),
    corrupt: impl FnOnce(&mut Trace),
) -> Result<(), String> {
    mock_with(model, input, cols, Visibility::default(), corrupt, |_| {})
}

/// A candidate with the given linear and lane counts (one hash and packing lane if needed).
fn candidate(cols: (usize, usize, usize), vis: Visibility) -> Candidate {
    Candidate {
        x_cols: cols.0,
        acc_cols: cols.1,
        lanes: cols.2,
        hash_lanes: usize::from(vis.hashes_anything()),
        pack_lanes: usize::from(vis.params == ParamsMode::Hashed),
        link_lanes: usize::from(vis.is_linked()),
        horner_lanes: 0,
        freivalds: Vec::new(),
        products: false,
        limbs: false,
        banks: 1,
    }
}

/// [`mock`] with a visibility, and a hook that may alter the public values. It runs
/// every way of range-checking — against the one table, in limbs, and in limbs with the
/// table in two banks where the model has a function to put in the second — and panics
/// where they disagree: every chip test below holds for each.
fn mock_with(
    model: &QModel,
    input: &[i64],
    cols: (usize, usize, usize),
    vis: Visibility,
    corrupt: impl FnOnce(&mut Trace),
    alter: impl FnOnce(&mut Vec<halo2_proofs::halo2curves::bn256::Fr>),
) -> Result<(), String> {
    let mut trace = model.run(input).map_err(|e| format!("interpreter: {e}"))?;
    let plan = evaluate(model, vis, candidate(cols, vis)).map_err(|e| e.to_string())?;
    let mut instances = ModelCircuit::instances(model, &plan.layout, &trace, &Default::default());
    alter(&mut instances);
    corrupt(&mut trace);
    let table = run_mock(model, &plan.layout, trace.clone(), instances.clone());
    let mut others = vec![(true, 1)];
    if !model.tables.is_empty() {
        others.push((true, 2));
    }
    for (limbs, banks) in others {
        let c = Candidate {
            limbs,
            banks,
            ..candidate(cols, vis)
        };
        let layout = evaluate(model, vis, c).map_err(|e| e.to_string())?.layout;
        assert!(layout.limb_bits > 0);
        let r = run_mock(model, &layout, trace.clone(), instances.clone());
        assert_eq!(
            table.is_ok(),
            r.is_ok(),
            "range checks by table: {table:?}; in limbs, {banks} banks: {r:?}"
        );
    }
    table
}

/// MockProver on `trace` as the witness and `instances` as the public values.
fn run_mock(
    model: &QModel,
    layout: &crate::Layout,
    trace: Trace,
    instances: Vec<halo2_proofs::halo2curves::bn256::Fr>,
) -> Result<(), String> {
    let circuit =
        ModelCircuit::with_trace(Arc::new(model.clone()), layout.clone(), Arc::new(trace));
    let prover = MockProver::run(layout.k, &circuit, vec![instances]).map_err(|e| e.to_string())?;
    prover
        .verify()
        .map_err(|f| format!("{} failures, first: {}", f.len(), f[0]))
}

/// A private or hashed input must be an `act_bits`-bit integer (issue 13, attack 4): a
/// witness whose input lies outside that range — every other value computed from it
/// exactly, and the input hash of it — fails the input's range lookup; the range's ends
/// pass.
#[test]
fn a_private_or_hashed_input_out_of_range_is_rejected() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (model, input) = linear_model(&mut rng, 1, 3, 2, false);
    // The same program with room for the wide input, to compute the cheater's witness.
    let mut wide = model.clone();
    wide.act_bits = 16;
    for input_mode in [InputMode::Private, InputMode::Hashed] {
        let vis = Visibility {
            input: input_mode,
            ..Visibility::default()
        };
        for limbs in [false, true] {
            let c = Candidate {
                limbs,
                ..candidate((1, 1, 1), vis)
            };
            let plan = evaluate(&model, vis, c).unwrap();
            let check = if limbs { "limb" } else { "activation" };
            for (x0, ok) in [
                (127, true),
                (-128, true),
                (128, false),
                (-129, false),
                (600, false),
            ] {
                let mut x = input.clone();
                x[0] = x0;
                assert_eq!(model.run(&x).is_ok(), ok, "the interpreter's range");
                let trace = wide.run(&x).unwrap();
                let instances =
                    ModelCircuit::instances(&model, &plan.layout, &trace, &Default::default());
                let r = run_mock(&model, &plan.layout, trace, instances);
                assert_eq!(r.is_ok(), ok, "{vis}, limbs {limbs}: input {x0}: {r:?}");
                if let Err(e) = r {
                    assert!(e.contains(check), "{vis}: fails elsewhere: {e}");
                }
            }
        }
    }
}

/// x[rows, m] → Linear(n) → Rescale(shift, relu)
fn linear_model(
    rng: &mut ChaCha8Rng,
    rows: usize,
    m: usize,
    n: usize,
    relu: bool,
) -> (QModel, Vec<i64>) {
    let weight = (0..m * n).map(|_| rng.gen_range(-8..=8)).collect();
    let bias = (0..n).map(|_| rng.gen_range(-50..=50)).collect();
    let model = QModel {
        name: "linear".into(),
        values: vec![
            v("x", vec![rows, m]),
            v("h", vec![rows, n]),
            v("y", vec![rows, n]),
        ],
        input: ValueId(0),
        output: ValueId(2),
        ops: vec![
            QOp::Linear(Linear {
                input: ValueId(0),
                output: ValueId(1),
                in_features: m,
                out_features: n,
                weight,
                weight_scale: 0,
                bias,
            }),
            // |h| ≤ m·8·15 + 50; shift 6 keeps y inside 8 bits for m ≤ 16.
            QOp::Rescale(Rescale {
                input: ValueId(1),
                output: ValueId(2),
                shift: 6,
                act: if relu {
                    Activation::Relu
                } else {
                    Activation::Identity
                },
            }),
        ],
        act_bits: BITS,
        tables: vec![],
    };
    let input = (0..rows * m).map(|_| rng.gen_range(-15..=15)).collect();
    (model, input)
}

fn add_model(rng: &mut ChaCha8Rng, len: usize, constant: bool) -> (QModel, Vec<i64>) {
    let b = if constant {
        AddOperand::Constant((0..len).map(|_| rng.gen_range(-20..=20)).collect())
    } else {
        AddOperand::Value {
            id: ValueId(1),
            mul: 4,
        }
    };
    let model = QModel {
        name: "add".into(),
        values: vec![
            v("x", vec![len]),
            v("xr", vec![len]),
            v("s", vec![len]),
            v("y", vec![len]),
        ],
        input: ValueId(0),
        output: ValueId(3),
        ops: vec![
            // xr = reversed x: exercises Rearrange copies.
            QOp::Rearrange(Rearrange {
                input: ValueId(0),
                output: ValueId(1),
                index: (0..len).rev().map(Some).collect(),
            }),
            QOp::Add(Add {
                a: ValueId(0),
                b,
                output: ValueId(2),
                a_mul: vec![2],
            }),
            QOp::Rescale(Rescale {
                input: ValueId(2),
                output: ValueId(3),
                shift: 1,
                act: Activation::Identity,
            }),
        ],
        act_bits: BITS,
        tables: vec![],
    };
    let input = (0..len).map(|_| rng.gen_range(-20..=20)).collect();
    (model, input)
}

/// x → (relu(x), floor(x / 2)) → Concat with `index` → rescale by 2^0.
fn concat_model(len: usize, index: Vec<Option<(usize, usize)>>) -> QModel {
    let out = index.len();
    QModel {
        name: "concat".into(),
        values: vec![
            v("x", vec![len]),
            v("a", vec![len]),
            v("b", vec![len]),
            v("c", vec![out]),
            v("y", vec![out]),
        ],
        input: ValueId(0),
        output: ValueId(4),
        ops: vec![
            QOp::Rescale(Rescale {
                input: ValueId(0),
                output: ValueId(1),
                shift: 0,
                act: Activation::Relu,
            }),
            QOp::Rescale(Rescale {
                input: ValueId(0),
                output: ValueId(2),
                shift: 1,
                act: Activation::Identity,
            }),
            QOp::Concat(zkinfer_qir::Concat {
                inputs: vec![ValueId(1), ValueId(2)],
                output: ValueId(3),
                index,
            }),
            QOp::Rescale(Rescale {
                input: ValueId(3),
                output: ValueId(4),
                shift: 0,
                act: Activation::Identity,
            }),
        ],
        act_bits: BITS,
        tables: vec![],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn concat_matches_interpreter_and_rejects_a_wrong_source(seed in any::<u64>(), len in 1usize..8, out in 1usize..16) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let index: Vec<_> = (0..out)
            .map(|_| (rng.gen_range(0..5) > 0).then(|| (rng.gen_range(0..2), rng.gen_range(0..len))))
            .collect();
        let model = concat_model(len, index.clone());
        let input: Vec<i64> = (0..len).map(|_| rng.gen_range(-100..=100)).collect();
        prop_assert_eq!(mock(&model, &input, (1, 1, 2), |_| {}), Ok(()));
        // A wrong value in a source that the concatenation reads is caught.
        if let Some((k, j)) = index.iter().flatten().next().copied() {
            prop_assert!(mock(&model, &input, (1, 1, 2), |t| t.values[1 + k][j] += 1).is_err());
        }
    }

    #[test]
    fn linear_rescale_matches_interpreter(seed in any::<u64>(), rows in 1usize..3, m in 1usize..12, n in 1usize..6,
                                          relu in any::<bool>(), d in 0usize..3, c in 0usize..3) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (model, input) = linear_model(&mut rng, rows, m, n, relu);
        prop_assert_eq!(mock(&model, &input, (1 << d, 1 << c, 1 + (seed % 3) as usize), |_| {}), Ok(()));
    }

    #[test]
    fn add_matches_interpreter(seed in any::<u64>(), len in 1usize..20, constant in any::<bool>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (model, input) = add_model(&mut rng, len, constant);
        prop_assert_eq!(mock(&model, &input, (1, 1, 2), |_| {}), Ok(()));
    }
}

#[test]
fn corrupted_linear_output_is_rejected() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (model, input) = linear_model(&mut rng, 1, 9, 3, false);
    let r = mock(&model, &input, (4, 2, 1), |t| t.values[1][2] += 1);
    assert!(r.is_err(), "a wrong dot product must fail");
}

#[test]
fn corrupted_rescale_output_is_rejected() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for relu in [false, true] {
        let (model, input) = linear_model(&mut rng, 1, 9, 3, relu);
        let trace = model.run(&input).unwrap();
        // Pick an element whose output the corruption really changes.
        let i = (0..3)
            .find(|&i| !relu || trace.values[2][i] > 0)
            .unwrap_or(0);
        for delta in [1, -1] {
            let r = mock(&model, &input, (4, 2, 1), |t| t.values[2][i] += delta);
            assert!(
                r.is_err(),
                "relu={relu} delta={delta}: a wrong floor division must fail"
            );
        }
    }
}

#[test]
fn corrupted_relu_output_is_rejected() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (model, input) = linear_model(&mut rng, 1, 9, 4, true);
    let trace = model.run(&input).unwrap();
    // A negative pre-activation whose ReLU is 0: claiming the negative value must fail.
    if let Some(i) = (0..4).find(|&i| trace.values[2][i] == 0) {
        let r = mock(&model, &input, (2, 2, 1), |t| t.values[2][i] = -1);
        assert!(r.is_err());
    }
    let r = mock(&model, &input, (2, 2, 1), |t| t.values[2][0] = 1 << BITS);
    assert!(r.is_err(), "an out-of-range output must fail");
}

#[test]
fn corrupted_add_output_is_rejected() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for constant in [false, true] {
        let (model, input) = add_model(&mut rng, 5, constant);
        let r = mock(&model, &input, (1, 1, 1), |t| t.values[2][3] -= 1);
        assert!(r.is_err(), "constant={constant}");
    }
}

#[test]
fn wrong_public_output_is_rejected() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (model, input) = linear_model(&mut rng, 1, 5, 2, false);
    let trace = model.run(&input).unwrap();
    let plan = evaluate(
        &model,
        Visibility::default(),
        candidate((2, 2, 1), Visibility::default()),
    )
    .unwrap();
    let mut instances = ModelCircuit::instances(&model, &plan.layout, &trace, &Default::default());
    let last = instances.len() - 1;
    instances[last] += fe(1);
    let circuit = ModelCircuit::with_trace(Arc::new(model), plan.layout.clone(), Arc::new(trace));
    let prover = MockProver::run(plan.layout.k, &circuit, vec![instances]).unwrap();
    assert!(prover.verify().is_err());
}

#[test]
fn reshape_aliases_cells() {
    let model = QModel {
        name: "reshape".into(),
        values: vec![v("x", vec![2, 2]), v("f", vec![4]), v("y", vec![4])],
        input: ValueId(0),
        output: ValueId(2),
        ops: vec![
            QOp::Reshape(Reshape {
                input: ValueId(0),
                output: ValueId(1),
            }),
            QOp::Rescale(Rescale {
                input: ValueId(1),
                output: ValueId(2),
                shift: 0,
                act: Activation::Relu,
            }),
        ],
        act_bits: BITS,
        tables: vec![],
    };
    assert_eq!(mock(&model, &[3, -4, 5, -6], (1, 1, 1), |_| {}), Ok(()));
}

#[test]
fn wide_rescale_takes_two_rows_and_rejects_a_wrong_quotient() {
    // shift 12 ≥ BITS: the rescale is split across two rows.
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let (mut model, input) = linear_model(&mut rng, 1, 6, 3, false);
    if let QOp::Linear(l) = &mut model.ops[0] {
        l.weight.iter_mut().for_each(|w| *w *= 97);
    }
    if let QOp::Rescale(r) = &mut model.ops[1] {
        r.shift = 12;
    }
    assert_eq!(mock(&model, &input, (2, 2, 1), |_| {}), Ok(()));
    for delta in [1, -1] {
        assert!(mock(&model, &input, (2, 2, 1), |t| t.values[2][1] += delta).is_err());
    }
}

/// x → (x · x, exp(x)): a product of computed values and a tabulated function.
fn mul_and_table_model() -> QModel {
    QModel {
        name: "mul_table".into(),
        values: vec![v("x", vec![6]), v("sq", vec![6]), v("e", vec![6])],
        input: ValueId(0),
        output: ValueId(2),
        ops: vec![
            QOp::Mul(zkinfer_qir::Mul {
                a: ValueId(0),
                b: ValueId(0),
                output: ValueId(1),
            }),
            QOp::Rescale(Rescale {
                input: ValueId(1),
                output: ValueId(2),
                shift: 2,
                act: Activation::Table(0),
            }),
        ],
        act_bits: BITS,
        tables: vec![zkinfer_qir::TableSpec {
            func: zkinfer_qir::Func::Exp,
            in_scale: 4,
            out_scale: 3,
            in_bits: 0,
        }],
    }
}

#[test]
fn products_and_tabulated_functions_match_and_reject_corruption() {
    let model = mul_and_table_model();
    let input = [-5, -3, 0, 2, 4, 7];
    assert_eq!(mock(&model, &input, (1, 1, 2), |_| {}), Ok(()));
    assert!(
        mock(&model, &input, (1, 1, 2), |t| t.values[1][3] += 1).is_err(),
        "wrong product"
    );
    assert!(
        mock(&model, &input, (1, 1, 2), |t| t.values[2][5] -= 1).is_err(),
        "wrong table output"
    );
}

/// A table of narrower inputs (`TableSpec::in_bits`) bounds its input in the circuit as
/// the interpreter does: a witness in which the function is applied to a value outside
/// that width — the same model's trace with a table of every activation value, each
/// cell consistent — fails the lookup, whether ranges are checked by table or in limbs,
/// in one bank or two; the full table accepts that same witness.
#[test]
fn a_narrower_function_table_bounds_its_input() {
    let full = mul_and_table_model();
    let mut narrow = full.clone();
    narrow.tables[0].in_bits = 5;
    let input = [-5, -3, 0, 2, 4, 7];
    assert_eq!(mock(&narrow, &input, (1, 1, 2), |_| {}), Ok(()));
    // 9 · 9 = 81, rescaled by 2^2: 20, an 8-bit value but not a 5-bit one.
    let far = [-5, -3, 0, 2, 4, 9];
    assert!(matches!(
        narrow.run(&far),
        Err(zkinfer_qir::QirError::OutOfRange { bits: 5, .. })
    ));
    let trace = full.run(&far).unwrap();
    let vis = Visibility::default();
    for (limbs, banks) in [(false, 1), (true, 1), (true, 2)] {
        let c = Candidate {
            limbs,
            banks,
            ..candidate((1, 1, 2), vis)
        };
        let layout = evaluate(&narrow, vis, c.clone()).unwrap().layout;
        let instances = ModelCircuit::instances(&narrow, &layout, &trace, &Default::default());
        let refused = run_mock(&narrow, &layout, trace.clone(), instances.clone());
        assert!(refused.is_err(), "limbs {limbs}, {banks} banks");
        let layout = evaluate(&full, vis, c).unwrap().layout;
        assert_eq!(
            run_mock(&full, &layout, trace.clone(), instances),
            Ok(()),
            "limbs {limbs}, {banks} banks"
        );
    }
}

/// Tables are put into banks largest first, each into the emptiest: narrower tables fill
/// the room beside the range checks, and the table's rows are its fullest bank's.
#[test]
fn narrower_tables_fill_the_emptiest_bank() {
    let mut model = mul_and_table_model();
    let spec = |func, in_bits| zkinfer_qir::TableSpec {
        func,
        in_scale: 4,
        out_scale: 3,
        in_bits,
    };
    use zkinfer_qir::Func;
    model.tables = vec![
        spec(Func::Exp, 0),
        spec(Func::Erf, 6),
        spec(Func::Reciprocal, 6),
        spec(Func::Rsqrt, 0),
    ];
    let vis = Visibility::default();
    let c = Candidate {
        banks: 2,
        ..candidate((1, 1, 2), vis)
    };
    let layout = evaluate(&model, vis, c).unwrap().layout;
    assert_eq!((layout.banks, layout.limb_bits), (2, 0));
    // Bank 0: the zero row and 2^8 ReLU rows (257), then the 256-row Rsqrt on the tie;
    // bank 1: the zero row, Exp (256), and both 64-row tables.
    assert_eq!(crate::table::banks_of(&model, &layout), vec![1, 1, 1, 0]);
    assert_eq!(crate::table::table_rows(&model, &layout), 513);
    // Dealt round in order instead (Exp, Reciprocal to bank 1; Erf, Rsqrt to bank 0): 577.
}

#[test]
fn field_encoding_round_trips() {
    for v in [
        0i64,
        1,
        -1,
        123_456_789,
        -987_654_321,
        i64::MAX,
        i64::MIN + 1,
    ] {
        assert_eq!(fe_to_i64(&fe(v)), Some(v));
    }
}

#[test]
fn planner_finds_a_layout_and_counts_rows() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let (model, _) = linear_model(&mut rng, 1, 100, 10, true);
    let (best, runner_up) =
        crate::plan_layout(&model, Visibility::default(), None, Default::default()).unwrap();
    assert!(best.rows() <= best.usable_rows);
    assert!(runner_up.is_some_and(|r| r.predicted.prove_s >= best.predicted.prove_s));
    // One table: 1 + 2^8 rows; 4-bit limbs: [0, 2^j) for j ≤ 4, and 16 signs.
    let table = if best.layout.limb_bits == 0 {
        257
    } else {
        1 + 31 + 16
    };
    assert_eq!(best.table_rows, table);
}

/// `--aggregate`: the planner takes the layout that proves and folds fastest. On a model
/// whose 12-bit table sets `k`, proving alone is fastest in limbs (a small `k`), while
/// folding, which costs seconds per commitment, is fastest with the one table (fewer
/// columns and lookups): each objective's plan is the best under its own cost.
#[test]
fn the_aggregate_objective_takes_the_layout_of_fewest_commitments() {
    use crate::layout::{Arguments, Objective};
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let (mut model, _) = linear_model(&mut rng, 1, 100, 10, true);
    model.act_bits = 12;
    let vis = Visibility::default();
    let plan = |objective| {
        let arguments = Arguments {
            objective,
            ..Arguments::default()
        };
        crate::plan_layout(&model, vis, None, arguments).unwrap().0
    };
    let (fast, folded) = (plan(Objective::Prove), plan(Objective::Aggregate));
    let total = |p: &crate::Plan| p.predicted.prove_s + p.terms.aggregation_s();
    assert!(fast.layout.limb_bits > 0, "{:?}", fast.layout);
    assert_eq!(folded.layout.limb_bits, 0, "{:?}", folded.layout);
    assert!(folded.terms.verified < fast.terms.verified);
    assert!(fast.predicted.prove_s < folded.predicted.prove_s);
    assert!(total(&folded) < total(&fast));
}

/// A linear layer followed by an addition of a constant tensor (both carry parameters).
fn params_model(seed: u64) -> (QModel, Vec<i64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut model, input) = linear_model(&mut rng, 2, 7, 3, true);
    model.values.push(v("z", vec![2, 3]));
    model.ops.push(QOp::Add(Add {
        a: ValueId(2),
        b: AddOperand::Constant((0..6).map(|_| rng.gen_range(-9..=9)).collect()),
        output: ValueId(3),
        a_mul: (0..6).map(|_| rng.gen_range(-3..=3)).collect(),
    }));
    model.output = ValueId(3);
    (model, input)
}

#[test]
fn every_visibility_proves() {
    let (model, input) = params_model(21);
    for vis in Visibility::all() {
        assert_eq!(
            mock_with(&model, &input, (4, 2, 2), vis, |_| {}, |_| {}),
            Ok(()),
            "{vis}"
        );
    }
}

#[test]
fn altered_hashes_are_rejected() {
    let (model, input) = params_model(22);
    let all_hashed = Visibility {
        params: ParamsMode::Hashed,
        input: InputMode::Hashed,
        output: OutputMode::Hashed,
    };
    // Public values: weights hash, input hash, output hash.
    for i in 0..3 {
        let altered = mock_with(
            &model,
            &input,
            (2, 2, 1),
            all_hashed,
            |_| {},
            |p| p[i] += fe(1),
        );
        assert!(altered.is_err(), "public value {i} altered");
    }
    // A wrong output that hashes to the stated hash cannot be shown.
    assert!(mock_with(
        &model,
        &input,
        (2, 2, 1),
        all_hashed,
        |t| t.values[3][0] += 1,
        |_| {}
    )
    .is_err());
}

#[test]
fn other_weights_do_not_prove_this_weights_hash() {
    // Weights range-checked against the table's `[0, 2^b)` and in limbs.
    for limbs in [false, true] {
        other_weights_do_not_prove_this_weights_hash_with(limbs);
    }
}

fn other_weights_do_not_prove_this_weights_hash_with(limbs: bool) {
    let (model, input) = params_model(23);
    let vis = Visibility {
        params: ParamsMode::Hashed,
        ..Visibility::default()
    };
    let c = Candidate {
        limbs,
        ..candidate((2, 2, 1), vis)
    };
    let plan = evaluate(&model, vis, c).unwrap();
    assert_eq!(plan.layout.limb_bits > 0, limbs);
    let trace = model.run(&input).unwrap();
    let instances = ModelCircuit::instances(&model, &plan.layout, &trace, &Default::default());
    let prove_with = |other: QModel| {
        let trace = other.run(&input).unwrap();
        let mut inst = ModelCircuit::instances(&other, &plan.layout, &trace, &Default::default());
        inst[0] = instances[0];
        let circuit =
            ModelCircuit::with_trace(Arc::new(other), plan.layout.clone(), Arc::new(trace));
        MockProver::run(plan.layout.k, &circuit, vec![inst])
            .unwrap()
            .verify()
    };
    // One weight changed: its hash differs.
    let mut other = model.clone();
    if let QOp::Linear(l) = &mut other.ops[0] {
        l.weight[3] += 1;
    }
    assert!(prove_with(other).is_err());
    // Two weights changed so that the packed element is the same (w0 − 1, w1 + 2^b):
    // only the range check of the packed weights tells them apart.
    let bits = plan.layout.weight_bits;
    let mut other = model.clone();
    if let QOp::Linear(l) = &mut other.ops[0] {
        l.weight[0] -= 1;
        l.weight[1] += 1 << bits;
    }
    let same = crate::params::Params::of(&other).hash(bits);
    assert_eq!(
        same, instances[0],
        "the packing collides without the range check"
    );
    assert!(prove_with(other).is_err());
    // A changed constant of the addition.
    let mut other = model.clone();
    if let QOp::Add(a) = &mut other.ops[2] {
        a.a_mul[1] += 1;
    }
    assert!(prove_with(other).is_err());
}

/// The advice columns the prover commits to are exactly the cells halo2's own witness
/// collection (here MockProver's) assigns, in every visibility and with linked boundaries
/// (Poseidon and packing lanes included).
#[test]
fn advice_columns_equal_the_layouter_witness() {
    use halo2_proofs::halo2curves::bn256::Fr;
    use halo2_proofs::halo2curves::ff::Field;
    use halo2_proofs::plonk::ConstraintSystem;

    let (model, input) = params_model(23);
    let model = Arc::new(model);
    let trace = Arc::new(model.run(&input).unwrap());
    let linked = [
        (InputMode::Linked, OutputMode::Linked),
        (InputMode::Public, OutputMode::Linked),
    ]
    .map(|(input, output)| Visibility {
        input,
        output,
        ..Visibility::default()
    });
    for vis in Visibility::all().into_iter().chain(linked) {
        let plan = evaluate(&model, vis, candidate((4, 2, 2), vis)).unwrap();
        let circuit = ModelCircuit::with_trace(model.clone(), plan.layout.clone(), trace.clone());
        let instances = ModelCircuit::instances(&model, &plan.layout, &trace, &Default::default());
        let mock = MockProver::run(plan.layout.k, &circuit, vec![instances]).unwrap();
        let columns = crate::witness::advice_columns(&circuit).unwrap();
        // Column handles with indices 0, 1, … to read MockProver's table.
        let mut cs = ConstraintSystem::<Fr>::default();
        let mut assigned = 0;
        for (i, ours) in columns.iter().enumerate() {
            let column = cs.advice_column();
            assert_eq!(column.index(), i);
            for (row, cell) in mock.advice_values(column).iter().enumerate() {
                if let halo2_proofs::dev::AdviceCellValue::Assigned(v) = cell {
                    assert_eq!(v.evaluate(), ours[row], "{vis}: column {i}, row {row}");
                    assigned += usize::from(ours[row] != Fr::ZERO);
                }
            }
        }
        assert!(assigned > 0, "{vis}: no cell compared");
    }
}

/// The cost model: more columns predict more time and memory, and `--max-memory`
/// keeps to layouts predicted to fit or names the smallest prediction.
#[test]
fn cost_model_ranks_layouts_and_respects_a_memory_budget() {
    use crate::cost::Shape;
    let base = Shape {
        k: 13,
        advice: 10,
        fixed: 20,
        instance: 1,
        lookups: 3,
        permutation: 12,
        degree: 4,
    };
    let p = base.terms().predict();
    for wider in [
        Shape { advice: 11, ..base },
        Shape { fixed: 21, ..base },
        Shape { lookups: 4, ..base },
        Shape { k: 14, ..base },
        Shape {
            permutation: 20,
            ..base
        },
    ] {
        let q = wider.terms().predict();
        assert!(q.prove_s > p.prove_s && q.peak_mb > p.peak_mb, "{wider:?}");
    }

    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (model, _) = linear_model(&mut rng, 1, 300, 40, true);
    let vis = Visibility::default();
    let (free, _) = crate::plan_layout(&model, vis, None, Default::default()).unwrap();
    let least = match crate::plan_layout(&model, vis, Some(1.0), Default::default()) {
        Err(crate::CircuitError::OverMemory { budget, least }) => {
            assert_eq!(budget, 1.0);
            least
        }
        other => panic!("a 1 MB budget must fail: {other:?}"),
    };
    assert!(least <= free.predicted.peak_mb);
    let (fit, _) = crate::plan_layout(&model, vis, Some(least), Default::default()).unwrap();
    assert!(fit.predicted.peak_mb <= least);
    assert!(fit.predicted.prove_s >= free.predicted.prove_s);
}

/// x → h = relu(x·W1) → g = h·W2 → y = relu(h + g) → z = y·W3 → out: the residual `h`
/// crosses the cut between the two linear layers.
pub(crate) fn residual_model() -> QModel {
    let n = 6;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut linear = |input: usize, output: usize| {
        QOp::Linear(Linear {
            input: ValueId(input),
            output: ValueId(output),
            in_features: n,
            out_features: n,
            weight: (0..n * n).map(|_| rng.gen_range(-8..8)).collect(),
            weight_scale: 0,
            bias: (0..n).map(|_| rng.gen_range(-20..20)).collect(),
        })
    };
    let rescale = |input: usize, output: usize, act| {
        QOp::Rescale(Rescale {
            input: ValueId(input),
            output: ValueId(output),
            shift: 4,
            act,
        })
    };
    let ops = vec![
        linear(0, 1),
        rescale(1, 2, Activation::Relu),
        linear(2, 3),
        rescale(3, 4, Activation::Identity),
        QOp::Add(Add {
            a: ValueId(2),
            b: AddOperand::Value {
                id: ValueId(4),
                mul: 1,
            },
            output: ValueId(5),
            a_mul: vec![1],
        }),
        rescale(5, 6, Activation::Relu),
        linear(6, 7),
        rescale(7, 8, Activation::Identity),
    ];
    QModel {
        name: "residual".into(),
        values: ["x", "p", "h", "q", "g", "a", "y", "r", "out"]
            .iter()
            .map(|s| v(s, vec![1, n]))
            .collect(),
        input: ValueId(0),
        output: ValueId(8),
        ops,
        act_bits: BITS,
        tables: vec![],
    }
}

/// Each segment of a cut model proves its piece with linked boundaries: the link values
/// of a cut are equal in the two proofs (same salt, same values) and MockProver accepts
/// each. A boundary value changed, or a salt or link value that does not match the
/// witness, fails.
#[test]
fn segments_link_their_boundaries_by_salted_hashes() {
    use crate::model::{link, Salts};
    use crate::segments::plan_cuts;
    let model = residual_model();
    let x: Vec<i64> = vec![100, -37, 120, 8, -128, 127];
    let full = model.run(&x).unwrap();
    let cuts = model.bounded_cuts();
    assert!(cuts.contains(&4), "the residual crosses cut 4: {cuts:?}");
    let segments = plan_cuts(
        &model,
        Visibility::default(),
        &[2, 4],
        None,
        Default::default(),
    )
    .unwrap();
    assert_eq!(segments.len(), 3);
    assert_eq!(segments[1].segment.outputs.len(), 2, "h and g cross cut 4");
    let salt = |i: u64| fe(1_000_003 * i as i64 + 17);
    let mut boundary = vec![x.clone()];
    let mut links: Vec<(Option<_>, Option<_>)> = Vec::new();
    for (i, s) in segments.iter().enumerate() {
        let input = QModel::pack(&boundary);
        let trace = s.model.run(&input).unwrap();
        boundary = model.run_segment(&s.segment, &boundary).unwrap();
        assert_eq!(trace.get(s.model.output), QModel::pack(&boundary));
        let salts = Salts {
            input: if i > 0 { salt(i as u64) } else { fe(0) },
            output: salt(i as u64 + 1),
        };
        let layout = &s.plan.layout;
        let instances = ModelCircuit::instances(&s.model, layout, &trace, &salts);
        let vis = layout.visibility;
        let input_link = (vis.input == InputMode::Linked).then(|| instances[0]);
        let output_link =
            (vis.output == OutputMode::Linked).then(|| instances[instances.len() - 1]);
        if let Some(l) = output_link {
            assert_eq!(l, link(salts.output, trace.get(s.model.output), BITS));
        }
        links.push((input_link, output_link));
        let prove = |trace: Trace, salts: Salts, instances: Vec<_>| {
            let circuit = ModelCircuit::with_trace(
                Arc::new(s.model.clone()),
                layout.clone(),
                Arc::new(trace),
            )
            .salted(salts);
            MockProver::run(layout.k, &circuit, vec![instances])
                .unwrap()
                .verify()
                .is_ok()
        };
        assert!(
            prove(trace.clone(), salts, instances.clone()),
            "segment {i}"
        );
        // A salt other than the one the link value was computed with.
        let other = if output_link.is_some() {
            Salts {
                output: salt(99),
                ..salts
            }
        } else {
            Salts {
                input: salt(99),
                ..salts
            }
        };
        assert!(
            !prove(trace.clone(), other, instances.clone()),
            "segment {i}: salt"
        );
        // A boundary element changed, the link value recomputed for it: the segment's
        // own computation no longer holds (or the range check fails).
        let mut bad = trace.clone();
        bad.values[s.model.input.0][0] += 1;
        let bad_instances = ModelCircuit::instances(&s.model, layout, &bad, &salts);
        assert!(!prove(bad, salts, bad_instances), "segment {i}: input");
        // Two boundary values changed so that their packed element, and so the link
        // value, is the same (v0 − 1, v1 + 2^b): only the range check of the linked input
        // tells them apart.
        if let Some(l) = input_link {
            let mut bad = trace.clone();
            bad.values[s.model.input.0][0] -= 1;
            bad.values[s.model.input.0][1] += 1 << BITS;
            let same = ModelCircuit::instances(&s.model, layout, &bad, &salts);
            assert_eq!(same[0], l, "segment {i}: the packing collides");
            assert!(!prove(bad, salts, same), "segment {i}: colliding input");
        }
    }
    assert_eq!(boundary, vec![full.get(model.output).to_vec()]);
    for i in 0..links.len() - 1 {
        assert_eq!(links[i].1, links[i + 1].0, "cut {i}");
        assert!(links[i].1.is_some());
    }
}

/// MockProver with the linear ops checked by `argument` (two Horner lanes where
/// Freivalds' argument is used), `corrupt` altering the trace and `tamper` one cell.
fn mock_argument(
    model: &QModel,
    input: &[i64],
    argument: crate::LinearArgument,
    corrupt: impl FnOnce(&mut Trace),
    tamper: Option<crate::freivalds::tamper::Tamper>,
) -> Result<(), String> {
    let shape = Shape {
        cols: (2, 2, 2),
        horner_lanes: 2,
        vis: Visibility::default(),
    };
    mock_shaped(model, input, argument, &shape, corrupt, tamper)
}

/// Column counts, Horner lanes and visibility for [`mock_shaped`].
struct Shape {
    cols: (usize, usize, usize),
    horner_lanes: usize,
    vis: Visibility,
}

/// [`mock_argument`] with other column counts, lanes and visibility.
fn mock_shaped(
    model: &QModel,
    input: &[i64],
    argument: crate::LinearArgument,
    shape: &Shape,
    corrupt: impl FnOnce(&mut Trace),
    tamper: Option<crate::freivalds::tamper::Tamper>,
) -> Result<(), String> {
    let vis = shape.vis;
    let mut c = candidate(shape.cols, vis);
    // Products are checked as products unless the weights are hashed (the planner's rule).
    let products = if vis.params == ParamsMode::Hashed {
        Vec::new()
    } else {
        crate::freivalds::products(model)
    };
    c.freivalds = crate::plan::freivalds_ops(model, argument, c.x_cols, c.acc_cols, &products);
    c.products = true;
    c.horner_lanes = if c.freivalds.is_empty() {
        0
    } else {
        shape.horner_lanes
    };
    let plan = evaluate(model, vis, c).map_err(|e| e.to_string())?;
    let mut trace = model.run(input).map_err(|e| format!("interpreter: {e}"))?;
    let instances = ModelCircuit::instances(model, &plan.layout, &trace, &Default::default());
    corrupt(&mut trace);
    crate::freivalds::tamper::AT.with(|t| t.set(tamper));
    let r = run_mock(model, &plan.layout, trace, instances);
    crate::freivalds::tamper::AT.with(|t| t.set(None));
    r
}

/// Whether the dot products and Freivalds' argument accept `model`'s trace on `input`,
/// altered by `corrupt(at)` where `at` is given.
fn verdicts<C: FnOnce(&mut Trace)>(
    model: &QModel,
    input: &[i64],
    at: Option<usize>,
    corrupt: impl Fn(usize) -> C,
) -> (bool, bool) {
    let run = |argument| {
        mock_argument(
            model,
            input,
            argument,
            |t| {
                if let Some(i) = at {
                    corrupt(i)(t)
                }
            },
            None,
        )
        .is_ok()
    };
    (
        run(crate::LinearArgument::Dot),
        run(crate::LinearArgument::Freivalds),
    )
}

/// Adds `2^6` to accumulator `i` of the linear model and 1 to its rescaled output (shift
/// 6, no activation), so that only the linear layer's check can fail.
fn off_by_one_accumulator(i: usize) -> impl FnOnce(&mut Trace) {
    move |t: &mut Trace| {
        t.values[1][i] += 64;
        t.values[2][i] += 1;
    }
}

#[test]
fn freivalds_accepts_the_trace_and_rejects_wrong_cells() {
    use crate::freivalds::tamper::Tamper;
    use crate::LinearArgument::Freivalds;
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let (model, input) = linear_model(&mut rng, 5, 7, 3, false);
    let (m, n) = (7, 3);
    assert_eq!(
        crate::plan::freivalds_ops(&model, Freivalds, 2, 2, &[]),
        vec![0],
        "the layer is checked by the argument"
    );
    assert_eq!(
        mock_argument(&model, &input, Freivalds, |_| {}, None),
        Ok(())
    );
    // One accumulator entry off by one (its rescale consistent with it).
    for i in [0, 7, 14] {
        let r = mock_argument(&model, &input, Freivalds, off_by_one_accumulator(i), None);
        assert!(r.is_err(), "accumulator {i} off by one must fail");
    }
    // A wrong operand cell (the copy of an input element, sequence 1 + j), and a wrong
    // copy of an output in its neuron's sequence (1 + m + n).
    for (seq, i) in [
        (1, 0),
        (1 + m - 1, 4),
        (1 + m, 2),
        (1 + m + n - 1, 0),
        (0, 3),
    ] {
        let r = mock_argument(
            &model,
            &input,
            Freivalds,
            |_| {},
            Some(Tamper::Value { seq, i }),
        );
        assert!(
            r.is_err(),
            "a wrong first-phase cell ({seq}, {i}) must fail"
        );
    }
    // A wrong challenge-derived cell.
    for (seq, i) in [(0, 0), (2, 3), (1 + m, 4), (1 + m + n - 1, 2)] {
        let r = mock_argument(
            &model,
            &input,
            Freivalds,
            |_| {},
            Some(Tamper::Combination { seq, i }),
        );
        assert!(r.is_err(), "a wrong combination ({seq}, {i}) must fail");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    /// Both arguments accept and reject the same traces: the interpreter's, and one with
    /// an accumulator off by one.
    #[test]
    fn both_linear_arguments_accept_and_reject_alike(
        seed in any::<u64>(),
        rows in 2usize..6,
        m in 1usize..9,
        n in 1usize..5,
        corrupt in proptest::option::of(0usize..100),
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (model, input) = linear_model(&mut rng, rows, m, n, false);
        let at = corrupt.map(|c| c % (rows * n));
        let (dot, freivalds) = verdicts(&model, &input, at, off_by_one_accumulator);
        prop_assert_eq!(dot, corrupt.is_none());
        prop_assert_eq!(freivalds, dot);
    }
}

/// Only the Horner sums and the combined row's blocks are second-phase columns, and the
/// one challenge comes after the first phase, with fixed or hashed weights.
#[test]
fn freivalds_commits_every_operand_before_its_challenge() {
    use halo2_proofs::plonk::{Circuit, ConstraintSystem};
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (model, _) = linear_model(&mut rng, 4, 5, 3, false);
    for params in [ParamsMode::Fixed, ParamsMode::Hashed] {
        let vis = Visibility {
            params,
            ..Visibility::default()
        };
        let mut c = candidate((2, 2, 2), vis);
        c.freivalds = vec![0];
        c.horner_lanes = 3;
        let layout = evaluate(&model, vis, c).unwrap().layout;
        let mut cs = ConstraintSystem::default();
        let config = ModelCircuit::configure_with_params(&mut cs, layout);
        let f = config.freivalds.unwrap();
        assert_eq!(cs.challenge_phase(), vec![0], "{vis}");
        let mut second: Vec<usize> = f
            .lanes
            .iter()
            .map(|l| l.h.index())
            .chain(f.x.iter().chain(&f.acc).map(|c| c.index()))
            .collect();
        second.sort();
        let phases = cs.advice_column_phase();
        let found: Vec<usize> = (0..phases.len()).filter(|&i| phases[i] == 1).collect();
        assert_eq!(found, second, "{vis}: second-phase columns");
        assert_eq!(found.len(), 3 + 2 + 2);
    }
}

/// A layer whose bias differs by row is not one the argument applies to: the planner
/// leaves it out, a layout naming it fails its check, and synthesis refuses it.
#[test]
fn freivalds_refuses_a_bias_that_differs_by_row() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let (mut model, input) = linear_model(&mut rng, 3, 4, 2, false);
    if let QOp::Linear(l) = &mut model.ops[0] {
        l.bias = (0..6).map(|i| i * 3 - 7).collect();
    }
    let vis = Visibility::default();
    assert!(
        crate::plan::freivalds_ops(&model, crate::LinearArgument::Freivalds, 2, 2, &[]).is_empty()
    );
    let mut c = candidate((2, 2, 2), vis);
    c.freivalds = vec![0];
    c.horner_lanes = 2;
    let layout = evaluate(&model, vis, c).unwrap().layout;
    assert!(layout.check(&model).is_err());
    let trace = model.run(&input).unwrap();
    let instances = ModelCircuit::instances(&model, &layout, &trace, &Default::default());
    let r = run_mock(&model, &layout, trace, instances);
    assert!(r.is_err(), "{r:?}");
}

/// Padding (inputs beyond a block's columns, neurons beyond the last block, idle lanes in
/// a round) and hashed weights: honest traces pass; an accumulator off by one on the
/// first, a middle and the last row fails, and so does a wrong combination of the ones.
#[test]
fn freivalds_with_padding_and_hashed_weights() {
    use crate::freivalds::tamper::Tamper;
    use crate::LinearArgument::Freivalds;
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let (rows, m, n) = (5, 6, 3);
    let (model, input) = linear_model(&mut rng, rows, m, n, false);
    for params in [ParamsMode::Fixed, ParamsMode::Hashed] {
        let shape = Shape {
            cols: (4, 2, 2),
            horner_lanes: 16,
            vis: Visibility {
                params,
                ..Visibility::default()
            },
        };
        let vis = shape.vis;
        let run = |corrupt: Option<usize>, tamper| {
            mock_shaped(
                &model,
                &input,
                Freivalds,
                &shape,
                |t| {
                    if let Some(i) = corrupt {
                        off_by_one_accumulator(i)(t)
                    }
                },
                tamper,
            )
        };
        assert_eq!(run(None, None), Ok(()), "{vis}");
        for i in [0, (rows / 2) * n + 1, rows * n - 1] {
            assert!(run(Some(i), None).is_err(), "{vis}: accumulator {i}");
        }
        let ones = Some(Tamper::Combination {
            seq: 0,
            i: rows - 1,
        });
        assert!(run(None, ones).is_err(), "{vis}: the ones' combination");
    }
    // Other weights than the hashed ones: the bias of the model the instances are of
    // differs from the witness's.
    let vis = Visibility {
        params: ParamsMode::Hashed,
        ..Visibility::default()
    };
    let mut c = candidate((4, 2, 2), vis);
    c.freivalds = vec![0];
    c.horner_lanes = 16;
    let layout = evaluate(&model, vis, c).unwrap().layout;
    let trace = model.run(&input).unwrap();
    let instances = ModelCircuit::instances(&model, &layout, &trace, &Default::default());
    let mut other = model.clone();
    if let QOp::Linear(l) = &mut other.ops[0] {
        l.bias[1] += 1;
    }
    let other_trace = other.run(&input).unwrap();
    let r = run_mock(&other, &layout, other_trace, instances);
    assert!(r.is_err(), "another bias under this weights hash: {r:?}");
}

/// `y = (A_b·B_b + bias) >> 5` for `batches` pairs of `R × K` and `K × N` matrices read
/// from one input, lowered as the importer lowers a product of two activations: the
/// operand pairs gathered, multiplied (`Mul`), and summed by a linear op of ones.
fn product_model(
    rng: &mut ChaCha8Rng,
    (batches, r, k, n): (usize, usize, usize, usize),
    bias: i64,
) -> (QModel, Vec<i64>) {
    let rows = batches * r * n;
    let a_at = |b: usize, i: usize, kk: usize| b * r * k + i * k + kk;
    let b_at = |b: usize, kk: usize, j: usize| batches * r * k + b * k * n + kk * n + j;
    let mut lhs = Vec::with_capacity(rows * k);
    let mut rhs = Vec::with_capacity(rows * k);
    for b in 0..batches {
        for i in 0..r {
            for j in 0..n {
                for kk in 0..k {
                    lhs.push(Some(a_at(b, i, kk)));
                    rhs.push(Some(b_at(b, kk, j)));
                }
            }
        }
    }
    let len = batches * (r * k + k * n);
    let model = QModel {
        name: "product".into(),
        values: vec![
            v("x", vec![len]),
            v("lhs", vec![rows, k]),
            v("rhs", vec![rows, k]),
            v("products", vec![rows, k]),
            v("acc", vec![rows, 1]),
            v("y", vec![rows, 1]),
        ],
        input: ValueId(0),
        output: ValueId(5),
        ops: vec![
            QOp::Rearrange(Rearrange {
                input: ValueId(0),
                output: ValueId(1),
                index: lhs,
            }),
            QOp::Rearrange(Rearrange {
                input: ValueId(0),
                output: ValueId(2),
                index: rhs,
            }),
            QOp::Mul(zkinfer_qir::Mul {
                a: ValueId(1),
                b: ValueId(2),
                output: ValueId(3),
            }),
            QOp::Linear(Linear {
                input: ValueId(3),
                output: ValueId(4),
                in_features: k,
                out_features: 1,
                weight: vec![1; k],
                weight_scale: 0,
                bias: vec![bias],
            }),
            // |acc| ≤ K·15² + |bias| < 2^11 for K ≤ 8: shift 5 keeps y inside 8 bits.
            QOp::Rescale(Rescale {
                input: ValueId(4),
                output: ValueId(5),
                shift: 5,
                act: Activation::Identity,
            }),
        ],
        act_bits: BITS,
        tables: vec![],
    };
    let input = (0..len).map(|_| rng.gen_range(-15..=15)).collect();
    (model, input)
}

/// Adds `2^5` to sum `p` of the product model and 1 to its rescaled output.
fn off_by_one_sum(p: usize) -> impl FnOnce(&mut Trace) {
    move |t: &mut Trace| {
        t.values[4][p] += 32;
        t.values[5][p] += 1;
    }
}

#[test]
fn products_are_found_where_the_pairs_are_a_matrix_product() {
    use crate::freivalds::{products, Product};
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    let (model, input) = product_model(&mut rng, (2, 3, 4, 5), 7);
    let expected = Product {
        mul: 2,
        batches: 2,
        r: 3,
        k: 4,
        n: 5,
    };
    assert_eq!(
        products(&model),
        vec![None, None, None, Some(expected), None]
    );
    // Two elements of A swapped between the rows of one row of C: those rows no longer
    // share their A row, and the coarsest product left is every sum its own batch (a
    // 1 × K row times a K × 1 column), which the check proves as well.
    let mut swapped = model.clone();
    if let QOp::Rearrange(r) = &mut swapped.ops[0] {
        r.index.swap(0, 4 * 4 + 1);
    }
    let single = Product {
        batches: 30,
        r: 1,
        n: 1,
        ..expected
    };
    assert_eq!(products(&swapped)[3], Some(single));
    let forced = crate::LinearArgument::Freivalds;
    assert_eq!(
        mock_argument(&swapped, &input, forced, |_| {}, None),
        Ok(())
    );
    assert!(mock_argument(&swapped, &input, forced, off_by_one_sum(4), None).is_err());
    // Which auto leaves to the dot products: it saves no cells.
    let ops = crate::plan::freivalds_ops(
        &swapped,
        crate::LinearArgument::Auto,
        2,
        2,
        &products(&swapped),
    );
    assert!(ops.is_empty(), "{ops:?}");
    // B's columns swapped in one batch: the first batch's rows are one batch each.
    let mut shuffled = model.clone();
    if let QOp::Rearrange(r) = &mut shuffled.ops[1] {
        r.index.swap(0, 4 * 4 + 1);
    }
    let p = products(&shuffled)[3].unwrap();
    assert_eq!((p.batches, p.r, p.n), (6, 1, 5));
    assert_eq!(
        mock_argument(&shuffled, &input, forced, |_| {}, None),
        Ok(())
    );
    // A weight other than one.
    let mut weighted = model.clone();
    if let QOp::Linear(l) = &mut weighted.ops[3] {
        l.weight[2] = 2;
    }
    assert_eq!(products(&weighted)[3], None);
    // The multiplies read by another op too: they must be laid out, so no product.
    let mut read = model.clone();
    read.values.push(v("again", vec![30, 4]));
    read.ops.push(QOp::Reshape(Reshape {
        input: ValueId(3),
        output: ValueId(6),
    }));
    assert_eq!(products(&read)[3], None);
}

/// A product of two activations checked as a matrix product: the planner takes it (its
/// multiplies' lane rows gone, one inner-product lane), honest traces pass under both
/// arguments, and a sum off by one, a wrong operand, output, constant or power cell, and
/// a wrong challenge-derived cell each fail.
#[test]
fn product_check_accepts_the_trace_and_rejects_wrong_cells() {
    use crate::freivalds::tamper::Tamper;
    use crate::LinearArgument::{Dot, Freivalds};
    let mut rng = ChaCha8Rng::seed_from_u64(32);
    let (batches, r, k, n) = (2, 3, 4, 5);
    let (model, input) = product_model(&mut rng, (batches, r, k, n), 16);
    let rows = batches * r * n;
    let vis = Visibility::default();
    let mut c = candidate((2, 2, 2), vis);
    c.freivalds = crate::plan::freivalds_ops(
        &model,
        crate::LinearArgument::Auto,
        2,
        2,
        &crate::freivalds::products(&model),
    );
    assert_eq!(c.freivalds, vec![3], "auto takes the product");
    c.products = true;
    c.horner_lanes = 2;
    let plan = evaluate(&model, vis, c).unwrap();
    assert_eq!(plan.layout.product_lanes, 1);
    assert_eq!(plan.product_rows, batches * (r + k + 1));
    assert_eq!(
        plan.elementwise_rows,
        rows.div_ceil(2),
        "only the rescale's rows"
    );
    assert_eq!(plan.linear_rows, 1, "no blocks");
    plan.layout.check(&model).unwrap();

    let run = |argument, corrupt: Option<usize>, tamper| {
        mock_argument(
            &model,
            &input,
            argument,
            |t| {
                if let Some(p) = corrupt {
                    off_by_one_sum(p)(t)
                }
            },
            tamper,
        )
    };
    assert_eq!(run(Freivalds, None, None), Ok(()));
    assert_eq!(run(Dot, None, None), Ok(()));
    for p in [0, n + 2, rows / 2, rows - 1] {
        assert!(run(Freivalds, Some(p), None).is_err(), "sum {p} off by one");
        assert!(run(Dot, Some(p), None).is_err(), "sum {p} off by one (dot)");
    }
    // Sequences: by α the ones, the powers, A's columns (padded to the 2 lanes); by β
    // the bias, B's rows, C's rows.
    let alpha = (2 + batches * k).next_multiple_of(2);
    let (b_rows, c_rows) = (alpha + 1, alpha + 1 + batches * k);
    for (seq, i) in [
        (0, 1),
        (1, 0),
        (1, 2),
        (2, 0),
        (2 + batches * k - 1, r - 1),
        (alpha, 3),
        (b_rows, 0),
        (b_rows + batches * k - 1, n - 1),
        (c_rows, 0),
        (c_rows + batches * r - 1, 2),
    ] {
        let r = run(Freivalds, None, Some(Tamper::Value { seq, i }));
        assert!(
            r.is_err(),
            "a wrong first-phase cell ({seq}, {i}) must fail"
        );
    }
    for (seq, i) in [
        (0, r - 1),
        (1, 1),
        (2, r - 1),
        (alpha, n - 1),
        (b_rows + 3, n - 1),
        (c_rows + 1, 0),
        (c_rows + 2, n - 1),
    ] {
        let r = run(Freivalds, None, Some(Tamper::Combination { seq, i }));
        assert!(r.is_err(), "a wrong combination ({seq}, {i}) must fail");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]
    /// Both arguments accept and reject the same traces of a product of two activations.
    #[test]
    fn both_arguments_accept_and_reject_products_alike(
        seed in any::<u64>(),
        batches in 1usize..3,
        r in 1usize..4,
        k in 1usize..6,
        n in 1usize..4,
        corrupt in proptest::option::of(0usize..100),
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (model, input) = product_model(&mut rng, (batches, r, k, n), -9);
        let at = corrupt.map(|c| c % (batches * r * n));
        let (dot, freivalds) = verdicts(&model, &input, at, off_by_one_sum);
        prop_assert_eq!(dot, corrupt.is_none());
        prop_assert_eq!(freivalds, dot);
    }
}

/// With products, a second challenge follows the first phase, and the inner-product
/// lane's three columns are second-phase.
#[test]
fn products_commit_every_operand_before_their_challenges() {
    use halo2_proofs::plonk::{Circuit, ConstraintSystem};
    let mut rng = ChaCha8Rng::seed_from_u64(33);
    let (model, _) = product_model(&mut rng, (1, 2, 3, 2), 0);
    let vis = Visibility::default();
    let layout = layout_of_products(&model);
    assert_eq!(layout.product_lanes, 1);
    let mut cs = ConstraintSystem::default();
    let config = ModelCircuit::configure_with_params(&mut cs, layout.clone());
    let f = config.freivalds.unwrap();
    let p = f.product.as_ref().unwrap();
    assert_eq!(cs.challenge_phase(), vec![0, 0]);
    let mut second: Vec<usize> = f
        .lanes
        .iter()
        .map(|l| l.h.index())
        .chain(f.x.iter().chain(&f.acc).map(|c| c.index()))
        .chain([p.a, p.b, p.s].map(|c| c.index()))
        .collect();
    second.sort();
    let phases = cs.advice_column_phase();
    let found: Vec<usize> = (0..phases.len()).filter(|&i| phases[i] == 1).collect();
    assert_eq!(found, second);
    // With hashed weights the sums' ones and bias are hashed parameters: a layout that
    // checks them as products is out of bounds.
    let hashed = crate::Layout {
        visibility: Visibility {
            params: ParamsMode::Hashed,
            ..vis
        },
        hash_lanes: 1,
        pack_lanes: 1,
        weight_bits: 8,
        ..layout
    };
    assert!(hashed.validate().is_err());
    assert!(crate::Layout {
        product_lanes: 0,
        ..hashed
    }
    .validate()
    .is_ok());
}

/// The planned layout of the product model with its product checked as one.
fn layout_of_products(model: &QModel) -> crate::Layout {
    let vis = Visibility::default();
    let mut c = candidate((2, 2, 2), vis);
    c.freivalds = vec![3];
    c.products = true;
    c.horner_lanes = 3;
    evaluate(model, vis, c).unwrap().layout
}

/// A segment may hold a product of two activations: cut before and after it (a rescale
/// in front, an addition behind), the middle segment checks it as a product under its
/// linked boundaries, MockProver accepts each segment, and a sum off by one in the
/// middle one fails.
#[test]
fn a_segment_checks_its_product_of_two_activations() {
    use crate::model::Salts;
    use crate::segments::plan_cuts;
    let mut rng = ChaCha8Rng::seed_from_u64(34);
    let (mut model, x) = product_model(&mut rng, (2, 3, 4, 5), 16);
    // x → x0 (a rescale by 1) → the product → y → z = y + c.
    let len = x.len();
    model.values.push(v("x0", vec![len]));
    model.values.push(v("z", vec![30, 1]));
    for op in &mut model.ops {
        if let QOp::Rearrange(r) = op {
            r.input = ValueId(6);
        }
    }
    model.ops.insert(
        0,
        QOp::Rescale(Rescale {
            input: ValueId(0),
            output: ValueId(6),
            shift: 0,
            act: Activation::Identity,
        }),
    );
    model.ops.push(QOp::Add(Add {
        a: ValueId(5),
        b: AddOperand::Constant(vec![3; 30]),
        output: ValueId(7),
        a_mul: vec![1],
    }));
    model.output = ValueId(7);
    model.validate().unwrap();
    assert_eq!(model.bounded_cuts(), vec![1, 6]);
    let arguments = crate::LinearArgument::Freivalds.into();
    let segments = plan_cuts(&model, Visibility::default(), &[1, 6], None, arguments).unwrap();
    let layouts: Vec<usize> = segments
        .iter()
        .map(|s| s.plan.layout.product_lanes)
        .collect();
    assert_eq!(layouts, vec![0, 1, 0]);
    let mut boundary = vec![x];
    for (i, s) in segments.iter().enumerate() {
        let input = QModel::pack(&boundary);
        let trace = s.model.run(&input).unwrap();
        boundary = model.run_segment(&s.segment, &boundary).unwrap();
        let salts = Salts {
            input: fe(i as i64 + 5),
            output: fe(i as i64 + 6),
        };
        let layout = &s.plan.layout;
        // The instances (boundary links) of the trace proven: only the segment's own
        // checks can fail.
        let prove = |trace: Trace| {
            let instances = ModelCircuit::instances(&s.model, layout, &trace, &salts);
            let circuit = ModelCircuit::with_trace(
                Arc::new(s.model.clone()),
                layout.clone(),
                Arc::new(trace),
            )
            .salted(salts);
            MockProver::run(layout.k, &circuit, vec![instances])
                .unwrap()
                .verify()
                .is_ok()
        };
        assert!(prove(trace.clone()), "segment {i}");
        if layout.product_lanes > 0 {
            let id = |name: &str| s.model.values.iter().position(|v| v.name == name).unwrap();
            let (acc, y) = (id("acc"), id("y"));
            let mut bad = trace.clone();
            bad.values[acc][7] += 32;
            bad.values[y][7] += 1;
            assert!(!prove(bad), "segment {i}: a sum off by one");
        }
    }
}

/// A layout without products serializes as layouts did before them (no `product_lanes`
/// field), so the keys made before them keep their model ids; one with products names
/// them and reads back the same.
#[test]
fn product_lanes_are_written_only_when_used() {
    let plain = crate::Layout::default();
    let text = serde_json::to_string(&plain).unwrap();
    assert!(!text.contains("product_lanes"), "{text}");
    let with = crate::Layout {
        horner_lanes: 2,
        freivalds: vec![3],
        product_lanes: 1,
        ..plain
    };
    let text = serde_json::to_string(&with).unwrap();
    assert!(text.contains("\"product_lanes\":1"), "{text}");
    assert_eq!(serde_json::from_str::<crate::Layout>(&text).unwrap(), with);
}
