//! The classic namespaces-and-rooms demo (docs/EXAMPLES.md): namespaces `/`, `/school`,
//! `/home`; `speak` to the whole namespace; in `/school`, `join` a room and `room-speak` to it.
//! `PARSER=msgpack` speaks `socket.io-msgpack-parser` instead of the default parser.

mod common;

use roomcast::io::tokio::{Options, SocketIo};
use roomcast::Config;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    common::init_tracing();
    let mut config = Config::default();
    config.parser = common::parser();
    let io: SocketIo = SocketIo::new(config, Options::default());
    for nsp in ["/", "/school", "/home"] {
        let io2 = io.clone();
        io.ns(nsp).on("speak", move |socket, msg| {
            // Everyone in the namespace, the speaker included.
            let _ = io2
                .to_ns(socket.namespace())
                .emit_args_of("message", &msg.event);
            async {}
        });
    }
    let io2 = io.clone();
    io.ns("/school")
        .on("join", |socket, msg| async move {
            if let Ok((room,)) = msg.args::<(String,)>() {
                socket.join(room.clone());
                msg.ack(&(format!("Joined {room}"),));
            }
        })
        .on("room-speak", move |_, msg| {
            // Forward the data as it came (binary included): raw arguments, not values.
            if let Ok(args) = msg.event.raw_args() {
                if let (Some(room), Some(data)) = (args.first(), args.get(1)) {
                    let room: Result<String, _> = serde_json::from_str(room.get());
                    let e = io2.parser().event_raw(
                        "/school",
                        None,
                        "message",
                        &[data],
                        msg.event.data().attachments(),
                    );
                    if let (Ok(room), Ok(e)) = (room, e) {
                        io2.to_ns("/school").to(room).emit_encoded(e);
                    }
                }
            }
            async {}
        });
    let listener = common::listener().await?;
    io.serve(listener, common::shutdown_signal()).await
}
