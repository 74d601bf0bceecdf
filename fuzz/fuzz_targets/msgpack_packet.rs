//! One binary message through the msgpack parser's decoder (`Parser::Msgpack`): it must never
//! panic; a complete packet must have JSON that serde_json reads, its arguments must
//! deserialize, and it must encode (msgpack, JSON) to messages that decode to the same packet;
//! an event must relay (its arguments' bytes copied) and take an offset as its last argument.
#![no_main]
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use roomcast::packet::{Packet, Parser};
use roomcast::{Limits, Str};

fn decode(bytes: Bytes) -> Option<Packet> {
    Parser::Msgpack.decoder(Limits::default()).push_binary(bytes).ok()?
}

fuzz_target!(|data: &[u8]| {
    let Some(packet) = decode(Bytes::copy_from_slice(data)) else {
        return;
    };
    let json = match &packet {
        Packet::Connect { data, .. } => data.clone(),
        Packet::ConnectError { data, .. } => Some(data.clone()),
        Packet::Event { event, .. } => Some(event.data().json().clone()),
        Packet::Ack { data, .. } => Some(data.json().clone()),
        Packet::Disconnect { .. } => None,
    };
    if let Some(json) = json {
        serde_json::from_str::<serde::de::IgnoredAny>(&json).expect("valid JSON");
    }
    if let Packet::Event { event, .. } = &packet {
        let _ = event.args::<Vec<serde::de::IgnoredAny>>();
        let relayed = Parser::Msgpack
            .event_with_args_of("/", None, "relayed", event)
            .unwrap()
            .with_last_arg("offset-1");
        let Some(Packet::Event { event: back, .. }) = decode(relayed.binary().unwrap().clone())
        else {
            panic!("a relayed event does not decode");
        };
        let (args, last): (Vec<serde::de::IgnoredAny>, _) = (
            back.args().expect("relayed arguments"),
            back.args_json_tail().ends_with(",\"offset-1\"]"),
        );
        assert!(last && args.len() == event.args::<Vec<serde::de::IgnoredAny>>().map_or(args.len(), |a| a.len() + 1));
    }
    let again = Parser::Msgpack.encode(&packet).unwrap();
    assert_eq!(decode(again.binary().unwrap().clone()).as_ref(), Some(&packet));
    // The same packet under the JSON parser.
    let json = packet.encode().unwrap();
    let mut decoder = Parser::Json.decoder(Limits {
        max_attachments: usize::MAX,
        ..Limits::default()
    });
    let mut out = decoder
        .push_text(json.text().slice(1..json.text().len()).unwrap_or_else(|| Str::from("")))
        .unwrap();
    for a in json.attachments() {
        out = decoder.push_binary(a.clone()).unwrap();
    }
    assert_eq!(out.as_ref(), Some(&packet));
});
