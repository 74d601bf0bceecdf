//! Dynamic namespaces as Node has them: a parent decided by a regex and one decided later
//! from the client's auth (`io.of(/^\/dyn-\d+$/)`, `io.of((name, auth, next) => ...)`), a
//! parent's emit reaching every child, `new_namespace`, and `cleanupEmptyChildNamespaces`.
//! The Node server it mirrors:
//!
//! ```js
//! const io = new Server({ cleanupEmptyChildNamespaces: true });
//! const created = [];
//! io.on("new_namespace", (nsp) => created.push(nsp.name));
//! const dyn = io.of(/^\/dyn-\d+$/);
//! dyn.on("connection", (socket) => {
//!   socket.emit("hello", socket.nsp.name);
//!   socket.on("join", (room, cb) => { socket.join(room); cb(); });
//! });
//! io.of((name, auth, next) => {
//!   setTimeout(() => next(null, name === `/team-${auth.team}`), 20);
//! }).on("connection", (socket) => socket.emit("welcome", socket.nsp.name));
//! io.on("connection", (socket) => {
//!   socket.on("namespaces", (cb) => cb([...io._nsps.keys()].sort()));
//!   socket.on("created", (cb) => cb(created));
//!   socket.on("parent-emit", (tag, cb) => {
//!     dyn.emit("all", tag);
//!     dyn.to("red").emit("red-only", tag);
//!     cb();
//!   });
//! });
//! ```
//!
//! Run with `cargo run --features tokio --example namespaces` (`PORT` picks the port).

#[path = "common/mod.rs"]
mod common;

use roomcast::io::tokio::{Options, SocketIo};
use roomcast::Config;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    common::init_tracing();
    let mut config = Config::default();
    config.cleanup_empty_child_namespaces = true;
    let io: SocketIo = SocketIo::new(config, Options::default());

    let created: Arc<Mutex<Vec<String>>> = Arc::default();
    let c = created.clone();
    io.on_new_namespace(move |nsp| c.lock().unwrap().push(nsp.name().to_owned()));

    let dynamic = io.parent_namespace(|name| {
        name.strip_prefix("/dyn-")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    });
    dynamic.on_connection(|socket| async move {
        let _ = socket.emit("hello", &(socket.namespace(),));
    });
    dynamic.on("join", |socket, msg| async move {
        if let Ok((room,)) = msg.args::<(String,)>() {
            socket.join(room);
        }
        msg.ack(&());
    });

    io.parent_namespace_async(|name, auth| async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        auth["team"]
            .as_str()
            .is_some_and(|team| name == format!("/team-{team}"))
    })
    .on_connection(|socket| async move {
        let _ = socket.emit("welcome", &(socket.namespace(),));
    });

    let root = io.of("/");
    let i = io.clone();
    root.on("namespaces", move |_, msg| {
        let io = i.clone();
        async move {
            let names = io
                .query(|ctx| {
                    let mut names: Vec<String> = ctx
                        .server
                        .namespaces()
                        .map(|(_, n)| n.to_string())
                        .collect();
                    names.sort();
                    names
                })
                .await
                .unwrap_or_default();
            msg.ack(&(names,));
        }
    });
    root.on("created", move |_, msg| {
        let created = created.lock().unwrap().clone();
        async move { msg.ack(&(created,)) }
    });
    root.on("parent-emit", move |_, msg| {
        let dynamic = dynamic.clone();
        async move {
            if let Ok((tag,)) = msg.args::<(String,)>() {
                let _ = dynamic.emit("all", &(&tag,));
                let _ = dynamic.to("red").emit("red-only", &(&tag,));
            }
            msg.ack(&());
        }
    });

    let listener = common::listener().await?;
    io.serve(listener, common::shutdown_signal()).await
}
