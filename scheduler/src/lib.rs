//! `pki-scheduler`: the eID CA's lifecycle jobs. Each job is a plain
//! function over `pki-registration` (see [`jobs`]); the binary runs them on the cron
//! schedules of `[scheduler]` in pki.toml, or once on demand (`run-once`).
//! The only key it opens is the audit key, to sign the audit log's
//! checkpoints ([`audit_checkpoint::audit_keys`], `KeyPurpose::Audit`).
//!
//! ## Module map (one job per module)
//!
//! | module | job |
//! | --- | --- |
//! | [`jobs`] | the six jobs (`requests`, `expiry`, `reminders`, `mail`, `sla`, `audit-checkpoint`) over `pki-registration`, and their bookkeeping ([`jobs::Runner`]) |
//! | [`job_error`] | why a run failed ([`job_error::JobError`]) and the actor the audit log names |
//! | [`audit_checkpoint`] | the `audit-checkpoint` job: a signed checkpoint of the audit log when `[audit]` says one is due; the scheduler's one key store (audit family) |
//! | [`mail`] | delivery of the reminder outbox to the SMTP relay of `[smtp]` ([`mail::deliver_due`]) |
//! | [`server`] | `/health` and `/metrics` (actix-web) |
//! | `main.rs` (binary `pki-scheduler`) | command line, cron loop, `run-once`, signals |

pub mod audit_checkpoint;
pub mod job_error;
pub mod jobs;
pub mod mail;
pub mod server;
