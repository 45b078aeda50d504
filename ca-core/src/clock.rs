//! The injected clock. Every decision that depends on "now" (validity,
//! card expiry, audit timestamps) asks a [`Clock`], so tests and the
//! `PKI_FAKE_NOW` override can move time without sleeping.

use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};

/// A source of the current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stays where it is put; tests move it forward explicitly.
#[derive(Debug, Clone)]
pub struct FixedClock(Arc<Mutex<DateTime<Utc>>>);

impl FixedClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(at)))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The clock a binary should use: the system clock, or a fixed instant from
/// the `PKI_FAKE_NOW` environment variable (RFC 3339) for end-to-end tests
/// that must see a card expire without waiting years.
pub fn from_env() -> Result<Arc<dyn Clock>, String> {
    match std::env::var("PKI_FAKE_NOW") {
        Ok(s) if !s.is_empty() => {
            let at = DateTime::parse_from_rfc3339(&s)
                .map_err(|e| format!("PKI_FAKE_NOW {s:?} is not an RFC 3339 time: {e}"))?;
            Ok(Arc::new(FixedClock::new(at.with_timezone(&Utc))))
        }
        _ => Ok(Arc::new(SystemClock)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_moves_only_when_told() {
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = FixedClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(chrono::Duration::days(2));
        assert_eq!(clock.now(), start + chrono::Duration::days(2));
    }
}
