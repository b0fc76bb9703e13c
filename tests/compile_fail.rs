//! Misuse that must not compile: derive mistakes, `Gc` across threads,
//! `Gc` of borrowed or untraceable data, mutation through or moving out of
//! a `Gc`, a foreign pointer type for `gc_coerce!`. Each case is one small
//! program in `tests/ui` with its expected error in the `.stderr` beside it
//! (regenerate with `TRYBUILD=overwrite`; the toolchain is pinned in
//! `rust-toolchain.toml` so they stay stable).

#[test]
#[cfg_attr(miri, ignore)]
fn misuse_does_not_compile() {
    // The pinned `.stderr` files match the pinned toolchain only; the
    // sanitizer runs use nightly and skip this test.
    if std::env::var_os("GCPTR_SKIP_UI").is_some() {
        return;
    }
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
