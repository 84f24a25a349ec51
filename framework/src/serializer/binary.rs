//! V2 binary frames: a kind byte, one length byte per string field, the fields, the payload.

use bytes::{BufMut, Bytes, BytesMut};

use super::{Message, Payload};

const PUSH: u8 = 0;
const REPLY: u8 = 1;
const BROADCAST: u8 = 2;

/// Decodes a client push: `[0][jr_len][ref_len][topic_len][event_len] join_ref ref topic event payload`.
pub(super) fn decode_push(bytes: &Bytes) -> Result<Message, &'static str> {
    let header = bytes.get(..5).ok_or("binary frame too short")?;
    if header[0] != PUSH {
        return Err("binary frame kind must be 0 (push)");
    }
    let lens = [header[1], header[2], header[3], header[4]].map(usize::from);
    let mut at = 5;
    let mut fields = Vec::with_capacity(4);
    for len in lens {
        let raw = bytes.get(at..at + len).ok_or("binary frame truncated")?;
        fields.push(std::str::from_utf8(raw).map_err(|_| "binary frame field is not UTF-8")?);
        at += len;
    }
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    Ok(Message {
        join_ref: non_empty(fields[0]),
        msg_ref: non_empty(fields[1]),
        topic: fields[2].to_owned(),
        event: fields[3].to_owned(),
        payload: Payload::Binary(bytes.slice(at..)),
    })
}

/// A frame the server sent, read back (for `ChannelTest`): its kind and its fields.
#[cfg(feature = "test")]
pub(crate) enum ServerFrame {
    /// `[join_ref, topic, event]`.
    Push([String; 3], Bytes),
    /// `[join_ref, ref, topic, status]`.
    Reply([String; 4], Bytes),
    /// `[topic, event]`.
    Broadcast([String; 2], Bytes),
}

/// Reads a binary frame the server encoded: the inverse of the `encode_*` functions here.
#[cfg(feature = "test")]
pub(crate) fn decode_server(bytes: &Bytes) -> Result<ServerFrame, &'static str> {
    fn fields<const N: usize>(bytes: &Bytes) -> Result<([String; N], Bytes), &'static str> {
        let lens = bytes.get(1..=N).ok_or("binary frame too short")?;
        let mut at = 1 + N;
        let mut out: [String; N] = std::array::from_fn(|_| String::new());
        for (field, len) in out.iter_mut().zip(lens.iter().map(|l| usize::from(*l))) {
            let raw = bytes.get(at..at + len).ok_or("binary frame truncated")?;
            *field = std::str::from_utf8(raw).map_err(|_| "field is not UTF-8")?.to_owned();
            at += len;
        }
        Ok((out, bytes.slice(at..)))
    }
    match bytes.first() {
        Some(&PUSH) => fields::<3>(bytes).map(|(f, p)| ServerFrame::Push(f, p)),
        Some(&REPLY) => fields::<4>(bytes).map(|(f, p)| ServerFrame::Reply(f, p)),
        Some(&BROADCAST) => fields::<2>(bytes).map(|(f, p)| ServerFrame::Broadcast(f, p)),
        _ => Err("unknown binary frame kind"),
    }
}

fn len(field: &str) -> Option<u8> {
    u8::try_from(field.len()).ok()
}

/// `[0][jr_len][topic_len][event_len] join_ref topic event payload`; `None` past 255 bytes a field.
pub(super) fn encode_push(
    join_ref: &str,
    topic: &str,
    event: &str,
    payload: &Bytes,
) -> Option<Bytes> {
    let mut out =
        BytesMut::with_capacity(4 + join_ref.len() + topic.len() + event.len() + payload.len());
    out.put_u8(PUSH);
    out.put_slice(&[len(join_ref)?, len(topic)?, len(event)?]);
    for field in [join_ref, topic, event] {
        out.put_slice(field.as_bytes());
    }
    out.put_slice(payload);
    Some(out.freeze())
}

/// `[1][jr_len][ref_len][topic_len][status_len] join_ref ref topic status payload`.
pub(super) fn encode_reply(
    join_ref: &str,
    msg_ref: &str,
    topic: &str,
    status: &str,
    payload: &Bytes,
) -> Option<Bytes> {
    let fields = [join_ref, msg_ref, topic, status];
    let mut out =
        BytesMut::with_capacity(5 + fields.iter().map(|f| f.len()).sum::<usize>() + payload.len());
    out.put_u8(REPLY);
    for field in fields {
        out.put_u8(len(field)?);
    }
    for field in fields {
        out.put_slice(field.as_bytes());
    }
    out.put_slice(payload);
    Some(out.freeze())
}

/// `[2][topic_len][event_len] topic event payload`.
pub(super) fn encode_broadcast(topic: &str, event: &str, payload: &Bytes) -> Option<Bytes> {
    let mut out = BytesMut::with_capacity(3 + topic.len() + event.len() + payload.len());
    out.put_u8(BROADCAST);
    out.put_slice(&[len(topic)?, len(event)?]);
    out.put_slice(topic.as_bytes());
    out.put_slice(event.as_bytes());
    out.put_slice(payload);
    Some(out.freeze())
}
