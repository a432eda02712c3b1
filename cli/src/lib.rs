//! The `zkinfer` command's subcommands, as a library so that the separate GPU build
//! (`zkinfer-cuda`) runs exactly the same proving flow with its own engine.
//! This crate is the only place that reads files, env vars and prints progress.

pub mod aggregate;
pub mod certify;
pub mod commands;
pub mod demo;
pub mod engines;
pub mod evm;
pub mod files;
pub mod fold;
pub mod progress;
pub mod segmented;
