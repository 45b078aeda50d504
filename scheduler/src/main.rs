//! `pki-scheduler`: runs the CA's lifecycle jobs on the cron schedules of
//! `[scheduler]` in pki.toml and serves `/health` and `/metrics`.
//!
//! ```text
//! pki-scheduler [--config FILE] [--listen ADDR] [--log-level L]      # the service
//! pki-scheduler run-once <requests|expiry|reminders|mail|sla|audit-checkpoint|all>    # run now, print JSON lines
//! ```
//!
//! The service prints `listening on http://ADDR` on stdout once bound
//! (`--listen 127.0.0.1:0`: any free port), logs every run on stderr, and
//! stops on SIGTERM or SIGINT: no new run starts, the runs going on finish,
//! then it exits 0. `run-once` prints one line per job,
//! `{"job":"sla","ok":true,"report":{...},"ms":12}`, and exits 1 (with the
//! error on stderr) when a job failed. The clock is
//! `pki_store::clock::from_env` (`PKI_FAKE_NOW`).

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use pki_store::config::Config;
use pki_store::storage::StorageError;
use scheduler::jobs::{Job, RunResult, Runner};
use scheduler::server::{self, AppState, DbProbe};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "pki-scheduler",
    version,
    about = "Run the eID CA's lifecycle jobs (revocation requests, expiry, reminders, mail, SLA) on their cron schedules"
)]
struct Cli {
    /// Configuration file (default: ./pki.toml when present, else built-in defaults).
    #[arg(long, global = true, env = "PKI_CONFIG")]
    config: Option<PathBuf>,
    /// Address of /health and /metrics (default: scheduler.listen in pki.toml,
    /// 127.0.0.1:8083; port 0: any free port, printed at start).
    #[arg(long, env = "SCHEDULER_LISTEN")]
    listen: Option<String>,
    /// Connection caps, keep-alive, write stalls (`pki_http::HttpArgs`).
    #[command(flatten)]
    http: pki_http::HttpArgs,
    /// Log level: error, warn, info, debug.
    #[arg(long, global = true, env = "SCHEDULER_LOG", default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run one job (or all, in order) now and print one JSON line per job.
    RunOnce {
        #[arg(value_enum)]
        job: Which,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Which {
    Requests,
    Expiry,
    Reminders,
    Mail,
    Sla,
    AuditCheckpoint,
    All,
}

impl Which {
    fn jobs(self) -> Vec<Job> {
        match self {
            Which::Requests => vec![Job::Requests],
            Which::Expiry => vec![Job::Expiry],
            Which::Reminders => vec![Job::Reminders],
            Which::Mail => vec![Job::Mail],
            Which::Sla => vec![Job::Sla],
            Which::AuditCheckpoint => vec![Job::AuditCheckpoint],
            Which::All => Job::ALL.to_vec(),
        }
    }
}

fn run_once(runner: &Runner, which: Which) -> ExitCode {
    let mut failed = false;
    for job in which.jobs() {
        let result = runner.run(job);
        println!("{}", result.json_line(job));
        let _ = std::io::stdout().flush();
        match &result {
            RunResult::Done { result: Err(e), .. } => {
                eprintln!("error: job {}: {e}", job.name());
                failed = true;
            }
            RunResult::Done { .. } => {}
            RunResult::Skipped | RunResult::Stopping => {
                eprintln!("error: job {}: did not run", job.name());
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The cron jobs, checked before anything starts.
fn cron_jobs(runner: &Arc<Runner>) -> anyhow::Result<Vec<tokio_cron_scheduler::Job>> {
    let mut out = Vec::new();
    for job in Job::ALL {
        let cron = job.cron(&runner.config().scheduler).to_string();
        let r = runner.clone();
        let scheduled = tokio_cron_scheduler::Job::new_async(cron.as_str(), move |_, _| {
            let r = r.clone();
            Box::pin(async move {
                // The run goes on in the blocking pool; the scheduler is free
                // to tick the other jobs meanwhile.
                drop(tokio::task::spawn_blocking(move || r.run(job)));
            })
        })
        .map_err(|e| {
            anyhow::anyhow!(
                "{} {cron:?} is not a six-field cron expression (seconds first, e.g. \"*/10 * * * * *\"): {e}",
                job.cron_key()
            )
        })?;
        out.push(scheduled);
    }
    Ok(out)
}

/// SIGTERM and SIGINT, caught from the start (a signal that comes while
/// starting stops the service once it is up).
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

async fn serve(
    runner: Arc<Runner>,
    listen: String,
    limits: pki_http::Limits,
) -> anyhow::Result<()> {
    let mut signals = Signals::new()?;
    let jobs = cron_jobs(&runner)?;
    let listener = std::net::TcpListener::bind(&listen)
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let mut scheduler = tokio_cron_scheduler::JobScheduler::new()
        .await
        .context("starting the job scheduler")?;
    for job in jobs {
        scheduler.add(job).await.context("adding a job")?;
    }
    let state = actix_web::web::Data::new(AppState {
        runner: runner.clone(),
        db: DbProbe::new(&runner.config().database_url()),
    });
    let server = pki_http::serve(listener, &limits, pki_http::Signals::Caller, move || {
        actix_web::App::new().configure(server::configure(state.clone()))
    })?;
    let handle = server.handle();
    let http = tokio::spawn(server);
    scheduler
        .start()
        .await
        .context("starting the job scheduler")?;
    for job in Job::ALL {
        log::info!(
            "job {}: {:?}",
            job.name(),
            job.cron(&runner.config().scheduler)
        );
    }
    println!("listening on http://{addr}");
    let _ = std::io::stdout().flush();
    log::info!("serving /health and /metrics on http://{addr}");

    let signal = signals.recv().await;
    log::info!("{signal}: stopping (no new runs)");
    runner.stop();
    if let Err(e) = scheduler.shutdown().await {
        log::warn!("stopping the job scheduler: {e}");
    }
    let mut waited = false;
    while runner.in_flight() > 0 {
        if !waited {
            log::info!(
                "waiting for {} running job(s) to finish",
                runner.in_flight()
            );
            waited = true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    handle.stop(true).await;
    match http.await {
        Ok(r) => r.context("HTTP server")?,
        Err(e) => anyhow::bail!("HTTP server task: {e}"),
    }
    log::info!("stopped");
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    pki_store::logging::init(
        &cli.log_level,
        &[
            "scheduler",
            "pki_scheduler",
            "pki_registration",
            "pki_store",
        ],
    )
    .map_err(anyhow::Error::msg)?;

    let config = Config::resolve(cli.config.as_deref())?;
    let clock = pki_store::clock::from_env().map_err(anyhow::Error::msg)?;
    let listen = cli
        .listen
        .clone()
        .unwrap_or_else(|| config.scheduler.listen.clone());
    // The scheduler never creates or migrates the schema: it refuses to
    // start on a schema that `pki-admin migrate` has not brought to the
    // version it knows. A database it cannot reach yet is not a reason to
    // stop: /health says so and every job retries on its schedule.
    match pki_store::storage::Db::connect(&config.database_url()) {
        Ok(_) => {}
        Err(
            e @ (StorageError::SchemaOlder { .. }
            | StorageError::SchemaNewer { .. }
            | StorageError::NoDatabase(_)),
        ) => {
            return Err(e).with_context(|| {
                format!(
                    "checking the database at {}",
                    pki_store::storage::redact(&config.database_url())
                )
            })
        }
        Err(e) => {
            log::warn!("the database is not reachable at start ({e}); the jobs fail until it is")
        }
    }
    // /health and /metrics take no body; two workers; 5 s per request.
    let limits = cli
        .http
        .limits(Duration::from_secs(5), 0, 2)
        .map_err(anyhow::Error::msg)?;
    let runner = Arc::new(Runner::new(config, clock));
    match cli.command {
        Some(Command::RunOnce { job }) => Ok(run_once(&runner, job)),
        None => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the runtime")?;
            rt.block_on(serve(runner, listen, limits))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    // Keys, passphrase files, the SQLite database, CRLs: the owner's alone.
    pki_store::files::restrict_umask();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
