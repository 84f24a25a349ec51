//! Shutdown as a rolling deploy needs it: readiness turns false first, the listener keeps
//! accepting through the drain delay, in-flight requests finish, and whatever does not finish
//! is cut at the deadline.

use std::time::Duration;

use fawkes::{Conn, Endpoint};
use serde_json::json;
use tests::{eventually_async, http1_client, start, within, RawConn, DEADLINE};
use tokio::sync::Notify;
use tokio::time::Instant;

async fn hello(conn: Conn) -> Conn {
    conn.text("hello")
}

/// Signalled when `/held` has begun; `/held` answers once `RELEASE` is signalled.
static ENTERED: Notify = Notify::const_new();
static RELEASE: Notify = Notify::const_new();

async fn held(conn: Conn) -> Conn {
    ENTERED.notify_one();
    RELEASE.notified().await;
    conn.text("finished")
}

/// Signalled when `/forever` has begun; it never answers.
static FOREVER_ENTERED: Notify = Notify::const_new();

async fn forever(conn: Conn) -> Conn {
    FOREVER_ENTERED.notify_one();
    std::future::pending::<()>().await;
    conn.text("unreachable")
}

fawkes::router! {
    /// Routes whose answers the tests hold back, next to the probes.
    pub Drain;
    scope "/" {
        get "/hello" => hello;
        get "/held" => held;
        get "/forever" => forever;
        get "/readyz" => fawkes::telemetry::readyz;
    }
}

/// Whether a fresh connection to `addr` is refused.
async fn refused(addr: std::net::SocketAddr) -> bool {
    tokio::net::TcpStream::connect(addr).await.is_err()
}

#[tokio::test]
async fn an_in_flight_request_completes_after_shutdown_begins() {
    let server = start(Endpoint::new(Drain::new())).await;
    let addr = server.local_addr();
    let client = http1_client();
    let request = tokio::spawn(client.get(format!("{}/held", server.url())).send());
    within(DEADLINE, "the action to begin", ENTERED.notified()).await;

    server.shutdown();
    assert!(!server.is_ready());
    eventually_async(DEADLINE, "the listener to close", || refused(addr)).await;
    // The endpoint is not done while a request is still running.
    let waiting = tokio::time::timeout(Duration::from_millis(200), server.wait()).await;
    assert!(waiting.is_err(), "wait() returned with a request in flight");

    RELEASE.notify_one();
    let resp = within(DEADLINE, "the held request", request).await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "finished");
    within(DEADLINE, "the endpoint to stop", server.wait()).await.unwrap();
    assert_eq!(server.supervisor().stats().temporary_children, 0);
}

#[tokio::test]
async fn readiness_turns_false_during_the_drain_delay_while_requests_are_still_served() {
    const DRAIN_DELAY: Duration = Duration::from_millis(1500);
    let server = start(Endpoint::new(Drain::new()).drain_delay(DRAIN_DELAY)).await;
    let addr = server.local_addr();
    let client = http1_client();
    let readyz = format!("{}/readyz", server.url());

    let resp = client.get(&readyz).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let local = json!({ "adapter": "local", "connected": true });
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap(),
        json!({ "status": "ok", "pubsub": local })
    );
    // A keep-alive connection opened before the shutdown.
    let mut before = RawConn::connect(addr).await.unwrap();
    assert_eq!(before.get("/hello").await.unwrap().status, 200);

    let shutdown_at = Instant::now();
    server.shutdown();
    assert!(!server.is_ready());
    // The very next probe already sees the drain.
    assert_eq!(client.get(&readyz).send().await.unwrap().status(), 503);
    let mut fresh = RawConn::connect(addr).await.unwrap();
    let resp = fresh.get("/readyz").await.unwrap();
    assert_eq!(resp.status, 503);
    assert_eq!(resp.json(), json!({ "status": "draining", "pubsub": local }));
    // Answers during the drain close their connections, so clients move on cleanly.
    assert_eq!(resp.header("connection"), Some("close"));
    fresh.closed_within(DEADLINE).await.expect("the answered connection is closed");
    // Still inside the delay: new and old connections alike are served.
    let mut fresh = RawConn::connect(addr).await.unwrap();
    let resp = fresh.get("/hello").await.unwrap();
    assert_eq!((resp.status, resp.text().as_str()), (200, "hello"));
    let resp = before.get("/hello").await.unwrap();
    assert_eq!((resp.status, resp.header("connection")), (200, Some("close")));
    assert!(shutdown_at.elapsed() < DRAIN_DELAY, "the checks above ran too slowly");

    eventually_async(DEADLINE, "the listener to close", || refused(addr)).await;
    let closed_after = shutdown_at.elapsed();
    assert!(closed_after >= DRAIN_DELAY, "listener closed after only {closed_after:?}");
    within(DEADLINE, "the endpoint to stop", server.wait()).await.unwrap();
    before.closed_within(DEADLINE).await.expect("the old connection is closed");
}

#[tokio::test]
async fn a_request_that_never_finishes_is_cut_at_the_shutdown_timeout() {
    const SHUTDOWN_TIMEOUT: Duration = Duration::from_millis(500);
    let server = start(Endpoint::new(Drain::new()).shutdown_timeout(SHUTDOWN_TIMEOUT)).await;
    let client = http1_client();
    let request = tokio::spawn(client.get(format!("{}/forever", server.url())).send());
    within(DEADLINE, "the action to begin", FOREVER_ENTERED.notified()).await;

    let shutdown_at = Instant::now();
    server.shutdown();
    within(SHUTDOWN_TIMEOUT * 6, "wait() past the shutdown timeout", server.wait()).await.unwrap();
    let stopped_after = shutdown_at.elapsed();
    assert!(stopped_after >= SHUTDOWN_TIMEOUT, "stopped after only {stopped_after:?}");

    // The client sees its connection dropped, not an answer.
    let outcome = within(DEADLINE, "the cut request", request).await.unwrap();
    assert!(outcome.is_err(), "the never-ending request got an answer: {outcome:?}");
    assert_eq!(server.supervisor().stats().temporary_children, 0);
    assert!(refused(server.local_addr()).await);
}

#[tokio::test]
async fn shutdown_with_nothing_in_flight_stops_promptly() {
    let server = start(Endpoint::new(Drain::new())).await;
    let client = http1_client();
    let resp = client.get(format!("{}/hello", server.url())).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    // The client keeps that connection open and idle; the drain closes it rather than
    // waiting for the idle timeout.
    server.shutdown();
    server.shutdown();
    within(Duration::from_secs(2), "the endpoint to stop", server.wait()).await.unwrap();
    assert!(refused(server.local_addr()).await);
}

/// What the load clients of a drain test saw.
#[derive(Debug, Default)]
struct Tally {
    answered: u64,
    /// Requests written to a connection the server took up, that got no answer.
    unanswered: Vec<String>,
}

/// Sends requests back to back on keep-alive connections until the server stops taking them:
/// a connection is left when an answer says `connection: close`, and the client stops when a
/// new connection is refused.
async fn keep_sending(addr: std::net::SocketAddr) -> Tally {
    let mut tally = Tally::default();
    while let Ok(mut conn) = RawConn::connect(addr).await {
        loop {
            match conn.get("/hello").await {
                Ok(resp) => {
                    assert_eq!(resp.status, 200, "{}", resp.text());
                    tally.answered += 1;
                    if resp.header("connection") == Some("close") {
                        break;
                    }
                }
                Err(err) => {
                    tally.unanswered.push(err.to_string());
                    break;
                }
            }
        }
    }
    tally
}

#[tokio::test]
async fn under_load_every_request_is_answered_through_a_drain_without_delay() {
    let server = start(Endpoint::new(Drain::new())).await;
    let addr = server.local_addr();
    let clients: Vec<_> = (0..32).map(|_| tokio::spawn(keep_sending(addr))).collect();
    // Let the load run, then drain in the middle of it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.shutdown();
    within(DEADLINE, "the endpoint to stop", server.wait()).await.unwrap();
    let mut total = Tally::default();
    for client in clients {
        let tally = within(DEADLINE, "a load client to finish", client).await.unwrap();
        total.answered += tally.answered;
        total.unanswered.extend(tally.unanswered);
    }
    eprintln!(
        "drain under load: {} answered, {} unanswered",
        total.answered,
        total.unanswered.len()
    );
    assert!(total.answered > 1000, "too little load to mean anything: {total:?}");
    assert!(total.unanswered.is_empty(), "requests lost in the drain: {:?}", total.unanswered);
}
