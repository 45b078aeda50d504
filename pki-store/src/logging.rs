//! The one log set-up of the services (OCSP responder, CRL publisher,
//! scheduler): lines on stderr, `2026-11-22T14:00:00Z LEVEL message`, the
//! service's own records at the chosen level and everybody else's (actix,
//! diesel, ...) from warnings up.

use std::io::Write;

struct StderrLogger {
    level: log::LevelFilter,
    /// Module-path prefixes of the service's own records.
    own: &'static [&'static str],
}

impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= self.level
            && (self.own.iter().any(|p| m.target().starts_with(p)) || m.level() <= log::Level::Warn)
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let _ = writeln!(
                std::io::stderr(),
                "{} {:<5} {}",
                chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
                record.level(),
                record.args()
            );
        }
    }

    fn flush(&self) {}
}

/// Installs the logger at `level` (`error`, `warn`, `info` or `debug`), the
/// records of the crates named by `own` (module-path prefixes) shown at that
/// level. A second call in the same process changes nothing.
pub fn init(level: &str, own: &'static [&'static str]) -> Result<(), String> {
    let level: log::LevelFilter = level
        .parse()
        .map_err(|_| format!("--log-level {level:?}: use error, warn, info or debug"))?;
    let logger = Box::leak(Box::new(StderrLogger { level, own }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
    Ok(())
}
