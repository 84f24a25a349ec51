//! Typed payloads: a channel decodes what a client pushed the way a controller decodes params,
//! with the same field names and messages in its error reply.

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::Reply;
use crate::conn::FieldErrors;
use crate::serializer::Payload;

impl Payload {
    /// Decodes a JSON payload into `T`, as [`Conn::params`](crate::Conn::params) decodes
    /// params: numbers and booleans sent as strings parse into their fields' types, and a field
    /// that does not decode is named in the error, nested fields as `user.name`.
    ///
    /// # Errors
    ///
    /// A [`PayloadError`] naming the fields that did not decode, or `payload` itself for a
    /// binary payload or a JSON value that is not what `T` reads. It turns into an error
    /// [`Reply`] with `?` in a function returning `Result<Reply, Reply>`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fawkes::channel::{Payload, Reply};
    /// use serde_json::json;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct NewMsg {
    ///     body: String,
    ///     room_id: u64,
    /// }
    ///
    /// fn new_msg(payload: &Payload) -> Result<Reply, Reply> {
    ///     let msg: NewMsg = payload.decode()?;
    ///     Ok(Reply::ok(json!({ "room": msg.room_id, "length": msg.body.len() })))
    /// }
    ///
    /// let ok = new_msg(&Payload::from(json!({ "body": "hi", "room_id": "7" })));
    /// assert_eq!(ok, Ok(Reply::ok(json!({ "room": 7, "length": 2 }))));
    ///
    /// let refused = new_msg(&Payload::from(json!({ "room_id": "seven" })));
    /// assert_eq!(refused, Err(Reply::error(json!({ "errors": { "room_id": ["is invalid"] } }))));
    /// ```
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, PayloadError> {
        match self {
            Self::Json(Value::Object(map)) => {
                crate::conn::de::from_map(map, false).map_err(|err| PayloadError {
                    errors: err.errors().clone(),
                    detail: err.detail().map(str::to_owned),
                })
            }
            Self::Json(value) => crate::conn::de::from_value(value, false)
                .map_err(|err| PayloadError::whole("is invalid", Some(err.to_string()))),
            Self::Binary(_) => Err(PayloadError::whole("must be JSON", None)),
        }
    }

    /// [`Payload::decode`] and `T`'s validation rules in one call, as
    /// [`Conn::cast`](crate::Conn::cast) does for params: the rules' errors in Ecto's words.
    ///
    /// # Errors
    ///
    /// As [`Payload::decode`], and the rules `T` breaks.
    pub fn cast<T: DeserializeOwned + validator::Validate>(&self) -> Result<T, PayloadError> {
        let value: T = self.decode()?;
        value.validate().map_err(|errors| PayloadError { errors: errors.into(), detail: None })?;
        Ok(value)
    }
}

/// A payload that did not decode into the type asked for, or broke its rules: the errors per
/// field, in the shape controllers answer 422 with ([`FieldErrors`]).
///
/// As a [`Reply`], an `error` reply with `{"errors": {"field": ["message"]}}`.
#[derive(Debug, Clone)]
pub struct PayloadError {
    errors: FieldErrors,
    /// What the decoder said, for the logs: the client gets Phoenix's words.
    detail: Option<String>,
}

impl PayloadError {
    fn whole(message: &str, detail: Option<String>) -> Self {
        let mut errors = FieldErrors::new();
        errors.add("payload", message);
        Self { errors, detail }
    }

    /// The errors per field.
    pub fn errors(&self) -> &FieldErrors {
        &self.errors
    }

    /// What the decoder said, when it said more than the client is told.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid payload: {}", self.errors)?;
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        Ok(())
    }
}

impl std::error::Error for PayloadError {}

impl From<PayloadError> for Reply {
    fn from(err: PayloadError) -> Self {
        tracing::debug!(error = %err, "payload refused");
        Reply::error(json!({ "errors": err.errors }))
    }
}
