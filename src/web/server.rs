//! The HTTP server of `tidings run`: one task per listener accepts
//! connections, and each connection is served start to end on one of a
//! few threads, each with a single-threaded tokio runtime of its own (the
//! way nginx runs a worker per core), by hyper's HTTP/1 connection.
//!
//! Why not one multi-threaded runtime: a feed poll is a few microseconds of
//! work, and on a shared runtime most of a request's cost was waking tasks
//! across threads (the socket's readiness seen by one thread, the task run
//! by another). A connection that stays on one thread has none of that.
//!
//! Why not `axum::serve`: it has no timeouts, so a client that opens a
//! connection and sends half a request line holds it (and a stop) for as
//! long as it likes. Here each connection is watched ([`Activity`]):
//! - its request head must arrive within [`Rules::header_timeout`], counted
//!   from when the connection opens (first request) or from the head's
//!   first byte (later ones);
//! - between requests it may stay open [`Rules::keepalive`];
//! - a request's body must arrive within [`Rules::body_timeout`] of its
//!   head ([`Timed`]; the handler then sees an error, see [`timed_out`]);
//! - each listener holds at most [`Rules::max_connections`]: one more is
//!   closed as soon as it is accepted (a proxy in front answers 502, a
//!   client tries again), rather than queued behind stalled ones;
//! - on stop, a connection with no request in hand is closed at once
//!   (stalled or idle), one answering finishes that answer; after the
//!   grace period, [`Server::release`] drops whatever is left.
//!
//! Also:
//! - a handler's heavy work does not belong here: an ingest asked over
//!   HTTP runs on the main runtime (see `Ingester`), and feed compression
//!   and file reads go to the blocking pool;
//! - the threads' runtimes stay up until [`Server::release`], after the
//!   store is closed: a pooled database or SMTP connection opened by a
//!   request is tied to the runtime that opened it, and work a request
//!   started (a sign-up's confirmation email) finishes on it.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::time::{Instant, Sleep};

use crate::config::Http;

/// How long clients may take, and how many may be connected: `[http]`.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    /// Zero: one request per connection.
    pub keepalive: Duration,
    pub max_connections: usize,
}

impl Rules {
    pub fn of(http: &Http) -> Rules {
        Rules {
            header_timeout: http.header_timeout,
            body_timeout: http.body_timeout,
            keepalive: http.keepalive,
            max_connections: http.max_connections,
        }
    }
}

/// The running server.
pub struct Server {
    acceptors: Vec<tokio::task::JoinHandle<()>>,
    stopped: Vec<oneshot::Receiver<()>>,
    release: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// A connection on its way from an acceptor to a thread.
struct Handoff {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    /// Counts the connection against its listener's limit while it lives.
    _open: Open,
}

/// Starts serving each listener's router with a thread per core the
/// process may use, until `stop` turns true; then takes no new connection,
/// closes those with nothing in hand and lets the others finish their
/// answer (see [`Server::stopped`]).
pub fn start(
    listeners: Vec<(TcpListener, Router)>,
    stop: watch::Receiver<bool>,
    rules: Rules,
) -> io::Result<Server> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
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
        let stop = stop.clone();
        let released = released.clone();
        let handle = std::thread::Builder::new()
            .name(format!("tidings-http-{n}"))
            .spawn(move || {
                runtime.block_on(serve_thread(rx, stop, released, done_tx, rules));
                // Dropping the runtime drops the connections still open.
            })?;
        senders.push(tx);
        stopped.push(done_rx);
        handles.push(handle);
    }
    let acceptors = listeners
        .into_iter()
        .map(|(listener, app)| {
            tokio::spawn(accept(
                listener,
                app,
                senders.clone(),
                stop.clone(),
                rules.max_connections,
            ))
        })
        .collect();
    Ok(Server {
        acceptors,
        stopped,
        release,
        threads: handles,
    })
}

impl Server {
    /// Waits until the acceptors have stopped and every thread has
    /// finished its connections (after `stop`).
    pub async fn stopped(&mut self) {
        for acceptor in &mut self.acceptors {
            let _ = acceptor.await;
        }
        for done in &mut self.stopped {
            let _ = done.await;
        }
    }

    /// Ends the threads' runtimes, dropping any connection still open; to
    /// be called once nothing they may have opened is in use any more.
    /// Waits a moment for them to end, but never blocks: a thread held by
    /// blocking work is left to end with the process.
    pub async fn release(self) {
        let _ = self.release.send(true);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.threads.iter().any(|t| !t.is_finished()) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// One thread: serves the connections handed to it until `stop`, then
/// waits for them to end (or for `released`).
async fn serve_thread(
    mut handed: mpsc::UnboundedReceiver<Handoff>,
    mut stop: watch::Receiver<bool>,
    mut released: watch::Receiver<bool>,
    done: oneshot::Sender<()>,
    rules: Rules,
) {
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        let handoff = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            handoff = handed.recv() => match handoff {
                Some(h) => h,
                None => break,
            },
        };
        connections.spawn(serve_connection(handoff, stop.clone(), rules));
    }
    // Connections handed over but not yet taken are closed with `handed`.
    drop(handed);
    connections.close();
    tokio::select! {
        _ = connections.wait() => {}
        _ = released.wait_for(|r| *r) => {}
    }
    let _ = done.send(());
    let _ = released.wait_for(|r| *r).await;
}

/// Accepts connections and hands them to the threads in turn; past
/// `max_connections` open at once, closes each new one at once.
async fn accept(
    listener: TcpListener,
    app: Router,
    threads: Vec<mpsc::UnboundedSender<Handoff>>,
    mut stop: watch::Receiver<bool>,
    max_connections: usize,
) {
    let local = listener.local_addr().ok();
    let open = Arc::new(AtomicUsize::new(0));
    let mut next = 0;
    let mut refused = 0u64;
    let mut warned: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                if open.load(Ordering::Acquire) >= max_connections {
                    drop(stream);
                    refused += 1;
                    if warned.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                        tracing::warn!(
                            listener = ?local,
                            max_connections,
                            refused,
                            "too many connections: new ones are closed at once ([http] max_connections)"
                        );
                        warned = Some(Instant::now());
                        refused = 0;
                    }
                    continue;
                }
                let _open = Open::count(&open);
                // Out of this runtime's reactor, into the thread's.
                let stream = match stream.into_std() {
                    Ok(stream) => stream,
                    Err(e) => {
                        tracing::warn!(%peer, error = %e, "cannot hand a connection over");
                        continue;
                    }
                };
                let handoff = Handoff {
                    stream,
                    peer,
                    app: app.clone(),
                    _open,
                };
                let _ = threads[next % threads.len()].send(handoff);
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

/// One open connection of a listener, counted while it lives.
struct Open(Arc<AtomicUsize>);

impl Open {
    fn count(open: &Arc<AtomicUsize>) -> Open {
        open.fetch_add(1, Ordering::AcqRel);
        Open(open.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves one connection until it ends, the client is too slow (see
/// [`Activity::deadline`]), or a stop finds it with nothing in hand.
async fn serve_connection(handoff: Handoff, mut stop: watch::Receiver<bool>, rules: Rules) {
    let Handoff {
        stream,
        peer,
        app,
        _open,
    } = handoff;
    let stream = match TcpStream::from_std(stream) {
        Ok(stream) => stream,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "cannot take a connection");
            return;
        }
    };
    // Answers are written whole; waiting to coalesce them with more
    // (Nagle) only adds latency.
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        stream,
        activity: activity.clone(),
        blocked: false,
    });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |request| {
            answer(app.clone(), peer, &activity, rules.body_timeout, request)
        })
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    // The timeouts are kept here, not by hyper, whose header timeout also
    // counts the time between requests.
    http.keep_alive(!rules.keepalive.is_zero())
        .header_read_timeout(None);
    let connection = http.serve_connection(io, service);
    tokio::pin!(connection);
    let mut stopping = false;
    loop {
        let deadline = activity.deadline(&rules);
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = activity.changed.notified() => {}
            _ = sleep_until(deadline), if !stopping => {
                if activity.deadline(&rules).is_some_and(|d| d <= Instant::now()) {
                    tracing::debug!(%peer, "closing a connection that sent no request in time");
                    return;
                }
            }
            _ = stop.wait_for(|s| *s), if !stopping => {
                if activity.lock().idle() {
                    return;
                }
                stopping = true;
                // Finishes the answer in hand, then closes.
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Hands one request to the router, with the peer's address, its body
/// under the body timeout, and the answer counted as in hand until hyper
/// has taken its body whole.
fn answer(
    app: Router,
    peer: SocketAddr,
    activity: &Arc<Activity>,
    body_timeout: Duration,
    request: Request<Incoming>,
) -> impl Future<Output = Result<Response<Tracked>, Infallible>> + use<> {
    let in_hand = InHand::start(activity);
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(ConnectInfo(peer));
    let body = if body.is_end_stream() {
        Body::new(body)
    } else {
        Body::new(Timed {
            body,
            deadline: Instant::now() + body_timeout,
            sleep: None,
        })
    };
    let answered = tower::ServiceExt::oneshot(app, Request::from_parts(parts, body));
    async move {
        let response = match answered.await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        Ok(response.map(|body| Tracked {
            body,
            _in_hand: in_hand,
        }))
    }
}

/// What one connection is doing, shared by its reads and writes, its
/// requests and the task that serves it.
struct Activity {
    state: Mutex<State>,
    /// Woken when a deadline may have moved earlier, or there is one again.
    changed: Notify,
}

struct State {
    /// Requests taken and not yet answered whole.
    in_hand: u32,
    /// When the connection opened, or its last answer was handed over.
    since: Instant,
    /// When the first byte of the next request head came (with nothing
    /// in hand).
    head_from: Option<Instant>,
    /// Whether a request has been answered on this connection.
    answered: bool,
    /// The socket takes no more of an answer just now (the client is not
    /// reading); the rest waits in hyper's buffer.
    write_blocked: bool,
}

impl State {
    /// Nothing in hand and nothing left to write.
    fn idle(&self) -> bool {
        self.in_hand == 0 && !self.write_blocked
    }
}

impl Activity {
    fn new() -> Activity {
        Activity {
            state: Mutex::new(State {
                in_hand: 0,
                since: Instant::now(),
                head_from: None,
                answered: false,
                write_blocked: false,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When the connection is to be closed if nothing changes: the first
    /// request's head is due `header_timeout` after the connection opened;
    /// a later one `header_timeout` after its first byte, which is due
    /// `keepalive` after the last answer. None while a request is in hand.
    fn deadline(&self, rules: &Rules) -> Option<Instant> {
        let s = self.lock();
        if !s.idle() {
            return None;
        }
        Some(match (s.answered, s.head_from) {
            (false, _) => s.since + rules.header_timeout,
            (true, Some(from)) => from + rules.header_timeout,
            (true, None) => s.since + rules.keepalive,
        })
    }

    /// Bytes came in.
    fn read(&self) {
        let mut s = self.lock();
        if s.in_hand == 0 && s.head_from.is_none() {
            s.head_from = Some(Instant::now());
            drop(s);
            self.changed.notify_one();
        }
    }

    fn write_blocked(&self, blocked: bool) {
        self.lock().write_blocked = blocked;
        if !blocked {
            self.changed.notify_one();
        }
    }
}

/// A request in hand, from its head until hyper drops its answer's body.
struct InHand(Arc<Activity>);

impl InHand {
    fn start(activity: &Arc<Activity>) -> InHand {
        let mut s = activity.lock();
        s.in_hand += 1;
        s.head_from = None;
        drop(s);
        InHand(activity.clone())
    }
}

impl Drop for InHand {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.in_hand -= 1;
        if s.in_hand == 0 {
            s.since = Instant::now();
            s.answered = true;
            s.head_from = None;
        }
        drop(s);
        self.0.changed.notify_one();
    }
}

/// The socket, telling [`Activity`] of reads and blocked writes.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
    blocked: bool,
}

impl Watched {
    fn wrote<T>(&mut self, polled: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        let blocked = polled.is_pending();
        if blocked != self.blocked {
            self.blocked = blocked;
            self.activity.write_blocked(blocked);
        }
        polled
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.wrote(polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.wrote(polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A request body that must arrive whole by `deadline`.
struct Timed {
    body: Incoming,
    deadline: Instant,
    /// Made the first time the body is not ready: most bodies never wait.
    sleep: Option<Pin<Box<Sleep>>>,
}

/// The error of a request body that did not arrive within
/// `[http] body_timeout_seconds`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time ([http] body_timeout_seconds)")]
pub struct BodyTimedOut;

/// Whether `error` (a body rejection, say) comes from a body that did not
/// arrive in time.
pub fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut e = Some(error);
    while let Some(error) = e {
        if error.is::<BodyTimedOut>() {
            return true;
        }
        e = error.source();
    }
    false
}

impl HttpBody for Timed {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = self.deadline;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimedOut.into()))),
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

/// An answer's body, keeping its request in hand until hyper drops it
/// (sent whole, or the connection ended).
struct Tracked {
    body: Body,
    _in_hand: InHand,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules {
        header_timeout: Duration::from_secs(10),
        body_timeout: Duration::from_secs(30),
        keepalive: Duration::from_secs(75),
        max_connections: 1,
    };

    #[tokio::test]
    async fn deadlines_follow_what_the_connection_does() {
        let activity = Arc::new(Activity::new());
        let opened = activity.lock().since;
        // The first head is due from the opening, bytes or not.
        assert_eq!(
            activity.deadline(&RULES),
            Some(opened + RULES.header_timeout)
        );
        activity.read();
        assert_eq!(
            activity.deadline(&RULES),
            Some(opened + RULES.header_timeout)
        );
        // None while a request is in hand.
        let in_hand = InHand::start(&activity);
        activity.read();
        assert_eq!(activity.deadline(&RULES), None);
        drop(in_hand);
        // Between requests: the keep-alive time from the answer ...
        let answered = activity.lock().since;
        assert!(answered >= opened);
        assert_eq!(activity.deadline(&RULES), Some(answered + RULES.keepalive));
        // ... until the next head starts, which is then due in time.
        activity.read();
        let from = activity.lock().head_from.expect("the head started");
        assert_eq!(activity.deadline(&RULES), Some(from + RULES.header_timeout));
        // An answer the client does not read is no idle connection.
        activity.write_blocked(true);
        assert_eq!(activity.deadline(&RULES), None);
        assert!(!activity.lock().idle());
    }

    #[test]
    fn a_timed_out_body_is_found_under_its_wrappers() {
        let wrapped = axum::Error::new(BodyTimedOut);
        assert!(timed_out(&wrapped));
        assert!(!timed_out(&axum::Error::new(io::Error::other("reset"))));
    }
}
