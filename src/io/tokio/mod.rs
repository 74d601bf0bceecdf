//! The tokio adapter: serves the official Socket.IO clients over WebSocket and HTTP
//! long-polling, and gives the application an async API over the core.
//!
//! One driver task owns the [`Server`](crate::Server): every input (HTTP request, WebSocket
//! message, timer, application call) reaches it through one channel, so nothing is locked and
//! a broadcast is one walk of the core plus one shared frame handed to each connection's writer.
//! Each WebSocket has a reader and a writer task; the writer drains its bounded queue in
//! batches, one flush per batch. Each socket has a task that runs its handlers one event at a
//! time, in arrival order, as a Node server would.
//!
//! ```no_run
//! use roomcast::io::tokio::{SocketIo, Options};
//! use roomcast::Config;
//!
//! # async fn run() -> std::io::Result<()> {
//! let io: SocketIo = SocketIo::new(Config::default(), Options::default());
//! io.ns("/").on("ping", |socket, msg| async move {
//!     msg.ack(&("pong",));
//!     socket.broadcast().emit("pinged", &(socket.id(),));
//! });
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! io.serve(listener, std::future::pending()).await
//! # }
//! ```

mod api;
mod driver;
mod http;
mod ws;

pub use api::{Ack, AckTimeout, BroadcastOp, Message, Namespace, Rejection, Replies, Socket};
pub use http::{Body, IoService, WithFallback};

use crate::Config;
use driver::{Cmd, Registry};
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Adapter settings (the core's own are in [`Config`]).
#[derive(Debug, Clone)]
pub struct Options {
    /// The Engine.IO path. Default `/socket.io/`.
    pub path: String,
    /// Frames queued for one WebSocket before the connection counts as a slow consumer and is
    /// closed. At three quarters of it the connection is marked blocked, so volatile packets
    /// skip it. Default 4,096.
    pub ws_queue: usize,
    /// `Access-Control-Allow-Origin` for cross-origin browser clients; `None` (the reference
    /// default) sends no CORS headers. `Some("*")` allows any origin; any other value is
    /// echoed as is, with credentials allowed.
    pub cors_origin: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            path: "/socket.io/".into(),
            ws_queue: 4096,
            cors_origin: None,
        }
    }
}

/// A Socket.IO server on tokio: register handlers with [`ns`](Self::ns), then [`serve`](Self::serve)
/// a listener, or mount [`service`](Self::service) in an existing hyper or axum application.
///
/// `D` is the per-socket data the connection middleware returns ([`Namespace::auth`]).
/// Cloning is cheap: every clone drives the same server.
pub struct SocketIo<D = ()> {
    cmd: mpsc::UnboundedSender<Cmd<D>>,
    registry: Arc<Mutex<Registry<D>>>,
    options: Arc<Options>,
    max_payload: usize,
}

impl<D> Clone for SocketIo<D> {
    fn clone(&self) -> Self {
        SocketIo {
            cmd: self.cmd.clone(),
            registry: self.registry.clone(),
            options: self.options.clone(),
            max_payload: self.max_payload,
        }
    }
}

impl<D: Send + Sync + Clone + Default + 'static> SocketIo<D> {
    /// Starts the driver task on the current tokio runtime.
    pub fn new(config: Config, options: Options) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let registry = Arc::new(Mutex::new(Registry::default()));
        let options = Arc::new(options);
        let io = SocketIo {
            cmd: tx,
            registry: registry.clone(),
            options: options.clone(),
            max_payload: config.limits.max_payload,
        };
        tokio::spawn(driver::run(config, options, rx, io.clone()));
        io
    }

    /// The handlers of a namespace (created on first use; `/` always exists).
    pub fn ns(&self, name: &str) -> Namespace<D> {
        Namespace::new(self.clone(), name)
    }

    /// Lets clients create namespaces on demand: a name `exists` accepts becomes a namespace
    /// using the handlers registered under `template` (see [`ns`](Self::ns)).
    pub fn dynamic_namespaces(
        &self,
        template: &str,
        exists: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) {
        let mut r = lock(&self.registry);
        r.dynamic = Some((template.to_owned(), Arc::new(exists)));
        drop(r);
        self.call(|ctx| {
            let registry = ctx.io.registry.clone();
            ctx.server.set_dynamic_namespaces(move |name| {
                lock(&registry)
                    .dynamic
                    .as_ref()
                    .is_some_and(|(_, f)| f(name))
            });
        });
    }

    /// Handles bare Engine.IO messages, for a server built with `Config::engine_only`. `f` runs
    /// inside the driver, with the core at hand to answer ([`Server::send_message`](crate::Server::send_message)).
    pub fn on_engine_message(
        &self,
        f: impl Fn(&mut Ctx<D>, crate::ConnectionHandle, crate::engine::Message) + Send + Sync + 'static,
    ) {
        lock(&self.registry).engine = Some(Arc::new(f));
    }

    /// A hyper service answering the Engine.IO path, to mount in an existing application.
    pub fn service(&self) -> IoService<D> {
        IoService::new(self.clone())
    }

    /// Serves connections from `listener` until `shutdown` completes, then closes every client
    /// connection gracefully (each is told with an Engine.IO `close` packet).
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        http::serve(self.service(), listener, shutdown).await?;
        self.shutdown().await;
        Ok(())
    }

    /// Closes every connection, telling each client the server is going away.
    pub async fn shutdown(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.cmd.send(Cmd::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// A broadcast to a namespace: `io.to_ns("/").to("room").emit(...)`.
    pub fn to_ns(&self, nsp: &str) -> BroadcastOp<D> {
        BroadcastOp::new(self.clone(), nsp.to_owned(), None)
    }

    /// Runs `f` on the core inside the driver: direct access for anything the async API does
    /// not cover.
    pub fn call(&self, f: impl FnOnce(&mut driver::Ctx<D>) + Send + 'static) {
        let _ = self.cmd.send(Cmd::Call(Box::new(f)));
    }

    /// Like [`call`](Self::call), and returns `f`'s result.
    pub async fn query<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut driver::Ctx<D>) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.call(move |ctx| {
            let _ = tx.send(f(ctx));
        });
        rx.await.ok()
    }

    pub(crate) fn send(&self, cmd: Cmd<D>) {
        let _ = self.cmd.send(cmd);
    }
}

pub use driver::Ctx;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
