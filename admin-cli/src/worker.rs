//! `pki-admin worker`: the CA-side jobs that need keys, in a process that
//! listens on no network port (CPS 6.5.1). Today one job: the OCSP
//! responder certificates (30 days) are replaced when they end within
//! `[worker] responder_rotate_within_days`, checked at start and then on
//! `[worker] responder_rotation_cron` (the rule is
//! `ca_core::hierarchy::rotate_responders`). `pki-scheduler` exports the
//! days left as `pki_ocsp_responder_days_left` for monitoring, from the
//! database, without any key.

use anyhow::Context;
use ca_core::{hierarchy, Ca};
use clap::Args;
use pki_store::clock::Clock;
use pki_store::config::Config;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

#[derive(Args)]
pub struct WorkerArgs {
    /// Run each job once and exit (for cron tables and tests).
    #[arg(long)]
    once: bool,
}

/// One check of the responder certificates.
fn rotate(ca: &mut Ca) -> anyhow::Result<()> {
    let days = ca.config.worker.responder_rotate_within_days;
    let rotations = hierarchy::rotate_responders(ca, None, Some(chrono::Duration::days(days)))
        .context("responder rotation")?;
    for r in &rotations {
        crate::commands::report_rotation(r, days);
    }
    Ok(())
}

pub fn run(
    config: Config,
    clock: Arc<dyn Clock>,
    actor: &str,
    args: &WorkerArgs,
) -> anyhow::Result<ExitCode> {
    let cron = config.worker.responder_rotation_cron.clone();
    let mut ca = Ca::open(config, clock, actor).context("opening the CA")?;
    ca.keys.require_passphrase()?;
    ca.responder_keys.require_passphrase()?;
    rotate(&mut ca)?;
    if args.once {
        return Ok(ExitCode::SUCCESS);
    }
    let ca = Arc::new(Mutex::new(ca));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let scheduler = tokio_cron_scheduler::JobScheduler::new().await?;
        let job_ca = ca.clone();
        let job = tokio_cron_scheduler::Job::new(cron.as_str(), move |_, _| {
            let mut ca = job_ca.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = rotate(&mut ca) {
                eprintln!("pki-admin worker: {e:#}");
            }
        })
        .with_context(|| format!("[worker] responder_rotation_cron {cron:?}"))?;
        scheduler.add(job).await?;
        scheduler.start().await?;
        eprintln!("pki-admin worker: responder rotation on {cron:?}; no listener");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        let mut scheduler = scheduler;
        scheduler.shutdown().await?;
        // A job in progress holds the lock: wait for it before exiting.
        drop(ca.lock().unwrap_or_else(|p| p.into_inner()));
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
