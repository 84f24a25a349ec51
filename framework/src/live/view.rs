//! The `LiveView` trait and the socket a view changes the page through.

use std::future::Future;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value};

use super::Rendered;
use crate::conn::Assigns;

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

    /// The page, from the view's state.
    fn render(&self) -> Rendered;
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

/// What a live view reads (the app's state, the session, assigns) and asks of its page
/// (navigation, events for hooks, the title).
#[derive(Debug)]
pub struct LiveSocket<S = ()> {
    pub(crate) state: S,
    pub(crate) session: Map<String, Value>,
    pub(crate) connected: bool,
    pub(crate) assigns: Assigns,
    pub(crate) navigation: Option<Navigation>,
    pub(crate) events: Vec<(String, Value)>,
    pub(crate) title: Option<String>,
}

impl<S> LiveSocket<S> {
    pub(crate) fn new(state: S, session: Map<String, Value>, connected: bool) -> Self {
        Self {
            state,
            session,
            connected,
            assigns: Assigns::new(),
            navigation: None,
            events: Vec::new(),
            title: None,
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

    /// Sets the page's `<title>`.
    pub fn page_title(&mut self, title: impl Into<String>) {
        self.title = Some(title.into());
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

    fn render(&self) -> Rendered;
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

    fn render(&self) -> Rendered {
        LiveView::render(self)
    }
}

/// Mounts a view known by its type, behind a pointer.
pub(crate) type MountFn<S> =
    for<'a> fn(&'a Map<String, Value>, &'a mut LiveSocket<S>) -> BoxFuture<'a, Box<dyn DynView<S>>>;

pub(crate) fn mount_dyn<'a, V: LiveView<S>, S: Send + 'static>(
    params: &'a Map<String, Value>,
    socket: &'a mut LiveSocket<S>,
) -> BoxFuture<'a, Box<dyn DynView<S>>> {
    Box::pin(async move { Box::new(V::mount(params, socket).await) as Box<dyn DynView<S>> })
}
