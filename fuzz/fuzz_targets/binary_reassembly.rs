//! A sequence of text and binary messages through one decoder, as a connection would deliver
//! them: headers, attachments, floods and interleavings. Every complete packet must carry exactly
//! the attachments its header announced, and re-encode to the same frames.
#![no_main]
use libfuzzer_sys::fuzz_target;
use roomcast::packet::{Decoder, Packet};
use roomcast::{Limits, Str};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_attachments: 4,
        ..Limits::default()
    };
    let mut decoder = Decoder::new(limits);
    let mut rest = data;
    // Each message: a kind byte (low bit: text or binary), a length byte, then that many bytes.
    while let [kind, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (body, next) = tail.split_at(len);
        rest = next;
        let bytes = bytes::Bytes::copy_from_slice(body);
        let result = if kind & 1 == 0 {
            let Ok(text) = Str::from_utf8(bytes) else {
                continue;
            };
            decoder.push_text(text)
        } else {
            decoder.push_binary(bytes)
        };
        match result {
            Ok(Some(packet)) => {
                let attachments = match &packet {
                    Packet::Event { event, .. } => event.data().attachments().len(),
                    Packet::Ack { data, .. } => data.attachments().len(),
                    _ => 0,
                };
                assert!(attachments <= limits.max_attachments);
                let encoded = packet.encode().unwrap();
                assert_eq!(encoded.attachments().len(), attachments);
            }
            Ok(None) => assert!(decoder.is_reassembling()),
            // After an error a server closes the connection; start afresh as a new one would.
            Err(_) => decoder = Decoder::new(limits),
        }
    }
});
