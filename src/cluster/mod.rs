//! The cluster layer: how many nodes, roomcast and Node `socket.io` ones side by side, serve as
//! one Socket.IO server (`shared/DESIGN.md` §7, `shared/protocols/redis-cluster.md`).
//!
//! This part is the wire: every message of the classic Redis adapter protocol (also spoken by
//! `@socket.io/redis-emitter`), decoded from and encoded to the bytes Node nodes publish, and
//! the value model event arguments cross nodes in. It knows no Redis client: a transport moves
//! the bytes. The state machine that uses it (requests, timeouts, node counting) builds on it.
//!
//! ```
//! use roomcast::cluster::classic::{decode_broadcast, Channels};
//!
//! let channels = Channels::new("socket.io", "/", "abc123");
//! // What a Node node publishes for `io.to("red").emit("msg", "hi")`.
//! let bytes = b"\x93\xa6rN-oO1\x83\xa4type\x02\xa4data\x92\xa3msg\xa2hi\xa3nsp\xa1/\x83\xa5rooms\x91\xa3red\xa6except\x90\xa5flags\x80";
//! let message = decode_broadcast(bytes).unwrap();
//! assert_eq!(channels.for_rooms(&message.opts.rooms), "socket.io#/#red#");
//! assert_eq!(message.packet.data[1].as_str(), Some("hi"));
//! ```

pub mod adapter;
pub mod classic;
pub mod requests;
pub mod sharded;
pub mod value;
