//! libFuzzer entry point for [`ensemble_fuzz::spark_record`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ensemble_fuzz::spark_record(data));
