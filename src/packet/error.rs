//! Why a packet does not decode.

use super::types::PacketType;

/// Why text or bytes are not a valid Socket.IO packet. Each is a protocol violation: the
/// reference server closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// An empty Engine.IO message.
    #[error("empty packet")]
    Empty,
    /// The first character is not a packet type `0`–`6`.
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    /// A binary packet whose attachment count is not digits followed by `-`.
    #[error("malformed attachment count")]
    InvalidAttachmentCount,
    /// More attachments announced than [`Limits::max_attachments`](crate::Limits::max_attachments).
    #[error("{count} attachments announced, at most {max} allowed")]
    TooManyAttachments {
        /// The count announced (saturated at `u64::MAX`).
        count: u64,
        /// The configured limit.
        max: usize,
    },
    /// An ack id that does not fit in a `u64` (msgpack: an `id` that is not an unsigned
    /// integer).
    #[error("ack id is not an unsigned 64-bit integer")]
    InvalidAckId,
    /// An ack id on a packet type that takes none.
    #[error("{0:?} packets take no ack id")]
    UnexpectedAckId(PacketType),
    /// An ACK without the id of the event it answers.
    #[error("ACK without an ack id")]
    MissingAckId,
    /// An EVENT or ACK without a payload.
    #[error("{0:?} packets need a payload")]
    MissingPayload(PacketType),
    /// The payload is not well-formed JSON.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json {
        /// Line of the error, from 1.
        line: usize,
        /// Column of the error, from 1.
        column: usize,
        /// What `serde_json` found wrong.
        message: String,
    },
    /// The payload is JSON, but not what this packet type takes.
    #[error("invalid {packet_type:?} payload: {error}")]
    Payload {
        /// The packet's type.
        packet_type: PacketType,
        /// What was wrong.
        error: PayloadError,
    },
    /// A text message arrived while a binary packet still waited for attachments.
    #[error("text message while {received} of {expected} attachments were received")]
    TextDuringBinary {
        /// Attachments received so far.
        received: usize,
        /// Attachments announced.
        expected: usize,
    },
    /// A binary message arrived with no binary packet waiting for it.
    #[error("binary message without a packet header announcing it")]
    UnexpectedBinary,
    /// A text message reached the msgpack parser, whose packets are binary messages.
    #[error("text message, but the msgpack parser takes binary messages only")]
    UnexpectedText,
    /// Not one well-formed msgpack value (notepack's "Could not parse", "trailing bytes").
    #[error("invalid msgpack at byte {offset}: {reason}")]
    Msgpack {
        /// Byte offset in the message.
        offset: usize,
        /// What was wrong there.
        reason: &'static str,
    },
    /// A msgpack packet whose `type` is missing or not an integer in 0..=4.
    #[error("invalid packet type")]
    InvalidPacketType,
    /// A msgpack packet whose `nsp` is missing, not a string, or not a namespace name (starting
    /// with `/`, without `,`, as the JSON parser's names).
    #[error("invalid namespace")]
    InvalidNamespace,
}

/// What is wrong with a well-formed JSON payload, per the reference decoder's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// CONNECT data must be an object.
    #[error("expected an object")]
    NotObject,
    /// CONNECT_ERROR data must be a string or an object.
    #[error("expected a string or an object")]
    NotStringOrObject,
    /// EVENT and ACK data must be an array.
    #[error("expected an array")]
    NotArray,
    /// DISCONNECT takes no payload.
    #[error("no payload allowed")]
    Unexpected,
    /// An EVENT needs at least the event name.
    #[error("event without a name")]
    MissingEventName,
    /// The first element of an EVENT is neither a string nor a number.
    #[error("event name is neither a string nor a number")]
    InvalidEventName,
    /// The event name is one the client API reserves.
    #[error("reserved event name {0:?}")]
    ReservedEventName(String),
    /// An object whose `_placeholder` is `true` but that is not exactly
    /// `{"_placeholder":true,"num":<i>}` (in either order) with `i` an integer below the
    /// attachment count. The reference accepts extra or repeated members; refusing them keeps
    /// every placeholder recognisable from its first two members (see `Payload::deserialize`).
    #[error(
        "invalid placeholder: not exactly _placeholder true and an integer num in 0..{attachments}"
    )]
    InvalidPlaceholder {
        /// The number of attachments announced.
        attachments: usize,
    },
    /// msgpack: an object with `_placeholder: true`. Placeholders stand for the parser's own
    /// binary values only; taken from a client, one would read as an attachment.
    #[error("an object with _placeholder true (placeholders stand for binary values only)")]
    PlaceholderKey,
    /// msgpack: binary data in a CONNECT or CONNECT_ERROR payload, which carry no attachments.
    #[error("binary data in a packet that takes none")]
    UnexpectedBinary,
}

impl DecodeError {
    pub(super) fn payload(packet_type: PacketType, error: PayloadError) -> Self {
        DecodeError::Payload { packet_type, error }
    }
}
