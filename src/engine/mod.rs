//! Engine.IO v4: the codec (packets, long-polling payloads, the handshake) and the session
//! layer built on it ([`session`]).
//!
//! Each Engine.IO packet travels in its own WebSocket message, or as one element of a
//! long-polling payload. Socket.IO rides in `message` packets.

mod handshake;
mod packet;
mod payload;
pub mod session;

pub use handshake::Handshake;
pub use packet::{DecodeError, Frame, Message, Packet, PacketType};
pub use payload::{
    append_to_payload, decode_payload, encode_payload, payload_len, PayloadDecoder, SEPARATOR,
};
