//! `pki-scheduler` end to end, on SQLite and PostgreSQL: the real binary
//! with every job on a one-second cron, `/health` and `/metrics` over real
//! HTTP on 127.0.0.1, counters that move, SIGTERM and a clean exit 0;
//! `run-once all` printing one JSON line per job; a database that cannot be
//! reached giving 503 and counted failures while the service stays up. And
//! the OCSP responder's publication marks (`ocsp_publications`), which the
//! `sla` job reads: a revocation served by `ocsp-responder` leaves a row.

use e2e_tests::*;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration as StdDuration, Instant};

/// The `pki-scheduler` binary: `PKI_SCHEDULER_BIN`, else next to `deps/`.
fn scheduler_bin() -> PathBuf {
    workspace_bin("pki-scheduler", "PKI_SCHEDULER_BIN", "scheduler")
}

/// Every job every second (six fields, seconds first).
const FAST_CRONS: &str = "\n[scheduler]\nrequests_cron = \"* * * * * *\"\nexpiry_cron = \"* * * * * *\"\nreminders_cron = \"* * * * * *\"\nmail_cron = \"* * * * * *\"\nsla_cron = \"* * * * * *\"\naudit_checkpoint_cron = \"* * * * * *\"\n";

const JOBS: [&str; 6] = [
    "requests",
    "expiry",
    "reminders",
    "mail",
    "sla",
    "audit-checkpoint",
];

/// A `pki-scheduler ARGS` command on this environment's pki.toml.
fn scheduler_command(env: &TestEnv, config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(scheduler_bin());
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("PKI_") || k.starts_with("SCHEDULER_") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(env.dir())
        .env("PKI_CONFIG", config)
        .args(args)
        .stdin(Stdio::null());
    // On the test's own configuration, the scheduler's own database role.
    if config == env.config_path() {
        cmd.env("PKI_DATABASE_URL", env.role_url("scheduler"));
    }
    cmd
}

/// A running `pki-scheduler` (killed on drop).
struct Service {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl Service {
    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    #[track_caller]
    fn get(&self, path: &str) -> HttpReply {
        http_exchange(&self.addr, "GET", path, &[], &[]).unwrap_or_else(|e| {
            panic!(
                "GET {path} failed: {e}\n--- scheduler log ---\n{}",
                self.log_text()
            )
        })
    }

    #[track_caller]
    fn metrics(&self) -> String {
        let reply = self.get("/metrics");
        assert_eq!(reply.status, 200);
        String::from_utf8_lossy(&reply.body).into_owned()
    }

    /// Sends SIGTERM and waits (at most `secs`) for the exit status.
    #[track_caller]
    fn terminate(&mut self, secs: u64) -> std::process::ExitStatus {
        let kill = output_of(
            Command::new("kill").args(["-TERM", &self.child.id().to_string()]),
            "kill -TERM",
        );
        assert!(kill.status.success(), "{}", describe("kill -TERM", &kill));
        let deadline = Instant::now() + StdDuration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "pki-scheduler still running {secs} s after SIGTERM\n{}",
                self.log_text()
            );
            std::thread::sleep(StdDuration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- pki-scheduler log ({}) ---\n{}",
                self.log.display(),
                cut(&self.log_text(), 20_000)
            );
        }
    }
}

/// Starts `pki-scheduler --listen 127.0.0.1:0` and waits for its
/// `listening on http://ADDR` line.
#[track_caller]
fn start(env: &TestEnv, config: &Path) -> Service {
    let log = env.path(&format!("scheduler-{}.log", unique_suffix()));
    let mut cmd = scheduler_command(env, config, &["--listen", "127.0.0.1:0"]);
    cmd.stdout(Stdio::piped())
        .stderr(fs::File::create(&log).expect("create the scheduler log"));
    let mut child = cmd.spawn().expect("start pki-scheduler");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + StdDuration::from_secs(60);
    loop {
        match rx.recv_timeout(StdDuration::from_millis(100)) {
            Ok(line) => {
                if let Some(addr) = line.strip_prefix("listening on http://") {
                    return Service {
                        child,
                        addr: addr.trim().to_string(),
                        log,
                    };
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "pki-scheduler exited ({status}) before listening\n{}",
                        fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "pki-scheduler did not print its address\n{}",
                    fs::read_to_string(&log).unwrap_or_default()
                );
            }
        }
    }
}

/// The value of one sample (`name{labels}`) of a Prometheus text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// This environment's pki.toml with every job on a one-second cron.
fn fast_config(env: &TestEnv) -> PathBuf {
    let mut text = fs::read_to_string(env.config_path()).expect("read pki.toml");
    text.push_str(FAST_CRONS);
    env.write("pki-fast.toml", text)
}

/// A card certificate, revoked while `ocsp-responder --instance` runs:
/// a publication mark appears for that instance.
#[track_caller]
fn revoke_under_the_responder(env: &TestEnv) {
    let national = Identity::national("N9100001");
    let card = Card::identity("910001", &national.registry_key);
    env.holder_with_card(&national, &card);
    let issued = env.issue(&card.number, "auth", &env.csr(KeyType::EcP256));
    let responder = env.start_responder(&["--instance", "e2e-ocsp"]);
    let marks = "SELECT instance, feed_position FROM ocsp_publications ORDER BY feed_position";
    assert!(
        env.sql(marks).is_empty(),
        "no mark without a change: {:?}",
        env.sql(marks)
    );
    env.ok(&[
        "revoke",
        "--serial",
        &issued.serial,
        "--reason",
        "keyCompromise",
    ]);
    let deadline = Instant::now() + StdDuration::from_secs(10);
    let rows = loop {
        let rows = env.sql(marks);
        if !rows.is_empty() {
            break rows;
        }
        assert!(
            Instant::now() < deadline,
            "no publication mark 10 s after a revocation\n--- responder log ---\n{}",
            responder.log_text()
        );
        std::thread::sleep(StdDuration::from_millis(100));
    };
    assert_eq!(rows[0][0], "e2e-ocsp", "{rows:?}");
    let position: i64 = rows[0][1].parse().expect("feed position");
    let head: i64 = env.sql("SELECT MAX(seq) FROM audit_log")[0][0]
        .parse()
        .expect("audit head");
    assert!(
        position > 0 && position <= head,
        "mark at {position}, feed head {head}"
    );
    // Polls without a change add nothing.
    std::thread::sleep(StdDuration::from_millis(600));
    assert_eq!(env.sql(marks).len(), rows.len(), "{:?}", env.sql(marks));
}

fn scheduler_runs_its_jobs_and_stops_cleanly(env: &TestEnv) {
    env.init();
    revoke_under_the_responder(env);
    let config = fast_config(env);
    let mut service = start(env, &config);

    let health = service.get("/health");
    assert_eq!(health.status, 200, "{}", service.log_text());
    let body: Value = serde_json::from_slice(&health.body).expect("/health is JSON");
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["database"], "up", "{body}");
    for job in JOBS {
        assert_eq!(body["jobs"][job]["cron"], "* * * * * *", "{body}");
    }

    // Every job runs at least twice (one-second crons), none fails.
    let deadline = Instant::now() + StdDuration::from_secs(30);
    let text = loop {
        let text = service.metrics();
        let least = JOBS
            .iter()
            .map(|j| {
                sample(
                    &text,
                    &format!("pki_scheduler_job_runs_total{{job=\"{j}\"}}"),
                )
            })
            .map(|v| v.unwrap_or(0.0))
            .fold(f64::MAX, f64::min);
        if least >= 2.0 {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "jobs did not run twice in 30 s\n{text}\n--- log ---\n{}",
            service.log_text()
        );
        std::thread::sleep(StdDuration::from_millis(200));
    };
    let health: Value =
        serde_json::from_slice(&service.get("/health").body).expect("/health is JSON");
    for job in JOBS {
        assert_eq!(
            sample(
                &text,
                &format!("pki_scheduler_job_failures_total{{job=\"{job}\"}}")
            ),
            Some(0.0),
            "job {job} failed: {}\n{text}",
            health["jobs"][job]
        );
        let last = sample(
            &text,
            &format!("pki_scheduler_job_last_success_timestamp_seconds{{job=\"{job}\"}}"),
        )
        .unwrap_or(0.0);
        let now = chrono::Utc::now().timestamp() as f64;
        assert!(
            (now - 60.0..=now + 1.0).contains(&last),
            "last success of {job}: {last}"
        );
        assert!(health["jobs"][job]["last_success"].is_string(), "{health}");
        assert!(health["jobs"][job]["last_error"].is_null(), "{health}");
    }
    for series in [
        "pki_revocation_requests{state=\"pending\"}",
        "pki_revocation_requests{state=\"unpublished\"}",
        "pki_revocation_requests{state=\"at_risk\"}",
        "pki_revocation_requests{state=\"late\"}",
        "pki_revocation_requests_total",
        "pki_revocation_oldest_unfinished_seconds",
        "pki_reminders{state=\"pending\"}",
        "pki_scheduler_database_up",
    ] {
        assert!(sample(&text, series).is_some(), "no {series} in\n{text}");
    }
    assert_eq!(sample(&text, "pki_scheduler_database_up"), Some(1.0));
    assert_eq!(service.get("/nothing-here").status, 404);

    // Counters keep moving.
    let before = sample(&text, "pki_scheduler_job_runs_total{job=\"sla\"}").unwrap_or(0.0);
    std::thread::sleep(StdDuration::from_millis(2200));
    let after = sample(
        &service.metrics(),
        "pki_scheduler_job_runs_total{job=\"sla\"}",
    )
    .unwrap_or(0.0);
    assert!(after > before, "sla runs {before} -> {after}");

    let status = service.terminate(30);
    assert_eq!(status.code(), Some(0), "{}", service.log_text());
    let log = service.log_text();
    assert!(log.contains("SIGTERM: stopping"), "{log}");
    assert!(log.contains("job sla: done in"), "{log}");
    assert!(log.trim_end().ends_with("stopped"), "{log}");
}

fn scheduler_run_once_all_prints_one_line_per_job(env: &TestEnv) {
    env.init();
    let config = env.config_path();
    let mut cmd = scheduler_command(env, &config, &["run-once", "all"]);
    let out = output_of(&mut cmd, "pki-scheduler run-once all");
    let shown = describe("pki-scheduler run-once all", &out);
    assert!(out.status.success(), "{shown}");
    let lines = json_lines(&stdout_str(&out));
    let names: Vec<&str> = lines.iter().map(|l| str_field(l, "job")).collect();
    assert_eq!(names, JOBS, "{shown}");
    for l in &lines {
        assert_eq!(l["ok"], true, "{shown}");
        assert!(l["report"].is_object(), "{shown}");
        assert!(l["ms"].is_u64(), "{shown}");
    }
    assert!(lines[4]["report"]["summary"]["total"].is_u64(), "{shown}");

    let mut cmd = scheduler_command(env, &config, &["run-once", "sla"]);
    let out = output_of(&mut cmd, "pki-scheduler run-once sla");
    assert!(out.status.success(), "{}", describe("run-once sla", &out));
    assert_eq!(json_lines(&stdout_str(&out)).len(), 1);

    let mut cmd = scheduler_command(env, &config, &["run-once", "everything"]);
    let out = output_of(&mut cmd, "pki-scheduler run-once everything");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        describe("run-once x", &out)
    );
}

e2e_test!(
    scheduler_runs_its_jobs_and_stops_cleanly,
    scheduler_run_once_all_prints_one_line_per_job,
);

/// A database that cannot be reached: `/health` says 503, every run fails
/// and is counted, the service stays up and still stops cleanly;
/// `run-once` exits 1 with the error on stderr.
#[test]
fn scheduler_without_its_database_is_unhealthy_but_up() {
    let Some(env) = TestEnv::new(Backend::Sqlite) else {
        return;
    };
    let config = env.write(
        "unreachable.toml",
        format!(
            "data_dir = \"data\"\ndatabase_url = \"postgres://nobody@127.0.0.1:1/none?connect_timeout=2\"\n{FAST_CRONS}"
        ),
    );
    let mut service = start(&env, &config);
    let health = service.get("/health");
    assert_eq!(health.status, 503, "{}", service.log_text());
    let body: Value = serde_json::from_slice(&health.body).expect("/health is JSON");
    assert_eq!(body["status"], "unhealthy", "{body}");
    let deadline = Instant::now() + StdDuration::from_secs(30);
    loop {
        let text = service.metrics();
        let failures = sample(&text, "pki_scheduler_job_failures_total{job=\"expiry\"}");
        if failures.is_some_and(|f| f >= 2.0) {
            assert_eq!(sample(&text, "pki_scheduler_database_up"), Some(0.0));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no counted failures in 30 s\n{text}\n{}",
            service.log_text()
        );
        std::thread::sleep(StdDuration::from_millis(200));
    }
    let body: Value = serde_json::from_slice(&service.get("/health").body).expect("JSON");
    let error = body["jobs"]["expiry"]["last_error"].as_str().unwrap_or("");
    assert!(error.contains("cannot open"), "{body}");
    let status = service.terminate(30);
    assert_eq!(status.code(), Some(0), "{}", service.log_text());

    let mut cmd = scheduler_command(&env, &config, &["run-once", "expiry"]);
    let out = output_of(&mut cmd, "pki-scheduler run-once expiry");
    let shown = describe("pki-scheduler run-once expiry", &out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(stderr_str(&out).contains("error: job expiry"), "{shown}");
    let lines = json_lines(&stdout_str(&out));
    assert_eq!(lines.len(), 1, "{shown}");
    assert_eq!(lines[0]["ok"], false, "{shown}");
}
