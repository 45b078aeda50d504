//! Expiry reminders (CPS 4.6.1): the decision and the outbox.
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

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime};
use diesel::prelude::*;
use pki_store::config::Reminders as RemindersConfig;
use pki_store::domain::AuditAction;
use pki_store::error::{CaError, Result};
use pki_store::storage::models::{CardRow, IdentityRow, ReminderRow};
use pki_store::storage::schema::{certificates, reminders};
use pki_store::storage::{db_time, Db, WriteTx};
use pki_store::with_conn;
use pki_store::Context;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::fmt;

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

use pki_store::domain::ReminderChannel;
pub use pki_store::domain::ReminderState as State;

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

/// The Message-ID of a reminder's e-mail (with its angle brackets): the
/// same for every delivery attempt of the same reminder, so that a message
/// sent twice (crash after the relay accepted it) can be deduplicated.
pub fn message_id(key: &ReminderKey, domain: &str) -> String {
    format!(
        "<eid-reminder.{}.{}.{}d@{}>",
        key.card_number.to_ascii_lowercase(),
        key.not_after.format("%Y%m%dT%H%M%SZ"),
        key.offset_days,
        domain
    )
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

// ---------------------------------------------------------------------------
// Deciding
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// The messages
// ---------------------------------------------------------------------------

const MONTHS_FR: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn date_fr(d: NaiveDate) -> String {
    let day = if d.day() == 1 {
        "1er".to_string()
    } else {
        d.day().to_string()
    };
    format!("{day} {} {}", MONTHS_FR[d.month0() as usize], d.year())
}

fn date_en(d: NaiveDate) -> String {
    format!(
        "{} {} {}",
        d.day(),
        MONTHS_EN[d.month0() as usize],
        d.year()
    )
}

fn usages_fr(usages: &[String]) -> String {
    let words: Vec<&str> = usages
        .iter()
        .map(|u| match u.as_str() {
            "auth" => "authentification",
            "sign" => "signature",
            "mobile-auth" => "identité mobile",
            other => other,
        })
        .collect();
    words.join(", ")
}

fn usages_en(usages: &[String]) -> String {
    let words: Vec<&str> = usages
        .iter()
        .map(|u| match u.as_str() {
            "auth" => "authentication",
            "sign" => "signature",
            "mobile-auth" => "mobile identity",
            other => other,
        })
        .collect();
    words.join(", ")
}

/// Composes the bilingual messages.
struct Texts<'a> {
    kiosk_url: &'a str,
}

impl Texts<'_> {
    /// (subject, body) of a reminder: French first, then English.
    fn compose(
        &self,
        card: &CardRow,
        holder: &IdentityRow,
        end: NaiveDateTime,
        usages: &[String],
        renew_card: bool,
    ) -> (String, String) {
        let day = end.date();
        let iso = day.format("%Y-%m-%d");
        let n = &card.card_number;
        let (card_fr, card_en, office_fr, office_en) = match card.kind.as_str() {
            "residence" => (
                "carte de résident",
                "residence card",
                "la Direction de la Sûreté Publique (section des résidents)",
                "the Public Safety Directorate (residents section)",
            ),
            _ => (
                "carte d'identité",
                "identity card",
                "la Mairie (état civil)",
                "the Town Hall (civil status office)",
            ),
        };
        let subject = if renew_card {
            format!(
                "Votre {card_fr} n° {n} expire le {iso} : renouvelez-la / \
                 Your {card_en} no. {n} expires on {iso}: renew it"
            )
        } else {
            format!(
                "Vos certificats eID (carte n° {n}) expirent le {iso} / \
                 Your eID certificates (card no. {n}) expire on {iso}"
            )
        };
        let name = format!("{} {}", holder.given_names, holder.family_name);
        let (what_fr, what_en) = if renew_card {
            (
                format!(
                    "Cette date est aussi la fin de validité de votre {card_fr} : les certificats ne \
                     peuvent pas être prolongés sur cette carte. Pour conserver votre identité \
                     numérique, demandez le renouvellement de votre carte auprès de {office_fr}. \
                     La nouvelle carte portera de nouveaux certificats."
                ),
                format!(
                    "This is also the end of your {card_en}: the certificates cannot be extended on \
                     this card. To keep your digital identity, apply for a new card at {office_en}. \
                     The new card will carry new certificates."
                ),
            )
        } else {
            (
                format!(
                    "Le renouvellement prend quelques minutes à une borne libre-service, avec votre \
                     carte et son code PIN. Informations : {}",
                    self.kiosk_url
                ),
                format!(
                    "Renewal takes a few minutes at a self-service kiosk, with your card and its \
                     PIN. Information: {}",
                    self.kiosk_url
                ),
            )
        };
        let body = format!(
            "Bonjour {name},\n\
             \n\
             Les certificats électroniques ({ufr}) de votre {card_fr} n° {n} expirent le {dfr} \
             ({iso}, 23:59:59 UTC au plus tard).\n\
             \n\
             {what_fr}\n\
             \n\
             Ce message est envoyé automatiquement ; merci de ne pas y répondre.\n\
             \n\
             ----------------------------------------------------------------------\n\
             \n\
             Dear {name},\n\
             \n\
             The electronic certificates ({uen}) of your {card_en} no. {n} expire on {den} \
             ({iso}, 23:59:59 UTC at the latest).\n\
             \n\
             {what_en}\n\
             \n\
             This message was sent automatically; please do not reply.\n",
            ufr = usages_fr(usages),
            uen = usages_en(usages),
            dfr = date_fr(day),
            den = date_en(day),
        );
        (subject, body)
    }
}

// ---------------------------------------------------------------------------
// Delivery
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Listing
// ---------------------------------------------------------------------------

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
    use pki_store::clock::Clock;
    use pki_store::domain::{CertStatus, Usage};

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

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
    fn back_off_doubles_and_is_capped() {
        let config = RemindersConfig::default();
        assert_eq!(retry_delay(&config, 1), Duration::seconds(60));
        assert_eq!(retry_delay(&config, 2), Duration::seconds(120));
        assert_eq!(retry_delay(&config, 4), Duration::seconds(480));
        assert_eq!(retry_delay(&config, 40), Duration::days(30));
        assert_eq!(retry_delay(&config, 0), Duration::seconds(60));
    }

    #[test]
    fn message_ids_depend_only_on_the_key() {
        let key = ReminderKey {
            card_number: "ID000000001".into(),
            not_after: t("2030-06-30 23:59:59"),
            offset_days: 30,
        };
        let id = message_id(&key, "pki.example.com");
        assert_eq!(
            id,
            "<eid-reminder.id000000001.20300630T235959Z.30d@pki.example.com>"
        );
        assert_eq!(id, message_id(&key.clone(), "pki.example.com"));
    }

    /// A CA on a temporary SQLite database with `n` holders (every third
    /// without e-mail), each with one card and two active certificates
    /// ending `i` days after `start` (i = 1..=n), plus a revoked one.
    fn population(
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
        let mut ca = Context::open(config, std::sync::Arc::new(clock.clone()), "test").unwrap();
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

    #[test]
    fn french_dates() {
        let d = NaiveDate::from_ymd_opt(2027, 8, 1).unwrap();
        assert_eq!(date_fr(d), "1er août 2027");
        assert_eq!(date_en(d), "1 August 2027");
    }
}
