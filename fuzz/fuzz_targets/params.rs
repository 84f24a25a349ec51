#![no_main]
//! `fawkes::__fuzz::params`; the checks are documented there.

libfuzzer_sys::fuzz_target!(|data: &[u8]| fawkes::__fuzz::params(data));
