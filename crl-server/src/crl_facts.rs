//! What the server needs to know of a CRL file to serve it with caching
//! headers: CRL number, thisUpdate, nextUpdate, number of entries. Read
//! with the der crate without decoding the entries (each is skipped as one
//! TLV), so a large CRL costs one pass over its bytes.

use chrono::{DateTime, Utc};
use der::asn1::{AnyRef, ContextSpecific, UintRef};
use der::{Decode, Reader, SliceReader, Tag, TagNumber, Tagged};
use x509_cert::ext::Extensions;
use x509_cert::time::Time;

/// The facts of one CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlFacts {
    pub number: Option<u64>,
    pub this_update: DateTime<Utc>,
    pub next_update: Option<DateTime<Utc>>,
    pub entries: u64,
}

fn time(t: Time) -> DateTime<Utc> {
    DateTime::from_timestamp(t.to_unix_duration().as_secs() as i64, 0).unwrap_or_default()
}

fn is_time(tag: Tag) -> bool {
    matches!(tag, Tag::UtcTime | Tag::GeneralizedTime)
}

/// Reads the facts of a DER CertificateList.
pub fn read(der: &[u8]) -> der::Result<CrlFacts> {
    let list: AnyRef<'_> = AnyRef::from_der(der)?;
    list.tag().assert_eq(Tag::Sequence)?;
    let mut outer = SliceReader::new(list.value())?;
    let tbs: AnyRef<'_> = outer.decode()?;
    tbs.tag().assert_eq(Tag::Sequence)?;
    let mut r = SliceReader::new(tbs.value())?;
    if r.peek_tag()? == Tag::Integer {
        let _version: u8 = r.decode()?;
    }
    let _signature: AnyRef<'_> = r.decode()?;
    let _issuer: AnyRef<'_> = r.decode()?;
    let this_update = time(r.decode()?);
    let mut next_update = None;
    if !r.is_finished() && is_time(r.peek_tag()?) {
        next_update = Some(time(r.decode()?));
    }
    let mut entries = 0;
    if !r.is_finished() && r.peek_tag()? == Tag::Sequence {
        let list: AnyRef<'_> = r.decode()?;
        let mut l = SliceReader::new(list.value())?;
        while !l.is_finished() {
            let _entry: AnyRef<'_> = l.decode()?;
            entries += 1;
        }
    }
    let mut number = None;
    if !r.is_finished() {
        if let Some(exts) = ContextSpecific::<Extensions>::decode_explicit(&mut r, TagNumber::N0)? {
            for e in exts.value {
                if e.extn_id == const_oid::db::rfc5280::ID_CE_CRL_NUMBER {
                    let n = UintRef::from_der(e.extn_value.as_bytes())?;
                    let bytes = n.as_bytes();
                    if bytes.len() <= 8 {
                        number = Some(bytes.iter().fold(0u64, |a, b| (a << 8) | *b as u64));
                    }
                }
            }
        }
    }
    Ok(CrlFacts {
        number,
        this_update,
        next_update,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(read(b"").is_err());
        assert!(read(&[0x30, 0x03, 0x02, 0x01, 0x01]).is_err());
        assert!(read(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
