//! [`Server`]: the glue between the Engine.IO sessions ([`Engine`]), the router (namespaces,
//! sockets, rooms) and the one ack table.
//!
//! - `dispatch`: Socket.IO packets from clients.
//! - `app`: the application's calls (accept, join, emit, ack, ...).
//! - `acks`: every answer the server waits for.
//! - `broadcast`: the `to` / `except` builder and the fan-out.

mod acks;
mod app;
mod broadcast;
mod children;
mod client;
mod cluster;
mod dispatch;
mod event;
mod handshake;
mod recovery;
mod requests;
mod streams;

pub use broadcast::{Broadcast, FetchedSocket};
#[cfg(feature = "tokio")]
pub(crate) use cluster::event_data;
pub use cluster::{
    ClusterConfig, ClusterSubscription, ClusterTransmit, Command, NodeCount, SessionFound,
    SessionRestore, StreamOffset,
};
pub use event::{
    AckError, AckHandle, AckRequest, BroadcastAckHandle, ClusterError, ClusterReply,
    ConnectRequest, Event, RequestHandle, ServerSideAck,
};
pub use handshake::Handshake;
pub use recovery::RecoveryStats;

use crate::config::ConfigError;
use crate::engine::session::{
    driven_by_inherent_methods, Driven, Engine, EngineEvent, HttpAction, HttpRequest, HttpResponse,
    RequestError, RequestId, Transmit,
};
use crate::engine::Frame;
use crate::handle::{ConnectionHandle, NamespaceId, SocketHandle};
use crate::id::{OsRandom, RandomError, RandomSource, Sid};
use crate::packet::{Decoder, EncodeError, Encoded};
use crate::router::{Router, BLOCKED, POLLING};
use crate::timers::{earliest, Fifo};
use crate::{Config, DisconnectReason, Str};
use acks::Acks;
use bytes::Bytes;
use client::{Client, Clients};
use smallvec::SmallVec;
use std::collections::VecDeque;
use std::time::Instant;

/// Why an application call was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The socket is gone (or the handle is stale).
    #[error("unknown or disconnected socket")]
    UnknownSocket,
    /// The connection is gone (or the handle is stale).
    #[error("unknown or closed connection")]
    UnknownConnection,
    /// The connect request's connection closed, or it left the namespace, before the decision.
    #[error("connect request no longer pending")]
    UnknownRequest,
    /// No namespace has that name.
    #[error("unknown namespace {0:?}")]
    UnknownNamespace(String),
    /// The namespace was removed: it was an empty child
    /// ([`Config::cleanup_empty_child_namespaces`]), and its id is stale.
    #[error("the namespace was removed")]
    RemovedNamespace,
    /// The packet could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// No randomness for a new socket id: the socket is not created.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// This node already waits on [`ClusterConfig::max_requests`] cluster requests.
    #[error("too many cluster requests in flight")]
    ClusterBusy,
    /// The cluster's protocol has no such operation (`allRooms` over sharded Pub/Sub).
    #[error("{0} is not supported by the cluster's protocol")]
    ClusterUnsupported(&'static str),
}

/// Decides whether a namespace name a client asks for exists (dynamic namespaces).
type NamespaceFilter = Box<dyn Fn(&str) -> bool + Send>;

/// The Socket.IO server core: a deterministic state machine with no I/O, no clock and no
/// threads.
///
/// Drive it with inputs (`handle_*`), then drain its outputs: [`poll_transmit`](Self::poll_transmit)
/// until `None`, [`poll_event`](Self::poll_event) until `None`, and wake it at
/// [`poll_timeout`](Self::poll_timeout) with [`handle_timeout`](Self::handle_timeout).
/// `D` is the per-socket user data, set when the application accepts a socket.
///
/// See the [crate documentation](crate) for the whole drive loop.
pub struct Server<D = ()> {
    engine: Engine,
    router: Router,
    dynamic: Option<NamespaceFilter>,
    clients: Clients,
    /// User data, indexed by socket slot.
    socks: Vec<Option<D>>,
    /// The CONNECT auth of sockets that sent one, by socket slot (their handshake).
    auths: ahash::AHashMap<u32, Str>,
    /// What the adapter told of the request that opened each session, for those it did.
    infos: ahash::AHashMap<ConnectionHandle, std::sync::Arc<crate::RequestInfo>>,
    /// The info of the request being handled, until its session opens.
    opening: Option<std::sync::Arc<crate::RequestInfo>>,
    acks: Acks,
    connect_due: Fifo<ConnectionHandle>,
    /// This node's part in a cluster, if it is in one.
    cluster: Option<Box<cluster::ClusterNode<D>>>,
    /// Connection state recovery, when on.
    recovery: Option<Box<recovery::Recovery<D>>>,
    /// The latest time an input carried: when sessions are stored and packets logged (calls
    /// without a time of their own happen at it).
    clock: Option<Instant>,
    next_seq: u64,
    events: VecDeque<Event>,
}

impl<D> std::fmt::Debug for Server<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("connections", &self.engine.connection_count())
            .field("sockets", &self.router.socket_count())
            .finish_non_exhaustive()
    }
}

impl<D> Server<D> {
    /// A server with `config`, drawing ids from the operating system. It has the main
    /// namespace `/`; add others with [`add_namespace`](Self::add_namespace). Refused if
    /// the configuration does not [validate](Config::validate).
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        Self::with_random(config, Box::new(OsRandom))
    }

    /// A server drawing ids from `rng` (a seeded one makes runs reproducible).
    pub fn with_random(
        config: Config,
        rng: Box<dyn RandomSource + Send>,
    ) -> Result<Self, ConfigError> {
        let connect_due = Fifo::new(config.connect_timeout);
        let recovery = config.recovery.clone();
        let mut engine = Engine::with_random(config, rng)?;
        engine.track_changes();
        let recovery = recovery.map(|r| Box::new(recovery::Recovery::new(r, engine.rng())));
        let mut router = Router::default();
        router.add_namespace(Str::from_static("/"), false);
        Ok(Server {
            engine,
            router,
            dynamic: None,
            clients: Clients::default(),
            socks: Vec::new(),
            auths: ahash::AHashMap::default(),
            infos: ahash::AHashMap::default(),
            opening: None,
            acks: Acks::default(),
            connect_due,
            cluster: None,
            recovery,
            clock: None,
            next_seq: 0,
            events: VecDeque::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        self.engine.config()
    }

    /// The parser every packet is written in ([`Config::parser`]): encode packets for
    /// [`emit_encoded`](Self::emit_encoded) and the like with it.
    pub fn parser(&self) -> crate::packet::Parser {
        self.engine.config().parser
    }

    // ---- Namespaces -------------------------------------------------------------------

    /// Adds a namespace (idempotent). Its name starts with `/` and has no `,`.
    pub fn add_namespace(&mut self, name: &str) -> Result<NamespaceId, Error> {
        if !name.starts_with('/') || name.contains(',') {
            return Err(Error::UnknownNamespace(name.to_owned()));
        }
        let nsp = self.router.add_namespace(Str::from(name), false);
        self.adapter_for_new(nsp);
        Ok(nsp)
    }

    /// Lets clients create namespaces on demand: a CONNECT to an unknown name for which
    /// `exists` is true creates that namespace (each matching name its own namespace).
    pub fn set_dynamic_namespaces(&mut self, exists: impl Fn(&str) -> bool + Send + 'static) {
        self.dynamic = Some(Box::new(exists));
    }

    /// The namespace with this name, if it exists.
    pub fn namespace(&self, name: &str) -> Option<NamespaceId> {
        self.router.namespace(name)
    }

    /// The name of a namespace; `None` if it was removed.
    pub fn namespace_name(&self, nsp: NamespaceId) -> Option<&Str> {
        self.router.nsp_name(nsp)
    }

    /// The name of a namespace that must still exist.
    pub(crate) fn live_nsp_name(&self, nsp: NamespaceId) -> Result<Str, Error> {
        self.router
            .nsp_name(nsp)
            .cloned()
            .ok_or(Error::RemovedNamespace)
    }

    /// Every namespace.
    pub fn namespaces(&self) -> impl Iterator<Item = (NamespaceId, &Str)> {
        self.router.namespaces()
    }

    // ---- Outputs ------------------------------------------------------------------------

    /// The next thing to write. Call after every input until it returns `None`. The batch
    /// returned borrows buffers the next call reuses.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        // Answering held GETs changes whether their sockets can take volatile packets.
        self.engine.flush_polling();
        while let Some(conn) = self.engine.take_changed() {
            self.sync_flags(conn);
        }
        self.engine.poll_transmit()
    }

    /// The next application event. Call after every input until it returns `None`.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        let e = self.events.pop_front();
        if let Some(Event::NamespaceRemoved { nsp, .. }) = &e {
            self.router.remove_namespace(*nsp);
        }
        e
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest([
            self.engine.poll_timeout(),
            self.connect_due.next(),
            self.acks.next_timeout(),
            self.cluster
                .as_deref()
                .and_then(|c| c.requests.poll_timeout()),
            self.recovery.as_deref().and_then(|r| r.poll_timeout()),
            self.pending_deadline(),
        ])
    }

    /// Runs every timer due at `now`. Calling it early, or twice, does nothing harmful.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.engine.handle_timeout(now);
        self.pump(Some(now));
        while let Some((_, h)) = self.connect_due.pop_due(now) {
            if self.clients.get(h).is_some_and(|c| c.sockets.is_empty()) {
                self.close(h, DisconnectReason::ConnectTimeout);
            }
        }
        self.acks.handle_timeout(now, &mut self.events);
        if let Some(c) = self.cluster.as_deref_mut() {
            for done in c.requests.handle_timeout(now) {
                self.request_finished(done);
            }
        }
        if let Some(r) = self.recovery.as_deref_mut() {
            r.handle_timeout(now);
        }
        self.expire_pending(now);
    }

    // ---- HTTP and WebSocket inputs -------------------------------------------------------

    /// The checks the reference makes of a request before its `allowRequest` hook
    /// ([`Engine::verify`](crate::engine::session::Engine::verify)); changes nothing.
    pub fn verify(&self, req: &HttpRequest<'_>) -> Result<(), RequestError> {
        self.engine.verify(req)
    }

    /// An HTTP request arrived on the Engine.IO path.
    pub fn handle_http(&mut self, now: Instant, req: HttpRequest<'_>) -> HttpAction {
        // Kept only if this request opens a session (long-polling: its `Opened` event;
        // WebSocket: the accepted connection).
        self.opening = req.info.map(|i| std::sync::Arc::new(i.clone()));
        let action = self.engine.handle_http(now, req);
        // Taken here only for a WebSocket: a long-polling session's `Opened` takes it in `pump`.
        if let HttpAction::AcceptWebSocket(conn) = &action {
            if let Some(info) = self.opening.take() {
                self.infos.entry(*conn).or_insert(info);
            }
        }
        self.pump(Some(now));
        self.opening = None;
        action
    }

    /// What the adapter told of the HTTP request that opened a connection's session.
    pub fn request_info(&self, conn: ConnectionHandle) -> Option<&crate::RequestInfo> {
        self.infos.get(&conn).map(|b| &**b)
    }

    /// What the adapter told of the request that opened a connection's session, shared.
    pub fn session_info(
        &self,
        conn: ConnectionHandle,
    ) -> Option<std::sync::Arc<crate::RequestInfo>> {
        self.infos.get(&conn).cloned()
    }

    /// The transport a socket's connection uses now (`"polling"`, `"websocket"`).
    pub fn transport(&self, socket: crate::SocketHandle) -> Option<&'static str> {
        self.engine.transport_name(self.socket_connection(socket)?)
    }

    /// A socket's handshake (Node's `socket.handshake`): its session's first request and its
    /// CONNECT's auth. Empty for a socket that is gone.
    pub fn handshake(&self, socket: crate::SocketHandle) -> Handshake {
        let info = self
            .socket_connection(socket)
            .and_then(|c| self.infos.get(&c).cloned());
        let auth = self
            .router
            .slot_live(socket.slot as usize)
            .then(|| self.auths.get(&socket.slot).cloned())
            .flatten();
        Handshake::new(info, auth)
    }

    /// The body of a POST the core asked for with [`HttpAction::ReadBody`].
    pub fn handle_post_body(
        &mut self,
        now: Instant,
        request: RequestId,
        body: Bytes,
    ) -> HttpResponse {
        let response = self.engine.handle_post_body(now, request, body);
        self.pump(Some(now));
        response
    }

    /// The body of a POST the core asked for was larger than
    /// [`Limits::max_payload`](crate::Limits): the adapter stopped reading it. The session
    /// closes; the answer is 413.
    pub fn handle_post_too_large(&mut self, now: Instant, request: RequestId) -> HttpResponse {
        let response = self.engine.handle_post_too_large(now, request);
        self.pump(Some(now));
        response
    }

    /// A held GET or a POST being read ended without an answer (the client went away).
    pub fn handle_request_aborted(&mut self, now: Instant, request: RequestId) {
        self.engine.handle_request_aborted(now, request);
        self.pump(Some(now));
    }

    /// The WebSocket accepted with [`HttpAction::AcceptWebSocket`] is open.
    pub fn handle_ws_open(&mut self, now: Instant, conn: ConnectionHandle) {
        self.engine.handle_ws_open(now, conn);
        self.pump(Some(now));
    }

    /// A WebSocket message arrived.
    pub fn handle_ws_message(&mut self, now: Instant, conn: ConnectionHandle, frame: Frame) {
        self.engine.handle_ws_message(now, conn, frame);
        self.pump(Some(now));
    }

    /// The WebSocket of a connection closed (or its handshake failed).
    pub fn handle_ws_closed(&mut self, now: Instant, conn: ConnectionHandle) {
        self.engine.handle_ws_closed(now, conn);
        self.pump(Some(now));
    }

    /// The adapter's write queue for a WebSocket is full (`blocked`) or has room again.
    /// Volatile packets skip blocked connections.
    pub fn set_blocked(&mut self, conn: ConnectionHandle, blocked: bool) {
        self.engine.set_blocked(conn, blocked);
        self.pump(None);
    }

    /// The adapter's write queue for a connection overflowed: close it as a slow consumer.
    pub fn handle_slow_consumer(&mut self, now: Instant, conn: ConnectionHandle) {
        self.engine.handle_slow_consumer(now, conn);
        self.pump(Some(now));
    }

    // ---- The glue ---------------------------------------------------------------------------

    /// Takes what the session layer reported: new sessions, messages to decode, closed
    /// sessions, and routing changes. `now` is `None` only after calls that cannot open a
    /// session.
    fn pump(&mut self, now: Option<Instant>) {
        if let Some(now) = now {
            self.tick(now);
        }
        while let Some(e) = self.engine.poll_event() {
            match e {
                EngineEvent::Opened { conn } => {
                    if let Some(info) = self.opening.take() {
                        self.infos.entry(conn).or_insert(info);
                    }
                    let limits = self.engine.config().limits;
                    let decoder = Decoder::with_parser(self.parser(), limits);
                    self.clients.insert(Client::new(conn, decoder));
                    if let Some(now) = now {
                        self.connect_due.push(now, conn);
                    }
                }
                EngineEvent::Message { conn, message } => self.on_message(conn, message),
                EngineEvent::Closed { conn, reason } => self.on_closed(conn, reason),
                EngineEvent::Upgraded { conn } => self.events.push_back(Event::Upgraded { conn }),
            }
        }
        while let Some(conn) = self.engine.take_changed() {
            self.sync_flags(conn);
        }
    }

    /// Moves the clock forward to `now` (never back).
    fn tick(&mut self, now: Instant) {
        self.clock = Some(self.clock.map_or(now, |c| c.max(now)));
    }

    fn on_closed(&mut self, conn: ConnectionHandle, reason: DisconnectReason) {
        self.infos.remove(&conn);
        let Some(client) = self.clients.get(conn) else {
            return;
        };
        if let Some(r) = self.recovery.as_deref_mut() {
            for &(_, seq) in client.pending() {
                r.forget(seq);
            }
        }
        let pending: SmallVec<[NamespaceId; 2]> = client.pending().iter().map(|p| p.0).collect();
        let sockets: SmallVec<[SocketHandle; 2]> = client.sockets.iter().map(|(_, s)| *s).collect();
        for s in sockets {
            self.remove_socket(s, reason);
        }
        self.clients.remove(conn);
        for nsp in pending {
            self.connect_settled(nsp);
            self.remove_if_unused(nsp);
        }
        self.events
            .push_back(Event::ConnectionClosed { conn, reason });
        let clients = &self.clients;
        if self.connect_due.len() > 2 * clients.len() + 64 {
            self.connect_due.retain(|h| clients.get(*h).is_some());
        }
    }

    /// Closes a connection: the session ends with `reason`, which its `Closed` event carries
    /// back to [`on_closed`](Self::on_closed): every socket disconnects with it there, before
    /// `ConnectionClosed` is reported.
    fn close(&mut self, h: ConnectionHandle, reason: DisconnectReason) {
        self.engine.close(h, reason);
        self.pump(None);
    }

    /// Recomputes the routing flags of a connection's sockets from its session's state.
    fn sync_flags(&mut self, h: ConnectionHandle) {
        let (Some((over_ws, can_take)), Some(client)) = (self.engine.route(h), self.clients.get(h))
        else {
            return;
        };
        let mut flags = 0;
        if !over_ws {
            flags |= POLLING;
        }
        if !can_take {
            flags |= BLOCKED;
        }
        for &(_, s) in &client.sockets {
            self.router.set_flags(s, flags, !flags);
        }
    }

    fn send_encoded(&mut self, h: ConnectionHandle, e: &Encoded, volatile: bool) {
        let frames: SmallVec<[Frame; 2]> = e.frames().collect();
        self.engine.send(h, &frames, volatile);
        self.pump(None);
    }

    /// Removes a socket: leaves its rooms, fails its pending acks, reports it.
    fn remove_socket(&mut self, s: SocketHandle, reason: DisconnectReason) {
        // The connection's slot, not its handle: its session may already be gone.
        let (Some(nsp), Some(sid), Some(conn)) = (
            self.router.namespace_of(s),
            self.router.sid(s).map(Str::from),
            self.router.conn_slot_of(s),
        ) else {
            return;
        };
        // Kept before it leaves its rooms (the reference persists after `disconnecting`).
        self.keep_session(s, nsp, reason);
        // What `disconnecting` listeners read: the rooms it had, its own first.
        let rooms = self.router.rooms_of(s);
        let left = self.router.leave_all(s);
        self.room_left_events(nsp, s, left);
        self.room_events(nsp, s, sid.clone(), Some(false), false);
        self.router.remove_socket(s);
        if let Some(c) = self.clients.at_mut(conn) {
            c.sockets.retain(|(_, x)| *x != s);
        }
        self.socks[s.slot as usize] = None;
        self.auths.remove(&s.slot);
        self.acks.socket_gone(s, &mut self.events);
        self.events.push_back(Event::Disconnected {
            socket: s,
            sid,
            nsp,
            reason,
            rooms,
        });
        self.remove_if_unused(nsp);
    }

    /// The connection of a socket.
    fn conn_of(&self, s: SocketHandle) -> Option<ConnectionHandle> {
        self.engine.handle_at(self.router.conn_slot_of(s)?)
    }

    fn next(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn next_ack_id(&mut self, nsp: NamespaceId) -> u64 {
        // A removed namespace's emits fail when its name is looked up.
        let Some(n) = self.router.nsp_mut(nsp) else {
            return 0;
        };
        let id = n.next_ack_id;
        n.next_ack_id = n.next_ack_id.wrapping_add(1);
        id
    }

    /// A random id used by no socket.
    fn fresh_sid(&mut self) -> Result<Sid, RandomError> {
        loop {
            let sid = Sid::random(self.engine.rng())?;
            if self.router.by_sid(sid.as_str()).is_none() {
                return Ok(sid);
            }
        }
    }

    /// Checks the internal indexes; for tests and fuzzing. `Err` names the first broken one.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        self.router.check_invariants()?;
        self.engine.check_invariants()?;
        // Sessions whose WebSocket has not opened yet have no client.
        if self.clients.len() > self.engine.connection_count() {
            return Err(format!(
                "{} clients for {} sessions",
                self.clients.len(),
                self.engine.connection_count()
            ));
        }
        for c in self.clients.iter() {
            if !self.engine.contains(c.conn) {
                return Err(format!("client of a gone session {:?}", c.conn));
            }
            for &(nsp, s) in &c.sockets {
                if self.conn_of(s) != Some(c.conn) {
                    return Err(format!("{:?} lists a socket that is not its own", c.conn));
                }
                if self.router.namespace_of(s) != Some(nsp) {
                    return Err("socket namespace mismatch".into());
                }
            }
        }
        if let Some(slot) = self
            .auths
            .keys()
            .find(|&&k| !self.router.slot_live(k as usize))
        {
            return Err(format!("auth kept for gone socket slot {slot}"));
        }
        if let Some(r) = self.recovery.as_deref() {
            r.check_invariants(|s| self.router.contains(s))?;
        }
        self.acks.check_invariants(
            |s| self.router.contains(s),
            |slot| self.router.slot_live(slot as usize),
        )
    }

    /// Timer entries and pending waits the server holds (live and stale timer entries
    /// together): zero once every connection is gone and every timer has run. For leak checks.
    pub fn pending_work(&self) -> usize {
        self.engine.timer_count()
            + self.connect_due.len()
            + self.acks.timer_count()
            + self.acks.len()
            + self.cluster.as_deref().map_or(0, |c| c.requests.len())
            + self.recovery.as_deref().map_or(0, |r| r.pending_work())
            + self.cluster.as_deref().map_or(0, |c| c.pending.len())
    }
}

driven_by_inherent_methods!(D; Server<D>);
