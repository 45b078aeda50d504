//! The certificate lifecycle state machine (CPS 4.3.1, 4.4.1, 4.9), the one
//! place where a certificate's status changes:
//!
//! ```text
//!   issued ──► hold ──activate──► active ◄──resume(cause)── suspended
//!               │                  │  └──suspend(cause)──────►  │
//!               │                  └──expire (past notAfter)──► expired
//!               └──────────── revoke (from hold, active or suspended) ──► revoked (final)
//! ```
//!
//! * `hold` is "pending activation": personalisation certificates start
//!   there; activation ([`activate`]) releases them, for an adult holder who
//!   is not a protected adult, with an active identity and a valid card.
//! * A suspension records its cause ([`SuspensionCause`]); a release names the
//!   cause it lifts, and lifts only holds of that cause (an identity that is
//!   active again gets back what its suspension held, not what an officer
//!   suspended).
//! * Mobile-derived certificates follow the card authentication certificate
//!   they were derived from (`linked_serial`): a revocation, suspension or
//!   release of that certificate by serial is applied to them too (cause
//!   `follows-card` for holds). Changes by card, holder or registry event
//!   reach them directly, as certificates of the card.
//! * Every change is written with its audit record in the caller's
//!   transaction; the audit record feeds the OCSP responder and the CRL
//!   publisher (`feed::read`).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use pki_store::domain::{
    AuditAction, CardKind, CertStatus, Reason, ScopeKind, SuspensionCause, Usage,
};
use pki_store::error::{CaError, Result};
use pki_store::storage::models::CertificateRow;
use pki_store::storage::schema::{cards, certificates};
use pki_store::storage::{db_time, Db, WriteTx};
use pki_store::with_conn;
use pki_store::Context;

/// The cause of a suspended row (rows suspended before causes were
/// recorded count as the officer's).
fn suspension_cause_of(row: &CertificateRow) -> SuspensionCause {
    row.suspension_cause.unwrap_or(SuspensionCause::Officer)
}

/// The one rule for an invalidity date (a registry event's or an
/// officer's): the date since when the key is known to be unusable, so
/// never in the future.
pub fn check_invalidity(
    invalidity: NaiveDateTime,
    now: NaiveDateTime,
) -> std::result::Result<(), String> {
    if invalidity > now {
        return Err(format!("{invalidity} is in the future"));
    }
    Ok(())
}

/// A status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// hold → active.
    Activate,
    /// hold, active or suspended → revoked. `None` = no reason code.
    Revoke(Option<Reason>),
    /// active → suspended, for a cause.
    Suspend(SuspensionCause),
    /// suspended (for this cause) → active.
    Resume(SuspensionCause),
    /// active → expired, once past notAfter.
    Expire,
}

impl Transition {
    pub fn verb(self) -> &'static str {
        match self {
            Transition::Activate => "activate",
            Transition::Revoke(_) => "revoke",
            Transition::Suspend(_) => "suspend",
            Transition::Resume(_) => "resume",
            Transition::Expire => "expire",
        }
    }

    /// The audit action (a `certificate.*` action is on the change feed).
    pub fn action(self) -> AuditAction {
        match self {
            Transition::Activate => AuditAction::CertificateActivate,
            Transition::Revoke(_) => AuditAction::CertificateRevoke,
            Transition::Suspend(_) => AuditAction::CertificateSuspend,
            Transition::Resume(_) => AuditAction::CertificateResume,
            Transition::Expire => AuditAction::CertificateExpire,
        }
    }

    /// What the certificates linked to a changed one undergo.
    fn for_linked(self) -> Option<Transition> {
        match self {
            Transition::Revoke(r) => Some(Transition::Revoke(r)),
            Transition::Suspend(_) => Some(Transition::Suspend(SuspensionCause::FollowsCard)),
            Transition::Resume(_) => Some(Transition::Resume(SuspensionCause::FollowsCard)),
            Transition::Activate | Transition::Expire => None,
        }
    }
}

/// The status a transition leads to from a row, or why it cannot happen.
pub fn next_status(row: &CertificateRow, t: Transition, now: NaiveDateTime) -> Result<CertStatus> {
    let from = row.status;
    let refused = || CaError::Transition {
        serial: row.serial.clone(),
        status: from,
        change: t.verb().to_string(),
    };
    match (from, t) {
        (_, Transition::Revoke(Some(Reason::CertificateHold))) => Err(CaError::Field {
            field: "reason".into(),
            message: "certificateHold is a suspension: use suspend".into(),
        }),
        (CertStatus::PendingActivation, Transition::Activate) => Ok(CertStatus::Active),
        (
            CertStatus::PendingActivation | CertStatus::Active | CertStatus::Suspended,
            Transition::Revoke(_),
        ) => Ok(CertStatus::Revoked),
        (CertStatus::Active, Transition::Suspend(_)) => Ok(CertStatus::Suspended),
        (CertStatus::Suspended, Transition::Resume(cause)) => {
            let held_for = suspension_cause_of(row);
            if held_for == cause {
                Ok(CertStatus::Active)
            } else {
                Err(CaError::SuspensionCause {
                    serial: row.serial.clone(),
                    cause: held_for,
                    wanted: cause,
                })
            }
        }
        (CertStatus::Active, Transition::Expire) if row.not_after < now => Ok(CertStatus::Expired),
        _ => Err(refused()),
    }
}

/// Which certificates a change is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Serial(String),
    /// Every certificate of a card (its mobile ones included).
    Card(String),
    /// The mobile certificates of a card only (a lost phone).
    CardMobile(String),
    /// Every certificate of every card of a holder.
    Holder(String),
    /// The certificates of a holder's residence cards.
    HolderResidence(String),
}

impl Scope {
    pub fn kind(&self) -> ScopeKind {
        match self {
            Scope::Serial(_) => ScopeKind::Serial,
            Scope::Card(_) => ScopeKind::Card,
            Scope::CardMobile(_) => ScopeKind::CardMobile,
            Scope::Holder(_) => ScopeKind::Holder,
            Scope::HolderResidence(_) => ScopeKind::HolderResidence,
        }
    }

    pub fn target(&self) -> &str {
        match self {
            Scope::Serial(s)
            | Scope::Card(s)
            | Scope::CardMobile(s)
            | Scope::Holder(s)
            | Scope::HolderResidence(s) => s,
        }
    }

    pub fn of(kind: ScopeKind, target: &str) -> Scope {
        let t = target.to_string();
        match kind {
            ScopeKind::Serial => Scope::Serial(t),
            ScopeKind::Card => Scope::Card(t),
            ScopeKind::CardMobile => Scope::CardMobile(t),
            ScopeKind::Holder => Scope::Holder(t),
            ScopeKind::HolderResidence => Scope::HolderResidence(t),
        }
    }

    /// Checks that the target exists (card, holder or certificate).
    pub fn check_exists(&self, db: &mut Db) -> Result<()> {
        match self {
            Scope::Serial(s) => pki_store::certificates::find(db, s).map(|_| ()),
            Scope::Card(c) | Scope::CardMobile(c) => pki_store::lookup::card(db, c).map(|_| ()),
            Scope::Holder(h) | Scope::HolderResidence(h) => {
                pki_store::lookup::identity(db, h).map(|_| ())
            }
        }
    }
}

/// The certificates in a scope (any status; newest first).
pub fn certificates_in(db: &mut Db, scope: &Scope) -> Result<Vec<CertificateRow>> {
    let rows = match scope {
        Scope::Serial(s) => vec![pki_store::certificates::find(db, s)?],
        Scope::Card(card) => pki_store::certificates::list(db, Some(card), i64::MAX)?,
        Scope::CardMobile(card) => pki_store::certificates::list(db, Some(card), i64::MAX)?
            .into_iter()
            .filter(|r| r.usage == Some(Usage::MobileAuth))
            .collect(),
        Scope::Holder(holder) | Scope::HolderResidence(holder) => {
            let only_residence = matches!(scope, Scope::HolderResidence(_));
            let card_numbers: Vec<String> = with_conn!(db, c => {
                let q = cards::table.filter(cards::holder_key.eq(holder)).into_boxed();
                let q = if only_residence { q.filter(cards::kind.eq(CardKind::Residence)) } else { q };
                q.select(cards::card_number).load(c)
            })?;
            with_conn!(db, c => certificates::table
                .filter(certificates::card_number.eq_any(&card_numbers))
                .order((certificates::issued_at.desc(), certificates::serial))
                .select(CertificateRow::as_select())
                .load(c))?
        }
    };
    Ok(rows)
}

/// Applies a transition to every certificate of a scope it applies to,
/// inside the caller's transaction, with the linked mobile certificates of
/// a certificate changed by serial. `strict`: a certificate of the scope
/// the transition does not apply to is an error (an officer naming one
/// serial); otherwise it is skipped. Returns the changed rows.
pub fn apply_in(
    tx: &mut WriteTx<'_>,
    scope: &Scope,
    t: Transition,
    invalidity: Option<NaiveDateTime>,
    context: &serde_json::Value,
    strict: bool,
) -> Result<Vec<CertificateRow>> {
    let now = tx.at();
    let rows = certificates_in(tx.db, scope)?;
    let by_serial = matches!(scope, Scope::Serial(_));
    let mut changed = Vec::new();
    for row in rows {
        match next_status(&row, t, now) {
            Ok(to) => {
                let serial = row.serial.clone();
                let is_auth = row.usage == Some(Usage::Auth);
                changed.push(write(tx, row, to, t, invalidity, context)?);
                if by_serial && is_auth {
                    if let Some(linked_t) = t.for_linked() {
                        for linked in linked_to(tx.db, &serial)? {
                            if let Ok(to) = next_status(&linked, linked_t, now) {
                                changed.push(write(tx, linked, to, linked_t, invalidity, context)?);
                            }
                        }
                    }
                }
            }
            Err(e) if strict => return Err(e),
            Err(_) => {}
        }
    }
    Ok(changed)
}

/// Applies a transition to one certificate, without the linked ones.
pub fn apply_one(
    tx: &mut WriteTx<'_>,
    serial: &str,
    t: Transition,
    context: &serde_json::Value,
) -> Result<CertificateRow> {
    let row = pki_store::certificates::find(tx.db, serial)?;
    let to = next_status(&row, t, tx.at())?;
    write(tx, row, to, t, None, context)
}

/// The certificates derived from a card certificate.
fn linked_to(db: &mut Db, serial: &str) -> Result<Vec<CertificateRow>> {
    Ok(with_conn!(db, c => certificates::table
        .filter(certificates::linked_serial.eq(serial))
        .select(CertificateRow::as_select())
        .load(c))?)
}

/// Writes one row's new status and its audit record.
fn write(
    tx: &mut WriteTx<'_>,
    mut row: CertificateRow,
    to: CertStatus,
    t: Transition,
    invalidity: Option<NaiveDateTime>,
    context: &serde_json::Value,
) -> Result<CertificateRow> {
    let at = tx.at();
    let (revoked_at, reason, cause) = match t {
        Transition::Revoke(reason) => (Some(at), reason, None),
        Transition::Suspend(cause) => (Some(at), Some(Reason::CertificateHold), Some(cause)),
        Transition::Activate | Transition::Resume(_) | Transition::Expire => (None, None, None),
    };
    let invalidity_date = match to {
        CertStatus::Revoked | CertStatus::Suspended => invalidity.or(row.invalidity_date),
        _ => None,
    };
    with_conn!(tx.db, c => diesel::update(certificates::table.find(&row.serial))
        .set((
            certificates::status.eq(to),
            certificates::revoked_at.eq(revoked_at),
            certificates::revocation_reason.eq(reason),
            certificates::invalidity_date.eq(invalidity_date),
            certificates::suspension_cause.eq(cause),
        ))
        .execute(c))?;
    tx.audit(
        t.action(),
        &row.serial,
        serde_json::json!({"from": row.status, "to": to, "reason": reason,
                           "hold_cause": cause,
                           "invalidity_date": invalidity_date, "card": row.card_number,
                           "usage": row.usage, "issuer": row.issuer, "context": context}),
    );
    if reason == Some(Reason::KeyCompromise) {
        crate::blocked_keys::block_compromised(tx, &row)?;
    }
    row.status = to;
    row.revoked_at = revoked_at;
    row.revocation_reason = reason;
    row.invalidity_date = invalidity_date;
    row.suspension_cause = cause;
    Ok(row)
}

/// Activation (acceptance, CPS 4.4.1): releases the card's certificates
/// held pending activation.
pub fn activate(ca: &mut Context, card_number: &str) -> Result<Vec<CertificateRow>> {
    let now = ca.clock.now();
    let card = pki_store::lookup::card(&mut ca.db, card_number)?;
    let holder = pki_store::lookup::identity(&mut ca.db, &card.holder_key)?;
    crate::eligibility::for_activation(&holder, &card, now).map_err(|reason| {
        CaError::NotEligible {
            card: card_number.to_string(),
            action: "activate",
            reason,
        }
    })?;
    let scope = Scope::Card(card_number.to_string());
    let context = serde_json::json!({"activation": {"holder": holder.registry_key}});
    let actor = ca.actor.clone();
    ca.db.write(&actor, now, |tx| {
        let changed = apply_in(tx, &scope, Transition::Activate, None, &context, false)?;
        if changed.is_empty() {
            return Err(CaError::NotEligible {
                card: card_number.to_string(),
                action: "activate",
                reason: "it has no certificate pending activation".into(),
            });
        }
        Ok(changed)
    })
}

/// Marks active certificates past their notAfter as expired, one audited
/// transaction per chunk; returns how many.
pub fn expire_due(ca: &mut Context) -> Result<usize> {
    let now = ca.clock.now();
    let at = db_time(now);
    let actor = ca.actor.clone();
    let mut total = 0;
    loop {
        let serials: Vec<String> = with_conn!(&mut ca.db, c => certificates::table
            .filter(certificates::status.eq(CertStatus::Active))
            .filter(certificates::not_after.lt(at))
            .order(certificates::not_after)
            .limit(500)
            .select(certificates::serial)
            .load(c))?;
        if serials.is_empty() {
            return Ok(total);
        }
        let n = ca.db.write(&actor, now, |tx| {
            let mut n = 0;
            for row in pki_store::certificates::find_many(tx.db, &serials)?.into_values() {
                // Re-checked inside the transaction: another writer may
                // have changed the row since it was selected.
                if let Ok(to) = next_status(&row, Transition::Expire, at) {
                    write(
                        tx,
                        row,
                        to,
                        Transition::Expire,
                        None,
                        &serde_json::Value::Null,
                    )?;
                    n += 1;
                }
            }
            Ok::<_, CaError>(n)
        })?;
        total += n;
        if n == 0 {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: &str, cause: Option<&str>) -> CertificateRow {
        let status: CertStatus = status.parse().unwrap();
        let cause: Option<SuspensionCause> = cause.map(|c| c.parse().unwrap());
        CertificateRow {
            serial: "01".into(),
            issuer: "identity-card-ca".into(),
            profile: "card-auth".into(),
            kind: pki_store::domain::CertKind::EndEntity,
            usage: Some(Usage::Auth),
            card_number: Some("ID1".into()),
            holder_key: Some("K".into()),
            subject: "CN=x".into(),
            not_before: "2026-01-01T00:00:00".parse().unwrap(),
            not_after: "2029-01-01T00:00:00".parse().unwrap(),
            status,
            public_key_sha256: "00".into(),
            der: vec![],
            issued_at: "2026-01-01T00:00:00".parse().unwrap(),
            revoked_at: None,
            revocation_reason: None,
            invalidity_date: None,
            crl_partition: 0,
            suspension_cause: cause,
            linked_serial: None,
        }
    }

    #[test]
    fn the_state_machine_allows_only_its_arrows() {
        let now: NaiveDateTime = "2027-01-01T00:00:00".parse().unwrap();
        let later: NaiveDateTime = "2030-01-01T00:00:00".parse().unwrap();
        use CertStatus::*;
        let officer = SuspensionCause::Officer;
        let cases = [
            ("hold", Transition::Activate, now, Some(Active)),
            ("hold", Transition::Revoke(None), now, Some(Revoked)),
            ("hold", Transition::Suspend(officer), now, None),
            ("hold", Transition::Resume(officer), now, None),
            ("active", Transition::Activate, now, None),
            ("active", Transition::Suspend(officer), now, Some(Suspended)),
            (
                "active",
                Transition::Revoke(Some(Reason::KeyCompromise)),
                now,
                Some(Revoked),
            ),
            ("active", Transition::Expire, now, None),
            ("active", Transition::Expire, later, Some(Expired)),
            ("suspended", Transition::Resume(officer), now, Some(Active)),
            ("suspended", Transition::Revoke(None), now, Some(Revoked)),
            ("suspended", Transition::Suspend(officer), now, None),
            ("revoked", Transition::Resume(officer), now, None),
            ("revoked", Transition::Revoke(None), now, None),
            ("revoked", Transition::Activate, now, None),
            ("expired", Transition::Revoke(None), now, None),
            ("expired", Transition::Activate, now, None),
        ];
        for (from, t, at, want) in cases {
            let cause = (from == "suspended").then_some("officer");
            let got = next_status(&row(from, cause), t, at).ok();
            assert_eq!(got, want, "{from} --{t:?}-->");
        }
        assert!(next_status(
            &row("active", None),
            Transition::Revoke(Some(Reason::CertificateHold)),
            now
        )
        .is_err());
    }

    #[test]
    fn a_hold_is_released_only_for_its_own_cause() {
        let now: NaiveDateTime = "2027-01-01T00:00:00".parse().unwrap();
        let held = row("suspended", Some("identity-suspended"));
        assert!(matches!(
            next_status(&held, Transition::Resume(SuspensionCause::Officer), now),
            Err(CaError::SuspensionCause { .. })
        ));
        assert_eq!(
            next_status(
                &held,
                Transition::Resume(SuspensionCause::IdentitySuspended),
                now
            )
            .unwrap(),
            CertStatus::Active
        );
        // Rows suspended before causes were recorded are the officer's.
        let legacy = row("suspended", None);
        assert!(next_status(&legacy, Transition::Resume(SuspensionCause::Officer), now).is_ok());
    }
}
