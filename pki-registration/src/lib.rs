//! `pki-registration`: the registration and lifecycle logic of the national
//! eID PKI. It decides who holds which card and whether a certificate may
//! live, and turns registry events and officers' decisions into status
//! changes, through the store's one write door. It never signs and links
//! no key code: the scheduler runs on it with a store [`pki_store::Context`]
//! only, and the CA (`ca-core`) calls it before it signs.
//!
//! ## Module map (one job per module)
//!
//! | part | module | job |
//! | --- | --- | --- |
//! | registration | [`registry`] | the registry's identities and their import |
//! | registration | [`cards`] | identity and residence cards |
//! | registration | [`eligibility`] | who may hold, activate and renew certificates, each rule once |
//! | registration | [`blocked_keys`] | keys never certified again (compromise, or by hand) |
//! | lifecycle | [`events`] | registry events checked and planned into requests ([`events::check`]) |
//! | lifecycle | [`requests`] | revocation requests: recorded, armed, executed when due |
//! | lifecycle | [`lifecycle`] | the state machine ([`lifecycle::next_status`]) and its application |
//! | lifecycle | [`revocation`] | officers' direct revoke, suspend and resume, recorded as executed requests |
//! | lifecycle | [`reminders`] | expiry reminders: the decision and the outbox |
//! | lifecycle | [`sla`] | the revocation commitment measured per request |

pub mod blocked_keys;
pub mod cards;
pub mod eligibility;
pub mod events;
pub mod lifecycle;
pub mod registry;
pub mod reminders;
pub mod requests;
pub mod revocation;
pub mod sla;
