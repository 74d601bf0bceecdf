//! [`Server`]: the one state machine that ties sessions, namespaces, rooms and acks together.

mod broadcast;
mod conn;
mod event;
mod http;
mod transmit;

pub use broadcast::{Broadcast, FetchedSocket};
pub use event::{AckError, AckHandle, BroadcastAckHandle, ConnectRequest, DisconnectReason, Event};
pub use http::{HttpAction, HttpRequest, HttpResponse, Method, RequestError, RequestId};
pub use transmit::Transmit;

use crate::engine::{self, Frame, Handshake, Message};
use crate::handle::{ConnectionHandle, NamespaceId, SocketHandle};
use crate::id::{IdIndex, OsRandom, RandomSource, Sid};
use crate::packet::{Decoder, EncodeError, Encoded, Packet, Payload};
use crate::router::{Router, BLOCKED, POLLING};
use crate::slab::Slab;
use crate::{Config, Str};
use ahash::AHashMap;
use bytes::Bytes;
use conn::{Conn, Transport, Upgrade, Ws};
use serde::Serialize;
use smallvec::SmallVec;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};
use transmit::Out;

/// Why an application call was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket is gone (or the handle is stale).
    #[error("unknown or disconnected socket")]
    UnknownSocket,
    /// The connection is gone (or the handle is stale).
    #[error("unknown or closed connection")]
    UnknownConnection,
    /// The connect request was already decided, or its connection closed.
    #[error("unknown or already decided connect request")]
    UnknownRequest,
    /// No namespace has that name.
    #[error("unknown namespace {0:?}")]
    UnknownNamespace(String),
    /// The packet could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Decides whether a namespace name a client asks for exists (dynamic namespaces).
type NamespaceFilter = Box<dyn Fn(&str) -> bool + Send>;

/// What a pending ack entry on a socket waits for.
#[derive(Debug, Clone, Copy)]
enum PendingAck {
    Single(AckHandle),
    Broadcast(u64),
}

#[derive(Debug)]
struct BroadcastAckState {
    /// Sockets the broadcast reached.
    expected: usize,
    /// Of those, the ones still connected: answers can only come from them.
    answerable: usize,
    replies: Vec<(SocketHandle, Payload)>,
    /// The socket slots asked, so those that never answered can be cleared at the end.
    recipients: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum AckTimer {
    Single(u64),
    Broadcast(u64),
}

/// A deadline queue for one fixed duration: deadlines come in the order they are pushed, so a
/// FIFO suffices (no heap), one per heartbeat phase.
type Fifo<T> = VecDeque<(Instant, T)>;

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
    config: Config,
    rng: Box<dyn RandomSource + Send>,
    router: Router,
    dynamic: Option<NamespaceFilter>,
    conns: Slab<Conn>,
    free_conns: Vec<u32>,
    conn_by_sid: IdIndex,
    /// User data, indexed by socket slot.
    socks: Vec<Option<D>>,
    /// Ack ids each socket owes an answer to, and who waits for it. Only sockets with acks
    /// pending have an entry: an idle socket costs nothing here.
    acks: AHashMap<u32, SmallVec<[(u64, PendingAck); 2]>>,

    ping_due: Fifo<(ConnectionHandle, u32)>,
    pong_due: Fifo<(ConnectionHandle, u32)>,
    connect_due: Fifo<ConnectionHandle>,
    upgrade_due: Fifo<(ConnectionHandle, u32)>,
    ack_due: BinaryHeap<Reverse<(Instant, AckTimer)>>,

    next_seq: u64,
    single_acks: AHashMap<u64, (SocketHandle, u64)>,
    broadcast_acks: AHashMap<u64, BroadcastAckState>,
    requests: AHashMap<u64, ConnectionHandle>,

    out: VecDeque<Out>,
    current: Option<Out>,
    spare: Vec<Vec<ConnectionHandle>>,
    dirty: Vec<ConnectionHandle>,
    events: VecDeque<Event>,
}

impl<D> std::fmt::Debug for Server<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("connections", &(self.conns.len() - self.free_conns.len()))
            .field("sockets", &self.router.socket_count())
            .finish_non_exhaustive()
    }
}

const PING: Frame = Frame::Text(Str::from_static("2"));
const CLOSE: Frame = Frame::Text(Str::from_static("1"));
const PONG_PROBE: Frame = Frame::Text(Str::from_static("3probe"));
const TEXT_PLAIN: &str = "text/plain; charset=UTF-8";

impl<D> Server<D> {
    /// A server with `config`, drawing ids from the operating system. It has the main
    /// namespace `/`; add others with [`add_namespace`](Self::add_namespace).
    pub fn new(config: Config) -> Self {
        Self::with_random(config, Box::new(OsRandom))
    }

    /// A server drawing ids from `rng` (a seeded one makes runs reproducible).
    pub fn with_random(config: Config, rng: Box<dyn RandomSource + Send>) -> Self {
        let mut router = Router::default();
        router.add_namespace(Str::from_static("/"));
        Server {
            config,
            rng,
            router,
            dynamic: None,
            conns: Slab::default(),
            free_conns: Vec::new(),
            conn_by_sid: IdIndex::default(),
            socks: Vec::new(),
            acks: AHashMap::default(),
            ping_due: VecDeque::new(),
            pong_due: VecDeque::new(),
            connect_due: VecDeque::new(),
            upgrade_due: VecDeque::new(),
            ack_due: BinaryHeap::new(),
            next_seq: 0,
            single_acks: AHashMap::default(),
            broadcast_acks: AHashMap::default(),
            requests: AHashMap::default(),
            out: VecDeque::new(),
            current: None,
            spare: Vec::new(),
            dirty: Vec::new(),
            events: VecDeque::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    // ---- Namespaces -------------------------------------------------------------------

    /// Adds a namespace (idempotent). Its name starts with `/` and has no `,`.
    pub fn add_namespace(&mut self, name: &str) -> Result<NamespaceId, Error> {
        if !name.starts_with('/') || name.contains(',') {
            return Err(Error::UnknownNamespace(name.to_owned()));
        }
        Ok(self.router.add_namespace(Str::from(name)))
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

    /// The name of a namespace.
    pub fn namespace_name(&self, nsp: NamespaceId) -> &Str {
        &self.router.nsp(nsp).name
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
        if let Some(Out::Ws { mut to, .. }) = self.current.take() {
            to.clear();
            self.spare.push(to);
        }
        self.flush_polling();
        self.current = self.out.pop_front();
        self.current.as_ref().map(Out::as_transmit)
    }

    /// The next application event. Call after every input until it returns `None`.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.ping_due.front().map(|e| e.0),
            self.pong_due.front().map(|e| e.0),
            self.connect_due.front().map(|e| e.0),
            self.upgrade_due.front().map(|e| e.0),
            self.ack_due.peek().map(|e| e.0 .0),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs every timer due at `now`. Calling it early, or twice, does nothing harmful.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, (h, round))) = self.ping_due.front().filter(|e| e.0 <= now) {
            self.ping_due.pop_front();
            let Some(c) = self.conn_mut(h) else { continue };
            if c.heartbeat != round || c.awaiting_pong {
                continue;
            }
            c.awaiting_pong = true;
            self.send(h, &[PING], false);
            self.pong_due
                .push_back((at + self.config.ping_timeout, (h, round)));
        }
        while let Some(&(_, (h, round))) = self.pong_due.front().filter(|e| e.0 <= now) {
            self.pong_due.pop_front();
            if self
                .conn(h)
                .is_some_and(|c| c.heartbeat == round && c.awaiting_pong)
            {
                self.close(h, DisconnectReason::PingTimeout);
            }
        }
        while let Some(&(_, h)) = self.connect_due.front().filter(|e| e.0 <= now) {
            self.connect_due.pop_front();
            if !self.config.engine_only && self.conn(h).is_some_and(|c| c.sockets.is_empty()) {
                self.close(h, DisconnectReason::ConnectTimeout);
            }
        }
        while let Some(&(_, (h, n))) = self.upgrade_due.front().filter(|e| e.0 <= now) {
            self.upgrade_due.pop_front();
            if self.conn(h).is_some_and(
                |c| matches!(c.p().upgrade, Upgrade::Started(m) | Upgrade::Probed(m) if m == n),
            ) {
                self.abort_upgrade(h);
            }
        }
        while let Some(Reverse((_, timer))) = self.ack_due.peek().copied().filter(|e| e.0 .0 <= now)
        {
            self.ack_due.pop();
            match timer {
                AckTimer::Single(id) => {
                    if let Some((socket, ack_id)) = self.single_acks.remove(&id) {
                        self.take_ack(socket.slot, ack_id);
                        self.events.push_back(Event::Ack {
                            ack: AckHandle(id),
                            socket,
                            result: Err(AckError::Timeout),
                        });
                    }
                }
                AckTimer::Broadcast(id) => self.finish_broadcast_ack(id, true),
            }
        }
    }

    // ---- HTTP and WebSocket inputs -------------------------------------------------------

    /// An HTTP request arrived on the Engine.IO path.
    pub fn handle_http(&mut self, now: Instant, req: HttpRequest<'_>) -> HttpAction {
        let q = http::Query::parse(req.query);
        let transport = match q.transport {
            Some("polling") => Transport::Polling,
            Some("websocket") => Transport::WebSocket,
            _ => return HttpAction::Respond(RequestError::UnknownTransport.response()),
        };
        let Some(sid) = q.sid else {
            return self.handshake(now, req, q.eio, transport);
        };
        let Some(h) = self.conn_slot_by_sid(sid).map(|slot| self.handle_of(slot)) else {
            return HttpAction::Respond(RequestError::UnknownSid.response());
        };
        let c = &self.conns[h.slot() as usize];
        if transport == Transport::WebSocket {
            let may_upgrade = req.websocket
                && self.config.allow_upgrades
                && c.transport == Transport::Polling
                && c.ws == Ws::None;
            if !may_upgrade {
                return HttpAction::Respond(RequestError::BadRequest.response());
            }
            let c = &mut self.conns[h.slot() as usize];
            c.ws = Ws::Accepting;
            return HttpAction::AcceptWebSocket(h);
        }
        if c.transport != Transport::Polling {
            return HttpAction::Respond(RequestError::BadRequest.response());
        }
        match req.method {
            Method::Get => {
                if c.p().held_get.is_some() {
                    // Two GETs at once break ordering: the reference closes the session.
                    self.close(h, DisconnectReason::TransportError);
                    return HttpAction::Respond(RequestError::BadRequest.response());
                }
                if matches!(c.p().upgrade, Upgrade::Probed(_)) {
                    return HttpAction::Respond(HttpResponse::ok(
                        TEXT_PLAIN,
                        Bytes::from_static(b"6"),
                    ));
                }
                if !c.p().queue.is_empty() {
                    let body = self.drain_queue(h);
                    return HttpAction::Respond(HttpResponse::ok(TEXT_PLAIN, body));
                }
                let id = self.new_request(h);
                self.conns[h.slot() as usize].pm().held_get = Some(id);
                self.sync_flags(h);
                HttpAction::Hold(id)
            }
            Method::Post => {
                if c.p().post.is_some() {
                    self.close(h, DisconnectReason::TransportError);
                    return HttpAction::Respond(RequestError::BadRequest.response());
                }
                if req
                    .content_length
                    .is_some_and(|n| n > self.config.limits.max_payload as u64)
                {
                    self.close(h, DisconnectReason::TransportError);
                    return HttpAction::Respond(HttpResponse::payload_too_large());
                }
                let id = self.new_request(h);
                self.conns[h.slot() as usize].pm().post = Some(id);
                HttpAction::ReadBody(id)
            }
            Method::Other => HttpAction::Respond(RequestError::BadRequest.response()),
        }
    }

    fn handshake(
        &mut self,
        now: Instant,
        req: HttpRequest<'_>,
        eio: Option<&str>,
        transport: Transport,
    ) -> HttpAction {
        if req.method != Method::Get {
            return HttpAction::Respond(RequestError::BadHandshakeMethod.response());
        }
        if eio != Some("4") {
            return HttpAction::Respond(RequestError::UnsupportedProtocolVersion.response());
        }
        if transport == Transport::WebSocket && !req.websocket {
            return HttpAction::Respond(RequestError::BadRequest.response());
        }
        let Some(h) = self.new_conn(now, transport) else {
            // Every connection slot is taken: refuse, as an `allowRequest` hook would.
            return HttpAction::Respond(RequestError::Forbidden.response());
        };
        match transport {
            Transport::Polling => {
                let open = self.open_packet(h, self.config.allow_upgrades);
                self.start_heartbeat(h, now);
                HttpAction::Respond(HttpResponse::ok(TEXT_PLAIN, open.into_bytes()))
            }
            Transport::WebSocket => {
                self.conns[h.slot() as usize].ws = Ws::Accepting;
                HttpAction::AcceptWebSocket(h)
            }
        }
    }

    /// The body of a POST the core asked for with [`HttpAction::ReadBody`].
    pub fn handle_post_body(
        &mut self,
        now: Instant,
        request: RequestId,
        body: Bytes,
    ) -> HttpResponse {
        let Some(h) = self.take_request(request) else {
            return RequestError::BadRequest.response();
        };
        if let Some(c) = self.conn_mut(h) {
            c.pm().post = None;
        }
        if body.len() > self.config.limits.max_payload {
            self.close(h, DisconnectReason::TransportError);
            return HttpResponse::payload_too_large();
        }
        let packets = match engine::decode_payload(body, &self.config.limits) {
            Ok(p) => p,
            Err(_) => {
                self.close(h, DisconnectReason::ParseError);
                return RequestError::BadRequest.response();
            }
        };
        for packet in packets {
            match packet {
                Ok(p) => self.on_engine_packet(now, h, p, false),
                Err(_) => {
                    self.close(h, DisconnectReason::ParseError);
                    return RequestError::BadRequest.response();
                }
            }
            if self.conn(h).is_none() {
                break;
            }
        }
        HttpResponse::ok("text/html", Bytes::from_static(b"ok"))
    }

    /// The body of a POST the core asked for was larger than
    /// [`Limits::max_payload`](crate::Limits): the adapter stopped reading it. The session
    /// closes; the answer is 413.
    pub fn handle_post_too_large(&mut self, _now: Instant, request: RequestId) -> HttpResponse {
        if let Some(h) = self.take_request(request) {
            self.close(h, DisconnectReason::TransportError);
        }
        HttpResponse::payload_too_large()
    }

    /// A held GET or a POST being read ended without an answer (the client went away).
    pub fn handle_request_aborted(&mut self, _now: Instant, request: RequestId) {
        let Some(h) = self.take_request(request) else {
            return;
        };
        let Some(c) = self.conn_mut(h) else { return };
        if c.p().held_get == Some(request) {
            c.pm().held_get = None;
            // As the reference: a poll closed prematurely ends the session.
            self.close(h, DisconnectReason::TransportError);
        } else if c.p().post == Some(request) {
            c.pm().post = None;
        }
    }

    /// The WebSocket accepted with [`HttpAction::AcceptWebSocket`] is open.
    pub fn handle_ws_open(&mut self, now: Instant, conn: ConnectionHandle) {
        let upgrade_timeout = self.config.upgrade_timeout;
        let Some(c) = self.conn_mut(conn) else { return };
        if c.ws != Ws::Accepting {
            return;
        }
        c.ws = Ws::Open;
        if c.transport == Transport::WebSocket {
            let open = self.open_packet(conn, false);
            self.send(conn, &[Frame::Text(open)], false);
            self.start_heartbeat(conn, now);
            self.sync_flags(conn);
        } else {
            c.pm().upgrades += 1;
            let n = c.p().upgrades;
            c.pm().upgrade = Upgrade::Started(n);
            self.upgrade_due
                .push_back((now + upgrade_timeout, (conn, n)));
        }
    }

    /// A WebSocket message arrived.
    pub fn handle_ws_message(&mut self, now: Instant, conn: ConnectionHandle, frame: Frame) {
        let Some(c) = self.conn(conn) else { return };
        if c.ws != Ws::Open {
            return;
        }
        let packet = match engine::Packet::decode_limited(frame, &self.config.limits) {
            Ok(p) => p,
            Err(engine::DecodeError::TooLarge { .. }) => {
                return self.close(conn, DisconnectReason::TransportError)
            }
            Err(_) => return self.close(conn, DisconnectReason::ParseError),
        };
        self.on_engine_packet(now, conn, packet, true);
    }

    /// The WebSocket of a connection closed (or its handshake failed).
    pub fn handle_ws_closed(&mut self, _now: Instant, conn: ConnectionHandle) {
        let Some(c) = self.conn(conn) else { return };
        if c.transport == Transport::WebSocket {
            self.close(conn, DisconnectReason::TransportClose);
        } else if c.ws != Ws::None {
            let c = &mut self.conns[conn.slot() as usize];
            c.ws = Ws::None;
            c.pm().upgrade = Upgrade::None;
            // Frames held back during the upgrade may now go to a waiting GET.
            self.dirty.push(conn);
            self.sync_flags(conn);
        }
    }

    /// The adapter's write queue for a WebSocket is full (`blocked`) or has room again.
    /// Volatile packets skip blocked connections.
    pub fn set_blocked(&mut self, conn: ConnectionHandle, blocked: bool) {
        if let Some(c) = self.conn_mut(conn) {
            c.blocked = blocked;
            self.sync_flags(conn);
        }
    }

    /// The adapter's write queue for a connection overflowed: close it as a slow consumer.
    pub fn handle_slow_consumer(&mut self, _now: Instant, conn: ConnectionHandle) {
        self.close(conn, DisconnectReason::SlowConsumer);
    }

    // ---- Engine.IO ------------------------------------------------------------------------

    fn on_engine_packet(
        &mut self,
        now: Instant,
        h: ConnectionHandle,
        packet: engine::Packet,
        via_ws: bool,
    ) {
        let Some(c) = self.conn(h) else { return };
        let upgrading = via_ws && c.transport == Transport::Polling;
        if upgrading {
            // A WebSocket probing for an upgrade speaks only the upgrade's packets.
            match (packet, c.p().upgrade) {
                (engine::Packet::Ping(data), Upgrade::Started(n)) if &*data == "probe" => {
                    self.conns[h.slot() as usize].pm().upgrade = Upgrade::Probed(n);
                    self.out
                        .push_back(Out::ws(self.spare.pop(), h, &[PONG_PROBE]));
                    // Flush the waiting GET so the client can pause polling.
                    if let Some(get) = self.conns[h.slot() as usize].pm().held_get.take() {
                        self.requests.remove(&get.0);
                        self.out.push_back(Out::Poll {
                            request: get,
                            conn: h,
                            body: Bytes::from_static(b"6"),
                        });
                    }
                    self.sync_flags(h);
                }
                (engine::Packet::Upgrade, Upgrade::Probed(_)) => self.complete_upgrade(h),
                _ => self.abort_upgrade(h),
            }
            return;
        }
        match packet {
            engine::Packet::Pong(_) => {
                let interval = self.config.ping_interval;
                let c = &mut self.conns[h.slot() as usize];
                if c.awaiting_pong {
                    c.awaiting_pong = false;
                    c.heartbeat = c.heartbeat.wrapping_add(1);
                    let round = c.heartbeat;
                    self.ping_due.push_back((now + interval, (h, round)));
                }
            }
            engine::Packet::Message(message) if self.config.engine_only => {
                self.events
                    .push_back(Event::EngineMessage { conn: h, message });
            }
            engine::Packet::Message(Message::Text(text)) => {
                let r = self.conns[h.slot() as usize].decoder.push_text(text);
                self.on_decoded(h, r);
            }
            engine::Packet::Message(Message::Binary(bytes)) => {
                let r = self.conns[h.slot() as usize].decoder.push_binary(bytes);
                self.on_decoded(h, r);
            }
            engine::Packet::Close => self.close(h, DisconnectReason::TransportClose),
            engine::Packet::Noop | engine::Packet::Ping(_) => {}
            engine::Packet::Open(_) | engine::Packet::Upgrade => {
                self.close(h, DisconnectReason::ParseError)
            }
        }
    }

    fn complete_upgrade(&mut self, h: ConnectionHandle) {
        let c = &mut self.conns[h.slot() as usize];
        c.pm().upgrade = Upgrade::None;
        c.transport = Transport::WebSocket;
        if let Some(get) = c.pm().held_get.take() {
            self.requests.remove(&get.0);
            self.out.push_back(Out::Poll {
                request: get,
                conn: h,
                body: Bytes::from_static(b"6"),
            });
        }
        // Over WebSocket now: the long-polling state goes, its queue to the new transport.
        let poll = self.conns[h.slot() as usize].poll.take();
        let queued: Vec<Frame> = poll
            .map(|p| p.queue.into_iter().collect())
            .unwrap_or_default();
        if !queued.is_empty() {
            self.out.push_back(Out::ws(self.spare.pop(), h, &queued));
        }
        self.sync_flags(h);
    }

    fn abort_upgrade(&mut self, h: ConnectionHandle) {
        let c = &mut self.conns[h.slot() as usize];
        if c.transport == Transport::Polling && c.ws != Ws::None {
            c.ws = Ws::None;
            c.pm().upgrade = Upgrade::None;
            self.out.push_back(Out::CloseWebSocket { conn: h });
            // Frames held back during the upgrade may now go to a waiting GET.
            self.dirty.push(h);
            self.sync_flags(h);
        }
    }

    fn open_packet(&mut self, h: ConnectionHandle, upgrades: bool) -> Str {
        let handshake = Handshake {
            sid: self.conns[h.slot() as usize].sid.as_str().to_owned(),
            upgrades: if upgrades {
                vec!["websocket".into()]
            } else {
                Vec::new()
            },
            ping_interval: self.config.ping_interval.as_millis() as u64,
            ping_timeout: self.config.ping_timeout.as_millis() as u64,
            max_payload: self.config.limits.max_payload as u64,
        };
        engine::Packet::Open(handshake.to_json()).encode_text()
    }

    fn start_heartbeat(&mut self, h: ConnectionHandle, now: Instant) {
        let round = self.conns[h.slot() as usize].heartbeat;
        self.ping_due
            .push_back((now + self.config.ping_interval, (h, round)));
    }

    // ---- Socket.IO --------------------------------------------------------------------

    fn on_decoded(
        &mut self,
        h: ConnectionHandle,
        r: Result<Option<Packet>, crate::packet::DecodeError>,
    ) {
        match r {
            Ok(Some(p)) => self.on_packet(h, p),
            Ok(None) => {}
            Err(_) => self.close(h, DisconnectReason::ParseError),
        }
    }

    fn on_packet(&mut self, h: ConnectionHandle, packet: Packet) {
        let c = &self.conns[h.slot() as usize];
        match packet {
            Packet::Connect { nsp, data } => {
                let id = match self.router.namespace(&nsp) {
                    Some(id) => Some(id),
                    None if self.dynamic.as_ref().is_some_and(|f| f(&nsp))
                        && !nsp.contains(',') =>
                    {
                        Some(self.router.add_namespace(nsp.clone()))
                    }
                    None => None,
                };
                let Some(id) = id else {
                    let e = Encoded::connect_error(
                        &nsp,
                        &serde_json::json!({"message": "Invalid namespace"}),
                    );
                    if let Ok(e) = e {
                        self.send_encoded(h, &e, false);
                    }
                    return;
                };
                if c.has_namespace(id) {
                    return self.close(h, DisconnectReason::ParseError);
                }
                let seq = self.next();
                let request = ConnectRequest {
                    conn: h,
                    nsp: id,
                    seq,
                };
                self.conns[h.slot() as usize].pending.push(request);
                self.events.push_back(Event::ConnectRequest {
                    request,
                    nsp: id,
                    nsp_name: nsp,
                    auth: data,
                });
            }
            Packet::Disconnect { nsp } => {
                let id = self.router.namespace(&nsp);
                match id.and_then(|id| c.socket_in(id)) {
                    Some(s) => self.remove_socket(s, DisconnectReason::ClientNamespaceDisconnect),
                    None => {
                        // Leaving a namespace still being decided cancels the request.
                        let c = &mut self.conns[h.slot() as usize];
                        let before = c.pending.len();
                        c.pending.retain(|r| Some(r.nsp) != id);
                        if c.pending.len() == before {
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
                        ack: id,
                    }),
                    None => self.close(h, DisconnectReason::ParseError),
                }
            }
            Packet::Ack { nsp, id, data } => {
                match self.router.namespace(&nsp).and_then(|n| c.socket_in(n)) {
                    Some(socket) => self.on_ack(socket, id, data),
                    None => self.close(h, DisconnectReason::ParseError),
                }
            }
            Packet::ConnectError { .. } => self.close(h, DisconnectReason::ParseError),
        }
    }

    fn on_ack(&mut self, socket: SocketHandle, id: u64, data: Payload) {
        let Some(pending) = self.take_ack(socket.slot, id) else {
            return; // An answer nobody waits for (late, or never asked): ignored, as the reference.
        };
        match pending {
            PendingAck::Single(ack) => {
                self.single_acks.remove(&ack.0);
                self.events.push_back(Event::Ack {
                    ack,
                    socket,
                    result: Ok(data),
                });
            }
            PendingAck::Broadcast(b) => {
                if let Some(state) = self.broadcast_acks.get_mut(&b) {
                    state.replies.push((socket, data));
                    if state.replies.len() >= state.answerable {
                        self.finish_broadcast_ack(b, false);
                    }
                }
            }
        }
    }

    fn finish_broadcast_ack(&mut self, id: u64, timed_out: bool) {
        if let Some(state) = self.broadcast_acks.remove(&id) {
            if state.replies.len() < state.recipients.len() {
                // Those that never answered no longer owe one.
                for slot in &state.recipients {
                    if let Some(acks) = self.acks.get_mut(slot) {
                        acks.retain(|(_, p)| !matches!(p, PendingAck::Broadcast(b) if *b == id));
                        if acks.is_empty() {
                            self.acks.remove(slot);
                        }
                    }
                }
            }
            self.events.push_back(Event::BroadcastAck {
                ack: BroadcastAckHandle(id),
                replies: state.replies,
                expected: state.expected,
                timed_out,
            });
        }
    }

    // ---- Application calls ------------------------------------------------------------------

    /// Removes a connect request from its connection's pending list: it is decided now.
    fn take_pending(&mut self, request: ConnectRequest) -> Result<(), Error> {
        let c = self.conn_mut(request.conn).ok_or(Error::UnknownRequest)?;
        let i = c
            .pending
            .iter()
            .position(|r| *r == request)
            .ok_or(Error::UnknownRequest)?;
        c.pending.swap_remove(i);
        Ok(())
    }

    /// Accepts a namespace connection: the socket joins with `data` and the client gets its id.
    pub fn accept(&mut self, request: ConnectRequest, data: D) -> Result<SocketHandle, Error> {
        self.take_pending(request)?;
        let sid = self.fresh_sid();
        let nsp_name = self.router.nsp(request.nsp).name.clone();
        let encoded = Encoded::connect(&nsp_name, Some(&serde_json::json!({"sid": sid.as_str()})))?;
        let socket = self.router.insert_socket(request.nsp, sid, request.conn, 0);
        let sid = sid.to_str();
        self.conns[request.conn.slot() as usize]
            .sockets
            .push((request.nsp, socket));
        if self.socks.len() <= socket.slot as usize {
            self.socks.resize_with(socket.slot as usize + 1, || None);
        }
        self.socks[socket.slot as usize] = Some(data);
        self.sync_flags(request.conn);
        self.send_encoded(request.conn, &encoded, false);
        self.events.push_back(Event::Connected {
            socket,
            sid: sid.clone(),
            nsp: request.nsp,
        });
        // Its own-id room comes to exist with it.
        self.room_events(request.nsp, socket, sid, Some(true), true);
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
        self.take_pending(request)?;
        #[derive(Serialize)]
        struct Refusal<'a, T: ?Sized> {
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            data: Option<&'a T>,
        }
        let nsp = self.router.nsp(request.nsp).name.clone();
        let e = Encoded::connect_error(&nsp, &Refusal { message, data })?;
        self.send_encoded(request.conn, &e, false);
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
        self.router.conn_of(socket)
    }

    /// The sockets of a connection, one per namespace joined.
    pub fn connection_sockets(&self, conn: ConnectionHandle) -> Vec<SocketHandle> {
        self.conn(conn)
            .map(|c| c.sockets.iter().map(|(_, s)| *s).collect())
            .unwrap_or_default()
    }

    /// The connection's Engine.IO session id.
    pub fn connection_sid(&self, conn: ConnectionHandle) -> Option<&str> {
        self.conn(conn).map(|c| c.sid.as_str())
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
        self.conns.len() - self.free_conns.len()
    }

    /// Makes a socket join a room (created if needed). `Ok(false)` if it was already in it.
    pub fn join(&mut self, socket: SocketHandle, room: &str) -> Result<bool, Error> {
        let joined = self.router.join(socket, room).ok_or(Error::UnknownSocket)?;
        let crate::router::Joined::Joined { created } = joined else {
            return Ok(false);
        };
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
        self.room_change(socket, room, deleted.then_some(false), false);
        Ok(true)
    }

    /// [`room_events`](Self::room_events) for an application's join or leave: nothing is
    /// looked up or allocated unless room events are on.
    fn room_change(
        &mut self,
        socket: SocketHandle,
        room: &str,
        lifecycle: Option<bool>,
        joined: bool,
    ) {
        if !self.config.room_events {
            return;
        }
        if let Some(nsp) = self.router.namespace_of(socket) {
            self.room_events(nsp, socket, Str::from(room), lifecycle, joined);
        }
    }

    /// Reports a join (`joined`) or a leave, and a room created (`Some(true)`) or deleted
    /// (`Some(false)`), when room events are on; creation before the join, deletion after
    /// the leave.
    fn room_events(
        &mut self,
        nsp: NamespaceId,
        socket: SocketHandle,
        room: Str,
        lifecycle: Option<bool>,
        joined: bool,
    ) {
        if !self.config.room_events {
            return;
        }
        if lifecycle == Some(true) {
            self.events.push_back(Event::RoomCreated {
                nsp,
                room: room.clone(),
            });
        }
        let membership = if joined {
            Event::RoomJoined {
                nsp,
                room: room.clone(),
                socket,
            }
        } else {
            Event::RoomLeft {
                nsp,
                room: room.clone(),
                socket,
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
        self.room_left_events(nsp, socket, left);
        Ok(())
    }

    fn room_left_events(&mut self, nsp: NamespaceId, socket: SocketHandle, left: Vec<(Str, bool)>) {
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
        let conn = self.router.conn_of(socket).ok_or(Error::UnknownSocket)?;
        let nsp = self
            .router
            .namespace_of(socket)
            .ok_or(Error::UnknownSocket)?;
        let e = Encoded::event(&self.router.nsp(nsp).name, None, event, args)?;
        self.send_encoded(conn, &e, false);
        Ok(())
    }

    /// Sends a bare Engine.IO message to a connection (for [`Config::engine_only`] servers).
    pub fn send_message(&mut self, conn: ConnectionHandle, message: Message) -> Result<(), Error> {
        self.conn(conn).ok_or(Error::UnknownConnection)?;
        let frame = match message {
            Message::Text(text) => {
                let mut s = String::with_capacity(1 + text.len());
                s.push('4');
                s.push_str(&text);
                Frame::Text(Str::from(s))
            }
            Message::Binary(b) => Frame::Binary(b),
        };
        self.send(conn, &[frame], false);
        Ok(())
    }

    /// Sends an already encoded packet (event or ack) to one socket.
    pub fn emit_encoded(&mut self, socket: SocketHandle, encoded: &Encoded) -> Result<(), Error> {
        let conn = self.router.conn_of(socket).ok_or(Error::UnknownSocket)?;
        self.send_encoded(conn, encoded, false);
        Ok(())
    }

    /// Emits an event to one socket and waits for its answer: an [`Event::Ack`] with this
    /// handle comes when it answers, when `timeout` passes, or when it disconnects.
    pub fn emit_with_ack<T: Serialize + ?Sized>(
        &mut self,
        now: Instant,
        socket: SocketHandle,
        event: &str,
        args: &T,
        timeout: Duration,
    ) -> Result<AckHandle, Error> {
        let conn = self.router.conn_of(socket).ok_or(Error::UnknownSocket)?;
        let nsp = self
            .router
            .namespace_of(socket)
            .ok_or(Error::UnknownSocket)?;
        let ack_id = self.next_ack_id(nsp);
        let e = Encoded::event(&self.router.nsp(nsp).name, Some(ack_id), event, args)?;
        let handle = AckHandle(self.next());
        self.acks
            .entry(socket.slot)
            .or_default()
            .push((ack_id, PendingAck::Single(handle)));
        self.single_acks.insert(handle.0, (socket, ack_id));
        self.ack_due
            .push(Reverse((now + timeout, AckTimer::Single(handle.0))));
        self.send_encoded(conn, &e, false);
        Ok(handle)
    }

    /// Answers the event a socket sent with ack id `id`.
    pub fn ack<T: Serialize + ?Sized>(
        &mut self,
        socket: SocketHandle,
        id: u64,
        args: &T,
    ) -> Result<(), Error> {
        let conn = self.router.conn_of(socket).ok_or(Error::UnknownSocket)?;
        let nsp = self
            .router
            .namespace_of(socket)
            .ok_or(Error::UnknownSocket)?;
        let e = Encoded::ack(&self.router.nsp(nsp).name, id, args)?;
        self.send_encoded(conn, &e, false);
        Ok(())
    }

    /// Disconnects a socket from its namespace (the client is told with a DISCONNECT).
    pub fn disconnect(&mut self, socket: SocketHandle) -> Result<(), Error> {
        let conn = self.router.conn_of(socket).ok_or(Error::UnknownSocket)?;
        let nsp = self
            .router
            .namespace_of(socket)
            .ok_or(Error::UnknownSocket)?;
        let e = Encoded::disconnect(&self.router.nsp(nsp).name)?;
        self.send_encoded(conn, &e, false);
        self.remove_socket(socket, DisconnectReason::ServerNamespaceDisconnect);
        Ok(())
    }

    /// Closes a whole connection: every socket of it disconnects ([`DisconnectReason::ForcedClose`]).
    pub fn close_connection(&mut self, conn: ConnectionHandle) -> Result<(), Error> {
        self.conn(conn).ok_or(Error::UnknownConnection)?;
        self.close(conn, DisconnectReason::ForcedClose);
        Ok(())
    }

    /// Closes every connection, telling each client with an Engine.IO `close` packet.
    pub fn shutdown(&mut self) {
        let live: Vec<ConnectionHandle> = (0..self.conns.len() as u32)
            .filter(|&s| self.conns[s as usize].live)
            .map(|s| self.handle_of(s))
            .collect();
        for h in live {
            self.close(h, DisconnectReason::ServerShuttingDown);
        }
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

    // ---- Internals ---------------------------------------------------------------------

    fn take_ack(&mut self, slot: u32, id: u64) -> Option<PendingAck> {
        let acks = self.acks.get_mut(&slot)?;
        let i = acks.iter().position(|(a, _)| *a == id)?;
        let (_, pending) = acks.swap_remove(i);
        if acks.is_empty() {
            self.acks.remove(&slot);
        }
        Some(pending)
    }

    fn next(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn next_ack_id(&mut self, nsp: NamespaceId) -> u64 {
        let n = self.router.nsp_mut(nsp);
        let id = n.next_ack_id;
        n.next_ack_id = n.next_ack_id.wrapping_add(1);
        id
    }

    fn new_request(&mut self, h: ConnectionHandle) -> RequestId {
        let id = self.next();
        self.requests.insert(id, h);
        RequestId(id)
    }

    fn take_request(&mut self, r: RequestId) -> Option<ConnectionHandle> {
        let h = self.requests.remove(&r.0)?;
        self.conn(h).map(|_| h)
    }

    fn handle_of(&self, slot: u32) -> ConnectionHandle {
        ConnectionHandle::new(slot, self.conns[slot as usize].gen)
    }

    fn conn(&self, h: ConnectionHandle) -> Option<&Conn> {
        self.conns
            .get(h.slot() as usize)
            .filter(|c| c.live && c.gen == h.gen())
    }

    fn conn_mut(&mut self, h: ConnectionHandle) -> Option<&mut Conn> {
        self.conns
            .get_mut(h.slot() as usize)
            .filter(|c| c.live && c.gen == h.gen())
    }

    /// A random id used by no connection and no socket.
    fn fresh_sid(&mut self) -> Sid {
        loop {
            let sid = Sid::random(&mut *self.rng);
            if self.conn_slot_by_sid(sid.as_str()).is_none()
                && self.router.by_sid(sid.as_str()).is_none()
            {
                return sid;
            }
        }
    }

    fn conn_slot_by_sid(&self, sid: &str) -> Option<u32> {
        let sid = Sid::parse(sid)?;
        self.conn_by_sid.get(&sid, |s| self.conns[s as usize].sid)
    }

    /// A new session, or `None` when every connection slot is taken.
    fn new_conn(&mut self, now: Instant, transport: Transport) -> Option<ConnectionHandle> {
        if self.free_conns.is_empty() && self.conns.len() >= crate::handle::MAX_CONNECTIONS as usize
        {
            return None;
        }
        let sid = self.fresh_sid();
        let fresh = |gen| Conn {
            gen,
            live: true,
            sid,
            transport,
            ws: Ws::None,
            poll: None,
            heartbeat: 0,
            awaiting_pong: false,
            blocked: false,
            decoder: Decoder::new(self.config.limits),
            sockets: SmallVec::new(),
            pending: SmallVec::new(),
        };
        let h = match self.free_conns.pop() {
            Some(slot) => {
                let gen = self.conns[slot as usize].gen.wrapping_add(1);
                self.conns[slot as usize] = fresh(gen);
                ConnectionHandle::new(slot, gen)
            }
            None => {
                self.conns.push(fresh(0));
                ConnectionHandle::new(self.conns.len() as u32 - 1, 0)
            }
        };
        let conns = &self.conns;
        self.conn_by_sid
            .insert(&sid, h.slot(), |s| conns[s as usize].sid);
        self.connect_due
            .push_back((now + self.config.connect_timeout, h));
        Some(h)
    }

    /// Recomputes the routing flags of a connection's sockets from its transport state.
    fn sync_flags(&mut self, h: ConnectionHandle) {
        let Some(c) = self.conn(h) else { return };
        let mut flags = 0;
        if !c.sends_over_ws() {
            flags |= POLLING;
        }
        if !c.can_take_now() {
            flags |= BLOCKED;
        }
        let sockets: SmallVec<[SocketHandle; 2]> = c.sockets.iter().map(|(_, s)| *s).collect();
        for s in sockets {
            self.router.set_flags(s, flags, !flags);
        }
    }

    fn send_encoded(&mut self, h: ConnectionHandle, e: &Encoded, volatile: bool) {
        let frames: SmallVec<[Frame; 2]> = e.frames().collect();
        self.send(h, &frames, volatile);
    }

    /// Sends frames to one connection, over its WebSocket or into its long-polling queue.
    fn send(&mut self, h: ConnectionHandle, frames: &[Frame], volatile: bool) {
        let Some(c) = self.conn(h) else { return };
        if volatile && !c.can_take_now() {
            return;
        }
        if c.sends_over_ws() {
            self.out.push_back(Out::ws(self.spare.pop(), h, frames));
        } else {
            self.queue_polling(h, frames, volatile);
        }
    }

    fn queue_polling(&mut self, h: ConnectionHandle, frames: &[Frame], volatile: bool) {
        let max = self.config.max_buffered_frames;
        let Some(c) = self.conn_mut(h) else { return };
        if c.p().queue.len() + frames.len() > max {
            if !volatile {
                self.close(h, DisconnectReason::SlowConsumer);
            }
            return;
        }
        let was_empty = c.p().queue.is_empty();
        c.pm().queue.extend(frames.iter().cloned());
        if was_empty && c.p().held_get.is_some() {
            self.dirty.push(h);
        }
    }

    /// Answers held GETs whose connection has frames waiting.
    fn flush_polling(&mut self) {
        while let Some(h) = self.dirty.pop() {
            let Some(c) = self.conn_mut(h) else { continue };
            // Once probed, the client has paused polling: frames wait for the WebSocket.
            if c.p().queue.is_empty() || matches!(c.p().upgrade, Upgrade::Probed(_)) {
                continue;
            }
            let Some(get) = c.pm().held_get.take() else {
                continue;
            };
            self.requests.remove(&get.0);
            let body = self.drain_queue(h);
            self.out.push_back(Out::Poll {
                request: get,
                conn: h,
                body,
            });
            self.sync_flags(h);
        }
    }

    fn drain_queue(&mut self, h: ConnectionHandle) -> Bytes {
        let c = &mut self.conns[h.slot() as usize];
        let mut body = Vec::new();
        for f in c.pm().queue.drain(..) {
            engine::append_to_payload(&mut body, &f);
        }
        body.into()
    }

    /// Removes a socket: leaves its rooms, fails its pending acks, reports it.
    fn remove_socket(&mut self, s: SocketHandle, reason: DisconnectReason) {
        let (Some(nsp), Some(sid), Some(conn)) = (
            self.router.namespace_of(s),
            self.router.sid(s).map(Str::from),
            self.router.conn_of(s),
        ) else {
            return;
        };
        let left = self.router.leave_all(s);
        self.room_left_events(nsp, s, left);
        self.room_events(nsp, s, sid.clone(), Some(false), false);
        self.router.remove_socket(s);
        if let Some(c) = self.conn_mut(conn) {
            c.sockets.retain(|(_, x)| *x != s);
        }
        self.socks[s.slot as usize] = None;
        for (_, pending) in self.acks.remove(&s.slot).unwrap_or_default() {
            match pending {
                PendingAck::Single(ack) => {
                    self.single_acks.remove(&ack.0);
                    self.events.push_back(Event::Ack {
                        ack,
                        socket: s,
                        result: Err(AckError::Disconnected),
                    });
                }
                PendingAck::Broadcast(b) => {
                    // The gone socket will never answer: stop waiting for it.
                    if let Some(state) = self.broadcast_acks.get_mut(&b) {
                        state.answerable = state.answerable.saturating_sub(1);
                        if state.replies.len() >= state.answerable {
                            self.finish_broadcast_ack(b, false);
                        }
                    }
                }
            }
        }
        self.events.push_back(Event::Disconnected {
            socket: s,
            sid,
            nsp,
            reason,
        });
    }

    /// Closes a connection: every socket disconnects with `reason`, the transports close.
    fn close(&mut self, h: ConnectionHandle, reason: DisconnectReason) {
        let Some(c) = self.conn(h) else { return };
        let sockets: SmallVec<[SocketHandle; 2]> = c.sockets.iter().map(|(_, s)| *s).collect();
        for s in sockets {
            self.remove_socket(s, reason);
        }
        let c = &mut self.conns[h.slot() as usize];
        c.live = false;
        c.pending.clear();
        let poll = c.poll.take();
        let sid = c.sid;
        let conns = &self.conns;
        self.conn_by_sid.remove(&sid, |s| conns[s as usize].sid);
        let c = &mut self.conns[h.slot() as usize];
        let tell = !matches!(reason, DisconnectReason::TransportClose);
        if let Some(get) = poll.as_ref().and_then(|p| p.held_get) {
            self.requests.remove(&get.0);
            self.out.push_back(Out::Poll {
                request: get,
                conn: h,
                body: Bytes::from_static(b"1"),
            });
        }
        if let Some(post) = poll.as_ref().and_then(|p| p.post) {
            self.requests.remove(&post.0);
        }
        if tell && c.ws == Ws::Open {
            self.out.push_back(Out::ws(self.spare.pop(), h, &[CLOSE]));
        }
        self.out.push_back(Out::Close { conn: h, reason });
        self.free_conns.push(h.slot());
        self.events
            .push_back(Event::ConnectionClosed { conn: h, reason });
    }

    /// Checks the internal indexes; for tests and fuzzing. `Err` names the first broken one.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        self.router.check_invariants()?;
        for (slot, c) in self.conns.iter().enumerate() {
            if !c.live {
                continue;
            }
            if self.conn_slot_by_sid(c.sid.as_str()) != Some(slot as u32) {
                return Err(format!("connection {slot} not indexed by its sid"));
            }
            for &(nsp, s) in &c.sockets {
                if self.router.conn_of(s) != Some(self.handle_of(slot as u32)) {
                    return Err(format!(
                        "connection {slot} lists a socket that is not its own"
                    ));
                }
                if self.router.namespace_of(s) != Some(nsp) {
                    return Err("socket namespace mismatch".into());
                }
            }
        }
        for (&id, &(socket, ack_id)) in &self.single_acks {
            if !self.router.contains(socket) {
                return Err(format!("pending ack {id} of a gone socket"));
            }
            let recorded = self.acks.get(&socket.slot).is_some_and(|acks| {
                acks.iter()
                    .any(|(a, p)| *a == ack_id && matches!(p, PendingAck::Single(h) if h.0 == id))
            });
            if !recorded {
                return Err(format!("pending ack {id} not recorded on its socket"));
            }
        }
        for (&slot, acks) in &self.acks {
            if acks.is_empty() || !self.router.slot_live(slot as usize) {
                return Err(format!("acks kept for gone socket slot {slot}"));
            }
            for (_, pending) in acks {
                let waited = match pending {
                    PendingAck::Single(h) => self.single_acks.contains_key(&h.0),
                    PendingAck::Broadcast(b) => self.broadcast_acks.contains_key(b),
                };
                if !waited {
                    return Err(format!("socket slot {slot} keeps an ack nobody waits for"));
                }
            }
        }
        Ok(())
    }
}

impl engine::Packet {
    /// Encodes a text packet as a `Str` (the WebSocket text frame's content).
    pub(crate) fn encode_text(&self) -> Str {
        match self.encode() {
            Frame::Text(s) => s,
            Frame::Binary(_) => Str::default(),
        }
    }
}
