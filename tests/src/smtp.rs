//! Expiry reminders end to end: a real SMTP server ([`SmtpSink`], Python's
//! aiosmtpd from `<repo>/.venv`, on 127.0.0.1) that keeps every message it
//! accepts as a JSON file (envelope, decoded headers and text body), and the
//! scheduler's jobs run through the real `pki-scheduler run-once` binary with
//! an injected clock (`PKI_FAKE_NOW`).
//!
//! The binary is `PKI_SCHEDULER_BIN` if set, else `pki-scheduler` next to
//! `pki-admin` (build it first: `cargo build -p scheduler`).

use crate::*;
use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;

/// The aiosmtpd server: each accepted message becomes `<out>/NNNNNN.json`
/// with the envelope, the decoded From/To/Subject/Message-ID/Date and the
/// decoded text of the plain body.
const SMTP_SINK_PY: &str = r#"
import email, json, os, sys, threading
from email import policy
from aiosmtpd.controller import Controller

port = int(sys.argv[1])
out = sys.argv[2]
os.makedirs(out, exist_ok=True)
lock = threading.Lock()
count = [0]

class Handler:
    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        msg = email.message_from_bytes(raw, policy=policy.default)
        body = msg.get_body(preferencelist=("plain",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "subject": str(msg["Subject"]),
            "message_id": str(msg["Message-ID"]),
            "date": str(msg["Date"]),
            "content_type": msg.get_content_type(),
            "charset": msg.get_content_charset(),
            "body": body.get_content() if body is not None else None,
        }
        with lock:
            count[0] += 1
            path = os.path.join(out, "%06d.json" % count[0])
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False)
        os.rename(path + ".tmp", path)
        return "250 Message accepted for delivery"

controller = Controller(Handler(), hostname="127.0.0.1", port=port)
controller.start()
print("READY", flush=True)
threading.Event().wait()
"#;

/// A port on 127.0.0.1 that nothing listened on a moment ago.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// A running aiosmtpd server, killed when dropped.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    out: PathBuf,
}

impl SmtpSink {
    /// Starts the server on `port`, keeping messages under `dir`; returns
    /// once it accepts connections.
    #[track_caller]
    pub fn start(dir: &Path, port: u16) -> SmtpSink {
        let script = dir.join("smtp_sink.py");
        fs::write(&script, SMTP_SINK_PY).expect("write smtp_sink.py");
        let out = dir.join(format!("smtp-{port}"));
        let mut child = Command::new(venv_tool("python"))
            .arg(&script)
            .arg(port.to_string())
            .arg(&out)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start aiosmtpd");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().and_then(|l| l.ok()).unwrap_or_default();
            let _ = tx.send(first);
            // Keep reading so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let sink = SmtpSink { child, port, out };
        match rx.recv_timeout(std::time::Duration::from_secs(30)) {
            Ok(line) if line.trim() == "READY" => sink,
            other => panic!("aiosmtpd did not start on port {port}: {other:?}"),
        }
    }

    /// Every message accepted so far, in order.
    pub fn messages(&self) -> Vec<Value> {
        let Ok(entries) = fs::read_dir(&self.out) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| {
                let text = fs::read_to_string(p).expect("read message");
                serde_json::from_str(&text).expect("message JSON")
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `pki-scheduler` binary under test.
pub fn pki_scheduler_bin() -> PathBuf {
    workspace_bin("pki-scheduler", "PKI_SCHEDULER_BIN", "scheduler")
}

/// `t` as `PKI_FAKE_NOW` wants it.
pub fn fake_now(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl TestEnv {
    /// Appends `[smtp]` (a relay on 127.0.0.1:`port`, no TLS) and
    /// `[reminders]` (`extra` lines, e.g. `max_attempts = 3`) to pki.toml.
    pub fn set_mail(&self, port: u16, reminders: &str) {
        let mut text = fs::read_to_string(self.config_path()).expect("read pki.toml");
        text.push_str(&format!(
            "\n[smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n\
             from = \"eID Monaco <no-reply@eid.example.mc>\"\ntimeout_seconds = 5\n\
             \n[reminders]\n{reminders}\n"
        ));
        fs::write(self.config_path(), text).expect("write pki.toml");
    }

    /// A `pki-scheduler --config pki.toml run-once JOB` command at `now`.
    pub fn scheduler_command(&self, job: &str, now: DateTime<Utc>) -> Command {
        let mut cmd = Command::new(pki_scheduler_bin());
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("PKI_") || k.starts_with("SCHEDULER_") {
                cmd.env_remove(key);
            }
        }
        cmd.current_dir(self.dir())
            .arg("--config")
            .arg(self.config_path())
            .args(["run-once", job])
            .env("PKI_DATABASE_URL", self.role_url("scheduler"))
            .env("PKI_FAKE_NOW", fake_now(now))
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `pki-scheduler run-once JOB` at `now` (must succeed) and returns
    /// the job's report.
    #[track_caller]
    pub fn scheduler_job(&self, job: &str, now: DateTime<Utc>) -> Value {
        let out = output_of(&mut self.scheduler_command(job, now), "pki-scheduler");
        scheduler_report(job, now, &out)
    }

    /// `reminders list --json` (every state).
    #[track_caller]
    pub fn reminders(&self) -> Vec<Value> {
        as_array(
            self.ok_json(&["reminders", "list", "--json"]),
            "reminders list --json",
        )
    }

    /// Activates the card's certificates when they are on hold (issuance
    /// stores card certificates on hold until activation, CPS 4.3.1), then
    /// checks that every certificate of the card is active.
    #[track_caller]
    pub fn activate_card(&self, card: &str) {
        let show = self.ok_json(&["card", "show", card, "--json"]);
        let certs = show["certificates"].as_array().cloned().unwrap_or_default();
        if certs.iter().any(|c| c["status"] == "hold") {
            self.ok(&["activate", "--card", card]);
        }
        let show = self.ok_json(&["card", "show", card, "--json"]);
        let certs = show["certificates"].as_array().cloned().unwrap_or_default();
        assert!(!certs.is_empty(), "card {card} has no certificate");
        for c in &certs {
            assert_eq!(c["status"], "active", "card {card}: {}", abbreviate(&show));
        }
    }
}

/// The report of a finished `pki-scheduler run-once JOB` (must be a success).
#[track_caller]
pub fn scheduler_report(job: &str, now: DateTime<Utc>, out: &Output) -> Value {
    let shown = describe(
        &format!(
            "PKI_FAKE_NOW={} pki-scheduler run-once {job}",
            fake_now(now)
        ),
        out,
    );
    assert!(out.status.success(), "pki-scheduler failed\n{shown}");
    let lines = json_lines(&stdout_str(out));
    assert_eq!(lines.len(), 1, "one JSON line expected\n{shown}");
    let line = &lines[0];
    assert_eq!(line["job"], job, "{shown}");
    assert_eq!(line["ok"], true, "{shown}");
    line["report"].clone()
}

/// A number of a report (0 when absent would hide bugs: panics instead).
#[track_caller]
pub fn count_of(report: &Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no count {key:?} in report {}", abbreviate(report)))
}
