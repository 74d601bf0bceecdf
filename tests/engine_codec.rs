//! Engine.IO v4: every example of the protocol specification, and the limits.

use bytes::Bytes;
use roomcast::engine::{
    decode_payload, encode_payload, DecodeError, Frame, Handshake, Message, Packet, PacketType,
};
use roomcast::{Limits, Str};

fn text(s: &'static str) -> Frame {
    Frame::Text(Str::from_static(s))
}

fn decode(s: &'static str) -> Result<Packet, DecodeError> {
    Packet::decode(text(s))
}

fn payload(body: &'static [u8]) -> Result<Vec<Packet>, DecodeError> {
    decode_payload(Bytes::from_static(body), &Limits::default())?.collect()
}

#[test]
fn every_packet_type_round_trips() {
    let cases = [
        (
            "0{\"sid\":\"x\"}",
            Packet::Open(Str::from_static("{\"sid\":\"x\"}")),
        ),
        ("1", Packet::Close),
        ("2", Packet::Ping(Str::default())),
        ("3", Packet::Pong(Str::default())),
        ("2probe", Packet::Ping(Str::from_static("probe"))),
        ("3probe", Packet::Pong(Str::from_static("probe"))),
        (
            "4hello",
            Packet::Message(Message::Text(Str::from_static("hello"))),
        ),
        ("4", Packet::Message(Message::Text(Str::default()))),
        ("5", Packet::Upgrade),
        ("6", Packet::Noop),
    ];
    for (wire, packet) in cases {
        assert_eq!(decode(wire).unwrap(), packet, "{wire}");
        assert_eq!(packet.encode(), text(wire), "{wire}");
    }
    for (i, ty) in [
        PacketType::Open,
        PacketType::Close,
        PacketType::Ping,
        PacketType::Pong,
        PacketType::Message,
        PacketType::Upgrade,
        PacketType::Noop,
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(ty as usize, i);
        assert_eq!(PacketType::from_ascii(ty.as_ascii()), Some(ty));
    }
}

#[test]
fn spec_websocket_example_and_binary_frames() {
    // "4hello" in one WebSocket frame; binary payloads are sent as is.
    assert_eq!(
        decode("4hello").unwrap(),
        Packet::Message(Message::Text(Str::from_static("hello")))
    );
    let bin = Packet::Message(Message::Binary(Bytes::from_static(&[1, 2, 3, 4])));
    assert_eq!(
        Packet::decode(Frame::Binary(Bytes::from_static(&[1, 2, 3, 4]))).unwrap(),
        bin
    );
    assert_eq!(
        bin.encode(),
        Frame::Binary(Bytes::from_static(&[1, 2, 3, 4]))
    );
}

#[test]
fn spec_polling_payload_examples() {
    assert_eq!(
        payload(b"4hello\x1e2\x1e4world").unwrap(),
        vec![
            Packet::Message(Message::Text(Str::from_static("hello"))),
            Packet::Ping(Str::default()),
            Packet::Message(Message::Text(Str::from_static("world"))),
        ]
    );
    assert_eq!(
        payload(b"4hello\x1ebAQIDBA==").unwrap(),
        vec![
            Packet::Message(Message::Text(Str::from_static("hello"))),
            Packet::Message(Message::Binary(Bytes::from_static(&[1, 2, 3, 4]))),
        ]
    );
    let body = encode_payload(&[
        text("4hello"),
        text("2"),
        text("4world"),
        Frame::Binary(Bytes::from_static(&[1, 2, 3, 4])),
    ]);
    assert_eq!(&body[..], b"4hello\x1e2\x1e4world\x1ebAQIDBA==");
    // The Socket.IO sample session: two events in one POST.
    assert_eq!(payload(b"42[\"hello\"]\x1e42[\"world\"]").unwrap().len(), 2);
}

#[test]
fn spec_handshake_example() {
    let json = r#"{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
    let h = Handshake::from_json(json).unwrap();
    assert_eq!(h.sid, "lv_VI97HAXpY6yYWAAAC");
    assert_eq!(h.upgrades, ["websocket"]);
    assert_eq!(
        (h.ping_interval, h.ping_timeout, h.max_payload),
        (25000, 20000, 1_000_000)
    );
    assert_eq!(h.to_json(), json);
    let open = Packet::Open(h.to_json());
    assert_eq!(Packet::decode(open.encode()).unwrap(), open);
}

#[test]
fn decoded_text_shares_the_input_buffer() {
    let input = Str::from("4some message text".to_string());
    let base = input.as_bytes().as_ptr() as usize;
    let Packet::Message(Message::Text(data)) = Packet::decode_text(input).unwrap() else {
        panic!()
    };
    assert_eq!(data.as_bytes().as_ptr() as usize, base + 1);
}

#[test]
fn malformed_packets_are_typed_errors() {
    assert_eq!(decode(""), Err(DecodeError::Empty));
    assert_eq!(decode("7"), Err(DecodeError::UnknownType('7')));
    assert_eq!(decode("x4"), Err(DecodeError::UnknownType('x')));
    assert_eq!(decode("é"), Err(DecodeError::UnknownType('é')));
    assert!(matches!(
        payload(b""),
        Err(DecodeError::InPayload { index: 0, .. })
    ));
    assert!(matches!(
        payload(b"4a\x1e"),
        Err(DecodeError::InPayload { index: 1, .. })
    ));
    assert!(matches!(
        payload(b"4a\x1e9"),
        Err(DecodeError::InPayload { index: 1, .. })
    ));
    assert_eq!(
        payload(b"4a\x1eb!!!"),
        Err(DecodeError::Base64 { index: 1 })
    );
    assert_eq!(payload(b"4a\xff"), Err(DecodeError::Utf8(2)));
}

#[test]
fn payload_stops_at_the_first_bad_packet() {
    let mut it = decode_payload(Bytes::from_static(b"4a\x1e9\x1e4b"), &Limits::default()).unwrap();
    assert!(it.next().unwrap().is_ok());
    assert!(it.next().unwrap().is_err());
    assert!(it.next().is_none());
}

#[test]
fn max_payload_is_enforced_at_its_edge() {
    let limits = Limits {
        max_payload: 8,
        ..Limits::default()
    };
    let at_limit = Bytes::from_static(b"4abc\x1e4de");
    assert_eq!(at_limit.len(), 8);
    assert_eq!(decode_payload(at_limit, &limits).unwrap().count(), 2);
    let over = Bytes::from_static(b"4abc\x1e4def");
    assert_eq!(
        decode_payload(over, &limits).err(),
        Some(DecodeError::TooLarge { len: 9, max: 8 })
    );
    assert!(Packet::decode_limited(text("4abcdef"), &limits).is_ok());
    assert_eq!(
        Packet::decode_limited(text("4abcdefgh"), &limits),
        Err(DecodeError::TooLarge { len: 9, max: 8 })
    );
    let bin = Frame::Binary(vec![0; 9].into());
    assert_eq!(
        Packet::decode_limited(bin, &limits),
        Err(DecodeError::TooLarge { len: 9, max: 8 })
    );
    assert_eq!(Limits::default().max_payload, 1_000_000);
}
