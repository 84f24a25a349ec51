//! Writes a self-signed certificate for `localhost` and `127.0.0.1` (valid 30 days) and its
//! key, as `cert.pem` and `key.pem` in the directory given, for the suites that serve TLS.
//!
//! ```text
//! cargo run -p tests --bin tls-cert -- /tmp/tls
//! ```

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args_os().nth(1).ok_or("usage: tls-cert DIR")?);
    std::fs::create_dir_all(&dir)?;
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let now = rcgen::date_time_ymd(1970, 1, 1) + since_epoch;
    params.not_before = now - std::time::Duration::from_secs(3_600);
    params.not_after = now + std::time::Duration::from_secs(30 * 86_400);
    let cert = params.self_signed(&key)?;
    std::fs::write(dir.join("cert.pem"), cert.pem())?;
    std::fs::write(dir.join("key.pem"), key.serialize_pem())?;
    Ok(())
}
