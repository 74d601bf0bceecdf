//! The Engine.IO v4 session layer: [`Engine`], a sans-IO state machine for every session of a
//! server: the handshake, the heartbeat, the long-polling queue, the upgrade to WebSocket and
//! the close reasons, with HTTP modelled as [`HttpAction`]s.
//!
//! It knows nothing of Socket.IO: messages come out as [`EngineEvent::Message`], and go in
//! with [`Engine::send_message`]. [`Server`](crate::Server) is built on it; a bare Engine.IO
//! server uses it directly.
//!
//! ```
//! use roomcast::engine::session::{Engine, EngineEvent};
//! use roomcast::engine::{Frame, Message};
//! use roomcast::{Config, HttpAction, HttpRequest, Method, Str, Transmit};
//! use std::time::Instant;
//!
//! let mut engine = Engine::new(Config::default()).unwrap();
//! let now = Instant::now();
//! let request = HttpRequest::get("EIO=4&transport=websocket").websocket();
//! let HttpAction::AcceptWebSocket(conn) = engine.handle_http(now, request) else { panic!() };
//! engine.handle_ws_open(now, conn);
//! engine.handle_ws_message(now, conn, Frame::Text(Str::from_static("4hello")));
//! while let Some(event) = engine.poll_event() {
//!     if let EngineEvent::Message { conn, message } = event {
//!         engine.send_message(conn, message).unwrap(); // an echo server
//!     }
//! }
//! let mut written = Vec::new();
//! while let Some(t) = engine.poll_transmit() {
//!     if let Transmit::WebSocket { frames, .. } = t {
//!         written.extend(frames.iter().cloned());
//!     }
//! }
//! assert!(matches!(&written[0], Frame::Text(t) if t.starts_with("0{\"sid\"")));
//! assert_eq!(written[1], Frame::Text(Str::from_static("4hello")));
//! ```

mod driven;
mod http;
mod state;
mod transmit;

pub(crate) use driven::driven_by_inherent_methods;
pub use driven::Driven;
pub use http::{
    HttpAction, HttpRequest, HttpResponse, Method, RequestError, RequestId, RequestInfo, Transports,
};
pub(crate) use transmit::Out;
pub use transmit::{Recipients, RecipientsIter, Transmit};

use crate::config::{Config, ConfigError};
use crate::engine::{self, Frame, Handshake, Message};
use crate::handle::{ConnectionHandle, MAX_CONNECTIONS};
use crate::id::{IdIndex, OsRandom, RandomSource, Sid};
use crate::slots::Slots;
use crate::timers::{earliest, Fifo};
use crate::{DisconnectReason, Str};
use ahash::AHashMap;
use bytes::Bytes;
use state::{Heartbeat, Polling, Session, Transport, Upgrade};
use std::collections::VecDeque;
use std::time::Instant;

/// What the session layer tells its user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineEvent {
    /// A session opened: its handshake was answered (long-polling) or its WebSocket opened.
    Opened {
        /// The new session.
        conn: ConnectionHandle,
    },
    /// A message packet arrived.
    Message {
        /// The session it came on.
        conn: ConnectionHandle,
        /// Its content.
        message: Message,
    },
    /// A session ended.
    Closed {
        /// The session (no longer valid).
        conn: ConnectionHandle,
        /// Why.
        reason: DisconnectReason,
    },
    /// A long-polling session moved to WebSocket (Node's `socket.conn.on("upgrade")`).
    Upgraded {
        /// The session.
        conn: ConnectionHandle,
    },
}

/// Why a call on the session layer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The session is gone (or the handle is stale), or not open yet.
    #[error("unknown or closed connection")]
    UnknownConnection,
}

const PING: Frame = Frame::Text(Str::from_static("2"));
const CLOSE: Frame = Frame::Text(Str::from_static("1"));
const PONG_PROBE: Frame = Frame::Text(Str::from_static("3probe"));
const NOOP: &[u8] = b"6";
const TEXT_PLAIN: &str = "text/plain; charset=UTF-8";

/// Every Engine.IO session of a server, as one deterministic state machine with no I/O.
///
/// Drive it with inputs (`handle_*`), then drain [`poll_transmit`](Self::poll_transmit) and
/// [`poll_event`](Self::poll_event) until `None`, and wake it at
/// [`poll_timeout`](Self::poll_timeout) with [`handle_timeout`](Self::handle_timeout).
pub struct Engine {
    config: Config,
    rng: Box<dyn RandomSource + Send>,
    sessions: Slots<Session>,
    by_sid: IdIndex,
    ping_due: Fifo<(ConnectionHandle, u32)>,
    pong_due: Fifo<(ConnectionHandle, u32)>,
    upgrade_due: Fifo<(ConnectionHandle, u32)>,
    next_request: u64,
    requests: AHashMap<u64, ConnectionHandle>,
    out: VecDeque<Out>,
    current: Option<Out>,
    spare: Vec<Vec<u32>>,
    /// Each connection slot's current generation, dense, so a batch of slots names handles.
    gens: Vec<u32>,
    /// Long-polling sessions that may have frames for a held GET.
    dirty: Vec<ConnectionHandle>,
    /// Sessions whose routing (transport, or whether they can take a packet now) changed, kept
    /// only for a layer above that asked for them (else nobody would drain the list).
    changed: Vec<ConnectionHandle>,
    track_changes: bool,
    events: VecDeque<EngineEvent>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// A session layer with `config`, drawing session ids from the operating system.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        Self::with_random(config, Box::new(OsRandom))
    }

    /// A session layer drawing ids from `rng` (a seeded one makes runs reproducible).
    pub fn with_random(
        config: Config,
        rng: Box<dyn RandomSource + Send>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Engine {
            ping_due: Fifo::new(config.ping_interval),
            pong_due: Fifo::new(config.ping_timeout),
            upgrade_due: Fifo::new(config.upgrade_timeout),
            config,
            rng,
            sessions: Slots::with_max(MAX_CONNECTIONS),
            by_sid: IdIndex::default(),
            next_request: 0,
            requests: AHashMap::default(),
            out: VecDeque::new(),
            current: None,
            spare: Vec::new(),
            gens: Vec::new(),
            dirty: Vec::new(),
            changed: Vec::new(),
            track_changes: false,
            events: VecDeque::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Draws random bytes from the server's source (for ids of the layers above).
    pub(crate) fn rng(&mut self) -> &mut dyn RandomSource {
        &mut *self.rng
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
        let (gens, more) = (&self.gens, !self.out.is_empty());
        self.current.as_ref().map(|out| out.as_transmit(gens, more))
    }

    /// The next event. Call after every input until it returns `None`.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<EngineEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest([
            self.ping_due.next(),
            self.pong_due.next(),
            self.upgrade_due.next(),
        ])
    }

    /// Runs every timer due at `now`. Calling it early, or twice, does nothing harmful.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, (h, round))) = self.ping_due.pop_due(now) {
            let Some(s) = self.sessions.get_mut(h.key()) else {
                continue;
            };
            // A WebSocket-only session's first ping deadline runs from its handshake: one that
            // never opened by then is given up (one timer entry a session, not two).
            if matches!(s.transport, Transport::WsOpening) {
                self.close(h, DisconnectReason::TransportError);
                continue;
            }
            if s.heartbeat != (Heartbeat::Waiting { round }) {
                continue;
            }
            s.heartbeat = Heartbeat::AwaitingPong { round };
            self.send(h, &[PING], false);
            self.pong_due.push(at, (h, round));
        }
        while let Some((_, (h, round))) = self.pong_due.pop_due(now) {
            if self
                .session(h)
                .is_some_and(|s| s.heartbeat == Heartbeat::AwaitingPong { round })
            {
                self.close(h, DisconnectReason::PingTimeout);
            }
        }
        while let Some((_, (h, n))) = self.upgrade_due.pop_due(now) {
            let Some(s) = self.session(h) else { continue };
            if let Transport::Polling(p) = &s.transport {
                if p.upgrade.attempt() == Some(n) {
                    self.abort_upgrade(h);
                }
            }
        }
    }

    // ---- HTTP and WebSocket inputs -------------------------------------------------------

    /// The checks the reference makes of a request before its `allowRequest` hook, without
    /// changing anything: the transport is one the server accepts
    /// ([`Config::transports`](crate::Config::transports)); with a `sid`, the session exists;
    /// without one (a handshake), the method is GET and a `websocket` handshake asks to
    /// upgrade. An adapter with an `allowRequest` hook runs it only on a handshake that passes,
    /// then calls [`handle_http`](Self::handle_http) (which checks again) or answers
    /// [`RequestError::Forbidden`].
    pub fn verify(&self, req: &HttpRequest<'_>) -> Result<(), RequestError> {
        let q = http::Query::parse(req.query);
        let websocket = self.transport_of(&q)?;
        match q.sid {
            Some(sid) => match self.conn_by_sid(sid) {
                Some(_) => Ok(()),
                None => Err(RequestError::UnknownSid),
            },
            None if req.method != Method::Get => Err(RequestError::BadHandshakeMethod),
            None if websocket && !req.websocket => Err(RequestError::BadRequest),
            None => Ok(()),
        }
    }

    /// Whether the request's transport is WebSocket, if it is one the server accepts.
    fn transport_of(&self, q: &http::Query<'_>) -> Result<bool, RequestError> {
        let allowed = self.config.transports;
        match q.transport {
            Some("polling") if allowed.polling => Ok(false),
            Some("websocket") if allowed.websocket => Ok(true),
            _ => Err(RequestError::UnknownTransport),
        }
    }

    /// An HTTP request arrived on the Engine.IO path.
    pub fn handle_http(&mut self, now: Instant, req: HttpRequest<'_>) -> HttpAction {
        let q = http::Query::parse(req.query);
        let websocket = match self.transport_of(&q) {
            Ok(w) => w,
            Err(e) => return HttpAction::Respond(e.response()),
        };
        let Some(sid) = q.sid else {
            return self.handshake(now, req, q.eio, websocket);
        };
        let Some(h) = self.conn_by_sid(sid) else {
            return HttpAction::Respond(RequestError::UnknownSid.response());
        };
        if websocket {
            return self.upgrade_request(now, h, req);
        }
        let max_payload = self.config.limits.max_payload as u64;
        let Some(p) = self.polling_mut(h) else {
            return HttpAction::Respond(RequestError::BadRequest.response());
        };
        match req.method {
            Method::Get if p.held_get.is_some() => {
                // Two GETs at once break ordering: the reference closes the session.
                self.close(h, DisconnectReason::TransportError);
                HttpAction::Respond(RequestError::BadRequest.response())
            }
            Method::Get if matches!(p.upgrade, Upgrade::Probed(_)) => {
                HttpAction::Respond(HttpResponse::ok(TEXT_PLAIN, Bytes::from_static(NOOP)))
            }
            Method::Get if !p.queue.is_empty() => {
                HttpAction::Respond(HttpResponse::ok(TEXT_PLAIN, drain_queue(p)))
            }
            Method::Get => {
                let id = self.new_request(h);
                if let Some(p) = self.polling_mut(h) {
                    p.held_get = Some(id);
                }
                self.changed(h);
                HttpAction::Hold(id)
            }
            Method::Post if p.post.is_some() => {
                self.close(h, DisconnectReason::TransportError);
                HttpAction::Respond(RequestError::BadRequest.response())
            }
            Method::Post if req.content_length.is_some_and(|n| n > max_payload) => {
                self.close(h, DisconnectReason::TransportError);
                HttpAction::Respond(HttpResponse::payload_too_large())
            }
            Method::Post => {
                let id = self.new_request(h);
                if let Some(p) = self.polling_mut(h) {
                    p.post = Some(id);
                }
                HttpAction::ReadBody(id)
            }
            Method::Other => HttpAction::Respond(RequestError::BadRequest.response()),
        }
    }

    /// A WebSocket request naming an existing session: the start of an upgrade.
    fn upgrade_request(
        &mut self,
        now: Instant,
        h: ConnectionHandle,
        req: HttpRequest<'_>,
    ) -> HttpAction {
        if !req.websocket {
            // A plain GET with the wrong transport for the session.
            return HttpAction::Respond(RequestError::BadRequest.response());
        }
        let allow = self.config.allow_upgrades;
        let Some(s) = self.sessions.get_mut(h.key()) else {
            return HttpAction::Respond(RequestError::UnknownSid.response());
        };
        match &mut s.transport {
            Transport::Polling(p) if p.upgrade == Upgrade::None => {
                if !allow {
                    return HttpAction::Respond(RequestError::BadRequest.response());
                }
                p.upgrades += 1;
                let n = p.upgrades;
                p.upgrade = Upgrade::Accepting(n);
                self.upgrade_due.push(now, (h, n));
                HttpAction::AcceptWebSocket(h)
            }
            // Upgrading already, or upgraded: the reference opens that WebSocket and closes
            // it, leaving the session as it is.
            _ => HttpAction::AcceptAndClose,
        }
    }

    fn handshake(
        &mut self,
        now: Instant,
        req: HttpRequest<'_>,
        eio: Option<&str>,
        websocket: bool,
    ) -> HttpAction {
        if req.method != Method::Get {
            return HttpAction::Respond(RequestError::BadHandshakeMethod.response());
        }
        if eio != Some("4") {
            return HttpAction::Respond(RequestError::UnsupportedProtocolVersion.response());
        }
        if websocket && !req.websocket {
            return HttpAction::Respond(RequestError::BadRequest.response());
        }
        let Ok(sid) = self.fresh_sid() else {
            // Session ids are bearer tokens: without randomness, no session.
            return HttpAction::Respond(HttpResponse::unavailable());
        };
        let transport = if websocket {
            Transport::WsOpening
        } else {
            Transport::Polling(Box::default())
        };
        let Some(key) = self.sessions.insert(|_| Session {
            sid,
            transport,
            heartbeat: Heartbeat::Off,
        }) else {
            // Every connection slot is taken: refuse, as an `allowRequest` hook would.
            return HttpAction::Respond(RequestError::Forbidden.response());
        };
        let h = ConnectionHandle::from_key(key);
        let slot = key.slot as usize;
        if self.gens.len() <= slot {
            self.gens.resize(slot + 1, 0);
        }
        self.gens[slot] = key.gen;
        let sessions = &self.sessions;
        self.by_sid
            .insert(&sid, key.slot, |s| sessions.any_at(s).sid);
        self.start_heartbeat(h, now);
        if websocket {
            return HttpAction::AcceptWebSocket(h);
        }
        let open = self.open_packet(
            h,
            self.config.allow_upgrades && self.config.transports.websocket,
        );
        self.events.push_back(EngineEvent::Opened { conn: h });
        HttpAction::Respond(HttpResponse::ok(TEXT_PLAIN, open.into_bytes()))
    }

    /// The body of a POST the core asked for with [`HttpAction::ReadBody`].
    pub fn handle_post_body(
        &mut self,
        now: Instant,
        request: RequestId,
        body: Bytes,
    ) -> HttpResponse {
        let Some(h) = self.take_post(request) else {
            return RequestError::BadRequest.response();
        };
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
                Ok(p) => self.on_packet(now, h, p, false),
                Err(_) => {
                    self.close(h, DisconnectReason::ParseError);
                    return RequestError::BadRequest.response();
                }
            }
            if self.session(h).is_none() {
                break;
            }
        }
        HttpResponse::ok("text/html", Bytes::from_static(b"ok"))
    }

    /// The body of a POST the core asked for was larger than
    /// [`Limits::max_payload`](crate::Limits): the adapter stopped reading it. The session
    /// closes; the answer is 413.
    pub fn handle_post_too_large(&mut self, _now: Instant, request: RequestId) -> HttpResponse {
        if let Some(h) = self.take_post(request) {
            self.close(h, DisconnectReason::TransportError);
        }
        HttpResponse::payload_too_large()
    }

    /// A held GET or a POST being read ended without an answer (the client went away).
    pub fn handle_request_aborted(&mut self, _now: Instant, request: RequestId) {
        let Some(h) = self.take_request(request) else {
            return;
        };
        let Some(p) = self.polling_mut(h) else { return };
        if p.held_get == Some(request) {
            p.held_get = None;
            // As the reference: a poll closed prematurely ends the session.
            self.close(h, DisconnectReason::TransportError);
        } else if p.post == Some(request) {
            p.post = None;
        }
    }

    /// The transport a session uses now, by its Engine.IO name (`"polling"`, `"websocket"`;
    /// Node's `conn.transport.name`): during an upgrade, still `"polling"`.
    pub fn transport_name(&self, conn: ConnectionHandle) -> Option<&'static str> {
        let s = self.session(conn)?;
        Some(if s.sends_over_ws() {
            "websocket"
        } else {
            "polling"
        })
    }

    /// The WebSocket accepted with [`HttpAction::AcceptWebSocket`] is open.
    pub fn handle_ws_open(&mut self, now: Instant, conn: ConnectionHandle) {
        let Some(s) = self.sessions.get_mut(conn.key()) else {
            return;
        };
        match &mut s.transport {
            Transport::WsOpening => {
                // Its heartbeat started with the handshake.
                s.transport = Transport::WebSocket { blocked: false };
                let open = self.open_packet(conn, false);
                self.send(conn, &[Frame::Text(open)], false);
                self.changed(conn);
                self.events.push_back(EngineEvent::Opened { conn });
            }
            Transport::Polling(p) if matches!(p.upgrade, Upgrade::Accepting(_)) => {
                // The upgrade's clock restarts with the open WebSocket, as the reference's.
                p.upgrades += 1;
                let n = p.upgrades;
                p.upgrade = Upgrade::Probing(n);
                self.upgrade_due.push(now, (conn, n));
            }
            _ => {}
        }
    }

    /// A WebSocket message arrived.
    pub fn handle_ws_message(&mut self, now: Instant, conn: ConnectionHandle, frame: Frame) {
        let Some(s) = self.session(conn) else { return };
        let open = match &s.transport {
            Transport::WebSocket { .. } => true,
            Transport::Polling(p) => p.upgrade.ws_open(),
            Transport::WsOpening => false,
        };
        if !open {
            return;
        }
        let packet = match engine::Packet::decode_limited(frame, &self.config.limits) {
            Ok(p) => p,
            Err(engine::DecodeError::TooLarge { .. }) => {
                return self.close(conn, DisconnectReason::TransportError)
            }
            Err(_) => return self.close(conn, DisconnectReason::ParseError),
        };
        self.on_packet(now, conn, packet, true);
    }

    /// The WebSocket of a connection closed (or its handshake failed).
    pub fn handle_ws_closed(&mut self, _now: Instant, conn: ConnectionHandle) {
        let Some(s) = self.sessions.get_mut(conn.key()) else {
            return;
        };
        match &mut s.transport {
            Transport::Polling(p) => {
                if p.upgrade != Upgrade::None {
                    p.upgrade = Upgrade::None;
                    // Frames held back during the upgrade may now go to a waiting GET.
                    self.dirty.push(conn);
                    self.changed(conn);
                }
            }
            Transport::WsOpening | Transport::WebSocket { .. } => {
                self.close(conn, DisconnectReason::TransportClose)
            }
        }
    }

    /// The adapter's write queue for a WebSocket is full (`blocked`) or has room again.
    /// Volatile packets skip blocked connections.
    pub fn set_blocked(&mut self, conn: ConnectionHandle, blocked: bool) {
        if let Some(Session {
            transport: Transport::WebSocket { blocked: b },
            ..
        }) = self.sessions.get_mut(conn.key())
        {
            if *b != blocked {
                *b = blocked;
                self.changed(conn);
            }
        }
    }

    /// The adapter's write queue for a connection overflowed: close it as a slow consumer.
    pub fn handle_slow_consumer(&mut self, _now: Instant, conn: ConnectionHandle) {
        self.close(conn, DisconnectReason::SlowConsumer);
    }

    // ---- Application calls ------------------------------------------------------------

    /// Sends a message packet to a session.
    pub fn send_message(
        &mut self,
        conn: ConnectionHandle,
        message: Message,
    ) -> Result<(), SessionError> {
        if !self.session(conn).is_some_and(Session::is_open) {
            return Err(SessionError::UnknownConnection);
        }
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

    /// Closes a session ([`DisconnectReason::ForcedClose`]): the client is told.
    pub fn close_connection(&mut self, conn: ConnectionHandle) -> Result<(), SessionError> {
        self.session(conn).ok_or(SessionError::UnknownConnection)?;
        self.close(conn, DisconnectReason::ForcedClose);
        Ok(())
    }

    /// Closes every session, telling each client with an Engine.IO `close` packet.
    pub fn shutdown(&mut self) {
        let live: Vec<ConnectionHandle> = self
            .sessions
            .iter()
            .map(|(k, _)| ConnectionHandle::from_key(k))
            .collect();
        for h in live {
            self.close(h, DisconnectReason::ServerShuttingDown);
        }
    }

    /// Number of open sessions.
    pub fn connection_count(&self) -> usize {
        self.sessions.len()
    }

    /// The session's id.
    pub fn connection_sid(&self, conn: ConnectionHandle) -> Option<&str> {
        self.session(conn).map(|s| s.sid.as_str())
    }

    /// Timer entries held (live and stale together): bounded by the sessions' number.
    pub fn timer_count(&self) -> usize {
        self.ping_due.len() + self.pong_due.len() + self.upgrade_due.len()
    }

    // ---- For the layers above ------------------------------------------------------------

    /// Whether the session's frames go over its WebSocket, and whether it can take a packet
    /// right now. `None` if it is gone.
    pub(crate) fn route(&self, conn: ConnectionHandle) -> Option<(bool, bool)> {
        self.session(conn)
            .map(|s| (s.sends_over_ws(), s.can_take_now()))
    }

    /// From now on, keeps the sessions whose routing changed for [`take_changed`](Self::take_changed).
    pub(crate) fn track_changes(&mut self) {
        self.track_changes = true;
    }

    /// A session whose routing changed since last asked.
    pub(crate) fn take_changed(&mut self) -> Option<ConnectionHandle> {
        self.changed.pop()
    }

    fn changed(&mut self, h: ConnectionHandle) {
        if self.track_changes {
            self.changed.push(h);
        }
    }

    /// The live session in connection slot `slot`.
    pub(crate) fn handle_at(&self, slot: u32) -> Option<ConnectionHandle> {
        self.sessions.key_at(slot).map(ConnectionHandle::from_key)
    }

    /// Whether `conn` is a live session.
    pub(crate) fn contains(&self, conn: ConnectionHandle) -> bool {
        self.session(conn).is_some()
    }

    /// A recipient buffer for a batch, reused across broadcasts.
    pub(crate) fn batch_buffer(&mut self) -> Vec<u32> {
        self.spare.pop().unwrap_or_default()
    }

    /// Queues a batch: the same frames to every connection of `to` (all over WebSocket).
    pub(crate) fn push_batch(
        &mut self,
        to: Vec<u32>,
        frames: &[Frame],
        compress: bool,
        volatile: bool,
    ) {
        if to.is_empty() {
            self.spare.push(to);
        } else {
            self.out.push_back(Out::Ws {
                to,
                frames: frames.iter().cloned().collect(),
                compress,
                volatile,
            });
        }
    }

    /// Sends frames to one connection, over its WebSocket or into its long-polling queue.
    /// Volatile frames are dropped when the connection cannot take them now.
    pub(crate) fn send(&mut self, h: ConnectionHandle, frames: &[Frame], volatile: bool) {
        let Some(s) = self.session(h) else { return };
        if volatile && !s.can_take_now() {
            return;
        }
        if s.sends_over_ws() {
            let to = self.batch_buffer();
            self.push_one(to, h, frames, volatile);
        } else {
            self.queue_polling(h, frames, volatile);
        }
    }

    fn push_one(
        &mut self,
        mut to: Vec<u32>,
        h: ConnectionHandle,
        frames: &[Frame],
        volatile: bool,
    ) {
        to.push(h.key().slot);
        self.push_batch(to, frames, true, volatile);
    }

    /// Queues frames for a long-polling session's next GET; past the bound the session is a
    /// slow consumer (or, for volatile frames, they are dropped).
    pub(crate) fn queue_polling(&mut self, h: ConnectionHandle, frames: &[Frame], volatile: bool) {
        let max = self.config.max_buffered_frames;
        let Some(p) = self.polling_mut(h) else { return };
        if p.queue.len() + frames.len() > max {
            if !volatile {
                self.close(h, DisconnectReason::SlowConsumer);
            }
            return;
        }
        let was_empty = p.queue.is_empty();
        p.queue.extend(frames.iter().cloned());
        if was_empty && p.held_get.is_some() {
            self.dirty.push(h);
        }
    }

    /// Closes a session: the held GET is answered, the WebSocket told (unless the client
    /// closed it), the adapter asked to forget the connection.
    pub(crate) fn close(&mut self, h: ConnectionHandle, reason: DisconnectReason) {
        let Some(s) = self.sessions.get_mut(h.key()) else {
            return;
        };
        let transport = std::mem::replace(&mut s.transport, Transport::WsOpening);
        let sid = s.sid;
        let sessions = &self.sessions;
        self.by_sid.remove(&sid, |slot| sessions.any_at(slot).sid);
        self.sessions.remove(h.key());
        let tell = !matches!(reason, DisconnectReason::TransportClose);
        match transport {
            Transport::Polling(p) => {
                if let Some(get) = p.held_get {
                    self.requests.remove(&get.0);
                    self.out.push_back(Out::Poll {
                        request: get,
                        conn: h,
                        body: Bytes::from_static(b"1"),
                    });
                }
                if let Some(post) = p.post {
                    self.requests.remove(&post.0);
                }
            }
            Transport::WebSocket { .. } if tell => {
                let to = self.batch_buffer();
                self.push_one(to, h, &[CLOSE], false);
            }
            Transport::WebSocket { .. } | Transport::WsOpening => {}
        }
        self.out.push_back(Out::Close { conn: h, reason });
        self.events
            .push_back(EngineEvent::Closed { conn: h, reason });
        self.compact_timers();
    }

    // ---- Engine.IO packets ------------------------------------------------------------------

    fn on_packet(
        &mut self,
        now: Instant,
        h: ConnectionHandle,
        packet: engine::Packet,
        via_ws: bool,
    ) {
        let Some(s) = self.sessions.get_mut(h.key()) else {
            return;
        };
        if let (true, Transport::Polling(p)) = (via_ws, &mut s.transport) {
            // A WebSocket probing for an upgrade speaks only the upgrade's packets.
            match (packet, p.upgrade) {
                (engine::Packet::Ping(data), Upgrade::Probing(n)) if &*data == "probe" => {
                    p.upgrade = Upgrade::Probed(n);
                    let get = p.held_get.take();
                    let to = self.batch_buffer();
                    self.push_one(to, h, &[PONG_PROBE], false);
                    // Answer the waiting GET so the client can pause polling.
                    if let Some(get) = get {
                        self.answer_noop(h, get);
                    }
                    self.changed(h);
                }
                (engine::Packet::Upgrade, Upgrade::Probed(_)) => self.complete_upgrade(h),
                _ => self.abort_upgrade(h),
            }
            return;
        }
        match packet {
            engine::Packet::Pong(_) => {
                if let Heartbeat::AwaitingPong { round } = s.heartbeat {
                    let round = round.wrapping_add(1);
                    s.heartbeat = Heartbeat::Waiting { round };
                    self.ping_due.push(now, (h, round));
                }
            }
            engine::Packet::Message(message) => {
                self.events
                    .push_back(EngineEvent::Message { conn: h, message });
            }
            engine::Packet::Close => {
                // As the reference: a pending GET learns of the close with a `noop`.
                let get = s.polling_mut().and_then(|p| p.held_get.take());
                if let Some(get) = get {
                    self.answer_noop(h, get);
                }
                self.close(h, DisconnectReason::TransportClose)
            }
            engine::Packet::Noop | engine::Packet::Ping(_) => {}
            engine::Packet::Open(_) | engine::Packet::Upgrade => {
                self.close(h, DisconnectReason::ParseError)
            }
        }
    }

    fn answer_noop(&mut self, h: ConnectionHandle, get: RequestId) {
        self.requests.remove(&get.0);
        self.out.push_back(Out::Poll {
            request: get,
            conn: h,
            body: Bytes::from_static(NOOP),
        });
    }

    fn complete_upgrade(&mut self, h: ConnectionHandle) {
        let Some(s) = self.sessions.get_mut(h.key()) else {
            return;
        };
        let Transport::Polling(p) =
            std::mem::replace(&mut s.transport, Transport::WebSocket { blocked: false })
        else {
            return;
        };
        let Polling {
            held_get,
            post,
            queue,
            ..
        } = *p;
        if let Some(get) = held_get {
            self.answer_noop(h, get);
        }
        // A POST still being read belongs to a transport that is gone: its body, when it comes,
        // is refused (400), and nothing of it is kept meanwhile.
        if let Some(post) = post {
            self.requests.remove(&post.0);
        }
        // Over WebSocket now: what waited for a GET goes to the new transport.
        if !queue.is_empty() {
            let queued: Vec<Frame> = queue.into_iter().collect();
            let to = self.batch_buffer();
            self.push_one(to, h, &queued, false);
        }
        self.changed(h);
        self.events.push_back(EngineEvent::Upgraded { conn: h });
    }

    fn abort_upgrade(&mut self, h: ConnectionHandle) {
        let Some(p) = self.polling_mut(h) else { return };
        if p.upgrade == Upgrade::None {
            return;
        }
        p.upgrade = Upgrade::None;
        self.out.push_back(Out::CloseWebSocket { conn: h });
        // Frames held back during the upgrade may now go to a waiting GET.
        self.dirty.push(h);
        self.changed(h);
    }

    fn open_packet(&self, h: ConnectionHandle, upgrades: bool) -> Str {
        let sid = self.session(h).map(|s| s.sid.as_str()).unwrap_or_default();
        let handshake = Handshake {
            sid: sid.to_owned(),
            upgrades: if upgrades {
                vec!["websocket".into()]
            } else {
                Vec::new()
            },
            ping_interval: millis(self.config.ping_interval),
            ping_timeout: millis(self.config.ping_timeout),
            max_payload: self.config.limits.max_payload as u64,
        };
        engine::Packet::Open(handshake.to_json()).encode_text()
    }

    fn start_heartbeat(&mut self, h: ConnectionHandle, now: Instant) {
        if let Some(s) = self.sessions.get_mut(h.key()) {
            s.heartbeat = Heartbeat::Waiting { round: 0 };
            self.ping_due.push(now, (h, 0));
        }
    }

    /// Answers held GETs whose session has frames waiting.
    pub(crate) fn flush_polling(&mut self) {
        while let Some(h) = self.dirty.pop() {
            let Some(p) = self.polling_mut(h) else {
                continue;
            };
            // Once probed, the client has paused polling: frames wait for the WebSocket.
            if p.queue.is_empty() || matches!(p.upgrade, Upgrade::Probed(_)) {
                continue;
            }
            let Some(get) = p.held_get.take() else {
                continue;
            };
            let body = drain_queue(p);
            self.requests.remove(&get.0);
            self.out.push_back(Out::Poll {
                request: get,
                conn: h,
                body,
            });
            self.changed(h);
        }
    }

    /// Drops timer entries of gone sessions once they outnumber the live ones, so churn cannot
    /// grow the queues past a constant factor of the sessions (amortized O(1) per close).
    fn compact_timers(&mut self) {
        let bound = 2 * self.sessions.len() + 64;
        let sessions = &self.sessions;
        let live = |&(h, _): &(ConnectionHandle, u32)| sessions.get(h.key()).is_some();
        for fifo in [
            &mut self.ping_due,
            &mut self.pong_due,
            &mut self.upgrade_due,
        ] {
            if fifo.len() > bound {
                fifo.retain(live);
            }
        }
    }

    fn new_request(&mut self, h: ConnectionHandle) -> RequestId {
        self.next_request += 1;
        self.requests.insert(self.next_request, h);
        RequestId(self.next_request)
    }

    /// The session whose POST `r` is, once its body is in: a request id that is not a POST
    /// being read (a held GET's, a stale one) is refused and changes nothing.
    fn take_post(&mut self, r: RequestId) -> Option<ConnectionHandle> {
        let h = *self.requests.get(&r.0)?;
        let p = self.polling_mut(h)?;
        if p.post != Some(r) {
            return None;
        }
        p.post = None;
        self.requests.remove(&r.0);
        Some(h)
    }

    fn take_request(&mut self, r: RequestId) -> Option<ConnectionHandle> {
        let h = self.requests.remove(&r.0)?;
        self.session(h).map(|_| h)
    }

    fn session(&self, h: ConnectionHandle) -> Option<&Session> {
        self.sessions.get(h.key())
    }

    fn polling_mut(&mut self, h: ConnectionHandle) -> Option<&mut Polling> {
        self.sessions.get_mut(h.key())?.polling_mut()
    }

    /// A random id used by no session.
    fn fresh_sid(&mut self) -> Result<Sid, crate::id::RandomError> {
        loop {
            let sid = Sid::random(&mut *self.rng)?;
            if self.conn_by_sid(sid.as_str()).is_none() {
                return Ok(sid);
            }
        }
    }

    fn conn_by_sid(&self, sid: &str) -> Option<ConnectionHandle> {
        let sid = Sid::parse(sid)?;
        let slot = self.by_sid.get(&sid, |s| self.sessions.any_at(s).sid)?;
        self.sessions.key_at(slot).map(ConnectionHandle::from_key)
    }

    /// Checks the session indexes; for tests and fuzzing. `Err` names the first broken one.
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        if self.by_sid.len() != self.sessions.len() {
            return Err("session id index out of step".into());
        }
        for (key, s) in self.sessions.iter() {
            if self.conn_by_sid(s.sid.as_str()) != Some(ConnectionHandle::from_key(key)) {
                return Err(format!("session {} not indexed by its sid", key.slot));
            }
            if let Some(p) = s.polling() {
                for r in [p.held_get, p.post].into_iter().flatten() {
                    if self.requests.get(&r.0) != Some(&ConnectionHandle::from_key(key)) {
                        return Err(format!("request {r:?} of session {} lost", key.slot));
                    }
                }
                if p.queue.len() > self.config.max_buffered_frames {
                    return Err(format!("session {} queue over its bound", key.slot));
                }
            }
        }
        Ok(())
    }
}

impl Session {
    /// Whether the session can carry messages (its handshake is complete).
    fn is_open(&self) -> bool {
        !matches!(self.transport, Transport::WsOpening)
    }
}

fn drain_queue(p: &mut Polling) -> Bytes {
    let mut body = Vec::new();
    for f in p.queue.drain(..) {
        engine::append_to_payload(&mut body, &f);
    }
    body.into()
}

/// Milliseconds for the handshake, saturating: a duration past `u64::MAX` ms is "forever".
fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
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
