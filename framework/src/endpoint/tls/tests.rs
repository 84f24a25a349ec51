use std::path::{Path, PathBuf};

use super::*;

/// A scratch directory of its own for one test.
fn scratch() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("fawkes-tls-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A self-signed certificate for `localhost` and 127.0.0.1, valid from `from` to `until`
/// (days from today), written as `name.crt` and `name.key` in `dir`; its DER.
fn certificate(dir: &Path, name: &str, from: i64, until: i64) -> (PathBuf, PathBuf, Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let now = rcgen::date_time_ymd(1970, 1, 1) + since_epoch;
    let shift = |days: i64| {
        let by = std::time::Duration::from_secs(days.unsigned_abs() * 86_400);
        if days < 0 {
            now - by
        } else {
            now + by
        }
    };
    params.not_before = shift(from);
    params.not_after = shift(until);
    let cert = params.self_signed(&key).unwrap();
    let (cert_path, key_path) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path, cert.der().to_vec())
}

#[test]
fn a_certificate_that_cannot_be_served_is_refused_saying_why() {
    let dir = scratch();
    let (cert, key, _) = certificate(&dir, "good", -1, 90);
    assert!(Tls::from_pem_files(&cert, &key).is_ok());

    let (expired, expired_key, _) = certificate(&dir, "expired", -30, -1);
    let err = Tls::from_pem_files(&expired, &expired_key).unwrap_err().to_string();
    assert!(err.contains("expired.crt: the certificate expired on"), "{err}");
    let (early, early_key, _) = certificate(&dir, "early", 2, 90);
    let err = Tls::from_pem_files(&early, &early_key).unwrap_err().to_string();
    assert!(err.contains("early.crt: the certificate is not valid before"), "{err}");
    let (other, other_key, _) = certificate(&dir, "other", -1, 90);
    let err = Tls::from_pem_files(&cert, &other_key).unwrap_err().to_string();
    assert!(err.contains("other.key is not the key of the certificate in"), "{err}");
    let _ = other;

    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let err = Tls::from_pem_files(&junk, &key).unwrap_err().to_string();
    assert!(err.contains("junk.pem: no certificate in it"), "{err}");
    let err = Tls::from_pem_files(&cert, &junk).unwrap_err().to_string();
    assert!(err.contains("junk.pem: no private key in it"), "{err}");
    let err = Tls::from_pem_files(dir.join("missing.crt"), &key).unwrap_err().to_string();
    assert!(err.contains("missing.crt"), "{err}");

    // A reload that fails keeps what was served.
    let tls = Tls::from_pem_files(&cert, &key).unwrap();
    std::fs::copy(&expired, &cert).unwrap();
    assert!(tls.reload().is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

async fn scheme(conn: crate::Conn) -> crate::Conn {
    let scheme = conn.uri().scheme_str().unwrap_or("none").to_owned();
    conn.text(scheme)
}

async fn slow(conn: crate::Conn) -> crate::Conn {
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    conn.text("slow")
}

crate::router! {
    /// Answers with the request's URI scheme.
    pub App;
    get "/scheme" => scheme;
    get "/slow" => slow;
    get "/healthz" => crate::telemetry::healthz;
}

/// The certificate a TLS handshake with `addr` presents.
async fn presented(addr: std::net::SocketAddr, ca: &Path) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let stream = connector.connect(name, tcp).await.expect("the handshake succeeds");
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test]
async fn http1_and_http2_over_tls_see_https_and_a_reload_changes_the_certificate() {
    let dir = scratch();
    let (cert, key, first_der) = certificate(&dir, "server", -1, 90);
    let tls = Tls::from_pem_files(&cert, &key).unwrap();
    let running = crate::Endpoint::new(App::new())
        .bind("127.0.0.1:0")
        .tls(tls.clone())
        .start()
        .await
        .unwrap();
    let url = format!("https://localhost:{}/scheme", running.local_addr().port());
    // The client resolves localhost itself; the endpoint listens on 127.0.0.1.
    for (http2, version) in [(false, reqwest::Version::HTTP_11), (true, reqwest::Version::HTTP_2)] {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(
                reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap(),
            )
            .resolve("localhost", running.local_addr())
            .no_proxy();
        let client = if http2 { client } else { client.http1_only() };
        let answer = client.build().unwrap().get(&url).send().await.unwrap();
        assert_eq!(answer.version(), version, "ALPN chose the version");
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.text().await.unwrap(), "https", "the request has the https scheme");
    }
    assert_eq!(presented(running.local_addr(), &cert).await, first_der);

    // Plain HTTP on the TLS port is a failed handshake: the connection closes.
    let mut plain = tokio::net::TcpStream::connect(running.local_addr()).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut plain, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::io::AsyncReadExt::read_to_end(&mut plain, &mut buf),
    )
    .await;
    assert!(read.is_ok(), "closed, not left hanging");

    // New files, reloaded: new connections get the new certificate.
    let (next, next_key, next_der) = certificate(&dir, "next", -1, 90);
    std::fs::copy(&next, &cert).unwrap();
    std::fs::copy(&next_key, &key).unwrap();
    tls.reload().unwrap();
    assert_eq!(presented(running.local_addr(), &cert).await, next_der);
    running.shutdown();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn when_every_connection_is_busy_tls_clients_get_the_probe_lane_and_a_503_inside_tls() {
    let dir = scratch();
    let (cert, key, _) = certificate(&dir, "server", -1, 90);
    let running = crate::Endpoint::new(App::new())
        .bind("127.0.0.1:0")
        .max_connections(1)
        .tls(Tls::from_pem_files(&cert, &key).unwrap())
        .start()
        .await
        .unwrap();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let client = || {
        reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(ca.clone())
            .resolve("localhost", running.local_addr())
            .http1_only()
            .no_proxy()
            .build()
            .unwrap()
    };
    let base = format!("https://localhost:{}", running.local_addr().port());
    // The one slot is busy with a request in flight: it cannot be closed to make room.
    let busy = tokio::spawn({
        let (client, url) = (client(), format!("{base}/slow"));
        async move { client.get(url).send().await.unwrap().status() }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // A probe is served on its lane; anything else learns, over TLS, to come back.
    let probe = client().get(format!("{base}/healthz")).send().await.expect("the probe is served");
    assert_eq!(probe.status(), 200);
    let turned =
        client().get(format!("{base}/scheme")).send().await.expect("an answer, not a TLS error");
    assert_eq!(turned.status(), 503);
    assert_eq!(turned.headers()["retry-after"], "1");
    assert!(turned.text().await.unwrap().contains("too many connections"));
    assert_eq!(busy.await.unwrap(), 200);
    running.shutdown();
    std::fs::remove_dir_all(&dir).unwrap();
}
