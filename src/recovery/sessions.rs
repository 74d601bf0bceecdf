//! The sessions of dropped sockets, by private id (`pid`): what a recovered socket gets back.
//! Bounded by count and bytes, expiring on the virtual clock, oldest evicted first; taking a
//! session removes it, so a session restores once.

use crate::handle::NamespaceId;
use crate::id::Sid;
use crate::Str;
use ahash::AHashMap;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A dropped socket, as it was.
#[derive(Debug)]
pub(crate) struct Session<D> {
    pub(crate) nsp: NamespaceId,
    pub(crate) sid: Sid,
    pub(crate) pid: Sid,
    /// Its rooms, own id first.
    pub(crate) rooms: Vec<Str>,
    pub(crate) data: D,
    /// Its room changes, to tell its rooms at each missed packet.
    pub(crate) history: super::membership::History,
    /// When it was stored.
    pub(crate) at: Instant,
}

impl<D> Session<D> {
    fn bytes(&self) -> usize {
        size_of::<Self>()
            + self
                .rooms
                .iter()
                .map(|r| r.len() + size_of::<Str>())
                .sum::<usize>()
    }
}

/// The store.
#[derive(Debug)]
pub(crate) struct Sessions<D> {
    by_pid: AHashMap<Sid, (Session<D>, usize)>,
    /// Stored sessions, oldest first, with when they were stored: stale after a take, checked
    /// on the way out.
    order: VecDeque<(Instant, Sid)>,
    bytes: usize,
    max_sessions: usize,
    max_bytes: usize,
    keep: Duration,
    evicted: u64,
}

impl<D> Sessions<D> {
    pub(crate) fn new(max_sessions: usize, max_bytes: usize, keep: Duration) -> Self {
        Sessions {
            by_pid: AHashMap::default(),
            order: VecDeque::new(),
            bytes: 0,
            max_sessions,
            max_bytes,
            keep,
            evicted: 0,
        }
    }

    /// Stores a session, evicting the oldest past the bounds.
    pub(crate) fn store(&mut self, session: Session<D>) {
        self.expire(session.at);
        let bytes = session.bytes();
        let (at, pid) = (session.at, session.pid);
        if let Some((_, old)) = self.by_pid.insert(pid, (session, bytes)) {
            self.bytes -= old;
        }
        self.bytes += bytes;
        self.order.push_back((at, pid));
        while self.by_pid.len() > self.max_sessions
            || (self.bytes > self.max_bytes && self.by_pid.len() > 1)
        {
            if self.pop_oldest().is_some() {
                self.evicted += 1;
            }
        }
        // Takes leave stale entries in `order`: keep it within a constant of the live ones.
        if self.order.len() > 2 * self.by_pid.len() + 64 {
            let live = &self.by_pid;
            self.order
                .retain(|(at, pid)| live.get(pid).is_some_and(|(s, _)| s.at == *at));
        }
    }

    /// Removes the oldest live session.
    fn pop_oldest(&mut self) -> Option<Session<D>> {
        while let Some((at, pid)) = self.order.pop_front() {
            if self.by_pid.get(&pid).is_some_and(|(s, _)| s.at == at) {
                return self.remove(&pid);
            }
        }
        None
    }

    fn remove(&mut self, pid: &Sid) -> Option<Session<D>> {
        let (s, bytes) = self.by_pid.remove(pid)?;
        self.bytes -= bytes;
        Some(s)
    }

    /// Takes the session of `pid` in `nsp`, if it is there and not expired at `now`. A pid of
    /// another namespace is left alone.
    pub(crate) fn take(&mut self, now: Instant, pid: &Sid, nsp: NamespaceId) -> Option<Session<D>> {
        self.expire(now);
        if self.by_pid.get(pid)?.0.nsp != nsp {
            return None;
        }
        self.remove(pid)
    }

    /// Drops the sessions stored longer ago than the longest disconnection recovered.
    pub(crate) fn expire(&mut self, now: Instant) {
        while let Some(&(at, pid)) = self.order.front() {
            if at.checked_add(self.keep).is_some_and(|t| t <= now) {
                self.order.pop_front();
                if self.by_pid.get(&pid).is_some_and(|(s, _)| s.at == at) {
                    self.remove(&pid);
                }
            } else {
                break;
            }
        }
    }

    /// When the oldest session expires.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.order.front()?.0.checked_add(self.keep)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_pid.len()
    }

    /// Entries of the expiry queue, stale ones included (for leak checks).
    pub(crate) fn queued(&self) -> usize {
        self.order.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn evicted(&self) -> u64 {
        self.evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SeededRandom;

    fn session(rng: &mut SeededRandom, at: Instant, nsp: u32) -> Session<u32> {
        let sid = Sid::random(rng).unwrap();
        Session {
            nsp: NamespaceId::test(nsp),
            sid,
            pid: Sid::random(rng).unwrap(),
            rooms: vec![sid.to_str(), Str::from("room")],
            data: 7,
            history: Default::default(),
            at,
        }
    }

    #[test]
    fn a_session_is_taken_once_in_its_namespace_and_expires() {
        let rng = &mut SeededRandom::new(3);
        let t = Instant::now();
        let keep = Duration::from_secs(10);
        let mut store = Sessions::new(10, 1 << 20, keep);
        let s = session(rng, t, 0);
        let pid = s.pid;
        store.store(s);
        assert!(store.take(t, &pid, NamespaceId::test(1)).is_none());
        let back = store.take(t, &pid, NamespaceId::test(0)).unwrap();
        assert_eq!(back.data, 7);
        assert!(store.take(t, &pid, NamespaceId::test(0)).is_none());

        let s = session(rng, t, 0);
        let pid = s.pid;
        store.store(s);
        assert_eq!(store.next_expiry(), Some(t + keep));
        assert!(store.take(t + keep, &pid, NamespaceId::test(0)).is_none());
        assert_eq!((store.len(), store.bytes(), store.evicted()), (0, 0, 0));
    }

    #[test]
    fn bounds_evict_the_oldest() {
        let rng = &mut SeededRandom::new(4);
        let t = Instant::now();
        let mut store = Sessions::new(2, 1 << 20, Duration::from_secs(10));
        let a = session(rng, t, 0);
        let b = session(rng, t + Duration::from_millis(1), 0);
        let c = session(rng, t + Duration::from_millis(2), 0);
        let (pa, pb, pc) = (a.pid, b.pid, c.pid);
        store.store(a);
        store.store(b);
        assert_eq!(store.len(), 2);
        store.store(c);
        assert_eq!((store.len(), store.evicted()), (2, 1));
        let now = t + Duration::from_millis(3);
        assert!(store.take(now, &pa, NamespaceId::test(0)).is_none());
        assert!(store.take(now, &pb, NamespaceId::test(0)).is_some());
        assert!(store.take(now, &pc, NamespaceId::test(0)).is_some());

        let one = session(rng, t, 0).bytes();
        let mut store = Sessions::new(100, 2 * one, Duration::from_secs(10));
        store.store(session(rng, t, 0));
        store.store(session(rng, t, 0));
        assert_eq!((store.len(), store.bytes()), (2, 2 * one));
        store.store(session(rng, t, 0));
        assert_eq!((store.len(), store.evicted()), (2, 1));
    }

    #[test]
    fn stale_queue_entries_stay_bounded() {
        let rng = &mut SeededRandom::new(5);
        let t = Instant::now();
        let mut store = Sessions::new(100, 1 << 20, Duration::from_secs(10));
        for _ in 0..1000 {
            let s = session(rng, t, 0);
            let pid = s.pid;
            store.store(s);
            assert!(store.take(t, &pid, NamespaceId::test(0)).is_some());
        }
        assert!(store.queued() <= 64 + 1, "{}", store.queued());
    }
}
