//! The OCSP responder (`ocsp-responder`) end to end, on SQLite and
//! PostgreSQL: the real binary on 127.0.0.1, real certificates issued by
//! `pki-admin`, status changes made by `pki-admin`, answers read by the
//! `openssl ocsp` client (POST; GET through a hand-written HTTP client,
//! OpenSSL 3.0's client having no GET) and linted by pkilint's
//! `lint_ocsp_response`.
//!
//! The responder runs with the OCSP responder passphrase only; in the main
//! test the CA key directory is even moved away while it runs.

use e2e_tests::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

/// The certificates of a small PKI.
struct Pki {
    /// Identity-card CA, auth usage.
    id_auth: Issued,
    /// Identity-card CA, sign usage (put on hold by SQL in one test).
    id_sign: Issued,
    /// Residence-card CA, auth usage.
    res_auth: Issued,
    cas: Vec<CaEntry>,
}

impl Pki {
    fn ca(&self, name: &str) -> &CaEntry {
        self.cas
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no CA {name}"))
    }
}

fn setup(env: &TestEnv) -> Pki {
    env.init();
    let national = Identity::national("N7000001");
    let card = Card::identity("700001", &national.registry_key);
    env.holder_with_card(&national, &card);
    let resident = Identity::resident("R7000001");
    let res_card = Card::residence("700002", &resident.registry_key);
    env.holder_with_card(&resident, &res_card);
    let csr = env.csr(KeyType::EcP256);
    let id_auth = env.issue(&card.number, "auth", &csr);
    let id_sign = env.issue(&card.number, "sign", &csr);
    let res_auth = env.issue(&res_card.number, "auth", &env.csr(KeyType::EcP384Sha384));
    Pki {
        id_auth,
        id_sign,
        res_auth,
        cas: ca_entries(env),
    }
}

fn hex_arg(serial: &str) -> String {
    format!("0x{serial}")
}

/// Asks `openssl ocsp` (POST) about a certificate; saves the response,
/// lints it, asserts it verified; returns the result.
#[track_caller]
fn ask(
    env: &TestEnv,
    r: &RunningResponder,
    issuer: &Path,
    target: &Target<'_>,
    options: &[&str],
) -> OcspResult {
    let respout = env.path(&format!("resp-{}.der", unique_suffix()));
    let mut opts: Vec<&std::ffi::OsStr> = options.iter().map(os).collect();
    opts.extend([os("-respout"), respout.as_os_str()]);
    let result = ocsp_query(&r.url, issuer, target, &opts);
    assert!(
        result.verified(),
        "response does not verify\n{}\n--- responder log ---\n{}",
        result.describe(&format!("openssl ocsp {}", options.join(" "))),
        r.log_text()
    );
    lint_ocsp(&format!("answer about {}", target.label()), &respout);
    result
}

#[track_caller]
fn assert_status(result: &OcspResult, target: &Target<'_>, status: &str, reason: Option<&str>) {
    assert_eq!(
        result.status(&target.label()).as_deref(),
        Some(status),
        "status of {}\n{}",
        target.label(),
        result.describe("openssl ocsp")
    );
    assert_eq!(
        result.reason().as_deref(),
        reason,
        "reason of {}\n{}",
        target.label(),
        result.describe("openssl ocsp")
    );
}

/// Polls (POST without nonce, decoded by `openssl ocsp -respin`) until the
/// certificate shows `status` (and, when given, `reason`: `Some(None)` for
/// no reason code); returns how long it took.
#[track_caller]
fn time_until_reason(
    env: &TestEnv,
    r: &RunningResponder,
    issued: &Issued,
    status: &str,
    reason: Option<Option<&str>>,
    limit: StdDuration,
) -> StdDuration {
    let target = Target::Cert(&issued.leaf);
    let request = ocsp_request_der(env.dir(), &issued.issuing_ca, &target, &[os("-no_nonce")]);
    let file = env.path(&format!("poll-{}.der", unique_suffix()));
    let start = Instant::now();
    loop {
        let reply = r.post(&request);
        fs::write(&file, &reply.body).expect("write response");
        let seen = ocsp_check_response(&file, &issued.issuing_ca, &target, &[os("-noverify")]);
        if seen.status(&target.label()).as_deref() == Some(status)
            && reason.is_none_or(|want| seen.reason().as_deref() == want)
        {
            return start.elapsed();
        }
        if start.elapsed() > limit {
            panic!(
                "{} still not {status} {reason:?} after {limit:?}\n{}\n--- responder log ---\n{}",
                issued.serial,
                seen.describe("openssl ocsp -respin"),
                r.log_text()
            );
        }
        std::thread::sleep(StdDuration::from_millis(20));
    }
}

/// [`time_until_reason`] for a status whatever the reason.
#[track_caller]
fn time_until(
    env: &TestEnv,
    r: &RunningResponder,
    issued: &Issued,
    status: &str,
    limit: StdDuration,
) -> StdDuration {
    time_until_reason(env, r, issued, status, None, limit)
}

fn ocsp_answers_good_revoked_and_hold(env: &TestEnv) {
    let pki = setup(env);
    // A certificate on hold pending activation (status "hold", as issued
    // before `pki-admin activate`; set directly here to keep the setup shared).
    env.sql(&format!(
        "UPDATE certificates SET status = 'hold' WHERE serial = '{}'",
        pki.id_sign.serial
    ));
    // The responder never needs a CA key: move them away while it runs.
    let ca_keys = env.path("data/keys/ca");
    let moved = env.path("data/keys/ca-away");
    fs::rename(&ca_keys, &moved).expect("move the CA keys away");
    let r = env.start_responder(&[]);
    fs::rename(&moved, &ca_keys).expect("put the CA keys back");

    let identity_ca = &pki.ca("identity-card-ca").cert;
    let identity_va = &pki.ca("identity-card-ca").responder;
    let residence_ca = &pki.ca("residence-card-ca").cert;
    let residence_va = &pki.ca("residence-card-ca").responder;
    let root = &pki.ca("root").cert;
    let root_va = &pki.ca("root").responder;
    let id_auth = Target::Cert(&pki.id_auth.leaf);
    let res_auth = Target::Cert(&pki.res_auth.leaf);
    let id_sign = Target::Cert(&pki.id_sign.leaf);

    // Good, with and without nonce, -VAfile and -CAfile, SHA-1 and SHA-256.
    for (issuer, va, target) in [
        (identity_ca, identity_va, &id_auth),
        (residence_ca, residence_va, &res_auth),
    ] {
        let va = va.to_str().unwrap();
        let ca = root.to_str().unwrap();
        for options in [
            vec!["-nonce", "-VAfile", va],
            vec!["-no_nonce", "-VAfile", va],
            vec!["-nonce", "-CAfile", ca],
            vec!["-no_nonce", "-CAfile", ca],
            vec!["-sha256", "-nonce", "-CAfile", ca],
            vec!["-sha256", "-no_nonce", "-VAfile", va],
        ] {
            let result = ask(env, &r, issuer, target, &options);
            assert_status(&result, target, "good", None);
            if options.contains(&"-nonce") {
                assert!(
                    !result.text.contains("WARNING: no nonce"),
                    "nonce not echoed\n{}",
                    result.describe("openssl ocsp -nonce")
                );
            }
        }
    }
    // The issuing CAs, answered by the root's responder.
    for name in ["identity-card-ca", "residence-card-ca"] {
        let target = Target::Cert(&pki.ca(name).cert);
        let result = ask(
            env,
            &r,
            root,
            &target,
            &["-VAfile", root_va.to_str().unwrap()],
        );
        assert_status(&result, &target, "good", None);
    }
    // On hold pending activation: revoked, certificateHold.
    let result = ask(
        env,
        &r,
        identity_ca,
        &id_sign,
        &["-CAfile", root.to_str().unwrap()],
    );
    assert_status(&result, &id_sign, "revoked", Some("certificateHold"));

    // Revocation with a reason.
    env.ok(&[
        "revoke",
        "--serial",
        &pki.id_auth.serial,
        "--reason",
        "keyCompromise",
    ]);
    time_until(env, &r, &pki.id_auth, "revoked", StdDuration::from_secs(5));
    let result = ask(
        env,
        &r,
        identity_ca,
        &id_auth,
        &["-VAfile", identity_va.to_str().unwrap()],
    );
    assert_status(&result, &id_auth, "revoked", Some("keyCompromise"));
    assert!(result.revocation_time().is_some(), "{}", result.text);
    // Without a reason: revoked, no reason code.
    env.ok(&[
        "revoke",
        "--serial",
        &pki.id_sign.serial,
        "--reason",
        "unspecified",
    ]);
    time_until_reason(
        env,
        &r,
        &pki.id_sign,
        "revoked",
        Some(None),
        StdDuration::from_secs(5),
    );
    let result = ask(
        env,
        &r,
        identity_ca,
        &id_sign,
        &["-no_nonce", "-CAfile", root.to_str().unwrap()],
    );
    assert_status(&result, &id_sign, "revoked", None);

    // Suspension, then resumption.
    env.ok(&["suspend", "--serial", &pki.res_auth.serial]);
    time_until(env, &r, &pki.res_auth, "revoked", StdDuration::from_secs(5));
    let result = ask(
        env,
        &r,
        residence_ca,
        &res_auth,
        &["-nonce", "-VAfile", residence_va.to_str().unwrap()],
    );
    assert_status(&result, &res_auth, "revoked", Some("certificateHold"));
    env.ok(&["resume", "--serial", &pki.res_auth.serial]);
    time_until(env, &r, &pki.res_auth, "good", StdDuration::from_secs(5));
    let result = ask(
        env,
        &r,
        residence_ca,
        &res_auth,
        &["-no_nonce", "-VAfile", residence_va.to_str().unwrap()],
    );
    assert_status(&result, &res_auth, "good", None);

    // GET (RFC 5019): caching headers, 304, the same answer as POST.
    let request = ocsp_request_der(env.dir(), residence_ca, &res_auth, &[os("-no_nonce")]);
    let reply = r.get(&request, &[]);
    assert_eq!(reply.status, 200, "GET status");
    assert_eq!(
        reply.header("content-type"),
        Some("application/ocsp-response")
    );
    let cache_control = reply
        .header("cache-control")
        .unwrap_or_default()
        .to_string();
    let max_age: i64 = cache_control
        .strip_prefix("max-age=")
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("Cache-Control {cache_control:?}"));
    assert!(
        (0..=12 * 3600).contains(&max_age),
        "max-age {max_age} beyond the 12h validity"
    );
    assert!(
        cache_control.ends_with(", public, no-transform, must-revalidate"),
        "Cache-Control {cache_control:?}"
    );
    for h in ["last-modified", "expires", "etag"] {
        assert!(
            reply.header(h).is_some(),
            "GET answer without {h}: {:?}",
            reply.headers
        );
    }
    let file = env.path("get-response.der");
    fs::write(&file, &reply.body).unwrap();
    let checked = ocsp_check_response(
        &file,
        residence_ca,
        &res_auth,
        &[os("-VAfile"), residence_va.as_os_str()],
    );
    assert!(
        checked.verified(),
        "{}",
        checked.describe("openssl ocsp -respin (GET)")
    );
    assert_eq!(checked.status(&res_auth.label()).as_deref(), Some("good"));
    lint_ocsp("GET answer", &file);
    let etag = reply.header("etag").unwrap().to_string();
    let again = r.get(&request, &[("If-None-Match", &etag)]);
    assert_eq!(again.status, 304, "If-None-Match {etag}");
    assert!(again.body.is_empty());
    // GET with a nonce: fresh, echoed, not cacheable.
    let with_nonce = ocsp_request_der(env.dir(), residence_ca, &res_auth, &[os("-nonce")]);
    let reply = r.get(&with_nonce, &[]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert!(
        contains_bytes(
            &reply.body,
            &[0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02]
        ),
        "no nonce in the GET answer to a nonce"
    );

    // Metrics.
    let metrics = http_exchange(&r.addr, "GET", "/metrics", &[], &[]).unwrap();
    let text = String::from_utf8_lossy(&metrics.body);
    for name in [
        "ocsp_responses_total{status=\"good\",production=\"presigned\"}",
        "ocsp_request_duration_seconds_bucket",
        "ocsp_presigned_oldest_age_seconds",
        "ocsp_database_up 1",
    ] {
        assert!(text.contains(name), "metrics lack {name}:\n{text}");
    }
}

fn ocsp_revocation_is_served_within_one_second(env: &TestEnv) {
    let pki = setup(env);
    let r = env.start_responder(&[]);
    time_until(env, &r, &pki.id_auth, "good", StdDuration::from_secs(5));
    time_until(env, &r, &pki.res_auth, "good", StdDuration::from_secs(5));
    // Measured from the moment pki-admin has committed (it has exited).
    env.ok(&[
        "revoke",
        "--serial",
        &pki.id_auth.serial,
        "--reason",
        "superseded",
    ]);
    let revoked = time_until(env, &r, &pki.id_auth, "revoked", StdDuration::from_secs(5));
    env.ok(&["suspend", "--serial", &pki.res_auth.serial]);
    let suspended = time_until(env, &r, &pki.res_auth, "revoked", StdDuration::from_secs(5));
    env.ok(&["resume", "--serial", &pki.res_auth.serial]);
    let resumed = time_until(env, &r, &pki.res_auth, "good", StdDuration::from_secs(5));
    eprintln!("revocation {revoked:?}, suspension {suspended:?}, resumption {resumed:?} to answer");
    for (what, took) in [
        ("revocation", revoked),
        ("suspension", suspended),
        ("resumption", resumed),
    ] {
        assert!(
            took < StdDuration::from_secs(1),
            "{what} answered after {took:?} (must be under 1 s)\n{}",
            r.log_text()
        );
    }
}

fn ocsp_bad_input_is_refused_and_the_service_stays_up(env: &TestEnv) {
    let pki = setup(env);
    let mut r = env.start_responder(&[]);
    let identity_ca = &pki.ca("identity-card-ca").cert;
    let target = Target::Cert(&pki.id_auth.leaf);
    let good = ocsp_request_der(env.dir(), identity_ca, &target, &[os("-no_nonce")]);
    let cert_id = cert_id_of(&good);
    assert_eq!(r.post(&good).ocsp_status(), Some(0));

    const MALFORMED: u8 = 1;
    let mut garbage: Vec<u8> = (0..300u32).map(|i| (i * 7919 % 251) as u8).collect();
    garbage[0] = 0x30;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "garbage bytes",
            b"this is not an OCSP request at all".to_vec(),
        ),
        ("garbage after a SEQUENCE tag", garbage),
        ("truncated request", good[..good.len() - 5].to_vec()),
        (
            "request with trailing bytes",
            [good.clone(), vec![0, 0]].concat(),
        ),
        ("empty body", Vec::new()),
        (
            "100 CertIDs",
            build_request(&vec![cert_id.clone(); 100], None),
        ),
        (
            "unknown hash algorithm (MD5)",
            build_request(&[cert_id_with_hash(&cert_id, OID_MD5)], None),
        ),
        (
            "nonce of 129 octets",
            build_request(std::slice::from_ref(&cert_id), Some(&[0x5a; 129])),
        ),
        (
            "empty nonce",
            build_request(std::slice::from_ref(&cert_id), Some(&[])),
        ),
    ];
    for (what, body) in &cases {
        let reply = r.post(body);
        assert_eq!(reply.status, 200, "{what}: HTTP status");
        assert_eq!(
            reply.ocsp_status(),
            Some(MALFORMED),
            "{what}: expected malformedRequest, got {:02x?}",
            reply.body
        );
    }
    // Limits that are met are fine.
    let ok_nonce = r.post(&build_request(
        std::slice::from_ref(&cert_id),
        Some(&[0x5a; 128]),
    ));
    assert_eq!(ok_nonce.ocsp_status(), Some(0), "128-octet nonce");
    assert!(contains_bytes(&ok_nonce.body, &[0x5a; 128]), "nonce echoed");
    let several = r.post(&build_request(&vec![cert_id.clone(); 3], None));
    assert_eq!(several.ocsp_status(), Some(0), "3 CertIDs");

    // HTTP-level refusals.
    let big = vec![0x30u8; 1 << 20];
    let reply = http_exchange(
        &r.addr,
        "POST",
        "/",
        &[("Content-Type", "application/ocsp-request")],
        &big,
    )
    .expect("an answer to a 1 MB body");
    assert_eq!(reply.status, 413, "1 MB body");
    for path in ["/eid/ocsp/not%20base64!", "/%ff%fe", "/eid/ocsp/"] {
        let reply = http_exchange(&r.addr, "GET", path, &[], &[]).unwrap();
        assert_eq!(reply.status, 400, "GET {path}");
    }
    let reply = http_exchange(
        &r.addr,
        "GET",
        &format!("/{}", url_encode(&base64_encode(b"garbage"))),
        &[],
        &[],
    )
    .unwrap();
    assert_eq!(
        (reply.status, reply.ocsp_status()),
        (200, Some(MALFORMED)),
        "GET of base64 garbage"
    );
    let reply = http_exchange(&r.addr, "PUT", "/", &[], &good).unwrap();
    assert_eq!(reply.status, 405, "PUT");

    // Still up and answering.
    assert!(r.is_running(), "the responder died\n{}", r.log_text());
    r.wait_health(200, 5);
    let result = ocsp_query(
        &r.url,
        identity_ca,
        &target,
        &[
            os("-VAfile"),
            pki.ca("identity-card-ca").responder.as_os_str(),
        ],
    );
    assert_eq!(
        result.status(&target.label()).as_deref(),
        Some("good"),
        "{}",
        result.text
    );
    assert!(
        !r.log_text().contains("panic"),
        "a panic was logged\n{}",
        r.log_text()
    );
}

fn ocsp_unknown_issuer_and_never_issued_serial(env: &TestEnv) {
    let pki = setup(env);
    let r = env.start_responder(&[]);

    // A CA this responder does not serve.
    let stranger = env.path("stranger-ca.pem");
    openssl(&[
        os("req"),
        os("-x509"),
        os("-newkey"),
        os("ec"),
        os("-pkeyopt"),
        os("ec_paramgen_curve:P-256"),
        os("-nodes"),
        os("-subj"),
        os("/CN=Stranger CA"),
        os("-days"),
        os("2"),
        os("-keyout"),
        env.path("stranger.key").as_os_str(),
        os("-out"),
        stranger.as_os_str(),
    ]);
    let serial = hex_arg(&pki.id_auth.serial);
    let result = ocsp_query(&r.url, &stranger, &Target::Serial(&serial), &[]);
    assert!(
        result.text.contains("unauthorized (6)"),
        "unknown issuer\n{}",
        result.describe("openssl ocsp (stranger CA)")
    );
    // The right serial under the wrong (served) CA is not issued there.
    let residence_ca = &pki.ca("residence-card-ca").cert;
    let result = ask(
        env,
        &r,
        residence_ca,
        &Target::Serial(&serial),
        &["-CAfile", pki.ca("root").cert.to_str().unwrap()],
    );
    assert_eq!(result.reason().as_deref(), Some("certificateHold"));

    // Never issued: revoked, 1970-01-01, certificateHold, extended revoke.
    let identity_ca = &pki.ca("identity-card-ca").cert;
    let va = pki.ca("identity-card-ca").responder.clone();
    for (options, serial) in [
        (vec!["-no_nonce"], "0x7A00000000000000000000000000000001"),
        (vec!["-nonce"], "0x7A00000000000000000000000000000002"),
        (
            vec!["-sha256", "-no_nonce"],
            "0x7A00000000000000000000000000000003",
        ),
        (vec!["-no_nonce"], "0x7A00000000000000000000000000000001"),
    ] {
        let target = Target::Serial(serial);
        let mut opts = options.clone();
        opts.extend(["-VAfile", va.to_str().unwrap()]);
        let result = ask(env, &r, identity_ca, &target, &opts);
        assert_status(&result, &target, "revoked", Some("certificateHold"));
        assert_eq!(
            result.revocation_time().as_deref(),
            Some("Jan 1 00:00:00 1970 GMT"),
            "{}",
            result.text
        );
    }
    let request = build_request(
        &[cert_id_with_serial(
            &cert_id_of(&ocsp_request_der(
                env.dir(),
                identity_ca,
                &Target::Cert(&pki.id_auth.leaf),
                &[os("-no_nonce")],
            )),
            &[0x7a, 0x11, 0x22],
        )],
        None,
    );
    let reply = r.post(&request);
    assert_eq!(reply.ocsp_status(), Some(0));
    assert!(
        contains_bytes(&reply.body, OID_EXTENDED_REVOKE),
        "no extended revoked definition extension in the answer for a never-issued serial"
    );
    // Issued serials carry no such extension.
    let reply = r.post(&ocsp_request_der(
        env.dir(),
        identity_ca,
        &Target::Cert(&pki.id_auth.leaf),
        &[os("-no_nonce")],
    ));
    assert!(!contains_bytes(&reply.body, OID_EXTENDED_REVOKE));
}

fn ocsp_responder_rotation_without_gap(env: &TestEnv) {
    let pki = setup(env);
    let r = env.start_responder(&[]);
    let identity_ca = pki.ca("identity-card-ca").cert.clone();
    // (ca_entries writes to the same file names: keep a copy.)
    let old_va = env.path("old-responder.pem");
    fs::copy(&pki.ca("identity-card-ca").responder, &old_va).unwrap();
    let target = Target::Cert(&pki.id_auth.leaf);
    let result = ask(
        env,
        &r,
        &identity_ca,
        &target,
        &["-VAfile", old_va.to_str().unwrap()],
    );
    assert_status(&result, &target, "good", None);

    // Ask continuously while the responder certificate is rotated.
    let request = ocsp_request_der(env.dir(), &identity_ca, &target, &[os("-no_nonce")]);
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let hammer = {
        let (stop, answered, addr, request) = (
            stop.clone(),
            answered.clone(),
            r.addr.clone(),
            request.clone(),
        );
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match http_exchange(&addr, "POST", "/eid/ocsp", &[], &request) {
                    Ok(reply) if reply.status == 200 && reply.ocsp_status() == Some(0) => {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(reply) => {
                        failures.push(format!("HTTP {} body {:02x?}", reply.status, reply.body))
                    }
                    Err(e) => failures.push(e.to_string()),
                }
                std::thread::sleep(StdDuration::from_millis(5));
            }
            failures
        })
    };
    std::thread::sleep(StdDuration::from_millis(300));
    env.ok(&["ocsp", "rotate", "--authority", "identity-card-ca"]);
    let rotated = ca_entries(env);
    let new_va: PathBuf = rotated
        .iter()
        .find(|c| c.name == "identity-card-ca")
        .map(|c| c.responder.clone())
        .unwrap();
    assert_ne!(
        fs::read(&new_va).unwrap(),
        fs::read(&old_va).unwrap(),
        "ca list still shows the old responder after ocsp rotate"
    );
    // Wait until answers come from the new responder certificate.
    let deadline = Instant::now() + StdDuration::from_secs(20);
    let file = env.path("rotated.der");
    loop {
        fs::write(&file, &r.post(&request).body).unwrap();
        let checked = ocsp_check_response(
            &file,
            &identity_ca,
            &target,
            &[os("-VAfile"), new_va.as_os_str()],
        );
        if checked.verified() {
            assert_eq!(checked.status(&target.label()).as_deref(), Some("good"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "answers never came from the new responder\n{}\n{}",
            checked.text,
            r.log_text()
        );
        std::thread::sleep(StdDuration::from_millis(50));
    }
    std::thread::sleep(StdDuration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let failures = hammer.join().expect("hammer thread");
    assert!(
        failures.is_empty(),
        "answers failed during the rotation: {failures:?}"
    );
    assert!(
        answered.load(Ordering::Relaxed) > 10,
        "too few answers during the rotation"
    );
    // Nonce answers are signed by the new responder too, verified with openssl.
    let result = ask(
        env,
        &r,
        &identity_ca,
        &target,
        &["-nonce", "-VAfile", new_va.to_str().unwrap()],
    );
    assert_status(&result, &target, "good", None);
    lint_ocsp("answer after rotation", &file);
}

fn ocsp_degraded_mode_serves_held_answers_and_catches_up(env: &TestEnv) {
    let pki = setup(env);
    let r = env.start_responder(&[]);
    let identity_ca = &pki.ca("identity-card-ca").cert;
    let va = pki.ca("identity-card-ca").responder.clone();
    let vafile = va.to_str().unwrap();
    let target = Target::Cert(&pki.id_auth.leaf);
    let result = ask(
        env,
        &r,
        identity_ca,
        &target,
        &["-no_nonce", "-VAfile", vafile],
    );
    assert_status(&result, &target, "good", None);

    // The database "goes away": the change feed's table disappears.
    env.sql("ALTER TABLE audit_head RENAME TO audit_head_away");
    let health = r.wait_health(503, 15);
    assert!(
        String::from_utf8_lossy(&health.body).contains("database"),
        "health body: {}",
        String::from_utf8_lossy(&health.body)
    );
    // Held answers are still served, fresh signatures too (from held statuses).
    let result = ask(
        env,
        &r,
        identity_ca,
        &target,
        &["-no_nonce", "-VAfile", vafile],
    );
    assert_status(&result, &target, "good", None);
    let result = ask(
        env,
        &r,
        identity_ca,
        &target,
        &["-nonce", "-VAfile", vafile],
    );
    assert_status(&result, &target, "good", None);
    // "Never issued" cannot be claimed from stale data.
    let result = ocsp_query(&r.url, identity_ca, &Target::Serial("0x7B0001"), &[]);
    assert!(
        result.text.contains("trylater (3)"),
        "{}",
        result.describe("openssl ocsp (degraded)")
    );

    // It comes back; the responder catches up.
    env.sql("ALTER TABLE audit_head_away RENAME TO audit_head");
    r.wait_health(200, 15);
    env.ok(&[
        "revoke",
        "--serial",
        &pki.id_auth.serial,
        "--reason",
        "cessationOfOperation",
    ]);
    time_until(env, &r, &pki.id_auth, "revoked", StdDuration::from_secs(5));
    let result = ask(
        env,
        &r,
        identity_ca,
        &target,
        &["-nonce", "-VAfile", vafile],
    );
    assert_status(&result, &target, "revoked", Some("cessationOfOperation"));
}

e2e_test!(
    ocsp_answers_good_revoked_and_hold,
    ocsp_revocation_is_served_within_one_second,
    ocsp_bad_input_is_refused_and_the_service_stays_up,
    ocsp_unknown_issuer_and_never_issued_serial,
    ocsp_responder_rotation_without_gap,
    ocsp_degraded_mode_serves_held_answers_and_catches_up,
);
