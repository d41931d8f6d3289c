//! The one rule for tests whose prerequisite may be missing (Cassandra, root, a tool).
//!
//! `.ci/run` exports `CI=true`. There a missing prerequisite fails the test; elsewhere the
//! test is skipped with a line on the real stderr, which `cargo test` does not capture, so
//! a skip is always visible in the output (`SKIPPED <test>: <why>`).
//!
//! Included as `support::prereq` (through `tests/support/mod.rs`) or, by modules that do
//! not pull in `support`, with `#[path = "../support/prereq.rs"] mod prereq;`.
#![allow(dead_code)]

use std::io::Write as _;

/// True when the tests run in CI (`CI=true`, or `CI=1` as some runners set it).
pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// A prerequisite is missing: panics under CI, otherwise prints a visible skip line.
/// The caller returns right after (`return skip(...)` in a test returning `()`).
pub(crate) fn skip(why: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned();
    assert!(
        !in_ci(),
        "CI=true and a prerequisite is missing for {test}: {why}"
    );
    // Straight to fd 2: eprintln! would be captured (hidden) for a passing test.
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {why}");
}

/// `Some(v)` when `check` found the prerequisite; `None` after [`skip`] otherwise.
pub(crate) fn require<T>(check: Result<T, String>) -> Option<T> {
    match check {
        Ok(v) => Some(v),
        Err(why) => {
            skip(&why);
            None
        }
    }
}

/// True when the tests run as root (tmpfs mounts, namespaces, `nobody` probes).
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The path of `tool` on `PATH` or in the usual system directories.
pub(crate) fn find_tool(tool: &str) -> Result<std::path::PathBuf, String> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/lib/systemd", "/usr/lib/systemd"])
        .map(|d| std::path::Path::new(d).join(tool))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("{tool} is not installed"))
}
