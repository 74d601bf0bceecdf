//! The reference's chat demo server, ported line by line (docs/EXAMPLES.md `node_chat`, issue
//! 10 "measured ergonomics"): socket.io's `examples/chat/index.js`, unchanged since commit
//! d00c0c0d (2020-11-09) and current at d2d753fe (socket.io 4.8.3, `"socket.io": "^4.0.0"`).
//! `tests/interop/node_chat.test.mjs` checks it with the official client; the socket checks
//! also pass against that JS file run on Node with socket.io 4.8.4.
//!
//! Lines (counted the same way for both, `grep -v '^\s*$' F | grep -cv '^\s*//'`: non-blank
//! lines that do not start with `//`, so Rust's `//!` and `///` are comments too):
//! index.js 52 code lines (76 raw); this file 70 code lines, 70/52 = 1.35 (125 raw; 104
//! without this 21-line header, 104/76 = 1.37). `express.static` is a library call in the JS,
//! so its counterpart here, `common::serve_dir` (with `serve_file`, `reply`, `percent_decode`:
//! 67 code lines in examples/common/mod.rs), is counted apart; with it, 137 lines, 2.63.
//!
//! Nothing of the JS is left out. Where it differs:
//! - Node serves its own client bundle at `/socket.io/socket.io.js` (`serveClient`); roomcast
//!   does not, and the Engine.IO path takes every request under `/socket.io/`, so the bundle
//!   (from `npm --prefix tests/interop ci`) is served at `/socket.io.min.js`.
//! - `public/` is a page of our own (examples/node_chat/public), not the reference's.
//! - A binary argument of `new message` reaches the others as an array of numbers (the JS relays
//!   the Buffer): `serde_json::Value` holds no bytes.
//! - It listens on 127.0.0.1 like every example here (Node: every interface).

mod common;

use roomcast::io::tokio::{Options, SocketIo};
use roomcast::Config;
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

/// The demo's `public/` next to its script: here our own page (examples/node_chat/public).
const PUBLIC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/node_chat/public");
/// The official browser client, which Node's server serves itself (`serveClient`): the copy
/// `npm --prefix tests/interop ci` installs.
const CLIENT_JS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/interop/node_modules/socket.io-client/dist/socket.io.min.js"
);

/// What the demo keeps per socket: `socket.username` (`None` while undefined) and the
/// connection's `addedUser`.
#[derive(Clone, Default)]
struct User {
    username: Option<Value>,
    added_user: bool,
}

/// An object literal as `JSON.stringify` writes it: `undefined` (`None`) fields left out.
fn object(fields: &[(&str, Option<Value>)]) -> Value {
    let defined = fields
        .iter()
        .filter_map(|(k, v)| Some((k.to_string(), v.clone()?)));
    Value::Object(defined.collect())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Setup basic server: `PORT` (default 3000), the port logged once listening.
    common::init_tracing();
    let io: SocketIo<User> = SocketIo::new(Config::default(), Options::default());
    let listener = common::listener().await?;

    // Routing: the static files, and the client bundle.
    let app = io.service().with_fallback(|req| async move {
        match req.uri().path() {
            "/socket.io.min.js" => common::serve_file(CLIENT_JS).await,
            _ => common::serve_dir(PUBLIC, req).await,
        }
    });

    // Chatroom

    static NUM_USERS: AtomicUsize = AtomicUsize::new(0);

    io.of("/").on_connection(|socket| async move {
        // `new message`: the others get it with the sender's name.
        socket.on("new message", |socket, msg| async move {
            let said = object(&[
                ("username", socket.data().username),
                ("message", msg.arg(0)),
            ]);
            let _ = socket.broadcast().emit("new message", &(said,));
        });

        // `add user`: once per connection, the name kept on the socket.
        socket.on("add user", |socket, msg| async move {
            if socket.with_data(|u| std::mem::replace(&mut u.added_user, true)) {
                return;
            }

            // The name, kept with the socket.
            socket.with_data(|u| u.username = msg.arg(0));
            let num_users = NUM_USERS.fetch_add(1, SeqCst) + 1;
            let _ = socket.emit("login", &(object(&[("numUsers", Some(num_users.into()))]),));
            // Everyone else hears of the newcomer.
            let username = socket.data().username;
            let joined = object(&[("username", username), ("numUsers", Some(num_users.into()))]);
            let _ = socket.broadcast().emit("user joined", &(joined,));
        });

        // `typing`, relayed to the others.
        socket.on("typing", |socket, _| async move {
            let typing = object(&[("username", socket.data().username)]);
            let _ = socket.broadcast().emit("typing", &(typing,));
        });

        // `stop typing`, relayed to the others.
        socket.on("stop typing", |socket, _| async move {
            let typing = object(&[("username", socket.data().username)]);
            let _ = socket.broadcast().emit("stop typing", &(typing,));
        });

        // On disconnect, a user who had joined is counted out.
        socket.on_disconnect(|socket, _| async move {
            if socket.data().added_user {
                let num_users = NUM_USERS.fetch_sub(1, SeqCst) - 1;

                // Everyone else hears of it.
                let username = socket.data().username;
                let left = object(&[("username", username), ("numUsers", Some(num_users.into()))]);
                let _ = socket.broadcast().emit("user left", &(left,));
            }
        });
    });

    app.serve(listener, common::shutdown_signal()).await?;
    io.shutdown().await;
    Ok(())
}
