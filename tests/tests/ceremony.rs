//! Key ceremonies (issue 10, part 2): `pki-admin ceremony FILE` makes the
//! offline root, the issuing CAs and the responders from one declarative
//! file, with a transcript in the audit log and in a file; the root's key
//! never reaches the online CA's key store, and nothing online can sign
//! with it.

use e2e_tests::*;
use std::path::Path;
use std::process::Command;

const ROOT_PASSPHRASE: &str = "e2e-test offline root passphrase";

/// A ceremony file with these steps (TOML lines), transcript `NAME.txt`.
fn ceremony_file(env: &TestEnv, name: &str, steps: &[(&str, &str)]) -> std::path::PathBuf {
    let mut text = format!(
        "id = \"{name}\"\noperators = [\"A. Martin (security officer)\", \"B. Rossi (key custodian)\"]\n\
         transcript = \"transcripts/{name}.txt\"\n\n[root_keys]\ndir = \"offline-root\"\n\
         passphrase_env = \"PKI_ROOT_PASSPHRASE\"\n"
    );
    for (action, authority) in steps {
        text.push_str(&format!(
            "\n[[steps]]\naction = \"{action}\"\nauthority = \"{authority}\"\n"
        ));
    }
    env.write(&format!("{name}.toml"), text)
}

fn ceremony(env: &TestEnv, file: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["ceremony", file.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    env.run_with(&args, |cmd| {
        cmd.env("PKI_ROOT_PASSPHRASE", ROOT_PASSPHRASE);
    })
}

fn the_first_ceremony(env: &TestEnv) -> std::path::PathBuf {
    ceremony_file(
        env,
        "hierarchy-2026",
        &[
            ("root", "root"),
            ("issuing-ca", "identity-card-ca"),
            ("issuing-ca", "residence-card-ca"),
            ("responder", "root"),
            ("responder", "identity-card-ca"),
            ("responder", "residence-card-ca"),
        ],
    )
}

fn key_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn sha256_of_pem_cert(pem: &Path) -> String {
    let out = output_of(
        Command::new("sh").arg("-c").arg(format!(
            "openssl x509 -in '{}' -outform DER | openssl dgst -sha256 -r",
            pem.display()
        )),
        "openssl dgst",
    );
    stdout_str(&out)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

/// The dry run plans and makes nothing; the ceremony makes the hierarchy
/// with the root key offline, a transcript whose certificate hashes
/// `openssl` confirms, and a CA that issues certificates `openssl` verifies.
fn a_ceremony_makes_the_hierarchy_with_an_offline_root(env: &TestEnv) {
    let file = the_first_ceremony(env);
    let before = env.snapshot();
    let out = ceremony(env, &file, &["--dry-run"]);
    assert!(
        out.status.success(),
        "{}",
        describe("ceremony --dry-run", &out)
    );
    let plan = stdout_str(&out);
    assert!(
        plan.contains("6 steps") && plan.contains("offline"),
        "{plan}"
    );
    env.assert_unchanged(&before, "dry run");
    assert!(!env.path("transcripts/hierarchy-2026.txt").exists());
    assert!(key_files(&env.path("offline-root")).is_empty());

    let out = ceremony(env, &file, &[]);
    assert!(out.status.success(), "{}", describe("ceremony", &out));
    assert_eq!(env.ca_list().len(), 3);

    // The root key is on the ceremony's media only.
    let offline = key_files(&env.path("offline-root"));
    assert_eq!(offline.len(), 1, "{offline:?}");
    assert!(offline[0].starts_with("root-"), "{offline:?}");
    let online = key_files(&env.path("data/keys/ca"));
    assert_eq!(online.len(), 2, "online CA keys: {online:?}");
    assert!(online.iter().all(|k| !k.starts_with("root-")), "{online:?}");

    // The transcript: operators, and each certificate's SHA-256 as openssl computes it.
    let transcript =
        std::fs::read_to_string(env.path("transcripts/hierarchy-2026.txt")).expect("transcript");
    assert!(
        transcript.contains("A. Martin (security officer)"),
        "{transcript}"
    );
    for name in ["root", "identity-card-ca", "residence-card-ca"] {
        let sha = sha256_of_pem_cert(&env.path(&format!("data/ca/{name}.pem")));
        assert_eq!(sha.len(), 64);
        assert!(
            transcript.contains(&sha),
            "{name} {sha} not in\n{transcript}"
        );
    }
    let audit = env.audit_list();
    let record = audit
        .iter()
        .find(|r| r["action"] == "ceremony")
        .expect("a ceremony record in the audit log");
    assert_eq!(record["subject"], "hierarchy-2026");
    env.audit_verify_ok();

    // The online CA issues under the ceremony's hierarchy.
    let holder = Identity::national("N7100001");
    let card = Card::identity("710001", &holder.registry_key);
    env.holder_with_card(&holder, &card);
    let issued = env.issue(&card.number, "auth", &env.csr(KeyType::EcP256));
    openssl_verify(&issued.root, Some(&issued.issuing_ca), &issued.leaf);

    // The CRL signer signs the issuing CAs' CRLs and never the root's ARL.
    let out = output_of(
        &mut env.crl_publisher(&["publish"]),
        "crl-publisher publish",
    );
    assert!(
        out.status.success(),
        "{}",
        describe("crl-publisher publish", &out)
    );
    assert!(env.crl_dir().join("identity-card-ca.crl").is_file());
    assert!(env.crl_dir().join("residence-card-ca.crl").is_file());
    assert!(
        !env.crl_dir().join("root.crl").exists(),
        "the offline root's ARL was signed online"
    );

    // Nothing online signs with the root: its responder is renewed in a ceremony.
    let out = env.run(&["ocsp", "rotate", "--authority", "root"]);
    env.assert_error(&["ocsp", "rotate"], &out, &["offline", "ceremony"]);
    let rotated = env.ok_stdout(&["ocsp", "rotate"]);
    assert!(rotated.contains("root: key kept offline"), "{rotated}");
    assert!(
        rotated.contains("identity-card-ca: new responder"),
        "{rotated}"
    );
}
e2e_test!(a_ceremony_makes_the_hierarchy_with_an_offline_root);

/// A ceremony never replaces a CA or a transcript, and a later ceremony
/// signs with the offline root (a new root responder certificate).
fn a_ceremony_refuses_to_overwrite_and_reuses_the_offline_root(env: &TestEnv) {
    let file = the_first_ceremony(env);
    let out = ceremony(env, &file, &[]);
    assert!(out.status.success(), "{}", describe("ceremony", &out));
    let before = env.snapshot();

    // The same file again: its transcript exists.
    let again = ceremony(env, &file, &[]);
    env.assert_error(&["ceremony"], &again, &["transcript", "exists"]);
    // Another file making a CA that exists.
    let twice = ceremony_file(env, "root-again", &[("root", "root")]);
    let out = ceremony(env, &twice, &[]);
    env.assert_error(&["ceremony"], &out, &["root exists", "never replaces"]);
    env.assert_unchanged(&before, "refused ceremonies");
    assert_eq!(key_files(&env.path("offline-root")).len(), 1);

    // Without the root's passphrase: refused, nothing stored.
    let responder = ceremony_file(env, "root-responder", &[("responder", "root")]);
    let out = env.run_with(
        &["ceremony", responder.to_str().expect("utf-8 path")],
        |cmd| {
            cmd.env_remove("PKI_ROOT_PASSPHRASE");
        },
    );
    env.assert_error(&["ceremony"], &out, &["PKI_ROOT_PASSPHRASE"]);
    env.assert_unchanged(&before, "ceremony without the root passphrase");

    // With it: a new root responder certificate, signed by the offline root.
    let out = ceremony(env, &responder, &[]);
    assert!(out.status.success(), "{}", describe("ceremony", &out));
    let after = env.snapshot();
    assert_eq!(after.certificates, before.certificates + 1);
}
e2e_test!(a_ceremony_refuses_to_overwrite_and_reuses_the_offline_root);

/// Bad ceremony files are refused with the reason, before anything is made.
fn bad_ceremony_files_are_refused(env: &TestEnv) {
    let before = env.snapshot();
    let one_operator = env.write(
        "one.toml",
        "id = \"x\"\noperators = [\"alone\"]\ntranscript = \"t.txt\"\n[[steps]]\naction = \"responder\"\nauthority = \"root\"\n",
    );
    let out = ceremony(env, &one_operator, &["--dry-run"]);
    env.assert_error(&["ceremony"], &out, &["two operators"]);
    let orphan = ceremony_file(env, "orphan", &[("issuing-ca", "identity-card-ca")]);
    let out = ceremony(env, &orphan, &["--dry-run"]);
    env.assert_error(&["ceremony"], &out, &["parent root"]);
    let unknown = env.write(
        "unknown.toml",
        "id = \"x\"\noperators = [\"a\", \"b\"]\ntranscript = \"t.txt\"\nsteps = []\nextra = 1\n",
    );
    let out = ceremony(env, &unknown, &["--dry-run"]);
    env.assert_error(&["ceremony"], &out, &["unknown field"]);
    env.assert_unchanged(&before, "bad ceremony files");
}
e2e_test!(bad_ceremony_files_are_refused);

/// The same ceremony with every key on SoftHSM2 tokens: the root's on its
/// own token (`[root_keys] token`), the issuing CAs' on the online CA
/// token, all non-extractable, and the online CA issues under it.
fn a_ceremony_on_tokens_keeps_the_root_on_its_own_token(env: &TestEnv) {
    let steps = [
        ("root", "root"),
        ("issuing-ca", "identity-card-ca"),
        ("issuing-ca", "residence-card-ca"),
        ("responder", "root"),
        ("responder", "identity-card-ca"),
        ("responder", "residence-card-ca"),
    ];
    let mut text = format!(
        "id = \"tokens-2026\"\noperators = [\"A. Martin\", \"B. Rossi\"]\n\
         transcript = \"transcripts/tokens-2026.txt\"\n\n[root_keys]\ntoken = \"{}\"\n\
         pin_env = \"{}\"\n",
        KeyFamily::Root.token(),
        KeyFamily::Root.pin_env()
    );
    for (action, authority) in steps {
        text.push_str(&format!(
            "\n[[steps]]\naction = \"{action}\"\nauthority = \"{authority}\"\n"
        ));
    }
    let file = env.write("tokens-2026.toml", text);
    let out = env.run_with(&["ceremony", file.to_str().expect("utf-8 path")], |cmd| {
        env.key_env(cmd, &[KeyFamily::Ca, KeyFamily::Ocsp, KeyFamily::Root]);
    });
    assert!(out.status.success(), "{}", describe("ceremony", &out));
    assert!(
        key_files(&env.path("data/keys/ca")).is_empty(),
        "no key file on a token set-up"
    );
    let private = |family| {
        env.token_objects(family)
            .into_iter()
            .filter(|o| o.is_private_key())
            .collect::<Vec<_>>()
    };
    let root = private(KeyFamily::Root);
    assert_eq!(root.len(), 1, "{root:?}");
    assert!(root[0].label().starts_with("root-"), "{root:?}");
    let online = private(KeyFamily::Ca);
    assert_eq!(online.len(), 2, "{online:?}");
    assert!(
        online.iter().all(|o| !o.label().starts_with("root-")),
        "{online:?}"
    );
    for key in root.iter().chain(&online) {
        let access = key.field("Access").unwrap_or("");
        assert!(
            access.contains("never extractable") && access.contains("sensitive"),
            "{key:?}"
        );
    }
    let holder = Identity::national("N7200001");
    let card = Card::identity("720001", &holder.registry_key);
    env.holder_with_card(&holder, &card);
    let issued = env.issue(&card.number, "auth", &env.csr(KeyType::EcP256));
    openssl_verify(&issued.root, Some(&issued.issuing_ca), &issued.leaf);
}
e2e_test!(pkcs11: a_ceremony_on_tokens_keeps_the_root_on_its_own_token);
