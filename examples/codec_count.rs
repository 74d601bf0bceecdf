//! Instruction counts of the codec's hot paths (decode a typical event, decode a binary event
//! with a 1 KiB attachment, encode a typical event, encode a struct holding a 1 KiB `Bytes`
//! field and a `Vec<Bytes>` of two 16-byte parts; frame a broadcast's WebSocket message once,
//! decode a client's masked WebSocket frame; 10,000 each), which a noisy machine cannot hide:
//!
//! ```sh
//! cargo build --release --example codec_count
//! valgrind --tool=callgrind --callgrind-out-file=cc.out --collect-atstart=no \
//!   --toggle-collect='codec_count::step_*' target/release/examples/codec_count
//! callgrind_annotate --inclusive=yes cc.out | grep step_
//! ```
use roomcast::io::websocket::{server_frame, Decoder as WsDecoder, Incoming, OpCode};
use roomcast::packet::{Decoder, Encoded};
use roomcast::{Limits, Str};

#[inline(never)]
fn step_decode_typical(n: usize) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        let mut d = Decoder::new(Limits::default());
        let text =
            Str::from_static(r#"2["news",{"id":1,"text":"hello","tags":["a","b"],"n":3.5}]"#);
        ok += usize::from(d.push_text(text).unwrap().is_some());
    }
    ok
}

#[inline(never)]
fn step_decode_binary(n: usize, att: &bytes::Bytes) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        let mut d = Decoder::new(Limits::default());
        let text = Str::from_static(
            r#"51-["file",{"name":"a.bin","data":{"_placeholder":true,"num":0}}]"#,
        );
        let _ = d.push_text(text).unwrap();
        ok += usize::from(d.push_binary(att.clone()).unwrap().is_some());
    }
    ok
}

#[inline(never)]
fn step_encode_typical(n: usize) -> usize {
    let v = serde_json::json!({"id": 1, "text": "hello"});
    let mut len = 0;
    for _ in 0..n {
        len += Encoded::event("/", None, "news", &(&v,))
            .unwrap()
            .text()
            .len();
    }
    len
}

/// A typed binary emit: a user struct whose `Bytes` fields become three attachments.
#[derive(serde::Serialize)]
struct Upload<'a> {
    name: &'a str,
    data: &'a bytes::Bytes,
    parts: &'a [bytes::Bytes],
}

#[inline(never)]
fn step_encode_binary(n: usize, att: &bytes::Bytes, parts: &[bytes::Bytes]) -> usize {
    let mut len = 0;
    for _ in 0..n {
        let up = Upload {
            name: "a.bin",
            data: att,
            parts,
        };
        len += Encoded::event("/", None, "file", &(&up,))
            .unwrap()
            .attachments()
            .len();
    }
    len
}

/// What the tokio adapter does once per broadcast: the shared WebSocket frame of a 64-byte
/// event (`fanout_load`'s payload).
#[inline(never)]
fn step_ws_frame(n: usize, event: &Str) -> usize {
    let mut len = 0;
    for _ in 0..n {
        len += server_frame(OpCode::Text, event.as_bytes()).len();
    }
    len
}

/// A client's masked 64-byte text frame, whole in one read.
#[inline(never)]
fn step_ws_decode(n: usize, frame: &[u8]) -> usize {
    let mut got = 0;
    for _ in 0..n {
        let mut d = WsDecoder::new(1 << 20);
        d.decode(frame, |m| {
            got += usize::from(matches!(m, Incoming::Text(_)))
        })
        .unwrap();
    }
    got
}

fn main() {
    let att = bytes::Bytes::from(vec![7u8; 1024]);
    let parts = [
        bytes::Bytes::from(vec![1u8; 16]),
        bytes::Bytes::from(vec![2u8; 16]),
    ];
    let n = 10_000;
    let event = Str::from(format!(r#"42["news","{}"]"#, ".".repeat(64)));
    let key = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0x81, 0x80 | event.len() as u8];
    frame.extend_from_slice(&key);
    frame.extend(
        event
            .as_bytes()
            .iter()
            .zip(key.iter().cycle())
            .map(|(b, k)| b ^ k),
    );
    println!(
        "{} {} {} {} {} {}",
        step_decode_typical(n),
        step_decode_binary(n, &att),
        step_encode_typical(n),
        step_encode_binary(n, &att, &parts),
        step_ws_frame(n, &event),
        step_ws_decode(n, &frame)
    );
}
