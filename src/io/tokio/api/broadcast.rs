//! Broadcast operators (`to`, `in`, `except`, `local`, `volatile`, `compress`, `timeout`) and
//! what they act on: emits, acks from many sockets, and the sockets themselves
//! (`fetchSockets`, `socketsJoin`, `socketsLeave`, `disconnectSockets`).

use super::socket::NO_TIMEOUT;
use super::SocketIo;
use crate::io::tokio::driver::{CallFn, ClusterResult};
use crate::io::tokio::shared::{CallError, Replies};
use crate::packet::{Encoded, Payload};
use crate::{AckError, ClusterError, ClusterReply, Server, SocketHandle, Str};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;
use tokio::sync::oneshot;

/// A broadcast under construction: `to`, `except`, `volatile`..., then an action. The same
/// operators as Node's `BroadcastOperator`, on the server, a namespace or a socket.
pub struct BroadcastOp<D: Send + Sync + Clone + Default + 'static> {
    pub(crate) io: SocketIo<D>,
    pub(crate) sel: Selection,
    timeout: Option<Duration>,
}

/// What a [`BroadcastOp`] selects, sent to the driver to be applied there.
#[derive(Clone)]
pub(crate) struct Selection {
    nsp: String,
    exclude: Option<SocketHandle>,
    rooms: Vec<Str>,
    except: Vec<Str>,
    volatile: bool,
    compress: bool,
    local: bool,
}

/// Emits `encoded` to what `sel` selects, telling the `on_any_outgoing` listeners.
fn emit_in<D: Send + Sync + Clone + Default + 'static>(
    ctx: &mut crate::io::tokio::driver::Ctx<Server<D>>,
    sel: &Selection,
    encoded: &Encoded,
) {
    ctx.emit_observed(
        encoded,
        |server| sel.build(server).map(|b| b.sockets()).unwrap_or_default(),
        |server| sel.build(server).map_or(0, |b| b.emit_encoded(encoded)),
    );
}

impl Selection {
    pub(crate) fn build<'s, D>(
        &self,
        server: &'s mut crate::Server<D>,
    ) -> Option<crate::Broadcast<'s, D>> {
        // A socket that has left (a `disconnecting` listener telling its rooms) is in none of
        // them any more: the broadcast goes on without it.
        let from = self.exclude.filter(|&s| server.sid(s).is_some());
        let mut b = match from {
            Some(s) => server.broadcast_from(s)?,
            None => {
                let n = server.namespace(&self.nsp)?;
                server.to_namespace(n)
            }
        };
        for r in &self.rooms {
            b = b.to(r.clone());
        }
        for r in &self.except {
            b = b.except(r.clone());
        }
        if self.volatile {
            b = b.volatile();
        }
        if self.local {
            b = b.local();
        }
        Some(b.compress(self.compress))
    }
}

impl<D: Send + Sync + Clone + Default + 'static> BroadcastOp<D> {
    pub(crate) fn new(io: SocketIo<D>, nsp: String, exclude: Option<SocketHandle>) -> Self {
        BroadcastOp {
            io,
            sel: Selection {
                nsp,
                exclude,
                rooms: Vec::new(),
                except: Vec::new(),
                volatile: false,
                compress: true,
                local: false,
            },
            timeout: None,
        }
    }

    /// Keeps the operation on this node: in a cluster, nothing is published (`local`).
    pub fn local(mut self) -> Self {
        self.sel.local = true;
        self
    }

    /// Adds a room (`to`): the union of rooms is reached, each socket once.
    pub fn to(mut self, room: impl Into<Str>) -> Self {
        self.sel.rooms.push(room.into());
        self
    }

    /// The same as [`to`](Self::to) (`in`, a Rust keyword).
    pub fn in_(self, room: impl Into<Str>) -> Self {
        self.to(room)
    }

    /// Leaves out the members of a room (`except`).
    pub fn except(mut self, room: impl Into<Str>) -> Self {
        self.sel.except.push(room.into());
        self
    }

    /// Drops the packet for connections that cannot take it now (`volatile`).
    pub fn volatile(mut self) -> Self {
        self.sel.volatile = true;
        self
    }

    /// Whether to ask the WebSocket layer to compress (`compress`, default true; this server
    /// negotiates no compression, so the flag is carried to other nodes only).
    pub fn compress(mut self, compress: bool) -> Self {
        self.sel.compress = compress;
        self
    }

    /// Bounds the wait of [`emit_with_ack`](Self::emit_with_ack) (`timeout(ms)`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Emits an event to the selection (`emit`), encoded once, here, before it reaches the
    /// driver. Never waits: refused with [`CallError::Full`] when the call queue is full.
    ///
    /// On a parent namespace ([`SocketIo::parent_namespace`]) it reaches the same selection
    /// in each of its children (`parentNsp.emit`, `parentNsp.to(room).emit`); the parent's
    /// other actions find no namespace, as Node's, whose parent has only `emit`.
    pub fn emit<T: Serialize + ?Sized>(self, event: &str, args: &T) -> Result<(), CallError> {
        let children = super::lock(&self.io.shared.registry).children_of(&self.sel.nsp);
        if let Some(children) = children {
            return self.emit_to_children(children, event, args);
        }
        let e = self
            .io
            .parser()
            .event(&self.sel.nsp, None, event, args)
            .map_err(crate::Error::from)?;
        let link = self.io.link.clone();
        link.try_call(self.emit_call(e))
    }

    /// Sends an already encoded packet to the selection. Never waits; if the call queue is
    /// full, the refusal is logged and counted ([`SocketIo::refused_calls`]).
    pub fn emit_encoded(self, encoded: Encoded) {
        let link = self.io.link.clone();
        link.call_or_log("broadcast", self.emit_call(encoded));
    }

    fn emit_call(self, encoded: Encoded) -> CallFn<Server<D>> {
        let sel = self.sel;
        Box::new(move |ctx| emit_in(ctx, &sel, &encoded))
    }

    /// Each child's packet names it: encoded here once per child, and sent in one call.
    fn emit_to_children<T: Serialize + ?Sized>(
        self,
        children: Vec<String>,
        event: &str,
        args: &T,
    ) -> Result<(), CallError> {
        let parser = self.io.parser();
        let mut each = Vec::with_capacity(children.len());
        for child in children {
            let e = parser.event(&child, None, event, args);
            each.push((e.map_err(crate::Error::from)?, child));
        }
        let sel = self.sel;
        self.io.link.try_call(Box::new(move |ctx| {
            for (encoded, nsp) in each {
                emit_in(ctx, &Selection { nsp, ..sel.clone() }, &encoded);
            }
        }))
    }

    /// Emits an event every recipient must answer (`emitWithAck`, one ack id for all);
    /// resolves with each answer and the socket it came from when all came, or when the
    /// [`timeout`](Self::timeout) passed (then `timed_out` is set). Without a timeout it waits
    /// for every socket reached, each until it answers or leaves.
    pub async fn emit_with_ack<T: Serialize + Send + 'static>(
        self,
        event: &str,
        args: T,
    ) -> Replies {
        let (tx, rx) = oneshot::channel();
        let timeout = self.timeout.unwrap_or(NO_TIMEOUT);
        let (sel, event) = (self.sel, event.to_owned());
        let sent = self
            .io
            .link
            .call(Box::new(move |ctx| {
                let now = ctx.now();
                let sent = sel
                    .build(&mut ctx.server)
                    .map(|b| b.emit_with_ack(now, &event, &args, timeout));
                match sent {
                    Some(Ok((h, _))) => {
                        // The broadcast may already be over (nobody reached): its event is
                        // still queued in the core, so the reply channel is in place in time.
                        ctx.broadcast_acks.insert(h, tx);
                    }
                    _ => {
                        let _ = tx.send(Replies::default());
                    }
                }
            }))
            .await;
        if sent.is_err() {
            return Replies::default();
        }
        rx.await.unwrap_or_default()
    }

    pub(crate) async fn with<R: Send + 'static>(
        self,
        f: impl FnOnce(crate::Broadcast<'_, D>) -> R + Send + 'static,
    ) -> Option<R> {
        let sel = self.sel;
        self.io
            .query(move |ctx| sel.build(&mut ctx.server).map(f))
            .await
            .flatten()
    }

    /// Makes every selected socket join `room` (`socketsJoin`, on every node unless
    /// [`local`](Self::local)); returns how many of this node's were selected.
    pub async fn sockets_join(self, room: &str) -> usize {
        let room = room.to_owned();
        self.with(move |b| b.join(&room)).await.unwrap_or(0)
    }

    /// Makes every selected socket leave `room` (`socketsLeave`).
    pub async fn sockets_leave(self, room: &str) -> usize {
        let room = room.to_owned();
        self.with(move |b| b.leave(&room)).await.unwrap_or(0)
    }

    /// Disconnects every selected socket (`disconnectSockets(close)`); with `close`, their
    /// whole connections.
    pub async fn disconnect_sockets(self, close: bool) -> usize {
        self.with(move |b| b.disconnect(close)).await.unwrap_or(0)
    }

    /// The selected sockets of every node (`fetchSockets`; this node's only with
    /// [`local`](Self::local)), each with its id, rooms, data and handshake, and the means to
    /// act on it. `Err` with the reference's error if some node did not answer in time (the
    /// sockets that came are lost then, as in Node).
    pub async fn fetch_sockets(self) -> Result<Vec<RemoteSocket<D>>, FetchError>
    where
        D: Serialize,
    {
        let (io, sel) = (self.io, self.sel);
        let nsp = sel.nsp.clone();
        let (reply, error): ClusterResult = io
            .request(move |server, now| {
                sel.build(server)
                    .ok_or(crate::Error::UnknownNamespace(String::new()))?
                    .fetch_sockets(now)
            })
            .await?;
        match (reply, error) {
            (_, Some(e)) => Err(FetchError::Cluster(e)),
            (ClusterReply::Sockets(s), None) => Ok(s
                .into_iter()
                .map(|inner| RemoteSocket {
                    io: io.clone(),
                    nsp: nsp.clone(),
                    inner,
                })
                .collect()),
            _ => Err(FetchError::Call(CallError::Stopped)),
        }
    }
}

/// Why [`BroadcastOp::fetch_sockets`] has no answer.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The request did not reach the driver.
    #[error(transparent)]
    Call(#[from] CallError),
    /// Some node did not answer in time (the reference's "timeout reached: only N responses
    /// received out of M").
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// A socket `fetch_sockets` returned, on this node or another (Node's `RemoteSocket`): its
/// id, rooms, data and handshake as they were then, and operations that reach it wherever it
/// is (through its own room).
pub struct RemoteSocket<D: Send + Sync + Clone + Default + 'static> {
    io: SocketIo<D>,
    nsp: String,
    inner: crate::cluster::classic::RemoteSocket,
}

impl<D: Send + Sync + Clone + Default + 'static> std::fmt::Debug for RemoteSocket<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSocket")
            .field("nsp", &self.nsp)
            .field("id", &self.inner.id)
            .field("rooms", &self.inner.rooms)
            .finish()
    }
}

impl<D: Send + Sync + Clone + Default + 'static> RemoteSocket<D> {
    /// Its id.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// Its rooms, its own id included.
    pub fn rooms(&self) -> &[String] {
        &self.inner.rooms
    }

    /// Its data, deserialized (from the msgpack or JSON the node holding it sent).
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, rmpv::ext::Error> {
        rmpv::ext::from_value(self.inner.data.clone())
    }

    /// Its handshake, as Node's `socket.handshake` object (`headers`, `query`, `auth`...).
    pub fn handshake(&self) -> serde_json::Value {
        serde_json::to_value(&self.inner.handshake).unwrap_or_default()
    }

    fn own_room(&self) -> BroadcastOp<D> {
        self.io.of(&self.nsp).to(self.inner.id.as_str())
    }

    /// Emits to it (`remoteSocket.emit`).
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), CallError> {
        self.own_room().emit(event, args)
    }

    /// Emits an event and waits for its answer (`remoteSocket.emitWithAck`), for as long as
    /// the socket stays, as [`Socket::emit_with_ack`](super::Socket::emit_with_ack) does;
    /// [`timeout`](Self::timeout) bounds the wait. On another node, a socket that leaves
    /// without answering is never reported (the cluster protocol has no message for it, as in
    /// Node): there, only a timeout ends the wait.
    pub async fn emit_with_ack<T: Serialize + Send + 'static>(
        &self,
        event: &str,
        args: T,
    ) -> Result<Payload, AckError> {
        one_answer(self.own_room().emit_with_ack(event, args).await)
    }

    /// Emits with a bound on the ack's wait (`remoteSocket.timeout(ms).emitWithAck(...)`).
    pub fn timeout(&self, timeout: Duration) -> RemoteTimeout<'_, D> {
        RemoteTimeout {
            socket: self,
            timeout,
        }
    }

    /// Makes it join `room` (`remoteSocket.join`).
    pub async fn join(&self, room: &str) {
        self.own_room().sockets_join(room).await;
    }

    /// Makes it leave `room` (`remoteSocket.leave`).
    pub async fn leave(&self, room: &str) {
        self.own_room().sockets_leave(room).await;
    }

    /// Disconnects it (`remoteSocket.disconnect(close)`).
    pub async fn disconnect(&self, close: bool) {
        self.own_room().disconnect_sockets(close).await;
    }
}

/// An emit to one remote socket whose ack is waited for at most so long
/// (`remoteSocket.timeout(ms)`).
pub struct RemoteTimeout<'a, D: Send + Sync + Clone + Default + 'static> {
    socket: &'a RemoteSocket<D>,
    timeout: Duration,
}

impl<D: Send + Sync + Clone + Default + 'static> RemoteTimeout<'_, D> {
    /// Emits and waits for the answer (`remoteSocket.timeout(ms).emitWithAck(...)`): the
    /// arguments the client acked with (`[arg, ...]`; from a socket on another node, its
    /// first one only, as for broadcasts), where Node resolves with a list of the one answer.
    /// The reference's "operation has timed out" is [`AckError::Timeout`].
    pub async fn emit_with_ack<T: Serialize + Send + 'static>(
        &self,
        event: &str,
        args: T,
    ) -> Result<Payload, AckError> {
        let op = self.socket.own_room().timeout(self.timeout);
        one_answer(op.emit_with_ack(event, args).await)
    }
}

/// The answer of the one socket a room of its own reaches, as a single socket's ack is told:
/// nobody reached (it has left) is [`AckError::Disconnected`].
fn one_answer(replies: Replies) -> Result<Payload, AckError> {
    match replies.all().next() {
        Some(answer) => Ok(answer.clone()),
        None if replies.timed_out => Err(AckError::Timeout),
        None => Err(AckError::Disconnected),
    }
}
