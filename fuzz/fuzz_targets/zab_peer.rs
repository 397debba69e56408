//! libFuzzer entry point for [`ensemble_fuzz::zab_peer`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ensemble_fuzz::zab_peer(data));
