//! CSRs made by the real `openssl req`, good and bad.

use crate::*;

// ---------------------------------------------------------------------------
// CSRs made by `openssl req`
// ---------------------------------------------------------------------------

/// Key types of the CSRs the tests send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    EcP256,
    /// P-384 key, CSR signed with SHA-384.
    EcP384Sha384,
    /// P-384 key, CSR signed with SHA-256 (`openssl req`'s default).
    EcP384Sha256,
    Rsa2048,
    Rsa3072,
    /// Refused: too short.
    Rsa1024,
    /// Refused: curve not in any profile.
    EcSecp256k1,
    /// Refused for card certificates (no end-entity profile lists ec-p521).
    EcP521,
}

impl KeyType {
    /// The key types every card profile (auth, sign) accepts.
    pub const ACCEPTED: [KeyType; 5] = [
        KeyType::EcP256,
        KeyType::EcP384Sha384,
        KeyType::EcP384Sha256,
        KeyType::Rsa2048,
        KeyType::Rsa3072,
    ];

    pub fn label(self) -> &'static str {
        match self {
            KeyType::EcP256 => "ec-p256",
            KeyType::EcP384Sha384 => "ec-p384-sha384",
            KeyType::EcP384Sha256 => "ec-p384-sha256",
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa1024 => "rsa-1024",
            KeyType::EcSecp256k1 => "ec-secp256k1",
            KeyType::EcP521 => "ec-p521",
        }
    }

    pub fn is_ec(self) -> bool {
        !matches!(self, KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa1024)
    }

    fn req_args(self) -> Vec<&'static str> {
        match self {
            KeyType::EcP256 => vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            KeyType::EcP384Sha384 => vec![
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-384",
                "-sha384",
            ],
            KeyType::EcP384Sha256 => vec![
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-384",
                "-sha256",
            ],
            KeyType::Rsa2048 => vec!["-newkey", "rsa:2048"],
            KeyType::Rsa3072 => vec!["-newkey", "rsa:3072"],
            KeyType::Rsa1024 => vec!["-newkey", "rsa:1024"],
            KeyType::EcSecp256k1 => {
                vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp256k1"]
            }
            KeyType::EcP521 => vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"],
        }
    }
}

/// Runs `openssl ARGS` and asserts success.
#[track_caller]
pub fn openssl(args: &[&OsStr]) -> Output {
    let out = output_of(Command::new("openssl").args(args), "openssl");
    let shown: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert!(
        out.status.success(),
        "{}",
        describe(&format!("openssl {}", shown.join(" ")), &out)
    );
    out
}

pub fn os(s: &(impl AsRef<OsStr> + ?Sized)) -> &OsStr {
    s.as_ref()
}

/// A new key and PEM CSR `<dir>/<label>-<tag>.csr.pem` made by `openssl req`.
/// The CSR's subject is deliberately not the holder's: the CA must take the
/// subject from the registry.
#[track_caller]
pub fn make_csr(dir: &Path, key: KeyType, tag: &str) -> PathBuf {
    let base = dir.join(format!("{}-{tag}", key.label()));
    let csr = base.with_extension("csr.pem");
    let keyfile = base.with_extension("key.pem");
    let mut args: Vec<&OsStr> = vec![os("req"), os("-new"), os("-nodes"), os("-batch")];
    args.extend(key.req_args().into_iter().map(os));
    args.extend([
        os("-keyout"),
        keyfile.as_os_str(),
        os("-out"),
        csr.as_os_str(),
    ]);
    args.extend([os("-subj"), os("/C=ZZ/CN=Name In The CSR")]);
    openssl(&args);
    csr
}

/// The DER of a PEM CSR.
pub fn csr_der(csr_pem: &Path) -> Vec<u8> {
    openssl(&[
        os("req"),
        os("-in"),
        csr_pem.as_os_str(),
        os("-outform"),
        os("DER"),
    ])
    .stdout
}

/// (tag, header length, content length) of the DER TLV at `pos`.
fn der_tlv(buf: &[u8], pos: usize) -> (u8, usize, usize) {
    let tag = buf[pos];
    let first = buf[pos + 1] as usize;
    if first < 0x80 {
        return (tag, 2, first);
    }
    let n = first & 0x7f;
    let len = buf[pos + 2..pos + 2 + n]
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | *b as usize);
    (tag, 2 + n, len)
}

/// Index of the last byte of a CSR's signature BIT STRING (the third element
/// of the outer SEQUENCE: certificationRequestInfo, signatureAlgorithm, signature).
pub fn csr_signature_last_byte(der: &[u8]) -> usize {
    let (tag, hdr, len) = der_tlv(der, 0);
    assert_eq!(tag, 0x30, "CSR is not a SEQUENCE");
    assert_eq!(hdr + len, der.len(), "trailing bytes after the CSR");
    let mut pos = hdr;
    for _ in 0..2 {
        let (_, h, l) = der_tlv(der, pos);
        pos += h + l;
    }
    let (tag, h, l) = der_tlv(der, pos);
    assert_eq!(tag, 0x03, "third element of the CSR is not a BIT STRING");
    assert!(l > 2, "empty signature");
    pos + h + l - 1
}

/// PEM armour around DER bytes (base64 by `openssl base64`).
pub fn pem_wrap(label: &str, der_file: &Path) -> String {
    let b64 = openssl(&[os("base64"), os("-e"), os("-in"), der_file.as_os_str()]).stdout;
    format!(
        "-----BEGIN {label}-----\n{}-----END {label}-----\n",
        String::from_utf8_lossy(&b64)
    )
}

/// A copy of `csr_pem` whose signature has one flipped bit in its last byte
/// (inside the signature value, so the CSR still parses), as PEM at `out_pem`
/// and DER beside it. Asserts that `openssl req -verify` rejects it.
#[track_caller]
pub fn corrupt_csr_signature(csr_pem: &Path, out_pem: &Path) -> PathBuf {
    let mut der = csr_der(csr_pem);
    let at = csr_signature_last_byte(&der);
    der[at] ^= 0x01;
    let der_path = out_pem.with_extension("der");
    fs::write(&der_path, &der).expect("write corrupted DER");
    fs::write(out_pem, pem_wrap("CERTIFICATE REQUEST", &der_path)).expect("write corrupted PEM");
    let check = output_of(
        Command::new("openssl").args([
            os("req"),
            os("-verify"),
            os("-noout"),
            os("-in"),
            out_pem.as_os_str(),
        ]),
        "openssl req -verify",
    );
    // OpenSSL 3.0 exits 0 either way; it prints "... verify failure" / "... verify OK".
    let said = format!("{}{}", stdout_str(&check), stderr_str(&check));
    assert!(
        said.contains("verify failure"),
        "openssl still verifies the corrupted CSR: {said}"
    );
    out_pem.to_path_buf()
}

/// Writes a CSR in DER form next to the PEM one; returns its path.
pub fn csr_to_der_file(csr_pem: &Path) -> PathBuf {
    let path = csr_pem.with_extension("der");
    fs::write(&path, csr_der(csr_pem)).expect("write DER CSR");
    path
}
