//! A socket's room changes, each numbered by the log position it happened before, so that a
//! replay tests every logged packet against the rooms the socket had **when the packet was
//! sent**, not when it dropped. (The reference tests against the rooms at the drop: a socket
//! that joined a room after a broadcast to it gets that broadcast replayed, one that left
//! after a broadcast it missed does not get it.)

use crate::Str;
use std::collections::VecDeque;

/// Most changes kept per socket; past it the oldest go, and replays from before them are no
/// longer exact (a fresh socket instead).
const MAX_CHANGES: usize = 32;

/// One change: before log entry `at`, the socket joined (`true`) or left `room`.
type Change = (u64, Str, bool);

/// The changes of one socket since the oldest packet a replay may need.
#[derive(Debug, Default)]
pub(crate) struct History {
    changes: VecDeque<Change>,
    /// Replays of entries from here on are exact.
    exact_from: u64,
}

impl History {
    /// Records a change before entry `at`; `first` is the oldest entry still logged (changes
    /// no replay can need are dropped).
    pub(crate) fn record(&mut self, at: u64, room: Str, joined: bool, first: u64) {
        while self.changes.front().is_some_and(|c| c.0 <= first) {
            self.changes.pop_front();
        }
        // Before the oldest entry kept (an empty log): it applies to every entry a replay can
        // hold, so no replay needs it.
        if at <= first {
            return;
        }
        // A join and a leave of one room before the same entry cancel out: no packet saw them.
        if let Some(i) = self.changes.iter().rposition(|c| c.0 == at && c.1 == room) {
            self.changes.remove(i);
            return;
        }
        self.changes.push_back((at, room, joined));
        if self.changes.len() > MAX_CHANGES {
            if let Some((at, _, _)) = self.changes.pop_front() {
                self.exact_from = self.exact_from.max(at);
            }
        }
    }

    /// Whether the rooms at every entry after `after` are known.
    pub(crate) fn exact_after(&self, after: u64) -> bool {
        after.saturating_add(1) >= self.exact_from
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// The rooms of a socket entry by entry, walking forward from an offset.
pub(crate) struct Timeline<'h> {
    rooms: Vec<Str>,
    later: Vec<&'h Change>,
    next: usize,
}

impl<'h> Timeline<'h> {
    /// Starts from the rooms right after entry `after`, given the rooms `now` and the changes
    /// since.
    pub(crate) fn new(now: &[Str], history: &'h History, after: u64) -> Self {
        let mut rooms = now.to_vec();
        let later: Vec<&Change> = history.changes.iter().filter(|c| c.0 > after).collect();
        for (_, room, joined) in later.iter().rev() {
            if *joined {
                rooms.retain(|r| r != room);
            } else {
                rooms.push(room.clone());
            }
        }
        Timeline {
            rooms,
            later,
            next: 0,
        }
    }

    /// The rooms when entry `seq` was sent (entries asked in increasing order).
    pub(crate) fn at(&mut self, seq: u64) -> &[Str] {
        while let Some((at, room, joined)) = self.later.get(self.next).copied() {
            if *at > seq {
                break;
            }
            if *joined {
                self.rooms.push(room.clone());
            } else {
                self.rooms.retain(|r| r != room);
            }
            self.next += 1;
        }
        &self.rooms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Str {
        Str::from(x)
    }

    #[test]
    fn rooms_are_rebuilt_as_they_were_at_each_entry() {
        let mut h = History::default();
        // Before entry 3 joined r1; before 5 left r0; before 7 joined r2.
        h.record(3, s("r1"), true, 0);
        h.record(5, s("r0"), false, 0);
        h.record(7, s("r2"), true, 0);
        let now = [s("me"), s("r1"), s("r2")];
        let mut t = Timeline::new(&now, &h, 1);
        let mut at = |seq| {
            let mut v: Vec<String> = t.at(seq).iter().map(|r| r.to_string()).collect();
            v.sort();
            v
        };
        assert_eq!(at(2), ["me", "r0"]);
        assert_eq!(at(3), ["me", "r0", "r1"]);
        assert_eq!(at(5), ["me", "r1"]);
        assert_eq!(at(8), ["me", "r1", "r2"]);
    }

    #[test]
    fn changes_cancel_and_are_bounded() {
        let mut h = History::default();
        h.record(4, s("r"), true, 0);
        h.record(4, s("r"), false, 0);
        assert!(h.is_empty());
        // With nothing logged after it, a change needs no record.
        h.record(9, s("r"), true, 9);
        assert!(h.is_empty());
        for i in 0..(MAX_CHANGES as u64 + 2) {
            h.record(10 + i, s("r"), i % 2 == 0, 0);
        }
        // The changes before entries 10 and 11 are gone: replays from entry 11 on are exact.
        assert!(!h.exact_after(9));
        assert!(h.exact_after(10));
        // Changes before the oldest logged entry are let go.
        h.record(100, s("q"), true, 99);
        assert_eq!(h.changes.len(), 1);
    }
}
