//! A compiled circuit (`circuit.json`): loading it (which validates the model and its
//! layout) must never panic; one that loads must give a statement.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zkinfer_prover::CompiledCircuit;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = CompiledCircuit::from_json(data) {
        let _ = c.info();
    }
});
