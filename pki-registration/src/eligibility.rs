//! Who may hold, activate and renew card certificates (CPS 4.1, 4.2.1,
//! 4.4.1, 4.6.1): each rule once, called by issuance, activation and
//! renewal alike.
//!
//! * [`check_holder_active`]: only an identity `active` in the registry
//!   receives or uses certificates.
//! * [`check_card_matches_holder`]: identity cards for the town hall's
//!   nationals, residence cards for the residents section's residents.
//! * [`check_card_valid_today`]: from the card's issue date to its expiry
//!   date, both included.
//! * [`for_activation`]: the above, for an adult (18 full years) who is not
//!   a protected adult.

use chrono::{DateTime, Datelike, NaiveDateTime, Utc};
use pki_store::domain::{CardKind, IdentityStatus};
use pki_store::error::{CaError, Result};
use pki_store::storage::models::{CardRow, IdentityRow};

/// Age of majority, in years.
pub const ADULT_AGE: u32 = 18;

/// Full years of age at `now` of someone born at `born`.
pub fn age_at(born: NaiveDateTime, now: DateTime<Utc>) -> u32 {
    let today = now.date_naive();
    let birth = born.date();
    let mut years = today.year() - birth.year();
    if (today.month(), today.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    years.max(0) as u32
}

/// The identity must be `active` in the registry.
pub fn check_holder_active(holder: &IdentityRow) -> Result<()> {
    if holder.status != IdentityStatus::Active {
        return Err(CaError::HolderNotActive {
            holder: holder.registry_key.clone(),
            status: holder.status,
        });
    }
    Ok(())
}

/// The card's kind must be the one its holder's registering authority
/// hands out.
pub fn check_card_matches_holder(kind: CardKind, holder: &IdentityRow) -> Result<()> {
    if kind.authority() != holder.authority {
        return Err(CaError::CardKindMismatch {
            kind,
            holder: holder.registry_key.clone(),
            authority: holder.authority,
            expected: kind.authority(),
        });
    }
    Ok(())
}

/// The card must be valid today: issued, and not past its expiry date.
pub fn check_card_valid_today(card: &CardRow, now: DateTime<Utc>) -> Result<()> {
    let today = now.date_naive();
    if today < card.issue_date || today > card.expiry_date {
        return Err(CaError::CardNotValid {
            card: card.card_number.clone(),
            today,
            from: card.issue_date,
            until: card.expiry_date,
        });
    }
    Ok(())
}

/// Why a holder and card may not activate or renew now, if they may not:
/// the holder must be an adult, not a protected adult, with an active
/// identity, and the card valid today.
pub fn for_activation(
    holder: &IdentityRow,
    card: &CardRow,
    now: DateTime<Utc>,
) -> std::result::Result<(), String> {
    let age = age_at(holder.birth_datetime, now);
    if age < ADULT_AGE {
        return Err(format!(
            "holder {} is a minor ({age} years old; activation from {ADULT_AGE})",
            holder.registry_key
        ));
    }
    if holder.protected_adult {
        return Err(format!(
            "holder {} is a protected adult",
            holder.registry_key
        ));
    }
    check_holder_active(holder).map_err(|e| e.to_string())?;
    check_card_valid_today(card, now).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_counts_full_years() {
        let born: NaiveDateTime = "2008-11-23T10:00:00".parse().unwrap();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(age_at(born, at("2026-11-22T12:00:00Z")), 17);
        assert_eq!(age_at(born, at("2026-11-23T00:00:00Z")), 18);
    }
}
