//! libFuzzer entry point for [`ensemble_fuzz::peer_stream`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ensemble_fuzz::peer_stream(data));
