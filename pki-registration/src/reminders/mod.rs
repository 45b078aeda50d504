//! Expiry reminders (CPS 4.6.1): the decision which certificates get an
//! expiry reminder, the texts of the reminders, and the outbox that
//! delivers them.
//!
//! The module is in three parts, one job each; every public item is
//! re-exported here, so the paths are `reminders::decide_due`,
//! `reminders::claim_due` and so on:
//!
//! | part | job |
//! | --- | --- |
//! | `decide` | which reminders are due ([`smallest_due_offset`]), decided page by page by [`decide_due`] and written to the outbox in one audited transaction |
//! | `texts` | what a reminder says (subject and body, French then English) and its e-mail's [`message_id`] |
//! | `outbox` | delivery of the decided reminders: [`claim_due`] with a lease, [`mark_sent`], [`mark_failed`] with back-off or dead-lettering, and the listings ([`list`], [`postal`]) |
//!
//! The types shared by the parts ([`ReminderKey`], [`State`]) live here.
//!
//! # What is reminded
//! Only **active** certificates of a card are reminded. A certificate on
//! hold was never activated (the holder never accepted it, CPS 4.4.1) and
//! stays unusable until it expires; a suspended one is not usable either and
//! its holder is dealt with by whoever suspended it; revoked and expired ones
//! are over. Reminders are grouped per card: one reminder per
//! `(card, notAfter, offset)` names every active certificate of that card
//! that ends at that instant (authentication and signature usually end
//! together). Holders whose registry identity is not `active` are skipped:
//! they could not renew anyway.
//!
//! # When
//! `reminders.offsets_days` (default 90, 30, 7) before the reminder's end:
//! the certificate's notAfter, or the card's end (its expiry day, 23:59:59
//! UTC) when that comes first. Offset `d` is due once `now >= end - d days`.
//! When several offsets are due at once (the scheduler was down, or a
//! certificate was issued late), only the **smallest** due offset is decided:
//! the holder gets the most urgent message, not three at once. Because the
//! set of due offsets only grows with time, a smaller offset can never be
//! followed by a larger one for the same certificate.
//!
//! Candidates are read with the index `certificates(status, not_after)` over
//! the window `now < notAfter <= now + largest offset`, by keyset pages, so a
//! run costs the size of the window, never the whole population. (The window
//! is on notAfter: issuance never lets a certificate outlive its card,
//! `issuance::card_certificate_limit`, so the card's end cannot come first
//! for a certificate outside it.)
//!
//! # Exactly once, as far as the database goes
//! [`decide_due`] writes each decision into the `reminders` table (the
//! outbox) in the same audited transaction as its `reminder.decide` audit
//! record. The table's primary key `(card_number, not_after, offset_days)`
//! makes the decision idempotent: rows are inserted with `ON CONFLICT DO
//! NOTHING` (PostgreSQL: `RETURNING` the keys inserted; SQLite: one
//! statement per row and its affected count), and only the rows actually
//! inserted are audited and counted, so a restarted scheduler, or two
//! schedulers racing, never decide the same reminder twice. A run with
//! nothing new only reads (no write transaction is opened).
//!
//! The message says what to do: renew at a kiosk
//! (`reminders.kiosk_url`), or, when the certificates end with the card
//! (notAfter at or after the card's last instant), apply for a new card at
//! the card's registration authority, since renewal cannot extend them
//! (CPS 4.6.1).
//!
//! Holders with an e-mail address in the registry get channel `email`
//! (state `pending`, delivered by `pki-scheduler`'s mail job through
//! [`claim_due`], [`mark_sent`] and [`mark_failed`]); the others get channel
//! `postal` (state `postal`), listed by `pki-admin reminders postal` for a
//! letter. Subject and body are composed at decision time, French first then
//! English, and kept in the row: what was decided is what is sent. The
//! recipient is the registry's address at decision time.
//!
//! # Delivery: at least once, deduplicable
//! A delivery worker claims a batch of due `pending` e-mail reminders by a
//! conditional update (`claimed_until`, a lease) so that two workers never
//! hold the same row at once, hands each message to the SMTP relay, then
//! marks it `sent` (audited `reminder.sent`). A failure counts an attempt and
//! moves `next_attempt_at` back exponentially
//! (`retry_base_seconds * 2^(attempts-1)`); after `max_attempts` failures, or
//! at once on a permanent refusal, the reminder is `dead` (audited
//! `reminder.dead`) for an operator to look at.
//!
//! The boundary is honest: if the process dies after the relay accepted a
//! message and before [`mark_sent`] commits, the lease runs out and the
//! message is sent again. Every message therefore carries a Message-ID
//! derived only from `(card, notAfter, offset)` ([`message_id`]), so that
//! the relay or the holder's mail system can recognise the duplicate.
//!
//! Audit actions start with `reminder.`, never `certificate.`: the change
//! feed of the status services ignores them.
//!
//! Not done here: a reminder decided and still pending when its
//! certificates are renewed or revoked is delivered all the same (the
//! outbox has no "cancelled" state).

use chrono::NaiveDateTime;
use pki_store::storage::models::ReminderRow;
use serde::Serialize;
use std::fmt;

mod decide;
mod outbox;
mod texts;

pub use decide::{card_end, decide_due, smallest_due_offset, DecideReport};
pub use outbox::{
    claim_due, list, mark_failed, mark_sent, postal, retry_delay, Failure, PostalEntry,
};
pub use pki_store::domain::ReminderState as State;
pub use texts::message_id;

/// The primary key of a reminder.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ReminderKey {
    pub card_number: String,
    pub not_after: NaiveDateTime,
    pub offset_days: i32,
}

impl ReminderKey {
    pub fn of(row: &ReminderRow) -> ReminderKey {
        ReminderKey {
            card_number: row.card_number.clone(),
            not_after: row.not_after,
            offset_days: row.offset_days,
        }
    }
}

impl fmt::Display for ReminderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}d",
            self.card_number,
            self.not_after.format("%Y-%m-%dT%H:%M:%SZ"),
            self.offset_days
        )
    }
}

/// What the unit tests of the parts share: a clock-controlled population.
#[cfg(test)]
pub(crate) mod test_fixture {
    use chrono::{Duration, NaiveDate, NaiveDateTime};
    use diesel::prelude::*;
    use pki_store::domain::{CertStatus, Usage};
    use pki_store::storage::models::{CardRow, IdentityRow};
    use pki_store::storage::Db;
    use pki_store::with_conn;
    use pki_store::Context;

    /// A UTC instant written `YYYY-MM-DD HH:MM:SS`.
    pub(crate) fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    /// A CA on a temporary SQLite database with `n` holders (every third
    /// without e-mail), each with one card and two active certificates
    /// ending `i` days after `start` (i = 1..=n), plus a revoked one.
    pub(crate) fn population(
        n: usize,
        start: NaiveDateTime,
    ) -> (tempfile::TempDir, Context, pki_store::clock::FixedClock) {
        use pki_store::storage::models::CertificateRow;
        use pki_store::storage::schema::{cards as cards_t, identities};
        let dir = tempfile::tempdir().unwrap();
        let config = pki_store::config::Config {
            data_dir: dir.path().to_path_buf(),
            ..Default::default()
        };
        let clock = pki_store::clock::FixedClock::new(start.and_utc());
        let mut ca = Context::create(config, std::sync::Arc::new(clock.clone()), "test").unwrap();
        let mut ids = Vec::new();
        let mut cards = Vec::new();
        let mut certs = Vec::new();
        for i in 1..=n {
            let key = format!("MC{i:08}");
            ids.push(IdentityRow {
                registry_key: key.clone(),
                family_name: "Rossi".into(),
                given_names: "Marco".into(),
                birth_name: None,
                birth_datetime: t("1980-01-01 00:00:00"),
                birth_place: "Monaco".into(),
                gender: pki_store::domain::Gender::Male,
                authority: pki_store::domain::RegistrationAuthority::TownHall,
                status: pki_store::domain::IdentityStatus::Active,
                protected_adult: false,
                email: (i % 3 != 0).then(|| format!("h{i}@example.com")),
                mobile: None,
                updated_at: start,
            });
            let card = format!("ID{i:09}");
            cards.push(CardRow {
                card_number: card.clone(),
                kind: pki_store::domain::CardKind::Identity,
                holder_key: key.clone(),
                issue_date: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
                expiry_date: NaiveDate::from_ymd_opt(2040, 1, 1).unwrap(),
                registered_at: start,
            });
            for (j, (usage, status)) in [
                (Usage::Auth, CertStatus::Active),
                (Usage::Sign, CertStatus::Active),
                (Usage::Auth, CertStatus::Revoked),
            ]
            .into_iter()
            .enumerate()
            {
                certs.push(CertificateRow {
                    serial: format!("{i:08x}{j:02x}"),
                    issuer: "identity-card-ca".into(),
                    profile: "card-auth".into(),
                    kind: pki_store::domain::CertKind::EndEntity,
                    usage: Some(usage),
                    card_number: Some(card.clone()),
                    holder_key: Some(key.clone()),
                    subject: "CN=x".into(),
                    not_before: start - Duration::days(400),
                    not_after: start + Duration::days(i as i64),
                    status,
                    public_key_sha256: "00".into(),
                    der: vec![0],
                    issued_at: start - Duration::days(400),
                    revoked_at: (status == CertStatus::Revoked).then(|| start - Duration::days(1)),
                    revocation_reason: (status == CertStatus::Revoked)
                        .then_some(pki_store::domain::Reason::Superseded),
                    invalidity_date: None,
                    crl_partition: 0,
                    suspension_cause: None,
                    linked_serial: None,
                });
            }
        }
        // No CA hierarchy here (its keys are slow to make): the issuer
        // "identity-card-ca" does not exist, so foreign keys are off.
        if let Db::Sqlite(c) = &mut ca.db {
            use diesel::connection::SimpleConnection;
            c.batch_execute("PRAGMA foreign_keys = OFF").unwrap();
        }
        ca.db
            .write("test", start.and_utc(), |tx| {
                with_conn!(tx.db, c => diesel::insert_into(identities::table).values(&ids).execute(c))?;
                with_conn!(tx.db, c => diesel::insert_into(cards_t::table).values(&cards).execute(c))?;
                pki_store::certificates::insert(tx.db, &certs)
            })
            .unwrap();
        (dir, ca, clock)
    }
}
