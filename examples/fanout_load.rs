//! The load generator of the end-to-end fan-out benchmark (docs/EXAMPLES.md, `fanout`).
//!
//! N clients speak the raw Socket.IO v5 / Engine.IO v4 wire protocol over WebSocket. Client 0
//! publishes `42["broadcast","<payload>"]` as fast as a bounded in-flight window allows; the
//! server emits `42["news","<payload>"]` to the N-1 others, which check that nothing is lost or
//! duplicated and sample the latency. The server's CPU time and memory are read from
//! `/proc/<pid>` (Linux).
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

use futures_util::{FutureExt, SinkExt, StreamExt};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<TcpStream>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the receivers expect in front of the payload, and after it.
const NEWS_PREFIX: &[u8] = br#"42["news",""#;
const NEWS_SUFFIX: &[u8] = br#""]"#;
/// `<seq>:<t>:` — the smallest payload.
const PAYLOAD_HEADER: usize = 34;
/// The default window, in deliveries: `--window` is this divided by the receivers.
const DELIVERIES_IN_FLIGHT: u64 = 512 * 1024;
/// The timestamp of the end-of-run event.
const END_MARK: u64 = u64::MAX;

/// The monotonic clock every timestamp is taken from.
static EPOCH: OnceLock<Instant> = OnceLock::new();

fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

// ---------------------------------------------------------------------------------------------
// Settings

#[derive(Debug, Clone)]
struct Settings {
    addr: String,
    clients: usize,
    duration: Duration,
    payload: usize,
    window: u64,
    max_lag: u64,
    rate: f64,
    spawn_server: bool,
    server_bin: Option<String>,
    server_pid: Option<u32>,
    threads: usize,
    connect_concurrency: usize,
    read_buffer: usize,
    sample: u64,
    settle: Duration,
    drain_timeout: Duration,
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
  --drain-timeout SECS  wait for the last deliveries at most       FANOUT_DRAIN_TIMEOUT 30
";

fn parse_settings() -> Result<Settings, String> {
    let mut flags: Vec<(String, String)> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let arg = arg.trim_start_matches('-').to_owned();
        if arg == "help" || arg == "h" {
            print!("{HELP}");
            std::process::exit(0);
        }
        let (name, value) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), v.to_owned()),
            None if arg == "spawn-server" => (arg, "1".to_owned()),
            None => {
                let v = args.next().ok_or(format!("--{arg} needs a value"))?;
                (arg, v)
            }
        };
        flags.push((name, value));
    }
    let get = |name: &str| -> Option<String> {
        flags
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .or_else(|| {
                let env = format!("FANOUT_{}", name.to_uppercase().replace('-', "_"));
                std::env::var(env).ok()
            })
    };
    fn num<T: std::str::FromStr>(name: &str, v: Option<String>, default: T) -> Result<T, String> {
        match v {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{name}: bad value {v:?}")),
        }
    }
    let secs = |name: &str, default: f64| -> Result<Duration, String> {
        let s: f64 = num(name, get(name), default)?;
        Duration::try_from_secs_f64(s).map_err(|_| format!("--{name}: bad value {s}"))
    };
    let addr = match get("url").or_else(|| get("addr")) {
        Some(a) => {
            let a = a.trim_start_matches("ws://").trim_start_matches("http://");
            a.split('/').next().unwrap_or(a).to_owned()
        }
        None => "127.0.0.1:3000".to_owned(),
    };
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let s = Settings {
        addr,
        clients: num("clients", get("clients"), 1000)?,
        duration: secs("duration", 10.0)?,
        payload: num("payload", get("payload"), 64)?,
        window: 0, // below: depends on the number of clients
        max_lag: num("max-lag", get("max-lag"), 2048)?,
        rate: num("rate", get("rate"), 0.0)?,
        spawn_server: get("spawn-server").is_some_and(|v| v != "0" && v != "false"),
        server_bin: get("server-bin"),
        server_pid: get("server-pid")
            .map(|p| {
                p.parse()
                    .map_err(|_| format!("--server-pid: bad value {p:?}"))
            })
            .transpose()?,
        threads: num("threads", get("threads"), cpus)?,
        connect_concurrency: num("connect-concurrency", get("connect-concurrency"), 64)?,
        read_buffer: num("read-buffer", get("read-buffer"), 8192)?,
        sample: num("sample", get("sample"), 1)?,
        settle: secs("settle", 0.5)?,
        drain_timeout: secs("drain-timeout", 30.0)?,
    };
    if s.clients < 2 {
        return Err("--clients must be at least 2 (a publisher and a receiver)".into());
    }
    // About 512 Ki deliveries in flight: more batching, more throughput (measured on 2 cores),
    // and the slowest receiver stays well within the server's queue.
    let default_window = (DELIVERIES_IN_FLIGHT / (s.clients as u64 - 1)).clamp(4, 1024);
    let mut s = s;
    s.window = num("window", get("window"), default_window)?;
    if !(s.rate >= 0.0 && s.rate.is_finite()) {
        return Err("--rate must be a number of events per second, or 0".into());
    }
    if s.payload < PAYLOAD_HEADER {
        return Err(format!("--payload must be at least {PAYLOAD_HEADER}"));
    }
    if s.window == 0
        || s.max_lag == 0
        || s.sample == 0
        || s.threads == 0
        || s.connect_concurrency == 0
    {
        return Err(
            "--window, --max-lag, --sample, --threads, --connect-concurrency must be > 0".into(),
        );
    }
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// /proc

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11); // field 14 is utime, 15 stime
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Busy time of the whole machine (all CPUs, everything but idle and iowait), in clock ticks:
/// what is left after the server and the generator is someone else's load on the benchmark.
fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: u64 = v.iter().take(8).sum();
    Some(total - v.get(3)? - v.get(4).copied().unwrap_or(0))
}

/// Resident memory of a process, in bytes.
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Raises the soft limit on open files as far as the hard limit allows (the spawned server
/// inherits it).
#[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
fn raise_nofile(want: u64) -> u64 {
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if (lim.rlim_cur as u64) < want {
            let new = want.min(lim.rlim_max as u64);
            let raised = libc::rlimit {
                rlim_cur: new as libc::rlim_t,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return new;
            }
        }
        lim.rlim_cur as u64
    }
}

// ---------------------------------------------------------------------------------------------
// Latency histogram: log-linear, 32 sub-buckets per power of two (error under 3.2%), fixed
// size, no allocation while recording.

const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;
/// Values up to 2^41 ns (36 min) are told apart; larger ones land in the last bucket.
const MAX_EXP: usize = 41;
const BUCKETS: usize = (MAX_EXP - SUB_BITS as usize + 1) * SUB + SUB;

struct Histogram {
    counts: Box<[u32]>,
    total: u64,
    max: u64,
    sum: u128,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            counts: vec![0u32; BUCKETS].into_boxed_slice(),
            total: 0,
            max: 0,
            sum: 0,
        }
    }

    fn index(v: u64) -> usize {
        if v < SUB as u64 {
            return v as usize;
        }
        let e = (63 - v.leading_zeros()) as usize;
        if e > MAX_EXP {
            return BUCKETS - 1;
        }
        let sub = ((v >> (e - SUB_BITS as usize)) as usize) & (SUB - 1);
        (e - SUB_BITS as usize + 1) * SUB + sub
    }

    /// The largest value of a bucket.
    fn upper(i: usize) -> u64 {
        if i < SUB {
            return i as u64;
        }
        let e = i / SUB - 1 + SUB_BITS as usize;
        let sub = (i % SUB) as u64;
        ((SUB as u64 + sub + 1) << (e - SUB_BITS as usize)) - 1
    }

    #[inline]
    fn record(&mut self, v: u64) {
        let c = &mut self.counts[Self::index(v)];
        *c = c.saturating_add(1);
        self.total += 1;
        self.max = self.max.max(v);
        self.sum += u128::from(v);
    }

    fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(o.counts.iter()) {
            *a = a.saturating_add(*b);
        }
        self.total += o.total;
        self.max = self.max.max(o.max);
        self.sum += o.sum;
    }

    fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return Self::upper(i).min(self.max);
            }
        }
        self.max
    }

    fn mean(&self) -> u64 {
        if self.total == 0 {
            0
        } else {
            (self.sum / u128::from(self.total)) as u64
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Shared state

/// One receiver's progress, on its own cache line: the next sequence number it expects.
#[repr(align(64))]
#[derive(Default)]
struct Progress {
    next: AtomicU64,
    dead: AtomicBool,
}

struct Shared {
    progress: Box<[Progress]>,
    /// The receiver whose progress bounds the publisher's window.
    designated: usize,
    /// The publisher sleeps until the designated receiver reaches this sequence number.
    wake_at: AtomicU64,
    wake: Notify,
    /// Events sent so far.
    published: AtomicU64,
    /// The slowest live receiver's next expected event, as the monitor last saw it.
    slowest: AtomicU64,
    connected: AtomicUsize,
    failed: AtomicUsize,
    all_connected: Notify,
    /// Engine.IO pings answered.
    pongs: AtomicU64,
}

impl Shared {
    fn client_ready(&self, total: usize) {
        if self.connected.fetch_add(1, Ordering::SeqCst) + 1 + self.failed.load(Ordering::SeqCst)
            == total
        {
            self.all_connected.notify_one();
        }
    }

    fn client_failed(&self, total: usize) {
        if self.failed.fetch_add(1, Ordering::SeqCst) + 1 + self.connected.load(Ordering::SeqCst)
            == total
        {
            self.all_connected.notify_one();
        }
    }
}

/// What one receiver saw.
struct RxReport {
    /// The next sequence number it expected when it stopped.
    next: u64,
    /// Sequence numbers skipped (then never seen).
    gaps: u64,
    /// Sequence numbers seen again, or out of order.
    dup: u64,
    deliveries: u64,
    /// Whether it got the end-of-run event.
    ended: bool,
    /// When it got the end-of-run event (ns on the shared clock).
    ended_at: u64,
    /// When the connection ended before the end of the run, and why.
    lost_connection: Option<String>,
    unexpected: u64,
    first_unexpected: Option<String>,
    hist: Histogram,
}

// ---------------------------------------------------------------------------------------------
// Wire

async fn connect(s: &Settings) -> Result<Ws, BoxError> {
    let tcp = TcpStream::connect(&s.addr).await?;
    tcp.set_nodelay(true)?;
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", s.addr);
    let config = WebSocketConfig::default().read_buffer_size(s.read_buffer);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(url.into_client_request()?, tcp, Some(config))
            .await?;
    // Engine.IO open, then the Socket.IO CONNECT to `/`.
    let mut opened = false;
    loop {
        let msg = ws.next().await.ok_or("closed during the handshake")??;
        let Message::Text(t) = msg else { continue };
        let t = t.as_str();
        if !opened {
            if !t.starts_with("0{") {
                return Err(format!("expected the open packet, got {t:?}").into());
            }
            opened = true;
            ws.send(Message::text("40")).await?;
        } else if t == "2" {
            ws.send(Message::text("3")).await?;
        } else if t.starts_with("40{\"sid\":") {
            return Ok(ws);
        } else {
            return Err(format!("expected 40{{\"sid\":...}}, got {t:?}").into());
        }
    }
}

async fn connect_retrying(s: &Settings) -> Result<Ws, BoxError> {
    let mut delay = Duration::from_millis(50);
    for _ in 0..5 {
        match connect(s).await {
            Ok(ws) => return Ok(ws),
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    connect(s).await
}

fn hex16(b: &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for &c in b {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | u64::from(d);
    }
    Some(v)
}

/// `<seq>:<t>:` padded with `.` to `len` bytes.
fn write_payload(buf: &mut String, seq: u64, t: u64, len: usize) {
    use std::fmt::Write;
    let _ = write!(buf, "{seq:016x}:{t:016x}:");
    for _ in PAYLOAD_HEADER..len {
        buf.push('.');
    }
}

// ---------------------------------------------------------------------------------------------
// Receiver

async fn receiver(mut ws: Ws, me: usize, shared: Arc<Shared>, s: Arc<Settings>) -> RxReport {
    let expected_len = NEWS_PREFIX.len() + s.payload + NEWS_SUFFIX.len();
    let designated = me == shared.designated;
    let progress = &shared.progress[me];
    let sample = s.sample;
    let phase = me as u64 % sample;
    let mut r = RxReport {
        next: 0,
        gaps: 0,
        dup: 0,
        deliveries: 0,
        ended: false,
        ended_at: 0,
        lost_connection: None,
        unexpected: 0,
        first_unexpected: None,
        hist: Histogram::new(),
    };
    // The clock is read once per wake-up, and again every `REFRESH` messages handled without
    // waiting (what one read brought in): a clock read per delivery costs the generator ~10%.
    const REFRESH: u32 = 32;
    let mut now = 0u64;
    let mut unchecked = REFRESH;
    loop {
        let next = match ws.next().now_or_never() {
            Some(m) => {
                unchecked += 1;
                if unchecked >= REFRESH {
                    now = now_ns();
                    unchecked = 0;
                }
                m
            }
            None => {
                let m = ws.next().await;
                now = now_ns();
                unchecked = 0;
                m
            }
        };
        let msg = match next {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                r.lost_connection = Some(format!("error: {e}"));
                break;
            }
            None => {
                r.lost_connection = Some("closed".into());
                break;
            }
        };
        let t = match &msg {
            Message::Text(t) => t.as_bytes(),
            Message::Close(c) => {
                r.lost_connection = Some(format!("close frame {c:?}"));
                break;
            }
            _ => continue,
        };
        if t.len() == expected_len && t.starts_with(NEWS_PREFIX) {
            let p = &t[NEWS_PREFIX.len()..];
            let (Some(seq), Some(ts)) = (hex16(&p[..16]), hex16(&p[17..33])) else {
                r.unexpected += 1;
                r.first_unexpected
                    .get_or_insert_with(|| String::from_utf8_lossy(t).into_owned());
                continue;
            };
            if ts == END_MARK {
                // Everything published before it has been delivered by now, or never will.
                r.ended_at = now_ns();
                if seq > r.next {
                    r.gaps += seq - r.next;
                    r.next = seq;
                }
                r.ended = true;
                break;
            }
            if seq == r.next {
                r.next += 1;
            } else if seq > r.next {
                r.gaps += seq - r.next;
                r.next = seq + 1;
            } else {
                r.dup += 1;
            }
            r.deliveries += 1;
            if sample == 1 || seq % sample == phase {
                if ts > now {
                    // Sent after the clock was last read: read it again.
                    now = now_ns();
                    unchecked = 0;
                }
                r.hist.record(now.saturating_sub(ts));
            }
            if designated {
                progress.next.store(r.next, Ordering::SeqCst);
                if r.next >= shared.wake_at.load(Ordering::SeqCst) {
                    shared.wake_at.store(u64::MAX, Ordering::SeqCst);
                    shared.wake.notify_one();
                }
            } else {
                progress.next.store(r.next, Ordering::Relaxed);
            }
        } else if t == b"2" {
            shared.pongs.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = ws.send(Message::text("3")).await {
                r.lost_connection = Some(format!("sending a pong: {e}"));
                break;
            }
            unchecked = REFRESH;
        } else {
            r.unexpected += 1;
            r.first_unexpected
                .get_or_insert_with(|| String::from_utf8_lossy(t).into_owned());
        }
    }
    progress.dead.store(true, Ordering::SeqCst);
    if designated {
        // Don't leave the publisher waiting for a receiver that is gone.
        shared.wake_at.store(u64::MAX, Ordering::SeqCst);
        shared.wake.notify_one();
    }
    // Close our side once the run is over; the publisher may still be running otherwise.
    let _ = ws.close(None).await;
    r
}

// ---------------------------------------------------------------------------------------------
// Publisher

/// Answers pings that already arrived, without waiting.
async fn answer_pings(ws: &mut Ws, shared: &Shared) -> Result<(), BoxError> {
    while let Some(m) = ws.next().now_or_never() {
        match m {
            Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
                shared.pongs.fetch_add(1, Ordering::Relaxed);
                ws.send(Message::text("3")).await?;
            }
            Some(Ok(Message::Close(c))) => return Err(format!("close frame {c:?}").into()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => return Err("closed".into()),
        }
    }
    Ok(())
}

/// Handles what the publisher's connection brings while it waits: pings, or the end of it.
async fn publisher_input(
    m: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ws: &mut Ws,
    shared: &Shared,
) -> Result<(), BoxError> {
    match m {
        Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
            shared.pongs.fetch_add(1, Ordering::Relaxed);
            ws.send(Message::text("3")).await?;
            Ok(())
        }
        Some(Ok(Message::Close(c))) => Err(format!("close frame {c:?}").into()),
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(e.into()),
        None => Err("closed".into()),
    }
}

/// How the publisher's run went.
struct PubReport {
    published: u64,
    /// Times the window was full.
    window_waits: u64,
    /// Times the slowest receiver was `--max-lag` behind.
    lag_waits: u64,
    error: Option<String>,
}

/// Publishes until `deadline`, then sends the end-of-run event.
///
/// At most `--window` events are in flight: sent, not yet received by the designated receiver
/// (the last to connect). As a guard, the publisher also never runs more than `--max-lag`
/// events ahead of the slowest receiver the monitor saw, so that no connection's queue in the
/// server (4,096 frames by default) can overflow and be closed as a slow consumer.
async fn publisher(
    mut ws: Ws,
    shared: Arc<Shared>,
    s: Arc<Settings>,
    deadline: tokio::time::Instant,
) -> PubReport {
    let mut report = PubReport {
        published: 0,
        window_waits: 0,
        lag_waits: 0,
        error: None,
    };
    if let Err(e) = publish(&mut ws, &shared, &s, deadline, &mut report).await {
        report.error = Some(e.to_string());
        return report;
    }
    // Keep answering pings until the receivers are done; the runtime drops this task then.
    tokio::spawn(async move {
        while let Some(Ok(m)) = ws.next().await {
            if matches!(&m, Message::Text(t) if t.as_str() == "2")
                && ws.send(Message::text("3")).await.is_err()
            {
                break;
            }
        }
    });
    report
}

async fn publish(
    ws: &mut Ws,
    shared: &Shared,
    s: &Settings,
    deadline: tokio::time::Instant,
    report: &mut PubReport,
) -> Result<(), BoxError> {
    let window = s.window;
    // Wait for a quarter of the window to free up, then fill it with one write.
    let refill = (window / 4).max(1);
    let designated = &shared.progress[shared.designated];
    let mut seq = 0u64;
    let mut text = String::with_capacity(32 + s.payload);
    let start = tokio::time::Instant::now();
    // When event `seq` is due, at `--rate`.
    let due = |seq: u64| start + Duration::from_secs_f64(seq as f64 / s.rate);
    'run: while tokio::time::Instant::now() < deadline {
        if designated.dead.load(Ordering::SeqCst) {
            return Err("the designated receiver lost its connection".into());
        }
        let acked = designated.next.load(Ordering::SeqCst);
        let room = window - (seq - acked.min(seq)).min(window);
        let guard = (shared.slowest.load(Ordering::Relaxed) + s.max_lag).saturating_sub(seq);
        let paced = if s.rate > 0.0 {
            let elapsed = start.elapsed().as_secs_f64();
            ((elapsed * s.rate) as u64 + 1).saturating_sub(seq)
        } else {
            u64::MAX
        };
        if guard == 0 || paced == 0 {
            // The slowest receiver is far behind, let it catch up; or the next event is not due.
            let until = if guard == 0 {
                report.lag_waits += 1;
                tokio::time::Instant::now() + Duration::from_millis(1)
            } else {
                due(seq)
            };
            let pause = tokio::time::sleep_until(until.min(deadline));
            tokio::pin!(pause);
            loop {
                tokio::select! {
                    () = &mut pause => continue 'run,
                    m = ws.next() => publisher_input(m, ws, shared).await?,
                }
            }
        }
        let limit = guard.min(paced);
        if room >= refill.min(limit) {
            for _ in 0..room.min(limit) {
                text.clear();
                text.push_str(r#"42["broadcast",""#);
                write_payload(&mut text, seq, now_ns(), s.payload);
                text.push_str(r#""]"#);
                ws.feed(Message::text(text.as_str())).await?;
                seq += 1;
                shared.published.store(seq, Ordering::Relaxed);
            }
            ws.flush().await?;
            answer_pings(ws, shared).await?;
            continue;
        }
        // Sleep until the designated receiver has made room for `refill` more.
        report.window_waits += 1;
        let target = seq + refill - window;
        let woken = shared.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        shared.wake_at.store(target, Ordering::SeqCst);
        if designated.next.load(Ordering::SeqCst) >= target
            || designated.dead.load(Ordering::SeqCst)
        {
            shared.wake_at.store(u64::MAX, Ordering::SeqCst);
            continue;
        }
        loop {
            tokio::select! {
                () = &mut woken => break,
                m = ws.next() => publisher_input(m, ws, shared).await?,
                () = tokio::time::sleep_until(deadline) => break 'run,
            }
        }
    }
    report.published = seq;
    text.clear();
    text.push_str(r#"42["broadcast",""#);
    write_payload(&mut text, seq, END_MARK, s.payload);
    text.push_str(r#""]"#);
    ws.send(Message::text(text.as_str())).await?;
    Ok(())
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
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
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
    let nofile = raise_nofile(2 * settings.clients as u64 + 256);
    if nofile < settings.clients as u64 + 64 {
        eprintln!(
            "warning: open files are limited to {nofile}, too few for {} clients (ulimit -n)",
            settings.clients
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.threads)
        .enable_all()
        .build()
        .expect("tokio runtime");
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

async fn run(s: Arc<Settings>) -> Result<(), BoxError> {
    let n = s.clients;
    let pid = s.server_pid;
    let _ = now_ns();
    let progress: Box<[Progress]> = (0..n).map(|_| Progress::default()).collect();
    let shared = Arc::new(Shared {
        progress,
        designated: n - 1,
        wake_at: AtomicU64::new(u64::MAX),
        wake: Notify::new(),
        published: AtomicU64::new(0),
        slowest: AtomicU64::new(0),
        connected: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        all_connected: Notify::new(),
        pongs: AtomicU64::new(0),
    });

    // Memory before any client: the server as it idles.
    if !s.settle.is_zero() {
        tokio::time::sleep(s.settle).await;
    }
    let rss_before = pid.and_then(rss_bytes);

    // Connect everyone: client 0 publishes, the others receive. Fail fast if nobody listens.
    connect(&s)
        .await
        .map_err(|e| format!("connecting to {}: {e}", s.addr))?
        .close(None)
        .await?;
    eprintln!("connecting {n} clients to {} ...", s.addr);
    let t_connect = Instant::now();
    let gate = Arc::new(Semaphore::new(s.connect_concurrency));
    let all_connected = shared.all_connected.notified();
    tokio::pin!(all_connected);
    all_connected.as_mut().enable();
    let (pub_tx, pub_rx) = tokio::sync::oneshot::channel::<Ws>();
    let mut pub_tx = Some(pub_tx);
    let first_error: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let mut receivers = Vec::with_capacity(n - 1);
    for me in 0..n {
        let (shared, s, gate) = (shared.clone(), s.clone(), gate.clone());
        let first_error = first_error.clone();
        let pub_tx = if me == 0 { pub_tx.take() } else { None };
        let task = tokio::spawn(async move {
            let permit = gate.acquire_owned().await.expect("semaphore");
            let ws = match connect_retrying(&s).await {
                Ok(ws) => ws,
                Err(e) => {
                    first_error
                        .lock()
                        .unwrap()
                        .get_or_insert_with(|| e.to_string());
                    shared.client_failed(s.clients);
                    return None;
                }
            };
            drop(permit);
            shared.client_ready(s.clients);
            if let Some(tx) = pub_tx {
                let _ = tx.send(ws);
                return None;
            }
            Some(receiver(ws, me, shared, s).await)
        });
        if me > 0 {
            receivers.push(task);
        }
    }
    all_connected.await;
    let connect_time = t_connect.elapsed();
    let failed = shared.failed.load(Ordering::SeqCst);
    if failed > 0 {
        let e = first_error.lock().unwrap().clone().unwrap_or_default();
        return Err(format!("{failed} of {n} clients could not connect; first error: {e}").into());
    }
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
    let deadline = tokio::time::Instant::now() + s.duration;
    let publisher = tokio::spawn(publisher(publisher_ws, shared.clone(), s.clone(), deadline));

    // Watch the slowest receiver while the run goes on: the publisher's guard, and a figure
    // for the report. A scan touches one cache line per receiver: not too often.
    let monitor_stop = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (shared, stop) = (shared.clone(), monitor_stop.clone());
        let every = Duration::from_micros((n as u64 * 4).clamp(5_000, 50_000));
        tokio::spawn(async move {
            let mut max_lag = 0u64;
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let published = shared.published.load(Ordering::Relaxed);
                let slowest = shared
                    .progress
                    .iter()
                    .skip(1)
                    .filter(|p| !p.dead.load(Ordering::Relaxed))
                    .map(|p| p.next.load(Ordering::Relaxed))
                    .min();
                let Some(slowest) = slowest else { break };
                shared.slowest.store(slowest, Ordering::Relaxed);
                max_lag = max_lag.max(published.saturating_sub(slowest));
            }
            max_lag
        })
    };

    let report = publisher.await?;
    monitor_stop.store(true, Ordering::Relaxed);
    let published = report
        .published
        .max(shared.published.load(Ordering::SeqCst));
    if let Some(e) = &report.error {
        eprintln!("the publisher stopped: {e}");
    }
    let max_lag = monitor.await.unwrap_or(0);

    // Collect the receivers, giving the last deliveries time to arrive.
    // Without the end-of-run event, a receiver only stops when its time is up.
    let drain = if report.error.is_some() {
        s.drain_timeout.min(Duration::from_secs(2))
    } else {
        s.drain_timeout
    };
    let drain_deadline = tokio::time::Instant::now() + drain;
    let mut reports = Vec::with_capacity(n - 1);
    // Receivers that did not finish: what they had received in order when they were dropped.
    let mut stalled = Vec::new();
    for (i, task) in receivers.into_iter().enumerate() {
        let abort = task.abort_handle();
        match tokio::time::timeout_at(drain_deadline, task).await {
            Ok(Ok(Some(r))) => reports.push(r),
            Ok(_) => stalled.push(shared.progress[i + 1].next.load(Ordering::SeqCst)),
            Err(_) => {
                abort.abort();
                stalled.push(shared.progress[i + 1].next.load(Ordering::SeqCst));
            }
        }
    }
    let t_end_seen = now_ns();
    let ticks_end = pid.and_then(cpu_ticks);
    let self_ticks_end = cpu_ticks(std::process::id());
    let machine_end = machine_busy_ticks();
    let rss_after_run = pid.and_then(rss_bytes);

    // Totals.
    let mut hist = Histogram::new();
    let (mut deliveries, mut lost, mut dup, mut unexpected) = (0u64, 0u64, 0u64, 0u64);
    let mut disconnected = Vec::new();
    let mut first_unexpected = None;
    let mut t_last = t_start;
    for r in &reports {
        deliveries += r.deliveries;
        lost += r.gaps + published.saturating_sub(r.next);
        dup += r.dup;
        unexpected += r.unexpected;
        if first_unexpected.is_none() {
            first_unexpected = r.first_unexpected.clone();
        }
        if let Some(why) = &r.lost_connection {
            disconnected.push((r.next, why.clone()));
        }
        if r.ended {
            t_last = t_last.max(r.ended_at);
        } else {
            t_last = t_last.max(t_end_seen);
        }
        hist.merge(&r.hist);
    }
    // Receivers that never reported: count what they had received in order (gaps unknown).
    for &next in &stalled {
        deliveries += next;
        lost += published.saturating_sub(next);
    }
    let stalled = stalled.len();
    let elapsed_s = (t_last - t_start) as f64 / 1e9;
    let rate = deliveries as f64 / elapsed_s;
    let hz = clock_ticks_per_sec();
    let cpu_s = match (ticks_start, ticks_end) {
        (Some(a), Some(b)) => Some((b - a) as f64 / hz as f64),
        _ => None,
    };
    let cpu_us_per_delivery = cpu_s.map(|c| c * 1e6 / deliveries.max(1) as f64);
    let self_cpu_s = match (self_ticks_start, self_ticks_end) {
        (Some(a), Some(b)) => Some((b - a) as f64 / hz as f64),
        _ => None,
    };
    // CPU time used by other processes over the window: a disturbed run is not comparable.
    let others_s = match (machine_start, machine_end, cpu_s, self_cpu_s) {
        (Some(a), Some(b), Some(srv), Some(me)) => {
            Some(((b - a) as f64 / hz as f64 - srv - me).max(0.0))
        }
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
        s.duration.as_secs_f64(),
        s.window,
        if s.rate > 0.0 {
            format!(", at most {} events/s", s.rate)
        } else {
            String::new()
        }
    );
    println!(
        "  events published   {published} ({:.0}/s); window full {} times, max lag reached {} times",
        published as f64 / elapsed_s,
        report.window_waits,
        report.lag_waits
    );
    println!("  deliveries         {deliveries} ({rate:.0}/s)");
    println!("  lost               {lost}");
    println!("  duplicated         {dup}");
    if unexpected > 0 {
        println!(
            "  unexpected frames  {unexpected} (first: {:?})",
            first_unexpected.unwrap_or_default()
        );
    }
    if stalled > 0 || !disconnected.is_empty() {
        println!(
            "  receivers lost     {} disconnected, {stalled} never finished",
            disconnected.len()
        );
        for (next, why) in disconnected.iter().take(5) {
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
        "  server RSS         {} before clients, {} with {n} clients, {} after the run",
        opt(kib(rss_before), "KiB", 0),
        opt(kib(rss_connected), "KiB", 0),
        opt(kib(rss_after_run), "KiB", 0)
    );
    println!(
        "  memory per client  {}",
        opt(mem_per_client.map(|b| b / 1024.0), "KiB", 2)
    );
    println!(
        "  generator CPU      {} over the window ({} threads)",
        opt(self_cpu_s, "s", 2),
        s.threads
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
    let j = |v: Option<f64>| v.map_or("null".to_owned(), |v| format!("{v:.4}"));
    let ju = |v: Option<u64>| v.map_or("null".to_owned(), |v| v.to_string());
    println!(
        "{{\"clients\":{n},\"duration_s\":{elapsed_s:.4},\"publish_s\":{:.3},\"window\":{},\"rate\":{},\"payload\":{},\
\"events_published\":{published},\"deliveries\":{deliveries},\"deliveries_per_s\":{rate:.0},\
\"lost\":{lost},\"duplicated\":{dup},\"unexpected\":{unexpected},\"disconnected\":{},\"stalled\":{stalled},\
\"max_lag_events\":{max_lag},\"max_lag_reached\":{},\"latency_ns\":{{\"p50\":{p50},\"p99\":{p99},\"p999\":{p999},\"max\":{max},\"mean\":{mean},\"samples\":{}}},\
\"server_cpu_s\":{},\"server_cpu_us_per_delivery\":{},\"server_rss_before\":{},\"server_rss_connected\":{},\
\"server_rss_after_run\":{},\"server_bytes_per_client\":{},\"generator_cpu_s\":{},\"others_cpu_s\":{},\"connect_s\":{:.3}}}",
        s.duration.as_secs_f64(),
        s.window,
        s.rate,
        s.payload,
        disconnected.len(),
        report.lag_waits,
        hist.total,
        j(cpu_s),
        j(cpu_us_per_delivery),
        ju(rss_before),
        ju(rss_connected),
        ju(rss_after_run),
        j(mem_per_client),
        j(self_cpu_s),
        j(others_s),
        connect_time.as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_cover_values() {
        for v in [
            0u64,
            1,
            31,
            32,
            33,
            63,
            64,
            1000,
            123_456,
            1 << 40,
            (1 << 42) - 1,
        ] {
            let i = Histogram::index(v);
            assert!(Histogram::upper(i) >= v.min(Histogram::upper(BUCKETS - 1)));
            if i > 0 && v < 1 << 41 {
                assert!(Histogram::upper(i - 1) < v, "{v}");
            }
        }
    }

    #[test]
    fn payload_round_trip() {
        let mut s = String::new();
        write_payload(&mut s, 42, 123_456_789, 64);
        assert_eq!(s.len(), 64);
        assert_eq!(hex16(&s.as_bytes()[..16]), Some(42));
        assert_eq!(hex16(&s.as_bytes()[17..33]), Some(123_456_789));
    }
}
