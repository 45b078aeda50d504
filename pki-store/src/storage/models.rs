//! Rows as Rust structs, one per table, used for both reading and writing.

use super::schema::*;
use crate::domain::{
    CardKind, CertKind, CertStatus, Gender, IdentityStatus, KeyBlockSource, Reason,
    RegistrationAuthority, ReminderChannel, ReminderState, RequestKind, RequestState, ScopeKind,
    SuspensionCause, Usage,
};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = identities)]
#[diesel(treat_none_as_null = true)]
pub struct IdentityRow {
    pub registry_key: String,
    pub family_name: String,
    pub given_names: String,
    pub birth_name: Option<String>,
    pub birth_datetime: NaiveDateTime,
    pub birth_place: String,
    pub gender: Gender,
    pub authority: RegistrationAuthority,
    pub status: IdentityStatus,
    pub protected_adult: bool,
    pub email: Option<String>,
    pub mobile: Option<String>,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = cards)]
pub struct CardRow {
    pub card_number: String,
    pub kind: CardKind,
    pub holder_key: String,
    pub issue_date: NaiveDate,
    pub expiry_date: NaiveDate,
    pub registered_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = authorities)]
pub struct AuthorityRow {
    pub name: String,
    pub profile: String,
    pub parent: Option<String>,
    pub key_ref: String,
    pub key_algorithm: String,
    pub certificate_serial: String,
    pub subject_der: Vec<u8>,
    pub key_id: Vec<u8>,
    pub not_after: NaiveDateTime,
    pub card_kind: Option<CardKind>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = certificates)]
pub struct CertificateRow {
    pub serial: String,
    pub issuer: String,
    pub profile: String,
    pub kind: CertKind,
    pub usage: Option<Usage>,
    pub card_number: Option<String>,
    pub holder_key: Option<String>,
    pub subject: String,
    pub not_before: NaiveDateTime,
    pub not_after: NaiveDateTime,
    pub status: CertStatus,
    pub public_key_sha256: String,
    pub der: Vec<u8>,
    pub issued_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    pub revocation_reason: Option<Reason>,
    pub invalidity_date: Option<NaiveDateTime>,
    pub crl_partition: i32,
    pub suspension_cause: Option<SuspensionCause>,
    pub linked_serial: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = ocsp_responders)]
pub struct OcspResponderRow {
    pub certificate_serial: String,
    pub authority: String,
    pub key_ref: String,
    pub key_algorithm: String,
    pub not_after: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    pub seq: i64,
    pub at: NaiveDateTime,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = issuance_batches)]
pub struct BatchRow {
    pub id: String,
    pub source: String,
    pub entries: i64,
    pub started_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = issuance_batch_entries)]
pub struct BatchEntryRow {
    pub batch_id: String,
    pub line_no: i64,
    pub certificate_serial: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = registry_events)]
pub struct RegistryEventRow {
    pub id: String,
    pub kind: String,
    pub content_sha256: String,
    pub body: String,
    pub source: String,
    pub reported_at: NaiveDateTime,
    pub recorded_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = revocation_requests)]
pub struct RevocationRequestRow {
    pub id: String,
    pub event_id: Option<String>,
    pub change: RequestKind,
    pub reason: Option<Reason>,
    pub scope: ScopeKind,
    pub target: String,
    pub invalidity_date: Option<NaiveDateTime>,
    pub suspension_cause: Option<SuspensionCause>,
    pub identity_status: Option<IdentityStatus>,
    pub after_card: Option<String>,
    pub received_at: NaiveDateTime,
    pub due_at: Option<NaiveDateTime>,
    pub state: RequestState,
    pub executed_at: Option<NaiveDateTime>,
    pub feed_position: Option<i64>,
    pub certificates: Option<i64>,
    pub issuers: Option<String>,
    pub ocsp_published_at: Option<NaiveDateTime>,
    pub crl_published_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = reminders)]
pub struct ReminderRow {
    pub card_number: String,
    pub not_after: NaiveDateTime,
    pub offset_days: i32,
    pub holder_key: String,
    pub serials: String,
    pub channel: ReminderChannel,
    pub recipient: Option<String>,
    pub subject: String,
    pub body: String,
    pub state: ReminderState,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub claimed_until: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub decided_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = blocked_keys)]
pub struct BlockedKeyRow {
    pub public_key_sha256: String,
    pub source: KeyBlockSource,
    pub certificate_serial: Option<String>,
    pub blocked_at: NaiveDateTime,
    pub comment: Option<String>,
}
