//! First contact (issue 9, items 13, 17 and 20), tried as a new user would:
//!
//! * the README's "Operating it" block, pasted as it is into a shell in a
//!   new home directory (the binaries on `PATH`, both passphrases set by the
//!   block, the CA certificates where its `openssl` lines expect them), on
//!   the embedded default (SQLite) and with a `pki.toml` naming PostgreSQL;
//! * `pki-admin cert list | head -1`: exit 0, no panic (item 13);
//! * a reading command where there is no CA: exit 1, "no CA database",
//!   nothing created (item 17);
//! * `registry event`: a line for people, JSON with `--json`; one name per
//!   concept (`--invalidity-date`, `invalidity_date`, `card_number` in a
//!   manifest) with the older names still accepted;
//! * `card import` names the field that is wrong;
//! * two `issue` commands for the same card and usage at once: the loser is
//!   told that another request issued it, with its serial.

use e2e_tests::*;
use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

/// A free TCP port on 127.0.0.1 (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The `sh` block of the README section `## Operating it`, as logical lines
/// (a line ending with `\` continues on the next).
fn readme_block() -> Vec<String> {
    let readme = fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let section = readme
        .split("## Operating it")
        .nth(1)
        .expect("a section `## Operating it` in README.md");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a ```sh block in `## Operating it`");
    let mut lines = Vec::new();
    let mut pending = String::new();
    for line in block.lines() {
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(line);
        lines.push(std::mem::take(&mut pending));
    }
    lines
}

/// Runs `lines` as one bash script in `cwd` (as pasted into a terminal: no
/// `set -e`), in its own process group (killed at the end, with whatever
/// it left running), at most 5 minutes. Returns each line's output (stdout
/// and stderr) and exit status, by index, and the whole output.
fn paste(
    cwd: &Path,
    lines: &[String],
    env: &[(&str, String)],
) -> (HashMap<usize, (String, i32)>, String) {
    use std::os::unix::process::CommandExt;
    let mut script = String::from("exec 2>&1\n");
    for (i, line) in lines.iter().enumerate() {
        script.push_str(&format!(
            "echo '@@@ begin {i}'\n{line}\necho \"@@@ end {i} $?\"\n"
        ));
    }
    let mut cmd = Command::new("timeout");
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("PKI_") || k.starts_with("OCSP_") || k.starts_with("CRL_") {
            cmd.env_remove(key);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(["300", "bash", "-c"])
        .arg(&script)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .process_group(0);
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bash");
    let pgid = child.id();
    let out = child.wait_with_output().expect("wait for bash");
    // The services the block started, if it did not stop them.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
    let text = format!("{}{}", stdout_str(&out), stderr_str(&out));
    let mut results = HashMap::new();
    let mut current: Option<String> = None;
    for l in text.lines() {
        if l.starts_with("@@@ begin ") {
            current = Some(String::new());
        } else if let Some(rest) = l.strip_prefix("@@@ end ") {
            let (i, rc) = rest.split_once(' ').expect("index and status");
            results.insert(
                i.parse::<usize>().expect("line index"),
                (
                    current.take().unwrap_or_default(),
                    rc.parse().expect("exit status"),
                ),
            );
        } else if let Some(output) = current.as_mut() {
            output.push_str(l);
            output.push('\n');
        }
    }
    (results, text)
}

/// The README's "Operating it" block, pasted as it is in a new home
/// directory: its first line (`cargo build --release ...`) is replaced by
/// the binaries under test on `PATH`, and its ports by free ones; nothing
/// else changes. On PostgreSQL the CA's directory holds a `pki.toml` with
/// only the `database_url` (the block says "unless ./pki.toml says
/// otherwise").
fn readme_operating_block_works_pasted(env: &TestEnv) {
    let home = env.path("home");
    let ca_dir = home.join("eid-ca");
    fs::create_dir_all(&ca_dir).expect("create the CA directory");
    if env.backend == Backend::Postgres {
        fs::write(
            ca_dir.join("pki.toml"),
            format!("database_url = {:?}\n", env.database_url),
        )
        .expect("write pki.toml");
    }
    let bin_dir = pki_admin_bin()
        .parent()
        .expect("the binaries' directory")
        .to_path_buf();
    let ports: Vec<(String, String)> = ["8080", "8081", "8083"]
        .iter()
        .map(|p| {
            (
                format!("127.0.0.1:{p}"),
                format!("127.0.0.1:{}", free_port()),
            )
        })
        .collect();
    let block = readme_block();
    assert!(
        block[0].starts_with("cargo build"),
        "the block starts with the build: {block:?}"
    );
    let lines: Vec<String> = block
        .iter()
        .enumerate()
        .map(|(i, line)| {
            if i == 0 {
                return format!("export PATH=\"{}:$PATH\"", bin_dir.display());
            }
            ports
                .iter()
                .fold(line.clone(), |l, (from, to)| l.replace(from, to))
        })
        .collect();
    let (results, all) = paste(
        &home,
        &lines,
        &[
            ("HOME", home.display().to_string()),
            ("NO_COLOR", "1".into()),
        ],
    );
    let mut checked_ocsp = false;
    let mut checked_crl = false;
    for (i, line) in lines.iter().enumerate() {
        let shown = || {
            format!(
                "line {i}: {line}\n--- everything ---\n{}",
                cut(&all, 20_000)
            )
        };
        let (output, rc) = results
            .get(&i)
            .unwrap_or_else(|| panic!("the block stopped before\n{}", shown()));
        assert_eq!(
            *rc,
            0,
            "a command of the block failed:\n{output}\n{}",
            shown()
        );
        assert!(
            !output.contains("panicked"),
            "a panic:\n{output}\n{}",
            shown()
        );
        if line.contains("openssl ocsp") {
            // `# revoked, superseded`
            assert!(
                output.contains("Response verify OK")
                    && output.contains(": revoked")
                    && output.contains("Reason: superseded"),
                "not the announced answer:\n{output}\n{}",
                shown()
            );
            checked_ocsp = true;
        }
        if line.contains("grep -c 'Serial Number'") {
            // `# 4: ...`
            assert_eq!(output.trim(), "4", "{}", shown());
            checked_crl = true;
        }
        if line.starts_with("pki-admin init") {
            assert!(
                output.contains("CA certificates in pki-data/ca"),
                "{}",
                shown()
            );
        }
        if line.starts_with("pki-admin registry event ") {
            assert!(
                output.starts_with("recorded event "),
                "registry event prints a line for people\n{}",
                shown()
            );
        }
    }
    assert!(checked_ocsp && checked_crl, "{lines:?}");
    for name in ["root", "identity-card-ca", "residence-card-ca"] {
        assert!(
            ca_dir.join(format!("pki-data/ca/{name}.pem")).is_file(),
            "no pki-data/ca/{name}.pem\n{all}"
        );
    }
}
e2e_test!(readme_operating_block_works_pasted);

/// Item 13: a reader that goes away (`| head -1`, `| true`) ends
/// `cert list` quietly with exit 0, never with a panic.
fn cert_list_into_head_exits_0(env: &TestEnv) {
    env.init();
    let err = env.path("cert-list.stderr");
    for reader in ["head -1", "true"] {
        let script = format!(
            "set -o pipefail; \"$0\" cert list 2>{} | {reader}",
            err.display()
        );
        // The environment of `env.command()`, for a shell.
        let mut sh = Command::new("bash");
        sh.arg("-c").arg(&script).arg(pki_admin_bin());
        for (k, v) in env.command().get_envs() {
            match v {
                Some(v) => sh.env(k, v),
                None => sh.env_remove(k),
            };
        }
        sh.current_dir(env.dir());
        let out = output_of(&mut sh, "pki-admin cert list | ...");
        let stderr = fs::read_to_string(&err).unwrap_or_default();
        assert_eq!(
            out.status.code(),
            Some(0),
            "`pki-admin cert list | {reader}`\n{}\n{stderr}",
            describe("bash", &out)
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        if reader == "head -1" {
            assert_eq!(stdout_str(&out).lines().count(), 1, "{}", stdout_str(&out));
        }
    }
}
e2e_test!(cert_list_into_head_exits_0);

/// Item 17: `ca list` where there is no CA: exit 1, a message saying there
/// is no CA database, and nothing created (SQLite: no file in an empty
/// directory without any configuration; PostgreSQL: no table in the
/// schema).
fn ca_list_without_a_ca_creates_nothing(env: &TestEnv) {
    let out = match env.backend {
        Backend::Sqlite => {
            let empty = env.path("empty");
            fs::create_dir_all(&empty).expect("create a directory");
            let mut cmd = Command::new(pki_admin_bin());
            for (key, _) in std::env::vars_os() {
                if key.to_string_lossy().starts_with("PKI_") {
                    cmd.env_remove(key);
                }
            }
            cmd.args(["ca", "list"]).current_dir(&empty);
            let out = output_of(&mut cmd, "pki-admin ca list");
            let left: Vec<_> = fs::read_dir(&empty)
                .expect("read the directory")
                .flatten()
                .map(|e| e.path())
                .collect();
            assert!(left.is_empty(), "ca list created {left:?}");
            out
        }
        Backend::Postgres => {
            // A schema that `pki-admin migrate` never touched.
            let base = postgres_base_url();
            let schema = format!("{}_empty", env.pg_schema.as_deref().expect("schema"));
            let created = psql(&base, &format!("CREATE SCHEMA {schema}"));
            assert!(created.status.success(), "{}", describe("psql", &created));
            let url = postgres_schema_url(&base, &schema);
            let out = env.run_with(&["ca", "list"], |cmd| {
                cmd.env("PKI_DATABASE_URL", &url);
            });
            let tables = psql(
                &base,
                &format!(
                    "SELECT count(*) FROM information_schema.tables WHERE table_schema = '{schema}'"
                ),
            );
            let dropped = psql(&base, &format!("DROP SCHEMA {schema} CASCADE"));
            assert!(dropped.status.success(), "{}", describe("psql", &dropped));
            assert_eq!(stdout_str(&tables).trim(), "0", "ca list created tables");
            out
        }
    };
    env.assert_error(&["ca", "list"], &out, &["no CA database"]);
    assert!(
        stderr_str(&out).contains("pki-admin init"),
        "{}",
        describe("ca list", &out)
    );
}
e2e_test!(ca_list_without_a_ca_creates_nothing);

/// init, an active national with an identity card and an active auth
/// certificate.
fn holder_with_certificate(env: &TestEnv, key: &str, number: &str) -> (Card, Issued) {
    let holder = Identity::national(key);
    let card = Card::identity(number, &holder.registry_key);
    env.holder_with_card(&holder, &card);
    let issued = env.issue(&card.number, "auth", &env.csr(KeyType::EcP256));
    (card, issued)
}

/// `registry event`: a line for people, JSON with `--json`; the flag is
/// `--invalidity-date` (`--invalidity` still accepted, not shown), and a
/// feed may say `invalidity_date` (or `invalidity`).
fn registry_event_prints_a_line_or_json(env: &TestEnv) {
    env.init();
    let (card, issued) = holder_with_certificate(env, "FC000001", "FC0001");
    let args = [
        "registry",
        "event",
        "card-lost",
        "--card",
        &card.number,
        "--invalidity-date",
        "2020-01-02",
        "--id",
        "fc-lost-1",
    ];
    let line = env.ok_stdout(&args);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.starts_with("recorded event fc-lost-1 (card-lost): 1 request (fc-lost-1#1)")
            && line.contains("1 request, 1 certificate changed"),
        "{line}"
    );
    assert!(serde_json::from_str::<Value>(&line).is_err(), "{line}");
    let cert = env.ok_json(&["cert", "show", &issued.serial, "--json"]);
    assert_eq!(cert["status"], "revoked", "{cert}");

    // Again with --json: the same event is a replay.
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let v = env.ok_json(&json_args);
    assert_eq!(v["event"], "fc-lost-1", "{v}");
    assert_eq!(v["replay"], true, "{v}");
    assert_eq!(v["requests"], json!(["fc-lost-1#1"]), "{v}");
    let again = env.ok_stdout(&args);
    assert!(
        again.contains("already recorded") && again.contains("nothing changed"),
        "{again}"
    );

    // The older flag still works; the help shows only --invalidity-date.
    let (card2, _) = holder_with_certificate(env, "FC000002", "FC0002");
    let v = env.ok_json(&[
        "registry",
        "event",
        "card-stolen",
        "--card",
        &card2.number,
        "--invalidity",
        "2020-01-02T10:00",
        "--json",
    ]);
    assert_eq!(v["replay"], false, "{v}");
    assert_eq!(v["executed"]["certificates"], 1, "{v}");
    let help = env.ok_stdout(&["registry", "event", "--help"]);
    assert!(help.contains("--invalidity-date"), "{help}");
    assert!(!help.contains("--invalidity "), "{help}");
    assert!(help.contains("--json"), "{help}");

    // A bad date is reported under the flag's name.
    let out = env.refused(
        &[
            "registry",
            "event",
            "card-lost",
            "--card",
            &card2.number,
            "--invalidity-date",
            "yesterday",
        ],
        &["--invalidity-date"],
    );
    assert!(
        stderr_str(&out).contains("yesterday"),
        "{}",
        describe("", &out)
    );

    // A feed line may say invalidity_date.
    let (card3, issued3) = holder_with_certificate(env, "FC000003", "FC0003");
    let feed = env.write(
        "events.jsonl",
        format!(
            "{}\n",
            json!({"id": "fc-feed-1", "type": "card-lost", "card": card3.number, "invalidity_date": "2020-01-03"})
        ),
    );
    let v = env.ok_json(&["registry", "events", feed.to_str().unwrap(), "--json"]);
    assert_eq!(v["recorded"], 1, "{v}");
    let cert = env.ok_json(&["cert", "show", &issued3.serial, "--json"]);
    assert_eq!(cert["status"], "revoked", "{cert}");
}
e2e_test!(registry_event_prints_a_line_or_json);

/// `card import` names the field that is wrong: an expiry date not after
/// the issue date is `expiry_date` (it used to be reported as `kind`); a
/// card of the wrong kind for its holder is `kind`. Nothing is registered.
fn card_import_names_the_wrong_field(env: &TestEnv) {
    env.init();
    let holder = Identity::national("FC100001");
    env.import_registry(std::slice::from_ref(&holder));
    let good = Card::identity("FC1001", &holder.registry_key);
    let bad_expiry =
        Card::identity("FC1002", &holder.registry_key).dates(days_ago(10), days_ago(20));
    let wrong_kind = Card::residence("FC1003", &holder.registry_key);
    for (cards, field, name) in [
        (
            vec![good.clone(), bad_expiry.clone()],
            "expiry_date",
            "a.csv",
        ),
        (vec![good.clone(), wrong_kind], "kind", "b.csv"),
    ] {
        let file = env.write(name, cards_csv(&cards));
        let args = ["card", "import", file.to_str().unwrap()];
        let out = env.refused(&args, &[&format!("line 3, field {field}:")]);
        let err = stderr_str(&out);
        assert_eq!(
            err.matches(field).count(),
            1,
            "the field is named once\n{err}"
        );
        let out = env.run(&["card", "show", &good.number]);
        assert_eq!(out.status.code(), Some(1), "all or nothing");
    }
    // JSON Lines too.
    let file = env.write("c.jsonl", cards_jsonl(&[bad_expiry]));
    env.refused(
        &["card", "import", file.to_str().unwrap()],
        &["line 1, field expiry_date:"],
    );
}
e2e_test!(card_import_names_the_wrong_field);

/// A bureau manifest may name the card `card` (its documented name, as in
/// `--card` and the result lines) or `card_number` (the card file's
/// column); not both.
fn manifest_accepts_card_number(env: &TestEnv) {
    env.init();
    let (ids, cards) = nationals_with_cards("FC2", 2);
    env.import_registry(&ids);
    for c in &cards {
        env.add_card(c);
    }
    let csr1 = env.csr(KeyType::EcP256);
    let csr2 = env.csr(KeyType::EcP256);
    let manifest = format!(
        "{}\n{}\n",
        json!({"card_number": cards[0].number, "usage": "auth", "csr_file": csr1.file_name().unwrap().to_str().unwrap()}),
        json!({"card": cards[1].number, "card_number": cards[1].number, "usage": "auth", "csr_file": csr2.file_name().unwrap().to_str().unwrap()}),
    );
    let file = env.write("bureau.jsonl", manifest);
    let out = env.run(&["issue-batch", file.to_str().unwrap(), "--no-progress"]);
    env.assert_code(&["issue-batch"], &out, 3);
    let results = json_lines(&stdout_str(&out));
    assert_eq!(results[0]["outcome"], "issued", "{results:?}");
    assert_eq!(results[0]["card"], cards[0].number.as_str(), "{results:?}");
    assert_eq!(results[1]["outcome"], "rejected", "{results:?}");
    assert!(
        results[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("not both")),
        "{results:?}"
    );
}
e2e_test!(manifest_accepts_card_number);

/// Two (three) `issue` commands for the same card and usage at the same
/// time: one issues; each other one exits 1 and says that the card has
/// that certificate (serial named), never "run the batch again". Rounds
/// repeat the race (the winner revoked in between) so that the commit-time
/// loser (both passed the checks) is met as well as the check-time one.
fn simultaneous_issues_tell_the_loser(env: &TestEnv) {
    env.init();
    let holder = Identity::national("FC300001");
    let card = Card::identity("FC3001", &holder.registry_key);
    env.holder_with_card(&holder, &card);
    for round in 0..3 {
        let csrs: Vec<_> = (0..3).map(|_| env.csr(KeyType::EcP256)).collect();
        let children: Vec<_> = csrs
            .iter()
            .map(|csr| {
                let mut cmd = env.command();
                cmd.args([
                    "issue",
                    "--card",
                    &card.number,
                    "--usage",
                    "auth",
                    "--csr",
                    csr.to_str().unwrap(),
                    "--json",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
                cmd.spawn().expect("start pki-admin issue")
            })
            .collect();
        let outs: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().expect("wait for pki-admin issue"))
            .collect();
        let shown: String = outs
            .iter()
            .map(|o| describe("pki-admin issue", o))
            .collect::<Vec<_>>()
            .join("\n");
        let winners: Vec<Value> = outs
            .iter()
            .filter(|o| o.status.success())
            .map(|o| serde_json::from_slice(&o.stdout).expect("issue --json"))
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: one issues\n{shown}");
        let serial = str_field(&winners[0], "serial").to_string();
        for o in outs.iter().filter(|o| !o.status.success()) {
            let err = stderr_str(o);
            assert_eq!(o.status.code(), Some(1), "{shown}");
            assert!(
                err.starts_with("error:") && err.contains(&card.number) && err.contains(&serial),
                "round {round}: the loser is told which certificate the card has\n{shown}"
            );
            assert!(
                err.contains("another request issued") || err.contains("already has a live"),
                "{shown}"
            );
            assert!(!err.contains("batch"), "{shown}");
        }
        env.ok(&["revoke", "--serial", &serial, "--reason", "superseded"]);
    }
}
e2e_test!(simultaneous_issues_tell_the_loser);
