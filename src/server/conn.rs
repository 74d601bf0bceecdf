//! One Engine.IO session's state.

use super::event::ConnectRequest;
use super::http::RequestId;
use crate::engine::Frame;
use crate::handle::{NamespaceId, SocketHandle};
use crate::id::Sid;
use crate::packet::Decoder;
use smallvec::SmallVec;
use std::collections::VecDeque;

/// Which transport carries the session's packets now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Polling,
    WebSocket,
}

/// The WebSocket the adapter holds for this session, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ws {
    None,
    /// Accepted by `handle_http`, waiting for `handle_ws_open`.
    Accepting,
    Open,
}

/// Progress of an upgrade from long-polling to WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Upgrade {
    #[default]
    None,
    /// The WebSocket is open; waiting for `2probe`. The number tells timer entries apart.
    Started(u32),
    /// `3probe` sent; waiting for `5`.
    Probed(u32),
}

#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) gen: u8,
    pub(crate) live: bool,
    pub(crate) sid: Sid,
    pub(crate) transport: Transport,
    pub(crate) ws: Ws,
    /// Long-polling state, boxed: a WebSocket session (the common case) has none.
    pub(crate) poll: Option<Box<Polling>>,
    /// Counts heartbeat rounds, so stale timer entries can be told apart.
    pub(crate) heartbeat: u32,
    pub(crate) awaiting_pong: bool,
    /// The adapter cannot take more frames right now (WebSocket back-pressure).
    pub(crate) blocked: bool,
    pub(crate) decoder: Decoder,
    /// One socket per namespace joined; most connections join one.
    pub(crate) sockets: SmallVec<[(NamespaceId, SocketHandle); 1]>,
    pub(crate) pending: SmallVec<[ConnectRequest; 1]>,
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

static NO_POLLING: Polling = Polling {
    held_get: None,
    post: None,
    queue: VecDeque::new(),
    upgrade: Upgrade::None,
    upgrades: 0,
};

impl Conn {
    /// The long-polling state (empty for a WebSocket session).
    pub(crate) fn p(&self) -> &Polling {
        self.poll.as_deref().unwrap_or(&NO_POLLING)
    }

    /// The long-polling state, created on first use.
    pub(crate) fn pm(&mut self) -> &mut Polling {
        self.poll.get_or_insert_with(Box::default)
    }

    pub(crate) fn has_namespace(&self, nsp: NamespaceId) -> bool {
        self.sockets.iter().any(|(n, _)| *n == nsp) || self.pending.iter().any(|r| r.nsp == nsp)
    }

    pub(crate) fn socket_in(&self, nsp: NamespaceId) -> Option<SocketHandle> {
        self.sockets
            .iter()
            .find(|(n, _)| *n == nsp)
            .map(|(_, s)| *s)
    }

    /// Whether frames go to the adapter's WebSocket (else to the long-polling queue).
    pub(crate) fn sends_over_ws(&self) -> bool {
        self.transport == Transport::WebSocket && self.ws == Ws::Open
    }

    /// Whether a packet can be handed over right now (volatile packets need this).
    pub(crate) fn can_take_now(&self) -> bool {
        if self.sends_over_ws() {
            !self.blocked
        } else {
            self.p().held_get.is_some() && !matches!(self.p().upgrade, Upgrade::Probed(_))
        }
    }
}
