//! The PostgreSQL roles of the components, one per process with the least
//! rights its job needs: the grants live in `migrations/roles/postgres.sql`
//! (one file, reviewed with the migrations), rendered here for a role-name
//! prefix and a schema, and applied by `pki-admin db roles --apply`.

use super::{Db, StorageError};
use diesel::connection::SimpleConnection;

/// The grants, with `@PREFIX@` and `@SCHEMA@` to fill in.
const TEMPLATE: &str = include_str!("../../../migrations/roles/postgres.sql");

/// The component roles the file creates, without their prefix.
pub const ROLES: [&str; 5] = ["admin", "ocsp", "crl_signer", "scheduler", "auditor"];

/// The grants for roles named `<prefix><component>` on the tables of `schema`.
/// Both must be plain lower-case identifiers (they are written into SQL).
pub fn render(prefix: &str, schema: &str) -> Result<String, StorageError> {
    for (what, value) in [("role prefix", prefix), ("schema", schema)] {
        let plain = value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !plain || value.len() > 40 || (what == "schema" && value.is_empty()) {
            return Err(StorageError::BadIdentifier {
                what,
                value: value.to_string(),
            });
        }
    }
    Ok(TEMPLATE
        .replace("@PREFIX@", prefix)
        .replace("@SCHEMA@", schema))
}

/// The schema the connection's tables live in (PostgreSQL `current_schema()`).
pub fn current_schema(db: &mut Db) -> Result<String, StorageError> {
    use diesel::prelude::*;
    match db {
        Db::Pg(c) => Ok(diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>(
            "current_schema()",
        ))
        .get_result(c)?),
        Db::Sqlite(_) => Err(StorageError::NoRoles),
    }
}

/// Runs the rendered grants in one transaction (all or nothing).
pub fn apply(db: &mut Db, sql: &str) -> Result<(), StorageError> {
    match db {
        Db::Pg(c) => {
            c.batch_execute(&format!("BEGIN;\n{sql}\nCOMMIT;"))
                .inspect_err(|_| {
                    let _ = c.batch_execute("ROLLBACK");
                })?;
            Ok(())
        }
        Db::Sqlite(_) => Err(StorageError::NoRoles),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_role_and_refuses_sql_in_names() {
        let sql = render("pki_", "public").unwrap();
        for role in ROLES {
            assert!(sql.contains(&format!("pki_{role}")), "{role}");
        }
        assert!(!sql.contains('@'), "a placeholder is left");
        let statements = sql.lines().filter(|l| !l.trim_start().starts_with("--"));
        for line in statements {
            assert!(
                !line.contains("DELETE") && !line.contains("TRUNCATE"),
                "no role may delete: {line}"
            );
        }
        for bad in ["x\"; DROP TABLE certificates; --", "Pki", "a b"] {
            assert!(render(bad, "public").is_err(), "{bad}");
            assert!(render("pki_", bad).is_err(), "{bad}");
        }
    }
}
