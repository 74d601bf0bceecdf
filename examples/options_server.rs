//! The server options of the reference, from the environment: CORS, `allowRequest`, the
//! `initial_headers` / `headers` hooks, `connection_error`, transports and timings. The server
//! of tests/interop/options.test.mjs and tests/browser/cors.test.mjs.
//!
//! ```sh
//! PORT=3000 CORS_ORIGINS=http://localhost:8080 CORS_CREDENTIALS=1 TOKEN=s3cret \
//!   COOKIE=io-session=abc \
//!   cargo run --release --features tokio --example options_server
//! ```
//!
//! | variable | option |
//! |---|---|
//! | `CORS_ORIGINS` | `cors.origin`: `*`, `true` (reflect every origin), or origins separated by commas |
//! | `CORS_CREDENTIALS=1` | `cors.credentials` |
//! | `CORS_METHODS`, `CORS_ALLOWED_HEADERS`, `CORS_EXPOSED_HEADERS` | lists, separated by commas |
//! | `CORS_MAX_AGE` | `cors.maxAge`, seconds |
//! | `TOKEN` | `allowRequest`: a handshake must carry header `x-token` or query `token` equal to it; else 403 `{"code":4,"message":"invalid token"}` |
//! | `COOKIE` | `initial_headers`: `set-cookie: <COOKIE>; Path=/; HttpOnly; SameSite=Lax` on every handshake |
//! | `TRANSPORTS` | `polling`, `websocket`, or `polling,websocket` (the default) |
//! | `ALLOW_UPGRADES=0` | `allowUpgrades: false` |
//! | `PING_INTERVAL`, `PING_TIMEOUT`, `CONNECT_TIMEOUT`, `UPGRADE_TIMEOUT` | ms |
//! | `MAX_HTTP_BUFFER_SIZE` | bytes |
//! | `IO_PATH` | `path` (default `/socket.io/`) |
//!
//! Every response gets `x-served-by: roomcast` (the `headers` hook). On namespace `/`: `echo`
//! acknowledges with its arguments; `report` acknowledges with what the server saw: the
//! refused requests (`connection_error`: code, message, context, URL; the last 100) and the
//! `cookie` header of the last request of a session.

mod common;

use roomcast::io::tokio::{Cors, Forbidden, Options, SocketIo};
use roomcast::{Config, Transports};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What `report` tells.
#[derive(Default)]
struct Seen {
    errors: VecDeque<serde_json::Value>,
    cookie: Option<String>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn list(name: &str) -> Option<Vec<String>> {
    var(name).map(|v| v.split(',').map(|s| s.trim().to_owned()).collect())
}

fn number(name: &str) -> Option<u64> {
    var(name).map(|v| match v.parse() {
        Ok(n) => n,
        Err(_) => {
            eprintln!("{name}: not a number: {v}");
            std::process::exit(2);
        }
    })
}

fn cors() -> Option<Cors> {
    let origins = var("CORS_ORIGINS")?;
    let mut cors = match origins.as_str() {
        "*" => Cors::any(),
        "true" => Cors::mirror(),
        _ => Cors::origins(origins.split(',').map(str::trim)),
    };
    cors = cors.credentials(var("CORS_CREDENTIALS").as_deref() == Some("1"));
    if let Some(m) = list("CORS_METHODS") {
        cors = cors.methods(m);
    }
    if let Some(h) = list("CORS_ALLOWED_HEADERS") {
        cors = cors.allowed_headers(h);
    }
    if let Some(h) = list("CORS_EXPOSED_HEADERS") {
        cors = cors.exposed_headers(h);
    }
    if let Some(s) = number("CORS_MAX_AGE") {
        cors = cors.max_age(Duration::from_secs(s));
    }
    Some(cors)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    common::init_tracing();
    let mut config = Config::default();
    config.parser = common::parser();
    let ms = |name| number(name).map(Duration::from_millis);
    if let Some(d) = ms("PING_INTERVAL") {
        config.ping_interval = d;
    }
    if let Some(d) = ms("PING_TIMEOUT") {
        config.ping_timeout = d;
    }
    if let Some(d) = ms("CONNECT_TIMEOUT") {
        config.connect_timeout = d;
    }
    if let Some(d) = ms("UPGRADE_TIMEOUT") {
        config.upgrade_timeout = d;
    }
    if let Some(n) = number("MAX_HTTP_BUFFER_SIZE") {
        config.limits.max_payload = n as usize;
    }
    if let Some(t) = list("TRANSPORTS") {
        config.transports = Transports {
            polling: t.iter().any(|t| t == "polling"),
            websocket: t.iter().any(|t| t == "websocket"),
        };
    }
    config.allow_upgrades = var("ALLOW_UPGRADES").as_deref() != Some("0");

    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut options = Options::default();
    if let Some(path) = var("IO_PATH") {
        options = options.path(path);
    }
    if let Some(cors) = cors() {
        options = options.cors(cors);
    }
    if let Some(token) = var("TOKEN") {
        let token: Arc<str> = token.into();
        options = options.allow_request(move |req| {
            let token = token.clone();
            async move {
                let header = req.headers().any(|(n, v)| n == "x-token" && v == &*token);
                let query = req
                    .query()
                    .iter()
                    .any(|(k, v)| k == "token" && v == &*token);
                if header || query {
                    Ok(())
                } else {
                    Err(Forbidden::with_message("invalid token"))
                }
            }
        });
    }
    if let Some(cookie) = var("COOKIE") {
        let cookie = format!("{cookie}; Path=/; HttpOnly; SameSite=Lax");
        match cookie.parse::<hyper::header::HeaderValue>() {
            Ok(value) => {
                options = options.initial_headers(move |h, _| {
                    h.append(hyper::header::SET_COOKIE, value.clone());
                });
            }
            Err(_) => {
                eprintln!("COOKIE: not a header value");
                std::process::exit(2);
            }
        }
    }
    let s = seen.clone();
    options = options.headers(move |h, req| {
        h.insert(
            "x-served-by",
            hyper::header::HeaderValue::from_static("roomcast"),
        );
        let later = req.uri().query().is_some_and(|q| q.contains("sid="));
        if let (true, Some(c)) = (later, req.headers().get(hyper::header::COOKIE)) {
            s.lock().unwrap().cookie = Some(String::from_utf8_lossy(c.as_bytes()).into_owned());
        }
    });
    let s = seen.clone();
    options = options.on_connection_error(move |e| {
        tracing::info!(code = e.code.code(), message = %e.message, context = %e.context, "connection_error");
        let mut s = s.lock().unwrap();
        if s.errors.len() == 100 {
            s.errors.pop_front();
        }
        s.errors.push_back(serde_json::json!({
            "code": e.code.code(),
            "message": e.message,
            "context": e.context,
            "url": e.request.uri().to_string(),
        }));
    });

    let io: SocketIo = SocketIo::new(config, options);
    let s = seen.clone();
    io.of("/")
        .on("echo", |_, msg| async move {
            msg.ack(&msg.args_raw());
        })
        .on("report", move |_, msg| {
            let report = {
                let s = s.lock().unwrap();
                serde_json::json!({ "errors": s.errors, "cookie": s.cookie })
            };
            async move {
                msg.ack(&(report,));
            }
        });
    let listener = common::listener().await?;
    io.serve(listener, common::shutdown_signal()).await
}
