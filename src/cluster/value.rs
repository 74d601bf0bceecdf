//! Event arguments as they cross the cluster: one value tree with binary leaves, in place of
//! Socket.IO's JSON text with placeholders and attachments.
//!
//! Node nodes put no `_placeholder` objects into Redis: a binary event is reassembled into a
//! value tree (msgpack `bin` leaves) before it is published, and taken apart again by each
//! receiving node's encoder. [`from_payload`] and [`ClusterArgs`] do the same here, and
//! [`normalize`] turns what Node's msgpack writers produce (notepack's `undefined`, dates,
//! legacy `ArrayBuffer`s, float32s, non-string keys) into values a JSON client can be given.

use crate::packet::Payload;
use rmpv::Value;
use serde::ser::{Serialize, SerializeSeq, Serializer};

/// Deepest nesting accepted in a value from the cluster: serde_json's own recursion limit, the
/// one the Socket.IO decoder also enforces.
pub(crate) const MAX_DEPTH: usize = 128;

/// Why a value could not cross the cluster.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The JSON text of the arguments is not valid (cannot happen for decoded packets).
    #[error("invalid JSON arguments: {0}")]
    Json(String),
    /// A placeholder names an attachment that does not exist.
    #[error("placeholder {num} of {count} attachments")]
    Placeholder {
        /// The attachment asked for.
        num: u64,
        /// How many there are.
        count: usize,
    },
    /// Nested deeper than 128 levels.
    #[error("value nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// A Socket.IO payload (JSON text, placeholders pointing at attachments) as one value tree:
/// each placeholder replaced by its attachment's bytes.
pub fn from_payload(payload: &Payload) -> Result<Value, ValueError> {
    from_parts(payload.json(), payload.attachments())
}

/// Any serializable value as it crosses the cluster: what `serde` makes of it as JSON (structs
/// as maps, as Node reads them), byte strings (`bytes::Bytes`, `serde_bytes`) as binary.
pub fn to_value<T: serde::Serialize + ?Sized>(v: &T) -> Result<Value, ValueError> {
    let p = Payload::serialize(v).map_err(|e| ValueError::Json(e.to_string()))?;
    from_payload(&p)
}

/// A value from the cluster (a stored session's `data`) as a Rust type, by `serde`.
pub fn from_value<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ValueError> {
    rmpv::ext::from_value(v).map_err(|e| ValueError::Json(e.to_string()))
}

/// [`from_payload`] for JSON text and its attachments held apart (an encoded packet's).
pub fn from_parts(json: &str, attachments: &[bytes::Bytes]) -> Result<Value, ValueError> {
    let mut value: Value =
        serde_json::from_str(json).map_err(|e| ValueError::Json(e.to_string()))?;
    restore(&mut value, attachments, 0)?;
    Ok(value)
}

fn restore(
    value: &mut Value,
    attachments: &[bytes::Bytes],
    depth: usize,
) -> Result<(), ValueError> {
    if depth > MAX_DEPTH {
        return Err(ValueError::TooDeep);
    }
    match value {
        Value::Map(entries) => {
            if let Some(num) = placeholder_num(entries) {
                let bytes = usize::try_from(num)
                    .ok()
                    .and_then(|i| attachments.get(i))
                    .ok_or(ValueError::Placeholder {
                        num,
                        count: attachments.len(),
                    })?;
                *value = Value::Binary(bytes.to_vec());
                return Ok(());
            }
            for (_, v) in entries.iter_mut() {
                restore(v, attachments, depth + 1)?;
            }
        }
        Value::Array(items) => {
            for v in items.iter_mut() {
                restore(v, attachments, depth + 1)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The attachment number of a placeholder object `{"_placeholder":true,"num":n}`.
fn placeholder_num(entries: &[(Value, Value)]) -> Option<u64> {
    if entries.len() != 2 {
        return None;
    }
    let get = |key: &str| {
        entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    };
    match (get("_placeholder"), get("num")) {
        (Some(Value::Boolean(true)), Some(n)) => n.as_u64(),
        _ => None,
    }
}

/// Makes a value from another node safe to hand to clients, as Node would see it: notepack's
/// `undefined` (`d4 00 00`) becomes nil, a timestamp (ext −1) its ISO-8601 string (what
/// `JSON.stringify(date)` gives), a legacy `ArrayBuffer` (ext 0) binary, other extensions nil;
/// float32 widens, non-finite numbers become nil (JSON has none), map keys become strings.
pub fn normalize(value: &mut Value, depth: usize) -> Result<(), ValueError> {
    if depth > MAX_DEPTH {
        return Err(ValueError::TooDeep);
    }
    match value {
        Value::Ext(0, data) if data.as_slice() == [0] => *value = Value::Nil,
        Value::Ext(0, data) => *value = Value::Binary(std::mem::take(data)),
        Value::Ext(-1, data) => *value = timestamp(data).map_or(Value::Nil, Value::from),
        Value::Ext(..) => *value = Value::Nil,
        // Not UTF-8: the replacement character, as JavaScript's decoders give.
        Value::String(st) if !st.is_str() => {
            *value = Value::from(String::from_utf8_lossy(st.as_bytes()).into_owned())
        }
        Value::F32(f) => *value = finite(f64::from(*f)),
        Value::F64(f) => *value = finite(*f),
        Value::Array(items) => {
            for v in items.iter_mut() {
                normalize(v, depth + 1)?;
            }
        }
        Value::Map(entries) => {
            for (k, v) in entries.iter_mut() {
                if !k.is_str() {
                    *k = Value::from(key_string(k));
                }
                normalize(k, depth + 1)?;
                normalize(v, depth + 1)?;
            }
            // JavaScript objects drop keys whose value was `undefined`.
        }
        _ => {}
    }
    Ok(())
}

fn finite(f: f64) -> Value {
    if f.is_finite() {
        Value::F64(f)
    } else {
        Value::Nil
    }
}

/// A non-string map key as JavaScript would name it.
fn key_string(k: &Value) -> String {
    match k {
        Value::Nil => "null".into(),
        Value::Boolean(b) => b.to_string(),
        Value::Integer(i) => i.to_string(),
        Value::F32(f) => f.to_string(),
        Value::F64(f) => f.to_string(),
        Value::String(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        other => other.to_string(),
    }
}

/// The msgpack timestamp extension (32, 64 or 96 bits) as an ISO-8601 UTC string with
/// milliseconds, `None` if malformed or out of range.
fn timestamp(data: &[u8]) -> Option<String> {
    let (secs, nanos): (i64, u32) = match data.len() {
        4 => (i64::from(u32::from_be_bytes(data.try_into().ok()?)), 0),
        8 => {
            let v = u64::from_be_bytes(data.try_into().ok()?);
            ((v & 0x3_ffff_ffff) as i64, (v >> 34) as u32)
        }
        12 => (
            i64::from_be_bytes(data[4..].try_into().ok()?),
            u32::from_be_bytes(data[..4].try_into().ok()?),
        ),
        _ => return None,
    };
    iso8601(secs, nanos / 1_000_000)
}

/// Days-from-civil in reverse (Howard Hinnant's algorithm): days since the epoch to
/// (year, month, day) of the proleptic Gregorian calendar.
pub(crate) fn civil(days: i64) -> Option<(i64, i64, i64)> {
    let z = days.checked_add(719_468)?;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    Some((yoe + era * 400 + i64::from(month <= 2), month, day))
}

/// Seconds since the epoch as `JSON.stringify(Date)` writes them.
pub(crate) fn iso8601(secs: i64, millis: u32) -> Option<String> {
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil(secs.div_euclid(86_400))?;
    if !(0..=9999).contains(&year) {
        return None;
    }
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    ))
}

/// Event arguments from the cluster, serialized as a sequence for
/// [`Encoded::event`](crate::packet::Encoded::event): binary leaves go out as Socket.IO
/// attachments, encoded once for every local recipient.
pub struct ClusterArgs<'a>(pub &'a [Value]);

impl Serialize for ClusterArgs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for v in self.0 {
            seq.serialize_element(v)?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Decoder, Encoded, Packet};
    use crate::{Limits, Str};
    use bytes::Bytes;

    #[test]
    fn binary_arguments_round_trip_through_a_value_tree() {
        let mut d = Decoder::new(Limits::default());
        let header = Str::from(
            r#"52-["up",{"a":{"_placeholder":true,"num":0},"b":[1,{"_placeholder":true,"num":1}]}]"#,
        );
        assert!(d.push_text(header).unwrap().is_none());
        assert!(d.push_binary(Bytes::from_static(b"xy")).unwrap().is_none());
        let Some(Packet::Event { event, .. }) = d.push_binary(Bytes::from_static(b"z")).unwrap()
        else {
            panic!()
        };
        let value = from_payload(event.data()).unwrap();
        let Value::Array(items) = &value else {
            panic!()
        };
        assert_eq!(items[0], Value::from("up"));
        let map = items[1].as_map().unwrap();
        assert_eq!(map[0].1, Value::Binary(b"xy".to_vec()));
        // Back to a Socket.IO packet: the same placeholders and attachments.
        let e = Encoded::event("/", None, "up", &ClusterArgs(&items[1..])).unwrap();
        assert_eq!(
            e.text(),
            r#"452-["up",{"a":{"_placeholder":true,"num":0},"b":[1,{"_placeholder":true,"num":1}]}]"#
        );
        assert_eq!(
            e.attachments(),
            [Bytes::from_static(b"xy"), Bytes::from_static(b"z")]
        );
    }

    #[test]
    fn a_placeholder_past_the_attachments_is_an_error() {
        let mut v: Value = serde_json::from_str(r#"[{"_placeholder":true,"num":3}]"#).unwrap();
        assert_eq!(
            restore(&mut v, &[], 0),
            Err(ValueError::Placeholder { num: 3, count: 0 })
        );
    }

    #[test]
    fn node_msgpack_quirks_are_normalized() {
        let mut v = Value::Map(vec![
            (Value::from("undef"), Value::Ext(0, vec![0])),
            (
                Value::from("date"),
                Value::Ext(-1, 1_700_000_000u32.to_be_bytes().to_vec()),
            ),
            (Value::from("buf"), Value::Ext(0, vec![1, 2])),
            (Value::from(7), Value::F32(0.5)),
            (Value::from("nan"), Value::F64(f64::NAN)),
        ]);
        normalize(&mut v, 0).unwrap();
        assert_eq!(
            v,
            Value::Map(vec![
                (Value::from("undef"), Value::Nil),
                (Value::from("date"), Value::from("2023-11-14T22:13:20.000Z")),
                (Value::from("buf"), Value::Binary(vec![1, 2])),
                (Value::from("7"), Value::F64(0.5)),
                (Value::from("nan"), Value::Nil),
            ])
        );
    }

    #[test]
    fn too_deep_values_are_refused() {
        let mut v = Value::Nil;
        for _ in 0..200 {
            v = Value::Array(vec![v]);
        }
        assert_eq!(normalize(&mut v, 0), Err(ValueError::TooDeep));
    }
}
