//! Least privilege (issue 10, part 3): only `pki-admin migrate` changes the
//! schema and every other component refuses a schema it does not know;
//! each PostgreSQL component role has only the rights its job needs; the
//! files that hold secrets or the CA's state are their owner's alone.

use e2e_tests::*;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};

/// A service command on this environment, as its own database role, with
/// no inherited `PKI_*` variable.
fn service(env: &TestEnv, bin: std::path::PathBuf, role: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("timeout");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PKI_") {
            cmd.env_remove(key);
        }
    }
    cmd.arg("20")
        .arg(bin)
        .args(args)
        .current_dir(env.dir())
        .env("PKI_CONFIG", env.config_path())
        .env("PKI_DATABASE_URL", env.role_url(role))
        .env("PKI_CA_PASSPHRASE", PASSPHRASE)
        .env("PKI_OCSP_PASSPHRASE", OCSP_PASSPHRASE)
        .stdin(Stdio::null());
    cmd
}

/// Every component started on this environment: `pki-admin ca list`, the
/// responder, a CRL publication, a scheduler job.
fn every_component(env: &TestEnv) -> Vec<(&'static str, Output)> {
    let crl_dir = env.path("crl-out");
    let crl_dir = crl_dir.to_str().expect("utf-8 path");
    vec![
        ("pki-admin", env.run(&["ca", "list"])),
        (
            "ocsp-responder",
            output_of(
                &mut service(
                    env,
                    ocsp_responder_bin(),
                    "ocsp",
                    &["--listen", "127.0.0.1:0"],
                ),
                "ocsp-responder",
            ),
        ),
        (
            "crl-publisher",
            output_of(
                &mut service(
                    env,
                    crl_publisher_bin(),
                    "crl_signer",
                    &["--out-dir", crl_dir, "publish"],
                ),
                "crl-publisher",
            ),
        ),
        (
            "pki-scheduler",
            output_of(
                &mut service(
                    env,
                    pki_scheduler_bin(),
                    "scheduler",
                    &["run-once", "expiry"],
                ),
                "pki-scheduler",
            ),
        ),
    ]
}

/// Each component exits 1 (not killed by the timeout) with every keyword.
fn assert_all_refuse(env: &TestEnv, keywords: &[&str]) {
    for (name, out) in every_component(env) {
        assert_eq!(
            out.status.code(),
            Some(1),
            "{name} must refuse at start\n{}",
            describe(name, &out)
        );
        let err = stderr_str(&out);
        for word in keywords {
            assert!(err.contains(word), "{name}: no {word:?}\n{err}");
        }
    }
}

fn newest_version(env: &TestEnv) -> String {
    env.sql("SELECT max(version) FROM __diesel_schema_migrations")[0][0].clone()
}

fn components_refuse_a_schema_newer_than_they_know(env: &TestEnv) {
    env.init();
    let before = env.snapshot();
    env.sql("INSERT INTO __diesel_schema_migrations (version) VALUES ('29991231000099')");
    assert_all_refuse(env, &["newer", "29991231000099", "upgrade"]);
    env.sql("DELETE FROM __diesel_schema_migrations WHERE version = '29991231000099'");
    env.assert_unchanged(&before, "components refused a newer schema");
    assert_eq!(env.ca_list().len(), 3, "works again on the known schema");
}
e2e_test!(components_refuse_a_schema_newer_than_they_know);

fn components_refuse_a_schema_older_than_they_know(env: &TestEnv) {
    env.init();
    let before = env.snapshot();
    let newest = newest_version(env);
    env.sql(&format!(
        "DELETE FROM __diesel_schema_migrations WHERE version = '{newest}'"
    ));
    assert_all_refuse(env, &["older", &newest, "pki-admin migrate"]);
    env.sql(&format!(
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('{newest}')"
    ));
    env.assert_unchanged(&before, "components refused an older schema");
    assert_eq!(env.ca_list().len(), 3, "works again on the known schema");
}
e2e_test!(components_refuse_a_schema_older_than_they_know);

/// `migrate` applies nothing the second time and says so.
fn migrate_is_idempotent(env: &TestEnv) {
    let out = env.as_owner(&["migrate"]);
    assert!(out.contains("up to date"), "{out}");
    assert!(out.contains(&newest_version(env)), "{out}");
}
e2e_test!(migrate_is_idempotent);

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every file under `dir` (recursively).
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The database (SQLite), the keys and their directories are the owner's
/// alone after `migrate` and `init`, whatever the caller's umask.
fn the_ca_files_are_private(env: &TestEnv) {
    env.init();
    let data = env.path("data");
    let keys = data.join("keys");
    let key_files = files_under(&keys);
    assert!(key_files.len() >= 5, "keys: {key_files:?}");
    for file in key_files {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
        let dir = file.parent().expect("key directory");
        assert_eq!(mode(dir), 0o700, "{}", dir.display());
    }
    if env.backend == Backend::Sqlite {
        assert_eq!(mode(&data.join("pki.sqlite")), 0o600);
    }
    // A CA key file opened up to others is refused, naming it, and nothing is signed.
    let before = env.snapshot();
    let ca_key = files_under(&keys.join("ca"))
        .into_iter()
        .find(|p| p.to_string_lossy().contains("identity-card-ca"))
        .expect("the identity-card CA's key");
    std::fs::set_permissions(&ca_key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let args = ["ocsp", "rotate", "--authority", "identity-card-ca"];
    let out = env.run(&args);
    env.assert_error(&args, &out, &["key file", "0644", "chmod 600"]);
    env.assert_unchanged(&before, "a rotation with an open CA key file");
}
e2e_test!(the_ca_files_are_private);

/// A passphrase file that group or others may read is refused, with its
/// name in the message, and nothing is created.
fn an_open_passphrase_file_is_refused(env: &TestEnv) {
    let file = env.write("ca-passphrase", format!("{PASSPHRASE}\n"));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let with_file = |cmd: &mut Command| {
        cmd.env_remove("PKI_CA_PASSPHRASE");
    };
    let mut text = std::fs::read_to_string(env.config_path()).expect("pki.toml");
    text.push_str(&format!(
        "\n[keys]\npassphrase_file = {:?}\n",
        file.display().to_string()
    ));
    std::fs::write(env.config_path(), text).expect("pki.toml");
    let out = env.run_with(&["init"], with_file);
    env.assert_error(&["init"], &out, &["passphrase file", "0644", "chmod 600"]);
    assert!(
        stderr_str(&out).contains(&file.display().to_string()),
        "{}",
        describe("init", &out)
    );
    assert!(env.data_files().is_empty(), "{:?}", env.data_files().keys());
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = env.run_with(&["init"], with_file);
    assert!(out.status.success(), "{}", describe("init", &out));
}
e2e_test!(an_open_passphrase_file_is_refused);

/// Runs `sql` as one of this test's roles; Err(stderr) when refused.
fn as_role(env: &TestEnv, role: &str, sql: &str) -> Result<String, String> {
    let out = psql(&env.role_url(role), sql);
    if out.status.success() {
        Ok(stdout_str(&out))
    } else {
        Err(stderr_str(&out))
    }
}

#[track_caller]
fn denied(env: &TestEnv, role: &str, sql: &str) {
    match as_role(env, role, sql) {
        Ok(out) => panic!("{role} may run {sql:?}: {out}"),
        Err(err) => assert!(
            err.contains("permission denied") || err.contains("must be owner"),
            "{role}: {sql:?} failed otherwise: {err}"
        ),
    }
}

#[track_caller]
fn allowed(env: &TestEnv, role: &str, sql: &str) {
    if let Err(err) = as_role(env, role, sql) {
        panic!("{role} may not run {sql:?}: {err}");
    }
}

/// The roles of `pki-admin db roles`: the responder reads what it serves
/// and writes only its publication marks; no role rewrites the audit log
/// or changes the schema; the auditor only reads.
#[test]
fn each_database_role_has_only_its_rights() {
    let Some(env) = TestEnv::new(Backend::Postgres) else {
        return;
    };
    env.init();
    let serial = &env.cert_list()[0]["serial"];
    let serial = serial.as_str().expect("serial");
    let revoke = format!(
        "UPDATE certificates SET status = 'revoked', revoked_at = now() WHERE serial = '{serial}'"
    );
    let rollback = |sql: &str| format!("BEGIN; {sql}; ROLLBACK;");

    // The OCSP responder: reads the certificates, cannot change one.
    allowed(&env, "ocsp", "SELECT count(*) FROM certificates");
    allowed(&env, "ocsp", "SELECT count(*) FROM audit_log");
    denied(&env, "ocsp", &revoke);
    denied(&env, "ocsp", "DELETE FROM certificates");
    denied(&env, "ocsp", "INSERT INTO audit_log (seq) VALUES (999999)");
    denied(&env, "ocsp", "SELECT count(*) FROM identities");
    allowed(
        &env,
        "ocsp",
        &rollback("INSERT INTO ocsp_publications (instance, feed_position, published_at) VALUES ('t', 1, now())"),
    );

    // The CRL signer: numbers CRLs, never changes a certificate.
    denied(&env, "crl_signer", &revoke);
    denied(&env, "crl_signer", "SELECT count(*) FROM identities");

    // The scheduler: changes a status, never a certificate's content or a new one.
    allowed(&env, "scheduler", &rollback(&revoke));
    denied(
        &env,
        "scheduler",
        &format!("UPDATE certificates SET der = der WHERE serial = '{serial}'"),
    );
    denied(
        &env,
        "scheduler",
        "INSERT INTO authorities (name) VALUES ('rogue')",
    );

    // Nobody but the owner rewrites the audit log or changes the schema.
    for role in ["admin", "ocsp", "crl_signer", "scheduler", "auditor"] {
        denied(&env, role, "DELETE FROM audit_log");
        denied(&env, role, "UPDATE audit_log SET actor = 'someone else'");
        denied(&env, role, "TRUNCATE audit_log");
        denied(&env, role, "CREATE TABLE rogue (x int)");
        denied(&env, role, "DROP TABLE certificates");
    }

    // The auditor reads everything and changes nothing.
    allowed(&env, "auditor", "SELECT count(*) FROM identities");
    denied(&env, "auditor", &revoke);
    denied(&env, "auditor", "UPDATE audit_head SET seq = 0");

    // What `db roles` prints is what was applied.
    let printed = env.ok_stdout(&["db", "roles", "--prefix", "x_", "--schema", "s1"]);
    assert!(printed.contains("\"x_ocsp\"") && printed.contains("\"s1\".ocsp_publications"));
}
