//! [`Config`]: timings, limits and switches of a [`Server`](crate::Server).

use crate::Limits;
use std::time::Duration;

/// Everything a server can be tuned with. `Config::default()` has the reference defaults.
///
/// ```
/// use roomcast::Config;
/// use std::time::Duration;
/// let config = Config { ping_interval: Duration::from_millis(300), ..Config::default() };
/// assert_eq!(config.ping_timeout, Duration::from_secs(20));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Time between the server's pings. Reference default: 25 s.
    pub ping_interval: Duration,
    /// Time a client has to answer a ping before its connection closes. Default: 20 s.
    pub ping_timeout: Duration,
    /// Time a WebSocket upgrade may take, from the WebSocket opening to the `upgrade`
    /// packet, before that WebSocket is closed. Default: 10 s.
    pub upgrade_timeout: Duration,
    /// Time a new connection has to join a namespace before it is closed. Default: 45 s.
    pub connect_timeout: Duration,
    /// Bounds on what peers send.
    pub limits: Limits,
    /// Most frames held for one long-polling connection between two GETs. Past it the client
    /// is a slow consumer and its connection closes (volatile packets are dropped instead).
    /// Default: 10,000.
    pub max_buffered_frames: usize,
    /// Whether to allow long-polling sessions to upgrade to WebSocket. Default: true.
    pub allow_upgrades: bool,
    /// Whether room life-cycle events (created, deleted, joined, left) are reported through
    /// [`Server::poll_event`](crate::Server::poll_event). Off by default: most applications
    /// do not listen, and churn-heavy ones should not pay for them.
    pub room_events: bool,
    /// A bare Engine.IO server: messages are not decoded as Socket.IO but reported as
    /// [`Event::EngineMessage`](crate::Event::EngineMessage), and answered with
    /// [`Server::send_message`](crate::Server::send_message); no connect timeout. Default false.
    pub engine_only: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            upgrade_timeout: Duration::from_millis(10_000),
            connect_timeout: Duration::from_millis(45_000),
            limits: Limits::default(),
            max_buffered_frames: 10_000,
            allow_upgrades: true,
            room_events: false,
            engine_only: false,
        }
    }
}
