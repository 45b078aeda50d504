//! The diesel schema, the same for both backends (see `migrations/`).

diesel::table! {
    audit_head (id) {
        id -> Integer,
        seq -> BigInt,
        hash -> Text,
    }
}

diesel::table! {
    audit_log (seq) {
        seq -> BigInt,
        at -> Timestamp,
        actor -> Text,
        action -> Text,
        subject -> Text,
        details -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    identities (registry_key) {
        registry_key -> Text,
        family_name -> Text,
        given_names -> Text,
        birth_name -> Nullable<Text>,
        birth_datetime -> Timestamp,
        birth_place -> Text,
        gender -> Text,
        authority -> Text,
        status -> Text,
        protected_adult -> Bool,
        email -> Nullable<Text>,
        mobile -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    cards (card_number) {
        card_number -> Text,
        kind -> Text,
        holder_key -> Text,
        issue_date -> Date,
        expiry_date -> Date,
        registered_at -> Timestamp,
    }
}

diesel::table! {
    authorities (name) {
        name -> Text,
        profile -> Text,
        parent -> Nullable<Text>,
        key_ref -> Text,
        key_algorithm -> Text,
        certificate_serial -> Text,
        subject_der -> Binary,
        key_id -> Binary,
        not_after -> Timestamp,
        card_kind -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    certificates (serial) {
        serial -> Text,
        issuer -> Text,
        profile -> Text,
        kind -> Text,
        usage -> Nullable<Text>,
        card_number -> Nullable<Text>,
        holder_key -> Nullable<Text>,
        subject -> Text,
        not_before -> Timestamp,
        not_after -> Timestamp,
        status -> Text,
        public_key_sha256 -> Text,
        der -> Binary,
        issued_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        revocation_reason -> Nullable<Text>,
        invalidity_date -> Nullable<Timestamp>,
        crl_partition -> Integer,
    }
}

diesel::table! {
    ocsp_responders (certificate_serial) {
        certificate_serial -> Text,
        authority -> Text,
        key_ref -> Text,
        key_algorithm -> Text,
        not_after -> Timestamp,
        created_at -> Timestamp,
    }
}

diesel::table! {
    issuance_batches (id) {
        id -> Text,
        source -> Text,
        entries -> BigInt,
        started_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    issuance_batch_entries (batch_id, line_no) {
        batch_id -> Text,
        line_no -> BigInt,
        certificate_serial -> Text,
    }
}

diesel::joinable!(cards -> identities (holder_key));
diesel::joinable!(issuance_batch_entries -> issuance_batches (batch_id));
diesel::allow_tables_to_appear_in_same_query!(
    audit_head,
    audit_log,
    identities,
    cards,
    authorities,
    certificates,
    ocsp_responders,
    issuance_batches,
    issuance_batch_entries,
);
