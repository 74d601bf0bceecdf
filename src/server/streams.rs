//! The node's part of the streams protocol (`@socket.io/redis-streams-adapter` 0.3): this
//! node's broadcasts wait for their stream entry id before reaching its sockets (the id is the
//! offset every copy carries, on every node), other nodes' entries come in with theirs, and with
//! recovery on, sessions live in Redis so a client recovers on any node.

use super::cluster::{Command, SessionFound, SessionRestore, StreamOffset};
use super::event::{ConnectRequest, Event};
use super::recovery::{Replay, Restore};
use super::Server;
use crate::cluster::adapter::Protocol;
use crate::cluster::classic::WireError;
use crate::cluster::sharded::Message;
use crate::cluster::streams::{self, StreamEntry};
use crate::engine::Frame;
use crate::handle::{NamespaceId, SocketHandle};
use crate::id::Sid;
use crate::packet::Encoded;
use crate::recovery::sessions::Session;
use crate::Str;
use bytes::Bytes;
use smallvec::SmallVec;
use std::time::Instant;

/// What a broadcast selects, kept to run the selection later.
#[derive(Debug)]
pub(crate) struct Selected {
    pub(crate) nsp: NamespaceId,
    pub(crate) exclude: Option<SocketHandle>,
    pub(crate) rooms: SmallVec<[Str; 4]>,
    pub(crate) except: SmallVec<[Str; 2]>,
    pub(crate) compress: bool,
}

impl Selected {
    /// The broadcast again, its encoding numbered already.
    pub(crate) fn on<D>(self, server: &mut Server<D>) -> super::Broadcast<'_, D> {
        let mut b = super::Broadcast::new(server, self.nsp, self.exclude).compress(self.compress);
        b.rooms = self.rooms;
        b.except = self.except;
        b.numbered()
    }
}

/// A broadcast of this node waiting for its entry id: its selection, run when the id comes
/// (as the reference awaits `XADD` before its local delivery).
#[derive(Debug)]
pub(crate) struct Pending {
    seq: u64,
    since: Instant,
    selected: Selected,
    encoded: Encoded,
    /// `Some` once the transport answered: the id, or `None` if the write failed.
    id: Option<Option<String>>,
}

impl<D> Server<D> {
    /// Whether offsets come from a stream: the streams protocol with recovery on.
    pub(super) fn numbered_by_stream(&self) -> bool {
        self.recovery.is_some()
            && self
                .cluster
                .as_deref()
                .is_some_and(|c| c.config.protocol == Protocol::Streams)
    }

    /// Holds this node's broadcast until its entry id is known: published now with a token for
    /// the id. Past [`max_queued`](crate::ClusterConfig::max_queued) waiting, it is handed back
    /// to be delivered at once without an offset (it cannot be replayed; nobody misses it live).
    pub(super) fn defer_broadcast(
        &mut self,
        selected: Selected,
        encoded: &Encoded,
        outgoing: super::cluster::Outgoing,
    ) -> Result<(), Box<Selected>> {
        let (Some(now), Some(c)) = (self.clock, self.cluster.as_deref_mut()) else {
            return Err(Box::new(selected));
        };
        if c.pending.len() >= c.config.max_queued {
            return Err(Box::new(selected));
        }
        c.next_offset += 1;
        let seq = c.next_offset;
        c.pending.push_back(Pending {
            seq,
            since: now,
            selected,
            encoded: encoded.clone(),
            id: None,
        });
        // The transport had no room for it: no id will come.
        if !self.publish_with(outgoing, encoded, Some(StreamOffset(seq))) {
            self.resolve(seq, None);
        }
        Ok(())
    }

    /// The entry id of this node's broadcast (`None`: the write failed, or the transport gave
    /// up): it reaches this node's sockets now, with the id as its last argument, after every
    /// earlier one.
    pub fn handle_stream_offset(&mut self, now: Instant, token: StreamOffset, id: Option<&str>) {
        self.tick(now);
        // An id that is not one is not sent to clients as an offset.
        let id = id
            .filter(|i| streams::is_valid_offset(i))
            .map(str::to_owned);
        self.resolve(token.0, id);
    }

    fn resolve(&mut self, seq: u64, id: Option<String>) {
        let Some(c) = self.cluster.as_deref_mut() else {
            return;
        };
        if let Some(p) = c.pending.iter_mut().find(|p| p.seq == seq) {
            p.id = Some(id);
        }
        self.flush_pending();
    }

    /// Delivers the waiting broadcasts whose ids came, in order.
    fn flush_pending(&mut self) {
        loop {
            let Some(c) = self.cluster.as_deref_mut() else {
                return;
            };
            if c.pending.front().is_none_or(|p| p.id.is_none()) {
                return;
            }
            let Some(p) = c.pending.pop_front() else {
                return;
            };
            let encoded = match &p.id {
                Some(Some(id)) => p.encoded.with_last_arg(id),
                _ => p.encoded,
            };
            p.selected.on(self).emit_numbered(&encoded);
        }
    }

    /// When the oldest waiting broadcast gives up on its id.
    pub(super) fn pending_deadline(&self) -> Option<Instant> {
        let c = self.cluster.as_deref()?;
        c.pending
            .front()?
            .since
            .checked_add(c.config.requests_timeout)
    }

    /// Broadcasts whose ids did not come within the requests timeout go out without one.
    pub(super) fn expire_pending(&mut self, now: Instant) {
        let Some(c) = self.cluster.as_deref_mut() else {
            return;
        };
        let timeout = c.config.requests_timeout;
        for p in c.pending.iter_mut() {
            if p.id.is_none() && p.since.checked_add(timeout).is_some_and(|t| t <= now) {
                p.id = Some(None);
            }
        }
        self.flush_pending();
    }

    /// Entries read from a stream (what [`poll_cluster_subscription`](Self::poll_cluster_subscription)
    /// named with a [`Topic::Stream`](crate::cluster::adapter::Topic::Stream)), in stream order:
    /// other nodes' broadcasts reach this node's sockets with their entry id as the offset;
    /// joins, leaves and disconnects apply to this node's sockets. This node's own entries and
    /// other namespaces' are skipped. Returns the local sockets reached; a bad entry is an
    /// error for the caller to log (the first one, after every entry was tried).
    pub fn handle_stream_entries(
        &mut self,
        now: Instant,
        stream: &str,
        entries: &[StreamEntry],
    ) -> Result<usize, WireError> {
        self.tick(now);
        let Some(cluster) = self.cluster.as_deref() else {
            return Ok(0);
        };
        let nsps: SmallVec<[NamespaceId; 4]> = cluster
            .adapters
            .iter()
            .filter(|(_, a)| a.stream().is_some_and(|(s, _)| s == stream))
            .map(|(n, _)| *n)
            .collect();
        let mut reached = 0;
        let mut first_error = None;
        for e in entries {
            let envelope = match streams::decode_entry(&e.fields) {
                Ok(env) => env,
                Err(err) => {
                    first_error.get_or_insert(err);
                    continue;
                }
            };
            let Some(nsp) = nsps.iter().copied().find(|n| {
                self.router
                    .nsp_name(*n)
                    .is_some_and(|name| name.as_ref() as &str == envelope.nsp)
            }) else {
                continue;
            };
            match self.on_envelope(now, nsp, envelope, Some(&e.id)) {
                Ok(n) => reached += n,
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(reached),
        }
    }

    /// Stores a dropped socket's session in Redis (`SET … PX`), readable by every node.
    pub(super) fn save_session_remotely(&mut self, session: Session<D>) {
        let Some(c) = self.cluster.as_deref() else {
            return;
        };
        let ttl = match self.recovery.as_deref() {
            Some(r) => r.max_disconnection_duration(),
            None => return,
        };
        let record = streams::Session {
            sid: session.sid.as_str().to_owned(),
            pid: session.pid.as_str().to_owned(),
            rooms: session.rooms.iter().map(|r| r.to_string()).collect(),
            data: (c.data)(&session.data),
        };
        let key = streams::session_key(&c.config.session_key_prefix, session.pid.as_str());
        let value = Bytes::from(record.encode());
        self.queue_command(key, Command::SaveSession { ttl }, value);
    }

    /// Asks the transport for a session (a CONNECT with a stream offset): the connect request
    /// waits for [`handle_restore`](Self::handle_restore). `false` if it cannot be asked.
    pub(super) fn request_restore(
        &mut self,
        request: ConnectRequest,
        pid: Sid,
        offset: String,
    ) -> Result<(), ConnectRequest> {
        if !streams::is_valid_offset(&offset) {
            return Err(request);
        }
        let Some(c) = self.cluster.as_deref() else {
            return Err(request);
        };
        let Some((stream, _)) = c.adapters.get(&request.nsp).and_then(|a| a.stream()) else {
            return Err(request);
        };
        let stream = stream.to_owned();
        let key = streams::session_key(&c.config.session_key_prefix, pid.as_str());
        let max = c.config.max_requests;
        let seq = request.seq;
        let Some(r) = self.recovery.as_deref_mut() else {
            return Err(request);
        };
        r.await_session(request, pid, max)?;
        let token = SessionRestore {
            seq,
            stream,
            offset,
        };
        self.queue_command(key, Command::Restore(token), Bytes::new());
        Ok(())
    }

    /// What the transport found for a recovering client: a complete replay restores it (on
    /// this node, whichever node it dropped from), anything else is a fresh socket, decided
    /// by the application as any new one.
    pub fn handle_restore(
        &mut self,
        now: Instant,
        token: SessionRestore,
        found: Option<SessionFound>,
    ) {
        self.tick(now);
        let Some((request, pid)) = self
            .recovery
            .as_deref_mut()
            .and_then(|r| r.take_awaiting(token.seq))
        else {
            return;
        };
        if self.clients.get(request.conn).is_none() {
            return;
        }
        let restore = found.and_then(|f| self.session_of(&request, pid, f));
        match restore {
            Some(restore) => self.recover_or_ask(
                ConnectRequest {
                    recovering: true,
                    ..request
                },
                restore,
            ),
            None => {
                // A namespace with a CONNECT pending is never removed.
                let Some(nsp_name) = self.router.nsp_name(request.nsp).cloned() else {
                    return;
                };
                self.events.push_back(Event::ConnectRequest {
                    nsp: request.nsp,
                    nsp_name,
                    auth: request.auth.clone(),
                    recovering: false,
                    request,
                });
            }
        }
    }

    /// The restoration a found session makes: its record read back (the pid it was asked
    /// for, a socket id, data this node's type can hold) and the entries after the offset that
    /// reached it (the reference's rule: the namespace's broadcasts whose rooms it shares, or
    /// none given, and none of its rooms excepted; volatile ones never), each with its entry id.
    fn session_of(
        &self,
        request: &ConnectRequest,
        pid: Sid,
        found: SessionFound,
    ) -> Option<Restore<D>> {
        if !found.complete {
            return None;
        }
        let c = self.cluster.as_deref()?;
        let record = streams::Session::decode(&found.session).ok()?;
        let sid = Sid::parse(&record.sid)?;
        if Sid::parse(&record.pid)? != pid {
            return None;
        }
        let data = (c.restore_data)(record.data)?;
        let nsp_name = self.router.nsp_name(request.nsp)?.clone();
        let mut frames: Vec<SmallVec<[Frame; 2]>> = Vec::new();
        for e in &found.entries {
            let Ok(env) = streams::decode_entry(&e.fields) else {
                continue;
            };
            let Message::Broadcast(b) = env.message else {
                continue;
            };
            if env.nsp != nsp_name.as_ref() as &str
                || b.opts.flags.volatile
                || !streams::should_include(&record.rooms, &b.opts)
            {
                continue;
            }
            let Some((name, args)) = super::cluster::named(&b.packet.data) else {
                continue;
            };
            let args = crate::cluster::value::ClusterArgs(args);
            let Ok(encoded) = self.parser().event(&nsp_name, None, name, &args) else {
                continue;
            };
            frames.push(encoded.with_last_arg(&e.id).frames().collect());
        }
        let mut rooms: Vec<Str> = record.rooms.iter().map(|r| Str::from(r.as_str())).collect();
        // Its own id first, as a local session has it.
        if let Some(i) = rooms.iter().position(|r| *r == *sid.as_str()) {
            rooms.swap(0, i);
        } else {
            rooms.insert(0, sid.to_str());
        }
        let session = Session {
            nsp: request.nsp,
            sid,
            pid,
            rooms,
            data,
            history: Default::default(),
            at: self.clock?,
        };
        Some(Restore::new(session, Replay::Frames(frames)))
    }

    /// Queues a command on `key`.
    fn queue_command(&mut self, key: String, command: Command, payload: Bytes) {
        if let Some(c) = self.cluster.as_deref_mut() {
            c.push(super::cluster::ClusterTransmit {
                channel: key,
                command,
                payload,
                sharded: false,
                count: None,
            });
        }
    }
}
