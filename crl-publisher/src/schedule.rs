//! Publisher settings, the schedule of complete CRLs, and debouncing.
//!
//! `ca-core`'s configuration denies unknown keys, so everything but
//! `[crl] partitions` is given to the `crl-publisher` binary as flags (or
//! environment variables); [`Settings`] holds them and [`Settings::validate`]
//! enforces the CPS limits:
//!
//! * end-entity CRLs: `nextUpdate` at most 24 hours after `thisUpdate`
//!   (`validity`, default 24 h), regenerated on `schedule` (a 6-field cron
//!   expression, seconds first, or an interval such as `6h`; default every six
//!   hours, never less often, and always more often than `validity`);
//! * the root's ARL: `nextUpdate` at most 365 days ahead (`arl_validity`,
//!   default 30 days), regenerated when a root-issued certificate changes or
//!   when half of its validity has passed;
//! * delta CRLs: regenerated within `debounce` (quiet time, default 10 s) of
//!   a status change and at most `max_delay` (default 45 s) after the first
//!   change of a burst, and every `delta_interval` (default 15 min) with a
//!   `nextUpdate` of `delta_validity` (default 1 h);
//! * complete CRLs after a status change: after `complete_debounce` (default
//!   60 s) of quiet, at most `complete_max_delay` (default 5 min) after the
//!   first change (the CPS's operational target).
//!
//! [`Scheduler`] is a pure state machine over those settings: given the
//! time (from the injected clock) and the scopes that changed, it says which
//! jobs are due. The service runs it on a simple polling loop.

use crate::error::{CrlError, Result};
use crate::scope::Scope;
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;

/// Parses `90s`, `15m`, `6h`, `30d` (or plain seconds).
pub fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    let bad = || {
        CrlError::Settings(format!(
            "{s:?} is not a duration (a number followed by s, m, h or d, e.g. 15m)"
        ))
    };
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(bad()),
    };
    Ok(Duration::seconds(secs))
}

/// Shows a duration the way [`parse_duration`] reads it.
pub fn show_duration(d: Duration) -> String {
    let s = d.num_seconds();
    if s % 86_400 == 0 && s > 0 {
        format!("{}d", s / 86_400)
    } else if s % 3600 == 0 && s > 0 {
        format!("{}h", s / 3600)
    } else if s % 60 == 0 && s > 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// When complete CRLs are regenerated.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// A 6-field cron expression (seconds first), UTC.
    Cron(String, Box<croner::Cron>),
    /// A fixed interval from the start of the publisher.
    Every(Duration),
}

impl Schedule {
    pub fn parse(s: &str) -> Result<Schedule> {
        if s.split_whitespace().count() >= 5 {
            let cron = croner::parser::CronParser::builder()
                .seconds(croner::parser::Seconds::Required)
                .build()
                .parse(s)
                .map_err(|e| {
                    CrlError::Settings(format!(
                        "schedule {s:?} is not a 6-field cron expression (seconds first): {e}"
                    ))
                })?;
            Ok(Schedule::Cron(s.to_string(), Box::new(cron)))
        } else {
            Ok(Schedule::Every(parse_duration(s)?))
        }
    }

    /// The first run strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Schedule::Every(d) => after + *d,
            Schedule::Cron(_, c) => c
                .find_next_occurrence(&after, false)
                .unwrap_or(after + Duration::hours(1)),
        }
    }

    /// The longest gap between two runs (over the next 400 runs for cron).
    pub fn longest_gap(&self, from: DateTime<Utc>) -> Duration {
        match self {
            Schedule::Every(d) => *d,
            Schedule::Cron(..) => {
                let mut t = self.next_after(from);
                let mut longest = Duration::zero();
                for _ in 0..400 {
                    let n = self.next_after(t);
                    longest = longest.max(n - t);
                    t = n;
                }
                longest
            }
        }
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Cron(s, _) => write!(f, "cron {s:?}"),
            Schedule::Every(d) => write!(f, "every {}", show_duration(*d)),
        }
    }
}

impl FromStr for Schedule {
    type Err = CrlError;
    fn from_str(s: &str) -> Result<Self> {
        Schedule::parse(s)
    }
}

/// Everything the publisher is told besides `pki.toml`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The publication directory.
    pub out_dir: PathBuf,
    /// nextUpdate - thisUpdate of end-entity complete CRLs (at most 24 h).
    pub validity: Duration,
    /// nextUpdate - thisUpdate of delta CRLs.
    pub delta_validity: Duration,
    /// nextUpdate - thisUpdate of the root's ARL (at most 365 days).
    pub arl_validity: Duration,
    /// Publish delta CRLs (and the freshestCRL pointer).
    pub deltas: bool,
    /// Rows per database page when streaming entries.
    pub page_size: i64,
    /// Database connections reading a large CRL's entries in parallel.
    pub read_threads: usize,
    pub schedule: Schedule,
    pub delta_interval: Duration,
    pub debounce: Duration,
    pub max_delay: Duration,
    pub complete_debounce: Duration,
    pub complete_max_delay: Duration,
    /// How often the change feed is read.
    pub poll: Duration,
    /// Test hook: abort the process after signing a CRL, before storing it.
    pub crash_after_sign: bool,
}

impl Settings {
    /// The defaults, publishing into `out_dir`.
    pub fn new(out_dir: PathBuf) -> Settings {
        Settings {
            out_dir,
            validity: Duration::hours(24),
            delta_validity: Duration::hours(1),
            arl_validity: Duration::days(30),
            deltas: true,
            page_size: 20_000,
            read_threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            schedule: Schedule::Every(Duration::hours(6)),
            delta_interval: Duration::minutes(15),
            debounce: Duration::seconds(10),
            max_delay: Duration::seconds(45),
            complete_debounce: Duration::seconds(60),
            complete_max_delay: Duration::minutes(5),
            poll: Duration::seconds(2),
            crash_after_sign: false,
        }
    }

    /// Checks the limits of the CPS (section 4.9.7) and the coherence of the timers.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<()> {
        let err = |m: String| Err(CrlError::Settings(m));
        let pos = |name: &str, d: Duration| -> Result<()> {
            if d <= Duration::zero() {
                return Err(CrlError::Settings(format!("{name} must be positive")));
            }
            Ok(())
        };
        for (name, d) in [
            ("--validity", self.validity),
            ("--delta-validity", self.delta_validity),
            ("--arl-validity", self.arl_validity),
            ("--delta-interval", self.delta_interval),
            ("--debounce", self.debounce),
            ("--max-delay", self.max_delay),
            ("--complete-debounce", self.complete_debounce),
            ("--complete-max-delay", self.complete_max_delay),
            ("--poll", self.poll),
        ] {
            pos(name, d)?;
        }
        if self.validity > Duration::hours(24) {
            return err(format!(
                "--validity {}: nextUpdate of end-entity CRLs must be at most 24 hours after thisUpdate (CPS 4.9.7)",
                show_duration(self.validity)
            ));
        }
        if self.arl_validity > Duration::days(365) {
            return err(format!(
                "--arl-validity {}: the ARL's nextUpdate must be at most 12 months ahead (CPS 4.9.7)",
                show_duration(self.arl_validity)
            ));
        }
        let gap = self.schedule.longest_gap(now);
        if gap > Duration::hours(6) {
            return err(format!(
                "--schedule {}: complete CRLs must be published at least every six hours (CPS 4.9.7); it leaves {} between runs",
                self.schedule,
                show_duration(gap)
            ));
        }
        if gap >= self.validity {
            return err(format!(
                "--schedule {} leaves {} between runs, not less than --validity {}: CRLs would expire",
                self.schedule,
                show_duration(gap),
                show_duration(self.validity)
            ));
        }
        if self.deltas && self.delta_interval >= self.delta_validity {
            return err(format!(
                "--delta-interval {} must be shorter than --delta-validity {}",
                show_duration(self.delta_interval),
                show_duration(self.delta_validity)
            ));
        }
        if self.max_delay + self.poll > Duration::seconds(60) {
            return err(format!(
                "--max-delay {} plus --poll {} must stay within one minute (a delta CRL follows a change within a minute)",
                show_duration(self.max_delay),
                show_duration(self.poll)
            ));
        }
        if self.debounce > self.max_delay || self.complete_debounce > self.complete_max_delay {
            return err("a debounce must not exceed its maximum delay".into());
        }
        if !(1..=16).contains(&self.read_threads) {
            return err("--read-threads must be between 1 and 16".into());
        }
        if !(100..=1_000_000).contains(&self.page_size) {
            return err("--page-size must be between 100 and 1000000".into());
        }
        Ok(())
    }
}

/// A job for the publisher.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Job {
    /// A new complete CRL (then its delta, if deltas are on).
    Complete(Scope),
    /// A new delta CRL of a complete scope.
    Delta(Scope),
}

/// Changes of one scope not yet published: when the first change after the
/// last delta (and the last complete CRL) was seen, and the latest change.
#[derive(Debug, Clone)]
struct Dirty {
    delta_since: Option<DateTime<Utc>>,
    complete_since: Option<DateTime<Utc>>,
    last: DateTime<Utc>,
}

/// Decides what is due, from the time and the changes seen.
#[derive(Debug, Clone)]
pub struct Scheduler {
    settings: Settings,
    next_complete: DateTime<Utc>,
    next_delta: DateTime<Utc>,
    dirty: BTreeMap<Scope, Dirty>,
}

impl Scheduler {
    /// A scheduler whose first runs come after `now` (the service publishes
    /// everything when it starts).
    pub fn new(settings: &Settings, now: DateTime<Utc>) -> Scheduler {
        Scheduler {
            next_complete: settings.schedule.next_after(now),
            next_delta: now + settings.delta_interval,
            settings: settings.clone(),
            dirty: BTreeMap::new(),
        }
    }

    pub fn next_complete(&self) -> DateTime<Utc> {
        self.next_complete
    }

    /// A status change in a (complete) scope, seen at `at`.
    pub fn mark(&mut self, scope: &Scope, at: DateTime<Utc>) {
        let deltas = self.settings.deltas && !scope.arl;
        let d = self.dirty.entry(scope.base()).or_insert(Dirty {
            delta_since: None,
            complete_since: None,
            last: at,
        });
        d.last = at;
        if deltas {
            d.delta_since.get_or_insert(at);
        }
        d.complete_since.get_or_insert(at);
    }

    /// The jobs due at `now` over `scopes` (complete scopes); marks them done.
    pub fn due(&mut self, now: DateTime<Utc>, scopes: &[Scope]) -> Vec<Job> {
        let mut jobs = Vec::new();
        let all_complete = now >= self.next_complete;
        if all_complete {
            while self.next_complete <= now {
                self.next_complete = self
                    .settings
                    .schedule
                    .next_after(self.next_complete.max(now));
            }
        }
        let all_delta = self.settings.deltas && now >= self.next_delta;
        if all_delta {
            self.next_delta = now + self.settings.delta_interval;
        }
        for scope in scopes {
            let d = self.dirty.get_mut(scope);
            let (complete_due, delta_due) = match d {
                Some(d) => {
                    let quiet = now - d.last;
                    let c = d.complete_since.is_some_and(|first| {
                        quiet >= self.settings.complete_debounce
                            || now - first >= self.settings.complete_max_delay
                    });
                    let delta = d.delta_since.is_some_and(|first| {
                        quiet >= self.settings.debounce || now - first >= self.settings.max_delay
                    });
                    (c, delta)
                }
                None => (false, false),
            };
            // The scheduled run covers the end-entity CRLs; the ARL is
            // refreshed by the service when half its validity has passed.
            if complete_due || (all_complete && !scope.arl) {
                jobs.push(Job::Complete(scope.clone()));
                // A complete CRL is followed by its delta and covers every
                // change seen so far.
                self.dirty.remove(scope);
            } else if delta_due || (all_delta && !scope.arl) {
                jobs.push(Job::Delta(scope.clone()));
                if let Some(d) = self.dirty.get_mut(scope) {
                    d.delta_since = None;
                }
            }
        }
        jobs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap() + Duration::seconds(s)
    }

    #[test]
    fn durations_and_schedules_parse() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::seconds(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::minutes(15));
        assert_eq!(parse_duration("6h").unwrap(), Duration::hours(6));
        assert_eq!(parse_duration("30d").unwrap(), Duration::days(30));
        assert_eq!(parse_duration("5").unwrap(), Duration::seconds(5));
        assert!(parse_duration("5w").is_err());
        assert_eq!(show_duration(Duration::hours(6)), "6h");
        let cron = Schedule::parse("0 0 */6 * * *").unwrap();
        assert_eq!(cron.next_after(at(0)), at(6 * 3600));
        assert_eq!(cron.longest_gap(at(0)), Duration::hours(6));
        assert!(Schedule::parse("0 0 * *").is_err());
        assert!(Schedule::parse("61 * * * * *").is_err());
    }

    #[test]
    fn settings_enforce_the_cps() {
        let mut s = Settings::new("out".into());
        s.validate(at(0)).unwrap();
        s.validity = Duration::hours(25);
        assert!(s.validate(at(0)).is_err());
        s.validity = Duration::hours(24);
        s.schedule = Schedule::parse("0 0 0 * * *").unwrap();
        assert!(s.validate(at(0)).is_err(), "daily is longer than six hours");
        s.schedule = Schedule::Every(Duration::hours(6));
        s.validity = Duration::hours(6);
        assert!(s.validate(at(0)).is_err(), "CRLs would expire");
        s.validity = Duration::hours(24);
        s.max_delay = Duration::seconds(59);
        assert!(s.validate(at(0)).is_err(), "delta within a minute");
    }

    #[test]
    fn changes_are_debounced_per_scope() {
        let settings = Settings::new("out".into());
        let mut sch = Scheduler::new(&settings, at(0));
        let p0 = Scope::complete("ca", 0);
        let p1 = Scope::complete("ca", 1);
        let scopes = vec![p0.clone(), p1.clone()];
        assert!(sch.due(at(1), &scopes).is_empty());
        sch.mark(&p1, at(2));
        assert!(
            sch.due(at(5), &scopes).is_empty(),
            "still within the debounce"
        );
        sch.mark(&p1, at(8));
        assert_eq!(sch.due(at(18), &scopes), vec![Job::Delta(p1.clone())]);
        assert!(sch.due(at(20), &scopes).is_empty(), "the delta is done");
        // Changes that never stop: the maximum delay wins.
        let mut sch = Scheduler::new(&settings, at(0));
        for s in 0..100 {
            sch.mark(&p0, at(s));
            let jobs = sch.due(at(s), &scopes);
            if s == 45 || s == 91 {
                assert_eq!(jobs, vec![Job::Delta(p0.clone())], "at {s}");
            } else {
                assert!(jobs.is_empty(), "at {s}: {jobs:?}");
            }
        }
        // The complete CRL of the touched partition only, after its debounce.
        let mut sch = Scheduler::new(&settings, at(0));
        sch.mark(&p0, at(10));
        assert_eq!(sch.due(at(20), &scopes), vec![Job::Delta(p0.clone())]);
        assert_eq!(sch.due(at(70), &scopes), vec![Job::Complete(p0.clone())]);
        assert!(sch.due(at(80), &scopes).is_empty());
    }

    #[test]
    fn the_schedule_covers_every_end_entity_scope() {
        let settings = Settings::new("out".into());
        let mut sch = Scheduler::new(&settings, at(0));
        let arl = Scope::arl("root");
        let p0 = Scope::complete("ca", 0);
        let scopes = vec![arl.clone(), p0.clone()];
        assert_eq!(
            sch.due(at(15 * 60), &scopes),
            vec![Job::Delta(p0.clone())],
            "deltas every 15 minutes, none for the ARL"
        );
        assert_eq!(
            sch.due(at(6 * 3600), &scopes),
            vec![Job::Complete(p0.clone())]
        );
        assert_eq!(sch.next_complete(), at(12 * 3600));
        sch.mark(&arl, at(6 * 3600 + 1));
        assert_eq!(
            sch.due(at(6 * 3600 + 62), &scopes),
            vec![Job::Complete(arl.clone())]
        );
    }
}
