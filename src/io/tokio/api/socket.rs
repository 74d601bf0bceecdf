//! A connected socket as its handlers see it: its handshake and data, its own listeners,
//! emits and acks to it, and the broadcasts it starts.

use super::broadcast::BroadcastOp;
use super::namespace::{DisconnectFn, EventFn, SocketFn};
use super::SocketIo;
use crate::io::tokio::driver::{CallFn, Cmd, Ctx, NewSocket};
use crate::io::tokio::shared::{lock, BoxFuture, CallError, Rejection};
use crate::packet::{self, Encoded, Parser, Payload};
use crate::{AckError, DisconnectReason, Handshake, Server, SocketHandle, Str};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Waiting for an ack timed out, or the socket left first.
pub type AckTimeout = AckError;

/// How long an ack is waited for without a `timeout(...)`: until the socket leaves, in effect
/// (the core fails every pending ack of a socket that leaves).
pub(super) const NO_TIMEOUT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

pub(super) type AnyFn = Arc<dyn Fn(&packet::Event) + Send + Sync>;
pub(super) type PacketFn<D> =
    Arc<dyn Fn(Socket<D>, Arc<packet::Event>) -> BoxFuture<Result<(), Rejection>> + Send + Sync>;
pub(super) type ErrorFn<D> = Arc<dyn Fn(Socket<D>, Rejection) -> BoxFuture<()> + Send + Sync>;

/// Names one listener of a socket's own, to remove it with [`Socket::off`] (Node's
/// `off(event, fn)`, which compares closures: Rust cannot). Unique across sockets, so the id
/// of another socket's listener removes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerId(u64);

impl ListenerId {
    fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        ListenerId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// The listeners of one kind, in calling order.
pub(super) struct List<F>(Vec<(ListenerId, F)>);

impl<F> Default for List<F> {
    fn default() -> Self {
        List(Vec::new())
    }
}

impl<F: Clone> List<F> {
    fn add(&mut self, id: ListenerId, f: F, first: bool) {
        let at = if first { 0 } else { self.0.len() };
        self.0.insert(at, (id, f));
    }

    fn remove(&mut self, id: ListenerId) -> bool {
        let before = self.0.len();
        self.0.retain(|(i, _)| *i != id);
        self.0.len() != before
    }

    /// The listeners to call now. Calls happen on this copy, outside the lock, so a listener
    /// may add or remove listeners (itself included); one removed meanwhile still runs this
    /// time, as in Node.
    pub(super) fn snapshot(&self) -> Vec<F> {
        self.0.iter().map(|(_, f)| f.clone()).collect()
    }

    fn ids(&self) -> Vec<ListenerId> {
        self.0.iter().map(|(id, _)| *id).collect()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// One socket's own listeners (`socket.on`, `onAny`, `use`...), registered from its handlers.
pub(super) struct Listeners<D: Send + Sync + Clone + Default + 'static> {
    pub(super) events: HashMap<String, List<EventFn<D>>>,
    pub(super) any: List<AnyFn>,
    pub(super) any_outgoing: List<AnyFn>,
    pub(super) middleware: List<PacketFn<D>>,
    pub(super) error: List<ErrorFn<D>>,
    pub(super) disconnecting: List<DisconnectFn<D>>,
    pub(super) disconnect: List<DisconnectFn<D>>,
    pub(super) upgrade: List<SocketFn<D>>,
}

impl<D: Send + Sync + Clone + Default + 'static> Default for Listeners<D> {
    fn default() -> Self {
        Listeners {
            events: HashMap::new(),
            any: List::default(),
            any_outgoing: List::default(),
            middleware: List::default(),
            error: List::default(),
            disconnecting: List::default(),
            disconnect: List::default(),
            upgrade: List::default(),
        }
    }
}

impl<D: Send + Sync + Clone + Default + 'static> Listeners<D> {
    fn remove(&mut self, id: ListenerId) -> bool {
        let event = self
            .events
            .iter_mut()
            .find_map(|(name, list)| list.remove(id).then(|| name.clone()));
        if let Some(name) = event {
            self.drop_if_empty(&name);
            return true;
        }
        self.any.remove(id)
            || self.any_outgoing.remove(id)
            || self.middleware.remove(id)
            || self.error.remove(id)
            || self.disconnecting.remove(id)
            || self.disconnect.remove(id)
            || self.upgrade.remove(id)
    }

    /// Forgets an event nobody listens to any more, so that `event_names` leaves it out.
    fn drop_if_empty(&mut self, event: &str) {
        if self.events.get(event).is_some_and(List::is_empty) {
            self.events.remove(event);
        }
    }

    /// Removes the listeners of one name: an event's, and for the names Node's socket emits
    /// itself (`error`, `disconnecting`, `disconnect`), the dedicated ones too, which Node
    /// keeps in the same list.
    fn clear(&mut self, event: &str) {
        self.events.remove(event);
        match event {
            "error" => self.error = List::default(),
            "disconnecting" => self.disconnecting = List::default(),
            "disconnect" => self.disconnect = List::default(),
            _ => {}
        }
    }

    fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.any.is_empty()
            && self.any_outgoing.is_empty()
            && self.middleware.is_empty()
            && self.error.is_empty()
            && self.disconnecting.is_empty()
            && self.disconnect.is_empty()
            && self.upgrade.is_empty()
    }
}

/// What every handle of one socket shares.
pub(super) struct SocketState<D: Send + Sync + Clone + Default + 'static> {
    pub(super) id: Str,
    pub(super) nsp: Arc<str>,
    pub(super) recovered: bool,
    pub(super) handshake: Handshake,
    data: Mutex<D>,
    /// Allocated when the first listener of the socket's own is registered.
    pub(super) listeners: Mutex<Option<Box<Listeners<D>>>>,
    /// Set once it has left: the rooms it was in, for `disconnecting` listeners.
    pub(super) left: Mutex<Option<Vec<Str>>>,
    /// Whether its connection is on WebSocket (else long-polling).
    pub(super) websocket: std::sync::atomic::AtomicBool,
}

impl<D: Send + Sync + Clone + Default + 'static> SocketState<D> {
    /// Calls its `on_any_outgoing` listeners (inside the driver, or in the emitting task).
    pub(super) fn notify_outgoing(&self, event: &packet::Event) {
        let listeners = lock(&self.listeners)
            .as_ref()
            .map(|l| l.any_outgoing.snapshot())
            .unwrap_or_default();
        for f in listeners {
            if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(event))) {
                let panic = crate::io::tokio::shared::panic_message(&*p);
                tracing::error!(panic, socket = %self.id, "outgoing listener panicked");
            }
        }
    }
}

/// An emitted packet as its `on_any_outgoing` listeners see it.
pub(super) fn decode_outgoing(parser: Parser, e: &Encoded) -> Option<packet::Event> {
    let mut d = packet::Decoder::with_parser(parser, crate::Limits::default());
    let mut out = None;
    for f in e.frames() {
        out = match f {
            crate::engine::Frame::Text(s) => d.push_text(s.slice(1..s.len())?).ok()?,
            crate::engine::Frame::Binary(b) => d.push_binary(b).ok()?,
        };
    }
    match out? {
        packet::Packet::Event { event, .. } => Some(event),
        _ => None,
    }
}

/// A connected socket, as its handlers see it (Node's server-side `socket`). Cheap to clone:
/// every clone is the same socket. Calls that change it go to the driver; its handshake and
/// data are read here.
pub struct Socket<D: Send + Sync + Clone + Default + 'static> {
    pub(super) io: SocketIo<D>,
    pub(super) handle: SocketHandle,
    pub(super) state: Arc<SocketState<D>>,
}

impl<D: Send + Sync + Clone + Default + 'static> Clone for Socket<D> {
    fn clone(&self) -> Self {
        Socket {
            io: self.io.clone(),
            handle: self.handle,
            state: self.state.clone(),
        }
    }
}

impl<D: Send + Sync + Clone + Default + 'static> std::fmt::Debug for Socket<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Socket({} {})", self.state.nsp, self.state.id)
    }
}

impl<D: Send + Sync + Clone + Default + 'static> Socket<D> {
    pub(super) fn new(io: SocketIo<D>, new: NewSocket<D>) -> Self {
        Socket {
            io,
            handle: new.handle,
            state: Arc::new(SocketState {
                id: new.sid,
                nsp: Arc::from(new.nsp),
                recovered: new.recovered,
                handshake: new.handshake,
                data: Mutex::new(new.data),
                listeners: Mutex::new(None),
                left: Mutex::new(None),
                websocket: new.websocket.into(),
            }),
        }
    }

    /// The socket's public id (also its own room).
    pub fn id(&self) -> &str {
        &self.state.id
    }

    /// The core's handle of this socket.
    pub fn handle(&self) -> SocketHandle {
        self.handle
    }

    /// Whether this socket was restored by connection state recovery (`socket.recovered`):
    /// the same id as before the drop, its rooms and data back, and the events it missed
    /// delivered before the client saw it connect. Always false with recovery off.
    pub fn recovered(&self) -> bool {
        self.state.recovered
    }

    /// The namespace's name.
    pub fn namespace(&self) -> &str {
        &self.state.nsp
    }

    /// Its namespace (`socket.nsp`): broadcasts to it, its listeners.
    pub fn nsp(&self) -> super::Namespace<D> {
        super::Namespace::existing(self.io.clone(), &self.state.nsp)
    }

    /// The server this socket belongs to.
    pub fn io(&self) -> &SocketIo<D> {
        &self.io
    }

    /// The handshake (`socket.handshake`): the headers, query, address, url, time and auth
    /// of the request that opened its session.
    pub fn handshake(&self) -> &Handshake {
        &self.state.handshake
    }

    /// The transport its connection uses now, `"polling"` or `"websocket"`
    /// (`socket.conn.transport.name`); see [`on_upgrade`](Self::on_upgrade).
    pub fn transport(&self) -> &'static str {
        if self.state.websocket.load(Ordering::Relaxed) {
            "websocket"
        } else {
            "polling"
        }
    }

    /// Runs when its connection moves from long-polling to WebSocket
    /// (`socket.conn.on("upgrade", ...)`).
    pub fn on_upgrade<F, Fut>(&self, f: F) -> ListenerId
    where
        F: Fn(Socket<D>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let f: SocketFn<D> = Arc::new(move |s| Box::pin(f(s)));
        self.add(|l| &mut l.upgrade, f, false)
    }

    /// Whether it is still connected (`socket.connected`).
    pub fn connected(&self) -> bool {
        lock(&self.state.left).is_none()
    }

    /// Its data (`socket.data`), as middleware and handlers last set it.
    pub fn data(&self) -> D {
        lock(&self.state.data).clone()
    }

    /// Sets its data (`socket.data = ...`): read at once by every handler, and, through the
    /// driver, by `fetch_sockets` and connection state recovery.
    pub fn set_data(&self, data: D) {
        self.with_data(|d| *d = data);
    }

    /// Changes its data in place (see [`set_data`](Self::set_data)).
    pub fn with_data<R>(&self, f: impl FnOnce(&mut D) -> R) -> R {
        let (r, now) = {
            let mut d = lock(&self.state.data);
            let r = f(&mut d);
            (r, d.clone())
        };
        let s = self.handle;
        self.io.link.call_or_log(
            "set data",
            Box::new(move |ctx| {
                if let Some(d) = ctx.server.data_mut(s) {
                    *d = now;
                }
            }),
        );
        r
    }

    /// Changes its listeners under their lock; without `create`, nothing happens (`None`) to a
    /// socket that has none, which is left without any allocated. The registry of sockets with
    /// outgoing listeners is kept in step here, under the same lock, so that an addition and
    /// a removal racing leave it as the list is.
    fn edit<R>(&self, create: bool, f: impl FnOnce(&mut Listeners<D>) -> R) -> Option<R> {
        let mut guard = lock(&self.state.listeners);
        let l = if create {
            guard.get_or_insert_with(Box::default)
        } else {
            guard.as_mut()?
        };
        let watched = !l.any_outgoing.is_empty();
        let r = f(l);
        let watch = !l.any_outgoing.is_empty();
        if watch != watched {
            self.watch_outgoing(watch);
        }
        if l.is_empty() {
            *guard = None;
        }
        Some(r)
    }

    fn read<R: Default>(&self, f: impl FnOnce(&Listeners<D>) -> R) -> R {
        lock(&self.state.listeners)
            .as_deref()
            .map(f)
            .unwrap_or_default()
    }

    fn add<F: Clone>(
        &self,
        list: impl FnOnce(&mut Listeners<D>) -> &mut List<F>,
        f: F,
        first: bool,
    ) -> ListenerId {
        let id = ListenerId::next();
        self.add_as(id, list, f, first);
        id
    }

    fn add_as<F: Clone>(
        &self,
        id: ListenerId,
        list: impl FnOnce(&mut Listeners<D>) -> &mut List<F>,
        f: F,
        first: bool,
    ) {
        self.edit(true, |l| list(l).add(id, f, first));
    }

    /// Enters or leaves the registry the driver reads on every emit to learn whether anyone
    /// listens to outgoing events. A socket that has left stays out: nothing would remove it.
    pub(super) fn watch_outgoing(&self, watch: bool) {
        let shared = &self.io.shared;
        let mut map = lock(&shared.outgoing);
        if watch && self.connected() {
            if map.insert(self.handle, self.state.clone()).is_none() {
                shared.outgoing_count.fetch_add(1, Ordering::Relaxed);
            }
        } else if map.remove(&self.handle).is_some() {
            shared.outgoing_count.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Listens for an event from this socket (`socket.on(event, ...)`), after the
    /// namespace's own listeners of it. Listeners start in arrival order and run
    /// concurrently with later events. If one panics, the socket is disconnected. The id
    /// removes it ([`off`](Self::off)); most code never needs it.
    pub fn on<F, Fut>(&self, event: &str, f: F) -> ListenerId
    where
        F: Fn(Socket<D>, Message<D>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.add_event(event, f, false)
    }

    /// The same as [`on`](Self::on), called before this socket's other listeners of the event
    /// (`socket.prependListener`); the namespace's still come first.
    pub fn prepend_listener<F, Fut>(&self, event: &str, f: F) -> ListenerId
    where
        F: Fn(Socket<D>, Message<D>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.add_event(event, f, true)
    }

    fn add_event<F, Fut>(&self, event: &str, f: F, first: bool) -> ListenerId
    where
        F: Fn(Socket<D>, Message<D>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let id = ListenerId::next();
        self.insert_event(id, event, Arc::new(move |s, m| Box::pin(f(s, m))), first);
        id
    }

    fn insert_event(&self, id: ListenerId, event: &str, f: EventFn<D>, first: bool) {
        self.add_as(
            id,
            |l| l.events.entry(event.to_owned()).or_default(),
            f,
            first,
        );
    }

    /// Listens for the next occurrence of an event only (`socket.once`): removed as it is
    /// called, so it may be an `FnOnce`.
    pub fn once<F, Fut>(&self, event: &str, f: F) -> ListenerId
    where
        F: FnOnce(Socket<D>, Message<D>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let id = ListenerId::next();
        let f = Mutex::new(Some(f));
        let f: EventFn<D> = Arc::new(move |s, m| {
            // Behind packet middleware that awaits, a later event may have taken this
            // listener too before the first call removed it: the first call is the one.
            let Some(f) = lock(&f).take() else {
                return Box::pin(async {});
            };
            s.off(id);
            Box::pin(f(s, m))
        });
        self.insert_event(id, event, f, false);
        id
    }

    /// Removes one listener of this socket's own, of any kind (`socket.off(event, fn)`,
    /// `removeListener`, `offAny(fn)`, `offAnyOutgoing(fn)`); whether it was there. Safe
    /// from any listener, itself included: what already started goes on.
    pub fn off(&self, id: ListenerId) -> bool {
        self.edit(false, |l| l.remove(id)).unwrap_or(false)
    }

    /// Removes every listener of this socket's own for `event` (`removeAllListeners(event)`);
    /// `"error"`, `"disconnecting"` and `"disconnect"` also remove the
    /// [`on_error`](Self::on_error), [`on_disconnecting`](Self::on_disconnecting) and
    /// [`on_disconnect`](Self::on_disconnect) ones, as Node keeps them as listeners of those
    /// names. The namespace's listeners stay.
    pub fn off_event(&self, event: &str) -> &Self {
        self.edit(false, |l| l.clear(event));
        self
    }

    /// Removes every listener [`event_names`](Self::event_names) counts
    /// (`removeAllListeners()`); as in Node, `on_any`, `on_any_outgoing` and packet
    /// middleware stay (see [`off_any`](Self::off_any)), and so do `on_upgrade` listeners
    /// (Node's are on `socket.conn`).
    pub fn remove_all_listeners(&self) -> &Self {
        self.edit(false, |l| {
            l.events.clear();
            l.error = List::default();
            l.disconnecting = List::default();
            l.disconnect = List::default();
        });
        self
    }

    /// The names with a listener of this socket's own (`socket.eventNames()`): its events',
    /// then `"error"`, `"disconnecting"`, `"disconnect"` if it has such listeners.
    pub fn event_names(&self) -> Vec<String> {
        self.read(|l| {
            let mut names: Vec<String> = l.events.keys().cloned().collect();
            names.sort();
            let own = [
                ("error", l.error.is_empty()),
                ("disconnecting", l.disconnecting.is_empty()),
                ("disconnect", l.disconnect.is_empty()),
            ];
            for (name, empty) in own {
                if !empty && !l.events.contains_key(name) {
                    names.push(name.to_owned());
                }
            }
            names
        })
    }

    /// How many listeners of this socket's own `event` has (`socket.listenerCount(event)`;
    /// the namespace's are not counted).
    pub fn listener_count(&self, event: &str) -> usize {
        self.read(|l| l.events.get(event).map_or(0, List::len))
    }

    /// Sees every event of this socket before its listeners (`socket.onAny`), after the
    /// `on_any` listeners registered before.
    pub fn on_any(&self, f: impl Fn(&packet::Event) + Send + Sync + 'static) -> ListenerId {
        self.add(|l| &mut l.any, Arc::new(f) as AnyFn, false)
    }

    /// The same as [`on_any`](Self::on_any), called before the others (`socket.prependAny`).
    pub fn prepend_any(&self, f: impl Fn(&packet::Event) + Send + Sync + 'static) -> ListenerId {
        self.add(|l| &mut l.any, Arc::new(f) as AnyFn, true)
    }

    /// Removes every `on_any` listener (`socket.offAny()`; one alone: [`off`](Self::off)).
    pub fn off_any(&self) -> &Self {
        self.edit(false, |l| l.any = List::default());
        self
    }

    /// The `on_any` listeners, in calling order (`socket.listenersAny()`): their ids, which
    /// [`off`](Self::off) takes, since closures cannot be compared or called back from here.
    pub fn listeners_any(&self) -> Vec<ListenerId> {
        self.read(|l| l.any.ids())
    }

    /// Sees every event emitted to this socket, broadcasts included (`socket.onAnyOutgoing`).
    pub fn on_any_outgoing(
        &self,
        f: impl Fn(&packet::Event) + Send + Sync + 'static,
    ) -> ListenerId {
        self.add(|l| &mut l.any_outgoing, Arc::new(f) as AnyFn, false)
    }

    /// The same as [`on_any_outgoing`](Self::on_any_outgoing), called before the others
    /// (`socket.prependAnyOutgoing`).
    pub fn prepend_any_outgoing(
        &self,
        f: impl Fn(&packet::Event) + Send + Sync + 'static,
    ) -> ListenerId {
        self.add(|l| &mut l.any_outgoing, Arc::new(f) as AnyFn, true)
    }

    /// Removes every `on_any_outgoing` listener (`socket.offAnyOutgoing()`); emits to the
    /// socket are no longer decoded for it.
    pub fn off_any_outgoing(&self) -> &Self {
        self.edit(false, |l| l.any_outgoing = List::default());
        self
    }

    /// The `on_any_outgoing` listeners' ids, in calling order (`listenersAnyOutgoing()`; see
    /// [`listeners_any`](Self::listeners_any)).
    pub fn listeners_any_outgoing(&self) -> Vec<ListenerId> {
        self.read(|l| l.any_outgoing.ids())
    }

    /// A packet middleware (`socket.use(([event, ...args], next) => ...)`): runs on each of
    /// this socket's events before any listener, in registration order. An `Err` stops the
    /// event: no listener runs, and the socket's [`on_error`](Self::on_error) listeners get the
    /// error (as in Node, the client learns of it only if one of them tells it).
    pub fn use_<F, Fut>(&self, f: F) -> ListenerId
    where
        F: Fn(Socket<D>, Arc<packet::Event>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Rejection>> + Send + 'static,
    {
        let f: PacketFn<D> = Arc::new(move |s, e| Box::pin(f(s, e)));
        self.add(|l| &mut l.middleware, f, false)
    }

    /// Gets the errors of this socket's packet middleware (`socket.on("error", ...)`).
    pub fn on_error<F, Fut>(&self, f: F) -> ListenerId
    where
        F: Fn(Socket<D>, Rejection) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let f: ErrorFn<D> = Arc::new(move |s, e| Box::pin(f(s, e)));
        self.add(|l| &mut l.error, f, false)
    }

    /// Runs when this socket is leaving (`socket.on("disconnecting", ...)`):
    /// [`rooms`](Self::rooms) still lists the rooms it was in.
    pub fn on_disconnecting<F, Fut>(&self, f: F) -> ListenerId
    where
        F: Fn(Socket<D>, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let f: DisconnectFn<D> = Arc::new(move |s, r| Box::pin(f(s, r)));
        self.add(|l| &mut l.disconnecting, f, false)
    }

    /// Runs when this socket has left (`socket.on("disconnect", ...)`).
    pub fn on_disconnect<F, Fut>(&self, f: F) -> ListenerId
    where
        F: Fn(Socket<D>, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let f: DisconnectFn<D> = Arc::new(move |s, r| Box::pin(f(s, r)));
        self.add(|l| &mut l.disconnect, f, false)
    }

    /// Emits an event to this socket (`socket.emit`). Arguments as for [`Encoded::event`]
    /// (a tuple, a `Vec`, a struct...). Never waits: refused with [`CallError::Full`] when the
    /// driver's call queue is full.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), CallError> {
        let e = self
            .io
            .parser()
            .event(&self.state.nsp, None, event, args)
            .map_err(crate::Error::from)?;
        self.io.call(self.emit_call(e))
    }

    /// Emits an already encoded packet to this socket.
    pub fn emit_encoded(&self, e: Encoded) -> Result<(), CallError> {
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

    /// Emits an event and waits for the client's answer (`socket.emitWithAck`), for as long
    /// as the socket stays; [`timeout`](Self::timeout) bounds the wait.
    pub async fn emit_with_ack<T: Serialize + Send + 'static>(
        &self,
        event: &str,
        args: T,
    ) -> Result<Payload, AckError> {
        self.ack_within(event, args, NO_TIMEOUT).await
    }

    /// Emits with a bound on the ack's wait (`socket.timeout(ms).emitWithAck(...)`).
    pub fn timeout(&self, timeout: Duration) -> Timeout<'_, D> {
        Timeout {
            socket: self,
            timeout,
        }
    }

    async fn ack_within<T: Serialize + Send + 'static>(
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

    /// Joins a room (`socket.join`). Never waits; if the call queue is full, the refusal is
    /// logged and counted ([`SocketIo::refused_calls`]).
    pub fn join(&self, room: impl Into<String>) {
        let (s, room) = (self.handle, room.into());
        self.io
            .link
            .call_or_log("join", Box::new(move |ctx| drop(ctx.server.join(s, &room))));
    }

    /// Leaves a room (`socket.leave`). Never waits; refusal as for [`join`](Self::join).
    pub fn leave(&self, room: impl Into<String>) {
        let (s, room) = (self.handle, room.into());
        self.io.link.call_or_log(
            "leave",
            Box::new(move |ctx| drop(ctx.server.leave(s, &room))),
        );
    }

    /// Its rooms, its own id first (`socket.rooms`). Once it has left (in `disconnecting`
    /// and `disconnect` listeners), the rooms it was in.
    pub async fn rooms(&self) -> Vec<Str> {
        if let Some(rooms) = lock(&self.state.left).clone() {
            return rooms;
        }
        let s = self.handle;
        self.io
            .query(move |ctx| ctx.server.rooms_of(s))
            .await
            .unwrap_or_default()
    }

    /// A broadcast to `room` from this socket: everyone in it but this socket
    /// (`socket.to(room)`).
    pub fn to(&self, room: impl Into<Str>) -> BroadcastOp<D> {
        self.broadcast().to(room)
    }

    /// The same as [`to`](Self::to) (`socket.in(room)`).
    pub fn in_(&self, room: impl Into<Str>) -> BroadcastOp<D> {
        self.to(room)
    }

    /// Every other socket of the namespace but the members of `room` (`socket.except`).
    pub fn except(&self, room: impl Into<Str>) -> BroadcastOp<D> {
        self.broadcast().except(room)
    }

    /// A broadcast to every other socket of the namespace (`socket.broadcast`).
    pub fn broadcast(&self) -> BroadcastOp<D> {
        BroadcastOp::new(
            self.io.clone(),
            self.state.nsp.to_string(),
            Some(self.handle),
        )
    }

    /// An emit to this socket alone, dropped if its connection cannot take it now
    /// (`socket.volatile.emit`).
    pub fn volatile(&self) -> BroadcastOp<D> {
        self.own().volatile()
    }

    /// An emit to this socket alone with the compression flag set (`socket.compress(false)`;
    /// this server negotiates no compression, so it never compresses).
    pub fn compress(&self, compress: bool) -> BroadcastOp<D> {
        self.own().compress(compress)
    }

    /// This socket as a selection: its own room, on this node.
    fn own(&self) -> BroadcastOp<D> {
        BroadcastOp::new(self.io.clone(), self.state.nsp.to_string(), None)
            .to(self.state.id.clone())
            .local()
    }

    /// Disconnects this socket from its namespace (`socket.disconnect(close)`); with
    /// `close`, its whole connection (every namespace of the client). Never waits; refusal
    /// as for [`join`](Self::join).
    pub fn disconnect(&self, close: bool) {
        let s = self.handle;
        self.io.link.call_or_log(
            "disconnect",
            Box::new(move |ctx| match ctx.server.socket_connection(s) {
                Some(conn) if close => ctx.server.disconnect_connection(conn),
                _ => drop(ctx.server.disconnect(s)),
            }),
        );
    }
}

/// An emit to one socket whose ack is waited for at most so long (`socket.timeout(ms)`).
pub struct Timeout<'a, D: Send + Sync + Clone + Default + 'static> {
    socket: &'a Socket<D>,
    timeout: Duration,
}

impl<D: Send + Sync + Clone + Default + 'static> Timeout<'_, D> {
    /// Emits and waits for the answer (`socket.timeout(ms).emitWithAck(...)`): the
    /// reference's "operation has timed out" is [`AckError::Timeout`].
    pub async fn emit_with_ack<T: Serialize + Send + 'static>(
        &self,
        event: &str,
        args: T,
    ) -> Result<Payload, AckError> {
        self.socket.ack_within(event, args, self.timeout).await
    }
}

/// An event a client sent, with the means to answer it if it asked for an answer. Every
/// listener of the event gets a clone; the first answer is the one sent.
pub struct Message<D: Send + Sync + Clone + Default + 'static> {
    /// Its name and arguments.
    pub event: Arc<packet::Event>,
    pub(super) ack: Option<Arc<Mutex<Option<Ack<D>>>>>,
}

impl<D: Send + Sync + Clone + Default + 'static> Clone for Message<D> {
    fn clone(&self) -> Self {
        Message {
            event: self.event.clone(),
            ack: self.ack.clone(),
        }
    }
}

impl<D: Send + Sync + Clone + Default + 'static> Message<D> {
    /// The event's name.
    pub fn name(&self) -> &str {
        self.event.name()
    }

    /// The arguments, deserialized as a sequence (a tuple, a `Vec`...); binary attachments
    /// deserialize into `bytes::Bytes` wherever the type asks for bytes.
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        self.event.args()
    }

    /// The arguments as received, binary included, to emit or ack again unparsed
    /// (`socket.emit("x", &msg.args_raw())`: the same text and attachments, not re-encoded).
    pub fn args_raw(&self) -> packet::RawArgs {
        self.event.args_raw()
    }

    /// The `i`-th argument, deserialized; `None` if there is none or it does not fit `T`
    /// (JS's `undefined`).
    pub fn arg<T: DeserializeOwned>(&self, i: usize) -> Option<T> {
        let raw = self.event.raw_args().ok()?;
        serde_json::from_str(raw.get(i)?.get()).ok()
    }

    /// Whether the client waits for an answer (and none was sent yet).
    pub fn wants_ack(&self) -> bool {
        self.ack.as_ref().is_some_and(|a| lock(a).is_some())
    }

    /// Answers the client (a no-op if it did not ask, or was answered already). Arguments
    /// as for [`Encoded::ack`].
    pub fn ack<T: Serialize + ?Sized>(&self, args: &T) {
        if let Some(a) = self.take_ack() {
            a.send(args);
        }
    }

    /// The ack, to answer later or from elsewhere (`None` once taken or answered).
    pub fn take_ack(&self) -> Option<Ack<D>> {
        self.ack.as_ref().and_then(|a| lock(a).take())
    }
}

/// The means to answer one event, once (sending it uses it up). It holds a slot of the driver's
/// call queue, reserved before its handler ran, so the answer is never refused.
#[must_use = "the client waits for this acknowledgement"]
pub struct Ack<D: Send + Sync + Clone + Default + 'static> {
    pub(super) socket: Socket<D>,
    pub(super) request: crate::AckRequest,
    pub(super) slot: Option<mpsc::OwnedPermit<Cmd<Server<D>>>>,
}

impl<D: Send + Sync + Clone + Default + 'static> Ack<D> {
    /// Sends the answer.
    pub fn send<T: Serialize + ?Sized>(self, args: &T) {
        match self
            .socket
            .io
            .parser()
            .ack(&self.socket.state.nsp, self.request.id(), args)
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
