//! The published-status rule (CPS 4.9.7, 4.9.9, 4.9.13): how a stored
//! certificate appears to relying parties. The OCSP responder, the CRL
//! publisher and `pki-admin cert show` all ask [`published_status`]; no
//! other code turns a stored status into `good` or `revoked`.
//!
//! | stored status | OCSP | CRL entry |
//! | --- | --- | --- |
//! | `active`, `expired` | good | none |
//! | `revoked` | revoked at the revocation time, with its reason code (none when no reason was stated) | the same, with the invalidity date |
//! | `suspended` | revoked at the suspension time, `certificateHold` | the same, with the invalidity date |
//! | `hold` (pending activation) | revoked at issuance, `certificateHold` | the same |

use crate::domain::{CertStatus, Reason};
use crate::storage::models::CertificateRow;
use chrono::NaiveDateTime;

/// The stored facts the rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusFacts {
    pub status: CertStatus,
    pub issued_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    pub reason: Option<Reason>,
    pub invalidity_date: Option<NaiveDateTime>,
}

impl From<&CertificateRow> for StatusFacts {
    fn from(row: &CertificateRow) -> Self {
        StatusFacts {
            status: row.status,
            issued_at: row.issued_at,
            revoked_at: row.revoked_at,
            reason: row.revocation_reason,
            invalidity_date: row.invalidity_date,
        }
    }
}

/// What relying parties are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishedStatus {
    /// OCSP `good`; on no CRL.
    Good,
    /// OCSP `revoked`; an entry on the complete CRL of its scope.
    Revoked {
        /// The revocation time (OCSP revocationTime, CRL revocationDate).
        at: NaiveDateTime,
        /// The CRLReason; `None`: no reason code at all.
        reason: Option<Reason>,
        /// Since when the key is known to be unusable (CRL entry extension).
        invalidity_date: Option<NaiveDateTime>,
    },
}

impl PublishedStatus {
    /// Is the certificate on the CRL (and `revoked` in OCSP)?
    pub fn is_listed(self) -> bool {
        matches!(self, PublishedStatus::Revoked { .. })
    }

    /// The words relying parties see: `good`, or `revoked` with the
    /// reason's name (for people and `pki-admin cert show`).
    pub fn describe(self) -> String {
        match self {
            PublishedStatus::Good => "good".into(),
            PublishedStatus::Revoked { at, reason, .. } => format!(
                "revoked since {} ({})",
                at.format("%Y-%m-%dT%H:%M:%SZ"),
                reason.map_or("no reason code", Reason::as_str)
            ),
        }
    }
}

/// The one rule: how a stored certificate is published. A revoked or
/// suspended row always has its time (a database CHECK); were it missing,
/// the issuance time stands in, in OCSP and the CRL alike.
pub fn published_status(facts: StatusFacts) -> PublishedStatus {
    let at = facts.revoked_at.unwrap_or(facts.issued_at);
    match facts.status {
        CertStatus::Active | CertStatus::Expired => PublishedStatus::Good,
        CertStatus::Revoked => PublishedStatus::Revoked {
            at,
            reason: facts.reason,
            invalidity_date: facts.invalidity_date,
        },
        CertStatus::Suspended => PublishedStatus::Revoked {
            at,
            reason: Some(Reason::CertificateHold),
            invalidity_date: facts.invalidity_date,
        },
        CertStatus::PendingActivation => PublishedStatus::Revoked {
            at: facts.issued_at,
            reason: Some(Reason::CertificateHold),
            invalidity_date: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(status: CertStatus, reason: Option<Reason>) -> StatusFacts {
        let t = |s: &str| s.parse::<NaiveDateTime>().unwrap();
        StatusFacts {
            status,
            issued_at: t("2026-01-01T00:00:00"),
            revoked_at: matches!(status, CertStatus::Revoked | CertStatus::Suspended)
                .then(|| t("2026-02-01T00:00:00")),
            reason,
            invalidity_date: None,
        }
    }

    #[test]
    fn every_status_has_one_published_form() {
        for status in CertStatus::ALL {
            let published = published_status(facts(*status, None));
            assert_eq!(
                published.is_listed(),
                !matches!(status, CertStatus::Active | CertStatus::Expired),
                "{status}"
            );
        }
        let hold = published_status(facts(CertStatus::PendingActivation, None));
        assert_eq!(
            hold,
            PublishedStatus::Revoked {
                at: "2026-01-01T00:00:00".parse().unwrap(),
                reason: Some(Reason::CertificateHold),
                invalidity_date: None
            }
        );
        let revoked = published_status(facts(CertStatus::Revoked, Some(Reason::KeyCompromise)));
        assert!(revoked.describe().contains("keyCompromise"));
        let unstated = published_status(facts(CertStatus::Revoked, None));
        assert!(unstated.describe().contains("no reason code"));
    }
}
