//! How paths are written for people: without `.` components, and relative
//! to the current directory in commands to copy.

use std::path::{Component, Path, PathBuf};

/// A path without `.` components (`pki-data/./ca` reads `pki-data/ca`).
pub fn tidy(p: &Path) -> PathBuf {
    let tidied: PathBuf = p.components().filter(|c| *c != Component::CurDir).collect();
    if tidied.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        tidied
    }
}

/// How a path is best shown in a command to copy: relative to the current
/// directory when under it.
pub fn shown(p: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    match p.strip_prefix(&cwd) {
        Ok(rel) if p.is_absolute() => format!("./{}", rel.display()),
        _ => p.display().to_string(),
    }
}
