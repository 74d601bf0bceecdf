//! The text of one Socket.IO packet through the decoder; a complete packet must encode to text
//! that decodes to the same packet, and its arguments must deserialize without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use roomcast::packet::{Decoder, Packet};
use roomcast::{Limits, Str};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = Str::from_utf8(bytes::Bytes::copy_from_slice(data)) else {
        return;
    };
    let mut decoder = Decoder::new(Limits::default());
    let Ok(Some(packet)) = decoder.push_text(text) else {
        return;
    };
    if let Packet::Event { event, .. } = &packet {
        let _ = event.args::<Vec<serde_json_value::Any>>();
    }
    let encoded = packet.encode().unwrap();
    let again = Decoder::new(Limits::default())
        .push_text(encoded.text().slice(1..encoded.text().len()).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(again, packet);
});

mod serde_json_value {
    /// Accepts any JSON value, to exercise argument deserialization.
    pub struct Any;
    impl<'de> serde::Deserialize<'de> for Any {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            serde::de::IgnoredAny::deserialize(d).map(|_| Any)
        }
    }
}
