//! RFC 6455 framing for the server side, sans-IO: the frames a server writes, and a decoder of
//! the frames a client sends.
//!
//! A server's frames are not masked, so a broadcast's frame, header included, is the same bytes
//! for every recipient: [`server_frame`] builds it once, and each connection writes the shared
//! buffer. The [`Decoder`] keeps nothing between reads but an incomplete frame or message, so an
//! idle connection holds no buffer at all.
//!
//! ```
//! use roomcast::io::websocket::{server_frame, Decoder, Incoming, OpCode};
//!
//! assert_eq!(&server_frame(OpCode::Text, b"4hi")[..], b"\x81\x034hi");
//!
//! // A masked client frame, delivered in two reads.
//! let key = [1, 2, 3, 4];
//! let mut frame = vec![0x81, 0x80 | 3];
//! frame.extend_from_slice(&key);
//! frame.extend(b"4hi".iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
//! let mut decoder = Decoder::new(1024);
//! let mut got = Vec::new();
//! decoder.decode(&frame[..4], |m| got.push(m)).unwrap();
//! assert!(got.is_empty());
//! decoder.decode(&frame[4..], |m| got.push(m)).unwrap();
//! assert!(matches!(&got[..], [Incoming::Text(t)] if t.as_str() == "4hi"));
//! ```

use crate::Str;
use bytes::Bytes;

/// The opcodes of RFC 6455 §5.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum OpCode {
    /// A message's later fragment.
    Continuation = 0x0,
    /// A text message (UTF-8).
    Text = 0x1,
    /// A binary message.
    Binary = 0x2,
    /// The closing handshake.
    Close = 0x8,
    /// A ping, answered with a pong of the same payload.
    Ping = 0x9,
    /// A pong.
    Pong = 0xA,
}

/// A whole unmasked frame (FIN set) of `payload`, header and payload in one buffer: what a
/// server writes, shareable by every connection it goes to.
pub fn server_frame(op: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(10 + payload.len());
    v.push(0x80 | op as u8);
    match payload.len() {
        n @ 0..=125 => v.push(n as u8),
        n @ 126..=0xFFFF => {
            v.push(126);
            v.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            v.push(127);
            v.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    v.extend_from_slice(payload);
    v
}

/// A close frame with `code` as its status (none: an empty payload, status 1005 at the peer).
pub fn close_frame(code: Option<u16>) -> Vec<u8> {
    match code {
        Some(c) => server_frame(OpCode::Close, &c.to_be_bytes()),
        None => server_frame(OpCode::Close, &[]),
    }
}

/// What a client sent, a whole message or a control frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A text message, checked to be UTF-8.
    Text(Str),
    /// A binary message.
    Binary(Bytes),
    /// A ping: the server answers with a pong of this payload.
    Ping(Bytes),
    /// A pong.
    Pong,
    /// The client closes, with its status code if it gave one: the server answers with a close
    /// frame and ends the connection.
    Close(Option<u16>),
}

/// Why a client's frames break RFC 6455: the connection fails, with
/// [`close_code`](Self::close_code) as the server's status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Every frame from a client must be masked (§5.1).
    #[error("a client frame is not masked")]
    Unmasked,
    /// A reserved bit is set and no extension was negotiated.
    #[error("reserved bits set without an extension")]
    Reserved,
    /// An opcode RFC 6455 reserves.
    #[error("reserved opcode {0:#x}")]
    Opcode(u8),
    /// A control frame that is fragmented or longer than 125 bytes.
    #[error("a control frame is fragmented or longer than 125 bytes")]
    Control,
    /// A continuation with no message begun, or a new message before the last one ended.
    #[error("a fragment out of sequence")]
    Fragmentation,
    /// A message (all its fragments) longer than the decoder's limit.
    #[error("a message of {0} bytes or more exceeds the limit")]
    TooLarge(u64),
    /// A text message that is not UTF-8.
    #[error("a text message is not UTF-8")]
    Utf8,
    /// A close frame with a 1-byte payload, an invalid status code or a reason not in UTF-8.
    #[error("an invalid close frame")]
    Close,
}

impl FrameError {
    /// The status code the server closes with (RFC 6455 §7.4.1).
    pub fn close_code(&self) -> u16 {
        match self {
            FrameError::TooLarge(_) => 1009,
            FrameError::Utf8 => 1007,
            _ => 1002,
        }
    }
}

/// A message being received in fragments.
#[derive(Debug)]
struct Fragmented {
    text: bool,
    data: Vec<u8>,
}

/// Decodes a client's frames (masked, as RFC 6455 requires), whole messages out. Fragments are
/// reassembled; control frames may come between them.
#[derive(Debug)]
pub struct Decoder {
    max_message: usize,
    /// The start of a frame a read ended inside of (empty between frames).
    partial: Vec<u8>,
    message: Option<Fragmented>,
}

impl Decoder {
    /// A decoder of messages up to `max_message` bytes (all fragments together).
    pub fn new(max_message: usize) -> Self {
        Decoder {
            max_message,
            partial: Vec::new(),
            message: None,
        }
    }

    /// Decodes every frame that `input` completes, after what earlier calls left, handing each
    /// message or control frame to `out` in order. An error ends the connection: the decoder
    /// must not be used after it.
    pub fn decode(
        &mut self,
        input: &[u8],
        mut out: impl FnMut(Incoming),
    ) -> Result<(), FrameError> {
        if self.partial.is_empty() {
            let used = self.frames(input, &mut out)?;
            self.partial.extend_from_slice(&input[used..]);
        } else {
            let mut buf = std::mem::take(&mut self.partial);
            buf.extend_from_slice(input);
            let used = self.frames(&buf, &mut out)?;
            buf.drain(..used);
            self.partial = buf;
        }
        if self.partial.is_empty() && self.partial.capacity() > 0 {
            // Between frames, nothing stays allocated.
            self.partial = Vec::new();
        }
        Ok(())
    }

    /// Whether a message or a frame is half received.
    pub fn is_idle(&self) -> bool {
        self.partial.is_empty() && self.message.is_none()
    }

    /// Decodes the whole frames at the start of `buf`; how many bytes they took.
    fn frames(&mut self, buf: &[u8], out: &mut impl FnMut(Incoming)) -> Result<usize, FrameError> {
        let mut at = 0;
        while let Some(n) = self.frame(&buf[at..], out)? {
            at += n;
        }
        Ok(at)
    }

    /// Decodes one frame from the start of `buf` if it is all there; its length.
    fn frame(
        &mut self,
        buf: &[u8],
        out: &mut impl FnMut(Incoming),
    ) -> Result<Option<usize>, FrameError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        if b0 & 0x70 != 0 {
            return Err(FrameError::Reserved);
        }
        if b1 & 0x80 == 0 {
            return Err(FrameError::Unmasked);
        }
        let fin = b0 & 0x80 != 0;
        let op = b0 & 0x0F;
        let control = op & 0x08 != 0;
        if !matches!(op, 0x0..=0x2 | 0x8..=0xA) {
            return Err(FrameError::Opcode(op));
        }
        let (len, len_bytes) = match b1 & 0x7F {
            126 => match buf.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 2),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => {
                    let mut a = [0; 8];
                    a.copy_from_slice(b);
                    (u64::from_be_bytes(a), 8)
                }
                None => return Ok(None),
            },
            n => (u64::from(n), 0),
        };
        if control && (!fin || len > 125) {
            return Err(FrameError::Control);
        }
        // Checked before the payload arrives: a frame that declares too much is refused at
        // its header, not after its bytes were buffered.
        let before = self.message.as_ref().map_or(0, |m| m.data.len() as u64);
        if !control && before.saturating_add(len) > self.max_message as u64 {
            return Err(FrameError::TooLarge(before.saturating_add(len)));
        }
        let header = 2 + len_bytes + 4;
        let Some(total) = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_add(header))
        else {
            return Err(FrameError::TooLarge(len));
        };
        if buf.len() < total {
            return Ok(None);
        }
        let mut key = [0; 4];
        key.copy_from_slice(&buf[header - 4..header]);
        let payload = unmask(&buf[header..total], key);
        match op {
            0x8 => out(Incoming::Close(close_status(&payload)?)),
            0x9 => out(Incoming::Ping(Bytes::from(payload))),
            0xA => out(Incoming::Pong),
            0x0 => {
                let Some(mut m) = self.message.take() else {
                    return Err(FrameError::Fragmentation);
                };
                m.data.extend_from_slice(&payload);
                if fin {
                    out(message(m.text, m.data)?);
                } else {
                    self.message = Some(m);
                }
            }
            _ => {
                if self.message.is_some() {
                    return Err(FrameError::Fragmentation);
                }
                let text = op == 0x1;
                if fin {
                    out(message(text, payload)?);
                } else {
                    self.message = Some(Fragmented {
                        text,
                        data: payload,
                    });
                }
            }
        }
        Ok(Some(total))
    }
}

fn message(text: bool, data: Vec<u8>) -> Result<Incoming, FrameError> {
    let data = Bytes::from(data);
    if text {
        Str::from_utf8(data)
            .map(Incoming::Text)
            .map_err(|_| FrameError::Utf8)
    } else {
        Ok(Incoming::Binary(data))
    }
}

/// The status of a close frame's payload (RFC 6455 §5.5.1, §7.4).
fn close_status(payload: &[u8]) -> Result<Option<u16>, FrameError> {
    match payload {
        [] => Ok(None),
        [_] => Err(FrameError::Close),
        [a, b, reason @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            if !valid || std::str::from_utf8(reason).is_err() {
                return Err(FrameError::Close);
            }
            Ok(Some(code))
        }
    }
}

fn unmask(payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut v = payload.to_vec();
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = v.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut w = [0; 8];
        w.copy_from_slice(c);
        c.copy_from_slice(&(u64::from_ne_bytes(w) ^ wide).to_ne_bytes());
    }
    for (b, k) in chunks.into_remainder().iter_mut().zip(key.iter().cycle()) {
        *b ^= k;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame: masked with a fixed key.
    fn client(first: u8, payload: &[u8]) -> Vec<u8> {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let mut v = vec![first];
        match payload.len() {
            n @ 0..=125 => v.push(0x80 | n as u8),
            n @ 126..=0xFFFF => {
                v.push(0x80 | 126);
                v.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                v.push(0x80 | 127);
                v.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        v.extend_from_slice(&key);
        v.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
        v
    }

    fn decode_all(d: &mut Decoder, input: &[u8]) -> Result<Vec<Incoming>, FrameError> {
        let mut got = Vec::new();
        d.decode(input, |m| got.push(m))?;
        Ok(got)
    }

    #[test]
    fn server_frames_use_the_shortest_length() {
        assert_eq!(&server_frame(OpCode::Binary, &[7; 125])[..2], [0x82, 125]);
        assert_eq!(
            &server_frame(OpCode::Text, &[b'a'; 126])[..4],
            [0x81, 126, 0, 126]
        );
        let big = server_frame(OpCode::Binary, &vec![0; 70_000]);
        assert_eq!(&big[..10], [0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
        assert_eq!(big.len(), 70_010);
        assert_eq!(&close_frame(None)[..], [0x88, 0]);
        assert_eq!(&close_frame(Some(1000))[..], [0x88, 2, 0x03, 0xE8]);
    }

    #[test]
    fn every_split_of_the_input_decodes_the_same() {
        let long = "é".repeat(200);
        let mut wire = client(0x81, b"4hello");
        wire.extend(client(0x82, &[1, 2, 3]));
        wire.extend(client(0x89, b"p"));
        wire.extend(client(0x01, &long.as_bytes()[..151]));
        wire.extend(client(0x8A, b""));
        wire.extend(client(0x80, &long.as_bytes()[151..]));
        wire.extend(client(0x88, &[0x03, 0xE8, b'o', b'k']));
        let want = vec![
            Incoming::Text(Str::from("4hello")),
            Incoming::Binary(Bytes::from_static(&[1, 2, 3])),
            Incoming::Ping(Bytes::from_static(b"p")),
            Incoming::Pong,
            Incoming::Text(Str::from(long.as_str())),
            Incoming::Close(Some(1000)),
        ];
        for step in [wire.len(), 64, 7, 3, 2, 1] {
            let mut d = Decoder::new(1 << 20);
            let mut got = Vec::new();
            for chunk in wire.chunks(step) {
                got.extend(
                    decode_all(&mut d, chunk).unwrap_or_else(|e| panic!("{step} {e} {got:?}")),
                );
            }
            assert_eq!(got, want, "reads of {step} bytes");
            assert!(d.is_idle());
            assert_eq!(d.partial.capacity(), 0, "nothing kept between frames");
        }
    }

    #[test]
    fn violations_are_refused_with_their_status() {
        let cases: Vec<(Vec<u8>, FrameError)> = vec![
            (vec![0x81, 0x02, b'4', b'x'], FrameError::Unmasked),
            (client(0xC1, b"4"), FrameError::Reserved),
            (client(0x83, b"4"), FrameError::Opcode(3)),
            (client(0x8B, b""), FrameError::Opcode(0xB)),
            (client(0x89, &[0; 126]), FrameError::Control),
            (client(0x09, b""), FrameError::Control),
            (client(0x80, b"x"), FrameError::Fragmentation),
            (
                [client(0x01, b"4"), client(0x81, b"x")].concat(),
                FrameError::Fragmentation,
            ),
            (client(0x81, &[b'4', 0xff, 0xfe]), FrameError::Utf8),
            (client(0x88, &[3]), FrameError::Close),
            (client(0x88, &[0x03, 0xED]), FrameError::Close),
            (client(0x88, &[0x03, 0xE8, 0xff]), FrameError::Close),
        ];
        for (wire, want) in cases {
            let mut d = Decoder::new(1024);
            assert_eq!(decode_all(&mut d, &wire), Err(want.clone()), "{wire:x?}");
            assert_eq!(want.close_code() == 1002, !matches!(want, FrameError::Utf8));
        }
    }

    #[test]
    fn the_limit_is_checked_at_the_header_and_over_fragments() {
        let mut d = Decoder::new(100);
        assert!(decode_all(&mut d, &client(0x82, &[0; 100])).is_ok());
        // 1 GiB declared: refused from the first 10 bytes.
        let huge = [0x82, 0x80 | 127, 0, 0, 0, 0, 0x40, 0, 0, 0];
        assert_eq!(
            decode_all(&mut Decoder::new(100), &huge),
            Err(FrameError::TooLarge(1 << 30))
        );
        let mut d = Decoder::new(100);
        decode_all(&mut d, &client(0x02, &[0; 60])).unwrap();
        assert_eq!(
            decode_all(&mut d, &client(0x80, &[0; 41])),
            Err(FrameError::TooLarge(101))
        );
        // A length that overflows the address space.
        let absurd = [
            0x82,
            0x80 | 127,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
        ];
        assert!(decode_all(&mut Decoder::new(usize::MAX), &absurd).is_err());
    }
}
