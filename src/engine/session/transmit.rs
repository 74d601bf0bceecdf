//! What the core asks the adapter to write.

use super::http::RequestId;
use crate::engine::Frame;
use crate::handle::ConnectionHandle;
use crate::DisconnectReason;
use bytes::Bytes;
use smallvec::SmallVec;

/// Something to write, from [`Engine::poll_transmit`](super::Engine::poll_transmit) (and the
/// Socket.IO server's, which is the same).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transmit<'a> {
    /// Write `frames`, in order, as WebSocket messages to each connection of `to`. One
    /// broadcast is one such batch: the frames are shared buffers, cloned per recipient.
    WebSocket {
        /// The recipients.
        to: &'a [ConnectionHandle],
        /// The messages, text or binary.
        frames: &'a [Frame],
        /// Whether the sender asked for compression (`compress` flag).
        compress: bool,
    },
    /// Answer the held long-polling GET `request` with `body` (status 200,
    /// `text/plain; charset=UTF-8`).
    PollResponse {
        /// The request to answer.
        request: RequestId,
        /// Its connection.
        conn: ConnectionHandle,
        /// The payload.
        body: &'a Bytes,
    },
    /// The connection is over: close its WebSocket, forget it. Held requests were answered
    /// before this.
    Close {
        /// The connection.
        conn: ConnectionHandle,
        /// Why.
        reason: DisconnectReason,
    },
    /// Close only the WebSocket of a failed upgrade; the session goes on over long-polling.
    CloseWebSocket {
        /// The connection.
        conn: ConnectionHandle,
    },
}

/// The owned form of a [`Transmit`], queued inside the core.
#[derive(Debug)]
pub(crate) enum Out {
    Ws {
        to: Vec<ConnectionHandle>,
        frames: SmallVec<[Frame; 2]>,
        compress: bool,
    },
    Poll {
        request: RequestId,
        conn: ConnectionHandle,
        body: Bytes,
    },
    Close {
        conn: ConnectionHandle,
        reason: DisconnectReason,
    },
    CloseWebSocket {
        conn: ConnectionHandle,
    },
}

impl Out {
    pub(crate) fn as_transmit(&self) -> Transmit<'_> {
        match self {
            Out::Ws {
                to,
                frames,
                compress,
            } => Transmit::WebSocket {
                to,
                frames,
                compress: *compress,
            },
            Out::Poll {
                request,
                conn,
                body,
            } => Transmit::PollResponse {
                request: *request,
                conn: *conn,
                body,
            },
            Out::Close { conn, reason } => Transmit::Close {
                conn: *conn,
                reason: *reason,
            },
            Out::CloseWebSocket { conn } => Transmit::CloseWebSocket { conn: *conn },
        }
    }
}
