//! Issuance of card certificates from PKCS#10 requests. One engine serves a
//! single `issue` and every chunk of a bureau batch: registry and card rules
//! are checked first (cheap, sequential), then proof of possession, building,
//! linting and signing run in parallel, and the chunk's certificates, batch
//! entries and audit records commit in one transaction.

use crate::authority::{self, Authority};
use crate::ca::Ca;
use crate::domain::{CardKind, CertStatus, IdentityStatus, Usage};
use crate::error::{CaError, Result};
use crate::mint::{mint, Issuer, MintRequest};
use crate::policy::Profile;
use crate::storage::models::{BatchEntryRow, CardRow, CertificateRow, IdentityRow};
use crate::storage::schema::issuance_batch_entries;
use crate::storage::StorageError;
use crate::x509::{csr, name};
use crate::{cards, certificates, registry, with_conn};
use chrono::{DateTime, Months, NaiveDate, NaiveTime, SubsecRound, Utc};
use der::Encode;
use diesel::prelude::*;
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
    pub fn load(ca: &mut Ca) -> Result<Self> {
        let mut by_kind = HashMap::new();
        for kind in CardKind::ALL {
            let def = ca.policy.authority_for_card_kind(*kind)?.name.clone();
            by_kind.insert(*kind, authority::load(ca, &def)?);
        }
        Ok(Self { by_kind })
    }

    fn for_kind(&self, kind: CardKind) -> &Authority {
        &self.by_kind[&kind]
    }

    /// The chain above a card certificate: issuing CA then root.
    pub fn chain_der(&self, ca: &mut Ca, issuer: &str) -> Result<Vec<Vec<u8>>> {
        let issuing = self
            .by_kind
            .values()
            .find(|a| a.row.name == issuer)
            .ok_or(CaError::NotInitialised)?;
        let mut chain = vec![issuing.certificate_der.clone()];
        if let Some(parent) = &issuing.row.parent {
            let root = authority::find(&mut ca.db, parent)?;
            chain.push(certificates::find(&mut ca.db, &root.certificate_serial)?.der);
        }
        Ok(chain)
    }
}

/// The last instant a card's certificates may be valid:
/// min(issue date + 3 years, day after expiry) minus one second.
pub fn card_certificate_limit(card: &CardRow) -> DateTime<Utc> {
    let midnight = |d: NaiveDate| d.and_time(NaiveTime::MIN).and_utc();
    let three_years = card
        .issue_date
        .checked_add_months(Months::new(12 * CARD_CERT_YEARS))
        .unwrap_or(NaiveDate::MAX);
    let after_expiry = card.expiry_date.succ_opt().unwrap_or(NaiveDate::MAX);
    midnight(three_years.min(after_expiry)) - chrono::Duration::seconds(1)
}

/// Everything checked before the CSR is looked at.
struct Plan<'a> {
    index: usize,
    card: &'a CardRow,
    holder: &'a IdentityRow,
    kind: CardKind,
    profile: &'a Profile,
    not_after: DateTime<Utc>,
}

fn check_holder_and_card(
    input: &IssueInput,
    card: &CardRow,
    holder: &IdentityRow,
    now: DateTime<Utc>,
) -> Result<(CardKind, DateTime<Utc>)> {
    let status: IdentityStatus = holder.status.parse().map_err(|m| CaError::Field {
        field: "status".into(),
        message: m,
    })?;
    if status != IdentityStatus::Active {
        return Err(CaError::HolderNotActive {
            holder: holder.registry_key.clone(),
            status,
        });
    }
    let kind: CardKind = card.kind.parse().map_err(|m| CaError::Field {
        field: "kind".into(),
        message: m,
    })?;
    let authority = holder.authority.parse().map_err(|m| CaError::Field {
        field: "authority".into(),
        message: m,
    })?;
    if kind.authority() != authority {
        return Err(CaError::CardKindMismatch {
            kind,
            holder: holder.registry_key.clone(),
            authority,
            expected: kind.authority(),
        });
    }
    let today = now.date_naive();
    if today < card.issue_date || today > card.expiry_date {
        return Err(CaError::CardNotValid {
            card: input.card_number.clone(),
            today,
            from: card.issue_date,
            until: card.expiry_date,
        });
    }
    let not_after = card_certificate_limit(card);
    if not_after <= now {
        return Err(CaError::CardLifetimeOver {
            card: input.card_number.clone(),
            limit: not_after.naive_utc(),
        });
    }
    Ok((kind, not_after))
}

/// Issues a chunk of inputs; returns one outcome per input, in order.
/// An `Err` means the chunk's transaction failed and nothing was stored.
pub fn issue_chunk(
    ca: &mut Ca,
    issuers: &Issuers,
    inputs: &[IssueInput],
    options: ChunkOptions<'_>,
) -> Result<Vec<Outcome>> {
    let now = ca.clock.now().trunc_subsecs(0);
    let card_numbers: HashSet<String> = inputs.iter().map(|i| i.card_number.clone()).collect();
    let cards = cards::find_many(&mut ca.db, &card_numbers)?;
    let holder_keys: HashSet<String> = cards.values().map(|c| c.holder_key.clone()).collect();
    let holders = registry::find_many(&mut ca.db, &holder_keys)?;
    let live = certificates::live_for_cards(&mut ca.db, &card_numbers)?;

    let mut outcomes: Vec<Option<Outcome>> = inputs.iter().map(|_| None).collect();
    let mut plans = Vec::new();
    let mut claimed: HashMap<(String, Usage), usize> = HashMap::new();
    for (index, input) in inputs.iter().enumerate() {
        let planned = (|| {
            let card = cards
                .get(&input.card_number)
                .ok_or_else(|| CaError::UnknownCard(input.card_number.clone()))?;
            let holder = holders
                .get(&card.holder_key)
                .ok_or_else(|| CaError::UnknownIdentity(card.holder_key.clone()))?;
            let (kind, card_limit) = check_holder_and_card(input, card, holder, now)?;
            let issuer = issuers.for_kind(kind);
            if card_limit > issuer.not_after {
                return Err(CaError::IssuerExpiresFirst {
                    ca: issuer.row.name.clone(),
                    ca_not_after: issuer.not_after.naive_utc(),
                    not_after: card_limit.naive_utc(),
                });
            }
            if let Some(first) =
                claimed.insert((input.card_number.clone(), input.usage), input.line)
            {
                return Err(CaError::DuplicateInBatch(first));
            }
            Ok(Plan {
                index,
                card,
                holder,
                kind,
                profile: ca.policy.profile_for_usage(input.usage)?,
                not_after: card_limit,
            })
        })();
        match planned {
            Ok(plan) => plans.push(plan),
            Err(e) => outcomes[index] = Some(Outcome::Rejected(e)),
        }
    }

    let config = &ca.config;
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
    let outcomes: Vec<Outcome> = outcomes
        .into_iter()
        .map(|o| o.expect("every input has an outcome"))
        .collect();

    let issued: Vec<(usize, &CertificateRow)> = outcomes
        .iter()
        .enumerate()
        .filter_map(|(i, o)| match o {
            Outcome::Issued(row) => Some((i, row)),
            _ => None,
        })
        .collect();
    if !issued.is_empty() {
        let actor = ca.actor.clone();
        ca.db.write(&actor, now, |tx| {
            let rows: Vec<CertificateRow> = issued.iter().map(|(_, r)| (*r).clone()).collect();
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
                    with_conn!(tx.db, c => diesel::insert_into(issuance_batch_entries::table).values(chunk).execute(c))
                        .map_err(StorageError::from)?;
                }
            }
            for (i, r) in &issued {
                tx.audit(
                    "certificate.issue",
                    &r.serial,
                    serde_json::json!({"issuer": r.issuer, "profile": r.profile, "card": r.card_number,
                                       "usage": r.usage, "holder": r.holder_key, "not_after": r.not_after,
                                       "public_key_sha256": r.public_key_sha256,
                                       "certificate_sha256": crate::x509::sha256_hex(&r.der),
                                       "batch": options.batch_id, "line": inputs[*i].line}),
                );
            }
            Ok::<_, CaError>(())
        })?;
    }
    Ok(outcomes)
}

fn mint_one(
    config: &crate::config::Config,
    issuers: &Issuers,
    input: &IssueInput,
    plan: &Plan<'_>,
    live: &HashMap<(String, Usage), CertificateRow>,
    options: ChunkOptions<'_>,
    now: DateTime<Utc>,
) -> Result<Outcome> {
    let checked = csr::check(&input.csr)?;
    if !plan.profile.keys.contains(&checked.key_algorithm) {
        return Err(CaError::KeyNotAllowed {
            usage: input.usage,
            key: checked.key_algorithm.name(),
            accepted: plan
                .profile
                .keys
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    if let Some(existing) = live.get(&(input.card_number.clone(), input.usage)) {
        let key_hash = crate::x509::sha256_hex(
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
    let holder = plan.holder;
    let subject = name::natural_person(
        &config.country,
        &holder.family_name,
        &holder.given_names,
        &holder.registry_key,
    )
    .map_err(|e| CaError::Field {
        field: "subject".into(),
        message: e.to_string(),
    })?;
    let issuer = issuers.for_kind(plan.kind);
    let row = mint(
        config,
        MintRequest {
            profile: plan.profile,
            subject,
            public_key: checked.public_key,
            not_before: now,
            not_after: plan.not_after,
            latest_not_after: Some(plan.not_after),
            card: Some((&plan.card.card_number, &holder.registry_key, input.usage)),
            status: CertStatus::Active,
        },
        &Issuer {
            subject: &issuer.subject,
            subject_der: &issuer.row.subject_der,
            key_id: &issuer.row.key_id,
            ca_name: &issuer.row.name,
            signer: issuer.signer.as_ref(),
            not_after: Some(issuer.not_after),
        },
        now,
    )?;
    Ok(Outcome::Issued(row))
}

/// Issues one certificate; any refusal is an error.
pub fn issue_one(ca: &mut Ca, input: IssueInput) -> Result<CertificateRow> {
    ca.keys.require_passphrase()?;
    let issuers = Issuers::load(ca)?;
    let outcome = issue_chunk(
        ca,
        &issuers,
        std::slice::from_ref(&input),
        ChunkOptions {
            batch_id: None,
            same_key_is_done: false,
        },
    )?
    .pop()
    .expect("one input, one outcome");
    match outcome {
        Outcome::Issued(row) | Outcome::AlreadyIssued(row) => Ok(row),
        Outcome::Rejected(e) => Err(e),
    }
}
