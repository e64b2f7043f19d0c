//! Serving connections: HTTP/1.1 over TCP with hyper, and the timeouts that keep a client from
//! holding a connection (its socket, its task, its buffers) for as long as it likes.
//!
//! - **Headers** (`Timeouts::header_read`): a request's headers must arrive whole within it,
//!   counted from when the connection opens or, on a kept-alive connection, from the end of the
//!   previous answer. So it is also how long an idle connection is kept.
//! - **Body** (`Timeouts::body_read`): a request's body must arrive whole within it, counted from
//!   its headers; a body still coming then is refused with 408 in the mount's envelope
//!   (`extract::Rejection::BodyTimeout`) and the connection closed.
//! - **Connections** (`Timeouts::max_connections`): at most this many are served at once; the
//!   next waits in the listener's queue until one closes, so that a flood of connections costs
//!   at most that many connections' memory (each about 60 KiB: hyper's buffers and the task).
//!
//! Depends on axum's `Router` and hyper; knows nothing of any route.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// How long a client may take to send what it sends, and how many may be connected at once.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub header_read: Duration,
    pub body_read: Duration,
    pub max_connections: usize,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header_read: Duration::from_secs(30),
            body_read: Duration::from_secs(60),
            max_connections: 4096,
        }
    }
}

/// How many connections the kernel may hold for `serve` to accept. tokio's `bind` asks for
/// 1,024: a burst of more (a flood, or many clients reconnecting after a restart) overflows the
/// queue, and the kernel drops the overflow's handshakes, which those clients see only as a
/// stall. The kernel caps it at `net.core.somaxconn`.
const ACCEPT_BACKLOG: u32 = 4096;

/// A listener on `addr` (`host:port`, the first address it resolves to), with room for bursts.
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for at in tokio::net::lookup_host(addr).await? {
        let socket = if at.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        // As `std`'s and tokio's own `bind`: a restart may reuse the port at once.
        socket.set_reuseaddr(true)?;
        match socket.bind(at) {
            Ok(()) => return socket.listen(ACCEPT_BACKLOG),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{addr} names no address"),
        )
    }))
}

/// Serves `app` on `listener` until `shutdown` resolves; the requests in flight then finish,
/// and idle connections are closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    timeouts: Timeouts,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let cap = timeouts
        .max_connections
        .min(tokio::sync::Semaphore::MAX_PERMITS);
    let open = std::sync::Arc::new(tokio::sync::Semaphore::new(cap));
    loop {
        // Held by the connection's task: a connection past the cap is not accepted until one
        // closes (the kernel keeps it queued meanwhile).
        let permit = tokio::select! {
            permit = open.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, say: new connections wait, those open go on.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Nagle's algorithm off: an answer written in parts (a streamed bulk removal's) would
        // otherwise hold each part back until the client acknowledged the one before. A socket
        // that refuses the option is served as it is.
        let _ = stream.set_nodelay(true);
        // A clone of the router is a reference count, not a copy of its routes.
        let body_read = timeouts.body_read;
        let client = crate::auth_limit::ClientAddr(peer.ip());
        let service = app
            .clone()
            .map_request(move |req: hyper::Request<Incoming>| {
                let mut req = with_deadline(req, body_read);
                req.extensions_mut().insert(client);
                req
            });
        let connection = graceful
            .watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)));
        tokio::spawn(async move {
            // A connection ending in error (reset, timed out) concerns that client alone.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The request, its body bound to arrive by `body_read` from now.
fn with_deadline(req: hyper::Request<Incoming>, body_read: Duration) -> axum::extract::Request {
    req.map(|body| {
        if body.is_end_stream() {
            axum::body::Body::new(body)
        } else {
            axum::body::Body::new(Deadline {
                body,
                deadline: Instant::now() + body_read,
                timer: None,
            })
        }
    })
}

/// A body still arriving when its deadline passed.
#[derive(Debug)]
pub struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimedOut {}

/// A request body that fails with `BodyTimedOut` once its deadline passes. Its timer is set
/// only when the body has to be waited for: a body that came with its headers costs none.
struct Deadline {
    body: Incoming,
    deadline: Instant,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Body for Deadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
