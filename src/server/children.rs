//! The life of child namespaces: those a client's CONNECT creates through the dynamic-namespace
//! rule. The core counts the CONNECTs each still has to decide, and removes a child when it has
//! neither sockets nor undecided CONNECTs, if it never had a socket or the configuration asks
//! for empty children to go (`cleanupEmptyChildNamespaces`).

use super::event::Event;
use super::Server;
use crate::handle::NamespaceId;
use crate::Str;

impl<D> Server<D> {
    /// A client asks for a namespace the dynamic-namespace rule accepts: it is created as a
    /// child, and reported.
    pub(super) fn create_child(&mut self, name: Str) -> NamespaceId {
        let nsp = self.router.add_namespace(name.clone(), true);
        self.adapter_for_new(nsp);
        self.events.push_back(Event::NamespaceCreated { nsp, name });
        nsp
    }

    /// A CONNECT to `nsp` now waits for a decision.
    pub(super) fn connect_pending(&mut self, nsp: NamespaceId) {
        if let Some(n) = self.router.nsp_mut(nsp) {
            n.pending += 1;
        }
    }

    /// A CONNECT to `nsp` was decided, cancelled or dropped with its connection. The caller
    /// calls [`remove_if_unused`](Self::remove_if_unused) once the decision is carried out (an
    /// accepted socket must be in before the check).
    pub(super) fn connect_settled(&mut self, nsp: NamespaceId) {
        if let Some(n) = self.router.nsp_mut(nsp) {
            n.pending = n.pending.saturating_sub(1);
        }
    }

    /// Removes `nsp` if it is a child with no socket and no CONNECT pending, that never had a
    /// socket or must go when empty.
    pub(super) fn remove_if_unused(&mut self, nsp: NamespaceId) {
        let cleanup = self.engine.config().cleanup_empty_child_namespaces;
        let Some(n) = self.router.nsp(nsp) else {
            return;
        };
        if !n.child || n.retired || n.pending > 0 || !n.is_empty() || (n.populated && !cleanup) {
            return;
        }
        let name = n.name.clone();
        self.router.retire(nsp);
        self.drop_adapter(nsp);
        self.events.push_back(Event::NamespaceRemoved { nsp, name });
    }
}
