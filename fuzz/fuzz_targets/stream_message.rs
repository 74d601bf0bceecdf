//! Bytes from Redis as the streams protocol reads them (what another node, or anyone with
//! access to Redis, writes): a stream entry's field list, a Pub/Sub payload, a stored session and
//! an offset. No decoder may panic; whatever decodes must encode to what decodes the same.
#![no_main]
use libfuzzer_sys::fuzz_target;
use roomcast::cluster::streams::{
    decode_entry, decode_publication, encode_broadcast, encode_request, encode_response, Envelope,
    Message, Outgoing, Session, StreamId,
};

/// Decodes what an encoder produced, by the way it travels, and checks it is `e` again.
///
/// Floats are left out of the equality: serde_json (without `float_roundtrip`) may parse a
/// long decimal 1 ULP away from the nearest double, so JSON text → f64 → shortest text → f64
/// can move by 1 ULP. Everything else must come back exactly.
fn check_again(o: &Outgoing, e: &Envelope) {
    let again = match o {
        Outgoing::Stream(fields) => decode_entry(fields).expect("re-decodes"),
        Outgoing::Publish(bytes) => decode_publication(bytes).expect("re-decodes"),
    };
    if !format!("{e:?}").contains("F64(") {
        assert_eq!(&again, e);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    match kind % 4 {
        0 => {
            // A field list: NUL-separated, names and values alternating.
            let parts: Vec<&[u8]> = bytes.split(|b| *b == 0).collect();
            let fields: Vec<(&[u8], &[u8])> = parts
                .chunks(2)
                .map(|c| (c[0], c.get(1).copied().unwrap_or(b"")))
                .collect();
            if let Ok(e) = decode_entry(&fields) {
                let again = match &e.message {
                    Message::Broadcast(b) => Some(Outgoing::Stream(encode_broadcast(b))),
                    Message::Request(r) => encode_request(r, &e.nsp),
                    Message::Response(r) => {
                        encode_response(r, &e.uid, &e.nsp).map(Outgoing::Publish)
                    }
                    _ => None,
                };
                if let Some(o) = again {
                    check_again(&o, &e);
                }
            }
        }
        1 => {
            if let Ok(e) = decode_publication(bytes) {
                let again = match &e.message {
                    Message::Broadcast(b) => Some(Outgoing::Stream(encode_broadcast(b))),
                    Message::Request(r) => encode_request(r, &e.nsp),
                    Message::Response(r) => {
                        encode_response(r, &e.uid, &e.nsp).map(Outgoing::Publish)
                    }
                    _ => None,
                };
                if let Some(o) = again {
                    check_again(&o, &e);
                }
            }
        }
        2 => {
            if let Ok(s) = Session::decode(bytes) {
                assert_eq!(
                    Session::decode(s.encode().as_bytes()).expect("re-decodes"),
                    s
                );
            }
        }
        _ => {
            if let Ok(text) = std::str::from_utf8(bytes) {
                if let Ok(id) = StreamId::parse(text) {
                    assert_eq!(StreamId::parse(&id.to_string()), Ok(id));
                    if let Some(next) = id.next() {
                        assert!(next > id);
                    }
                }
            }
        }
    }
});
