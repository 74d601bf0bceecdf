//! Property tests: encode → decode is the identity for arbitrary packets, and no input panics,
//! under both parsers (JSON and msgpack).

use bytes::Bytes;
use proptest::prelude::*;
use roomcast::engine::{self, decode_payload, encode_payload, Frame, Message};
use roomcast::packet::{Decoder, Encoded, Packet, Parser, RESERVED_EVENTS};
use roomcast::{Limits, Str};
use serde::ser::{SerializeMap, SerializeSeq};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A JSON value that may hold binary anywhere.
#[derive(Debug, Clone)]
enum Tree {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bin(Vec<u8>),
    Arr(Vec<Tree>),
    Obj(BTreeMap<String, Tree>),
}

impl serde::Serialize for Tree {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Tree::Null => s.serialize_unit(),
            Tree::Bool(b) => s.serialize_bool(*b),
            Tree::Int(i) => s.serialize_i64(*i),
            Tree::Float(f) => s.serialize_f64(*f),
            Tree::Str(x) => s.serialize_str(x),
            Tree::Bin(b) => s.serialize_bytes(b),
            Tree::Arr(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Tree::Obj(map) => {
                let mut m = s.serialize_map(Some(map.len()))?;
                for (k, v) in map {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
    }
}

/// The JSON the wire must carry for `tree`, numbering placeholders in order, and the
/// attachments in that order.
fn expected(tree: &Tree, attachments: &mut Vec<Bytes>) -> Value {
    match tree {
        Tree::Null => Value::Null,
        Tree::Bool(b) => json!(b),
        Tree::Int(i) => json!(i),
        Tree::Float(f) => json!(f),
        Tree::Str(s) => json!(s),
        Tree::Bin(b) => {
            attachments.push(Bytes::from(b.clone()));
            json!({"_placeholder": true, "num": attachments.len() - 1})
        }
        Tree::Arr(items) => Value::Array(items.iter().map(|i| expected(i, attachments)).collect()),
        Tree::Obj(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), expected(v, attachments)))
                .collect(),
        ),
    }
}

/// What a `serde_json::Value` target receives for `tree`: each binary value as an array of its
/// byte values (the form it has always had).
fn as_value(tree: &Tree) -> Value {
    match tree {
        Tree::Bin(b) => Value::Array(b.iter().map(|&x| x.into()).collect()),
        Tree::Arr(items) => Value::Array(items.iter().map(as_value).collect()),
        Tree::Obj(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), as_value(v))).collect())
        }
        other => expected(other, &mut Vec::new()),
    }
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![
        Just(Tree::Null),
        any::<bool>().prop_map(Tree::Bool),
        any::<i64>().prop_map(Tree::Int),
        // Eighths print and parse back exactly, whatever the float parser.
        any::<i32>().prop_map(|i| Tree::Float(f64::from(i) / 8.0)),
        any::<String>().prop_map(Tree::Str),
        prop::collection::vec(any::<u8>(), 0..16).prop_map(Tree::Bin),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Tree::Arr),
            prop::collection::btree_map(any::<String>(), inner, 0..4).prop_map(Tree::Obj),
        ]
    })
}

fn nsp() -> impl Strategy<Value = String> {
    prop_oneof![Just("/".to_string()), "/[a-zA-Z0-9_./-]{0,12}"]
}

fn event_name() -> impl Strategy<Value = String> {
    any::<String>().prop_filter("reserved", |n| !RESERVED_EVENTS.contains(&n.as_str()))
}

/// Every attachment limit generous enough for the generated trees.
fn limits() -> Limits {
    Limits {
        max_attachments: 1000,
        ..Limits::default()
    }
}

const PARSERS: [Parser; 2] = [Parser::Json, Parser::Msgpack];

/// Feeds an encoded packet to a fresh decoder of its parser, as a receiver would.
fn receive(e: &Encoded) -> Packet {
    if let Some(bytes) = e.binary() {
        assert_eq!(e.parser(), Parser::Msgpack);
        assert_eq!(e.frame_count(), 1);
        return Parser::Msgpack
            .decoder(limits())
            .push_binary(bytes.clone())
            .unwrap()
            .expect("one message, one packet");
    }
    let mut d = Decoder::new(limits());
    let text = e.text().slice(1..e.text().len()).unwrap();
    let mut out = d.push_text(text).unwrap();
    for (i, a) in e.attachments().iter().enumerate() {
        assert!(out.is_none(), "complete before attachment {i}");
        out = d.push_binary(a.clone()).unwrap();
    }
    out.expect("complete after the last attachment")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn event_round_trips(nsp in nsp(), id in any::<Option<u64>>(), name in event_name(),
                         args in prop::collection::vec(tree(), 0..4)) {
        for parser in PARSERS {
        let e = parser.event(&nsp, id, &name, &args).unwrap();
        let mut want_attachments = Vec::new();
        let mut want = vec![json!(name)];
        want.extend(args.iter().map(|a| expected(a, &mut want_attachments)));

        let packet = receive(&e);
        let Packet::Event { nsp: got_nsp, id: got_id, event } = &packet else {
            panic!("not an event: {packet:?}")
        };
        prop_assert_eq!(got_nsp.as_str(), nsp.as_str());
        prop_assert_eq!(*got_id, id);
        prop_assert_eq!(event.name(), name.as_str());
        prop_assert_eq!(serde_json::from_str::<Value>(event.data().json()).unwrap(), Value::Array(want));
        prop_assert_eq!(event.data().attachments(), &want_attachments[..]);
        // Encoding what was decoded gives back the same frames.
        prop_assert_eq!(&parser.encode(&packet).unwrap(), &e);
        // Deserializing puts every attachment back where it was.
        let values: Vec<Value> = event.args().unwrap();
        prop_assert_eq!(values, args.iter().map(as_value).collect::<Vec<_>>());
        // Relayed under a new name: the same arguments.
        let relayed = receive(&parser.event_with_args_of(&nsp, None, "r", event).unwrap());
        let Packet::Event { event: relayed, .. } = relayed else { panic!() };
        prop_assert_eq!(relayed.args_json_tail(), event.args_json_tail());
        prop_assert_eq!(relayed.data().attachments(), event.data().attachments());
        }
    }

    #[test]
    fn ack_round_trips(nsp in nsp(), id in any::<u64>(), args in prop::collection::vec(tree(), 0..4)) {
        for parser in PARSERS {
        let e = parser.ack(&nsp, id, &args).unwrap();
        let mut want_attachments = Vec::new();
        let want: Vec<Value> = args.iter().map(|a| expected(a, &mut want_attachments)).collect();
        let packet = receive(&e);
        let Packet::Ack { nsp: got_nsp, id: got_id, data } = &packet else { panic!() };
        prop_assert_eq!(got_nsp.as_str(), nsp.as_str());
        prop_assert_eq!(*got_id, id);
        prop_assert_eq!(serde_json::from_str::<Value>(data.json()).unwrap(), Value::Array(want));
        prop_assert_eq!(data.attachments(), &want_attachments[..]);
        prop_assert_eq!(&parser.encode(&packet).unwrap(), &e);
        }
    }

    #[test]
    fn connect_family_round_trips(nsp in nsp(), auth in prop::option::of(prop::collection::btree_map(any::<String>(), any::<i32>(), 0..4)),
                                  message in any::<String>()) {
        for parser in PARSERS {
        let e = parser.connect(&nsp, auth.as_ref()).unwrap();
        let p = receive(&e);
        prop_assert_eq!(&parser.encode(&p).unwrap(), &e);
        let Packet::Connect { data, .. } = &p else { panic!() };
        prop_assert_eq!(data.as_ref().map(|d| serde_json::from_str::<Value>(d).unwrap()), auth.clone().map(|a| json!(a)));

        let e = parser.connect_error(&nsp, &json!({"message": message})).unwrap();
        prop_assert_eq!(&parser.encode(&receive(&e)).unwrap(), &e);
        let e = parser.connect_error(&nsp, &message).unwrap();
        prop_assert_eq!(&parser.encode(&receive(&e)).unwrap(), &e);
        let e = parser.disconnect(&nsp).unwrap();
        prop_assert_eq!(receive(&e), Packet::Disconnect { nsp: Str::from(nsp.as_str()) });
        }
    }

    #[test]
    fn polling_payload_round_trips(frames in prop::collection::vec(prop_oneof![
        "[0-6][^\u{1e}]{0,20}".prop_map(|s| Frame::Text(Str::from(s))),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| Frame::Binary(b.into())),
    ], 1..8)) {
        let body = encode_payload(&frames);
        let decoded: Vec<engine::Packet> = decode_payload(body, &Limits::default()).unwrap()
            .collect::<Result<_, _>>().unwrap();
        let want: Vec<engine::Packet> = frames.into_iter().map(|f| engine::Packet::decode(f).unwrap()).collect();
        prop_assert_eq!(decoded, want);
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..200)) {
        let bytes = Bytes::from(body);
        if let Ok(packets) = decode_payload(bytes.clone(), &Limits::default()) {
            for p in packets {
                if let Ok(engine::Packet::Message(Message::Text(t))) = p {
                    let _ = Decoder::new(Limits::default()).push_text(t);
                }
            }
        }
        if let Ok(s) = Str::from_utf8(bytes.clone()) {
            let _ = engine::Packet::decode_text(s.clone());
            let mut d = Decoder::new(Limits::default());
            if let Ok(Some(p)) = d.push_text(s) {
                // Whatever decodes, encodes, and decodes back the same.
                let e = p.encode().unwrap();
                prop_assert_eq!(receive(&e), p);
            }
            let _ = d.push_binary(bytes);
        }
    }

    #[test]
    fn arbitrary_socketio_text_never_panics(text in r#"[0-6]([0-9]{0,3}-)?(/[a-z,]{0,4},)?[0-9]{0,3}[\[\]{}":,_a-z0-9 .-]{0,40}"#,
                                            binaries in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..4), 0..4)) {
        let mut d = Decoder::new(Limits::default());
        if let Ok(Some(p)) = d.push_text(Str::from(text.as_str())) {
            let e = p.encode().unwrap();
            prop_assert_eq!(receive(&e), p);
        }
        for b in binaries {
            let _ = d.push_binary(b.into());
        }
    }
}

/// Any msgpack value, notepack's extensions and non-string keys included.
fn mp_value() -> impl Strategy<Value = rmpv::Value> {
    use rmpv::Value as V;
    let leaf = prop_oneof![
        Just(V::Nil),
        any::<bool>().prop_map(V::Boolean),
        any::<i64>().prop_map(V::from),
        any::<u64>().prop_map(V::from),
        // Any float: with serde_json's `float_roundtrip` its shortest text parses back exactly.
        any::<f32>().prop_map(V::F32),
        any::<f64>().prop_map(V::F64),
        prop::sample::select(vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            1e300,
            5e-324
        ])
        .prop_map(V::F64),
        any::<String>().prop_map(V::from),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(|b| V::String(rmpv::Utf8String::from(
            String::from_utf8_lossy(&b).into_owned()
        ))),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(V::Binary),
        // undefined, a Date, an ArrayBuffer, any other extension.
        Just(V::Ext(0, vec![0])),
        any::<i64>().prop_map(|ms| V::Ext(0, (ms % 253_402_300_800_000).to_be_bytes().to_vec())),
        (any::<i8>(), prop::collection::vec(any::<u8>(), 0..20)).prop_map(|(t, d)| V::Ext(t, d)),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(V::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        any::<String>().prop_map(V::from),
                        any::<i32>().prop_map(V::from),
                        Just(V::Nil),
                        any::<bool>().prop_map(V::Boolean)
                    ],
                    inner
                ),
                0..4
            )
            .prop_map(V::Map),
        ]
    })
}

/// A msgpack packet map with these fields, the reference's keys in any order.
fn mp_packet(
    ty: i64,
    nsp: &str,
    id: Option<rmpv::Value>,
    data: Option<rmpv::Value>,
    extra: Option<rmpv::Value>,
) -> Vec<u8> {
    use rmpv::Value as V;
    let mut entries = vec![
        (V::from("type"), V::from(ty)),
        (V::from("nsp"), V::from(nsp)),
    ];
    if let Some(data) = data {
        entries.push((V::from("data"), data));
    }
    if let Some(id) = id {
        entries.push((V::from("id"), id));
    }
    if let Some(extra) = extra {
        entries.push((V::from("options"), extra));
    }
    entries.reverse();
    let mut buf = Vec::new();
    rmpv::encode::write_value(&mut buf, &V::Map(entries)).unwrap();
    buf
}

fn msgpack_decode(bytes: Bytes) -> Result<Packet, roomcast::packet::DecodeError> {
    Parser::Msgpack
        .decoder(limits())
        .push_binary(bytes)
        .map(|p| p.expect("a whole packet"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Whatever a msgpack client may send decodes or is refused with an error; what decodes has
    /// JSON serde_json reads, encodes, and decodes back the same.
    #[test]
    fn msgpack_values_decode_to_json_and_round_trip(ty in 0i64..6, nsp in nsp(),
            id in prop::option::of(prop_oneof![any::<u64>().prop_map(rmpv::Value::from), Just(rmpv::Value::Ext(0, vec![0])), Just(rmpv::Value::from(-1))]),
            name in prop_oneof![event_name().prop_map(rmpv::Value::from), any::<i32>().prop_map(rmpv::Value::from), mp_value()],
            args in prop::collection::vec(mp_value(), 0..4),
            other in prop::option::of(mp_value()), extra in prop::option::of(mp_value())) {
        let data = match (ty, other) {
            (2 | 3, _) => Some(rmpv::Value::Array(std::iter::once(name).chain(args).collect())),
            (_, other) => other,
        };
        let bytes = Bytes::from(mp_packet(ty, &nsp, id, data, extra));
        if let Ok(p) = msgpack_decode(bytes) {
            let json = match &p {
                Packet::Connect { data, .. } => data.clone(),
                Packet::ConnectError { data, .. } => Some(data.clone()),
                Packet::Event { event, .. } => Some(event.data().json().clone()),
                Packet::Ack { data, .. } => Some(data.json().clone()),
                Packet::Disconnect { .. } => None,
            };
            if let Some(json) = json {
                prop_assert!(serde_json::from_str::<Value>(&json).is_ok(), "{}", json);
            }
            let e = Parser::Msgpack.encode(&p).unwrap();
            prop_assert_eq!(receive(&e), p.clone());
            // The JSON parser carries the same packet.
            prop_assert_eq!(receive(&p.encode().unwrap()), p);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_msgpack_decoder(body in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(p) = msgpack_decode(Bytes::from(body)) {
            let e = Parser::Msgpack.encode(&p).unwrap();
            prop_assert_eq!(receive(&e), p);
        }
    }

    /// Valid packets with one byte changed, cut short or extended: never a panic.
    #[test]
    fn corrupted_msgpack_packets_never_panic(args in prop::collection::vec(mp_value(), 1..4), at in any::<usize>(), with in any::<u8>(), cut in any::<bool>()) {
        let mut b = mp_packet(2, "/", None, Some(rmpv::Value::Array(args)), None);
        let at = at % b.len();
        if cut { b.truncate(at) } else { b[at] = with }
        if let Ok(p) = msgpack_decode(Bytes::from(b)) {
            let e = Parser::Msgpack.encode(&p).unwrap();
            prop_assert_eq!(receive(&e), p);
        }
    }
}
