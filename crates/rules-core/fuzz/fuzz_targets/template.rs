#![no_main]
//! cargo fuzz target `template`: see `bodies.rs`.

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::template(data));
