//! The server side of the official Socket.IO Admin UI (`@socket.io/admin-ui` 0.5.1):
//! [`instrument`] is its `instrument(io, opts)`.
//!
//! It is an application of the public API: a namespace (`/admin` by default) with its own
//! middleware, plus an observer the driver shows the core's events to before it dispatches
//! them. The observer does nothing per event while no admin socket is connected (one branch):
//! it keeps no table of sockets, counts nothing and sends nothing until a UI is there; the
//! statistics timer only looks whether anyone is watching.
//!
//! ```no_run
//! use roomcast::io::tokio::admin::{instrument, AdminAuth, AdminOptions};
//! use roomcast::io::tokio::{Options, SocketIo};
//! use roomcast::Config;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = Config::default();
//! config.room_events = true; // development mode shows rooms
//! let io: SocketIo = SocketIo::new(config, Options::default());
//! instrument(&io, AdminOptions::new(AdminAuth::None)).await?;
//! # Ok(()) }
//! ```

use super::driver::{Ctx, Observer};
use super::shared::Rejection;
use super::SocketIo;
use crate::packet::Encoded;
use crate::{ConnectionHandle, Event, NamespaceId, Server, SocketHandle, Str};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How the UI authenticates (`auth` of the reference; it must be chosen explicitly there too).
#[derive(Clone, Debug)]
pub enum AdminAuth {
    /// No check (`auth: false`): anyone who reaches the namespace is an admin.
    None,
    /// A user name and the bcrypt hash of the password (`{type: "basic", username, password}`),
    /// in the format of `bcrypt`/`bcryptjs` (`$2a$`/`$2b$`/`$2y$`, cost, salt and hash).
    Basic {
        /// The user name the UI must send.
        username: String,
        /// The bcrypt hash of the password.
        password_hash: String,
    },
}

/// What the UI is told and shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Everything: every socket with its handshake and rooms, their changes as they happen.
    Development,
    /// Only the server statistics (counters and namespace socket counts).
    Production,
}

/// The options of [`instrument`].
#[derive(Clone, Debug)]
pub struct AdminOptions {
    /// Authentication of the UI.
    pub auth: AdminAuth,
    /// No commands (emit, join, leave, disconnect) are accepted.
    pub read_only: bool,
    /// Development (default) or production.
    pub mode: Mode,
    /// The admin namespace (default `/admin`).
    pub namespace_name: String,
    /// The server's name in the UI (default: the host name, else `roomcast`).
    pub server_id: Option<String>,
    /// Development mode's per-event stream (`event_received` for every client event, shown on
    /// the UI's Events page). Off by default: it costs a message to every admin per event.
    pub all_events: bool,
    /// How many login sessions are remembered (the oldest is forgotten first; default 1000).
    pub max_sessions: usize,
}

impl AdminOptions {
    /// Development mode, commands allowed, on `/admin`, with `auth`.
    pub fn new(auth: AdminAuth) -> Self {
        AdminOptions {
            auth,
            read_only: false,
            mode: Mode::Development,
            namespace_name: "/admin".to_owned(),
            server_id: None,
            all_events: false,
            max_sessions: 1000,
        }
    }
}

/// Why [`instrument`] refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The password hash is not a bcrypt hash.
    #[error("the admin password hash is not a bcrypt hash: {0}")]
    InvalidHash(#[from] bcrypt::BcryptError),
    /// Development mode shows rooms, which needs `Config::room_events`.
    #[error("development mode needs Config::room_events = true")]
    RoomEventsOff,
    /// The namespace name is not one (it must start with `/`).
    #[error("invalid admin namespace name {0:?}")]
    Namespace(String),
    /// The server's driver stopped.
    #[error("the server stopped")]
    Stopped,
}

/// Login sessions: the ids handed out, oldest first, bounded.
#[derive(Default)]
struct Sessions {
    ids: HashSet<String>,
    order: VecDeque<String>,
    /// A session just created by a login, for the socket that connection opens.
    fresh: HashMap<ConnectionHandle, String>,
}

type SharedSessions = Arc<Mutex<Sessions>>;

fn lock(s: &SharedSessions) -> std::sync::MutexGuard<'_, Sessions> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// Speaks the Admin UI's protocol on `opts.namespace_name` of `io`: its authentication, the
/// `config`, `all_sockets` and `server_stats` it expects, the socket and room events of
/// development mode, and its commands unless `read_only`.
///
/// Differences from the reference: `session` is sent right after the CONNECT (the reference
/// sends it before); sessions are bounded by `max_sessions`; `event_sent` (with `all_events`)
/// reports at most 1,000 recipients of one emit; the aggregated packet and byte counters count
/// Socket.IO events, not Engine.IO packets; commands to a namespace that does not exist do
/// nothing (the reference creates it). `docs/DESIGN.md`, "Admin UI", says why.
pub async fn instrument<D>(io: &SocketIo<D>, opts: AdminOptions) -> Result<(), AdminError>
where
    D: Serialize + Send + Sync + Clone + Default + 'static,
{
    if !opts.namespace_name.starts_with('/') {
        return Err(AdminError::Namespace(opts.namespace_name));
    }
    if let AdminAuth::Basic { password_hash, .. } = &opts.auth {
        password_hash.parse::<bcrypt::HashParts>()?;
    }
    let room_events = io
        .query(|ctx| ctx.server.config().room_events)
        .await
        .ok_or(AdminError::Stopped)?;
    if opts.mode == Mode::Development && !room_events {
        return Err(AdminError::RoomEventsOff);
    }
    let sessions: SharedSessions = Arc::default();
    let ns = io.of(&opts.namespace_name);
    let auth = Arc::new(opts.auth.clone());
    let (s, max) = (sessions.clone(), opts.max_sessions.max(1));
    ns.use_(move |c| {
        let (auth, sessions) = (auth.clone(), s.clone());
        async move {
            let payload = c.handshake().auth().map(str::to_owned);
            let data = authenticate(&auth, &sessions, max, payload, c.connection()).await?;
            c.set_data(data);
            Ok(())
        }
    });
    let tap = Tap::<D> {
        name: opts.namespace_name.clone(),
        nsp: None,
        dev: opts.mode == Mode::Development,
        read_only: opts.read_only,
        all_events: opts.all_events && opts.mode == Mode::Development,
        server_id: opts.server_id.clone().unwrap_or_else(hostname),
        started: Instant::now(),
        watchers: 0,
        known: HashMap::new(),
        aggregated: Vec::new(),
        sessions,
        _data: std::marker::PhantomData,
    };
    io.query(move |ctx| {
        ctx.observer = Some(Box::new(tap));
        ctx.tick_observer();
    })
    .await
    .ok_or(AdminError::Stopped)?;
    let io = io.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(2));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await;
        loop {
            every.tick().await;
            if io.query(|ctx| ctx.tick_observer()).await.is_none() {
                break; // the driver stopped
            }
        }
    });
    Ok(())
}

/// The admin namespace's middleware: a known session id, or the user name and password.
async fn authenticate<D: Default>(
    auth: &AdminAuth,
    sessions: &SharedSessions,
    max: usize,
    payload: Option<String>,
    conn: ConnectionHandle,
) -> Result<D, Rejection> {
    let AdminAuth::Basic {
        username,
        password_hash,
    } = auth
    else {
        return Ok(D::default());
    };
    let payload: Value = payload
        .and_then(|p| serde_json::from_str(&p).ok())
        .unwrap_or(Value::Null);
    let field = |k: &str| payload.get(k).and_then(Value::as_str).map(str::to_owned);
    if let Some(id) = field("sessionId") {
        if lock(sessions).ids.contains(&id) {
            return Ok(D::default());
        }
    }
    let invalid = || Rejection::new("invalid credentials");
    let (Some(user), Some(password)) = (field("username"), field("password")) else {
        return Err(invalid());
    };
    if &user != username {
        return Err(invalid());
    }
    // bcrypt is slow on purpose: off the runtime's threads.
    let hash = password_hash.clone();
    let ok = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
        .await
        .unwrap_or(false);
    if !ok {
        return Err(invalid());
    }
    let mut id = [0u8; 8];
    if getrandom::fill(&mut id).is_err() {
        return Err(Rejection::new("Internal server error"));
    }
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let mut s = lock(sessions);
    if s.order.len() >= max {
        if let Some(old) = s.order.pop_front() {
            s.ids.remove(&old);
        }
    }
    s.ids.insert(id.clone());
    s.order.push_back(id.clone());
    s.fresh.insert(conn, id);
    Ok(D::default())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "roomcast".to_owned())
}

/// A socket the UI knows: its id and namespace, kept while it exists (its handle no longer
/// tells them once it is gone, when its last room events arrive).
struct Known {
    sid: Str,
    nsp: Str,
    admin: bool,
}

/// One bucket of `aggregatedEvents`: a second, a type, a sub-type, a count.
struct Bucket {
    second: u64,
    kind: &'static str,
    sub: Option<&'static str>,
    count: u64,
}

/// `event_sent` messages one emit may cause, at most (per admin).
const MAX_SENT_REPORTED: usize = 1000;

/// The observer: all of the Admin UI's state, inside the driver.
struct Tap<D> {
    name: String,
    nsp: Option<NamespaceId>,
    dev: bool,
    read_only: bool,
    all_events: bool,
    server_id: String,
    started: Instant,
    /// Admin sockets connected: nothing is tracked while there are none.
    watchers: usize,
    known: HashMap<SocketHandle, Known>,
    aggregated: Vec<Bucket>,
    sessions: SharedSessions,
    _data: std::marker::PhantomData<fn() -> D>,
}

impl<D: Serialize + Send + Sync + Clone + Default + 'static> Observer<D> for Tap<D> {
    fn event(&mut self, ctx: &mut Ctx<Server<D>>, e: &Event) {
        if self.watchers == 0 {
            // Nobody watches: only an admin socket arriving matters.
            match e {
                Event::Connected { nsp, .. } if self.is_admin(ctx, *nsp) => self.first_watcher(ctx),
                _ => return,
            }
        }
        self.watched(ctx, e);
    }

    fn wants_outgoing(&self) -> bool {
        self.watchers > 0 && self.all_events
    }

    fn outgoing(&mut self, ctx: &mut Ctx<Server<D>>, sockets: &[SocketHandle], e: &Encoded) {
        // `[event, ...args]`, binary as the UI's JSON shows it (arrays of bytes).
        let args = crate::server::event_data(e)
            .and_then(|items| serde_json::to_value(rmpv::Value::Array(items)).ok())
            .unwrap_or(Value::Null);
        let now = Self::now_iso();
        // The reference reports every recipient; one emit reports at most this many here.
        for s in sockets.iter().take(MAX_SENT_REPORTED) {
            let Some(k) = self.known.get(s).filter(|k| !k.admin) else {
                continue;
            };
            let (nsp, sid) = (k.nsp.to_string(), k.sid.to_string());
            self.broadcast(ctx, "event_sent", &(nsp, sid, &args, &now));
        }
    }

    fn sent(&mut self, reached: usize, e: &Encoded) {
        if self.watchers == 0 || reached == 0 {
            return;
        }
        let len = e.len();
        let n = u64::try_from(reached).unwrap_or(u64::MAX);
        self.count("packetsOut", None, n);
        let bytes = u64::try_from(len).unwrap_or(u64::MAX).saturating_mul(n);
        self.count("bytesOut", None, bytes);
    }

    fn tick(&mut self, ctx: &mut Ctx<Server<D>>) {
        if self.nsp.is_none() {
            self.nsp = ctx.server.namespace(&self.name);
        }
        if self.watchers == 0 {
            self.aggregated.clear();
            return;
        }
        let namespaces: Vec<Value> = ctx
            .server
            .namespaces()
            .map(|(n, name)| (n, name.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|(n, name)| {
                let count = ctx.server.to_namespace(n).local().sockets().len();
                json!({"name": name, "socketsCount": count})
            })
            .collect();
        let clients = ctx.server.connection_count();
        let polling = clients.saturating_sub(ctx.websocket_count());
        let aggregated: Vec<Value> = self
            .aggregated
            .drain(..)
            .map(|b| {
                let mut v = json!({"timestamp": b.second * 1000, "type": b.kind, "count": b.count});
                if let (Some(sub), Some(o)) = (b.sub, v.as_object_mut()) {
                    o.insert("subType".into(), Value::from(sub));
                }
                v
            })
            .collect();
        let stats = json!({
            "serverId": self.server_id,
            "hostname": hostname(),
            "pid": std::process::id(),
            "uptime": self.started.elapsed().as_secs_f64(),
            "clientsCount": clients,
            "pollingClientsCount": polling,
            "aggregatedEvents": aggregated,
            "namespaces": namespaces,
        });
        self.broadcast(ctx, "server_stats", &(stats,));
    }
}

impl<D: Serialize + Send + Sync + Clone + Default + 'static> Tap<D> {
    fn is_admin(&mut self, ctx: &Ctx<Server<D>>, nsp: NamespaceId) -> bool {
        if self.nsp.is_none() {
            self.nsp = ctx.server.namespace(&self.name);
        }
        self.nsp == Some(nsp)
    }

    /// The first admin socket: every socket there is becomes known.
    fn first_watcher(&mut self, ctx: &mut Ctx<Server<D>>) {
        self.known.clear();
        self.aggregated.clear();
        let nsps: Vec<(NamespaceId, Str)> = ctx
            .server
            .namespaces()
            .map(|(n, name)| (n, name.clone()))
            .collect();
        for (n, name) in nsps {
            let admin = Some(n) == self.nsp;
            for s in ctx.server.to_namespace(n).local().fetch() {
                let known = Known {
                    sid: s.sid,
                    nsp: name.clone(),
                    admin,
                };
                self.known.insert(s.socket, known);
            }
        }
        // The event that brought it is handled next, as for any later admin socket.
    }

    fn now_iso() -> String {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        iso8601(u64::try_from(ms).unwrap_or(0))
    }

    fn count(&mut self, kind: &'static str, sub: Option<&'static str>, n: u64) {
        let second = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let at = self
            .aggregated
            .iter()
            .position(|b| b.second == second && b.kind == kind && b.sub == sub);
        if let Some(b) = at.and_then(|i| self.aggregated.get_mut(i)) {
            b.count += n;
        } else if self.aggregated.len() < 4096 {
            // Bounded: at most a few kinds per second between two statistics.
            self.aggregated.push(Bucket {
                second,
                kind,
                sub,
                count: n,
            });
        }
    }

    /// Emits to every admin socket.
    fn broadcast<T: Serialize + ?Sized>(&self, ctx: &mut Ctx<Server<D>>, event: &str, args: &T) {
        let Some(nsp) = self.nsp else { return };
        match ctx.server.parser().event(&self.name, None, event, args) {
            Ok(e) => {
                ctx.server.to_namespace(nsp).local().emit_encoded(&e);
            }
            Err(e) => tracing::warn!(%e, event, "admin event not encoded"),
        }
    }

    fn emit_to<T: Serialize + ?Sized>(
        &self,
        ctx: &mut Ctx<Server<D>>,
        socket: SocketHandle,
        event: &str,
        args: &T,
    ) {
        match ctx.server.parser().event(&self.name, None, event, args) {
            Ok(e) => {
                let _ = ctx.server.emit_encoded(socket, &e);
            }
            Err(e) => tracing::warn!(%e, event, "admin event not encoded"),
        }
    }

    /// `SerializedSocket`: what the UI shows of a socket.
    fn serialize(&self, ctx: &Ctx<Server<D>>, socket: SocketHandle) -> Option<Value> {
        let known = self.known.get(&socket)?;
        let server = &ctx.server;
        let conn = server.socket_connection(socket);
        let client_id: String = conn
            .and_then(|c| server.connection_sid(c))
            .map(|id| id.chars().take(12).collect())
            .unwrap_or_default();
        let transport = match conn {
            Some(c) if ctx.is_websocket(c) => "websocket",
            _ => "polling",
        };
        let data = match server.data(socket).map(serde_json::to_value) {
            Some(Ok(Value::Object(mut m))) => {
                m.remove("_admin");
                Value::Object(m)
            }
            Some(Ok(Value::Null)) | None | Some(Err(_)) => Value::Object(Map::new()),
            Some(Ok(v)) => v,
        };
        let info = conn.and_then(|c| server.request_info(c));
        let handshake = handshake(info);
        let rooms: Vec<String> = server
            .rooms_of(socket)
            .iter()
            .map(|r| r.to_string())
            .collect();
        Some(json!({
            "id": known.sid.to_string(),
            "clientId": client_id,
            "transport": transport,
            "nsp": known.nsp.to_string(),
            "data": data,
            "handshake": handshake,
            "rooms": rooms,
        }))
    }

    /// Every event while at least one admin socket is connected.
    fn watched(&mut self, ctx: &mut Ctx<Server<D>>, e: &Event) {
        match e {
            Event::Connected {
                socket, sid, nsp, ..
            } => {
                let admin = self.is_admin(ctx, *nsp);
                let name = ctx.server.namespace_name(*nsp).cloned().unwrap_or_default();
                self.known.insert(
                    *socket,
                    Known {
                        sid: sid.clone(),
                        nsp: name,
                        admin,
                    },
                );
                let first_of_conn = ctx
                    .server
                    .socket_connection(*socket)
                    .is_some_and(|c| ctx.server.connection_sockets(c).len() == 1);
                if first_of_conn {
                    self.count("rawConnection", None, 1);
                }
                if self.dev {
                    if let Some(s) = self.serialize(ctx, *socket) {
                        self.broadcast(ctx, "socket_connected", &(s, Self::now_iso()));
                    }
                }
                if admin {
                    self.watchers += 1;
                    self.admin_connected(ctx, *socket);
                }
            }
            Event::Disconnected {
                socket,
                sid,
                reason,
                ..
            } => {
                let Some(known) = self.known.remove(socket) else {
                    return;
                };
                if known.admin {
                    self.watchers = self.watchers.saturating_sub(1);
                    if self.watchers == 0 {
                        self.known.clear();
                        self.aggregated.clear();
                        return;
                    }
                }
                if self.dev {
                    let args = (
                        known.nsp.to_string(),
                        sid.to_string(),
                        reason.as_str(),
                        Self::now_iso(),
                    );
                    self.broadcast(ctx, "socket_disconnected", &args);
                }
            }
            Event::RoomJoined { room, socket, .. } | Event::RoomLeft { room, socket, .. } => {
                if !self.dev {
                    return;
                }
                let Some(known) = self.known.get(socket) else {
                    return;
                };
                let what = if matches!(e, Event::RoomJoined { .. }) {
                    "room_joined"
                } else {
                    "room_left"
                };
                let args = (
                    known.nsp.to_string(),
                    room.to_string(),
                    known.sid.to_string(),
                    Self::now_iso(),
                );
                self.broadcast(ctx, what, &args);
            }
            Event::ConnectionClosed { reason, .. } => {
                self.count("rawDisconnection", Some(reason.as_str()), 1);
            }
            Event::Message { socket, event, .. } => {
                let Some(known) = self.known.get(socket) else {
                    return;
                };
                if known.admin {
                    if !self.read_only {
                        self.command(ctx, event);
                    }
                    return;
                }
                let (nsp, sid) = (known.nsp.to_string(), known.sid.to_string());
                let data = event.data();
                let bytes =
                    data.json().len() + data.attachments().iter().map(|a| a.len()).sum::<usize>();
                self.count("packetsIn", None, 1);
                self.count("bytesIn", None, u64::try_from(bytes).unwrap_or(u64::MAX));
                if self.all_events {
                    // `[event, ...args]`, binary as the UI's JSON shows it (arrays of bytes).
                    let args: Value = data.deserialize().unwrap_or(Value::Null);
                    self.broadcast(ctx, "event_received", &(nsp, sid, args, Self::now_iso()));
                }
            }
            _ => {}
        }
    }

    /// A new admin socket: its session (after a login), the features, and in development mode
    /// every socket.
    fn admin_connected(&mut self, ctx: &mut Ctx<Server<D>>, socket: SocketHandle) {
        let fresh = ctx
            .server
            .socket_connection(socket)
            .and_then(|c| lock(&self.sessions).fresh.remove(&c));
        if let Some(id) = fresh {
            self.emit_to(ctx, socket, "session", &(id,));
        }
        let mut features: Vec<&str> = Vec::new();
        if !self.read_only {
            features.extend([
                "EMIT",
                "JOIN",
                "LEAVE",
                "DISCONNECT",
                "MJOIN",
                "MLEAVE",
                "MDISCONNECT",
            ]);
        }
        features.push("AGGREGATED_EVENTS");
        // The UI shows its Sockets, Rooms and Clients pages only with `ALL_EVENTS`, as the
        // reference's development mode says; the events themselves flow only with
        // `all_events` (the Events page stays empty otherwise).
        if self.dev {
            features.push("ALL_EVENTS");
        }
        self.emit_to(
            ctx,
            socket,
            "config",
            &(json!({"supportedFeatures": features}),),
        );
        if self.dev {
            let mut all: Vec<Value> = Vec::with_capacity(self.known.len());
            let handles: Vec<SocketHandle> = self.known.keys().copied().collect();
            for h in handles {
                if let Some(s) = self.serialize(ctx, h) {
                    all.push(s);
                }
            }
            self.emit_to(ctx, socket, "all_sockets", &(all,));
        }
        // The statistics at once, not in up to 2 s.
        self.tick(ctx);
    }

    /// `emit`, `join`, `leave`, `_disconnect` from the UI (no acks).
    fn command(&mut self, ctx: &mut Ctx<Server<D>>, event: &crate::packet::Event) {
        let Ok(args) = event.raw_args() else { return };
        let text = |i: usize| -> Option<String> {
            serde_json::from_str::<Option<String>>(args.get(i)?.get())
                .ok()
                .flatten()
        };
        let Some(nsp) = text(0).and_then(|n| ctx.server.namespace(&n)) else {
            return; // unknown namespace: nothing (the reference would create it)
        };
        if Some(nsp) == self.nsp {
            return; // the UI never targets its own namespace
        }
        let Some(nsp_name) = ctx.server.namespace_name(nsp).cloned() else {
            return;
        };
        match event.name() {
            "emit" => {
                let Some(name) = text(2) else { return };
                let rest: Vec<&serde_json::value::RawValue> =
                    args.iter().skip(3).copied().collect();
                let attachments = event.data().attachments();
                let parser = ctx.server.parser();
                let Ok(e) = parser.event_raw(&nsp_name, None, &name, &rest, attachments) else {
                    return;
                };
                let mut b = ctx.server.to_namespace(nsp);
                if let Some(f) = text(1) {
                    b = b.to(f);
                }
                b.emit_encoded(&e);
            }
            "join" | "leave" => {
                let Some(room) = text(1) else { return };
                let mut b = ctx.server.to_namespace(nsp);
                if let Some(f) = text(2) {
                    b = b.to(f);
                }
                if event.name() == "join" {
                    b.join(&room);
                } else {
                    b.leave(&room);
                }
            }
            "_disconnect" => {
                let close = args
                    .get(1)
                    .and_then(|a| serde_json::from_str::<bool>(a.get()).ok())
                    .unwrap_or(false);
                let mut b = ctx.server.to_namespace(nsp);
                if let Some(f) = text(2) {
                    b = b.to(f);
                }
                b.disconnect(close);
            }
            _ => {}
        }
    }
}

/// `socket.handshake` without `auth` (the reference leaves it out for the UI).
fn handshake(info: Option<&crate::RequestInfo>) -> Value {
    let Some(info) = info else {
        // Never without the adapter's request info; the UI still needs a date and objects.
        return json!({"headers": {}, "query": {}, "issued": 0, "time": iso8601(0),
            "address": "", "secure": false, "url": "", "xdomain": false});
    };
    let headers: Map<String, Value> = info
        .joined_headers()
        .into_iter()
        .map(|(n, v)| (n.to_owned(), Value::from(v)))
        .collect();
    let header = |n: &str| headers.get(n).and_then(Value::as_str).map(str::to_owned);
    let address = header("cf-connecting-ip")
        .or_else(|| header("x-forwarded-for"))
        .or_else(|| info.address().map(str::to_owned))
        .unwrap_or_default();
    let xdomain = headers.contains_key("origin");
    let query: Map<String, Value> = info
        .query()
        .into_iter()
        .map(|(k, v)| (k, Value::from(v)))
        .collect();
    let issued = info.unix_ms.unwrap_or(0);
    json!({
        "address": address,
        "headers": headers,
        "query": query,
        "issued": issued,
        "secure": info.secure,
        "time": iso8601(issued),
        "url": info.url(),
        "xdomain": xdomain,
    })
}

/// Milliseconds since the epoch as `JSON.stringify(new Date(ms))` writes them.
fn iso8601(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(0);
    let millis = ms % 1000;
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = crate::cluster::value::civil(secs.div_euclid(86_400)).unwrap_or((1970, 1, 1));
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_as_javascript_writes_them() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn query_strings_as_node_reads_them() {
        let info = crate::RequestInfo::new(
            "/socket.io/?EIO=4&transport=polling&x=1&x=2&s=a%20b+c%zz",
            None,
            [("x-forwarded-for", "10.0.0.1")],
        );
        let h = handshake(Some(&info));
        assert_eq!(h["query"]["x"], "1");
        assert_eq!(h["query"]["s"], "a b c%zz");
        assert_eq!(h["query"]["EIO"], "4");
        assert_eq!(h["address"], "10.0.0.1");
    }
}
