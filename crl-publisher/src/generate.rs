//! Building and signing CRLs: [`Publisher`] holds the CA context, the opened
//! authorities and the settings, and makes complete and delta CRLs.
//!
//! **Complete CRL** of a scope: the feed position is read first, then a CRL
//! number is reserved (committed), then the listed certificates are streamed
//! page by page straight into the encoder, then the TBS is signed once.
//! Certificates that expired at or before the previous complete CRL of the
//! scope are left out: an expired certificate appears on exactly one CRL
//! published after its expiry.
//!
//! **Delta CRL** of a scope: relative to the current complete CRL (its base).
//! The serials changed in the feed since the base's feed position, plus the
//! entries that the next complete CRL drops because they expired, are looked
//! up now; the base file is scanned for those serials; each differing
//! certificate is listed with its current entry, or with `removeFromCRL` if
//! it left the list (resumed, activated, expired). Applying the delta to its
//! base gives exactly what a complete CRL made at the same time would list.

use crate::encode::{self, CrlExtensions, CrlWriter, EntryData};
use crate::entries::{self, ListedRow, Selection};
use crate::error::{CrlError, Result};
use crate::publish::{self, Generated, Outcome};
use crate::scan;
use crate::schedule::Settings;
use crate::scope::{Kind, Scope};
use crate::state::{self, Record};
use chrono::{DateTime, Utc};
use der::Encode;
use pki_keys::authority::{self, Authority};
use pki_keys::KeyStore;
use pki_store::authorities;
use pki_store::storage::models::AuthorityRow;
use pki_store::storage::Db;
use pki_store::Context;
use pki_x509::sha256_hex;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Instant;

/// A CRL that was published, with its bytes (for serving).
#[derive(Debug, Clone)]
pub struct Publication {
    pub scope: Scope,
    pub record: Record,
    pub body: bytes::Bytes,
    /// Reading, encoding and signing.
    pub generation: std::time::Duration,
    /// Generation plus writing and recording.
    pub total: std::time::Duration,
}

/// What publishing a scope did.
#[derive(Debug, Clone)]
pub enum Published {
    Done(Box<Publication>),
    /// A newer CRL of the scope was published meanwhile (another publisher).
    Superseded {
        scope: Scope,
        number: i64,
        by: i64,
    },
}

/// Why a delta could not be made from the current base.
enum DeltaBase {
    Ready(Box<Record>, PathBuf),
    /// No complete CRL yet, or its file is gone or was replaced.
    Unusable(String),
}

/// The CA context, its authorities (keys opened when first needed: each
/// costs a scrypt derivation), and the settings.
pub struct Publisher {
    /// The store: configuration, clock, database.
    pub ca: Context,
    /// The CA keys that sign CRLs (the signer has no listener: `crl-server`
    /// serves what it writes and holds no key).
    keys: KeyStore,
    pub settings: Settings,
    authorities: BTreeMap<String, AuthorityRow>,
    signers: BTreeMap<String, Authority>,
    /// Extra database connections for reading ranges of entries in parallel.
    readers: Vec<Db>,
    root: Option<String>,
    /// Partitions to publish besides `0..[crl] partitions`, per issuer.
    extra_partitions: BTreeMap<String, BTreeSet<u32>>,
}

/// Entries of the previous CRL from which a complete CRL is read by
/// several connections in parallel.
const PARALLEL_FROM: i64 = 50_000;

/// Large sequential reads on SQLite: a somewhat bigger page cache (8 MiB).
/// (Memory-mapping the file would be faster, but its pages would count in
/// the process's resident memory.)
fn tune_reader(db: &mut Db) -> Result<()> {
    if let Db::Sqlite(c) = db {
        use diesel::connection::SimpleConnection;
        c.batch_execute("PRAGMA cache_size = -8192;")?;
    }
    Ok(())
}

/// Reads one range of a selection, encoding each entry into `out`.
fn read_range(db: &mut Db, sel: &Selection<'_>, page_size: i64, out: &mut Vec<u8>) -> Result<u64> {
    entries::stream(db, sel, page_size, |row| row.push_entry(out))
}

fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

impl Publisher {
    /// Validates the settings and loads the authorities.
    pub fn open(mut ca: Context, keys: KeyStore, settings: Settings) -> Result<Publisher> {
        settings.validate(ca.clock.now())?;
        tune_reader(&mut ca.db)?;
        let mut p = Publisher {
            ca,
            settings,
            authorities: BTreeMap::new(),
            signers: BTreeMap::new(),
            readers: Vec::new(),
            root: None,
            keys,
            extra_partitions: BTreeMap::new(),
        };
        p.reload_authorities()?;
        Ok(p)
    }

    /// Loads authorities created since the last load (and their partitions).
    pub fn reload_authorities(&mut self) -> Result<()> {
        let rows = authorities::list(&mut self.ca.db)?;
        if rows.is_empty() {
            return Err(CrlError::Ca(pki_store::CaError::NotInitialised));
        }
        for row in rows {
            if row.parent.is_none() {
                self.root = Some(row.name.clone());
            }
            if self.authorities.contains_key(&row.name) {
                continue;
            }
            let mut parts = state::published_partitions(&mut self.ca.db, &row.name)?;
            parts.extend(entries::listed_partitions(&mut self.ca.db, &row.name)?);
            self.extra_partitions.insert(row.name.clone(), parts);
            self.authorities.insert(row.name.clone(), row);
        }
        Ok(())
    }

    /// The root, when its key is online. A root made in a key ceremony keeps
    /// its key offline (`authorities::is_offline`): its ARL is signed in a
    /// ceremony, never here.
    fn online_root(&self) -> Option<&str> {
        let root = self.root.as_deref()?;
        let row = self.authorities.get(root)?;
        (!authorities::is_offline(row)).then_some(root)
    }

    /// Opens an authority's key (once).
    pub fn open_signer(&mut self, name: &str) -> Result<()> {
        if !self.signers.contains_key(name) {
            self.authority(name)?;
            let opened = authority::load_row(&mut self.ca.db, name)?.open(&self.keys)?;
            self.signers.insert(name.to_string(), opened);
        }
        Ok(())
    }

    /// Every authority's name and certificate serial (for its `.cer` file).
    pub fn certificates(&self) -> Vec<(String, String)> {
        self.authorities
            .values()
            .map(|a| (a.name.clone(), a.certificate_serial.clone()))
            .collect()
    }

    /// Writes the CA certificates (`<name>.cer`) into the publication directory.
    pub fn publish_certificates(&mut self) -> Result<usize> {
        let list = self.certificates();
        let out_dir = self.settings.out_dir.clone();
        crate::ca_certs::publish(&mut self.ca.db, &out_dir, &list)
    }

    /// The root's name.
    pub fn root(&self) -> Option<&str> {
        self.root.as_deref()
    }

    /// An authority's stored row.
    pub fn authority(&self, name: &str) -> Result<&AuthorityRow> {
        self.authorities
            .get(name)
            .ok_or_else(|| CrlError::UnknownAuthority(name.to_string()))
    }

    /// Remembers a partition seen in the data (published from now on).
    pub fn note_partition(&mut self, issuer: &str, partition: u32) {
        self.extra_partitions
            .entry(issuer.to_string())
            .or_default()
            .insert(partition);
    }

    /// The complete scopes: the root's ARL first, then each issuing CA's
    /// partitions (`0..[crl] partitions`, plus any partition that lists a
    /// certificate or was published before).
    pub fn scopes(&self) -> Vec<Scope> {
        let mut out = Vec::new();
        if let Some(root) = self.online_root() {
            out.push(Scope::arl(root));
        }
        for (name, a) in &self.authorities {
            if a.parent.is_none() {
                continue;
            }
            let mut parts: BTreeSet<u32> = (0..self.ca.config.crl.partitions).collect();
            if let Some(extra) = self.extra_partitions.get(name) {
                parts.extend(extra);
            }
            out.extend(parts.into_iter().map(|p| Scope::complete(name, p)));
        }
        out
    }

    /// The scope a certificate's status belongs to (None: on no CRL, like
    /// the root's OCSP responder certificates, which are no-check).
    pub fn scope_of(&self, issuer: &str, partition: u32, kind: &str) -> Option<Scope> {
        if Some(issuer) == self.root.as_deref() {
            (kind == "issuing-ca" && self.online_root().is_some()).then(|| Scope::arl(issuer))
        } else {
            self.authorities
                .contains_key(issuer)
                .then(|| Scope::complete(issuer, partition))
        }
    }

    fn times(&self, scope: &Scope) -> (DateTime<Utc>, DateTime<Utc>) {
        let this_update = whole_seconds(self.ca.clock.now());
        let validity = match (scope.arl, scope.kind) {
            (true, _) => self.settings.arl_validity,
            (false, Kind::Complete) => self.settings.validity,
            (false, Kind::Delta) => self.settings.delta_validity,
        };
        (this_update, this_update + validity)
    }

    fn reserve(&mut self, issuer: &str) -> Result<i64> {
        let actor = self.ca.actor.clone();
        let now = self.ca.clock.now();
        state::reserve_number(&mut self.ca.db, &actor, now, issuer)
    }

    /// Builds and signs the complete CRL of a scope.
    pub fn generate_complete(&mut self, scope: &Scope) -> Result<Generated> {
        let scope = scope.base();
        // Unlocking a key (once per process) is not part of generating a CRL.
        self.open_signer(&scope.issuer)?;
        let started = Instant::now();
        let prev = state::latest(
            &mut self.ca.db,
            &scope.issuer,
            scope.partition,
            Kind::Complete,
        )?;
        let expiry_cutoff = prev.as_ref().map(|r| r.this_update);
        let feed_position = pki_store::feed::position(&mut self.ca.db)?;
        let number = self.reserve(&scope.issuer)?;
        let a = &self.signers[&scope.issuer];
        let algorithm = a.signer.algorithm().identifier().to_der()?;
        let hint = prev
            .as_ref()
            .map_or(0, |r| r.size_bytes.max(0) as usize * 21 / 20);
        let mut w = CrlWriter::new(&algorithm, &a.row.subject_der, hint);
        let base_sel = Selection {
            issuer: &scope.issuer,
            partition: scope.partition,
            ca_certificates_only: scope.arl,
            expiry_cutoff,
            lower: None,
            upper: None,
        };
        let page_size = self.settings.page_size;
        // Ranges of serials read in parallel, each on its own connection,
        // concatenated in order.
        // (Only worth it for a large CRL: judged by the previous one.)
        let large = prev.as_ref().is_some_and(|r| r.entries >= PARALLEL_FROM);
        let threads = if large {
            self.settings.read_threads.max(1)
        } else {
            1
        };
        let bounds = match (threads > 1)
            .then(|| entries::serial_range(&mut self.ca.db, &base_sel))
            .transpose()?
            .flatten()
        {
            Some((lo, hi)) => entries::split_serials(&lo, &hi, threads),
            None => Vec::new(),
        };
        while self.readers.len() < bounds.len() {
            let mut db = Db::connect(&self.ca.config.database_url())?;
            tune_reader(&mut db)?;
            self.readers.push(db);
        }
        let ranges: Vec<Selection<'_>> = (0..=bounds.len())
            .map(|i| Selection {
                lower: i.checked_sub(1).map(|j| bounds[j].clone()),
                upper: bounds.get(i).cloned(),
                ..base_sel.clone()
            })
            .collect();
        let first_db = &mut self.ca.db;
        let readers = &mut self.readers;
        let rest: Vec<Result<(Vec<u8>, u64)>> = std::thread::scope(|s| {
            let handles: Vec<_> = readers
                .iter_mut()
                .zip(ranges.iter().skip(1))
                .map(|(db, sel)| {
                    s.spawn(move || {
                        let mut out = Vec::new();
                        let n = read_range(db, sel, page_size, &mut out)?;
                        Ok((out, n))
                    })
                })
                .collect();
            let first = w.push_with_count(|out| read_range(first_db, &ranges[0], page_size, out));
            let mut results: Vec<Result<(Vec<u8>, u64)>> = handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(CrlError::malformed("reader thread panicked")))
                })
                .collect();
            if let Err(e) = first {
                results.insert(0, Err(e));
            }
            results
        });
        for r in rest {
            let (bytes, n) = r?;
            w.extend_der(&bytes, n);
        }
        let entries = w.entries();
        let (this_update, next_update) = self.times(&scope);
        // The ARL names no distribution point: it covers every CA certificate
        // of the root, and the root itself (OpenSSL's -crl_check_all checks
        // the trust anchor too, and the root has no CRL distribution point).
        let dp = (!scope.arl).then(|| scope.distribution_point(&self.ca.config));
        let freshest =
            (self.settings.deltas && !scope.arl).then(|| scope.delta().url(&self.ca.config));
        let exts = encode::crl_extensions(&CrlExtensions {
            authority_key_id: &a.row.key_id,
            number,
            base_number: None,
            distribution_point: dp.as_deref(),
            only_ca_certs: scope.arl,
            freshest: freshest.as_deref(),
        })?;
        let der = w.finish(&this_update, &next_update, &exts, a.signer.as_ref())?;
        let sha256 = sha256_hex(der.as_bytes());
        Ok(Generated {
            scope,
            number,
            base_number: None,
            this_update,
            next_update,
            expiry_cutoff,
            feed_position,
            entries,
            der,
            sha256,
            elapsed: started.elapsed(),
        })
    }

    fn delta_base(&mut self, scope: &Scope) -> Result<DeltaBase> {
        let Some(base) = state::latest(
            &mut self.ca.db,
            &scope.issuer,
            scope.partition,
            Kind::Complete,
        )?
        else {
            return Ok(DeltaBase::Unusable("no complete CRL yet".into()));
        };
        let path = PathBuf::from(&base.location);
        match scan::scan_file(&path, None) {
            Ok(s) if s.number == Some(base.number) => Ok(DeltaBase::Ready(Box::new(base), path)),
            Ok(s) => Ok(DeltaBase::Unusable(format!(
                "{} holds CRL number {:?}, not the current base {}",
                path.display(),
                s.number,
                base.number
            ))),
            Err(e) => Ok(DeltaBase::Unusable(format!("{}: {e}", path.display()))),
        }
    }

    /// Builds and signs the delta CRL of a scope against its current
    /// complete CRL; `Ok(None)` when there is no usable base (publish a
    /// complete CRL instead).
    pub fn generate_delta(&mut self, scope: &Scope) -> Result<Option<Generated>> {
        let scope = scope.base();
        if scope.arl {
            return Err(CrlError::Settings("the ARL has no delta CRL".into()));
        }
        self.open_signer(&scope.issuer)?;
        let started = Instant::now();
        let (base, base_path) = match self.delta_base(&scope)? {
            DeltaBase::Ready(b, p) => (b, p),
            DeltaBase::Unusable(why) => {
                log::info!("{scope}: no usable base for a delta ({why})");
                return Ok(None);
            }
        };
        let feed_position = pki_store::feed::position(&mut self.ca.db)?;
        let changed =
            pki_store::feed::changed_serials(&mut self.ca.db, base.feed_position, feed_position)?;
        // Current state of what may differ from the base, keyed by serial.
        let mut current: HashMap<Vec<u8>, ListedRow> = HashMap::new();
        let mut key = [0u8; 22];
        for r in entries::by_serial(&mut self.ca.db, &changed)? {
            if r.issuer == scope.issuer && r.partition == scope.partition {
                let serial = encode::serial_from_hex(&r.row.serial, &mut key)?.to_vec();
                current.insert(serial, r.row);
            }
        }
        for row in entries::expiring(
            &mut self.ca.db,
            &scope.issuer,
            scope.partition,
            base.expiry_cutoff,
            base.this_update,
        )? {
            let serial = encode::serial_from_hex(&row.serial, &mut key)?.to_vec();
            current.insert(serial, row);
        }
        let mut on_base: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        let mut collect = |entry: &[u8]| -> Result<()> {
            let serial = scan::entry_serial(entry)?;
            if current.contains_key(serial) {
                on_base.insert(serial.to_vec(), entry.to_vec());
            }
            Ok(())
        };
        let summary = scan::scan_file(&base_path, Some(&mut collect))?;
        if summary.number != Some(base.number) {
            log::info!("{scope}: the base CRL changed while it was read");
            return Ok(None);
        }
        let mut serials: Vec<&Vec<u8>> = current.keys().collect();
        serials.sort();
        let mut items: Vec<Vec<u8>> = Vec::new();
        for serial in serials {
            let row = &current[serial];
            let now_listed = row.is_listed(Some(base.this_update));
            let before = on_base.get(serial);
            if now_listed {
                let mut entry = Vec::with_capacity(64);
                row.push_entry(&mut entry)?;
                if before != Some(&entry) {
                    items.push(entry);
                }
            } else if let Some(before) = before {
                let old = scan::parse_entry(before)?;
                let mut entry = Vec::with_capacity(48);
                encode::push_entry(
                    &mut entry,
                    &EntryData {
                        serial,
                        revocation_date: old.revocation_date.naive_utc(),
                        reason: Some(encode::REASON_REMOVE_FROM_CRL),
                        invalidity_date: None,
                    },
                )?;
                items.push(entry);
            }
        }
        let number = self.reserve(&scope.issuer)?;
        let delta = scope.delta();
        let (this_update, next_update) = self.times(&delta);
        let a = &self.signers[&scope.issuer];
        let algorithm = a.signer.algorithm().identifier().to_der()?;
        let mut w = CrlWriter::new(&algorithm, &a.row.subject_der, 0);
        for item in &items {
            w.push_der(item);
        }
        let dp = scope.distribution_point(&self.ca.config);
        let exts = encode::crl_extensions(&CrlExtensions {
            authority_key_id: &a.row.key_id,
            number,
            base_number: Some(base.number),
            distribution_point: Some(&dp),
            only_ca_certs: false,
            freshest: None,
        })?;
        let der = w.finish(&this_update, &next_update, &exts, a.signer.as_ref())?;
        let sha256 = sha256_hex(der.as_bytes());
        Ok(Some(Generated {
            scope: delta,
            number,
            base_number: Some(base.number),
            this_update,
            next_update,
            expiry_cutoff: None,
            feed_position,
            entries: items.len() as u64,
            der,
            sha256,
            elapsed: started.elapsed(),
        }))
    }

    /// Stores and writes a signed CRL.
    pub fn publish(&mut self, g: Generated) -> Result<Published> {
        if self.settings.crash_after_sign {
            log::error!(
                "test hook: aborting after signing {} number {}, before storing it",
                g.scope,
                g.number
            );
            std::process::abort();
        }
        let started = Instant::now();
        let out_dir = self.settings.out_dir.clone();
        let outcome = publish::publish(&mut self.ca, &out_dir, &g)?;
        Ok(match outcome {
            Outcome::Published(record) => Published::Done(Box::new(Publication {
                scope: g.scope,
                record: *record,
                generation: g.elapsed,
                total: g.elapsed + started.elapsed(),
                body: g.der.into_bytes(),
            })),
            Outcome::Superseded { by } => Published::Superseded {
                scope: g.scope,
                number: g.number,
                by,
            },
        })
    }

    /// Publishes a new complete CRL of a scope, then (with deltas) a fresh
    /// delta CRL against it.
    pub fn publish_complete(&mut self, scope: &Scope) -> Result<Vec<Published>> {
        let g = self.generate_complete(scope)?;
        let mut out = vec![self.publish(g)?];
        if self.settings.deltas && !scope.arl && matches!(out[0], Published::Done(_)) {
            out.extend(self.publish_delta_only(scope)?);
        }
        Ok(out)
    }

    /// Publishes a delta CRL of a scope (nothing if there is no usable base).
    pub fn publish_delta_only(&mut self, scope: &Scope) -> Result<Option<Published>> {
        match self.generate_delta(scope)? {
            Some(g) => Ok(Some(self.publish(g)?)),
            None => Ok(None),
        }
    }

    /// Publishes a delta CRL, or a complete CRL (and its delta) when the
    /// scope has no usable base.
    pub fn publish_delta(&mut self, scope: &Scope) -> Result<Vec<Published>> {
        match self.publish_delta_only(scope)? {
            Some(p) => Ok(vec![p]),
            None => self.publish_complete(scope),
        }
    }
}
