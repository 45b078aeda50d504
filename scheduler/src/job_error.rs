//! What a job run reports when it fails ([`JobError`]) and whom the audit
//! log names for what the jobs change ([`ACTOR`]): shared by the job
//! runner (`jobs`) and the jobs in their own modules (`audit_checkpoint`).

use pki_store::CaError;

/// The actor recorded in the audit log for what the jobs change.
pub const ACTOR: &str = "pki-scheduler";

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("cannot open the CA: {0}")]
    Open(#[source] CaError),
    #[error(transparent)]
    Ca(#[from] CaError),
    /// Mail delivery reports `anyhow` errors; their chain is kept as text.
    #[error("{0}")]
    Mail(String),
    #[error("cannot write the report: {0}")]
    Report(#[from] serde_json::Error),
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error(transparent)]
    AuditKey(#[from] pki_keys::audit::AuditKeyError),
    #[error("the job panicked: {0}")]
    Panicked(String),
}
