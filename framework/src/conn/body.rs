//! The body type shared by requests and responses.

use std::any::Any;
use std::fmt;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;

use crate::BoxError;

/// A request or response body.
///
/// Empty and in-memory bodies carry no allocation beyond their bytes, so the common case of a
/// small JSON or text response costs no boxing; streams (hyper's incoming body, a tower layer's
/// compressed body) are kept as they are.
///
/// # Examples
///
/// ```
/// use fawkes::Body;
///
/// let body = Body::from("hello");
/// assert_eq!(body.as_bytes().unwrap(), b"hello");
/// ```
pub struct Body(Inner);

enum Inner {
    Empty,
    Full(Option<Bytes>),
    Incoming(Reading),
    Boxed(UnsyncBoxBody<Bytes, BoxError>),
}

/// Who is told when a request body waits for its client, and how long it may wait.
///
/// The endpoint watches the bodies of its connections: a body that waits longer than the
/// timeout between two pieces fails with [`BodyError::TimedOut`], and a connection whose body
/// waits is one the endpoint may close first when it runs out of connections.
pub(crate) trait ReadWatch: Send + Sync {
    /// The longest wait for the next piece of the body.
    fn timeout(&self) -> std::time::Duration;
    /// The body started (`true`) or stopped (`false`) waiting for the client.
    fn waiting(&self, waiting: bool);
    /// `bytes` more of a body are held in memory until it is whole; false, counting nothing,
    /// when the endpoint holds as many as it may.
    fn buffer(&self, bytes: usize) -> bool;
    /// `bytes` of bodies are no longer held for the whole.
    fn unbuffer(&self, bytes: usize);
}

/// The bytes one [`Body::collect`] holds, counted against the endpoint's budget until it ends.
struct Buffered {
    watch: Option<std::sync::Arc<dyn ReadWatch>>,
    bytes: usize,
}

impl Buffered {
    fn add(&mut self, bytes: usize) -> bool {
        match &self.watch {
            Some(watch) if !watch.buffer(bytes) => false,
            _ => {
                self.bytes += bytes;
                true
            }
        }
    }
}

impl Drop for Buffered {
    fn drop(&mut self) {
        if let Some(watch) = &self.watch {
            watch.unbuffer(self.bytes);
        }
    }
}

/// hyper's incoming body, and the watch over its waits for the client.
struct Reading {
    body: hyper::body::Incoming,
    watch: Option<std::sync::Arc<dyn ReadWatch>>,
    /// The deadline of the current wait, made on the first wait and reset on later ones.
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
    waiting: bool,
}

impl Reading {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        let Some(watch) = &self.watch else { return polled.map_err(Into::into) };
        if polled.is_ready() {
            if self.waiting {
                self.waiting = false;
                watch.waiting(false);
            }
            return polled.map_err(Into::into);
        }
        if !self.waiting {
            self.waiting = true;
            watch.waiting(true);
            let deadline = tokio::time::Instant::now() + watch.timeout();
            match &mut self.stall {
                Some(stall) => stall.as_mut().reset(deadline),
                None => self.stall = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        let stall = self.stall.as_mut().expect("armed above");
        if stall.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(TimedOut(watch.timeout())))));
        }
        Poll::Pending
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        if let (true, Some(watch)) = (self.waiting, &self.watch) {
            watch.waiting(false);
        }
    }
}

/// A request body that waited for its client past the read timeout.
#[derive(Debug)]
struct TimedOut(std::time::Duration);

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no request body data for {:?}", self.0)
    }
}

impl std::error::Error for TimedOut {}

impl Body {
    /// An empty body.
    pub const fn empty() -> Self {
        Self(Inner::Empty)
    }

    /// Wraps any [`http_body::Body`] whose data is [`Bytes`].
    pub fn new<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        // Avoid boxing twice, and keep hyper's body unboxed: both are the hot path.
        let mut slot = Some(body);
        if let Some(body) = (&mut slot as &mut dyn Any).downcast_mut::<Option<Body>>() {
            return body.take().unwrap_or_default();
        }
        if let Some(body) =
            (&mut slot as &mut dyn Any).downcast_mut::<Option<hyper::body::Incoming>>()
        {
            return body
                .take()
                .map(|body| {
                    Self(Inner::Incoming(Reading {
                        body,
                        watch: None,
                        stall: None,
                        waiting: false,
                    }))
                })
                .unwrap_or_default();
        }
        let body = slot.take().expect("slot is filled above");
        Self(Inner::Boxed(body.map_err(Into::into).boxed_unsync()))
    }

    /// Puts a body that is still to come from the client under `watch`.
    pub(crate) fn watch_reads(&mut self, watch: &std::sync::Arc<dyn ReadWatch>) {
        if let Inner::Incoming(reading) = &mut self.0 {
            if !reading.body.is_end_stream() {
                reading.watch = Some(watch.clone());
            }
        }
    }

    /// Replaces the bytes of an in-memory body with `f`'s; streams are left as they are.
    pub(crate) fn map_bytes(&mut self, f: impl FnOnce(Bytes) -> Bytes) {
        if let Inner::Full(bytes @ Some(_)) = &mut self.0 {
            *bytes = bytes.take().map(f);
        }
    }

    /// The bytes of an in-memory body; `None` for streams.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.0 {
            Inner::Empty => Some(&[]),
            Inner::Full(bytes) => Some(bytes.as_deref().unwrap_or_default()),
            _ => None,
        }
    }

    /// Reads the whole body into memory, failing past `limit` bytes.
    ///
    /// # Errors
    ///
    /// [`BodyError::TooLarge`] past the limit, [`BodyError::Read`] when the stream fails.
    pub async fn collect(self, limit: usize) -> Result<Bytes, BodyError> {
        match self.0 {
            Inner::Empty => Ok(Bytes::new()),
            Inner::Full(bytes) => {
                let bytes = bytes.unwrap_or_default();
                if bytes.len() > limit {
                    return Err(BodyError::TooLarge);
                }
                Ok(bytes)
            }
            inner => {
                // What the client has sent of a body still coming counts against the
                // endpoint's budget until the body is whole: bodies trickled in slowly on many
                // streams would otherwise hold the limit's worth of memory each.
                let watch = match &inner {
                    Inner::Incoming(reading) => reading.watch.clone(),
                    _ => None,
                };
                let mut held = Buffered { watch, bytes: 0 };
                let mut body = Body(inner);
                let mut whole = bytes::BytesMut::new();
                while let Some(frame) = body.frame().await {
                    let frame = match frame {
                        Ok(frame) => frame,
                        Err(err) if err.is::<TimedOut>() => return Err(BodyError::TimedOut),
                        // A body limit of a tower layer around the router (tower-http's
                        // `RequestBodyLimitLayer`): the same 413 as the router's own limit.
                        Err(err) if err.is::<http_body_util::LengthLimitError>() => {
                            return Err(BodyError::TooLarge)
                        }
                        Err(err) => return Err(BodyError::Read(err)),
                    };
                    let Ok(data) = frame.into_data() else { continue };
                    if whole.len().saturating_add(data.len()) > limit {
                        return Err(BodyError::TooLarge);
                    }
                    if !held.add(data.len()) {
                        return Err(BodyError::Busy);
                    }
                    whole.extend_from_slice(&data);
                }
                Ok(whole.freeze())
            }
        }
    }
}

/// Why a body could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum BodyError {
    /// The body is larger than the configured limit.
    TooLarge,
    /// The underlying stream failed.
    Read(BoxError),
    /// The client sent nothing for longer than the endpoint's body read timeout.
    TimedOut,
    /// The endpoint holds as many bytes of unfinished bodies as it may
    /// ([`Config::max_buffered_body_bytes`](crate::endpoint::Config::max_buffered_body_bytes)).
    Busy,
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge => f.write_str("body too large"),
            Self::Read(err) => write!(f, "failed to read body: {err}"),
            Self::TimedOut => f.write_str("timed out waiting for the body"),
            Self::Busy => f.write_str("too many bodies being received at once"),
        }
    }
}

impl std::error::Error for BodyError {}

impl Default for Body {
    fn default() -> Self {
        Self::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Empty => f.write_str("Body::Empty"),
            Inner::Full(b) => {
                f.debug_tuple("Body::Full").field(&b.as_ref().map(Bytes::len)).finish()
            }
            Inner::Incoming(_) => f.write_str("Body::Incoming"),
            Inner::Boxed(_) => f.write_str("Body::Stream"),
        }
    }
}

macro_rules! from_bytes {
    ($($ty:ty),*) => {$(
        impl From<$ty> for Body {
            fn from(value: $ty) -> Self {
                let bytes = Bytes::from(value);
                if bytes.is_empty() { Self::empty() } else { Self(Inner::Full(Some(bytes))) }
            }
        }
    )*};
}
from_bytes!(Bytes, String, Vec<u8>, &'static str, &'static [u8]);

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.0 {
            Inner::Empty => Poll::Ready(None),
            Inner::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Inner::Incoming(reading) => reading.poll_frame(cx),
            Inner::Boxed(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Empty => true,
            Inner::Full(bytes) => bytes.is_none(),
            Inner::Incoming(reading) => reading.body.is_end_stream(),
            Inner::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::Empty => SizeHint::with_exact(0),
            Inner::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Inner::Incoming(reading) => reading.body.size_hint(),
            Inner::Boxed(body) => body.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn collect_respects_the_limit() {
        let body = Body::new(http_body_util::Full::new(Bytes::from_static(b"0123456789")));
        assert!(matches!(body.collect(4).await, Err(BodyError::TooLarge)));
        let body = Body::new(http_body_util::Full::new(Bytes::from_static(b"0123")));
        assert_eq!(body.collect(4).await.unwrap(), "0123");
        assert!(matches!(Body::from("12345").collect(4).await, Err(BodyError::TooLarge)));
    }

    #[test]
    fn wrapping_a_body_does_not_box_it_again() {
        let body = Body::new(Body::from("x"));
        assert_eq!(body.as_bytes(), Some(&b"x"[..]));
    }
}
