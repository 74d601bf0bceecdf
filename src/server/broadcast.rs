//! [`Broadcast`]: the `to` / `except` / `volatile` builder over one namespace.

use super::acks::{ClusterWait, Owner};
use super::cluster::Remote;
use super::{BroadcastAckHandle, Error, Server};
use crate::engine::Frame;
use crate::handle::{NamespaceId, SocketHandle};
use crate::packet::Encoded;
use crate::router::{Selection, BLOCKED, POLLING};
use crate::Str;
use serde::Serialize;
use smallvec::SmallVec;
use std::time::{Duration, Instant};

/// A selection of sockets in one namespace, and what to do with them. Start one with
/// [`Server::to_namespace`] or [`Server::broadcast_from`].
///
/// `to` adds rooms (the union, each socket once), `except` removes rooms; with no `to`, every
/// socket of the namespace is selected. A broadcast from a socket never reaches that socket.
///
/// ```
/// use roomcast::{Config, Server};
/// let mut server: Server = Server::new(Config::default()).unwrap();
/// let root = server.namespace("/").unwrap();
/// let reached = server.to_namespace(root).to("news").except("muted").emit("hello", &("world",)).unwrap();
/// assert_eq!(reached, 0); // nobody connected yet
/// ```
#[must_use = "a broadcast does nothing until emitted or applied"]
pub struct Broadcast<'s, D> {
    pub(super) server: &'s mut Server<D>,
    pub(super) nsp: NamespaceId,
    pub(super) exclude: Option<SocketHandle>,
    pub(super) rooms: SmallVec<[Str; 4]>,
    pub(super) except: SmallVec<[Str; 2]>,
    pub(super) volatile: bool,
    pub(super) compress: bool,
    pub(super) local: bool,
    /// The encoding carries its offset already (a stream entry's): not numbered again.
    numbered: bool,
}

impl<'s, D> Broadcast<'s, D> {
    pub(super) fn new(
        server: &'s mut Server<D>,
        nsp: NamespaceId,
        exclude: Option<SocketHandle>,
    ) -> Self {
        Broadcast {
            server,
            nsp,
            exclude,
            rooms: SmallVec::new(),
            except: SmallVec::new(),
            volatile: false,
            compress: true,
            local: false,
            numbered: false,
        }
    }

    /// Adds a room (a socket id names that socket's own room).
    pub fn to(mut self, room: impl Into<Str>) -> Self {
        self.rooms.push(room.into());
        self
    }

    /// Excludes the members of a room.
    pub fn except(mut self, room: impl Into<Str>) -> Self {
        self.except.push(room.into());
        self
    }

    /// Drops the packet for connections that cannot take it right now instead of queueing it.
    pub fn volatile(mut self) -> Self {
        self.volatile = true;
        self
    }

    /// Whether the WebSocket layer should compress the packet (default true).
    pub fn compress(mut self, compress: bool) -> Self {
        self.compress = compress;
        self
    }

    /// Only this server's sockets: in a cluster ([`Server::join_cluster`]), the broadcast is
    /// not published to the other nodes.
    pub fn local(mut self) -> Self {
        self.local = true;
        self
    }

    /// Whether [`local`](Self::local) was asked for.
    pub fn is_local(&self) -> bool {
        self.local
    }

    /// Emits an event to the selection, encoded once. Returns the number of sockets reached.
    pub fn emit<T: Serialize + ?Sized>(self, event: &str, args: &T) -> Result<usize, Error> {
        let name = self.server.live_nsp_name(self.nsp)?;
        let encoded = self.server.parser().event(&name, None, event, args)?;
        Ok(self.emit_encoded(&encoded))
    }

    /// Sends an already encoded packet to the selection. Returns the number of sockets reached
    /// on this node; in a cluster, the broadcast is also published, once.
    pub fn emit_encoded(self, encoded: &Encoded) -> usize {
        self.deliver(encoded, None).1.len
    }

    /// Emits an event that every recipient must answer, with one ack id for all. An
    /// [`Event::BroadcastAck`](crate::Event::BroadcastAck) comes when all have answered or
    /// `timeout` passes; in a cluster, once every node reported how many clients it reached
    /// and all of them answered too. Returns the handle and the number of sockets reached on
    /// this node.
    pub fn emit_with_ack<T: Serialize + ?Sized>(
        self,
        now: Instant,
        event: &str,
        args: &T,
        timeout: Duration,
    ) -> Result<(BroadcastAckHandle, usize), Error> {
        let outgoing = self.outgoing();
        let request_id = match &outgoing {
            Some(_) => Some(crate::cluster::requests::uid(self.server.engine.rng())?),
            None => None,
        };
        let max = self
            .server
            .cluster
            .as_deref()
            .map_or(0, |c| c.config.max_answers);
        let owner = Owner::Local(request_id.clone().map(|id| ClusterWait::new(id, max)));
        let id = self.server.next_ack_id(self.nsp);
        let name = self.server.live_nsp_name(self.nsp)?;
        let encoded = self.server.parser().event(&name, Some(id), event, args)?;
        let (server, reached) = self.deliver(&encoded, Some((id, now, timeout, owner)));
        if let (Some(o), Some(request_id)) = (outgoing, request_id) {
            server.publish_broadcast_with_ack(o, request_id, &encoded, timeout);
        }
        Ok((reached.handle.unwrap_or(BroadcastAckHandle(0)), reached.len))
    }

    /// Delivers an encoding that carries its offset already (or will never have one), on this
    /// node only.
    pub(crate) fn emit_numbered(self, encoded: &Encoded) -> usize {
        self.local().numbered().deliver(encoded, None).1.len
    }

    /// Its encoding is numbered already: not numbered, logged or held again.
    pub(crate) fn numbered(mut self) -> Self {
        self.numbered = true;
        self
    }

    /// Another node's broadcast with acks on this node's sockets: the answers go to `owner`.
    /// Returns the number of sockets reached.
    pub(crate) fn emit_with_ack_for<T: Serialize + ?Sized>(
        self,
        now: Instant,
        event: &str,
        args: &T,
        timeout: Duration,
        owner: Owner,
    ) -> Result<usize, Error> {
        let id = self.server.next_ack_id(self.nsp);
        let name = self.server.live_nsp_name(self.nsp)?;
        let encoded = self.server.parser().event(&name, Some(id), event, args)?;
        Ok(self
            .deliver(&encoded, Some((id, now, timeout, owner)))
            .1
            .len)
    }

    /// Walks the selection once: WebSocket recipients into one batch, long-polling ones into
    /// their queues; registers the broadcast's ack on each recipient when asked.
    fn deliver(
        self,
        encoded: &Encoded,
        ack: Option<(u64, Instant, Duration, Owner)>,
    ) -> (&'s mut Server<D>, Reached) {
        // A broadcast with acks travels as a request instead (its caller publishes it).
        let mut outgoing = if ack.is_none() { self.outgoing() } else { None };
        // Numbered by the stream: this node's sockets get it once its entry id is known.
        let by_stream = outgoing.is_some()
            && !self.volatile
            && !self.numbered
            && self.server.numbered_by_stream()
            && encoded.is_event_without_ack();
        if let Some(o) = outgoing.take_if(|_| by_stream) {
            let selected = super::streams::Selected {
                nsp: self.nsp,
                exclude: self.exclude,
                rooms: self.rooms,
                except: self.except,
                compress: self.compress,
            };
            let s = self.server;
            return match s.defer_broadcast(selected, encoded, o) {
                Ok(()) => (
                    s,
                    Reached {
                        len: 0,
                        handle: None,
                    },
                ),
                // No room to wait: delivered here now without an offset, and published.
                Err(selected) => (*selected).on(s).deliver(encoded, None),
            };
        }
        // With recovery on, what may be replayed is numbered and logged: one offset for all.
        let numbered = match (
            &ack,
            self.volatile,
            self.server.recovery.is_some() && !self.numbered,
        ) {
            (None, false, true) => {
                let mut except: Vec<Str> = self.except.to_vec();
                if let Some(sid) = self.exclude.and_then(|s| self.server.sid(s)) {
                    except.push(Str::from(sid));
                }
                let rooms = self.rooms.to_vec();
                self.server
                    .log_event(self.nsp, || rooms.into(), || except.into(), encoded)
            }
            _ => None,
        };
        let frames: SmallVec<[Frame; 2]> = numbered.as_ref().unwrap_or(encoded).frames().collect();
        let Broadcast {
            server: s,
            nsp,
            exclude,
            rooms,
            except,
            volatile,
            compress,
            ..
        } = self;
        let sel = Selection {
            nsp,
            rooms: &rooms,
            except: &except,
            exclude,
            volatile,
        };
        let mut to = s.engine.batch_buffer();
        let mut polling: Vec<u32> = Vec::new();
        let mut acked: Vec<u32> = Vec::new();
        let len = if ack.is_some() {
            s.router.select(&sel, |slot, hot| {
                if hot.flags & POLLING != 0 {
                    polling.push(hot.conn);
                } else {
                    to.push(hot.conn);
                }
                acked.push(slot);
            })
        } else {
            let mut flagged = Vec::new();
            s.router.select_conns(&sel, &mut to, &mut flagged);
            let mut len = to.len();
            for slot in flagged {
                let hot = s.router.hot(slot);
                if volatile && hot.flags & BLOCKED != 0 {
                    continue;
                }
                if hot.flags & POLLING != 0 {
                    polling.push(hot.conn);
                } else {
                    to.push(hot.conn);
                }
                len += 1;
            }
            len
        };
        s.engine.push_batch(to, &frames, compress, volatile);
        for slot in polling {
            if let Some(conn) = s.engine.handle_at(slot) {
                s.engine.queue_polling(conn, &frames, volatile);
            }
        }
        let handle = ack.map(|(id, now, timeout, owner)| {
            s.acks
                .wait_broadcast(now, id, acked, Some(timeout), owner, &mut s.events)
        });
        // A long-polling queue may have overflowed: its connection closed.
        s.pump(None);
        if let Some(o) = outgoing {
            s.publish(o, encoded);
        }
        (s, Reached { len, handle })
    }

    /// The selected sockets.
    pub fn sockets(self) -> Vec<SocketHandle> {
        self.take().1
    }

    /// The selected sockets with their ids and rooms (`fetchSockets`).
    pub fn fetch(self) -> Vec<FetchedSocket> {
        let (server, handles) = self.take();
        handles
            .into_iter()
            .map(|socket| FetchedSocket {
                socket,
                sid: server.router.sid(socket).map(Str::from).unwrap_or_default(),
                rooms: server.router.rooms_of(socket),
            })
            .collect()
    }

    /// Makes every selected socket join `room` (`socketsJoin`). Returns how many were selected.
    /// In a cluster, every other node does the same with its own sockets.
    pub fn join(self, room: &str) -> usize {
        let outgoing = self.outgoing();
        let (server, handles) = self.take();
        for &s in &handles {
            let _ = server.join(s, room);
        }
        if let Some(o) = outgoing {
            server.publish_request(o, Remote::Join(room.to_owned()));
        }
        handles.len()
    }

    /// Makes every selected socket leave `room` (`socketsLeave`). Returns how many were selected.
    /// In a cluster, every other node does the same with its own sockets.
    pub fn leave(self, room: &str) -> usize {
        let outgoing = self.outgoing();
        let (server, handles) = self.take();
        for &s in &handles {
            let _ = server.leave(s, room);
        }
        if let Some(o) = outgoing {
            server.publish_request(o, Remote::Leave(room.to_owned()));
        }
        handles.len()
    }

    /// Disconnects every selected socket (`disconnectSockets`); with `close`, their whole
    /// connections. Returns how many were selected.
    /// In a cluster, every other node does the same with its own sockets.
    pub fn disconnect(self, close: bool) -> usize {
        let outgoing = self.outgoing();
        let (server, handles) = self.take();
        for &s in &handles {
            if close {
                if let Some(conn) = server.socket_connection(s) {
                    server.disconnect_connection(conn);
                }
            } else {
                let _ = server.disconnect(s);
            }
        }
        if let Some(o) = outgoing {
            server.publish_request(o, Remote::Disconnect(close));
        }
        handles.len()
    }

    /// The selected sockets, and the server to act on them.
    pub(super) fn take(self) -> (&'s mut Server<D>, Vec<SocketHandle>) {
        let sel = Selection {
            nsp: self.nsp,
            rooms: &self.rooms,
            except: &self.except,
            exclude: self.exclude,
            volatile: false,
        };
        let mut handles = Vec::new();
        self.server
            .router
            .select(&sel, |slot, _| handles.push(slot));
        let handles = handles
            .into_iter()
            .map(|slot| self.server.router.handle(slot))
            .collect();
        (self.server, handles)
    }
}

/// How many sockets a delivery reached, and the wait for their answers if asked.
struct Reached {
    len: usize,
    handle: Option<BroadcastAckHandle>,
}

/// A socket as [`Broadcast::fetch`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedSocket {
    /// The socket.
    pub socket: SocketHandle,
    /// Its public id.
    pub sid: Str,
    /// Its rooms, own id first.
    pub rooms: Vec<Str>,
}
