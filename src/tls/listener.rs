//! A listener for both servers: plaintext TCP, or TLS with [`ServerTls`]. TLS handshakes run in
//! their own tasks under a deadline and a cap on how many are in flight, so a slow or silent
//! client never stalls accepting others. Only connections whose client finished the handshake and
//! sent its first bytes reach the server: a connection the server has never heard from would
//! otherwise hold its graceful shutdown open (hyper waits for the HTTP/2 preface).
//!
//! Accepted sockets get `TCP_NODELAY` (as tonic's own listener does): checks are small messages,
//! and Nagle's algorithm against delayed ACKs cost a new plaintext connection ~20 ms per check.
//!
//! [`Listener`] is a `Stream` of connections for tonic's `serve_with_incoming_shutdown` and an
//! [`axum::serve::Listener`] for the HTTP listener; [`Conn`] is the connection either way.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

use super::{Protocols, ServerTls};

/// How long a client has to complete the TLS handshake and send its first bytes.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How many TLS handshakes may be in flight per listener; accepting waits beyond that.
pub const MAX_PENDING_HANDSHAKES: usize = 1024;

type Ready = (TlsConn, SocketAddr);

/// The most a connection's first read takes before it is handed to the server.
const FIRST_READ: usize = 16 * 1024;

/// Accepts connections, plaintext or TLS.
#[derive(Debug)]
pub struct Listener {
    local: SocketAddr,
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Plain(TcpListener),
    Tls {
        ready: mpsc::Receiver<Ready>,
        _acceptor: AbortOnDrop,
    },
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
    /// Plaintext connections.
    pub fn plain(tcp: TcpListener) -> Self {
        let local = tcp
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        Self {
            local,
            inner: Inner::Plain(tcp),
        }
    }

    /// TLS connections offering `protocols` by ALPN. Spawns the accept loop: call it inside a
    /// Tokio runtime.
    pub fn tls(tcp: TcpListener, tls: Arc<ServerTls>, protocols: Protocols) -> Self {
        let local = tcp
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let (sender, ready) = mpsc::channel(64);
        let acceptor = tokio::spawn(accept_loop(tcp, tls, protocols, sender));
        Self {
            local,
            inner: Inner::Tls {
                ready,
                _acceptor: AbortOnDrop(acceptor),
            },
        }
    }

    /// TLS when `tls` is given, else plaintext.
    pub fn new(tcp: TcpListener, tls: Option<&Arc<ServerTls>>, protocols: Protocols) -> Self {
        match tls {
            Some(tls) => Self::tls(tcp, Arc::clone(tls), protocols),
            None => Self::plain(tcp),
        }
    }

    /// Whether connections are TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.inner, Inner::Tls { .. })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

async fn accept_loop(
    tcp: TcpListener,
    tls: Arc<ServerTls>,
    protocols: Protocols,
    ready: mpsc::Sender<Ready>,
) {
    let permits = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    while !ready.is_closed() {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                accept_error(error).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let acceptor = TlsAcceptor::from(tls.config(protocols));
        let ready = ready.clone();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, open(acceptor, stream)).await;
            drop(permit);
            match handshake {
                Ok(Ok(Some(conn))) => {
                    let _ = ready.send((conn, peer)).await;
                }
                Ok(Ok(None)) => {}
                Ok(Err(error)) => {
                    tracing::debug!(code = "tls_handshake_failed", %peer, %error, "tls handshake failed");
                }
                Err(_) => tracing::debug!(code = "tls_handshake_timeout", %peer, "tls handshake timed out"),
            }
        });
    }
}

/// The TLS handshake and the client's first bytes; `None` when the client closes first.
async fn open(acceptor: TlsAcceptor, stream: TcpStream) -> io::Result<Option<TlsConn>> {
    let mut stream = acceptor.accept(stream).await?;
    let mut first = vec![0; FIRST_READ];
    let read = stream.read(&mut first).await?;
    if read == 0 {
        return Ok(None);
    }
    first.truncate(read);
    Ok(Some(TlsConn {
        stream,
        first,
        offset: 0,
    }))
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
        match &mut self.get_mut().inner {
            Inner::Plain(tcp) => tcp.poll_accept(cx).map(|accepted| {
                Some(accepted.map(|(stream, _)| {
                    let _ = stream.set_nodelay(true);
                    Conn::Plain(stream)
                }))
            }),
            Inner::Tls { ready, .. } => ready
                .poll_recv(cx)
                .map(|stream| stream.map(|(stream, _)| Ok(Conn::Tls(Box::new(stream))))),
        }
    }
}

impl axum::serve::Listener for Listener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        loop {
            match &mut self.inner {
                Inner::Plain(tcp) => match TcpListener::accept(tcp).await {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        return (Conn::Plain(stream), peer);
                    }
                    Err(error) => accept_error(error).await,
                },
                Inner::Tls { ready, .. } => match ready.recv().await {
                    Some((stream, peer)) => return (Conn::Tls(Box::new(stream)), peer),
                    None => std::future::pending::<()>().await,
                },
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// An accepted connection.
#[derive(Debug)]
pub enum Conn {
    /// Plaintext.
    Plain(TcpStream),
    /// TLS, handshake done.
    Tls(Box<TlsConn>),
}

/// A TLS connection and the first bytes already read from it.
#[derive(Debug)]
pub struct TlsConn {
    stream: TlsStream<TcpStream>,
    first: Vec<u8>,
    offset: usize,
}

impl TlsConn {
    /// The TLS stream (and, through it, the negotiated session).
    pub fn stream(&self) -> &TlsStream<TcpStream> {
        &self.stream
    }
}

impl AsyncRead for TlsConn {
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
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

impl Conn {
    /// The TCP stream underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(stream) => stream,
            Self::Tls(conn) => conn.stream.get_ref().0,
        }
    }
}

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.tcp().connect_info()
    }
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Self::Tls(stream) => Pin::new(stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
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
