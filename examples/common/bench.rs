//! What the measurement programs share (docs/BENCHMARKS.md): settings from flags and the
//! environment, the server as a child process of its own with a control line on stdin,
//! `/proc` memory readings, and a raw Socket.IO v5 client over WebSocket.
//!
//! Each program is one binary with two roles: run plainly it is the load generator, and it
//! starts itself again with `--server` as the server. The server's memory is then its own,
//! not mixed with the clients', and `/proc/<pid>/status` of the child tells it exactly.
#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use roomcast::io::tokio::SocketIo;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<TcpStream>;
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

// ---------------------------------------------------------------------------------------------
// Settings

/// Flags (`--name value` or `--name=value`) with the environment as fallback
/// (`<PREFIX>_NAME`), and `--quick` to pick each setting's short default.
pub struct Params {
    flags: Vec<(String, String)>,
    prefix: &'static str,
    /// Whether `--quick` (or `<PREFIX>_QUICK=1`) asked for the short run.
    pub quick: bool,
    /// `--server`: this process is the child that serves.
    pub server: bool,
}

impl Params {
    /// Reads the command line; prints `help` and exits on `--help`.
    pub fn parse(prefix: &'static str, help: &str) -> Params {
        let mut flags = Vec::new();
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let Some(arg) = arg.strip_prefix("--") else {
                eprintln!("unexpected argument {arg:?}\n\n{help}");
                std::process::exit(2);
            };
            match arg {
                "help" => {
                    print!("{help}");
                    std::process::exit(0);
                }
                "quick" | "server" => flags.push((arg.to_owned(), "1".to_owned())),
                _ => match arg.split_once('=') {
                    Some((n, v)) => flags.push((n.to_owned(), v.to_owned())),
                    None => match args.next() {
                        Some(v) => flags.push((arg.to_owned(), v)),
                        None => {
                            eprintln!("--{arg} needs a value\n\n{help}");
                            std::process::exit(2);
                        }
                    },
                },
            }
        }
        let mut p = Params {
            flags,
            prefix,
            quick: false,
            server: false,
        };
        p.quick = p.raw("quick").is_some_and(|v| v != "0" && v != "false");
        p.server = p.flags.iter().any(|(n, _)| n == "server");
        p
    }

    fn raw(&self, name: &str) -> Option<String> {
        self.flags
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .or_else(|| {
                let env = format!("{}_{}", self.prefix, name.to_uppercase().replace('-', "_"));
                std::env::var(env).ok()
            })
    }

    /// A setting: its flag, else its variable, else `full` (or `quick` with `--quick`).
    pub fn get<T: std::str::FromStr>(&self, name: &str, full: T, quick: T) -> T {
        match self.raw(name) {
            None => {
                if self.quick {
                    quick
                } else {
                    full
                }
            }
            Some(v) => v.parse().unwrap_or_else(|_| {
                eprintln!("--{name}: bad value {v:?}");
                std::process::exit(2);
            }),
        }
    }

    /// A duration in seconds (fractions allowed).
    pub fn secs(&self, name: &str, full: f64, quick: f64) -> Duration {
        let s: f64 = self.get(name, full, quick);
        Duration::try_from_secs_f64(s).unwrap_or_else(|_| {
            eprintln!("--{name}: bad value {s}");
            std::process::exit(2);
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Clock and /proc

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds on the one monotonic clock every timestamp of a run is taken from.
pub fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// A `kB` line of `/proc/<pid>/status` (`VmRSS`, `VmHWM`...), in bytes.
pub fn status_bytes(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(key).is_some_and(|r| r.starts_with(':')))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub fn rss(pid: u32) -> Option<u64> {
    status_bytes(pid, "VmRSS")
}

/// The peak resident set since the process started.
pub fn hwm(pid: u32) -> Option<u64> {
    status_bytes(pid, "VmHWM")
}

pub fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// Samples a process's `VmRSS` at a fixed interval on a thread of its own, so that a busy
/// runtime cannot delay the readings; optionally raises `over_cap` past a bound.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<(f64, u64)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    /// Starts sampling; times are seconds since `origin`.
    pub fn start(
        pid: u32,
        every: Duration,
        origin: Instant,
        cap: Option<(u64, Arc<AtomicBool>)>,
    ) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let samples: Arc<Mutex<Vec<(f64, u64)>>> = Arc::default();
        let thread = {
            let (stop, samples) = (stop.clone(), samples.clone());
            std::thread::spawn(move || {
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let Some(r) = rss(pid) else { break };
                    let t = origin.elapsed().as_secs_f64();
                    samples.lock().unwrap().push((t, r));
                    if let Some((limit, flag)) = &cap {
                        if r > *limit {
                            flag.store(true, Ordering::SeqCst);
                        }
                    }
                    next += every;
                    // Short naps, so that `stop` is honoured quickly.
                    while Instant::now() < next && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(
                            next.saturating_duration_since(Instant::now())
                                .min(Duration::from_millis(50)),
                        );
                    }
                }
            })
        };
        RssSampler {
            stop,
            samples,
            thread: Some(thread),
        }
    }

    /// The samples so far.
    pub fn snapshot(&self) -> Vec<(f64, u64)> {
        self.samples.lock().unwrap().clone()
    }

    pub fn finish(mut self) -> Vec<(f64, u64)> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.snapshot()
    }
}

/// `[[t, MiB], ...]` for the JSON line, and a readable curve for the report.
pub fn curve_json(samples: &[(f64, u64)]) -> Value {
    Value::Array(
        samples
            .iter()
            .map(|&(t, b)| json!([(t * 10.0).round() / 10.0, (mib(b) * 10.0).round() / 10.0]))
            .collect(),
    )
}

/// Prints at most 48 points of the curve (every one of them is in the JSON line).
pub fn print_curve(samples: &[(f64, u64)]) {
    let step = samples.len().div_ceil(48).max(1);
    let mut line = String::new();
    let shown = samples
        .iter()
        .enumerate()
        .filter(|(i, _)| i % step == 0 || *i + 1 == samples.len());
    for (i, &(t, b)) in shown.map(|(_, s)| s).enumerate() {
        if i % 8 == 0 {
            if !line.is_empty() {
                println!("{line}");
            }
            line = "   ".to_owned();
        }
        line.push_str(&format!(" {t:>5.1}s:{:>6.1}", mib(b)));
    }
    if !line.is_empty() {
        println!("{line}");
    }
}

// ---------------------------------------------------------------------------------------------
// Percentiles

/// Exact quantiles of a sample set (sorted in place): runs are small enough to keep them all.
pub struct Quantiles(Vec<u64>);

impl Quantiles {
    pub fn new(mut v: Vec<u64>) -> Quantiles {
        v.sort_unstable();
        Quantiles(v)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn q(&self, q: f64) -> u64 {
        if self.0.is_empty() {
            return 0;
        }
        let rank = ((q * self.0.len() as f64).ceil() as usize).clamp(1, self.0.len());
        self.0[rank - 1]
    }

    pub fn max(&self) -> u64 {
        self.0.last().copied().unwrap_or(0)
    }
}

pub fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

// ---------------------------------------------------------------------------------------------
// The server process

/// The server side, started as a child of this process. Its stdout carries `LISTENING <port>`
/// once, then one `STATS <json>` line per `stats` line written to its stdin. Dropping it closes
/// stdin, which ends the child; it is killed if it has not ended shortly after.
pub struct ServerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    pub addr: String,
}

impl ServerProcess {
    /// Starts this binary again with `--server` and `args`; waits until it listens.
    pub fn spawn(args: &[String]) -> Result<ServerProcess, BoxError> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(&exe)
            .arg("--server")
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting {} --server: {e}", exe.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The child's log (tracing writes to stdout) is passed on, not swallowed.
                if !line.starts_with("LISTENING ") && !line.starts_with("STATS ") {
                    eprintln!("[server] {line}");
                    continue;
                }
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let port = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(10))
                .map_err(|_| "the server did not say where it listens")?;
            if let Some(p) = line.strip_prefix("LISTENING ") {
                break p.trim().to_owned();
            }
        };
        let stdin = child.stdin.take();
        Ok(ServerProcess {
            child,
            stdin,
            lines,
            addr: format!("127.0.0.1:{port}"),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks the server for its counters (blocking, at most `timeout`).
    pub fn stats(&mut self, timeout: Duration) -> Result<Value, BoxError> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        writeln!(stdin, "stats")?;
        stdin.flush()?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .map_err(|_| format!("no stats within {timeout:?}"))?;
            if let Some(j) = line.strip_prefix("STATS ") {
                return Ok(serde_json::from_str(j)?);
            }
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stdin = None;
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(2) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The core's timer entries and pending waits ([`Server::pending_work`](roomcast::Server::pending_work)):
/// zero once every connection is gone and its stale deadlines have run out or been compacted.
fn pending_timers<D>(server: &roomcast::Server<D>) -> Option<usize> {
    Some(server.pending_work())
}

/// The core's counts, asked through the application API: sockets, connections, rooms of `/`
/// (own-id rooms are not listed by the core), the next timer deadline.
pub async fn core_counts<D: Send + Sync + Clone + Default + 'static>(io: &SocketIo<D>) -> Value {
    io.query(|ctx| {
        let s = &ctx.server;
        let rooms = s.namespace("/").map(|n| s.rooms(n)).unwrap_or_default();
        let next_timer = s.poll_timeout().map(|t| {
            t.saturating_duration_since(Instant::now()).as_millis() as u64
        });
        json!({
            "sockets": s.socket_count(),
            "connections": s.connection_count(),
            "rooms": rooms.len(),
            "room_sample": rooms.iter().take(5).map(|(n, c)| json!([n.as_str(), c])).collect::<Vec<_>>(),
            "next_timer_in_ms": next_timer,
            "pending_timers": pending_timers(s),
        })
    })
    .await
    .unwrap_or(Value::Null)
}

/// The child's side: serves `io` on a free port of 127.0.0.1 and answers `stats` lines on
/// stdin with `extra()` (counters read without the driver, so they answer even when it is
/// backed up) merged with the core's counts (asked through the driver, at most 5 s).
/// Returns when stdin closes (the parent is done or gone).
pub async fn serve_child<D, F>(io: SocketIo<D>, extra: F) -> std::io::Result<()>
where
    D: Send + Sync + Clone + Default + 'static,
    F: Fn() -> Value + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("LISTENING {}", listener.local_addr()?.port());
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let rt = tokio::runtime::Handle::current();
    let control = io.clone();
    // Blocking stdin on a thread of its own: the runtime's `io-std` is not needed for one line.
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if line.trim() == "stats" {
                let mut v = extra();
                let counts = rt.block_on(async {
                    tokio::time::timeout(Duration::from_secs(5), core_counts(&control))
                        .await
                        .unwrap_or_else(|_| json!({"error": "the driver did not answer in 5 s"}))
                });
                if let (Value::Object(a), Value::Object(b)) = (&mut v, counts) {
                    a.extend(b);
                }
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "STATS {v}");
                let _ = out.flush();
            }
        }
        let _ = done_tx.send(());
    });
    io.serve(listener, async {
        let _ = done_rx.await;
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// The client

/// Opens a WebSocket to the Engine.IO path and joins `/`; answers pings met on the way.
pub async fn connect(addr: &str) -> Result<Ws, BoxError> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::client_async(url.into_client_request()?, tcp).await?;
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

/// [`connect`], retried with backoff for a moment (a listen backlog can overflow while
/// hundreds of clients connect at once).
pub async fn connect_retrying(addr: &str) -> Result<Ws, BoxError> {
    let mut delay = Duration::from_millis(50);
    for _ in 0..5 {
        match connect(addr).await {
            Ok(ws) => return Ok(ws),
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    connect(addr).await
}

/// The next text frame that is not a ping (pings are answered).
pub async fn next_text(ws: &mut Ws) -> Result<String, BoxError> {
    next_text_noting_pings(ws, &mut Pings::default()).await
}

/// Pings a client answered, and when it answered the last one (ns on the one clock).
#[derive(Default, Clone, Copy)]
pub struct Pings {
    pub answered: u64,
    pub last_at: Option<u64>,
}

/// [`next_text`], noting the pings answered on the way.
pub async fn next_text_noting_pings(ws: &mut Ws, pings: &mut Pings) -> Result<String, BoxError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                if t.as_str() == "2" {
                    ws.send(Message::text("3")).await?;
                    pings.answered += 1;
                    pings.last_at = Some(now_ns());
                } else {
                    return Ok(t.as_str().to_owned());
                }
            }
            Some(Ok(Message::Close(c))) => return Err(format!("close frame {c:?}").into()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => return Err("closed".into()),
        }
    }
}

/// Sends `42<id>["join","<room>"]` and waits for its ack: the room is joined once it comes
/// (the server acks after the join, on the same ordered path).
pub async fn join_with_ack(ws: &mut Ws, room: &str, id: u64) -> Result<(), BoxError> {
    ws.send(Message::text(format!("42{id}[\"join\",{}]", json!(room))))
        .await?;
    let want = format!("43{id}[");
    loop {
        let t = next_text(ws).await?;
        if t.starts_with(&want) {
            return Ok(());
        }
    }
}
