//! A deadline on every request of a connection, and on stalled writes.
//!
//! actix-http 3 arms its header timer (`client_request_timeout`) once per
//! connection, for the first request only (the `STARTED` flag in
//! `h1/dispatcher.rs`): once the first answer is written and the client
//! sends a byte of a second request, the keep-alive timer is cleared and no
//! other timer runs, so a client trickling the second request's header one
//! byte every few seconds holds the connection forever. [`Guarded`] wraps
//! the TCP stream below the dispatcher and sees only bytes:
//!
//! * a read that brings bytes while no request is open opens one and arms
//!   the request deadline; the first write of an answer closes it. A
//!   request still open at the deadline fails the next read with
//!   `TimedOut`, which makes the dispatcher drop the connection. So every
//!   request, first or later, must arrive whole and be answered within the
//!   request timeout (the services answer from memory).
//! * a write (or flush) that makes no progress for the write-stall timeout
//!   fails with `TimedOut`: a client that does not read its answer does not
//!   hold the connection either.
//!
//! Hand-written because no crate does this: tokio-io-timeout's timeouts are
//! per read call, which a client sending one byte per call defeats.
//! Limitation: the `100 Continue` interim answer is a write and closes the
//! request's deadline; the body is then bounded by the service's own body
//! timeout (the OCSP responder's), and the other services take no body.

use crate::conn_limit::Slot;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// A timer that can be armed and disarmed without allocating again.
struct Timer {
    sleep: Pin<Box<Sleep>>,
    armed: bool,
}

impl Timer {
    fn new() -> Timer {
        Timer {
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed: false,
        }
    }

    fn arm(&mut self, after: Duration) {
        self.sleep.as_mut().reset(Instant::now() + after);
        self.armed = true;
    }

    /// True when armed and past its deadline; registers the waker otherwise.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.armed && self.sleep.as_mut().poll(cx).is_ready()
    }
}

/// A stream with a deadline per request and per stalled write; holds its
/// connection slot until dropped.
pub struct Guarded<T> {
    io: T,
    request_timeout: Duration,
    write_stall_timeout: Duration,
    request: Timer,
    write: Timer,
    _slot: Option<Slot>,
}

fn timed_out(what: &str, after: Duration) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} within {after:?}"))
}

impl<T> Guarded<T> {
    pub fn new(
        io: T,
        request_timeout: Duration,
        write_stall_timeout: Duration,
        slot: Option<Slot>,
    ) -> Self {
        Guarded {
            io,
            request_timeout,
            write_stall_timeout,
            request: Timer::new(),
            write: Timer::new(),
            _slot: slot,
        }
    }

    fn check_write(&mut self, cx: &mut Context<'_>, progress: bool) -> Result<(), io::Error> {
        if progress {
            self.write.armed = false;
            return Ok(());
        }
        if !self.write.armed {
            self.write.arm(self.write_stall_timeout);
        }
        if self.write.expired(cx) {
            return Err(timed_out(
                "the client read nothing of the answer",
                self.write_stall_timeout,
            ));
        }
        Ok(())
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.request.expired(cx) {
            return Poll::Ready(Err(timed_out(
                "request not received and answered",
                this.request_timeout,
            )));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            if buf.filled().len() > before && !this.request.armed {
                this.request.arm(this.request_timeout);
                // Register the waker on the fresh deadline.
                let _ = this.request.expired(cx);
            }
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        match polled {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    // The answer has started: the request is over.
                    this.request.armed = false;
                }
                this.check_write(cx, true)?;
            }
            Poll::Pending => this.check_write(cx, false)?,
            Poll::Ready(Err(_)) => {}
        }
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_flush(cx);
        if polled.is_pending() {
            this.check_write(cx, false)?;
        }
        polled
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
