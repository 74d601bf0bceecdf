//! The one ack table: every answer the server waits for, to single emits and to broadcasts,
//! with their timeouts.
//!
//! Only sockets that owe an answer have an entry: an idle socket costs nothing here.

use super::event::{AckError, AckHandle, BroadcastAckHandle, Event};
use crate::handle::SocketHandle;
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

#[derive(Debug)]
struct BroadcastWait {
    /// Sockets the broadcast reached.
    expected: usize,
    /// Of those, the ones still connected: answers can only come from them.
    answerable: usize,
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
        events: &mut impl Extend<Event>,
    ) -> BroadcastAckHandle {
        let handle = BroadcastAckHandle(self.next());
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
                expected: len,
                answerable: len,
                replies: Vec::new(),
                recipients,
            },
        );
        if len == 0 {
            self.finish_broadcast(handle.0, false, events);
        } else if let Some(at) = timeout.and_then(|t| deadline(now, t)) {
            self.due.push(Reverse((at, Timer::Broadcast(handle.0))));
        }
        handle
    }

    /// An ACK packet from `socket`. Answers nobody waits for (late, or never asked) are
    /// ignored, as the reference does.
    pub(crate) fn answer(
        &mut self,
        socket: SocketHandle,
        id: u64,
        data: Payload,
        events: &mut impl Extend<Event>,
    ) {
        let Some(waiter) = self.take(socket.slot, id) else {
            return;
        };
        match waiter {
            Waiter::Single(ack) => {
                self.single.remove(&ack.0);
                events.extend([Event::Ack {
                    ack,
                    socket,
                    result: Ok(data),
                }]);
            }
            Waiter::Broadcast(b) => self.broadcast_progress(b, events, |state| {
                state.replies.push((socket, data));
            }),
        }
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
            if state.replies.len() >= state.answerable {
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
        if state.replies.len() < state.recipients.len() {
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
        events.extend([Event::BroadcastAck {
            ack: BroadcastAckHandle(id),
            replies: state.replies,
            expected: state.expected,
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
