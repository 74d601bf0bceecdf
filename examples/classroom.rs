//! The classic namespaces-and-rooms demo (docs/EXAMPLES.md): namespaces `/`, `/school`,
//! `/home`; `speak` to the whole namespace; in `/school`, `join` a room and `room-speak` to it.
//!
//! `ADMIN=1` adds the official Admin UI: the `/admin` namespace ([`instrument`]) and the UI's
//! page at http://127.0.0.1:3000/admin/ (from the npm package `@socket.io/admin-ui`, installed
//! into tests/browser on first start). `ADMIN_USERNAME` + `ADMIN_PASSWORD_HASH` (bcrypt) turn
//! on its login; `ADMIN_READONLY=1` and `ADMIN_MODE=production` as the reference's options.
//! `PARSER=msgpack` speaks `socket.io-msgpack-parser` instead of the default parser.

mod common;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{header, Response, StatusCode};
use roomcast::io::tokio::admin::{instrument, AdminAuth, AdminOptions, Mode};
use roomcast::io::tokio::{Options, SocketIo};
use roomcast::Config;
use std::path::{Component, Path, PathBuf};

/// Where `npm --prefix tests/browser ci` puts the UI's built files.
const ADMIN_UI: &str = "tests/browser/node_modules/@socket.io/admin-ui/ui/dist";

fn env_on(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    common::init_tracing();
    let admin = env_on("ADMIN");
    let mut config = Config::default();
    config.parser = common::parser();
    // The Admin UI's development mode shows rooms as they change.
    config.room_events = admin;
    let io: SocketIo = SocketIo::new(config, Options::default());
    for nsp in ["/", "/school", "/home"] {
        // Everyone in the namespace, the speaker included, gets what was said, as it came.
        io.of(nsp).on("speak", |socket, msg| async move {
            let _ = socket.nsp().emit("message", &msg.args_raw());
        });
    }
    io.of("/school")
        .on("join", |socket, msg| async move {
            let Some(room) = msg.arg::<String>(0) else {
                return;
            };
            socket.join(room.clone());
            msg.ack(&(format!("Joined {room}"),));
        })
        .on("room-speak", |socket, msg| async move {
            // The room's members get the data (binary included), without the room.
            let Some(room) = msg.arg::<String>(0) else {
                return;
            };
            let _ = socket
                .nsp()
                .to(room)
                .emit("message", &msg.args_raw().skip(1));
        });
    let listener = common::listener().await?;
    if !admin {
        return io.serve(listener, common::shutdown_signal()).await;
    }

    let auth = match (
        std::env::var("ADMIN_USERNAME"),
        std::env::var("ADMIN_PASSWORD_HASH"),
    ) {
        (Ok(username), Ok(password_hash)) => AdminAuth::Basic {
            username,
            password_hash,
        },
        _ => AdminAuth::None,
    };
    let mut opts = AdminOptions::new(auth);
    opts.read_only = env_on("ADMIN_READONLY");
    if std::env::var("ADMIN_MODE").is_ok_and(|m| m == "production") {
        opts.mode = Mode::Production;
    }
    opts.all_events = env_on("ADMIN_ALL_EVENTS");
    instrument(&io, opts)
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;

    let ui = PathBuf::from(std::env::var("ADMIN_UI_DIR").unwrap_or_else(|_| ADMIN_UI.to_owned()));
    if !ui.join("index.html").exists() {
        // The UI ships built in the npm package: fetch it once, as chat does its client.
        tracing::info!(
            "{} missing: running `npm --prefix tests/browser ci`",
            ui.display()
        );
        let ok = std::process::Command::new("npm")
            .args(["--prefix", "tests/browser", "ci", "--no-audit", "--no-fund"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            tracing::warn!("npm failed: /admin/ will not find the UI");
        }
    }
    tracing::info!("Admin UI at /admin/ (server URL: this page's origin, pre-filled)");
    let service = io.service().with_fallback(move |req| {
        let ui = ui.clone();
        async move { serve_ui(&ui, req.uri().path()).await }
    });
    service.serve(listener, common::shutdown_signal()).await?;
    io.shutdown().await;
    Ok(())
}

/// `/admin/...`: the UI's files. Its index gets one line first, which fills in the server's
/// URL (this page's origin) unless the UI remembers another one.
async fn serve_ui(ui: &Path, path: &str) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, kind: &'static str, body: Bytes| {
        let mut r = Response::new(Full::new(body));
        *r.status_mut() = status;
        r.headers_mut()
            .insert(header::CONTENT_TYPE, header::HeaderValue::from_static(kind));
        r
    };
    if path == "/admin" {
        let mut r = reply(StatusCode::MOVED_PERMANENTLY, "text/plain", Bytes::new());
        r.headers_mut().insert(
            header::LOCATION,
            header::HeaderValue::from_static("/admin/"),
        );
        return r;
    }
    let not_found = || {
        reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            Bytes::from_static(b"not found"),
        )
    };
    let Some(rest) = path.strip_prefix("/admin/") else {
        return not_found();
    };
    let rest = if rest.is_empty() { "index.html" } else { rest };
    let rel = Path::new(rest);
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return not_found();
    }
    let Ok(body) = tokio::fs::read(ui.join(rel)).await else {
        return not_found();
    };
    let kind = match rel.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "application/javascript",
        Some("css") => "text/css",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("map") | Some("json") => "application/json",
        _ => "application/octet-stream",
    };
    if rest == "index.html" {
        let html = String::from_utf8_lossy(&body).replacen(
            "<head>",
            "<head><script>localStorage.getItem(\"server_url\")||\
             localStorage.setItem(\"server_url\",location.origin)</script>",
            1,
        );
        return reply(StatusCode::OK, kind, Bytes::from(html));
    }
    reply(StatusCode::OK, kind, Bytes::from(body))
}
