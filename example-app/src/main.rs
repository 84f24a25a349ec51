//! Starts the example app: reads its configuration from the environment, connects the
//! database, and serves until SIGTERM or ctrl-c.
//!
//! | variable                       | default                                    |
//! |--------------------------------|--------------------------------------------|
//! | `HOST`                         | `127.0.0.1`                                |
//! | `PORT`                         | `4000` (`0` picks a free port)             |
//! | `DATABASE_URL`                 | `sqlite://fawkes_dev.db?mode=rwc`          |
//! | `SHUTDOWN_TIMEOUT_SECS`        | `25`                                       |
//! | `DRAIN_DELAY_SECS`             | `5` in `prod`, else `0`                    |
//! | `MAX_CONNECTIONS`              | `16384` (WebSockets included)              |
//! | `BODY_READ_TIMEOUT_MS`         | `15000`                                    |
//! | `FAWKES_ENV`                   | `dev` (also `test`; `prod` for production) |
//! | `SECRET_KEY_BASE`              | required in `prod`; elsewhere a random one |
//! | `REDIS_URL`                    | unset: one node (set: replicas share rooms) |
//! | `REDIS_REQUIRED`               | `false` (`true`: `/readyz` 503 without it)  |
//! | `NODE_NAME`                    | `HOSTNAME`, or `node-<pid>`                 |
//! | `PRESENCE_DOWN_PERIOD_MS`      | `30000`                                    |
//! | `PRESENCE_HEARTBEAT_MS`        | `1500`                                     |
//! | `ASSETS_DIR`                   | the `example-app/assets` it was built from |
//! | `RUST_LOG`                     | `info`                                     |
//! | `LOG_FORMAT`                   | text (`json` for one JSON object a line)   |
//! | `TLS_CERT_FILE`, `TLS_KEY_FILE` | unset: cleartext (set: HTTPS and `wss://`, PEM files; `SIGHUP` reloads them) |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT`  | unset: no traces (set: OTLP/HTTP, `http://collector:4318`) |
//! | `OTEL_SERVICE_NAME`, `OTEL_*`  | the OpenTelemetry SDK's (docs/observability.md) |
//! | `DASHBOARD_PASSWORD`           | unset: `/dev/dashboard` for any logged-in visitor, closed (404) in `prod`; set: Basic auth as `ops` |
//!
//! `SECRET_KEY_BASE` signs the session cookies, CSRF tokens and socket tokens: at least 64
//! bytes (`head -c 48 /dev/urandom | base64 -w0`), the same on every replica. A shorter one
//! stops the app at startup. Without it, outside `prod`, a random one is generated and a
//! warning logged: every restart then signs everyone out.
//!
//! With `REDIS_URL` (`redis://host:6379/`) every replica publishes and subscribes through
//! Redis: a message posted on one reaches the members connected to the others, and the chat's
//! "online" list is the same everywhere (docs/scaling.md).

use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use example_app::keys::{self, AppEnv, Keys};
use fawkes::Endpoint;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

// Returns memory to the system after a burst, which glibc's malloc does not (its arenas keep
// what they grew to): see docs/reliability.md.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Settings read from the environment.
#[derive(Debug)]
struct Config {
    host: String,
    port: u16,
    database_url: String,
    shutdown_timeout: Duration,
    drain_delay: Duration,
    max_connections: Option<usize>,
    body_read_timeout: Option<Duration>,
    keys: Keys,
    redis_url: Option<String>,
    redis_required: bool,
    node_name: String,
    presence: fawkes::presence::PresenceConfig,
}

impl Config {
    /// The certificate to serve HTTPS with: `TLS_CERT_FILE` and `TLS_KEY_FILE`, both or
    /// neither. A certificate that cannot be served stops the app here, saying why.
    fn tls(&self) -> anyhow::Result<Option<fawkes::endpoint::Tls>> {
        match (var("TLS_CERT_FILE")?, var("TLS_KEY_FILE")?) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some(fawkes::endpoint::Tls::from_pem_files(cert, key)?)),
            _ => anyhow::bail!("TLS_CERT_FILE and TLS_KEY_FILE go together: set both, or neither"),
        }
    }

    fn from_env() -> anyhow::Result<Self> {
        let env = AppEnv::parse(var(keys::APP_ENV)?.as_deref())?;
        let keys = keys::load(env, var(keys::SECRET_KEY_BASE_ENV)?.as_deref())?;
        Ok(Self {
            host: var("HOST")?.unwrap_or_else(|| "127.0.0.1".to_owned()),
            port: parsed("PORT")?.unwrap_or(4000),
            database_url: var("DATABASE_URL")?
                .unwrap_or_else(|| example_app::repo::DEFAULT_DATABASE_URL.to_owned()),
            shutdown_timeout: Duration::from_secs(parsed("SHUTDOWN_TIMEOUT_SECS")?.unwrap_or(25)),
            // In production a load balancer needs time to see `/readyz` fail before the
            // listener closes; on a developer's machine ctrl-c should stop at once.
            drain_delay: Duration::from_secs(
                parsed("DRAIN_DELAY_SECS")?.unwrap_or(if matches!(env, AppEnv::Prod) {
                    5
                } else {
                    0
                }),
            ),
            max_connections: parsed("MAX_CONNECTIONS")?,
            body_read_timeout: parsed("BODY_READ_TIMEOUT_MS")?.map(Duration::from_millis),
            keys,
            redis_url: var("REDIS_URL")?,
            redis_required: parsed("REDIS_REQUIRED")?.unwrap_or(false),
            node_name: var("NODE_NAME")?.unwrap_or_else(fawkes::endpoint::default_node_name),
            presence: {
                let mut presence = fawkes::presence::PresenceConfig::default();
                if let Some(ms) = parsed::<u64>("PRESENCE_DOWN_PERIOD_MS")? {
                    presence.down_period = Duration::from_millis(ms.max(1));
                }
                if let Some(ms) = parsed::<u64>("PRESENCE_HEARTBEAT_MS")? {
                    presence.heartbeat_interval = Duration::from_millis(ms.max(10));
                }
                presence
            },
        })
    }

    /// The pubsub: through Redis when `REDIS_URL` is set, this node alone otherwise.
    fn pubsub(&self) -> anyhow::Result<fawkes::PubSub> {
        let pubsub = match &self.redis_url {
            Some(url) => {
                let redis = fawkes::pubsub::Redis::new(url)
                    .context("REDIS_URL")?
                    .namespace("fawkes-example")
                    .required_for_readiness(self.redis_required);
                fawkes::PubSub::with_adapter(self.node_name.as_str(), std::sync::Arc::new(redis))
            }
            None => fawkes::PubSub::new(self.node_name.as_str()),
        };
        pubsub.presence().configure(self.presence.clone());
        Ok(pubsub)
    }

    async fn bind_addr(&self) -> anyhow::Result<SocketAddr> {
        // A host name such as `localhost` is allowed, not only an address.
        tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .with_context(|| format!("cannot resolve HOST {:?}", self.host))?
            .next()
            .with_context(|| format!("HOST {:?} resolves to no address", self.host))
    }
}

/// An environment variable; unset and empty both mean "use the default".
fn var(name: &str) -> anyhow::Result<Option<String>> {
    match std::env::var(name) {
        Ok(value) if value.trim().is_empty() => Ok(None),
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(err) => Err(err).with_context(|| format!("{name} is not valid UTF-8")),
    }
}

fn parsed<T>(name: &str) -> anyhow::Result<Option<T>>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    var(name)?
        .map(|value| value.trim().parse().with_context(|| format!("{name}={value:?} is invalid")))
        .transpose()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `example-app routes` (what `fawkes routes` runs): the route table, from the router itself.
    if std::env::args().nth(1).as_deref() == Some("routes") {
        let table = fawkes::router::route_table(example_app::router::AppRouter::ROUTE_TABLE);
        std::io::stdout().lock().write_all(table.as_bytes())?;
        return Ok(());
    }
    // Traces go to an OpenTelemetry collector when OTEL_EXPORTER_OTLP_ENDPOINT is set.
    let otel = fawkes::otel::Otel::from_env().context("OpenTelemetry")?;
    // RUST_LOG filters the logs only: traces keep every request's span at any log level.
    let log_filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let json = var("LOG_FORMAT")?.is_some_and(|f| f.eq_ignore_ascii_case("json"));
    // One JSON object a line, with the current span's fields (request and trace ids), for log
    // collectors; or text, coloured on a terminal.
    let json_logs = json.then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_writer(std::io::stderr)
            .with_filter(log_filter())
    });
    let text_logs = (!json).then(|| {
        tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .with_filter(log_filter())
    });
    let traces = otel.as_ref().map(|otel| otel.layer().with_filter(LevelFilter::INFO));
    tracing_subscriber::registry().with(json_logs).with(text_logs).with(traces).init();

    let config = Config::from_env()?;
    if config.keys.generated {
        tracing::warn!(
            "{} is not set: signing sessions and socket tokens with a random secret, so every \
             restart signs everyone out; set {}=prod to require one",
            keys::SECRET_KEY_BASE_ENV,
            keys::APP_ENV,
        );
    }
    let addr = config.bind_addr().await?;
    let example_app::App { router, state } =
        example_app::app(&config.database_url, config.keys.key_base.clone())
            .await
            .with_context(|| format!("cannot open the database at {}", config.database_url))?;

    let mut endpoint =
        Endpoint::new(router).max_unsent_body_bytes(example_app::router::MAX_UNSENT_BODY_BYTES);
    if let Some(tls) = config.tls()? {
        endpoint = endpoint.tls(tls);
    }
    if let Some(max) = config.max_connections {
        endpoint = endpoint.max_connections(max);
    }
    if let Some(timeout) = config.body_read_timeout {
        endpoint = endpoint.body_read_timeout(timeout);
    }
    let running = endpoint
        .pubsub(config.pubsub()?)
        // LongPoll session tokens too are signed with it, the same on every replica.
        .secret_key_base(state.key_base.clone())
        .bind(addr)
        .shutdown_timeout(config.shutdown_timeout)
        .drain_delay(config.drain_delay)
        .start()
        .await?;

    // The signal handlers are installed by this call, before the URL is announced, so a
    // SIGTERM sent as soon as the line is read still drains gracefully.
    let until_signal = running.run_until_signal();

    // The first line of stdout is the contract with scripts and tests: they read the URL from
    // it, so it is flushed at once rather than left in a pipe's buffer.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "Fawkes example app listening on {}", running.url())?;
    stdout.flush()?;
    drop(stdout);

    until_signal.await?;
    state.repo.close().await;
    if let Some(otel) = otel {
        // The batched spans, sent before the process ends.
        tokio::task::spawn_blocking(move || otel.shutdown()).await?;
    }
    tracing::info!("stopped");
    Ok(())
}
