//! The publication directory as served: a file is looked up by name on
//! every request (open, then `fstat` of the opened file) and read again
//! only when it changed (device, inode, size, modification time). The
//! signer replaces files by `rename`, so an opened file is always one whole
//! version, never a half-written one.

use crate::crl_facts::{self, CrlFacts};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// The largest file served (a CRL of some millions of entries).
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Why a file cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path} is not a CRL: {source}")]
    NotCrl { path: PathBuf, source: der::Error },
}

/// What a served name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Crl,
    CaCertificate,
}

impl Kind {
    pub fn content_type(self) -> &'static str {
        match self {
            Kind::Crl => "application/pkix-crl",
            Kind::CaCertificate => "application/pkix-cert",
        }
    }
}

/// The kind of a name the server may serve: `<letters, digits, - _ .>.crl`
/// or `.cer`, not starting with a dot (temporary and status files do).
pub fn kind_of(name: &str) -> Option<Kind> {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 200
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !plain {
        return None;
    }
    if name.ends_with(".crl") {
        Some(Kind::Crl)
    } else if name.ends_with(".cer") {
        Some(Kind::CaCertificate)
    } else {
        None
    }
}

/// One file as served.
#[derive(Debug)]
pub struct Served {
    pub name: String,
    pub kind: Kind,
    pub body: bytes::Bytes,
    /// Quoted: `"<CRL number>-<sha256 prefix>"`, or `"<sha256 prefix>"`.
    pub etag: String,
    /// CRLs only.
    pub facts: Option<CrlFacts>,
    pub modified: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl FileId {
    fn of(m: &std::fs::Metadata) -> FileId {
        FileId {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
        }
    }
}

/// The directory and what was read of it.
pub struct Files {
    dir: PathBuf,
    cache: RwLock<HashMap<String, (FileId, Arc<Served>)>>,
}

impl Files {
    pub fn new(dir: &Path) -> Files {
        Files {
            dir: dir.to_path_buf(),
            cache: RwLock::new(HashMap::new()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current version of `name` (None: not a servable name, or no such file).
    pub fn get(&self, name: &str) -> Result<Option<Arc<Served>>, FileError> {
        let Some(kind) = kind_of(name) else {
            return Ok(None);
        };
        let path = self.dir.join(name);
        let io = |source| FileError::Io {
            path: path.clone(),
            source,
        };
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.write().remove(name);
                return Ok(None);
            }
            Err(e) => return Err(io(e)),
        };
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Ok(None);
        }
        let id = FileId::of(&meta);
        if let Some((cached, served)) = self.read().get(name) {
            if *cached == id {
                return Ok(Some(served.clone()));
            }
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(FileError::TooLarge { path });
        }
        let mut body = Vec::with_capacity(meta.len() as usize);
        file.by_ref()
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut body)
            .map_err(io)?;
        let hash = hex::encode(Sha256::digest(&body));
        let facts = match kind {
            Kind::Crl => Some(crl_facts::read(&body).map_err(|source| FileError::NotCrl {
                path: path.clone(),
                source,
            })?),
            Kind::CaCertificate => None,
        };
        let etag = match facts.as_ref().and_then(|f| f.number) {
            Some(n) => format!("\"{n}-{}\"", &hash[..16]),
            None => format!("\"{}\"", &hash[..16]),
        };
        let modified = meta
            .modified()
            .ok()
            .map(DateTime::<Utc>::from)
            .unwrap_or_default();
        let served = Arc::new(Served {
            name: name.to_string(),
            kind,
            body: body.into(),
            etag,
            facts,
            modified,
        });
        self.write().insert(name.to_string(), (id, served.clone()));
        Ok(Some(served))
    }

    /// Every servable file of the directory, by name; unreadable ones as errors.
    pub fn list(&self) -> Result<Vec<Result<Arc<Served>, FileError>>, FileError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|source| FileError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| kind_of(n).is_some())
            .collect();
        names.sort();
        self.write().retain(|n, _| names.contains(n));
        Ok(names
            .iter()
            .filter_map(|n| self.get(n).transpose())
            .collect())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, (FileId, Arc<Served>)>> {
        self.cache.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, (FileId, Arc<Served>)>> {
        self.cache.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_crl_and_cer_names_are_served() {
        assert_eq!(kind_of("identity-card-ca.crl"), Some(Kind::Crl));
        assert_eq!(kind_of("root.cer"), Some(Kind::CaCertificate));
        for bad in [
            "",
            ".x.crl",
            "../x.crl",
            "a/b.crl",
            "x.crl.tmp",
            ".signer-status.json",
            "x.der",
        ] {
            assert_eq!(kind_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_replaced_file_is_read_again_and_a_removed_one_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(dir.path());
        std::fs::write(dir.path().join("a.cer"), b"one").unwrap();
        assert_eq!(&files.get("a.cer").unwrap().unwrap().body[..], b"one");
        let tmp = dir.path().join(".a.cer.tmp");
        std::fs::write(&tmp, b"second").unwrap();
        std::fs::rename(&tmp, dir.path().join("a.cer")).unwrap();
        assert_eq!(&files.get("a.cer").unwrap().unwrap().body[..], b"second");
        std::fs::remove_file(dir.path().join("a.cer")).unwrap();
        assert!(files.get("a.cer").unwrap().is_none());
        std::fs::write(dir.path().join("bad.crl"), b"not der").unwrap();
        assert!(matches!(
            files.get("bad.crl"),
            Err(FileError::NotCrl { .. })
        ));
    }
}
