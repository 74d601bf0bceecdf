//! The tokio adapter: serves the official Socket.IO clients over WebSocket and HTTP
//! long-polling, and gives the application an async API over the core.
//!
//! One driver task owns the [`Server`](crate::Server): every input (HTTP request, WebSocket
//! message, timer, application call) reaches it through one of two bounded channels, so
//! nothing is locked and a broadcast is one walk of the core plus one shared frame handed to
//! each connection's writer.
//! Each WebSocket has a reader and a writer task; the writer drains its bounded queue in
//! batches, one flush per batch. Each socket has a task that runs its handlers one event at a
//! time, in arrival order, as a Node server would.
//!
//! ## Bounds and back-pressure
//!
//! Every queue has a bound from [`Options`]. Network input waits for room in the driver's
//! input queue. Each connection has a credit of [`Options::socket_queue`] events and
//! [`Options::socket_queue_bytes`] bytes: an event holds its part from the moment it is read
//! until its handler has finished, and a connection
//! without credit is not read (WebSocket) or not answered (long-polling POST), so TCP and the
//! polling cycle push back on the client instead of the server buffering. Synchronous
//! application calls never wait: when the call queue is full they are refused
//! ([`CallError::Full`]), or, for those returning nothing, logged and counted
//! ([`SocketIo::refused_calls`]); acks are never refused.
//!
//! ## Panics
//!
//! A handler or middleware that panics ends only its own work: the panic is logged, the socket
//! is disconnected (a middleware's client is refused), everyone else is served on. Application
//! code the driver runs itself ([`SocketIo::call`], [`EngineIo::on_message`], the
//! dynamic-namespace filter) runs under `catch_unwind`, so it cannot stop the driver.
//!
//! ## A bare Engine.IO server
//!
//! [`EngineIo`] drives the session layer ([`Engine`](crate::engine::session::Engine)) with the
//! same driver, HTTP and WebSocket code: one [`Core`] or the other.
//!
//! ```no_run
//! use roomcast::io::tokio::{SocketIo, Options};
//! use roomcast::Config;
//!
//! # async fn run() -> std::io::Result<()> {
//! let io: SocketIo = SocketIo::new(Config::default(), Options::default());
//! io.of("/").on("ping", |socket, msg| async move {
//!     msg.ack(&("pong",));
//!     socket.broadcast().emit("pinged", &(socket.id(),));
//! });
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! io.serve(listener, std::future::pending()).await
//! # }
//! ```

// Layers, each knowing only those below it: `options`, `credit`, `shared` (plain types), `driver`
// (the core's owner), `ws` and `http` (connections, talking to the driver), `api` (the
// application's handle, which lends the driver its hooks; `engine_io` likewise for a bare
// Engine.IO server).
pub mod admin;
mod api;
mod cluster;
mod cors;
mod credit;
mod driver;
mod engine_io;
mod http;
mod options;
mod outbox;
mod shared;
mod ws;

pub use api::{
    Ack, AckTimeout, BroadcastOp, Connecting, FetchError, ListenerId, Message, Namespace,
    RemoteSocket, RemoteTimeout, Socket, SocketIo, Timeout,
};
pub use cluster::{ServerSideMessage, ServerSideResponses};
pub use cors::{AllowOrigin, Cors};
#[cfg(feature = "redis")]
pub(crate) use driver::{ClusterOutput, Link};
pub use driver::{Core, Ctx, RoomEvent};
pub use engine_io::EngineIo;
pub use http::{Body, IoService, WithFallback};
pub use options::{ConnectionError, Forbidden, Options, OptionsError};
pub use shared::{CallError, Rejection, Replies, Reply};
