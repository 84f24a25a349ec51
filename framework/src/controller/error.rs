//! A ready-made action error in Phoenix's JSON shapes.

use std::fmt;

use http::StatusCode;
use serde_json::json;

use super::RenderError;
use crate::conn::{FieldErrors, ParamsError};
use crate::Conn;

/// An HTTP error rendered as JSON the way Phoenix's error views render it.
///
/// `{"errors":{"detail":"Not Found"}}` for most statuses and
/// `{"errors":{"name":["can't be blank"]}}` for validation failures (422).
///
/// # Examples
///
/// ```
/// use fawkes::{ActionError, Conn};
///
/// async fn create(conn: Conn) -> Result<Conn, ActionError> {
///     let name = conn.param_map().get("name").and_then(|v| v.as_str()).unwrap_or("").to_owned();
///     if name.trim().is_empty() {
///         return Err(ActionError::validation("name", "can't be blank"));
///     }
///     Ok(conn.text(format!("hello {name}")))
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionError {
    status: StatusCode,
    body: ErrorBody,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ErrorBody {
    Detail(String),
    Fields(FieldErrors),
}

impl ActionError {
    /// An error with `status` and its canonical reason as detail.
    pub fn status(status: StatusCode) -> Self {
        let detail = status.canonical_reason().unwrap_or("Error").to_owned();
        Self { status, body: ErrorBody::Detail(detail) }
    }

    /// 400 Bad Request.
    pub fn bad_request() -> Self {
        Self::status(StatusCode::BAD_REQUEST)
    }

    /// 401 Unauthorized.
    pub fn unauthorized() -> Self {
        Self::status(StatusCode::UNAUTHORIZED)
    }

    /// 403 Forbidden.
    pub fn forbidden() -> Self {
        Self::status(StatusCode::FORBIDDEN)
    }

    /// 404 Not Found.
    pub fn not_found() -> Self {
        Self::status(StatusCode::NOT_FOUND)
    }

    /// 500 Internal Server Error.
    pub fn internal() -> Self {
        Self::status(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// Logs `err` and returns a 500 that does not reveal it.
    pub fn internal_from(err: impl fmt::Display) -> Self {
        tracing::error!(error = %err, "action failed");
        Self::internal()
    }

    /// 422 with one field error; add more with [`ActionError::and`].
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: ErrorBody::Fields(FieldErrors::new()),
        }
        .and(field, message)
    }

    /// Adds a field error, turning the error into a 422 validation error.
    #[must_use]
    pub fn and(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        if !matches!(self.body, ErrorBody::Fields(_)) {
            self.status = StatusCode::UNPROCESSABLE_ENTITY;
            self.body = ErrorBody::Fields(FieldErrors::new());
        }
        if let ErrorBody::Fields(fields) = &mut self.body {
            fields.add(field, message);
        }
        self
    }

    /// Replaces the detail message.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.body = ErrorBody::Detail(detail.into());
        self
    }

    /// Renders the error and halts the pipeline: for plugs that refuse a request.
    pub fn render_halted(self, conn: Conn) -> Conn {
        self.render(conn).halt()
    }

    /// The response status.
    pub fn status_code(&self) -> StatusCode {
        self.status
    }
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.body {
            ErrorBody::Detail(detail) => write!(f, "{}: {detail}", self.status.as_u16()),
            ErrorBody::Fields(fields) => write!(f, "{}: {fields}", self.status.as_u16()),
        }
    }
}

impl std::error::Error for ActionError {}

impl RenderError for ActionError {
    fn render(self, conn: Conn) -> Conn {
        match self.body {
            ErrorBody::Detail(detail) => conn.render_error_detail(self.status, &detail),
            ErrorBody::Fields(fields) => {
                conn.put_status(self.status).json(&json!({ "errors": fields }))
            }
        }
    }
}

impl RenderError for ParamsError {
    fn render(self, conn: Conn) -> Conn {
        let status = self.status();
        tracing::debug!(status = status.as_u16(), error = %self, "params rejected");
        if status == StatusCode::NOT_FOUND {
            return ActionError::not_found().render(conn);
        }
        conn.put_status(status).json(&json!({ "errors": self.errors() }))
    }
}

impl From<ParamsError> for ActionError {
    fn from(err: ParamsError) -> Self {
        match err.status() {
            StatusCode::NOT_FOUND => Self::not_found(),
            status => Self { status, body: ErrorBody::Fields(err.errors().clone()) },
        }
    }
}

impl From<FieldErrors> for ActionError {
    /// A 422 with these errors.
    fn from(errors: FieldErrors) -> Self {
        Self { status: StatusCode::UNPROCESSABLE_ENTITY, body: ErrorBody::Fields(errors) }
    }
}

impl From<validator::ValidationErrors> for ActionError {
    /// A 422 with the failed rules in Phoenix's words; see [`crate::conn::validate`].
    fn from(errors: validator::ValidationErrors) -> Self {
        FieldErrors::from(errors).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(err: ActionError) -> (StatusCode, serde_json::Value) {
        let conn = Conn::from_request(http::Request::get("/").body(crate::Body::empty()).unwrap());
        let conn = err.render(conn);
        (conn.status(), serde_json::from_slice(conn.resp_body_bytes().unwrap()).unwrap())
    }

    #[test]
    fn renders_phoenix_shapes() {
        assert_eq!(
            render(ActionError::not_found()),
            (StatusCode::NOT_FOUND, json!({"errors":{"detail":"Not Found"}}))
        );
        assert_eq!(
            render(ActionError::validation("name", "can't be blank").and("name", "is too short")),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"errors":{"name":["can't be blank","is too short"]}})
            )
        );
        assert_eq!(
            render(ActionError::bad_request().with_detail("malformed JSON")),
            (StatusCode::BAD_REQUEST, json!({"errors":{"detail":"malformed JSON"}}))
        );
    }
}
