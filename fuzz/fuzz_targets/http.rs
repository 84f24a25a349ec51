#![no_main]
//! `fawkes::__fuzz::http`; the checks are documented there.

libfuzzer_sys::fuzz_target!(|data: &[u8]| fawkes::__fuzz::http(data));
