-- Typed revocation requests (PostgreSQL): the overloaded `detail` column (an
-- invalidity date, a suspension cause or an identity status, depending on
-- `change`) becomes three typed columns; the data is kept. The SQLite
-- migration of the same name is the same change in SQLite's dialect.
ALTER TABLE revocation_requests
    ADD COLUMN invalidity_date TIMESTAMP,
    ADD COLUMN suspension_cause TEXT
        CHECK (suspension_cause IN ('officer', 'identity-suspended', 'follows-card')),
    ADD COLUMN identity_status TEXT
        CHECK (identity_status IN ('active', 'suspended', 'inactive'));
UPDATE revocation_requests SET invalidity_date = detail::timestamp
    WHERE change = 'revoke' AND detail IS NOT NULL;
UPDATE revocation_requests SET suspension_cause = detail WHERE change IN ('suspend', 'resume');
UPDATE revocation_requests SET identity_status = detail WHERE change = 'identity-status';
ALTER TABLE revocation_requests
    DROP COLUMN detail,
    ADD CHECK (reason IN ('keyCompromise', 'cACompromise', 'affiliationChanged',
        'superseded', 'cessationOfOperation', 'privilegeWithdrawn')),
    ADD CHECK (change = 'revoke' OR (reason IS NULL AND invalidity_date IS NULL)),
    ADD CHECK ((change IN ('suspend', 'resume')) = (suspension_cause IS NOT NULL)),
    ADD CHECK ((change = 'identity-status') = (identity_status IS NOT NULL));

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
