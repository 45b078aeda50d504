//! # End-to-end test harness for `pki-admin`
//!
//! The tests in `tests/tests/*.rs` drive the real `pki-admin` binary, exactly as
//! an operator would, against both storage backends, and judge what it produces
//! with independent tools only:
//!
//! * **`openssl`** makes the PKCS#10 requests (the key types the card
//!   personalisation bureau sends, and bad ones), verifies every chain
//!   (`openssl verify`) and decodes certificates (`openssl x509 -text`).
//! * **pkilint** (installed in `<repo>/.venv` by `scripts/setup-test-tools.sh`)
//!   lints every certificate: `lint_pkix_cert`, `lint_pkix_signer_signee_cert_chain`
//!   and `lint_etsi_cert`. A test passes only with zero findings at ERROR or above.
//! * the databases themselves (`python3`'s `sqlite3`, `psql`) for the tests
//!   that tamper with the audit log.
//!
//! ## Locating the binary
//! `PKI_ADMIN_BIN` if set, else `pki-admin` in the profile directory of the
//! running test executable (`target/debug/deps/x` gives `target/debug/pki-admin`).
//! The Makefile builds the binaries before it runs the tests.
//!
//! ## One environment per test
//! [`TestEnv`] is a temporary directory holding a `pki.toml` (`data_dir` and
//! `database_url`, everything else default), with `PKI_CA_PASSPHRASE`,
//! `PKI_OCSP_PASSPHRASE` and `PKI_ACTOR=e2e` set for every command. Backends:
//! * SQLite: `sqlite://<tmp>/data/pki.sqlite`;
//! * PostgreSQL: the server at `PKI_TEST_POSTGRES_URL` (default
//!   [`DEFAULT_POSTGRES_URL`]); each test gets a fresh schema `t_<random>`
//!   (selected with `?options=-csearch_path%3Dt_<random>`), dropped at the end.
//!   When the server is unreachable the test fails if `CI` is set, and is
//!   otherwise skipped with `SKIPPED (PostgreSQL not reachable at ...)` on stderr.
//!
//! [`e2e_test!`] turns one test body into `<name>_sqlite` and `<name>_postgres`.
//! When a test panics its temporary directory is kept and its path printed.
//!
//! ## Modules
//! * `env`: binary location, [`TestEnv`], running `pki-admin`, SQL access;
//! * `registry`: [`Identity`], [`Card`] and their CSV / JSONL files;
//! * `csr`: CSRs by `openssl req` ([`KeyType`]), corrupted signatures;
//! * `x509`: `openssl x509` decoding and `openssl verify`;
//! * `lint`: the pkilint runners and [`ALLOWED_FINDINGS`];
//! * `checks`: [`check_card_certificate`], the hierarchy of `ca list`;
//! * `batch`: `issue-batch` manifests and results;
//! * `ocsp`: starting `ocsp-responder`, `openssl ocsp`, hand-built requests, `lint_ocsp_response`;
//! * `crl`: starting `crl-publisher`, fetching and checking CRLs, `lint_crl`;
//! * `smtp`: an aiosmtpd server that keeps what it receives, `pki-scheduler run-once`;
//! * `softhsm`: SoftHSM2 tokens of a test (its own `softhsm2.conf` and token
//!   directory), `[keys] backend = "pkcs11"`, `pkcs11-tool --list-objects`.

mod batch;
mod checks;
mod crl;
mod csr;
mod env;
mod lint;
mod ocsp;
mod registry;
#[cfg(test)]
mod selftest;
mod smtp;
mod softhsm;
mod x509;

pub use batch::*;
pub use checks::*;
pub use crl::*;
pub use csr::*;
pub use env::*;
pub use lint::*;
pub use ocsp::*;
pub use registry::*;
pub use serde_json::{json, Value};
pub use smtp::*;
pub use softhsm::*;
pub use x509::*;

// Shared by the modules (`use crate::*`).
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use chrono::{DateTime, Duration, NaiveDate, Utc};

/// The CA key passphrase every test environment uses.
pub const PASSPHRASE: &str = "e2e-test correct horse battery staple";
/// The OCSP responder key passphrase (a separate family of keys).
pub const OCSP_PASSPHRASE: &str = "e2e-test ocsp responder passphrase";
/// The actor recorded in the audit log by every test command.
pub const ACTOR: &str = "e2e";
/// PostgreSQL server used when `PKI_TEST_POSTGRES_URL` is not set.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// Default policy OID arc of the CA (policies/profiles.toml).
pub const POLICY_ARC: &str = "1.3.6.1.4.1.32473";

/// pkilint findings tolerated by every lint assertion: `(code, why)`.
/// Empty on purpose: certificates carry URLs on pki.example.com, so not even
/// `etsi.internal_domain_name` is expected. Add an entry only for a finding
/// that cannot be avoided, with the reason.
pub const ALLOWED_FINDINGS: &[(&str, &str)] = &[];
