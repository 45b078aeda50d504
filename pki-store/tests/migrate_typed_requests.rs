//! Migration 000004 keeps the data: a database is created with the three
//! earlier migrations, filled with the SQL the previous code wrote
//! (revocation requests whose `detail` column held an invalidity date, a
//! suspension cause or an identity status; a certificate revoked for
//! keyCompromise), refused by `Db::connect` (older schema), then migrated by `Db::migrate`, and every row is read
//! back through the typed models. On SQLite always, and on PostgreSQL when
//! `PKI_TEST_POSTGRES_URL` is set (always in CI).

use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use pki_store::domain::{
    IdentityStatus, KeyBlockSource, Reason, RequestKind, RequestState, ScopeKind, SuspensionCause,
};
use pki_store::storage::models::{BlockedKeyRow, RevocationRequestRow};
use pki_store::storage::schema::{blocked_keys, revocation_requests};
use pki_store::storage::{pg_drop_schema, pg_fresh_schema, Db};
use pki_store::with_conn;

const PG: EmbeddedMigrations = embed_migrations!("../migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");

/// The rows as the code before migration 000004 wrote them.
const PREVIOUS_ROWS: &str = "
INSERT INTO identities VALUES ('MC1', 'Rossi', 'Marco', NULL, '1980-01-01 00:00:00', 'Monaco',
    'M', 'town-hall', 'active', FALSE, NULL, NULL, '2026-11-01 00:00:00');
INSERT INTO cards VALUES ('ID1', 'identity', 'MC1', '2026-01-01', '2036-01-01', '2026-11-01 00:00:00');
INSERT INTO registry_events VALUES ('ev', 'card-lost', 'aa', '{}', 'test', '2026-11-20 10:00:00',
    '2026-11-20 10:00:00');
INSERT INTO revocation_requests (id, event_id, change, reason, scope, target, detail, after_card,
    received_at, due_at, state, executed_at, feed_position, certificates, issuers,
    ocsp_published_at, crl_published_at) VALUES
 ('ev#1', 'ev', 'revoke', 'keyCompromise', 'card', 'ID1', '2026-11-19T08:30:00', NULL,
    '2026-11-20 10:00:00', '2026-11-20 10:00:00', 'executed', '2026-11-20 10:00:01', 7, 2,
    'identity-card-ca', '2026-11-20 10:00:02', '2026-11-20 10:01:00'),
 ('ev#2', 'ev', 'revoke', NULL, 'holder', 'MC1', NULL, NULL,
    '2026-11-20 10:00:00', '2026-11-20 10:00:00', 'pending', NULL, NULL, NULL, NULL, NULL, NULL),
 ('ev#3', 'ev', 'suspend', NULL, 'holder', 'MC1', 'identity-suspended', NULL,
    '2026-11-20 10:00:00', '2026-11-20 10:00:00', 'pending', NULL, NULL, NULL, NULL, NULL, NULL),
 ('ev#4', 'ev', 'resume', NULL, 'holder', 'MC1', 'identity-suspended', 'ID1',
    '2026-11-20 10:00:00', NULL, 'pending', NULL, NULL, NULL, NULL, NULL, NULL),
 ('ev#5', 'ev', 'identity-status', NULL, 'holder', 'MC1', 'inactive', NULL,
    '2026-11-20 10:00:00', '2026-11-21 00:00:00', 'pending', NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO authorities VALUES ('identity-card-ca', 'issuing-ca', NULL, 'k', 'ecdsa-p384', 'c0',
    @BLOB@, @BLOB@, '2040-01-01 00:00:00', 'identity', '2026-01-01 00:00:00');
INSERT INTO certificates (serial, issuer, profile, kind, usage, card_number, holder_key, subject,
    not_before, not_after, status, public_key_sha256, der, issued_at, revoked_at, revocation_reason,
    invalidity_date, crl_partition) VALUES
 ('c0', 'identity-card-ca', 'issuing-ca', 'issuing-ca', NULL, NULL, NULL, 'CN=CA',
    '2026-01-01 00:00:00', '2040-01-01 00:00:00', 'active', 'ca-key', @BLOB@, '2026-01-01 00:00:00',
    NULL, NULL, NULL, 0),
 ('c1', 'identity-card-ca', 'card-auth', 'end-entity', 'auth', 'ID1', 'MC1', 'CN=Marco',
    '2026-01-01 00:00:00', '2029-01-01 00:00:00', 'revoked', 'lost-key', @BLOB@, '2026-01-01 00:00:00',
    '2026-11-20 10:00:01', 'keyCompromise', NULL, 0),
 ('c2', 'identity-card-ca', 'card-sign', 'end-entity', 'sign', 'ID1', 'MC1', 'CN=Marco',
    '2026-01-01 00:00:00', '2029-01-01 00:00:00', 'revoked', 'other-key', @BLOB@, '2026-01-01 00:00:00',
    '2026-11-20 10:00:01', 'superseded', NULL, 0);
";

fn t(s: &str) -> NaiveDateTime {
    s.parse().unwrap()
}

/// Only `pki-admin migrate` (`Db::migrate`) changes the schema: opening a
/// database that lacks a migration is refused, naming the missing one.
fn refuses_the_older_schema(url: &str) {
    let Err(e) = Db::connect(url) else {
        panic!("a schema without the fourth migration was opened");
    };
    assert!(
        matches!(e, pki_store::storage::StorageError::SchemaOlder { ref missing, .. } if missing.contains("000004")),
        "{e}"
    );
}

fn check_migrated(db: &mut Db) {
    let rows: Vec<RevocationRequestRow> = with_conn!(db, c => revocation_requests::table
        .order(revocation_requests::id)
        .select(RevocationRequestRow::as_select())
        .load(c))
    .unwrap();
    assert_eq!(rows.len(), 5);
    let r = &rows[0];
    assert_eq!(
        (r.change, r.reason, r.scope, r.state),
        (
            RequestKind::Revoke,
            Some(Reason::KeyCompromise),
            ScopeKind::Card,
            RequestState::Executed
        )
    );
    assert_eq!(r.invalidity_date, Some(t("2026-11-19T08:30:00")));
    assert_eq!((r.suspension_cause, r.identity_status), (None, None));
    assert_eq!(r.feed_position, Some(7));
    assert_eq!(r.crl_published_at, Some(t("2026-11-20T10:01:00")));
    let r = &rows[1];
    assert_eq!(
        (r.change, r.reason, r.invalidity_date),
        (RequestKind::Revoke, None, None)
    );
    let r = &rows[2];
    assert_eq!(
        (r.change, r.suspension_cause, r.identity_status),
        (
            RequestKind::Suspend,
            Some(SuspensionCause::IdentitySuspended),
            None
        )
    );
    let r = &rows[3];
    assert_eq!(
        (
            r.change,
            r.suspension_cause,
            r.after_card.as_deref(),
            r.due_at
        ),
        (
            RequestKind::Resume,
            Some(SuspensionCause::IdentitySuspended),
            Some("ID1"),
            None
        )
    );
    let r = &rows[4];
    assert_eq!(
        (r.change, r.identity_status, r.suspension_cause),
        (
            RequestKind::IdentityStatus,
            Some(IdentityStatus::Inactive),
            None
        )
    );
    assert_eq!(r.due_at, Some(t("2026-11-21T00:00:00")));

    // The key of the certificate revoked for keyCompromise is blocked.
    let blocked: Vec<BlockedKeyRow> = with_conn!(db, c => blocked_keys::table
        .select(BlockedKeyRow::as_select())
        .load(c))
    .unwrap();
    assert_eq!(blocked.len(), 1, "{blocked:?}");
    assert_eq!(blocked[0].public_key_sha256, "lost-key");
    assert_eq!(blocked[0].source, KeyBlockSource::KeyCompromise);
    assert_eq!(blocked[0].certificate_serial.as_deref(), Some("c1"));

    // The new constraints hold: a suspension without its cause is refused.
    let refused = with_conn!(db, c => c.batch_execute(
        "INSERT INTO revocation_requests (id, change, scope, target, received_at, state) \
         VALUES ('bad', 'suspend', 'holder', 'MC1', '2026-11-20 10:00:00', 'pending')"));
    assert!(
        refused.is_err(),
        "a suspend request without a cause was stored"
    );
}

#[test]
fn sqlite_requests_keep_their_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pki.sqlite");
    {
        let mut c = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        for _ in 0..3 {
            c.run_next_migration(SQLITE).unwrap();
        }
        let rows = PREVIOUS_ROWS.replace("@BLOB@", "X'00'");
        c.batch_execute(&format!("BEGIN; {rows} COMMIT;")).unwrap();
    }
    let url = format!("sqlite://{}", path.display());
    refuses_the_older_schema(&url);
    let (mut db, applied) = Db::migrate(&url).unwrap();
    assert!(
        applied.iter().any(|v| v.contains("000004")),
        "the fourth migration is applied: {applied:?}"
    );
    check_migrated(&mut db);
}

#[test]
fn postgres_requests_keep_their_data() {
    let Ok(base) = std::env::var("PKI_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "PKI_TEST_POSTGRES_URL must be set in CI"
        );
        eprintln!("PKI_TEST_POSTGRES_URL not set: PostgreSQL migration test skipped");
        return;
    };
    let schema = format!("migrate_000004_{}", std::process::id());
    let url = pg_fresh_schema(&base, &schema).unwrap();
    {
        let mut c = PgConnection::establish(&url).unwrap();
        for _ in 0..3 {
            c.run_next_migration(PG).unwrap();
        }
        let rows = PREVIOUS_ROWS.replace("@BLOB@", "decode('00', 'hex')");
        c.batch_execute(&format!("BEGIN; {rows} COMMIT;")).unwrap();
    }
    refuses_the_older_schema(&url);
    let (mut db, applied) = Db::migrate(&url).unwrap();
    assert!(
        applied.iter().any(|v| v.contains("000004")),
        "the fourth migration is applied: {applied:?}"
    );
    check_migrated(&mut db);
    drop(db);
    pg_drop_schema(&base, &schema).unwrap();
}
