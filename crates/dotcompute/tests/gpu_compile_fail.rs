//! Misuse of `#[derive(GpuMessage)]` must stop the build with a message that
//! says what to change: no `#[repr(C)]`, a field type without a fixed C
//! layout (`String`, `Vec`, `bool`, a pointer, `usize`), an enum, implicit
//! padding, a nested type that is not a GPU message, a C++ keyword as a name.

#[test]
fn gpu_message_misuse_is_reported_readably() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui_gpu/*.rs");
}
