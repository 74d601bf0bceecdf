//! Deadline queues on the caller's clock, with arithmetic that cannot overflow.
//!
//! A duration too large to add to `now` (`Duration::MAX`, or anything past what `Instant` can
//! hold) means "never": no timer is set, rather than a panic or a wrapped deadline.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// `now + d`, or `None` when that is beyond what an `Instant` can hold: the timer never fires.
pub(crate) fn deadline(now: Instant, d: Duration) -> Option<Instant> {
    now.checked_add(d)
}

/// The earliest of several optional deadlines.
pub(crate) fn earliest(deadlines: impl IntoIterator<Item = Option<Instant>>) -> Option<Instant> {
    deadlines.into_iter().flatten().min()
}

/// Deadlines for one fixed duration: they come in the order they are pushed, so a FIFO
/// suffices (no heap). Entries are tagged by the caller so stale ones can be skipped.
#[derive(Debug)]
pub(crate) struct Fifo<T> {
    after: Duration,
    queue: VecDeque<(Instant, T)>,
}

impl<T: Copy> Fifo<T> {
    pub(crate) fn new(after: Duration) -> Self {
        Fifo {
            after,
            queue: VecDeque::new(),
        }
    }

    /// Schedules `tag` at `from + after`; nothing when that never comes.
    pub(crate) fn push(&mut self, from: Instant, tag: T) {
        if let Some(at) = deadline(from, self.after) {
            self.queue.push_back((at, tag));
        }
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.queue.front().map(|e| e.0)
    }

    /// The next entry due at `now`, with its deadline.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, T)> {
        if self.queue.front()?.0 <= now {
            self.queue.pop_front()
        } else {
            None
        }
    }

    /// Entries held, stale ones included.
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Drops entries `live` says are stale, so a queue whose targets are gone holds nothing.
    pub(crate) fn retain(&mut self, mut live: impl FnMut(&T) -> bool) {
        self.queue.retain(|(_, t)| live(t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_durations_mean_never() {
        let now = Instant::now();
        assert_eq!(deadline(now, Duration::MAX), None);
        let mut f = Fifo::new(Duration::MAX);
        f.push(now, 1u8);
        assert_eq!(f.next(), None);
        assert_eq!(f.pop_due(now), None);
    }

    #[test]
    fn fifo_order() {
        let now = Instant::now();
        let mut f = Fifo::new(Duration::from_secs(1));
        f.push(now, 1u8);
        f.push(now + Duration::from_millis(10), 2);
        assert_eq!(f.pop_due(now), None);
        let later = now + Duration::from_secs(2);
        assert_eq!(f.pop_due(later).map(|e| e.1), Some(1));
        assert_eq!(f.pop_due(later).map(|e| e.1), Some(2));
        assert_eq!(f.len(), 0);
    }
}
