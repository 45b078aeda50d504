//! CA and OCSP responder keys on PKCS#11 tokens (SoftHSM2), end to end on
//! SQLite and PostgreSQL: `pki-admin init`, single, batch and renewed
//! issuance, CRLs signed by `crl-publisher`, OCSP answers signed by
//! `ocsp-responder` and a responder rotation, all with `[keys] backend =
//! "pkcs11"`, judged by openssl and pkilint. `pkcs11-tool --list-objects`
//! shows that every private key is sensitive and never extractable, and
//! that the CA token holds no responder key and the responder token no CA
//! key. Each binary gets the PIN of its own family only (`key_env`).

use e2e_tests::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration as StdDuration, Instant};

/// The labels of the private keys on a family's token, each checked to be
/// sensitive and never extractable.
#[track_caller]
fn private_key_labels(env: &TestEnv, family: KeyFamily) -> Vec<String> {
    let objects = env.token_objects(family);
    let mut labels = Vec::new();
    for o in objects.iter().filter(|o| o.is_private_key()) {
        let access = o.field("Access").unwrap_or("");
        let flags: Vec<&str> = access.split(',').map(str::trim).collect();
        assert!(
            flags.contains(&"sensitive") && flags.contains(&"never extractable"),
            "private key {:?} on {} is not sensitive and never extractable: {access:?}\n{o:?}",
            o.label(),
            family.token()
        );
        assert!(
            !flags.contains(&"extractable"),
            "private key {:?} on {} is extractable: {access:?}",
            o.label(),
            family.token()
        );
        assert_eq!(o.field("Usage"), Some("sign"), "usage of {:?}", o.label());
        labels.push(o.label().to_string());
    }
    labels.sort();
    labels
}

/// The `key_ref` column of a table.
fn key_refs(env: &TestEnv, table: &str) -> Vec<String> {
    env.sql(&format!("SELECT key_ref FROM {table} ORDER BY key_ref"))
        .into_iter()
        .map(|row| row[0].clone())
        .collect()
}

/// The object label of an RFC 7512 reference.
fn object_of(reference: &str) -> String {
    reference
        .split(';')
        .find_map(|p| p.strip_prefix("object="))
        .unwrap_or_else(|| panic!("no object= in {reference}"))
        .to_string()
}

/// Asserts the keys of `table` are all on `family`'s token and returns
/// their labels.
#[track_caller]
fn refs_on_token(env: &TestEnv, table: &str, family: KeyFamily) -> Vec<String> {
    let refs = key_refs(env, table);
    assert!(!refs.is_empty(), "no keys in {table}");
    let prefix = format!("pkcs11:token={};object=", family.token());
    for r in &refs {
        assert!(
            r.starts_with(&prefix) && r.contains(";id=%"),
            "{table} key_ref {r:?} is not an RFC 7512 reference on {}",
            family.token()
        );
    }
    let mut labels: Vec<String> = refs.iter().map(|r| object_of(r)).collect();
    labels.sort();
    labels
}

/// The root and an issuing CA in one PEM file (for `openssl crl -CAfile`).
fn bundle(env: &TestEnv, issued: &Issued) -> PathBuf {
    let text = format!(
        "{}{}",
        fs::read_to_string(&issued.root).unwrap(),
        fs::read_to_string(&issued.issuing_ca).unwrap()
    );
    env.write(&format!("certs/bundle-{}.pem", unique_suffix()), text)
}

fn keys_stay_on_the_tokens_through_issuance_renewal_and_crls(env: &TestEnv) {
    env.init();

    // The hierarchy: every CA and responder key is on its family's token,
    // and no key file was written.
    let ca_labels = refs_on_token(env, "authorities", KeyFamily::Ca);
    let responder_labels = refs_on_token(env, "ocsp_responders", KeyFamily::Ocsp);
    assert_eq!(ca_labels.len(), 3, "root + 2 issuing CAs: {ca_labels:?}");
    assert_eq!(responder_labels.len(), 3, "{responder_labels:?}");
    let key_files: Vec<PathBuf> = env
        .data_files()
        .into_keys()
        .filter(|p| p.to_string_lossy().contains("/keys/"))
        .collect();
    assert!(key_files.is_empty(), "software key files: {key_files:?}");
    let cas = ca_entries(env);
    let root = cas.iter().find(|c| c.profile == "root-ca").unwrap();
    openssl_verify(&root.cert, None, &root.cert);
    lint_pkix_cert("root CA (key on the token)", &root.cert);
    for ca in &cas {
        if ca.profile != "root-ca" {
            openssl_verify(&root.cert, None, &ca.cert);
            lint_chain(&format!("root -> {}", ca.name), &root.cert, &ca.cert);
        }
        let issuer = (ca.profile != "root-ca").then_some(ca.cert.as_path());
        openssl_verify(&root.cert, issuer, &ca.responder);
        lint_pkix_cert(&format!("{} OCSP responder", ca.name), &ca.responder);
    }

    // Single issuance, P-256 and P-384 requests.
    let national = Identity::national("H1000001");
    let card = Card::identity("H10001", &national.registry_key);
    env.holder_with_card(&national, &card);
    let auth = env.issue(&card.number, "auth", &env.csr(KeyType::EcP256));
    auth.verify_and_lint("auth");
    let sign = env.issue(&card.number, "sign", &env.csr(KeyType::EcP384Sha384));
    sign.verify_and_lint("sign");

    // Batch issuance.
    let (ids, cards) = nationals_with_cards("HB", 4);
    env.import_registry(&ids);
    let cards_file = env.write("cards.csv", cards_csv(&cards));
    env.ok(&["card", "import", cards_file.to_str().unwrap()]);
    let csr_pem = fs::read_to_string(env.csr(KeyType::EcP256)).unwrap();
    let manifest: String = cards
        .iter()
        .map(|c| manifest_inline(&c.number, "auth", &csr_pem))
        .collect();
    let manifest = env.write("batch/manifest.jsonl", manifest);
    // (ca-core signs a chunk in parallel with rayon: several sessions at once.)
    let args = ["issue-batch", manifest.to_str().unwrap(), "--no-progress"];
    let out = env.run(&args);
    let shown = describe(&args.join(" "), &out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    let results = json_lines(&stdout_str(&out));
    assert_eq!(
        outcomes(&results),
        BTreeMap::from([("issued".to_string(), 4)]),
        "{shown}"
    );
    for (i, r) in results.iter().enumerate() {
        let leaf = env.write(
            &format!("batch-out/{i}.pem"),
            str_field(r, "certificate_pem"),
        );
        openssl_verify(&auth.root, Some(&auth.issuing_ca), &leaf);
        if i == 0 {
            lint_pkix_cert("batch certificate (key on the token)", &leaf);
            lint_chain("issuing CA -> batch certificate", &auth.issuing_ca, &leaf);
        }
    }

    // Renewal.
    let renewed = env.ok_json(&[
        "renew",
        "--card",
        &card.number,
        "--usage",
        "auth",
        "--csr",
        env.csr(KeyType::EcP256).to_str().unwrap(),
        "--json",
    ]);
    let renewed = Issued::from_json(env, {
        let mut v = renewed;
        v["chain_pem"] = json!([
            fs::read_to_string(&auth.issuing_ca).unwrap(),
            fs::read_to_string(&auth.root).unwrap()
        ]);
        v
    });
    renewed.verify_and_lint("auth");

    // CRLs signed by crl-publisher, which gets the CA PIN only.
    env.ok(&[
        "revoke",
        "--serial",
        &sign.serial,
        "--reason",
        "keyCompromise",
    ]);
    let lines = env.publish_crls(&[]);
    for l in &lines {
        assert_eq!(l["outcome"], "published", "{l}");
    }
    let crl = env.crl("identity-card-ca.crl");
    crl.verify_signature(&bundle(env, &auth));
    crl.lint("CRL");
    let entries = crl.entries();
    assert!(
        entries.contains_key(&normalise_serial(&sign.serial)),
        "revoked certificate missing from the CRL: {entries:?}"
    );
    assert!(
        entries.contains_key(&normalise_serial(&auth.serial)),
        "superseded certificate missing from the CRL: {entries:?}"
    );
    let arl = env.crl("root.crl");
    arl.verify_signature(&auth.root);
    arl.lint("ARL");

    // The tokens: sensitive, never-extractable keys, each family on its own.
    let on_ca_token = private_key_labels(env, KeyFamily::Ca);
    let on_ocsp_token = private_key_labels(env, KeyFamily::Ocsp);
    assert_eq!(on_ca_token, ca_labels, "CA token holds exactly the CA keys");
    assert_eq!(
        on_ocsp_token, responder_labels,
        "responder token holds exactly the responder keys"
    );
    for label in &on_ca_token {
        assert!(!on_ocsp_token.contains(label), "{label} on both tokens");
    }
}

/// `openssl ocsp` with a nonce, verified against `va`; the response is
/// linted by pkilint.
#[track_caller]
fn ask_with_nonce(
    env: &TestEnv,
    r: &RunningResponder,
    issuer: &Path,
    target: &Target<'_>,
    va: &Path,
) -> OcspResult {
    let respout = env.path(&format!("resp-{}.der", unique_suffix()));
    let opts = [
        os("-nonce"),
        os("-VAfile"),
        va.as_os_str(),
        os("-respout"),
        respout.as_os_str(),
    ];
    let result = ocsp_query(&r.url, issuer, target, &opts);
    assert!(
        result.verified(),
        "response does not verify\n{}\n--- responder log ---\n{}",
        result.describe("openssl ocsp -nonce"),
        r.log_text()
    );
    assert!(
        !result.text.contains("WARNING: no nonce"),
        "{}",
        result.text
    );
    lint_ocsp(&format!("answer about {}", target.label()), &respout);
    result
}

fn ocsp_answers_and_rotation_with_responder_keys_on_the_token(env: &TestEnv) {
    env.init();
    let national = Identity::national("H2000001");
    let card = Card::identity("H20001", &national.registry_key);
    env.holder_with_card(&national, &card);
    let good = env.issue(&card.number, "auth", &env.csr(KeyType::EcP256));
    let revoked = env.issue(&card.number, "sign", &env.csr(KeyType::EcP256));
    env.ok(&[
        "revoke",
        "--serial",
        &revoked.serial,
        "--reason",
        "keyCompromise",
    ]);
    let cas = ca_entries(env);
    let ca = cas.iter().find(|c| c.name == "identity-card-ca").unwrap();
    let old_va = env.path("old-responder.pem");
    fs::copy(&ca.responder, &old_va).unwrap();

    // The responder runs with the OCSP PIN only.
    let r = env.start_responder(&[]);
    let target = Target::Cert(&good.leaf);
    let result = ask_with_nonce(env, &r, &ca.cert, &target, &old_va);
    assert_eq!(result.status(&target.label()).as_deref(), Some("good"));
    let target_revoked = Target::Cert(&revoked.leaf);
    let result = ask_with_nonce(env, &r, &ca.cert, &target_revoked, &old_va);
    assert_eq!(
        result.status(&target_revoked.label()).as_deref(),
        Some("revoked"),
        "{}",
        result.text
    );

    // Rotation: a new responder key on the responder token; the running
    // responder picks it up and signs with it.
    let before = private_key_labels(env, KeyFamily::Ocsp);
    env.ok(&["ocsp", "rotate", "--authority", "identity-card-ca"]);
    let new_va = ca_entries(env)
        .into_iter()
        .find(|c| c.name == "identity-card-ca")
        .map(|c| c.responder)
        .unwrap();
    assert_ne!(fs::read(&new_va).unwrap(), fs::read(&old_va).unwrap());
    openssl_verify(&good.root, Some(&ca.cert), &new_va);
    lint_pkix_cert("rotated OCSP responder", &new_va);
    let after = private_key_labels(env, KeyFamily::Ocsp);
    assert_eq!(after.len(), before.len() + 1, "{before:?} -> {after:?}");
    let responder_labels = refs_on_token(env, "ocsp_responders", KeyFamily::Ocsp);
    for label in &responder_labels {
        assert!(after.contains(label), "{label} not on the responder token");
    }
    let deadline = Instant::now() + StdDuration::from_secs(20);
    loop {
        let result = ocsp_query(
            &r.url,
            &ca.cert,
            &target,
            &[os("-nonce"), os("-VAfile"), new_va.as_os_str()],
        );
        if result.verified() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "answers never came from the new responder key\n{}\n{}",
            result.text,
            r.log_text()
        );
        std::thread::sleep(StdDuration::from_millis(100));
    }
    let result = ask_with_nonce(env, &r, &ca.cert, &target, &new_va);
    assert_eq!(result.status(&target.label()).as_deref(), Some("good"));

    // No responder key went to the CA token, no CA key to the responder's.
    let ca_labels = private_key_labels(env, KeyFamily::Ca);
    assert_eq!(ca_labels, refs_on_token(env, "authorities", KeyFamily::Ca));
    for label in &ca_labels {
        assert!(!after.contains(label), "{label} on both tokens");
    }
}

/// A responder given the CA PIN instead of its own cannot log in to its
/// token: the families do not share a PIN. It stops with a clear message
/// that names the token and shows no PIN.
fn the_responder_cannot_use_the_ca_pin(env: &TestEnv) {
    env.init();
    let mut cmd = std::process::Command::new(ocsp_responder_bin());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PKI_") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(env.dir())
        .env("PKI_CONFIG", env.config_path())
        .args(["--listen", "127.0.0.1:0"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    env.key_env(&mut cmd, &[KeyFamily::Ocsp]);
    cmd.env(KeyFamily::Ocsp.pin_env(), KeyFamily::Ca.pin());
    let mut child = cmd.spawn().expect("start ocsp-responder");
    let deadline = Instant::now() + StdDuration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "the responder kept running with a wrong PIN\n{}",
                describe("ocsp-responder", &out)
            );
        }
        std::thread::sleep(StdDuration::from_millis(100));
    }
    let out = child.wait_with_output().expect("output");
    let shown = describe("ocsp-responder (CA PIN as its PIN)", &out);
    assert!(!out.status.success(), "{shown}");
    let text = format!("{}{}", stdout_str(&out), stderr_str(&out));
    assert!(
        text.contains("cannot log in to token \"e2e-ocsp\""),
        "{shown}"
    );
    for pin in [KeyFamily::Ca.pin(), KeyFamily::Ocsp.pin()] {
        assert!(!text.contains(pin), "a PIN in the output\n{shown}");
    }
}

e2e_test!(
    pkcs11: keys_stay_on_the_tokens_through_issuance_renewal_and_crls,
    ocsp_answers_and_rotation_with_responder_keys_on_the_token,
    the_responder_cannot_use_the_ca_pin,
);
