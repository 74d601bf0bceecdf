//! Ids: the injectable source of random bytes they come from, and their compact form.

use crate::Str;
use base64::Engine as _;

/// A source of random bytes for session and socket ids.
///
/// The default, [`OsRandom`], asks the operating system. Tests inject [`SeededRandom`] so a
/// whole scenario replays identically.
pub trait RandomSource {
    /// Fills `buf` with random bytes, or fails: then no id is made (ids are bearer tokens, so
    /// they never fall back to anything guessable).
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError>;
}

/// The source of randomness failed: no session or socket can be created until it works again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no randomness available for ids")]
pub struct RandomError;

/// Random bytes from the operating system (`getrandom`).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
        getrandom::fill(buf).map_err(|_| RandomError)
    }
}

/// A deterministic generator (xorshift64*), for tests and replays. Not for production ids.
#[derive(Debug, Clone)]
pub struct SeededRandom(u64);

impl SeededRandom {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Self {
        SeededRandom(seed | 1)
    }
}

impl RandomSource for SeededRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
        for chunk in buf.chunks_mut(8) {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}

/// A session or socket id: 20 URL-safe base64 characters from 15 random bytes, the shape of
/// the reference's ids. Held inline (no heap, no reference count) because the core keeps one
/// per socket and per connection.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct Sid([u8; 20]);

impl Sid {
    /// A fresh random id.
    pub(crate) fn random(rng: &mut dyn RandomSource) -> Result<Sid, RandomError> {
        let mut raw = [0u8; 15];
        rng.fill(&mut raw)?;
        let mut out = [0u8; 20];
        // 15 bytes encode to exactly 20 characters without padding.
        let _ = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_slice(raw, &mut out);
        Ok(Sid(out))
    }

    /// The id of `s`, if it has the shape of one.
    pub(crate) fn parse(s: &str) -> Option<Sid> {
        <[u8; 20]>::try_from(s.as_bytes()).ok().map(Sid)
    }

    pub(crate) fn as_str(&self) -> &str {
        // Always ASCII: built from base64 output or from a `&str` of 20 bytes.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub(crate) fn to_str(self) -> Str {
        Str::from(self.as_str())
    }
}

impl std::fmt::Debug for Sid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A hash index from ids to slots that stores only the slot (4 bytes an entry): the id itself
/// lives in the slot's own record, which `id_of` reads back to compare.
#[derive(Default)]
pub(crate) struct IdIndex {
    table: hashbrown::HashTable<u32>,
    hasher: ahash::RandomState,
}

impl std::fmt::Debug for IdIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdIndex({} ids)", self.table.len())
    }
}

impl IdIndex {
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn get(&self, id: &Sid, id_of: impl Fn(u32) -> Sid) -> Option<u32> {
        self.table
            .find(self.hasher.hash_one(id), |&slot| id_of(slot) == *id)
            .copied()
    }

    pub(crate) fn insert(&mut self, id: &Sid, slot: u32, id_of: impl Fn(u32) -> Sid) {
        let hasher = &self.hasher;
        self.table
            .insert_unique(hasher.hash_one(id), slot, |&s| hasher.hash_one(id_of(s)));
    }

    pub(crate) fn remove(&mut self, id: &Sid, id_of: impl Fn(u32) -> Sid) -> Option<u32> {
        match self
            .table
            .find_entry(self.hasher.hash_one(id), |&slot| id_of(slot) == *id)
        {
            Ok(e) => Some(e.remove().0),
            Err(_) => None,
        }
    }
}
