//! The diesel schema of the whole workspace, the same for both backends
//! (see `migrations/`): every table is declared here and nowhere else.

diesel::table! {
    audit_head (id) {
        id -> Integer,
        seq -> BigInt,
        hash -> Text,
        tree_size -> BigInt,
        frontier -> Text,
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
        suspension_cause -> Nullable<Text>,
        linked_serial -> Nullable<Text>,
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

diesel::table! {
    registry_events (id) {
        id -> Text,
        kind -> Text,
        content_sha256 -> Text,
        body -> Text,
        source -> Text,
        reported_at -> Timestamp,
        recorded_at -> Timestamp,
    }
}

diesel::table! {
    revocation_requests (id) {
        id -> Text,
        event_id -> Nullable<Text>,
        change -> Text,
        reason -> Nullable<Text>,
        scope -> Text,
        target -> Text,
        invalidity_date -> Nullable<Timestamp>,
        suspension_cause -> Nullable<Text>,
        identity_status -> Nullable<Text>,
        after_card -> Nullable<Text>,
        received_at -> Timestamp,
        due_at -> Nullable<Timestamp>,
        state -> Text,
        executed_at -> Nullable<Timestamp>,
        feed_position -> Nullable<BigInt>,
        certificates -> Nullable<BigInt>,
        issuers -> Nullable<Text>,
        ocsp_published_at -> Nullable<Timestamp>,
        crl_published_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    ocsp_publications (instance, feed_position) {
        instance -> Text,
        feed_position -> BigInt,
        published_at -> Timestamp,
    }
}

diesel::table! {
    /// The CRL number sequence of each issuer (written by crl-publisher).
    crl_numbers (issuer) {
        issuer -> Text,
        last_number -> BigInt,
    }
}

diesel::table! {
    /// Every CRL published (written by crl-publisher; read for the
    /// publication times of revocation requests).
    crls (issuer, number) {
        issuer -> Text,
        number -> BigInt,
        crl_partition -> Integer,
        kind -> Text,
        base_number -> Nullable<BigInt>,
        this_update -> Timestamp,
        next_update -> Timestamp,
        expiry_cutoff -> Nullable<Timestamp>,
        feed_position -> BigInt,
        entries -> BigInt,
        size_bytes -> BigInt,
        sha256 -> Text,
        url -> Text,
        location -> Text,
        published_at -> Timestamp,
    }
}

diesel::table! {
    reminders (card_number, not_after, offset_days) {
        card_number -> Text,
        not_after -> Timestamp,
        offset_days -> Integer,
        holder_key -> Text,
        serials -> Text,
        channel -> Text,
        recipient -> Nullable<Text>,
        subject -> Text,
        body -> Text,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        claimed_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        decided_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    blocked_keys (public_key_sha256) {
        public_key_sha256 -> Text,
        source -> Text,
        certificate_serial -> Nullable<Text>,
        blocked_at -> Timestamp,
        comment -> Nullable<Text>,
    }
}

diesel::joinable!(cards -> identities (holder_key));
diesel::joinable!(revocation_requests -> registry_events (event_id));
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
    registry_events,
    revocation_requests,
    ocsp_publications,
    crl_numbers,
    crls,
    reminders,
    blocked_keys,
);
