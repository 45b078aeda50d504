//! The tamper-evident audit log: `audit verify` after activity, and after a
//! record was altered or deleted directly in the database.

use e2e_tests::*;

/// init, a registry import, a card, three certificates.
fn some_activity(env: &TestEnv) {
    env.init();
    let holder = Identity::national("N5000001");
    let card = Card::identity("500001", &holder.registry_key);
    env.holder_with_card(&holder, &card);
    let csr = env.csr(KeyType::EcP256);
    for usage in ["auth", "sign", "mobile-auth"] {
        env.issue(&card.number, usage, &csr);
    }
}

/// The `seq` column of `audit_log`, in order.
fn sequence_numbers(env: &TestEnv) -> Vec<i64> {
    env.sql("SELECT seq FROM audit_log ORDER BY seq")
        .iter()
        .map(|row| row[0].parse().expect("integer seq"))
        .collect()
}

/// Whether `text` names record `#seq` (and not, say, `#seq0`).
fn names_record(text: &str, seq: i64) -> bool {
    let needle = format!("#{seq}");
    text.match_indices(&needle)
        .any(|(i, _)| !text[i + needle.len()..].starts_with(|c: char| c.is_ascii_digit()))
}

/// `audit verify` must fail (exit 1) with `error: audit record #SEQ` for one
/// of `seqs`; returns stderr.
fn assert_verify_fails(env: &TestEnv, seqs: &[i64]) -> String {
    let out = env.run(&["audit", "verify"]);
    env.assert_error(&["audit", "verify"], &out, &["audit record #"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        seqs.iter().any(|s| names_record(&err, *s)),
        "audit verify must name record {seqs:?}\n{}",
        describe("pki-admin audit verify", &out)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("intact"),
        "damaged chain reported intact"
    );
    err
}

fn audit_verify_passes_after_activity(env: &TestEnv) {
    some_activity(env);
    let records = env.audit_list();
    assert!(
        records.len() >= 6,
        "expected a record per operation, got {}: {records:?}",
        records.len()
    );
    assert_eq!(
        env.audit_verify_ok(),
        records.len(),
        "audit verify count vs audit list"
    );

    // Records are in sequence, carry the actor and are hash-linked.
    let seqs: Vec<i64> = records
        .iter()
        .map(|r| r["seq"].as_i64().unwrap_or_else(|| panic!("no seq in {r}")))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "seq not contiguous: {seqs:?}"
    );
    assert_eq!(seqs, sequence_numbers(env), "audit list vs audit_log table");
    for r in &records {
        assert_eq!(r["actor"], ACTOR, "actor of {r}");
        assert!(
            r["action"].as_str().is_some_and(|a| !a.is_empty()),
            "action of {r}"
        );
    }
    for pair in records.windows(2) {
        assert_eq!(
            pair[1]["prev_hash"], pair[0]["hash"],
            "hash chain between {} and {}",
            pair[0], pair[1]
        );
    }
    let hashes: std::collections::BTreeSet<String> =
        records.iter().map(|r| r["hash"].to_string()).collect();
    assert_eq!(hashes.len(), records.len(), "hashes are distinct");

    // --tail N gives the last N.
    let tail = as_array(
        env.ok_json(&["audit", "list", "--tail", "2", "--json"]),
        "audit list --tail 2",
    );
    assert_eq!(
        tail.as_slice(),
        &records[records.len() - 2..],
        "audit list --tail 2"
    );
    assert!(
        !env.ok_stdout(&["audit", "list"]).trim().is_empty(),
        "audit list text"
    );
}
e2e_test!(audit_verify_passes_after_activity);

fn audit_verify_detects_altered_details(env: &TestEnv) {
    some_activity(env);
    let seqs = sequence_numbers(env);
    let target = seqs[seqs.len() / 2];
    // The database may guard the table (append-only triggers): an attacker
    // with database rights switches those off, so the chain must still tell.
    let update =
        format!("UPDATE audit_log SET details = '{{\"tampered\": true}}' WHERE seq = {target}");
    env.sql_bypassing_triggers("audit_log", &update);
    let changed = env.sql(&format!(
        "SELECT details FROM audit_log WHERE seq = {target}"
    ));
    assert!(
        changed[0][0].contains("tampered"),
        "the UPDATE did not apply: {changed:?}"
    );
    assert_verify_fails(env, &[target]);
}
e2e_test!(audit_verify_detects_altered_details);

fn audit_verify_detects_deleted_record(env: &TestEnv) {
    some_activity(env);
    let seqs = sequence_numbers(env);
    let target = seqs[seqs.len() / 2];
    let delete = format!("DELETE FROM audit_log WHERE seq = {target}");
    env.sql_bypassing_triggers("audit_log", &delete);
    assert_eq!(
        sequence_numbers(env).len(),
        seqs.len() - 1,
        "the DELETE did not apply"
    );
    // The first bad record is the missing one or the one after it.
    assert_verify_fails(env, &[target, target + 1]);
}
e2e_test!(audit_verify_detects_deleted_record);
