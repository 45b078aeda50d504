//! The errors a CA operation reports. Each says what was wrong in terms an
//! operator can act on; none leaves a partial change behind (every
//! operation runs in one transaction).

use crate::domain::{CardKind, IdentityStatus, RegistrationAuthority, Usage};
use chrono::{NaiveDate, NaiveDateTime};

/// An error raised by a layer above the store (keys, profiles, certificate
/// encoding), kept whole: its crate converts it with a `From` impl.
pub type LayerError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The profiles (`ca_core::policy::PolicyError`).
    #[error(transparent)]
    Policy(LayerError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// A key store or a signature (`pki_keys::KeyError`).
    #[error(transparent)]
    Key(LayerError),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    /// Certificate encoding (`ca_core::x509::builder::BuildError`).
    #[error("certificate encoding failed: {0}")]
    Build(LayerError),
    #[error("invalid CSR: {0}")]
    Csr(#[from] pki_x509::csr::CsrError),
    #[error("cannot read {path}: {source}")]
    ReadFile {
        path: String,
        source: std::io::Error,
    },
    #[error("{file}: line {line}, field {field}: {message}")]
    Input {
        file: String,
        line: usize,
        field: String,
        message: String,
    },
    /// Several problems of one input file (each with its line and field),
    /// the first `input::MAX_REPORTED` of `total`; nothing was
    /// imported. One problem alone is [`CaError::Input`].
    #[error("{}", input_errors_text(.file, .problems, *.total))]
    InputErrors {
        file: String,
        problems: Vec<InputProblem>,
        total: usize,
    },
    #[error("{field}: {message}")]
    Field { field: String, message: String },
    #[error(
        "the CA hierarchy is already initialised (authorities: {0}); refusing to create another"
    )]
    AlreadyInitialised(String),
    #[error("the CA hierarchy is not initialised: run `pki-admin init` first")]
    NotInitialised,
    #[error(
        "the key of {0} is kept offline: only a key ceremony (`pki-admin ceremony`) signs with it"
    )]
    OfflineKey(String),
    #[error("ceremony: {0}")]
    Ceremony(String),
    #[error("unknown identity {0:?} in the registry")]
    UnknownIdentity(String),
    #[error("unknown card {0:?}")]
    UnknownCard(String),
    #[error("unknown certificate serial {0:?}")]
    UnknownCertificate(String),
    #[error("card {0:?} is already registered")]
    DuplicateCard(String),
    #[error("a {kind} card cannot belong to {holder}, registered by the {authority} ({kind} cards are registered by the {expected})")]
    CardKindMismatch {
        kind: CardKind,
        holder: String,
        authority: RegistrationAuthority,
        expected: RegistrationAuthority,
    },
    #[error(
        "holder {holder} is {status} in the registry; only active identities receive certificates"
    )]
    HolderNotActive {
        holder: String,
        status: IdentityStatus,
    },
    #[error("card {card} is not valid today ({today}): valid from {from} until {until}")]
    CardNotValid {
        card: String,
        today: NaiveDate,
        from: NaiveDate,
        until: NaiveDate,
    },
    #[error("card {card}: its certificates may only live until {limit} (3 years from the card's issue date), which has passed")]
    CardLifetimeOver { card: String, limit: NaiveDateTime },
    #[error(
        "card {card} already has a live {usage} certificate (serial {serial}); revoke it first"
    )]
    AlreadyHasLiveCertificate {
        card: String,
        usage: Usage,
        serial: String,
    },
    #[error("the {usage} profile does not accept {key} keys (accepted: {accepted})")]
    KeyNotAllowed {
        usage: Usage,
        key: &'static str,
        accepted: String,
    },
    #[error("issuing CA {ca} expires on {ca_not_after}, before the certificate would ({not_after}); the CA must be renewed first")]
    IssuerExpiresFirst {
        ca: String,
        ca_not_after: NaiveDateTime,
        not_after: NaiveDateTime,
    },
    #[error("pre-issuance lint refused the certificate: {}", .0.join("; "))]
    Lint(Vec<String>),
    #[error("certificate {serial} is {status}: cannot {change} it")]
    Transition {
        serial: String,
        status: crate::domain::CertStatus,
        change: String,
    },
    #[error("card {card}: cannot {action}: {reason}")]
    NotEligible {
        card: String,
        action: &'static str,
        reason: String,
    },
    #[error("certificate {serial} is suspended for cause {cause}; only a release for that cause ({wanted} was asked) lifts it")]
    SuspensionCause {
        serial: String,
        cause: crate::domain::SuspensionCause,
        wanted: crate::domain::SuspensionCause,
    },
    #[error(
        "the public key (SPKI SHA-256 {spki_sha256}) is blocked: {why}; the holder needs a new key"
    )]
    BlockedKey { spki_sha256: String, why: String },
    #[error("event {id}: {message}")]
    Event { id: String, message: String },
    #[error("not stored: the chunk's transaction failed ({0}); run the batch again to retry")]
    NotStored(String),
    #[error("the manifest line is a duplicate of line {0} (same card and usage)")]
    DuplicateInBatch(usize),
    /// A single `issue` that lost a race: another request stored a
    /// certificate of the same card and usage between its checks and its
    /// commit.
    #[error("card {card}: another request issued its {usage} certificate meanwhile (serial {serial}); this request issued nothing")]
    IssuedMeanwhile {
        card: String,
        usage: Usage,
        serial: String,
    },
    /// A single `issue` whose transaction failed: nothing was stored.
    #[error("not stored: the transaction failed ({0}); nothing was issued, run the command again to retry")]
    NotStoredOne(String),
}

/// One problem of an input file: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputProblem {
    pub line: usize,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for InputProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, field {}: {}",
            self.line, self.field, self.message
        )
    }
}

/// `file: N errors, nothing was imported`, then one problem a line, then
/// `and M more` when the list was cut.
fn input_errors_text(file: &str, problems: &[InputProblem], total: usize) -> String {
    let mut text = format!("{file}: {total} errors, nothing was imported:");
    for p in problems {
        text.push_str(&format!("\n  {p}"));
    }
    if total > problems.len() {
        text.push_str(&format!("\n  and {} more", total - problems.len()));
    }
    text
}

/// A query that failed is a storage error: every storage call can use `?`
/// in a function that returns [`CaError`].
impl From<diesel::result::Error> for CaError {
    fn from(e: diesel::result::Error) -> Self {
        CaError::Storage(crate::storage::StorageError::Query(e))
    }
}

pub type Result<T, E = CaError> = std::result::Result<T, E>;
