//! Self-tests of the harness (need openssl, pkilint, python3; not pki-admin).

use crate::*;

// ---------------------------------------------------------------------------
// Self-tests of the harness (need openssl, pkilint, python3; not pki-admin)
// ---------------------------------------------------------------------------

fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("pki-e2e-harness-")
        .tempdir()
        .unwrap()
}

/// A self-signed P-256 certificate made by openssl, with a UTF-8 subject.
fn openssl_cert(dir: &Path, extra: &[&str]) -> PathBuf {
    let cert = dir.join("self.pem");
    let key = dir.join("self.key");
    let mut args: Vec<&OsStr> = vec![
        os("req"),
        os("-x509"),
        os("-new"),
        os("-nodes"),
        os("-batch"),
        os("-utf8"),
        os("-newkey"),
        os("ec"),
        os("-pkeyopt"),
        os("ec_paramgen_curve:P-256"),
        os("-keyout"),
        key.as_os_str(),
        os("-out"),
        cert.as_os_str(),
        os("-days"),
        os("3"),
        os("-subj"),
        os("/C=MC/SN=Grimaldi/GN=Léa Marie/CN=Léa Marie Grimaldi/serialNumber=PNOMC-N1"),
    ];
    args.extend(extra.iter().map(os));
    openssl(&args);
    cert
}

#[test]
fn expected_not_after_follows_the_card_rule() {
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    let long = Card::identity("1", "h").dates(d("2024-03-17"), d("2034-03-16"));
    assert_eq!(long.expected_not_after(), t("2027-03-16T23:59:59Z"));
    let short = Card::identity("1", "h").dates(d("2023-01-10"), d("2025-06-30"));
    assert_eq!(short.expected_not_after(), t("2025-06-30T23:59:59Z"));
    let equal = Card::identity("1", "h").dates(d("2023-01-10"), d("2026-01-09"));
    assert_eq!(equal.expected_not_after(), t("2026-01-09T23:59:59Z"));
    // The default cards exercise both branches.
    let id = Card::identity("1", "h");
    assert_eq!(
        id.expected_not_after().date_naive(),
        plus_years(id.issued, 3) - Duration::days(1)
    );
    let res = Card::residence("2", "h");
    assert_eq!(res.expected_not_after().date_naive(), res.expires);
}

#[test]
fn serial_helpers() {
    assert_eq!(hex_bit_length("00"), 0);
    assert_eq!(hex_bit_length("01"), 1);
    assert_eq!(hex_bit_length("7FFFFFFFFFFFFFFF"), 63);
    assert_eq!(hex_bit_length("8000000000000000"), 64);
    assert_eq!(hex_bit_length("00FF00000000000000"), 64);
    assert_eq!(normalise_serial("0x00ab:cd"), "ABCD");
    assert_eq!(normalise_serial("ABCD"), normalise_serial("00:ab:cd"));
}

#[test]
fn csv_and_jsonl_documents() {
    assert_eq!(csv_field("a,b"), "\"a,b\"");
    assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_eq!(csv_field("plain"), "plain");
    let csv = registry_csv(&[Identity::resident("R1")]);
    let mut lines = csv.lines();
    assert_eq!(lines.next().unwrap(), REGISTRY_COLUMNS.join(","));
    assert_eq!(
        lines.next().unwrap(),
        "R1,Rossi,Marco Giuseppe,,1979-11-02T23:10,Genova,M,residents-section,active,false,,"
    );
    let json: Value =
        serde_json::from_str(registry_jsonl(&[Identity::resident("R1")]).trim()).unwrap();
    assert_eq!(json["protected_adult"], Value::Bool(false));
    assert_eq!(json["registry_key"], "R1");
    let card = Card::identity("100001", "N1");
    assert_eq!(card.add_args()[..4], ["card", "add", "--number", "100001"]);
    assert!(cards_csv(&[card])
        .starts_with("card_number,kind,holder_key,issue_date,expiry_date\n100001,identity,N1,"));
}

#[test]
fn pkilint_json_is_parsed() {
    let text = r#"{"results": [{"node_path": "certificate.tbsCertificate.extensions", "validator": "KeyUsagePresenceValidator", "finding_descriptions": [{"severity": "ERROR", "code": "pkix.ca_certificate_no_ku_extension", "message": null}]}]}"#;
    let f = parse_pkilint_json(text).unwrap();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].code, "pkix.ca_certificate_no_ku_extension");
    assert_eq!(f[0].severity, "ERROR");
    assert!(parse_pkilint_json(r#"{"results": []}"#).unwrap().is_empty());
    assert!(parse_pkilint_json("Traceback").is_err());
}

#[test]
fn openssl_and_pkilint_helpers_on_an_openssl_certificate() {
    let dir = tmp();
    let cert = openssl_cert(dir.path(), &[]);
    let attrs = subject_attrs(&cert);
    assert_eq!(subject_attr(&attrs, "countryName"), "MC");
    assert_eq!(subject_attr(&attrs, "givenName"), "Léa Marie");
    assert_eq!(subject_attr(&attrs, "serialNumber"), "PNOMC-N1");
    let text = x509_text(&cert);
    assert_eq!((not_after(&text) - not_before(&text)).num_days(), 3);
    assert!((not_before(&text) - Utc::now()).num_minutes().abs() < 5);
    assert!(extension(&text, "X509v3 Basic Constraints")
        .unwrap()
        .contains("CA:TRUE"));
    assert!(extension(&text, "X509v3 Key Usage").is_none());
    assert!(!serial_hex(&cert).is_empty());
    openssl_verify(&cert, None, &cert);
    // pkilint does find problems: a CA certificate without key usage.
    let findings = pkilint("lint_pkix_cert", &[cert.as_os_str()]);
    assert!(
        findings
            .iter()
            .any(|f| f.code == "pkix.ca_certificate_no_ku_extension"),
        "{findings:?}"
    );
    let result = std::panic::catch_unwind(|| assert_no_findings("openssl self-signed", &findings));
    assert!(result.is_err(), "assert_no_findings accepted a finding");
    // A clean one passes.
    let dir2 = tmp();
    let good = openssl_cert(
        dir2.path(),
        &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
    );
    lint_pkix_cert("openssl self-signed with KU", &good);
    lint_chain("self", &good, &good);
}

#[test]
fn csrs_of_every_key_type_and_a_corrupted_one() {
    let dir = tmp();
    for key in [
        KeyType::EcP256,
        KeyType::EcP384Sha384,
        KeyType::EcP384Sha256,
        KeyType::Rsa2048,
        KeyType::Rsa1024,
        KeyType::EcSecp256k1,
        KeyType::EcP521,
    ] {
        let csr = make_csr(dir.path(), key, "t");
        let text = stdout_str(&openssl(&[
            os("req"),
            os("-in"),
            csr.as_os_str(),
            os("-noout"),
            os("-text"),
            os("-verify"),
        ]));
        let expected_hash = if key == KeyType::EcP384Sha384 {
            "SHA384"
        } else {
            "sha256"
        };
        assert!(
            text.to_lowercase().contains(&expected_hash.to_lowercase()),
            "{key:?}:\n{text}"
        );
        assert!(csr_public_key(&csr).contains("BEGIN PUBLIC KEY"));
        if key == KeyType::EcP256 || key == KeyType::Rsa2048 {
            let bad = corrupt_csr_signature(
                &csr,
                &dir.path().join(format!("{}-bad.csr.pem", key.label())),
            );
            // Same request info, only the signature differs.
            assert_eq!(csr_public_key(&bad), csr_public_key(&csr));
            let (a, b) = (csr_der(&csr), csr_der(&bad));
            assert_eq!(a.len(), b.len());
            assert_eq!(a.iter().zip(&b).filter(|(x, y)| x != y).count(), 1);
            assert!(bad.with_extension("der").exists());
        }
    }
}

#[test]
fn split_pems_keeps_armour() {
    let one = "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n";
    let two = "-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n";
    let parts = split_pems(&format!("{one}{two}"));
    assert_eq!(parts, vec![one.to_string(), two.to_string()]);
    assert_eq!(split_pems(one.trim_end()), vec![one.to_string()]);
}

#[test]
fn intact_count_and_json_lines() {
    assert_eq!(
        parse_intact_count("audit chain intact: 12 records\n"),
        Some(12)
    );
    assert_eq!(parse_intact_count("something else"), None);
    assert_eq!(json_lines("{\"a\":1}\n\n{\"a\":2}\n").len(), 2);
}

#[test]
fn sqlite_sql_helper() {
    let env = TestEnv::new(Backend::Sqlite).unwrap();
    fs::create_dir_all(env.path("data")).unwrap();
    env.sql("CREATE TABLE selftest_rows (seq INTEGER, details TEXT)");
    env.sql("INSERT INTO selftest_rows VALUES (1, 'a|b'), (2, NULL)");
    let rows = env.sql("SELECT seq, details FROM selftest_rows ORDER BY seq");
    assert_eq!(rows, vec![vec!["1", "a", "b"], vec!["2", ""]]);
    let config = fs::read_to_string(env.config_path()).unwrap();
    assert!(
        config.contains(&format!(
            "database_url = \"sqlite://{}/data/pki.sqlite\"",
            env.dir().display()
        )),
        "{config}"
    );
}

#[test]
fn postgres_schema_per_test() {
    let Some(env) = TestEnv::new(Backend::Postgres) else {
        return;
    };
    let schema = env.pg_schema.clone().unwrap();
    assert!(
        env.database_url
            .ends_with(&format!("?options=-csearch_path%3D{schema}")),
        "{}",
        env.database_url
    );
    env.sql("CREATE TABLE selftest_rows (seq BIGINT, details TEXT)");
    env.sql("INSERT INTO selftest_rows VALUES (1, 'x')");
    assert_eq!(
        env.sql("SELECT seq, details FROM selftest_rows"),
        vec![vec!["1", "x"]]
    );
    let lookup = format!(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = '{schema}' AND table_name = 'selftest_rows'"
    );
    assert_eq!(env.sql(&lookup), vec![vec!["1"]]);
    drop(env);
    let out = psql(
        &postgres_base_url(),
        &format!("SELECT count(*) FROM information_schema.schemata WHERE schema_name = '{schema}'"),
    );
    assert_eq!(stdout_str(&out).trim(), "0", "schema not dropped");
}

#[test]
fn repeated_error_parts_are_found() {
    let twice = "error: invalid CSR: key too small: RSA 1024 bits: key too small: RSA 1024 bits\n";
    assert_eq!(repeated_part(twice).as_deref(), Some("key too small"));
    assert_eq!(repeated_part("error: unknown card \"1\"\n"), None);
    assert_eq!(repeated_part("error: line 3, field gender: x: x\n"), None);
}
