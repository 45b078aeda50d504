//! Logging of bad clients at a bounded rate: at most N lines a minute; what
//! is dropped is counted and reported in the first line of the next minute.
//!
//! Hand-written (twenty lines) because the log crate has no rate limit and
//! a token-bucket crate (governor) would still need the count of what was
//! dropped, which is the part worth keeping. Time is monotonic
//! (`std::time::Instant`): it measures rates, never dates anything.

use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Window {
    start: Instant,
    logged: u32,
    dropped: u64,
}

/// Shared by every worker of a server.
pub struct RateLog {
    per_minute: u32,
    window: Mutex<Window>,
}

impl RateLog {
    pub fn new(per_minute: u32) -> RateLog {
        RateLog {
            per_minute,
            window: Mutex::new(Window {
                start: Instant::now(),
                logged: 0,
                dropped: 0,
            }),
        }
    }

    /// Logs `message()` at warn level unless this minute's lines are used
    /// up; false when it was only counted.
    pub fn warn(&self, message: impl FnOnce() -> String) -> bool {
        let dropped = {
            let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
            if w.start.elapsed() >= Duration::from_secs(60) {
                w.start = Instant::now();
                w.logged = 0;
            }
            if w.logged >= self.per_minute {
                w.dropped += 1;
                return false;
            }
            w.logged += 1;
            std::mem::take(&mut w.dropped)
        };
        if dropped > 0 {
            log::warn!(
                "{dropped} more such lines were not logged (at most {} a minute)",
                self.per_minute
            );
        }
        log::warn!("{}", message());
        true
    }

    /// Lines dropped in the current window so far.
    pub fn dropped(&self) -> u64 {
        self.window
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_it_does_not_log() {
        let r = RateLog::new(2);
        let logged = (0..5).filter(|_| r.warn(|| "x".into())).count();
        assert_eq!(logged, 2);
        assert_eq!(r.dropped(), 3);
    }
}
