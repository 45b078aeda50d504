//! The measurement: how long after it is due each revoke request of a wave
//! is executed and published in OCSP and in a CRL. Watches the database
//! (the requests' feed positions against the responders' publication marks
//! and the CRLs' feed positions) until the whole wave is published, then
//! reads the delays from the SLA columns, and waits for a complete CRL
//! with the whole wave.

use crate::db;
use crate::observer::Observer;
use crate::scenario::Wave;
use crate::services::Services;
use crate::stats::{distribution, round3, seconds};
use anyhow::{ensure, Context};
use ca_core::Ca;
use chrono::{DateTime, NaiveDateTime, Utc};
use pki_registration::sla::{self, SlaLine};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Watches until every revoke request of the wave is executed and covered
/// by an OCSP publication mark and a CRL of its issuer, looking from outside
/// every second meanwhile; returns when this process saw it.
pub fn wait_published(
    ca: &mut Ca,
    services: &mut Services,
    wave: Wave,
    due: DateTime<Utc>,
    timeout_seconds: u64,
    observer: &mut Observer,
) -> anyhow::Result<DateTime<Utc>> {
    let spec = wave.spec();
    let deadline = due + chrono::Duration::seconds(timeout_seconds as i64);
    let mut last_print = Instant::now();
    let mut last_observation = Instant::now();
    let mut seen = (false, false, false);
    loop {
        services.check_alive()?;
        if last_observation.elapsed() >= Duration::from_secs(1) {
            observer.observe();
            last_observation = Instant::now();
        }
        let (total, executed, max_pos) = db::progress(&mut ca.db, spec.prefix)?;
        let ocsp = db::max_ocsp_position(&mut ca.db)?;
        let crl = db::max_crl_position(&mut ca.db, spec.issuer)?;
        let now = Utc::now();
        let all = total > 0 && executed == total;
        let in_ocsp = all && ocsp >= max_pos;
        let in_crl = all && crl >= max_pos;
        let elapsed = seconds(now - due);
        for (flag, done, what) in [
            (&mut seen.0, all, "all executed"),
            (&mut seen.1, in_ocsp, "all in OCSP"),
            (&mut seen.2, in_crl, "all in a CRL"),
        ] {
            if done && !*flag {
                *flag = true;
                eprintln!("  +{elapsed:.1} s: {what} (observed)");
            }
        }
        if in_ocsp && in_crl {
            return Ok(now);
        }
        if last_print.elapsed() > Duration::from_secs(10) && now > due {
            eprintln!(
                "  +{elapsed:.1} s: {executed}/{total} executed, in OCSP: {in_ocsp}, in a CRL: {in_crl}"
            );
            last_print = Instant::now();
        }
        ensure!(
            now < deadline,
            "wave {} not published {} s after due: {executed}/{total} executed, \
             feed position {max_pos:?}, OCSP {ocsp:?}, CRL {crl:?}",
            spec.name,
            timeout_seconds
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The delays of a wave's revoke requests, from their SLA columns.
pub struct Delays {
    /// Revoke requests of the wave.
    pub requests: usize,
    /// Certificates they changed.
    pub certificates: i64,
    /// Seconds from due to executed, to OCSP, to a CRL, to both.
    pub seconds_from_due: Value,
    /// Seconds between the first and the last execution.
    pub execution_span: f64,
    /// Seconds from due until the last request was published in both.
    pub last_in_both: f64,
    /// Requests by SLA verdict.
    pub verdicts: BTreeMap<String, usize>,
}

/// Stamps the publication times onto the requests (the scheduler's sla job
/// does the same every sla_cron tick) until each of the wave's revoke
/// requests has both, then reads them with the SLA report. `since`: the
/// start of the recording.
pub fn delays(
    ca: &mut Ca,
    wave: Wave,
    due: DateTime<Utc>,
    since: DateTime<Utc>,
    population: usize,
) -> anyhow::Result<Delays> {
    let prefix = wave.spec().prefix;
    let since = (since - chrono::Duration::seconds(5)).naive_utc();
    let lines: Vec<SlaLine> = loop {
        sla::stamp_publications(&mut ca.db)?;
        let lines: Vec<SlaLine> = sla::report(&mut ca.db, Utc::now(), Some(since), i64::MAX)?
            .into_iter()
            .filter(|l| {
                l.request.starts_with(prefix) && l.change == pki_store::domain::RequestKind::Revoke
            })
            .collect();
        if lines
            .iter()
            .all(|l| l.ocsp_published_at.is_some() && l.crl_published_at.is_some())
        {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    ensure!(
        lines.len() == population,
        "{} revoke requests, expected {population}",
        lines.len()
    );
    let due_db = due.naive_utc();
    let from_due = |t: NaiveDateTime| seconds(t - due_db);
    let mut to_exec = Vec::new();
    let mut to_ocsp = Vec::new();
    let mut to_crl = Vec::new();
    let mut to_both = Vec::new();
    let mut verdicts = BTreeMap::<String, usize>::new();
    let mut certificates = 0;
    for l in &lines {
        ensure!(
            l.due_at == Some(due_db),
            "{}: due {:?}",
            l.request,
            l.due_at
        );
        let (e, o, c) = (
            l.executed_at.context("executed")?,
            l.ocsp_published_at.context("ocsp")?,
            l.crl_published_at.context("crl")?,
        );
        to_exec.push(from_due(e));
        to_ocsp.push(from_due(o));
        to_crl.push(from_due(c));
        to_both.push(from_due(o.max(c)));
        *verdicts
            .entry(
                serde_json::to_value(l.verdict)?
                    .as_str()
                    .unwrap_or("?")
                    .to_string(),
            )
            .or_default() += 1;
        certificates += l.certificates.unwrap_or(0);
    }
    let first_exec = to_exec.iter().copied().fold(f64::INFINITY, f64::min);
    let last_exec = to_exec.iter().copied().fold(0.0, f64::max);
    let last_in_both = to_both.iter().copied().fold(0.0, f64::max);
    Ok(Delays {
        requests: lines.len(),
        certificates,
        seconds_from_due: json!({
            "executed": distribution(to_exec),
            "ocsp": distribution(to_ocsp),
            "crl": distribution(to_crl),
            "ocsp_and_crl": distribution(to_both),
        }),
        execution_span: last_exec - first_exec,
        last_in_both,
        verdicts,
    })
}

/// Waits at most `timeout_seconds` for a complete CRL of the wave's issuer
/// with the whole wave; returns how long after due it was published.
pub fn wait_complete_crl(
    ca: &mut Ca,
    services: &mut Services,
    wave: Wave,
    due: DateTime<Utc>,
    timeout_seconds: u64,
) -> anyhow::Result<Option<f64>> {
    let spec = wave.spec();
    let issuer = spec.issuer;
    let (_, _, max_pos) = db::progress(&mut ca.db, spec.prefix)?;
    let max_pos = max_pos.context("no feed position")?;
    if timeout_seconds == 0 {
        return Ok(None);
    }
    let mut complete_after = None;
    let limit = Instant::now() + Duration::from_secs(timeout_seconds);
    loop {
        services.check_alive()?;
        if let Some(at) = db::first_complete_crl(&mut ca.db, issuer, max_pos)? {
            complete_after = Some(round3(seconds(at - due.naive_utc())));
            break;
        }
        if Instant::now() > limit {
            eprintln!(
                "  no complete CRL of {issuer} with the whole wave after {timeout_seconds} s"
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    if let Some(s) = complete_after {
        eprintln!("  complete CRL of {issuer} with the whole wave: {s:.1} s after due");
    }
    Ok(complete_after)
}
