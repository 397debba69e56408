//! libFuzzer entry point for [`ensemble_fuzz::key_store`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ensemble_fuzz::key_store(data));
