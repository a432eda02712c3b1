//! The committed model (issue 4): every visibility combination proves and verifies, and
//! the ways a prover could try to cheat the statement are rejected. The test command runs
//! every combination on `mlp_tiny` and, on `mlp_mnist` and `lenet5`, three combinations
//! that between them take every value of each flag; the full matrix on those two (24 keys
//! and proofs, ~7 minutes on two cores) is `--ignored` here and timed by
//! scripts/bench-visibility.sh.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use zkinfer_circuits::params::Params;
use zkinfer_circuits::poseidon::{hash, Domain};
use zkinfer_circuits::{fe, InputMode, OutputMode, ParamsMode, Visibility};
use zkinfer_qir::{dequantize, QModel, QOp};
use zkinfer_tests::{compile_shared, prove_model, Proven};
use zkinfer_verifier::{fr_from_hex, fr_to_hex, verify, Verdict};

fn public_of(p: &Proven) -> zkinfer_verifier::Public {
    match verify(&p.vk, &p.proof) {
        Verdict::Valid { public } => public,
        Verdict::Invalid { reason } => panic!(
            "{}: valid proof rejected: {reason}",
            p.info.layout.visibility
        ),
    }
}

fn is_invalid(p: &Proven, proof: &zkinfer_verifier::ProofFile) -> bool {
    matches!(verify(&p.vk, proof), Verdict::Invalid { .. })
}

/// Adds 1 to public value `at`; the file's labels stay consistent with it, so only the
/// proof can reject it.
fn bump(p: &Proven, at: usize) -> zkinfer_verifier::ProofFile {
    let mut f = p.proof.clone();
    let x = fr_from_hex(&f.instances[at]).unwrap() + fe(1);
    f.instances[at] = fr_to_hex(&x);
    f
}

/// Three combinations in which every `--params`, `--input` and `--output` value occurs.
fn each_flag_value() -> Vec<Visibility> {
    use {InputMode as I, OutputMode as O, ParamsMode as P};
    let v = |params, input, output| Visibility {
        params,
        input,
        output,
    };
    vec![
        v(P::Fixed, I::Public, O::Public),
        v(P::Hashed, I::Private, O::Hashed),
        v(P::Hashed, I::Hashed, O::Public),
    ]
}

/// Proves `name` with each of `visibilities`; checks what each statement reveals against
/// the native computation, and that altering any public value is rejected. One model for
/// all (compiled at the default settings, for fixed weights, as the statements share its
/// weights hash).
fn every_visibility(name: &str, visibilities: &[Visibility]) {
    let (model, input) = compile_shared(name);
    let trace = model.run(&input).unwrap();
    let values = |id| trace.get(id).iter().map(|&v| fe(v)).collect::<Vec<_>>();
    let out_scale = model.value(model.output).scale;
    let output: Vec<f64> = trace
        .get(model.output)
        .iter()
        .map(|&v| dequantize(v, out_scale))
        .collect();
    let mut digests = Vec::new();
    for &vis in visibilities {
        let p = prove_model(model.clone(), input.clone(), vis);
        let public = public_of(&p);
        match vis.params {
            ParamsMode::Fixed => assert_eq!(public.params_hash, None),
            ParamsMode::Hashed => {
                let h = Params::of(&model).hash(p.info.layout.weight_bits);
                assert_eq!(public.params_hash, Some(fr_to_hex(&h)), "{vis}");
                assert!(p.vk.model_id().ends_with(&fr_to_hex(&h)));
                digests.push(p.vk.model_id());
            }
        }
        match vis.input {
            InputMode::Public => assert_eq!(public.input.as_ref().map(Vec::len), Some(input.len())),
            InputMode::Private => assert!(public.input.is_none() && public.input_hash.is_none()),
            InputMode::Hashed => assert_eq!(
                public.input_hash,
                Some(fr_to_hex(&hash(Domain::Input, &values(model.input))))
            ),
            InputMode::Linked => unreachable!("Visibility::all() has no segment boundary"),
        }
        match vis.output {
            OutputMode::Public => assert_eq!(public.output.as_ref(), Some(&output)),
            OutputMode::Hashed => {
                assert_eq!(
                    public.output_hash,
                    Some(fr_to_hex(&hash(Domain::Output, &values(model.output))))
                );
                assert!(p.proof.output.is_none());
            }
            OutputMode::Linked => unreachable!("Visibility::all() has no segment boundary"),
        }
        // The first and the last public value: the weights hash or the input, and the
        // output or its hash.
        let n = p.proof.instances.len();
        for at in [0, n - 1] {
            let mut f = bump(&p, at);
            if let (OutputMode::Public, true) = (vis.output, at == n - 1) {
                let stated = f.output.as_mut().unwrap();
                let m = stated.values.len();
                stated.values[m - 1] += 2f64.powi(-stated.scale);
            }
            if vis.params == ParamsMode::Hashed && at == 0 {
                // Relabel the key too, as a cheater who controls it would.
                let mut key = p.vk.clone();
                key.info.params_hash = Some(f.instances[0].clone());
                f.model_id = key.model_id();
                assert!(
                    matches!(verify(&key, &f), Verdict::Invalid { .. }),
                    "{vis}: weights hash"
                );
            } else {
                assert!(is_invalid(&p, &f), "{vis}: public value {at} altered");
            }
        }
    }
    // The weights hash and the input do not change the key: with hashed weights every
    // combination's id ends in the same weights hash.
    assert!(digests
        .windows(2)
        .all(|w| w[0].split(':').nth(1) == w[1].split(':').nth(1)));
}

#[test]
fn mlp_tiny_proves_with_every_visibility() {
    every_visibility("mlp_tiny", &Visibility::all());
}

#[test]
fn mlp_mnist_proves_with_each_flag_value() {
    every_visibility("mlp_mnist", &each_flag_value());
}

#[test]
fn lenet5_proves_with_each_flag_value() {
    every_visibility("lenet5", &each_flag_value());
}

#[test]
#[ignore = "the full matrix on the larger models: ~7 minutes on two cores"]
fn mlp_mnist_proves_with_every_visibility() {
    every_visibility("mlp_mnist", &Visibility::all());
}

#[test]
#[ignore = "the full matrix on the larger models: ~7 minutes on two cores"]
fn lenet5_proves_with_every_visibility() {
    every_visibility("lenet5", &Visibility::all());
}

/// `model` with the hidden units of its first two linear layers permuted: the same
/// function (so the same quantization schedule and shape), other weights.
fn permuted(model: &QModel) -> QModel {
    let mut other = model.clone();
    let linear: Vec<usize> = (0..other.ops.len())
        .filter(|&i| matches!(other.ops[i], QOp::Linear(_)))
        .collect();
    let (a, b) = (linear[0], linear[1]);
    let QOp::Linear(first) = &other.ops[a] else {
        unreachable!()
    };
    let (h, m) = (first.out_features, first.in_features);
    let perm: Vec<usize> = (0..h).map(|i| (i + 1) % h).collect();
    let mut first = first.clone();
    let (w, bias) = (first.weight.clone(), first.bias.clone());
    for (to, &from) in perm.iter().enumerate() {
        first.weight[to * m..(to + 1) * m].copy_from_slice(&w[from * m..(from + 1) * m]);
        first.bias[to] = bias[from];
    }
    other.ops[a] = QOp::Linear(first);
    let QOp::Linear(second) = &mut other.ops[b] else {
        unreachable!()
    };
    assert_eq!(second.in_features, h);
    let w = second.weight.clone();
    for n in 0..second.out_features {
        for (to, &from) in perm.iter().enumerate() {
            second.weight[n * h + to] = w[n * h + from];
        }
    }
    other
}

fn hashed_weights() -> Visibility {
    Visibility {
        params: ParamsMode::Hashed,
        ..Visibility::default()
    }
}

#[test]
fn hashed_weights_share_the_key_but_not_the_model_id() {
    let (model, input) = compile_shared("mlp_tiny");
    let other = permuted(&model);
    assert_eq!(
        other.run(&input).unwrap().get(other.output),
        model.run(&input).unwrap().get(model.output)
    );
    let a = prove_model(model, input.clone(), hashed_weights());
    let b = prove_model(other, input, hashed_weights());
    let digest = |p: &Proven| p.vk.model_id().split(':').next().unwrap().to_string();
    assert_eq!(
        digest(&a),
        digest(&b),
        "one key serves every model of the shape"
    );
    assert_ne!(a.vk.model_id(), b.vk.model_id());
    // A's proof under B's key: rejected by the weights hash...
    assert!(is_invalid(&b, &a.proof));
    // ...and, relabelled as B's, by the proof.
    let mut f = a.proof.clone();
    f.model_id = b.vk.model_id();
    f.instances[0] = b.info.params_hash.clone().unwrap();
    assert!(is_invalid(&b, &f));
    assert!(is_invalid(&a, &b.proof));
}

#[test]
fn fixed_weights_proof_fails_under_another_models_key() {
    let (model, input) = compile_shared("mlp_tiny");
    let a = prove_model(model.clone(), input.clone(), Visibility::default());
    let b = prove_model(permuted(&model), input, Visibility::default());
    assert_ne!(a.vk.model_id(), b.vk.model_id());
    assert!(is_invalid(&b, &a.proof));
    let mut f = a.proof.clone();
    f.model_id = b.vk.model_id();
    assert!(is_invalid(&b, &f));
}

#[test]
fn a_proof_replayed_with_another_inputs_public_values_is_rejected() {
    let (model, input) = compile_shared("mlp_tiny");
    let mut other_input = input.clone();
    other_input[0] += 3;
    for vis in [
        Visibility::default(),
        Visibility {
            input: InputMode::Hashed,
            output: OutputMode::Hashed,
            ..Visibility::default()
        },
    ] {
        let a = prove_model(model.clone(), input.clone(), vis);
        let b = prove_model(model.clone(), other_input.clone(), vis);
        assert_ne!(a.proof.instances, b.proof.instances);
        let mut f = a.proof.clone();
        f.instances = b.proof.instances.clone();
        f.output = b.proof.output.clone();
        assert!(is_invalid(&a, &f), "{vis}");
    }
}

#[test]
fn a_statement_of_another_visibility_is_rejected() {
    let (model, input) = compile_shared("mlp_tiny");
    let p = prove_model(model, input, Visibility::default());
    let mut f = p.proof.clone();
    f.visibility.input = InputMode::Private;
    assert!(is_invalid(&p, &f));
}
