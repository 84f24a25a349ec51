//! How API actions' errors become responses, in Phoenix's JSON error shapes.

use fawkes::conn::ParamsError;
use fawkes::{ActionError, Conn, IntoResponse};
use http::StatusCode;
use serde_json::json;

use crate::chat::{self, FieldErrors};

/// Why an API action did not succeed.
#[derive(Debug)]
#[non_exhaustive]
pub enum FallbackError {
    /// 404 `{"errors":{"detail":"Not Found"}}`.
    NotFound,
    /// 422 `{"errors":{"<field>":["can't be blank"]}}`.
    Invalid(FieldErrors),
    /// 422 from params that did not have the expected shape.
    Params(ParamsError),
    /// A logged 500; the client learns nothing about the cause.
    Database(sqlx::Error),
    /// The router was not built by `router::build`, so no repo was assigned: a logged 500.
    MissingRepo,
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

impl IntoResponse for FallbackError {
    fn render(self, conn: Conn) -> Conn {
        match self {
            Self::NotFound => ActionError::not_found().render(conn),
            Self::Invalid(errors) => conn
                .put_status(StatusCode::UNPROCESSABLE_ENTITY)
                .json(&json!({ "errors": errors.fields() })),
            Self::Params(err) => err.render(conn),
            Self::Database(err) => {
                tracing::error!(method = %conn.method(), path = conn.path(), error = %err, "database error");
                ActionError::internal().render(conn)
            }
            Self::MissingRepo => {
                tracing::error!(
                    path = conn.path(),
                    "no repo assigned; build the router with example_app::router::build"
                );
                ActionError::internal().render(conn)
            }
        }
    }
}
