//! The OCSP responder under test: the real `ocsp-responder` binary on
//! 127.0.0.1, queried with `openssl ocsp` (POST), a small HTTP/1.1 client
//! (GET, headers, bad input) and hand-made DER requests, its answers judged
//! by `openssl ocsp` and pkilint's `lint_ocsp_response`.
//!
//! * [`ocsp_responder_bin`]: `OCSP_RESPONDER_BIN`, else next to `deps/`
//!   (`cargo build -p ocsp-responder`; the Makefile builds every binary).
//! * [`TestEnv::start_responder`]: the binary with this environment's
//!   pki.toml, `--listen 127.0.0.1:0` (the address is read from its
//!   stdout), the OCSP responder passphrase only (never the CA's); killed
//!   when the [`RunningResponder`] is dropped. Its log is kept in the test
//!   directory and shown by assertion messages.
//! * [`ocsp_query`]: `openssl ocsp -url ... -issuer ...`; [`OcspResult`]
//!   reads its verdict.
//! * [`http_exchange`]: one HTTP/1.1 exchange (`Connection: close`).
//! * DER surgery: [`cert_id_of`] takes the CertID out of a request made by
//!   `openssl ocsp -reqout`; [`build_request`] makes requests with any
//!   CertIDs and nonce; [`cert_id_with_hash`] swaps the hash algorithm.

use crate::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration as StdDuration, Instant};

// ---------------------------------------------------------------------------
// The binary and the running responder
// ---------------------------------------------------------------------------

/// The `ocsp-responder` binary: `OCSP_RESPONDER_BIN`, else next to `deps/`.
pub fn ocsp_responder_bin() -> PathBuf {
    workspace_bin("ocsp-responder", "OCSP_RESPONDER_BIN", "ocsp-responder")
}

/// A running `ocsp-responder` (killed on drop).
pub struct RunningResponder {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The URL of POST requests and the base of GET ones (`/eid/ocsp`, the
    /// path of the default `urls.ocsp`).
    pub url: String,
    pub log: PathBuf,
}

impl RunningResponder {
    /// Its log so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn socket_addr(&self) -> SocketAddr {
        self.addr.parse().expect("socket address")
    }

    /// `GET /health`.
    pub fn health(&self) -> HttpReply {
        http_exchange(&self.addr, "GET", "/health", &[], &[]).expect("GET /health")
    }

    /// Waits until `/health` answers `code` (or panics after `secs`).
    #[track_caller]
    pub fn wait_health(&self, code: u16, secs: u64) -> HttpReply {
        let deadline = Instant::now() + StdDuration::from_secs(secs);
        loop {
            let reply = self.health();
            if reply.status == code {
                return reply;
            }
            if Instant::now() > deadline {
                panic!(
                    "/health still {} ({}) after {secs} s, expected {code}\n--- responder log ---\n{}",
                    reply.status,
                    String::from_utf8_lossy(&reply.body),
                    self.log_text()
                );
            }
            std::thread::sleep(StdDuration::from_millis(50));
        }
    }

    /// POSTs a DER request; returns the reply (status 200 expected).
    #[track_caller]
    pub fn post(&self, der: &[u8]) -> HttpReply {
        http_exchange(
            &self.addr,
            "POST",
            "/eid/ocsp",
            &[("Content-Type", "application/ocsp-request")],
            der,
        )
        .unwrap_or_else(|e| {
            panic!(
                "POST failed: {e}\n--- responder log ---\n{}",
                self.log_text()
            )
        })
    }

    /// GETs a DER request (`/eid/ocsp/<url-encoded base64>`).
    #[track_caller]
    pub fn get(&self, der: &[u8], headers: &[(&str, &str)]) -> HttpReply {
        let path = format!("/eid/ocsp/{}", url_encode(&base64_encode(der)));
        http_exchange(&self.addr, "GET", &path, headers, &[]).unwrap_or_else(|e| {
            panic!(
                "GET failed: {e}\n--- responder log ---\n{}",
                self.log_text()
            )
        })
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for RunningResponder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- ocsp-responder log ({}) ---\n{}",
                self.log.display(),
                cut(&self.log_text(), 20_000)
            );
        }
    }
}

impl TestEnv {
    /// Starts `ocsp-responder` on this environment (extra flags appended)
    /// and waits until it is healthy.
    #[track_caller]
    pub fn start_responder(&self, extra: &[&str]) -> RunningResponder {
        let responder = self.spawn_responder(extra);
        responder.wait_health(200, 30);
        responder
    }

    /// Starts `ocsp-responder` and returns once it listens (not waiting
    /// for health).
    #[track_caller]
    pub fn spawn_responder(&self, extra: &[&str]) -> RunningResponder {
        self.spawn_responder_with(extra, |_| {})
    }

    /// [`TestEnv::spawn_responder`] with a command tweak (e.g. `PKI_FAKE_NOW`).
    #[track_caller]
    pub fn spawn_responder_with(
        &self,
        extra: &[&str],
        tweak: impl FnOnce(&mut Command),
    ) -> RunningResponder {
        let log = self.path(&format!("ocsp-responder-{}.log", unique_suffix()));
        let mut cmd = Command::new(ocsp_responder_bin());
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("PKI_") || k.starts_with("OCSP_") {
                cmd.env_remove(key);
            }
        }
        cmd.current_dir(self.dir())
            .env("PKI_CONFIG", self.config_path())
            .env("PKI_DATABASE_URL", self.role_url("ocsp"))
            // The responder key passphrase only: never the CA's.
            .env("PKI_OCSP_PASSPHRASE", OCSP_PASSPHRASE)
            .args(["--listen", "127.0.0.1:0", "--log-level", "debug"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&log).expect("create responder log"));
        self.key_env(&mut cmd, &[KeyFamily::Ocsp]);
        tweak(&mut cmd);
        let mut child = cmd.spawn().expect("start ocsp-responder");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + StdDuration::from_secs(60);
        let addr = loop {
            match rx.recv_timeout(StdDuration::from_millis(100)) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("listening on http://") {
                        break rest.trim().to_string();
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!(
                            "ocsp-responder exited ({status}) before listening\n{}",
                            fs::read_to_string(&log).unwrap_or_default()
                        );
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "ocsp-responder did not print its address\n{}",
                        fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        };
        RunningResponder {
            child,
            url: format!("http://{addr}/eid/ocsp"),
            addr,
            log,
        }
    }
}

// ---------------------------------------------------------------------------
// HTTP/1.1, by hand
// ---------------------------------------------------------------------------

/// One HTTP response.
#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpReply {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The status byte of the OCSPResponse body (0 successful, 1
    /// malformedRequest, 2 internalError, 3 tryLater, 6 unauthorized).
    pub fn ocsp_status(&self) -> Option<u8> {
        ocsp_response_status(&self.body)
    }
}

/// The `responseStatus` of a DER OCSPResponse.
pub fn ocsp_response_status(der: &[u8]) -> Option<u8> {
    let (tag, hdr, _) = tlv_at(der, 0)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, h2, len) = tlv_at(der, hdr)?;
    (tag == 0x0a && len == 1).then(|| der[hdr + h2])
}

/// One HTTP/1.1 exchange with `Connection: close`. A request body the
/// server refuses early may be cut short: the reply is still read.
pub fn http_exchange(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpReply> {
    let addr: SocketAddr = addr
        .parse()
        .map_err(|e| std::io::Error::other(format!("{addr}: {e}")))?;
    let mut stream = TcpStream::connect_timeout(&addr, StdDuration::from_secs(5))?;
    stream.set_read_timeout(Some(StdDuration::from_secs(20)))?;
    stream.set_write_timeout(Some(StdDuration::from_secs(20)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    let written = stream.write_all(body);
    let mut raw = Vec::new();
    let read = stream.read_to_end(&mut raw);
    if raw.is_empty() {
        written?;
        read?;
    }
    parse_http_reply(&raw)
}

fn parse_http_reply(raw: &[u8]) -> std::io::Result<HttpReply> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("no status line"))?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if let Some(len) = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(len);
    }
    Ok(HttpReply {
        status,
        headers,
        body,
    })
}

/// Standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Percent-encodes what base64 has that a path segment must not carry raw.
pub fn url_encode(s: &str) -> String {
    s.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

// ---------------------------------------------------------------------------
// openssl ocsp
// ---------------------------------------------------------------------------

/// What `openssl ocsp` said.
#[derive(Debug)]
pub struct OcspResult {
    pub out: Output,
    /// stdout then stderr.
    pub text: String,
}

impl OcspResult {
    /// `Response verify OK` was printed.
    pub fn verified(&self) -> bool {
        self.text.contains("Response verify OK")
    }

    /// The status word of the line `<label>: <status>`.
    pub fn status(&self, label: &str) -> Option<String> {
        let prefix = format!("{label}: ");
        self.text
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|s| s.trim().to_string())
    }

    /// The `Reason:` line's value.
    pub fn reason(&self) -> Option<String> {
        self.text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Reason: "))
            .map(|s| s.trim().to_string())
    }

    /// The `Revocation Time:` line's value.
    pub fn revocation_time(&self) -> Option<String> {
        self.text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Revocation Time: "))
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
    }

    pub fn describe(&self, what: &str) -> String {
        describe(what, &self.out)
    }
}

/// What to ask about.
pub enum Target<'a> {
    Cert(&'a Path),
    /// `0x...` hex.
    Serial(&'a str),
}

impl Target<'_> {
    /// How `openssl ocsp` labels the answer.
    pub fn label(&self) -> String {
        match self {
            Target::Cert(p) => p.display().to_string(),
            Target::Serial(s) => s.to_string(),
        }
    }
}

/// `openssl ocsp -url URL -issuer ISSUER OPTIONS... -cert|-serial TARGET`
/// (options before the target, so that `-sha256` applies to it).
pub fn ocsp_query(url: &str, issuer: &Path, target: &Target<'_>, options: &[&OsStr]) -> OcspResult {
    let mut args: Vec<&OsStr> = vec![
        os("ocsp"),
        os("-url"),
        os(url),
        os("-issuer"),
        issuer.as_os_str(),
    ];
    args.extend_from_slice(options);
    match target {
        Target::Cert(p) => args.extend([os("-cert"), p.as_os_str()]),
        Target::Serial(s) => args.extend([os("-serial"), os(*s)]),
    }
    let out = output_of(Command::new("openssl").args(&args), "openssl ocsp");
    let text = format!("{}{}", stdout_str(&out), stderr_str(&out));
    OcspResult { out, text }
}

/// `openssl ocsp -respin FILE -issuer ISSUER OPTIONS -cert|-serial TARGET`
/// with `-no_nonce` (the response came from another request).
pub fn ocsp_check_response(
    response: &Path,
    issuer: &Path,
    target: &Target<'_>,
    options: &[&OsStr],
) -> OcspResult {
    let mut args: Vec<&OsStr> = vec![
        os("ocsp"),
        os("-respin"),
        response.as_os_str(),
        os("-issuer"),
        issuer.as_os_str(),
        os("-no_nonce"),
    ];
    args.extend_from_slice(options);
    match target {
        Target::Cert(p) => args.extend([os("-cert"), p.as_os_str()]),
        Target::Serial(s) => args.extend([os("-serial"), os(*s)]),
    }
    let out = output_of(Command::new("openssl").args(&args), "openssl ocsp -respin");
    let text = format!("{}{}", stdout_str(&out), stderr_str(&out));
    OcspResult { out, text }
}

/// The DER request `openssl ocsp` makes for a target (no nonce unless asked).
#[track_caller]
pub fn ocsp_request_der(
    dir: &Path,
    issuer: &Path,
    target: &Target<'_>,
    options: &[&OsStr],
) -> Vec<u8> {
    let out_file = dir.join(format!("req-{}.der", unique_suffix()));
    let mut args: Vec<&OsStr> = vec![
        os("ocsp"),
        os("-issuer"),
        issuer.as_os_str(),
        os("-reqout"),
        out_file.as_os_str(),
    ];
    args.extend_from_slice(options);
    match target {
        Target::Cert(p) => args.extend([os("-cert"), p.as_os_str()]),
        Target::Serial(s) => args.extend([os("-serial"), os(*s)]),
    }
    openssl(&args);
    fs::read(&out_file).expect("request written by openssl")
}

/// `lint_ocsp_response lint -s ERROR` must find nothing.
#[track_caller]
pub fn lint_ocsp(label: &str, response: &Path) {
    let findings = pkilint("lint_ocsp_response", &[response.as_os_str()]);
    assert_no_findings(&format!("lint_ocsp_response {label}"), &findings);
}

// ---------------------------------------------------------------------------
// DER, by hand
// ---------------------------------------------------------------------------

/// (tag, header length, content length) of the TLV at `pos`.
pub fn tlv_at(buf: &[u8], pos: usize) -> Option<(u8, usize, usize)> {
    let tag = *buf.get(pos)?;
    let first = *buf.get(pos + 1)? as usize;
    if first < 0x80 {
        return Some((tag, 2, first));
    }
    let n = first & 0x7f;
    if n == 0 || n > 4 {
        return None;
    }
    let len = buf
        .get(pos + 2..pos + 2 + n)?
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | *b as usize);
    Some((tag, 2 + n, len))
}

/// The TLVs inside the constructed TLV `der`.
#[track_caller]
pub fn children(der: &[u8]) -> Vec<Vec<u8>> {
    let (_, hdr, len) = tlv_at(der, 0).expect("a TLV");
    let mut out = Vec::new();
    let mut pos = hdr;
    while pos < hdr + len {
        let (_, h, l) = tlv_at(der, pos).expect("a child TLV");
        out.push(der[pos..pos + h + l].to_vec());
        pos += h + l;
    }
    out
}

/// A DER TLV.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The first CertID of a DER OCSPRequest.
#[track_caller]
pub fn cert_id_of(request: &[u8]) -> Vec<u8> {
    let tbs = &children(request)[0];
    let parts = children(tbs);
    // [0] version and [1] requestorName are optional; requestList is the
    // first SEQUENCE.
    let list = parts.iter().find(|p| p[0] == 0x30).expect("requestList");
    let first = &children(list)[0];
    children(first)[0].clone()
}

/// A CertID with another hash algorithm OID (dotted form via its DER:
/// `oid_der` is the full OBJECT IDENTIFIER TLV).
#[track_caller]
pub fn cert_id_with_hash(cert_id: &[u8], oid_der: &[u8]) -> Vec<u8> {
    let parts = children(cert_id);
    let mut alg = oid_der.to_vec();
    alg.extend([0x05, 0x00]);
    let mut content = tlv(0x30, &alg);
    for p in &parts[1..] {
        content.extend_from_slice(p);
    }
    tlv(0x30, &content)
}

/// A CertID with another serial number (big-endian magnitude).
#[track_caller]
pub fn cert_id_with_serial(cert_id: &[u8], serial: &[u8]) -> Vec<u8> {
    let parts = children(cert_id);
    let mut magnitude = serial.to_vec();
    if magnitude.first().is_some_and(|b| b & 0x80 != 0) {
        magnitude.insert(0, 0);
    }
    let mut content = Vec::new();
    for p in &parts[..3] {
        content.extend_from_slice(p);
    }
    content.extend(tlv(0x02, &magnitude));
    tlv(0x30, &content)
}

/// DER of the OID 1.3.14.3.2.26 (SHA-1).
pub const OID_SHA1: &[u8] = &[0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a];
/// DER of the OID 1.2.840.113549.2.5 (MD5): a hash no responder accepts.
pub const OID_MD5: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05];
/// DER of id-pkix-ocsp-extended-revoke (1.3.6.1.5.5.7.48.1.9).
pub const OID_EXTENDED_REVOKE: &[u8] = &[
    0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x09,
];

/// An OCSPRequest with these CertIDs and, optionally, a nonce of these
/// octets (RFC 9654 encoding: an OCTET STRING inside extnValue).
pub fn build_request(cert_ids: &[Vec<u8>], nonce: Option<&[u8]>) -> Vec<u8> {
    let mut list = Vec::new();
    for id in cert_ids {
        list.extend(tlv(0x30, id));
    }
    let mut tbs = tlv(0x30, &list);
    if let Some(n) = nonce {
        let oid = [
            0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02,
        ];
        let mut ext = oid.to_vec();
        ext.extend(tlv(0x04, &tlv(0x04, n)));
        let exts = tlv(0x30, &tlv(0x30, &ext));
        tbs.extend(tlv(0xa2, &exts));
    }
    tlv(0x30, &tlv(0x30, &tbs))
}

/// Whether `haystack` contains `needle`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_der_helpers() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(&[0xfb, 0xff]), "+/8=");
        assert_eq!(url_encode("+/8="), "%2B%2F8%3D");
        let big = tlv(0x04, &[0u8; 300]);
        assert_eq!(&big[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let id = tlv(
            0x30,
            &[
                tlv(0x30, &[OID_SHA1, &[0x05, 0x00]].concat()),
                tlv(0x04, &[1; 20]),
                tlv(0x04, &[2; 20]),
                tlv(0x02, &[0x4a]),
            ]
            .concat(),
        );
        let req = build_request(std::slice::from_ref(&id), Some(&[7; 16]));
        assert_eq!(cert_id_of(&req), id);
        let md5 = cert_id_with_hash(&id, OID_MD5);
        assert!(contains_bytes(&md5, OID_MD5));
        assert_eq!(children(&md5)[3], tlv(0x02, &[0x4a]));
        let other = cert_id_with_serial(&id, &[0x99]);
        assert_eq!(children(&other)[3], tlv(0x02, &[0x00, 0x99]));
        assert_eq!(
            ocsp_response_status(&[0x30, 0x03, 0x0a, 0x01, 0x06]),
            Some(6)
        );
    }
}
