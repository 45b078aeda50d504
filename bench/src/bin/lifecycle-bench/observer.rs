//! The wave seen from outside, as a relying party sees it and independently
//! of the publication marks in the database: a sample of its certificates
//! asked to the responder over HTTP (each until it answers revoked), and
//! the CRL files (complete and delta) read whenever they change (a serial
//! counts from the modification time of the first file listing it).

use crate::crl;
use crate::ocsp::OcspProbe;
use crate::scenario::Wave;
use crate::stats::{distribution, seconds};
use ca_core::Ca;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use x509_cert::ext::pkix::CrlReason;

/// Certificates of a wave watched over OCSP while it runs.
const OCSP_SAMPLE: usize = 500;

pub struct Observer {
    due: DateTime<Utc>,
    reason: CrlReason,
    probe: OcspProbe,
    /// Sample serials not yet answered revoked.
    ocsp_waiting: Vec<String>,
    ocsp_seen: Vec<f64>,
    ocsp_errors: usize,
    crl_files: Vec<(PathBuf, Option<SystemTime>)>,
    /// Normalised serials of the wave not yet in a CRL file.
    crl_waiting: BTreeSet<String>,
    crl_seen: Vec<f64>,
}

impl Observer {
    /// Watches `serials`, the wave's certificates, due at `due`, through
    /// the responder at `ocsp_addr` and the CRL files in `crl_dir`.
    pub fn new(
        ca: &mut Ca,
        wave: Wave,
        serials: &[String],
        due: DateTime<Utc>,
        ocsp_addr: &str,
        crl_dir: &Path,
    ) -> anyhow::Result<Observer> {
        let spec = wave.spec();
        let step = (serials.len() / OCSP_SAMPLE).max(1);
        Ok(Observer {
            due,
            reason: spec.crl_reason,
            probe: OcspProbe::new(ca, ocsp_addr, spec.issuer)?,
            ocsp_waiting: serials.iter().step_by(step).cloned().collect(),
            ocsp_seen: Vec::new(),
            ocsp_errors: 0,
            crl_files: [crl::complete_file, crl::delta_file]
                .iter()
                .map(|file| (file(crl_dir, spec.issuer), None))
                .collect(),
            crl_waiting: serials.iter().map(|s| crl::norm_hex(s)).collect(),
            crl_seen: Vec::new(),
        })
    }

    /// One look: the sample certificates not yet seen revoked, and the CRL
    /// files that changed.
    pub fn observe(&mut self) {
        let now = Utc::now();
        let mut still = Vec::new();
        for serial in std::mem::take(&mut self.ocsp_waiting) {
            match self.probe.revoked(&serial) {
                Ok(Some(r)) if r == Some(self.reason) => {
                    self.ocsp_seen.push(seconds(now - self.due))
                }
                Ok(_) => still.push(serial),
                Err(_) => {
                    self.ocsp_errors += 1;
                    still.push(serial);
                }
            }
        }
        self.ocsp_waiting = still;
        for (path, seen_mtime) in &mut self.crl_files {
            let Ok(mtime) = std::fs::metadata(&*path).and_then(|m| m.modified()) else {
                continue;
            };
            if *seen_mtime == Some(mtime) {
                continue;
            }
            let Ok(entries) = crl::entries(path) else {
                continue;
            };
            *seen_mtime = Some(mtime);
            let at = seconds(DateTime::<Utc>::from(mtime) - self.due);
            for serial in crl::listed(&entries, self.reason) {
                if self.crl_waiting.remove(&serial) {
                    self.crl_seen.push(at);
                }
            }
        }
    }

    fn done(&self) -> bool {
        self.ocsp_waiting.is_empty() && self.crl_waiting.is_empty()
    }

    /// Goes on until every sample certificate is answered revoked and every
    /// certificate is in a CRL file (at most 60 s more); returns what was
    /// seen.
    pub fn finish(mut self) -> Value {
        let limit = Instant::now() + Duration::from_secs(60);
        while !self.done() && Instant::now() < limit {
            self.observe();
            std::thread::sleep(Duration::from_millis(500));
        }
        let outside = self.report();
        eprintln!(
            "  observed from outside: OCSP (HTTP, {} certificates) {}; CRL files ({} certificates) {}",
            outside["ocsp_http_sample"]["certificates"],
            outside["ocsp_http_sample"]["seconds_from_due"],
            outside["crl_files"]["certificates"],
            outside["crl_files"]["seconds_from_due"]
        );
        outside
    }

    fn report(&self) -> Value {
        json!({
            "ocsp_http_sample": {"certificates": self.ocsp_seen.len(), "not_seen": self.ocsp_waiting.len(),
                                 "errors": self.ocsp_errors,
                                 "seconds_from_due": distribution(self.ocsp_seen.clone())},
            "crl_files": {"certificates": self.crl_seen.len(), "not_seen": self.crl_waiting.len(),
                          "seconds_from_due": distribution(self.crl_seen.clone())},
        })
    }
}
