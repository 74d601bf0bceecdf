//! [`EngineIo`]: a bare Engine.IO server on tokio. The session layer
//! ([`Engine`](crate::engine::session::Engine)) is driven by the same driver, HTTP and WebSocket
//! code as [`SocketIo`](super::SocketIo); only its messages go to one handler instead of
//! Socket.IO's namespaces.

use super::driver::{self, Ctx, EngineFn, EngineHooks, Link};
use super::http::{self, IoService};
use super::shared::lock;
use super::{Options, OptionsError};
use crate::engine::session::Engine;
use crate::engine::Message;
use crate::{Config, ConnectionHandle};
use std::future::Future;
use std::sync::{Arc, Mutex};

/// A bare Engine.IO v4 server: sessions over long-polling and WebSocket, and a handler for
/// their messages that answers through the session layer itself.
///
/// ```no_run
/// use roomcast::io::tokio::{EngineIo, Options};
/// use roomcast::Config;
///
/// # async fn run() -> std::io::Result<()> {
/// let mut options = Options::default();
/// options.path = "/engine.io/".into();
/// let io = EngineIo::new(Config::default(), options);
/// // An echo server.
/// io.on_message(|ctx, conn, message| {
///     let _ = ctx.server.send_message(conn, message);
/// });
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// io.serve(listener, std::future::pending()).await
/// # }
/// ```
#[derive(Clone)]
pub struct EngineIo {
    link: Link<Engine>,
    shared: Arc<Shared>,
}

struct Shared {
    handler: Mutex<Option<EngineFn>>,
    options: Arc<Options>,
    max_payload: usize,
}

impl EngineHooks for Shared {
    fn message(&self) -> Option<EngineFn> {
        lock(&self.handler).clone()
    }
}

impl EngineIo {
    /// Starts the driver task on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// If `config` or `options` are invalid; [`try_new`](Self::try_new) returns the error.
    pub fn new(config: Config, options: Options) -> Self {
        match Self::try_new(config, options) {
            Ok(io) => io,
            Err(e) => panic!("invalid roomcast::io::tokio::EngineIo settings: {e}"),
        }
    }

    /// Starts the driver task on the current tokio runtime, once `config` and `options` are
    /// validated.
    pub fn try_new(config: Config, options: Options) -> Result<Self, OptionsError> {
        config.validate()?;
        options.validate()?;
        let (link, lanes) = driver::link(&options);
        let options = Arc::new(options);
        let shared = Arc::new(Shared {
            handler: Mutex::new(None),
            options: options.clone(),
            max_payload: config.limits.max_payload,
        });
        let hooks: Arc<dyn EngineHooks> = shared.clone();
        tokio::spawn(driver::run(config, options, lanes, link.clone(), hooks));
        Ok(EngineIo { link, shared })
    }

    /// Handles every message of every session. `f` runs inside the driver, with the session
    /// layer at hand to answer ([`Engine::send_message`]); a panic in it closes that
    /// message's connection.
    pub fn on_message(
        &self,
        f: impl Fn(&mut Ctx<Engine>, ConnectionHandle, Message) + Send + Sync + 'static,
    ) {
        *lock(&self.shared.handler) = Some(Arc::new(f));
    }

    /// A hyper service answering the Engine.IO path, to mount in an existing application.
    pub fn service(&self) -> IoService<Engine> {
        IoService::new(
            self.link.clone(),
            self.shared.options.clone(),
            self.shared.max_payload,
        )
    }

    /// Serves connections from `listener` until `shutdown` completes, then closes every
    /// session gracefully (each is told with an Engine.IO `close` packet).
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        http::serve_and_close(self.service(), listener, shutdown).await
    }

    /// Closes every session, telling each client the server is going away.
    pub async fn shutdown(&self) {
        self.link.shutdown().await;
    }
}
