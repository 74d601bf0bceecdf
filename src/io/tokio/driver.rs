//! The driver task: the one owner of the core. Inputs arrive as commands on two bounded lanes
//! (network input, application calls); after each batch of them, the core's outputs go to
//! connection writers, waiting requests and socket tasks.
//!
//! The driver knows nothing of the application API above it: what it needs from there (the
//! middleware of a namespace, starting a socket's task) it asks through hooks. It drives any
//! [`Core`]: the Socket.IO [`Server`], or a bare Engine.IO [`Engine`] (the I/O side is the
//! same, through [`Driven`]; only what becomes of their events differs).

use super::credit::ConnCredit;
use super::outbox::{Outbox, Queued};
use super::shared::{
    panic_message, AuthFn, CallError, ConnectInfo, Credit, Rejection, Replies, Reply, SocketEvent,
    SocketTx,
};
use super::ws;
use super::Options;
use crate::engine::session::{Driven, Engine, EngineEvent};
use crate::engine::Frame;
use crate::io::websocket::close_frame;
use crate::packet::Encoded;
use crate::packet::Payload;
use crate::{
    AckError, AckHandle, BroadcastAckHandle, Config, ConfigError, ConnectRequest, ConnectionHandle,
    Event, HttpAction, HttpRequest, HttpResponse, Method, RequestId, Server, SocketHandle, Str,
    Transmit,
};
use bytes::Bytes;
use futures_util::FutureExt;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// What a request to the cluster collected, and why it is incomplete if it is.
pub(crate) type ClusterResult = (crate::ClusterReply, Option<crate::ClusterError>);

/// A boxed application call run inside the driver.
pub(crate) type CallFn<C> = Box<dyn FnOnce(&mut Ctx<C>) + Send>;

/// A core the driver can own: the Socket.IO [`Server`] or a bare Engine.IO [`Engine`].
pub trait Core: Driven + Send + Sized + 'static {
    /// What the layer above registers to receive the core's events.
    #[doc(hidden)]
    type Hooks: ?Sized + Send + Sync + 'static;
    /// Builds the core (the configuration was validated).
    #[doc(hidden)]
    fn build(config: Config) -> Result<Self, ConfigError>;
    /// Hands every event the core has to its destination; whether there was any.
    #[doc(hidden)]
    fn dispatch_events(ctx: &mut Ctx<Self>) -> bool;
    /// What may watch the core's events from inside the driver ([`Observer`] for the
    /// Socket.IO server).
    #[doc(hidden)]
    type Observer: ?Sized + Send + 'static;
    /// Hands every message for the cluster to the transport; whether there was any.
    #[doc(hidden)]
    fn flush_cluster(_ctx: &mut Ctx<Self>) -> bool {
        false
    }
}

/// What the driver asks of the Socket.IO layer above it. Public only because [`Core`] names
/// it; it lives in this private module, so nothing outside the crate can use or implement it.
#[doc(hidden)]
#[allow(private_interfaces)]
pub trait SocketHooks<D: Send + Sync + Clone + Default + 'static>: Send + Sync {
    /// The connection middleware of a namespace, if it has one.
    fn auth(&self, link: &Link<Server<D>>, nsp: &str) -> Option<AuthFn<D>>;
    /// The core created a child namespace (a client asked for it).
    fn namespace_created(&self, link: &Link<Server<D>>, nsp: &str);
    /// The core removed a child namespace.
    fn namespace_removed(&self, nsp: &str);
    /// Starts the task running a new socket's handlers; returns its queue.
    fn connected(&self, link: &Link<Server<D>>, socket: NewSocket<D>) -> SocketTx;
    /// Whether any socket listens to what is emitted to it ([`outgoing`](Self::outgoing)).
    fn wants_outgoing(&self) -> bool;
    /// An application emit, about to go to `sockets`.
    fn outgoing(&self, sockets: &[SocketHandle], e: &Encoded);
    /// A room came or went, or a socket joined or left one (only with `Config::room_events`).
    fn room_event(&self, link: &Link<Server<D>>, e: RoomEvent);
    /// Another node's `serverSideEmit` of `event` to namespace `nsp`: runs its handler.
    fn server_side(
        &self,
        link: &Link<Server<D>>,
        nsp: &str,
        event: crate::packet::Event,
        ack: Option<crate::ServerSideAck>,
    );
}

/// A socket that just joined its namespace, as the layer above gets it.
pub(crate) struct NewSocket<D> {
    pub(crate) handle: SocketHandle,
    pub(crate) sid: Str,
    pub(crate) nsp: String,
    pub(crate) data: D,
    pub(crate) recovered: bool,
    pub(crate) handshake: crate::Handshake,
    /// Whether its connection is on WebSocket already.
    pub(crate) websocket: bool,
}

/// A room's life-cycle event (the reference adapter's `create-room`, `delete-room`,
/// `join-room`, `leave-room`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RoomEvent {
    /// A room came to exist in namespace `nsp`.
    Created {
        /// The namespace.
        nsp: String,
        /// The room.
        room: Str,
    },
    /// A room ceased to exist.
    Deleted {
        /// The namespace.
        nsp: String,
        /// The room.
        room: Str,
    },
    /// A socket (by id) joined a room.
    Joined {
        /// The namespace.
        nsp: String,
        /// The room.
        room: Str,
        /// The socket's id.
        id: Str,
    },
    /// A socket left a room.
    Left {
        /// The namespace.
        nsp: String,
        /// The room.
        room: Str,
        /// The socket's id.
        id: Str,
    },
}

/// Watches the core's events from inside the driver, before they are dispatched (the Admin UI's
/// instrumentation). Public only because [`Core`] names it; nothing outside the crate can
/// implement it.
#[doc(hidden)]
#[allow(private_interfaces)]
pub trait Observer<D: Send + Sync + Clone + Default + 'static>: Send {
    /// An event of the core, about to be dispatched. Must be cheap when there is nothing to do.
    fn event(&mut self, ctx: &mut Ctx<Server<D>>, e: &Event);
    /// A periodic call from the application (server statistics).
    fn tick(&mut self, ctx: &mut Ctx<Server<D>>);
    /// Whether it wants the sockets each application emit goes to ([`outgoing`](Self::outgoing));
    /// asked before any work is done for it.
    fn wants_outgoing(&self) -> bool {
        false
    }
    /// An application emit, about to go to `sockets`.
    fn outgoing(&mut self, _ctx: &mut Ctx<Server<D>>, _sockets: &[SocketHandle], _e: &Encoded) {}
    /// An application emit went to `reached` sockets on this node.
    fn sent(&mut self, _reached: usize, _e: &Encoded) {}
}

/// What the driver hands the cluster transport (read by the one in this crate, `io::redis`;
/// without it nothing installs a sink).
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) enum ClusterOutput {
    /// A message to publish.
    Transmit(crate::ClusterTransmit),
    /// Subscribe or unsubscribe.
    Subscription(crate::ClusterSubscription),
}

/// Where the driver hands its cluster output (the Redis transport). Called inside the driver:
/// it must not block.
pub(crate) type ClusterSink = Box<dyn FnMut(ClusterOutput) + Send>;

/// Handles bare Engine.IO messages, inside the driver.
pub(crate) type EngineFn =
    Arc<dyn Fn(&mut Ctx<Engine>, ConnectionHandle, crate::engine::Message) + Send + Sync>;

/// What the driver asks of a bare Engine.IO application.
#[doc(hidden)]
pub trait EngineHooks: Send + Sync {
    /// The handler of messages, if any.
    fn message(&self) -> Option<EngineFn>;
}

pub(crate) enum Cmd<C: Core> {
    Http {
        method: Method,
        query: String,
        websocket: bool,
        content_length: Option<u64>,
        /// For a request that may open a session: what its handshake keeps.
        info: Option<Box<crate::RequestInfo>>,
        reply: oneshot::Sender<HttpReply>,
    },
    /// The checks before an `allowRequest` hook ([`Driven::verify`]); changes nothing.
    Verify {
        method: Method,
        query: String,
        websocket: bool,
        reply: oneshot::Sender<Result<(), crate::RequestError>>,
    },
    PostBody {
        request: RequestId,
        body: Option<Bytes>,
        reply: oneshot::Sender<PostReply>,
    },
    Aborted(RequestId),
    WsOpen {
        conn: ConnectionHandle,
        outbox: Arc<Outbox>,
    },
    WsMessage {
        conn: ConnectionHandle,
        frame: Frame,
        /// Taken by the reader for a frame that may carry an event.
        credit: Credit,
    },
    WsClosed {
        conn: ConnectionHandle,
    },
    Unblock(ConnectionHandle),
    Call(CallFn<C>),
    Shutdown(oneshot::Sender<()>),
}

/// The driver's answer to an HTTP request.
pub(crate) struct HttpReply {
    pub(crate) action: HttpAction,
    /// For a held GET: where its body will come from.
    pub(crate) poll: Option<oneshot::Receiver<Bytes>>,
    /// For an accepted WebSocket: the connection's input credit.
    pub(crate) credit: Option<Arc<ConnCredit>>,
}

/// The driver's answer to a POST body.
pub(crate) struct PostReply {
    pub(crate) response: HttpResponse,
    /// Events of this POST that found no credit: the answer waits until they would fit, so
    /// the client's next POST waits too.
    pub(crate) owed: Option<Owed>,
}

/// Events queued past their connection's credit.
pub(crate) struct Owed {
    pub(crate) credit: Arc<ConnCredit>,
    pub(crate) events: u32,
    pub(crate) bytes: usize,
}

/// The ways into the driver: the network lane (awaited: back-pressure) and the application
/// lane (synchronous calls: refused when full, never blocking).
pub(crate) struct Link<C: Core> {
    net: mpsc::Sender<Cmd<C>>,
    calls: mpsc::Sender<Cmd<C>>,
    refused: Arc<AtomicU64>,
}

impl<C: Core> Clone for Link<C> {
    fn clone(&self) -> Self {
        Link {
            net: self.net.clone(),
            calls: self.calls.clone(),
            refused: self.refused.clone(),
        }
    }
}

/// The receiving ends of a [`Link`], for [`run`].
pub(crate) struct Lanes<C: Core> {
    net: mpsc::Receiver<Cmd<C>>,
    calls: mpsc::Receiver<Cmd<C>>,
}

/// A link and its lanes, bounded by `options` (validated).
pub(crate) fn link<C: Core>(options: &Options) -> (Link<C>, Lanes<C>) {
    let (net, net_rx) = mpsc::channel(options.input_queue);
    let (calls, calls_rx) = mpsc::channel(options.call_queue);
    (
        Link {
            net,
            calls,
            refused: Arc::default(),
        },
        Lanes {
            net: net_rx,
            calls: calls_rx,
        },
    )
}

impl<C: Core> Link<C> {
    /// Network input: waits while the driver is behind. Queued at once when there is room;
    /// only a wait allocates, so a connection's resident task stays small.
    pub(crate) fn input(&self, cmd: Cmd<C>) -> impl std::future::Future<Output = ()> + Send + '_
    where
        C: Send,
    {
        let wait = match self.net.try_send(cmd) {
            Err(mpsc::error::TrySendError::Full(cmd)) => Some(Box::pin(self.net.send(cmd))),
            _ => None,
        };
        async move {
            if let Some(wait) = wait {
                let _ = wait.await;
            }
        }
    }

    /// Network input from where nothing can wait (a `Drop`): queued now if there is room, else
    /// by a task of its own. Only used once per request, so those tasks are bounded by the
    /// requests in progress.
    pub(crate) fn input_detached(&self, cmd: Cmd<C>)
    where
        C: Send,
    {
        if let Err(mpsc::error::TrySendError::Full(cmd)) = self.net.try_send(cmd) {
            let net = self.net.clone();
            tokio::spawn(async move {
                let _ = net.send(cmd).await;
            });
        }
    }

    /// A synchronous application call: queued, or refused at once.
    pub(crate) fn try_call(&self, f: CallFn<C>) -> Result<(), CallError> {
        self.calls.try_send(Cmd::Call(f)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => CallError::Full,
            mpsc::error::TrySendError::Closed(_) => CallError::Stopped,
        })
    }

    /// A configuration call that must arrive, from where nothing can wait: queued now if there
    /// is room, else by a task of its own (bounded by how often the application configures).
    pub(crate) fn call_detached(&self, f: CallFn<C>)
    where
        C: Send,
    {
        if let Err(mpsc::error::TrySendError::Full(cmd)) = self.calls.try_send(Cmd::Call(f)) {
            let calls = self.calls.clone();
            tokio::spawn(async move {
                let _ = calls.send(cmd).await;
            });
        }
    }

    /// A synchronous call whose signature cannot carry the refusal: logged and counted.
    pub(crate) fn call_or_log(&self, what: &'static str, f: CallFn<C>) {
        if let Err(e) = self.try_call(f) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            tracing::error!(%e, "{what} refused");
        }
    }

    /// An application call from async code: waits for room.
    pub(crate) async fn call(&self, f: CallFn<C>) -> Result<(), CallError> {
        self.calls
            .send(Cmd::Call(f))
            .await
            .map_err(|_| CallError::Stopped)
    }

    /// Shutdown goes down the call lane, behind the calls already made.
    pub(crate) async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.calls.send(Cmd::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// A slot of the call lane reserved in advance, for an answer that must not be refused.
    pub(crate) async fn reserve(&self) -> Option<mpsc::OwnedPermit<Cmd<C>>> {
        self.calls.clone().reserve_owned().await.ok()
    }

    /// How many calls were refused by [`call_or_log`](Self::call_or_log).
    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// How many connections one batch must write to before other workers take a share.
const SHARED_WRITES: usize = 128;

/// A WebSocket's queue as the driver sees it.
struct Writer {
    conn: ConnectionHandle,
    outbox: Arc<Outbox>,
}

/// `conn`'s writer in `writers`, if it is still the one open.
fn writer_of(writers: &[Option<Writer>], conn: ConnectionHandle) -> Option<&Writer> {
    writers
        .get(conn.index())
        .and_then(Option::as_ref)
        .filter(|w| w.conn == conn)
}

/// Where [`Outbox::queue`]'s and [`Outbox::send`]'s answers leave a connection.
struct Outcome<'a> {
    dirty: &'a mut Vec<ConnectionHandle>,
    blocked: &'a mut Vec<ConnectionHandle>,
    slow: &'a mut Vec<ConnectionHandle>,
}

impl Outcome<'_> {
    /// Notes what `queued` says of `conn`; whether it has frames to write now. With `listed`,
    /// such a connection joins the batch's list of queues to write at its end.
    fn note(&mut self, conn: ConnectionHandle, queued: Queued, listed: bool) -> bool {
        match queued {
            Queued::Yes { dirty, blocked } => {
                if dirty && listed {
                    self.dirty.push(conn);
                }
                if blocked {
                    self.blocked.push(conn);
                }
                dirty
            }
            Queued::Full => {
                self.slow.push(conn);
                false
            }
            Queued::Gone | Queued::Skipped => false,
        }
    }
}

/// Has the runtime's other workers write `part`'s queues, in `tasks` shares: on loopback a
/// write also pays for the receiving side of TCP, and one thread writing a large broadcast
/// alone would make its last recipients wait for all the others.
fn write_shares<C: Core>(
    link: &Link<C>,
    mut part: Vec<(ConnectionHandle, Arc<Outbox>)>,
    tasks: usize,
) {
    let share = part.len().div_ceil(tasks.max(1));
    while !part.is_empty() {
        let mine = part.split_off(part.len().saturating_sub(share));
        let link = link.clone();
        tokio::spawn(async move {
            for (conn, outbox) in mine {
                if outbox.write_now().unblocked {
                    link.input(Cmd::Unblock(conn)).await;
                }
            }
        });
    }
}

/// The driver's state, lent to application calls ([`SocketIo::call`](super::SocketIo::call)):
/// the core itself, and the adapter's tables.
pub struct Ctx<C: Core> {
    /// The core.
    pub server: C,
    link: Link<C>,
    hooks: Arc<C::Hooks>,
    options: Arc<Options>,
    writers: Vec<Option<Writer>>,
    /// WebSockets with frames queued in this batch, written at its end.
    dirty: Vec<ConnectionHandle>,
    /// The runtime's worker threads, to share large writes with.
    workers: usize,
    /// The current broadcast's frames, as the WebSocket frames its recipients share.
    wire: Vec<super::outbox::Frame>,
    polls: HashMap<RequestId, oneshot::Sender<Bytes>>,
    pub(crate) acks: HashMap<AckHandle, oneshot::Sender<Result<Payload, AckError>>>,
    pub(crate) broadcast_acks: HashMap<BroadcastAckHandle, oneshot::Sender<Replies>>,
    pub(crate) cluster_replies:
        HashMap<crate::RequestHandle, oneshot::Sender<Result<ClusterResult, crate::Error>>>,
    pub(crate) cluster_sink: Option<ClusterSink>,
    sockets: HashMap<SocketHandle, SocketTx>,
    /// Each connection's input credit, created on first need.
    credits: HashMap<ConnectionHandle, Arc<ConnCredit>>,
    /// The credit the WebSocket frame being handled came with.
    current: Credit,
    /// Events of the POST being handled that found no credit.
    owed: Option<Owed>,
    /// What watches the core's events, if anything does.
    pub(crate) observer: Option<Box<C::Observer>>,
}

impl<C: Core> Ctx<C> {
    /// The time to pass to the core's calls that take one.
    pub fn now(&self) -> Instant {
        Instant::now()
    }

    /// How many connections have a WebSocket open (the others are long-polling).
    pub(crate) fn websocket_count(&self) -> usize {
        self.writers.iter().filter(|w| w.is_some()).count()
    }

    /// Whether `conn` talks over a WebSocket.
    pub(crate) fn is_websocket(&self, conn: ConnectionHandle) -> bool {
        writer_of(&self.writers, conn).is_some()
    }
}

pub(crate) async fn run<C: Core>(
    config: Config,
    options: Arc<Options>,
    mut lanes: Lanes<C>,
    link: Link<C>,
    hooks: Arc<C::Hooks>,
) {
    let mut ctx = Ctx {
        server: match C::build(config) {
            Ok(server) => server,
            Err(e) => {
                // `SocketIo::try_new` validated it: unreachable, but never a panic.
                tracing::error!(%e, "invalid configuration: the server does not start");
                return;
            }
        },
        link,
        hooks,
        options,
        writers: Vec::new(),
        dirty: Vec::new(),
        workers: tokio::runtime::Handle::current().metrics().num_workers(),
        wire: Vec::new(),
        polls: HashMap::new(),
        acks: HashMap::new(),
        broadcast_acks: HashMap::new(),
        cluster_replies: HashMap::new(),
        cluster_sink: None,
        sockets: HashMap::new(),
        credits: HashMap::new(),
        current: None,
        owed: None,
        observer: None,
    };
    loop {
        let deadline = ctx.server.poll_timeout();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // Application calls first: they are answers and releases, which let input drain.
            biased;
            cmd = lanes.calls.recv() => {
                let Some(cmd) = cmd else { break };
                ctx.batch(cmd, &mut lanes);
            }
            cmd = lanes.net.recv() => {
                let Some(cmd) = cmd else { break };
                ctx.batch(cmd, &mut lanes);
            }
            () = sleep => {
                ctx.server.handle_timeout(Instant::now());
                ctx.flush();
            }
        }
    }
}

impl<C: Core> Ctx<C> {
    /// Handles `first` and what else is already queued, then writes: one flush per batch.
    fn batch(&mut self, first: Cmd<C>, lanes: &mut Lanes<C>) {
        let mut shutdown = self.handle(first);
        for _ in 0..256 {
            let cmd = match lanes.calls.try_recv() {
                Ok(cmd) => cmd,
                Err(_) => match lanes.net.try_recv() {
                    Ok(cmd) => cmd,
                    Err(_) => break,
                },
            };
            shutdown = shutdown.or(self.handle(cmd));
        }
        self.flush();
        if let Some(done) = shutdown {
            let _ = done.send(());
        }
    }

    fn handle(&mut self, cmd: Cmd<C>) -> Option<oneshot::Sender<()>> {
        let now = Instant::now();
        match cmd {
            Cmd::Http {
                method,
                query,
                websocket,
                content_length,
                info,
                reply,
            } => {
                let mut request = HttpRequest::new(method, &query);
                request.websocket = websocket;
                request.content_length = content_length;
                request.info = info.as_deref();
                let action = self.server.handle_http(now, request);
                let mut r = HttpReply {
                    action,
                    poll: None,
                    credit: None,
                };
                match r.action {
                    HttpAction::Hold(id) => {
                        let (tx, rx) = oneshot::channel();
                        self.polls.insert(id, tx);
                        r.poll = Some(rx);
                    }
                    HttpAction::AcceptWebSocket(conn) => r.credit = Some(self.credit(conn)),
                    _ => {}
                }
                let _ = reply.send(r);
            }
            Cmd::Verify {
                method,
                query,
                websocket,
                reply,
            } => {
                let mut request = HttpRequest::new(method, &query);
                request.websocket = websocket;
                let _ = reply.send(self.server.verify(&request));
            }
            Cmd::PostBody {
                request,
                body,
                reply,
            } => {
                let response = match body {
                    Some(body) => self.server.handle_post_body(now, request, body),
                    None => self.server.handle_post_too_large(now, request),
                };
                // Its events now, while it is known which of them found no credit.
                self.owed = None;
                self.dispatch_events();
                let owed = self.owed.take();
                let _ = reply.send(PostReply { response, owed });
            }
            Cmd::Aborted(request) => {
                self.polls.remove(&request);
                self.server.handle_request_aborted(now, request);
            }
            Cmd::WsOpen { conn, outbox } => {
                let i = conn.index();
                if self.writers.len() <= i {
                    self.writers.resize_with(i + 1, || None);
                }
                self.writers[i] = Some(Writer { conn, outbox });
                self.server.handle_ws_open(now, conn);
            }
            Cmd::WsMessage {
                conn,
                frame,
                credit,
            } => {
                self.server.handle_ws_message(now, conn, frame);
                // Its event now, so the frame's credit goes with it; a frame that carried none
                // (an attachment still incomplete, a ping) releases it here.
                self.current = credit;
                self.dispatch_events();
                self.current = None;
            }
            Cmd::WsClosed { conn } => {
                self.drop_writer(conn, false);
                self.server.handle_ws_closed(now, conn);
            }
            Cmd::Unblock(conn) => {
                // Unless it blocked again since its task sent this.
                if self.writer(conn).is_some_and(|w| !w.outbox.is_blocked()) {
                    self.server.set_blocked(conn, false);
                }
            }
            Cmd::Call(f) => {
                if let Err(p) = std::panic::catch_unwind(AssertUnwindSafe(|| f(self))) {
                    tracing::error!(panic = panic_message(&*p), "application call panicked");
                }
            }
            Cmd::Shutdown(done) => {
                self.server.shutdown();
                return Some(done);
            }
        }
        None
    }

    /// The input credit of a connection.
    fn credit(&mut self, conn: ConnectionHandle) -> Arc<ConnCredit> {
        let (events, bytes) = (self.options.socket_queue, self.options.socket_queue_bytes);
        self.credits
            .entry(conn)
            .or_insert_with(|| ConnCredit::new(events, bytes))
            .clone()
    }

    fn writer(&mut self, conn: ConnectionHandle) -> Option<&mut Writer> {
        self.writers
            .get_mut(conn.index())
            .and_then(Option::as_mut)
            .filter(|w| w.conn == conn)
    }

    /// Forgets a WebSocket; `close`: the core closed it, so its task writes what is queued,
    /// then a close frame.
    fn drop_writer(&mut self, conn: ConnectionHandle, close: bool) {
        if let Some(slot) = self.writers.get_mut(conn.index()) {
            if slot.as_ref().is_some_and(|w| w.conn == conn) {
                if let (Some(w), true) = (slot.take(), close) {
                    w.outbox.close(Arc::new(close_frame(None)));
                }
            }
        }
    }

    fn dispatch_events(&mut self) -> bool {
        C::dispatch_events(self)
    }

    /// Writes, once per connection, everything this batch queued for it; `unblocked` gets the
    /// connections whose queue fell under its low-water mark. Past [`SHARED_WRITES`]
    /// connections the runtime's other workers write a share each ([`write_shares`]).
    fn write_queued(&mut self, unblocked: &mut Vec<ConnectionHandle>) {
        let mut dirty = std::mem::take(&mut self.dirty);
        if dirty.len() >= SHARED_WRITES && self.workers > 1 {
            let others = dirty.len() / self.workers * (self.workers - 1);
            let part = dirty
                .drain(dirty.len() - others..)
                .filter_map(|conn| self.writer(conn).map(|w| (conn, w.outbox.clone())))
                .collect();
            write_shares(&self.link, part, self.workers - 1);
        }
        for conn in dirty.drain(..) {
            if let Some(w) = self.writer(conn) {
                if w.outbox.write_now().unblocked {
                    unblocked.push(conn);
                }
            }
        }
        self.dirty = dirty;
    }

    /// Hands every output of the core to its destination, until there is none.
    pub(crate) fn flush(&mut self) {
        loop {
            let mut slow = Vec::new();
            let mut blocked = Vec::new();
            let mut closed = Vec::new();
            let mut any = false;
            while let Some(t) = self.server.poll_transmit() {
                any = true;
                match t {
                    Transmit::WebSocket {
                        to,
                        frames,
                        volatile,
                        more,
                        ..
                    } => {
                        // Framed once: every recipient queues the same buffers.
                        self.wire.clear();
                        self.wire.extend(frames.iter().map(ws::wire_frame));
                        let writer = |conn| writer_of(&self.writers, conn);
                        let mut outcome = Outcome {
                            dirty: &mut self.dirty,
                            blocked: &mut blocked,
                            slow: &mut slow,
                        };
                        let mut recipients = to.iter();
                        // With nothing behind this batch, each recipient's frames go out now
                        // (`send`) rather than at the end of the batch; past SHARED_WRITES the
                        // other workers take a share first, queued here so that what the next
                        // batch queues stays behind it.
                        let others = if !more && to.len() >= SHARED_WRITES && self.workers > 1 {
                            to.len() / self.workers * (self.workers - 1)
                        } else {
                            0
                        };
                        if others > 0 {
                            let mut part = Vec::with_capacity(others);
                            for conn in recipients.by_ref().take(others) {
                                let Some(w) = writer(conn) else { continue };
                                let queued = w.outbox.queue(&self.wire, volatile);
                                if outcome.note(conn, queued, false) {
                                    part.push((conn, w.outbox.clone()));
                                }
                            }
                            write_shares(&self.link, part, self.workers - 1);
                        }
                        for conn in recipients {
                            let Some(w) = writer(conn) else { continue };
                            let queued = if more {
                                w.outbox.queue(&self.wire, volatile)
                            } else {
                                w.outbox.send(&self.wire, volatile)
                            };
                            outcome.note(conn, queued, true);
                        }
                    }
                    Transmit::PollResponse { request, body, .. } => {
                        if let Some(tx) = self.polls.remove(&request) {
                            let _ = tx.send(body.clone());
                        }
                    }
                    Transmit::Close { conn, reason } => {
                        tracing::debug!(?conn, %reason, "connection closed");
                        closed.push(conn);
                    }
                    Transmit::CloseWebSocket { conn } => closed.push(conn),
                }
            }
            self.wire.clear();
            let mut unblocked = Vec::new();
            self.write_queued(&mut unblocked);
            for conn in closed {
                self.drop_writer(conn, true);
            }
            let now = Instant::now();
            for conn in slow {
                tracing::debug!(?conn, "slow consumer");
                self.server.handle_slow_consumer(now, conn);
            }
            for conn in blocked {
                self.server.set_blocked(conn, true);
            }
            for conn in unblocked {
                self.server.set_blocked(conn, false);
            }
            any |= self.dispatch_events();
            any |= C::flush_cluster(self);
            if !any {
                break;
            }
        }
    }
}

impl<D: Send + Sync + Clone + Default + 'static> Core for Server<D> {
    type Hooks = dyn SocketHooks<D>;
    type Observer = dyn Observer<D>;

    fn build(config: Config) -> Result<Self, ConfigError> {
        Server::new(config)
    }

    fn dispatch_events(ctx: &mut Ctx<Self>) -> bool {
        let mut any = false;
        while let Some(e) = ctx.server.poll_event() {
            any = true;
            ctx.dispatch(e);
        }
        any
    }

    fn flush_cluster(ctx: &mut Ctx<Self>) -> bool {
        let mut any = false;
        while let Some(c) = ctx.server.poll_cluster_subscription() {
            any = true;
            if let Some(sink) = ctx.cluster_sink.as_mut() {
                sink(ClusterOutput::Subscription(c));
            }
        }
        while let Some(t) = ctx.server.poll_cluster_transmit() {
            any = true;
            match ctx.cluster_sink.as_mut() {
                Some(sink) => sink(ClusterOutput::Transmit(t)),
                // No transport: a request's node count never comes, it ends at its timeout.
                None => tracing::debug!(channel = %t.channel, "no cluster transport"),
            }
        }
        any
    }
}

impl<D: Send + Sync + Clone + Default + 'static> Ctx<Server<D>> {
    /// The name of a namespace an event is about (its id names it until its removal is read).
    fn nsp_name(&self, nsp: crate::NamespaceId) -> String {
        self.server
            .namespace_name(nsp)
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    /// The credit for an event of `socket`: the frame's own, else one taken from its
    /// connection now; failing that, none, and the POST being handled owes one.
    fn credit_for(&mut self, socket: SocketHandle, event: &crate::packet::Event) -> Credit {
        if let Some(p) = self.current.take() {
            return Some(p);
        }
        let conn = self.server.socket_connection(socket)?;
        let credit = self.credit(conn);
        let data = event.data();
        let len = data.json().len() + data.attachments().iter().map(|a| a.len()).sum::<usize>();
        let permit = credit.try_acquire(len);
        if permit.is_none() {
            let owed = self.owed.get_or_insert(Owed {
                credit,
                events: 0,
                bytes: 0,
            });
            owed.events = owed.events.saturating_add(1);
            owed.bytes = owed.bytes.saturating_add(len);
        }
        permit
    }

    /// An application emit of `e` to the sockets `selected` picks, which `emit` then sends and
    /// whose count it returns: the observer, if any, sees both.
    pub(crate) fn emit_observed(
        &mut self,
        e: &Encoded,
        selected: impl FnOnce(&mut Server<D>) -> Vec<SocketHandle>,
        emit: impl FnOnce(&mut Server<D>) -> usize,
    ) {
        let listeners = self.hooks.wants_outgoing();
        let mut observer = self.observer.take();
        let watched = observer.as_ref().is_some_and(|o| o.wants_outgoing());
        if listeners || watched {
            let sockets = selected(&mut self.server);
            if listeners {
                self.hooks.outgoing(&sockets, e);
            }
            if let Some(o) = observer.as_mut().filter(|_| watched) {
                o.outgoing(self, &sockets, e);
            }
        }
        let reached = emit(&mut self.server);
        if let Some(mut o) = observer {
            o.sent(reached, e);
            self.observer = Some(o);
        }
    }

    /// Runs the observer's periodic work, if there is an observer.
    pub(crate) fn tick_observer(&mut self) {
        if let Some(mut o) = self.observer.take() {
            o.tick(self);
            self.observer = Some(o);
        }
    }

    fn dispatch(&mut self, e: Event) {
        if let Some(mut o) = self.observer.take() {
            o.event(self, &e);
            self.observer = Some(o);
        }
        match e {
            Event::ConnectRequest {
                request,
                nsp_name,
                auth,
                ..
            } => match self.hooks.auth(&self.link, &nsp_name) {
                Some(auth_fn) => {
                    let link = self.link.clone();
                    let conn = request.connection();
                    let info = ConnectInfo {
                        handshake: crate::Handshake::new(self.server.session_info(conn), auth),
                        conn,
                        nsp: nsp_name.to_string(),
                        restored: self.server.restored_data(&request).cloned(),
                    };
                    tokio::spawn(async move {
                        let decision = AssertUnwindSafe(async move { auth_fn(info).await })
                            .catch_unwind()
                            .await
                            .unwrap_or_else(|p| {
                                tracing::error!(
                                    panic = panic_message(&*p),
                                    nsp = %nsp_name,
                                    "connection middleware panicked"
                                );
                                Err(Rejection::new("Internal server error"))
                            });
                        let r = link
                            .call(Box::new(move |ctx| decide(ctx, request, decision)))
                            .await;
                        if let Err(e) = r {
                            tracing::debug!(%e, "connect decision not delivered");
                        }
                    });
                }
                None => {
                    let data = self.server.restored_data(&request).cloned();
                    decide(self, request, Ok(data.unwrap_or_default()));
                }
            },
            Event::Connected {
                socket,
                sid,
                nsp,
                recovered,
            } => {
                let new = NewSocket {
                    handle: socket,
                    sid,
                    nsp: self.nsp_name(nsp),
                    data: self.server.data(socket).cloned().unwrap_or_default(),
                    recovered,
                    handshake: self.server.handshake(socket),
                    websocket: self.server.transport(socket) == Some("websocket"),
                };
                let tx = self.hooks.connected(&self.link, new);
                self.sockets.insert(socket, tx);
            }
            Event::NamespaceCreated { name, .. } => {
                self.hooks.namespace_created(&self.link, &name);
            }
            Event::NamespaceRemoved { name, .. } => self.hooks.namespace_removed(&name),
            Event::RoomCreated { nsp, room } => {
                let nsp = self.nsp_name(nsp);
                self.hooks
                    .room_event(&self.link, RoomEvent::Created { nsp, room });
            }
            Event::RoomDeleted { nsp, room } => {
                let nsp = self.nsp_name(nsp);
                self.hooks
                    .room_event(&self.link, RoomEvent::Deleted { nsp, room });
            }
            Event::RoomJoined { nsp, room, sid, .. } => {
                let nsp = self.nsp_name(nsp);
                let e = RoomEvent::Joined { nsp, room, id: sid };
                self.hooks.room_event(&self.link, e);
            }
            Event::RoomLeft { nsp, room, sid, .. } => {
                let nsp = self.nsp_name(nsp);
                let e = RoomEvent::Left { nsp, room, id: sid };
                self.hooks.room_event(&self.link, e);
            }
            Event::Message { socket, event, ack } => {
                let credit = self.credit_for(socket, &event);
                let delivered = self.sockets.get(&socket).is_some_and(|tx| {
                    tx.send(Box::new(SocketEvent::Message { event, ack, credit }))
                        .is_ok()
                });
                if !delivered {
                    tracing::warn!(?socket, "event for a socket without a task");
                }
            }
            Event::Ack { ack, result, .. } => {
                if let Some(tx) = self.acks.remove(&ack) {
                    let _ = tx.send(result);
                }
            }
            Event::BroadcastAck {
                ack,
                replies,
                remote,
                expected,
                timed_out,
            } => {
                if let Some(tx) = self.broadcast_acks.remove(&ack) {
                    let local = replies
                        .into_iter()
                        .map(|(socket, args)| Reply {
                            socket,
                            id: self.server.sid(socket).map(Str::from).unwrap_or_default(),
                            args,
                        })
                        .collect();
                    let _ = tx.send(Replies {
                        local,
                        remote,
                        expected,
                        timed_out,
                    });
                }
            }
            Event::Disconnected {
                socket,
                reason,
                rooms,
                ..
            } => {
                if let Some(tx) = self.sockets.remove(&socket) {
                    let _ = tx.send(Box::new(SocketEvent::Disconnected { reason, rooms }));
                }
            }
            Event::ServerSideEmit { nsp, event, ack } => {
                let name = self.nsp_name(nsp);
                self.hooks.server_side(&self.link, &name, event, ack);
            }
            Event::ClusterReply {
                request,
                reply,
                error,
            } => {
                if let Some(tx) = self.cluster_replies.remove(&request) {
                    let _ = tx.send(Ok((reply, error)));
                }
            }
            Event::Upgraded { conn } => {
                for socket in self.server.connection_sockets(conn) {
                    if let Some(tx) = self.sockets.get(&socket) {
                        let _ = tx.send(Box::new(SocketEvent::Upgraded));
                    }
                }
            }
            Event::ConnectionClosed { conn, .. } => {
                // Closed, it ends the waits on it: a reader, a POST holding its answer back.
                if let Some(credit) = self.credits.remove(&conn) {
                    credit.close();
                }
            }
        }
    }
}

/// Applies the middleware's decision on a connect request.
fn decide<D: Send + Sync + Clone + Default + 'static>(
    ctx: &mut Ctx<Server<D>>,
    request: ConnectRequest,
    decision: Result<D, Rejection>,
) {
    let r = match decision {
        // A recovering socket's middleware started from its restored data.
        Ok(data) => ctx.server.accept(request, data).map(drop),
        Err(rejection) => ctx
            .server
            .reject(request, &rejection.message, rejection.data.as_ref()),
    };
    if let Err(e) = r {
        tracing::debug!(%e, "connect decision too late");
    }
}

impl Core for Engine {
    type Hooks = dyn EngineHooks;
    type Observer = dyn Send;

    fn build(config: Config) -> Result<Self, ConfigError> {
        Engine::new(config)
    }

    fn dispatch_events(ctx: &mut Ctx<Self>) -> bool {
        let mut any = false;
        while let Some(e) = ctx.server.poll_event() {
            any = true;
            match e {
                EngineEvent::Message { conn, message } => {
                    let Some(f) = ctx.hooks.message() else {
                        continue;
                    };
                    let r = std::panic::catch_unwind(AssertUnwindSafe(|| f(ctx, conn, message)));
                    if let Err(p) = r {
                        tracing::error!(
                            panic = panic_message(&*p),
                            "engine message handler panicked"
                        );
                        let _ = ctx.server.close_connection(conn);
                    }
                }
                EngineEvent::Closed { conn, .. } => {
                    if let Some(credit) = ctx.credits.remove(&conn) {
                        credit.close();
                    }
                }
                _ => {}
            }
        }
        // A message holds no credit past its handler: the handler ran.
        ctx.current = None;
        any
    }
}
