//! A panicking action is a 500 for its own request and nothing more: the connection it came
//! on, the requests beside it and the endpoint's supervisor carry on.

use fawkes::{Conn, Endpoint};
use serde_json::json;
use tests::{http1_client, http2_client, start, within, RawConn, DEADLINE};

async fn boom(_conn: Conn) -> Conn {
    panic!("boom")
}

async fn ok(conn: Conn) -> Conn {
    conn.text("ok")
}

fawkes::router! {
    /// One route that always panics, one that never does.
    pub Panicky;
    scope "/" {
        get "/boom" => boom;
        get "/ok" => ok;
    }
}

fn internal_error() -> serde_json::Value {
    json!({ "errors": { "detail": "Internal Server Error" } })
}

#[tokio::test]
async fn a_panic_is_a_500_and_the_connection_serves_the_next_request() {
    let server = start(Endpoint::new(Panicky::new())).await;
    let mut conn = RawConn::connect(server.local_addr()).await.unwrap();

    let resp = conn.get("/boom").await.unwrap();
    assert_eq!(resp.status, 500);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_ne!(resp.header("connection"), Some("close"));
    assert_eq!(resp.json(), internal_error());

    // The same socket, still open, answers the next requests.
    let resp = conn.get("/ok").await.unwrap();
    assert_eq!((resp.status, resp.text().as_str()), (200, "ok"));
    let resp = conn.get("/boom").await.unwrap();
    assert_eq!(resp.status, 500);
    let resp = conn.get("/ok").await.unwrap();
    assert_eq!((resp.status, resp.text().as_str()), (200, "ok"));

    // The endpoint's own count: exact, whatever other tests do.
    assert_eq!(server.telemetry().snapshot().panics, 2);
    assert!(server.supervisor().is_running());
    assert!(server.is_ready());
    // The router caught the panic, so the connection child never failed.
    assert_eq!(server.supervisor().stats().panics, 0);
    assert_eq!(server.supervisor().stats().abnormal_exits, 0);

    server.shutdown();
    within(DEADLINE, "the endpoint to stop", server.wait()).await.unwrap();
}

#[tokio::test]
async fn concurrent_panics_do_not_disturb_concurrent_healthy_requests() {
    const EACH: usize = 50;
    let server = start(Endpoint::new(Panicky::new())).await;
    let client = http1_client();

    let requests = (0..EACH * 2).map(|i| {
        let client = client.clone();
        let path = if i % 2 == 0 { "/boom" } else { "/ok" };
        let url = format!("{}{path}", server.url());
        async move {
            let resp = client.get(url).send().await.expect("every request gets an answer");
            let status = resp.status().as_u16();
            (path, status, resp.bytes().await.unwrap())
        }
    });
    let results = within(DEADLINE, "all requests", futures_util::future::join_all(requests)).await;

    for (path, status, body) in results {
        match path {
            "/boom" => {
                assert_eq!(status, 500);
                assert_eq!(
                    serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
                    internal_error()
                );
            }
            _ => assert_eq!((status, &body[..]), (200, &b"ok"[..])),
        }
    }
    assert_eq!(server.telemetry().snapshot().panics, EACH as u64);
    assert!(server.supervisor().is_running());
    assert!(server.is_ready());

    // Still serving after the storm.
    let resp = client.get(format!("{}/ok", server.url())).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    server.shutdown();
    within(DEADLINE, "the endpoint to stop", server.wait()).await.unwrap();
}

#[tokio::test]
async fn a_panic_on_one_http2_stream_leaves_the_others_on_the_connection() {
    let server = start(Endpoint::new(Panicky::new())).await;
    let client = http2_client();
    let requests = (0..20).map(|i| {
        let path = if i % 2 == 0 { "/boom" } else { "/ok" };
        let request = client.get(format!("{}{path}", server.url())).send();
        async move { (path, request.await.expect("every stream gets an answer")) }
    });
    let results = within(DEADLINE, "all streams", futures_util::future::join_all(requests)).await;
    for (path, resp) in results {
        assert_eq!(resp.version(), http::Version::HTTP_2);
        let expected = if path == "/boom" { 500 } else { 200 };
        assert_eq!(resp.status(), expected, "{path}");
    }
    // One h2c connection carried every stream, and it is still up.
    assert_eq!(server.supervisor().stats().temporary_children, 1);
    let resp = client.get(format!("{}/ok", server.url())).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "ok");
}
