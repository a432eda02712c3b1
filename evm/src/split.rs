//! Splitting a generated verifier across contracts so that each fits EIP-170.
//!
//! snark-verifier's verifier is straight-line assembly whose whole state is EVM memory
//! plus a `success` flag; its code grows with the number of public values
//! (about 180 bytes each), so a model with 784 public inputs needs ~160 KB of code. The
//! code is a sequence of top-level statements, so it can be cut between any two of them:
//!
//! - part *i* (`Halo2VerifierPart{i}`) runs a slice of the statements. It takes the proof
//!   calldata followed by the memory image that part *i−1* returned, restores the image,
//!   runs, reverts if any check failed, and returns its memory image (the last part
//!   returns empty, exactly as the unsplit verifier does);
//! - `Halo2Verifier` holds the parts' addresses and chains them with `staticcall`,
//!   reusing one buffer; it accepts only calldata of the exact proof length.
//!
//! A statement too big for one part (with thousands of public values, the unrolled batch
//! inversion alone exceeds the limit) is a flat block with one or two running variables;
//! it is cut into blocks that carry those variables through memory (`cut_blocks`).
//!
//! When the whole verifier fits in one part, it is emitted unchanged as `Halo2Verifier`.
//! `build_verifier` picks the part size by compiling.

use serde::{Deserialize, Serialize};

use crate::EvmError;

/// One contract of a verifier.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Contract {
    pub name: String,
    /// The contract's text (`contract Name { … }`), without license or pragma.
    pub code: String,
    /// It runs a single statement that cannot be cut (a part that is too big then
    /// cannot be made smaller).
    pub uncuttable: bool,
}

/// The Solidity verifier: its contracts in deployment order; the last is always
/// `Halo2Verifier`, the one to call.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SolidityVerifier {
    pub contracts: Vec<Contract>,
    /// Exact calldata length the verifier takes (public values and proof).
    pub calldata_len: usize,
}

pub(crate) const PRAGMA: &str = "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.19;\n";

impl SolidityVerifier {
    /// `true` when the verifier is split: `Halo2Verifier` then takes the parts'
    /// addresses, in order, as its constructor argument (`address[]`).
    pub fn is_split(&self) -> bool {
        self.contracts.len() > 1
    }

    /// One contract as a compilable source file.
    pub fn contract_source(&self, i: usize) -> String {
        format!("{PRAGMA}\n{}", self.contracts[i].code)
    }

    /// Every contract in one file.
    pub fn source(&self) -> String {
        self.source_with("")
    }

    /// Every contract in one file, as `export-solidity` writes it: headed by the model id
    /// and SRS fingerprint of the key whose constants it holds.
    pub fn source_for(&self, model_id: &str, srs_fingerprint: &str) -> String {
        self.source_with(&format!(
            "// The zkinfer verifier of model id {model_id}: its constants are that key's\n\
             // (KZG points of the SRS with fingerprint {srs_fingerprint}).\n"
        ))
    }

    fn source_with(&self, header: &str) -> String {
        let mut s = String::from(PRAGMA);
        s += header;
        if self.is_split() {
            s += &format!(
                "// zkinfer's verifier, split across {} contracts to fit EIP-170: deploy\n\
                 // Halo2VerifierPart0..{} in order, then Halo2Verifier with their addresses\n\
                 // (constructor argument address[]); call Halo2Verifier.\n",
                self.contracts.len(),
                self.contracts.len() - 2
            );
        }
        for c in &self.contracts {
            s += "\n";
            s += &c.code;
        }
        s
    }
}

pub(crate) fn unexpected(what: &str) -> EvmError {
    EvmError::Generate(format!(
        "unexpected shape of snark-verifier's code ({what}); cannot split it"
    ))
}

/// The index one past the `}` that closes the `{` at `open`.
pub(crate) fn matching_brace(code: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in code[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(open + i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// Top-level statements of an assembly body: blocks `{ … }` and single lines.
fn statements(body: &str) -> Result<Vec<&str>, EvmError> {
    let mut out = Vec::new();
    let mut rest = body.trim_start();
    while !rest.is_empty() {
        let end = if rest.starts_with('{') {
            matching_brace(rest, 0).ok_or_else(|| unexpected("unbalanced braces"))?
        } else if rest.starts_with("//") {
            rest.find('\n').unwrap_or(rest.len())
        } else {
            let line = rest.find('\n').unwrap_or(rest.len());
            if rest[..line].contains('{') {
                // `if … { … }` and the like: to the closing brace.
                let open = rest.find('{').unwrap_or(0);
                matching_brace(rest, open).ok_or_else(|| unexpected("unbalanced braces"))?
            } else {
                line
            }
        };
        let stmt = rest[..end].trim();
        if stmt.starts_with("let ") || stmt.starts_with("function ") {
            return Err(unexpected("a top-level variable would not survive a cut"));
        }
        if !stmt.starts_with("//") {
            out.push(stmt);
        }
        rest = rest[end..].trim_start();
    }
    Ok(out)
}

/// Cuts every flat block larger than `max` source bytes — `{ let a := …  let b  s1 s2 … }`
/// with one statement a line, no nested braces and at most two variables, as
/// snark-verifier writes its batch inversions and running products — into blocks that
/// carry their variables across the cut through the scratch words 0x00 and 0x20 (which
/// the generated code never uses; they travel with the memory image).
fn cut_blocks(body: Vec<&str>, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    for stmt in body {
        let Some(inner) = flat_block(stmt).filter(|_| stmt.len() > max) else {
            out.push(stmt.to_string());
            continue;
        };
        let lines: Vec<&str> = inner
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let decls = lines.iter().take_while(|l| l.starts_with("let ")).count();
        let vars: Vec<&str> = lines[..decls]
            .iter()
            .filter_map(|l| l[4..].split([' ', ':']).next())
            .collect();
        if vars.len() > 2 {
            out.push(stmt.to_string());
            continue;
        }
        let save: String = vars
            .iter()
            .enumerate()
            .map(|(j, v)| format!("mstore({}, {v})\n", 32 * j))
            .collect();
        let load: String = vars
            .iter()
            .enumerate()
            .map(|(j, v)| format!("let {v} := mload({})\n", 32 * j))
            .collect();
        let mut piece = format!("{{\n{}\n", lines[..decls].join("\n"));
        for line in &lines[decls..] {
            if piece.len() + line.len() > max {
                out.push(format!("{piece}{save}}}"));
                piece = format!("{{\n{load}");
            }
            piece += line;
            piece.push('\n');
        }
        out.push(format!("{piece}}}"));
    }
    out
}

/// The inside of a block `{ … }` with no nested braces.
fn flat_block(stmt: &str) -> Option<&str> {
    stmt.strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .filter(|s| !s.contains(['{', '}']))
}

/// Largest `calldataload(0x…)` offset + 32: the calldata length the code reads.
pub(crate) fn calldata_len(code: &str) -> Result<usize, EvmError> {
    code.match_indices("calldataload(0x")
        .map(|(i, m)| {
            let hex = &code[i + m.len()..];
            let end = hex.find(')').unwrap_or(0);
            usize::from_str_radix(&hex[..end], 16).map_err(|_| unexpected("calldata offset"))
        })
        .try_fold(0, |max, off| off.map(|o| max.max(o + 32)))
}

/// Cuts snark-verifier's `code` into parts of at most `part_bytes` of source each.
pub fn split(code: &str, part_bytes: usize) -> Result<SolidityVerifier, EvmError> {
    let calldata_len = calldata_len(code)?;
    // Prelude: memory check, `success`, moduli and `validate_ec_point`, up to the end of
    // that function; the body runs to the epilogue that reverts or returns.
    let asm = code
        .find("assembly (\"memory-safe\") {")
        .ok_or_else(|| unexpected("no assembly block"))?;
    let func = code
        .find("function validate_ec_point")
        .ok_or_else(|| unexpected("no validate_ec_point"))?;
    let func_end = matching_brace(code, func + code[func..].find('{').unwrap_or(0))
        .ok_or_else(|| unexpected("unbalanced braces"))?;
    let prelude = &code[asm + "assembly (\"memory-safe\") {".len()..func_end];
    let epilogue = code
        .rfind("// Revert if anything fails")
        .ok_or_else(|| unexpected("no epilogue"))?;
    let body = statements(&code[func_end..epilogue])?;
    let whole = body.iter().map(|s| s.len()).sum::<usize>();
    if whole <= part_bytes {
        let start = code
            .find("contract Halo2Verifier")
            .ok_or_else(|| unexpected("no contract"))?;
        return Ok(SolidityVerifier {
            contracts: vec![Contract {
                name: "Halo2Verifier".into(),
                code: code[start..].trim_end().to_string() + "\n",
                uncuttable: false,
            }],
            calldata_len,
        });
    }
    let body = cut_blocks(body, part_bytes);
    let mut parts: Vec<Vec<&str>> = vec![Vec::new()];
    let mut size = 0;
    for stmt in body.iter().map(String::as_str) {
        if size + stmt.len() > part_bytes && size > 0 {
            parts.push(Vec::new());
            size = 0;
        }
        size += stmt.len();
        if let Some(last) = parts.last_mut() {
            last.push(stmt);
        }
    }
    let n = parts.len();
    let mut contracts = Vec::new();
    for (i, stmts) in parts.iter().enumerate() {
        let name = format!("Halo2VerifierPart{i}");
        let finish = if i + 1 == n {
            "return(0, 0)".to_string()
        } else {
            "return(0, msize())".to_string()
        };
        let code = format!(
            "contract {name} {{\n    fallback(bytes calldata) external returns (bytes memory) {{\n        \
             assembly (\"memory-safe\") {{{prelude}\n\
             // Resume from the previous part's memory, appended to the proof calldata.\n\
             if gt(calldatasize(), {calldata_len}) {{ calldatacopy(0, {calldata_len}, sub(calldatasize(), {calldata_len})) }}\n\
             {}\n\
             if iszero(success) {{ revert(0, 0) }}\n\
             {finish}\n        }}\n    }}\n}}\n",
            stmts.join("\n")
        );
        contracts.push(Contract {
            name,
            code,
            uncuttable: stmts.len() == 1 && flat_block(stmts[0]).is_none(),
        });
    }
    let code = format!(
        r#"contract Halo2Verifier {{
    address[] private parts;

    constructor(address[] memory parts_) {{
        require(parts_.length == {n}, "expected {n} parts");
        parts = parts_;
    }}

    fallback(bytes calldata) external returns (bytes memory) {{
        assembly ("memory-safe") {{
            if iszero(eq(calldatasize(), {calldata_len})) {{ revert(0, 0) }}
            mstore(0, parts.slot)
            let slot := keccak256(0, 0x20)
            // One buffer: the proof calldata, then the running memory image.
            let buf := 0x80
            calldatacopy(buf, 0, {calldata_len})
            let len := {calldata_len}
            for {{ let i := 0 }} lt(i, {n}) {{ i := add(i, 1) }} {{
                if iszero(staticcall(gas(), sload(add(slot, i)), buf, len, 0, 0)) {{ revert(0, 0) }}
                returndatacopy(add(buf, {calldata_len}), 0, returndatasize())
                len := add({calldata_len}, returndatasize())
            }}
            return(0, 0)
        }}
    }}
}}
"#
    );
    contracts.push(Contract {
        name: "Halo2Verifier".into(),
        code,
        uncuttable: false,
    });
    Ok(SolidityVerifier {
        contracts,
        calldata_len,
    })
}
