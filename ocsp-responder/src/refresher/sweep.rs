//! The sweep and the signing of pre-signed responses: every
//! `sweep_interval` the responses missing or due (within `refresh_before` of
//! their `nextUpdate`, minus a per-serial spread, or signed by a responder
//! that is no longer current) are queued; expired on-demand answers are
//! purged and the gauges brought up to date. The queue is signed a chunk per
//! round, in parallel ([`sign_keys`], also used by the feed follower).

use super::Refresher;
use crate::issuers::Responder;
use crate::request::HashAlg;
use crate::source::{floor_of, MemorySource};
use crate::store::{Key, Lookup};
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

impl Refresher {
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
        let signable: HashMap<u16, Arc<Responder>> = issuers
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
    pub(super) fn sign_chunk(&mut self) -> bool {
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
pub(super) fn sign_keys(
    source: &MemorySource,
    refresh_before: i64,
    keys: &[Key],
    only_needed: bool,
) {
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
            let Some(times) = source.times(responder, now, floor_of(status)) else {
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
