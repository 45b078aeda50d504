//! The national registry's identities as the CA knows them (the pivot
//! identity plus what issuance and notices need), and their import from a
//! registry extract: validated whole before anything is written, then
//! created or updated in one audited transaction.

use diesel::prelude::*;
use pki_store::domain::AuditAction;
use pki_store::domain::{Gender, IdentityStatus, RegistrationAuthority};
use pki_store::error::{CaError, Result};
use pki_store::fields;
use pki_store::input::{self, FieldReader, Format, Problems};
use pki_store::storage::db_time;
use pki_store::storage::models::IdentityRow;
use pki_store::storage::schema::identities;
use pki_store::with_conn;
use pki_store::Context;
use std::collections::HashMap;
use std::path::Path;

/// The columns of a registry extract.
pub const FIELDS: &[&str] = &[
    "registry_key",
    "family_name",
    "given_names",
    "birth_name",
    "birth_datetime",
    "birth_place",
    "gender",
    "authority",
    "status",
    "protected_adult",
    "email",
    "mobile",
];

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportSummary {
    pub total: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Status changes recorded as registry events (their requests run when due).
    pub status_events: usize,
}

/// Reads one identity; every problem of the line goes to `p`.
fn parse_identity(
    r: &FieldReader<'_>,
    now: chrono::NaiveDateTime,
    p: &mut Problems,
) -> Option<IdentityRow> {
    for e in r.unknown(FIELDS) {
        p.add(e);
    }
    let registry_key = p.take(r.required("registry_key").and_then(|k| {
        pki_x509::name::check_registry_key(&k)
            .map(|()| k)
            .map_err(|e| r.error("registry_key", e.to_string()))
    }));
    let birth_datetime = p.take(r.required("birth_datetime").and_then(|v| {
        let t = input::parse_birth_datetime(&v).map_err(|m| r.error("birth_datetime", m))?;
        if t > now {
            return Err(r.error("birth_datetime", "is in the future"));
        }
        Ok(t)
    }));
    let protected_adult =
        p.take(
            r.required("protected_adult")
                .and_then(|v| match v.to_lowercase().as_str() {
                    "true" | "1" | "yes" => Ok(true),
                    "false" | "0" | "no" => Ok(false),
                    other => {
                        Err(r.error("protected_adult", format!("{other:?} is not true or false")))
                    }
                }),
        );
    let email = p.take(r.optional("email").and_then(|e| {
        if let Some(e) = &e {
            fields::check_email(e).map_err(|m| r.error("email", m))?;
        }
        Ok(e)
    }));
    let mobile = p.take(r.optional("mobile").and_then(|m| {
        if let Some(m) = &m {
            fields::check_mobile(m).map_err(|msg| r.error("mobile", msg))?;
        }
        Ok(m)
    }));
    let family_name = p.take(r.required("family_name"));
    let given_names = p.take(r.required("given_names"));
    let birth_name = p.take(r.optional("birth_name"));
    let birth_place = p.take(r.required("birth_place"));
    let gender = p.take(r.parsed::<Gender>("gender"));
    let authority = p.take(r.parsed::<RegistrationAuthority>("authority"));
    let status = p.take(r.parsed::<IdentityStatus>("status"));
    Some(IdentityRow {
        registry_key: registry_key?,
        family_name: family_name?,
        given_names: given_names?,
        birth_name: birth_name?,
        birth_datetime: birth_datetime?,
        birth_place: birth_place?,
        gender: gender?,
        authority: authority?,
        status: status?,
        protected_adult: protected_adult?,
        email: email?,
        mobile: mobile?,
        updated_at: now,
    })
}

/// The fields that differ between two versions of an identity.
fn changed_fields(old: &IdentityRow, new: &IdentityRow) -> Vec<&'static str> {
    let mut changed = Vec::new();
    macro_rules! cmp {
        ($($f:ident),*) => { $( if old.$f != new.$f { changed.push(stringify!($f)); } )* };
    }
    cmp!(
        family_name,
        given_names,
        birth_name,
        birth_datetime,
        birth_place,
        gender,
        authority,
        status,
        protected_adult,
        email,
        mobile
    );
    changed
}

/// Reads and validates a whole extract; nothing is written. Every problem
/// of the file is reported (up to [`input::MAX_REPORTED`]), each with its
/// line and field.
pub fn parse_file(
    path: &Path,
    format: Format,
    now: chrono::NaiveDateTime,
) -> Result<Vec<IdentityRow>> {
    let file = path.display().to_string();
    let mut problems = Problems::new(file.clone());
    let records = input::read_records(path, format, &mut problems)?;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut rows = Vec::with_capacity(records.len());
    for record in &records {
        let reader = FieldReader {
            file: &file,
            record,
        };
        let Some(row) = parse_identity(&reader, now, &mut problems) else {
            continue;
        };
        if let Some(first) = seen.insert(row.registry_key.clone(), record.line) {
            problems.add(reader.error(
                "registry_key",
                format!("{} already appears on line {first}", row.registry_key),
            ));
        }
        rows.push(row);
    }
    problems.finish()?;
    Ok(rows)
}

/// Imports an extract: all of it, or (on any error) none of it.
pub fn import(ca: &mut Context, path: &Path, format: Format) -> Result<ImportSummary> {
    let now = db_time(ca.clock.now());
    let rows = parse_file(path, format, now)?;
    let file_sha256 =
        pki_x509::sha256_hex(&std::fs::read(path).map_err(|source| CaError::ReadFile {
            path: path.display().to_string(),
            source,
        })?);
    let source = path.display().to_string();
    ca.db.write(&ca.actor, ca.clock.now(), |tx| {
        let keys: Vec<String> = rows.iter().map(|r| r.registry_key.clone()).collect();
        let existing = pki_store::lookup::identities_by_key(tx.db, &keys)?;
        let mut summary = ImportSummary {
            total: rows.len(),
            ..Default::default()
        };
        let mut inserts = Vec::new();
        for row in &rows {
            match existing.get(&row.registry_key) {
                None => {
                    inserts.push(row.clone());
                    tx.audit(AuditAction::RegistryCreate, &row.registry_key, serde_json::json!({"source_sha256": file_sha256}));
                    summary.created += 1;
                }
                Some(old) => {
                    let changed = changed_fields(old, row);
                    if changed.is_empty() {
                        summary.unchanged += 1;
                        continue;
                    }
                    with_conn!(tx.db, c => diesel::update(identities::table.find(&row.registry_key)).set(row).execute(c))
                        .map_err(pki_store::storage::StorageError::from)?;
                    tx.audit(
                        AuditAction::RegistryUpdate,
                        &row.registry_key,
                        serde_json::json!({"source_sha256": file_sha256, "changed": changed}),
                    );
                    summary.updated += 1;
                    if old.status != row.status {
                        status_event(tx, old, row, &file_sha256, &source)?;
                        summary.status_events += 1;
                    }
                }
            }
        }
        for chunk in inserts.chunks(200) {
            with_conn!(tx.db, c => diesel::insert_into(identities::table).values(chunk).execute(c))
                .map_err(pki_store::storage::StorageError::from)?;
        }
        tx.audit(
            AuditAction::RegistryImport,
            &source,
            serde_json::json!({"sha256": file_sha256, "total": summary.total, "created": summary.created,
                               "updated": summary.updated, "unchanged": summary.unchanged}),
        );
        Ok::<_, CaError>(summary)
    })
}

/// A status changed by an import is a registry event (CPS 4.9.2): the
/// certificates follow it (suspended, released or revoked), recorded as
/// requests in the import's transaction and executed when due (at once).
fn status_event(
    tx: &mut pki_store::storage::WriteTx<'_>,
    old: &IdentityRow,
    new: &IdentityRow,
    file_sha256: &str,
    source: &str,
) -> Result<()> {
    use crate::events::EventKind;
    let kind = match (old.status, new.status) {
        (_, IdentityStatus::Suspended) => EventKind::IdentitySuspended,
        (_, IdentityStatus::Inactive) => EventKind::IdentityInactive,
        (IdentityStatus::Suspended, IdentityStatus::Active) => EventKind::IdentityReactivated,
        _ => return Ok(()),
    };
    let raw = serde_json::json!({
        "id": format!("registry-import-{}-{}", &file_sha256[..16], new.registry_key),
        "type": kind.as_str(),
        "holder": new.registry_key,
    });
    let event = crate::requests::parse(&raw).map_err(|message| CaError::Field {
        field: "status".into(),
        message,
    })?;
    let checked = crate::events::check(event, tx.at().and_utc())?;
    crate::requests::record_in(tx, &checked, &raw, source)?;
    Ok(())
}
