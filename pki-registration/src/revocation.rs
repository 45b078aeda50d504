//! Officers' direct status changes (CPS 4.9.3, 4.9.13): revoke, suspend or
//! resume by serial or card, applied by the state machine
//! ([`lifecycle::apply_in`]) in one audited transaction and recorded as an
//! executed revocation request, so that `pki-admin sla` measures them from
//! request to OCSP and CRL like the requests of registry events.

use crate::events::RequestChange;
use crate::lifecycle::{self, Scope, Transition};
use chrono::NaiveDateTime;
use pki_store::error::{CaError, Result};
use pki_store::storage::db_time;
use pki_store::storage::models::CertificateRow;
use pki_store::Context;

/// Applies a status change to a scope in its own audited transaction and
/// records it as an executed request; returns the changed certificates.
/// All or nothing: a certificate named by serial that the change does not
/// apply to, or a card with nothing to change, is an error.
pub fn apply(
    ca: &mut Context,
    scope: &Scope,
    t: Transition,
    invalidity: Option<NaiveDateTime>,
) -> Result<Vec<CertificateRow>> {
    let now = ca.clock.now();
    if let Some(inv) = invalidity {
        lifecycle::check_invalidity(inv, db_time(now)).map_err(|message| CaError::Field {
            field: "invalidity date".into(),
            message,
        })?;
        if !matches!(t, Transition::Revoke(_) | Transition::Suspend(_)) {
            return Err(CaError::Field {
                field: "invalidity date".into(),
                message: "only a revocation or suspension has one".into(),
            });
        }
    }
    let actor = ca.actor.clone();
    ca.db.write(&actor, now, |tx| {
        scope.check_exists(tx.db)?;
        let strict = matches!(scope, Scope::Serial(_));
        let context = serde_json::json!({"direct": scope.kind()});
        let changed = lifecycle::apply_in(tx, scope, t, invalidity, &context, strict)?;
        if changed.is_empty() {
            // A suspension of another cause says more than "nothing to resume".
            let at = tx.at();
            for row in lifecycle::certificates_in(tx.db, scope)? {
                if let Err(e @ CaError::SuspensionCause { .. }) =
                    lifecycle::next_status(&row, t, at)
                {
                    return Err(e);
                }
            }
            return Err(CaError::Field {
                field: scope.kind().to_string(),
                message: format!("{} has no certificate to {}", scope.target(), t.verb()),
            });
        }
        if let Some(change) = RequestChange::of_transition(t) {
            crate::requests::record_executed(tx, scope, &change, invalidity, &changed)?;
        }
        Ok(changed)
    })
}
