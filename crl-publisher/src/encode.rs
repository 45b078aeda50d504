//! DER of a CRL, written as a byte stream into one buffer.
//!
//! A CRL of a million entries is about 40 MB of DER; as owned x509-cert
//! structures it would be several times that, and encoding it would walk it
//! twice (once for the lengths, once for the bytes). Here each entry's DER is
//! appended to a [`CrlWriter`] as the entry is read from the database, and
//! nothing else about it is kept. The parts before the entries (version,
//! algorithm, issuer, times) and the length headers are written backwards
//! into a gap left at the start of the buffer once the entries are read (the
//! times are taken then: the CRL says what was known at its thisUpdate). The
//! signature is computed over that one contiguous TBSCertList and the
//! CertificateList is closed around it: the entries are never copied.
//!
//! Entries are encoded by hand (fixed shapes: serial, time, reasonCode,
//! invalidityDate); the few CRL extensions use x509-cert types where they
//! exist. The unit tests decode the result with x509-cert.

use crate::error::{CrlError, Result};
use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};
use const_oid::ObjectIdentifier as Oid;
use der::asn1::OctetString;
use der::Encode;
use pki_keys::Signer;
use pki_x509::der_header::{len_len, push_header};
use x509_cert::ext::pkix::AuthorityKeyIdentifier;
use x509_cert::ext::Extension;

pub const OID_CRL_NUMBER: Oid = Oid::new_unwrap("2.5.29.20");
pub const OID_REASON_CODE: Oid = Oid::new_unwrap("2.5.29.21");
pub const OID_INVALIDITY_DATE: Oid = Oid::new_unwrap("2.5.29.24");
pub const OID_DELTA_CRL_INDICATOR: Oid = Oid::new_unwrap("2.5.29.27");
pub const OID_ISSUING_DISTRIBUTION_POINT: Oid = Oid::new_unwrap("2.5.29.28");
pub const OID_AUTHORITY_KEY_ID: Oid = Oid::new_unwrap("2.5.29.35");
pub const OID_FRESHEST_CRL: Oid = Oid::new_unwrap("2.5.29.46");

/// CRLReason removeFromCRL (delta CRLs only).
pub const REASON_REMOVE_FROM_CRL: u8 = 8;

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_UTC_TIME: u8 = 0x17;
const TAG_GENERALIZED_TIME: u8 = 0x18;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_EXPLICIT_0: u8 = 0xa0;

/// reasonCode extension: `SEQUENCE { OID 2.5.29.21, OCTET STRING { ENUMERATED r } }`
/// without its last octet (the reason).
const REASON_EXT_PREFIX: [u8; 11] = [
    0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01,
];
/// invalidityDate extension up to its GeneralizedTime's 15 characters.
const INVALIDITY_EXT_PREFIX: [u8; 11] = [
    0x30, 0x18, 0x06, 0x03, 0x55, 0x1d, 0x18, 0x04, 0x11, 0x18, 0x0f,
];
const REASON_EXT_LEN: usize = 12;
const INVALIDITY_EXT_LEN: usize = 26;

/// Writes a tag and a length so that they end at `end`; returns where they start.
fn header_before(buf: &mut [u8], end: usize, tag: u8, len: usize) -> usize {
    let mut tmp = Vec::with_capacity(6);
    push_header(&mut tmp, tag, len);
    let start = end - tmp.len();
    buf[start..end].copy_from_slice(&tmp);
    start
}

fn push_digits(out: &mut Vec<u8>, value: u32, digits: u32) {
    for i in (0..digits).rev() {
        out.push(b'0' + ((value / 10u32.pow(i)) % 10) as u8);
    }
}

fn push_time_digits(out: &mut Vec<u8>, t: &NaiveDateTime, year_digits: u32) {
    push_digits(out, t.year() as u32, year_digits);
    push_digits(out, t.month(), 2);
    push_digits(out, t.day(), 2);
    push_digits(out, t.hour(), 2);
    push_digits(out, t.minute(), 2);
    push_digits(out, t.second(), 2);
    out.push(b'Z');
}

fn check_year(t: &NaiveDateTime) -> Result<()> {
    if (1950..=9999).contains(&t.year()) {
        Ok(())
    } else {
        Err(pki_x509::time::TimeError(t.and_utc()).into())
    }
}

/// An RFC 5280 Time (whole seconds): UTCTime through 2049, GeneralizedTime after.
pub fn push_time(out: &mut Vec<u8>, t: &NaiveDateTime) -> Result<()> {
    check_year(t)?;
    if t.year() < 2050 {
        out.extend_from_slice(&[TAG_UTC_TIME, 13]);
        push_time_digits(out, t, 2);
    } else {
        out.extend_from_slice(&[TAG_GENERALIZED_TIME, 15]);
        push_time_digits(out, t, 4);
    }
    Ok(())
}

fn time_len(t: &NaiveDateTime) -> usize {
    if t.year() < 2050 {
        15
    } else {
        17
    }
}

/// The minimal two's-complement content of a positive INTEGER given as
/// big-endian unsigned octets (written into `out`, returned as a slice).
pub fn integer_content<'a>(unsigned: &[u8], out: &'a mut [u8; 22]) -> Result<&'a [u8]> {
    let first = unsigned
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(unsigned.len().saturating_sub(1));
    let digits = if unsigned.is_empty() {
        &[0u8][..]
    } else {
        &unsigned[first..]
    };
    let pad = usize::from(digits[0] & 0x80 != 0);
    let len = digits.len() + pad;
    if len > out.len() {
        return Err(CrlError::malformed("serial number longer than 21 octets"));
    }
    out[0] = 0;
    out[pad..len].copy_from_slice(digits);
    Ok(&out[..len])
}

/// Hex digit values; 0xff for anything else.
const HEX: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Decodes a serial stored as hex (as `certificates.serial`) into INTEGER content.
pub fn serial_from_hex<'a>(hex_serial: &str, out: &'a mut [u8; 22]) -> Result<&'a [u8]> {
    let bad = |message: &str| CrlError::BadRow {
        serial: hex_serial.to_string(),
        message: message.to_string(),
    };
    let digits = hex_serial.as_bytes();
    let n = digits.len().div_ceil(2);
    if n == 0 || n > 21 {
        return Err(bad("serial is not 1 to 20 octets of hex"));
    }
    let mut raw = [0u8; 21];
    let odd = digits.len() % 2;
    let mut ok = true;
    for (i, byte) in raw[..n].iter_mut().enumerate() {
        let hi = if i == 0 && odd == 1 {
            0
        } else {
            HEX[usize::from(digits[2 * i - odd])]
        };
        let lo = HEX[usize::from(digits[2 * i + 1 - odd])];
        ok &= hi | lo < 16;
        *byte = hi << 4 | (lo & 15);
    }
    if !ok {
        return Err(bad("serial is not hex"));
    }
    integer_content(&raw[..n], out)
}

/// What one CRL entry says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryData<'a> {
    /// INTEGER content of the serial number (minimal, positive).
    pub serial: &'a [u8],
    pub revocation_date: NaiveDateTime,
    /// CRLReason code; `None` = no reasonCode extension.
    pub reason: Option<u8>,
    pub invalidity_date: Option<NaiveDateTime>,
}

/// Appends the DER of one revokedCertificates entry.
pub fn push_entry(out: &mut Vec<u8>, e: &EntryData<'_>) -> Result<()> {
    let serial_len = 1 + len_len(e.serial.len()) + e.serial.len();
    let exts_content = e.reason.map_or(0, |_| REASON_EXT_LEN)
        + e.invalidity_date.map_or(0, |_| INVALIDITY_EXT_LEN);
    let exts_len = if exts_content == 0 {
        0
    } else {
        1 + len_len(exts_content) + exts_content
    };
    let content = serial_len + time_len(&e.revocation_date) + exts_len;
    push_header(out, TAG_SEQUENCE, content);
    push_header(out, TAG_INTEGER, e.serial.len());
    out.extend_from_slice(e.serial);
    push_time(out, &e.revocation_date)?;
    if exts_content > 0 {
        push_header(out, TAG_SEQUENCE, exts_content);
        if let Some(reason) = e.reason {
            out.extend_from_slice(&REASON_EXT_PREFIX);
            out.push(reason);
        }
        if let Some(t) = &e.invalidity_date {
            check_year(t)?;
            out.extend_from_slice(&INVALIDITY_EXT_PREFIX);
            push_time_digits(out, t, 4);
        }
    }
    Ok(())
}

/// The CRL-level facts that become extensions.
#[derive(Debug, Clone)]
pub struct CrlExtensions<'a> {
    /// The issuer's subject key identifier.
    pub authority_key_id: &'a [u8],
    pub number: i64,
    /// A delta CRL: the number of its base.
    pub base_number: Option<i64>,
    /// The distribution point URL this CRL covers (issuingDistributionPoint);
    /// `None` for the ARL, which covers every CA certificate of its issuer.
    pub distribution_point: Option<&'a str>,
    /// ARL: onlyContainsCACerts.
    pub only_ca_certs: bool,
    /// Complete CRLs with deltas: the delta CRL's URL (freshestCRL).
    pub freshest: Option<&'a str>,
}

fn extension(oid: Oid, critical: bool, value: Vec<u8>) -> Result<Extension> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value)?,
    })
}

/// `IssuingDistributionPoint ::= SEQUENCE { distributionPoint [0] { fullName [0] { URI } }
/// OPTIONAL, onlyContainsCACerts [2] BOOLEAN DEFAULT FALSE }` (DER leaves FALSE out).
pub fn issuing_distribution_point(url: Option<&str>, only_ca_certs: bool) -> Vec<u8> {
    let mut body = Vec::new();
    if let Some(url) = url {
        let uri_len = 1 + len_len(url.len()) + url.len();
        let full_name_len = 1 + len_len(uri_len) + uri_len;
        push_header(&mut body, 0xa0, full_name_len);
        push_header(&mut body, 0xa0, uri_len);
        push_header(&mut body, 0x86, url.len());
        body.extend_from_slice(url.as_bytes());
    }
    if only_ca_certs {
        body.extend_from_slice(&[0x82, 0x01, 0xff]);
    }
    let mut out = Vec::with_capacity(body.len() + 6);
    push_header(&mut out, TAG_SEQUENCE, body.len());
    out.extend_from_slice(&body);
    out
}

/// `[0] EXPLICIT Extensions` of a TBSCertList.
pub fn crl_extensions(x: &CrlExtensions<'_>) -> Result<Vec<u8>> {
    let mut exts = vec![
        extension(
            OID_AUTHORITY_KEY_ID,
            false,
            AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(x.authority_key_id)?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            }
            .to_der()?,
        )?,
        extension(OID_CRL_NUMBER, false, x.number.to_der()?)?,
    ];
    if let Some(base) = x.base_number {
        exts.push(extension(OID_DELTA_CRL_INDICATOR, true, base.to_der()?)?);
    }
    exts.push(extension(
        OID_ISSUING_DISTRIBUTION_POINT,
        true,
        issuing_distribution_point(x.distribution_point, x.only_ca_certs),
    )?);
    if let Some(url) = x.freshest {
        let dp = pki_x509::ext::crl_distribution_point(url)?;
        exts.push(extension(
            OID_FRESHEST_CRL,
            false,
            dp.extn_value.as_bytes().to_vec(),
        )?);
    }
    let seq = exts.to_der()?;
    let mut out = Vec::with_capacity(seq.len() + 6);
    push_header(&mut out, TAG_EXPLICIT_0, seq.len());
    out.extend_from_slice(&seq);
    Ok(out)
}

/// A finished CRL: its DER is `buf[start..]`.
#[derive(Debug, Clone)]
pub struct CrlDer {
    pub buf: Vec<u8>,
    pub start: usize,
}

impl CrlDer {
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    pub fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The DER as shared bytes, without copying.
    pub fn into_bytes(self) -> bytes::Bytes {
        bytes::Bytes::from(self.buf).slice(self.start..)
    }
}

/// Room left before the known prefix for the TBS, list and outer headers.
const HEADER_GAP: usize = 3 * 6;

/// Streams entries into a CRL and signs it.
pub struct CrlWriter {
    buf: Vec<u8>,
    algorithm: Vec<u8>,
    issuer: Vec<u8>,
    entries_start: usize,
    entries: u64,
}

impl CrlWriter {
    /// `algorithm`: the DER AlgorithmIdentifier of the signature;
    /// `issuer`: the DER Name; `capacity`: expected size of the entries.
    pub fn new(algorithm: &[u8], issuer: &[u8], capacity: usize) -> Self {
        // version, algorithm, issuer, two times of at most 17 octets.
        let prefix_max = 3 + algorithm.len() + issuer.len() + 2 * 17;
        let entries_start = HEADER_GAP + prefix_max;
        let mut buf = Vec::with_capacity(entries_start + capacity + 1024);
        buf.resize(entries_start, 0);
        Self {
            buf,
            algorithm: algorithm.to_vec(),
            issuer: issuer.to_vec(),
            entries_start,
            entries: 0,
        }
    }

    /// Appends one entry (entries must come in the order they are to be listed).
    pub fn push(&mut self, entry: &EntryData<'_>) -> Result<()> {
        push_entry(&mut self.buf, entry)?;
        self.entries += 1;
        Ok(())
    }

    /// Appends one entry written by `f` (which must write exactly one entry).
    pub fn push_with(&mut self, f: impl FnOnce(&mut Vec<u8>) -> Result<()>) -> Result<()> {
        f(&mut self.buf)?;
        self.entries += 1;
        Ok(())
    }

    /// Appends the entries `f` writes; `f` returns how many it wrote.
    pub fn push_with_count(&mut self, f: impl FnOnce(&mut Vec<u8>) -> Result<u64>) -> Result<()> {
        self.entries += f(&mut self.buf)?;
        Ok(())
    }

    /// Appends entries that are already DER (`count` of them).
    pub fn extend_der(&mut self, entries: &[u8], count: u64) {
        self.buf.extend_from_slice(entries);
        self.entries += count;
    }

    /// Appends an entry that is already DER.
    pub fn push_der(&mut self, entry: &[u8]) {
        self.buf.extend_from_slice(entry);
        self.entries += 1;
    }

    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Bytes of entries so far.
    pub fn entries_len(&self) -> usize {
        self.buf.len() - self.entries_start
    }

    /// Adds the times (known only now that the entries are read) and the
    /// extensions, signs, and returns the CertificateList.
    pub fn finish(
        mut self,
        this_update: &DateTime<Utc>,
        next_update: &DateTime<Utc>,
        extensions: &[u8],
        signer: &dyn Signer,
    ) -> Result<CrlDer> {
        let mut prefix = Vec::with_capacity(self.entries_start);
        prefix.extend_from_slice(&[TAG_INTEGER, 1, 1]); // version v2
        prefix.extend_from_slice(&self.algorithm);
        prefix.extend_from_slice(&self.issuer);
        push_time(&mut prefix, &this_update.naive_utc())?;
        push_time(&mut prefix, &next_update.naive_utc())?;
        let entries_len = self.entries_len();
        let mut at = self.entries_start;
        if self.entries > 0 {
            at = header_before(&mut self.buf, at, TAG_SEQUENCE, entries_len);
        } else if entries_len != 0 {
            return Err(CrlError::malformed("entry bytes without entries"));
        }
        at -= prefix.len();
        self.buf[at..at + prefix.len()].copy_from_slice(&prefix);
        self.buf.extend_from_slice(extensions);
        let tbs_len = self.buf.len() - at;
        let tbs_start = header_before(&mut self.buf, at, TAG_SEQUENCE, tbs_len);
        let signature = signer.sign(&self.buf[tbs_start..])?;
        let algorithm = signer.algorithm().identifier().to_der()?;
        self.buf.extend_from_slice(&algorithm);
        push_header(&mut self.buf, TAG_BIT_STRING, signature.len() + 1);
        self.buf.push(0);
        self.buf.extend_from_slice(&signature);
        let total = self.buf.len() - tbs_start;
        let start = header_before(&mut self.buf, tbs_start, TAG_SEQUENCE, total);
        Ok(CrlDer {
            buf: self.buf,
            start,
        })
    }
}

/// The DER of an OCTET STRING (used by tests and the scanner).
pub fn octet_string(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    push_header(&mut out, TAG_OCTET_STRING, content.len());
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use der::Decode;
    use pki_keys::{SignatureAlgorithm, SoftwareKey};
    use x509_cert::crl::CertificateList;

    fn t(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .unwrap()
            .naive_utc()
    }

    #[test]
    fn integers_are_minimal_and_positive() {
        let mut out = [0u8; 22];
        assert_eq!(integer_content(&[0, 0, 5], &mut out).unwrap(), &[5]);
        assert_eq!(integer_content(&[0x80], &mut out).unwrap(), &[0, 0x80]);
        assert_eq!(integer_content(&[0], &mut out).unwrap(), &[0]);
        assert_eq!(serial_from_hex("4aff", &mut out).unwrap(), &[0x4a, 0xff]);
        assert_eq!(serial_from_hex("fff", &mut out).unwrap(), &[0x0f, 0xff]);
        assert!(serial_from_hex("zz", &mut out).is_err());
    }

    #[test]
    fn times_switch_to_generalized_in_2050() {
        let mut out = Vec::new();
        push_time(&mut out, &t(2049, 12, 31, 23, 59, 59)).unwrap();
        assert_eq!(&out[..2], &[0x17, 13]);
        assert_eq!(&out[2..], b"491231235959Z");
        out.clear();
        push_time(&mut out, &t(2050, 1, 1, 0, 0, 0)).unwrap();
        assert_eq!(&out[2..], b"20500101000000Z");
    }

    #[test]
    fn a_signed_crl_decodes_with_x509_cert() {
        let (key, _) = SoftwareKey::generate(SignatureAlgorithm::EcdsaP384Sha384).unwrap();
        let issuer = pki_x509::name::authority("MC", "Org", "Test CA").unwrap();
        let issuer_der = issuer.to_der().unwrap();
        let alg = key.algorithm().identifier().to_der().unwrap();
        let this = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
        let next = this + chrono::Duration::hours(24);
        let mut w = CrlWriter::new(&alg, &issuer_der, 0);
        let mut s = [0u8; 22];
        for (i, (reason, inv)) in [
            (Some(1u8), Some(t(2026, 11, 1, 0, 0, 0))),
            (None, None),
            (
                Some(pki_store::domain::Reason::CertificateHold.code()),
                None,
            ),
            (None, Some(t(2026, 10, 1, 12, 0, 0))),
        ]
        .into_iter()
        .enumerate()
        {
            let serial = serial_from_hex(&format!("4{i}00aa"), &mut s)
                .unwrap()
                .to_vec();
            w.push(&EntryData {
                serial: &serial,
                revocation_date: t(2026, 11, 20, 8, 30, i as u32),
                reason,
                invalidity_date: inv,
            })
            .unwrap();
        }
        let exts = crl_extensions(&CrlExtensions {
            authority_key_id: &[1, 2, 3],
            number: 300,
            base_number: Some(299),
            distribution_point: Some("http://pki.example.com/eid/crl/x.crl"),
            only_ca_certs: false,
            freshest: Some("http://pki.example.com/eid/crl/x-delta.crl"),
        })
        .unwrap();
        let der = w.finish(&this, &next, &exts, &key).unwrap();
        let crl = CertificateList::from_der(der.as_bytes()).unwrap();
        assert_eq!(crl.tbs_cert_list.issuer, issuer);
        assert_eq!(
            pki_x509::time::from_x509(&crl.tbs_cert_list.this_update),
            this
        );
        let revoked = crl.tbs_cert_list.revoked_certificates.as_ref().unwrap();
        assert_eq!(revoked.len(), 4);
        assert!(revoked[1].crl_entry_extensions.is_none());
        assert_eq!(revoked[0].crl_entry_extensions.as_ref().unwrap().len(), 2);
        let exts = crl.tbs_cert_list.crl_extensions.as_ref().unwrap();
        assert_eq!(exts.len(), 5);
        // The signature verifies over the TBS bytes as re-encoded by x509-cert.
        let tbs = crl.tbs_cert_list.to_der().unwrap();
        let spki = spki::SubjectPublicKeyInfoRef::from_der(key.public_key_der()).unwrap();
        aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1,
            spki.subject_public_key.raw_bytes(),
        )
        .verify(&tbs, crl.signature.raw_bytes())
        .unwrap();
    }

    #[test]
    fn no_entries_means_no_list() {
        let (key, _) = SoftwareKey::generate(SignatureAlgorithm::EcdsaP384Sha384).unwrap();
        let issuer = pki_x509::name::authority("MC", "Org", "Test CA").unwrap();
        let alg = key.algorithm().identifier().to_der().unwrap();
        let this = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
        let w = CrlWriter::new(&alg, &issuer.to_der().unwrap(), 0);
        let exts = crl_extensions(&CrlExtensions {
            authority_key_id: &[9],
            number: 1,
            base_number: None,
            distribution_point: None,
            only_ca_certs: true,
            freshest: None,
        })
        .unwrap();
        let far = Utc.with_ymd_and_hms(2051, 1, 1, 0, 0, 0).unwrap();
        let der = w.finish(&this, &far, &exts, &key).unwrap();
        let crl = CertificateList::from_der(der.as_bytes()).unwrap();
        assert!(crl.tbs_cert_list.revoked_certificates.is_none());
        assert!(matches!(
            crl.tbs_cert_list.next_update,
            Some(x509_cert::time::Time::GeneralTime(_))
        ));
        let idp = x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint::from_der(
            crl.tbs_cert_list.crl_extensions.unwrap()[2]
                .extn_value
                .as_bytes(),
        )
        .unwrap();
        assert!(idp.only_contains_ca_certs);
        assert!(idp.distribution_point.is_none());
        assert!(!idp.only_contains_user_certs);
    }
}
