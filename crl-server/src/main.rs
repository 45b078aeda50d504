//! `crl-server`: serves the publication directory that `crl-publisher run`
//! (the signer) writes — the CRLs at the paths of the CRL distribution
//! points, the CA certificates at the caIssuers URLs — with `/health` and
//! `/metrics`. It opens no key (it does not even link the key store, see
//! `tests/tests/crate_boundaries.rs`), no database, and needs only read
//! access to the directory.
//!
//! ```text
//! crl-server [--config FILE] [--dir DIR] [--listen ADDR] [--workers N] [--http-* ...]
//! ```
//!
//! `pki.toml` gives the URL paths (`urls.crl_base`, `urls.ca_issuers_base`)
//! and the default directory (`<data_dir>/crl`). Prints `listening on
//! http://ADDR` on stdout once bound. Time comes from the injected clock.

mod crl_facts;
mod files;
mod http;
mod status;

use anyhow::Context;
use clap::Parser;
use pki_store::config::Config;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "crl-server",
    version,
    about = "Serve the CRLs and CA certificates of the national eID CA from the publication directory (no key, no database)"
)]
struct Cli {
    /// Configuration file (default: ./pki.toml when present, else built-in defaults).
    #[arg(long, env = "PKI_CONFIG")]
    config: Option<PathBuf>,
    /// The publication directory (default: <data_dir>/crl).
    #[arg(long, env = "CRL_OUT_DIR")]
    dir: Option<PathBuf>,
    /// Address to serve HTTP on (port 0: any free port; the address is printed).
    #[arg(long, env = "CRL_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// HTTP worker threads.
    #[arg(long, env = "CRL_HTTP_WORKERS", default_value_t = 2)]
    workers: usize,
    /// Time allowed for every request (headers) of a connection, in seconds.
    #[arg(long, env = "CRL_REQUEST_TIMEOUT", default_value_t = 5)]
    request_timeout: u64,
    /// Connection caps, keep-alive, write stalls (`pki_http::HttpArgs`).
    #[command(flatten)]
    http: pki_http::HttpArgs,
    /// Log level (error, warn, info, debug).
    #[arg(long, env = "CRL_LOG_LEVEL", default_value = "info")]
    log_level: String,
}

fn run(cli: Cli) -> anyhow::Result<()> {
    pki_store::logging::init(&cli.log_level, &["crl_server", "pki_http"])
        .map_err(anyhow::Error::msg)?;
    let config = Config::resolve(cli.config.as_deref())?;
    let clock = pki_store::clock::from_env().map_err(anyhow::Error::msg)?;
    let dir = cli
        .dir
        .clone()
        .unwrap_or_else(|| config.data_dir.join("crl"));
    // GET and HEAD only: no request body is accepted.
    let limits = cli
        .http
        .limits(
            Duration::from_secs(cli.request_timeout),
            0,
            cli.workers.max(1),
        )
        .map_err(anyhow::Error::msg)?;
    let mut prefixes = vec![
        http::url_prefix(&config.urls.crl_base),
        http::url_prefix(&config.urls.ca_issuers_base),
    ];
    prefixes.retain(|p| !p.is_empty());
    prefixes.dedup();
    let state = actix_web::web::Data::new(http::AppState {
        files: files::Files::new(&dir),
        clock,
        prefixes,
    });
    let listener = std::net::TcpListener::bind(&cli.listen)
        .with_context(|| format!("cannot listen on {}", cli.listen))?;
    let addr = listener.local_addr()?;
    actix_web::rt::System::new().block_on(async move {
        let server = pki_http::serve(listener, &limits, pki_http::Signals::Server, move || {
            actix_web::App::new().configure(http::configure(state.clone()))
        })?;
        println!("crl-server: listening on http://{addr}");
        let _ = std::io::stdout().flush();
        log::info!("serving {} on http://{addr}", dir.display());
        server.await.context("HTTP server")
    })
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
