//! The vocabulary of the eID domain shared by every module: card kinds,
//! registration authorities, identity statuses, genders and certificate
//! usages, each with its one spelling in files, the database and the CLI.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Declares a closed vocabulary: an enum whose variants each have exactly
/// one textual form, used by serde, the database and the command line.
macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
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
    /// Where a certificate stands in its life.
    CertStatus { Hold => "hold", Active => "active", Suspended => "suspended", Revoked => "revoked", Expired => "expired" }
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
    /// A live certificate counts against "one per card and usage".
    pub fn is_live(self) -> bool {
        matches!(
            self,
            CertStatus::Hold | CertStatus::Active | CertStatus::Suspended
        )
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
        assert_eq!(
            CardKind::Residence.authority(),
            RegistrationAuthority::ResidentsSection
        );
    }
}
