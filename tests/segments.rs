//! Segments of the shared models (issue 14): at every cut whose live values are bounded,
//! the two segments run from their boundaries compute the model's own values, and every
//! boundary value is an `act_bits`-bit integer — what a range-checked link between two
//! segment proofs will assume.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use zkinfer_qir::signed_range;
use zkinfer_tests::compile_shared;

#[test]
fn every_bounded_cut_of_every_shared_model_splits_it_exactly() {
    for name in ["mlp_tiny", "mlp_mnist", "lenet5", "cnn_cifar", "attn_block"] {
        let (model, input) = compile_shared(name);
        let full = model.run(&input).unwrap();
        let cuts = model.bounded_cuts();
        assert!(!cuts.is_empty(), "{name}: no bounded cut");
        let (min, max) = signed_range(model.act_bits);
        for &c in &cuts {
            let segments = model.split(&[c]).unwrap();
            assert_eq!(segments[0].outputs, segments[1].inputs, "{name} at {c}");
            let middle = model
                .run_segment(&segments[0], std::slice::from_ref(&input))
                .unwrap();
            for (id, v) in segments[0].outputs.iter().zip(&middle) {
                assert_eq!(v, full.get(*id), "{name} at {c}: {id:?}");
                assert!(
                    v.iter().all(|x| (min..=max).contains(x)),
                    "{name} at {c}: unbounded"
                );
            }
            let out = model.run_segment(&segments[1], &middle).unwrap();
            assert_eq!(out, vec![full.get(model.output).to_vec()], "{name} at {c}");
        }
        // All bounded cuts at once: a chain of segments, each fed the last one's outputs.
        let mut boundary = vec![input.clone()];
        for s in model.split(&cuts).unwrap() {
            boundary = model.run_segment(&s, &boundary).unwrap();
        }
        assert_eq!(boundary, vec![full.get(model.output).to_vec()], "{name}");
    }
}
