//! The HTTP server (actix-web): the CRLs at the paths of the URLs written
//! into certificates (`<path of crl_base>/<file>`, and `/<file>` for a
//! mirror at the root), `/health` and Prometheus `/metrics`.
//!
//! A CRL answer is `application/pkix-crl` with `ETag` (CRL number and hash),
//! `Last-Modified` (thisUpdate), `Expires` (nextUpdate) and
//! `Cache-Control: public, max-age=<seconds until nextUpdate>, no-transform`;
//! `If-None-Match` and `If-Modified-Since` give `304 Not Modified`. GET and
//! HEAD only. Bodies are served from memory, shared with the catalog.

use crate::catalog::Catalog;
use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use chrono::{DateTime, Utc};
use pki_store::clock::Clock;
use std::sync::Arc;

/// What the handlers share.
pub struct AppState {
    pub catalog: Arc<Catalog>,
    pub clock: Arc<dyn Clock>,
    /// `/health` fails when the publisher loop has not run for this long.
    pub stale_after: chrono::Duration,
}

/// An HTTP date (RFC 9110 IMF-fixdate).
pub fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn not_modified(req: &HttpRequest, etag: &str, last_modified: DateTime<Utc>) -> bool {
    if let Some(v) = req.headers().get(header::IF_NONE_MATCH) {
        let v = v.to_str().unwrap_or("");
        return v
            .split(',')
            .map(str::trim)
            .any(|t| t == "*" || t == etag || t.strip_prefix("W/") == Some(etag));
    }
    if let Some(v) = req.headers().get(header::IF_MODIFIED_SINCE) {
        if let Ok(since) = DateTime::parse_from_rfc2822(v.to_str().unwrap_or("")) {
            return last_modified <= since.with_timezone(&Utc);
        }
    }
    false
}

async fn crl(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return HttpResponse::MethodNotAllowed()
            .insert_header((header::ALLOW, "GET, HEAD"))
            .finish();
    }
    let Some(c) = state.catalog.get(req.path()) else {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("no such CRL\n");
    };
    let now = state.clock.now();
    let max_age = (c.next_update - now).num_seconds().max(0);
    let status = if not_modified(&req, &c.etag, c.this_update) {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    let mut resp = HttpResponse::build(status);
    resp.insert_header((header::ETAG, c.etag.clone()))
        .insert_header((header::LAST_MODIFIED, http_date(c.this_update)))
        .insert_header((header::EXPIRES, http_date(c.next_update)))
        .insert_header((
            header::CACHE_CONTROL,
            format!("public, max-age={max_age}, no-transform"),
        ));
    if status == StatusCode::NOT_MODIFIED {
        return resp.finish();
    }
    resp.content_type("application/pkix-crl")
        .body(c.body.clone())
}

async fn health(state: web::Data<AppState>) -> HttpResponse {
    let (ok, body) = state.catalog.health(state.clock.now(), state.stale_after);
    let mut resp = if ok {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    resp.insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("application/json")
        .body(body.to_string())
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.catalog.metrics(state.clock.now()))
}

/// Binds `listen` and returns the server (to be awaited) and the bound addresses.
pub fn server(
    listen: &str,
    state: AppState,
    workers: usize,
) -> std::io::Result<(actix_web::dev::Server, Vec<std::net::SocketAddr>)> {
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/health", web::get().to(health))
            .route("/metrics", web::get().to(metrics))
            .default_service(web::to(crl))
    })
    .workers(workers)
    .bind(listen)?;
    let addrs = server.addrs();
    Ok((server.run(), addrs))
}
