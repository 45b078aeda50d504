//! `pki-admin run`: the whole system in one command (the README's run
//! command, `make demo`).
//!
//! 1. The configuration: the one given (`--config`, `PKI_CONFIG`,
//!    `./pki.toml`) as is; on the embedded default (no file), the demo's
//!    own `<data_dir>/pki.toml`, written on first run: the defaults with
//!    `urls.ocsp` and `urls.crl_base` on the local services (so that the
//!    certificates name URLs that answer) and the demo passphrase files.
//! 2. The demo CA ([`crate::demo::setup`]): hierarchy, sample registry and
//!    cards, a bureau batch, activation; idempotent.
//! 3. `ocsp-responder`, `crl-publisher run` (the CRL signer, no listener),
//!    `crl-server` (serves what the signer wrote, no key) and `pki-scheduler`,
//!    found next to this executable, as child processes, each in its own
//!    process group (a Ctrl-C reaches this process only), each listener on
//!    its own 127.0.0.1 port, stdout and stderr into
//!    `<data_dir>/logs/<name>.log`. Each child gets only the passphrase it
//!    needs (the responder never the CA's, the CRL server none). Once every
//!    child has printed its ready line (`listening on http://ADDR`; the
//!    signer: `published, following changes`), the URLs and commands to try
//!    are printed.
//! 4. Then it waits. SIGINT or SIGTERM: SIGTERM to every child, a wait of
//!    `--stop-timeout` seconds, SIGKILL for those still running, exit 0 when
//!    they all stopped cleanly. A child that dies meanwhile is reported
//!    with the end of its log and the others are stopped (exit 1).

use crate::demo;
use crate::paths::{shown, tidy};
use anyhow::{bail, Context};
use clap::Args;
use pki_store::clock::Clock;
use pki_store::config::{Config, KeyPurpose};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::signal::unix::{signal, Signal, SignalKind};

#[derive(Args)]
pub struct RunArgs {
    /// Number of sample holders created on first run.
    #[arg(long, default_value_t = 12)]
    holders: usize,
    /// Address of the OCSP responder (default: host and port of urls.ocsp
    /// when it is a local URL, else 127.0.0.1:8080).
    #[arg(long)]
    ocsp_listen: Option<String>,
    /// Address of the CRL publisher (default: host and port of
    /// urls.crl_base when it is a local URL, else 127.0.0.1:8081).
    #[arg(long)]
    crl_listen: Option<String>,
    /// Address of the scheduler's /health and /metrics (default:
    /// scheduler.listen, 127.0.0.1:8083).
    #[arg(long)]
    scheduler_listen: Option<String>,
    /// Seconds each service has to start listening.
    #[arg(long, default_value_t = 120)]
    start_timeout: u64,
    /// Seconds the services have to stop after SIGTERM before they are killed.
    #[arg(long, default_value_t = 10)]
    stop_timeout: u64,
}

/// Default addresses of the services.
const OCSP_DEFAULT: &str = "127.0.0.1:8080";
const CRL_DEFAULT: &str = "127.0.0.1:8081";

/// The configuration file in force, by `Config::resolve`'s rule.
pub fn config_file(given: Option<&Path>) -> Option<PathBuf> {
    match given {
        Some(p) => Some(p.to_path_buf()),
        None if Path::new("pki.toml").exists() => Some(PathBuf::from("pki.toml")),
        None => None,
    }
}

/// `host:port` of a local `http://host:port/...` URL.
fn local_listen(url: &str) -> Option<String> {
    let authority = url.strip_prefix("http://")?.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    let local = matches!(host, "127.0.0.1" | "localhost" | "[::1]");
    (local && port.parse::<u16>().is_ok_and(|p| p > 0)).then(|| authority.to_string())
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The demo's configuration file on the embedded default: written on first
/// run, read afterwards.
fn demo_config(defaults: Config, args: &RunArgs) -> anyhow::Result<(Config, PathBuf)> {
    let path = defaults.data_dir.join("pki.toml");
    if !path.exists() {
        let mut config = defaults;
        demo::ensure_passphrases(&mut config)?;
        let ocsp = args.ocsp_listen.as_deref().unwrap_or(OCSP_DEFAULT);
        let crl = args.crl_listen.as_deref().unwrap_or(CRL_DEFAULT);
        for (flag, addr) in [("--ocsp-listen", ocsp), ("--crl-listen", crl)] {
            if addr.ends_with(":0") {
                bail!("{flag} {addr}: the demo writes this address into its certificates, so it needs a fixed port");
            }
        }
        let file_name = |p: &Option<PathBuf>| {
            p.as_ref()
                .and_then(|p| p.file_name())
                .map(|n| toml_string(&n.to_string_lossy()))
        };
        let mut text = String::from(
            "# Written by `pki-admin run` (the demo) on its first run: the built-in defaults,\n\
             # with the URLs of the local OCSP responder and CRL publisher (written into the\n\
             # certificates) and the demo's passphrase files. Not for production.\n\
             # Relative paths are relative to this file.\n\
             data_dir = \".\"\n\n[urls]\n",
        );
        text.push_str(&format!(
            "ocsp = {}\ncrl_base = {}\n",
            toml_string(&format!("http://{ocsp}/eid/ocsp")),
            toml_string(&format!("http://{crl}/eid/crl"))
        ));
        text.push_str("\n[keys]\n");
        if let Some(f) = file_name(&config.keys.passphrase_file) {
            text.push_str(&format!("passphrase_file = {f}\n"));
        }
        if let Some(f) = file_name(&config.keys.ocsp_passphrase_file) {
            text.push_str(&format!("ocsp_passphrase_file = {f}\n"));
        }
        if let Some(f) = file_name(&config.keys.audit_passphrase_file) {
            text.push_str(&format!("audit_passphrase_file = {f}\n"));
        }
        if let Some(addr) = &args.scheduler_listen {
            text.push_str(&format!("\n[scheduler]\nlisten = {}\n", toml_string(addr)));
        }
        std::fs::create_dir_all(&config.data_dir)?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "run: wrote the demo configuration {} (local service URLs)",
            path.display()
        );
    }
    let mut config = Config::load(&path)?;
    config.data_dir = tidy(&config.data_dir);
    Ok((config, path))
}

/// A binary of the workspace next to this executable.
fn sibling(exe: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let dir = exe.parent().context("the executable has no directory")?;
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "{name} not found next to {} (build them with cargo build --workspace --bins)",
            exe.display()
        );
    }
    Ok(path)
}

/// What a service with a listener prints once bound, before its address.
const LISTENING: &str = "listening on http://";
/// What `crl-publisher run` (no listener) prints once it has published.
const SIGNER_READY: &str = "crl-publisher: published, following changes";

/// One service to start.
struct Spec {
    name: &'static str,
    bin: PathBuf,
    args: Vec<String>,
    /// The stdout line that says it is up: `listening on http://` (then
    /// followed by its address), or another marker for a service without
    /// a listener (the CRL signer).
    ready: &'static str,
    /// Environment variables set (passphrases) and removed.
    set: Vec<(String, String)>,
    remove: Vec<String>,
}

/// A running service.
struct Service {
    name: &'static str,
    child: Child,
    log: PathBuf,
    addr: String,
}

/// SIGINT and SIGTERM.
struct Signals {
    int: Signal,
    term: Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        Ok(Signals {
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}

/// The last `n` lines of a log file.
fn tail(log: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("    {l}\n"))
        .collect()
}

enum Started {
    Up(Service),
    /// A signal came first.
    Interrupted(Child, &'static str),
}

/// Starts one service and waits for its ready line (`listening on http://ADDR`).
async fn start(
    spec: Spec,
    logs: &Path,
    timeout: Duration,
    signals: &mut Signals,
) -> anyhow::Result<Started> {
    let log = logs.join(format!("{}.log", spec.name));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("opening {}", log.display()))?;
    let _ = writeln!(
        file,
        "---- {} started by pki-admin run at {}",
        spec.name,
        chrono::Utc::now().to_rfc3339()
    );
    let mut cmd = Command::new(&spec.bin);
    cmd.args(&spec.args)
        .env_remove("PKI_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(file.try_clone()?))
        .process_group(0)
        .kill_on_drop(true);
    for k in &spec.remove {
        cmd.env_remove(k);
    }
    for (k, v) in &spec.set {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", spec.bin.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let ready = spec.ready;
    let (tx, mut rx) = tokio::sync::oneshot::channel::<String>();
    tokio::spawn(async move {
        let mut tx = Some(tx);
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(i) = line.find(ready) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(line[i + ready.len()..].trim().to_string());
                }
            }
            let _ = writeln!(file, "{line}");
        }
    });
    let name = spec.name;
    tokio::select! {
        addr = &mut rx => match addr {
            Ok(addr) => Ok(Started::Up(Service { name, child, log, addr })),
            Err(_) => {
                let status = child.wait().await?;
                bail!("{name} exited ({status}) before it was ready; the end of {}:\n{}", log.display(), tail(&log, 15))
            }
        },
        status = child.wait() => {
            let status = status?;
            bail!("{name} exited ({status}) before it was ready; the end of {}:\n{}", log.display(), tail(&log, 15))
        }
        _ = tokio::time::sleep(timeout) => {
            bail!("{name} was not ready within {} s; see {}", timeout.as_secs(), log.display())
        }
        s = signals.recv() => Ok(Started::Interrupted(child, s)),
    }
}

/// SIGTERM to every running service, SIGKILL after `timeout`; true when
/// all exited 0.
async fn stop_all(services: &mut [Service], timeout: Duration) -> bool {
    for s in services.iter() {
        // `id()` is None once the child has been reaped: never signal a
        // process id that may have been reused.
        if let Some(pid) = s.child.id().and_then(|p| i32::try_from(p).ok()) {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let mut clean = true;
    for s in services.iter_mut() {
        let status: Option<ExitStatus> =
            match tokio::time::timeout_at(deadline, s.child.wait()).await {
                Ok(Ok(status)) => Some(status),
                _ => {
                    eprintln!(
                        "run: {} did not stop within {} s: killed",
                        s.name,
                        timeout.as_secs()
                    );
                    let _ = s.child.start_kill();
                    s.child.wait().await.ok()
                }
            };
        match status {
            Some(st) if st.success() => outln!("   stopped {}", s.name),
            Some(st) => {
                clean = false;
                eprintln!("run: {} stopped with {st}; see {}", s.name, s.log.display());
            }
            None => clean = false,
        }
    }
    clean
}

/// Everything the hints need.
struct Hints<'a> {
    config: &'a Config,
    config_file: &'a Path,
    ca_passphrase_file: Option<&'a Path>,
    ca_dir: &'a Path,
    first: Option<&'a (String, String, String)>,
    ocsp: &'a str,
    crl: &'a str,
    scheduler: &'a str,
    logs: &'a Path,
    today: chrono::NaiveDate,
}

fn url_path(url: &str) -> String {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    match rest.find('/') {
        Some(i) => rest[i..].trim_end_matches('/').to_string(),
        None => String::new(),
    }
}

fn print_hints(h: &Hints<'_>) {
    let ocsp_url = format!("http://{}{}", h.ocsp, url_path(&h.config.urls.ocsp));
    let crl_base = format!("http://{}{}", h.crl, url_path(&h.config.urls.crl_base));
    let admin = std::env::current_exe()
        .map(|p| shown(&p))
        .unwrap_or_else(|_| "pki-admin".into());
    let try_dir = tidy(&h.config.data_dir.join("try"));
    let t = |f: &str| try_dir.join(f).display().to_string();
    let ca = |n: &str| h.ca_dir.join(format!("{n}.pem")).display().to_string();
    let ask_of = |issuer: &str, cert: &str| {
        format!(
            "openssl ocsp -url {ocsp_url} -issuer {} -CAfile {} -cert {cert}",
            ca(issuer),
            ca("root")
        )
    };
    let ask = |cert: &str| ask_of("identity-card-ca", cert);
    // A new card number each time the commands are pasted (the shell's
    // clock), so that they can be pasted again.
    let card = "$card";
    let expires = h
        .today
        .checked_add_months(chrono::Months::new(120))
        .unwrap_or(h.today);
    outln!("\n== the eID CA is running (Ctrl-C stops it)");
    outln!("   OCSP responder  {ocsp_url}   (GET/POST; /health, /metrics)");
    outln!(
        "   CRL publisher   {crl_base}/identity-card-ca.crl   (and residence-card-ca.crl, root.crl, the deltas; /health, /metrics)"
    );
    outln!(
        "   scheduler       http://{}/health   (/metrics)",
        h.scheduler
    );
    outln!("   logs            {}", h.logs.display());
    outln!("\nTry, in another terminal in this directory:");
    outln!("  export PKI_CONFIG={}", shown(h.config_file));
    if let Some(f) = h.ca_passphrase_file {
        outln!("  export PKI_CA_PASSPHRASE=\"$(cat {})\"", shown(f));
    }
    outln!("  mkdir -p {}", try_dir.display());
    // The responder follows the CA's change feed (the audit log) every
    // 200 ms: a query right after a change could still get the answer of
    // before (for a new serial: "never issued", revoked 1970). ocsp_wait
    // waits until the responder has applied the CA's last change, whatever
    // its poll interval, so that the commands can be pasted all at once.
    outln!("  # the OCSP responder follows the CA's changes within ~200 ms: ocsp_wait waits until it has applied the last one");
    outln!(
        "  ocsp_wait() {{ n=$({admin} audit list --tail 1 | awk '{{ print substr($1, 2) }}'); until curl -s http://{}/metrics | awk -v n=\"$n\" '$1 == \"ocsp_feed_position\" && $2 >= n {{ ok = 1 }} END {{ exit !ok }}'; do sleep 0.2; done; }}",
        h.ocsp
    );
    if let Some((serial, issuer, card_number)) = h.first {
        outln!("  # a demo certificate (card {card_number})");
        outln!("  {admin} cert show {serial} --pem > {}", t("demo.pem"));
        outln!("  {}    # good", ask_of(issuer, &t("demo.pem")));
    }
    outln!("  # a new card: its certificate, on hold until the holder activates it");
    outln!("  card=ID9$(date +%s | cut -c 3-10)");
    outln!(
        "  {admin} card add --number {card} --kind identity --holder MC00000001 --issued {} --expires {expires}",
        h.today
    );
    outln!(
        "  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=card -keyout {} -out {}",
        t("card.key"),
        t("card.csr")
    );
    outln!(
        "  {admin} issue --card {card} --usage auth --csr {} --out {}",
        t("card.csr"),
        t("card.pem")
    );
    outln!(
        "  ocsp_wait; {}    # revoked, certificateHold, since its issuance",
        ask(&t("card.pem"))
    );
    outln!("  {admin} activate --card {card}");
    outln!("  ocsp_wait; {}    # good", ask(&t("card.pem")));
    outln!("  {admin} revoke --card {card} --reason keyCompromise");
    outln!(
        "  ocsp_wait; {}    # revoked, keyCompromise",
        ask(&t("card.pem"))
    );
    // The publisher debounces: a delta CRL follows a change within a
    // minute, the complete CRL within five. The loop waits for the
    // revocation in either (the delta, or the complete CRL once a new one
    // has taken it in).
    outln!("  # the CRLs: a revocation reaches the delta CRL within a minute, the complete CRL within 5 minutes; crls prints both, the loop waits for it");
    outln!(
        "  crls() {{ for f in identity-card-ca-delta identity-card-ca; do curl -s {crl_base}/$f.crl | openssl crl -inform DER -noout -text; done; }}"
    );
    outln!(
        "  s=$(openssl x509 -noout -serial -in {} | cut -d= -f2); until crls | grep -A 4 \"Serial Number: $s\" | grep -q 'Key Compromise'; do sleep 2; done",
        t("card.pem")
    );
    outln!("  crls | grep -A 4 \"Serial Number: $s\"    # Key Compromise");
    outln!(
        "  {admin} crl fetch --from http://{} --out {}",
        h.crl,
        t("crl")
    );
    outln!("  # the scheduler's jobs and the revocation SLA");
    outln!("  curl -s http://{}/metrics | grep '^pki_'", h.scheduler);
    outln!("  {admin} sla");
    outln!();
    let _ = std::io::stdout().flush();
}

pub fn run(
    config: Config,
    given: Option<&Path>,
    clock: Arc<dyn Clock>,
    actor: &str,
    args: &RunArgs,
) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("locating pki-admin")?;
    let ocsp_bin = sibling(&exe, "ocsp-responder")?;
    let crl_bin = sibling(&exe, "crl-publisher")?;
    let crl_server_bin = sibling(&exe, "crl-server")?;
    let scheduler_bin = sibling(&exe, "pki-scheduler")?;

    // The passphrases the shell gave in the environment leave it: this
    // process re-executes itself without them and receives them on a pipe
    // (`handover`); only the children that need one get it.
    crate::handover::reexec_without(&[
        config.keys.passphrase_env.clone(),
        config.keys.ocsp_passphrase_env.clone(),
        config.keys.audit_passphrase_env.clone(),
    ])?;
    let handed_over = pki_store::config::HandedOver(crate::handover::take()?);
    let mut config = config;
    config.handed_over = handed_over.clone();
    let (mut config, config_file) = match config_file(given) {
        Some(file) => (config, file),
        None => demo_config(config, args)?,
    };
    // The demo's configuration is read again from its file.
    config.handed_over = handed_over;
    let config_file = std::path::absolute(&config_file).unwrap_or(config_file);
    let configured_ca_passphrase = config.passphrase(KeyPurpose::Ca).is_ok();
    demo::ensure_passphrases(&mut config)?;
    let ca_passphrase_file = (!configured_ca_passphrase)
        .then(|| config.keys.passphrase_file.clone())
        .flatten();
    let today = clock.now().date_naive();
    let made = demo::setup(config.clone(), clock, actor, args.holders)?;

    let ca_pass = config.passphrase(KeyPurpose::Ca).ok();
    let ocsp_pass = config.passphrase(KeyPurpose::OcspResponder).ok();
    let ca_env = config.keys.passphrase_env.clone();
    let ocsp_env = config.keys.ocsp_passphrase_env.clone();
    // The scheduler signs the audit log's checkpoints with the audit key only.
    let audit_pass = config.passphrase(KeyPurpose::Audit).ok();
    let audit_env = config.keys.audit_passphrase_env.clone();
    let ocsp_addr = args
        .ocsp_listen
        .clone()
        .or_else(|| local_listen(&config.urls.ocsp))
        .unwrap_or_else(|| OCSP_DEFAULT.into());
    let crl_addr = args
        .crl_listen
        .clone()
        .or_else(|| local_listen(&config.urls.crl_base))
        .unwrap_or_else(|| CRL_DEFAULT.into());
    let scheduler_addr = args
        .scheduler_listen
        .clone()
        .unwrap_or_else(|| config.scheduler.listen.clone());
    let logs = tidy(&config.data_dir.join("logs"));
    std::fs::create_dir_all(&logs)?;
    let cfg = config_file.display().to_string();
    let specs = vec![
        Spec {
            name: "ocsp-responder",
            bin: ocsp_bin,
            args: vec!["--config".into(), cfg.clone(), "--listen".into(), ocsp_addr],
            ready: LISTENING,
            set: ocsp_pass
                .map(|p| vec![(ocsp_env.clone(), p)])
                .unwrap_or_default(),
            remove: vec![ca_env.clone(), ocsp_env.clone(), audit_env.clone()],
        },
        Spec {
            name: "crl-publisher",
            bin: crl_bin,
            args: vec!["--config".into(), cfg.clone(), "run".into()],
            ready: SIGNER_READY,
            set: ca_pass
                .map(|p| vec![(ca_env.clone(), p)])
                .unwrap_or_default(),
            remove: vec![ca_env.clone(), ocsp_env.clone(), audit_env.clone()],
        },
        // Started after the signer has published: it serves what the
        // signer wrote, and holds no key (no passphrase is passed).
        Spec {
            name: "crl-server",
            bin: crl_server_bin,
            args: vec!["--config".into(), cfg.clone(), "--listen".into(), crl_addr],
            ready: LISTENING,
            set: Vec::new(),
            remove: vec![ca_env.clone(), ocsp_env.clone(), audit_env.clone()],
        },
        Spec {
            name: "pki-scheduler",
            bin: scheduler_bin,
            args: vec!["--config".into(), cfg, "--listen".into(), scheduler_addr],
            ready: LISTENING,
            set: audit_pass
                .map(|p| vec![(audit_env.clone(), p)])
                .unwrap_or_default(),
            remove: vec![ca_env, ocsp_env],
        },
    ];

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async {
        let mut signals = Signals::new()?;
        let mut services: Vec<Service> = Vec::new();
        outln!("\n-- starting the services (logs in {})", logs.display());
        for spec in specs {
            let name = spec.name;
            match start(
                spec,
                &logs,
                Duration::from_secs(args.start_timeout),
                &mut signals,
            )
            .await
            {
                Ok(Started::Up(s)) => {
                    if s.addr.is_empty() {
                        outln!("   {name} running (no listener)");
                    } else {
                        outln!("   {name} listening on http://{}", s.addr);
                    }
                    services.push(s);
                }
                Ok(Started::Interrupted(child, sig)) => {
                    outln!("-- {sig}: stopping");
                    services.push(Service {
                        name,
                        child,
                        log: logs.join(format!("{name}.log")),
                        addr: String::new(),
                    });
                    let clean =
                        stop_all(&mut services, Duration::from_secs(args.stop_timeout)).await;
                    return Ok(if clean {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    });
                }
                Err(e) => {
                    stop_all(&mut services, Duration::from_secs(args.stop_timeout)).await;
                    return Err(e);
                }
            }
        }
        print_hints(&Hints {
            config: &config,
            config_file: &config_file,
            ca_passphrase_file: ca_passphrase_file.as_deref(),
            ca_dir: &made.ca_dir,
            first: made.first.as_ref(),
            ocsp: &services[0].addr,
            crl: &services[2].addr,
            scheduler: &services[3].addr,
            logs: &logs,
            today,
        });

        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let died = loop {
            tokio::select! {
                sig = signals.recv() => {
                    outln!("-- {sig}: stopping the services");
                    break None;
                }
                _ = tick.tick() => {
                    let mut died = None;
                    for (i, s) in services.iter_mut().enumerate() {
                        if let Ok(Some(status)) = s.child.try_wait() {
                            died = Some((i, status));
                            break;
                        }
                    }
                    if died.is_some() {
                        break died;
                    }
                }
            }
        };
        match died {
            None => {
                let clean = stop_all(&mut services, Duration::from_secs(args.stop_timeout)).await;
                if clean {
                    outln!("-- stopped");
                    Ok(ExitCode::SUCCESS)
                } else {
                    bail!(
                        "some services did not stop cleanly (logs in {})",
                        logs.display()
                    )
                }
            }
            Some((i, status)) => {
                let s = &services[i];
                let message = format!(
                    "{} exited unexpectedly ({status}); the end of {}:\n{}",
                    s.name,
                    s.log.display(),
                    tail(&s.log, 15)
                );
                stop_all(&mut services, Duration::from_secs(args.stop_timeout)).await;
                bail!(message)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_urls_give_listen_addresses() {
        assert_eq!(
            local_listen("http://127.0.0.1:8080/eid/ocsp").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(
            local_listen("http://localhost:9000").as_deref(),
            Some("localhost:9000")
        );
        assert_eq!(local_listen("http://pki.example.com/eid/ocsp"), None);
        assert_eq!(local_listen("http://127.0.0.1/eid/ocsp"), None);
        assert_eq!(local_listen("https://127.0.0.1:8443/x"), None);
        assert_eq!(url_path("http://h:1/eid/crl/"), "/eid/crl");
        assert_eq!(url_path("http://h:1"), "");
        assert_eq!(
            tidy(Path::new("pki-data/./ca")),
            PathBuf::from("pki-data/ca")
        );
        assert_eq!(tidy(Path::new(".")), PathBuf::from("."));
    }

    #[test]
    fn the_demo_configuration_is_written_once_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let defaults = Config {
            data_dir: dir.path().join("pki-data"),
            ..Config::default()
        };
        let args = RunArgs {
            holders: 1,
            ocsp_listen: Some("127.0.0.1:18080".into()),
            crl_listen: None,
            scheduler_listen: None,
            start_timeout: 1,
            stop_timeout: 1,
        };
        // Without a passphrase in the environment the demo files are used.
        let (c, path) = demo_config(defaults.clone(), &args).unwrap();
        assert_eq!(path, dir.path().join("pki-data/pki.toml"));
        assert_eq!(c.urls.ocsp, "http://127.0.0.1:18080/eid/ocsp");
        assert_eq!(c.urls.crl_base, "http://127.0.0.1:8081/eid/crl");
        assert_eq!(c.data_dir, dir.path().join("pki-data"));
        // Read, not rewritten, on the next run.
        let again = RunArgs {
            ocsp_listen: None,
            ..args
        };
        let (c2, _) = demo_config(defaults.clone(), &again).unwrap();
        assert_eq!(c2.urls.ocsp, c.urls.ocsp);
        // A port 0 cannot go into certificates.
        std::fs::remove_file(&path).unwrap();
        let zero = RunArgs {
            crl_listen: Some("127.0.0.1:0".into()),
            ..again
        };
        let e = demo_config(defaults, &zero).unwrap_err().to_string();
        assert!(e.contains("fixed port"), "{e}");
    }
}
