//! The classic namespaces-and-rooms demo (docs/EXAMPLES.md): namespaces `/`, `/school`,
//! `/home`; `speak` to the whole namespace; in `/school`, `join` a room and `room-speak` to it.

mod common;

use roomcast::io::tokio::{Options, SocketIo};
use roomcast::Config;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    common::init_tracing();
    let io: SocketIo = SocketIo::new(Config::default(), Options::default());
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
            let io = io2.clone();
            async move {
                if let Ok((room, data)) = msg.args::<(String, serde_json::Value)>() {
                    let _ = io.to_ns("/school").to(room).emit("message", &(data,));
                }
            }
        });
    let listener = common::listener().await?;
    io.serve(listener, common::shutdown_signal()).await
}
