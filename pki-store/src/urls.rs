//! Where the PKI publishes: the CRL distribution point of each partition and
//! the issuer certificate's URL, written into certificates by the CA and
//! served at the same place by the CRL publisher.

use crate::config::Config;

/// The CRL distribution point of a partition: `<crl_base>/<ca>.crl` for
/// partition 0 (the only one by default), `<crl_base>/<ca>-p<k>.crl` for
/// the others, so a URL never changes when partitions are added.
pub fn crl_url(config: &Config, ca_name: &str, partition: u32) -> String {
    let base = config.urls.crl_base.trim_end_matches('/');
    match partition {
        0 => format!("{base}/{ca_name}.crl"),
        k => format!("{base}/{ca_name}-p{k}.crl"),
    }
}

/// `<ca_issuers_base>/<ca>.cer`
pub fn ca_issuers_url(config: &Config, ca_name: &str) -> String {
    format!(
        "{}/{ca_name}.cer",
        config.urls.ca_issuers_base.trim_end_matches('/')
    )
}

/// The CRL signer's status in the publication directory (a dot file: never
/// served, skipped by mirrors that skip dot files). `crl-publisher run`
/// rewrites it every pass: when it ran (`written_at`), how late is too late
/// (`stale_after_seconds`), its health (`ok`, `health`) and its Prometheus
/// text (`metrics`); `crl-server` reads it for `/health` and `/metrics`.
pub const SIGNER_STATUS_FILE: &str = ".signer-status.json";
