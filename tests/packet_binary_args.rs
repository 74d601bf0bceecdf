//! Deserializing binary arguments: placeholders become their attachments wherever they are and
//! whatever asks for them, every other object deserializes as it would without attachments.

use bytes::Bytes;
use roomcast::packet::{DecodeError, Decoder, Event, Packet, PayloadError};
use roomcast::{Limits, Str};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

fn ph(i: usize) -> String {
    format!(r#"{{"_placeholder":true,"num":{i}}}"#)
}

fn decode(header: &str, attachments: &[&[u8]]) -> Result<Packet, DecodeError> {
    let mut d = Decoder::new(Limits::default());
    let mut out = d.push_text(Str::from(header.to_owned()))?;
    for a in attachments {
        assert!(out.is_none(), "complete before its attachments");
        out = d.push_binary(Bytes::copy_from_slice(a))?;
    }
    Ok(out.expect("still waiting for attachments"))
}

/// A binary event `["ev", <args>]` whose placeholders stand for `attachments`.
fn event(args: &str, attachments: &[&[u8]]) -> Event {
    let header = format!(r#"5{}-["ev",{args}]"#, attachments.len());
    match decode(&header, attachments).unwrap() {
        Packet::Event { event, .. } => event,
        p => panic!("not an event: {p:?}"),
    }
}

/// What `serde_bytes` does: ask for a byte buffer, and accept nothing but bytes, so a test using
/// it proves the visitor got bytes rather than a sequence of numbers.
mod only_bytes {
    use serde::de::{Deserializer, Error, Visitor};
    use std::fmt;

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
            fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_byte_buf(V)
    }
}

#[derive(Debug, Deserialize, PartialEq)]
struct Everything {
    data: Bytes,
    #[serde(deserialize_with = "only_bytes::deserialize")]
    raw: Vec<u8>,
    plain: Vec<u8>,
    list: Vec<Bytes>,
    maybe: Option<Bytes>,
    none: Option<Bytes>,
    pair: [u8; 2],
    name: String,
    n: u64,
    any: Value,
}

#[test]
fn every_kind_of_target_gets_its_attachment() {
    let args = format!(
        r#"{{"data":{},"raw":{},"plain":{},"list":[{},{}],"maybe":{},"none":null,"pair":{},"name":"x","n":7,"any":{}}}"#,
        ph(0),
        ph(1),
        ph(2),
        ph(3),
        ph(0),
        ph(1),
        ph(4),
        ph(5)
    );
    let e = event(
        &args,
        &[b"d", b"raw", b"plain", b"l", b"pa", b"\x01\x02\x03"],
    );
    let (got,): (Everything,) = e.args().unwrap();
    assert_eq!(
        got,
        Everything {
            data: Bytes::from_static(b"d"),
            raw: b"raw".to_vec(),
            plain: b"plain".to_vec(),
            list: vec![Bytes::from_static(b"l"), Bytes::from_static(b"d")],
            maybe: Some(Bytes::from_static(b"raw")),
            none: None,
            pair: *b"pa",
            name: "x".into(),
            n: 7,
            any: json!([1, 2, 3]),
        }
    );
}

#[test]
fn keys_in_either_order_with_any_spacing_and_escapes() {
    for p in [
        r#"{"num":0,"_placeholder":true}"#,
        "{ \"_placeholder\" :\ttrue ,\n\"num\": 0 }",
        r#"{"_placeholder":true,"n\u0075m":0}"#,
        r#"{"\u005fplaceholder":true,"num":0}"#,
    ] {
        let e = event(p, &[b"abc"]);
        let (b,): (Bytes,) = e.args().unwrap();
        assert_eq!(b, "abc", "{p}");
        let (only,): (Wrapped,) = e.args().unwrap();
        assert_eq!(only.0, b"abc", "{p}");
    }
}

#[derive(Deserialize)]
struct Wrapped(#[serde(deserialize_with = "only_bytes::deserialize")] Vec<u8>);

#[test]
fn placeholders_at_any_depth() {
    // As deep as the decoder accepts (128 levels, the event's array and the placeholder
    // included), on a test thread's small stack.
    let mut args = ph(0);
    for i in 0..125 {
        args = if i % 2 == 0 {
            format!("[{args}]")
        } else {
            format!(r#"{{"k":{args}}}"#)
        };
    }
    let e = event(&args, &[b"deep"]);
    let (v,): (Value,) = e.args().unwrap();
    let mut at = &v;
    for i in (0..125).rev() {
        at = if i % 2 == 0 { &at[0] } else { &at["k"] };
    }
    assert_eq!(at, &json!([100, 101, 101, 112]));
}

#[test]
fn a_value_target_gets_arrays_of_byte_values_as_before() {
    let e = event(
        &format!(r#"{},{{"a":{},"b":[{}]}}"#, ph(0), ph(1), ph(0)),
        &[b"\x00\xff", b""],
    );
    let v: Vec<Value> = e.args().unwrap();
    assert_eq!(v, [json!([0, 255]), json!({"a": [], "b": [[0, 255]]})]);
    let all: Value = e.data().deserialize().unwrap();
    assert_eq!(all, json!(["ev", [0, 255], {"a": [], "b": [[0, 255]]}]));
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Numbered {
    num: u32,
    _placeholder: bool,
    blob: Bytes,
}

#[test]
fn objects_that_are_not_placeholders_deserialize_as_maps() {
    // Members named like a placeholder's, in a struct.
    let e = event(
        &format!(r#"{{"_placeholder":false,"num":0,"blob":{}}}"#, ph(0)),
        &[b"z"],
    );
    let (n,): (Numbered,) = e.args().unwrap();
    assert_eq!(
        n,
        Numbered {
            num: 0,
            _placeholder: false,
            blob: Bytes::from_static(b"z"),
        }
    );
    // Numeric keys follow serde_json's map-key rules, the first one included.
    let e = event(
        &format!(r#"{{"7":{},"-3":{}}}"#, ph(0), ph(1)),
        &[b"a", b"b"],
    );
    let (m,): (HashMap<i32, Bytes>,) = e.args().unwrap();
    assert_eq!(m[&7], "a");
    assert_eq!(m[&-3], "b");
    let (m,): (BTreeMap<String, Value>,) = e.args().unwrap();
    assert_eq!(m["7"], json!([97]));
    // First keys with escapes, and keys read as booleans or enum variants: serde_json's rules.
    let e = event(
        &format!(
            r#"{{"\u0061b":{}}},{{"true":{}}},{{"B":{}}},{{"n\u0075m":3,"_placeholder":false,"blob":{}}}"#,
            ph(0),
            ph(0),
            ph(0),
            ph(0)
        ),
        &[b"k"],
    );
    #[derive(Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
    enum K {
        A,
        B,
    }
    type Keys = (
        BTreeMap<String, Bytes>,
        HashMap<bool, Bytes>,
        BTreeMap<K, Bytes>,
        Numbered,
    );
    let (s, b, k, n): Keys = e.args().unwrap();
    assert_eq!(s["ab"], "k");
    assert_eq!(b[&true], "k");
    assert_eq!(k[&K::B], "k");
    assert_eq!((n.num, n.blob), (3, Bytes::from_static(b"k")));
    // Empty objects, and `null` against options.
    let e = event(r#"{},{"a":{}},null"#, &[]);
    let v: (Value, BTreeMap<String, Value>, Option<Bytes>) = e.args().unwrap();
    assert_eq!(
        v,
        (json!({}), BTreeMap::from([("a".into(), json!({}))]), None)
    );
}

#[test]
fn a_repeated_placeholder_flag_that_ends_false_is_plain_data() {
    // As in JavaScript, the last `_placeholder` counts: this object is no placeholder.
    let e = event(
        r#"{"_placeholder":true,"_placeholder":false,"num":0}"#,
        &[b"x"],
    );
    let (v,): (Value,) = e.args().unwrap();
    assert_eq!(v, json!({"_placeholder": false, "num": 0}));
}

#[test]
fn the_decoder_refuses_placeholders_of_any_other_shape() {
    for p in [
        r#"{"_placeholder":true,"num":0,"extra":1}"#,
        r#"{"extra":1,"_placeholder":true,"num":0}"#,
        r#"{"_placeholder":true,"num":0,"num":0}"#,
        r#"{"_placeholder":false,"_placeholder":true,"num":0}"#,
        r#"{"_placeholder":true,"num":1}"#,
    ] {
        let header = format!(r#"51-["ev",{p}]"#);
        assert_eq!(
            decode(&header, &[b"x"]).unwrap_err(),
            DecodeError::Payload {
                packet_type: roomcast::packet::PacketType::BinaryEvent,
                error: PayloadError::InvalidPlaceholder { attachments: 1 },
            },
            "{p}"
        );
    }
}

#[derive(Debug, Deserialize, PartialEq)]
enum Part {
    Blob(Bytes),
    Pair(Bytes, u8),
    Named { data: Bytes },
    Empty,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(untagged)]
enum Loose {
    Text(String),
    Blob(Bytes),
}

#[derive(Debug, Deserialize, PartialEq)]
struct Outer {
    id: u8,
    #[serde(flatten)]
    rest: BTreeMap<String, Bytes>,
}

#[test]
fn enums_untagged_and_flattened_content() {
    let e = event(
        &format!(
            r#"[{{"Blob":{}}},{{"Pair":[{},9]}},{{"Named":{{"data":{}}}}},"Empty"],[{},"t"],{{"id":1,"f":{}}}"#,
            ph(0),
            ph(1),
            ph(0),
            ph(1),
            ph(0)
        ),
        &[b"a", b"b"],
    );
    let (parts, loose, outer): (Vec<Part>, Vec<Loose>, Outer) = e.args().unwrap();
    let (a, b) = (Bytes::from_static(b"a"), Bytes::from_static(b"b"));
    assert_eq!(
        parts,
        [
            Part::Blob(a.clone()),
            Part::Pair(b.clone(), 9),
            Part::Named { data: a.clone() },
            Part::Empty
        ]
    );
    assert_eq!(loose, [Loose::Blob(b), Loose::Text("t".into())]);
    assert_eq!(outer.id, 1);
    assert_eq!(outer.rest["f"], a);
}

#[test]
fn raw_values_keep_their_placeholder_text() {
    let e = event(&format!(r#"{{"x": {}}}"#, ph(0)), &[b"a"]);
    let (raw,): (Box<serde_json::value::RawValue>,) = e.args().unwrap();
    assert_eq!(raw.get(), format!(r#"{{"x": {}}}"#, ph(0)));
}

#[test]
fn errors_are_errors_with_a_position() {
    let e = event(&format!(r#"{{"oops":1,"blob":{}}}"#, ph(0)), &[b"z"]);
    let err = e.args::<(Numbered,)>().unwrap_err();
    assert!(err.to_string().contains("unknown field `oops`"), "{err}");
    assert!(err.is_data());
    assert_eq!(err.line(), 1);
    // A placeholder where a string is wanted, and bytes where a number is.
    let e = event(&ph(0), &[b"z"]);
    assert!(e.args::<(String,)>().is_err());
    assert!(e.args::<(u8,)>().is_err());
    // A sequence target shorter than the attachment.
    assert!(e.args::<([u8; 0],)>().is_err());
}

#[derive(Deserialize)]
struct Strict(#[serde(deserialize_with = "strict_bytes")] Vec<u8>);

fn strict_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    only_bytes::deserialize(d)
}

#[test]
fn strings_where_bytes_are_asked_are_their_utf8_as_without_attachments() {
    let with = event(&format!(r#""h\u00e9",{}"#, ph(0)), &[b"x"]);
    let (a, _): (Strict, Bytes) = with.args().unwrap();
    let Packet::Event { event: without, .. } = Decoder::new(Limits::default())
        .push_text(Str::from(r#"2["ev","h\u00e9"]"#))
        .unwrap()
        .unwrap()
    else {
        panic!()
    };
    let (b,): (Strict,) = without.args().unwrap();
    assert_eq!(a.0, b.0);
    assert_eq!(a.0, "hé".as_bytes());
}

#[test]
fn acks_and_whole_payloads() {
    let Packet::Ack { data, id, .. } = decode(&format!("61-/a,4[{}]", ph(0)), &[b"ok"]).unwrap()
    else {
        panic!()
    };
    assert_eq!(id, 4);
    let (b,): (Bytes,) = data.deserialize().unwrap();
    assert_eq!(b, "ok");
}
