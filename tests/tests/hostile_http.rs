//! Hostile HTTP clients against the real `crl-server` binary (the shared
//! hardening of `pki-http`, also used by `ocsp-responder` and
//! `pki-scheduler`), over real sockets on 127.0.0.1; a second client
//! address is 127.0.0.2 (all of 127.0.0.0/8 is loopback on Linux):
//!
//! * a client that sends one request, then trickles the header of a second
//!   one on the kept-alive connection, is cut off within the request timeout
//!   (actix-http alone never times that request out);
//! * the N+1th connection from one address is refused while another address
//!   is still served, and the places come back when connections close;
//! * `Expect: 100-continue` with a Content-Length over the limit: 413, never
//!   `100 Continue`;
//! * normal clients are answered while slow clients hold their connections.
//!
//! `crl-server` needs no database: each test serves a temporary directory.

use e2e_tests::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const BODY: &[u8] = b"not really a certificate, served as one";

/// `crl-server` on a directory holding `root.cer`, with `extra` flags.
fn start(extra: &[&str]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("root.cer"), BODY).unwrap();
    let mut cmd = Command::new(workspace_bin("crl-server", "CRL_SERVER_BIN", "crl-server"));
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("PKI_") || k.starts_with("CRL_") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(dir.path())
        .arg("--dir")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("start crl-server");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(a) = line.split("listening on http://").nth(1) {
                    break a.trim().parse().unwrap();
                }
            }
            _ => panic!("crl-server exited before listening"),
        }
    };
    Server {
        child,
        addr,
        _dir: dir,
    }
}

/// A TCP connection to `to` from the loopback address `from`.
fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    s.bind(&local.into()).unwrap();
    s.connect(&to.into()).unwrap();
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Reads one response (head and Content-Length body): status and raw head.
fn read_response(s: &mut TcpStream) -> Option<(u16, String, Vec<u8>)> {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => raw.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&raw).into_owned();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let len: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some((status, head, body))
}

fn get(s: &mut TcpStream, path: &str) -> Option<(u16, String, Vec<u8>)> {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .ok()?;
    read_response(s)
}

/// True once the peer has closed (EOF or reset) the connection.
fn closed(s: &mut TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 512];
    let r = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue, // a 408 or 503 before the close
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    s.set_nonblocking(false).unwrap();
    r
}

#[test]
fn a_slow_header_on_the_second_keep_alive_request_is_cut_off() {
    let server = start(&["--request-timeout", "2", "--http-keep-alive", "10s"]);
    let mut s = connect_from("127.0.0.1", server.addr);
    let (status, _, body) = get(&mut s, "/root.cer").expect("first request answered");
    assert_eq!((status, body.as_slice()), (200, BODY));
    // The second request's header, one byte every 300 ms.
    let start = Instant::now();
    let trickle = b"GET /root.cer HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut cut_off = None;
    for b in trickle.iter().cycle().take(200) {
        if s.write_all(&[*b]).is_err() || closed(&mut s) {
            cut_off = Some(start.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let after = cut_off.expect("the slow second request was never cut off (60 s)");
    assert!(
        after >= Duration::from_millis(1500) && after <= Duration::from_millis(4000),
        "cut off after {after:?}, expected about the 2 s request timeout"
    );
}

#[test]
fn connections_are_capped_per_client_address_not_for_everyone() {
    let server = start(&[
        "--request-timeout",
        "10",
        "--http-max-connections-per-client",
        "4",
    ]);
    // Four connections from 127.0.0.1, each having had an answer (kept alive).
    let mut held: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = connect_from("127.0.0.1", server.addr);
            assert_eq!(get(&mut s, "/root.cer").map(|r| r.0), Some(200));
            s
        })
        .collect();
    // The fifth from the same address: refused (503 then closed, or closed).
    let mut fifth = connect_from("127.0.0.1", server.addr);
    let answer = get(&mut fifth, "/root.cer");
    assert!(
        matches!(answer, None | Some((503, _, _))),
        "the 5th connection from one address was served: {answer:?}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(closed(&mut fifth), "the refused connection is closed");
    // Another address is served meanwhile.
    let mut other = connect_from("127.0.0.2", server.addr);
    let (status, _, body) = get(&mut other, "/root.cer").expect("127.0.0.2 is answered");
    assert_eq!((status, body.as_slice()), (200, BODY));
    // The kept-alive connections still work, and a closed one frees a place.
    assert_eq!(get(&mut held[0], "/root.cer").map(|r| r.0), Some(200));
    drop(held.pop());
    std::thread::sleep(Duration::from_millis(300));
    let mut again = connect_from("127.0.0.1", server.addr);
    assert_eq!(get(&mut again, "/root.cer").map(|r| r.0), Some(200));
}

#[test]
fn expect_100_continue_over_the_limit_gets_413_and_never_continue() {
    let server = start(&[]);
    let mut s = connect_from("127.0.0.1", server.addr);
    s.write_all(
        b"POST /root.cer HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 413"), "answer: {text:?}");
    assert!(!text.contains("100 Continue"), "answer: {text:?}");
    // A small GET still works afterwards.
    let mut s = connect_from("127.0.0.1", server.addr);
    assert_eq!(get(&mut s, "/root.cer").map(|r| r.0), Some(200));
}

#[test]
fn normal_clients_are_answered_while_slow_clients_attack() {
    let server = start(&[
        "--request-timeout",
        "3",
        "--http-max-connections-per-client",
        "50",
    ]);
    // 80 slow connections from 127.0.0.1 (30 over its cap), each sending
    // one byte of a header now and then.
    let mut slow: Vec<TcpStream> = (0..80)
        .map(|_| connect_from("127.0.0.1", server.addr))
        .collect();
    for s in slow.iter_mut() {
        let _ = s.write_all(b"G");
    }
    let start = Instant::now();
    let mut worst = Duration::ZERO;
    while start.elapsed() < Duration::from_secs(5) {
        for s in slow.iter_mut() {
            let _ = s.write_all(b"E");
        }
        let t = Instant::now();
        let mut s = connect_from("127.0.0.2", server.addr);
        let (status, _, body) = get(&mut s, "/root.cer").expect("a normal client is answered");
        assert_eq!((status, body.as_slice()), (200, BODY));
        worst = worst.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        worst < Duration::from_secs(1),
        "a normal request took {worst:?}"
    );
    // By now (5 s > 3 s request timeout) every slow connection was closed.
    let open = slow.iter_mut().map(closed).filter(|c| !c).count();
    assert_eq!(
        open, 0,
        "{open} slow connections still open after the request timeout"
    );
}
