//! The browser side: the chat page at `/`, the live dashboard at `/dashboard`, and their
//! stylesheet and scripts under `/assets/`.
//!
//! Every file is compiled into the binary from `example-app/assets/`, so the app ships as one
//! executable with no build step for the front end. The pages import the channels client the
//! framework serves at `/js/fawkes.js`.
//!
//! The chat page is a template: `{{name}}` placeholders take the CSRF token, the logged-in
//! user's name and socket token, and the login form's state, each HTML-escaped.

use fawkes::security::{csrf_meta_tag, get_csrf_token, SecretKeyBase};
use fawkes::{ActionError, Conn, RenderError as _, State};
use http::header;

use super::session_controller;
use crate::channels::sign_user_token;
use crate::router::AppState;

const CHAT_HTML: &str = include_str!("../../assets/chat.html");
const DASHBOARD_HTML: &str = include_str!("../../assets/dashboard.html");

/// The files under `/assets/`: name, content type, content.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.css", "text/css; charset=utf-8", include_str!("../../assets/app.css")),
    ("chat.js", "text/javascript; charset=utf-8", include_str!("../../assets/chat.js")),
    ("dashboard.js", "text/javascript; charset=utf-8", include_str!("../../assets/dashboard.js")),
];

/// `GET /`: the chat, as the session's user when one logged in.
pub async fn index(conn: Conn, state: State<AppState>) -> Conn {
    chat(conn, &state.key_base, None)
}

/// A login form sent back with an error, to show again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoginAttempt<'a> {
    /// The name as it was typed.
    pub(crate) name: &'a str,
    /// What is wrong with it.
    pub(crate) error: &'a str,
}

/// Renders the chat page: with the login dialog open on `attempt`'s error, if given.
pub(crate) fn chat(
    mut conn: Conn,
    key_base: &SecretKeyBase,
    attempt: Option<LoginAttempt<'_>>,
) -> Conn {
    let user = session_controller::current_name(&conn);
    let user_meta = match &user {
        Some(name) => format!(
            r#"<meta name="user-name" content="{}">
  <meta name="user-token" content="{}">"#,
            escape(name),
            escape(&sign_user_token(key_base, name))
        ),
        None => String::new(),
    };
    let csrf_meta = csrf_meta_tag(&mut conn);
    let csrf_token = get_csrf_token(&mut conn);
    let login_name = attempt.map(|a| a.name).or(user.as_deref()).unwrap_or_default();
    let login_error = attempt.map(|a| a.error).unwrap_or_default();
    let page = render(
        CHAT_HTML,
        &[
            ("csrf_meta_tag", csrf_meta),
            ("user_meta", user_meta),
            // base64url: nothing to escape.
            ("csrf_token", csrf_token),
            ("login_name", escape(login_name)),
            ("login_error", escape(login_error)),
        ],
    );
    conn.html(page)
}

/// Fills `{{key}}` placeholders in one pass, so a value that itself reads `{{key}}` stays
/// as it is. An unknown placeholder is left in place, where the page's tests see it.
fn render(template: &str, values: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len() + 512);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else { break };
        let (key, end) = (&rest[start + 2..start + 2 + len], start + 2 + len + 2);
        out.push_str(&rest[..start]);
        match values.iter().find(|(name, _)| *name == key) {
            Some((_, value)) => out.push_str(value),
            None => out.push_str(&rest[start..end]),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Escapes text for HTML element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `GET /dashboard`: the live metrics.
pub async fn dashboard(conn: Conn) -> Conn {
    conn.html(DASHBOARD_HTML)
}

/// `GET /assets/:name`: a stylesheet or script of the pages; 404 for any other name.
pub async fn asset(conn: Conn) -> Conn {
    let name = conn.path_param("name").unwrap_or_default();
    let Some((_, content_type, body)) = ASSETS.iter().find(|(file, ..)| *file == name) else {
        return ActionError::not_found().render(conn);
    };
    // Revalidated on every load: the files are tiny and change with each build of the app.
    conn.put_resp_header(header::CONTENT_TYPE, *content_type)
        .put_resp_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .put_resp_header(header::CACHE_CONTROL, "no-cache")
        .put_resp_body(*body)
}

#[cfg(test)]
mod tests {
    use fawkes::security::SecretKeyBase;
    use fawkes::test::ConnTest;

    use super::{escape, render};

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
        for (path, content_type, marker) in [
            ("/", "text/html; charset=utf-8", "<script type=\"module\" src=\"/assets/chat.js\">"),
            ("/dashboard", "text/html; charset=utf-8", "src=\"/assets/dashboard.js\""),
            ("/assets/app.css", "text/css; charset=utf-8", ".sidebar"),
            ("/assets/chat.js", "text/javascript; charset=utf-8", "from \"/js/fawkes.js\""),
            ("/assets/dashboard.js", "text/javascript; charset=utf-8", "dashboard:metrics"),
        ] {
            let resp = http.get(path).header("accept", "text/html,*/*").send().await;
            resp.assert_status(200).assert_header("content-type", content_type);
            assert!(resp.text().contains(marker), "{path} lacks {marker}");
        }
        http.get("/assets/missing.js").send().await.assert_status(404);
        http.get("/assets/..%2Fsrc%2Fmain.rs").send().await.assert_status(404);
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

    #[test]
    fn rendering_is_one_pass_and_values_are_escaped() {
        let values = [("a", escape("<b>\"x\" & 'y'</b>")), ("b", "{{a}}".to_owned())];
        assert_eq!(
            render("[{{a}}] [{{b}}] {{", &values),
            "[&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;] [{{a}}] {{"
        );
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
