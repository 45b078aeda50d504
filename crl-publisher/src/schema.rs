//! The diesel tables of the CRL publisher (migration
//! `migrations/{postgres,sqlite}/2026-11-22-000002_crl`, embedded and run by
//! `ca-core` with the others). The certificate and audit tables are
//! `ca_core::storage::schema`'s.

diesel::table! {
    /// The CRL number sequence of each issuer.
    crl_numbers (issuer) {
        issuer -> Text,
        last_number -> BigInt,
    }
}

diesel::table! {
    /// Every CRL published.
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

diesel::allow_tables_to_appear_in_same_query!(crl_numbers, crls);
