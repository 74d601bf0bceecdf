//! Typed arguments with binary, both ways: the handlers receive a struct with `bytes::Bytes` at
//! several depths (a field, a nested struct, a `Vec`, an `Option`, a map, an enum) and send one
//! back, binary at the same places. Under the default parser the bytes travel as attachments
//! (BINARY_EVENT / BINARY_ACK), under `PARSER=msgpack` as msgpack `bin`.
//!
//! - `upload` (with an ack): answered with the [`Stored`] receipt, each byte buffer reversed
//!   (so the client sees the server read them), and the same receipt emitted as `stored`.
//!   The official client (`socket.io-parser` 4.2.5 on) refuses a packet with more than 10
//!   attachments ("too many attachments"), as this server does by default: keep replies within.
//! - `relay`: the arguments emitted back as `relayed` as they came (`Event::args_raw`), and as
//!   the answer if the client asked for one.
//!
//! ```sh
//! cargo run --features tokio --example typed_binary            # http://127.0.0.1:3000
//! PARSER=msgpack PORT=3001 cargo run --features tokio --example typed_binary
//! ```

mod common;

use bytes::Bytes;
use roomcast::io::tokio::{Options, SocketIo};
use roomcast::Config;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the client uploads.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Upload {
    name: String,
    file: Bytes,
    meta: Meta,
    chunks: Vec<Chunk>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    thumb: Bytes,
    parts: Vec<Bytes>,
    #[serde(default)]
    note: Option<Bytes>,
    #[serde(default)]
    by_name: BTreeMap<String, Bytes>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Chunk {
    index: u32,
    data: Bytes,
}

/// How the server stored one buffer: an internally tagged enum, the large ones given back
/// (`{"kind":"large","data":<bytes>,"size":300}`).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Stored1 {
    Small { size: usize },
    Large { data: Bytes, size: usize },
}

/// The receipt: the upload with every buffer reversed, and how each was stored.
#[derive(Debug, Clone, Serialize)]
struct Stored {
    name: String,
    bytes: usize,
    upload: Upload,
    stored: Vec<Stored1>,
}

fn reversed(b: &Bytes) -> Bytes {
    b.iter().rev().copied().collect::<Vec<u8>>().into()
}

fn receipt(up: Upload) -> Stored {
    let mut bytes = up.file.len() + up.meta.thumb.len();
    let mut all = vec![up.file.clone(), up.meta.thumb.clone()];
    all.extend(up.meta.parts.iter().cloned());
    all.extend(up.meta.note.iter().cloned());
    all.extend(up.meta.by_name.values().cloned());
    all.extend(up.chunks.iter().map(|c| c.data.clone()));
    bytes += all[2..].iter().map(Bytes::len).sum::<usize>();
    let upload = Upload {
        name: up.name.clone(),
        file: reversed(&up.file),
        meta: Meta {
            thumb: reversed(&up.meta.thumb),
            parts: up.meta.parts.iter().map(reversed).collect(),
            note: up.meta.note.as_ref().map(reversed),
            by_name: up
                .meta
                .by_name
                .iter()
                .map(|(k, v)| (k.clone(), reversed(v)))
                .collect(),
        },
        chunks: up
            .chunks
            .iter()
            .map(|c| Chunk {
                index: c.index,
                data: reversed(&c.data),
            })
            .collect(),
    };
    let stored = all
        .into_iter()
        .map(|data| match data.len() {
            size @ 64.. => Stored1::Large { data, size },
            size => Stored1::Small { size },
        })
        .collect();
    Stored {
        name: up.name,
        bytes,
        upload,
        stored,
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    common::init_tracing();
    let mut config = Config::default();
    config.parser = common::parser();
    let io: SocketIo = SocketIo::new(config, Options::default());
    io.of("/")
        .on("upload", |socket, msg| async move {
            match msg.args::<(Upload,)>() {
                Ok((up,)) => {
                    let r = receipt(up);
                    let _ = socket.emit("stored", &(&r,));
                    msg.ack(&(&r,));
                }
                Err(e) => {
                    let _ = socket.emit("bad", &(e.to_string(),));
                    msg.ack(&(serde_json::json!({ "error": e.to_string() }),));
                }
            }
        })
        .on("relay", |socket, msg| async move {
            let args = msg.event.args_raw();
            let _ = socket.emit("relayed", &args);
            msg.ack(&args);
        });
    let listener = common::listener().await?;
    io.serve(listener, common::shutdown_signal()).await
}
