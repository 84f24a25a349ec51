//! The `LiveView` trait and the socket a view changes the page through.

use std::any::{Any, TypeId};
use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value};

use super::flash::{flash_group, PageTree};
use super::{Flash, Rendered};
use crate::channel::ChannelHandle;
use crate::conn::Assigns;
use crate::pubsub::{Broadcast, Deliver, PubSub, SubscriberId};

/// A live page: state on the server, rendered with [`html!`](crate::live::html), changed by
/// the browser's events. `S` is the application's state, as actions get it with
/// [`State`](crate::State) (`()` for a view that needs none).
///
/// The view is mounted twice, as in Phoenix: once for the plain HTTP render (not connected),
/// then again when the page's client joins over the live socket; from then on each event runs
/// [`LiveView::handle_event`], the view renders again and the client gets only the dynamics
/// that changed.
///
/// # Examples
///
/// ```
/// use fawkes::live::{html, LiveSocket, LiveView, Rendered};
/// use serde_json::{Map, Value};
///
/// struct Counter {
///     count: i64,
/// }
///
/// impl LiveView for Counter {
///     type Info = ();
///
///     async fn mount(_params: &Map<String, Value>, _socket: &mut LiveSocket) -> Self {
///         Counter { count: 0 }
///     }
///
///     async fn handle_event(&mut self, event: &str, _value: Value, _socket: &mut LiveSocket) {
///         match event {
///             "inc" => self.count += 1,
///             "dec" => self.count -= 1,
///             _ => {}
///         }
///     }
///
///     fn render(&self) -> Rendered {
///         let count = self.count;
///         html!("<span id=\"count\">{count}</span><button phx-click=\"inc\">+</button>")
///     }
/// }
/// ```
pub trait LiveView<S = ()>: Sized + Send + 'static {
    /// The view's own messages, sent through a [`LiveHandle`] (a timer's tick, a task's
    /// result): `()` for a view that gets none.
    type Info: Send + 'static;

    /// Builds the view from the URL's params (query and path).
    fn mount(
        params: &Map<String, Value>,
        socket: &mut LiveSocket<S>,
    ) -> impl Future<Output = Self> + Send;

    /// Runs after `mount` and on every live patch (a link or [`LiveSocket::push_patch`]
    /// changing the URL without a page load), with the URL's params.
    fn handle_params(
        &mut self,
        _params: &Map<String, Value>,
        _url: &str,
        _socket: &mut LiveSocket<S>,
    ) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Handles an event from the page: `phx-click` (the value holds the element's
    /// `phx-value-*` attributes), `phx-change`/`phx-submit` (the form's fields, decoded into
    /// nested objects as a controller's params are), key events, hooks.
    fn handle_event(
        &mut self,
        event: &str,
        value: Value,
        socket: &mut LiveSocket<S>,
    ) -> impl Future<Output = ()> + Send;

    /// Handles a broadcast on a topic the view subscribed to ([`LiveSocket::subscribe`]) or a
    /// message of its own; the page then gets what changed, as after an event.
    fn handle_info(
        &mut self,
        _info: Info<Self::Info>,
        _socket: &mut LiveSocket<S>,
    ) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// The page, from the view's state.
    fn render(&self) -> Rendered;

    /// The flash messages ([`LiveSocket::put_flash`]), shown after the view's HTML inside its
    /// container: [`flash_group`]'s markup unless the view gives its own.
    fn render_flash(flash: &Flash) -> Rendered {
        flash_group(flash)
    }
}

/// What reaches [`LiveView::handle_info`].
#[derive(Debug)]
pub enum Info<M> {
    /// A broadcast on a topic the view subscribed to.
    Broadcast(Arc<Broadcast>),
    /// One of the view's own messages.
    Message(M),
}

/// A message to a live view's channel task.
pub(crate) enum LiveMsg {
    Broadcast(Arc<Broadcast>),
    Message(Box<dyn Any + Send>),
}

/// Forwards a topic's broadcasts to a view's task.
struct Forward(ChannelHandle<LiveMsg>);

impl Deliver for Forward {
    fn deliver(&self, msg: &Arc<Broadcast>) {
        // A full mailbox drops the broadcast, as a slow channel's would be.
        let _ = self.0.send(LiveMsg::Broadcast(msg.clone()));
    }
}

/// Sends a running view messages of its [`Info`](LiveView::Info) type.
pub struct LiveHandle<M> {
    inner: ChannelHandle<LiveMsg>,
    message: std::marker::PhantomData<fn(M)>,
}

impl<M> Clone for LiveHandle<M> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), message: std::marker::PhantomData }
    }
}

impl<M> std::fmt::Debug for LiveHandle<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveHandle").field("alive", &self.inner.is_alive()).finish()
    }
}

impl<M: Send + 'static> LiveHandle<M> {
    /// Sends `message` to the view's [`LiveView::handle_info`].
    ///
    /// # Errors
    ///
    /// The message comes back when the view has stopped.
    pub fn send(&self, message: M) -> Result<(), M> {
        match self.inner.send(LiveMsg::Message(Box::new(message))) {
            Ok(()) => Ok(()),
            Err(LiveMsg::Message(back)) => {
                Err(*back.downcast::<M>().unwrap_or_else(|_| unreachable!("boxed as M above")))
            }
            Err(LiveMsg::Broadcast(_)) => unreachable!("sent a message"),
        }
    }

    /// Whether the view is still running.
    pub fn is_alive(&self) -> bool {
        self.inner.is_alive()
    }
}

/// Where the page goes after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Navigation {
    /// The same view, another URL: `handle_params` runs, no page load.
    Patch(String),
    /// Another live view, without a page load.
    Navigate(String),
    /// A full page load.
    Redirect(String),
}

/// Who the live socket's client is: its address and the headers it connected with.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub(crate) peer: Option<std::net::SocketAddr>,
    pub(crate) headers: Arc<http::HeaderMap>,
}

/// What a live view reads (the app's state, the session, assigns) and asks of its page
/// (navigation, events for hooks, the title).
#[derive(Debug)]
pub struct LiveSocket<S = ()> {
    pub(crate) state: S,
    /// Only once connected: the pubsub and the view's task, for subscriptions and handles.
    pub(crate) pubsub: Option<PubSub>,
    pub(crate) mailbox: Option<ChannelHandle<LiveMsg>>,
    subscriptions: Vec<(String, SubscriberId)>,
    /// The view's `Info` type, which its handles send.
    pub(crate) info: (TypeId, &'static str),
    pub(crate) session: Map<String, Value>,
    pub(crate) connected: bool,
    pub(crate) assigns: Assigns,
    pub(crate) navigation: Option<Navigation>,
    pub(crate) events: Vec<(String, Value)>,
    pub(crate) title: Option<String>,
    pub(crate) flash: Flash,
    /// What `put_flash` added since the last answer: it follows a navigation to the next page.
    pub(crate) flash_put: Flash,
    /// Once connected: the client's address and the headers of its socket's request.
    pub(crate) client: Option<Client>,
}

impl<S> LiveSocket<S> {
    pub(crate) fn new(state: S, session: Map<String, Value>, connected: bool) -> Self {
        Self {
            state,
            pubsub: None,
            mailbox: None,
            subscriptions: Vec::new(),
            info: (TypeId::of::<()>(), "()"),
            session,
            connected,
            assigns: Assigns::new(),
            navigation: None,
            events: Vec::new(),
            title: None,
            flash: Flash::default(),
            flash_put: Flash::default(),
            client: None,
        }
    }

    /// The application's state, as the socket was routed with it.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The browser session as it was when the page was rendered (its CSRF secret left out).
    pub fn session(&self) -> &Map<String, Value> {
        &self.session
    }

    /// Whether the view runs over the live socket (false during the plain HTTP render).
    pub fn connected(&self) -> bool {
        self.connected
    }

    /// The view's assigns.
    pub fn assigns(&self) -> &Assigns {
        &self.assigns
    }

    /// Stores a typed assign.
    pub fn assign<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        self.assigns.insert(value);
    }

    /// A typed assign.
    pub fn get_assign<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.assigns.get::<T>()
    }

    /// Changes the URL to `to` (a path, with its query) without a page load:
    /// [`LiveView::handle_params`] runs with its params, and the browser's history gets an
    /// entry.
    pub fn push_patch(&mut self, to: impl Into<String>) {
        self.navigation = Some(Navigation::Patch(to.into()));
    }

    /// Goes to another live view at `to` without a full page load.
    pub fn push_navigate(&mut self, to: impl Into<String>) {
        self.navigation = Some(Navigation::Navigate(to.into()));
    }

    /// Leaves for `to` with a full page load (a page that is not live, another site's).
    pub fn redirect(&mut self, to: impl Into<String>) {
        self.navigation = Some(Navigation::Redirect(to.into()));
    }

    /// Sends `event` with `payload` to the page: a `phx:<event>` window event, and to hooks
    /// that `handleEvent` it.
    pub fn push_event(&mut self, event: impl Into<String>, payload: Value) {
        self.events.push((event.into(), payload));
    }

    /// Shows `message` as the flash of `kind` (`"info"`, `"error"`…), replacing the one before
    /// it. Put before [`push_navigate`](Self::push_navigate) or [`redirect`](Self::redirect),
    /// it shows on the next page instead, as Phoenix's does.
    pub fn put_flash(&mut self, kind: impl Into<String>, message: impl Into<String>) {
        let (kind, message) = (kind.into(), message.into());
        self.flash_put.put(kind.clone(), message.clone());
        self.flash.put(kind, message);
    }

    /// Removes the flash of `kind`.
    pub fn clear_flash(&mut self, kind: &str) {
        self.flash.remove(kind);
        self.flash_put.remove(kind);
    }

    /// Removes every flash message.
    pub fn clear_flashes(&mut self) {
        self.flash.clear();
        self.flash_put.clear();
    }

    /// The flash messages the page shows.
    pub fn flash(&self) -> &Flash {
        &self.flash
    }

    /// Sets the page's `<title>`.
    pub fn page_title(&mut self, title: impl Into<String>) {
        self.title = Some(title.into());
    }

    /// The address the live socket's connection came from, once connected (`None` during the
    /// HTTP render, which is one request: its conn has it).
    pub fn peer(&self) -> Option<std::net::SocketAddr> {
        self.client.as_ref()?.peer
    }

    /// The headers of the live socket's request (its cookie, `X-Forwarded-For`…), once
    /// connected.
    pub fn request_headers(&self) -> Option<&http::HeaderMap> {
        self.client.as_ref().map(|client| &*client.headers)
    }

    /// Counts one request of this view's client against `limit` (a
    /// [`rate_limit`](crate::security::rate_limit) the app shares with its HTTP routes): for
    /// what an event writes. `Ok` before the view is connected.
    ///
    /// # Errors
    ///
    /// How long until the client may again, when it is over the limit.
    pub fn rate_limit(
        &self,
        limit: &crate::security::RateLimit,
    ) -> Result<(), std::time::Duration> {
        let Some(Client { peer: Some(peer), headers }) = &self.client else { return Ok(()) };
        limit.check(limit.client_ip(peer.ip(), headers))
    }

    /// The pubsub, once connected (`None` during the HTTP render).
    pub fn pubsub(&self) -> Option<&PubSub> {
        self.pubsub.as_ref()
    }

    /// Subscribes the view to `topic`: its broadcasts reach [`LiveView::handle_info`] as
    /// [`Info::Broadcast`], until the view stops. Does nothing before the view is connected
    /// (the HTTP render lasts one request), as Phoenix's `if connected?(socket)` guards.
    pub fn subscribe(&mut self, topic: &str) {
        let (Some(pubsub), Some(mailbox)) = (&self.pubsub, &self.mailbox) else { return };
        if self.subscriptions.iter().any(|(t, _)| t == topic) {
            return;
        }
        let id = pubsub.subscribe_sink(topic, Arc::new(Forward(mailbox.clone())));
        self.subscriptions.push((topic.to_owned(), id));
    }

    /// A handle other tasks send the view its own messages with (`None` before the view is
    /// connected). `M` is the view's [`Info`](LiveView::Info) type.
    ///
    /// # Panics
    ///
    /// When `M` is not the view's `Info` type.
    pub fn handle<M: Send + 'static>(&self) -> Option<LiveHandle<M>> {
        let (info, name) = self.info;
        assert!(
            TypeId::of::<M>() == info,
            "a handle sending {} to a live view whose Info is {name}",
            std::any::type_name::<M>()
        );
        let inner = self.mailbox.clone()?;
        Some(LiveHandle { inner, message: std::marker::PhantomData })
    }
}

impl<S> Drop for LiveSocket<S> {
    fn drop(&mut self) {
        if let Some(pubsub) = &self.pubsub {
            for (topic, id) in self.subscriptions.drain(..) {
                pubsub.unsubscribe(&topic, id);
            }
        }
    }
}

/// A view behind a pointer, for the socket that runs views it knows by name.
pub(crate) trait DynView<S>: Send {
    fn handle_params<'a>(
        &'a mut self,
        params: &'a Map<String, Value>,
        url: &'a str,
        socket: &'a mut LiveSocket<S>,
    ) -> BoxFuture<'a, ()>;

    fn handle_event<'a>(
        &'a mut self,
        event: &'a str,
        value: Value,
        socket: &'a mut LiveSocket<S>,
    ) -> BoxFuture<'a, ()>;

    fn handle_info<'a>(
        &'a mut self,
        msg: LiveMsg,
        socket: &'a mut LiveSocket<S>,
    ) -> BoxFuture<'a, ()>;

    fn render(&self, flash: &Flash) -> PageTree;
}

impl<V: LiveView<S>, S: Send> DynView<S> for V {
    fn handle_params<'a>(
        &'a mut self,
        params: &'a Map<String, Value>,
        url: &'a str,
        socket: &'a mut LiveSocket<S>,
    ) -> BoxFuture<'a, ()> {
        Box::pin(LiveView::handle_params(self, params, url, socket))
    }

    fn handle_event<'a>(
        &'a mut self,
        event: &'a str,
        value: Value,
        socket: &'a mut LiveSocket<S>,
    ) -> BoxFuture<'a, ()> {
        Box::pin(LiveView::handle_event(self, event, value, socket))
    }

    fn handle_info<'a>(
        &'a mut self,
        msg: LiveMsg,
        socket: &'a mut LiveSocket<S>,
    ) -> BoxFuture<'a, ()> {
        let info = match msg {
            LiveMsg::Broadcast(broadcast) => Info::Broadcast(broadcast),
            LiveMsg::Message(message) => match message.downcast::<V::Info>() {
                Ok(message) => Info::Message(*message),
                // `LiveSocket::handle` makes handles of the view's own type only.
                Err(_) => return Box::pin(async {}),
            },
        };
        Box::pin(LiveView::handle_info(self, info, socket))
    }

    fn render(&self, flash: &Flash) -> PageTree {
        PageTree { view: LiveView::render(self), flash: V::render_flash(flash) }
    }
}

/// Mounts a view known by its type, behind a pointer.
pub(crate) type MountFn<S> =
    for<'a> fn(&'a Map<String, Value>, &'a mut LiveSocket<S>) -> BoxFuture<'a, Box<dyn DynView<S>>>;

pub(crate) fn mount_dyn<'a, V: LiveView<S>, S: Send + 'static>(
    params: &'a Map<String, Value>,
    socket: &'a mut LiveSocket<S>,
) -> BoxFuture<'a, Box<dyn DynView<S>>> {
    socket.info = (TypeId::of::<V::Info>(), std::any::type_name::<V::Info>());
    Box::pin(async move { Box::new(V::mount(params, socket).await) as Box<dyn DynView<S>> })
}
