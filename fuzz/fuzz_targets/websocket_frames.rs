//! A client's bytes through the RFC 6455 decoder, read whole and in reads of arbitrary sizes:
//! both must give the same messages and the same error, and nothing may panic or grow past the
//! limit.
#![no_main]
use libfuzzer_sys::fuzz_target;
use roomcast::io::websocket::{Decoder, FrameError, Incoming};

const LIMIT: usize = 256;

fn run(input: &[u8], step: usize) -> (Vec<Incoming>, Option<FrameError>) {
    let mut d = Decoder::new(LIMIT);
    let mut got = Vec::new();
    for chunk in input.chunks(step) {
        if let Err(e) = d.decode(chunk, |m| got.push(m)) {
            return (got, Some(e));
        }
    }
    (got, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, input)) = data.split_first() else {
        return;
    };
    let whole = run(input, input.len().max(1));
    let split = run(input, usize::from(step % 32) + 1);
    assert_eq!(whole, split);
    for m in &whole.0 {
        match m {
            Incoming::Text(t) => assert!(t.len() <= LIMIT),
            Incoming::Binary(b) => assert!(b.len() <= LIMIT),
            Incoming::Ping(p) => assert!(p.len() <= 125),
            Incoming::Pong | Incoming::Close(_) => {}
        }
    }
});
