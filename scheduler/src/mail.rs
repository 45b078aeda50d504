//! Delivery of the reminder outbox over SMTP (the `mail` job).
//!
//! [`deliver_due`] claims due `pending` e-mail reminders from the outbox
//! (`pki_registration::reminders::claim_due`: a lease in `claimed_until`, taken by a
//! conditional update, so two schedulers never hold the same reminder),
//! hands each to the relay of `[smtp]` in pki.toml with lettre's blocking
//! [`SmtpTransport`] (the scheduler runs jobs in the blocking pool), and
//! records the outcome:
//!
//! * accepted by the relay: `sent` (audited `reminder.sent`);
//! * refused for the moment (4xx), or the relay unreachable, timing out or
//!   failing TLS: one more attempt, retried after `retry_base_seconds *
//!   2^(attempts-1)`; `dead` (audited `reminder.dead`) after
//!   `reminders.max_attempts` attempts. When the relay cannot be reached at
//!   all, the rest of the claimed batch is counted as failed with the same
//!   error without trying each one, and the run stops: nothing is lost, the
//!   reminders wait for their next attempt;
//! * refused for good (5xx), or a recipient address that is not one: `dead`
//!   at once (retrying cannot help; an operator looks at `pki-admin
//!   reminders list --state dead`).
//!
//! At least once: a crash after the relay accepted a message and before it
//! is marked sent sends it again once the lease is over. Every message
//! carries the Message-ID `pki_registration::reminders::message_id`, derived only
//! from (card, notAfter, offset), so the duplicate can be recognised
//! downstream. The message's Date is the CA clock's (`PKI_FAKE_NOW`).

use anyhow::Context as _;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};
use pki_registration::reminders::{self, Failure, ReminderKey};
use pki_store::config::Smtp;
use pki_store::domain::SmtpTls;
use pki_store::storage::models::ReminderRow;
use pki_store::Context;
use std::time::{Duration, SystemTime};

/// Reminders claimed at a time.
const CLAIM_BATCH: usize = 20;

/// What a run of [`deliver_due`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DeliveryReport {
    /// Accepted by the relay and marked sent.
    pub sent: usize,
    /// Failed this time; will be tried again.
    pub failed: usize,
    /// Dead-lettered by this run.
    pub dead: usize,
}

/// The relay of `[smtp]`.
pub fn transport(smtp: &Smtp) -> anyhow::Result<SmtpTransport> {
    let builder = match smtp.tls {
        SmtpTls::None => SmtpTransport::builder_dangerous(smtp.host.as_str()),
        SmtpTls::StartTls => SmtpTransport::starttls_relay(&smtp.host)
            .with_context(|| format!("smtp.host {:?}", smtp.host))?,
        SmtpTls::Tls => SmtpTransport::relay(&smtp.host)
            .with_context(|| format!("smtp.host {:?}", smtp.host))?,
    };
    let mut builder = builder
        .port(smtp.port)
        .timeout(Some(Duration::from_secs(smtp.timeout_seconds.max(1))));
    if let Some(user) = &smtp.username {
        let password = std::env::var(&smtp.password_env).with_context(|| {
            format!(
                "smtp.username is set but the environment variable {} (smtp.password_env) is not",
                smtp.password_env
            )
        })?;
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    Ok(builder.build())
}

/// The e-mail of a reminder.
pub fn message(
    row: &ReminderRow,
    from: &Mailbox,
    message_id: &str,
    date: SystemTime,
) -> anyhow::Result<Message> {
    let recipient = row
        .recipient
        .as_deref()
        .context("the reminder has no recipient")?;
    let to: Mailbox = recipient
        .parse()
        .with_context(|| format!("recipient {recipient:?} is not an e-mail address"))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(row.subject.clone())
        .message_id(Some(message_id.to_string()))
        .date(date)
        .header(ContentType::TEXT_PLAIN)
        .body(row.body.clone())
        .context("building the message")
}

/// Delivers up to `limit` due e-mail reminders (see the module docs).
pub fn deliver_due(ca: &mut Context, limit: usize) -> anyhow::Result<DeliveryReport> {
    let smtp = ca.config.smtp.clone();
    let from: Mailbox = smtp
        .from
        .parse()
        .with_context(|| format!("smtp.from {:?} is not a mailbox", smtp.from))?;
    let domain = from.email.domain().to_string();
    let transport = transport(&smtp)?;
    // Long enough for a whole batch to time out one message after another.
    let lease = chrono::Duration::seconds(
        i64::try_from(
            smtp.timeout_seconds
                .max(1)
                .saturating_mul(2 * CLAIM_BATCH as u64 + 2),
        )
        .unwrap_or(i64::MAX / 2),
    );
    let mut report = DeliveryReport::default();
    let mut done = 0;
    while done < limit {
        let batch = reminders::claim_due(ca, CLAIM_BATCH.min(limit - done), lease)?;
        if batch.is_empty() {
            break;
        }
        done += batch.len();
        let mut relay_down: Option<String> = None;
        for row in &batch {
            let key = ReminderKey::of(row);
            let id = reminders::message_id(&key, &domain);
            if let Some(error) = &relay_down {
                count(&mut report, reminders::mark_failed(ca, &key, error, false)?);
                continue;
            }
            let msg = match message(row, &from, &id, SystemTime::from(ca.clock.now())) {
                Ok(m) => m,
                Err(e) => {
                    let outcome = reminders::mark_failed(ca, &key, &format!("{e:#}"), true)?;
                    count(&mut report, outcome);
                    continue;
                }
            };
            match transport.send(&msg) {
                Ok(_) => {
                    if reminders::mark_sent(ca, &key, &id)? {
                        report.sent += 1;
                    }
                }
                Err(e) => {
                    let text = error_text(&e);
                    log::warn!("reminder {key}: {text}");
                    let permanent = e.is_permanent();
                    if !e.is_response() {
                        // No answer from the relay at all: the others would fail the same way.
                        relay_down = Some(text.clone());
                    }
                    count(
                        &mut report,
                        reminders::mark_failed(ca, &key, &text, permanent)?,
                    );
                }
            }
        }
        if relay_down.is_some() {
            break;
        }
    }
    Ok(report)
}

fn count(report: &mut DeliveryReport, outcome: Failure) {
    match outcome {
        Failure::Retry { .. } => report.failed += 1,
        Failure::Dead { .. } => report.dead += 1,
        Failure::NotPending => {}
    }
}

/// An SMTP error with its causes, on one line.
fn error_text(e: &lettre::transport::smtp::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn row(recipient: Option<&str>) -> ReminderRow {
        let t = NaiveDate::from_ymd_opt(2030, 6, 30)
            .and_then(|d| d.and_hms_opt(23, 59, 59))
            .unwrap_or_default();
        ReminderRow {
            card_number: "ID000000001".into(),
            not_after: t,
            offset_days: 30,
            holder_key: "MC00000001".into(),
            serials: "01".into(),
            channel: pki_store::domain::ReminderChannel::Email,
            recipient: recipient.map(str::to_string),
            subject: "Vos certificats expirent / Your certificates expire".into(),
            body: "Bonjour, l'échéance approche.\n\nHello, the end is near.\n".into(),
            state: pki_store::domain::ReminderState::Pending,
            attempts: 0,
            next_attempt_at: t,
            claimed_until: None,
            last_error: None,
            decided_at: t,
            sent_at: None,
        }
    }

    #[test]
    fn messages_carry_the_deterministic_id_and_utf8_text() {
        let from: Mailbox = "eID <no-reply@pki.example.com>".parse().unwrap();
        let r = row(Some("holder@example.com"));
        let id = reminders::message_id(&ReminderKey::of(&r), "pki.example.com");
        let m = message(&r, &from, &id, SystemTime::UNIX_EPOCH).unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        assert!(text.contains(&format!("Message-ID: {id}")), "{text}");
        assert!(text.contains("To: holder@example.com"), "{text}");
        assert!(text.contains("charset=utf-8"), "{text}");
    }

    #[test]
    fn a_bad_address_is_an_error_not_a_panic() {
        let from: Mailbox = "no-reply@pki.example.com".parse().unwrap();
        let r = row(Some("not an address"));
        assert!(message(&r, &from, "<x@y>", SystemTime::UNIX_EPOCH).is_err());
        assert!(message(&row(None), &from, "<x@y>", SystemTime::UNIX_EPOCH).is_err());
    }
}
