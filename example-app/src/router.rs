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
    /// The pages' stylesheet and scripts, and their versioned URLs.
    pub assets: crate::assets::Assets,
    /// The official clients of the live pages, from npm.
    pub vendor: crate::assets::Vendor,
    /// How the sockets tell clients apart and bound each one.
    pub clients: ClientLimits,
    /// The writes one client may make, over the JSON API, GraphQL and the live rooms form
    /// together ([`ClientLimits::writes`]).
    pub writes: fawkes::security::RateLimit,
    /// The chat messages one client may post over the rooms' channels, the lobby's included
    /// ([`ClientLimits::messages`]).
    pub messages: fawkes::security::RateLimit,
    /// Who may open the live dashboard.
    pub ops: crate::controllers::session_controller::OpsAccess,
    /// The chat's GraphQL schema, served at `/api/graphql` and over the socket's
    /// `__absinthe__:control` channel.
    pub graphql: fawkes::graphql::GraphQL<crate::graphql::ChatSchema>,
}

/// The sockets' per-client limits ([`MAX_SOCKETS_PER_CLIENT`] and the others), and the
/// proxies whose `X-Forwarded-For` names the client.
#[derive(Debug, Clone, Default)]
pub struct ClientLimits {
    /// `TRUSTED_PROXIES`: the load balancer's or ingress's addresses (comma-separated
    /// networks). Unset, every client behind a proxy looks like the proxy.
    pub proxies: fawkes::security::TrustedProxies,
    /// `CLIENT_LIMITS=off`: no per-client limit, for load tests that play many clients from
    /// one address.
    pub off: bool,
}

impl ClientLimits {
    /// Reads `TRUSTED_PROXIES` and `CLIENT_LIMITS` (`on`, the default, or `off`).
    ///
    /// # Errors
    ///
    /// An entry of `TRUSTED_PROXIES` that is not a network, or another `CLIENT_LIMITS`.
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |name: &str| std::env::var(name).unwrap_or_default();
        let proxies = fawkes::security::TrustedProxies::parse(&var("TRUSTED_PROXIES"))
            .map_err(|err| anyhow::anyhow!("TRUSTED_PROXIES: {err}"))?;
        let off = match var("CLIENT_LIMITS").trim() {
            "" | "on" => false,
            "off" => true,
            other => anyhow::bail!("CLIENT_LIMITS={other:?}: expected on or off"),
        };
        Ok(Self { proxies, off })
    }

    /// The limit on writes: [`API_WRITES`] every [`API_WRITES_PERIOD`] a client (none with
    /// `CLIENT_LIMITS=off`), counting the API's `POST`, `PUT`, `PATCH` and `DELETE`.
    pub fn writes(&self) -> fawkes::security::RateLimit {
        use http::Method;
        if self.off {
            return fawkes::security::RateLimit::unlimited();
        }
        fawkes::security::rate_limit(API_WRITES, API_WRITES_PERIOD)
            .trusted_proxies(self.proxies.clone())
            .methods([Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
    }

    /// The limit on chat messages: [`CHAT_MESSAGES`] every [`CHAT_MESSAGES_PERIOD`] a client
    /// (none with `CLIENT_LIMITS=off`), clients told apart as the sockets tell them apart.
    pub fn messages(&self) -> fawkes::security::RateLimit {
        if self.off {
            return fawkes::security::RateLimit::unlimited();
        }
        fawkes::security::rate_limit(CHAT_MESSAGES, CHAT_MESSAGES_PERIOD)
    }

    /// `transport` with at most `sockets` sockets and `channels` channels a client.
    pub fn apply<S: fawkes::socket::Socket>(
        &self,
        transport: fawkes::socket::Transport<S>,
        sockets: usize,
        channels: usize,
    ) -> fawkes::socket::Transport<S> {
        if self.off {
            return transport;
        }
        transport
            .max_sockets_per_client(sockets)
            .max_channels_per_client(channels)
            .trusted_proxies(self.proxies.clone())
    }
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

    // The operators' pages: the framework's live dashboard, for whom `OpsAccess` lets in (a
    // password in production). Its socket is under its mount, so this pipeline guards the
    // upgrade as well.
    pipeline ops {
        plug fawkes::plug::request_id();
        plug fawkes::security::fetch_session(session_config(state.key_base.clone()));
        plug fawkes::security::put_secure_browser_headers();
        plug state.ops.clone();
    }

    // GraphQL: queries are POSTs too, so the write budget is spent by mutations only, in
    // their resolver; the plug hands it over as an assign.
    pipeline graphql {
        plug fawkes::plug::request_id();
        plug crate::graphql::writer(state.writes.clone());
    }

    pipeline api {
        plug fawkes::plug::request_id();
        plug fawkes::plug::accepts(["json"]);
        // Each write is a row in the database: a client makes a few a second at most.
        plug state.writes.clone();
    }

    get "/healthz" => fawkes::telemetry::healthz, as: healthz;
    get "/readyz" => fawkes::telemetry::readyz, as: readyz;
    get "/metrics" => fawkes::telemetry::prometheus, as: metrics;
    get "/js/fawkes.js" => fawkes::socket::client_js, as: client_js;
    forward "/assets" => state.assets.service();
    forward "/vendor/phoenix" => state.vendor.phoenix.service();
    forward "/vendor/phoenix_live_view" => state.vendor.live_view.service();

    // Live pages join here (see `live_socket`).
    socket "/live" => state.clients.apply(
        fawkes::socket::transport(live_socket(state))
            .max_channels_total(MAX_LIVE_VIEWS)
            // Events and forms are small: a large frame is refused before it is read.
            .max_frame_size(64 * 1024),
        MAX_LIVE_VIEWS_PER_CLIENT,
        MAX_LIVE_VIEWS_PER_CLIENT,
    );

    socket "/socket" => state.clients.apply(
        fawkes::socket::transport(UserSocket::new(state.clone())).max_channels_total(MAX_CHANNELS),
        MAX_SOCKETS_PER_CLIENT,
        MAX_CHANNELS_PER_CLIENT,
    );

    scope "/" {
        pipe_through browser;
        get "/" => crate::controllers::page_controller::index;
        live "/live/counter" => crate::live::CounterLive;
        live "/live/rooms" => crate::live::RoomsLive;
        post "/session" => crate::controllers::session_controller::create;
        delete "/session" => crate::controllers::session_controller::delete;
        // HTML forms can only GET and POST.
        post "/session/delete" => crate::controllers::session_controller::delete, as: logout;
    }

    scope "/dev" {
        pipe_through ops;
        forward "/dashboard" => dashboard();
    }

    scope "/api/graphql" {
        pipe_through graphql;
        forward "/" => state.graphql.clone();
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

/// The bytes of large answers (a room's history, a GraphQL result) the app holds for clients
/// that have not read them: 48 MiB of the manifests' 256 MiB (the framework's default, 128 MiB,
/// is for larger machines).
pub const MAX_UNSENT_BODY_BYTES: usize = 48 * 1024 * 1024;

/// The most live views the app runs at once. A view keeps its state and its last render: the
/// counter about what a channel costs, the rooms page every listed room (up to 500; about
/// 650 KB a view with 500 short names, measured from outside), so the live socket has a budget
/// of its own next to [`MAX_CHANNELS`], sized for the manifests' 256 MiB.
pub const MAX_LIVE_VIEWS: usize = 300;

/// The most sockets one client (an address; an IPv6 /64) holds open on `/socket`: tabs,
/// and the clients of one office behind its NAT.
pub const MAX_SOCKETS_PER_CLIENT: usize = 200;

/// The most channels one client's sockets run together: a tenth of [`MAX_CHANNELS`], so that
/// no one client takes them all.
pub const MAX_CHANNELS_PER_CLIENT: usize = 2_000;

/// The most live views (and live sockets: a tab holds one of each) one client keeps open: a
/// tenth of [`MAX_LIVE_VIEWS`].
pub const MAX_LIVE_VIEWS_PER_CLIENT: usize = 30;

/// The writes (rooms, messages, edits) one client may make in [`API_WRITES_PERIOD`], over
/// the JSON API and the live rooms form together, all at once or spread: past them, the API
/// answers `429` with `retry-after` and the form says when to try again.
pub const API_WRITES: u32 = 30;

/// See [`API_WRITES`]: 30 writes every 10 s is 3 a second, sustained.
pub const API_WRITES_PERIOD: Duration = Duration::from_secs(10);

/// The chat messages one client may post in [`CHAT_MESSAGES_PERIOD`] over the rooms'
/// channels, the lobby's included: every member of a room pays for each message (one frame
/// to each), so one client flooding a busy room would cost the replica the room's size times
/// its rate. Past them, `new_msg` replies `{"reason":"too many messages","retry_after":s}`.
/// A message stored in a room also spends one of the [`API_WRITES`].
pub const CHAT_MESSAGES: u32 = 60;

/// See [`CHAT_MESSAGES`]: 60 messages every 10 s is 6 a second, sustained, and a burst of 60.
pub const CHAT_MESSAGES_PERIOD: Duration = Duration::from_secs(10);

/// The framework's live dashboard, its pages' sockets named after the login that opened them,
/// so logging out closes them.
fn dashboard() -> fawkes::dashboard::Dashboard {
    fawkes::dashboard::Dashboard::new()
        .socket_id(crate::controllers::session_controller::operator_socket)
}

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
