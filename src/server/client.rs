//! One connection's Socket.IO state (the reference's `Client`): its packet decoder, its
//! sockets (one per namespace joined) and the namespace connections still being decided.

use crate::handle::{ConnectionHandle, NamespaceId, SocketHandle};
use crate::packet::Decoder;
use smallvec::SmallVec;

#[derive(Debug)]
pub(crate) struct Client {
    /// The connection, to tell this record from an earlier occupant of its slot.
    pub(crate) conn: ConnectionHandle,
    pub(crate) decoder: Decoder,
    /// Most connections join one namespace.
    pub(crate) sockets: SmallVec<[(NamespaceId, SocketHandle); 1]>,
    /// CONNECTs the application has not decided yet: (namespace, request number). Boxed: they
    /// are transient, and an idle connection should not carry room for them.
    pending: Option<Box<Pending>>,
}

/// Undecided CONNECTs: (namespace, request number).
type Pending = SmallVec<[(NamespaceId, u64); 2]>;

impl Client {
    pub(crate) fn new(conn: ConnectionHandle, decoder: Decoder) -> Self {
        Client {
            conn,
            decoder,
            sockets: SmallVec::new(),
            pending: None,
        }
    }

    pub(crate) fn has_namespace(&self, nsp: NamespaceId) -> bool {
        self.sockets.iter().any(|(n, _)| *n == nsp) || self.pending().iter().any(|(n, _)| *n == nsp)
    }

    /// The undecided CONNECTs.
    pub(crate) fn pending(&self) -> &[(NamespaceId, u64)] {
        self.pending.as_deref().map_or(&[], |p| p.as_slice())
    }

    pub(crate) fn add_pending(&mut self, nsp: NamespaceId, seq: u64) {
        self.pending
            .get_or_insert_with(Box::default)
            .push((nsp, seq));
    }

    /// Removes the pending CONNECTs `gone` picks; how many went.
    pub(crate) fn remove_pending(
        &mut self,
        mut gone: impl FnMut(NamespaceId, u64) -> bool,
    ) -> usize {
        let Some(p) = self.pending.as_mut() else {
            return 0;
        };
        let before = p.len();
        p.retain(|(n, seq)| !gone(*n, *seq));
        let removed = before - p.len();
        if p.is_empty() {
            self.pending = None;
        }
        removed
    }

    pub(crate) fn socket_in(&self, nsp: NamespaceId) -> Option<SocketHandle> {
        self.sockets
            .iter()
            .find(|(n, _)| *n == nsp)
            .map(|(_, s)| *s)
    }
}

/// The clients of a server, indexed by connection slot (dense, like the sessions). A vacant
/// slot holds a client whose handle has generation 0, which no live connection has (their
/// generations are odd): no `Option` tag, 8 bytes less a connection.
#[derive(Debug, Default)]
pub(crate) struct Clients {
    by_slot: Vec<Client>,
    len: usize,
}

fn vacant(slot: usize) -> Client {
    let conn = ConnectionHandle::from_key(crate::slots::Key {
        slot: slot as u32,
        gen: 0,
    });
    Client::new(conn, Decoder::new(crate::Limits::default()))
}

impl Client {
    fn is_vacant(&self) -> bool {
        self.conn.key().gen == 0
    }
}

impl Clients {
    pub(crate) fn insert(&mut self, client: Client) {
        let i = client.conn.index();
        while self.by_slot.len() <= i {
            let slot = self.by_slot.len();
            self.by_slot.push(vacant(slot));
        }
        if self.by_slot[i].is_vacant() {
            self.len += 1;
        }
        self.by_slot[i] = client;
    }

    pub(crate) fn get(&self, conn: ConnectionHandle) -> Option<&Client> {
        self.by_slot
            .get(conn.index())
            .filter(|c| c.conn == conn && !c.is_vacant())
    }

    pub(crate) fn get_mut(&mut self, conn: ConnectionHandle) -> Option<&mut Client> {
        self.by_slot
            .get_mut(conn.index())
            .filter(|c| c.conn == conn && !c.is_vacant())
    }

    /// The client in connection slot `slot`, whichever its generation.
    pub(crate) fn at_mut(&mut self, slot: u32) -> Option<&mut Client> {
        self.by_slot
            .get_mut(slot as usize)
            .filter(|c| !c.is_vacant())
    }

    pub(crate) fn remove(&mut self, conn: ConnectionHandle) -> Option<Client> {
        let c = self.by_slot.get_mut(conn.index())?;
        if c.conn != conn || c.is_vacant() {
            return None;
        }
        self.len -= 1;
        Some(std::mem::replace(c, vacant(conn.index())))
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Client> {
        self.by_slot.iter().filter(|c| !c.is_vacant())
    }
}
