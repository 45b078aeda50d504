//! The signer's record of the CRLs it has published, with what `/health`
//! and the Prometheus `/metrics` of `crl-server` report from it (through
//! the status file, `status`): for every CRL its number, entries,
//! size, thisUpdate, nextUpdate, age and generation time; counters of
//! publications, superseded CRLs and errors; the change feed position.
//!
//! The publisher loop installs each new CRL; a CRL is only ever replaced by
//! one with a higher number.

use crate::generate::Publication;
use crate::scope::Scope;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, RwLock};

/// One published CRL.
#[derive(Debug, Clone)]
pub struct Served {
    pub scope: Scope,
    pub number: i64,
    pub entries: i64,
    pub this_update: DateTime<Utc>,
    pub next_update: DateTime<Utc>,
    pub size_bytes: usize,
    pub generation_seconds: f64,
    pub total_seconds: f64,
}

impl Served {
    pub fn from_publication(p: &Publication) -> Served {
        Served {
            scope: p.scope.clone(),
            number: p.record.number,
            entries: p.record.entries,
            this_update: p.record.this_update.and_utc(),
            next_update: p.record.next_update.and_utc(),
            size_bytes: p.body.len(),
            generation_seconds: p.generation.as_secs_f64(),
            total_seconds: p.total.as_secs_f64(),
        }
    }
}

#[derive(Default)]
struct Inner {
    by_scope: BTreeMap<Scope, Arc<Served>>,
    expected: Vec<Scope>,
    publications: BTreeMap<&'static str, u64>,
    superseded: u64,
    errors: u64,
    last_error: Option<String>,
    last_tick: Option<DateTime<Utc>>,
    feed_position: i64,
}

/// The publisher loop's record (shared behind an `Arc`).
#[derive(Default)]
pub struct Catalog {
    inner: RwLock<Inner>,
}

fn label(s: &Scope) -> String {
    format!(
        "issuer=\"{}\",partition=\"{}\",kind=\"{}\"",
        s.issuer,
        s.partition,
        if s.arl { "arl" } else { s.kind.as_str() }
    )
}

impl Catalog {
    pub fn new() -> Arc<Catalog> {
        Arc::new(Catalog::default())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a CRL unless a higher number is already recorded.
    pub fn install(&self, served: Served) {
        let mut inner = self.write();
        if let Some(cur) = inner.by_scope.get(&served.scope) {
            if cur.number >= served.number {
                return;
            }
        }
        let kind = if served.scope.arl {
            "arl"
        } else {
            served.scope.kind.as_str()
        };
        *inner.publications.entry(kind).or_default() += 1;
        let served = Arc::new(served);
        inner.by_scope.insert(served.scope.clone(), served);
    }

    /// The CRL currently served for a scope.
    pub fn get_scope(&self, scope: &Scope) -> Option<Arc<Served>> {
        self.read().by_scope.get(scope).cloned()
    }

    /// The scopes that must be served (complete ones; deltas are implied).
    pub fn set_expected(&self, scopes: Vec<Scope>, deltas: bool) {
        let mut all = Vec::new();
        for s in scopes {
            if deltas && !s.arl {
                all.push(s.delta());
            }
            all.push(s);
        }
        self.write().expected = all;
    }

    pub fn superseded(&self) {
        self.write().superseded += 1;
    }

    pub fn error(&self, message: String) {
        let mut inner = self.write();
        inner.errors += 1;
        inner.last_error = Some(message);
    }

    /// The publisher loop ran at `now` and read the feed up to `position`.
    pub fn tick(&self, now: DateTime<Utc>, position: i64) {
        let mut inner = self.write();
        inner.last_tick = Some(now);
        inner.feed_position = position;
    }

    /// Healthy when every expected CRL is served and not past its
    /// nextUpdate, and the publisher loop ran within `stale_after`.
    pub fn health(
        &self,
        now: DateTime<Utc>,
        stale_after: chrono::Duration,
    ) -> (bool, serde_json::Value) {
        let inner = self.read();
        let mut problems = Vec::new();
        for s in &inner.expected {
            match inner.by_scope.get(s) {
                None => problems.push(format!("{s}: not published")),
                Some(c) if c.next_update <= now => {
                    problems.push(format!("{s}: expired at {}", c.next_update))
                }
                Some(_) => {}
            }
        }
        match inner.last_tick {
            Some(t) if now - t > stale_after => {
                problems.push(format!("publisher loop last ran at {t}"))
            }
            _ => {}
        }
        let ok = problems.is_empty();
        let crls: Vec<serde_json::Value> = inner
            .by_scope
            .values()
            .map(|c| {
                serde_json::json!({
                    "issuer": c.scope.issuer, "partition": c.scope.partition,
                    "kind": if c.scope.arl { "arl" } else { c.scope.kind.as_str() },
                    "number": c.number, "entries": c.entries,
                    "this_update": c.this_update.to_rfc3339(), "next_update": c.next_update.to_rfc3339(),
                })
            })
            .collect();
        (
            ok,
            serde_json::json!({
                "status": if ok { "ok" } else { "unhealthy" },
                "problems": problems,
                "crls": crls,
                "feed_position": inner.feed_position,
                "errors": inner.errors,
                "last_error": inner.last_error,
            }),
        )
    }

    /// Prometheus text exposition (version 0.0.4).
    pub fn metrics(&self, now: DateTime<Utc>) -> String {
        let inner = self.read();
        let mut out = String::new();
        let gauge = |out: &mut String, name: &str, help: &str, f: &dyn Fn(&Served) -> f64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            for c in inner.by_scope.values() {
                let _ = writeln!(out, "{name}{{{}}} {}", label(&c.scope), f(c));
            }
        };
        gauge(
            &mut out,
            "crl_age_seconds",
            "Seconds since the thisUpdate of the served CRL.",
            &|c| (now - c.this_update).num_milliseconds() as f64 / 1000.0,
        );
        gauge(
            &mut out,
            "crl_seconds_until_next_update",
            "Seconds until the nextUpdate of the served CRL.",
            &|c| (c.next_update - now).num_milliseconds() as f64 / 1000.0,
        );
        gauge(
            &mut out,
            "crl_entries",
            "Entries of the served CRL.",
            &|c| c.entries as f64,
        );
        gauge(
            &mut out,
            "crl_number",
            "CRL number of the served CRL.",
            &|c| c.number as f64,
        );
        gauge(
            &mut out,
            "crl_size_bytes",
            "Size of the served CRL.",
            &|c| c.size_bytes as f64,
        );
        gauge(
            &mut out,
            "crl_this_update_timestamp_seconds",
            "thisUpdate of the served CRL (Unix time).",
            &|c| c.this_update.timestamp() as f64,
        );
        gauge(
            &mut out,
            "crl_next_update_timestamp_seconds",
            "nextUpdate of the served CRL (Unix time).",
            &|c| c.next_update.timestamp() as f64,
        );
        gauge(
            &mut out,
            "crl_generation_seconds",
            "Time to read, encode and sign the served CRL.",
            &|c| c.generation_seconds,
        );
        gauge(
            &mut out,
            "crl_publication_seconds",
            "Time to generate, write and record the served CRL.",
            &|c| c.total_seconds,
        );
        let _ = writeln!(
            out,
            "# HELP crl_publications_total CRLs published by this process."
        );
        let _ = writeln!(out, "# TYPE crl_publications_total counter");
        for kind in ["complete", "delta", "arl"] {
            let n = inner.publications.get(kind).copied().unwrap_or(0);
            let _ = writeln!(out, "crl_publications_total{{kind=\"{kind}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP crl_superseded_total Signed CRLs dropped because a newer one of the scope was already published.");
        let _ = writeln!(out, "# TYPE crl_superseded_total counter");
        let _ = writeln!(out, "crl_superseded_total {}", inner.superseded);
        let _ = writeln!(out, "# HELP crl_errors_total Failed publisher jobs.");
        let _ = writeln!(out, "# TYPE crl_errors_total counter");
        let _ = writeln!(out, "crl_errors_total {}", inner.errors);
        let _ = writeln!(
            out,
            "# HELP crl_feed_position Audit sequence number the publisher has read up to."
        );
        let _ = writeln!(out, "# TYPE crl_feed_position gauge");
        let _ = writeln!(out, "crl_feed_position {}", inner.feed_position);
        out
    }
}
