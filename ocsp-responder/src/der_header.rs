//! DER headers written by hand: the responder assembles signed answers
//! from parts it already holds (the responder's certificate, pre-encoded
//! response data) without decoding and re-encoding them, which the `der`
//! crate's owned types would do; only tags and lengths are written here.

pub fn header_len(len: usize) -> usize {
    match len {
        0..=0x7f => 2,
        0x80..=0xff => 3,
        0x100..=0xffff => 4,
        0x1_0000..=0xff_ffff => 5,
        _ => 6,
    }
}

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

/// `[0] EXPLICIT SEQUENCE OF Certificate` holding one certificate: the
/// `certs` field of every response a responder signs.
pub fn certs_field(cert_der: &[u8]) -> Vec<u8> {
    let seq_len = cert_der.len();
    let inner = header_len(seq_len) + seq_len;
    let mut out = Vec::with_capacity(header_len(inner) + inner);
    push_header(&mut out, 0xa0, inner);
    push_header(&mut out, 0x30, seq_len);
    out.extend_from_slice(cert_der);
    out
}
