//! The in-memory store: the status of every certificate of the CAs served
//! and its pre-signed responses, read by the HTTP workers and written by
//! the refresher.
//!
//! Layout (measured in `bench/ocsp`, documented in the README): a map from
//! (CA, serial) to an [`Entry`] — the status, a version number and one
//! [`Signed`] response per pre-signed CertID hash algorithm — split into 64
//! shards behind read-write locks (readers never wait for each other; a
//! writer holds one shard for one entry). A [`Signed`] holds only the
//! signed part of a response (about 300 bytes); the responder certificate
//! is shared.
//!
//! Answers signed on demand (never-issued serials, and the hash algorithms
//! that are not pre-signed) go to a bounded [`Cache`].
//!
//! Versions make concurrent signing safe: an HTTP worker that signs a
//! missing response stores it only if the entry's version is still the one
//! whose status it signed, so a response signed from a status the refresher
//! has just replaced is dropped instead of overwriting the new one.

use crate::issuers::Issuers;
use crate::request::{HashAlg, Serial};
use crate::response::{Signed, Status};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

const SHARDS: usize = 64;

/// A certificate: (CA index, serial).
pub type Key = (u16, Serial);

/// What the store knows of one certificate.
#[derive(Debug, Clone)]
pub struct Entry {
    pub status: Status,
    /// Increased at every status change.
    pub version: u32,
    /// Pre-signed responses, indexed by `HashAlg::index`.
    pub signed: [Option<Arc<Signed>>; 2],
}

/// The result of a lookup.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// The certificate is known; its pre-signed response for the algorithm
    /// asked, if there is one.
    Known {
        status: Status,
        version: u32,
        signed: Option<Arc<Signed>>,
    },
    /// This CA never issued that serial (as of the last synchronisation).
    Unknown,
}

fn shard_of(key: &Key) -> usize {
    // Serials are random: their last octet spreads keys evenly.
    (key.1 .0[19] as usize ^ key.0 as usize) % SHARDS
}

/// The store shared by the HTTP workers and the refresher.
pub struct Store {
    shards: Vec<RwLock<HashMap<Key, Entry>>>,
    issuers: RwLock<Arc<Issuers>>,
    pub cache: Cache,
    /// The statuses are loaded: answers can be given.
    ready: AtomicBool,
    /// The last poll of the database succeeded.
    db_up: AtomicBool,
    /// When the held statuses were last known to match the database (Unix s).
    last_sync: AtomicI64,
}

impl Store {
    pub fn new(cache_capacity: usize) -> Store {
        Store {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            issuers: RwLock::new(Arc::new(Issuers::default())),
            cache: Cache::new(cache_capacity),
            ready: AtomicBool::new(false),
            db_up: AtomicBool::new(false),
            last_sync: AtomicI64::new(0),
        }
    }

    fn read(&self, key: &Key) -> std::sync::RwLockReadGuard<'_, HashMap<Key, Entry>> {
        self.shards[shard_of(key)]
            .read()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self, key: &Key) -> std::sync::RwLockWriteGuard<'_, HashMap<Key, Entry>> {
        self.shards[shard_of(key)]
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub fn issuers(&self) -> Arc<Issuers> {
        self.issuers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_issuers(&self, issuers: Issuers) {
        *self.issuers.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(issuers);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    pub fn db_up(&self) -> bool {
        self.db_up.load(Ordering::Acquire)
    }

    pub fn set_db_up(&self, up: bool) {
        self.db_up.store(up, Ordering::Release);
    }

    pub fn last_sync(&self) -> i64 {
        self.last_sync.load(Ordering::Acquire)
    }

    pub fn set_last_sync(&self, at: i64) {
        self.last_sync.store(at, Ordering::Release);
    }

    pub fn lookup(&self, key: &Key, alg: HashAlg) -> Lookup {
        match self.read(key).get(key) {
            Some(e) => Lookup::Known {
                status: e.status,
                version: e.version,
                signed: e.signed[alg.index()].clone(),
            },
            None => Lookup::Unknown,
        }
    }

    /// The status and version of a certificate.
    pub fn status(&self, key: &Key) -> Option<(Status, u32)> {
        self.read(key).get(key).map(|e| (e.status, e.version))
    }

    /// Sets a certificate's status. An unchanged status keeps its version
    /// and responses (returns `None`); a new one drops the responses signed
    /// for the old one and returns the new version.
    pub fn set_status(&self, key: Key, status: Status) -> Option<u32> {
        let mut shard = self.write(&key);
        match shard.get_mut(&key) {
            Some(e) if e.status == status => None,
            Some(e) => {
                e.status = status;
                e.version = e.version.wrapping_add(1);
                e.signed = [None, None];
                Some(e.version)
            }
            None => {
                shard.insert(
                    key,
                    Entry {
                        status,
                        version: 0,
                        signed: [None, None],
                    },
                );
                Some(0)
            }
        }
    }

    /// Stores a response signed for `version` of the entry; returns false
    /// (and stores nothing) if the status changed meanwhile.
    pub fn put_signed(&self, key: &Key, alg: HashAlg, version: u32, signed: Arc<Signed>) -> bool {
        let mut shard = self.write(key);
        match shard.get_mut(key) {
            Some(e) if e.version == version => {
                e.signed[alg.index()] = Some(signed);
                true
            }
            _ => false,
        }
    }

    /// Number of certificates held.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Visits every entry, one shard at a time (under its read lock).
    pub fn for_each(&self, mut f: impl FnMut(&Key, &Entry)) {
        for shard in &self.shards {
            let shard = shard.read().unwrap_or_else(|p| p.into_inner());
            for (k, e) in shard.iter() {
                f(k, e);
            }
        }
    }
}

/// Key of an answer signed on demand: (CA index, hash algorithm, serial).
pub type CacheKey = (u16, HashAlg, Serial);

/// A bounded cache of answers signed on demand. When full, an arbitrary
/// entry (the first of the map's randomly seeded order) makes room, and
/// expired entries are purged by the refresher's sweep.
pub struct Cache {
    map: Mutex<HashMap<CacheKey, Arc<Signed>>>,
    capacity: usize,
    pub evictions: AtomicU64,
}

impl Cache {
    pub fn new(capacity: usize) -> Cache {
        Cache {
            map: Mutex::new(HashMap::new()),
            capacity,
            evictions: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Arc<Signed>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A cached answer still valid at `now`.
    pub fn get(&self, key: &CacheKey, now: i64) -> Option<Arc<Signed>> {
        self.lock()
            .get(key)
            .filter(|s| s.next_update > now)
            .cloned()
    }

    pub fn insert(&self, key: CacheKey, signed: Arc<Signed>) {
        if self.capacity == 0 {
            return;
        }
        let mut map = self.lock();
        if map.len() >= self.capacity && !map.contains_key(&key) {
            if let Some(victim) = map.keys().next().copied() {
                map.remove(&victim);
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
        map.insert(key, signed);
    }

    /// Forgets every answer about a serial (its status changed or it was
    /// just issued).
    pub fn invalidate(&self, issuer: u16, serial: &Serial) {
        let mut map = self.lock();
        for alg in HashAlg::ALL {
            map.remove(&(issuer, alg, *serial));
        }
    }

    /// Forgets every answer of a CA (its responder changed).
    pub fn invalidate_issuer(&self, issuer: u16) {
        self.lock().retain(|k, _| k.0 != issuer);
    }

    pub fn purge_expired(&self, now: i64) {
        self.lock().retain(|_, s| s.next_update > now);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::{canonical_cert_id, sign, SingleAnswer, Times};
    use crate::testutil::test_responder;

    fn signed(next_update: i64) -> Arc<Signed> {
        let responder = test_responder();
        let serial = Serial::from_hex("01").unwrap();
        Arc::new(
            sign(
                &responder,
                vec![SingleAnswer {
                    cert_id: canonical_cert_id(HashAlg::Sha1, &[0; 20], &[0; 20], &serial).unwrap(),
                    status: Status::Good,
                }],
                Times {
                    produced_at: 10,
                    this_update: 10,
                    next_update,
                },
                None,
            )
            .unwrap(),
        )
    }

    #[test]
    fn a_response_signed_for_an_old_status_is_not_stored() {
        let store = Store::new(10);
        let key = (0, Serial::from_hex("4a").unwrap());
        assert_eq!(store.set_status(key, Status::Good), Some(0));
        assert_eq!(store.set_status(key, Status::Good), None);
        assert!(store.put_signed(&key, HashAlg::Sha1, 0, signed(100)));
        let v = store
            .set_status(
                key,
                Status::Revoked {
                    at: 5,
                    reason: None,
                },
            )
            .unwrap();
        assert_eq!(v, 1);
        // The revocation dropped the response for "good"...
        assert!(matches!(
            store.lookup(&key, HashAlg::Sha1),
            Lookup::Known { signed: None, .. }
        ));
        // ... and a late "good" response signed for version 0 is refused.
        assert!(!store.put_signed(&key, HashAlg::Sha1, 0, signed(100)));
        assert!(store.put_signed(&key, HashAlg::Sha1, 1, signed(100)));
        assert!(matches!(
            store.lookup(&(1, key.1), HashAlg::Sha1),
            Lookup::Unknown
        ));
    }

    #[test]
    fn the_cache_is_bounded_and_forgets_expired_answers() {
        let cache = Cache::new(3);
        let s = signed(100);
        for i in 1..=5u8 {
            cache.insert(
                (0, HashAlg::Sha1, Serial::from_der_int(&[i]).unwrap()),
                s.clone(),
            );
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.evictions.load(Ordering::Relaxed), 2);
        let k = (0, HashAlg::Sha256, Serial::from_der_int(&[9]).unwrap());
        cache.insert(k, signed(50));
        assert!(cache.get(&k, 49).is_some());
        assert!(cache.get(&k, 50).is_none());
        cache.purge_expired(60);
        assert_eq!(cache.len(), 2);
        cache.invalidate_issuer(0);
        assert!(cache.is_empty());
    }
}
