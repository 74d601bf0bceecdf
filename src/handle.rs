//! Small, copyable handles to the server's connections, sockets and namespaces.
//!
//! A handle is a slot index plus the slot's generation (see [`Slots`](crate::slots)): once
//! its connection or socket is gone, the slot may be reused, and the stale handle is
//! recognised and refused instead of reaching the newcomer.

use crate::slots::Key;
use std::fmt;

/// One Engine.IO session: a long-polling or WebSocket connection from one client.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionHandle {
    slot: u32,
    gen: u32,
}

/// Most connections one server holds at once.
pub(crate) const MAX_CONNECTIONS: u32 = 1 << 24;

/// One socket: a connection's membership of one namespace.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketHandle {
    pub(crate) slot: u32,
    pub(crate) gen: u32,
}

/// A namespace of the server. A child namespace can be removed when it empties
/// ([`Config::cleanup_empty_child_namespaces`](crate::Config::cleanup_empty_child_namespaces));
/// its id is then stale, refused everywhere, and never names a later namespace.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NamespaceId {
    slot: u32,
    gen: u32,
}

impl fmt::Debug for ConnectionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}.{}", self.slot, self.gen)
    }
}

impl fmt::Debug for NamespaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "nsp#{}.{}", self.slot, self.gen)
    }
}

impl fmt::Debug for SocketHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "socket#{}.{}", self.slot, self.gen)
    }
}

/// Conversions between a handle and the slot key it wraps.
macro_rules! keyed {
    ($handle:ident) => {
        impl $handle {
            pub(crate) const fn from_key(k: Key) -> Self {
                $handle {
                    slot: k.slot,
                    gen: k.gen,
                }
            }

            pub(crate) const fn key(self) -> Key {
                Key {
                    slot: self.slot,
                    gen: self.gen,
                }
            }

            /// A dense index, unique among live handles of this kind: handy to index an
            /// adapter's own tables.
            pub fn index(self) -> usize {
                self.slot as usize
            }
        }
    };
}

keyed!(ConnectionHandle);
keyed!(SocketHandle);
keyed!(NamespaceId);

#[cfg(test)]
impl NamespaceId {
    /// The first namespace in `slot`, for unit tests that need ids without a server.
    pub(crate) const fn test(slot: u32) -> Self {
        NamespaceId { slot, gen: 1 }
    }
}
