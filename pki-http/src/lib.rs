//! # `pki-http`: the hardened HTTP/1.1 server of the CA's services
//!
//! The OCSP responder, the CRL server and `pki-scheduler` serve HTTP through
//! [`serve`], which adds to actix-web what a hostile client needs:
//!
//! * a deadline on **every** request of a connection (actix-http only times
//!   the first one's header), and on writes a client does not read
//!   ([`deadline`]);
//! * caps on open connections, in total and per client address; over them
//!   a connection is answered `503` and closed at once, so a flood holds
//!   no file descriptor ([`conn_limit`]);
//! * `Expect: 100-continue` with a `Content-Length` over the service's body
//!   limit: `413`, never `100 Continue` ([`server`]);
//! * refused connections, malformed and slow requests logged at a bounded
//!   rate ([`ratelog`]).
//!
//! The limits are [`Limits`]; [`HttpArgs`] are the shared flags
//! (`--http-*`, env `PKI_HTTP_*`). No key, no database.
//!
//! | module | job |
//! | --- | --- |
//! | [`limits`] | the limits and their flags |
//! | [`conn_limit`] | open connections in total and per client address |
//! | [`deadline`] | the stream wrapper: per-request deadline, write stalls |
//! | [`ratelog`] | log lines about bad clients at a bounded rate |
//! | [`server`] | assembling actix-server, actix-http and the service's `App` |

pub mod conn_limit;
pub mod deadline;
pub mod limits;
pub mod ratelog;
pub mod server;

pub use limits::{HttpArgs, Limits};
pub use server::{serve, Signals};
