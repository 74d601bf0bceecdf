//! The churn soak (docs/BENCHMARKS.md): many short-lived clients, each connecting over
//! WebSocket, joining rooms, receiving a broadcast and leaving. Does the server give back
//! what they used: memory to its baseline, and no socket, connection, room or timer left?
//!
//! A cycle: connect (Engine.IO open, Socket.IO connect to `/`), send `enter` with a room name
//! of its own; the server joins the socket to `lobby` and to that room, then broadcasts
//! `hello` to the room; the client waits for it, then leaves one of three ways in turn: a
//! Socket.IO disconnect then a close frame, a close frame alone, or dropping the TCP
//! connection. `--concurrency` cycles run at once.
//!
//! The server is this binary with `--server`, started as a child process, so its memory is
//! its own. After warm-up cycles, once the server reports no sockets, its RSS is the baseline;
//! after the measured cycles it is compared with it, and the server's counts are asked through
//! its API (`socket_count`, `connection_count`, `rooms` of `/`, `poll_timeout`).
//!
//! ```sh
//! cargo build --release --features tokio --example churn_soak
//! target/release/examples/churn_soak            # 100,000 cycles, 50 at a time
//! target/release/examples/churn_soak --quick    # 3,000 cycles, 10 at a time
//! ```
//!
//! Flags also read from `CHURN_<NAME>`; `--help` lists them. The report ends with a JSON line.

#[path = "common/bench.rs"]
mod bench;
mod common;

use bench::{mib, ms, BoxError, Params, Quantiles, RssSampler, ServerProcess, Ws};
use futures_util::{SinkExt, StreamExt};
use roomcast::io::tokio::{Options, SocketIo};
use roomcast::Config;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const HELP: &str = "\
churn_soak: connect / join / broadcast / disconnect cycles, then what the server kept

  --cycles N           measured cycles                          CHURN_CYCLES       100000 (quick 3000)
  --warmup N           cycles before the baseline               CHURN_WARMUP       5000   (quick 300)
  --concurrency N      cycles at once                           CHURN_CONCURRENCY  50     (quick 10)
  --cycle-timeout SECS one cycle at most                        CHURN_CYCLE_TIMEOUT 10
  --settle SECS        idle time before reading the RSS         CHURN_SETTLE       2
  --timer-wait SECS    after the run, wait at most this long for
                       the server to have no timer deadline left
                       (the connect timeout is 45 s)            CHURN_TIMER_WAIT   60     (quick 0)
  --max-seconds SECS   stop starting cycles after this long     CHURN_MAX_SECONDS  900
  --sample-ms MS       server RSS sampling interval             CHURN_SAMPLE_MS    1000
  --connect-timeout-ms MS, --ping-interval-ms MS
                       the server's timers (0: the reference
                       defaults, 45 s and 25 s)                 CHURN_CONNECT_TIMEOUT_MS ... 0
  --quick              the short defaults
";

static CONNECTS: AtomicU64 = AtomicU64::new(0);
static ENTERS: AtomicU64 = AtomicU64::new(0);
static DISCONNECTS: AtomicU64 = AtomicU64::new(0);

// ---------------------------------------------------------------------------------------------
// Server

fn server(p: &Params) -> std::io::Result<()> {
    common::init_tracing();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut config = Config::default();
        // 0: the reference default. Shorter timers tell what memory the timer queues hold.
        let ms = |name: &str| p.get(name, 0u64, 0);
        if ms("connect-timeout-ms") > 0 {
            config.connect_timeout = Duration::from_millis(ms("connect-timeout-ms"));
        }
        if ms("ping-interval-ms") > 0 {
            config.ping_interval = Duration::from_millis(ms("ping-interval-ms"));
        }
        let io: SocketIo = SocketIo::new(config, Options::default());
        io.of("/")
            .on_connection(|_socket| async move {
                CONNECTS.fetch_add(1, Ordering::Relaxed);
            })
            .on("enter", |socket, msg| async move {
                if let Ok((room,)) = msg.args::<(String,)>() {
                    socket.join("lobby");
                    socket.join(room.clone());
                    // After the joins on the same ordered path: the socket is in the room.
                    let _ = socket.io().of("/").to(room.clone()).emit("hello", &(room,));
                    ENTERS.fetch_add(1, Ordering::Relaxed);
                }
            })
            .on_disconnect(|_socket, _reason| async move {
                DISCONNECTS.fetch_add(1, Ordering::Relaxed);
            });
        bench::serve_child(io, || {
            json!({
                "connects": CONNECTS.load(Ordering::Relaxed),
                "enters": ENTERS.load(Ordering::Relaxed),
                "disconnects": DISCONNECTS.load(Ordering::Relaxed),
            })
        })
        .await
    })
}

// ---------------------------------------------------------------------------------------------
// Load generator

struct Settings {
    cycles: u64,
    warmup: u64,
    concurrency: usize,
    cycle_timeout: Duration,
    settle: Duration,
    timer_wait: Duration,
    max_time: Duration,
    sample: Duration,
}

/// Waits for the close handshake (or the end of the stream), a moment at most.
async fn drain(ws: &mut Ws) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

async fn cycle(addr: &str, k: u64) -> Result<(), BoxError> {
    let mut ws = bench::connect(addr).await?;
    let room = format!("c{k}");
    ws.send(Message::text(format!("42[\"enter\",\"{room}\"]")))
        .await?;
    let want = format!("42[\"hello\",\"{room}\"]");
    loop {
        let t = bench::next_text(&mut ws).await?;
        if t == want {
            break;
        }
    }
    match k % 3 {
        0 => {
            ws.send(Message::text("41")).await?;
            ws.close(None).await?;
            drain(&mut ws).await;
        }
        1 => {
            ws.close(None).await?;
            drain(&mut ws).await;
        }
        _ => drop(ws), // the TCP connection ends without a word
    }
    Ok(())
}

/// Counters of a batch of cycles.
#[derive(Default)]
struct Tally {
    done: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
    latencies: Mutex<Vec<u64>>,
}

/// Runs cycles `from..to`, `concurrency` at a time, until done or `until`.
async fn run_cycles(addr: &str, from: u64, to: u64, s: &Settings, until: Instant) -> Arc<Tally> {
    let next = Arc::new(AtomicU64::new(from));
    let tally = Arc::new(Tally::default());
    let workers: Vec<_> = (0..s.concurrency)
        .map(|_| {
            let (next, tally, addr) = (next.clone(), tally.clone(), addr.to_owned());
            let timeout = s.cycle_timeout;
            tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= to || Instant::now() >= until {
                        break;
                    }
                    let t = bench::now_ns();
                    let r = match tokio::time::timeout(timeout, cycle(&addr, k)).await {
                        Ok(r) => r.map_err(|e| e.to_string()),
                        Err(_) => Err(format!("cycle {k} took over {timeout:?}")),
                    };
                    lat.push(bench::now_ns() - t);
                    match r {
                        Ok(()) => tally.done.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            tally.first_error.lock().unwrap().get_or_insert(e);
                            tally.failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
                tally.latencies.lock().unwrap().append(&mut lat);
            })
        })
        .collect();
    let progress = {
        let tally = tally.clone();
        tokio::spawn(async move {
            let t0 = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                eprintln!(
                    "  {:>4.0} s: {} cycles done, {} failed",
                    t0.elapsed().as_secs_f64(),
                    tally.done.load(Ordering::Relaxed),
                    tally.failed.load(Ordering::Relaxed)
                );
            }
        })
    };
    for w in workers {
        let _ = w.await;
    }
    progress.abort();
    tally
}

/// Polls the server's counts until no socket and no connection is left, `limit` at most.
fn wait_empty(server: &mut ServerProcess, limit: Duration) -> Value {
    let t0 = Instant::now();
    loop {
        let v = server
            .stats(Duration::from_secs(10))
            .unwrap_or_else(|e| json!({"error": e.to_string()}));
        let empty = v["sockets"] == 0 && v["connections"] == 0;
        if empty || t0.elapsed() >= limit {
            return v;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn main() {
    let p = Params::parse("CHURN", HELP);
    if p.server {
        if let Err(e) = server(&p) {
            eprintln!("churn_soak --server: {e}");
            std::process::exit(1);
        }
        return;
    }
    let s = Settings {
        cycles: p.get("cycles", 100_000, 3_000),
        warmup: p.get("warmup", 5_000, 300),
        concurrency: p.get("concurrency", 50usize, 10).max(1),
        cycle_timeout: p.secs("cycle-timeout", 10.0, 10.0),
        settle: p.secs("settle", 2.0, 2.0),
        timer_wait: p.secs("timer-wait", 60.0, 0.0),
        max_time: p.secs("max-seconds", 900.0, 900.0),
        sample: Duration::from_millis(p.get("sample-ms", 1000, 1000).max(10)),
    };
    let mut server_args = Vec::new();
    for name in ["connect-timeout-ms", "ping-interval-ms"] {
        let v: u64 = p.get(name, 0, 0);
        if v > 0 {
            server_args.extend([format!("--{name}"), v.to_string()]);
        }
    }
    let mut server = match ServerProcess::spawn(&server_args) {
        Ok(sp) => sp,
        Err(e) => {
            eprintln!("churn_soak: {e}");
            std::process::exit(1);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = run(&rt, &s, &mut server);
    rt.shutdown_timeout(Duration::from_millis(200));
    drop(server);
    if let Err(e) = result {
        eprintln!("churn_soak: {e}");
        std::process::exit(1);
    }
}

fn run(
    rt: &tokio::runtime::Runtime,
    s: &Settings,
    server: &mut ServerProcess,
) -> Result<(), BoxError> {
    let pid = server.pid();
    let addr = server.addr.clone();
    let _ = bench::now_ns();
    let origin = Instant::now();
    let until = origin + s.max_time;
    let sampler = RssSampler::start(pid, s.sample, origin, None);
    eprintln!("server pid {pid} on {addr}");
    std::thread::sleep(Duration::from_millis(300));
    let rss_idle = bench::rss(pid).unwrap_or(0);

    eprintln!(
        "warm-up: {} cycles, {} at a time ...",
        s.warmup, s.concurrency
    );
    let warm = rt.block_on(run_cycles(&addr, 0, s.warmup, s, until));
    let after_warmup = wait_empty(server, Duration::from_secs(10));
    std::thread::sleep(s.settle);
    let rss_baseline = bench::rss(pid).unwrap_or(0);
    let t_measured = origin.elapsed().as_secs_f64();

    eprintln!(
        "measured: {} cycles, {} at a time ...",
        s.cycles, s.concurrency
    );
    let t0 = Instant::now();
    let first = s.warmup;
    let tally = rt.block_on(run_cycles(&addr, first, first + s.cycles, s, until));
    let run_s = t0.elapsed().as_secs_f64();
    let stats_end = wait_empty(server, Duration::from_secs(10));
    std::thread::sleep(s.settle);
    let rss_end = bench::rss(pid).unwrap_or(0);
    let t_end = origin.elapsed().as_secs_f64();

    // Deadlines of closed connections stay queued until they come due: wait for them.
    let mut timers_left = stats_end["next_timer_in_ms"].clone();
    let mut stats_timers = stats_end.clone();
    let mut timers_gone_after = None;
    if !s.timer_wait.is_zero() {
        eprintln!(
            "waiting up to {:.0} s for the server's timer deadlines to run out ...",
            s.timer_wait.as_secs_f64()
        );
        let tw = Instant::now();
        loop {
            stats_timers = server
                .stats(Duration::from_secs(10))
                .unwrap_or_else(|e| json!({"error": e.to_string()}));
            timers_left = stats_timers["next_timer_in_ms"].clone();
            if timers_left.is_null() && stats_timers.get("error").is_none() {
                timers_gone_after = Some(tw.elapsed().as_secs_f64());
                break;
            }
            if tw.elapsed() >= s.timer_wait {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let rss_final = bench::rss(pid).unwrap_or(0);
    let hwm = bench::hwm(pid).unwrap_or(0);
    let curve: Vec<(f64, u64)> = sampler
        .finish()
        .into_iter()
        .map(|(t, b)| (t - t_measured, b))
        .collect();

    let done = tally.done.load(Ordering::SeqCst);
    let failed = tally.failed.load(Ordering::SeqCst);
    let warm_failed = warm.failed.load(Ordering::SeqCst);
    let lat = Quantiles::new(std::mem::take(&mut *tally.latencies.lock().unwrap()));
    let pct = |a: u64, b: u64| (b as f64 - a as f64) / a.max(1) as f64 * 100.0;
    let diff_end = pct(rss_baseline, rss_end);
    let diff_final = pct(rss_baseline, rss_final);
    let left = |v: &Value| -> (Value, Value, Value) {
        (
            v["sockets"].clone(),
            v["connections"].clone(),
            v["rooms"].clone(),
        )
    };
    let (sockets, connections, rooms) = left(&stats_timers);

    println!("churn soak against {addr} (server pid {pid})");
    println!(
        "  cycles             {done} of {} done in {run_s:.1} s ({:.0}/s), {failed} failed; {} at a time; warm-up {} ({warm_failed} failed)",
        s.cycles,
        done as f64 / run_s,
        s.concurrency,
        s.warmup
    );
    if let Some(e) = tally.first_error.lock().unwrap().as_ref() {
        println!("  first failure      {e}");
    }
    println!(
        "  cycle time         p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms",
        ms(lat.q(0.5)),
        ms(lat.q(0.99)),
        ms(lat.max())
    );
    println!(
        "  server counts      connects {}, enters {}, disconnect handlers {} (warm-up included)",
        stats_timers["connects"], stats_timers["enters"], stats_timers["disconnects"]
    );
    println!(
        "  server RSS         idle {:.1} MiB, baseline (after warm-up) {:.1} MiB, end {:.1} MiB ({diff_end:+.1}%), after the timer wait {:.1} MiB ({diff_final:+.1}%), peak (VmHWM) {:.1} MiB",
        mib(rss_idle),
        mib(rss_baseline),
        mib(rss_end),
        mib(rss_final),
        mib(hwm)
    );
    println!(
        "  left at the end    sockets {}, connections {}, rooms of / {} {}",
        stats_end["sockets"],
        stats_end["connections"],
        stats_end["rooms"],
        stats_end["room_sample"]
    );
    println!(
        "  timers             next deadline at the end: {}; after the wait: {}{}; core timer entries and waits: {} at the end, {} after the wait",
        match stats_end["next_timer_in_ms"].as_u64() {
            Some(ms) => format!("in {ms} ms"),
            None => "none".into(),
        },
        match timers_left.as_u64() {
            Some(ms) => format!("in {ms} ms"),
            None => "none".into(),
        },
        timers_gone_after.map_or(String::new(), |t| format!(" (none left after {t:.0} s)")),
        stats_end["pending_timers"],
        stats_timers["pending_timers"]
    );
    println!(
        "  RSS curve (s since the measured cycles started: MiB; {:.0} s: end of the cycles)",
        t_end - t_measured
    );
    bench::print_curve(&curve);
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "  targets            RSS within 10% of the baseline: {} at the end, {} after the timer wait; nothing left: {}",
        verdict(diff_end.abs() <= 10.0),
        verdict(diff_final.abs() <= 10.0),
        verdict(
            sockets == 0
                && connections == 0
                && rooms == 0
                && failed == 0
                && (s.timer_wait.is_zero() || timers_left.is_null())
        )
    );
    let out = json!({
        "cycles": s.cycles, "done": done, "failed": failed, "warmup": s.warmup,
        "warmup_failed": warm_failed, "concurrency": s.concurrency, "run_s": run_s,
        "cycle_ms": {"p50": ms(lat.q(0.5)), "p99": ms(lat.q(0.99)), "max": ms(lat.max())},
        "rss_idle": rss_idle, "rss_baseline": rss_baseline, "rss_end": rss_end,
        "rss_end_pct": diff_end, "rss_after_timer_wait": rss_final,
        "rss_after_timer_wait_pct": diff_final, "rss_peak": hwm,
        "timers_gone_after_s": timers_gone_after,
        "server_after_warmup": after_warmup, "server_end": stats_end,
        "server_after_timer_wait": stats_timers,
        "rss_curve_mib": bench::curve_json(&curve),
    });
    println!("{out}");
    Ok(())
}
