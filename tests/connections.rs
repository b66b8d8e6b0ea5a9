#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! Connection limits on both listeners (`listen.connections`), plaintext: a slowloris client
//! sending half a header block, a silent connection and an idle keep-alive connection are closed
//! after their (short, test-configured) timeouts; connections beyond the cap are closed at once
//! while earlier ones stay served. Outcomes only, with generous bounds: never exact timings.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use scopegate::accounts::SnapshotSource;
use scopegate::authz::{Authorizer, AuthorizerOptions};
use scopegate::http::HttpOptions;
use scopegate::server::run_on;
use scopegate::tls::{ConnectionLimits, Listener, Protocols};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// Long enough that only the limit under test can close a connection within [`WAIT`].
const LONG: Duration = Duration::from_secs(600);
/// How long a test waits for an outcome before it fails (a bound against hangs only).
const WAIT: Duration = Duration::from_secs(30);

fn state() -> Arc<Authorizer> {
    Arc::new(Authorizer::load_with(SnapshotSource::Embedded, None, &AuthorizerOptions::default()).unwrap())
}

/// A listener of `protocols` under `limits`, serving until the returned sender is dropped.
async fn start(protocols: Protocols, limits: ConnectionLimits) -> (SocketAddr, oneshot::Sender<()>) {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listener = Listener::with_limits(tcp, None, protocols, limits);
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async {
        let _ = stopped.await;
    };
    tokio::spawn(async move {
        match protocols {
            Protocols::Http => scopegate::http::serve_on(listener, state(), HttpOptions::default(), shutdown)
                .await
                .unwrap(),
            Protocols::Grpc => run_on(listener, state(), shutdown).await.unwrap(),
        }
    });
    (addr, stop)
}

/// Reads until the server closes the connection; `false` if it is still open after [`WAIT`].
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0; 4096];
    let read_to_end = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(WAIT, read_to_end).await.is_ok()
}

/// `GET /healthz` on an open HTTP/1.1 connection: whether an answer comes back (any status: the HTTP
/// listener authorizes every path, so an uncredentialed `/healthz` is a denial, and still an answer).
async fn healthz(stream: &mut TcpStream) -> bool {
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: scopegate\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut reply = Vec::new();
    let mut buf = [0; 1024];
    let read_head = async {
        while !reply.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => reply.extend_from_slice(&buf[..n]),
            }
        }
        true
    };
    tokio::time::timeout(WAIT, read_head).await.unwrap_or(false) && reply.starts_with(b"HTTP/1.1 ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_client_is_disconnected_after_the_header_timeout() {
    let limits = ConnectionLimits {
        header_read_timeout: Duration::from_millis(500),
        idle_timeout: LONG,
        max_connections: 100,
    };
    let (addr, _stop) = start(Protocols::Http, limits).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: scopegate\r\nX-Slow: ")
        .await
        .unwrap();
    let mut good = TcpStream::connect(addr).await.unwrap();
    assert!(
        healthz(&mut good).await,
        "a well-behaved client is served meanwhile"
    );
    assert!(
        closed_by_server(&mut slow).await,
        "half a header block held the connection open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_on_both_listeners() {
    let limits = ConnectionLimits {
        header_read_timeout: Duration::from_millis(500),
        idle_timeout: LONG,
        max_connections: 100,
    };
    for protocols in [Protocols::Http, Protocols::Grpc] {
        let (addr, _stop) = start(protocols, limits).await;
        let mut silent = TcpStream::connect(addr).await.unwrap();
        assert!(
            closed_by_server(&mut silent).await,
            "{protocols:?}: a client that never spoke kept its connection"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let limits = ConnectionLimits {
        header_read_timeout: LONG,
        idle_timeout: Duration::from_millis(500),
        max_connections: 100,
    };
    let (addr, _stop) = start(Protocols::Http, limits).await;
    let mut idle = TcpStream::connect(addr).await.unwrap();
    assert!(healthz(&mut idle).await);
    assert!(
        closed_by_server(&mut idle).await,
        "the idle connection stayed open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_closed_while_earlier_ones_stay_served() {
    let limits = ConnectionLimits {
        header_read_timeout: LONG,
        idle_timeout: LONG,
        max_connections: 2,
    };
    let (addr, _stop) = start(Protocols::Http, limits).await;
    let mut first = TcpStream::connect(addr).await.unwrap();
    let mut second = TcpStream::connect(addr).await.unwrap();
    assert!(healthz(&mut first).await && healthz(&mut second).await);
    let mut third = TcpStream::connect(addr).await.unwrap();
    assert!(!healthz(&mut third).await, "a third connection was served");
    assert!(
        healthz(&mut first).await && healthz(&mut second).await,
        "earlier ones still served"
    );
    // a closed connection frees its slot (released when the server drops it: retry a while)
    drop(first);
    let mut served = false;
    for _ in 0..300 {
        let mut next = TcpStream::connect(addr).await.unwrap();
        if healthz(&mut next).await {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "the freed slot was never reused");
    // the gRPC listener enforces the same cap: beyond it, a connection is closed unanswered
    let (grpc, _stop) = start(
        Protocols::Grpc,
        ConnectionLimits {
            max_connections: 1,
            ..limits
        },
    )
    .await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let check = || tonic_health::pb::HealthCheckRequest {
        service: String::new(),
    };
    assert!(health.check(check()).await.is_ok());
    let mut beyond = TcpStream::connect(grpc).await.unwrap();
    assert!(
        closed_by_server(&mut beyond).await,
        "a second gRPC connection was kept"
    );
    assert!(
        health.check(check()).await.is_ok(),
        "the first gRPC connection is still served"
    );
}
