//! The adapter's settings and their validation (the core's own are in [`Config`](crate::Config)).

/// Adapter settings (the core's own are in [`Config`](crate::Config)). Every queue the adapter
/// keeps is bounded by one of these; [`validate`](Self::validate) checks them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The Engine.IO path. Default `/socket.io/`.
    pub path: String,
    /// Frames queued for one WebSocket before the connection counts as a slow consumer and is
    /// closed. At three quarters of it the connection is marked blocked, so volatile packets
    /// skip it. Default 4,096; at least 4.
    pub ws_queue: usize,
    /// `Access-Control-Allow-Origin` for cross-origin browser clients; `None` (the reference
    /// default) sends no CORS headers. `Some("*")` allows any origin; any other value is
    /// echoed as is, with credentials allowed.
    pub cors_origin: Option<String>,
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
            cors_origin: None,
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
