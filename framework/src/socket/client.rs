//! The browser client, shipped with the framework so an app needs no npm step to use channels.

use http::{header, HeaderMap, StatusCode};

use crate::{Body, Conn};

/// The client's source, an ES module with no dependencies.
pub(crate) const CLIENT_JS: &str = include_str!("client.js");

/// Browsers may reuse the module this long without asking; after that the ETag makes the
/// check a 304. Short, because the URL does not change when the framework is upgraded.
const CACHE_CONTROL: &str = "public, max-age=300";

/// FNV-1a of the source, so the ETag changes exactly when the client does.
const HASH: u64 = fnv1a(CLIENT_JS.as_bytes());

/// FNV-1a of `bytes`, at compile time: the entity tag of a file built into the binary.
pub(crate) const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// The entity tag of a file whose bytes hash to `hash`, quoted.
pub(crate) fn etag_of(hash: u64) -> String {
    format!("\"{hash:016x}\"")
}

/// Whether `If-None-Match` in `headers` names `etag` (weak or strong) or is `*`: the client
/// holds the file already, and gets a 304.
pub(crate) fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

/// Serves the JavaScript channels client: `Socket`, `Channel`, `Push` and `Serializer`, with
/// the API and wire behaviour of the official `phoenix` client (serializer 2.0.0, heartbeats,
/// reconnect with backoff, automatic rejoin), as a dependency-free ES module.
///
/// Answers with `content-type: text/javascript; charset=utf-8`, a short `cache-control` and an
/// `etag`; a matching `if-none-match` gets a 304.
///
/// # Examples
///
/// Mount it in the router, then import it from a page:
///
/// ```
/// fawkes::router! {
///     pub AppRouter;
///     get "/js/fawkes.js" => fawkes::socket::client_js;
/// }
/// # let _ = AppRouter::new();
/// ```
///
/// ```html
/// <script type="module">
///   import { Socket } from "/js/fawkes.js";
///   const socket = new Socket("/socket", { params: { user: "ada" } });
///   socket.connect();
///   const channel = socket.channel("room:lobby", {});
///   channel.on("new_msg", (msg) => console.log(msg.body));
///   channel.join().receive("ok", () => channel.push("new_msg", { body: "hi" }));
/// </script>
/// ```
pub async fn client_js(conn: Conn) -> Conn {
    let etag = etag_of(HASH);
    let fresh = if_none_match(conn.headers(), &etag);
    let conn = conn
        .put_resp_header(header::CACHE_CONTROL, CACHE_CONTROL)
        .put_resp_header(header::ETAG, etag.as_str());
    if fresh {
        return conn.send_resp(StatusCode::NOT_MODIFIED, Body::empty());
    }
    conn.put_resp_header(header::CONTENT_TYPE, "text/javascript; charset=utf-8")
        .send_resp(StatusCode::OK, CLIENT_JS)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(if_none_match: Option<&str>) -> http::Response<Body> {
        let mut req = http::Request::get("/js/fawkes.js");
        if let Some(tag) = if_none_match {
            req = req.header(header::IF_NONE_MATCH, tag);
        }
        let conn = Conn::from_request(req.body(Body::empty()).unwrap());
        client_js(conn).await.into_response()
    }

    #[tokio::test]
    async fn serves_the_module_with_a_validator() {
        let resp = get(None).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let headers = resp.headers();
        assert_eq!(headers[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert_eq!(headers[header::CACHE_CONTROL], CACHE_CONTROL);
        let etag = headers[header::ETAG].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() == 18, "{etag}");

        let again = get(Some(&format!("W/\"other\", {etag}"))).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[header::ETAG], etag.as_str());
        assert!(again.headers().get(header::CONTENT_TYPE).is_none());

        assert_eq!(get(Some("\"stale\"")).await.status(), StatusCode::OK);
    }

    #[test]
    fn the_module_exports_the_client_api() {
        for export in ["export class Socket", "export class Channel", "export class Push"] {
            assert!(CLIENT_JS.contains(export), "{export}");
        }
        assert!(CLIENT_JS.contains("\"2.0.0\""), "speaks serializer 2.0.0");
    }
}
