//! The national registry's identities as the CA knows them (the pivot
//! identity plus what issuance and notices need), and their import from a
//! registry extract: validated whole before anything is written, then
//! created or updated in one audited transaction.

use diesel::prelude::*;
use pki_store::domain::AuditAction;
use pki_store::domain::{Gender, IdentityStatus, RegistrationAuthority};
use pki_store::error::{CaError, Result};
use pki_store::input::{self, FieldReader, Format};
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

fn text_field(r: &FieldReader<'_>, field: &str) -> Result<String> {
    let v = r.required(field)?;
    if v.chars().any(char::is_control) {
        return Err(r.error(field, "contains control characters"));
    }
    if v.chars().count() > 128 {
        return Err(r.error(field, "is longer than 128 characters"));
    }
    Ok(v)
}

fn parse_identity(r: &FieldReader<'_>, now: chrono::NaiveDateTime) -> Result<IdentityRow> {
    r.only(FIELDS)?;
    let registry_key = r.required("registry_key")?;
    pki_x509::name::check_registry_key(&registry_key)
        .map_err(|e| r.error("registry_key", e.to_string()))?;
    let birth_datetime = input::parse_birth_datetime(&r.required("birth_datetime")?)
        .map_err(|m| r.error("birth_datetime", m))?;
    if birth_datetime > now {
        return Err(r.error("birth_datetime", "is in the future"));
    }
    let protected_adult = match r.required("protected_adult")?.to_lowercase().as_str() {
        "true" | "1" | "yes" => true,
        "false" | "0" | "no" => false,
        other => return Err(r.error("protected_adult", format!("{other:?} is not true or false"))),
    };
    let email = r.optional("email");
    if let Some(e) = &email {
        let ok = e
            .split_once('@')
            .is_some_and(|(a, d)| !a.is_empty() && d.contains('.'))
            && !e.contains(' ');
        if !ok {
            return Err(r.error("email", format!("{e:?} is not an email address")));
        }
    }
    let mobile = r.optional("mobile");
    if let Some(m) = &mobile {
        let digits = m.strip_prefix('+').unwrap_or(m);
        if digits.len() < 6 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(r.error(
                "mobile",
                format!("{m:?} is not a phone number (+ and digits)"),
            ));
        }
    }
    Ok(IdentityRow {
        registry_key,
        family_name: text_field(r, "family_name")?,
        given_names: text_field(r, "given_names")?,
        birth_name: r.optional("birth_name"),
        birth_datetime,
        birth_place: text_field(r, "birth_place")?,
        gender: r.parsed::<Gender>("gender")?,
        authority: r.parsed::<RegistrationAuthority>("authority")?,
        status: r.parsed::<IdentityStatus>("status")?,
        protected_adult,
        email,
        mobile,
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

/// Reads and validates a whole extract; nothing is written.
pub fn parse_file(
    path: &Path,
    format: Format,
    now: chrono::NaiveDateTime,
) -> Result<Vec<IdentityRow>> {
    let file = path.display().to_string();
    let records = input::read_records(path, format)?;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut rows = Vec::with_capacity(records.len());
    for record in &records {
        let reader = FieldReader {
            file: &file,
            record,
        };
        let row = parse_identity(&reader, now)?;
        if let Some(first) = seen.insert(row.registry_key.clone(), record.line) {
            return Err(reader.error(
                "registry_key",
                format!("{} already appears on line {first}", row.registry_key),
            ));
        }
        rows.push(row);
    }
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
