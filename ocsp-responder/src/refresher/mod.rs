//! The refresher: the one thread that talks to the database. It loads the
//! statuses at start, follows the change feed (the audit log,
//! `pki_store::feed::changes_since`), pre-signs and refreshes responses,
//! and reloads the CAs and responders when they change.
//!
//! This file owns the [`Refresher`] itself: its settings
//! ([`RefreshSettings`]), its error ([`RefreshError`]), the database
//! connection and degraded mode, the pre-signing queue, and the loop
//! ([`Refresher::run`], [`Refresher::tick`]) that ties the parts together:
//!
//! | file | job |
//! | --- | --- |
//! | `refresher/load.rs` | start-up load: feed position, CAs and responders, every certificate's status (keyset pages); the status rows and their answers |
//! | `refresher/follow.rs` | following the change feed: new statuses, CA creation and responder rotation, publication marks |
//! | `refresher/sweep.rs` | the sweep (responses missing or due, gauges, expiry of cached answers) and the signing of queued responses |
//!
//! * **Start** ([`Refresher::start`]): the feed position is read first, then
//!   the CAs, responders and every certificate's status (keyset pages per
//!   CA, status columns only). Answers can be given from then on (signed on
//!   demand where no pre-signed response exists yet); pre-signing of every
//!   certificate proceeds in the background, in chunks signed in parallel.
//! * **Following** ([`Refresher::run`]): every `poll_interval` (200 ms) the
//!   feed head is read (`audit_head`: one row, on SQLite and PostgreSQL
//!   alike); when it moved, the changed serials are read, their statuses
//!   replaced (which drops their old responses at once) and new responses
//!   signed. Rotated responders and new CAs are reloaded.
//! * **Refreshing**: every `sweep_interval` a sweep queues the responses
//!   due: those within `refresh_before` of their `nextUpdate` (minus a
//!   per-serial spread of up to half of `refresh_before`, so that responses
//!   signed together at start are not refreshed together), those signed by
//!   a responder that is no longer current, and missing ones.
//! * **Degraded mode**: a failed query drops the connection and marks the
//!   database down; answers keep coming from memory until their
//!   `nextUpdate` (nothing is refreshed from stale statuses); reconnection is
//!   tried every `reconnect_interval`, and the feed is caught up from the
//!   last position applied.
//! * **Publication marks**: when a poll applied changed statuses, a row
//!   `(instance, feed position, now)` is written into `ocsp_publications`
//!   once the new responses are signed (or, for a large change signed in
//!   the background, once the new statuses are in memory: from then on the
//!   old responses are gone and the new statuses are answered, signed on
//!   demand). The SLA report (`pki_registration::sla`) reads these marks to know when
//!   a revocation reached OCSP. A mark that cannot be written is logged as a
//!   warning; answering goes on.

mod follow;
mod load;
mod sweep;

use crate::issuers;
use crate::metrics::Metrics;
use crate::source::MemorySource;
use crate::store::{Key, Store};
use pki_keys::KeyStore;
use pki_store::storage::Db;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Timing and sizes of the refresher.
#[derive(Debug, Clone)]
pub struct RefreshSettings {
    pub poll_interval: Duration,
    pub sweep_interval: Duration,
    pub reconnect_interval: Duration,
    /// Refresh a response this many seconds before its `nextUpdate`.
    pub refresh_before: i64,
    /// Certificates read per page at start.
    pub page_size: i64,
    /// Certificates (pre-)signed between two polls of the feed.
    pub chunk: usize,
    /// Serve only these CAs (empty: all).
    pub authorities: Vec<String>,
    /// The name of this responder in `ocsp_publications`.
    pub instance: String,
}

/// `<hostname>-<pid>`: the default name of a responder in
/// `ocsp_publications`.
pub fn default_instance() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "ocsp-responder".into());
    format!("{host}-{}", std::process::id())
}

impl Default for RefreshSettings {
    fn default() -> Self {
        RefreshSettings {
            poll_interval: Duration::from_millis(200),
            sweep_interval: Duration::from_secs(10),
            reconnect_interval: Duration::from_secs(1),
            refresh_before: 6 * 3600,
            page_size: 10_000,
            chunk: 256,
            authorities: Vec::new(),
            instance: default_instance(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error(transparent)]
    Storage(#[from] pki_store::storage::StorageError),
    #[error(transparent)]
    Ca(#[from] pki_store::CaError),
    #[error(transparent)]
    Issuers(#[from] issuers::IssuerError),
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
}

/// PostgreSQL: bound connection set-up and notice dead peers, so that a
/// database that goes away is noticed in seconds.
fn with_timeouts(url: &str) -> String {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return url.to_string();
    }
    let mut url = url.to_string();
    for (key, value) in [
        ("connect_timeout", "3"),
        ("keepalives_idle", "5"),
        ("keepalives_interval", "2"),
        ("keepalives_count", "2"),
    ] {
        if !url.contains(&format!("{key}=")) {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&format!("{key}={value}"));
        }
    }
    url
}

/// The refresher (see the module docs).
pub struct Refresher {
    url: String,
    keys: KeyStore,
    settings: RefreshSettings,
    source: Arc<MemorySource>,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    db: Option<Db>,
    position: i64,
    indexes: HashMap<String, u16>,
    queue: VecDeque<Key>,
    queued: HashSet<Key>,
    last_sweep: Instant,
    last_connect: Instant,
}

impl Refresher {
    /// Connects, loads the CAs, responders and statuses (answers can be
    /// given once this returns) and queues every certificate for
    /// pre-signing.
    pub fn start(
        database_url: &str,
        keys: KeyStore,
        settings: RefreshSettings,
        source: Arc<MemorySource>,
    ) -> Result<Refresher, RefreshError> {
        let url = with_timeouts(database_url);
        let db = Db::connect(&url)?;
        let store = source.store.clone();
        let metrics = source.metrics.clone();
        let mut r = Refresher {
            url,
            keys,
            settings,
            source,
            store,
            metrics,
            db: Some(db),
            position: 0,
            indexes: HashMap::new(),
            queue: VecDeque::new(),
            queued: HashSet::new(),
            last_sweep: Instant::now(),
            last_connect: Instant::now(),
        };
        r.initial_load()?;
        Ok(r)
    }

    fn now(&self) -> i64 {
        self.source.clock.now().timestamp()
    }

    fn db(&mut self) -> &mut Db {
        self.db.as_mut().expect("connected")
    }

    fn enqueue(&mut self, key: Key) {
        if self.queued.insert(key) {
            self.queue.push_back(key);
        }
    }

    /// Runs until `stop` is set.
    pub fn run(mut self, stop: Arc<AtomicBool>) {
        while !stop.load(Ordering::Relaxed) {
            let busy = self.tick();
            if !busy {
                std::thread::sleep(self.settings.poll_interval);
            }
        }
    }

    /// One round: poll the feed (or reconnect), sweep when due, sign one
    /// chunk. Returns true when signing work remains (no pause needed).
    pub fn tick(&mut self) -> bool {
        if self.db.is_none() {
            if self.last_connect.elapsed() < self.settings.reconnect_interval {
                return self.sign_chunk();
            }
            self.last_connect = Instant::now();
            match Db::connect(&self.url) {
                Ok(db) => {
                    log::info!(
                        "database reachable again: catching up from feed position {}",
                        self.position
                    );
                    self.db = Some(db);
                }
                Err(e) => {
                    log::debug!("database still unreachable: {e}");
                    return self.sign_chunk();
                }
            }
        }
        if let Err(e) = self.poll() {
            self.db_failed(e);
        }
        if self.last_sweep.elapsed() >= self.settings.sweep_interval {
            self.sweep();
        }
        self.sign_chunk()
    }

    fn db_failed(&mut self, e: RefreshError) {
        self.metrics.db_errors.fetch_add(1, Ordering::Relaxed);
        if self.store.db_up() {
            log::error!(
                "database unreachable ({e}): degraded mode, serving the responses held until they expire"
            );
        }
        self.store.set_db_up(false);
        self.db = None;
        self.last_connect = Instant::now();
    }

    /// Work left in the pre-signing queue.
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// The feed position applied.
    pub fn position(&self) -> i64 {
        self.position
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_get_timeouts() {
        assert_eq!(with_timeouts("sqlite:///tmp/x"), "sqlite:///tmp/x");
        let u = with_timeouts("postgres://p@h/db?options=-csearch_path%3Dx");
        assert!(u.starts_with("postgres://p@h/db?options=-csearch_path%3Dx&connect_timeout=3&"));
        assert!(u.contains("keepalives_count=2"));
    }
}
