//! The per-test environment: binary location, pki.toml, backends, running `pki-admin`.

use crate::*;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

// ---------------------------------------------------------------------------
// Locations
// ---------------------------------------------------------------------------

/// The workspace root (the parent of this crate's directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A binary of this workspace: `$env_var` if set, else `name` in the
/// profile directory of the running test executable (next to `deps/`).
pub fn workspace_bin(name: &str, env_var: &str, package: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test executable has a directory");
    let profile_dir = if deps.file_name() == Some(OsStr::new("deps")) {
        deps.parent().expect("deps/ has a parent")
    } else {
        deps
    };
    let bin = profile_dir.join(name);
    assert!(
        bin.exists(),
        "{name} not found at {} (build it first: cargo build -p {package}, or set {env_var})",
        bin.display()
    );
    bin
}

/// The `pki-admin` binary under test: `PKI_ADMIN_BIN`, else next to `deps/`.
pub fn pki_admin_bin() -> PathBuf {
    workspace_bin("pki-admin", "PKI_ADMIN_BIN", "admin-cli")
}

/// A tool installed in `<repo>/.venv/bin` by scripts/setup-test-tools.sh.
pub fn venv_tool(name: &str) -> PathBuf {
    let path = repo_root().join(".venv/bin").join(name);
    assert!(
        path.exists(),
        "{} missing: run scripts/setup-test-tools.sh",
        path.display()
    );
    path
}

/// A short random-enough lowercase identifier (process id, clock, counter).
pub fn unique_suffix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:x}_{:x}_{}",
        std::process::id(),
        nanos & 0xffff_ffff_ffff,
        n
    )
}

// ---------------------------------------------------------------------------
// Process helpers
// ---------------------------------------------------------------------------

/// Everything about a finished command, for assertion messages.
/// (Each stream is cut to its first 6,000 characters.)
pub fn describe(what: &str, out: &Output) -> String {
    format!(
        "$ {what}\nexit: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        cut(&String::from_utf8_lossy(&out.stdout), 6000),
        cut(&String::from_utf8_lossy(&out.stderr), 6000)
    )
}

/// `text` cut to `max` characters, saying how much was left out.
pub fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}\n... ({} more bytes)", &text[..i], text.len() - i),
        None => text.to_string(),
    }
}

pub fn output_of(cmd: &mut Command, what: &str) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"))
}

pub fn stdout_str(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr_str(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

// ---------------------------------------------------------------------------
// Backends and the per-test environment
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Base URL of the PostgreSQL test server.
pub fn postgres_base_url() -> String {
    std::env::var("PKI_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_string())
}

/// `base` with `search_path` set to `schema` through libpq's `options`.
pub fn postgres_schema_url(base: &str, schema: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-csearch_path%3D{schema}")
}

/// Runs `psql` on `url` with one SQL string; rows as `|`-separated fields.
pub fn psql(url: &str, sql: &str) -> Output {
    let mut cmd = Command::new("psql");
    cmd.args([
        "-X",
        "-q",
        "-A",
        "-t",
        "-F",
        "|",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        url,
        "-c",
        sql,
    ])
    .env("PGCONNECT_TIMEOUT", "5");
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run psql: {e}"))
}

fn postgres_reachable(base: &str) -> bool {
    // A machine without the `psql` client has no PostgreSQL to test either.
    let client = Command::new("psql")
        .arg("--version")
        .stdin(Stdio::null())
        .output();
    client.is_ok_and(|o| o.status.success()) && psql(base, "select 1").status.success()
}

/// Runs a test body on one backend (used by [`e2e_test!`]).
pub fn run_on(backend: Backend, body: fn(&TestEnv)) {
    if let Some(env) = TestEnv::new(backend) {
        body(&env);
    }
}

/// Runs a test body on one backend with keys on SoftHSM2 tokens (used by
/// `e2e_test!(pkcs11: ...)`).
pub fn run_on_pkcs11(backend: Backend, body: fn(&TestEnv)) {
    if let Some(mut env) = TestEnv::new(backend) {
        env.use_softhsm();
        body(&env);
    }
}

/// Generates the tests `<name>_sqlite` and `<name>_postgres` that run the
/// function `name(env: &TestEnv)` on each backend.
///
/// ```ignore
/// fn init_works(env: &TestEnv) {
///     env.init();
/// }
/// e2e_test!(init_works);
/// ```
///
/// `e2e_test!(pkcs11: name)` does the same with `[keys] backend = "pkcs11"`
/// and the keys on SoftHSM2 tokens of the test ([`TestEnv::use_softhsm`]).
#[macro_export]
macro_rules! e2e_test {
    (pkcs11: $($name:ident),+ $(,)?) => {
        $(
            ::paste::paste! {
                #[test]
                fn [<$name _sqlite>]() {
                    $crate::run_on_pkcs11($crate::Backend::Sqlite, $name);
                }

                #[test]
                fn [<$name _postgres>]() {
                    $crate::run_on_pkcs11($crate::Backend::Postgres, $name);
                }
            }
        )+
    };
    ($($name:ident),+ $(,)?) => {
        $(
            ::paste::paste! {
                #[test]
                fn [<$name _sqlite>]() {
                    $crate::run_on($crate::Backend::Sqlite, $name);
                }

                #[test]
                fn [<$name _postgres>]() {
                    $crate::run_on($crate::Backend::Postgres, $name);
                }
            }
        )+
    };
}

/// Counts that must not move when a command is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub certificates: usize,
    pub audit_records: usize,
}

/// One test's CA: temporary directory, pki.toml, database.
///
/// The database is created by `pki-admin migrate` (the only command that
/// changes the schema). On PostgreSQL the test's own component roles are
/// made by `pki-admin db roles --apply` (prefix `<schema>_`): `pki-admin`
/// runs as `<prefix>admin` (the URL in pki.toml) and each service under its
/// own role ([`TestEnv::role_url`], passed as `PKI_DATABASE_URL`).
pub struct TestEnv {
    pub backend: Backend,
    dir: Option<tempfile::TempDir>,
    /// The schema owner's URL (migrations, tampering with `psql`).
    pub database_url: String,
    pub pg_schema: Option<String>,
    /// The SoftHSM2 tokens when the keys are on PKCS#11 (`use_softhsm`).
    pub softhsm: Option<SoftHsm>,
}

/// `url` connecting as `user` instead of its own user.
pub fn with_user(url: &str, user: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}{user}{}", &url[..scheme + 3], &url[at..])
        }
        (Some(scheme), _) => format!("{}{user}@{}", &url[..scheme + 3], &url[scheme + 3..]),
        _ => url.to_string(),
    }
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl TestEnv {
    /// A fresh environment; `None` when PostgreSQL is unreachable outside CI.
    pub fn new(backend: Backend) -> Option<TestEnv> {
        let dir = tempfile::Builder::new()
            .prefix("pki-e2e-")
            .tempdir()
            .expect("create temporary directory");
        let data_dir = dir.path().join("data");
        let (database_url, pg_schema) = match backend {
            Backend::Sqlite => (format!("sqlite://{}/pki.sqlite", data_dir.display()), None),
            Backend::Postgres => {
                let base = postgres_base_url();
                if !postgres_reachable(&base) {
                    if std::env::var_os("CI").is_some() {
                        panic!("PostgreSQL not reachable at {base} (CI is set: this is a failure)");
                    }
                    eprintln!("SKIPPED (PostgreSQL not reachable at {base})");
                    return None;
                }
                let schema = format!("t_{}", unique_suffix());
                let out = psql(&base, &format!("CREATE SCHEMA {schema}"));
                assert!(
                    out.status.success(),
                    "{}",
                    describe("psql CREATE SCHEMA", &out)
                );
                (postgres_schema_url(&base, &schema), Some(schema))
            }
        };
        let config = format!(
            "# written by the e2e tests\ndata_dir = {}\ndatabase_url = {}\n",
            toml_string(&data_dir.to_string_lossy()),
            toml_string(&database_url)
        );
        fs::write(dir.path().join("pki.toml"), config).expect("write pki.toml");
        let env = TestEnv {
            backend,
            dir: Some(dir),
            database_url,
            pg_schema,
            softhsm: None,
        };
        env.as_owner(&["migrate"]);
        if env.pg_schema.is_some() {
            let prefix = env.role_prefix();
            env.as_owner(&["db", "roles", "--apply", "--prefix", &prefix]);
            let config = format!(
                "# written by the e2e tests\ndata_dir = {}\ndatabase_url = {}\n",
                toml_string(&data_dir.to_string_lossy()),
                toml_string(&env.role_url("admin"))
            );
            fs::write(env.config_path(), config).expect("write pki.toml");
        }
        Some(env)
    }

    /// `pki-admin ARGS` as the schema owner (must succeed).
    #[track_caller]
    pub fn as_owner(&self, args: &[&str]) -> String {
        let out = self.run_with(args, |cmd| {
            cmd.env("PKI_DATABASE_URL", &self.database_url);
        });
        assert!(
            out.status.success(),
            "{}",
            describe(&format!("pki-admin {}", args.join(" ")), &out)
        );
        stdout_str(&out)
    }

    /// The prefix of this test's PostgreSQL roles.
    pub fn role_prefix(&self) -> String {
        format!("{}_", self.pg_schema.as_deref().unwrap_or("pki"))
    }

    /// The database URL of a component (`admin`, `ocsp`, `crl_signer`,
    /// `scheduler`, `auditor`): its own role on PostgreSQL, the file on SQLite.
    pub fn role_url(&self, component: &str) -> String {
        match self.backend {
            Backend::Sqlite => self.database_url.clone(),
            Backend::Postgres => with_user(
                &self.database_url,
                &format!("{}{component}", self.role_prefix()),
            ),
        }
    }

    /// The temporary directory of this test.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("temporary directory").path()
    }

    /// A path inside the temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir().join(name)
    }

    pub fn config_path(&self) -> PathBuf {
        self.path("pki.toml")
    }

    /// Writes a file in the temporary directory and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent directory");
        }
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// A `pki-admin` command in this environment (cwd = the temp dir).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(pki_admin_bin());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PKI_") {
                cmd.env_remove(key);
            }
        }
        cmd.current_dir(self.dir())
            .env("PKI_CONFIG", self.config_path())
            .env("PKI_ACTOR", ACTOR)
            .env("PKI_CA_PASSPHRASE", PASSPHRASE)
            .env("PKI_OCSP_PASSPHRASE", OCSP_PASSPHRASE)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        self.key_env(&mut cmd, &[KeyFamily::Ca, KeyFamily::Ocsp]);
        cmd
    }

    /// Runs `pki-admin ARGS`, letting `tweak` adjust the command first.
    pub fn run_with(&self, args: &[&str], tweak: impl FnOnce(&mut Command)) -> Output {
        let mut cmd = self.command();
        cmd.args(args);
        tweak(&mut cmd);
        output_of(&mut cmd, "pki-admin")
    }

    /// Runs `pki-admin ARGS`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, |_| {})
    }

    /// Runs `pki-admin ARGS` and asserts exit 0.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "expected success\n{}",
            describe(&format!("pki-admin {}", args.join(" ")), &out)
        );
        out
    }

    /// Runs `pki-admin ARGS` (exit 0) and returns stdout.
    #[track_caller]
    pub fn ok_stdout(&self, args: &[&str]) -> String {
        stdout_str(&self.ok(args))
    }

    /// Runs `pki-admin ARGS` (exit 0) and parses stdout as JSON.
    #[track_caller]
    pub fn ok_json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e})\n{}",
                describe(&format!("pki-admin {}", args.join(" ")), &out)
            )
        })
    }

    /// Asserts the exit code of a finished command, showing it otherwise.
    #[track_caller]
    pub fn assert_code(&self, args: &[&str], out: &Output, code: i32) {
        assert_eq!(
            out.status.code(),
            Some(code),
            "expected exit {code}\n{}",
            describe(&format!("pki-admin {}", args.join(" ")), out)
        );
    }

    /// Asserts a refusal: exit 1, stderr `error: ...` mentioning one of
    /// `keywords` (case-insensitive; empty = any message).
    #[track_caller]
    pub fn assert_error(&self, args: &[&str], out: &Output, keywords: &[&str]) {
        self.assert_code(args, out, 1);
        let err = stderr_str(out);
        let shown = describe(&format!("pki-admin {}", args.join(" ")), out);
        assert!(
            err.lines().any(|l| l.starts_with("error:")),
            "stderr has no line starting with `error:`\n{shown}"
        );
        let lower = err.to_lowercase();
        assert!(
            keywords.is_empty() || keywords.iter().any(|k| lower.contains(&k.to_lowercase())),
            "error message mentions none of {keywords:?}\n{shown}"
        );
        if let Some(part) = repeated_part(&err) {
            panic!("error message says the same thing twice ({part:?})\n{shown}");
        }
    }

    /// Runs a command that must be refused (exit 1, clear message) and
    /// change nothing (same certificate and audit record counts).
    #[track_caller]
    pub fn refused(&self, args: &[&str], keywords: &[&str]) -> Output {
        self.refused_with(args, keywords, |_| {})
    }

    /// [`TestEnv::refused`] with a command tweak (e.g. removing an env var).
    #[track_caller]
    pub fn refused_with(
        &self,
        args: &[&str],
        keywords: &[&str],
        tweak: impl FnOnce(&mut Command),
    ) -> Output {
        let before = self.snapshot();
        let out = self.run_with(args, tweak);
        // Shown with --nocapture: what the operator reads.
        eprintln!(
            "refused: pki-admin {}\n  -> {}",
            args.join(" "),
            stderr_str(&out).trim()
        );
        // Exit code and state first, then the wording of the message.
        self.assert_code(args, &out, 1);
        self.assert_unchanged(
            &before,
            &format!("after refused `pki-admin {}`", args.join(" ")),
        );
        self.assert_error(args, &out, keywords);
        out
    }

    // --- state ------------------------------------------------------------

    /// `cert list --json`, every certificate (the command shows the newest
    /// 1000 unless given a larger `--limit`).
    #[track_caller]
    pub fn cert_list(&self) -> Vec<Value> {
        as_array(
            self.ok_json(&["cert", "list", "--limit", "1000000", "--json"]),
            "cert list --json",
        )
    }

    /// The card certificates of `cert list --json` (it also lists the CA and
    /// OCSP responder certificates, which have no card).
    #[track_caller]
    pub fn card_certs(&self) -> Vec<Value> {
        self.cert_list()
            .into_iter()
            .filter(|c| c.get("card_number").is_some_and(Value::is_string))
            .collect()
    }

    /// `audit list --json`.
    #[track_caller]
    pub fn audit_list(&self) -> Vec<Value> {
        as_array(
            self.ok_json(&["audit", "list", "--json"]),
            "audit list --json",
        )
    }

    /// `ca list --json`.
    #[track_caller]
    pub fn ca_list(&self) -> Vec<Value> {
        as_array(self.ok_json(&["ca", "list", "--json"]), "ca list --json")
    }

    #[track_caller]
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            certificates: self.cert_list().len(),
            audit_records: self.audit_list().len(),
        }
    }

    #[track_caller]
    pub fn assert_unchanged(&self, before: &Snapshot, when: &str) {
        let after = self.snapshot();
        assert_eq!(&after, before, "state changed {when}");
    }

    /// Every file under `data_dir` but the SQLite database, with its bytes
    /// (CA keys and whatever else the CA keeps there).
    pub fn data_files(&self) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
        fn walk(dir: &Path, out: &mut std::collections::BTreeMap<PathBuf, Vec<u8>>) {
            let Ok(entries) = fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if !path.to_string_lossy().contains("pki.sqlite") {
                    out.insert(path.clone(), fs::read(&path).unwrap_or_default());
                }
            }
        }
        let mut files = std::collections::BTreeMap::new();
        walk(&self.path("data"), &mut files);
        files
    }

    /// `audit verify` must pass; returns the number of records it reports.
    #[track_caller]
    pub fn audit_verify_ok(&self) -> usize {
        let out = self.ok_stdout(&["audit", "verify"]);
        parse_intact_count(&out)
            .unwrap_or_else(|| panic!("unexpected `audit verify` output: {out:?}"))
    }

    // --- setup --------------------------------------------------------------

    /// `pki-admin init` (must succeed).
    #[track_caller]
    pub fn init(&self) -> String {
        self.ok_stdout(&["init"])
    }

    /// Writes the identities to a fresh CSV file and imports it.
    #[track_caller]
    pub fn import_registry(&self, ids: &[Identity]) -> String {
        let file = self.write(
            &format!("registry-{}.csv", unique_suffix()),
            registry_csv(ids),
        );
        self.ok_stdout(&["registry", "import", file.to_str().unwrap()])
    }

    /// `card add` for one card (must succeed).
    #[track_caller]
    pub fn add_card(&self, card: &Card) -> String {
        let args = card.add_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ok_stdout(&args)
    }

    /// Imports one identity and registers one card for it.
    #[track_caller]
    pub fn holder_with_card(&self, id: &Identity, card: &Card) {
        self.import_registry(std::slice::from_ref(id));
        self.add_card(card);
    }

    /// Makes a CSR in this environment's directory.
    pub fn csr(&self, key: KeyType) -> PathBuf {
        make_csr(self.dir(), key, &unique_suffix())
    }

    /// A certificate in use: `issue` (on hold, pending activation), then
    /// `activate --card N` when it is on hold, as at the counter.
    #[track_caller]
    pub fn issue(&self, card: &str, usage: &str, csr: &Path) -> Issued {
        let mut issued = self.issue_on_hold(card, usage, csr);
        if issued.json["status"] == "hold" {
            self.ok(&["activate", "--card", card]);
            issued.json["status"] = "active".into();
        }
        issued
    }

    /// `issue --card N --usage U --csr FILE --json`, and the PEMs on disk.
    #[track_caller]
    pub fn issue_on_hold(&self, card: &str, usage: &str, csr: &Path) -> Issued {
        let args = [
            "issue",
            "--card",
            card,
            "--usage",
            usage,
            "--csr",
            csr.to_str().unwrap(),
            "--json",
        ];
        let json = self.ok_json(&args);
        Issued::from_json(self, json)
    }

    // --- database access (audit tampering) ----------------------------------

    /// Runs one SQL statement on the test database; rows of text fields.
    #[track_caller]
    pub fn sql(&self, statement: &str) -> Vec<Vec<String>> {
        let out = match self.backend {
            Backend::Sqlite => {
                let db = self.path("data/pki.sqlite");
                let script = "import sqlite3, sys\n\
                    c = sqlite3.connect(sys.argv[1])\n\
                    rows = c.execute(sys.argv[2]).fetchall()\n\
                    c.commit()\n\
                    for r in rows: print('|'.join('' if v is None else str(v) for v in r))\n";
                output_of(
                    Command::new("python3")
                        .arg("-c")
                        .arg(script)
                        .arg(&db)
                        .arg(statement),
                    "python3 sqlite3",
                )
            }
            Backend::Postgres => psql(&self.database_url, statement),
        };
        assert!(
            out.status.success(),
            "{}",
            describe(&format!("SQL {statement}"), &out)
        );
        stdout_str(&out)
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.split('|').map(str::to_string).collect())
            .collect()
    }

    /// Runs one SQL statement as an attacker with full database rights
    /// would: with the triggers guarding `table` switched off first
    /// (PostgreSQL: `ALTER TABLE t DISABLE TRIGGER USER`; SQLite: its
    /// triggers dropped), whatever their names.
    #[track_caller]
    pub fn sql_bypassing_triggers(&self, table: &str, statement: &str) -> Vec<Vec<String>> {
        match self.backend {
            Backend::Sqlite => {
                let query = format!(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = '{table}'"
                );
                let triggers = self.sql(&query);
                for row in triggers {
                    self.sql(&format!("DROP TRIGGER \"{}\"", row[0]));
                }
                self.sql(statement)
            }
            Backend::Postgres => {
                self.sql(&format!("ALTER TABLE {table} DISABLE TRIGGER USER"));
                self.sql(statement)
            }
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Some(schema) = &self.pg_schema {
            let roles: Vec<String> = ["admin", "ocsp", "crl_signer", "scheduler", "auditor"]
                .iter()
                .map(|r| format!("{schema}_{r}"))
                .collect();
            let _ = psql(
                &postgres_base_url(),
                &format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE; DROP OWNED BY {list}; DROP ROLE IF EXISTS {list}",
                    list = roles.join(", ")
                ),
            );
        }
        if std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                eprintln!("kept test directory {}", dir.keep().display());
            }
        }
    }
}

/// A `: `-separated part (of 12+ characters) that an `error:` line repeats,
/// as in `error: invalid CSR: key too small: key too small`.
pub fn repeated_part(stderr: &str) -> Option<String> {
    for line in stderr.lines().filter(|l| l.starts_with("error:")) {
        let parts: Vec<&str> = line.split(": ").map(str::trim).collect();
        for (i, part) in parts.iter().enumerate() {
            if part.len() >= 12 && parts[i + 1..].contains(part) {
                return Some(part.to_string());
            }
        }
    }
    None
}

/// The `N` of `audit chain intact: N records`.
pub fn parse_intact_count(stdout: &str) -> Option<usize> {
    let rest = stdout.split("audit chain intact:").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// A JSON value that must be an array.
#[track_caller]
pub fn as_array(v: Value, what: &str) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        other => panic!("{what}: expected a JSON array, got {other}"),
    }
}

/// A string field of a JSON object (panics with the object otherwise).
#[track_caller]
pub fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("field {key:?} missing or not a string in {}", abbreviate(v)))
}

/// A JSON value as text, cut to 800 characters for assertion messages.
pub fn abbreviate(v: &Value) -> String {
    cut(&v.to_string(), 800)
}

/// The certificates of a PEM field: one PEM bundle string, or an array of
/// PEM strings (docs/CLI.md does not say which `chain_pem` is).
#[track_caller]
pub fn pem_field(v: &Value, key: &str) -> Vec<String> {
    match v.get(key) {
        Some(Value::String(s)) => split_pems(s),
        Some(Value::Array(items)) => items
            .iter()
            .flat_map(|i| split_pems(i.as_str().unwrap_or_default()))
            .collect(),
        _ => panic!("field {key:?} missing or not PEM in {}", abbreviate(v)),
    }
}

/// Parses JSON Lines (blank lines ignored).
pub fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line ({e}): {l}")))
        .collect()
}
