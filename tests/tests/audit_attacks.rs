//! Attacks on the audit log by someone with full database rights, after a
//! signed checkpoint exists: each is done with real SQL on the real
//! database, and `pki-admin audit verify --checkpoints DIR` must fail with
//! a message naming what happened. The chain alone misses the last two
//! (a cut tail with the head moved back, a tail rewritten with fresh
//! hashes); the tests show that too. Plus the checkpoints and proofs
//! themselves, judged by independent tools: `openssl dgst` for the
//! checkpoint signature and a few lines of Python (`hashlib`) for the
//! RFC 9162 tree and the chain's record hashes.

use e2e_tests::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const AUDIT_PASSPHRASE: &str = "e2e audit key passphrase";

/// The configured checkpoint directory (`<data_dir>/audit-checkpoints`).
fn checkpoint_dir(env: &TestEnv) -> PathBuf {
    env.path("data/audit-checkpoints")
}

/// The audit key's public key, written when the key was created.
fn audit_public_key(env: &TestEnv) -> PathBuf {
    env.path("data/keys/audit/audit-key.pub.pem")
}

/// A card holder and `n` certificates (each adds audit records).
fn activity(env: &TestEnv, tag: u32, n: usize) {
    let holder = Identity::national(&format!("N58{tag:05}"));
    let card = Card::identity(&format!("58{tag:04}"), &holder.registry_key);
    env.holder_with_card(&holder, &card);
    let csr = env.csr(KeyType::EcP256);
    for usage in ["auth", "sign", "mobile-auth"].into_iter().take(n) {
        env.issue(&card.number, usage, &csr);
    }
}

/// `pki-admin audit checkpoint` with the audit passphrase; returns the
/// path of the new checkpoint file.
#[track_caller]
fn checkpoint(env: &TestEnv) -> PathBuf {
    let before: std::collections::BTreeSet<PathBuf> = checkpoint_files(env).into_iter().collect();
    let out = env.run_with(&["audit", "checkpoint"], |c| {
        c.env("PKI_AUDIT_PASSPHRASE", AUDIT_PASSPHRASE);
    });
    assert!(
        out.status.success(),
        "{}",
        describe("pki-admin audit checkpoint", &out)
    );
    let new: Vec<PathBuf> = checkpoint_files(env)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(new.len(), 1, "one new checkpoint file: {new:?}");
    new[0].clone()
}

fn checkpoint_files(env: &TestEnv) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(checkpoint_dir(env))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// The value of `name: ` in a checkpoint file.
fn field(checkpoint: &Path, name: &str) -> String {
    let text = fs::read_to_string(checkpoint).expect("read checkpoint");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .to_string()
}

/// init, activity, a checkpoint, more activity: returns the checkpoint
/// file and the size it covers.
fn checkpointed_log(env: &TestEnv) -> (PathBuf, i64) {
    env.init();
    activity(env, 1, 3);
    let cp = checkpoint(env);
    activity(env, 2, 1);
    let size: i64 = field(&cp, "size").parse().expect("size");
    assert!(size >= 8, "a checkpoint of a busy log: {size}");
    (cp, size)
}

fn seqs(env: &TestEnv) -> Vec<i64> {
    env.sql("SELECT seq FROM audit_log ORDER BY seq")
        .iter()
        .map(|r| r[0].parse().expect("seq"))
        .collect()
}

fn verify_args(env: &TestEnv) -> Vec<String> {
    vec![
        "audit".into(),
        "verify".into(),
        "--checkpoints".into(),
        checkpoint_dir(env).display().to_string(),
    ]
}

/// `audit verify --checkpoints DIR` must pass; returns stdout.
#[track_caller]
fn verify_ok(env: &TestEnv) -> String {
    let args = verify_args(env);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.ok_stdout(&args)
}

/// `audit verify --checkpoints DIR` must fail (exit 1) with an error
/// mentioning every one of `words`; returns stderr.
#[track_caller]
fn verify_fails(env: &TestEnv, words: &[&str]) -> String {
    let args = verify_args(env);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = env.run(&args);
    env.assert_error(&args, &out, &[]);
    let err = stderr_str(&out);
    for w in words {
        assert!(
            err.contains(w),
            "the error must say {w:?}\n{}",
            describe(&args.join(" "), &out)
        );
    }
    assert!(
        !stdout_str(&out).contains("intact"),
        "{}",
        describe("verify", &out)
    );
    eprintln!("detected: {}", err.trim());
    err
}

/// The record hash rule of `storage::chain::record_hash`, written again in
/// Python: SHA-256 over the compact JSON array
/// `[seq, at, actor, action, subject, details, prev]`, `at` as
/// `YYYY-MM-DDTHH:MM:SS.ffffff`. Input: a JSON list of rows
/// `[seq, at, actor, action, subject, details]` and the hash before the
/// first; output: one `[seq, prev_hash, hash]` per row.
const RECORD_HASH_PY: &str = r#"
import hashlib, json, sys, datetime
rows, prev = json.loads(sys.argv[1]), sys.argv[2]
out = []
for seq, at, actor, action, subject, details in rows:
    t = datetime.datetime.fromisoformat(at.replace(' ', 'T'))
    at = t.strftime('%Y-%m-%dT%H:%M:%S.%f')
    canonical = json.dumps([seq, at, actor, action, subject, details, prev],
                           separators=(',', ':'), ensure_ascii=False)
    h = hashlib.sha256(canonical.encode()).hexdigest()
    out.append([seq, prev, h])
    prev = h
print(json.dumps(out))
"#;

/// Chains `rows` from `prev` with the project's rule (in Python).
fn rechain(rows: &[Value], prev: &str) -> Vec<(i64, String, String)> {
    let out = output_of(
        Command::new("python3")
            .arg("-c")
            .arg(RECORD_HASH_PY)
            .arg(Value::Array(rows.to_vec()).to_string())
            .arg(prev),
        "python3 record hash",
    );
    assert!(out.status.success(), "{}", describe("python3", &out));
    serde_json::from_slice(&out.stdout).expect("rechain output")
}

/// The audit rows from `from` on, as `[seq, at, actor, action, subject,
/// details]`, with their stored prev_hash and hash.
fn rows_from(env: &TestEnv, from: i64) -> Vec<(Value, String, String)> {
    // details last: it is JSON and may hold anything but a newline.
    env.sql(&format!(
        "SELECT seq, at, actor, action, subject, prev_hash, hash, details \
         FROM audit_log WHERE seq >= {from} ORDER BY seq"
    ))
    .into_iter()
    .map(|r| {
        let seq: i64 = r[0].parse().expect("seq");
        let details = r[7..].join("|");
        (
            serde_json::json!([seq, r[1], r[2], r[3], r[4], details]),
            r[5].clone(),
            r[6].clone(),
        )
    })
    .collect()
}

fn sql_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

// --- the attacks ---------------------------------------------------------

fn altered_row_is_named(env: &TestEnv) {
    let (_, size) = checkpointed_log(env);
    let target = size / 2;
    env.sql_bypassing_triggers(
        "audit_log",
        &format!("UPDATE audit_log SET details = '{{\"amount\":0}}' WHERE seq = {target}"),
    );
    verify_fails(env, &[&format!("#{target} was altered")]);
}
e2e_test!(altered_row_is_named);

fn deleted_middle_row_is_named(env: &TestEnv) {
    let (_, size) = checkpointed_log(env);
    let target = size / 2;
    env.sql_bypassing_triggers(
        "audit_log",
        &format!("DELETE FROM audit_log WHERE seq = {target}"),
    );
    verify_fails(env, &[&format!("#{target} is missing")]);
}
e2e_test!(deleted_middle_row_is_named);

fn deleted_tail_with_head_moved_back_is_named(env: &TestEnv) {
    let (cp, size) = checkpointed_log(env);
    let keep = size - 3;
    let hash = env.sql(&format!("SELECT hash FROM audit_log WHERE seq = {keep}"))[0][0].clone();
    env.sql_bypassing_triggers(
        "audit_log",
        &format!("DELETE FROM audit_log WHERE seq > {keep}"),
    );
    env.sql(&format!(
        "UPDATE audit_head SET seq = {keep}, hash = '{hash}' WHERE id = 1"
    ));
    assert_eq!(seqs(env).last(), Some(&keep), "the DELETE did not apply");
    // The chain alone is fooled: that is the attack.
    assert_eq!(env.audit_verify_ok(), keep as usize);
    let err = verify_fails(env, &["the tail was cut", &format!("ends at #{keep}")]);
    assert!(err.contains(&cp.display().to_string()), "{err}");
}
e2e_test!(deleted_tail_with_head_moved_back_is_named);

fn tail_rewritten_with_recomputed_hashes_is_named(env: &TestEnv) {
    let (_, size) = checkpointed_log(env);
    let from = size - 2;
    let rows = rows_from(env, from - 1);
    // The Python rule reproduces the stored hashes of untouched rows.
    let untouched = rechain(&[rows[0].0.clone(), rows[1].0.clone()], &rows[0].1);
    assert_eq!(untouched[0].2, rows[0].2, "record hash rule (Python)");
    assert_eq!(untouched[1].2, rows[1].2, "record hash rule (Python)");
    // Rewrite every record from #from on, chained afresh.
    let forged: Vec<Value> = rows[1..]
        .iter()
        .map(|(r, _, _)| {
            let mut r = r.clone();
            r[5] = Value::String("{\"rewritten\":true}".into());
            r
        })
        .collect();
    let chained = rechain(&forged, &rows[0].2);
    for (seq, prev, hash) in &chained {
        env.sql_bypassing_triggers(
            "audit_log",
            &format!(
                "UPDATE audit_log SET details = {}, prev_hash = '{prev}', hash = '{hash}' WHERE seq = {seq}",
                sql_quote("{\"rewritten\":true}")
            ),
        );
    }
    let (last_seq, _, last_hash) = chained.last().expect("rows").clone();
    env.sql(&format!(
        "UPDATE audit_head SET hash = '{last_hash}' WHERE id = 1 AND seq = {last_seq}"
    ));
    // The chain alone is fooled.
    assert_eq!(env.audit_verify_ok(), last_seq as usize);
    verify_fails(env, &["rewritten since it was signed", &format!("#{size}")]);
}
e2e_test!(tail_rewritten_with_recomputed_hashes_is_named);

fn reordered_pair_is_named(env: &TestEnv) {
    let (_, size) = checkpointed_log(env);
    let a = size / 2;
    let b = a + 1;
    for statement in [
        format!("UPDATE audit_log SET seq = 999999999 WHERE seq = {a}"),
        format!("UPDATE audit_log SET seq = {a} WHERE seq = {b}"),
        format!("UPDATE audit_log SET seq = {b} WHERE seq = 999999999"),
    ] {
        env.sql_bypassing_triggers("audit_log", &statement);
    }
    verify_fails(env, &[&format!("#{a} does not follow"), "reordered"]);
}
e2e_test!(reordered_pair_is_named);

/// A checkpoint of the current log, made and signed with another P-384
/// key by openssl, dropped into the directory.
fn forged_checkpoint_signed_by_another_key_is_named(env: &TestEnv) {
    let (cp, _) = checkpointed_log(env);
    let key = env.path("other.key.pem");
    let pubder = env.path("other.pub.der");
    let run = |args: &[&str]| {
        let out = output_of(Command::new("openssl").args(args), "openssl");
        assert!(out.status.success(), "{}", describe("openssl", &out));
    };
    run(&[
        "ecparam",
        "-genkey",
        "-name",
        "secp384r1",
        "-noout",
        "-out",
        key.to_str().unwrap(),
    ]);
    run(&[
        "pkey",
        "-in",
        key.to_str().unwrap(),
        "-pubout",
        "-outform",
        "DER",
        "-out",
        pubder.to_str().unwrap(),
    ]);
    let spki = fs::read(&pubder).unwrap();
    let key_id = python_sha256_hex(&pubder);
    let real = fs::read_to_string(&cp).unwrap();
    let size: u64 = field(&cp, "size").parse().unwrap();
    let forged_size = size + 1;
    let signed: String = real
        .lines()
        .take(7)
        .map(|l| {
            if l.starts_with("key-id: ") {
                format!("key-id: {key_id}\n")
            } else if l.starts_with("size: ") {
                format!("size: {forged_size}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let msg = env.write("forged.msg", &signed);
    let sig = env.path("forged.sig");
    run(&[
        "dgst",
        "-sha384",
        "-sign",
        key.to_str().unwrap(),
        "-out",
        sig.to_str().unwrap(),
        msg.to_str().unwrap(),
    ]);
    let forged = format!(
        "{signed}spki: {}\nsignature: {}\n",
        base64(&spki),
        base64(&fs::read(&sig).unwrap())
    );
    let file = checkpoint_dir(env).join(format!("checkpoint-{forged_size:012}.txt"));
    fs::write(&file, forged).unwrap();
    let err = verify_fails(env, &["signed by another key", &key_id]);
    assert!(err.contains(&file.display().to_string()), "{err}");
}
e2e_test!(forged_checkpoint_signed_by_another_key_is_named);

fn forged_checkpoint_with_changed_root_is_named(env: &TestEnv) {
    let (cp, _) = checkpointed_log(env);
    let root = field(&cp, "root");
    let other: String = root
        .chars()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect();
    let text = fs::read_to_string(&cp).unwrap();
    fs::write(
        &cp,
        text.replace(&format!("root: {root}"), &format!("root: {other}")),
    )
    .unwrap();
    verify_fails(
        env,
        &["signature does not verify", "changed after it was signed"],
    );
}
e2e_test!(forged_checkpoint_with_changed_root_is_named);

// --- the intact log, checkpoints and proofs ---------------------------------

fn python_sha256_hex(file: &Path) -> String {
    let out = output_of(
        Command::new("python3")
            .arg("-c")
            .arg("import hashlib,sys;print(hashlib.sha256(open(sys.argv[1],'rb').read()).hexdigest())")
            .arg(file),
        "python3 sha256",
    );
    assert!(out.status.success(), "{}", describe("python3", &out));
    stdout_str(&out).trim().to_string()
}

fn base64(bytes: &[u8]) -> String {
    let out = output_of(
        Command::new("python3")
            .arg("-c")
            .arg("import base64,sys;print(base64.b64encode(bytes.fromhex(sys.argv[1])).decode())")
            .arg(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()),
        "python3 base64",
    );
    stdout_str(&out).trim().to_string()
}

/// Checks a checkpoint's signature with openssl, not with the project.
fn openssl_verifies_checkpoint(env: &TestEnv, cp: &Path) {
    let text = fs::read_to_string(cp).unwrap();
    let signed: String = text.lines().take(7).map(|l| format!("{l}\n")).collect();
    let msg = env.write("cp.msg", signed);
    let sig_b64 = field(cp, "signature");
    let out = output_of(
        Command::new("python3")
            .arg("-c")
            .arg("import base64,sys;open(sys.argv[2],'wb').write(base64.b64decode(sys.argv[1]))")
            .arg(&sig_b64)
            .arg(env.path("cp.sig")),
        "python3 b64decode",
    );
    assert!(out.status.success());
    let out = output_of(
        Command::new("openssl").args([
            "dgst",
            "-sha384",
            "-verify",
            audit_public_key(env).to_str().unwrap(),
            "-signature",
            env.path("cp.sig").to_str().unwrap(),
            msg.to_str().unwrap(),
        ]),
        "openssl dgst -verify",
    );
    assert!(
        out.status.success() && stdout_str(&out).contains("Verified OK"),
        "{}",
        describe("openssl dgst -sha384 -verify", &out)
    );
}

/// RFC 9162 section 2.1.3.2, in Python: the root an inclusion proof leads to.
const INCLUSION_PY: &str = r#"
import hashlib, json, sys
p = json.load(open(sys.argv[1]))
H = lambda b: hashlib.sha256(b).digest()
fn, sn = p["leaf_index"], p["tree_size"] - 1
assert fn <= sn
r = H(b"\x00" + bytes.fromhex(p["record_hash"]))
assert r.hex() == p["leaf_hash"]
for h in p["audit_path"]:
    h = bytes.fromhex(h)
    assert sn != 0
    if fn & 1 or fn == sn:
        r = H(b"\x01" + h + r)
        while not fn & 1 and fn != 0:
            fn >>= 1; sn >>= 1
    else:
        r = H(b"\x01" + r + h)
    fn >>= 1; sn >>= 1
assert sn == 0
print(r.hex())
"#;

fn intact_log_with_several_checkpoints_verifies(env: &TestEnv) {
    env.init();
    activity(env, 1, 2);
    let first = checkpoint(env);
    openssl_verifies_checkpoint(env, &first);
    // Nothing new: no second file of the same size.
    let again = env.run_with(&["audit", "checkpoint"], |c| {
        c.env("PKI_AUDIT_PASSPHRASE", AUDIT_PASSPHRASE);
    });
    assert!(again.status.success(), "{}", describe("checkpoint", &again));
    assert!(
        stdout_str(&again).contains("already covers"),
        "{}",
        describe("checkpoint", &again)
    );
    activity(env, 2, 2);
    // The scheduler's job makes the next one (the log grew past the
    // configured number of records).
    let mut config = fs::read_to_string(env.config_path()).unwrap();
    config.push_str("\n[audit]\ncheckpoint_every_records = 3\n");
    fs::write(env.config_path(), config).unwrap();
    let mut cmd = Command::new(workspace_bin(
        "pki-scheduler",
        "PKI_SCHEDULER_BIN",
        "scheduler",
    ));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PKI_") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(env.dir())
        .env("PKI_CONFIG", env.config_path())
        .env("PKI_AUDIT_PASSPHRASE", AUDIT_PASSPHRASE)
        .args(["run-once", "audit-checkpoint"]);
    let out = output_of(&mut cmd, "pki-scheduler run-once audit-checkpoint");
    assert!(out.status.success(), "{}", describe("scheduler", &out));
    let line = json_lines(&stdout_str(&out)).remove(0);
    let second = PathBuf::from(str_field(&line["report"], "checkpoint"));
    openssl_verifies_checkpoint(env, &second);
    activity(env, 3, 1);
    let third = checkpoint(env);
    assert_eq!(checkpoint_files(env).len(), 3);
    let records = env.audit_list();
    let actions: Vec<&str> = records
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "audit.checkpoint").count(),
        3,
        "each checkpoint is recorded in the log"
    );

    let out = verify_ok(env);
    assert!(
        out.contains(&format!("audit chain intact: {} records", records.len())),
        "{out}"
    );
    assert!(out.contains("3 signed checkpoints match"), "{out}");
    // The same with the public key given explicitly.
    let mut args = verify_args(env);
    args.push("--key".into());
    args.push(audit_public_key(env).display().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.ok(&args);

    // An inclusion proof of an early record against the second checkpoint,
    // checked offline by pki-admin and independently by Python.
    let size2 = field(&second, "size");
    let proof = env.ok_json(&["audit", "prove", "3", "--size", &size2]);
    assert_eq!(proof["leaf_index"], 2, "{proof}");
    assert_eq!(proof["tree_size"].to_string(), size2, "{proof}");
    assert_eq!(
        proof["checkpoint"].as_str(),
        Some(second.display().to_string().as_str())
    );
    let proof_file = env.write("proof.json", proof.to_string());
    let out = output_of(
        Command::new("python3")
            .arg("-c")
            .arg(INCLUSION_PY)
            .arg(&proof_file),
        "python3 inclusion",
    );
    assert!(out.status.success(), "{}", describe("python3", &out));
    assert_eq!(stdout_str(&out).trim(), field(&second, "root"));
    let record3 = &records[2];
    assert_eq!(proof["record_hash"], record3["hash"]);
    let check = |proof: &Path, cp: &Path, old: Option<&Path>| {
        let mut cmd = env.command();
        // The offline checker needs no configuration and no database.
        cmd.env_remove("PKI_CONFIG")
            .current_dir(std::env::temp_dir())
            .args(["audit", "check-proof"])
            .arg(proof)
            .arg("--checkpoint")
            .arg(cp)
            .arg("--key")
            .arg(audit_public_key(env));
        if let Some(old) = old {
            cmd.arg("--old-checkpoint").arg(old);
        }
        output_of(&mut cmd, "pki-admin audit check-proof")
    };
    let out = check(&proof_file, &second, None);
    assert!(out.status.success(), "{}", describe("check-proof", &out));
    assert!(stdout_str(&out).contains("proof valid: record #3"));
    // The same record claimed at another position fails.
    let mut wrong = proof.clone();
    wrong["leaf_index"] = 3.into();
    let wrong_file = env.write("wrong.json", wrong.to_string());
    let out = check(&wrong_file, &second, None);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        describe("check-proof", &out)
    );
    // Against the wrong checkpoint: refused too.
    let out = check(&proof_file, &third, None);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        describe("check-proof", &out)
    );

    // Default: the newest checkpoint covering the record.
    let latest = env.ok_json(&["audit", "prove", "3"]);
    assert_eq!(
        latest["checkpoint"].as_str(),
        Some(third.display().to_string().as_str())
    );

    // A consistency proof between the first and the third checkpoint.
    let consistency = env.ok_json(&[
        "audit",
        "consistency",
        first.to_str().unwrap(),
        third.to_str().unwrap(),
    ]);
    assert_eq!(
        consistency["old_root"].as_str(),
        Some(field(&first, "root").as_str())
    );
    assert_eq!(
        consistency["new_root"].as_str(),
        Some(field(&third, "root").as_str())
    );
    let cons_file = env.write("consistency.json", consistency.to_string());
    let out = check(&cons_file, &third, Some(&first));
    assert!(out.status.success(), "{}", describe("check-proof", &out));
    assert!(stdout_str(&out).contains("extends the log"));
    // Swapped checkpoints do not fit the proof.
    let out = check(&cons_file, &first, Some(&third));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        describe("check-proof", &out)
    );

    // Bad input: clear errors, nothing changes.
    env.refused(&["audit", "prove", "0"], &["does not exist"]);
    env.refused(
        &["audit", "prove", "3", "--size", "100000"],
        &["outside the log"],
    );
    env.refused(
        &["audit", "consistency", "5", "2"],
        &["consistency proof needs"],
    );
    env.refused(
        &["audit", "consistency", "nonsense", "2"],
        &["neither a tree size nor a checkpoint"],
    );
}
e2e_test!(intact_log_with_several_checkpoints_verifies);
