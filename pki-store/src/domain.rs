//! The vocabulary of the eID domain shared by every module: card kinds,
//! registration authorities, identity statuses, genders, certificate
//! usages, kinds and statuses, revocation reasons and suspension causes,
//! each with its one spelling in files, the database, the CLI and the wire.
//!
//! Every word is a Rust enum from the database row to the wire: the diesel
//! conversions below are the only place where a stored word is read or
//! written, so an unknown word in a row is a decoding error at the row,
//! never a guess further on.

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Declares a closed vocabulary: an enum whose variants each have exactly
/// one textual form, used by serde, the database (a `Text` column) and the
/// command line.
macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            diesel::AsExpression, diesel::FromSqlRow,
        )]
        #[diesel(sql_type = Text)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "{:?} is not one of: {}",
                        s,
                        [$($text),+].join(", ")
                    )),
                }
            }
        }

        impl<DB> ToSql<Text, DB> for $name
        where
            DB: Backend,
            str: ToSql<Text, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                <str as ToSql<Text, DB>>::to_sql(self.as_str(), out)
            }
        }

        impl<DB> FromSql<Text, DB> for $name
        where
            DB: Backend,
            String: FromSql<Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                let word = <String as FromSql<Text, DB>>::from_sql(bytes)?;
                word.parse::<$name>()
                    .map_err(|m| format!("{}: {m}", stringify!($name)).into())
            }
        }
    };
}

vocabulary!(
    /// The two kinds of card that carry certificates.
    CardKind { Identity => "identity", Residence => "residence" }
);

vocabulary!(
    /// The registration authority that registered an identity: the town
    /// hall for nationals, the residents section for residents.
    RegistrationAuthority { TownHall => "town-hall", ResidentsSection => "residents-section" }
);

vocabulary!(
    /// An identity's status in the national registry.
    IdentityStatus { Active => "active", Suspended => "suspended", Inactive => "inactive" }
);

vocabulary!(
    /// Gender as the registry records it.
    Gender { Female => "F", Male => "M", Unspecified => "X" }
);

vocabulary!(
    /// What a card-holder certificate is for.
    Usage { Auth => "auth", Sign => "sign", MobileAuth => "mobile-auth" }
);

vocabulary!(
    /// Where a certificate stands in its life (the state machine is
    /// `lifecycle::next_status`).
    CertStatus {
        /// Issued, pending activation by the holder (CPS 4.4.1); stored as `hold`.
        PendingActivation => "hold",
        Active => "active",
        /// Suspended for a [`SuspensionCause`] (CPS 4.9.13).
        Suspended => "suspended",
        Revoked => "revoked",
        Expired => "expired",
    }
);

vocabulary!(
    /// What a stored certificate is.
    CertKind { RootCa => "root-ca", IssuingCa => "issuing-ca", OcspResponder => "ocsp-responder", EndEntity => "end-entity" }
);

vocabulary!(
    /// Why a certificate is suspended (CPS 4.9.13): a suspension is lifted
    /// only by a release of its own cause.
    SuspensionCause {
        /// Decided by an RA officer (or the holder at the counter).
        Officer => "officer",
        /// The identity is `suspended` in the registry.
        IdentitySuspended => "identity-suspended",
        /// A mobile certificate suspended because its card certificate was.
        FollowsCard => "follows-card",
    }
);

vocabulary!(
    /// The RFC 5280 CRLReason values this CA writes (CPS 4.9.1). A
    /// revocation without a stated reason carries no reason code at all:
    /// `unspecified` is never stored (see [`Reason::from_input`]).
    Reason {
        KeyCompromise => "keyCompromise",
        CaCompromise => "cACompromise",
        AffiliationChanged => "affiliationChanged",
        Superseded => "superseded",
        CessationOfOperation => "cessationOfOperation",
        /// Written only for suspensions, never asked for as a revocation.
        CertificateHold => "certificateHold",
        PrivilegeWithdrawn => "privilegeWithdrawn",
    }
);

vocabulary!(
    /// The kind of a published CRL.
    CrlKind { Complete => "complete", Delta => "delta" }
);

vocabulary!(
    /// What a revocation request asks (its `change` column): a status
    /// change of certificates, or a new registry status of an identity.
    RequestKind { Revoke => "revoke", Suspend => "suspend", Resume => "resume", IdentityStatus => "identity-status" }
);

vocabulary!(
    /// Which certificates a request or a status change is about.
    ScopeKind {
        Serial => "serial",
        /// Every certificate of a card (its mobile ones included).
        Card => "card",
        /// The mobile certificates of a card only (a lost phone).
        CardMobile => "card-mobile",
        /// Every certificate of every card of a holder.
        Holder => "holder",
        /// The certificates of a holder's residence cards.
        HolderResidence => "holder-residence",
    }
);

vocabulary!(
    /// Where a revocation request stands.
    RequestState { Pending => "pending", Executed => "executed" }
);

vocabulary!(
    /// Why a public key is blocked (never certified again).
    KeyBlockSource {
        /// A certificate of this key was revoked for keyCompromise.
        KeyCompromise => "key-compromise",
        /// An officer blocked it by hand.
        Officer => "officer",
    }
);

vocabulary!(
    /// The state of an expiry reminder in the outbox.
    ReminderState {
        /// E-mail waiting for (another) delivery attempt.
        Pending => "pending",
        /// Accepted by the SMTP relay.
        Sent => "sent",
        /// Given up after `max_attempts` failures, or refused for good.
        Dead => "dead",
        /// No e-mail address: to be sent as a letter.
        Postal => "postal",
    }
);

vocabulary!(
    /// How a reminder reaches its holder.
    ReminderChannel { Email => "email", Postal => "postal" }
);

vocabulary!(
    /// How the SMTP relay is reached (`[smtp] tls`).
    SmtpTls {
        /// Plain SMTP, for a relay on the same host.
        None => "none",
        StartTls => "starttls",
        Tls => "tls",
    }
);

vocabulary!(
    /// Where the signing keys live (`[keys] backend`).
    KeyBackend {
        /// Encrypted PKCS#8 files, signing with aws-lc-rs.
        Software => "software",
        /// Keys generated and kept on PKCS#11 tokens (`[keys.pkcs11]`).
        Pkcs11 => "pkcs11",
    }
);

vocabulary!(
    /// What an audit record says happened (its `action` column). The
    /// `certificate.*` and authority actions are also the change feed that
    /// the status services follow (`feed::read`).
    AuditAction {
        AuditCheckpoint => "audit.checkpoint",
        BatchStart => "batch.start",
        BatchFinish => "batch.finish",
        CaCreate => "ca.create",
        CardRegister => "card.register",
        Ceremony => "ceremony",
        CertificateIssue => "certificate.issue",
        CertificateActivate => "certificate.activate",
        CertificateRevoke => "certificate.revoke",
        CertificateSuspend => "certificate.suspend",
        CertificateResume => "certificate.resume",
        CertificateExpire => "certificate.expire",
        CrlPublish => "crl.publish",
        KeyBlock => "key.block",
        OcspResponderCreate => "ocsp-responder.create",
        OcspResponderRotate => "ocsp-responder.rotate",
        RegistryCreate => "registry.create",
        RegistryEvent => "registry.event",
        RegistryImport => "registry.import",
        RegistryStatus => "registry.status",
        RegistryUpdate => "registry.update",
        ReminderDead => "reminder.dead",
        ReminderDecide => "reminder.decide",
        ReminderSent => "reminder.sent",
        RequestDue => "request.due",
        RequestExecute => "request.execute",
        RequestRecord => "request.record",
    }
);

impl CardKind {
    /// The registration authority entitled to hand out this kind of card.
    pub fn authority(self) -> RegistrationAuthority {
        match self {
            CardKind::Identity => RegistrationAuthority::TownHall,
            CardKind::Residence => RegistrationAuthority::ResidentsSection,
        }
    }
}

impl CertStatus {
    /// The statuses of a live certificate.
    pub const LIVE: [CertStatus; 3] = [
        CertStatus::PendingActivation,
        CertStatus::Active,
        CertStatus::Suspended,
    ];

    /// A live certificate counts against "one per card and usage".
    pub fn is_live(self) -> bool {
        Self::LIVE.contains(&self)
    }
}

/// The word an operator or a feed may give for "no reason code".
pub const NO_REASON: &str = "unspecified";

impl Reason {
    /// The CRLReason code (RFC 5280 section 5.3.1), the one code table.
    pub fn code(self) -> u8 {
        match self {
            Reason::KeyCompromise => 1,
            Reason::CaCompromise => 2,
            Reason::AffiliationChanged => 3,
            Reason::Superseded => 4,
            Reason::CessationOfOperation => 5,
            Reason::CertificateHold => 6,
            Reason::PrivilegeWithdrawn => 9,
        }
    }

    /// The reason of a code, if this CA writes it.
    pub fn from_code(code: u8) -> Option<Reason> {
        Reason::ALL.iter().copied().find(|r| r.code() == code)
    }

    /// The name of a CRLReason code as relying parties see it (RFC 5280),
    /// including the codes this CA never writes.
    pub fn code_name(code: u8) -> &'static str {
        match Reason::from_code(code) {
            Some(r) => r.as_str(),
            None => match code {
                0 => NO_REASON,
                8 => "removeFromCRL",
                10 => "aACompromise",
                _ => "unknown",
            },
        }
    }

    /// The one rule for a reason given as input (CLI, registry feed):
    /// `unspecified` means "no reason code"; `certificateHold` is a
    /// suspension, not a revocation reason; anything else must be a reason
    /// this CA writes.
    pub fn from_input(s: &str) -> Result<Option<Reason>, String> {
        let revocation_reasons = || {
            Reason::ALL
                .iter()
                .filter(|r| **r != Reason::CertificateHold)
                .map(|r| r.as_str())
                .chain([NO_REASON])
                .collect::<Vec<_>>()
                .join(", ")
        };
        match s {
            NO_REASON => Ok(None),
            "certificateHold" => Err("certificateHold is a suspension: use suspend".into()),
            _ => s.parse::<Reason>().map(Some).map_err(|_| {
                format!(
                    "{s:?} is not a revocation reason (one of: {})",
                    revocation_reasons()
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_round_trips() {
        for k in CardKind::ALL {
            assert_eq!(k.as_str().parse::<CardKind>().unwrap(), *k);
        }
        for u in Usage::ALL {
            assert_eq!(u.as_str().parse::<Usage>().unwrap(), *u);
        }
        assert!("passport".parse::<CardKind>().is_err());
        for r in Reason::ALL {
            assert_eq!(Reason::from_code(r.code()), Some(*r));
            assert_eq!(Reason::code_name(r.code()), r.as_str());
        }
        assert_eq!(CertStatus::PendingActivation.as_str(), "hold");
    }

    #[test]
    fn one_rule_for_no_reason_code() {
        assert_eq!(Reason::from_input("unspecified"), Ok(None));
        assert_eq!(
            Reason::from_input("keyCompromise"),
            Ok(Some(Reason::KeyCompromise))
        );
        assert!(Reason::from_input("certificateHold").is_err());
        let refused = Reason::from_input("lost").unwrap_err();
        assert!(refused.contains("unspecified"), "{refused}");
        assert!(!refused.contains("certificateHold"), "{refused}");
        assert_eq!(
            CardKind::Residence.authority(),
            RegistrationAuthority::ResidentsSection
        );
    }
}
