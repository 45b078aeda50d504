-- Initial schema of the national eID CA (SQLite).
-- The PostgreSQL migration of the same name is the same schema in PostgreSQL's dialect.

CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY CHECK (seq > 0),
    at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);

-- The audit log is append-only: the application never updates or deletes a
-- record, and the database refuses to. (Someone who can drop these triggers
-- can still alter rows; `pki-admin audit verify` then finds them.)
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TABLE identities (
    registry_key TEXT PRIMARY KEY NOT NULL,
    family_name TEXT NOT NULL CHECK (family_name <> ''),
    given_names TEXT NOT NULL CHECK (given_names <> ''),
    birth_name TEXT,
    birth_datetime TIMESTAMP NOT NULL,
    birth_place TEXT NOT NULL,
    gender TEXT NOT NULL CHECK (gender IN ('F', 'M', 'X')),
    authority TEXT NOT NULL CHECK (authority IN ('town-hall', 'residents-section')),
    status TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'inactive')),
    protected_adult BOOLEAN NOT NULL,
    email TEXT,
    mobile TEXT,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE cards (
    card_number TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('identity', 'residence')),
    holder_key TEXT NOT NULL REFERENCES identities (registry_key),
    issue_date DATE NOT NULL,
    expiry_date DATE NOT NULL,
    registered_at TIMESTAMP NOT NULL,
    CHECK (expiry_date > issue_date)
);
CREATE INDEX cards_holder ON cards (holder_key);

CREATE TABLE authorities (
    name TEXT PRIMARY KEY NOT NULL,
    profile TEXT NOT NULL,
    parent TEXT REFERENCES authorities (name),
    key_ref TEXT NOT NULL,
    key_algorithm TEXT NOT NULL,
    certificate_serial TEXT NOT NULL REFERENCES certificates (serial) DEFERRABLE INITIALLY DEFERRED,
    subject_der BLOB NOT NULL,
    key_id BLOB NOT NULL,
    not_after TIMESTAMP NOT NULL,
    card_kind TEXT UNIQUE CHECK (card_kind IN ('identity', 'residence')),
    created_at TIMESTAMP NOT NULL
);

-- The serial is the primary key: unique across all issuers (and so per
-- issuer too, see certificates_issuer_serial), and never reused.
CREATE TABLE certificates (
    serial TEXT PRIMARY KEY NOT NULL,
    issuer TEXT NOT NULL REFERENCES authorities (name) DEFERRABLE INITIALLY DEFERRED,
    profile TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('root-ca', 'issuing-ca', 'ocsp-responder', 'end-entity')),
    usage TEXT CHECK (usage IN ('auth', 'sign', 'mobile-auth')),
    card_number TEXT REFERENCES cards (card_number),
    holder_key TEXT REFERENCES identities (registry_key),
    subject TEXT NOT NULL,
    not_before TIMESTAMP NOT NULL,
    not_after TIMESTAMP NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('hold', 'active', 'suspended', 'revoked', 'expired')),
    public_key_sha256 TEXT NOT NULL,
    der BLOB NOT NULL,
    issued_at TIMESTAMP NOT NULL,
    -- When the certificate was revoked or suspended, why (RFC 5280 CRLReason
    -- name; NULL = no reason code, e.g. a holder's request) and since when
    -- the key is known to be unusable (invalidityDate).
    revoked_at TIMESTAMP,
    revocation_reason TEXT CHECK (revocation_reason IN ('keyCompromise', 'cACompromise', 'affiliationChanged',
        'superseded', 'cessationOfOperation', 'certificateHold', 'privilegeWithdrawn')),
    invalidity_date TIMESTAMP,
    -- The CRL partition that lists the certificate, fixed at issuance and
    -- written into its CRL distribution point.
    crl_partition INTEGER NOT NULL DEFAULT 0 CHECK (crl_partition >= 0),
    CHECK (not_after > not_before),
    CHECK ((status IN ('revoked', 'suspended')) = (revoked_at IS NOT NULL)),
    CHECK (status IN ('revoked', 'suspended') OR (revocation_reason IS NULL AND invalidity_date IS NULL)),
    CHECK ((status = 'suspended') = (revocation_reason IS NOT NULL AND revocation_reason = 'certificateHold')),
    CHECK ((kind = 'end-entity') = (usage IS NOT NULL AND card_number IS NOT NULL AND holder_key IS NOT NULL))
);
-- One live certificate per card and usage.
CREATE UNIQUE INDEX certificates_one_live_per_card_usage ON certificates (card_number, usage)
    WHERE status IN ('hold', 'active', 'suspended');
CREATE UNIQUE INDEX certificates_issuer_serial ON certificates (issuer, serial);
CREATE INDEX certificates_issuer_status ON certificates (issuer, status);

CREATE TABLE ocsp_responders (
    certificate_serial TEXT PRIMARY KEY NOT NULL REFERENCES certificates (serial),
    authority TEXT NOT NULL REFERENCES authorities (name),
    key_ref TEXT NOT NULL,
    key_algorithm TEXT NOT NULL,
    not_after TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE issuance_batches (
    id TEXT PRIMARY KEY NOT NULL,
    source TEXT NOT NULL,
    entries BIGINT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP
);

CREATE TABLE issuance_batch_entries (
    batch_id TEXT NOT NULL REFERENCES issuance_batches (id),
    line_no BIGINT NOT NULL,
    certificate_serial TEXT NOT NULL UNIQUE REFERENCES certificates (serial),
    PRIMARY KEY (batch_id, line_no)
);
