//! The CRL files crl-publisher writes: where an issuer's complete and
//! delta CRLs are, their entries (normalised serial and reason), and the
//! `openssl crl -text` count of their serial numbers.

use anyhow::Context;
use der::Decode;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use x509_cert::ext::pkix::CrlReason;

/// A CRL's entries: (normalised serial, reason).
pub type Entries = Vec<(String, Option<CrlReason>)>;

/// The complete CRL file of `issuer` in `crl_dir`.
pub fn complete_file(crl_dir: &Path, issuer: &str) -> PathBuf {
    crl_dir.join(format!("{issuer}.crl"))
}

/// The delta CRL file of `issuer` in `crl_dir`.
pub fn delta_file(crl_dir: &Path, issuer: &str) -> PathBuf {
    crl_dir.join(format!("{issuer}-delta.crl"))
}

/// Lowercase hex without leading zeros (serials of the database, CRLs and
/// OCSP compare equal this way).
pub fn norm_hex(s: &str) -> String {
    let s = s.to_ascii_lowercase();
    let t = s.trim_start_matches('0');
    if t.is_empty() {
        "0".into()
    } else {
        t.into()
    }
}

/// The normalised serials of these entries listed with `reason`.
pub fn listed(entries: &[(String, Option<CrlReason>)], reason: CrlReason) -> BTreeSet<String> {
    entries
        .iter()
        .filter(|(_, r)| *r == Some(reason))
        .map(|(s, _)| s.clone())
        .collect()
}

/// A CRL file's entries: normalised serial -> reason.
pub fn entries(path: &Path) -> anyhow::Result<Entries> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let der = if bytes.starts_with(b"-----BEGIN") {
        der::pem::decode_vec(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            .1
    } else {
        bytes
    };
    let crl = x509_cert::crl::CertificateList::from_der(&der)?;
    Ok(crl
        .tbs_cert_list
        .revoked_certificates
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                norm_hex(&hex::encode(r.serial_number.as_bytes())),
                x509_ocsp::RevokedInfo::from(r).revocation_reason,
            )
        })
        .collect())
}

/// `openssl crl -text | grep -c 'Serial Number'`.
pub fn openssl_count(path: &Path) -> Option<usize> {
    let out = Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(path)
        .output()
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("Serial Number"))
            .count()
    })
}
