//! The example app's browser security over real HTTP and WebSocket: secure headers on the pages
//! and not on the API, the login form behind its CSRF check, the session cookie, and the user
//! token that opens the socket. The browser's part (keeping the cookie, reading the page's
//! tokens) is played by hand, so every step is visible.

mod in_process;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use example_app::channels::{
    sign_user_token, verify_user_token, USER_TOKEN_MAX_AGE, USER_TOKEN_SALT,
};
use example_app::router::SESSION_COOKIE;
use fawkes::endpoint::RunningEndpoint;
use fawkes::security::{SecretKeyBase, Token, TokenError};
use fawkes::Endpoint;
use futures_util::{SinkExt as _, StreamExt as _};
use hmac::{Hmac, Mac as _};
use reqwest::header::{HeaderMap, COOKIE, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use in_process::{test_db, TestDb};

/// The longest any one request, handshake or frame may take.
const DEADLINE: Duration = Duration::from_secs(10);

/// What `put_secure_browser_headers` sets, as Phoenix does.
const SECURE_HEADERS: [(&str, &str); 4] = [
    ("content-security-policy", "base-uri 'self'; frame-ancestors 'self';"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    ("x-content-type-options", "nosniff"),
    ("x-permitted-cross-domain-policies", "none"),
];

/// The salt `router::session_config` signs the session cookie with.
const SESSION_SALT: &str = "fawkes example session";

/// The app on a loopback port, with a secret key base the test knows.
struct App {
    server: RunningEndpoint,
    key_base: SecretKeyBase,
    client: reqwest::Client,
    _db: TestDb,
}

impl App {
    async fn start() -> Self {
        let db = test_db().await;
        let key_base = SecretKeyBase::generate();
        let app = example_app::app(&db.url, key_base.clone()).await.expect("the app starts");
        let server = Endpoint::new(app.router)
            // Live pages sign their tokens with it, as `main` sets it.
            .secret_key_base(key_base.clone())
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .start()
            .await
            .expect("the endpoint listens");
        // Redirects are what the tests look at, so they are not followed.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(DEADLINE)
            .build()
            .expect("client builds");
        Self { server, key_base, client, _db: db }
    }

    fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// A browser with no cookie yet.
    fn browser(&self) -> Browser<'_> {
        Browser { app: self, cookie: None }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Page {
        let resp = req.send().await.expect("the app answers");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.text().await.expect("a body");
        Page { status, headers, body }
    }
}

/// A response, read whole.
#[derive(Debug)]
struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().expect("an ASCII header"))
    }

    /// The `content` of `<meta name="{name}">`.
    fn meta(&self, name: &str) -> Option<String> {
        let start = format!(r#"<meta name="{name}" content=""#);
        let at = self.body.find(&start)? + start.len();
        let len = self.body[at..].find('"')?;
        Some(self.body[at..at + len].to_owned())
    }

    #[track_caller]
    fn csrf_token(&self) -> String {
        self.meta("csrf-token").unwrap_or_else(|| panic!("no csrf meta tag:\n{}", self.body))
    }

    /// The session cookie's `Set-Cookie`, if the response sets it.
    fn session_set_cookie(&self) -> Option<&str> {
        let prefix = format!("{SESSION_COOKIE}=");
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().expect("an ASCII cookie"))
            .find(|c| c.starts_with(&prefix))
    }

    #[track_caller]
    fn assert_secure_headers(&self) {
        for (name, value) in SECURE_HEADERS {
            assert_eq!(self.header(name), Some(value), "{name} on a {} page", self.status);
        }
    }
}

/// Keeps the session cookie between requests, as a browser would.
struct Browser<'a> {
    app: &'a App,
    cookie: Option<String>,
}

impl Browser<'_> {
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let url = format!("http://{}{path}", self.app.addr());
        let req = self.app.client.request(method, url).header("accept", "text/html");
        match &self.cookie {
            Some(cookie) => req.header(COOKIE, cookie),
            None => req,
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let page = self.app.send(req).await;
        if let Some(set) = page.session_set_cookie() {
            let pair = set.split(';').next().expect("name=value").to_owned();
            // A removal carries an empty value.
            let removed = pair.split_once('=').is_none_or(|(_, value)| value.is_empty());
            self.cookie = if removed { None } else { Some(pair) };
        }
        page
    }

    async fn get(&mut self, path: &str) -> Page {
        let req = self.request(Method::GET, path);
        self.send(req).await
    }

    async fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let req = self.request(Method::POST, path).form(form);
        self.send(req).await
    }

    /// Logs in through the form of the chat page, as a person would.
    async fn log_in(&mut self, name: &str) -> Page {
        let token = self.get("/").await.csrf_token();
        let page = self.post_form("/session", &[("name", name), ("_csrf_token", &token)]).await;
        assert_eq!(page.status, StatusCode::FOUND, "login as {name}: {}", page.body);
        self.get("/").await
    }
}

/// A token in Plug.Crypto.MessageVerifier's layout, signed at `signed_ms`: what `Token::sign`
/// makes, but at a time the test chooses.
fn sign_at(key_base: &SecretKeyBase, salt: &str, data: &Value, signed_ms: u64) -> String {
    let claims = json!({ "data": data, "signed": signed_ms });
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let protected = URL_SAFE_NO_PAD.encode("HS256");
    let mut mac = <Hmac<Sha256>>::new_from_slice(key_base.key_for(salt).as_bytes()).unwrap();
    mac.update(format!("{protected}.{payload}").as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{protected}.{payload}.{signature}")
}

fn now_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(since.as_millis()).unwrap()
}

fn other_key_base() -> SecretKeyBase {
    SecretKeyBase::generate()
}

#[tokio::test]
async fn the_chat_page_has_secure_headers_and_a_fresh_csrf_token_per_request() {
    let app = App::start().await;
    let mut browser = app.browser();
    let first = browser.get("/").await;
    assert_eq!(first.status, StatusCode::OK);
    first.assert_secure_headers();
    assert_eq!(first.header("content-type"), Some("text/html; charset=utf-8"));
    let cookie = first.session_set_cookie().expect("the CSRF secret is kept in the session");
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    for expected in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=1209600"] {
        assert!(attributes.contains(&expected), "{expected} missing from {cookie}");
    }
    assert!(!attributes.contains(&"Secure"), "plain HTTP gets no Secure attribute: {cookie}");

    // Same session, same secret, yet every page carries other bytes (BREACH).
    let tokens = vec![
        first.csrf_token(),
        browser.get("/").await.csrf_token(),
        browser.get("/").await.csrf_token(),
    ];
    for (i, token) in tokens.iter().enumerate() {
        assert_eq!(URL_SAFE_NO_PAD.decode(token).map(|b| b.len()), Ok(64), "{token}");
        assert!(tokens[i + 1..].iter().all(|other| other != token), "{tokens:?}");
    }
    // And every one of them passes the check: a blank name fails validation (422), after
    // the CSRF check let the request through.
    for token in &tokens {
        let page = browser.post_form("/session", &[("name", " "), ("_csrf_token", token)]).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", page.body);
    }
    // The form's hidden fields carry tokens too.
    assert!(first.body.contains(r#"<input type="hidden" name="_csrf_token" value=""#));
    assert_eq!(first.meta("user-token"), None, "anonymous visitors get no socket token");
    assert_eq!(first.meta("user-name"), None);
}

/// The framework's dashboard is for logged-in visitors: anyone else is sent to the login
/// form, for the page and its socket alike. Its page keeps the pipeline's secure headers,
/// with a stricter policy of its own.
#[tokio::test]
async fn the_dashboard_is_for_logged_in_visitors_only() {
    let app = App::start().await;
    let mut browser = app.browser();
    for path in ["/dev/dashboard", "/dev/dashboard/dashboard.js", "/dev/dashboard/socket/websocket"]
    {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::FOUND, "{path}");
        assert_eq!(page.header("location"), Some("/"), "{path}");
    }
    browser.log_in("Ops").await;
    let dashboard = browser.get("/dev/dashboard").await;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert!(dashboard.body.contains(r#"src="/dev/dashboard/dashboard.js""#), "{}", dashboard.body);
    for (name, value) in &SECURE_HEADERS[1..] {
        assert_eq!(dashboard.header(name), Some(*value), "{name}");
    }
    assert_eq!(
        dashboard.header("content-security-policy"),
        Some("default-src 'self'; frame-ancestors 'none'")
    );

    // Logging out closes the dashboards that login opened, and only those: another login
    // under the same name keeps its page.
    let mut other = app.browser();
    other.log_in("Ops").await;
    let other_page = other.get("/dev/dashboard").await;
    let mut mine = open_dashboard(&app, &browser, &dashboard).await;
    let mut theirs = open_dashboard(&app, &other, &other_page).await;
    let token = browser.get("/").await.csrf_token();
    let out = browser.post_form("/session/delete", &[("_csrf_token", &token)]).await;
    assert_eq!(out.status, StatusCode::FOUND, "{}", out.body);
    assert_closed(&mut mine).await;
    send(&mut theirs, json!([null, "7", "phoenix", "heartbeat", {}])).await;
    loop {
        let reply = recv(&mut theirs).await;
        if reply[1] == "7" {
            assert_eq!(reply[4]["status"], "ok", "{reply}");
            break;
        }
    }
    // A login over another ends the first one's dashboards too.
    let token = other.get("/").await.csrf_token();
    let again = other.post_form("/session", &[("name", "Ops"), ("_csrf_token", &token)]).await;
    assert_eq!(again.status, StatusCode::FOUND, "{}", again.body);
    assert_closed(&mut theirs).await;
}

/// Waits for the server to close `ws`.
async fn assert_closed(ws: &mut Ws) {
    let closed = tokio::time::timeout(DEADLINE, async {
        loop {
            match ws.next().await {
                None | Some(Err(_) | Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the socket is closed");
}

/// The dashboard's socket, opened with `browser`'s cookie and joined to the topic `page`
/// names.
async fn open_dashboard(app: &App, browser: &Browser<'_>, page: &Page) -> Ws {
    let topic = page.body.split("data-topic=\"").nth(1).expect("a topic").split('"').next();
    let url = format!("ws://{}/dev/dashboard/socket/websocket?vsn=2.0.0", app.addr());
    let mut req = url.into_client_request().expect("a websocket URL");
    let cookie = browser.cookie.clone().expect("logged in");
    req.headers_mut().insert(COOKIE, cookie.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("the dashboard's socket");
    send(&mut ws, json!(["1", "1", topic, "phx_join", {}])).await;
    let joined = recv(&mut ws).await;
    assert_eq!(joined[4]["status"], "ok", "{joined}");
    ws
}

#[tokio::test]
async fn the_json_api_gets_neither_browser_headers_nor_csrf_checks() {
    let app = App::start().await;
    let url = |path: &str| format!("http://{}{path}", app.addr());
    let list = app.send(app.client.get(url("/api/rooms")).header("accept", "application/json"));
    let list = list.await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    for (name, _) in SECURE_HEADERS {
        if name == "x-content-type-options" {
            // Not a page's header alone: a JSON answer must not be sniffed into a script.
            assert_eq!(list.header(name), Some("nosniff"));
            continue;
        }
        assert_eq!(list.header(name), None, "{name} on the API");
    }
    for asset in ["/assets/app.css", "/assets/chat.js"] {
        let resp = app.send(app.client.get(url(asset))).await;
        assert_eq!(resp.status, StatusCode::OK, "{asset}");
        assert_eq!(resp.header("x-content-type-options"), Some("nosniff"), "{asset}");
    }
    assert_eq!(list.session_set_cookie(), None, "the API keeps no session");

    // No CSRF token, no cookie: the API authenticates nothing by cookie, so there is nothing
    // to forge.
    let create = app.client.post(url("/api/rooms")).json(&json!({"room": {"name": "ops"}}));
    let created = app.send(create).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.header("content-security-policy"), None);
}

#[tokio::test]
async fn logging_in_needs_the_sessions_csrf_token() {
    let app = App::start().await;
    let mut browser = app.browser();
    let page = browser.get("/").await;
    let token = page.csrf_token();
    let mut stranger = app.browser();
    let strangers_token = stranger.get("/").await.csrf_token();

    let refused = [
        ("no token", vec![("name", "Ada")], "missing CSRF token"),
        ("garbage", vec![("name", "Ada"), ("_csrf_token", "garbage")], "invalid CSRF token"),
        (
            "another session's token",
            vec![("name", "Ada"), ("_csrf_token", strangers_token.as_str())],
            "invalid CSRF token",
        ),
        (
            "a truncated token",
            vec![("name", "Ada"), ("_csrf_token", &token[..token.len() - 2])],
            "invalid CSRF token",
        ),
    ];
    for (case, form, detail) in refused {
        let page = browser.post_form("/session", &form).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{case}: {}", page.body);
        assert!(page.body.contains(detail), "{case}: {}", page.body);
        assert_eq!(page.session_set_cookie(), None, "{case}: the session is untouched");
        page.assert_secure_headers();
    }
    // The session's own token, but without the session cookie: refused as well.
    let req = app
        .client
        .post(format!("http://{}/session", app.addr()))
        .form(&[("name", "Ada"), ("_csrf_token", token.as_str())]);
    assert_eq!(app.send(req).await.status, StatusCode::FORBIDDEN);

    let before = browser.cookie.clone();
    let login =
        browser.post_form("/session", &[("name", "  Ada  "), ("_csrf_token", &token)]).await;
    assert_eq!(login.status, StatusCode::FOUND, "{}", login.body);
    assert_eq!(login.header("location"), Some("/"));
    assert!(login.session_set_cookie().is_some(), "the login renews the session cookie");
    assert_ne!(browser.cookie, before, "a new cookie");
    // The CSRF secret was rotated: tokens handed out before the login are dead.
    let stale = browser.post_form("/session", &[("name", "Eve"), ("_csrf_token", &token)]).await;
    assert_eq!(stale.status, StatusCode::FORBIDDEN, "{}", stale.body);

    let home = browser.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert_eq!(home.meta("user-name").as_deref(), Some("Ada"), "trimmed and shown");
    let user_token = home.meta("user-token").expect("a logged-in page carries a user token");
    assert_eq!(verify_user_token(&app.key_base, &user_token), Ok("Ada".to_owned()));
    let day = Duration::from_secs(86_400);
    assert_eq!(
        Token::verify::<String>(&app.key_base, "another purpose", &user_token, day),
        Err(TokenError::Invalid),
        "the token is good for sockets only"
    );
    // Each page signs its own token, all for the same name.
    let again = browser.get("/").await.meta("user-token").expect("a token");
    assert_eq!(verify_user_token(&app.key_base, &again), Ok("Ada".to_owned()));
}

/// The fields of a form, in order.
type Form<'a> = Vec<(&'a str, &'a str)>;

#[tokio::test]
async fn bad_names_show_the_form_again_with_a_422() {
    let app = App::start().await;
    let mut browser = app.browser();
    let long = "x".repeat(41);
    let cases: [(&str, Form<'_>, &str); 5] = [
        ("blank", vec![("name", "   ")], "Please enter a name."),
        ("missing", vec![], "Please enter a name."),
        ("too long", vec![("name", &long)], "That name is too long"),
        ("control characters", vec![("name", "Ada\u{7}")], "cannot be shown"),
        ("not text", vec![("name[first]", "Ada")], "Your name must be text."),
    ];
    for (case, mut form, message) in cases {
        let token = browser.get("/").await.csrf_token();
        form.push(("_csrf_token", &token));
        let page = browser.post_form("/session", &form).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{case}: {}", page.body);
        assert!(page.body.contains(message), "{case}: no {message:?} in the page");
        assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"), "{case}");
        page.assert_secure_headers();
        assert_eq!(page.meta("user-name"), None, "{case}: not logged in");
        assert!(page.meta("csrf-token").is_some(), "{case}: the form can be sent again");
    }

    // Markup in a name is text, on the page and in the form.
    let name = r#"<img src=x onerror="alert(1)">"#;
    let home = browser.log_in(name).await;
    assert!(!home.body.contains("<img src=x"), "the name is escaped:\n{}", home.body);
    assert!(home.body.contains("&#60;img src=x onerror=&#34;alert(1)&#34;&#62;"));
    let token = home.meta("user-token").expect("a token");
    assert_eq!(verify_user_token(&app.key_base, &token).as_deref(), Ok(name));
}

#[tokio::test]
async fn logging_out_drops_the_session() {
    let app = App::start().await;
    for (case, method, path) in
        [("form", Method::POST, "/session/delete"), ("script", Method::DELETE, "/session")]
    {
        let mut browser = app.browser();
        let home = browser.log_in("Grace").await;
        let token = home.csrf_token();
        let kept = browser.cookie.clone().expect("logged in");

        let without = browser.request(method.clone(), path);
        assert_eq!(browser.send(without).await.status, StatusCode::FORBIDDEN, "{case}");

        let req = browser.request(method, path);
        let req = match case {
            "form" => req.form(&[("_csrf_token", token.as_str())]),
            _ => req.header("x-csrf-token", token.as_str()),
        };
        let out = browser.send(req).await;
        assert_eq!(out.status, StatusCode::FOUND, "{case}: {}", out.body);
        assert_eq!(out.header("location"), Some("/"), "{case}");
        let removal = out.session_set_cookie().expect("the cookie is deleted");
        assert!(removal.contains("Max-Age=0"), "{case}: {removal}");
        assert_eq!(browser.cookie, None, "{case}");

        let after = browser.get("/").await;
        assert_eq!(after.meta("user-name"), None, "{case}: logged out");
        assert_eq!(after.meta("user-token"), None, "{case}");
        // The cookie is only a copy of the session; one kept from before still reads (the
        // session is stateless), which is why logins expire with `SESSION_MAX_AGE`.
        browser.cookie = Some(kept);
        assert_eq!(browser.get("/").await.meta("user-name").as_deref(), Some("Grace"));
    }
}

#[tokio::test]
async fn a_tampered_or_foreign_session_cookie_is_an_anonymous_visit() {
    let app = App::start().await;
    let mut browser = app.browser();
    browser.log_in("Ada").await;
    let genuine = browser.cookie.clone().expect("logged in");
    let (name, value) = genuine.split_once('=').unwrap();
    let mut parts: Vec<String> = value.split('.').map(str::to_owned).collect();
    // A change to the payload itself: another name, well-formed base64url.
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    assert_eq!(claims["data"]["user_name"], "Ada", "the forgery starts from a real session");
    let mut forged = claims.clone();
    forged["data"]["user_name"] = json!("Eve");
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
    let altered = format!("{name}={}", parts.join("."));

    let data = json!({ "user_name": "Eve" });
    let now = now_ms();
    // The forging below is right: with the app's own key it does log Eve in.
    let rightly_signed = format!("{name}={}", sign_at(&app.key_base, SESSION_SALT, &data, now));
    let mut check = app.browser();
    check.cookie = Some(rightly_signed);
    assert_eq!(check.get("/").await.meta("user-name").as_deref(), Some("Eve"));

    let cases = [
        ("altered payload", altered),
        ("truncated", genuine[..genuine.len() - 5].to_owned()),
        ("garbage", format!("{name}=not-a-session")),
        ("another key", format!("{name}={}", sign_at(&other_key_base(), SESSION_SALT, &data, now))),
        ("another salt", format!("{name}={}", sign_at(&app.key_base, "other", &data, now))),
        (
            "older than the max age",
            format!(
                "{name}={}",
                sign_at(&app.key_base, SESSION_SALT, &data, now - 15 * 86_400_000)
            ),
        ),
    ];
    for (case, cookie) in cases {
        let mut visitor = app.browser();
        visitor.cookie = Some(cookie);
        let page = visitor.get("/").await;
        assert_eq!(page.status, StatusCode::OK, "{case}: {}", page.body);
        assert_eq!(page.meta("user-name"), None, "{case}: anonymous");
        assert_eq!(page.meta("user-token"), None, "{case}");
        // The page works: a fresh session with a fresh CSRF secret.
        let token = page.csrf_token();
        let login =
            visitor.post_form("/session", &[("name", "Bob"), ("_csrf_token", &token)]).await;
        assert_eq!(login.status, StatusCode::FOUND, "{case}");
    }
}

// ---- the socket ------------------------------------------------------------------------------

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens `/socket/websocket` with `query` (serializer 2.0.0 added), offering `auth_token` as
/// the `authToken` subprotocol when given: the socket, or the status that refused it.
async fn open(addr: SocketAddr, query: &str, auth_token: Option<&str>) -> Result<Ws, u16> {
    let url = format!("ws://{addr}/socket/websocket?vsn=2.0.0&{query}");
    let mut req = url.into_client_request().expect("a websocket URL");
    if let Some(token) = auth_token {
        let protocols = format!("phoenix, base64url.bearer.phx.{}", URL_SAFE_NO_PAD.encode(token));
        req.headers_mut().insert("sec-websocket-protocol", protocols.parse().unwrap());
    }
    let handshake = tokio_tungstenite::connect_async(req);
    match tokio::time::timeout(DEADLINE, handshake).await.expect("the handshake ends in time") {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(resp)) => Err(resp.status().as_u16()),
        Err(err) => panic!("the handshake failed without an HTTP answer: {err:?}"),
    }
}

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string())).await.expect("the frame is sent");
}

/// The next text frame, as JSON.
async fn recv(ws: &mut Ws) -> Value {
    loop {
        let frame = tokio::time::timeout(DEADLINE, ws.next()).await.expect("a frame in time");
        match frame.expect("the socket is open").expect("a frame") {
            Message::Text(text) => return serde_json::from_str(&text).expect("a JSON frame"),
            Message::Close(close) => panic!("the server closed the socket: {close:?}"),
            _ => {}
        }
    }
}

/// Joins `room:lobby`, posts `body` claiming `author`, and returns the author the broadcast
/// carries.
async fn post_in_lobby(ws: &mut Ws, author: &str, body: &str) -> String {
    send(ws, json!(["1", "1", "room:lobby", "phx_join", {}])).await;
    let joined = recv(ws).await;
    assert_eq!(
        joined,
        json!(["1", "1", "room:lobby", "phx_reply", {"status": "ok", "response": {}}])
    );
    send(ws, json!(["1", "2", "room:lobby", "new_msg", {"author": author, "body": body}])).await;
    let (mut replied, mut broadcast) = (false, None);
    while !replied || broadcast.is_none() {
        let frame = recv(ws).await;
        match frame[3].as_str() {
            Some("phx_reply") => {
                assert_eq!(frame[4], json!({"status": "ok", "response": {}}), "{frame}");
                replied = true;
            }
            Some("new_msg") => {
                assert_eq!(frame[4]["body"], body, "{frame}");
                broadcast = frame[4]["author"].as_str().map(str::to_owned);
            }
            // Who is online: the room's presence list and its changes.
            Some("presence_state" | "presence_diff") => {}
            _ => panic!("unexpected frame {frame}"),
        }
    }
    broadcast.expect("an author")
}

/// Percent-encodes a query value, so nothing in it is read as a separator.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn a_bad_or_expired_user_token_refuses_the_socket() {
    let app = App::start().await;
    let addr = app.addr();
    let now = now_ms();
    let expired_at = now - u64::try_from(USER_TOKEN_MAX_AGE.as_millis()).unwrap() - 60_000;
    let expired = sign_at(&app.key_base, USER_TOKEN_SALT, &json!("Ada"), expired_at);
    // The forged tokens are genuine but for their age: the same layout, timed now, verifies.
    let fresh = sign_at(&app.key_base, USER_TOKEN_SALT, &json!("Ada"), now);
    assert_eq!(verify_user_token(&app.key_base, &fresh), Ok("Ada".to_owned()));
    assert_eq!(verify_user_token(&app.key_base, &expired), Err(TokenError::Expired));

    let good = sign_user_token(&app.key_base, "Ada");
    let mut altered = good.clone();
    altered.insert(good.find('.').unwrap() + 3, 'A');
    let bad_tokens = [
        ("garbage", "not-a-token".to_owned()),
        ("altered", altered),
        ("truncated", good[..good.len() - 3].to_owned()),
        ("another key", sign_user_token(&other_key_base(), "Ada")),
        ("another salt", Token::sign(&app.key_base, "password reset", "Ada")),
        ("not a name", Token::sign(&app.key_base, USER_TOKEN_SALT, &42)),
        ("expired", expired),
    ];
    for (case, token) in &bad_tokens {
        let query = format!("token={}&user=Ada", encode(token));
        assert_eq!(open(addr, &query, None).await.err(), Some(403), "{case} in the params");
        assert_eq!(open(addr, "", Some(token)).await.err(), Some(403), "{case} as authToken");
        // A good token beside a bad one does not rescue it.
        assert_eq!(
            open(addr, &format!("token={}", encode(&good)), Some(token)).await.err(),
            Some(403),
            "{case} beside a good one"
        );
    }
    let lp = format!("http://{addr}/socket/longpoll?vsn=2.0.0&token=not-a-token");
    let lp = app.send(app.client.get(lp)).await;
    // LongPoll answers every poll with 200 and the status in the body, as Phoenix does.
    let lp: Value = serde_json::from_str(&lp.body).expect("a JSON answer");
    assert_eq!(lp["status"], 403, "LongPoll refuses it too: {lp}");
    // A token that is not text is refused rather than ignored.
    assert_eq!(open(addr, "token[a]=b", None).await.err(), Some(403));
    // Two good tokens must name the same user.
    let other = sign_user_token(&app.key_base, "Grace");
    let query = format!("token={}", encode(&good));
    assert_eq!(open(addr, &query, Some(&other)).await.err(), Some(403), "two users");
}

#[tokio::test]
async fn a_claimed_name_longer_than_a_login_name_refuses_the_socket() {
    let app = App::start().await;
    let addr = app.addr();
    // Every member of a room receives every name in the room's presence list.
    assert_eq!(open(addr, &format!("user={}", "x".repeat(41)), None).await.err(), Some(403));
    assert_eq!(open(addr, &format!("user={}", "x".repeat(60_000)), None).await.err(), Some(403));
    assert!(open(addr, &format!("user={}", "x".repeat(40)), None).await.is_ok());
}

#[tokio::test]
async fn the_pages_user_token_opens_the_socket_as_its_user() {
    let app = App::start().await;
    let addr = app.addr();
    let mut browser = app.browser();
    let home = browser.log_in("Ada").await;
    let token = home.meta("user-token").expect("a user token");

    // The token's name, not the `user` param nor the payload's author, is who posts.
    let query = format!("token={}&user=Mallory", encode(&token));
    let mut ws = open(addr, &query, None).await.expect("a good token connects");
    assert_eq!(post_in_lobby(&mut ws, "Mallory", "hello from the page").await, "Ada");

    let mut ws = open(addr, "user=Mallory", Some(&token)).await.expect("as authToken too");
    assert_eq!(post_in_lobby(&mut ws, "Mallory", "hello again").await, "Ada");

    let same = format!("token={}", encode(&token));
    let mut ws = open(addr, &same, Some(&token)).await.expect("both ways at once");
    assert_eq!(post_in_lobby(&mut ws, "Ada", "and once more").await, "Ada");
}

#[tokio::test]
async fn anonymous_sockets_still_join_the_lobby() {
    let app = App::start().await;
    let addr = app.addr();
    let mut named = open(addr, "user=guest", None).await.expect("a user param connects");
    assert_eq!(post_in_lobby(&mut named, "guest", "hi all").await, "guest");
    // An empty token is no claim at all.
    let mut nobody = open(addr, "token=", None).await.expect("no token connects");
    assert_eq!(post_in_lobby(&mut nobody, "someone", "hello").await, "someone");
}

// ---- per-client limits ---------------------------------------------------------------------

/// Opens the live socket from the loopback address `from` with the browser's cookie: the
/// socket, or the status that refused it.
async fn open_live(addr: SocketAddr, from: [u8; 4], cookie: &str) -> Result<Ws, u16> {
    open_from(addr, from, "/live/websocket", Some(cookie)).await
}

/// Opens the WebSocket at `path` (serializer 2.0.0) from the loopback address `from`, with
/// `cookie` when given: the socket, or the status that refused it.
async fn open_from(
    addr: SocketAddr,
    from: [u8; 4],
    path: &str,
    cookie: Option<&str>,
) -> Result<Ws, u16> {
    let tcp = tokio::net::TcpSocket::new_v4().expect("a socket");
    tcp.bind(SocketAddr::from((from, 0))).expect("a loopback source address");
    let stream = tcp.connect(addr).await.expect("the app accepts");
    let mut req = format!("ws://{addr}{path}?vsn=2.0.0").into_client_request().expect("a URL");
    if let Some(cookie) = cookie {
        req.headers_mut().insert(COOKIE, cookie.parse().unwrap());
    }
    let handshake = tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(stream));
    match tokio::time::timeout(DEADLINE, handshake).await.expect("the handshake ends in time") {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(resp)) => Err(resp.status().as_u16()),
        Err(err) => panic!("the handshake failed without an HTTP answer: {err:?}"),
    }
}

/// Joins the live page `page` (rendered at `path`) on `ws`: the reply's status and response.
async fn join_live(ws: &mut Ws, addr: SocketAddr, path: &str, page: &Page) -> (String, Value) {
    let attribute = |before: &str| {
        let at = page.body.find(before).unwrap_or_else(|| panic!("no {before}")) + before.len();
        page.body[at..at + page.body[at..].find('"').unwrap()].to_owned()
    };
    let (topic, session) = (joined_topic(page), attribute("data-phx-session=\""));
    let join = json!(["1", "1", topic, "phx_join", {
        "url": format!("http://{addr}{path}"),
        "params": {"_csrf_token": page.csrf_token(), "_mounts": 0},
        "session": session,
        "static": "",
    }]);
    send(ws, join).await;
    loop {
        let frame = recv(ws).await;
        if frame[3] == "phx_reply" && frame[2] == topic {
            let status = frame[4]["status"].as_str().unwrap().to_owned();
            return (status, frame[4]["response"].clone());
        }
    }
}

#[tokio::test]
async fn one_client_cannot_take_every_live_view() {
    use example_app::router::{MAX_LIVE_VIEWS, MAX_LIVE_VIEWS_PER_CLIENT};
    const { assert!(MAX_LIVE_VIEWS_PER_CLIENT < MAX_LIVE_VIEWS) };
    let app = App::start().await;
    let addr = app.addr();
    let mut hog = app.browser();
    let page = hog.get("/live/counter").await;
    let cookie = hog.cookie.clone().unwrap_or_else(|| panic!("a session: {page:?}"));

    // One client: its sockets and views, up to its share.
    let mut held = Vec::new();
    for _ in 0..MAX_LIVE_VIEWS_PER_CLIENT {
        let mut ws = open_live(addr, [127, 0, 0, 1], &cookie).await.expect("under the limit");
        assert_eq!(join_live(&mut ws, addr, "/live/counter", &page).await.0, "ok");
        held.push(ws);
    }
    assert_eq!(open_live(addr, [127, 0, 0, 1], &cookie).await.err(), Some(429));
    // More pages on a socket it holds: its views are counted over all its sockets.
    let more = hog.get("/live/counter").await;
    let (status, response) = join_live(&mut held[0], addr, "/live/counter", &more).await;
    assert_eq!(
        (status.as_str(), response),
        ("error", json!({"reason": "too many channels for this client"}))
    );

    // Another client still gets in.
    let mut other = app.browser();
    let page = other.get("/live/counter").await;
    let cookie = other.cookie.clone().expect("a session");
    let mut ws = open_live(addr, [127, 0, 0, 2], &cookie).await.expect("another client");
    assert_eq!(join_live(&mut ws, addr, "/live/counter", &page).await.0, "ok");
}

#[tokio::test]
async fn one_clients_writes_are_limited_over_the_api_and_the_live_form_together() {
    use example_app::router::API_WRITES;
    let app = App::start().await;
    let addr = app.addr();
    let from = std::net::IpAddr::from([127, 0, 0, 3]);
    let client = reqwest::Client::builder().no_proxy().local_address(from).build().unwrap();
    let create = |n: u32| {
        client
            .post(format!("http://{addr}/api/rooms"))
            .json(&json!({"room": {"name": format!("burst-{n}")}}))
            .send()
    };
    for n in 0..API_WRITES {
        assert_eq!(create(n).await.unwrap().status(), StatusCode::CREATED, "write {n}");
    }
    // The budget refills a write every 1/API_WRITES of its period: on a loaded machine one may
    // have come back meanwhile, and goes with the next write.
    let drained = |first: u32| async move {
        for n in first..first + 3 {
            let resp = create(n).await.unwrap();
            if resp.status() == StatusCode::TOO_MANY_REQUESTS {
                return resp;
            }
        }
        panic!("the budget of {API_WRITES} writes did not run out");
    };
    let refused = drained(API_WRITES).await;
    assert!(refused.headers().contains_key("retry-after"));
    // Reads are free.
    let listed = client.get(format!("http://{addr}/api/rooms")).send().await.unwrap();
    assert_eq!(listed.status(), StatusCode::OK);

    // The live rooms form of the same client shares the limit.
    let mut browser = app.browser();
    let page = browser.get("/live/rooms").await;
    let cookie = browser.cookie.clone().expect("a session");
    let mut ws = open_live(addr, [127, 0, 0, 3], &cookie).await.expect("a live socket");
    let (status, joined) = join_live(&mut ws, addr, "/live/rooms", &page).await;
    assert_eq!(status, "ok", "{joined}");
    let topic = joined_topic(&page);
    let save = json!(["1", "2", topic, "event", {"type": "form", "event": "save", "value": "room%5Bname%5D=one-more"}]);
    // Whatever refilled while the page loaded goes first.
    drained(2 * API_WRITES).await;
    send(&mut ws, save).await;
    let reply = reply_to(&mut ws, "2").await;
    let text = reply[4].to_string();
    assert!(text.contains("too many rooms saved"), "{text}");
    // Another client saves from the form at once.
    let mut other = app.browser();
    let page = other.get("/live/rooms").await;
    let cookie = other.cookie.clone().expect("a session");
    let mut ws = open_live(addr, [127, 0, 0, 4], &cookie).await.expect("a live socket");
    assert_eq!(join_live(&mut ws, addr, "/live/rooms", &page).await.0, "ok");
    let save = json!(["1", "2", joined_topic(&page), "event", {"type": "form", "event": "save", "value": "room%5Bname%5D=other"}]);
    send(&mut ws, save).await;
    let reply = reply_to(&mut ws, "2").await;
    assert!(!reply[4].to_string().contains("too many"), "{reply}");
    assert!(reply[4].to_string().contains("Room other created."), "{reply}");
}

/// Reads frames on `ws` until the reply to `msg_ref`, and returns it; what comes before it
/// (broadcasts, presence) is skipped.
async fn reply_to(ws: &mut Ws, msg_ref: &str) -> Value {
    loop {
        let frame = recv(ws).await;
        if frame[3] == "phx_reply" && frame[1] == msg_ref {
            return frame;
        }
    }
}

/// Posts one message in `topic` on `ws` with ref `n`: the reply's payload.
async fn post(ws: &mut Ws, topic: &str, n: u32) -> Value {
    let msg_ref = n.to_string();
    send(ws, json!(["1", msg_ref, topic, "new_msg", {"author": "ada", "body": format!("m{n}")}]))
        .await;
    reply_to(ws, &msg_ref).await[4].clone()
}

/// Posts messages `m0`, `m1`… in `topic` on `ws` until one is refused: how many were
/// accepted, and the refusal. The budget is `budget`; it refills one every `1/budget` of its
/// period, so a loaded machine may pass up to `slack` more.
async fn post_until_refused(ws: &mut Ws, topic: &str, budget: u32, slack: u32) -> (u32, Value) {
    let mut accepted = 0;
    let refused = loop {
        let reply = post(ws, topic, accepted).await;
        if reply["status"] == "error" {
            break reply;
        }
        assert_eq!(reply, json!({"status": "ok", "response": {}}));
        accepted += 1;
        assert!(accepted <= budget + slack, "the budget of {budget} did not run out");
    };
    assert!(accepted >= budget, "refused after {accepted}: {refused}");
    assert!(refused["response"]["retry_after"].as_u64().is_some_and(|s| s >= 1), "{refused}");
    (accepted, refused)
}

/// Joins `topic` on `ws`, expecting the ok reply.
async fn join(ws: &mut Ws, topic: &str) {
    send(ws, json!(["1", "j", topic, "phx_join", {}])).await;
    let joined = reply_to(ws, "j").await;
    assert_eq!(joined[4]["status"], "ok", "{joined}");
}

#[tokio::test]
async fn messages_stored_over_a_channel_spend_the_same_writes_as_the_api() {
    use example_app::router::API_WRITES;
    let app = App::start().await;
    let addr = app.addr();
    let client = |from: [u8; 4]| {
        reqwest::Client::builder()
            .no_proxy()
            .local_address(std::net::IpAddr::from(from))
            .build()
            .unwrap()
    };
    let created = client([127, 0, 0, 6])
        .post(format!("http://{addr}/api/rooms"))
        .json(&json!({"room": {"name": "busy"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.json::<Value>().await.unwrap()["data"]["id"].clone();
    let topic = format!("room:{id}");
    let mut ws = open_from(addr, [127, 0, 0, 5], "/socket/websocket", None).await.unwrap();
    join(&mut ws, &topic).await;
    let (stored, refused) = post_until_refused(&mut ws, &topic, API_WRITES, 3).await;
    assert_eq!(refused["response"]["reason"], "too many writes", "{refused}");
    // The API shares the budget: the same client's next write is refused there too.
    let api = client([127, 0, 0, 5])
        .post(format!("http://{addr}/api/rooms/{id}/messages"))
        .json(&json!({"message": {"author": "ada", "body": "over the API"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::TOO_MANY_REQUESTS);
    // The lobby keeps nothing, so it costs no write.
    let mut lobby = open_from(addr, [127, 0, 0, 5], "/socket/websocket", None).await.unwrap();
    assert_eq!(post_in_lobby(&mut lobby, "ada", "still here").await, "ada");
    // Another client posts in the room at once.
    let mut other = open_from(addr, [127, 0, 0, 7], "/socket/websocket", None).await.unwrap();
    join(&mut other, &topic).await;
    assert_eq!(post(&mut other, &topic, 0).await, json!({"status": "ok", "response": {}}));
    // Only what was accepted is stored: the refused message is not in the room.
    let listed = client([127, 0, 0, 8])
        .get(format!("http://{addr}/api/rooms/{id}/messages"))
        .send()
        .await
        .unwrap();
    let listed = listed.json::<Value>().await.unwrap();
    let bodies: Vec<&str> =
        listed["data"].as_array().unwrap().iter().filter_map(|m| m["body"].as_str()).collect();
    assert_eq!(bodies.len(), stored as usize + 1, "{listed}");
    assert!(!bodies.contains(&format!("m{stored}").as_str()), "{listed}");
}

#[tokio::test]
async fn one_client_posts_a_bounded_number_of_chat_messages_even_in_the_lobby() {
    use example_app::router::CHAT_MESSAGES;
    let app = App::start().await;
    let addr = app.addr();
    // Another client in the lobby sees what is broadcast.
    let mut other = open_from(addr, [127, 0, 0, 10], "/socket/websocket", None).await.unwrap();
    join(&mut other, "room:lobby").await;
    let mut ws = open_from(addr, [127, 0, 0, 9], "/socket/websocket", None).await.unwrap();
    join(&mut ws, "room:lobby").await;
    // Invalid messages are refused before they spend anything.
    for n in 0..5 {
        let msg_ref = format!("blank-{n}");
        send(
            &mut ws,
            json!(["1", msg_ref, "room:lobby", "new_msg", {"author": "ada", "body": " "}]),
        )
        .await;
        let reply = reply_to(&mut ws, &msg_ref).await;
        assert_eq!(reply[4]["response"]["errors"]["body"], json!(["can't be blank"]), "{reply}");
    }
    let (sent, refused) = post_until_refused(&mut ws, "room:lobby", CHAT_MESSAGES, 6).await;
    assert_eq!(refused["response"]["reason"], "too many messages", "{refused}");
    // The other client got every accepted message and not the refused one: by the reply to
    // its heartbeat, the broadcasts made before it have arrived.
    send(&mut other, json!([null, "hb", "phoenix", "heartbeat", {}])).await;
    let mut bodies = Vec::new();
    loop {
        let frame = recv(&mut other).await;
        if frame[3] == "new_msg" {
            bodies.push(frame[4]["body"].as_str().unwrap().to_owned());
        }
        if frame[1] == "hb" {
            break;
        }
    }
    let accepted: Vec<String> = (0..sent).map(|n| format!("m{n}")).collect();
    assert_eq!(bodies, accepted);
    // And it posts at once.
    assert_eq!(post(&mut other, "room:lobby", 0).await, json!({"status": "ok", "response": {}}));
}

/// The topic of the live page `page`.
fn joined_topic(page: &Page) -> String {
    let before = "<div id=\"";
    let at = page.body.find(before).expect("a container") + before.len();
    format!("lv:{}", &page.body[at..at + page.body[at..].find('"').unwrap()])
}
