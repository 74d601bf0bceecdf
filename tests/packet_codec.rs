//! Socket.IO v5: every example of the protocol specification, every attack of DESIGN §4, and the
//! limits at their edges.

use bytes::Bytes;
use roomcast::engine::Frame;
use roomcast::packet::{
    DecodeError, Decoder, EncodeError, Encoded, Packet, PacketType, PayloadError,
};
use roomcast::{Limits, Str};
use serde_json::{json, Value};

fn decoder() -> Decoder {
    Decoder::new(Limits::default())
}

/// Decodes a complete non-binary packet.
fn decode(s: &str) -> Result<Packet, DecodeError> {
    decoder()
        .push_text(Str::from(s))
        .map(|p| p.expect("packet waits for attachments"))
}

/// Decodes a header and its attachments.
fn decode_binary(s: &str, attachments: &[&'static [u8]]) -> Result<Packet, DecodeError> {
    let mut d = decoder();
    assert!(d.push_text(Str::from(s))?.is_none());
    let mut out = None;
    for (i, a) in attachments.iter().enumerate() {
        let r = d.push_binary(Bytes::from_static(a))?;
        assert_eq!(r.is_some(), i + 1 == attachments.len());
        out = r;
    }
    Ok(out.unwrap())
}

/// Encodes and checks the wire text (without the Engine.IO `4`), and that it decodes back.
fn assert_wire(p: &Packet, wire: &str) {
    let e = p.encode().unwrap();
    assert_eq!(&e.text()[1..], wire);
    let decoded = if e.attachments().is_empty() {
        decode(wire).unwrap()
    } else {
        let mut d = decoder();
        assert!(d.push_text(Str::from(wire)).unwrap().is_none());
        let mut last = None;
        for a in e.attachments() {
            last = d.push_binary(a.clone()).unwrap();
        }
        last.unwrap()
    };
    assert_eq!(&decoded, p);
}

fn json_of(p: &Packet) -> Value {
    match p {
        Packet::Connect { data, .. } => data
            .as_ref()
            .map_or(Value::Null, |d| serde_json::from_str(d).unwrap()),
        Packet::Event { event, .. } => serde_json::from_str(event.data().json()).unwrap(),
        Packet::Ack { data, .. } => serde_json::from_str(data.json()).unwrap(),
        Packet::ConnectError { data, .. } => serde_json::from_str(data).unwrap(),
        Packet::Disconnect { .. } => Value::Null,
    }
}

// ---- Every example of the specification ---------------------------------------------------

#[test]
fn spec_connect_examples() {
    let p = decode("0").unwrap();
    assert_eq!(
        p,
        Packet::Connect {
            nsp: "/".into(),
            data: None
        }
    );
    assert_wire(&p, "0");

    let p = decode(r#"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#).unwrap();
    assert_eq!(p.nsp(), "/admin");
    assert_eq!(json_of(&p), json!({"sid": "oSO0OpakMV_3jnilAAAA"}));
    assert_wire(&p, r#"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#);
    let e = Encoded::connect("/admin", Some(&json!({"sid": "oSO0OpakMV_3jnilAAAA"}))).unwrap();
    assert_eq!(e.text(), r#"40/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#);

    // With an additional payload (auth), and the sample session's `40/admin,`.
    let p = decode(r#"0/admin,{"token":"123"}"#).unwrap();
    assert_eq!(json_of(&p), json!({"token": "123"}));
    assert_eq!(
        decode("0/admin,").unwrap(),
        Packet::Connect {
            nsp: "/admin".into(),
            data: None
        }
    );
    assert_eq!(
        Encoded::connect::<Value>("/admin", None).unwrap().text(),
        "40/admin,"
    );
}

#[test]
fn spec_connect_error_example() {
    let p = decode(r#"4{"message":"Not authorized"}"#).unwrap();
    assert_eq!(p.packet_type(), PacketType::ConnectError);
    assert_eq!(json_of(&p), json!({"message": "Not authorized"}));
    assert_wire(&p, r#"4{"message":"Not authorized"}"#);
    let e = Encoded::connect_error("/", &json!({"message": "Not authorized"})).unwrap();
    assert_eq!(e.text(), r#"44{"message":"Not authorized"}"#);
    // A plain string is allowed too.
    assert!(decode(r#"4"nope""#).is_ok());
}

#[test]
fn spec_event_examples() {
    let p = decode(r#"2["foo"]"#).unwrap();
    let Packet::Event { nsp, id, event } = &p else {
        panic!()
    };
    assert_eq!((nsp.as_str(), *id, event.name()), ("/", None, "foo"));
    assert_wire(&p, r#"2["foo"]"#);
    assert_eq!(
        Encoded::event("/", None, "foo", &()).unwrap().text(),
        r#"42["foo"]"#
    );

    let p = decode(r#"2/admin,["bar"]"#).unwrap();
    assert_eq!(p.nsp(), "/admin");
    assert_wire(&p, r#"2/admin,["bar"]"#);
    assert_eq!(
        Encoded::event("/admin", None, "bar", &[0u8; 0])
            .unwrap()
            .text(),
        r#"42/admin,["bar"]"#
    );

    // The sample session: server emits `hey` with `Jude`.
    assert_eq!(
        Encoded::event("/", None, "hey", &("Jude",)).unwrap().text(),
        r#"42["hey","Jude"]"#
    );
}

#[test]
fn spec_binary_event_examples() {
    let p = decode_binary(
        r#"51-["baz",{"_placeholder":true,"num":0}]"#,
        &[&[1, 2, 3, 4]],
    )
    .unwrap();
    assert_eq!(p.packet_type(), PacketType::BinaryEvent);
    let Packet::Event { event, .. } = &p else {
        panic!()
    };
    assert_eq!(event.name(), "baz");
    assert_eq!(
        event.data().attachments(),
        [Bytes::from_static(&[1, 2, 3, 4])]
    );
    let (buf,): (Vec<u8>,) = event.args().unwrap();
    assert_eq!(buf, [1, 2, 3, 4]);
    assert_wire(&p, r#"51-["baz",{"_placeholder":true,"num":0}]"#);

    let wire = r#"52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
    let p = decode_binary(wire, &[&[1, 2], &[3, 4]]).unwrap();
    assert_eq!(p.nsp(), "/admin");
    let Packet::Event { event, .. } = &p else {
        panic!()
    };
    let (a, b): (Vec<u8>, Vec<u8>) = event.args().unwrap();
    assert_eq!((a, b), (vec![1, 2], vec![3, 4]));
    assert_wire(&p, wire);

    let e = Encoded::event(
        "/admin",
        None,
        "baz",
        &(Bytes::from_static(&[1, 2]), Bytes::from_static(&[3, 4])),
    )
    .unwrap();
    assert_eq!(&e.text()[1..], wire);
    assert_eq!(
        e.attachments(),
        [Bytes::from_static(&[1, 2]), Bytes::from_static(&[3, 4])]
    );
    let frames: Vec<Frame> = e.frames().collect();
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[2], Frame::Binary(Bytes::from_static(&[3, 4])));
}

#[test]
fn spec_ack_examples() {
    let p = decode(r#"212["foo"]"#).unwrap();
    let Packet::Event { id, .. } = &p else {
        panic!()
    };
    assert_eq!(*id, Some(12));
    assert_wire(&p, r#"212["foo"]"#);
    assert_eq!(Encoded::ack("/", 12, &()).unwrap().text(), "4312[]");

    let p = decode(r#"3/admin,13["bar"]"#).unwrap();
    let Packet::Ack { nsp, id, data } = &p else {
        panic!()
    };
    assert_eq!((nsp.as_str(), *id), ("/admin", 13));
    assert_eq!(data.deserialize::<Vec<String>>().unwrap(), ["bar"]);
    assert_wire(&p, r#"3/admin,13["bar"]"#);
    assert_eq!(
        Encoded::ack("/admin", 13, &("bar",)).unwrap().text(),
        r#"43/admin,13["bar"]"#
    );

    let p = decode_binary(
        r#"61-15["bar",{"_placeholder":true,"num":0}]"#,
        &[&[1, 2, 3, 4]],
    )
    .unwrap();
    assert_eq!(p.packet_type(), PacketType::BinaryAck);
    assert_wire(&p, r#"61-15["bar",{"_placeholder":true,"num":0}]"#);
    let e = Encoded::ack("/", 15, &("bar", Bytes::from_static(&[1, 2, 3, 4]))).unwrap();
    assert_eq!(e.text(), r#"461-15["bar",{"_placeholder":true,"num":0}]"#);

    // The sample session's binary ack on /admin.
    let e = Encoded::ack("/admin", 1, &(Bytes::from_static(b"x"),)).unwrap();
    assert_eq!(e.text(), r#"461-/admin,1[{"_placeholder":true,"num":0}]"#);
}

#[test]
fn spec_disconnect_examples() {
    let p = decode("1").unwrap();
    assert_eq!(p, Packet::Disconnect { nsp: "/".into() });
    assert_wire(&p, "1");
    let p = decode("1/admin,").unwrap();
    assert_eq!(
        p,
        Packet::Disconnect {
            nsp: "/admin".into()
        }
    );
    assert_wire(&p, "1/admin,");
    assert_eq!(Encoded::disconnect("/admin").unwrap().text(), "41/admin,");
}

#[test]
fn sample_session_tellme_event() {
    let p = decode(r#"2/admin,1["tellme"]"#).unwrap();
    let Packet::Event { nsp, id, event } = p else {
        panic!()
    };
    assert_eq!(
        (nsp.as_str(), id, event.name()),
        ("/admin", Some(1), "tellme")
    );
}

// ---- Binary values at any depth ------------------------------------------------------------

#[test]
fn nested_binary_is_extracted_in_order_and_restored() {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct File {
        name: String,
        parts: Vec<serde_bytes_like::Buf>,
    }
    mod serde_bytes_like {
        /// Serializes with `serialize_bytes`, like `serde_bytes::ByteBuf`.
        #[derive(Debug, PartialEq)]
        pub struct Buf(pub Vec<u8>);
        impl serde::Serialize for Buf {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }
        impl<'de> serde::Deserialize<'de> for Buf {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Vec::<u8>::deserialize(d).map(Buf)
            }
        }
    }
    use serde_bytes_like::Buf;
    let file = File {
        name: "a".into(),
        parts: vec![Buf(vec![1]), Buf(vec![]), Buf(vec![2, 3])],
    };
    let e = Encoded::event("/", Some(3), "upload", &(&file, Buf(vec![9]))).unwrap();
    assert_eq!(
        e.text(),
        r#"454-3["upload",{"name":"a","parts":[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1},{"_placeholder":true,"num":2}]},{"_placeholder":true,"num":3}]"#
    );
    let mut d = decoder();
    assert!(d.push_text(Str::from(&e.text()[1..])).unwrap().is_none());
    let mut packet = None;
    for a in e.attachments() {
        packet = d.push_binary(a.clone()).unwrap();
    }
    let Some(Packet::Event { event, id, .. }) = packet else {
        panic!()
    };
    assert_eq!(id, Some(3));
    let (back, last): (File, Buf) = event.args().unwrap();
    assert_eq!((back, last), (file, Buf(vec![9])));
}

#[test]
fn zero_attachments_binary_packet_is_complete_at_once() {
    // The reference emits `50-[...]` at once: no attachment announced, none awaited.
    let p = decode(r#"50-["x"]"#).unwrap();
    assert_eq!(p.packet_type(), PacketType::Event);
}

#[test]
fn event_args_and_tail() {
    let Packet::Event { event, .. } = decode(r#"2["sum", 1, 2 ,3]"#).unwrap() else {
        panic!()
    };
    assert_eq!(event.args::<Vec<u32>>().unwrap(), [1, 2, 3]);
    assert_eq!(event.args_json_tail(), ", 1, 2 ,3]");
    let Packet::Event { event, .. } = decode(r#"2["none"]"#).unwrap() else {
        panic!()
    };
    assert_eq!(event.args::<Vec<u32>>().unwrap(), Vec::<u32>::new());
    assert_eq!(event.args_json_tail(), "]");
    let back = Encoded::event_with_args_of("/", Some(4), "again", &event).unwrap();
    assert_eq!(back.text(), r#"424["again"]"#);
    // Escaped and numeric names.
    let Packet::Event { event, .. } = decode(r#"2["a\"b"]"#).unwrap() else {
        panic!()
    };
    assert_eq!(event.name(), "a\"b");
    let Packet::Event { event, .. } = decode(r#"2[42,"x"]"#).unwrap() else {
        panic!()
    };
    assert_eq!(event.name(), "42");
}

#[test]
fn decoded_json_shares_the_input_buffer() {
    let input = Str::from(r#"2/chat,["message",{"text":"hi"}]"#.to_string());
    let base = input.as_bytes().as_ptr() as usize;
    let Some(Packet::Event { nsp, event, .. }) = decoder().push_text(input).unwrap() else {
        panic!()
    };
    assert_eq!(nsp.as_bytes().as_ptr() as usize, base + 1);
    assert_eq!(event.data().json().as_bytes().as_ptr() as usize, base + 7);
    assert_eq!(event.name().as_ptr() as usize, base + 9);
}

#[test]
fn single_argument_and_non_array_values() {
    assert_eq!(
        Encoded::event("/", None, "n", &5).unwrap().text(),
        r#"42["n",5]"#
    );
    assert_eq!(
        Encoded::event("/", None, "v", &(vec![1, 2],))
            .unwrap()
            .text(),
        r#"42["v",[1,2]]"#
    );
    assert_eq!(
        Encoded::event("/", None, "v", &vec![1, 2]).unwrap().text(),
        r#"42["v",1,2]"#
    );
    assert_eq!(Encoded::ack("/", 1, &"x").unwrap().text(), r#"431["x"]"#);
}

#[test]
fn encode_errors() {
    assert!(matches!(
        Encoded::event("/", None, "connect", &()),
        Err(EncodeError::ReservedEventName(n)) if n == "connect"
    ));
    assert!(matches!(
        Encoded::disconnect("/a,b"),
        Err(EncodeError::InvalidNamespace(_))
    ));
    assert!(matches!(
        Encoded::disconnect("admin"),
        Err(EncodeError::InvalidNamespace(_))
    ));
    let mut bad_map = std::collections::HashMap::new();
    bad_map.insert(vec![1u8], 1);
    assert!(matches!(
        Encoded::event("/", None, "m", &(bad_map,)),
        Err(EncodeError::Json(_))
    ));
}

// ---- Validation per packet type ------------------------------------------------------------

fn payload_err(s: &str) -> PayloadError {
    match decode(s) {
        Err(DecodeError::Payload { error, .. }) => error,
        other => panic!("{s}: {other:?}"),
    }
}

#[test]
fn payload_validation_per_type() {
    assert_eq!(payload_err(r#"0"x""#), PayloadError::NotObject);
    assert_eq!(payload_err("0[]"), PayloadError::NotObject);
    assert_eq!(payload_err("0null"), PayloadError::NotObject);
    assert_eq!(payload_err("1{}"), PayloadError::Unexpected);
    assert_eq!(payload_err("4[]"), PayloadError::NotStringOrObject);
    assert_eq!(payload_err("4true"), PayloadError::NotStringOrObject);
    assert_eq!(payload_err(r#"2{"a":1}"#), PayloadError::NotArray);
    assert_eq!(payload_err("2[]"), PayloadError::MissingEventName);
    assert_eq!(payload_err("2[null]"), PayloadError::InvalidEventName);
    assert_eq!(payload_err("2[[1]]"), PayloadError::InvalidEventName);
    assert_eq!(payload_err(r#"31{}"#), PayloadError::NotArray);
    assert!(decode("31[]").is_ok());
    assert_eq!(decode("3[]"), Err(DecodeError::MissingAckId));
    assert_eq!(
        decode("2"),
        Err(DecodeError::MissingPayload(PacketType::Event))
    );
    assert_eq!(
        decode("31"),
        Err(DecodeError::MissingPayload(PacketType::Ack))
    );
    assert_eq!(
        decode("4"),
        Err(DecodeError::MissingPayload(PacketType::ConnectError))
    );
    assert_eq!(
        decode("012{}"),
        Err(DecodeError::UnexpectedAckId(PacketType::Connect))
    );
    assert_eq!(decode(""), Err(DecodeError::Empty));
    assert_eq!(decode("7"), Err(DecodeError::UnknownType('7')));
    assert_eq!(decode("5[\"a\"]"), Err(DecodeError::InvalidAttachmentCount));
    assert_eq!(
        decode("5x-[\"a\"]"),
        Err(DecodeError::InvalidAttachmentCount)
    );
    assert_eq!(
        decode("51[\"a\"]"),
        Err(DecodeError::InvalidAttachmentCount)
    );
}

#[test]
fn json_is_fully_validated() {
    for bad in [
        r#"2["a",]"#,
        r#"2["a"] x"#,
        r#"2["a",{"b":}]"#,
        r#"2["a","\u12"]"#,
        "2[\"a\",\"\u{1}\"]",
        r#"0{"a":1"#,
        r#"2["a"#,
        r#"31[1,2"#,
        r#"4{"message":NaN}"#,
    ] {
        assert!(
            matches!(decode(bad), Err(DecodeError::Json { .. })),
            "{bad}: {:?}",
            decode(bad)
        );
    }
}

// ---- The attacks of DESIGN §4 --------------------------------------------------------------

#[test]
fn attack_placeholder_num_not_an_integer_in_range() {
    for header in [
        r#"51-["a",{"_placeholder":true,"num":"splice"}]"#,
        r#"51-["a",{"_placeholder":true,"num":1}]"#,
        r#"51-["a",{"_placeholder":true,"num":-1}]"#,
        r#"51-["a",{"_placeholder":true,"num":0.5}]"#,
        r#"51-["a",{"_placeholder":true}]"#,
        r#"51-["a",{"_placeholder":true,"num":{"valueOf":0}}]"#,
        r#"51-["a",[[{"_placeholder":true,"num":99}]]]"#,
        r#"61-1[{"_placeholder":true,"num":"0"}]"#,
    ] {
        assert_eq!(
            decoder().push_text(Str::from(header)),
            Err(DecodeError::Payload {
                packet_type: PacketType::from_ascii(header.as_bytes()[0]).unwrap(),
                error: PayloadError::InvalidPlaceholder { attachments: 1 }
            }),
            "{header}"
        );
    }
    // `_placeholder` not `true` is plain data.
    assert!(decoder()
        .push_text(Str::from(r#"51-["a",{"_placeholder":1,"num":"x"}]"#))
        .is_ok());
}

#[test]
fn attack_event_name_is_an_object() {
    assert_eq!(
        payload_err(r#"2[{"toString":"foo"}]"#),
        PayloadError::InvalidEventName
    );
}

#[test]
fn attack_reserved_event_names() {
    for name in roomcast::packet::RESERVED_EVENTS {
        assert_eq!(
            payload_err(&format!(r#"2["{name}"]"#)),
            PayloadError::ReservedEventName(name.into())
        );
    }
    // Escapes do not smuggle one in.
    assert_eq!(
        payload_err(r#"2["\u0063onnect"]"#),
        PayloadError::ReservedEventName("connect".into())
    );
}

#[test]
fn attack_too_many_attachments_is_refused_at_the_limit() {
    let limits = Limits {
        max_attachments: 3,
        ..Limits::default()
    };
    let mut d = Decoder::new(limits);
    assert!(d.push_text(Str::from(r#"53-["a"]"#)).unwrap().is_none());
    assert_eq!(
        Decoder::new(limits).push_text(Str::from(r#"54-["a"]"#)),
        Err(DecodeError::TooManyAttachments { count: 4, max: 3 })
    );
    assert_eq!(
        decoder().push_text(Str::from(r#"511-["a"]"#)),
        Err(DecodeError::TooManyAttachments { count: 11, max: 10 })
    );
    assert!(decoder()
        .push_text(Str::from(r#"510-["a"]"#))
        .unwrap()
        .is_none());
    assert_eq!(
        decoder().push_text(Str::from(r#"599999999999999999999999999999-["a"]"#)),
        Err(DecodeError::TooManyAttachments {
            count: u64::MAX,
            max: 10
        })
    );
}

#[test]
fn attack_flood_of_attachment_frames() {
    let mut d = decoder();
    assert!(d
        .push_text(Str::from(r#"51-["a",{"_placeholder":true,"num":0}]"#))
        .unwrap()
        .is_none());
    assert!(d.push_binary(Bytes::from_static(b"1")).unwrap().is_some());
    assert_eq!(
        d.push_binary(Bytes::from_static(b"2")),
        Err(DecodeError::UnexpectedBinary)
    );
    assert_eq!(
        d.push_binary(Bytes::from_static(b"3")),
        Err(DecodeError::UnexpectedBinary)
    );
}

#[test]
fn attack_huge_ack_id_and_lengths() {
    assert_eq!(
        decode(r#"218446744073709551615["a"]"#).map(|p| matches!(
            p,
            Packet::Event {
                id: Some(u64::MAX),
                ..
            }
        )),
        Ok(true)
    );
    assert_eq!(
        decode(r#"218446744073709551616["a"]"#),
        Err(DecodeError::InvalidAckId)
    );
    let digits = "9".repeat(100_000);
    assert_eq!(
        decode(&format!(r#"2{digits}["a"]"#)),
        Err(DecodeError::InvalidAckId)
    );
    assert_eq!(
        decode(&format!(r#"5{digits}-["a"]"#)),
        Err(DecodeError::TooManyAttachments {
            count: u64::MAX,
            max: 10
        })
    );
}

#[test]
fn attack_text_in_the_middle_of_a_binary_packet() {
    let mut d = decoder();
    assert!(d.push_text(Str::from(r#"52-["a"]"#)).unwrap().is_none());
    assert!(d.push_binary(Bytes::from_static(b"1")).unwrap().is_none());
    assert_eq!(
        d.push_text(Str::from(r#"2["b"]"#)),
        Err(DecodeError::TextDuringBinary {
            received: 1,
            expected: 2
        })
    );
}

#[test]
fn attack_binary_with_no_header() {
    assert_eq!(
        decoder().push_binary(Bytes::from_static(b"x")),
        Err(DecodeError::UnexpectedBinary)
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("2[\"a\",{}{}]", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(decode(&deep), Err(DecodeError::Json { .. })));
    let deep = format!("51-[\"a\",{}{}]", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(
        decoder().push_text(Str::from(deep)),
        Err(DecodeError::Json { .. })
    ));
}

#[test]
fn default_limits_are_the_reference_ones() {
    assert_eq!(
        Limits::default(),
        Limits {
            max_payload: 1_000_000,
            max_attachments: 10
        }
    );
}
