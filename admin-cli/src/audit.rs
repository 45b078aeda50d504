//! `pki-admin audit`: the audit log's chain, its Merkle tree and signed
//! checkpoints (`verify`, `list`, `checkpoint`, `prove`, `consistency`), and
//! `check-proof`, the offline verifier that opens no database: it checks a
//! checkpoint's signature with a public key and a proof against that
//! checkpoint's root. The rules are `pki_store::audit` (chain, tree),
//! `pki_store::checkpoint` (file format) and `pki_keys::audit` (the key).

use crate::output::print_json;
use anyhow::{bail, Context as _};
use ca_core::Ca;
use clap::{Args, Subcommand};
use pki_keys::audit as audit_key;
use pki_keys::KeyStore;
use pki_store::checkpoint::{self, Checkpoint};
use pki_store::config::{Config, KeyPurpose};
use pki_store::merkle::{self, Hash};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain and name the first damaged record; with
    /// --checkpoints, also recompute the Merkle tree and hold it against
    /// every signed checkpoint in DIR.
    Verify {
        /// A directory of checkpoint files (e.g. the configured
        /// `[audit] checkpoint_dir`, or a copy kept elsewhere).
        #[arg(long, value_name = "DIR")]
        checkpoints: Option<PathBuf>,
        /// The audit key's public key (PEM) to trust (default: the
        /// `audit-key.pub.pem` in the audit key directory).
        #[arg(long, value_name = "PUBKEY.pem", requires = "checkpoints")]
        key: Option<PathBuf>,
    },
    /// Show audit records.
    List {
        #[arg(long)]
        tail: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Sign a checkpoint of the whole log now (creates the audit key on first use).
    Checkpoint,
    /// Print an inclusion proof (JSON) of record SEQ.
    Prove {
        /// The record's sequence number.
        seq: i64,
        /// The tree size to prove against (default: the newest checkpoint
        /// that covers SEQ, else the whole log).
        #[arg(long)]
        size: Option<i64>,
    },
    /// Print a consistency proof (JSON) between two tree sizes, each given
    /// as a number or as a checkpoint file.
    Consistency { old: String, new: String },
    /// Check a proof offline (no database): the checkpoint's signature with
    /// the public key, and the proof against the checkpoint's root.
    CheckProof(CheckProofArgs),
}

#[derive(Args)]
pub struct CheckProofArgs {
    /// The proof (JSON) printed by `audit prove` or `audit consistency`.
    pub proof: PathBuf,
    /// The checkpoint the proof is against (for a consistency proof: the newer one).
    #[arg(long, value_name = "FILE")]
    pub checkpoint: PathBuf,
    /// For a consistency proof: the older checkpoint.
    #[arg(long, value_name = "FILE")]
    pub old_checkpoint: Option<PathBuf>,
    /// The audit key's public key (PEM).
    #[arg(long, value_name = "PUBKEY.pem")]
    pub key: PathBuf,
}

pub fn run(ca: &mut Ca, command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify { checkpoints, key } => verify(ca, checkpoints, key),
        AuditCommand::List { tail, json } => list(ca, tail, json),
        AuditCommand::Checkpoint => make_checkpoint(ca),
        AuditCommand::Prove { seq, size } => prove(ca, seq, size),
        AuditCommand::Consistency { old, new } => consistency(ca, &old, &new),
        AuditCommand::CheckProof(args) => check_proof(&args),
    }
}

fn list(ca: &mut Ca, tail: Option<i64>, json: bool) -> anyhow::Result<ExitCode> {
    let rows = pki_store::audit::list(&mut ca.db, tail)?;
    if json {
        print_json(&serde_json::to_value(&rows)?);
    } else {
        for r in rows {
            outln!(
                "#{:<6} {} {:<10} {:<22} {} {}",
                r.seq,
                r.at,
                r.actor,
                r.action,
                r.subject,
                r.details
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The public key checkpoints are checked with.
fn trusted_key(config: &Config, key: Option<&Path>) -> anyhow::Result<Vec<u8>> {
    let path = match key {
        Some(p) => p.to_path_buf(),
        None => config
            .key_dir(KeyPurpose::Audit)
            .join(audit_key::PUBLIC_KEY_FILE),
    };
    Ok(audit_key::read_public_key(&path)?)
}

/// Reads every checkpoint in `dir` and checks its signature.
fn signed_checkpoints(dir: &Path, spki: &[u8]) -> anyhow::Result<Vec<(String, Checkpoint)>> {
    let mut out = Vec::new();
    for (path, cp) in checkpoint::list(dir)? {
        let name = path.display().to_string();
        audit_key::check_signature(&cp, spki, &name)?;
        out.push((name, cp));
    }
    Ok(out)
}

fn verify(ca: &mut Ca, dir: Option<PathBuf>, key: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let n = pki_store::audit::verify(&mut ca.db)?;
    let Some(dir) = dir else {
        outln!("audit chain intact: {n} records");
        return Ok(ExitCode::SUCCESS);
    };
    if !dir.is_dir() {
        bail!("checkpoint directory {} does not exist", dir.display());
    }
    let spki = trusted_key(&ca.config, key.as_deref())?;
    let checkpoints = signed_checkpoints(&dir, &spki)?;
    let log_name = ca.config.audit.log_name.clone();
    let report = pki_store::audit::verify_tree(&mut ca.db, n, &log_name, &checkpoints)?;
    outln!("audit chain intact: {n} records");
    outln!(
        "audit tree intact: {} records, root {}, {} signed checkpoints match (key id {})",
        report.size,
        hex::encode(report.root),
        report.checkpoints,
        hex::encode(checkpoint::key_id(&spki))
    );
    Ok(ExitCode::SUCCESS)
}

fn make_checkpoint(ca: &mut Ca) -> anyhow::Result<ExitCode> {
    let keys = KeyStore::new(&ca.config, KeyPurpose::Audit);
    let signer = audit_key::open_or_create(&ca.config, &keys)?;
    let now = ca.clock.now();
    let actor = ca.actor.clone();
    let config = ca.config.clone();
    match audit_key::checkpoint_now(&mut ca.db, &config, signer.as_ref(), &actor, now)? {
        Some((path, cp)) => {
            outln!(
                "checkpoint of {} records, root {}: {}",
                cp.size,
                hex::encode(cp.root),
                path.display()
            );
            outln!(
                "audit key {} (public key: {})",
                hex::encode(cp.key_id),
                config
                    .key_dir(KeyPurpose::Audit)
                    .join(audit_key::PUBLIC_KEY_FILE)
                    .display()
            );
        }
        None => outln!(
            "the newest checkpoint already covers the whole log (all but its own audit.checkpoint record)"
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn prove(ca: &mut Ca, seq: i64, size: Option<i64>) -> anyhow::Result<ExitCode> {
    let dir = ca.config.checkpoint_dir();
    let checkpoints = checkpoint::list(&dir)?;
    // Against the newest checkpoint covering the record, or the size asked.
    let chosen = match size {
        Some(n) => checkpoints.into_iter().find(|(_, cp)| cp.size as i64 == n),
        None => checkpoints
            .into_iter()
            .rev()
            .find(|(_, cp)| cp.size as i64 >= seq),
    };
    let size = size.or(chosen.as_ref().map(|(_, cp)| cp.size as i64));
    let proof = pki_store::audit::inclusion(&mut ca.db, seq, size)?;
    let mut v = serde_json::to_value(&proof)?;
    v["checkpoint"] = match &chosen {
        Some((path, cp)) => {
            if hex::encode(cp.root) != proof.root {
                bail!(
                    "the first {} records no longer hash to the root of checkpoint {}: run `pki-admin audit verify --checkpoints {}`",
                    cp.size,
                    path.display(),
                    dir.display()
                );
            }
            json!(path.display().to_string())
        }
        None => Value::Null,
    };
    print_json(&v);
    Ok(ExitCode::SUCCESS)
}

/// A tree size given as a number or as a checkpoint file.
fn size_arg(arg: &str) -> anyhow::Result<(i64, Option<String>)> {
    if let Ok(n) = arg.parse::<i64>() {
        return Ok((n, None));
    }
    let path = Path::new(arg);
    if !path.is_file() {
        bail!("{arg:?} is neither a tree size nor a checkpoint file");
    }
    let cp = checkpoint::read(path)?;
    Ok((cp.size as i64, Some(path.display().to_string())))
}

fn consistency(ca: &mut Ca, old: &str, new: &str) -> anyhow::Result<ExitCode> {
    let (old_size, old_file) = size_arg(old)?;
    let (new_size, new_file) = size_arg(new)?;
    let proof = pki_store::audit::consistency(&mut ca.db, old_size, new_size)?;
    let mut v = serde_json::to_value(&proof)?;
    v["old_checkpoint"] = json!(old_file);
    v["new_checkpoint"] = json!(new_file);
    print_json(&v);
    Ok(ExitCode::SUCCESS)
}

/// A hex hash field of a proof.
fn hash_field(v: &Value, key: &str) -> anyhow::Result<Hash> {
    let s = v
        .get(key)
        .and_then(Value::as_str)
        .with_context(|| format!("the proof has no {key:?} string"))?;
    merkle::leaf_data_of(s).with_context(|| format!("{key} is not 32 bytes of hex"))
}

fn u64_field(v: &Value, key: &str) -> anyhow::Result<u64> {
    v.get(key)
        .and_then(Value::as_u64)
        .with_context(|| format!("the proof has no {key:?} number"))
}

fn path_field(v: &Value, key: &str) -> anyhow::Result<Vec<Hash>> {
    let items = v
        .get(key)
        .and_then(Value::as_array)
        .with_context(|| format!("the proof has no {key:?} list"))?;
    items
        .iter()
        .map(|h| {
            h.as_str()
                .and_then(merkle::leaf_data_of)
                .with_context(|| format!("{key} holds something that is not 32 bytes of hex"))
        })
        .collect()
}

/// Reads a checkpoint file and checks its signature with `spki`.
fn signed_checkpoint(path: &Path, spki: &[u8]) -> anyhow::Result<Checkpoint> {
    let cp = checkpoint::read(path)?;
    audit_key::check_signature(&cp, spki, &path.display().to_string())?;
    Ok(cp)
}

/// `audit check-proof`: no configuration, no database.
pub fn check_proof(args: &CheckProofArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.proof)
        .with_context(|| format!("cannot read {}", args.proof.display()))?;
    let v: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", args.proof.display()))?;
    let spki = audit_key::read_public_key(&args.key)?;
    let cp = signed_checkpoint(&args.checkpoint, &spki)?;
    if v.get("audit_path").is_some() {
        let index = u64_field(&v, "leaf_index")?;
        let size = u64_field(&v, "tree_size")?;
        let record = hash_field(&v, "record_hash")?;
        let path = path_field(&v, "audit_path")?;
        if size != cp.size {
            bail!(
                "the proof is for a tree of {size} records, the checkpoint for {}",
                cp.size
            );
        }
        if hash_field(&v, "leaf_hash")? != merkle::leaf_hash(&record) {
            bail!("leaf_hash is not the leaf hash of record_hash");
        }
        merkle::verify_inclusion(&record, index, size, &path, &cp.root).with_context(|| {
            format!(
                "record #{} is not in the tree of checkpoint {}",
                index + 1,
                args.checkpoint.display()
            )
        })?;
        outln!(
            "proof valid: record #{} (hash {}) is in the log's first {} records, checkpoint signed by {} at {}",
            index + 1,
            hex::encode(record),
            size,
            hex::encode(cp.key_id),
            cp.time.to_rfc3339()
        );
    } else if v.get("proof").is_some() {
        let old_path = args
            .old_checkpoint
            .as_ref()
            .context("a consistency proof needs --old-checkpoint as well")?;
        let old = signed_checkpoint(old_path, &spki)?;
        let (old_size, new_size) = (u64_field(&v, "old_size")?, u64_field(&v, "new_size")?);
        let proof = path_field(&v, "proof")?;
        if old_size != old.size || new_size != cp.size {
            bail!(
                "the proof is between {old_size} and {new_size} records, the checkpoints are of {} and {}",
                old.size,
                cp.size
            );
        }
        merkle::verify_consistency(old.size, &old.root, cp.size, &cp.root, &proof).with_context(
            || {
                format!(
                    "checkpoint {} is not an extension of checkpoint {}",
                    args.checkpoint.display(),
                    old_path.display()
                )
            },
        )?;
        outln!(
            "proof valid: the log of {} records extends the log of {} records (checkpoints signed by {})",
            cp.size,
            old.size,
            hex::encode(cp.key_id)
        );
    } else {
        bail!(
            "{} is neither an inclusion proof (audit_path) nor a consistency proof (proof)",
            args.proof.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
