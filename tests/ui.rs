//! Compile errors: one case per message, with its expected `.stderr`
//! (`TRYBUILD=overwrite cargo test --test ui` re-blesses), and programs that must build
//! warning-free under strict lints.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/**/*.rs");
    t.pass("tests/ui-pass/*.rs");
}
