//! Finding and running a Solidity compiler. Native `solc` and zkinfer's solc-js shim
//! (`scripts/solc/solc.js`, over the npm package) both take Standard JSON on stdin with
//! `--standard-json`, so one code path drives either.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::EvmError;

/// A Solidity compiler to run.
#[derive(Clone, Debug)]
pub struct Solc {
    pub program: PathBuf,
}

/// Compiled contract code.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bytecode {
    /// The creation transaction's data.
    #[serde(with = "hex::serde")]
    pub deployment: Vec<u8>,
    /// The code that ends up at the contract's address (what EIP-170 limits).
    #[serde(with = "hex::serde")]
    pub runtime: Vec<u8>,
}

/// The solc-js shim in a checkout of zkinfer (`scripts/install-solc.sh` installs solc-js).
fn checkout_solcjs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/solc/solc.js")
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

impl Solc {
    /// `ZKINFER_SOLC` if set; else a native `solc` on `PATH`; else the solc-js shim of
    /// this checkout, once `scripts/install-solc.sh` has installed solc-js.
    pub fn find() -> Result<Solc, EvmError> {
        if let Some(p) = std::env::var_os("ZKINFER_SOLC") {
            let program = PathBuf::from(p);
            if !program.is_file() {
                return Err(EvmError::Solc(format!(
                    "ZKINFER_SOLC={} is not a file",
                    program.display()
                )));
            }
            return Ok(Solc { program });
        }
        let shim = checkout_solcjs();
        let installed = shim
            .with_file_name("node_modules/solc/soljson.js")
            .is_file();
        on_path("solc")
            .or_else(|| Some(shim).filter(|p| p.is_file() && installed))
            .map(|program| Solc { program })
            .ok_or_else(|| {
                EvmError::Solc(
                    "no Solidity compiler found: put `solc` (0.8.19 or later) on PATH, set \
                     ZKINFER_SOLC, or install solc-js with scripts/install-solc.sh (npm)"
                        .into(),
                )
            })
    }

    /// Compiles the contracts `(source, name)`, each from its own source file, in one run
    /// of the compiler (solc-js spends about half a second starting; a split verifier
    /// has dozens of parts). The optimizer stays off: snark-verifier's generated assembly
    /// is already straight-line, and the optimizer's stack scheduling fails on it ("stack
    /// too deep").
    pub fn compile(&self, contracts: &[(String, &str)]) -> Result<Vec<Bytecode>, EvmError> {
        let file = |i: usize| format!("Verifier{i}.sol");
        let sources: serde_json::Map<String, Value> = contracts
            .iter()
            .enumerate()
            .map(|(i, (source, _))| (file(i), json!({ "content": source })))
            .collect();
        let input = json!({
            "language": "Solidity",
            "sources": sources,
            "settings": {
                "optimizer": { "enabled": false },
                "outputSelection": {
                    "*": { "*": ["evm.bytecode.object", "evm.deployedBytecode.object"] }
                }
            }
        });
        let who = self.program.display().to_string();
        let mut child = Command::new(&self.program)
            .arg("--standard-json")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| EvmError::Solc(format!("running {who}: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(input.to_string().as_bytes())
                .map_err(|e| EvmError::Solc(format!("writing to {who}: {e}")))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| EvmError::Solc(format!("running {who}: {e}")))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        // solc-js can print notes before the JSON document.
        let Some(v) = stdout
            .find('{')
            .and_then(|i| serde_json::from_str::<Value>(&stdout[i..]).ok())
        else {
            return Err(EvmError::Solc(format!(
                "{who} gave no Standard JSON output (exit {}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        };
        let errors: Vec<&str> = v["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["severity"] == "error")
            .filter_map(|e| e["formattedMessage"].as_str())
            .collect();
        if !errors.is_empty() {
            return Err(EvmError::Solc(format!(
                "{who} rejected the contract:\n{}",
                errors.join("\n")
            )));
        }
        contracts
            .iter()
            .enumerate()
            .map(|(i, (_, name))| {
                let contract = &v["contracts"][file(i)][*name]["evm"];
                let code = |field: &str| -> Result<Vec<u8>, EvmError> {
                    contract[field]["object"]
                        .as_str()
                        .and_then(|h| hex::decode(h).ok())
                        .filter(|b| !b.is_empty())
                        .ok_or_else(|| {
                            EvmError::Solc(format!("{who} returned no {field} for {name}"))
                        })
                };
                Ok(Bytecode {
                    deployment: code("bytecode")?,
                    runtime: code("deployedBytecode")?,
                })
            })
            .collect()
    }
}
