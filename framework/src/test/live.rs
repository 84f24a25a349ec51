//! `LiveViewTest`: a live page driven in process, as the official client would drive it.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::channel::ChannelTest;
use super::ConnTest;
use crate::live::Live;
use crate::socket::ConnectInfo;

/// A live page in a test: rendered over [`ConnTest`] as a browser gets it, then joined over
/// the app's live socket in process; events are pushed as the official client pushes them,
/// and the page's HTML is rebuilt from the diffs as the client rebuilds it (Phoenix's
/// `Phoenix.LiveViewTest`).
///
/// # Examples
///
/// ```
/// use fawkes::live::{html, LiveSocket, LiveView, Rendered};
/// use fawkes::security::{fetch_session, SecretKeyBase, SessionConfig};
/// use fawkes::test::{ConnTest, LiveViewTest};
/// use serde_json::{json, Map, Value};
///
/// struct Counter(i64);
///
/// impl LiveView for Counter {
///     type Info = ();
///     async fn mount(_: &Map<String, Value>, _: &mut LiveSocket) -> Self { Counter(0) }
///     async fn handle_event(&mut self, event: &str, _: Value, _: &mut LiveSocket) {
///         if event == "inc" { self.0 += 1 }
///     }
///     fn render(&self) -> Rendered {
///         let n = self.0;
///         html!("<span id=\"count\">{n}</span>")
///     }
/// }
///
/// fn session() -> fawkes::security::FetchSession {
///     fetch_session(SessionConfig::from_endpoint())
/// }
///
/// fn live() -> fawkes::live::Live<()> {
///     fawkes::live::socket((), session()).view::<Counter>("/counter")
/// }
///
/// fawkes::router! {
///     pub App;
///     pipeline browser { plug session(); }
///     scope "/" { pipe_through browser; get "/counter" => fawkes::live::page::<Counter, ()>; }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let http = ConnTest::new(App::new()).secret_key_base(SecretKeyBase::generate());
/// let mut view = LiveViewTest::live(&http, live(), "/counter").await.unwrap();
/// assert_eq!(view.render(), "<span id=\"count\">0</span>");
/// assert_eq!(view.render_click("inc", json!({})).await, "<span id=\"count\">1</span>");
/// # });
/// ```
#[derive(Debug)]
pub struct LiveViewTest {
    socket: ChannelTest,
    topic: String,
    tree: Value,
    url: String,
    /// The last reply's navigation and events, for the assertions.
    last_reply: Value,
    events: Vec<Value>,
}

/// Why a live page could not be opened.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LiveTestError {
    /// The page's HTTP request answered this status, not 200 (a redirect's `location` too).
    Http(u16, Option<String>),
    /// The page carried no live container.
    NotLive,
    /// The live socket refused the connection.
    Refused,
    /// The join was refused with this reply (`{"reason": ...}`, a redirect...).
    Join(Value),
}

/// The value of the attribute that follows `before` in `html`.
fn attribute(html: &str, before: &str) -> Option<String> {
    let start = html.find(before)? + before.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

impl LiveViewTest {
    /// Renders `path` through `http` (which needs a secret key base: [`ConnTest::secret_key_base`])
    /// and joins the view over `live`, the app's live socket, with the page's cookie, CSRF
    /// token and session token.
    ///
    /// # Errors
    ///
    /// [`LiveTestError`] says what went wrong: the HTTP answer, a page without a live view, a
    /// refused join.
    pub async fn live<S: Clone + Send + Sync + 'static>(
        http: &ConnTest,
        live: Live<S>,
        path: &str,
    ) -> Result<Self, LiveTestError> {
        let page = http.get(path).header("accept", "text/html").send().await;
        if page.status() != 200 {
            let location = page.header("location").map(str::to_owned);
            return Err(LiveTestError::Http(page.status().as_u16(), location));
        }
        let html = page.text();
        // The main view's container: `<div id="phx-…" data-phx-main data-phx-session="…">`.
        let container = html.find(" data-phx-main").ok_or(LiveTestError::NotLive)?;
        let (Some(csrf), Some(id), Some(session)) = (
            attribute(&html, "<meta name=\"csrf-token\" content=\""),
            html[..container].rfind("id=\"").and_then(|at| attribute(&html[at..], "id=\"")),
            attribute(&html[container..], "data-phx-session=\""),
        ) else {
            return Err(LiveTestError::NotLive);
        };
        let cookie = page
            .header("set-cookie")
            .and_then(|c| c.split(';').next())
            .map(str::to_owned)
            .unwrap_or_default();
        let mut info = ConnectInfo::default();
        if let Ok(value) = cookie.parse() {
            info.headers.insert(http::header::COOKIE, value);
        }
        info.secret_key_base = http.key_base().cloned();
        let socket = ChannelTest::connect_with_info(live, json!({}), &info, http.pubsub().clone())
            .await
            .map_err(|_| LiveTestError::Refused)?;
        let url = format!("http://localhost{path}");
        let topic = format!("lv:{id}");
        let mut test = Self {
            socket,
            topic,
            tree: Value::Null,
            url: url.clone(),
            last_reply: Value::Null,
            events: Vec::new(),
        };
        let payload = json!({
            "url": url,
            "params": {"_csrf_token": csrf, "_mounts": 0},
            "session": session,
            "static": "",
        });
        let mut joined =
            test.socket.join(&test.topic, payload).await.map_err(LiveTestError::Join)?;
        let mut rendered = joined["rendered"].take();
        test.take_extras(&mut rendered);
        test.tree = rendered;
        test.last_reply = joined;
        Ok(test)
    }

    /// The view's HTML as the page shows it now.
    pub fn render(&self) -> String {
        let mut out = String::new();
        to_html(&self.tree, &mut out);
        out
    }

    /// Pushes a `phx-click` of `event` with `value` (the element's `phx-value-*`), and
    /// renders.
    pub async fn render_click(&mut self, event: &str, value: Value) -> String {
        self.push_event("click", event, value).await;
        self.render()
    }

    /// Pushes a `phx-change` of `event` with the form's fields, urlencoded as the client sends
    /// them (`room%5Bname%5D=x`), and renders.
    pub async fn render_change(&mut self, event: &str, form: &str) -> String {
        self.push_event("form", event, Value::String(form.to_owned())).await;
        self.render()
    }

    /// Pushes a `phx-submit` of `event` with the form's fields, urlencoded, and renders.
    pub async fn render_submit(&mut self, event: &str, form: &str) -> String {
        self.push_event("form", event, Value::String(form.to_owned())).await;
        self.render()
    }

    /// Follows a patch link to `path` (`/counter?step=5`), and renders.
    pub async fn render_patch(&mut self, path: &str) -> String {
        self.url = format!("http://localhost{path}");
        let payload = json!({ "url": self.url });
        self.push("live_patch", payload).await;
        self.render()
    }

    /// Waits for what the server pushes by itself (a broadcast's change) and renders.
    ///
    /// # Panics
    ///
    /// When nothing arrives within the socket's wait (2 s).
    pub async fn render_pushed(&mut self) -> String {
        let frame = self.next_push().await;
        self.apply_push(&frame);
        self.render()
    }

    /// Asserts that the last event's reply patched the URL to `to`.
    ///
    /// # Panics
    ///
    /// When it did not.
    #[track_caller]
    pub fn assert_patch(&self, to: &str) {
        assert_eq!(
            self.last_reply["live_patch"]["to"],
            json!(to),
            "no patch in {}",
            self.last_reply
        );
    }

    /// Asserts that the last event's reply navigated (live, or with a full redirect) to `to`.
    ///
    /// # Panics
    ///
    /// When it did not.
    #[track_caller]
    pub fn assert_redirect(&self, to: &str) {
        let to = json!(to);
        let navigated =
            self.last_reply["live_redirect"]["to"] == to || self.last_reply["redirect"]["to"] == to;
        assert!(navigated, "no redirect to {to} in {}", self.last_reply);
    }

    /// The events the view pushed (`push_event`) so far, as `[event, payload]` pairs.
    pub fn pushed_events(&self) -> &[Value] {
        &self.events
    }

    async fn push_event(&mut self, kind: &str, event: &str, value: Value) {
        self.push("event", json!({ "type": kind, "event": event, "value": value })).await;
    }

    async fn push(&mut self, event: &str, payload: Value) {
        let msg_ref = self.socket.push(&self.topic, event, payload);
        let reply = self.reply(&msg_ref).await;
        let mut response = reply["response"].clone();
        if reply["status"] == "ok" {
            if let Some(mut diff) = response.get_mut("diff").map(Value::take) {
                self.take_extras(&mut diff);
                merge(&mut self.tree, &diff);
            }
        }
        self.last_reply = response;
    }

    async fn reply(&mut self, msg_ref: &str) -> Value {
        loop {
            let frame = self.socket.next_frame().await.expect("a reply within the wait");
            if frame[3] == "phx_reply" && frame[1] == msg_ref {
                return frame[4].clone();
            }
            // A push that came first (a broadcast's change) is applied in its turn.
            self.apply_push(&frame);
        }
    }

    async fn next_push(&mut self) -> Value {
        self.socket.next_frame().await.expect("a push within the wait")
    }

    fn apply_push(&mut self, frame: &Value) {
        if frame[2] != json!(self.topic) {
            return;
        }
        match frame[3].as_str() {
            Some("diff") => {
                let mut diff = frame[4].clone();
                self.take_extras(&mut diff);
                merge(&mut self.tree, &diff);
            }
            Some(event @ ("live_patch" | "live_redirect" | "redirect")) => {
                self.last_reply = json!({ event: frame[4].clone() });
            }
            _ => {}
        }
    }

    /// Takes the title and events off a render or diff: they are not part of the tree.
    fn take_extras(&mut self, tree: &mut Value) {
        if let Some(tree) = tree.as_object_mut() {
            tree.remove("t");
            if let Some(Value::Array(events)) = tree.remove("e") {
                self.events.extend(events);
            }
        }
    }

    /// How long to wait for replies and pushes (default 2 s).
    #[must_use]
    pub fn wait(mut self, wait: Duration) -> Self {
        self.socket = self.socket.wait(wait);
        self
    }
}

/// Applies `diff` to `tree` as the official client's `Rendered` merges it.
fn merge(tree: &mut Value, diff: &Value) {
    if diff.get("s").is_some() {
        *tree = diff.clone();
        return;
    }
    merge_into(tree, diff);
}

fn merge_into(target: &mut Value, source: &Value) {
    let Some(source) = source.as_object() else { return };
    if let Some(keyed) = source.get("k").and_then(Value::as_object) {
        merge_keyed(target, keyed);
        return;
    }
    let Some(target) = target.as_object_mut() else { return };
    for (key, value) in source {
        match target.get_mut(key) {
            Some(old) if value.is_object() && value.get("s").is_none() && old.is_object() => {
                merge_into(old, value);
            }
            _ => {
                target.insert(key.clone(), value.clone());
            }
        }
    }
}

fn merge_keyed(target: &mut Value, keyed: &Map<String, Value>) {
    let Some(target) = target.as_object_mut() else { return };
    let old = target.get("k").cloned().unwrap_or_else(|| json!({}));
    let entries = target.entry("k").or_insert_with(|| json!({}));
    let Some(entries) = entries.as_object_mut() else { return };
    for (i, entry) in keyed {
        if i == "kc" || i == "km" {
            continue;
        }
        match entry {
            Value::Array(moved) => {
                let from = moved.first().map(ToString::to_string).unwrap_or_default();
                let mut moved_entry = old.get(&from).cloned().unwrap_or_else(|| json!({}));
                if let Some(diff) = moved.get(1) {
                    merge_into(&mut moved_entry, diff);
                }
                entries.insert(i.clone(), moved_entry);
            }
            Value::Number(from) => {
                let moved_entry = old.get(from.to_string()).cloned().unwrap_or_else(|| json!({}));
                entries.insert(i.clone(), moved_entry);
            }
            Value::Object(_) => {
                let slot = entries.entry(i.clone()).or_insert_with(|| json!({}));
                merge_into(slot, entry);
            }
            _ => {}
        }
    }
    let count = keyed.get("kc").and_then(Value::as_u64).unwrap_or(0);
    entries.retain(|k, _| k.parse::<u64>().map_or(true, |i| i < count));
    entries.insert("kc".to_owned(), json!(count));
}

/// The HTML of a rendered tree, as the client builds it.
fn to_html(node: &Value, out: &mut String) {
    match node {
        Value::String(html) => out.push_str(html),
        Value::Object(fields) => {
            let statics: Vec<&str> = fields
                .get("s")
                .and_then(Value::as_array)
                .map(|s| s.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(keyed) = fields.get("k") {
                let count = keyed.get("kc").and_then(Value::as_u64).unwrap_or(0);
                for i in 0..count {
                    if let Some(entry) = keyed.get(i.to_string()) {
                        parts(entry, &statics, out);
                    }
                }
            } else {
                parts(node, &statics, out);
            }
        }
        _ => {}
    }
}

fn parts(node: &Value, statics: &[&str], out: &mut String) {
    for (i, static_part) in statics.iter().enumerate() {
        out.push_str(static_part);
        if i + 1 < statics.len() {
            if let Some(dynamic) = node.get(i.to_string()) {
                to_html(dynamic, out);
            }
        }
    }
}
