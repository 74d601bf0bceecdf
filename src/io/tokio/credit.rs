//! A connection's input credit: how many events, and how many bytes of them, may be read from
//! it and not yet handled ([`Options::socket_queue`](super::Options) and
//! [`Options::socket_queue_bytes`](super::Options)). An event holds its part from the moment
//! it is read until its handler has finished.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The credit of one connection.
pub(crate) struct ConnCredit {
    events: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    max_events: u32,
    max_bytes: u32,
}

/// The part of its connection's credit one event holds; dropping it gives it back.
pub(crate) struct CreditPermit {
    _events: OwnedSemaphorePermit,
    _bytes: Option<OwnedSemaphorePermit>,
}

impl ConnCredit {
    /// Bounds as validated by [`Options::validate`](super::Options::validate) (both within
    /// `1..=u32::MAX`).
    pub(crate) fn new(events: usize, bytes: usize) -> Arc<Self> {
        let max_events = u32::try_from(events).unwrap_or(u32::MAX).max(1);
        let max_bytes = u32::try_from(bytes).unwrap_or(u32::MAX).max(1);
        Arc::new(ConnCredit {
            events: Arc::new(Semaphore::new(max_events as usize)),
            bytes: Arc::new(Semaphore::new(max_bytes as usize)),
            max_events,
            max_bytes,
        })
    }

    /// What `len` bytes cost: a message larger than the whole byte credit waits until all of
    /// it is free, then takes it all.
    fn cost(&self, len: usize) -> u32 {
        u32::try_from(len).unwrap_or(u32::MAX).min(self.max_bytes)
    }

    /// Waits for credit for one event of `len` bytes. `None` once the connection is closed.
    pub(crate) async fn acquire(&self, len: usize) -> Option<CreditPermit> {
        let events = self.events.clone().acquire_owned().await.ok()?;
        let bytes = match self.cost(len) {
            0 => None,
            n => Some(self.bytes.clone().acquire_many_owned(n).await.ok()?),
        };
        Some(CreditPermit {
            _events: events,
            _bytes: bytes,
        })
    }

    /// Credit for one event of `len` bytes if there is some now.
    pub(crate) fn try_acquire(&self, len: usize) -> Option<CreditPermit> {
        let events = self.events.clone().try_acquire_owned().ok()?;
        let bytes = match self.cost(len) {
            0 => None,
            n => Some(self.bytes.clone().try_acquire_many_owned(n).ok()?),
        };
        Some(CreditPermit {
            _events: events,
            _bytes: bytes,
        })
    }

    /// Waits until `events` events of `bytes` bytes in all would fit (each capped at the
    /// whole credit), without taking anything: for what was queued past the credit.
    pub(crate) async fn wait_room(&self, events: u32, bytes: usize) {
        let e = self.events.acquire_many(events.min(self.max_events)).await;
        let b = self.bytes.acquire_many(self.cost(bytes)).await;
        drop((e, b));
    }

    /// Ends every wait on this credit: its connection is gone.
    pub(crate) fn close(&self) {
        self.events.close();
        self.bytes.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_and_bytes_both_bound() {
        let c = ConnCredit::new(3, 100);
        let a = c.try_acquire(60).unwrap();
        assert!(c.try_acquire(60).is_none(), "bytes exhausted");
        let b = c.try_acquire(40).unwrap();
        let z = c.try_acquire(0).unwrap();
        assert!(c.try_acquire(0).is_none(), "events exhausted");
        drop((a, b, z));
        // Larger than everything: takes it all, once it is all free.
        let big = c.acquire(1_000).await.unwrap();
        assert!(c.try_acquire(1).is_none());
        drop(big);
        c.wait_room(10, 10_000).await;
        c.close();
        assert!(c.acquire(1).await.is_none());
    }
}
