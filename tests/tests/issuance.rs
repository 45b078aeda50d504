//! The hierarchy made by `init`, and single issuance (`issue`) from CSRs of
//! every accepted key type, each certificate checked with openssl and pkilint.

use e2e_tests::*;

/// Days between notBefore and notAfter as openssl prints them.
fn lifetime_days(cert: &std::path::Path) -> i64 {
    let text = x509_text(cert);
    (not_after(&text) - not_before(&text)).num_days()
}

fn init_creates_the_hierarchy(env: &TestEnv) {
    let summary = env.init();
    assert!(!summary.trim().is_empty(), "init printed no summary");

    let cas = ca_entries(env);
    let mut names: Vec<&str> = cas.iter().map(|c| c.name.as_str()).collect();
    names.sort();
    assert_eq!(cas.len(), 3, "expected root + 2 issuing CAs, got {names:?}");
    for expected in ["identity-card-ca", "residence-card-ca"] {
        assert!(names.contains(&expected), "no CA {expected} in {names:?}");
    }
    let roots: Vec<&CaEntry> = cas.iter().filter(|c| c.profile == "root-ca").collect();
    assert_eq!(roots.len(), 1, "exactly one root-ca profile in {names:?}");
    let root = roots[0];

    // Root: self-signed, 25 years, pathlen 1, CN from profiles.toml.
    openssl_verify(&root.cert, None, &root.cert);
    let root_text = x509_text(&root.cert);
    assert_eq!(
        subject_attr(&subject_attrs(&root.cert), "commonName"),
        "eID Root CA"
    );
    assert!(
        root_text.contains("CA:TRUE, pathlen:1"),
        "root basic constraints:\n{root_text}"
    );
    assert_eq!(lifetime_days(&root.cert), 9131, "root validity days:9131");
    lint_pkix_cert("root CA", &root.cert);

    // Root's OCSP responder.
    openssl_verify(&root.cert, None, &root.responder);
    lint_pkix_cert("root OCSP responder", &root.responder);
    lint_chain("root -> root OCSP responder", &root.cert, &root.responder);

    for ca in cas.iter().filter(|c| c.profile != "root-ca") {
        assert_eq!(ca.profile, "issuing-ca", "profile of {}", ca.name);
        let kind = if ca.name == "identity-card-ca" {
            "identity"
        } else {
            "residence"
        };
        let text = x509_text(&ca.cert);
        assert_eq!(
            subject_attr(&subject_attrs(&ca.cert), "commonName"),
            issuing_ca_cn(kind)
        );
        assert!(
            text.contains("CA:TRUE, pathlen:0"),
            "{} basic constraints:\n{text}",
            ca.name
        );
        assert_eq!(
            lifetime_days(&ca.cert),
            4383,
            "{} validity days:4383",
            ca.name
        );
        for p in 1..=4 {
            assert!(
                text.contains(&format!("Policy: {POLICY_ARC}.1.{p}")),
                "{}: policy .1.{p} missing",
                ca.name
            );
        }
        openssl_verify(&root.cert, None, &ca.cert);
        lint_pkix_cert(&ca.name, &ca.cert);
        lint_chain(&format!("root -> {}", ca.name), &root.cert, &ca.cert);

        // Its OCSP responder: 30 days, OCSP signing, no-check.
        let responder_text = x509_text(&ca.responder);
        assert!(
            responder_text.contains("OCSP Signing"),
            "{} responder EKU:\n{responder_text}",
            ca.name
        );
        assert!(
            responder_text.contains("OCSP No Check"),
            "{} responder no-check:\n{responder_text}",
            ca.name
        );
        assert_eq!(
            lifetime_days(&ca.responder),
            30,
            "{} responder validity days:30",
            ca.name
        );
        openssl_verify(&root.cert, Some(&ca.cert), &ca.responder);
        lint_pkix_cert(&format!("{} OCSP responder", ca.name), &ca.responder);
        lint_chain(
            &format!("{} -> its OCSP responder", ca.name),
            &ca.cert,
            &ca.responder,
        );
    }

    // Every certificate has a distinct serial.
    let mut serials: Vec<String> = cas
        .iter()
        .map(|c| normalise_serial(str_field(&c.json, "serial")))
        .collect();
    serials.extend(
        cas.iter()
            .map(|c| normalise_serial(str_field(&c.json["ocsp_responder"], "serial"))),
    );
    serials.sort();
    serials.dedup();
    assert_eq!(
        serials.len(),
        6,
        "CA and responder serials are not distinct"
    );

    // init again: refused, nothing changed.
    let ca_list_before = env.ok_stdout(&["ca", "list", "--json"]);
    let files_before = env.data_files();
    assert!(!files_before.is_empty(), "no CA key files under data_dir");
    let out = env.refused(&["init"], &["already initialised", "already initialized"]);
    assert!(
        out.stdout.is_empty() || !String::from_utf8_lossy(&out.stdout).contains("BEGIN"),
        "second init printed certificates"
    );
    assert_eq!(
        env.ok_stdout(&["ca", "list", "--json"]),
        ca_list_before,
        "second init changed the hierarchy"
    );
    assert!(
        env.data_files() == files_before,
        "second init changed files under data_dir"
    );
    env.audit_verify_ok();
}
e2e_test!(init_creates_the_hierarchy);

/// Issues auth, sign (and mobile-auth for EC keys) from one CSR of `key` for
/// a fresh card, and checks every certificate.
fn issue_all_usages(env: &TestEnv, key: KeyType, residence: bool) {
    env.init();
    let (holder, card) = if residence {
        let h = Identity::resident("R0000001");
        let c = Card::residence("200001", &h.registry_key);
        (h, c)
    } else {
        let h = Identity::national("N0000001");
        let c = Card::identity("100001", &h.registry_key);
        (h, c)
    };
    env.holder_with_card(&holder, &card);
    let csr = env.csr(key);

    let mut usages = vec!["auth", "sign"];
    if key.is_ec() {
        usages.push("mobile-auth");
    }
    for usage in &usages {
        let issued = env.issue(&card.number, usage, &csr);
        check_card_certificate(&issued, &card, &holder, usage, &csr);
        assert_eq!(
            issued.json["issuer"].as_str().map(|s| !s.is_empty()),
            Some(true),
            "issuer in JSON"
        );
    }

    // The card lists its certificates; cert list agrees.
    let shown = env.ok_json(&["card", "show", &card.number, "--json"]);
    let certs = shown["certificates"]
        .as_array()
        .unwrap_or_else(|| panic!("no certificates in {shown}"));
    assert_eq!(certs.len(), usages.len(), "card show certificates: {shown}");
    assert_eq!(shown["holder_key"], holder.registry_key.as_str());
    assert_eq!(env.card_certs().len(), usages.len());
    let count = env.audit_verify_ok();
    assert_eq!(
        count,
        env.audit_list().len(),
        "audit verify count vs audit list"
    );
}

fn issue_ec_p256(env: &TestEnv) {
    issue_all_usages(env, KeyType::EcP256, false);
}
e2e_test!(issue_ec_p256);
fn issue_ec_p384_sha384(env: &TestEnv) {
    issue_all_usages(env, KeyType::EcP384Sha384, false);
}
e2e_test!(issue_ec_p384_sha384);
fn issue_ec_p384_sha256_residence_card(env: &TestEnv) {
    issue_all_usages(env, KeyType::EcP384Sha256, true);
}
e2e_test!(issue_ec_p384_sha256_residence_card);
fn issue_rsa_2048_residence_card(env: &TestEnv) {
    issue_all_usages(env, KeyType::Rsa2048, true);
}
e2e_test!(issue_rsa_2048_residence_card);
fn issue_rsa_3072(env: &TestEnv) {
    issue_all_usages(env, KeyType::Rsa3072, false);
}
e2e_test!(issue_rsa_3072);

fn issue_pem_output_from_der_csr(env: &TestEnv) {
    env.init();
    let holder = Identity::national("N0000002");
    let card = Card::identity("100002", &holder.registry_key);
    env.holder_with_card(&holder, &card);
    let csr = env.csr(KeyType::EcP256);
    let der = csr_to_der_file(&csr);

    // Default output: PEM, leaf then issuing CA.
    let out = env.ok(&[
        "issue",
        "--card",
        "100002",
        "--usage",
        "auth",
        "--csr",
        der.to_str().unwrap(),
    ]);
    let pems = split_pems(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        pems.len(),
        2,
        "issue prints the leaf then the issuing CA:\n{}",
        describe("issue", &out)
    );
    let leaf = env.write("auth.pem", &pems[0]);
    let issuing = env.write("issuing.pem", &pems[1]);
    assert_eq!(
        subject_attr(&subject_attrs(&issuing), "commonName"),
        "eID Identity Card CA"
    );
    assert_eq!(
        cert_public_key(&leaf),
        csr_public_key(&csr),
        "key of the DER CSR"
    );

    // --out FILE writes the same kind of bundle.
    let out_file = env.path("sign-bundle.pem");
    env.ok(&[
        "issue",
        "--card",
        "100002",
        "--usage",
        "sign",
        "--csr",
        csr.to_str().unwrap(),
        "--out",
        out_file.to_str().unwrap(),
    ]);
    let bundle = std::fs::read_to_string(&out_file).expect("--out file written");
    let sign_pems = split_pems(&bundle);
    assert_eq!(sign_pems.len(), 2, "--out bundle: {bundle}");
    assert_eq!(sign_pems[1], pems[1], "same issuing CA");

    // The root from ca list completes both chains.
    let root = ca_entries(env)
        .into_iter()
        .find(|c| c.profile == "root-ca")
        .expect("root");
    openssl_verify(&root.cert, Some(&issuing), &leaf);
    let sign_leaf = env.write("sign.pem", &sign_pems[0]);
    openssl_verify(&root.cert, Some(&issuing), &sign_leaf);

    // cert show agrees with what was printed.
    let listed = env.card_certs();
    assert_eq!(listed.len(), 2);
    for cert in &listed {
        let serial = str_field(cert, "serial");
        let pem = env.ok_stdout(&["cert", "show", serial, "--pem"]);
        let json = env.ok_json(&["cert", "show", serial, "--json"]);
        assert_eq!(
            split_pems(&pem).first(),
            split_pems(str_field(&json, "certificate_pem")).first()
        );
        assert_eq!(json["card_number"], "100002");
        assert_eq!(json["holder_key"], "N0000002");
        let expected_leaf = if json["usage"] == "auth" {
            &pems[0]
        } else {
            &sign_pems[0]
        };
        assert_eq!(
            &split_pems(&pem)[0],
            expected_leaf,
            "cert show --pem of {serial}"
        );
        assert!(
            !env.ok_stdout(&["cert", "show", serial]).trim().is_empty(),
            "cert show text"
        );
    }
}
e2e_test!(issue_pem_output_from_der_csr);

fn demo_runs_and_runs_again(env: &TestEnv) {
    env.ok(&["demo"]);
    let certs = env.card_certs();
    assert!(!certs.is_empty(), "demo issued no card certificate");
    let records = env.audit_verify_ok();

    // Every demo certificate chains to the hierarchy of `ca list`.
    let cas = ca_entries(env);
    let root = cas.iter().find(|c| c.profile == "root-ca").expect("root");
    for cert in &certs {
        let serial = str_field(cert, "serial");
        let leaf = env.write(
            &format!("demo/{serial}.pem"),
            env.ok_stdout(&["cert", "show", serial, "--pem"]),
        );
        let issuer = cas
            .iter()
            .find(|c| c.name == str_field(cert, "issuer"))
            .expect("issuer in ca list");
        openssl_verify(&root.cert, Some(&issuer.cert), &leaf);
    }
    let first = &certs[0];
    let leaf = env.path(&format!("demo/{}.pem", str_field(first, "serial")));
    lint_etsi(
        "demo certificate",
        &leaf,
        etsi_type(str_field(first, "usage")),
    );

    // Again: the hierarchy and the certificates are already there.
    env.ok(&["demo"]);
    assert_eq!(
        env.card_certs().len(),
        certs.len(),
        "second demo issued certificates again"
    );
    assert!(env.audit_verify_ok() >= records);
}
e2e_test!(demo_runs_and_runs_again);
