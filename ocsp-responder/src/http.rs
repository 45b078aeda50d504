//! The HTTP layer (actix-web 4): a thin adapter from HTTP to a [`Source`].
//!
//! * `POST <any path>` with the DER request as body (RFC 6960 appendix
//!   A.1); `GET <prefix>/<url-encoded base64 request>` (RFC 5019 §5), the
//!   prefix being the path of `urls.ocsp` (or `/`).
//! * Answers are `200 application/ocsp-response` — OCSP errors
//!   (`malformedRequest`, `unauthorized`, `tryLater`, `internalError`)
//!   included, as RFC 6960 wants. HTTP errors are for what is not an OCSP
//!   request at all: a GET path that is not base64 (400), a body over the
//!   limit (413, refused from `Content-Length` before reading), a request
//!   too slow to arrive (408), another method (405).
//! * GET answers that may be cached (one CertID, no nonce) carry
//!   `Cache-Control: max-age=<until nextUpdate>, public, no-transform,
//!   must-revalidate`, `Last-Modified` (thisUpdate), `Expires`
//!   (nextUpdate) and a strong `ETag`; `If-None-Match` gives 304. Other GET
//!   answers carry `Cache-Control: no-store`.
//! * `GET /health`: 200 or 503 with a JSON body; `GET /metrics`: Prometheus.
//! * No panic reaches a client: parsing and answering run under
//!   `catch_unwind` and a panic becomes `internalError`.

use crate::metrics::Metrics;
use crate::request::{self, Limits};
use crate::source::{Answer, Source};
use actix_web::http::header::{self, HeaderValue, HttpDate};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use pki_store::clock::Clock;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};
use x509_ocsp::OcspResponseStatus;

pub const OCSP_RESPONSE: &str = "application/ocsp-response";

/// What the HTTP layer needs.
pub struct AppState {
    pub source: Arc<dyn Source>,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    pub limits: Limits,
    pub max_request_bytes: usize,
    pub request_timeout: Duration,
    /// GET path prefix without slashes at either end (`eid/ocsp`), or empty.
    pub path_prefix: String,
}

/// Registers the routes on an actix `App`.
pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(state)
            .route("/health", web::get().to(health))
            .route("/metrics", web::get().to(metrics))
            .default_service(web::to(ocsp));
    }
}

async fn health(state: web::Data<AppState>) -> HttpResponse {
    let h = state.source.health();
    let body = serde_json::json!({
        "status": if h.healthy() { "ok" } else { "unhealthy" },
        "ready": h.ready,
        "database": if h.db_up { "up" } else { "down" },
        "last_sync_age_seconds": if h.last_sync > 0 { h.now - h.last_sync } else { -1 },
        "problems": h.problems,
    });
    let code = if h.healthy() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    HttpResponse::build(code)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let h = state.source.health();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render(h.now, h.last_sync, h.db_up, h.ready))
}

async fn ocsp(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> HttpResponse {
    let response = match *req.method() {
        Method::POST => post(&req, payload, &state).await,
        Method::GET | Method::HEAD => get(&req, &state),
        _ => HttpResponse::MethodNotAllowed()
            .insert_header((header::ALLOW, "GET, POST"))
            .body("OCSP requests are sent by GET or POST\n"),
    };
    state.metrics.http(response.status().as_u16());
    response
}

fn plain(code: StatusCode, text: &str) -> HttpResponse {
    HttpResponse::build(code)
        .content_type("text/plain; charset=utf-8")
        .body(format!("{text}\n"))
}

async fn post(req: &HttpRequest, payload: web::Payload, state: &AppState) -> HttpResponse {
    let max = state.max_request_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request larger than {max} bytes"),
        );
    }
    let body =
        match actix_web::rt::time::timeout(state.request_timeout, payload.to_bytes_limited(max))
            .await
        {
            Err(_) => return plain(StatusCode::REQUEST_TIMEOUT, "request body too slow"),
            Ok(Err(_)) => {
                return plain(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("request larger than {max} bytes"),
                )
            }
            Ok(Ok(Err(_))) => {
                return plain(StatusCode::BAD_REQUEST, "cannot read the request body")
            }
            Ok(Ok(Ok(bytes))) => bytes,
        };
    let answer = answer(state, &body);
    ocsp_response(answer, None, state)
}

fn get(req: &HttpRequest, state: &AppState) -> HttpResponse {
    let path = req.uri().path().trim_start_matches('/');
    let prefix = &state.path_prefix;
    let encoded = if !prefix.is_empty()
        && path.starts_with(prefix.as_str())
        && path[prefix.len()..].starts_with('/')
    {
        &path[prefix.len() + 1..]
    } else {
        path
    };
    // Base64 is 4/3 of the request, percent-encoding up to 3 times that.
    if encoded.len() > state.max_request_bytes * 4 {
        return plain(StatusCode::URI_TOO_LONG, "request too long for a GET");
    }
    let bytes = match request::decode_get_path(encoded) {
        Ok(b) => b,
        Err(e) => return plain(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    if bytes.len() > state.max_request_bytes {
        return plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request larger than {} bytes", state.max_request_bytes),
        );
    }
    let answer = answer(state, &bytes);
    ocsp_response(answer, Some(req), state)
}

/// Parses and answers, timing it; a panic becomes `internalError`.
pub fn answer(state: &AppState, bytes: &[u8]) -> Answer {
    let start = Instant::now();
    let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        match request::parse(bytes, &state.limits) {
            Ok(parsed) => state.source.answer(&parsed),
            Err(e) => {
                log::debug!("malformed request: {e}");
                Answer::error(OcspResponseStatus::MalformedRequest)
            }
        }
    }))
    .unwrap_or_else(|_| {
        log::error!("panic while answering a request: answered internalError");
        Answer::error(OcspResponseStatus::InternalError)
    });
    state.metrics.latency(start.elapsed().as_secs_f64());
    state.metrics.answer(answer.outcome, answer.production);
    answer
}

fn http_date(unix: i64) -> HttpDate {
    HttpDate::from(UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64))
}

/// The HTTP response of an answer; `get` is the request for GET (caching
/// headers and conditional requests).
fn ocsp_response(answer: Answer, get: Option<&HttpRequest>, state: &AppState) -> HttpResponse {
    let Some(req) = get else {
        return HttpResponse::Ok()
            .content_type(OCSP_RESPONSE)
            .body(answer.body);
    };
    let Some(cache) = &answer.cache else {
        return HttpResponse::Ok()
            .content_type(OCSP_RESPONSE)
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(answer.body);
    };
    let now = state.clock.now().timestamp();
    let max_age = (cache.next_update - now).max(0);
    let not_modified = req
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| {
            tag == cache.etag || tag == "*" || tag.strip_prefix("W/") == Some(cache.etag.as_str())
        });
    let mut builder = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    builder
        .insert_header((
            header::CACHE_CONTROL,
            format!("max-age={max_age}, public, no-transform, must-revalidate"),
        ))
        .insert_header((header::LAST_MODIFIED, http_date(cache.this_update)))
        .insert_header((header::EXPIRES, http_date(cache.next_update)))
        .insert_header((
            header::ETAG,
            HeaderValue::from_str(&cache.etag)
                .unwrap_or_else(|_| HeaderValue::from_static("\"-\"")),
        ));
    if not_modified {
        builder.finish()
    } else {
        builder.content_type(OCSP_RESPONSE).body(answer.body)
    }
}

/// The path of a URL (`http://host/eid/ocsp` → `eid/ocsp`), for the GET prefix.
pub fn url_path(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    path.trim_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_come_from_the_ocsp_url() {
        assert_eq!(url_path("http://pki.example.com/eid/ocsp"), "eid/ocsp");
        assert_eq!(url_path("http://127.0.0.1:8080"), "");
        assert_eq!(url_path("http://h/"), "");
    }
}
