-- CRL publication state (SQLite). The PostgreSQL migration of the same name
-- is the same schema in PostgreSQL's dialect. Owned by crl-publisher.

-- The CRL number sequence of each issuer, shared by its complete and delta
-- CRLs of every partition. A number is reserved here, in its own committed
-- transaction, BEFORE the CRL is signed: a crash after signing loses the
-- number, never reuses it, and two publishers never get the same one.
CREATE TABLE crl_numbers (
    issuer TEXT PRIMARY KEY NOT NULL REFERENCES authorities (name),
    last_number BIGINT NOT NULL CHECK (last_number >= 0)
);

-- Every CRL published (the newest of a scope is the current one).
CREATE TABLE crls (
    issuer TEXT NOT NULL REFERENCES authorities (name),
    number BIGINT NOT NULL CHECK (number > 0),
    crl_partition INTEGER NOT NULL CHECK (crl_partition >= 0),
    kind TEXT NOT NULL CHECK (kind IN ('complete', 'delta')),
    -- A delta CRL: the number of the complete CRL it applies to.
    base_number BIGINT,
    this_update TIMESTAMP NOT NULL,
    next_update TIMESTAMP NOT NULL,
    -- A complete CRL: certificates whose notAfter is at or before this
    -- instant (the thisUpdate of the previous complete CRL of the scope)
    -- were left out; NULL = none left out.
    expiry_cutoff TIMESTAMP,
    -- The audit chain's head when the entries were read (the change feed).
    feed_position BIGINT NOT NULL,
    entries BIGINT NOT NULL CHECK (entries >= 0),
    size_bytes BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    url TEXT NOT NULL,
    -- The file it was written to (absolute path).
    location TEXT NOT NULL,
    published_at TIMESTAMP NOT NULL,
    PRIMARY KEY (issuer, number),
    CHECK ((kind = 'delta') = (base_number IS NOT NULL)),
    CHECK (next_update > this_update)
);
CREATE INDEX crls_scope ON crls (issuer, crl_partition, kind, number);

-- The entries of a CRL, read in serial order per issuer and partition
-- (keyset pages). Partial: only listed certificates; covering, so that
-- SQLite answers from the index alone.
CREATE INDEX certificates_crl_entries ON certificates (issuer, crl_partition, serial,
    status, not_after, revoked_at, revocation_reason, invalidity_date, issued_at)
    WHERE status IN ('hold', 'suspended', 'revoked');

-- Listed certificates by expiry (the entries a delta CRL removes because
-- they expired).
CREATE INDEX certificates_crl_expiry ON certificates (issuer, crl_partition, not_after)
    WHERE status IN ('hold', 'suspended', 'revoked');
