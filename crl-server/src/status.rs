//! The signer's status file (`pki_store::urls::SIGNER_STATUS_FILE`, written
//! by `crl-publisher run` every pass) as `/health` and `/metrics` use it:
//! missing, unreadable, unhealthy or older than its own
//! `stale_after_seconds` is a problem.

use chrono::{DateTime, Utc};
use std::path::Path;

/// What the server makes of the signer's status.
pub struct SignerStatus {
    pub problems: Vec<String>,
    /// The signer's own health JSON (null when unreadable).
    pub health: serde_json::Value,
    /// The signer's Prometheus text (empty when unreadable).
    pub metrics: String,
    pub age_seconds: Option<i64>,
}

/// Reads the status in `dir` as of `now`.
pub fn read(dir: &Path, now: DateTime<Utc>) -> SignerStatus {
    let path = dir.join(pki_store::urls::SIGNER_STATUS_FILE);
    let mut s = SignerStatus {
        problems: Vec::new(),
        health: serde_json::Value::Null,
        metrics: String::new(),
        age_seconds: None,
    };
    let v: serde_json::Value = match std::fs::read(&path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            s.problems
                .push(format!("signer status {}: {e}", path.display()));
            return s;
        }
    };
    s.health = v["health"].clone();
    s.metrics = v["metrics"].as_str().unwrap_or_default().to_string();
    if v["ok"] != serde_json::Value::Bool(true) {
        match v["health"]["problems"].as_array() {
            Some(p) if !p.is_empty() => s.problems.extend(
                p.iter()
                    .map(|x| format!("signer: {}", x.as_str().unwrap_or_default())),
            ),
            _ => s.problems.push("signer: unhealthy".into()),
        }
    }
    let written = v["written_at"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let stale_after = v["stale_after_seconds"].as_i64().unwrap_or(60);
    match written {
        None => s.problems.push("signer status: no written_at".into()),
        Some(t) => {
            let age = (now - t).num_seconds();
            s.age_seconds = Some(age);
            if age > stale_after {
                s.problems
                    .push(format!("signer last ran at {t} ({age} s ago)"));
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_stale_and_unhealthy_are_problems() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        assert_eq!(read(dir.path(), now).problems.len(), 1);
        let path = dir.path().join(pki_store::urls::SIGNER_STATUS_FILE);
        let write = |at: DateTime<Utc>, ok: bool| {
            let v = serde_json::json!({"written_at": at.to_rfc3339(), "stale_after_seconds": 60,
                "ok": ok, "health": {"problems": if ok { vec![] } else { vec!["x: not published"] }},
                "metrics": "m 1\n"});
            std::fs::write(&path, v.to_string()).unwrap();
        };
        write(now, true);
        let s = read(dir.path(), now);
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        assert_eq!(s.metrics, "m 1\n");
        write(now - chrono::Duration::seconds(61), true);
        assert_eq!(read(dir.path(), now).problems.len(), 1);
        write(now, false);
        assert_eq!(
            read(dir.path(), now).problems,
            vec!["signer: x: not published"]
        );
    }
}
