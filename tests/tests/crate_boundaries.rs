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

#[test]
fn the_scheduler_links_no_key_code() {
    assert_eq!(
        linked_workspace_crates("scheduler"),
        set(&["pki-http", "pki-registration", "pki-store", "pki-x509"])
    );
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
