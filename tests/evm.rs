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

/// Adds BN254's scalar modulus r to the 32-byte big-endian word `at` of `data`.
fn add_modulus(data: &mut [u8], at: usize) {
    let r =
        hex::decode("30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001").unwrap();
    let word = &mut data[32 * at..32 * at + 32];
    let mut carry = 0u16;
    for i in (0..32).rev() {
        let v = word[i] as u16 + r[i] as u16 + carry;
        word[i] = v as u8;
        carry = v >> 8;
    }
    assert_eq!(carry, 0);
}

/// Issue 13, attacks 3 and 6 in the contract itself: a public word `x + r` (which reads as
/// `x` modulo r) reverts, and so does a real proof whose public input is outside the
/// model's quantized width (the circuit does not bound a public input: the verifiers do).
#[test]
fn the_contract_reverts_on_non_canonical_words_and_out_of_range_inputs() {
    use std::sync::Arc;
    use zkinfer_circuits::halo2_proofs::halo2curves::bn256::Bn256;
    use zkinfer_circuits::halo2_proofs::plonk::verify_proof;
    use zkinfer_circuits::halo2_proofs::poly::kzg::commitment::KZGCommitmentScheme;
    use zkinfer_circuits::halo2_proofs::poly::kzg::multiopen::VerifierSHPLONK;
    use zkinfer_circuits::halo2_proofs::poly::kzg::strategy::SingleStrategy;
    use zkinfer_circuits::halo2_proofs::transcript::TranscriptReadBuffer;
    use zkinfer_verifier::{verifier_params, KeccakTranscript};

    let (model, input) = zkinfer_tests::compile_shared("mlp_tiny");
    let p = zkinfer_tests::prove_model(model.clone(), input.clone(), Default::default());
    let solc = Solc::find().expect("a Solidity compiler (scripts/install-solc.sh)");
    let build = build_verifier(&p.vk, &solc).unwrap();
    let data = calldata(&p.proof).unwrap();
    let call = |d: Vec<u8>| deploy_and_call(&build.bytecode, d).unwrap().accepted;
    assert!(call(data.clone()));
    let n = p.proof.instances.len();
    for at in [0, n - 1] {
        let mut d = data.clone();
        add_modulus(&mut d, at);
        assert!(!call(d), "word {at} + r accepted");
    }

    // The cheater's witness: the same program run on an input just past 12 bits.
    let half = 1i64 << (model.act_bits - 1);
    let mut wide = model.clone();
    wide.act_bits = 20;
    let mut x = input.clone();
    x[0] = half;
    assert!(model.run(&x).is_err());
    let trace = Arc::new(wide.run(&x).unwrap());
    let params = zkinfer_tests::dev_srs(p.info.layout.k);
    let forged = zkinfer_prover::prove(
        &zkinfer_prover::CpuEngine,
        Arc::new(model),
        &p.pk,
        &params,
        trace,
    )
    .unwrap();
    // The proof itself is valid for the circuit...
    let (instances, bytes) = forged.public_values().unwrap();
    let vp = verifier_params(&p.vk).unwrap();
    let mut transcript = KeccakTranscript::init(bytes.as_slice());
    assert!(
        verify_proof::<KZGCommitmentScheme<Bn256>, VerifierSHPLONK<'_, Bn256>, _, _, _>(
            &vp,
            &p.vk.vk,
            SingleStrategy::new(&vp),
            &[&[&instances]],
            &mut transcript,
        )
        .is_ok(),
        "the forged proof should satisfy the circuit"
    );
    // ...and its statement is refused natively and by the contract.
    match verify(&p.vk, &forged) {
        Verdict::Invalid { reason } => assert!(reason.contains("not an integer in"), "{reason}"),
        Verdict::Valid { .. } => panic!("an input past 12 bits verified natively"),
    }
    assert!(
        !call(calldata(&forged).unwrap()),
        "the contract accepted it"
    );
}
