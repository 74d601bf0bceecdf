//! [`Slab`]: a growable table indexed by slot, stored in fixed-size chunks.
//!
//! A `Vec` doubles when it grows, so a table of 100,000 records holds room for 131,072: a
//! third more memory than used, for records the core keeps one of per socket and per
//! connection. Chunks of a fixed size grow one at a time (at most one chunk partly unused) and
//! never move what they hold.

use std::ops::{Index, IndexMut};

const CHUNK_BITS: u32 = 10;
const CHUNK: usize = 1 << CHUNK_BITS;

#[derive(Debug)]
pub(crate) struct Slab<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn push(&mut self, value: T) {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        if let Some(chunk) = self.chunks.last_mut() {
            chunk.push(value);
            self.len += 1;
        }
    }

    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i >> CHUNK_BITS)?.get(i & (CHUNK - 1))
    }

    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.chunks
            .get_mut(i >> CHUNK_BITS)?
            .get_mut(i & (CHUNK - 1))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flatten()
    }
}

impl<T> Index<usize> for Slab<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        &self.chunks[i >> CHUNK_BITS][i & (CHUNK - 1)]
    }
}

impl<T> IndexMut<usize> for Slab<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.chunks[i >> CHUNK_BITS][i & (CHUNK - 1)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_across_chunks() {
        let mut s = Slab::default();
        for i in 0..(3 * CHUNK + 5) {
            s.push(i);
        }
        assert_eq!(s.len(), 3 * CHUNK + 5);
        assert_eq!(s[CHUNK], CHUNK);
        assert_eq!(s.get(3 * CHUNK + 4), Some(&(3 * CHUNK + 4)));
        assert_eq!(s.get(3 * CHUNK + 5), None);
        s[7] = 70;
        assert_eq!(s.iter().nth(7), Some(&70));
        assert_eq!(s.iter().count(), s.len());
    }
}
