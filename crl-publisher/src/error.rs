//! Errors of the CRL publisher library.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CrlError {
    #[error(transparent)]
    Ca(#[from] pki_store::CaError),
    #[error(transparent)]
    Storage(#[from] pki_store::storage::StorageError),
    #[error("encoding error: {0}")]
    Der(#[from] der::Error),
    #[error(transparent)]
    Key(#[from] pki_keys::KeyError),
    #[error(transparent)]
    Time(#[from] pki_x509::time::TimeError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("certificate {serial}: {message}")]
    BadRow { serial: String, message: String },
    #[error("no authority named {0:?}")]
    UnknownAuthority(String),
    #[error("malformed CRL{}: {message}", .what.as_deref().map(|w| format!(" {w}")).unwrap_or_default())]
    Malformed {
        what: Option<String>,
        message: String,
    },
    #[error("the CRL signature does not verify with the key of {issuer}")]
    BadSignature { issuer: String },
    #[error("{0}")]
    Settings(String),
    #[error("{0}")]
    Http(String),
}

pub type Result<T, E = CrlError> = std::result::Result<T, E>;

impl CrlError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CrlError::Io {
            what,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn malformed(message: impl Into<String>) -> Self {
        CrlError::Malformed {
            what: None,
            message: message.into(),
        }
    }
}

impl From<diesel::result::Error> for CrlError {
    fn from(e: diesel::result::Error) -> Self {
        CrlError::Storage(e.into())
    }
}
