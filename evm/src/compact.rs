//! Shrinks snark-verifier's generated verifier: runs of statements that differ only in
//! offsets advancing in equal steps become loops that do the same work in the same order.
//!
//! The generated code is straight-line: every commitment of the proof is read by its own
//! seven-line block (load `x` and `y` from calldata, store them, validate the point),
//! and every evaluation by its own `mstore(m, mod(calldataload(c), f_q))`. A proof with
//! dozens of commitments and a hundred evaluations spends kilobytes of code on them,
//! which can take a verifier over EIP-170's limit (an aggregation verifier by about
//! 600 bytes). Two kinds of runs are folded:
//!
//! - commitment blocks whose calldata and memory offsets both advance by `0x40`;
//! - evaluation reads whose calldata and memory offsets both advance by `0x20`.
//!
//! Each loop reads the same calldata words into the same memory words, and validates the
//! same points, in the same order as the statements it replaces; calldata is read-only
//! and every statement of a run writes other memory than the run reads (calldata), so
//! the contract computes exactly what the generated one does. Anything else is kept as it
//! is, and a run shorter than [`MIN_RUN`] is not worth a loop. Each loop sits in a block
//! of its own, one top-level statement for the splitter ([`crate::split`]).

/// The fewest statements a loop replaces (a loop costs about three statements of code).
const MIN_RUN: usize = 4;

/// One foldable statement: its kind, calldata offset and memory offset.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// A commitment: `x` at `c`, `y` at `c + 0x20`, stored at `m` and `m + 0x20`.
    Point,
    /// An evaluation: `mod(calldataload(c), f_q)` stored at `m`.
    Scalar,
}

impl Kind {
    fn step(self) -> u64 {
        match self {
            Kind::Point => 0x40,
            Kind::Scalar => 0x20,
        }
    }

    /// The loop doing `n` statements from offsets `c` (calldata) and `m` (memory).
    /// (A run's offsets are representable: [`statement`] and [`compact`] checked them.)
    fn folded(self, c: u64, m: u64, n: usize) -> String {
        let len = n as u64 * self.step();
        match self {
            Kind::Point => format!(
                "{{\nfor {{ let i := 0 }} lt(i, {len:#x}) {{ i := add(i, 0x40) }} {{\n\
                 let x := calldataload(add({c:#x}, i))\n\
                 mstore(add({m:#x}, i), x)\n\
                 let y := calldataload(add({:#x}, i))\n\
                 mstore(add({:#x}, i), y)\n\
                 success := and(validate_ec_point(x, y), success)\n\
                 }}\n}}\n",
                c + 0x20,
                m + 0x20
            ),
            Kind::Scalar => format!(
                "{{\nfor {{ let i := 0 }} lt(i, {len:#x}) {{ i := add(i, 0x20) }} {{\n\
                 mstore(add({m:#x}, i), mod(calldataload(add({c:#x}, i)), f_q))\n\
                 }}\n}}\n"
            ),
        }
    }
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

/// `inner` of `pre inner post`, trimmed.
fn between<'a>(s: &'a str, pre: &str, post: &str) -> Option<&'a str> {
    s.strip_prefix(pre)?.strip_suffix(post).map(str::trim)
}

/// The foldable statement that starts at `lines[0]`, with how many lines it spans.
fn statement(lines: &[&str]) -> Option<(Kind, u64, u64, usize)> {
    let t = |i: usize| lines.get(i).map(|l| l.trim());
    if let Some((m, c)) = t(0)
        .and_then(|l| between(l, "mstore(", "), f_q))"))
        .and_then(|inner| inner.split_once(", mod(calldataload("))
    {
        return Some((Kind::Scalar, hex(c)?, hex(m)?, 1));
    }
    if t(0)? != "{" || t(6)? != "}" {
        return None;
    }
    let c = hex(between(t(1)?, "let x := calldataload(", ")")?)?;
    let m = hex(between(t(2)?, "mstore(", ", x)")?)?;
    let cy = hex(between(t(3)?, "let y := calldataload(", ")")?)?;
    let my = hex(between(t(4)?, "mstore(", ", y)")?)?;
    let next = |a: u64| a.checked_add(0x20);
    if Some(cy) != next(c)
        || Some(my) != next(m)
        || t(5)? != "success := and(validate_ec_point(x, y), success)"
    {
        return None;
    }
    Some((Kind::Point, c, m, 7))
}

/// `code` with its runs of commitment blocks and evaluation reads as loops.
pub fn compact(code: &str) -> String {
    let lines: Vec<&str> = code.lines().collect();
    let mut out = String::with_capacity(code.len());
    let mut i = 0;
    while i < lines.len() {
        let Some((kind, c, m, span)) = statement(&lines[i..]) else {
            out.push_str(lines[i]);
            out.push('\n');
            i += 1;
            continue;
        };
        // Extend the run while the next statement is of this kind, one step further on.
        let (mut n, mut end) = (1, i + span);
        while let Some((k, c2, m2, s2)) = statement(&lines[end..]) {
            let at = |a: u64| {
                (n as u64)
                    .checked_mul(kind.step())
                    .and_then(|d| a.checked_add(d))
            };
            if k != kind || Some(c2) != at(c) || Some(m2) != at(m) {
                break;
            }
            n += 1;
            end += s2;
        }
        if n >= MIN_RUN {
            out.push_str(&kind.folded(c, m, n));
        } else {
            for line in &lines[i..end] {
                out.push_str(line);
                out.push('\n');
            }
        }
        i = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(c: u64, m: u64) -> String {
        format!(
            "{{\n  let x := calldataload({c:#x})\n  mstore({m:#x}, x)\n  let y := calldataload({:#x})\n  mstore({:#x}, y)\n  success := and(validate_ec_point(x, y), success)\n}}\n",
            c + 0x20,
            m + 0x20
        )
    }

    fn scalar(c: u64, m: u64) -> String {
        format!("mstore({m:#x}, mod(calldataload({c:#x}), f_q))\n")
    }

    #[test]
    fn runs_in_step_become_loops_and_the_rest_stays() {
        let mut code = String::from("let f_q := 7\n");
        for i in 0..5 {
            code += &point(0x1a0 + 0x40 * i, 0x240 + 0x40 * i);
        }
        // A point out of step ends the run and, alone, stays as it is.
        code += &point(0x1000, 0x2000);
        code += "mstore(0x80, keccak256(0x0, 0x40))\n";
        for i in 0..4 {
            code += &scalar(0x500 + 0x20 * i, 0x900 + 0x20 * i);
        }
        // Three in step are too few for a loop.
        for i in 0..3 {
            code += &scalar(0x700 + 0x20 * i, 0xa00 + 0x20 * i);
        }
        let out = compact(&code);
        assert!(out.starts_with("let f_q := 7\n"));
        assert!(out.contains(
            "{\nfor { let i := 0 } lt(i, 0x140) { i := add(i, 0x40) } {\n\
             let x := calldataload(add(0x1a0, i))\nmstore(add(0x240, i), x)\n\
             let y := calldataload(add(0x1c0, i))\nmstore(add(0x260, i), y)\n"
        ));
        assert!(out.contains(&point(0x1000, 0x2000)));
        assert!(out.contains("mstore(0x80, keccak256(0x0, 0x40))\n"));
        assert!(out.contains(
            "{\nfor { let i := 0 } lt(i, 0x80) { i := add(i, 0x20) } {\n\
             mstore(add(0x900, i), mod(calldataload(add(0x500, i)), f_q))\n}\n}\n"
        ));
        for i in 0..3 {
            assert!(out.contains(&scalar(0x700 + 0x20 * i, 0xa00 + 0x20 * i)));
        }
        assert_eq!(out.matches("for {").count(), 2);
    }

    #[test]
    fn a_block_that_is_not_a_commitment_read_stays() {
        // y not at x + 0x20, or another check: not foldable.
        let odd = "{\n let x := calldataload(0x0)\n mstore(0x40, x)\n let y := calldataload(0x60)\n mstore(0x60, y)\n success := and(validate_ec_point(x, y), success)\n}\n";
        let code = odd.repeat(5);
        assert_eq!(compact(&code), code);
    }
}
