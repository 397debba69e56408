//! libFuzzer entry point for [`ensemble_fuzz::txn_apply`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ensemble_fuzz::txn_apply(data));
