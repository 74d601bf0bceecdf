//! [`Slots`]: the one allocator of dense ids (connections, sockets), with generations.
//!
//! A record lives in a slot; its public handle is the slot plus the slot's generation. When the
//! record goes, its slot is reused by a later one with a new generation, so a stale handle is
//! recognised and refused instead of reaching the newcomer.
//!
//! The generation is 32 bits and its low bit says whether the slot is occupied: a slot can be
//! reused about two billion times. A slot whose generation would wrap is retired (never reused)
//! rather than wrapped, so a stale handle can never match a later record, however long the
//! server runs; a retired slot costs one record's memory per two billion reuses.

use crate::slab::Slab;
use std::ops::{Index, IndexMut};

/// A slot and the generation it had when the handle was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Key {
    pub(crate) slot: u32,
    pub(crate) gen: u32,
}

#[derive(Debug)]
struct Entry<T> {
    /// Odd while occupied, even while vacant.
    gen: u32,
    /// A vacant slot keeps its last record until reused: clearing it would cost a write per
    /// removal and save nothing, the memory being kept for the next record anyway.
    value: T,
}

/// Records indexed by slot, with free-slot reuse and generation checks.
#[derive(Debug)]
pub(crate) struct Slots<T> {
    entries: Slab<Entry<T>>,
    free: Vec<u32>,
    live: usize,
    /// Most slots ever allocated (ids must fit the handle types of the caller).
    max: u32,
}

impl<T> Slots<T> {
    /// An empty table of at most `max` slots.
    pub(crate) fn with_max(max: u32) -> Self {
        Slots {
            entries: Slab::default(),
            free: Vec::new(),
            live: 0,
            max,
        }
    }

    /// Number of occupied slots.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Number of slots ever allocated (occupied, vacant or retired): the bound of slot indexes.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Puts a record in a free slot (or a new one); `make` gets the record's key. `None` when
    /// every slot is taken.
    pub(crate) fn insert(&mut self, make: impl FnOnce(Key) -> T) -> Option<Key> {
        if let Some(slot) = self.free.pop() {
            let e = &mut self.entries[slot as usize];
            e.gen += 1;
            let key = Key { slot, gen: e.gen };
            e.value = make(key);
            self.live += 1;
            return Some(key);
        }
        if self.entries.len() >= self.max as usize {
            return None;
        }
        let key = Key {
            slot: self.entries.len() as u32,
            gen: 1,
        };
        self.entries.push(Entry {
            gen: 1,
            value: make(key),
        });
        self.live += 1;
        Some(key)
    }

    /// Frees the slot of `key`. Returns false (and does nothing) if the key is stale.
    pub(crate) fn remove(&mut self, key: Key) -> bool {
        let Some(e) = self.entries.get_mut(key.slot as usize) else {
            return false;
        };
        if e.gen != key.gen || e.gen & 1 == 0 {
            return false;
        }
        e.gen += 1;
        self.live -= 1;
        // The next occupant would be gen + 1; retire the slot if that cannot be told apart.
        if e.gen < u32::MAX - 1 {
            self.free.push(key.slot);
        }
        true
    }

    /// The record of `key`, if it is still the one in its slot.
    pub(crate) fn get(&self, key: Key) -> Option<&T> {
        self.entries
            .get(key.slot as usize)
            .filter(|e| e.gen == key.gen && e.gen & 1 == 1)
            .map(|e| &e.value)
    }

    /// The record of `key`, mutably, if it is still the one in its slot.
    pub(crate) fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        self.entries
            .get_mut(key.slot as usize)
            .filter(|e| e.gen == key.gen && e.gen & 1 == 1)
            .map(|e| &mut e.value)
    }

    /// The key of the record now in `slot`, if the slot is occupied.
    pub(crate) fn key_at(&self, slot: u32) -> Option<Key> {
        self.entries
            .get(slot as usize)
            .filter(|e| e.gen & 1 == 1)
            .map(|e| Key { slot, gen: e.gen })
    }

    /// The record in `slot`, whatever its generation, if occupied.
    pub(crate) fn at(&self, slot: u32) -> Option<&T> {
        self.entries
            .get(slot as usize)
            .filter(|e| e.gen & 1 == 1)
            .map(|e| &e.value)
    }

    /// The last record of `slot`, occupied or not: for reading ids back from an index.
    pub(crate) fn any_at(&self, slot: u32) -> &T {
        &self.entries[slot as usize].value
    }

    /// Every occupied slot with its record.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Key, &T)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.gen & 1 == 1)
            .map(|(slot, e)| {
                (
                    Key {
                        slot: slot as u32,
                        gen: e.gen,
                    },
                    &e.value,
                )
            })
    }

    /// Sets a slot's generation, to test behaviour near the wrap point without billions of
    /// reuses.
    #[cfg(test)]
    fn force_gen(&mut self, slot: u32, gen: u32) {
        self.entries[slot as usize].gen = gen;
    }
}

/// Direct access by slot, for the callers' own indexes, which only hold occupied slots.
impl<T> Index<usize> for Slots<T> {
    type Output = T;
    fn index(&self, slot: usize) -> &T {
        &self.entries[slot].value
    }
}

impl<T> IndexMut<usize> for Slots<T> {
    fn index_mut(&mut self, slot: usize) -> &mut T {
        &mut self.entries[slot].value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_keys_never_reach_a_reused_slot() {
        let mut s = Slots::with_max(16);
        let first = s.insert(|_| 0u32).unwrap();
        let mut stale = vec![first];
        assert!(s.remove(first));
        // Far past the 256 reuses after which an 8-bit generation wrapped.
        for i in 1..1_000u32 {
            let k = s.insert(|_| i).unwrap();
            assert_eq!(k.slot, first.slot, "one slot, reused");
            for old in &stale {
                assert_eq!(s.get(*old), None, "stale key {old:?} refused at reuse {i}");
                assert!(!s.remove(*old));
            }
            assert_eq!(s.get(k), Some(&i));
            stale.push(k);
            assert!(s.remove(k));
        }
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn a_slot_whose_generation_would_wrap_is_retired() {
        let mut s = Slots::with_max(16);
        let k = s.insert(|_| 1u8).unwrap();
        s.force_gen(k.slot, u32::MAX - 2);
        let k = Key {
            slot: k.slot,
            gen: u32::MAX - 2,
        };
        assert!(s.remove(k));
        // The slot is not reused: the next record gets a fresh one.
        let next = s.insert(|_| 2u8).unwrap();
        assert_ne!(next.slot, k.slot);
        assert_eq!(s.get(k), None);
        assert_eq!(s.capacity(), 2);
    }

    #[test]
    fn full_table_refuses() {
        let mut s = Slots::with_max(2);
        let a = s.insert(|_| ()).unwrap();
        s.insert(|_| ()).unwrap();
        assert_eq!(s.insert(|_| ()), None);
        s.remove(a);
        assert!(s.insert(|_| ()).is_some());
    }

    #[test]
    fn keys_and_iteration() {
        let mut s = Slots::with_max(8);
        let a = s.insert(|k| k.slot).unwrap();
        let b = s.insert(|k| k.slot).unwrap();
        s.remove(a);
        assert_eq!(s.key_at(b.slot), Some(b));
        assert_eq!(s.key_at(a.slot), None);
        assert_eq!(s.iter().map(|(k, v)| (k, *v)).collect::<Vec<_>>(), [(b, 1)]);
        assert_eq!(*s.any_at(a.slot), 0);
    }
}
