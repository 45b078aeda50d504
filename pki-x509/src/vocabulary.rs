//! The X.509 words a certificate profile is written in: key algorithms,
//! KeyUsage bits and QC statements, deserialised from `policies/profiles.toml`
//! by the CA's policy and encoded by this crate.

use serde::Deserialize;

/// Subject public key types a profile may accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    EcP256,
    EcP384,
    EcP521,
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    #[serde(rename = "rsa-3072")]
    Rsa3072,
    #[serde(rename = "rsa-4096")]
    Rsa4096,
}

impl KeyAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::EcP256 => "ec-p256",
            KeyAlgorithm::EcP384 => "ec-p384",
            KeyAlgorithm::EcP521 => "ec-p521",
            KeyAlgorithm::Rsa2048 => "rsa-2048",
            KeyAlgorithm::Rsa3072 => "rsa-3072",
            KeyAlgorithm::Rsa4096 => "rsa-4096",
        }
    }

    /// The RSA key with exactly this modulus size, if it is one we name.
    pub fn rsa_with_bits(bits: usize) -> Option<Self> {
        match bits {
            2048 => Some(KeyAlgorithm::Rsa2048),
            3072 => Some(KeyAlgorithm::Rsa3072),
            4096 => Some(KeyAlgorithm::Rsa4096),
            _ => None,
        }
    }
}

/// KeyUsage bits, spelled as in RFC 5280.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum KeyUsageBit {
    DigitalSignature,
    NonRepudiation,
    KeyEncipherment,
    KeyAgreement,
    KeyCertSign,
    CRLSign,
}

/// The QC statements (ETSI EN 319 412-5 and -1) a profile carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QcStatement {
    /// QcCompliance: a qualified certificate.
    Compliance,
    /// QcCClegislation naming the configured country: qualified under that
    /// country's law rather than under eIDAS.
    Legislation,
    /// QcSSCD: the private key lives in a qualified signature creation device.
    Sscd,
    /// QcType esign: for electronic signatures.
    TypeEsign,
    /// QcPDS: where the PKI disclosure statement is.
    Pds,
    /// id-qcs-pkixQCSyntax-v2 with id-etsi-qcs-semanticsId-Natural: how to
    /// read the subject's serialNumber (`PNO<CC>-...`).
    SemanticsNaturalPerson,
}
