//! The certificate lifecycle end to end, on SQLite and PostgreSQL, through
//! the real `pki-admin`, `pki-scheduler`, `ocsp-responder` and
//! `crl-publisher`: activation and who may activate, every registry event's
//! result in the database, in the `openssl ocsp` answer and in the CRL,
//! replay of an event feed, renewal, mobile certificates and the SLA report.

use chrono::{Duration, Utc};
use e2e_tests::*;
use std::time::{Duration as StdDuration, Instant};

/// One certificate's row as `cert show --json` gives it.
fn cert_row(env: &TestEnv, serial: &str) -> Value {
    env.ok_json(&["cert", "show", serial, "--json"])
}

#[track_caller]
fn assert_row(env: &TestEnv, issued: &Issued, status: &str, reason: Option<&str>) {
    let row = cert_row(env, &issued.serial);
    assert_eq!(
        row["status"],
        status,
        "{}: {}",
        issued.serial,
        abbreviate(&row)
    );
    assert_eq!(
        row["revocation_reason"].as_str(),
        reason,
        "{}: {}",
        issued.serial,
        abbreviate(&row)
    );
}

/// Asks the responder until it answers `status` (and `reason`, the text
/// openssl prints, when given), within 5 seconds; the answer is verified
/// by openssl against the issuing CA.
#[track_caller]
fn ocsp_until(r: &RunningResponder, issued: &Issued, status: &str, reason: Option<&str>) {
    let target = Target::Cert(&issued.leaf);
    let start = Instant::now();
    loop {
        let seen = ocsp_query(
            &r.url,
            &issued.issuing_ca,
            &target,
            &[os("-CAfile"), issued.root.as_os_str()],
        );
        let status_ok = seen.status(&target.label()).as_deref() == Some(status);
        if status_ok && seen.verified() && (reason.is_none() || seen.reason().as_deref() == reason)
        {
            return;
        }
        if start.elapsed() > StdDuration::from_secs(5) {
            panic!(
                "{} not {status} {reason:?} in OCSP after 5 s\n{}",
                issued.serial,
                seen.describe("openssl ocsp")
            );
        }
        std::thread::sleep(StdDuration::from_millis(100));
    }
}

/// The reason openssl prints for a CRL entry of `issued` in the current
/// complete CRL of its CA (`Some(None)`: listed without a reason code;
/// `None`: not listed).
fn crl_reason(env: &TestEnv, issued: &Issued, ca: &str) -> Option<Option<String>> {
    let crl = env.crl(&format!("{ca}.crl"));
    crl.entries()
        .get(&normalise_serial(&issued.serial))
        .map(|e| e.reason.clone())
}

fn national_with_card(env: &TestEnv, key: &str, card: &str) -> Card {
    let id = Identity::national(key);
    let card = Card::identity(card, &id.registry_key);
    env.holder_with_card(&id, &card);
    card
}

fn resident_with_card(env: &TestEnv, key: &str, card: &str) -> Card {
    let id = Identity::resident(key);
    let card = Card::residence(card, &id.registry_key);
    env.holder_with_card(&id, &card);
    card
}

fn p256(env: &TestEnv) -> std::path::PathBuf {
    env.csr(KeyType::EcP256)
}

fn event(env: &TestEnv, args: &[&str]) -> Value {
    let mut all = vec!["registry", "event"];
    all.extend_from_slice(args);
    all.push("--json");
    env.ok_json(&all)
}

// ---------------------------------------------------------------------------

fn only_eligible_holders_activate(env: &TestEnv) {
    env.init();
    let mut minor = Identity::national("LM000001");
    minor.birth_datetime = format!("{}T09:00", days_ago(17 * 365));
    let mut protected = Identity::national("LP000001");
    protected.protected_adult = true;
    let adult = Identity::national("LA000001");
    let later_inactive = Identity::national("LI000001");
    env.import_registry(&[
        minor.clone(),
        protected.clone(),
        adult.clone(),
        later_inactive.clone(),
    ]);
    let cards: Vec<Card> = [&minor, &protected, &adult, &later_inactive]
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let card = Card::identity(&format!("LC00000{i}"), &id.registry_key);
            env.add_card(&card);
            card
        })
        .collect();
    let held: Vec<Issued> = cards
        .iter()
        .map(|c| env.issue_on_hold(&c.number, "auth", &p256(env)))
        .collect();
    for h in &held {
        assert_row(env, h, "hold", None);
    }
    // The registry sets the last identity inactive: the import records it as
    // a registry event, and its certificate is revoked (no reason code).
    let imported = env.import_registry(&[later_inactive.clone().with_status("inactive")]);
    assert!(imported.contains("1 status changes recorded"), "{imported}");
    assert_row(env, &held[3], "revoked", None);

    let r = env.start_responder(&[]);
    ocsp_until(&r, &held[2], "revoked", Some("certificateHold"));

    env.refused(
        &["activate", "--card", &cards[0].number],
        &["minor", "LM000001"],
    );
    env.refused(
        &["activate", "--card", &cards[1].number],
        &["protected adult"],
    );
    env.refused(&["activate", "--card", &cards[3].number], &["inactive"]);
    // A valid card only: the adult's card seen after its expiry.
    let after_expiry = (cards[2].expires + Duration::days(1))
        .and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc();
    env.refused_with(
        &["activate", "--card", &cards[2].number],
        &["not valid"],
        |c| {
            c.env("PKI_FAKE_NOW", fake_now(after_expiry));
        },
    );
    for h in [&held[0], &held[1]] {
        assert_row(env, h, "hold", None);
    }

    env.ok(&["activate", "--card", &cards[2].number]);
    assert_row(env, &held[2], "active", None);
    ocsp_until(&r, &held[2], "good", None);
    env.refused(
        &["activate", "--card", &cards[2].number],
        &["no certificate pending activation"],
    );
    // A mobile certificate needs the activated authentication certificate.
    env.refused(
        &[
            "issue",
            "--card",
            &cards[0].number,
            "--usage",
            "mobile-auth",
            "--csr",
            p256(env).to_str().unwrap(),
        ],
        &["mobile", "hold"],
    );
    let audit = env.ok_stdout(&["audit", "list", "--tail", "5"]);
    assert!(audit.contains("certificate.activate"), "{audit}");
}

// ---------------------------------------------------------------------------

struct Holders {
    lost: (Card, Issued, Issued, Issued),
    phone: (Card, Issued, Issued),
    leaving: (Card, Issued),
    moved: (Card, Issued, Card),
    dead: (Card, Issued),
    suspended: (Card, Issued, Issued),
    inactive: (Card, Issued),
    naturalised: (Card, Issued),
    quitting: (Card, Issued),
    cancelled: (Card, Issued),
}

fn holders(env: &TestEnv) -> Holders {
    let c = national_with_card(env, "EV000001", "EVC00001");
    let lost = (
        c.clone(),
        env.issue(&c.number, "auth", &p256(env)),
        env.issue(&c.number, "sign", &p256(env)),
        env.issue(&c.number, "mobile-auth", &p256(env)),
    );
    let c = national_with_card(env, "EV000002", "EVC00002");
    let phone = (
        c.clone(),
        env.issue(&c.number, "auth", &p256(env)),
        env.issue(&c.number, "mobile-auth", &p256(env)),
    );
    let c = resident_with_card(env, "EV000003", "EVC00003");
    let leaving = (c.clone(), env.issue(&c.number, "auth", &p256(env)));
    let c = national_with_card(env, "EV000004", "EVC00004");
    let new_card = Card::identity("EVC00014", "EV000004");
    env.add_card(&new_card);
    let moved = (
        c.clone(),
        env.issue(&c.number, "auth", &p256(env)),
        new_card,
    );
    let c = national_with_card(env, "EV000005", "EVC00005");
    let dead = (c.clone(), env.issue(&c.number, "sign", &p256(env)));
    let c = national_with_card(env, "EV000006", "EVC00006");
    let suspended = (
        c.clone(),
        env.issue(&c.number, "auth", &p256(env)),
        env.issue(&c.number, "mobile-auth", &p256(env)),
    );
    let c = national_with_card(env, "EV000007", "EVC00007");
    let inactive = (c.clone(), env.issue(&c.number, "auth", &p256(env)));
    let c = resident_with_card(env, "EV000008", "EVC00008");
    let naturalised = (c.clone(), env.issue(&c.number, "auth", &p256(env)));
    let c = national_with_card(env, "EV000009", "EVC00009");
    let quitting = (c.clone(), env.issue(&c.number, "auth", &p256(env)));
    let c = national_with_card(env, "EV000010", "EVC00010");
    let cancelled = (c.clone(), env.issue(&c.number, "auth", &p256(env)));
    Holders {
        lost,
        phone,
        leaving,
        moved,
        dead,
        suspended,
        inactive,
        naturalised,
        quitting,
        cancelled,
    }
}

fn registry_events_reach_the_database_ocsp_and_crl(env: &TestEnv) {
    env.init();
    let h = holders(env);
    let r = env.start_responder(&[]);
    let now = Utc::now();
    // Effective in 12 hours (a date and time, UTC), whatever the hour now.
    let effective = (now + Duration::hours(12))
        .format("%Y-%m-%dT%H:%M")
        .to_string();

    event(
        env,
        &[
            "card-lost",
            "--card",
            &h.lost.0.number,
            "--invalidity",
            &days_ago(1).to_string(),
        ],
    );
    event(env, &["phone-lost", "--card", &h.phone.0.number]);
    let leaving = event(
        env,
        &[
            "residency-ended",
            "--holder",
            "EV000003",
            "--effective",
            &effective,
        ],
    );
    assert_eq!(
        leaving["executed"]["executed"], 0,
        "due in 12 hours: {leaving}"
    );
    event(
        env,
        &[
            "address-changed",
            "--card",
            &h.moved.0.number,
            "--new-card",
            &h.moved.2.number,
        ],
    );
    event(env, &["death", "--holder", "EV000005"]);
    event(env, &["identity-suspended", "--holder", "EV000006"]);
    event(
        env,
        &[
            "identity-inactive",
            "--holder",
            "EV000007",
            "--reason",
            "privilegeWithdrawn",
        ],
    );
    event(env, &["nationality-acquired", "--holder", "EV000008"]);
    event(env, &["holder-request", "--card", &h.quitting.0.number]);
    event(env, &["card-cancelled", "--card", &h.cancelled.0.number]);

    // Executed at once: the database.
    for cert in [&h.lost.1, &h.lost.2, &h.lost.3, &h.phone.2] {
        assert_row(env, cert, "revoked", Some("keyCompromise"));
    }
    assert_eq!(
        cert_row(env, &h.lost.1.serial)["invalidity_date"]
            .as_str()
            .map(|s| &s[..10]),
        Some(days_ago(1).to_string().as_str())
    );
    assert_row(env, &h.phone.1, "active", None);
    assert_row(env, &h.leaving.1, "active", None);
    assert_row(env, &h.moved.1, "active", None);
    assert_row(env, &h.dead.1, "revoked", Some("cessationOfOperation"));
    assert_row(env, &h.suspended.1, "suspended", Some("certificateHold"));
    assert_row(env, &h.suspended.2, "suspended", Some("certificateHold"));
    assert_eq!(
        cert_row(env, &h.suspended.1.serial)["hold_cause"],
        "identity-suspended"
    );
    assert_row(env, &h.inactive.1, "revoked", Some("privilegeWithdrawn"));
    assert_row(env, &h.naturalised.1, "revoked", Some("superseded"));
    assert_row(env, &h.quitting.1, "revoked", None);
    assert_row(env, &h.cancelled.1, "revoked", Some("cessationOfOperation"));
    let registry = env.ok_json(&["registry", "show", "EV000006", "--json"]);
    assert_eq!(registry["status"], "suspended");
    // An officer cannot release a hold the registry's suspension put there.
    env.refused(
        &["resume", "--card", &h.suspended.0.number],
        &["identity-suspended"],
    );

    // The new card's certificate is issued: the old card's is superseded
    // by the scheduler's next run.
    let new_cert = env.issue(&h.moved.2.number, "auth", &p256(env));
    let report = env.scheduler_job("requests", Utc::now());
    assert_eq!(report["executed"], 1, "{report}");
    assert_row(env, &h.moved.1, "revoked", Some("superseded"));
    assert_row(env, &new_cert, "active", None);

    // The residency ends in 12 hours: nothing before, revoked after.
    let report = env.scheduler_job("requests", now + Duration::hours(6));
    assert_eq!(report["executed"], 0, "{report}");
    let report = env.scheduler_job("requests", now + Duration::hours(12) + Duration::minutes(1));
    assert_eq!(
        report["executed"], 2,
        "the revocation and the registry status: {report}"
    );
    assert_row(env, &h.leaving.1, "revoked", Some("affiliationChanged"));
    assert_eq!(
        env.ok_json(&["registry", "show", "EV000003", "--json"])["status"],
        "inactive"
    );

    // OCSP, verified by openssl.
    ocsp_until(&r, &h.lost.1, "revoked", Some("keyCompromise"));
    ocsp_until(&r, &h.lost.3, "revoked", Some("keyCompromise"));
    ocsp_until(&r, &h.phone.2, "revoked", Some("keyCompromise"));
    ocsp_until(&r, &h.phone.1, "good", None);
    ocsp_until(&r, &h.leaving.1, "revoked", Some("affiliationChanged"));
    ocsp_until(&r, &h.moved.1, "revoked", Some("superseded"));
    ocsp_until(&r, &h.dead.1, "revoked", Some("cessationOfOperation"));
    ocsp_until(&r, &h.suspended.1, "revoked", Some("certificateHold"));
    // OpenSSL 3.0's `ocsp` names reason codes up to removeFromCRL (8) only
    // and prints privilegeWithdrawn (9) as "(UNKNOWN)"; the CRL below,
    // read by `openssl crl`, names it.
    ocsp_until(&r, &h.inactive.1, "revoked", Some("(UNKNOWN)"));
    ocsp_until(&r, &h.naturalised.1, "revoked", Some("superseded"));
    ocsp_until(&r, &h.quitting.1, "revoked", None);
    ocsp_until(&r, &h.cancelled.1, "revoked", Some("cessationOfOperation"));

    // The CRLs.
    env.publish_crls(&[]);
    let id_ca = "identity-card-ca";
    let rs_ca = "residence-card-ca";
    let some = |s: &str| Some(Some(s.to_string()));
    assert_eq!(crl_reason(env, &h.lost.1, id_ca), some("Key Compromise"));
    assert_eq!(crl_reason(env, &h.phone.2, id_ca), some("Key Compromise"));
    assert_eq!(crl_reason(env, &h.phone.1, id_ca), None);
    assert_eq!(
        crl_reason(env, &h.leaving.1, rs_ca),
        some("Affiliation Changed")
    );
    assert_eq!(crl_reason(env, &h.moved.1, id_ca), some("Superseded"));
    assert_eq!(crl_reason(env, &new_cert, id_ca), None);
    assert_eq!(
        crl_reason(env, &h.dead.1, id_ca),
        some("Cessation Of Operation")
    );
    assert_eq!(
        crl_reason(env, &h.suspended.2, id_ca),
        some("Certificate Hold")
    );
    assert_eq!(
        crl_reason(env, &h.inactive.1, id_ca),
        some("Privilege Withdrawn")
    );
    assert_eq!(crl_reason(env, &h.naturalised.1, rs_ca), some("Superseded"));
    assert_eq!(crl_reason(env, &h.quitting.1, id_ca), Some(None));

    // The identity is active again: its holds are released, everywhere.
    event(env, &["identity-reactivated", "--holder", "EV000006"]);
    assert_row(env, &h.suspended.1, "active", None);
    assert_row(env, &h.suspended.2, "active", None);
    ocsp_until(&r, &h.suspended.2, "good", None);
    env.publish_crls(&[]);
    assert_eq!(crl_reason(env, &h.suspended.2, id_ca), None);

    let verify = env.ok_stdout(&["audit", "verify"]);
    assert!(verify.contains("intact"), "{verify}");
}

// ---------------------------------------------------------------------------

fn an_event_feed_replayed_changes_nothing(env: &TestEnv) {
    env.init();
    let a = national_with_card(env, "FD000001", "FDC00001");
    let a_auth = env.issue(&a.number, "auth", &p256(env));
    let b = resident_with_card(env, "FD000002", "FDC00002");
    let b_auth = env.issue(&b.number, "auth", &p256(env));
    let c = national_with_card(env, "FD000003", "FDC00003");
    let c_auth = env.issue(&c.number, "auth", &p256(env));
    let reported =
        (Utc::now() - Duration::minutes(3)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let feed = [
        json!({"id": "form-2026-0001", "type": "card-stolen", "card": a.number, "reported_at": reported}),
        json!({"id": "rs-2026-0002", "type": "residency-ended", "holder": "FD000002",
               "effective": (Utc::now() + Duration::days(30)).date_naive().to_string()}),
        json!({"id": "reg-2026-0003", "type": "identity-suspended", "holder": "FD000003"}),
    ];
    let text: String = feed.iter().map(|e| format!("{e}\n")).collect();
    let file = env.write("events.jsonl", &text);
    let first = env.ok_json(&["registry", "events", file.to_str().unwrap(), "--json"]);
    assert_eq!(first["recorded"], 3, "{first}");
    assert_eq!(first["replayed"], 0, "{first}");
    assert_eq!(
        first["executed"]["executed"], 3,
        "card-stolen + identity status + suspension: {first}"
    );
    assert_row(env, &a_auth, "revoked", Some("keyCompromise"));
    assert_row(env, &b_auth, "active", None);
    assert_row(env, &c_auth, "suspended", Some("certificateHold"));

    let before = env.snapshot();
    let rows_before: Vec<Value> = [&a_auth, &b_auth, &c_auth]
        .iter()
        .map(|i| cert_row(env, &i.serial))
        .collect();
    // The replay, read by a person (the line without --json).
    let again = env.ok_stdout(&["registry", "events", file.to_str().unwrap()]);
    assert!(
        again.contains("3 events read, 0 recorded with 0 requests, 3 already recorded (nothing changed); executed what was due: 0 requests, 0 certificates changed"),
        "{again}"
    );
    assert_eq!(
        env.snapshot(),
        before,
        "a replay writes nothing, not even audit records"
    );
    let rows_after: Vec<Value> = [&a_auth, &b_auth, &c_auth]
        .iter()
        .map(|i| cert_row(env, &i.serial))
        .collect();
    assert_eq!(rows_before, rows_after);

    // The same id with another content is refused, and so is a bad line:
    // nothing of the file is recorded.
    let conflicting = env.write(
        "conflict.jsonl",
        format!(
            "{}\n",
            json!({"id": "form-2026-0001", "type": "card-lost", "card": a.number})
        ),
    );
    env.refused(
        &["registry", "events", conflicting.to_str().unwrap()],
        &["form-2026-0001", "different content"],
    );
    let bad = env.write(
        "bad.jsonl",
        format!(
            "{}\n{}\n",
            json!({"id": "ok-1", "type": "death", "holder": "FD000003"}),
            json!({"id": "bad-2", "type": "card-lost"})
        ),
    );
    env.refused(
        &["registry", "events", bad.to_str().unwrap()],
        &["line 2", "card"],
    );
    let unknown = env.write(
        "unknown.jsonl",
        format!(
            "{}\n",
            json!({"id": "u-1", "type": "card-lost", "card": "NOPE0001"})
        ),
    );
    env.refused(
        &["registry", "events", unknown.to_str().unwrap()],
        &["NOPE0001"],
    );
    assert_row(env, &c_auth, "suspended", Some("certificateHold"));
}

// ---------------------------------------------------------------------------

fn renewal_supersedes_and_respects_the_card(env: &TestEnv) {
    env.init();
    let card = national_with_card(env, "RN000001", "RNC00001");
    let auth = env.issue(&card.number, "auth", &p256(env));
    let mobile = env.issue(&card.number, "mobile-auth", &p256(env));
    assert_eq!(cert_row(env, &mobile.serial)["linked_serial"], auth.serial);
    let r = env.start_responder(&[]);

    let renewed = env.ok_json(&[
        "renew",
        "--card",
        &card.number,
        "--usage",
        "auth",
        "--csr",
        p256(env).to_str().unwrap(),
        "--json",
    ]);
    let new = Issued::from_json(env, {
        let mut v = renewed.clone();
        v["chain_pem"] = json!([
            std::fs::read_to_string(&auth.issuing_ca).unwrap(),
            std::fs::read_to_string(&auth.root).unwrap()
        ]);
        v
    });
    assert_eq!(renewed["status"], "active");
    assert_eq!(renewed["previous"]["serial"], auth.serial);
    // The renewal date is the new reference date: three years from today.
    let expected_end = plus_years(today(), 3) - Duration::days(1);
    assert_eq!(
        renewed["not_after"].as_str().map(|s| &s[..10]),
        Some(expected_end.to_string().as_str()),
        "{}",
        abbreviate(&renewed)
    );
    assert_row(env, &auth, "revoked", Some("superseded"));
    assert_eq!(
        cert_row(env, &mobile.serial)["linked_serial"],
        new.serial,
        "the mobile certificate follows the new one"
    );
    assert_row(env, &mobile, "active", None);
    verify_chain(&new);
    ocsp_until(&r, &auth, "revoked", Some("superseded"));
    ocsp_until(&r, &new, "good", None);

    // Nothing to gain from renewing again today.
    let before = env.snapshot();
    env.refused(
        &[
            "renew",
            "--card",
            &card.number,
            "--usage",
            "auth",
            "--csr",
            p256(env).to_str().unwrap(),
        ],
        &["would not extend"],
    );
    assert_eq!(env.snapshot(), before);

    // A residence card ending in 200 days: the certificate ends with it,
    // the card itself must be renewed.
    let rc = resident_with_card(env, "RN000002", "RNC00002");
    let res_auth = env.issue(&rc.number, "auth", &p256(env));
    env.refused(
        &[
            "renew",
            "--card",
            &rc.number,
            "--usage",
            "auth",
            "--csr",
            p256(env).to_str().unwrap(),
        ],
        &["card itself must be renewed"],
    );
    assert_row(env, &res_auth, "active", None);
    // On hold: activate, not renew.
    let rc2 = national_with_card(env, "RN000003", "RNC00003");
    env.issue_on_hold(&rc2.number, "auth", &p256(env));
    env.refused(
        &[
            "renew",
            "--card",
            &rc2.number,
            "--usage",
            "auth",
            "--csr",
            p256(env).to_str().unwrap(),
        ],
        &["pending activation"],
    );

    // A lost phone revokes the mobile certificate only; a lost card, the rest.
    event(env, &["phone-lost", "--card", &card.number]);
    assert_row(env, &mobile, "revoked", Some("keyCompromise"));
    assert_row(env, &new, "active", None);
    let mobile2 = env.issue(&card.number, "mobile-auth", &p256(env));
    env.ok(&["suspend", "--serial", &new.serial]);
    assert_row(env, &mobile2, "suspended", Some("certificateHold"));
    assert_eq!(cert_row(env, &mobile2.serial)["hold_cause"], "follows-card");
    env.ok(&["resume", "--serial", &new.serial]);
    assert_row(env, &mobile2, "active", None);
    event(env, &["card-lost", "--card", &card.number]);
    assert_row(env, &mobile2, "revoked", Some("keyCompromise"));
    ocsp_until(&r, &mobile2, "revoked", Some("keyCompromise"));
}

fn verify_chain(issued: &Issued) {
    let out = std::process::Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(&issued.root)
        .arg("-untrusted")
        .arg(&issued.issuing_ca)
        .arg(&issued.leaf)
        .output()
        .expect("openssl verify");
    assert!(out.status.success(), "{}", describe("openssl verify", &out));
}

// ---------------------------------------------------------------------------

fn the_sla_report_times_each_request(env: &TestEnv) {
    env.init();
    let a = national_with_card(env, "SL000001", "SLC00001");
    let a_auth = env.issue(&a.number, "auth", &p256(env));
    let b = national_with_card(env, "SL000002", "SLC00002");
    env.issue(&b.number, "auth", &p256(env));
    let r = env.start_responder(&[]);

    let reported = Utc::now() - Duration::seconds(30);
    event(
        env,
        &[
            "card-lost",
            "--card",
            &a.number,
            "--id",
            "sla-1",
            "--reported-at",
            &fake_now(reported),
        ],
    );
    // Reported 30 hours ago and only recorded now: late.
    let long_ago = Utc::now() - Duration::hours(30);
    event(
        env,
        &[
            "holder-request",
            "--card",
            &b.number,
            "--id",
            "sla-2",
            "--reported-at",
            &fake_now(long_ago),
        ],
    );
    ocsp_until(&r, &a_auth, "revoked", Some("keyCompromise"));
    env.publish_crls(&[]);

    let out = env.ok(&["sla", "--json"]);
    let lines = json_lines(&stdout_str(&out));
    let line = |id: &str| {
        lines
            .iter()
            .find(|l| l["request"] == id)
            .unwrap_or_else(|| panic!("{id} in {lines:?}"))
            .clone()
    };
    let fast = line("sla-1#1");
    assert_eq!(fast["stage"], "published", "{fast}");
    assert_eq!(fast["verdict"], "ok", "{fast}");
    for key in ["to_execute_seconds", "to_ocsp_seconds", "to_crl_seconds"] {
        let s = fast[key]
            .as_i64()
            .unwrap_or_else(|| panic!("{key} in {fast}"));
        assert!((0..300).contains(&s), "{key} {s} in {fast}");
    }
    let late = line("sla-2#1");
    assert_eq!(late["verdict"], "late", "{late}");
    let table = env.run(&["sla", "--check"]);
    assert_eq!(
        table.status.code(),
        Some(4),
        "{}",
        describe("sla --check", &table)
    );
    let text = stdout_str(&table);
    assert!(
        text.lines()
            .any(|l| l.starts_with("!!") && l.contains("sla-2#1")),
        "{text}"
    );
    assert!(text.contains("1 late"), "{text}");

    // The scheduler exports it.
    let report = env.scheduler_job("sla", Utc::now());
    assert!(report.to_string().contains("late"), "{report}");
}

e2e_test!(
    only_eligible_holders_activate,
    registry_events_reach_the_database_ocsp_and_crl,
    an_event_feed_replayed_changes_nothing,
    renewal_supersedes_and_respects_the_card,
    the_sla_report_times_each_request,
);
