//! `pki-admin reminders list|postal`: the expiry-reminder outbox that
//! `pki-scheduler` fills (`reminders` job) and delivers (`mail` job), and the
//! list of holders without e-mail who are to get a letter instead.

use crate::output::print_json;
use ca_core::Ca;
use clap::Subcommand;
use pki_registration::reminders::{self, State};
use pki_store::storage::models::ReminderRow;
use serde_json::{json, Value};
use std::io::Write;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum RemindersCommand {
    /// The outbox: every reminder decided, oldest first.
    List {
        /// Only reminders in this state: pending, sent, dead or postal.
        #[arg(long, value_parser = parse_state)]
        state: Option<State>,
        /// At most this many (a note on stderr says when more exist).
        #[arg(long, default_value_t = 1000)]
        limit: i64,
        /// A JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The postal list (holders without e-mail), CSV on stdout:
    /// holder_key,family_name,given_names,card_number,end_date,offset_days,serials,decided_at.
    Postal {
        #[arg(long, default_value_t = 100_000)]
        limit: i64,
    },
}

fn parse_state(s: &str) -> Result<State, String> {
    s.parse()
}

fn time(t: &chrono::NaiveDateTime) -> String {
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A reminder as a JSON object (without its text; `--json` shows it).
fn reminder_json(r: &ReminderRow) -> Value {
    json!({
        "card_number": r.card_number,
        "not_after": time(&r.not_after),
        "offset_days": r.offset_days,
        "holder_key": r.holder_key,
        "serials": r.serials.split(',').filter(|s| !s.is_empty()).collect::<Vec<_>>(),
        "channel": r.channel,
        "recipient": r.recipient,
        "state": r.state,
        "attempts": r.attempts,
        "next_attempt_at": time(&r.next_attempt_at),
        "claimed_until": r.claimed_until.as_ref().map(time),
        "last_error": r.last_error,
        "decided_at": time(&r.decided_at),
        "sent_at": r.sent_at.as_ref().map(time),
        "subject": r.subject,
        "body": r.body,
    })
}

pub fn run(ca: &mut Ca, command: RemindersCommand) -> anyhow::Result<ExitCode> {
    match command {
        RemindersCommand::List { state, limit, json } => {
            let limit = limit.max(0);
            let mut rows = reminders::list(&mut ca.db, state, limit.saturating_add(1))?;
            if rows.len() as i64 > limit {
                rows.truncate(limit as usize);
                eprintln!("note: showing the first {limit} reminders; more exist (use --limit)");
            }
            if json {
                print_json(&json!(rows.iter().map(reminder_json).collect::<Vec<_>>()));
            } else {
                let mut out = std::io::stdout().lock();
                for r in &rows {
                    let when = match (&r.sent_at, r.state.as_str()) {
                        (Some(at), _) => format!("sent {}", time(at)),
                        (None, "pending") => format!("next {}", time(&r.next_attempt_at)),
                        _ => format!("decided {}", time(&r.decided_at)),
                    };
                    writeln!(
                        out,
                        "{:<14} {} {:>3}d {:<6} {:<7} {:>2} {:<32} {}{}",
                        r.card_number,
                        time(&r.not_after),
                        r.offset_days,
                        r.channel,
                        r.state,
                        r.attempts,
                        r.recipient.as_deref().unwrap_or(&r.holder_key),
                        when,
                        r.last_error
                            .as_deref()
                            .map(|e| format!("  ({e})"))
                            .unwrap_or_default()
                    )?;
                }
            }
        }
        RemindersCommand::Postal { limit } => {
            let entries = reminders::postal(&mut ca.db, limit.max(0))?;
            // Cells are neutralised against formula injection (a name from
            // the registry may start with `=`): pki_store::csv_out.
            let mut out = pki_store::csv_out::CsvOut::new(
                std::io::stdout().lock(),
                &[
                    "holder_key",
                    "family_name",
                    "given_names",
                    "card_number",
                    "end_date",
                    "offset_days",
                    "serials",
                    "decided_at",
                ],
            )?;
            for e in &entries {
                out.row(&[
                    e.holder_key.clone(),
                    e.family_name.clone(),
                    e.given_names.clone(),
                    e.card_number.clone(),
                    e.end_date.to_string(),
                    e.offset_days.to_string(),
                    e.serials.replace(',', " "),
                    time(&e.decided_at),
                ])?;
            }
            out.finish()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
