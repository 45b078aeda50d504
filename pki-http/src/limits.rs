//! The limits of the hardened server ([`Limits`]) and the command-line
//! flags that set them ([`HttpArgs`], flattened into each service's own
//! command line, each flag also an environment variable `PKI_HTTP_*`).

use std::time::Duration;

/// What a client may hold and how long it may take.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Every request of a connection, the first or a later one on a
    /// kept-alive connection: from its first byte until the first byte of
    /// the answer. Also actix-http's own header timeout (first request).
    pub request_timeout: Duration,
    /// Idle time allowed between two requests of a kept-alive connection.
    pub keep_alive: Duration,
    /// A write of the answer that makes no progress for this long (a client
    /// that does not read) closes the connection.
    pub write_stall_timeout: Duration,
    /// Open connections, all clients together; over it new ones are refused.
    pub max_connections: usize,
    /// Open connections of one client address (an IPv6 client: its /64).
    pub max_connections_per_client: usize,
    /// Largest request body the service accepts: a request announcing more
    /// with `Expect: 100-continue` gets 413 and never `100 Continue`.
    pub max_body_bytes: u64,
    /// Worker threads.
    pub workers: usize,
    /// Log lines about bad clients (refused connections, malformed or slow
    /// requests) per minute; the rest are counted and summarised.
    pub log_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_timeout: Duration::from_secs(5),
            keep_alive: Duration::from_secs(5),
            write_stall_timeout: Duration::from_secs(30),
            max_connections: 4096,
            max_connections_per_client: 64,
            max_body_bytes: 0,
            workers: 2,
            log_per_minute: 20,
        }
    }
}

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("{s:?}: {e} (like 500ms, 5s, 1m)"))
}

/// The flags every HTTP service shares (`#[command(flatten)]`). The request
/// timeout, the body limit and the workers are the service's own flags.
#[derive(Debug, Clone, clap::Args)]
pub struct HttpArgs {
    /// Idle time allowed between two requests on a kept-alive connection
    /// (0: no keep-alive).
    #[arg(long = "http-keep-alive", env = "PKI_HTTP_KEEP_ALIVE", default_value = "5s", value_parser = duration)]
    pub keep_alive: Duration,
    /// A client that reads nothing of an answer for this long is disconnected.
    #[arg(long = "http-write-stall-timeout", env = "PKI_HTTP_WRITE_STALL_TIMEOUT", default_value = "30s", value_parser = duration)]
    pub write_stall_timeout: Duration,
    /// Open connections, all clients together.
    #[arg(
        long = "http-max-connections",
        env = "PKI_HTTP_MAX_CONNECTIONS",
        default_value_t = 4096
    )]
    pub max_connections: usize,
    /// Open connections of one client address (IPv6: one /64).
    #[arg(
        long = "http-max-connections-per-client",
        env = "PKI_HTTP_MAX_CONNECTIONS_PER_CLIENT",
        default_value_t = 64
    )]
    pub max_connections_per_client: usize,
    /// Log lines about bad clients per minute (the rest are counted).
    #[arg(
        long = "http-log-per-minute",
        env = "PKI_HTTP_LOG_PER_MINUTE",
        default_value_t = 20
    )]
    pub log_per_minute: u32,
}

impl HttpArgs {
    /// The limits, with the service's own request timeout, body limit and workers.
    pub fn limits(
        &self,
        request_timeout: Duration,
        max_body_bytes: u64,
        workers: usize,
    ) -> Result<Limits, String> {
        let limits = Limits {
            request_timeout,
            keep_alive: self.keep_alive,
            write_stall_timeout: self.write_stall_timeout,
            max_connections: self.max_connections,
            max_connections_per_client: self.max_connections_per_client,
            max_body_bytes,
            workers,
            log_per_minute: self.log_per_minute,
        };
        limits.validate()?;
        Ok(limits)
    }
}

impl Limits {
    /// Checks values that would make the server useless or unbounded.
    pub fn validate(&self) -> Result<(), String> {
        if self.request_timeout < Duration::from_millis(100)
            || self.request_timeout > Duration::from_secs(300)
        {
            return Err(format!(
                "request timeout {:?}: must be between 100ms and 5m",
                self.request_timeout
            ));
        }
        if self.keep_alive > Duration::from_secs(300) {
            return Err("--http-keep-alive: at most 5m".into());
        }
        if self.write_stall_timeout < Duration::from_secs(1)
            || self.write_stall_timeout > Duration::from_secs(600)
        {
            return Err("--http-write-stall-timeout: between 1s and 10m".into());
        }
        if self.max_connections == 0 || self.max_connections_per_client == 0 {
            return Err(
                "--http-max-connections and --http-max-connections-per-client must be at least 1"
                    .into(),
            );
        }
        if self.max_connections_per_client > self.max_connections {
            return Err(
                "--http-max-connections-per-client cannot exceed --http-max-connections".into(),
            );
        }
        if self.workers == 0 {
            return Err("at least one HTTP worker".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_nonsense_is_refused() {
        assert!(Limits::default().validate().is_ok());
        let mut l = Limits::default();
        l.max_connections_per_client = l.max_connections + 1;
        assert!(l.validate().is_err());
        let l = Limits {
            request_timeout: Duration::ZERO,
            ..Limits::default()
        };
        assert!(l.validate().is_err());
        assert_eq!(duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(duration("soon").is_err());
    }
}
