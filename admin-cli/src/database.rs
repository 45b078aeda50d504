//! `migrate` and `db roles`: the only commands that change the database's
//! schema or its roles. Every other command and every service opens the
//! database as it is and refuses a schema older or newer than it knows
//! (`pki_store::storage::schema_version`).

use anyhow::Context as _;
use clap::{Args, Subcommand};
use pki_store::config::Config;
use pki_store::storage::{redact, roles, schema_version, Db};

#[derive(Subcommand)]
pub enum DbCommand {
    /// The PostgreSQL roles of the components (admin, ocsp, crl_signer, scheduler, auditor)
    /// with the least rights each needs: printed, or applied with --apply.
    Roles(RolesArgs),
    /// The schema versions this program knows and the ones the database has applied.
    Status,
}

#[derive(Args)]
pub struct RolesArgs {
    /// Prefix of the role names (`<prefix>ocsp`, ...).
    #[arg(long, default_value = "pki_")]
    prefix: String,
    /// Schema holding the CA's tables (default: the connection's current schema, else `public`).
    #[arg(long)]
    schema: Option<String>,
    /// Create the roles and grant their rights now (as the schema owner), instead of printing the SQL.
    #[arg(long)]
    apply: bool,
}

/// `pki-admin migrate`: creates the database when needed and applies the
/// pending migrations.
pub fn migrate(config: &Config) -> anyhow::Result<()> {
    let url = config.database_url();
    let (db, applied) =
        Db::migrate(&url).with_context(|| format!("migrating the database at {}", redact(&url)))?;
    let newest = newest_known(&db);
    if applied.is_empty() {
        outln!("migrate: the schema is up to date (version {newest})");
    } else {
        for version in &applied {
            outln!("migrate: applied {version}");
        }
        outln!("migrate: the schema is at version {newest}");
    }
    Ok(())
}

/// `pki-admin db ...`.
pub fn run(config: &Config, command: DbCommand) -> anyhow::Result<()> {
    let url = config.database_url();
    let shown = redact(&url);
    match command {
        DbCommand::Roles(args) => {
            let schema = match (&args.schema, args.apply) {
                (Some(schema), _) => schema.clone(),
                (None, true) => {
                    let mut db = Db::connect(&url).with_context(|| format!("opening {shown}"))?;
                    roles::current_schema(&mut db)?
                }
                (None, false) => "public".to_string(),
            };
            let sql = roles::render(&args.prefix, &schema)?;
            if !args.apply {
                out!("{sql}");
                return Ok(());
            }
            let mut db = Db::connect(&url).with_context(|| format!("opening {shown}"))?;
            roles::apply(&mut db, &sql)
                .with_context(|| format!("applying the roles on schema {schema} of {shown}"))?;
            for role in roles::ROLES {
                outln!("db roles: {}{role} granted on schema {schema}", args.prefix);
            }
            Ok(())
        }
        DbCommand::Status => {
            let db = Db::connect(&url).with_context(|| format!("opening {shown}"))?;
            outln!(
                "db: {} at {shown}, schema version {} (the one this program knows)",
                db.backend(),
                newest_known(&db)
            );
            Ok(())
        }
    }
}

fn newest_known(db: &Db) -> String {
    schema_version::known(db)
        .last()
        .cloned()
        .unwrap_or_default()
}
