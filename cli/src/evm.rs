//! The Ethereum subcommands: export the Solidity verifier, encode calldata, and verify a
//! proof by running the contract in an in-process EVM.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use zkinfer_evm::{Build, EvmRun, Solc, MAX_CODE_SIZE, TX_GAS_CAP};
use zkinfer_verifier::VerifierKey;

use crate::files::{load_proof, load_vk, write};
use crate::progress::{secs, step};

/// The user's cache of compiled verifiers: `$XDG_CACHE_HOME/zkinfer/evm`, else
/// `$HOME/.cache/zkinfer/evm`. (Not the model directory: a verdict must not depend on a
/// file that travels with the proof's artifacts.)
fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("zkinfer").join("evm"))
}

/// The compiled verifier for `key`: from the cache when one was built for the same
/// generated code, else generated and compiled (under a spinner), then cached.
pub(crate) fn build(key: &VerifierKey) -> Result<(Build, Duration)> {
    let fingerprint = zkinfer_evm::fingerprint(key)?;
    let cache = cache_dir().map(|d| d.join(format!("{fingerprint}.json")));
    let cached = cache
        .as_ref()
        .and_then(|c| std::fs::read(c).ok())
        .and_then(|b| serde_json::from_slice::<Build>(&b).ok())
        .filter(|b| b.fingerprint == fingerprint);
    if let Some(build) = cached {
        return Ok((build, Duration::ZERO));
    }
    let solc = Solc::find()?;
    let (build, t) = step(
        &format!(
            "generating the Solidity verifier, compiling with {}",
            solc.program.display()
        ),
        || zkinfer_evm::build_verifier(key, &solc),
    );
    let build = build?;
    if let Some(cache) = cache {
        // A cache that cannot be written only costs the next run a compile.
        let _ = std::fs::create_dir_all(cache.parent().unwrap_or(&cache))
            .and_then(|_| std::fs::write(&cache, serde_json::to_vec(&build).unwrap_or_default()));
    }
    Ok((build, t))
}

pub fn export_solidity(dir: &Path, out: &Path, expected_id: Option<&str>) -> Result<()> {
    crate::segmented::refuse_evm(dir)?;
    let key = load_vk(dir)?;
    if !crate::commands::pinned(&key, dir, expected_id, "error") {
        anyhow::bail!("not exporting a verifier for another model than the required one");
    }
    let (build, t) = build(&key)?;
    let verifier = build.verifier;
    let mut source = verifier.source_for(&key.model_id(), &key.srs.fingerprint());
    if let Some(c) = &build.certificate {
        source += "\n";
        source += &c.code;
    }
    write(out, source.as_bytes())?;
    println!(
        "Solidity verifier for `{}` -> {} ({} bytes of source, {})",
        key.info.model,
        out.display(),
        source.len(),
        secs(t)
    );
    if verifier.is_split() {
        println!(
            "  contracts Halo2VerifierPart0..{} (deploy first, in order), then Halo2Verifier(address[] parts):",
            verifier.contracts.len() - 2
        );
        println!("            split so that each fits EIP-170's {MAX_CODE_SIZE}-byte code limit");
    }
    println!(
        "  call      Halo2Verifier with the {}-byte calldata of `zkinfer encode-calldata`",
        verifier.calldata_len
    );
    println!("  verdict   returns empty on a valid proof, reverts otherwise");
    if build.certificate.is_some() {
        println!(
            "  certify   deploy CertificateVerifier(Halo2Verifier's address); call \
             certify(bytes[]) with every batch's calldata (`zkinfer encode-calldata --proof \
             CERT`): it returns (weights hash, dataset id, samples, correct)"
        );
    }
    println!(
        "  model id  {} (its constants are this key's)",
        key.model_id()
    );
    crate::commands::print_srs(&key);
    Ok(())
}

pub fn encode_calldata(proof_path: &Path, out: Option<&Path>) -> Result<()> {
    let data = if crate::certify::is_certificate_file(proof_path) {
        zkinfer_evm::certify_calldata(&crate::certify::batch_calldata(proof_path)?.1)
    } else {
        let proof = load_proof(proof_path)?;
        zkinfer_evm::calldata(&proof)
            .map_err(|e| anyhow::anyhow!("{}: {e}", proof_path.display()))?
    };
    match out {
        Some(out) => {
            write(out, &data)?;
            println!("calldata ({} bytes) -> {}", data.len(), out.display());
        }
        None => println!("0x{}", hex::encode(&data)),
    }
    Ok(())
}

/// `Ok(true)` accepted, `Ok(false)` rejected (by the statement check or the contract).
pub fn verify_evm(dir: &Path, proof_path: &Path, expected_id: Option<&str>) -> Result<bool> {
    crate::segmented::refuse_evm(dir)?;
    let key = load_vk(dir)?;
    let proof = load_proof(proof_path)?;
    // The contract is compiled from this key: pinning its id pins the contract's constants.
    if !crate::commands::pinned(&key, dir, expected_id, "rejected") {
        return Ok(false);
    }
    // The contract checks the proof against the instances; the file's other claims (model
    // id, the dequantized output) are checked here exactly as the native verifier does.
    if let Err(reason) = zkinfer_verifier::statement(&key, &proof) {
        println!("rejected: {reason}");
        return Ok(false);
    }
    let (build, t_build) = build(&key)?;
    if key.srs.is_insecure_dev_srs() {
        eprintln!("{}", crate::commands::DEV_SRS_WARNING);
    }
    let calldata = zkinfer_evm::calldata(&proof)
        .map_err(|e| anyhow::anyhow!("{}: {e}", proof_path.display()))?;
    let (run, t_evm) = step("deploying and calling in revm", || {
        zkinfer_evm::deploy_and_call(&build.bytecode, calldata)
    });
    let run = run?;
    match &run.reason {
        None => println!(
            "accepted: `{}` (model id {})",
            key.info.model,
            key.model_id()
        ),
        Some(reason) => println!("rejected: {reason}"),
    }
    print_run(&run, t_build, t_evm);
    Ok(run.accepted)
}

/// The gas, code and time lines of a run in revm.
pub(crate) fn print_run(run: &EvmRun, t_build: Duration, t_evm: Duration) {
    println!(
        "  gas       {} for the call (deployment {})",
        run.gas_used, run.deploy_gas
    );
    if run.gas_used > TX_GAS_CAP {
        println!(
            "  warning   the call needs more gas than one Ethereum transaction may use \
             ({TX_GAS_CAP}, EIP-7825): it verifies in this EVM but not on mainnet"
        );
    }
    let largest = run.code_sizes.iter().max().copied().unwrap_or(0);
    if run.code_sizes.len() > 1 {
        println!(
            "  code      {} contracts, {} bytes in all, largest {largest} (EIP-170 limit {MAX_CODE_SIZE})",
            run.code_sizes.len(),
            run.code_sizes.iter().sum::<usize>()
        );
    } else {
        println!("  code      {largest} bytes deployed (EIP-170 limit {MAX_CODE_SIZE})");
    }
    let compile = if t_build.is_zero() {
        "cached".to_string()
    } else {
        secs(t_build)
    };
    println!(
        "  time      generate and compile {compile}, evm {}",
        secs(t_evm)
    );
}
