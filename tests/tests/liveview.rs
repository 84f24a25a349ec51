//! LiveView over a real endpoint, the client's part played by hand: the page's HTTP render,
//! the join and its full render, events answered with diffs of the changed dynamics only,
//! patches, and what a stranger can send (a forged or foreign token, no CSRF token, unknown
//! events, a malformed form, a view that panics).

use fawkes::live::{html, LiveSocket, LiveView, Rendered};
use fawkes::security::{
    fetch_session, protect_from_forgery, FetchSession, SecretKeyBase, SessionConfig,
};
use fawkes::Endpoint;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Map, Value};
use tests::{http1_client, start, within, DEADLINE};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

fn key_base() -> SecretKeyBase {
    SecretKeyBase::new(vec![3; 64]).expect("64 bytes is long enough")
}

fn session() -> FetchSession {
    fetch_session(SessionConfig::from_endpoint().cookie_name("_live_test"))
}

/// A counter whose step comes from the URL, with an event that panics.
struct Counter {
    count: i64,
    step: i64,
    form: String,
}

impl LiveView for Counter {
    type Info = ();

    async fn mount(_params: &Map<String, Value>, _socket: &mut LiveSocket) -> Self {
        Counter { count: 0, step: 1, form: String::new() }
    }

    async fn handle_params(&mut self, params: &Map<String, Value>, _: &str, _: &mut LiveSocket) {
        self.step =
            params.get("step").and_then(Value::as_str).and_then(|s| s.parse().ok()).unwrap_or(1);
    }

    async fn handle_event(&mut self, event: &str, value: Value, socket: &mut LiveSocket) {
        match event {
            "inc" => self.count += self.step,
            "boom" => panic!("a view that panics"),
            "to_five" => socket.push_patch("/counter?step=5"),
            "ping" => socket.push_event("pong", json!({"n": 1})),
            "save" => self.form = value["user"]["name"].as_str().unwrap_or("?").to_owned(),
            "flash" => socket.put_flash("info", "Saved <b>"),
            "leave" => {
                socket.put_flash("info", "Bye");
                socket.push_navigate("/feed");
            }
            "away" => {
                socket.put_flash("error", "Gone");
                socket.redirect("/elsewhere");
            }
            _ => {}
        }
    }

    fn render(&self) -> Rendered {
        let (count, step, form) = (self.count, self.step, &self.form);
        html!("<p id=\"count\">{count}</p><p id=\"step\">{step}</p><p id=\"form\">{form}</p><button phx-click=\"inc\">+</button>")
    }
}

/// Shows the last broadcast on `feed` and the last tick its own handle sent.
struct Feed {
    last: String,
    ticks: u32,
}

impl LiveView for Feed {
    type Info = u32;

    async fn mount(_: &Map<String, Value>, socket: &mut LiveSocket) -> Self {
        socket.subscribe("feed");
        if let Some(handle) = socket.handle::<u32>() {
            // A task of the view's, sending it a message later.
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                let _ = handle.send(7);
            });
        }
        Feed { last: String::new(), ticks: 0 }
    }

    async fn handle_event(&mut self, _: &str, _: Value, _: &mut LiveSocket) {}

    async fn handle_info(&mut self, info: fawkes::live::Info<u32>, socket: &mut LiveSocket) {
        match info {
            fawkes::live::Info::Broadcast(b) => {
                self.last = b.payload().as_json().map(ToString::to_string).unwrap_or_default();
                if self.last.contains("leave") {
                    socket.push_navigate("/counter");
                }
            }
            fawkes::live::Info::Message(n) => self.ticks = n,
        }
    }

    fn render(&self) -> Rendered {
        let (last, ticks) = (&self.last, self.ticks);
        html!("<p id=\"last\">{last}</p><p id=\"ticks\">{ticks}</p>")
    }
}

fawkes::router! {
    /// The counter as a live page, behind a session and CSRF protection.
    pub LiveApp;
    pipeline browser { plug session(); plug protect_from_forgery(); }
    socket "/live" => fawkes::live::socket((), session()).view::<Counter>("/counter").view::<Feed>("/feed");
    scope "/" {
        pipe_through browser;
        get "/counter" => fawkes::live::page::<Counter, ()>;
        get "/feed" => fawkes::live::page::<Feed, ()>;
    }
}

/// What a browser keeps from the page: its cookie, the CSRF token, the container's id and
/// session token.
struct Page {
    cookie: String,
    csrf: String,
    id: String,
    session: String,
    html: String,
}

fn attribute<'a>(html: &'a str, before: &str) -> &'a str {
    let start = html.find(before).unwrap_or_else(|| panic!("no {before} in {html}")) + before.len();
    let end = html[start..].find('"').expect("a closing quote") + start;
    &html[start..end]
}

async fn page(addr: std::net::SocketAddr, path: &str) -> Page {
    page_in(addr, path, None).await
}

/// A page rendered in the session of `cookie` (a second tab), or in a new one.
async fn page_in(addr: std::net::SocketAddr, path: &str, cookie: Option<&str>) -> Page {
    let mut req = http1_client().get(format!("http://{addr}{path}")).header("accept", "text/html");
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let session_cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|set| set.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|set| set.starts_with("_live_test="));
    let cookie = match session_cookie {
        Some(set) => set,
        None => cookie.expect("a new session sets its cookie").to_owned(),
    };
    let html = resp.text().await.unwrap();
    Page {
        csrf: attribute(&html, "<meta name=\"csrf-token\" content=\"").to_owned(),
        id: attribute(&html, "<div id=\"").to_owned(),
        session: attribute(&html, "data-phx-session=\"").to_owned(),
        cookie,
        html,
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(addr: std::net::SocketAddr, cookie: &str) -> Ws {
    let mut req = format!("ws://{addr}/live/websocket?vsn=2.0.0").into_client_request().unwrap();
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    let (ws, _) =
        within(DEADLINE, "the live socket", tokio_tungstenite::connect_async(req)).await.unwrap();
    ws
}

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string())).await.unwrap();
}

/// The next reply to `msg_ref`, as `(status, response, raw frame length)`.
async fn reply(ws: &mut Ws, msg_ref: &str) -> (String, Value, usize) {
    loop {
        let msg = within(DEADLINE, "a reply", ws.next()).await.expect("open").expect("a frame");
        let Message::Text(text) = msg else { continue };
        let frame: Value = serde_json::from_str(&text).unwrap();
        if frame[3] == "phx_reply" && frame[1] == msg_ref {
            let status = frame[4]["status"].as_str().unwrap().to_owned();
            return (status, frame[4]["response"].clone(), text.len());
        }
    }
}

fn join_frame(page: &Page, csrf: &str, session: &str, url: &str) -> Value {
    json!(["1", "1", format!("lv:{}", page.id), "phx_join", {
        "url": url,
        "params": {"_csrf_token": csrf, "_mounts": 0},
        "session": session,
        "static": "",
    }])
}

async fn server() -> fawkes::endpoint::RunningEndpoint {
    start(Endpoint::new(LiveApp::new()).secret_key_base(key_base())).await
}

#[tokio::test]
async fn a_live_page_renders_joins_and_answers_events_with_diffs() {
    let server = server().await;
    let addr = server.local_addr();
    let page = page(addr, "/counter?step=2").await;
    assert!(page.html.contains("<p id=\"count\">0</p><p id=\"step\">2</p>"), "{}", page.html);
    assert!(page.id.starts_with("phx-"));

    let mut ws = connect(addr, &page.cookie).await;
    let url = format!("http://{addr}/counter?step=2");
    send(&mut ws, join_frame(&page, &page.csrf, &page.session, &url)).await;
    let (status, joined, _) = reply(&mut ws, "1").await;
    assert_eq!(status, "ok", "{joined}");
    assert_eq!(joined["liveview_version"], fawkes::live::LIVEVIEW_VERSION);
    let rendered = &joined["rendered"];
    assert_eq!(rendered["0"], "0");
    assert_eq!(rendered["1"], "2");
    // The view's three dynamics, then the flash (empty): its four statics and one more.
    assert_eq!(rendered["s"].as_array().unwrap().len(), 5);
    assert_eq!(rendered["3"]["0"], json!({"s": [""]}));

    // A click: the reply carries the one dynamic that changed, a few bytes.
    let topic = format!("lv:{}", page.id);
    send(&mut ws, json!(["1", "2", topic, "event", {"type": "click", "event": "inc", "value": {"value": ""}}])).await;
    let (status, response, bytes) = reply(&mut ws, "2").await;
    assert_eq!((status.as_str(), &response), ("ok", &json!({"diff": {"0": "2"}})));
    assert!(bytes < 100, "{bytes} bytes for a click");

    // An event that changes nothing is answered with nothing to apply.
    send(
        &mut ws,
        json!(["1", "3", topic, "event", {"type": "click", "event": "nothing", "value": {}}]),
    )
    .await;
    assert_eq!(reply(&mut ws, "3").await.1, json!({}));

    // A patch link: handle_params runs, the step changes.
    send(
        &mut ws,
        json!(["1", "4", topic, "live_patch", {"url": format!("http://{addr}/counter?step=7")}]),
    )
    .await;
    assert_eq!(reply(&mut ws, "4").await.1, json!({"diff": {"1": "7"}}));

    // A patch the view asks for: the client is told where to go, with the diff of that URL.
    send(
        &mut ws,
        json!(["1", "5", topic, "event", {"type": "click", "event": "to_five", "value": {}}]),
    )
    .await;
    assert_eq!(
        reply(&mut ws, "5").await.1,
        json!({"live_patch": {"to": "/counter?step=5", "kind": "push"}, "diff": {"1": "5"}})
    );

    // An event for hooks rides in the diff.
    send(
        &mut ws,
        json!(["1", "6", topic, "event", {"type": "click", "event": "ping", "value": {}}]),
    )
    .await;
    assert_eq!(reply(&mut ws, "6").await.1, json!({"diff": {"e": [["pong", {"n": 1}]]}}));

    // A form's fields arrive urlencoded with nested brackets, and reach the view decoded.
    let form = "user%5Bname%5D=Ada%20%3Cb%3E&user%5B_unused_email%5D=&user%5Bemail%5D=";
    send(&mut ws, json!(["1", "7", topic, "event", {"type": "form", "event": "save", "value": form, "meta": {"_target": "user[name]"}}])).await;
    assert_eq!(reply(&mut ws, "7").await.1, json!({"diff": {"2": "Ada &lt;b&gt;"}}));
    server.shutdown();
}

#[tokio::test]
async fn a_join_without_the_pages_tokens_is_refused_as_the_client_expects() {
    let server = server().await;
    let addr = server.local_addr();
    let page = page(addr, "/counter").await;
    let url = format!("http://{addr}/counter");
    let refused = |reason: &str| ("error".to_owned(), json!({"reason": reason}));

    // No CSRF token, or one of another session: unauthorized (the client reloads the page).
    let other = self::page(addr, "/counter").await;
    for csrf in ["", "not-a-token", other.csrf.as_str()] {
        let mut ws = connect(addr, &page.cookie).await;
        send(&mut ws, join_frame(&page, csrf, &page.session, &url)).await;
        let (status, response, _) = reply(&mut ws, "1").await;
        assert_eq!((status, response), refused("unauthorized"), "csrf {csrf:?}");
    }
    // A socket without the session cookie cannot use the page's token either.
    let mut ws = connect(addr, "_live_test=garbage").await;
    send(&mut ws, join_frame(&page, &page.csrf, &page.session, &url)).await;
    assert_eq!(reply(&mut ws, "1").await.0, "error");

    // A forged or altered session token, or another page's (its id is not this topic's).
    let mut forged = page.session.clone();
    forged.push('x');
    for session in [forged.as_str(), "SFMyNTY.e30.x", other.session.as_str()] {
        let mut ws = connect(addr, &page.cookie).await;
        send(&mut ws, join_frame(&page, &page.csrf, session, &url)).await;
        let (status, response, _) = reply(&mut ws, "1").await;
        assert_eq!((status, response), refused("unauthorized"), "session {session:?}");
    }
    // Another session's page on its own topic, joined with this session's cookie and CSRF
    // token: a page token is bound to the session it was rendered for.
    let mut ws = connect(addr, &page.cookie).await;
    send(&mut ws, join_frame(&other, &page.csrf, &other.session, &url)).await;
    assert_eq!(reply(&mut ws, "1").await.1, json!({"reason": "unauthorized"}));
    // The same page joined with its own session's cookie and token is fine.
    let mut ws = connect(addr, &other.cookie).await;
    send(&mut ws, join_frame(&other, &other.csrf, &other.session, &url)).await;
    assert_eq!(reply(&mut ws, "1").await.0, "ok");

    // A token signed with another secret.
    let foreign = fawkes::security::Token::sign(
        &SecretKeyBase::new(vec![9; 64]).unwrap(),
        "fawkes live view session",
        &json!({"v": "x", "id": page.id, "s": {}}),
    );
    let mut ws = connect(addr, &page.cookie).await;
    send(&mut ws, join_frame(&page, &page.csrf, &foreign, &url)).await;
    assert_eq!(reply(&mut ws, "1").await.1, json!({"reason": "unauthorized"}));
    // A payload that is not a join at all.
    send(&mut ws, json!(["2", "2", format!("lv:{}", page.id), "phx_join", [1, 2]])).await;
    assert_eq!(reply(&mut ws, "2").await.1, json!({"reason": "unauthorized"}));
    server.shutdown();
}

#[tokio::test]
async fn bad_events_get_error_replies_and_a_panicking_view_is_alone_in_falling() {
    let server = server().await;
    let addr = server.local_addr();
    let first = page(addr, "/counter").await;
    // A second tab of the same browser: the same session.
    let second = page_in(addr, "/counter", Some(&first.cookie)).await;
    let url = format!("http://{addr}/counter");
    let mut ws = connect(addr, &first.cookie).await;
    send(&mut ws, join_frame(&first, &first.csrf, &first.session, &url)).await;
    assert_eq!(reply(&mut ws, "1").await.0, "ok");
    // The second tab's page, on the same socket.
    let mut second_join = join_frame(&second, &first.csrf, &second.session, &url);
    second_join[0] = json!("9");
    second_join[1] = json!("9");
    send(&mut ws, second_join).await;
    assert_eq!(reply(&mut ws, "9").await.0, "ok");

    let topic = format!("lv:{}", first.id);
    for (msg_ref, event, payload) in [
        ("2", "unknown_protocol_event", json!({})),
        ("3", "event", json!({"type": "click"})),
        (
            "4",
            "event",
            json!({"type": "form", "event": "save", "value": "a[b]=1&a=2&".repeat(5000)}),
        ),
        ("5", "live_patch", json!({})),
    ] {
        send(&mut ws, json!(["1", msg_ref, topic, event, payload])).await;
        let (status, response, _) = reply(&mut ws, msg_ref).await;
        assert_eq!(status, "error", "{event} {payload}: {response}");
    }

    // A panic: the client gets phx_error for this view only.
    send(
        &mut ws,
        json!(["1", "6", topic, "event", {"type": "click", "event": "boom", "value": {}}]),
    )
    .await;
    let error = loop {
        let msg = within(DEADLINE, "phx_error", ws.next()).await.unwrap().unwrap();
        let Message::Text(text) = msg else { continue };
        let frame: Value = serde_json::from_str(&text).unwrap();
        if frame[3] == "phx_error" {
            break frame;
        }
    };
    assert_eq!(error[2], json!(topic));
    // The other view still answers.
    let other = format!("lv:{}", second.id);
    send(
        &mut ws,
        json!(["9", "7", other, "event", {"type": "click", "event": "inc", "value": {}}]),
    )
    .await;
    assert_eq!(reply(&mut ws, "7").await.1, json!({"diff": {"0": "1"}}));
    server.shutdown();
}

/// The next push of `event` from the server (not a reply), with its payload.
async fn pushed(ws: &mut Ws, event: &str) -> Value {
    loop {
        let msg = within(DEADLINE, event, ws.next()).await.expect("open").expect("a frame");
        let Message::Text(text) = msg else { continue };
        let frame: Value = serde_json::from_str(&text).unwrap();
        if frame[3] == event {
            return frame[4].clone();
        }
    }
}

#[tokio::test]
async fn broadcasts_and_the_views_own_messages_are_pushed_as_diffs() {
    let server = server().await;
    let addr = server.local_addr();
    let page = page(addr, "/feed").await;
    let mut ws = connect(addr, &page.cookie).await;
    send(&mut ws, join_frame(&page, &page.csrf, &page.session, &format!("http://{addr}/feed")))
        .await;
    assert_eq!(reply(&mut ws, "1").await.0, "ok");

    // The view's own handle: its message arrives, and the change is pushed.
    assert_eq!(pushed(&mut ws, "diff").await, json!({"1": "7"}));
    // A broadcast on a topic it subscribed to, from anywhere in the node.
    server.pubsub().broadcast("feed", "news", json!({"n": 1}));
    assert_eq!(pushed(&mut ws, "diff").await, json!({"0": "{&quot;n&quot;:1}"}));
    // A navigation asked from handle_info is pushed too.
    server.pubsub().broadcast("feed", "news", json!({"leave": true}));
    assert_eq!(pushed(&mut ws, "live_redirect").await, json!({"to": "/counter", "kind": "push"}));
    server.shutdown();
}

/// `(kind, message)` of each flash message in a rendered tree or diff, read from the HTML the
/// client would build.
fn flash_in(html: &str) -> Vec<(String, String)> {
    html.split("<p id=\"flash-")
        .skip(1)
        .map(|p| {
            let kind = p[..p.find('"').unwrap()].to_owned();
            let text = &p[p.find('>').unwrap() + 1..];
            (kind, text[..text.find("</p>").unwrap()].to_owned())
        })
        .collect()
}

#[tokio::test]
async fn the_flash_shows_clears_and_follows_a_navigation_or_a_page_load() {
    let server = server().await;
    let addr = server.local_addr();
    let page = page(addr, "/counter").await;
    assert!(flash_in(&page.html).is_empty());
    let url = format!("http://{addr}/counter");
    let mut ws = connect(addr, &page.cookie).await;
    send(&mut ws, join_frame(&page, &page.csrf, &page.session, &url)).await;
    assert_eq!(reply(&mut ws, "1").await.0, "ok");
    let topic = format!("lv:{}", page.id);
    let click = |msg_ref: &str, event: &str| json!(["1", msg_ref, topic, "event", {"type": "click", "event": event, "value": {}}]);

    // Put: the diff is the flash alone, past the view's own dynamics, its message escaped.
    send(&mut ws, click("2", "flash")).await;
    let diff = reply(&mut ws, "2").await.1["diff"].clone();
    assert_eq!(diff.as_object().unwrap().keys().collect::<Vec<_>>(), ["3"], "{diff}");
    assert!(diff.to_string().contains("Saved &lt;b&gt;"), "{diff}");
    assert!(diff.to_string().contains("lv:clear-flash"), "{diff}");

    // The client's `lv:clear-flash` of the kind clears it, without the view.
    send(
        &mut ws,
        json!(["1", "3", topic, "event", {"type": "click", "event": "lv:clear-flash", "value": {"key": "info"}}]),
    )
    .await;
    let diff = reply(&mut ws, "3").await.1["diff"].clone();
    assert_eq!(diff, json!({"3": {"0": {"s": [""]}}}));

    // A flash put before a live navigation goes with it, signed, and shows on the next view.
    send(&mut ws, click("4", "leave")).await;
    let response = reply(&mut ws, "4").await.1;
    let to = &response["live_redirect"];
    assert_eq!((&to["to"], &to["kind"]), (&json!("/feed"), &json!("push")), "{response}");
    assert!(!response.to_string().contains("Bye"), "the flash is put on this page: {response}");
    let flash = to["flash"].as_str().expect("a flash token").to_owned();
    let navigate = |msg_ref: &str, flash: &str| {
        json!(["2", msg_ref, topic, "phx_join", {
            "redirect": format!("http://{addr}/feed"),
            "params": {"_csrf_token": page.csrf, "_mounts": 0},
            "session": page.session, "static": "", "flash": flash,
        }])
    };
    send(&mut ws, json!(["1", "5", topic, "phx_leave", {}])).await;
    let _ = reply(&mut ws, "5").await;
    send(&mut ws, navigate("6", &flash)).await;
    let (status, joined, _) = reply(&mut ws, "6").await;
    assert_eq!(status, "ok", "{joined}");
    // The feed's two dynamics, then the flash.
    assert!(joined["rendered"]["2"].to_string().contains("Bye"), "{joined}");
    // An altered flash token is dropped, not an error.
    send(&mut ws, json!(["2", "7", topic, "phx_leave", {}])).await;
    let _ = reply(&mut ws, "7").await;
    send(&mut ws, navigate("8", &format!("{flash}x"))).await;
    let (status, joined, _) = reply(&mut ws, "8").await;
    assert_eq!(status, "ok", "{joined}");
    assert!(!joined.to_string().contains("Bye"), "{joined}");

    // A full page load: the client keeps the token in the `__phoenix_flash__` cookie for the
    // next page, which shows the flash once and removes the cookie.
    let page = self::page(addr, "/counter").await;
    let mut ws = connect(addr, &page.cookie).await;
    send(&mut ws, join_frame(&page, &page.csrf, &page.session, &url)).await;
    assert_eq!(reply(&mut ws, "1").await.0, "ok");
    let topic = format!("lv:{}", page.id);
    send(
        &mut ws,
        json!(["1", "2", topic, "event", {"type": "click", "event": "away", "value": {}}]),
    )
    .await;
    let redirect = reply(&mut ws, "2").await.1["redirect"].clone();
    assert_eq!(redirect["to"], "/elsewhere");
    let token = redirect["flash"].as_str().expect("a flash token");
    let cookie = format!("{}; __phoenix_flash__={token}", page.cookie);
    let resp = http1_client()
        .get(format!("http://{addr}/counter"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let removal = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("__phoenix_flash__="));
    assert!(removal.as_deref().is_some_and(|v| v.contains("Max-Age=0")), "{removal:?}");
    let html = resp.text().await.unwrap();
    assert_eq!(flash_in(&html), [("error".to_owned(), "Gone".to_owned())]);
    // The page's first join shows what its HTTP render showed.
    let shown = Page {
        csrf: attribute(&html, "<meta name=\"csrf-token\" content=\"").to_owned(),
        id: attribute(&html, "<div id=\"").to_owned(),
        session: attribute(&html, "data-phx-session=\"").to_owned(),
        cookie: page.cookie.clone(),
        html: html.clone(),
    };
    let mut ws = connect(addr, &shown.cookie).await;
    send(&mut ws, join_frame(&shown, &shown.csrf, &shown.session, &url)).await;
    let (status, joined, _) = reply(&mut ws, "1").await;
    assert_eq!(status, "ok", "{joined}");
    assert!(joined["rendered"]["3"].to_string().contains("Gone"), "{joined}");
    // A forged cookie shows nothing.
    let resp = http1_client()
        .get(format!("http://{addr}/counter"))
        .header("cookie", format!("{}; __phoenix_flash__=SFMyNTY.e30.x", page.cookie))
        .send()
        .await
        .unwrap();
    assert!(flash_in(&resp.text().await.unwrap()).is_empty());
    server.shutdown();
}
