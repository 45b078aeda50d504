//! `ca-core`: the certificate authority engine of the national eID PKI.
//!
//! It owns the registry model (identities and cards), the certificate policy
//! and its enforcement, CSR checking, certificate building and pre-issuance
//! linting, signing through a pluggable [`keys::Signer`], storage on SQLite
//! or PostgreSQL, and the hash-chained audit log. Services (OCSP responder,
//! CRL publisher, scheduler) and the `pki-admin` CLI are thin layers on it.
//! How the crates fit together: `docs/ARCHITECTURE.md`.
//!
//! ## Module map (one job per module)
//!
//! | part | module | job |
//! | --- | --- | --- |
//! | shared | [`config`] | `pki.toml` and its defaults; the one resolution rule ([`config::Config::resolve`]); key directories and passphrases |
//! | shared | [`domain`] | the closed vocabulary (kinds, statuses, [`domain::Reason`] and its codes, audit actions), one spelling from row to wire |
//! | shared | [`error`] | [`CaError`], the errors an operator acts on |
//! | shared | [`clock`] | the injected clock ([`clock::from_env`]) |
//! | shared | [`test_hooks`] | `PKI_FAKE_NOW` and the CRL publisher's crash hook, honoured only with debug assertions |
//! | shared | [`input`] | CSV and JSON Lines records of operators' files, with line numbers |
//! | shared | [`ca`] | [`Ca`], the context: configuration, policy, clock, both key stores, database |
//! | store | [`storage`] | diesel on SQLite or PostgreSQL, migrations, [`storage::Db::write`] (the write door), `with_conn!` |
//! | store | [`audit`] | the hash chain: records appended in each write transaction, [`audit::verify`] |
//! | store | [`feed`] | the change feed: audit records as typed events for the status services |
//! | store | [`certificates`] | the certificate store: find, list, insert |
//! | CA | [`keys`] | the [`keys::Signer`] trait, key stores, encrypted software keys |
//! | CA | [`policy`] | the profiles of `policies/profiles.toml`, loaded and resolved |
//! | CA | [`x509`] | names, extensions, times, CSR checking, TBS building, the pre-issuance linter |
//! | CA | [`authority`] | the stored CAs; loading one opens its key |
//! | CA | [`hierarchy`] | `init`: root, issuing CAs, responder certificates; responder rotation |
//! | CA | [`mint`] | the signing door: build, lint, sign every certificate ([`mint::mint`]) |
//! | CA | [`issuance`] | card certificates from CSRs: plan, mint, commit ([`issuance::issue_one`]) |
//! | CA | [`batch`] | bureau batches: resumable, every line recorded with its certificate |
//! | CA | [`renewal`] | kiosk renewal: a new certificate, the old one superseded in the same transaction |
//! | registration | [`registry`] | the registry's identities and their import |
//! | registration | [`cards`] | identity and residence cards |
//! | registration | [`eligibility`] | who may hold, activate and renew certificates, each rule once |
//! | registration | [`blocked_keys`] | keys never certified again (compromise, or by hand) |
//! | lifecycle | [`events`] | registry events checked and planned into requests ([`events::check`]) |
//! | lifecycle | [`requests`] | revocation requests: recorded, armed, executed when due |
//! | lifecycle | [`lifecycle`] | the state machine ([`lifecycle::next_status`]) and its application |
//! | lifecycle | [`revocation`] | officers' direct revoke, suspend and resume, recorded as executed requests |
//! | lifecycle | [`published`] | how a stored status is published in OCSP and CRLs ([`published::published_status`]) |
//! | lifecycle | [`reminders`] | expiry reminders: the decision and the outbox |
//! | lifecycle | [`sla`] | the revocation commitment measured per request |
//! | demo | [`sample`] | sample identities, cards and CSRs for the demo and benchmarks |

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
pub mod lookup;
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
