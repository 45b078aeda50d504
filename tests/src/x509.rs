//! Certificates decoded and verified with the `openssl` command line.

use crate::*;
use chrono::NaiveDateTime;

// ---------------------------------------------------------------------------
// Certificates: openssl decoding and verification
// ---------------------------------------------------------------------------

/// The PEM blocks of a PEM bundle, each with its armour.
pub fn split_pems(bundle: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    bundle
        .split_inclusive(END)
        .filter(|part| part.contains(END))
        .map(|part| format!("{}\n", part.trim_start()))
        .collect()
}

/// `openssl x509 -text` of a certificate file.
pub fn x509_text(cert: &Path) -> String {
    let out = openssl(&[
        os("x509"),
        os("-in"),
        cert.as_os_str(),
        os("-noout"),
        os("-text"),
    ]);
    stdout_str(&out)
}

fn parse_openssl_time(text: &str, label: &str) -> DateTime<Utc> {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} in openssl output:\n{text}"));
    let value = line.split_once(':').expect("label colon").1;
    let normalised = value.split_whitespace().collect::<Vec<_>>().join(" ");
    NaiveDateTime::parse_from_str(&normalised, "%b %d %H:%M:%S %Y GMT")
        .unwrap_or_else(|e| panic!("cannot parse {label} {normalised:?}: {e}"))
        .and_utc()
}

/// notBefore as printed by `openssl x509 -text`.
pub fn not_before(text: &str) -> DateTime<Utc> {
    parse_openssl_time(text, "Not Before")
}

/// notAfter as printed by `openssl x509 -text`.
pub fn not_after(text: &str) -> DateTime<Utc> {
    parse_openssl_time(text, "Not After")
}

/// The serial number as uppercase hex digits (`openssl x509 -serial`);
/// a negative serial keeps its `-`.
pub fn serial_hex(cert: &Path) -> String {
    let out = openssl(&[
        os("x509"),
        os("-in"),
        cert.as_os_str(),
        os("-noout"),
        os("-serial"),
    ]);
    stdout_str(&out)
        .trim()
        .trim_start_matches("serial=")
        .to_uppercase()
}

/// Number of significant bits of a hex number.
pub fn hex_bit_length(hex: &str) -> usize {
    let digits = hex.trim_start_matches('0');
    match digits.chars().next() {
        None => 0,
        Some(c) => {
            let top = c.to_digit(16).expect("hex digit");
            (digits.len() - 1) * 4 + (32 - top.leading_zeros() as usize)
        }
    }
}

/// Normalises a serial written as hex (any case, with or without `:`/`0x`).
pub fn normalise_serial(s: &str) -> String {
    let s = s.trim().trim_start_matches("0x").trim_start_matches("0X");
    let hex: String = s
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_uppercase();
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.into()
    }
}

/// Subject attributes `(long name, value)` in order, UTF-8.
pub fn subject_attrs(cert: &Path) -> Vec<(String, String)> {
    let out = openssl(&[
        os("x509"),
        os("-in"),
        cert.as_os_str(),
        os("-noout"),
        os("-subject"),
        os("-nameopt"),
        os("sep_multiline,lname,utf8,esc_ctrl"),
    ]);
    stdout_str(&out)
        .lines()
        .skip(1)
        .filter_map(|l| {
            l.trim()
                .split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// The one value of a subject attribute (panics if absent or repeated).
#[track_caller]
pub fn subject_attr<'a>(attrs: &'a [(String, String)], name: &str) -> &'a str {
    let found: Vec<&str> = attrs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {name} in subject {attrs:?}"
    );
    found[0]
}

/// The public key (PEM SubjectPublicKeyInfo) of a certificate.
pub fn cert_public_key(cert: &Path) -> String {
    stdout_str(&openssl(&[
        os("x509"),
        os("-in"),
        cert.as_os_str(),
        os("-noout"),
        os("-pubkey"),
    ]))
}

/// The public key (PEM SubjectPublicKeyInfo) of a PEM or DER CSR.
pub fn csr_public_key(csr: &Path) -> String {
    stdout_str(&openssl(&[
        os("req"),
        os("-in"),
        csr.as_os_str(),
        os("-noout"),
        os("-pubkey"),
    ]))
}

/// `openssl verify -CAfile root [-untrusted intermediate] cert` must say OK;
/// then the same with `-x509_strict` (RFC 5280 checks of OpenSSL).
#[track_caller]
pub fn openssl_verify(root: &Path, intermediate: Option<&Path>, cert: &Path) {
    for strict in [false, true] {
        let mut args: Vec<&OsStr> = vec![os("verify")];
        if strict {
            args.push(os("-x509_strict"));
        }
        args.extend([os("-CAfile"), root.as_os_str()]);
        if let Some(i) = intermediate {
            args.extend([os("-untrusted"), i.as_os_str()]);
        }
        args.push(cert.as_os_str());
        let out = output_of(Command::new("openssl").args(&args), "openssl verify");
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(
            out.status.success() && stdout_str(&out).trim_end().ends_with(": OK"),
            "chain does not verify\n{}",
            describe(&format!("openssl {}", shown.join(" ")), &out)
        );
    }
}
