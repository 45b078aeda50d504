//! Renewal at a kiosk (CPS 4.6, 4.7): a new certificate for the same card
//! and usage from a new PKCS#10 request, with the renewal date as reference
//! date, issued active; the previous certificate is revoked `superseded` in
//! the same transaction, so the new one is delivered and the old one ends
//! together or not at all.
//!
//! Refused when the holder is not eligible (CPS 4.4.1), when the current
//! certificate is on hold (activate first), suspended or revoked, and when
//! the card rule leaves nothing to gain: if the new certificate could end no
//! later than the current one (its end is the card's end), the **card**
//! must be renewed. A renewed authentication certificate keeps the card's
//! mobile certificates: they are linked to the new one (they already end no
//! later than the old one did). Renewing `mobile-auth` is a new
//! installation on a phone: it supersedes the previous mobile certificate.

use crate::ca::Ca;
use crate::issuance::{
    build_card_certificate, certificate_limit, check_holder_and_card, checked_csr, mobile_parent,
    CardCertificate, IssueInput, Issuers,
};
use chrono::SubsecRound;
use diesel::prelude::*;
use pki_registration::lifecycle::{self, Transition};
use pki_store::domain::Reason;
use pki_store::domain::{CardKind, CertStatus, Usage};
use pki_store::error::{CaError, Result};
use pki_store::storage::models::CertificateRow;
use pki_store::storage::schema::certificates;
use pki_store::{certificates as certs, with_conn};
use std::collections::HashSet;

/// A renewal's result.
#[derive(Debug)]
pub struct Renewal {
    /// The certificate replaced: now revoked `superseded`, or expired.
    pub previous: CertificateRow,
    pub new: CertificateRow,
}

fn refused(card: &str, reason: String) -> CaError {
    CaError::NotEligible {
        card: card.to_string(),
        action: "renew",
        reason,
    }
}

/// The certificate a renewal replaces: the card's live one of that usage,
/// which must be active, or else its latest one if that one expired.
fn current(ca: &mut Ca, card: &str, usage: Usage) -> Result<CertificateRow> {
    let latest = certs::list(&mut ca.db, Some(card), i64::MAX)?
        .into_iter()
        .filter(|r| r.usage == Some(usage))
        .max_by(|a, b| a.issued_at.cmp(&b.issued_at).then(a.serial.cmp(&b.serial)))
        .ok_or_else(|| {
            refused(
                card,
                format!("it has no {usage} certificate to renew (issue one instead)"),
            )
        })?;
    match latest.status {
        CertStatus::Active | CertStatus::Expired => Ok(latest),
        CertStatus::PendingActivation => Err(refused(
            card,
            format!(
                "its {usage} certificate {} is pending activation: activate it instead",
                latest.serial
            ),
        )),
        _ => Err(refused(
            card,
            format!(
                "its {usage} certificate {} is {}",
                latest.serial, latest.status
            ),
        )),
    }
}

/// Renews the `usage` certificate of a card from a new CSR.
pub fn renew(ca: &mut Ca, card_number: &str, usage: Usage, csr_der: Vec<u8>) -> Result<Renewal> {
    ca.keys.require_passphrase()?;
    let now = ca.clock.now().trunc_subsecs(0);
    let card = pki_store::lookup::card(&mut ca.db, card_number)?;
    let holder = pki_store::lookup::identity(&mut ca.db, &card.holder_key)?;
    pki_registration::eligibility::for_activation(&holder, &card, now)
        .map_err(|reason| refused(card_number, reason))?;
    let input = IssueInput {
        line: 1,
        card_number: card_number.to_string(),
        usage,
        csr: csr_der,
    };
    let (kind, _) = check_holder_and_card(&input, &card, &holder, now)?;
    let previous = current(ca, card_number, usage)?;

    let mut not_after = certificate_limit(&card, now.date_naive());
    let mut linked_serial = None;
    if usage == Usage::MobileAuth {
        let live = certs::live_for_cards(&mut ca.db, &HashSet::from([card_number.to_string()]))?;
        let auth = mobile_parent(card_number, &live)?;
        not_after = not_after.min(auth.not_after.and_utc());
        linked_serial = Some(auth.serial.clone());
    }
    if not_after.naive_utc() <= previous.not_after {
        let card_end = crate::issuance::certificate_limit(&card, card.expiry_date).naive_utc();
        let reason = if previous.not_after >= card_end || not_after.naive_utc() >= card_end {
            format!(
                "certificate {} already ends with the card on {}; the card itself must be renewed",
                previous.serial, card.expiry_date
            )
        } else {
            format!(
                "a renewal now would not extend certificate {} (it ends on {}, a new one would end on {})",
                previous.serial,
                previous.not_after.format("%Y-%m-%d"),
                not_after.format("%Y-%m-%d")
            )
        };
        return Err(refused(card_number, reason));
    }

    let profile = ca.policy.profile_for_usage(usage)?.clone();
    let checked = checked_csr(&input.csr, usage, &profile)?;
    let key_der =
        der::Encode::to_der(&checked.public_key).map_err(crate::x509::builder::BuildError::from)?;
    pki_registration::blocked_keys::check(
        &mut ca.db,
        &pki_registration::blocked_keys::spki_sha256(&key_der),
    )?;
    let issuers = Issuers::load(ca, &[kind])?;
    let issuer = issuers.for_kind(kind)?;
    if not_after > issuer.not_after {
        return Err(CaError::IssuerExpiresFirst {
            ca: issuer.row.name.clone(),
            ca_not_after: issuer.not_after.naive_utc(),
            not_after: not_after.naive_utc(),
        });
    }
    let new = build_card_certificate(
        &ca.config,
        issuer,
        CardCertificate {
            holder: &holder,
            card_number,
            usage,
            profile: &profile,
            public_key: checked.public_key,
            not_after,
            status: CertStatus::Active,
            linked_serial: linked_serial.as_deref(),
        },
        now,
    )?;
    store(ca, previous, new, kind)
}

/// Supersedes the previous certificate, stores the new one and moves the
/// mobile links, in one audited transaction.
fn store(
    ca: &mut Ca,
    previous: CertificateRow,
    new: CertificateRow,
    kind: CardKind,
) -> Result<Renewal> {
    let actor = ca.actor.clone();
    let now = ca.clock.now();
    ca.db.write(&actor, now, |tx| {
        pki_registration::blocked_keys::check(tx.db, &new.public_key_sha256)?;
        let context = serde_json::json!({"renewal": {"new": new.serial}});
        let mut previous = previous;
        if previous.status == CertStatus::Active {
            // Without the cascade to mobile certificates: they move to the new one.
            previous = lifecycle::apply_one(
                tx,
                &previous.serial,
                Transition::Revoke(Some(Reason::Superseded)),
                &context,
            )?;
        }
        pki_store::certificates::insert(tx.db, std::slice::from_ref(&new))?;
        let relinked: usize = if new.usage == Some(Usage::Auth) {
            with_conn!(tx.db, c => diesel::update(
                certificates::table.filter(certificates::linked_serial.eq(&previous.serial)),
            )
            .set(certificates::linked_serial.eq(&new.serial))
            .execute(c))?
        } else {
            0
        };
        crate::issuance::audit_issue(
            tx,
            &new,
            serde_json::json!({"card_kind": kind, "renews": previous.serial,
                               "mobile_certificates_relinked": relinked}),
        );
        Ok::<_, CaError>(Renewal { previous, new })
    })
}
