//! Clients that are slow, idle or too many: none of them holds up the others, and each is let
//! go when its allowance runs out.

use std::time::Duration;

use fawkes::{Conn, Endpoint};
use tests::{http1_client, start, within, RawConn, DEADLINE};
use tokio::time::Instant;

async fn hello(conn: Conn) -> Conn {
    conn.text("hello")
}

fawkes::router! {
    /// A single cheap route.
    pub Slow;
    scope "/" {
        get "/hello" => hello;
    }
}

/// Allowances short enough to observe, long enough to stay clear of scheduling noise.
const HEADER_READ_TIMEOUT: Duration = Duration::from_millis(500);
const IDLE_TIMEOUT: Duration = Duration::from_millis(600);

/// Timers may fire a little early by the clock the test reads; this is the slack allowed.
const EARLY: Duration = Duration::from_millis(50);

#[tokio::test]
async fn a_stalled_request_head_neither_delays_others_nor_outstays_its_timeout() {
    let server = start(Endpoint::new(Slow::new()).header_read_timeout(HEADER_READ_TIMEOUT)).await;

    let mut stalled = RawConn::connect(server.local_addr()).await.unwrap();
    stalled.send(b"GET /hello HTTP/1.1\r\nhost: 127.0.0.1\r\nx-half: ").await.unwrap();
    let stalled_at = Instant::now();

    // Others are answered while it stalls, each well inside the stalled client's allowance.
    let client = http1_client();
    for _ in 0..5 {
        let started = Instant::now();
        let resp = client.get(format!("{}/hello", server.url())).send().await.unwrap();
        assert_eq!(resp.text().await.unwrap(), "hello");
        assert!(started.elapsed() < HEADER_READ_TIMEOUT / 2, "took {:?}", started.elapsed());
    }
    let mut fresh = RawConn::connect(server.local_addr()).await.unwrap();
    assert_eq!(fresh.get("/hello").await.unwrap().status, 200);
    assert!(stalled_at.elapsed() < HEADER_READ_TIMEOUT, "the checks above ran too slowly");

    // The stalled client is cut off once its time is up, with at most a 408 as goodbye.
    let said = stalled.closed_within(DEADLINE).await.expect("the stalled client is disconnected");
    let waited = stalled_at.elapsed();
    assert!(waited >= HEADER_READ_TIMEOUT - EARLY, "cut after {waited:?}");
    assert!(waited < HEADER_READ_TIMEOUT * 4, "cut only after {waited:?}");
    let said = String::from_utf8_lossy(&said);
    assert!(said.is_empty() || said.starts_with("HTTP/1.1 408"), "{said}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = start(Endpoint::new(Slow::new()).idle_timeout(IDLE_TIMEOUT)).await;
    let mut conn = RawConn::connect(server.local_addr()).await.unwrap();

    // Requests spaced well inside the timeout keep the connection alive past it: idleness is
    // measured from the last request, not from the connection's start.
    let started = Instant::now();
    for _ in 0..5 {
        assert_eq!(conn.get("/hello").await.unwrap().status, 200);
        tokio::time::sleep(IDLE_TIMEOUT / 4).await;
    }
    assert!(started.elapsed() > IDLE_TIMEOUT);
    let resp = conn.get("/hello").await.unwrap();
    assert_eq!(resp.status, 200);
    let idle_from = Instant::now();

    let said = conn.closed_within(DEADLINE).await.expect("the idle connection is closed");
    assert!(said.is_empty(), "unexpected bytes: {}", String::from_utf8_lossy(&said));
    let idled = idle_from.elapsed();
    assert!(idled >= IDLE_TIMEOUT - EARLY, "closed after {idled:?}");
    assert!(idled < IDLE_TIMEOUT * 4, "closed only after {idled:?}");
}

#[tokio::test]
async fn a_connection_that_never_sends_a_request_is_closed_when_idle() {
    let server = start(Endpoint::new(Slow::new()).idle_timeout(IDLE_TIMEOUT)).await;
    let opened = Instant::now();
    let mut conn = RawConn::connect(server.local_addr()).await.unwrap();
    conn.closed_within(DEADLINE).await.expect("the silent connection is closed");
    assert!(opened.elapsed() >= IDLE_TIMEOUT - EARLY, "closed after {:?}", opened.elapsed());
}

#[tokio::test]
async fn past_max_connections_a_new_connection_waits_for_a_free_slot() {
    let server = start(Endpoint::new(Slow::new()).max_connections(2)).await;
    let mut first = RawConn::connect(server.local_addr()).await.unwrap();
    let mut second = RawConn::connect(server.local_addr()).await.unwrap();
    assert_eq!(first.get("/hello").await.unwrap().status, 200);
    assert_eq!(second.get("/hello").await.unwrap().status, 200);

    // The kernel completes the handshake, but the endpoint does not take the connection up.
    let mut third = RawConn::connect(server.local_addr()).await.unwrap();
    third.send(&tests::request_bytes("GET", "/hello", &[], b"")).await.unwrap();
    assert!(
        !third.answers_within(Duration::from_millis(300)).await.unwrap(),
        "a third connection was served while two were open"
    );
    // The two open ones are still served meanwhile.
    assert_eq!(first.get("/hello").await.unwrap().status, 200);

    drop(first);
    let resp =
        within(DEADLINE, "the third connection's answer", third.read_response()).await.unwrap();
    assert_eq!((resp.status, resp.text().as_str()), (200, "hello"));
    assert_eq!(second.get("/hello").await.unwrap().status, 200);
}

#[tokio::test]
async fn a_silent_connection_is_cut_at_the_header_read_timeout() {
    let server = start(Endpoint::new(Slow::new()).header_read_timeout(HEADER_READ_TIMEOUT)).await;
    let opened = Instant::now();
    let mut conn = RawConn::connect(server.local_addr()).await.unwrap();
    conn.closed_within(DEADLINE).await.expect("the silent connection is closed");
    let waited = opened.elapsed();
    assert!(waited >= HEADER_READ_TIMEOUT - EARLY, "cut after {waited:?}");
    assert!(waited < HEADER_READ_TIMEOUT * 4, "cut only after {waited:?}");
}
