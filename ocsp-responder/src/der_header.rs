//! The `certs` field of the responder's answers, assembled around the
//! responder's certificate without re-encoding it (the header rule is
//! `pki_x509::der_header`, shared with the CRL publisher).

use pki_x509::der_header::{header_len, push_header};

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
