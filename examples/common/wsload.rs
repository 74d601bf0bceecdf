//! What the two fan-out load generators share (`fanout_load`, `cluster_load`): flags with the
//! environment as fallback, `/proc` CPU readings and the open-files limit, a latency
//! histogram, the raw Socket.IO client over WebSocket (on tokio-tungstenite, or the lean
//! [`rawws`] for receivers), the receivers that check every delivery,
//! the publisher's flow control, and the totals over the receivers.
//!
//! A broadcast's payload is `<seq:16 hex>:<t:16 hex>:` padded with `.`, where `t` is
//! nanoseconds on [`now_ns`]'s clock; the last one has `t` = [`END_MARK`] and `seq` = the
//! number published before it. Every receiver must see every sequence number once, in order.
#![allow(dead_code)]

pub use crate::bench::{now_ns, status_bytes, BoxError, Ws};
#[path = "rawws.rs"]
pub mod rawws;
use bytes::Bytes;
use futures_util::{FutureExt, SinkExt, StreamExt};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// `<seq>:<t>:` — the smallest payload.
pub const PAYLOAD_HEADER: usize = 34;
/// The default window, in deliveries: `--window` is this divided by the receivers.
pub const DELIVERIES_IN_FLIGHT: u64 = 512 * 1024;
/// The timestamp of the end-of-run broadcast.
pub const END_MARK: u64 = u64::MAX;
/// What the receivers expect after the payload.
const MSG_SUFFIX: &[u8] = br#""]"#;

// ---------------------------------------------------------------------------------------------
// Settings

/// `--name value` or `--name=value` (leading dashes optional), with `<PREFIX>_NAME` in the
/// environment as fallback; the last flag of a name wins.
pub struct Flags {
    flags: Vec<(String, String)>,
    prefix: &'static str,
}

impl Flags {
    /// Reads the command line; `switches` take no value (`--name` is `--name=1`). Prints
    /// `help` and exits on `--help`.
    pub fn parse(prefix: &'static str, help: &str, switches: &[&str]) -> Result<Flags, String> {
        let mut flags: Vec<(String, String)> = Vec::new();
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let arg = arg.trim_start_matches('-').to_owned();
            if arg == "help" || arg == "h" {
                print!("{help}");
                std::process::exit(0);
            }
            let (name, value) = match arg.split_once('=') {
                Some((n, v)) => (n.to_owned(), v.to_owned()),
                None if switches.contains(&arg.as_str()) => (arg, "1".to_owned()),
                None => {
                    let v = args.next().ok_or(format!("--{arg} needs a value"))?;
                    (arg, v)
                }
            };
            flags.push((name, value));
        }
        Ok(Flags { flags, prefix })
    }

    pub fn get(&self, name: &str) -> Option<String> {
        let flag = self.flags.iter().rev().find(|(n, _)| n == name);
        match flag {
            Some((_, v)) => Some(v.clone()),
            None => {
                let var = name.to_uppercase().replace('-', "_");
                std::env::var(format!("{}_{var}", self.prefix)).ok()
            }
        }
    }

    pub fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{name}: bad value {v:?}")),
        }
    }

    /// Seconds, fractions allowed.
    pub fn secs(&self, name: &str, default: f64) -> Result<Duration, String> {
        let s: f64 = self.num(name, default)?;
        Duration::try_from_secs_f64(s).map_err(|_| format!("--{name}: bad value {s}"))
    }

    /// A switch: set, and neither `0` nor `false`.
    pub fn on(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| v != "0" && v != "false")
    }
}

/// The settings of the load itself, the same in both generators.
#[derive(Debug, Clone)]
pub struct Load {
    pub clients: usize,
    pub duration: Duration,
    pub payload: usize,
    pub window: u64,
    pub max_lag: u64,
    pub rate: f64,
    pub threads: usize,
    pub connect_concurrency: usize,
    pub read_buffer: usize,
    pub sample: u64,
    pub drain_timeout: Duration,
}

impl Load {
    /// `--clients` must be at least `min_clients` (else the error `too_few`); `receivers` says
    /// how many deliveries one broadcast makes with that many clients, for the default window;
    /// `unit` is what is published ("events", "broadcasts"), for the error messages.
    pub fn parse(
        f: &Flags,
        min_clients: usize,
        too_few: &str,
        receivers: fn(usize) -> u64,
        unit: &str,
    ) -> Result<Load, String> {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut l = Load {
            clients: f.num("clients", 1000)?,
            duration: f.secs("duration", 10.0)?,
            payload: f.num("payload", 64)?,
            window: 0, // below: depends on the number of clients
            max_lag: f.num("max-lag", 2048)?,
            rate: f.num("rate", 0.0)?,
            threads: f.num("threads", cpus)?,
            connect_concurrency: f.num("connect-concurrency", 64)?,
            read_buffer: f.num("read-buffer", 8192)?,
            sample: f.num("sample", 1)?,
            drain_timeout: f.secs("drain-timeout", 30.0)?,
        };
        if l.clients < min_clients {
            return Err(too_few.into());
        }
        // About 512 Ki deliveries in flight: more batching, more throughput (measured on 2
        // cores), and the slowest receiver stays well within the server's queue.
        let default_window = (DELIVERIES_IN_FLIGHT / receivers(l.clients)).clamp(4, 1024);
        l.window = f.num("window", default_window)?;
        if !(l.rate >= 0.0 && l.rate.is_finite()) {
            return Err(format!(
                "--rate must be a number of {unit} per second, or 0"
            ));
        }
        if l.payload < PAYLOAD_HEADER {
            return Err(format!("--payload must be at least {PAYLOAD_HEADER}"));
        }
        if l.window == 0
            || l.max_lag == 0
            || l.sample == 0
            || l.threads == 0
            || l.connect_concurrency == 0
        {
            return Err(
                "--window, --max-lag, --sample, --threads, --connect-concurrency must be > 0"
                    .into(),
            );
        }
        Ok(l)
    }

    /// The generator's runtime: `--threads` workers.
    pub fn runtime(&self) -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.threads)
            .enable_all()
            .build()
            .expect("tokio runtime")
    }
}

/// A free port on the loopback interface.
pub fn free_port() -> Result<u16, BoxError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

// ---------------------------------------------------------------------------------------------
// /proc and limits

/// utime + stime of a process (all its threads), in clock ticks; and its parent.
pub fn stat_ticks(pid: u32) -> Option<(u64, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields from 3 on: f[0] is field 3 (state), f[1] the ppid, f[11] utime, f[12] stime.
    let ppid = f.get(1)?.parse().ok()?;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime, ppid))
}

/// utime + stime of a process, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    stat_ticks(pid).map(|(t, _)| t)
}

/// CPU ticks of a process and all its live descendants.
pub fn tree_ticks(root: u32) -> Option<u64> {
    let own = cpu_ticks(root)?;
    let mut procs = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) {
                if let Some((t, ppid)) = stat_ticks(pid) {
                    procs.push((pid, ppid, t));
                }
            }
        }
    }
    let mut total = own;
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(pid, ppid, t) in &procs {
            if ppid == p && pid != root {
                total += t;
                frontier.push(pid);
            }
        }
    }
    Some(total)
}

/// Busy time of the whole machine (all CPUs, everything but idle and iowait), in clock ticks:
/// what is left after the processes measured is someone else's load on the benchmark.
pub fn machine_busy_ticks() -> Option<u64> {
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

pub fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// The seconds between two tick readings.
pub fn ticks_s(a: Option<u64>, b: Option<u64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / clock_ticks_per_sec() as f64),
        _ => None,
    }
}

/// Raises the soft limit on open files as far as the hard limit allows (children inherit
/// it); returns the limit.
#[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
pub fn raise_nofile(want: u64) -> u64 {
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

pub struct Histogram {
    counts: Box<[u32]>,
    pub total: u64,
    pub max: u64,
    sum: u128,
}

impl Histogram {
    pub fn new() -> Self {
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
    pub fn record(&mut self, v: u64) {
        let c = &mut self.counts[Self::index(v)];
        *c = c.saturating_add(1);
        self.total += 1;
        self.max = self.max.max(v);
        self.sum += u128::from(v);
    }

    pub fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(o.counts.iter()) {
            *a = a.saturating_add(*b);
        }
        self.total += o.total;
        self.max = self.max.max(o.max);
        self.sum += o.sum;
    }

    pub fn quantile(&self, q: f64) -> u64 {
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

    pub fn mean(&self) -> u64 {
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
pub struct Progress {
    pub next: AtomicU64,
    pub dead: AtomicBool,
}

/// What the clients, the publisher and the monitor share.
pub struct Shared {
    /// One slot per client; those before `first` are not receivers.
    pub progress: Box<[Progress]>,
    first: usize,
    /// The receivers whose progress bounds the publisher's window.
    designated: Vec<usize>,
    /// The publisher sleeps until every designated receiver reaches this sequence number.
    wake_at: AtomicU64,
    wake: Notify,
    /// Broadcasts sent so far.
    pub published: AtomicU64,
    /// The slowest live receiver's next expected broadcast, as the monitor last saw it.
    slowest: AtomicU64,
    /// Clients to connect, and how many did or could not.
    clients: usize,
    connected: AtomicUsize,
    failed: AtomicUsize,
    all_connected: Notify,
    first_error: Mutex<Option<String>>,
    /// Handshakes in flight.
    gate: Semaphore,
    /// Engine.IO pings answered.
    pub pongs: AtomicU64,
    /// Whether only deliveries received in `[t_measure, t_stop)` are measured (else all).
    windowed: bool,
    /// Broadcasts received at or after this time (ns) are measured; u64::MAX until publishing.
    pub t_measure: AtomicU64,
    /// Broadcasts received before this time are measured.
    pub t_stop: AtomicU64,
}

impl Shared {
    /// `clients` progress slots, receivers from `first` on; `windowed`: see [`Shared::t_measure`].
    pub fn new(
        clients: usize,
        first: usize,
        designated: Vec<usize>,
        connect_concurrency: usize,
        windowed: bool,
    ) -> Shared {
        Shared {
            progress: (0..clients).map(|_| Progress::default()).collect(),
            first,
            designated,
            wake_at: AtomicU64::new(u64::MAX),
            wake: Notify::new(),
            published: AtomicU64::new(0),
            slowest: AtomicU64::new(0),
            clients,
            connected: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            all_connected: Notify::new(),
            first_error: Mutex::new(None),
            gate: Semaphore::new(connect_concurrency),
            pongs: AtomicU64::new(0),
            windowed,
            t_measure: AtomicU64::new(if windowed { u64::MAX } else { 0 }),
            t_stop: AtomicU64::new(u64::MAX),
        }
    }

    fn client_done(&self, ok: bool) {
        let (mine, other) = if ok {
            (&self.connected, &self.failed)
        } else {
            (&self.failed, &self.connected)
        };
        if mine.fetch_add(1, Ordering::SeqCst) + 1 + other.load(Ordering::SeqCst) == self.clients {
            self.all_connected.notify_one();
        }
    }

    /// Connects one client (`--connect-concurrency` handshakes at a time) and counts it in;
    /// keeps the first failure, with `what` in front.
    pub async fn connect_client<C: Conn>(
        &self,
        addr: &str,
        read_buffer: usize,
        name: Option<&str>,
        room: Option<&str>,
        what: &str,
    ) -> Option<C> {
        let permit = self.gate.acquire().await.expect("semaphore");
        match connect_retrying(addr, read_buffer, name, room).await {
            Ok(ws) => {
                drop(permit);
                self.client_done(true);
                Some(ws)
            }
            Err(e) => {
                self.first_error
                    .lock()
                    .unwrap()
                    .get_or_insert_with(|| format!("{what}{e}"));
                self.client_done(false);
                None
            }
        }
    }

    /// Waits until every client has connected or failed; fails if any failed.
    pub async fn all_connected(&self) -> Result<(), BoxError> {
        // notify_one leaves a permit when nobody waits yet.
        self.all_connected.notified().await;
        let failed = self.failed.load(Ordering::SeqCst);
        if failed > 0 {
            let e = self.first_error.lock().unwrap().clone().unwrap_or_default();
            return Err(format!(
                "{failed} of {} clients could not connect; first error: {e}",
                self.clients
            )
            .into());
        }
        Ok(())
    }

    /// Broadcasts sent before the end-of-run one: what the publisher reports (0 when it
    /// failed), or what it had sent.
    pub fn published(&self, reported: u64) -> u64 {
        reported.max(self.published.load(Ordering::SeqCst))
    }

    /// How far every designated receiver has got.
    fn designated_next(&self) -> u64 {
        self.designated
            .iter()
            .map(|&d| self.progress[d].next.load(Ordering::SeqCst))
            .min()
            .unwrap_or(0)
    }

    fn designated_dead(&self) -> bool {
        self.designated
            .iter()
            .any(|&d| self.progress[d].dead.load(Ordering::SeqCst))
    }

    fn wake_publisher(&self) {
        self.wake_at.store(u64::MAX, Ordering::SeqCst);
        self.wake.notify_one();
    }
}

/// Watches the slowest live receiver while the run goes on: the publisher's guard, and a
/// figure for the report. A scan touches one cache line per receiver: not too often.
pub struct Monitor {
    stop: Arc<AtomicBool>,
    task: JoinHandle<u64>,
}

impl Monitor {
    pub fn spawn(shared: Arc<Shared>) -> Monitor {
        let stop = Arc::new(AtomicBool::new(false));
        let every = Duration::from_micros((shared.progress.len() as u64 * 4).clamp(5_000, 50_000));
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                let mut max_lag = 0u64;
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let published = shared.published.load(Ordering::Relaxed);
                    let slowest = shared.progress[shared.first..]
                        .iter()
                        .filter(|p| !p.dead.load(Ordering::Relaxed))
                        .map(|p| p.next.load(Ordering::Relaxed))
                        .min();
                    let Some(slowest) = slowest else { break };
                    shared.slowest.store(slowest, Ordering::Relaxed);
                    max_lag = max_lag.max(published.saturating_sub(slowest));
                }
                max_lag
            }
        });
        Monitor { stop, task }
    }

    /// Stops it: the most broadcasts the slowest receiver was behind.
    pub async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or(0)
    }
}

// ---------------------------------------------------------------------------------------------
// Wire

/// A client's WebSocket as the Socket.IO handshake and the receivers use it: tokio-tungstenite
/// ([`Ws`]), or the lean [`rawws::RawWs`].
pub trait Conn: Send + Sized + 'static {
    /// Opens a WebSocket to `GET /socket.io/?EIO=4&transport=websocket` on `addr`.
    fn open(
        addr: &str,
        read_buffer: usize,
    ) -> impl std::future::Future<Output = Result<Self, BoxError>> + Send;
    /// The next text message; `Err` once the connection ended, with why.
    fn recv_text(&mut self) -> impl std::future::Future<Output = Result<Bytes, String>> + Send;
    fn send_text(
        &mut self,
        text: &str,
    ) -> impl std::future::Future<Output = Result<(), BoxError>> + Send;
    /// Closes our side.
    fn close_conn(self) -> impl std::future::Future<Output = ()> + Send;
}

impl Conn for Ws {
    async fn open(addr: &str, read_buffer: usize) -> Result<Self, BoxError> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let config = WebSocketConfig::default().read_buffer_size(read_buffer);
        let request = url.into_client_request()?;
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(request, tcp, Some(config)).await?;
        Ok(ws)
    }

    async fn recv_text(&mut self) -> Result<Bytes, String> {
        loop {
            match self.next().await {
                Some(Ok(Message::Text(t))) => return Ok(Bytes::from(t)),
                Some(Ok(Message::Close(c))) => return Err(format!("close frame {c:?}")),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("error: {e}")),
                None => return Err("closed".into()),
            }
        }
    }

    async fn send_text(&mut self, text: &str) -> Result<(), BoxError> {
        Ok(self.send(Message::text(text)).await?)
    }

    async fn close_conn(mut self) {
        let _ = self.close(None).await;
    }
}

impl Conn for rawws::RawWs {
    async fn open(addr: &str, read_buffer: usize) -> Result<Self, BoxError> {
        rawws::RawWs::connect(addr, read_buffer).await
    }

    async fn recv_text(&mut self) -> Result<Bytes, String> {
        match self.recv().await {
            rawws::Incoming::Text(t) => Ok(t),
            rawws::Incoming::Ended(why) => Err(why),
        }
    }

    async fn send_text(&mut self, text: &str) -> Result<(), BoxError> {
        Ok(rawws::RawWs::send_text(self, text).await?)
    }

    async fn close_conn(self) {
        self.close().await;
    }
}

/// Opens a Socket.IO session on `/` (with auth `{"name": name}` if given), answering pings on
/// the way; joins `room` with `420["join","<room>"]` and waits for its ack if asked.
pub async fn connect<C: Conn>(
    addr: &str,
    read_buffer: usize,
    name: Option<&str>,
    room: Option<&str>,
) -> Result<C, BoxError> {
    let mut ws = C::open(addr, read_buffer).await?;
    socketio_open(&mut ws, name, room).await?;
    Ok(ws)
}

/// The Socket.IO side of [`connect`], on an open WebSocket.
async fn socketio_open<C: Conn>(
    ws: &mut C,
    name: Option<&str>,
    room: Option<&str>,
) -> Result<(), BoxError> {
    let mut state = 0; // 0: Engine.IO open expected, 1: CONNECT ack, 2: join ack
    loop {
        let t = ws
            .recv_text()
            .await
            .map_err(|e| format!("during the handshake: {e}"))?;
        let t = std::str::from_utf8(&t).map_err(|_| "a text frame that is not UTF-8")?;
        if t == "2" {
            ws.send_text("3").await?;
            continue;
        }
        match (state, room) {
            (0, _) if t.starts_with("0{") => {
                let open = match name {
                    Some(name) => format!(r#"40{{"name":"{name}"}}"#),
                    None => "40".to_owned(),
                };
                ws.send_text(&open).await?;
                state = 1;
            }
            (1, None) if t.starts_with("40{\"sid\":") => return Ok(()),
            (1, Some(room)) if t.starts_with("40{\"sid\":") => {
                ws.send_text(&format!(r#"420["join","{room}"]"#)).await?;
                state = 2;
            }
            (2, Some(room)) if t.starts_with("430[") => {
                if t.contains(&format!("\"{room}\"")) {
                    return Ok(());
                }
                return Err(format!("join acked without the room: {t:?}").into());
            }
            (0, _) => return Err(format!("expected the open packet, got {t:?}").into()),
            (1, _) => return Err(format!("expected 40{{\"sid\":...}}, got {t:?}").into()),
            _ => return Err(format!("expected the join ack, got {t:?}").into()),
        }
    }
}

/// [`connect`], retried with backoff for a moment (a listen backlog can overflow while
/// hundreds of clients connect at once).
pub async fn connect_retrying<C: Conn>(
    addr: &str,
    read_buffer: usize,
    name: Option<&str>,
    room: Option<&str>,
) -> Result<C, BoxError> {
    let mut delay = Duration::from_millis(50);
    for _ in 0..5 {
        match connect(addr, read_buffer, name, room).await {
            Ok(ws) => return Ok(ws),
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    connect(addr, read_buffer, name, room).await
}

pub fn hex16(b: &[u8]) -> Option<u64> {
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
pub fn write_payload(buf: &mut String, seq: u64, t: u64, len: usize) {
    use std::fmt::Write;
    let _ = write!(buf, "{seq:016x}:{t:016x}:");
    for _ in PAYLOAD_HEADER..len {
        buf.push('.');
    }
}

// ---------------------------------------------------------------------------------------------
// Receiver

/// What one receiver saw.
pub struct RxReport {
    /// The next sequence number it expected when it stopped.
    pub next: u64,
    /// Sequence numbers skipped (then never seen).
    pub gaps: u64,
    /// Sequence numbers seen again, or out of order.
    pub dup: u64,
    pub deliveries: u64,
    /// Deliveries received in the measured window.
    pub measured: u64,
    /// Whether it got the end-of-run broadcast.
    pub ended: bool,
    /// When it got the end-of-run broadcast (ns on the shared clock).
    pub ended_at: u64,
    /// When the connection ended before the end of the run, and why.
    pub lost_connection: Option<String>,
    pub unexpected: u64,
    pub first_unexpected: Option<String>,
    pub hist: Histogram,
}

/// Receives `<prefix><payload>"]` frames of `payload` bytes until the end-of-run broadcast,
/// checking the sequence numbers; samples the latency of one delivery in `sample`.
pub async fn receiver<C: Conn>(
    mut ws: C,
    me: usize,
    shared: Arc<Shared>,
    prefix: &[u8],
    payload: usize,
    sample: u64,
) -> RxReport {
    let expected_len = prefix.len() + payload + MSG_SUFFIX.len();
    let designated = shared.designated.contains(&me);
    let progress = &shared.progress[me];
    let phase = me as u64 % sample;
    let mut r = RxReport {
        next: 0,
        gaps: 0,
        dup: 0,
        deliveries: 0,
        measured: 0,
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
        let next = match ws.recv_text().now_or_never() {
            Some(m) => {
                unchecked += 1;
                if unchecked >= REFRESH {
                    now = now_ns();
                    unchecked = 0;
                }
                m
            }
            None => {
                let m = ws.recv_text().await;
                now = now_ns();
                unchecked = 0;
                m
            }
        };
        let msg = match next {
            Ok(m) => m,
            Err(why) => {
                r.lost_connection = Some(why);
                break;
            }
        };
        let t = &msg[..];
        // With connection state recovery on, an event carries its offset as one more string
        // argument: `…","<offset>"]`.
        let end = prefix.len() + payload;
        let offset_tail = t.len() > expected_len
            && t.get(end..end + 3) == Some(&br#"",""#[..])
            && t.ends_with(br#""]"#);
        if (t.len() == expected_len || offset_tail) && t.starts_with(prefix) {
            let p = &t[prefix.len()..];
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
            let sampled = sample == 1 || seq % sample == phase;
            if ts > now && (sampled || shared.windowed) {
                // Sent after the clock was last read: read it again.
                now = now_ns();
                unchecked = 0;
            }
            // Measured: received within the window (whenever it was sent).
            if !shared.windowed
                || (now >= shared.t_measure.load(Ordering::Relaxed)
                    && now < shared.t_stop.load(Ordering::Relaxed))
            {
                r.measured += 1;
                if sampled {
                    r.hist.record(now.saturating_sub(ts));
                }
            }
            if designated {
                progress.next.store(r.next, Ordering::SeqCst);
                if shared.designated_next() >= shared.wake_at.load(Ordering::SeqCst) {
                    shared.wake_publisher();
                }
            } else {
                progress.next.store(r.next, Ordering::Relaxed);
            }
        } else if t == b"2" {
            shared.pongs.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = ws.send_text("3").await {
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
        shared.wake_publisher();
    }
    // Close our side once the run is over; the publisher may still be running otherwise.
    ws.close_conn().await;
    r
}

/// Waits for the receivers (by progress slot) for `drain_timeout` at most (2 s after a failed
/// publisher): their reports, and for those that did not finish, what they had received in
/// order when they were dropped.
pub async fn collect(
    receivers: impl IntoIterator<Item = (usize, JoinHandle<Option<RxReport>>)>,
    shared: &Shared,
    drain_timeout: Duration,
    publisher_failed: bool,
) -> (Vec<(usize, RxReport)>, Vec<(usize, u64)>) {
    // Without the end-of-run broadcast, a receiver only stops when its time is up.
    let drain = if publisher_failed {
        drain_timeout.min(Duration::from_secs(2))
    } else {
        drain_timeout
    };
    let drain_deadline = tokio::time::Instant::now() + drain;
    let mut reports = Vec::new();
    let mut stalled = Vec::new();
    for (i, task) in receivers {
        let abort = task.abort_handle();
        match tokio::time::timeout_at(drain_deadline, task).await {
            Ok(Ok(Some(r))) => reports.push((i, r)),
            Ok(_) => stalled.push((i, shared.progress[i].next.load(Ordering::SeqCst))),
            Err(_) => {
                abort.abort();
                stalled.push((i, shared.progress[i].next.load(Ordering::SeqCst)));
            }
        }
    }
    (reports, stalled)
}

/// The receivers' reports added up.
pub struct Totals {
    pub hist: Histogram,
    pub deliveries: u64,
    pub measured: u64,
    pub lost: u64,
    pub dup: u64,
    pub unexpected: u64,
    pub first_unexpected: Option<String>,
    /// Receivers whose connection ended early: slot, next expected, why.
    pub disconnected: Vec<(usize, u64, String)>,
    /// Receivers that never reported.
    pub stalled: usize,
    /// The last end-of-run broadcast received (ns; when collected, for a receiver without).
    pub t_last: u64,
}

impl Totals {
    pub fn new(t_last: u64) -> Totals {
        Totals {
            hist: Histogram::new(),
            deliveries: 0,
            measured: 0,
            lost: 0,
            dup: 0,
            unexpected: 0,
            first_unexpected: None,
            disconnected: Vec::new(),
            stalled: 0,
            t_last,
        }
    }

    /// Adds the report of the receiver in `slot`; returns what it lost of `published`.
    pub fn add(&mut self, slot: usize, r: &RxReport, published: u64, t_collected: u64) -> u64 {
        let lost = r.gaps + published.saturating_sub(r.next);
        self.deliveries += r.deliveries;
        self.measured += r.measured;
        self.lost += lost;
        self.dup += r.dup;
        self.unexpected += r.unexpected;
        if self.first_unexpected.is_none() {
            self.first_unexpected = r.first_unexpected.clone();
        }
        if let Some(why) = &r.lost_connection {
            self.disconnected.push((slot, r.next, why.clone()));
        }
        self.t_last = self
            .t_last
            .max(if r.ended { r.ended_at } else { t_collected });
        self.hist.merge(&r.hist);
        lost
    }

    /// Adds a receiver that never reported, `next` the next it expected (gaps unknown);
    /// returns what it lost.
    pub fn add_stalled(&mut self, next: u64, published: u64) -> u64 {
        self.stalled += 1;
        self.deliveries += next;
        self.lost += published.saturating_sub(next);
        published.saturating_sub(next)
    }

    /// The `unexpected frames` line, when there were any.
    pub fn print_unexpected(&self) {
        if self.unexpected > 0 {
            println!(
                "  unexpected frames  {} (first: {:?})",
                self.unexpected,
                self.first_unexpected.clone().unwrap_or_default()
            );
        }
    }
}

/// `, at most <rate><unit>/s` when `--rate` is set.
pub fn at_most(rate: f64, unit: &str) -> String {
    if rate > 0.0 {
        format!(", at most {rate}{unit}/s")
    } else {
        String::new()
    }
}

/// A JSON number with 4 decimals, or `null`.
pub fn json_f(v: Option<f64>) -> String {
    v.map_or("null".to_owned(), |v| format!("{v:.4}"))
}

/// A JSON integer, or `null`.
pub fn json_u(v: Option<u64>) -> String {
    v.map_or("null".to_owned(), |v| v.to_string())
}

// ---------------------------------------------------------------------------------------------
// Publisher

/// What a publisher sends, and what else it hears.
pub trait Broadcasts {
    /// Whether to go on publishing.
    fn running(&self) -> bool;
    /// Writes broadcast `seq` stamped `t` ([`END_MARK`] for the end of the run) into `buf`;
    /// `false` (never for the end of the run): the run is over, nothing written.
    fn write(&mut self, buf: &mut String, seq: u64, t: u64) -> bool;
    /// A text frame from the server that is not a ping.
    fn text(&mut self, _t: &str) {}
}

/// Times the publisher waited.
#[derive(Default)]
pub struct Waits {
    /// The window was full.
    pub window: u64,
    /// The slowest receiver was `--max-lag` behind.
    pub lag: u64,
}

/// Handles one frame of the publisher's connection: a ping, another text for `b`, or the end
/// of it (an error).
pub async fn publisher_input(
    m: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ws: &mut Ws,
    shared: &Shared,
    b: &mut impl Broadcasts,
) -> Result<(), BoxError> {
    match m {
        Some(Ok(Message::Text(t))) => {
            if t.as_str() == "2" {
                shared.pongs.fetch_add(1, Ordering::Relaxed);
                ws.send(Message::text("3")).await?;
            } else {
                b.text(t.as_str());
            }
            Ok(())
        }
        Some(Ok(Message::Close(c))) => Err(format!("close frame {c:?}").into()),
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(e.into()),
        None => Err("closed".into()),
    }
}

/// Handles what already arrived on the publisher's connection, without waiting.
async fn drain_input(
    ws: &mut Ws,
    shared: &Shared,
    b: &mut impl Broadcasts,
) -> Result<(), BoxError> {
    while let Some(m) = ws.next().now_or_never() {
        publisher_input(m, ws, shared, b).await?;
    }
    Ok(())
}

/// Publishes while `b.running()`, then the end-of-run broadcast; returns how many were sent
/// before it.
///
/// At most `--window` broadcasts are in flight: sent, not yet received by every designated
/// receiver. As a guard, the publisher also never runs more than `--max-lag` ahead of the
/// slowest receiver the monitor saw, so that no connection's queue in a server can overflow
/// and be closed as a slow consumer. With `--rate`, broadcast `seq` is due `seq / rate` s after
/// `start`. No timer runs past `deadline`.
pub async fn publish(
    ws: &mut Ws,
    shared: &Shared,
    l: &Load,
    start: tokio::time::Instant,
    deadline: tokio::time::Instant,
    b: &mut impl Broadcasts,
    waits: &mut Waits,
) -> Result<u64, BoxError> {
    let window = l.window;
    // Wait for a quarter of the window to free up, then fill it with one write.
    let refill = (window / 4).max(1);
    let mut seq = 0u64;
    let mut text = String::with_capacity(64 + l.payload);
    let due = |seq: u64| start + Duration::from_secs_f64(seq as f64 / l.rate);
    'run: while b.running() {
        if shared.designated_dead() {
            return Err(if shared.designated.len() == 1 {
                "the designated receiver lost its connection".into()
            } else {
                "a designated receiver lost its connection".into()
            });
        }
        let acked = shared.designated_next();
        let room = window - (seq - acked.min(seq)).min(window);
        let guard = (shared.slowest.load(Ordering::Relaxed) + l.max_lag).saturating_sub(seq);
        let paced = if l.rate > 0.0 {
            ((start.elapsed().as_secs_f64() * l.rate) as u64 + 1).saturating_sub(seq)
        } else {
            u64::MAX
        };
        if guard == 0 || paced == 0 {
            // The slowest receiver is far behind, let it catch up; or the next one is not due.
            let until = if guard == 0 {
                waits.lag += 1;
                tokio::time::Instant::now() + Duration::from_millis(1)
            } else {
                due(seq)
            };
            let pause = tokio::time::sleep_until(until.min(deadline));
            tokio::pin!(pause);
            loop {
                tokio::select! {
                    () = &mut pause => continue 'run,
                    m = ws.next() => publisher_input(m, ws, shared, b).await?,
                }
            }
        }
        let limit = guard.min(paced);
        if room >= refill.min(limit) {
            for _ in 0..room.min(limit) {
                text.clear();
                if !b.write(&mut text, seq, now_ns()) {
                    break;
                }
                ws.feed(Message::text(text.as_str())).await?;
                seq += 1;
                shared.published.store(seq, Ordering::Relaxed);
            }
            ws.flush().await?;
            drain_input(ws, shared, b).await?;
            continue;
        }
        // Sleep until the designated receivers have made room for `refill` more.
        waits.window += 1;
        let target = seq + refill - window;
        let woken = shared.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        shared.wake_at.store(target, Ordering::SeqCst);
        if shared.designated_next() >= target || shared.designated_dead() {
            shared.wake_at.store(u64::MAX, Ordering::SeqCst);
            continue;
        }
        loop {
            tokio::select! {
                () = &mut woken => break,
                m = ws.next() => publisher_input(m, ws, shared, b).await?,
                () = tokio::time::sleep_until(deadline) => break 'run,
            }
        }
    }
    text.clear();
    b.write(&mut text, seq, END_MARK);
    ws.send(Message::text(text.as_str())).await?;
    Ok(seq)
}

/// Keeps answering pings until the receivers are done; the runtime drops the task then.
pub fn keep_answering_pings(mut ws: Ws) {
    tokio::spawn(async move {
        while let Some(Ok(m)) = ws.next().await {
            if matches!(&m, Message::Text(t) if t.as_str() == "2")
                && ws.send(Message::text("3")).await.is_err()
            {
                break;
            }
        }
    });
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
