//! A listener for both servers: plaintext TCP, or TLS with [`ServerTls`], under the same
//! [`ConnectionLimits`] either way. Every accepted connection goes through one accept loop:
//! - beyond `max_connections` open connections, a new one is closed as soon as it is accepted
//!   (closing, not queueing: a proxy learns at once and retries elsewhere, and a flood cannot
//!   grow a queue); the slot is freed when the server drops the connection;
//! - the TLS handshake (if any) and the client's first bytes run in their own task under
//!   `header_read_timeout` and a cap on how many are in flight, so a slow or silent client never
//!   stalls accepting others. Only connections whose client sent its first bytes reach the
//!   server: a connection the server has never heard from would otherwise hold a slot and its
//!   graceful shutdown open (hyper waits for the HTTP/2 preface);
//! - a connection the client sends nothing on for `idle_timeout` fails its next read, which
//!   closes it (the HTTP listener also bounds each HTTP/1 header block by `header_read_timeout`).
//!
//! Accepted sockets get `TCP_NODELAY` (as tonic's own listener does): checks are small messages,
//! and Nagle's algorithm against delayed ACKs cost a new plaintext connection ~20 ms per check.
//!
//! [`Listener`] is a `Stream` of connections for tonic's `serve_with_incoming_shutdown` and an
//! [`axum::serve::Listener`] for the HTTP listener; [`Conn`] is the connection either way.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

use super::refusals::RefusalLog;
use super::{Protocols, ServerTls};

/// The default time from accept to a connection's first bytes (TLS handshake included), and for
/// each HTTP/1 header block.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The default time a connection may stay silent before it is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// The default cap on open connections per listener.
pub const MAX_CONNECTIONS: usize = 10_000;
/// How many handshakes (connections not yet handed to the server) may be in flight per listener;
/// accepting waits beyond that.
pub const MAX_PENDING_HANDSHAKES: usize = 1024;

/// Limits applied to every connection of a listener (`listen.connections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From accept to the first bytes (TLS handshake included); on the HTTP listener also the
    /// time to receive each HTTP/1 request's header block. Default: 10 s.
    pub header_read_timeout: Duration,
    /// A connection the client sends nothing on for this long is closed. Default: 120 s.
    pub idle_timeout: Duration,
    /// Open connections at most; more are closed as soon as they are accepted. Default: 10,000.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: HANDSHAKE_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
        }
    }
}

type Ready = (Conn, SocketAddr);

/// The most a connection's first read takes before it is handed to the server.
const FIRST_READ: usize = 16 * 1024;

/// Accepts connections, plaintext or TLS.
#[derive(Debug)]
pub struct Listener {
    local: SocketAddr,
    tls: bool,
    limits: ConnectionLimits,
    ready: mpsc::Receiver<Ready>,
    closed: watch::Receiver<()>,
    _acceptor: AbortOnDrop,
}

/// The listening socket as the accept loop owns it. Fields drop in order: the socket closes
/// before `closed` tells the listener's [`Closed`] watchers.
#[derive(Debug)]
struct Socket {
    tcp: TcpListener,
    _closed: watch::Sender<()>,
}

/// Completes once a [`Listener`]'s socket is closed. Dropping a listener stops its accept loop,
/// but the loop's task (which owns the socket) is cancelled on a worker thread a moment later; a
/// server that returns only after this has completed accepts nothing once it has returned.
#[derive(Debug)]
pub struct Closed(watch::Receiver<()>);

impl Closed {
    /// Waits for the socket to be closed.
    pub async fn wait(mut self) {
        // nothing is ever sent: `changed` fails once the sender (beside the socket) is gone
        while self.0.changed().await.is_ok() {}
    }
}

/// Stops the accept loop when the listener goes away.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl From<TcpListener> for Listener {
    fn from(tcp: TcpListener) -> Self {
        Self::plain(tcp)
    }
}

impl Listener {
    /// Plaintext connections under the default limits. Spawns the accept loop: call it inside a
    /// Tokio runtime.
    pub fn plain(tcp: TcpListener) -> Self {
        Self::with_limits(tcp, None, Protocols::Grpc, ConnectionLimits::default())
    }

    /// TLS connections offering `protocols` by ALPN, under the default limits. Spawns the accept
    /// loop: call it inside a Tokio runtime.
    pub fn tls(tcp: TcpListener, tls: Arc<ServerTls>, protocols: Protocols) -> Self {
        Self::with_limits(tcp, Some(&tls), protocols, ConnectionLimits::default())
    }

    /// TLS when `tls` is given, else plaintext, under the default limits.
    pub fn new(tcp: TcpListener, tls: Option<&Arc<ServerTls>>, protocols: Protocols) -> Self {
        Self::with_limits(tcp, tls, protocols, ConnectionLimits::default())
    }

    /// TLS when `tls` is given (offering `protocols` by ALPN), else plaintext, under `limits`.
    /// Spawns the accept loop: call it inside a Tokio runtime.
    pub fn with_limits(
        tcp: TcpListener,
        tls: Option<&Arc<ServerTls>>,
        protocols: Protocols,
        limits: ConnectionLimits,
    ) -> Self {
        let local = tcp
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let (sender, ready) = mpsc::channel(64);
        let tls_config = tls.map(|tls| (Arc::clone(tls), protocols));
        let is_tls = tls_config.is_some();
        let (closed_sender, closed) = watch::channel(());
        let socket = Socket {
            tcp,
            _closed: closed_sender,
        };
        let acceptor = tokio::spawn(accept_loop(socket, tls_config, limits, sender));
        Self {
            local,
            tls: is_tls,
            limits,
            ready,
            closed,
            _acceptor: AbortOnDrop(acceptor),
        }
    }

    /// Whether connections are TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The limits its connections are held to.
    pub fn limits(&self) -> ConnectionLimits {
        self.limits
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Completes once this listener's socket is closed (after the listener is dropped).
    pub fn closed(&self) -> Closed {
        Closed(self.closed.clone())
    }
}

async fn accept_loop(
    socket: Socket,
    tls: Option<(Arc<ServerTls>, Protocols)>,
    limits: ConnectionLimits,
    ready: mpsc::Sender<Ready>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut warned = false;
    let refusals = Arc::new(RefusalLog::new());
    while !ready.is_closed() {
        let Ok(handshake) = Arc::clone(&handshakes).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match socket.tcp.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                accept_error(error).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            // closed at once; the first time is worth an operator's attention, a flood is not
            if warned {
                tracing::debug!(code = "connection_limit", %peer, "connection closed: listener at its connection cap");
            } else {
                warned = true;
                tracing::warn!(
                    code = "connection_limit",
                    %peer,
                    max = limits.max_connections,
                    "connection closed: listener at its connection cap (listen.connections.max)"
                );
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let acceptor = tls
            .as_ref()
            .map(|(tls, protocols)| TlsAcceptor::from(tls.config(*protocols)));
        let ready = ready.clone();
        let refusals = Arc::clone(&refusals);
        let is_tls = acceptor.is_some();
        tokio::spawn(async move {
            let opened = tokio::time::timeout(limits.header_read_timeout, open(acceptor, stream)).await;
            drop(handshake);
            match opened {
                Ok(Ok(Some((io, first)))) => {
                    let conn = Conn::new(io, first, slot, limits.idle_timeout);
                    let _ = ready.send((conn, peer)).await;
                }
                Ok(Ok(None)) => {}
                Ok(Err(error)) => match refusals.due() {
                    Some(suppressed) if is_tls => tracing::warn!(
                        code = "tls_handshake_failed",
                        %peer,
                        %error,
                        suppressed,
                        "tls handshake refused (a missing or untrusted client certificate, an old \
                         protocol version, or plaintext to a TLS port)"
                    ),
                    _ => {
                        tracing::debug!(code = "tls_handshake_failed", %peer, %error, "connection failed before its first bytes")
                    }
                },
                Err(_) => {
                    tracing::debug!(code = "handshake_timeout", %peer, "no first bytes in time: closed")
                }
            }
        });
    }
}

/// The TLS handshake (when TLS) and the client's first bytes; `None` when the client closes first.
async fn open(acceptor: Option<TlsAcceptor>, stream: TcpStream) -> io::Result<Option<(Io, Vec<u8>)>> {
    let mut io = match acceptor {
        Some(acceptor) => Io::Tls(Box::new(acceptor.accept(stream).await?)),
        None => Io::Plain(stream),
    };
    let mut first = vec![0; FIRST_READ];
    let read = io.read(&mut first).await?;
    if read == 0 {
        return Ok(None);
    }
    first.truncate(read);
    Ok(Some((io, first)))
}

/// Connection errors concern one client: go on. Others (e.g. out of file descriptors) are
/// logged and accepting pauses for a second, as hyper and axum do.
async fn accept_error(error: io::Error) {
    if matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(code = "accept_failed", %error, "accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

impl tokio_stream::Stream for Listener {
    type Item = io::Result<Conn>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut()
            .ready
            .poll_recv(cx)
            .map(|conn| conn.map(|(conn, _)| Ok(conn)))
    }
}

impl axum::serve::Listener for Listener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // the accept loop ended (the runtime is shutting down): accept nothing more
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// The transport of a connection.
#[derive(Debug)]
enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// An accepted connection: its first bytes (already read), the rest of its stream, its slot
/// under the listener's connection cap (freed on drop) and its idle deadline.
#[derive(Debug)]
pub struct Conn {
    io: Io,
    first: Vec<u8>,
    offset: usize,
    idle_timeout: Duration,
    last_read: Instant,
    idle: Pin<Box<Sleep>>,
    _slot: OwnedSemaphorePermit,
}

impl Conn {
    fn new(io: Io, first: Vec<u8>, slot: OwnedSemaphorePermit, idle_timeout: Duration) -> Self {
        let now = Instant::now();
        Self {
            io,
            first,
            offset: 0,
            idle_timeout,
            last_read: now,
            idle: Box::pin(tokio::time::sleep_until(now + idle_timeout)),
            _slot: slot,
        }
    }

    /// The TCP stream underneath.
    pub fn tcp(&self) -> &TcpStream {
        match &self.io {
            Io::Plain(stream) => stream,
            Io::Tls(stream) => stream.get_ref().0,
        }
    }

    /// The TLS stream (and, through it, the negotiated session), when TLS.
    pub fn tls(&self) -> Option<&TlsStream<TcpStream>> {
        match &self.io {
            Io::Plain(_) => None,
            Io::Tls(stream) => Some(stream),
        }
    }

    /// `Ready(error)` once the client has sent nothing for `idle_timeout`; the deadline moves
    /// lazily (only when the timer fires), so reads cost no timer update.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        while self.idle.as_mut().poll(cx).is_ready() {
            let deadline = self.last_read + self.idle_timeout;
            if deadline <= Instant::now() {
                return Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, "idle connection closed"));
            }
            self.idle.as_mut().reset(deadline);
        }
        Poll::Pending
    }
}

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.tcp().connect_info()
    }
}

impl AsyncRead for Io {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Self::Tls(stream) => Pin::new(stream).poll_read(cx, buf),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.offset < this.first.len() {
            let rest = this.first.get(this.offset..).unwrap_or_default();
            let n = rest.len().min(buf.remaining());
            buf.put_slice(rest.get(..n).unwrap_or_default());
            this.offset += n;
            if this.offset == this.first.len() {
                this.first = Vec::new();
                this.offset = 0;
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    this.last_read = Instant::now();
                }
                Poll::Ready(result)
            }
            Poll::Pending => this.poll_idle(cx).map(Err),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Self::Tls(stream) => Pin::new(stream).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Self::Tls(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(stream) => stream.is_write_vectored(),
            Self::Tls(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Self::Tls(stream) => Pin::new(stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Self::Tls(stream) => Pin::new(stream).poll_shutdown(cx),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
