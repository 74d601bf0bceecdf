//! Small, copyable handles to the server's connections, sockets and namespaces.
//!
//! A handle is a slot index plus the slot's generation: once its connection or socket is gone,
//! the slot may be reused, and the stale handle is recognised and refused instead of reaching
//! the newcomer.

use std::fmt;

/// One Engine.IO session: a long-polling or WebSocket connection from one client.
///
/// Four bytes: a 24-bit slot and an 8-bit generation. Broadcast batches are lists of these, so
/// their size is the size of every fan-out's output.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionHandle(u32);

/// Most connections one server holds at once (24-bit slots).
pub(crate) const MAX_CONNECTIONS: u32 = 1 << 24;

/// One socket: a connection's membership of one namespace.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketHandle {
    pub(crate) slot: u32,
    pub(crate) gen: u32,
}

/// A namespace of the server.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct NamespaceId(pub(crate) u32);

impl fmt::Debug for ConnectionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}.{}", self.slot(), self.gen())
    }
}

impl fmt::Debug for SocketHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "socket#{}.{}", self.slot, self.gen)
    }
}

impl ConnectionHandle {
    pub(crate) const fn new(slot: u32, gen: u8) -> Self {
        ConnectionHandle((gen as u32) << 24 | (slot & (MAX_CONNECTIONS - 1)))
    }

    pub(crate) const fn slot(self) -> u32 {
        self.0 & (MAX_CONNECTIONS - 1)
    }

    pub(crate) const fn gen(self) -> u8 {
        (self.0 >> 24) as u8
    }

    /// A dense index, unique among live connections: handy to index an adapter's own tables.
    pub fn index(self) -> usize {
        self.slot() as usize
    }
}

impl SocketHandle {
    /// A dense index, unique among live sockets.
    pub fn index(self) -> usize {
        self.slot as usize
    }
}
