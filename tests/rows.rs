//! Planned rows are synthesized rows: on the shared models, each section of the circuit
//! (linear, element-wise lanes, Poseidon lanes, weight-packing lanes) is written by
//! synthesis on exactly as many rows as the planner counted for it, with every
//! visibility on the models whose ops differ most and the two ends on all of them, with
//! the linear layers checked by dot products and by Freivalds' argument.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use zkinfer_circuits::halo2_proofs::plonk::{Advice, Circuit, Column, ConstraintSystem};
use zkinfer_circuits::linear::WeightColumn;
use zkinfer_circuits::witness::advice_rows_used;
use zkinfer_circuits::{
    plan_layout, InputMode, LinearArgument, ModelCircuit, OutputMode, ParamsMode, Visibility,
};
use zkinfer_tests::compile_shared;

/// `name` at the default settings.
fn check(name: &str, visibilities: &[Visibility], arguments: &[LinearArgument]) {
    let (model, input) = compile_shared(name);
    let trace = Arc::new(model.run(&input).unwrap());
    let model = Arc::new(model);
    for (&vis, argument) in visibilities
        .iter()
        .flat_map(|v| arguments.iter().map(move |a| (v, *a)))
    {
        let (plan, _) = plan_layout(&model, vis, None, argument.into()).unwrap();
        let circuit = ModelCircuit::with_trace(model.clone(), plan.layout.clone(), trace.clone());
        let used = advice_rows_used(&circuit).unwrap();
        let mut cs = ConstraintSystem::default();
        let config = ModelCircuit::configure_with_params(&mut cs, plan.layout.clone());
        let rows =
            |cols: Vec<Column<Advice>>| cols.iter().map(|c| used[c.index()]).max().unwrap_or(0);
        let l = &config.linear;
        let mut linear: Vec<_> = l.x.iter().chain(&l.acc).copied().collect();
        linear.extend(l.w.iter().flatten().filter_map(|w| match w {
            WeightColumn::Advice(c) => Some(*c),
            WeightColumn::Fixed(_) => None,
        }));
        let lanes = config
            .lanes
            .iter()
            .flat_map(|x| {
                let limbs = x.limbs.iter().flat_map(|l| [l.rem_hi, l.hi, l.lo, l.sign]);
                [x.in0, x.in1, x.aux, x.out].into_iter().chain(limbs)
            })
            .collect();
        let hash = config
            .hash
            .iter()
            .flat_map(|h| h.s.iter().chain(&h.q).copied())
            .collect();
        let pack = config
            .pack
            .iter()
            .flat_map(|p| [p.w, p.acc].into_iter().chain(p.hi))
            .collect();
        let (mut horner, mut inner) = (Vec::new(), Vec::new());
        if let Some(f) = &config.freivalds {
            linear.extend(f.x.iter().chain(&f.acc));
            horner.extend(f.lanes.iter().flat_map(|l| [l.v, l.h]));
            inner.extend(f.product.iter().flat_map(|p| [p.a, p.b, p.s]));
        }
        let at = format!("{name}, {vis}, {argument}");
        assert_eq!(rows(linear), plan.linear_rows, "{at}: linear section");
        assert_eq!(rows(horner), plan.horner_rows, "{at}: Horner lanes");
        assert_eq!(rows(inner), plan.product_rows, "{at}: inner-product lane");
        assert_eq!(
            rows(lanes),
            plan.elementwise_rows,
            "{at}: element-wise lanes"
        );
        assert_eq!(rows(hash), plan.hash_rows, "{at}: Poseidon lanes");
        assert_eq!(rows(pack), plan.pack_rows, "{at}: weight-packing lanes");
    }
}

fn ends() -> Vec<Visibility> {
    let all_hashed = Visibility {
        params: ParamsMode::Hashed,
        input: InputMode::Hashed,
        output: OutputMode::Hashed,
    };
    vec![Visibility::default(), all_hashed]
}

#[test]
fn planned_rows_are_synthesized_rows_with_every_visibility() {
    for name in ["mlp_tiny", "lenet5", "attn_block"] {
        check(name, &Visibility::all(), &[LinearArgument::Dot]);
        check(name, &ends(), &[LinearArgument::Freivalds]);
    }
}

#[test]
fn planned_rows_are_synthesized_rows_on_every_shared_model() {
    for name in ["mlp_mnist", "mlp_wide", "cnn_cifar"] {
        check(
            name,
            &ends(),
            &[LinearArgument::Dot, LinearArgument::Freivalds],
        );
    }
}
