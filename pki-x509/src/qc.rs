//! QC statements (RFC 3739, ETSI EN 319 412-5 and 412-1). x509-cert 0.2 has
//! no types for them, so the few structures this PKI writes are declared
//! here with `der`'s derive.

use crate::{oids, QcStatement};
use const_oid::ObjectIdentifier as Oid;
use der::asn1::{Any, Ia5String, PrintableString};
use der::{Decode, Encode, Sequence};

/// QCStatement ::= SEQUENCE { statementId OID, statementInfo ANY OPTIONAL }
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct QcStatementDer {
    pub statement_id: Oid,
    pub statement_info: Option<Any>,
}

/// QCStatements ::= SEQUENCE OF QCStatement
pub type QcStatements = Vec<QcStatementDer>;

/// PdsLocation ::= SEQUENCE { url IA5String, language PrintableString (SIZE(2)) }
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct PdsLocation {
    url: Ia5String,
    language: PrintableString,
}

/// SemanticsInformation ::= SEQUENCE { semanticsIdentifier OID OPTIONAL, ... }
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct SemanticsInformation {
    semantics_identifier: Option<Oid>,
}

fn any<T: Encode>(value: &T) -> Result<Any, der::Error> {
    Any::from_der(&value.to_der()?)
}

/// The statement id a profile entry writes.
pub fn statement_oid(s: QcStatement) -> Oid {
    match s {
        QcStatement::Compliance => oids::ETSI_QCS_COMPLIANCE,
        QcStatement::Legislation => oids::ETSI_QCS_CC_LEGISLATION,
        QcStatement::Sscd => oids::ETSI_QCS_SSCD,
        QcStatement::TypeEsign => oids::ETSI_QCS_TYPE,
        QcStatement::Pds => oids::ETSI_QCS_PDS,
        QcStatement::SemanticsNaturalPerson => oids::QCS_PKIX_SYNTAX_V2,
    }
}

/// Encodes the QCStatements extension value for a profile's list.
pub fn encode(
    statements: &[QcStatement],
    country: &str,
    pds_url: &str,
) -> Result<Vec<u8>, der::Error> {
    let mut out = QcStatements::new();
    for s in statements {
        let info = match s {
            QcStatement::Compliance | QcStatement::Sscd => None,
            QcStatement::Legislation => Some(any(&vec![PrintableString::new(country)?])?),
            QcStatement::TypeEsign => Some(any(&vec![oids::ETSI_QCT_ESIGN])?),
            QcStatement::Pds => Some(any(&vec![PdsLocation {
                url: Ia5String::new(pds_url)?,
                language: PrintableString::new("en")?,
            }])?),
            QcStatement::SemanticsNaturalPerson => Some(any(&SemanticsInformation {
                semantics_identifier: Some(oids::ETSI_SEMANTICS_NATURAL),
            })?),
        };
        out.push(QcStatementDer {
            statement_id: statement_oid(*s),
            statement_info: info,
        });
    }
    out.to_der()
}

/// The statement ids in an encoded QCStatements value.
pub fn decode_ids(value: &[u8]) -> Result<Vec<Oid>, der::Error> {
    let statements = QcStatements::from_der(value)?;
    Ok(statements.into_iter().map(|s| s.statement_id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_reads_back_statement_ids() {
        let list = [
            QcStatement::Compliance,
            QcStatement::Legislation,
            QcStatement::Sscd,
            QcStatement::TypeEsign,
            QcStatement::Pds,
            QcStatement::SemanticsNaturalPerson,
        ];
        let der = encode(&list, "MC", "https://pki.example.com/pds.pdf").unwrap();
        let ids = decode_ids(&der).unwrap();
        assert_eq!(
            ids,
            list.iter().map(|s| statement_oid(*s)).collect::<Vec<_>>()
        );
    }
}
