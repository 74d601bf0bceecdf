//! Where ids come from: an injectable source of random bytes.

use base64::Engine as _;

/// A source of random bytes for session and socket ids.
///
/// The default, [`OsRandom`], asks the operating system. Tests inject [`SeededRandom`] so a
/// whole scenario replays identically.
pub trait RandomSource {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

/// Random bytes from the operating system (`getrandom`).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        // Failure means the OS has no entropy source at all; ids must still be unique, so fall
        // back to a process-local generator seeded from the address space layout and time.
        if getrandom::fill(buf).is_err() {
            let seed = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
                ^ (buf.as_ptr() as u64);
            SeededRandom::new(seed).fill(buf);
        }
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
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// A fresh 20-character URL-safe id from 15 random bytes, the shape of the reference's ids.
pub(crate) fn new_id(rng: &mut dyn RandomSource) -> String {
    let mut raw = [0u8; 15];
    rng.fill(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}
