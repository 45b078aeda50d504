//! The command line: the options of `lifecycle-bench` and which waves they
//! select.

use crate::scenario::Wave;
use clap::{Parser, ValueEnum};
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "A wave of 10,000 registry events, executed and published by the real services")]
pub struct Args {
    /// Holders per wave (one population per wave, one auth certificate each).
    #[arg(long, default_value_t = 10_000)]
    pub population: usize,
    /// `sqlite` (a file under --dir) or a PostgreSQL URL (a fresh schema is
    /// made there and dropped at the end).
    #[arg(long, default_value = "sqlite")]
    pub database: String,
    /// Which wave(s).
    #[arg(long, value_enum, default_value_t = Which::Both)]
    pub scenario: Which,
    /// Working directory (pki.toml, data, CRLs, service logs); its backend
    /// subdirectory is emptied first.
    #[arg(long, default_value = "target/lifecycle-bench")]
    pub dir: PathBuf,
    /// Where ocsp-responder, crl-publisher, crl-server and pki-scheduler are (default:
    /// this binary's directory, i.e. target/release).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// residency-ended: seconds at least between the start of the recording
    /// and the common effective instant (rounded up to a multiple of 10 s).
    #[arg(long, default_value_t = 60)]
    pub lead_seconds: i64,
    /// Events recorded per transaction (pki-admin registry events: 500).
    #[arg(long, default_value_t = 500)]
    pub record_chunk: usize,
    /// The scheduler's requests job (pki.toml scheduler.requests_cron).
    #[arg(long, default_value = "*/5 * * * * *")]
    pub requests_cron: String,
    /// The scheduler's sla job (pki.toml scheduler.sla_cron; the default
    /// of pki.toml).
    #[arg(long, default_value = "*/15 * * * * *")]
    pub sla_cron: String,
    /// Give up a wave when not all published this long after it is due.
    #[arg(long, default_value_t = 1800)]
    pub timeout_seconds: u64,
    /// Then wait at most this long for a complete CRL covering the wave
    /// (0: do not wait; the CRL check then reads the complete and delta CRLs).
    #[arg(long, default_value_t = 600)]
    pub complete_crl_timeout: u64,
    /// PostgreSQL: keep the schema at the end.
    #[arg(long)]
    pub keep_schema: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Which {
    ResidencyEnded,
    CardLost,
    Both,
}

impl Which {
    /// The waves to run, in order.
    pub fn waves(self) -> Vec<Wave> {
        match self {
            Which::ResidencyEnded => vec![Wave::ResidencyEnded],
            Which::CardLost => vec![Wave::CardLost],
            Which::Both => Wave::ALL.to_vec(),
        }
    }
}
