#![no_main]
//! `fawkes::__fuzz::session_cookie`; the checks are documented there.

libfuzzer_sys::fuzz_target!(|data: &[u8]| fawkes::__fuzz::session_cookie(data));
