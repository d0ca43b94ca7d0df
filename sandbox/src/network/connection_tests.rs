//! The splice layer on its own: round robin, skipping refused endpoints, closing
//! connections to endpoints that leave the ready set, resetting without endpoints.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::connection::{Backends, PortProxy, accept_loop};

const DEADLINE: Duration = Duration::from_secs(10);

/// Greets every connection with `identity`, then echoes until the peer closes.
async fn backend(identity: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind backend");
    let addr = listener.local_addr().expect("backend addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = stream.write_all(format!("{identity}\n").as_bytes()).await;
                let (mut read, mut write) = stream.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    addr
}

/// An address nothing listens on (bound once, then released).
async fn refusing() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr")
}

async fn proxy(backends: Vec<SocketAddr>) -> (SocketAddr, watch::Sender<Backends>, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("proxy addr");
    let (sender, receiver) = watch::channel(Backends::from(backends));
    let port = Arc::new(PortProxy {
        service: "test/writer".into(),
        port_name: "sql".into(),
        backends: receiver,
        next: AtomicUsize::new(0),
    });
    let cancel = CancellationToken::new();
    tokio::spawn(accept_loop(listener, port, cancel.clone()));
    (addr, sender, cancel)
}

async fn greeted(addr: SocketAddr) -> (String, BufReader<TcpStream>) {
    let mut conn = BufReader::new(TcpStream::connect(addr).await.expect("connect proxy"));
    let mut line = String::new();
    tokio::time::timeout(DEADLINE, conn.read_line(&mut line))
        .await
        .expect("greeting in time")
        .expect("greeting");
    (line.trim_end().to_owned(), conn)
}

async fn closed(conn: &mut BufReader<TcpStream>) -> bool {
    let mut buf = [0u8; 16];
    matches!(
        tokio::time::timeout(DEADLINE, conn.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn connections_alternate_between_ready_endpoints() {
    let (a, b) = (backend("a").await, backend("b").await);
    let (addr, _sender, _cancel) = proxy(vec![a, b]).await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(greeted(addr).await.0);
    }
    assert_ne!(seen[0], seen[1], "{seen:?}");
    assert_eq!(seen[0..2], seen[2..4], "{seen:?}");
}

#[tokio::test]
async fn refusing_endpoints_are_skipped() {
    let (a, b, dead) = (backend("a").await, backend("b").await, refusing().await);
    let (addr, _sender, _cancel) = proxy(vec![dead, a, dead, b]).await;
    let mut seen = Vec::new();
    for _ in 0..8 {
        seen.push(greeted(addr).await.0);
    }
    assert!(
        seen.contains(&"a".to_owned()) && seen.contains(&"b".to_owned()),
        "{seen:?}"
    );
}

#[tokio::test]
async fn leaving_the_ready_set_closes_only_that_endpoints_connections() {
    let (a, b) = (backend("a").await, backend("b").await);
    let (addr, sender, _cancel) = proxy(vec![a]).await;
    let (_, mut to_a) = greeted(addr).await;
    sender.send_replace(Backends::from(vec![a, b]));
    let (mut to_b, mut to_a2) = loop {
        let (id, conn) = greeted(addr).await;
        if id == "b" {
            break (conn, greeted(addr).await.1);
        }
    };
    sender.send_replace(Backends::from(vec![b]));
    assert!(closed(&mut to_a).await, "connection to a stays open");
    // to_a2 went to a (round robin after b), so it closes too; b's stays.
    assert!(closed(&mut to_a2).await, "second connection to a stays open");
    let mut buf = [0u8; 1];
    let still_open = tokio::time::timeout(Duration::from_millis(200), to_b.read(&mut buf))
        .await
        .is_err();
    assert!(still_open, "connection to b was closed");
}

#[tokio::test]
async fn without_ready_endpoints_clients_are_reset_at_once() {
    let (addr, _sender, _cancel) = proxy(Vec::new()).await;
    let mut conn = BufReader::new(TcpStream::connect(addr).await.expect("connect proxy"));
    assert!(closed(&mut conn).await, "client without endpoints was left hanging");
}

#[tokio::test]
async fn stopping_the_service_proxy_closes_its_connections() {
    let a = backend("a").await;
    let (addr, _sender, cancel) = proxy(vec![a]).await;
    let (_, mut conn) = greeted(addr).await;
    cancel.cancel();
    assert!(closed(&mut conn).await);
}
