//! Reading msgpack packets: the map with `rmp`, `data` transcoded on the way into the JSON view
//! (text with placeholders, attachments sliced from the message).
//!
//! The values are read as notepack.io 2.2 reads them, then written as `JSON.stringify` would
//! write what it read, except where noted:
//!
//! | msgpack | JSON |
//! |---|---|
//! | `bin`, `ext` type 0 with an explicit length (a Node `ArrayBuffer`) | an attachment behind a placeholder |
//! | fixext1 type 0 (`undefined`) | left out of a map, `null` in an array, "absent" as `data` or `id` |
//! | fixext8 type 0 (a `Date`, int64 milliseconds) | its ISO-8601 string, `null` out of range |
//! | any other extension | `[type, <attachment>]`, as notepack gives `[type, Buffer]` |
//! | float32, float64 | a number; non-finite ones `null` |
//! | uint64, int64 | the exact integer (JavaScript rounds past 2^53) |
//! | a string that is not UTF-8 | its lossy decoding (U+FFFD) |
//! | a map key: integer, nil, boolean, float | its JavaScript name (`"1"`, `"null"`, `"true"`) |
//! | a map key: anything else | refused (JavaScript would name it `[object Object]` and the like) |
//! | a map with `_placeholder: true` | refused: placeholders stand for binary values only |
//!
//! Every container and placeholder counts toward the JSON nesting limit (128, serde_json's), so
//! whatever is decoded can be deserialized; every `bin` toward the attachment limit.

use super::super::error::{DecodeError, PayloadError};
use super::super::json::MAX_DEPTH;
use super::super::types::{Event, Packet, PacketType, Payload, RESERVED_EVENTS};
use super::MsgpackArgs;
use crate::Str;
use bytes::Bytes;
use rmp::decode as r;
use rmp::Marker;
use std::ops::Range;

/// An error while transcoding: the packet type may not be known yet for a payload error.
enum Fail {
    Decode(DecodeError),
    Payload(PayloadError),
}

impl From<DecodeError> for Fail {
    fn from(e: DecodeError) -> Self {
        Fail::Decode(e)
    }
}

/// What a value was, as far as packet validation cares.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// notepack's `undefined`: nothing was written.
    Undefined,
    Scalar,
    Number,
    /// A string, at this range of the message.
    Str(Range<usize>),
    Array(u32),
    Map,
}

/// The first element of a data array: its kind and JSON range, where the elements after it
/// start in the message and in the JSON.
type First = (Kind, Range<usize>, usize, usize);

/// `data`, transcoded.
struct Data {
    kind: Kind,
    /// For an array with elements: its first element.
    first: Option<First>,
    /// Where the array ends in the message.
    end: usize,
}

struct Transcoder<'a> {
    src: &'a Bytes,
    rd: &'a [u8],
    out: Vec<u8>,
    attachments: Vec<Bytes>,
    max_attachments: usize,
}

/// Writing to a `Vec` cannot fail.
fn done<T, E>(_: Result<T, E>) {}

impl<'a> Transcoder<'a> {
    fn offset(&self) -> usize {
        self.src.len() - self.rd.len()
    }

    fn malformed(&self, reason: &'static str) -> DecodeError {
        DecodeError::Msgpack {
            offset: self.offset(),
            reason,
        }
    }

    fn truncated<E>(&self, _: E) -> DecodeError {
        self.malformed("unexpected end of input")
    }

    fn peek(&self) -> Result<Marker, DecodeError> {
        self.rd
            .first()
            .map(|&b| Marker::from_u8(b))
            .ok_or_else(|| self.malformed("unexpected end of input"))
    }

    /// The next `len` bytes, as a range of the message.
    fn take(&mut self, len: u32) -> Result<Range<usize>, DecodeError> {
        let len = len as usize;
        if self.rd.len() < len {
            return Err(self.malformed("unexpected end of input"));
        }
        let start = self.offset();
        self.rd = &self.rd[len..];
        Ok(start..start + len)
    }

    fn str_len(&mut self) -> Result<Range<usize>, DecodeError> {
        let len = r::read_str_len(&mut self.rd).map_err(|e| self.truncated(e))?;
        self.take(len)
    }

    /// A string of the message (lossy where it is not UTF-8).
    fn text(&self, range: Range<usize>) -> std::borrow::Cow<'a, str> {
        let b: &'a [u8] = &self.src.as_ref()[range];
        String::from_utf8_lossy(b)
    }

    fn write_str(&mut self, range: Range<usize>) {
        let s = self.text(range);
        done(serde_json::to_writer(&mut self.out, &*s));
    }

    fn write_int(&mut self) -> Result<(), DecodeError> {
        let mut buf = itoa::Buffer::new();
        let s = if matches!(self.peek()?, Marker::U64) {
            let v: u64 = r::read_int(&mut self.rd).map_err(|e| self.truncated(e))?;
            buf.format(v)
        } else {
            let v: i64 = r::read_int(&mut self.rd).map_err(|e| self.truncated(e))?;
            buf.format(v)
        };
        self.out.extend_from_slice(s.as_bytes());
        Ok(())
    }

    fn write_float(&mut self, f: f64) {
        // serde_json writes `null` for NaN and the infinities, as JSON.stringify does.
        done(serde_json::to_writer(&mut self.out, &f));
    }

    fn placeholder(&mut self, range: Range<usize>, depth: usize) -> Result<(), Fail> {
        if depth >= MAX_DEPTH {
            return Err(self.malformed("nesting deeper than 128 levels").into());
        }
        if self.attachments.len() >= self.max_attachments {
            return Err(DecodeError::TooManyAttachments {
                count: self.attachments.len() as u64 + 1,
                max: self.max_attachments,
            }
            .into());
        }
        let num = self.attachments.len();
        self.attachments.push(self.src.slice(range));
        self.out
            .extend_from_slice(b"{\"_placeholder\":true,\"num\":");
        self.out
            .extend_from_slice(itoa::Buffer::new().format(num).as_bytes());
        self.out.push(b'}');
        Ok(())
    }

    /// Transcodes one value at nesting `depth` (the containers around it).
    fn value(&mut self, depth: usize) -> Result<Kind, Fail> {
        let marker = self.peek()?;
        Ok(match marker {
            Marker::Null => {
                self.rd = &self.rd[1..];
                self.out.extend_from_slice(b"null");
                Kind::Scalar
            }
            Marker::True | Marker::False => {
                self.rd = &self.rd[1..];
                let t: &[u8] = if marker == Marker::True {
                    b"true"
                } else {
                    b"false"
                };
                self.out.extend_from_slice(t);
                Kind::Scalar
            }
            Marker::FixPos(_)
            | Marker::FixNeg(_)
            | Marker::U8
            | Marker::U16
            | Marker::U32
            | Marker::U64
            | Marker::I8
            | Marker::I16
            | Marker::I32
            | Marker::I64 => {
                self.write_int()?;
                Kind::Number
            }
            Marker::F32 => {
                let f = r::read_f32(&mut self.rd).map_err(|e| self.truncated(e))?;
                self.write_float(f64::from(f));
                Kind::Number
            }
            Marker::F64 => {
                let f = r::read_f64(&mut self.rd).map_err(|e| self.truncated(e))?;
                self.write_float(f);
                Kind::Number
            }
            Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
                let range = self.str_len()?;
                self.write_str(range.clone());
                Kind::Str(range)
            }
            Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
                let len = r::read_bin_len(&mut self.rd).map_err(|e| self.truncated(e))?;
                let range = self.take(len)?;
                self.placeholder(range, depth)?;
                Kind::Map
            }
            Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
                let len = r::read_array_len(&mut self.rd).map_err(|e| self.truncated(e))?;
                self.array(len, depth, None)?;
                Kind::Array(len)
            }
            Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
                let len = r::read_map_len(&mut self.rd).map_err(|e| self.truncated(e))?;
                self.map(len, depth)?;
                Kind::Map
            }
            Marker::FixExt1
            | Marker::FixExt2
            | Marker::FixExt4
            | Marker::FixExt8
            | Marker::FixExt16
            | Marker::Ext8
            | Marker::Ext16
            | Marker::Ext32 => self.ext(marker, depth)?,
            Marker::Reserved => return Err(self.malformed("unknown prefix 0xc1").into()),
        })
    }

    fn ext(&mut self, marker: Marker, depth: usize) -> Result<Kind, Fail> {
        let meta = r::read_ext_meta(&mut self.rd).map_err(|e| self.truncated(e))?;
        let range = self.take(meta.size)?;
        let fixed = !matches!(marker, Marker::Ext8 | Marker::Ext16 | Marker::Ext32);
        Ok(match (meta.typeid, fixed, meta.size) {
            (0, true, 1) => Kind::Undefined,
            (0, true, 8) => {
                let b: [u8; 8] = self.src[range]
                    .try_into()
                    .map_err(|_| self.malformed("unexpected end of input"))?;
                let ms = i64::from_be_bytes(b);
                let iso =
                    crate::cluster::value::iso8601(ms.div_euclid(1000), ms.rem_euclid(1000) as u32);
                match iso {
                    Some(s) => done(serde_json::to_writer(&mut self.out, &s)),
                    None => self.out.extend_from_slice(b"null"),
                }
                Kind::Scalar
            }
            (0, false, _) => {
                self.placeholder(range, depth)?;
                Kind::Map
            }
            (ty, _, _) => {
                if depth + 1 >= MAX_DEPTH {
                    return Err(self.malformed("nesting deeper than 128 levels").into());
                }
                self.out.push(b'[');
                self.out
                    .extend_from_slice(itoa::Buffer::new().format(ty).as_bytes());
                self.out.push(b',');
                self.placeholder(range, depth + 1)?;
                self.out.push(b']');
                Kind::Array(2)
            }
        })
    }

    /// An array's elements; with `first`, reports where its first element is.
    fn array(
        &mut self,
        len: u32,
        depth: usize,
        mut first: Option<&mut Option<First>>,
    ) -> Result<(), Fail> {
        if depth >= MAX_DEPTH {
            return Err(self.malformed("nesting deeper than 128 levels").into());
        }
        self.out.push(b'[');
        for i in 0..len {
            if i > 0 {
                self.out.push(b',');
            }
            let at = self.out.len();
            let kind = self.value(depth + 1)?;
            if kind == Kind::Undefined {
                self.out.extend_from_slice(b"null");
            }
            if i == 0 {
                if let Some(first) = first.take() {
                    *first = Some((kind, at..self.out.len(), self.offset(), self.out.len()));
                }
            }
        }
        self.out.push(b']');
        Ok(())
    }

    fn map(&mut self, len: u32, depth: usize) -> Result<(), Fail> {
        if depth >= MAX_DEPTH {
            return Err(self.malformed("nesting deeper than 128 levels").into());
        }
        self.out.push(b'{');
        let mut empty = true;
        for _ in 0..len {
            let mark = self.out.len();
            if !empty {
                self.out.push(b',');
            }
            let flag = self.key()?;
            self.out.push(b':');
            if flag && self.peek()? == Marker::True {
                return Err(Fail::Payload(PayloadError::PlaceholderKey));
            }
            if self.value(depth + 1)? == Kind::Undefined {
                // JavaScript objects drop keys whose value is `undefined`.
                self.out.truncate(mark);
            } else {
                empty = false;
            }
        }
        self.out.push(b'}');
        Ok(())
    }

    /// A map key as a JSON string; whether it is `_placeholder`.
    fn key(&mut self) -> Result<bool, DecodeError> {
        match self.peek()? {
            Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
                let range = self.str_len()?;
                let flag = &self.src[range.clone()] == b"_placeholder";
                self.write_str(range);
                Ok(flag)
            }
            Marker::Null => {
                self.rd = &self.rd[1..];
                self.out.extend_from_slice(b"\"null\"");
                Ok(false)
            }
            Marker::True | Marker::False => {
                let b = r::read_bool(&mut self.rd).map_err(|e| self.truncated(e))?;
                self.out
                    .extend_from_slice(if b { b"\"true\"" } else { b"\"false\"" });
                Ok(false)
            }
            Marker::F32 | Marker::F64 => {
                let f: f64 = match self.peek()? {
                    Marker::F32 => {
                        f64::from(r::read_f32(&mut self.rd).map_err(|e| self.truncated(e))?)
                    }
                    _ => r::read_f64(&mut self.rd).map_err(|e| self.truncated(e))?,
                };
                let name = if f.is_nan() {
                    "NaN".to_owned()
                } else if f.is_infinite() {
                    if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
                } else if f.fract() == 0.0 && f.abs() < 1e21 {
                    format!("{}", f as i128)
                } else {
                    format!("{f}")
                };
                done(serde_json::to_writer(&mut self.out, &name));
                Ok(false)
            }
            Marker::FixPos(_)
            | Marker::FixNeg(_)
            | Marker::U8
            | Marker::U16
            | Marker::U32
            | Marker::U64
            | Marker::I8
            | Marker::I16
            | Marker::I32
            | Marker::I64 => {
                self.out.push(b'"');
                self.write_int()?;
                self.out.push(b'"');
                Ok(false)
            }
            _ => Err(self.malformed("a map key must be a string, a number, a boolean or nil")),
        }
    }

    /// Skips a value of the packet map that is not read (`options`, unknown keys): transcoded
    /// (so it is checked like the rest) and thrown away.
    fn skip(&mut self) -> Result<Kind, Fail> {
        let (out, attachments) = (self.out.len(), self.attachments.len());
        let kind = self.value(0);
        self.out.truncate(out);
        self.attachments.truncate(attachments);
        kind
    }

    /// `data`, whatever the packet type: its JSON becomes the whole output.
    fn data(&mut self) -> Result<Data, Fail> {
        self.out.clear();
        self.attachments.clear();
        if let Marker::FixArray(_) | Marker::Array16 | Marker::Array32 = self.peek()? {
            let len = r::read_array_len(&mut self.rd).map_err(|e| self.truncated(e))?;
            let mut first = None;
            self.array(len, 0, Some(&mut first))?;
            return Ok(Data {
                kind: Kind::Array(len),
                first,
                end: self.offset(),
            });
        }
        let kind = self.value(0)?;
        if kind == Kind::Undefined {
            self.out.clear();
        }
        Ok(Data {
            kind,
            first: None,
            end: self.offset(),
        })
    }
}

/// The fields of the packet map, as read.
#[derive(Default)]
struct Fields {
    /// `Some(None)`: present but not an integer in 0..=4.
    ty: Option<Option<PacketType>>,
    /// `Some(None)`: present but not a valid namespace.
    nsp: Option<Option<Str>>,
    /// `Some(None)`: present but not an unsigned integer.
    id: Option<Option<u64>>,
    data: Option<Data>,
}

/// Decodes one binary message as a msgpack packet.
pub(in crate::packet) fn decode(
    src: &Bytes,
    max_attachments: usize,
) -> Result<Packet, DecodeError> {
    let mut t = Transcoder {
        src,
        rd: src.as_ref(),
        // The JSON view is about as long as the msgpack (quotes and commas for markers).
        out: Vec::with_capacity(src.len() + 16),
        attachments: Vec::new(),
        max_attachments,
    };
    let mut fields = Fields::default();
    match read_map(&mut t, &mut fields) {
        Ok(()) => {}
        Err(Fail::Decode(e)) => return Err(e),
        Err(Fail::Payload(error)) => {
            // Reported for the type if it came first (as the JS encoders write it), else for
            // EVENT, the packet that carries application data.
            let ty = fields.ty.flatten().unwrap_or(PacketType::Event);
            return Err(DecodeError::payload(ty, error));
        }
    }
    if !t.rd.is_empty() {
        return Err(t.malformed("trailing bytes"));
    }
    build(t, fields)
}

fn read_map(t: &mut Transcoder<'_>, f: &mut Fields) -> Result<(), Fail> {
    if !matches!(t.peek()?, Marker::FixMap(_) | Marker::Map16 | Marker::Map32) {
        return Err(t.malformed("a packet is a map").into());
    }
    let len = r::read_map_len(&mut t.rd).map_err(|e| t.truncated(e))?;
    for _ in 0..len {
        let key = match t.peek()? {
            Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
                let range = t.str_len()?;
                Some(range)
            }
            _ => {
                t.skip()?;
                None
            }
        };
        let key: &[u8] = key.map_or(&[][..], |k| &t.src.as_ref()[k]);
        match key {
            b"type" => f.ty = Some(packet_type(t)?),
            b"nsp" => f.nsp = namespace(t)?,
            b"id" => f.id = ack_id(t)?,
            b"data" => f.data = Some(t.data()?),
            _ => {
                t.skip()?;
            }
        }
    }
    Ok(())
}

/// An integer value, if the next one is; anything else is skipped.
fn integer(t: &mut Transcoder<'_>) -> Result<Option<Result<u64, i64>>, Fail> {
    match t.peek()? {
        Marker::FixPos(_) | Marker::U8 | Marker::U16 | Marker::U32 | Marker::U64 => {
            let v: u64 = r::read_int(&mut t.rd).map_err(|e| t.truncated(e))?;
            Ok(Some(Ok(v)))
        }
        Marker::FixNeg(_) | Marker::I8 | Marker::I16 | Marker::I32 | Marker::I64 => {
            let v: i64 = r::read_int(&mut t.rd).map_err(|e| t.truncated(e))?;
            Ok(Some(u64::try_from(v).map_err(|_| v)))
        }
        _ => Ok(None),
    }
}

fn packet_type(t: &mut Transcoder<'_>) -> Result<Option<PacketType>, Fail> {
    Ok(match integer(t)? {
        Some(Ok(n)) => match n {
            0 => Some(PacketType::Connect),
            1 => Some(PacketType::Disconnect),
            2 => Some(PacketType::Event),
            3 => Some(PacketType::Ack),
            4 => Some(PacketType::ConnectError),
            // 5 and 6 (binary types) are never used by this parser.
            _ => None,
        },
        Some(Err(_)) => None,
        None => {
            t.skip()?;
            None
        }
    })
}

/// `None` for an `undefined` namespace (as if absent).
fn namespace(t: &mut Transcoder<'_>) -> Result<Option<Option<Str>>, Fail> {
    if let Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 = t.peek()? {
        let range = t.str_len()?;
        let nsp = match std::str::from_utf8(&t.src[range.clone()]) {
            Ok(_) => Str::from_utf8(t.src.slice(range)).unwrap_or_default(),
            Err(_) => Str::from(t.text(range).into_owned()),
        };
        // The JSON parser's rule: namespaces are the same names under either parser.
        let ok = nsp.starts_with('/') && !nsp.contains(',');
        return Ok(Some(ok.then_some(nsp)));
    }
    Ok(match t.skip()? {
        Kind::Undefined => None,
        _ => Some(None),
    })
}

/// `None` for an `undefined` id (as if absent).
fn ack_id(t: &mut Transcoder<'_>) -> Result<Option<Option<u64>>, Fail> {
    Ok(match integer(t)? {
        Some(Ok(n)) => Some(Some(n)),
        Some(Err(_)) => Some(None),
        None => match t.skip()? {
            Kind::Undefined => None,
            _ => Some(None),
        },
    })
}

/// Checks the fields as the reference's `checkPacket` does (type, namespace, payload, id), with
/// the JSON parser's stricter rules for events, and builds the packet.
fn build(t: Transcoder<'_>, f: Fields) -> Result<Packet, DecodeError> {
    let ty = f.ty.flatten().ok_or(DecodeError::InvalidPacketType)?;
    let nsp = f.nsp.flatten().ok_or(DecodeError::InvalidNamespace)?;
    let id = match f.id {
        None => None,
        Some(Some(id)) => Some(id),
        Some(None) => return Err(DecodeError::InvalidAckId),
    };
    let fail = |error| DecodeError::payload(ty, error);
    let data = f.data.filter(|d| d.kind != Kind::Undefined);
    if id.is_some() && !matches!(ty, PacketType::Event | PacketType::Ack) {
        return Err(DecodeError::UnexpectedAckId(ty));
    }
    let Transcoder {
        src,
        out,
        attachments,
        ..
    } = t;
    if !attachments.is_empty() && !matches!(ty, PacketType::Event | PacketType::Ack) {
        return Err(fail(PayloadError::UnexpectedBinary));
    }
    // Only `&str`s and serde_json output were written: UTF-8 by construction.
    let json = || {
        String::from_utf8(out)
            .map(Str::from)
            .map_err(|_| DecodeError::Msgpack {
                offset: 0,
                reason: "invalid UTF-8 in the transcoded payload",
            })
    };
    Ok(match ty {
        PacketType::Connect => match data {
            None => Packet::Connect { nsp, data: None },
            Some(d) if d.kind == Kind::Map => Packet::Connect {
                nsp,
                data: Some(json()?),
            },
            Some(_) => return Err(fail(PayloadError::NotObject)),
        },
        PacketType::Disconnect => match data {
            None => Packet::Disconnect { nsp },
            Some(_) => return Err(fail(PayloadError::Unexpected)),
        },
        PacketType::ConnectError => match data {
            None => return Err(DecodeError::MissingPayload(ty)),
            Some(d) if matches!(d.kind, Kind::Map | Kind::Str(_)) => {
                Packet::ConnectError { nsp, data: json()? }
            }
            Some(_) => return Err(fail(PayloadError::NotStringOrObject)),
        },
        PacketType::Ack => {
            let id = id.ok_or(DecodeError::MissingAckId)?;
            match data {
                None => return Err(DecodeError::MissingPayload(ty)),
                Some(d) if matches!(d.kind, Kind::Array(_)) => Packet::Ack {
                    nsp,
                    id,
                    data: Payload {
                        json: json()?,
                        attachments,
                    },
                },
                Some(_) => return Err(fail(PayloadError::NotArray)),
            }
        }
        PacketType::Event | PacketType::BinaryEvent | PacketType::BinaryAck => {
            let d = data.ok_or(DecodeError::MissingPayload(ty))?;
            let Kind::Array(len) = d.kind else {
                return Err(fail(PayloadError::NotArray));
            };
            let (kind, name_at, src_at, args_at) =
                d.first.ok_or(fail(PayloadError::MissingEventName))?;
            let json = json()?;
            let name = match kind {
                Kind::Str(range) => {
                    let name = match Str::from_utf8(src.slice(range.clone())) {
                        Ok(s) => s,
                        Err(_) => Str::from(String::from_utf8_lossy(&src[range]).into_owned()),
                    };
                    if RESERVED_EVENTS.contains(&&*name) {
                        return Err(fail(PayloadError::ReservedEventName(name.to_string())));
                    }
                    name
                }
                Kind::Number if &json[name_at.clone()] != "null" => {
                    json.slice(name_at).unwrap_or_default()
                }
                _ => return Err(fail(PayloadError::InvalidEventName)),
            };
            Packet::Event {
                nsp,
                id,
                event: Event {
                    name,
                    data: Payload { json, attachments },
                    args_at,
                    raw: Some(MsgpackArgs {
                        bytes: src.slice(src_at..d.end),
                        count: len - 1,
                    }),
                },
            }
        }
    })
}
