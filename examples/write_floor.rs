//! The floor under a WebSocket delivery on this machine: what a bare non-blocking `write()` of
//! one frame to one of N loopback TCP connections costs, with nothing of roomcast around it.
//!
//! A child process (this binary, `--drain`) connects N sockets and reads them on a tokio
//! runtime, one task per connection, as the load generator's clients do. The parent accepts
//! them and, `--rate` times a second, writes one `--frame`-byte WebSocket frame to each, in
//! turn, from one thread, then sleeps until the next tick. It reports the writing thread's CPU
//! time (user + system: on loopback the kernel delivers the bytes to the receiving socket and
//! wakes its reader in the sender's context) per write, and how long one round of N writes
//! takes (a lower bound on the last recipient's latency when one thread writes them all).
//!
//! With `--batch K` each write carries K frames (one `write` of K × frame bytes, as a busy
//! connection's vectored write does), for the floor at a high rate.
//!
//! ```sh
//! cargo run --release --features tokio --example write_floor -- --clients 1000 --rate 50 --duration 10
//! ```
//!
//! The report ends with one JSON line. Compare it with `fanout_load --rate 50`'s server CPU per
//! delivery in the same session: the difference is what the server adds to the bare write.

#[path = "common/bench.rs"]
mod bench;
// Its flags and the open-files limit; the rest of it is the WebSocket load generators'.
#[allow(unused_imports)]
#[path = "common/wsload.rs"]
mod wsload;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Settings {
    clients: usize,
    rate: f64,
    duration: Duration,
    frame: usize,
    batch: usize,
}

const HELP: &str = "\
write_floor: the CPU cost of a bare non-blocking write to one of N loopback connections

  --clients N      connections                          WRITE_FLOOR_CLIENTS   1000
  --rate R         rounds per second (one write to each) WRITE_FLOOR_RATE        50
  --duration SECS  measured time                        WRITE_FLOOR_DURATION    10
  --frame BYTES    WebSocket frame length (>= 2, < 126)  WRITE_FLOOR_FRAME      100
  --batch K        frames per write                     WRITE_FLOOR_BATCH        1
";

fn parse() -> Result<Settings, String> {
    let f = wsload::Flags::parse("WRITE_FLOOR", HELP, &[])?;
    let s = Settings {
        clients: f.num("clients", 1000)?,
        rate: f.num("rate", 50.0)?,
        duration: f.secs("duration", 10.0)?,
        frame: f.num("frame", 100)?,
        batch: f.num("batch", 1)?,
    };
    if s.clients == 0 || s.batch == 0 || !(s.rate > 0.0 && s.rate.is_finite()) {
        return Err("--clients, --batch and --rate must be > 0".into());
    }
    if !(2..126).contains(&s.frame) {
        return Err("--frame must be in 2..126 (a frame with a one-byte length)".into());
    }
    Ok(s)
}

/// The child: connects `n` sockets to `addr` and reads them until each is closed.
fn drain(addr: &str, n: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let mut s = tokio::net::TcpStream::connect(addr)
                .await
                .expect("connect to the writer");
            tasks.push(tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut buf = vec![0u8; 8192];
                while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
}

/// This thread's time on the CPU, user and system (`schedstat`'s first field, in nanoseconds:
/// exact, where `/proc/<pid>/stat` counts in ticks; and no `unsafe` for `clock_gettime`).
fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = text
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0u64);
    Duration::from_nanos(ns)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--drain") {
        let n = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(0);
        drain(&args[2], n);
        return;
    }
    let s = match parse() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    // One descriptor per connection here, and one in the reader, which inherits the limit.
    let nofile = wsload::raise_nofile(s.clients as u64 + 64);
    if nofile < s.clients as u64 + 16 {
        eprintln!(
            "open-files limit {nofile} is too low for {} connections",
            s.clients
        );
        std::process::exit(2);
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    let mut child = Command::new(std::env::current_exe().expect("this binary"))
        .args(["--drain", &addr, &s.clients.to_string()])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn the reader");
    let mut conns: Vec<TcpStream> = (0..s.clients)
        .map(|_| {
            let (c, _) = listener.accept().expect("accept");
            c.set_nodelay(true).expect("TCP_NODELAY");
            c.set_nonblocking(true).expect("non-blocking");
            c
        })
        .collect();

    // A text frame: FIN + opcode 1, unmasked, a one-byte length, `.` as the payload.
    let mut one = vec![b'.'; s.frame];
    one[0] = 0x81;
    one[1] = (s.frame - 2) as u8;
    let out: Vec<u8> = one.repeat(s.batch);

    // A second of warm-up (caches, the reader's tasks all parked), then the measured rounds.
    let period = Duration::from_secs_f64(1.0 / s.rate);
    let warmup = (s.rate as u64).max(1);
    let rounds = (s.duration.as_secs_f64() * s.rate).ceil() as u64;
    let (mut cpu, mut writes, mut blocked) = (Duration::ZERO, 0u64, 0u64);
    let mut round_times: Vec<Duration> = Vec::with_capacity(rounds as usize);
    let mut next = Instant::now();
    for round in 0..warmup + rounds {
        let measured = round >= warmup;
        let (c0, t0) = (thread_cpu(), Instant::now());
        for c in conns.iter_mut() {
            match c.write(&out) {
                Ok(n) if n == out.len() => {}
                Ok(_) | Err(_) => blocked += u64::from(measured),
            }
        }
        if measured {
            let (c1, t1) = (thread_cpu(), Instant::now());
            cpu += c1 - c0;
            round_times.push(t1 - t0);
            writes += conns.len() as u64;
        }
        next += period;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    drop(conns);
    let _ = child.wait();

    round_times.sort();
    let q = |f: f64| round_times[((round_times.len() - 1) as f64 * f) as usize];
    let per_write = cpu.as_secs_f64() * 1e6 / writes as f64;
    let per_frame = per_write / s.batch as f64;
    println!(
        "write_floor: {} connections, {} rounds/s, {}-byte frames, {} per write, {} rounds",
        s.clients, s.rate, s.frame, s.batch, rounds
    );
    println!("  writer CPU per write   {per_write:.2} µs ({per_frame:.3} µs per frame)");
    println!(
        "  one round of {} writes  p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        s.clients,
        q(0.5).as_secs_f64() * 1e3,
        q(0.99).as_secs_f64() * 1e3,
        q(1.0).as_secs_f64() * 1e3
    );
    println!("  short writes           {blocked}");
    println!(
        "{{\"clients\":{},\"rate\":{},\"frame\":{},\"batch\":{},\"writes\":{writes},\"cpu_us_per_write\":{per_write:.3},\"cpu_us_per_frame\":{per_frame:.4},\"round_ms_p50\":{:.3},\"round_ms_p99\":{:.3},\"short_writes\":{blocked}}}",
        s.clients,
        s.rate,
        s.frame,
        s.batch,
        q(0.5).as_secs_f64() * 1e3,
        q(0.99).as_secs_f64() * 1e3
    );
}
