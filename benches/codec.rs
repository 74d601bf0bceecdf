//! Codec throughput: Engine.IO + Socket.IO decoding with full validation, and encoding from
//! `serde` values to the finished wire frame.

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use roomcast::engine::{self, decode_payload, Frame, Message};
use roomcast::packet::{Decoder, Encoded, Packet, Parser};
use roomcast::{Limits, Str};
use serde::Serialize;

const TYPICAL: &str = r#"42["message",{"text":"hello world","user":"alice","ts":1700000000}]"#;

#[derive(Serialize)]
struct Chat<'a> {
    text: &'a str,
    user: &'a str,
    ts: u64,
}

/// Engine.IO decode, then Socket.IO decode, as a server does for each WebSocket message.
fn decode_message(decoder: &mut Decoder, frame: Frame) -> Option<Packet> {
    match engine::Packet::decode(frame).ok()? {
        engine::Packet::Message(Message::Text(t)) => decoder.push_text(t).ok()?,
        engine::Packet::Message(Message::Binary(b)) => decoder.push_binary(b).ok()?,
        _ => None,
    }
}

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");
    let limits = Limits::default();

    let typical = Str::from_static(TYPICAL);
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode/typical_event", |b| {
        let mut decoder = Decoder::new(limits);
        b.iter(|| decode_message(&mut decoder, Frame::Text(black_box(typical.clone()))).unwrap())
    });
    g.bench_function("encode/typical_event", |b| {
        let chat = Chat {
            text: "hello world",
            user: "alice",
            ts: 1_700_000_000,
        };
        b.iter(|| {
            let e = Encoded::event("/", None, black_box("message"), &(black_box(&chat),)).unwrap();
            assert_eq!(e.text().len(), TYPICAL.len());
            e
        })
    });
    g.bench_function("encode/typical_event_json_value", |b| {
        let chat = serde_json::json!({"text": "hello world", "user": "alice", "ts": 1_700_000_000});
        b.iter(|| Encoded::event("/", None, black_box("message"), &(black_box(&chat),)).unwrap())
    });

    // The same event under the msgpack parser: one binary message, the map written by
    // socket.io-msgpack-parser's order of keys (type, nsp, data).
    let chat = Chat {
        text: "hello world",
        user: "alice",
        ts: 1_700_000_000,
    };
    let msgpack = Parser::Msgpack
        .event("/", None, "message", &(&chat,))
        .unwrap()
        .binary()
        .cloned()
        .unwrap();
    g.bench_function("msgpack/decode/typical_event", |b| {
        let mut decoder = Parser::Msgpack.decoder(limits);
        b.iter(|| decode_message(&mut decoder, Frame::Binary(black_box(msgpack.clone()))).unwrap())
    });
    g.bench_function("msgpack/encode/typical_event", |b| {
        b.iter(|| {
            let e = Parser::Msgpack
                .event("/", None, black_box("message"), &(black_box(&chat),))
                .unwrap();
            assert_eq!(e.len(), msgpack.len());
            e
        })
    });
    g.bench_function("msgpack/encode/typical_event_json_value", |b| {
        let chat = serde_json::json!({"text": "hello world", "user": "alice", "ts": 1_700_000_000});
        b.iter(|| {
            Parser::Msgpack
                .event("/", None, black_box("message"), &(black_box(&chat),))
                .unwrap()
        })
    });
    // Relaying a received event under a new name (`message-back`, `news`): its arguments' bytes
    // are copied under msgpack, its JSON tail under JSON.
    let received = match Parser::Msgpack.decoder(limits).push_binary(msgpack.clone()) {
        Ok(Some(Packet::Event { event, .. })) => event,
        _ => panic!("the msgpack event does not decode"),
    };
    g.bench_function("msgpack/encode/typical_event_relayed", |b| {
        b.iter(|| {
            Parser::Msgpack
                .event_with_args_of("/", None, "news", black_box(&received))
                .unwrap()
        })
    });
    // Connection state recovery's offset, appended to an encoded broadcast once.
    let encoded = Parser::Msgpack
        .event("/", None, "message", &(&chat,))
        .unwrap();
    let json_encoded = Encoded::event("/", None, "message", &(&chat,)).unwrap();
    g.bench_function("msgpack/encode/with_offset", |b| {
        b.iter(|| black_box(&encoded).with_last_arg(black_box("1700000000000-0")))
    });
    g.bench_function("encode/with_offset", |b| {
        b.iter(|| black_box(&json_encoded).with_last_arg(black_box("1700000000000-0")))
    });

    // A binary event with one 1 KiB attachment: header, then the attachment frame.
    let blob = Bytes::from(vec![0xa5u8; 1024]);
    let encoded = Encoded::event("/", None, "upload", &("photo.png", &blob)).unwrap();
    let frames: Vec<Frame> = encoded.frames().collect();
    g.throughput(Throughput::Bytes(1024));
    g.bench_function("decode/binary_event_1KiB", |b| {
        let mut decoder = Decoder::new(limits);
        b.iter(|| {
            let mut out = None;
            for f in &frames {
                out = decode_message(&mut decoder, black_box(f.clone()));
            }
            out.unwrap()
        })
    });
    // Deserializing that event's arguments (a sequence, read into a struct's fields in order):
    // the attachment goes straight into the `Bytes` field.
    #[derive(serde::Deserialize)]
    struct Upload {
        name: String,
        data: Bytes,
    }
    let mut decoder = Decoder::new(limits);
    let packet = frames
        .iter()
        .fold(None, |_, f| decode_message(&mut decoder, f.clone()));
    let Some(Packet::Event { event, .. }) = packet else {
        panic!("the binary event does not decode")
    };
    g.bench_function("deserialize/binary_event_1KiB_into_bytes", |b| {
        b.iter(|| {
            let upload: Upload = black_box(&event).args().unwrap();
            assert_eq!((upload.name.len(), upload.data.len()), (9, 1024));
            upload
        })
    });
    // The wrapper's cost on plain data: the typical event's object argument into a struct, on
    // its own and in a binary event that also carries a 16-byte attachment.
    #[derive(serde::Deserialize)]
    struct ChatIn {
        text: String,
        user: String,
        ts: u64,
        #[serde(default)]
        blob: Option<Bytes>,
    }
    let plain = match Decoder::new(limits).push_text(Str::from_static(&TYPICAL[1..])) {
        Ok(Some(Packet::Event { event, .. })) => event,
        _ => panic!("the typical event does not decode"),
    };
    let mut decoder = Decoder::new(limits);
    let header = r#"51-["message",{"text":"hello world","user":"alice","ts":1700000000,"blob":{"_placeholder":true,"num":0}}]"#;
    assert!(decoder
        .push_text(Str::from_static(header))
        .unwrap()
        .is_none());
    let with_blob = match decoder.push_binary(Bytes::from_static(&[7; 16])) {
        Ok(Some(Packet::Event { event, .. })) => event,
        _ => panic!("the binary event does not decode"),
    };
    g.throughput(Throughput::Elements(1));
    g.bench_function("deserialize/typical_event_into_struct", |b| {
        b.iter(|| {
            let (chat,): (ChatIn,) = black_box(&plain).args().unwrap();
            assert!(chat.blob.is_none() && chat.ts > 0 && !chat.text.is_empty());
            chat.user
        })
    });
    g.bench_function(
        "deserialize/typical_event_with_16B_attachment_into_struct",
        |b| {
            b.iter(|| {
                let (chat,): (ChatIn,) = black_box(&with_blob).args().unwrap();
                assert!(chat.blob.is_some() && chat.ts > 0 && !chat.text.is_empty());
                chat.user
            })
        },
    );
    g.throughput(Throughput::Bytes(1024));
    g.bench_function("encode/binary_event_1KiB", |b| {
        b.iter(|| Encoded::event("/", None, "upload", &("photo.png", black_box(&blob))).unwrap())
    });

    // A long-polling POST of 100 typical events.
    let body = Bytes::from(vec![TYPICAL; 100].join("\u{1e}"));
    g.throughput(Throughput::Elements(100));
    g.bench_function("decode/polling_payload_100", |b| {
        let mut decoder = Decoder::new(limits);
        b.iter(|| {
            let mut n = 0;
            for p in decode_payload(black_box(body.clone()), &limits).unwrap() {
                if let engine::Packet::Message(Message::Text(t)) = p.unwrap() {
                    decoder.push_text(t).unwrap().unwrap();
                    n += 1;
                }
            }
            assert_eq!(n, 100);
        })
    });
    let typical_frames: Vec<Frame> = (0..100).map(|_| Frame::Text(typical.clone())).collect();
    g.bench_function("encode/polling_payload_100", |b| {
        b.iter(|| engine::encode_payload(black_box(&typical_frames)))
    });
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
