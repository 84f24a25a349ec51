//! How API actions' errors become responses, in Phoenix's JSON error shapes.

use fawkes::conn::ParamsError;
use fawkes::{ActionError, Conn, FieldErrors, RenderError};

use crate::chat;

/// Why an API action did not succeed.
#[derive(Debug)]
#[non_exhaustive]
pub enum FallbackError {
    /// 404 `{"errors":{"detail":"Not Found"}}`.
    NotFound,
    /// 422 `{"errors":{"<field>":["can't be blank"]}}`.
    Invalid(FieldErrors),
    /// Params that did not decode: 422, or 404 for an id in the path that cannot exist, or 400
    /// without the expected object (`{"room": {...}}`).
    Params(ParamsError),
    /// A logged 500; the client learns nothing about the cause.
    Database(sqlx::Error),
}

impl From<chat::Error> for FallbackError {
    fn from(err: chat::Error) -> Self {
        match err {
            chat::Error::NotFound => Self::NotFound,
            chat::Error::Invalid(errors) => Self::Invalid(errors),
            chat::Error::Database(err) => Self::Database(err),
        }
    }
}

impl From<ParamsError> for FallbackError {
    fn from(err: ParamsError) -> Self {
        Self::Params(err)
    }
}

impl RenderError for FallbackError {
    fn render(self, conn: Conn) -> Conn {
        match self {
            Self::NotFound => ActionError::not_found().render(conn),
            Self::Invalid(errors) => ActionError::from(errors).render(conn),
            Self::Params(err) => err.render(conn),
            Self::Database(err) => {
                tracing::error!(method = %conn.method(), path = conn.path(), error = %err, "database error");
                ActionError::internal().render(conn)
            }
        }
    }
}
