//! One secret key base per endpoint: sessions configured `from_endpoint` use it (so replicas
//! sharing the secret accept each other's cookies), sockets verify tokens with it, and an
//! endpoint without one refuses to run such a session rather than run it unsigned.

use std::time::Duration;

use fawkes::security::{fetch_session, SecretKeyBase, SessionConfig, SessionExt, Token};
use fawkes::socket::{transport, Channels, ConnectInfo, Refused, Socket};
use fawkes::{Conn, Endpoint};
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Map, Value};
use tests::{http1_client, start};

fn key_base(byte: u8) -> SecretKeyBase {
    SecretKeyBase::new(vec![byte; 64]).expect("64 bytes is long enough")
}

async fn counter(conn: Conn) -> Conn {
    let count = conn.get_session::<u32>("count").unwrap_or(0) + 1;
    conn.put_session("count", &count).text(count.to_string())
}

/// Accepts a `token` connect param signed with the endpoint's key base for "user socket".
struct TokenSocket;

impl Socket for TokenSocket {
    async fn connect(
        &self,
        params: &Map<String, Value>,
        info: &ConnectInfo,
    ) -> Result<fawkes::Assigns, Refused> {
        let key = info.secret_key_base.as_ref().ok_or(Refused)?;
        let token = params.get("token").and_then(Value::as_str).ok_or(Refused)?;
        let _user: String = Token::verify(key, "user socket", token, Duration::from_secs(60))
            .map_err(|_| Refused)?;
        Ok(fawkes::Assigns::new())
    }

    fn channels(&self) -> Channels {
        Channels::new()
    }
}

fawkes::router! {
    /// Sessions and sockets keyed by the endpoint.
    pub Keyed;
    pipeline browser { plug fetch_session(SessionConfig::from_endpoint()); }
    socket "/socket" => transport(TokenSocket);
    scope "/" {
        pipe_through browser;
        get "/counter" => counter;
    }
}

async fn get(url: &str, cookie: Option<&str>) -> (u16, Option<String>, String) {
    let mut req = http1_client().get(url);
    if let Some(cookie) = cookie {
        req = req.header(COOKIE, cookie);
    }
    let resp = req.send().await.expect("a response");
    let status = resp.status().as_u16();
    let set_cookie = resp
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    (status, set_cookie, resp.text().await.unwrap_or_default())
}

#[tokio::test]
async fn replicas_sharing_a_key_base_share_sessions_and_others_do_not() {
    let a = start(Endpoint::new(Keyed::new()).secret_key_base(key_base(7))).await;
    let b = start(Endpoint::new(Keyed::new()).secret_key_base(key_base(7))).await;
    let other = start(Endpoint::new(Keyed::new()).secret_key_base(key_base(8))).await;

    let (status, cookie, body) = get(&format!("{}/counter", a.url()), None).await;
    assert_eq!((status, body.as_str()), (200, "1"));
    let cookie = cookie.expect("a session cookie");
    // Another replica with the same secret continues the session.
    let (_, cookie_b, body) = get(&format!("{}/counter", b.url()), Some(&cookie)).await;
    assert_eq!(body, "2");
    // One with another secret sees a tampered cookie: a fresh session, not an error.
    let (status, _, body) = get(&format!("{}/counter", other.url()), cookie_b.as_deref()).await;
    assert_eq!((status, body.as_str()), (200, "1"));
}

#[tokio::test]
async fn a_session_from_the_endpoint_without_a_key_base_is_a_500_not_an_unsigned_cookie() {
    let bare = start(Endpoint::new(Keyed::new())).await;
    let (status, cookie, _) = get(&format!("{}/counter", bare.url()), None).await;
    assert_eq!(status, 500);
    assert_eq!(cookie, None, "no cookie is written without a key");
}

#[tokio::test]
async fn sockets_verify_tokens_with_the_endpoints_key_base() {
    let server = start(Endpoint::new(Keyed::new()).secret_key_base(key_base(7))).await;
    let upgrade = |token: String| {
        let url = format!("ws://{}/socket/websocket?vsn=2.0.0&token={token}", server.local_addr());
        async move {
            match tokio_tungstenite::connect_async(url).await {
                Ok(_) => 101,
                Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
                Err(err) => panic!("no HTTP answer: {err:?}"),
            }
        }
    };
    let good = Token::sign(&key_base(7), "user socket", "ada");
    let foreign = Token::sign(&key_base(8), "user socket", "ada");
    assert_eq!(upgrade(good).await, 101);
    assert_eq!(upgrade(foreign).await, 403);
    assert_eq!(upgrade("garbage".to_owned()).await, 403);
}
