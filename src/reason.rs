//! [`DisconnectReason`]: why a socket or a connection ended, shared by the session layer
//! (transport reasons) and the Socket.IO layer (namespace reasons) below both of them.

use std::fmt;

/// Why a socket left its namespace, or a connection closed. Displayed as the reference's
/// reason strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
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

    /// Whether connection state recovery keeps the socket's session: the transport failed or
    /// the server closed the connection under it (the reference's
    /// `RECOVERABLE_DISCONNECT_REASONS`), or (roomcast only) the client could not keep up: its
    /// missed packets are in the log, and a replay is what a consumer that fell behind on a
    /// bad network needs. Never after a namespace disconnect, either side's, or a parse error.
    pub fn is_recoverable(self) -> bool {
        matches!(
            self,
            DisconnectReason::TransportError
                | DisconnectReason::TransportClose
                | DisconnectReason::ForcedClose
                | DisconnectReason::PingTimeout
                | DisconnectReason::ServerShuttingDown
                | DisconnectReason::SlowConsumer
        )
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
