//! The real services, ocsp-responder, `crl-publisher run` (the CRL signer,
//! no listener), crl-server and pki-scheduler: finding their binaries,
//! starting each until it is ready (listens; the signer: has published),
//! waiting until they have loaded or published everything, watching that
//! they stay up, their memory, and stopping them (SIGTERM).

use crate::db;
use crate::http::{metric, Http};
use crate::stats::{memory_mib, round3};
use crate::workdir::{Workdir, CA_PASSPHRASE, OCSP_PASSPHRASE};
use anyhow::{bail, ensure, Context};
use ca_core::Ca;
use serde_json::{json, Map, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BINARIES: [&str; 4] = [
    "ocsp-responder",
    "crl-publisher",
    "crl-server",
    "pki-scheduler",
];
/// What a service with a listener prints once bound, before its address.
const LISTENING: &str = "listening on http://";
/// What `crl-publisher run` prints once it has published everything.
const SIGNER_READY: &str = "crl-publisher: published, following changes";

/// Where the services' binaries are: `--bin-dir`, or this binary's
/// directory (i.e. target/release); each must be there.
pub fn bin_dir(arg: Option<&Path>) -> anyhow::Result<PathBuf> {
    let bin_dir = match arg {
        Some(d) => d.to_path_buf(),
        None => std::env::current_exe()?
            .parent()
            .context("binary directory")?
            .to_path_buf(),
    };
    for b in BINARIES {
        ensure!(
            bin_dir.join(b).is_file(),
            "{} missing: cargo build --release -p ocsp-responder -p crl-publisher -p crl-server -p scheduler",
            bin_dir.join(b).display()
        );
    }
    Ok(bin_dir)
}

pub struct Service {
    name: &'static str,
    child: Child,
    pid: String,
    pub addr: String,
    log: PathBuf,
    started_seconds: f64,
    running: bool,
}

impl Service {
    /// Starts `bin_dir/name` with `args` and only `env` (besides PATH,
    /// HOME...: every PKI_/OCSP_/CRL_/SCHEDULER_ variable is removed), and
    /// waits for its `ready` line (`listening on http://ADDR`: the address).
    fn start(
        name: &'static str,
        bin_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        dir: &Path,
        ready: &str,
    ) -> anyhow::Result<Service> {
        let bin = bin_dir.join(name);
        let log = dir.join(format!("{name}.log"));
        let out = dir.join(format!("{name}.out"));
        let mut cmd = Command::new(&bin);
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if ["PKI_", "OCSP_", "CRL_", "SCHEDULER_"]
                .iter()
                .any(|p| k.starts_with(p))
            {
                cmd.env_remove(key);
            }
        }
        cmd.envs(env.iter().copied())
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?);
        let t = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut copy = std::fs::File::create(out).ok();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(f) = copy.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
                let _ = tx.send(line);
            }
        });
        let pid = child.id().to_string();
        let mut service = Service {
            name,
            child,
            pid,
            addr: String::new(),
            log,
            started_seconds: 0.0,
            running: true,
        };
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    if let Some((_, rest)) = line.split_once(ready) {
                        service.addr = rest.trim().to_string();
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if let Ok(Some(status)) = service.child.try_wait() {
                        service.running = false;
                        bail!(
                            "{name} exited ({status}) before it was ready:\n{}",
                            service.log_tail()
                        );
                    }
                }
                Err(_) => bail!("{name} did not print {ready:?}:\n{}", service.log_tail()),
            }
        }
        service.started_seconds = t.elapsed().as_secs_f64();
        Ok(service)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let (status, body) = Http::new(&self.addr).call("GET", path, &[])?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.running = false;
            bail!("{} exited ({status}):\n{}", self.name, self.log_tail());
        }
        Ok(())
    }

    fn memory(&self) -> Value {
        match memory_mib(&self.pid) {
            Some((peak, now)) => json!({"peak_rss_mib": peak, "rss_mib": now}),
            None => Value::Null,
        }
    }

    /// SIGTERM, then waits (SIGKILL after 60 s).
    fn stop(&mut self) -> anyhow::Result<Value> {
        if !self.running {
            return Ok(json!({"exit": "already exited"}));
        }
        let memory = self.memory();
        let t = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid])
            .status()
            .context("running kill")?;
        ensure!(sent.success(), "kill -TERM {} failed", self.pid);
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break self.child.wait()?;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        self.running = false;
        Ok(json!({"memory": memory, "exit": status.to_string(),
                  "stop_seconds": round3(t.elapsed().as_secs_f64())}))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if self.running {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub struct Services {
    pub ocsp: Service,
    /// `crl-publisher run`: signs and writes the CRLs (no listener).
    pub signer: Service,
    /// `crl-server`: serves what the signer wrote.
    pub crl: Service,
    pub scheduler: Service,
}

impl Services {
    /// Starts the four (the defaults of each, listening on a free port of
    /// 127.0.0.1; the scheduler's crons are in pki.toml), in `workdir.dir`.
    pub fn start(bin_dir: &Path, workdir: &Workdir) -> anyhow::Result<Services> {
        let config = workdir.config.display().to_string();
        let crl_dir = workdir.crl_dir.display().to_string();
        let listen = "127.0.0.1:0";
        let dir = &workdir.dir;
        let [ocsp, signer, crl, scheduler] = BINARIES;
        Ok(Services {
            ocsp: Service::start(
                ocsp,
                bin_dir,
                &["--config", &config, "--listen", listen],
                &[("PKI_OCSP_PASSPHRASE", OCSP_PASSPHRASE)],
                dir,
                LISTENING,
            )?,
            signer: Service::start(
                signer,
                bin_dir,
                &["--config", &config, "--out-dir", &crl_dir, "run"],
                &[("PKI_CA_PASSPHRASE", CA_PASSPHRASE)],
                dir,
                SIGNER_READY,
            )?,
            crl: Service::start(
                crl,
                bin_dir,
                &["--config", &config, "--dir", &crl_dir, "--listen", listen],
                &[],
                dir,
                LISTENING,
            )?,
            scheduler: Service::start(
                scheduler,
                bin_dir,
                &["--config", &config],
                &[],
                dir,
                LISTENING,
            )?,
        })
    }

    fn each(&self) -> [&Service; 4] {
        [&self.ocsp, &self.signer, &self.crl, &self.scheduler]
    }

    fn each_mut(&mut self) -> [&mut Service; 4] {
        [
            &mut self.ocsp,
            &mut self.signer,
            &mut self.crl,
            &mut self.scheduler,
        ]
    }

    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        self.each_mut()
            .into_iter()
            .try_for_each(Service::check_alive)
    }

    /// Each one's memory, by name.
    pub fn memory(&self) -> Value {
        let memory = self.each().map(|s| (s.name.to_string(), s.memory()));
        Value::Object(memory.into_iter().collect())
    }

    /// The start-up times (until listening, then until ready) and the
    /// memory once ready.
    pub fn started(&self, ready: f64) -> Value {
        let mut started = Map::new();
        for s in self.each() {
            started.insert(
                format!("{}_listening_seconds", s.name),
                json!(round3(s.started_seconds)),
            );
        }
        started.insert("then_ready_seconds".into(), json!(round3(ready)));
        started.insert("memory_at_ready".into(), self.memory());
        Value::Object(started)
    }

    /// Stops each (SIGTERM); how each ended, by name.
    pub fn stop(&mut self) -> anyhow::Result<Value> {
        let mut stopped = Map::new();
        for s in self.each_mut() {
            stopped.insert(s.name.to_string(), s.stop()?);
        }
        Ok(Value::Object(stopped))
    }

    /// Waits until the responder has signed at least `certs` responses and
    /// has nothing left to refresh, and the publisher has a complete CRL of
    /// every issuing CA; returns the seconds waited.
    pub fn wait_ready(&mut self, ca: &mut Ca, certs: usize) -> anyhow::Result<f64> {
        let t = Instant::now();
        let deadline = Instant::now() + Duration::from_secs(900);
        loop {
            self.check_alive()?;
            let (health, _) = self.ocsp.get("/health")?;
            let (_, page) = self.ocsp.get("/metrics")?;
            let queue = metric(&page, "ocsp_refresh_queue");
            let presigned = metric(&page, "ocsp_presigned_responses").unwrap_or(0.0);
            let (crl_health, _) = self.crl.get("/health")?;
            let issuers_with_crl = db::issuers_with_complete_crl(&mut ca.db)?;
            if health == 200
                && queue == Some(0.0)
                && presigned >= certs as f64
                && crl_health == 200
                && issuers_with_crl >= 2
            {
                return Ok(t.elapsed().as_secs_f64());
            }
            ensure!(
                Instant::now() < deadline,
                "services not ready after 900 s (ocsp health {health}, queue {queue:?}, \
                 presigned {presigned}; crl health {crl_health}, {issuers_with_crl} CRLs)"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}
