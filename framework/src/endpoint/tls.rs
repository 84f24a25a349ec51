//! TLS for the endpoint (feature `tls`): rustls on ring, the certificate chain and key read
//! from PEM files, checked at startup, reloaded without a restart.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate and its key, served over TLS by [`Endpoint::tls`](crate::Endpoint::tls):
/// HTTP/2 or HTTP/1.1 as the client's ALPN asks, `wss://` for sockets. Clones share the
/// certificate, so [`reload`](Tls::reload) on any of them changes what every new connection
/// gets; on Unix the endpoint reloads it on `SIGHUP` too (what cert-manager or a renewal
/// job signals after renewing the files). Connections already open keep the certificate they
/// began with.
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// async fn home(conn: fawkes::Conn) -> fawkes::Conn { conn.text("over TLS") }
/// fawkes::router! { pub App; get "/" => home; }
///
/// // An expired certificate, a key that is not its key, or a file that is not PEM stops
/// // here, saying which.
/// let tls = fawkes::endpoint::Tls::from_pem_files("/etc/tls/tls.crt", "/etc/tls/tls.key")?;
/// let running = fawkes::Endpoint::new(App::new())
///     .bind("0.0.0.0:4443")
///     .tls(tls)
///     .start()
///     .await?;
/// running.run_until_signal().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Tls {
    inner: Arc<Inner>,
}

struct Inner {
    cert_path: PathBuf,
    key_path: PathBuf,
    resolver: Arc<Resolver>,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.inner.cert_path)
            .field("key", &self.inner.key_path)
            .finish_non_exhaustive()
    }
}

/// Why a certificate or its key cannot be served: the message names the file and the
/// problem.
#[derive(Debug)]
pub struct TlsError(String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

/// What rustls asks for a certificate: the current one, swapped on reload.
#[derive(Debug)]
struct Resolver(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }
}

impl Tls {
    /// The certificate chain in `cert` (PEM, the server's certificate first) and its private
    /// key in `key` (PEM: PKCS#8, PKCS#1 or SEC1).
    ///
    /// # Errors
    ///
    /// A file that cannot be read or holds no certificate or key, a key that is not the
    /// certificate's, a certificate not valid yet or expired.
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, TlsError> {
        let (cert_path, key_path) = (cert.as_ref().to_path_buf(), key.as_ref().to_path_buf());
        let certified = load(&cert_path, &key_path)?;
        let resolver = Arc::new(Resolver(RwLock::new(certified)));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| TlsError(format!("TLS: {err}")))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        Ok(Self { inner: Arc::new(Inner { cert_path, key_path, resolver, acceptor }) })
    }

    /// Reads the files again: new connections get the new certificate. On an error the
    /// current one stays.
    ///
    /// # Errors
    ///
    /// As [`Tls::from_pem_files`].
    pub fn reload(&self) -> Result<(), TlsError> {
        let certified = load(&self.inner.cert_path, &self.inner.key_path)?;
        *self.inner.resolver.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
            certified;
        Ok(())
    }

    pub(super) fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.inner.acceptor
    }
}

/// The certificate chain and key, checked: they match, and the certificate is valid now.
fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let cert_name = cert_path.display();
    let key_name = key_path.display();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .and_then(Iterator::collect)
        .map_err(|err| TlsError(format!("{cert_name}: {err}")))?;
    let Some(leaf) = certs.first() else {
        return Err(TlsError(format!(
            "{cert_name}: no certificate in it (PEM, BEGIN CERTIFICATE)"
        )));
    };
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|err| TlsError(format!("{cert_name}: not an X.509 certificate: {err}")))?;
    let validity = parsed.validity();
    let now = x509_parser::time::ASN1Time::now();
    if now > validity.not_after {
        return Err(TlsError(format!(
            "{cert_name}: the certificate expired on {}",
            validity.not_after
        )));
    }
    if now < validity.not_before {
        return Err(TlsError(format!(
            "{cert_name}: the certificate is not valid before {}",
            validity.not_before
        )));
    }
    if validity.not_after.timestamp() - now.timestamp() < 14 * 86_400 {
        tracing::warn!(cert = %cert_name, expires = %validity.not_after, "the TLS certificate expires in less than 14 days");
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|err| TlsError(format!("{key_name}: no private key in it ({err})")))?;
    let signing_key = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|err| TlsError(format!("{key_name}: {err}")))?;
    let certified = CertifiedKey::new(certs, signing_key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(_) => {
            return Err(TlsError(format!(
                "{key_name} is not the key of the certificate in {cert_name}"
            )))
        }
    }
    Ok(Arc::new(certified))
}

#[cfg(test)]
mod tests;
