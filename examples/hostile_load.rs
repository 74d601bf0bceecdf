//! The hostile-load benchmark (docs/BENCHMARKS.md): clients flood a slow handler while
//! bystanders wait for a periodic broadcast. Does the server's memory stay bounded, and do the
//! bystanders still get every broadcast in time?
//!
//! The server (this binary with `--server`, started as a child process) handles `flood` in
//! 10 ms (`tokio::time::sleep`), and relays each `tick` as `tock` to the room `bystanders`.
//! The load generator connects the bystanders (each joins the room), one ticker and the
//! flooders; then for `--duration` the flooders send `flood` events as fast as their sockets
//! take them, while the ticker sends `42["tick",<seq>]` every 100 ms and stamps each send on
//! this process's clock, so the bystanders' delivery latency is measured on one clock.
//!
//! ```sh
//! cargo build --release --features tokio --example hostile_load
//! target/release/examples/hostile_load            # 200 flooders, 100 bystanders, 30 s
//! target/release/examples/hostile_load --quick    # 20 flooders, 10 bystanders, 5 s
//! ```
//!
//! Flags also read from `HOSTILE_<NAME>`; `--help` lists them. The report ends with a JSON line.

#[path = "common/bench.rs"]
mod bench;
mod common;

use bench::{mib, ms, BoxError, Params, Quantiles, RssSampler, ServerProcess, Ws};
use futures_util::{SinkExt, StreamExt};
use roomcast::io::tokio::{Options, SocketIo};
use roomcast::Config;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const HELP: &str = "\
hostile_load: flooders against a slow handler, bystanders waiting for a broadcast

  --flooders N        clients flooding `flood`                 HOSTILE_FLOODERS     200 (quick 20)
  --bystanders N      clients in room `bystanders`             HOSTILE_BYSTANDERS   100 (quick 10)
  --duration SECS     flooding time                            HOSTILE_DURATION     30  (quick 5)
  --tick-ms MS        time between two ticks                   HOSTILE_TICK_MS      100
  --handler-ms MS     time the server's `flood` handler takes   HOSTILE_HANDLER_MS   10
  --batch N           flood events per write                   HOSTILE_BATCH        64
  --pad BYTES         padding in each flood event              HOSTILE_PAD          0
  --sample-ms MS      server RSS sampling interval             HOSTILE_SAMPLE_MS    1000
  --flat-after SECS   RSS must be flat from here on            HOSTILE_FLAT_AFTER   5   (quick 2)
  --drain SECS        after the flood, wait for the last ticks
                      at most this long                        HOSTILE_DRAIN        30  (quick 15)
  --rss-cap-mb MB     stop flooding early if the server's RSS
                      passes this (the machine is shared)      HOSTILE_RSS_CAP_MB   4096
  --quick             the short defaults
";

static FLOOD_HANDLED: AtomicU64 = AtomicU64::new(0);
static TICKS_RELAYED: AtomicU64 = AtomicU64::new(0);
/// Disconnect reasons, counted when each socket's disconnect handler runs (after the events
/// it still had queued).
static REASONS: std::sync::Mutex<Vec<(&str, u64)>> = std::sync::Mutex::new(Vec::new());

fn count_reason(reason: &'static str) {
    let mut r = REASONS.lock().unwrap_or_else(|e| e.into_inner());
    match r.iter_mut().find(|(n, _)| *n == reason) {
        Some((_, c)) => *c += 1,
        None => r.push((reason, 1)),
    }
}

// ---------------------------------------------------------------------------------------------
// Server

fn server(p: &Params) -> std::io::Result<()> {
    common::init_tracing();
    let handler_delay = Duration::from_millis(p.get("handler-ms", 10, 10));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let io: SocketIo = SocketIo::new(Config::default(), Options::default());
        io.of("/")
            .on("flood", move |_socket, _msg| async move {
                tokio::time::sleep(handler_delay).await;
                FLOOD_HANDLED.fetch_add(1, Ordering::Relaxed);
            })
            .on("join", |socket, msg| async move {
                if let Ok((room,)) = msg.args::<(String,)>() {
                    socket.join(room);
                    msg.ack(&(true,));
                }
            })
            .on("tick", |socket, msg| async move {
                // Relayed unparsed: the server's cost is the broadcast, not JSON.
                let _ = socket
                    .io()
                    .of("/")
                    .to("bystanders")
                    .emit("tock", &msg.args_raw());
                TICKS_RELAYED.fetch_add(1, Ordering::Relaxed);
            })
            .on_disconnect(|_socket, reason| async move {
                count_reason(reason.as_str());
            });
        bench::serve_child(io, || {
            json!({
                "flood_handled": FLOOD_HANDLED.load(Ordering::Relaxed),
                "ticks_relayed": TICKS_RELAYED.load(Ordering::Relaxed),
                "disconnect_reasons": REASONS
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .map(|&(n, c)| (n.to_owned(), json!(c)))
                    .collect::<serde_json::Map<_, _>>(),
            })
        })
        .await
    })
}

// ---------------------------------------------------------------------------------------------
// Load generator

struct Settings {
    flooders: usize,
    bystanders: usize,
    duration: Duration,
    tick: Duration,
    batch: usize,
    pad: usize,
    sample: Duration,
    flat_after: f64,
    drain: Duration,
    rss_cap: u64,
    handler_ms: u64,
}

/// Shared by every client task.
struct Shared {
    /// When tick `seq` was sent (ns on the one clock; 0: not sent).
    sent_at: Box<[AtomicU64]>,
    /// Ticks sent so far.
    ticks: AtomicU64,
    /// Set when the flooding must stop (time is up, or the server's RSS passed the cap).
    stop: AtomicBool,
    flood_sent: AtomicU64,
    flooders_lost: AtomicUsize,
    first_flooder_error: std::sync::Mutex<Option<String>>,
}

/// What one bystander saw.
#[derive(Default)]
struct Seen {
    received: u64,
    unique: u64,
    duplicated: u64,
    out_of_order: u64,
    latencies: Vec<u64>,
    ended: bool,
    error: Option<String>,
    /// When it joined the room, when it lost its connection (ns on the one clock).
    connected_at: u64,
    closed_at: Option<u64>,
    pings: bench::Pings,
}

async fn bystander(
    (mut ws, connected_at): (Ws, u64),
    shared: Arc<Shared>,
    end: tokio::time::Instant,
) -> Seen {
    let mut seen = Seen {
        connected_at,
        ..Seen::default()
    };
    let mut got = vec![false; shared.sent_at.len()];
    let mut highest: Option<u64> = None;
    loop {
        let next = bench::next_text_noting_pings(&mut ws, &mut seen.pings);
        let t = match tokio::time::timeout_at(end, next).await {
            Err(_) => break,
            Ok(Err(e)) => {
                seen.closed_at = Some(bench::now_ns());
                seen.error = Some(e.to_string());
                break;
            }
            Ok(Ok(t)) => t,
        };
        let now = bench::now_ns();
        // 42["tock",<seq>] or 42["tock",<seq>,"end"]
        let Some(body) = t.strip_prefix("42[\"tock\",") else {
            continue;
        };
        let digits: String = body.chars().take_while(char::is_ascii_digit).collect();
        let Ok(seq) = digits.parse::<u64>() else {
            continue;
        };
        if body[digits.len()..].starts_with(",\"end\"") {
            seen.ended = true;
            break;
        }
        seen.received += 1;
        let Some(slot) = got.get_mut(seq as usize) else {
            continue;
        };
        if *slot {
            seen.duplicated += 1;
            continue;
        }
        *slot = true;
        seen.unique += 1;
        if highest.is_some_and(|h| seq < h) {
            seen.out_of_order += 1;
        }
        highest = Some(highest.map_or(seq, |h| h.max(seq)));
        let sent = shared.sent_at[seq as usize].load(Ordering::SeqCst);
        seen.latencies.push(now.saturating_sub(sent));
    }
    let _ = ws.close(None).await;
    seen
}

/// Sends a tick every `every` until the flood is over, then the end marker.
async fn ticker(mut ws: Ws, shared: Arc<Shared>, every: Duration) -> Result<(), BoxError> {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0u64;
    while !shared.stop.load(Ordering::SeqCst) && (seq as usize) < shared.sent_at.len() {
        tokio::select! {
            _ = interval.tick() => {
                shared.sent_at[seq as usize].store(bench::now_ns(), Ordering::SeqCst);
                ws.send(Message::text(format!("42[\"tick\",{seq}]"))).await?;
                seq += 1;
                shared.ticks.store(seq, Ordering::SeqCst);
            }
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
                    ws.send(Message::text("3")).await?;
                }
                Some(Ok(Message::Close(c))) => return Err(format!("close frame {c:?}").into()),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Err("closed".into()),
            },
        }
    }
    ws.send(Message::text(format!("42[\"tick\",{seq},\"end\"]")))
        .await?;
    // Keep the connection (and its pongs) until the bystanders are done.
    while let Some(Ok(m)) = ws.next().await {
        if matches!(&m, Message::Text(t) if t.as_str() == "2")
            && ws.send(Message::text("3")).await.is_err()
        {
            break;
        }
    }
    Ok(())
}

/// Floods until `stop`: batches of `flood` events, one flush each. A reader task answers
/// pings through the same writer, between batches.
async fn flooder(ws: Ws, me: usize, shared: Arc<Shared>, s: Arc<Settings>) {
    let (mut sink, mut stream) = ws.split();
    let (pong_tx, mut pong_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let reader = tokio::spawn(async move {
        while let Some(m) = stream.next().await {
            match m {
                Ok(Message::Text(t)) if t.as_str() == "2" => {
                    if pong_tx.send(()).is_err() {
                        break;
                    }
                }
                Ok(Message::Close(c)) => return Some(format!("close frame {c:?}")),
                Ok(_) => {}
                Err(e) => return Some(e.to_string()),
            }
        }
        Some("closed".to_owned())
    });
    let pad = ".".repeat(s.pad);
    let mut n = 0u64;
    let mut result: Result<(), String> = Ok(());
    'run: while !shared.stop.load(Ordering::Relaxed) {
        while pong_rx.try_recv().is_ok() {
            if let Err(e) = sink.feed(Message::text("3")).await {
                result = Err(e.to_string());
                break 'run;
            }
        }
        for _ in 0..s.batch {
            let text = if s.pad == 0 {
                format!("42[\"flood\",{me},{n}]")
            } else {
                format!("42[\"flood\",{me},{n},\"{pad}\"]")
            };
            if let Err(e) = sink.feed(Message::text(text)).await {
                result = Err(e.to_string());
                break 'run;
            }
            n += 1;
        }
        if let Err(e) = sink.flush().await {
            result = Err(e.to_string());
            break;
        }
        shared
            .flood_sent
            .fetch_add(s.batch as u64, Ordering::Relaxed);
    }
    if let Err(e) = result {
        shared.flooders_lost.fetch_add(1, Ordering::SeqCst);
        let why = if reader.is_finished() {
            match reader.await {
                Ok(Some(r)) => format!("{e} ({r})"),
                _ => e,
            }
        } else {
            reader.abort();
            e
        };
        shared
            .first_flooder_error
            .lock()
            .unwrap()
            .get_or_insert(why);
    } else {
        reader.abort();
    }
    // The connection is dropped with the task: the server may still be working through
    // what this flooder sent.
}

fn main() {
    let p = Params::parse("HOSTILE", HELP);
    if p.server {
        if let Err(e) = server(&p) {
            eprintln!("hostile_load --server: {e}");
            std::process::exit(1);
        }
        return;
    }
    let s = Settings {
        flooders: p.get("flooders", 200, 20),
        bystanders: p.get("bystanders", 100, 10),
        duration: p.secs("duration", 30.0, 5.0),
        tick: Duration::from_millis(p.get("tick-ms", 100, 100).max(1)),
        batch: p.get("batch", 64usize, 64).max(1),
        pad: p.get("pad", 0, 0),
        sample: Duration::from_millis(p.get("sample-ms", 1000, 1000).max(10)),
        flat_after: p.get("flat-after", 5.0, 2.0),
        drain: p.secs("drain", 30.0, 15.0),
        rss_cap: p.get("rss-cap-mb", 4096u64, 4096) * 1024 * 1024,
        handler_ms: p.get("handler-ms", 10, 10),
    };
    let server_args = vec!["--handler-ms".to_owned(), s.handler_ms.to_string()];
    let mut server = match ServerProcess::spawn(&server_args) {
        Ok(sp) => sp,
        Err(e) => {
            eprintln!("hostile_load: {e}");
            std::process::exit(1);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    // The ticker and the bystanders get a runtime of their own: on the flooders' runtime they
    // would wait behind 200 busy tasks, and the tick rate would be the generator's, not 10/s.
    let quiet = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bystanders")
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = rt.block_on(run(Arc::new(s), &mut server, quiet.handle().clone()));
    rt.shutdown_timeout(Duration::from_millis(200));
    quiet.shutdown_timeout(Duration::from_millis(200));
    drop(server);
    if let Err(e) = result {
        eprintln!("hostile_load: {e}");
        std::process::exit(1);
    }
}

async fn run(
    s: Arc<Settings>,
    server: &mut ServerProcess,
    quiet: tokio::runtime::Handle,
) -> Result<(), BoxError> {
    let pid = server.pid();
    let addr = server.addr.clone();
    let _ = bench::now_ns();
    let origin = Instant::now();
    let over_cap = Arc::new(AtomicBool::new(false));
    let sampler = RssSampler::start(pid, s.sample, origin, Some((s.rss_cap, over_cap.clone())));
    eprintln!("server pid {pid} on {addr}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_idle = bench::rss(pid).unwrap_or(0);

    let max_ticks = (s.duration.as_secs_f64() / s.tick.as_secs_f64()) as usize + 16;
    let shared = Arc::new(Shared {
        sent_at: (0..max_ticks).map(|_| AtomicU64::new(0)).collect(),
        ticks: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        flood_sent: AtomicU64::new(0),
        flooders_lost: AtomicUsize::new(0),
        first_flooder_error: Default::default(),
    });

    // Everyone connects before anything is measured; bystanders are in the room before the
    // first tick.
    eprintln!(
        "connecting {} bystanders, 1 ticker, {} flooders ...",
        s.bystanders, s.flooders
    );
    // Connected from the quiet runtime, so that their sockets belong to its reactor.
    let (n, a) = (s.bystanders, addr.clone());
    let (bystander_ws, ticker_ws) = quiet
        .spawn(async move {
            let mut all = Vec::with_capacity(n);
            for i in 0..n {
                let mut ws = bench::connect_retrying(&a).await?;
                bench::join_with_ack(&mut ws, "bystanders", i as u64)
                    .await
                    .map_err(|e| format!("bystander {i} joining: {e}"))?;
                all.push((ws, bench::now_ns()));
            }
            let ticker = bench::connect_retrying(&a).await?;
            Ok::<_, BoxError>((all, ticker))
        })
        .await??;
    let mut flooder_ws = Vec::with_capacity(s.flooders);
    for _ in 0..s.flooders {
        flooder_ws.push(bench::connect_retrying(&addr).await?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_connected = bench::rss(pid).unwrap_or(0);

    // Bystanders listen until the end marker, or `drain` after the flood at the latest.
    let t_start = origin.elapsed().as_secs_f64();
    let flood_end = tokio::time::Instant::now() + s.duration;
    let listen_end = flood_end + s.drain;
    let bystanders: Vec<_> = bystander_ws
        .into_iter()
        .map(|ws| quiet.spawn(bystander(ws, shared.clone(), listen_end)))
        .collect();
    let ticker_task = quiet.spawn(ticker(ticker_ws, shared.clone(), s.tick));
    let flooders: Vec<_> = flooder_ws
        .into_iter()
        .enumerate()
        .map(|(i, ws)| tokio::spawn(flooder(ws, i, shared.clone(), s.clone())))
        .collect();

    // The flood lasts `duration`, or until the server's RSS passes the cap.
    let mut stopped_early_at = None;
    while tokio::time::Instant::now() < flood_end {
        if over_cap.load(Ordering::SeqCst) {
            stopped_early_at = Some(origin.elapsed().as_secs_f64() - t_start);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shared.stop.store(true, Ordering::SeqCst);
    let flood_elapsed = origin.elapsed().as_secs_f64() - t_start;
    let flood_sent = shared.flood_sent.load(Ordering::SeqCst);
    let stats_at_end = server
        .stats(Duration::from_secs(10))
        .unwrap_or_else(|e| json!({"error": e.to_string()}));
    let rss_flood_end = bench::rss(pid).unwrap_or(0);
    // A flooder whose server stopped reading is stuck in a flush: 5 s for all of them, then
    // their connections are dropped.
    let flooders_done = tokio::time::Instant::now() + Duration::from_secs(5);
    for f in flooders {
        let abort = f.abort_handle();
        if tokio::time::timeout_at(flooders_done, f).await.is_err() {
            abort.abort();
        }
    }

    let mut seen = Vec::with_capacity(bystanders.len());
    for b in bystanders {
        seen.push(b.await?);
    }
    let ticker_result = if ticker_task.is_finished() {
        Some(ticker_task.await?)
    } else {
        ticker_task.abort();
        None
    };
    let last_tick_after = (origin.elapsed().as_secs_f64() - t_start - flood_elapsed).max(0.0);
    let stats_after = server
        .stats(Duration::from_secs(10))
        .unwrap_or_else(|e| json!({"error": e.to_string()}));
    // The peak so far: read last, since the server may still be growing through its backlog.
    let curve: Vec<(f64, u64)> = sampler
        .finish()
        .into_iter()
        .map(|(t, b)| (t - t_start, b))
        .collect();
    let hwm = bench::hwm(pid).unwrap_or(0);

    // Bystanders' totals.
    let expected_each = shared.ticks.load(Ordering::SeqCst);
    let expected = expected_each * seen.len() as u64;
    let mut received = 0;
    let mut unique = 0;
    let mut duplicated = 0;
    let mut out_of_order = 0;
    let mut not_ended = 0;
    let mut errors = Vec::new();
    let mut lat = Vec::new();
    for b in &mut seen {
        received += b.received;
        unique += b.unique;
        duplicated += b.duplicated;
        out_of_order += b.out_of_order;
        not_ended += usize::from(!b.ended);
        if let Some(e) = &b.error {
            errors.push(e.clone());
        }
        lat.append(&mut b.latencies);
    }
    let lost = expected - unique.min(expected);
    let lat = Quantiles::new(lat);

    // Memory: peak, and how far it moved once past the first seconds.
    let flat_from = curve
        .iter()
        .find(|(t, _)| *t >= s.flat_after)
        .map(|&(_, b)| b);
    let flat_max = curve
        .iter()
        .filter(|(t, _)| *t >= s.flat_after && *t <= flood_elapsed)
        .map(|&(_, b)| b)
        .max();
    let growth = match (flat_from, flat_max) {
        (Some(a), Some(b)) if a > 0 => Some((b as f64 - a as f64) / a as f64 * 100.0),
        _ => None,
    };
    let flood_handled = stats_at_end["flood_handled"].as_u64();
    let flood_handled_after = stats_after["flood_handled"].as_u64();

    println!("hostile load against {addr} (server pid {pid})");
    println!(
        "  clients            {} flooders, {} bystanders, 1 ticker; handler {} ms per flood event",
        s.flooders, s.bystanders, s.handler_ms
    );
    match stopped_early_at {
        Some(t) => println!(
            "  flood              STOPPED EARLY at {t:.1} s: server RSS over the {:.0} MiB cap",
            mib(s.rss_cap)
        ),
        None => println!("  flood              {flood_elapsed:.1} s"),
    }
    println!(
        "  drain              the bystanders were done {:.1} s after the flood ended",
        last_tick_after
    );
    println!(
        "  flood events       {flood_sent} sent ({:.0}/s); handled by the server: {} at the end of the flood, {} after the drain",
        flood_sent as f64 / flood_elapsed,
        flood_handled.map_or("n/a".into(), |v| v.to_string()),
        flood_handled_after.map_or("n/a".into(), |v| v.to_string()),
    );
    let lost_flooders = shared.flooders_lost.load(Ordering::SeqCst);
    if lost_flooders > 0 {
        println!(
            "  flooders lost      {lost_flooders} (first: {})",
            shared
                .first_flooder_error
                .lock()
                .unwrap()
                .clone()
                .unwrap_or_default()
        );
    }
    println!(
        "  server RSS         idle {:.1} MiB, connected {:.1} MiB, end of flood {:.1} MiB, peak (VmHWM) {:.1} MiB",
        mib(rss_idle),
        mib(rss_connected),
        mib(rss_flood_end),
        mib(hwm)
    );
    println!(
        "  RSS growth         {} from {:.0} s to the end of the flood",
        growth.map_or("n/a".into(), |g| format!("{g:+.1}%")),
        s.flat_after
    );
    println!("  RSS curve (s since the flood started: MiB)");
    bench::print_curve(&curve);
    println!(
        "  ticks              {expected_each} sent; per bystander expected {expected_each}; all bystanders: expected {expected}, received {received}, unique {unique}, missing at the end {lost}, duplicated {duplicated}, out of order {out_of_order}"
    );
    if not_ended > 0 || !errors.is_empty() {
        println!(
            "  bystanders         {not_ended} did not see the end marker; {} lost their connection{}",
            errors.len(),
            errors
                .first()
                .map_or(String::new(), |e| format!(" (first: {e})"))
        );
    }
    println!(
        "  disconnects        reasons the server gave, by the end: {}",
        stats_after["disconnect_reasons"]
    );
    let closed: Vec<&Seen> = seen.iter().filter(|b| b.closed_at.is_some()).collect();
    let span = |v: Vec<f64>| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{lo:.1}..{hi:.1} s")
    };
    let secs = |a: u64, b: u64| b.saturating_sub(a) as f64 / 1e9;
    if !closed.is_empty() {
        println!(
            "  closed bystanders  {} closed {} after joining; {} pings answered in all; the close came {} after their last pong (none: {})",
            closed.len(),
            span(closed.iter().map(|b| secs(b.connected_at, b.closed_at.unwrap_or(0))).collect()),
            closed.iter().map(|b| b.pings.answered).sum::<u64>(),
            span(
                closed
                    .iter()
                    .filter_map(|b| Some(secs(b.pings.last_at?, b.closed_at?)))
                    .collect()
            ),
            closed.iter().filter(|b| b.pings.last_at.is_none()).count()
        );
    }
    if let Some(Err(e)) = &ticker_result {
        println!("  ticker             failed: {e}");
    }
    println!(
        "  tock latency       p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples)",
        ms(lat.q(0.5)),
        ms(lat.q(0.99)),
        ms(lat.max()),
        lat.len()
    );
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "  targets            peak RSS < 64 MiB: {}; flat after {:.0} s (growth <= 10%): {}; p99 < 250 ms: {}; nothing lost: {}",
        verdict(hwm < 64 * 1024 * 1024),
        s.flat_after,
        verdict(growth.is_some_and(|g| g <= 10.0)),
        // The latency of a tick that never came is unbounded: p99 counts only if none is missing.
        verdict(lat.q(0.99) < 250_000_000 && lat.len() > 0 && lost == 0),
        verdict(lost == 0 && expected > 0),
    );
    let out = json!({
        "flooders": s.flooders, "bystanders": s.bystanders, "duration_s": flood_elapsed,
        "stopped_early_at_s": stopped_early_at, "handler_ms": s.handler_ms,
        "flood_sent": flood_sent, "flood_handled": flood_handled,
        "flood_handled_after_drain": flood_handled_after, "drain_s": last_tick_after, "flooders_lost": lost_flooders,
        "rss_idle": rss_idle, "rss_connected": rss_connected, "rss_flood_end": rss_flood_end,
        "rss_peak": hwm, "rss_growth_pct_after_flat": growth, "rss_curve_mib": bench::curve_json(&curve),
        "ticks_sent": expected_each, "expected": expected, "received": received, "unique": unique,
        "lost": lost, "duplicated": duplicated, "out_of_order": out_of_order,
        "latency_ms": {"p50": ms(lat.q(0.5)), "p99": ms(lat.q(0.99)), "max": ms(lat.max()), "samples": lat.len()},
        "server_at_flood_end": stats_at_end, "server_after": stats_after,
        "bystanders_closed": closed.len(),
        "closed_after_join_s": closed.iter().map(|b| secs(b.connected_at, b.closed_at.unwrap_or(0))).collect::<Vec<_>>(),
        "closed_after_last_pong_s": closed.iter().map(|b| b.pings.last_at.map(|p| secs(p, b.closed_at.unwrap_or(0)))).collect::<Vec<_>>(),
    });
    println!("{out}");
    Ok(())
}
