//! Files that hold secrets or the CA's state: every binary starts with
//! [`restrict_umask`] (new files 0600, new directories 0700), key
//! directories are created 0700 ([`create_private_dir`]), and a secret
//! file (passphrase, PIN, key) that group or others may read or write is
//! refused with a message naming it ([`check_private`]).

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{what} {path} is open to group or others (mode {mode:04o}): run `chmod 600 {path}` (0700 for a directory); secrets must be readable by their owner only")]
    TooOpen {
        what: &'static str,
        path: PathBuf,
        mode: u32,
    },
    #[error("cannot read the permissions of {what} {path}: {source}")]
    Stat {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Files and directories this process creates are its owner's alone
/// (umask 077). Called first thing by every binary.
pub fn restrict_umask() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Creates a new file readable and writable by its owner only (0600,
/// whatever the umask); an existing file is an `AlreadyExists` error, never
/// truncated. Keys, passphrase files and the SQLite database are made here.
pub fn create_new_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Refuses `path` when group or others have any right on it.
/// `what` names the file in the message ("passphrase file", "key file").
pub fn check_private(path: &Path, what: &'static str) -> Result<(), FileError> {
    let meta = std::fs::metadata(path).map_err(|source| FileError::Stat {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(FileError::TooOpen {
            what,
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Creates `path` and its missing parents; the last one (the key
/// directory itself) is made 0700, and an existing one must already be
/// private.
pub fn create_private_dir(path: &Path) -> Result<(), FileError> {
    if !path.exists() {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| FileError::CreateDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(path)
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Ok(()),
                _ => Err(e),
            })
            .map_err(|source| FileError::CreateDir {
                path: path.to_path_buf(),
                source,
            })?;
    }
    check_private(path, "key directory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_secret_files_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("passphrase");
        std::fs::write(&file, "secret\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = check_private(&file, "passphrase file").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("passphrase file") && text.contains("0644"),
            "{text}"
        );
        assert!(text.contains(&file.display().to_string()), "{text}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        check_private(&file, "passphrase file").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(check_private(&file, "passphrase file").is_err());
    }

    #[test]
    fn key_directories_are_created_private() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys").join("ca");
        create_private_dir(&keys).unwrap();
        let mode = std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        create_private_dir(&keys).unwrap();
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(
            create_private_dir(&keys).is_err(),
            "an open key directory is refused"
        );
    }
}
