//! Distinguished names: authorities (C, O, CN) and natural persons per
//! ETSI EN 319 412-2 (C, surname, givenName, serialNumber with the
//! `PNO<CC>-` semantics identifier, CN). Country and serialNumber are
//! PrintableString, the rest UTF8String.

use crate::oids;
use const_oid::ObjectIdentifier as Oid;
use der::asn1::{Any, PrintableStringRef, SetOfVec, Utf8StringRef};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

/// X.520 upper bound of commonName, organizationName (RFC 5280 Appendix A).
pub const UB_COMMON_NAME: usize = 64;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NameError {
    #[error("{field} is empty")]
    Empty { field: &'static str },
    #[error("{field} {value:?} has characters a PrintableString cannot hold")]
    NotPrintable { field: &'static str, value: String },
    #[error("{field} {value:?} is longer than {max} characters")]
    TooLong {
        field: &'static str,
        value: String,
        max: usize,
    },
}

enum Kind {
    Printable,
    Utf8,
}

fn attribute(
    oid: Oid,
    field: &'static str,
    value: &str,
    kind: Kind,
) -> Result<RelativeDistinguishedName, NameError> {
    if value.trim().is_empty() {
        return Err(NameError::Empty { field });
    }
    let any = match kind {
        Kind::Printable => PrintableStringRef::new(value)
            .ok()
            .and_then(|s| Any::encode_from(&s).ok()),
        Kind::Utf8 => Utf8StringRef::new(value)
            .ok()
            .and_then(|s| Any::encode_from(&s).ok()),
    }
    .ok_or_else(|| NameError::NotPrintable {
        field,
        value: value.to_string(),
    })?;
    let atv = AttributeTypeAndValue { oid, value: any };
    let set = SetOfVec::try_from(vec![atv]).expect("one element is always a valid SET OF");
    Ok(RelativeDistinguishedName(set))
}

fn bounded(field: &'static str, value: &str, max: usize) -> Result<(), NameError> {
    if value.chars().count() > max {
        return Err(NameError::TooLong {
            field,
            value: value.to_string(),
            max,
        });
    }
    Ok(())
}

/// C, O, CN of a CA or an OCSP responder.
pub fn authority(country: &str, organization: &str, common_name: &str) -> Result<Name, NameError> {
    bounded("organization", organization, UB_COMMON_NAME)?;
    bounded("common name", common_name, UB_COMMON_NAME)?;
    Ok(RdnSequence(vec![
        attribute(oids::AT_COUNTRY, "country", country, Kind::Printable)?,
        attribute(
            oids::AT_ORGANIZATION,
            "organization",
            organization,
            Kind::Utf8,
        )?,
        attribute(oids::AT_COMMON_NAME, "common name", common_name, Kind::Utf8)?,
    ]))
}

/// The ETSI natural-person identifier: `PNO<CC>-<registry key>`.
pub fn person_identifier(country: &str, registry_key: &str) -> String {
    format!("PNO{country}-{registry_key}")
}

/// The common name: given names and family name, shortened to the first
/// given name when too long, and cut at the X.520 bound as a last resort.
pub fn person_common_name(given_names: &str, family_name: &str) -> String {
    let full = format!("{given_names} {family_name}");
    if full.chars().count() <= UB_COMMON_NAME {
        return full;
    }
    let first = given_names.split_whitespace().next().unwrap_or(given_names);
    let short = format!("{first} {family_name}");
    short.chars().take(UB_COMMON_NAME).collect()
}

/// The subject of a card-holder certificate.
pub fn natural_person(
    country: &str,
    family_name: &str,
    given_names: &str,
    registry_key: &str,
) -> Result<Name, NameError> {
    let cn = person_common_name(given_names, family_name);
    Ok(RdnSequence(vec![
        attribute(oids::AT_COUNTRY, "country", country, Kind::Printable)?,
        attribute(oids::AT_SURNAME, "family name", family_name, Kind::Utf8)?,
        attribute(oids::AT_GIVEN_NAME, "given names", given_names, Kind::Utf8)?,
        attribute(
            oids::AT_SERIAL_NUMBER,
            "registry key",
            &person_identifier(country, registry_key),
            Kind::Printable,
        )?,
        attribute(oids::AT_COMMON_NAME, "common name", &cn, Kind::Utf8)?,
    ]))
}

/// Checks that a registry key can stand in a PrintableString serialNumber.
pub fn check_registry_key(key: &str) -> Result<(), NameError> {
    if key.is_empty() {
        return Err(NameError::Empty {
            field: "registry key",
        });
    }
    if PrintableStringRef::new(key).is_err() || key.contains(' ') {
        return Err(NameError::NotPrintable {
            field: "registry key",
            value: key.to_string(),
        });
    }
    bounded("registry key", key, 56)
}

/// Reads the string value of an attribute, whatever its string type.
pub fn attribute_text(value: &Any) -> Option<String> {
    use der::{Tag, Tagged};
    match value.tag() {
        Tag::PrintableString | Tag::Utf8String | Tag::Ia5String | Tag::TeletexString => {
            std::str::from_utf8(value.value()).ok().map(str::to_string)
        }
        _ => None,
    }
}

/// The values of one attribute type in a name.
pub fn values_of(name: &Name, oid: Oid) -> Vec<String> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(|atv| atv.oid == oid)
        .filter_map(|atv| attribute_text(&atv.value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_person_has_the_etsi_attributes() {
        let n = natural_person("MC", "Grimaldi", "Jeanne Marie", "A12345").unwrap();
        assert_eq!(values_of(&n, oids::AT_SERIAL_NUMBER), vec!["PNOMC-A12345"]);
        assert_eq!(
            values_of(&n, oids::AT_COMMON_NAME),
            vec!["Jeanne Marie Grimaldi"]
        );
        assert_eq!(n.to_string(), "CN=Jeanne Marie Grimaldi,SERIALNUMBER=PNOMC-A12345,GIVENNAME=Jeanne Marie,SN=Grimaldi,C=MC");
    }

    #[test]
    fn long_names_are_shortened_and_bad_keys_refused() {
        let given = "Alexandre Ferdinand Maximilien Guillaume Henri";
        let cn = person_common_name(given, "de la Tour-Vieille-Montagne-Saint-Roman");
        assert!(cn.chars().count() <= UB_COMMON_NAME);
        assert!(cn.starts_with("Alexandre de la Tour"));
        assert!(check_registry_key("A1 2").is_err());
        assert!(check_registry_key("é1").is_err());
        assert!(check_registry_key("MC-2024-000001").is_ok());
    }
}
