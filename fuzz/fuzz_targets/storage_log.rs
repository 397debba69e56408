//! libFuzzer entry point for [`ensemble_fuzz::storage_log`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ensemble_fuzz::storage_log(data));
