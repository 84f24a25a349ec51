//! The live socket from the inside: what a join with an old page gets.

use serde_json::{json, Map, Value};

use super::flash::FLASH_SALT;
use super::page::{SessionToken, SESSION_MAX_AGE, SESSION_SALT};
use crate::live::{html, LiveSocket, LiveView, Rendered};
use crate::security::{fetch_session, SecretKeyBase, SessionConfig};
use crate::socket::ConnectInfo;
use crate::test::ChannelTest;

struct Hello;

impl LiveView for Hello {
    type Info = ();
    async fn mount(_: &Map<String, Value>, _: &mut LiveSocket) -> Self {
        Hello
    }
    async fn handle_event(&mut self, _: &str, _: Value, _: &mut LiveSocket) {}
    fn render(&self) -> Rendered {
        html!("<p>hello</p>")
    }
}

/// A page older than the token's age: the join answers `stale`, so the client reloads it
/// and gets a fresh token.
#[tokio::test]
async fn a_token_past_its_age_is_stale() {
    let key_base = SecretKeyBase::generate();
    let session = fetch_session(SessionConfig::new(key_base.clone()).cookie_name("s"));
    // A cookie session holding a CSRF secret, and a token of that secret.
    let secret = [7u8; crate::security::csrf::SECRET_LEN];
    let stored = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, secret);
    let mut map = Map::new();
    map.insert(crate::security::CSRF_TOKEN_KEY.to_owned(), json!(stored));
    let cookie_key = key_base.key_for("fawkes session");
    let now = crate::security::token::now_ms();
    let cookie = crate::security::token::sign_at(&cookie_key, &map, now);
    let mut masked = vec![0u8; crate::security::csrf::SECRET_LEN];
    masked.extend_from_slice(&secret);
    let csrf = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, masked);

    let mut info = ConnectInfo::default();
    info.headers.insert(http::header::COOKIE, format!("s={cookie}").parse().unwrap());
    info.secret_key_base = Some(key_base.clone());
    let live = super::socket((), session).view::<Hello>("/hello");
    let mut socket =
        ChannelTest::connect_with_info(live, json!({}), &info, crate::PubSub::new("t"))
            .await
            .unwrap();

    let tag = crate::security::csrf::session_tag(&map).unwrap();
    let token = |age_ms: u64| {
        let data = SessionToken {
            c: tag.clone(),
            v: std::any::type_name::<Hello>().to_owned(),
            id: "phx-1".into(),
            s: Map::new(),
            f: super::Flash::default(),
        };
        crate::security::token::sign_at(&key_base.key_for(SESSION_SALT), &data, now - age_ms)
    };
    let join = |session: String| json!({"url": "http://x/hello", "params": {"_csrf_token": csrf}, "session": session});
    let max_age = u64::try_from(SESSION_MAX_AGE.as_millis()).unwrap();
    let old = socket.join("lv:phx-1", join(token(max_age + 60_000))).await;
    assert_eq!(old, Err(json!({"reason": "stale"})));
    let fresh = socket.join("lv:phx-1", join(token(0))).await.expect("a fresh token joins");
    // The view's template, then the flash, empty.
    let no_flash = json!({"s": ["", ""], "0": {"s": [""]}});
    assert_eq!(fresh["rendered"], json!({"s": ["<p>hello</p>", ""], "0": no_flash}));

    // A navigation's flash shows for a minute, not after.
    let flash = |age_ms: u64| {
        let flash = super::Flash::from_iter([("info", "hi")]);
        crate::security::token::sign_at(&key_base.key_for(FLASH_SALT), &flash, now - age_ms)
    };
    for (age_ms, shown) in [(1_000, true), (61_000, false)] {
        let mut payload = join(token(0));
        payload["flash"] = json!(flash(age_ms));
        let joined = socket.join("lv:phx-1", payload).await.expect("joins");
        assert_eq!(joined["rendered"]["0"] != no_flash, shown, "{age_ms} ms: {joined}");
    }
}
