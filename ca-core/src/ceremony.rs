//! Key ceremonies (Boulder's `ceremony` tool is the model): one declarative
//! file per ceremony names its operators and its steps — the root key and
//! self-signed certificate, an issuing CA's key and certificate, a
//! responder key and certificate. [`plan`] checks the file against the
//! store and the policy and says what would be done (`--dry-run`);
//! [`run`] does it: keys are generated (never overwritten: new names), the
//! certificates minted through the signing door, and everything is stored
//! in one audited transaction with the ceremony's transcript, which is also
//! written to a new file. An authority that exists is refused, never
//! replaced.
//!
//! The root's key lives in the ceremony's own key store (`[root_keys]`:
//! an offline directory or token, its own passphrase), never in the online
//! CA's: its row is marked offline (`authorities::OFFLINE_PREFIX`), so no
//! online process can open it.

use crate::ca::Ca;
use crate::hierarchy::{create_ca, create_responder, issuer_of, NewCa};
use crate::issuer::Issuer;
use chrono::SubsecRound;
use diesel::prelude::*;
use pki_keys::authority::{load_row, Authority};
use pki_keys::KeyStore;
use pki_store::authorities::{is_offline, OFFLINE_PREFIX};
use pki_store::config::{Config, KeyPurpose};
use pki_store::domain::AuditAction;
use pki_store::domain::KeyBackend;
use pki_store::error::{CaError, Result};
use pki_store::storage::models::{AuthorityRow, CertificateRow, OcspResponderRow};
use pki_store::storage::schema::{authorities, ocsp_responders};
use pki_store::with_conn;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A ceremony file (TOML).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CeremonyFile {
    /// A name for this ceremony, unique (recorded in the audit log).
    pub id: String,
    /// The people present (at least two: four eyes), with their roles.
    pub operators: Vec<String>,
    /// The transcript file to write (relative to the ceremony file); must not exist.
    pub transcript: PathBuf,
    /// Where the root key lives, when a step makes or uses it.
    pub root_keys: Option<RootKeys>,
    pub steps: Vec<Step>,
}

/// The offline key store of the root: never the online CA's. With software
/// keys, its own directory (removable media) and passphrase; with PKCS#11,
/// its own token and PIN.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootKeys {
    /// Software keys: directory of the root key (relative to the ceremony file).
    pub dir: Option<PathBuf>,
    /// Software keys: environment variable holding its passphrase.
    pub passphrase_env: Option<String>,
    /// PKCS#11: label of the root's own token (not the online CA's).
    pub token: Option<String>,
    /// PKCS#11: environment variable holding that token's user PIN.
    pub pin_env: Option<String>,
}

impl RootKeys {
    /// Where the root key lives, for the plan.
    fn describe(&self) -> String {
        match (&self.token, &self.dir) {
            (Some(token), _) => format!("token {token}"),
            (None, Some(dir)) => dir.display().to_string(),
            (None, None) => "(no store)".into(),
        }
    }
}

/// One step of a ceremony.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Step {
    /// The root's key (offline) and its self-signed certificate.
    Root { authority: String },
    /// An issuing CA's key (online CA key store) and its certificate, signed by its parent.
    IssuingCa { authority: String },
    /// A new OCSP responder key and certificate for an authority.
    Responder { authority: String },
}

impl Step {
    fn authority(&self) -> &str {
        match self {
            Step::Root { authority }
            | Step::IssuingCa { authority }
            | Step::Responder { authority } => authority,
        }
    }
}

impl CeremonyFile {
    /// Reads a ceremony file; relative paths are taken from its directory.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CaError::Ceremony(format!("cannot read {}: {e}", path.display())))?;
        let mut file: CeremonyFile = toml::from_str(&text)
            .map_err(|e| CaError::Ceremony(format!("{}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        file.transcript = base.join(&file.transcript);
        if let Some(dir) = file.root_keys.as_mut().and_then(|r| r.dir.as_mut()) {
            *dir = base.join(&*dir);
        }
        Ok(file)
    }
}

/// What a step does, as the dry run prints it and the transcript records it.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedStep {
    pub step: Step,
    pub description: String,
}

/// Checks the ceremony against the policy and the store; nothing is made.
pub fn plan(ca: &mut Ca, file: &CeremonyFile) -> Result<Vec<PlannedStep>> {
    let fail = |m: String| Err(CaError::Ceremony(m));
    if file.id.trim().is_empty() || file.id.len() > 100 {
        return fail("id must be 1 to 100 characters".into());
    }
    if file
        .operators
        .iter()
        .filter(|o| !o.trim().is_empty())
        .count()
        < 2
    {
        return fail("at least two operators must be present (four eyes)".into());
    }
    if file.steps.is_empty() {
        return fail("no step".into());
    }
    if file.transcript.exists() {
        return fail(format!(
            "transcript {} exists; a ceremony never overwrites one",
            file.transcript.display()
        ));
    }
    let stored = pki_store::authorities::list(&mut ca.db)?;
    let exists = |name: &str, made: &[String]| {
        stored.iter().any(|a| a.name == name) || made.iter().any(|m| m == name)
    };
    let mut made: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for step in &file.steps {
        let name = step.authority();
        let def = ca
            .policy
            .authority(name)
            .ok_or_else(|| CaError::Ceremony(format!("authority {name:?} is not in the policy")))?;
        let description = match step {
            Step::Root { .. } | Step::IssuingCa { .. } => {
                if exists(name, &made) {
                    return fail(format!(
                        "authority {name} exists; a ceremony never replaces a CA's key or certificate"
                    ));
                }
                match (step, &def.parent) {
                    (Step::Root { .. }, None) => {
                        let Some(root) = &file.root_keys else {
                            return fail(
                                "a root step needs [root_keys] (the offline key store)".into(),
                            );
                        };
                        root_store(&ca.config, root)?;
                        made.push(name.to_string());
                        format!(
                            "generate the root key of {name} in {} (offline) and self-sign its certificate ({})",
                            root.describe(),
                            def.common_name
                        )
                    }
                    (Step::IssuingCa { .. }, Some(parent)) => {
                        if !exists(parent, &made) {
                            return fail(format!(
                                "{name}'s parent {parent} neither exists nor is made before it"
                            ));
                        }
                        made.push(name.to_string());
                        format!(
                            "generate the key of {name} in the online CA key store and sign its certificate with {parent} ({})",
                            def.common_name
                        )
                    }
                    (Step::Root { .. }, Some(_)) => {
                        return fail(format!("{name} has a parent in the policy: not a root"))
                    }
                    (_, None) => {
                        return fail(format!(
                            "{name} has no parent in the policy: use a root step"
                        ))
                    }
                    _ => unreachable!("the two kinds of CA steps are matched above"),
                }
            }
            Step::Responder { .. } => {
                if !exists(name, &made) {
                    return fail(format!(
                        "{name} neither exists nor is made before its responder"
                    ));
                }
                format!("generate an OCSP responder key for {name} and sign its certificate with {name}'s key")
            }
        };
        out.push(PlannedStep {
            step: step.clone(),
            description,
        });
    }
    Ok(out)
}

/// One made thing in the transcript.
#[derive(Debug, Clone, Serialize)]
pub struct TranscriptEntry {
    pub step: Step,
    pub made: String,
    pub serial: String,
    pub subject: String,
    pub not_after: String,
    pub key_ref: String,
    pub key_identifier: String,
    pub spki_sha256: String,
    pub certificate_sha256: String,
}

/// The record of a ceremony: in the audit log and in its transcript file.
#[derive(Debug, Clone, Serialize)]
pub struct Transcript {
    pub ceremony: String,
    pub at: String,
    pub operators: Vec<String>,
    pub actor: String,
    pub entries: Vec<TranscriptEntry>,
}

impl Transcript {
    /// The human-readable transcript (the JSON follows it in the file).
    pub fn text(&self) -> String {
        let mut t = format!(
            "Key ceremony {}\nat {}\nrun by {}\noperators present:\n",
            self.ceremony, self.at, self.actor
        );
        for o in &self.operators {
            t.push_str(&format!("  - {o}\n"));
        }
        for (i, e) in self.entries.iter().enumerate() {
            t.push_str(&format!(
                "step {}: {}\n  serial {}\n  subject {}\n  not after {}\n  key {}\n  key identifier {}\n  SPKI SHA-256 {}\n  certificate SHA-256 {}\n",
                i + 1,
                e.made,
                e.serial,
                e.subject,
                e.not_after,
                e.key_ref,
                e.key_identifier,
                e.spki_sha256,
                e.certificate_sha256
            ));
        }
        t
    }
}

fn entry(
    step: &Step,
    made: String,
    cert: &CertificateRow,
    key_ref: &str,
) -> Result<TranscriptEntry> {
    use der::{Decode, Encode};
    let parsed = x509_cert::Certificate::from_der(&cert.der)
        .map_err(|e| CaError::Ceremony(format!("certificate {}: {e}", cert.serial)))?;
    let info = &parsed.tbs_certificate.subject_public_key_info;
    let spki = info
        .to_der()
        .map_err(|e| CaError::Ceremony(format!("certificate {}: {e}", cert.serial)))?;
    Ok(TranscriptEntry {
        step: step.clone(),
        made,
        serial: cert.serial.clone(),
        subject: cert.subject.clone(),
        not_after: cert.not_after.and_utc().to_rfc3339(),
        key_ref: key_ref.to_string(),
        key_identifier: hex::encode(pki_x509::ext::key_identifier(
            info.subject_public_key.raw_bytes(),
        )),
        spki_sha256: pki_x509::sha256_hex(&spki),
        certificate_sha256: pki_x509::sha256_hex(&cert.der),
    })
}

/// The root's key store: the online CA store's settings with the
/// ceremony's own directory and passphrase (software) or token and PIN
/// (PKCS#11); refused when it would be the online CA's store.
fn root_store(config: &Config, root: &RootKeys) -> Result<KeyStore> {
    let fail = |m: &str| Err(CaError::Ceremony(m.to_string()));
    let mut offline = config.clone();
    match config.keys.backend {
        KeyBackend::Software => {
            let (Some(dir), Some(env)) = (&root.dir, &root.passphrase_env) else {
                return fail("[root_keys] needs dir and passphrase_env with software keys");
            };
            if *dir == config.key_dir(KeyPurpose::Ca) {
                return fail("[root_keys] dir is the online CA key directory: the root key must stay offline");
            }
            offline.keys.ca_dir = Some(dir.clone());
            offline.keys.passphrase_env = env.clone();
            offline.keys.passphrase_file = None;
        }
        KeyBackend::Pkcs11 => {
            let (Some(token), Some(env)) = (&root.token, &root.pin_env) else {
                return fail("[root_keys] needs token and pin_env with PKCS#11 keys");
            };
            if token == config.pkcs11_token(KeyPurpose::Ca).label {
                return fail(
                    "[root_keys] token is the online CA token: the root key must stay offline",
                );
            }
            offline.keys.pkcs11.ca.token = Some(token.clone());
            offline.keys.pkcs11.ca.pin_env = Some(env.clone());
            offline.keys.pkcs11.ca.pin_file = None;
        }
    }
    Ok(KeyStore::new(&offline, KeyPurpose::Ca))
}

/// Either a CA made in this ceremony or one opened from the store.
enum Signing {
    Made(usize),
    Stored(Box<Authority>),
}

/// Runs the ceremony: every step, then one audited transaction; the
/// transcript file is written after the commit.
pub fn run(ca: &mut Ca, file: &CeremonyFile) -> Result<Transcript> {
    let planned = plan(ca, file)?;
    let now = ca.clock.now().trunc_subsecs(0);
    let root_keys = match &file.root_keys {
        Some(r) => Some(root_store(&ca.config, r)?),
        None => None,
    };
    if let Some(store) = &root_keys {
        store.require_passphrase()?;
    }
    let mut made: Vec<NewCa> = Vec::new();
    let mut responders: Vec<(Step, CertificateRow, OcspResponderRow)> = Vec::new();
    let mut opened: Vec<(String, Authority)> = Vec::new();
    for p in &planned {
        let name = p.step.authority().to_string();
        let def = ca
            .policy
            .authority(&name)
            .cloned()
            .ok_or_else(|| CaError::Ceremony(format!("{name} is not in the policy")))?;
        match &p.step {
            Step::Root { .. } => {
                let store = root_keys
                    .as_ref()
                    .ok_or_else(|| CaError::Ceremony("a root step needs [root_keys]".into()))?;
                made.push(create_ca(ca, store, &def, None, now)?);
            }
            Step::IssuingCa { .. } => {
                let parent = def.parent.clone().unwrap_or_default();
                let signing = signer_for(ca, &made, &mut opened, root_keys.as_ref(), &parent)?;
                let new = {
                    let issuer = match &signing {
                        Signing::Made(i) => issuer_of(&made[*i]),
                        Signing::Stored(a) => Issuer::of(a),
                    };
                    create_ca(ca, &ca.keys, &def, Some(&issuer), now)?
                };
                if let Signing::Stored(a) = signing {
                    opened.push((parent, *a));
                }
                made.push(new);
            }
            Step::Responder { .. } => {
                ca.responder_keys.require_passphrase()?;
                let signing = signer_for(ca, &made, &mut opened, root_keys.as_ref(), &name)?;
                let (cert, row) = {
                    let issuer = match &signing {
                        Signing::Made(i) => issuer_of(&made[*i]),
                        Signing::Stored(a) => Issuer::of(a),
                    };
                    create_responder(ca, &issuer, &def.common_name, now)?
                };
                if let Signing::Stored(a) = signing {
                    opened.push((name.clone(), *a));
                }
                responders.push((p.step.clone(), cert, row));
            }
        }
    }

    let mut entries = Vec::new();
    let root_names: Vec<String> = file
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Root { authority } => Some(authority.clone()),
            _ => None,
        })
        .collect();
    let stored_ref = |c: &NewCa| {
        if root_names.contains(&c.def_name) {
            format!("{OFFLINE_PREFIX}{}", c.key_ref)
        } else {
            c.key_ref.clone()
        }
    };
    for (p, c) in planned
        .iter()
        .filter(|p| !matches!(p.step, Step::Responder { .. }))
        .zip(&made)
    {
        entries.push(entry(&p.step, c.def_name.clone(), &c.cert, &stored_ref(c))?);
    }
    for (step, cert, row) in &responders {
        entries.push(entry(
            step,
            format!("{} OCSP responder", row.authority),
            cert,
            &row.key_ref,
        )?);
    }
    let transcript = Transcript {
        ceremony: file.id.clone(),
        at: now.to_rfc3339(),
        operators: file.operators.clone(),
        actor: ca.actor.clone(),
        entries,
    };

    let actor = ca.actor.clone();
    let rows: Vec<AuthorityRow> = made.iter().map(|c| c.row(stored_ref(c), now)).collect();
    ca.db.write(&actor, now, |tx| {
        for row in &rows {
            if pki_store::authorities::list(tx.db)?
                .iter()
                .any(|a| a.name == row.name)
            {
                return Err(CaError::Ceremony(format!(
                    "authority {} was created meanwhile; nothing stored",
                    row.name
                )));
            }
            with_conn!(tx.db, c => diesel::insert_into(authorities::table).values(row).execute(c))?;
        }
        let mut certs: Vec<CertificateRow> = made.iter().map(|c| c.cert.clone()).collect();
        certs.extend(responders.iter().map(|(_, c, _)| c.clone()));
        pki_store::certificates::insert(tx.db, &certs)?;
        for (_, _, row) in &responders {
            with_conn!(tx.db, c => diesel::insert_into(ocsp_responders::table).values(row).execute(c))?;
        }
        for c in &made {
            tx.audit(AuditAction::CaCreate, &c.def_name, c.audit_details());
        }
        for (_, cert, row) in &responders {
            tx.audit(
                AuditAction::OcspResponderCreate,
                &row.authority,
                serde_json::json!({"serial": cert.serial, "subject": cert.subject, "key_ref": row.key_ref,
                                   "not_after": row.not_after.and_utc().to_rfc3339()}),
            );
        }
        let details = serde_json::to_value(&transcript)
            .map_err(|e| CaError::Ceremony(format!("transcript: {e}")))?;
        tx.audit(AuditAction::Ceremony, &file.id, details);
        Ok::<_, CaError>(())
    })?;
    write_transcript(&file.transcript, &transcript)?;
    Ok(transcript)
}

/// The signing CA of a step: made earlier in this ceremony, opened already,
/// or opened now (the root from the ceremony's store, another from the
/// online CA store).
fn signer_for(
    ca: &mut Ca,
    made: &[NewCa],
    opened: &mut Vec<(String, Authority)>,
    root_keys: Option<&KeyStore>,
    name: &str,
) -> Result<Signing> {
    if let Some(i) = made.iter().position(|c| c.def_name == name) {
        return Ok(Signing::Made(i));
    }
    if let Some(i) = opened.iter().position(|(n, _)| n == name) {
        return Ok(Signing::Stored(Box::new(opened.remove(i).1)));
    }
    let unopened = load_row(&mut ca.db, name)?;
    let authority = if is_offline(unopened.row()) {
        let store = root_keys.ok_or_else(|| {
            CaError::Ceremony(format!(
                "{name}'s key is offline: give [root_keys] to sign with it"
            ))
        })?;
        unopened.open_offline(store)?
    } else {
        unopened.open(&ca.keys)?
    };
    Ok(Signing::Stored(Box::new(authority)))
}

/// Writes the transcript to a new file (text, then the JSON); never overwrites.
fn write_transcript(path: &Path, transcript: &Transcript) -> Result<()> {
    use std::io::Write;
    let json = serde_json::to_string_pretty(transcript)
        .map_err(|e| CaError::Ceremony(format!("transcript: {e}")))?;
    let text = format!("{}\n--- JSON ---\n{json}\n", transcript.text());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| CaError::Ceremony(format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| {
            CaError::Ceremony(format!(
                "cannot create the transcript {}: {e} (the ceremony is stored in the audit log)",
                path.display()
            ))
        })?;
    f.write_all(text.as_bytes())
        .map_err(|e| CaError::Ceremony(format!("writing {}: {e}", path.display())))
}
