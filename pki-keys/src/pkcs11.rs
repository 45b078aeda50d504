//! The PKCS#11 key backend: EC keys generated on a token and never leaving
//! it (CKA_SENSITIVE, not CKA_EXTRACTABLE), used through the `cryptoki`
//! crate. One token per key family (`[keys.pkcs11.<family>]`), logged in
//! once per process with the family's user PIN.
//!
//! A key is named by an RFC 7512 URI that the database stores,
//! `pkcs11:token=<token label>;object=<key label>;id=<%xx bytes>`, and found
//! again by label AND id on the family's token. Signing is raw `CKM_ECDSA`
//! over a digest computed here (SoftHSM2 and most HSMs have no
//! CKM_ECDSA_SHA384), its `r||s` re-encoded as a DER ECDSA-Sig-Value.
//!
//! A `cryptoki::Session` is `Send` but not `Sync`: each signature takes a
//! session from the token's pool and puts it back, so concurrent signers
//! (batch workers, responder threads) never share one; the pool grows to the
//! number of signers running at once. The login state of PKCS#11 belongs to
//! the application, not the session, so the anchor session that logged in
//! keeps every later session logged in.

use super::{KeyError, SignatureAlgorithm, Signer};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use der::asn1::{BitString, OctetString, UintRef};
use der::{Decode, Encode};
use sha2::Digest;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// Octets of CKA_ID given to a new key.
const ID_BYTES: usize = 16;

/// A token-level failure: `op` says what was being done; the message is
/// cryptoki's (it never holds the PIN).
fn ck(op: &'static str) -> impl FnOnce(CkError) -> KeyError {
    move |e| KeyError::Pkcs11 {
        op,
        message: e.to_string(),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One `C_Initialize` per module per process: cryptoki contexts by module path.
fn module(path: &Path) -> Result<Pkcs11, KeyError> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut modules = lock(MODULES.get_or_init(Default::default));
    if let Some(ctx) = modules.get(path) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(path).map_err(|e| KeyError::Module {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(KeyError::Module {
                path: path.display().to_string(),
                message: e.to_string(),
            })
        }
    }
    modules.insert(path.to_path_buf(), ctx.clone());
    Ok(ctx)
}

/// A logged-in token and its pool of sessions.
pub struct Token {
    ctx: Pkcs11,
    slot: Slot,
    label: String,
    /// Holds the login for the life of the process.
    _anchor: Mutex<Session>,
    idle: Mutex<Vec<Session>>,
}

impl Token {
    /// The token labelled `label` in `module`, logged in with `pin`; opened
    /// once per process and shared by every key store that names it.
    pub fn open(module_path: &Path, label: &str, pin: &str) -> Result<Arc<Token>, KeyError> {
        type Tokens = Mutex<HashMap<(PathBuf, String), Arc<Token>>>;
        static TOKENS: OnceLock<Tokens> = OnceLock::new();
        let mut tokens = lock(TOKENS.get_or_init(Default::default));
        let key = (module_path.to_path_buf(), label.to_string());
        if let Some(t) = tokens.get(&key) {
            return Ok(t.clone());
        }
        let ctx = module(module_path)?;
        let mut found = Vec::new();
        for slot in ctx
            .get_slots_with_initialized_token()
            .map_err(ck("list slots"))?
        {
            let info = ctx.get_token_info(slot).map_err(ck("read token info"))?;
            if info.label().trim_end() == label {
                found.push(slot);
            }
        }
        let slot = match found.as_slice() {
            [slot] => *slot,
            [] => {
                return Err(KeyError::TokenNotFound {
                    module: module_path.display().to_string(),
                    label: label.to_string(),
                })
            }
            _ => {
                return Err(KeyError::Pkcs11 {
                    op: "find token",
                    message: format!("{} tokens are labelled {label:?}", found.len()),
                })
            }
        };
        let anchor = ctx.open_rw_session(slot).map_err(ck("open session"))?;
        match anchor.login(UserType::User, Some(&pin.to_string().into())) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => {
                return Err(KeyError::Login {
                    token: label.to_string(),
                    message: e.to_string(),
                })
            }
        }
        let token = Arc::new(Token {
            ctx,
            slot,
            label: label.to_string(),
            _anchor: Mutex::new(anchor),
            idle: Mutex::new(Vec::new()),
        });
        tokens.insert(key, token.clone());
        Ok(token)
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// Runs `f` on a session of its own, taken from the pool (or opened)
    /// and given back afterwards; a session that failed is dropped.
    fn with_session<T>(
        &self,
        f: impl FnOnce(&Session) -> Result<T, KeyError>,
    ) -> Result<T, KeyError> {
        let taken = lock(&self.idle).pop();
        let session = match taken {
            Some(s) => s,
            None => self
                .ctx
                .open_rw_session(self.slot)
                .map_err(ck("open session"))?,
        };
        let result = f(&session);
        if result.is_ok() {
            lock(&self.idle).push(session);
        }
        result
    }

    /// Generates an EC key pair on the token: the private half sensitive,
    /// never extractable, private, for signing only; labelled `name`, with
    /// a random CKA_ID. Returns the key's RFC 7512 URI and its signer.
    pub fn generate(
        self: &Arc<Self>,
        name: &str,
        algorithm: SignatureAlgorithm,
    ) -> Result<(String, Pkcs11Key), KeyError> {
        let mut id = vec![0u8; ID_BYTES];
        aws_lc_rs::rand::fill(&mut id).map_err(|_| KeyError::Generate)?;
        let params = curve(algorithm).to_der().map_err(|_| KeyError::Generate)?;
        let label = name.as_bytes().to_vec();
        self.with_session(|s| {
            let existing = s
                .find_objects(&[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::Label(label.clone()),
                ])
                .map_err(ck("search keys"))?;
            if !existing.is_empty() {
                return Err(KeyError::Exists {
                    path: format!("token {:?} object {name:?}", self.label),
                });
            }
            let public = [
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Verify(true),
                Attribute::Encrypt(false),
                Attribute::Wrap(false),
                Attribute::EcParams(params.clone()),
                Attribute::Label(label.clone()),
                Attribute::Id(id.clone()),
            ];
            let private = [
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(true),
                // Signing only: SoftHSM2 (and others) default these to true.
                Attribute::Decrypt(false),
                Attribute::Unwrap(false),
                Attribute::Derive(false),
                Attribute::Label(label.clone()),
                Attribute::Id(id.clone()),
            ];
            s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
                .map_err(ck("generate key pair"))?;
            Ok(())
        })?;
        let uri = KeyUri {
            token: self.label.clone(),
            object: name.to_string(),
            id,
        };
        let key = self.find(&uri, algorithm)?;
        Ok((uri.to_string(), key))
    }

    /// The key named by `uri` on this token (label AND id must match).
    pub fn find(
        self: &Arc<Self>,
        uri: &KeyUri,
        algorithm: SignatureAlgorithm,
    ) -> Result<Pkcs11Key, KeyError> {
        if uri.token != self.label {
            return Err(KeyError::WrongToken {
                reference: uri.to_string(),
                token: self.label.clone(),
            });
        }
        let select = |class| {
            [
                Attribute::Class(class),
                Attribute::KeyType(KeyType::EC),
                Attribute::Label(uri.object.as_bytes().to_vec()),
                Attribute::Id(uri.id.clone()),
            ]
        };
        let not_found = || KeyError::KeyNotFound {
            reference: uri.to_string(),
        };
        let (handle, params, point) = self.with_session(|s| {
            let private = s
                .find_objects(&select(ObjectClass::PRIVATE_KEY))
                .map_err(ck("search keys"))?;
            let public = s
                .find_objects(&select(ObjectClass::PUBLIC_KEY))
                .map_err(ck("search keys"))?;
            let ([handle], [public]) = (private.as_slice(), public.as_slice()) else {
                return Err(not_found());
            };
            let mut params = None;
            let mut point = None;
            for a in s
                .get_attributes(*public, &[AttributeType::EcParams, AttributeType::EcPoint])
                .map_err(ck("read public key"))?
            {
                match a {
                    Attribute::EcParams(v) => params = Some(v),
                    Attribute::EcPoint(v) => point = Some(v),
                    _ => {}
                }
            }
            match (params, point) {
                (Some(params), Some(point)) => Ok((*handle, params, point)),
                _ => Err(not_found()),
            }
        })?;
        let invalid = |message: &str| KeyError::Invalid {
            path: uri.to_string(),
            algorithm: algorithm.key_algorithm().name(),
            message: message.to_string(),
        };
        let expected = curve(algorithm);
        if const_oid::ObjectIdentifier::from_der(&params).ok() != Some(expected) {
            return Err(invalid("the key on the token is on another curve"));
        }
        let point =
            ec_point(&point, algorithm).ok_or_else(|| invalid("unreadable CKA_EC_POINT"))?;
        let spki = spki::SubjectPublicKeyInfoOwned {
            algorithm: spki::AlgorithmIdentifierOwned {
                oid: pki_x509::oids::EC_PUBLIC_KEY,
                parameters: Some(der::Any::from(&expected)),
            },
            subject_public_key: BitString::from_bytes(&point)
                .map_err(|_| invalid("unreadable CKA_EC_POINT"))?,
        }
        .to_der()
        .map_err(|_| invalid("cannot encode the public key"))?;
        Ok(Pkcs11Key {
            token: self.clone(),
            handle,
            algorithm,
            spki,
        })
    }
}

fn curve(algorithm: SignatureAlgorithm) -> const_oid::ObjectIdentifier {
    match algorithm {
        SignatureAlgorithm::EcdsaP256Sha256 => pki_x509::oids::SECP256R1,
        SignatureAlgorithm::EcdsaP384Sha384 => pki_x509::oids::SECP384R1,
    }
}

/// Octets of a field element of the algorithm's curve.
fn field_len(algorithm: SignatureAlgorithm) -> usize {
    match algorithm {
        SignatureAlgorithm::EcdsaP256Sha256 => 32,
        SignatureAlgorithm::EcdsaP384Sha384 => 48,
    }
}

/// The uncompressed point from CKA_EC_POINT, which PKCS#11 v2.40 wraps in
/// a DER OCTET STRING (SoftHSM2 does) and some modules give raw.
fn ec_point(value: &[u8], algorithm: SignatureAlgorithm) -> Option<Vec<u8>> {
    let len = 1 + 2 * field_len(algorithm);
    let uncompressed = |p: &[u8]| p.len() == len && p[0] == 0x04;
    if let Ok(inner) = OctetString::from_der(value) {
        if uncompressed(inner.as_bytes()) {
            return Some(inner.as_bytes().to_vec());
        }
    }
    uncompressed(value).then(|| value.to_vec())
}

/// ECDSA-Sig-Value (RFC 3279): the DER form of a signature.
#[derive(der::Sequence)]
struct EcdsaSigValue<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// `r||s` as returned by CKM_ECDSA, re-encoded as DER (the der crate strips
/// and adds the leading zeros INTEGER needs).
fn der_signature(raw: &[u8], algorithm: SignatureAlgorithm) -> Result<Vec<u8>, KeyError> {
    let n = field_len(algorithm);
    if raw.len() != 2 * n {
        return Err(KeyError::Sign);
    }
    let value = EcdsaSigValue {
        r: UintRef::new(&raw[..n]).map_err(|_| KeyError::Sign)?,
        s: UintRef::new(&raw[n..]).map_err(|_| KeyError::Sign)?,
    };
    value.to_der().map_err(|_| KeyError::Sign)
}

/// A private key on a token.
pub struct Pkcs11Key {
    token: Arc<Token>,
    handle: ObjectHandle,
    algorithm: SignatureAlgorithm,
    spki: Vec<u8>,
}

impl Signer for Pkcs11Key {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    fn public_key_der(&self) -> &[u8] {
        &self.spki
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let digest = match self.algorithm {
            SignatureAlgorithm::EcdsaP256Sha256 => sha2::Sha256::digest(message).to_vec(),
            SignatureAlgorithm::EcdsaP384Sha384 => sha2::Sha384::digest(message).to_vec(),
        };
        let raw = self.token.with_session(|s| {
            s.sign(&Mechanism::Ecdsa, self.handle, &digest)
                .map_err(ck("sign"))
        })?;
        der_signature(&raw, self.algorithm)
    }
}

/// A key's RFC 7512 URI: `pkcs11:token=..;object=..;id=%xx..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUri {
    pub token: String,
    pub object: String,
    pub id: Vec<u8>,
}

/// Characters written as-is in a URI path attribute value (RFC 7512
/// `pk11-pchar` minus the ones that need thought): unreserved only.
const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl std::fmt::Display for KeyUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use percent_encoding::utf8_percent_encode as enc;
        write!(
            f,
            "pkcs11:token={};object={};id=",
            enc(&self.token, KEEP),
            enc(&self.object, KEEP)
        )?;
        // RFC 7512 writes CKA_ID byte by byte, percent-encoded.
        self.id.iter().try_for_each(|b| write!(f, "%{b:02x}"))
    }
}

impl KeyUri {
    /// Parses a `pkcs11:` reference; token, object and id are all required.
    pub fn parse(reference: &str) -> Result<Self, KeyError> {
        let bad = || KeyError::UnsupportedReference(reference.to_string());
        let path = reference.strip_prefix("pkcs11:").ok_or_else(bad)?;
        let (mut token, mut object, mut id) = (None, None, None);
        for part in path.split(';') {
            let (name, value) = part.split_once('=').ok_or_else(bad)?;
            let value: Vec<u8> = percent_encoding::percent_decode_str(value).collect();
            let slot = match name {
                "token" => &mut token,
                "object" => &mut object,
                "id" => &mut id,
                _ => return Err(bad()),
            };
            if slot.replace(value).is_some() {
                return Err(bad());
            }
        }
        let text = |v: Option<Vec<u8>>| {
            v.and_then(|v| String::from_utf8(v).ok())
                .filter(|s| !s.is_empty())
                .ok_or_else(bad)
        };
        Ok(KeyUri {
            token: text(token)?,
            object: text(object)?,
            id: id.filter(|i| !i.is_empty()).ok_or_else(bad)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_round_trips_and_refuses_incomplete_references() {
        let uri = KeyUri {
            token: "pki ca".into(),
            object: "root-ca-1a2b".into(),
            id: vec![0x00, 0xab, 0x10],
        };
        let text = uri.to_string();
        assert_eq!(
            text,
            "pkcs11:token=pki%20ca;object=root-ca-1a2b;id=%00%ab%10"
        );
        assert_eq!(KeyUri::parse(&text).unwrap(), uri);
        for bad in [
            "software:x.pem",
            "pkcs11:token=a;object=b",
            "pkcs11:token=a;object=b;id=",
            "pkcs11:token=a;object=b;id=%01;token=c",
            "pkcs11:token=a;object=b;id=%01;serial=1",
        ] {
            assert!(
                matches!(KeyUri::parse(bad), Err(KeyError::UnsupportedReference(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn raw_signatures_become_der_with_integer_padding() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x80; // r needs a leading zero
        raw[63] = 0x01; // s is 1 after stripping zeros
        let der = der_signature(&raw, SignatureAlgorithm::EcdsaP256Sha256).unwrap();
        assert_eq!(&der[..5], &[0x30, 0x26, 0x02, 0x21, 0x00]);
        assert_eq!(&der[der.len() - 3..], &[0x02, 0x01, 0x01]);
        assert!(der_signature(&raw[..63], SignatureAlgorithm::EcdsaP256Sha256).is_err());
    }
}
