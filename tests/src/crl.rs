//! CRLs: running the real `crl-publisher` (signer) and `crl-server`
//! binaries, reading the CRLs with
//! `openssl crl`, verifying chains against them with `openssl verify`,
//! linting them with pkilint's `lint_crl`, and a small HTTP client for the
//! publisher's server.
//!
//! The binary is `CRL_PUBLISHER_BIN` if set, else `crl-publisher` next to
//! `pki-admin` (build it first: `cargo build -p crl-publisher`). Each test
//! publishes into `<tmp>/crl` ([`TestEnv::crl_dir`]).

use crate::*;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;

/// The `crl-server` binary under test (`CRL_SERVER_BIN`, else next to `pki-admin`).
pub fn crl_server_bin() -> PathBuf {
    workspace_bin("crl-server", "CRL_SERVER_BIN", "crl-server")
}

/// The `crl-publisher` binary under test.
pub fn crl_publisher_bin() -> PathBuf {
    workspace_bin("crl-publisher", "CRL_PUBLISHER_BIN", "crl-publisher")
}

impl TestEnv {
    /// The publication directory of this test.
    pub fn crl_dir(&self) -> PathBuf {
        self.path("crl")
    }

    /// Appends `[crl] partitions = N` to pki.toml.
    pub fn set_crl_partitions(&self, n: u32) {
        let mut text = fs::read_to_string(self.config_path()).expect("read pki.toml");
        text.push_str(&format!("\n[crl]\npartitions = {n}\n"));
        fs::write(self.config_path(), text).expect("write pki.toml");
    }

    /// A `crl-publisher --out-dir <tmp>/crl ARGS` command in this environment.
    pub fn crl_publisher(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(crl_publisher_bin());
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("PKI_") || k.starts_with("CRL_") {
                cmd.env_remove(key);
            }
        }
        cmd.current_dir(self.dir())
            .env("PKI_CONFIG", self.config_path())
            .env("PKI_DATABASE_URL", self.role_url("crl_signer"))
            .env("PKI_CA_PASSPHRASE", PASSPHRASE)
            .arg("--out-dir")
            .arg(self.crl_dir())
            .args(args)
            .stdin(Stdio::null());
        self.key_env(&mut cmd, &[KeyFamily::Ca]);
        cmd
    }

    /// A `crl-server --dir <tmp>/crl ARGS` command in this environment: no
    /// passphrase (it opens no key), only the configuration for the URL paths.
    pub fn crl_server(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(crl_server_bin());
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("PKI_") || k.starts_with("CRL_") {
                cmd.env_remove(key);
            }
        }
        cmd.current_dir(self.dir())
            .env("PKI_CONFIG", self.config_path())
            .arg("--dir")
            .arg(self.crl_dir())
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// `crl-publisher publish --json ARGS` (must succeed): its JSON lines.
    #[track_caller]
    pub fn publish_crls(&self, args: &[&str]) -> Vec<Value> {
        self.publish_crls_with(args, |_| {})
    }

    /// [`TestEnv::publish_crls`] with a command tweak (e.g. `PKI_FAKE_NOW`).
    #[track_caller]
    pub fn publish_crls_with(&self, args: &[&str], tweak: impl FnOnce(&mut Command)) -> Vec<Value> {
        let mut all = vec!["publish", "--json"];
        all.extend_from_slice(args);
        let mut cmd = self.crl_publisher(&all);
        tweak(&mut cmd);
        let out = output_of(&mut cmd, "crl-publisher");
        let shown = describe(&format!("crl-publisher {}", all.join(" ")), &out);
        assert!(out.status.success(), "crl-publisher failed\n{shown}");
        json_lines(&stdout_str(&out))
    }

    /// A published CRL of this environment, by file name.
    #[track_caller]
    pub fn crl(&self, file: &str) -> Crl {
        Crl::read(&self.crl_dir().join(file))
    }
}

/// One publication line of `crl-publisher publish --json` for a scope.
#[track_caller]
pub fn publication<'a>(lines: &'a [Value], issuer: &str, partition: u64, kind: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["issuer"] == issuer && l["partition"] == partition && l["kind"] == kind)
        .unwrap_or_else(|| {
            panic!(
                "no {kind} CRL of {issuer} partition {partition} in {}",
                cut(&format!("{lines:?}"), 3000)
            )
        })
}

/// One entry of a CRL as `openssl crl -text` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlEntry {
    pub revocation_date: String,
    /// "Key Compromise", "Certificate Hold", "Remove From CRL"...; None = no reason code.
    pub reason: Option<String>,
    pub invalidity_date: Option<String>,
}

/// A DER CRL on disk, its PEM copy and its `openssl crl -text`.
pub struct Crl {
    pub der: PathBuf,
    pub pem: PathBuf,
    pub text: String,
}

impl Crl {
    #[track_caller]
    pub fn read(der: &Path) -> Crl {
        assert!(der.exists(), "no CRL file {}", der.display());
        let pem = der.with_extension(format!("{}.pem", unique_suffix()));
        openssl(&[
            os("crl"),
            os("-inform"),
            os("DER"),
            os("-in"),
            der.as_os_str(),
            os("-out"),
            pem.as_os_str(),
        ]);
        let text = stdout_str(&openssl(&[
            os("crl"),
            os("-in"),
            pem.as_os_str(),
            os("-noout"),
            os("-text"),
        ]));
        Crl {
            der: der.to_path_buf(),
            pem,
            text,
        }
    }

    /// The value lines of a CRL extension (None if absent).
    pub fn extension(&self, name: &str) -> Option<String> {
        let ext = self.text.split("Revoked Certificates").next().unwrap_or("");
        let ext = ext.split("No Revoked Certificates").next().unwrap_or("");
        extension(ext, name)
    }

    /// Is the extension marked critical?
    pub fn is_critical(&self, name: &str) -> bool {
        self.text
            .lines()
            .any(|l| l.trim_start().starts_with(name) && l.contains("critical"))
    }

    /// The decimal cRLNumber.
    #[track_caller]
    pub fn number(&self) -> u64 {
        let v = self
            .extension("X509v3 CRL Number")
            .unwrap_or_else(|| panic!("no CRL number:\n{}", self.text));
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("CRL number {v:?}"))
    }

    /// The base CRL number of a delta CRL (None for a complete CRL).
    pub fn base_number(&self) -> Option<u64> {
        self.extension("X509v3 Delta CRL Indicator")
            .map(|v| v.trim().parse().expect("base CRL number"))
    }

    /// thisUpdate and nextUpdate.
    pub fn times(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let t = |label: &str| {
            let line = self
                .text
                .lines()
                .find(|l| l.trim_start().starts_with(label))
                .unwrap_or_else(|| panic!("no {label}:\n{}", self.text));
            let v = line.split_once(':').unwrap().1;
            let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
            chrono::NaiveDateTime::parse_from_str(&v, "%b %d %H:%M:%S %Y GMT")
                .unwrap_or_else(|e| panic!("{label} {v:?}: {e}"))
                .and_utc()
        };
        (t("Last Update"), t("Next Update"))
    }

    /// The entries by normalised serial (upper-case hex, no leading zeros).
    pub fn entries(&self) -> BTreeMap<String, CrlEntry> {
        let mut out = BTreeMap::new();
        let Some(list) = self.text.split("Revoked Certificates:").nth(1) else {
            return out;
        };
        let list = list.split("Signature Algorithm").next().unwrap_or("");
        let mut current: Option<(String, CrlEntry)> = None;
        let mut lines = list.lines().peekable();
        while let Some(line) = lines.next() {
            let l = line.trim();
            if let Some(serial) = l.strip_prefix("Serial Number:") {
                if let Some((s, e)) = current.take() {
                    out.insert(s, e);
                }
                current = Some((
                    normalise_serial(serial),
                    CrlEntry {
                        revocation_date: String::new(),
                        reason: None,
                        invalidity_date: None,
                    },
                ));
            } else if let Some(d) = l.strip_prefix("Revocation Date:") {
                if let Some((_, e)) = current.as_mut() {
                    e.revocation_date = d.trim().to_string();
                }
            } else if l.starts_with("X509v3 CRL Reason Code") {
                let v = lines.next().unwrap_or("").trim().to_string();
                if let Some((_, e)) = current.as_mut() {
                    e.reason = Some(v);
                }
            } else if l.starts_with("Invalidity Date") {
                let v = lines.next().unwrap_or("").trim().to_string();
                if let Some((_, e)) = current.as_mut() {
                    e.invalidity_date = Some(v);
                }
            }
        }
        if let Some((s, e)) = current.take() {
            out.insert(s, e);
        }
        out
    }

    /// `openssl crl -CAfile CA -noout` must say `verify OK`.
    #[track_caller]
    pub fn verify_signature(&self, ca_file: &Path) {
        let out = output_of(
            Command::new("openssl").args([
                os("crl"),
                os("-in"),
                self.pem.as_os_str(),
                os("-CAfile"),
                ca_file.as_os_str(),
                os("-noout"),
            ]),
            "openssl crl",
        );
        assert!(
            out.status.success() && stderr_str(&out).contains("verify OK"),
            "CRL {} does not verify\n{}",
            self.der.display(),
            describe("openssl crl -CAfile", &out)
        );
    }

    /// `lint_crl lint -t CRL|ARL -p PKIX -s ERROR` must find nothing.
    #[track_caller]
    pub fn lint(&self, crl_type: &str) {
        let findings = pkilint(
            "lint_crl",
            &[
                os("-t"),
                os(crl_type),
                os("-p"),
                os("PKIX"),
                self.der.as_os_str(),
            ],
        );
        assert_no_findings(
            &format!("lint_crl -t {crl_type} {}", self.der.display()),
            &findings,
        );
    }
}

/// Applies a delta CRL to its base: entries with removeFromCRL leave, the
/// others are added or replace the base's.
pub fn apply_delta(
    base: &BTreeMap<String, CrlEntry>,
    delta: &BTreeMap<String, CrlEntry>,
) -> BTreeMap<String, CrlEntry> {
    let mut out = base.clone();
    for (serial, e) in delta {
        if e.reason.as_deref() == Some("Remove From CRL") {
            out.remove(serial);
        } else {
            out.insert(serial.clone(), e.clone());
        }
    }
    out
}

/// `openssl verify [flags] -CAfile root -untrusted issuing -CRLfile ... leaf`:
/// `Ok(())` when it says OK, `Err(output)` otherwise.
pub fn verify_with_crls(
    root: &Path,
    issuing: &Path,
    leaf: &Path,
    crls: &[&Path],
    flags: &[&str],
) -> Result<(), String> {
    let mut args: Vec<&OsStr> = vec![os("verify")];
    args.extend(flags.iter().map(os));
    args.extend([
        os("-CAfile"),
        root.as_os_str(),
        os("-untrusted"),
        issuing.as_os_str(),
    ]);
    for c in crls {
        args.extend([os("-CRLfile"), c.as_os_str()]);
    }
    args.push(leaf.as_os_str());
    let out = output_of(Command::new("openssl").args(&args), "openssl verify");
    let shown: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let text = describe(&format!("openssl {}", shown.join(" ")), &out);
    if out.status.success() && stdout_str(&out).trim_end().ends_with(": OK") {
        Ok(())
    } else {
        Err(text)
    }
}

/// Asserts that verification fails and names `why` (e.g. "certificate revoked").
#[track_caller]
pub fn assert_rejected(result: Result<(), String>, why: &str, what: &str) {
    match result {
        Ok(()) => panic!("{what}: openssl verify accepted it"),
        Err(text) => assert!(
            text.contains(why),
            "{what}: rejected, but not for {why:?}\n{text}"
        ),
    }
}

/// Asserts that verification succeeds.
#[track_caller]
pub fn assert_accepted(result: Result<(), String>, what: &str) {
    if let Err(text) = result {
        panic!("{what}: openssl verify rejected it\n{text}");
    }
}

/// The CRL distribution point URL of a certificate (`openssl x509 -text`).
#[track_caller]
pub fn crl_distribution_point(cert_text: &str) -> String {
    let dp = extension(cert_text, "X509v3 CRL Distribution Points")
        .unwrap_or_else(|| panic!("no CRL distribution point:\n{cert_text}"));
    dp.lines()
        .find_map(|l| l.trim().strip_prefix("URI:"))
        .unwrap_or_else(|| panic!("no URI in {dp}"))
        .to_string()
}

/// An HTTP answer.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A plain HTTP/1.1 request to `addr` (`127.0.0.1:port`), `Connection: close`.
#[track_caller]
pub fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpAnswer {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP header in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    HttpAnswer {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}
