//! The live socket: joins of `lv:<id>` topics mount views, events change them, and each
//! change goes back as a diff.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::flash::PageTree;
use super::page::{SessionToken, LIVEVIEW_VERSION, SESSION_MAX_AGE, SESSION_SALT};
use super::view::{mount_dyn, DynView, LiveMsg, LiveView, MountFn, Navigation};
use super::{Flash, LiveSocket, MemoCache};
use crate::channel::{Channel, ChannelSocket, Payload, Reply};
use crate::security::{FetchSession, SecretKeyBase, Token, TokenError, CSRF_TOKEN_KEY};
use crate::socket::{Channels, ConnectInfo, Refused, Socket};

/// The socket live pages connect to (`new LiveSocket("/live", Socket, …)` in the page), with
/// the views it serves by path. Mount it in `router!` with `socket "/live" => …`.
///
/// `session` is the session plug of the pages' pipeline: the socket reads the session cookie
/// the browser sends with it, and a join must carry a CSRF token of that session (the page
/// passes it as `params: {_csrf_token}`). `state` reaches every view's
/// [`LiveSocket::state`].
///
/// # Examples
///
/// ```
/// use fawkes::live::{html, LiveSocket, LiveView, Rendered};
/// use fawkes::security::{fetch_session, SecretKeyBase, SessionConfig};
/// use serde_json::{Map, Value};
///
/// struct Hello;
///
/// impl LiveView for Hello {
///     type Info = ();
///
///     async fn mount(_: &Map<String, Value>, _: &mut LiveSocket) -> Self {
///         Hello
///     }
///     async fn handle_event(&mut self, _: &str, _: Value, _: &mut LiveSocket) {}
///     fn render(&self) -> Rendered {
///         html!("<p>hello</p>")
///     }
/// }
///
/// fn session() -> fawkes::security::FetchSession {
///     fetch_session(SessionConfig::from_endpoint())
/// }
///
/// fawkes::router! {
///     pub App;
///     pipeline browser { plug session(); plug fawkes::security::protect_from_forgery(); }
///     socket "/live" => fawkes::live::socket((), session()).view::<Hello>("/hello");
///     scope "/" { pipe_through browser; get "/hello" => fawkes::live::page::<Hello, ()>; }
/// }
/// # let _ = App::new();
/// ```
pub fn socket<S: Clone + Send + Sync + 'static>(state: S, session: FetchSession) -> Live<S> {
    Live { views: matchit::Router::new(), names: HashMap::new(), state, session }
}

/// See [`socket`].
pub struct Live<S> {
    views: matchit::Router<(&'static str, MountFn<S>)>,
    names: HashMap<&'static str, MountFn<S>>,
    state: S,
    session: FetchSession,
}

impl<S> std::fmt::Debug for Live<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.names.keys().copied().collect();
        names.sort_unstable();
        f.debug_struct("Live").field("views", &names).finish_non_exhaustive()
    }
}

impl<S: Clone + Send + Sync + 'static> Live<S> {
    /// Serves `V` at `path` (a route pattern, as in `router!`: `/rooms/:id`), the path of
    /// the page that renders it with [`page`](super::page): a live navigation to a URL under
    /// `path` mounts `V`.
    ///
    /// # Panics
    ///
    /// When `path` is not a valid pattern or another view has it.
    #[must_use]
    #[track_caller]
    pub fn view<V: LiveView<S>>(mut self, path: &str) -> Self {
        let name = std::any::type_name::<V>();
        let mount: MountFn<S> = mount_dyn::<V, S>;
        if let Err(err) = self.views.insert(matchit_pattern(path), (name, mount)) {
            panic!("live view {name} at `{path}`: {err}");
        }
        self.names.insert(name, mount);
        self
    }
}

/// `/rooms/:id/*rest` as matchit writes it: `/rooms/{id}/{*rest}`.
fn matchit_pattern(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if let Some(name) = segment.strip_prefix(':') {
                format!("{{{name}}}")
            } else if let Some(name) = segment.strip_prefix('*') {
                format!("{{*{name}}}")
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// What the socket learned when the browser connected, for its joins.
#[derive(Clone)]
struct Connected {
    session: Option<Map<String, Value>>,
    key_base: Option<SecretKeyBase>,
    client: super::view::Client,
}

/// The views and the app's state, shared by every live channel of the socket.
pub(crate) struct Views<S> {
    by_path: matchit::Router<(&'static str, MountFn<S>)>,
    by_name: HashMap<&'static str, MountFn<S>>,
    state: S,
}

impl<S: Clone + Send + Sync + 'static> Socket for Live<S> {
    async fn connect(
        &self,
        _params: &Map<String, Value>,
        info: &ConnectInfo,
    ) -> Result<crate::Assigns, Refused> {
        let session = self.session.read_headers(&info.headers, info.secret_key_base.as_ref());
        let mut assigns = crate::Assigns::new();
        let client =
            super::view::Client { peer: info.peer, headers: Arc::new(info.headers.clone()) };
        assigns.insert(Connected { session, key_base: info.secret_key_base.clone(), client });
        Ok(assigns)
    }

    fn channels(&self) -> Channels {
        let views = Views {
            by_path: self.views.clone(),
            by_name: self.names.clone(),
            state: self.state.clone(),
        };
        Channels::new().channel_with::<LiveChannel<S>, _>("lv:*", Arc::new(views))
    }
}

/// `phx_join` on `lv:<id>`.
#[derive(Deserialize)]
struct Join {
    #[serde(default)]
    url: Option<String>,
    /// A live navigation: the new URL, joined with the old page's session token.
    #[serde(default)]
    redirect: Option<String>,
    #[serde(default)]
    params: Map<String, Value>,
    session: String,
    /// The flash a live navigation carries from the page before.
    #[serde(default)]
    flash: Option<String>,
}

/// A running view on its channel.
pub(crate) struct LiveChannel<S> {
    view: Box<dyn DynView<S>>,
    live: LiveSocket<S>,
    /// What the client has: diffs are computed against it.
    last: PageTree,
    /// Signs the flash that follows a navigation.
    key_base: SecretKeyBase,
    /// The parts of the last render that `memo` may keep.
    memo: MemoCache,
}

/// Where the page goes, as the client reads it: the push's (or the join error's) event name
/// and payload. A navigation away carries the flash put since the last answer.
fn navigation_json(
    navigation: Navigation,
    flash: &Flash,
    key_base: &SecretKeyBase,
) -> (&'static str, Value) {
    let (event, mut payload) = match navigation {
        Navigation::Patch(to) => return ("live_patch", json!({ "to": to, "kind": "push" })),
        Navigation::Navigate(to) => ("live_redirect", json!({ "to": to, "kind": "push" })),
        Navigation::Redirect(to) => ("redirect", json!({ "to": to })),
    };
    if !flash.is_empty() {
        payload["flash"] = Value::String(flash.sign(key_base));
    }
    (event, payload)
}

fn refuse(reason: &str) -> Value {
    json!({ "reason": reason })
}

/// The path and the query params of `url` (absolute, as the client sends it, or a path).
fn split_url(url: &str) -> (String, Map<String, Value>) {
    let rest = match url.find("://") {
        Some(scheme) => {
            let after = &url[scheme + 3..];
            after.find('/').map_or("/", |slash| &after[slash..])
        }
        None => url,
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let params = crate::conn::params::decode(query, crate::conn::ParamsLimits::default())
        .unwrap_or_default();
    (path.to_owned(), params)
}

impl<S> LiveChannel<S> {
    /// The params of `url` and the view mounted at its path, with its path params.
    fn route(
        views: &Views<S>,
        url: &str,
    ) -> Option<(&'static str, MountFn<S>, Map<String, Value>)> {
        let (path, mut params) = split_url(url);
        let found = views.by_path.at(&path).ok()?;
        for (name, value) in found.params.iter() {
            params.insert(name.to_owned(), Value::String(value.to_owned()));
        }
        let (name, mount) = *found.value;
        Some((name, mount, params))
    }
}

impl<S: Clone + Send + Sync + 'static> Channel<Arc<Views<S>>> for LiveChannel<S> {
    type Info = LiveMsg;

    async fn join(
        topic: &str,
        payload: Payload,
        socket: &mut ChannelSocket<Arc<Views<S>>>,
    ) -> Result<(Self, Value), Value> {
        let join: Join = payload.decode().map_err(|_| refuse("unauthorized"))?;
        let Some(connected) = socket.get_assign::<Connected>().cloned() else {
            return Err(refuse("unauthorized"));
        };
        // The page hands the client a CSRF token of the session its cookie holds.
        let csrf = join.params.get(CSRF_TOKEN_KEY).and_then(Value::as_str);
        let csrf_ok = match (&connected.session, csrf) {
            (Some(session), Some(token)) => {
                crate::security::csrf::valid_for_session(session, token)
            }
            _ => false,
        };
        if !csrf_ok {
            tracing::debug!(topic, "refusing a live view: missing or invalid CSRF token");
            return Err(refuse("unauthorized"));
        }
        let Some(key_base) = &connected.key_base else {
            tracing::error!(
                "the live socket needs the endpoint's secret: set Endpoint::secret_key_base"
            );
            return Err(refuse("unauthorized"));
        };
        let token: SessionToken =
            match Token::verify(key_base, SESSION_SALT, &join.session, SESSION_MAX_AGE) {
                Ok(token) => token,
                // An old page: the client reloads it and gets a fresh token.
                Err(TokenError::Expired) => return Err(refuse("stale")),
                Err(_) => return Err(refuse("unauthorized")),
            };
        if topic.strip_prefix("lv:") != Some(token.id.as_str()) {
            return Err(refuse("unauthorized"));
        }
        // The page was rendered for the session this socket's cookie holds, not another's.
        let tag = connected.session.as_ref().and_then(crate::security::csrf::session_tag);
        if tag.as_deref() != Some(token.c.as_str()) {
            tracing::debug!(
                topic,
                "refusing a live view: its page was rendered for another session"
            );
            return Err(refuse("unauthorized"));
        }
        let views = socket.state().clone();
        let url = match (&join.url, &join.redirect) {
            (Some(url), _) | (None, Some(url)) => url.clone(),
            (None, None) => return Err(refuse("unauthorized")),
        };
        let (name, mount, params) = match Self::route(&views, &url) {
            Some(found) => found,
            None if join.redirect.is_some() => {
                // Navigated to a path no view here serves: load it as a page.
                return Err(json!({ "redirect": { "to": url } }));
            }
            None => match views.by_name.get(token.v.as_str()) {
                Some(mount) => (token.v.as_str(), *mount, split_url(&url).1),
                None => return Err(refuse("unauthorized")),
            },
        };
        // A page's own join mounts the view its token names; a live navigation may mount
        // another view of this socket.
        if join.redirect.is_none() && name != token.v {
            return Err(refuse("unauthorized"));
        }
        let mut live = LiveSocket::new(views.state.clone(), token.s, true);
        // A navigation's flash; else, on the page's first join, the one its HTTP render showed.
        let first_mount = join.params.get("_mounts").and_then(Value::as_u64) == Some(0);
        live.flash = match &join.flash {
            Some(flash) => Flash::verify(key_base, flash),
            None if first_mount && join.redirect.is_none() => token.f,
            None => Flash::default(),
        };
        live.client = Some(connected.client.clone());
        live.assigns = socket.assigns().clone();
        live.pubsub = Some(socket.pubsub().clone());
        live.mailbox = Some(socket.handle::<LiveMsg>());
        let mut view = mount(&params, &mut live).await;
        view.handle_params(&params, &url, &mut live).await;
        match live.navigation.take() {
            Some(Navigation::Patch(to)) => live.navigation = Some(Navigation::Patch(to)),
            Some(away) => {
                let (event, payload) = navigation_json(away, &live.flash_put, key_base);
                return Err(Value::Object(Map::from_iter([(event.to_owned(), payload)])));
            }
            None => {}
        }
        live.flash_put.clear();
        let mut memo = MemoCache::default();
        let rendered = memo.render(|| view.render(&live.flash));
        let mut tree = rendered.to_json();
        decorate(&mut tree, &mut live);
        let mut reply = json!({ "rendered": tree, "liveview_version": LIVEVIEW_VERSION });
        if let Some(Navigation::Patch(to)) = live.navigation.take() {
            reply["live_patch"] = json!({ "to": to, "kind": "replace" });
        }
        Ok((Self { view, live, last: rendered, key_base: key_base.clone(), memo }, reply))
    }

    async fn handle_info(&mut self, message: LiveMsg, socket: &mut ChannelSocket<Arc<Views<S>>>) {
        self.view.handle_info(message, &mut self.live).await;
        // Nobody asked: what changed, and where the page goes, is pushed.
        let Reply::Ok(Payload::Json(Value::Object(mut response))) = self.reply().await else {
            return;
        };
        for event in ["live_patch", "live_redirect", "redirect"] {
            if let Some(to) = response.remove(event) {
                socket.push(event, to);
            }
        }
        if let Some(diff) = response.remove("diff") {
            socket.push("diff", diff);
        }
    }

    async fn handle_in(
        &mut self,
        event: &str,
        payload: Payload,
        _socket: &mut ChannelSocket<Arc<Views<S>>>,
    ) -> Reply {
        let body = payload.as_json().cloned().unwrap_or(Value::Null);
        match event {
            "event" => {
                let Some(name) = body.get("event").and_then(Value::as_str) else {
                    return Reply::error(refuse("an event needs a name"));
                };
                if name == "lv:clear-flash" {
                    // `phx-click="lv:clear-flash"`, with `phx-value-key` for one kind.
                    match body.pointer("/value/key").and_then(Value::as_str) {
                        Some(kind) => self.live.clear_flash(kind),
                        None => self.live.clear_flashes(),
                    }
                    return self.reply().await;
                }
                let value = match (body.get("type").and_then(Value::as_str), body.get("value")) {
                    // A form's fields, urlencoded with nested brackets, as a controller's.
                    (Some("form"), Some(Value::String(form))) => {
                        match crate::conn::params::decode(
                            form,
                            crate::conn::ParamsLimits::default(),
                        ) {
                            Ok(fields) => Value::Object(fields),
                            Err(_) => return Reply::error(refuse("malformed form")),
                        }
                    }
                    (_, Some(value)) => value.clone(),
                    (_, None) => Value::Object(Map::new()),
                };
                self.view.handle_event(name, value, &mut self.live).await;
                self.reply().await
            }
            "live_patch" => {
                let Some(url) = body.get("url").and_then(Value::as_str) else {
                    return Reply::error(refuse("a patch needs a url"));
                };
                let (_, params) = split_url(url);
                // A new URL starts without the old one's flash, as in Phoenix.
                self.live.clear_flashes();
                self.view.handle_params(&params, url, &mut self.live).await;
                self.reply().await
            }
            "cids_will_destroy" => Reply::ok(json!({})),
            "cids_destroyed" => {
                Reply::ok(json!({ "cids": body.get("cids").cloned().unwrap_or(json!([])) }))
            }
            _ => Reply::error(refuse("unknown event")),
        }
    }
}

impl<S: Send> LiveChannel<S> {
    /// Renders, and answers the push with what changed and where the page goes.
    async fn reply(&mut self) -> Reply {
        let mut response = Map::new();
        // A patch runs `handle_params` first, so the diff shows the page at its new URL.
        if let Some(Navigation::Patch(to)) = &self.live.navigation {
            let to = to.clone();
            let (_, params) = split_url(&to);
            self.view.handle_params(&params, &to, &mut self.live).await;
            response.insert("live_patch".to_owned(), json!({ "to": to, "kind": "push" }));
        }
        match self.live.navigation.take() {
            Some(Navigation::Patch(_)) | None => {}
            Some(away) => {
                let (event, payload) = navigation_json(away, &self.live.flash_put, &self.key_base);
                response.insert(event.to_owned(), payload);
                // What was put for the next page is not shown on this one.
                let put = std::mem::take(&mut self.live.flash_put);
                for (kind, _) in put.iter() {
                    self.live.flash.remove(kind);
                }
            }
        }
        self.live.flash_put.clear();
        let (view, flash) = (&self.view, &self.live.flash);
        let rendered = self.memo.render(|| view.render(flash));
        let mut diff = rendered.diff(&self.last).unwrap_or_else(|| Value::Object(Map::new()));
        self.last = rendered;
        decorate(&mut diff, &mut self.live);
        if diff.as_object().is_some_and(|d| !d.is_empty()) {
            response.insert("diff".to_owned(), diff);
        }
        Reply::ok(Value::Object(response))
    }
}

/// Adds to a render or a diff the title and the events the view set since the last one.
fn decorate<S>(tree: &mut Value, live: &mut LiveSocket<S>) {
    let Some(tree) = tree.as_object_mut() else { return };
    if let Some(title) = live.title.take() {
        tree.insert("t".to_owned(), Value::String(title));
    }
    if !live.events.is_empty() {
        let events: Vec<Value> =
            live.events.drain(..).map(|(event, payload)| json!([event, payload])).collect();
        tree.insert("e".to_owned(), Value::Array(events));
    }
}
