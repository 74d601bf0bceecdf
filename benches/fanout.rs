//! The fan-out workload of DESIGN §5, fixed so that every change (and every other
//! implementation) is measured on the same work.
//!
//! - One namespace `/` with N = 100,000 sockets, created in order over WebSocket connections.
//! - Socket `i` joins `big-{i % 10}`, then 8 distinct rooms `mix-{r}`, `r = next() % 100`,
//!   skipping duplicates; `next()` is xorshift32 seeded 42, one generator for all sockets.
//! - The event `["news",{"id":1,"text":"hello"}]`, encoded once per broadcast.
//! - F1 `to("big-3")`; F2 from socket 7 `to(mix-0..mix-7).except(mix-8)` (46,388 recipients);
//!   F3 from socket 7 `broadcast.emit`; F4 1,000,000 (leave, join) pairs.
//!
//! A broadcast is done when its recipients and its shared frame are ready for the I/O layer:
//! the iteration emits and takes the batch from `poll_transmit`.
//!
//! F4 picks a random socket and a random `mix` room per pair. To measure real work in both
//! halves and keep the workload stationary, a pair on a room the socket is in is leave then
//! join; on a room it is not in, join then leave. Either way the state is unchanged after it.
//!
//! Also printed: the core's heap memory per socket on this workload, measured with a counting
//! allocator around the setup.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use roomcast::engine::Frame;
use roomcast::{Config, Event, HttpAction, HttpRequest, Server, SocketHandle, Str, Transmit};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

/// Counts live heap bytes, to report memory per socket.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const N: usize = 100_000;

struct XorShift32(u32);

impl XorShift32 {
    fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
}

struct Workload {
    server: Server,
    sockets: Vec<SocketHandle>,
    mix: Vec<String>,
    bytes_per_socket: f64,
}

/// Builds the DESIGN §5 state through the public API, as real clients would.
fn setup() -> Workload {
    let before = LIVE.load(Ordering::Relaxed);
    let now = Instant::now();
    let mut server: Server = Server::new(Config::default()).unwrap();
    let mut sockets = Vec::with_capacity(N);
    let mix: Vec<String> = (0..100).map(|r| format!("mix-{r}")).collect();
    let mut rng = XorShift32(42);
    for i in 0..N {
        let HttpAction::AcceptWebSocket(conn) = server.handle_http(
            now,
            HttpRequest::get("EIO=4&transport=websocket").websocket(),
        ) else {
            panic!("handshake refused")
        };
        server.handle_ws_open(now, conn);
        server.handle_ws_message(now, conn, Frame::Text(Str::from_static("40")));
        let Some(Event::ConnectRequest { request, .. }) = server.poll_event() else {
            panic!("no connect request")
        };
        let socket = server.accept(request, ()).unwrap();
        while server.poll_transmit().is_some() {}
        while server.poll_event().is_some() {}
        server.join(socket, &format!("big-{}", i % 10)).unwrap();
        let mut joined = 0;
        while joined < 8 {
            let r = (rng.next() % 100) as usize;
            if server.join(socket, &mix[r]).unwrap() {
                joined += 1;
            }
        }
        sockets.push(socket);
    }
    let after = LIVE.load(Ordering::Relaxed);
    // The handles vector belongs to the benchmark, not the core.
    let handles = (sockets.capacity() * std::mem::size_of::<SocketHandle>()) as isize;
    let names: isize = mix.iter().map(|m| m.capacity() as isize + 24).sum();
    Workload {
        server,
        sockets,
        bytes_per_socket: (after - before - handles - names) as f64 / N as f64,
        mix,
    }
}

/// Takes the broadcast's batch; returns its recipient count.
fn take_batch(server: &mut Server) -> usize {
    let mut n = 0;
    while let Some(t) = server.poll_transmit() {
        if let Transmit::WebSocket { to, frames, .. } = t {
            assert_eq!(frames.len(), 1);
            n += to.len();
        }
    }
    n
}

fn fanout(c: &mut Criterion) {
    let mut w = setup();
    eprintln!(
        "fanout: core heap memory per socket on the DESIGN §5 workload: {:.0} bytes",
        w.bytes_per_socket
    );
    let root = w.server.namespace("/").unwrap();
    let event = serde_json::json!({"id": 1, "text": "hello"});
    let s7 = w.sockets[7];

    // Check the counts once, outside the measurement.
    w.server
        .to_namespace(root)
        .to("big-3")
        .emit("news", &(&event,))
        .unwrap();
    assert_eq!(take_batch(&mut w.server), 10_000);
    let f2 = |server: &mut Server| {
        let mut b = server.broadcast_from(s7).unwrap();
        for room in &MIX[..8] {
            b = b.to(Str::from_static(room));
        }
        b.except(Str::from_static(MIX[8]))
            .emit("news", &(&event,))
            .unwrap()
    };
    assert_eq!(f2(&mut w.server), 46_388);
    assert_eq!(take_batch(&mut w.server), 46_388);
    w.server
        .broadcast_from(s7)
        .unwrap()
        .emit("news", &(&event,))
        .unwrap();
    assert_eq!(take_batch(&mut w.server), N - 1);

    let mut g = c.benchmark_group("fanout");
    g.sample_size(20);

    g.throughput(Throughput::Elements(10_000));
    g.bench_function("F1_to_big-3", |b| {
        b.iter(|| {
            w.server
                .to_namespace(root)
                .to(Str::from_static("big-3"))
                .emit("news", &(&event,))
                .unwrap();
            take_batch(&mut w.server)
        })
    });

    g.throughput(Throughput::Elements(46_388));
    g.bench_function("F2_union_except_from_sender", |b| {
        b.iter(|| {
            f2(&mut w.server);
            take_batch(&mut w.server)
        })
    });

    g.throughput(Throughput::Elements(N as u64 - 1));
    g.bench_function("F3_broadcast_from_sender", |b| {
        b.iter(|| {
            w.server
                .broadcast_from(s7)
                .unwrap()
                .emit("news", &(&event,))
                .unwrap();
            take_batch(&mut w.server)
        })
    });

    const PAIRS: u64 = 1_000_000;
    g.throughput(Throughput::Elements(PAIRS));
    g.sample_size(10);
    let mut rng = XorShift32(42);
    g.bench_function("F4_churn_leave_join_pairs", |b| {
        b.iter(|| {
            for _ in 0..PAIRS {
                let s = w.sockets[rng.next() as usize % N];
                let room = &w.mix[rng.next() as usize % 100];
                if w.server.leave(s, room).unwrap() {
                    w.server.join(s, room).unwrap();
                } else {
                    w.server.join(s, room).unwrap();
                    w.server.leave(s, room).unwrap();
                }
            }
        })
    });
    g.finish();
}

const MIX: [&str; 9] = [
    "mix-0", "mix-1", "mix-2", "mix-3", "mix-4", "mix-5", "mix-6", "mix-7", "mix-8",
];

criterion_group!(benches, fanout);
criterion_main!(benches);
