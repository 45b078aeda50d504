//! `/health` and `/metrics` of `pki-scheduler` (actix-web 4).
//!
//! * `GET /health`: 200 with a JSON body giving, per job, its schedule,
//!   whether it is running, its last run, last success, last error and
//!   counts; 503 (same body, `"status": "unhealthy"`) when the database
//!   cannot be reached (checked at each request on a connection of its own,
//!   reopened when it fails). A failing job does not make the service
//!   unhealthy: it shows in `last_error` and in the failure counter.
//! * `GET /metrics`: the Prometheus text format, written by hand
//!   ([`render_metrics`]): per job `pki_scheduler_job_runs_total`,
//!   `..._failures_total`, `..._skipped_total`, `..._running`,
//!   `..._last_success_timestamp_seconds`, `..._last_duration_seconds`;
//!   from the last `sla` run `pki_revocation_requests{state}`,
//!   `pki_revocation_requests_total` and
//!   `pki_revocation_oldest_unfinished_seconds`; from the last `reminders`
//!   or `mail` run `pki_reminders{state}` (the outbox); and
//!   `pki_scheduler_database_up`.

use crate::jobs::{Runner, Snapshot};
use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use pki_store::storage::Db;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

/// What the HTTP handlers share.
pub struct AppState {
    pub runner: Arc<Runner>,
    pub db: DbProbe,
}

/// A connection kept for the health check.
pub struct DbProbe {
    url: String,
    conn: Mutex<Option<Db>>,
}

impl DbProbe {
    pub fn new(database_url: &str) -> DbProbe {
        DbProbe {
            url: with_connect_timeout(database_url),
            conn: Mutex::new(None),
        }
    }

    /// Whether the database answers a query now (blocking).
    pub fn check(&self) -> Result<(), String> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if conn.is_none() {
            *conn = Some(Db::connect(&self.url).map_err(|e| e.to_string())?);
        }
        let Some(db) = conn.as_mut() else {
            return Err("no connection".into());
        };
        match pki_store::feed::position(db) {
            Ok(_) => Ok(()),
            Err(e) => {
                *conn = None;
                Err(e.to_string())
            }
        }
    }
}

/// PostgreSQL: give up connecting after 3 s, so that `/health` answers
/// while the database is away.
fn with_connect_timeout(url: &str) -> String {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        || url.contains("connect_timeout=")
    {
        return url.to_string();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}connect_timeout=3")
}

/// Registers the routes on an actix `App`.
pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(state)
            .route("/health", web::get().to(health))
            .route("/metrics", web::get().to(metrics))
            .default_service(web::to(not_found));
    }
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/plain; charset=utf-8")
        .body("pki-scheduler serves /health and /metrics\n")
}

async fn db_up(state: &web::Data<AppState>) -> Result<(), String> {
    let state = state.clone();
    web::block(move || state.db.check())
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
}

/// The `/health` body.
pub fn health_json(
    snapshot: &Snapshot,
    runner: &Runner,
    db: &Result<(), String>,
) -> serde_json::Value {
    let mut jobs = serde_json::Map::new();
    for (job, s) in &snapshot.jobs {
        jobs.insert(
            job.name().to_string(),
            serde_json::json!({
                "cron": job.cron(&runner.config().scheduler),
                "running": s.running,
                "runs": s.runs,
                "failures": s.failures,
                "skipped": s.skipped,
                "last_run": s.last_started,
                "last_success": s.last_success,
                "last_error": s.last_error,
                "last_failure": s.last_failure,
                "last_duration_seconds": s.last_duration_seconds,
            }),
        );
    }
    serde_json::json!({
        "status": if db.is_ok() { "ok" } else { "unhealthy" },
        "database": match db { Ok(()) => "up".to_string(), Err(e) => format!("down: {e}") },
        "jobs": jobs,
    })
}

async fn health(state: web::Data<AppState>) -> HttpResponse {
    let db = db_up(&state).await;
    let body = health_json(&state.runner.stats.snapshot(), &state.runner, &db);
    let code = if db.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    HttpResponse::build(code)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let db = db_up(&state).await;
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(render_metrics(&state.runner.stats.snapshot(), db.is_ok()))
}

/// The Prometheus text exposition.
pub fn render_metrics(s: &Snapshot, db_up: bool) -> String {
    let mut out = String::with_capacity(4096);
    type Field = fn(&crate::jobs::JobStats) -> String;
    let per_job: [(&str, &str, &str, Field); 6] = [
        (
            "pki_scheduler_job_runs_total",
            "counter",
            "Runs of the job (successful or not).",
            |j| j.runs.to_string(),
        ),
        (
            "pki_scheduler_job_failures_total",
            "counter",
            "Runs of the job that failed.",
            |j| j.failures.to_string(),
        ),
        (
            "pki_scheduler_job_skipped_total",
            "counter",
            "Runs not started because the previous run of the job was still going.",
            |j| j.skipped.to_string(),
        ),
        (
            "pki_scheduler_job_running",
            "gauge",
            "1 while the job runs.",
            |j| u8::from(j.running).to_string(),
        ),
        (
            "pki_scheduler_job_last_success_timestamp_seconds",
            "gauge",
            "End of the last successful run (Unix time; 0: none yet).",
            |j| {
                j.last_success
                    .map_or(0.0, |t| t.timestamp_millis() as f64 / 1000.0)
                    .to_string()
            },
        ),
        (
            "pki_scheduler_job_last_duration_seconds",
            "gauge",
            "Duration of the last run.",
            |j| j.last_duration_seconds.unwrap_or(0.0).to_string(),
        ),
    ];
    for (name, kind, help, field) in per_job {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (job, stats) in &s.jobs {
            let _ = writeln!(out, "{name}{{job=\"{}\"}} {}", job.name(), field(stats));
        }
    }
    if let Some(sla) = &s.sla {
        out.push_str("# HELP pki_revocation_requests Revocation requests by SLA state (CPS 4.9.5), from the last sla run.\n# TYPE pki_revocation_requests gauge\n");
        for (state, n) in [
            ("pending", sla.pending),
            ("unpublished", sla.unpublished),
            ("at_risk", sla.at_risk),
            ("late", sla.late),
        ] {
            let _ = writeln!(out, "pki_revocation_requests{{state=\"{state}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP pki_revocation_requests_total Revocation requests received.\n# TYPE pki_revocation_requests_total gauge\npki_revocation_requests_total {}",
            sla.total
        );
        let _ = writeln!(
            out,
            "# HELP pki_revocation_oldest_unfinished_seconds Age of the oldest unfinished revocation request since it was due (0: none).\n# TYPE pki_revocation_oldest_unfinished_seconds gauge\npki_revocation_oldest_unfinished_seconds {}",
            sla.oldest_unfinished_seconds
        );
    }
    if let Some(outbox) = &s.outbox {
        out.push_str("# HELP pki_reminders Expiry reminders by outbox state, from the last reminders or mail run.\n# TYPE pki_reminders gauge\n");
        for (state, n) in outbox {
            let _ = writeln!(out, "pki_reminders{{state=\"{state}\"}} {n}");
        }
    }
    if let Some(responders) = &s.responders {
        out.push_str("# HELP pki_ocsp_responder_days_left Days before the current OCSP responder certificate of each authority expires (pki-admin worker replaces it ahead), from the last sla run.\n# TYPE pki_ocsp_responder_days_left gauge\n");
        for (authority, days) in responders {
            let _ = writeln!(
                out,
                "pki_ocsp_responder_days_left{{authority=\"{authority}\"}} {days:.3}"
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP pki_scheduler_database_up 1 when the database answered the last check.\n# TYPE pki_scheduler_database_up gauge\npki_scheduler_database_up {}",
        u8::from(db_up)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{Job, JobStats};
    use pki_registration::sla::SlaSummary;

    #[test]
    fn metrics_text() {
        let t = chrono::DateTime::from_timestamp(1_800_000_000, 500_000_000).unwrap();
        let mut jobs: Vec<(Job, JobStats)> =
            Job::ALL.iter().map(|j| (*j, JobStats::default())).collect();
        jobs[0].1 = JobStats {
            runs: 7,
            failures: 2,
            last_success: Some(t),
            last_duration_seconds: Some(0.125),
            ..Default::default()
        };
        let snapshot = Snapshot {
            jobs,
            sla: Some(SlaSummary {
                total: 9,
                pending: 1,
                unpublished: 2,
                at_risk: 3,
                late: 4,
                oldest_unfinished_seconds: 77,
            }),
            outbox: Some([("pending".to_string(), 5)].into_iter().collect()),
            responders: Some(vec![("identity-card-ca".to_string(), 1.25)]),
        };
        let text = render_metrics(&snapshot, true);
        for line in [
            "pki_scheduler_job_runs_total{job=\"requests\"} 7",
            "pki_scheduler_job_failures_total{job=\"requests\"} 2",
            "pki_scheduler_job_runs_total{job=\"sla\"} 0",
            "pki_scheduler_job_last_success_timestamp_seconds{job=\"requests\"} 1800000000.5",
            "pki_scheduler_job_last_success_timestamp_seconds{job=\"mail\"} 0",
            "pki_scheduler_job_last_duration_seconds{job=\"requests\"} 0.125",
            "pki_revocation_requests{state=\"pending\"} 1",
            "pki_revocation_requests{state=\"late\"} 4",
            "pki_revocation_requests_total 9",
            "pki_revocation_oldest_unfinished_seconds 77",
            "pki_reminders{state=\"pending\"} 5",
            "pki_ocsp_responder_days_left{authority=\"identity-card-ca\"} 1.250",
            "pki_scheduler_database_up 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Every sample belongs to a declared metric.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            assert!(text.contains(&format!("# TYPE {name} ")), "{l}");
        }
        // No SLA gauges before the first sla run.
        let empty = render_metrics(&Snapshot::default(), false);
        assert!(!empty.contains("pki_revocation_requests"));
        assert!(empty.contains("pki_scheduler_database_up 0"));
    }

    #[test]
    fn postgres_health_connections_time_out() {
        assert_eq!(with_connect_timeout("sqlite:///x"), "sqlite:///x");
        assert_eq!(
            with_connect_timeout("postgres://h/db?options=x"),
            "postgres://h/db?options=x&connect_timeout=3"
        );
    }
}
