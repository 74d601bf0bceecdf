//! The server of the end-to-end fan-out benchmark (docs/EXAMPLES.md): on `broadcast`, emit
//! `news` with the same arguments to every other socket of `/`. Default timings.

mod common;

use roomcast::io::tokio::{Options, SocketIo};
use roomcast::Config;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    common::init_tracing();
    let io: SocketIo = SocketIo::new(Config::default(), Options::default());
    io.ns("/").on("broadcast", |socket, msg| async move {
        let _ = socket.broadcast().emit_args_of("news", &msg.event);
    });
    let listener = common::listener().await?;
    io.serve(listener, common::shutdown_signal()).await
}
