//! Errors of reading a conn's params and writing its headers.

use std::fmt;

use http::StatusCode;
use serde_path_to_error::Segment;

use super::field_errors::{FieldErrors, PathSegment};

/// The params did not decode into the requested type, or did not pass its validation rules.
///
/// As a response:
/// - 422 with the errors per field in Phoenix's shape (see [`FieldErrors`]):
///   `{"errors":{"title":["can't be blank"],"qty":["is invalid"]}}`;
/// - 404 `{"errors":{"detail":"Not Found"}}` when a path param does not parse into its type
///   (`/todos/abc` for an integer id names nothing that can exist);
/// - 400 in the 422 shape when the request itself could not be decoded (a query string past
///   the limits, params missing the key they were expected under).
#[derive(Debug, Clone)]
pub struct ParamsError {
    errors: FieldErrors,
    status: StatusCode,
    /// What the decoder said, for the logs: the client gets Phoenix's words.
    detail: Option<String>,
}

impl ParamsError {
    /// The request could not be decoded at all: a 400.
    pub(crate) fn malformed(field: &str, message: String) -> Self {
        let mut errors = FieldErrors::new();
        errors.add(field, message);
        Self { errors, status: StatusCode::BAD_REQUEST, detail: None }
    }

    /// A path param that cannot name anything: a 404.
    pub(crate) fn not_found(field: &str, detail: String) -> Self {
        let mut errors = FieldErrors::new();
        errors.add(field, "is invalid");
        Self { errors, status: StatusCode::NOT_FOUND, detail: Some(detail) }
    }

    /// One field that failed to decode: a 422.
    pub(crate) fn on_field(field: &str, message: &str, detail: String) -> Self {
        let mut errors = FieldErrors::new();
        errors.add(field, message);
        Self { errors, status: StatusCode::UNPROCESSABLE_ENTITY, detail: Some(detail) }
    }

    /// Errors a validation found, or a caller put together: a 422.
    pub fn invalid(errors: impl Into<FieldErrors>) -> Self {
        Self { errors: errors.into(), status: StatusCode::UNPROCESSABLE_ENTITY, detail: None }
    }

    pub(crate) fn from_path_error(err: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let mut path: Vec<PathSegment> = err
            .path()
            .iter()
            .filter_map(|segment| match segment {
                Segment::Seq { index } => Some(PathSegment::Index(*index)),
                Segment::Map { key } => Some(PathSegment::Field(key.clone())),
                Segment::Enum { .. } | Segment::Unknown => None,
            })
            .collect();
        let inner = err.into_inner().to_string();
        let detail = match inner.find(" at line ") {
            Some(i) => inner[..i].to_owned(),
            None => inner,
        };
        // serde names the missing field in the message, not in the path.
        let message = match detail.strip_prefix("missing field `") {
            Some(rest) => {
                path.push(PathSegment::Field(
                    rest.split('`').next().unwrap_or_default().to_owned(),
                ));
                "can't be blank"
            }
            None => "is invalid",
        };
        let mut errors = FieldErrors::new();
        errors.add_at(&path, message);
        Self { errors, status: StatusCode::UNPROCESSABLE_ENTITY, detail: Some(detail) }
    }

    /// Turns a 422 on `field` into a 404: for a path param.
    pub(crate) fn on_path_param(self, is_path_param: impl Fn(&str) -> bool) -> Self {
        match self.errors.first() {
            Some((path, _))
                if self.status == StatusCode::UNPROCESSABLE_ENTITY && is_path_param(&path) =>
            {
                Self::not_found(&path, self.detail.unwrap_or_default())
            }
            _ => self,
        }
    }

    /// The dotted path of the first field that failed (`room.name`, `items.1.qty`), or
    /// `params` for the whole.
    pub fn field(&self) -> String {
        self.errors.first().map_or_else(|| "params".to_owned(), |(path, _)| path)
    }

    /// The first field's first message, in Phoenix's words (`can't be blank`, `is invalid`).
    pub fn message(&self) -> &str {
        self.errors.first().map_or("is invalid", |(_, message)| message)
    }

    /// Every field's errors.
    pub fn errors(&self) -> &FieldErrors {
        &self.errors
    }

    /// What the decoder said about the first failure (`invalid digit found in string`), for
    /// logs; `None` for errors from validation rules.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The status it answers with: 422, 404 for a path param, 400 for a request that could
    /// not be decoded.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl fmt::Display for ParamsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid params: {}: {}", self.field(), self.message())?;
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParamsError {}

impl From<FieldErrors> for ParamsError {
    fn from(errors: FieldErrors) -> Self {
        Self::invalid(errors)
    }
}

impl From<validator::ValidationErrors> for ParamsError {
    fn from(errors: validator::ValidationErrors) -> Self {
        Self::invalid(errors)
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
