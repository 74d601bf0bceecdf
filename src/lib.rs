//! # roomcast
//!
//! The routing core of Socket.IO as a sans-IO state machine: it speaks Engine.IO v4 and
//! Socket.IO v5 so the official clients connect unchanged, and it never touches a socket, a
//! thread or a clock. Bytes and time go in; frames to send, timers and application events
//! come out.
//!
//! This release holds the two wire codecs everything else sits on:
//!
//! - [`engine`]: Engine.IO packets, long-polling payloads and the handshake.
//! - [`packet`]: Socket.IO packets, binary attachments and their reassembly, validated as the
//!   reference decoder does.
//!
//! Every decoder takes untrusted input and bounds it with [`Limits`]: no input makes it panic,
//! and every rejection is a typed error saying what was wrong.
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

mod config;
pub mod engine;
mod handle;
mod id;
mod limits;
pub mod packet;
mod router;
mod server;
mod str;

pub use config::Config;
pub use handle::{ConnectionHandle, NamespaceId, SocketHandle};
pub use id::{OsRandom, RandomSource, SeededRandom};
pub use limits::Limits;
pub use server::{
    AckError, AckHandle, Broadcast, BroadcastAckHandle, ConnectRequest, DisconnectReason, Error,
    Event, FetchedSocket, HttpAction, HttpRequest, HttpResponse, Method, RequestError, RequestId,
    Server, Transmit,
};
pub use str::Str;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
