//! Fixes of issue 9, end to end through the real binaries on SQLite and
//! PostgreSQL: a key revoked for keyCompromise (or blocked by an officer)
//! is never certified again; status changes made directly by an officer
//! are measured by `pki-admin sla` like registry events; `pki-admin worker`
//! replaces the OCSP responder certificates before they expire (the clock
//! moved 29 days), and `pki-scheduler` exports the days left.

use chrono::{Duration, Utc};
use e2e_tests::*;
use std::time::{Duration as StdDuration, Instant};

fn national_with_card(env: &TestEnv, key: &str, card: &str) -> Card {
    let id = Identity::national(key);
    let card = Card::identity(card, &id.registry_key);
    env.holder_with_card(&id, &card);
    card
}

fn a_blocked_key_is_never_certified_again(env: &TestEnv) {
    env.init();
    let first = national_with_card(env, "BK000001", "BKC00001");
    let second = national_with_card(env, "BK000002", "BKC00002");
    let lost = env.csr(KeyType::EcP256);
    let issued = env.issue(&first.number, "auth", &lost);
    env.ok(&[
        "revoke",
        "--serial",
        &issued.serial,
        "--reason",
        "keyCompromise",
    ]);
    // The same key on another card: refused, nothing stored.
    let csr = lost.to_str().unwrap();
    let args = [
        "issue",
        "--card",
        &second.number,
        "--usage",
        "auth",
        "--csr",
        csr,
    ];
    env.refused(&args, &["blocked", "keyCompromise", &issued.serial]);
    let listed = as_array(env.ok_json(&["key", "list", "--json"]), "key list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["source"], "key-compromise");
    assert_eq!(listed[0]["certificate_serial"], issued.serial.as_str());

    // An officer blocks a key by hand (from its CSR): refused too.
    let suspicious = env.csr(KeyType::EcP384Sha384);
    let suspicious = suspicious.to_str().unwrap();
    let out = env.ok_stdout(&[
        "key",
        "block",
        "--csr",
        suspicious,
        "--comment",
        "reported by the bureau",
    ]);
    assert!(out.starts_with("blocked key "), "{out}");
    let again = env.ok_stdout(&["key", "block", "--csr", suspicious]);
    assert!(again.contains("already blocked"), "{again}");
    let args = [
        "issue",
        "--card",
        &second.number,
        "--usage",
        "auth",
        "--csr",
        suspicious,
    ];
    env.refused(&args, &["blocked", "officer", "reported by the bureau"]);
    // A bad hash is refused with a clear message.
    env.refused(&["key", "block", "--spki-sha256", "xyz"], &["SHA-256"]);

    // A fresh key is certified.
    let fresh = env.csr(KeyType::EcP256);
    env.issue(&second.number, "auth", &fresh);
    env.audit_verify_ok();
}

fn direct_changes_are_measured_by_the_sla(env: &TestEnv) {
    env.init();
    let card = national_with_card(env, "DS000001", "DSC00001");
    let auth = env.issue(&card.number, "auth", &env.csr(KeyType::EcP256));
    let sign = env.issue(&card.number, "sign", &env.csr(KeyType::EcP256));
    let r = env.start_responder(&[]);
    env.ok(&["revoke", "--serial", &auth.serial, "--reason", "superseded"]);
    env.ok(&["suspend", "--serial", &sign.serial]);
    // Both reach OCSP, then a CRL.
    for (issued, reason) in [(&auth, "superseded"), (&sign, "certificateHold")] {
        let target = Target::Cert(&issued.leaf);
        let start = Instant::now();
        loop {
            let seen = ocsp_query(
                &r.url,
                &issued.issuing_ca,
                &target,
                &[os("-CAfile"), issued.root.as_os_str()],
            );
            if seen.reason().as_deref() == Some(reason) {
                break;
            }
            assert!(
                start.elapsed() < StdDuration::from_secs(10),
                "{} not {reason} in OCSP\n{}",
                issued.serial,
                seen.describe("openssl ocsp")
            );
            std::thread::sleep(StdDuration::from_millis(100));
        }
    }
    env.publish_crls(&[]);
    let lines = json_lines(&env.ok_stdout(&["sla", "--json"]));
    let direct: Vec<&Value> = lines
        .iter()
        .filter(|l| l["request"].as_str().unwrap_or("").starts_with("direct#"))
        .collect();
    assert_eq!(direct.len(), 2, "{lines:?}");
    for (line, change, target) in [
        (
            direct.iter().find(|l| l["change"] == "revoke"),
            "revoke",
            &auth.serial,
        ),
        (
            direct.iter().find(|l| l["change"] == "suspend"),
            "suspend",
            &sign.serial,
        ),
    ] {
        let line = line.unwrap_or_else(|| panic!("no direct {change} in {lines:?}"));
        assert_eq!(line["target"], target.as_str(), "{line}");
        assert_eq!(line["stage"], "published", "{line}");
        assert_eq!(line["verdict"], "ok", "{line}");
        assert!(line["to_ocsp_seconds"].as_i64().is_some(), "{line}");
        assert!(line["to_crl_seconds"].as_i64().is_some(), "{line}");
    }
}

/// `openssl ocsp` against a responder whose clock is `now`.
fn ocsp_at(env: &TestEnv, issued: &Issued, now: chrono::DateTime<Utc>) -> OcspResult {
    let mut r = env.spawn_responder_with(&[], |c| {
        c.env("PKI_FAKE_NOW", fake_now(now));
    });
    let target = Target::Cert(&issued.leaf);
    // Verified as at `now` (certificates and thisUpdate in the future of
    // the real clock).
    let at = now.timestamp().to_string();
    let start = Instant::now();
    loop {
        let seen = ocsp_query(
            &r.url,
            &issued.issuing_ca,
            &target,
            &[
                os("-CAfile"),
                issued.root.as_os_str(),
                os("-attime"),
                os(&at),
                os("-validity_period"),
                os("3000000"),
            ],
        );
        if seen.verified() || start.elapsed() > StdDuration::from_secs(10) {
            assert!(r.is_running(), "the responder died\n{}", r.log_text());
            return seen;
        }
        std::thread::sleep(StdDuration::from_millis(200));
    }
}

fn the_worker_rotates_responders_before_they_expire(env: &TestEnv) {
    env.init();
    let card = national_with_card(env, "WR000001", "WRC00001");
    let issued = env.issue(&card.number, "auth", &env.csr(KeyType::EcP256));
    let now = Utc::now();
    let responders = || -> Vec<String> {
        env.ca_list()
            .iter()
            .map(|ca| {
                ca["ocsp_responder"]["serial"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    };
    let before = responders();

    // Today: every responder certificate has 30 days left, kept.
    let out = env.ok_stdout(&["worker", "--once"]);
    assert_eq!(out.matches("kept").count(), 3, "{out}");
    assert_eq!(responders(), before);

    // 29 days later the scheduler reports about a day left...
    let later = now + Duration::days(29);
    let report = env.scheduler_job("sla", later);
    let left = &report["responder_days_left"];
    for name in ["root", "identity-card-ca", "residence-card-ca"] {
        let days = left[name]
            .as_f64()
            .unwrap_or_else(|| panic!("{name} in {report}"));
        assert!(
            (0.5..1.5).contains(&days),
            "{name}: {days} days left\n{report}"
        );
    }
    // ...and 31 days later, without rotation, the responder cannot answer.
    let expired = ocsp_at(env, &issued, now + Duration::days(31));
    assert!(
        !expired.verified() && expired.text.to_lowercase().contains("trylater"),
        "{}",
        expired.describe("openssl ocsp, responder certificate expired")
    );

    // The worker at day 29 replaces all three.
    let run = env.run_with(&["worker", "--once"], |c| {
        c.env("PKI_FAKE_NOW", fake_now(later));
    });
    assert!(
        run.status.success(),
        "{}",
        describe("pki-admin worker --once", &run)
    );
    let out = stdout_str(&run);
    assert_eq!(out.matches("new responder certificate").count(), 3, "{out}");
    let after = responders();
    assert!(
        after.iter().zip(&before).all(|(a, b)| a != b),
        "{before:?} -> {after:?}"
    );
    // Day 31: answers again, signed by the new responder certificate.
    let answered = ocsp_at(env, &issued, now + Duration::days(31));
    assert!(answered.verified(), "{}", answered.describe("openssl ocsp"));
    assert_eq!(
        answered
            .status(&Target::Cert(&issued.leaf).label())
            .as_deref(),
        Some("good")
    );
    env.audit_verify_ok();
}

e2e_test!(
    a_blocked_key_is_never_certified_again,
    direct_changes_are_measured_by_the_sla,
    the_worker_rotates_responders_before_they_expire,
);
