//! The one ack table: every answer the server waits for, to single emits and to broadcasts,
//! with their timeouts.
//!
//! Only sockets that owe an answer have an entry: an idle socket costs nothing here.

use super::event::{AckError, AckHandle, BroadcastAckHandle, Event};
use crate::handle::{NamespaceId, SocketHandle};
use crate::packet::Payload;
use crate::timers::deadline;
use ahash::AHashMap;
use smallvec::SmallVec;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// What a pending ack entry on a socket waits for.
#[derive(Debug, Clone, Copy)]
enum Waiter {
    Single(AckHandle),
    Broadcast(u64),
}

/// Who a broadcast's answers go to.
#[derive(Debug)]
pub(crate) enum Owner {
    /// The application of this node, through [`Event::BroadcastAck`]; in a cluster, the
    /// other nodes' answers are waited for too.
    Local(Option<Box<ClusterWait>>),
    /// The node that asked (its broadcast with acks, run here on this node's sockets): each
    /// answer is sent back to it as it comes.
    Remote {
        request_id: String,
        requester: String,
        nsp: NamespaceId,
    },
}

/// The other nodes' part of this node's broadcast with acks.
#[derive(Debug)]
pub(crate) struct ClusterWait {
    request_id: String,
    /// Client counts that complete it (the other nodes), once the node count is known.
    others: Option<usize>,
    counts: usize,
    /// Clients reached on the other nodes, summed over the counts received.
    clients: u64,
    /// Their answers received, and the first `max` of them kept (another node can send any
    /// number; an answer not kept still counts).
    received: u64,
    replies: Vec<Payload>,
    max: usize,
}

impl ClusterWait {
    pub(crate) fn new(request_id: String, max: usize) -> Box<Self> {
        Box::new(ClusterWait {
            request_id,
            others: None,
            counts: 0,
            clients: 0,
            received: 0,
            replies: Vec::new(),
            max,
        })
    }

    fn done(&self) -> bool {
        self.others.is_some_and(|o| self.counts >= o) && self.received >= self.clients
    }
}

/// A client's answer to another node's broadcast, to send back to it.
#[derive(Debug)]
pub(crate) struct RemoteAck {
    pub(crate) request_id: String,
    pub(crate) requester: String,
    pub(crate) nsp: NamespaceId,
    pub(crate) data: Payload,
}

#[derive(Debug)]
struct BroadcastWait {
    owner: Owner,
    /// Sockets the broadcast reached.
    expected: usize,
    /// Of those, the ones still connected: answers can only come from them.
    answerable: usize,
    /// Answers received from them.
    answered: usize,
    replies: Vec<(SocketHandle, Payload)>,
    /// The socket slots asked, so those that never answered can be cleared at the end.
    recipients: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Single(u64),
    Broadcast(u64),
}

#[derive(Debug, Default)]
pub(crate) struct Acks {
    /// Ack ids each socket slot owes an answer to, and who waits for it.
    owed: AHashMap<u32, SmallVec<[(u64, Waiter); 2]>>,
    single: AHashMap<u64, (SocketHandle, u64)>,
    broadcast: AHashMap<u64, BroadcastWait>,
    /// This node's broadcasts with acks waiting on other nodes, by request id.
    by_request: AHashMap<String, u64>,
    /// Other nodes' answers not kept (over a wait's bound).
    pub(crate) cluster_dropped: u64,
    due: BinaryHeap<Reverse<(Instant, Timer)>>,
    next: u64,
}

impl Acks {
    fn next(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.due.peek().map(|e| e.0 .0)
    }

    /// Waits for `socket`'s answer to its ack id `ack_id`; `None` timeout waits until it
    /// answers or disconnects.
    pub(crate) fn wait_single(
        &mut self,
        now: Instant,
        socket: SocketHandle,
        ack_id: u64,
        timeout: Option<Duration>,
    ) -> AckHandle {
        let handle = AckHandle(self.next());
        self.owed
            .entry(socket.slot)
            .or_default()
            .push((ack_id, Waiter::Single(handle)));
        self.single.insert(handle.0, (socket, ack_id));
        if let Some(at) = timeout.and_then(|t| deadline(now, t)) {
            self.due.push(Reverse((at, Timer::Single(handle.0))));
        }
        handle
    }

    /// Waits for the answers of every socket slot in `recipients` to one broadcast.
    pub(crate) fn wait_broadcast(
        &mut self,
        now: Instant,
        ack_id: u64,
        recipients: Vec<u32>,
        timeout: Option<Duration>,
        owner: Owner,
        events: &mut impl Extend<Event>,
    ) -> BroadcastAckHandle {
        let handle = BroadcastAckHandle(self.next());
        if let Owner::Local(Some(c)) = &owner {
            self.by_request.insert(c.request_id.clone(), handle.0);
        }
        for &slot in &recipients {
            self.owed
                .entry(slot)
                .or_default()
                .push((ack_id, Waiter::Broadcast(handle.0)));
        }
        let len = recipients.len();
        self.broadcast.insert(
            handle.0,
            BroadcastWait {
                owner,
                expected: len,
                answerable: len,
                answered: 0,
                replies: Vec::new(),
                recipients,
            },
        );
        if let Some(at) = timeout.and_then(|t| deadline(now, t)) {
            self.due.push(Reverse((at, Timer::Broadcast(handle.0))));
        }
        // Nobody reached here, and no other node to hear from: over at once.
        self.broadcast_progress(handle.0, events, |_| {});
        handle
    }

    /// An ACK packet from `socket`. Answers nobody waits for (late, or never asked) are
    /// ignored, as the reference does.
    /// An answer to another node's broadcast is returned, to be sent back to it.
    pub(crate) fn answer(
        &mut self,
        socket: SocketHandle,
        id: u64,
        data: Payload,
        events: &mut impl Extend<Event>,
    ) -> Option<RemoteAck> {
        let waiter = self.take(socket.slot, id)?;
        match waiter {
            Waiter::Single(ack) => {
                self.single.remove(&ack.0);
                events.extend([Event::Ack {
                    ack,
                    socket,
                    result: Ok(data),
                }]);
            }
            Waiter::Broadcast(b) => {
                let mut remote = None;
                self.broadcast_progress(b, events, |state| {
                    state.answered += 1;
                    match &state.owner {
                        Owner::Local(_) => state.replies.push((socket, data)),
                        Owner::Remote {
                            request_id,
                            requester,
                            nsp,
                        } => {
                            remote = Some(RemoteAck {
                                request_id: request_id.clone(),
                                requester: requester.clone(),
                                nsp: *nsp,
                                data,
                            });
                        }
                    }
                });
                return remote;
            }
        }
        None
    }

    /// Whether `request_id` is one of this node's broadcasts with acks (its own echo).
    pub(crate) fn is_own_request(&self, request_id: &str) -> bool {
        self.by_request.contains_key(request_id)
    }

    /// Another node's part of this node's broadcast with acks: `update` gets it.
    pub(crate) fn cluster_progress(
        &mut self,
        request_id: &str,
        events: &mut impl Extend<Event>,
        update: impl FnOnce(&mut ClusterWait),
    ) {
        let Some(&id) = self.by_request.get(request_id) else {
            return;
        };
        self.broadcast_progress(id, events, |state| {
            if let Owner::Local(Some(c)) = &mut state.owner {
                update(c);
            }
        });
    }

    /// The cluster has `nodes` nodes, this one included.
    pub(crate) fn cluster_nodes(
        &mut self,
        request_id: &str,
        nodes: usize,
        events: &mut impl Extend<Event>,
    ) {
        self.cluster_progress(request_id, events, |c| {
            c.others = Some(nodes.saturating_sub(1));
        });
    }

    /// A node reported how many of its clients the broadcast reached.
    pub(crate) fn cluster_count(
        &mut self,
        request_id: &str,
        count: u64,
        events: &mut impl Extend<Event>,
    ) {
        self.cluster_progress(request_id, events, |c| {
            c.counts += 1;
            c.clients = c.clients.saturating_add(count);
        });
    }

    /// A client of another node answered.
    pub(crate) fn cluster_reply(
        &mut self,
        request_id: &str,
        data: Payload,
        events: &mut impl Extend<Event>,
    ) {
        let mut dropped = 0;
        self.cluster_progress(request_id, events, |c| {
            c.received += 1;
            if c.replies.len() < c.max {
                c.replies.push(data);
            } else {
                dropped = 1;
            }
        });
        self.cluster_dropped += dropped;
    }

    /// Updates a broadcast's wait, and ends it once every answerable recipient answered.
    fn broadcast_progress(
        &mut self,
        id: u64,
        events: &mut impl Extend<Event>,
        update: impl FnOnce(&mut BroadcastWait),
    ) {
        if let Some(state) = self.broadcast.get_mut(&id) {
            update(state);
            let cluster_done = match &state.owner {
                Owner::Local(Some(c)) => c.done(),
                _ => true,
            };
            if state.answered >= state.answerable && cluster_done {
                self.finish_broadcast(id, false, events);
            }
        }
    }

    /// A socket is gone: its single acks fail, its broadcasts stop waiting for it.
    pub(crate) fn socket_gone(&mut self, socket: SocketHandle, events: &mut impl Extend<Event>) {
        for (_, waiter) in self.owed.remove(&socket.slot).unwrap_or_default() {
            match waiter {
                Waiter::Single(ack) => {
                    self.single.remove(&ack.0);
                    events.extend([Event::Ack {
                        ack,
                        socket,
                        result: Err(AckError::Disconnected),
                    }]);
                }
                // The gone socket will never answer: stop waiting for it.
                Waiter::Broadcast(b) => self.broadcast_progress(b, events, |state| {
                    state.answerable = state.answerable.saturating_sub(1);
                }),
            }
        }
    }

    /// Fires every ack timeout due at `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant, events: &mut impl Extend<Event>) {
        while let Some(Reverse((_, timer))) = self.due.peek().copied().filter(|e| e.0 .0 <= now) {
            self.due.pop();
            match timer {
                Timer::Single(id) => {
                    if let Some((socket, ack_id)) = self.single.remove(&id) {
                        self.take(socket.slot, ack_id);
                        events.extend([Event::Ack {
                            ack: AckHandle(id),
                            socket,
                            result: Err(AckError::Timeout),
                        }]);
                    }
                }
                Timer::Broadcast(id) => self.finish_broadcast(id, true, events),
            }
        }
    }

    fn take(&mut self, slot: u32, id: u64) -> Option<Waiter> {
        let owed = self.owed.get_mut(&slot)?;
        let i = owed.iter().position(|(a, _)| *a == id)?;
        let (_, waiter) = owed.swap_remove(i);
        if owed.is_empty() {
            self.owed.remove(&slot);
        }
        Some(waiter)
    }

    fn finish_broadcast(&mut self, id: u64, timed_out: bool, events: &mut impl Extend<Event>) {
        let Some(state) = self.broadcast.remove(&id) else {
            return;
        };
        if state.answered < state.recipients.len() {
            // Those that never answered no longer owe one.
            for slot in &state.recipients {
                if let Some(owed) = self.owed.get_mut(slot) {
                    owed.retain(|(_, w)| !matches!(w, Waiter::Broadcast(b) if *b == id));
                    if owed.is_empty() {
                        self.owed.remove(slot);
                    }
                }
            }
        }
        let Owner::Local(cluster) = state.owner else {
            return;
        };
        let (remote, remote_expected) = match cluster {
            Some(c) => {
                self.by_request.remove(&c.request_id);
                (c.replies, c.clients)
            }
            None => (Vec::new(), 0),
        };
        events.extend([Event::BroadcastAck {
            ack: BroadcastAckHandle(id),
            replies: state.replies,
            remote,
            expected: state.expected.saturating_add(remote_expected as usize),
            timed_out,
        }]);
    }

    /// Pending waits and timers: for leak checks.
    pub(crate) fn len(&self) -> usize {
        self.single.len() + self.broadcast.len()
    }

    /// Timer entries held.
    pub(crate) fn timer_count(&self) -> usize {
        self.due.len()
    }

    /// Checks the table against the live sockets; for tests and fuzzing.
    pub(crate) fn check_invariants(
        &self,
        live: impl Fn(SocketHandle) -> bool,
        slot_live: impl Fn(u32) -> bool,
    ) -> Result<(), String> {
        for (&id, &(socket, ack_id)) in &self.single {
            if !live(socket) {
                return Err(format!("pending ack {id} of a gone socket"));
            }
            let recorded = self.owed.get(&socket.slot).is_some_and(|owed| {
                owed.iter()
                    .any(|(a, w)| *a == ack_id && matches!(w, Waiter::Single(h) if h.0 == id))
            });
            if !recorded {
                return Err(format!("pending ack {id} not recorded on its socket"));
            }
        }
        for (&slot, owed) in &self.owed {
            if owed.is_empty() || !slot_live(slot) {
                return Err(format!("acks kept for gone socket slot {slot}"));
            }
            for (_, waiter) in owed {
                let waited = match waiter {
                    Waiter::Single(h) => self.single.contains_key(&h.0),
                    Waiter::Broadcast(b) => self.broadcast.contains_key(b),
                };
                if !waited {
                    return Err(format!("socket slot {slot} keeps an ack nobody waits for"));
                }
            }
        }
        Ok(())
    }
}
