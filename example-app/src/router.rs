//! The routes of the example app.

use std::time::Duration;

use fawkes::security::{FetchSession, SecretKeyBase, SessionConfig};
use fawkes::{ActionError, Conn, Plug as _};

use crate::channels::UserSocket;
use crate::repo::Repo;

fawkes::router! {
    /// Every route of the example app. Build it with [`build`], which hands it the repo and
    /// the secret key base.
    pub AppRouter;

    // The secure headers come before the CSRF check, so its 403 carries them too.
    pipeline browser {
        plug fawkes::plug::request_id();
        plug fawkes::plug::accepts(["html"]);
        plug fetch_session;
        plug fawkes::security::put_secure_browser_headers();
        plug fawkes::security::protect_from_forgery();
    }

    pipeline api {
        plug fawkes::plug::request_id();
        plug fawkes::plug::accepts(["json"]);
    }

    get "/healthz" => fawkes::telemetry::healthz, as: healthz;
    get "/readyz" => fawkes::telemetry::readyz, as: readyz;
    get "/metrics" => fawkes::telemetry::prometheus, as: metrics;
    get "/js/fawkes.js" => fawkes::socket::client_js, as: client_js;
    get "/assets/:name" => crate::controllers::page_controller::asset, as: asset;

    socket "/socket" => UserSocket::from_env();

    scope "/" {
        pipe_through browser;
        get "/" => crate::controllers::page_controller::index;
        get "/dashboard" => crate::controllers::page_controller::dashboard;
        post "/session" => crate::controllers::session_controller::create;
        delete "/session" => crate::controllers::session_controller::delete;
        // HTML forms can only GET and POST.
        post "/session/delete" => crate::controllers::session_controller::delete, as: logout;
    }

    scope "/api" {
        pipe_through api;
        resources "/rooms" => crate::controllers::room_controller, except: [new, edit] {
            resources "/messages" => crate::controllers::message_controller, only: [index, create];
        }
    }
}

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "_fawkes_example_key";

/// How long a login lasts: the session cookie's max age, checked on the server too.
pub const SESSION_MAX_AGE: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// How the browser pages keep their session: a signed cookie, as Phoenix keeps it.
pub fn session_config(key_base: SecretKeyBase) -> SessionConfig {
    SessionConfig::new(key_base)
        .cookie_name(SESSION_COOKIE)
        .salt("fawkes example session")
        .max_age(SESSION_MAX_AGE)
}

/// The router: `repo` and `key_base` are in every request's assigns
/// (`conn.get_assign::<Repo>()`), and so in the socket's connect info, from where they reach
/// the socket and its channels.
pub fn build(repo: Repo, key_base: SecretKeyBase) -> fawkes::Router {
    // The key is derived here, once, not per request.
    let session = fawkes::security::fetch_session(session_config(key_base.clone()));
    fawkes::Router::from(AppRouter::new()).assign(repo).assign(key_base).assign(session)
}

/// The browser pipeline's `fetch_session`.
///
/// The router's plugs are built before the secret is known (`AppRouter::new()` takes no
/// argument), so the configured plug travels in the assigns that [`build`] sets.
async fn fetch_session(conn: Conn) -> Conn {
    match conn.get_assign::<FetchSession>().cloned() {
        Some(session) => session.call(conn).await,
        None => {
            tracing::error!(
                path = conn.path(),
                "no session settings assigned; build the router with example_app::router::build"
            );
            ActionError::internal().render_halted(conn)
        }
    }
}
