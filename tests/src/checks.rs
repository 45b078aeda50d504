//! What an issued card certificate and the CA hierarchy must satisfy.

use crate::*;

// ---------------------------------------------------------------------------
// Issued certificates
// ---------------------------------------------------------------------------

/// A certificate returned by `issue --json`, with its PEMs written to disk.
pub struct Issued {
    pub json: Value,
    pub serial: String,
    pub leaf: PathBuf,
    pub issuing_ca: PathBuf,
    pub root: PathBuf,
    pub text: String,
}

impl Issued {
    /// Reads `certificate_pem` and `chain_pem` (issuing CA then root).
    #[track_caller]
    pub fn from_json(env: &TestEnv, json: Value) -> Issued {
        let serial = str_field(&json, "serial").to_string();
        let chain = pem_field(&json, "chain_pem");
        assert_eq!(
            chain.len(),
            2,
            "chain_pem must hold the issuing CA then the root: {}",
            abbreviate(&json)
        );
        let tag = unique_suffix();
        let leaf = env.write(
            &format!("certs/{tag}-leaf.pem"),
            str_field(&json, "certificate_pem"),
        );
        let issuing_ca = env.write(&format!("certs/{tag}-issuing.pem"), &chain[0]);
        let root = env.write(&format!("certs/{tag}-root.pem"), &chain[1]);
        let text = x509_text(&leaf);
        Issued {
            json,
            serial,
            leaf,
            issuing_ca,
            root,
            text,
        }
    }

    /// openssl verify + the three pkilint checks for a card certificate.
    #[track_caller]
    pub fn verify_and_lint(&self, usage: &str) {
        openssl_verify(&self.root, Some(&self.issuing_ca), &self.leaf);
        let label = format!("{usage} certificate {}", self.serial);
        lint_pkix_cert(&label, &self.leaf);
        lint_chain(
            &format!("issuing CA -> {label}"),
            &self.issuing_ca,
            &self.leaf,
        );
        lint_etsi(&label, &self.leaf, etsi_type(usage));
    }
}

/// The value line(s) of an X.509v3 extension in `openssl x509 -text` output
/// (`None` if absent), e.g. `extension(text, "X509v3 Key Usage")`.
pub fn extension(text: &str, name: &str) -> Option<String> {
    let mut lines = text.lines();
    let header = lines.by_ref().find(|l| l.trim_start().starts_with(name))?;
    let indent = header.len() - header.trim_start().len();
    let body: Vec<&str> = lines
        .take_while(|l| l.len() - l.trim_start().len() > indent)
        .map(str::trim)
        .collect();
    Some(body.join("\n"))
}

/// The profile name `issue` must report for a usage.
pub fn profile_for_usage(usage: &str) -> &'static str {
    match usage {
        "auth" => "card-auth",
        "sign" => "card-sign",
        "mobile-auth" => "mobile-auth",
        other => panic!("unknown usage {other}"),
    }
}

/// Common name of the issuing CA for a card kind (policies/profiles.toml).
pub fn issuing_ca_cn(card_kind: &str) -> &'static str {
    match card_kind {
        "identity" => "eID Identity Card CA",
        "residence" => "eID Residence Card CA",
        other => panic!("unknown card kind {other}"),
    }
}

/// Policy OIDs each card profile asserts (ours under [`POLICY_ARC`], ETSI's).
pub fn policies_for_usage(usage: &str) -> [String; 2] {
    match usage {
        "auth" => [format!("{POLICY_ARC}.1.1"), "0.4.0.2042.1.2".into()],
        "sign" => [format!("{POLICY_ARC}.1.2"), "0.4.0.194112.1.2".into()],
        "mobile-auth" => [format!("{POLICY_ARC}.1.3"), "0.4.0.2042.1.1".into()],
        other => panic!("unknown usage {other}"),
    }
}

/// Everything a card certificate must satisfy, checked with openssl and
/// pkilint: chain, lints, issuer, validity, serial, subject, key, extensions.
#[track_caller]
pub fn check_card_certificate(
    issued: &Issued,
    card: &Card,
    holder: &Identity,
    usage: &str,
    csr: &Path,
) {
    let ctx = format!(
        "{usage} certificate {} for card {}",
        issued.serial, card.number
    );
    let text = &issued.text;
    assert_eq!(
        str_field(&issued.json, "usage"),
        usage,
        "{ctx}: usage in JSON"
    );
    assert_eq!(
        str_field(&issued.json, "profile"),
        profile_for_usage(usage),
        "{ctx}: profile in JSON"
    );

    issued.verify_and_lint(usage);

    // Issued by the CA of the card's kind.
    let issuer = subject_attrs(&issued.issuing_ca);
    assert_eq!(
        subject_attr(&issuer, "commonName"),
        issuing_ca_cn(&card.kind),
        "{ctx}: issuing CA"
    );
    assert!(
        text.contains(&format!("CN = {}", issuing_ca_cn(&card.kind))),
        "{ctx}: Issuer is not {}:\n{text}",
        issuing_ca_cn(&card.kind)
    );

    // Validity: now .. min(issue + 3 years, card expiry), ending 23:59:59Z.
    let now = Utc::now();
    let nb = not_before(text);
    assert!(
        nb <= now + Duration::minutes(5) && nb >= now - Duration::days(1),
        "{ctx}: notBefore {nb} is not around now ({now})"
    );
    assert_eq!(
        not_after(text),
        card.expected_not_after(),
        "{ctx}: notAfter (card issued {}, expires {})",
        card.issued,
        card.expires
    );
    for (field, value) in [("not_before", nb), ("not_after", not_after(text))] {
        let reported = DateTime::parse_from_rfc3339(str_field(&issued.json, field))
            .unwrap_or_else(|e| panic!("{ctx}: {field} in JSON is not RFC 3339: {e}"));
        assert_eq!(reported, value, "{ctx}: {field} in JSON vs certificate");
    }

    // Serial: positive, at least 64 bits, the one reported in JSON.
    let serial = serial_hex(&issued.leaf);
    assert!(!serial.starts_with('-'), "{ctx}: negative serial {serial}");
    assert!(
        hex_bit_length(&serial) >= 64,
        "{ctx}: serial {serial} has fewer than 64 bits"
    );
    assert_eq!(
        normalise_serial(&serial),
        normalise_serial(&issued.serial),
        "{ctx}: serial in JSON vs certificate"
    );

    // Subject from the registry, not from the CSR.
    let subject = subject_attrs(&issued.leaf);
    let country = subject_attr(&subject, "countryName");
    assert!(
        country.len() == 2 && country.chars().all(|c| c.is_ascii_uppercase()),
        "{ctx}: countryName {country:?}"
    );
    assert_eq!(
        subject_attr(&subject, "surname"),
        holder.family_name,
        "{ctx}: surname"
    );
    assert_eq!(
        subject_attr(&subject, "givenName"),
        holder.given_names,
        "{ctx}: givenName"
    );
    let cn = subject_attr(&subject, "commonName");
    assert!(
        cn.contains(&holder.family_name)
            && cn.contains(holder.given_names.split(' ').next().unwrap()),
        "{ctx}: commonName {cn:?} does not name the holder"
    );
    assert_eq!(
        subject_attr(&subject, "serialNumber"),
        format!("PNOMC-{}", holder.registry_key),
        "{ctx}: serialNumber"
    );
    assert!(
        !text.contains("Name In The CSR"),
        "{ctx}: the CSR's subject leaked into the certificate"
    );

    // The key of the CSR.
    assert_eq!(
        cert_public_key(&issued.leaf),
        csr_public_key(csr),
        "{ctx}: public key differs from the CSR's"
    );

    // Extensions of the profile.
    let ku = extension(text, "X509v3 Key Usage")
        .unwrap_or_else(|| panic!("{ctx}: no key usage\n{text}"));
    let eku = extension(text, "X509v3 Extended Key Usage");
    if usage == "sign" {
        assert_eq!(ku, "Non Repudiation", "{ctx}: key usage");
        assert!(
            eku.is_none(),
            "{ctx}: unexpected extended key usage {eku:?}"
        );
    } else {
        assert_eq!(ku, "Digital Signature", "{ctx}: key usage");
        assert_eq!(
            eku.as_deref(),
            Some("TLS Web Client Authentication"),
            "{ctx}: extended key usage"
        );
    }
    let policies = extension(text, "X509v3 Certificate Policies")
        .unwrap_or_else(|| panic!("{ctx}: no policies\n{text}"));
    for oid in policies_for_usage(usage) {
        assert!(
            policies.contains(&format!("Policy: {oid}")),
            "{ctx}: policy {oid} missing from:\n{policies}"
        );
    }
    assert!(
        extension(text, "X509v3 CRL Distribution Points").is_some(),
        "{ctx}: no CRL distribution point"
    );
    assert!(
        extension(text, "Authority Information Access").is_some(),
        "{ctx}: no AIA"
    );
    assert!(
        text.contains("Signature Algorithm: ecdsa-with-SHA384"),
        "{ctx}: not signed with the CA's P-384 key and SHA-384"
    );
    assert!(
        text.contains("CA:FALSE") || extension(text, "X509v3 Basic Constraints").is_none(),
        "{ctx}: end entity marked as CA"
    );
}

// ---------------------------------------------------------------------------
// The hierarchy as `ca list --json` reports it
// ---------------------------------------------------------------------------

/// One CA of `ca list --json` with its certificate and responder on disk.
pub struct CaEntry {
    pub json: Value,
    pub name: String,
    pub profile: String,
    pub cert: PathBuf,
    pub responder: PathBuf,
}

/// Reads `ca list --json` and writes every certificate PEM to `<tmp>/ca/`.
#[track_caller]
pub fn ca_entries(env: &TestEnv) -> Vec<CaEntry> {
    env.ca_list()
        .into_iter()
        .map(|json| {
            let name = str_field(&json, "name").to_string();
            let profile = str_field(&json, "profile").to_string();
            let responder_json = json
                .get("ocsp_responder")
                .unwrap_or_else(|| panic!("no ocsp_responder in {json}"));
            let cert = env.write(
                &format!("ca/{name}.pem"),
                str_field(&json, "certificate_pem"),
            );
            let responder = env.write(
                &format!("ca/{name}-ocsp.pem"),
                str_field(responder_json, "certificate_pem"),
            );
            CaEntry {
                json,
                name,
                profile,
                cert,
                responder,
            }
        })
        .collect()
}
