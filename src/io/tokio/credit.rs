//! A connection's input credit: how many events, and how many bytes of them, may be read from
//! it and not yet handled ([`Options::socket_queue`](super::Options) and
//! [`Options::socket_queue_bytes`](super::Options)). An event holds its part from the moment
//! it is read until its handler has finished.

use std::sync::Arc;
use tokio::sync::Semaphore;

/// The credit of one connection: one allocation per connection, permits given back by hand.
pub(crate) struct ConnCredit {
    events: Semaphore,
    bytes: Semaphore,
    max_events: u32,
    max_bytes: u32,
}

/// The part of its connection's credit one event holds; dropping it gives it back.
pub(crate) struct CreditPermit {
    credit: Arc<ConnCredit>,
    bytes: u32,
}

impl Drop for CreditPermit {
    fn drop(&mut self) {
        self.credit.events.add_permits(1);
        if self.bytes > 0 {
            self.credit.bytes.add_permits(self.bytes as usize);
        }
    }
}

impl ConnCredit {
    /// Bounds as validated by [`Options::validate`](super::Options::validate) (both within
    /// `1..=u32::MAX`).
    pub(crate) fn new(events: usize, bytes: usize) -> Arc<Self> {
        let max_events = u32::try_from(events).unwrap_or(u32::MAX).max(1);
        let max_bytes = u32::try_from(bytes).unwrap_or(u32::MAX).max(1);
        Arc::new(ConnCredit {
            events: Semaphore::new(max_events as usize),
            bytes: Semaphore::new(max_bytes as usize),
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
    pub(crate) async fn acquire(self: &Arc<Self>, len: usize) -> Option<CreditPermit> {
        self.events.acquire().await.ok()?.forget();
        // From here the event permit is ours: the guard gives it back if the bytes never come.
        let mut permit = CreditPermit {
            credit: self.clone(),
            bytes: 0,
        };
        let n = self.cost(len);
        if n > 0 {
            self.bytes.acquire_many(n).await.ok()?.forget();
            permit.bytes = n;
        }
        Some(permit)
    }

    /// Credit for one event of `len` bytes if there is some now.
    pub(crate) fn try_acquire(self: &Arc<Self>, len: usize) -> Option<CreditPermit> {
        self.events.try_acquire().ok()?.forget();
        let mut permit = CreditPermit {
            credit: self.clone(),
            bytes: 0,
        };
        let n = self.cost(len);
        if n > 0 {
            self.bytes.try_acquire_many(n).ok()?.forget();
            permit.bytes = n;
        }
        Some(permit)
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
