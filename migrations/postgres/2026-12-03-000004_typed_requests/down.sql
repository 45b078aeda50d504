DROP INDEX certificates_public_key;
DROP TABLE blocked_keys;
ALTER TABLE revocation_requests ADD COLUMN detail TEXT;
UPDATE revocation_requests SET detail = to_char(invalidity_date, 'YYYY-MM-DD"T"HH24:MI:SS.US')
    WHERE invalidity_date IS NOT NULL;
UPDATE revocation_requests SET detail = suspension_cause WHERE suspension_cause IS NOT NULL;
UPDATE revocation_requests SET detail = identity_status WHERE identity_status IS NOT NULL;
ALTER TABLE revocation_requests
    DROP COLUMN identity_status,
    DROP COLUMN suspension_cause,
    DROP COLUMN invalidity_date;
