//! A bare Engine.IO v4 server on `/engine.io/` that sends back every message it receives:
//! text as text, binary as binary (docs/EXAMPLES.md).

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
        c.engine_only = true;
        c
    };
    let options = Options {
        path: "/engine.io/".into(),
        ..Options::default()
    };
    let io: SocketIo = SocketIo::new(config, options);
    io.on_engine_message(|ctx, conn, message| {
        let _ = ctx.server.send_message(conn, message);
    });
    let listener = common::listener().await?;
    io.serve(listener, common::shutdown_signal()).await
}
