//! Long-polling payloads: packets joined by the record separator `\x1e`, binary packets as `b`
//! followed by base64.

use super::packet::{DecodeError, Frame, Message, Packet};
use crate::{Limits, Str};
use base64::Engine as _;
use bytes::Bytes;

/// The separator between packets of a long-polling payload.
pub const SEPARATOR: u8 = 0x1e;

const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Decodes a long-polling request body into its packets, lazily and without copying text.
///
/// The body is checked against [`Limits::max_payload`] and for UTF-8 up front; each packet is
/// then decoded as the iterator reaches it. An error names the packet's position.
///
/// ```
/// use roomcast::engine::{decode_payload, Message, Packet};
/// use roomcast::Limits;
/// let body = bytes::Bytes::from_static(b"4hello\x1ebAQIDBA==");
/// let packets: Vec<_> = decode_payload(body, &Limits::default()).unwrap()
///     .collect::<Result<_, _>>().unwrap();
/// assert_eq!(packets[1], Packet::Message(Message::Binary(vec![1, 2, 3, 4].into())));
/// ```
pub fn decode_payload(body: Bytes, limits: &Limits) -> Result<PayloadDecoder, DecodeError> {
    if body.len() > limits.max_payload {
        return Err(DecodeError::TooLarge {
            len: body.len(),
            max: limits.max_payload,
        });
    }
    let text = Str::from_utf8(body).map_err(|e| DecodeError::Utf8(e.valid_up_to()))?;
    Ok(PayloadDecoder {
        text,
        pos: 0,
        index: 0,
        done: false,
    })
}

/// Iterator over the packets of a long-polling payload; see [`decode_payload`].
#[derive(Debug, Clone)]
pub struct PayloadDecoder {
    text: Str,
    pos: usize,
    index: usize,
    done: bool,
}

impl Iterator for PayloadDecoder {
    type Item = Result<Packet, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = &self.text.as_bytes()[self.pos..];
        let end = match rest.iter().position(|&b| b == SEPARATOR) {
            Some(n) => self.pos + n,
            None => {
                self.done = true;
                self.text.len()
            }
        };
        // The separator is ASCII, so both ends are char boundaries.
        let element = self.text.slice(self.pos..end).unwrap_or_default();
        self.pos = end + 1;
        let index = self.index;
        self.index += 1;
        let decoded = match element.as_bytes().first() {
            Some(b'b') => BASE64
                .decode(&element.as_bytes()[1..])
                .map(|b| Packet::Message(Message::Binary(b.into())))
                .map_err(|_| DecodeError::Base64 { index }),
            _ => Packet::decode_text(element).map_err(|e| DecodeError::InPayload {
                index,
                error: Box::new(e),
            }),
        };
        if decoded.is_err() {
            // One bad element poisons the request: the session is closed anyway.
            self.done = true;
        }
        Some(decoded)
    }
}

/// Appends one frame to a long-polling payload under construction.
pub fn append_to_payload(out: &mut Vec<u8>, frame: &Frame) {
    if !out.is_empty() {
        out.push(SEPARATOR);
    }
    match frame {
        Frame::Text(s) => out.extend_from_slice(s.as_bytes()),
        Frame::Binary(b) => {
            out.push(b'b');
            let start = out.len();
            out.resize(start + base64_len(b.len()), 0);
            // The slice is sized exactly for the padded encoding, so this cannot fail.
            let _ = BASE64.encode_slice(b, &mut out[start..]);
        }
    }
}

/// Size in bytes that `frame` adds to a payload that already holds something.
pub fn payload_len(frame: &Frame) -> usize {
    1 + match frame {
        Frame::Text(s) => s.len(),
        Frame::Binary(b) => 1 + base64_len(b.len()),
    }
}

/// Joins frames into one long-polling response body.
///
/// ```
/// use roomcast::engine::{encode_payload, Frame};
/// use roomcast::Str;
/// let body = encode_payload(&[
///     Frame::Text(Str::from_static("4hello")),
///     Frame::Binary(vec![1, 2, 3, 4].into()),
/// ]);
/// assert_eq!(&body[..], b"4hello\x1ebAQIDBA==");
/// ```
pub fn encode_payload<'a>(frames: impl IntoIterator<Item = &'a Frame>) -> Bytes {
    let mut out = Vec::new();
    for frame in frames {
        append_to_payload(&mut out, frame);
    }
    out.into()
}

fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}
