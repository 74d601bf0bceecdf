//! What the core tells the application.

use crate::handle::{ConnectionHandle, NamespaceId, SocketHandle};
use crate::packet::{self, Payload};
use crate::Str;
use std::fmt;

/// Why a socket left its namespace, or a connection closed. Displayed as the reference's
/// reason strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisconnectReason {
    /// The server disconnected the socket ([`Server::disconnect`](crate::Server::disconnect)).
    ServerNamespaceDisconnect,
    /// The client sent DISCONNECT for the namespace.
    ClientNamespaceDisconnect,
    /// The server is shutting down.
    ServerShuttingDown,
    /// The client did not answer a ping in time.
    PingTimeout,
    /// The transport was closed (the client left, or its connection dropped).
    TransportClose,
    /// The transport failed, or the client broke the transport's rules (overlapping requests).
    TransportError,
    /// The client sent something that is not a valid packet.
    ParseError,
    /// The server closed the whole connection.
    ForcedClose,
    /// The client did not read fast enough: its queue overflowed.
    SlowConsumer,
    /// The connection joined no namespace within the connect timeout.
    ConnectTimeout,
}

impl DisconnectReason {
    /// The reference server's string for this reason.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
            DisconnectReason::ServerShuttingDown => "server shutting down",
            DisconnectReason::PingTimeout => "ping timeout",
            DisconnectReason::TransportClose => "transport close",
            DisconnectReason::TransportError => "transport error",
            DisconnectReason::ParseError => "parse error",
            DisconnectReason::ForcedClose => "forced close",
            DisconnectReason::SlowConsumer => "slow consumer",
            DisconnectReason::ConnectTimeout => "connect timeout",
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A namespace connection the application must accept or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectRequest {
    pub(crate) conn: ConnectionHandle,
    pub(crate) nsp: NamespaceId,
    pub(crate) seq: u64,
}

/// An emit to one socket that waits for its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AckHandle(pub(crate) u64);

/// A broadcast that waits for every recipient's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BroadcastAckHandle(pub(crate) u64);

/// Why an awaited ack will never come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// The timeout passed first.
    #[error("operation has timed out")]
    Timeout,
    /// The socket disconnected first.
    #[error("socket has been disconnected")]
    Disconnected,
}

/// An application event, from [`Server::poll_event`](crate::Server::poll_event).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A client asks to join a namespace: call
    /// [`Server::accept`](crate::Server::accept) or [`Server::reject`](crate::Server::reject).
    ConnectRequest {
        /// The request to decide on.
        request: ConnectRequest,
        /// The namespace.
        nsp: NamespaceId,
        /// The namespace's name (for a dynamic namespace, the name the client asked for).
        nsp_name: Str,
        /// The client's auth payload (a JSON object), if any.
        auth: Option<Str>,
    },
    /// A socket joined its namespace (after [`Server::accept`](crate::Server::accept)).
    Connected {
        /// The new socket.
        socket: SocketHandle,
        /// Its public id.
        sid: Str,
        /// Its namespace.
        nsp: NamespaceId,
    },
    /// An event from a client.
    Message {
        /// The sender.
        socket: SocketHandle,
        /// Name and arguments.
        event: packet::Event,
        /// When set, the client waits for an answer: call
        /// [`Server::ack`](crate::Server::ack) with this id.
        ack: Option<u64>,
    },
    /// The answer to an [`emit_with_ack`](crate::Server::emit_with_ack), or why none came.
    Ack {
        /// The emit it answers.
        ack: AckHandle,
        /// The socket emitted to.
        socket: SocketHandle,
        /// Its arguments, or why it never came.
        result: Result<Payload, AckError>,
    },
    /// A broadcast with ack is over: every recipient answered, or the timeout passed.
    BroadcastAck {
        /// The broadcast.
        ack: BroadcastAckHandle,
        /// The answers received, in arrival order.
        replies: Vec<(SocketHandle, Payload)>,
        /// How many sockets the broadcast reached (those that disconnected before answering
        /// are not waited for).
        expected: usize,
        /// Whether the timeout ended it (some answers missing).
        timed_out: bool,
    },
    /// A socket left its namespace.
    Disconnected {
        /// The socket (no longer valid).
        socket: SocketHandle,
        /// Its public id.
        sid: Str,
        /// Its namespace.
        nsp: NamespaceId,
        /// Why.
        reason: DisconnectReason,
    },
    /// A bare Engine.IO message (only with `Config::engine_only`).
    EngineMessage {
        /// The connection it came from.
        conn: ConnectionHandle,
        /// The message.
        message: crate::engine::Message,
    },
    /// An Engine.IO session ended; every socket of it was reported disconnected before.
    ConnectionClosed {
        /// The connection (no longer valid).
        conn: ConnectionHandle,
        /// Why.
        reason: DisconnectReason,
    },
    /// A room came to exist (first member joined). Only with `Config::room_events`.
    RoomCreated {
        /// The namespace.
        nsp: NamespaceId,
        /// The room.
        room: Str,
    },
    /// A room ceased to exist (last member left). Only with `Config::room_events`.
    RoomDeleted {
        /// The namespace.
        nsp: NamespaceId,
        /// The room.
        room: Str,
    },
    /// A socket joined a room. Only with `Config::room_events`.
    RoomJoined {
        /// The namespace.
        nsp: NamespaceId,
        /// The room.
        room: Str,
        /// The socket.
        socket: SocketHandle,
    },
    /// A socket left a room. Only with `Config::room_events`.
    RoomLeft {
        /// The namespace.
        nsp: NamespaceId,
        /// The room.
        room: Str,
        /// The socket.
        socket: SocketHandle,
    },
}
