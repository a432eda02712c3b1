//! A proof bundle: parsing it and verifying it against a segmented model's keys
//! (`ZKINFER_FUZZ_BUNDLE_DIR`, set by scripts/fuzz.sh: `segment-<i>/vk`) must never
//! panic, whatever the bytes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use zkinfer_verifier::{verify_bundle, BundleFile, VerifierKey};

fn keys() -> &'static [VerifierKey] {
    static KEYS: OnceLock<Vec<VerifierKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let Some(dir) = std::env::var_os("ZKINFER_FUZZ_BUNDLE_DIR") else {
            return Vec::new();
        };
        let dir = std::path::PathBuf::from(dir);
        (0..)
            .map_while(|i| std::fs::read(dir.join(format!("segment-{i}/vk"))).ok())
            .filter_map(|b| VerifierKey::from_bytes(&b).ok())
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = zkinfer_verifier::is_bundle(text);
    if let Ok(bundle) = BundleFile::parse(text) {
        let _ = bundle.to_json();
        let keys = keys();
        let _ = verify_bundle(keys, &bundle);
        // Also against a prefix of the keys: the chain check comes first.
        if keys.len() > 1 {
            let _ = verify_bundle(&keys[..1], &bundle);
        }
    }
});
