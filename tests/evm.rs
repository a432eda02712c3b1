//! The Solidity verifier in revm, on the shared models: each contract within EIP-170,
//! the proof accepted, tampered proofs and public values rejected exactly where the
//! native verifier rejects them. (mlp_tiny, the one unsplit verifier, is checked through
//! the command line in cli/tests.) Needs a Solidity compiler
//! (`scripts/install-solc.sh`; the test command runs it).

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use zkinfer_circuits::fe;
use zkinfer_evm::{build_verifier, calldata, deploy_and_call, Solc, MAX_CODE_SIZE};
use zkinfer_tests::prove_shared;
use zkinfer_verifier::{fr_from_hex, fr_to_hex, verify, ProofFile, Verdict};

fn evm_accepts(contracts: &[zkinfer_evm::Bytecode], proof: &ProofFile) -> bool {
    deploy_and_call(contracts, calldata(proof).unwrap())
        .unwrap()
        .accepted
}

fn check(name: &str) {
    let p = prove_shared(name);
    let solc = Solc::find().expect("a Solidity compiler (scripts/install-solc.sh)");
    let build = build_verifier(&p.vk, &solc).unwrap();
    for (c, b) in build.verifier.contracts.iter().zip(&build.bytecode) {
        assert!(
            b.runtime.len() <= MAX_CODE_SIZE,
            "{name}: {} too big",
            c.name
        );
    }
    assert_eq!(
        build.verifier.calldata_len,
        calldata(&p.proof).unwrap().len()
    );
    let run = deploy_and_call(&build.bytecode, calldata(&p.proof).unwrap()).unwrap();
    assert!(
        run.accepted,
        "{name}: valid proof rejected: {:?}",
        run.reason
    );
    assert_eq!(run.code_sizes.len(), build.verifier.contracts.len());

    // Flipped proof bytes: first commitment, a middle evaluation, the last byte.
    let bytes = hex::decode(&p.proof.proof[2..]).unwrap();
    for at in [0, bytes.len() / 2, bytes.len() - 1] {
        let mut b = bytes.clone();
        b[at] ^= 1;
        let mut t = p.proof.clone();
        t.proof = format!("0x{}", hex::encode(&b));
        assert!(matches!(verify(&p.vk, &t), Verdict::Invalid { .. }));
        assert!(
            !evm_accepts(&build.bytecode, &t),
            "{name}: flip at {at} accepted"
        );
    }
    // An altered public input, and an altered public output.
    let n = p.proof.instances.len();
    for at in [0, n - 1] {
        let mut t = p.proof.clone();
        t.instances[at] = fr_to_hex(&(fr_from_hex(&t.instances[at]).unwrap() + fe(1)));
        assert!(
            !evm_accepts(&build.bytecode, &t),
            "{name}: altered instance {at} accepted"
        );
    }
    // A truncated proof: calldata of the wrong length.
    let mut t = p.proof.clone();
    t.proof.truncate(t.proof.len() - 64);
    assert!(!evm_accepts(&build.bytecode, &t));
}

#[test]
fn mlp_mnist_in_the_evm() {
    check("mlp_mnist");
}

#[test]
fn lenet5_in_the_evm() {
    check("lenet5");
}

#[test]
fn attn_block_in_the_evm() {
    check("attn_block");
}

#[test]
fn mlp_wide_in_the_evm() {
    check("mlp_wide");
}

/// 3,082 public values: 48 contracts, and blocks cut inside through memory spills.
#[test]
fn cnn_cifar_in_the_evm() {
    check("cnn_cifar");
}
