//! The Fawkes example application: a JSON API and real-time channels for chat rooms.
//!
//! Laid out like a small Phoenix app: [`chat`] is the context that owns the data, [`repo`] the
//! database (schema in `migrations/`), [`controllers`] the actions, their JSON views and the
//! browser pages (askama templates in `templates/`: a chat at `/` with a login form),
//! [`assets`] their stylesheet and scripts (`assets/`, served with versioned URLs),
//! [`channels`] the real-time side (a socket at `/socket` with its `room:*` channels),
//! [`live`] the live pages, [`graphql`] the chat as a GraphQL schema, [`keys`] the secret
//! key base, [`router`] the routes (the
//! framework's live dashboard among them, at `/dev/dashboard`) and the
//! [`AppState`](router::AppState) that actions, plugs, the socket and its channels share.
//! `main` only reads the environment and starts the endpoint, so tests build the same app in
//! process with [`app`]. Nothing is a global: everything the app holds is in its state.

pub mod assets;
pub mod channels;
pub mod chat;
pub mod controllers;
pub mod graphql;
pub mod keys;
pub mod live;
pub mod repo;
pub mod router;

pub use repo::Repo;
pub use router::AppRouter;

/// The example app, built: its router and what `main` needs besides.
#[derive(Debug)]
pub struct App {
    /// Every route, with the app's state.
    pub router: fawkes::Router,
    /// The state the router was built with: the database to close on shutdown, the key base
    /// the endpoint signs with.
    pub state: router::AppState,
}

/// Connects to `database_url` (running its migrations if needed) and builds the router on it,
/// signing sessions and socket tokens with keys derived from `key_base`.
///
/// # Errors
///
/// When the database cannot be reached or a migration fails, or `TRUSTED_PROXIES` or
/// `CLIENT_LIMITS` is invalid ([`router::ClientLimits::from_env`]).
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> anyhow::Result<()> {
/// let key_base = fawkes::security::SecretKeyBase::from_env("SECRET_KEY_BASE")?;
/// let app = example_app::app("sqlite://fawkes_dev.db?mode=rwc", key_base).await?;
/// fawkes::Endpoint::new(app.router).serve().await?;
/// # Ok(())
/// # }
/// ```
pub async fn app(
    database_url: &str,
    key_base: fawkes::security::SecretKeyBase,
) -> anyhow::Result<App> {
    let repo = Repo::connect(database_url).await?;
    let assets = assets::assets_from_env()?;
    let vendor = assets::vendor_from_env().unwrap_or_else(|err| {
        tracing::warn!("{err}");
        assets::Vendor::missing()
    });
    let clients = router::ClientLimits::from_env()?;
    let writes = clients.writes();
    let messages = clients.messages();
    let env = keys::AppEnv::parse(std::env::var(keys::APP_ENV).ok().as_deref())?;
    let graphql = graphql::service(repo.clone(), env, &clients);
    let ops = controllers::session_controller::OpsAccess::from_env(env);
    let state = router::AppState {
        repo,
        key_base,
        assets,
        vendor,
        clients,
        writes,
        messages,
        ops,
        graphql,
    };
    let router = router::AppRouter::new(state.clone()).into();
    Ok(App { router, state })
}
