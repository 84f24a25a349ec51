//! Sessions, CSRF protection and secure headers through a real endpoint, the browser's part
//! (keeping and sending back the cookie) played by hand.

use fawkes::security::{
    fetch_session, get_csrf_token, protect_from_forgery, put_secure_browser_headers, SecretKeyBase,
    SessionConfig, SessionExt,
};
use fawkes::{Conn, Endpoint};
use http::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{Client, Response};
use tests::{http1_client, start, within, DEADLINE};

fn key_base(byte: u8) -> SecretKeyBase {
    SecretKeyBase::new(vec![byte; 64]).expect("64 bytes is long enough")
}

async fn counter(conn: Conn) -> Conn {
    let count = conn.get_session::<u32>("count").unwrap_or(0) + 1;
    conn.put_session("count", &count).text(count.to_string())
}

async fn peek(conn: Conn) -> Conn {
    let count = conn.get_session::<u32>("count").unwrap_or(0);
    conn.text(count.to_string())
}

async fn big(conn: Conn) -> Conn {
    conn.put_session("blob", &"x".repeat(5000)).text("too big to keep")
}

async fn form(mut conn: Conn) -> Conn {
    let token = get_csrf_token(&mut conn);
    conn.text(token)
}

async fn create(conn: Conn) -> Conn {
    conn.put_status(StatusCode::CREATED).text("created")
}

async fn api_status(conn: Conn) -> Conn {
    conn.json(&serde_json::json!({"ok": true}))
}

fawkes::router! {
    /// A browser app with every protection on, and an API beside it with none.
    pub Browser;
    pipeline browser {
        plug fetch_session(SessionConfig::new(key_base(1)));
        plug protect_from_forgery();
        plug put_secure_browser_headers();
    }
    pipeline api { plug fawkes::plug::accepts(["json"]); }
    scope "/" {
        pipe_through browser;
        get "/counter" => counter;
        get "/peek" => peek;
        get "/big" => big;
        get "/form" => form;
        post "/items" => create;
        put "/items/:id" => create;
        patch "/items/:id" => create;
        delete "/items/:id" => create;
    }
    scope "/api" {
        pipe_through api;
        get "/status" => api_status;
        post "/items" => create;
    }
}

fawkes::router! {
    /// The same session cookie name under another secret.
    pub Foreign;
    pipeline browser { plug fetch_session(SessionConfig::new(key_base(2))); }
    scope "/" { pipe_through browser; get "/counter" => counter; }
}

struct Site {
    _server: fawkes::endpoint::RunningEndpoint,
    base: String,
    client: Client,
}

impl Site {
    async fn start(router: impl Into<fawkes::Router>) -> Self {
        let server = start(Endpoint::new(router.into())).await;
        Self { base: server.url(), _server: server, client: http1_client() }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Response {
        within(DEADLINE, "a response", req.send()).await.expect("request succeeds")
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Response {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(cookie) = cookie {
            req = req.header(COOKIE, cookie);
        }
        self.send(req).await
    }

    /// An unsafe request with an optional cookie, `x-csrf-token` header and form body.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        cookie: Option<&str>,
        header: Option<&str>,
        form: Option<&str>,
    ) -> Response {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(cookie) = cookie {
            req = req.header(COOKIE, cookie);
        }
        if let Some(token) = header {
            req = req.header("x-csrf-token", token);
        }
        if let Some(body) = form {
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.to_owned());
        }
        self.send(req).await
    }
}

fn set_cookies(resp: &Response) -> Vec<String> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("ascii cookie").to_owned())
        .collect()
}

/// The `name=value` a browser would send back for the response's one session cookie.
fn cookie_of(resp: &Response) -> String {
    let cookies = set_cookies(resp);
    assert_eq!(cookies.len(), 1, "one session cookie expected: {cookies:?}");
    cookies[0].split(';').next().expect("a name=value pair").to_owned()
}

/// `text` with its first character changed, which always changes the first decoded byte.
fn flip_first(text: &str) -> String {
    let replacement = if text.starts_with('A') { "B" } else { "A" };
    format!("{replacement}{}", &text[1..])
}

async fn text(resp: Response) -> String {
    within(DEADLINE, "a body", resp.text()).await.expect("body reads")
}

#[tokio::test]
async fn the_session_survives_across_requests() {
    let site = Site::start(Browser::new()).await;
    let first = site.get("/counter", None).await;
    let mut cookie = cookie_of(&first);
    assert!(cookie.starts_with("_fawkes_key="), "{cookie}");
    let attrs = &set_cookies(&first)[0];
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(attrs.contains(attr), "{attr} missing from {attrs}");
    }
    assert!(!attrs.contains("Secure"), "plain http gets no Secure: {attrs}");
    assert_eq!(text(first).await, "1");
    for expected in ["2", "3"] {
        let resp = site.get("/counter", Some(&cookie)).await;
        cookie = cookie_of(&resp);
        assert_eq!(text(resp).await, expected);
    }
    // Reading does not rewrite the cookie.
    let resp = site.get("/peek", Some(&cookie)).await;
    assert!(set_cookies(&resp).is_empty());
    assert_eq!(text(resp).await, "3");
}

#[tokio::test]
async fn a_bad_cookie_is_an_empty_session() {
    let site = Site::start(Browser::new()).await;
    let foreign = Site::start(Foreign::new()).await;
    let first = cookie_of(&site.get("/counter", None).await);
    let cookie = cookie_of(&site.get("/counter", Some(&first)).await);
    let (name, value) = cookie.split_once('=').expect("name=value");
    let (head, signature) = value.rsplit_once('.').expect("a signed value");
    let (first_head, _) = first.rsplit_once('.').expect("a signed value");
    let foreign_cookie = cookie_of(&foreign.get("/counter", None).await);
    let cases = [
        // The first cookie's payload under the second's signature.
        ("spliced", format!("{first_head}.{signature}")),
        ("tampered signature", format!("{name}={head}.{}", flip_first(signature))),
        ("truncated", cookie[..cookie.len() - 10].to_owned()),
        ("foreign key", foreign_cookie),
        ("garbage", format!("{name}=garbage")),
    ];
    for (case, bad) in cases {
        let resp = site.get("/counter", Some(&bad)).await;
        assert_eq!(resp.status(), 200, "{case}");
        assert_eq!(text(resp).await, "1", "{case}: the session starts over");
    }
    // The genuine cookie still works afterwards.
    assert_eq!(text(site.get("/counter", Some(&cookie)).await).await, "3");
}

#[tokio::test]
async fn the_cookie_is_secure_behind_an_https_proxy() {
    let site = Site::start(Browser::new()).await;
    let req =
        site.client.get(format!("{}/counter", site.base)).header("x-forwarded-proto", "https");
    let resp = site.send(req).await;
    let attrs = set_cookies(&resp).join("; ");
    assert!(attrs.contains("; Secure"), "{attrs}");
}

#[tokio::test]
async fn an_oversized_session_is_a_500_without_a_cookie() {
    let site = Site::start(Browser::new()).await;
    let resp = site.get("/big", None).await;
    assert_eq!(resp.status(), 500);
    assert!(set_cookies(&resp).is_empty());
    assert!(text(resp).await.contains("4096"));
}

#[tokio::test]
async fn unsafe_requests_need_the_csrf_token() {
    let site = Site::start(Browser::new()).await;
    let page = site.get("/form", None).await;
    let cookie = cookie_of(&page);
    let token = text(page).await;
    let post = reqwest::Method::POST;

    let missing = site.call(post.clone(), "/items", Some(&cookie), None, None).await;
    assert_eq!(missing.status(), 403);
    let body: serde_json::Value = serde_json::from_str(&text(missing).await).expect("json");
    assert_eq!(body["errors"]["detail"], "missing CSRF token");

    let invalid = site.call(post.clone(), "/items", Some(&cookie), Some("bogus"), None).await;
    assert_eq!(invalid.status(), 403);
    assert!(text(invalid).await.contains("invalid CSRF token"));

    let no_session = site.call(post.clone(), "/items", None, Some(&token), None).await;
    assert_eq!(no_session.status(), 403, "a token is worth nothing without its session");

    let field = format!("name=x&_csrf_token={token}");
    let by_form = site.call(post.clone(), "/items", Some(&cookie), None, Some(&field)).await;
    assert_eq!(by_form.status(), 201);
    assert_eq!(text(by_form).await, "created");

    for method in [post, reqwest::Method::PUT, reqwest::Method::PATCH, reqwest::Method::DELETE] {
        let path = if method == reqwest::Method::POST { "/items" } else { "/items/1" };
        let refused = site.call(method.clone(), path, Some(&cookie), None, None).await;
        assert_eq!(refused.status(), 403, "{method} without a token");
        let by_header = site.call(method.clone(), path, Some(&cookie), Some(&token), None).await;
        assert_eq!(by_header.status(), 201, "{method} with the header");
    }
}

#[tokio::test]
async fn csrf_tokens_differ_on_every_page_and_all_verify() {
    let site = Site::start(Browser::new()).await;
    let first = site.get("/form", None).await;
    let cookie = cookie_of(&first);
    let mut tokens = vec![text(first).await];
    for _ in 0..4 {
        let resp = site.get("/form", Some(&cookie)).await;
        assert!(set_cookies(&resp).is_empty(), "the secret is created once");
        tokens.push(text(resp).await);
    }
    let mut distinct = tokens.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), tokens.len(), "masked tokens never repeat: {tokens:?}");
    for token in &tokens {
        let resp =
            site.call(reqwest::Method::POST, "/items", Some(&cookie), Some(token), None).await;
        assert_eq!(resp.status(), 201, "{token}");
    }
}

#[tokio::test]
async fn secure_headers_are_on_browser_routes_only() {
    let site = Site::start(Browser::new()).await;
    let expected = [
        ("content-security-policy", "base-uri 'self'; frame-ancestors 'self';"),
        ("referrer-policy", "strict-origin-when-cross-origin"),
        ("x-content-type-options", "nosniff"),
        ("x-permitted-cross-domain-policies", "none"),
    ];
    let browser = site.get("/peek", None).await;
    let api = site.get("/api/status", None).await;
    assert_eq!((browser.status().as_u16(), api.status().as_u16()), (200, 200));
    for (name, value) in expected {
        assert_eq!(browser.headers().get(name).map(|v| v.to_str().unwrap()), Some(value), "{name}");
        if name == "x-content-type-options" {
            // Every rendered answer has it, JSON too: see `Conn::json`.
            continue;
        }
        assert!(api.headers().get(name).is_none(), "{name} leaked onto the API");
    }
    // Nor does the API ask for a CSRF token or set a session cookie.
    let resp = site.call(reqwest::Method::POST, "/api/items", None, None, None).await;
    assert_eq!(resp.status(), 201);
    assert!(set_cookies(&resp).is_empty());
}

fawkes::router! {
    /// Writes limited to three a second per client; reads free. Loopback plays the proxy.
    pub RateLimited;
    pipeline api {
        plug fawkes::security::rate_limit(3, std::time::Duration::from_secs(1))
            .methods([http::Method::POST])
            .trusted_proxies(fawkes::security::TrustedProxies::parse("127.0.0.1").unwrap());
    }
    scope "/" {
        pipe_through api;
        get "/thing" => create;
        post "/thing" => create;
    }
}

/// A client whose connections come from the loopback address `from`.
fn client_from(from: [u8; 4]) -> Client {
    reqwest::Client::builder()
        .http1_only()
        .no_proxy()
        .local_address(std::net::IpAddr::from(from))
        .timeout(DEADLINE)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_rate_limit_answers_429_past_a_clients_share_and_counts_clients_apart() {
    let server = start(Endpoint::new(RateLimited::new())).await;
    let url = format!("{}/thing", server.url());
    let ada = client_from([127, 0, 0, 1]);
    let post = |client: &Client, forwarded: Option<&str>| {
        let mut req = client.post(&url);
        if let Some(forwarded) = forwarded {
            req = req.header("x-forwarded-for", forwarded);
        }
        req.send()
    };
    for _ in 0..3 {
        assert!(post(&ada, None).await.unwrap().status().is_success());
    }
    let limited = post(&ada, None).await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(retry, 1, "a third of a second, rounded up");
    // Reads are not counted.
    assert!(ada.get(&url).send().await.unwrap().status().is_success());
    // Another address is another client.
    let grace = client_from([127, 0, 0, 2]);
    assert!(post(&grace, None).await.unwrap().status().is_success());
    // Through the trusted proxy, the address it names is the client; what a client writes
    // left of it changes nothing.
    assert!(post(&ada, Some("203.0.113.5")).await.unwrap().status().is_success());
    for _ in 0..2 {
        let spoofed = post(&ada, Some("198.51.100.1, 203.0.113.5")).await.unwrap();
        assert!(spoofed.status().is_success());
    }
    let spoofed = post(&ada, Some("198.51.100.2, 203.0.113.5")).await.unwrap();
    assert_eq!(spoofed.status(), StatusCode::TOO_MANY_REQUESTS);
    // One request comes back every third of a second.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(post(&ada, None).await.unwrap().status().is_success());
    assert_eq!(post(&ada, None).await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    server.shutdown();
}
