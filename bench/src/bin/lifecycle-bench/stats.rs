//! The figures of the report: rounding, time differences, distributions,
//! and what the machine and the processes use (load average, memory).

use chrono::TimeDelta;
use serde_json::{json, Value};

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A time difference in seconds, millisecond precision (`seconds(b - a)`).
pub fn seconds(d: TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

/// p50, p99 and max of a sample (nearest rank).
pub fn distribution(mut v: Vec<f64>) -> Value {
    if v.is_empty() {
        return Value::Null;
    }
    v.sort_by(f64::total_cmp);
    let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    json!({"p50": round3(rank(0.50)), "p99": round3(rank(0.99)), "max": round3(v[v.len() - 1]),
           "min": round3(v[0])})
}

/// `VmHWM` (peak resident set) and `VmRSS` of a process, in MiB.
pub fn memory_mib(pid: &str) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some((kb / 1024.0 * 10.0).round() / 10.0)
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// The load averages (1, 5, 15 minutes): the machine may be shared.
pub fn loadavg() -> Value {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let v: Vec<f64> = text
        .split_whitespace()
        .take(3)
        .filter_map(|x| x.parse().ok())
        .collect();
    json!(v)
}
