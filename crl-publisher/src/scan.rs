//! Reading a published CRL as a stream: its header fields and extensions,
//! and each entry's DER handed to a callback, without loading the list.
//! Used to read the base of a delta CRL (which entries it holds), to check
//! the number of the file a publication would replace, and by `pki-admin
//! crl show`.

use crate::encode::{
    OID_AUTHORITY_KEY_ID, OID_CRL_NUMBER, OID_DELTA_CRL_INDICATOR, OID_ISSUING_DISTRIBUTION_POINT,
};
use crate::error::{CrlError, Result};
use chrono::{DateTime, TimeZone, Utc};
use der::Decode;
use std::io::{BufReader, Read};
use std::path::Path;
use x509_cert::crl::RevokedCert;
use x509_cert::ext::pkix::AuthorityKeyIdentifier;
use x509_cert::ext::Extension;
use x509_cert::time::Time;

/// What a CRL says besides its entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// DER of the issuer Name.
    pub issuer: Vec<u8>,
    pub this_update: DateTime<Utc>,
    pub next_update: Option<DateTime<Utc>>,
    pub entries: u64,
    pub number: Option<i64>,
    /// Delta CRLs: the base CRL number.
    pub base_number: Option<i64>,
    pub authority_key_id: Option<Vec<u8>>,
    /// DER of the issuingDistributionPoint value.
    pub issuing_distribution_point: Option<Vec<u8>>,
}

struct Reader<R: Read> {
    r: R,
}

impl<R: Read> Reader<R> {
    fn byte(&mut self) -> Result<u8> {
        let mut b = [0u8; 1];
        self.r
            .read_exact(&mut b)
            .map_err(|e| CrlError::malformed(format!("truncated: {e}")))?;
        Ok(b[0])
    }

    /// Tag, length, and the number of octets the header took.
    fn header(&mut self) -> Result<(u8, usize, usize)> {
        let tag = self.byte()?;
        let first = self.byte()?;
        if first < 0x80 {
            return Ok((tag, first as usize, 2));
        }
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return Err(CrlError::malformed("unsupported length encoding"));
        }
        let mut len = 0usize;
        for _ in 0..n {
            len = (len << 8) | self.byte()? as usize;
        }
        Ok((tag, len, 2 + n))
    }

    fn value(&mut self, len: usize) -> Result<Vec<u8>> {
        let mut v = vec![0u8; len];
        self.r
            .read_exact(&mut v)
            .map_err(|e| CrlError::malformed(format!("truncated: {e}")))?;
        Ok(v)
    }

    fn skip(&mut self, len: usize) -> Result<()> {
        let copied = std::io::copy(&mut (&mut self.r).take(len as u64), &mut std::io::sink())
            .map_err(|e| CrlError::malformed(format!("truncated: {e}")))?;
        if copied as usize != len {
            return Err(CrlError::malformed("truncated"));
        }
        Ok(())
    }
}

fn with_header(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    pki_x509::der_header::push_header(&mut out, tag, value.len());
    out.extend_from_slice(value);
    out
}

fn time_of(tag: u8, value: &[u8]) -> Result<DateTime<Utc>> {
    let t = Time::from_der(&with_header(tag, value))?;
    let secs = t.to_unix_duration().as_secs() as i64;
    Utc.timestamp_opt(secs, 0)
        .single()
        .ok_or_else(|| CrlError::malformed("time out of range"))
}

/// A callback given the DER of each entry.
pub type OnEntry<'a> = &'a mut dyn FnMut(&[u8]) -> Result<()>;

/// Reads a CRL from `r`, calling `on_entry` with the DER of each entry
/// (`None`: the list is skipped and `entries` is left at 0).
pub fn scan<R: Read>(r: R, mut on_entry: Option<OnEntry<'_>>) -> Result<Summary> {
    let mut rd = Reader { r };
    let (tag, _, _) = rd.header()?;
    if tag != 0x30 {
        return Err(CrlError::malformed("not a SEQUENCE"));
    }
    let (tag, tbs_len, _) = rd.header()?;
    if tag != 0x30 {
        return Err(CrlError::malformed("TBSCertList is not a SEQUENCE"));
    }
    let mut left = tbs_len;
    let take = |rd: &mut Reader<R>, left: &mut usize| -> Result<(u8, usize)> {
        let (tag, len, h) = rd.header()?;
        *left = left
            .checked_sub(h + len)
            .ok_or_else(|| CrlError::malformed("element overruns TBSCertList"))?;
        Ok((tag, len))
    };
    let mut summary = Summary::default();
    let (mut tag, mut len) = take(&mut rd, &mut left)?;
    if tag == 0x02 {
        let v = rd.value(len)?;
        if v != [1] {
            return Err(CrlError::malformed("not a version 2 CRL"));
        }
        (tag, len) = take(&mut rd, &mut left)?;
    }
    if tag != 0x30 {
        return Err(CrlError::malformed("no signature algorithm"));
    }
    rd.skip(len)?;
    let (tag, len) = take(&mut rd, &mut left)?;
    if tag != 0x30 {
        return Err(CrlError::malformed("no issuer"));
    }
    summary.issuer = with_header(tag, &rd.value(len)?);
    let (tag, len) = take(&mut rd, &mut left)?;
    summary.this_update = time_of(tag, &rd.value(len)?)?;
    while left > 0 {
        let (tag, len) = take(&mut rd, &mut left)?;
        match tag {
            0x17 | 0x18 => summary.next_update = Some(time_of(tag, &rd.value(len)?)?),
            0x30 if on_entry.is_none() => rd.skip(len)?,
            0x30 => {
                let mut list_left = len;
                while list_left > 0 {
                    let (etag, elen, h) = rd.header()?;
                    if etag != 0x30 {
                        return Err(CrlError::malformed("entry is not a SEQUENCE"));
                    }
                    list_left = list_left
                        .checked_sub(h + elen)
                        .ok_or_else(|| CrlError::malformed("entry overruns the list"))?;
                    let entry = with_header(etag, &rd.value(elen)?);
                    if let Some(f) = on_entry.as_mut() {
                        f(&entry)?;
                    }
                    summary.entries += 1;
                }
            }
            0xa0 => {
                let v = rd.value(len)?;
                let exts = Vec::<Extension>::from_der(&v)?;
                for e in exts {
                    let value = e.extn_value.as_bytes();
                    if e.extn_id == OID_CRL_NUMBER {
                        summary.number = Some(i64::from_der(value)?);
                    } else if e.extn_id == OID_DELTA_CRL_INDICATOR {
                        summary.base_number = Some(i64::from_der(value)?);
                    } else if e.extn_id == OID_AUTHORITY_KEY_ID {
                        summary.authority_key_id = AuthorityKeyIdentifier::from_der(value)?
                            .key_identifier
                            .map(|k| k.as_bytes().to_vec());
                    } else if e.extn_id == OID_ISSUING_DISTRIBUTION_POINT {
                        summary.issuing_distribution_point = Some(value.to_vec());
                    }
                }
            }
            other => return Err(CrlError::malformed(format!("unexpected tag {other:#04x}"))),
        }
    }
    Ok(summary)
}

/// [`scan`] of a file.
pub fn scan_file(path: &Path, on_entry: Option<OnEntry<'_>>) -> Result<Summary> {
    let f = std::fs::File::open(path).map_err(|e| CrlError::io("cannot open", path, e))?;
    scan(BufReader::with_capacity(1 << 16, f), on_entry)
}

/// Tag, header length and content length of the DER element at the start of `b`.
pub fn tlv(b: &[u8]) -> Option<(u8, usize, usize)> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    if first < 0x80 {
        return Some((tag, 2, first as usize));
    }
    let n = (first & 0x7f) as usize;
    if n == 0 || n > 4 {
        return None;
    }
    let mut len = 0usize;
    for i in 0..n {
        len = (len << 8) | *b.get(2 + i)? as usize;
    }
    Some((tag, 2 + n, len))
}

/// The INTEGER content of an entry's serial number (no allocation).
pub fn entry_serial(entry: &[u8]) -> Result<&[u8]> {
    let bad = || CrlError::malformed("bad entry");
    let (_, h, _) = tlv(entry).ok_or_else(bad)?;
    let rest = &entry[h..];
    let (tag, h2, len) = tlv(rest).ok_or_else(bad)?;
    if tag != 0x02 {
        return Err(bad());
    }
    rest.get(h2..h2 + len).ok_or_else(bad)
}

/// One decoded entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// INTEGER content of the serial.
    pub serial: Vec<u8>,
    pub revocation_date: DateTime<Utc>,
    pub reason: Option<u8>,
    pub invalidity_date: Option<DateTime<Utc>>,
}

impl Entry {
    /// The serial as lower-case hex, as `certificates.serial` stores it.
    pub fn serial_hex(&self) -> String {
        let s = match self.serial.as_slice() {
            [0, rest @ ..] if !rest.is_empty() => rest,
            s => s,
        };
        hex::encode(s)
    }
}

/// Decodes one entry's DER.
pub fn parse_entry(entry: &[u8]) -> Result<Entry> {
    let e = RevokedCert::from_der(entry)?;
    let secs = e.revocation_date.to_unix_duration().as_secs() as i64;
    let mut out = Entry {
        serial: entry_serial(entry)?.to_vec(),
        revocation_date: Utc.timestamp_opt(secs, 0).single().unwrap_or_default(),
        reason: None,
        invalidity_date: None,
    };
    for x in e.crl_entry_extensions.unwrap_or_default() {
        let v = x.extn_value.as_bytes();
        if x.extn_id == crate::encode::OID_REASON_CODE {
            // ENUMERATED: 0a 01 rr
            if v.len() == 3 && v[0] == 0x0a && v[1] == 1 {
                out.reason = Some(v[2]);
            } else {
                return Err(CrlError::malformed("bad reasonCode"));
            }
        } else if x.extn_id == crate::encode::OID_INVALIDITY_DATE {
            let t = der::asn1::GeneralizedTime::from_der(v)?;
            let secs = t.to_unix_duration().as_secs() as i64;
            out.invalidity_date = Utc.timestamp_opt(secs, 0).single();
        }
    }
    Ok(out)
}

/// Name of a CRLReason code (the core's one code table).
pub fn reason_name(code: u8) -> &'static str {
    pki_store::domain::Reason::code_name(code)
}
