//! The adapter mounted in an axum application (`Router::route_service`), serving the official
//! `socket.io-client` run by `node`: long-polling first, then the upgrade to WebSocket, then an
//! emit with ack. Needs `node` and `npm`; installs the client into tests/interop on first run.
#![cfg(feature = "tokio")]

use roomcast::io::tokio::{Options, SocketIo};
use roomcast::Config;
use std::path::Path;
use std::time::Duration;
use tokio::time::timeout;

/// The client: connects over polling, waits for the upgrade, asks for an ack, exits 0.
const CLIENT: &str = r#"
import { io } from "socket.io-client";
const fail = (why) => { console.error("FAIL", why); process.exit(1); };
setTimeout(() => fail("timed out"), 20000).unref();
const socket = io(process.env.URL, { reconnection: false, timeout: 5000 });
socket.on("connect_error", (e) => fail("connect_error " + e.message));
socket.on("connect", () => {
  const engine = socket.io.engine;
  const ask = async () => {
    const answer = await socket.timeout(5000).emitWithAck("echo", "hi", { n: 7 });
    if (JSON.stringify(answer) !== JSON.stringify({ got: ["hi", { n: 7 }] })) fail(answer);
    console.log("ok", engine.transport.name);
    socket.disconnect();
    process.exit(0);
  };
  if (engine.transport.name === "websocket") ask().catch(fail);
  else engine.once("upgrade", () => ask().catch(fail));
});
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_axum_mount_serves_the_official_client() {
    let interop = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    if !interop.join("node_modules/socket.io-client").exists() {
        let status = tokio::process::Command::new("npm")
            .args(["--prefix", "tests/interop", "ci", "--no-audit", "--no-fund"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .kill_on_drop(true)
            .status();
        let status = timeout(Duration::from_secs(300), status)
            .await
            .expect("npm ci took over 300 s")
            .expect("npm not found: install node and npm");
        assert!(status.success(), "npm --prefix tests/interop ci failed");
    }

    let io: SocketIo = SocketIo::new(Config::default(), Options::default());
    io.of("/").on("echo", |_, msg| async move {
        let args: serde_json::Value = msg.args().unwrap();
        msg.ack(&(serde_json::json!({ "got": args }),));
    });
    let app = axum::Router::new().route_service("/socket.io/", io.service());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let run = tokio::process::Command::new("node")
        .args(["--input-type=module", "-e", CLIENT])
        .env("URL", format!("http://{addr}"))
        .current_dir(&interop)
        .kill_on_drop(true)
        .output();
    let out = timeout(Duration::from_secs(30), run)
        .await
        .expect("the client took over 30 s")
        .expect("node not found");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "client failed ({}): {stdout} {stderr}",
        out.status
    );
    assert_eq!(stdout.trim(), "ok websocket", "{stderr}");
}
