//! Request ids: one id per request, in the response and the assigns.

use base64::Engine as _;

use super::Plug;
use crate::Conn;

/// The id of the current request, as assigned by [`request_id`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// A plug giving every request an id (Plug.RequestId): the incoming `x-request-id` when it
/// looks like one (20–200 characters of `A-Z a-z 0-9 - _`), else a fresh random one. The id
/// is set on the response's `x-request-id`, assigned as [`RequestId`], and logged with the
/// request's span.
///
/// # Examples
///
/// ```
/// fawkes::router! {
///     pub App;
///     pipeline api { plug fawkes::plug::request_id(); }
///     scope "/" { pipe_through api; get "/" => fawkes::telemetry::healthz; }
/// }
/// # let _ = App::new();
/// ```
pub fn request_id() -> RequestIdPlug {
    RequestIdPlug
}

/// See [`request_id`].
#[derive(Debug, Clone, Copy)]
pub struct RequestIdPlug;

fn valid(id: &str) -> bool {
    (20..=200).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Plug for RequestIdPlug {
    async fn call(&self, conn: Conn) -> Conn {
        let id = match conn.header("x-request-id").filter(|id| valid(id)) {
            Some(id) => id.to_owned(),
            None => {
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 15]>())
            }
        };
        tracing::Span::current().record("request_id", id.as_str());
        conn.put_resp_header("x-request-id", id.as_str()).assign(RequestId(id))
    }
}
