//! libFuzzer entry point for [`ensemble_fuzz::rest_request`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ensemble_fuzz::rest_request(data));
