//! Object identifiers used by the profiles that `const-oid`'s database does
//! not name (ETSI QC statements and policies) plus the common ones, in one place.

use const_oid::ObjectIdentifier as Oid;

pub const EKU_CLIENT_AUTH: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.2");
pub const EKU_OCSP_SIGNING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.9");
pub const OCSP_NOCHECK: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.5");
pub const AD_OCSP: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1");
pub const AD_CA_ISSUERS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.2");
pub const QT_CPS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.2.1");
pub const QC_STATEMENTS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.1.3");
pub const QCS_PKIX_SYNTAX_V2: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.11.2");
pub const ETSI_SEMANTICS_NATURAL: Oid = Oid::new_unwrap("0.4.0.194121.1.1");
pub const ETSI_QCS_COMPLIANCE: Oid = Oid::new_unwrap("0.4.0.1862.1.1");
pub const ETSI_QCS_SSCD: Oid = Oid::new_unwrap("0.4.0.1862.1.4");
pub const ETSI_QCS_PDS: Oid = Oid::new_unwrap("0.4.0.1862.1.5");
pub const ETSI_QCS_TYPE: Oid = Oid::new_unwrap("0.4.0.1862.1.6");
pub const ETSI_QCT_ESIGN: Oid = Oid::new_unwrap("0.4.0.1862.1.6.1");
pub const ETSI_QCS_CC_LEGISLATION: Oid = Oid::new_unwrap("0.4.0.1862.1.7");

pub const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
pub const SECP256R1: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
pub const SECP384R1: Oid = Oid::new_unwrap("1.3.132.0.34");
pub const SECP521R1: Oid = Oid::new_unwrap("1.3.132.0.35");
pub const ECDSA_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
pub const ECDSA_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
pub const ECDSA_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
pub const RSA_SHA256: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
pub const RSA_SHA384: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
pub const RSA_SHA512: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");

pub const AT_COUNTRY: Oid = Oid::new_unwrap("2.5.4.6");
pub const AT_ORGANIZATION: Oid = Oid::new_unwrap("2.5.4.10");
pub const AT_COMMON_NAME: Oid = Oid::new_unwrap("2.5.4.3");
pub const AT_SURNAME: Oid = Oid::new_unwrap("2.5.4.4");
pub const AT_GIVEN_NAME: Oid = Oid::new_unwrap("2.5.4.42");
pub const AT_SERIAL_NUMBER: Oid = Oid::new_unwrap("2.5.4.5");
pub const AT_ORGANIZATION_IDENTIFIER: Oid = Oid::new_unwrap("2.5.4.97");

pub const EXT_SUBJECT_KEY_ID: Oid = Oid::new_unwrap("2.5.29.14");
pub const EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.15");
pub const EXT_BASIC_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.19");
pub const EXT_CRL_DP: Oid = Oid::new_unwrap("2.5.29.31");
pub const EXT_CERT_POLICIES: Oid = Oid::new_unwrap("2.5.29.32");
pub const EXT_AUTHORITY_KEY_ID: Oid = Oid::new_unwrap("2.5.29.35");
pub const EXT_EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");
pub const EXT_AIA: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.1.1");
