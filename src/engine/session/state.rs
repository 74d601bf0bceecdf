//! One Engine.IO session's state: which transport carries it, and where its heartbeat is.
//!
//! Each state carries only its legal data: a long-polling session has a request queue and
//! maybe an upgrade in progress (with its probe); a WebSocket session has only its
//! back-pressure flag. Flags that had to agree with each other are variants now.

use super::http::RequestId;
use crate::engine::Frame;
use crate::id::Sid;
use std::collections::VecDeque;

/// The state of one session.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) sid: Sid,
    pub(crate) transport: Transport,
    pub(crate) heartbeat: Heartbeat,
}

/// Which transport carries the session's packets now.
#[derive(Debug)]
pub(crate) enum Transport {
    /// Long-polling, boxed: a WebSocket session (the common case) pays nothing for it.
    Polling(Box<Polling>),
    /// A WebSocket-only session whose handshake was accepted; not open yet.
    WsOpening,
    /// An open WebSocket. `blocked`: the adapter's write queue is nearly full.
    WebSocket { blocked: bool },
}

/// The state of a session while it runs over long-polling.
#[derive(Debug, Default)]
pub(crate) struct Polling {
    /// The held long-polling GET.
    pub(crate) held_get: Option<RequestId>,
    /// The POST whose body is being read.
    pub(crate) post: Option<RequestId>,
    /// Frames waiting for the next long-polling GET.
    pub(crate) queue: VecDeque<Frame>,
    pub(crate) upgrade: Upgrade,
    /// Upgrades attempted so far, to tell timer entries apart.
    pub(crate) upgrades: u32,
}

/// Progress of an upgrade from long-polling to WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Upgrade {
    #[default]
    None,
    /// The WebSocket request was accepted; waiting for it to open. The number tags its timer
    /// entry: a handshake that never completes does not hold the session forever.
    Accepting(u32),
    /// The WebSocket is open; waiting for `2probe`. The number tags its timer entry.
    Probing(u32),
    /// `3probe` sent; waiting for `5`. Polling is paused: frames wait for the WebSocket.
    Probed(u32),
}

impl Upgrade {
    /// The attempt in progress, whose timer entry carries this number.
    pub(crate) fn attempt(self) -> Option<u32> {
        match self {
            Upgrade::Accepting(n) | Upgrade::Probing(n) | Upgrade::Probed(n) => Some(n),
            Upgrade::None => None,
        }
    }

    /// Whether the upgrade's WebSocket is open (it then speaks only the upgrade's packets).
    pub(crate) fn ws_open(self) -> bool {
        matches!(self, Upgrade::Probing(_) | Upgrade::Probed(_))
    }
}

/// Where the session's heartbeat is. The round tags timer entries so stale ones are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Heartbeat {
    /// Not started (a WebSocket-only session before it opens).
    Off,
    /// The next ping is due.
    Waiting { round: u32 },
    /// A ping went out; the pong is due.
    AwaitingPong { round: u32 },
}

impl Session {
    /// Whether frames go to the adapter's WebSocket (else to the long-polling queue).
    pub(crate) fn sends_over_ws(&self) -> bool {
        matches!(self.transport, Transport::WebSocket { .. })
    }

    /// Whether a packet can be handed over right now (volatile packets need this).
    pub(crate) fn can_take_now(&self) -> bool {
        match &self.transport {
            Transport::WebSocket { blocked } => !blocked,
            Transport::Polling(p) => {
                p.held_get.is_some() && !matches!(p.upgrade, Upgrade::Probed(_))
            }
            Transport::WsOpening => false,
        }
    }

    pub(crate) fn polling(&self) -> Option<&Polling> {
        match &self.transport {
            Transport::Polling(p) => Some(p),
            _ => None,
        }
    }

    pub(crate) fn polling_mut(&mut self) -> Option<&mut Polling> {
        match &mut self.transport {
            Transport::Polling(p) => Some(p),
            _ => None,
        }
    }
}
