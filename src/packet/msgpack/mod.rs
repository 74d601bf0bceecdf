//! The msgpack parser (`socket.io-msgpack-parser` 3.0, values as notepack.io 2.2 writes them):
//! each packet is one binary Engine.IO message holding one msgpack map,
//! `{type: 0..4, nsp, id?, data?}`, binary values inline as `bin`, no attachments.
//!
//! - [`encode`]: straight from `serde` values (`rmp-serde`, structs as maps) into the finished
//!   message. `data` is written last, so an event's connection-state-recovery offset is one
//!   more string at the very end and a new array header ([`with_last_arg`]).
//! - [`decode`]: the map is read with `rmp`'s markers and `data` is transcoded, in the same
//!   pass, into the JSON view every [`Payload`](super::Payload) has: each `bin` becomes an
//!   attachment (a slice of the message, no copy) behind a placeholder. An event also keeps the
//!   msgpack bytes of its arguments, so that relaying them re-encodes nothing.

mod decode;
mod encode;

pub(super) use decode::decode;
pub(crate) use encode::with_last_arg;
pub(super) use encode::{
    ack, ack_with_args_of, arg_values, connect, connect_error, disconnect, encode_packet, event,
    event_raw, event_with_args_of,
};

/// The arguments of an event decoded from msgpack, as they came: the elements of its `data`
/// array after the name, back to back, and how many there are.
#[derive(Debug, Clone)]
pub(crate) struct MsgpackArgs {
    pub(crate) bytes: bytes::Bytes,
    pub(crate) count: u32,
}

#[cfg(test)]
mod tests {
    use crate::packet::{DecodeError, Packet, Parser, PayloadError};
    use crate::Limits;
    use bytes::Bytes;

    fn decode(b: &[u8]) -> Result<Packet, DecodeError> {
        Parser::Msgpack
            .decoder(Limits::default())
            .push_binary(Bytes::copy_from_slice(b))
            .map(|p| p.expect("a whole packet"))
    }

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect()
    }

    #[test]
    fn the_readme_example_both_ways() {
        let wire = hex("83 a4 74 79 70 65 02 a3 6e 73 70 a1 2f a4 64 61 74 61 92 a5 68 65 6c 6c 6f a3 79 6f 75");
        let e = Parser::Msgpack
            .event("/", None, "hello", &("you",))
            .unwrap();
        assert_eq!(&e.binary().unwrap()[..], &wire[..]);
        assert!(e.is_event_without_ack());
        let Packet::Event { nsp, id, event } = decode(&wire).unwrap() else {
            panic!()
        };
        assert_eq!((&*nsp, id, event.name()), ("/", None, "hello"));
        assert_eq!(event.data().json().as_str(), r#"["hello","you"]"#);
        assert_eq!(event.args_json_tail(), r#","you"]"#);
        let (you,): (String,) = event.args().unwrap();
        assert_eq!(you, "you");
    }

    #[test]
    fn binary_is_inline_and_offsets_go_last() {
        let bin = Bytes::from_static(b"\x01\x02");
        let e = Parser::Msgpack
            .event("/chat", None, "file", &(bin.clone(), 7))
            .unwrap();
        assert_eq!(e.frame_count(), 1);
        let numbered = e.with_last_arg("AbC-1");
        let Packet::Event { nsp, event, .. } = decode(numbered.binary().unwrap()).unwrap() else {
            panic!()
        };
        assert_eq!(&*nsp, "/chat");
        assert_eq!(
            event.data().json().as_str(),
            r#"["file",{"_placeholder":true,"num":0},7,"AbC-1"]"#
        );
        assert_eq!(event.data().attachments(), std::slice::from_ref(&bin));
        let (b, n, o): (Bytes, u32, String) = event.args().unwrap();
        assert_eq!((b, n, o.as_str()), (bin, 7, "AbC-1"));
        // Relayed as it came, name changed.
        let back = Parser::Msgpack
            .event_with_args_of("/chat", None, "back", &event)
            .unwrap();
        let Packet::Event { event: back, .. } = decode(back.binary().unwrap()).unwrap() else {
            panic!()
        };
        assert_eq!(
            back.data().json().as_str(),
            r#"["back",{"_placeholder":true,"num":0},7,"AbC-1"]"#
        );
    }

    #[test]
    fn notepack_quirks() {
        // {type:0, data:undefined, nsp:"/"}: the JS client without auth.
        let p = decode(&hex(
            "83 a4 74 79 70 65 00 a4 64 61 74 61 d4 00 00 a3 6e 73 70 a1 2f",
        ))
        .unwrap();
        assert_eq!(
            p,
            Packet::Connect {
                nsp: "/".into(),
                data: None
            }
        );
        // EVENT ["d", Date(0), undefined, {a: undefined, 1: 2}, ext 5]
        let p = decode(&hex(
            "83 a4 74 79 70 65 02 a3 6e 73 70 a1 2f a4 64 61 74 61 95 a1 64 \
             d7 00 00 00 00 00 00 00 00 00 d4 00 00 82 a1 61 d4 00 00 01 02 d4 05 09",
        ))
        .unwrap();
        let Packet::Event { event, .. } = p else {
            panic!()
        };
        assert_eq!(
            event.data().json().as_str(),
            r#"["d","1970-01-01T00:00:00.000Z",null,{"1":2},[5,{"_placeholder":true,"num":0}]]"#
        );
        assert_eq!(event.data().attachments(), [Bytes::from_static(b"\x09")]);
        // Unknown keys (the client's `options`) are ignored.
        let p = decode(&hex(
            "84 a4 74 79 70 65 02 a4 64 61 74 61 91 a1 78 a7 6f 70 74 69 6f 6e 73 81 a8 63 6f 6d 70 72 65 73 73 c3 a3 6e 73 70 a1 2f",
        ))
        .unwrap();
        assert!(matches!(p, Packet::Event { .. }));
    }

    #[test]
    fn reference_checks_and_ours() {
        let bad = [
            ("c1", "Could not parse"),
            ("80 00", "trailing"),
            ("92 00 00", "not a map"),
        ];
        for (h, why) in bad {
            assert!(
                matches!(decode(&hex(h)), Err(DecodeError::Msgpack { .. })),
                "{why}"
            );
        }
        // type 5
        assert_eq!(
            decode(&hex("82 a4 74 79 70 65 05 a3 6e 73 70 a1 2f")),
            Err(DecodeError::InvalidPacketType)
        );
        // nsp 1
        assert_eq!(
            decode(&hex("82 a4 74 79 70 65 01 a3 6e 73 70 01")),
            Err(DecodeError::InvalidNamespace)
        );
        // id "x"
        assert_eq!(
            decode(&hex(
                "84 a4 74 79 70 65 02 a3 6e 73 70 a1 2f a4 64 61 74 61 91 a1 78 a2 69 64 a1 78"
            )),
            Err(DecodeError::InvalidAckId)
        );
        // a reserved name
        assert!(matches!(
            decode(&hex(
                "83 a4 74 79 70 65 02 a3 6e 73 70 a1 2f a4 64 61 74 61 91 a7 63 6f 6e 6e 65 63 74"
            )),
            Err(DecodeError::Payload {
                error: PayloadError::ReservedEventName(_),
                ..
            })
        ));
        // a client's placeholder-shaped map
        assert!(matches!(
            decode(&hex("83 a4 74 79 70 65 02 a3 6e 73 70 a1 2f a4 64 61 74 61 92 a1 78 82 ac 5f 70 6c 61 63 65 68 6f 6c 64 65 72 c3 a3 6e 75 6d 00")),
            Err(DecodeError::Payload { error: PayloadError::PlaceholderKey, .. })
        ));
        // text under msgpack
        assert_eq!(
            Parser::Msgpack
                .decoder(Limits::default())
                .push_text(crate::Str::from_static("40")),
            Err(DecodeError::UnexpectedText)
        );
    }
}
