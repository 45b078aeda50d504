//! `pki-store`: the store layer of the national eID PKI, shared by every
//! process and holding no key.
//!
//! It owns the closed vocabulary, the configuration, the injected clock,
//! storage on SQLite or PostgreSQL with its one write door
//! ([`storage::Db::write`]), the hash-chained audit log and its reading as a
//! change feed, the certificate store, the stored CAs' rows and the one
//! published-status rule. The OCSP responder, the CRL publisher and the
//! scheduler depend on this crate (and the first two on `pki-keys` for
//! their own signing keys), never on the CA (`ca-core`). How the crates fit
//! together: `docs/ARCHITECTURE.md`.
//!
//! ## Module map (one job per module)
//!
//! | module | job |
//! | --- | --- |
//! | [`config`] | `pki.toml` and its defaults; the one resolution rule ([`config::Config::resolve`]); key directories and passphrases |
//! | [`domain`] | the closed vocabulary (kinds, statuses, [`domain::Reason`] and its codes, audit actions), one spelling from row to wire |
//! | [`error`] | [`CaError`], the errors an operator acts on |
//! | [`clock`] | the injected clock ([`clock::from_env`]) |
//! | [`test_hooks`] | `PKI_FAKE_NOW` and the CRL publisher's crash hook, honoured only with debug assertions |
//! | [`input`] | CSV and JSON Lines records of operators' files, with line numbers; every error of a file at once ([`input::Problems`]) |
//! | [`csv_out`] | CSV written by the project: cells neutralised against formula injection, quoted by the csv crate |
//! | [`fields`] | the rules of the fields operators bring: length limits, no control characters, e-mail (lettre), E.164 mobile |
//! | [`secrets`] | database URLs fit for messages ([`secrets::redact`]) and messages scrubbed of their secrets |
//! | [`logging`] | the services' one log set-up: stderr lines, own records at the chosen level |
//! | [`context`] | [`Context`]: configuration, clock, database, actor |
//! | [`storage`] | diesel on SQLite or PostgreSQL, migrations (applied by `pki-admin migrate` only; every other process checks the schema version), the components' PostgreSQL roles, [`storage::Db::write`] (the write door), `with_conn!` |
//! | [`audit`] | the hash chain: records appended in each write transaction, [`audit::verify`]; the Merkle tree over the records ([`audit::tree_head`], proofs) and its checks against checkpoints |
//! | [`merkle`] | RFC 9162 tree hashing: leaf and node hashes, the compact frontier, inclusion and consistency proofs |
//! | [`checkpoint`] | signed checkpoints of the tree: the text format and the write-once directory |
//! | [`files`] | the umask of every binary, private key directories, secret files refused when open to others |
//! | [`feed`] | the change feed: audit records as typed events for the status services |
//! | [`certificates`] | the certificate store: find, list, insert |
//! | [`lookup`] | identities and cards by key, one error for "unknown" |
//! | [`authorities`] | the stored CAs and their responder certificates (rows only) |
//! | [`urls`] | the published URLs: CRL distribution points and caIssuers |
//! | [`published`] | how a stored status is published in OCSP and CRLs ([`published::published_status`]) |

pub mod audit;
pub mod authorities;
pub mod certificates;
pub mod checkpoint;
pub mod clock;
pub mod config;
pub mod context;
pub mod csv_out;
pub mod domain;
pub mod error;
pub mod feed;
pub mod fields;
pub mod files;
pub mod input;
pub mod logging;
pub mod lookup;
pub mod merkle;
pub mod published;
pub mod secrets;
pub mod storage;
pub mod test_hooks;
pub mod urls;

pub use context::Context;
pub use error::CaError;
