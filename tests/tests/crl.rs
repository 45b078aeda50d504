//! The CRL publisher through the real binaries (`pki-admin`, `crl-publisher`),
//! judged by `openssl crl`, `openssl verify -crl_check[_all]` and pkilint's
//! `lint_crl`: complete CRLs, the root's ARL, partitions, delta CRLs against
//! their base, expiry, CRL numbering across crashes and concurrent
//! publishers, the HTTP server, and `pki-admin crl show|fetch`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use e2e_tests::*;

/// `n` nationals `<prefix>00001...` with identity cards, each with an auth certificate.
fn issue_auth(env: &TestEnv, prefix: &str, n: usize) -> Vec<Issued> {
    let (ids, cards) = nationals_with_cards(prefix, n);
    env.import_registry(&ids);
    let file = env.write(&format!("cards-{prefix}.csv"), cards_csv(&cards));
    env.ok(&["card", "import", file.to_str().unwrap()]);
    cards
        .iter()
        .map(|c| {
            let csr = env.csr(KeyType::EcP256);
            env.issue(&c.number, "auth", &csr)
        })
        .collect()
}

fn key(serial: &str) -> String {
    normalise_serial(serial)
}

/// The root and an issuing CA in one PEM file (for `openssl crl -CAfile`).
fn bundle(env: &TestEnv, issued: &Issued) -> PathBuf {
    let text = format!(
        "{}{}",
        std::fs::read_to_string(&issued.root).unwrap(),
        std::fs::read_to_string(&issued.issuing_ca).unwrap()
    );
    env.write(&format!("certs/bundle-{}.pem", unique_suffix()), text)
}

/// The key identifier value printed by openssl (without any `keyid:` prefix).
fn key_id(value: &str) -> String {
    value
        .lines()
        .map(|l| l.trim().trim_start_matches("keyid:").to_string())
        .find(|l| !l.is_empty())
        .unwrap_or_default()
}

fn days_ago_str(days: i64) -> String {
    days_ago(days).to_string()
}

fn crls_are_valid_and_revoked_certificates_are_rejected(env: &TestEnv) {
    env.init();
    let certs = issue_auth(env, "R", 4);
    let (revoked, held, good, no_reason) = (&certs[0], &certs[1], &certs[2], &certs[3]);
    let invalid_since = days_ago_str(3);
    env.ok(&[
        "revoke",
        "--serial",
        &revoked.serial,
        "--reason",
        "keyCompromise",
        "--invalidity-date",
        &invalid_since,
    ]);
    env.ok(&["suspend", "--serial", &held.serial]);
    env.ok(&[
        "revoke",
        "--serial",
        &no_reason.serial,
        "--reason",
        "unspecified",
    ]);
    let resident = Identity::resident("RZ00001");
    let card = Card::residence("RZC000001", &resident.registry_key);
    env.holder_with_card(&resident, &card);
    let csr = env.csr(KeyType::EcP256);
    let resident_cert = env.issue(&card.number, "auth", &csr);

    let lines = env.publish_crls(&[]);
    assert_eq!(lines.len(), 5, "ARL + 2 complete + 2 delta: {lines:?}");
    for l in &lines {
        assert_eq!(l["outcome"], "published", "{l}");
    }
    let id = env.crl("identity-card-ca.crl");
    let delta = env.crl("identity-card-ca-delta.crl");
    let rs = env.crl("residence-card-ca.crl");
    let rs_delta = env.crl("residence-card-ca-delta.crl");
    let arl = env.crl("root.crl");

    // Signatures and lints.
    let id_chain = bundle(env, good);
    let rs_chain = bundle(env, &resident_cert);
    for c in [&id, &delta] {
        c.verify_signature(&id_chain);
        c.lint("CRL");
    }
    for c in [&rs, &rs_delta] {
        c.verify_signature(&rs_chain);
        c.lint("CRL");
    }
    arl.verify_signature(&good.root);
    arl.lint("ARL");

    // The profile of a complete CRL.
    assert!(id.text.contains("Version 2 (0x1)"), "{}", id.text);
    assert!(id.text.contains("Signature Algorithm: ecdsa-with-SHA384"));
    let ski = extension(
        &x509_text(&good.issuing_ca),
        "X509v3 Subject Key Identifier",
    )
    .unwrap();
    let aki = id
        .extension("X509v3 Authority Key Identifier")
        .expect("AKI");
    assert_eq!(
        key_id(&aki),
        key_id(&ski),
        "CRL AKI must be the issuer's SKI"
    );
    assert!(
        id.is_critical("X509v3 Issuing Distribution Point"),
        "{}",
        id.text
    );
    let dp = crl_distribution_point(&good.text);
    let idp = id.extension("X509v3 Issuing Distribution Point").unwrap();
    assert!(
        idp.contains(&format!("URI:{dp}")),
        "IDP {idp} vs the certificates' {dp}"
    );
    assert!(!id.is_critical("X509v3 CRL Number"));
    let freshest = id
        .extension("X509v3 Freshest CRL")
        .expect("freshest CRL pointer");
    assert!(
        freshest.contains("identity-card-ca-delta.crl"),
        "{freshest}"
    );
    let (this_update, next_update) = id.times();
    assert_eq!(
        next_update - this_update,
        Duration::hours(24),
        "validity of an end-entity CRL"
    );
    let now = Utc::now();
    assert!(
        (now - this_update).num_seconds().abs() < 300,
        "thisUpdate {this_update} not now"
    );

    // Entries: reason codes, never unspecified, invalidity date, the good one absent.
    let entries = id.entries();
    assert_eq!(entries.len(), 3, "{entries:?}");
    let e = &entries[&key(&revoked.serial)];
    assert_eq!(e.reason.as_deref(), Some("Key Compromise"));
    assert!(e.invalidity_date.is_some(), "invalidity date of {e:?}");
    assert_eq!(
        entries[&key(&held.serial)].reason.as_deref(),
        Some("Certificate Hold")
    );
    assert_eq!(
        entries[&key(&no_reason.serial)].reason,
        None,
        "no reason code"
    );
    assert!(!entries.contains_key(&key(&good.serial)));
    assert!(!id.text.contains("Unspecified"), "{}", id.text);

    // No empty list: the field is absent.
    assert!(rs.text.contains("No Revoked Certificates"), "{}", rs.text);
    assert!(rs.entries().is_empty());

    // The delta: critical indicator, same IDP, base = the complete CRL.
    assert_eq!(delta.base_number(), Some(id.number()));
    assert!(delta.number() > id.number());
    assert!(delta.is_critical("X509v3 Delta CRL Indicator"));
    assert_eq!(
        delta
            .extension("X509v3 Issuing Distribution Point")
            .unwrap(),
        idp
    );
    assert!(delta.entries().is_empty(), "nothing changed since the base");

    // The ARL: CA certificates only, no entries yet.
    assert!(arl.is_critical("X509v3 Issuing Distribution Point"));
    assert!(
        arl.extension("X509v3 Issuing Distribution Point")
            .unwrap()
            .contains("Only CA Certificates"),
        "{}",
        arl.text
    );
    assert!(arl.text.contains("No Revoked Certificates"));

    // openssl verify -crl_check rejects the revoked and held ones, accepts the good one.
    let crl = [id.pem.as_path()];
    for (c, what) in [
        (revoked, "revoked"),
        (held, "suspended"),
        (no_reason, "revoked without reason"),
    ] {
        assert_rejected(
            verify_with_crls(&c.root, &c.issuing_ca, &c.leaf, &crl, &["-crl_check"]),
            "certificate revoked",
            what,
        );
    }
    assert_accepted(
        verify_with_crls(
            &good.root,
            &good.issuing_ca,
            &good.leaf,
            &crl,
            &["-crl_check"],
        ),
        "good certificate, -crl_check",
    );
    // -crl_check_all: the issuing CA against the root's ARL too.
    let all = [id.pem.as_path(), arl.pem.as_path()];
    assert_accepted(
        verify_with_crls(
            &good.root,
            &good.issuing_ca,
            &good.leaf,
            &all,
            &["-crl_check_all"],
        ),
        "good certificate, -crl_check_all",
    );
    assert_rejected(
        verify_with_crls(
            &revoked.root,
            &revoked.issuing_ca,
            &revoked.leaf,
            &all,
            &["-crl_check_all"],
        ),
        "certificate revoked",
        "revoked certificate, -crl_check_all",
    );
    let rs_all = [rs.pem.as_path(), arl.pem.as_path()];
    assert_accepted(
        verify_with_crls(
            &resident_cert.root,
            &resident_cert.issuing_ca,
            &resident_cert.leaf,
            &rs_all,
            &["-crl_check_all"],
        ),
        "residence card certificate",
    );

    // Every publication is in the audit chain, which stays intact.
    let published = env
        .audit_list()
        .iter()
        .filter(|r| r["action"] == "crl.publish")
        .count();
    assert_eq!(published, 5, "one crl.publish audit record per CRL");
    env.audit_verify_ok();

    // Revoking an issuing CA lands on the root's ARL.
    let rs_ca = env
        .ca_list()
        .into_iter()
        .find(|c| c["name"] == "residence-card-ca")
        .expect("residence-card-ca");
    let rs_ca_serial = str_field(&rs_ca, "serial").to_string();
    env.ok(&[
        "revoke",
        "--serial",
        &rs_ca_serial,
        "--reason",
        "cACompromise",
    ]);
    let lines = env.publish_crls(&["--issuer", "root"]);
    assert_eq!(lines.len(), 1, "only the ARL: {lines:?}");
    let arl2 = env.crl("root.crl");
    assert!(arl2.number() > arl.number());
    arl2.verify_signature(&good.root);
    arl2.lint("ARL");
    let listed = arl2.entries();
    assert_eq!(
        listed
            .get(&key(&rs_ca_serial))
            .and_then(|e| e.reason.as_deref()),
        Some("CA Compromise"),
        "{}",
        arl2.text
    );
    let rs_all = [rs.pem.as_path(), arl2.pem.as_path()];
    assert_rejected(
        verify_with_crls(
            &resident_cert.root,
            &resident_cert.issuing_ca,
            &resident_cert.leaf,
            &rs_all,
            &["-crl_check_all"],
        ),
        "certificate revoked",
        "certificate of a revoked issuing CA, -crl_check_all",
    );
    let all = [id.pem.as_path(), arl2.pem.as_path()];
    assert_accepted(
        verify_with_crls(
            &good.root,
            &good.issuing_ca,
            &good.leaf,
            &all,
            &["-crl_check_all"],
        ),
        "good certificate of the other CA",
    );
}

fn partitioned_crls_match_the_distribution_points(env: &TestEnv) {
    env.set_crl_partitions(4);
    env.init();
    let certs = issue_auth(env, "P", 12);
    for (i, c) in certs.iter().enumerate() {
        if i % 2 == 0 {
            env.ok(&["revoke", "--serial", &c.serial, "--reason", "keyCompromise"]);
        }
    }
    let lines = env.publish_crls(&[]);
    assert_eq!(
        lines.len(),
        1 + 2 * 4 * 2,
        "ARL + 2 CAs x 4 partitions x (complete, delta)"
    );
    let files: Vec<String> = (0..4)
        .map(|p| {
            if p == 0 {
                "identity-card-ca.crl".to_string()
            } else {
                format!("identity-card-ca-p{p}.crl")
            }
        })
        .collect();
    let chain = bundle(env, &certs[0]);
    let mut by_partition = Vec::new();
    for (p, file) in files.iter().enumerate() {
        let line = publication(&lines, "identity-card-ca", p as u64, "complete");
        assert!(
            str_field(line, "url").ends_with(&format!("/{file}")),
            "{line}"
        );
        let crl = env.crl(file);
        crl.verify_signature(&chain);
        crl.lint("CRL");
        assert!(crl.is_critical("X509v3 Issuing Distribution Point"));
        let idp = crl.extension("X509v3 Issuing Distribution Point").unwrap();
        assert!(idp.contains(&format!("/{file}")), "{file}: IDP {idp}");
        let delta = env.crl(&file.replace(".crl", "-delta.crl"));
        delta.verify_signature(&chain);
        delta.lint("CRL");
        assert_eq!(
            delta
                .extension("X509v3 Issuing Distribution Point")
                .unwrap(),
            idp
        );
        assert_eq!(delta.base_number(), Some(crl.number()));
        by_partition.push(crl);
    }
    let arl = env.crl("root.crl");
    let all_pems: Vec<&Path> = by_partition
        .iter()
        .map(|c| c.pem.as_path())
        .chain([arl.pem.as_path()])
        .collect();
    let mut total = 0;
    for (i, cert) in certs.iter().enumerate() {
        let dp = crl_distribution_point(&cert.text);
        let file = dp.rsplit('/').next().unwrap();
        let own = files.iter().position(|f| f == file).unwrap_or_else(|| {
            panic!(
                "certificate {} points at {dp}, not a partition",
                cert.serial
            )
        });
        let revoked = i % 2 == 0;
        for (p, crl) in by_partition.iter().enumerate() {
            let listed = crl.entries().contains_key(&key(&cert.serial));
            assert_eq!(
                listed,
                revoked && p == own,
                "certificate {i} (partition {own}) on partition {p}"
            );
        }
        total += usize::from(revoked);
        // openssl finds the partition whose IDP matches among all of them.
        let result = verify_with_crls(
            &cert.root,
            &cert.issuing_ca,
            &cert.leaf,
            &all_pems,
            &["-crl_check_all"],
        );
        if revoked {
            assert_rejected(
                result,
                "certificate revoked",
                &format!("revoked certificate {i}"),
            );
        } else {
            assert_accepted(result, &format!("good certificate {i} (partition {own})"));
            // Another partition's CRL does not cover it.
            let other = &by_partition[(own + 1) % 4];
            assert_rejected(
                verify_with_crls(
                    &cert.root,
                    &cert.issuing_ca,
                    &cert.leaf,
                    &[other.pem.as_path()],
                    &["-crl_check"],
                ),
                "different CRL scope",
                "a certificate checked against another partition's CRL",
            );
        }
    }
    let listed: usize = by_partition.iter().map(|c| c.entries().len()).sum();
    assert_eq!(
        listed, total,
        "every revoked certificate on exactly one partition"
    );

    // A change regenerates only the partition it touches (one-shot form).
    let lines = env.publish_crls(&[
        "--issuer",
        "identity-card-ca",
        "--partition",
        "2",
        "--complete-only",
    ]);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["partition"], 2);
}

fn a_delta_applied_to_its_base_gives_the_next_complete_crl(env: &TestEnv) {
    env.init();
    let c = issue_auth(env, "D", 6);
    // Before the base: 0 revoked, 1 and 2 suspended.
    env.ok(&["revoke", "--serial", &c[0].serial, "--reason", "superseded"]);
    env.ok(&["suspend", "--serial", &c[1].serial]);
    let since = days_ago_str(1);
    env.ok(&[
        "suspend",
        "--serial",
        &c[2].serial,
        "--invalidity-date",
        &since,
    ]);
    let first = env.publish_crls(&["--issuer", "identity-card-ca"]);
    assert_eq!(first.len(), 2, "complete + delta: {first:?}");
    let base = env.crl("identity-card-ca.crl");
    // After the base: 1 resumed, 2 revoked, 3 revoked, 4 suspended; 5 stays good.
    env.ok(&["resume", "--serial", &c[1].serial]);
    env.ok(&[
        "revoke",
        "--serial",
        &c[2].serial,
        "--reason",
        "keyCompromise",
    ]);
    env.ok(&[
        "revoke",
        "--serial",
        &c[3].serial,
        "--reason",
        "affiliationChanged",
    ]);
    env.ok(&["suspend", "--serial", &c[4].serial]);
    let d = env.publish_crls(&["--issuer", "identity-card-ca", "--delta-only"]);
    assert_eq!(d.len(), 1, "{d:?}");
    let delta = env.crl("identity-card-ca-delta.crl");
    let n = env.publish_crls(&["--issuer", "identity-card-ca", "--complete-only"]);
    assert_eq!(n.len(), 1, "{n:?}");
    let next = env.crl("identity-card-ca.crl");

    let chain = bundle(env, &c[0]);
    for crl in [&base, &delta, &next] {
        crl.verify_signature(&chain);
        crl.lint("CRL");
    }
    assert_eq!(delta.base_number(), Some(base.number()));
    assert!(delta.is_critical("X509v3 Delta CRL Indicator"));
    assert!(base.number() < delta.number() && delta.number() < next.number());

    let de = delta.entries();
    let reason = |i: usize| de.get(&key(&c[i].serial)).and_then(|e| e.reason.clone());
    assert!(
        !de.contains_key(&key(&c[0].serial)),
        "unchanged since the base: {de:?}"
    );
    assert_eq!(
        reason(1).as_deref(),
        Some("Remove From CRL"),
        "resumed suspension"
    );
    assert_eq!(
        reason(2).as_deref(),
        Some("Key Compromise"),
        "hold then revoked"
    );
    assert_eq!(reason(3).as_deref(), Some("Affiliation Changed"));
    assert_eq!(reason(4).as_deref(), Some("Certificate Hold"));
    assert!(!de.contains_key(&key(&c[5].serial)));
    assert_eq!(
        apply_delta(&base.entries(), &de),
        next.entries(),
        "base + delta must equal the next complete CRL"
    );

    // OpenSSL with deltas (-extended_crl: without it OpenSSL 3.0 may take
    // the newer delta for a complete CRL).
    let crls = [base.pem.as_path(), delta.pem.as_path()];
    let flags = ["-crl_check", "-extended_crl", "-use_deltas"];
    let check =
        |i: usize| verify_with_crls(&c[i].root, &c[i].issuing_ca, &c[i].leaf, &crls, &flags);
    assert_accepted(check(1), "resumed certificate (removeFromCRL in the delta)");
    assert_accepted(check(5), "good certificate");
    for i in [0, 2, 3, 4] {
        assert_rejected(
            check(i),
            "certificate revoked",
            &format!("certificate {i} with base + delta"),
        );
    }
    // The base alone still holds the old state.
    let base_only = [base.pem.as_path()];
    assert_rejected(
        verify_with_crls(
            &c[1].root,
            &c[1].issuing_ca,
            &c[1].leaf,
            &base_only,
            &["-crl_check"],
        ),
        "certificate revoked",
        "resumed certificate against the base alone",
    );
    assert_accepted(
        verify_with_crls(
            &c[3].root,
            &c[3].issuing_ca,
            &c[3].leaf,
            &base_only,
            &["-crl_check"],
        ),
        "certificate revoked after the base, against the base alone",
    );
}

fn expired_certificates_leave_the_crl_after_one_more_publication(env: &TestEnv) {
    env.init();
    let resident = Identity::resident("XZ00001");
    let card = Card::residence("XZC000001", &resident.registry_key);
    env.holder_with_card(&resident, &card);
    let csr = env.csr(KeyType::EcP256);
    let cert = env.issue(&card.number, "auth", &csr);
    env.ok(&[
        "revoke",
        "--serial",
        &cert.serial,
        "--reason",
        "keyCompromise",
    ]);
    let at = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let file = "residence-card-ca.crl";
    let args = ["--issuer", "residence-card-ca", "--complete-only"];

    env.publish_crls(&args);
    assert!(env.crl(file).entries().contains_key(&key(&cert.serial)));
    // First publication after its notAfter: still listed.
    let after_expiry = card.expected_not_after() + Duration::days(1);
    env.publish_crls_with(&args, |c| {
        c.env("PKI_FAKE_NOW", at(after_expiry));
    });
    let last_with = env.crl(file);
    assert!(
        last_with.entries().contains_key(&key(&cert.serial)),
        "{}",
        last_with.text
    );
    // A delta against that CRL removes it; the next complete CRL drops it.
    let later = after_expiry + Duration::hours(1);
    env.publish_crls_with(&["--issuer", "residence-card-ca", "--delta-only"], |c| {
        c.env("PKI_FAKE_NOW", at(later));
    });
    let delta = env.crl("residence-card-ca-delta.crl");
    assert_eq!(
        delta
            .entries()
            .get(&key(&cert.serial))
            .and_then(|e| e.reason.as_deref()),
        Some("Remove From CRL"),
        "{}",
        delta.text
    );
    env.publish_crls_with(&args, |c| {
        c.env("PKI_FAKE_NOW", at(later));
    });
    let without = env.crl(file);
    assert!(without.entries().is_empty(), "{}", without.text);
    assert!(without.text.contains("No Revoked Certificates"));
    assert_eq!(
        apply_delta(&last_with.entries(), &delta.entries()),
        without.entries()
    );
    without.lint("CRL");
}

/// The caIssuers URL in `cert` (PEM) read by openssl, fetched with curl from
/// the server at `addr` (same path): must be `application/pkix-cert` DER;
/// returned as a PEM file.
fn fetch_ca_issuer(env: &TestEnv, addr: &str, cert: &Path, name: &str) -> PathBuf {
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-ext", "authorityInfoAccess", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    let text = stdout_str(&out);
    let url = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("CA Issuers - URI:"))
        .unwrap_or_else(|| panic!("no caIssuers in {}:\n{text}", cert.display()))
        .to_string();
    let local = format!("http://{addr}{}", url_path_of(&url));
    let der = env.path(&format!("certs/{name}-{}.der", unique_suffix()));
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--fail",
            "--max-time",
            "10",
            "-w",
            "%{content_type}",
            "-o",
        ])
        .arg(&der)
        .arg(&local)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        describe(&format!("curl {local} ({url})"), &out)
    );
    assert_eq!(stdout_str(&out).trim(), "application/pkix-cert", "{local}");
    let pem = der.with_extension("pem");
    let out = std::process::Command::new("openssl")
        .args(["x509", "-inform", "DER", "-in"])
        .arg(&der)
        .arg("-out")
        .arg(&pem)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        describe("openssl x509 -inform DER", &out)
    );
    pem
}

/// Reads the child's stdout until a line containing `marker`; returns what
/// follows it on that line.
fn wait_for(child: &mut Child, marker: &'static str, what: &str) -> String {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.split(marker).nth(1) {
                let _ = tx.send(rest.trim().to_string());
            }
        }
    });
    rx.recv_timeout(StdDuration::from_secs(120))
        .unwrap_or_else(|_| panic!("{what} did not print {marker:?} within 120 s"))
}

/// Kills the signer and the server when the test ends, however it ends.
struct Running {
    signer: Child,
    server: Option<Child>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for c in std::iter::once(&mut self.signer).chain(self.server.as_mut()) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `crl-publisher run` (the signer, no listener) until it has published
/// everything, then `crl-server` on its directory: returns both and the
/// server's address.
fn start_publisher(env: &TestEnv, extra: &[&str]) -> (Running, String) {
    let mut args = vec!["run"];
    args.extend_from_slice(extra);
    let log = std::fs::File::create(env.path("publisher.log")).unwrap();
    let mut signer = env
        .crl_publisher(&args)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start crl-publisher run");
    wait_for(
        &mut signer,
        "crl-publisher: published, following changes",
        "crl-publisher run",
    );
    let mut running = Running {
        signer,
        server: None,
    };
    let log = std::fs::File::create(env.path("crl-server.log")).unwrap();
    let mut server = env
        .crl_server(&["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start crl-server");
    let addr = wait_for(&mut server, "listening on http://", "crl-server");
    running.server = Some(server);
    (running, addr)
}

fn crl_numbers_only_increase(env: &TestEnv) {
    env.init();
    let scope = ["--issuer", "identity-card-ca", "--complete-only"];
    let first = env.publish_crls(&scope);
    let n1 = first[0]["number"].as_u64().unwrap();

    // A crash between signing and storing: the number is lost, never reused.
    let mut args = vec!["publish"];
    args.extend_from_slice(&scope);
    let mut cmd = env.crl_publisher(&args);
    cmd.env("CRL_PUBLISHER_TEST_CRASH_AFTER_SIGN", "1");
    let out = output_of(&mut cmd, "crl-publisher (crash hook)");
    let shown = describe("crl-publisher publish (crash after sign)", &out);
    assert_eq!(out.status.signal(), Some(6), "expected SIGABRT\n{shown}");
    let err = stderr_str(&out);
    let crashed: u64 = err
        .split("number ")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no signed number in stderr\n{shown}"));
    assert!(crashed > n1, "reserved {crashed} after {n1}");
    let on_disk = env.crl("identity-card-ca.crl");
    assert_eq!(on_disk.number(), n1, "the published file is untouched");
    on_disk.lint("CRL");
    let leftovers: Vec<_> = std::fs::read_dir(env.crl_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let after = env.publish_crls(&scope);
    let n3 = after[0]["number"].as_u64().unwrap();
    assert!(
        n3 > crashed,
        "number {n3} after a crash that signed {crashed}"
    );

    // kill -9 of a running publisher, then a restart.
    let (mut running, _addr) = start_publisher(env, &[]);
    running.signer.kill().unwrap();
    running.signer.wait().unwrap();
    let restarted = env.publish_crls(&scope);
    let n4 = restarted[0]["number"].as_u64().unwrap();
    assert!(n4 > n3, "after kill -9 and restart: {n4} <= {n3}");

    // Two publishers started at once.
    let spawn = || {
        env.crl_publisher(&["publish", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let mut lines = Vec::new();
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            describe("concurrent crl-publisher publish", &out)
        );
        lines.extend(json_lines(&stdout_str(&out)));
    }
    let mut numbers: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut published: BTreeMap<(String, u64, String), u64> = BTreeMap::new();
    for l in &lines {
        let issuer = str_field(l, "issuer").to_string();
        let n = l["number"].as_u64().unwrap();
        numbers.entry(issuer.clone()).or_default().push(n);
        if l["outcome"] == "published" {
            let scope = (
                issuer,
                l["partition"].as_u64().unwrap(),
                str_field(l, "kind").to_string(),
            );
            let e = published.entry(scope).or_default();
            *e = (*e).max(n);
        }
    }
    for (issuer, ns) in &numbers {
        let distinct: BTreeSet<_> = ns.iter().collect();
        assert_eq!(
            distinct.len(),
            ns.len(),
            "{issuer}: a CRL number used twice: {ns:?}"
        );
    }
    assert!(numbers["identity-card-ca"].iter().all(|n| *n > n4));
    for ((issuer, partition, kind), max) in &published {
        assert_eq!(*partition, 0);
        let file = match kind.as_str() {
            "delta" => format!("{issuer}-delta.crl"),
            _ => format!("{issuer}.crl"),
        };
        assert_eq!(
            env.crl(&file).number(),
            *max,
            "{file} must hold the highest number published for it"
        );
    }
}

fn get_crl(env: &TestEnv, addr: &str, path: &str) -> Crl {
    let a = http(addr, "GET", path, &[]);
    assert_eq!(a.status, 200, "GET {path}");
    let file = env.write(&format!("http/{}.crl", unique_suffix()), &a.body);
    Crl::read(&file)
}

fn metric(text: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

fn the_publisher_serves_crls_and_follows_changes(env: &TestEnv) {
    env.set_crl_partitions(2);
    env.init();
    let certs = issue_auth(env, "H", 6);
    let (_running, addr) = start_publisher(
        env,
        &[
            "--poll",
            "1s",
            "--debounce",
            "1s",
            "--max-delay",
            "3s",
            "--complete-debounce",
            "4s",
            "--complete-max-delay",
            "8s",
        ],
    );

    // A CRL over HTTP, as written in the certificates.
    let path = "/eid/crl/identity-card-ca.crl";
    let a = http(&addr, "GET", path, &[]);
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("application/pkix-crl"));
    assert_eq!(
        a.body,
        std::fs::read(env.crl_dir().join("identity-card-ca.crl")).unwrap()
    );
    let etag = a.header("etag").expect("ETag").to_string();
    let last_modified = a
        .header("last-modified")
        .expect("Last-Modified")
        .to_string();
    assert!(a.header("expires").is_some());
    let cc = a.header("cache-control").expect("Cache-Control");
    let max_age: i64 = cc
        .split("max-age=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("Cache-Control {cc}"));
    assert!(
        max_age > 86_000 && max_age <= 86_400,
        "max-age {max_age} until nextUpdate"
    );
    assert_eq!(
        http(&addr, "GET", path, &[("If-None-Match", &etag)]).status,
        304
    );
    assert_eq!(
        http(&addr, "GET", path, &[("If-Modified-Since", &last_modified)]).status,
        304
    );
    assert_eq!(
        http(&addr, "GET", path, &[("If-None-Match", "\"other\"")]).status,
        200
    );
    let head = http(&addr, "HEAD", path, &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        http(&addr, "GET", "/identity-card-ca.crl", &[]).body,
        a.body
    );
    assert_eq!(http(&addr, "GET", "/eid/crl/nothing.crl", &[]).status, 404);
    assert_eq!(http(&addr, "POST", path, &[]).status, 405);

    let health = http(&addr, "GET", "/health", &[]);
    assert_eq!(
        health.status,
        200,
        "{}",
        String::from_utf8_lossy(&health.body)
    );
    let h: Value = serde_json::from_slice(&health.body).unwrap();
    assert_eq!(h["status"], "ok");
    let metrics = String::from_utf8(http(&addr, "GET", "/metrics", &[]).body).unwrap();
    for name in [
        "crl_age_seconds",
        "crl_entries",
        "crl_generation_seconds",
        "crl_number",
    ] {
        assert!(
            metric(
                &metrics,
                name,
                "issuer=\"identity-card-ca\",partition=\"1\",kind=\"complete\""
            )
            .is_some(),
            "{name} missing:\n{metrics}"
        );
    }
    assert!(metric(
        &metrics,
        "crl_entries",
        "issuer=\"root\",partition=\"0\",kind=\"arl\""
    )
    .is_some());

    // The server's own view of the files, and how old the signer's status is.
    assert!(
        metric(
            &metrics,
            "crl_served_number",
            "file=\"identity-card-ca.crl\""
        )
        .is_some(),
        "crl_served_number missing:\n{metrics}"
    );
    let age: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("crl_signer_status_age_seconds "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("crl_signer_status_age_seconds missing:\n{metrics}"));
    assert!((0.0..30.0).contains(&age), "signer status {age} s old");

    // caIssuers: the issuing CA's certificate at the URL written in the card
    // certificate, then the root's at the URL written in that one, fetched
    // with curl from the server; openssl verifies the card against them.
    let issuing = fetch_ca_issuer(env, &addr, &certs[0].leaf, "issuing");
    let root = fetch_ca_issuer(env, &addr, &issuing, "root");
    let out = std::process::Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(&root)
        .arg("-untrusted")
        .arg(&issuing)
        .arg(&certs[0].leaf)
        .output()
        .unwrap();
    assert!(
        out.status.success() && stdout_str(&out).contains(": OK"),
        "{}",
        describe("openssl verify against the caIssuers certificates", &out)
    );

    // A revocation: the delta of its partition within a minute, then the
    // complete CRL of that partition; the other partition is not touched.
    let target = &certs[0];
    let dp = crl_distribution_point(&target.text);
    let own = url_path_of(&dp);
    let other = if own.ends_with("-p1.crl") {
        "/eid/crl/identity-card-ca.crl".to_string()
    } else {
        "/eid/crl/identity-card-ca-p1.crl".to_string()
    };
    let own_delta = own.replace(".crl", "-delta.crl");
    let before_delta = get_crl(env, &addr, &own_delta).number();
    let before_other = get_crl(env, &addr, &other).number();
    let before_own = get_crl(env, &addr, &own).number();
    env.ok(&[
        "revoke",
        "--serial",
        &target.serial,
        "--reason",
        "keyCompromise",
    ]);
    let revoked_at = Instant::now();
    let listed = |path: &str| {
        let c = get_crl(env, &addr, path);
        let on = c.entries().contains_key(&key(&target.serial));
        (c, on)
    };
    let deadline = revoked_at + StdDuration::from_secs(60);
    let delta = loop {
        let (c, on) = listed(&own_delta);
        if on {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "no delta CRL listed the revocation within a minute"
        );
        std::thread::sleep(StdDuration::from_millis(500));
    };
    eprintln!(
        "delta CRL after {:.1} s",
        revoked_at.elapsed().as_secs_f64()
    );
    assert!(delta.number() > before_delta);
    let complete = loop {
        let (c, on) = listed(&own);
        if on {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "no complete CRL listed the revocation within a minute"
        );
        std::thread::sleep(StdDuration::from_millis(500));
    };
    assert!(complete.number() > before_own);
    assert_eq!(
        get_crl(env, &addr, &other).number(),
        before_other,
        "the other partition was regenerated"
    );
    // Files and HTTP agree.
    let file = own.rsplit('/').next().unwrap();
    assert_eq!(env.crl(file).number(), complete.number());
    complete.lint("CRL");
}

fn url_path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest[rest.find('/').unwrap()..].to_string()
}

fn pki_admin_shows_and_fetches_the_current_crls(env: &TestEnv) {
    env.init();
    let certs = issue_auth(env, "S", 2);
    env.ok(&[
        "revoke",
        "--serial",
        &certs[0].serial,
        "--reason",
        "keyCompromise",
    ]);
    env.publish_crls(&[]);
    let help = env.run(&["crl", "--help"]);
    if !help.status.success() {
        eprintln!(
            "SKIPPED (pki-admin has no `crl` subcommand: wire admin-cli/src/crl.rs into main.rs)"
        );
        return;
    }
    let text = env.ok_stdout(&["crl", "show"]);
    assert!(
        text.contains("identity-card-ca") && text.contains("root"),
        "{text}"
    );
    let records = as_array(env.ok_json(&["crl", "show", "--json"]), "crl show --json");
    assert_eq!(records.len(), 5, "{records:?}");
    let id = records
        .iter()
        .find(|r| r["issuer"] == "identity-card-ca" && r["kind"] == "complete")
        .expect("identity-card-ca complete CRL");
    assert_eq!(
        id["number"].as_u64().unwrap(),
        env.crl("identity-card-ca.crl").number()
    );
    let entries = env.ok_stdout(&["crl", "show", "--issuer", "identity-card-ca", "--entries"]);
    assert!(
        entries.contains(&certs[0].serial.to_lowercase()) && entries.contains("keyCompromise"),
        "{entries}"
    );
    let out = env.path("fetched");
    env.ok(&["crl", "fetch", "--out", out.to_str().unwrap()]);
    for f in [
        "root.crl",
        "identity-card-ca.crl",
        "identity-card-ca-delta.crl",
        "residence-card-ca.crl",
    ] {
        assert_eq!(
            std::fs::read(out.join(f)).unwrap(),
            std::fs::read(env.crl_dir().join(f)).unwrap(),
            "{f}"
        );
    }
    let pem_dir = env.path("fetched-pem");
    env.ok(&[
        "crl",
        "fetch",
        "--pem",
        "--no-delta",
        "--out",
        pem_dir.to_str().unwrap(),
    ]);
    assert!(pem_dir.join("identity-card-ca.pem").exists());
    assert!(!pem_dir.join("identity-card-ca-delta.pem").exists());
    // A file that is not the recorded CRL is refused.
    std::fs::copy(
        env.crl_dir().join("residence-card-ca.crl"),
        env.crl_dir().join("identity-card-ca.crl"),
    )
    .unwrap();
    let args = [
        "crl",
        "fetch",
        "--issuer",
        "identity-card-ca",
        "--out",
        out.to_str().unwrap(),
    ];
    let out = env.run(&args);
    env.assert_error(&args, &out, &["signature", "recorded"]);
}

e2e_test!(
    crls_are_valid_and_revoked_certificates_are_rejected,
    partitioned_crls_match_the_distribution_points,
    a_delta_applied_to_its_base_gives_the_next_complete_crl,
    expired_certificates_leave_the_crl_after_one_more_publication,
    crl_numbers_only_increase,
    the_publisher_serves_crls_and_follows_changes,
    pki_admin_shows_and_fetches_the_current_crls,
);
