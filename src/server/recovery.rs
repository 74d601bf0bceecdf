//! Connection state recovery, the server's part: private ids in CONNECT replies, offsets on
//! every event a client may have to be replayed, sessions kept when a transport fails, and a
//! CONNECT with a known `pid` and `offset` restored with its id, rooms, data and every missed
//! packet, before the CONNECT reply (as the reference writes them).
//!
//! Where roomcast differs from the reference on purpose (docs/DESIGN.md): the log and the
//! store are bounded; a restored session is deleted; a live socket holding the same `pid` is
//! closed (and kept) before restoring; an offset is complete only if no packet after it was
//! dropped, which a replay checks in O(1).

use super::event::{ConnectRequest, Event};
use super::{Error, Server};
use crate::engine::Frame;
use crate::handle::{ConnectionHandle, NamespaceId, SocketHandle};
use crate::id::Sid;
use crate::packet::Encoded;
use crate::recovery::log::{Entry, Log};
use crate::recovery::membership::{History, Timeline};
use crate::recovery::offset::Tag;
use crate::recovery::sessions::{Session, Sessions};
use crate::{DisconnectReason, RandomError, RandomSource, RecoveryConfig, Str};
use ahash::AHashMap;
use smallvec::SmallVec;
use std::time::Instant;

/// A session taken from the store for a CONNECT, and what its client missed.
#[derive(Debug)]
pub(crate) struct Restore<D> {
    session: Session<D>,
    replay: Replay,
}

impl<D> Restore<D> {
    pub(super) fn new(session: Session<D>, replay: Replay) -> Self {
        Restore { session, replay }
    }
}

/// What a restored socket missed.
#[derive(Debug)]
pub(crate) enum Replay {
    /// Every packet of this node's log after this one.
    Log(u64),
    /// These (read from the stream, each with its entry id).
    Frames(Vec<SmallVec<[Frame; 2]>>),
}

/// How a CONNECT with a `pid` and `offset` goes on.
pub(super) enum Recovering<D> {
    /// Restorable from this node's stores.
    Local(Restore<D>),
    /// The session is in Redis (streams protocol): ask for it.
    Remote { pid: Sid, offset: String },
}

/// What recovery holds.
#[derive(Debug)]
pub(crate) struct Recovery<D> {
    config: RecoveryConfig,
    tag: Tag,
    log: Log,
    sessions: Sessions<D>,
    /// The private id of every live socket, by socket slot, and back.
    pids: AHashMap<u32, Sid>,
    live: AHashMap<Sid, SocketHandle>,
    /// The room changes of live sockets that had any, by socket slot.
    history: AHashMap<u32, History>,
    /// Restorations waiting for the application's decision (`skip_middlewares` off), by
    /// request number.
    deciding: AHashMap<u64, Restore<D>>,
    /// Connect requests waiting for their session from Redis, by request number.
    awaiting: AHashMap<u64, (ConnectRequest, Sid)>,
}

/// How full the recovery stores are, and what their bounds dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RecoveryStats {
    /// Packets in the log.
    pub packets: usize,
    /// Bytes the log holds.
    pub packet_bytes: usize,
    /// Packets dropped by a bound before their time.
    pub evicted_packets: u64,
    /// Stored sessions.
    pub sessions: usize,
    /// Bytes the stored sessions hold.
    pub session_bytes: usize,
    /// Sessions dropped by a bound before their time.
    pub evicted_sessions: u64,
}

impl<D> Recovery<D> {
    /// Without randomness for its tag, the log's offsets are still its own, just
    /// predictable: they name packets, they grant nothing (the `pid` does).
    pub(crate) fn new(config: RecoveryConfig, rng: &mut dyn RandomSource) -> Self {
        let keep = config.max_disconnection_duration;
        Recovery {
            tag: Tag::random(rng).unwrap_or_default(),
            log: Log::new(config.max_log_packets, config.max_log_bytes, keep),
            sessions: Sessions::new(config.max_sessions, config.max_session_bytes, keep),
            config,
            pids: AHashMap::default(),
            live: AHashMap::default(),
            history: AHashMap::default(),
            deciding: AHashMap::default(),
            awaiting: AHashMap::default(),
        }
    }

    pub(crate) fn max_disconnection_duration(&self) -> std::time::Duration {
        self.config.max_disconnection_duration
    }

    /// Holds a connect request until its session comes (at most `max` at once).
    pub(super) fn await_session(
        &mut self,
        request: ConnectRequest,
        pid: Sid,
        max: usize,
    ) -> Result<(), ConnectRequest> {
        if self.awaiting.len() >= max {
            return Err(request);
        }
        self.awaiting.insert(request.seq, (request, pid));
        Ok(())
    }

    pub(super) fn take_awaiting(&mut self, seq: u64) -> Option<(ConnectRequest, Sid)> {
        self.awaiting.remove(&seq)
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        crate::timers::earliest([self.log.next_expiry(), self.sessions.next_expiry()])
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.log.expire(now);
        self.sessions.expire(now);
    }

    pub(crate) fn pending_work(&self) -> usize {
        self.log.len() + self.sessions.queued() + self.deciding.len() + self.awaiting.len()
    }

    /// A connect request was decided or cancelled: its restoration, if any, is gone.
    pub(crate) fn forget(&mut self, seq: u64) {
        self.deciding.remove(&seq);
        self.awaiting.remove(&seq);
    }

    pub(crate) fn check_invariants(
        &self,
        live: impl Fn(SocketHandle) -> bool,
    ) -> Result<(), String> {
        if self.pids.len() != self.live.len() {
            return Err(format!(
                "{} pids by slot, {} by pid",
                self.pids.len(),
                self.live.len()
            ));
        }
        for (pid, s) in &self.live {
            if !live(*s) || self.pids.get(&s.slot) != Some(pid) {
                return Err(format!("pid {pid:?} of a gone socket {s:?}"));
            }
        }
        if let Some(slot) = self.history.keys().find(|k| !self.pids.contains_key(k)) {
            return Err(format!("room history kept for gone socket slot {slot}"));
        }
        Ok(())
    }
}

/// `pid` and `offset` of a CONNECT's auth, when both are strings (the reference's test).
fn recovery_auth(auth: Option<&str>) -> Option<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Auth {
        pid: Option<serde_json::Value>,
        offset: Option<serde_json::Value>,
    }
    let a: Auth = serde_json::from_str(auth?).ok()?;
    match (a.pid?, a.offset?) {
        (serde_json::Value::String(p), serde_json::Value::String(o)) => Some((p, o)),
        _ => None,
    }
}

/// The CONNECT reply: `{"sid":…,"pid":…}` in that order (the reference's test compares the
/// string); no `pid` when recovery is off.
#[derive(serde::Serialize)]
pub(crate) struct ConnectReply<'a> {
    pub(crate) sid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) pid: Option<&'a str>,
}

impl<D> Server<D> {
    /// How full the recovery stores are; `None` with recovery off.
    pub fn recovery_stats(&self) -> Option<RecoveryStats> {
        let r = self.recovery.as_deref()?;
        Some(RecoveryStats {
            packets: r.log.len(),
            packet_bytes: r.log.bytes(),
            evicted_packets: r.log.evicted(),
            sessions: r.sessions.len(),
            session_bytes: r.sessions.bytes(),
            evicted_sessions: r.sessions.evicted(),
        })
    }

    /// The data a recovering socket had, for an application deciding its connect request
    /// (with [`RecoveryConfig::skip_middlewares`] off); `None` for a new socket.
    pub fn restored_data(&self, request: &ConnectRequest) -> Option<&D> {
        let r = self.recovery.as_deref()?;
        Some(&r.deciding.get(&request.seq)?.session.data)
    }

    /// The restoration a CONNECT asks for, if it can be complete: a live socket holding the
    /// `pid` (a transport the server has not seen die yet) is closed first, and kept; the
    /// session is taken from the store (so it restores once) and the log must still hold
    /// every packet after the offset. Anything else is a fresh socket.
    pub(super) fn restoration(
        &mut self,
        conn: ConnectionHandle,
        nsp: NamespaceId,
        auth: Option<&str>,
    ) -> Option<Recovering<D>> {
        self.recovery.as_ref()?;
        let (pid, offset) = recovery_auth(auth)?;
        let pid = Sid::parse(&pid)?;
        let stale = self.recovery.as_ref()?.live.get(&pid).copied();
        if let Some(old) = stale {
            let other = self.conn_of(old).filter(|c| *c != conn);
            if let (Some(c), Some(true)) = (other, self.router.namespace_of(old).map(|n| n == nsp))
            {
                self.close(c, DisconnectReason::ForcedClose);
            }
        }
        if self.numbered_by_stream() {
            return Some(Recovering::Remote { pid, offset });
        }
        let now = self.clock?;
        let r = self.recovery.as_deref_mut()?;
        let session = r.sessions.take(now, &pid, nsp)?;
        let after = r.tag.parse(&offset)?;
        // Checked now so a gap gives a fresh socket at once; checked again when restoring.
        missed(&r.log, after, &session)?;
        Some(Recovering::Local(Restore {
            session,
            replay: Replay::Log(after),
        }))
    }

    /// Sends a CONNECT of a recovering socket on its way: restored at once, or held for the
    /// application's decision.
    pub(super) fn recover_or_ask(&mut self, request: ConnectRequest, restore: Restore<D>) {
        let skip = self
            .recovery
            .as_deref()
            .is_some_and(|r| r.config.skip_middlewares);
        if skip {
            let auth = request.auth.clone();
            if self.take_pending(&request).is_ok() {
                let _ = self.restore(request.conn, request.nsp, restore, None, auth);
                self.remove_if_unused(request.nsp);
            }
            return;
        }
        if let Some(r) = self.recovery.as_deref_mut() {
            r.deciding.insert(request.seq, restore);
        }
        // A namespace with a CONNECT pending is never removed.
        let Some(nsp_name) = self.router.nsp_name(request.nsp).cloned() else {
            return;
        };
        self.events.push_back(Event::ConnectRequest {
            nsp: request.nsp,
            nsp_name,
            auth: request.auth.clone(),
            recovering: true,
            request,
        });
    }

    /// The restoration held for a request, now decided.
    pub(super) fn take_restoration(&mut self, request: &ConnectRequest) -> Option<Restore<D>> {
        self.recovery.as_deref_mut()?.deciding.remove(&request.seq)
    }

    /// Brings a socket back: its id, private id, rooms and data (`data`, else the stored
    /// data), the packets it missed, then the CONNECT reply. If packets it needs were dropped
    /// in the meantime (a decision that took long), it is a fresh socket instead.
    pub(super) fn restore(
        &mut self,
        conn: ConnectionHandle,
        nsp: NamespaceId,
        restore: Restore<D>,
        data: Option<D>,
        auth: Option<Str>,
    ) -> Result<SocketHandle, Error> {
        let Restore { session, replay } = restore;
        let missed = match replay {
            Replay::Log(after) => self
                .recovery
                .as_deref()
                .and_then(|r| missed(&r.log, after, &session)),
            Replay::Frames(frames) => Some(frames),
        };
        let data = data.unwrap_or(session.data);
        let Some(missed) = missed else {
            return self.open_socket(conn, nsp, None, data, auth);
        };
        // Its id is its own again: a socket still holding it goes first.
        if let Some(old) = self.router.by_sid(session.sid.as_str()) {
            match self.conn_of(old) {
                Some(c) if c != conn => self.close(c, DisconnectReason::ForcedClose),
                _ => self.remove_socket(old, DisconnectReason::ServerNamespaceDisconnect),
            }
        }
        for frames in &missed {
            self.engine.send(conn, frames, false);
        }
        let restored = Restored {
            sid: session.sid,
            pid: session.pid,
            rooms: session.rooms,
            history: session.history,
        };
        self.open_socket(conn, nsp, Some(restored), data, auth)
    }

    /// A private id for a new socket, when recovery is on.
    pub(super) fn fresh_pid(&mut self) -> Result<Option<Sid>, RandomError> {
        if self.recovery.is_none() {
            return Ok(None);
        }
        loop {
            let pid = Sid::random(self.engine.rng())?;
            if !self
                .recovery
                .as_deref()
                .is_some_and(|r| r.live.contains_key(&pid))
            {
                return Ok(Some(pid));
            }
        }
    }

    /// Gives a socket its private id, and a restored one its room history back.
    pub(super) fn register_pid(&mut self, socket: SocketHandle, pid: Sid, history: History) {
        if let Some(r) = self.recovery.as_deref_mut() {
            r.pids.insert(socket.slot, pid);
            r.live.insert(pid, socket);
            if !history.is_empty() {
                r.history.insert(socket.slot, history);
            }
        }
    }

    /// A socket joined or left a room: recorded at the log's position, for replays.
    pub(super) fn record_membership(&mut self, socket: SocketHandle, room: &str, joined: bool) {
        let Some(r) = self.recovery.as_deref_mut() else {
            return;
        };
        if !r.pids.contains_key(&socket.slot) {
            return;
        }
        let (at, first) = (r.log.next_seq(), r.log.first());
        if at <= first && !r.history.contains_key(&socket.slot) {
            // Nothing logged that it could matter to: no record, no allocation.
            return;
        }
        r.history
            .entry(socket.slot)
            .or_default()
            .record(at, Str::from(room), joined, first);
    }

    /// A socket is leaving: with a recoverable reason, its session is stored (rooms and data
    /// as they are now, before it leaves its rooms). Returns the data if it was not kept.
    pub(super) fn keep_session(
        &mut self,
        s: SocketHandle,
        nsp: NamespaceId,
        reason: DisconnectReason,
    ) {
        let Some(r) = self.recovery.as_deref_mut() else {
            return;
        };
        let Some(pid) = r.pids.remove(&s.slot) else {
            return;
        };
        r.live.remove(&pid);
        let history = r.history.remove(&s.slot).unwrap_or_default();
        let (Some(now), true) = (self.clock, reason.is_recoverable()) else {
            return;
        };
        let (Some(sid), Some(data)) = (
            self.router.sid(s).and_then(Sid::parse),
            self.socks.get_mut(s.slot as usize).and_then(Option::take),
        ) else {
            return;
        };
        let rooms = self.router.rooms_of(s);
        let session = Session {
            nsp,
            sid,
            pid,
            rooms,
            data,
            history,
            at: now,
        };
        if self.numbered_by_stream() {
            self.save_session_remotely(session);
        } else if let Some(r) = self.recovery.as_deref_mut() {
            r.sessions.store(session);
        }
    }

    /// An event about to be sent to a selection, numbered and logged if a client may need it
    /// replayed: the encoding to send instead, with its offset as the last argument (the same
    /// for every recipient, so still encoded once). `None`: send `encoded` as it is.
    pub(super) fn log_event(
        &mut self,
        nsp: NamespaceId,
        rooms: impl FnOnce() -> Box<[Str]>,
        except: impl FnOnce() -> Box<[Str]>,
        encoded: &Encoded,
    ) -> Option<Encoded> {
        let now = self.clock?;
        // With the streams protocol the stream is the log.
        if self.numbered_by_stream() {
            return None;
        }
        let r = self.recovery.as_deref_mut()?;
        if !encoded.is_event_without_ack() {
            return None;
        }
        let offset = r.tag.offset(r.log.next_seq());
        let numbered = encoded.with_last_arg(&offset);
        let frames = numbered.frames().collect();
        r.log.push(Entry::new(now, nsp, rooms(), except(), frames));
        Some(numbered)
    }

    /// [`log_event`](Self::log_event) for an emit to one socket: its own room.
    pub(super) fn log_direct(
        &mut self,
        socket: SocketHandle,
        encoded: &Encoded,
    ) -> Option<Encoded> {
        self.recovery.as_ref()?;
        let nsp = self.router.namespace_of(socket)?;
        let sid = Str::from(self.router.sid(socket)?);
        self.log_event(nsp, || Box::new([sid]), || Box::new([]), encoded)
    }
}

/// What a recovered socket gets back, besides its data.
pub(super) struct Restored {
    pub(super) sid: Sid,
    pub(super) pid: Sid,
    pub(super) rooms: Vec<Str>,
    pub(super) history: History,
}

/// The frames of every packet after `after` that reached the session's socket, each tested
/// against its rooms when it was sent; `None` if that cannot be known exactly (packets or
/// room changes dropped).
fn missed<D>(log: &Log, after: u64, session: &Session<D>) -> Option<Vec<SmallVec<[Frame; 2]>>> {
    if !session.history.exact_after(after) {
        return None;
    }
    let mut timeline = Timeline::new(&session.rooms, &session.history, after);
    let entries = log.after(after).ok()?;
    Some(
        entries
            .filter(|(seq, e)| e.reaches(session.nsp, timeline.at(*seq)))
            .map(|(_, e)| e.frames.clone())
            .collect(),
    )
}
