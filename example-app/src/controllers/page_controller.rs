//! The browser side: the chat page at `/`, the live dashboard at `/dashboard`, and their
//! stylesheet and scripts under `/assets/`.
//!
//! Every file is compiled into the binary from `example-app/assets/`, so the app ships as one
//! executable with no build step for the front end. The pages import the channels client the
//! framework serves at `/js/fawkes.js`.

use fawkes::{ActionError, Conn, IntoResponse as _};
use http::header;

const CHAT_HTML: &str = include_str!("../../assets/chat.html");
const DASHBOARD_HTML: &str = include_str!("../../assets/dashboard.html");

/// The files under `/assets/`: name, content type, content.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.css", "text/css; charset=utf-8", include_str!("../../assets/app.css")),
    ("chat.js", "text/javascript; charset=utf-8", include_str!("../../assets/chat.js")),
    ("dashboard.js", "text/javascript; charset=utf-8", include_str!("../../assets/dashboard.js")),
];

/// `GET /`: the chat.
pub async fn index(conn: Conn) -> Conn {
    conn.html(CHAT_HTML)
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
        .put_resp_header(header::CACHE_CONTROL, "no-cache")
        .put_resp_body(*body)
}

#[cfg(test)]
mod tests {
    use fawkes::test::ConnTest;

    use crate::AppRouter;

    #[tokio::test]
    async fn pages_and_their_assets_are_served() {
        let http = ConnTest::new(AppRouter::new());
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
    async fn the_channels_client_is_served_as_a_module() {
        let http = ConnTest::new(AppRouter::new());
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
