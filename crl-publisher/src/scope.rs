//! What one CRL covers: an issuer, a partition, complete or delta; and
//! where it lives. Complete CRLs are at the URLs `ca-core` writes into the
//! certificates ([`crl_url`]): `<crl_base>/<ca>.crl` for partition 0,
//! `<crl_base>/<ca>-p<k>.crl` for partition k. Their delta CRLs add
//! `-delta`: `<crl_base>/<ca>-delta.crl`, `<crl_base>/<ca>-p<k>-delta.crl`.
//! The root's list (the ARL) is `<crl_base>/<root>.crl` and has no delta.
//! File names in the publication directory are the last segment of the URL.

use pki_store::config::Config;
use pki_store::urls::crl_url;
use std::fmt;

/// Complete or delta CRL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Complete,
    Delta,
}

impl Kind {
    /// The word stored in `crls.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Complete => "complete",
            Kind::Delta => "delta",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "complete" => Some(Kind::Complete),
            "delta" => Some(Kind::Delta),
            _ => None,
        }
    }
}

/// The scope of one CRL.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    /// The issuing authority's name (`identity-card-ca`, `root`).
    pub issuer: String,
    pub partition: u32,
    pub kind: Kind,
    /// The root's authority revocation list: CA certificates only.
    pub arl: bool,
}

impl Scope {
    /// A complete CRL of an issuing CA's partition.
    pub fn complete(issuer: &str, partition: u32) -> Scope {
        Scope {
            issuer: issuer.to_string(),
            partition,
            kind: Kind::Complete,
            arl: false,
        }
    }

    /// The root's authority revocation list.
    pub fn arl(root: &str) -> Scope {
        Scope {
            issuer: root.to_string(),
            partition: 0,
            kind: Kind::Complete,
            arl: true,
        }
    }

    /// The delta CRL of the same issuer and partition.
    pub fn delta(&self) -> Scope {
        Scope {
            kind: Kind::Delta,
            ..self.clone()
        }
    }

    /// The complete CRL of the same issuer and partition.
    pub fn base(&self) -> Scope {
        Scope {
            kind: Kind::Complete,
            ..self.clone()
        }
    }

    /// The URL of the complete CRL of this partition (the distribution point
    /// written into the certificates, and the issuing distribution point of
    /// both the complete and the delta CRL).
    pub fn distribution_point(&self, config: &Config) -> String {
        crl_url(config, &self.issuer, self.partition)
    }

    /// Where this CRL is published.
    pub fn url(&self, config: &Config) -> String {
        let complete = self.distribution_point(config);
        match self.kind {
            Kind::Complete => complete,
            Kind::Delta => {
                let stem = complete.strip_suffix(".crl").unwrap_or(&complete);
                format!("{stem}-delta.crl")
            }
        }
    }

    /// The file name in the publication directory.
    pub fn file_name(&self, config: &Config) -> String {
        let url = self.url(config);
        url.rsplit('/').next().unwrap_or(&url).to_string()
    }

    /// The HTTP path of [`Scope::url`] (what a client asks for).
    pub fn http_path(&self, config: &Config) -> String {
        url_path(&self.url(config))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match (self.arl, self.kind) {
            (true, _) => "ARL",
            (false, Kind::Complete) => "complete CRL",
            (false, Kind::Delta) => "delta CRL",
        };
        write!(f, "{} {what} partition {}", self.issuer, self.partition)
    }
}

/// The path part of an `http://host[:port]/path` URL (`/` if none).
pub fn url_path(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.find('/') {
        Some(i) => rest[i..].to_string(),
        None => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_distribution_points() {
        let config = Config::default();
        let s = Scope::complete("identity-card-ca", 0);
        assert_eq!(
            s.url(&config),
            "http://pki.example.com/eid/crl/identity-card-ca.crl"
        );
        assert_eq!(
            s.delta().url(&config),
            "http://pki.example.com/eid/crl/identity-card-ca-delta.crl"
        );
        let p = Scope::complete("identity-card-ca", 3);
        assert_eq!(p.file_name(&config), "identity-card-ca-p3.crl");
        assert_eq!(
            p.delta().file_name(&config),
            "identity-card-ca-p3-delta.crl"
        );
        assert_eq!(
            p.delta().distribution_point(&config),
            "http://pki.example.com/eid/crl/identity-card-ca-p3.crl"
        );
        assert_eq!(p.http_path(&config), "/eid/crl/identity-card-ca-p3.crl");
        assert_eq!(Scope::arl("root").file_name(&config), "root.crl");
        assert_eq!(url_path("http://h:8080"), "/");
    }
}
