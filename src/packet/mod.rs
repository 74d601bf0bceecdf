//! The Socket.IO v5 codec.
//!
//! A packet is `<type>[<# of attachments>-][<namespace>,][<ack id>][<JSON>]`, carried in an
//! Engine.IO `message`; binary values travel in the binary messages that follow, each replaced in
//! the JSON by `{"_placeholder":true,"num":<i>}`.
//!
//! Decoding keeps the JSON as validated text that shares the input buffer: nothing is parsed
//! into a tree, and the application deserializes the arguments into its own types on demand
//! ([`Payload::deserialize`], [`Event::args`]), straight from that text, attachments put back
//! where their placeholders are. Encoding writes straight from `serde` values into one buffer
//! that already holds the Engine.IO prefix: the finished WebSocket frame.
//!
//! That is the default parser, [`Parser::Json`]. [`Parser::Msgpack`] writes each packet as one
//! msgpack map in one binary message (`socket.io-msgpack-parser`); its decoder gives the same
//! [`Packet`]s, payloads as JSON text with placeholders, so the application reads them the same
//! way whatever the parser.
//!
//! Layers, each using only those below it: `placeholder` (recognising, validating, reading and
//! writing placeholders; knows nothing of packets) and `json` (the validator) at the bottom;
//! `types` (packets and payloads); `error`; then `decode` and `encode`; `msgpack` (the other parser, writing [`Encoded`] and reading
//! into the same types); `raw` ([`RawArgs`], received arguments to emit again, which both
//! encoders recognise); `parser` on top, choosing between them.

mod decode;
mod encode;
mod error;
mod json;
mod msgpack;
mod parser;
mod placeholder;
mod raw;
mod types;

pub use decode::Decoder;
pub use encode::{EncodeError, Encoded};
pub use error::{DecodeError, PayloadError};
pub use parser::{Parser, UnknownParser};
pub use raw::RawArgs;
pub use types::{Event, Packet, PacketType, Payload, RESERVED_EVENTS};
