//! How certificates and authorities are shown: JSON objects for scripts,
//! PEM for tools, short text for people.

use pki_store::published::{published_status, PublishedStatus, StatusFacts};
use pki_store::storage::models::CertificateRow;
use pki_x509::cert_pem;
use serde_json::{json, Value};

fn time(t: &chrono::NaiveDateTime) -> String {
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// What relying parties are told (the core's published-status rule).
fn published_json(p: PublishedStatus) -> Value {
    match p {
        PublishedStatus::Good => json!({"status": "good"}),
        PublishedStatus::Revoked {
            at,
            reason,
            invalidity_date,
        } => json!({"status": "revoked", "revocation_time": time(&at), "reason": reason,
                    "invalidity_date": invalidity_date.as_ref().map(time)}),
    }
}

/// A certificate as a JSON object.
pub fn cert_json(row: &CertificateRow) -> Value {
    json!({
        "serial": row.serial,
        "issuer": row.issuer,
        "usage": row.usage,
        "profile": row.profile,
        "kind": row.kind,
        "card_number": row.card_number,
        "holder_key": row.holder_key,
        "subject": row.subject,
        "status": row.status,
        "not_before": time(&row.not_before),
        "not_after": time(&row.not_after),
        "issued_at": time(&row.issued_at),
        "revoked_at": row.revoked_at.as_ref().map(time),
        "revocation_reason": row.revocation_reason,
        "invalidity_date": row.invalidity_date.as_ref().map(time),
        "hold_cause": row.suspension_cause,
        "linked_serial": row.linked_serial,
        "published": published_json(published_status(StatusFacts::from(row))),
        "certificate_pem": cert_pem(&row.der),
    })
}

/// A certificate as a few lines of text.
pub fn cert_text(row: &CertificateRow) -> String {
    let revocation = match (&row.revoked_at, &row.revocation_reason) {
        (Some(at), reason) => format!(
            "since:      {} (reason {}{})\n",
            time(at),
            reason.map_or("no reason code", |r| r.as_str()),
            row.invalidity_date
                .as_ref()
                .map(|d| format!(", key unusable since {}", time(d)))
                .unwrap_or_default()
        ),
        (None, _) => String::new(),
    };
    let body = format!(
        "serial:     {}\nissuer:     {}\nprofile:    {}\nusage:      {}\ncard:       {}\nholder:     {}\nsubject:    {}\nstatus:     {}\npublished:  {}\nvalid:      {} .. {}\n",
        row.serial,
        row.issuer,
        row.profile,
        row.usage.map_or("-", |u| u.as_str()),
        row.card_number.as_deref().unwrap_or("-"),
        row.holder_key.as_deref().unwrap_or("-"),
        row.subject,
        row.status,
        published_status(StatusFacts::from(row)).describe(),
        time(&row.not_before),
        time(&row.not_after),
    );
    body + &revocation
}

pub fn print_json(v: &Value) {
    outln!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}
