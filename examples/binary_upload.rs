//! The binary-attachment memory benchmark (docs/BENCHMARKS.md): clients send, all at once,
//! one event each carrying ten 1 MiB binary attachments; the server deserializes the arguments
//! into a struct with `bytes::Bytes` fields, checks every byte, and acks. How much memory does
//! the server need per byte received?
//!
//! The server is this binary with `--server`, started as a child process, so its peak RSS
//! (`VmHWM`) is its own. `Limits::max_payload` is raised so that a 1 MiB WebSocket frame fits.
//!
//! ```sh
//! cargo build --release --features tokio --example binary_upload
//! target/release/examples/binary_upload           # 20 clients x 10 x 1 MiB
//! target/release/examples/binary_upload --quick   # 4 clients x 10 x 256 KiB
//! ```
//!
//! Flags also read from `UPLOAD_<NAME>`; `--help` lists them. The report ends with a JSON line.

#[path = "common/bench.rs"]
mod bench;
mod common;

use bench::{mib, ms, BoxError, Params, Quantiles, RssSampler, ServerProcess};
use bytes::Bytes;
use futures_util::SinkExt;
use roomcast::io::tokio::{Options, SocketIo};
use roomcast::Config;
use serde::Deserialize;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const HELP: &str = "\
binary_upload: concurrent events with large binary attachments, the server's peak memory

  --clients N          clients, one upload each, all at once   UPLOAD_CLIENTS      20 (quick 4)
  --attachments N      binary attachments per event            UPLOAD_ATTACHMENTS  10
  --bytes B            size of each attachment                 UPLOAD_BYTES        1048576 (quick 262144)
  --sample-ms MS       server RSS sampling interval            UPLOAD_SAMPLE_MS    1000
  --timeout SECS       wait for the acks at most               UPLOAD_TIMEOUT      120
  --quick              the short defaults
";

static UPLOADS_OK: AtomicU64 = AtomicU64::new(0);
static UPLOADS_BAD: AtomicU64 = AtomicU64::new(0);
static BYTES_RECEIVED: AtomicU64 = AtomicU64::new(0);

/// The byte at `j` of attachment `i` of client `c`: every byte is checked, and an attachment
/// put in the wrong place or shifted would not match.
fn pattern(c: usize, i: usize, j: usize) -> u8 {
    ((j + 7 * i + 13 * c) % 251) as u8
}

/// The event's one argument: placeholders in `files` become the attachments.
#[derive(Deserialize)]
struct Upload {
    client: usize,
    files: Vec<Bytes>,
}

fn check(u: &Upload, attachments: usize, size: usize) -> Result<(), String> {
    if u.files.len() != attachments {
        return Err(format!("{} files, expected {attachments}", u.files.len()));
    }
    for (i, f) in u.files.iter().enumerate() {
        if f.len() != size {
            return Err(format!("file {i}: {} bytes, expected {size}", f.len()));
        }
        if let Some(j) = f
            .iter()
            .enumerate()
            .position(|(j, &b)| b != pattern(u.client, i, j))
        {
            return Err(format!("file {i}: byte {j} differs"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Server

fn server(p: &Params) -> std::io::Result<()> {
    common::init_tracing();
    let attachments: usize = p.get("attachments", 10, 10);
    let size: usize = p.get("bytes", 1 << 20, 1 << 18);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut config = Config::default();
        // One attachment is one WebSocket message: it must fit in `max_payload`.
        config.limits.max_payload = config.limits.max_payload.max(size + 64 * 1024);
        config.limits.max_attachments = config.limits.max_attachments.max(attachments);
        let io: SocketIo = SocketIo::new(config, Options::default());
        io.of("/").on("upload", move |_socket, msg| async move {
            let received: usize = msg.event.data().attachments().iter().map(Bytes::len).sum();
            BYTES_RECEIVED.fetch_add(received as u64, Ordering::Relaxed);
            let verdict = msg
                .args::<(Upload,)>()
                .map_err(|e| format!("deserializing: {e}"))
                .and_then(|(u,)| check(&u, attachments, size));
            match &verdict {
                Ok(()) => UPLOADS_OK.fetch_add(1, Ordering::Relaxed),
                Err(_) => UPLOADS_BAD.fetch_add(1, Ordering::Relaxed),
            };
            msg.ack(&(json!({
                "ok": verdict.is_ok(),
                "bytes": received,
                "error": verdict.err(),
            }),));
        });
        bench::serve_child(io, || {
            json!({
                "uploads_ok": UPLOADS_OK.load(Ordering::Relaxed),
                "uploads_bad": UPLOADS_BAD.load(Ordering::Relaxed),
                "bytes_received": BYTES_RECEIVED.load(Ordering::Relaxed),
            })
        })
        .await
    })
}

// ---------------------------------------------------------------------------------------------
// Load generator

fn main() {
    let p = Params::parse("UPLOAD", HELP);
    if p.server {
        if let Err(e) = server(&p) {
            eprintln!("binary_upload --server: {e}");
            std::process::exit(1);
        }
        return;
    }
    let clients: usize = p.get("clients", 20, 4);
    let attachments: usize = p.get("attachments", 10, 10);
    let size: usize = p.get("bytes", 1 << 20, 1 << 18);
    let sample = Duration::from_millis(p.get("sample-ms", 1000, 1000).max(10));
    let timeout = p.secs("timeout", 120.0, 60.0);
    let server_args = vec![
        "--attachments".to_owned(),
        attachments.to_string(),
        "--bytes".to_owned(),
        size.to_string(),
    ];
    let mut server = match ServerProcess::spawn(&server_args) {
        Ok(sp) => sp,
        Err(e) => {
            eprintln!("binary_upload: {e}");
            std::process::exit(1);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = rt.block_on(run(
        &mut server,
        clients,
        attachments,
        size,
        sample,
        timeout,
    ));
    rt.shutdown_timeout(Duration::from_millis(200));
    drop(server);
    if let Err(e) = result {
        eprintln!("binary_upload: {e}");
        std::process::exit(1);
    }
}

/// What one client's upload came to.
struct Outcome {
    ack: Result<serde_json::Value, String>,
    /// From the first byte sent to the ack.
    took_ns: u64,
}

async fn run(
    server: &mut ServerProcess,
    clients: usize,
    attachments: usize,
    size: usize,
    sample: Duration,
    timeout: Duration,
) -> Result<(), BoxError> {
    let pid = server.pid();
    let addr = server.addr.clone();
    let origin = Instant::now();
    let sampler = RssSampler::start(pid, sample, origin, None);
    eprintln!("server pid {pid} on {addr}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_idle = bench::rss(pid).unwrap_or(0);

    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        conns.push(bench::connect_retrying(&addr).await?);
    }
    // Everything is built before the clock starts: the clients send at once.
    let payloads: Vec<Vec<Bytes>> = (0..clients)
        .map(|c| {
            (0..attachments)
                .map(|i| Bytes::from((0..size).map(|j| pattern(c, i, j)).collect::<Vec<u8>>()))
                .collect()
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_connected = bench::rss(pid).unwrap_or(0);
    eprintln!("{clients} clients connected; sending {attachments} x {size} bytes each ...");

    let start = Arc::new(tokio::sync::Barrier::new(clients));
    let t0 = origin.elapsed().as_secs_f64();
    let tasks: Vec<_> = conns
        .into_iter()
        .zip(payloads)
        .enumerate()
        .map(|(c, (mut ws, files))| {
            let start = start.clone();
            tokio::spawn(async move {
                let placeholders: Vec<_> = (0..attachments)
                    .map(|n| json!({"_placeholder": true, "num": n}))
                    .collect();
                let header = format!(
                    "45{attachments}-1{}",
                    json!(["upload", {"client": c, "files": placeholders}])
                );
                start.wait().await;
                let t = bench::now_ns();
                let sent = async {
                    ws.feed(Message::text(header)).await?;
                    for f in files {
                        ws.feed(Message::binary(f)).await?;
                    }
                    ws.flush().await?;
                    loop {
                        let t = bench::next_text(&mut ws).await?;
                        if let Some(a) = t.strip_prefix("431") {
                            let v: serde_json::Value = serde_json::from_str(a)?;
                            return Ok::<_, BoxError>(v[0].clone());
                        }
                    }
                };
                let ack = match tokio::time::timeout(timeout, sent).await {
                    Ok(Ok(v)) => Ok(v),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!("no ack within {timeout:?}")),
                };
                let took_ns = bench::now_ns() - t;
                let _ = ws.close(None).await;
                Outcome { ack, took_ns }
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(clients);
    for t in tasks {
        outcomes.push(t.await?);
    }
    let elapsed = origin.elapsed().as_secs_f64() - t0;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hwm = bench::hwm(pid).unwrap_or(0);
    let rss_after = bench::rss(pid).unwrap_or(0);
    let stats = server
        .stats(Duration::from_secs(10))
        .unwrap_or_else(|e| json!({"error": e.to_string()}));
    let curve: Vec<(f64, u64)> = sampler
        .finish()
        .into_iter()
        .map(|(t, b)| (t - t0, b))
        .collect();

    let sent_bytes = (clients * attachments * size) as u64;
    let received = stats["bytes_received"].as_u64().unwrap_or(0);
    let ok = outcomes
        .iter()
        .filter(|o| o.ack.as_ref().is_ok_and(|v| v["ok"] == true))
        .count();
    let failures: Vec<String> = outcomes
        .iter()
        .filter_map(|o| match &o.ack {
            Ok(v) if v["ok"] == true => None,
            Ok(v) => Some(v["error"].to_string()),
            Err(e) => Some(e.clone()),
        })
        .collect();
    let took = Quantiles::new(outcomes.iter().map(|o| o.took_ns).collect());
    let ratio = |b: u64| {
        if received > 0 {
            b as f64 / received as f64
        } else {
            f64::NAN
        }
    };

    println!("binary attachments against {addr} (server pid {pid})");
    println!(
        "  uploads            {clients} clients x {attachments} attachments x {size} bytes = {sent_bytes} bytes ({:.1} MiB) sent at once",
        mib(sent_bytes)
    );
    println!(
        "  server             received {received} attachment bytes; {ok} of {clients} acked ok after checking every byte"
    );
    if !failures.is_empty() {
        println!(
            "  failures           {} (first: {})",
            failures.len(),
            failures[0]
        );
    }
    println!(
        "  time               all acks in {elapsed:.2} s; per upload p50 {:.0} ms, max {:.0} ms",
        ms(took.q(0.5)),
        ms(took.max())
    );
    println!(
        "  server RSS         idle {:.1} MiB, connected {:.1} MiB, after {:.1} MiB, peak (VmHWM) {:.1} MiB",
        mib(rss_idle),
        mib(rss_connected),
        mib(rss_after),
        mib(hwm)
    );
    println!(
        "  peak / received    {:.2}x ((peak - connected) / received: {:.2}x)",
        ratio(hwm),
        ratio(hwm.saturating_sub(rss_connected))
    );
    println!("  RSS curve (s since the uploads started: MiB)");
    bench::print_curve(&curve);
    println!(
        "  target             peak RSS < 4x the bytes received: {}",
        if ok == clients && ratio(hwm) < 4.0 {
            "met"
        } else {
            "MISSED"
        }
    );
    let out = json!({
        "clients": clients, "attachments": attachments, "attachment_bytes": size,
        "bytes_sent": sent_bytes, "bytes_received": received, "acked_ok": ok,
        "failures": failures, "elapsed_s": elapsed,
        "upload_ms": {"p50": ms(took.q(0.5)), "max": ms(took.max())},
        "rss_idle": rss_idle, "rss_connected": rss_connected, "rss_after": rss_after,
        "rss_peak": hwm, "peak_over_received": ratio(hwm),
        "peak_minus_connected_over_received": ratio(hwm.saturating_sub(rss_connected)),
        "rss_curve_mib": bench::curve_json(&curve), "server": stats,
    });
    println!("{out}");
    Ok(())
}
