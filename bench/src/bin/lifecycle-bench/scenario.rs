//! The two waves and what tells them apart: their population (sample
//! identities, card numbers, registry keys), their request ids, their
//! issuing CA and the revocation reason they must end with.

use x509_cert::ext::pkix::CrlReason;

/// One wave.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Wave {
    ResidencyEnded,
    CardLost,
}

/// What a wave is made of.
pub struct Spec {
    pub name: &'static str,
    /// Request ids start with this.
    pub prefix: &'static str,
    /// The population's card numbers start with this.
    pub card_prefix: &'static str,
    /// The i-th holder is the sample identity `2 * i + sample_offset`:
    /// residents are odd, nationals even.
    sample_offset: usize,
    /// The CA that issued the population's certificates.
    pub issuer: &'static str,
    /// The revocation reason, as the database stores it...
    pub reason: &'static str,
    /// ... and as OCSP and the CRLs carry it.
    pub crl_reason: CrlReason,
    /// What the due instant is (the JSON output's `due`).
    pub due: &'static str,
}

static RESIDENCY_ENDED: Spec = Spec {
    name: "residency-ended",
    prefix: "lb-res-",
    card_prefix: "RS",
    sample_offset: 1,
    issuer: "residence-card-ca",
    reason: "affiliationChanged",
    crl_reason: CrlReason::AffiliationChanged,
    due: "effective instant, after the recording",
};

static CARD_LOST: Spec = Spec {
    name: "card-lost",
    prefix: "lb-lost-",
    card_prefix: "ID",
    sample_offset: 0,
    issuer: "identity-card-ca",
    reason: "keyCompromise",
    crl_reason: CrlReason::KeyCompromise,
    due: "reported instant = start of the recording",
};

impl Wave {
    /// Both waves, in the order they run.
    pub const ALL: [Wave; 2] = [Wave::ResidencyEnded, Wave::CardLost];

    pub fn spec(self) -> &'static Spec {
        match self {
            Wave::ResidencyEnded => &RESIDENCY_ENDED,
            Wave::CardLost => &CARD_LOST,
        }
    }

    /// The sample identity of the i-th holder.
    pub fn sample_index(self, i: usize) -> usize {
        2 * i + self.spec().sample_offset
    }

    /// The registry key of the i-th holder.
    pub fn registry_key(self, i: usize) -> String {
        format!("MC{:08}", self.sample_index(i) + 1)
    }
}
