#![no_main]
//! `fawkes::__fuzz::router`; the checks are documented there.

libfuzzer_sys::fuzz_target!(|data: &[u8]| fawkes::__fuzz::router(data));
