//! The `zkinfer` command: compile an ONNX model into a circuit, set up keys, prove an
//! inference and verify it. The only place that reads files and prints progress.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use zkinfer::commands::{Batch, Bits, CompileOptions};
use zkinfer::engines::EngineChoice;
use zkinfer::{aggregate, certify, commands, demo, engines, evm, fold, segmented};
use zkinfer_circuits::{
    InputMode, LinearArgument, Objective, OutputMode, ParamsMode, RangeCheck, Visibility,
};
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
        /// Signed bit width of activations (the lookup table has 2^bits rows). Default: the
        /// widest of 12 to 16 bits whose circuit has the 12-bit circuit's k and predicted
        /// prove time (within 2%), so precision is free where the tables do not set k;
        /// --target chooses it from the fidelity instead.
        #[arg(long, conflicts_with = "target")]
        bits: Option<u32>,
        /// Signed bit width of the weights. Default: 12, and without --bits or --target the
        /// widest of 12 to 16 whose circuit keeps the k and predicted prove time (hashed
        /// weights are range-checked in a table of 2^N rows, or in two limbs of N/2 bits
        /// where the range checks are in limbs).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(2..=24))]
        weight_bits: Option<u32>,
        /// Signed bit width at which continuous tabulated functions (exp, erf, reciprocal,
        /// square roots, …) read their inputs, where narrower than the activations: each
        /// such table has 2^N rows instead of 2^bits. Default: the activations' width with
        /// --bits or --target; without them, chosen with the activation width (the widest
        /// whose circuit keeps the 12-bit circuit's k and predicted prove time).
        #[arg(long, value_name = "N", conflicts_with = "target", value_parser = clap::value_parser!(u32).range(2..=24))]
        table_bits: Option<u32>,
        /// Keep the model-wide widths for every tensor. By default, with at least 16
        /// calibration samples, `compile` then widens single tensors' weights and function
        /// inputs where the error grows, if the circuit still costs no more and both halves
        /// of the samples agree that the error falls.
        #[arg(long)]
        no_per_tensor: bool,
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
        /// megabytes; among them the planner takes the fastest. A model no single circuit
        /// fits is cut into segments that do (DIR/segments.json, DIR/segment-<i>/).
        /// Default: 80% of this machine's memory.
        #[arg(long, value_name = "MB", value_parser = positive_mb)]
        max_memory: Option<f64>,
        /// Cut into at least N segments of about equal work (to prove them in parallel),
        /// where the model has enough cuts.
        #[arg(long, value_name = "N", default_value_t = 1)]
        segments: usize,
        /// How linear layers are checked: `dot` (dot products, row by row), `freivalds`
        /// (one random combination of the rows, wherever a layer is applied to several
        /// rows) or `auto` (per layer, whichever lays out fewer cells).
        #[arg(long, default_value = "auto")]
        linear: LinearArgument,
        /// How activations and remainders are range-checked: `table` (one lookup into a
        /// table of every 2^bits value), `limbs` (two lookups into tables of about
        /// 2^(bits/2+1) rows) or `auto` (whichever the cost model predicts proves faster).
        #[arg(long, default_value = "auto")]
        range: RangeCheck,
        /// Plan the circuits for `zkinfer aggregate`: an aggregation circuit verifies every
        /// commitment of a proof and of its key, at seconds each, so this takes the
        /// layouts of fewest commitments where the fastest to prove alone have more (a
        /// bundle of segments folds faster, into a smaller verifier that costs less gas).
        #[arg(long)]
        aggregate: bool,
        /// Compile the model's capability certificate circuit instead: N samples a proof,
        /// each followed (in the input) by its label; its one public output is the number
        /// of samples whose argmax equals the label, its weights and input are hashed.
        /// `auto` (with --samples): the batch, a divisor of the dataset's size into at most
        /// 16 proofs, predicted to prove the whole dataset fastest within the memory
        /// budget. Prove it with `zkinfer certify`.
        #[arg(long, value_name = "N|auto", value_parser = parse_batch,
              conflicts_with_all = ["params", "input", "output", "segments", "aggregate"])]
        certify: Option<BatchArg>,
        /// With `--certify auto`: how many samples the dataset to certify has.
        #[arg(long, value_name = "M", requires = "certify",
              value_parser = clap::value_parser!(u32).range(1..))]
        samples: Option<u32>,
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
    /// Prove one inference; prints the output and per-stage timings. A segmented model
    /// gets one proof bundle; with --witness and --segment, one segment's proof (what a
    /// cluster worker runs).
    Prove {
        dir: PathBuf,
        #[arg(long, required_unless_present = "witness")]
        input: Option<PathBuf>,
        #[arg(long)]
        proof: PathBuf,
        /// Where to prove: the GPU build when a device answers (auto), or force one.
        #[arg(long, value_enum, default_value = "auto")]
        engine: EngineChoice,
        /// A segmented model: prove this many segments side by side (within the memory
        /// budget it was compiled for).
        #[arg(long, value_name = "N", default_value_t = 1)]
        jobs: usize,
        /// A segmented model's witness file (`zkinfer witness`), to prove --segment from.
        #[arg(long, requires = "segment", conflicts_with = "input")]
        witness: Option<PathBuf>,
        /// Prove only this segment (0-based) from --witness.
        #[arg(long, requires = "witness")]
        segment: Option<usize>,
    },
    /// A segmented model: run it on the input and write the boundary values between its
    /// segments, with fresh salts, for `prove --segment` (private: it holds activations).
    Witness {
        dir: PathBuf,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// A segmented model: check segment proofs (in order) and write them as one bundle.
    /// Exit 0 written, 1 if they do not verify and link.
    Bundle {
        dir: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(required = true)]
        proofs: Vec<PathBuf>,
    },
    /// Fold the model's proofs (one per segment, or its one circuit) into one proof with
    /// 13 public values (a KZG accumulator and the statement's Poseidon digest) that one
    /// contract verifies. Makes the aggregation keys (DIR/aggregate/) on first use.
    Aggregate {
        dir: PathBuf,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        proof: PathBuf,
        #[command(flatten)]
        circuit: AggregationCircuit,
    },
    /// One step of an aggregation, for a cluster (`aggregate` takes every step in one
    /// process; scripts/ray/prove_ray.py --aggregate runs these on Ray): --plan prints
    /// the tree's nodes as JSON; --segment I proves segment I from --witness as a part
    /// file; --node J folds node J from its parts' files (in `--plan`'s order) into a
    /// part file, or, for the root, into the aggregated proof, which it verifies (exit 1
    /// if it does not). A node's keys are made in DIR/aggregate/ where DIR lacks them,
    /// from the segment keys and its children's verifying keys.
    Fold {
        dir: PathBuf,
        /// Print the tree's nodes and what each folds (JSON).
        #[arg(long, conflicts_with_all = ["segment", "node"], required_unless_present_any = ["segment", "node"])]
        plan: bool,
        /// Prove this segment (0-based) for aggregation, from --witness.
        #[arg(long, requires_all = ["witness", "out"], conflicts_with = "node")]
        segment: Option<usize>,
        /// The model's witness (`zkinfer witness`), with --segment.
        #[arg(long, requires = "segment")]
        witness: Option<PathBuf>,
        /// Fold this node (0-based, leaves first; the last is the root) from PARTS.
        #[arg(long, requires = "out")]
        node: Option<usize>,
        /// Where to write the part file (the aggregated proof, for the root).
        #[arg(long)]
        out: Option<PathBuf>,
        /// With --node: the part files of what the node folds, in order.
        #[arg(requires = "node")]
        parts: Vec<PathBuf>,
        #[command(flatten)]
        circuit: AggregationCircuit,
    },
    /// Recompute the aggregate id of DIR from its segments' verifying keys (the
    /// aggregation circuit's verifying key; no proving key), to pin aggregated proofs of a
    /// trusted model id. Exit 1 when DIR/aggregate/vk has another id.
    AggregateId {
        dir: PathBuf,
        #[command(flatten)]
        circuit: AggregationCircuit,
    },
    /// Verify a proof: exit 0 valid, 1 invalid, 2 error. Prints the SRS fingerprint, and a
    /// warning for keys made with --dev-srs.
    Verify {
        dir: PathBuf,
        #[arg(long)]
        proof: PathBuf,
        /// Also require this model commitment (as `zkinfer model-id` prints it; for an
        /// aggregated proof, the aggregate id `zkinfer aggregate` prints).
        #[arg(long)]
        model_id: Option<String>,
        /// A certificate: also require it to be of this labelled dataset (EZKL's input
        /// JSON plus `labels`), recomputing its dataset id.
        #[arg(long)]
        dataset: Option<PathBuf>,
    },
    /// Prove every batch of a labelled dataset with a certificate circuit (`compile
    /// --certify N`) and write the certificate: "model 0x… classifies c/n of dataset 0x…",
    /// the count computed in the circuit. `verify` checks it.
    Certify {
        dir: PathBuf,
        /// The samples and their labels: {"input_data": [[...], ...], "labels": [...]}; a
        /// multiple of the circuit's batch.
        #[arg(long)]
        dataset: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Write DIR's compiled circuit with its hashed weights replaced (every weight one
    /// value of their width, every bias and constant 0) to OUT/circuit.json, to publish:
    /// `setup OUT` then makes keys whose model id has DIR's digest (the part before `:`),
    /// so an auditor reproduces the key of a hidden model and reads what its circuit
    /// computes. Hashed weights only.
    Redact {
        dir: PathBuf,
        #[arg(long)]
        out: PathBuf,
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
    /// Write the calldata for the Solidity verifier: instances, then proof bytes. For a
    /// certificate, the call `certify(bytes[])` of its CertificateVerifier with every batch.
    EncodeCalldata {
        #[arg(long)]
        proof: PathBuf,
        /// Binary output file (default: 0x-hex on stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Verify a proof in an in-process EVM: compile the Solidity verifier, deploy, call.
    /// A certificate: one call of its CertificateVerifier, which verifies every batch and
    /// returns the claim. Exit 0 accepted, 1 rejected, 2 error.
    VerifyEvm {
        dir: PathBuf,
        #[arg(long)]
        proof: PathBuf,
        /// Also require this model commitment: the contract is compiled from DIR's key,
        /// so this pins its constants too.
        #[arg(long)]
        model_id: Option<String>,
        /// A certificate: also require the dataset id the contract returns to be this
        /// labelled dataset's.
        #[arg(long)]
        dataset: Option<PathBuf>,
    },
    /// Run compile, setup, prove and verify on an embedded example model.
    Demo {
        /// Where to write the artifacts (default: a temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// The SRS and size of an aggregation circuit.
#[derive(Args)]
struct AggregationCircuit {
    /// The trusted setup for the aggregation circuit (the same ceremony as the model's
    /// keys), with at least 2^k powers.
    #[arg(long, conflicts_with = "dev_srs")]
    srs: Option<PathBuf>,
    /// Use the deterministic, publicly known SRS. INSECURE: proofs can be forged.
    #[arg(long)]
    dev_srs: bool,
    /// The aggregation circuit has 2^k rows (fewer rows, more columns: more gas).
    #[arg(long, default_value_t = 21, value_parser = clap::value_parser!(u32).range(18..=25))]
    k: u32,
    /// Fold in a tree of aggregation circuits, this many segments a leaf (each circuit
    /// verifies fewer proofs: less memory, and a tree level's nodes are independent).
    /// Default: one circuit folds every segment (for `aggregate-id`: the tree of
    /// DIR/aggregate/vk)
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
    leaf: Option<u64>,
    /// With --leaf: this many nodes a parent node of the tree
    #[arg(long, default_value_t = 2, requires = "leaf", value_parser = clap::value_parser!(u64).range(2..=64))]
    arity: u64,
}

impl AggregationCircuit {
    fn folding(&self) -> aggregate::Folding<'_> {
        aggregate::Folding {
            srs: self.srs.as_deref(),
            dev: self.dev_srs,
            k: self.k,
            leaf: self.leaf.map(|l| l as usize),
            arity: self.arity as usize,
        }
    }
}

/// Exit 0 for valid, 1 for invalid.
fn verdict(valid: bool) -> ExitCode {
    if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// This machine's memory in MB (`MemTotal` of `/proc/meminfo`), where it can be read.
fn machine_memory_mb() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1000.0)
}

/// A memory budget in MB: a positive number.
fn positive_mb(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(mb) if mb > 0.0 && mb.is_finite() => Ok(mb),
        _ => Err(format!("`{s}` is not a positive number of megabytes")),
    }
}

/// `--certify`'s value: a batch size, or `auto`.
#[derive(Clone, Copy, Debug)]
enum BatchArg {
    Fixed(usize),
    Auto,
}

fn parse_batch(s: &str) -> Result<BatchArg, String> {
    match s {
        "auto" => Ok(BatchArg::Auto),
        _ => match s.parse::<usize>() {
            Ok(n) if n > 0 => Ok(BatchArg::Fixed(n)),
            _ => Err(format!("`{s}` is neither a positive batch size nor `auto`")),
        },
    }
}

/// The certificate batch of `--certify` and `--samples`.
fn certificate_batch(
    certify: Option<BatchArg>,
    samples: Option<u32>,
) -> anyhow::Result<Option<Batch>> {
    Ok(match (certify, samples) {
        (None, _) => None,
        (Some(BatchArg::Fixed(n)), None) => Some(Batch::Fixed(n)),
        (Some(BatchArg::Auto), Some(m)) => Some(Batch::Fit {
            samples: m as usize,
        }),
        (Some(BatchArg::Fixed(_)), Some(_)) => {
            anyhow::bail!("--samples is for --certify auto; --certify N fixes the batch")
        }
        (Some(BatchArg::Auto), None) => {
            anyhow::bail!("--certify auto needs --samples: the size of the dataset to certify")
        }
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Compile {
            model,
            calibration,
            out,
            bits,
            weight_bits,
            table_bits,
            no_per_tensor,
            target,
            params,
            input,
            output,
            max_memory,
            segments,
            linear,
            range,
            aggregate,
            certify,
            samples,
        } => match certificate_batch(certify, samples) {
            Err(e) => Err(e),
            Ok(certificate) => {
                let max_memory = match max_memory {
                    Some(mb) => {
                        println!("memory budget {mb:.0} MB (--max-memory)");
                        Some(mb)
                    }
                    None => machine_memory_mb().map(|total| {
                        let mb = total * 0.8;
                        println!(
                            "memory budget {mb:.0} MB: 80% of this machine's {total:.0} MB \
                         (--max-memory to change)"
                        );
                        mb
                    }),
                };
                let options = CompileOptions {
                    bits: match target {
                        Some(t) => Bits::Target(t),
                        None => bits.map_or(Bits::Widest, Bits::Fixed),
                    },
                    visibility: Visibility {
                        params,
                        input,
                        output,
                    },
                    max_memory_mb: max_memory,
                    min_segments: segments.max(1),
                    linear,
                    range,
                    objective: if aggregate {
                        Objective::Aggregate
                    } else {
                        Objective::Prove
                    },
                    weight_bits,
                    table_bits,
                    per_tensor: !no_per_tensor,
                    certificate,
                };
                commands::compile(&model, &calibration, &out, &options).map(|_| ExitCode::SUCCESS)
            }
        },
        Command::ModelId { dir } => commands::model_id(&dir).map(|_| ExitCode::SUCCESS),
        Command::Setup { dir, srs, dev_srs } => {
            commands::setup(&dir, srs.as_deref(), dev_srs).map(|_| ExitCode::SUCCESS)
        }
        Command::Prove {
            dir,
            input,
            proof,
            engine,
            jobs,
            witness,
            segment,
        } => match (input, witness, segment) {
            (_, Some(w), Some(i)) => engines::prove_segment(engine, &dir, &w, i, &proof),
            (Some(input), _, _) => engines::prove(engine, &dir, &input, &proof, jobs),
            _ => Err(anyhow::anyhow!("give --input, or --witness with --segment")),
        }
        .map(|_| ExitCode::SUCCESS),
        Command::Witness { dir, input, out } => {
            segmented::witness(&dir, &input, &out).map(|_| ExitCode::SUCCESS)
        }
        Command::Bundle { dir, out, proofs } => segmented::bundle(&dir, &proofs, &out).map(verdict),
        Command::Aggregate {
            dir,
            input,
            proof,
            circuit: c,
        } => aggregate::aggregate(&dir, &input, &proof, &c.folding()).map(|_| ExitCode::SUCCESS),
        Command::Fold {
            dir,
            plan,
            segment,
            witness,
            node,
            out,
            parts,
            circuit: c,
        } => match (plan, segment, witness, node, out) {
            (true, ..) => fold::plan(&dir, &c.folding()).map(|_| ExitCode::SUCCESS),
            (_, Some(i), Some(w), _, Some(out)) => {
                fold::fold_segment(&dir, i, &w, &out).map(|_| ExitCode::SUCCESS)
            }
            (_, _, _, Some(j), Some(out)) => {
                fold::fold_node(&dir, j, &parts, &out, &c.folding()).map(verdict)
            }
            _ => Err(anyhow::anyhow!(
                "give --plan, --segment I --witness W --out PART, or --node J --out OUT PART..."
            )),
        },
        Command::AggregateId { dir, circuit: c } => {
            aggregate::aggregate_id(&dir, &c.folding()).map(verdict)
        }
        Command::Verify {
            dir,
            proof,
            model_id,
            dataset,
        } if certify::is_certificate_file(&proof) => {
            certify::verify(&dir, &proof, model_id.as_deref(), dataset.as_deref()).map(verdict)
        }
        Command::Verify {
            dataset: Some(_), ..
        } => Err(anyhow::anyhow!(
            "--dataset checks a certificate; this proof file is not one"
        )),
        Command::Verify {
            dir,
            proof,
            model_id,
            ..
        } if aggregate::is_aggregate(&proof) => {
            aggregate::verify(&dir, &proof, model_id.as_deref()).map(verdict)
        }
        Command::Verify {
            dir,
            proof,
            model_id,
            ..
        } => commands::verify(&dir, &proof, model_id.as_deref()).map(verdict),
        Command::Redact { dir, out } => certify::redact(&dir, &out).map(|_| ExitCode::SUCCESS),
        Command::Certify { dir, dataset, out } => {
            certify::certify(&zkinfer_prover::CpuEngine, &dir, &dataset, &out)
                .map(|_| ExitCode::SUCCESS)
        }
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
            dataset,
        } if certify::is_certificate_file(&proof) => {
            certify::verify_evm(&dir, &proof, model_id.as_deref(), dataset.as_deref()).map(verdict)
        }
        Command::VerifyEvm {
            dataset: Some(_), ..
        } => Err(anyhow::anyhow!(
            "--dataset checks a certificate; this proof file is not one"
        )),
        Command::VerifyEvm {
            dir,
            proof,
            model_id,
            ..
        } if aggregate::is_aggregate(&proof) => {
            aggregate::verify_evm(&dir, &proof, model_id.as_deref()).map(verdict)
        }
        Command::VerifyEvm {
            dir,
            proof,
            model_id,
            ..
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
