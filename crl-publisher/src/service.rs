//! The publisher loop of `crl-publisher run` (the signer: no listener).
//!
//! At start it publishes the CA certificates and a complete CRL (and its
//! delta) for every scope.
//! Then, every `poll`: it reads the change feed (audit records after its
//! position), maps each changed certificate to its scope (issuer and the
//! partition fixed at issuance) and marks that scope changed; asks the
//! [`Scheduler`] what is due (debounced deltas and complete CRLs of the
//! touched partitions only, the scheduled complete CRLs, the periodic
//! deltas, the ARL when half its validity has passed); runs those jobs and
//! records the results in the [`Catalog`], whose health and metrics it
//! writes into the status file that `crl-server` reads ([`crate::status`]).
//! A failed job is logged, counted, and retried after the debounce.

use crate::catalog::{Catalog, Served};
use crate::entries;
use crate::error::Result;
use crate::generate::{Published, Publisher};
use crate::schedule::{Job, Scheduler};
use crate::scope::Scope;
use pki_store::feed::{self, FeedEvent};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One line per publication on stderr (the service's log).
pub fn log(p: &Published) {
    match p {
        Published::Done(p) => log::info!(
            "published {} number {} ({} entries, {} bytes, thisUpdate {}, nextUpdate {}) in {:.3} s",
            p.scope,
            p.record.number,
            p.record.entries,
            p.record.size_bytes,
            p.record.this_update,
            p.record.next_update,
            p.total.as_secs_f64()
        ),
        Published::Superseded { scope, number, by } => log::warn!(
            "dropped {scope} number {number}: number {by} was already published"
        ),
    }
}

/// The running publisher.
pub struct Service {
    publisher: Publisher,
    catalog: Arc<Catalog>,
    scheduler: Scheduler,
    feed: i64,
    /// The server calls the signer stale after this long without a pass.
    stale_after: chrono::Duration,
}

impl Service {
    /// Publishes every scope once, then is ready to [`Service::run`].
    pub fn start(mut publisher: Publisher, catalog: Arc<Catalog>) -> Result<Service> {
        let feed = pki_store::feed::position(&mut publisher.ca.db)?;
        let scopes = publisher.scopes();
        catalog.set_expected(scopes.clone(), publisher.settings.deltas);
        publisher.publish_certificates()?;
        let stale_after = publisher.settings.poll * 10 + chrono::Duration::seconds(60);
        let mut service = Service {
            scheduler: Scheduler::new(&publisher.settings, publisher.ca.clock.now()),
            publisher,
            catalog,
            feed,
            stale_after,
        };
        for scope in scopes {
            service.run_job(Job::Complete(scope))?;
        }
        let now = service.publisher.ca.clock.now();
        service.catalog.tick(now, feed);
        service.write_status(now);
        Ok(service)
    }

    /// Rewrites the status file for `crl-server` (a failure is logged and counted).
    fn write_status(&self, now: chrono::DateTime<chrono::Utc>) {
        if let Err(e) = crate::status::write(
            &self.publisher.settings.out_dir,
            &self.catalog,
            now,
            self.stale_after,
        ) {
            log::error!("{e}");
            self.catalog.error(e.to_string());
        }
    }

    fn install(&self, published: Vec<Published>) {
        for p in published {
            log(&p);
            match &p {
                Published::Done(publication) => {
                    self.catalog.install(Served::from_publication(publication))
                }
                Published::Superseded { .. } => self.catalog.superseded(),
            }
        }
    }

    fn run_job(&mut self, job: Job) -> Result<()> {
        let published = match &job {
            Job::Complete(scope) => self.publisher.publish_complete(scope)?,
            Job::Delta(scope) => self.publisher.publish_delta(scope)?,
        };
        self.install(published);
        Ok(())
    }

    /// Reads the change feed and marks the scopes it touches.
    fn read_feed(&mut self) -> Result<()> {
        let now = self.publisher.ca.clock.now();
        loop {
            let records = feed::read(&mut self.publisher.ca.db, self.feed, 10_000)?;
            let Some(last) = records.last() else { break };
            let next = last.seq;
            let full = records.len() == 10_000;
            // serial -> was anything but an issuance seen?
            let mut serials: HashMap<String, bool> = HashMap::new();
            let mut authorities_changed = false;
            for r in records {
                match r.event {
                    FeedEvent::Certificate { serial, issued } => {
                        *serials.entry(serial).or_default() |= !issued;
                    }
                    FeedEvent::Authorities => authorities_changed = true,
                    FeedEvent::Other => {}
                }
            }
            if authorities_changed {
                self.publisher.reload_authorities()?;
                self.publisher.publish_certificates()?;
                let scopes = self.publisher.scopes();
                self.catalog
                    .set_expected(scopes, self.publisher.settings.deltas);
            }
            let wanted: Vec<String> = serials.keys().cloned().collect();
            for r in entries::by_serial(&mut self.publisher.ca.db, &wanted)? {
                let status_changed = serials.get(&r.row.serial).copied().unwrap_or(true);
                // A new certificate matters only if it starts on the list (on hold).
                if !status_changed && !r.row.is_listed(None) {
                    continue;
                }
                if let Some(scope) = self.publisher.scope_of(&r.issuer, r.partition, &r.kind) {
                    if !scope.arl {
                        self.publisher.note_partition(&r.issuer, r.partition);
                    }
                    self.scheduler.mark(&scope, now);
                }
            }
            self.feed = next;
            if !full {
                break;
            }
        }
        Ok(())
    }

    /// One pass: feed, schedule, jobs.
    pub fn tick(&mut self) -> Result<()> {
        self.read_feed()?;
        let now = self.publisher.ca.clock.now();
        let scopes = self.publisher.scopes();
        let mut jobs = self.scheduler.due(now, &scopes);
        // New authorities or partitions, and scopes whose last job failed.
        for scope in &scopes {
            let job = Job::Complete(scope.clone());
            if self.catalog.get_scope(scope).is_none() && !jobs.contains(&job) {
                jobs.push(job);
            }
        }
        if let Some(root) = self.publisher.root().map(Scope::arl) {
            let half = self.publisher.settings.arl_validity / 2;
            let stale = self
                .catalog
                .get_scope(&root)
                .is_none_or(|c| c.this_update + half <= now);
            if stale && !jobs.contains(&Job::Complete(root.clone())) {
                jobs.push(Job::Complete(root));
            }
        }
        for job in jobs {
            if let Err(e) = self.run_job(job.clone()) {
                let scope = match &job {
                    Job::Complete(s) | Job::Delta(s) => s.clone(),
                };
                log::error!("{scope}: {e}");
                self.catalog.error(format!("{scope}: {e}"));
                self.scheduler.mark(&scope, now);
            }
        }
        self.catalog.tick(now, self.feed);
        self.write_status(now);
        Ok(())
    }

    /// Runs until `stop` is set.
    pub fn run(mut self, stop: Arc<AtomicBool>) {
        let poll = self
            .publisher
            .settings
            .poll
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(2));
        while !stop.load(Ordering::Relaxed) {
            if let Err(e) = self.tick() {
                log::error!("{e}");
                self.catalog.error(e.to_string());
            }
            let deadline = std::time::Instant::now() + poll;
            while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }
}
