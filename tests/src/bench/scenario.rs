//! The HTTP scenarios, and the bytes every server must answer them with.
//!
//! The three servers share these constants and response types so that a difference in
//! throughput comes from the stack under test, never from one server doing more work.

use http::header::HeaderName;
use serde::Serialize;
use serde_json::{json, Map, Value};

/// The plaintext body, as in the TechEmpower benchmarks.
pub(crate) const HELLO: &str = "Hello, World!";

/// The header every response carries; in Fawkes a plug puts it.
pub(crate) const BENCH_HEADER: HeaderName = HeaderName::from_static("x-bench");

/// The value of [`BENCH_HEADER`].
pub(crate) const BENCH_HEADER_VALUE: &str = "1";

/// A request carrying this header is refused by the Fawkes pipeline; the benchmark never sends
/// it, but the plug must still look for it on every request.
pub(crate) const DENY_HEADER: &str = "x-bench-deny";

/// The ids of the deep-path request.
pub(crate) const USER_ID: &str = "42";
/// See [`USER_ID`].
pub(crate) const POST_ID: &str = "7";

/// The body of `GET /json`.
#[derive(Debug, Serialize)]
pub(crate) struct Message {
    pub(crate) message: &'static str,
}

/// The body of the deep-path answer: the path's ids, parsed as integers.
#[derive(Debug, Serialize)]
pub(crate) struct Ids {
    pub(crate) id: u64,
    pub(crate) post_id: u64,
}

/// The body of the echo answer: how many keys the posted object had.
#[derive(Debug, Serialize)]
pub(crate) struct Keys {
    pub(crate) keys: usize,
}

/// One request shape, driven at one server for one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scenario {
    Plaintext,
    Json,
    DeepPath,
    PostJson,
}

impl Scenario {
    pub(crate) const ALL: [Scenario; 4] =
        [Self::Plaintext, Self::Json, Self::DeepPath, Self::PostJson];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Json => "json",
            Self::DeepPath => "deep_path",
            Self::PostJson => "post_json",
        }
    }

    pub(crate) fn method(self) -> &'static str {
        match self {
            Self::PostJson => "POST",
            _ => "GET",
        }
    }

    /// The request path (not the route pattern).
    pub(crate) fn path(self) -> String {
        match self {
            Self::Plaintext => "/plaintext".to_owned(),
            Self::Json => "/json".to_owned(),
            Self::DeepPath => format!("/api/v1/users/{USER_ID}/posts/{POST_ID}"),
            Self::PostJson => "/api/v1/echo".to_owned(),
        }
    }

    /// The request body, for scenarios that send one.
    pub(crate) fn body(self) -> Option<String> {
        match self {
            Self::PostJson => Some(echo_body()),
            _ => None,
        }
    }

    pub(crate) fn expected_content_type(self) -> &'static str {
        match self {
            Self::Plaintext => "text/plain; charset=utf-8",
            _ => "application/json",
        }
    }

    pub(crate) fn expected_body(self) -> Vec<u8> {
        let bytes = match self {
            Self::Plaintext => Ok(HELLO.as_bytes().to_vec()),
            Self::Json => serde_json::to_vec(&Message { message: HELLO }),
            Self::DeepPath => serde_json::to_vec(&Ids {
                id: USER_ID.parse().expect("a number"),
                post_id: POST_ID.parse().expect("a number"),
            }),
            Self::PostJson => serde_json::to_vec(&Keys { keys: ECHO_KEYS }),
        };
        bytes.expect("the response types always serialise")
    }

    /// The wrk script: the request shape plus a `done` hook that prints one JSON line, which
    /// is sturdier to read back than wrk's human summary.
    pub(crate) fn lua_script(self) -> String {
        let mut script = String::new();
        if let Some(body) = self.body() {
            // A long bracket of level 2 cannot be closed by anything in a JSON document that
            // holds no `]==]`, which `echo_body` never produces.
            script.push_str(&format!(
                "wrk.method = \"{}\"\nwrk.body = [==[{body}]==]\n\
                 wrk.headers[\"Content-Type\"] = \"application/json\"\n",
                self.method()
            ));
        }
        script.push_str(DONE_HOOK);
        script
    }
}

/// How many top-level keys [`echo_body`] has.
pub(crate) const ECHO_KEYS: usize = 16;

/// A JSON object of [`ECHO_KEYS`] keys and about 1 KB, mixing the value kinds an API sees.
pub(crate) fn echo_body() -> String {
    let mut map = Map::new();
    for i in 0..ECHO_KEYS {
        let value = match i % 4 {
            0 => Value::String(format!("some text for field {i:02} ").repeat(4)),
            1 => json!(i * 1_000_003),
            2 => json!([i, i + 1, i + 2, format!("tag-{i}"), null, true]),
            _ => json!({
                "nested": true,
                "label": format!("item-{i:02}"),
                "note": "lorem ipsum dolor sit amet",
                "score": i as f64 + 0.25,
            }),
        };
        map.insert(format!("field_{i:02}"), value);
    }
    serde_json::to_string(&Value::Object(map)).expect("a JSON map always serialises")
}

/// wrk calls `done` once after the run; latencies arrive in microseconds.
pub(crate) const DONE_HOOK: &str = r#"
done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_s":%.6f,"rps":%.3f,"bytes":%d,' ..
    '"p50_ms":%.4f,"p90_ms":%.4f,"p99_ms":%.4f,"max_ms":%.4f,"mean_ms":%.4f,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, seconds, summary.requests / seconds, summary.bytes,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_echo_body_is_about_one_kilobyte_and_safe_in_a_lua_long_bracket() {
        let body = echo_body();
        assert!((900..=1300).contains(&body.len()), "echo body is {} bytes", body.len());
        assert!(!body.contains("]==]"));
        let parsed: Map<String, Value> = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed.len(), ECHO_KEYS);
    }
}
