DROP INDEX certificates_public_key;
DROP TABLE blocked_keys;
CREATE TABLE revocation_requests_untyped (
    id TEXT PRIMARY KEY NOT NULL,
    event_id TEXT REFERENCES registry_events (id),
    change TEXT NOT NULL CHECK (change IN ('revoke', 'suspend', 'resume', 'identity-status')),
    reason TEXT,
    scope TEXT NOT NULL CHECK (scope IN ('card', 'card-mobile', 'holder', 'holder-residence', 'serial')),
    target TEXT NOT NULL,
    detail TEXT,
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
    CHECK ((state = 'executed') = (executed_at IS NOT NULL))
);
INSERT INTO revocation_requests_untyped
    SELECT id, event_id, change, reason, scope, target,
        coalesce(replace(invalidity_date, ' ', 'T'), suspension_cause, identity_status),
        after_card, received_at, due_at, state, executed_at, feed_position, certificates,
        issuers, ocsp_published_at, crl_published_at
    FROM revocation_requests;
DROP TABLE revocation_requests;
ALTER TABLE revocation_requests_untyped RENAME TO revocation_requests;
CREATE INDEX revocation_requests_due ON revocation_requests (state, due_at);
CREATE INDEX revocation_requests_received ON revocation_requests (received_at);
