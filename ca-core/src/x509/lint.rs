//! The pre-issuance linter: decodes the encoded TBSCertificate (what would
//! be signed, not the builder's structs) and checks it against its profile
//! and the issuing context. Issuance refuses to sign anything with a
//! finding, as Boulder does with its pre-issuance lint.

use crate::policy::{Profile, ProfileKind, SubjectKind};
use chrono::{DateTime, Utc};
use const_oid::ObjectIdentifier as Oid;
use der::{Decode, Encode};
use pki_keys::SignatureAlgorithm;
use pki_x509::{csr, ext, name, oids, qc, time};
use std::collections::HashSet;
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies,
    CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};

/// What the certificate must agree with besides its profile.
pub struct Expectations<'a> {
    pub profile: &'a Profile,
    pub issuer_name_der: &'a [u8],
    pub issuer_key_id: &'a [u8],
    pub signature_algorithm: SignatureAlgorithm,
    /// The issuer's own notAfter (None for a self-signed root).
    pub issuer_not_after: Option<DateTime<Utc>>,
    /// The latest notAfter the card rule allows (card profiles).
    pub latest_not_after: Option<DateTime<Utc>>,
    pub country: &'a str,
    /// The CRL distribution point the certificate must name, if any.
    pub crl_url: Option<&'a str>,
}

/// Lints an encoded TBSCertificate; an empty list means it may be signed.
pub fn lint(tbs_der: &[u8], exp: &Expectations<'_>) -> Vec<String> {
    let mut findings = Vec::new();
    let tbs = match TbsCertificate::from_der(tbs_der) {
        Ok(t) => t,
        Err(e) => {
            return vec![format!(
                "tbs.decode: the TBSCertificate is not valid DER: {e}"
            )]
        }
    };
    let p = exp.profile;
    let mut f = |code: &str, msg: String| findings.push(format!("{code}: {msg}"));

    if tbs.version != Version::V3 {
        f("version", "must be v3".into());
    }
    let serial = tbs.serial_number.as_bytes();
    if serial.len() < 8 || serial.len() > 20 || serial[0] & 0x80 != 0 {
        f(
            "serial",
            format!("{} octets; must be positive, 8 to 20 octets", serial.len()),
        );
    }
    if tbs.signature.oid != exp.signature_algorithm.oid() || tbs.signature.parameters.is_some() {
        f(
            "signature",
            format!(
                "algorithm {} does not match the issuer key",
                tbs.signature.oid
            ),
        );
    }
    match tbs.issuer.to_der() {
        Ok(d) if d == exp.issuer_name_der => {}
        _ => f("issuer", "does not equal the issuer's subject".into()),
    }

    let not_before = time::from_x509(&tbs.validity.not_before);
    let not_after = time::from_x509(&tbs.validity.not_after);
    if not_after <= not_before {
        f("validity", "notAfter is not after notBefore".into());
    }
    if let Some(limit) = exp.issuer_not_after {
        if not_after > limit {
            f(
                "validity.issuer",
                format!("notAfter {not_after} outlives the issuer ({limit})"),
            );
        }
    }
    if let Some(limit) = exp.latest_not_after {
        if not_after > limit {
            f(
                "validity.card",
                format!("notAfter {not_after} is past the card rule's limit {limit}"),
            );
        }
    }
    if let crate::policy::ValidityRule::Days(days) = p.validity {
        if not_after - not_before > chrono::Duration::days(days as i64) {
            f(
                "validity.days",
                format!("longer than the profile's {days} days"),
            );
        }
    }

    lint_subject(&tbs, exp, &mut f);

    match csr_key_of(&tbs) {
        Ok(k) if p.keys.contains(&k) => {}
        Ok(k) => f(
            "key",
            format!("{} is not allowed by profile {}", k.name(), p.name),
        ),
        Err(e) => f("key", e.to_string()),
    }

    lint_extensions(&tbs, exp, &mut f);
    findings
}

fn csr_key_of(tbs: &TbsCertificate) -> Result<pki_x509::KeyAlgorithm, csr::CsrError> {
    // Reuse the CSR key classifier on the certified key.
    let der = tbs
        .subject_public_key_info
        .to_der()
        .map_err(|e| csr::CsrError::Malformed(e.to_string()))?;
    pki_x509::csr::classify_key(&der)
}

fn lint_subject(tbs: &TbsCertificate, exp: &Expectations<'_>, f: &mut impl FnMut(&str, String)) {
    let s = &tbs.subject;
    let one = |oid: Oid| -> Option<String> {
        let v = name::values_of(s, oid);
        (v.len() == 1).then(|| v[0].clone())
    };
    match one(oids::AT_COUNTRY) {
        Some(c) if c == exp.country => {}
        other => f(
            "subject.c",
            format!("country must be {} once, found {other:?}", exp.country),
        ),
    }
    match one(oids::AT_COMMON_NAME) {
        Some(cn) if cn.chars().count() <= name::UB_COMMON_NAME => {}
        other => f(
            "subject.cn",
            format!("one commonName of at most 64 characters required, found {other:?}"),
        ),
    }
    match exp.profile.subject {
        SubjectKind::NaturalPerson => {
            for (oid, field) in [
                (oids::AT_SURNAME, "surname"),
                (oids::AT_GIVEN_NAME, "givenName"),
            ] {
                if one(oid).is_none() {
                    f("subject.person", format!("exactly one {field} required"));
                }
            }
            let prefix = format!("PNO{}-", exp.country);
            match one(oids::AT_SERIAL_NUMBER) {
                Some(sn) if sn.starts_with(&prefix) && sn.len() > prefix.len() => {}
                other => f(
                    "subject.serialNumber",
                    format!("must be {prefix}<registry key>, found {other:?}"),
                ),
            }
            if one(oids::AT_ORGANIZATION).is_some() {
                f(
                    "subject.person",
                    "a natural person's subject carries no organization".into(),
                );
            }
        }
        SubjectKind::Authority | SubjectKind::Responder => {
            if one(oids::AT_ORGANIZATION).is_none() {
                f("subject.o", "an authority names its organization".into());
            }
        }
    }
}

fn decode_ext<'a, T: Decode<'a>>(
    value: &'a [u8],
    code: &str,
    f: &mut impl FnMut(&str, String),
) -> Option<T> {
    match T::from_der(value) {
        Ok(v) => Some(v),
        Err(e) => {
            f(code, format!("cannot decode: {e}"));
            None
        }
    }
}

fn lint_extensions(tbs: &TbsCertificate, exp: &Expectations<'_>, f: &mut impl FnMut(&str, String)) {
    let p = exp.profile;
    let exts = tbs.extensions.as_deref().unwrap_or(&[]);
    let mut seen = HashSet::new();
    for e in exts {
        if !seen.insert(e.extn_id) {
            f("ext.duplicate", format!("{} appears twice", e.extn_id));
        }
    }
    let get = |oid: Oid| exts.iter().find(|e| e.extn_id == oid);

    // basicConstraints: present and critical on CAs, absent on others.
    match (get(oids::EXT_BASIC_CONSTRAINTS), p.path_length) {
        (Some(e), Some(len)) => {
            if let Some(bc) = decode_ext::<BasicConstraints>(e.extn_value.as_bytes(), "ext.bc", f) {
                if !e.critical || !bc.ca || bc.path_len_constraint != Some(len) {
                    f(
                        "ext.bc",
                        format!("must be critical, cA true, pathLen {len}"),
                    );
                }
            }
        }
        (None, Some(_)) => f("ext.bc", "a CA certificate needs basicConstraints".into()),
        (Some(_), None) => f(
            "ext.bc",
            "only CA certificates carry basicConstraints here".into(),
        ),
        (None, None) => {}
    }

    match get(oids::EXT_KEY_USAGE) {
        Some(e) => {
            if let Some(ku) = decode_ext::<KeyUsage>(e.extn_value.as_bytes(), "ext.ku", f) {
                if !e.critical || ku.0 != ext::key_usage_flags(&p.key_usage).0 {
                    f(
                        "ext.ku",
                        format!("must be critical and exactly {:?}", p.key_usage),
                    );
                }
            }
        }
        None => f("ext.ku", "keyUsage is missing".into()),
    }

    match get(oids::EXT_EXT_KEY_USAGE) {
        Some(e) => {
            if let Some(eku) = decode_ext::<ExtendedKeyUsage>(e.extn_value.as_bytes(), "ext.eku", f)
            {
                if e.critical || eku.0 != p.extended_key_usage {
                    f(
                        "ext.eku",
                        format!(
                            "must be non-critical and exactly {:?}",
                            p.extended_key_usage
                        ),
                    );
                }
            }
        }
        None if !p.extended_key_usage.is_empty() => f("ext.eku", "extKeyUsage is missing".into()),
        None => {}
    }

    let expected_ski =
        ext::key_identifier(tbs.subject_public_key_info.subject_public_key.raw_bytes());
    match get(oids::EXT_SUBJECT_KEY_ID) {
        Some(e) => {
            if let Some(ski) =
                decode_ext::<SubjectKeyIdentifier>(e.extn_value.as_bytes(), "ext.ski", f)
            {
                if ski.0.as_bytes() != expected_ski.as_slice() {
                    f("ext.ski", "does not identify the certified key".into());
                }
            }
        }
        None => f("ext.ski", "subjectKeyIdentifier is missing".into()),
    }
    match get(oids::EXT_AUTHORITY_KEY_ID) {
        Some(e) => {
            if let Some(aki) =
                decode_ext::<AuthorityKeyIdentifier>(e.extn_value.as_bytes(), "ext.aki", f)
            {
                if aki.key_identifier.as_ref().map(|k| k.as_bytes()) != Some(exp.issuer_key_id) {
                    f(
                        "ext.aki",
                        "keyIdentifier is not the issuer's subjectKeyIdentifier".into(),
                    );
                }
            }
        }
        None => f("ext.aki", "authorityKeyIdentifier is missing".into()),
    }

    match (get(oids::EXT_CRL_DP), p.crl_distribution_point) {
        (Some(e), true) => {
            if let Some(dps) =
                decode_ext::<CrlDistributionPoints>(e.extn_value.as_bytes(), "ext.crldp", f)
            {
                let urls: Vec<String> = dps
                    .0
                    .iter()
                    .filter_map(|dp| match &dp.distribution_point {
                        Some(DistributionPointName::FullName(names)) => Some(names),
                        _ => None,
                    })
                    .flatten()
                    .filter_map(|n| match n {
                        GeneralName::UniformResourceIdentifier(u) => Some(u.to_string()),
                        _ => None,
                    })
                    .collect();
                if urls.len() != 1 || Some(urls[0].as_str()) != exp.crl_url {
                    f(
                        "ext.crldp",
                        format!("names {urls:?}, expected exactly {:?}", exp.crl_url),
                    );
                }
            }
        }
        (None, true) => f(
            "ext.crldp",
            "the profile requires a CRL distribution point".into(),
        ),
        (Some(_), false) => f(
            "ext.crldp",
            "the profile has no CRL distribution point".into(),
        ),
        (None, false) => {}
    }

    match (get(oids::EXT_AIA), p.authority_info_access) {
        (Some(e), true) => {
            if let Some(aia) =
                decode_ext::<AuthorityInfoAccessSyntax>(e.extn_value.as_bytes(), "ext.aia", f)
            {
                let has = |m: Oid| aia.0.iter().any(|a| a.access_method == m);
                if !has(oids::AD_CA_ISSUERS) {
                    f("ext.aia", "no caIssuers".into());
                }
                let want_ocsp = p.kind != ProfileKind::OcspResponder;
                if has(oids::AD_OCSP) != want_ocsp {
                    f(
                        "ext.aia",
                        format!(
                            "OCSP access must be {}",
                            if want_ocsp { "present" } else { "absent" }
                        ),
                    );
                }
            }
        }
        (None, true) => f("ext.aia", "the profile requires authorityInfoAccess".into()),
        (Some(_), false) => f("ext.aia", "the profile has no authorityInfoAccess".into()),
        (None, false) => {}
    }

    match get(oids::EXT_CERT_POLICIES) {
        Some(e) => {
            if let Some(cp) =
                decode_ext::<CertificatePolicies>(e.extn_value.as_bytes(), "ext.policies", f)
            {
                let got: Vec<Oid> = cp.0.iter().map(|i| i.policy_identifier).collect();
                if got != p.policies {
                    f(
                        "ext.policies",
                        format!("{got:?} is not the profile's {:?}", p.policies),
                    );
                }
            }
        }
        None if !p.policies.is_empty() => {
            f("ext.policies", "certificatePolicies is missing".into())
        }
        None => {}
    }

    match get(oids::QC_STATEMENTS) {
        Some(e) => match qc::decode_ids(e.extn_value.as_bytes()) {
            Ok(ids) => {
                let want: Vec<Oid> = p
                    .qc_statements
                    .iter()
                    .map(|s| qc::statement_oid(*s))
                    .collect();
                if ids != want || e.critical {
                    f(
                        "ext.qc",
                        format!("statements {ids:?} are not the profile's {want:?}"),
                    );
                }
            }
            Err(err) => f("ext.qc", format!("cannot decode: {err}")),
        },
        None if !p.qc_statements.is_empty() => f("ext.qc", "qcStatements is missing".into()),
        None => {}
    }

    if get(oids::OCSP_NOCHECK).is_some() != p.ocsp_no_check {
        f(
            "ext.nocheck",
            "id-pkix-ocsp-nocheck must be present exactly for responder certificates".into(),
        );
    }

    let known = [
        oids::EXT_BASIC_CONSTRAINTS,
        oids::EXT_KEY_USAGE,
        oids::EXT_EXT_KEY_USAGE,
        oids::EXT_SUBJECT_KEY_ID,
        oids::EXT_AUTHORITY_KEY_ID,
        oids::EXT_CRL_DP,
        oids::EXT_AIA,
        oids::EXT_CERT_POLICIES,
        oids::QC_STATEMENTS,
        oids::OCSP_NOCHECK,
    ];
    for e in exts {
        if !known.contains(&e.extn_id) {
            f(
                "ext.unknown",
                format!("{} is not written by any profile", e.extn_id),
            );
        }
    }
}
