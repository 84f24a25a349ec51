//! The Phoenix Channels wire format: V1 (JSON objects), V2 (JSON arrays) and V2 binary frames.
//!
//! Decoding turns a client frame into a [`Message`]; encoding turns a push, a reply or a
//! broadcast into the bytes of one frame. A broadcast is encoded once per version and the same
//! bytes go to every subscriber. This module knows nothing about sockets or channels.

pub(crate) mod binary;
#[cfg(test)]
mod tests;

use std::fmt;

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
pub use tokio_tungstenite::tungstenite::Utf8Bytes;

/// The serializer version a client asked for with `vsn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vsn {
    /// `vsn` absent or `1.x`: JSON objects `{"topic","event","payload","ref"}`.
    V1,
    /// `vsn=2.x`: JSON arrays `[join_ref, ref, topic, event, payload]`, and binary frames.
    V2,
}

impl Vsn {
    /// The version as the client names it: `"1.0.0"` or `"2.0.0"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "1.0.0",
            Self::V2 => "2.0.0",
        }
    }

    /// Parses the `vsn` connect param; `None` is 1.0.0.
    ///
    /// # Errors
    ///
    /// An unsupported version, as text to show the client.
    ///
    /// # Examples
    ///
    /// ```
    /// use fawkes::serializer::Vsn;
    /// assert_eq!(Vsn::parse(Some("2.0.0")), Ok(Vsn::V2));
    /// assert_eq!(Vsn::parse(None), Ok(Vsn::V1));
    /// assert!(Vsn::parse(Some("3.0.0")).is_err());
    /// ```
    pub fn parse(vsn: Option<&str>) -> Result<Self, String> {
        match vsn {
            None => Ok(Self::V1),
            Some(v) if v == "1" || v.starts_with("1.") => Ok(Self::V1),
            Some(v) if v == "2" || v.starts_with("2.") => Ok(Self::V2),
            Some(v) => Err(format!("unsupported serializer version {v}")),
        }
    }
}

/// A message payload: JSON, or raw bytes (V2 binary frames only).
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// A JSON value (usually an object).
    Json(Value),
    /// Raw bytes.
    Binary(Bytes),
}

impl Payload {
    /// The JSON value, if this is JSON.
    pub fn as_json(&self) -> Option<&Value> {
        match self {
            Self::Json(v) => Some(v),
            Self::Binary(_) => None,
        }
    }

    /// An empty JSON object.
    pub fn empty() -> Self {
        Self::Json(Value::Object(serde_json::Map::new()))
    }
}

impl From<Value> for Payload {
    fn from(value: Value) -> Self {
        Self::Json(value)
    }
}

impl From<Bytes> for Payload {
    fn from(value: Bytes) -> Self {
        Self::Binary(value)
    }
}

/// A message from a client.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The join reference of the channel it is for.
    pub join_ref: Option<String>,
    /// The message reference replies carry back.
    pub msg_ref: Option<String>,
    /// The topic.
    pub topic: String,
    /// The event.
    pub event: String,
    /// The payload.
    pub payload: Payload,
}

/// One encoded frame. Cloning shares the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A text frame (UTF-8 JSON), validated once so it can go to many sockets as is.
    Text(Utf8Bytes),
    /// A binary frame.
    Binary(Bytes),
}

impl Frame {
    /// Its size in bytes.
    pub fn len(&self) -> usize {
        match self {
            Self::Text(t) => t.len(),
            Self::Binary(b) => b.len(),
        }
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text of a text frame.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(t) => Some(t.as_str()),
            Self::Binary(_) => None,
        }
    }
}

/// A client frame that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed message: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Decodes a text frame.
///
/// # Errors
///
/// Not JSON, not the shape of `vsn`, or fields of the wrong type.
pub fn decode_text(vsn: Vsn, text: &str) -> Result<Message, DecodeError> {
    let value: Value = serde_json::from_str(text).map_err(|e| DecodeError(e.to_string()))?;
    match (vsn, value) {
        (Vsn::V2, Value::Array(items)) => {
            if items.len() < 5 {
                return Err(DecodeError(format!("expected 5 elements, got {}", items.len())));
            }
            let mut items = items.into_iter();
            let join_ref = opt_string(items.next(), "join_ref")?;
            let msg_ref = opt_string(items.next(), "ref")?;
            let topic = string(items.next(), "topic")?;
            let event = string(items.next(), "event")?;
            let payload = items.next().unwrap_or(Value::Null);
            Ok(Message { join_ref, msg_ref, topic, event, payload: Payload::Json(payload) })
        }
        (Vsn::V1, Value::Object(mut map)) => {
            let join_ref = opt_string(map.remove("join_ref"), "join_ref")?;
            let msg_ref = opt_string(map.remove("ref"), "ref")?;
            let topic = string(map.remove("topic"), "topic")?;
            let event = string(map.remove("event"), "event")?;
            let payload = map.remove("payload").unwrap_or(Value::Null);
            Ok(Message { join_ref, msg_ref, topic, event, payload: Payload::Json(payload) })
        }
        (Vsn::V2, _) => Err(DecodeError("expected a JSON array".to_owned())),
        (Vsn::V1, _) => Err(DecodeError("expected a JSON object".to_owned())),
    }
}

/// Decodes a binary frame (V2 only).
///
/// # Errors
///
/// A frame that is not a well-formed client push.
pub fn decode_binary(vsn: Vsn, bytes: &Bytes) -> Result<Message, DecodeError> {
    if vsn != Vsn::V2 {
        return Err(DecodeError("binary frames need serializer 2.0.0".to_owned()));
    }
    binary::decode_push(bytes).map_err(|e| DecodeError(e.to_owned()))
}

fn opt_string(value: Option<Value>, what: &str) -> Result<Option<String>, DecodeError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        // Some clients send numeric refs.
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(DecodeError(format!("{what} must be a string or null"))),
    }
}

fn string(value: Option<Value>, what: &str) -> Result<String, DecodeError> {
    match value {
        Some(Value::String(s)) => Ok(s),
        _ => Err(DecodeError(format!("{what} must be a string"))),
    }
}

/// The reply status of a `phx_reply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `"ok"`.
    Ok,
    /// `"error"`.
    Error,
}

impl Status {
    /// `"ok"` or `"error"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
        }
    }
}

#[derive(Serialize)]
struct V1Frame<'a> {
    topic: &'a str,
    event: &'a str,
    payload: &'a Value,
    #[serde(rename = "ref")]
    msg_ref: Option<&'a str>,
}

#[derive(Serialize)]
struct ReplyPayload<'a> {
    status: &'a str,
    response: &'a Value,
}

fn to_text<T: Serialize>(value: &T) -> Frame {
    // Serialising plain JSON values and strings cannot fail.
    Frame::Text(Utf8Bytes::from(serde_json::to_string(value).unwrap_or_default()))
}

/// A writer that passes what is written on to `inner` up to `limit` bytes in all, and fails
/// past it: a value too large is never written out whole.
struct Limited<W> {
    inner: W,
    written: usize,
    limit: usize,
}

impl<W: std::io::Write> std::io::Write for Limited<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.written += buf.len();
        if self.written > self.limit {
            return Err(std::io::Error::other("over the limit"));
        }
        self.inner.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `value` as JSON into `inner`, stopping past `limit` bytes: the writer, or the bytes
/// counted when it stopped.
fn write_within<W: std::io::Write>(
    inner: W,
    value: &impl serde::Serialize,
    limit: usize,
) -> Result<Limited<W>, usize> {
    let mut out = Limited { inner, written: 0, limit };
    match serde_json::to_writer(&mut out, value) {
        Ok(()) => Ok(out),
        Err(_) => Err(out.written),
    }
}

/// How many bytes `value` takes as JSON, counted without keeping them: `Err` with the bytes
/// counted so far once past `limit`, where the counting stops.
pub(crate) fn json_len(value: &impl serde::Serialize, limit: usize) -> Result<usize, usize> {
    write_within(std::io::sink(), value, limit).map(|out| out.written)
}

/// `value` as JSON, serialized once; `None` when it would take more than `limit` bytes, found
/// out without writing more than that.
#[cfg(feature = "graphql")]
pub(crate) fn json_within(value: &impl serde::Serialize, limit: usize) -> Option<Vec<u8>> {
    write_within(Vec::new(), value, limit).ok().map(|out| out.inner)
}

/// Encodes a push from the server to one client (`join_ref` set, `ref` null).
///
/// A binary payload needs V2; for V1 it is `None`.
pub fn encode_push(
    vsn: Vsn,
    join_ref: Option<&str>,
    topic: &str,
    event: &str,
    payload: &Payload,
) -> Option<Frame> {
    encode_message(vsn, join_ref, None, topic, event, payload)
}

/// Encodes any server message; `phx_close` and `phx_error` carry the join ref as `ref`.
pub fn encode_message(
    vsn: Vsn,
    join_ref: Option<&str>,
    msg_ref: Option<&str>,
    topic: &str,
    event: &str,
    payload: &Payload,
) -> Option<Frame> {
    match (vsn, payload) {
        (Vsn::V2, Payload::Json(p)) => Some(to_text(&(join_ref, msg_ref, topic, event, p))),
        (Vsn::V1, Payload::Json(p)) => {
            Some(to_text(&V1Frame { topic, event, payload: p, msg_ref }))
        }
        (Vsn::V2, Payload::Binary(b)) => {
            binary::encode_push(join_ref.unwrap_or_default(), topic, event, b).map(Frame::Binary)
        }
        (Vsn::V1, Payload::Binary(_)) => None,
    }
}

/// Encodes a push whose payload is JSON text already (encoded once for many clients), spliced
/// into the frame rather than parsed and encoded again.
pub(crate) fn encode_push_json(
    vsn: Vsn,
    join_ref: Option<&str>,
    topic: &str,
    event: &str,
    payload: &str,
) -> Frame {
    let mut text = match vsn {
        // `[<join_ref>,null,"<topic>","<event>"]` without its closing bracket.
        Vsn::V2 => {
            let mut head =
                serde_json::to_string(&(join_ref, None::<&str>, topic, event)).unwrap_or_default();
            head.pop();
            head.push(',');
            head
        }
        Vsn::V1 => {
            let topic = serde_json::to_string(topic).unwrap_or_default();
            let event = serde_json::to_string(event).unwrap_or_default();
            format!(r#"{{"topic":{topic},"event":{event},"ref":null,"payload":"#)
        }
    };
    text.reserve(payload.len() + 1);
    text.push_str(payload);
    text.push(if vsn == Vsn::V2 { ']' } else { '}' });
    Frame::Text(Utf8Bytes::from(text))
}

/// Encodes a broadcast (`join_ref` and `ref` null).
pub fn encode_broadcast(vsn: Vsn, topic: &str, event: &str, payload: &Payload) -> Option<Frame> {
    match (vsn, payload) {
        (Vsn::V2, Payload::Binary(b)) => {
            binary::encode_broadcast(topic, event, b).map(Frame::Binary)
        }
        _ => encode_push(vsn, None, topic, event, payload),
    }
}

/// Encodes a `phx_reply` to the message with `msg_ref`.
pub fn encode_reply(
    vsn: Vsn,
    join_ref: Option<&str>,
    msg_ref: Option<&str>,
    topic: &str,
    status: Status,
    response: &Payload,
) -> Option<Frame> {
    match (vsn, response) {
        (Vsn::V2, Payload::Json(r)) => {
            let payload = ReplyPayload { status: status.as_str(), response: r };
            Some(to_text(&(join_ref, msg_ref, topic, "phx_reply", payload)))
        }
        (Vsn::V1, Payload::Json(r)) => {
            let payload = serde_json::json!({ "status": status.as_str(), "response": r });
            Some(to_text(&V1Frame { topic, event: "phx_reply", payload: &payload, msg_ref }))
        }
        (Vsn::V2, Payload::Binary(b)) => binary::encode_reply(
            join_ref.unwrap_or_default(),
            msg_ref.unwrap_or_default(),
            topic,
            status.as_str(),
            b,
        )
        .map(Frame::Binary),
        (Vsn::V1, Payload::Binary(_)) => None,
    }
}
