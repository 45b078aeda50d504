//! Request parsing: DER bytes of an `OCSPRequest` (RFC 6960 §4.1) into what
//! the responder needs to answer it: the CertIDs (hash algorithm, issuer
//! hashes, serial) and the nonce (RFC 9654). Everything a client can get
//! wrong ends here as a [`RequestError`], which the HTTP layer turns into a
//! `malformedRequest` answer; nothing in this module panics on any input
//! (see the property test at the bottom).

use const_oid::db::rfc5912::{ID_SHA_1, ID_SHA_256};
use const_oid::db::rfc6960::ID_PKIX_OCSP_NONCE;
use const_oid::ObjectIdentifier;
use der::asn1::OctetString;
use der::Decode;
use x509_ocsp::{CertId, OcspRequest};

/// The CertID hash algorithms this responder answers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    Sha1,
    Sha256,
}

impl HashAlg {
    pub const ALL: [HashAlg; 2] = [HashAlg::Sha1, HashAlg::Sha256];

    pub fn oid(self) -> ObjectIdentifier {
        match self {
            HashAlg::Sha1 => ID_SHA_1,
            HashAlg::Sha256 => ID_SHA_256,
        }
    }

    pub fn from_oid(oid: &ObjectIdentifier) -> Option<HashAlg> {
        if *oid == ID_SHA_1 {
            Some(HashAlg::Sha1)
        } else if *oid == ID_SHA_256 {
            Some(HashAlg::Sha256)
        } else {
            None
        }
    }

    /// Index into per-algorithm arrays.
    pub fn index(self) -> usize {
        match self {
            HashAlg::Sha1 => 0,
            HashAlg::Sha256 => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha1 => "sha1",
            HashAlg::Sha256 => "sha256",
        }
    }

    pub fn parse(s: &str) -> Result<HashAlg, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sha1" | "sha-1" => Ok(HashAlg::Sha1),
            "sha256" | "sha-256" => Ok(HashAlg::Sha256),
            other => Err(format!("{other:?} is not a CertID hash (sha1, sha256)")),
        }
    }

    /// Length of the digest.
    pub fn digest_len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 => 32,
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        match self {
            HashAlg::Sha1 => sha1::Sha1::digest(data).to_vec(),
            HashAlg::Sha256 => sha2::Sha256::digest(data).to_vec(),
        }
    }
}

/// A certificate serial number as this CA issues them: a positive integer
/// of at most 20 octets, kept big-endian and left-padded with zeros (so
/// that equal numbers are equal keys whatever their encoding length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(pub [u8; 20]);

impl Serial {
    /// From the content octets of a DER INTEGER. `None` for a negative or
    /// zero number or one longer than 20 octets: no certificate of this CA
    /// has such a serial.
    pub fn from_der_int(bytes: &[u8]) -> Option<Serial> {
        let first = *bytes.first()?;
        if first & 0x80 != 0 {
            return None;
        }
        let start = bytes.iter().position(|b| *b != 0)?;
        let digits = &bytes[start..];
        if digits.len() > 20 {
            return None;
        }
        let mut out = [0u8; 20];
        out[20 - digits.len()..].copy_from_slice(digits);
        Some(Serial(out))
    }

    /// From the lower-case hex the database stores.
    pub fn from_hex(hex: &str) -> Option<Serial> {
        let bytes = hex::decode(hex).ok()?;
        let start = bytes.iter().position(|b| *b != 0)?;
        let digits = &bytes[start..];
        if digits.len() > 20 {
            return None;
        }
        let mut out = [0u8; 20];
        out[20 - digits.len()..].copy_from_slice(digits);
        Some(Serial(out))
    }

    /// The significant octets (no leading zeros).
    pub fn digits(&self) -> &[u8] {
        let start = self.0.iter().position(|b| *b != 0).unwrap_or(19);
        &self.0[start..]
    }

    /// Lower-case hex as the database stores it.
    pub fn to_hex(&self) -> String {
        hex::encode(self.digits())
    }

    /// The x509-cert serial number (a positive integer).
    pub fn to_serial_number(&self) -> x509_cert::serial_number::SerialNumber {
        // Never fails: at most 20 octets, positive.
        x509_cert::serial_number::SerialNumber::new(self.digits())
            .unwrap_or_else(|_| x509_cert::serial_number::SerialNumber::from(1u8))
    }
}

/// One CertID of a request.
#[derive(Debug, Clone)]
pub struct RequestedId {
    /// As received: echoed in the answer.
    pub cert_id: CertId,
    pub alg: HashAlg,
    /// `None` when the number cannot be a serial of this CA.
    pub serial: Option<Serial>,
}

/// A parsed request.
#[derive(Debug, Clone)]
pub struct ParsedRequest {
    pub ids: Vec<RequestedId>,
    /// The nonce extension's `extnValue` exactly as received (to echo).
    pub nonce: Option<Vec<u8>>,
}

/// Limits on what a request may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most CertIDs in one request.
    pub max_cert_ids: usize,
    /// Longest nonce, in octets (RFC 9654: 128).
    pub max_nonce: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_cert_ids: 10,
            max_nonce: 128,
        }
    }
}

/// Why a request is refused (`malformedRequest`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("empty request")]
    Empty,
    #[error("not a DER OCSPRequest: {0}")]
    Der(String),
    #[error("the request has no CertID")]
    NoCertId,
    #[error("the request has {count} CertIDs (at most {max} accepted)")]
    TooManyCertIds { count: usize, max: usize },
    #[error("CertID hash algorithm {0} is not supported (SHA-1, SHA-256)")]
    UnsupportedHash(String),
    #[error("CertID issuer hash has {got} octets, {alg} has {want}")]
    HashLength {
        alg: &'static str,
        got: usize,
        want: usize,
    },
    #[error("nonce of {0} octets refused (RFC 9654: 1 to {1})")]
    NonceLength(usize, usize),
    #[error("the request repeats the nonce extension")]
    DuplicateNonce,
    #[error("unsupported critical request extension {0}")]
    CriticalExtension(String),
}

/// Parses a DER `OCSPRequest`.
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<ParsedRequest, RequestError> {
    if bytes.is_empty() {
        return Err(RequestError::Empty);
    }
    // Cheap checks before decoding: an outer SEQUENCE. The element count is
    // bounded by the byte limit of the HTTP layer, so decoding everything
    // is bounded too.
    if bytes[0] != 0x30 {
        return Err(RequestError::Der("not a SEQUENCE".into()));
    }
    let request = OcspRequest::from_der(bytes).map_err(|e| RequestError::Der(e.to_string()))?;
    let tbs = request.tbs_request;
    if tbs.request_list.is_empty() {
        return Err(RequestError::NoCertId);
    }
    if tbs.request_list.len() > limits.max_cert_ids {
        return Err(RequestError::TooManyCertIds {
            count: tbs.request_list.len(),
            max: limits.max_cert_ids,
        });
    }
    let mut ids = Vec::with_capacity(tbs.request_list.len());
    for r in tbs.request_list {
        let cert_id = r.req_cert;
        let alg = HashAlg::from_oid(&cert_id.hash_algorithm.oid)
            .ok_or_else(|| RequestError::UnsupportedHash(cert_id.hash_algorithm.oid.to_string()))?;
        for h in [&cert_id.issuer_name_hash, &cert_id.issuer_key_hash] {
            if h.as_bytes().len() != alg.digest_len() {
                return Err(RequestError::HashLength {
                    alg: alg.name(),
                    got: h.as_bytes().len(),
                    want: alg.digest_len(),
                });
            }
        }
        if let Some(exts) = &r.single_request_extensions {
            if let Some(e) = exts.iter().find(|e| e.critical) {
                return Err(RequestError::CriticalExtension(e.extn_id.to_string()));
            }
        }
        let serial = Serial::from_der_int(cert_id.serial_number.as_bytes());
        ids.push(RequestedId {
            cert_id,
            alg,
            serial,
        });
    }
    let mut nonce = None;
    if let Some(exts) = &tbs.request_extensions {
        for e in exts.iter() {
            if e.extn_id == ID_PKIX_OCSP_NONCE {
                if nonce.is_some() {
                    return Err(RequestError::DuplicateNonce);
                }
                let raw = e.extn_value.as_bytes();
                // RFC 9654: the value is a DER OCTET STRING; older clients
                // sent the bare octets. The length limit is on the nonce.
                let len = match OctetString::from_der(raw) {
                    Ok(inner) => inner.as_bytes().len(),
                    Err(_) => raw.len(),
                };
                if len == 0 || len > limits.max_nonce {
                    return Err(RequestError::NonceLength(len, limits.max_nonce));
                }
                nonce = Some(raw.to_vec());
            } else if e.critical {
                return Err(RequestError::CriticalExtension(e.extn_id.to_string()));
            }
        }
    }
    Ok(ParsedRequest { ids, nonce })
}

/// Decodes the path of a GET request (RFC 6960 appendix A.1, RFC 5019
/// §5): the URL-encoded base64 of the DER request. Accepts the standard
/// and the URL-safe alphabets, with or without padding.
pub fn decode_get_path(path: &str) -> Result<Vec<u8>, GetPathError> {
    use base64::Engine;
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| GetPathError::NotBase64)?;
    let text: String = decoded
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n'))
        .collect();
    if text.is_empty() {
        return Err(GetPathError::Empty);
    }
    let config = base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    let alphabet = if text.contains(['-', '_']) {
        &base64::alphabet::URL_SAFE
    } else {
        &base64::alphabet::STANDARD
    };
    base64::engine::GeneralPurpose::new(alphabet, config)
        .decode(text.as_bytes())
        .map_err(|_| GetPathError::NotBase64)
}

/// Why a GET path is not a request (HTTP 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GetPathError {
    #[error("no request in the URL path")]
    Empty,
    #[error("the URL path is not a base64 OCSP request")]
    NotBase64,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use der::asn1::Null;
    use der::Encode;
    use spki::AlgorithmIdentifierOwned;
    use x509_cert::ext::Extension;
    use x509_ocsp::{Request, TbsRequest};

    pub fn cert_id(alg: HashAlg, serial: &[u8]) -> CertId {
        CertId {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: alg.oid(),
                parameters: Some(Null.into()),
            },
            issuer_name_hash: OctetString::new(vec![1u8; alg.digest_len()]).unwrap(),
            issuer_key_hash: OctetString::new(vec![2u8; alg.digest_len()]).unwrap(),
            serial_number: x509_cert::serial_number::SerialNumber::new(serial).unwrap(),
        }
    }

    pub fn request_der(ids: Vec<CertId>, nonce: Option<Vec<u8>>) -> Vec<u8> {
        let request_extensions = nonce.map(|n| {
            vec![Extension {
                extn_id: ID_PKIX_OCSP_NONCE,
                critical: false,
                extn_value: OctetString::new(OctetString::new(n).unwrap().to_der().unwrap())
                    .unwrap(),
            }]
        });
        OcspRequest {
            tbs_request: TbsRequest {
                version: Default::default(),
                requestor_name: None,
                request_list: ids
                    .into_iter()
                    .map(|c| Request {
                        req_cert: c,
                        single_request_extensions: None,
                    })
                    .collect(),
                request_extensions,
            },
            optional_signature: None,
        }
        .to_der()
        .unwrap()
    }

    #[test]
    fn parses_a_request_with_nonce() {
        let der = request_der(
            vec![cert_id(HashAlg::Sha256, &[0x42; 20])],
            Some(vec![7; 16]),
        );
        let r = parse(&der, &Limits::default()).unwrap();
        assert_eq!(r.ids.len(), 1);
        assert_eq!(r.ids[0].alg, HashAlg::Sha256);
        assert_eq!(r.ids[0].serial, Some(Serial([0x42; 20])));
        let echoed = r.nonce.unwrap();
        assert_eq!(
            OctetString::from_der(&echoed).unwrap().as_bytes(),
            &[7u8; 16]
        );
    }

    #[test]
    fn refuses_what_rfc_9654_and_the_limits_refuse() {
        let limits = Limits::default();
        let long = request_der(vec![cert_id(HashAlg::Sha1, &[1])], Some(vec![0; 129]));
        assert_eq!(
            parse(&long, &limits).unwrap_err(),
            RequestError::NonceLength(129, 128)
        );
        let ok = request_der(vec![cert_id(HashAlg::Sha1, &[1])], Some(vec![0; 128]));
        assert!(parse(&ok, &limits).is_ok());
        let many = request_der(
            (0..11).map(|i| cert_id(HashAlg::Sha1, &[i + 1])).collect(),
            None,
        );
        assert!(matches!(
            parse(&many, &limits),
            Err(RequestError::TooManyCertIds { count: 11, max: 10 })
        ));
        assert_eq!(parse(&[], &limits).unwrap_err(), RequestError::Empty);
        assert!(matches!(
            parse(b"garbage", &limits),
            Err(RequestError::Der(_))
        ));
        let truncated = &ok[..ok.len() - 3];
        assert!(matches!(
            parse(truncated, &limits),
            Err(RequestError::Der(_))
        ));
    }

    #[test]
    fn refuses_unknown_hash_algorithms() {
        let mut id = cert_id(HashAlg::Sha1, &[1]);
        id.hash_algorithm.oid = const_oid::db::rfc5912::ID_SHA_384;
        let der = request_der(vec![id], None);
        assert!(matches!(
            parse(&der, &Limits::default()),
            Err(RequestError::UnsupportedHash(_))
        ));
    }

    #[test]
    fn serials_are_numbers() {
        assert_eq!(Serial::from_der_int(&[0x80]), None);
        assert_eq!(Serial::from_der_int(&[0]), None);
        assert_eq!(
            Serial::from_der_int(&[0, 0x80]).unwrap().digits(),
            &[0x80u8][..]
        );
        let s = Serial::from_hex("4a0b").unwrap();
        assert_eq!(s.to_hex(), "4a0b");
        assert_eq!(Serial::from_der_int(&[0x4a, 0x0b]), Some(s));
        assert_eq!(s.to_serial_number().as_bytes(), &[0x4a, 0x0b]);
    }

    #[test]
    fn get_paths_decode_both_alphabets() {
        assert_eq!(decode_get_path("AQID").unwrap(), vec![1, 2, 3]);
        assert_eq!(decode_get_path("MA%3D%3D").unwrap(), vec![0x30]);
        assert_eq!(decode_get_path("MA").unwrap(), vec![0x30]);
        assert_eq!(decode_get_path("-_8").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(decode_get_path("+/8=").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(decode_get_path("").unwrap_err(), GetPathError::Empty);
        assert_eq!(
            decode_get_path("not base64!").unwrap_err(),
            GetPathError::NotBase64
        );
        assert_eq!(
            decode_get_path("%ff%fe").unwrap_err(),
            GetPathError::NotBase64
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Any bytes: an answer or an error, never a panic.
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                let _ = parse(&bytes, &Limits::default());
            }

            /// A valid request with bytes flipped, cut or extended: never a panic.
            #[test]
            fn mutated_requests_never_panic(
                serial in proptest::collection::vec(any::<u8>(), 1..20),
                nonce in proptest::option::of(proptest::collection::vec(any::<u8>(), 1..160)),
                n in 1usize..4,
                flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
                cut in any::<usize>(),
                tail in proptest::collection::vec(any::<u8>(), 0..8),
            ) {
                let mut serial = serial;
                serial[0] &= 0x7f;
                if serial[0] == 0 { serial[0] = 1; }
                let ids = (0..n).map(|i| cert_id(if i % 2 == 0 { HashAlg::Sha1 } else { HashAlg::Sha256 }, &serial)).collect();
                let der = request_der(ids, nonce.clone());
                // Unchanged: parses, with the right nonce verdict.
                let parsed = parse(&der, &Limits::default());
                match &nonce {
                    Some(v) if v.len() > 128 => prop_assert!(matches!(parsed, Err(RequestError::NonceLength(..)))),
                    _ => prop_assert!(parsed.is_ok()),
                }
                let mut bytes = der.clone();
                for (at, x) in flips {
                    let len = bytes.len();
                    bytes[at % len] ^= x;
                }
                let _ = parse(&bytes, &Limits::default());
                let _ = parse(&der[..cut % der.len()], &Limits::default());
                let mut longer = der;
                longer.extend(tail);
                let _ = parse(&longer, &Limits::default());
            }

            /// Any text as a GET path: never a panic.
            #[test]
            fn get_paths_never_panic(path in ".{0,200}") {
                if let Ok(bytes) = decode_get_path(&path) {
                    let _ = parse(&bytes, &Limits::default());
                }
            }
        }
    }
}
