//! `pki-scheduler`: the eID CA's lifecycle jobs. Each job is a plain
//! function over `ca-core` (see [`jobs`]); the binary runs them on the cron
//! schedules of `[scheduler]` in pki.toml, or once on demand (`run-once`).
//! It opens no key.
//!
//! ## Module map (one job per module)
//!
//! | module | job |
//! | --- | --- |
//! | [`jobs`] | the five jobs (`requests`, `expiry`, `reminders`, `mail`, `sla`) over `ca-core`, and their bookkeeping ([`jobs::Runner`]) |
//! | [`mail`] | delivery of the reminder outbox to the SMTP relay of `[smtp]` ([`mail::deliver_due`]) |
//! | [`server`] | `/health` and `/metrics` (actix-web) |
//! | `main.rs` (binary `pki-scheduler`) | command line, cron loop, `run-once`, signals |

pub mod jobs;
pub mod mail;
pub mod server;
