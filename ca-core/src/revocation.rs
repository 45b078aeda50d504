//! Revocation vocabulary (RFC 5280 reasons), officers' status changes by
//! serial or card (applied by [`crate::lifecycle`]), and the change feed: the audit
//! records that the OCSP responder and the CRL
//! publisher follow ([`changes_since`]).

use crate::ca::Ca;
use crate::error::Result;
use crate::lifecycle::{self, HoldCause, Scope, Transition};
use crate::storage::models::CertificateRow;
use crate::storage::schema::{audit_head, audit_log};
use crate::storage::{Db, StorageError};
use crate::with_conn;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

/// RFC 5280 CRLReason values this CA writes. `unspecified` is never written:
/// a revocation without a stated reason carries no reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Reason {
    KeyCompromise,
    #[serde(rename = "cACompromise")]
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    CertificateHold,
    PrivilegeWithdrawn,
}

impl Reason {
    pub const ALL: [Reason; 7] = [
        Reason::KeyCompromise,
        Reason::CaCompromise,
        Reason::AffiliationChanged,
        Reason::Superseded,
        Reason::CessationOfOperation,
        Reason::CertificateHold,
        Reason::PrivilegeWithdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::KeyCompromise => "keyCompromise",
            Reason::CaCompromise => "cACompromise",
            Reason::AffiliationChanged => "affiliationChanged",
            Reason::Superseded => "superseded",
            Reason::CessationOfOperation => "cessationOfOperation",
            Reason::CertificateHold => "certificateHold",
            Reason::PrivilegeWithdrawn => "privilegeWithdrawn",
        }
    }

    /// The CRLReason code (RFC 5280 §5.3.1).
    pub fn code(self) -> u8 {
        match self {
            Reason::KeyCompromise => 1,
            Reason::CaCompromise => 2,
            Reason::AffiliationChanged => 3,
            Reason::Superseded => 4,
            Reason::CessationOfOperation => 5,
            Reason::CertificateHold => 6,
            Reason::PrivilegeWithdrawn => 9,
        }
    }

    pub fn parse(s: &str) -> std::result::Result<Reason, String> {
        Reason::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "{s:?} is not a revocation reason (one of: {}, or unspecified)",
                    Reason::ALL.map(|r| r.as_str()).join(", ")
                )
            })
    }
}

/// What to change.
#[derive(Debug, Clone)]
pub enum Target {
    Serial(String),
    /// Every live certificate of a card.
    Card(String),
}

impl Target {
    pub fn scope(&self) -> Scope {
        match self {
            Target::Serial(s) => Scope::Serial(s.clone()),
            Target::Card(c) => Scope::Card(c.clone()),
        }
    }
}

/// An officer's status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Final. `None` = no reason code.
    Revoke(Option<Reason>),
    Suspend,
    Resume,
}

impl Change {
    pub fn verb(self) -> &'static str {
        self.transition().verb()
    }

    /// The lifecycle transition: an officer's suspension and release are
    /// holds of cause `officer`.
    pub fn transition(self) -> Transition {
        match self {
            Change::Revoke(r) => Transition::Revoke(r),
            Change::Suspend => Transition::Suspend(HoldCause::Officer),
            Change::Resume => Transition::Resume(HoldCause::Officer),
        }
    }
}

/// Applies an officer's change (see [`lifecycle::change`]); returns the
/// changed certificates. All or nothing.
pub fn apply(
    ca: &mut Ca,
    target: &Target,
    change: Change,
    invalidity: Option<NaiveDateTime>,
) -> Result<Vec<CertificateRow>> {
    lifecycle::change(
        ca,
        &target.scope(),
        change.transition(),
        invalidity,
        serde_json::Value::Null,
    )
}

/// The current position of the change feed (the audit chain's head).
pub fn feed_position(db: &mut Db) -> Result<i64> {
    Ok(
        with_conn!(db, c => audit_head::table.find(1).select(audit_head::seq).first(c))
            .map_err(StorageError::from)?,
    )
}

/// What changed after a feed position.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Certificates issued or whose status changed.
    pub serials: Vec<String>,
    /// A CA or an OCSP responder certificate was created or rotated.
    pub authorities_changed: bool,
    /// The position to ask from next time.
    pub position: i64,
}

/// What changed after `position` (at most `limit` audit records). Writers
/// are serialised, so audit sequence numbers are assigned in commit order
/// and a reader following the feed never skips a change.
pub fn changes_since(db: &mut Db, position: i64, limit: i64) -> Result<Changes> {
    let rows: Vec<(i64, String, String)> = with_conn!(db, c => audit_log::table
        .filter(audit_log::seq.gt(position))
        .order(audit_log::seq)
        .limit(limit)
        .select((audit_log::seq, audit_log::action, audit_log::subject))
        .load(c))
    .map_err(StorageError::from)?;
    let mut changes = Changes {
        position: rows.last().map_or(position, |r| r.0),
        ..Default::default()
    };
    for (_, action, subject) in rows {
        if action.starts_with("certificate.") {
            changes.serials.push(subject);
        } else if action == "ca.create" || action.starts_with("ocsp-responder.") {
            changes.authorities_changed = true;
        }
    }
    Ok(changes)
}

/// Parses an invalidity date: `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM[:SS]` (UTC).
pub fn parse_invalidity(s: &str) -> std::result::Result<NaiveDateTime, String> {
    crate::input::parse_birth_datetime(s)
        .or_else(|_| crate::input::parse_date(s).map(|d| d.and_time(chrono::NaiveTime::MIN)))
        .map_err(|_| {
            format!("{s:?} is not a date (YYYY-MM-DD) or date and time (YYYY-MM-DDTHH:MM) in UTC")
        })
}

/// The time the status services show as the revocation time of a row:
/// its revocation or suspension time; for a certificate on hold pending
/// activation, its issuance.
pub fn revocation_time(row: &CertificateRow) -> Option<DateTime<Utc>> {
    match row.status.as_str() {
        "revoked" | "suspended" => row.revoked_at.map(|t| t.and_utc()),
        "hold" => Some(row.issued_at.and_utc()),
        _ => None,
    }
}
