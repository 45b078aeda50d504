//! One published-status rule (`pki_store::published::published_status`):
//! every combination of stored status, revocation reason and suspension
//! cause is written into the database, then asked of the real OCSP
//! responder (`openssl ocsp`), listed by the real CRL publisher (`openssl
//! crl -text`) and shown by `pki-admin cert show --json`, and all three
//! must say the same thing: good and absent from the CRL, or revoked at
//! the same time with the same reason (or none), as the rule's table says.

use e2e_tests::*;

/// One stored combination and what relying parties must be told.
struct Case {
    status: &'static str,
    reason: Option<&'static str>,
    cause: Option<&'static str>,
    /// `None`: good; `Some(reason)`: revoked with that reason code (or none).
    published: Option<Option<&'static str>>,
}

const ISSUED: &str = "2026-01-02 03:04:05";
const REVOKED: &str = "2026-06-07 08:09:10";
const INVALID: &str = "2026-06-01 00:00:00";

fn cases() -> Vec<Case> {
    let mut cases = vec![
        Case {
            status: "active",
            reason: None,
            cause: None,
            published: None,
        },
        Case {
            status: "expired",
            reason: None,
            cause: None,
            published: None,
        },
        Case {
            status: "hold",
            reason: None,
            cause: None,
            published: Some(Some("certificateHold")),
        },
    ];
    for cause in ["officer", "identity-suspended", "follows-card"] {
        cases.push(Case {
            status: "suspended",
            reason: Some("certificateHold"),
            cause: Some(cause),
            published: Some(Some("certificateHold")),
        });
    }
    for reason in [
        None,
        Some("keyCompromise"),
        Some("cACompromise"),
        Some("affiliationChanged"),
        Some("superseded"),
        Some("cessationOfOperation"),
        Some("privilegeWithdrawn"),
    ] {
        cases.push(Case {
            status: "revoked",
            reason,
            cause: None,
            published: Some(reason),
        });
    }
    cases
}

/// "keyCompromise" (OCSP, JSON) and "Key Compromise" (CRL text) alike.
fn reason_key(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase()
}

/// The RFC 5280 code of a reason name.
fn reason_code(name: &str) -> u8 {
    match name {
        "keyCompromise" => 1,
        "cACompromise" => 2,
        "affiliationChanged" => 3,
        "superseded" => 4,
        "cessationOfOperation" => 5,
        "certificateHold" => 6,
        "privilegeWithdrawn" => 9,
        other => panic!("no code for {other}"),
    }
}

fn sql_text(v: Option<&str>) -> String {
    v.map_or("NULL".into(), |s| format!("'{s}'"))
}

fn ocsp_and_crl_agree_on_every_stored_status(env: &TestEnv) {
    env.init();
    let holder = Identity::national("PS000001");
    env.import_registry(std::slice::from_ref(&holder));
    let der = match env.backend {
        Backend::Sqlite => "X'00'",
        Backend::Postgres => "decode('00', 'hex')",
    };
    let cases = cases();
    let mut serials = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        // One card each: a card has one live certificate per usage.
        let card = Card::identity(&format!("PS{i:07}"), &holder.registry_key);
        env.add_card(&card);
        let serial = format!("7a5e{i:028x}");
        let revoked = matches!(case.status, "revoked" | "suspended");
        let not_after = if case.status == "expired" {
            "2026-03-01 00:00:00"
        } else {
            "2029-01-01 00:00:00"
        };
        env.sql(&format!(
            "INSERT INTO certificates (serial, issuer, profile, kind, usage, card_number, \
             holder_key, subject, not_before, not_after, status, public_key_sha256, der, \
             issued_at, revoked_at, revocation_reason, invalidity_date, crl_partition, \
             suspension_cause) VALUES ('{serial}', 'identity-card-ca', 'card-auth', \
             'end-entity', 'auth', '{}', '{}', 'CN=case {i}', '{ISSUED}', '{not_after}', \
             '{}', 'k{i}', {der}, '{ISSUED}', {}, {}, {}, 0, {})",
            card.number,
            holder.registry_key,
            case.status,
            sql_text(revoked.then_some(REVOKED)),
            sql_text(case.reason),
            sql_text((case.status == "revoked" && i % 2 == 0).then_some(INVALID)),
            sql_text(case.cause),
        ));
        serials.push(serial);
    }

    let cas = ca_entries(env);
    let identity_ca = &cas
        .iter()
        .find(|c| c.name == "identity-card-ca")
        .expect("identity-card-ca")
        .cert;
    let root = &cas.iter().find(|c| c.name == "root").expect("root").cert;
    let responder = env.start_responder(&[]);
    let lines = env.publish_crls(&[]);
    publication(&lines, "identity-card-ca", 0, "complete");
    let crl = env.crl("identity-card-ca.crl");
    crl.verify_signature(identity_ca);
    let entries = crl.entries();

    for (case, serial) in cases.iter().zip(&serials) {
        let what = format!(
            "{} reason {:?} cause {:?} (serial {serial})",
            case.status, case.reason, case.cause
        );
        let hex = format!("0x{serial}");
        let target = Target::Serial(&hex);
        let respout = env.path(&format!("response-{serial}.der"));
        let ocsp = ocsp_query(
            &responder.url,
            identity_ca,
            &target,
            &[
                os("-CAfile"),
                root.as_os_str(),
                os("-respout"),
                respout.as_os_str(),
            ],
        );
        assert!(ocsp.verified(), "{what}\n{}", ocsp.describe("openssl ocsp"));
        let ocsp_status = ocsp.status(&target.label()).unwrap_or_default();
        let entry = entries.get(&normalise_serial(serial));
        let shown = env.ok_json(&["cert", "show", serial, "--json"]);
        let shown = &shown["published"];
        match case.published {
            None => {
                assert_eq!(ocsp_status, "good", "OCSP for {what}\n{}", ocsp.text);
                assert!(entry.is_none(), "{what} is on the CRL: {entry:?}");
                assert_eq!(shown["status"], "good", "cert show for {what}: {shown}");
            }
            Some(reason) => {
                assert_eq!(ocsp_status, "revoked", "OCSP for {what}\n{}", ocsp.text);
                let entry = entry.unwrap_or_else(|| panic!("{what} is not on the CRL"));
                // The same time in both.
                let crl_time = entry
                    .revocation_date
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                assert_eq!(
                    ocsp.revocation_time(),
                    Some(crl_time),
                    "revocation time of {what}"
                );
                let expected_time = if case.status == "hold" {
                    ISSUED
                } else {
                    REVOKED
                };
                assert_eq!(
                    shown["revocation_time"],
                    format!("{}Z", expected_time.replace(' ', "T")),
                    "cert show for {what}: {shown}"
                );
                // The same reason, or no reason code in both.
                // OpenSSL 3.0 prints "(UNKNOWN)" for privilegeWithdrawn:
                // the reason is read from the response's DER as well.
                let response = std::fs::read(&respout).expect("OCSP response");
                let code = reason.map(reason_code);
                for c in [1u8, 2, 3, 4, 5, 6, 9] {
                    assert_eq!(
                        contains_bytes(&response, &[0xa0, 0x03, 0x0a, 0x01, c]),
                        code == Some(c),
                        "reason code {c} in the OCSP response of {what}"
                    );
                }
                let from_ocsp = ocsp
                    .reason()
                    .filter(|r| r != "(UNKNOWN)")
                    .map(|r| reason_key(&r))
                    .or_else(|| {
                        (reason == Some("privilegeWithdrawn"))
                            .then(|| reason_key("privilegeWithdrawn"))
                    });
                let from_crl = entry.reason.as_deref().map(reason_key);
                let from_show = shown["reason"].as_str().map(reason_key);
                let expected = reason.map(reason_key);
                assert_eq!(from_ocsp, expected, "OCSP reason of {what}\n{}", ocsp.text);
                assert_eq!(from_crl, expected, "CRL reason of {what}: {entry:?}");
                assert_eq!(from_show, expected, "cert show reason of {what}: {shown}");
                // The invalidity date is a CRL entry extension.
                let has_invalidity = case.status == "revoked"
                    && cases.iter().position(|c| std::ptr::eq(c, case)).unwrap() % 2 == 0;
                assert_eq!(
                    entry.invalidity_date.is_some(),
                    has_invalidity,
                    "invalidity date of {what}: {entry:?}"
                );
            }
        }
    }
}

e2e_test!(ocsp_and_crl_agree_on_every_stored_status);
