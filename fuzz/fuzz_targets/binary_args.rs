//! The text of one Socket.IO packet through the decoder, its attachments supplied, then its
//! arguments through the streaming deserializer into typed targets (`Bytes`, `Vec<Bytes>`,
//! `Option<Bytes>`, strings, numbers, `serde_json::Value`, enums, numeric-keyed maps). Nothing
//! may panic; a `Value` target must get exactly what the `Value` round trip gave before (each
//! placeholder an array of its attachment's byte values).
#![no_main]
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use roomcast::packet::{Decoder, Packet, Payload};
use roomcast::{Limits, Str};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Upload {
    #[serde(default)]
    data: Bytes,
    #[serde(default)]
    parts: Vec<Bytes>,
    #[serde(default)]
    thumb: Option<Bytes>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    ratio: f64,
    #[serde(default)]
    meta: Value,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
enum Part {
    Blob(Bytes),
    Pair(Bytes, i32),
    Named { data: Bytes, tag: Option<String> },
    Empty,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
#[allow(dead_code)]
enum Loose {
    Blob(Bytes),
    Text(String),
    Number(f64),
    Map(BTreeMap<String, Value>),
}

/// The attachments the fuzzer does not have to spell out: the `i`-th is `i % 5` bytes of `i`.
fn attachment(i: usize) -> Bytes {
    Bytes::from(vec![i as u8; i % 5])
}

/// The `Value` the earlier path built: the JSON parsed, every placeholder replaced. `None`
/// when valid JSON has no `Value` (a number out of `f64`'s range, such as `1e999`): then
/// deserializing into `Value` must fail too.
fn oracle(payload: &Payload) -> Option<Value> {
    fn restore(v: &mut Value, attachments: &[Bytes]) {
        let index = v.as_object().and_then(|o| {
            (o.get("_placeholder")? == &Value::Bool(true)).then_some(())?;
            usize::try_from(o.get("num")?.as_u64()?).ok()
        });
        if let Some(bytes) = index.and_then(|i| attachments.get(i)) {
            *v = Value::Array(bytes.iter().map(|&b| b.into()).collect());
            return;
        }
        match v {
            Value::Array(items) => items.iter_mut().for_each(|v| restore(v, attachments)),
            Value::Object(map) => map.values_mut().for_each(|v| restore(v, attachments)),
            _ => {}
        }
    }
    let mut value: Value = serde_json::from_str(payload.json()).ok()?;
    restore(&mut value, payload.attachments());
    Some(value)
}

fn typed(payload: &Payload) {
    let _ = payload.deserialize::<Vec<Upload>>();
    let _ = payload.deserialize::<Vec<Part>>();
    let _ = payload.deserialize::<Vec<Loose>>();
    let _ = payload.deserialize::<Vec<Option<Bytes>>>();
    let _ = payload.deserialize::<Vec<HashMap<u32, Bytes>>>();
    let _ = payload.deserialize::<Vec<Box<serde_json::value::RawValue>>>();
    let _ = payload.deserialize::<(String, Bytes, Vec<Bytes>, Option<Bytes>, i64, Value)>();
    // Every element came from an attachment, a string's bytes or an array of numbers. (A
    // string may hold what `Value` cannot, such as a lone surrogate escape, while its bytes
    // still deserialize: compare only when both do.)
    if let (Ok(all), Ok(values)) = (
        payload.deserialize::<Vec<Bytes>>(),
        payload.deserialize::<Vec<Value>>(),
    ) {
        assert_eq!(all.len(), values.len());
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = Limits {
        max_attachments: 8,
        ..Limits::default()
    };
    let mut decoder = Decoder::new(limits);
    let Ok(mut out) = decoder.push_text(Str::from(text.to_owned())) else {
        return;
    };
    let mut i = 0;
    while out.is_none() {
        out = decoder
            .push_binary(attachment(i))
            .expect("a pending packet takes attachments");
        i += 1;
    }
    let Some(packet) = out else { return };
    let payload = match &packet {
        Packet::Event { event, .. } => {
            match oracle(event.data()) {
                Some(Value::Array(mut want)) => {
                    want.remove(0);
                    assert_eq!(event.args::<Vec<Value>>().unwrap(), want);
                }
                Some(other) => panic!("an event is an array, not {other}"),
                // The name itself may be what has no `Value` (`81e999`): nothing to compare the
                // arguments with; the whole payload is compared below.
                None => {}
            }
            let _ = event.args::<(Upload,)>();
            let _ = event.args::<(Bytes, Option<Bytes>, Vec<Bytes>)>();
            let _ = event.args::<(String, u64, Part)>();
            event.data()
        }
        Packet::Ack { data, .. } => data,
        _ => return,
    };
    assert_eq!(payload.deserialize::<Value>().ok(), oracle(payload));
    typed(payload);
});
