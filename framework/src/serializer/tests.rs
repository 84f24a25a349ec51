use bytes::Bytes;
use serde_json::json;

use super::*;

fn text(frame: Option<Frame>) -> serde_json::Value {
    match frame {
        Some(Frame::Text(b)) => serde_json::from_str(b.as_str()).unwrap(),
        other => panic!("expected text, got {other:?}"),
    }
}

#[test]
fn v2_text_round_trip_matches_the_protocol_table() {
    let m = decode_text(Vsn::V2, r#"["3","3","room:1","phx_join",{"a":1},"extra"]"#).unwrap();
    assert_eq!(m.join_ref.as_deref(), Some("3"));
    assert_eq!(m.msg_ref.as_deref(), Some("3"));
    assert_eq!((m.topic.as_str(), m.event.as_str()), ("room:1", "phx_join"));
    assert_eq!(m.payload, Payload::Json(json!({"a":1})));

    let reply =
        encode_reply(Vsn::V2, Some("3"), Some("4"), "room:1", Status::Ok, &json!({"x":1}).into());
    assert_eq!(
        text(reply),
        json!(["3","4","room:1","phx_reply",{"status":"ok","response":{"x":1}}])
    );
    let push = encode_push(Vsn::V2, Some("3"), "room:1", "evt", &json!({}).into());
    assert_eq!(text(push), json!(["3", null, "room:1", "evt", {}]));
    let bc = encode_broadcast(Vsn::V2, "room:1", "evt", &json!({"b":2}).into());
    assert_eq!(text(bc), json!([null,null,"room:1","evt",{"b":2}]));
}

#[test]
fn v1_objects() {
    let m = decode_text(Vsn::V1, r#"{"topic":"t","event":"e","payload":{},"ref":"1"}"#).unwrap();
    assert_eq!(m.msg_ref.as_deref(), Some("1"));
    assert_eq!(m.join_ref, None);
    let reply =
        encode_reply(Vsn::V1, Some("9"), Some("1"), "t", Status::Error, &json!({"r":1}).into());
    assert_eq!(
        text(reply),
        json!({"topic":"t","event":"phx_reply","payload":{"status":"error","response":{"r":1}},"ref":"1"})
    );
    let bc = encode_broadcast(Vsn::V1, "t", "e", &json!({}).into());
    assert_eq!(text(bc), json!({"topic":"t","event":"e","payload":{},"ref":null}));
    assert!(
        encode_push(Vsn::V1, None, "t", "e", &Payload::Binary(Bytes::from_static(b"x"))).is_none()
    );
}

#[test]
fn malformed_text_is_an_error_not_a_panic() {
    for bad in [
        "",
        "nope",
        "[]",
        r#"["1","1","t"]"#,
        r#"[1,"1",2,"e",{}]"#,
        "{}",
        r#"{"topic":1}"#,
        "null",
    ] {
        assert!(decode_text(Vsn::V2, bad).is_err(), "{bad}");
    }
    assert!(decode_text(Vsn::V1, r#"["1","1","t","e",{}]"#).is_err());
}

#[test]
fn binary_frames() {
    let mut frame = vec![0u8, 1, 1, 4, 3];
    frame.extend_from_slice(b"12room");
    frame.extend_from_slice(b"evt");
    frame.extend_from_slice(&[0xde, 0xad]);
    let m = decode_binary(Vsn::V2, &Bytes::from(frame)).unwrap();
    assert_eq!((m.join_ref.as_deref(), m.msg_ref.as_deref()), (Some("1"), Some("2")));
    assert_eq!((m.topic.as_str(), m.event.as_str()), ("room", "evt"));
    assert_eq!(m.payload, Payload::Binary(Bytes::from_static(&[0xde, 0xad])));
    for bad in [&b""[..], &[1, 0, 0, 0, 0], &[0, 9, 0, 0, 0, b'x']] {
        assert!(decode_binary(Vsn::V2, &Bytes::copy_from_slice(bad)).is_err());
    }
    assert!(decode_binary(Vsn::V1, &Bytes::from_static(&[0, 0, 0, 0, 0])).is_err());

    let payload = Payload::Binary(Bytes::from_static(b"P"));
    let Some(Frame::Binary(push)) = encode_push(Vsn::V2, Some("1"), "t", "e", &payload) else {
        panic!()
    };
    assert_eq!(&push[..], b"\x00\x01\x01\x011teP");
    let Some(Frame::Binary(reply)) =
        encode_reply(Vsn::V2, Some("1"), Some("2"), "t", Status::Ok, &payload)
    else {
        panic!()
    };
    assert_eq!(&reply[..], b"\x01\x01\x01\x01\x0212tokP");
    let Some(Frame::Binary(bc)) = encode_broadcast(Vsn::V2, "t", "e", &payload) else { panic!() };
    assert_eq!(&bc[..], b"\x02\x01\x01teP");
    let long = "x".repeat(256);
    assert!(encode_broadcast(Vsn::V2, &long, "e", &payload).is_none());
}

#[test]
fn a_spliced_json_payload_encodes_as_the_value_would() {
    let payload = serde_json::json!({"alice": {"metas": [{"phx_ref": "F1"}]}, "q\"x": {}});
    let text = payload.to_string();
    for vsn in [Vsn::V1, Vsn::V2] {
        let spliced = encode_push_json(vsn, Some("7"), "room:a,\"b\"", "presence_state", &text);
        let encoded = encode_push(
            vsn,
            Some("7"),
            "room:a,\"b\"",
            "presence_state",
            &Payload::Json(payload.clone()),
        );
        let parse =
            |f: Frame| serde_json::from_str::<serde_json::Value>(f.as_text().unwrap()).unwrap();
        assert_eq!(parse(spliced), parse(encoded.unwrap()), "{vsn:?}");
    }
}
