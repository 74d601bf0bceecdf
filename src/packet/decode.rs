//! Decoding: the packet header, per-type payload validation, and the reassembler that joins a
//! binary packet's header with the attachment frames that follow it.

use super::error::{DecodeError, PayloadError};
use super::json;
use super::parser::Parser;
use super::placeholder::walk::Walk;
use super::types::{Event, Packet, PacketType, Payload, RESERVED_EVENTS};
use crate::{Limits, Str};
use bytes::Bytes;
use serde::de;
use std::cell::Cell;

/// A header whose attachments are still to come.
#[derive(Debug, Clone)]
struct Pending {
    packet: Packet,
    expected: usize,
    received: Vec<Bytes>,
}

/// Decodes Socket.IO packets from the data of Engine.IO messages, reassembling binary packets.
///
/// Feed it the text of each Engine.IO text `message` (without the leading `4`) and the bytes of
/// each binary one, in arrival order. One decoder per connection. After an error the connection
/// must be closed; the decoder drops any partial packet.
///
/// ```
/// use roomcast::packet::{Decoder, Packet};
/// use roomcast::{Limits, Str};
/// let mut decoder = Decoder::new(Limits::default());
/// let header = Str::from_static(r#"51-["baz",{"_placeholder":true,"num":0}]"#);
/// assert!(decoder.push_text(header).unwrap().is_none()); // waits for the attachment
/// let packet = decoder.push_binary(vec![1, 2, 3, 4].into()).unwrap().unwrap();
/// let Packet::Event { event, .. } = packet else { panic!() };
/// assert_eq!(event.data().attachments()[0][..], [1, 2, 3, 4]);
/// ```
#[derive(Debug, Clone)]
pub struct Decoder {
    /// The format of the packets.
    parser: Parser,
    /// The one limit this layer enforces (sizes are the transport's): a connection holds a
    /// decoder for its whole life, so it keeps only what it needs.
    max_attachments: usize,
    /// Boxed: a connection holds a decoder for its whole life, a pending packet only briefly.
    pending: Option<Box<Pending>>,
}

impl Decoder {
    /// A decoder of the JSON parser's packets, enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self::with_parser(Parser::Json, limits)
    }

    /// A decoder of `parser`'s packets, enforcing `limits` (the attachment limit counts
    /// msgpack's `bin` values).
    pub fn with_parser(parser: Parser, limits: Limits) -> Self {
        Decoder {
            parser,
            max_attachments: limits.max_attachments,
            pending: None,
        }
    }

    /// The parser whose packets this decoder reads.
    pub fn parser(&self) -> Parser {
        self.parser
    }

    /// Whether a binary packet is waiting for attachments.
    pub fn is_reassembling(&self) -> bool {
        self.pending.is_some()
    }

    /// Decodes the text of an Engine.IO message. `Ok(None)`: a binary packet's header, waiting
    /// for its attachments.
    /// Under msgpack, always an error ([`DecodeError::UnexpectedText`]).
    pub fn push_text(&mut self, text: Str) -> Result<Option<Packet>, DecodeError> {
        if self.parser == Parser::Msgpack {
            return Err(DecodeError::UnexpectedText);
        }
        if let Some(p) = self.pending.take() {
            return Err(DecodeError::TextDuringBinary {
                received: p.received.len(),
                expected: p.expected,
            });
        }
        let (packet, expected) = decode_header(&text, self.max_attachments)?;
        if expected == 0 {
            return Ok(Some(packet));
        }
        self.pending = Some(Box::new(Pending {
            packet,
            expected,
            received: Vec::with_capacity(expected),
        }));
        Ok(None)
    }

    /// Takes one binary Engine.IO message as the next attachment. `Ok(Some)` once the last one
    /// announced has arrived. Under msgpack, every binary message is a whole packet.
    pub fn push_binary(&mut self, bytes: Bytes) -> Result<Option<Packet>, DecodeError> {
        if self.parser == Parser::Msgpack {
            return super::msgpack::decode(&bytes, self.max_attachments).map(Some);
        }
        let pending = self.pending.as_mut().ok_or(DecodeError::UnexpectedBinary)?;
        pending.received.push(bytes);
        if pending.received.len() < pending.expected {
            return Ok(None);
        }
        let Some(pending) = self.pending.take() else {
            return Err(DecodeError::UnexpectedBinary);
        };
        let Pending {
            mut packet,
            received,
            ..
        } = *pending;
        match &mut packet {
            Packet::Event { event, .. } => event.data.attachments = received,
            Packet::Ack { data, .. } => data.attachments = received,
            // Only events and acks are ever pending.
            _ => {}
        }
        Ok(Some(packet))
    }
}

/// Decodes one packet's text; returns it with the number of attachments still to come.
fn decode_header(text: &Str, max_attachments: usize) -> Result<(Packet, usize), DecodeError> {
    let b = text.as_bytes();
    let first = *b.first().ok_or(DecodeError::Empty)?;
    let ty = PacketType::from_ascii(first).ok_or_else(|| {
        DecodeError::UnknownType(text.chars().next().unwrap_or(char::REPLACEMENT_CHARACTER))
    })?;
    let mut i = 1;

    let mut attachments = 0;
    if matches!(ty, PacketType::BinaryEvent | PacketType::BinaryAck) {
        let (count, end) = parse_digits(b, i);
        if end == i || b.get(end) != Some(&b'-') {
            return Err(DecodeError::InvalidAttachmentCount);
        }
        let count = count.unwrap_or(u64::MAX);
        attachments = usize::try_from(count)
            .ok()
            .filter(|&n| n <= max_attachments)
            .ok_or(DecodeError::TooManyAttachments {
                count,
                max: max_attachments,
            })?;
        i = end + 1;
    }

    // ASCII delimiters only, so every index below is a char boundary.
    let nsp = if b.get(i) == Some(&b'/') {
        let end = b[i..]
            .iter()
            .position(|&c| c == b',')
            .map_or(b.len(), |n| i + n);
        let nsp = text.slice(i..end).unwrap_or_default();
        i = (end + 1).min(b.len());
        nsp
    } else {
        Str::from_static("/")
    };

    let (id, end) = parse_digits(b, i);
    let id = if end > i {
        Some(id.ok_or(DecodeError::InvalidAckId)?)
    } else {
        None
    };
    i = end;
    let json = (i < b.len()).then(|| text.slice(i..b.len()).unwrap_or_default());

    let takes_id = matches!(
        ty,
        PacketType::Event | PacketType::BinaryEvent | PacketType::Ack | PacketType::BinaryAck
    );
    if id.is_some() && !takes_id {
        return Err(DecodeError::UnexpectedAckId(ty));
    }

    let packet = match ty {
        PacketType::Connect => {
            if let Some(json) = &json {
                expect_kind(ty, json, b"{", PayloadError::NotObject)?;
            }
            Packet::Connect { nsp, data: json }
        }
        PacketType::Disconnect => {
            if json.is_some() {
                return Err(DecodeError::payload(ty, PayloadError::Unexpected));
            }
            Packet::Disconnect { nsp }
        }
        PacketType::ConnectError => {
            let json = json.ok_or(DecodeError::MissingPayload(ty))?;
            expect_kind(ty, &json, b"\"{", PayloadError::NotStringOrObject)?;
            Packet::ConnectError { nsp, data: json }
        }
        PacketType::Event | PacketType::BinaryEvent => {
            let json = json.ok_or(DecodeError::MissingPayload(ty))?;
            let (name, args_at) = check_event(ty, &json, attachments)?;
            Packet::Event {
                nsp,
                id,
                event: Event {
                    name,
                    data: Payload {
                        json,
                        attachments: Vec::new(),
                    },
                    args_at,
                    raw: None,
                },
            }
        }
        PacketType::Ack | PacketType::BinaryAck => {
            let id = id.ok_or(DecodeError::MissingAckId)?;
            let json = json.ok_or(DecodeError::MissingPayload(ty))?;
            check_array(ty, &json, attachments)?;
            Packet::Ack {
                nsp,
                id,
                data: Payload {
                    json,
                    attachments: Vec::new(),
                },
            }
        }
    };
    Ok((packet, attachments))
}

/// Parses the run of ASCII digits at `from`: its value (`None` on `u64` overflow) and its end.
fn parse_digits(b: &[u8], from: usize) -> (Option<u64>, usize) {
    let mut value = Some(0u64);
    let mut i = from;
    while let Some(d) = b.get(i).filter(|c| c.is_ascii_digit()) {
        value = value
            .and_then(|v| v.checked_mul(10))
            .and_then(|v| v.checked_add(u64::from(d - b'0')));
        i += 1;
    }
    (value, i)
}

fn first_byte(json: &str) -> Option<u8> {
    json.bytes()
        .find(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
}

/// Checks `json` is well-formed, with the hot-path validator.
fn validate_json(json: &str) -> Result<(), DecodeError> {
    json::validate(json.as_bytes()).map_err(|e| {
        let before = &json.as_bytes()[..e.offset.min(json.len())];
        let line_start = before
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |n| n + 1);
        DecodeError::Json {
            line: 1 + before.iter().filter(|&&c| c == b'\n').count(),
            column: 1 + e.offset - line_start,
            message: e.reason.to_owned(),
        }
    })
}

fn json_error(e: serde_json::Error) -> DecodeError {
    DecodeError::Json {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    }
}

/// Validates `json` fully and checks that it starts with one of `kinds`.
fn expect_kind(
    ty: PacketType,
    json: &str,
    kinds: &[u8],
    wrong: PayloadError,
) -> Result<(), DecodeError> {
    validate_json(json)?;
    match first_byte(json) {
        Some(c) if kinds.contains(&c) => Ok(()),
        _ => Err(DecodeError::payload(ty, wrong)),
    }
}

/// Validates a binary packet's array payload and every placeholder in it, in one pass of
/// serde_json over the text. An invalid placeholder the walk reports wins over the generic error
/// it returns to stop serde.
fn check_placeholders(ty: PacketType, json: &str, attachments: usize) -> Result<(), DecodeError> {
    let invalid = Cell::new(false);
    let mut de = serde_json::Deserializer::from_str(json);
    let result = de::DeserializeSeed::deserialize(Walk::new(attachments, &invalid), &mut de)
        .and_then(|_| de.end());
    if invalid.get() {
        return Err(DecodeError::payload(
            ty,
            PayloadError::InvalidPlaceholder { attachments },
        ));
    }
    result.map_err(json_error)
}

/// Validates an array payload; in a binary packet, also every placeholder.
fn check_array(ty: PacketType, json: &str, attachments: usize) -> Result<(), DecodeError> {
    let binary = matches!(ty, PacketType::BinaryAck | PacketType::BinaryEvent);
    if binary && first_byte(json) == Some(b'[') {
        return check_placeholders(ty, json, attachments);
    }
    validate_json(json)?;
    if first_byte(json) != Some(b'[') {
        return Err(DecodeError::payload(ty, PayloadError::NotArray));
    }
    Ok(())
}

/// Validates an event payload; returns the event name and the offset just after it.
fn check_event(
    ty: PacketType,
    json: &Str,
    attachments: usize,
) -> Result<(Str, usize), DecodeError> {
    check_array(ty, json, attachments)?;
    // The JSON is now known to be a valid array: finding the first element's end is a scan.
    let b = json.as_bytes();
    let start = 1 + b.iter().position(|&c| c == b'[').unwrap_or(0);
    let start = start
        + b[start..]
            .iter()
            .take_while(|c| c.is_ascii_whitespace())
            .count();
    let (name, end) = match b.get(start) {
        Some(b'"') => {
            let mut i = start + 1;
            let mut escaped = false;
            while let Some(&c) = b.get(i) {
                match c {
                    b'"' => break,
                    b'\\' => {
                        escaped = true;
                        i += 1;
                    }
                    _ => {}
                }
                i += 1;
            }
            let end = i + 1;
            let name = if escaped {
                Str::from(serde_json::from_str::<String>(&json[start..end]).map_err(json_error)?)
            } else {
                json.slice(start + 1..i).unwrap_or_default()
            };
            if RESERVED_EVENTS.contains(&&*name) {
                return Err(DecodeError::payload(
                    ty,
                    PayloadError::ReservedEventName(name.to_string()),
                ));
            }
            (name, end)
        }
        Some(b'-' | b'0'..=b'9') => {
            let len = b[start..]
                .iter()
                .take_while(|c| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                .count();
            (
                json.slice(start..start + len).unwrap_or_default(),
                start + len,
            )
        }
        Some(b']') => return Err(DecodeError::payload(ty, PayloadError::MissingEventName)),
        _ => return Err(DecodeError::payload(ty, PayloadError::InvalidEventName)),
    };
    Ok((name, end))
}
