//! The responder's own settings: command-line flags, each with an
//! environment variable (`pki.toml` has no `[ocsp]` section: ca-core's
//! `Config` refuses unknown keys). The table of flags is in the crate docs
//! and in `ocsp-responder/README.md`.

use crate::request::HashAlg;
use std::path::PathBuf;
use std::time::Duration;

/// `ocsp-responder` command line.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "ocsp-responder",
    version,
    about = "OCSP responder (RFC 6960, RFC 5019) of the national eID CA: pre-signed responses served from memory"
)]
pub struct Settings {
    /// pki.toml of the CA (database, responder key directory and passphrase
    /// source). Default: ./pki.toml when present, else built-in defaults.
    #[arg(long, env = "PKI_CONFIG")]
    pub config: Option<PathBuf>,

    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, env = "OCSP_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// nextUpdate - thisUpdate of every response (CPS 7.3.1: at most 24h).
    #[arg(long, env = "OCSP_VALIDITY", default_value = "12h", value_parser = parse_duration)]
    pub validity: Duration,

    /// Refresh a pre-signed response this long before its nextUpdate
    /// (spread over a further half of it).
    #[arg(long, env = "OCSP_REFRESH_BEFORE", default_value = "6h", value_parser = parse_duration)]
    pub refresh_before: Duration,

    /// Answer requests carrying a nonce (RFC 9654) with a freshly signed
    /// response echoing it (`off`: serve the pre-signed one).
    #[arg(long, env = "OCSP_NONCE", default_value = "on", value_parser = parse_on_off, action = clap::ArgAction::Set)]
    pub nonce: bool,

    /// Largest request accepted (POST body or decoded GET path), bytes.
    #[arg(long, env = "OCSP_MAX_REQUEST_BYTES", default_value_t = 16_384)]
    pub max_request_bytes: usize,

    /// Most CertIDs in one request (more: malformedRequest).
    #[arg(long, env = "OCSP_MAX_CERTIDS", default_value_t = 10)]
    pub max_certids: usize,

    /// CertID hash algorithms whose responses are pre-signed for every
    /// certificate; the others are signed on demand and cached.
    #[arg(long, env = "OCSP_PRESIGN", default_value = "sha1,sha256", value_delimiter = ',', value_parser = HashAlg::parse)]
    pub presign: Vec<HashAlg>,

    /// Capacity of the cache of answers signed on demand (never-issued
    /// serials, hash algorithms not pre-signed).
    #[arg(long, env = "OCSP_CACHE_ENTRIES", default_value_t = 100_000)]
    pub cache_entries: usize,

    /// How often the change feed is polled.
    #[arg(long, env = "OCSP_POLL_INTERVAL", default_value = "200ms", value_parser = parse_duration)]
    pub poll_interval: Duration,

    /// How often responses due for refresh are looked for.
    #[arg(long, env = "OCSP_SWEEP_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub sweep_interval: Duration,

    /// Time allowed to receive a request (headers and body).
    #[arg(long, env = "OCSP_REQUEST_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// HTTP worker threads (default: one per CPU).
    #[arg(long, env = "OCSP_WORKERS")]
    pub workers: Option<usize>,

    /// Serve only this CA (repeatable; default: every CA).
    #[arg(long = "authority", env = "OCSP_AUTHORITIES", value_delimiter = ',')]
    pub authorities: Vec<String>,

    /// URL path under which GET requests arrive (default: the path of
    /// `urls.ocsp` in pki.toml). Requests at the root are accepted too.
    #[arg(long, env = "OCSP_PATH_PREFIX")]
    pub path_prefix: Option<String>,

    /// Log level: error, warn, info, debug.
    #[arg(long, env = "OCSP_LOG", default_value = "info")]
    pub log_level: String,

    /// This responder's name in the publication marks (`ocsp_publications`,
    /// read by the SLA report). Default: `<hostname>-<pid>`.
    #[arg(long, env = "OCSP_INSTANCE")]
    pub instance: Option<String>,

    /// Connection caps, keep-alive, write stalls (`--http-*`, shared by the
    /// CA's HTTP services: `pki_http::HttpArgs`).
    #[command(flatten)]
    pub http: pki_http::HttpArgs,
}

impl Settings {
    /// Checks values that the parser cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.validity < Duration::from_secs(10) || self.validity > Duration::from_secs(24 * 3600)
        {
            return Err(format!(
                "--validity {:?}: must be between 10s and 24h (CPS 7.3.1: nextUpdate at most 24 hours after thisUpdate)",
                self.validity
            ));
        }
        if self.refresh_before.is_zero() || self.refresh_before >= self.validity {
            return Err(format!(
                "--refresh-before {:?} must be more than 0 and less than --validity {:?}",
                self.refresh_before, self.validity
            ));
        }
        if !(64..=1 << 20).contains(&self.max_request_bytes) {
            return Err("--max-request-bytes must be between 64 and 1048576".into());
        }
        if !(1..=1000).contains(&self.max_certids) {
            return Err("--max-certids must be between 1 and 1000".into());
        }
        if self.poll_interval < Duration::from_millis(10) {
            return Err("--poll-interval must be at least 10ms".into());
        }
        if self.sweep_interval < Duration::from_millis(100) {
            return Err("--sweep-interval must be at least 100ms".into());
        }
        if self
            .instance
            .as_ref()
            .is_some_and(|i| i.trim().is_empty() || i.len() > 200)
        {
            return Err("--instance must be 1 to 200 characters".into());
        }
        if self.workers == Some(0) {
            return Err("--workers must be at least 1".into());
        }
        Ok(())
    }

    /// Pre-signed algorithms by `HashAlg::index`.
    pub fn presign_mask(&self) -> [bool; 2] {
        let mut m = [false; 2];
        for a in &self.presign {
            m[a.index()] = true;
        }
        m
    }
}

/// `200ms`, `10s`, `5m`, `12h`, `1d`, or a number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (like 200ms, 10s, 5m, 12h, 1d)"))?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" | "min" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        "d" => Duration::from_secs(n * 86_400),
        other => return Err(format!("{other:?} is not a duration unit (ms, s, m, h, d)")),
    };
    Ok(d)
}

/// `on` / `off` (also true/false, yes/no, 1/0).
pub fn parse_on_off(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        other => Err(format!("{other:?}: expected on or off")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn durations_and_switches() {
        assert_eq!(parse_duration("200ms").unwrap(), Duration::from_millis(200));
        assert_eq!(parse_duration("12h").unwrap(), Duration::from_secs(43_200));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_on_off("off").is_ok_and(|v| !v));
        assert!(parse_on_off("maybe").is_err());
    }

    #[test]
    fn defaults_are_valid_and_flags_parse() {
        let s = Settings::try_parse_from(["ocsp-responder"]).unwrap();
        s.validate().unwrap();
        assert!(s.nonce);
        assert_eq!(s.presign_mask(), [true, true]);
        let s = Settings::try_parse_from([
            "ocsp-responder",
            "--nonce",
            "off",
            "--presign",
            "sha1",
            "--validity",
            "1h",
            "--refresh-before",
            "30m",
        ])
        .unwrap();
        s.validate().unwrap();
        assert!(!s.nonce);
        assert_eq!(s.presign_mask(), [true, false]);
        let s = Settings::try_parse_from(["ocsp-responder", "--validity", "2d"]).unwrap();
        assert!(s.validate().is_err());
    }
}
