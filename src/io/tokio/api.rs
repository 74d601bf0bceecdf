//! The async application API: the server handle, namespaces and their handlers, sockets,
//! acks and broadcasts. It sits on the driver ([`super::driver`]) and gives it, through
//! [`SocketHooks`], what the driver needs from up here.

use super::cluster::ServerSideMessage;
use super::driver::{self, CallFn, Cmd, Ctx, Link, SocketHooks};
use super::http::{self, IoService};
use super::shared::{
    inbox, lock, panic_message, AuthFn, BoxFuture, CallError, Rejection, Replies, SocketEvent,
    SocketRx, SocketTx,
};
use super::{Options, OptionsError};
use crate::packet::{self, Encoded, Parser, Payload};
use crate::{AckError, Config, DisconnectReason, Server, SocketHandle, Str};
use futures_util::FutureExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

type SocketFn<D> = Arc<dyn Fn(Socket<D>) -> BoxFuture<()> + Send + Sync>;
type EventFn<D> = Arc<dyn Fn(Socket<D>, Message<D>) -> BoxFuture<()> + Send + Sync>;
type DisconnectFn<D> = Arc<dyn Fn(Socket<D>, DisconnectReason) -> BoxFuture<()> + Send + Sync>;
type DynamicFilter = Arc<dyn Fn(&str) -> bool + Send + Sync>;
type ServerSideFn<D> = Arc<dyn Fn(ServerSideMessage<D>) -> BoxFuture<()> + Send + Sync>;

/// The handlers of one namespace.
struct Handlers<D: Send + Sync + Clone + Default + 'static> {
    auth: Option<AuthFn<D>>,
    connection: Option<SocketFn<D>>,
    events: HashMap<String, EventFn<D>>,
    disconnect: Option<DisconnectFn<D>>,
    /// Listeners of other nodes' `serverSideEmit`.
    server_side: HashMap<String, ServerSideFn<D>>,
}

impl<D: Send + Sync + Clone + Default + 'static> Clone for Handlers<D> {
    fn clone(&self) -> Self {
        Handlers {
            auth: self.auth.clone(),
            connection: self.connection.clone(),
            events: self.events.clone(),
            disconnect: self.disconnect.clone(),
            server_side: self.server_side.clone(),
        }
    }
}

impl<D: Send + Sync + Clone + Default + 'static> Default for Handlers<D> {
    fn default() -> Self {
        Handlers {
            auth: None,
            connection: None,
            events: HashMap::new(),
            disconnect: None,
            server_side: HashMap::new(),
        }
    }
}

/// Handlers registered per namespace, and the dynamic-namespace rule. Shared by every socket
/// of the namespace (a registration copies them for the sockets that connect after it).
struct Registry<D: Send + Sync + Clone + Default + 'static> {
    nsps: HashMap<String, Arc<Handlers<D>>>,
    dynamic: Option<(String, DynamicFilter)>,
}

impl<D: Send + Sync + Clone + Default + 'static> Default for Registry<D> {
    fn default() -> Self {
        Registry {
            nsps: HashMap::new(),
            dynamic: None,
        }
    }
}

impl<D: Send + Sync + Clone + Default + 'static> Registry<D> {
    fn handlers(&self, nsp: &str) -> Arc<Handlers<D>> {
        if let Some(h) = self.nsps.get(nsp) {
            return h.clone();
        }
        match &self.dynamic {
            Some((template, _)) => self.nsps.get(template).cloned().unwrap_or_default(),
            None => Arc::default(),
        }
    }
}

/// What every clone of a [`SocketIo`] shares.
struct Shared<D: Send + Sync + Clone + Default + 'static> {
    registry: Mutex<Registry<D>>,
    options: Arc<Options>,
    max_payload: usize,
    parser: Parser,
}

/// What the driver asks of this layer ([`SocketHooks`]), answered from the registry.
struct Upper<D: Send + Sync + Clone + Default + 'static>(Arc<Shared<D>>);

impl<D: Send + Sync + Clone + Default + 'static> SocketHooks<D> for Upper<D> {
    fn auth(&self, nsp: &str) -> Option<AuthFn<D>> {
        lock(&self.0.registry).handlers(nsp).auth.clone()
    }

    fn connected(
        &self,
        link: &Link<Server<D>>,
        socket: SocketHandle,
        sid: Str,
        nsp: String,
        data: Option<D>,
        recovered: bool,
    ) -> SocketTx {
        let handlers = lock(&self.0.registry).handlers(&nsp);
        let socket = Socket {
            io: SocketIo {
                link: link.clone(),
                shared: self.0.clone(),
            },
            handle: socket,
            id: sid,
            nsp: Arc::from(nsp),
            last_data: Arc::new(Mutex::new(data)),
            recovered,
        };
        spawn_socket_task(socket, handlers)
    }

    fn server_side(
        &self,
        link: &Link<Server<D>>,
        nsp: &str,
        event: packet::Event,
        ack: Option<crate::ServerSideAck>,
    ) {
        let handler = lock(&self.0.registry)
            .handlers(nsp)
            .server_side
            .get(event.name())
            .cloned();
        let io = SocketIo {
            link: link.clone(),
            shared: self.0.clone(),
        };
        let Some(f) = handler else {
            // Nobody listens: the asking node still gets its answer count right only if we
            // answer, and the reference does not; it times out there, as with Node.
            return;
        };
        let message = ServerSideMessage {
            io,
            nsp: nsp.to_owned(),
            event,
            ack,
        };
        let nsp = nsp.to_owned();
        tokio::spawn(async move {
            if let Err(p) = AssertUnwindSafe(async move { f(message).await })
                .catch_unwind()
                .await
            {
                tracing::error!(panic = panic_message(&*p), %nsp, "server-side handler panicked");
            }
        });
    }
}

/// A Socket.IO server on tokio: register handlers with [`ns`](Self::ns), then [`serve`](Self::serve)
/// a listener, or mount [`service`](Self::service) in an existing hyper or axum application.
///
/// `D` is the per-socket data the connection middleware returns ([`Namespace::auth`]).
/// Cloning is cheap: every clone drives the same server.
pub struct SocketIo<D: Send + Sync + Clone + Default + 'static = ()> {
    pub(crate) link: Link<Server<D>>,
    shared: Arc<Shared<D>>,
}

impl<D: Send + Sync + Clone + Default + 'static> Clone for SocketIo<D> {
    fn clone(&self) -> Self {
        SocketIo {
            link: self.link.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<D: Send + Sync + Clone + Default + 'static> SocketIo<D> {
    /// Starts the driver task on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// If `options` are invalid ([`Options::validate`]); [`try_new`](Self::try_new) returns
    /// the error instead.
    pub fn new(config: Config, options: Options) -> Self {
        match Self::try_new(config, options) {
            Ok(io) => io,
            Err(e) => panic!("invalid roomcast::io::tokio::Options: {e}"),
        }
    }

    /// Starts the driver task on the current tokio runtime, once `options` are validated.
    pub fn try_new(config: Config, options: Options) -> Result<Self, OptionsError> {
        config.validate()?;
        options.validate()?;
        let (link, lanes) = driver::link(&options);
        let options = Arc::new(options);
        let shared = Arc::new(Shared {
            registry: Mutex::new(Registry::default()),
            options: options.clone(),
            max_payload: config.limits.max_payload,
            parser: config.parser,
        });
        let hooks: Arc<dyn SocketHooks<D>> = Arc::new(Upper(shared.clone()));
        tokio::spawn(driver::run(config, options, lanes, link.clone(), hooks));
        Ok(SocketIo { link, shared })
    }

    /// The parser of every packet ([`Config::parser`]): what to build packets for
    /// [`BroadcastOp::emit_encoded`] with.
    pub fn parser(&self) -> Parser {
        self.shared.parser
    }

    /// The handlers of a namespace (created on first use; `/` always exists).
    pub fn ns(&self, name: &str) -> Namespace<D> {
        Namespace::new(self.clone(), name)
    }

    /// Lets clients create namespaces on demand: a name `exists` accepts becomes a namespace
    /// using the handlers registered under `template` (see [`ns`](Self::ns)). A panic in
    /// `exists` counts as "no such namespace".
    pub fn dynamic_namespaces(
        &self,
        template: &str,
        exists: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) {
        lock(&self.shared.registry).dynamic = Some((template.to_owned(), Arc::new(exists)));
        let shared = self.shared.clone();
        self.configure(Box::new(move |ctx| {
            ctx.server.set_dynamic_namespaces(move |name| {
                let f = lock(&shared.registry)
                    .dynamic
                    .as_ref()
                    .map(|(_, f)| f.clone());
                let Some(f) = f else { return false };
                std::panic::catch_unwind(AssertUnwindSafe(|| f(name))).unwrap_or_else(|p| {
                    tracing::error!(
                        panic = panic_message(&*p),
                        "dynamic namespace filter panicked"
                    );
                    false
                })
            });
        }));
    }

    /// A hyper service answering the Engine.IO path, to mount in an existing application.
    pub fn service(&self) -> IoService<Server<D>> {
        IoService::new(
            self.link.clone(),
            self.shared.options.clone(),
            self.shared.max_payload,
        )
    }

    /// Serves connections from `listener` until `shutdown` completes, then closes every client
    /// connection gracefully (each is told with an Engine.IO `close` packet).
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        http::serve_and_close(self.service(), listener, shutdown).await
    }

    /// Closes every connection, telling each client the server is going away.
    pub async fn shutdown(&self) {
        self.link.shutdown().await;
    }

    /// A broadcast to a namespace: `io.to_ns("/").to("room").emit(...)`.
    pub fn to_ns(&self, nsp: &str) -> BroadcastOp<D> {
        BroadcastOp::new(self.clone(), nsp.to_owned(), None)
    }

    /// Runs `f` on the core inside the driver: direct access for anything the async API does
    /// not cover. Never waits: when the driver's call queue ([`Options::call_queue`]) is full,
    /// the call is refused with [`CallError::Full`]. A panic in `f` is logged and contained.
    pub fn call(
        &self,
        f: impl FnOnce(&mut Ctx<Server<D>>) + Send + 'static,
    ) -> Result<(), CallError> {
        self.link.try_call(Box::new(f))
    }

    /// Like [`call`](Self::call), and returns `f`'s result; waits for room in the call queue
    /// instead of refusing. `None` if the driver stopped, or `f` panicked.
    pub async fn query<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Ctx<Server<D>>) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = oneshot::channel();
        self.link
            .call(Box::new(move |ctx| {
                let _ = tx.send(f(ctx));
            }))
            .await
            .ok()?;
        rx.await.ok()
    }

    /// How many synchronous calls that return nothing (`join`, `leave`, `disconnect`,
    /// `emit_encoded`) were refused because the call queue was full; each was also logged.
    pub fn refused_calls(&self) -> u64 {
        self.link.refused()
    }

    /// A configuration call (namespaces, filters): made a bounded number of times by the
    /// application, so when the queue is full it waits in a task of its own rather than fail.
    fn configure(&self, f: CallFn<Server<D>>) {
        self.link.call_detached(f);
    }
}

/// Registers the handlers of one namespace. Handlers registered after a socket connected do
/// not apply to that socket.
pub struct Namespace<D: Send + Sync + Clone + Default + 'static> {
    io: SocketIo<D>,
    name: String,
}

impl<D: Send + Sync + Clone + Default + 'static> Namespace<D> {
    fn new(io: SocketIo<D>, name: &str) -> Self {
        lock(&io.shared.registry)
            .nsps
            .entry(name.to_owned())
            .or_default();
        let n = name.to_owned();
        io.configure(Box::new(move |ctx| {
            if let Err(e) = ctx.server.add_namespace(&n) {
                tracing::warn!(%e, "namespace not added");
            }
        }));
        Namespace {
            io,
            name: name.to_owned(),
        }
    }

    fn edit(&self, f: impl FnOnce(&mut Handlers<D>)) -> &Self {
        f(Arc::make_mut(
            lock(&self.io.shared.registry)
                .nsps
                .entry(self.name.clone())
                .or_default(),
        ));
        self
    }

    /// The connection middleware: decides, from the client's auth payload (JSON text), whether
    /// it may join, and with which socket data. Without one, every client is accepted with
    /// `D::default()`. If it panics, the client is refused with "Internal server error".
    pub fn auth<F, Fut>(&self, f: F) -> &Self
    where
        F: Fn(Option<String>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<D, Rejection>> + Send + 'static,
    {
        self.edit(|h| h.auth = Some(Arc::new(move |a, _| Box::pin(f(a)))))
    }

    /// [`auth`](Self::auth) that also sees the connection asking (the admin namespace's
    /// middleware hands a session to the socket that connection opens).
    pub(crate) fn auth_conn<F, Fut>(&self, f: F) -> &Self
    where
        F: Fn(Option<String>, crate::ConnectionHandle) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<D, Rejection>> + Send + 'static,
    {
        self.edit(|h| h.auth = Some(Arc::new(move |a, c| Box::pin(f(a, c)))))
    }

    /// Runs when a socket has joined the namespace, before any of its events. If it panics,
    /// the socket is disconnected.
    pub fn on_connection<F, Fut>(&self, f: F) -> &Self
    where
        F: Fn(Socket<D>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.edit(|h| h.connection = Some(Arc::new(move |s| Box::pin(f(s)))))
    }

    /// Handles an event. A socket's events run one at a time, in the order they arrived. If
    /// the handler panics, the socket is disconnected (its later events are not handled).
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

    /// Listens for another node's `serverSideEmit(event, ...)` to this namespace (the
    /// reference's `nsp.on(event, ...)` on the server side). Each runs in a task of its own; a
    /// panic is logged and contained.
    pub fn on_server_side<F, Fut>(&self, event: &str, f: F) -> &Self
    where
        F: Fn(ServerSideMessage<D>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.edit(|h| {
            h.server_side
                .insert(event.to_owned(), Arc::new(move |m| Box::pin(f(m))));
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

/// Starts the task that runs a socket's handlers in order. Each event's credit is released
/// once its handler has finished (or was found missing), which lets its connection be read
/// again.
fn spawn_socket_task<D: Send + Sync + Clone + Default + 'static>(
    socket: Socket<D>,
    handlers: Arc<Handlers<D>>,
) -> SocketTx {
    let (tx, rx) = inbox();
    tokio::spawn(socket_task(socket, handlers, rx));
    tx
}

/// A socket's task: its handlers, one event at a time. Its size is resident per socket, so
/// what only some events need (an ack's reserved slot, a panic's disconnection) is boxed.
///
/// Not an `async fn`: its arguments would be stored twice in the future (as arguments and as
/// locals), resident per socket.
#[allow(clippy::manual_async_fn)]
fn socket_task<D: Send + Sync + Clone + Default + 'static>(
    socket: Socket<D>,
    handlers: Arc<Handlers<D>>,
    mut rx: SocketRx,
) -> impl Future<Output = ()> + Send {
    async move {
        // After a handler panicked, the socket is being disconnected: its remaining events are
        // released unhandled, its disconnect handler still runs.
        let mut healthy = match &handlers.connection {
            Some(f) => {
                let s = socket.clone();
                Box::pin(guarded(&socket, "connection handler", start(|| f(s)))).await
            }
            None => true,
        };
        while let Some(e) = rx.recv().await {
            // The event stays boxed across the awaits: only what a handler is given moves out.
            let handler = match &*e {
                SocketEvent::Message { event, .. } if healthy => {
                    handlers.events.get(event.name()).cloned()
                }
                _ => None,
            };
            let wants_ack = matches!(&*e, SocketEvent::Message { ack: Some(_), .. });
            let slot = match (&handler, wants_ack) {
                (Some(_), true) => Box::pin(socket.io.link.reserve()).await,
                _ => None,
            };
            match *e {
                SocketEvent::Message { event, ack, credit } => {
                    if let Some(f) = handler {
                        let ack = ack.map(|request| Ack {
                            socket: socket.clone(),
                            request,
                            slot,
                        });
                        let s = socket.clone();
                        let run = start(|| f(s, Message { event, ack }));
                        // Boxed: the guard's state would otherwise be resident in every idle socket.
                        healthy = Box::pin(guarded(&socket, "event handler", run)).await;
                    }
                    drop(credit);
                }
                SocketEvent::Disconnected(reason) => {
                    if let Some(f) = &handlers.disconnect {
                        let run = start(|| f(socket.clone(), reason));
                        Box::pin(guarded(&socket, "disconnect handler", run)).await;
                    }
                    break;
                }
            }
        }
    }
}

type Panic = Box<dyn std::any::Any + Send>;

/// Calls a handler for its future, containing a panic of the call itself (a closure may
/// panic before it returns its future). Done before the await, so the task keeps only the
/// future, not the handler's arguments.
fn start(call: impl FnOnce() -> BoxFuture<()>) -> Result<BoxFuture<()>, Panic> {
    std::panic::catch_unwind(AssertUnwindSafe(call))
}

/// Runs one handler, containing a panic: it is logged, and the socket disconnected. Returns
/// whether the handler finished normally.
async fn guarded<D: Send + Sync + Clone + Default + 'static>(
    socket: &Socket<D>,
    what: &'static str,
    handler: Result<BoxFuture<()>, Panic>,
) -> bool {
    let outcome = match handler {
        Ok(run) => AssertUnwindSafe(run).catch_unwind().await,
        Err(p) => Err(p),
    };
    let Err(p) = outcome else {
        return true;
    };
    tracing::error!(
        panic = panic_message(&*p),
        socket = %socket.id,
        nsp = %socket.nsp,
        "{what} panicked: disconnecting the socket"
    );
    let s = socket.handle;
    let disconnect = socket
        .io
        .link
        .call(Box::new(move |ctx| drop(ctx.server.disconnect(s))));
    let _ = Box::pin(disconnect).await;
    false
}

/// A connected socket, as its handlers see it. Cheap to clone; every call goes to the driver.
pub struct Socket<D: Send + Sync + Clone + Default + 'static> {
    io: SocketIo<D>,
    handle: SocketHandle,
    id: Str,
    nsp: Arc<str>,
    /// The data last read from the core, still there for disconnect handlers once the socket
    /// (and its data in the core) is gone.
    last_data: Arc<Mutex<Option<D>>>,
    recovered: bool,
}

impl<D: Send + Sync + Clone + Default + 'static> Clone for Socket<D> {
    fn clone(&self) -> Self {
        Socket {
            io: self.io.clone(),
            handle: self.handle,
            id: self.id.clone(),
            nsp: self.nsp.clone(),
            last_data: self.last_data.clone(),
            recovered: self.recovered,
        }
    }
}

impl<D: Send + Sync + Clone + Default + 'static> std::fmt::Debug for Socket<D> {
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

    /// Whether this socket was restored by connection state recovery (`socket.recovered`):
    /// the same id as before the drop, its rooms and data back, and the events it missed
    /// delivered before the client saw it connect. Always false with recovery off.
    pub fn recovered(&self) -> bool {
        self.recovered
    }

    /// The namespace's name.
    pub fn namespace(&self) -> &str {
        &self.nsp
    }

    /// The server this socket belongs to.
    pub fn io(&self) -> &SocketIo<D> {
        &self.io
    }

    /// Emits an event to this socket. Arguments as for [`Encoded::event`]. Never waits:
    /// refused with [`CallError::Full`] when the driver's call queue is full.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), CallError> {
        let e = self
            .io
            .parser()
            .event(&self.nsp, None, event, args)
            .map_err(crate::Error::from)?;
        self.io.call(self.emit_call(e))
    }

    fn emit_call(&self, e: Encoded) -> impl FnOnce(&mut Ctx<Server<D>>) + Send + 'static {
        let s = self.handle;
        move |ctx| {
            ctx.emit_observed(
                &e,
                |_| vec![s],
                |server| usize::from(server.emit_encoded(s, &e).is_ok()),
            )
        }
    }

    /// Emits `event` with the arguments of a received event (binary included), without parsing
    /// them: `message-back` style echoes and relays.
    pub fn emit_args_of(&self, event: &str, received: &packet::Event) -> Result<(), CallError> {
        let e = self
            .io
            .parser()
            .event_with_args_of(&self.nsp, None, event, received)
            .map_err(crate::Error::from)?;
        self.io.call(self.emit_call(e))
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
        let sent = self
            .io
            .link
            .call(Box::new(move |ctx| {
                let now = ctx.now();
                match ctx.server.emit_with_ack(now, s, &event, &args, timeout) {
                    Ok(h) => {
                        ctx.acks.insert(h, tx);
                    }
                    Err(_) => {
                        let _ = tx.send(Err(AckError::Disconnected));
                    }
                }
            }))
            .await;
        if sent.is_err() {
            return Err(AckError::Disconnected);
        }
        rx.await.unwrap_or(Err(AckError::Disconnected))
    }

    /// Joins a room. Never waits; if the call queue is full, the refusal is logged and
    /// counted ([`SocketIo::refused_calls`]).
    pub fn join(&self, room: impl Into<String>) {
        let (s, room) = (self.handle, room.into());
        self.io
            .link
            .call_or_log("join", Box::new(move |ctx| drop(ctx.server.join(s, &room))));
    }

    /// Leaves a room. Never waits; refusal as for [`join`](Self::join).
    pub fn leave(&self, room: impl Into<String>) {
        let (s, room) = (self.handle, room.into());
        self.io.link.call_or_log(
            "leave",
            Box::new(move |ctx| drop(ctx.server.leave(s, &room))),
        );
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

    /// Disconnects this socket from its namespace. Never waits; refusal as for
    /// [`join`](Self::join).
    pub fn disconnect(&self) {
        let s = self.handle;
        self.io.link.call_or_log(
            "disconnect",
            Box::new(move |ctx| drop(ctx.server.disconnect(s))),
        );
    }
}

/// An event a client sent, with the means to answer it if it asked for an answer.
pub struct Message<D: Send + Sync + Clone + Default + 'static> {
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
            let parser = a.socket.io.parser();
            match parser.ack_with_args_of(&a.socket.nsp, a.request.id(), &self.event) {
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

/// The means to answer one event, once (sending it uses it up). It holds a slot of the driver's
/// call queue, reserved before its handler ran, so the answer is never refused.
#[must_use = "the client waits for this acknowledgement"]
pub struct Ack<D: Send + Sync + Clone + Default + 'static> {
    socket: Socket<D>,
    request: crate::AckRequest,
    slot: Option<mpsc::OwnedPermit<Cmd<Server<D>>>>,
}

impl<D: Send + Sync + Clone + Default + 'static> Ack<D> {
    /// Sends the answer.
    pub fn send<T: Serialize + ?Sized>(self, args: &T) {
        match self
            .socket
            .io
            .parser()
            .ack(&self.socket.nsp, self.request.id(), args)
        {
            Ok(e) => self.send_encoded(e),
            Err(e) => tracing::warn!(%e, "ack not encoded"),
        }
    }

    fn send_encoded(self, e: Encoded) {
        let request = self.request;
        let f: CallFn<Server<D>> = Box::new(move |ctx| drop(ctx.server.ack_encoded(request, &e)));
        match self.slot {
            Some(slot) => drop(slot.send(Cmd::Call(f))),
            None => self.socket.io.link.call_or_log("ack", f),
        }
    }
}

/// A broadcast under construction: `to`, `except`, `volatile`, then an action.
pub struct BroadcastOp<D: Send + Sync + Clone + Default + 'static> {
    pub(crate) io: SocketIo<D>,
    pub(crate) sel: Selection,
}

/// What a [`BroadcastOp`] selects, sent to the driver to be applied there.
pub(crate) struct Selection {
    nsp: String,
    exclude: Option<SocketHandle>,
    rooms: Vec<Str>,
    except: Vec<Str>,
    volatile: bool,
    compress: bool,
    local: bool,
}

impl Selection {
    pub(crate) fn build<'s, D>(
        &self,
        server: &'s mut crate::Server<D>,
    ) -> Option<crate::Broadcast<'s, D>> {
        let mut b = match self.exclude {
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
        }
    }

    /// Keeps the operation on this node: in a cluster, nothing is published (`io.local`).
    pub fn local(mut self) -> Self {
        self.sel.local = true;
        self
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
    /// Never waits: refused with [`CallError::Full`] when the call queue is full.
    pub fn emit<T: Serialize + ?Sized>(self, event: &str, args: &T) -> Result<(), CallError> {
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
        Box::new(move |ctx| {
            ctx.emit_observed(
                &encoded,
                |server| sel.build(server).map(|b| b.sockets()).unwrap_or_default(),
                |server| sel.build(server).map_or(0, |b| b.emit_encoded(&encoded)),
            );
        })
    }

    /// Emits `event` with the arguments of a received event (binary included), unparsed.
    /// Refused as [`emit`](Self::emit) is.
    pub fn emit_args_of(self, event: &str, received: &packet::Event) -> Result<(), CallError> {
        let e = self
            .io
            .parser()
            .event_with_args_of(&self.sel.nsp, None, event, received)
            .map_err(crate::Error::from)?;
        let link = self.io.link.clone();
        link.try_call(self.emit_call(e))
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
