//! libFuzzer entry point for [`ensemble_fuzz::storage_snapshot`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ensemble_fuzz::storage_snapshot(data));
