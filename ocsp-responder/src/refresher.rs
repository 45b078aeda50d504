//! The refresher: the one thread that talks to the database. It loads the
//! statuses at start, follows the change feed (the audit log,
//! `pki_store::feed::changes_since`), pre-signs and refreshes responses,
//! and reloads the CAs and responders when they change.
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

use crate::issuers::{self, Issuers};
use crate::metrics::Metrics;
use crate::request::{HashAlg, Serial};
use crate::response::Status;
use crate::source::MemorySource;
use crate::store::{Key, Lookup, Store};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use pki_keys::KeyStore;
use pki_store::domain::{CertStatus, Reason};
use pki_store::feed;
use pki_store::published::StatusFacts;
use pki_store::storage::schema::{authorities, certificates, ocsp_publications, ocsp_responders};
use pki_store::storage::{db_time, Db};
use pki_store::with_conn;
use rayon::prelude::*;
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

/// The status columns of a certificate.
#[derive(Debug, Clone, Queryable)]
struct StatusRow {
    serial: String,
    issuer: String,
    status: CertStatus,
    issued_at: NaiveDateTime,
    revoked_at: Option<NaiveDateTime>,
    revocation_reason: Option<Reason>,
}

/// The answer for a stored status: the core's published-status rule.
fn status_of(row: &StatusRow) -> Status {
    Status::of(StatusFacts {
        status: row.status,
        issued_at: row.issued_at,
        revoked_at: row.revoked_at,
        reason: row.revocation_reason,
        invalidity_date: None,
    })
}

type StatusColumns = (
    certificates::serial,
    certificates::issuer,
    certificates::status,
    certificates::issued_at,
    certificates::revoked_at,
    certificates::revocation_reason,
);

const STATUS_COLUMNS: StatusColumns = (
    certificates::serial,
    certificates::issuer,
    certificates::status,
    certificates::issued_at,
    certificates::revoked_at,
    certificates::revocation_reason,
);

fn page(
    db: &mut Db,
    issuer: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<StatusRow>, RefreshError> {
    Ok(with_conn!(db, c => certificates::table
        .filter(certificates::issuer.eq(issuer))
        .filter(certificates::serial.gt(after))
        .order(certificates::serial)
        .limit(limit)
        .select(STATUS_COLUMNS)
        .load::<StatusRow>(c))?)
}

fn rows_for(db: &mut Db, serials: &[String]) -> Result<Vec<StatusRow>, RefreshError> {
    let mut out = Vec::with_capacity(serials.len());
    for chunk in serials.chunks(500) {
        let rows: Vec<StatusRow> = with_conn!(db, c => certificates::table
            .filter(certificates::serial.eq_any(chunk))
            .select(STATUS_COLUMNS)
            .load::<StatusRow>(c))?;
        out.extend(rows);
    }
    Ok(out)
}

/// Serials of the CA and responder certificates (their issuance is audited
/// as `ca.create` / `ocsp-responder.*`, not as a certificate change).
fn authority_serials(db: &mut Db) -> Result<Vec<String>, RefreshError> {
    let mut serials: Vec<String> = with_conn!(db, c => authorities::table
        .select(authorities::certificate_serial)
        .load::<String>(c))?;
    let responders: Vec<String> = with_conn!(db, c => ocsp_responders::table
        .select(ocsp_responders::certificate_serial)
        .load::<String>(c))?;
    serials.extend(responders);
    Ok(serials)
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

    fn initial_load(&mut self) -> Result<(), RefreshError> {
        let sync_time = self.now();
        self.position = feed::position(self.db())?;
        let issuers = self.load_issuers(None)?;
        let names: Vec<(u16, String)> = issuers
            .list
            .iter()
            .map(|i| (i.index, i.name.clone()))
            .collect();
        self.store.set_issuers(issuers);
        let started = Instant::now();
        let mut total = 0;
        for (index, name) in names {
            total += self.load_issuer(index, &name)?;
        }
        self.store.set_db_up(true);
        self.store.set_last_sync(sync_time);
        self.store.set_ready();
        self.metrics
            .feed_position
            .store(self.position, Ordering::Relaxed);
        log::info!(
            "loaded {total} certificate statuses in {:.2} s (feed position {}); pre-signing in the background",
            started.elapsed().as_secs_f64(),
            self.position
        );
        Ok(())
    }

    fn load_issuers(&mut self, previous: Option<&Issuers>) -> Result<Issuers, RefreshError> {
        let now = self.now();
        let mut warnings = Vec::new();
        let mut indexes = std::mem::take(&mut self.indexes);
        let only = self.settings.authorities.clone();
        let db = self.db.as_mut().expect("connected");
        let loaded = issuers::load(
            db,
            &self.keys,
            &only,
            &mut indexes,
            previous,
            now,
            &mut |w| warnings.push(w),
        );
        self.indexes = indexes;
        for w in warnings {
            log::warn!("{w}");
        }
        let loaded = loaded?;
        for i in &loaded.list {
            match &i.responder {
                Some(r) => log::info!(
                    "{}: responder certificate {} (valid until {})",
                    i.name,
                    r.serial,
                    chrono::DateTime::from_timestamp(r.not_after, 0).unwrap_or_default()
                ),
                None => log::warn!(
                    "{}: no valid responder certificate: answering tryLater",
                    i.name
                ),
            }
        }
        Ok(loaded)
    }

    /// Reads every certificate of one CA into the store; queues them for
    /// pre-signing. Returns the number read.
    fn load_issuer(&mut self, index: u16, name: &str) -> Result<usize, RefreshError> {
        let mut after = String::new();
        let mut n = 0;
        let limit = self.settings.page_size;
        loop {
            let rows = page(self.db(), name, &after, limit)?;
            let Some(last) = rows.last() else { break };
            after = last.serial.clone();
            for row in &rows {
                if let Some(serial) = Serial::from_hex(&row.serial) {
                    let key = (index, serial);
                    self.store.set_status(key, status_of(row));
                    self.enqueue(key);
                }
            }
            n += rows.len();
            if (rows.len() as i64) < limit {
                break;
            }
        }
        self.metrics
            .certificates
            .store(self.store.len() as i64, Ordering::Relaxed);
        self.metrics
            .refresh_queue
            .store(self.queue.len() as i64, Ordering::Relaxed);
        Ok(n)
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

    /// Reads the feed and applies what changed.
    pub fn poll(&mut self) -> Result<(), RefreshError> {
        // Every change committed before this instant is read below.
        let sync_time = self.now();
        let head = feed::position(self.db())?;
        let start = self.position;
        let mut changed = Vec::new();
        while self.position < head {
            let position = self.position;
            let changes = feed::changes_since(self.db(), position, 2000)?;
            if changes.authorities_changed {
                self.authorities_changed()?;
            }
            if !changes.serials.is_empty() {
                changed.extend(self.apply(&changes.serials)?);
            }
            if changes.position <= self.position {
                break;
            }
            self.position = changes.position;
        }
        self.metrics
            .feed_position
            .store(self.position, Ordering::Relaxed);
        if !self.store.db_up() {
            log::info!("database back: in sync at feed position {}", self.position);
        }
        self.store.set_db_up(true);
        self.store.set_last_sync(sync_time);
        // Signed now when few (the revocation path), else in the background
        // (answered on demand meanwhile).
        let publish = !changed.is_empty() && self.position > start;
        if changed.len() <= self.settings.chunk {
            sign_keys(&self.source, self.settings.refresh_before, &changed, false);
        } else {
            for key in changed {
                self.enqueue(key);
            }
        }
        if publish {
            self.mark_published();
        }
        Ok(())
    }

    /// Records in `ocsp_publications` that the statuses of the feed up to
    /// the current position are served. A failure is only logged.
    fn mark_published(&mut self) {
        let row = (
            ocsp_publications::instance.eq(self.settings.instance.clone()),
            ocsp_publications::feed_position.eq(self.position),
            ocsp_publications::published_at.eq(db_time(self.source.clock.now())),
        );
        let position = self.position;
        let Some(db) = self.db.as_mut() else { return };
        let written = with_conn!(db, c => diesel::insert_into(ocsp_publications::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c));
        match written {
            Ok(_) => log::debug!("published feed position {position}"),
            Err(e) => {
                self.metrics.db_errors.fetch_add(1, Ordering::Relaxed);
                log::warn!("cannot record the publication of feed position {position}: {e}");
            }
        }
    }

    /// New statuses for some serials, replaced at once (their old responses
    /// dropped: from now on they are answered on demand until signed).
    /// Returns the certificates whose status changed.
    fn apply(&mut self, serials: &[String]) -> Result<Vec<Key>, RefreshError> {
        let mut unique: Vec<String> = serials.to_vec();
        unique.sort();
        unique.dedup();
        let rows = rows_for(self.db(), &unique)?;
        let issuers = self.store.issuers();
        let mut changed = Vec::new();
        for row in &rows {
            let (Some(issuer), Some(serial)) =
                (issuers.by_name(&row.issuer), Serial::from_hex(&row.serial))
            else {
                continue;
            };
            let key = (issuer.index, serial);
            let status = status_of(row);
            self.store.cache.invalidate(issuer.index, &serial);
            if self.store.set_status(key, status).is_some() {
                log::debug!("certificate {} of {}: {status:?}", row.serial, row.issuer);
                changed.push(key);
            }
        }
        self.metrics
            .feed_changes
            .fetch_add(changed.len() as u64, Ordering::Relaxed);
        self.metrics
            .certificates
            .store(self.store.len() as i64, Ordering::Relaxed);
        Ok(changed)
    }

    /// A CA was created or a responder rotated: reload them, read the
    /// certificates of new CAs, and sweep so that responses signed by a
    /// replaced responder are re-signed.
    fn authorities_changed(&mut self) -> Result<(), RefreshError> {
        let previous = self.store.issuers();
        let issuers = self.load_issuers(Some(&previous))?;
        let mut new_cas = Vec::new();
        for i in &issuers.list {
            match previous.by_name(&i.name) {
                None => new_cas.push((i.index, i.name.clone())),
                Some(p) => {
                    let old = p.responder.as_ref().map(|r| r.serial.as_str());
                    let new = i.responder.as_ref().map(|r| r.serial.as_str());
                    if old != new {
                        log::info!(
                            "{}: responder changed ({} -> {}): re-signing its responses",
                            i.name,
                            old.unwrap_or("none"),
                            new.unwrap_or("none")
                        );
                        self.store.cache.invalidate_issuer(i.index);
                    }
                }
            }
        }
        self.store.set_issuers(issuers);
        for (index, name) in new_cas {
            log::info!("new CA {name}: loading its certificates");
            self.load_issuer(index, &name)?;
        }
        let serials = authority_serials(self.db())?;
        for key in self.apply(&serials)? {
            self.enqueue(key);
        }
        self.sweep();
        Ok(())
    }

    /// Queues the responses that are missing or due; updates the gauges.
    pub fn sweep(&mut self) {
        self.last_sweep = Instant::now();
        let now = self.now();
        let issuers = self.store.issuers();
        let presign = self.source.policy.presign;
        let db_up = self.store.db_up();
        let refresh_before = self.settings.refresh_before;
        let mut wanted_keys = Vec::new();
        let mut oldest = i64::MAX;
        let mut presigned = 0i64;
        let mut bytes = 0i64;
        let mut certificates = 0i64;
        // CAs whose responses can be signed now (a valid responder, statuses
        // recent enough): the others are not queued, or signing would spin.
        let signable: HashMap<u16, Arc<crate::issuers::Responder>> = issuers
            .list
            .iter()
            .filter_map(|i| {
                let r = i.responder.clone()?;
                self.source.times(&r, now, 0).map(|_| (i.index, r))
            })
            .collect();
        self.store.for_each(|key, entry| {
            certificates += 1;
            for s in entry.signed.iter().flatten() {
                presigned += 1;
                bytes += s.memory() as i64;
                oldest = oldest.min(s.this_update);
            }
            let Some(current) = signable.get(&key.0) else {
                return;
            };
            // A refresh would end no later than this: skip it if it would not
            // extend the response (responder ending, statuses stale).
            let horizon =
                (self.store.last_sync() + self.source.policy.validity).min(current.not_after);
            let wanted = HashAlg::ALL
                .iter()
                .filter(|alg| presign[alg.index()])
                .any(|alg| match &entry.signed[alg.index()] {
                    None => true,
                    Some(s) => {
                        !Arc::ptr_eq(&s.responder, current)
                            || (db_up
                                && horizon > s.next_update
                                && due(refresh_before, key, s.next_update, now))
                    }
                });
            if wanted {
                wanted_keys.push(*key);
            }
        });
        for key in wanted_keys {
            self.enqueue(key);
        }
        self.store.cache.purge_expired(now);
        let m = &self.metrics;
        m.certificates.store(certificates, Ordering::Relaxed);
        m.presigned.store(presigned, Ordering::Relaxed);
        m.presigned_bytes.store(bytes, Ordering::Relaxed);
        m.oldest_presigned.store(
            if oldest == i64::MAX { 0 } else { oldest },
            Ordering::Relaxed,
        );
        m.refresh_queue
            .store(self.queue.len() as i64, Ordering::Relaxed);
    }

    /// Signs the next chunk of the queue; true if work remains.
    fn sign_chunk(&mut self) -> bool {
        if self.queue.is_empty() {
            return false;
        }
        let n = self.settings.chunk.min(self.queue.len());
        let keys: Vec<Key> = self.queue.drain(..n).collect();
        for k in &keys {
            self.queued.remove(k);
        }
        sign_keys(&self.source, self.settings.refresh_before, &keys, true);
        self.metrics
            .refresh_queue
            .store(self.queue.len() as i64, Ordering::Relaxed);
        if self.queue.is_empty() {
            // A burst of signing is over (start, rotation, big change):
            // bring the gauges up to date now rather than at the next sweep.
            self.sweep();
        }
        !self.queue.is_empty()
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

/// Due-ness of a response: within `refresh_before` of its `nextUpdate`,
/// minus a spread of up to half of `refresh_before` taken from the serial.
fn due(refresh_before: i64, key: &Key, next_update: i64, now: i64) -> bool {
    let r = refresh_before.max(0);
    let spread_span = (r / 2).max(1) as u64;
    let low: [u8; 8] = key.1 .0[12..20].try_into().unwrap_or([0; 8]);
    let spread = (u64::from_be_bytes(low) % spread_span) as i64;
    now >= next_update - r - spread
}

/// Signs the pre-signed responses of some certificates (in parallel).
/// With `only_needed`, responses that are present, current and not due
/// are kept.
fn sign_keys(source: &MemorySource, refresh_before: i64, keys: &[Key], only_needed: bool) {
    let store = &source.store;
    let now = source.clock.now().timestamp();
    let issuers = store.issuers();
    let presign = source.policy.presign;
    let db_up = store.db_up();
    keys.par_iter().for_each(|key| {
        let Some(issuer) = issuers.by_index(key.0) else {
            return;
        };
        let Some(responder) = issuer.responder.as_ref() else {
            return;
        };
        // The latest nextUpdate a refresh could give.
        let horizon = (store.last_sync() + source.policy.validity).min(responder.not_after);
        for alg in HashAlg::ALL {
            if !presign[alg.index()] {
                continue;
            }
            let (status, version) = match store.lookup(key, alg) {
                Lookup::Known {
                    signed: Some(s),
                    status,
                    version,
                } => {
                    let wanted = !Arc::ptr_eq(&s.responder, responder)
                        || (db_up
                            && horizon > s.next_update
                            && due(refresh_before, key, s.next_update, now));
                    if only_needed && !wanted {
                        continue;
                    }
                    (status, version)
                }
                Lookup::Known {
                    status, version, ..
                } => (status, version),
                Lookup::Unknown => return,
            };
            let Some(times) = source.times(responder, now, crate::source::floor_of(status)) else {
                return;
            };
            match source.sign_single(issuer, responder, alg, &key.1, status, times) {
                Ok(s) => {
                    store.put_signed(key, alg, version, Arc::new(s));
                }
                Err(e) => log::error!(
                    "cannot sign the response for {} of {}: {e}",
                    key.1.to_hex(),
                    issuer.name
                ),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: &str, revoked: Option<i64>, reason: Option<&str>) -> StatusRow {
        let t = |s: i64| chrono::DateTime::from_timestamp(s, 0).unwrap().naive_utc();
        StatusRow {
            serial: "4a".into(),
            issuer: "identity-card-ca".into(),
            status: status.parse().unwrap(),
            issued_at: t(1000),
            revoked_at: revoked.map(t),
            revocation_reason: reason.map(|r| r.parse().unwrap()),
        }
    }

    #[test]
    fn statuses_map_to_answers() {
        assert_eq!(status_of(&row("active", None, None)), Status::Good);
        assert_eq!(status_of(&row("expired", None, None)), Status::Good);
        assert_eq!(
            status_of(&row("revoked", Some(2000), Some("keyCompromise"))),
            Status::Revoked {
                at: 2000,
                reason: Some(Reason::KeyCompromise)
            }
        );
        assert_eq!(
            status_of(&row("revoked", Some(2000), None)),
            Status::Revoked {
                at: 2000,
                reason: None
            }
        );
        assert_eq!(
            status_of(&row("suspended", Some(3000), Some("certificateHold"))),
            Status::Revoked {
                at: 3000,
                reason: Some(Reason::CertificateHold)
            }
        );
        assert_eq!(
            status_of(&row("hold", None, None)),
            Status::Revoked {
                at: 1000,
                reason: Some(Reason::CertificateHold)
            }
        );
    }

    #[test]
    fn postgres_urls_get_timeouts() {
        assert_eq!(with_timeouts("sqlite:///tmp/x"), "sqlite:///tmp/x");
        let u = with_timeouts("postgres://p@h/db?options=-csearch_path%3Dx");
        assert!(u.starts_with("postgres://p@h/db?options=-csearch_path%3Dx&connect_timeout=3&"));
        assert!(u.contains("keepalives_count=2"));
    }
}

#[cfg(test)]
mod follow_tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::source::Policy;
    use crate::testutil::Fixture;
    use pki_registration::lifecycle::{Scope, Transition};
    use pki_store::clock::SystemClock;
    use pki_store::config::KeyPurpose;

    fn refresher(f: &Fixture) -> Refresher {
        let source = Arc::new(MemorySource {
            store: Arc::new(Store::new(100)),
            clock: Arc::new(SystemClock),
            policy: Policy {
                validity: 3600,
                nonce: true,
                presign: [true, true],
                sync_grace: 30,
            },
            metrics: Arc::new(Metrics::default()),
        });
        Refresher::start(
            &f.config.database_url(),
            KeyStore::new(&f.config, KeyPurpose::OcspResponder),
            RefreshSettings::default(),
            source,
        )
        .expect("start")
    }

    fn publications(db: &mut Db) -> Vec<(String, i64, NaiveDateTime)> {
        with_conn!(db, c => ocsp_publications::table
            .order(ocsp_publications::feed_position)
            .load::<(String, i64, NaiveDateTime)>(c))
        .expect("read ocsp_publications")
    }

    fn drain(r: &mut Refresher) {
        while r.tick() {}
    }

    #[test]
    fn follows_revocations_and_responder_rotation() {
        let f = Fixture::new();
        let mut r = refresher(&f);
        let store = r.store.clone();
        assert!(store.is_ready());
        // Three CA certificates and three responder certificates.
        assert_eq!(store.len(), 6);
        drain(&mut r);
        r.sweep();
        assert_eq!(
            r.metrics.presigned.load(Ordering::Relaxed),
            12,
            "2 per certificate"
        );

        let issuers = store.issuers();
        let residence = issuers.by_name("residence-card-ca").unwrap();
        let old_responder = residence.responder.clone().unwrap();
        let key = (
            residence.index,
            Serial::from_hex(&old_responder.serial).unwrap(),
        );
        let mut ca = f.ca();
        pki_registration::revocation::apply(
            &mut ca,
            &Scope::Serial(old_responder.serial.clone()),
            Transition::Revoke(Some(Reason::KeyCompromise)),
            None,
        )
        .unwrap();
        let before = r.position();
        assert!(
            publications(&mut ca.db).is_empty(),
            "no mark without a change"
        );
        r.tick();
        // The revocation is marked as published at the new position, once.
        assert!(r.position() > before);
        let marks = publications(&mut ca.db);
        assert_eq!(marks.len(), 1, "{marks:?}");
        assert_eq!(marks[0].0, r.settings.instance);
        assert_eq!(marks[0].1, r.position());
        r.tick();
        assert_eq!(
            publications(&mut ca.db).len(),
            1,
            "a poll without change marks nothing"
        );
        match store.lookup(&key, HashAlg::Sha1) {
            Lookup::Known {
                status:
                    Status::Revoked {
                        reason: Some(Reason::KeyCompromise),
                        ..
                    },
                signed: Some(_),
                ..
            } => {}
            other => panic!("revocation not applied and signed: {other:?}"),
        }

        ca_core::hierarchy::rotate_responder(&mut ca, "residence-card-ca").unwrap();
        drain(&mut r);
        let issuers = store.issuers();
        let new_responder = issuers
            .by_name("residence-card-ca")
            .unwrap()
            .responder
            .clone()
            .unwrap();
        assert_ne!(new_responder.serial, old_responder.serial);
        // The new responder certificate is known, and every response of the
        // CA is now signed by the new responder.
        let new_key = (key.0, Serial::from_hex(&new_responder.serial).unwrap());
        assert!(store.status(&new_key).is_some());
        store.for_each(|k, e| {
            if k.0 == key.0 {
                for s in e.signed.iter().flatten() {
                    assert!(Arc::ptr_eq(&s.responder, &new_responder));
                }
            }
        });
    }
}
