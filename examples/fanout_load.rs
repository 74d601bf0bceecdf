//! The load generator of the end-to-end fan-out benchmark (docs/EXAMPLES.md, `fanout`).
//!
//! N clients speak the raw Socket.IO v5 / Engine.IO v4 wire protocol over WebSocket. Client 0
//! publishes `42["broadcast","<payload>"]` as fast as a bounded in-flight window allows; the
//! server emits `42["news","<payload>"]` to the N-1 others, which check that nothing is lost or
//! duplicated and sample the latency. The server's CPU time and memory are read from
//! `/proc/<pid>` (Linux). The publisher speaks through tokio-tungstenite; the receivers through
//! a lean client of their own (`common/rawws.rs`), since on a shared machine every microsecond
//! a receiver spends is taken from the server (`--tungstenite` puts them back on
//! tokio-tungstenite, as round 1 measured).
//!
//! ```sh
//! cargo build --release --features tokio --examples
//! ulimit -n 65536   # or as high as the hard limit allows
//! target/release/examples/fanout_load --spawn-server --clients 1000 --duration 10
//! # against a server started elsewhere:
//! target/release/examples/fanout_load --addr 127.0.0.1:3000 --server-pid <pid>
//! ```
//!
//! Every flag also reads from the environment (`--clients` is `FANOUT_CLIENTS`, and so on);
//! `--help` lists them. The report ends with one JSON line.
//!
//! The payload (64 bytes by default) is `<seq:16 hex>:<t:16 hex>:` padded with `.`, where `t`
//! is nanoseconds since the run started on the process's monotonic clock. The last event has
//! `t = ffffffffffffffff` and `seq` = the number of events published: it tells each receiver
//! the run is over (the server keeps order per connection, so everything before it arrived).
//!
//! Reading the numbers:
//!
//! - Without `--rate` the loop is closed: the window is always full, so the latency is mostly
//!   queueing (window / event rate), and the server gets large batches, so it spends the least
//!   CPU per delivery. `--rate R` publishes at a fixed pace, for the latency and CPU cost under
//!   a given load.
//! - The server and the generator share the machine; the report says how much CPU other
//!   processes took over the window, and flags a disturbed run.
//! - Memory per client is `(RSS with the clients - RSS before) / N`: measure it on a fresh
//!   server (`--spawn-server`), since an allocator keeps what earlier clients freed.

#[path = "common/bench.rs"]
mod bench;
#[path = "common/wsload.rs"]
mod wsload;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wsload::rawws::RawWs;
use wsload::{
    cpu_ticks, json_f, json_u, machine_busy_ticks, now_ns, status_bytes, ticks_s, write_payload,
    BoxError, Broadcasts, Conn, Load, Monitor, RxReport, Shared, Totals, Waits, Ws,
};

/// What the receivers expect in front of the payload.
const NEWS_PREFIX: &[u8] = br#"42["news",""#;

// ---------------------------------------------------------------------------------------------
// Settings

#[derive(Debug, Clone)]
struct Settings {
    load: Load,
    addr: String,
    spawn_server: bool,
    server_bin: Option<String>,
    server_pid: Option<u32>,
    settle: Duration,
    /// Receivers on tokio-tungstenite instead of the lean client.
    tungstenite: bool,
}

const HELP: &str = "\
fanout_load: the end-to-end fan-out benchmark's load generator

  --addr HOST:PORT | --url ws://HOST:PORT/..  server address        FANOUT_ADDR     127.0.0.1:3000
  --clients N           connected clients (1 publisher + N-1)      FANOUT_CLIENTS  1000
  --duration SECS       publishing time                            FANOUT_DURATION 10
  --payload BYTES       payload length (>= 34)                     FANOUT_PAYLOAD  64
  --window W            events in flight (sent, not yet received
                        by the designated receiver)                FANOUT_WINDOW   524288/(N-1)
  --rate R              publish at most R events/s (0: as fast as
                        the window allows), for latency under a
                        given load                                 FANOUT_RATE     0
  --max-lag L           never more than L events ahead of the
                        slowest receiver (< the server's queue)    FANOUT_MAX_LAG  2048
  --spawn-server        start the fanout server on a free port     FANOUT_SPAWN_SERVER=1
  --server-bin PATH     server binary for --spawn-server           FANOUT_SERVER_BIN
                        (default: `fanout` next to this binary)
  --server-pid PID      the running server's pid, for CPU/memory   FANOUT_SERVER_PID
  --threads T           generator worker threads                   FANOUT_THREADS  #cpus
  --connect-concurrency C  handshakes in flight                    FANOUT_CONNECT_CONCURRENCY 64
  --read-buffer BYTES   per-client WebSocket read buffer           FANOUT_READ_BUFFER 8192
  --sample K            latency of one delivery in K per receiver  FANOUT_SAMPLE   1
  --settle SECS         idle time before reading the server's RSS  FANOUT_SETTLE   0.5
  --tungstenite         receivers on tokio-tungstenite, not the
                        lean client (what round 1 measured with)   FANOUT_TUNGSTENITE=1
  --drain-timeout SECS  wait for the last deliveries at most       FANOUT_DRAIN_TIMEOUT 30
";
fn parse_settings() -> Result<Settings, String> {
    let f = wsload::Flags::parse("FANOUT", HELP, &["spawn-server", "tungstenite"])?;
    let addr = match f.get("url").or_else(|| f.get("addr")) {
        Some(a) => {
            let a = a.trim_start_matches("ws://").trim_start_matches("http://");
            a.split('/').next().unwrap_or(a).to_owned()
        }
        None => "127.0.0.1:3000".to_owned(),
    };
    Ok(Settings {
        addr,
        spawn_server: f.on("spawn-server"),
        tungstenite: f.on("tungstenite"),
        server_bin: f.get("server-bin"),
        server_pid: f
            .get("server-pid")
            .map(|p| {
                p.parse()
                    .map_err(|_| format!("--server-pid: bad value {p:?}"))
            })
            .transpose()?,
        settle: f.secs("settle", 0.5)?,
        load: Load::parse(
            &f,
            2,
            "--clients must be at least 2 (a publisher and a receiver)",
            |clients| clients as u64 - 1,
            "events",
        )?,
    })
}

fn rss_bytes(pid: u32) -> Option<u64> {
    status_bytes(pid, "VmRSS")
}

// ---------------------------------------------------------------------------------------------
// Publisher

/// `42["broadcast","<payload>"]` until the deadline.
struct News {
    payload: usize,
    deadline: tokio::time::Instant,
}

impl Broadcasts for News {
    fn running(&self) -> bool {
        tokio::time::Instant::now() < self.deadline
    }

    fn write(&mut self, buf: &mut String, seq: u64, t: u64) -> bool {
        buf.push_str(r#"42["broadcast",""#);
        write_payload(buf, seq, t, self.payload);
        buf.push_str(r#""]"#);
        true
    }
}

/// How the publisher's run went.
struct PubReport {
    published: u64,
    waits: Waits,
    error: Option<String>,
}

/// Publishes until `deadline`, then sends the end-of-run event ([`wsload::publish`]); the
/// designated receiver is the last to connect.
async fn publisher(
    mut ws: Ws,
    shared: Arc<Shared>,
    s: Arc<Settings>,
    deadline: tokio::time::Instant,
) -> PubReport {
    let mut report = PubReport {
        published: 0,
        waits: Waits::default(),
        error: None,
    };
    let mut news = News {
        payload: s.load.payload,
        deadline,
    };
    let start = tokio::time::Instant::now();
    let sent = wsload::publish(
        &mut ws,
        &shared,
        &s.load,
        start,
        deadline,
        &mut news,
        &mut report.waits,
    );
    match sent.await {
        Ok(n) => report.published = n,
        Err(e) => {
            report.error = Some(e.to_string());
            return report;
        }
    }
    wsload::keep_answering_pings(ws);
    report
}

// ---------------------------------------------------------------------------------------------
// Main

fn spawn_server(s: &mut Settings) -> Result<Child, BoxError> {
    let bin = match &s.server_bin {
        Some(b) => std::path::PathBuf::from(b),
        None => {
            let sibling = std::env::current_exe()?.with_file_name("fanout");
            if sibling.exists() {
                sibling
            } else {
                "target/release/examples/fanout".into()
            }
        }
    };
    let port = wsload::free_port()?;
    let child = Command::new(&bin)
        .env("PORT", port.to_string())
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", bin.display()))?;
    s.addr = format!("127.0.0.1:{port}");
    let t0 = Instant::now();
    while std::net::TcpStream::connect(&s.addr).is_err() {
        if t0.elapsed() > Duration::from_secs(10) {
            return Err(format!("{} did not listen on {}", bin.display(), s.addr).into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "started {} (pid {}) on {}",
        bin.display(),
        child.id(),
        s.addr
    );
    Ok(child)
}

fn main() {
    let mut settings = match parse_settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fanout_load: {e}\n\n{HELP}");
            std::process::exit(2);
        }
    };
    let clients = settings.load.clients;
    let nofile = wsload::raise_nofile(2 * clients as u64 + 256);
    if nofile < clients as u64 + 64 {
        eprintln!(
            "warning: open files are limited to {nofile}, too few for {clients} clients (ulimit -n)"
        );
    }
    let mut child = None;
    if settings.spawn_server {
        match spawn_server(&mut settings) {
            Ok(c) => {
                settings.server_pid = Some(c.id());
                child = Some(c);
            }
            Err(e) => {
                eprintln!("fanout_load: {e}");
                std::process::exit(1);
            }
        }
    }
    let rt = settings.load.runtime();
    let result = rt.block_on(run(Arc::new(settings)));
    if let Some(mut c) = child {
        let _ = c.kill();
        let _ = c.wait();
    }
    rt.shutdown_timeout(Duration::from_millis(100));
    if let Err(e) = result {
        eprintln!("fanout_load: {e}");
        std::process::exit(1);
    }
}

/// Connects one client with `C`, counted in `shared`.
async fn client<C: Conn>(shared: &Shared, s: &Settings) -> Option<C> {
    let l = &s.load;
    shared
        .connect_client(&s.addr, l.read_buffer, None, None, "")
        .await
}

/// Connects receiver `me` with `C` and checks what it gets until the end of the run.
async fn receive<C: Conn>(shared: Arc<Shared>, s: &Settings, me: usize) -> Option<RxReport> {
    let ws: C = client(&shared, s).await?;
    let (payload, sample) = (s.load.payload, s.load.sample);
    Some(wsload::receiver(ws, me, shared, NEWS_PREFIX, payload, sample).await)
}

async fn run(s: Arc<Settings>) -> Result<(), BoxError> {
    let l = &s.load;
    let n = l.clients;
    let pid = s.server_pid;
    let _ = now_ns();
    // Slot 0 is the publisher's; the last receiver to connect bounds the window.
    let shared = Arc::new(Shared::new(n, 1, vec![n - 1], l.connect_concurrency, false));

    // Memory before any client: the server as it idles.
    if !s.settle.is_zero() {
        tokio::time::sleep(s.settle).await;
    }
    let rss_before = pid.and_then(rss_bytes);

    // Connect everyone: client 0 publishes, the others receive. Fail fast if nobody listens.
    wsload::connect::<Ws>(&s.addr, l.read_buffer, None, None)
        .await
        .map_err(|e| format!("connecting to {}: {e}", s.addr))?
        .close(None)
        .await?;
    eprintln!("connecting {n} clients to {} ...", s.addr);
    let t_connect = Instant::now();
    let (pub_tx, pub_rx) = tokio::sync::oneshot::channel::<Ws>();
    let mut pub_tx = Some(pub_tx);
    let mut receivers = Vec::with_capacity(n - 1);
    for me in 0..n {
        let (shared, s) = (shared.clone(), s.clone());
        let pub_tx = if me == 0 { pub_tx.take() } else { None };
        let task = tokio::spawn(async move {
            if let Some(tx) = pub_tx {
                let ws: Ws = client(&shared, &s).await?;
                let _ = tx.send(ws);
                return None;
            }
            if s.tungstenite {
                receive::<Ws>(shared, &s, me).await
            } else {
                receive::<RawWs>(shared, &s, me).await
            }
        });
        if me > 0 {
            receivers.push((me, task));
        }
    }
    let connected = shared.all_connected().await;
    let connect_time = t_connect.elapsed();
    connected?;
    let publisher_ws = pub_rx.await.map_err(|_| "the publisher did not connect")?;
    eprintln!(
        "{n} clients connected in {:.2} s",
        connect_time.as_secs_f64()
    );
    if !s.settle.is_zero() {
        tokio::time::sleep(s.settle).await;
    }
    let rss_connected = pid.and_then(rss_bytes);

    // The measured window: from the first event to the last delivery.
    let ticks_start = pid.and_then(cpu_ticks);
    let self_ticks_start = cpu_ticks(std::process::id());
    let machine_start = machine_busy_ticks();
    let t_start = now_ns();
    let deadline = tokio::time::Instant::now() + l.duration;
    let publisher = tokio::spawn(publisher(publisher_ws, shared.clone(), s.clone(), deadline));
    let monitor = Monitor::spawn(shared.clone());

    let report = publisher.await?;
    let published = shared.published(report.published);
    if let Some(e) = &report.error {
        eprintln!("the publisher stopped: {e}");
    }
    let max_lag = monitor.finish().await;

    // Collect the receivers, giving the last deliveries time to arrive.
    let (reports, stalled) =
        wsload::collect(receivers, &shared, l.drain_timeout, report.error.is_some()).await;
    let t_end_seen = now_ns();
    let ticks_end = pid.and_then(cpu_ticks);
    let self_ticks_end = cpu_ticks(std::process::id());
    let machine_end = machine_busy_ticks();
    let rss_after_run = pid.and_then(rss_bytes);
    // The high-water mark over the server's life: with --spawn-server, its peak under this load.
    let rss_peak = pid.and_then(|p| status_bytes(p, "VmHWM"));

    // Totals.
    let mut t = Totals::new(t_start);
    for (slot, r) in &reports {
        t.add(*slot, r, published, t_end_seen);
    }
    for &(_, next) in &stalled {
        t.add_stalled(next, published);
    }
    let (deliveries, lost, dup, stalled) = (t.deliveries, t.lost, t.dup, t.stalled);
    let hist = &t.hist;
    let elapsed_s = (t.t_last - t_start) as f64 / 1e9;
    let rate = deliveries as f64 / elapsed_s;
    let cpu_s = ticks_s(ticks_start, ticks_end);
    let cpu_us_per_delivery = cpu_s.map(|c| c * 1e6 / deliveries.max(1) as f64);
    let self_cpu_s = ticks_s(self_ticks_start, self_ticks_end);
    // CPU time used by other processes over the window: a disturbed run is not comparable.
    let others_s = match (ticks_s(machine_start, machine_end), cpu_s, self_cpu_s) {
        (Some(m), Some(srv), Some(me)) => Some((m - srv - me).max(0.0)),
        _ => None,
    };
    let mem_per_client = match (rss_before, rss_connected) {
        (Some(a), Some(b)) => Some((b as f64 - a as f64) / n as f64),
        _ => None,
    };
    let (p50, p99, p999, max, mean) = (
        hist.quantile(0.5),
        hist.quantile(0.99),
        hist.quantile(0.999),
        hist.max,
        hist.mean(),
    );

    // Report.
    let us = |ns: u64| ns as f64 / 1e3;
    let opt = |v: Option<f64>, unit: &str, digits: usize| match v {
        Some(v) => format!("{v:.digits$} {unit}"),
        None => "n/a (no --server-pid)".into(),
    };
    let kib = |b: Option<u64>| b.map(|b| b as f64 / 1024.0);
    println!("fan-out benchmark against {}", s.addr);
    println!(
        "  clients            {n} (1 publisher, {} receivers), connected in {:.2} s",
        n - 1,
        connect_time.as_secs_f64()
    );
    println!(
        "  publishing         {:.1} s, window {} events{}; measured window {elapsed_s:.3} s",
        l.duration.as_secs_f64(),
        l.window,
        wsload::at_most(l.rate, " events")
    );
    println!(
        "  events published   {published} ({:.0}/s); window full {} times, max lag reached {} times",
        published as f64 / elapsed_s,
        report.waits.window,
        report.waits.lag
    );
    println!("  deliveries         {deliveries} ({rate:.0}/s)");
    println!("  lost               {lost}");
    println!("  duplicated         {dup}");
    t.print_unexpected();
    if stalled > 0 || !t.disconnected.is_empty() {
        println!(
            "  receivers lost     {} disconnected, {stalled} never finished",
            t.disconnected.len()
        );
        for (_, next, why) in t.disconnected.iter().take(5) {
            println!("                     after {next} events: {why}");
        }
    }
    println!("  slowest receiver   at most {max_lag} events behind the publisher");
    println!(
        "  heartbeats         {} Engine.IO pings answered",
        shared.pongs.load(Ordering::Relaxed)
    );
    println!(
        "  latency            p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs, mean {:.1} µs ({} samples)",
        us(p50),
        us(p99),
        us(p999),
        us(max),
        us(mean),
        hist.total
    );
    println!(
        "  server CPU         {} over the window, {} per delivery",
        opt(cpu_s, "s", 2),
        opt(cpu_us_per_delivery, "µs", 3)
    );
    println!(
        "  server RSS         {} before clients, {} with {n} clients, {} after the run, {} at its peak",
        opt(kib(rss_before), "KiB", 0),
        opt(kib(rss_connected), "KiB", 0),
        opt(kib(rss_after_run), "KiB", 0),
        opt(kib(rss_peak), "KiB", 0)
    );
    println!(
        "  memory per client  {}",
        opt(mem_per_client.map(|b| b / 1024.0), "KiB", 2)
    );
    println!(
        "  generator CPU      {} over the window ({} threads)",
        opt(self_cpu_s, "s", 2),
        l.threads
    );
    if let Some(o) = others_s {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let share = o / (elapsed_s * cpus);
        println!(
            "  other processes    {o:.2} s CPU over the window ({:.0}% of the machine){}",
            share * 100.0,
            if share > 0.05 {
                "  <- the run was disturbed"
            } else {
                ""
            }
        );
    }
    println!(
        "{{\"clients\":{n},\"duration_s\":{elapsed_s:.4},\"publish_s\":{:.3},\"window\":{},\"rate\":{},\"payload\":{},\
\"events_published\":{published},\"deliveries\":{deliveries},\"deliveries_per_s\":{rate:.0},\
\"lost\":{lost},\"duplicated\":{dup},\"unexpected\":{},\"disconnected\":{},\"stalled\":{stalled},\
\"max_lag_events\":{max_lag},\"max_lag_reached\":{},\"latency_ns\":{{\"p50\":{p50},\"p99\":{p99},\"p999\":{p999},\"max\":{max},\"mean\":{mean},\"samples\":{}}},\
\"server_cpu_s\":{},\"server_cpu_us_per_delivery\":{},\"server_rss_before\":{},\"server_rss_connected\":{},\
\"server_rss_after_run\":{},\"server_rss_peak\":{},\"server_bytes_per_client\":{},\"generator_cpu_s\":{},\"others_cpu_s\":{},\"connect_s\":{:.3}}}",
        l.duration.as_secs_f64(),
        l.window,
        l.rate,
        l.payload,
        t.unexpected,
        t.disconnected.len(),
        report.waits.lag,
        hist.total,
        json_f(cpu_s),
        json_f(cpu_us_per_delivery),
        json_u(rss_before),
        json_u(rss_connected),
        json_u(rss_after_run),
        json_u(rss_peak),
        json_f(mem_per_client),
        json_f(self_cpu_s),
        json_f(others_s),
        connect_time.as_secs_f64()
    );
    Ok(())
}
