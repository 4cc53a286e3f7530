#![no_main]
//! cargo fuzz target `rule`: see `bodies.rs`.

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::rule(data));
