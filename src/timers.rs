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
///
/// Deadlines are kept as nanoseconds since the first one pushed (8 bytes, not an `Instant`'s
/// 16): a server holds one entry per connection in several of these. A deadline before that
/// epoch (a caller's clock that went backwards) counts as the epoch itself: due at once.
#[derive(Debug)]
pub(crate) struct Fifo<T> {
    after: Duration,
    epoch: Option<Instant>,
    queue: VecDeque<(u64, T)>,
}

impl<T: Copy> Fifo<T> {
    pub(crate) fn new(after: Duration) -> Self {
        Fifo {
            after,
            epoch: None,
            queue: VecDeque::new(),
        }
    }

    fn offset(epoch: Instant, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Schedules `tag` at `from + after`; nothing when that never comes.
    pub(crate) fn push(&mut self, from: Instant, tag: T) {
        if let Some(at) = deadline(from, self.after) {
            let epoch = *self.epoch.get_or_insert(from);
            self.queue.push_back((Self::offset(epoch, at), tag));
        }
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        let (off, _) = self.queue.front()?;
        self.epoch?.checked_add(Duration::from_nanos(*off))
    }

    /// The next entry due at `now`, with its deadline.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, T)> {
        let epoch = self.epoch?;
        let (off, _) = self.queue.front()?;
        if *off > Self::offset(epoch, now) {
            return None;
        }
        let (off, tag) = self.queue.pop_front()?;
        Some((
            epoch.checked_add(Duration::from_nanos(off)).unwrap_or(now),
            tag,
        ))
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

    #[test]
    fn deadlines_come_back_exactly() {
        let now = Instant::now();
        let mut f = Fifo::new(Duration::from_millis(25_000));
        f.push(now, 1u8);
        f.push(now + Duration::from_nanos(7), 2);
        assert_eq!(f.next(), Some(now + Duration::from_millis(25_000)));
        let due = now + Duration::from_millis(25_000);
        assert_eq!(f.pop_due(due), Some((due, 1)));
        assert_eq!(f.pop_due(due), None);
        let due = due + Duration::from_nanos(7);
        assert_eq!(f.pop_due(due), Some((due, 2)));
        // A clock that went backwards: due at once, not never.
        f.push(now, 3);
        f.push(now.checked_sub(Duration::from_secs(60)).unwrap_or(now), 4);
        let later = now + Duration::from_secs(30);
        assert_eq!(f.pop_due(later).map(|e| e.1), Some(3));
        assert_eq!(f.pop_due(later).map(|e| e.1), Some(4));
    }
}
