//! Property tests: encode → decode is the identity for arbitrary packets, and no input panics.

use bytes::Bytes;
use proptest::prelude::*;
use roomcast::engine::{self, decode_payload, encode_payload, Frame, Message};
use roomcast::packet::{Decoder, Encoded, Packet, RESERVED_EVENTS};
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

/// Feeds an encoded packet to a fresh decoder, as a receiver would.
fn receive(e: &Encoded) -> Packet {
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
        let e = Encoded::event(&nsp, id, &name, &args).unwrap();
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
        prop_assert_eq!(&packet.encode().unwrap(), &e);
        // Deserializing puts every attachment back where it was.
        let values: Vec<Value> = event.args().unwrap();
        prop_assert_eq!(values, args.iter().map(as_value).collect::<Vec<_>>());
    }

    #[test]
    fn ack_round_trips(nsp in nsp(), id in any::<u64>(), args in prop::collection::vec(tree(), 0..4)) {
        let e = Encoded::ack(&nsp, id, &args).unwrap();
        let mut want_attachments = Vec::new();
        let want: Vec<Value> = args.iter().map(|a| expected(a, &mut want_attachments)).collect();
        let packet = receive(&e);
        let Packet::Ack { nsp: got_nsp, id: got_id, data } = &packet else { panic!() };
        prop_assert_eq!(got_nsp.as_str(), nsp.as_str());
        prop_assert_eq!(*got_id, id);
        prop_assert_eq!(serde_json::from_str::<Value>(data.json()).unwrap(), Value::Array(want));
        prop_assert_eq!(data.attachments(), &want_attachments[..]);
        prop_assert_eq!(&packet.encode().unwrap(), &e);
    }

    #[test]
    fn connect_family_round_trips(nsp in nsp(), auth in prop::option::of(prop::collection::btree_map(any::<String>(), any::<i32>(), 0..4)),
                                  message in any::<String>()) {
        let e = Encoded::connect(&nsp, auth.as_ref()).unwrap();
        let p = receive(&e);
        prop_assert_eq!(&p.encode().unwrap(), &e);
        let Packet::Connect { data, .. } = &p else { panic!() };
        prop_assert_eq!(data.as_ref().map(|d| serde_json::from_str::<Value>(d).unwrap()), auth.map(|a| json!(a)));

        let e = Encoded::connect_error(&nsp, &json!({"message": message})).unwrap();
        prop_assert_eq!(&receive(&e).encode().unwrap(), &e);
        let e = Encoded::disconnect(&nsp).unwrap();
        prop_assert_eq!(receive(&e), Packet::Disconnect { nsp: Str::from(nsp.as_str()) });
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
