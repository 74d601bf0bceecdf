//! The Socket.IO v5 codec.
//!
//! A packet is `<type>[<# of attachments>-][<namespace>,][<ack id>][<JSON>]`, carried in an
//! Engine.IO `message`; binary values travel in the binary messages that follow, each replaced in
//! the JSON by `{"_placeholder":true,"num":<i>}`.
//!
//! Decoding keeps the JSON as validated text that shares the input buffer: nothing is parsed
//! into a tree, and the application deserializes the arguments into its own types on demand
//! ([`Payload::deserialize`], [`Event::args`]). Encoding writes straight from `serde` values into
//! one buffer that already holds the Engine.IO prefix: the finished WebSocket frame.

mod decode;
mod encode;
mod json;
mod placeholder;

pub use decode::{DecodeError, Decoder, PayloadError};
pub use encode::{EncodeError, Encoded};

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
    json: Str,
    attachments: Vec<Bytes>,
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

    /// Deserializes the payload into `T`. Each placeholder becomes its attachment's bytes, which
    /// deserialize into `Vec<u8>`, `bytes::Bytes` (with its `serde` feature) or `serde_bytes`.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        if self.attachments.is_empty() {
            serde_json::from_str(&self.json)
        } else {
            let mut value: serde_json::Value = serde_json::from_str(&self.json)?;
            placeholder::restore(&mut value, &self.attachments);
            serde_json::from_value(value)
        }
    }
}

/// An event: its name, and its arguments after it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Event {
    name: Str,
    /// The whole JSON array, name included.
    data: Payload,
    /// Byte offset in `data.json` just after the name element.
    args_at: usize,
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
    /// such as `(String, u32)`, a `Vec`, or any type that deserializes from a sequence.
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
        if self.data.attachments.is_empty() {
            let mut de = serde_json::Deserializer::from_str(&self.data.json);
            let out = serde::Deserializer::deserialize_seq(&mut de, decode::SkipFirst::<T>::new())?;
            de.end()?;
            Ok(out)
        } else {
            let mut value: serde_json::Value = serde_json::from_str(&self.data.json)?;
            placeholder::restore(&mut value, &self.data.attachments);
            if let serde_json::Value::Array(items) = &mut value {
                items.remove(0);
            }
            serde_json::from_value(value)
        }
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
