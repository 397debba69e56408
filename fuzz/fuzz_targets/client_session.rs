//! libFuzzer entry point for [`ensemble_fuzz::client_session`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ensemble_fuzz::client_session(data));
