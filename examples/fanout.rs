//! The server of the end-to-end fan-out benchmark (docs/EXAMPLES.md): on `broadcast`, emit
//! `news` with the same arguments to every other socket of `/`. Default timings.
//! `RECOVERY_MS=<ms>` turns connection state recovery on (every `news` then carries its offset),
//! and `ADMIN=1` the Admin UI's `/admin` namespace (development mode, no auth), to measure what
//! each costs end to end. `PARSER=msgpack` speaks `socket.io-msgpack-parser`.

mod common;

use roomcast::io::tokio::{Options, SocketIo};
use roomcast::Config;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    common::init_tracing();
    let mut config = Config::default();
    config.parser = common::parser();
    if let Some(ms) = std::env::var("RECOVERY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        let mut r = roomcast::RecoveryConfig::default();
        r.max_disconnection_duration = std::time::Duration::from_millis(ms);
        config.recovery = Some(r);
    }
    let admin = std::env::var("ADMIN").is_ok_and(|v| v == "1");
    if admin {
        // Development mode shows rooms: room events on.
        config.room_events = true;
    }
    let io: SocketIo = SocketIo::new(config, Options::default());
    if admin {
        use roomcast::io::tokio::admin::{instrument, AdminAuth, AdminOptions};
        instrument(&io, AdminOptions::new(AdminAuth::None))
            .await
            .map_err(std::io::Error::other)?;
    }
    io.of("/").on("broadcast", |socket, msg| async move {
        let _ = socket.broadcast().emit("news", &msg.args_raw());
    });
    let listener = common::listener().await?;
    io.serve(listener, common::shutdown_signal()).await
}
