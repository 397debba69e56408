//! libFuzzer entry point for [`ensemble_fuzz::apache_files`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ensemble_fuzz::apache_files(data));
