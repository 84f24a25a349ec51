//! Compile-time checks of `fawkes::router!`: what it accepts, and the error it gives, pointing at
//! the user's own token, for each mistake it catches.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
