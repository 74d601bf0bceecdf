//! A small chat to try in a browser with the official client: open http://127.0.0.1:3000/
//! (docs/EXAMPLES.md). The page loads the official client from `/socket.io.min.js`, read from
//! `$SOCKET_IO_CLIENT_JS` (default: the copy `npm --prefix tests/interop ci` installs).
//!
//! `RECOVERY_MS` turns on connection state recovery with that window; `PING_INTERVAL_MS` and
//! `PING_TIMEOUT_MS` set the heartbeat (default 25000 and 20000).

mod common;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{header, Response, StatusCode};
use roomcast::io::tokio::{Options, Rejection, SocketIo};
use roomcast::{Config, RecoveryConfig};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PAGE: &str = include_str!("chat.html");
const CLIENT_JS: &str = "tests/interop/node_modules/socket.io-client/dist/socket.io.min.js";

/// The largest image relayed, in bytes (the packet must also fit `maxPayload`, 1 MB).
const MAX_IMAGE: usize = 512 * 1024;

/// An image as a client sends it.
#[derive(serde::Deserialize)]
struct ImageIn {
    #[serde(rename = "type")]
    kind: String,
    data: Bytes,
}

/// An image as the others receive it.
#[derive(serde::Serialize)]
struct ImageOut {
    user: String,
    #[serde(rename = "type")]
    kind: String,
    data: Bytes,
}

/// `$name` as a number of milliseconds, if set.
fn env_ms(name: &str) -> std::io::Result<Option<Duration>> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(v) => v
            .trim()
            .parse()
            .map(|ms| Some(Duration::from_millis(ms)))
            .map_err(|_| {
                std::io::Error::other(format!("{name}={v:?}: want a number of milliseconds"))
            }),
    }
}

/// The users whose connection dropped in a way recovery may undo, by socket id, with the
/// ticket of that drop: their `left` waits until the recovery window has passed.
#[derive(Clone, Default)]
struct Away(Arc<Mutex<AwayState>>);

#[derive(Default)]
struct AwayState {
    last_ticket: u64,
    tickets: HashMap<String, u64>,
}

impl Away {
    fn lock(&self) -> std::sync::MutexGuard<'_, AwayState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// Marks `sid` away; the ticket tells this drop from a later one.
    fn mark(&self, sid: &str) -> u64 {
        let mut g = self.lock();
        g.last_ticket += 1;
        let ticket = g.last_ticket;
        g.tickets.insert(sid.to_owned(), ticket);
        ticket
    }
    /// `sid` is back, or gone for good.
    fn clear(&self, sid: &str) {
        self.lock().tickets.remove(sid);
    }
    /// Clears `sid` if it is still away since the drop with `ticket`; true if it was.
    fn expire(&self, sid: &str, ticket: u64) -> bool {
        let mut g = self.lock();
        let still = g.tickets.get(sid) == Some(&ticket);
        if still {
            g.tickets.remove(sid);
        }
        still
    }
    fn contains(&self, sid: &str) -> bool {
        self.lock().tickets.contains_key(sid)
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    common::init_tracing();
    let mut config = Config::default();
    if let Some(d) = env_ms("PING_INTERVAL_MS")? {
        config.ping_interval = d;
    }
    if let Some(d) = env_ms("PING_TIMEOUT_MS")? {
        config.ping_timeout = d;
    }
    // The recovery window, when recovery is on.
    let window = env_ms("RECOVERY_MS")?;
    if let Some(window) = window {
        let mut recovery = RecoveryConfig::default();
        recovery.max_disconnection_duration = window;
        recovery.skip_middlewares = true;
        config.recovery = Some(recovery);
    }
    let away = Away::default();

    // Each socket's data is its user name.
    let io: SocketIo<String> = SocketIo::new(config, Options::default());
    let chat = io.of("/");
    // The user name comes with the handshake's auth: middleware checks it and keeps it as
    // the socket's data, or refuses the connection (the client's `connect_error` says why).
    chat.use_(|socket| async move {
        let auth: serde_json::Value = socket.handshake().auth_as().unwrap_or_default();
        let name = auth["username"].as_str().filter(|n| !n.trim().is_empty());
        let name = name.ok_or_else(|| {
            Rejection::new("username required").with_data(json!({"reason": "missing username"}))
        })?;
        socket.set_data(name.to_owned());
        Ok(())
    });
    let away_c = away.clone();
    chat.on_connection(move |socket| {
        let away = away_c.clone();
        async move {
            let user = socket.data();
            let recovered = socket.recovered();
            if recovered {
                away.clear(socket.id());
            }
            let online = socket
                .io()
                .query(|ctx| {
                    ctx.server
                        .namespace("/")
                        .map_or(0, |n| ctx.server.to_namespace(n).sockets().len())
                })
                .await
                .unwrap_or(0);
            let welcome = if window.is_some() {
                json!({"user": user, "online": online, "recovered": recovered})
            } else {
                json!({"user": user, "online": online})
            };
            let _ = socket.emit("welcome", &(welcome,));
            // A recovered socket never left, as far as the others know.
            if !recovered {
                let _ = socket.broadcast().emit("joined", &(user,));
            }
        }
    });
    chat.on("say", |socket, msg| async move {
        if let Ok((text,)) = msg.args::<(String,)>() {
            let user = socket.data();
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
            let user = socket.data();
            let said = json!({"user": user, "text": text, "room": room});
            let _ = socket.to(room).emit("said", &(said,));
        }
    });
    chat.on("image", |socket, msg| async move {
        // One argument: `{"type": "image/…", "data": <binary>}`; the others get it with the
        // sender's name, the bytes as the attachment they came as (never copied).
        if let Ok((image,)) = msg.args::<(ImageIn,)>() {
            if !image.kind.starts_with("image/") || image.data.len() > MAX_IMAGE {
                return;
            }
            let user = socket.data();
            let out = ImageOut {
                user,
                kind: image.kind,
                data: image.data,
            };
            let _ = socket.broadcast().emit("image", &(out,));
        }
    });
    let away_w = away.clone();
    let recovery = window.is_some();
    chat.on("whisper", move |socket, msg| {
        let away = away_w.clone();
        async move {
            let Ok((to, text)) = msg.args::<(String, String)>() else {
                msg.ack(&(false,));
                return;
            };
            let from = socket.data();
            let answer = socket
                .io()
                .query(move |ctx| {
                    let whispered = json!({"from": from, "text": text});
                    if let Some(target) = ctx.server.socket_by_sid(&to) {
                        let here = ctx.server.socket_namespace(target);
                        if here
                            .is_some_and(|n| ctx.server.namespace_name(n).is_some_and(|n| n == "/"))
                        {
                            let sent = ctx.server.emit(target, "whispered", &(whispered,));
                            return json!(sent.is_ok());
                        }
                        return json!(false);
                    }
                    if !recovery {
                        return json!(false);
                    }
                    // Not here, and may come back: the whisper goes to its own room, where the
                    // recovery log keeps it for a replay. `held` if it is away for sure (in
                    // the moment between the drop and its disconnect handler, it is kept
                    // all the same, and the answer is still `false`).
                    let away = away.contains(&to);
                    if let Some(root) = ctx.server.namespace("/") {
                        let _ = ctx
                            .server
                            .to_namespace(root)
                            .to(to)
                            .emit("whispered", &(whispered,));
                    }
                    if away {
                        json!("held")
                    } else {
                        json!(false)
                    }
                })
                .await
                .unwrap_or(json!(false));
            msg.ack(&(answer,));
        }
    });
    let away_d = away.clone();
    chat.on_disconnect(move |socket, reason| {
        let away = away_d.clone();
        async move {
            let user = socket.data();
            let sid = socket.id().to_owned();
            let Some(window) = window.filter(|_| reason.is_recoverable()) else {
                away.clear(&sid);
                let _ = socket.io().of("/").emit("left", &(user,));
                return;
            };
            // It may come back within the window with its id, rooms and missed messages:
            // announce `left` only once the window has passed without it.
            let ticket = away.mark(&sid);
            let io = socket.io().clone();
            tokio::spawn(async move {
                tokio::time::sleep(window + Duration::from_millis(100)).await;
                if !away.expire(&sid, ticket) {
                    return; // back, or dropped again since
                }
                let back = io
                    .query(move |ctx| ctx.server.socket_by_sid(&sid).is_some())
                    .await
                    .unwrap_or(false);
                if !back {
                    let _ = io.of("/").emit("left", &(user,));
                }
            });
        }
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
