//! The change feed: the audit records that tell the status services (OCSP
//! responder, CRL publisher) and the SLA report what changed, read through
//! one reader ([`read`]) as typed events. Writers are serialised by
//! [`Db::write`](crate::storage::Db::write), so sequence numbers follow
//! commit order and a reader following the feed never skips a change.

use crate::domain::AuditAction;
use crate::storage::schema::{audit_head, audit_log};
use crate::storage::{Db, StorageError};
use crate::with_conn;
use diesel::prelude::*;

/// What one feed record tells a status service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEvent {
    /// A certificate was issued (`issued`) or its status changed.
    Certificate { serial: String, issued: bool },
    /// A CA or an OCSP responder certificate was created or rotated.
    Authorities,
    /// Anything else (registry, requests, reminders, CRLs...).
    Other,
}

impl FeedEvent {
    /// The event of an audit record.
    pub fn of(action: AuditAction, subject: String) -> FeedEvent {
        use AuditAction as A;
        match action {
            A::CertificateIssue => FeedEvent::Certificate {
                serial: subject,
                issued: true,
            },
            A::CertificateActivate
            | A::CertificateRevoke
            | A::CertificateSuspend
            | A::CertificateResume
            | A::CertificateExpire => FeedEvent::Certificate {
                serial: subject,
                issued: false,
            },
            A::CaCreate | A::OcspResponderCreate | A::OcspResponderRotate => FeedEvent::Authorities,
            _ => FeedEvent::Other,
        }
    }
}

/// One record of the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRecord {
    pub seq: i64,
    pub event: FeedEvent,
}

/// The current position of the feed (the audit chain's head).
pub fn position(db: &mut Db) -> Result<i64, StorageError> {
    Ok(with_conn!(db, c => audit_head::table.find(1).select(audit_head::seq).first(c))?)
}

/// The feed after `after`, at most `limit` records, oldest first. An
/// action this build does not know (written by a newer one) reads as
/// [`FeedEvent::Other`].
pub fn read(db: &mut Db, after: i64, limit: i64) -> Result<Vec<FeedRecord>, StorageError> {
    let rows: Vec<(i64, String, String)> = with_conn!(db, c => audit_log::table
        .filter(audit_log::seq.gt(after))
        .order(audit_log::seq)
        .limit(limit)
        .select((audit_log::seq, audit_log::action, audit_log::subject))
        .load(c))?;
    Ok(rows
        .into_iter()
        .map(|(seq, action, subject)| FeedRecord {
            seq,
            event: match action.parse::<AuditAction>() {
                Ok(action) => FeedEvent::of(action, subject),
                Err(_) => FeedEvent::Other,
            },
        })
        .collect())
}

/// What changed after a feed position, summed up.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Certificates issued or whose status changed, in feed order (a serial
    /// may repeat).
    pub serials: Vec<String>,
    /// A CA or an OCSP responder certificate was created or rotated.
    pub authorities_changed: bool,
    /// The position to ask from next time.
    pub position: i64,
}

/// What changed after `position` (at most `limit` feed records).
pub fn changes_since(db: &mut Db, position: i64, limit: i64) -> Result<Changes, StorageError> {
    let records = read(db, position, limit)?;
    let mut changes = Changes {
        position: records.last().map_or(position, |r| r.seq),
        ..Default::default()
    };
    for r in records {
        match r.event {
            FeedEvent::Certificate { serial, .. } => changes.serials.push(serial),
            FeedEvent::Authorities => changes.authorities_changed = true,
            FeedEvent::Other => {}
        }
    }
    Ok(changes)
}

/// Serials of certificates issued or changed in the feed `(after, upto]`,
/// deduplicated, in the order first seen.
pub fn changed_serials(db: &mut Db, after: i64, upto: i64) -> Result<Vec<String>, StorageError> {
    const PAGE: i64 = 10_000;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let mut pos = after;
    while pos < upto {
        let records = read(db, pos, PAGE)?;
        let Some(last) = records.last() else { break };
        pos = last.seq;
        for r in records {
            if r.seq > upto {
                return Ok(out);
            }
            if let FeedEvent::Certificate { serial, .. } = r.event {
                if seen.insert(serial.clone()) {
                    out.push(serial);
                }
            }
        }
    }
    Ok(out)
}
