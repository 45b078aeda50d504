//! Revocation requests: what registry events ask the CA to do, each
//! recorded with the time it was reported and the time it is due, then
//! executed when due (CPS 4.9.3, 4.9.5).
//!
//! * [`record`] checks an event against the database and stores it with
//!   its requests in one audited transaction. The same event id again is a
//!   replay: nothing changes and nothing is audited.
//! * [`execute_due`] executes the requests that are due: those whose date
//!   has come, and those waiting for a new card once that card has a
//!   certificate ("armed", due from its issuance). Each request is executed
//!   with its status changes and audit records in one transaction, and
//!   remembers the change-feed position of its last change: a status
//!   service has published it once it has read the feed that far
//!   (the SLA report, module `sla`). Two executors never execute a request twice: the
//!   state is re-read inside the serialised write transaction.

use crate::events::{self, CheckedEvent, Event, RequestChange};
use crate::lifecycle::{self, Scope};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use pki_store::domain::AuditAction;
use pki_store::domain::{IdentityStatus, RequestKind, RequestState};
use pki_store::error::{CaError, Result};
use pki_store::storage::models::{CertificateRow, RegistryEventRow, RevocationRequestRow};
use pki_store::storage::schema::{certificates, identities, registry_events, revocation_requests};
use pki_store::storage::{db_time, Db, WriteTx};
use pki_store::with_conn;
use pki_store::Context;
use std::collections::BTreeSet;

/// Requests executed per transaction.
const EXECUTE_CHUNK: usize = 200;

/// What recording one event did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recorded {
    pub event: String,
    /// The event was already recorded with the same content: nothing changed.
    pub replay: bool,
    pub requests: Vec<String>,
}

/// The content hash that tells a replay from a conflicting reuse of an id.
fn content_sha256(raw: &serde_json::Value) -> String {
    pki_x509::sha256_hex(raw.to_string().as_bytes())
}

/// Parses one event (a JSON object).
pub fn parse(raw: &serde_json::Value) -> std::result::Result<Event, String> {
    serde_json::from_value(raw.clone()).map_err(|e| e.to_string())
}

/// Records one event and its requests. The event must pass
/// [`events::check`]; its card, holder and new card must exist, and a card
/// named with a holder must be that holder's.
pub fn record(ca: &mut Context, raw: &serde_json::Value, source: &str) -> Result<Recorded> {
    let event = parse(raw).map_err(|message| CaError::Event {
        id: raw
            .get("id")
            .and_then(|v| v.as_str())
            .filter(|id| pki_store::fields::check_text("id", id).is_ok())
            .unwrap_or("?")
            .to_string(),
        message,
    })?;
    let now = ca.clock.now();
    let checked = events::check(event, now)?;
    let actor = ca.actor.clone();
    ca.db
        .write(&actor, now, |tx| record_in(tx, &checked, raw, source))
}

/// Records checked events in one transaction (a feed chunk). All or nothing.
pub fn record_all(
    ca: &mut Context,
    events: &[(CheckedEvent, serde_json::Value)],
    source: &str,
) -> Result<Vec<Recorded>> {
    let actor = ca.actor.clone();
    let now = ca.clock.now();
    ca.db.write(&actor, now, |tx| {
        events
            .iter()
            .map(|(checked, raw)| record_in(tx, checked, raw, source))
            .collect()
    })
}

pub(crate) fn record_in(
    tx: &mut WriteTx<'_>,
    checked: &CheckedEvent,
    raw: &serde_json::Value,
    source: &str,
) -> Result<Recorded> {
    let event = &checked.event;
    let sha = content_sha256(raw);
    let known: Option<RegistryEventRow> = with_conn!(tx.db, c => registry_events::table
        .find(&event.id)
        .select(RegistryEventRow::as_select())
        .first(c)
        .optional())?;
    if let Some(known) = known {
        if known.content_sha256 != sha {
            return Err(CaError::Event {
                id: event.id.clone(),
                message: format!(
                    "already recorded on {} with a different content; an event id is used once",
                    known.recorded_at
                ),
            });
        }
        let ids: Vec<String> = with_conn!(tx.db, c => revocation_requests::table
            .filter(revocation_requests::event_id.eq(&event.id))
            .order(revocation_requests::id)
            .select(revocation_requests::id)
            .load(c))?;
        return Ok(Recorded {
            event: event.id.clone(),
            replay: true,
            requests: ids,
        });
    }
    check_references(tx.db, event)?;
    let now = tx.at();
    with_conn!(tx.db, c => diesel::insert_into(registry_events::table)
        .values(&RegistryEventRow {
            id: event.id.clone(),
            kind: event.kind.as_str().to_string(),
            content_sha256: sha.clone(),
            body: raw.to_string(),
            source: source.to_string(),
            reported_at: checked.reported_at,
            recorded_at: now,
        })
        .execute(c))?;
    tx.audit(
        AuditAction::RegistryEvent,
        &event.id,
        serde_json::json!({"type": event.kind.as_str(), "sha256": sha, "source": source,
                           "reported_at": checked.reported_at, "effective": checked.effective}),
    );
    let mut ids = Vec::new();
    for (n, planned) in checked.requests.iter().enumerate() {
        let id = format!("{}#{}", event.id, n + 1);
        let due_at = match &planned.after_card {
            Some(card) => first_issued(tx.db, card)?.map(|t| t.max(checked.reported_at)),
            None => Some(checked.effective.unwrap_or(checked.reported_at)),
        };
        let row = RevocationRequestRow {
            event_id: Some(event.id.clone()),
            after_card: planned.after_card.clone(),
            due_at,
            ..new_row(
                id.clone(),
                &planned.change,
                &planned.scope,
                checked.invalidity,
                checked.reported_at,
            )
        };
        insert(tx, &row)?;
        tx.audit(
            AuditAction::RequestRecord,
            &id,
            serde_json::json!({"change": row.change, "reason": row.reason, "scope": row.scope,
                               "target": row.target, "invalidity_date": row.invalidity_date,
                               "suspension_cause": row.suspension_cause,
                               "identity_status": row.identity_status, "after_card": row.after_card,
                               "received_at": row.received_at, "due_at": row.due_at}),
        );
        ids.push(id);
    }
    Ok(Recorded {
        event: event.id.clone(),
        replay: false,
        requests: ids,
    })
}

/// The card, holder and new card an event names must exist and agree.
fn check_references(db: &mut Db, event: &Event) -> Result<()> {
    let holder = match &event.holder {
        Some(h) => Some(pki_store::lookup::identity(db, h)?),
        None => None,
    };
    if let Some(card) = &event.card {
        let card = pki_store::lookup::card(db, card)?;
        if let Some(holder) = &holder {
            if card.holder_key != holder.registry_key {
                return Err(CaError::Event {
                    id: event.id.clone(),
                    message: format!(
                        "card {} belongs to {}, not to {}",
                        card.card_number, card.holder_key, holder.registry_key
                    ),
                });
            }
        }
    }
    if let Some(new_card) = &event.new_card {
        let new_card = pki_store::lookup::card(db, new_card)?;
        if Some(&new_card.card_number) == event.card.as_ref() {
            return Err(CaError::Event {
                id: event.id.clone(),
                message: "new_card is the card being replaced".into(),
            });
        }
    }
    Ok(())
}

/// When a card's first certificate was issued, if it has one.
fn first_issued(db: &mut Db, card: &str) -> Result<Option<NaiveDateTime>> {
    Ok(with_conn!(db, c => certificates::table
        .filter(certificates::card_number.eq(card))
        .select(diesel::dsl::min(certificates::issued_at))
        .first::<Option<NaiveDateTime>>(c))?)
}

/// What one run of [`execute_due`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ExecuteReport {
    /// Requests waiting for a new card's certificates that became due.
    pub armed: usize,
    /// Requests executed.
    pub executed: usize,
    /// Certificates whose status changed.
    pub certificates: usize,
}

/// Executes the requests that are due (at most `limit`), oldest due first.
pub fn execute_due(ca: &mut Context, limit: usize) -> Result<ExecuteReport> {
    let now = ca.clock.now();
    let at = db_time(now);
    let actor = ca.actor.clone();
    let mut report = ExecuteReport {
        armed: arm(ca)?,
        ..Default::default()
    };
    let due: Vec<String> = with_conn!(&mut ca.db, c => revocation_requests::table
        .filter(revocation_requests::state.eq(RequestState::Pending))
        .filter(revocation_requests::due_at.le(at))
        .order((revocation_requests::due_at, revocation_requests::id))
        .limit(limit as i64)
        .select(revocation_requests::id)
        .load(c))?;
    for chunk in due.chunks(EXECUTE_CHUNK) {
        // Each chunk is stamped with its own time (execution times are
        // what the SLA report measures).
        let now = ca.clock.now();
        let (executed, changed) = ca.db.write(&actor, now, |tx| {
            let mut executed = 0;
            let mut changed = 0;
            for id in chunk {
                if let Some(n) = execute_one(tx, id)? {
                    executed += 1;
                    changed += n;
                }
            }
            Ok::<_, CaError>((executed, changed))
        })?;
        report.executed += executed;
        report.certificates += changed;
    }
    Ok(report)
}

/// Gives a due time to requests waiting for a new card that now has a
/// certificate.
fn arm(ca: &mut Context) -> Result<usize> {
    let waiting: Vec<RevocationRequestRow> = with_conn!(&mut ca.db, c => revocation_requests::table
        .filter(revocation_requests::state.eq(RequestState::Pending))
        .filter(revocation_requests::due_at.is_null())
        .select(RevocationRequestRow::as_select())
        .load(c))?;
    let mut ready = Vec::new();
    for request in waiting {
        let Some(card) = &request.after_card else {
            continue;
        };
        if let Some(issued) = first_issued(&mut ca.db, card)? {
            ready.push((request.id, issued.max(request.received_at)));
        }
    }
    if ready.is_empty() {
        return Ok(0);
    }
    let actor = ca.actor.clone();
    let now = ca.clock.now();
    ca.db.write(&actor, now, |tx| {
        for (id, due) in &ready {
            with_conn!(tx.db, c => diesel::update(revocation_requests::table.find(id))
                .filter(revocation_requests::due_at.is_null())
                .set(revocation_requests::due_at.eq(due))
                .execute(c))?;
            tx.audit(
                AuditAction::RequestDue,
                id,
                serde_json::json!({"due_at": due}),
            );
        }
        Ok::<_, CaError>(ready.len())
    })
}

/// Executes one request inside a write transaction; `None` if another
/// executor already did. Returns how many certificates changed.
fn execute_one(tx: &mut WriteTx<'_>, id: &str) -> Result<Option<usize>> {
    let request: RevocationRequestRow = with_conn!(tx.db, c => revocation_requests::table
        .find(id)
        .select(RevocationRequestRow::as_select())
        .first(c))?;
    if request.state != RequestState::Pending {
        return Ok(None);
    }
    let scope = Scope::of(request.scope, &request.target);
    let change = RequestChange::of_row(&request).map_err(|message| CaError::Field {
        field: format!("request {id}"),
        message,
    })?;
    let context = serde_json::json!({"request": request.id, "event": request.event_id});
    let (changed, issuers) = match (change.transition(), change) {
        (Some(t), _) => {
            let rows =
                lifecycle::apply_in(tx, &scope, t, request.invalidity_date, &context, false)?;
            (rows.len(), issuers_of(&rows))
        }
        (None, RequestChange::IdentityStatus(status)) => {
            set_identity_status(tx, scope.target(), status, &context)?;
            (0, String::new())
        }
        (None, _) => (0, String::new()),
    };
    let position = tx.last_seq();
    let now = tx.at();
    with_conn!(tx.db, c => diesel::update(revocation_requests::table.find(id))
        .set((
            revocation_requests::state.eq(RequestState::Executed),
            revocation_requests::executed_at.eq(now),
            revocation_requests::feed_position.eq(position),
            revocation_requests::certificates.eq(changed as i64),
            revocation_requests::issuers.eq(issuers),
        ))
        .execute(c))?;
    tx.audit(
        AuditAction::RequestExecute,
        id,
        serde_json::json!({"certificates": changed, "feed_position": position}),
    );
    Ok(Some(changed))
}

/// A request as recorded: its typed columns derived from the change (an
/// invalidity date only for a revocation), pending, due when received
/// unless the caller says otherwise.
fn new_row(
    id: String,
    change: &RequestChange,
    scope: &Scope,
    invalidity_date: Option<NaiveDateTime>,
    received_at: NaiveDateTime,
) -> RevocationRequestRow {
    let (reason, suspension_cause, identity_status) = change.columns();
    RevocationRequestRow {
        id,
        event_id: None,
        change: change.kind(),
        reason,
        scope: scope.kind(),
        target: scope.target().to_string(),
        invalidity_date: invalidity_date.filter(|_| change.kind() == RequestKind::Revoke),
        suspension_cause,
        identity_status,
        after_card: None,
        received_at,
        due_at: None,
        state: RequestState::Pending,
        executed_at: None,
        feed_position: None,
        certificates: None,
        issuers: None,
        ocsp_published_at: None,
        crl_published_at: None,
    }
}

fn insert(tx: &mut WriteTx<'_>, row: &RevocationRequestRow) -> Result<()> {
    with_conn!(tx.db, c => diesel::insert_into(revocation_requests::table).values(row).execute(c))?;
    Ok(())
}

/// The issuers whose certificates changed, comma-separated (the CRLs the
/// SLA report waits for).
fn issuers_of(rows: &[CertificateRow]) -> String {
    let issuers: BTreeSet<&str> = rows.iter().map(|r| r.issuer.as_str()).collect();
    issuers.into_iter().collect::<Vec<_>>().join(",")
}

/// Records a status change made directly by an officer (not from a
/// registry event) as a request executed at once, inside the change's own
/// transaction: the SLA report measures every status change from its
/// request to OCSP and the CRL, whatever its source. Returns its id.
pub(crate) fn record_executed(
    tx: &mut WriteTx<'_>,
    scope: &Scope,
    change: &RequestChange,
    invalidity_date: Option<NaiveDateTime>,
    changed: &[CertificateRow],
) -> Result<String> {
    let position = tx.last_seq();
    let now = tx.at();
    let id = format!("direct#{position}");
    let row = RevocationRequestRow {
        due_at: Some(now),
        state: RequestState::Executed,
        executed_at: Some(now),
        feed_position: Some(position),
        certificates: Some(changed.len() as i64),
        issuers: Some(issuers_of(changed)),
        ..new_row(id.clone(), change, scope, invalidity_date, now)
    };
    insert(tx, &row)?;
    tx.audit(
        AuditAction::RequestExecute,
        &id,
        serde_json::json!({"direct": true, "change": row.change, "reason": row.reason,
                           "scope": row.scope, "target": row.target,
                           "certificates": changed.len(), "feed_position": position}),
    );
    Ok(id)
}

/// Sets an identity's registry status (a registry event's own effect).
fn set_identity_status(
    tx: &mut WriteTx<'_>,
    holder: &str,
    status: IdentityStatus,
    context: &serde_json::Value,
) -> Result<()> {
    let now = tx.at();
    let old = pki_store::lookup::identity(tx.db, holder)?;
    if old.status == status {
        return Ok(());
    }
    with_conn!(tx.db, c => diesel::update(identities::table.find(holder))
        .set((identities::status.eq(status), identities::updated_at.eq(now)))
        .execute(c))?;
    tx.audit(
        AuditAction::RegistryStatus,
        holder,
        serde_json::json!({"from": old.status, "to": status, "context": context}),
    );
    Ok(())
}

/// Requests, newest first (for `pki-admin` and the SLA report).
pub fn list(db: &mut Db, limit: i64) -> Result<Vec<RevocationRequestRow>> {
    Ok(with_conn!(db, c => revocation_requests::table
        .order((revocation_requests::received_at.desc(), revocation_requests::id))
        .limit(limit)
        .select(RevocationRequestRow::as_select())
        .load(c))?)
}
