//! Typed arguments with binary, both ways (issue 10, item 7): user types holding `bytes::Bytes`
//! (or anything that calls `serialize_bytes`) at any depth are emitted as attachments (JSON) or
//! `bin` (msgpack), decode back into the same values with `Event::args`, and a received event's
//! arguments are emitted again as they came with `Event::args_raw`.

use bytes::Bytes;
use proptest::prelude::*;
use roomcast::packet::{Decoder, Encoded, Event, Packet, Parser};
use roomcast::{Limits, Str};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const PARSERS: [Parser; 2] = [Parser::Json, Parser::Msgpack];

fn limits() -> Limits {
    Limits {
        max_attachments: 1000,
        ..Limits::default()
    }
}

/// Feeds an encoded packet to a fresh decoder of its parser, as a receiver would.
fn receive(e: &Encoded) -> Packet {
    if let Some(bytes) = e.binary() {
        return Parser::Msgpack
            .decoder(limits())
            .push_binary(bytes.clone())
            .unwrap()
            .expect("one message, one packet");
    }
    let mut d = Decoder::new(limits());
    let mut out = d
        .push_text(e.text().slice(1..e.text().len()).unwrap())
        .unwrap();
    for a in e.attachments() {
        assert!(out.is_none(), "complete before its attachments");
        out = d.push_binary(a.clone()).unwrap();
    }
    out.expect("complete after the last attachment")
}

fn event_of(e: &Encoded) -> Event {
    match receive(e) {
        Packet::Event { event, .. } => event,
        p => panic!("not an event: {p:?}"),
    }
}

fn ack_data(e: &Encoded) -> roomcast::packet::Payload {
    match receive(e) {
        Packet::Ack { data, .. } => data,
        p => panic!("not an ack: {p:?}"),
    }
}

/// What `serde_bytes` does with a `Vec<u8>`: `serialize_bytes` out, bytes asked for in.
mod as_bytes {
    use serde::de::{Deserializer, Error, Visitor};
    use serde::Serializer;
    use std::fmt;

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
        }
        d.deserialize_byte_buf(V)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Kind {
    Blob(Bytes),
    Pair(Bytes, u8),
    Named { data: Bytes, tag: Option<String> },
    Empty,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Inner {
    data: Bytes,
    #[serde(with = "as_bytes")]
    buf: Vec<u8>,
    kinds: Vec<Kind>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Upload {
    name: String,
    size: u64,
    data: Bytes,
    parts: Vec<Bytes>,
    thumb: Option<Bytes>,
    none: Option<Bytes>,
    by_name: BTreeMap<String, Bytes>,
    inner: Inner,
    deeper: Vec<Option<Vec<Inner>>>,
    plain: Vec<u8>,
}

fn b(s: &'static [u8]) -> Bytes {
    Bytes::from_static(s)
}

fn upload() -> Upload {
    let inner = |n: u8| Inner {
        data: Bytes::from(vec![n; 3]),
        buf: vec![n, n + 1],
        kinds: vec![
            Kind::Blob(b(b"k")),
            Kind::Pair(b(b""), n),
            Kind::Named {
                data: b(b"\x00\xff"),
                tag: Some("t".into()),
            },
            Kind::Empty,
        ],
    };
    Upload {
        name: "a.png".into(),
        size: 7,
        data: b(b"\x89PNG"),
        parts: vec![b(b"p1"), b(b"p2")],
        thumb: Some(b(b"thumb")),
        none: None,
        by_name: [("x".to_string(), b(b"xx")), ("y".to_string(), b(b"yy"))].into(),
        inner: inner(1),
        deeper: vec![None, Some(vec![inner(2), inner(3)]), Some(vec![])],
        plain: vec![1, 2, 3],
    }
}

#[test]
fn a_struct_with_bytes_at_every_depth_round_trips_under_both_parsers() {
    let up = upload();
    for parser in PARSERS {
        let e = parser.event("/up", None, "upload", &(&up, 5u8)).unwrap();
        let event = event_of(&e);
        let (got, n): (Upload, u8) = event.args().unwrap();
        assert_eq!((&got, n), (&up, 5), "{parser}");

        let a = parser.ack("/up", 9, &(&up,)).unwrap();
        let (got,): (Upload,) = ack_data(&a).deserialize().unwrap();
        assert_eq!(got, up, "{parser}");
    }
}

#[test]
fn json_binary_packets_number_their_attachments_in_order() {
    let up = upload();
    let e = Encoded::event("/", None, "upload", &(&up,)).unwrap();
    // data, parts×2, thumb, by_name×2, inner (data, buf, 3 kinds), deeper 2×(5): 20.
    assert_eq!(e.attachments().len(), 4 + 2 + 5 + 10, "{}", e.text());
    assert!(e.text().starts_with("4521-[\"upload\",{\"name\":\"a.png\""));
    assert_eq!(e.attachments()[0], b(b"\x89PNG"));
    assert_eq!(e.attachments()[1], b(b"p1"));
    for (i, _) in e.attachments().iter().enumerate() {
        let ph = format!(r#"{{"_placeholder":true,"num":{i}}}"#);
        assert_eq!(e.text().matches(&ph).count(), 1, "{ph}");
    }
    // A plain Vec<u8> is an array of numbers, as serde has it.
    assert!(e.text().contains(r#""plain":[1,2,3]"#));

    let a = Encoded::ack("/", 4, &(b(b"x"), 1)).unwrap();
    assert_eq!(a.text(), r#"461-4[{"_placeholder":true,"num":0},1]"#);
}

#[test]
fn values_without_bytes_encode_as_before() {
    #[derive(Serialize)]
    struct Plain {
        id: u32,
        text: &'static str,
        tags: Vec<&'static str>,
        none: Option<Bytes>,
    }
    let p = Plain {
        id: 1,
        text: "hello",
        tags: vec!["a"],
        none: None,
    };
    let e = Encoded::event("/", None, "news", &(&p,)).unwrap();
    assert_eq!(
        e.text(),
        r#"42["news",{"id":1,"text":"hello","tags":["a"],"none":null}]"#
    );
    assert!(e.attachments().is_empty());
    let a = Encoded::ack("/x", 3, &p).unwrap();
    assert_eq!(
        a.text(),
        r#"43/x,3[{"id":1,"text":"hello","tags":["a"],"none":null}]"#
    );
}

#[test]
fn msgpack_writes_bytes_as_bin() {
    let e = Parser::Msgpack
        .event(
            "/",
            None,
            "f",
            &(Inner {
                data: b(b"\x01\x02"),
                buf: vec![3],
                kinds: vec![],
            },),
        )
        .unwrap();
    let bytes = e.binary().unwrap();
    let v = rmpv::decode::read_value(&mut &bytes[..]).unwrap();
    let data = v
        .as_map()
        .unwrap()
        .iter()
        .find(|(k, _)| k.as_str() == Some("data"))
        .map(|(_, v)| v.clone())
        .unwrap();
    let inner = data.as_array().unwrap()[1].as_map().unwrap().clone();
    assert_eq!(inner[0].1, rmpv::Value::Binary(vec![1, 2]));
    assert_eq!(inner[1].1, rmpv::Value::Binary(vec![3]));
}

#[test]
fn received_arguments_are_emitted_again_as_they_came() {
    let up = upload();
    for from in PARSERS {
        let received = event_of(&from.event("/", Some(4), "in", &(&up, "s", 2)).unwrap());
        for to in PARSERS {
            let again = to.event("/", None, "out", &received.args_raw()).unwrap();
            let back = event_of(&again);
            assert_eq!(back.name(), "out");
            let (got, s, n): (Upload, String, u8) = back.args().unwrap();
            assert_eq!((&got, s.as_str(), n), (&up, "s", 2), "{from} -> {to}");
            assert_eq!(back.data().attachments(), received.data().attachments());

            let ack = to.ack("/", 4, &received.args_raw()).unwrap();
            let (got, _, _): (Upload, String, u8) = ack_data(&ack).deserialize().unwrap();
            assert_eq!(got, up, "{from} -> {to} (ack)");

            // Nested: one argument, the array of the received ones, its attachments after
            // the ones before it.
            let nested = to
                .event("/", None, "wrapped", &(b(b"first"), received.args_raw()))
                .unwrap();
            let (first, (got, s, n)): (Bytes, (Upload, String, u8)) =
                event_of(&nested).args().unwrap();
            assert_eq!((first, &got, s.as_str(), n), (b(b"first"), &up, "s", 2));

            // The first left out: the others, their attachments renumbered from 0.
            let rest = event_of(
                &to.event("/", None, "rest", &received.args_raw().skip(1))
                    .unwrap(),
            );
            let (s, n): (String, u8) = rest.args().unwrap();
            assert_eq!((s.as_str(), n), ("s", 2));
            assert!(rest.data().attachments().is_empty());
            let last = ack_data(&to.ack("/", 1, &received.args_raw().skip(2)).unwrap());
            assert_eq!(last.deserialize::<(u8,)>().unwrap(), (2,));
            let none = event_of(
                &to.event("/", None, "none", &received.args_raw().skip(9))
                    .unwrap(),
            );
            assert_eq!(none.data().json().as_str(), r#"["none"]"#);
        }
    }
}

#[test]
fn re_emitting_json_shares_the_text_and_the_attachments() {
    let mut d = Decoder::new(Limits::default());
    assert!(d
        .push_text(Str::from_static(
            r#"52-/a,["x", {"a":{"_placeholder":true,"num":1}} , [{"num":0,"_placeholder":true}] ]"#
        ))
        .unwrap()
        .is_none());
    assert!(d.push_binary(b(b"zero")).unwrap().is_none());
    let Some(Packet::Event { event, .. }) = d.push_binary(b(b"one")).unwrap() else {
        panic!()
    };
    let e = Encoded::event("/b", None, "y", &event.args_raw()).unwrap();
    assert_eq!(
        e.text(),
        r#"452-/b,["y", {"a":{"_placeholder":true,"num":1}} , [{"num":0,"_placeholder":true}] ]"#
    );
    assert_eq!(e.attachments(), [b(b"zero"), b(b"one")]);
    assert_eq!(
        e,
        Encoded::event_with_args_of("/b", None, "y", &event).unwrap()
    );
    let a = Encoded::ack("/b", 2, &event.args_raw()).unwrap();
    assert_eq!(a, Encoded::ack_with_args_of("/b", 2, &event).unwrap());
    // Reserved names stay refused.
    assert!(Encoded::event("/", None, "connect", &event.args_raw()).is_err());
    // No arguments: none again.
    let mut d = Decoder::new(Limits::default());
    let Some(Packet::Event { event, .. }) = d.push_text(Str::from_static(r#"2["x"]"#)).unwrap()
    else {
        panic!()
    };
    for parser in PARSERS {
        let e = event_of(&parser.event("/", None, "y", &event.args_raw()).unwrap());
        assert_eq!(e.data().json().as_str(), r#"["y"]"#);
    }
    // Given to another serializer, the arguments as a sequence (bytes as serde_json has them).
    assert_eq!(serde_json::to_string(&event.args_raw()).unwrap(), "[]");
}

/// A model of typed arguments: every variant is a type the application could have, so the
/// deserializer is told where bytes are (an externally tagged enum, as serde derives it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Model {
    Unit,
    Flag(bool),
    Int(i64),
    Text(String),
    Bin(Bytes),
    MaybeBin(Option<Bytes>),
    Bins(Vec<Bytes>),
    #[serde(with = "as_bytes")]
    Buf(Vec<u8>),
    List(Vec<Model>),
    Map(BTreeMap<String, Model>),
    Record {
        data: Bytes,
        next: Box<Model>,
    },
}

fn bytes() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

/// Map keys: anything but `_placeholder`, which stands for binary values only.
fn key() -> impl Strategy<Value = String> {
    any::<String>().prop_filter("placeholder key", |k| k != "_placeholder")
}

fn model() -> impl Strategy<Value = Model> {
    let leaf = prop_oneof![
        Just(Model::Unit),
        any::<bool>().prop_map(Model::Flag),
        any::<i64>().prop_map(Model::Int),
        any::<String>().prop_map(Model::Text),
        bytes().prop_map(Model::Bin),
        prop::option::of(bytes()).prop_map(Model::MaybeBin),
        prop::collection::vec(bytes(), 0..4).prop_map(Model::Bins),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(Model::Buf),
    ];
    leaf.prop_recursive(6, 48, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Model::List),
            prop::collection::btree_map(key(), inner.clone(), 0..4).prop_map(Model::Map),
            (bytes(), inner).prop_map(|(data, next)| Model::Record {
                data,
                next: Box::new(next)
            }),
        ]
    })
}

/// The byte buffers of a model, in serialization order: the attachments a JSON packet carries.
fn buffers(m: &Model, out: &mut Vec<Bytes>) {
    match m {
        Model::Bin(b) | Model::MaybeBin(Some(b)) => out.push(b.clone()),
        Model::Bins(bs) => out.extend(bs.iter().cloned()),
        Model::Buf(b) => out.push(Bytes::from(b.clone())),
        Model::List(items) => items.iter().for_each(|i| buffers(i, out)),
        Model::Map(map) => map.values().for_each(|i| buffers(i, out)),
        Model::Record { data, next } => {
            out.push(data.clone());
            buffers(next, out);
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn typed_values_round_trip(args in prop::collection::vec(model(), 0..4), id in any::<Option<u64>>()) {
        let mut want = Vec::new();
        args.iter().for_each(|m| buffers(m, &mut want));
        for parser in PARSERS {
            let e = parser.event("/", id, "m", &args).unwrap();
            let expected_type = match (want.is_empty(), parser) {
                (_, Parser::Msgpack) => None,
                (true, _) => Some('2'),
                (false, _) => Some('5'),
            };
            if let Some(t) = expected_type {
                prop_assert_eq!(e.text().as_bytes()[1] as char, t);
                prop_assert_eq!(e.attachments(), &want[..]);
            }
            let event = event_of(&e);
            prop_assert_eq!(event.data().attachments(), &want[..]);
            let got: Vec<Model> = event.args().unwrap();
            prop_assert_eq!(&got, &args);

            let ack = parser.ack("/", 1, &args).unwrap();
            let got: Vec<Model> = ack_data(&ack).deserialize().unwrap();
            prop_assert_eq!(&got, &args);

            // Received, then emitted again as it came, under either parser.
            for to in PARSERS {
                let again = event_of(&to.event("/", None, "n", &event.args_raw()).unwrap());
                let got: Vec<Model> = again.args().unwrap();
                prop_assert_eq!(&got, &args);
                let nested = event_of(&to.event("/", None, "n", &(1, event.args_raw())).unwrap());
                let (one, got): (u8, Vec<Model>) = nested.args().unwrap();
                prop_assert_eq!((one, &got), (1, &args));
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t")]
enum Internal {
    File { data: Bytes, name: String },
    Nothing,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "c")]
enum Adjacent {
    Blob(Bytes),
    Two(Bytes, Option<Bytes>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Untagged {
    Named { bin: Bytes, n: u8 },
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Flattened {
    id: u8,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Extra {
    blob: Bytes,
    list: Vec<Bytes>,
}

#[test]
fn every_enum_representation_and_flatten_round_trips() {
    let value = (
        vec![
            Internal::File {
                data: b(b"i"),
                name: "f".into(),
            },
            Internal::Nothing,
        ],
        vec![
            Adjacent::Blob(b(b"a")),
            Adjacent::Two(b(b"b"), Some(b(b"c"))),
        ],
        vec![
            Untagged::Named { bin: b(b"u"), n: 1 },
            Untagged::Text("t".into()),
        ],
        Flattened {
            id: 3,
            extra: Extra {
                blob: b(b"fl"),
                list: vec![b(b"x"), b(b"")],
            },
        },
    );
    let e = Encoded::event("/", None, "e", &value).unwrap();
    assert_eq!(
        e.text(),
        concat!(
            r#"458-["e","#,
            r#"[{"t":"File","data":{"_placeholder":true,"num":0},"name":"f"},{"t":"Nothing"}],"#,
            r#"[{"t":"Blob","c":{"_placeholder":true,"num":1}},{"t":"Two","c":[{"_placeholder":true,"num":2},{"_placeholder":true,"num":3}]}],"#,
            r#"[{"bin":{"_placeholder":true,"num":4},"n":1},"t"],"#,
            r#"{"id":3,"blob":{"_placeholder":true,"num":5},"list":[{"_placeholder":true,"num":6},{"_placeholder":true,"num":7}]}]"#
        )
    );
    for parser in PARSERS {
        let got: (Vec<Internal>, Vec<Adjacent>, Vec<Untagged>, Flattened) =
            event_of(&parser.event("/", None, "e", &value).unwrap())
                .args()
                .unwrap();
        assert_eq!(got, value, "{parser}");
    }
    // serde itself cannot put bytes beside a tag: an error, under either parser.
    #[derive(Serialize)]
    #[serde(tag = "t")]
    enum Bad {
        B(Bytes),
    }
    for parser in PARSERS {
        assert!(parser.event("/", None, "e", &(Bad::B(b(b"x")),)).is_err());
    }
}

#[test]
fn raw_args_can_be_kept_and_sent_elsewhere() {
    // What `emit_with_ack(event, args, ...)` and a spawned task ask of their arguments.
    fn owned<T: Serialize + Send + Sync + Clone + 'static>(_: &T) {}
    let e = event_of(&Encoded::event("/", None, "x", &(b(b"1"),)).unwrap());
    let raw = e.args_raw();
    drop(e);
    owned(&raw);
    let again = event_of(&Encoded::event("/", None, "y", &raw).unwrap());
    assert_eq!(again.args::<(Bytes,)>().unwrap(), (b(b"1"),));
    assert_eq!(raw.event().name(), "x");
    assert_eq!(
        roomcast::packet::RawArgs::from(raw.clone().into_event()),
        raw
    );
}
