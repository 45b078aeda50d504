-- Lifecycle (PostgreSQL): holds and their causes, mobile certificates linked to
-- the card's authentication certificate, registry events and the revocation
-- requests they create, OCSP publication marks, and the expiry-reminder
-- outbox. The SQLite migration of the same name is the same schema in
-- SQLite's dialect.

-- Why a suspended certificate is on hold (CPS 4.9.13): a hold is released
-- only for its own cause. NULL on rows that are not suspended.
ALTER TABLE certificates ADD COLUMN suspension_cause TEXT
    CHECK (suspension_cause IN ('officer', 'identity-suspended', 'follows-card'));
-- A mobile-derived certificate: the card authentication certificate it was
-- derived from (CPS 4.9.1: it follows that certificate).
ALTER TABLE certificates ADD COLUMN linked_serial TEXT REFERENCES certificates (serial);
CREATE INDEX certificates_linked ON certificates (linked_serial) WHERE linked_serial IS NOT NULL;
-- Live certificates by end (expiry sweep, reminders).
CREATE INDEX certificates_status_not_after ON certificates (status, not_after);
CREATE INDEX certificates_holder ON certificates (holder_key);
-- A card's certificates, whatever their status (events, renewal).
CREATE INDEX certificates_card ON certificates (card_number);

-- Every registry event received, once: the id is the event's own (from the
-- feed) or one made by pki-admin; the same id again is a replay and changes
-- nothing (a different content under the same id is refused).
CREATE TABLE registry_events (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    content_sha256 TEXT NOT NULL,
    body TEXT NOT NULL,
    source TEXT NOT NULL,
    reported_at TIMESTAMP NOT NULL,
    recorded_at TIMESTAMP NOT NULL
);

-- What an event asks the CA to do, with its deadline. Executed by
-- pki-admin at once when due now, else by pki-scheduler when due.
CREATE TABLE revocation_requests (
    id TEXT PRIMARY KEY NOT NULL,
    event_id TEXT REFERENCES registry_events (id),
    change TEXT NOT NULL CHECK (change IN ('revoke', 'suspend', 'resume', 'identity-status')),
    reason TEXT,
    scope TEXT NOT NULL CHECK (scope IN ('card', 'card-mobile', 'holder', 'holder-residence', 'serial')),
    target TEXT NOT NULL,
    -- for change = 'suspend'/'resume': the hold cause set or released;
    -- for change = 'identity-status': the new registry status.
    detail TEXT,
    -- Execute once this card has a certificate (change of name or address).
    after_card TEXT REFERENCES cards (card_number),
    received_at TIMESTAMP NOT NULL,
    -- NULL while waiting for after_card.
    due_at TIMESTAMP,
    state TEXT NOT NULL CHECK (state IN ('pending', 'executed')),
    executed_at TIMESTAMP,
    -- The change feed position of the execution: a status service has
    -- published it once it has read the feed up to here.
    feed_position BIGINT,
    certificates BIGINT,
    -- Issuers whose certificates changed (comma-separated), for the CRL check.
    issuers TEXT,
    ocsp_published_at TIMESTAMP,
    crl_published_at TIMESTAMP,
    CHECK ((state = 'executed') = (executed_at IS NOT NULL))
);
CREATE INDEX revocation_requests_due ON revocation_requests (state, due_at);
CREATE INDEX revocation_requests_received ON revocation_requests (received_at);

-- Each time an OCSP responder has signed the statuses of the change feed up
-- to a position.
CREATE TABLE ocsp_publications (
    instance TEXT NOT NULL,
    feed_position BIGINT NOT NULL,
    published_at TIMESTAMP NOT NULL,
    PRIMARY KEY (instance, feed_position)
);
CREATE INDEX ocsp_publications_position ON ocsp_publications (feed_position);
CREATE INDEX crls_feed_position ON crls (issuer, feed_position);

-- Expiry reminders: one row per card, end date and offset, written in the
-- transaction that decides it (the outbox), then delivered.
CREATE TABLE reminders (
    card_number TEXT NOT NULL REFERENCES cards (card_number),
    not_after TIMESTAMP NOT NULL,
    offset_days INTEGER NOT NULL CHECK (offset_days > 0),
    holder_key TEXT NOT NULL REFERENCES identities (registry_key),
    -- Comma-separated serials of the card's certificates ending then.
    serials TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('email', 'postal')),
    recipient TEXT,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'dead', 'postal')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    -- A delivery in progress: nobody else sends it before this instant.
    claimed_until TIMESTAMP,
    last_error TEXT,
    decided_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP,
    PRIMARY KEY (card_number, not_after, offset_days),
    CHECK ((channel = 'email') = (recipient IS NOT NULL))
);
CREATE INDEX reminders_delivery ON reminders (state, next_attempt_at);
