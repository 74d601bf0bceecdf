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
