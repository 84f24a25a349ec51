//! Clients that are slow, idle or too many: none of them holds up the others, and each is let
//! go when its allowance runs out.

use std::convert::Infallible;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use bytes::Bytes;
use fawkes::{Body, Conn, Endpoint};
use http::StatusCode;
use http_body_util::StreamBody;
use hyper::body::Frame;
use tests::{http1_client, start, within, RawConn, DEADLINE};
use tokio::time::Instant;

async fn hello(conn: Conn) -> Conn {
    conn.text("hello")
}

/// An answer too large for the socket buffers, so that sending it waits on the client.
const BIG: usize = 64 * 1024 * 1024;

async fn big(conn: Conn) -> Conn {
    conn.text(vec![b'x'; BIG])
}

/// Chunks sent this far apart, in all longer than the header read timeout.
const TRICKLE_CHUNKS: u64 = 6;
const TRICKLE_EVERY: Duration = Duration::from_millis(150);

async fn trickle(conn: Conn) -> Conn {
    let chunks = futures_util::stream::unfold(0, |sent| async move {
        if sent == TRICKLE_CHUNKS {
            return None;
        }
        tokio::time::sleep(TRICKLE_EVERY).await;
        Some((Ok::<_, Infallible>(Frame::data(Bytes::from(format!("{sent};")))), sent + 1))
    });
    conn.send_resp(StatusCode::OK, Body::new(StreamBody::new(chunks)))
}

/// Requests inside `hold`.
static HOLDING: AtomicUsize = AtomicUsize::new(0);

/// A request the application takes its time over.
async fn hold(conn: Conn) -> Conn {
    HOLDING.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    HOLDING.fetch_sub(1, SeqCst);
    conn.text("held")
}

/// Answers the form body's `name`.
async fn echo(conn: Conn) -> Conn {
    let name = conn.body_params().get("name").and_then(|v| v.as_str()).unwrap_or_default();
    let name = name.to_owned();
    conn.text(name)
}

fawkes::router! {
    /// A cheap route, a large answer, a slowly streamed one, a slow action and a form.
    pub Slow;
    scope "/" {
        get "/hello" => hello;
        get "/big" => big;
        get "/trickle" => trickle;
        get "/hold" => hold;
        post "/echo" => echo;
        get "/healthz" => fawkes::telemetry::healthz;
    }
}

/// Allowances short enough to observe, long enough to stay clear of scheduling noise.
const HEADER_READ_TIMEOUT: Duration = Duration::from_millis(500);
const IDLE_TIMEOUT: Duration = Duration::from_millis(600);
const BODY_READ_TIMEOUT: Duration = Duration::from_millis(400);
/// How long a connection waits for its client before the endpoint may close it to make room.
const EVICTABLE_AFTER: Duration = Duration::from_millis(1100);

/// Timers may fire a little early by the clock the test reads; this is the slack allowed.
const EARLY: Duration = Duration::from_millis(50);

/// The test router behind the header read timeout of these tests.
fn endpoint() -> Endpoint {
    Endpoint::new(Slow::new()).header_read_timeout(HEADER_READ_TIMEOUT)
}

/// Sends half a request head on `conn`, and returns when.
async fn stall(conn: &mut RawConn) -> Instant {
    conn.send(b"GET /hello HTTP/1.1\r\nhost: 127.0.0.1\r\nx-half: ").await.unwrap();
    Instant::now()
}

/// Checks that the server cut `conn`, stalled at `stalled_at`, once its header read timeout
/// was up and not long after, with at most a 408 as goodbye.
async fn assert_cut_at_the_timeout(conn: &mut RawConn, stalled_at: Instant) {
    let said = conn.closed_within(DEADLINE).await.expect("the stalled client is disconnected");
    let waited = stalled_at.elapsed();
    assert!(waited >= HEADER_READ_TIMEOUT - EARLY, "cut after {waited:?}");
    assert!(waited < HEADER_READ_TIMEOUT * 4, "cut only after {waited:?}");
    let said = String::from_utf8_lossy(&said);
    assert!(said.is_empty() || said.starts_with("HTTP/1.1 408"), "{said}");
}

#[tokio::test]
async fn a_stalled_request_head_neither_delays_others_nor_outstays_its_timeout() {
    let server = start(endpoint()).await;

    let mut stalled = RawConn::connect(server.local_addr()).await.unwrap();
    let stalled_at = stall(&mut stalled).await;

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

    // The stalled client is cut off once its time is up.
    assert_cut_at_the_timeout(&mut stalled, stalled_at).await;
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
async fn past_max_connections_the_connection_idle_longest_makes_room() {
    let server = start(Endpoint::new(Slow::new()).max_connections(2)).await;
    let mut first = RawConn::connect(server.local_addr()).await.unwrap();
    assert_eq!(first.get("/hello").await.unwrap().status, 200);
    let mut second = RawConn::connect(server.local_addr()).await.unwrap();
    assert_eq!(second.get("/hello").await.unwrap().status, 200);

    // Both wait for their client; the first has waited longer, and gives up its slot once it
    // has waited long enough not to look like a client about to send its next request.
    let mut too_soon = RawConn::connect(server.local_addr()).await.unwrap();
    assert_eq!(too_soon.get("/hello").await.unwrap().status, 503);
    tokio::time::sleep(EVICTABLE_AFTER).await;
    let mut third = RawConn::connect(server.local_addr()).await.unwrap();
    let resp = within(DEADLINE, "the third connection's answer", third.get("/hello")).await;
    assert_eq!(resp.unwrap().status, 200);
    let said = first.closed_within(DEADLINE).await.expect("the first connection is closed");
    assert!(said.is_empty(), "unexpected bytes: {}", String::from_utf8_lossy(&said));
    assert_eq!(second.get("/hello").await.unwrap().status, 200);
    assert_eq!(third.get("/hello").await.unwrap().status, 200);
}

#[tokio::test]
async fn past_max_connections_with_every_connection_busy_a_new_one_is_answered_503() {
    let server = start(Endpoint::new(Slow::new()).max_connections(2)).await;
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut conn = RawConn::connect(server.local_addr()).await.unwrap();
        conn.send(&tests::request_bytes("GET", "/hold", &[], b"")).await.unwrap();
        busy.push(conn);
    }
    // Both requests are in the application: the newcomer is turned away at once, clearly.
    tests::eventually(DEADLINE, "both held requests to start", || HOLDING.load(SeqCst) == 2).await;
    let mut third = RawConn::connect(server.local_addr()).await.unwrap();
    let resp = within(Duration::from_secs(2), "the 503", third.get("/hello")).await.unwrap();
    assert_eq!(resp.status, 503, "{}", resp.text());
    assert_eq!(resp.header("retry-after"), Some("1"));
    assert_eq!(resp.header("connection"), Some("close"));
    third.closed_within(DEADLINE).await.expect("the turned-away connection is closed");
    // Health probes are still answered, on their own lane, one request a connection.
    for _ in 0..3 {
        let mut probe = RawConn::connect(server.local_addr()).await.unwrap();
        let resp = within(Duration::from_secs(2), "the probe", probe.get("/healthz")).await;
        let resp = resp.unwrap();
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert_eq!(resp.header("connection"), Some("close"));
    }
    // The busy ones finish as usual; once closed, their slots serve new connections again.
    for conn in &mut busy {
        let resp = within(DEADLINE, "a held answer", conn.read_response()).await.unwrap();
        assert_eq!(resp.text(), "held");
    }
    drop(busy);
    tests::eventually_async(DEADLINE, "a slot to free up", || async {
        let mut fourth = RawConn::connect(server.local_addr()).await.unwrap();
        fourth.get("/hello").await.is_ok_and(|resp| resp.status == 200)
    })
    .await;
}

/// A request body that announces 100 bytes and sends 10.
fn stalled_post() -> Vec<u8> {
    let mut req = b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\n".to_vec();
    req.extend_from_slice(b"name=abcde");
    req
}

#[tokio::test]
async fn a_stalled_request_body_is_answered_408_at_the_body_read_timeout() {
    let server = start(Endpoint::new(Slow::new()).body_read_timeout(BODY_READ_TIMEOUT)).await;
    let mut conn = RawConn::connect(server.local_addr()).await.unwrap();
    let sent = Instant::now();
    let resp = conn.send_reading_early(&stalled_post()).await.unwrap();
    let waited = sent.elapsed();
    assert_eq!(resp.status, 408, "{}", resp.text());
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(waited >= BODY_READ_TIMEOUT - EARLY, "answered after {waited:?}");
    assert!(waited < BODY_READ_TIMEOUT * 4, "answered only after {waited:?}");
    conn.closed_within(DEADLINE).await.expect("the connection is closed after the 408");
    // A body that keeps coming, if slowly, is read in full.
    let mut conn = RawConn::connect(server.local_addr()).await.unwrap();
    let head = b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 12\r\n\r\n";
    conn.send(head).await.unwrap();
    for piece in [&b"name="[..], b"abc", b"defg"] {
        tokio::time::sleep(BODY_READ_TIMEOUT / 2).await;
        conn.send(piece).await.unwrap();
    }
    let resp = conn.read_response().await.unwrap();
    assert_eq!((resp.status, resp.text().as_str()), (200, "abcdefg"));
}

#[tokio::test]
async fn stalled_bodies_do_not_hold_the_connection_limit() {
    // One stalled body in each slot, and a timeout long past the test.
    let server = start(
        Endpoint::new(Slow::new()).max_connections(3).body_read_timeout(Duration::from_secs(60)),
    )
    .await;
    let mut stalled = Vec::new();
    for _ in 0..3 {
        let mut conn = RawConn::connect(server.local_addr()).await.unwrap();
        conn.send(&stalled_post()).await.unwrap();
        stalled.push(conn);
    }
    // New clients are served, each taking the slot of the body that has waited longest (the
    // newcomers stay open, so each needs a slot made for it).
    tokio::time::sleep(EVICTABLE_AFTER).await;
    let mut newcomers = Vec::new();
    for i in 0..3 {
        let mut conn = RawConn::connect(server.local_addr()).await.unwrap();
        let resp = within(DEADLINE, "a newcomer's answer", conn.get("/hello")).await.unwrap();
        assert_eq!(resp.status, 200, "newcomer {i}: {}", resp.text());
        newcomers.push(conn);
    }
    for mut conn in stalled {
        conn.closed_within(DEADLINE).await.expect("a stalled connection is closed");
    }
}

#[tokio::test]
async fn a_silent_connection_is_cut_at_the_header_read_timeout() {
    let server = start(endpoint()).await;
    let opened = Instant::now();
    let mut conn = RawConn::connect(server.local_addr()).await.unwrap();
    conn.closed_within(DEADLINE).await.expect("the silent connection is closed");
    let waited = opened.elapsed();
    assert!(waited >= HEADER_READ_TIMEOUT - EARLY, "cut after {waited:?}");
    assert!(waited < HEADER_READ_TIMEOUT * 4, "cut only after {waited:?}");
}

#[tokio::test]
async fn a_slow_reader_of_a_large_answer_is_not_cut_at_the_header_read_timeout() {
    let server = start(endpoint()).await;
    let mut conn = RawConn::connect(server.local_addr()).await.unwrap();
    conn.send(&tests::request_bytes("GET", "/big", &[], b"")).await.unwrap();
    // The client reads nothing for twice the allowance: the server is left waiting on it
    // with most of the answer unsent, which is not a client late with its next request.
    tokio::time::sleep(HEADER_READ_TIMEOUT * 2).await;
    let resp = conn.read_response().await.expect("the whole answer");
    assert_eq!((resp.status, resp.body.len()), (200, BIG));
    // The connection is still good for the next request, and the allowance for it runs
    // from the end of the answer.
    assert_eq!(conn.get("/hello").await.unwrap().status, 200);
    let stalled_at = stall(&mut conn).await;
    assert_cut_at_the_timeout(&mut conn, stalled_at).await;
}

#[tokio::test]
async fn a_client_that_stops_reading_a_large_answer_is_cut_at_the_send_timeout() {
    const SEND_TIMEOUT: Duration = Duration::from_millis(800);
    let server = start(endpoint().send_timeout(SEND_TIMEOUT)).await;
    let mut conn = RawConn::connect(server.local_addr()).await.unwrap();
    let asked_at = Instant::now();
    conn.send(&tests::request_bytes("GET", "/big", &[], b"")).await.unwrap();
    // Reads nothing until the server has given up on it.
    tokio::time::sleep(SEND_TIMEOUT * 4).await;
    let said = conn.closed_within(DEADLINE).await.expect("the connection is closed");
    assert!(said.len() < BIG, "the whole answer was sent: {} bytes", said.len());
    assert!(asked_at.elapsed() >= SEND_TIMEOUT - EARLY);
    // A reader that is slow but keeps reading was not cut (see the test above), and the
    // endpoint still serves.
    let mut other = RawConn::connect(server.local_addr()).await.unwrap();
    assert_eq!(other.get("/hello").await.unwrap().status, 200);
    // Nor is a slow reader cut: reading in small sips with pauses shorter than the timeout.
    let mut sipper = RawConn::connect(server.local_addr()).await.unwrap();
    sipper.send(&tests::request_bytes("GET", "/big", &[], b"")).await.unwrap();
    tokio::time::sleep(SEND_TIMEOUT / 2).await;
    let resp = sipper.read_response().await.expect("the whole answer");
    assert_eq!((resp.status, resp.body.len()), (200, BIG));
}

#[tokio::test]
async fn large_answers_waiting_for_their_clients_hold_no_more_than_the_endpoints_budget() {
    // Room for one large answer and a half.
    let server = start(endpoint().max_unsent_body_bytes(BIG + BIG / 2)).await;
    let mut first = RawConn::connect(server.local_addr()).await.unwrap();
    first.send(&tests::request_bytes("GET", "/big", &[], b"")).await.unwrap();
    // The first client reads nothing; a second's large answer does not fit beside its own:
    // 503, to retry, and none of the second answer is held.
    // `/big` on a new connection until it answers `status`.
    let addr = server.local_addr();
    let big_answering = |status: u16, what: &'static str| {
        within(DEADLINE, what, async move {
            loop {
                let mut conn = RawConn::connect(addr).await.unwrap();
                let resp = conn.get("/big").await.unwrap();
                if resp.status == status {
                    return resp;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let busy = big_answering(503, "a 503 for the second large answer").await;
    assert_eq!(busy.header("retry-after"), Some("5"));
    assert!(String::from_utf8_lossy(&busy.body).contains("answers wait"), "{busy:?}");
    // Small answers are not counted: they are served meanwhile.
    let mut other = RawConn::connect(server.local_addr()).await.unwrap();
    assert_eq!(other.get("/hello").await.unwrap().status, 200);
    // Once the first client has read its answer, its bytes are given back.
    let resp = first.read_response().await.expect("the whole answer");
    assert_eq!((resp.status, resp.body.len()), (200, BIG));
    let resp = big_answering(200, "the budget given back").await;
    assert_eq!(resp.body.len(), BIG);
}

#[tokio::test]
async fn bodies_still_coming_hold_no_more_than_the_endpoints_budget() {
    const BUDGET: usize = 64 * 1024;
    let server = start(endpoint().max_buffered_body_bytes(BUDGET)).await;
    // A body announced at 200 KB, of which 60 KB come, then nothing.
    let mut trickler = RawConn::connect(server.local_addr()).await.unwrap();
    let head = "POST /echo HTTP/1.1\r\nhost: 127.0.0.1\r\n\
                content-type: application/x-www-form-urlencoded\r\ncontent-length: 200000\r\n\r\n";
    trickler.send(head.as_bytes()).await.unwrap();
    trickler.send(format!("name={}", "x".repeat(60_000)).as_bytes()).await.unwrap();
    // Another client's 10 KB body does not fit beside it: 503, to retry.
    let client = http1_client();
    let url = format!("{}/echo", server.url());
    let post = || async {
        client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("name={}", "y".repeat(10_000)))
            .send()
            .await
            .unwrap()
    };
    let refused =
        tests::eventually_async(DEADLINE, "a body past the budget to be refused", || async {
            post().await.status() == 503
        });
    refused.await;
    let resp = post().await;
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    // Once the trickler is gone, its bytes are given back.
    drop(trickler);
    tests::eventually_async(DEADLINE, "the budget to be free again", || async {
        post().await.status() == 200
    })
    .await;
}

#[tokio::test]
async fn an_answer_streamed_for_longer_than_the_allowance_is_sent_whole() {
    let server = start(endpoint().idle_timeout(IDLE_TIMEOUT)).await;
    let mut conn = RawConn::connect(server.local_addr()).await.unwrap();
    let started = Instant::now();
    let resp = conn.get("/trickle").await.expect("the whole stream");
    assert!(started.elapsed() > IDLE_TIMEOUT, "streamed in {:?}", started.elapsed());
    assert_eq!(resp.text(), "0;1;2;3;4;5;");
    // Kept alive: the stream counted as a request in flight until its last chunk.
    assert_eq!(resp.header("connection"), None);
    assert_eq!(conn.get("/hello").await.unwrap().status, 200);
    let stalled_at = stall(&mut conn).await;
    assert_cut_at_the_timeout(&mut conn, stalled_at).await;
}

#[tokio::test]
async fn a_stalled_head_is_cut_at_its_timeout_while_the_endpoint_drains() {
    let server = start(endpoint().shutdown_timeout(Duration::from_secs(30))).await;
    // The connection's first head: hyper, asked to shut down gracefully, would wait for it.
    let mut conn = RawConn::connect(server.local_addr()).await.unwrap();
    let stalled_at = stall(&mut conn).await;
    tokio::time::sleep(HEADER_READ_TIMEOUT / 5).await;
    server.shutdown();
    // The drain does not wait for the head to be finished: the endpoint stops well inside
    // its shutdown timeout.
    within(DEADLINE, "the endpoint to stop", server.wait()).await.unwrap();
    conn.closed_within(DEADLINE).await.expect("the stalled head is cut");
    assert!(stalled_at.elapsed() < HEADER_READ_TIMEOUT * 4, "cut after {:?}", stalled_at.elapsed());
}
