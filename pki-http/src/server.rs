//! The server: actix-server accepting TCP, actix-http's HTTP/1.1 dispatcher
//! over a [`Guarded`] stream, the actix-web `App` of the service on top.
//! This is what `actix_web::HttpServer` assembles, with three additions it
//! has no hook for: the connection caps on accept, the stream wrapper, and
//! an `Expect: 100-continue` handler that knows the body limit.

use crate::conn_limit::ConnLimiter;
use crate::deadline::Guarded;
use crate::limits::Limits;
use crate::ratelog::RateLog;
use actix_http::body::{BoxBody, MessageBody};
use actix_http::error::DispatchError;
use actix_http::{HttpMessage, HttpService, Request, Response, StatusCode};
use actix_service::{
    fn_factory, fn_service, map_config, IntoServiceFactory, Service, ServiceFactory,
    ServiceFactoryExt,
};
use actix_web::dev::AppConfig;
use std::io;
use std::rc::Rc;
use std::sync::Arc;

/// The answer to `Expect: 100-continue` with a `Content-Length` over the limit.
struct TooLarge(u64);

impl From<TooLarge> for Response<BoxBody> {
    fn from(t: TooLarge) -> Self {
        let mut res = Response::with_body(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {} bytes\n", t.0),
        );
        res.headers_mut().insert(
            actix_http::header::CONTENT_TYPE,
            actix_http::header::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        res.head_mut()
            .set_connection_type(actix_http::ConnectionType::Close);
        res.map_into_boxed_body()
    }
}

fn declared_length(req: &Request) -> Option<u64> {
    req.headers()
        .get(actix_http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Who stops the server on SIGINT / SIGTERM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signals {
    /// actix-server: a graceful stop, then `serve`'s future resolves.
    Server,
    /// The caller (which stops the server through its handle).
    Caller,
}

/// Binds nothing itself: serves on `listener` (bound by the caller, so that
/// port 0 can be printed). `factory` builds the service's `App` once per
/// worker, as for `HttpServer::new`. Run the returned server inside an
/// actix/tokio runtime (`actix_web::rt::System`).
pub fn serve<F, I, S, B>(
    listener: std::net::TcpListener,
    limits: &Limits,
    signals: Signals,
    factory: F,
) -> io::Result<actix_server::Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    limits.validate().map_err(io::Error::other)?;
    let addr = listener.local_addr()?;
    let limiter = ConnLimiter::new(limits.max_connections, limits.max_connections_per_client);
    let log = Arc::new(RateLog::new(limits.log_per_minute));
    let limits = limits.clone();
    let mut builder = actix_server::Server::build()
        .workers(limits.workers)
        .shutdown_timeout(5);
    if signals == Signals::Caller {
        builder = builder.disable_signals();
    }
    let server = builder
        .listen(format!("pki-http-{addr}"), listener, move || {
            let limits = limits.clone();
            let limiter = limiter.clone();
            let log = log.clone();
            let max_body = limits.max_body_bytes;
            let expect_log = log.clone();
            let expect = fn_service(move |req: Request| {
                let refused = declared_length(&req).is_some_and(|n| n > max_body);
                let log = expect_log.clone();
                async move {
                    if refused {
                        log.warn(|| format!("413 without 100 Continue: {} {} announces a body over {max_body} bytes", req.method(), req.path()));
                        Err(TooLarge(max_body))
                    } else {
                        Ok(req)
                    }
                }
            });
            let app = factory()
                .into_factory()
                .map_err(|err| err.into().error_response());
            let h1 = HttpService::<Guarded<tokio::net::TcpStream>, _, _, _, _>::build()
                .keep_alive(limits.keep_alive)
                .client_request_timeout(limits.request_timeout)
                .client_disconnect_timeout(std::time::Duration::from_secs(1))
                .local_addr(addr)
                .expect(expect)
                .h1(map_config(app, |_| AppConfig::default()));
            fn_factory(move || {
                let built = h1.new_service(());
                let limits = limits.clone();
                let limiter = limiter.clone();
                let log = log.clone();
                async move {
                    let svc = Rc::new(built.await.map_err(|e| {
                        log::error!("cannot start an HTTP worker: {e:?}");
                    })?);
                    Ok::<_, ()>(fn_service(move |io: tokio::net::TcpStream| {
                        let svc = svc.clone();
                        let limits = limits.clone();
                        let limiter = limiter.clone();
                        let log = log.clone();
                        async move {
                            let peer = io.peer_addr().ok();
                            let slot = match peer.map(|p| limiter.admit(p.ip())) {
                                Some(Ok(slot)) => Some(slot),
                                Some(Err(why)) => {
                                    // Best effort: tell an HTTP client why, then close.
                                    let _ = io.try_write(
                                        b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                                    );
                                    log.warn(|| format!("connection from {} refused: {why}", peer.map(|p| p.ip().to_string()).unwrap_or_default()));
                                    return Ok::<(), ()>(());
                                }
                                None => None,
                            };
                            let _ = io.set_nodelay(true);
                            let io = Guarded::new(io, limits.request_timeout, limits.write_stall_timeout, slot);
                            if let Err(e) = svc.call((io, peer)).await {
                                report(&log, peer, &e);
                            }
                            Ok(())
                        }
                    }))
                }
            })
        })?
        .run();
    Ok(server)
}

/// Logs what a connection ended with, when it is the client's doing.
fn report(log: &RateLog, peer: Option<std::net::SocketAddr>, e: &DispatchError) {
    let who = peer
        .map(|p| p.ip().to_string())
        .unwrap_or_else(|| "?".into());
    let _logged = match e {
        DispatchError::Parse(p) => log.warn(|| format!("malformed request from {who}: {p}")),
        DispatchError::SlowRequestTimeout => {
            log.warn(|| format!("slow request from {who}: closed"))
        }
        DispatchError::Io(io) if io.kind() == io::ErrorKind::TimedOut => {
            log.warn(|| format!("connection from {who} closed: {io}"))
        }
        other => {
            log::debug!("connection from {who} ended: {other}");
            false
        }
    };
}
