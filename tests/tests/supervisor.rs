//! The endpoint's supervisor seen from outside: workers restarted after a panic, an endpoint
//! brought down by a worker that keeps failing, and one temporary child per open connection.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fawkes::supervisor::{CancellationToken, ChildSpec};
use fawkes::{Conn, Endpoint};
use tests::{eventually, start, within, RawConn, DEADLINE};

async fn hello(conn: Conn) -> Conn {
    conn.text("hello")
}

fawkes::router! {
    /// A single cheap route, to show the endpoint serving while its workers misbehave.
    pub Plain;
    scope "/" {
        get "/hello" => hello;
    }
}

static FLAKY_STARTS: AtomicU32 = AtomicU32::new(0);

/// Panics on its first two starts, then runs until told to stop.
fn flaky_worker() -> ChildSpec {
    ChildSpec::new("flaky", |token: CancellationToken| async move {
        let start = FLAKY_STARTS.fetch_add(1, Ordering::SeqCst) + 1;
        if start <= 2 {
            panic!("flaky worker failed on start {start}");
        }
        token.cancelled().await;
        Ok::<_, std::io::Error>(())
    })
}

#[tokio::test]
async fn a_permanent_worker_that_panics_is_restarted_and_counted() {
    let server = start(Endpoint::new(Plain::new()).worker(flaky_worker())).await;
    let supervisor = server.supervisor().clone();
    eventually(DEADLINE, "the worker's third start", || {
        FLAKY_STARTS.load(Ordering::SeqCst) == 3 && supervisor.stats().restarts == 2
    })
    .await;
    let stats = supervisor.stats();
    assert_eq!(stats.panics, 2);
    assert_eq!(stats.abnormal_exits, 2);
    assert_eq!(stats.static_children, 1);
    assert!(supervisor.is_running());
    assert!(server.is_ready());

    let mut conn = RawConn::connect(server.local_addr()).await.unwrap();
    assert_eq!(conn.get("/hello").await.unwrap().text(), "hello");
    drop(conn);

    server.shutdown();
    within(DEADLINE, "the endpoint to stop", server.wait()).await.unwrap();
    // Stopping the worker is not a failure: no restart, nothing more counted.
    assert_eq!(FLAKY_STARTS.load(Ordering::SeqCst), 3);
    let stats = supervisor.stats();
    assert_eq!((stats.restarts, stats.panics, stats.static_children), (2, 2, 0));
}

static DOOMED_STARTS: AtomicU32 = AtomicU32::new(0);

#[tokio::test]
async fn a_worker_past_its_restart_intensity_stops_the_endpoint_with_an_error() {
    const MAX_RESTARTS: u32 = 2;
    let doomed = ChildSpec::new("doomed", |_token: CancellationToken| async move {
        DOOMED_STARTS.fetch_add(1, Ordering::SeqCst);
        Err::<(), _>(std::io::Error::other("cannot reach the queue"))
    });
    let server = start(
        Endpoint::new(Plain::new())
            .restart_intensity(MAX_RESTARTS, Duration::from_secs(30))
            .worker(doomed),
    )
    .await;

    let err = within(DEADLINE, "the endpoint to fail", server.wait()).await.unwrap_err();
    assert!(err.is_supervisor(), "{err:?}");
    assert!(err.to_string().contains("restart intensity"), "{err}");
    assert!(!server.is_ready());
    assert!(!server.supervisor().is_running());
    // The first start and every restart the intensity allowed, then one failure too many.
    assert_eq!(DOOMED_STARTS.load(Ordering::SeqCst), MAX_RESTARTS + 1);
    let stats = server.supervisor().stats();
    assert_eq!(stats.restarts, u64::from(MAX_RESTARTS));
    assert_eq!(stats.abnormal_exits, u64::from(MAX_RESTARTS + 1));
    assert_eq!(stats.panics, 0);
    // wait() reports the same failure to every caller.
    assert!(server.wait().await.unwrap_err().is_supervisor());
    assert!(tokio::net::TcpStream::connect(server.local_addr()).await.is_err());
}

#[tokio::test]
async fn each_open_connection_is_one_temporary_child() {
    const OPEN: usize = 5;
    let server = start(Endpoint::new(Plain::new())).await;
    let supervisor = server.supervisor().clone();
    assert_eq!(supervisor.stats().temporary_children, 0);

    let mut conns = Vec::new();
    for i in 0..OPEN {
        let mut conn = RawConn::connect(server.local_addr()).await.unwrap();
        // Some have been served and sit in keep-alive, some have not sent a byte yet.
        if i % 2 == 0 {
            assert_eq!(conn.get("/hello").await.unwrap().status, 200);
        }
        conns.push(conn);
    }
    eventually(DEADLINE, "one child per open connection", || {
        supervisor.stats().temporary_children == OPEN
    })
    .await;

    conns.truncate(2);
    eventually(DEADLINE, "the closed connections' children to end", || {
        supervisor.stats().temporary_children == 2
    })
    .await;
    conns.clear();
    eventually(DEADLINE, "every connection child to end", || {
        supervisor.stats().temporary_children == 0
    })
    .await;
    // Connection children end normally, so nothing abnormal was counted.
    assert_eq!(supervisor.stats().abnormal_exits, 0);
    assert_eq!(supervisor.stats().static_children, 0);

    // HTTP/2: many streams, still one connection and so one child.
    let client = tests::http2_client();
    let url = format!("{}/hello", server.url());
    let first = client.get(&url).send().await.unwrap();
    assert_eq!(first.version(), http::Version::HTTP_2);
    for _ in 0..5 {
        assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    }
    eventually(DEADLINE, "one child for the h2 connection", || {
        supervisor.stats().temporary_children == 1
    })
    .await;
    server.shutdown();
    within(DEADLINE, "the endpoint to stop", server.wait()).await.unwrap();
    assert_eq!(supervisor.stats().temporary_children, 0);
}
