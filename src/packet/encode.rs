//! Encoding: from `serde` values straight into the finished Engine.IO frame.

use super::parser::Parser;
use super::placeholder::ser::Wrap;
use super::types::{Event, Packet, PacketType, RESERVED_EVENTS};
use crate::engine::Frame;
use crate::Str;
use bytes::Bytes;
use serde::Serialize;
use std::cell::RefCell;

/// Why a packet could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The value could not be serialized as JSON (a map with non-string keys, say).
    #[error("cannot serialize the payload: {0}")]
    Json(#[from] serde_json::Error),
    /// The value could not be serialized as msgpack (`rmp-serde`'s reason).
    #[error("cannot serialize the payload as msgpack: {0}")]
    Msgpack(String),
    /// A namespace starts with `/` and, delimited by a comma on the wire, cannot contain one.
    #[error("invalid namespace {0:?}: it must start with '/' and contain no ','")]
    InvalidNamespace(String),
    /// The event name is one the client API reserves.
    #[error("reserved event name {0:?}")]
    ReservedEventName(String),
}

/// A packet ready for the wire, in the format of the [`Parser`] that made it: under JSON, one
/// Engine.IO text message (the leading `4` included) and the binary messages that follow it;
/// under msgpack, one binary message. Cheap to clone: every part is a shared buffer, so one
/// encoded broadcast is written to any number of connections.
///
/// The constructors here are the JSON parser's; [`Parser`]'s take the same arguments for
/// either.
///
/// ```
/// use roomcast::packet::Encoded;
/// let e = Encoded::event("/admin", Some(12), "hello", &("world", 1)).unwrap();
/// assert_eq!(e.text(), r#"42/admin,12["hello","world",1]"#);
///
/// let bin = Encoded::event("/", None, "file", &(bytes::Bytes::from_static(b"\x01\x02"),)).unwrap();
/// assert_eq!(bin.text(), r#"451-["file",{"_placeholder":true,"num":0}]"#);
/// assert_eq!(bin.attachments(), [bytes::Bytes::from_static(b"\x01\x02")]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Encoded {
    repr: Repr,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Repr {
    Json {
        text: Str,
        attachments: Vec<Bytes>,
    },
    /// One msgpack map. `data_at`: for an EVENT that asks for no ack, where its `data` array
    /// starts, the map's last value (so one more argument goes at the end of the buffer).
    Msgpack {
        bytes: Bytes,
        data_at: Option<u32>,
    },
}

/// What [`Encoded::text`] gives under msgpack.
static NO_TEXT: Str = Str::from_static("");

impl Encoded {
    /// A msgpack packet (see `super::msgpack`).
    pub(super) fn msgpack(bytes: Bytes, data_at: Option<u32>) -> Encoded {
        Encoded {
            repr: Repr::Msgpack { bytes, data_at },
        }
    }

    /// The parser whose format this is.
    pub fn parser(&self) -> Parser {
        match self.repr {
            Repr::Json { .. } => Parser::Json,
            Repr::Msgpack { .. } => Parser::Msgpack,
        }
    }

    /// The text message: `4` then the Socket.IO packet. Empty under msgpack.
    pub fn text(&self) -> &Str {
        match &self.repr {
            Repr::Json { text, .. } => text,
            Repr::Msgpack { .. } => &NO_TEXT,
        }
    }

    /// The binary attachments, to send right after the text, in order. None under msgpack,
    /// whose binary values are inside the packet.
    pub fn attachments(&self) -> &[Bytes] {
        match &self.repr {
            Repr::Json { attachments, .. } => attachments,
            Repr::Msgpack { .. } => &[],
        }
    }

    /// Under msgpack, the whole packet: the data of one binary Engine.IO message.
    pub fn binary(&self) -> Option<&Bytes> {
        match &self.repr {
            Repr::Json { .. } => None,
            Repr::Msgpack { bytes, .. } => Some(bytes),
        }
    }

    /// Every frame to send, in order.
    pub fn frames(&self) -> impl Iterator<Item = Frame> + '_ {
        let (first, rest) = match &self.repr {
            Repr::Json { text, attachments } => (Frame::Text(text.clone()), &attachments[..]),
            Repr::Msgpack { bytes, .. } => (Frame::Binary(bytes.clone()), &[][..]),
        };
        std::iter::once(first).chain(rest.iter().cloned().map(Frame::Binary))
    }

    /// The number of frames: the text and its attachments (1 under msgpack).
    pub fn frame_count(&self) -> usize {
        1 + self.attachments().len()
    }

    /// The bytes all frames hold together.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Json { text, attachments } => {
                text.len() + attachments.iter().map(Bytes::len).sum::<usize>()
            }
            Repr::Msgpack { bytes, .. } => bytes.len(),
        }
    }

    /// Whether the frames hold no bytes at all (never true of a packet).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this is an EVENT (binary or not) that asks for no acknowledgement: what
    /// connection state recovery numbers, logs and replays.
    pub fn is_event_without_ack(&self) -> bool {
        match &self.repr {
            Repr::Json { .. } => self
                .body_after_header(b'2', b'5')
                .is_some_and(|body| body.first() == Some(&b'[')),
            Repr::Msgpack { data_at, .. } => data_at.is_some(),
        }
    }

    /// The bytes after the header (type, attachment count, namespace), if the packet is of
    /// type `plain` or `binary`.
    fn body_after_header(&self, plain: u8, binary: u8) -> Option<&[u8]> {
        let b = self.text().as_bytes().as_ref();
        let mut i = match b.get(..2)? {
            [b'4', t] if *t == plain => 2,
            [b'4', t] if *t == binary => {
                let digits = b[2..].iter().take_while(|c| c.is_ascii_digit()).count();
                (b.get(2 + digits) == Some(&b'-')).then_some(3 + digits)?
            }
            _ => return None,
        };
        if b.get(i) == Some(&b'/') {
            i += b[i..].iter().position(|&c| c == b',')? + 1;
        }
        b.get(i..)
    }

    /// This event with one more string argument at the end (connection state recovery's
    /// offset), under either parser. The packet is copied once (under msgpack: the data
    /// array's header rewritten, the string appended, nothing re-serialized); JSON attachments
    /// are shared. A packet that is not an event without an ack comes back unchanged.
    ///
    /// ```
    /// use roomcast::packet::{Encoded, Parser};
    /// let e = Encoded::event("/", None, "news", &(1,)).unwrap().with_last_arg("o-1");
    /// assert_eq!(e.text(), r#"42["news",1,"o-1"]"#);
    /// let m = Parser::Msgpack.event("/", None, "news", &(1,)).unwrap().with_last_arg("o-1");
    /// assert_eq!(m.binary().unwrap().last_chunk::<4>(), Some(b"\xa3o-1"));
    /// ```
    pub fn with_last_arg(&self, arg: &str) -> Encoded {
        let (text, attachments) = match &self.repr {
            Repr::Json { text, attachments } => (text, attachments),
            Repr::Msgpack { bytes, data_at } => {
                return match data_at.and_then(|at| super::msgpack::with_last_arg(bytes, at, arg)) {
                    Some((bytes, at)) => Encoded::msgpack(bytes, Some(at)),
                    None => self.clone(),
                };
            }
        };
        let text: &str = text;
        if !self.is_event_without_ack() {
            return self.clone();
        }
        let Some(body) = text.strip_suffix(']') else {
            return self.clone();
        };
        let mut out = String::with_capacity(text.len() + arg.len() + 4);
        out.push_str(body);
        out.push(',');
        // An offset is plain ASCII without quotes or backslashes: no escaping needed, but a
        // string from elsewhere is escaped all the same.
        match serde_json::to_string(arg) {
            Ok(quoted) => out.push_str(&quoted),
            Err(_) => out.push_str("\"\""),
        }
        out.push(']');
        Encoded {
            repr: Repr::Json {
                text: Str::from(out),
                attachments: attachments.clone(),
            },
        }
    }

    /// An EVENT. `args` serializes to a JSON array whose elements are the arguments (a tuple, a
    /// slice, a `Vec`); `()` means none; any other value is the one argument. To send one array
    /// (or `null`) as the only argument, wrap it in a one-element tuple. Bytes anywhere in `args`
    /// (whatever calls `serialize_bytes`: `bytes::Bytes`, `serde_bytes`), at any depth, become
    /// attachments behind placeholders, and the packet a BINARY_EVENT; a value without bytes is
    /// a plain EVENT. A received event's [`RawArgs`](super::RawArgs) as `args` are its
    /// arguments as they came (as [`event_with_args_of`](Self::event_with_args_of)).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use roomcast::packet::Encoded;
    /// #[derive(serde::Serialize)]
    /// struct File { name: &'static str, parts: Vec<Bytes>, thumb: Option<Bytes> }
    /// let f = File { name: "a", parts: vec![Bytes::from_static(b"1"), Bytes::from_static(b"2")], thumb: None };
    /// let e = Encoded::event("/", None, "file", &(f,)).unwrap();
    /// assert_eq!(
    ///     e.text(),
    ///     r#"452-["file",{"name":"a","parts":[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}],"thumb":null}]"#
    /// );
    /// assert_eq!(e.attachments(), [Bytes::from_static(b"1"), Bytes::from_static(b"2")]);
    /// ```
    pub fn event<T: Serialize + ?Sized>(
        nsp: &str,
        id: Option<u64>,
        name: &str,
        args: &T,
    ) -> Result<Encoded, EncodeError> {
        if let Some(event) = super::raw::probe(args) {
            return Encoded::event_with_args_of(nsp, id, name, &event);
        }
        if RESERVED_EVENTS.contains(&name) {
            return Err(EncodeError::ReservedEventName(name.to_owned()));
        }
        let mut w = Writer::new(PacketType::Event, nsp, id, 16 + name.len())?;
        w.buf.push(b'[');
        serde_json::to_writer(&mut w.buf, name)?;
        let at = w.buf.len();
        w.serialize(args)?;
        spread(&mut w.buf, at);
        Ok(w.finish())
    }

    /// An EVENT whose arguments are raw JSON values (from [`Event::raw_args`]), with the
    /// attachments their placeholders refer to.
    pub fn event_raw(
        nsp: &str,
        id: Option<u64>,
        name: &str,
        args: &[&serde_json::value::RawValue],
        attachments: &[Bytes],
    ) -> Result<Encoded, EncodeError> {
        if RESERVED_EVENTS.contains(&name) {
            return Err(EncodeError::ReservedEventName(name.to_owned()));
        }
        let len: usize = args.iter().map(|a| a.get().len() + 1).sum();
        let mut w = Writer::new(PacketType::Event, nsp, id, 4 + name.len() + len)?;
        w.buf.push(b'[');
        serde_json::to_writer(&mut w.buf, name)?;
        for a in args {
            w.buf.push(b',');
            w.buf.extend_from_slice(a.get().as_bytes());
        }
        w.buf.push(b']');
        // Placeholders keep their numbers: the attachments travel as they came.
        if args.iter().any(|a| a.get().contains("_placeholder")) {
            w.attachments = attachments.to_vec();
        }
        Ok(w.finish())
    }

    /// An EVENT with the arguments of a received event under a new name, without parsing them.
    ///
    /// ```
    /// use roomcast::packet::{Decoder, Encoded, Packet};
    /// use roomcast::{Limits, Str};
    /// let packet = Decoder::new(Limits::default())
    ///     .push_text(Str::from_static(r#"2["message",1,{"a":2}]"#)).unwrap().unwrap();
    /// let Packet::Event { event, .. } = packet else { panic!() };
    /// let back = Encoded::event_with_args_of("/", None, "message-back", &event).unwrap();
    /// assert_eq!(back.text(), r#"42["message-back",1,{"a":2}]"#);
    /// ```
    pub fn event_with_args_of(
        nsp: &str,
        id: Option<u64>,
        name: &str,
        event: &Event,
    ) -> Result<Encoded, EncodeError> {
        if RESERVED_EVENTS.contains(&name) {
            return Err(EncodeError::ReservedEventName(name.to_owned()));
        }
        let tail = event.args_json_tail();
        let mut w = Writer::new(PacketType::Event, nsp, id, 4 + name.len() + tail.len())?;
        w.buf.push(b'[');
        serde_json::to_writer(&mut w.buf, name)?;
        w.buf.extend_from_slice(tail.as_bytes());
        w.attachments = event.data.attachments.clone();
        Ok(w.finish())
    }

    /// An ACK answering event `id` with the arguments of a received event, without parsing them.
    ///
    /// ```
    /// use roomcast::packet::{Decoder, Encoded, Packet};
    /// use roomcast::{Limits, Str};
    /// let packet = Decoder::new(Limits::default())
    ///     .push_text(Str::from_static(r#"21["echo",1,{"a":2}]"#)).unwrap().unwrap();
    /// let Packet::Event { event, id, .. } = packet else { panic!() };
    /// let ack = Encoded::ack_with_args_of("/", id.unwrap(), &event).unwrap();
    /// assert_eq!(ack.text(), r#"431[1,{"a":2}]"#);
    /// ```
    pub fn ack_with_args_of(nsp: &str, id: u64, event: &Event) -> Result<Encoded, EncodeError> {
        let tail = event.args_json_tail().trim_start();
        // `,a,b]` or `]`: the arguments after the name, then the closing bracket.
        let tail = tail.strip_prefix(',').unwrap_or(tail);
        let mut w = Writer::new(PacketType::Ack, nsp, Some(id), 1 + tail.len())?;
        w.buf.push(b'[');
        w.buf.extend_from_slice(tail.as_bytes());
        w.attachments = event.data.attachments.clone();
        Ok(w.finish())
    }

    /// An ACK answering event `id`. `args` as for [`event`](Self::event): bytes become
    /// attachments (a BINARY_ACK), a received event's [`RawArgs`](super::RawArgs) are its
    /// arguments as they came.
    pub fn ack<T: Serialize + ?Sized>(
        nsp: &str,
        id: u64,
        args: &T,
    ) -> Result<Encoded, EncodeError> {
        if let Some(event) = super::raw::probe(args) {
            return Encoded::ack_with_args_of(nsp, id, &event);
        }
        let mut w = Writer::new(PacketType::Ack, nsp, Some(id), 16)?;
        let at = w.buf.len();
        w.serialize(args)?;
        match &w.buf[at..] {
            b"null" => {
                w.buf.truncate(at);
                w.buf.extend_from_slice(b"[]");
            }
            [b'[', ..] => {}
            _ => {
                w.buf.insert(at, b'[');
                w.buf.push(b']');
            }
        }
        Ok(w.finish())
    }

    /// A CONNECT: from the server, `data` is `{"sid":…}`; from a client, its auth object.
    pub fn connect<T: Serialize + ?Sized>(
        nsp: &str,
        data: Option<&T>,
    ) -> Result<Encoded, EncodeError> {
        let mut w = Writer::new(PacketType::Connect, nsp, None, 32)?;
        if let Some(data) = data {
            serde_json::to_writer(&mut w.buf, data)?;
        }
        Ok(w.finish())
    }

    /// A CONNECT_ERROR with `data`, usually `{"message":…,"data":…}`.
    pub fn connect_error<T: Serialize + ?Sized>(
        nsp: &str,
        data: &T,
    ) -> Result<Encoded, EncodeError> {
        let mut w = Writer::new(PacketType::ConnectError, nsp, None, 32)?;
        serde_json::to_writer(&mut w.buf, data)?;
        Ok(w.finish())
    }

    /// A DISCONNECT from `nsp`.
    pub fn disconnect(nsp: &str) -> Result<Encoded, EncodeError> {
        Ok(Writer::new(PacketType::Disconnect, nsp, None, 0)?.finish())
    }
}

impl Packet {
    /// Encodes a packet, JSON as it is held. Decoding the result gives back an equal packet.
    pub fn encode(&self) -> Result<Encoded, EncodeError> {
        let (id, json, attachments): (_, Option<&Str>, &[Bytes]) = match self {
            Packet::Connect { data, .. } => (None, data.as_ref(), &[]),
            Packet::Disconnect { .. } => (None, None, &[]),
            Packet::Event { id, event, .. } => {
                (*id, Some(&event.data.json), &event.data.attachments)
            }
            Packet::Ack { id, data, .. } => (Some(*id), Some(&data.json), &data.attachments),
            Packet::ConnectError { data, .. } => (None, Some(data), &[]),
        };
        let json_len = json.map_or(0, |j| j.len());
        let mut w = Writer::new(self.packet_type(), self.nsp(), id, json_len)?;
        if let Some(json) = json {
            w.buf.extend_from_slice(json.as_bytes());
        }
        w.attachments = attachments.to_vec();
        Ok(w.finish())
    }
}

/// Turns the arguments serialized at `at` into the tail of the event array opened before them:
/// `[a,b]` becomes `,a,b]`, `[]` and `null` (the unit `()`) become `]`, any other value
/// `,value]`.
fn spread(buf: &mut Vec<u8>, at: usize) {
    match &buf[at..] {
        b"null" | b"[]" => {
            buf.truncate(at);
            buf.push(b']');
        }
        [b'[', ..] => buf[at] = b',',
        _ => {
            buf.insert(at, b',');
            buf.push(b']');
        }
    }
}

thread_local! {
    /// The encoding buffer each thread reuses.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Larger scratch buffers are let go rather than kept for the next packet.
const MAX_SCRATCH: usize = 64 * 1024;

/// Builds one packet: the header as if it had no attachments, the JSON after it; `finish`
/// rewrites the header when serialization found binary values.
struct Writer<'n> {
    buf: Vec<u8>,
    ty: PacketType,
    nsp: &'n str,
    id: Option<u64>,
    header_len: usize,
    attachments: Vec<Bytes>,
}

impl<'n> Writer<'n> {
    fn new(
        ty: PacketType,
        nsp: &'n str,
        id: Option<u64>,
        body_hint: usize,
    ) -> Result<Self, EncodeError> {
        if !nsp.starts_with('/') || nsp.contains(',') {
            return Err(EncodeError::InvalidNamespace(nsp.to_owned()));
        }
        // Reuse this thread's scratch buffer: the packet is copied out at its exact size in
        // `finish`, so neither a growing buffer nor a shared `Bytes` header is allocated.
        let mut buf = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
        buf.clear();
        buf.reserve(24 + nsp.len() + body_hint + body_hint / 2);
        write_header(&mut buf, ty, 0, nsp, id);
        Ok(Writer {
            header_len: buf.len(),
            buf,
            ty,
            nsp,
            id,
            attachments: Vec::new(),
        })
    }

    fn serialize<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        let sink = RefCell::new(std::mem::take(&mut self.attachments));
        let result =
            Wrap { value, sink: &sink }.serialize(&mut serde_json::Serializer::new(&mut self.buf));
        self.attachments = sink.into_inner();
        Ok(result?)
    }

    fn finish(mut self) -> Encoded {
        if !self.attachments.is_empty() {
            let ty = match self.ty {
                PacketType::Event => PacketType::BinaryEvent,
                PacketType::Ack => PacketType::BinaryAck,
                other => other,
            };
            let mut buf = Vec::with_capacity(self.buf.len() + 8);
            write_header(&mut buf, ty, self.attachments.len(), self.nsp, self.id);
            buf.extend_from_slice(&self.buf[self.header_len..]);
            self.buf = buf;
        }
        // The buffer holds only `&str`s and serde_json output: valid UTF-8 by construction.
        let text = std::str::from_utf8(&self.buf)
            .map(Str::from)
            .unwrap_or_default();
        if self.buf.capacity() <= MAX_SCRATCH {
            let buf = std::mem::take(&mut self.buf);
            SCRATCH.with(|s| *s.borrow_mut() = buf);
        }
        Encoded {
            repr: Repr::Json {
                text,
                attachments: self.attachments,
            },
        }
    }
}

fn write_header(buf: &mut Vec<u8>, ty: PacketType, attachments: usize, nsp: &str, id: Option<u64>) {
    buf.push(b'4');
    buf.push(ty.as_ascii());
    if attachments > 0 {
        buf.extend_from_slice(itoa::Buffer::new().format(attachments).as_bytes());
        buf.push(b'-');
    }
    if nsp != "/" {
        buf.extend_from_slice(nsp.as_bytes());
        buf.push(b',');
    }
    if let Some(id) = id {
        buf.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
    }
}

impl super::types::Payload {
    /// `value` as a payload: its JSON text, each byte string an attachment behind a
    /// placeholder (what a client's packet of the same value decodes to).
    pub(crate) fn serialize<T: Serialize + ?Sized>(value: &T) -> Result<Self, EncodeError> {
        let sink = RefCell::new(Vec::new());
        let mut buf = Vec::new();
        Wrap { value, sink: &sink }.serialize(&mut serde_json::Serializer::new(&mut buf))?;
        let json = String::from_utf8(buf).map_err(|_| {
            EncodeError::Json(serde::ser::Error::custom("JSON output is not UTF-8"))
        })?;
        Ok(super::types::Payload {
            json: Str::from(json),
            attachments: sink.into_inner(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_without_ack_are_told_apart_and_take_a_last_argument() {
        let bin = Bytes::from_static(b"\x01");
        let cases: [(Encoded, bool); 7] = [
            (Encoded::event("/", None, "a", &(1,)).unwrap(), true),
            (Encoded::event("/chat", None, "a", &()).unwrap(), true),
            (
                Encoded::event("/", None, "a", &(bin.clone(),)).unwrap(),
                true,
            ),
            (Encoded::event("/x", None, "a", &(bin,)).unwrap(), true),
            (Encoded::event("/", Some(3), "a", &(1,)).unwrap(), false),
            (Encoded::ack("/", 3, &(1,)).unwrap(), false),
            (
                Encoded::connect("/", Some(&serde_json::json!({}))).unwrap(),
                false,
            ),
        ];
        for (e, plain) in &cases {
            assert_eq!(e.is_event_without_ack(), *plain, "{}", e.text());
        }
        let e = cases[1].0.with_last_arg("AbCd.1f");
        assert_eq!(e.text(), r#"42/chat,["a","AbCd.1f"]"#);
        let e = cases[3].0.with_last_arg("o");
        assert_eq!(
            e.text(),
            r#"451-/x,["a",{"_placeholder":true,"num":0},"o"]"#
        );
        assert_eq!(e.attachments().len(), 1);
    }
}
