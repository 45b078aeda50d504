//! Following the change feed (the audit log, `pki_store::feed::changes_since`):
//! the feed position, the new statuses of the serials that changed (their old
//! responses dropped at once, the new ones signed now when few or queued when
//! many), the reload of CAs and responders when one is created or rotated, and
//! the publication marks written into `ocsp_publications`.

use super::load::{status_of, StatusRow, STATUS_COLUMNS};
use super::sweep::sign_keys;
use super::{RefreshError, Refresher};
use crate::request::Serial;
use crate::store::Key;
use diesel::prelude::*;
use pki_store::feed;
use pki_store::storage::schema::{authorities, certificates, ocsp_publications, ocsp_responders};
use pki_store::storage::{db_time, Db};
use pki_store::with_conn;
use std::sync::atomic::Ordering;

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

impl Refresher {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::refresher::RefreshSettings;
    use crate::request::HashAlg;
    use crate::response::Status;
    use crate::source::{MemorySource, Policy};
    use crate::store::{Lookup, Store};
    use crate::testutil::Fixture;
    use chrono::NaiveDateTime;
    use pki_keys::KeyStore;
    use pki_registration::lifecycle::{Scope, Transition};
    use pki_store::clock::SystemClock;
    use pki_store::config::KeyPurpose;
    use pki_store::domain::Reason;
    use std::sync::Arc;

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
