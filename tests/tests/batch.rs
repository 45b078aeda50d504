//! `issue-batch`: a small manifest issued then re-run (idempotent), a manifest
//! with a rejected entry (exit 3), and resumption after `kill -9`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

use e2e_tests::*;

/// Runs `issue-batch MANIFEST --no-progress [extra]`, returns exit code and results.
fn run_batch(
    env: &TestEnv,
    manifest: &std::path::Path,
    extra: &[&str],
) -> (i32, Vec<Value>, String) {
    let mut args = vec!["issue-batch", manifest.to_str().unwrap(), "--no-progress"];
    args.extend_from_slice(extra);
    let out = env.run(&args);
    let shown = describe(&args.join(" "), &out);
    let code = out
        .status
        .code()
        .unwrap_or_else(|| panic!("killed?\n{shown}"));
    let results = json_lines(&String::from_utf8_lossy(&out.stdout));
    (code, results, shown)
}

/// (card, usage) pairs of `cert list --json`, each with its count.
fn certs_per_card_usage(env: &TestEnv) -> BTreeMap<(String, String), usize> {
    let mut map = BTreeMap::new();
    for cert in env.card_certs() {
        let key = (
            str_field(&cert, "card_number").to_string(),
            str_field(&cert, "usage").to_string(),
        );
        *map.entry(key).or_default() += 1;
    }
    map
}

fn batch_issues_then_reports_already_issued(env: &TestEnv) {
    env.init();
    let (ids, cards) = nationals_with_cards("B", 20);
    env.import_registry(&ids);
    let cards_file = env.write("cards.csv", cards_csv(&cards));
    env.ok(&["card", "import", cards_file.to_str().unwrap()]);

    // 40 entries: auth with the CSR inline, sign with a csr_file relative to the manifest.
    let auth_csr = env.csr(KeyType::EcP256);
    let sign_csr = env.csr(KeyType::EcP384Sha384);
    let auth_pem = std::fs::read_to_string(&auth_csr).unwrap();
    std::fs::create_dir_all(env.path("batch/csr")).unwrap();
    std::fs::copy(&sign_csr, env.path("batch/csr/sign.pem")).unwrap();
    let mut manifest = String::new();
    for card in &cards {
        manifest.push_str(&manifest_inline(&card.number, "auth", &auth_pem));
        manifest.push_str(&manifest_file(&card.number, "sign", "csr/sign.pem"));
    }
    let manifest = env.write("batch/manifest.jsonl", manifest);

    let (code, results, shown) = run_batch(env, &manifest, &[]);
    assert_eq!(code, 0, "first run\n{shown}");
    assert_eq!(results.len(), 40, "one result line per entry\n{shown}");
    assert_eq!(
        outcomes(&results),
        BTreeMap::from([("issued".to_string(), 40)]),
        "{shown}"
    );
    let mut lines: Vec<u64> = results
        .iter()
        .map(|r| r["line"].as_u64().expect("line number"))
        .collect();
    lines.sort();
    assert_eq!(lines, (1..=40).collect::<Vec<u64>>(), "result line numbers");

    // Every result is a real certificate of the right card, chained and linted
    // (pkilint on two of them: one per usage, to keep the suite fast).
    let root = ca_entries(env)
        .into_iter()
        .find(|c| c.profile == "root-ca")
        .unwrap();
    let issuing = ca_entries(env)
        .into_iter()
        .find(|c| c.name == "identity-card-ca")
        .unwrap();
    let mut linted = BTreeSet::new();
    for r in &results {
        let usage = str_field(r, "usage");
        let card_no = str_field(r, "card");
        let leaf = env.write(
            &format!("batch-out/{card_no}-{usage}.pem"),
            str_field(r, "certificate_pem"),
        );
        openssl_verify(&root.cert, Some(&issuing.cert), &leaf);
        assert_eq!(
            normalise_serial(&serial_hex(&leaf)),
            normalise_serial(str_field(r, "serial"))
        );
        let card = cards
            .iter()
            .find(|c| c.number == card_no)
            .expect("card of the result");
        let text = x509_text(&leaf);
        assert_eq!(
            not_after(&text),
            card.expected_not_after(),
            "notAfter of {card_no}/{usage}"
        );
        let holder = subject_attrs(&leaf);
        assert_eq!(
            subject_attr(&holder, "serialNumber"),
            format!("PNOMC-{}", card.holder)
        );
        if linted.insert(usage.to_string()) {
            lint_pkix_cert(&format!("batch {usage}"), &leaf);
            lint_chain(&format!("batch {usage}"), &issuing.cert, &leaf);
            lint_etsi(&format!("batch {usage}"), &leaf, etsi_type(usage));
        }
    }
    let per_pair = certs_per_card_usage(env);
    assert_eq!(per_pair.len(), 40);
    assert!(
        per_pair.values().all(|n| *n == 1),
        "duplicates: {per_pair:?}"
    );

    // Second run: nothing new, every line already-issued with the same serial.
    let audit_before = env.audit_list().len();
    let (code, again, shown) = run_batch(env, &manifest, &[]);
    assert_eq!(code, 0, "second run\n{shown}");
    assert_eq!(again.len(), 40, "{shown}");
    assert_eq!(
        outcomes(&again),
        BTreeMap::from([("already-issued".to_string(), 40)]),
        "{shown}"
    );
    let first: BTreeMap<(String, String), String> = results
        .iter()
        .map(|r| {
            (
                (str_field(r, "card").into(), str_field(r, "usage").into()),
                normalise_serial(str_field(r, "serial")),
            )
        })
        .collect();
    for r in &again {
        if let Some(serial) = r["serial"].as_str() {
            let key = (
                str_field(r, "card").to_string(),
                str_field(r, "usage").to_string(),
            );
            assert_eq!(
                first[&key],
                normalise_serial(serial),
                "already-issued reports the existing serial"
            );
        }
    }
    assert_eq!(env.card_certs().len(), 40, "second run issued certificates");
    assert!(env.audit_list().len() >= audit_before);

    // --results FILE: a mixed manifest, one rejected entry -> exit 3, the rest issued.
    let extra = [Identity::national("B09999")];
    env.import_registry(&extra);
    env.add_card(&Card::identity("BC099999", "B09999"));
    let mixed = [
        manifest_file("BC099999", "auth", "csr/sign.pem"),
        manifest_file("NO-SUCH-CARD", "auth", "csr/sign.pem"),
        manifest_inline(&cards[0].number, "auth", &auth_pem),
    ]
    .concat();
    let mixed = env.write("batch/mixed.jsonl", mixed);
    let results_file = env.path("mixed-results.jsonl");
    let (code, stdout_results, shown) =
        run_batch(env, &mixed, &["--results", results_file.to_str().unwrap()]);
    assert_eq!(code, 3, "a rejected entry gives exit 3\n{shown}");
    assert!(
        stdout_results.is_empty(),
        "--results FILE: nothing on stdout\n{shown}"
    );
    let results = json_lines(&std::fs::read_to_string(&results_file).expect("results file"));
    let by_line: BTreeMap<u64, &Value> = results
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r))
        .collect();
    assert_eq!(by_line.len(), 3, "{results:?}");
    assert_eq!(by_line[&1]["outcome"], "issued");
    assert_eq!(by_line[&2]["outcome"], "rejected");
    assert!(
        by_line[&2]["error"].as_str().is_some_and(|e| !e.is_empty()),
        "rejected entry explains why: {}",
        by_line[&2]
    );
    assert_eq!(by_line[&3]["outcome"], "already-issued");
    assert_eq!(env.card_certs().len(), 41);
    env.audit_verify_ok();
}
e2e_test!(batch_issues_then_reports_already_issued);

fn batch_resumes_after_kill(env: &TestEnv) {
    const CARDS: usize = 1500; // x 2 usages = 3000 entries
    env.init();
    let (ids, cards) = nationals_with_cards("K", CARDS);
    env.import_registry(&ids);
    let cards_file = env.write("cards.jsonl", cards_jsonl(&cards));
    env.ok(&["card", "import", cards_file.to_str().unwrap()]);
    let csr = env.csr(KeyType::EcP256);
    std::fs::copy(&csr, env.path("shared.csr.pem")).unwrap();
    // The bureau's two certificates per card (mobile ones come later, from
    // the installation service, once the card is activated).
    let usages = ["auth", "sign"];
    let manifest: String = cards
        .iter()
        .flat_map(|c| {
            usages
                .iter()
                .map(move |u| manifest_file(&c.number, u, "shared.csr.pem"))
        })
        .collect();
    let manifest = env.write("manifest.jsonl", manifest);
    let total = CARDS * usages.len();

    // First run: kill -9 as soon as the first result is on stdout.
    let stderr_file = std::fs::File::create(env.path("first-run.stderr")).unwrap();
    let mut child = env
        .command()
        .args(["issue-batch", manifest.to_str().unwrap(), "--no-progress"])
        .stdout(Stdio::piped())
        .stderr(stderr_file)
        .spawn()
        .expect("spawn issue-batch");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).expect("read first result");
    child.kill().expect("kill -9 issue-batch");
    let status = child.wait().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let stderr = std::fs::read_to_string(env.path("first-run.stderr")).unwrap();
    assert!(
        !first.is_empty(),
        "issue-batch printed no result before exiting ({status})\n{stderr}"
    );
    assert_eq!(
        status.signal(),
        Some(9),
        "issue-batch finished before it could be killed ({status}); enlarge the manifest"
    );
    let seen_issued: Vec<Value> = json_lines(&format!("{first}{rest}"))
        .into_iter()
        .filter(|r| r["outcome"] == "issued")
        .collect();
    assert!(
        !seen_issued.is_empty(),
        "first result was not an issuance: {first}"
    );

    // Second run completes the manifest, issuing nothing twice.
    let (code, results, shown) = run_batch(env, &manifest, &[]);
    assert_eq!(code, 0, "resumed run\n{shown}");
    assert_eq!(results.len(), total, "one result per entry");
    let counts = outcomes(&results);
    let already = counts.get("already-issued").copied().unwrap_or(0);
    let issued = counts.get("issued").copied().unwrap_or(0);
    assert_eq!(counts.get("rejected"), None, "{counts:?}");
    assert_eq!(already + issued, total, "{counts:?}");
    assert!(
        already >= seen_issued.len(),
        "{already} already-issued < {} seen issued before the kill",
        seen_issued.len()
    );
    assert!(
        issued > 0,
        "the killed run cannot have finished: {counts:?}"
    );

    // What each card holds (card show: documented, unlimited), against the
    // serials both runs reported.
    let reported: BTreeMap<(String, String), String> = results
        .iter()
        .map(|r| {
            (
                (str_field(r, "card").into(), str_field(r, "usage").into()),
                normalise_serial(str_field(r, "serial")),
            )
        })
        .collect();
    for r in &seen_issued {
        let key = (
            str_field(r, "card").to_string(),
            str_field(r, "usage").to_string(),
        );
        assert_eq!(
            reported[&key],
            normalise_serial(str_field(r, "serial")),
            "{key:?}: serial printed before the kill vs after resuming"
        );
    }
    let mut serials = BTreeSet::new();
    for card in &cards {
        let shown = env.ok_json(&["card", "show", &card.number, "--json"]);
        let certs = shown["certificates"]
            .as_array()
            .unwrap_or_else(|| panic!("no certificates in {}", abbreviate(&shown)));
        let mut held: Vec<(String, String)> = certs
            .iter()
            .map(|c| {
                (
                    str_field(c, "usage").to_string(),
                    normalise_serial(str_field(c, "serial")),
                )
            })
            .collect();
        held.sort();
        let mut expected: Vec<(String, String)> = usages
            .iter()
            .map(|u| {
                (
                    u.to_string(),
                    reported[&(card.number.clone(), u.to_string())].clone(),
                )
            })
            .collect();
        expected.sort();
        assert_eq!(
            held, expected,
            "card {}: exactly one certificate per usage, the reported one",
            card.number
        );
        serials.extend(held.into_iter().map(|(_, s)| s));
    }
    assert_eq!(serials.len(), total, "distinct serials");
    let records = env.audit_verify_ok();
    assert_eq!(records, env.audit_list().len());

    // Every certificate is listed once (`cert_list` asks for all of them).
    let card_certs = env.card_certs();
    assert_eq!(
        card_certs.len(),
        total,
        "cert list --json does not list every certificate"
    );
    let per_pair = certs_per_card_usage(env);
    assert!(
        per_pair.values().all(|n| *n == 1),
        "card+usage with several certificates in cert list"
    );
}
e2e_test!(batch_resumes_after_kill);
