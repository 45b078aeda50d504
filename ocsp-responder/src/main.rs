//! `ocsp-responder`: loads pki.toml, opens the responder keys and the
//! database, loads every certificate's status, then serves OCSP over HTTP
//! while a background thread follows the change feed and keeps the
//! pre-signed responses fresh. Flags: `ocsp-responder --help` and the
//! crate docs. Prints `listening on http://ADDR` on stdout once bound.

use anyhow::Context;
use clap::Parser;
use ocsp_responder::http::{self, AppState};
use ocsp_responder::request::Limits;
use ocsp_responder::Settings;
use pki_store::config::Config;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn run(settings: Settings) -> anyhow::Result<()> {
    settings.validate().map_err(anyhow::Error::msg)?;
    pki_store::logging::init(&settings.log_level, &["ocsp_responder"])
        .map_err(anyhow::Error::msg)?;

    let config = Config::resolve(settings.config.as_deref())?;
    let clock = pki_store::clock::from_env().map_err(anyhow::Error::msg)?;
    let url = pki_store::storage::redact(&config.database_url());
    let service = ocsp_responder::start(&settings, &config, clock.clone())
        .with_context(|| format!("starting the OCSP responder on {url}"))?;
    let source = service.source.clone();

    let stop = Arc::new(AtomicBool::new(false));
    let refresher = {
        let stop = stop.clone();
        let r = service.refresher;
        std::thread::Builder::new()
            .name("ocsp-refresher".into())
            .spawn(move || r.run(stop))
            .context("starting the refresher thread")?
    };

    let prefix = settings
        .path_prefix
        .clone()
        .map(|p| p.trim_matches('/').to_string())
        .unwrap_or_else(|| http::url_path(&config.urls.ocsp));
    let state = actix_web::web::Data::new(AppState {
        source: source.clone(),
        metrics: source.metrics.clone(),
        clock,
        limits: Limits {
            max_cert_ids: settings.max_certids,
            max_nonce: 128,
        },
        max_request_bytes: settings.max_request_bytes,
        request_timeout: settings.request_timeout,
        path_prefix: prefix,
    });
    let listener = std::net::TcpListener::bind(&settings.listen)
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let workers = settings
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let limits = settings
        .http
        .limits(
            settings.request_timeout,
            settings.max_request_bytes as u64,
            workers,
        )
        .map_err(anyhow::Error::msg)?;
    let result = actix_web::rt::System::new().block_on(async move {
        let server = pki_http::serve(listener, &limits, pki_http::Signals::Server, move || {
            actix_web::App::new().configure(http::configure(state.clone()))
        })?;
        println!("listening on http://{addr}");
        let _ = std::io::stdout().flush();
        log::info!(
            "serving OCSP on http://{addr} ({workers} workers, nonce {}, presigned {:?}; at most {} connections, {} per client)",
            if settings.nonce { "on" } else { "off" },
            settings.presign,
            limits.max_connections,
            limits.max_connections_per_client,
        );
        server.await
    });
    stop.store(true, Ordering::Relaxed);
    let _ = refresher.join();
    result.context("HTTP server")?;
    log::info!("stopped");
    Ok(())
}

fn main() -> ExitCode {
    // Keys, passphrase files, the SQLite database, CRLs: the owner's alone.
    pki_store::files::restrict_umask();
    let settings = Settings::parse();
    match run(settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
