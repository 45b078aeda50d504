//! `lifecycle-bench`: a mass registry event executed and published end to
//! end by the real services, timed from the moment it is due to the moment
//! it is published in OCSP and in a CRL (CPS 4.9.5: 24 hours promised, 5
//! minutes targeted).
//!
//! Setup (timed, not part of the measurement), in this process through
//! ca-core: a fresh data directory and pki.toml (SQLite, or a fresh schema
//! on PostgreSQL with `--database postgres://...`), `hierarchy::init`, two
//! populations of `--population` card holders, each card with an
//! authentication certificate issued by `ca_core::batch::run` (the
//! `pki-admin issue-batch` path) from generated P-256 CSRs and then
//! activated through the lifecycle state machine
//! (`lifecycle::apply_in(.., Transition::Activate, ..)` by serial, 500
//! certificates per audited transaction: what `lifecycle::activate` does
//! per card, without a transaction per card):
//!
//! * residents (residents section) with residence cards, for the
//!   `residency-ended` wave (residence-card CA);
//! * nationals (town hall) with identity cards, for the `card-lost` wave
//!   (identity-card CA).
//!
//! Then `ocsp-responder`, `crl-publisher run` and `pki-scheduler` are
//! started from the release directory (defaults of each, except the
//! scheduler's `requests_cron` / `sla_cron`, set in pki.toml), each waited
//! for until it listens and has loaded or published everything.
//!
//! The waves (measured):
//!
//! * `residency-ended`: one event per resident, all with the same
//!   `effective` instant T = now + `--lead-seconds`, recorded through
//!   `pki_registration::requests::record_all` in chunks of 500 (what `pki-admin
//!   registry events FILE --no-execute` does) before T. Each event makes a
//!   revoke request and an identity-status request, due at T.
//! * `card-lost`: one event per national's card, all reported at the same
//!   instant T (the start of the recording) and so due at T: the feed's
//!   recording time is inside the measurement, as when a registry delivers
//!   a wave of reports.
//!
//! Nothing else happens: the scheduler executes the due requests on its
//! own cron, the responder and the publisher follow the change feed on
//! their own. This process only watches the database (cheap reads: the
//! requests' feed positions against the responders' publication marks and
//! the CRLs' feed positions) until every revoke request of the wave is
//! executed and published in both, then stamps the publication times
//! (`pki_registration::sla::stamp_publications`, as the scheduler's `sla` job does)
//! and reads them with `pki_registration::sla::report`. Times come from the SLA
//! columns: due, executed, first OCSP publication mark and first CRL
//! (complete or delta) at or past the request's change-feed position.
//! Alongside, the wave is watched from outside, as a relying party sees it
//! and independently of those marks: 500 of its certificates asked to the
//! responder over HTTP every second until each answers revoked, and the CRL
//! files read whenever they change (a certificate counts from the
//! modification time of the first file listing it). It then waits (`--complete-crl-timeout`) for a *complete* CRL covering the
//! whole wave, and checks the result: every certificate of the wave revoked
//! with the right reason in the database, asked over HTTP to the responder
//! (one OCSP request per certificate), and listed in the complete CRL file
//! (`openssl crl -text`, and the serials compared one by one).
//!
//! Output: one JSON object on stdout, a readable summary on stderr; the
//! pki.toml, CRLs and service logs stay in `--dir/<backend>`. The services
//! are stopped with SIGTERM at the end.
//!
//! ```text
//! bench/lifecycle/run.sh                                   # SQLite, both waves of 10,000
//! bench/lifecycle/run.sh --database postgres://postgres@127.0.0.1:5432/test
//! target/release/lifecycle-bench --population 1000 --scenario card-lost
//! ```

use anyhow::{bail, ensure, Context};
use ca_core::{batch, hierarchy, Ca};
use chrono::{DateTime, DurationRound, NaiveDateTime, Utc};
use clap::{Parser, ValueEnum};
use der::{Decode, Encode};
use diesel::prelude::*;
use ocsp_responder::request::{HashAlg, Serial};
use pki_registration::events::{self, CheckedEvent};
use pki_registration::lifecycle::{self, Scope, Transition};
use pki_registration::sla::{self, SlaLine};
use pki_registration::{cards, registry, requests};
use pki_sample as sample;
use pki_store::clock::SystemClock;
use pki_store::config::Config;
use pki_store::input::Format;
use pki_store::storage::schema::revocation_requests as rr;
use pki_store::storage::schema::{certificates, crls, identities, ocsp_publications};
use pki_store::storage::Db;
use pki_store::with_conn;
use rayon::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const CA_PASSPHRASE: &str = "lifecycle benchmark CA passphrase";
const OCSP_PASSPHRASE: &str = "lifecycle benchmark responder passphrase";
const ACTOR: &str = "lifecycle-bench";
/// Cards activated per audited transaction during setup.
const ACTIVATE_CHUNK: usize = 500;
/// Certificates of a wave watched over OCSP while it runs.
const OCSP_SAMPLE: usize = 500;

#[derive(Parser)]
#[command(about = "A wave of 10,000 registry events, executed and published by the real services")]
struct Args {
    /// Holders per wave (one population per wave, one auth certificate each).
    #[arg(long, default_value_t = 10_000)]
    population: usize,
    /// `sqlite` (a file under --dir) or a PostgreSQL URL (a fresh schema is
    /// made there and dropped at the end).
    #[arg(long, default_value = "sqlite")]
    database: String,
    /// Which wave(s).
    #[arg(long, value_enum, default_value_t = Which::Both)]
    scenario: Which,
    /// Working directory (pki.toml, data, CRLs, service logs); its backend
    /// subdirectory is emptied first.
    #[arg(long, default_value = "target/lifecycle-bench")]
    dir: PathBuf,
    /// Where ocsp-responder, crl-publisher and pki-scheduler are (default:
    /// this binary's directory, i.e. target/release).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// residency-ended: seconds at least between the start of the recording
    /// and the common effective instant (rounded up to a multiple of 10 s).
    #[arg(long, default_value_t = 60)]
    lead_seconds: i64,
    /// Events recorded per transaction (pki-admin registry events: 500).
    #[arg(long, default_value_t = 500)]
    record_chunk: usize,
    /// The scheduler's requests job (pki.toml scheduler.requests_cron).
    #[arg(long, default_value = "*/5 * * * * *")]
    requests_cron: String,
    /// The scheduler's sla job (pki.toml scheduler.sla_cron; the default
    /// of pki.toml).
    #[arg(long, default_value = "*/15 * * * * *")]
    sla_cron: String,
    /// Give up a wave when not all published this long after it is due.
    #[arg(long, default_value_t = 1800)]
    timeout_seconds: u64,
    /// Then wait at most this long for a complete CRL covering the wave
    /// (0: do not wait; the CRL check then reads the complete and delta CRLs).
    #[arg(long, default_value_t = 600)]
    complete_crl_timeout: u64,
    /// PostgreSQL: keep the schema at the end.
    #[arg(long)]
    keep_schema: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    ResidencyEnded,
    CardLost,
    Both,
}

/// One wave.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wave {
    ResidencyEnded,
    CardLost,
}

impl Wave {
    fn name(self) -> &'static str {
        match self {
            Wave::ResidencyEnded => "residency-ended",
            Wave::CardLost => "card-lost",
        }
    }
    /// Request ids start with this.
    fn prefix(self) -> &'static str {
        match self {
            Wave::ResidencyEnded => "lb-res-",
            Wave::CardLost => "lb-lost-",
        }
    }
    /// The sample identity of the i-th holder: residents are odd, nationals even.
    fn sample_index(self, i: usize) -> usize {
        match self {
            Wave::ResidencyEnded => 2 * i + 1,
            Wave::CardLost => 2 * i,
        }
    }
    fn card_prefix(self) -> &'static str {
        match self {
            Wave::ResidencyEnded => "RS",
            Wave::CardLost => "ID",
        }
    }
    fn reason(self) -> &'static str {
        match self {
            Wave::ResidencyEnded => "affiliationChanged",
            Wave::CardLost => "keyCompromise",
        }
    }
    fn crl_reason(self) -> x509_cert::ext::pkix::CrlReason {
        match self {
            Wave::ResidencyEnded => x509_cert::ext::pkix::CrlReason::AffiliationChanged,
            Wave::CardLost => x509_cert::ext::pkix::CrlReason::KeyCompromise,
        }
    }
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Seconds from `a` to `b`, millisecond precision.
fn secs(a: NaiveDateTime, b: NaiveDateTime) -> f64 {
    (b - a).num_milliseconds() as f64 / 1000.0
}

/// p50, p99 and max of a sample (nearest rank).
fn distribution(mut v: Vec<f64>) -> Value {
    if v.is_empty() {
        return Value::Null;
    }
    v.sort_by(f64::total_cmp);
    let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    json!({"p50": round3(rank(0.50)), "p99": round3(rank(0.99)), "max": round3(v[v.len() - 1]),
           "min": round3(v[0])})
}

/// `VmHWM` (peak resident set) and `VmRSS` of a process, in MiB.
fn memory_mib(pid: &str) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some((kb / 1024.0 * 10.0).round() / 10.0)
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// Lowercase hex without leading zeros (serials of the database, CRLs and
/// OCSP compare equal this way).
fn norm_hex(s: &str) -> String {
    let s = s.to_ascii_lowercase();
    let t = s.trim_start_matches('0');
    if t.is_empty() {
        "0".into()
    } else {
        t.into()
    }
}

/// The load averages (1, 5, 15 minutes): the machine may be shared.
fn loadavg() -> Value {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let v: Vec<f64> = text
        .split_whitespace()
        .take(3)
        .filter_map(|x| x.parse().ok())
        .collect();
    json!(v)
}

fn toml_str(s: &str) -> String {
    // A JSON string is a valid TOML basic string.
    serde_json::to_string(s).unwrap_or_default()
}

// ---------------------------------------------------------------------------
// HTTP/1.1 (keep-alive), enough for /health, /metrics and OCSP POSTs
// ---------------------------------------------------------------------------

struct Http {
    addr: String,
    conn: Option<BufReader<TcpStream>>,
}

impl Http {
    fn new(addr: &str) -> Http {
        Http {
            addr: addr.to_string(),
            conn: None,
        }
    }

    fn connect(&mut self) -> anyhow::Result<&mut BufReader<TcpStream>> {
        if self.conn.is_none() {
            let stream = TcpStream::connect(&self.addr)
                .with_context(|| format!("connecting to {}", self.addr))?;
            stream.set_read_timeout(Some(Duration::from_secs(30)))?;
            stream.set_nodelay(true)?;
            self.conn = Some(BufReader::new(stream));
        }
        Ok(self.conn.as_mut().expect("connected"))
    }

    /// One exchange; reconnects once if a kept-alive connection was closed.
    fn call(&mut self, method: &str, path: &str, body: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
        match self.try_call(method, path, body) {
            Ok(r) => Ok(r),
            Err(_) => {
                self.conn = None;
                self.try_call(method, path, body)
            }
        }
    }

    fn try_call(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let host = self.addr.clone();
        let conn = self.connect()?;
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
        if method == "POST" {
            head.push_str(&format!(
                "Content-Type: application/ocsp-request\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        let stream = conn.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let mut line = String::new();
        conn.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let mut length = None;
        let mut close = false;
        loop {
            line.clear();
            if conn.read_line(&mut line)? == 0 {
                bail!("connection closed in the headers");
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                if k == "content-length" {
                    length = v.parse::<usize>().ok();
                } else if k == "connection" && v.eq_ignore_ascii_case("close") {
                    close = true;
                } else if k == "transfer-encoding" {
                    bail!("chunked answers are not handled");
                }
            }
        }
        let mut body = Vec::new();
        match length {
            Some(n) => {
                body.resize(n, 0);
                conn.read_exact(&mut body)?;
            }
            None => {
                conn.read_to_end(&mut body)?;
                close = true;
            }
        }
        if close {
            self.conn = None;
        }
        Ok((status, body))
    }
}

/// A metric without labels from a Prometheus text page.
fn metric(page: &str, name: &str) -> Option<f64> {
    page.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next()? == name).then(|| it.next()?.parse().ok())?
    })
}

// ---------------------------------------------------------------------------
// The services
// ---------------------------------------------------------------------------

struct Service {
    name: &'static str,
    child: Child,
    pid: String,
    addr: String,
    log: PathBuf,
    started_seconds: f64,
    running: bool,
}

impl Service {
    /// Starts `bin` with `args` and only `env` (besides PATH, HOME...: every
    /// PKI_/OCSP_/CRL_/SCHEDULER_ variable is removed), and waits for its
    /// `listening on http://ADDR` line.
    fn start(
        name: &'static str,
        bin: &Path,
        args: &[String],
        env: &[(&str, &str)],
        dir: &Path,
    ) -> anyhow::Result<Service> {
        let log = dir.join(format!("{name}.log"));
        let out = dir.join(format!("{name}.out"));
        let mut cmd = Command::new(bin);
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if ["PKI_", "OCSP_", "CRL_", "SCHEDULER_"]
                .iter()
                .any(|p| k.starts_with(p))
            {
                cmd.env_remove(key);
            }
        }
        cmd.envs(env.iter().copied())
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?);
        let t = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut copy = std::fs::File::create(out).ok();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(f) = copy.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
                let _ = tx.send(line);
            }
        });
        let pid = child.id().to_string();
        let mut service = Service {
            name,
            child,
            pid,
            addr: String::new(),
            log,
            started_seconds: 0.0,
            running: true,
        };
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    if let Some((_, rest)) = line.split_once("listening on http://") {
                        service.addr = rest.trim().to_string();
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if let Ok(Some(status)) = service.child.try_wait() {
                        service.running = false;
                        bail!(
                            "{name} exited ({status}) before listening:\n{}",
                            service.log_tail()
                        );
                    }
                }
                Err(_) => bail!("{name} did not print its address:\n{}", service.log_tail()),
            }
        }
        service.started_seconds = t.elapsed().as_secs_f64();
        Ok(service)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let (status, body) = Http::new(&self.addr).call("GET", path, &[])?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.running = false;
            bail!("{} exited ({status}):\n{}", self.name, self.log_tail());
        }
        Ok(())
    }

    fn memory(&self) -> Value {
        match memory_mib(&self.pid) {
            Some((peak, now)) => json!({"peak_rss_mib": peak, "rss_mib": now}),
            None => Value::Null,
        }
    }

    /// SIGTERM, then waits (SIGKILL after 60 s).
    fn stop(&mut self) -> anyhow::Result<Value> {
        if !self.running {
            return Ok(json!({"exit": "already exited"}));
        }
        let memory = self.memory();
        let t = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid])
            .status()
            .context("running kill")?;
        ensure!(sent.success(), "kill -TERM {} failed", self.pid);
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break self.child.wait()?;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        self.running = false;
        Ok(json!({"memory": memory, "exit": status.to_string(),
                  "stop_seconds": round3(t.elapsed().as_secs_f64())}))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if self.running {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

struct Services {
    ocsp: Service,
    crl: Service,
    scheduler: Service,
}

impl Services {
    fn check_alive(&mut self) -> anyhow::Result<()> {
        self.ocsp.check_alive()?;
        self.crl.check_alive()?;
        self.scheduler.check_alive()
    }

    fn memory(&self) -> Value {
        json!({"ocsp-responder": self.ocsp.memory(), "crl-publisher": self.crl.memory(),
               "pki-scheduler": self.scheduler.memory()})
    }
}

// ---------------------------------------------------------------------------
// Setup
// ---------------------------------------------------------------------------

/// Imports both populations, issues their auth certificates through the
/// batch engine, and activates them. Returns the timings.
fn setup_population(ca: &mut Ca, dir: &Path, population: usize) -> anyhow::Result<Value> {
    let waves = [Wave::ResidencyEnded, Wave::CardLost];
    let today = Utc::now().date_naive();
    let t = Instant::now();
    let reg = dir.join("registry.jsonl");
    let crd = dir.join("cards.jsonl");
    {
        let mut r = std::io::BufWriter::new(std::fs::File::create(&reg)?);
        let mut c = std::io::BufWriter::new(std::fs::File::create(&crd)?);
        for wave in waves {
            for i in 0..population {
                let n = wave.sample_index(i);
                writeln!(r, "{}", sample::identity_json(n))?;
                writeln!(c, "{}", sample::card_json(n, today))?;
            }
        }
    }
    registry::import(ca, &reg, Format::JsonLines)?;
    cards::import(ca, &crd, Format::JsonLines)?;
    let import_seconds = t.elapsed().as_secs_f64();
    eprintln!(
        "  registry and cards: {} holders in {import_seconds:.1} s",
        2 * population
    );

    let t = Instant::now();
    let cards: Vec<String> = waves
        .iter()
        .flat_map(|w| (0..population).map(|i| sample::card_number(w.sample_index(i))))
        .collect();
    let lines: Vec<String> = cards
        .par_iter()
        .map(|card| {
            let csr = sample::p256_csr("lifecycle-bench").expect("CSR generation works");
            json!({"card": card, "usage": "auth", "csr": csr}).to_string()
        })
        .collect();
    let manifest = dir.join("manifest.jsonl");
    std::fs::write(&manifest, lines.join("\n") + "\n")?;
    drop(lines);
    let csr_seconds = t.elapsed().as_secs_f64();
    eprintln!("  {} CSRs generated in {csr_seconds:.1} s", cards.len());

    let t = Instant::now();
    let summary = batch::run(ca, &manifest, |_, _| {})?;
    ensure!(
        summary.issued == cards.len() && summary.rejected == 0,
        "the batch did not issue everything: {summary:?}"
    );
    let issue_seconds = t.elapsed().as_secs_f64();
    eprintln!(
        "  {} auth certificates issued (batch engine) in {issue_seconds:.1} s",
        summary.issued
    );

    // Activation (CPS 4.4.1): hold -> active, through the state machine,
    // by serial.
    let t = Instant::now();
    let now = ca.clock.now();
    let held: Vec<(String, Option<String>)> = with_conn!(&mut ca.db, c => certificates::table
        .filter(certificates::status.eq("hold"))
        .filter(certificates::kind.eq("end-entity"))
        .select((certificates::serial, certificates::card_number))
        .load(c))?;
    ensure!(
        held.len() == cards.len(),
        "{} certificates on hold, expected {}",
        held.len(),
        cards.len()
    );
    for chunk in held.chunks(ACTIVATE_CHUNK) {
        ca.db.write(ACTOR, now, |tx| {
            for (serial, card) in chunk {
                let context = json!({"activation": {"card": card, "by": ACTOR}});
                let changed = lifecycle::apply_in(
                    tx,
                    &Scope::Serial(serial.clone()),
                    Transition::Activate,
                    None,
                    &context,
                    true,
                )?;
                if changed.len() != 1 {
                    return Err(pki_store::CaError::Field {
                        field: "serial".into(),
                        message: format!("{serial}: {} certificates activated", changed.len()),
                    });
                }
            }
            Ok::<_, pki_store::CaError>(())
        })?;
    }
    let activate_seconds = t.elapsed().as_secs_f64();
    eprintln!(
        "  {} cards activated in {activate_seconds:.1} s",
        cards.len()
    );
    use diesel::connection::SimpleConnection;
    match &mut ca.db {
        Db::Pg(c) => c.batch_execute("VACUUM ANALYZE")?,
        Db::Sqlite(c) => c.batch_execute("ANALYZE")?,
    }
    Ok(json!({
        "holders": 2 * population,
        "certificates": summary.issued,
        "import_seconds": round3(import_seconds),
        "csr_seconds": round3(csr_seconds),
        "issue_seconds": round3(issue_seconds),
        "activate_seconds": round3(activate_seconds),
    }))
}

/// Waits until the responder has signed everything and the publisher has a
/// complete CRL of every issuing CA; returns the seconds waited.
fn wait_ready(ca: &mut Ca, services: &mut Services, certs: usize) -> anyhow::Result<f64> {
    let t = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        services.check_alive()?;
        let (health, _) = services.ocsp.get("/health")?;
        let (_, page) = services.ocsp.get("/metrics")?;
        let queue = metric(&page, "ocsp_refresh_queue");
        let presigned = metric(&page, "ocsp_presigned_responses").unwrap_or(0.0);
        let (crl_health, _) = services.crl.get("/health")?;
        let issuers_with_crl = with_conn!(&mut ca.db, c => crls::table
            .filter(crls::kind.eq("complete"))
            .select(crls::issuer)
            .distinct()
            .load::<String>(c))?
        .len();
        if health == 200
            && queue == Some(0.0)
            && presigned >= certs as f64
            && crl_health == 200
            && issuers_with_crl >= 2
        {
            return Ok(t.elapsed().as_secs_f64());
        }
        ensure!(
            Instant::now() < deadline,
            "services not ready after 900 s (ocsp health {health}, queue {queue:?}, \
             presigned {presigned}; crl health {crl_health}, {issuers_with_crl} CRLs)"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

// ---------------------------------------------------------------------------
// A wave
// ---------------------------------------------------------------------------

/// The wave's revoke requests: (count, executed, largest feed position).
fn progress(db: &mut Db, prefix: &str) -> anyhow::Result<(i64, i64, Option<i64>)> {
    let pattern = format!("{prefix}%");
    let total: i64 = with_conn!(db, c => rr::table
        .filter(rr::id.like(&pattern))
        .filter(rr::change.eq("revoke"))
        .count()
        .get_result(c))?;
    let (executed, max_pos): (i64, Option<i64>) = with_conn!(db, c => rr::table
        .filter(rr::id.like(&pattern))
        .filter(rr::change.eq("revoke"))
        .filter(rr::state.eq("executed"))
        .select((diesel::dsl::count_star(), diesel::dsl::max(rr::feed_position)))
        .first(c))?;
    Ok((total, executed, max_pos))
}

fn max_ocsp_position(db: &mut Db) -> anyhow::Result<Option<i64>> {
    Ok(with_conn!(db, c => ocsp_publications::table
        .select(diesel::dsl::max(ocsp_publications::feed_position))
        .first::<Option<i64>>(c))?)
}

/// The feed position of the newest CRL (complete or delta) of `issuer`.
fn max_crl_position(db: &mut Db, issuer: &str) -> anyhow::Result<Option<i64>> {
    Ok(with_conn!(db, c => crls::table
        .filter(crls::issuer.eq(issuer))
        .select(diesel::dsl::max(crls::feed_position))
        .first::<Option<i64>>(c))?)
}

/// The first complete CRL of `issuer` read at or past `position`.
fn first_complete_crl(
    db: &mut Db,
    issuer: &str,
    position: i64,
) -> anyhow::Result<Option<NaiveDateTime>> {
    Ok(with_conn!(db, c => crls::table
        .filter(crls::issuer.eq(issuer))
        .filter(crls::kind.eq("complete"))
        .filter(crls::feed_position.ge(position))
        .select(diesel::dsl::min(crls::published_at))
        .first::<Option<NaiveDateTime>>(c))?)
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
            let n = wave.sample_index(i);
            let id = format!("{}{i:06}", wave.prefix());
            let raw = match wave {
                Wave::ResidencyEnded => json!({
                    "id": id, "type": "residency-ended", "holder": format!("MC{:08}", n + 1),
                    "effective": due.format("%Y-%m-%dT%H:%M:%S").to_string(),
                }),
                Wave::CardLost => json!({
                    "id": id, "type": "card-lost", "card": sample::card_number(n),
                    "reported_at": due.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                }),
            };
            let event = requests::parse(&raw).map_err(anyhow::Error::msg)?;
            Ok((events::check(event, now)?, raw))
        })
        .collect()
}

/// A certificate's (serial, status, reason, issuer).
type StatusRow = (String, String, Option<String>, String);

/// The wave's certificates.
fn wave_certificates(db: &mut Db, wave: Wave) -> anyhow::Result<Vec<StatusRow>> {
    let pattern = format!("{}%", wave.card_prefix());
    Ok(with_conn!(db, c => certificates::table
        .filter(certificates::card_number.like(&pattern))
        .select((certificates::serial, certificates::status,
                 certificates::revocation_reason, certificates::issuer))
        .load(c))?)
}

/// OCSP requests for the certificates of one issuing CA, over one
/// kept-alive HTTP connection.
struct OcspProbe {
    http: Http,
    name_hash: Vec<u8>,
    key_hash: Vec<u8>,
}

impl OcspProbe {
    fn new(ca: &mut Ca, addr: &str, issuer: &str) -> anyhow::Result<OcspProbe> {
        let authority = pki_store::authorities::find(&mut ca.db, issuer)?;
        let ca_cert = pki_store::certificates::find(&mut ca.db, &authority.certificate_serial)?;
        let parsed = x509_cert::Certificate::from_der(&ca_cert.der)?;
        let name_der = parsed.tbs_certificate.subject.to_der()?;
        let key_bits = parsed
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes();
        Ok(OcspProbe {
            http: Http::new(addr),
            name_hash: HashAlg::Sha1.digest(&name_der),
            key_hash: HashAlg::Sha1.digest(key_bits),
        })
    }

    /// The certificate's status: `Ok(None)` good, `Ok(Some(reason))`
    /// revoked (or on hold), `Err` anything else.
    fn revoked(
        &mut self,
        serial: &str,
    ) -> anyhow::Result<Option<Option<x509_cert::ext::pkix::CrlReason>>> {
        let s = Serial::from_hex(serial).with_context(|| format!("serial {serial}"))?;
        let cert_id = ocsp_responder::response::canonical_cert_id(
            HashAlg::Sha1,
            &self.name_hash,
            &self.key_hash,
            &s,
        )?;
        let request = x509_ocsp::OcspRequest {
            tbs_request: x509_ocsp::TbsRequest {
                version: Default::default(),
                requestor_name: None,
                request_list: vec![x509_ocsp::Request {
                    req_cert: cert_id,
                    single_request_extensions: None,
                }],
                request_extensions: None,
            },
            optional_signature: None,
        }
        .to_der()?;
        let (status, body) = self.http.call("POST", "/eid/ocsp", &request)?;
        ensure!(status == 200, "HTTP {status}");
        let response = x509_ocsp::OcspResponse::from_der(&body)?;
        let bytes = response
            .response_bytes
            .with_context(|| format!("status {:?}", response.response_status))?;
        let basic = x509_ocsp::BasicOcspResponse::from_der(bytes.response.as_bytes())?;
        let single = basic
            .tbs_response_data
            .responses
            .first()
            .context("no SingleResponse")?;
        match &single.cert_status {
            x509_ocsp::CertStatus::Good(_) => Ok(None),
            x509_ocsp::CertStatus::Revoked(info) => Ok(Some(info.revocation_reason)),
            other => bail!("{other:?}"),
        }
    }
}

/// Asks the responder about every certificate; returns (asked, answered
/// revoked with the expected reason, first wrong answers).
fn check_ocsp(
    ca: &mut Ca,
    addr: &str,
    issuer: &str,
    serials: &[String],
    reason: x509_cert::ext::pkix::CrlReason,
) -> anyhow::Result<Value> {
    let mut probe = OcspProbe::new(ca, addr, issuer)?;
    let t = Instant::now();
    let (mut ok, mut wrong) = (0usize, Vec::new());
    for serial in serials {
        match probe.revoked(serial) {
            Ok(Some(r)) if r == Some(reason) => ok += 1,
            answer => {
                if wrong.len() < 5 {
                    wrong.push(format!("{serial}: {answer:?}"));
                }
            }
        }
    }
    Ok(
        json!({"asked": serials.len(), "revoked_with_reason": ok, "wrong": wrong,
              "seconds": round3(t.elapsed().as_secs_f64())}),
    )
}

/// Watches the wave from outside, as a relying party would, independently
/// of the publication marks: a sample of the certificates asked to the
/// responder over HTTP (each until it answers revoked), and the CRL files
/// (complete and delta) read whenever they change (a serial counts from
/// the modification time of the first file listing it).
struct Observer {
    due: DateTime<Utc>,
    reason: x509_cert::ext::pkix::CrlReason,
    probe: OcspProbe,
    /// Sample serials not yet answered revoked.
    ocsp_waiting: Vec<String>,
    ocsp_seen: Vec<f64>,
    ocsp_errors: usize,
    crl_files: Vec<(PathBuf, Option<std::time::SystemTime>)>,
    /// Normalised serials of the wave not yet in a CRL file.
    crl_waiting: BTreeSet<String>,
    crl_seen: Vec<f64>,
}

impl Observer {
    fn observe(&mut self) {
        let now = Utc::now();
        let mut still = Vec::new();
        for serial in std::mem::take(&mut self.ocsp_waiting) {
            match self.probe.revoked(&serial) {
                Ok(Some(r)) if r == Some(self.reason) => self
                    .ocsp_seen
                    .push((now - self.due).num_milliseconds() as f64 / 1000.0),
                Ok(_) => still.push(serial),
                Err(_) => {
                    self.ocsp_errors += 1;
                    still.push(serial);
                }
            }
        }
        self.ocsp_waiting = still;
        for (path, seen_mtime) in &mut self.crl_files {
            let Ok(mtime) = std::fs::metadata(&*path).and_then(|m| m.modified()) else {
                continue;
            };
            if *seen_mtime == Some(mtime) {
                continue;
            }
            let Ok(entries) = crl_entries(path) else {
                continue;
            };
            *seen_mtime = Some(mtime);
            let at = (DateTime::<Utc>::from(mtime) - self.due).num_milliseconds() as f64 / 1000.0;
            for (serial, reason) in entries {
                if reason == Some(self.reason) && self.crl_waiting.remove(&serial) {
                    self.crl_seen.push(at);
                }
            }
        }
    }

    fn done(&self) -> bool {
        self.ocsp_waiting.is_empty() && self.crl_waiting.is_empty()
    }

    fn report(&self) -> Value {
        json!({
            "ocsp_http_sample": {"certificates": self.ocsp_seen.len(), "not_seen": self.ocsp_waiting.len(),
                                 "errors": self.ocsp_errors,
                                 "seconds_from_due": distribution(self.ocsp_seen.clone())},
            "crl_files": {"certificates": self.crl_seen.len(), "not_seen": self.crl_waiting.len(),
                          "seconds_from_due": distribution(self.crl_seen.clone())},
        })
    }
}

/// A CRL file's entries: normalised serial -> reason.
fn crl_entries(
    path: &Path,
) -> anyhow::Result<Vec<(String, Option<x509_cert::ext::pkix::CrlReason>)>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let der = if bytes.starts_with(b"-----BEGIN") {
        der::pem::decode_vec(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            .1
    } else {
        bytes
    };
    let crl = x509_cert::crl::CertificateList::from_der(&der)?;
    Ok(crl
        .tbs_cert_list
        .revoked_certificates
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                norm_hex(&hex::encode(r.serial_number.as_bytes())),
                x509_ocsp::RevokedInfo::from(r).revocation_reason,
            )
        })
        .collect())
}

/// `openssl crl -text | grep -c 'Serial Number'`.
fn openssl_count(path: &Path) -> Option<usize> {
    let out = Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(path)
        .output()
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("Serial Number"))
            .count()
    })
}

struct WaveCtx<'a> {
    args: &'a Args,
    crl_dir: PathBuf,
}

fn run_wave(
    ctx: &WaveCtx<'_>,
    ca: &mut Ca,
    services: &mut Services,
    wave: Wave,
) -> anyhow::Result<Value> {
    let args = ctx.args;
    let population = args.population;
    eprintln!("\n== wave {}: {population} events", wave.name());
    let quiet = wait_ready(ca, services, 0)?;
    let load_before = loadavg();
    let issuer = match wave {
        Wave::ResidencyEnded => "residence-card-ca",
        Wave::CardLost => "identity-card-ca",
    };
    let wave_serials: Vec<String> = wave_certificates(&mut ca.db, wave)?
        .into_iter()
        .map(|(serial, ..)| serial)
        .collect();
    let step = (wave_serials.len() / OCSP_SAMPLE).max(1);

    // Record.
    let start = Utc::now();
    // The database keeps microseconds; `effective` is written in seconds.
    let due = match wave {
        // A date (00:00 UTC) falls on every cron tick of the scheduler;
        // so does T, a multiple of 10 s.
        Wave::ResidencyEnded => {
            let ten = chrono::Duration::seconds(10);
            (start + chrono::Duration::seconds(args.lead_seconds) + ten
                - chrono::Duration::nanoseconds(1))
            .duration_trunc(ten)?
        }
        Wave::CardLost => start.duration_trunc(chrono::Duration::microseconds(1))?,
    };
    let t = Instant::now();
    let checked = build_events(wave, population, due, Utc::now())?;
    let check_seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let source = format!("lifecycle-bench {}", wave.name());
    let mut request_count = 0;
    for chunk in checked.chunks(args.record_chunk.max(1)) {
        for r in requests::record_all(ca, chunk, &source)? {
            ensure!(!r.replay, "event {} was already recorded", r.event);
            request_count += r.requests.len();
        }
    }
    let record_seconds = t.elapsed().as_secs_f64();
    let recorded_at = Utc::now();
    let mut observer = Observer {
        due,
        reason: wave.crl_reason(),
        probe: OcspProbe::new(ca, &services.ocsp.addr, issuer)?,
        ocsp_waiting: wave_serials.iter().step_by(step).cloned().collect(),
        ocsp_seen: Vec::new(),
        ocsp_errors: 0,
        crl_files: ["", "-delta"]
            .iter()
            .map(|suffix| (ctx.crl_dir.join(format!("{issuer}{suffix}.crl")), None))
            .collect(),
        crl_waiting: wave_serials.iter().map(|s| norm_hex(s)).collect(),
        crl_seen: Vec::new(),
    };
    eprintln!(
        "  {population} events checked in {check_seconds:.2} s, recorded ({request_count} requests, \
         chunks of {}) in {record_seconds:.2} s; due {}",
        args.record_chunk,
        due.format("%H:%M:%S")
    );
    if recorded_at > due && wave == Wave::ResidencyEnded {
        eprintln!("  warning: the recording ended after the due time; raise --lead-seconds");
    }
    drop(checked);

    // Watch until every revoke request is executed and covered by an OCSP
    // publication mark and a CRL of its issuer.
    let prefix = wave.prefix();
    let deadline = due + chrono::Duration::seconds(args.timeout_seconds as i64);
    let mut last_print = Instant::now();
    let mut last_observation = Instant::now();
    let mut seen = (false, false, false);
    let observed = loop {
        services.check_alive()?;
        if last_observation.elapsed() >= Duration::from_secs(1) {
            observer.observe();
            last_observation = Instant::now();
        }
        let (total, executed, max_pos) = progress(&mut ca.db, prefix)?;
        let ocsp = max_ocsp_position(&mut ca.db)?;
        let crl = max_crl_position(&mut ca.db, issuer)?;
        let now = Utc::now();
        let all = total > 0 && executed == total;
        let in_ocsp = all && ocsp >= max_pos;
        let in_crl = all && crl >= max_pos;
        let elapsed = (now - due).num_milliseconds() as f64 / 1000.0;
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
            break now;
        }
        if last_print.elapsed() > Duration::from_secs(10) && now > due {
            eprintln!(
                "  +{elapsed:.1} s: {executed}/{total} executed, in OCSP: {}, in a CRL: {}",
                ocsp >= max_pos && all,
                crl >= max_pos && all
            );
            last_print = Instant::now();
        }
        ensure!(
            now < deadline,
            "wave {} not published {} s after due: {executed}/{total} executed, \
             feed position {max_pos:?}, OCSP {ocsp:?}, CRL {crl:?}",
            wave.name(),
            args.timeout_seconds
        );
        std::thread::sleep(Duration::from_millis(250));
    };

    // The outside view: until every sample certificate is answered revoked
    // and every certificate is in a CRL file (at most 60 s more).
    let limit = Instant::now() + Duration::from_secs(60);
    while !observer.done() && Instant::now() < limit {
        observer.observe();
        std::thread::sleep(Duration::from_millis(500));
    }
    let outside = observer.report();
    eprintln!(
        "  observed from outside: OCSP (HTTP, {} certificates) {}; CRL files ({} certificates) {}",
        outside["ocsp_http_sample"]["certificates"],
        outside["ocsp_http_sample"]["seconds_from_due"],
        outside["crl_files"]["certificates"],
        outside["crl_files"]["seconds_from_due"]
    );

    // The publication times onto the requests (the sla job does the same
    // every sla_cron tick), then the SLA report.
    let since = (start - chrono::Duration::seconds(5)).naive_utc();
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
    let mut to_exec = Vec::new();
    let mut to_ocsp = Vec::new();
    let mut to_crl = Vec::new();
    let mut to_both = Vec::new();
    let mut verdicts = std::collections::BTreeMap::<String, usize>::new();
    let mut certificates_changed = 0;
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
        to_exec.push(secs(due_db, e));
        to_ocsp.push(secs(due_db, o));
        to_crl.push(secs(due_db, c));
        to_both.push(secs(due_db, o.max(c)));
        *verdicts
            .entry(
                serde_json::to_value(l.verdict)?
                    .as_str()
                    .unwrap_or("?")
                    .to_string(),
            )
            .or_default() += 1;
        certificates_changed += l.certificates.unwrap_or(0);
    }
    let first_exec = to_exec.iter().copied().fold(f64::INFINITY, f64::min);
    let last_exec = to_exec.iter().copied().fold(0.0, f64::max);
    let last_both = to_both.iter().copied().fold(0.0, f64::max);
    eprintln!(
        "  published: last request in both {last_both:.1} s after due (observed here {:.1} s)",
        (observed - due).num_milliseconds() as f64 / 1000.0
    );

    // A complete CRL with the whole wave.
    let (_, _, max_pos) = progress(&mut ca.db, prefix)?;
    let max_pos = max_pos.context("no feed position")?;
    let mut complete_after = None;
    if args.complete_crl_timeout > 0 {
        let limit = Instant::now() + Duration::from_secs(args.complete_crl_timeout);
        loop {
            services.check_alive()?;
            if let Some(at) = first_complete_crl(&mut ca.db, issuer, max_pos)? {
                complete_after = Some(round3(secs(due_db, at)));
                break;
            }
            if Instant::now() > limit {
                eprintln!(
                    "  no complete CRL of {issuer} with the whole wave after {} s",
                    args.complete_crl_timeout
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        if let Some(s) = complete_after {
            eprintln!("  complete CRL of {issuer} with the whole wave: {s:.1} s after due");
        }
    }

    // Checks: database, OCSP over HTTP, CRL files.
    let certs = wave_certificates(&mut ca.db, wave)?;
    ensure!(
        certs.len() == population,
        "{} certificates on {}* cards, expected {population}",
        certs.len(),
        wave.card_prefix()
    );
    let bad_db = certs
        .iter()
        .filter(|(_, status, reason, i)| {
            status != "revoked" || reason.as_deref() != Some(wave.reason()) || i != issuer
        })
        .count();
    ensure!(
        bad_db == 0,
        "{bad_db} certificates not revoked ({}) in the database",
        wave.reason()
    );
    let inactive = if wave == Wave::ResidencyEnded {
        let keys: Vec<String> = (0..population)
            .map(|i| format!("MC{:08}", wave.sample_index(i) + 1))
            .collect();
        let mut n = 0i64;
        for chunk in keys.chunks(1000) {
            let c: i64 = with_conn!(&mut ca.db, c => identities::table
                .filter(identities::registry_key.eq_any(chunk))
                .filter(identities::status.eq("inactive"))
                .count()
                .get_result(c))?;
            n += c;
        }
        ensure!(
            n as usize == population,
            "{n} identities inactive, expected {population}"
        );
        Some(n)
    } else {
        None
    };
    let serials: Vec<String> = certs.iter().map(|(s, ..)| s.clone()).collect();
    let ocsp = check_ocsp(ca, &services.ocsp.addr, issuer, &serials, wave.crl_reason())?;
    eprintln!(
        "  OCSP over HTTP: {}/{} revoked ({}) in {} s",
        ocsp["revoked_with_reason"],
        ocsp["asked"],
        wave.reason(),
        ocsp["seconds"]
    );
    ensure!(
        ocsp["revoked_with_reason"].as_u64() == Some(population as u64),
        "OCSP answers: {ocsp}"
    );
    let complete_file = ctx.crl_dir.join(format!("{issuer}.crl"));
    let delta_file = ctx.crl_dir.join(format!("{issuer}-delta.crl"));
    let complete = crl_entries(&complete_file)?;
    let delta = if delta_file.exists() {
        crl_entries(&delta_file)?
    } else {
        Vec::new()
    };
    let wanted: BTreeSet<String> = serials.iter().map(|s| norm_hex(s)).collect();
    let listed =
        |entries: &[(String, Option<x509_cert::ext::pkix::CrlReason>)]| -> BTreeSet<String> {
            entries
                .iter()
                .filter(|(_, r)| *r == Some(wave.crl_reason()))
                .map(|(s, _)| s.clone())
                .collect()
        };
    let in_complete = listed(&complete);
    let in_delta = listed(&delta);
    let missing_complete = wanted.difference(&in_complete).count();
    let missing_both = wanted
        .iter()
        .filter(|s| !in_complete.contains(*s) && !in_delta.contains(*s))
        .count();
    let openssl = openssl_count(&complete_file);
    eprintln!(
        "  CRL files: {issuer}.crl lists {} entries (openssl crl -text: {}), {} of the wave's \
         {population}; delta lists {}",
        complete.len(),
        openssl.map_or("-".into(), |n| n.to_string()),
        in_complete.len(),
        delta.len()
    );
    ensure!(
        missing_both == 0,
        "{missing_both} certificates in neither the complete nor the delta CRL"
    );
    if complete_after.is_some() {
        ensure!(
            missing_complete == 0 && complete.len() == population,
            "the complete CRL misses {missing_complete} of the wave ({} entries)",
            complete.len()
        );
    }

    let summary = json!({
        "wave": wave.name(),
        "events": population,
        "requests_recorded": request_count,
        "revoke_requests": lines.len(),
        "certificates_revoked": certificates_changed,
        "issuer": issuer,
        "quiet_wait_seconds": round3(quiet),
        "load_average_before": load_before,
        "load_average_after": loadavg(),
        "due_at": due.to_rfc3339(),
        "due": match wave {
            Wave::ResidencyEnded => "effective instant, after the recording",
            Wave::CardLost => "reported instant = start of the recording",
        },
        "check_seconds": round3(check_seconds),
        "record_seconds": round3(record_seconds),
        "record_events_per_second": (population as f64 / record_seconds).round(),
        "seconds_from_due": {
            "executed": distribution(to_exec),
            "ocsp": distribution(to_ocsp),
            "crl": distribution(to_crl),
            "ocsp_and_crl": distribution(to_both),
        },
        "execution_span_seconds": round3(last_exec - first_exec),
        "last_published_in_both_seconds": round3(last_both),
        "complete_crl_seconds": complete_after,
        "sla_verdicts": verdicts,
        "observed_from_outside": outside,
        "checks": {
            "database_revoked": certs.len() - bad_db,
            "identities_inactive": inactive,
            "ocsp": ocsp,
            "crl_complete_entries": complete.len(),
            "crl_complete_openssl_serial_numbers": openssl,
            "crl_complete_wave_entries": in_complete.len(),
            "crl_delta_entries": delta.len(),
        },
        "services_memory": services.memory(),
    });
    Ok(summary)
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

fn run(args: &Args, backend: &str, database_url: &str, dir: &Path) -> anyhow::Result<Value> {
    let bin_dir = match &args.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("binary directory")?
            .to_path_buf(),
    };
    for b in ["ocsp-responder", "crl-publisher", "pki-scheduler"] {
        ensure!(
            bin_dir.join(b).is_file(),
            "{} missing: cargo build --release -p ocsp-responder -p crl-publisher -p scheduler",
            bin_dir.join(b).display()
        );
    }
    let data = dir.join("data");
    let crl_dir = dir.join("crl");
    std::fs::create_dir_all(&crl_dir)?;
    let config_path = dir.join("pki.toml");
    std::fs::write(
        &config_path,
        format!(
            "# lifecycle-bench ({backend})\ndata_dir = {}\ndatabase_url = {}\n\n[scheduler]\n\
             listen = \"127.0.0.1:0\"\nrequests_cron = {}\nsla_cron = {}\n",
            toml_str(&data.display().to_string()),
            toml_str(database_url),
            toml_str(&args.requests_cron),
            toml_str(&args.sla_cron),
        ),
    )?;
    let config = Config::load(&config_path)?;
    let mut ca = Ca::open(config, Arc::new(SystemClock), ACTOR)?;

    eprintln!("setup ({backend}): 2 x {} holders", args.population);
    let t = Instant::now();
    hierarchy::init(&mut ca).context("creating the CA hierarchy")?;
    let mut setup = setup_population(&mut ca, dir, args.population)?;
    setup["seconds"] = json!(round3(t.elapsed().as_secs_f64()));
    eprintln!("  setup done in {:.1} s", t.elapsed().as_secs_f64());

    let config_arg = config_path.display().to_string();
    let ocsp = Service::start(
        "ocsp-responder",
        &bin_dir.join("ocsp-responder"),
        &[
            "--config".into(),
            config_arg.clone(),
            "--listen".into(),
            "127.0.0.1:0".into(),
        ],
        &[("PKI_OCSP_PASSPHRASE", OCSP_PASSPHRASE)],
        dir,
    )?;
    let crl = Service::start(
        "crl-publisher",
        &bin_dir.join("crl-publisher"),
        &[
            "--config".into(),
            config_arg.clone(),
            "--out-dir".into(),
            crl_dir.display().to_string(),
            "run".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
        ],
        &[("PKI_CA_PASSPHRASE", CA_PASSPHRASE)],
        dir,
    )?;
    let scheduler = Service::start(
        "pki-scheduler",
        &bin_dir.join("pki-scheduler"),
        &["--config".into(), config_arg],
        &[],
        dir,
    )?;
    let mut services = Services {
        ocsp,
        crl,
        scheduler,
    };
    let certs = 2 * args.population;
    let ready = wait_ready(&mut ca, &mut services, certs)?;
    eprintln!(
        "services: ocsp-responder on {}, crl-publisher on {}, pki-scheduler on {}; ready after {ready:.1} s more",
        services.ocsp.addr, services.crl.addr, services.scheduler.addr
    );
    let services_start = json!({
        "ocsp-responder_listening_seconds": round3(services.ocsp.started_seconds),
        "crl-publisher_listening_seconds": round3(services.crl.started_seconds),
        "pki-scheduler_listening_seconds": round3(services.scheduler.started_seconds),
        "then_ready_seconds": round3(ready),
        "memory_at_ready": services.memory(),
    });

    let ctx = WaveCtx {
        args,
        crl_dir: crl_dir.clone(),
    };
    let waves: Vec<Wave> = match args.scenario {
        Which::ResidencyEnded => vec![Wave::ResidencyEnded],
        Which::CardLost => vec![Wave::CardLost],
        Which::Both => vec![Wave::ResidencyEnded, Wave::CardLost],
    };
    let mut results = Vec::new();
    for wave in waves {
        results.push(run_wave(&ctx, &mut ca, &mut services, wave)?);
    }

    let stops = json!({
        "ocsp-responder": services.ocsp.stop()?,
        "crl-publisher": services.crl.stop()?,
        "pki-scheduler": services.scheduler.stop()?,
    });
    let audit_ok = pki_store::audit::verify(&mut ca.db).is_ok();
    Ok(json!({
        "bench": "lifecycle",
        "backend": backend,
        "population_per_wave": args.population,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "requests_cron": args.requests_cron,
        "sla_cron": args.sla_cron,
        "crl_publisher": "defaults (debounce 10s / max-delay 45s; complete 60s / 5m)",
        "setup": setup,
        "services": services_start,
        "waves": results,
        "stopped": stops,
        "audit_chain_verified": audit_ok,
        "bench_process_peak_rss_mib": memory_mib("self").map(|m| m.0),
        "dir": dir.display().to_string(),
    }))
}

fn print_summary(out: &Value) {
    eprintln!(
        "\n# lifecycle-bench: {} (setup {} s, not measured)",
        out["backend"].as_str().unwrap_or("?"),
        out["setup"]["seconds"]
    );
    eprintln!(
        "| wave | events | record s | due → executed p50/p99/max | → OCSP p50/p99/max | → CRL p50/p99/max | last in both | complete CRL |"
    );
    eprintln!("| --- | ---: | ---: | --- | --- | --- | ---: | ---: |");
    let d = |v: &Value| format!("{}/{}/{}", v["p50"], v["p99"], v["max"]);
    for w in out["waves"].as_array().into_iter().flatten() {
        let s = &w["seconds_from_due"];
        eprintln!(
            "| {} | {} | {} | {} | {} | {} | {} s | {} s |",
            w["wave"].as_str().unwrap_or("?"),
            w["events"],
            w["record_seconds"],
            d(&s["executed"]),
            d(&s["ocsp"]),
            d(&s["crl"]),
            w["last_published_in_both_seconds"],
            w["complete_crl_seconds"]
        );
    }
    for w in out["waves"].as_array().into_iter().flatten() {
        eprintln!(
            "{}: {} certificates revoked; executed over {} s; load average {} before, {} after; SLA verdicts {}",
            w["wave"].as_str().unwrap_or("?"),
            w["certificates_revoked"],
            w["execution_span_seconds"],
            w["load_average_before"],
            w["load_average_after"],
            w["sla_verdicts"]
        );
    }
    let peak = |name: &str| out["stopped"][name]["memory"]["peak_rss_mib"].to_string();
    eprintln!(
        "peak RSS (MiB): ocsp-responder {}, crl-publisher {}, pki-scheduler {}, this process {}",
        peak("ocsp-responder"),
        peak("crl-publisher"),
        peak("pki-scheduler"),
        out["bench_process_peak_rss_mib"]
    );
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // This process creates the hierarchy (CA and responder keys); each
    // service gets only its own passphrase.
    std::env::set_var("PKI_CA_PASSPHRASE", CA_PASSPHRASE);
    std::env::set_var("PKI_OCSP_PASSPHRASE", OCSP_PASSPHRASE);
    let postgres = args.database.starts_with("postgres");
    let backend = if postgres { "postgresql" } else { "sqlite" };
    ensure!(
        postgres || args.database == "sqlite",
        "--database: sqlite or postgres://..."
    );
    let dir = std::path::absolute(args.dir.join(backend))?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("emptying {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    let out = if postgres {
        let schema = format!("lifecycle_bench_{}", std::process::id());
        let url = pki_store::storage::pg_fresh_schema(&args.database, &schema)
            .context("PostgreSQL for the benchmark")?;
        let out = run(&args, backend, &url, &dir);
        if args.keep_schema {
            eprintln!("schema {schema} kept");
        } else {
            pki_store::storage::pg_drop_schema(&args.database, &schema)?;
        }
        out?
    } else {
        let url = format!("sqlite://{}", dir.join("data").join("pki.sqlite").display());
        run(&args, backend, &url, &dir)?
    };
    println!("{out}");
    print_summary(&out);
    Ok(())
}
