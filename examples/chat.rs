//! A small chat to try in a browser with the official client: open http://127.0.0.1:3000/
//! (docs/EXAMPLES.md). The page loads the official client from `/socket.io.min.js`, read from
//! `$SOCKET_IO_CLIENT_JS` (default: the copy `npm --prefix tests/interop ci` installs).

mod common;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{header, Response, StatusCode};
use roomcast::io::tokio::{Options, Rejection, SocketIo};
use roomcast::Config;
use serde_json::json;

const PAGE: &str = include_str!("chat.html");
const CLIENT_JS: &str = "tests/interop/node_modules/socket.io-client/dist/socket.io.min.js";

#[tokio::main]
async fn main() -> std::io::Result<()> {
    common::init_tracing();
    // Each socket's data is its user name.
    let io: SocketIo<String> = SocketIo::new(Config::default(), Options::default());
    let chat = io.ns("/");
    chat.auth(|auth| async move {
        let name = auth
            .and_then(|a| serde_json::from_str::<serde_json::Value>(&a).ok())
            .and_then(|a| a.get("username")?.as_str().map(str::to_owned))
            .filter(|n| !n.trim().is_empty());
        name.ok_or_else(|| {
            Rejection::new("username required").with_data(json!({"reason": "missing username"}))
        })
    });
    chat.on_connection(|socket| async move {
        let user = socket.data().await.unwrap_or_default();
        let online = socket
            .io()
            .query(|ctx| {
                ctx.server
                    .namespace("/")
                    .map_or(0, |n| ctx.server.to_namespace(n).sockets().len())
            })
            .await
            .unwrap_or(0);
        let _ = socket.emit("welcome", &(json!({"user": user, "online": online}),));
        let _ = socket.broadcast().emit("joined", &(user,));
    });
    chat.on("say", |socket, msg| async move {
        if let Ok((text,)) = msg.args::<(String,)>() {
            let user = socket.data().await.unwrap_or_default();
            let _ = socket
                .broadcast()
                .emit("said", &(json!({"user": user, "text": text}),));
        }
    });
    chat.on("join-room", |socket, msg| async move {
        if let Ok((room,)) = msg.args::<(String,)>() {
            socket.join(room.clone());
            msg.ack(&(format!("joined {room}"),));
        }
    });
    chat.on("room-say", |socket, msg| async move {
        if let Ok((room, text)) = msg.args::<(String, String)>() {
            let user = socket.data().await.unwrap_or_default();
            let said = json!({"user": user, "text": text, "room": room});
            let _ = socket.to(room).emit("said", &(said,));
        }
    });
    chat.on("whisper", |socket, msg| async move {
        let Ok((to, text)) = msg.args::<(String, String)>() else {
            msg.ack(&(false,));
            return;
        };
        let from = socket.data().await.unwrap_or_default();
        let delivered = socket
            .io()
            .query(move |ctx| {
                let target = ctx.server.socket_by_sid(&to)?;
                (ctx.server
                    .namespace_name(ctx.server.socket_namespace(target)?)
                    == "/")
                    .then(|| {
                        ctx.server
                            .emit(target, "whispered", &(json!({"from": from, "text": text}),))
                            .is_ok()
                    })
            })
            .await
            .flatten()
            .unwrap_or(false);
        msg.ack(&(delivered,));
    });
    chat.on_disconnect(|socket, _reason| async move {
        let user = socket
            .data()
            .await
            .unwrap_or_else(|| socket.id().to_owned());
        let _ = socket.io().to_ns("/").emit("left", &(user,));
    });

    let client_js = std::env::var("SOCKET_IO_CLIENT_JS").unwrap_or_else(|_| CLIENT_JS.to_owned());
    if !std::path::Path::new(&client_js).exists() {
        // The page needs the official browser client: fetch it from npm once, as the
        // interop tests do.
        tracing::info!("{client_js} missing: running `npm --prefix tests/interop ci`");
        let ok = std::process::Command::new("npm")
            .args(["--prefix", "tests/interop", "ci", "--no-audit", "--no-fund"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            tracing::warn!("npm failed: the page will not find /socket.io.min.js");
        }
    }
    let service = io.service().with_fallback(move |req| {
        let client_js = client_js.clone();
        async move {
            let (status, kind, body) = match req.uri().path() {
                "/" => (
                    StatusCode::OK,
                    "text/html; charset=utf-8",
                    Bytes::from_static(PAGE.as_bytes()),
                ),
                "/socket.io.min.js" => match tokio::fs::read(&client_js).await {
                    Ok(js) => (StatusCode::OK, "application/javascript", Bytes::from(js)),
                    Err(_) => (
                        StatusCode::NOT_FOUND,
                        "text/plain",
                        Bytes::from(format!(
                            "{client_js} not found: run `npm --prefix tests/interop ci`"
                        )),
                    ),
                },
                _ => (
                    StatusCode::NOT_FOUND,
                    "text/plain",
                    Bytes::from_static(b"not found"),
                ),
            };
            let mut r = Response::new(Full::new(body));
            *r.status_mut() = status;
            r.headers_mut()
                .insert(header::CONTENT_TYPE, header::HeaderValue::from_static(kind));
            r
        }
    });
    let listener = common::listener().await?;
    service.serve(listener, common::shutdown_signal()).await?;
    io.shutdown().await;
    Ok(())
}
