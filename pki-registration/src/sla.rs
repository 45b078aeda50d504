//! The revocation commitment (CPS 4.9.5) measured per request: every
//! request executed and published in OCSP and in a CRL within **24 hours**
//! of being due, with an operational target of **5 minutes**.
//!
//! A request is due when reported, on its effective date, or when the
//! replacement card's certificates are issued ([`crate::requests`]). It is
//! published in OCSP once an OCSP responder recorded a publication at or
//! past the request's change-feed position (`ocsp_publications`, written by
//! the responder after signing the changed statuses), and in a CRL once
//! every issuer it touched published a CRL (complete or delta) read at or
//! past that position (`crls.feed_position`). With several responders the
//! first one to publish counts. [`stamp_publications`] copies those times
//! onto the requests, so that the report reads one table.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use pki_store::domain::{Reason, RequestKind, RequestState, ScopeKind};
use pki_store::error::Result;
use pki_store::storage::models::RevocationRequestRow;
use pki_store::storage::schema::{crls, ocsp_publications, registry_events, revocation_requests};
use pki_store::storage::{db_time, Db};
use pki_store::with_conn;
use serde::Serialize;

/// The promise to holders (CPS 4.9.5).
pub const LIMIT: Duration = Duration::hours(24);
/// The operational target.
pub const TARGET: Duration = Duration::minutes(5);

/// Counts over all requests, for `/metrics`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SlaSummary {
    pub total: u64,
    /// Due and not yet executed.
    pub pending: u64,
    /// Executed, not yet in both OCSP and a CRL.
    pub unpublished: u64,
    /// Unfinished and past the 5-minute target, still inside 24 hours.
    pub at_risk: u64,
    /// Finished after, or still unfinished beyond, the 24-hour limit.
    pub late: u64,
    /// Age of the oldest unfinished due request (0 if none).
    pub oldest_unfinished_seconds: i64,
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Waiting for the replacement card's certificates.
    WaitingForNewCard,
    /// Due later.
    Scheduled,
    /// Due, not executed.
    Pending,
    /// Executed, not yet published in both OCSP and a CRL.
    Executed,
    /// Executed and published.
    Published,
}

/// How a request does against the commitment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Within the 5-minute target (or not due yet).
    Ok,
    /// Finished after the target, within 24 hours.
    OverTarget,
    /// Unfinished and past the target, within 24 hours.
    AtRisk,
    /// Beyond 24 hours.
    Late,
}

/// One request in the report (durations in seconds from due).
#[derive(Debug, Clone, Serialize)]
pub struct SlaLine {
    pub request: String,
    pub event_type: Option<String>,
    pub change: RequestKind,
    pub reason: Option<Reason>,
    pub scope: ScopeKind,
    pub target: String,
    pub received_at: NaiveDateTime,
    pub due_at: Option<NaiveDateTime>,
    pub executed_at: Option<NaiveDateTime>,
    pub ocsp_published_at: Option<NaiveDateTime>,
    pub crl_published_at: Option<NaiveDateTime>,
    pub certificates: Option<i64>,
    pub to_execute_seconds: Option<i64>,
    pub to_ocsp_seconds: Option<i64>,
    pub to_crl_seconds: Option<i64>,
    pub stage: Stage,
    pub verdict: Verdict,
}

/// Records when executed requests reached OCSP and a CRL; returns how many
/// requests got a new time. A request that changed no certificate has
/// nothing to publish: its publication times are its execution time.
pub fn stamp_publications(db: &mut Db) -> Result<usize> {
    let open: Vec<RevocationRequestRow> = with_conn!(db, c => revocation_requests::table
        .filter(revocation_requests::state.eq(RequestState::Executed))
        .filter(revocation_requests::ocsp_published_at.is_null()
            .or(revocation_requests::crl_published_at.is_null()))
        .order(revocation_requests::feed_position)
        .limit(20_000)
        .select(RevocationRequestRow::as_select())
        .load(c))?;
    let mut stamped = 0;
    for request in open {
        let (ocsp, crl) = if request.certificates.unwrap_or(0) == 0 {
            (request.executed_at, request.executed_at)
        } else {
            let position = request.feed_position.unwrap_or(i64::MAX);
            let ocsp = match request.ocsp_published_at {
                Some(t) => Some(t),
                None => first_ocsp(db, position)?,
            };
            let crl = match request.crl_published_at {
                Some(t) => Some(t),
                None => first_crl(db, request.issuers.as_deref().unwrap_or(""), position)?,
            };
            (ocsp, crl)
        };
        if ocsp != request.ocsp_published_at || crl != request.crl_published_at {
            with_conn!(db, c => diesel::update(revocation_requests::table.find(&request.id))
                .set((
                    revocation_requests::ocsp_published_at.eq(ocsp),
                    revocation_requests::crl_published_at.eq(crl),
                ))
                .execute(c))?;
            stamped += 1;
        }
    }
    Ok(stamped)
}

fn first_ocsp(db: &mut Db, position: i64) -> Result<Option<NaiveDateTime>> {
    Ok(with_conn!(db, c => ocsp_publications::table
        .filter(ocsp_publications::feed_position.ge(position))
        .select(diesel::dsl::min(ocsp_publications::published_at))
        .first::<Option<NaiveDateTime>>(c))?)
}

/// The time by which every issuer published a CRL covering `position`.
fn first_crl(db: &mut Db, issuers: &str, position: i64) -> Result<Option<NaiveDateTime>> {
    let mut latest: Option<NaiveDateTime> = None;
    for issuer in issuers.split(',').filter(|s| !s.is_empty()) {
        let first: Option<NaiveDateTime> = with_conn!(db, c => crls::table
            .filter(crls::issuer.eq(issuer))
            .filter(crls::feed_position.ge(position))
            .select(diesel::dsl::min(crls::published_at))
            .first::<Option<NaiveDateTime>>(c))?;
        match first {
            None => return Ok(None),
            Some(t) => latest = Some(latest.map_or(t, |l| l.max(t))),
        }
    }
    Ok(latest)
}

fn seconds(from: Option<NaiveDateTime>, to: Option<NaiveDateTime>) -> Option<i64> {
    Some((to? - from?).num_seconds())
}

/// Judges one request at `now`.
pub fn line(
    request: RevocationRequestRow,
    event_type: Option<String>,
    now: NaiveDateTime,
) -> SlaLine {
    let published = match (request.ocsp_published_at, request.crl_published_at) {
        (Some(o), Some(c)) => Some(o.max(c)),
        _ => None,
    };
    let stage = match (request.due_at, request.executed_at, published) {
        (_, Some(_), Some(_)) => Stage::Published,
        (_, Some(_), None) => Stage::Executed,
        (None, None, _) => Stage::WaitingForNewCard,
        (Some(due), None, _) if due > now => Stage::Scheduled,
        (Some(_), None, _) => Stage::Pending,
    };
    let verdict = match request.due_at {
        None => Verdict::Ok,
        Some(due) => {
            let (elapsed, finished) = match published {
                Some(p) => (p - due, true),
                None => (now - due, false),
            };
            if elapsed > LIMIT {
                Verdict::Late
            } else if elapsed > TARGET {
                if finished {
                    Verdict::OverTarget
                } else {
                    Verdict::AtRisk
                }
            } else {
                Verdict::Ok
            }
        }
    };
    SlaLine {
        to_execute_seconds: seconds(request.due_at, request.executed_at),
        to_ocsp_seconds: seconds(request.due_at, request.ocsp_published_at),
        to_crl_seconds: seconds(request.due_at, request.crl_published_at),
        request: request.id,
        event_type,
        change: request.change,
        reason: request.reason,
        scope: request.scope,
        target: request.target,
        received_at: request.received_at,
        due_at: request.due_at,
        executed_at: request.executed_at,
        ocsp_published_at: request.ocsp_published_at,
        crl_published_at: request.crl_published_at,
        certificates: request.certificates,
        stage,
        verdict,
    }
}

/// The status-changing requests received since `since`, newest first, at
/// most `limit`, judged at `now` (identity-status requests change the
/// registry, not a certificate, and are left out).
pub fn report(
    db: &mut Db,
    now: DateTime<Utc>,
    since: Option<NaiveDateTime>,
    limit: i64,
) -> Result<Vec<SlaLine>> {
    // PostgreSQL timestamps start in 4713 BC; chrono's MIN is out of range.
    let since = since.unwrap_or(DateTime::UNIX_EPOCH.naive_utc());
    let rows: Vec<(RevocationRequestRow, Option<String>)> = with_conn!(db, c => revocation_requests::table
        .left_join(registry_events::table)
        .filter(revocation_requests::change.ne("identity-status"))
        .filter(revocation_requests::received_at.ge(since))
        .order((revocation_requests::received_at.desc(), revocation_requests::id))
        .limit(limit)
        .select((RevocationRequestRow::as_select(), registry_events::kind.nullable()))
        .load(c))?;
    let now = db_time(now);
    Ok(rows
        .into_iter()
        .map(|(request, kind)| line(request, kind, now))
        .collect())
}

/// How far back finished requests are looked at for lateness.
pub const LATE_WINDOW: Duration = Duration::days(7);

/// The counts at `now`: every unfinished due request, and the requests due
/// in the last [`LATE_WINDOW`] that finished late (so a broken promise
/// stays visible for a week without scanning all history).
pub fn summary(db: &mut Db, now: DateTime<Utc>) -> Result<SlaSummary> {
    let at = db_time(now);
    let unfinished: Vec<RevocationRequestRow> = with_conn!(db, c => revocation_requests::table
        .filter(revocation_requests::change.ne("identity-status"))
        .filter(revocation_requests::ocsp_published_at.is_null()
            .or(revocation_requests::crl_published_at.is_null()))
        .filter(revocation_requests::due_at.le(at))
        .select(RevocationRequestRow::as_select())
        .load(c))?;
    let total: i64 = with_conn!(db, c => revocation_requests::table
        .filter(revocation_requests::change.ne("identity-status"))
        .count()
        .get_result(c))?;
    let mut s = SlaSummary {
        total: total as u64,
        ..Default::default()
    };
    for request in unfinished {
        let due = request.due_at.unwrap_or(at);
        s.oldest_unfinished_seconds = s.oldest_unfinished_seconds.max((at - due).num_seconds());
        if request.executed_at.is_none() {
            s.pending += 1;
        } else {
            s.unpublished += 1;
        }
        match line(request, None, at).verdict {
            Verdict::Late => s.late += 1,
            Verdict::AtRisk => s.at_risk += 1,
            _ => {}
        }
    }
    let finished_late: Vec<RevocationRequestRow> = with_conn!(db, c => revocation_requests::table
        .filter(revocation_requests::state.eq(RequestState::Executed))
        .filter(revocation_requests::due_at.ge(at - LATE_WINDOW))
        .filter(revocation_requests::change.ne("identity-status"))
        .filter(revocation_requests::ocsp_published_at.is_not_null())
        .filter(revocation_requests::crl_published_at.is_not_null())
        .select(RevocationRequestRow::as_select())
        .load(c))?;
    s.late += finished_late
        .into_iter()
        .filter(|r| line(r.clone(), None, at).verdict == Verdict::Late)
        .count() as u64;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(
        due: &str,
        executed: Option<&str>,
        ocsp: Option<&str>,
        crl: Option<&str>,
    ) -> RevocationRequestRow {
        let t = |s: &str| s.parse::<NaiveDateTime>().unwrap();
        RevocationRequestRow {
            id: "e#1".into(),
            event_id: Some("e".into()),
            change: RequestKind::Revoke,
            reason: Some(Reason::KeyCompromise),
            scope: ScopeKind::Card,
            target: "ID1".into(),
            invalidity_date: None,
            suspension_cause: None,
            identity_status: None,
            after_card: None,
            received_at: t(due),
            due_at: Some(t(due)),
            state: if executed.is_some() {
                RequestState::Executed
            } else {
                RequestState::Pending
            },
            executed_at: executed.map(t),
            feed_position: Some(10),
            certificates: Some(2),
            issuers: Some("identity-card-ca".into()),
            ocsp_published_at: ocsp.map(t),
            crl_published_at: crl.map(t),
        }
    }

    #[test]
    fn requests_are_judged_against_the_target_and_the_limit() {
        let now: NaiveDateTime = "2026-11-23T12:00:00".parse().unwrap();
        let due = "2026-11-23T11:00:00";
        let fast = line(
            request(
                due,
                Some("2026-11-23T11:00:01"),
                Some("2026-11-23T11:00:02"),
                Some("2026-11-23T11:00:40"),
            ),
            None,
            now,
        );
        assert_eq!((fast.stage, fast.verdict), (Stage::Published, Verdict::Ok));
        assert_eq!(fast.to_crl_seconds, Some(40));
        let slow = line(
            request(
                due,
                Some("2026-11-23T11:00:01"),
                Some("2026-11-23T11:00:02"),
                Some("2026-11-23T11:30:00"),
            ),
            None,
            now,
        );
        assert_eq!(slow.verdict, Verdict::OverTarget);
        let stuck = line(
            request(
                due,
                Some("2026-11-23T11:00:01"),
                Some("2026-11-23T11:00:02"),
                None,
            ),
            None,
            now,
        );
        assert_eq!(
            (stuck.stage, stuck.verdict),
            (Stage::Executed, Verdict::AtRisk)
        );
        let forgotten = line(request("2026-11-22T10:00:00", None, None, None), None, now);
        assert_eq!(
            (forgotten.stage, forgotten.verdict),
            (Stage::Pending, Verdict::Late)
        );
        let later = line(request("2026-12-31T00:00:00", None, None, None), None, now);
        assert_eq!(
            (later.stage, later.verdict),
            (Stage::Scheduled, Verdict::Ok)
        );
    }
}
