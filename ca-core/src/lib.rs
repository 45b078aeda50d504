//! `ca-core`: the certificate authority of the national eID PKI, the part
//! that signs. It owns the certificate policy and its enforcement,
//! certificate building and pre-issuance linting, the signing door
//! ([`mint::mint`]), the hierarchy (`init`, responder rotation), card
//! certificate issuance, bureau batches and kiosk renewal. It stands on the
//! store (`pki-store`), the keys (`pki-keys`), the X.509 encoding
//! (`pki-x509`) and the registration and lifecycle rules
//! (`pki-registration`). Only CA-side processes (`pki-admin`) link it:
//! no network service does. How the crates fit together:
//! `docs/ARCHITECTURE.md`.
//!
//! ## Module map (one job per module)
//!
//! | module | job |
//! | --- | --- |
//! | [`ca`] | [`Ca`], the CA context: the store's context, the policy and both key stores |
//! | [`policy`] | the profiles of `policies/profiles.toml`, loaded and resolved |
//! | [`x509`] | the TBS builder and the pre-issuance linter, profile-driven |
//! | [`ceremony`] | key ceremonies from a declarative file: the offline root, issuing CAs, responders; plan, transcript |
//! | [`hierarchy`] | `init`: root, issuing CAs, responder certificates; responder rotation |
//! | [`issuer`] | the issuing side of a certificate ([`issuer::Issuer`]), named once |
//! | [`mint`] | the signing door: build, lint, sign every certificate ([`mint::mint`]) |
//! | [`issuance`] | card certificates from CSRs: plan, mint, commit ([`issuance::issue_one`]) |
//! | [`batch`] | bureau batches: resumable, every line recorded with its certificate |
//! | [`renewal`] | kiosk renewal: a new certificate, the old one superseded in the same transaction |

pub mod batch;
pub mod ca;
pub mod ceremony;
pub mod hierarchy;
pub mod issuance;
pub mod issuer;
pub mod mint;
pub mod policy;
pub mod renewal;
pub mod x509;

pub use ca::Ca;
