//! The cluster layer: how many nodes, roomcast and Node `socket.io` ones side by side, serve as
//! one Socket.IO server (`shared/DESIGN.md` §7, `shared/protocols/redis-cluster.md`).
//!
//! This part is the wire and the bookkeeping, with no Redis client in it (a transport moves the
//! bytes; `io::redis` is one):
//!
//! - `classic`: every message of the classic protocol of `@socket.io/redis-adapter` (also
//!   spoken by `@socket.io/redis-emitter`), decoded from and encoded to the bytes Node nodes
//!   publish; `sharded`: the `ClusterAdapter` messages of `createShardedAdapter`, read into and
//!   written from the same types;
//! - `adapter`: one namespace's uid, channels and framing for the protocol in use;
//! - `value`: the value trees (binary leaves) event arguments cross nodes in;
//! - `requests`: requests waiting for every node, their counts and timeouts.
//!
//! The node's state machine that uses them is [`Server`](crate::Server)'s
//! (`join_cluster`, `poll_cluster_transmit`, `handle_cluster_message`, ...).
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
pub mod streams;
pub mod value;
