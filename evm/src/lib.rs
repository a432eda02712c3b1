//! zkinfer on Ethereum: a Solidity verifier generated from a verifying key (snark-verifier's
//! EVM loader, SHPLONK over KZG/BN254, the same Keccak transcript the prover writes), its
//! compilation with `solc` (native, or solc-js from npm), the calldata for a proof, and a
//! run of the contract in an in-process EVM (revm) with the mainnet rules, EIP-170's
//! 24,576-byte code limit included.

mod certificate;
mod compact;
mod solc;
mod split;

use std::rc::Rc;

use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};

use halo2_proofs::halo2curves::bn256::{Bn256, Fq, Fr, G1Affine};
use halo2_proofs::plonk::VerifyingKey;
use halo2_proofs::poly::commitment::ParamsProver;
use halo2_proofs::poly::kzg::commitment::ParamsKZG;
use revm::context::result::{ExecutionResult, Output};
use revm::context::TxEnv;
use revm::database::InMemoryDB;
use revm::primitives::{Address, TxKind};
use revm::{Context, ExecuteCommitEvm, MainBuilder, MainContext};
use snark_verifier::loader::evm::{self as evm_loader, EvmLoader};
use snark_verifier::pcs::kzg::{Bdfg21, KzgAs, KzgDecidingKey, LimbsEncoding};
use snark_verifier::system::halo2::{compile, transcript::evm::EvmTranscript, Config};
use snark_verifier::verifier::plonk::{PlonkProtocol, PlonkVerifier};
use snark_verifier::verifier::SnarkVerifier;
use zkinfer_circuits::{InputMode, ParamsMode};
use zkinfer_verifier::{guard, verifier_params, ProofFile, VerifierKey};

pub use certificate::{certificate_code, certify_calldata, CertificateContract, EvmClaim};
pub use solc::{Bytecode, Solc};
pub use split::{Contract, SolidityVerifier};

/// EIP-170: the largest deployed contract, in bytes.
pub const MAX_CODE_SIZE: usize = 0x6000;

/// EIP-7825: the most gas one Ethereum transaction may use (2^24).
pub const TX_GAS_CAP: u64 = 1 << 24;

/// Gas given to the verifying call in revm: far above [`TX_GAS_CAP`], so that a verifier
/// that needs more is measured (and reported as over the cap) rather than cut off.
const CALL_GAS: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvmError {
    #[error("generating the Solidity verifier: {0}")]
    Generate(String),
    #[error("{0}")]
    Solc(String),
    #[error("the EVM could not run the transaction: {0}")]
    Evm(String),
}

type Shplonk = PlonkVerifier<KzgAs<Bn256, Bdfg21>>;
/// The verifier of a proof whose public values begin with a KZG accumulator (an
/// aggregated proof): it also decides the accumulator's pairing.
type AccumulatingShplonk = PlonkVerifier<KzgAs<Bn256, Bdfg21>, LimbsEncoding<3, 88>>;

/// snark-verifier's verifier for `key`: one contract, `Halo2Verifier`, whose fallback
/// takes the calldata of [`calldata`] and returns empty on success, reverts otherwise.
fn generated_code(key: &VerifierKey) -> Result<String, EvmError> {
    let params = verifier_params(key)
        .ok_or_else(|| EvmError::Generate("the key's SRS points are unusable".into()))?;
    let code = solidity::<Shplonk>(&params, &key.vk, key.info.public_values(), None)?;
    check_public_values(&code, key)
}

/// The Solidity verifier of an aggregated proof: the verifying key `vk` of a circuit with
/// `num_instance` public values whose first 12 are a KZG accumulator (3 limbs of 88 bits
/// per coordinate of `lhs` and `rhs`), with `params` the KZG points its accumulator is
/// decided with. Every public value must be a canonical field element.
pub fn aggregation_verifier_code(
    params: &ParamsKZG<Bn256>,
    vk: &VerifyingKey<G1Affine>,
    num_instance: usize,
) -> Result<String, EvmError> {
    let accumulator = (0..12).map(|i| (0, i)).collect();
    let code = solidity::<AccumulatingShplonk>(params, vk, num_instance, Some(accumulator))?;
    insert_checks(&code, canonical_check(num_instance))
}

/// Builds an aggregation verifier ([`aggregation_verifier_code`]) as [`build_verifier`]
/// does a model's.
pub fn build_aggregation_verifier(
    params: &ParamsKZG<Bn256>,
    vk: &VerifyingKey<G1Affine>,
    num_instance: usize,
    solc: &Solc,
) -> Result<Build, EvmError> {
    build_code(
        aggregation_verifier_code(params, vk, num_instance)?,
        num_instance,
        solc,
    )
}

fn solidity<V>(
    params: &ParamsKZG<Bn256>,
    vk: &VerifyingKey<G1Affine>,
    num_instance: usize,
    accumulator_indices: Option<Vec<(usize, usize)>>,
) -> Result<String, EvmError>
where
    V: SnarkVerifier<
        G1Affine,
        Rc<EvmLoader>,
        VerifyingKey = KzgDecidingKey<Bn256>,
        Protocol = PlonkProtocol<G1Affine, Rc<EvmLoader>>,
    >,
{
    guard(|| -> Result<String, String> {
        let protocol = compile(
            params,
            vk,
            Config::kzg()
                .with_num_instance(vec![num_instance])
                .with_accumulator_indices(accumulator_indices),
        );
        let dk: KzgDecidingKey<Bn256> = (params.get_g()[0], params.g2(), params.s_g2()).into();
        let loader = EvmLoader::new::<Fq, Fr>();
        let protocol = protocol.loaded(&loader);
        let mut transcript = EvmTranscript::<G1Affine, Rc<EvmLoader>, _, _>::new(&loader);
        let instances = transcript.load_instances(vec![num_instance]);
        let proof = V::read_proof(&dk, &protocol, &instances, &mut transcript)
            .map_err(|e| format!("{e:?}"))?;
        V::verify(&dk, &protocol, &instances, &proof).map_err(|e| format!("{e:?}"))?;
        Ok(loader.solidity_code())
    })
    .ok_or_else(|| EvmError::Generate("snark-verifier failed on this key".into()))?
    .map_err(EvmError::Generate)
}

fn canonical_check(num_instance: usize) -> String {
    format!(
        "// zkinfer: every public value is a canonical field element.\n\
         for {{ let i := 0 }} lt(i, {:#x}) {{ i := add(i, 0x20) }} {{\n\
         if iszero(lt(calldataload(i), f_q)) {{ revert(0, 0) }}\n}}\n",
        32 * num_instance
    )
}

/// Puts `block` first in the verifier's body, right after `validate_ec_point`.
fn insert_checks(code: &str, block: String) -> Result<String, EvmError> {
    let func = code
        .find("function validate_ec_point")
        .ok_or_else(|| split::unexpected("no validate_ec_point"))?;
    let end = split::matching_brace(code, func + code[func..].find('{').unwrap_or(0))
        .ok_or_else(|| split::unexpected("unbalanced braces"))?;
    Ok(format!("{}\n{{\n{block}}}\n{}", &code[..end], &code[end..]))
}

/// snark-verifier reads each public value as `calldataload(i) mod r`, so `x + k·r` would
/// pass for `x`, and a public input is any field element. This puts a block first in the
/// verifier that reverts unless every public value is a canonical field element (below
/// r), the weights hash (when the weights are hashed) is the key's, and, when the input
/// is public, every input element an integer of the statement's input width
/// (`v < 2^(b-1)` or `v ≥ r − 2^(b-1)`), as the native verifier checks.
fn check_public_values(code: &str, key: &VerifierKey) -> Result<String, EvmError> {
    let info = &key.info;
    let vis = info.visibility();
    let mut block = canonical_check(info.public_values());
    if vis.params == ParamsMode::Hashed {
        // The key's model id is its circuit digest and this weights hash: without the pin
        // the contract would accept a proof of any weights for the same circuit.
        let hash = info
            .params_hash
            .as_deref()
            .ok_or_else(|| split::unexpected("hashed weights without a weights hash"))?;
        block += &format!(
            "// zkinfer: the weights hash is this model's.\n\
             if iszero(eq(calldataload(0), {hash})) {{ revert(0, 0) }}\n"
        );
    }
    if vis.input == InputMode::Public {
        let first = usize::from(vis.params == ParamsMode::Hashed);
        let half = 1u64 << (info.input_bits - 1);
        block += &format!(
            "// zkinfer: every input element is a {}-bit signed integer.\n\
             for {{ let i := {:#x} }} lt(i, {:#x}) {{ i := add(i, 0x20) }} {{\n\
             let v := calldataload(i)\n\
             if iszero(or(lt(v, {half:#x}), iszero(lt(v, sub(f_q, {half:#x}))))) {{ revert(0, 0) }}\n}}\n",
            info.input_bits,
            32 * first,
            32 * (first + info.input_len()),
        );
    }
    insert_checks(code, block)
}

/// A verifier and its compiled contracts, in deployment order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Build {
    /// [`fingerprint`] of the key's generated verifier: a build is reusable for exactly
    /// the keys with this fingerprint.
    pub fingerprint: String,
    pub verifier: SolidityVerifier,
    pub bytecode: Vec<Bytecode>,
    /// A certificate circuit's `CertificateVerifier` (deployed after the verifier, with
    /// `Halo2Verifier`'s address).
    #[serde(default)]
    pub certificate: Option<CertificateContract>,
}

/// Keccak-256 of the verifier generated for `key`, with this crate's version and the
/// sources of the passes that shrink and cut it: equal fingerprints mean the same
/// contracts.
pub fn fingerprint(key: &VerifierKey) -> Result<String, EvmError> {
    let code = generated_code(key)?;
    let certificate = certificate_code(key, split::calldata_len(&code)?)?;
    Ok(fingerprint_of(&code, certificate.as_deref()))
}

fn fingerprint_of(code: &str, certificate: Option<&str>) -> String {
    let mut h = Keccak256::new();
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update(include_str!("compact.rs").as_bytes());
    h.update(include_str!("split.rs").as_bytes());
    h.update(code.as_bytes());
    if let Some(c) = certificate {
        h.update(c.as_bytes());
    }
    format!("0x{}", hex::encode(h.finalize()))
}

/// Generates the Solidity verifier for `key` and compiles it, split into as few contracts
/// as keep every one within EIP-170's limit (see [`split`]). The cut is found by
/// compiling: code density differs along the verifier, so source size alone cannot tell.
/// For a certificate circuit's key, also its `CertificateVerifier`.
pub fn build_verifier(key: &VerifierKey, solc: &Solc) -> Result<Build, EvmError> {
    let code = generated_code(key)?;
    let Some(certificate) = certificate_code(key, split::calldata_len(&code)?)? else {
        return build_code(code, key.info.public_values(), solc);
    };
    let fingerprint = fingerprint_of(&code, Some(&certificate));
    let mut build = build_code(code, key.info.public_values(), solc)?;
    build.fingerprint = fingerprint;
    build.certificate = Some(certificate::compile(certificate, solc)?);
    Ok(build)
}

/// Source compiled in one run of the compiler. solc-js runs out of its 2 GiB heap on a
/// few MB of this code at once; no verifier part under 24 KB of code comes from more than
/// ~100 KB of source anyway.
const MAX_SOURCE_BYTES: usize = 512 * 1024;

/// Builds `code` as it is and, where that takes more than one contract (or cannot be
/// cut), with its runs of reads folded into loops ([`compact`]); takes the build with
/// fewer contracts. Fewer contracts first: EIP-170 is the hard limit and every contract
/// is a deployment and a hand-over of the memory image; at equal counts the
/// straight-line code, whose call costs less gas (a loop's counter costs a little on
/// every iteration).
fn build_code(code: String, public_values: usize, solc: &Solc) -> Result<Build, EvmError> {
    let fingerprint = fingerprint_of(&code, None);
    let plain = build_split(&code, &fingerprint, public_values, solc);
    if matches!(&plain, Ok(b) if b.bytecode.len() == 1) {
        return plain;
    }
    let compacted = build_split(&compact::compact(&code), &fingerprint, public_values, solc);
    match (plain, compacted) {
        (Ok(p), Ok(c)) if c.bytecode.len() < p.bytecode.len() => Ok(c),
        (Ok(p), _) => Ok(p),
        (Err(_), Ok(c)) => Ok(c),
        (Err(e), Err(_)) => Err(e),
    }
}

/// Splits `code` into as few contracts as keep each within EIP-170 and compiles them.
fn build_split(
    code: &str,
    fingerprint: &str,
    public_values: usize,
    solc: &Solc,
) -> Result<Build, EvmError> {
    let mut part_bytes = code.len().min(MAX_SOURCE_BYTES);
    loop {
        let verifier = split::split(code, part_bytes)?;
        // The parts in runs of the compiler of at most MAX_SOURCE_BYTES of source each.
        let mut bytecode = Vec::with_capacity(verifier.contracts.len());
        let mut batch: Vec<(String, &str)> = Vec::new();
        for (i, c) in verifier.contracts.iter().enumerate() {
            let source = verifier.contract_source(i);
            let queued: usize = batch.iter().map(|(s, _)| s.len()).sum();
            if !batch.is_empty() && queued + source.len() > MAX_SOURCE_BYTES {
                bytecode.extend(solc.compile(&std::mem::take(&mut batch))?);
            }
            batch.push((source, &c.name));
        }
        if !batch.is_empty() {
            bytecode.extend(solc.compile(&batch)?);
        }
        let largest = bytecode.iter().map(|b| b.runtime.len()).max().unwrap_or(0);
        if largest <= MAX_CODE_SIZE {
            return Ok(Build {
                fingerprint: fingerprint.to_string(),
                verifier,
                bytecode,
                certificate: None,
            });
        }
        if let Some(b) = verifier
            .contracts
            .iter()
            .zip(&bytecode)
            .find(|(c, b)| c.uncuttable && b.runtime.len() > MAX_CODE_SIZE)
            .map(|(_, b)| b)
        {
            return Err(EvmError::Generate(format!(
                "one step of the generated verifier alone compiles to {} bytes, over EIP-170's \
                 {MAX_CODE_SIZE}: with {} public values it cannot be cut small enough",
                b.runtime.len(),
                public_values
            )));
        }
        // Aim 10% under the limit at the density just seen; always shrink.
        let next = (part_bytes as f64 * 0.9 * MAX_CODE_SIZE as f64 / largest as f64) as usize;
        part_bytes = next.min(part_bytes * 9 / 10);
        if part_bytes < 1024 {
            return Err(EvmError::Generate(format!(
                "cannot cut the verifier into contracts under {MAX_CODE_SIZE} bytes"
            )));
        }
    }
}

/// The calldata for a proof: the public instances as 32-byte big-endian words, then the
/// proof bytes.
pub fn calldata(proof: &ProofFile) -> Result<Vec<u8>, String> {
    let (instances, bytes) = proof.public_values()?;
    Ok(evm_loader::encode_calldata(&[instances], &bytes))
}

/// What the EVM made of a proof.
#[derive(Clone, Debug, PartialEq)]
pub struct EvmRun {
    /// The call returned (the contract reverts on an invalid proof).
    pub accepted: bool,
    /// Gas of the verifying call, the 21,000 base and the calldata included.
    pub gas_used: u64,
    /// Deployed code size of each contract, in deployment order.
    pub code_sizes: Vec<usize>,
    /// Gas of all deployments.
    pub deploy_gas: u64,
    /// Why the call failed, when it did.
    pub reason: Option<String>,
    /// What the call returned (empty for a verifier).
    pub output: Vec<u8>,
}

/// A 32-byte ABI word holding `address`.
fn address_word(address: &Address) -> Vec<u8> {
    let mut w = vec![0u8; 12];
    w.extend(address.as_slice());
    w
}

/// ABI encoding of a constructor's single `address[]` argument.
fn encode_addresses(addresses: &[Address]) -> Vec<u8> {
    let word = |v: usize| {
        let mut w = [0u8; 32];
        w[24..].copy_from_slice(&(v as u64).to_be_bytes());
        w
    };
    let mut out = Vec::with_capacity(64 + 32 * addresses.len());
    out.extend(word(0x20));
    out.extend(word(addresses.len()));
    for a in addresses {
        out.extend(address_word(a));
    }
    out
}

/// Deploys the verifier's contracts in a fresh in-memory EVM (mainnet rules, EIP-170
/// enforced) — a split verifier's parts first, then `Halo2Verifier` with their addresses
/// — and calls `Halo2Verifier` with `calldata`.
pub fn deploy_and_call(contracts: &[Bytecode], calldata: Vec<u8>) -> Result<EvmRun, EvmError> {
    run(contracts, None, calldata)
}

/// What `CertificateVerifier.certify` made of a certificate's batch proofs.
#[derive(Clone, Debug, PartialEq)]
pub struct CertificateRun {
    /// The call (`accepted` when it returned), its gas and the contracts.
    pub run: EvmRun,
    /// What it returned, when it did.
    pub claim: Option<EvmClaim>,
}

/// Deploys a certificate key's verifier and its `CertificateVerifier` in a fresh
/// in-memory EVM and calls `certify` once with the calldata of every batch proof.
pub fn certify_in_evm(build: &Build, batches: &[Vec<u8>]) -> Result<CertificateRun, EvmError> {
    let Some(certificate) = &build.certificate else {
        return Err(EvmError::Evm(
            "this verifier is not a certificate circuit's: it has no CertificateVerifier".into(),
        ));
    };
    let run = run(
        &build.bytecode,
        Some(&certificate.bytecode),
        certify_calldata(batches),
    )?;
    let claim = if run.accepted {
        Some(certificate::decode_claim(&run.output).ok_or_else(|| {
            EvmError::Evm(format!(
                "CertificateVerifier returned {} bytes, not its four words",
                run.output.len()
            ))
        })?)
    } else {
        None
    };
    Ok(CertificateRun { run, claim })
}

/// Deploys `contracts` (a verifier, `Halo2Verifier` last) and, if given, `wrapper` with
/// `Halo2Verifier`'s address as its constructor argument; calls the wrapper if there is
/// one, else `Halo2Verifier`, with `calldata`.
fn run(
    contracts: &[Bytecode],
    wrapper: Option<&Bytecode>,
    calldata: Vec<u8>,
) -> Result<EvmRun, EvmError> {
    let mut evm = Context::mainnet()
        .with_db(InMemoryDB::default())
        .build_mainnet();
    let (mut nonce, mut deploy_gas) = (0u64, 0u64);
    let mut addresses = Vec::new();
    let mut code_sizes = Vec::new();
    let Some((main, parts)) = contracts.split_last() else {
        return Err(EvmError::Evm("no contract to deploy".into()));
    };
    for (i, code) in parts.iter().chain([main]).chain(wrapper).enumerate() {
        let mut data = code.deployment.clone();
        if i == parts.len() && !parts.is_empty() {
            data.extend(encode_addresses(&addresses));
        }
        if i == contracts.len() {
            data.extend(address_word(&addresses[parts.len()]));
        }
        let create = TxEnv {
            gas_limit: 30_000_000,
            kind: TxKind::Create,
            data: data.into(),
            nonce,
            ..Default::default()
        };
        nonce += 1;
        let deployed = evm
            .transact_commit(create)
            .map_err(|e| EvmError::Evm(format!("deployment: {e:?}")))?;
        match deployed {
            ExecutionResult::Success {
                output: Output::Create(code, Some(address)),
                gas_used,
                ..
            } => {
                addresses.push(address);
                code_sizes.push(code.len());
                deploy_gas += gas_used;
            }
            ExecutionResult::Halt { reason, .. } => {
                return Err(EvmError::Evm(format!(
                    "deploying contract {i} halted: {reason:?}"
                )))
            }
            other => {
                return Err(EvmError::Evm(format!(
                    "deploying contract {i} created nothing: {other:?}"
                )))
            }
        }
    }
    let Some(&address) = addresses.last() else {
        return Err(EvmError::Evm("no contract deployed".into()));
    };
    let call = TxEnv {
        gas_limit: CALL_GAS,
        kind: TxKind::Call(address),
        data: calldata.into(),
        nonce,
        ..Default::default()
    };
    let result = evm
        .transact_commit(call)
        .map_err(|e| EvmError::Evm(format!("call: {e:?}")))?;
    let (accepted, gas_used, reason, output) = match result {
        ExecutionResult::Success {
            gas_used, output, ..
        } => (true, gas_used, None, output.data().to_vec()),
        ExecutionResult::Revert { gas_used, output } => (
            false,
            gas_used,
            Some(match revert_message(&output) {
                Some(m) => format!("the contract reverted: {m}"),
                None => "the contract reverted".to_string(),
            }),
            output.to_vec(),
        ),
        ExecutionResult::Halt { reason, gas_used } => (
            false,
            gas_used,
            Some(format!("the call halted: {reason:?}")),
            Vec::new(),
        ),
    };
    Ok(EvmRun {
        accepted,
        gas_used,
        code_sizes,
        deploy_gas,
        reason,
        output,
    })
}

/// The message of a Solidity `require(…, "message")` revert (`Error(string)`).
fn revert_message(out: &[u8]) -> Option<String> {
    let body = out.strip_prefix(&Keccak256::digest(b"Error(string)")[..4])?;
    let len = usize::try_from(u64::from_be_bytes(body.get(56..64)?.try_into().ok()?)).ok()?;
    String::from_utf8(body.get(64..64usize.checked_add(len)?)?.to_vec()).ok()
}
