//! Namespaces: their middleware (`use`), their listeners, and their broadcast operators.

use super::broadcast::BroadcastOp;
use super::socket::{Message, Socket};
use super::SocketIo;
use crate::io::tokio::cluster::ServerSideMessage;
use crate::io::tokio::driver::RoomEvent;
use crate::io::tokio::shared::{lock, AuthFn, BoxFuture, CallError, ConnectInfo, Rejection};
use crate::{ConnectionHandle, DisconnectReason, Handshake};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(super) type SocketFn<D> = Arc<dyn Fn(Socket<D>) -> BoxFuture<()> + Send + Sync>;
pub(super) type EventFn<D> = Arc<dyn Fn(Socket<D>, Message<D>) -> BoxFuture<()> + Send + Sync>;
pub(super) type DisconnectFn<D> =
    Arc<dyn Fn(Socket<D>, DisconnectReason) -> BoxFuture<()> + Send + Sync>;
pub(super) type ServerSideFn<D> = Arc<dyn Fn(ServerSideMessage<D>) -> BoxFuture<()> + Send + Sync>;
pub(super) type MiddlewareFn<D> =
    Arc<dyn Fn(Connecting<D>) -> BoxFuture<Result<(), Rejection>> + Send + Sync>;
pub(super) type RoomFn<D> = Arc<dyn Fn(SocketIo<D>, RoomEvent) + Send + Sync>;
type ParentFilter = Arc<dyn Fn(&str) -> bool + Send + Sync>;
type ParentDecider = Arc<dyn Fn(String, serde_json::Value) -> BoxFuture<bool> + Send + Sync>;
pub(super) type NewNamespaceFn<D> = Arc<dyn Fn(Namespace<D>) + Send + Sync>;

/// How a parent namespace tells its children.
#[derive(Clone)]
pub(super) enum ParentRule {
    /// At once, in the driver, from the name (a regex, a set).
    Now(ParentFilter),
    /// Later, from the name and the client's auth (Node's `io.of((name, auth, next) => ...)`).
    Later(ParentDecider),
}

/// Which parent a namespace name belongs to.
enum Owner {
    /// This parent's (its index).
    Parent(usize),
    /// Not known before a [`ParentRule::Later`] has answered.
    Undecided,
    /// None: not a child.
    Nobody,
}

/// The middleware and listeners of one namespace, shared by all its sockets (a registration
/// makes a new copy, for the sockets that connect after it).
pub(super) struct Handlers<D: Send + Sync + Clone + Default + 'static> {
    pub(super) middleware: Vec<MiddlewareFn<D>>,
    pub(super) connection: Vec<SocketFn<D>>,
    pub(super) events: HashMap<String, Vec<EventFn<D>>>,
    pub(super) fallback: Option<EventFn<D>>,
    pub(super) disconnecting: Vec<DisconnectFn<D>>,
    pub(super) disconnect: Vec<DisconnectFn<D>>,
    pub(super) server_side: HashMap<String, ServerSideFn<D>>,
    pub(super) rooms: Vec<RoomFn<D>>,
}

impl<D: Send + Sync + Clone + Default + 'static> Clone for Handlers<D> {
    fn clone(&self) -> Self {
        Handlers {
            middleware: self.middleware.clone(),
            connection: self.connection.clone(),
            events: self.events.clone(),
            fallback: self.fallback.clone(),
            disconnecting: self.disconnecting.clone(),
            disconnect: self.disconnect.clone(),
            server_side: self.server_side.clone(),
            rooms: self.rooms.clone(),
        }
    }
}

impl<D: Send + Sync + Clone + Default + 'static> Default for Handlers<D> {
    fn default() -> Self {
        Handlers {
            middleware: Vec::new(),
            connection: Vec::new(),
            events: HashMap::new(),
            fallback: None,
            disconnecting: Vec::new(),
            disconnect: Vec::new(),
            server_side: HashMap::new(),
            rooms: Vec::new(),
        }
    }
}

/// Tells the `new_namespace` listeners of `nsp`; a panic in one is logged and contained.
pub(super) fn announce_namespace<D: Send + Sync + Clone + Default + 'static>(
    listeners: &[NewNamespaceFn<D>],
    nsp: &Namespace<D>,
) {
    for f in listeners {
        if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(nsp.clone()))) {
            let panic = crate::io::tokio::shared::panic_message(&*p);
            tracing::error!(panic, nsp = nsp.name(), "new_namespace listener panicked");
        }
    }
}

/// A [`ParentRule::Now`]'s answer; a panicking filter accepts nothing.
fn accepts_now(accepts: &ParentFilter, nsp: &str) -> bool {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| accepts(nsp))).unwrap_or_else(|p| {
        let panic = crate::io::tokio::shared::panic_message(&*p);
        tracing::error!(panic, "parent namespace filter panicked");
        false
    })
}

/// The connection middleware of a child whose parent is still to be asked: the parents'
/// rules in order, the first to accept owning it (then its `new_namespace` listeners run, and
/// its parent's middleware); refused with the reference's "Invalid namespace" if none does,
/// and the core then removes the child it created for the question.
pub(super) fn decide<D: Send + Sync + Clone + Default + 'static>(
    io: super::SocketIo<D>,
) -> AuthFn<D> {
    Arc::new(move |info: ConnectInfo<D>| {
        let io = io.clone();
        Box::pin(async move {
            let rules: Vec<ParentRule> = (lock(&io.shared.registry).parents.iter())
                .map(|(_, r)| r.clone())
                .collect();
            let auth = (info.handshake.auth())
                .and_then(|a| serde_json::from_str(a).ok())
                .unwrap_or_else(|| serde_json::json!({}));
            let mut owner = None;
            for (i, rule) in rules.iter().enumerate() {
                let yes = match rule {
                    ParentRule::Now(accepts) => accepts_now(accepts, &info.nsp),
                    ParentRule::Later(ask) => ask(info.nsp.clone(), auth.clone()).await,
                };
                if yes {
                    owner = Some(i);
                    break;
                }
            }
            let Some(i) = owner else {
                return Err(Rejection::new("Invalid namespace"));
            };
            let (chain, announce) = {
                let mut reg = lock(&io.shared.registry);
                let first = !reg.children.contains_key(&info.nsp);
                reg.children.entry(info.nsp.clone()).or_insert(i);
                let announce = if first {
                    reg.new_namespace.clone()
                } else {
                    Vec::new()
                };
                (reg.handlers(&info.nsp).middleware_chain(), announce)
            };
            announce_namespace(&announce, &Namespace::existing(io.clone(), &info.nsp));
            match chain {
                Some(chain) => chain(info).await,
                None => Ok(info.restored.unwrap_or_default()),
            }
        })
    })
}

impl<D: Send + Sync + Clone + Default + 'static> Handlers<D> {
    /// The middleware as one decision for the driver: each in order, on one shared
    /// [`Connecting`], until one refuses; `None` without middleware (every client accepted).
    pub(super) fn middleware_chain(&self) -> Option<AuthFn<D>> {
        if self.middleware.is_empty() {
            return None;
        }
        let chain = self.middleware.clone();
        Some(Arc::new(move |info: ConnectInfo<D>| {
            let chain = chain.clone();
            Box::pin(async move {
                let c = Connecting {
                    handshake: info.handshake,
                    nsp: Arc::from(info.nsp),
                    conn: info.conn,
                    data: Arc::new(Mutex::new(info.restored.unwrap_or_default())),
                };
                for m in &chain {
                    m(c.clone()).await?;
                }
                Ok(c.data())
            })
        }))
    }
}

/// Handlers per namespace, and the parent namespaces that create children on demand.
pub(super) struct Registry<D: Send + Sync + Clone + Default + 'static> {
    nsps: HashMap<String, Arc<Handlers<D>>>,
    /// The names `io.of` was called with, so the core is asked to add each once.
    known: std::collections::HashSet<String>,
    /// Each parent: the name its handlers are kept under, and which names it accepts.
    parents: Vec<(String, ParentRule)>,
    /// The live children, each with its parent: what a parent's `emit` reaches, and the
    /// owner decided by a [`ParentRule::Later`], kept until the core removes the child.
    children: HashMap<String, usize>,
    /// `io.on("new_namespace")` listeners.
    pub(super) new_namespace: Vec<NewNamespaceFn<D>>,
}

impl<D: Send + Sync + Clone + Default + 'static> Default for Registry<D> {
    fn default() -> Self {
        Registry {
            nsps: HashMap::new(),
            known: std::collections::HashSet::new(),
            parents: Vec::new(),
            children: HashMap::new(),
            new_namespace: Vec::new(),
        }
    }
}

impl<D: Send + Sync + Clone + Default + 'static> Registry<D> {
    /// The handlers of namespace `nsp`: its own, else its parent's.
    pub(super) fn handlers(&self, nsp: &str) -> Arc<Handlers<D>> {
        if let Some(h) = self.nsps.get(nsp) {
            return h.clone();
        }
        self.parent_of(nsp)
            .and_then(|p| self.nsps.get(p).cloned())
            .unwrap_or_default()
    }

    /// The parent `nsp` belongs to: none if the application named it (`of`), else the one
    /// recorded, else the first whose rule accepts it, unless a rule that answers later comes
    /// first.
    fn owner(&self, nsp: &str) -> Owner {
        // A namespace the application named is its own, never a child.
        if nsp == "/" || self.known.contains(nsp) {
            return Owner::Nobody;
        }
        if let Some(&i) = self.children.get(nsp) {
            return Owner::Parent(i);
        }
        for (i, (_, rule)) in self.parents.iter().enumerate() {
            match rule {
                ParentRule::Now(accepts) => {
                    if accepts_now(accepts, nsp) {
                        return Owner::Parent(i);
                    }
                }
                ParentRule::Later(_) => return Owner::Undecided,
            }
        }
        Owner::Nobody
    }

    /// The name a parent's handlers are kept under, if `nsp` is known to be its child.
    pub(super) fn parent_of(&self, nsp: &str) -> Option<&str> {
        match self.owner(nsp) {
            Owner::Parent(i) => Some(self.parents[i].0.as_str()),
            Owner::Undecided | Owner::Nobody => None,
        }
    }

    /// Whether a client's CONNECT to an unknown `nsp` may create it: some parent accepts it,
    /// or may once asked ([`decide`](Self::decide) then runs before the middleware).
    pub(super) fn may_create(&self, nsp: &str) -> bool {
        !matches!(self.owner(nsp), Owner::Nobody)
    }

    /// Whether `nsp`'s parent is still to be asked.
    pub(super) fn undecided(&self, nsp: &str) -> bool {
        matches!(self.owner(nsp), Owner::Undecided)
    }

    /// The core created child `nsp`: it is recorded if its parent is known already; its
    /// `new_namespace` listeners, if so, to call.
    pub(super) fn child_created(&mut self, nsp: &str) -> Vec<NewNamespaceFn<D>> {
        match self.owner(nsp) {
            Owner::Parent(i) => {
                self.children.insert(nsp.to_owned(), i);
                self.new_namespace.clone()
            }
            Owner::Undecided | Owner::Nobody => Vec::new(),
        }
    }

    /// The core removed child `nsp`.
    pub(super) fn child_removed(&mut self, nsp: &str) {
        self.children.remove(nsp);
    }

    /// The live children of `parent` if it is a parent (the name its handlers are kept
    /// under), in name order.
    pub(super) fn children_of(&self, parent: &str) -> Option<Vec<String>> {
        let i = self.parents.iter().position(|(n, _)| n == parent)?;
        let mut names: Vec<String> = (self.children.iter())
            .filter(|(_, &p)| p == i)
            .map(|(n, _)| n.clone())
            .collect();
        names.sort_unstable();
        Some(names)
    }

    /// Registers a parent namespace; the name its handlers are kept under (never a valid
    /// namespace name: those start with `/`).
    pub(super) fn add_parent(&mut self, rule: ParentRule) -> String {
        let name = format!("parent#{}", self.parents.len());
        self.parents.push((name.clone(), rule));
        self.nsps.entry(name.clone()).or_default();
        name
    }

    /// Changes a namespace's handlers. A child of a parent namespace given handlers of its
    /// own starts from its parent's, so it keeps the parent's middleware.
    fn edit(&mut self, nsp: &str, f: impl FnOnce(&mut Handlers<D>)) {
        if !self.nsps.contains_key(nsp) {
            let base = self.handlers(nsp);
            self.nsps.insert(nsp.to_owned(), base);
        }
        if let Some(h) = self.nsps.get_mut(nsp) {
            f(Arc::make_mut(h));
        }
    }
}

/// A socket-to-be, as a namespace's middleware sees it (the `socket` of Node's
/// `io.use((socket, next) => ...)`): its handshake, and its data, which the middleware may
/// set and which the socket starts with. Cheap to clone: every clone is the same socket.
pub struct Connecting<D> {
    handshake: Handshake,
    nsp: Arc<str>,
    conn: ConnectionHandle,
    data: Arc<Mutex<D>>,
}

impl<D> Clone for Connecting<D> {
    fn clone(&self) -> Self {
        Connecting {
            handshake: self.handshake.clone(),
            nsp: self.nsp.clone(),
            conn: self.conn,
            data: self.data.clone(),
        }
    }
}

impl<D: Clone> Connecting<D> {
    /// The handshake: request headers, query, address, auth... (`socket.handshake`).
    pub fn handshake(&self) -> &Handshake {
        &self.handshake
    }

    /// The namespace asked for (for a child of a parent namespace, its own name).
    pub fn namespace(&self) -> &str {
        &self.nsp
    }

    /// The socket's data so far (`D::default()`, or what an earlier middleware set, or what
    /// connection state recovery restored).
    pub fn data(&self) -> D {
        lock(&self.data).clone()
    }

    /// Sets the socket's data (`socket.data = ...`).
    pub fn set_data(&self, data: D) {
        *lock(&self.data) = data;
    }

    /// Changes the socket's data in place.
    pub fn with_data<R>(&self, f: impl FnOnce(&mut D) -> R) -> R {
        f(&mut lock(&self.data))
    }

    /// The connection asking.
    pub(crate) fn connection(&self) -> ConnectionHandle {
        self.conn
    }
}

/// A namespace (`io.of(name)`): its middleware and listeners, and broadcasts to it.
/// Registrations apply to the sockets that connect after them.
pub struct Namespace<D: Send + Sync + Clone + Default + 'static> {
    io: SocketIo<D>,
    name: String,
}

impl<D: Send + Sync + Clone + Default + 'static> Clone for Namespace<D> {
    fn clone(&self) -> Self {
        Namespace {
            io: self.io.clone(),
            name: self.name.clone(),
        }
    }
}

impl<D: Send + Sync + Clone + Default + 'static> Namespace<D> {
    pub(super) fn new(io: SocketIo<D>, name: &str) -> Self {
        // Asked once per name: `io.of(...)` is cheap to call from a handler.
        let added = {
            let mut reg = lock(&io.shared.registry);
            // A name a parent's rule accepts is its child's (as Node's `of` with a regex
            // parent): a handle, which does not make the child the application's own (it
            // would then never be cleaned up).
            let child = matches!(reg.owner(name), Owner::Parent(_));
            let new = !child && reg.known.insert(name.to_owned());
            new.then(|| reg.new_namespace.clone())
        };
        let nsp = Namespace::existing(io.clone(), name);
        if let Some(listeners) = added {
            let n = name.to_owned();
            io.configure(Box::new(move |ctx| {
                if let Err(e) = ctx.server.add_namespace(&n) {
                    tracing::warn!(%e, "namespace not added");
                }
            }));
            // As Node: every namespace but the main one is announced.
            if name != "/" {
                announce_namespace(&listeners, &nsp);
            }
        }
        nsp
    }

    /// A handle on a namespace the core has already (a socket's own).
    pub(super) fn existing(io: SocketIo<D>, name: &str) -> Self {
        Namespace {
            io,
            name: name.to_owned(),
        }
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn edit(&self, f: impl FnOnce(&mut Handlers<D>)) -> &Self {
        lock(&self.io.shared.registry).edit(&self.name, f);
        self
    }

    /// Adds a middleware (`nsp.use((socket, next) => ...)`): run for every socket asking to
    /// join, in registration order, each seeing the handshake and able to set the socket's
    /// data; the first `Err` refuses the socket, and the client's `connect_error` gets its
    /// message and data. If one panics, the client is refused with "Internal server error".
    /// (`use` is a Rust keyword.)
    pub fn use_<F, Fut>(&self, f: F) -> &Self
    where
        F: Fn(Connecting<D>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Rejection>> + Send + 'static,
    {
        self.edit(|h| h.middleware.push(Arc::new(move |c| Box::pin(f(c)))))
    }

    /// A middleware that decides from the client's auth payload (JSON text) alone, returning
    /// the socket's data.
    pub fn auth<F, Fut>(&self, f: F) -> &Self
    where
        F: Fn(Option<String>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<D, Rejection>> + Send + 'static,
    {
        let f = Arc::new(f);
        self.use_(move |c| {
            let (f, auth) = (f.clone(), c.handshake().auth().map(str::to_owned));
            async move {
                c.set_data(f(auth).await?);
                Ok(())
            }
        })
    }

    /// Runs when a socket has joined the namespace (`nsp.on("connection", ...)`), before
    /// any of its events: the place to register its own listeners ([`Socket::on`]). Until its
    /// first await, no event of the socket is handled. If it panics, the socket is
    /// disconnected.
    pub fn on_connection<F, Fut>(&self, f: F) -> &Self
    where
        F: Fn(Socket<D>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.edit(|h| h.connection.push(Arc::new(move |s| Box::pin(f(s)))))
    }

    /// Listens for an event from every socket of the namespace (several listeners per event
    /// run in registration order; see [`Socket::on`] for one socket's). Each event's
    /// listeners start in arrival order and run concurrently with the socket's later events.
    /// If one panics, the socket is disconnected.
    pub fn on<F, Fut>(&self, event: &str, f: F) -> &Self
    where
        F: Fn(Socket<D>, Message<D>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.edit(|h| {
            let f: EventFn<D> = Arc::new(move |s, m| Box::pin(f(s, m)));
            h.events.entry(event.to_owned()).or_default().push(f);
        })
    }

    /// Handles the events no listener of the namespace or of the socket takes.
    pub fn on_fallback<F, Fut>(&self, f: F) -> &Self
    where
        F: Fn(Socket<D>, Message<D>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.edit(|h| h.fallback = Some(Arc::new(move |s, m| Box::pin(f(s, m)))))
    }

    /// Runs when a socket is leaving (`socket.on("disconnecting", ...)` for every socket):
    /// [`Socket::rooms`] still lists the rooms it was in.
    pub fn on_disconnecting<F, Fut>(&self, f: F) -> &Self
    where
        F: Fn(Socket<D>, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.edit(|h| {
            h.disconnecting
                .push(Arc::new(move |s, r| Box::pin(f(s, r))))
        })
    }

    /// Runs when a socket has left, after `disconnecting` (`socket.on("disconnect", ...)`
    /// for every socket).
    pub fn on_disconnect<F, Fut>(&self, f: F) -> &Self
    where
        F: Fn(Socket<D>, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.edit(|h| h.disconnect.push(Arc::new(move |s, r| Box::pin(f(s, r)))))
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

    /// Listens for the namespace's room life cycle (the reference adapter's `create-room`,
    /// `delete-room`, `join-room`, `leave-room`). Called inside the driver: it must be quick
    /// (spawn for anything longer). The core reports these only with
    /// [`Config::room_events`](crate::Config::room_events) on.
    pub fn on_room_event<F>(&self, f: F) -> &Self
    where
        F: Fn(SocketIo<D>, RoomEvent) + Send + Sync + 'static,
    {
        self.edit(|h| h.rooms.push(Arc::new(f)))
    }

    fn op(&self) -> BroadcastOp<D> {
        BroadcastOp::new(self.io.clone(), self.name.clone(), None)
    }

    /// A broadcast to `room` (`nsp.to(room)`).
    pub fn to(&self, room: impl Into<crate::Str>) -> BroadcastOp<D> {
        self.op().to(room)
    }

    /// The same as [`to`](Self::to) (`nsp.in(room)`).
    pub fn in_(&self, room: impl Into<crate::Str>) -> BroadcastOp<D> {
        self.to(room)
    }

    /// Every socket but the members of `room` (`nsp.except(room)`).
    pub fn except(&self, room: impl Into<crate::Str>) -> BroadcastOp<D> {
        self.op().except(room)
    }

    /// This node only (`nsp.local`).
    pub fn local(&self) -> BroadcastOp<D> {
        self.op().local()
    }

    /// Dropped for connections that cannot take it now (`nsp.volatile`).
    pub fn volatile(&self) -> BroadcastOp<D> {
        self.op().volatile()
    }

    /// Whether to compress (`nsp.compress(bool)`).
    pub fn compress(&self, compress: bool) -> BroadcastOp<D> {
        self.op().compress(compress)
    }

    /// Acks of the next emit time out after `timeout` (`nsp.timeout(ms)`).
    pub fn timeout(&self, timeout: Duration) -> BroadcastOp<D> {
        self.op().timeout(timeout)
    }

    /// Emits to every socket of the namespace (`nsp.emit`).
    pub fn emit<T: serde::Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> Result<(), CallError> {
        self.op().emit(event, args)
    }

    /// An operator on every socket of the namespace, to add operators to or act on.
    pub fn broadcast(&self) -> BroadcastOp<D> {
        self.op()
    }

    /// Emits an event every socket of the namespace must answer (`nsp.emitWithAck`); see
    /// [`BroadcastOp::emit_with_ack`].
    pub async fn emit_with_ack<T: serde::Serialize + Send + 'static>(
        &self,
        event: &str,
        args: T,
    ) -> crate::io::tokio::Replies {
        self.op().emit_with_ack(event, args).await
    }

    /// Every socket of the namespace, on every node (`nsp.fetchSockets()`).
    pub async fn fetch_sockets(&self) -> Result<Vec<super::RemoteSocket<D>>, super::FetchError>
    where
        D: serde::Serialize,
    {
        self.op().fetch_sockets().await
    }

    /// Makes every socket of the namespace join `room` (`nsp.socketsJoin`).
    pub async fn sockets_join(&self, room: &str) -> usize {
        self.op().sockets_join(room).await
    }

    /// Makes every socket of the namespace leave `room` (`nsp.socketsLeave`).
    pub async fn sockets_leave(&self, room: &str) -> usize {
        self.op().sockets_leave(room).await
    }

    /// Disconnects every socket of the namespace (`nsp.disconnectSockets(close)`).
    pub async fn disconnect_sockets(&self, close: bool) -> usize {
        self.op().disconnect_sockets(close).await
    }

    /// Emits to other nodes' servers (`nsp.serverSideEmit`); see
    /// [`SocketIo::server_side_emit`].
    pub fn server_side_emit<T: serde::Serialize + Send + 'static>(
        &self,
        event: &str,
        args: T,
    ) -> Result<(), CallError> {
        self.io.server_side_emit(&self.name, event, args)
    }

    /// Emits to other nodes' servers and waits for each one's answer
    /// (`nsp.serverSideEmitWithAck`); see [`SocketIo::server_side_emit_with_ack`].
    pub async fn server_side_emit_with_ack<T: serde::Serialize + Send + 'static>(
        &self,
        event: &str,
        args: T,
    ) -> Result<crate::io::tokio::ServerSideResponses, CallError> {
        self.io
            .server_side_emit_with_ack(&self.name, event, args)
            .await
    }
}
