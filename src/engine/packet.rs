//! One Engine.IO v4 packet, and the WebSocket frame it travels in.

use crate::{Limits, Str};
use bytes::Bytes;

/// A WebSocket message, or one element of a long-polling payload: the unit Engine.IO packets
/// travel in. Shared buffers, so one encoded broadcast is written to every recipient as is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Frame {
    /// A text frame: `<packet type>[<data>]`.
    Text(Str),
    /// A binary frame: always a `message` packet whose data is these bytes.
    Binary(Bytes),
}

impl Frame {
    /// Length of the frame's data in bytes.
    pub fn len(&self) -> usize {
        match self {
            Frame::Text(s) => s.len(),
            Frame::Binary(b) => b.len(),
        }
    }

    /// Whether the frame carries no bytes at all (never a valid Engine.IO packet).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The seven Engine.IO packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// `0`: the handshake.
    Open = 0,
    /// `1`: the transport may be closed.
    Close = 1,
    /// `2`: heartbeat request (and `2probe` during an upgrade).
    Ping = 2,
    /// `3`: heartbeat answer (and `3probe` during an upgrade).
    Pong = 3,
    /// `4`: application data.
    Message = 4,
    /// `5`: completes an upgrade.
    Upgrade = 5,
    /// `6`: flushes a pending long-polling request during an upgrade.
    Noop = 6,
}

impl PacketType {
    /// The type for its ASCII digit.
    pub fn from_ascii(c: u8) -> Option<Self> {
        Some(match c {
            b'0' => PacketType::Open,
            b'1' => PacketType::Close,
            b'2' => PacketType::Ping,
            b'3' => PacketType::Pong,
            b'4' => PacketType::Message,
            b'5' => PacketType::Upgrade,
            b'6' => PacketType::Noop,
            _ => return None,
        })
    }

    /// The ASCII digit that starts a packet of this type.
    pub fn as_ascii(self) -> u8 {
        b'0' + self as u8
    }
}

/// The data of a `message` packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Message {
    /// UTF-8 text (a Socket.IO packet, for Socket.IO).
    Text(Str),
    /// Raw bytes (a binary attachment, for Socket.IO).
    Binary(Bytes),
}

/// An Engine.IO v4 packet.
///
/// Data after `close`, `upgrade` and `noop` is ignored, as the reference does.
///
/// ```
/// use roomcast::engine::{Frame, Message, Packet};
/// use roomcast::Str;
/// let p = Packet::decode(Frame::Text(Str::from_static("4hello"))).unwrap();
/// assert_eq!(p, Packet::Message(Message::Text(Str::from_static("hello"))));
/// assert_eq!(p.encode(), Frame::Text(Str::from_static("4hello")));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Packet {
    /// The handshake, its JSON data as sent (see [`Handshake`](super::Handshake)).
    Open(Str),
    /// The transport may be closed.
    Close,
    /// Heartbeat or probe request, with its data (`probe`, or empty).
    Ping(Str),
    /// Heartbeat or probe answer, with its data (`probe`, or empty).
    Pong(Str),
    /// Application data.
    Message(Message),
    /// Completes an upgrade.
    Upgrade,
    /// Does nothing; flushes a pending long-polling GET.
    Noop,
}

/// Why bytes are not an Engine.IO packet or payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A text frame or payload element with no bytes at all.
    #[error("empty packet")]
    Empty,
    /// The first character is not a packet type `0`–`6`.
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    /// The message or request body is larger than [`Limits::max_payload`].
    #[error("{len} bytes exceed the maximum payload of {max} bytes")]
    TooLarge {
        /// Size received.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// A long-polling payload that is not UTF-8.
    #[error("payload is not valid UTF-8 (at byte {0})")]
    Utf8(usize),
    /// A `b`-prefixed long-polling element whose base64 is malformed.
    #[error("invalid base64 in binary packet {index} of the payload")]
    Base64 {
        /// Position of the element in the payload, from 0.
        index: usize,
    },
    /// An error in one element of a long-polling payload.
    #[error("packet {index} of the payload: {error}")]
    InPayload {
        /// Position of the element in the payload, from 0.
        index: usize,
        /// What was wrong with it.
        error: Box<DecodeError>,
    },
}

impl Packet {
    /// Decodes a WebSocket message (or one long-polling element, base64 already undone).
    pub fn decode(frame: Frame) -> Result<Packet, DecodeError> {
        match frame {
            Frame::Binary(b) => Ok(Packet::Message(Message::Binary(b))),
            Frame::Text(s) => Self::decode_text(s),
        }
    }

    /// Decodes a WebSocket message, first checking it against [`Limits::max_payload`].
    pub fn decode_limited(frame: Frame, limits: &Limits) -> Result<Packet, DecodeError> {
        if frame.len() > limits.max_payload {
            return Err(DecodeError::TooLarge {
                len: frame.len(),
                max: limits.max_payload,
            });
        }
        Self::decode(frame)
    }

    /// Decodes a text packet `<type>[<data>]`; the data shares `text`'s buffer.
    pub fn decode_text(text: Str) -> Result<Packet, DecodeError> {
        let first = *text.as_bytes().first().ok_or(DecodeError::Empty)?;
        let ty = PacketType::from_ascii(first).ok_or_else(|| {
            DecodeError::UnknownType(text.chars().next().unwrap_or(char::REPLACEMENT_CHARACTER))
        })?;
        // The type is one ASCII byte, so byte 1 is a char boundary.
        let data = || text.slice(1..text.len()).unwrap_or_default();
        Ok(match ty {
            PacketType::Open => Packet::Open(data()),
            PacketType::Close => Packet::Close,
            PacketType::Ping => Packet::Ping(data()),
            PacketType::Pong => Packet::Pong(data()),
            PacketType::Message => Packet::Message(Message::Text(data())),
            PacketType::Upgrade => Packet::Upgrade,
            PacketType::Noop => Packet::Noop,
        })
    }

    /// The packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Open(_) => PacketType::Open,
            Packet::Close => PacketType::Close,
            Packet::Ping(_) => PacketType::Ping,
            Packet::Pong(_) => PacketType::Pong,
            Packet::Message(_) => PacketType::Message,
            Packet::Upgrade => PacketType::Upgrade,
            Packet::Noop => PacketType::Noop,
        }
    }

    /// Encodes the packet as one WebSocket frame. A binary message is its bytes, as they are.
    pub fn encode(&self) -> Frame {
        let data: &str = match self {
            Packet::Message(Message::Binary(b)) => return Frame::Binary(b.clone()),
            Packet::Open(s)
            | Packet::Ping(s)
            | Packet::Pong(s)
            | Packet::Message(Message::Text(s)) => s,
            Packet::Close | Packet::Upgrade | Packet::Noop => "",
        };
        let mut text = String::with_capacity(1 + data.len());
        text.push(char::from(self.packet_type().as_ascii()));
        text.push_str(data);
        Frame::Text(Str::from(text))
    }
}
