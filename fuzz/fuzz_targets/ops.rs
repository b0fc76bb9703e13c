//! Drives gcptr with programs of the model-based test's operation language
//! (`tests/model/machine.rs`), decoded from the fuzzer's bytes: the first
//! byte chooses the configuration (automatic collection off, or on with
//! small thresholds), each following operation takes a code byte and up to
//! three argument bytes. After every operation the real heap is checked
//! against the reference model; any disagreement panics, and so does every
//! memory error that the sanitizer (ASan, cargo-fuzz's default) sees.
#![no_main]

#[path = "../../tests/model/machine.rs"]
mod machine;

use libfuzzer_sys::fuzz_target;
use machine::{Config, Harness, Op};

/// Operations per input, so that a slow input cannot stall the fuzzer.
const MAX_OPS: usize = 400;

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    let config = Config::decode(&mut input);
    let mut ops = Vec::new();
    while let Some(op) = Op::decode(&mut input) {
        if ops.len() == MAX_OPS {
            break;
        }
        ops.push(op);
    }
    Harness::run(config, &ops);
});
