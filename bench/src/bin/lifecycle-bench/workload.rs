//! The registry-event workload of a wave: its due instant, its events
//! (checked as `pki-admin registry events` does first) and their recording
//! through `requests::record_all` in chunks, which is all this process
//! does to start a wave: the scheduler executes the requests on its own.

use crate::cli::Args;
use crate::scenario::Wave;
use anyhow::ensure;
use ca_core::Ca;
use chrono::{DateTime, DurationRound, Utc};
use pki_registration::events::{self, CheckedEvent};
use pki_registration::requests;
use pki_sample as sample;
use serde_json::{json, Value};
use std::time::Instant;

/// A wave's events, recorded.
pub struct Recorded {
    /// When the recording started.
    pub start: DateTime<Utc>,
    /// When the wave's requests are due.
    pub due: DateTime<Utc>,
    /// Requests recorded (revoke and identity-status).
    pub requests: usize,
    pub check_seconds: f64,
    pub record_seconds: f64,
}

/// Builds, checks and records the wave's `--population` events.
pub fn record(ca: &mut Ca, args: &Args, wave: Wave) -> anyhow::Result<Recorded> {
    let population = args.population;
    let start = Utc::now();
    let due = due_at(wave, start, args.lead_seconds)?;
    let t = Instant::now();
    let checked = build_events(wave, population, due, Utc::now())?;
    let check_seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let source = format!("lifecycle-bench {}", wave.spec().name);
    let mut request_count = 0;
    for chunk in checked.chunks(args.record_chunk.max(1)) {
        for r in requests::record_all(ca, chunk, &source)? {
            ensure!(!r.replay, "event {} was already recorded", r.event);
            request_count += r.requests.len();
        }
    }
    let record_seconds = t.elapsed().as_secs_f64();
    let recorded_at = Utc::now();
    eprintln!(
        "  {population} events checked in {check_seconds:.2} s, recorded ({request_count} requests, \
         chunks of {}) in {record_seconds:.2} s; due {}",
        args.record_chunk,
        due.format("%H:%M:%S")
    );
    if recorded_at > due && wave == Wave::ResidencyEnded {
        eprintln!("  warning: the recording ended after the due time; raise --lead-seconds");
    }
    Ok(Recorded {
        start,
        due,
        requests: request_count,
        check_seconds,
        record_seconds,
    })
}

/// The instant the wave's requests are due, the recording starting at
/// `start`. The database keeps microseconds; `effective` is written in
/// seconds.
fn due_at(wave: Wave, start: DateTime<Utc>, lead_seconds: i64) -> anyhow::Result<DateTime<Utc>> {
    Ok(match wave {
        // A date (00:00 UTC) falls on every cron tick of the scheduler;
        // so does T, a multiple of 10 s.
        Wave::ResidencyEnded => {
            let ten = chrono::Duration::seconds(10);
            (start + chrono::Duration::seconds(lead_seconds) + ten
                - chrono::Duration::nanoseconds(1))
            .duration_trunc(ten)?
        }
        Wave::CardLost => start.duration_trunc(chrono::Duration::microseconds(1))?,
    })
}

/// The wave's events, checked (as `pki-admin registry events` does first).
fn build_events(
    wave: Wave,
    population: usize,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<(CheckedEvent, Value)>> {
    (0..population)
        .map(|i| {
            let id = format!("{}{i:06}", wave.spec().prefix);
            let raw = match wave {
                Wave::ResidencyEnded => json!({
                    "id": id, "type": "residency-ended", "holder": wave.registry_key(i),
                    "effective": due.format("%Y-%m-%dT%H:%M:%S").to_string(),
                }),
                Wave::CardLost => json!({
                    "id": id, "type": "card-lost", "card": sample::card_number(wave.sample_index(i)),
                    "reported_at": due.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                }),
            };
            let event = requests::parse(&raw).map_err(anyhow::Error::msg)?;
            Ok((events::check(event, now)?, raw))
        })
        .collect()
}
