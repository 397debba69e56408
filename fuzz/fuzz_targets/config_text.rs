//! libFuzzer entry point for [`ensemble_fuzz::config_text`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ensemble_fuzz::config_text(data));
