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

#[path = "common/bench.rs"]
mod bench;
#[path = "common/wsload.rs"]
mod wsload;

use futures_util::StreamExt;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wsload::{
    cpu_ticks, free_port, json_f, json_u, machine_busy_ticks, now_ns, status_bytes, ticks_s,
    tree_ticks, write_payload, BoxError, Broadcasts, Histogram, Load, Monitor, RxReport, Shared,
    Totals, Waits, Ws, END_MARK,
};

/// What the receivers expect in front of the payload.
const MSG_PREFIX: &[u8] = br#"42["msg",""#;
/// The room every receiver joins.
const ROOM: &str = "bench";

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
    load: Load,
    kinds: Vec<Kind>,
    warmup: Duration,
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
    let f = wsload::Flags::parse("CLUSTER_LOAD", HELP, &["keep-logs"])?;
    let kinds = match f.get("kinds").as_deref().unwrap_or("both") {
        "both" => vec![Kind::Roomcast, Kind::Node],
        "roomcast" => vec![Kind::Roomcast],
        "node" => vec![Kind::Node],
        other => return Err(format!("--kinds: roomcast, node or both, not {other:?}")),
    };
    let manifest = env!("CARGO_MANIFEST_DIR");
    Ok(Settings {
        kinds,
        warmup: f.secs("warmup", 2.0)?,
        redis_server: f
            .get("redis-server")
            .unwrap_or_else(|| "redis-server".into()),
        cluster_bin: f.get("cluster-bin"),
        node: f.get("node").unwrap_or_else(|| "node".into()),
        node_script: f
            .get("node-script")
            .unwrap_or_else(|| format!("{manifest}/tests/cluster/node_server.mjs")),
        keep_logs: f.on("keep-logs"),
        load: Load::parse(
            &f,
            1,
            "--clients must be at least 1",
            |clients| 2 * clients as u64,
            "broadcasts",
        )?,
    })
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
// Wire

/// `42<seq>["to",{"rooms":["bench"],"payload":"<seq>:<t>:..."}]` (the ack id is `seq`).
fn write_to(buf: &mut String, seq: u64, t: u64, len: usize) {
    use std::fmt::Write;
    let _ = write!(buf, r#"42{seq}["to",{{"rooms":["{ROOM}"],"payload":""#);
    write_payload(buf, seq, t, len);
    buf.push_str(r#""}]"#);
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
    waits: Waits,
    error: Option<String>,
}

/// The `to` broadcasts until the end of the measured window, and their acks from node 1.
struct Acks {
    payload: usize,
    t_measure: u64,
    t_stop: u64,
    sent_at: Vec<u64>,
    report: PubReport,
}

impl Broadcasts for Acks {
    fn running(&self) -> bool {
        now_ns() < self.t_stop
    }

    fn write(&mut self, buf: &mut String, seq: u64, t: u64) -> bool {
        if t == END_MARK {
            self.sent_at.push(0);
        } else {
            if t >= self.t_stop {
                return false;
            }
            if t >= self.t_measure {
                self.report.measured += 1;
            }
            self.sent_at.push(t);
        }
        write_to(buf, seq, t, self.payload);
        true
    }

    /// `43<seq>[true]`: the ack of broadcast `seq`.
    fn text(&mut self, t: &str) {
        let Some(rest) = t.strip_prefix("43") else {
            return;
        };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let id: Option<u64> = rest[..digits].parse().ok();
        let ok = &rest[digits..] == "[true]";
        let r = &mut self.report;
        if id == Some(r.acked) && ok {
            let sent = self.sent_at[r.acked as usize];
            let now = now_ns();
            if now >= self.t_measure && now < self.t_stop {
                r.ack_hist.record(now.saturating_sub(sent));
            }
        } else {
            r.bad_acks += 1;
        }
        r.acked += 1;
    }
}

/// Publishes from `start` to the end of the measured window ([`wsload::publish`]), then waits
/// for the remaining acks.
async fn publisher(
    mut ws: Ws,
    shared: Arc<Shared>,
    s: Arc<Settings>,
    start: tokio::time::Instant,
) -> PubReport {
    let l = &s.load;
    let mut acks = Acks {
        payload: l.payload,
        t_measure: shared.t_measure.load(Ordering::SeqCst),
        t_stop: shared.t_stop.load(Ordering::SeqCst),
        sent_at: Vec::with_capacity(1 << 20),
        report: PubReport {
            published: 0,
            measured: 0,
            acked: 0,
            bad_acks: 0,
            ack_hist: Histogram::new(),
            waits: Waits::default(),
            error: None,
        },
    };
    // The end of the window on tokio's clock, for the timers.
    let deadline = start + s.warmup + l.duration;
    let mut waits = Waits::default();
    let sent = wsload::publish(&mut ws, &shared, l, start, deadline, &mut acks, &mut waits).await;
    acks.report.waits = waits;
    match sent {
        Ok(n) => acks.report.published = n,
        Err(e) => {
            acks.report.error = Some(e.to_string());
            return acks.report;
        }
    }
    // The remaining acks (the end-of-run one included).
    let until = tokio::time::Instant::now() + l.drain_timeout;
    while acks.report.acked < acks.report.published + 1 {
        match tokio::time::timeout_at(until, ws.next()).await {
            Ok(m) => {
                if let Err(e) = wsload::publisher_input(m, &mut ws, &shared, &mut acks).await {
                    acks.report.error = Some(format!("waiting for acks: {e}"));
                    return acks.report;
                }
            }
            Err(_) => break,
        }
    }
    wsload::keep_answering_pings(ws);
    acks.report
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
        me: cpu_ticks(std::process::id()),
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
    let l = &s.load;
    let n = l.clients;
    let _ = now_ns();
    // Receivers 0..N are on node 1, N..2N on node 2; the last of each node bounds the window.
    let shared = Arc::new(Shared::new(
        2 * n,
        0,
        vec![n - 1, 2 * n - 1],
        l.connect_concurrency,
        true,
    ));
    let rss_idle = c.pids.map(|p| status_bytes(p, "VmRSS"));

    eprintln!(
        "[{}] connecting {n} + {n} clients to {} and {} ...",
        kind.name(),
        c.addrs[0],
        c.addrs[1]
    );
    let t_connect = Instant::now();
    let mut receivers: Vec<Option<tokio::task::JoinHandle<Option<RxReport>>>> =
        (0..2 * n).map(|_| None).collect();
    // Interleaved: both nodes fill at the same pace.
    for k in 0..n {
        for node in 0..2 {
            let me = node * n + k;
            let (shared, s) = (shared.clone(), s.clone());
            let addr = c.addrs[node].clone();
            receivers[me] = Some(tokio::spawn(async move {
                let l = &s.load;
                let (name, what) = (format!("c{me}"), format!("{addr}: "));
                let ws: Ws = shared
                    .connect_client(&addr, l.read_buffer, Some(&name), Some(ROOM), &what)
                    .await?;
                let (payload, sample) = (l.payload, l.sample);
                Some(wsload::receiver(ws, me, shared, MSG_PREFIX, payload, sample).await)
            }));
        }
    }
    shared.all_connected().await?;
    let publisher_ws =
        wsload::connect_retrying(&c.addrs[0], l.read_buffer, Some("publisher"), None)
            .await
            .map_err(|e| format!("the publisher: {e}"))?;
    let connect_time = t_connect.elapsed();
    eprintln!(
        "[{}] {} clients in room {ROOM:?} + the publisher, in {:.2} s; publishing {:.0} s + {:.0} s measured",
        kind.name(),
        2 * n,
        connect_time.as_secs_f64(),
        s.warmup.as_secs_f64(),
        l.duration.as_secs_f64()
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
    let rss_connected = c.pids.map(|p| status_bytes(p, "VmRSS"));

    let start = tokio::time::Instant::now();
    let t0 = now_ns();
    let t_measure = t0 + s.warmup.as_nanos() as u64;
    let t_stop = t_measure + l.duration.as_nanos() as u64;
    shared.t_measure.store(t_measure, Ordering::SeqCst);
    shared.t_stop.store(t_stop, Ordering::SeqCst);
    let raddr = c.redis_addr.clone();
    let publish_calls_before =
        tokio::task::spawn_blocking(move || command_calls(&raddr, "publish")).await?;
    let publisher = tokio::spawn(publisher(publisher_ws, shared.clone(), s.clone(), start));

    // The CPU readings at the start and the end of the measured window.
    let sampler = {
        let (pids, rpid, raddr) = (c.pids, c.redis_pid, c.redis_addr.clone());
        let (w, d) = (s.warmup, l.duration);
        tokio::spawn(async move {
            tokio::time::sleep_until(start + w).await;
            let r = raddr.clone();
            let a = tokio::task::spawn_blocking(move || read_cpu(pids, rpid, &r)).await;
            tokio::time::sleep_until(start + w + d).await;
            let b = tokio::task::spawn_blocking(move || read_cpu(pids, rpid, &raddr)).await;
            (a.unwrap_or_default(), b.unwrap_or_default())
        })
    };
    let monitor = Monitor::spawn(shared.clone());

    let report = publisher.await?;
    let published = shared.published(report.published);
    if let Some(e) = &report.error {
        eprintln!("[{}] the publisher stopped: {e}", kind.name());
    }
    let max_lag = monitor.finish().await;

    let receivers = receivers
        .into_iter()
        .map(|t| t.expect("spawned"))
        .enumerate();
    let (reports, stalled) =
        wsload::collect(receivers, &shared, l.drain_timeout, report.error.is_some()).await;
    let t_end_seen = now_ns();
    let (cpu_start, cpu_end) = sampler.await?;
    let raddr = c.redis_addr.clone();
    let publish_calls_after =
        tokio::task::spawn_blocking(move || command_calls(&raddr, "publish")).await?;
    let hwm = c.pids.map(|p| status_bytes(p, "VmHWM"));
    let redis_hwm = status_bytes(c.redis_pid, "VmHWM");
    let me_hwm = status_bytes(std::process::id(), "VmHWM");

    // Totals.
    let mut t = Totals::new(t_stop);
    let mut per_node = [(0u64, 0u64); 2]; // (measured deliveries, lost) per node
    for (i, r) in &reports {
        let lost = t.add(*i, r, published, t_end_seen);
        per_node[i / n].0 += r.measured;
        per_node[i / n].1 += lost;
    }
    for &(i, next) in &stalled {
        per_node[i / n].1 += t.add_stalled(next, published);
    }
    let (deliveries, measured, lost, dup) = (t.deliveries, t.measured, t.lost, t.dup);
    let hist = &t.hist;
    // The drain: from the end of the window to the last end-of-run event.
    let drain_s = t.t_last.saturating_sub(t_stop) as f64 / 1e9;
    let window_s = l.duration.as_secs_f64();
    let rate = measured as f64 / window_s;
    // Broadcasts delivered to every receiver, per second (one broadcast = 2N deliveries).
    let bcast_rate = rate / (2 * n) as f64;
    let node_cpu = [
        ticks_s(cpu_start.nodes[0], cpu_end.nodes[0]),
        ticks_s(cpu_start.nodes[1], cpu_end.nodes[1]),
    ];
    let redis_cpu = match (cpu_start.redis_info, cpu_end.redis_info) {
        (Some(a), Some(b)) => Some((b - a).max(0.0)),
        _ => ticks_s(cpu_start.redis, cpu_end.redis),
    };
    let me_cpu = ticks_s(cpu_start.me, cpu_end.me);
    let machine = ticks_s(cpu_start.machine, cpu_end.machine);
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
        l.window,
        wsload::at_most(l.rate, "")
    );
    println!(
        "  broadcasts         {bcast_rate:.0}/s delivered to all; {} sent in the window, {published} in all; window full {} times, max lag reached {} times",
        report.measured, report.waits.window, report.waits.lag
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
    t.print_unexpected();
    if t.stalled > 0 || !t.disconnected.is_empty() {
        println!(
            "  receivers lost     {} disconnected, {} never finished",
            t.disconnected.len(),
            t.stalled
        );
        for (i, next, why) in t.disconnected.iter().take(5) {
            println!(
                "                     node {}, after {next}: {why}",
                i / n + 1
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
    for (i, (cpu, (measured, _))) in node_cpu.iter().zip(per_node).enumerate() {
        println!(
            "  node {} CPU         {} s ({}% of a core; {} µs per delivery on node {})",
            i + 1,
            f(*cpu, 2),
            f(share(*cpu), 0),
            f(per_delivery_us(*cpu, measured), 3),
            i + 1
        );
    }
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
        l.threads,
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
    let json = format!(
        "{{\"kind\":\"{k}\",\"clients_per_node\":{n},\"window_s\":{window_s:.3},\"warmup_s\":{:.3},\"drain_s\":{drain_s:.3},\"window\":{},\"rate\":{},\"payload\":{},\
\"broadcasts_per_s\":{bcast_rate:.1},\"broadcasts_sent_in_window\":{},\"broadcasts_all\":{published},\"deliveries\":{measured},\"deliveries_per_s\":{rate:.0},\
\"deliveries_all\":{deliveries},\"lost\":{lost},\"duplicated\":{dup},\"unexpected\":{},\"disconnected\":{},\"stalled\":{},\
\"acked\":{},\"bad_acks\":{},\"max_lag\":{max_lag},\"latency_ns\":{{\"p50\":{p50},\"p99\":{p99},\"max\":{max},\"samples\":{}}},\
\"ack_rtt_ns\":{{\"p50\":{a50},\"p99\":{a99},\"max\":{amax}}},\"node1_cpu_s\":{},\"node2_cpu_s\":{},\"redis_cpu_s\":{},\
\"redis_cpu_us_per_broadcast\":{},\"redis_cpu_us_per_broadcast_above_idle\":{},\"redis_idle_cpu_s_per_s\":{},\"redis_publish_in_window\":{},\"redis_publish_all\":{},\"generator_cpu_s\":{},\"others_cpu_s\":{},\
\"node1_rss_connected\":{},\"node2_rss_connected\":{},\"node1_rss_peak\":{},\"node2_rss_peak\":{},\"connect_s\":{:.3}}}",
        s.warmup.as_secs_f64(),
        l.window,
        l.rate,
        l.payload,
        report.measured,
        t.unexpected,
        t.disconnected.len(),
        t.stalled,
        report.acked,
        report.bad_acks,
        hist.total,
        json_f(node_cpu[0]),
        json_f(node_cpu[1]),
        json_f(redis_cpu),
        json_f(redis_us_per_bcast),
        json_f(redis_net_us_per_bcast),
        json_f(redis_idle_per_s),
        json_u(publishes),
        json_u(publishes_all),
        json_f(me_cpu),
        json_f(others),
        json_u(rss_connected[0]),
        json_u(rss_connected[1]),
        json_u(hwm[0]),
        json_u(hwm[1]),
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
    let want = 2 * s.load.clients as u64 + 256;
    let nofile = wsload::raise_nofile(want);
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
        let rt = s.load.runtime();
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
