-- One PostgreSQL role per component, with the least rights its job needs
-- (ETSI EN 319 401 7.4 least privilege; Boulder keeps one database user per
-- component). Rendered and printed or applied by `pki-admin db roles`:
-- @PREFIX@ is the role-name prefix (default `pki_`), @SCHEMA@ the schema
-- holding the CA's tables (default `public`). Run it as the schema owner,
-- after `pki-admin migrate`, and again after each migration that adds a table.
--
-- No role but the owner (who runs `pki-admin migrate`) may change the schema,
-- and no role may UPDATE, DELETE or TRUNCATE the audit log: writers only
-- append records and move the head.
--
-- The roles log in without a password here: give each one its credentials
-- (password in the service user's ~/.pgpass, or certificate authentication)
-- outside this file, so that no secret lives in the repository.

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['@PREFIX@admin', '@PREFIX@ocsp', '@PREFIX@crl_signer', '@PREFIX@scheduler', '@PREFIX@auditor']
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT', r);
        END IF;
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM %I', '@SCHEMA@', r);
        EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM %I', '@SCHEMA@', r);
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', '@SCHEMA@', r);
        -- Every process checks the schema version at start.
        EXECUTE format('GRANT SELECT ON %I.__diesel_schema_migrations TO %I', '@SCHEMA@', r);
    END LOOP;
END
$$;

-- pki-admin, the operators' command line on the CA host: reads everything,
-- inserts and updates the CA's records, appends to the audit log.
GRANT SELECT ON ALL TABLES IN SCHEMA "@SCHEMA@" TO "@PREFIX@admin";
GRANT INSERT, UPDATE ON
    "@SCHEMA@".identities, "@SCHEMA@".cards, "@SCHEMA@".authorities, "@SCHEMA@".certificates,
    "@SCHEMA@".ocsp_responders, "@SCHEMA@".issuance_batches, "@SCHEMA@".issuance_batch_entries,
    "@SCHEMA@".registry_events, "@SCHEMA@".revocation_requests, "@SCHEMA@".blocked_keys,
    "@SCHEMA@".reminders
    TO "@PREFIX@admin";
GRANT INSERT ON "@SCHEMA@".audit_log TO "@PREFIX@admin";
GRANT UPDATE ON "@SCHEMA@".audit_head TO "@PREFIX@admin";

-- ocsp-responder: reads what it serves (the change feed, the CAs, its
-- responders, the certificates' status) and writes only its publication marks.
GRANT SELECT ON "@SCHEMA@".audit_log, "@SCHEMA@".audit_head, "@SCHEMA@".authorities,
    "@SCHEMA@".ocsp_responders, "@SCHEMA@".certificates, "@SCHEMA@".ocsp_publications
    TO "@PREFIX@ocsp";
GRANT INSERT, UPDATE ON "@SCHEMA@".ocsp_publications TO "@PREFIX@ocsp";

-- crl-publisher's signer: reads the change feed, the CAs and the certificates;
-- numbers and records its CRLs; appends its audit records.
GRANT SELECT ON "@SCHEMA@".audit_log, "@SCHEMA@".audit_head, "@SCHEMA@".authorities,
    "@SCHEMA@".certificates, "@SCHEMA@".crl_numbers, "@SCHEMA@".crls
    TO "@PREFIX@crl_signer";
GRANT INSERT, UPDATE ON "@SCHEMA@".crl_numbers TO "@PREFIX@crl_signer";
GRANT INSERT ON "@SCHEMA@".crls, "@SCHEMA@".audit_log TO "@PREFIX@crl_signer";
GRANT UPDATE ON "@SCHEMA@".audit_head TO "@PREFIX@crl_signer";

-- pki-scheduler: executes due revocation requests (certificates' status,
-- identities' status, blocked keys), expiry, reminders and the SLA stamps;
-- reads the responders' certificates for the SLA job; appends its audit
-- records and signs checkpoints. It never inserts a certificate or a CA.
GRANT SELECT ON "@SCHEMA@".audit_log, "@SCHEMA@".audit_head, "@SCHEMA@".identities,
    "@SCHEMA@".cards, "@SCHEMA@".authorities, "@SCHEMA@".ocsp_responders, "@SCHEMA@".certificates,
    "@SCHEMA@".registry_events, "@SCHEMA@".revocation_requests, "@SCHEMA@".ocsp_publications,
    "@SCHEMA@".crls, "@SCHEMA@".reminders, "@SCHEMA@".blocked_keys
    TO "@PREFIX@scheduler";
GRANT UPDATE (status, revoked_at, revocation_reason, invalidity_date, suspension_cause)
    ON "@SCHEMA@".certificates TO "@PREFIX@scheduler";
GRANT UPDATE (status, updated_at) ON "@SCHEMA@".identities TO "@PREFIX@scheduler";
GRANT UPDATE ON "@SCHEMA@".revocation_requests TO "@PREFIX@scheduler";
GRANT INSERT, UPDATE ON "@SCHEMA@".reminders, "@SCHEMA@".blocked_keys TO "@PREFIX@scheduler";
GRANT INSERT ON "@SCHEMA@".audit_log TO "@PREFIX@scheduler";
GRANT UPDATE ON "@SCHEMA@".audit_head TO "@PREFIX@scheduler";

-- Auditors: read everything, change nothing.
GRANT SELECT ON ALL TABLES IN SCHEMA "@SCHEMA@" TO "@PREFIX@auditor";
