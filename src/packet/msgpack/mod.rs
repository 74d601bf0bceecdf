//! The msgpack parser (`socket.io-msgpack-parser` 3.0, values as notepack.io 2.2 writes them):
//! each packet is one binary Engine.IO message holding one msgpack map,
//! `{type: 0..4, nsp, id?, data?}`, binary values inline as `bin`, no attachments.
//!
//! - [`encode`]: straight from `serde` values (`rmp-serde`, structs as maps) into the finished
//!   message. `data` is written last, so an event's connection-state-recovery offset is one
//!   more string at the very end and a new array header ([`with_last_arg`]).
//! - [`decode`]: the map is read with `rmp`'s markers and `data` is transcoded, in the same
//!   pass, into the JSON view every [`Payload`](super::Payload) has: each `bin` becomes an
//!   attachment (a slice of the message, no copy) behind a placeholder. An event also keeps the
//!   msgpack bytes of its arguments, so that relaying them re-encodes nothing.

mod decode;
mod encode;

pub(super) use decode::decode;
pub(crate) use encode::with_last_arg;
pub(super) use encode::{
    ack, ack_with_args_of, connect, connect_error, disconnect, encode_packet, event, event_raw,
    event_with_args_of,
};

/// The arguments of an event decoded from msgpack, as they came: the elements of its `data`
/// array after the name, back to back, and how many there are.
#[derive(Debug, Clone)]
pub(crate) struct RawArgs {
    pub(crate) bytes: bytes::Bytes,
    pub(crate) count: u32,
}
