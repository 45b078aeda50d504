//! Test hooks of the binaries, compiled only into test builds.
//!
//! End-to-end tests drive the real binaries, and two things cannot be
//! driven from outside: the time (`PKI_FAKE_NOW`: certificates issued and
//! cards expired "years later") and a crash at one precise point
//! (`CRL_PUBLISHER_TEST_CRASH_AFTER_SIGN`). Anyone who can set an
//! environment variable of a production process must not get either: the
//! hooks exist only where `debug_assertions` is on (the `dev` and `test`
//! profiles, which the tests build). A cargo feature would not do: cargo
//! unifies features across the workspace, so `cargo build --release
//! --workspace` would switch on a feature that the test crate asks for.
//! The release profile keeps `debug-assertions = false` (workspace
//! `Cargo.toml`), and CI runs `scripts/check-release-hooks.sh`, which sets
//! both variables on the release binaries and checks they change nothing.
//! In a release binary a set variable is reported once on stderr and
//! otherwise ignored.

use chrono::{DateTime, Utc};

/// The fixed "now" asked by `PKI_FAKE_NOW` (RFC 3339), in a test build.
pub fn fake_now() -> Result<Option<DateTime<Utc>>, String> {
    let Some(s) = set("PKI_FAKE_NOW") else {
        return Ok(None);
    };
    if !cfg!(debug_assertions) {
        ignored("PKI_FAKE_NOW");
        return Ok(None);
    }
    DateTime::parse_from_rfc3339(&s)
        .map(|at| Some(at.with_timezone(&Utc)))
        .map_err(|e| format!("PKI_FAKE_NOW {s:?} is not an RFC 3339 time: {e}"))
}

/// `CRL_PUBLISHER_TEST_CRASH_AFTER_SIGN=1`, in a test build: the publisher
/// aborts right after signing its first CRL.
pub fn crash_after_sign() -> bool {
    match set("CRL_PUBLISHER_TEST_CRASH_AFTER_SIGN") {
        Some(v) if v != "0" => {
            if cfg!(debug_assertions) {
                true
            } else {
                ignored("CRL_PUBLISHER_TEST_CRASH_AFTER_SIGN");
                false
            }
        }
        _ => false,
    }
}

fn set(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn ignored(name: &str) {
    eprintln!("warning: {name} is set and ignored: test hooks exist only in test builds");
}
