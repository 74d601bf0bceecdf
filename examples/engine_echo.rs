//! A bare Engine.IO v4 server on `/engine.io/` that sends back every message it receives:
//! text as text, binary as binary (docs/EXAMPLES.md). It drives the session layer directly:
//! no Socket.IO underneath.

mod common;

use roomcast::io::tokio::{EngineIo, Options};
use roomcast::Config;
use std::time::Duration;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    common::init_tracing();
    let mut config = Config::default();
    config.ping_interval = Duration::from_millis(300);
    config.ping_timeout = Duration::from_millis(200);
    let mut options = Options::default();
    options.path = "/engine.io/".into();
    let io = EngineIo::new(config, options);
    io.on_message(|ctx, conn, message| {
        let _ = ctx.server.send_message(conn, message);
    });
    let listener = common::listener().await?;
    io.serve(listener, common::shutdown_signal()).await
}
