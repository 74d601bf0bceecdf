//! The async application API: namespaces and their handlers, sockets, acks and broadcasts.

use super::driver::BroadcastReplies;
use super::{lock, SocketIo};
use crate::packet::{self, Encoded, Payload};
use crate::{AckError, DisconnectReason, Error, SocketHandle, Str};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type AuthFn<D> = Arc<dyn Fn(Option<String>) -> BoxFuture<Result<D, Rejection>> + Send + Sync>;
type SocketFn<D> = Arc<dyn Fn(Socket<D>) -> BoxFuture<()> + Send + Sync>;
type EventFn<D> = Arc<dyn Fn(Socket<D>, Message<D>) -> BoxFuture<()> + Send + Sync>;
type DisconnectFn<D> = Arc<dyn Fn(Socket<D>, DisconnectReason) -> BoxFuture<()> + Send + Sync>;

/// The handlers of one namespace.
pub(crate) struct Handlers<D> {
    pub(crate) auth: Option<AuthFn<D>>,
    connection: Option<SocketFn<D>>,
    events: std::collections::HashMap<String, EventFn<D>>,
    disconnect: Option<DisconnectFn<D>>,
}

impl<D> Clone for Handlers<D> {
    fn clone(&self) -> Self {
        Handlers {
            auth: self.auth.clone(),
            connection: self.connection.clone(),
            events: self.events.clone(),
            disconnect: self.disconnect.clone(),
        }
    }
}

impl<D> Default for Handlers<D> {
    fn default() -> Self {
        Handlers {
            auth: None,
            connection: None,
            events: Default::default(),
            disconnect: None,
        }
    }
}

/// Why a connection to a namespace is refused: the client's `connect_error` gets
/// `message` as its message and `data` as its data.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// The message (`err.message` on the client).
    pub message: String,
    /// Extra data (`err.data` on the client).
    pub data: Option<serde_json::Value>,
}

impl Rejection {
    /// A refusal with a message and no data.
    pub fn new(message: impl Into<String>) -> Self {
        Rejection {
            message: message.into(),
            data: None,
        }
    }

    /// Adds data to the refusal.
    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = Some(data);
        self
    }
}

/// Registers the handlers of one namespace. Handlers registered after a socket connected do
/// not apply to that socket.
pub struct Namespace<D> {
    io: SocketIo<D>,
    name: String,
}

impl<D: Send + Sync + Clone + Default + 'static> Namespace<D> {
    pub(crate) fn new(io: SocketIo<D>, name: &str) -> Self {
        lock(&io.registry).nsps.entry(name.to_owned()).or_default();
        let n = name.to_owned();
        io.call(move |ctx| {
            if let Err(e) = ctx.server.add_namespace(&n) {
                tracing::warn!(%e, "namespace not added");
            }
        });
        Namespace {
            io,
            name: name.to_owned(),
        }
    }

    fn edit(&self, f: impl FnOnce(&mut Handlers<D>)) -> &Self {
        f(lock(&self.io.registry)
            .nsps
            .entry(self.name.clone())
            .or_default());
        self
    }

    /// The connection middleware: decides, from the client's auth payload (JSON text), whether
    /// it may join, and with which socket data. Without one, every client is accepted with
    /// `D::default()`.
    pub fn auth<F, Fut>(&self, f: F) -> &Self
    where
        F: Fn(Option<String>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<D, Rejection>> + Send + 'static,
    {
        self.edit(|h| h.auth = Some(Arc::new(move |a| Box::pin(f(a)))))
    }

    /// Runs when a socket has joined the namespace, before any of its events.
    pub fn on_connection<F, Fut>(&self, f: F) -> &Self
    where
        F: Fn(Socket<D>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.edit(|h| h.connection = Some(Arc::new(move |s| Box::pin(f(s)))))
    }

    /// Handles an event. A socket's events run one at a time, in the order they arrived.
    pub fn on<F, Fut>(&self, event: &str, f: F) -> &Self
    where
        F: Fn(Socket<D>, Message<D>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.edit(|h| {
            h.events
                .insert(event.to_owned(), Arc::new(move |s, m| Box::pin(f(s, m))));
        })
    }

    /// Runs when a socket left the namespace, with the reason.
    pub fn on_disconnect<F, Fut>(&self, f: F) -> &Self
    where
        F: Fn(Socket<D>, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.edit(|h| h.disconnect = Some(Arc::new(move |s, r| Box::pin(f(s, r)))))
    }
}

/// What the driver tells a socket's task.
pub(crate) enum SocketEvent {
    Message(packet::Event, Option<crate::AckRequest>),
    Disconnected(DisconnectReason),
}

/// Starts the task that runs a socket's handlers in order.
pub(crate) fn spawn_socket_task<D: Send + Sync + Clone + Default + 'static>(
    io: SocketIo<D>,
    handle: SocketHandle,
    sid: Str,
    nsp: String,
    data: Option<D>,
    handlers: Handlers<D>,
) -> mpsc::UnboundedSender<Box<SocketEvent>> {
    // Boxed events: the channel's first block holds 32 slots, so a slot's size is paid 32
    // times per socket whether or not anything is queued.
    let (tx, mut rx) = mpsc::unbounded_channel::<Box<SocketEvent>>();
    let socket = Socket {
        io,
        handle,
        id: sid,
        nsp: Arc::from(nsp),
        last_data: Arc::new(std::sync::Mutex::new(data)),
    };
    tokio::spawn(async move {
        if let Some(f) = &handlers.connection {
            f(socket.clone()).await;
        }
        while let Some(e) = rx.recv().await {
            match *e {
                SocketEvent::Message(event, ack) => {
                    if let Some(f) = handlers.events.get(event.name()) {
                        let ack = ack.map(|request| Ack {
                            socket: socket.clone(),
                            request,
                        });
                        f(socket.clone(), Message { event, ack }).await;
                    }
                }
                SocketEvent::Disconnected(reason) => {
                    if let Some(f) = &handlers.disconnect {
                        f(socket.clone(), reason).await;
                    }
                    break;
                }
            }
        }
    });
    tx
}

/// A connected socket, as its handlers see it. Cheap to clone; every call goes to the driver.
pub struct Socket<D> {
    io: SocketIo<D>,
    handle: SocketHandle,
    id: Str,
    nsp: Arc<str>,
    /// The data last read from the core, still there for disconnect handlers once the socket
    /// (and its data in the core) is gone.
    last_data: Arc<std::sync::Mutex<Option<D>>>,
}

impl<D> Clone for Socket<D> {
    fn clone(&self) -> Self {
        Socket {
            io: self.io.clone(),
            handle: self.handle,
            id: self.id.clone(),
            nsp: self.nsp.clone(),
            last_data: self.last_data.clone(),
        }
    }
}

impl<D> std::fmt::Debug for Socket<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Socket({} {})", self.nsp, self.id)
    }
}

/// Waiting for an ack timed out, or the socket left first.
pub type AckTimeout = AckError;

impl<D: Send + Sync + Clone + Default + 'static> Socket<D> {
    /// The socket's public id (also its own room).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The core's handle of this socket.
    pub fn handle(&self) -> SocketHandle {
        self.handle
    }

    /// The namespace's name.
    pub fn namespace(&self) -> &str {
        &self.nsp
    }

    /// The server this socket belongs to.
    pub fn io(&self) -> &SocketIo<D> {
        &self.io
    }

    /// Emits an event to this socket. Arguments as for [`Encoded::event`].
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), Error> {
        let e = Encoded::event(&self.nsp, None, event, args)?;
        let s = self.handle;
        self.io.call(move |ctx| {
            let _ = ctx.server.emit_encoded(s, &e);
        });
        Ok(())
    }

    /// Emits `event` with the arguments of a received event (binary included), without parsing
    /// them: `message-back` style echoes and relays.
    pub fn emit_args_of(&self, event: &str, received: &packet::Event) -> Result<(), Error> {
        let e = Encoded::event_with_args_of(&self.nsp, None, event, received)?;
        let s = self.handle;
        self.io.call(move |ctx| {
            let _ = ctx.server.emit_encoded(s, &e);
        });
        Ok(())
    }

    /// Emits an event and waits for the client's answer, at most `timeout`.
    pub async fn emit_with_ack<T: Serialize + Send + 'static>(
        &self,
        event: &str,
        args: T,
        timeout: Duration,
    ) -> Result<Payload, AckError> {
        let (tx, rx) = oneshot::channel();
        let (s, event) = (self.handle, event.to_owned());
        self.io.call(move |ctx| {
            let now = ctx.now();
            match ctx.server.emit_with_ack(now, s, &event, &args, timeout) {
                Ok(h) => {
                    ctx.acks.insert(h, tx);
                }
                Err(_) => {
                    let _ = tx.send(Err(AckError::Disconnected));
                }
            }
        });
        rx.await.unwrap_or(Err(AckError::Disconnected))
    }

    /// Joins a room.
    pub fn join(&self, room: impl Into<String>) {
        let (s, room) = (self.handle, room.into());
        self.io.call(move |ctx| drop(ctx.server.join(s, &room)));
    }

    /// Leaves a room.
    pub fn leave(&self, room: impl Into<String>) {
        let (s, room) = (self.handle, room.into());
        self.io.call(move |ctx| drop(ctx.server.leave(s, &room)));
    }

    /// The rooms of this socket (its own id first).
    pub async fn rooms(&self) -> Vec<Str> {
        let s = self.handle;
        self.io
            .query(move |ctx| ctx.server.rooms_of(s))
            .await
            .unwrap_or_default()
    }

    /// This socket's data (from the connection middleware). Once the socket is gone (in a
    /// disconnect handler), the data it had last.
    pub async fn data(&self) -> Option<D> {
        let s = self.handle;
        let now = self
            .io
            .query(move |ctx| ctx.server.data(s).cloned())
            .await
            .flatten();
        let mut last = lock(&self.last_data);
        if now.is_some() {
            last.clone_from(&now);
            return now;
        }
        last.clone()
    }

    /// A broadcast to `room` from this socket: everyone in it but this socket.
    pub fn to(&self, room: impl Into<Str>) -> BroadcastOp<D> {
        self.broadcast().to(room)
    }

    /// A broadcast to every other socket of the namespace (`socket.broadcast`).
    pub fn broadcast(&self) -> BroadcastOp<D> {
        BroadcastOp::new(self.io.clone(), self.nsp.to_string(), Some(self.handle))
    }

    /// Disconnects this socket from its namespace.
    pub fn disconnect(&self) {
        let s = self.handle;
        self.io.call(move |ctx| drop(ctx.server.disconnect(s)));
    }
}

/// An event a client sent, with the means to answer it if it asked for an answer.
pub struct Message<D> {
    /// Its name and arguments.
    pub event: packet::Event,
    ack: Option<Ack<D>>,
}

impl<D: Send + Sync + Clone + Default + 'static> Message<D> {
    /// The event's name.
    pub fn name(&self) -> &str {
        self.event.name()
    }

    /// The arguments, deserialized as a sequence (a tuple, a `Vec`...).
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        self.event.args()
    }

    /// Whether the client waits for an answer.
    pub fn wants_ack(&self) -> bool {
        self.ack.is_some()
    }

    /// Answers the client (a no-op if it did not ask); the message is used up, so it is
    /// answered at most once. Arguments as for [`Encoded::ack`].
    pub fn ack<T: Serialize + ?Sized>(self, args: &T) {
        if let Some(a) = self.ack {
            a.send(args);
        }
    }

    /// Answers with the very arguments received (binary included), without parsing them.
    pub fn ack_with_same_args(self) {
        if let Some(a) = self.ack {
            match Encoded::ack_with_args_of(&a.socket.nsp, a.request.id(), &self.event) {
                Ok(e) => a.send_encoded(e),
                Err(e) => tracing::warn!(%e, "ack not encoded"),
            }
        }
    }

    /// The ack, to answer later or from elsewhere.
    pub fn take_ack(&mut self) -> Option<Ack<D>> {
        self.ack.take()
    }
}

/// The means to answer one event, once.
#[must_use = "the client waits for this acknowledgement"]
pub struct Ack<D> {
    socket: Socket<D>,
    request: crate::AckRequest,
}

impl<D: Send + Sync + Clone + Default + 'static> Ack<D> {
    /// Sends the answer.
    pub fn send<T: Serialize + ?Sized>(self, args: &T) {
        match Encoded::ack(&self.socket.nsp, self.request.id(), args) {
            Ok(e) => self.send_encoded(e),
            Err(e) => tracing::warn!(%e, "ack not encoded"),
        }
    }

    fn send_encoded(self, e: Encoded) {
        let request = self.request;
        self.socket
            .io
            .call(move |ctx| drop(ctx.server.ack_encoded(request, &e)));
    }
}

/// A broadcast under construction: `to`, `except`, `volatile`, then an action.
pub struct BroadcastOp<D> {
    io: SocketIo<D>,
    sel: Selection,
}

/// What a [`BroadcastOp`] selects, sent to the driver to be applied there.
struct Selection {
    nsp: String,
    exclude: Option<SocketHandle>,
    rooms: Vec<Str>,
    except: Vec<Str>,
    volatile: bool,
    compress: bool,
}

impl Selection {
    fn build<D>(self, server: &mut crate::Server<D>) -> Option<crate::Broadcast<'_, D>> {
        let mut b = match self.exclude {
            Some(s) => server.broadcast_from(s)?,
            None => {
                let n = server.namespace(&self.nsp)?;
                server.to_namespace(n)
            }
        };
        for r in self.rooms {
            b = b.to(r);
        }
        for r in self.except {
            b = b.except(r);
        }
        if self.volatile {
            b = b.volatile();
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
            },
        }
    }

    /// Adds a room (the union of rooms is reached, each socket once).
    pub fn to(mut self, room: impl Into<Str>) -> Self {
        self.sel.rooms.push(room.into());
        self
    }

    /// Leaves out the members of a room.
    pub fn except(mut self, room: impl Into<Str>) -> Self {
        self.sel.except.push(room.into());
        self
    }

    /// Drops the packet for connections that cannot take it now.
    pub fn volatile(mut self) -> Self {
        self.sel.volatile = true;
        self
    }

    /// Whether to ask the WebSocket layer to compress (default true).
    pub fn compress(mut self, compress: bool) -> Self {
        self.sel.compress = compress;
        self
    }

    /// Emits an event to the selection, encoded once, here, before it reaches the driver.
    pub fn emit<T: Serialize + ?Sized>(self, event: &str, args: &T) -> Result<(), Error> {
        let e = Encoded::event(&self.sel.nsp, None, event, args)?;
        self.emit_encoded(e);
        Ok(())
    }

    /// Sends an already encoded packet to the selection.
    pub fn emit_encoded(self, encoded: Encoded) {
        let sel = self.sel;
        self.io.call(move |ctx| {
            if let Some(b) = sel.build(&mut ctx.server) {
                b.emit_encoded(&encoded);
            }
        });
    }

    /// Emits `event` with the arguments of a received event (binary included), unparsed.
    pub fn emit_args_of(self, event: &str, received: &packet::Event) -> Result<(), Error> {
        let e = Encoded::event_with_args_of(&self.sel.nsp, None, event, received)?;
        self.emit_encoded(e);
        Ok(())
    }

    /// Emits an event every recipient must answer (one ack id for all); resolves with the
    /// answers when all came or `timeout` passed, with how many sockets were reached, and
    /// whether it timed out.
    pub async fn emit_with_ack<T: Serialize + Send + 'static>(
        self,
        event: &str,
        args: T,
        timeout: Duration,
    ) -> Replies {
        let (tx, rx) = oneshot::channel();
        let (sel, event) = (self.sel, event.to_owned());
        self.io.call(move |ctx| {
            let now = ctx.now();
            let sent = sel
                .build(&mut ctx.server)
                .map(|b| b.emit_with_ack(now, &event, &args, timeout));
            match sent {
                Some(Ok((h, _))) => {
                    // The broadcast may already be over (nobody reached): its event is still
                    // queued in the core, so the reply channel is in place in time.
                    ctx.broadcast_acks.insert(h, tx);
                }
                _ => {
                    let _ = tx.send((Vec::new(), 0, false));
                }
            }
        });
        rx.await.unwrap_or((Vec::new(), 0, false))
    }

    async fn with<R: Send + 'static>(
        self,
        f: impl FnOnce(crate::Broadcast<'_, D>) -> R + Send + 'static,
    ) -> Option<R> {
        let sel = self.sel;
        self.io
            .query(move |ctx| sel.build(&mut ctx.server).map(f))
            .await
            .flatten()
    }

    /// Makes every selected socket join `room`; returns how many were selected.
    pub async fn join(self, room: &str) -> usize {
        let room = room.to_owned();
        self.with(move |b| b.join(&room)).await.unwrap_or(0)
    }

    /// Makes every selected socket leave `room`; returns how many were selected.
    pub async fn leave(self, room: &str) -> usize {
        let room = room.to_owned();
        self.with(move |b| b.leave(&room)).await.unwrap_or(0)
    }

    /// Disconnects every selected socket (with `close`, their whole connections).
    pub async fn disconnect(self, close: bool) -> usize {
        self.with(move |b| b.disconnect(close)).await.unwrap_or(0)
    }

    /// The selected sockets with their ids and rooms.
    pub async fn fetch(self) -> Vec<crate::FetchedSocket> {
        self.with(|b| b.fetch()).await.unwrap_or_default()
    }
}

/// Replies of a broadcast with acks: each answer with its socket, how many sockets were
/// reached, and whether the timeout ended the wait.
pub type Replies = BroadcastReplies;
