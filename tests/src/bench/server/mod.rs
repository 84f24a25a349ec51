//! The servers under test, one per process: `bench server <kind> --routes N --port P`.
//!
//! Every server runs on the same runtime, a multi-thread tokio runtime with a single worker:
//! on a two-core machine wrk gets the other core, so neither side starves the other, and the
//! three stacks are compared thread for thread. Each one serves HTTP/1.1 with keep-alive and
//! TCP_NODELAY on 127.0.0.1 only, and answers the scenarios with the same status, headers and
//! body bytes (header order aside).
//!
//! A server prints its port as the first line of stdout, then serves until its stdin closes:
//! the driver holds the other end, so a server never outlives it, however it exits.

mod axum_app;
mod fawkes_app;
mod hyper_app;

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

/// Which stack a server is built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Fawkes,
    Axum,
    Hyper,
}

impl Kind {
    pub(crate) const ALL: [Kind; 3] = [Self::Fawkes, Self::Axum, Self::Hyper];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Fawkes => "fawkes",
            Self::Axum => "axum",
            Self::Hyper => "hyper",
        }
    }

    pub(crate) fn parse(name: &str) -> anyhow::Result<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name).with_context(|| {
            format!("unknown server kind `{name}`; expected one of fawkes, axum, hyper")
        })
    }

    /// How many routes the server really has when asked for `routes`: the bare hyper server
    /// matches the four scenario paths by hand and has no table.
    pub(crate) fn effective_routes(self, routes: usize) -> usize {
        match self {
            Self::Hyper => crate::routes::FIXED,
            _ => routes,
        }
    }
}

/// How a server speaks: HTTP/1.1 (the main suite), HTTP/2 with prior knowledge (`h2c`), or
/// HTTP/2 over TLS with the certificate of a directory (`cert.pem`, `key.pem`), chosen by
/// ALPN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http1,
    H2c,
    H2Tls(PathBuf),
}

/// Starts a server of `kind`, speaking `protocol`, on the current runtime and returns its
/// address; with `cors`, the whole application sits behind tower-http's permissive CORS layer
/// (what an endpoint-wide layer costs; fawkes and axum only).
pub(crate) async fn start_with(
    kind: Kind,
    routes: usize,
    port: u16,
    cors: bool,
    protocol: &Protocol,
) -> anyhow::Result<SocketAddr> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    match kind {
        Kind::Fawkes => fawkes_app::start(addr, routes, cors, protocol).await,
        Kind::Axum => axum_app::start(addr, routes, cors, protocol).await,
        Kind::Hyper => hyper_app::start(addr, protocol).await,
    }
}

/// The TLS side of [`Protocol::H2Tls`] for the servers that are not Fawkes: rustls on ring
/// with the directory's certificate, ALPN `h2` then `http/1.1`, as `Endpoint::tls` offers.
pub(crate) fn tls_acceptor(dir: &Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls_pki_types::pem::PemObject as _;
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(dir.join("cert.pem"))?
        .collect::<Result<Vec<_>, _>>()?;
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(dir.join("key.pem"))?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)))
}

/// The `bench server` subcommand: serves until stdin closes.
pub(crate) fn main(
    kind: Kind,
    routes: usize,
    port: u16,
    cors: bool,
    protocol: &Protocol,
) -> anyhow::Result<()> {
    serve(start_with(kind, routes, port, cors, protocol))
}

/// Runs `start` on a one-worker runtime, prints the port it serves on, and serves until stdin
/// closes: what every server of the harness does.
pub(crate) fn serve(
    start: impl std::future::Future<Output = anyhow::Result<SocketAddr>>,
) -> anyhow::Result<()> {
    init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("failed to build the tokio runtime")?;
    let addr = runtime.block_on(start)?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", addr.port()).context("failed to print the port")?;
    stdout.flush().context("failed to print the port")?;
    drop(stdout);
    // EOF (or an error) on stdin means the driver is gone or done with us.
    let _ = std::io::stdin().lock().read_to_end(&mut Vec::new());
    runtime.shutdown_timeout(Duration::from_millis(200));
    Ok(())
}

/// Warnings and errors to stderr; the servers log nothing on the hot path.
pub(crate) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    /// The comparison is only fair if every server sends the same bytes; the driver checks this
    /// before each run too, but a test catches a drift without wrk.
    #[test]
    fn every_server_answers_every_scenario_with_the_same_bytes() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let addrs: Vec<(Kind, SocketAddr)> = Kind::ALL
            .into_iter()
            .map(|kind| {
                (kind, runtime.block_on(start_with(kind, 100, 0, false, &Protocol::Http1)).unwrap())
            })
            .collect();
        for scenario in Scenario::ALL {
            let answers: Vec<_> = addrs
                .iter()
                .map(|&(kind, addr)| {
                    let resp = crate::client::check(addr, scenario)
                        .unwrap_or_else(|e| panic!("{}: {e:#}", kind.name()));
                    (kind, resp)
                })
                .collect();
            for (kind, resp) in &answers[1..] {
                assert_eq!(resp, &answers[0].1, "{} differs from fawkes", kind.name());
            }
        }
    }

    #[test]
    fn every_fawkes_table_routes_the_deep_path_through_the_pipeline() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        for routes in crate::routes::SIZES {
            let addr = runtime
                .block_on(start_with(Kind::Fawkes, routes, 0, false, &Protocol::Http1))
                .unwrap();
            crate::client::check(addr, Scenario::DeepPath)
                .unwrap_or_else(|e| panic!("{routes} routes: {e:#}"));
        }
        assert!(runtime.block_on(start_with(Kind::Fawkes, 7, 0, false, &Protocol::Http1)).is_err());
    }
}
