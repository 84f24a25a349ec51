//! The Fawkes server: a generated `router!` table, a three-plug pipeline on every route, and
//! the endpoint as applications run it.

mod routes10;
mod routes100;
mod routes1000;

use std::net::SocketAddr;

use anyhow::Context as _;
use fawkes::{Conn, Endpoint, Router};
use http::header::HeaderValue;
use http::StatusCode;

use crate::scenario::{Ids, Keys, Message, BENCH_HEADER, BENCH_HEADER_VALUE, DENY_HEADER, HELLO};

pub(super) async fn start(
    addr: SocketAddr,
    routes: usize,
    cors: bool,
    protocol: &super::Protocol,
) -> anyhow::Result<SocketAddr> {
    let mut endpoint = Endpoint::new(router(routes)?);
    if cors {
        endpoint = endpoint.layer(tower_http::cors::CorsLayer::permissive());
    }
    // HTTP/1.1 and h2c are told apart by the first bytes; TLS is the endpoint's own.
    if let super::Protocol::H2Tls(dir) = protocol {
        let tls = fawkes::endpoint::Tls::from_pem_files(dir.join("cert.pem"), dir.join("key.pem"))?;
        endpoint = endpoint.tls(tls);
    }
    let running = endpoint
        .bind(addr)
        .start()
        .await
        .with_context(|| format!("fawkes failed to start on {addr}"))?;
    // The endpoint serves from its own task; dropping the handle does not stop it.
    Ok(running.local_addr())
}

fn router(routes: usize) -> anyhow::Result<Router> {
    Ok(match routes {
        10 => routes10::Routes10::new().into(),
        100 => routes100::Routes100::new().into(),
        1000 => routes1000::Routes1000::new().into(),
        n => anyhow::bail!("the fawkes server has tables of 10, 100 and 1000 routes, not {n}"),
    })
}

// ----- the pipeline: three cheap plugs of the kinds every app has -----

async fn put_bench_header(conn: Conn) -> Conn {
    conn.put_resp_header(BENCH_HEADER, HeaderValue::from_static(BENCH_HEADER_VALUE))
}

/// What an authentication or request-id plug would hand to the action.
#[derive(Debug, Clone)]
struct RequestTag(#[allow(dead_code)] u64);

async fn assign_tag(conn: Conn) -> Conn {
    conn.assign(RequestTag(7))
}

async fn check_deny_header(conn: Conn) -> Conn {
    if conn.headers().contains_key(DENY_HEADER) {
        conn.send_resp(StatusCode::FORBIDDEN, "denied").halt()
    } else {
        conn
    }
}

// ----- actions -----

async fn plaintext(conn: Conn) -> Conn {
    conn.text(HELLO)
}

async fn json(conn: Conn) -> Conn {
    conn.json(&Message { message: HELLO })
}

/// The ids typed, as an application reads them: `conn.param::<u64>`, a 404 for one that does
/// not parse.
async fn deep(conn: Conn) -> Result<Conn, fawkes::conn::ParamsError> {
    let id: u64 = conn.param("id")?;
    let post_id: u64 = conn.param("post_id")?;
    Ok(conn.json(&Ids { id, post_id }))
}

/// The router decoded the JSON body into body params before the pipeline ran.
async fn echo(conn: Conn) -> Conn {
    let keys = conn.body_params().len();
    conn.json(&Keys { keys })
}

async fn filler(conn: Conn) -> Conn {
    conn.text("filler")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tables_have_their_size() {
        assert_eq!(routes10::Routes10::ROUTES.len(), 10);
        assert_eq!(routes100::Routes100::ROUTES.len(), 100);
        assert_eq!(routes1000::Routes1000::ROUTES.len(), 1000);
    }
}
