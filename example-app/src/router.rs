//! The routes of the example app.

use std::time::Duration;

use fawkes::security::{SecretKeyBase, SessionConfig};

use crate::channels::UserSocket;
use crate::repo::Repo;

/// What the routes need: given once, when the router is built ([`AppRouter::new`]), and read
/// by actions as `State<AppState>`, by pipelines and the socket as `state`.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database.
    pub repo: Repo,
    /// The secret sessions and user tokens are signed with.
    pub key_base: SecretKeyBase,
    /// The live dashboard's history, which its channel replies with.
    pub dashboard: crate::dashboard::Dashboard,
    /// The pages' stylesheet and scripts, and their versioned URLs.
    pub assets: crate::assets::Assets,
    /// The official clients of the live pages, from npm.
    pub vendor: crate::assets::Vendor,
}

fawkes::router! {
    /// Every route of the example app, built with its [`AppState`].
    pub AppRouter;
    state AppState;

    // The secure headers come before the CSRF check, so its 403 carries them too.
    pipeline browser {
        plug fawkes::plug::request_id();
        plug fawkes::plug::accepts(["html"]);
        // The session plug, configured once with the state's secret.
        plug fawkes::security::fetch_session(session_config(state.key_base.clone()));
        plug fawkes::security::put_secure_browser_headers();
        plug fawkes::security::protect_from_forgery();
        // The document live pages render in, with the app's assets and the clients.
        plug fawkes::live::put_root_layout({
            let (assets, vendor) = (state.assets.clone(), state.vendor.clone());
            move |page| crate::live::root_layout(&assets, &vendor, page)
        });
    }

    pipeline api {
        plug fawkes::plug::request_id();
        plug fawkes::plug::accepts(["json"]);
    }

    get "/healthz" => fawkes::telemetry::healthz, as: healthz;
    get "/readyz" => fawkes::telemetry::readyz, as: readyz;
    get "/metrics" => fawkes::telemetry::prometheus, as: metrics;
    get "/js/fawkes.js" => fawkes::socket::client_js, as: client_js;
    forward "/assets" => state.assets.service();
    forward "/vendor/phoenix" => state.vendor.phoenix.service();
    forward "/vendor/phoenix_live_view" => state.vendor.live_view.service();

    // Live pages join here (see `live_socket`).
    socket "/live" => fawkes::socket::transport(live_socket(state))
        .max_channels_total(MAX_LIVE_VIEWS)
        // Events and forms are small: a large frame is refused before it is read.
        .max_frame_size(64 * 1024);

    socket "/socket" => fawkes::socket::transport(
        UserSocket::new(state.clone()),
    )
    .max_channels_total(MAX_CHANNELS);

    scope "/" {
        pipe_through browser;
        get "/" => crate::controllers::page_controller::index;
        get "/dashboard" => crate::controllers::page_controller::dashboard;
        live "/live/counter" => crate::live::CounterLive;
        live "/live/rooms" => crate::live::RoomsLive;
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

/// The most channels the app runs at once, over all its sockets: about 3 KiB each, so 60 MiB
/// at most, sized for the 256 MiB the Kubernetes manifests give a replica (the framework's
/// default, 65,536, is for larger machines).
pub const MAX_CHANNELS: usize = 20_000;

/// The most live views the app runs at once. A view keeps its state and its last render: the
/// counter about what a channel costs, the rooms page every listed room (up to 500; about
/// 650 KB a view with 500 short names, measured from outside), so the live socket has a budget
/// of its own next to [`MAX_CHANNELS`], sized for the manifests' 256 MiB.
pub const MAX_LIVE_VIEWS: usize = 300;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "_fawkes_example_key";

/// How long a login lasts: the session cookie's max age, checked on the server too.
pub const SESSION_MAX_AGE: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// The socket the live pages join, with every `live` route of the router; its session plug
/// is the browser pipeline's, whose cookie and CSRF token every join must carry.
pub fn live_socket(state: &AppState) -> fawkes::live::Live<AppState> {
    AppRouter::live_views(fawkes::live::socket(
        state.clone(),
        fawkes::security::fetch_session(session_config(state.key_base.clone())),
    ))
}

/// How the browser pages keep their session: a signed cookie, as Phoenix keeps it.
pub fn session_config(key_base: SecretKeyBase) -> SessionConfig {
    SessionConfig::new(key_base)
        .cookie_name(SESSION_COOKIE)
        .salt("fawkes example session")
        .max_age(SESSION_MAX_AGE)
}
