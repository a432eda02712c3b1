//! What the command-line tests share: running `zkinfer` and reading its verdicts.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

pub fn zkinfer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zkinfer"))
        .args(args)
        .output()
        .expect("runs zkinfer")
}

/// Runs `zkinfer args`, which must succeed; returns its standard output.
pub fn ok(args: &[&str]) -> String {
    let out = zkinfer(args);
    assert!(
        out.status.success(),
        "zkinfer {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The verifying key's header (JSON) and the offset of its body.
pub fn vk_parts(vk: &[u8]) -> (serde_json::Value, usize) {
    let len = u32::from_le_bytes(vk[12..16].try_into().unwrap()) as usize;
    (serde_json::from_slice(&vk[16..16 + len]).unwrap(), 16 + len)
}

/// Rewrites the header of `dir/vk` with `f`.
pub fn edit_header(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let vk = std::fs::read(dir.join("vk")).unwrap();
    let (mut header, body) = vk_parts(&vk);
    f(&mut header);
    let header = serde_json::to_vec(&header).unwrap();
    let mut out = vk[..12].to_vec();
    out.extend((header.len() as u32).to_le_bytes());
    out.extend(header);
    out.extend(&vk[body..]);
    std::fs::write(dir.join("vk"), out).unwrap();
}

/// `compile ONNX --calibration CALIBRATION --out DIR`, then `extra`.
pub fn compile_args<'a>(
    onnx: &'a Path,
    calibration: &'a Path,
    dir: &'a Path,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "compile",
        s(onnx),
        "--calibration",
        s(calibration),
        "--out",
        s(dir),
    ];
    args.extend_from_slice(extra);
    args
}
