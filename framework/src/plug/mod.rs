//! Plugs: the steps of a pipeline.
//!
//! A plug takes a [`Conn`] and gives it back, maybe with assigns, response headers or a
//! finished, [halted](Conn::halt) response. Plain `async fn(Conn) -> Conn` functions are plugs,
//! and so is any struct implementing [`Plug`]. Any `tower::Layer` can stand in a pipeline too,
//! through [`layer`]: it wraps the rest of the pipeline and the action, exactly where it is
//! written.
//!
//! This module knows nothing about routes: the router strings plugs into a [`Pipeline`].

pub(crate) mod chain;
mod layer;
mod pipeline;
mod request_id;

use std::future::Future;

#[doc(hidden)]
pub use chain::{Chain, TypedStage, TypedStages};
pub use layer::{layer, LayerPlug, Next};
pub use pipeline::{IntoStage, Pipeline, Stage};
pub use request_id::{request_id, RequestId, RequestIdPlug};

use crate::Conn;

/// One step of a pipeline.
///
/// # Examples
///
/// A function plug and a struct plug:
///
/// ```
/// use fawkes::{Conn, Plug};
/// use http::StatusCode;
///
/// async fn put_server_header(conn: Conn) -> Conn {
///     conn.put_resp_header("server", "fawkes")
/// }
///
/// struct RequireHeader(&'static str);
///
/// impl Plug for RequireHeader {
///     async fn call(&self, conn: Conn) -> Conn {
///         if conn.header(self.0).is_some() {
///             conn
///         } else {
///             conn.send_resp(StatusCode::BAD_REQUEST, "missing header").halt()
///         }
///     }
/// }
/// ```
pub trait Plug: Send + Sync + 'static {
    /// Runs the plug.
    fn call(&self, conn: Conn) -> impl Future<Output = Conn> + Send;
}

impl<F, Fut> Plug for F
where
    F: Fn(Conn) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Conn> + Send,
{
    fn call(&self, conn: Conn) -> impl Future<Output = Conn> + Send {
        self(conn)
    }
}

/// A plug that answers only requests whose `accept` header allows one of `formats`
/// (Phoenix's `accepts`); others get 406. No `accept` header, or `*/*`, passes.
///
/// # Examples
///
/// ```
/// let plug = fawkes::plug::accepts(["json"]);
/// ```
pub fn accepts<const N: usize>(formats: [&'static str; N]) -> Accepts {
    Accepts { formats: formats.to_vec() }
}

/// See [`accepts`].
#[derive(Debug, Clone)]
pub struct Accepts {
    formats: Vec<&'static str>,
}

impl Plug for Accepts {
    async fn call(&self, conn: Conn) -> Conn {
        let Some(accept) = conn.header(http::header::ACCEPT) else { return conn };
        let ok = accept.split(',').any(|item| {
            let mime = item.split(';').next().unwrap_or_default().trim();
            mime == "*/*"
                || self.formats.iter().any(|f| {
                    let sub = mime.split('/').nth(1).unwrap_or_default();
                    sub == *f || sub.ends_with(&format!("+{f}")) || mime == *f
                })
        });
        if ok {
            conn
        } else {
            crate::controller::ActionError::status(http::StatusCode::NOT_ACCEPTABLE)
                .with_detail(format!("no supported media type in accept header: {accept}"))
                .render_halted(conn)
        }
    }
}

#[cfg(test)]
mod tests;
