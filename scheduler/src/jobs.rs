//! The scheduler's jobs and their bookkeeping.
//!
//! * [`Job`]: the five jobs of `[scheduler]` in pki.toml and what each runs:
//!   `requests` ([`pki_registration::requests::execute_due`], repeated while a full
//!   page of requests was executed), `expiry`
//!   ([`pki_registration::lifecycle::expire_due`]), `reminders`
//!   (`pki_registration::reminders::decide_due`), `mail` ([`crate::mail::deliver_due`])
//!   and `sla` ([`pki_registration::sla::stamp_publications`] then
//!   [`pki_registration::sla::summary`]), and `audit-checkpoint`
//!   ([`crate::audit_checkpoint::run`]). [`run_job`] runs one on an open [`Context`] and
//!   returns its report as JSON.
//! * [`Runner`]: runs jobs for the service and for `run-once`. Each job keeps
//!   its own CA context (opened on first use, reopened after a failure, so a
//!   database that went away is reconnected), never runs twice at the same
//!   time (a run that finds the previous one still going is skipped and
//!   counted), and never takes the process down: an error or a panic is
//!   logged and counted. Every run is logged on stderr (start, duration,
//!   JSON report or error) and recorded in [`Stats`], which `/health` and
//!   `/metrics` read.
//!
//! Times of runs are wall-clock times (when the process did something);
//! the jobs themselves decide with the CA's injected clock (`PKI_FAKE_NOW`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use pki_registration::sla::SlaSummary;
use pki_store::clock::Clock;
use pki_store::config::{self, Config};
use pki_store::storage::schema::reminders;
use pki_store::storage::Db;
use pki_store::{with_conn, Context};
use serde::Serialize;
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// Requests executed per call of `execute_due`.
pub const REQUESTS_PAGE: usize = 500;
/// Reminders handed to the mail relay per run.
pub const MAIL_BATCH: usize = 200;
pub use crate::job_error::{JobError, ACTOR};

/// One of the scheduler's jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Job {
    Requests,
    Expiry,
    Reminders,
    Mail,
    Sla,
    AuditCheckpoint,
}

impl Job {
    /// Every job, in the order `run-once all` runs them.
    pub const ALL: [Job; 6] = [
        Job::Requests,
        Job::Expiry,
        Job::Reminders,
        Job::Mail,
        Job::Sla,
        Job::AuditCheckpoint,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Job::Requests => "requests",
            Job::Expiry => "expiry",
            Job::Reminders => "reminders",
            Job::Mail => "mail",
            Job::Sla => "sla",
            Job::AuditCheckpoint => "audit-checkpoint",
        }
    }

    /// The job named `name`, if any.
    pub fn parse(name: &str) -> Option<Job> {
        Job::ALL.into_iter().find(|j| j.name() == name)
    }

    fn index(self) -> usize {
        Job::ALL.iter().position(|j| *j == self).unwrap_or(0)
    }

    /// The pki.toml key of its schedule.
    pub fn cron_key(self) -> &'static str {
        match self {
            Job::Requests => "scheduler.requests_cron",
            Job::Expiry => "scheduler.expiry_cron",
            Job::Reminders => "scheduler.reminders_cron",
            Job::Mail => "scheduler.mail_cron",
            Job::Sla => "scheduler.sla_cron",
            Job::AuditCheckpoint => "scheduler.audit_checkpoint_cron",
        }
    }

    /// Its schedule (six-field cron, seconds first, UTC).
    pub fn cron(self, s: &config::Scheduler) -> &str {
        match self {
            Job::Requests => &s.requests_cron,
            Job::Expiry => &s.expiry_cron,
            Job::Reminders => &s.reminders_cron,
            Job::Mail => &s.mail_cron,
            Job::Sla => &s.sla_cron,
            Job::AuditCheckpoint => &s.audit_checkpoint_cron,
        }
    }
}

/// What a successful run produced.
#[derive(Debug, Clone)]
pub struct Output {
    /// The job's report, as printed and logged.
    pub report: serde_json::Value,
    /// The `sla` job's counts (for the gauges).
    pub sla: Option<SlaSummary>,
    /// Reminders by outbox state, read after the `reminders` and `mail` jobs.
    pub outbox: Option<BTreeMap<String, u64>>,
    /// Days left of each authority's OCSP responder certificate (`sla` job).
    pub responders: Option<Vec<(String, f64)>>,
}

impl Output {
    fn report(report: serde_json::Value) -> Output {
        Output {
            report,
            sla: None,
            outbox: None,
            responders: None,
        }
    }
}

/// Adds the numbers of `more` to those of `total` (same keys), for the
/// pages of the `requests` job.
fn add_counts(total: &mut serde_json::Value, more: serde_json::Value) {
    match (total, more) {
        (serde_json::Value::Object(t), serde_json::Value::Object(m)) => {
            for (k, v) in m {
                match (t.get_mut(&k), v) {
                    (Some(serde_json::Value::Number(a)), serde_json::Value::Number(b)) => {
                        if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
                            *a = (x + y).into();
                        }
                    }
                    (Some(_), _) => {}
                    (None, v) => {
                        t.insert(k, v);
                    }
                }
            }
        }
        (t, m) => *t = m,
    }
}

/// Reminders by outbox state.
pub fn outbox_counts(db: &mut Db) -> Result<BTreeMap<String, u64>, JobError> {
    let rows: Vec<(String, i64)> = with_conn!(db, c => reminders::table
        .group_by(reminders::state)
        .select((reminders::state, diesel::dsl::count_star()))
        .load::<(String, i64)>(c))?;
    let mut counts: BTreeMap<String, u64> = ["pending", "sent", "dead", "postal"]
        .into_iter()
        .map(|s| (s.to_string(), 0))
        .collect();
    for (state, n) in rows {
        counts.insert(state, n.max(0) as u64);
    }
    Ok(counts)
}

/// Runs one job once on an open CA.
pub fn run_job(job: Job, ca: &mut Context) -> Result<Output, JobError> {
    match job {
        Job::Requests => {
            let mut total = serde_json::json!({});
            let mut pages = 0u64;
            loop {
                let r = pki_registration::requests::execute_due(ca, REQUESTS_PAGE)?;
                pages += 1;
                let full = r.executed >= REQUESTS_PAGE;
                add_counts(&mut total, serde_json::to_value(&r)?);
                if !full {
                    break;
                }
            }
            if pages > 1 {
                total["pages"] = pages.into();
            }
            Ok(Output::report(total))
        }
        Job::Expiry => {
            let expired = pki_registration::lifecycle::expire_due(ca)?;
            Ok(Output::report(serde_json::json!({ "expired": expired })))
        }
        Job::Reminders => {
            let r = pki_registration::reminders::decide_due(ca)?;
            let mut out = Output::report(serde_json::to_value(&r)?);
            out.outbox = Some(outbox_counts(&mut ca.db)?);
            Ok(out)
        }
        Job::Mail => {
            let r = crate::mail::deliver_due(ca, MAIL_BATCH)
                .map_err(|e| JobError::Mail(format!("{e:#}")))?;
            let mut out = Output::report(serde_json::to_value(&r)?);
            out.outbox = Some(outbox_counts(&mut ca.db)?);
            Ok(out)
        }
        Job::Sla => {
            let stamped = pki_registration::sla::stamp_publications(&mut ca.db)?;
            let now = ca.clock.now();
            let summary = pki_registration::sla::summary(&mut ca.db, now)?;
            let responders = pki_store::authorities::responder_days_left(&mut ca.db, now)?;
            let mut report = serde_json::json!({ "stamped": stamped });
            report["summary"] = serde_json::to_value(&summary)?;
            report["responder_days_left"] = serde_json::json!(responders
                .iter()
                .map(|(name, days)| (name.clone(), *days))
                .collect::<BTreeMap<_, _>>());
            Ok(Output {
                report,
                sla: Some(summary),
                outbox: None,
                responders: Some(responders),
            })
        }
        Job::AuditCheckpoint => Ok(Output::report(crate::audit_checkpoint::run(ca)?)),
    }
}

/// The bookkeeping of one job.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobStats {
    pub runs: u64,
    pub failures: u64,
    /// Runs skipped because the previous one was still going.
    pub skipped: u64,
    pub running: bool,
    pub last_started: Option<DateTime<Utc>>,
    pub last_finished: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_failure: Option<DateTime<Utc>>,
    pub last_duration_seconds: Option<f64>,
    pub last_error: Option<String>,
    pub last_report: Option<serde_json::Value>,
}

/// Everything `/health` and `/metrics` show, copied out at once.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub jobs: Vec<(Job, JobStats)>,
    pub sla: Option<SlaSummary>,
    pub outbox: Option<BTreeMap<String, u64>>,
    pub responders: Option<Vec<(String, f64)>>,
}

/// The bookkeeping of every job.
#[derive(Default)]
pub struct Stats {
    jobs: Mutex<[JobStats; Job::ALL.len()]>,
    sla: Mutex<Option<SlaSummary>>,
    outbox: Mutex<Option<BTreeMap<String, u64>>>,
    responders: Mutex<Option<Vec<(String, f64)>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Stats {
    fn started(&self, job: Job, at: DateTime<Utc>) {
        let mut jobs = lock(&self.jobs);
        let s = &mut jobs[job.index()];
        s.running = true;
        s.last_started = Some(at);
    }

    fn skipped(&self, job: Job) {
        lock(&self.jobs)[job.index()].skipped += 1;
    }

    /// Records the end of a run.
    pub fn finished(
        &self,
        job: Job,
        at: DateTime<Utc>,
        seconds: f64,
        result: &Result<Output, JobError>,
    ) {
        {
            let mut jobs = lock(&self.jobs);
            let s = &mut jobs[job.index()];
            s.running = false;
            s.runs += 1;
            s.last_finished = Some(at);
            s.last_duration_seconds = Some(seconds);
            match result {
                Ok(out) => {
                    s.last_success = Some(at);
                    s.last_report = Some(out.report.clone());
                }
                Err(e) => {
                    s.failures += 1;
                    s.last_failure = Some(at);
                    s.last_error = Some(e.to_string());
                }
            }
        }
        if let Ok(out) = result {
            if let Some(sla) = &out.sla {
                *lock(&self.sla) = Some(sla.clone());
            }
            if let Some(outbox) = &out.outbox {
                *lock(&self.outbox) = Some(outbox.clone());
            }
            if let Some(responders) = &out.responders {
                *lock(&self.responders) = Some(responders.clone());
            }
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let jobs = lock(&self.jobs);
        Snapshot {
            jobs: Job::ALL
                .iter()
                .map(|j| (*j, jobs[j.index()].clone()))
                .collect(),
            sla: lock(&self.sla).clone(),
            outbox: lock(&self.outbox).clone(),
            responders: lock(&self.responders).clone(),
        }
    }
}

/// The result of asking for a run.
#[derive(Debug)]
pub enum RunResult {
    Done {
        result: Result<Output, JobError>,
        seconds: f64,
    },
    /// The previous run of the same job was still going.
    Skipped,
    /// The service is stopping: no new run starts.
    Stopping,
}

impl RunResult {
    /// The `run-once` line: `{"job", "ok", "report" | "error", "ms"}`.
    pub fn json_line(&self, job: Job) -> serde_json::Value {
        match self {
            RunResult::Done { result, seconds } => {
                let ms = (seconds * 1000.0).round() as u64;
                match result {
                    Ok(out) => serde_json::json!({
                        "job": job.name(), "ok": true, "report": out.report, "ms": ms,
                    }),
                    Err(e) => serde_json::json!({
                        "job": job.name(), "ok": false, "error": e.to_string(), "ms": ms,
                    }),
                }
            }
            RunResult::Skipped => serde_json::json!({
                "job": job.name(), "ok": false, "error": "the previous run is still going",
            }),
            RunResult::Stopping => serde_json::json!({
                "job": job.name(), "ok": false, "error": "the scheduler is stopping",
            }),
        }
    }

    pub fn ok(&self) -> bool {
        matches!(self, RunResult::Done { result: Ok(_), .. })
    }
}

/// One job's CA context and run flag.
#[derive(Default)]
struct Slot {
    ca: Mutex<Option<Context>>,
    running: AtomicBool,
}

/// Runs jobs (see the module docs).
pub struct Runner {
    config: Config,
    clock: Arc<dyn Clock>,
    slots: [Slot; Job::ALL.len()],
    in_flight: AtomicUsize,
    stopping: AtomicBool,
    pub stats: Stats,
}

impl Runner {
    pub fn new(config: Config, clock: Arc<dyn Clock>) -> Runner {
        Runner {
            config,
            clock,
            slots: Default::default(),
            in_flight: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            stats: Stats::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs that have started and not finished.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// No run starts from now on; those going on finish (wait for
    /// [`Runner::in_flight`] to reach 0).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Runs `job` now, in this thread (blocking), unless it is running
    /// already. Logs the run and records it.
    pub fn run(&self, job: Job) -> RunResult {
        let slot = &self.slots[job.index()];
        // Counted before `stopping` is read: a stop either sees this run or
        // this run sees the stop.
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        if self.stopping.load(Ordering::SeqCst) {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            return RunResult::Stopping;
        }
        if slot
            .running
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            log::warn!(
                "job {}: the previous run is still going; this run is skipped",
                job.name()
            );
            self.stats.skipped(job);
            return RunResult::Skipped;
        }
        self.stats.started(job, Utc::now());
        log::info!("job {}: started", job.name());
        let started = Instant::now();
        let result = {
            let mut ca = lock(&slot.ca);
            self.run_with(job, &mut ca)
        };
        let seconds = started.elapsed().as_secs_f64();
        match &result {
            Ok(out) => log::info!(
                "job {}: done in {} ms: {}",
                job.name(),
                (seconds * 1000.0).round(),
                out.report
            ),
            Err(e) => log::error!(
                "job {}: failed after {} ms: {e}",
                job.name(),
                (seconds * 1000.0).round()
            ),
        }
        self.stats.finished(job, Utc::now(), seconds, &result);
        slot.running.store(false, Ordering::SeqCst);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        RunResult::Done { result, seconds }
    }

    /// Opens the job's CA if needed and runs it; a failed run closes the
    /// CA context (the next run reconnects), and a panic becomes an error.
    fn run_with(&self, job: Job, ca: &mut Option<Context>) -> Result<Output, JobError> {
        if ca.is_none() {
            *ca = Some(
                Context::open(self.config.clone(), self.clock.clone(), ACTOR)
                    .map_err(JobError::Open)?,
            );
        }
        let Some(open) = ca.as_mut() else {
            return Err(JobError::Panicked("no CA context".into()));
        };
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| run_job(job, open)))
            .unwrap_or_else(|p| {
                let message = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "no message".into());
                Err(JobError::Panicked(message))
            });
        if result.is_err() {
            *ca = None;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for j in Job::ALL {
            assert_eq!(Job::parse(j.name()), Some(j));
        }
        assert_eq!(Job::parse("everything"), None);
        let s = config::Scheduler::default();
        assert_eq!(Job::Sla.cron(&s), s.sla_cron);
        assert_eq!(Job::Mail.cron_key(), "scheduler.mail_cron");
    }

    #[test]
    fn pages_of_requests_add_up() {
        let mut total = serde_json::json!({});
        add_counts(
            &mut total,
            serde_json::json!({"executed": 500, "armed": 1, "note": "x"}),
        );
        add_counts(
            &mut total,
            serde_json::json!({"executed": 20, "armed": 0, "note": "y"}),
        );
        assert_eq!(
            total,
            serde_json::json!({"executed": 520, "armed": 1, "note": "x"})
        );
    }

    #[test]
    fn bookkeeping_counts_runs_failures_and_keeps_the_last_report() {
        let stats = Stats::default();
        let t0 = Utc::now();
        stats.started(Job::Sla, t0);
        assert!(stats.snapshot().jobs[4].1.running);
        let summary = SlaSummary {
            total: 3,
            pending: 1,
            ..Default::default()
        };
        stats.finished(
            Job::Sla,
            t0,
            0.25,
            &Ok(Output {
                report: serde_json::json!({"stamped": 2}),
                sla: Some(summary),
                outbox: None,
                responders: Some(vec![("root".into(), 12.5)]),
            }),
        );
        stats.finished(
            Job::Mail,
            t0,
            0.5,
            &Err(JobError::Mail("relay refused".into())),
        );
        stats.skipped(Job::Mail);
        let snap = stats.snapshot();
        let (job, sla) = &snap.jobs[4];
        assert_eq!(*job, Job::Sla);
        assert_eq!((sla.runs, sla.failures, sla.running), (1, 0, false));
        assert_eq!(sla.last_success, Some(t0));
        assert_eq!(sla.last_report, Some(serde_json::json!({"stamped": 2})));
        let (_, mail) = &snap.jobs[3];
        assert_eq!((mail.runs, mail.failures, mail.skipped), (1, 1, 1));
        assert_eq!(mail.last_error.as_deref(), Some("relay refused"));
        assert_eq!(mail.last_success, None);
        assert_eq!(snap.sla.map(|s| s.total), Some(3));
    }

    #[test]
    fn run_once_lines() {
        let ok = RunResult::Done {
            result: Ok(Output::report(serde_json::json!({"expired": 0}))),
            seconds: 0.012,
        };
        assert_eq!(
            ok.json_line(Job::Expiry),
            serde_json::json!({"job": "expiry", "ok": true, "report": {"expired": 0}, "ms": 12})
        );
        let failed = RunResult::Done {
            result: Err(JobError::Panicked("boom".into())),
            seconds: 0.0,
        };
        assert!(!failed.ok());
        assert_eq!(failed.json_line(Job::Sla)["ok"], false);
    }

    #[test]
    fn a_job_on_an_unreachable_database_fails_and_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            // A directory where the database file should be: cannot open.
            database_url: Some(format!("sqlite://{}", dir.path().display())),
            ..Config::default()
        };
        let runner = Runner::new(config, Arc::new(pki_store::clock::SystemClock));
        let r = runner.run(Job::Expiry);
        assert!(!r.ok(), "{r:?}");
        let r = runner.run(Job::Expiry);
        assert!(!r.ok());
        let snap = runner.stats.snapshot();
        assert_eq!(snap.jobs[1].1.runs, 2);
        assert_eq!(snap.jobs[1].1.failures, 2);
        assert!(snap.jobs[1].1.last_error.is_some());
        assert_eq!(runner.in_flight(), 0);
    }

    #[test]
    fn jobs_refuse_a_database_without_schema() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let runner = Runner::new(config.clone(), Arc::new(pki_store::clock::SystemClock));
        let r = runner.run(Job::Expiry);
        assert!(!r.ok(), "{r:?}");
        let message = r.json_line(Job::Expiry).to_string();
        assert!(message.contains("pki-admin migrate"), "{message}");
        assert!(
            !std::path::Path::new(config.database_url().trim_start_matches("sqlite://")).exists(),
            "the scheduler created a database"
        );
    }

    #[test]
    fn jobs_run_on_a_fresh_database() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        // The scheduler never creates the schema: `pki-admin migrate` did.
        Db::migrate(&config.database_url()).unwrap();
        let runner = Runner::new(config, Arc::new(pki_store::clock::SystemClock));
        for job in Job::ALL {
            let r = runner.run(job);
            assert!(r.ok(), "{job:?}: {r:?}");
        }
        let snap = runner.stats.snapshot();
        assert!(snap.sla.is_some());
        let mut db = Db::connect(&runner.config().database_url()).unwrap();
        assert_eq!(outbox_counts(&mut db).unwrap()["pending"], 0);
    }
}
