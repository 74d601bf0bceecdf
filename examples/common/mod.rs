//! What every example shares: logging, the listening socket, and graceful shutdown.
#![allow(dead_code)]

use tokio::net::TcpListener;

/// Logs through `tracing`; `RUST_LOG` sets the level (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
}

/// The parser `$PARSER` names: `json` (the default) or `msgpack`. Exits on any other name.
pub fn parser() -> roomcast::packet::Parser {
    let name = std::env::var("PARSER").unwrap_or_default();
    match name.parse() {
        Ok(p) => {
            if p != roomcast::packet::Parser::Json {
                tracing::info!("parser: {p}");
            }
            p
        }
        Err(e) => {
            eprintln!("PARSER: {e}");
            std::process::exit(2);
        }
    }
}

/// Binds `127.0.0.1:$PORT` (default 3000).
pub async fn listener() -> std::io::Result<TcpListener> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!("listening on http://127.0.0.1:{port}");
    Ok(listener)
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

/// A response with a body and its content type.
fn reply(
    status: hyper::StatusCode,
    kind: &'static str,
    body: impl Into<bytes::Bytes>,
) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    let mut r = hyper::Response::new(http_body_util::Full::new(body.into()));
    *r.status_mut() = status;
    let kind = hyper::header::HeaderValue::from_static(kind);
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, kind);
    r
}

/// One file, its type from its extension; 404 if it cannot be read.
pub async fn serve_file(
    file: impl AsRef<std::path::Path>,
) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    let file = file.as_ref();
    let kind = match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "application/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") | Some("map") => "application/json",
        Some("png") => "image/png",
        Some("jpg") | Some("jpeg") => "image/jpeg",
        Some("svg") => "image/svg+xml",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    };
    match tokio::fs::read(file).await {
        Ok(body) => reply(hyper::StatusCode::OK, kind, body),
        Err(_) => reply(hyper::StatusCode::NOT_FOUND, "text/plain", "not found"),
    }
}

/// The files under `dir` by URL path, the part of Express's `express.static(dir)` a demo page
/// needs: `GET`/`HEAD`, a path ending in `/` is that directory's `index.html`, percent-escapes
/// decoded, `..` (escaped or not) and absolute segments refused with 404.
pub async fn serve_dir<B>(
    dir: impl AsRef<std::path::Path>,
    req: hyper::Request<B>,
) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    use std::path::Component;
    let not_found = || reply(hyper::StatusCode::NOT_FOUND, "text/plain", "not found");
    if req.method() != hyper::Method::GET && req.method() != hyper::Method::HEAD {
        return not_found();
    }
    let Some(path) = percent_decode(req.uri().path()) else {
        return not_found();
    };
    let mut rel = std::path::PathBuf::from(path.trim_start_matches('/'));
    if path.ends_with('/') {
        rel.push("index.html");
    }
    if !rel
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return not_found();
    }
    serve_file(dir.as_ref().join(rel)).await
}

/// `%xx` escapes decoded; `None` if one is malformed or the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let (mut out, mut bytes) = (Vec::with_capacity(s.len()), s.bytes());
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let hex = [bytes.next()?, bytes.next()?];
        out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
    }
    String::from_utf8(out).ok()
}
