//! Sample data for the demo and the benchmarks: registry identities, cards,
//! and PKCS#10 requests from freshly generated keys (what a card chip
//! produces at personalisation). Nothing here is used to issue real cards.

use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use chrono::NaiveDate;
use der::asn1::BitString;
use der::{Decode, Encode};
use pki_store::domain::CardKind;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::request::{CertReq, CertReqInfo, Version};

const FAMILY: &[&str] = &[
    "Rossi", "Martin", "Bernard", "Gastaud", "Médecin", "Pastor", "Boisson", "Notari", "Crovetto",
    "Fissore",
];
const GIVEN: &[&str] = &[
    "Louise",
    "Antoine",
    "Charlotte",
    "Jules",
    "Émilie",
    "Marco",
    "Sofia",
    "Hugo",
    "Anaïs",
    "Théo",
];

/// The n-th sample identity as a JSON Lines record of a registry extract.
/// Even numbers are nationals (town hall), odd numbers residents.
pub fn identity_json(n: usize) -> serde_json::Value {
    let national = n.is_multiple_of(2);
    serde_json::json!({
        "registry_key": format!("MC{:08}", n + 1),
        "family_name": FAMILY[n % FAMILY.len()],
        "given_names": GIVEN[(n / FAMILY.len() + n) % GIVEN.len()],
        "birth_name": "",
        "birth_datetime": format!("{}-{:02}-{:02}T{:02}:{:02}", 1950 + n % 50, 1 + n % 12, 1 + n % 28, n % 24, n % 60),
        "birth_place": if national { "Monaco" } else { "Nice" },
        "gender": if n.is_multiple_of(3) { "F" } else { "M" },
        "authority": if national { "town-hall" } else { "residents-section" },
        "status": "active",
        "protected_adult": false,
        "email": format!("holder{}@example.com", n + 1),
        "mobile": format!("+37760{:06}", n + 1),
    })
}

/// The card of the n-th sample identity, issued on `issued`, valid 10 years.
pub fn card_json(n: usize, issued: NaiveDate) -> serde_json::Value {
    let kind = if n.is_multiple_of(2) {
        CardKind::Identity
    } else {
        CardKind::Residence
    };
    let expiry = issued
        .checked_add_months(chrono::Months::new(120))
        .unwrap_or(issued);
    serde_json::json!({
        "card_number": card_number(n),
        "kind": kind,
        "holder_key": format!("MC{:08}", n + 1),
        "issue_date": issued.to_string(),
        "expiry_date": expiry.to_string(),
    })
}

pub fn card_number(n: usize) -> String {
    format!(
        "{}{:09}",
        if n.is_multiple_of(2) { "ID" } else { "RS" },
        n + 1
    )
}

/// A P-256 key pair and a PEM CSR signed with it.
pub fn p256_csr(common_name: &str) -> Result<String, String> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .map_err(|e| e.to_string())?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
        .map_err(|e| e.to_string())?;
    use aws_lc_rs::encoding::AsDer;
    let spki_der = pair.public_key().as_der().map_err(|e| e.to_string())?;
    let info = CertReqInfo {
        version: Version::V1,
        subject: format!("CN={common_name}")
            .parse()
            .map_err(|e: der::Error| e.to_string())?,
        public_key: SubjectPublicKeyInfoOwned::from_der(spki_der.as_ref())
            .map_err(|e| e.to_string())?,
        attributes: Default::default(),
    };
    let info_der = info.to_der().map_err(|e| e.to_string())?;
    let signature = pair.sign(&rng, &info_der).map_err(|e| e.to_string())?;
    let req = CertReq {
        info,
        algorithm: AlgorithmIdentifierOwned {
            oid: pki_x509::oids::ECDSA_SHA256,
            parameters: None,
        },
        signature: BitString::from_bytes(signature.as_ref()).map_err(|e| e.to_string())?,
    };
    let der = req.to_der().map_err(|e| e.to_string())?;
    der::pem::encode_string("CERTIFICATE REQUEST", der::pem::LineEnding::LF, &der)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_csr_passes_proof_of_possession() {
        let pem = p256_csr("card").unwrap();
        let checked = pki_x509::csr::check(pem.as_bytes()).unwrap();
        assert_eq!(checked.key_algorithm, pki_x509::KeyAlgorithm::EcP256);
        let mut der = der::pem::decode_vec(pem.as_bytes()).unwrap().1;
        let last = der.len() - 3;
        der[last] ^= 0x55;
        assert!(pki_x509::csr::check(&der).is_err());
    }
}
