//! The packet log: every event a client may have to be replayed (broadcasts and emits to one
//! socket, neither volatile nor with an ack), in order, each with the selection it was sent
//! to. Entries are numbered without gaps, so an offset finds its place in O(1) and a replay
//! knows whether anything after the offset was dropped.

use crate::engine::Frame;
use crate::handle::NamespaceId;
use crate::Str;
use smallvec::SmallVec;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One logged packet.
#[derive(Debug)]
pub(crate) struct Entry {
    at: Instant,
    nsp: NamespaceId,
    /// The selection's rooms (empty: the whole namespace) and excluded rooms, a sender
    /// excluded by its own id.
    rooms: Box<[Str]>,
    except: Box<[Str]>,
    /// The frames as sent: the text with the offset, then the attachments. They share their
    /// bytes with what was written.
    pub(crate) frames: SmallVec<[Frame; 2]>,
    bytes: usize,
}

impl Entry {
    pub(crate) fn new(
        at: Instant,
        nsp: NamespaceId,
        rooms: Box<[Str]>,
        except: Box<[Str]>,
        frames: SmallVec<[Frame; 2]>,
    ) -> Self {
        let strs = |v: &[Str]| v.iter().map(|s| s.len() + size_of::<Str>()).sum::<usize>();
        let payload: usize = frames
            .iter()
            .map(|f| match f {
                Frame::Text(t) => t.len(),
                Frame::Binary(b) => b.len(),
            })
            .sum();
        let bytes = size_of::<Entry>() + strs(&rooms) + strs(&except) + payload;
        Entry {
            at,
            nsp,
            rooms,
            except,
            frames,
            bytes,
        }
    }

    /// Whether a socket of `nsp` in `rooms` (its own id among them) was sent this packet: the
    /// reference's rule, the selection's rooms met (or none given) and no room excluded.
    pub(crate) fn reaches(&self, nsp: NamespaceId, rooms: &[Str]) -> bool {
        self.nsp == nsp
            && (self.rooms.is_empty() || self.rooms.iter().any(|r| rooms.contains(r)))
            && !self.except.iter().any(|r| rooms.contains(r))
    }
}

/// Why a replay cannot be complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gap {
    /// Packets after the offset were dropped (by age or by a bound).
    Evicted,
    /// The offset names no packet this log ever had.
    Unknown,
}

/// The log, bounded by packets, bytes and age; the oldest go first.
#[derive(Debug)]
pub(crate) struct Log {
    entries: VecDeque<Entry>,
    /// The number of `entries[0]` (of the next entry when empty).
    first: u64,
    bytes: usize,
    max_packets: usize,
    max_bytes: usize,
    keep: Duration,
    /// Entries dropped by a bound before their time.
    evicted: u64,
}

impl Log {
    pub(crate) fn new(max_packets: usize, max_bytes: usize, keep: Duration) -> Self {
        Log {
            entries: VecDeque::new(),
            first: 0,
            bytes: 0,
            max_packets,
            max_bytes,
            keep,
            evicted: 0,
        }
    }

    /// The number the next entry gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    /// Appends an entry (numbered [`next_seq`](Self::next_seq)), dropping the oldest past the
    /// bounds. An entry larger than the byte bound on its own is still kept, alone: the
    /// packet was sent, and a client that missed it must not be told its replay is complete.
    pub(crate) fn push(&mut self, entry: Entry) {
        self.expire(entry.at);
        self.bytes += entry.bytes;
        self.entries.push_back(entry);
        while self.entries.len() > self.max_packets
            || (self.bytes > self.max_bytes && self.entries.len() > 1)
        {
            self.pop();
            self.evicted += 1;
        }
    }

    fn pop(&mut self) {
        if let Some(e) = self.entries.pop_front() {
            self.bytes -= e.bytes;
            self.first += 1;
        }
    }

    /// Drops the entries older than the longest disconnection recovered.
    pub(crate) fn expire(&mut self, now: Instant) {
        while self
            .entries
            .front()
            .is_some_and(|e| e.at.checked_add(self.keep).is_some_and(|t| t <= now))
        {
            self.pop();
        }
    }

    /// When the oldest entry expires.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.entries.front()?.at.checked_add(self.keep)
    }

    /// Every entry after `seq` (the last one the client received), numbered, in order; `Err`
    /// if any entry after `seq` is gone, or `seq` was never logged.
    pub(crate) fn after(&self, seq: u64) -> Result<impl Iterator<Item = (u64, &Entry)>, Gap> {
        if seq >= self.next_seq() {
            return Err(Gap::Unknown);
        }
        // Complete when every entry after `seq` is still here.
        if seq.saturating_add(1) < self.first {
            return Err(Gap::Evicted);
        }
        let from = (seq + 1 - self.first) as usize;
        let first = self.first;
        Ok(self
            .entries
            .range(from..)
            .enumerate()
            .map(move |(i, e)| (first + (from + i) as u64, e)))
    }

    /// The entries after `seq` that reached a socket of `nsp` in `rooms` (rooms that did not
    /// change meanwhile).
    #[cfg(test)]
    fn missed<'a>(
        &'a self,
        seq: u64,
        nsp: NamespaceId,
        rooms: &'a [Str],
    ) -> Result<impl Iterator<Item = &'a Entry> + 'a, Gap> {
        Ok(self
            .after(seq)?
            .map(|(_, e)| e)
            .filter(move |e| e.reaches(nsp, rooms)))
    }

    /// The number of the oldest entry kept (of the next one when empty).
    pub(crate) fn first(&self) -> u64 {
        self.first
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
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

    fn nsp() -> NamespaceId {
        NamespaceId::test(0)
    }

    fn entry(at: Instant, rooms: &[&str], except: &[&str], text: &str) -> Entry {
        let strs = |v: &[&str]| v.iter().map(|s| Str::from(*s)).collect::<Box<[Str]>>();
        Entry::new(
            at,
            nsp(),
            strs(rooms),
            strs(except),
            SmallVec::from_iter([Frame::Text(Str::from(text))]),
        )
    }

    fn texts<'a>(it: impl Iterator<Item = &'a Entry>) -> Vec<String> {
        it.map(|e| match &e.frames[0] {
            Frame::Text(t) => t.to_string(),
            Frame::Binary(_) => String::new(),
        })
        .collect()
    }

    #[test]
    fn replays_what_matched_after_the_offset_in_order() {
        let t = Instant::now();
        let mut log = Log::new(100, 1 << 20, Duration::from_secs(60));
        log.push(entry(t, &[], &[], "a")); // 0
        log.push(entry(t, &["r1"], &[], "b")); // 1
        log.push(entry(t, &["r2"], &[], "c")); // 2
        log.push(entry(t, &[], &["r1"], "d")); // 3
        log.push(entry(t, &[], &["r3"], "e")); // 4
        log.push(entry(t, &["me"], &[], "f")); // 5
        let rooms = [Str::from("me"), Str::from("r1")];
        assert_eq!(
            texts(log.missed(0, nsp(), &rooms).unwrap()),
            ["b", "e", "f"]
        );
        assert_eq!(
            texts(log.missed(5, nsp(), &rooms).unwrap()),
            Vec::<String>::new()
        );
        assert_eq!(log.missed(6, nsp(), &rooms).err(), Some(Gap::Unknown));
        let other = NamespaceId::test(1);
        assert_eq!(log.missed(0, other, &rooms).unwrap().count(), 0);
    }

    #[test]
    fn bounds_evict_oldest_first_and_a_gap_is_never_a_replay() {
        let t = Instant::now();
        let mut log = Log::new(3, 1 << 20, Duration::from_secs(60));
        for i in 0..5 {
            log.push(entry(t, &[], &[], &i.to_string()));
        }
        assert_eq!((log.len(), log.evicted(), log.next_seq()), (3, 2, 5));
        // Entries 2, 3, 4 are left: after 1 is complete, after 0 is not (1 is gone).
        assert_eq!(texts(log.missed(1, nsp(), &[]).unwrap()), ["2", "3", "4"]);
        assert_eq!(log.missed(0, nsp(), &[]).err(), Some(Gap::Evicted));

        // Bytes: at the edge one more entry evicts one.
        let one = entry(t, &[], &[], "x").bytes;
        let mut log = Log::new(100, 2 * one, Duration::from_secs(60));
        log.push(entry(t, &[], &[], "x"));
        log.push(entry(t, &[], &[], "y"));
        assert_eq!((log.len(), log.bytes()), (2, 2 * one));
        log.push(entry(t, &[], &[], "z"));
        assert_eq!((log.len(), log.evicted()), (2, 1));
        // An entry over the bound alone is kept alone.
        log.push(entry(t, &[], &[], &"w".repeat(4 * one)));
        assert_eq!(log.len(), 1);
    }

    #[test]
    fn entries_expire_on_the_virtual_clock() {
        let t = Instant::now();
        let keep = Duration::from_secs(10);
        let mut log = Log::new(100, 1 << 20, keep);
        log.push(entry(t, &[], &[], "old"));
        log.push(entry(t + Duration::from_secs(5), &[], &[], "new"));
        assert_eq!(log.next_expiry(), Some(t + keep));
        log.expire(t + keep - Duration::from_millis(1));
        assert_eq!(log.len(), 2);
        log.expire(t + keep);
        assert_eq!(log.len(), 1);
        assert_eq!(log.evicted(), 0);
        // The offset's own packet may be gone: what matters is that nothing after it is
        // (a client whose last packet is old still recovers, unlike the reference, #5282).
        assert_eq!(texts(log.missed(0, nsp(), &[]).unwrap()), ["new"]);
        assert_eq!(
            texts(log.missed(1, nsp(), &[]).unwrap()),
            Vec::<String>::new()
        );
        log.expire(t + Duration::from_secs(15));
        assert_eq!(log.missed(0, nsp(), &[]).err(), Some(Gap::Evicted));
        assert_eq!(log.missed(1, nsp(), &[]).unwrap().count(), 0);
    }
}
