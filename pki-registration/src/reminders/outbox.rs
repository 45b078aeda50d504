//! The outbox lifecycle of decided reminders: e-mail reminders claimed
//! with a lease, marked sent, or marked failed with an exponential
//! back-off and, in the end, dead; and the listings, among them the
//! postal list of the reminders to send as letters.

use super::{ReminderKey, State};
use chrono::{Duration, NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use pki_store::config::Reminders as RemindersConfig;
use pki_store::domain::{AuditAction, ReminderChannel};
use pki_store::error::{CaError, Result};
use pki_store::storage::models::ReminderRow;
use pki_store::storage::schema::reminders;
use pki_store::storage::{db_time, Db};
use pki_store::with_conn;
use pki_store::Context;
use serde::Serialize;
use std::collections::HashSet;

/// The delay before the next attempt after `attempts` failures:
/// `retry_base_seconds * 2^(attempts-1)`, capped at 30 days.
pub fn retry_delay(config: &RemindersConfig, attempts: i32) -> Duration {
    let exp = attempts.clamp(1, 31) as u32 - 1;
    let seconds = config
        .retry_base_seconds
        .saturating_mul(1u64 << exp)
        .min(30 * 86_400);
    Duration::seconds(seconds as i64)
}

/// Claims up to `limit` pending e-mail reminders due at `ca.clock.now()`
/// for `lease`: each row is taken by a conditional update (still pending,
/// due, and unclaimed or its lease over), so two workers never hold the same
/// row. Nothing is audited (a claim changes no outcome).
pub fn claim_due(ca: &mut Context, limit: usize, lease: Duration) -> Result<Vec<ReminderRow>> {
    let now_utc = ca.clock.now();
    let now = db_time(now_utc);
    let until = now + lease;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let actor = ca.actor.clone();
    ca.db.write(&actor, now_utc, |tx| {
        use reminders::dsl as r;
        let due: Vec<ReminderRow> = with_conn!(tx.db, c => r::reminders
            .filter(r::state.eq(State::Pending))
            .filter(r::channel.eq(ReminderChannel::Email))
            .filter(r::next_attempt_at.le(now))
            .filter(r::claimed_until.is_null().or(r::claimed_until.le(now)))
            .order((r::next_attempt_at, r::card_number, r::not_after, r::offset_days))
            .limit(limit)
            .select(ReminderRow::as_select())
            .load(c))?;
        let mut claimed = Vec::with_capacity(due.len());
        for mut row in due {
            let n = with_conn!(tx.db, c => diesel::update(
                    r::reminders.find((&row.card_number, row.not_after, row.offset_days)))
                .filter(r::state.eq(State::Pending))
                .filter(r::next_attempt_at.le(now))
                .filter(r::claimed_until.is_null().or(r::claimed_until.le(now)))
                .set(r::claimed_until.eq(Some(until)))
                .execute(c))?;
            if n == 1 {
                row.claimed_until = Some(until);
                claimed.push(row);
            }
        }
        Ok::<_, CaError>(claimed)
    })
}

/// Marks a reminder sent (audited `reminder.sent`). False when it was not
/// pending any more (another worker finished it first): nothing changes.
pub fn mark_sent(ca: &mut Context, key: &ReminderKey, message_id: &str) -> Result<bool> {
    let now_utc = ca.clock.now();
    let now = db_time(now_utc);
    let actor = ca.actor.clone();
    ca.db.write(&actor, now_utc, |tx| {
        use reminders::dsl as r;
        let n = with_conn!(tx.db, c => diesel::update(
                r::reminders.find((&key.card_number, key.not_after, key.offset_days)))
            .filter(r::state.eq(State::Pending))
            .set((
                r::state.eq(State::Sent),
                r::sent_at.eq(Some(now)),
                r::claimed_until.eq(None::<NaiveDateTime>),
                r::attempts.eq(r::attempts + 1),
            ))
            .execute(c))?;
        if n == 1 {
            tx.audit(
                AuditAction::ReminderSent,
                &key.card_number,
                serde_json::json!({
                    "not_after": key.not_after.and_utc().to_rfc3339(),
                    "offset_days": key.offset_days,
                    "message_id": message_id,
                }),
            );
        }
        Ok::<_, CaError>(n == 1)
    })
}

/// What a failed delivery attempt led to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Failure {
    /// Tried again at `next_attempt_at`.
    Retry {
        attempts: i32,
        next_attempt_at: NaiveDateTime,
    },
    /// Dead-lettered (audited `reminder.dead`).
    Dead { attempts: i32 },
    /// It was not pending any more: nothing changed.
    NotPending,
}

/// Records a failed delivery attempt: one more attempt, `next_attempt_at`
/// backed off ([`retry_delay`]), the error kept; `dead` (audited) after
/// `reminders.max_attempts` attempts, or at once when `permanent` (the
/// relay refused the message for good, or the address is unusable).
pub fn mark_failed(
    ca: &mut Context,
    key: &ReminderKey,
    error: &str,
    permanent: bool,
) -> Result<Failure> {
    let now_utc = ca.clock.now();
    let now = db_time(now_utc);
    let config = ca.config.reminders.clone();
    let error: String = error.chars().take(1000).collect();
    let actor = ca.actor.clone();
    ca.db.write(&actor, now_utc, |tx| {
        use reminders::dsl as r;
        let pk = (&key.card_number, key.not_after, key.offset_days);
        let row: Option<ReminderRow> = with_conn!(tx.db, c => r::reminders
            .find(pk)
            .select(ReminderRow::as_select())
            .first(c)
            .optional())?;
        let Some(row) = row.filter(|r| r.state == State::Pending) else {
            return Ok(Failure::NotPending);
        };
        let attempts = row.attempts.saturating_add(1);
        let max = i32::try_from(config.max_attempts).unwrap_or(i32::MAX);
        if permanent || attempts >= max {
            with_conn!(tx.db, c => diesel::update(r::reminders.find(pk))
                .filter(r::state.eq(State::Pending))
                .set((
                    r::state.eq(State::Dead),
                    r::attempts.eq(attempts),
                    r::last_error.eq(Some(&error)),
                    r::claimed_until.eq(None::<NaiveDateTime>),
                ))
                .execute(c))?;
            tx.audit(
                AuditAction::ReminderDead,
                &key.card_number,
                serde_json::json!({
                    "not_after": key.not_after.and_utc().to_rfc3339(),
                    "offset_days": key.offset_days,
                    "attempts": attempts,
                    "permanent": permanent,
                    "error": error,
                }),
            );
            Ok(Failure::Dead { attempts })
        } else {
            let next = now + retry_delay(&config, attempts);
            with_conn!(tx.db, c => diesel::update(r::reminders.find(pk))
                .filter(r::state.eq(State::Pending))
                .set((
                    r::attempts.eq(attempts),
                    r::next_attempt_at.eq(next),
                    r::last_error.eq(Some(&error)),
                    r::claimed_until.eq(None::<NaiveDateTime>),
                ))
                .execute(c))?;
            Ok(Failure::Retry {
                attempts,
                next_attempt_at: next,
            })
        }
    })
}

/// Reminders, optionally in one state, oldest decision first.
pub fn list(db: &mut Db, state: Option<State>, limit: i64) -> Result<Vec<ReminderRow>> {
    use reminders::dsl as r;
    let rows = match state {
        Some(s) => with_conn!(db, c => r::reminders
            .filter(r::state.eq(s.as_str()))
            .order((r::decided_at, r::card_number, r::not_after, r::offset_days))
            .limit(limit)
            .select(ReminderRow::as_select())
            .load(c)),
        None => with_conn!(db, c => r::reminders
            .order((r::decided_at, r::card_number, r::not_after, r::offset_days))
            .limit(limit)
            .select(ReminderRow::as_select())
            .load(c)),
    }?;
    Ok(rows)
}

/// One line of the postal list: who gets a letter, for which card and end.
#[derive(Debug, Clone, Serialize)]
pub struct PostalEntry {
    pub holder_key: String,
    pub family_name: String,
    pub given_names: String,
    pub card_number: String,
    /// The certificates' end date (UTC).
    pub end_date: NaiveDate,
    pub offset_days: i32,
    pub serials: String,
    pub decided_at: NaiveDateTime,
}

/// The reminders to send as letters (holders without e-mail), oldest
/// decision first, with the holders' names from the registry.
pub fn postal(db: &mut Db, limit: i64) -> Result<Vec<PostalEntry>> {
    let rows = list(db, Some(State::Postal), limit)?;
    let keys: HashSet<String> = rows.iter().map(|r| r.holder_key.clone()).collect();
    let holders = pki_store::lookup::identities(db, &keys)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let (family_name, given_names) = holders
                .get(&r.holder_key)
                .map(|h| (h.family_name.clone(), h.given_names.clone()))
                .unwrap_or_default();
            PostalEntry {
                holder_key: r.holder_key,
                family_name,
                given_names,
                card_number: r.card_number,
                end_date: r.not_after.date(),
                offset_days: r.offset_days,
                serials: r.serials,
                decided_at: r.decided_at,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reminders::decide_due;
    use crate::reminders::test_fixture::{population, t};
    use pki_store::clock::Clock;

    #[test]
    fn back_off_doubles_and_is_capped() {
        let config = RemindersConfig::default();
        assert_eq!(retry_delay(&config, 1), Duration::seconds(60));
        assert_eq!(retry_delay(&config, 2), Duration::seconds(120));
        assert_eq!(retry_delay(&config, 4), Duration::seconds(480));
        assert_eq!(retry_delay(&config, 40), Duration::days(30));
        assert_eq!(retry_delay(&config, 0), Duration::seconds(60));
    }

    #[test]
    fn claims_leases_and_outcomes() {
        let start = t("2030-01-01 12:00:00");
        let (_dir, mut ca, clock) = population(4, start);
        ca.config.reminders.max_attempts = 2;
        decide_due(&mut ca).unwrap();
        let lease = Duration::minutes(5);
        let first = claim_due(&mut ca, 10, lease).unwrap();
        assert_eq!(first.len(), 3, "4 holders, one without e-mail");
        // Claimed: nobody else gets them until the lease is over.
        assert!(claim_due(&mut ca, 10, lease).unwrap().is_empty());
        let key = ReminderKey::of(&first[0]);
        assert!(mark_sent(&mut ca, &key, "<id@x>").unwrap());
        assert!(!mark_sent(&mut ca, &key, "<id@x>").unwrap(), "sent once");
        let k1 = ReminderKey::of(&first[1]);
        let f = mark_failed(&mut ca, &k1, "connection refused", false).unwrap();
        let next = db_time(clock.now()) + Duration::seconds(60);
        assert_eq!(
            f,
            Failure::Retry {
                attempts: 1,
                next_attempt_at: next
            }
        );
        let k2 = ReminderKey::of(&first[2]);
        assert_eq!(
            mark_failed(&mut ca, &k2, "550 no such user", true).unwrap(),
            Failure::Dead { attempts: 1 }
        );
        // The lease of nothing is left; the failed one waits for its time.
        clock.advance(Duration::seconds(59));
        assert!(claim_due(&mut ca, 10, lease).unwrap().is_empty());
        clock.advance(Duration::seconds(1));
        let again = claim_due(&mut ca, 10, lease).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(ReminderKey::of(&again[0]), k1);
        assert_eq!(
            mark_failed(&mut ca, &k1, "connection refused", false).unwrap(),
            Failure::Dead { attempts: 2 }
        );
        assert_eq!(
            mark_failed(&mut ca, &k1, "x", false).unwrap(),
            Failure::NotPending
        );
        let states: Vec<State> = list(&mut ca.db, None, 10)
            .unwrap()
            .into_iter()
            .map(|r| r.state)
            .collect();
        let n = |s: State| states.iter().filter(|x| **x == s).count();
        assert_eq!(
            (
                n(State::Sent),
                n(State::Dead),
                n(State::Postal),
                n(State::Pending)
            ),
            (1, 2, 1, 0)
        );
        let postal = postal(&mut ca.db, 10).unwrap();
        assert_eq!(postal.len(), 1);
        assert_eq!(postal[0].family_name, "Rossi");
    }
}
