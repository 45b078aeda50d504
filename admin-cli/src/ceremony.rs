//! `ceremony FILE [--dry-run]`: a key ceremony from its declarative file
//! (`ca_core::ceremony`): the plan, or the keys and certificates made and
//! the transcript written.

use ca_core::ceremony::{self, CeremonyFile};
use ca_core::Ca;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct CeremonyArgs {
    /// The ceremony file (TOML: id, operators, transcript, [root_keys], [[steps]]).
    file: PathBuf,
    /// Check the file and print the plan; make nothing.
    #[arg(long)]
    dry_run: bool,
}

pub fn run(ca: &mut Ca, args: CeremonyArgs) -> anyhow::Result<ExitCode> {
    let file = CeremonyFile::load(&args.file)?;
    if args.dry_run {
        let plan = ceremony::plan(ca, &file)?;
        outln!(
            "ceremony {} (dry run): {} steps, operators: {}",
            file.id,
            plan.len(),
            file.operators.join("; ")
        );
        for (i, step) in plan.iter().enumerate() {
            outln!("  {}. {}", i + 1, step.description);
        }
        outln!("transcript: {}", file.transcript.display());
        return Ok(ExitCode::SUCCESS);
    }
    let transcript = ceremony::run(ca, &file)?;
    out!("{}", transcript.text());
    outln!("transcript written to {}", file.transcript.display());
    // Stored: a certificate file that cannot be written is only reported.
    match crate::commands::write_ca_certificates(ca) {
        Ok((dir, names)) => outln!(
            "CA certificates in {}: {}.pem",
            dir.display(),
            names.join(".pem, ")
        ),
        Err(e) => eprintln!("warning: the CA certificates were not written as files: {e:#}"),
    }
    Ok(ExitCode::SUCCESS)
}
