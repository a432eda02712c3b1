//! An aggregated proof: parsing it and verifying it against the committed fixture's keys
//! (`ZKINFER_FUZZ_AGGREGATE_DIR`, set by scripts/fuzz.sh: `segment-<i>/vk` and
//! `aggregate/vk`) must never panic, whatever the bytes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use zkinfer_aggregate::{verify, AggregateFile, AggregateVerifierKey};
use zkinfer_verifier::VerifierKey;

fn keys() -> &'static Option<(Vec<VerifierKey>, AggregateVerifierKey)> {
    static KEYS: OnceLock<Option<(Vec<VerifierKey>, AggregateVerifierKey)>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = std::path::PathBuf::from(std::env::var_os("ZKINFER_FUZZ_AGGREGATE_DIR")?);
        let keys = (0..)
            .map_while(|i| std::fs::read(dir.join(format!("segment-{i}/vk"))).ok())
            .filter_map(|b| VerifierKey::from_bytes(&b).ok())
            .collect();
        let avk = AggregateVerifierKey::from_bytes(&std::fs::read(dir.join("aggregate/vk")).ok()?)
            .ok()?;
        Some((keys, avk))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = AggregateFile::is_aggregate(text);
    if let Ok(file) = AggregateFile::parse(text) {
        let _ = file.to_json();
        let _ = file.public_values();
        if let Some((keys, avk)) = keys() {
            let _ = verify(keys, avk, &file);
            let _ = verify(&keys[..1], avk, &file);
        }
    }
});
