//! `--engine auto` with the GPU build installed: on a machine whose device answers the
//! proof is made on the GPU; anywhere else zkinfer says why and proves on the CPU. Either
//! way the proof verifies. (The test command runs this on CI, which has no GPU; on a lent
//! device, where nothing is compiled, scripts/gpu-check.sh checks the GPU path with the
//! prebuilt binaries.)

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use zkinfer::commands;
use zkinfer::engines::{self, Chosen, EngineChoice};
use zkinfer_pipeline::CompileOptions;
use zkinfer_tests::shared_models;

#[test]
fn auto_proves_on_the_gpu_or_says_why_not() {
    // The only test of this binary, so no other thread reads the environment meanwhile.
    std::env::set_var("ZKINFER_CUDA", env!("CARGO_BIN_EXE_zkinfer-cuda"));
    let tmp = tempfile::tempdir().unwrap();
    let (dir, proof) = (tmp.path().join("m"), tmp.path().join("proof.json"));
    let models = shared_models();
    let input = models.join("mlp_tiny.input.json");
    commands::compile(
        &models.join("mlp_tiny.onnx"),
        &input,
        &dir,
        &CompileOptions::default(),
    )
    .unwrap();
    commands::setup(&dir, None, true).unwrap();
    match engines::choose(EngineChoice::Auto, &dir).unwrap() {
        Chosen::Gpu { device, .. } => eprintln!("proving on {device}"),
        Chosen::Cpu { notice } => {
            let notice = notice.expect("auto says why it does not use the GPU build");
            assert!(
                notice.starts_with("note: proving on the CPU: no usable GPU (")
                    && notice.contains("zkinfer-cuda"),
                "{notice}"
            );
        }
    }
    engines::prove(EngineChoice::Auto, &dir, &input, &proof, 1).unwrap();
    assert!(commands::verify(&dir, &proof, None).unwrap());
}
