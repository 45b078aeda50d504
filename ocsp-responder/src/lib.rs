//! # `ocsp-responder`: the OCSP service of the national eID CA
//!
//! An RFC 6960 responder with the RFC 5019 lightweight profile (GET and
//! POST over HTTP) for every CA of the hierarchy at once — the identity-card
//! CA, the residence-card CA and the root (for the status of the issuing
//! CAs). It answers from memory: every certificate's response is signed
//! ahead of time, re-signed when its status changes and refreshed well
//! before its `nextUpdate`; a revocation, suspension or resumption made with
//! `pki-admin` is served within about the poll interval (200 ms).
//!
//! ## Architecture (one job per module)
//!
//! | module | job |
//! | --- | --- |
//! | [`request`] | DER / GET-path decoding of requests, limits (CertIDs, nonce length) |
//! | [`response`] | building and signing `BasicOCSPResponse`s, error responses |
//! | [`der_header`] | DER tags and lengths written by hand to assemble signed answers from parts |
//! | [`issuers`] | the CAs served (CertID hashes) and their delegated responders (keys opened from the responder key store only) |
//! | [`store`] | the in-memory statuses and pre-signed responses; the bounded on-demand cache |
//! | [`source`] | the [`source::Source`] trait the HTTP layer calls, and [`source::MemorySource`] |
//! | [`refresher`] (`refresher/mod.rs`) | the database side: the background worker, its settings and error, the connection and degraded mode, the loop tying the parts below together |
//! | `refresher/load.rs` | start-up load: feed position, CAs and responders, every certificate's status; the status row and its answer |
//! | `refresher/follow.rs` | the change feed: changed statuses, CA creation and responder rotation, publication marks (`ocsp_publications`) |
//! | `refresher/sweep.rs` | the sweep (responses missing or due, gauges, expiry of cached answers) and the (pre-)signing of queued responses |
//! | [`http`] | actix-web routes, caching headers, limits and timeouts |
//! | [`metrics`] | Prometheus counters, histogram and gauges |
//! | [`settings`] | command-line flags and environment variables |
//!
//! ## Answers
//!
//! * `good`; `revoked` with time and reason (no reason code when the CA
//!   recorded none); suspended or not yet activated (`hold`): `revoked`
//!   with `certificateHold` (the core's one rule, `pki_store::published::published_status`);
//!   expired certificates keep their last status.
//! * A serial the CA never issued: `revoked`, 1970-01-01, `certificateHold`,
//!   with the extended revoked definition extension (RFC 6960 §4.4.8) —
//!   never `good`; signed on demand, cached (bounded).
//! * An issuer not served: `unauthorized`; a malformed request (garbage,
//!   truncated, empty, unsupported CertID hash, more than `--max-certids`
//!   CertIDs, a nonce of 0 or more than 128 octets): `malformedRequest`.
//! * Signed by the newest valid delegated responder certificate of the
//!   issuing CA (table `ocsp_responders`), included in `certs`; ResponderID
//!   by key hash; `nextUpdate` always present.
//! * A nonce (RFC 9654) gets a freshly signed response echoing it (unless
//!   `--nonce off`); several CertIDs in one request are signed together.
//!
//! ## Flags (each also an environment variable)
//!
//! | flag | env | default | meaning |
//! | --- | --- | --- | --- |
//! | `--config FILE` | `PKI_CONFIG` | `./pki.toml` or defaults | the CA's configuration: database, responder key directory and passphrase source (`PKI_OCSP_PASSPHRASE` or `keys.ocsp_passphrase_file`); no CA key is ever opened |
//! | `--listen ADDR` | `OCSP_LISTEN` | `127.0.0.1:8080` | port 0 picks a free port; the address is printed on stdout |
//! | `--validity D` | `OCSP_VALIDITY` | `12h` | `nextUpdate - thisUpdate` (10s..24h) |
//! | `--refresh-before D` | `OCSP_REFRESH_BEFORE` | `6h` | refresh this long before `nextUpdate`, spread over half as much again |
//! | `--nonce on\|off` | `OCSP_NONCE` | `on` | fresh signed answers for nonces |
//! | `--max-request-bytes N` | `OCSP_MAX_REQUEST_BYTES` | `16384` | larger bodies: 413 |
//! | `--max-certids N` | `OCSP_MAX_CERTIDS` | `10` | more CertIDs: `malformedRequest` |
//! | `--presign sha1,sha256` | `OCSP_PRESIGN` | both | CertID hashes pre-signed; others signed on demand and cached |
//! | `--cache-entries N` | `OCSP_CACHE_ENTRIES` | `100000` | bound of the on-demand cache |
//! | `--poll-interval D` | `OCSP_POLL_INTERVAL` | `200ms` | change-feed polling |
//! | `--sweep-interval D` | `OCSP_SWEEP_INTERVAL` | `10s` | search for responses due |
//! | `--request-timeout D` | `OCSP_REQUEST_TIMEOUT` | `5s` | time to receive a request |
//! | `--workers N` | `OCSP_WORKERS` | CPUs | HTTP worker threads |
//! | `--authority NAME` | `OCSP_AUTHORITIES` | all | serve only these CAs (repeatable) |
//! | `--path-prefix P` | `OCSP_PATH_PREFIX` | path of `urls.ocsp` | GET path prefix |
//! | `--log-level L` | `OCSP_LOG` | `info` | error, warn, info, debug |
//! | `--instance NAME` | `OCSP_INSTANCE` | `<hostname>-<pid>` | this responder's name in the publication marks (`ocsp_publications`) |
//!
//! The clock is `pki_store::clock::from_env` (`PKI_FAKE_NOW` in test builds only).

pub mod der_header;
pub mod http;
pub mod issuers;
pub mod metrics;
pub mod refresher;
pub mod request;
pub mod response;
pub mod settings;
pub mod source;
pub mod store;

#[cfg(test)]
mod testutil;

pub use settings::Settings;

use pki_keys::KeyStore;
use pki_store::clock::Clock;
use pki_store::config::{Config, KeyPurpose};
use std::sync::Arc;

/// The answering side and the database side of a responder, ready to run.
pub struct Service {
    pub source: Arc<source::MemorySource>,
    pub refresher: refresher::Refresher,
}

/// Opens the database and the responder keys, loads the statuses. Answers
/// can be given when this returns; pre-signing runs in
/// [`refresher::Refresher::run`].
pub fn start(
    settings: &Settings,
    config: &Config,
    clock: Arc<dyn Clock>,
) -> Result<Service, refresher::RefreshError> {
    let store = Arc::new(store::Store::new(settings.cache_entries));
    let metrics = Arc::new(metrics::Metrics::default());
    let policy = source::Policy {
        validity: settings.validity.as_secs() as i64,
        nonce: settings.nonce,
        presign: settings.presign_mask(),
        sync_grace: (settings.poll_interval.as_secs() as i64 * 10).max(30),
    };
    let source = Arc::new(source::MemorySource {
        store,
        clock,
        policy,
        metrics,
    });
    let keys = KeyStore::new(config, KeyPurpose::OcspResponder);
    let refresh = refresher::RefreshSettings {
        poll_interval: settings.poll_interval,
        sweep_interval: settings.sweep_interval,
        refresh_before: settings.refresh_before.as_secs() as i64,
        authorities: settings.authorities.clone(),
        instance: settings
            .instance
            .clone()
            .unwrap_or_else(refresher::default_instance),
        ..Default::default()
    };
    let refresher =
        refresher::Refresher::start(&config.database_url(), keys, refresh, source.clone())?;
    Ok(Service { source, refresher })
}
