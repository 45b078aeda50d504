//! Deciding which expiry reminders are due: the offsets in force, the
//! smallest due offset of a reminder, the candidates read by keyset pages,
//! each page planned into reminder rows (texts composed by `texts`) and
//! written to the outbox in one audited transaction (`reminder.decide`).
//! The rules are in the documentation of the parent module.

use super::texts::Texts;
use super::{ReminderKey, State};
use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use diesel::prelude::*;
use pki_store::config::Reminders as RemindersConfig;
use pki_store::domain::{AuditAction, ReminderChannel};
use pki_store::error::Result;
use pki_store::storage::models::{CardRow, ReminderRow};
use pki_store::storage::schema::{certificates, reminders};
use pki_store::storage::{db_time, Db, WriteTx};
use pki_store::with_conn;
use pki_store::Context;
use std::collections::{HashMap, HashSet};

/// Certificates read per page when deciding (keyset pagination).
const PAGE: i64 = 20_000;
/// Rows per INSERT / IN (...) statement.
const CHUNK: usize = 500;
/// Reminders decided by one run after which the outbox's statistics are
/// refreshed ([`refresh_statistics`]).
const REFRESH_STATISTICS_AFTER: usize = 1000;

/// What [`decide_due`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DecideReport {
    /// Active card certificates in the reminder window that were looked at.
    pub examined: usize,
    /// Reminders decided for e-mail delivery (state `pending`).
    pub decided_email: usize,
    /// Reminders decided for a postal letter (state `postal`).
    pub decided_postal: usize,
}

/// The last instant of a card: its expiry day, 23:59:59 UTC.
pub fn card_end(card: &CardRow) -> NaiveDateTime {
    let next = card.expiry_date.succ_opt().unwrap_or(NaiveDate::MAX);
    next.and_time(NaiveTime::MIN) - Duration::seconds(1)
}

/// The offsets in force, ascending, without duplicates, in days.
fn offsets(config: &RemindersConfig) -> Vec<i64> {
    let mut v: Vec<i64> = config.offsets_days.iter().map(|d| i64::from(*d)).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The smallest offset due at `now` for a reminder ending at `end`: the
/// smallest `d` with `end - d days <= now`; None when `end` has passed or no
/// offset is due yet.
pub fn smallest_due_offset(offsets: &[i64], end: NaiveDateTime, now: NaiveDateTime) -> Option<i64> {
    let left = end - now;
    if left <= Duration::zero() {
        return None;
    }
    offsets.iter().copied().find(|d| left <= Duration::days(*d))
}

/// One candidate certificate: serial, card, notAfter, usage.
type Candidate = (String, Option<String>, NaiveDateTime, Option<String>);

/// A card's active certificates that end at the same instant.
struct Group {
    card: String,
    not_after: NaiveDateTime,
    serials: Vec<String>,
    usages: Vec<String>,
}

fn candidates_page(
    db: &mut Db,
    from: NaiveDateTime,
    until: NaiveDateTime,
    after: Option<&(NaiveDateTime, String)>,
    page_size: i64,
) -> Result<Vec<Candidate>> {
    use certificates::dsl as c;
    let rows = match after {
        None => with_conn!(db, conn => c::certificates
            .filter(c::status.eq(pki_store::domain::CertStatus::Active))
            .filter(c::not_after.gt(from))
            .filter(c::not_after.le(until))
            .filter(c::card_number.is_not_null())
            .order((c::not_after, c::card_number, c::serial))
            .limit(page_size)
            .select((c::serial, c::card_number, c::not_after, c::usage))
            .load::<Candidate>(conn)),
        Some((na, card)) => with_conn!(db, conn => c::certificates
            .filter(c::status.eq(pki_store::domain::CertStatus::Active))
            .filter(c::not_after.ge(*na))
            .filter(c::not_after.le(until))
            .filter(c::not_after.gt(*na).or(c::card_number.gt(card)))
            .filter(c::card_number.is_not_null())
            .order((c::not_after, c::card_number, c::serial))
            .limit(page_size)
            .select((c::serial, c::card_number, c::not_after, c::usage))
            .load::<Candidate>(conn)),
    }?;
    Ok(rows)
}

/// Groups a page (ordered by notAfter, card, serial) per (card, notAfter).
fn group(page: Vec<Candidate>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for (serial, card, not_after, usage) in page {
        let Some(card) = card else { continue };
        match groups.last_mut() {
            Some(g) if g.card == card && g.not_after == not_after => {
                g.serials.push(serial);
                g.usages.extend(usage);
            }
            _ => groups.push(Group {
                card,
                not_after,
                serials: vec![serial],
                usages: usage.into_iter().collect(),
            }),
        }
    }
    for g in &mut groups {
        // auth, sign, mobile-auth, whatever the serials' order.
        g.usages.sort_by_key(|u| match u.as_str() {
            "auth" => 0,
            "sign" => 1,
            "mobile-auth" => 2,
            _ => 3,
        });
        g.usages.dedup();
    }
    groups
}

/// The reminder keys that exist for some cards, between two notAfters.
fn existing_keys(
    db: &mut Db,
    cards: &[String],
    from: NaiveDateTime,
    until: NaiveDateTime,
) -> Result<HashSet<ReminderKey>> {
    let mut out = HashSet::new();
    for chunk in cards.chunks(CHUNK) {
        let rows: Vec<(String, NaiveDateTime, i32)> = with_conn!(db, c => reminders::table
            .filter(reminders::card_number.eq_any(chunk))
            .filter(reminders::not_after.ge(from))
            .filter(reminders::not_after.le(until))
            .select((reminders::card_number, reminders::not_after, reminders::offset_days))
            .load(c))?;
        out.extend(
            rows.into_iter()
                .map(|(card_number, not_after, offset_days)| ReminderKey {
                    card_number,
                    not_after,
                    offset_days,
                }),
        );
    }
    Ok(out)
}

/// Decides the reminders due at `ca.clock.now()` and writes them to the
/// outbox, audited (`reminder.decide`), one transaction per page of
/// candidates. Idempotent: a `(card, notAfter, offset)` already decided is
/// never decided again, whoever decided it. See the module documentation.
pub fn decide_due(ca: &mut Context) -> Result<DecideReport> {
    decide_due_paged(ca, PAGE)
}

fn decide_due_paged(ca: &mut Context, page_size: i64) -> Result<DecideReport> {
    let now = db_time(ca.clock.now());
    let offsets = offsets(&ca.config.reminders);
    let Some(&largest) = offsets.last() else {
        return Ok(DecideReport::default());
    };
    let until = now + Duration::days(largest);
    let mut report = DecideReport::default();
    let mut after: Option<(NaiveDateTime, String)> = None;
    loop {
        let page = candidates_page(&mut ca.db, now, until, after.as_ref(), page_size)?;
        let full = page.len() as i64 == page_size;
        let mut groups = group(page);
        if full && groups.len() > 1 {
            // The last group may go on in the next page: read it again there.
            groups.pop();
        }
        let Some(last) = groups.last() else { break };
        after = Some((last.not_after, last.card.clone()));
        report.examined += groups.iter().map(|g| g.serials.len()).sum::<usize>();
        let rows = plan_page(ca, &groups, &offsets, now)?;
        if !rows.is_empty() {
            let actor = ca.actor.clone();
            let (email, postal) = ca
                .db
                .write(&actor, ca.clock.now(), |tx| insert_decided(tx, &rows))?;
            report.decided_email += email;
            report.decided_postal += postal;
        }
        if !full {
            break;
        }
    }
    if report.decided_email + report.decided_postal >= REFRESH_STATISTICS_AFTER {
        refresh_statistics(&mut ca.db)?;
    }
    Ok(report)
}

/// Refreshes PostgreSQL's statistics of the outbox after a large decision
/// (a first run, a catch-up). The connection's prepared statements keep the
/// plans chosen while the outbox was small (sequential scans of a table that
/// was nearly empty); new statistics make PostgreSQL plan them again, before
/// autovacuum would. SQLite plans the same statements by index regardless.
fn refresh_statistics(db: &mut Db) -> Result<()> {
    if let Db::Pg(c) = db {
        use diesel::connection::SimpleConnection;
        c.batch_execute("ANALYZE reminders")?;
    }
    Ok(())
}

/// The new reminder rows of a page (database reads only). The registry is
/// read only for the reminders not decided yet, so an idle run costs the
/// candidates, their cards and the existing keys.
fn plan_page(
    ca: &mut Context,
    groups: &[Group],
    offsets: &[i64],
    now: NaiveDateTime,
) -> Result<Vec<ReminderRow>> {
    let (Some(first), Some(last)) = (groups.first(), groups.last()) else {
        return Ok(Vec::new());
    };
    let card_numbers: HashSet<String> = groups.iter().map(|g| g.card.clone()).collect();
    let cards = pki_store::lookup::cards(&mut ca.db, &card_numbers)?;
    let card_list: Vec<String> = card_numbers.into_iter().collect();
    let existing = existing_keys(&mut ca.db, &card_list, first.not_after, last.not_after)?;
    // (group, card, end, offset) of the reminders still to decide.
    let mut todo = Vec::new();
    for g in groups {
        let Some(card) = cards.get(&g.card) else {
            continue;
        };
        let end = g.not_after.min(card_end(card));
        let Some(offset) = smallest_due_offset(offsets, end, now) else {
            continue;
        };
        let offset = i32::try_from(offset).unwrap_or(i32::MAX);
        let key = ReminderKey {
            card_number: g.card.clone(),
            not_after: g.not_after,
            offset_days: offset,
        };
        if !existing.contains(&key) {
            todo.push((g, card, end, offset));
        }
    }
    if todo.is_empty() {
        return Ok(Vec::new());
    }
    let holders: HashSet<String> = todo.iter().map(|t| t.1.holder_key.clone()).collect();
    let holders = pki_store::lookup::identities(&mut ca.db, &holders)?;
    let texts = Texts {
        kiosk_url: &ca.config.reminders.kiosk_url,
    };
    let mut rows = Vec::with_capacity(todo.len());
    for (g, card, end, offset) in todo {
        let Some(holder) = holders.get(&card.holder_key) else {
            continue;
        };
        if holder.status != pki_store::domain::IdentityStatus::Active {
            continue;
        }
        let renew_card = g.not_after >= card_end(card);
        let (subject, body) = texts.compose(card, holder, end, &g.usages, renew_card);
        let email = holder
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty());
        rows.push(ReminderRow {
            card_number: g.card.clone(),
            not_after: g.not_after,
            offset_days: offset,
            holder_key: card.holder_key.clone(),
            serials: g.serials.join(","),
            channel: if email.is_some() {
                ReminderChannel::Email
            } else {
                ReminderChannel::Postal
            },
            recipient: email.map(str::to_string),
            subject,
            body,
            state: if email.is_some() {
                State::Pending
            } else {
                State::Postal
            },
            attempts: 0,
            next_attempt_at: now,
            claimed_until: None,
            last_error: None,
            decided_at: now,
            sent_at: None,
        });
    }
    Ok(rows)
}

/// Inserts decided reminders (those not inserted meanwhile by someone else)
/// and audits exactly the ones inserted. Returns (email, postal) counts.
fn insert_decided(tx: &mut WriteTx<'_>, rows: &[ReminderRow]) -> Result<(usize, usize)> {
    let by_key: HashMap<ReminderKey, &ReminderRow> =
        rows.iter().map(|r| (ReminderKey::of(r), r)).collect();
    let mut inserted = Vec::with_capacity(rows.len());
    match &mut *tx.db {
        Db::Pg(c) => {
            for chunk in rows.chunks(CHUNK) {
                let keys: Vec<(String, NaiveDateTime, i32)> = diesel::insert_into(reminders::table)
                    .values(chunk)
                    .on_conflict_do_nothing()
                    .returning((
                        reminders::card_number,
                        reminders::not_after,
                        reminders::offset_days,
                    ))
                    .get_results(c)?;
                inserted.extend(keys);
            }
        }
        Db::Sqlite(c) => {
            // diesel runs an SQLite multi-row insert with an ON CONFLICT
            // clause row by row, and a RETURNING that returns nothing for
            // a skipped row is an error there: one statement per row (cheap
            // in SQLite, prepared once), the affected count says which.
            for row in rows {
                let n = diesel::insert_into(reminders::table)
                    .values(row)
                    .on_conflict_do_nothing()
                    .execute(c)?;
                if n == 1 {
                    inserted.push((row.card_number.clone(), row.not_after, row.offset_days));
                }
            }
        }
    }
    let (mut email, mut postal) = (0, 0);
    for (card_number, not_after, offset_days) in inserted {
        let key = ReminderKey {
            card_number,
            not_after,
            offset_days,
        };
        let Some(row) = by_key.get(&key) else {
            continue;
        };
        if row.channel == ReminderChannel::Email {
            email += 1;
        } else {
            postal += 1;
        }
        tx.audit(
            AuditAction::ReminderDecide,
            &row.card_number,
            serde_json::json!({
                "not_after": row.not_after.and_utc().to_rfc3339(),
                "offset_days": row.offset_days,
                "holder": row.holder_key,
                "serials": row.serials,
                "channel": row.channel,
            }),
        );
    }
    Ok((email, postal))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reminders::list;
    use crate::reminders::test_fixture::{population, t};

    #[test]
    fn only_the_smallest_due_offset() {
        let offsets = [7, 30, 90];
        let end = t("2030-06-30 23:59:59");
        assert_eq!(
            smallest_due_offset(&offsets, end, t("2030-03-01 00:00:00")),
            None
        );
        assert_eq!(
            smallest_due_offset(&offsets, end, t("2030-04-02 00:00:00")),
            Some(90)
        );
        assert_eq!(
            smallest_due_offset(&offsets, end, t("2030-06-01 00:00:00")),
            Some(30)
        );
        assert_eq!(
            smallest_due_offset(&offsets, end, t("2030-06-24 00:00:00")),
            Some(7)
        );
        assert_eq!(
            smallest_due_offset(&offsets, end, t("2030-06-30 23:59:59")),
            None
        );
        // exactly at end - 90 days
        assert_eq!(
            smallest_due_offset(&offsets, end, end - Duration::days(90)),
            Some(90)
        );
        assert_eq!(
            smallest_due_offset(
                &offsets,
                end,
                end - Duration::days(90) - Duration::seconds(1)
            ),
            None
        );
    }

    #[test]
    fn pages_split_no_card_and_decisions_happen_once() {
        let start = t("2030-01-01 12:00:00");
        let (_dir, mut ca, clock) = population(40, start);
        // Pages of 5 certificates: groups of 2 straddle page ends.
        let r = decide_due_paged(&mut ca, 5).unwrap();
        assert_eq!(r.examined, 80, "{r:?}");
        assert_eq!((r.decided_email, r.decided_postal), (27, 13), "{r:?}");
        let rows = list(&mut ca.db, None, 1000).unwrap();
        assert_eq!(rows.len(), 40);
        assert!(
            rows.iter().all(|r| r.serials.split(',').count() == 2),
            "{rows:?}"
        );
        // Ends 1..=7 days away get offset 7, 8..=30 get 30, the rest 90.
        let by_offset = |d| rows.iter().filter(|r| r.offset_days == d).count();
        assert_eq!((by_offset(7), by_offset(30), by_offset(90)), (7, 23, 10));
        // Again, now or a little later: nothing new.
        let again = decide_due_paged(&mut ca, 3).unwrap();
        assert_eq!((again.decided_email, again.decided_postal), (0, 0));
        clock.advance(Duration::hours(1));
        let again = decide_due(&mut ca).unwrap();
        assert_eq!((again.decided_email, again.decided_postal), (0, 0));
        // Ten days later: ends 11..=17 days after start cross 7 days (they
        // were at 30), ends 31..=40 cross 30 (they were at 90).
        clock.advance(Duration::days(10));
        let later = decide_due(&mut ca).unwrap();
        assert_eq!(later.decided_email + later.decided_postal, 17, "{later:?}");
        let audit = pki_store::audit::list(&mut ca.db, None).unwrap();
        let decided = audit
            .iter()
            .filter(|a| a.action == "reminder.decide")
            .count();
        assert_eq!(decided, 57);
        pki_store::audit::verify(&mut ca.db).unwrap();
    }
}
