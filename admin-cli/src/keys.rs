//! `pki-admin key block|list`: the blocked keys (CPS 3.2.1, 4.9.1), which
//! issuance and renewal refuse. A key is blocked by itself when a
//! certificate of it is revoked for keyCompromise; an officer blocks one
//! by hand here, from a CSR, a certificate or the SPKI hash.

use ca_core::Ca;
use clap::{Args, Subcommand};
use pki_registration::blocked_keys;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Never certify this key again.
    Block {
        #[command(flatten)]
        key: KeyArgs,
        /// Why (kept in the table and the audit log).
        #[arg(long)]
        comment: Option<String>,
    },
    /// The blocked keys, newest first.
    List {
        #[arg(long, default_value_t = 1000)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
#[group(required = true, multiple = false, id = "key")]
pub struct KeyArgs {
    /// The key of this PKCS#10 request (PEM or DER).
    #[arg(long, group = "key")]
    csr: Option<PathBuf>,
    /// The key of this certificate (PEM or DER).
    #[arg(long, group = "key")]
    cert: Option<PathBuf>,
    /// The SHA-256 of the key's SubjectPublicKeyInfo, in hex.
    #[arg(long, group = "key")]
    spki_sha256: Option<String>,
}

fn read(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}

pub fn run(ca: &mut Ca, command: KeyCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeyCommand::Block { key, comment } => {
            let hash = match (&key.csr, &key.cert, &key.spki_sha256) {
                (Some(csr), _, _) => blocked_keys::csr_key_sha256(&read(csr)?)
                    .ok_or_else(|| anyhow::anyhow!("{} is not a PKCS#10 request", csr.display()))?,
                (None, Some(cert), _) => blocked_keys::cert_key_sha256(&read(cert)?)?,
                (None, None, Some(hash)) => hash.clone(),
                (None, None, None) => anyhow::bail!("give --csr, --cert or --spki-sha256"),
            };
            let actor = ca.actor.clone();
            let now = ca.clock.now();
            if blocked_keys::block_by_hand(&mut ca.db, &actor, now, &hash, comment.as_deref())? {
                outln!("blocked key {}", hash.to_ascii_lowercase());
            } else {
                outln!("key {} was already blocked", hash.to_ascii_lowercase());
            }
        }
        KeyCommand::List { limit, json } => {
            let rows = blocked_keys::list(&mut ca.db, limit)?;
            if json {
                crate::output::print_json(&serde_json::to_value(&rows)?);
            } else {
                for r in rows {
                    outln!(
                        "{}  {:<14} {}  {}{}",
                        r.public_key_sha256,
                        r.source,
                        r.blocked_at.format("%Y-%m-%dT%H:%M:%SZ"),
                        r.certificate_serial.as_deref().unwrap_or("-"),
                        r.comment.map(|c| format!("  {c}")).unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
