//! Registry events (CPS 4.9.1): what the registry, the RA officers and the
//! holders' revocation form report, and the revocation requests each one
//! creates. Events arrive one by one (`pki-admin registry event`) or as a
//! JSON Lines feed (`pki-admin registry events FILE`); each has an id, and
//! recording the same event again is a replay that changes nothing (the
//! same id with a different content is refused).
//!
//! | event | requests (scope, change, reason) |
//! | --- | --- |
//! | `card-lost`, `card-stolen` | card: revoke `keyCompromise` |
//! | `phone-lost` | the card's mobile certificates: revoke `keyCompromise` |
//! | `holder-request` | card (or every card of the holder): revoke, no reason code |
//! | `residency-ended` | holder's residence cards: revoke `affiliationChanged`; identity `inactive` — due on `effective` |
//! | `nationality-acquired` | holder's residence cards: revoke `superseded` (when `new_card` is given: once its certificates are issued) |
//! | `name-changed`, `address-changed` | old card: revoke `superseded`, once the `new_card`'s certificates are issued |
//! | `death` | holder: revoke `cessationOfOperation`; identity `inactive` |
//! | `identity-suspended` | identity `suspended`; holder: suspend (cause `identity-suspended`) |
//! | `identity-reactivated` | identity `active`; holder: release the holds of cause `identity-suspended` |
//! | `identity-inactive` | identity `inactive`; holder: revoke with `reason` if given, else no reason code |
//! | `card-cancelled` | card (expired, withdrawn or cancelled early): revoke `cessationOfOperation` |
//!
//! A request is due at once, on `effective` when given, or when the new
//! card's certificates are issued; `pki-admin` executes what is due at once,
//! `pki-scheduler` the rest (module `requests`).

use crate::lifecycle::{Scope, Transition};
use chrono::{DateTime, NaiveDateTime, Utc};
use pki_store::domain::{IdentityStatus, Reason, RequestKind, SuspensionCause};
use pki_store::error::{CaError, Result};
use pki_store::storage::models::RevocationRequestRow;
use serde::Deserialize;

macro_rules! event_kinds {
    ($($variant:ident => $text:literal),+ $(,)?) => {
        /// The kinds of registry event.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
        pub enum EventKind { $(#[serde(rename = $text)] $variant),+ }

        impl EventKind {
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $(EventKind::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for EventKind {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                match s {
                    $($text => Ok(EventKind::$variant),)+
                    _ => Err(format!("{s:?} is not an event type (one of: {})", [$($text),+].join(", "))),
                }
            }
        }
    };
}

event_kinds!(
    CardLost => "card-lost",
    CardStolen => "card-stolen",
    PhoneLost => "phone-lost",
    HolderRequest => "holder-request",
    ResidencyEnded => "residency-ended",
    NationalityAcquired => "nationality-acquired",
    NameChanged => "name-changed",
    AddressChanged => "address-changed",
    Death => "death",
    IdentitySuspended => "identity-suspended",
    IdentityReactivated => "identity-reactivated",
    IdentityInactive => "identity-inactive",
    CardCancelled => "card-cancelled",
);

/// One event as received (a JSON object; unknown fields are refused).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Unique per event; replays carry the same id.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub card: Option<String>,
    pub holder: Option<String>,
    /// The replacement card (change of name or address, new nationality).
    pub new_card: Option<String>,
    /// When the effect is due (`YYYY-MM-DD` = 00:00 UTC, or a date and
    /// time); default: at once.
    pub effective: Option<String>,
    /// When the holder or the registry reported it (RFC 3339); default:
    /// when recorded. The 24-hour commitment runs from here (or from
    /// `effective`, when later).
    pub reported_at: Option<DateTime<Utc>>,
    /// `identity-inactive`: the reason to write (RFC 5280 name).
    pub reason: Option<String>,
    /// Since when the key is known to be unusable (loss, theft).
    #[serde(alias = "invalidity")]
    pub invalidity_date: Option<String>,
    /// Free text kept with the event (the form's or officer's note).
    pub note: Option<String>,
}

/// What a request asks.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestChange {
    Revoke(Option<Reason>),
    Suspend(SuspensionCause),
    Resume(SuspensionCause),
    /// Set the identity's registry status.
    IdentityStatus(IdentityStatus),
}

impl RequestChange {
    pub fn kind(&self) -> RequestKind {
        match self {
            RequestChange::Revoke(_) => RequestKind::Revoke,
            RequestChange::Suspend(_) => RequestKind::Suspend,
            RequestChange::Resume(_) => RequestKind::Resume,
            RequestChange::IdentityStatus(_) => RequestKind::IdentityStatus,
        }
    }

    /// The certificates' status change it asks, if it asks one.
    pub fn transition(&self) -> Option<Transition> {
        match *self {
            RequestChange::Revoke(r) => Some(Transition::Revoke(r)),
            RequestChange::Suspend(c) => Some(Transition::Suspend(c)),
            RequestChange::Resume(c) => Some(Transition::Resume(c)),
            RequestChange::IdentityStatus(_) => None,
        }
    }

    /// The request asked by a certificate status change (officers' direct
    /// changes are recorded as executed requests too).
    pub fn of_transition(t: Transition) -> Option<RequestChange> {
        match t {
            Transition::Revoke(r) => Some(RequestChange::Revoke(r)),
            Transition::Suspend(c) => Some(RequestChange::Suspend(c)),
            Transition::Resume(c) => Some(RequestChange::Resume(c)),
            Transition::Activate | Transition::Expire => None,
        }
    }

    /// Its reason, suspension cause and identity status columns.
    pub fn columns(
        &self,
    ) -> (
        Option<Reason>,
        Option<SuspensionCause>,
        Option<IdentityStatus>,
    ) {
        match *self {
            RequestChange::Revoke(r) => (r, None, None),
            RequestChange::Suspend(c) | RequestChange::Resume(c) => (None, Some(c), None),
            RequestChange::IdentityStatus(s) => (None, None, Some(s)),
        }
    }

    /// The change a stored request asks (the columns' CHECK constraints
    /// guarantee the one its kind needs).
    pub fn of_row(row: &RevocationRequestRow) -> std::result::Result<RequestChange, String> {
        let missing = |what: &str| format!("request {} ({}) has no {what}", row.id, row.change);
        Ok(match row.change {
            RequestKind::Revoke => RequestChange::Revoke(row.reason),
            RequestKind::Suspend => RequestChange::Suspend(
                row.suspension_cause
                    .ok_or_else(|| missing("suspension cause"))?,
            ),
            RequestKind::Resume => RequestChange::Resume(
                row.suspension_cause
                    .ok_or_else(|| missing("suspension cause"))?,
            ),
            RequestKind::IdentityStatus => RequestChange::IdentityStatus(
                row.identity_status
                    .ok_or_else(|| missing("identity status"))?,
            ),
        })
    }
}

/// One request an event creates.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRequest {
    pub change: RequestChange,
    pub scope: Scope,
    /// Due once this card has a certificate.
    pub after_card: Option<String>,
}

/// An event checked and turned into requests.
#[derive(Debug, Clone)]
pub struct CheckedEvent {
    pub event: Event,
    pub reported_at: NaiveDateTime,
    /// `None`: at once (or after the new card, see the requests).
    pub effective: Option<NaiveDateTime>,
    pub invalidity: Option<NaiveDateTime>,
    pub requests: Vec<PlannedRequest>,
}

fn missing(event: &Event, field: &str) -> CaError {
    CaError::Event {
        id: event.id.clone(),
        message: format!("a {} event needs \"{field}\"", event.kind.as_str()),
    }
}

fn bad(event: &Event, message: String) -> CaError {
    CaError::Event {
        id: event.id.clone(),
        message,
    }
}

/// Checks an event's fields (not the database) and plans its requests.
pub fn check(event: Event, now: DateTime<Utc>) -> Result<CheckedEvent> {
    use EventKind::*;
    use RequestChange as C;
    if event.id.trim().is_empty() {
        return Err(bad(&event, "\"id\" must be 1 to 200 characters".into()));
    }
    // The field rules of every file (pki_store::fields): no control
    // characters, the table's lengths.
    for (field, value) in [
        ("id", Some(&event.id)),
        ("card", event.card.as_ref()),
        ("holder", event.holder.as_ref()),
        ("new_card", event.new_card.as_ref()),
        ("note", event.note.as_ref()),
        ("reason", event.reason.as_ref()),
        ("effective", event.effective.as_ref()),
        ("invalidity_date", event.invalidity_date.as_ref()),
    ] {
        if let Some(v) = value {
            pki_store::fields::check_text(field, v).map_err(|m| CaError::Event {
                id: if field == "id" {
                    "(refused id)".into()
                } else {
                    event.id.clone()
                },
                message: format!("{field}: {m}"),
            })?;
        }
    }
    let now_db = pki_store::storage::db_time(now);
    let reported_at = match event.reported_at {
        Some(t) if t > now => {
            return Err(bad(
                &event,
                format!("reported_at {t} is in the future (now {now})"),
            ))
        }
        Some(t) => pki_store::storage::db_time(t),
        None => now_db,
    };
    let date = |field: &str, v: &Option<String>| -> Result<Option<NaiveDateTime>> {
        v.as_deref()
            .map(pki_store::input::parse_invalidity)
            .transpose()
            .map_err(|m| bad(&event, format!("{field}: {m}")))
    };
    let effective = date("effective", &event.effective)?;
    let invalidity = date("invalidity_date", &event.invalidity_date)?;
    if let Some(inv) = invalidity {
        crate::lifecycle::check_invalidity(inv, now_db)
            .map_err(|m| bad(&event, format!("invalidity_date: {m}")))?;
    }
    let reason = event
        .reason
        .as_deref()
        .map(Reason::from_input)
        .transpose()
        .map_err(|m| bad(&event, format!("reason: {m}")))?
        .flatten();
    if event.reason.is_some() && event.kind != IdentityInactive {
        return Err(bad(
            &event,
            format!(
                "\"reason\" is fixed by the CPS for a {} event",
                event.kind.as_str()
            ),
        ));
    }
    let card = || event.card.clone().ok_or_else(|| missing(&event, "card"));
    let holder = || {
        event
            .holder
            .clone()
            .ok_or_else(|| missing(&event, "holder"))
    };
    let req = |change, scope| PlannedRequest {
        change,
        scope,
        after_card: None,
    };
    let status = |s| {
        req(
            C::IdentityStatus(s),
            Scope::Holder(event.holder.clone().unwrap_or_default()),
        )
    };
    let requests = match event.kind {
        CardLost | CardStolen => vec![req(
            C::Revoke(Some(Reason::KeyCompromise)),
            Scope::Card(card()?),
        )],
        PhoneLost => vec![req(
            C::Revoke(Some(Reason::KeyCompromise)),
            Scope::CardMobile(card()?),
        )],
        HolderRequest => match (&event.card, &event.holder) {
            (Some(c), _) => vec![req(C::Revoke(None), Scope::Card(c.clone()))],
            (None, Some(h)) => vec![req(C::Revoke(None), Scope::Holder(h.clone()))],
            (None, None) => return Err(missing(&event, "card\" or \"holder")),
        },
        ResidencyEnded => {
            let h = holder()?;
            vec![
                req(
                    C::Revoke(Some(Reason::AffiliationChanged)),
                    Scope::HolderResidence(h),
                ),
                status(IdentityStatus::Inactive),
            ]
        }
        NationalityAcquired => vec![PlannedRequest {
            change: C::Revoke(Some(Reason::Superseded)),
            scope: Scope::HolderResidence(holder()?),
            after_card: event.new_card.clone(),
        }],
        NameChanged | AddressChanged => vec![PlannedRequest {
            change: C::Revoke(Some(Reason::Superseded)),
            scope: Scope::Card(card()?),
            after_card: Some(
                event
                    .new_card
                    .clone()
                    .ok_or_else(|| missing(&event, "new_card"))?,
            ),
        }],
        Death => vec![
            req(
                C::Revoke(Some(Reason::CessationOfOperation)),
                Scope::Holder(holder()?),
            ),
            status(IdentityStatus::Inactive),
        ],
        IdentitySuspended => vec![
            {
                holder()?;
                status(IdentityStatus::Suspended)
            },
            req(
                C::Suspend(SuspensionCause::IdentitySuspended),
                Scope::Holder(holder()?),
            ),
        ],
        IdentityReactivated => vec![
            {
                holder()?;
                status(IdentityStatus::Active)
            },
            req(
                C::Resume(SuspensionCause::IdentitySuspended),
                Scope::Holder(holder()?),
            ),
        ],
        IdentityInactive => vec![
            {
                holder()?;
                status(IdentityStatus::Inactive)
            },
            req(C::Revoke(reason), Scope::Holder(holder()?)),
        ],
        CardCancelled => vec![req(
            C::Revoke(Some(Reason::CessationOfOperation)),
            Scope::Card(card()?),
        )],
    };
    if let (Some(_), Some(r)) = (effective, requests.iter().find(|r| r.after_card.is_some())) {
        return Err(bad(
            &event,
            format!(
                "\"effective\" cannot be combined with waiting for card {}",
                r.after_card.as_deref().unwrap_or_default()
            ),
        ));
    }
    Ok(CheckedEvent {
        event,
        reported_at,
        effective,
        invalidity,
        requests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn event(json: &str) -> Result<CheckedEvent> {
        check(serde_json::from_str(json).unwrap(), now())
    }

    #[test]
    fn each_event_plans_the_documented_requests() {
        let lost = event(r#"{"id":"e1","type":"card-lost","card":"ID1"}"#).unwrap();
        assert_eq!(
            lost.requests,
            vec![PlannedRequest {
                change: RequestChange::Revoke(Some(Reason::KeyCompromise)),
                scope: Scope::Card("ID1".into()),
                after_card: None
            }]
        );
        let leaving =
            event(r#"{"id":"e2","type":"residency-ended","holder":"K","effective":"2026-12-31"}"#)
                .unwrap();
        assert_eq!(leaving.requests.len(), 2);
        assert_eq!(
            leaving.requests[0].change,
            RequestChange::Revoke(Some(Reason::AffiliationChanged))
        );
        assert_eq!(
            leaving.effective.unwrap().to_string(),
            "2026-12-31 00:00:00"
        );
        let moved =
            event(r#"{"id":"e3","type":"address-changed","card":"ID1","new_card":"ID2"}"#).unwrap();
        assert_eq!(moved.requests[0].after_card.as_deref(), Some("ID2"));
        let inactive = event(
            r#"{"id":"e4","type":"identity-inactive","holder":"K","reason":"privilegeWithdrawn"}"#,
        )
        .unwrap();
        assert_eq!(
            inactive.requests[1].change,
            RequestChange::Revoke(Some(Reason::PrivilegeWithdrawn))
        );
    }

    #[test]
    fn bad_events_are_refused_with_the_reason() {
        for (json, needle) in [
            (r#"{"id":"e","type":"card-lost"}"#, "needs \"card\""),
            (r#"{"id":"e","type":"name-changed","card":"A"}"#, "new_card"),
            (
                r#"{"id":"e","type":"card-lost","card":"A","reason":"superseded"}"#,
                "fixed by the CPS",
            ),
            (
                r#"{"id":"e","type":"death","holder":"K","reported_at":"2030-01-01T00:00:00Z"}"#,
                "future",
            ),
            (
                r#"{"id":"e","type":"card-lost","card":"A","invalidity":"yesterday"}"#,
                "invalidity",
            ),
            (r#"{"id":"","type":"card-lost","card":"A"}"#, "id"),
            (
                r#"{"id":"e","type":"card-lost","card":"A","note":"x\u001b[2Jy"}"#,
                "note: contains a control character (ESC)",
            ),
            (
                r#"{"id":"e\u0000","type":"card-lost","card":"A"}"#,
                "event (refused id): id: contains a control character (NUL)",
            ),
            (
                r#"{"id":"e","type":"card-lost","card":"A\r\nB"}"#,
                "card: contains a control character (CR)",
            ),
        ] {
            let e = event(json).unwrap_err().to_string();
            assert!(e.contains(needle), "{json}: {e}");
        }
        assert!(serde_json::from_str::<Event>(r#"{"id":"e","type":"card-eaten"}"#).is_err());
        assert!(serde_json::from_str::<Event>(r#"{"id":"e","type":"death","colour":1}"#).is_err());
    }
}
