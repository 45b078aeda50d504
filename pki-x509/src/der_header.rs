//! DER tags and lengths written by hand, for the two places that assemble
//! DER from parts they already hold instead of building owned `der` values:
//! the OCSP responder (signed answers around pre-encoded response data and
//! the responder's certificate) and the CRL publisher (millions of entries
//! streamed into one buffer). Decoding and re-encoding those parts with the
//! `der` crate's owned types would cost a copy per part; only the header
//! rule (X.690 8.1.3, definite form) is written here, once.

/// Octets of the length field for a content of `len` octets.
#[inline]
pub fn len_len(len: usize) -> usize {
    match len {
        0..=0x7f => 1,
        0x80..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xff_ffff => 4,
        _ => 5,
    }
}

/// Octets of a one-octet tag and the length field.
#[inline]
pub fn header_len(len: usize) -> usize {
    1 + len_len(len)
}

/// Appends a one-octet tag and the length of a content of `len` octets.
#[inline]
pub fn push_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    match len {
        0..=0x7f => out.push(len as u8),
        0x80..=0xff => out.extend_from_slice(&[0x81, len as u8]),
        0x100..=0xffff => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
        0x1_0000..=0xff_ffff => {
            out.extend_from_slice(&[0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8])
        }
        _ => out.extend_from_slice(&[
            0x84,
            (len >> 24) as u8,
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Encode;

    /// The hand-written header agrees with the `der` crate's at every
    /// length-field size.
    #[test]
    fn headers_match_the_der_crate() {
        for len in [
            0usize, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x1_0000, 0x12_3456,
        ] {
            let value = der::asn1::OctetString::new(vec![0u8; len]).unwrap();
            let encoded = value.to_der().unwrap();
            let mut ours = Vec::new();
            push_header(&mut ours, 0x04, len);
            assert_eq!(ours.len(), header_len(len), "len {len}");
            assert_eq!(ours, encoded[..ours.len()], "len {len}");
            assert_eq!(encoded.len(), header_len(len) + len, "len {len}");
        }
    }
}
