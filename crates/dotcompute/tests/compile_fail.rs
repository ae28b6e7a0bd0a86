//! Misuse of `#[derive(Message)]` and `#[ring_kernel]` must stop the build
//! with a message that says what to change.

#[test]
fn macro_misuse_is_reported_readably() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
