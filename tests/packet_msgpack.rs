//! The msgpack parser (`Parser::Msgpack`, socket.io-msgpack-parser 3.0) against the reference's
//! bytes: every packet type both ways as the JS client and Node write them, the reference
//! decoder's checks and roomcast's stricter ones, limits at their edges, the DESIGN §4 attacks
//! that apply to msgpack. The JSON parser's counterparts are in packet_codec.rs.

use bytes::Bytes;
use roomcast::packet::{DecodeError, Packet, Parser, PayloadError};
use roomcast::{Limits, Str};
use serde_json::{json, Value};

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect()
}

/// A notepack-like msgpack value, built by hand in tests: rmpv writes the smallest widths too.
fn mp(v: &rmpv::Value) -> Vec<u8> {
    let mut b = Vec::new();
    rmpv::encode::write_value(&mut b, v).unwrap();
    b
}

fn map(entries: Vec<(&str, rmpv::Value)>) -> Vec<u8> {
    mp(&rmpv::Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (rmpv::Value::from(k), v))
            .collect(),
    ))
}

fn arr(items: Vec<rmpv::Value>) -> rmpv::Value {
    rmpv::Value::Array(items)
}

fn s(x: &str) -> rmpv::Value {
    rmpv::Value::from(x)
}

fn decode_with(limits: Limits, b: &[u8]) -> Result<Packet, DecodeError> {
    Parser::Msgpack
        .decoder(limits)
        .push_binary(Bytes::copy_from_slice(b))
        .map(|p| p.expect("a whole packet"))
}

fn decode(b: &[u8]) -> Result<Packet, DecodeError> {
    decode_with(Limits::default(), b)
}

fn json_of(p: &Packet) -> Value {
    let text = match p {
        Packet::Connect { data, .. } => data.clone().unwrap_or_default(),
        Packet::ConnectError { data, .. } => data.clone(),
        Packet::Event { event, .. } => event.data().json().clone(),
        Packet::Ack { data, .. } => data.json().clone(),
        Packet::Disconnect { .. } => Str::from_static("null"),
    };
    serde_json::from_str(&text).unwrap()
}

/// The packet as notepack decodes it, for the bytes roomcast writes.
fn as_value(b: &Bytes) -> rmpv::Value {
    let mut rd = &b[..];
    let v = rmpv::decode::read_value(&mut rd).unwrap();
    assert!(rd.is_empty());
    v
}

#[test]
fn every_packet_type_from_the_js_client() {
    // CONNECT without auth: the client writes `data: undefined`.
    let p = decode(&map(vec![
        ("type", 0.into()),
        ("data", rmpv::Value::Ext(0, vec![0])),
        ("nsp", s("/")),
    ]))
    .unwrap();
    assert_eq!(
        p,
        Packet::Connect {
            nsp: "/".into(),
            data: None
        }
    );
    // CONNECT with auth.
    let auth = rmpv::Value::Map(vec![(s("token"), s("123")), (s("n"), 1.into())]);
    let p = decode(&map(vec![
        ("type", 0.into()),
        ("data", auth),
        ("nsp", s("/admin")),
    ]))
    .unwrap();
    assert_eq!(json_of(&p), json!({"token": "123", "n": 1}));
    assert_eq!(&**p.nsp(), "/admin");
    // EVENT with `options` and an ack id.
    let p = decode(&map(vec![
        ("type", 2.into()),
        (
            "data",
            arr(vec![s("hello"), rmpv::Value::Binary(vec![1, 2])]),
        ),
        (
            "options",
            rmpv::Value::Map(vec![(s("compress"), true.into())]),
        ),
        ("id", 12.into()),
        ("nsp", s("/")),
    ]))
    .unwrap();
    let Packet::Event { id, event, .. } = &p else {
        panic!()
    };
    assert_eq!((*id, event.name()), (Some(12), "hello"));
    assert_eq!(event.data().attachments(), [Bytes::from_static(&[1, 2])]);
    // ACK, the client's order: type, id, data, nsp.
    let p = decode(&map(vec![
        ("type", 3.into()),
        ("id", 7.into()),
        ("data", arr(vec![s("ok")])),
        ("nsp", s("/")),
    ]))
    .unwrap();
    assert!(matches!(p, Packet::Ack { id: 7, .. }));
    assert_eq!(json_of(&p), json!(["ok"]));
    // DISCONNECT.
    let p = decode(&map(vec![("type", 1.into()), ("nsp", s("/admin"))])).unwrap();
    assert_eq!(
        p,
        Packet::Disconnect {
            nsp: "/admin".into()
        }
    );
    // CONNECT_ERROR, object and string data (the decoder accepts both).
    for data in [
        rmpv::Value::Map(vec![(s("message"), s("Not authorized"))]),
        s("Not authorized"),
    ] {
        let p = decode(&map(vec![
            ("type", 4.into()),
            ("data", data),
            ("nsp", s("/")),
        ]))
        .unwrap();
        assert!(matches!(p, Packet::ConnectError { .. }));
    }
}

#[test]
fn every_packet_type_as_node_writes_it() {
    let m = Parser::Msgpack;
    // CONNECT reply: {type, nsp, data: {sid, pid}}; without recovery no `pid` key (Node writes
    // `pid: undefined`, which the client reads the same).
    #[derive(serde::Serialize)]
    struct Reply<'a> {
        sid: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        pid: Option<&'a str>,
    }
    let e = m
        .connect(
            "/",
            Some(&Reply {
                sid: "abc",
                pid: Some("p1"),
            }),
        )
        .unwrap();
    assert_eq!(
        as_value(e.binary().unwrap()),
        rmpv::Value::Map(vec![
            (s("type"), 0.into()),
            (s("nsp"), s("/")),
            (
                s("data"),
                rmpv::Value::Map(vec![(s("sid"), s("abc")), (s("pid"), s("p1"))])
            ),
        ])
    );
    let e = m.connect::<()>("/admin", None).unwrap();
    assert_eq!(
        e.binary().unwrap()[..],
        hex("82 a4 74 79 70 65 00 a3 6e 73 70 a6 2f 61 64 6d 69 6e")[..]
    );
    let e = m.disconnect("/").unwrap();
    assert_eq!(
        e.binary().unwrap()[..],
        hex("82 a4 74 79 70 65 01 a3 6e 73 70 a1 2f")[..]
    );
    let e = m
        .connect_error("/x", &json!({"message": "Invalid namespace"}))
        .unwrap();
    assert_eq!(
        as_value(e.binary().unwrap()),
        rmpv::Value::Map(vec![
            (s("type"), 4.into()),
            (s("nsp"), s("/x")),
            (
                s("data"),
                rmpv::Value::Map(vec![(s("message"), s("Invalid namespace"))])
            ),
        ])
    );
    let e = m
        .ack("/", 5, &(Bytes::from_static(b"\x00\xff"), "after"))
        .unwrap();
    assert_eq!(
        as_value(e.binary().unwrap()),
        rmpv::Value::Map(vec![
            (s("type"), 3.into()),
            (s("nsp"), s("/")),
            (s("id"), 5.into()),
            (
                s("data"),
                arr(vec![rmpv::Value::Binary(vec![0, 255]), s("after")])
            ),
        ])
    );
    assert!(!e.is_event_without_ack());
    // Structs are maps (notepack reads JavaScript objects), never rmp-serde's arrays.
    #[derive(serde::Serialize)]
    struct Chat {
        text: &'static str,
        ts: u64,
    }
    let e = m
        .event("/", Some(3), "chat", &(Chat { text: "hi", ts: 1 },))
        .unwrap();
    assert_eq!(
        as_value(e.binary().unwrap()),
        rmpv::Value::Map(vec![
            (s("type"), 2.into()),
            (s("nsp"), s("/")),
            (s("id"), 3.into()),
            (
                s("data"),
                arr(vec![
                    s("chat"),
                    rmpv::Value::Map(vec![(s("text"), s("hi")), (s("ts"), 1.into())])
                ])
            ),
        ])
    );
    // Arguments as for the JSON parser: `()` none, a value one, a tuple each.
    for (args, want) in [
        (json!(null), json!(["e"])),
        (json!(5), json!(["e", 5])),
        (json!([1, 2]), json!(["e", 1, 2])),
    ] {
        let e = m.event("/", None, "e", &args).unwrap();
        assert_eq!(json_of(&decode(e.binary().unwrap()).unwrap()), want);
    }
    assert!(m.event("/", None, "connect", &()).is_err());
    assert!(m.event("nsp", None, "e", &()).is_err());
}

#[test]
fn recovery_offsets_are_appended_to_the_data_array() {
    let m = Parser::Msgpack;
    // Past fixarray's 15 elements the header grows from 1 to 3 bytes.
    for n in [0usize, 1, 14, 15, 16, 70_000] {
        let args: Vec<u32> = (0..n as u32).collect();
        let e = m.event("/chat", None, "e", &args).unwrap();
        assert!(e.is_event_without_ack());
        let o = e.with_last_arg("1700000000000-0");
        let Packet::Event { event, .. } = decode(o.binary().unwrap()).unwrap() else {
            panic!()
        };
        let (got, last): (Vec<u32>, String) = {
            let mut all: Vec<Value> = event.args().unwrap();
            let last = all.pop().unwrap();
            (
                all.into_iter()
                    .map(|v| v.as_u64().unwrap() as u32)
                    .collect(),
                last.as_str().unwrap().to_owned(),
            )
        };
        assert_eq!((got, last.as_str()), (args, "1700000000000-0"));
        // Twice: the header is found again.
        let twice = o.with_last_arg("x");
        assert_eq!(
            json_of(&decode(twice.binary().unwrap()).unwrap())
                .as_array()
                .unwrap()
                .len(),
            n + 3
        );
    }
    // Not events without ack: unchanged.
    let ack = m.event("/", Some(1), "e", &(1,)).unwrap();
    assert_eq!(ack.with_last_arg("o"), ack);
    let connect = m.connect("/", Some(&json!({"sid": "x"}))).unwrap();
    assert_eq!(connect.with_last_arg("o"), connect);
}

#[test]
fn notepack_values_become_json_as_javascript_would_stringify_them() {
    let date = rmpv::Value::Ext(0, 1_704_164_645_006i64.to_be_bytes().to_vec());
    let p = decode(&map(vec![
        ("type", 2.into()),
        ("nsp", s("/")),
        (
            "data",
            arr(vec![
                s("v"),
                date,
                rmpv::Value::Ext(0, vec![0]),
                rmpv::Value::Map(vec![
                    (s("gone"), rmpv::Value::Ext(0, vec![0])),
                    (1.into(), 2.into()),
                    (rmpv::Value::Nil, true.into()),
                ]),
                rmpv::Value::F32(1.5),
                rmpv::Value::F64(f64::NAN),
                u64::MAX.into(),
                i64::MIN.into(),
                rmpv::Value::Ext(7, vec![1, 2]),
            ]),
        ),
    ]))
    .unwrap();
    let Packet::Event { event, .. } = p else {
        panic!()
    };
    assert_eq!(
        event.data().json().as_str(),
        concat!(
            r#"["v","2024-01-02T03:04:05.006Z",null,{"1":2,"null":true},1.5,null,"#,
            r#"18446744073709551615,-9223372036854775808,[7,{"_placeholder":true,"num":0}]]"#
        )
    );
    // A legacy ArrayBuffer (ext8 type 0) is binary.
    let mut b = map(vec![("type", 2.into()), ("nsp", s("/"))]);
    b[0] = 0x83;
    b.extend(hex("a4 64 61 74 61 92 a1 62 c7 02 00 aa bb"));
    let Packet::Event { event, .. } = decode(&b).unwrap() else {
        panic!()
    };
    assert_eq!(
        event.data().attachments(),
        [Bytes::from_static(&[0xaa, 0xbb])]
    );
    // Invalid UTF-8 reads as U+FFFD, as JavaScript's decoders do.
    let mut b = map(vec![("type", 2.into()), ("nsp", s("/"))]);
    b[0] = 0x83;
    b.extend(hex("a4 64 61 74 61 92 a1 62 a2 ff 61"));
    assert_eq!(json_of(&decode(&b).unwrap()), json!(["b", "\u{fffd}a"]));
}

#[test]
fn the_reference_checks() {
    let event = |extra: Vec<(&str, rmpv::Value)>| {
        let mut e = vec![("type", 2.into()), ("nsp", s("/"))];
        e.extend(extra);
        map(e)
    };
    let cases: Vec<(Vec<u8>, DecodeError)> = vec![
        (
            map(vec![("type", 5.into()), ("nsp", s("/"))]),
            DecodeError::InvalidPacketType,
        ),
        (
            map(vec![("type", (-1).into()), ("nsp", s("/"))]),
            DecodeError::InvalidPacketType,
        ),
        (
            map(vec![("type", s("2")), ("nsp", s("/"))]),
            DecodeError::InvalidPacketType,
        ),
        (map(vec![("nsp", s("/"))]), DecodeError::InvalidPacketType),
        (map(vec![("type", 1.into())]), DecodeError::InvalidNamespace),
        (
            map(vec![("type", 1.into()), ("nsp", 1.into())]),
            DecodeError::InvalidNamespace,
        ),
        (
            map(vec![("type", 1.into()), ("nsp", s("admin"))]),
            DecodeError::InvalidNamespace,
        ),
        (
            map(vec![("type", 1.into()), ("nsp", s("/a,b"))]),
            DecodeError::InvalidNamespace,
        ),
        (
            event(vec![("data", arr(vec![s("x")])), ("id", s("1"))]),
            DecodeError::InvalidAckId,
        ),
        (
            event(vec![("data", arr(vec![s("x")])), ("id", (-1).into())]),
            DecodeError::InvalidAckId,
        ),
        (
            event(vec![("data", arr(vec![s("x")])), ("id", 1.5.into())]),
            DecodeError::InvalidAckId,
        ),
        (
            event(vec![]),
            DecodeError::MissingPayload(roomcast::packet::PacketType::Event),
        ),
        (
            map(vec![
                ("type", 3.into()),
                ("nsp", s("/")),
                ("data", arr(vec![])),
            ]),
            DecodeError::MissingAckId,
        ),
        (
            map(vec![("type", 1.into()), ("nsp", s("/")), ("id", 1.into())]),
            DecodeError::UnexpectedAckId(roomcast::packet::PacketType::Disconnect),
        ),
    ];
    for (b, want) in cases {
        assert_eq!(decode(&b), Err(want), "{b:02x?}");
    }
    let payload = |b: &[u8]| match decode(b) {
        Err(DecodeError::Payload { error, .. }) => error,
        other => panic!("{other:?}"),
    };
    use PayloadError as P;
    assert_eq!(payload(&event(vec![("data", s("x"))])), P::NotArray);
    assert_eq!(
        payload(&event(vec![("data", arr(vec![]))])),
        P::MissingEventName
    );
    assert_eq!(
        payload(&event(vec![(
            "data",
            arr(vec![rmpv::Value::Map(vec![(s("toString"), s("foo"))])])
        )])),
        P::InvalidEventName
    );
    assert_eq!(
        payload(&event(vec![("data", arr(vec![rmpv::Value::Nil]))])),
        P::InvalidEventName
    );
    for name in roomcast::packet::RESERVED_EVENTS {
        assert_eq!(
            payload(&event(vec![("data", arr(vec![s(name)]))])),
            P::ReservedEventName(name.to_owned())
        );
    }
    assert_eq!(
        payload(&map(vec![
            ("type", 1.into()),
            ("nsp", s("/")),
            ("data", arr(vec![]))
        ])),
        P::Unexpected
    );
    assert_eq!(
        payload(&map(vec![
            ("type", 0.into()),
            ("nsp", s("/")),
            ("data", arr(vec![]))
        ])),
        P::NotObject
    );
    assert_eq!(
        payload(&map(vec![
            ("type", 4.into()),
            ("nsp", s("/")),
            ("data", 1.into())
        ])),
        P::NotStringOrObject
    );
    assert_eq!(
        payload(&map(vec![
            ("type", 0.into()),
            ("nsp", s("/")),
            (
                "data",
                rmpv::Value::Map(vec![(s("b"), rmpv::Value::Binary(vec![1]))])
            )
        ])),
        P::UnexpectedBinary
    );
    // A client's placeholder would read as an attachment: refused, wherever it is.
    let ph = rmpv::Value::Map(vec![(s("_placeholder"), true.into()), (s("num"), 0.into())]);
    assert_eq!(
        payload(&event(vec![(
            "data",
            arr(vec![s("x"), rmpv::Value::Binary(vec![1]), ph.clone()])
        )])),
        P::PlaceholderKey
    );
    assert_eq!(
        payload(&event(vec![("data", arr(vec![s("x")])), ("options", ph)])),
        P::PlaceholderKey
    );
    // `_placeholder` with another value is just a key.
    let ok = event(vec![(
        "data",
        arr(vec![
            s("x"),
            rmpv::Value::Map(vec![(s("_placeholder"), 1.into())]),
        ]),
    )]);
    assert_eq!(
        json_of(&decode(&ok).unwrap()),
        json!(["x", {"_placeholder": 1}])
    );
}

#[test]
fn malformed_msgpack_is_a_typed_error() {
    let good = map(vec![("type", 1.into()), ("nsp", s("/"))]);
    let mut trailing = good.clone();
    trailing.push(0);
    for b in [
        vec![],
        vec![0xc1],
        hex("92 00 00"),
        trailing,
        good[..good.len() - 1].to_vec(),
        // A map key that is an array.
        {
            let mut b = map(vec![("type", 2.into()), ("nsp", s("/"))]);
            b[0] = 0x83;
            b.extend(hex("a4 64 61 74 61 92 a1 78 81 90 00"));
            b
        },
        // An array32 announcing 4 G elements in 6 bytes.
        {
            let mut b = map(vec![("type", 2.into()), ("nsp", s("/"))]);
            b[0] = 0x83;
            b.extend(hex("a4 64 61 74 61 dd ff ff ff ff"));
            b
        },
        // A str32 longer than the message.
        hex("81 a4 74 79 70 65 db 7f ff ff ff 61"),
    ] {
        assert!(
            matches!(decode(&b), Err(DecodeError::Msgpack { .. })),
            "{b:02x?}: {:?}",
            decode(&b)
        );
    }
    // Text reaching the msgpack parser (a client with the default parser).
    let mut d = Parser::Msgpack.decoder(Limits::default());
    assert_eq!(
        d.push_text(Str::from_static("40")),
        Err(DecodeError::UnexpectedText)
    );
}

#[test]
fn attachment_limit_at_its_edge() {
    let limits = Limits {
        max_attachments: 3,
        ..Limits::default()
    };
    let with = |n: usize| {
        let mut items = vec![s("up")];
        items.extend((0..n).map(|i| rmpv::Value::Binary(vec![i as u8])));
        map(vec![
            ("type", 2.into()),
            ("nsp", s("/")),
            ("data", arr(items)),
        ])
    };
    let Packet::Event { event, .. } = decode_with(limits, &with(3)).unwrap() else {
        panic!()
    };
    assert_eq!(event.data().attachments().len(), 3);
    assert_eq!(
        decode_with(limits, &with(4)),
        Err(DecodeError::TooManyAttachments { count: 4, max: 3 })
    );
    // Other extensions carry their bytes as attachments too.
    let mut items = vec![s("up")];
    items.extend((0..4).map(|i| rmpv::Value::Ext(9, vec![i])));
    let b = map(vec![
        ("type", 2.into()),
        ("nsp", s("/")),
        ("data", arr(items)),
    ]);
    assert!(matches!(
        decode_with(limits, &b),
        Err(DecodeError::TooManyAttachments { .. })
    ));
}

#[test]
fn nesting_limit_at_its_edge() {
    // The data array is level 1: 127 arrays inside it make 128 levels of JSON, serde_json's limit.
    let nested = |levels: usize, leaf: rmpv::Value| {
        let mut v = leaf;
        for _ in 0..levels {
            v = arr(vec![v]);
        }
        map(vec![
            ("type", 2.into()),
            ("nsp", s("/")),
            ("data", arr(vec![s("deep"), v])),
        ])
    };
    let p = decode(&nested(127, rmpv::Value::Nil)).unwrap();
    let Packet::Event { event, .. } = &p else {
        panic!()
    };
    // The JSON parser takes the same text, and reads the arguments the same way.
    let text = format!("2{}", event.data().json().as_str());
    let Ok(Some(Packet::Event { event: same, .. })) = Parser::Json
        .decoder(Limits::default())
        .push_text(Str::from(text))
    else {
        panic!("the JSON parser refuses the same depth")
    };
    assert_eq!(&same, event);
    assert_eq!(
        event.args::<Vec<Value>>().is_ok(),
        same.args::<Vec<Value>>().is_ok()
    );
    assert!(event.args::<Vec<serde::de::IgnoredAny>>().is_ok());
    assert!(matches!(
        decode(&nested(128, rmpv::Value::Nil)),
        Err(DecodeError::Msgpack { .. })
    ));
    // A placeholder is one level too.
    assert!(decode(&nested(126, rmpv::Value::Binary(vec![1]))).is_ok());
    assert!(matches!(
        decode(&nested(127, rmpv::Value::Binary(vec![1]))),
        Err(DecodeError::Msgpack { .. })
    ));
    // Far deeper than any stack: an error, not an overflow.
    let mut b = map(vec![("type", 2.into()), ("nsp", s("/"))]);
    b[0] = 0x83;
    b.extend(hex("a4 64 61 74 61 92 a1 78"));
    b.extend(std::iter::repeat_n(0x91, 100_000));
    b.push(0xc0);
    assert!(matches!(decode(&b), Err(DecodeError::Msgpack { .. })));
}

#[test]
fn the_same_packets_under_both_parsers() {
    // What the application reads does not depend on the parser.
    let args = (
        "text",
        Bytes::from_static(b"\x00\x01"),
        json!({"nested": {"n": 1.5, "list": [1, "two", null]}}),
    );
    let j = Parser::Json.event("/chat", Some(9), "e", &args).unwrap();
    let m = Parser::Msgpack.event("/chat", Some(9), "e", &args).unwrap();
    let mut d = Parser::Json.decoder(Limits::default());
    let mut from_json = d
        .push_text(j.text().slice(1..j.text().len()).unwrap())
        .unwrap();
    for a in j.attachments() {
        from_json = d.push_binary(a.clone()).unwrap();
    }
    let from_msgpack = decode(m.binary().unwrap()).unwrap();
    assert_eq!(from_json.unwrap(), from_msgpack);
}
