//! Certificates as a profile says: the TBS builder and the pre-issuance
//! linter, on the encoding pieces of `pki-x509` (names, extensions, times,
//! QC statements, CSR checking).

pub mod builder;
pub mod lint;
