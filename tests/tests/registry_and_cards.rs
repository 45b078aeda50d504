//! Registry import (CSV, JSONL) and show; card add, import and show; which
//! issuing CA serves which card.

use e2e_tests::*;

/// `registry show KEY --json` must give back what was imported.
fn assert_shown(env: &TestEnv, id: &Identity) {
    let shown = env.ok_json(&["registry", "show", &id.registry_key, "--json"]);
    for (column, value) in REGISTRY_COLUMNS.iter().zip(id.fields()) {
        let got = match &shown[*column] {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        if *column == "birth_datetime" {
            // HH:MM may come back as HH:MM:SS.
            let got_trimmed = got
                .strip_suffix(":00")
                .filter(|_| value.len() == 16)
                .unwrap_or(&got);
            assert_eq!(
                got_trimmed, value,
                "{}: {column} in {shown}",
                id.registry_key
            );
        } else {
            assert_eq!(got, value, "{}: {column} in {shown}", id.registry_key);
        }
    }
}

fn sample_registry() -> Vec<Identity> {
    vec![
        Identity::national("N1000001"),
        Identity::national("N1000002").with_names("De Massy, dit \"le Jeune\"", "Jean-Éric"),
        Identity::resident("R1000001"),
        Identity::resident("R1000002").with_status("suspended"),
        Identity::national("N1000003").with_status("inactive"),
    ]
}

fn registry_import_csv_and_show(env: &TestEnv) {
    env.init();
    let ids = sample_registry();
    let file = env.write("registry.csv", registry_csv(&ids));
    let path = file.to_str().unwrap();
    let out = env.ok_stdout(&["registry", "import", path]);
    assert!(
        out.contains("imported 5 identities (5 created, 0 updated, 0 unchanged)"),
        "first import: {out}"
    );
    for id in &ids {
        assert_shown(env, id);
    }

    // Same file again: nothing created or updated.
    let out = env.ok_stdout(&["registry", "import", path]);
    assert!(
        out.contains("imported 5 identities (0 created, 0 updated, 5 unchanged)"),
        "re-import: {out}"
    );

    // One identity changes status, one is new.
    let mut changed = ids.clone();
    changed[0] = changed[0].clone().with_status("suspended");
    changed.push(Identity::resident("R1000003"));
    let file = env.write("registry-2.csv", registry_csv(&changed));
    let out = env.ok_stdout(&["registry", "import", file.to_str().unwrap()]);
    assert!(
        out.contains("imported 6 identities (1 created, 1 updated, 4 unchanged)"),
        "update import: {out}"
    );
    assert_shown(env, &changed[0]);
    assert_shown(env, &changed[5]);

    // Plain text output names the holder; unknown keys are an error.
    let text = env.ok_stdout(&["registry", "show", "N1000002"]);
    assert!(text.contains("Jean-Éric"), "registry show text: {text}");
    env.refused(
        &["registry", "show", "NOPE-404", "--json"],
        &["NOPE-404", "not found", "unknown", "no identity"],
    );
    env.audit_verify_ok();
}
e2e_test!(registry_import_csv_and_show);

fn registry_import_jsonl(env: &TestEnv) {
    env.init();
    let ids = sample_registry();
    let file = env.write("registry.jsonl", registry_jsonl(&ids));
    let out = env.ok_stdout(&["registry", "import", file.to_str().unwrap()]);
    assert!(
        out.contains("imported 5 identities (5 created, 0 updated, 0 unchanged)"),
        "jsonl import: {out}"
    );
    for id in &ids {
        assert_shown(env, id);
    }
    // --format overrides an extension that says nothing.
    let more = vec![Identity::resident("R2000001")];
    let file = env.write("registry.txt", registry_jsonl(&more));
    let out = env.ok_stdout(&[
        "registry",
        "import",
        file.to_str().unwrap(),
        "--format",
        "jsonl",
    ]);
    assert!(
        out.contains("imported 1 identities (1 created, 0 updated, 0 unchanged)")
            || out.contains("imported 1 identity (1 created"),
        "--format jsonl: {out}"
    );
    assert_shown(env, &more[0]);
    let csv = env.write(
        "registry-csv.data",
        registry_csv(&[Identity::resident("R2000002")]),
    );
    env.ok(&[
        "registry",
        "import",
        csv.to_str().unwrap(),
        "--format",
        "csv",
    ]);
    assert_shown(env, &Identity::resident("R2000002"));
}
e2e_test!(registry_import_jsonl);

fn assert_card_shown(env: &TestEnv, card: &Card) {
    let shown = env.ok_json(&["card", "show", &card.number, "--json"]);
    assert_eq!(shown["card_number"], card.number.as_str(), "{shown}");
    assert_eq!(shown["kind"], card.kind.as_str(), "{shown}");
    assert_eq!(shown["holder_key"], card.holder.as_str(), "{shown}");
    assert_eq!(
        shown["issue_date"],
        card.issued.to_string().as_str(),
        "{shown}"
    );
    assert_eq!(
        shown["expiry_date"],
        card.expires.to_string().as_str(),
        "{shown}"
    );
    assert_eq!(
        shown["certificates"].as_array().map(Vec::len),
        Some(0),
        "{shown}"
    );
}

fn card_add_and_import(env: &TestEnv) {
    env.init();
    let holders: Vec<Identity> = (1..=3)
        .map(|i| Identity::national(&format!("N300000{i}")))
        .chain((1..=3).map(|i| Identity::resident(&format!("R300000{i}"))))
        .collect();
    env.import_registry(&holders);

    let one = Card::identity("300001", "N3000001");
    let out = env.add_card(&one);
    assert!(out.contains("registered card 300001"), "card add: {out}");
    assert_card_shown(env, &one);
    // A card that expires before it is issued: the error names the flag.
    let out = env.refused(
        &[
            "card",
            "add",
            "--number",
            "300009",
            "--kind",
            "identity",
            "--holder",
            "N3000001",
            "--issued",
            "2026-01-01",
            "--expires",
            "2025-12-31",
        ],
        &["is not after the issue date"],
    );
    assert!(
        stderr_str(&out).contains("--expires:"),
        "the refusal names --expires: {}",
        stderr_str(&out)
    );

    let csv_cards = vec![
        Card::identity("300002", "N3000002"),
        Card::residence("300003", "R3000001"),
    ];
    let file = env.write("cards.csv", cards_csv(&csv_cards));
    let out = env.ok_stdout(&["card", "import", file.to_str().unwrap()]);
    assert!(out.contains("registered 2 cards"), "card import csv: {out}");

    let jsonl_cards = vec![
        Card::identity("300004", "N3000003"),
        Card::residence("300005", "R3000002"),
        Card::residence("300006", "R3000003"),
    ];
    let file = env.write("cards.jsonl", cards_jsonl(&jsonl_cards));
    let out = env.ok_stdout(&["card", "import", file.to_str().unwrap()]);
    assert!(
        out.contains("registered 3 cards"),
        "card import jsonl: {out}"
    );

    for card in csv_cards.iter().chain(&jsonl_cards) {
        assert_card_shown(env, card);
    }
    env.refused(
        &["card", "show", "999999", "--json"],
        &["999999", "not found", "unknown", "no card"],
    );
    env.audit_verify_ok();
}
e2e_test!(card_add_and_import);

fn each_issuing_ca_serves_its_card_kind(env: &TestEnv) {
    env.init();
    let national = Identity::national("N4000001");
    let resident = Identity::resident("R4000001");
    env.import_registry(&[national.clone(), resident.clone()]);
    let id_card = Card::identity("400001", &national.registry_key);
    let res_card = Card::residence("400002", &resident.registry_key);
    env.add_card(&id_card);
    env.add_card(&res_card);
    let csr = env.csr(KeyType::EcP256);

    let cas = ca_entries(env);
    let ca_pem = |name: &str| {
        split_pems(str_field(
            &cas.iter().find(|c| c.name == name).unwrap().json,
            "certificate_pem",
        ))
        .remove(0)
    };

    let from_id = env.issue(&id_card.number, "auth", &csr);
    check_card_certificate(&from_id, &id_card, &national, "auth", &csr);
    assert_eq!(
        pem_field(&from_id.json, "chain_pem")[0],
        ca_pem("identity-card-ca"),
        "identity card -> identity-card-ca"
    );

    let from_res = env.issue(&res_card.number, "auth", &csr);
    check_card_certificate(&from_res, &res_card, &resident, "auth", &csr);
    assert_eq!(
        pem_field(&from_res.json, "chain_pem")[0],
        ca_pem("residence-card-ca"),
        "residence card -> residence-card-ca"
    );

    // Both CA certificates chain to the same root, which is chain_pem's second entry.
    assert_eq!(
        pem_field(&from_id.json, "chain_pem")[1],
        pem_field(&from_res.json, "chain_pem")[1]
    );
}
e2e_test!(each_issuing_ca_serves_its_card_kind);

fn registry_keeps_the_seconds_of_the_birth_time(env: &TestEnv) {
    // docs/CLI.md: birth date and time `YYYY-MM-DDTHH:MM` or with `:SS`.
    env.init();
    let mut from_csv = Identity::resident("R8000001");
    from_csv.birth_datetime = "1979-11-02T23:10:05".into();
    let mut from_jsonl = Identity::national("N8000001");
    from_jsonl.birth_datetime = "2001-06-30T00:00:59".into();
    let csv = env.write("seconds.csv", registry_csv(std::slice::from_ref(&from_csv)));
    env.ok(&["registry", "import", csv.to_str().unwrap()]);
    let jsonl = env.write(
        "seconds.jsonl",
        registry_jsonl(std::slice::from_ref(&from_jsonl)),
    );
    env.ok(&["registry", "import", jsonl.to_str().unwrap()]);
    assert_shown(env, &from_csv);
    assert_shown(env, &from_jsonl);
}
e2e_test!(registry_keeps_the_seconds_of_the_birth_time);
