//! Phoenix.Token through a real endpoint: one route hands a token out, another checks it, and
//! the answers tell an expired token from an invalid or missing one.

use std::time::Duration;

use fawkes::security::{SecretKeyBase, Token, TokenError};
use fawkes::{Conn, Endpoint};
use serde::Deserialize;
use tests::{http1_client, start, within, DEADLINE};

const SALT: &str = "user socket";

fn key_base() -> SecretKeyBase {
    SecretKeyBase::new(vec![5; 64]).expect("64 bytes is long enough")
}

async fn issue(conn: Conn) -> Conn {
    let kind = conn.path_param("kind").unwrap_or_default().to_owned();
    let token = match kind.as_str() {
        "signed" => Token::sign(&key_base(), SALT, &42_u64),
        _ => Token::encrypt(&key_base(), SALT, &42_u64),
    };
    conn.text(token)
}

#[derive(Deserialize)]
struct Check {
    #[serde(default)]
    token: String,
    max_age_ms: String,
}

async fn check(conn: Conn) -> Result<Conn, TokenError> {
    let Ok(Check { token, max_age_ms }) = conn.params::<Check>() else {
        return Ok(conn.put_status(http::StatusCode::BAD_REQUEST));
    };
    let Ok(max_age_ms) = max_age_ms.parse() else {
        return Ok(conn.put_status(http::StatusCode::BAD_REQUEST));
    };
    let max_age = Duration::from_millis(max_age_ms);
    let user_id: u64 = match conn.path_param("kind") {
        Some("signed") => Token::verify(&key_base(), SALT, &token, max_age)?,
        _ => Token::decrypt(&key_base(), SALT, &token, max_age)?,
    };
    Ok(conn.json(&serde_json::json!({ "user_id": user_id })))
}

fawkes::router! {
    /// Hands out tokens and checks them.
    pub Tokens;
    scope "/" {
        get "/token/:kind" => issue;
        get "/check/:kind" => check;
    }
}

async fn get(client: &reqwest::Client, url: String) -> (u16, serde_json::Value, String) {
    let resp = within(DEADLINE, "a response", client.get(url).send()).await.expect("request");
    let status = resp.status().as_u16();
    let text = within(DEADLINE, "a body", resp.text()).await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or_default(), text)
}

#[tokio::test]
async fn tokens_verify_expire_and_refuse_forgeries() {
    let server = start(Endpoint::new(Tokens::new())).await;
    let client = http1_client();
    let base = server.url();
    for kind in ["signed", "encrypted"] {
        let (_, _, token) = get(&client, format!("{base}/token/{kind}")).await;
        let check = |token: &str, max_age_ms: u64| {
            format!("{base}/check/{kind}?token={token}&max_age_ms={max_age_ms}")
        };

        let (status, body, _) = get(&client, check(&token, 60_000)).await;
        assert_eq!((status, body["user_id"].as_u64()), (200, Some(42)), "{kind}");

        // Token made with the other kind, a truncated token, none at all.
        let (_, _, other) = get(&client, format!("{base}/token/{}", other(kind))).await;
        let cases = [
            ("other kind", other.as_str(), "invalid token"),
            ("truncated", &token[..token.len() - 3], "invalid token"),
            ("garbage", "abc.def.ghi", "invalid token"),
            ("missing", "", "missing token"),
        ];
        for (case, bad, detail) in cases {
            let (status, body, _) = get(&client, check(bad, 60_000)).await;
            assert_eq!(status, 401, "{kind}: {case}");
            assert_eq!(body["errors"]["detail"], detail, "{kind}: {case}");
        }

        // With no age allowed, the token expires as soon as the clock moves past its
        // signing millisecond: poll for that, bounded.
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let (status, body, _) = get(&client, check(&token, 0)).await;
            if status == 401 {
                assert_eq!(body["errors"]["detail"], "expired token", "{kind}");
                break;
            }
            assert_eq!(status, 200, "{kind}: fresh or expired, nothing else");
            assert!(tokio::time::Instant::now() < deadline, "{kind}: never expired");
        }
        // The same token is still fine under a generous age.
        assert_eq!(get(&client, check(&token, 60_000)).await.0, 200, "{kind}");
    }
}

fn other(kind: &str) -> &'static str {
    if kind == "signed" {
        "encrypted"
    } else {
        "signed"
    }
}
