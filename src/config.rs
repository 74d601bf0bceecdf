//! [`Config`]: timings, limits and switches of a [`Server`](crate::Server).

use crate::packet::Parser;
use crate::Limits;
use std::time::Duration;

/// Everything a server can be tuned with. `Config::default()` has the reference defaults
/// (Node `socket.io` 4.8 / `engine.io` 6), under these names:
///
/// | reference option | here | default |
/// |---|---|---|
/// | `pingInterval` | [`ping_interval`](Self::ping_interval) | 25,000 ms |
/// | `pingTimeout` | [`ping_timeout`](Self::ping_timeout) | 20,000 ms |
/// | `upgradeTimeout` | [`upgrade_timeout`](Self::upgrade_timeout) | 10,000 ms |
/// | `connectTimeout` | [`connect_timeout`](Self::connect_timeout) | 45,000 ms |
/// | `maxHttpBufferSize` | [`limits.max_payload`](crate::Limits::max_payload) | 1,000,000 bytes |
/// | `transports` | [`transports`](Self::transports) | `["polling", "websocket"]` |
/// | `allowUpgrades` | [`allow_upgrades`](Self::allow_upgrades) | true |
///
/// The HTTP-level ones (`path`, `cors`, `allowRequest`, headers hooks) are the tokio adapter's
/// `Options`.
///
/// ```
/// use roomcast::Config;
/// use std::time::Duration;
/// let mut config = Config::default();
/// config.ping_interval = Duration::from_millis(300);
/// assert_eq!(config.ping_timeout, Duration::from_secs(20));
/// assert!(config.validate().is_ok());
/// ```
///
/// Durations too large to add to a clock reading (`Duration::MAX` included) mean "never": no
/// timer is set. The server checks the whole configuration when it is built
/// ([`validate`](Self::validate)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
    /// Whether to allow long-polling sessions to upgrade to WebSocket (`allowUpgrades`).
    /// When off, the handshake offers no upgrade and an upgrade request is refused with
    /// [`RequestError::BadRequest`](crate::RequestError::BadRequest). Default: true.
    pub allow_upgrades: bool,
    /// The transports accepted (`transports`): a request for another is refused with
    /// [`RequestError::UnknownTransport`](crate::RequestError::UnknownTransport), and an
    /// upgrade is offered only if WebSocket is accepted. Default: both.
    pub transports: crate::Transports,
    /// Whether room life-cycle events (created, deleted, joined, left) are reported through
    /// [`Server::poll_event`](crate::Server::poll_event). Off by default: most applications
    /// do not listen, and churn-heavy ones should not pay for them.
    pub room_events: bool,
    /// Connection state recovery (`connectionStateRecovery`): off (`None`) by default, as in
    /// the reference.
    pub recovery: Option<RecoveryConfig>,
    /// The format of every Socket.IO packet, both ways: [`Parser::Json`] (the default,
    /// `socket.io-parser`) or [`Parser::Msgpack`] (`socket.io-msgpack-parser`). Server-wide, as
    /// in the reference: clients must use the same one, and a broadcast is encoded once.
    pub parser: Parser,
    /// Whether a child namespace (one a client's CONNECT created through the dynamic-namespace
    /// rule, [`Server::set_dynamic_namespaces`](crate::Server::set_dynamic_namespaces)) is
    /// removed when its last socket leaves (`cleanupEmptyChildNamespaces`). Off by default, as
    /// in the reference. A child that never got a socket (every CONNECT to it refused) is
    /// removed whatever this says, so refused clients cannot make namespaces pile up.
    pub cleanup_empty_child_namespaces: bool,
}

/// Connection state recovery: a client whose connection dropped comes back within
/// [`max_disconnection_duration`](Self::max_disconnection_duration) with its socket id, rooms
/// and data, and receives every event it missed. Unlike the reference, the packet log and the
/// session store are bounded; past a bound the oldest go first, and a client whose missed
/// events were dropped gets a fresh socket, never a partial replay.
///
/// ```
/// use roomcast::{Config, RecoveryConfig};
/// use std::time::Duration;
/// let mut recovery = RecoveryConfig::default();
/// recovery.max_disconnection_duration = Duration::from_secs(30);
/// let mut config = Config::default();
/// config.recovery = Some(recovery);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryConfig {
    /// The longest disconnection still recovered; also how long logged packets are kept.
    /// Reference default: 2 min.
    pub max_disconnection_duration: Duration,
    /// Whether a recovered socket skips the connect decision (the application's middleware):
    /// it is restored at once. Reference default: true.
    pub skip_middlewares: bool,
    /// Most packets in the log (default 262,144).
    pub max_log_packets: usize,
    /// Most bytes of packets in the log, frames and bookkeeping counted (default 64 MiB).
    pub max_log_bytes: usize,
    /// Most stored sessions (default 100,000).
    pub max_sessions: usize,
    /// Most bytes of stored sessions: ids, rooms and the size of the data type (its heap is
    /// not seen; default 64 MiB).
    pub max_session_bytes: usize,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(120),
            skip_middlewares: true,
            max_log_packets: 262_144,
            max_log_bytes: 64 << 20,
            max_sessions: 100_000,
            max_session_bytes: 64 << 20,
        }
    }
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
            transports: crate::Transports::ALL,
            room_events: false,
            recovery: None,
            parser: Parser::Json,
            cleanup_empty_child_namespaces: false,
        }
    }
}

/// Why a [`Config`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A setting is out of its range.
    #[error("{name} {problem}")]
    OutOfRange {
        /// The setting.
        name: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
}

impl Config {
    /// Checks every setting. A server refuses to be built with a configuration that fails.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |name, problem| Err(ConfigError::OutOfRange { name, problem });
        if self.ping_interval.is_zero() {
            return fail(
                "ping_interval",
                "must be positive (a zero interval pings nonstop)",
            );
        }
        if self.limits.max_payload == 0 {
            return fail("limits.max_payload", "must be at least 1 byte");
        }
        if self.limits.max_payload > u32::MAX as usize {
            return fail("limits.max_payload", "must fit 32 bits (4 GiB)");
        }
        if !self.transports.polling && !self.transports.websocket {
            return fail("transports", "must accept at least one transport");
        }
        if self.max_buffered_frames == 0 {
            return fail("max_buffered_frames", "must be at least 1");
        }
        if let Some(r) = &self.recovery {
            if r.max_disconnection_duration.is_zero() {
                return fail(
                    "recovery.max_disconnection_duration",
                    "must be positive (nothing could be recovered)",
                );
            }
            if r.max_log_packets == 0 || r.max_log_bytes == 0 {
                return fail("recovery.max_log_*", "must be at least 1");
            }
            if r.max_sessions == 0 || r.max_session_bytes == 0 {
                return fail("recovery.max_session*", "must be at least 1");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_edges_are_checked() {
        assert_eq!(Config::default().validate(), Ok(()));
        let with = |f: fn(&mut Config)| {
            let mut c = Config::default();
            f(&mut c);
            c.validate()
        };
        assert!(with(|c| c.ping_interval = Duration::ZERO).is_err());
        assert!(with(|c| c.max_buffered_frames = 0).is_err());
        assert!(with(|c| c.max_buffered_frames = 1).is_ok());
        assert!(with(|c| c.limits.max_payload = 0).is_err());
        assert!(with(|c| c.recovery = Some(RecoveryConfig::default())).is_ok());
        assert!(with(|c| {
            c.recovery = Some(RecoveryConfig {
                max_log_packets: 0,
                ..RecoveryConfig::default()
            });
        })
        .is_err());
        assert!(with(|c| {
            c.recovery = Some(RecoveryConfig {
                max_disconnection_duration: Duration::ZERO,
                ..RecoveryConfig::default()
            });
        })
        .is_err());
        // Huge durations are legal: they mean "never".
        assert!(with(|c| {
            c.ping_timeout = Duration::MAX;
            c.connect_timeout = Duration::MAX;
            c.upgrade_timeout = Duration::MAX;
            c.ping_interval = Duration::MAX;
        })
        .is_ok());
    }
}
