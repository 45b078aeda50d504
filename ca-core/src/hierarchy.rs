//! `init`: creates the hierarchy the policy defines — the root, the issuing
//! CAs and one delegated OCSP responder certificate per CA — in one audited
//! transaction. It refuses when any authority exists; keys are written to
//! new files with random names, so a failed attempt never blocks a retry and
//! no key is ever overwritten.

use pki_keys::authority::{self, key_algorithm_name};

use crate::ca::Ca;
use crate::issuer::Issuer;
use crate::mint::{mint, MintRequest};
use crate::policy::{AuthorityDef, Profile, ValidityRule};
use chrono::{DateTime, SubsecRound, Utc};
use der::{Decode, Encode};
use diesel::prelude::*;
use pki_keys::{KeyStore, SignatureAlgorithm, Signer};
use pki_store::domain::AuditAction;
use pki_store::domain::{CardKind, CertStatus};
use pki_store::error::{CaError, Result};
use pki_store::storage::db_time;
use pki_store::storage::models::{AuthorityRow, CertificateRow, OcspResponderRow};
use pki_store::storage::schema::{authorities, ocsp_responders};
use pki_store::with_conn;
use pki_x509::{ext, name};
use spki::SubjectPublicKeyInfoOwned;
use std::sync::Arc;
use x509_cert::name::Name;

/// What `init` created.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Created {
    pub name: String,
    pub profile: String,
    pub serial: String,
    pub subject: String,
    pub not_after: String,
}

impl Created {
    fn responder(cert: &CertificateRow, row: &OcspResponderRow) -> Self {
        Created {
            name: format!("{} OCSP responder", row.authority),
            profile: cert.profile.clone(),
            serial: cert.serial.clone(),
            subject: cert.subject.clone(),
            not_after: row.not_after.and_utc().to_rfc3339(),
        }
    }
}

/// A CA made in memory (key, certificate), not yet stored.
pub(crate) struct NewCa {
    pub(crate) def_name: String,
    pub(crate) profile: String,
    pub(crate) parent: Option<String>,
    pub(crate) key_ref: String,
    pub(crate) signer: Arc<dyn Signer>,
    pub(crate) subject: Name,
    pub(crate) subject_der: Vec<u8>,
    pub(crate) key_id: Vec<u8>,
    pub(crate) not_after: DateTime<Utc>,
    pub(crate) card_kind: Option<CardKind>,
    pub(crate) cert: CertificateRow,
}

impl NewCa {
    /// The row stored for it (`key_ref` as given: the ceremony marks an
    /// offline key).
    pub(crate) fn row(&self, key_ref: String, now: DateTime<Utc>) -> AuthorityRow {
        AuthorityRow {
            name: self.def_name.clone(),
            profile: self.profile.clone(),
            parent: self.parent.clone(),
            key_ref,
            key_algorithm: key_algorithm_name(self.signer.algorithm()).to_string(),
            certificate_serial: self.cert.serial.clone(),
            subject_der: self.subject_der.clone(),
            key_id: self.key_id.clone(),
            not_after: db_time(self.not_after),
            card_kind: self.card_kind,
            created_at: db_time(now),
        }
    }

    /// The audit details of its creation.
    pub(crate) fn audit_details(&self) -> serde_json::Value {
        serde_json::json!({"profile": self.profile, "serial": self.cert.serial, "subject": self.cert.subject,
                           "not_after": self.not_after.to_rfc3339(), "key_ref": self.key_ref,
                           "certificate_sha256": pki_x509::sha256_hex(&self.cert.der)})
    }
}

fn key_file_name(base: &str) -> Result<String> {
    Ok(format!("{base}-{}", pki_keys::random_hex(4)?))
}

fn signature_algorithm(profile: &Profile) -> Result<SignatureAlgorithm> {
    profile
        .keys
        .iter()
        .find_map(|k| SignatureAlgorithm::for_key(*k))
        .ok_or_else(|| CaError::Field {
            field: format!("profiles.{}.keys", profile.name),
            message: "no key type a CA key can have (ec-p256, ec-p384)".into(),
        })
}

fn validity_end(
    profile: &Profile,
    from: DateTime<Utc>,
    cap: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    let days = match profile.validity {
        ValidityRule::Days(d) => d as i64,
        ValidityRule::Card => 0,
    };
    let end = from + chrono::Duration::days(days);
    cap.map_or(end, |c| end.min(c))
}

fn spki_of(signer: &dyn Signer) -> Result<SubjectPublicKeyInfoOwned> {
    SubjectPublicKeyInfoOwned::from_der(signer.public_key_der()).map_err(|e| CaError::Field {
        field: "public key".into(),
        message: e.to_string(),
    })
}

fn der_of(n: &Name) -> Result<Vec<u8>> {
    n.to_der()
        .map_err(|e| CaError::from(crate::x509::builder::BuildError::from(e)))
}

/// Makes a CA's key in `keys` and its certificate, signed by `parent`
/// (self-signed without one).
pub(crate) fn create_ca(
    ca: &Ca,
    keys: &KeyStore,
    def: &AuthorityDef,
    parent: Option<&Issuer<'_>>,
    now: DateTime<Utc>,
) -> Result<NewCa> {
    let profile = ca.policy.profile(&def.profile)?;
    let alg = signature_algorithm(profile)?;
    let (key_ref, signer) = keys.generate(&key_file_name(&def.name)?, alg)?;
    let subject = name::authority(
        &ca.config.country,
        &ca.config.organization,
        &def.common_name,
    )
    .map_err(|e| CaError::Field {
        field: format!("authorities.{}", def.name),
        message: e.to_string(),
    })?;
    let subject_der = der_of(&subject)?;
    let public_key = spki_of(signer.as_ref())?;
    let key_id = ext::key_identifier(public_key.subject_public_key.raw_bytes());
    let not_after = validity_end(profile, now, parent.and_then(|p| p.not_after));
    let request = MintRequest {
        profile,
        subject: subject.clone(),
        public_key,
        not_before: now,
        not_after,
        latest_not_after: None,
        card: None,
        status: CertStatus::Active,
        linked_serial: None,
    };
    let cert = match parent {
        Some(p) => mint(&ca.config, request, p, now)?,
        None => {
            let own = Issuer {
                subject: &subject,
                subject_der: &subject_der,
                key_id: &key_id,
                ca_name: &def.name,
                signer: signer.as_ref(),
                not_after: None,
            };
            mint(&ca.config, request, &own, now)?
        }
    };
    Ok(NewCa {
        def_name: def.name.clone(),
        profile: def.profile.clone(),
        parent: def.parent.clone(),
        key_ref,
        signer,
        subject,
        subject_der,
        key_id,
        not_after,
        card_kind: def.card_kind,
        cert,
    })
}

pub(crate) fn issuer_of(ca: &NewCa) -> Issuer<'_> {
    Issuer {
        subject: &ca.subject,
        subject_der: &ca.subject_der,
        key_id: &ca.key_id,
        ca_name: &ca.def_name,
        signer: ca.signer.as_ref(),
        not_after: Some(ca.not_after),
    }
}

/// Mints a delegated OCSP responder certificate for an authority; returns
/// the certificate and the responder row (key reference included).
pub fn create_responder(
    ca: &Ca,
    issuer: &Issuer<'_>,
    issuer_common_name: &str,
    now: DateTime<Utc>,
) -> Result<(CertificateRow, OcspResponderRow)> {
    let profile = ca.policy.responder_profile();
    let alg = signature_algorithm(profile)?;
    let (key_ref, signer) = ca
        .responder_keys
        .generate(&key_file_name(&format!("ocsp-{}", issuer.ca_name))?, alg)?;
    let subject = name::authority(
        &ca.config.country,
        &ca.config.organization,
        &format!("{issuer_common_name} OCSP Responder"),
    )
    .map_err(|e| CaError::Field {
        field: "responder subject".into(),
        message: e.to_string(),
    })?;
    let not_after = validity_end(profile, now, issuer.not_after);
    let cert = mint(
        &ca.config,
        MintRequest {
            profile,
            subject,
            public_key: spki_of(signer.as_ref())?,
            not_before: now,
            not_after,
            latest_not_after: None,
            card: None,
            status: CertStatus::Active,
            linked_serial: None,
        },
        issuer,
        now,
    )?;
    let row = OcspResponderRow {
        certificate_serial: cert.serial.clone(),
        authority: issuer.ca_name.to_string(),
        key_ref,
        key_algorithm: key_algorithm_name(alg).to_string(),
        not_after: db_time(not_after),
        created_at: db_time(now),
    };
    Ok((cert, row))
}

/// Creates the whole hierarchy. Refuses if any authority already exists.
pub fn init(ca: &mut Ca) -> Result<Vec<Created>> {
    let existing = pki_store::authorities::list(&mut ca.db)?;
    if !existing.is_empty() {
        let names: Vec<String> = existing.into_iter().map(|a| a.name).collect();
        return Err(CaError::AlreadyInitialised(names.join(", ")));
    }
    ca.keys.require_passphrase()?;
    ca.responder_keys.require_passphrase()?;
    let now = ca.clock.now().trunc_subsecs(0);
    let defs = ca
        .policy
        .authorities()
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    let root_def = &defs[0];
    let root = create_ca(ca, &ca.keys, root_def, None, now)?;
    let mut cas = vec![];
    for def in &defs[1..] {
        cas.push(create_ca(ca, &ca.keys, def, Some(&issuer_of(&root)), now)?);
    }
    cas.insert(0, root);
    let mut responders = Vec::new();
    for (c, def) in cas.iter().zip(&defs) {
        responders.push(create_responder(ca, &issuer_of(c), &def.common_name, now)?);
    }

    let mut created = Vec::new();
    for c in &cas {
        created.push(Created {
            name: c.def_name.clone(),
            profile: c.profile.clone(),
            serial: c.cert.serial.clone(),
            subject: c.cert.subject.clone(),
            not_after: c.not_after.to_rfc3339(),
        });
    }
    for (cert, row) in &responders {
        created.push(Created::responder(cert, row));
    }
    let actor = ca.actor.clone();
    ca.db.write(&actor, now, |tx| {
        // Another `init` may have finished while these keys were made.
        let raced = pki_store::authorities::list(tx.db)?;
        if !raced.is_empty() {
            let names: Vec<String> = raced.into_iter().map(|a| a.name).collect();
            return Err(CaError::AlreadyInitialised(names.join(", ")));
        }
        let rows: Vec<AuthorityRow> = cas.iter().map(|c| c.row(c.key_ref.clone(), now)).collect();
        for row in &rows {
            with_conn!(tx.db, c => diesel::insert_into(authorities::table).values(row).execute(c))?;
        }
        let mut certs: Vec<CertificateRow> = cas.iter().map(|c| c.cert.clone()).collect();
        certs.extend(responders.iter().map(|(c, _)| c.clone()));
        pki_store::certificates::insert(tx.db, &certs)?;
        for (_, row) in &responders {
            with_conn!(tx.db, c => diesel::insert_into(ocsp_responders::table).values(row).execute(c))?;
        }
        for c in &cas {
            tx.audit(AuditAction::CaCreate, &c.def_name, c.audit_details());
        }
        for (cert, row) in &responders {
            tx.audit(
                AuditAction::OcspResponderCreate,
                &row.authority,
                serde_json::json!({"serial": cert.serial, "subject": cert.subject, "key_ref": row.key_ref,
                                   "not_after": row.not_after.and_utc().to_rfc3339()}),
            );
        }
        Ok::<_, CaError>(())
    })?;
    Ok(created)
}

/// Issues a new OCSP responder certificate (and key) for an authority. The
/// old one stays valid until it expires, so responders switch without a
/// gap; they follow the change feed and sign with the newest one.
pub fn rotate_responder(ca: &mut Ca, authority_name: &str) -> Result<Created> {
    ca.responder_keys.require_passphrase()?;
    let now = ca.clock.now().trunc_subsecs(0);
    let common_name = ca
        .policy
        .authority(authority_name)
        .map(|d| d.common_name.clone())
        .ok_or(CaError::NotInitialised)?;
    let authority = authority::load_row(&mut ca.db, authority_name)?.open(&ca.keys)?;
    let (cert, row) = create_responder(ca, &Issuer::of(&authority), &common_name, now)?;
    let created = Created::responder(&cert, &row);
    let actor = ca.actor.clone();
    ca.db.write(&actor, now, |tx| {
        pki_store::certificates::insert(tx.db, std::slice::from_ref(&cert))?;
        with_conn!(tx.db, c => diesel::insert_into(ocsp_responders::table).values(&row).execute(c))?;
        tx.audit(
            AuditAction::OcspResponderRotate,
            authority_name,
            serde_json::json!({"serial": cert.serial, "subject": cert.subject, "key_ref": row.key_ref,
                               "not_after": row.not_after.and_utc().to_rfc3339()}),
        );
        Ok::<_, CaError>(())
    })?;
    Ok(created)
}

/// What [`rotate_responders`] did for one authority.
#[derive(Debug, Clone)]
pub enum Rotation {
    /// The current responder certificate lasts beyond the window: kept.
    Kept {
        authority: String,
    },
    /// The authority's key is kept offline (the ceremony's root): its
    /// responder certificate is renewed in a key ceremony, never here.
    Offline {
        authority: String,
    },
    Rotated {
        authority: String,
        created: Created,
    },
}

/// Rotates the OCSP responder certificates of `only` (or of every
/// authority), each only when it ends within `within` (always when
/// `within` is `None`). The responders switch to the new certificate
/// through the change feed without a gap; the old one stays valid until it
/// expires. Used by `pki-admin ocsp rotate` and `pki-admin worker`.
pub fn rotate_responders(
    ca: &mut Ca,
    only: Option<&str>,
    within: Option<chrono::Duration>,
) -> Result<Vec<Rotation>> {
    let rows = match only {
        Some(name) => vec![pki_store::authorities::find(&mut ca.db, name)?],
        None => pki_store::authorities::list(&mut ca.db)?,
    };
    let now = ca.clock.now();
    let mut out = Vec::new();
    for row in rows {
        let name = row.name.clone();
        if only.is_none() && pki_store::authorities::is_offline(&row) {
            out.push(Rotation::Offline { authority: name });
            continue;
        }
        if let Some(within) = within {
            if !pki_store::authorities::responder_needs_rotation(&mut ca.db, &name, now, within)? {
                out.push(Rotation::Kept { authority: name });
                continue;
            }
        }
        let created = rotate_responder(ca, &name)?;
        out.push(Rotation::Rotated {
            authority: name,
            created,
        });
    }
    Ok(out)
}
