-- Typed revocation requests (SQLite): the overloaded `detail` column (an
-- invalidity date, a suspension cause or an identity status, depending on
-- `change`) becomes three typed columns; the data is kept. The PostgreSQL
-- migration of the same name is the same change in PostgreSQL's dialect.
-- SQLite cannot add a constraint to a table: the table is rebuilt.
CREATE TABLE revocation_requests_typed (
    id TEXT PRIMARY KEY NOT NULL,
    event_id TEXT REFERENCES registry_events (id),
    change TEXT NOT NULL CHECK (change IN ('revoke', 'suspend', 'resume', 'identity-status')),
    reason TEXT CHECK (reason IN ('keyCompromise', 'cACompromise', 'affiliationChanged',
        'superseded', 'cessationOfOperation', 'privilegeWithdrawn')),
    scope TEXT NOT NULL CHECK (scope IN ('card', 'card-mobile', 'holder', 'holder-residence', 'serial')),
    target TEXT NOT NULL,
    -- change = 'revoke': since when the key is known to be unusable.
    invalidity_date TIMESTAMP,
    -- change = 'suspend' / 'resume': the suspension cause set or released.
    suspension_cause TEXT CHECK (suspension_cause IN ('officer', 'identity-suspended', 'follows-card')),
    -- change = 'identity-status': the identity's new registry status.
    identity_status TEXT CHECK (identity_status IN ('active', 'suspended', 'inactive')),
    after_card TEXT REFERENCES cards (card_number),
    received_at TIMESTAMP NOT NULL,
    due_at TIMESTAMP,
    state TEXT NOT NULL CHECK (state IN ('pending', 'executed')),
    executed_at TIMESTAMP,
    feed_position BIGINT,
    certificates BIGINT,
    issuers TEXT,
    ocsp_published_at TIMESTAMP,
    crl_published_at TIMESTAMP,
    CHECK ((state = 'executed') = (executed_at IS NOT NULL)),
    CHECK (change = 'revoke' OR (reason IS NULL AND invalidity_date IS NULL)),
    CHECK ((change IN ('suspend', 'resume')) = (suspension_cause IS NOT NULL)),
    CHECK ((change = 'identity-status') = (identity_status IS NOT NULL))
);
INSERT INTO revocation_requests_typed
    SELECT id, event_id, change, reason, scope, target,
        CASE WHEN change = 'revoke' THEN replace(detail, 'T', ' ') END,
        CASE WHEN change IN ('suspend', 'resume') THEN detail END,
        CASE WHEN change = 'identity-status' THEN detail END,
        after_card, received_at, due_at, state, executed_at, feed_position, certificates,
        issuers, ocsp_published_at, crl_published_at
    FROM revocation_requests;
DROP TABLE revocation_requests;
ALTER TABLE revocation_requests_typed RENAME TO revocation_requests;
CREATE INDEX revocation_requests_due ON revocation_requests (state, due_at);
CREATE INDEX revocation_requests_received ON revocation_requests (received_at);

-- Keys that must never be certified again (CPS 4.9.1, 3.2.1): the SHA-256
-- of the SubjectPublicKeyInfo of a certificate revoked for keyCompromise,
-- or of a key an officer blocked by hand.
CREATE TABLE blocked_keys (
    public_key_sha256 TEXT PRIMARY KEY NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('key-compromise', 'officer')),
    -- The revoked certificate that made it known, when there is one.
    certificate_serial TEXT REFERENCES certificates (serial),
    blocked_at TIMESTAMP NOT NULL,
    comment TEXT
);
-- Blocked keys of certificates already revoked for keyCompromise.
INSERT INTO blocked_keys (public_key_sha256, source, certificate_serial, blocked_at)
    SELECT public_key_sha256, 'key-compromise', min(serial), min(revoked_at)
    FROM certificates WHERE status = 'revoked' AND revocation_reason = 'keyCompromise'
    GROUP BY public_key_sha256;
-- Certificates by key (the blocked-key check and its back-fill).
CREATE INDEX certificates_public_key ON certificates (public_key_sha256);
