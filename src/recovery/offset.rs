//! Offsets: the string a recovering client sends back to name the last packet it received.
//!
//! The client treats an offset as opaque, and takes it from the last string argument of any
//! event, user strings included. So an offset carries this server's random tag: a user string
//! almost never parses as one, and another server's offsets (another node, an earlier run)
//! never do.

use crate::{RandomError, RandomSource};
use std::fmt::Write;

/// The tag of one log: `4` URL-safe characters then `.`; offsets are the tag and a sequence
/// number in hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tag([u8; 5]);

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl Default for Tag {
    fn default() -> Self {
        Tag(*b"rcst.")
    }
}

impl Tag {
    pub(crate) fn random(rng: &mut dyn RandomSource) -> Result<Tag, RandomError> {
        let mut raw = [0u8; 4];
        rng.fill(&mut raw)?;
        let mut t = [b'.'; 5];
        for (o, r) in t.iter_mut().zip(raw) {
            *o = ALPHABET[(r & 63) as usize];
        }
        Ok(Tag(t))
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The offset of packet `seq`.
    pub(crate) fn offset(&self, seq: u64) -> String {
        let mut s = String::with_capacity(5 + 16);
        s.push_str(self.as_str());
        let _ = write!(s, "{seq:x}");
        s
    }

    /// The sequence number an offset of this tag names.
    pub(crate) fn parse(&self, offset: &str) -> Option<u64> {
        let hex = offset.strip_prefix(self.as_str())?;
        if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        // Only lowercase digits are ours: one spelling per number.
        if hex.bytes().any(|b| b.is_ascii_uppercase()) || (hex.len() > 1 && hex.starts_with('0')) {
            return None;
        }
        u64::from_str_radix(hex, 16).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SeededRandom;

    #[test]
    fn offsets_round_trip_and_foreign_strings_do_not_parse() {
        let tag = Tag::random(&mut SeededRandom::new(1)).unwrap();
        let other = Tag::random(&mut SeededRandom::new(2)).unwrap();
        assert_ne!(tag, other);
        for seq in [0, 1, 15, 16, 0xdead_beef, u64::MAX] {
            let o = tag.offset(seq);
            assert_eq!(tag.parse(&o), Some(seq));
            assert_eq!(other.parse(&o), None);
        }
        let t = tag.as_str();
        for bad in [
            "",
            "hello",
            t,
            &format!("{t}g"),
            &format!("{t}0a"),
            &format!("{t}A"),
        ] {
            assert_eq!(tag.parse(bad), None, "{bad:?}");
        }
        assert_eq!(tag.parse(&format!("{t}{}", "f".repeat(17))), None);
    }
}
