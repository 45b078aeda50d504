//! Hostile files and secrets, through the real binaries.
//!
//! * Registry and card files with control characters (NUL, ESC, CR),
//!   over-long fields, e-mail addresses the mailer would refuse, mobile
//!   numbers outside E.164, a JSON key or a CSV column given twice: each is
//!   refused with its line and field, every problem of the file at once,
//!   nothing written (rows counted before and after), and the very same
//!   message on SQLite and PostgreSQL (each case asserts the exact text).
//! * A registry-event feed with a key given twice is refused.
//! * A PostgreSQL URL carrying passwords (user-info and query parameters)
//!   never appears in what `pki-admin`, `ocsp-responder`, `crl-publisher`
//!   and `pki-scheduler` print when the database cannot be reached.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use e2e_tests::*;

/// Rows of the tables an import writes, and the audit records.
fn counts(env: &TestEnv) -> [usize; 3] {
    let n = |table: &str| -> usize {
        env.sql(&format!("SELECT COUNT(*) FROM {table}"))[0][0]
            .parse()
            .expect("a count")
    };
    [n("identities"), n("cards"), n("audit_log")]
}

/// Runs `pki-admin ARGS FILE`, which must be refused with exactly
/// `expected` after `error: <file>: ` and change nothing.
#[track_caller]
fn refused_exactly(env: &TestEnv, args: &[&str], file: &Path, expected: &str) {
    let before = counts(env);
    let mut all: Vec<&str> = args.to_vec();
    all.push(file.to_str().expect("UTF-8 path"));
    let out = env.run(&all);
    env.assert_code(&all, &out, 1);
    let err = stderr_str(&out);
    let prefix = format!("error: {}: ", file.display());
    let message = err
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("stderr does not start with {prefix:?}\n{err}"));
    assert_eq!(message.trim_end(), expected, "pki-admin {}", all.join(" "));
    assert_eq!(counts(env), before, "nothing is written");
}

/// A registry CSV: a good identity on line 2, then `bad` (after its
/// changes) on line 3.
fn registry_csv_with(bad: impl FnOnce(&mut Identity)) -> String {
    let good = Identity::national("N7000001");
    let mut other = Identity::national("N7000002");
    bad(&mut other);
    registry_csv(&[good, other])
}

fn registry_fields_are_checked_line_by_line(env: &TestEnv) {
    env.init();
    env.import_registry(&[Identity::national("N7000000")]);
    let import = ["registry", "import"];
    let cases: Vec<(&str, String, String)> = vec![
        (
            "nul.csv",
            registry_csv_with(|i| i.family_name = "Gri\0maldi".into()),
            "line 3, field family_name: contains a control character (NUL) at position 4".into(),
        ),
        (
            "esc.jsonl",
            {
                let mut bad = Identity::national("N7000002");
                bad.given_names = "L\u{1b}[2Ja".into();
                registry_jsonl(&[Identity::national("N7000001"), bad])
            },
            "line 2, field given_names: contains a control character (ESC) at position 2".into(),
        ),
        (
            "cr-in-email.csv",
            registry_csv_with(|i| i.email = "lea@example.com\rBcc: all@example.com".into()),
            "line 3, field email: contains a control character (CR) at position 16".into(),
        ),
        (
            "cr-at-end-of-email.jsonl",
            {
                let mut bad = Identity::national("N7000002");
                bad.email = "lea@example.com\r".into();
                registry_jsonl(&[bad])
            },
            "line 1, field email: contains a control character (CR) at position 16".into(),
        ),
        (
            "long-name.csv",
            registry_csv_with(|i| i.family_name = "Ö".repeat(129)),
            "line 3, field family_name: is 129 characters long; at most 128 are allowed".into(),
        ),
        (
            "display-name-email.csv",
            registry_csv_with(|i| i.email = "Léa <lea@example.com>".into()),
            "line 3, field email: \"Léa <lea@example.com>\" is not an e-mail address the mailer accepts: Invalid email user".into(),
        ),
        (
            "bad-email.csv",
            registry_csv_with(|i| i.email = "lea@@example.com".into()),
            "line 3, field email: \"lea@@example.com\" is not an e-mail address the mailer accepts: Invalid email user".into(),
        ),
        (
            "bad-mobile.csv",
            registry_csv_with(|i| i.mobile = "06 12 34 56 78".into()),
            "line 3, field mobile: \"06 12 34 56 78\" is not a mobile number in E.164 form (+ then 8 to 15 digits, no spaces)".into(),
        ),
        (
            "duplicate-key.jsonl",
            {
                let good = Identity::national("N7000001").to_json().to_string();
                let bad = Identity::national("N7000002").to_json().to_string();
                // The second "email" would silently win with serde_json alone.
                let bad = bad.replacen('{', "{\"email\":\"first@example.com\",", 1);
                format!("{good}\n{bad}\n")
            },
            "line 2, field email: appears more than once in the object".into(),
        ),
        (
            "duplicate-column.csv",
            {
                let mut header = REGISTRY_COLUMNS.to_vec();
                header.push("email");
                let mut row = Identity::national("N7000001").fields().to_vec();
                row.push("other@example.com".into());
                csv_document(&header, [row])
            },
            "line 1, field email: column 13 repeats a column name of the header".into(),
        ),
    ];
    for (name, contents, expected) in cases {
        let file = env.write(name, contents);
        refused_exactly(env, &import, &file, &expected);
    }
    // The identities of the refused files are not there.
    for key in ["N7000001", "N7000002"] {
        let out = env.run(&["registry", "show", key]);
        assert_eq!(out.status.code(), Some(1), "{key} was imported");
    }
}
e2e_test!(registry_fields_are_checked_line_by_line);

fn every_error_of_a_file_is_reported_at_once(env: &TestEnv) {
    env.init();
    let good = Identity::national("N7100001");
    let mut two_errors = Identity::national("N7100002");
    two_errors.email = "no-at-sign".into();
    two_errors.mobile = "+3776".into();
    let mut nul = Identity::national("N7100003");
    nul.birth_place = "Mona\0co".into();
    let mut gender = Identity::national("N7100004");
    gender.gender = "Q".into();
    let repeated = Identity::national("N7100001");
    let file = env.write(
        "several.csv",
        registry_csv(&[good, two_errors, nul, gender, repeated]),
    );
    refused_exactly(
        env,
        &["registry", "import"],
        &file,
        "5 errors, nothing was imported:\n  \
         line 3, field email: \"no-at-sign\" is not an e-mail address the mailer accepts: Missing domain or user\n  \
         line 3, field mobile: \"+3776\" is not a mobile number in E.164 form (+ then 8 to 15 digits, no spaces)\n  \
         line 4, field birth_place: contains a control character (NUL) at position 5\n  \
         line 5, field gender: \"Q\" is not one of: F, M, X\n  \
         line 6, field registry_key: N7100001 already appears on line 2",
    );

    // Past the limit: the first 100, then a count.
    let ids: Vec<Identity> = (0..130)
        .map(|n| {
            let mut i = Identity::national(&format!("N72{n:05}"));
            i.mobile = "0600000000".into();
            i
        })
        .collect();
    let file = env.write("many.csv", registry_csv(&ids));
    let mut all = vec!["registry", "import"];
    all.push(file.to_str().unwrap());
    let before = counts(env);
    let out = env.run(&all);
    env.assert_code(&all, &out, 1);
    let err = stderr_str(&out);
    assert!(
        err.contains(": 130 errors, nothing was imported:\n  line 2, field mobile:"),
        "{err}"
    );
    assert_eq!(err.matches("field mobile").count(), 100, "{err}");
    assert!(err.trim_end().ends_with("\n  and 30 more"), "{err}");
    assert_eq!(counts(env), before);

    // Cards: the file's own problems and those found in the database, together.
    let holder = Identity::national("N7300001");
    env.import_registry(std::slice::from_ref(&holder));
    let ok = Card::identity("730001", &holder.registry_key);
    let mut nul = Card::identity("730002", &holder.registry_key);
    nul.holder = "N73\u{0}00001".into();
    let unknown = Card::identity("730003", "N7399999");
    let taken = Card::identity("730004", &holder.registry_key);
    env.add_card(&taken);
    let mut dates = Card::identity("730005", &holder.registry_key);
    dates.expires = dates.issued;
    let file = env.write("cards.csv", cards_csv(&[ok, nul, unknown, taken, dates]));
    refused_exactly(
        env,
        &["card", "import"],
        &file,
        &format!(
            "4 errors, nothing was imported:\n  \
             line 3, field holder_key: contains a control character (NUL) at position 4\n  \
             line 4, field holder_key: unknown identity \"N7399999\" in the registry\n  \
             line 5, field card_number: card \"730004\" is already registered\n  \
             line 6, field expiry_date: {d} is not after the issue date {d}",
            d = days_ago(400)
        ),
    );
    let out = env.run(&["card", "show", "730001"]);
    assert_eq!(out.status.code(), Some(1), "card 730001 was registered");
}
e2e_test!(every_error_of_a_file_is_reported_at_once);

fn an_event_feed_with_a_repeated_key_is_refused(env: &TestEnv) {
    env.init();
    let holder = Identity::national("N7400001");
    let card = Card::identity("740001", &holder.registry_key);
    env.holder_with_card(&holder, &card);
    let before = counts(env);
    let file = env.write(
        "events.jsonl",
        "{\"id\":\"e1\",\"type\":\"death\",\"type\":\"card-lost\",\"card\":\"740001\"}\n",
    );
    let args = ["registry", "events", file.to_str().unwrap()];
    env.refused(&args, &["key type appears more than once"]);
    let err = stderr_str(&env.run(&args));
    assert!(err.contains("line 1"), "{err}");
    assert_eq!(counts(env), before);
}
e2e_test!(an_event_feed_with_a_repeated_key_is_refused);

// ---------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------

const SECRETS: [&str; 4] = ["Us3rS3cret", "Qu3ryS3cret", "SslS3cret", "S3cr%zz3t"];

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Runs `cmd` to its end (killed after 60 s).
fn finish(mut cmd: Command, what: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// Every binary, started on a configuration whose database URL is
/// `url`: none may succeed, and none may print a secret.
fn no_binary_prints_the_secrets(url: &str, label: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("pki.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\ndatabase_url = {:?}\n",
            dir.path().join("data").display().to_string(),
            url
        ),
    )
    .expect("write pki.toml");
    let registry = dir.path().join("registry.csv");
    std::fs::write(&registry, registry_csv(&[Identity::national("N7500001")])).unwrap();
    let runs: Vec<(&str, Command)> = vec![
        ("pki-admin cert list", {
            let mut c = Command::new(pki_admin_bin());
            c.args(["cert", "list"]);
            c
        }),
        ("pki-admin registry import", {
            let mut c = Command::new(pki_admin_bin());
            c.args(["registry", "import"]).arg(&registry);
            c
        }),
        ("ocsp-responder", {
            let mut c = Command::new(ocsp_responder_bin());
            c.args(["--listen", "127.0.0.1:0", "--log-level", "debug"])
                .env("PKI_OCSP_PASSPHRASE", "x");
            c
        }),
        ("crl-publisher publish", {
            let mut c = Command::new(crl_publisher_bin());
            c.arg("--out-dir")
                .arg(dir.path().join("crl"))
                .args(["--log-level", "debug", "publish"])
                .env("PKI_CA_PASSPHRASE", "x");
            c
        }),
        ("pki-scheduler run-once requests", {
            let mut c = Command::new(pki_scheduler_bin());
            c.args(["run-once", "requests"]);
            c
        }),
    ];
    for (what, mut cmd) in runs {
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if ["PKI_", "OCSP_", "CRL_", "SCHEDULER_"]
                .iter()
                .any(|p| k.starts_with(p))
            {
                cmd.env_remove(key);
            }
        }
        cmd.current_dir(dir.path())
            .env("PKI_CONFIG", &config)
            .env("RUST_LOG", "trace");
        let out = finish(cmd, what);
        let shown = describe(&format!("{what} ({label})"), &out);
        eprintln!("{shown}");
        assert!(!out.status.success(), "{what} succeeded\n{shown}");
        let text = format!("{}{}", stdout_str(&out), stderr_str(&out));
        for secret in SECRETS {
            assert!(!text.contains(secret), "{what} printed {secret:?}\n{shown}");
        }
        assert!(
            text.contains("127.0.0.1"),
            "{what} does not say which database failed\n{shown}"
        );
    }
}

/// A refused connection: nothing listens on the port.
#[test]
fn database_passwords_never_reach_the_output_when_the_server_is_away() {
    let port = closed_port();
    no_binary_prints_the_secrets(
        &format!(
            "postgres://ca:Us3rS3cret@127.0.0.1:{port}/pki?password=Qu3ryS3cret&sslpassword=SslS3cret&sslmode=disable"
        ),
        "connection refused",
    );
    // A password libpq cannot decode, which its error message quotes.
    no_binary_prints_the_secrets(
        &format!("postgres://ca:S3cr%zz3t@127.0.0.1:{port}/pki?password=Qu3ryS3cret"),
        "bad percent-encoding",
    );
}

/// A real server that refuses the connection (no such database).
#[test]
fn database_passwords_never_reach_the_output_when_the_server_refuses() {
    let base = postgres_base_url();
    let Some(host) = base
        .split_once('@')
        .map(|(_, rest)| rest.split('/').next().unwrap_or(rest).to_string())
    else {
        panic!("PKI_TEST_POSTGRES_URL {base:?} has no user@host");
    };
    if !psql(&base, "select 1").status.success() {
        if std::env::var_os("CI").is_some() {
            panic!("PostgreSQL not reachable at {base} (CI is set: this is a failure)");
        }
        eprintln!("SKIPPED (PostgreSQL not reachable at {base})");
        return;
    }
    no_binary_prints_the_secrets(
        &format!(
            "postgres://postgres:Us3rS3cret@{host}/no_such_db_{}?password=Qu3ryS3cret&sslpassword=SslS3cret&sslmode=disable",
            unique_suffix()
        ),
        "no such database",
    );
}
