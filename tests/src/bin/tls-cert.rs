//! Writes a self-signed certificate for `localhost` and `127.0.0.1` (valid 30 days) and its
//! key, as `cert.pem` and `key.pem` in the directory given, for the suites that serve TLS.
//!
//! ```text
//! cargo run -p tests --bin tls-cert -- /tmp/tls
//! ```

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args_os().nth(1).ok_or("usage: tls-cert DIR")?;
    tests::write_self_signed(std::path::Path::new(&dir))
}
