//! The adapter's settings and their validation (the core's own are in [`Config`](crate::Config)),
//! and the HTTP-level hooks: `allowRequest`, `initial_headers` / `headers`, `connection_error`.

use super::Cors;
use crate::{RequestError, RequestInfo};
use hyper::header::HeaderMap;
use hyper::Request;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Why an [`Options::allow_request`] hook refused a handshake: the reference's
/// `fn(message, false)`. The client gets `403 {"code":4,"message":…}`, with this message if
/// there is one, else `"Forbidden"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
#[error("{}", .message.as_deref().unwrap_or("Forbidden"))]
pub struct Forbidden {
    /// The message the client reads in the body, if not `"Forbidden"`.
    pub message: Option<String>,
}

impl Forbidden {
    /// Refused, with the reference's message (`"Forbidden"`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Refused, with `message` in the response body.
    pub fn with_message(message: impl Into<String>) -> Self {
        Forbidden {
            message: Some(message.into()),
        }
    }
}

/// A request the server refused, as the reference's `connection_error` event gives it: the
/// request, the error code and message, and a context object.
#[derive(Debug)]
#[non_exhaustive]
pub struct ConnectionError {
    /// The request's method, URI, version and headers; its peer address, when known, is a
    /// `std::net::SocketAddr` in its extensions.
    pub request: Request<()>,
    /// The reference's error code ([`RequestError::code`]: 0 unknown transport, 1 unknown sid,
    /// 2 bad handshake method, 3 bad request, 4 forbidden, 5 unsupported protocol version).
    pub code: RequestError,
    /// The reference's message for the code (`"Forbidden"`, `"Session ID unknown"`, ...).
    pub message: String,
    /// What more is known, as the reference's `context` (`{"transport":…}`, `{"sid":…}`,
    /// `{"method":…}`, `{"message":…}` from an `allow_request` hook, `{"name":…}`); an empty
    /// object when nothing is.
    pub context: serde_json::Value,
}

/// An [`Options::allow_request`] hook, boxed.
pub(crate) type AllowRequestFn = Arc<
    dyn Fn(Arc<RequestInfo>) -> Pin<Box<dyn Future<Output = Result<(), Forbidden>> + Send>>
        + Send
        + Sync,
>;
/// An [`Options::initial_headers`] or [`Options::headers`] hook.
pub(crate) type HeadersFn = Arc<dyn Fn(&mut HeaderMap, &Request<()>) + Send + Sync>;
/// An [`Options::on_connection_error`] hook.
pub(crate) type ConnectionErrorFn = Arc<dyn Fn(&ConnectionError) + Send + Sync>;

/// The application's HTTP hooks (see the builder methods of [`Options`]).
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    pub(crate) allow_request: Option<AllowRequestFn>,
    pub(crate) initial_headers: Option<HeadersFn>,
    pub(crate) headers: Option<HeadersFn>,
    pub(crate) connection_error: Option<ConnectionErrorFn>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("allow_request", &self.allow_request.is_some())
            .field("initial_headers", &self.initial_headers.is_some())
            .field("headers", &self.headers.is_some())
            .field("connection_error", &self.connection_error.is_some())
            .finish()
    }
}

/// Adapter settings (the core's own, `pingInterval` and the like, are in
/// [`Config`](crate::Config)). Every queue the adapter keeps is bounded by one of these;
/// [`validate`](Self::validate) checks them. The reference's HTTP-level options are here:
/// `path`, [`cors`](Self::cors), and the hooks [`allow_request`](Self::allow_request),
/// [`initial_headers`](Self::initial_headers), [`headers`](Self::headers) and
/// [`on_connection_error`](Self::on_connection_error).
///
/// ```
/// use roomcast::io::tokio::{Cors, Forbidden, Options};
/// let options = Options::default()
///     .cors(Cors::origin("https://app.example").credentials(true))
///     .allow_request(|req| async move {
///         let token = req.header("x-token").as_deref() == Some("s3cret");
///         if token { Ok(()) } else { Err(Forbidden::with_message("no token")) }
///     })
///     .initial_headers(|headers, _req| {
///         headers.insert("set-cookie", "io=1; Path=/; HttpOnly".parse().unwrap());
///     })
///     .on_connection_error(|e| eprintln!("refused: {} {}", e.code.code(), e.message));
/// assert!(options.validate().is_ok());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The Engine.IO path (`path`): requests whose path starts with it are served. Reference
    /// default `/socket.io/` (`"/socket.io"` with its trailing slash added).
    pub path: String,
    /// CORS (`cors`): `None`, the reference default, sends no CORS header and leaves a
    /// preflight to be refused like any `OPTIONS`.
    pub cors: Option<Cors>,
    /// The hooks, set with the builder methods.
    pub(crate) hooks: Hooks,
    /// Frames queued for one WebSocket before the connection counts as a slow consumer and is
    /// closed. At three quarters of it the connection is marked blocked, so volatile packets
    /// skip it. Default 4,096; at least 4.
    pub ws_queue: usize,
    /// Network inputs (HTTP requests, WebSocket messages, connection events) waiting for the
    /// driver task. When it is full, connection readers wait: back-pressure, nothing dropped.
    /// Default 1,024; at least 1.
    pub input_queue: usize,
    /// Application calls (emits, joins, acks, [`SocketIo::call`](super::SocketIo::call))
    /// waiting for the driver task. These calls are synchronous: when the queue is full, those
    /// that return a `Result` fail with [`CallError::Full`](super::CallError::Full); the others
    /// log the refusal at error level and count it in
    /// [`SocketIo::refused_calls`](super::SocketIo::refused_calls). An ack never fails this
    /// way: its slot is reserved before its handler runs. Default 65,536; at least 1.
    pub call_queue: usize,
    /// Events received from one connection and not yet handled (queued for, or running in, its
    /// sockets' handlers). When a connection has this many, the adapter stops reading its
    /// WebSocket (TCP pushes back on the client) and holds its long-polling POST until
    /// there is room again. Frames that carry no event (heartbeats, acks, connects) are read
    /// regardless, but TCP keeps order: a frame behind a stalled event waits with it. Default
    /// 1,024 (a publisher keeping hundreds of events in flight is then never held back, so its
    /// broadcasts batch); at least 1.
    pub socket_queue: usize,
    /// Bytes of those events (as received, attachments included) a connection may have
    /// unhandled, the other half of its credit. One message larger than this waits until the
    /// whole of it is free. Default 1 MiB; at least 1, at most `u32::MAX`.
    pub socket_queue_bytes: usize,
    /// Listeners of one socket running at once (each event's, started in arrival order, run
    /// concurrently, as a Node server's do). At the bound, the socket's next events wait, so
    /// their connection's credit ([`socket_queue`](Self::socket_queue)) runs out and it is no
    /// longer read. Default 64; at least 1.
    pub handlers_in_flight: usize,
    /// How much of an oversized long-polling POST body (larger than
    /// [`Limits::max_payload`](crate::Limits)) is read and thrown away so the client gets its
    /// `413` instead of a connection reset. Past this, or after 10 s, the connection is
    /// closed. The whole body is never held: the read is a discard. Default 8 MiB.
    pub discard_limit: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            path: "/socket.io/".into(),
            ws_queue: 4096,
            cors: None,
            hooks: Hooks::default(),
            input_queue: 1024,
            call_queue: 65_536,
            socket_queue: 1024,
            socket_queue_bytes: 1 << 20,
            handlers_in_flight: 64,
            discard_limit: 8 << 20,
        }
    }
}

/// Why [`Options`] were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OptionsError {
    /// The core's configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
    /// The path must start with `/`.
    #[error("path {0:?} must start with '/'")]
    Path(String),
    /// A queue bound is outside its range.
    #[error("{name} is {value}, must be within {min}..={max}")]
    Bound {
        /// The field.
        name: &'static str,
        /// Its value.
        value: usize,
        /// The smallest value allowed.
        min: usize,
        /// The largest value allowed.
        max: usize,
    },
}

impl Options {
    /// Sets [`cors`](Self::cors) (the reference's `cors` option).
    pub fn cors(mut self, cors: Cors) -> Self {
        self.cors = Some(cors);
        self
    }

    /// Sets the Engine.IO [`path`](Self::path).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// `allowRequest`: decides, asynchronously, whether a handshake (a request with no `sid`,
    /// long-polling or WebSocket) may open a session, from its HTTP request (headers, URL with
    /// its query, peer address). It runs after the reference's own checks (transport, method)
    /// and before the session exists; `Err` answers `403 {"code":4,"message":…}` and reports a
    /// [`ConnectionError`]. It runs on the request's own task (one per HTTP connection at a
    /// time, so nothing queues up), and a hook that panics refuses that request only (logged).
    /// Later requests of an open session are not asked again, as in the reference.
    pub fn allow_request<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Arc<RequestInfo>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Forbidden>> + Send + 'static,
    {
        self.hooks.allow_request = Some(Arc::new(move |req| Box::pin(f(req))));
        self
    }

    /// `io.engine.on("initial_headers", (headers, req) => ...)`: adds headers to the answer of
    /// a handshake (the open packet of long-polling, or the `101` of a WebSocket opened without
    /// a session), e.g. a `set-cookie`. Runs before [`headers`](Self::headers). A hook that
    /// panics adds nothing (logged); the response still goes out.
    pub fn initial_headers(
        mut self,
        f: impl Fn(&mut HeaderMap, &Request<()>) + Send + Sync + 'static,
    ) -> Self {
        self.hooks.initial_headers = Some(Arc::new(f));
        self
    }

    /// `io.engine.on("headers", (headers, req) => ...)`: adds headers to every successful
    /// answer of the Engine.IO path (handshakes, polls, posts, WebSocket upgrades). Refusals
    /// (4xx) do not get them, as in the reference. A hook that panics adds nothing (logged).
    pub fn headers(
        mut self,
        f: impl Fn(&mut HeaderMap, &Request<()>) + Send + Sync + 'static,
    ) -> Self {
        self.hooks.headers = Some(Arc::new(f));
        self
    }

    /// `io.engine.on("connection_error", err => ...)`: told of every request refused with one
    /// of the reference's error codes (unknown transport or sid, bad handshake method, bad
    /// request, forbidden by [`allow_request`](Self::allow_request), unsupported protocol
    /// version). Synchronous, on the request's task; a hook that panics is logged.
    pub fn on_connection_error(
        mut self,
        f: impl Fn(&ConnectionError) + Send + Sync + 'static,
    ) -> Self {
        self.hooks.connection_error = Some(Arc::new(f));
        self
    }

    /// Checks every field against its documented range.
    pub fn validate(&self) -> Result<(), OptionsError> {
        if !self.path.starts_with('/') {
            return Err(OptionsError::Path(self.path.clone()));
        }
        // tokio's channels and semaphores have these ceilings; a bound past them would panic.
        let channel_max = usize::MAX >> 3;
        let permits_max = tokio::sync::Semaphore::MAX_PERMITS.min(u32::MAX as usize);
        let bounds = [
            ("ws_queue", self.ws_queue, 4, channel_max),
            ("input_queue", self.input_queue, 1, channel_max),
            ("call_queue", self.call_queue, 1, channel_max),
            ("socket_queue", self.socket_queue, 1, permits_max),
            (
                "handlers_in_flight",
                self.handlers_in_flight,
                1,
                channel_max,
            ),
            (
                "socket_queue_bytes",
                self.socket_queue_bytes,
                1,
                permits_max,
            ),
        ];
        for (name, value, min, max) in bounds {
            if !(min..=max).contains(&value) {
                return Err(OptionsError::Bound {
                    name,
                    value,
                    min,
                    max,
                });
            }
        }
        Ok(())
    }
}
