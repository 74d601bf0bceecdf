//! The async application API, in the shape Node's server has: the server handle
//! ([`SocketIo`]), namespaces and their middleware and listeners ([`Namespace`]), sockets and
//! their own listeners ([`Socket`]), acks, and broadcast operators ([`BroadcastOp`]). It sits
//! on the driver ([`super::driver`]) and gives it, through [`SocketHooks`], what the driver
//! needs from up here.

mod broadcast;
mod namespace;
mod socket;
mod task;

pub use broadcast::{BroadcastOp, FetchError, RemoteSocket, RemoteTimeout};
pub use namespace::{Connecting, Namespace};
pub use socket::{Ack, AckTimeout, ListenerId, Message, Socket, Timeout};

use super::driver::{self, CallFn, Ctx, Link, NewSocket, RoomEvent, SocketHooks};
use super::http::{self, IoService};
use super::shared::{self, lock, panic_message, AuthFn, CallError, SocketTx};
use super::{Options, OptionsError};
use crate::packet::{Encoded, Parser};
use crate::{Config, Server, SocketHandle};
use namespace::Registry;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// What every clone of a [`SocketIo`] shares.
struct Shared<D: Send + Sync + Clone + Default + 'static> {
    registry: Mutex<Registry<D>>,
    options: Arc<Options>,
    max_payload: usize,
    parser: Parser,
    /// The sockets with `on_any_outgoing` listeners, and how many there are (read on every
    /// emit, so kept apart from the map's lock).
    outgoing: Mutex<HashMap<SocketHandle, Arc<socket::SocketState<D>>>>,
    outgoing_count: AtomicUsize,
}

/// What the driver asks of this layer ([`SocketHooks`]), answered from the registry.
struct Upper<D: Send + Sync + Clone + Default + 'static>(Arc<Shared<D>>);

impl<D: Send + Sync + Clone + Default + 'static> Upper<D> {
    fn io(&self, link: &Link<Server<D>>) -> SocketIo<D> {
        SocketIo {
            link: link.clone(),
            shared: self.0.clone(),
        }
    }
}

impl<D: Send + Sync + Clone + Default + 'static> SocketHooks<D> for Upper<D> {
    fn auth(&self, link: &Link<Server<D>>, nsp: &str) -> Option<AuthFn<D>> {
        let reg = lock(&self.0.registry);
        if reg.undecided(nsp) {
            return Some(namespace::decide(self.io(link)));
        }
        reg.handlers(nsp).middleware_chain()
    }

    fn namespace_created(&self, link: &Link<Server<D>>, nsp: &str) {
        let listeners = lock(&self.0.registry).child_created(nsp);
        namespace::announce_namespace(&listeners, &Namespace::existing(self.io(link), nsp));
    }

    fn namespace_removed(&self, nsp: &str) {
        lock(&self.0.registry).child_removed(nsp);
    }

    fn connected(&self, link: &Link<Server<D>>, new: NewSocket<D>) -> SocketTx {
        let handlers = lock(&self.0.registry).handlers(&new.nsp);
        let io = SocketIo {
            link: link.clone(),
            shared: self.0.clone(),
        };
        task::spawn(Socket::new(io, new), handlers)
    }

    fn wants_outgoing(&self) -> bool {
        self.0.outgoing_count.load(Ordering::Relaxed) > 0
    }

    fn outgoing(&self, sockets: &[SocketHandle], e: &Encoded) {
        let listening: Vec<_> = {
            let map = lock(&self.0.outgoing);
            sockets.iter().filter_map(|s| map.get(s).cloned()).collect()
        };
        if listening.is_empty() {
            return;
        }
        let Some(event) = socket::decode_outgoing(self.0.parser, e) else {
            return;
        };
        for state in listening {
            state.notify_outgoing(&event);
        }
    }

    fn room_event(&self, link: &Link<Server<D>>, e: RoomEvent) {
        let nsp = match &e {
            RoomEvent::Created { nsp, .. }
            | RoomEvent::Deleted { nsp, .. }
            | RoomEvent::Joined { nsp, .. }
            | RoomEvent::Left { nsp, .. } => nsp.clone(),
        };
        let listeners = lock(&self.0.registry).handlers(&nsp).rooms.clone();
        if listeners.is_empty() {
            return;
        }
        let io = SocketIo {
            link: link.clone(),
            shared: self.0.clone(),
        };
        for f in listeners {
            let run = std::panic::catch_unwind(AssertUnwindSafe(|| f(io.clone(), e.clone())));
            if let Err(p) = run {
                tracing::error!(panic = panic_message(&*p), %nsp, "room listener panicked");
            }
        }
    }

    fn server_side(
        &self,
        link: &Link<Server<D>>,
        nsp: &str,
        event: crate::packet::Event,
        ack: Option<crate::ServerSideAck>,
    ) {
        let handler = lock(&self.0.registry)
            .handlers(nsp)
            .server_side
            .get(event.name())
            .cloned();
        let Some(f) = handler else {
            // Nobody listens: the reference does not answer either; the asking node times
            // out, as with Node.
            return;
        };
        let message = super::cluster::ServerSideMessage {
            io: SocketIo {
                link: link.clone(),
                shared: self.0.clone(),
            },
            nsp: nsp.to_owned(),
            event,
            ack,
        };
        let nsp = nsp.to_owned();
        tokio::spawn(async move {
            use futures_util::FutureExt;
            if let Err(p) = AssertUnwindSafe(async move { f(message).await })
                .catch_unwind()
                .await
            {
                tracing::error!(panic = panic_message(&*p), %nsp, "server-side handler panicked");
            }
        });
    }
}

/// A Socket.IO server on tokio: register middleware and listeners on its namespaces
/// ([`of`](Self::of)), then [`serve`](Self::serve) a listener, or mount
/// [`service`](Self::service) in an existing hyper or axum application.
///
/// `D` is the per-socket data (Node's `socket.data`), set by middleware and handlers.
/// Cloning is cheap: every clone drives the same server. Its broadcast operators
/// (`to`, `except`, `emit`...) act on the main namespace `/`, as Node's `io.to(...)` does.
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
            outgoing: Mutex::default(),
            outgoing_count: AtomicUsize::new(0),
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

    /// A namespace (`io.of(name)`): created on first use; `/` always exists.
    pub fn of(&self, name: &str) -> Namespace<D> {
        Namespace::new(self.clone(), name)
    }

    /// A parent namespace (`io.of(regex)` / `io.of(fn)` in Node): every name `exists`
    /// accepts becomes a child namespace on first connection, with the parent's middleware and
    /// listeners. `exists` runs in the driver and must be quick (a regex match, a set lookup);
    /// a panic counts as "no such namespace". Several parents may be registered; the first
    /// that accepts a name owns it.
    pub fn parent_namespace(
        &self,
        exists: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> Namespace<D> {
        self.add_parent(namespace::ParentRule::Now(Arc::new(exists)))
    }

    /// A parent namespace that decides later (`io.of((name, auth, next) => ...)` in Node):
    /// `decide` gets the name a client asks for and its auth payload (`{}` without one), and
    /// answers whether it is a child. It runs before the parent's middleware, only for names
    /// no namespace has yet; on `false` (and no later parent accepting) the client's
    /// `connect_error` says "Invalid namespace", as the reference's. Parents are asked in
    /// registration order, those of [`parent_namespace`](Self::parent_namespace) too.
    ///
    /// Until it answers, the core holds the name as a child with a CONNECT pending; refused,
    /// the child goes at once (it never had a socket), so names clients make up never pile up.
    pub fn parent_namespace_async<F, Fut>(&self, decide: F) -> Namespace<D>
    where
        F: Fn(String, serde_json::Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        let decide =
            Arc::new(move |name, auth| -> shared::BoxFuture<bool> { Box::pin(decide(name, auth)) });
        self.add_parent(namespace::ParentRule::Later(decide))
    }

    fn add_parent(&self, rule: namespace::ParentRule) -> Namespace<D> {
        let name = lock(&self.shared.registry).add_parent(rule);
        let shared = self.shared.clone();
        self.configure(Box::new(move |ctx| {
            ctx.server
                .set_dynamic_namespaces(move |name| lock(&shared.registry).may_create(name));
        }));
        // Its handle registers handlers only: its children are namespaces of their own in the
        // core, created when a client first asks for one. Its `emit` reaches every child.
        Namespace::existing(self.clone(), &name)
    }

    /// Listens for new namespaces (`io.on("new_namespace", ...)`): each `of` with a new name
    /// but `/`, and each child a parent namespace creates. Called where the namespace is
    /// made (in the driver for a child): it must be quick. A panic is logged and contained.
    pub fn on_new_namespace(&self, f: impl Fn(Namespace<D>) + Send + Sync + 'static) {
        lock(&self.shared.registry).new_namespace.push(Arc::new(f));
    }

    /// The middleware of the main namespace (`io.use`): see [`Namespace::use_`].
    pub fn use_<F, Fut>(&self, f: F) -> Namespace<D>
    where
        F: Fn(Connecting<D>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), crate::io::tokio::Rejection>> + Send + 'static,
    {
        let n = self.of("/");
        n.use_(f);
        n
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

    /// A broadcast to the main namespace's room (`io.to(room)`); see [`BroadcastOp`].
    pub fn to(&self, room: impl Into<crate::Str>) -> BroadcastOp<D> {
        self.of("/").to(room)
    }

    /// The same as [`to`](Self::to) (`io.in(room)`).
    pub fn in_(&self, room: impl Into<crate::Str>) -> BroadcastOp<D> {
        self.to(room)
    }

    /// Every socket of the main namespace but the members of `room` (`io.except(room)`).
    pub fn except(&self, room: impl Into<crate::Str>) -> BroadcastOp<D> {
        self.of("/").except(room)
    }

    /// This node only (`io.local`).
    pub fn local(&self) -> BroadcastOp<D> {
        self.of("/").local()
    }

    /// Dropped for connections that cannot take it now (`io.volatile`).
    pub fn volatile(&self) -> BroadcastOp<D> {
        self.of("/").volatile()
    }

    /// Whether to compress (`io.compress(bool)`).
    pub fn compress(&self, compress: bool) -> BroadcastOp<D> {
        self.of("/").compress(compress)
    }

    /// Acks of the next emit time out after `timeout` (`io.timeout(ms)`).
    pub fn timeout(&self, timeout: Duration) -> BroadcastOp<D> {
        self.of("/").timeout(timeout)
    }

    /// Emits to every socket of the main namespace (`io.emit`).
    pub fn emit<T: serde::Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> Result<(), CallError> {
        self.of("/").emit(event, args)
    }

    /// `io.emitWithAck`, to the main namespace: see [`Namespace::emit_with_ack`].
    pub async fn emit_with_ack<T: serde::Serialize + Send + 'static>(
        &self,
        event: &str,
        args: T,
    ) -> super::Replies {
        self.of("/").emit_with_ack(event, args).await
    }

    /// `io.fetchSockets()`, of the main namespace: see [`Namespace::fetch_sockets`].
    pub async fn fetch_sockets(&self) -> Result<Vec<RemoteSocket<D>>, FetchError>
    where
        D: serde::Serialize,
    {
        self.of("/").fetch_sockets().await
    }

    /// `io.socketsJoin(room)`, in the main namespace.
    pub async fn sockets_join(&self, room: &str) -> usize {
        self.of("/").sockets_join(room).await
    }

    /// `io.socketsLeave(room)`, in the main namespace.
    pub async fn sockets_leave(&self, room: &str) -> usize {
        self.of("/").sockets_leave(room).await
    }

    /// `io.disconnectSockets(close)`, in the main namespace.
    pub async fn disconnect_sockets(&self, close: bool) -> usize {
        self.of("/").disconnect_sockets(close).await
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
