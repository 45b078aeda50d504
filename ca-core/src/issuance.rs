//! Issuance of card certificates from PKCS#10 requests. One engine serves a
//! single `issue` and every chunk of a bureau batch: registry and card rules
//! are checked first (cheap, sequential), then proof of possession, building,
//! linting and signing run in parallel, and the chunk's certificates, batch
//! entries and audit records commit in one transaction.

use crate::ca::Ca;
use crate::mint::{mint, MintRequest};
use crate::policy::Profile;
use chrono::{DateTime, Months, NaiveDate, NaiveTime, SubsecRound, Utc};
use der::Encode;
use diesel::prelude::*;
use pki_keys::authority::{self, Authority};
use pki_registration::blocked_keys;
use pki_store::authorities;
use pki_store::config::Config;
use pki_store::domain::AuditAction;
use pki_store::domain::{CardKind, CertStatus, Usage};
use pki_store::error::{CaError, Result};
use pki_store::storage::models::{BatchEntryRow, CardRow, CertificateRow, IdentityRow};
use pki_store::storage::schema::issuance_batch_entries;
use pki_store::storage::{Db, WriteTx};
use pki_store::{certificates, with_conn};
use pki_x509::{csr, name};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};

/// Years a card certificate may live from the card's issue date.
pub const CARD_CERT_YEARS: u32 = 3;

/// One certificate to issue.
#[derive(Debug, Clone)]
pub struct IssueInput {
    /// Line in the manifest (1 for a single request).
    pub line: usize,
    pub card_number: String,
    pub usage: Usage,
    pub csr: Vec<u8>,
}

/// What became of one input.
#[derive(Debug)]
pub enum Outcome {
    Issued(CertificateRow),
    /// The card already has this certificate (same card, usage and key).
    AlreadyIssued(CertificateRow),
    Rejected(CaError),
}

/// How a chunk treats repeats.
#[derive(Debug, Clone, Copy)]
pub struct ChunkOptions<'a> {
    /// Records issued certificates as entries of this batch.
    pub batch_id: Option<&'a str>,
    /// A live certificate with the same key counts as already issued
    /// (batches); otherwise it is an error (single issuance).
    pub same_key_is_done: bool,
}

/// The issuing CAs, loaded once (their keys opened) for many chunks.
pub struct Issuers {
    by_kind: HashMap<CardKind, Authority>,
}

impl Issuers {
    /// Loads the issuing CAs of some card kinds, opening their keys in
    /// parallel (each key file is scrypt-protected and slow to open on purpose).
    pub fn load(ca: &mut Ca, kinds: &[CardKind]) -> Result<Self> {
        let mut rows = Vec::new();
        for kind in kinds {
            let name = ca.policy.authority_for_card_kind(*kind)?.name.clone();
            rows.push((*kind, authority::load_row(&mut ca.db, &name)?));
        }
        let keys = &ca.keys;
        let opened: Vec<(CardKind, Result<Authority>)> = rows
            .into_par_iter()
            .map(|(kind, row)| (kind, row.open(keys)))
            .collect();
        let mut by_kind = HashMap::new();
        for (kind, authority) in opened {
            by_kind.insert(kind, authority?);
        }
        Ok(Self { by_kind })
    }

    pub(crate) fn for_kind(&self, kind: CardKind) -> Result<&Authority> {
        self.by_kind.get(&kind).ok_or(CaError::NotInitialised)
    }
}

/// The chain above a certificate of `issuer`: the issuer's certificate,
/// then its parents' up to the root.
pub fn chain_der(ca: &mut Ca, issuer: &str) -> Result<Vec<Vec<u8>>> {
    let mut chain = Vec::new();
    let mut next = Some(issuer.to_string());
    while let Some(name) = next {
        let row = authorities::find(&mut ca.db, &name)?;
        chain.push(certificates::find(&mut ca.db, &row.certificate_serial)?.der);
        next = row.parent;
    }
    Ok(chain)
}

/// The last instant a card's certificates may be valid:
/// min(issue date + 3 years, day after expiry) minus one second.
pub fn card_certificate_limit(card: &CardRow) -> DateTime<Utc> {
    certificate_limit(card, card.issue_date)
}

/// The card rule with a reference date (CPS 6.3.2: the card's issue date at
/// personalisation, the renewal date for a renewal):
/// min(reference + 3 years, day after card expiry) minus one second.
pub fn certificate_limit(card: &CardRow, reference: NaiveDate) -> DateTime<Utc> {
    let midnight = |d: NaiveDate| d.and_time(NaiveTime::MIN).and_utc();
    let three_years = reference
        .checked_add_months(Months::new(12 * CARD_CERT_YEARS))
        .unwrap_or(NaiveDate::MAX);
    let after_expiry = card.expiry_date.succ_opt().unwrap_or(NaiveDate::MAX);
    midnight(three_years.min(after_expiry)) - chrono::Duration::seconds(1)
}

/// Everything checked before the CSR is looked at.
struct Plan {
    index: usize,
    holder: IdentityRow,
    kind: CardKind,
    profile: Profile,
    not_after: DateTime<Utc>,
    /// Personalisation certificates start on hold (pending activation);
    /// mobile-derived ones, made for an activated card, start active.
    status: CertStatus,
    /// A mobile certificate: the card authentication certificate it follows.
    linked_serial: Option<String>,
}

/// A mobile-derived certificate needs the card's activated authentication
/// certificate (CPS 4.2.1 (6)), and never outlives it (CPS 6.3.2).
pub(crate) fn mobile_parent<'a>(
    card_number: &str,
    live: &'a HashMap<(String, Usage), CertificateRow>,
) -> Result<&'a CertificateRow> {
    match live.get(&(card_number.to_string(), Usage::Auth)) {
        Some(auth) if auth.status == CertStatus::Active => Ok(auth),
        Some(auth) => Err(CaError::NotEligible {
            card: card_number.to_string(),
            action: "issue a mobile certificate",
            reason: format!(
                "its authentication certificate {} is {}, not active",
                auth.serial, auth.status
            ),
        }),
        None => Err(CaError::NotEligible {
            card: card_number.to_string(),
            action: "issue a mobile certificate",
            reason: "it has no live authentication certificate".into(),
        }),
    }
}

pub(crate) fn check_holder_and_card(
    input: &IssueInput,
    card: &CardRow,
    holder: &IdentityRow,
    now: DateTime<Utc>,
) -> Result<(CardKind, DateTime<Utc>)> {
    use pki_registration::eligibility;
    eligibility::check_holder_active(holder)?;
    let kind = card.kind;
    eligibility::check_card_matches_holder(kind, holder)?;
    eligibility::check_card_valid_today(card, now)?;
    let not_after = card_certificate_limit(card);
    if not_after <= now {
        return Err(CaError::CardLifetimeOver {
            card: input.card_number.clone(),
            limit: not_after.naive_utc(),
        });
    }
    Ok((kind, not_after))
}

/// The one `certificate.issue` audit record (issuance and renewal): what
/// was certified, to whom, until when, and the hashes of the key and the
/// certificate, with the caller's own facts (`extra`, an object) added.
pub(crate) fn audit_issue(tx: &mut WriteTx<'_>, row: &CertificateRow, extra: serde_json::Value) {
    let mut details = serde_json::json!({
        "issuer": row.issuer, "profile": row.profile, "card": row.card_number,
        "usage": row.usage, "holder": row.holder_key, "not_after": row.not_after,
        "public_key_sha256": row.public_key_sha256,
        "certificate_sha256": pki_x509::sha256_hex(&row.der),
    });
    if let (Some(details), serde_json::Value::Object(extra)) = (details.as_object_mut(), extra) {
        details.extend(extra);
    }
    tx.audit(AuditAction::CertificateIssue, &row.serial, details);
}

/// The (card, usage) pairs a run has already taken, with the line that took
/// them, so that two lines of one batch never both get a certificate.
pub type Claims = HashMap<(String, Usage), usize>;

/// A chunk whose registry and card checks are done (database reads only).
pub struct PlannedChunk {
    inputs: Vec<IssueInput>,
    outcomes: Vec<Option<Outcome>>,
    plans: Vec<Plan>,
    live: HashMap<(String, Usage), CertificateRow>,
    now: DateTime<Utc>,
}

/// A chunk whose certificates are signed but not yet stored.
pub struct MintedChunk {
    inputs: Vec<IssueInput>,
    outcomes: Vec<Outcome>,
    now: DateTime<Utc>,
}

/// Reads what a chunk needs and applies the registry and card rules.
pub fn plan_chunk(
    ca: &mut Ca,
    issuers: &Issuers,
    inputs: Vec<IssueInput>,
    claims: &mut Claims,
) -> Result<PlannedChunk> {
    let now = ca.clock.now().trunc_subsecs(0);
    let card_numbers: HashSet<String> = inputs.iter().map(|i| i.card_number.clone()).collect();
    let cards = pki_store::lookup::cards(&mut ca.db, &card_numbers)?;
    let holder_keys: HashSet<String> = cards.values().map(|c| c.holder_key.clone()).collect();
    let holders = pki_store::lookup::identities(&mut ca.db, &holder_keys)?;
    let live = certificates::live_for_cards(&mut ca.db, &card_numbers)?;
    let key_hashes: Vec<Option<String>> = inputs
        .iter()
        .map(|i| blocked_keys::csr_key_sha256(&i.csr))
        .collect();
    let known: Vec<String> = key_hashes.iter().flatten().cloned().collect();
    let blocked = blocked_keys::blocked_among(&mut ca.db, &known)?;

    let mut outcomes: Vec<Option<Outcome>> = inputs.iter().map(|_| None).collect();
    let mut plans = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        let planned = (|| {
            let card = cards
                .get(&input.card_number)
                .ok_or_else(|| CaError::UnknownCard(input.card_number.clone()))?;
            let holder = holders
                .get(&card.holder_key)
                .ok_or_else(|| CaError::UnknownIdentity(card.holder_key.clone()))?;
            if let Some(row) = key_hashes[index].as_ref().and_then(|h| blocked.get(h)) {
                return Err(blocked_keys::refusal(row));
            }
            let (kind, card_limit) = check_holder_and_card(input, card, holder, now)?;
            let issuer = issuers.for_kind(kind)?;
            if card_limit > issuer.not_after {
                return Err(CaError::IssuerExpiresFirst {
                    ca: issuer.row.name.clone(),
                    ca_not_after: issuer.not_after.naive_utc(),
                    not_after: card_limit.naive_utc(),
                });
            }
            if let Some(first) = claims.get(&(input.card_number.clone(), input.usage)) {
                return Err(CaError::DuplicateInBatch(*first));
            }
            let (status, not_after, linked_serial) = if input.usage == Usage::MobileAuth {
                let auth = mobile_parent(&input.card_number, &live)?;
                let auth_end = auth.not_after.and_utc();
                (
                    CertStatus::Active,
                    card_limit.min(auth_end),
                    Some(auth.serial.clone()),
                )
            } else {
                (CertStatus::PendingActivation, card_limit, None)
            };
            claims.insert((input.card_number.clone(), input.usage), input.line);
            Ok(Plan {
                index,
                holder: holder.clone(),
                kind,
                profile: ca.policy.profile_for_usage(input.usage)?.clone(),
                not_after,
                status,
                linked_serial,
            })
        })();
        match planned {
            Ok(plan) => plans.push(plan),
            Err(e) => outcomes[index] = Some(Outcome::Rejected(e)),
        }
    }
    Ok(PlannedChunk {
        inputs,
        outcomes,
        plans,
        live,
        now,
    })
}

/// Checks the CSRs and signs, in parallel; touches no database.
pub fn mint_chunk(
    config: &Config,
    issuers: &Issuers,
    planned: PlannedChunk,
    options: ChunkOptions<'_>,
) -> MintedChunk {
    let PlannedChunk {
        inputs,
        mut outcomes,
        plans,
        live,
        now,
    } = planned;
    let minted: Vec<(usize, Outcome)> = plans
        .par_iter()
        .map(|plan| {
            let input = &inputs[plan.index];
            let outcome = mint_one(config, issuers, input, plan, &live, options, now)
                .unwrap_or_else(Outcome::Rejected);
            (plan.index, outcome)
        })
        .collect();
    for (index, outcome) in minted {
        outcomes[index] = Some(outcome);
    }
    MintedChunk {
        outcomes: outcomes
            .into_iter()
            .map(|o| o.expect("every input has an outcome"))
            .collect(),
        inputs,
        now,
    }
}

/// Stores a minted chunk: certificates, batch entries and audit records in
/// one transaction. On failure nothing is stored and every certificate of
/// the chunk is reported as rejected.
pub fn commit_chunk(
    db: &mut Db,
    actor: &str,
    minted: MintedChunk,
    options: ChunkOptions<'_>,
) -> Vec<(IssueInput, Outcome)> {
    let MintedChunk {
        inputs,
        outcomes,
        now,
    } = minted;
    let issued: Vec<(usize, &CertificateRow)> = outcomes
        .iter()
        .enumerate()
        .filter_map(|(i, o)| match o {
            Outcome::Issued(row) => Some((i, row)),
            _ => None,
        })
        .collect();
    let stored = if issued.is_empty() {
        Ok(())
    } else {
        db.write(actor, now, |tx| {
            let rows: Vec<CertificateRow> = issued.iter().map(|(_, r)| (*r).clone()).collect();
            // A key blocked since the chunk was planned (a revocation for
            // keyCompromise in between): nothing of the chunk is stored,
            // and the next attempt refuses that line at planning.
            let hashes: Vec<String> = rows.iter().map(|r| r.public_key_sha256.clone()).collect();
            if let Some(row) = blocked_keys::blocked_among(tx.db, &hashes)?.values().next() {
                return Err(blocked_keys::refusal(row));
            }
            certificates::insert(tx.db, &rows)?;
            if let Some(batch_id) = options.batch_id {
                let entries: Vec<BatchEntryRow> = issued
                    .iter()
                    .map(|(i, r)| BatchEntryRow {
                        batch_id: batch_id.to_string(),
                        line_no: inputs[*i].line as i64,
                        certificate_serial: r.serial.clone(),
                    })
                    .collect();
                for chunk in entries.chunks(1000) {
                    with_conn!(tx.db, c => diesel::insert_into(issuance_batch_entries::table).values(chunk).execute(c))?;
                }
            }
            for (i, r) in &issued {
                audit_issue(
                    tx,
                    r,
                    serde_json::json!({"batch": options.batch_id, "line": inputs[*i].line}),
                );
            }
            Ok::<_, CaError>(())
        })
    };
    let failure = stored.err().map(|e| e.to_string());
    inputs
        .into_iter()
        .zip(outcomes)
        .map(|(input, outcome)| match (&failure, outcome) {
            (Some(message), Outcome::Issued(_)) => (
                input,
                Outcome::Rejected(CaError::NotStored(message.clone())),
            ),
            (_, outcome) => (input, outcome),
        })
        .collect()
}

fn mint_one(
    config: &Config,
    issuers: &Issuers,
    input: &IssueInput,
    plan: &Plan,
    live: &HashMap<(String, Usage), CertificateRow>,
    options: ChunkOptions<'_>,
    now: DateTime<Utc>,
) -> Result<Outcome> {
    let checked = checked_csr(&input.csr, input.usage, &plan.profile)?;
    if let Some(existing) = live.get(&(input.card_number.clone(), input.usage)) {
        let key_hash = pki_x509::sha256_hex(
            &checked
                .public_key
                .to_der()
                .map_err(crate::x509::builder::BuildError::from)?,
        );
        if options.same_key_is_done && existing.public_key_sha256 == key_hash {
            return Ok(Outcome::AlreadyIssued(existing.clone()));
        }
        return Err(CaError::AlreadyHasLiveCertificate {
            card: input.card_number.clone(),
            usage: input.usage,
            serial: existing.serial.clone(),
        });
    }
    let row = build_card_certificate(
        config,
        issuers.for_kind(plan.kind)?,
        CardCertificate {
            holder: &plan.holder,
            card_number: &input.card_number,
            usage: input.usage,
            profile: &plan.profile,
            public_key: checked.public_key,
            not_after: plan.not_after,
            status: plan.status,
            linked_serial: plan.linked_serial.as_deref(),
        },
        now,
    )?;
    Ok(Outcome::Issued(row))
}

/// Checks a CSR's proof of possession and that the profile accepts its key.
pub(crate) fn checked_csr(der: &[u8], usage: Usage, profile: &Profile) -> Result<csr::CheckedCsr> {
    let checked = csr::check(der)?;
    if !profile.keys.contains(&checked.key_algorithm) {
        return Err(CaError::KeyNotAllowed {
            usage,
            key: checked.key_algorithm.name(),
            accepted: profile
                .keys
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(checked)
}

/// What a card certificate certifies.
pub(crate) struct CardCertificate<'a> {
    pub holder: &'a IdentityRow,
    pub card_number: &'a str,
    pub usage: Usage,
    pub profile: &'a Profile,
    pub public_key: spki::SubjectPublicKeyInfoOwned,
    pub not_after: DateTime<Utc>,
    pub status: CertStatus,
    pub linked_serial: Option<&'a str>,
}

/// Builds, lints and signs a card certificate (the subject from the registry).
pub(crate) fn build_card_certificate(
    config: &Config,
    issuer: &Authority,
    cert: CardCertificate<'_>,
    now: DateTime<Utc>,
) -> Result<CertificateRow> {
    let subject = name::natural_person(
        &config.country,
        &cert.holder.family_name,
        &cert.holder.given_names,
        &cert.holder.registry_key,
    )
    .map_err(|e| CaError::Field {
        field: "subject".into(),
        message: e.to_string(),
    })?;
    mint(
        config,
        MintRequest {
            profile: cert.profile,
            subject,
            public_key: cert.public_key,
            not_before: now,
            not_after: cert.not_after,
            latest_not_after: Some(cert.not_after),
            card: Some((cert.card_number, &cert.holder.registry_key, cert.usage)),
            status: cert.status,
            linked_serial: cert.linked_serial,
        },
        &crate::issuer::Issuer::of(issuer),
        now,
    )
}

/// Issues one certificate; any refusal is an error.
pub fn issue_one(ca: &mut Ca, input: IssueInput) -> Result<CertificateRow> {
    ca.keys.require_passphrase()?;
    let card = pki_store::lookup::card(&mut ca.db, &input.card_number)?;
    let kind = card.kind;
    let issuers = Issuers::load(ca, &[kind])?;
    let options = ChunkOptions {
        batch_id: None,
        same_key_is_done: false,
    };
    let planned = plan_chunk(ca, &issuers, vec![input], &mut Claims::new())?;
    let minted = mint_chunk(&ca.config, &issuers, planned, options);
    let actor = ca.actor.clone();
    let (input, outcome) = commit_chunk(&mut ca.db, &actor, minted, options)
        .pop()
        .expect("one input, one outcome");
    match outcome {
        Outcome::Issued(row) | Outcome::AlreadyIssued(row) => Ok(row),
        // The commit failed. Most likely another request (a second `issue`,
        // a batch) stored a certificate of this card and usage after this
        // one's checks: the index of one live certificate per card and
        // usage refused this one. Say so, with the winner's serial.
        Outcome::Rejected(CaError::NotStored(message)) => {
            let cards = HashSet::from([input.card_number.clone()]);
            let live = certificates::live_for_cards(&mut ca.db, &cards)?;
            Err(match live.get(&(input.card_number.clone(), input.usage)) {
                Some(winner) => CaError::IssuedMeanwhile {
                    card: input.card_number,
                    usage: input.usage,
                    serial: winner.serial.clone(),
                },
                None => CaError::NotStoredOne(message),
            })
        }
        Outcome::Rejected(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(issued: &str, expires: &str) -> CardRow {
        CardRow {
            card_number: "ID0001".into(),
            kind: CardKind::Identity,
            holder_key: "K".into(),
            issue_date: issued.parse().unwrap(),
            expiry_date: expires.parse().unwrap(),
            registered_at: chrono::NaiveDateTime::default(),
        }
    }

    #[test]
    fn certificates_live_three_years_from_card_issue_but_never_past_the_card() {
        let ten_year_card = card("2026-03-15", "2036-03-14");
        assert_eq!(
            card_certificate_limit(&ten_year_card).to_rfc3339(),
            "2029-03-14T23:59:59+00:00"
        );
        let short_card = card("2026-03-15", "2027-06-30");
        assert_eq!(
            card_certificate_limit(&short_card).to_rfc3339(),
            "2027-06-30T23:59:59+00:00"
        );
        let leap_day = card("2024-02-29", "2034-02-28");
        assert_eq!(
            card_certificate_limit(&leap_day).to_rfc3339(),
            "2027-02-27T23:59:59+00:00"
        );
    }
}
