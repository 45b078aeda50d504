//! Signed checkpoints of the audit log's Merkle tree: the file format and
//! the write-once directory they are kept in. Signing and checking the
//! signature are `pki_keys::audit`'s (this crate holds no key).
//!
//! A checkpoint is a text file `checkpoint-<size, 12 digits>.txt`:
//!
//! ```text
//! pki-audit-checkpoint/v1
//! log: <log name, [audit] log_name>
//! size: <number of records covered: #1..#size>
//! root: <Merkle tree root of those records, hex>
//! time: <when it was made, RFC 3339 UTC>
//! key-id: <SHA-256 of the audit key's DER SubjectPublicKeyInfo, hex>
//! algorithm: ecdsa-with-SHA384
//! spki: <the audit key's DER SubjectPublicKeyInfo, base64>
//! signature: <DER ECDSA-Sig-Value over the signed text, base64>
//! ```
//!
//! The signed text is the first seven lines, each ending in `\n`
//! ([`Checkpoint::signed_text`]); `openssl dgst -sha384 -verify pub.pem
//! -signature sig.der` checks it. The `spki` line only says which key
//! signed: a verifier trusts the key it was given, never the file's.
//!
//! Files are only ever added: [`write_new`] refuses to replace one (it
//! links a fully written temporary file to the final name, which fails if
//! the name exists).

use crate::merkle::Hash;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The first line of every checkpoint.
pub const FORMAT: &str = "pki-audit-checkpoint/v1";
/// Lines of the signed text.
const SIGNED_LINES: usize = 7;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint {file}: {message}")]
    Malformed { file: String, message: String },
    #[error("checkpoint {file} already exists; checkpoints are never overwritten")]
    Exists { file: String },
    #[error("checkpoint directory {dir}: {source}")]
    Io { dir: String, source: std::io::Error },
}

/// A checkpoint as read from or written to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub log: String,
    pub size: u64,
    pub root: Hash,
    pub time: DateTime<Utc>,
    /// SHA-256 of `spki`.
    pub key_id: Hash,
    /// `ecdsa-with-SHA256` or `ecdsa-with-SHA384`.
    pub algorithm: String,
    /// DER SubjectPublicKeyInfo of the key that signed.
    pub spki: Vec<u8>,
    /// DER ECDSA-Sig-Value over [`Checkpoint::signed_text`].
    pub signature: Vec<u8>,
}

/// The key id of a public key: SHA-256 of its DER SubjectPublicKeyInfo.
pub fn key_id(spki: &[u8]) -> Hash {
    Sha256::digest(spki).into()
}

/// The file name of the checkpoint of `size` records.
pub fn file_name(size: u64) -> String {
    format!("checkpoint-{size:012}.txt")
}

impl Checkpoint {
    /// The text the signature covers.
    pub fn signed_text(&self) -> String {
        signed_text(
            &self.log,
            self.size,
            &self.root,
            self.time,
            &self.key_id,
            &self.algorithm,
        )
    }

    /// The whole file.
    pub fn to_text(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        format!(
            "{}spki: {}\nsignature: {}\n",
            self.signed_text(),
            b64.encode(&self.spki),
            b64.encode(&self.signature)
        )
    }

    /// Reads a checkpoint file's text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Checkpoint, CheckpointError> {
        let bad = |message: String| CheckpointError::Malformed {
            file: file.to_string(),
            message,
        };
        let lines: Vec<&str> = text.lines().collect();
        if lines.first() != Some(&FORMAT) {
            return Err(bad(format!("does not start with {FORMAT:?}")));
        }
        let field = |i: usize, name: &str| -> Result<&str, CheckpointError> {
            lines
                .get(i)
                .and_then(|l| l.strip_prefix(name))
                .and_then(|l| l.strip_prefix(": "))
                .ok_or_else(|| bad(format!("line {} must be `{name}: ...`", i + 1)))
        };
        let hash = |s: &str, name: &str| -> Result<Hash, CheckpointError> {
            hex::decode(s)
                .ok()
                .and_then(|b| Hash::try_from(b).ok())
                .ok_or_else(|| bad(format!("{name} is not 32 bytes of hex")))
        };
        let b64 = |s: &str, name: &str| -> Result<Vec<u8>, CheckpointError> {
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| bad(format!("{name} is not base64: {e}")))
        };
        let log = field(1, "log")?.to_string();
        let size = field(2, "size")?
            .parse::<u64>()
            .map_err(|e| bad(format!("size: {e}")))?;
        let root = hash(field(3, "root")?, "root")?;
        let time = DateTime::parse_from_rfc3339(field(4, "time")?)
            .map_err(|e| bad(format!("time: {e}")))?
            .with_timezone(&Utc);
        let claimed_key_id = hash(field(5, "key-id")?, "key-id")?;
        let algorithm = field(6, "algorithm")?.to_string();
        let spki = b64(field(7, "spki")?, "spki")?;
        let signature = b64(field(8, "signature")?, "signature")?;
        if lines.len() != 9 {
            return Err(bad(format!("has {} lines, expected 9", lines.len())));
        }
        let cp = Checkpoint {
            log,
            size,
            root,
            time,
            key_id: claimed_key_id,
            algorithm,
            spki,
            signature,
        };
        // The text must be exactly what this format writes (no second
        // spelling of the same checkpoint).
        if cp.to_text() != text {
            return Err(bad("is not in the canonical form".into()));
        }
        if cp.key_id != key_id(&cp.spki) {
            return Err(bad("key-id is not the SHA-256 of its spki".into()));
        }
        Ok(cp)
    }
}

/// The signed text of a checkpoint's fields.
pub fn signed_text(
    log: &str,
    size: u64,
    root: &Hash,
    time: DateTime<Utc>,
    key_id: &Hash,
    algorithm: &str,
) -> String {
    let text = format!(
        "{FORMAT}\nlog: {log}\nsize: {size}\nroot: {}\ntime: {}\nkey-id: {}\nalgorithm: {algorithm}\n",
        hex::encode(root),
        time.to_rfc3339_opts(SecondsFormat::Secs, true),
        hex::encode(key_id),
    );
    debug_assert_eq!(text.lines().count(), SIGNED_LINES);
    text
}

fn io_err(dir: &Path) -> impl Fn(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        dir: dir.display().to_string(),
        source,
    }
}

/// Writes a new checkpoint file in `dir` (created if missing); refuses to
/// replace an existing one. Returns its path.
pub fn write_new(dir: &Path, cp: &Checkpoint) -> Result<PathBuf, CheckpointError> {
    use std::io::Write;
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let path = dir.join(file_name(cp.size));
    if path.exists() {
        return Err(CheckpointError::Exists {
            file: path.display().to_string(),
        });
    }
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        file_name(cp.size),
        std::process::id()
    ));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(cp.to_text().as_bytes())?;
        f.sync_all()?;
        // A hard link fails when the name exists: never a replacement.
        std::fs::hard_link(&tmp, &path)
    })();
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => Ok(path),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(CheckpointError::Exists {
            file: path.display().to_string(),
        }),
        Err(e) => Err(io_err(dir)(e)),
    }
}

/// Reads one checkpoint file.
pub fn read(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let text = std::fs::read_to_string(path).map_err(|source| CheckpointError::Io {
        dir: path.display().to_string(),
        source,
    })?;
    Checkpoint::parse(&text, &path.display().to_string())
}

/// Every checkpoint file in `dir` (`checkpoint-*.txt`), by size; an empty
/// list when the directory does not exist.
pub fn list(dir: &Path) -> Result<Vec<(PathBuf, Checkpoint)>, CheckpointError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(io_err(dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("checkpoint-") && name.ends_with(".txt") {
            let cp = read(&path)?;
            out.push((path, cp));
        }
    }
    out.sort_by(|a, b| (a.1.size, &a.0).cmp(&(b.1.size, &b.0)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        let spki = vec![0x30, 0x03, 1, 2, 3];
        Checkpoint {
            log: "test-log".into(),
            size: 42,
            root: [7; 32],
            time: "2026-12-03T17:00:00Z".parse().unwrap(),
            key_id: key_id(&spki),
            algorithm: "ecdsa-with-SHA384".into(),
            spki,
            signature: vec![0x30, 0x06, 2, 1, 1, 2, 1, 1],
        }
    }

    #[test]
    fn a_checkpoint_reads_back_and_its_signed_text_is_the_first_seven_lines() {
        let cp = sample();
        let text = cp.to_text();
        assert_eq!(Checkpoint::parse(&text, "f").unwrap(), cp);
        let first7: String = text.lines().take(7).map(|l| format!("{l}\n")).collect();
        assert_eq!(cp.signed_text(), first7);
    }

    #[test]
    fn damaged_files_are_refused_with_their_name() {
        let text = sample().to_text();
        for bad in [
            text.replace("size: 42", "size: forty-two"),
            text.replace("pki-audit-checkpoint/v1", "something else"),
            text.replace("key-id: ", "key-id: 00"),
            text.replace("\nsignature:", "\n\nsignature:"),
            format!("{text}extra\n"),
            text.replace(
                "time: 2026-12-03T17:00:00Z",
                "time: 2026-12-03T18:00:00+01:00",
            ),
        ] {
            let e = Checkpoint::parse(&bad, "cp.txt").unwrap_err().to_string();
            assert!(e.starts_with("checkpoint cp.txt:"), "{e}");
        }
    }

    #[test]
    fn a_checkpoint_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let cp = sample();
        let path = write_new(dir.path(), &cp).unwrap();
        assert!(path.ends_with("checkpoint-000000000042.txt"));
        let mut other = cp.clone();
        other.root = [8; 32];
        assert!(matches!(
            write_new(dir.path(), &other),
            Err(CheckpointError::Exists { .. })
        ));
        assert_eq!(read(&path).unwrap(), cp);
        let listed = list(dir.path()).unwrap();
        assert_eq!(listed.len(), 1, "no temporary file is left: {listed:?}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(list(&dir.path().join("missing")).unwrap().is_empty());
    }
}
