//! `pki-scheduler`: the eID CA's lifecycle jobs. Each job is a plain
//! function over `ca-core` (see [`jobs`]); the binary runs them on the cron
//! schedules of `[scheduler]` in pki.toml, or once on demand (`run-once`).

pub mod jobs;
pub mod mail;
pub mod server;
