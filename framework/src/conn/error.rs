//! Errors of reading a conn's params and writing its headers.

use std::fmt;

use http::StatusCode;

use crate::controller::IntoResponse;
use crate::Conn;

/// The merged params did not deserialise into the requested type.
///
/// As a response it is a 422 with `{"errors":{"<field>":["<message>"]}}`, or a 400 in the same
/// shape when the request itself could not be decoded (a query string past the limits).
#[derive(Debug)]
pub struct ParamsError {
    field: String,
    message: String,
    status: StatusCode,
}

impl ParamsError {
    /// The request could not be decoded at all: a 400.
    pub(crate) fn malformed(field: &str, message: String) -> Self {
        Self { field: field.to_owned(), message, status: StatusCode::BAD_REQUEST }
    }

    pub(crate) fn from_path_error(err: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = err.path().to_string();
        let inner = err.into_inner().to_string();
        // serde names the missing field in the message, not in the path.
        let field = match inner.strip_prefix("missing field `") {
            Some(rest) => {
                let name = rest.split('`').next().unwrap_or_default();
                if path == "." {
                    name.to_owned()
                } else {
                    format!("{path}.{name}")
                }
            }
            None if path == "." => "params".to_owned(),
            None => path,
        };
        let message = match inner.find(" at line ") {
            Some(i) => inner[..i].to_owned(),
            None => inner,
        };
        Self { field, message, status: StatusCode::UNPROCESSABLE_ENTITY }
    }

    /// The dotted path of the field that failed (`room.name`), or `params` for the whole.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What was wrong with it.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The status it answers with: 422, or 400 for a request that could not be decoded.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl fmt::Display for ParamsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid params: {}: {}", self.field, self.message)
    }
}

impl std::error::Error for ParamsError {}

impl IntoResponse for ParamsError {
    fn render(self, conn: Conn) -> Conn {
        let mut errors = serde_json::Map::new();
        errors.insert(self.field, serde_json::json!([self.message]));
        conn.put_status(self.status).json(&serde_json::json!({ "errors": errors }))
    }
}

/// A response header could not be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidHeader {
    /// The header name is not a valid token.
    Name,
    /// The header value holds characters headers cannot carry.
    Value,
}

impl fmt::Display for InvalidHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name => f.write_str("invalid header name"),
            Self::Value => f.write_str("invalid header value"),
        }
    }
}

impl std::error::Error for InvalidHeader {}
