//! The first, plain HTTP render of a live page, and the token that lets its client join.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::flash::{PageTree, FLASH_COOKIE};
use super::view::{LiveView, Navigation};
use super::{escape, Flash, LiveSocket};
use crate::controller::{ActionError, RenderError as _};
use crate::security::{get_csrf_token, Token, CSRF_TOKEN_KEY};
use crate::{Conn, State};

/// What `data-phx-session` is signed for.
pub(crate) const SESSION_SALT: &str = "fawkes live view session";

/// How long a rendered page may join: after that its client reloads it (Phoenix's two weeks).
pub(crate) const SESSION_MAX_AGE: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// The `phoenix_live_view` client version this server speaks to (sent with each join).
pub const LIVEVIEW_VERSION: &str = "1.2.12";

/// `data-phx-session`: the view a page renders, its container's id, and the session it was
/// rendered with.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SessionToken {
    /// The view's type name.
    pub(crate) v: String,
    /// The container's id: the topic is `lv:<id>`.
    pub(crate) id: String,
    /// The browser session, without its CSRF secret.
    pub(crate) s: Map<String, Value>,
    /// A tag of the session's CSRF secret: the token joins only from a socket whose cookie
    /// holds the same session.
    pub(crate) c: String,
    /// The flash this render showed: the page's first join shows it too.
    #[serde(default, skip_serializing_if = "Flash::is_empty")]
    pub(crate) f: Flash,
}

/// What a root layout is given to wrap a live page.
#[derive(Debug)]
#[non_exhaustive]
pub struct LayoutContext<'a> {
    /// The live view's container, with the view's HTML inside: put it in the `<body>`.
    pub inner: &'a str,
    /// A CSRF token of the session, for `new LiveSocket("/live", Socket, {params:
    /// {_csrf_token}})` (the client reads it from the page) and for forms.
    pub csrf_token: &'a str,
    /// The title the view set with [`LiveSocket::page_title`], if any.
    pub title: Option<&'a str>,
}

/// The document a live page is rendered in (Phoenix's root layout): it loads the client and
/// connects the live socket. Put it with [`put_root_layout`] in the pipeline of live routes.
#[derive(Clone)]
pub struct RootLayout(Arc<dyn Fn(&LayoutContext<'_>) -> String + Send + Sync>);

impl std::fmt::Debug for RootLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootLayout")
    }
}

/// A plug that makes `layout` the root layout of the live pages after it.
///
/// # Examples
///
/// ```
/// use fawkes::live::{put_root_layout, LayoutContext};
///
/// fn root(page: &LayoutContext<'_>) -> String {
///     format!(
///         "<!DOCTYPE html><html><head><meta name=\"csrf-token\" content=\"{}\"></head><body>{}</body></html>",
///         page.csrf_token, page.inner
///     )
/// }
///
/// fawkes::router! {
///     pub App;
///     pipeline browser { plug put_root_layout(root); }
/// }
/// # let _ = App::new();
/// ```
pub fn put_root_layout(
    layout: impl Fn(&LayoutContext<'_>) -> String + Send + Sync + 'static,
) -> PutRootLayout {
    PutRootLayout(RootLayout(Arc::new(layout)))
}

/// See [`put_root_layout`].
#[derive(Debug, Clone)]
pub struct PutRootLayout(RootLayout);

impl crate::Plug for PutRootLayout {
    async fn call(&self, conn: Conn) -> Conn {
        conn.assign(self.0.clone())
    }
}

/// The layout pages get without [`put_root_layout`]: the container in a bare document. It
/// loads no client, so the page is rendered but not live.
fn bare_layout(page: &LayoutContext<'_>) -> String {
    let title = page.title.map(escape).unwrap_or_default();
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"csrf-token\" content=\"{}\"></head><body>{}</body></html>",
        page.csrf_token, page.inner
    )
}

/// The action that renders the live view `V` at its route: mounts it (not connected), runs
/// `handle_params`, renders it in a container the client joins, inside the root layout.
///
/// The route's pipeline must fetch the session (the page carries a CSRF token the socket
/// checks) and the endpoint must have a secret key base (the container's token is signed
/// with it); without them the page answers 500 and says why in the log.
pub async fn page<V, S>(mut conn: Conn, state: State<S>) -> Conn
where
    V: LiveView<S>,
    S: Clone + Send + Sync + 'static,
{
    let Some(session) = crate::security::session::fetched(&conn) else {
        tracing::error!(
            view = std::any::type_name::<V>(),
            "a live page needs the session: pipe its route through a pipeline with fetch_session"
        );
        return ActionError::internal().render(conn);
    };
    let Some(key_base) = conn.secret_key_base().cloned() else {
        tracing::error!(
            view = std::any::type_name::<V>(),
            "a live page signs its token with the endpoint's secret: set Endpoint::secret_key_base"
        );
        return ActionError::internal().render(conn);
    };
    let mut session = session.clone();
    session.remove(CSRF_TOKEN_KEY);
    let mut params = conn.query_params().clone();
    for (name, value) in conn.path_params() {
        params.insert(name.to_owned(), Value::String(value.to_owned()));
    }
    let url = conn.uri().to_string();
    let mut socket = LiveSocket::new(S::clone(&state), session.clone(), false);
    socket.info = (std::any::TypeId::of::<V::Info>(), std::any::type_name::<V::Info>());
    // The flash a live page sent along with a full page load to this one.
    let (conn_after, flash) = take_flash_cookie(conn, &key_base);
    conn = conn_after;
    socket.flash = flash;
    let mut view = V::mount(&params, &mut socket).await;
    view.handle_params(&params, &url, &mut socket).await;
    match socket.navigation.take() {
        // A patch while mounting is where the page is: render it there.
        Some(Navigation::Navigate(to) | Navigation::Redirect(to) | Navigation::Patch(to)) => {
            // The flash goes along the way the client would carry it: in its cookie.
            if !socket.flash_put.is_empty() {
                conn = put_flash_cookie(conn, &socket.flash_put.sign(&key_base));
            }
            return redirect(conn, &to);
        }
        None => {}
    }
    let flash = std::mem::take(&mut socket.flash);
    let html = PageTree { view: view.render(), flash: V::render_flash(&flash) }.to_html();
    let id = format!("phx-{:016x}", rand::random::<u64>());
    // Made first: it creates the session's CSRF secret, which the token is bound to.
    let csrf_token = get_csrf_token(&mut conn);
    let tag = crate::security::session::fetched(&conn)
        .and_then(crate::security::csrf::session_tag)
        .unwrap_or_default();
    let token = SessionToken {
        v: std::any::type_name::<V>().to_owned(),
        id: id.clone(),
        s: session,
        c: tag,
        f: flash,
    };
    let token = Token::sign(&key_base, SESSION_SALT, &token);
    let inner = format!(
        "<div id=\"{id}\" data-phx-main data-phx-session=\"{}\" data-phx-static=\"\">{html}</div>",
        escape(&token)
    );
    let context =
        LayoutContext { inner: &inner, csrf_token: &csrf_token, title: socket.title.as_deref() };
    let page = match conn.get_assign::<RootLayout>() {
        Some(layout) => (layout.0)(&context),
        None => bare_layout(&context),
    };
    conn.html(page)
}

/// The flash in the request's `__phoenix_flash__` cookie, which is removed in the response (a
/// flash shows once); none when there is no such cookie or its token does not verify.
fn take_flash_cookie(conn: Conn, key_base: &crate::security::SecretKeyBase) -> (Conn, Flash) {
    let headers = conn.headers().get_all(http::header::COOKIE);
    let headers = headers.iter().filter_map(|value| value.to_str().ok());
    let token = crate::security::session::cookie_value(headers, FLASH_COOKIE);
    match token {
        Some(token) => (put_flash_cookie(conn, ""), Flash::verify(key_base, &token)),
        None => (conn, Flash::default()),
    }
}

/// Sets the flash cookie for a minute, as the client does; an empty `token` removes it.
fn put_flash_cookie(mut conn: Conn, token: &str) -> Conn {
    let mut cookie = cookie::Cookie::new(FLASH_COOKIE, token.to_owned());
    cookie.set_path("/");
    if token.is_empty() {
        cookie.make_removal();
    } else {
        cookie.set_max_age(cookie::time::Duration::seconds(60));
    }
    // A signed token is base64url: always a valid header value.
    if let Ok(value) = http::HeaderValue::try_from(cookie.to_string()) {
        conn.resp_headers_mut().append(http::header::SET_COOKIE, value);
    }
    conn
}

fn redirect(conn: Conn, to: &str) -> Conn {
    conn.put_status(http::StatusCode::FOUND).put_resp_header(http::header::LOCATION, to).text("")
}
