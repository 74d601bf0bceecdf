//! The cluster fan-out benchmark (issue 8, docs/BENCHMARKS.md "Cluster fan-out"): one room
//! spread over two nodes of a Socket.IO cluster on Redis, 1,000 clients on each node, one
//! publisher on node 1; deliveries/s, latency, loss, and where the CPU goes (both nodes,
//! Redis, the generator), for a pair of roomcast nodes and a pair of Node nodes on the same
//! load generator, in one run.
//!
//! ```sh
//! cargo build --release --features redis --example cluster --example cluster_load
//! npm ci --prefix tests/cluster        # once, for the Node pair
//! target/release/examples/cluster_load                 # --kinds both: roomcast, then Node
//! target/release/examples/cluster_load --kinds roomcast --clients 200 --duration 3
//! ```
//!
//! For each kind the tool starts a private `redis-server` on a free loopback port (no
//! persistence), then two nodes: `examples/cluster.rs` (the `cluster` binary next to this one)
//! or `tests/cluster/node_server.mjs` (socket.io 4.8 + @socket.io/redis-adapter 8.3), both with
//! `ADAPTER=classic`. It waits until both listen and `PUBSUB NUMSUB socket.io-request#/#` counts
//! 2, and stops all three by PID at the end (SIGTERM, then SIGKILL), on error too. Their output
//! goes to files in a temporary directory, printed (the end of it) if something fails.
//!
//! The load: `--clients` clients per node connect over raw WebSocket (Engine.IO v4 /
//! Socket.IO v5 on `/`, auth `{"name":"c<i>"}`), `join` the room `bench` and wait for the
//! ack. One more client, the publisher, connects to node 1 and does *not* join: it sends
//! `42<seq>["to",{"rooms":["bench"],"payload":"<seq>:<t>:..."}]` and counts the acks
//! (`43<seq>[true]`). Node 1 delivers to its own clients and publishes the broadcast once on
//! Redis; node 2 delivers it to its clients. So a broadcast is `2 x --clients` deliveries.
//!
//! Flow control: at most `--window` broadcasts in flight (sent, not yet received by the two
//! designated receivers, one per node); and never more than `--max-lag` ahead of the slowest
//! receiver of either node (under roomcast's per-connection queue, and Redis' pub/sub output
//! limit). Closed loop by default; `--rate R` publishes at most R broadcasts/s.
//!
//! Timing: `--warmup` seconds of publishing, then `--duration` seconds measured: deliveries/s
//! counts the deliveries *received* in that window (whenever they were sent), latency is
//! sampled on them (send to receipt, one clock), and CPU times are read at the window's two
//! ends: `/proc/<pid>/stat` (utime + stime, the process and its descendants) for the nodes and
//! the generator, `INFO cpu` (used_cpu_sys + used_cpu_user, µs precision) for Redis, whose idle
//! CPU is measured over one idle second first and reported subtracted too. Loss and
//! duplication are checked over the whole run, warm-up included: every receiver must see every
//! sequence number exactly once, in order. Closed loop, the latency is mostly queueing (window
//! / broadcast rate); use `--rate` for latency under a given load.
//!
//! The payload (64 bytes by default) is `<seq:16 hex>:<t:16 hex>:` padded with `.`, where `t`
//! is nanoseconds on this process's monotonic clock. The last broadcast has
//! `t = ffffffffffffffff` and `seq` = the number published before it: each node keeps order per
//! connection (and Redis per channel), so a receiver that sees it has everything it will get.
//!
//! Every flag also reads from the environment (`--clients` is `CLUSTER_LOAD_CLIENTS`, and so
//! on); `--help` lists them. Each kind ends with one JSON line; `--kinds both` ends with one
//! more, the ratio of deliveries/s.

use futures_util::{FutureExt, SinkExt, StreamExt};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
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
const MSG_PREFIX: &[u8] = br#"42["msg",""#;
const MSG_SUFFIX: &[u8] = br#""]"#;
/// `<seq>:<t>:` — the smallest payload.
const PAYLOAD_HEADER: usize = 34;
/// The default window, in deliveries: `--window` is this divided by the receivers.
const DELIVERIES_IN_FLIGHT: u64 = 512 * 1024;
/// The timestamp of the end-of-run broadcast.
const END_MARK: u64 = u64::MAX;
/// The room every receiver joins.
const ROOM: &str = "bench";

static EPOCH: OnceLock<Instant> = OnceLock::new();

fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

// ---------------------------------------------------------------------------------------------
// Settings

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Roomcast,
    Node,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Roomcast => "roomcast",
            Kind::Node => "node",
        }
    }
}

#[derive(Debug, Clone)]
struct Settings {
    kinds: Vec<Kind>,
    clients: usize,
    duration: Duration,
    warmup: Duration,
    payload: usize,
    window: u64,
    max_lag: u64,
    rate: f64,
    threads: usize,
    connect_concurrency: usize,
    read_buffer: usize,
    sample: u64,
    drain_timeout: Duration,
    redis_server: String,
    cluster_bin: Option<String>,
    node: String,
    node_script: String,
    keep_logs: bool,
}

const HELP: &str = "\
cluster_load: the cluster fan-out benchmark (two nodes on a private Redis)

  --kinds K             roomcast | node | both (roomcast, then Node) CLUSTER_LOAD_KINDS    both
  --clients N           receivers per node (all in room `bench`)     CLUSTER_LOAD_CLIENTS  1000
  --duration SECS       measured publishing time                     CLUSTER_LOAD_DURATION 10
  --warmup SECS         publishing before the measured window        CLUSTER_LOAD_WARMUP   2
  --payload BYTES       payload length (>= 34)                       CLUSTER_LOAD_PAYLOAD  64
  --window W            broadcasts in flight (sent, not yet received
                        by both designated receivers)                CLUSTER_LOAD_WINDOW   524288/(2N)
  --rate R              at most R broadcasts/s (0: closed loop)      CLUSTER_LOAD_RATE     0
  --max-lag L           never more than L broadcasts ahead of the
                        slowest receiver                             CLUSTER_LOAD_MAX_LAG  2048
  --threads T           generator worker threads                     CLUSTER_LOAD_THREADS  #cpus
  --connect-concurrency C  handshakes in flight                      CLUSTER_LOAD_CONNECT_CONCURRENCY 64
  --read-buffer BYTES   per-client WebSocket read buffer             CLUSTER_LOAD_READ_BUFFER 8192
  --sample K            latency of one delivery in K per receiver    CLUSTER_LOAD_SAMPLE   1
  --drain-timeout SECS  wait for the last deliveries at most         CLUSTER_LOAD_DRAIN_TIMEOUT 30
  --redis-server PATH   redis-server binary                          CLUSTER_LOAD_REDIS_SERVER redis-server
  --cluster-bin PATH    the roomcast node (default: `cluster` next to this binary)
  --node PATH           node binary                                  CLUSTER_LOAD_NODE     node
  --node-script PATH    the Node node                                (tests/cluster/node_server.mjs)
  --keep-logs           keep the nodes' and Redis' output files      CLUSTER_LOAD_KEEP_LOGS=1
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
            None if arg == "keep-logs" => (arg, "1".to_owned()),
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
                let env = format!("CLUSTER_LOAD_{}", name.to_uppercase().replace('-', "_"));
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
    let kinds = match get("kinds").as_deref().unwrap_or("both") {
        "both" => vec![Kind::Roomcast, Kind::Node],
        "roomcast" => vec![Kind::Roomcast],
        "node" => vec![Kind::Node],
        other => return Err(format!("--kinds: roomcast, node or both, not {other:?}")),
    };
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let manifest = env!("CARGO_MANIFEST_DIR");
    let mut s = Settings {
        kinds,
        clients: num("clients", get("clients"), 1000)?,
        duration: secs("duration", 10.0)?,
        warmup: secs("warmup", 2.0)?,
        payload: num("payload", get("payload"), 64)?,
        window: 0,
        max_lag: num("max-lag", get("max-lag"), 2048)?,
        rate: num("rate", get("rate"), 0.0)?,
        threads: num("threads", get("threads"), cpus)?,
        connect_concurrency: num("connect-concurrency", get("connect-concurrency"), 64)?,
        read_buffer: num("read-buffer", get("read-buffer"), 8192)?,
        sample: num("sample", get("sample"), 1)?,
        drain_timeout: secs("drain-timeout", 30.0)?,
        redis_server: get("redis-server").unwrap_or_else(|| "redis-server".into()),
        cluster_bin: get("cluster-bin"),
        node: get("node").unwrap_or_else(|| "node".into()),
        node_script: get("node-script")
            .unwrap_or_else(|| format!("{manifest}/tests/cluster/node_server.mjs")),
        keep_logs: get("keep-logs").is_some_and(|v| v != "0" && v != "false"),
    };
    if s.clients < 1 {
        return Err("--clients must be at least 1".into());
    }
    let default_window = (DELIVERIES_IN_FLIGHT / (2 * s.clients as u64)).clamp(4, 1024);
    s.window = num("window", get("window"), default_window)?;
    if !(s.rate >= 0.0 && s.rate.is_finite()) {
        return Err("--rate must be a number of broadcasts per second, or 0".into());
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

/// utime + stime of a process (all its threads), in clock ticks; and its parent.
fn stat_ticks(pid: u32) -> Option<(u64, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields from 3 on: f[0] is field 3 (state), f[1] the ppid, f[11] utime, f[12] stime.
    let ppid = f.get(1)?.parse().ok()?;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime, ppid))
}

/// CPU ticks of a process and all its live descendants.
fn tree_ticks(root: u32) -> Option<u64> {
    let (own, _) = stat_ticks(root)?;
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

fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let total: u64 = v.iter().take(8).sum();
    Some(total - v.get(3)? - v.get(4).copied().unwrap_or(0))
}

/// A line of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in bytes.
fn status_bytes(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
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

#[allow(clippy::unnecessary_cast)]
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
// A few Redis commands, over a plain blocking connection (RESP2)

#[derive(Debug)]
enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Resp>),
}

fn read_resp(r: &mut impl BufRead) -> Result<Resp, BoxError> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err("redis closed the connection".into());
    }
    let line = line.trim_end_matches("\r\n");
    let (tag, rest) = line.split_at(1.min(line.len()));
    Ok(match tag {
        "+" => Resp::Simple(rest.to_owned()),
        "-" => Resp::Error(rest.to_owned()),
        ":" => Resp::Int(rest.parse()?),
        "$" => {
            let n: i64 = rest.parse()?;
            if n < 0 {
                Resp::Bulk(None)
            } else {
                let mut buf = vec![0; n as usize + 2];
                r.read_exact(&mut buf)?;
                buf.truncate(n as usize);
                Resp::Bulk(Some(buf))
            }
        }
        "*" => {
            let n: i64 = rest.parse()?;
            let mut items = Vec::new();
            for _ in 0..n.max(0) {
                items.push(read_resp(r)?);
            }
            Resp::Array(items)
        }
        _ => return Err(format!("unexpected reply from redis: {line:?}").into()),
    })
}

fn redis_cmd(addr: &str, args: &[&str]) -> Result<Resp, BoxError> {
    let mut tcp = std::net::TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut out = format!("*{}\r\n", args.len());
    for a in args {
        out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    tcp.write_all(out.as_bytes())?;
    let reply = read_resp(&mut BufReader::new(tcp))?;
    if let Resp::Error(e) = &reply {
        return Err(format!("redis: {e}").into());
    }
    Ok(reply)
}

fn numsub(addr: &str, channel: &str) -> Result<i64, BoxError> {
    match redis_cmd(addr, &["PUBSUB", "NUMSUB", channel])? {
        Resp::Array(items) => match items.get(1) {
            Some(Resp::Int(n)) => Ok(*n),
            other => Err(format!("PUBSUB NUMSUB: unexpected {other:?}").into()),
        },
        other => Err(format!("PUBSUB NUMSUB: unexpected {other:?}").into()),
    }
}

/// `calls` of a command in `INFO commandstats` (e.g. `publish`).
/// 0 when Redis has not run it yet; `None` when Redis did not answer (tried twice).
fn command_calls(addr: &str, command: &str) -> Option<u64> {
    let info = (0..2).find_map(|_| match redis_cmd(addr, &["INFO", "commandstats"]) {
        Ok(Resp::Bulk(Some(info))) => Some(info),
        _ => None,
    })?;
    let info = String::from_utf8_lossy(&info).into_owned();
    let key = format!("cmdstat_{command}:calls=");
    match info.lines().find(|l| l.starts_with(&key)) {
        Some(line) => line[key.len()..].split(',').next()?.parse().ok(),
        None => Some(0),
    }
}

// ---------------------------------------------------------------------------------------------
// The processes: Redis and the two nodes, stopped by PID when dropped

struct Procs {
    dir: PathBuf,
    keep_logs: bool,
    children: Vec<(String, Child)>,
}

impl Procs {
    fn new(kind: Kind, keep_logs: bool) -> Result<Procs, BoxError> {
        let dir = std::env::temp_dir().join(format!(
            "cluster_load.{}.{}",
            std::process::id(),
            kind.name()
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Procs {
            dir,
            keep_logs,
            children: Vec::new(),
        })
    }

    fn spawn(&mut self, label: &str, mut cmd: Command) -> Result<u32, BoxError> {
        let log = std::fs::File::create(self.dir.join(format!("{label}.log")))?;
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting {label} ({cmd:?}): {e}"))?;
        let pid = child.id();
        self.children.push((label.to_owned(), child));
        Ok(pid)
    }

    /// Fails if a child has exited.
    fn check_alive(&mut self) -> Result<(), BoxError> {
        for (label, child) in &mut self.children {
            if let Some(status) = child.try_wait()? {
                return Err(format!("{label} exited ({status})").into());
            }
        }
        Ok(())
    }

    /// The end of each child's output (for an error report).
    fn log_tails(&self) -> String {
        let mut out = String::new();
        for (label, _) in &self.children {
            let text =
                std::fs::read_to_string(self.dir.join(format!("{label}.log"))).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!("--- {label} (last lines)\n"));
            for l in &lines[lines.len().saturating_sub(10)..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for (_, child) in self.children.iter().rev() {
            // SAFETY: kill(2) on the pid of a child we have not reaped yet.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        for (label, child) in self.children.iter_mut().rev() {
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    Ok(None) => {
                        eprintln!("{label} (pid {}) ignored SIGTERM: killed", child.id());
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        if !self.keep_logs {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("logs kept in {}", self.dir.display());
        }
    }
}

fn free_port() -> Result<u16, BoxError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

struct Cluster {
    procs: Procs,
    redis_addr: String,
    redis_pid: u32,
    addrs: [String; 2],
    pids: [u32; 2],
}

fn cluster_bin(s: &Settings) -> Result<PathBuf, BoxError> {
    if let Some(b) = &s.cluster_bin {
        return Ok(b.into());
    }
    let sibling = std::env::current_exe()?.with_file_name("cluster");
    if sibling.exists() {
        return Ok(sibling);
    }
    let fallback =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/examples/cluster");
    if fallback.exists() {
        return Ok(fallback);
    }
    Err("no `cluster` binary: cargo build --release --features redis --example cluster".into())
}

fn wait_until(
    procs: &mut Procs,
    what: &str,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<(), BoxError> {
    let t0 = Instant::now();
    loop {
        if ready() {
            return Ok(());
        }
        procs.check_alive()?;
        if t0.elapsed() > timeout {
            return Err(format!("{what}: not ready after {:.0} s", timeout.as_secs_f64()).into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts Redis and the two nodes of `kind`, and waits until both nodes are subscribed.
fn start_cluster(s: &Settings, kind: Kind) -> Result<Cluster, BoxError> {
    let mut procs = Procs::new(kind, s.keep_logs)?;
    match start_cluster_in(s, kind, &mut procs) {
        Ok((redis_addr, redis_pid, addrs, pids)) => Ok(Cluster {
            procs,
            redis_addr,
            redis_pid,
            addrs,
            pids,
        }),
        Err(e) => Err(format!("{e}\n{}", procs.log_tails()).into()),
    }
}

type Started = (String, u32, [String; 2], [u32; 2]);

fn start_cluster_in(s: &Settings, kind: Kind, procs: &mut Procs) -> Result<Started, BoxError> {
    let redis_port = free_port()?;
    let redis_addr = format!("127.0.0.1:{redis_port}");
    let mut redis = Command::new(&s.redis_server);
    redis
        .args(["--bind", "127.0.0.1", "--port"])
        .arg(redis_port.to_string())
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(&procs.dir);
    let redis_pid = procs.spawn("redis", redis)?;
    wait_until(
        procs,
        "redis",
        Duration::from_secs(10),
        || matches!(redis_cmd(&redis_addr, &["PING"]), Ok(Resp::Simple(p)) if p == "PONG"),
    )?;
    let url = format!("redis://{redis_addr}");
    let mut addrs = [String::new(), String::new()];
    let mut pids = [0u32; 2];
    for i in 0..2 {
        let port = free_port()?;
        let mut cmd = match kind {
            Kind::Roomcast => Command::new(cluster_bin(s)?),
            Kind::Node => {
                let mut c = Command::new(&s.node);
                c.arg(&s.node_script);
                c
            }
        };
        cmd.env("PORT", port.to_string())
            .env("REDIS_URL", &url)
            .env("ADAPTER", "classic")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            );
        pids[i] = procs.spawn(&format!("node{}", i + 1), cmd)?;
        addrs[i] = format!("127.0.0.1:{port}");
    }
    for a in &addrs {
        wait_until(procs, a, Duration::from_secs(20), || {
            std::net::TcpStream::connect(a).is_ok()
        })?;
    }
    wait_until(
        procs,
        "PUBSUB NUMSUB socket.io-request#/# == 2",
        Duration::from_secs(20),
        || numsub(&redis_addr, "socket.io-request#/#").ok() == Some(2),
    )?;
    Ok((redis_addr, redis_pid, addrs, pids))
}

// ---------------------------------------------------------------------------------------------
// Latency histogram: log-linear, 32 sub-buckets per power of two (error under 3.2%).

const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;
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
}

// ---------------------------------------------------------------------------------------------
// Shared state

#[repr(align(64))]
#[derive(Default)]
struct Progress {
    next: AtomicU64,
    dead: AtomicBool,
}

struct Shared {
    /// Receivers 0..N are on node 1, N..2N on node 2.
    progress: Box<[Progress]>,
    /// The receivers whose progress bounds the publisher's window: the last of each node.
    designated: [usize; 2],
    wake_at: AtomicU64,
    wake: Notify,
    published: AtomicU64,
    slowest: AtomicU64,
    connected: AtomicUsize,
    failed: AtomicUsize,
    all_connected: Notify,
    pongs: AtomicU64,
    /// Broadcasts stamped at or after this time (ns) are measured; u64::MAX until publishing.
    t_measure: AtomicU64,
    /// Broadcasts stamped before this time are measured (set when the measured window ends).
    t_stop: AtomicU64,
}

impl Shared {
    fn client_done(&self, total: usize, ok: bool) {
        let (mine, other) = if ok {
            (&self.connected, &self.failed)
        } else {
            (&self.failed, &self.connected)
        };
        if mine.fetch_add(1, Ordering::SeqCst) + 1 + other.load(Ordering::SeqCst) == total {
            self.all_connected.notify_one();
        }
    }

    /// How far both designated receivers have got.
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
}

struct RxReport {
    next: u64,
    gaps: u64,
    dup: u64,
    deliveries: u64,
    measured: u64,
    ended: bool,
    ended_at: u64,
    lost_connection: Option<String>,
    unexpected: u64,
    first_unexpected: Option<String>,
    hist: Histogram,
}

// ---------------------------------------------------------------------------------------------
// Wire

/// Opens a Socket.IO session on `/` with auth `{"name": name}`; joins `bench` if asked.
async fn connect(addr: &str, name: &str, join: bool, read_buffer: usize) -> Result<Ws, BoxError> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let config = WebSocketConfig::default().read_buffer_size(read_buffer);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(url.into_client_request()?, tcp, Some(config))
            .await?;
    let mut state = 0; // 0: Engine.IO open expected, 1: CONNECT ack, 2: join ack
    loop {
        let msg = ws.next().await.ok_or("closed during the handshake")??;
        let Message::Text(t) = msg else { continue };
        let t = t.as_str();
        if t == "2" {
            ws.send(Message::text("3")).await?;
            continue;
        }
        match state {
            0 if t.starts_with("0{") => {
                ws.send(Message::text(format!(r#"40{{"name":"{name}"}}"#)))
                    .await?;
                state = 1;
            }
            1 if t.starts_with("40{\"sid\":") => {
                if !join {
                    return Ok(ws);
                }
                ws.send(Message::text(format!(r#"420["join","{ROOM}"]"#)))
                    .await?;
                state = 2;
            }
            2 if t.starts_with("430[") => {
                if t.contains(&format!("\"{ROOM}\"")) {
                    return Ok(ws);
                }
                return Err(format!("join acked without the room: {t:?}").into());
            }
            _ => return Err(format!("handshake step {state}: unexpected {t:?}").into()),
        }
    }
}

async fn connect_retrying(
    addr: &str,
    name: &str,
    join: bool,
    read_buffer: usize,
) -> Result<Ws, BoxError> {
    let mut delay = Duration::from_millis(50);
    for _ in 0..5 {
        match connect(addr, name, join, read_buffer).await {
            Ok(ws) => return Ok(ws),
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    connect(addr, name, join, read_buffer).await
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

/// `42<seq>["to",{"rooms":["bench"],"payload":"<seq>:<t>:..."}]` (the ack id is `seq`).
fn write_to(buf: &mut String, seq: u64, t: u64, len: usize) {
    use std::fmt::Write;
    let _ = write!(
        buf,
        r#"42{seq}["to",{{"rooms":["{ROOM}"],"payload":"{seq:016x}:{t:016x}:"#
    );
    for _ in PAYLOAD_HEADER..len {
        buf.push('.');
    }
    buf.push_str(r#""}]"#);
}

// ---------------------------------------------------------------------------------------------
// Receiver

async fn receiver(mut ws: Ws, me: usize, shared: Arc<Shared>, s: Arc<Settings>) -> RxReport {
    let expected_len = MSG_PREFIX.len() + s.payload + MSG_SUFFIX.len();
    let designated = shared.designated.contains(&me);
    let progress = &shared.progress[me];
    let sample = s.sample;
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
    // The clock is read once per wake-up and every REFRESH messages read without waiting.
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
        if t.len() == expected_len && t.starts_with(MSG_PREFIX) {
            let p = &t[MSG_PREFIX.len()..];
            let (Some(seq), Some(ts)) = (hex16(&p[..16]), hex16(&p[17..33])) else {
                r.unexpected += 1;
                r.first_unexpected
                    .get_or_insert_with(|| String::from_utf8_lossy(t).into_owned());
                continue;
            };
            if ts == END_MARK {
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
            if ts > now {
                // Sent after the clock was last read: read it again.
                now = now_ns();
                unchecked = 0;
            }
            // Measured: received within the window (whenever it was sent).
            if now >= shared.t_measure.load(Ordering::Relaxed)
                && now < shared.t_stop.load(Ordering::Relaxed)
            {
                r.measured += 1;
                if sample == 1 || seq % sample == phase {
                    r.hist.record(now.saturating_sub(ts));
                }
            }
            if designated {
                progress.next.store(r.next, Ordering::SeqCst);
                if shared.designated_next() >= shared.wake_at.load(Ordering::SeqCst) {
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
        shared.wake_at.store(u64::MAX, Ordering::SeqCst);
        shared.wake.notify_one();
    }
    let _ = ws.close(None).await;
    r
}

// ---------------------------------------------------------------------------------------------
// Publisher

struct PubReport {
    /// Broadcasts sent, the end-of-run one not included.
    published: u64,
    /// Broadcasts sent in the measured window.
    measured: u64,
    /// Acks received (the end-of-run one included).
    acked: u64,
    /// Acks with an unexpected id, or out of order.
    bad_acks: u64,
    /// Publish round trips (send to ack on node 1) of measured broadcasts.
    ack_hist: Histogram,
    window_waits: u64,
    lag_waits: u64,
    error: Option<String>,
}

struct PubState {
    ws: Ws,
    sent_at: Vec<u64>,
    report: PubReport,
}

impl PubState {
    /// Handles one frame from node 1: an ack, a ping, or the end of the connection.
    async fn input(
        &mut self,
        m: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
        shared: &Shared,
    ) -> Result<(), BoxError> {
        match m {
            Some(Ok(Message::Text(t))) => {
                let t = t.as_str();
                if t == "2" {
                    shared.pongs.fetch_add(1, Ordering::Relaxed);
                    self.ws.send(Message::text("3")).await?;
                } else if let Some(rest) = t.strip_prefix("43") {
                    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                    let id: Option<u64> = rest[..digits].parse().ok();
                    let ok = &rest[digits..] == "[true]";
                    let r = &mut self.report;
                    if id == Some(r.acked) && ok {
                        let sent = self.sent_at[r.acked as usize];
                        let now = now_ns();
                        if now >= shared.t_measure.load(Ordering::Relaxed)
                            && now < shared.t_stop.load(Ordering::Relaxed)
                        {
                            r.ack_hist.record(now.saturating_sub(sent));
                        }
                    } else {
                        r.bad_acks += 1;
                    }
                    r.acked += 1;
                }
                Ok(())
            }
            Some(Ok(Message::Close(c))) => Err(format!("close frame {c:?}").into()),
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(e.into()),
            None => Err("closed".into()),
        }
    }

    /// Handles what already arrived, without waiting.
    async fn drain_input(&mut self, shared: &Shared) -> Result<(), BoxError> {
        while let Some(m) = self.ws.next().now_or_never() {
            self.input(m, shared).await?;
        }
        Ok(())
    }
}

async fn publisher(
    ws: Ws,
    shared: Arc<Shared>,
    s: Arc<Settings>,
    start: tokio::time::Instant,
) -> PubReport {
    let mut st = PubState {
        ws,
        sent_at: Vec::with_capacity(1 << 20),
        report: PubReport {
            published: 0,
            measured: 0,
            acked: 0,
            bad_acks: 0,
            ack_hist: Histogram::new(),
            window_waits: 0,
            lag_waits: 0,
            error: None,
        },
    };
    if let Err(e) = publish(&mut st, &shared, &s, start).await {
        st.report.error = Some(e.to_string());
        return st.report;
    }
    // The remaining acks (the end-of-run one included).
    let until = tokio::time::Instant::now() + s.drain_timeout;
    while st.report.acked < st.report.published + 1 {
        match tokio::time::timeout_at(until, st.ws.next()).await {
            Ok(m) => {
                if let Err(e) = st.input(m, &shared).await {
                    st.report.error = Some(format!("waiting for acks: {e}"));
                    return st.report;
                }
            }
            Err(_) => break,
        }
    }
    // Keep answering pings until the receivers are done; the runtime drops this task then.
    let PubState { mut ws, report, .. } = st;
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
    st: &mut PubState,
    shared: &Shared,
    s: &Settings,
    start: tokio::time::Instant,
) -> Result<(), BoxError> {
    let window = s.window;
    let refill = (window / 4).max(1);
    let t_measure = shared.t_measure.load(Ordering::SeqCst);
    let t_stop = shared.t_stop.load(Ordering::SeqCst);
    // The same instant on tokio's clock, for the timers.
    let deadline = start + s.warmup + s.duration;
    let mut seq = 0u64;
    let mut text = String::with_capacity(64 + s.payload);
    let due = |seq: u64| start + Duration::from_secs_f64(seq as f64 / s.rate);
    'run: while now_ns() < t_stop {
        if shared.designated_dead() {
            return Err("a designated receiver lost its connection".into());
        }
        let acked = shared.designated_next();
        let room = window - (seq - acked.min(seq)).min(window);
        let guard = (shared.slowest.load(Ordering::Relaxed) + s.max_lag).saturating_sub(seq);
        let paced = if s.rate > 0.0 {
            ((start.elapsed().as_secs_f64() * s.rate) as u64 + 1).saturating_sub(seq)
        } else {
            u64::MAX
        };
        if guard == 0 || paced == 0 {
            // The slowest receiver is far behind, let it catch up; or the next one is not due.
            let until = if guard == 0 {
                st.report.lag_waits += 1;
                tokio::time::Instant::now() + Duration::from_millis(1)
            } else {
                due(seq)
            };
            let pause = tokio::time::sleep_until(until.min(deadline));
            tokio::pin!(pause);
            loop {
                tokio::select! {
                    () = &mut pause => continue 'run,
                    m = st.ws.next() => st.input(m, shared).await?,
                }
            }
        }
        let limit = guard.min(paced);
        if room >= refill.min(limit) {
            for _ in 0..room.min(limit) {
                let t = now_ns();
                if t >= t_stop {
                    break;
                }
                if t >= t_measure {
                    st.report.measured += 1;
                }
                text.clear();
                write_to(&mut text, seq, t, s.payload);
                st.sent_at.push(t);
                st.ws.feed(Message::text(text.as_str())).await?;
                seq += 1;
                shared.published.store(seq, Ordering::Relaxed);
            }
            st.ws.flush().await?;
            st.drain_input(shared).await?;
            continue;
        }
        // Sleep until both designated receivers have made room for `refill` more.
        st.report.window_waits += 1;
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
                m = st.ws.next() => st.input(m, shared).await?,
                () = tokio::time::sleep_until(deadline) => break 'run,
            }
        }
    }
    st.report.published = seq;
    text.clear();
    write_to(&mut text, seq, END_MARK, s.payload);
    st.sent_at.push(0);
    st.ws.send(Message::text(text.as_str())).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// One kind: connect, publish, collect, report

/// CPU readings at one instant, in ticks.
#[derive(Clone, Copy, Default)]
struct Cpu {
    nodes: [Option<u64>; 2],
    redis: Option<u64>,
    me: Option<u64>,
    machine: Option<u64>,
    /// Redis' own account (INFO cpu, µs precision): used_cpu_sys + used_cpu_user, in s.
    redis_info: Option<f64>,
    publish_calls: Option<u64>,
}

/// `used_cpu_sys + used_cpu_user` of `INFO cpu`, in seconds.
fn redis_info_cpu(addr: &str) -> Option<f64> {
    let Ok(Resp::Bulk(Some(info))) = redis_cmd(addr, &["INFO", "cpu"]) else {
        return None;
    };
    let info = String::from_utf8_lossy(&info).into_owned();
    let field = |k: &str| -> Option<f64> {
        let line = info.lines().find(|l| l.starts_with(&format!("{k}:")))?;
        line[k.len() + 1..].trim().parse().ok()
    };
    Some(field("used_cpu_sys")? + field("used_cpu_user")?)
}

fn read_cpu(pids: [u32; 2], redis_pid: u32, redis_addr: &str) -> Cpu {
    Cpu {
        nodes: [tree_ticks(pids[0]), tree_ticks(pids[1])],
        redis: tree_ticks(redis_pid),
        me: stat_ticks(std::process::id()).map(|(t, _)| t),
        machine: machine_busy_ticks(),
        redis_info: redis_info_cpu(redis_addr),
        publish_calls: command_calls(redis_addr, "publish"),
    }
}

struct KindResult {
    json: String,
    deliveries_per_s: f64,
}

async fn run_kind(s: Arc<Settings>, kind: Kind, c: &Cluster) -> Result<KindResult, BoxError> {
    let n = s.clients;
    let _ = now_ns();
    let progress: Box<[Progress]> = (0..2 * n).map(|_| Progress::default()).collect();
    let shared = Arc::new(Shared {
        progress,
        designated: [n - 1, 2 * n - 1],
        wake_at: AtomicU64::new(u64::MAX),
        wake: Notify::new(),
        published: AtomicU64::new(0),
        slowest: AtomicU64::new(0),
        connected: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        all_connected: Notify::new(),
        pongs: AtomicU64::new(0),
        t_measure: AtomicU64::new(u64::MAX),
        t_stop: AtomicU64::new(u64::MAX),
    });
    let rss_idle = c.pids.map(|p| status_bytes(p, "VmRSS:"));

    eprintln!(
        "[{}] connecting {n} + {n} clients to {} and {} ...",
        kind.name(),
        c.addrs[0],
        c.addrs[1]
    );
    let t_connect = Instant::now();
    let gate = Arc::new(Semaphore::new(s.connect_concurrency));
    let all_connected = shared.all_connected.notified();
    tokio::pin!(all_connected);
    all_connected.as_mut().enable();
    let first_error: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let mut receivers: Vec<Option<tokio::task::JoinHandle<Option<RxReport>>>> =
        (0..2 * n).map(|_| None).collect();
    // Interleaved: both nodes fill at the same pace.
    for k in 0..n {
        for node in 0..2 {
            let me = node * n + k;
            let (shared, s, gate) = (shared.clone(), s.clone(), gate.clone());
            let first_error = first_error.clone();
            let addr = c.addrs[node].clone();
            receivers[me] = Some(tokio::spawn(async move {
                let permit = gate.acquire_owned().await.expect("semaphore");
                let ws = match connect_retrying(&addr, &format!("c{me}"), true, s.read_buffer).await
                {
                    Ok(ws) => ws,
                    Err(e) => {
                        first_error
                            .lock()
                            .unwrap()
                            .get_or_insert_with(|| format!("{addr}: {e}"));
                        shared.client_done(2 * s.clients, false);
                        return None;
                    }
                };
                drop(permit);
                shared.client_done(2 * s.clients, true);
                Some(receiver(ws, me, shared, s).await)
            }));
        }
    }
    all_connected.await;
    let failed = shared.failed.load(Ordering::SeqCst);
    if failed > 0 {
        let e = first_error.lock().unwrap().clone().unwrap_or_default();
        return Err(format!(
            "{failed} of {} clients could not connect; first error: {e}",
            2 * n
        )
        .into());
    }
    let publisher_ws = connect_retrying(&c.addrs[0], "publisher", false, s.read_buffer)
        .await
        .map_err(|e| format!("the publisher: {e}"))?;
    let connect_time = t_connect.elapsed();
    eprintln!(
        "[{}] {} clients in room {ROOM:?} + the publisher, in {:.2} s; publishing {:.0} s + {:.0} s measured",
        kind.name(),
        2 * n,
        connect_time.as_secs_f64(),
        s.warmup.as_secs_f64(),
        s.duration.as_secs_f64()
    );
    // One idle second: the RSS with every client, and Redis' CPU when nobody publishes.
    let raddr = c.redis_addr.clone();
    let idle_a = tokio::task::spawn_blocking(move || redis_info_cpu(&raddr)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let raddr = c.redis_addr.clone();
    let idle_b = tokio::task::spawn_blocking(move || redis_info_cpu(&raddr)).await?;
    let redis_idle_per_s = match (idle_a, idle_b) {
        (Some(a), Some(b)) => Some((b - a).max(0.0)),
        _ => None,
    };
    let rss_connected = c.pids.map(|p| status_bytes(p, "VmRSS:"));

    let start = tokio::time::Instant::now();
    let t0 = now_ns();
    let t_measure = t0 + s.warmup.as_nanos() as u64;
    let t_stop = t_measure + s.duration.as_nanos() as u64;
    shared.t_measure.store(t_measure, Ordering::SeqCst);
    shared.t_stop.store(t_stop, Ordering::SeqCst);
    let raddr = c.redis_addr.clone();
    let publish_calls_before =
        tokio::task::spawn_blocking(move || command_calls(&raddr, "publish")).await?;
    let publisher = tokio::spawn(publisher(publisher_ws, shared.clone(), s.clone(), start));

    // The CPU readings at the start and the end of the measured window.
    let sampler = {
        let (pids, rpid, raddr) = (c.pids, c.redis_pid, c.redis_addr.clone());
        let (w, d) = (s.warmup, s.duration);
        tokio::spawn(async move {
            tokio::time::sleep_until(start + w).await;
            let r = raddr.clone();
            let a = tokio::task::spawn_blocking(move || read_cpu(pids, rpid, &r)).await;
            tokio::time::sleep_until(start + w + d).await;
            let b = tokio::task::spawn_blocking(move || read_cpu(pids, rpid, &raddr)).await;
            (a.unwrap_or_default(), b.unwrap_or_default())
        })
    };

    let monitor_stop = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (shared, stop) = (shared.clone(), monitor_stop.clone());
        let every = Duration::from_micros((2 * n as u64 * 4).clamp(5_000, 50_000));
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
        eprintln!("[{}] the publisher stopped: {e}", kind.name());
    }
    let max_lag = monitor.await.unwrap_or(0);

    let drain = if report.error.is_some() {
        s.drain_timeout.min(Duration::from_secs(2))
    } else {
        s.drain_timeout
    };
    let drain_deadline = tokio::time::Instant::now() + drain;
    let mut reports: Vec<(usize, RxReport)> = Vec::with_capacity(2 * n);
    let mut stalled: Vec<(usize, u64)> = Vec::new();
    for (i, task) in receivers.into_iter().enumerate() {
        let task = task.expect("spawned");
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
    let t_end_seen = now_ns();
    let (cpu_start, cpu_end) = sampler.await?;
    let raddr = c.redis_addr.clone();
    let publish_calls_after =
        tokio::task::spawn_blocking(move || command_calls(&raddr, "publish")).await?;
    let hwm = c.pids.map(|p| status_bytes(p, "VmHWM:"));
    let redis_hwm = status_bytes(c.redis_pid, "VmHWM:");
    let me_hwm = status_bytes(std::process::id(), "VmHWM:");

    // Totals.
    let mut hist = Histogram::new();
    let mut per_node = [(0u64, 0u64); 2]; // (measured deliveries, lost) per node
    let (mut deliveries, mut measured, mut lost, mut dup, mut unexpected) = (0u64, 0, 0, 0, 0);
    let mut disconnected = Vec::new();
    let mut first_unexpected = None;
    let mut t_last = t_stop;
    for (i, r) in &reports {
        let node = i / n;
        let l = r.gaps + published.saturating_sub(r.next);
        deliveries += r.deliveries;
        measured += r.measured;
        lost += l;
        per_node[node].0 += r.measured;
        per_node[node].1 += l;
        dup += r.dup;
        unexpected += r.unexpected;
        if first_unexpected.is_none() {
            first_unexpected = r.first_unexpected.clone();
        }
        if let Some(why) = &r.lost_connection {
            disconnected.push((node, r.next, why.clone()));
        }
        t_last = t_last.max(if r.ended { r.ended_at } else { t_end_seen });
        hist.merge(&r.hist);
    }
    for &(i, next) in &stalled {
        deliveries += next;
        lost += published.saturating_sub(next);
        per_node[i / n].1 += published.saturating_sub(next);
    }
    // The drain: from the end of the window to the last end-of-run event.
    let drain_s = t_last.saturating_sub(t_stop) as f64 / 1e9;
    let window_s = s.duration.as_secs_f64();
    let rate = measured as f64 / window_s;
    // Broadcasts delivered to every receiver, per second (one broadcast = 2N deliveries).
    let bcast_rate = rate / (2 * n) as f64;
    let hz = clock_ticks_per_sec() as f64;
    let d = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / hz),
        _ => None,
    };
    let node_cpu = [
        d(cpu_start.nodes[0], cpu_end.nodes[0]),
        d(cpu_start.nodes[1], cpu_end.nodes[1]),
    ];
    let redis_cpu = match (cpu_start.redis_info, cpu_end.redis_info) {
        (Some(a), Some(b)) => Some((b - a).max(0.0)),
        _ => d(cpu_start.redis, cpu_end.redis),
    };
    let me_cpu = d(cpu_start.me, cpu_end.me);
    let machine = d(cpu_start.machine, cpu_end.machine);
    let others = match (machine, node_cpu, redis_cpu, me_cpu) {
        (Some(m), [Some(a), Some(b)], Some(r), Some(g)) => Some((m - a - b - r - g).max(0.0)),
        _ => None,
    };
    let publishes = match (cpu_start.publish_calls, cpu_end.publish_calls) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let publishes_all = match (publish_calls_before, publish_calls_after) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    // Redis' CPU per PUBLISH it ran in the window (one PUBLISH per broadcast: see publishes_all).
    let redis_us_per_bcast = match (redis_cpu, publishes) {
        (Some(c), Some(p)) if p > 0 => Some(c * 1e6 / p as f64),
        _ => None,
    };
    // The same, less what Redis spends idle (its timers) over as long a time.
    let redis_net_us_per_bcast = match (redis_cpu, redis_idle_per_s, publishes) {
        (Some(c), Some(i), Some(p)) if p > 0 => Some((c - i * window_s).max(0.0) * 1e6 / p as f64),
        _ => None,
    };

    let per_delivery_us = |cpu: Option<f64>, dl: u64| cpu.map(|c| c * 1e6 / dl.max(1) as f64);
    let (p50, p99, max) = (hist.quantile(0.5), hist.quantile(0.99), hist.max);
    let (a50, a99, amax) = (
        report.ack_hist.quantile(0.5),
        report.ack_hist.quantile(0.99),
        report.ack_hist.max,
    );
    let ms = |ns: u64| ns as f64 / 1e6;
    let f = |v: Option<f64>, digits: usize| v.map_or("n/a".to_owned(), |v| format!("{v:.digits$}"));
    let mib =
        |b: Option<u64>| b.map_or("n/a".to_owned(), |b| format!("{:.1}", b as f64 / 1048576.0));
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let share = |c: Option<f64>| c.map(|c| c / window_s * 100.0);

    let k = kind.name();
    println!("cluster fan-out: {k} + {k} on Redis {}", c.redis_addr);
    println!(
        "  clients            {n} per node in room {ROOM:?} (+ the publisher on node 1, not in the room); connected in {:.2} s",
        connect_time.as_secs_f64()
    );
    println!(
        "  publishing         {:.1} s warm-up + {window_s:.1} s measured, window {} broadcasts{}; drain after the window {drain_s:.2} s",
        s.warmup.as_secs_f64(),
        s.window,
        if s.rate > 0.0 {
            format!(", at most {}/s", s.rate)
        } else {
            String::new()
        }
    );
    println!(
        "  broadcasts         {bcast_rate:.0}/s delivered to all; {} sent in the window, {published} in all; window full {} times, max lag reached {} times",
        report.measured, report.window_waits, report.lag_waits
    );
    println!(
        "  deliveries         {rate:.0}/s: {measured} received in the window (node 1 {}, node 2 {}); {deliveries} in all",
        per_node[0].0, per_node[1].0
    );
    println!(
        "  lost               {lost} (node 1 {}, node 2 {}), over the whole run",
        per_node[0].1, per_node[1].1
    );
    println!("  duplicated         {dup}");
    println!(
        "  acks               {} of {} ({} bad); publish round trip to node 1 p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        report.acked,
        published + 1,
        report.bad_acks,
        ms(a50),
        ms(a99),
        ms(amax)
    );
    if unexpected > 0 {
        println!(
            "  unexpected frames  {unexpected} (first: {:?})",
            first_unexpected.unwrap_or_default()
        );
    }
    if !stalled.is_empty() || !disconnected.is_empty() {
        println!(
            "  receivers lost     {} disconnected, {} never finished",
            disconnected.len(),
            stalled.len()
        );
        for (node, next, why) in disconnected.iter().take(5) {
            println!(
                "                     node {}, after {next}: {why}",
                node + 1
            );
        }
    }
    println!("  slowest receiver   at most {max_lag} broadcasts behind the publisher");
    println!(
        "  latency            p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples, send to receipt)",
        ms(p50),
        ms(p99),
        ms(max),
        hist.total
    );
    println!(
        "  node 1 CPU         {} s ({}% of a core; {} µs per delivery on node 1)",
        f(node_cpu[0], 2),
        f(share(node_cpu[0]), 0),
        f(per_delivery_us(node_cpu[0], per_node[0].0), 3)
    );
    println!(
        "  node 2 CPU         {} s ({}% of a core; {} µs per delivery on node 2)",
        f(node_cpu[1], 2),
        f(share(node_cpu[1]), 0),
        f(per_delivery_us(node_cpu[1], per_node[1].0), 3)
    );
    println!(
        "  Redis CPU          {} s ({}% of a core; idle: {} s/s), {} µs per broadcast, {} above idle ({} PUBLISH in the window); PUBLISH per broadcast over the run {}",
        f(redis_cpu, 3),
        f(share(redis_cpu), 0),
        f(redis_idle_per_s, 4),
        f(redis_us_per_bcast, 1),
        f(redis_net_us_per_bcast, 1),
        publishes.map_or("n/a".into(), |p| p.to_string()),
        f(
            publishes_all.map(|p| p as f64 / (published + 1) as f64),
            3
        )
    );
    println!(
        "  generator CPU      {} s ({}% of a core, {} threads; {} µs per delivery)",
        f(me_cpu, 2),
        f(share(me_cpu), 0),
        s.threads,
        f(per_delivery_us(me_cpu, measured), 3)
    );
    if let (Some(o), Some(m)) = (others, machine) {
        let other_share = o / (window_s * cpus);
        println!(
            "  machine            {:.0}% of {cpus} CPUs busy over the window; not ours (other processes, unattributed kernel time) {o:.2} s ({:.0}%){}",
            m / (window_s * cpus) * 100.0,
            other_share * 100.0,
            if other_share > 0.05 {
                "  <- disturbed"
            } else {
                ""
            }
        );
    }
    println!(
        "  RSS (MiB)          node 1 {} idle, {} connected, {} peak; node 2 {} / {} / {}; Redis peak {}; generator peak {}",
        mib(rss_idle[0]),
        mib(rss_connected[0]),
        mib(hwm[0]),
        mib(rss_idle[1]),
        mib(rss_connected[1]),
        mib(hwm[1]),
        mib(redis_hwm),
        mib(me_hwm)
    );
    let j = |v: Option<f64>| v.map_or("null".to_owned(), |v| format!("{v:.4}"));
    let ju = |v: Option<u64>| v.map_or("null".to_owned(), |v| v.to_string());
    let json = format!(
        "{{\"kind\":\"{k}\",\"clients_per_node\":{n},\"window_s\":{window_s:.3},\"warmup_s\":{:.3},\"drain_s\":{drain_s:.3},\"window\":{},\"rate\":{},\"payload\":{},\
\"broadcasts_per_s\":{bcast_rate:.1},\"broadcasts_sent_in_window\":{},\"broadcasts_all\":{published},\"deliveries\":{measured},\"deliveries_per_s\":{rate:.0},\
\"deliveries_all\":{deliveries},\"lost\":{lost},\"duplicated\":{dup},\"unexpected\":{unexpected},\"disconnected\":{},\"stalled\":{},\
\"acked\":{},\"bad_acks\":{},\"max_lag\":{max_lag},\"latency_ns\":{{\"p50\":{p50},\"p99\":{p99},\"max\":{max},\"samples\":{}}},\
\"ack_rtt_ns\":{{\"p50\":{a50},\"p99\":{a99},\"max\":{amax}}},\"node1_cpu_s\":{},\"node2_cpu_s\":{},\"redis_cpu_s\":{},\
\"redis_cpu_us_per_broadcast\":{},\"redis_cpu_us_per_broadcast_above_idle\":{},\"redis_idle_cpu_s_per_s\":{},\"redis_publish_in_window\":{},\"redis_publish_all\":{},\"generator_cpu_s\":{},\"others_cpu_s\":{},\
\"node1_rss_connected\":{},\"node2_rss_connected\":{},\"node1_rss_peak\":{},\"node2_rss_peak\":{},\"connect_s\":{:.3}}}",
        s.warmup.as_secs_f64(),
        s.window,
        s.rate,
        s.payload,
        report.measured,
        disconnected.len(),
        stalled.len(),
        report.acked,
        report.bad_acks,
        hist.total,
        j(node_cpu[0]),
        j(node_cpu[1]),
        j(redis_cpu),
        j(redis_us_per_bcast),
        j(redis_net_us_per_bcast),
        j(redis_idle_per_s),
        ju(publishes),
        ju(publishes_all),
        j(me_cpu),
        j(others),
        ju(rss_connected[0]),
        ju(rss_connected[1]),
        ju(hwm[0]),
        ju(hwm[1]),
        connect_time.as_secs_f64()
    );
    println!("{json}");
    Ok(KindResult {
        json,
        deliveries_per_s: rate,
    })
}

// ---------------------------------------------------------------------------------------------
// Main

fn main() {
    let s = match parse_settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cluster_load: {e}\n\n{HELP}");
            std::process::exit(2);
        }
    };
    // Each node holds N sockets, the generator 2N + 1: the children inherit the limit.
    let want = 2 * s.clients as u64 + 256;
    let nofile = raise_nofile(want);
    if nofile < want {
        eprintln!("warning: open files are limited to {nofile}, fewer than {want} (ulimit -n)");
    }
    let s = Arc::new(s);
    let mut results: Vec<(Kind, KindResult)> = Vec::new();
    let mut failed = false;
    for &kind in &s.kinds {
        // A fresh Redis and a fresh pair for each kind; all of it stopped when `cluster` drops.
        let cluster = match start_cluster(&s, kind) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("cluster_load: [{}] {e}", kind.name());
                failed = true;
                continue;
            }
        };
        eprintln!(
            "[{}] redis pid {} on {}, nodes pid {} on {} and pid {} on {}",
            kind.name(),
            cluster.redis_pid,
            cluster.redis_addr,
            cluster.pids[0],
            cluster.addrs[0],
            cluster.pids[1],
            cluster.addrs[1]
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(s.threads)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let result = rt.block_on(run_kind(s.clone(), kind, &cluster));
        rt.shutdown_timeout(Duration::from_millis(200));
        match result {
            Ok(r) => results.push((kind, r)),
            Err(e) => {
                eprintln!(
                    "cluster_load: [{}] {e}\n{}",
                    kind.name(),
                    cluster.procs.log_tails()
                );
                failed = true;
            }
        }
        drop(cluster);
    }
    let get = |k: Kind| results.iter().find(|(kk, _)| *kk == k).map(|(_, r)| r);
    if let (Some(r), Some(n)) = (get(Kind::Roomcast), get(Kind::Node)) {
        let ratio = r.deliveries_per_s / n.deliveries_per_s.max(1.0);
        println!(
            "roomcast / node deliveries/s: {ratio:.2}x ({:.0} / {:.0})",
            r.deliveries_per_s, n.deliveries_per_s
        );
        println!("{{\"ratio_roomcast_over_node_deliveries_per_s\":{ratio:.3}}}");
        let _ = (&r.json, &n.json);
    }
    if failed {
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_event_shape() {
        let mut s = String::new();
        write_to(&mut s, 7, 255, 64);
        assert!(s.starts_with(
            r#"427["to",{"rooms":["bench"],"payload":"0000000000000007:00000000000000ff:"#
        ));
        assert!(s.ends_with(r#"."}]"#));
    }
}
