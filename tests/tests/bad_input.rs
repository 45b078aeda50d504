//! Bad input: every case must exit 1 with a clear `error:` message and change
//! nothing (same `cert list --json` length, same number of audit records).

use std::path::{Path, PathBuf};

use e2e_tests::*;

/// init, one active national with an identity card, a P-256 CSR.
fn ready(env: &TestEnv) -> (Identity, Card, PathBuf) {
    env.init();
    let holder = Identity::national("N6000001");
    let card = Card::identity("600001", &holder.registry_key);
    env.holder_with_card(&holder, &card);
    (holder, card, env.csr(KeyType::EcP256))
}

fn issue_args<'a>(card: &'a str, usage: &'a str, csr: &'a Path) -> [&'a str; 7] {
    [
        "issue",
        "--card",
        card,
        "--usage",
        usage,
        "--csr",
        csr.to_str().unwrap(),
    ]
}

/// The card must not be registered.
fn assert_no_card(env: &TestEnv, number: &str) {
    let out = env.run(&["card", "show", number, "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "card {number} exists\n{}",
        describe("card show", &out)
    );
}

/// The identity must not be in the registry.
fn assert_no_identity(env: &TestEnv, key: &str) {
    let out = env.run(&["registry", "show", key, "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "identity {key} exists\n{}",
        describe("registry show", &out)
    );
}

/// A card the CA must never certify: refused either by `card add` (then not
/// registered) or, if registration is allowed, by `issue`. Which step refuses
/// is not fixed by docs/CLI.md; both must exit 1 with a clear message and
/// change nothing.
fn refused_at_card_add_or_issue(
    env: &TestEnv,
    card: &Card,
    csr: &Path,
    keywords: &[&str],
) -> &'static str {
    let args = card.add_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let before = env.snapshot();
    let out = env.run(&args);
    if out.status.code() == Some(1) {
        env.assert_error(&args, &out, keywords);
        env.assert_unchanged(&before, "after refused card add");
        assert_no_card(env, &card.number);
        return "card add";
    }
    env.assert_code(&args, &out, 0);
    for usage in ["auth", "sign"] {
        env.refused(&issue_args(&card.number, usage, csr), keywords);
    }
    "issue"
}

fn refuses_csr_with_bad_signature(env: &TestEnv) {
    let (_, card, csr) = ready(env);
    let bad = corrupt_csr_signature(&csr, &env.path("bad-signature.csr.pem"));
    env.refused(
        &issue_args(&card.number, "auth", &bad),
        &["signature", "possession"],
    );
    let bad_der = bad.with_extension("der");
    env.refused(
        &issue_args(&card.number, "sign", &bad_der),
        &["signature", "possession"],
    );
    // The intact CSR still works afterwards.
    env.issue(&card.number, "auth", &csr);
}
e2e_test!(refuses_csr_with_bad_signature);

fn refuses_rsa_1024(env: &TestEnv) {
    let (_, card, _) = ready(env);
    let csr = env.csr(KeyType::Rsa1024);
    for usage in ["auth", "sign"] {
        env.refused(&issue_args(&card.number, usage, &csr), &["1024", "rsa"]);
    }
}
e2e_test!(refuses_rsa_1024);

/// A mobile certificate is asked for only once the card's authentication
/// certificate is active (CPS 4.2.1 (6)); the key checks below come first
/// for the card's own usages too (the live certificate is checked last).
fn with_active_auth(env: &TestEnv, card: &str) {
    env.issue(card, "auth", &env.csr(KeyType::EcP256));
}

/// Refused because no card profile accepts the key, whatever hash signed
/// the CSR (openssl signs with SHA-256 by default, a valid pairing for any
/// curve: STACK.md pitfall 3).
const KEY_NOT_ACCEPTED: [&str; 3] = ["not accepted", "does not accept", "not allowed"];

fn refuses_secp256k1(env: &TestEnv) {
    let (_, card, _) = ready(env);
    with_active_auth(env, &card.number);
    let k1 = env.csr(KeyType::EcSecp256k1);
    for usage in ["auth", "sign", "mobile-auth"] {
        env.refused(&issue_args(&card.number, usage, &k1), &KEY_NOT_ACCEPTED);
    }
}
e2e_test!(refuses_secp256k1);

fn refuses_p521_for_card_certificates(env: &TestEnv) {
    let (_, card, _) = ready(env);
    with_active_auth(env, &card.number);
    let p521 = env.csr(KeyType::EcP521);
    for usage in ["auth", "sign", "mobile-auth"] {
        env.refused(&issue_args(&card.number, usage, &p521), &KEY_NOT_ACCEPTED);
    }
}
e2e_test!(refuses_p521_for_card_certificates);

fn refuses_rsa_for_mobile_auth(env: &TestEnv) {
    let (_, card, _) = ready(env);
    with_active_auth(env, &card.number);
    let rsa = env.csr(KeyType::Rsa2048);
    env.refused(
        &issue_args(&card.number, "mobile-auth", &rsa),
        &["rsa", "key type", "not allowed", "mobile-auth"],
    );
}
e2e_test!(refuses_rsa_for_mobile_auth);

fn refuses_unknown_card_and_holder(env: &TestEnv) {
    let (_, _, csr) = ready(env);
    env.refused(
        &issue_args("999999", "auth", &csr),
        &["999999", "unknown", "not found", "no card"],
    );
    let orphan = Card::identity("600099", "NOBODY-404");
    let args = orphan.add_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.refused(
        &args,
        &[
            "NOBODY-404",
            "unknown",
            "not found",
            "no identity",
            "holder",
        ],
    );
    assert_no_card(env, "600099");
}
e2e_test!(refuses_unknown_card_and_holder);

/// A holder whose status changes after the card was registered.
fn refuses_holder_with_status(env: &TestEnv, status: &str) {
    let (holder, card, csr) = ready(env);
    env.import_registry(&[holder.clone().with_status(status)]);
    for usage in ["auth", "sign", "mobile-auth"] {
        env.refused(&issue_args(&card.number, usage, &csr), &[status]);
    }
    // A new card for that holder cannot be certified either.
    let second = Card::identity("600002", &holder.registry_key);
    refused_at_card_add_or_issue(env, &second, &csr, &[status]);
}

fn refuses_inactive_holder(env: &TestEnv) {
    refuses_holder_with_status(env, "inactive");
}
e2e_test!(refuses_inactive_holder);
fn refuses_suspended_holder(env: &TestEnv) {
    refuses_holder_with_status(env, "suspended");
}
e2e_test!(refuses_suspended_holder);

fn refuses_expired_card(env: &TestEnv) {
    let (holder, _, csr) = ready(env);
    let expired = Card::identity("600003", &holder.registry_key).dates(days_ago(3000), days_ago(1));
    refused_at_card_add_or_issue(env, &expired, &csr, &["expired", "expir", "not valid"]);
}
e2e_test!(refuses_expired_card);

fn refuses_card_kind_not_of_the_holders_authority(env: &TestEnv) {
    let (holder, _, csr) = ready(env);
    let words = [
        "kind",
        "authority",
        "residence",
        "identity",
        "town-hall",
        "residents-section",
    ];
    // A residence card for a town-hall national.
    let wrong = Card::residence("600004", &holder.registry_key);
    refused_at_card_add_or_issue(env, &wrong, &csr, &words);
    // An identity card for a resident.
    let resident = Identity::resident("R6000001");
    env.import_registry(std::slice::from_ref(&resident));
    let wrong = Card::identity("600005", &resident.registry_key);
    refused_at_card_add_or_issue(env, &wrong, &csr, &words);
    // A resident who acquires the nationality: the residence card is no longer certifiable.
    let res_card = Card::residence("600006", &resident.registry_key);
    env.add_card(&res_card);
    env.import_registry(&[resident.with_authority("town-hall")]);
    env.refused(&issue_args(&res_card.number, "auth", &csr), &words);
}
e2e_test!(refuses_card_kind_not_of_the_holders_authority);

fn refuses_second_live_certificate_for_card_and_usage(env: &TestEnv) {
    let (_, card, csr) = ready(env);
    env.issue(&card.number, "auth", &csr);
    let other = env.csr(KeyType::EcP384Sha384);
    env.refused(
        &issue_args(&card.number, "auth", &other),
        &["already", "live", "exists", "valid"],
    );
    env.refused(
        &issue_args(&card.number, "auth", &csr),
        &["already", "live", "exists", "valid"],
    );
    // Another usage of the same card is fine.
    env.issue(&card.number, "sign", &other);
}
e2e_test!(refuses_second_live_certificate_for_card_and_usage);

fn refuses_unreadable_and_garbage_csr(env: &TestEnv) {
    let (_, card, _) = ready(env);
    let missing = env.path("no-such-dir/missing.csr.pem");
    env.refused(
        &issue_args(&card.number, "auth", &missing),
        &[
            "missing.csr.pem",
            "no such file",
            "cannot read",
            "not found",
        ],
    );
    let directory = env.path("data");
    env.refused(
        &issue_args(&card.number, "auth", &directory),
        &["csr", "read", "directory"],
    );
    let words = [
        "csr",
        "pkcs#10",
        "pkcs10",
        "certificate request",
        "parse",
        "decode",
        "pem",
        "der",
    ];
    let text = env.write("garbage.csr.pem", "this is not a certificate request\n");
    env.refused(&issue_args(&card.number, "auth", &text), &words);
    let bytes: Vec<u8> = (0..512u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let binary = env.write("garbage.csr.der", bytes);
    env.refused(&issue_args(&card.number, "auth", &binary), &words);
    let pem_garbage = env.write(
        "garbage-armour.csr.pem",
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAAAAAA\n-----END CERTIFICATE REQUEST-----\n",
    );
    env.refused(&issue_args(&card.number, "auth", &pem_garbage), &words);
    let empty = env.write("empty.csr.pem", "");
    env.refused(&issue_args(&card.number, "auth", &empty), &words);
}
e2e_test!(refuses_unreadable_and_garbage_csr);

fn refuses_dates_in_the_wrong_format_on_card_add(env: &TestEnv) {
    let (holder, _, _) = ready(env);
    let key = holder.registry_key.as_str();
    let cases = [
        ("17/03/2024", "2034-03-16"),
        ("2024-03-17", "2034-3-16x"),
        ("2024-02-30", "2034-03-16"),
        ("20240317", "20340316"),
    ];
    for (issued, expires) in cases {
        let args = [
            "card",
            "add",
            "--number",
            "600007",
            "--kind",
            "identity",
            "--holder",
            key,
            "--issued",
            issued,
            "--expires",
            expires,
        ];
        env.refused(&args, &["date", "issued", "expires", "YYYY-MM-DD"]);
        assert_no_card(env, "600007");
    }
}
e2e_test!(refuses_dates_in_the_wrong_format_on_card_add);

fn registry_file_with_one_bad_line_imports_nothing(env: &TestEnv) {
    env.init();
    let mut ids = vec![
        Identity::national("N7000001"),
        Identity::national("N7000002"),
        Identity::resident("R7000001"),
    ];
    // CSV: line 1 is the header, so the second identity is on line 3.
    ids[1].birth_datetime = "1984-13-45T08:45".into();
    let csv = env.write("bad.csv", registry_csv(&ids));
    let out = env.refused(
        &["registry", "import", csv.to_str().unwrap()],
        &["birth_datetime"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 3, field birth_datetime"),
        "message must name line 3 and the field:\n{err}"
    );
    for id in &ids {
        assert_no_identity(env, &id.registry_key);
    }

    // JSONL: the bad gender is on line 2.
    ids[1].birth_datetime = "1984-03-17T08:45".into();
    ids[1].gender = "Q".into();
    let jsonl = env.write("bad.jsonl", registry_jsonl(&ids));
    let out = env.refused(
        &["registry", "import", jsonl.to_str().unwrap()],
        &["gender"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2, field gender"),
        "message must name line 2 and the field:\n{err}"
    );
    for id in &ids {
        assert_no_identity(env, &id.registry_key);
    }

    // Bad authority and status values are refused the same way.
    ids[1].gender = "M".into();
    ids[2].authority = "prefecture".into();
    let csv = env.write("bad-authority.csv", registry_csv(&ids));
    let out = env.refused(
        &["registry", "import", csv.to_str().unwrap()],
        &["authority"],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 4, field authority"),
        "{}",
        describe("registry import", &out)
    );
    ids[2].authority = "residents-section".into();
    ids[0].status = "dormant".into();
    let csv = env.write("bad-status.csv", registry_csv(&ids));
    let out = env.refused(&["registry", "import", csv.to_str().unwrap()], &["status"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 2, field status"),
        "{}",
        describe("registry import", &out)
    );
    for id in &ids {
        assert_no_identity(env, &id.registry_key);
    }

    // Fixed, the same file imports.
    ids[0].status = "active".into();
    let csv = env.write("good.csv", registry_csv(&ids));
    env.ok(&["registry", "import", csv.to_str().unwrap()]);
}
e2e_test!(registry_file_with_one_bad_line_imports_nothing);

fn refuses_duplicate_card_number(env: &TestEnv) {
    let (_, card, _) = ready(env);
    let other = Identity::national("N6000002");
    env.import_registry(std::slice::from_ref(&other));
    let dup = Card::identity(&card.number, &other.registry_key);
    let args = dup.add_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.refused(
        &args,
        &[card.number.as_str(), "already", "exists", "duplicate"],
    );
    let shown = env.ok_json(&["card", "show", &card.number, "--json"]);
    assert_eq!(
        shown["holder_key"],
        card.holder.as_str(),
        "the existing card was overwritten"
    );

    // In a bulk import, one duplicate means nothing is registered.
    let batch = vec![Card::identity("600010", &other.registry_key), dup.clone()];
    let file = env.write("dup-cards.csv", cards_csv(&batch));
    env.refused(
        &["card", "import", file.to_str().unwrap()],
        &[card.number.as_str(), "already", "exists", "duplicate"],
    );
    assert_no_card(env, "600010");
    // Twice the same number inside one file, too.
    let twice = vec![
        Card::identity("600011", &other.registry_key),
        Card::identity("600011", &other.registry_key),
    ];
    let file = env.write("twice.jsonl", cards_jsonl(&twice));
    env.refused(
        &["card", "import", file.to_str().unwrap()],
        &["600011", "duplicate", "already", "twice"],
    );
    assert_no_card(env, "600011");
}
e2e_test!(refuses_duplicate_card_number);

fn refuses_issue_without_the_passphrase(env: &TestEnv) {
    let (_, card, csr) = ready(env);
    let args = issue_args(&card.number, "auth", &csr);
    env.refused_with(&args, &["passphrase", "PKI_CA_PASSPHRASE"], |cmd| {
        cmd.env_remove("PKI_CA_PASSPHRASE");
    });
    env.refused_with(&args, &["passphrase", "decrypt", "key"], |cmd| {
        cmd.env("PKI_CA_PASSPHRASE", "not the passphrase");
    });
    // With it, issuance works.
    env.issue(&card.number, "auth", &csr);
}
e2e_test!(refuses_issue_without_the_passphrase);

/// `init` without one of its two passphrases: refused, and nothing is left
/// behind (no CA, no key file), so that a later `init` starts clean.
fn refuses_init_without_a_passphrase(env: &TestEnv) {
    for (missing, words) in [
        ("PKI_CA_PASSPHRASE", ["passphrase", "PKI_CA_PASSPHRASE"]),
        ("PKI_OCSP_PASSPHRASE", ["passphrase", "PKI_OCSP_PASSPHRASE"]),
    ] {
        let out = env.run_with(&["init"], |cmd| {
            cmd.env_remove(missing);
        });
        env.assert_error(&["init"], &out, &words);
        let ca_list = env.run(&["ca", "list", "--json"]);
        env.assert_error(
            &["ca", "list", "--json"],
            &ca_list,
            &["not initialised", "init"],
        );
        assert!(
            env.data_files().is_empty(),
            "init without {missing} left files: {:?}",
            env.data_files().keys()
        );
    }
    env.init();
    assert_eq!(env.ca_list().len(), 3);
}
e2e_test!(refuses_init_without_a_passphrase);
