//! Parsing and validation of the profiles file into resolved, typed rules.

use const_oid::ObjectIdentifier as Oid;
pub use pki_store::domain::Usage;
use pki_store::domain::{CardKind, RegistrationAuthority};
use pki_x509::{KeyAlgorithm, KeyUsageBit, QcStatement};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("profiles file is not valid TOML: {0}")]
    Parse(String),
    #[error("profile {profile}: {message}")]
    Profile { profile: String, message: String },
    #[error("authority {authority}: {message}")]
    Authority { authority: String, message: String },
    #[error("no end-entity profile for usage {0}")]
    NoProfileForUsage(Usage),
    #[error("no issuing CA serves {0} cards")]
    NoAuthorityForCardKind(CardKind),
    #[error("unknown profile {0}")]
    UnknownProfile(String),
}

/// What a profile certifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProfileKind {
    RootCa,
    IssuingCa,
    OcspResponder,
    EndEntity,
}

impl ProfileKind {
    pub fn is_ca(self) -> bool {
        matches!(self, ProfileKind::RootCa | ProfileKind::IssuingCa)
    }
}

/// How a profile's subject name is formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum SubjectKind {
    /// C, O, CN of the authority.
    #[default]
    Authority,
    /// C, O, CN "<CA name> OCSP Responder".
    Responder,
    /// ETSI EN 319 412-2: C, surname, givenName, serialNumber, CN.
    NaturalPerson,
}

/// How long a certificate lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidityRule {
    /// A fixed number of days from issuance.
    Days(u32),
    /// Until min(card issue date + 3 years, card expiry).
    Card,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    authorities: BTreeMap<String, RawAuthority>,
    profiles: BTreeMap<String, RawProfile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthority {
    profile: String,
    parent: Option<String>,
    common_name: String,
    card_kind: Option<CardKind>,
    registration_authority: Option<RegistrationAuthority>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    kind: ProfileKind,
    usage: Option<Usage>,
    #[serde(default)]
    description: String,
    keys: Vec<KeyAlgorithm>,
    validity: String,
    key_usage: Vec<KeyUsageBit>,
    #[serde(default)]
    extended_key_usage: Vec<String>,
    path_length: Option<u8>,
    #[serde(default)]
    ocsp_no_check: bool,
    policies: Vec<String>,
    #[serde(default)]
    qc_statements: Vec<QcStatement>,
    crl_distribution_point: bool,
    authority_info_access: bool,
    #[serde(default)]
    subject: SubjectKind,
}

/// One CA of the hierarchy as the policy defines it.
#[derive(Debug, Clone)]
pub struct AuthorityDef {
    pub name: String,
    pub profile: String,
    pub parent: Option<String>,
    pub common_name: String,
    pub card_kind: Option<CardKind>,
    pub registration_authority: Option<RegistrationAuthority>,
}

/// A resolved certificate profile: every rule the builder follows and the
/// linter checks.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub kind: ProfileKind,
    pub usage: Option<Usage>,
    pub description: String,
    pub keys: Vec<KeyAlgorithm>,
    pub validity: ValidityRule,
    pub key_usage: Vec<KeyUsageBit>,
    pub extended_key_usage: Vec<Oid>,
    pub path_length: Option<u8>,
    pub ocsp_no_check: bool,
    pub policies: Vec<Oid>,
    pub qc_statements: Vec<QcStatement>,
    pub crl_distribution_point: bool,
    pub authority_info_access: bool,
    pub subject: SubjectKind,
}

/// The whole policy: the hierarchy and the profiles.
#[derive(Debug, Clone)]
pub struct Policy {
    authorities: Vec<AuthorityDef>,
    profiles: BTreeMap<String, Profile>,
}

fn profile_err(profile: &str, message: impl Into<String>) -> PolicyError {
    PolicyError::Profile {
        profile: profile.to_string(),
        message: message.into(),
    }
}

fn authority_err(authority: &str, message: impl Into<String>) -> PolicyError {
    PolicyError::Authority {
        authority: authority.to_string(),
        message: message.into(),
    }
}

fn parse_validity(profile: &str, text: &str) -> Result<ValidityRule, PolicyError> {
    if text == "card" {
        return Ok(ValidityRule::Card);
    }
    text.strip_prefix("days:")
        .and_then(|d| d.parse::<u32>().ok())
        .filter(|d| *d > 0 && *d <= 30 * 366)
        .map(ValidityRule::Days)
        .ok_or_else(|| {
            profile_err(
                profile,
                format!("validity {text:?} is not \"card\" or \"days:N\""),
            )
        })
}

fn resolve_oid(profile: &str, arc: &str, text: &str) -> Result<Oid, PolicyError> {
    let full = if text.starts_with('.') {
        format!("{arc}{text}")
    } else {
        text.to_string()
    };
    Oid::new(&full).map_err(|e| profile_err(profile, format!("{full:?} is not an OID: {e}")))
}

impl Policy {
    /// Parses a profiles file, resolving relative policy OIDs under `arc`.
    pub fn from_toml(text: &str, arc: &str) -> Result<Self, PolicyError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| PolicyError::Parse(e.to_string()))?;
        let mut profiles = BTreeMap::new();
        for (name, p) in raw.profiles {
            let profile = Self::resolve_profile(&name, p, arc)?;
            profiles.insert(name, profile);
        }
        let authorities = raw
            .authorities
            .into_iter()
            .map(|(name, a)| AuthorityDef {
                name,
                profile: a.profile,
                parent: a.parent,
                common_name: a.common_name,
                card_kind: a.card_kind,
                registration_authority: a.registration_authority,
            })
            .collect();
        let policy = Policy {
            authorities,
            profiles,
        };
        policy.check_consistency()?;
        Ok(policy)
    }

    fn resolve_profile(name: &str, p: RawProfile, arc: &str) -> Result<Profile, PolicyError> {
        if p.keys.is_empty() {
            return Err(profile_err(name, "no key algorithm is allowed"));
        }
        if p.key_usage.is_empty() {
            return Err(profile_err(name, "key_usage is empty"));
        }
        let validity = parse_validity(name, &p.validity)?;
        let is_ca = p.kind.is_ca();
        if is_ca != p.path_length.is_some() {
            return Err(profile_err(
                name,
                "path_length is required for CAs and only for CAs",
            ));
        }
        if (p.kind == ProfileKind::EndEntity) != p.usage.is_some() {
            return Err(profile_err(
                name,
                "usage is required for end-entity profiles and only for them",
            ));
        }
        if validity == ValidityRule::Card && p.kind != ProfileKind::EndEntity {
            return Err(profile_err(
                name,
                "only end-entity profiles follow the card's validity",
            ));
        }
        if p.kind == ProfileKind::EndEntity && p.subject != SubjectKind::NaturalPerson {
            return Err(profile_err(
                name,
                "end-entity profiles certify natural persons",
            ));
        }
        let ca_bits = p
            .key_usage
            .iter()
            .any(|k| matches!(k, KeyUsageBit::KeyCertSign | KeyUsageBit::CRLSign));
        if ca_bits != is_ca {
            return Err(profile_err(
                name,
                "keyCertSign/cRLSign belong to CA profiles only",
            ));
        }
        let policies = p
            .policies
            .iter()
            .map(|o| resolve_oid(name, arc, o))
            .collect::<Result<Vec<_>, _>>()?;
        let extended_key_usage = p
            .extended_key_usage
            .iter()
            .map(|o| resolve_oid(name, arc, o))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Profile {
            name: name.to_string(),
            kind: p.kind,
            usage: p.usage,
            description: p.description,
            keys: p.keys,
            validity,
            key_usage: p.key_usage,
            extended_key_usage,
            path_length: p.path_length,
            ocsp_no_check: p.ocsp_no_check,
            policies,
            qc_statements: p.qc_statements,
            crl_distribution_point: p.crl_distribution_point,
            authority_info_access: p.authority_info_access,
            subject: p.subject,
        })
    }

    fn check_consistency(&self) -> Result<(), PolicyError> {
        let roots: Vec<_> = self
            .authorities
            .iter()
            .filter(|a| a.parent.is_none())
            .collect();
        if roots.len() != 1 {
            return Err(PolicyError::Parse(format!(
                "exactly one authority without parent (the root) is required, found {}",
                roots.len()
            )));
        }
        for a in &self.authorities {
            let profile = self
                .profiles
                .get(&a.profile)
                .ok_or_else(|| authority_err(&a.name, format!("unknown profile {}", a.profile)))?;
            let expected = if a.parent.is_none() {
                ProfileKind::RootCa
            } else {
                ProfileKind::IssuingCa
            };
            if profile.kind != expected {
                return Err(authority_err(
                    &a.name,
                    format!("profile {} is not a {expected:?}", a.profile),
                ));
            }
            if let Some(parent) = &a.parent {
                if self.authority(parent).is_none_or(|p| p.parent.is_some()) {
                    return Err(authority_err(&a.name, "parent must be the root authority"));
                }
                let kind = a.card_kind.ok_or_else(|| {
                    authority_err(&a.name, "an issuing CA must name its card_kind")
                })?;
                if a.registration_authority != Some(kind.authority()) {
                    return Err(authority_err(
                        &a.name,
                        format!("{kind} cards are registered by {}", kind.authority()),
                    ));
                }
            }
        }
        for kind in CardKind::ALL {
            let n = self
                .authorities
                .iter()
                .filter(|a| a.card_kind == Some(*kind))
                .count();
            if n > 1 {
                return Err(PolicyError::Parse(format!(
                    "{n} issuing CAs serve {kind} cards; one must"
                )));
            }
        }
        for usage in Usage::ALL {
            let n = self
                .profiles
                .values()
                .filter(|p| p.usage == Some(*usage))
                .count();
            if n > 1 {
                return Err(PolicyError::Parse(format!(
                    "{n} profiles claim usage {usage}"
                )));
            }
        }
        let responders = self
            .profiles
            .values()
            .filter(|p| p.kind == ProfileKind::OcspResponder)
            .count();
        if responders != 1 {
            return Err(PolicyError::Parse(
                "exactly one ocsp-responder profile is required".into(),
            ));
        }
        Ok(())
    }

    /// The authorities, the root first.
    pub fn authorities(&self) -> Vec<&AuthorityDef> {
        let mut all: Vec<&AuthorityDef> = self.authorities.iter().collect();
        all.sort_by_key(|a| (a.parent.is_some(), a.name.clone()));
        all
    }

    pub fn authority(&self, name: &str) -> Option<&AuthorityDef> {
        self.authorities.iter().find(|a| a.name == name)
    }

    pub fn profile(&self, name: &str) -> Result<&Profile, PolicyError> {
        self.profiles
            .get(name)
            .ok_or_else(|| PolicyError::UnknownProfile(name.to_string()))
    }

    pub fn profile_for_usage(&self, usage: Usage) -> Result<&Profile, PolicyError> {
        self.profiles
            .values()
            .find(|p| p.usage == Some(usage))
            .ok_or(PolicyError::NoProfileForUsage(usage))
    }

    pub fn responder_profile(&self) -> &Profile {
        self.profiles
            .values()
            .find(|p| p.kind == ProfileKind::OcspResponder)
            .expect("checked at load: exactly one responder profile")
    }

    /// The issuing CA that serves a kind of card.
    pub fn authority_for_card_kind(&self, kind: CardKind) -> Result<&AuthorityDef, PolicyError> {
        self.authorities
            .iter()
            .find(|a| a.card_kind == Some(kind))
            .ok_or(PolicyError::NoAuthorityForCardKind(kind))
    }
}

impl From<PolicyError> for pki_store::CaError {
    fn from(e: PolicyError) -> Self {
        pki_store::CaError::Policy(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::EMBEDDED_PROFILES;

    const ARC: &str = "1.3.6.1.4.1.32473";

    #[test]
    fn embedded_profiles_load_and_resolve_under_the_arc() {
        let policy = Policy::from_toml(EMBEDDED_PROFILES, ARC).unwrap();
        let sign = policy.profile_for_usage(Usage::Sign).unwrap();
        assert_eq!(sign.key_usage, vec![KeyUsageBit::NonRepudiation]);
        assert_eq!(sign.policies[0].to_string(), "1.3.6.1.4.1.32473.1.2");
        assert_eq!(sign.validity, ValidityRule::Card);
        assert_eq!(policy.authorities()[0].name, "root");
        assert_eq!(
            policy
                .authority_for_card_kind(CardKind::Residence)
                .unwrap()
                .name,
            "residence-card-ca"
        );
    }

    #[test]
    fn another_arc_moves_our_policies_only() {
        let policy = Policy::from_toml(EMBEDDED_PROFILES, "2.16.492.1").unwrap();
        let auth = policy.profile_for_usage(Usage::Auth).unwrap();
        assert_eq!(auth.policies[0].to_string(), "2.16.492.1.1.1");
        assert_eq!(auth.policies[1].to_string(), "0.4.0.2042.1.2");
    }

    #[test]
    fn inconsistent_profiles_are_refused() {
        let bad =
            EMBEDDED_PROFILES.replace("card_kind = \"residence\"", "card_kind = \"identity\"");
        assert!(Policy::from_toml(&bad, ARC).is_err());
        let bad = EMBEDDED_PROFILES.replace(
            "key_usage = [\"nonRepudiation\"]",
            "key_usage = [\"keyCertSign\"]",
        );
        assert!(Policy::from_toml(&bad, ARC).is_err());
        let bad = EMBEDDED_PROFILES.replace("validity = \"days:30\"", "validity = \"forever\"");
        assert!(Policy::from_toml(&bad, ARC).is_err());
    }
}
