//! The routes: the files of the publication directory at the paths of the
//! URLs written into certificates — CRLs at `<path of urls.crl_base>/<file>`,
//! CA certificates at `<path of urls.ca_issuers_base>/<ca>.cer` — and at
//! `/<file>` for a mirror at the root; `/health` and Prometheus `/metrics`.
//!
//! A CRL is `application/pkix-crl` with `ETag` (CRL number and hash),
//! `Last-Modified` (thisUpdate), `Expires` (nextUpdate) and
//! `Cache-Control: public, max-age=<seconds until nextUpdate>, no-transform`;
//! a CA certificate is `application/pkix-cert` (DER) with `ETag`,
//! `Last-Modified` (the file's) and a day of `max-age`. `If-None-Match` and
//! `If-Modified-Since` give `304`. GET and HEAD only.

use crate::files::{Files, Kind, Served};
use crate::status;
use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use pki_store::clock::Clock;
use std::fmt::Write as _;
use std::sync::Arc;

/// What the handlers share.
pub struct AppState {
    pub files: Files,
    pub clock: Arc<dyn Clock>,
    /// URL path prefixes (no trailing slash) under which files are asked for.
    pub prefixes: Vec<String>,
}

/// An HTTP date (RFC 9110 IMF-fixdate).
pub fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// The path of a URL without its trailing slash (`http://h/eid/crl/` → `/eid/crl`).
pub fn url_prefix(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    path.trim_end_matches('/').to_string()
}

/// The file name a request path asks for, if under a known prefix or the root.
pub fn file_name<'a>(path: &'a str, prefixes: &[String]) -> Option<&'a str> {
    let (dir, name) = path.rsplit_once('/')?;
    (dir.is_empty() || prefixes.iter().any(|p| p == dir)).then_some(name)
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

fn plain(code: StatusCode, text: &str) -> HttpResponse {
    HttpResponse::build(code)
        .content_type("text/plain; charset=utf-8")
        .body(format!("{text}\n"))
}

async fn file(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return HttpResponse::MethodNotAllowed()
            .insert_header((header::ALLOW, "GET, HEAD"))
            .finish();
    }
    let Some(name) = file_name(req.path(), &state.prefixes) else {
        return plain(StatusCode::NOT_FOUND, "not found");
    };
    let served = match state.files.get(name) {
        Ok(Some(s)) => s,
        Ok(None) => return plain(StatusCode::NOT_FOUND, "not found"),
        Err(e) => {
            log::error!("{e}");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file");
        }
    };
    answer(&req, &served, state.clock.now())
}

fn answer(req: &HttpRequest, s: &Served, now: DateTime<Utc>) -> HttpResponse {
    let (last_modified, cache_control, expires) = match (&s.kind, &s.facts) {
        (Kind::Crl, Some(f)) => {
            let next = f.next_update.unwrap_or(now);
            let max_age = (next - now).num_seconds().max(0);
            (
                f.this_update,
                format!("public, max-age={max_age}, no-transform"),
                Some(next),
            )
        }
        _ => (
            s.modified,
            "public, max-age=86400, no-transform".to_string(),
            None,
        ),
    };
    let status = if not_modified(req, &s.etag, last_modified) {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    let mut resp = HttpResponse::build(status);
    resp.insert_header((header::ETAG, s.etag.clone()))
        .insert_header((header::LAST_MODIFIED, http_date(last_modified)))
        .insert_header((header::CACHE_CONTROL, cache_control));
    if let Some(e) = expires {
        resp.insert_header((header::EXPIRES, http_date(e)));
    }
    if status == StatusCode::NOT_MODIFIED {
        return resp.finish();
    }
    resp.content_type(s.kind.content_type())
        .body(s.body.clone())
}

async fn health(state: web::Data<AppState>) -> HttpResponse {
    let now = state.clock.now();
    let mut problems: Vec<String> = Vec::new();
    let mut files = Vec::new();
    match state.files.list() {
        Err(e) => problems.push(e.to_string()),
        Ok(list) => {
            for f in list {
                match f {
                    Err(e) => problems.push(e.to_string()),
                    Ok(s) => {
                        if let Some(facts) = &s.facts {
                            if facts.next_update.is_some_and(|n| n <= now) {
                                problems.push(format!("{}: past its nextUpdate", s.name));
                            }
                        }
                        files.push(serde_json::json!({
                            "file": s.name,
                            "number": s.facts.as_ref().and_then(|f| f.number),
                            "next_update": s.facts.as_ref().and_then(|f| f.next_update).map(|t| t.to_rfc3339()),
                        }));
                    }
                }
            }
        }
    }
    let signer = status::read(state.files.dir(), now);
    problems.extend(signer.problems.iter().cloned());
    let ok = problems.is_empty();
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "unhealthy" },
        "problems": problems,
        "files": files,
        "signer": signer.health,
    });
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
    let now = state.clock.now();
    let mut out = String::new();
    let served: Vec<Arc<Served>> = state
        .files
        .list()
        .map(|l| l.into_iter().flatten().collect())
        .unwrap_or_default();
    let gauge = |out: &mut String, name: &str, help: &str, f: &dyn Fn(&Served) -> Option<f64>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for s in &served {
            if let Some(v) = f(s) {
                let _ = writeln!(out, "{name}{{file=\"{}\"}} {v}", s.name);
            }
        }
    };
    gauge(
        &mut out,
        "crl_served_size_bytes",
        "Size of the served file.",
        &|s| Some(s.body.len() as f64),
    );
    gauge(
        &mut out,
        "crl_served_number",
        "CRL number of the served CRL.",
        &|s| s.facts.as_ref().and_then(|f| f.number).map(|n| n as f64),
    );
    gauge(
        &mut out,
        "crl_served_seconds_until_next_update",
        "Seconds until the nextUpdate of the served CRL.",
        &|s| {
            s.facts
                .as_ref()
                .and_then(|f| f.next_update)
                .map(|n| (n - now).num_seconds() as f64)
        },
    );
    let signer = status::read(state.files.dir(), now);
    let _ = writeln!(
        out,
        "# HELP crl_signer_status_age_seconds Seconds since the signer last wrote its status (-1: never)."
    );
    let _ = writeln!(out, "# TYPE crl_signer_status_age_seconds gauge");
    let _ = writeln!(
        out,
        "crl_signer_status_age_seconds {}",
        signer.age_seconds.unwrap_or(-1)
    );
    out.push_str(&signer.metrics);
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(out)
}

/// Registers the routes on an actix `App`.
pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(state)
            .route("/health", web::get().to(health))
            .route("/metrics", web::get().to(metrics))
            .default_service(web::to(file));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_known_prefixes_or_the_root() {
        let p = vec!["/eid/crl".to_string(), "/eid/ca".to_string()];
        assert_eq!(file_name("/eid/crl/a.crl", &p), Some("a.crl"));
        assert_eq!(file_name("/eid/ca/root.cer", &p), Some("root.cer"));
        assert_eq!(file_name("/a.crl", &p), Some("a.crl"));
        assert_eq!(file_name("/other/a.crl", &p), None);
        assert_eq!(url_prefix("http://h/eid/crl/"), "/eid/crl");
        assert_eq!(url_prefix("http://h"), "");
    }
}
