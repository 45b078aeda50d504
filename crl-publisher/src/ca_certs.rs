//! The CA certificates in the publication directory, DER, as
//! `<ca-name>.cer`: the file names of the caIssuers URLs written into every
//! certificate (`pki_store::urls::ca_issuers_url`), served by `crl-server`.
//! Written atomically, and only when the content changed.

use crate::error::{CrlError, Result};
use crate::publish::write_atomic;
use pki_store::storage::Db;
use std::path::Path;

/// Writes the certificate of each of `authorities` into `out_dir`; returns
/// how many files were (re)written.
pub fn publish(db: &mut Db, out_dir: &Path, authorities: &[(String, String)]) -> Result<usize> {
    std::fs::create_dir_all(out_dir).map_err(|e| CrlError::io("cannot create", out_dir, e))?;
    let mut written = 0;
    for (name, serial) in authorities {
        let der = pki_store::certificates::find(db, serial)?.der;
        let path = out_dir.join(format!("{name}.cer"));
        if std::fs::read(&path).ok().as_deref() == Some(der.as_slice()) {
            continue;
        }
        write_atomic(&path, &der)?;
        log::info!("published the certificate of {name} at {}", path.display());
        written += 1;
    }
    Ok(written)
}
