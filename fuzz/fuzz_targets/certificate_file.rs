//! A capability certificate: parsing it and verifying it against a certificate circuit's
//! key (`ZKINFER_FUZZ_CERTIFICATE_DIR`, set by scripts/fuzz.sh: its `vk`) must never
//! panic, whatever the bytes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use zkinfer_verifier::{verify_certificate, CertificateFile, VerifierKey};

fn key() -> Option<&'static VerifierKey> {
    static KEY: OnceLock<Option<VerifierKey>> = OnceLock::new();
    KEY.get_or_init(|| {
        let dir = std::path::PathBuf::from(std::env::var_os("ZKINFER_FUZZ_CERTIFICATE_DIR")?);
        VerifierKey::from_bytes(&std::fs::read(dir.join("vk")).ok()?).ok()
    })
    .as_ref()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = zkinfer_verifier::is_certificate(text);
    if let Ok(cert) = CertificateFile::parse(text) {
        let _ = cert.to_json();
        if let Some(key) = key() {
            let _ = verify_certificate(key, &cert);
        }
    }
});
