//! A verifying-key file: reading it must never panic nor exhaust memory; a key that
//! reads must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zkinfer_verifier::VerifierKey;

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = VerifierKey::from_bytes(data) {
        let again = VerifierKey::from_bytes(&key.to_bytes()).map(|k| k.model_id());
        assert_eq!(again.ok(), Some(key.model_id()));
    }
});
