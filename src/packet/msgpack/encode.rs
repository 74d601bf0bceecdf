//! Writing msgpack packets: the map's keys with `rmp`, the values with `rmp-serde`.

use super::super::encode::{EncodeError, Encoded};
use super::super::types::{Event, Packet, PacketType};
use bytes::Bytes;
use rmp::encode as w;
use rmp::Marker;
use rmpv::Value;
use serde::Serialize;
use std::cell::RefCell;

thread_local! {
    /// Where each thread serializes arguments before they are spliced into the data array.
    static ARGS: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Larger scratch buffers are let go rather than kept for the next packet.
const MAX_SCRATCH: usize = 64 * 1024;

/// Writing to a `Vec` cannot fail: `rmp`'s results carry an error only for other writers.
fn done<T, E>(_: Result<T, E>) {}

fn msgpack_error(e: impl std::fmt::Display) -> EncodeError {
    EncodeError::Msgpack(e.to_string())
}

/// `value` as msgpack, appended to `buf`: structs as maps (as notepack reads JavaScript
/// objects), byte strings as `bin`, and human-readable forms where a type has two (addresses,
/// ids, times as strings), as the JSON parser writes them.
fn serialize_into<T: Serialize + ?Sized>(buf: &mut Vec<u8>, value: &T) -> Result<(), EncodeError> {
    let mut ser = rmp_serde::Serializer::new(buf)
        .with_struct_map()
        .with_human_readable();
    value.serialize(&mut ser).map_err(msgpack_error)
}

/// The start of a packet map: `type`, `nsp`, `id` if any, and the `data` key if it follows.
fn header(
    ty: PacketType,
    nsp: &str,
    id: Option<u64>,
    has_data: bool,
    hint: usize,
) -> Result<Vec<u8>, EncodeError> {
    // The same rule as the JSON parser: a namespace is the same name under either.
    if !nsp.starts_with('/') || nsp.contains(',') {
        return Err(EncodeError::InvalidNamespace(nsp.to_owned()));
    }
    let mut buf = Vec::with_capacity(24 + nsp.len() + hint);
    let len = 2 + u32::from(id.is_some()) + u32::from(has_data);
    done(w::write_map_len(&mut buf, len));
    done(w::write_str(&mut buf, "type"));
    done(w::write_uint(&mut buf, ty as u64));
    done(w::write_str(&mut buf, "nsp"));
    done(w::write_str(&mut buf, nsp));
    if let Some(id) = id {
        done(w::write_str(&mut buf, "id"));
        done(w::write_uint(&mut buf, id));
    }
    if has_data {
        done(w::write_str(&mut buf, "data"));
    }
    Ok(buf)
}

/// The element count and the elements of an argument list serialized alone: an array's
/// elements, nothing for nil (the unit `()`), or the one value it is.
fn spread(args: &[u8]) -> (u32, &[u8]) {
    let mut rd = args;
    match args.first().map(|&b| Marker::from_u8(b)) {
        Some(Marker::FixArray(_) | Marker::Array16 | Marker::Array32) => {
            match rmp::decode::read_array_len(&mut rd) {
                Ok(n) => (n, rd),
                Err(_) => (1, args),
            }
        }
        Some(Marker::Null) | None => (0, &[]),
        Some(_) => (1, args),
    }
}

/// Serializes `args` in this thread's scratch buffer and hands its elements to `f`.
fn with_args<T: Serialize + ?Sized, R>(
    args: &T,
    f: impl FnOnce(u32, &[u8]) -> Result<R, EncodeError>,
) -> Result<R, EncodeError> {
    let mut scratch = ARGS.with(|s| std::mem::take(&mut *s.borrow_mut()));
    scratch.clear();
    let result = serialize_into(&mut scratch, args).and_then(|()| {
        let (n, elems) = spread(&scratch);
        f(n, elems)
    });
    if scratch.capacity() <= MAX_SCRATCH {
        ARGS.with(|s| *s.borrow_mut() = scratch);
    }
    result
}

/// Finishes an EVENT whose data array (`[name, ...count elements]`) goes at the end.
fn finish_event(
    nsp: &str,
    id: Option<u64>,
    name: &str,
    count: u32,
    elems: &[u8],
) -> Result<Encoded, EncodeError> {
    let total = count
        .checked_add(1)
        .ok_or_else(|| msgpack_error("too many arguments"))?;
    let mut buf = header(
        PacketType::Event,
        nsp,
        id,
        true,
        8 + name.len() + elems.len(),
    )?;
    let data_at = u32::try_from(buf.len()).map_err(msgpack_error)?;
    done(w::write_array_len(&mut buf, total));
    done(w::write_str(&mut buf, name));
    buf.extend_from_slice(elems);
    Ok(Encoded::msgpack(
        Bytes::from(buf),
        id.is_none().then_some(data_at),
    ))
}

/// Finishes an ACK, its data array holding `count` elements.
fn finish_ack(nsp: &str, id: u64, count: u32, elems: &[u8]) -> Result<Encoded, EncodeError> {
    let mut buf = header(PacketType::Ack, nsp, Some(id), true, 5 + elems.len())?;
    done(w::write_array_len(&mut buf, count));
    buf.extend_from_slice(elems);
    Ok(Encoded::msgpack(Bytes::from(buf), None))
}

pub(in crate::packet) fn event<T: Serialize + ?Sized>(
    nsp: &str,
    id: Option<u64>,
    name: &str,
    args: &T,
) -> Result<Encoded, EncodeError> {
    if let Some(event) = super::super::raw::probe(args) {
        return event_with_args_of(nsp, id, name, &event);
    }
    with_args(args, |n, elems| finish_event(nsp, id, name, n, elems))
}

pub(in crate::packet) fn ack<T: Serialize + ?Sized>(
    nsp: &str,
    id: u64,
    args: &T,
) -> Result<Encoded, EncodeError> {
    if let Some(event) = super::super::raw::probe(args) {
        return ack_with_args_of(nsp, id, &event);
    }
    with_args(args, |n, elems| finish_ack(nsp, id, n, elems))
}

pub(in crate::packet) fn connect<T: Serialize + ?Sized>(
    nsp: &str,
    data: Option<&T>,
) -> Result<Encoded, EncodeError> {
    let mut buf = header(PacketType::Connect, nsp, None, data.is_some(), 48)?;
    if let Some(data) = data {
        serialize_into(&mut buf, data)?;
    }
    Ok(Encoded::msgpack(Bytes::from(buf), None))
}

pub(in crate::packet) fn connect_error<T: Serialize + ?Sized>(
    nsp: &str,
    data: &T,
) -> Result<Encoded, EncodeError> {
    let mut buf = header(PacketType::ConnectError, nsp, None, true, 48)?;
    serialize_into(&mut buf, data)?;
    Ok(Encoded::msgpack(Bytes::from(buf), None))
}

pub(in crate::packet) fn disconnect(nsp: &str) -> Result<Encoded, EncodeError> {
    let buf = header(PacketType::Disconnect, nsp, None, false, 0)?;
    Ok(Encoded::msgpack(Bytes::from(buf), None))
}

/// JSON text with placeholders, and its attachments, as one msgpack value: each placeholder
/// (`{"_placeholder":true,"num":i}`, `i` an attachment) becomes `bin`. Map order is kept.
fn json_value(json: &str, attachments: &[Bytes]) -> Result<Value, EncodeError> {
    let mut value: Value = serde_json::from_str(json)?;
    restore(&mut value, attachments);
    Ok(value)
}

fn restore(value: &mut Value, attachments: &[Bytes]) {
    match value {
        Value::Map(entries) => {
            if let Some(bytes) = placeholder(entries, attachments) {
                *value = Value::Binary(bytes.to_vec());
                return;
            }
            for (_, v) in entries.iter_mut() {
                restore(v, attachments);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| restore(v, attachments)),
        _ => {}
    }
}

fn placeholder<'a>(entries: &[(Value, Value)], attachments: &'a [Bytes]) -> Option<&'a Bytes> {
    let [(k1, v1), (k2, v2)] = entries else {
        return None;
    };
    let (flag, num) = match (k1.as_str()?, k2.as_str()?) {
        ("_placeholder", "num") => (v1, v2),
        ("num", "_placeholder") => (v2, v1),
        _ => return None,
    };
    if flag.as_bool() != Some(true) {
        return None;
    }
    attachments.get(usize::try_from(num.as_u64()?).ok()?)
}

/// A received event's arguments (after its name) as msgpack values, each placeholder its
/// attachment as `bin`: what [`RawArgs`](crate::packet::RawArgs) serializes as anywhere but as a
/// whole argument list.
pub(in crate::packet) fn arg_values(event: &Event) -> Result<Vec<Value>, EncodeError> {
    match json_value(&event.data.json, &event.data.attachments)? {
        Value::Array(mut items) if !items.is_empty() => {
            items.remove(0);
            Ok(items)
        }
        _ => Err(msgpack_error("the payload is not an event array")),
    }
}

/// Values written back to back.
fn write_values(values: &[Value]) -> Vec<u8> {
    let mut buf = Vec::new();
    for v in values {
        done(rmpv::encode::write_value(&mut buf, v));
    }
    buf
}

/// A JSON array payload's elements, from `skip` on, as msgpack.
fn array_elements(
    json: &str,
    attachments: &[Bytes],
    skip: usize,
) -> Result<(u32, Vec<u8>), EncodeError> {
    match json_value(json, attachments)? {
        Value::Array(items) => {
            let items = items.get(skip..).unwrap_or_default();
            let n = u32::try_from(items.len()).map_err(msgpack_error)?;
            Ok((n, write_values(items)))
        }
        _ => Err(msgpack_error("the payload is not an array")),
    }
}

pub(in crate::packet) fn event_raw(
    nsp: &str,
    id: Option<u64>,
    name: &str,
    args: &[&serde_json::value::RawValue],
    attachments: &[Bytes],
) -> Result<Encoded, EncodeError> {
    let mut values = Vec::with_capacity(args.len());
    for a in args {
        values.push(json_value(a.get(), attachments)?);
    }
    let n = u32::try_from(values.len()).map_err(msgpack_error)?;
    finish_event(nsp, id, name, n, &write_values(&values))
}

/// The arguments of a received event as msgpack elements: the bytes they came in when the
/// msgpack parser decoded it, else converted from its JSON.
fn args_of(event: &Event) -> Result<(u32, std::borrow::Cow<'_, [u8]>), EncodeError> {
    if let Some(raw) = &event.raw {
        return Ok((raw.count, std::borrow::Cow::Borrowed(&raw.bytes[..])));
    }
    let (n, bytes) = array_elements(&event.data.json, &event.data.attachments, 1)?;
    Ok((n, std::borrow::Cow::Owned(bytes)))
}

pub(in crate::packet) fn event_with_args_of(
    nsp: &str,
    id: Option<u64>,
    name: &str,
    event: &Event,
) -> Result<Encoded, EncodeError> {
    let (n, elems) = args_of(event)?;
    finish_event(nsp, id, name, n, &elems)
}

pub(in crate::packet) fn ack_with_args_of(
    nsp: &str,
    id: u64,
    event: &Event,
) -> Result<Encoded, EncodeError> {
    let (n, elems) = args_of(event)?;
    finish_ack(nsp, id, n, &elems)
}

/// A decoded packet (JSON view) in msgpack.
pub(in crate::packet) fn encode_packet(packet: &Packet) -> Result<Encoded, EncodeError> {
    let json = |json: &str| -> Result<Vec<u8>, EncodeError> {
        Ok(write_values(&[json_value(json, &[])?]))
    };
    match packet {
        Packet::Connect { nsp, data } => {
            let mut buf = header(PacketType::Connect, nsp, None, data.is_some(), 48)?;
            if let Some(data) = data {
                buf.extend_from_slice(&json(data)?);
            }
            Ok(Encoded::msgpack(Bytes::from(buf), None))
        }
        Packet::Disconnect { nsp } => disconnect(nsp),
        Packet::Event { nsp, id, event } => {
            let (n, elems) = array_elements(&event.data.json, &event.data.attachments, 0)?;
            let mut buf = header(PacketType::Event, nsp, *id, true, 8 + elems.len())?;
            let data_at = u32::try_from(buf.len()).map_err(msgpack_error)?;
            done(w::write_array_len(&mut buf, n));
            buf.extend_from_slice(&elems);
            Ok(Encoded::msgpack(
                Bytes::from(buf),
                id.is_none().then_some(data_at),
            ))
        }
        Packet::Ack { nsp, id, data } => {
            let (n, elems) = array_elements(&data.json, &data.attachments, 0)?;
            finish_ack(nsp, *id, n, &elems)
        }
        Packet::ConnectError { nsp, data } => {
            let mut buf = header(PacketType::ConnectError, nsp, None, true, 48)?;
            buf.extend_from_slice(&json(data)?);
            Ok(Encoded::msgpack(Bytes::from(buf), None))
        }
    }
}

/// `bytes` (an EVENT whose data array starts at `data_at` and ends the message) with `arg` as
/// one more element: the prefix, a new array header, the elements, the string. Also where the
/// new array starts (the same place).
pub(crate) fn with_last_arg(bytes: &Bytes, data_at: u32, arg: &str) -> Option<(Bytes, u32)> {
    let at = data_at as usize;
    let mut rd = bytes.get(at..)?;
    let n = rmp::decode::read_array_len(&mut rd).ok()?;
    let mut buf = Vec::with_capacity(bytes.len() + arg.len() + 9);
    buf.extend_from_slice(&bytes[..at]);
    done(w::write_array_len(&mut buf, n.checked_add(1)?));
    buf.extend_from_slice(rd);
    done(w::write_str(&mut buf, arg));
    Some((Bytes::from(buf), data_at))
}
