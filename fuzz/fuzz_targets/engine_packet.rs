//! One WebSocket message, text or binary, through the Engine.IO packet decoder; whatever decodes
//! must encode back to the same frame (up to data the reference ignores).
#![no_main]
use libfuzzer_sys::fuzz_target;
use roomcast::engine::{Frame, Packet};
use roomcast::{Limits, Str};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let bytes = bytes::Bytes::copy_from_slice(rest);
    let frame = if kind & 1 == 0 {
        match Str::from_utf8(bytes) {
            Ok(s) => Frame::Text(s),
            Err(_) => return,
        }
    } else {
        Frame::Binary(bytes)
    };
    let limits = Limits {
        max_payload: 64,
        ..Limits::default()
    };
    if let Ok(packet) = Packet::decode_limited(frame, &limits) {
        assert_eq!(Packet::decode(packet.encode()).unwrap(), packet);
    }
});
