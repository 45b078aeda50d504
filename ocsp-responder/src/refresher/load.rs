//! The start-up load: the feed position, the CAs and their responders, and
//! every certificate's status read into the store (keyset pages per CA,
//! status columns only), each certificate queued for pre-signing. Also owns
//! the status row of a certificate and its answer (the core's
//! published-status rule), which the feed follower reuses.

use super::{RefreshError, Refresher};
use crate::issuers::{self, Issuers};
use crate::request::Serial;
use crate::response::Status;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use pki_store::domain::{CertStatus, Reason};
use pki_store::feed;
use pki_store::published::StatusFacts;
use pki_store::storage::schema::certificates;
use pki_store::storage::Db;
use pki_store::with_conn;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// The status columns of a certificate.
#[derive(Debug, Clone, Queryable)]
pub(super) struct StatusRow {
    pub(super) serial: String,
    pub(super) issuer: String,
    status: CertStatus,
    issued_at: NaiveDateTime,
    revoked_at: Option<NaiveDateTime>,
    revocation_reason: Option<Reason>,
}

/// The answer for a stored status: the core's published-status rule.
pub(super) fn status_of(row: &StatusRow) -> Status {
    Status::of(StatusFacts {
        status: row.status,
        issued_at: row.issued_at,
        revoked_at: row.revoked_at,
        reason: row.revocation_reason,
        invalidity_date: None,
    })
}

pub(super) type StatusColumns = (
    certificates::serial,
    certificates::issuer,
    certificates::status,
    certificates::issued_at,
    certificates::revoked_at,
    certificates::revocation_reason,
);

pub(super) const STATUS_COLUMNS: StatusColumns = (
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

impl Refresher {
    pub(super) fn initial_load(&mut self) -> Result<(), RefreshError> {
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

    pub(super) fn load_issuers(
        &mut self,
        previous: Option<&Issuers>,
    ) -> Result<Issuers, RefreshError> {
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
    pub(super) fn load_issuer(&mut self, index: u16, name: &str) -> Result<usize, RefreshError> {
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
}
