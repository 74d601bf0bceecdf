//! The driver task: the one owner of the core. Inputs arrive as commands on one channel;
//! after each batch of them, the core's outputs go to connection writers, waiting requests and
//! socket tasks.

use super::api::{spawn_socket_task, Handlers, SocketEvent};
use super::{lock, Options, SocketIo};
use crate::engine::Frame;
use crate::packet::Payload;
use crate::{
    AckError, AckHandle, BroadcastAckHandle, Config, ConnectionHandle, Event, HttpAction,
    HttpRequest, HttpResponse, Method, RequestId, Server, SocketHandle, Transmit,
};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// A boxed application call run inside the driver.
pub(crate) type CallFn<D> = Box<dyn FnOnce(&mut Ctx<D>) + Send>;

/// Replies of a broadcast with acks: the answers, how many were reached, whether it timed out.
pub(crate) type BroadcastReplies = (Vec<(SocketHandle, Payload)>, usize, bool);

pub(crate) enum Cmd<D> {
    Http {
        method: Method,
        query: String,
        websocket: bool,
        content_length: Option<u64>,
        reply: oneshot::Sender<(HttpAction, Option<oneshot::Receiver<Bytes>>)>,
    },
    PostBody {
        request: RequestId,
        body: Option<Bytes>,
        reply: oneshot::Sender<HttpResponse>,
    },
    Aborted(RequestId),
    WsOpen {
        conn: ConnectionHandle,
        writer: mpsc::Sender<Frame>,
    },
    WsMessage {
        conn: ConnectionHandle,
        frame: Frame,
    },
    WsClosed {
        conn: ConnectionHandle,
    },
    Unblock(ConnectionHandle),
    Call(CallFn<D>),
    Shutdown(oneshot::Sender<()>),
}

/// A connection's writer queue as the driver sees it.
struct Writer {
    conn: ConnectionHandle,
    tx: mpsc::Sender<Frame>,
    blocked: bool,
}

/// Handlers registered per namespace, and the dynamic-namespace rule.
pub(crate) struct Registry<D> {
    pub(crate) nsps: HashMap<String, Handlers<D>>,
    pub(crate) dynamic: Option<(String, DynamicFilter)>,
    pub(crate) engine: Option<EngineFn<D>>,
}

/// Handles bare Engine.IO messages, inside the driver.
pub(crate) type EngineFn<D> =
    Arc<dyn Fn(&mut Ctx<D>, ConnectionHandle, crate::engine::Message) + Send + Sync>;

pub(crate) type DynamicFilter = Arc<dyn Fn(&str) -> bool + Send + Sync>;

impl<D> Default for Registry<D> {
    fn default() -> Self {
        Registry {
            nsps: HashMap::new(),
            dynamic: None,
            engine: None,
        }
    }
}

impl<D> Registry<D> {
    fn handlers(&self, nsp: &str) -> Handlers<D> {
        if let Some(h) = self.nsps.get(nsp) {
            return h.clone();
        }
        match &self.dynamic {
            Some((template, _)) => self.nsps.get(template).cloned().unwrap_or_default(),
            None => Handlers::default(),
        }
    }
}

/// The driver's state, lent to application calls ([`SocketIo::call`]): the core itself, and
/// the adapter's tables.
pub struct Ctx<D> {
    /// The core.
    pub server: Server<D>,
    pub(crate) io: SocketIo<D>,
    options: Arc<Options>,
    writers: Vec<Option<Writer>>,
    polls: HashMap<RequestId, oneshot::Sender<Bytes>>,
    pub(crate) acks: HashMap<AckHandle, oneshot::Sender<Result<Payload, AckError>>>,
    pub(crate) broadcast_acks: HashMap<BroadcastAckHandle, oneshot::Sender<BroadcastReplies>>,
    sockets: HashMap<SocketHandle, mpsc::UnboundedSender<Box<SocketEvent>>>,
}

impl<D> Ctx<D> {
    /// The time to pass to the core's calls that take one.
    pub fn now(&self) -> Instant {
        Instant::now()
    }
}

pub(crate) async fn run<D: Send + Sync + Clone + Default + 'static>(
    config: Config,
    options: Arc<Options>,
    mut rx: mpsc::UnboundedReceiver<Cmd<D>>,
    io: SocketIo<D>,
) {
    let mut ctx = Ctx {
        server: match Server::new(config) {
            Ok(server) => server,
            Err(e) => {
                tracing::error!(%e, "invalid configuration: the server does not start");
                return;
            }
        },
        io,
        options,
        writers: Vec::new(),
        polls: HashMap::new(),
        acks: HashMap::new(),
        broadcast_acks: HashMap::new(),
        sockets: HashMap::new(),
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
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { break };
                let mut shutdown = ctx.handle(cmd);
                // Take what else is already queued before writing: one flush for the batch.
                for _ in 0..256 {
                    match rx.try_recv() {
                        Ok(cmd) => shutdown = shutdown.or(ctx.handle(cmd)),
                        Err(_) => break,
                    }
                }
                ctx.flush();
                if let Some(done) = shutdown {
                    let _ = done.send(());
                }
            }
            () = sleep => {
                ctx.server.handle_timeout(Instant::now());
                ctx.flush();
            }
        }
    }
}

impl<D: Send + Sync + Clone + Default + 'static> Ctx<D> {
    fn handle(&mut self, cmd: Cmd<D>) -> Option<oneshot::Sender<()>> {
        let now = Instant::now();
        match cmd {
            Cmd::Http {
                method,
                query,
                websocket,
                content_length,
                reply,
            } => {
                let action = self.server.handle_http(
                    now,
                    HttpRequest {
                        method,
                        query: &query,
                        websocket,
                        content_length,
                    },
                );
                let poll = match action {
                    HttpAction::Hold(id) => {
                        let (tx, rx) = oneshot::channel();
                        self.polls.insert(id, tx);
                        Some(rx)
                    }
                    _ => None,
                };
                let _ = reply.send((action, poll));
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
                let _ = reply.send(response);
            }
            Cmd::Aborted(request) => {
                self.polls.remove(&request);
                self.server.handle_request_aborted(now, request);
            }
            Cmd::WsOpen { conn, writer } => {
                let i = conn.index();
                if self.writers.len() <= i {
                    self.writers.resize_with(i + 1, || None);
                }
                self.writers[i] = Some(Writer {
                    conn,
                    tx: writer,
                    blocked: false,
                });
                self.server.handle_ws_open(now, conn);
            }
            Cmd::WsMessage { conn, frame } => self.server.handle_ws_message(now, conn, frame),
            Cmd::WsClosed { conn } => {
                if let Some(slot) = self.writers.get_mut(conn.index()) {
                    if slot.as_ref().is_some_and(|w| w.conn == conn) {
                        *slot = None;
                    }
                }
                self.server.handle_ws_closed(now, conn);
            }
            Cmd::Unblock(conn) => {
                if let Some(w) = self.writer(conn) {
                    w.blocked = false;
                    self.server.set_blocked(conn, false);
                }
            }
            Cmd::Call(f) => f(self),
            Cmd::Shutdown(done) => {
                self.server.shutdown();
                return Some(done);
            }
        }
        None
    }

    fn writer(&mut self, conn: ConnectionHandle) -> Option<&mut Writer> {
        self.writers
            .get_mut(conn.index())
            .and_then(Option::as_mut)
            .filter(|w| w.conn == conn)
    }

    /// Hands every output of the core to its destination, until there is none.
    pub(crate) fn flush(&mut self) {
        let high_water = self.options.ws_queue / 4;
        loop {
            let mut slow = Vec::new();
            let mut blocked = Vec::new();
            let mut any = false;
            while let Some(t) = self.server.poll_transmit() {
                any = true;
                match t {
                    Transmit::WebSocket { to, frames, .. } => {
                        for conn in to {
                            let Some(w) = self
                                .writers
                                .get_mut(conn.index())
                                .and_then(Option::as_mut)
                                .filter(|w| w.conn == conn)
                            else {
                                continue;
                            };
                            for f in frames {
                                if let Err(mpsc::error::TrySendError::Full(_)) =
                                    w.tx.try_send(f.clone())
                                {
                                    slow.push(conn);
                                    break;
                                }
                            }
                            if !w.blocked && w.tx.capacity() < high_water {
                                w.blocked = true;
                                blocked.push(conn);
                            }
                        }
                    }
                    Transmit::PollResponse { request, body, .. } => {
                        if let Some(tx) = self.polls.remove(&request) {
                            let _ = tx.send(body.clone());
                        }
                    }
                    Transmit::Close { conn, reason } => {
                        tracing::debug!(?conn, %reason, "connection closed");
                        if let Some(slot) = self.writers.get_mut(conn.index()) {
                            if slot.as_ref().is_some_and(|w| w.conn == conn) {
                                // Dropping the queue's sender ends the writer, which closes
                                // the WebSocket once it has written what was queued.
                                *slot = None;
                            }
                        }
                    }
                    Transmit::CloseWebSocket { conn } => {
                        if let Some(slot) = self.writers.get_mut(conn.index()) {
                            if slot.as_ref().is_some_and(|w| w.conn == conn) {
                                *slot = None;
                            }
                        }
                    }
                }
            }
            let now = Instant::now();
            for conn in slow {
                tracing::debug!(?conn, "slow consumer");
                self.server.handle_slow_consumer(now, conn);
            }
            for conn in blocked {
                self.server.set_blocked(conn, true);
            }
            while let Some(e) = self.server.poll_event() {
                any = true;
                self.dispatch(e);
            }
            if !any {
                break;
            }
        }
    }

    fn dispatch(&mut self, e: Event) {
        match e {
            Event::ConnectRequest {
                request,
                nsp_name,
                auth,
                ..
            } => {
                let handlers = lock(&self.io.registry).handlers(&nsp_name);
                match handlers.auth {
                    Some(auth_fn) => {
                        let io = self.io.clone();
                        let auth = auth.map(|a| a.to_string());
                        tokio::spawn(async move {
                            let decision = auth_fn(auth).await;
                            io.call(move |ctx| {
                                let r = match decision {
                                    Ok(data) => ctx.server.accept(request, data).map(drop),
                                    Err(rejection) => ctx.server.reject(
                                        request,
                                        &rejection.message,
                                        rejection.data.as_ref(),
                                    ),
                                };
                                if let Err(e) = r {
                                    tracing::debug!(%e, "connect decision too late");
                                }
                            });
                        });
                    }
                    None => {
                        let _ = self.server.accept(request, D::default());
                    }
                }
            }
            Event::Connected { socket, sid, nsp } => {
                let name = self.server.namespace_name(nsp).to_string();
                let handlers = lock(&self.io.registry).handlers(&name);
                let data = self.server.data(socket).cloned();
                let tx = spawn_socket_task(self.io.clone(), socket, sid, name, data, handlers);
                self.sockets.insert(socket, tx);
            }
            Event::Message { socket, event, ack } => {
                if let Some(tx) = self.sockets.get(&socket) {
                    let _ = tx.send(Box::new(SocketEvent::Message(event, ack)));
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
                expected,
                timed_out,
            } => {
                if let Some(tx) = self.broadcast_acks.remove(&ack) {
                    let _ = tx.send((replies, expected, timed_out));
                }
            }
            Event::Disconnected { socket, reason, .. } => {
                if let Some(tx) = self.sockets.remove(&socket) {
                    let _ = tx.send(Box::new(SocketEvent::Disconnected(reason)));
                }
            }
            _ => {}
        }
    }
}
