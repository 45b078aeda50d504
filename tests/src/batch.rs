//! `issue-batch` manifests and results.

use crate::*;

// ---------------------------------------------------------------------------
// issue-batch
// ---------------------------------------------------------------------------

/// A manifest line with the CSR inline.
pub fn manifest_inline(card: &str, usage: &str, csr_pem: &str) -> String {
    format!(
        "{}\n",
        json!({"card": card, "usage": usage, "csr": csr_pem})
    )
}

/// A manifest line naming a CSR file relative to the manifest.
pub fn manifest_file(card: &str, usage: &str, csr_file: &str) -> String {
    format!(
        "{}\n",
        json!({"card": card, "usage": usage, "csr_file": csr_file})
    )
}

/// Counts results by `outcome`.
pub fn outcomes(results: &[Value]) -> std::collections::BTreeMap<String, usize> {
    let mut map = std::collections::BTreeMap::new();
    for r in results {
        *map.entry(str_field(r, "outcome").to_string()).or_default() += 1;
    }
    map
}

/// `n` adult nationals `<prefix>0001...` with one identity card each.
pub fn nationals_with_cards(prefix: &str, n: usize) -> (Vec<Identity>, Vec<Card>) {
    let ids: Vec<Identity> = (1..=n)
        .map(|i| Identity::national(&format!("{prefix}{i:05}")))
        .collect();
    let cards = ids
        .iter()
        .enumerate()
        .map(|(i, id)| Card::identity(&format!("{prefix}C{:06}", i + 1), &id.registry_key))
        .collect();
    (ids, cards)
}
