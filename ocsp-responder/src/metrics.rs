//! Prometheus metrics, kept in atomics and written in the text exposition
//! format by [`Metrics::render`]: answers by OCSP status and by how they
//! were produced, HTTP responses by code, a latency histogram, signatures
//! made, and the gauges the refresher maintains (certificates held, age of
//! the oldest pre-signed response, database reachability, feed position).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// How an answer came to be, for the `ocsp_responses_total` labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Good,
    Revoked,
    NotIssued,
    Malformed,
    Unauthorized,
    TryLater,
    InternalError,
}

impl Outcome {
    const ALL: [Outcome; 7] = [
        Outcome::Good,
        Outcome::Revoked,
        Outcome::NotIssued,
        Outcome::Malformed,
        Outcome::Unauthorized,
        Outcome::TryLater,
        Outcome::InternalError,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Good => "good",
            Outcome::Revoked => "revoked",
            Outcome::NotIssued => "not_issued",
            Outcome::Malformed => "malformed_request",
            Outcome::Unauthorized => "unauthorized",
            Outcome::TryLater => "try_later",
            Outcome::InternalError => "internal_error",
        }
    }
}

/// Where a successful answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Production {
    /// Served from memory, signed ahead of time.
    Presigned,
    /// From the bounded cache of answers signed on demand.
    Cached,
    /// Signed for this request (nonce, several CertIDs, or a cache miss).
    Signed,
    /// Not signed (an error status).
    Unsigned,
}

impl Production {
    const ALL: [Production; 4] = [
        Production::Presigned,
        Production::Cached,
        Production::Signed,
        Production::Unsigned,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Production::Presigned => "presigned",
            Production::Cached => "cached",
            Production::Signed => "signed",
            Production::Unsigned => "unsigned",
        }
    }
}

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
];

const HTTP_CODES: [u16; 8] = [200, 304, 400, 404, 405, 408, 413, 414];

#[derive(Default)]
pub struct Metrics {
    answers: [[AtomicU64; 4]; 7],
    http: [AtomicU64; 8],
    http_other: AtomicU64,
    latency_buckets: [AtomicU64; 12],
    latency_count: AtomicU64,
    latency_sum_ns: AtomicU64,
    pub signatures: AtomicU64,
    pub certificates: AtomicI64,
    pub presigned: AtomicI64,
    pub presigned_bytes: AtomicI64,
    /// thisUpdate of the oldest pre-signed response (Unix s; 0 = none).
    pub oldest_presigned: AtomicI64,
    pub refresh_queue: AtomicI64,
    pub feed_position: AtomicI64,
    pub db_errors: AtomicU64,
    pub feed_changes: AtomicU64,
}

impl Metrics {
    pub fn answer(&self, outcome: Outcome, production: Production) {
        let o = Outcome::ALL.iter().position(|x| *x == outcome).unwrap_or(0);
        let p = Production::ALL
            .iter()
            .position(|x| *x == production)
            .unwrap_or(0);
        self.answers[o][p].fetch_add(1, Ordering::Relaxed);
    }

    pub fn http(&self, code: u16) {
        match HTTP_CODES.iter().position(|c| *c == code) {
            Some(i) => self.http[i].fetch_add(1, Ordering::Relaxed),
            None => self.http_other.fetch_add(1, Ordering::Relaxed),
        };
    }

    pub fn latency(&self, seconds: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_ns
            .fetch_add((seconds * 1e9) as u64, Ordering::Relaxed);
    }

    /// The text exposition format; `now`, `last_sync`, `db_up` and `ready`
    /// come from the store.
    pub fn render(&self, now: i64, last_sync: i64, db_up: bool, ready: bool) -> String {
        let mut out = String::with_capacity(4096);
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let geti = |a: &AtomicI64| a.load(Ordering::Relaxed);
        out.push_str("# HELP ocsp_responses_total OCSP answers by status and by how they were produced.\n# TYPE ocsp_responses_total counter\n");
        for (o, outcome) in Outcome::ALL.iter().enumerate() {
            for (p, production) in Production::ALL.iter().enumerate() {
                let n = get(&self.answers[o][p]);
                let signed = matches!(
                    outcome,
                    Outcome::Good | Outcome::Revoked | Outcome::NotIssued
                );
                if n > 0 || signed == (*production != Production::Unsigned) {
                    let _ = writeln!(
                        out,
                        "ocsp_responses_total{{status=\"{}\",production=\"{}\"}} {n}",
                        outcome.label(),
                        production.label()
                    );
                }
            }
        }
        out.push_str("# HELP ocsp_http_responses_total HTTP responses by status code.\n# TYPE ocsp_http_responses_total counter\n");
        for (i, code) in HTTP_CODES.iter().enumerate() {
            let _ = writeln!(
                out,
                "ocsp_http_responses_total{{code=\"{code}\"}} {}",
                get(&self.http[i])
            );
        }
        let _ = writeln!(
            out,
            "ocsp_http_responses_total{{code=\"other\"}} {}",
            get(&self.http_other)
        );
        out.push_str("# HELP ocsp_request_duration_seconds Time to answer an OCSP request, from its bytes to the response's.\n# TYPE ocsp_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += get(&self.latency_buckets[i]);
            let _ = writeln!(
                out,
                "ocsp_request_duration_seconds_bucket{{le=\"{b}\"}} {cumulative}"
            );
        }
        let count = get(&self.latency_count);
        let _ = writeln!(
            out,
            "ocsp_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "ocsp_request_duration_seconds_sum {}",
            get(&self.latency_sum_ns) as f64 / 1e9
        );
        let _ = writeln!(out, "ocsp_request_duration_seconds_count {count}");
        let oldest = geti(&self.oldest_presigned);
        let age = if oldest > 0 { (now - oldest).max(0) } else { 0 };
        let gauges: [(&str, &str, &str, i64); 9] = [
            (
                "ocsp_signatures_total",
                "counter",
                "Responses signed (pre-signed, refreshed and on demand).",
                get(&self.signatures) as i64,
            ),
            (
                "ocsp_certificates",
                "gauge",
                "Certificates whose status is held in memory.",
                geti(&self.certificates),
            ),
            (
                "ocsp_presigned_responses",
                "gauge",
                "Pre-signed responses held in memory.",
                geti(&self.presigned),
            ),
            (
                "ocsp_presigned_bytes",
                "gauge",
                "Bytes held by pre-signed responses (without the shared responder certificates).",
                geti(&self.presigned_bytes),
            ),
            (
                "ocsp_presigned_oldest_age_seconds",
                "gauge",
                "Age (now - thisUpdate) of the oldest pre-signed response.",
                age,
            ),
            (
                "ocsp_refresh_queue",
                "gauge",
                "Responses waiting to be signed or refreshed.",
                geti(&self.refresh_queue),
            ),
            (
                "ocsp_feed_position",
                "gauge",
                "Position in the change feed (audit sequence number) applied.",
                geti(&self.feed_position),
            ),
            (
                "ocsp_database_errors_total",
                "counter",
                "Failed database polls or loads.",
                get(&self.db_errors) as i64,
            ),
            (
                "ocsp_feed_changes_total",
                "counter",
                "Certificate changes applied from the change feed.",
                get(&self.feed_changes) as i64,
            ),
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP ocsp_database_up 1 when the last database poll succeeded.\n# TYPE ocsp_database_up gauge\nocsp_database_up {}",
            u8::from(db_up)
        );
        let _ = writeln!(
            out,
            "# HELP ocsp_ready 1 once the statuses are loaded.\n# TYPE ocsp_ready gauge\nocsp_ready {}",
            u8::from(ready)
        );
        let sync_age = if last_sync > 0 { now - last_sync } else { -1 };
        let _ = writeln!(
            out,
            "# HELP ocsp_last_sync_age_seconds Seconds since the statuses were last known to match the database.\n# TYPE ocsp_last_sync_age_seconds gauge\nocsp_last_sync_age_seconds {sync_age}"
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::default();
        m.answer(Outcome::Good, Production::Presigned);
        m.answer(Outcome::Malformed, Production::Unsigned);
        m.http(200);
        m.http(413);
        m.latency(0.0002);
        m.latency(0.3);
        m.oldest_presigned.store(100, Ordering::Relaxed);
        let text = m.render(160, 150, true, true);
        assert!(text.contains("ocsp_responses_total{status=\"good\",production=\"presigned\"} 1"));
        assert!(text.contains(
            "ocsp_responses_total{status=\"malformed_request\",production=\"unsigned\"} 1"
        ));
        assert!(text.contains("ocsp_http_responses_total{code=\"413\"} 1"));
        assert!(text.contains("ocsp_request_duration_seconds_bucket{le=\"0.00025\"} 1"));
        assert!(text.contains("ocsp_request_duration_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("ocsp_presigned_oldest_age_seconds 60"));
        assert!(text.contains("ocsp_last_sync_age_seconds 10"));
    }
}
