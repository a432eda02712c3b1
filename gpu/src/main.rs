//! `zkinfer-cuda`: proves zkinfer circuits on an NVIDIA GPU with `halo2-axiom-gpu`.
//!
//! The `zkinfer` CLI runs `zkinfer-cuda probe` to see whether a device answers, then
//! `zkinfer-cuda prove …` with the same arguments as its own `prove`. The proving flow
//! (files, witness, proof file, report) is the CLI's; only the engine differs, so
//! proofs verify with the standard verifier.

use std::ffi::CStr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use halo2_axiom_gpu::cuda::utils::HALO2_GPU_CTX;
use halo2_axiom_gpu::poly::kzg::commitment::{KZGCommitmentScheme, ParamsKZG as GpuParams};
use halo2_axiom_gpu::poly::kzg::multiopen::ProverSHPLONK;
use halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine};
use halo2_proofs::plonk::ProvingKey;
use halo2_proofs::poly::kzg::commitment::ParamsKZG;
use halo2_proofs::transcript::TranscriptWriterBuffer;
use halo2_proofs::SerdeFormat;
use openvm_cuda_common::copy::MemCopyH2D;
use rand::rngs::OsRng;
use zkinfer_prover::engine::ProofTranscript;
use zkinfer_prover::{Columns, Engine, ProveError};

#[derive(Parser)]
#[command(name = "zkinfer-cuda", version, about = "zkinfer's CUDA prover")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CUDA device that would prove; exit non-zero when none answers.
    Probe,
    /// Same as `zkinfer prove`, on the GPU.
    Prove {
        dir: PathBuf,
        #[arg(long, required_unless_present = "witness")]
        input: Option<PathBuf>,
        #[arg(long)]
        proof: PathBuf,
        /// A segmented model's witness file, to prove --segment from.
        #[arg(long, requires = "segment", conflicts_with = "input")]
        witness: Option<PathBuf>,
        #[arg(long, requires = "witness")]
        segment: Option<usize>,
        /// Print halo2-axiom-gpu's per-section timings (span close events) to stderr.
        #[arg(long)]
        profile: bool,
    },
}

/// The first CUDA device's name and memory, through the driver API.
fn probe() -> Result<String> {
    use cuda_driver_sys::*;
    // SAFETY: plain driver-API calls with valid out-pointers; no memory is shared.
    unsafe {
        let check = |r: CUresult, what: &str| -> Result<()> {
            if r != CUresult::CUDA_SUCCESS {
                bail!("{what} failed: {r:?}");
            }
            Ok(())
        };
        check(cuInit(0), "cuInit")?;
        let mut count = 0;
        check(cuDeviceGetCount(&mut count), "cuDeviceGetCount")?;
        if count == 0 {
            bail!("no CUDA device");
        }
        let mut dev = 0;
        check(cuDeviceGet(&mut dev, 0), "cuDeviceGet")?;
        let mut name = [0i8; 256];
        check(
            cuDeviceGetName(name.as_mut_ptr(), name.len() as i32, dev),
            "cuDeviceGetName",
        )?;
        let mut mem = 0usize;
        check(cuDeviceTotalMem_v2(&mut mem, dev), "cuDeviceTotalMem")?;
        let name = CStr::from_ptr(name.as_ptr()).to_string_lossy().into_owned();
        Ok(format!(
            "{name} ({:.1} GiB, CUDA device 0 of {count})",
            mem as f64 / (1u64 << 30) as f64
        ))
    }
}

/// halo2-axiom-gpu's prover: MSM, NTT, quotient, permutation/lookup products and the
/// SHPLONK opening on the device.
struct CudaEngine;

impl Engine for CudaEngine {
    fn name(&self) -> &'static str {
        "cuda"
    }

    fn create_proof(
        &self,
        params: &ParamsKZG<Bn256>,
        pk: &ProvingKey<G1Affine>,
        columns: Columns,
        instances: &[Fr],
    ) -> Result<Vec<u8>, ProveError> {
        let advice = match columns {
            Columns::Advice(advice) => advice,
            // halo2-axiom-gpu proves a circuit of its own `Circuit` trait through its
            // layouter path, or single-phase advice columns; a second phase drawn after
            // the first is committed needs the former.
            Columns::TwoPhase(_) => {
                return Err(ProveError::Prove(
                    "the CUDA engine proves single-phase circuits only; this circuit checks                      linear layers by Freivalds' argument (two phases): compile with                      --linear dot to prove it on the GPU, or prove it with --engine cpu"
                        .into(),
                ))
            }
        };
        // The GPU crate has its own parameter type with the same byte layout.
        let mut bytes = Vec::new();
        params
            .write_custom(&mut bytes, SerdeFormat::RawBytesUnchecked)
            .map_err(|e| ProveError::Srs(e.to_string()))?;
        let gpu_params =
            GpuParams::<Bn256>::read_custom(&mut &bytes[..], SerdeFormat::RawBytesUnchecked)
                .map_err(|e| ProveError::Srs(format!("GPU parameters: {e}")))?;
        // The witness columns go to the device once; the crate writes the blinding rows.
        let advice = advice
            .iter()
            .map(|column| column.to_device_on(&HALO2_GPU_CTX))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ProveError::Prove(format!("copying the witness to the GPU: {e}")))?;
        let mut transcript = ProofTranscript::init(Vec::new());
        halo2_axiom_gpu::plonk::create_proof_from_advice::<
            KZGCommitmentScheme<Bn256>,
            ProverSHPLONK<'_, Bn256>,
            _,
            _,
            _,
        >(
            &gpu_params,
            pk,
            &[instances],
            advice,
            OsRng,
            &mut transcript,
        )
        .map_err(|e| ProveError::Prove(format!("on the GPU: {e}")))?;
        Ok(transcript.finalize())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Probe => probe().map(|d| println!("{d}")),
        Command::Prove {
            dir,
            input,
            proof,
            profile,
            witness,
            segment,
        } => {
            if profile {
                tracing_subscriber::fmt()
                    .with_env_filter(tracing_subscriber::EnvFilter::new(
                        "halo2_axiom_gpu=info,halo2_perf=off",
                    ))
                    .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
                    .with_ansi(false)
                    .with_writer(std::io::stderr)
                    .init();
            }
            match (input, witness, segment) {
                (_, Some(w), Some(i)) => {
                    zkinfer::segmented::prove_segment(&CudaEngine, &dir, &w, i, &proof)
                }
                (Some(input), _, _) => zkinfer::commands::prove(&CudaEngine, &dir, &input, &proof),
                _ => Err(anyhow::anyhow!("give --input, or --witness with --segment")),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
