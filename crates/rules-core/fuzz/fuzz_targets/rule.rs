#![no_main]
//! cargo fuzz target `rule`: see `bodies.rs`.

// Each target uses one of the bodies.
#[allow(dead_code)]
#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::rule(data));
