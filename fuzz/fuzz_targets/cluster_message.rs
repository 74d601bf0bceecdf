//! Bytes from the cluster (what another node, or anyone with access to Redis, publishes)
//! through every decoder of both protocols (classic and sharded). Whatever decodes must encode to bytes that
//! decode to the same message; broadcast arguments must turn into one Socket.IO packet.
#![no_main]
use libfuzzer_sys::fuzz_target;
use roomcast::cluster::classic::{
    decode_broadcast, decode_request, decode_response, encode_broadcast, encode_request,
    encode_response,
};
use roomcast::cluster::sharded;
use roomcast::cluster::value::ClusterArgs;
use roomcast::packet::Encoded;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    match kind % 4 {
        0 => {
            if let Ok(b) = decode_broadcast(bytes) {
                let again = decode_broadcast(&encode_broadcast(&b)).expect("re-decodes");
                assert_eq!(again, b);
                if let Some(name) = b.packet.data[0].as_str() {
                    let _ = Encoded::event(
                        &b.packet.nsp,
                        None,
                        name,
                        &ClusterArgs(&b.packet.data[1..]),
                    );
                }
            }
        }
        1 => {
            if let Ok(r) = decode_request(bytes) {
                assert_eq!(decode_request(&encode_request(&r)).expect("re-decodes"), r);
            }
        }
        3 => {
            if let Ok(e) = sharded::decode(bytes) {
                let again = match &e.message {
                    sharded::Message::Broadcast(b) => Some(sharded::encode_broadcast(b)),
                    sharded::Message::Request(r) => sharded::encode_request(r, &e.nsp),
                    sharded::Message::Response(r) => sharded::encode_response(r, &e.uid, &e.nsp),
                    _ => None,
                };
                if let Some(bytes) = again {
                    assert_eq!(sharded::decode(&bytes).expect("re-decodes"), e);
                }
            }
        }
        _ => {
            if let Ok(r) = decode_response(bytes) {
                assert_eq!(
                    decode_response(&encode_response(&r)).expect("re-decodes"),
                    r
                );
            }
        }
    }
});
