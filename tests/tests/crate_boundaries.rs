//! The trust boundaries of the crate layout (docs/ARCHITECTURE.md,
//! "Crates"): what each service links, read from cargo's own dependency
//! resolution (`cargo tree`), so a new dependency that crosses a boundary
//! fails here, not in a review.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// The workspace crates a package links in its normal build (no dev- or
/// build-dependencies): what ends up in its binary.
fn linked_workspace_crates(package: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = Command::new(cargo)
        .current_dir(root)
        .args(["tree", "--offline", "-e", "normal", "--prefix", "none"])
        .args(["--format", "{p}", "-p", package])
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        // Workspace members are printed with their path: `name v0.1.0 (/…)`.
        .filter(|l| l.contains(" (/"))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .filter(|name| name != package)
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_ocsp_responder_links_the_store_and_the_keys_but_not_the_ca() {
    assert_eq!(
        linked_workspace_crates("ocsp-responder"),
        set(&["pki-http", "pki-keys", "pki-store", "pki-x509"])
    );
}

#[test]
fn the_crl_publisher_links_the_store_and_the_keys_but_not_the_ca() {
    assert_eq!(
        linked_workspace_crates("crl-publisher"),
        set(&["pki-keys", "pki-store", "pki-x509"])
    );
}

/// The process that faces the network for CRLs and CA certificates does
/// not contain the key code: no CA key can be opened in it.
#[test]
fn the_crl_server_links_no_key_code() {
    let linked = linked_workspace_crates("crl-server");
    assert!(
        !linked.contains("pki-keys"),
        "crl-server links pki-keys: {linked:?}"
    );
    assert!(
        !linked.contains("crl-publisher"),
        "crl-server links the signer: {linked:?}"
    );
    assert_eq!(linked, set(&["pki-http", "pki-store", "pki-x509"]));
}

/// The shared HTTP hardening has no key and no database.
#[test]
fn the_http_layer_links_no_workspace_crate() {
    assert_eq!(linked_workspace_crates("pki-http"), set(&[]));
}

/// The scheduler links the key code for the audit key only (its one
/// `KeyStore` is built in `scheduler/src/audit_checkpoint.rs`, of
/// `KeyPurpose::Audit`), never the CA.
#[test]
fn the_scheduler_links_the_keys_for_the_audit_key_but_not_the_ca() {
    let linked = linked_workspace_crates("scheduler");
    assert_eq!(
        linked,
        set(&[
            "pki-http",
            "pki-keys",
            "pki-registration",
            "pki-store",
            "pki-x509"
        ])
    );
    assert!(!linked.contains("ca-core"));
}

/// The scheduler's sources name one key family: the audit key.
#[test]
fn the_scheduler_builds_only_an_audit_key_store() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = root.join("scheduler/src");
    let mut stores = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for family in ["KeyPurpose::Ca", "KeyPurpose::OcspResponder"] {
            assert!(!text.contains(family), "{} names {family}", path.display());
        }
        stores += text.matches("KeyStore::new(").count();
        if text.contains("KeyStore::new(") {
            assert!(
                text.contains("KeyStore::new(config, KeyPurpose::Audit)"),
                "{} builds a KeyStore that is not of the audit family",
                path.display()
            );
        }
    }
    assert_eq!(stores, 1, "one KeyStore::new in the scheduler");
}

#[test]
fn the_lower_layers_never_reach_up() {
    assert_eq!(linked_workspace_crates("pki-x509"), set(&[]));
    assert_eq!(linked_workspace_crates("pki-store"), set(&["pki-x509"]));
    assert_eq!(
        linked_workspace_crates("pki-registration"),
        set(&["pki-store", "pki-x509"])
    );
    assert_eq!(
        linked_workspace_crates("pki-keys"),
        set(&["pki-store", "pki-x509"])
    );
}
