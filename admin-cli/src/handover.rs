//! `pki-admin run` keeps no passphrase in its own environment once it has
//! started: when the shell gave it passphrases in environment variables,
//! it reads them, re-executes itself without them (`exec`, the same
//! process) and receives them on a pipe as its standard input. The
//! variables then reach only the children that need them (`run::Spec`),
//! and `/proc/<pid>/environ` of the runner holds none.

use anyhow::Context as _;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;

/// Set in the re-executed runner: its standard input carries the passphrases.
const HANDED_OVER: &str = "PKI_RUN_SECRETS_ON_STDIN";

/// The largest hand-over read (a few passphrases).
const LIMIT: u64 = 64 * 1024;

/// When any of `vars` is set (and this is not already the re-executed
/// runner), re-executes this program with the same arguments, without
/// those variables, the values on its standard input. Returns only when
/// there was nothing to hand over; `exec` does not return on success.
pub fn reexec_without(vars: &[String]) -> anyhow::Result<()> {
    if std::env::var_os(HANDED_OVER).is_some() {
        return Ok(());
    }
    let present: Vec<(String, String)> = vars
        .iter()
        .filter_map(|v| {
            std::env::var(v)
                .ok()
                .filter(|value| !value.is_empty())
                .map(|value| (v.clone(), value))
        })
        .collect();
    if present.is_empty() {
        return Ok(());
    }
    let payload = serde_json::to_vec(&present).context("encoding the hand-over")?;
    let (reader, mut writer) = std::io::pipe().context("creating the hand-over pipe")?;
    // The pipe's buffer holds the few bytes; the writer closes at `exec`.
    writer
        .write_all(&payload)
        .context("writing the hand-over pipe")?;
    drop(writer);
    let exe = std::env::current_exe().context("locating pki-admin")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(std::env::args_os().skip(1))
        .env(HANDED_OVER, "1")
        .stdin(reader);
    for (var, _) in &present {
        cmd.env_remove(var);
    }
    let error = cmd.exec();
    Err(error).context("re-executing pki-admin run without the passphrases in its environment")
}

/// In the re-executed runner: the variables handed over on standard input
/// (none otherwise).
pub fn take() -> anyhow::Result<Vec<(String, String)>> {
    if std::env::var_os(HANDED_OVER).is_none() {
        return Ok(Vec::new());
    }
    let mut payload = Vec::new();
    std::io::stdin()
        .lock()
        .take(LIMIT)
        .read_to_end(&mut payload)
        .context("reading the passphrases handed over on standard input")?;
    serde_json::from_slice(&payload).context("reading the passphrases handed over")
}
