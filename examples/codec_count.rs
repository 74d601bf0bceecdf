//! Instruction counts of the codec's hot paths (decode a typical event, decode a binary event
//! with a 1 KiB attachment, encode a typical event; 10,000 each), which a noisy machine cannot
//! hide:
//!
//! ```sh
//! cargo build --release --example codec_count
//! valgrind --tool=callgrind --callgrind-out-file=cc.out --collect-atstart=no \
//!   --toggle-collect='codec_count::step_*' target/release/examples/codec_count
//! callgrind_annotate --inclusive=yes cc.out | grep step_
//! ```
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

fn main() {
    let att = bytes::Bytes::from(vec![7u8; 1024]);
    let n = 10_000;
    println!(
        "{} {} {}",
        step_decode_typical(n),
        step_decode_binary(n, &att),
        step_encode_typical(n)
    );
}
