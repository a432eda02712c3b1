//! A verifying-key file: reading it must never panic nor exhaust memory; a key that
//! reads must round-trip and give a model id, and checking a proof's statement against
//! it must not panic.
//!
//! Each input is tried twice: as a whole key file, and as the JSON header of the seed key
//! (`ZKINFER_FUZZ_VK`, set by scripts/fuzz.sh) over that key's body, so that the header —
//! shapes, scales, widths, layout, weights hash, all bound by the model id — is fuzzed as
//! JSON rather than only as the bytes of a container. The seed's proof
//! (`ZKINFER_FUZZ_PROOF`) is checked against every key that reads.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use zkinfer_verifier::artifact::{write_container, VK_MAGIC};
use zkinfer_verifier::{statement, ProofFile, VerifierKey};

fn seed<T>(var: &str, read: impl FnOnce(Vec<u8>) -> Option<T>) -> Option<T> {
    read(std::fs::read(std::env::var_os(var)?).ok()?)
}

/// The seed key's body (everything after its header).
fn body() -> Option<&'static [u8]> {
    static BODY: OnceLock<Option<Vec<u8>>> = OnceLock::new();
    BODY.get_or_init(|| {
        seed("ZKINFER_FUZZ_VK", |vk| {
            let len = u32::from_le_bytes(vk.get(12..16)?.try_into().ok()?) as usize;
            Some(vk.get(16 + len..)?.to_vec())
        })
    })
    .as_deref()
}

fn proof() -> Option<&'static ProofFile> {
    static PROOF: OnceLock<Option<ProofFile>> = OnceLock::new();
    PROOF
        .get_or_init(|| {
            seed("ZKINFER_FUZZ_PROOF", |p| {
                ProofFile::parse(std::str::from_utf8(&p).ok()?).ok()
            })
        })
        .as_ref()
}

fn check(bytes: &[u8]) {
    if let Ok(key) = VerifierKey::from_bytes(bytes) {
        let again = VerifierKey::from_bytes(&key.to_bytes()).map(|k| k.model_id());
        assert_eq!(again.ok(), Some(key.model_id()));
        let _ = key.info.public_values();
        if let Some(proof) = proof() {
            let _ = statement(&key, proof);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if let (Ok(header), Some(body)) = (serde_json::from_slice::<serde_json::Value>(data), body()) {
        check(&write_container(VK_MAGIC, &header, body));
    }
});
