//! The packet types and the values they carry.

use super::placeholder::de;
use crate::Str;
use bytes::Bytes;
use serde::de::DeserializeOwned;

/// Event names that neither side may emit: they name life-cycle events of the client API.
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// The seven Socket.IO packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// `0`: connect to a namespace (client), or the connection was accepted (server).
    Connect = 0,
    /// `1`: leave a namespace.
    Disconnect = 1,
    /// `2`: an event.
    Event = 2,
    /// `3`: the answer to an event that asked for one.
    Ack = 3,
    /// `4`: the connection to a namespace was refused.
    ConnectError = 4,
    /// `5`: an event with binary attachments.
    BinaryEvent = 5,
    /// `6`: an ack with binary attachments.
    BinaryAck = 6,
}

impl PacketType {
    /// The type for its ASCII digit.
    pub fn from_ascii(c: u8) -> Option<Self> {
        Some(match c {
            b'0' => PacketType::Connect,
            b'1' => PacketType::Disconnect,
            b'2' => PacketType::Event,
            b'3' => PacketType::Ack,
            b'4' => PacketType::ConnectError,
            b'5' => PacketType::BinaryEvent,
            b'6' => PacketType::BinaryAck,
            _ => return None,
        })
    }

    /// The ASCII digit that starts a packet of this type.
    pub fn as_ascii(self) -> u8 {
        b'0' + self as u8
    }
}

/// Validated JSON and the binary attachments its placeholders refer to.
///
/// The JSON is kept as received, placeholders included, so it can be forwarded or inspected
/// without re-encoding; [`deserialize`](Self::deserialize) puts each attachment back in its place.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Payload {
    pub(super) json: Str,
    pub(super) attachments: Vec<Bytes>,
}

impl Payload {
    /// The JSON text, with `{"_placeholder":true,"num":i}` where binary values were.
    pub fn json(&self) -> &Str {
        &self.json
    }

    /// The binary attachments, in placeholder order.
    pub fn attachments(&self) -> &[Bytes] {
        &self.attachments
    }

    /// Deserializes the payload into `T`. Each placeholder becomes its attachment's bytes:
    /// `bytes::Bytes`, `serde_bytes::ByteBuf` and `Vec<u8>` with `serde_bytes` receive them as
    /// bytes (one copy, nothing in between); a plain `Vec<u8>`, a `serde_json::Value` and
    /// anything else that asks for "any value" receive an array of byte values, as before.
    ///
    /// ```
    /// use roomcast::packet::{Decoder, Packet};
    /// use roomcast::{Limits, Str};
    /// #[derive(serde::Deserialize)]
    /// struct Upload {
    ///     name: String,
    ///     data: bytes::Bytes,
    /// }
    /// let mut decoder = Decoder::new(Limits::default());
    /// let header = r#"61-7[{"data":{"num":0,"_placeholder":true},"name":"a.png"}]"#;
    /// assert!(decoder.push_text(Str::from(header)).unwrap().is_none());
    /// let packet = decoder.push_binary(vec![1, 2, 3].into()).unwrap().unwrap();
    /// let Packet::Ack { data, .. } = packet else { panic!() };
    /// let (upload,): (Upload,) = data.deserialize().unwrap();
    /// assert_eq!((upload.name.as_str(), &upload.data[..]), ("a.png", &[1, 2, 3][..]));
    /// ```
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        de::deserialize(&self.json, &self.attachments)
    }
}

/// An event: its name, and its arguments after it.
///
/// Two events are equal when their names and payloads are, whichever parser decoded them.
#[derive(Debug, Clone)]
pub struct Event {
    pub(super) name: Str,
    /// The whole JSON array, name included.
    pub(super) data: Payload,
    /// Byte offset in `data.json` just after the name element.
    pub(super) args_at: usize,
    /// Decoded by the msgpack parser: the arguments as they came, to relay without
    /// re-encoding.
    pub(super) raw: Option<super::msgpack::MsgpackArgs>,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.data == other.data && self.args_at == other.args_at
    }
}

impl Eq for Event {}

impl std::hash::Hash for Event {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.data.hash(state);
        self.args_at.hash(state);
    }
}

impl Event {
    /// The event name (for a numeric name, its JSON text).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole payload: the JSON array `[name, ...args]` and its attachments.
    pub fn data(&self) -> &Payload {
        &self.data
    }

    /// Deserializes the arguments (everything after the name) as a sequence: `T` is a tuple
    /// such as `(String, u32)`, a `Vec`, or any type that deserializes from a sequence. Binary
    /// arguments are put back as in [`Payload::deserialize`].
    ///
    /// ```
    /// use roomcast::packet::{Decoder, Packet};
    /// use roomcast::{Limits, Str};
    /// let mut decoder = Decoder::new(Limits::default());
    /// let packet = decoder.push_text(Str::from_static(r#"2["add",1,2]"#)).unwrap().unwrap();
    /// let Packet::Event { event, .. } = packet else { panic!() };
    /// let (a, b): (u32, u32) = event.args().unwrap();
    /// assert_eq!((event.name(), a + b), ("add", 3));
    /// ```
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        de::deserialize_args(&self.data.json, &self.data.attachments)
    }

    /// Each argument as raw JSON (placeholders left in place, so binary arguments can be
    /// forwarded with [`Encoded::event_raw`](crate::packet::Encoded::event_raw) and this
    /// event's attachments), without parsing them into values.
    pub fn raw_args(&self) -> Result<Vec<&serde_json::value::RawValue>, serde_json::Error> {
        let mut all: Vec<&serde_json::value::RawValue> = serde_json::from_str(&self.data.json)?;
        if !all.is_empty() {
            all.remove(0);
        }
        Ok(all)
    }

    /// The arguments as they are, attachments included, to emit again: under either parser,
    /// `emit("x", &event.args_raw())` sends exactly these arguments (see
    /// [`RawArgs`](super::RawArgs)). Cheap: the buffers are shared, not copied.
    pub fn args_raw(&self) -> super::RawArgs {
        super::RawArgs::from(self.clone())
    }

    /// The raw JSON that follows the name: `,<arg>,<arg>]`, or `]` when there are none.
    /// Splice it after a new name to re-emit the same arguments without parsing them.
    pub fn args_json_tail(&self) -> &str {
        &self.data.json[self.args_at..]
    }
}

/// A decoded Socket.IO packet. `BINARY_EVENT` and `BINARY_ACK` are events and acks whose payload
/// has attachments; the encoder picks the binary type by itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Packet {
    /// Connect to `nsp` (client: `data` is the auth object) or accepted (server: `{"sid":…}`).
    Connect {
        /// The namespace.
        nsp: Str,
        /// A JSON object, if any.
        data: Option<Str>,
    },
    /// Leave `nsp`.
    Disconnect {
        /// The namespace.
        nsp: Str,
    },
    /// An event, asking for an ack when `id` is set.
    Event {
        /// The namespace.
        nsp: Str,
        /// The ack id, when the sender wants an answer.
        id: Option<u64>,
        /// Name and arguments.
        event: Event,
    },
    /// The answer to the event with ack id `id`.
    Ack {
        /// The namespace.
        nsp: Str,
        /// The ack id of the event answered.
        id: u64,
        /// A JSON array of the answer's arguments.
        data: Payload,
    },
    /// The connection to `nsp` was refused; `data` is a JSON string or object.
    ConnectError {
        /// The namespace.
        nsp: Str,
        /// Usually `{"message":…,"data":…}`.
        data: Str,
    },
}

impl Packet {
    /// The namespace the packet belongs to.
    pub fn nsp(&self) -> &Str {
        match self {
            Packet::Connect { nsp, .. }
            | Packet::Disconnect { nsp }
            | Packet::Event { nsp, .. }
            | Packet::Ack { nsp, .. }
            | Packet::ConnectError { nsp, .. } => nsp,
        }
    }

    /// The wire type: binary types for events and acks with attachments.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect { .. } => PacketType::Connect,
            Packet::Disconnect { .. } => PacketType::Disconnect,
            Packet::Event { event, .. } if !event.data.attachments.is_empty() => {
                PacketType::BinaryEvent
            }
            Packet::Event { .. } => PacketType::Event,
            Packet::Ack { data, .. } if !data.attachments.is_empty() => PacketType::BinaryAck,
            Packet::Ack { .. } => PacketType::Ack,
            Packet::ConnectError { .. } => PacketType::ConnectError,
        }
    }
}
