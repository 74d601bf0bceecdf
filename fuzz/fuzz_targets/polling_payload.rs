//! A long-polling request body through the payload decoder; decoded payloads re-encode to bodies
//! that decode to the same packets.
#![no_main]
use libfuzzer_sys::fuzz_target;
use roomcast::engine::{decode_payload, encode_payload, Packet};
use roomcast::Limits;

fuzz_target!(|data: &[u8]| {
    let body = bytes::Bytes::copy_from_slice(data);
    let Ok(decoder) = decode_payload(body, &Limits::default()) else {
        return;
    };
    let Ok(packets) = decoder.collect::<Result<Vec<_>, _>>() else {
        return;
    };
    let frames: Vec<_> = packets.iter().map(Packet::encode).collect();
    let again: Vec<_> = decode_payload(encode_payload(&frames), &Limits::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(again, packets);
});
