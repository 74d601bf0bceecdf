//! The Socket.IO server the official v5 protocol test suite expects (docs/EXAMPLES.md).
//!
//! ```sh
//! PORT=3000 cargo run --release --features tokio --example protocol_server
//! ```
//!
//! `PARSER=msgpack` speaks `socket.io-msgpack-parser` instead of the default parser.

mod common;

use roomcast::io::tokio::{Options, SocketIo};
use roomcast::Config;
use std::time::Duration;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    common::init_tracing();
    let config = {
        let mut c = Config::default();
        c.ping_interval = Duration::from_millis(300);
        c.ping_timeout = Duration::from_millis(200);
        c.connect_timeout = Duration::from_millis(1000);
        c.parser = common::parser();
        c
    };
    let io: SocketIo = SocketIo::new(config, Options::default());
    for nsp in ["/", "/custom"] {
        io.of(nsp).on_connection(|socket| async move {
            let auth: serde_json::Value = socket.handshake().auth_as().unwrap_or_default();
            let _ = socket.emit("auth", &(auth,));
        });
    }
    io.of("/")
        .on("message", |socket, msg| async move {
            let _ = socket.emit("message-back", &msg.args_raw());
        })
        .on("message-with-ack", |_, msg| async move {
            msg.ack(&msg.args_raw());
        });
    let listener = common::listener().await?;
    io.serve(listener, common::shutdown_signal()).await
}
