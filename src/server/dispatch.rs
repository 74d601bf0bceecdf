//! Socket.IO packets from clients: decoded from the session's messages, checked against the
//! connection's namespaces, and turned into application events.

use super::event::{AckRequest, ConnectRequest, Event};
use super::recovery::Recovering;
use super::Server;
use crate::engine::Message;
use crate::handle::ConnectionHandle;
use crate::packet::Packet;
use crate::DisconnectReason;

impl<D> Server<D> {
    /// A message packet of a session: Socket.IO text, or one binary attachment.
    pub(super) fn on_message(&mut self, h: ConnectionHandle, message: Message) {
        let Some(client) = self.clients.get_mut(h) else {
            return;
        };
        let decoded = match message {
            Message::Text(text) => client.decoder.push_text(text),
            Message::Binary(bytes) => client.decoder.push_binary(bytes),
        };
        match decoded {
            Ok(Some(p)) => self.on_packet(h, p),
            Ok(None) => {}
            Err(_) => self.close(h, DisconnectReason::ParseError),
        }
    }

    /// Asks the application's dynamic-namespace rule. It is user code run inside the core: a
    /// panic in it counts as "no such namespace" instead of unwinding through the core.
    fn dynamic_exists(&self, name: &str) -> bool {
        let Some(f) = &self.dynamic else { return false };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(name))).unwrap_or(false)
    }

    fn on_packet(&mut self, h: ConnectionHandle, packet: Packet) {
        let Some(c) = self.clients.get(h) else { return };
        match packet {
            Packet::Connect { nsp, data } => {
                let id = match self.router.namespace(&nsp) {
                    Some(id) => Some(id),
                    None if !nsp.contains(',') && self.dynamic_exists(&nsp) => {
                        Some(self.create_child(nsp.clone()))
                    }
                    None => None,
                };
                let Some(id) = id else {
                    let e = self
                        .parser()
                        .connect_error(&nsp, &serde_json::json!({"message": "Invalid namespace"}));
                    if let Ok(e) = e {
                        self.send_encoded(h, &e, false);
                    }
                    return;
                };
                if self.clients.get(h).is_some_and(|c| c.has_namespace(id)) {
                    return self.close(h, DisconnectReason::ParseError);
                }
                let seq = self.next();
                if let Some(c) = self.clients.get_mut(h) {
                    c.add_pending(id, seq);
                    self.connect_pending(id);
                }
                let request = ConnectRequest {
                    conn: h,
                    nsp: id,
                    seq,
                    auth: data.clone(),
                    recovering: false,
                };
                let request = match self.restoration(h, id, data.as_deref()) {
                    Some(Recovering::Local(restore)) => {
                        let request = ConnectRequest {
                            recovering: true,
                            ..request
                        };
                        return self.recover_or_ask(request, restore);
                    }
                    Some(Recovering::Remote { pid, offset }) => {
                        match self.request_restore(request, pid, offset) {
                            Ok(()) => return,
                            Err(request) => request,
                        }
                    }
                    None => request,
                };
                self.events.push_back(Event::ConnectRequest {
                    request,
                    nsp: id,
                    nsp_name: nsp,
                    auth: data,
                    recovering: false,
                });
            }
            Packet::Disconnect { nsp } => {
                let id = self.router.namespace(&nsp);
                match id.and_then(|id| c.socket_in(id)) {
                    Some(s) => self.remove_socket(s, DisconnectReason::ClientNamespaceDisconnect),
                    None => {
                        // Leaving a namespace still being decided cancels the request.
                        let Some(c) = self.clients.get_mut(h) else {
                            return;
                        };
                        let mut gone = Vec::new();
                        let n = c.remove_pending(|n, seq| {
                            let hit = Some(n) == id;
                            if hit {
                                gone.push(seq);
                            }
                            hit
                        });
                        if let Some(r) = self.recovery.as_deref_mut() {
                            gone.iter().for_each(|&seq| r.forget(seq));
                        }
                        if let Some(id) = id {
                            for _ in &gone {
                                self.connect_settled(id);
                            }
                            self.remove_if_unused(id);
                        }
                        if n == 0 {
                            self.close(h, DisconnectReason::ParseError);
                        }
                    }
                }
            }
            Packet::Event { nsp, id, event } => {
                match self.router.namespace(&nsp).and_then(|n| c.socket_in(n)) {
                    Some(socket) => self.events.push_back(Event::Message {
                        socket,
                        event,
                        ack: id.map(|id| AckRequest { socket, id }),
                    }),
                    None => self.close(h, DisconnectReason::ParseError),
                }
            }
            Packet::Ack { nsp, id, data } => {
                match self.router.namespace(&nsp).and_then(|n| c.socket_in(n)) {
                    Some(socket) => {
                        if let Some(remote) = self.acks.answer(socket, id, data, &mut self.events) {
                            self.send_remote_ack(remote);
                        }
                    }
                    None => self.close(h, DisconnectReason::ParseError),
                }
            }
            Packet::ConnectError { .. } => self.close(h, DisconnectReason::ParseError),
        }
    }
}
