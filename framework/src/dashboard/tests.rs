//! The dashboard mounted behind a pipeline on a real endpoint, read over HTTP and its socket.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::{Conn, Endpoint};

/// The pipeline guarding the dashboard: a header stands in for an admin session.
async fn require_admin(conn: Conn) -> Conn {
    if conn.header("x-admin") == Some("yes") {
        conn
    } else {
        conn.send_resp(StatusCode::UNAUTHORIZED, "admins only").halt()
    }
}

async fn hello(conn: Conn) -> Conn {
    conn.text("hi")
}

crate::router! {
    pub DashboardRouter;
    pipeline admin {
        plug require_admin;
    }
    get "/hello" => hello;
    scope "/dev" {
        pipe_through admin;
        forward "/dashboard" => super::Dashboard::new();
    }
}

fn get(url: &str, admin: bool) -> reqwest::RequestBuilder {
    let request = reqwest::Client::new().get(url);
    if admin {
        request.header("x-admin", "yes")
    } else {
        request
    }
}

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next Phoenix message on `ws`, as `[join_ref, ref, topic, event, payload]`.
async fn recv(ws: &mut Client) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("a frame");
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

#[tokio::test]
async fn the_mounted_dashboard_serves_its_page_and_streams_samples_behind_the_pipeline() {
    let running = Endpoint::new(DashboardRouter::new()).bind("127.0.0.1:0").start().await.unwrap();
    let base = running.url();

    // The pipeline guards the page, its files and the socket alike.
    for path in ["/dev/dashboard", "/dev/dashboard/dashboard.js", "/dev/dashboard/client.js"] {
        let resp = get(&format!("{base}{path}"), false).send().await.unwrap();
        assert_eq!(resp.status(), 401, "{path}");
    }
    let url = format!("{}/dev/dashboard/socket/websocket?vsn=2.0.0", base.replace("http", "ws"));
    let refused = tokio_tungstenite::connect_async(url.as_str()).await;
    assert!(refused.is_err(), "the upgrade passes through the pipeline too");

    // The page names its files under the mount, with or without a trailing slash.
    for path in ["/dev/dashboard", "/dev/dashboard/"] {
        let resp = get(&format!("{base}{path}"), true).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
        let page = resp.text().await.unwrap();
        assert!(page.contains(r#"src="/dev/dashboard/dashboard.js""#), "{page}");
        assert!(page.contains(r#"href="/dev/dashboard/dashboard.css""#), "{page}");
    }
    for (path, kind, needle) in [
        ("dashboard.js", "text/javascript", "import { Socket } from \"./client.js\""),
        ("dashboard.css", "text/css", ".tiles"),
        ("client.js", "text/javascript", "export class Socket"),
        ("favicon.svg", "image/svg+xml", "<svg"),
    ] {
        let resp = get(&format!("{base}/dev/dashboard/{path}"), true).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with(kind), "{path}");
        assert!(resp.text().await.unwrap().contains(needle), "{path}");
    }
    // A file's tag revalidates it; HEAD says the length GET sends.
    let script = get(&format!("{base}/dev/dashboard/dashboard.js"), true).send().await.unwrap();
    let tag = script.headers()["etag"].clone();
    let length = script.bytes().await.unwrap().len();
    let again = get(&format!("{base}/dev/dashboard/dashboard.js"), true)
        .header("if-none-match", tag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let head = reqwest::Client::new()
        .head(format!("{base}/dev/dashboard/dashboard.js"))
        .header("x-admin", "yes")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], length.to_string().as_str());
    let missing = get(&format!("{base}/dev/dashboard/nothing"), true).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let post = reqwest::Client::new()
        .post(format!("{base}/dev/dashboard/"))
        .header("x-admin", "yes")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);

    // Some traffic for the samples to count.
    for _ in 0..20 {
        let resp = reqwest::get(format!("{base}/hello")).await.unwrap();
        assert_eq!(resp.status(), 200);
    }

    let page = get(&format!("{base}/dev/dashboard"), true).send().await.unwrap();
    let page = page.text().await.unwrap();
    let topic = page.split("data-topic=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("x-admin", "yes".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();

    // Another topic is not the dashboard's.
    ws.send(Message::text(json!(["1", "1", "room:lobby", "phx_join", {}]).to_string()))
        .await
        .unwrap();
    let refused = recv(&mut ws).await;
    assert_eq!(refused[4]["status"], "error", "{refused}");

    ws.send(Message::text(json!(["2", "2", topic, "phx_join", {}]).to_string())).await.unwrap();
    let joined = recv(&mut ws).await;
    assert_eq!(joined[4]["status"], "ok", "{joined}");
    let status = &joined[4]["response"]["status"];
    assert_eq!(status["node"], running.pubsub().node(), "{status}");
    assert_eq!(status["pubsub"]["adapter"], "local");
    assert_eq!(status["pubsub"]["connected"], true);
    assert_eq!(
        status["nodes"],
        json!([{"name": running.pubsub().node(), "presences": 0, "local": true}])
    );
    // The endpoint's supervisor runs the dashboard's worker and this socket's tasks.
    let tree = &status["supervisor"];
    let children: Vec<&str> =
        tree["children"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert!(children.iter().any(|id| id.starts_with("dashboard")), "{tree}");
    let temporaries: Vec<&str> = tree["temporaries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t[1].as_u64() > Some(0))
        .map(|t| t[0].as_str().unwrap())
        .collect();
    assert!(temporaries.contains(&"socket"), "{tree}");
    assert!(temporaries.contains(&"channel"), "{tree}");

    // The worker's next sample arrives within its interval, with the traffic counted.
    let message = loop {
        let message = recv(&mut ws).await;
        if message[3] == "sample" {
            break message;
        }
    };
    assert_eq!(message[2], topic.as_str());
    let sample = &message[4]["sample"];
    assert!(sample["requests"].as_u64().unwrap() >= 20, "{sample}");
    assert_eq!(sample["sockets"], 1, "{sample}");
    assert_eq!(sample["channels"], 1, "{sample}");
    assert!(sample["memory_mb"].as_f64().unwrap() > 0.0, "{sample}");
    assert!(message[4]["status"]["supervisor"]["children"].is_array());

    // A page opened now draws the samples so far at once.
    let (mut late, _) = tokio_tungstenite::connect_async({
        let mut request =
            format!("{}/dev/dashboard/socket/websocket?vsn=2.0.0", base.replace("http", "ws"))
                .into_client_request()
                .unwrap();
        request.headers_mut().insert("x-admin", "yes".parse().unwrap());
        request
    })
    .await
    .unwrap();
    late.send(Message::text(json!(["1", "1", topic, "phx_join", {}]).to_string())).await.unwrap();
    let joined = recv(&mut late).await;
    let history = joined[4]["response"]["history"].as_array().unwrap();
    assert!(!history.is_empty(), "{joined}");
    assert!(history.iter().any(|s| s["at_ms"] == sample["at_ms"]), "{joined}");

    running.shutdown();
}

/// Who the pipeline let in, as the named dashboard's pipeline assigns it.
#[derive(Clone)]
struct Admin(String);

async fn admin_by_name(conn: Conn) -> Conn {
    match conn.header("x-admin-name").map(str::to_owned) {
        Some(name) => conn.assign(Admin(name)),
        None => conn.send_resp(StatusCode::UNAUTHORIZED, "admins only").halt(),
    }
}

fn admin_socket(assigns: &crate::Assigns) -> Option<String> {
    assigns.get::<Admin>().map(|admin| format!("admins_socket:{}", admin.0))
}

fn named_dashboard() -> super::Dashboard {
    super::Dashboard::new().socket_id(admin_socket)
}

crate::router! {
    pub NamedDashboardRouter;
    pipeline admin {
        plug admin_by_name;
    }
    scope "/ops" {
        pipe_through admin;
        forward "/dashboard" => named_dashboard();
    }
}

/// A page of `admin`'s, joined to the dashboard's topic.
async fn open_page(base: &str, admin: &str) -> Client {
    let page = reqwest::Client::new()
        .get(format!("{base}/ops/dashboard"))
        .header("x-admin-name", admin)
        .send()
        .await
        .unwrap();
    let page = page.text().await.unwrap();
    let topic = page.split("data-topic=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let mut request =
        format!("{}/ops/dashboard/socket/websocket?vsn=2.0.0", base.replace("http", "ws"))
            .into_client_request()
            .unwrap();
    request.headers_mut().insert("x-admin-name", admin.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    ws.send(Message::text(json!(["1", "1", topic, "phx_join", {}]).to_string())).await.unwrap();
    let joined = recv(&mut ws).await;
    assert_eq!(joined[4]["status"], "ok", "{joined}");
    ws
}

#[tokio::test]
async fn a_disconnect_to_the_named_socket_closes_that_admins_pages_only() {
    let running =
        Endpoint::new(NamedDashboardRouter::new()).bind("127.0.0.1:0").start().await.unwrap();
    let base = running.url();
    let mut ada = open_page(&base, "ada").await;
    let mut grace = open_page(&base, "grace").await;

    // Ada logs out: her page closes.
    running.pubsub().broadcast("admins_socket:ada", "disconnect", json!({}));
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ada.next().await {
                None | Some(Err(_) | Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "ada's page is closed");

    // Grace's page goes on: its heartbeat is answered.
    grace
        .send(Message::text(json!([null, "9", "phoenix", "heartbeat", {}]).to_string()))
        .await
        .unwrap();
    let reply = loop {
        let message = recv(&mut grace).await;
        if message[1] == "9" {
            break message;
        }
    };
    assert_eq!(reply[4]["status"], "ok", "{reply}");
    running.shutdown();
}
