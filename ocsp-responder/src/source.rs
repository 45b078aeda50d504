//! The [`Source`] of answers behind the HTTP layer (as in Let's Encrypt's
//! Boulder responder), and its implementation over the in-memory store,
//! [`MemorySource`].
//!
//! How [`MemorySource`] answers a parsed request:
//!
//! * not loaded yet → `tryLater`;
//! * a CertID of a CA not served, or CertIDs of several CAs → `unauthorized`;
//! * one CertID, no nonce (or nonces off) → the pre-signed response from
//!   memory; if it is missing or expired, one signed now and stored; for a
//!   hash algorithm that is not pre-signed, the bounded on-demand cache;
//! * a serial the CA never issued → `revoked` with the extended revoked
//!   definition (RFC 6960 §4.4.8), signed on demand and cached; only while
//!   the store is in sync with the database (else `tryLater`: "never
//!   issued" cannot be asserted from stale data);
//! * a nonce (when enabled) or several CertIDs → signed for this request,
//!   CertIDs echoed as received, nonce echoed.
//!
//! Every response's `thisUpdate` is the last time the statuses were known to
//! match the database, `nextUpdate` is `thisUpdate + validity` (never past
//! the responder certificate's end). A response whose `nextUpdate` has
//! passed is never served: in degraded mode (database gone) answers stay
//! available until then, and become `tryLater` afterwards.

use crate::issuers::{Issuer, Responder};
use crate::metrics::{Metrics, Outcome, Production};
use crate::request::{HashAlg, ParsedRequest, RequestedId, Serial};
use crate::response::{self, canonical_cert_id, Signed, SingleAnswer, Status, Times};
use crate::store::{Lookup, Store};
use pki_store::clock::Clock;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use x509_ocsp::OcspResponseStatus;

/// What the HTTP layer sends back.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The DER `OCSPResponse`.
    pub body: Vec<u8>,
    pub outcome: Outcome,
    pub production: Production,
    /// Present when the answer may be cached by HTTP caches (a single
    /// CertID, no nonce): drives `Cache-Control`, `ETag` and friends.
    pub cache: Option<CacheInfo>,
}

/// Caching data of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheInfo {
    pub this_update: i64,
    pub next_update: i64,
    pub etag: String,
}

impl Answer {
    /// An unsigned error answer.
    pub fn error(status: OcspResponseStatus) -> Answer {
        let outcome = match status {
            OcspResponseStatus::MalformedRequest => Outcome::Malformed,
            OcspResponseStatus::TryLater => Outcome::TryLater,
            OcspResponseStatus::Unauthorized => Outcome::Unauthorized,
            _ => Outcome::InternalError,
        };
        Answer {
            body: response::error_response(status).to_vec(),
            outcome,
            production: Production::Unsigned,
            cache: None,
        }
    }

    fn from_signed(
        signed: &Signed,
        status: Status,
        production: Production,
        cacheable: bool,
    ) -> Answer {
        Answer {
            body: signed.to_der(),
            outcome: outcome_of(status),
            production,
            cache: cacheable.then(|| CacheInfo {
                this_update: signed.this_update,
                next_update: signed.next_update,
                etag: signed.etag(),
            }),
        }
    }
}

/// The revocation time of a status (0 when none).
pub fn floor_of(status: Status) -> i64 {
    match status {
        Status::Revoked { at, .. } => at,
        _ => 0,
    }
}

fn outcome_of(status: Status) -> Outcome {
    match status {
        Status::Good => Outcome::Good,
        Status::Revoked { .. } => Outcome::Revoked,
        Status::NotIssued => Outcome::NotIssued,
    }
}

/// The state a health check reports.
#[derive(Debug, Clone)]
pub struct Health {
    pub now: i64,
    /// Statuses loaded.
    pub ready: bool,
    /// The last database poll succeeded.
    pub db_up: bool,
    /// When the statuses were last known to match the database (Unix s).
    pub last_sync: i64,
    /// What is wrong, for people (empty when healthy).
    pub problems: Vec<String>,
}

impl Health {
    pub fn healthy(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Produces answers to parsed requests.
pub trait Source: Send + Sync {
    fn answer(&self, request: &ParsedRequest) -> Answer;
    fn health(&self) -> Health;
}

/// Signing choices of the responder.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// `nextUpdate - thisUpdate`, seconds.
    pub validity: i64,
    /// Answer nonces with freshly signed responses.
    pub nonce: bool,
    /// Hash algorithms whose responses are pre-signed (by `HashAlg::index`).
    pub presign: [bool; 2],
    /// Seconds without a successful sync after which the store counts as
    /// out of sync (never-issued answers become `tryLater`).
    pub sync_grace: i64,
}

/// The answers of the in-memory store.
pub struct MemorySource {
    pub store: Arc<Store>,
    pub clock: Arc<dyn Clock>,
    pub policy: Policy,
    pub metrics: Arc<Metrics>,
}

impl MemorySource {
    fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }

    fn in_sync(&self, now: i64) -> bool {
        self.store.db_up() && now - self.store.last_sync() <= self.policy.sync_grace
    }

    /// Times of a response signed now, or `None` if it would already be
    /// expired (statuses too old, or responder certificate ended). `floor`:
    /// the latest revocation time answered (a status is not known before
    /// it happened, even if the last sync is older).
    pub fn times(&self, responder: &Responder, now: i64, floor: i64) -> Option<Times> {
        let this_update = self.store.last_sync().max(floor).min(now);
        let next_update = (this_update + self.policy.validity).min(responder.not_after);
        (next_update > now && responder.not_before <= now).then_some(Times {
            produced_at: now,
            this_update,
            next_update,
        })
    }

    fn sign(
        &self,
        responder: &Arc<Responder>,
        answers: Vec<SingleAnswer>,
        times: Times,
        nonce: Option<&[u8]>,
    ) -> Result<Signed, response::BuildError> {
        let signed = response::sign(responder, answers, times, nonce);
        self.metrics.signatures.fetch_add(1, Ordering::Relaxed);
        signed
    }

    /// Signs the canonical single response of a certificate.
    pub fn sign_single(
        &self,
        issuer: &Issuer,
        responder: &Arc<Responder>,
        alg: HashAlg,
        serial: &Serial,
        status: Status,
        times: Times,
    ) -> Result<Signed, response::BuildError> {
        let cert_id = canonical_cert_id(
            alg,
            &issuer.name_hash[alg.index()],
            &issuer.key_hash[alg.index()],
            serial,
        )?;
        self.sign(
            responder,
            vec![SingleAnswer { cert_id, status }],
            times,
            None,
        )
    }

    fn single(
        &self,
        issuer: &Issuer,
        responder: &Arc<Responder>,
        id: &RequestedId,
        now: i64,
    ) -> Answer {
        let Some(serial) = id.serial else {
            // A number no certificate of this CA has: never issued.
            return self.fresh(issuer, responder, std::slice::from_ref(id), None, now);
        };
        let alg = id.alg;
        let key = (issuer.index, serial);
        let cache_key = (issuer.index, alg, serial);
        match self.store.lookup(&key, alg) {
            Lookup::Known {
                signed: Some(s),
                status,
                ..
            } if s.next_update > now => {
                Answer::from_signed(&s, status, Production::Presigned, true)
            }
            Lookup::Known {
                status, version, ..
            } => {
                if !self.policy.presign[alg.index()] {
                    if let Some(s) = self.store.cache.get(&cache_key, now) {
                        return Answer::from_signed(&s, status, Production::Cached, true);
                    }
                }
                let Some(times) = self.times(responder, now, floor_of(status)) else {
                    return Answer::error(OcspResponseStatus::TryLater);
                };
                match self.sign_single(issuer, responder, alg, &serial, status, times) {
                    Ok(s) => {
                        let s = Arc::new(s);
                        if self.policy.presign[alg.index()] {
                            self.store.put_signed(&key, alg, version, s.clone());
                        } else if self.store.status(&key) == Some((status, version)) {
                            self.store.cache.insert(cache_key, s.clone());
                        }
                        Answer::from_signed(&s, status, Production::Signed, true)
                    }
                    Err(_) => Answer::error(OcspResponseStatus::InternalError),
                }
            }
            Lookup::Unknown => {
                if let Some(s) = self.store.cache.get(&cache_key, now) {
                    return Answer::from_signed(&s, Status::NotIssued, Production::Cached, true);
                }
                if !self.in_sync(now) {
                    return Answer::error(OcspResponseStatus::TryLater);
                }
                let Some(times) = self.times(responder, now, 0) else {
                    return Answer::error(OcspResponseStatus::TryLater);
                };
                match self.sign_single(issuer, responder, alg, &serial, Status::NotIssued, times) {
                    Ok(s) => {
                        let s = Arc::new(s);
                        // Issued meanwhile? Then the feed will invalidate;
                        // do not cache an answer that is already wrong.
                        if self.store.status(&key).is_none() {
                            self.store.cache.insert(cache_key, s.clone());
                        }
                        Answer::from_signed(&s, Status::NotIssued, Production::Signed, true)
                    }
                    Err(_) => Answer::error(OcspResponseStatus::InternalError),
                }
            }
        }
    }

    /// Signs an answer for this request only (nonce, several CertIDs).
    fn fresh(
        &self,
        issuer: &Issuer,
        responder: &Arc<Responder>,
        ids: &[RequestedId],
        nonce: Option<&[u8]>,
        now: i64,
    ) -> Answer {
        let mut answers = Vec::with_capacity(ids.len());
        for id in ids {
            let status = match id
                .serial
                .and_then(|s| self.store.status(&(issuer.index, s)))
            {
                Some((status, _)) => status,
                None if self.in_sync(now) => Status::NotIssued,
                None => return Answer::error(OcspResponseStatus::TryLater),
            };
            answers.push(SingleAnswer {
                cert_id: id.cert_id.clone(),
                status,
            });
        }
        let floor = answers
            .iter()
            .map(|a| floor_of(a.status))
            .max()
            .unwrap_or(0);
        let Some(times) = self.times(responder, now, floor) else {
            return Answer::error(OcspResponseStatus::TryLater);
        };
        let outcome = if answers.iter().any(|a| a.status == Status::NotIssued) {
            Outcome::NotIssued
        } else if answers.iter().any(|a| a.status != Status::Good) {
            Outcome::Revoked
        } else {
            Outcome::Good
        };
        match self.sign(responder, answers, times, nonce) {
            Ok(s) => Answer {
                body: s.to_der(),
                outcome,
                production: Production::Signed,
                cache: None,
            },
            Err(_) => Answer::error(OcspResponseStatus::InternalError),
        }
    }
}

impl Source for MemorySource {
    fn answer(&self, request: &ParsedRequest) -> Answer {
        if !self.store.is_ready() {
            return Answer::error(OcspResponseStatus::TryLater);
        }
        let issuers = self.store.issuers();
        let mut issuer: Option<&Issuer> = None;
        for id in &request.ids {
            let found = issuers.find(
                id.alg,
                id.cert_id.issuer_name_hash.as_bytes(),
                id.cert_id.issuer_key_hash.as_bytes(),
            );
            match (found, issuer) {
                (None, _) => return Answer::error(OcspResponseStatus::Unauthorized),
                (Some(f), Some(i)) if f.index != i.index => {
                    // One response has one signer: CertIDs of several CAs
                    // cannot be answered together.
                    return Answer::error(OcspResponseStatus::Unauthorized);
                }
                (Some(f), _) => issuer = Some(f),
            }
        }
        let Some(issuer) = issuer else {
            return Answer::error(OcspResponseStatus::MalformedRequest);
        };
        let now = self.now();
        let Some(responder) = issuer.responder.as_ref().filter(|r| r.not_after > now) else {
            return Answer::error(OcspResponseStatus::TryLater);
        };
        let nonce = request.nonce.as_deref().filter(|_| self.policy.nonce);
        if request.ids.len() == 1 && nonce.is_none() {
            self.single(issuer, responder, &request.ids[0], now)
        } else {
            self.fresh(issuer, responder, &request.ids, nonce, now)
        }
    }

    fn health(&self) -> Health {
        let now = self.now();
        let ready = self.store.is_ready();
        let db_up = self.store.db_up();
        let last_sync = self.store.last_sync();
        let mut problems = Vec::new();
        if !ready {
            problems.push("statuses not loaded yet".to_string());
        }
        if !db_up {
            problems.push("database unreachable: serving the statuses held".to_string());
        } else if ready && now - last_sync > self.policy.sync_grace {
            problems.push(format!(
                "no sync with the database for {} s",
                now - last_sync
            ));
        }
        let issuers = self.store.issuers();
        for i in &issuers.list {
            match &i.responder {
                None => problems.push(format!("{}: no valid responder certificate", i.name)),
                Some(r) if r.not_after <= now => problems.push(format!(
                    "{}: responder certificate {} expired",
                    i.name, r.serial
                )),
                Some(_) => {}
            }
        }
        Health {
            now,
            ready,
            db_up,
            last_sync,
            problems,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{parse, Limits};
    use crate::testutil::Fixture;
    use chrono::{TimeZone, Utc};
    use der::asn1::OctetString;
    use der::Decode;
    use pki_store::clock::FixedClock;
    use x509_ocsp::{BasicOcspResponse, CertId, CertStatus, OcspResponse};

    /// A time inside the fixture's responder validity.
    fn now() -> i64 {
        crate::testutil::test_responder().not_before + 1000
    }

    fn setup(policy_nonce: bool) -> (MemorySource, FixedClock) {
        let f = Fixture::shared();
        let store = Arc::new(Store::new(100));
        store.set_issuers(f.issuers.clone());
        let clock = FixedClock::new(Utc.timestamp_opt(now(), 0).unwrap());
        let source = MemorySource {
            store,
            clock: Arc::new(clock.clone()),
            policy: Policy {
                validity: 3600,
                nonce: policy_nonce,
                presign: [true, false],
                sync_grace: 30,
            },
            metrics: Arc::new(Metrics::default()),
        };
        (source, clock)
    }

    fn ready(source: &MemorySource) {
        source.store.set_db_up(true);
        source.store.set_last_sync(now());
        source.store.set_ready();
    }

    fn id_for(issuer: &str, alg: HashAlg, serial: &Serial) -> CertId {
        let i = Fixture::shared().issuers.by_name(issuer).unwrap().clone();
        let mut id = canonical_cert_id(
            alg,
            &i.name_hash[alg.index()],
            &i.key_hash[alg.index()],
            serial,
        )
        .unwrap();
        id.hash_algorithm.parameters = None;
        id
    }

    fn ask(source: &MemorySource, ids: Vec<CertId>, nonce: Option<Vec<u8>>) -> Answer {
        let der = crate::request::tests::request_der(ids, nonce);
        source.answer(&parse(&der, &Limits::default()).unwrap())
    }

    fn basic(answer: &Answer) -> BasicOcspResponse {
        let r = OcspResponse::from_der(&answer.body).unwrap();
        BasicOcspResponse::from_der(r.response_bytes.unwrap().response.as_bytes()).unwrap()
    }

    #[test]
    fn answers_from_memory_and_signs_what_is_missing() {
        let (source, clock) = setup(true);
        let serial = Serial::from_hex("4a01").unwrap();
        let ca = Fixture::shared()
            .issuers
            .by_name("identity-card-ca")
            .unwrap()
            .index;
        let id = id_for("identity-card-ca", HashAlg::Sha1, &serial);
        assert_eq!(
            ask(&source, vec![id.clone()], None).outcome,
            Outcome::TryLater
        );
        ready(&source);
        source.store.set_status((ca, serial), Status::Good);

        let first = ask(&source, vec![id.clone()], None);
        assert_eq!(
            (first.outcome, first.production),
            (Outcome::Good, Production::Signed)
        );
        let second = ask(&source, vec![id.clone()], None);
        assert_eq!(second.production, Production::Presigned);
        assert_eq!(first.body, second.body);
        let cache = second.cache.clone().unwrap();
        assert_eq!(
            (cache.this_update, cache.next_update),
            (now(), now() + 3600)
        );
        let b = basic(&second);
        assert!(matches!(
            b.tbs_response_data.responses[0].cert_status,
            CertStatus::Good(_)
        ));
        assert_eq!(b.certs.unwrap().len(), 1);

        // SHA-256 is not pre-signed here: signed once, then from the cache.
        let id256 = id_for("identity-card-ca", HashAlg::Sha256, &serial);
        assert_eq!(
            ask(&source, vec![id256.clone()], None).production,
            Production::Signed
        );
        assert_eq!(
            ask(&source, vec![id256], None).production,
            Production::Cached
        );

        // A revocation replaces the answer at once.
        source.store.set_status(
            (ca, serial),
            Status::Revoked {
                at: now() - 5,
                reason: Some(pki_store::domain::Reason::KeyCompromise),
            },
        );
        let revoked = ask(&source, vec![id.clone()], None);
        assert_eq!(revoked.outcome, Outcome::Revoked);
        match basic(&revoked).tbs_response_data.responses[0].cert_status {
            CertStatus::Revoked(info) => {
                assert_eq!(
                    info.revocation_reason,
                    Some(x509_cert::ext::pkix::CrlReason::KeyCompromise)
                );
            }
            other => panic!("not revoked: {other:?}"),
        }

        // Degraded: what is held is served until it expires, then tryLater.
        source.store.set_db_up(false);
        clock.set(Utc.timestamp_opt(now() + 3599, 0).unwrap());
        assert_eq!(
            ask(&source, vec![id.clone()], None).outcome,
            Outcome::Revoked
        );
        clock.set(Utc.timestamp_opt(now() + 3600, 0).unwrap());
        assert_eq!(ask(&source, vec![id], None).outcome, Outcome::TryLater);
        assert!(!source.health().healthy());
    }

    #[test]
    fn never_issued_serials_are_revoked_with_the_extended_definition() {
        let (source, _) = setup(true);
        ready(&source);
        let id = id_for(
            "residence-card-ca",
            HashAlg::Sha256,
            &Serial::from_hex("77").unwrap(),
        );
        let a = ask(&source, vec![id.clone()], None);
        assert_eq!(
            (a.outcome, a.production),
            (Outcome::NotIssued, Production::Signed)
        );
        let b = basic(&a);
        match b.tbs_response_data.responses[0].cert_status {
            CertStatus::Revoked(info) => {
                assert_eq!(info.revocation_time.0.to_unix_duration().as_secs(), 0);
                assert_eq!(
                    info.revocation_reason,
                    Some(x509_cert::ext::pkix::CrlReason::CertificateHold)
                );
            }
            other => panic!("not revoked: {other:?}"),
        }
        assert!(b
            .tbs_response_data
            .response_extensions
            .unwrap()
            .iter()
            .any(|e| e.extn_id == const_oid::db::rfc6960::ID_PKIX_OCSP_EXTENDED_REVOKE));
        assert_eq!(
            ask(&source, vec![id.clone()], None).production,
            Production::Cached
        );
        // Out of sync: "never issued" cannot be claimed.
        source.store.cache.invalidate_issuer(
            Fixture::shared()
                .issuers
                .by_name("residence-card-ca")
                .unwrap()
                .index,
        );
        source.store.set_db_up(false);
        assert_eq!(ask(&source, vec![id], None).outcome, Outcome::TryLater);
    }

    #[test]
    fn nonces_unknown_issuers_and_several_certids() {
        let (source, _) = setup(true);
        ready(&source);
        let ca = Fixture::shared()
            .issuers
            .by_name("identity-card-ca")
            .unwrap()
            .index;
        let s1 = Serial::from_hex("4a02").unwrap();
        source.store.set_status((ca, s1), Status::Good);
        let id = id_for("identity-card-ca", HashAlg::Sha1, &s1);

        let with_nonce = ask(&source, vec![id.clone()], Some(vec![9; 32]));
        assert_eq!(with_nonce.production, Production::Signed);
        assert!(with_nonce.cache.is_none());
        assert_eq!(
            basic(&with_nonce).nonce().unwrap().0,
            OctetString::new(vec![9u8; 32]).unwrap()
        );

        let mut stranger = id.clone();
        stranger.issuer_key_hash = OctetString::new(vec![0u8; 20]).unwrap();
        assert_eq!(
            ask(&source, vec![stranger], None).outcome,
            Outcome::Unauthorized
        );

        let other_ca = id_for("root", HashAlg::Sha1, &s1);
        assert_eq!(
            ask(&source, vec![id.clone(), other_ca], None).outcome,
            Outcome::Unauthorized
        );

        let unknown = id_for(
            "identity-card-ca",
            HashAlg::Sha1,
            &Serial::from_hex("99").unwrap(),
        );
        let both = ask(&source, vec![id.clone(), unknown], None);
        assert_eq!(both.outcome, Outcome::NotIssued);
        assert_eq!(basic(&both).tbs_response_data.responses.len(), 2);

        // Nonces off: the pre-signed answer, no nonce.
        let (quiet, _) = setup(false);
        ready(&quiet);
        quiet.store.set_status((ca, s1), Status::Good);
        let a = ask(&quiet, vec![id], Some(vec![9; 32]));
        assert!(a.cache.is_some());
        assert!(basic(&a).nonce().is_none());
    }
}
