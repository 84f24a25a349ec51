//! The browser side: the chat page at `/`.
//!
//! The pages are askama templates (`example-app/templates/`, compiled into the binary and
//! checked against these structs at build time), which escape every value for HTML. They
//! link their stylesheet and scripts through [`Assets::path`], served under `/assets/`, and
//! import the channels client the framework serves at `/js/fawkes.js`.

use askama::Template;
use fawkes::security::{get_csrf_token, SecretKeyBase};
use fawkes::{ActionError, Conn, RenderError as _, State};

use super::session_controller;
use crate::assets::Assets;
use crate::channels::sign_user_token;
use crate::router::AppState;

/// `GET /`: the chat, as the session's user when one logged in.
pub async fn index(conn: Conn, state: State<AppState>) -> Conn {
    chat(conn, &state, None)
}

/// A login form sent back with an error, to show again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoginAttempt<'a> {
    /// The name as it was typed.
    pub(crate) name: &'a str,
    /// What is wrong with it.
    pub(crate) error: &'a str,
}

/// The logged-in user, as the chat page hands it to its socket.
struct PageUser {
    name: String,
    /// A user token ([`sign_user_token`]) for the socket's `connect`.
    token: String,
}

/// `templates/chat.html`.
#[derive(Template)]
#[template(path = "chat.html")]
struct ChatPage<'a> {
    page: &'static str,
    assets: &'a Assets,
    /// base64url: the same token in the meta tag and both forms.
    csrf_token: String,
    user: Option<PageUser>,
    login_name: &'a str,
    login_error: &'a str,
}

/// Renders the chat page: with the login dialog open on `attempt`'s error, if given.
pub(crate) fn chat(mut conn: Conn, state: &AppState, attempt: Option<LoginAttempt<'_>>) -> Conn {
    let user = session_controller::current_name(&conn);
    let csrf_token = get_csrf_token(&mut conn);
    let login_name = attempt.map(|a| a.name).or(user.as_deref()).unwrap_or_default();
    let page = ChatPage {
        page: "chat",
        assets: &state.assets,
        csrf_token,
        user: user.as_ref().map(|name| page_user(&state.key_base, name)),
        login_name,
        login_error: attempt.map(|a| a.error).unwrap_or_default(),
    };
    render(conn, &page)
}

fn page_user(key_base: &SecretKeyBase, name: &str) -> PageUser {
    PageUser { name: name.to_owned(), token: sign_user_token(key_base, name) }
}

/// Renders `page` as the HTML response; a template that fails (a value whose `Display`
/// fails) answers 500.
fn render(conn: Conn, page: &impl Template) -> Conn {
    match page.render() {
        Ok(html) => conn.html(html),
        Err(err) => {
            tracing::error!(error = %err, "cannot render the page");
            ActionError::internal().render(conn)
        }
    }
}

#[cfg(test)]
mod tests {
    use fawkes::security::SecretKeyBase;
    use fawkes::test::ConnTest;

    /// The router, on a throwaway database of its own (the pages do not query it).
    async fn router() -> fawkes::Router {
        let path = std::env::temp_dir().join(format!("fawkes-pages-{}.db", rand_suffix()));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        crate::app(&url, SecretKeyBase::generate()).await.expect("a throwaway database").router
    }

    fn rand_suffix() -> String {
        use std::hash::{BuildHasher as _, RandomState};
        format!(
            "{}-{:x}",
            std::process::id(),
            RandomState::new().hash_one(std::time::SystemTime::now())
        )
    }

    #[tokio::test]
    async fn pages_and_their_assets_are_served() {
        let http = ConnTest::new(router().await);
        let assets = crate::assets::Assets::load(crate::assets::BUILT_ASSETS_DIR).unwrap();
        let chat_js = assets.path("chat.js");
        for (path, content_type, marker) in [
            ("/", "text/html; charset=utf-8", format!(r#"<script type="module" src="{chat_js}">"#)),
            ("/assets/app.css", "text/css", ".sidebar".to_owned()),
            ("/assets/chat.js", "text/javascript", "from \"/js/fawkes.js\"".to_owned()),
        ] {
            let resp = http.get(path).header("accept", "text/html,*/*").send().await;
            resp.assert_status(200).assert_header("content-type", content_type);
            assert!(resp.text().contains(&marker), "{path} lacks {marker}");
        }
        http.get("/assets/missing.js").send().await.assert_status(404);
        http.get("/assets/..%2Fsrc%2Fmain.rs").send().await.assert_status(404);
        http.get("/assets/../src/main.rs").send().await.assert_status(404);
    }

    /// A versioned URL is cached for good; anything else is revalidated, and revalidation
    /// answers 304 without the body.
    #[tokio::test]
    async fn assets_carry_cache_headers() {
        let http = ConnTest::new(router().await);
        let assets = crate::assets::Assets::load(crate::assets::BUILT_ASSETS_DIR).unwrap();
        let versioned = http.get(&assets.path("app.css")).send().await;
        versioned
            .assert_status(200)
            .assert_header("cache-control", "public, max-age=31536000, immutable")
            .assert_header("x-content-type-options", "nosniff");

        let stale = http.get("/assets/app.css?vsn=0123456789abcdef").send().await;
        stale.assert_status(200).assert_header("cache-control", "no-cache");
        let plain = http.get("/assets/app.css").send().await;
        plain.assert_status(200).assert_header("cache-control", "no-cache");
        let modified = plain.header("last-modified").expect("a Last-Modified").to_owned();
        let again =
            http.get("/assets/app.css").header("if-modified-since", modified.as_str()).send().await;
        again.assert_status(304);
        assert!(again.bytes().is_empty());
    }

    /// Values are escaped: a name that reads as markup is shown as text.
    #[tokio::test]
    async fn the_chat_page_escapes_what_it_shows() {
        let assets = crate::assets::Assets::load(crate::assets::BUILT_ASSETS_DIR).unwrap();
        let page = super::ChatPage {
            page: "chat",
            assets: &assets,
            csrf_token: "tok".to_owned(),
            user: Some(super::PageUser { name: "<b>\"x\" & 'y'</b>".into(), token: "t".into() }),
            login_name: "<script>",
            login_error: "",
        };
        let html = askama::Template::render(&page).unwrap();
        let name = "&#60;b&#62;&#34;x&#34; &#38; &#39;y&#39;&#60;/b&#62;";
        assert!(html.contains(&format!(r#"<meta name="user-name" content="{name}">"#)), "{html}");
        assert!(html.contains(r#"name="name" value="&#60;script&#62;""#), "{html}");
        assert!(!html.contains("<b>"), "no markup from values");
    }

    #[tokio::test]
    async fn the_chat_page_fills_every_placeholder() {
        let http = ConnTest::new(router().await);
        let page = http.get("/").header("accept", "text/html").send().await;
        page.assert_status(200);
        let html = page.text();
        assert!(!html.contains("{{") && !html.contains("}}"), "a placeholder is left");
        assert!(html.contains(r#"<meta name="csrf-token" content=""#));
        assert!(html.contains(r#"name="_csrf_token" value=""#));
        assert!(!html.contains("user-token"), "anonymous visitors get no socket token");
    }

    #[tokio::test]
    async fn the_channels_client_is_served_as_a_module() {
        let http = ConnTest::new(router().await);
        let resp = http.get("/js/fawkes.js").send().await;
        resp.assert_status(200).assert_header("content-type", "text/javascript; charset=utf-8");
        assert!(resp.header("cache-control").is_some_and(|v| v.contains("max-age")));
        let body = resp.text();
        assert!(body.contains("export class Socket"), "{}", &body[..200.min(body.len())]);
        assert!(body.contains("export class Channel"));

        let etag = resp.header("etag").expect("an etag").to_owned();
        let again = http.get("/js/fawkes.js").header("if-none-match", etag.as_str()).send().await;
        again.assert_status(304);
        assert!(again.bytes().is_empty());
    }
}
