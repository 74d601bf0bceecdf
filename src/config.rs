//! [`Config`]: timings, limits and switches of a [`Server`](crate::Server).

use crate::Limits;
use std::time::Duration;

/// Everything a server can be tuned with. `Config::default()` has the reference defaults.
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
    /// Whether to allow long-polling sessions to upgrade to WebSocket. Default: true.
    pub allow_upgrades: bool,
    /// Whether room life-cycle events (created, deleted, joined, left) are reported through
    /// [`Server::poll_event`](crate::Server::poll_event). Off by default: most applications
    /// do not listen, and churn-heavy ones should not pay for them.
    pub room_events: bool,
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
        if self.max_buffered_frames == 0 {
            return fail("max_buffered_frames", "must be at least 1");
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
