//! `ca-core`: the certificate authority engine of the national eID PKI.
//!
//! It owns the registry model (identities and cards), the certificate policy
//! and its enforcement, CSR checking, certificate building and pre-issuance
//! linting, signing through a pluggable [`keys::Signer`], storage on SQLite
//! or PostgreSQL, and the hash-chained audit log. Services (OCSP responder,
//! CRL publisher, scheduler) and the `pki-admin` CLI are thin layers on it.

pub mod audit;
pub mod ca;
pub mod cards;
pub mod clock;
pub mod config;
pub mod domain;
pub mod eligibility;
pub mod error;
pub mod events;
pub mod feed;
pub mod input;
pub mod keys;
pub mod policy;
pub mod registry;
pub mod storage;
pub mod test_hooks;
pub mod x509;

pub use ca::Ca;
pub use error::CaError;
pub mod authority;
pub mod batch;
pub mod blocked_keys;
pub mod certificates;
pub mod hierarchy;
pub mod issuance;
pub mod lifecycle;
pub mod mint;
pub mod published;
pub mod reminders;
pub mod renewal;
pub mod requests;
pub mod revocation;
pub mod sample;
pub mod sla;
