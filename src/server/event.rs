//! What the core tells the application.

use crate::cluster::classic::RemoteSocket;
use crate::handle::{ConnectionHandle, NamespaceId, SocketHandle};
use crate::packet::{self, Payload};
use crate::{DisconnectReason, Str};

/// A namespace connection the application must decide on: a token consumed by
/// [`Server::accept`](crate::Server::accept) or [`Server::reject`](crate::Server::reject), so
/// it cannot be decided twice. Until decided, the client waits (and the connect timeout runs).
///
/// ```compile_fail
/// # fn decide(server: &mut roomcast::Server, request: roomcast::ConnectRequest) {
/// let _ = server.accept(request, ());
/// let _ = server.reject::<()>(request, "changed my mind", None); // `request` was moved
/// # }
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
#[must_use = "a connect request must be accepted or rejected"]
pub struct ConnectRequest {
    pub(crate) conn: ConnectionHandle,
    pub(crate) nsp: NamespaceId,
    pub(crate) seq: u64,
    /// Kept for the socket's handshake (`fetchSockets` answers carry it).
    pub(crate) auth: Option<Str>,
    /// Whether accepting it restores a dropped socket (connection state recovery).
    pub(crate) recovering: bool,
}

impl ConnectRequest {
    /// The connection asking.
    pub fn connection(&self) -> ConnectionHandle {
        self.conn
    }

    /// The namespace asked for.
    pub fn namespace(&self) -> NamespaceId {
        self.nsp
    }

    /// Whether accepting restores a dropped socket: its id, rooms and missed packets (only
    /// asked with [`RecoveryConfig::skip_middlewares`](crate::RecoveryConfig) off; otherwise
    /// such a socket is restored without asking).
    pub fn is_recovery(&self) -> bool {
        self.recovering
    }
}

/// An event that the client asked to be acknowledged: a token consumed by
/// [`Server::ack`](crate::Server::ack), so it is answered at most once.
///
/// ```compile_fail
/// # fn answer(server: &mut roomcast::Server, request: roomcast::AckRequest) {
/// let _ = server.ack(request, &("yes",));
/// let _ = server.ack(request, &("no",)); // `request` was moved
/// # }
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
#[must_use = "the client waits for this acknowledgement"]
pub struct AckRequest {
    pub(crate) socket: SocketHandle,
    pub(crate) id: u64,
}

impl AckRequest {
    /// The socket that waits for the answer.
    pub fn socket(&self) -> SocketHandle {
        self.socket
    }

    /// The ack id the client chose.
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// An emit to one socket that waits for its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AckHandle(pub(crate) u64);

/// A broadcast that waits for every recipient's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BroadcastAckHandle(pub(crate) u64);

/// A request of this node to the cluster (`fetchSockets`, `allRooms`, `serverSideEmit` with
/// acks): its [`Event::ClusterReply`] carries the same handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestHandle(pub(crate) u64);

/// Another node's `serverSideEmit` waits for this node's answer: a token consumed by
/// [`Server::server_side_ack`](crate::Server::server_side_ack), so it is answered at most once
/// (the reference takes the first call of the callback only).
#[derive(Debug, PartialEq, Eq, Hash)]
#[must_use = "the requesting node waits for this answer"]
pub struct ServerSideAck {
    pub(crate) nsp: NamespaceId,
    pub(crate) request_id: String,
    /// The asking node's uid (sharded answers go to its own channel).
    pub(crate) requester: String,
}

/// What a request to the cluster collected, over every node (this one included).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClusterReply {
    /// `fetchSockets`: every matching socket, as each node described it.
    Sockets(Vec<RemoteSocket>),
    /// `allRooms`: every room name, sorted, each once.
    Rooms(Vec<String>),
    /// `serverSideEmit` with acks: one answer per other node, each as the arguments
    /// `[answer]`, in arrival order.
    Responses(Vec<Payload>),
}

/// Why a request to the cluster ended without every node's answer. The messages are the
/// reference's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// `fetchSockets` timed out.
    #[error("timeout reached while waiting for fetchSockets response")]
    FetchSocketsTimeout,
    /// `allRooms` timed out.
    #[error("timeout reached while waiting for allRooms response")]
    AllRoomsTimeout,
    /// `serverSideEmit` with acks (and, with the sharded protocol, `fetchSockets`) timed out
    /// before every other node answered.
    #[error(
        "timeout reached: only {received} responses received out of {}",
        .expected.map_or_else(|| "an unknown number".to_owned(), |e| e.to_string())
    )]
    Incomplete {
        /// Answers received.
        received: usize,
        /// Answers expected (`None`: the node count never came).
        expected: Option<usize>,
    },
}

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
#[derive(Debug, PartialEq)]
#[non_exhaustive]
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
        /// Whether it is a dropped socket coming back (see [`ConnectRequest::is_recovery`]).
        recovering: bool,
    },
    /// A socket joined its namespace (after [`Server::accept`](crate::Server::accept), or
    /// restored by connection state recovery).
    Connected {
        /// The new socket.
        socket: SocketHandle,
        /// Its public id.
        sid: Str,
        /// Its namespace.
        nsp: NamespaceId,
        /// Whether it is a dropped socket restored (`socket.recovered`): same id, its rooms
        /// and data back, its missed packets sent before the CONNECT reply.
        recovered: bool,
    },
    /// An event from a client.
    Message {
        /// The sender.
        socket: SocketHandle,
        /// Name and arguments.
        event: packet::Event,
        /// When set, the client waits for an answer: pass it to
        /// [`Server::ack`](crate::Server::ack).
        ack: Option<AckRequest>,
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
        /// The answers of this node's sockets, in arrival order.
        replies: Vec<(SocketHandle, Payload)>,
        /// In a cluster, the answers of other nodes' sockets (each its first argument), in
        /// arrival order.
        remote: Vec<Payload>,
        /// How many sockets the broadcast reached, on every node that reported (this node's
        /// sockets that disconnected before answering are not waited for).
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
        /// The rooms it was in, its own id first: what Node's `disconnecting` listeners read
        /// from `socket.rooms` (it has left them by now).
        rooms: Vec<Str>,
    },
    /// Another node of the cluster emitted an event to this namespace's server
    /// (`serverSideEmit`); its arguments read like a client's.
    ServerSideEmit {
        /// The namespace.
        nsp: NamespaceId,
        /// Name and arguments.
        event: packet::Event,
        /// Set when the emitting node waits for an answer: pass it to
        /// [`Server::server_side_ack`](crate::Server::server_side_ack).
        ack: Option<ServerSideAck>,
    },
    /// A request of this node to the cluster is over: every node answered, or the timeout
    /// passed (then `error` says so and `reply` holds what came).
    ClusterReply {
        /// The request.
        request: RequestHandle,
        /// What it collected.
        reply: ClusterReply,
        /// Why it is incomplete, if it is.
        error: Option<ClusterError>,
    },
    /// A connection moved from long-polling to WebSocket (Node's `socket.conn.on("upgrade")`).
    Upgraded {
        /// The connection.
        conn: ConnectionHandle,
    },
    /// An Engine.IO session ended; every socket of it was reported disconnected before.
    ConnectionClosed {
        /// The connection (no longer valid).
        conn: ConnectionHandle,
        /// Why.
        reason: DisconnectReason,
    },
    /// A client's CONNECT created a namespace through the dynamic-namespace rule (a parent
    /// namespace's child: Node's `new_namespace`). The CONNECT's own request follows.
    NamespaceCreated {
        /// The new namespace.
        nsp: NamespaceId,
        /// Its name.
        name: Str,
    },
    /// A child namespace was removed: its last socket left
    /// ([`Config::cleanup_empty_child_namespaces`](crate::Config::cleanup_empty_child_namespaces)),
    /// or every CONNECT to it was refused before it had one. Its name is free at once (a later
    /// CONNECT to it creates a new namespace); its id names it, empty, until this event is
    /// polled (the events before it can still be read with it), and is stale after.
    NamespaceRemoved {
        /// The namespace (no longer valid).
        nsp: NamespaceId,
        /// Its name.
        name: Str,
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
        /// Its public id (the socket may be gone by the time the event is read).
        sid: Str,
    },
    /// A socket left a room. Only with `Config::room_events`.
    RoomLeft {
        /// The namespace.
        nsp: NamespaceId,
        /// The room.
        room: Str,
        /// The socket.
        socket: SocketHandle,
        /// Its public id (at a disconnection, the socket is gone by the time this is read).
        sid: Str,
    },
}
