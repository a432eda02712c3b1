//! A proof file: parsing, decoding its public values, and checking its statement and
//! proof against a fixed key (`ZKINFER_FUZZ_VK`, set by scripts/fuzz.sh) must never
//! panic, whatever the bytes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use zkinfer_verifier::{verify, ProofFile, VerifierKey};

fn key() -> Option<&'static VerifierKey> {
    static KEY: OnceLock<Option<VerifierKey>> = OnceLock::new();
    KEY.get_or_init(|| {
        let path = std::env::var_os("ZKINFER_FUZZ_VK")?;
        VerifierKey::from_bytes(&std::fs::read(path).ok()?).ok()
    })
    .as_ref()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(proof) = ProofFile::parse(text) {
        let _ = proof.public_values();
        let _ = proof.to_json();
        if let Some(key) = key() {
            let _ = verify(key, &proof);
        }
    }
});
