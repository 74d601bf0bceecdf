//! The application's calls: deciding connect requests, rooms, emits, acks, disconnects.

use super::broadcast::Broadcast;
use super::event::{AckHandle, AckRequest, ConnectRequest, Event};
use super::{Error, Server};
use crate::handle::{ConnectionHandle, NamespaceId, SocketHandle};
use crate::packet::Encoded;
use crate::{DisconnectReason, Str};
use serde::Serialize;
use std::time::{Duration, Instant};

impl<D> Server<D> {
    /// Removes a connect request from its connection's pending list: it is decided now.
    pub(super) fn take_pending(&mut self, request: &ConnectRequest) -> Result<(), Error> {
        let c = self
            .clients
            .get_mut(request.conn)
            .ok_or(Error::UnknownRequest)?;
        // Request numbers are unique: at most one matches.
        if c.remove_pending(|n, seq| n == request.nsp && seq == request.seq) == 0 {
            return Err(Error::UnknownRequest);
        }
        self.connect_settled(request.nsp);
        Ok(())
    }

    /// Accepts a namespace connection: the socket joins with `data` and the client gets its id.
    /// A recovering socket ([`ConnectRequest::is_recovery`]) gets its id, rooms and missed
    /// packets back, with `data` as its data (see [`restored_data`](Self::restored_data)).
    pub fn accept(&mut self, request: ConnectRequest, data: D) -> Result<SocketHandle, Error> {
        self.take_pending(&request)?;
        let (conn, nsp, auth) = (request.conn, request.nsp, request.auth.clone());
        let opened = match self.take_restoration(&request) {
            Some(restore) => self.restore(conn, nsp, restore, Some(data), auth),
            None => self.open_socket(conn, nsp, None, data, auth),
        };
        // A child whose only CONNECT failed to open goes.
        self.remove_if_unused(nsp);
        opened
    }

    /// Opens a socket on a connection: a new one (fresh ids), or a restored one (its ids and
    /// rooms back; its missed packets were sent just before). The CONNECT reply goes last.
    pub(super) fn open_socket(
        &mut self,
        conn: ConnectionHandle,
        nsp: NamespaceId,
        restored: Option<super::recovery::Restored>,
        data: D,
        auth: Option<Str>,
    ) -> Result<SocketHandle, Error> {
        let recovered = restored.is_some();
        let (sid, pid, rooms, history) = match restored {
            Some(r) => (r.sid, Some(r.pid), r.rooms, r.history),
            None => match self.fresh_sid().and_then(|s| Ok((s, self.fresh_pid()?))) {
                Ok((sid, pid)) => (sid, pid, Vec::new(), Default::default()),
                Err(e) => {
                    // No id, no socket: the client is refused rather than left waiting.
                    let refusal = serde_json::json!({"message": "Internal error"});
                    if let Some(name) = self.router.nsp_name(nsp) {
                        if let Ok(encoded) = self.parser().connect_error(name, &refusal) {
                            self.send_encoded(conn, &encoded, false);
                        }
                    }
                    return Err(e.into());
                }
            },
        };
        let nsp_name = self.live_nsp_name(nsp)?;
        let reply = super::recovery::ConnectReply {
            sid: sid.as_str(),
            pid: pid.as_ref().map(|p| p.as_str()),
        };
        let encoded = self.parser().connect(&nsp_name, Some(&reply))?;
        let socket = self
            .router
            .insert_socket(nsp, sid, conn, 0)
            .ok_or(Error::RemovedNamespace)?;
        let sid = sid.to_str();
        if let Some(c) = self.clients.get_mut(conn) {
            c.sockets.push((nsp, socket));
        }
        if self.socks.len() <= socket.slot as usize {
            self.socks.resize_with(socket.slot as usize + 1, || None);
        }
        self.socks[socket.slot as usize] = Some(data);
        if let Some(auth) = auth.filter(|a| !a.is_empty()) {
            self.auths.insert(socket.slot, auth);
        }
        if let Some(pid) = pid {
            self.register_pid(socket, pid, history);
        }
        self.sync_flags(conn);
        self.send_encoded(conn, &encoded, false);
        self.events.push_back(Event::Connected {
            socket,
            sid: sid.clone(),
            nsp,
            recovered,
        });
        // Its own-id room comes to exist with it.
        self.room_events(nsp, socket, sid.clone(), Some(true), true);
        // Back in its rooms (not a change: its history came back with it).
        for room in rooms.iter().filter(|r| **r != sid) {
            if let Some(crate::router::Joined::Joined { created }) = self.router.join(socket, room)
            {
                self.room_change(socket, room, created.then_some(true), true);
            }
        }
        Ok(socket)
    }

    /// Refuses a namespace connection: the client's `connect_error` gets
    /// `{"message": message, "data": data}`.
    pub fn reject<T: Serialize + ?Sized>(
        &mut self,
        request: ConnectRequest,
        message: &str,
        data: Option<&T>,
    ) -> Result<(), Error> {
        self.take_pending(&request)?;
        drop(self.take_restoration(&request));
        #[derive(Serialize)]
        struct Refusal<'a, T: ?Sized> {
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            data: Option<&'a T>,
        }
        let nsp = self.live_nsp_name(request.nsp)?;
        let e = self
            .parser()
            .connect_error(&nsp, &Refusal { message, data });
        self.remove_if_unused(request.nsp);
        self.send_encoded(request.conn, &e?, false);
        Ok(())
    }

    /// The socket's public id (also the name of its own room).
    pub fn sid(&self, socket: SocketHandle) -> Option<&str> {
        self.router.sid(socket)
    }

    /// The socket with this public id.
    pub fn socket_by_sid(&self, sid: &str) -> Option<SocketHandle> {
        self.router.by_sid(sid)
    }

    /// The socket's namespace.
    pub fn socket_namespace(&self, socket: SocketHandle) -> Option<NamespaceId> {
        self.router.namespace_of(socket)
    }

    /// The socket's connection.
    pub fn socket_connection(&self, socket: SocketHandle) -> Option<ConnectionHandle> {
        self.conn_of(socket)
    }

    /// The sockets of a connection, one per namespace joined.
    pub fn connection_sockets(&self, conn: ConnectionHandle) -> Vec<SocketHandle> {
        self.clients
            .get(conn)
            .map(|c| c.sockets.iter().map(|(_, s)| *s).collect())
            .unwrap_or_default()
    }

    /// The connection's Engine.IO session id.
    pub fn connection_sid(&self, conn: ConnectionHandle) -> Option<&str> {
        self.engine.connection_sid(conn)
    }

    /// The user data of a socket.
    pub fn data(&self, socket: SocketHandle) -> Option<&D> {
        self.router
            .contains(socket)
            .then(|| self.socks[socket.slot as usize].as_ref())?
    }

    /// The user data of a socket, mutably.
    pub fn data_mut(&mut self, socket: SocketHandle) -> Option<&mut D> {
        if !self.router.contains(socket) {
            return None;
        }
        self.socks[socket.slot as usize].as_mut()
    }

    /// Number of connected sockets, all namespaces together.
    pub fn socket_count(&self) -> usize {
        self.router.socket_count()
    }

    /// Number of open Engine.IO sessions.
    pub fn connection_count(&self) -> usize {
        self.engine.connection_count()
    }

    /// Makes a socket join a room (created if needed). `Ok(false)` if it was already in it.
    pub fn join(&mut self, socket: SocketHandle, room: &str) -> Result<bool, Error> {
        let joined = self.router.join(socket, room).ok_or(Error::UnknownSocket)?;
        let crate::router::Joined::Joined { created } = joined else {
            return Ok(false);
        };
        self.record_membership(socket, room, true);
        self.room_change(socket, room, created.then_some(true), true);
        Ok(true)
    }

    /// Makes a socket leave a room (deleted when empty). `Ok(false)` if it was not in it.
    pub fn leave(&mut self, socket: SocketHandle, room: &str) -> Result<bool, Error> {
        let left = self
            .router
            .leave(socket, room)
            .ok_or(Error::UnknownSocket)?;
        let crate::router::Left::Left { deleted } = left else {
            return Ok(false);
        };
        self.record_membership(socket, room, false);
        self.room_change(socket, room, deleted.then_some(false), false);
        Ok(true)
    }

    /// [`room_events`](Self::room_events) for an application's join or leave: nothing is
    /// looked up or allocated unless room events are on.
    pub(super) fn room_change(
        &mut self,
        socket: SocketHandle,
        room: &str,
        lifecycle: Option<bool>,
        joined: bool,
    ) {
        if !self.config().room_events {
            // A cluster may still need to know a room came or went (sharded subscriptions).
            if let (Some(created), true) = (lifecycle, self.cluster.is_some()) {
                if let Some(nsp) = self.router.namespace_of(socket) {
                    self.cluster_room(nsp, room, created);
                }
            }
            return;
        }
        if let Some(nsp) = self.router.namespace_of(socket) {
            self.room_events(nsp, socket, Str::from(room), lifecycle, joined);
        }
    }

    /// Reports a join (`joined`) or a leave, and a room created (`Some(true)`) or deleted
    /// (`Some(false)`), when room events are on; creation before the join, deletion after
    /// the leave.
    pub(super) fn room_events(
        &mut self,
        nsp: NamespaceId,
        socket: SocketHandle,
        room: Str,
        lifecycle: Option<bool>,
        joined: bool,
    ) {
        if let Some(created) = lifecycle {
            self.cluster_room(nsp, &room, created);
        }
        if !self.config().room_events {
            return;
        }
        if lifecycle == Some(true) {
            self.events.push_back(Event::RoomCreated {
                nsp,
                room: room.clone(),
            });
        }
        let sid = self.router.sid(socket).map(Str::from).unwrap_or_default();
        let membership = if joined {
            Event::RoomJoined {
                nsp,
                room: room.clone(),
                socket,
                sid,
            }
        } else {
            Event::RoomLeft {
                nsp,
                room: room.clone(),
                socket,
                sid,
            }
        };
        self.events.push_back(membership);
        if lifecycle == Some(false) {
            self.events.push_back(Event::RoomDeleted { nsp, room });
        }
    }

    /// Makes a socket leave every room it joined (it stays in its own-id room).
    pub fn leave_all(&mut self, socket: SocketHandle) -> Result<(), Error> {
        let nsp = self
            .router
            .namespace_of(socket)
            .ok_or(Error::UnknownSocket)?;
        let left = self.router.leave_all(socket);
        for (room, _) in &left {
            self.record_membership(socket, room, false);
        }
        self.room_left_events(nsp, socket, left);
        Ok(())
    }

    pub(super) fn room_left_events(
        &mut self,
        nsp: NamespaceId,
        socket: SocketHandle,
        left: Vec<(Str, bool)>,
    ) {
        for (room, deleted) in left {
            self.room_events(nsp, socket, room, deleted.then_some(false), false);
        }
    }

    /// The rooms of a socket: its own id first, then the rooms it joined.
    pub fn rooms_of(&self, socket: SocketHandle) -> Vec<Str> {
        self.router.rooms_of(socket)
    }

    /// The members of a room of a namespace (a socket id names that socket's own room).
    pub fn members(&self, nsp: NamespaceId, room: &str) -> Vec<SocketHandle> {
        self.router.members(nsp, room)
    }

    /// The rooms of a namespace with their member counts (own-id rooms not listed).
    pub fn rooms(&self, nsp: NamespaceId) -> Vec<(Str, usize)> {
        self.router
            .rooms(nsp)
            .map(|(n, c)| (n.clone(), c))
            .collect()
    }

    /// Emits an event to one socket.
    pub fn emit<T: Serialize + ?Sized>(
        &mut self,
        socket: SocketHandle,
        event: &str,
        args: &T,
    ) -> Result<(), Error> {
        let nsp = self
            .router
            .namespace_of(socket)
            .ok_or(Error::UnknownSocket)?;
        let e = self
            .parser()
            .event(&self.live_nsp_name(nsp)?, None, event, args)?;
        self.emit_encoded(socket, &e)
    }

    /// Sends an already encoded packet (event or ack) to one socket. With recovery on, an
    /// event without an ack is logged and gets its offset, as with [`emit`](Self::emit).
    pub fn emit_encoded(&mut self, socket: SocketHandle, encoded: &Encoded) -> Result<(), Error> {
        let conn = self.conn_of(socket).ok_or(Error::UnknownSocket)?;
        // As the reference: with the stream numbering packets, an emit to one socket is a
        // broadcast to its own room, so that it is in the stream too.
        if self.numbered_by_stream() && encoded.is_event_without_ack() {
            let nsp = self
                .router
                .namespace_of(socket)
                .ok_or(Error::UnknownSocket)?;
            let sid = Str::from(self.router.sid(socket).ok_or(Error::UnknownSocket)?);
            self.to_namespace(nsp).to(sid).emit_encoded(encoded);
            return Ok(());
        }
        let numbered = self.log_direct(socket, encoded);
        self.send_encoded(conn, numbered.as_ref().unwrap_or(encoded), false);
        Ok(())
    }

    /// Emits an event to one socket and waits for its answer: an [`Event::Ack`] with this
    /// handle comes when it answers, when `timeout` passes, or when it disconnects. A
    /// `timeout` too large to fall on the clock (`Duration::MAX`) waits without one.
    pub fn emit_with_ack<T: Serialize + ?Sized>(
        &mut self,
        now: Instant,
        socket: SocketHandle,
        event: &str,
        args: &T,
        timeout: Duration,
    ) -> Result<AckHandle, Error> {
        let conn = self.conn_of(socket).ok_or(Error::UnknownSocket)?;
        let nsp = self
            .router
            .namespace_of(socket)
            .ok_or(Error::UnknownSocket)?;
        let ack_id = self.next_ack_id(nsp);
        let e = self
            .parser()
            .event(&self.live_nsp_name(nsp)?, Some(ack_id), event, args)?;
        let handle = self.acks.wait_single(now, socket, ack_id, Some(timeout));
        self.send_encoded(conn, &e, false);
        Ok(handle)
    }

    /// Answers an event the client asked to be acknowledged; the request is used up.
    pub fn ack<T: Serialize + ?Sized>(
        &mut self,
        request: AckRequest,
        args: &T,
    ) -> Result<(), Error> {
        let AckRequest { socket, id } = request;
        let conn = self.conn_of(socket).ok_or(Error::UnknownSocket)?;
        let nsp = self
            .router
            .namespace_of(socket)
            .ok_or(Error::UnknownSocket)?;
        let e = self.parser().ack(&self.live_nsp_name(nsp)?, id, args)?;
        self.send_encoded(conn, &e, false);
        Ok(())
    }

    /// Answers an ack request with a packet already encoded for it
    /// ([`Encoded::ack`] with [`AckRequest::id`]): encoding can then happen off the core's
    /// thread.
    pub fn ack_encoded(&mut self, request: AckRequest, encoded: &Encoded) -> Result<(), Error> {
        let conn = self.conn_of(request.socket).ok_or(Error::UnknownSocket)?;
        self.send_encoded(conn, encoded, false);
        Ok(())
    }

    /// Disconnects a socket from its namespace (the client is told with a DISCONNECT).
    pub fn disconnect(&mut self, socket: SocketHandle) -> Result<(), Error> {
        let conn = self.conn_of(socket).ok_or(Error::UnknownSocket)?;
        let nsp = self
            .router
            .namespace_of(socket)
            .ok_or(Error::UnknownSocket)?;
        let e = self.parser().disconnect(&self.live_nsp_name(nsp)?)?;
        self.send_encoded(conn, &e, false);
        self.remove_socket(socket, DisconnectReason::ServerNamespaceDisconnect);
        Ok(())
    }

    /// `socket.disconnect(true)`: every socket of the connection is disconnected from its
    /// namespace (told with a DISCONNECT, so the client does not come back, and nothing is
    /// kept for recovery), then the connection closes.
    pub fn disconnect_connection(&mut self, conn: ConnectionHandle) {
        for s in self.connection_sockets(conn) {
            let _ = self.disconnect(s);
        }
        let _ = self.close_connection(conn);
    }

    /// Closes a whole connection: every socket of it disconnects ([`DisconnectReason::ForcedClose`]).
    pub fn close_connection(&mut self, conn: ConnectionHandle) -> Result<(), Error> {
        if !self.engine.contains(conn) {
            return Err(Error::UnknownConnection);
        }
        self.close(conn, DisconnectReason::ForcedClose);
        Ok(())
    }

    /// Closes every connection, telling each client with an Engine.IO `close` packet.
    pub fn shutdown(&mut self) {
        let live: Vec<ConnectionHandle> = self.clients.iter().map(|c| c.conn).collect();
        for h in live {
            self.close(h, DisconnectReason::ServerShuttingDown);
        }
        // Sessions that never opened a Socket.IO client (none today) would be closed here too.
        self.engine.shutdown();
        self.pump(None);
    }

    /// Starts a broadcast in a namespace: every socket of it, narrowed with the builder.
    pub fn to_namespace(&mut self, nsp: NamespaceId) -> Broadcast<'_, D> {
        Broadcast::new(self, nsp, None)
    }

    /// Starts a broadcast from a socket: every other socket of its namespace
    /// (`socket.broadcast`), narrowed with the builder. `None` if the socket is gone.
    pub fn broadcast_from(&mut self, socket: SocketHandle) -> Option<Broadcast<'_, D>> {
        let nsp = self.router.namespace_of(socket)?;
        Some(Broadcast::new(self, nsp, Some(socket)))
    }
}
