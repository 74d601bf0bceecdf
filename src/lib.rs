//! # roomcast
//!
//! The routing core of Socket.IO as a sans-IO state machine: it speaks Engine.IO v4 and
//! Socket.IO v5 so the official clients connect unchanged, and it never touches a socket, a
//! thread or a clock. Bytes and time go in; frames to send, timers and application events
//! come out.
//!
//! - [`Server`]: the state machine. Sessions over long-polling and WebSocket (handshake,
//!   heartbeat, upgrade), namespaces, sockets, rooms, broadcasts and acks.
//! - [`engine`]: the Engine.IO codec: packets, long-polling payloads, the handshake.
//! - [`packet`]: the Socket.IO codec: packets, binary attachments and their reassembly,
//!   validated as the reference decoder does.
//!
//! Every decoder takes untrusted input and bounds it with [`Limits`]: no input makes it panic,
//! every rejection is a typed error, and a misbehaving client only ever closes its own
//! connection.
//!
//! ## The drive loop
//!
//! The I/O layer owns sockets and the clock. It feeds the server what arrives (`handle_*`),
//! then drains what the server produced: frames to write ([`Server::poll_transmit`]),
//! application events ([`Server::poll_event`]), and the next time it must be woken
//! ([`Server::poll_timeout`], then [`Server::handle_timeout`]). The application answers events
//! with calls such as [`Server::accept`], [`Server::join`] or [`Server::broadcast_from`].
//!
//! ```
//! use roomcast::engine::Frame;
//! use roomcast::{
//!     Config, ConnectionHandle, Event, HttpAction, HttpRequest, Server, Str, Transmit,
//! };
//! use std::collections::HashMap;
//! use std::time::{Duration, Instant};
//!
//! /// One turn of the loop: write what the server produced, then let the application react.
//! fn pump(server: &mut Server, wire: &mut HashMap<ConnectionHandle, Vec<String>>) {
//!     loop {
//!         while let Some(t) = server.poll_transmit() {
//!             if let Transmit::WebSocket { to, frames, .. } = t {
//!                 for conn in to {
//!                     for frame in frames {
//!                         if let Frame::Text(text) = frame {
//!                             wire.entry(conn).or_default().push(text.to_string());
//!                         }
//!                     }
//!                 }
//!             }
//!         }
//!         let Some(event) = server.poll_event() else { return };
//!         match event {
//!             // Authentication would look at `auth` here, and may `reject` instead.
//!             Event::ConnectRequest { request, .. } => {
//!                 server.accept(request, ()).unwrap();
//!             }
//!             // Relay every chat message to everyone else in the namespace.
//!             Event::Message { socket, event, .. } if event.name() == "chat" => {
//!                 let (text,): (String,) = event.args().unwrap();
//!                 server.broadcast_from(socket).unwrap().emit("chat", &(text,)).unwrap();
//!             }
//!             _ => {}
//!         }
//!     }
//! }
//!
//! let mut server: Server = Server::new(Config::default()).unwrap();
//! let mut now = Instant::now();
//! // What the "network" carried to each client.
//! let mut wire = HashMap::new();
//!
//! // Two clients open WebSocket sessions and join namespace `/`.
//! let mut clients = Vec::new();
//! for _ in 0..2 {
//!     let request = HttpRequest::get("EIO=4&transport=websocket").websocket();
//!     let HttpAction::AcceptWebSocket(conn) = server.handle_http(now, request) else { panic!() };
//!     server.handle_ws_open(now, conn); // the WebSocket handshake went through
//!     server.handle_ws_message(now, conn, Frame::Text(Str::from_static("40")));
//!     clients.push(conn);
//! }
//! pump(&mut server, &mut wire);
//! assert!(wire[&clients[0]][1].starts_with(r#"40{"sid":"#)); // after the open packet
//!
//! // The first client sends an event; the second receives it.
//! server.handle_ws_message(now, clients[0], Frame::Text(Str::from_static(r#"42["chat","hi"]"#)));
//! pump(&mut server, &mut wire);
//! assert_eq!(wire[&clients[1]].last().unwrap(), r#"42["chat","hi"]"#);
//! assert_eq!(wire[&clients[0]].len(), 2); // open, connect: nothing back to the sender
//!
//! // Time passes only when the driver says so: wake the server when it asks (a wake-up with
//! // nothing due, for a timer whose reason went away, is harmless).
//! let start = now;
//! let frames = loop {
//!     now = server.poll_timeout().unwrap();
//!     server.handle_timeout(now);
//!     if let Some(Transmit::WebSocket { frames, .. }) = server.poll_transmit() {
//!         break frames.to_vec();
//!     }
//! };
//! assert_eq!(now, start + Duration::from_secs(25)); // the first heartbeat
//! assert_eq!(frames[0], Frame::Text(Str::from_static("2"))); // ping
//! ```
//!
//! ## The codecs alone
//!
//! ```
//! use roomcast::engine::{self, Frame, Message};
//! use roomcast::packet::{Decoder, Encoded, Packet};
//! use roomcast::{Limits, Str};
//!
//! // A WebSocket text message from a client.
//! let frame = Frame::Text(Str::from_static(r#"42["chat",{"text":"hi"}]"#));
//! let engine::Packet::Message(Message::Text(text)) = engine::Packet::decode(frame).unwrap() else {
//!     unreachable!()
//! };
//! let mut decoder = Decoder::new(Limits::default());
//! let Some(Packet::Event { event, .. }) = decoder.push_text(text).unwrap() else { unreachable!() };
//! assert_eq!(event.name(), "chat");
//!
//! // The answer, encoded once into the finished frame.
//! let reply = Encoded::event("/", None, "chat", &(serde_json::json!({"text": "hello"}),)).unwrap();
//! assert_eq!(reply.text(), r#"42["chat",{"text":"hello"}]"#);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cluster;
mod config;
pub mod engine;
mod handle;
mod id;
pub mod io;
mod limits;
pub mod packet;
mod reason;
mod recovery;
mod router;
mod server;
mod slab;
mod slots;
mod str;
mod timers;

pub use config::{Config, ConfigError, RecoveryConfig};
pub use engine::session::{
    HttpAction, HttpRequest, HttpResponse, Method, RequestError, RequestId, RequestInfo, Transmit,
    Transports,
};
pub use handle::{ConnectionHandle, NamespaceId, SocketHandle};
pub use id::{OsRandom, RandomError, RandomSource, SeededRandom};
pub use limits::Limits;
pub use reason::DisconnectReason;
pub use server::{
    AckError, AckHandle, AckRequest, Broadcast, BroadcastAckHandle, ClusterConfig, ClusterError,
    ClusterReply, ClusterSubscription, ClusterTransmit, Command, ConnectRequest, Error, Event,
    FetchedSocket, Handshake, NodeCount, RecoveryStats, RequestHandle, Server, ServerSideAck,
    SessionFound, SessionRestore, StreamOffset,
};
pub use str::Str;

/// The README's examples, compiled and run as doc tests.
#[cfg(all(doctest, feature = "tokio"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// docs/NODE_API.md's examples (Node's server API and emit cheatsheet, line by line), compiled
/// and, where they need no client, run as doc tests.
#[cfg(all(doctest, feature = "tokio"))]
#[doc = include_str!("../docs/NODE_API.md")]
pub struct NodeApiDoctests;
