//! The certificate policy as the code sees it: the profiles of
//! `policies/profiles.toml`, loaded, validated and resolved against the
//! configured OID arc. Issuance builds certificates only from a [`Profile`],
//! and the pre-issuance linter checks every certificate against the same one.

mod model;

pub use model::{
    AuthorityDef, Policy, PolicyError, Profile, ProfileKind, SubjectKind, Usage, ValidityRule,
};

/// The profiles shipped with this build (`policies/profiles.toml`).
pub const EMBEDDED_PROFILES: &str = include_str!("../../../policies/profiles.toml");
