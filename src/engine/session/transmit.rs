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
        to: Recipients<'a>,
        /// The messages, text or binary.
        frames: &'a [Frame],
        /// Whether the sender asked for compression (`compress` flag).
        compress: bool,
        /// Whether the frames may be dropped for a connection that cannot take them now (the
        /// `volatile` flag): the core already skipped the connections it knows are blocked, and
        /// a transport may skip those that block while it writes this batch.
        volatile: bool,
        /// Whether more output is already waiting behind this batch. A transport that gathers
        /// each connection's frames into one write may write a batch with nothing behind it at
        /// once, with no queue in between.
        more: bool,
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

/// The recipients of a batch: connections, as compact as the broadcast walk writes them (a
/// slot each, 4 bytes), with the generations that make them handles alongside.
#[derive(Clone, Copy)]
pub struct Recipients<'a> {
    slots: &'a [u32],
    gens: &'a [u32],
}

impl<'a> Recipients<'a> {
    pub(crate) fn new(slots: &'a [u32], gens: &'a [u32]) -> Self {
        Recipients { slots, gens }
    }

    /// How many connections.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The `i`-th connection.
    pub fn get(&self, i: usize) -> Option<ConnectionHandle> {
        self.slots.get(i).map(|&slot| self.handle(slot))
    }

    /// Every connection, in order.
    pub fn iter(&self) -> RecipientsIter<'a> {
        RecipientsIter {
            slots: self.slots.iter(),
            gens: self.gens,
        }
    }

    fn handle(&self, slot: u32) -> ConnectionHandle {
        // A batch only names live sessions, whose generation is current.
        let gen = self.gens.get(slot as usize).copied().unwrap_or_default();
        ConnectionHandle::from_key(crate::slots::Key { slot, gen })
    }
}

impl<'a> IntoIterator for Recipients<'a> {
    type Item = ConnectionHandle;
    type IntoIter = RecipientsIter<'a>;
    fn into_iter(self) -> RecipientsIter<'a> {
        self.iter()
    }
}

impl std::fmt::Debug for Recipients<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for Recipients<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Recipients<'_> {}

/// The connections of a [`Recipients`], in order.
#[derive(Debug, Clone)]
pub struct RecipientsIter<'a> {
    slots: std::slice::Iter<'a, u32>,
    gens: &'a [u32],
}

impl Iterator for RecipientsIter<'_> {
    type Item = ConnectionHandle;
    fn next(&mut self) -> Option<ConnectionHandle> {
        let slot = *self.slots.next()?;
        let gen = self.gens.get(slot as usize).copied().unwrap_or_default();
        Some(ConnectionHandle::from_key(crate::slots::Key { slot, gen }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.slots.size_hint()
    }
}

impl ExactSizeIterator for RecipientsIter<'_> {}

/// The owned form of a [`Transmit`], queued inside the core.
#[derive(Debug)]
pub(crate) enum Out {
    Ws {
        /// Connection slots: 4 bytes a recipient, as the broadcast walk writes them.
        to: Vec<u32>,
        frames: SmallVec<[Frame; 2]>,
        compress: bool,
        volatile: bool,
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
    pub(crate) fn as_transmit<'a>(&'a self, gens: &'a [u32], more: bool) -> Transmit<'a> {
        match self {
            Out::Ws {
                to,
                frames,
                compress,
                volatile,
            } => Transmit::WebSocket {
                to: Recipients::new(to, gens),
                frames,
                compress: *compress,
                volatile: *volatile,
                more,
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
