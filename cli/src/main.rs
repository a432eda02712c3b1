//! The `zkinfer` command: compile an ONNX model into a circuit, set up keys, prove an
//! inference and verify it. The only place that reads files and prints progress.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use zkinfer::commands::{Bits, CompileOptions};
use zkinfer::engines::EngineChoice;
use zkinfer::{commands, demo, engines, evm};
use zkinfer_circuits::{InputMode, OutputMode, ParamsMode, Visibility};
use zkinfer_compiler::Target;

#[derive(Parser)]
#[command(
    name = "zkinfer",
    version,
    about = "Prove in zero knowledge that a committed neural network produced an output"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Import, calibrate and quantize an ONNX model; write DIR/circuit.json.
    Compile {
        model: PathBuf,
        /// Sample inputs in EZKL's format: {"input_data": [[...], ...]}.
        #[arg(long)]
        calibration: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Signed bit width of activations (the lookup table has 2^bits rows); 12 unless
        /// --target chooses it.
        #[arg(long, conflicts_with = "target")]
        bits: Option<u32>,
        /// Choose the activation width from the fidelity on the calibration data: `size`
        /// (the narrowest whose argmax agrees and whose error is within 1% of the output
        /// range) or `accuracy` (the smallest error), trying 8 to 16 bits.
        #[arg(long)]
        target: Option<Target>,
        /// Weights: `fixed` (the verifying key commits to them) or `hashed` (private; their
        /// Poseidon hash is public and the key serves every model of this shape).
        #[arg(long, default_value = "fixed")]
        params: ParamsMode,
        /// Input: `public`, `private` (not revealed at all) or `hashed` (its Poseidon hash
        /// is public).
        #[arg(long, default_value = "public")]
        input: InputMode,
        /// Output: `public` or `hashed` (its Poseidon hash is public).
        #[arg(long, default_value = "public")]
        output: OutputMode,
        /// Keep to layouts the cost model predicts to prove (and set up) within this many
        /// megabytes; among them the planner takes the fastest.
        #[arg(long, value_name = "MB", value_parser = positive_mb)]
        max_memory: Option<f64>,
    },
    /// Print the model commitment of DIR: the verifying key's digest for fixed weights,
    /// `<digest>:<weights hash>` for hashed weights (the weights hash is computed natively
    /// from DIR/circuit.json when there is no key yet).
    ModelId { dir: PathBuf },
    /// Generate the proving and verifying keys: DIR/pk, DIR/vk, DIR/srs.
    Setup {
        dir: PathBuf,
        /// The trusted setup: a snarkjs / Perpetual Powers of Tau `.ptau` file (BN254) or
        /// a halo2 KZG params file, with at least 2^k powers.
        #[arg(long, conflicts_with = "dev_srs")]
        srs: Option<PathBuf>,
        /// Use a deterministic, publicly known SRS. INSECURE: proofs can be forged.
        #[arg(long)]
        dev_srs: bool,
    },
    /// Prove one inference; prints the output and per-stage timings.
    Prove {
        dir: PathBuf,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        proof: PathBuf,
        /// Where to prove: the GPU build when a device answers (auto), or force one.
        #[arg(long, value_enum, default_value = "auto")]
        engine: EngineChoice,
    },
    /// Verify a proof: exit 0 valid, 1 invalid, 2 error. Prints the SRS fingerprint, and a
    /// warning for keys made with --dev-srs.
    Verify {
        dir: PathBuf,
        #[arg(long)]
        proof: PathBuf,
        /// Also require this model commitment (as `zkinfer model-id` prints it).
        #[arg(long)]
        model_id: Option<String>,
    },
    /// Write a Solidity verifier contract for DIR's verifying key.
    ExportSolidity {
        dir: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Refuse (exit 2) unless DIR's key is this model id.
        #[arg(long)]
        model_id: Option<String>,
    },
    /// Write the calldata for the Solidity verifier: instances, then proof bytes.
    EncodeCalldata {
        #[arg(long)]
        proof: PathBuf,
        /// Binary output file (default: 0x-hex on stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Verify a proof in an in-process EVM: compile the Solidity verifier, deploy, call.
    /// Exit 0 accepted, 1 rejected, 2 error.
    VerifyEvm {
        dir: PathBuf,
        #[arg(long)]
        proof: PathBuf,
        /// Also require this model commitment: the contract is compiled from DIR's key,
        /// so this pins its constants too.
        #[arg(long)]
        model_id: Option<String>,
    },
    /// Run compile, setup, prove and verify on an embedded example model.
    Demo {
        /// Where to write the artifacts (default: a temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// Exit 0 for valid, 1 for invalid.
fn verdict(valid: bool) -> ExitCode {
    if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// A memory budget in MB: a positive number.
fn positive_mb(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(mb) if mb > 0.0 && mb.is_finite() => Ok(mb),
        _ => Err(format!("`{s}` is not a positive number of megabytes")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Compile {
            model,
            calibration,
            out,
            bits,
            target,
            params,
            input,
            output,
            max_memory,
        } => {
            let options = CompileOptions {
                bits: match target {
                    Some(t) => Bits::Target(t),
                    None => Bits::Fixed(bits.unwrap_or(12)),
                },
                visibility: Visibility {
                    params,
                    input,
                    output,
                },
                max_memory_mb: max_memory,
            };
            commands::compile(&model, &calibration, &out, &options).map(|_| ExitCode::SUCCESS)
        }
        Command::ModelId { dir } => commands::model_id(&dir).map(|_| ExitCode::SUCCESS),
        Command::Setup { dir, srs, dev_srs } => {
            commands::setup(&dir, srs.as_deref(), dev_srs).map(|_| ExitCode::SUCCESS)
        }
        Command::Prove {
            dir,
            input,
            proof,
            engine,
        } => engines::prove(engine, &dir, &input, &proof).map(|_| ExitCode::SUCCESS),
        Command::Verify {
            dir,
            proof,
            model_id,
        } => commands::verify(&dir, &proof, model_id.as_deref()).map(verdict),
        Command::ExportSolidity { dir, out, model_id } => {
            evm::export_solidity(&dir, &out, model_id.as_deref()).map(|_| ExitCode::SUCCESS)
        }
        Command::EncodeCalldata { proof, out } => {
            evm::encode_calldata(&proof, out.as_deref()).map(|_| ExitCode::SUCCESS)
        }
        Command::VerifyEvm {
            dir,
            proof,
            model_id,
        } => evm::verify_evm(&dir, &proof, model_id.as_deref()).map(verdict),
        Command::Demo { dir } => demo::run(dir),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
