//! Compile-time checks of `fawkes::router!` and `fawkes::live::html!`: what they accept, and the
//! error they give, pointing at the user's own code, for each mistake they catch.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
