//! The HTTP server of `tidings run`: one task accepts connections, and
//! each connection is served start to end on one of a few threads, each
//! with a single-threaded tokio runtime of its own (the way nginx runs a
//! worker per core).
//!
//! Why not one multi-threaded runtime: a feed poll is a few microseconds of
//! work, and on a shared runtime most of a request's cost was waking tasks
//! across threads (the socket's readiness seen by one thread, the task run
//! by another). A connection that stays on one thread has none of that.
//!
//! What it takes care of:
//! - a handler's heavy work does not belong here: an ingest asked over
//!   HTTP runs on the main runtime (see `Ingester`), and feed compression
//!   and file reads go to the blocking pool;
//! - the threads' runtimes stay up until [`Server::release`], after the
//!   store is closed: a pooled database or SMTP connection opened by a
//!   request is tied to the runtime that opened it, and work a request
//!   started (a sign-up's confirmation email) finishes on it.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::serve::{Listener, ListenerExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

/// The running server.
pub struct Server {
    acceptor: tokio::task::JoinHandle<()>,
    stopped: Vec<oneshot::Receiver<()>>,
    release: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Starts serving `app` on `listener` with a thread per core the process
/// may use, until `stop` turns true; then takes no new connection and lets
/// the open ones finish their requests (see [`Server::stopped`]).
pub fn start(
    listener: TcpListener,
    app: Router,
    stop: watch::Receiver<bool>,
) -> io::Result<Server> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let local = listener.local_addr()?;
    let (release, released) = watch::channel(false);
    let mut senders = Vec::with_capacity(threads);
    let mut stopped = Vec::with_capacity(threads);
    let mut handles = Vec::with_capacity(threads);
    for n in 0..threads {
        let (tx, rx) = mpsc::unbounded_channel();
        let (done_tx, done_rx) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name(format!("tidings-http-{n}"))
            .build()?;
        let app = app.clone();
        let mut stop = stop.clone();
        let mut released = released.clone();
        let handle = std::thread::Builder::new()
            .name(format!("tidings-http-{n}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = Handed { rx, local }.tap_io(|tcp| {
                        // Answers are written whole; waiting to coalesce
                        // them with more (Nagle) only adds latency.
                        let _ = tcp.set_nodelay(true);
                    });
                    let served = axum::serve(
                        listener,
                        app.into_make_service_with_connect_info::<SocketAddr>(),
                    )
                    .with_graceful_shutdown(async move {
                        let _ = stop.wait_for(|s| *s).await;
                    })
                    .await;
                    if let Err(e) = served {
                        tracing::error!(error = %e, "an HTTP thread stopped");
                    }
                    let _ = done_tx.send(());
                    let _ = released.wait_for(|r| *r).await;
                });
            })?;
        senders.push(tx);
        stopped.push(done_rx);
        handles.push(handle);
    }
    let acceptor = tokio::spawn(accept(listener, senders, stop));
    Ok(Server {
        acceptor,
        stopped,
        release,
        threads: handles,
    })
}

impl Server {
    /// Waits until the acceptor has stopped and every thread has finished
    /// its connections (after `stop`).
    pub async fn stopped(&mut self) {
        let _ = (&mut self.acceptor).await;
        for done in &mut self.stopped {
            let _ = done.await;
        }
    }

    /// Ends the threads' runtimes; to be called once nothing they may have
    /// opened is in use any more. Waits a moment for them to end, but
    /// never blocks: a thread still serving a connection after the grace
    /// period of a stop is left to end with the process.
    pub async fn release(self) {
        let _ = self.release.send(true);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.threads.iter().any(|t| !t.is_finished())
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Accepts connections and hands them to the threads in turn.
async fn accept(
    listener: TcpListener,
    threads: Vec<mpsc::UnboundedSender<(std::net::TcpStream, SocketAddr)>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut next = 0;
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                // Out of this runtime's reactor, into the thread's.
                let stream = match stream.into_std() {
                    Ok(stream) => stream,
                    Err(e) => {
                        tracing::warn!(%peer, error = %e, "cannot hand a connection over");
                        continue;
                    }
                };
                let _ = threads[next % threads.len()].send((stream, peer));
                next = next.wrapping_add(1);
            }
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                // Out of file descriptors, say: the next accept would fail
                // the same way at once.
                tracing::error!(error = %e, "cannot accept connections; trying again in a second");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Errors of one connection (it was reset before we took it), not of the
/// listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// The connections handed to one thread, as a listener for `axum::serve`.
struct Handed {
    rx: mpsc::UnboundedReceiver<(std::net::TcpStream, SocketAddr)>,
    local: SocketAddr,
}

impl Listener for Handed {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let Some((stream, peer)) = self.rx.recv().await else {
                // The acceptor stopped: nothing more comes, and the
                // shutdown signal ends the server.
                return std::future::pending().await;
            };
            match TcpStream::from_std(stream) {
                Ok(stream) => return (stream, peer),
                Err(e) => tracing::warn!(%peer, error = %e, "cannot take a connection"),
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}
