//! `pki-admin run`, the whole system in one command, end to end: the real
//! binary starts the demo CA and then `ocsp-responder`, `crl-publisher` (the
//! CRL signer), `crl-server` and
//! `pki-scheduler` as child processes; the test waits for the URLs it
//! prints, talks to each service over HTTP on 127.0.0.1, asks the OCSP
//! responder with `openssl ocsp`, fetches a CRL, sends SIGINT, and checks
//! the exit code 0 and that no child process is left.
//!
//! * On the embedded default (no configuration at all, SQLite, demo
//!   passphrase files), its "Try" block is run as printed, all at once as
//!   one shell script (as pasted into a terminal): every command succeeds
//!   and every `openssl ocsp` and CRL line gives, the first time, the answer
//!   its comment announces; the certificates' OCSP and CRL URLs answer.
//! * On a configured database (SQLite and PostgreSQL, this harness's
//!   pki.toml), with ports chosen by the services (`127.0.0.1:0`).

use e2e_tests::*;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration as StdDuration, Instant};

/// A running `pki-admin run` (killed, with its children, on drop).
struct Running {
    child: Child,
    /// Its stdout up to the end of the "Try" block.
    lines: Vec<String>,
    /// The OCSP responder, CRL publisher and scheduler `ADDR`s.
    addrs: Vec<(String, String)>,
    /// The services' process ids (children of `pki-admin run`).
    children: Vec<(u32, String)>,
    stderr: PathBuf,
    cwd: PathBuf,
}

impl Running {
    fn addr(&self, name: &str) -> &str {
        self.addrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a.as_str())
            .unwrap_or_else(|| panic!("no address for {name}: {:?}", self.addrs))
    }

    fn shown(&self) -> String {
        format!(
            "--- pki-admin run stdout ---\n{}\n--- stderr ---\n{}\n--- logs ---\n{}",
            self.lines.join("\n"),
            fs::read_to_string(&self.stderr).unwrap_or_default(),
            service_logs(&self.cwd)
        )
    }

    /// The commands of the "Try" block.
    fn try_block(&self) -> Vec<String> {
        self.lines
            .iter()
            .skip_while(|l| !l.starts_with("Try"))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .map(|l| l.trim().to_string())
            .collect()
    }

    /// SIGINT, then the exit status (at most `secs`).
    #[track_caller]
    fn interrupt(&mut self, secs: u64) -> std::process::ExitStatus {
        let kill = output_of(
            Command::new("kill").args(["-INT", &self.child.id().to_string()]),
            "kill -INT",
        );
        assert!(kill.status.success(), "{}", describe("kill -INT", &kill));
        let deadline = Instant::now() + StdDuration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "pki-admin run still running {secs} s after SIGINT\n{}",
                self.shown()
            );
            std::thread::sleep(StdDuration::from_millis(100));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            for (pid, _) in &self.children {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", cut(&self.shown(), 30_000));
        }
    }
}

/// The services' logs under `<cwd>/**/logs/`.
fn service_logs(cwd: &Path) -> String {
    let mut out = String::new();
    for dir in [cwd.join("pki-data/logs"), cwd.join("data/logs")] {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let text = fs::read_to_string(e.path()).unwrap_or_default();
            out.push_str(&format!(
                "== {}\n{}\n",
                e.path().display(),
                cut(&text, 4000)
            ));
        }
    }
    out
}

/// (pid, command name) of the processes whose parent is `parent`.
fn children_of(parent: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let comm = stat[stat.find('(').map_or(0, |i| i + 1)..close].to_string();
        let ppid = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            out.push((pid, comm));
        }
    }
    out.sort();
    out
}

/// Whether process `pid` still exists with command name `comm`.
fn alive(pid: u32, comm: &str) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(&format!("({comm}")))
}

/// A free TCP port on 127.0.0.1 (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Starts `cmd` (a `pki-admin run` command) and reads its stdout until the
/// end of the "Try" block.
#[track_caller]
fn start(mut cmd: Command, cwd: &Path) -> Running {
    let stderr = cwd.join(format!("run-{}.stderr", unique_suffix()));
    cmd.current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(fs::File::create(&stderr).expect("create stderr file"));
    let mut child = cmd.spawn().expect("start pki-admin run");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut running = Running {
        child,
        lines: Vec::new(),
        addrs: Vec::new(),
        children: Vec::new(),
        stderr,
        cwd: cwd.to_path_buf(),
    };
    let deadline = Instant::now() + StdDuration::from_secs(300);
    let mut in_try = false;
    loop {
        match rx.recv_timeout(StdDuration::from_millis(200)) {
            Ok(line) => {
                if let Some((name, addr)) = line.trim().split_once(" listening on http://") {
                    running
                        .addrs
                        .push((name.trim().to_string(), addr.trim().to_string()));
                }
                let end = in_try && line.trim().is_empty();
                in_try |= line.starts_with("Try");
                running.lines.push(line);
                if end {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                if let Ok(Some(status)) = running.child.try_wait() {
                    panic!(
                        "pki-admin run exited ({status}) before its services were up\n{}",
                        running.shown()
                    );
                }
            }
            Err(_) => panic!("pki-admin run: no Try block\n{}", running.shown()),
        }
    }
    // Keep draining stdout so that the process never blocks on it.
    std::thread::spawn(move || while rx.recv().is_ok() {});
    running.children = children_of(running.child.id());
    let names: Vec<&str> = running.children.iter().map(|(_, c)| c.as_str()).collect();
    for service in [
        "ocsp-responder",
        "crl-publisher",
        "crl-server",
        "pki-scheduler",
    ] {
        assert!(
            names.iter().any(|n| service.starts_with(*n)),
            "{service} is not a child of pki-admin run: {names:?}\n{}",
            running.shown()
        );
    }
    // The CRL signer has no listener; the others print their URL.
    for service in ["ocsp-responder", "crl-server", "pki-scheduler"] {
        assert!(
            running.addrs.iter().any(|(n, _)| n == service),
            "no URL printed for {service}\n{}",
            running.shown()
        );
    }
    running
}

/// GET `path` on `addr` (200 expected).
#[track_caller]
fn get_ok(r: &Running, addr: &str, path: &str) -> HttpReply {
    let reply = http_exchange(addr, "GET", path, &[], &[])
        .unwrap_or_else(|e| panic!("GET http://{addr}{path}: {e}\n{}", r.shown()));
    assert_eq!(
        reply.status,
        200,
        "GET http://{addr}{path}: {}\n{}",
        String::from_utf8_lossy(&reply.body),
        r.shown()
    );
    reply
}

/// The three `/health` answer 200.
#[track_caller]
fn all_healthy(r: &Running) {
    for name in ["ocsp-responder", "crl-server", "pki-scheduler"] {
        let addr = r.addr(name).to_string();
        let deadline = Instant::now() + StdDuration::from_secs(60);
        loop {
            let reply = http_exchange(&addr, "GET", "/health", &[], &[]).expect("GET /health");
            if reply.status == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name} /health {}: {}\n{}",
                reply.status,
                String::from_utf8_lossy(&reply.body),
                r.shown()
            );
            std::thread::sleep(StdDuration::from_millis(200));
        }
    }
}

/// A CRL fetched over HTTP parses with `openssl crl`.
#[track_caller]
fn crl_over_http(r: &Running, addr: &str, path: &str, dir: &Path) {
    let reply = get_ok(r, addr, path);
    assert_eq!(
        reply.header("content-type"),
        Some("application/pkix-crl"),
        "{path}"
    );
    let file = dir.join(format!("fetched-{}.crl", unique_suffix()));
    fs::write(&file, &reply.body).expect("write CRL");
    let out = output_of(
        Command::new("openssl")
            .args(["crl", "-inform", "DER", "-noout", "-issuer", "-in"])
            .arg(&file),
        "openssl crl",
    );
    assert!(out.status.success(), "{}", describe("openssl crl", &out));
}

/// SIGINT: exit 0, and none of the services is left.
#[track_caller]
fn interrupt_and_check(r: &mut Running) {
    let children = r.children.clone();
    let status = r.interrupt(60);
    assert_eq!(status.code(), Some(0), "{status}\n{}", r.shown());
    for (pid, comm) in &children {
        assert!(
            !alive(*pid, comm),
            "{comm} (pid {pid}) left running\n{}",
            r.shown()
        );
    }
    let out: String = r.lines.join("\n");
    assert!(out.contains("== the eID CA is running"), "{}", r.shown());
}

/// A `pki-admin run` command without any PKI_ variable of the test process.
fn run_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(pki_admin_bin());
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("PKI_")
            || k.starts_with("OCSP_")
            || k.starts_with("CRL_")
            || k.starts_with("SCHEDULER_")
        {
            cmd.env_remove(key);
        }
    }
    cmd.arg("run").args(args).env("NO_COLOR", "1");
    cmd
}

/// What an `openssl ocsp` line of the Try block announces in its comment.
fn expected_answer(comment: &str) -> (String, Option<String>) {
    let mut words = comment.split(',').map(str::trim);
    let status = words.next().unwrap_or_default().to_string();
    let reason = words
        .next()
        .filter(|w| !w.contains(' '))
        .map(str::to_string);
    (status, reason)
}

/// Runs the Try block in `cwd` as one shell script, as if pasted at once
/// into a terminal (no `set -e`), at most 5 minutes; returns, per line
/// index, what the line printed (stdout and stderr) and its exit status.
fn paste(cwd: &Path, block: &[String]) -> std::collections::HashMap<usize, (String, i32)> {
    let mut script = String::from("exec 2>&1\n");
    for (i, line) in block.iter().enumerate() {
        script.push_str(&format!(
            "echo '@@@ begin {i}'\n{line}\necho \"@@@ end {i} $?\"\n"
        ));
    }
    let mut cmd = Command::new("timeout");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PKI_") {
            cmd.env_remove(key);
        }
    }
    cmd.args(["300", "sh", "-c"]).arg(&script).current_dir(cwd);
    let out = output_of(&mut cmd, "sh -c (the Try block)");
    let text = stdout_str(&out);
    let mut results = std::collections::HashMap::new();
    let mut current: Option<(usize, String)> = None;
    for l in text.lines() {
        if let Some(i) = l.strip_prefix("@@@ begin ") {
            current = Some((i.parse().expect("line index"), String::new()));
        } else if let Some(rest) = l.strip_prefix("@@@ end ") {
            let (i, rc) = rest.split_once(' ').expect("index and status");
            let (_, output) = current.take().unwrap_or_default();
            results.insert(
                i.parse().expect("line index"),
                (output, rc.parse().expect("exit status")),
            );
        } else if let Some((_, output)) = current.as_mut() {
            output.push_str(l);
            output.push('\n');
        }
    }
    assert!(
        out.status.success() || !results.is_empty(),
        "{}",
        describe("sh -c (the Try block)", &out)
    );
    results
}

/// The embedded default: no configuration, no passphrase; the demo writes
/// its own configuration with the services' URLs. Every command it
/// suggests works as printed.
#[test]
fn run_all_on_the_embedded_default() {
    let dir = tempfile::Builder::new()
        .prefix("pki-e2e-run-")
        .tempdir()
        .expect("temporary directory");
    let cwd = dir.path().to_path_buf();
    let (ocsp, crl, sched) = (free_port(), free_port(), free_port());
    let cmd = run_command(&[
        "--holders",
        "4",
        "--ocsp-listen",
        &format!("127.0.0.1:{ocsp}"),
        "--crl-listen",
        &format!("127.0.0.1:{crl}"),
        "--scheduler-listen",
        &format!("127.0.0.1:{sched}"),
    ]);
    let mut r = start(cmd, &cwd);
    assert_eq!(r.addr("ocsp-responder"), format!("127.0.0.1:{ocsp}"));
    assert_eq!(r.addr("crl-server"), format!("127.0.0.1:{crl}"));
    assert_eq!(r.addr("pki-scheduler"), format!("127.0.0.1:{sched}"));
    assert!(cwd.join("pki-data/pki.toml").exists(), "{}", r.shown());
    all_healthy(&r);

    // Every suggested command, as printed, pasted all at once: one shell
    // script, no pause and no retry between the commands. Each answer must
    // be the one its comment announces the first time it is asked.
    let block = r.try_block();
    assert!(block.len() > 10, "{block:?}");
    let pasted = paste(&cwd, &block);
    let mut asked = 0;
    for (i, line) in block.iter().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        let (output, rc) = pasted
            .get(&i)
            .unwrap_or_else(|| panic!("no output for line {i} `{line}`\n{}", r.shown()));
        let shown = || format!("$ {line}\nexit {rc}\n{output}\n{}", r.shown());
        assert_eq!(*rc, 0, "a suggested command failed\n{}", shown());
        let (command, comment) = match line.split_once("    # ") {
            Some((c, comment)) => (c.trim(), Some(comment)),
            None => (line.as_str(), None),
        };
        if command.contains("openssl ocsp") {
            let (status, reason) = expected_answer(comment.expect("an answer announced"));
            let status_ok = output.lines().any(|l| l.ends_with(&format!(": {status}")));
            let reason_ok = reason
                .as_ref()
                .is_none_or(|r| output.contains(&format!("Reason: {r}")));
            assert!(
                output.contains("Response verify OK") && status_ok && reason_ok,
                "`{command}` does not say {status} {reason:?}\n{}",
                shown()
            );
            // Never the answer for a serial the responder has not seen yet.
            assert!(
                !output.contains("1970"),
                "a never-issued answer\n{}",
                shown()
            );
            asked += 1;
        } else if let Some(comment) = comment {
            // The CRL entry of the revoked card certificate.
            assert!(
                output.contains(comment.trim()),
                "no {comment:?}\n{}",
                shown()
            );
            assert!(
                output.contains("Serial Number: "),
                "no CRL entry\n{}",
                shown()
            );
        }
    }
    assert_eq!(asked, 4, "{block:?}");

    // The certificates name the local services, and these answer.
    let card = cwd.join("pki-data/try/card.pem");
    let out = output_of(
        Command::new("openssl")
            .args(["x509", "-noout", "-ocsp_uri", "-in"])
            .arg(&card),
        "openssl x509 -ocsp_uri",
    );
    assert_eq!(
        stdout_str(&out).trim(),
        format!("http://127.0.0.1:{ocsp}/eid/ocsp"),
        "{}",
        describe("openssl x509 -ocsp_uri", &out)
    );
    let text = x509_text(&card);
    let cdp = format!("URI:http://127.0.0.1:{crl}/eid/crl/identity-card-ca.crl");
    assert!(text.contains(&cdp), "no {cdp} in\n{text}");
    crl_over_http(
        &r,
        &format!("127.0.0.1:{crl}"),
        "/eid/crl/identity-card-ca.crl",
        &cwd,
    );
    let saved = cwd.join("pki-data/try/crl/identity-card-ca.crl");
    assert!(saved.exists(), "crl fetch saved nothing\n{}", r.shown());
    let metrics =
        String::from_utf8_lossy(&get_ok(&r, &format!("127.0.0.1:{sched}"), "/metrics").body)
            .into_owned();
    assert!(
        metrics.contains("pki_scheduler_job_runs_total"),
        "{metrics}"
    );

    interrupt_and_check(&mut r);

    // Again: the same configuration and CA, the same ports.
    let mut again = start(run_command(&["--holders", "4"]), &cwd);
    assert_eq!(again.addr("ocsp-responder"), format!("127.0.0.1:{ocsp}"));
    assert_eq!(again.addr("crl-server"), format!("127.0.0.1:{crl}"));
    assert!(
        again
            .lines
            .iter()
            .any(|l| l.contains("the hierarchy exists already")),
        "{}",
        again.shown()
    );
    all_healthy(&again);
    interrupt_and_check(&mut again);
}

/// A configured database (this harness's pki.toml on SQLite or
/// PostgreSQL): the services on ports of their choosing; OCSP for a demo
/// certificate, a CRL over HTTP, the scheduler's metrics; SIGINT.
fn run_all_on_a_configured_database(env: &TestEnv) {
    let mut cmd = env.command();
    // `pki-admin run` starts every component on one database URL (a host's
    // units give each its own role): the schema owner's here.
    cmd.env("PKI_DATABASE_URL", &env.database_url);
    cmd.args([
        "run",
        "--holders",
        "2",
        "--ocsp-listen",
        "127.0.0.1:0",
        "--crl-listen",
        "127.0.0.1:0",
        "--scheduler-listen",
        "127.0.0.1:0",
    ]);
    let mut r = start(cmd, env.dir());
    all_healthy(&r);
    let ocsp = r.addr("ocsp-responder").to_string();
    let crl = r.addr("crl-server").to_string();
    let sched = r.addr("pki-scheduler").to_string();

    // The demo certificate the hints show, asked at the printed URL.
    let block = r.try_block();
    let show = block
        .iter()
        .find(|l| l.contains(" cert show "))
        .unwrap_or_else(|| panic!("no demo certificate in {block:?}"));
    let serial = show
        .split_whitespace()
        .skip_while(|w| *w != "show")
        .nth(1)
        .expect("serial")
        .to_string();
    let pem = env.ok_stdout(&["cert", "show", &serial, "--pem"]);
    let leaf = env.write("run-demo.pem", pem);
    let cert = env.ok_json(&["cert", "show", &serial, "--json"]);
    let issuer = str_field(&cert, "issuer").to_string();
    let ca_dir = env.path("data/ca");
    let url = format!("http://{ocsp}/eid/ocsp");
    let deadline = Instant::now() + StdDuration::from_secs(10);
    loop {
        let result = ocsp_query(
            &url,
            &ca_dir.join(format!("{issuer}.pem")),
            &Target::Cert(&leaf),
            &[os("-CAfile"), ca_dir.join("root.pem").as_os_str()],
        );
        if result.verified()
            && result.status(&leaf.display().to_string()).as_deref() == Some("good")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}\n{}",
            result.describe("openssl ocsp"),
            r.shown()
        );
        std::thread::sleep(StdDuration::from_millis(200));
    }
    crl_over_http(&r, &crl, &format!("/eid/crl/{issuer}.crl"), env.dir());
    crl_over_http(&r, &crl, "/root.crl", env.dir());
    passphrases_only_where_needed(&r);
    let metrics = String::from_utf8_lossy(&get_ok(&r, &sched, "/metrics").body).into_owned();
    assert!(metrics.contains("pki_scheduler_database_up 1"), "{metrics}");
    interrupt_and_check(&mut r);
}

e2e_test!(run_all_on_a_configured_database);

/// The environment of a process, as the kernel shows it to its user.
fn environ(pid: u32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/environ"))
        .map(|raw| {
            raw.split(|b| *b == 0)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `pki-admin run` was given both passphrases in its environment: once its
/// services are up, its own environment holds neither (it re-executed
/// itself without them), and each service holds only the one it needs.
fn passphrases_only_where_needed(r: &Running) {
    let has = |pid: u32, var: &str| {
        environ(pid)
            .iter()
            .any(|v| v.starts_with(&format!("{var}=")))
    };
    let runner = r.child.id();
    assert!(
        !environ(runner).is_empty(),
        "cannot read the runner's environment"
    );
    for var in ["PKI_CA_PASSPHRASE", "PKI_OCSP_PASSPHRASE"] {
        assert!(
            !has(runner, var),
            "pki-admin run keeps {var} in its environment"
        );
    }
    for (pid, comm) in &r.children {
        let (ca, ocsp) = (
            has(*pid, "PKI_CA_PASSPHRASE"),
            has(*pid, "PKI_OCSP_PASSPHRASE"),
        );
        match comm.as_str() {
            c if "ocsp-responder".starts_with(c) => {
                assert!(ocsp && !ca, "{c}: ca {ca} ocsp {ocsp}")
            }
            c if "crl-publisher".starts_with(c) => assert!(ca && !ocsp, "{c}: ca {ca} ocsp {ocsp}"),
            c => assert!(!ca && !ocsp, "{c}: ca {ca} ocsp {ocsp}"),
        }
    }
}

/// Without the service binaries next to it, `pki-admin run` says how to
/// build them.
#[test]
fn run_without_the_services_says_how_to_build_them() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let lonely = dir.path().join("pki-admin");
    fs::copy(pki_admin_bin(), &lonely).expect("copy pki-admin");
    let mut cmd = Command::new(&lonely);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PKI_") {
            cmd.env_remove(key);
        }
    }
    cmd.arg("run").current_dir(dir.path());
    let out = output_of(&mut cmd, "pki-admin run");
    let shown = describe("pki-admin run", &out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        stderr_str(&out).contains("cargo build --workspace --bins"),
        "{shown}"
    );
    assert!(!dir.path().join("pki-data").exists(), "{shown}");
}
