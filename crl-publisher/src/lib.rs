//! # `crl-publisher`: the CRLs of the national eID CA
//!
//! For every issuing CA it publishes RFC 5280 version 2 CRLs, one per CRL
//! partition (`[crl] partitions` of `pki.toml`, one by default), each with a
//! delta CRL; for the root it publishes the authority revocation list (ARL)
//! of the issuing CA certificates. They are written atomically into a
//! publication directory, with the CA certificates (`<ca>.cer`, the
//! caIssuers files); `crl-server` (a separate binary that opens no key)
//! serves that directory over HTTP on the paths written into the
//! certificates, and a web server or CDN can mirror it.
//!
//! ## What a CRL contains
//! * version 2, the issuer's subject byte for byte, `thisUpdate`,
//!   `nextUpdate` (UTCTime through 2049);
//! * entries in serial order: serial, revocation date, `reasonCode` (never
//!   `unspecified`: a revocation without a reason has no reason code; a
//!   suspension or a certificate on hold pending activation is
//!   `certificateHold`), `invalidityDate` when known; no empty list (the
//!   field is left out when there is no entry);
//! * extensions: authorityKeyIdentifier equal to the issuer's stored subject
//!   key identifier, cRLNumber, a critical issuingDistributionPoint naming
//!   the URL of the partition (the ARL: `onlyContainsCACerts` and no name,
//!   so that it also covers the self-signed root), and in
//!   complete CRLs of issuing CAs the freshestCRL pointer to their delta CRL;
//!   a delta CRL carries a critical deltaCRLIndicator with its base number
//!   and lists `removeFromCRL` for what left the list since its base
//!   (a resumed suspension, an activated certificate, an expired entry).
//!
//! Settings, the HTTP interface and the design are described in
//! `crl-publisher/README.md`.
//!
//! ## Module map (one job per module)
//!
//! | module | job |
//! | --- | --- |
//! | [`scope`] | what a CRL covers (issuer, partition, complete/delta/ARL), its URL and file name |
//! | [`entries`] | streams the listed certificates from the database in keyset pages; [`entries::EntryView::entry_facts`] asks the core's published-status rule |
//! | [`encode`] | DER of entries, extensions and the signed CertificateList, written straight into one buffer (no list of entry objects) |
//! | [`state`] | CRL numbers (reserved before signing) and publication records |
//! | [`scan`] | streaming reader of published CRLs (delta bases, checks) |
//! | [`generate`] | builds and signs complete and delta CRLs ([`Publisher`]; opens the CA keys) |
//! | [`publish`] | atomic file publication and the database record |
//! | [`schedule`] | settings, durations, cron schedule and debouncing |
//! | [`catalog`] | the CRLs published by this process, health and Prometheus metrics |
//! | [`status`] | the status file `crl-server` reads for `/health` and `/metrics` |
//! | [`ca_certs`] | the CA certificates (`<ca>.cer`) in the publication directory |
//! | [`service`] | the publisher loop: change feed ([`service::Service::tick`]), schedule, jobs |
//! | [`fetch`] | reading the current CRLs back (files or HTTP) and checking their signature, for `pki-admin crl` |
//! | [`error`] | [`CrlError`] |
//!
//! ## Numbering
//! One CRL number sequence per issuer, shared by its complete and delta CRLs
//! of every partition (so numbers increase within every scope, as RFC 5280
//! requires). A number is reserved in the database (`crl_numbers`) in its own
//! committed transaction *before* the CRL is signed. Publishing a signed CRL
//! is a second transaction that refuses it if the scope already has a newer
//! one (in the database or on disk) and renames the file while it holds the
//! database's writer lock. A crash after signing only skips a number; two
//! publishers started by mistake never publish the same number, and never
//! replace a CRL by an older one.

pub mod ca_certs;
pub mod catalog;
pub mod encode;
pub mod entries;
pub mod error;
pub mod fetch;
pub mod generate;
pub mod publish;
pub mod scan;
pub mod schedule;
pub mod scope;
pub mod service;
pub mod state;
pub mod status;

pub use error::{CrlError, Result};
pub use generate::Publisher;
pub use publish::Generated;
pub use schedule::Settings;
pub use scope::{Kind, Scope};
