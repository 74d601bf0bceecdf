//! Instruction counts of the fan-out steps F1-F3 of the DESIGN §5 workload, which a noisy
//! machine cannot hide: build it, then run it under callgrind, collecting only the steps:
//!
//! ```sh
//! cargo build --release --example fanout_count
//! valgrind --tool=callgrind --callgrind-out-file=fc.out --collect-atstart=no \
//!   --toggle-collect='fanout_count::step_f1*' --toggle-collect='fanout_count::step_f2*' \
//!   --toggle-collect='fanout_count::step_f3*' target/release/examples/fanout_count
//! callgrind_annotate --inclusive=yes fc.out | grep step_f
//! ```
//!
//! Each step runs 10 times; divide by 10 and by the recipients (printed) for instructions per
//! recipient. `RECOVERY=1` turns connection state recovery on (every broadcast numbered and
//! logged) and prints what the log holds per packet.
use roomcast::engine::Frame;
use roomcast::{Config, Event, HttpAction, HttpRequest, Server, SocketHandle, Str, Transmit};
use std::time::Instant;

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

fn take_batch(server: &mut Server) -> usize {
    let mut n = 0;
    while let Some(t) = server.poll_transmit() {
        if let Transmit::WebSocket { to, .. } = t {
            n += to.len();
        }
    }
    n
}

#[inline(never)]
fn step_f1(server: &mut Server, ev: &serde_json::Value) -> usize {
    let root = server.namespace("/").unwrap();
    server
        .to_namespace(root)
        .to("big-3")
        .emit("news", &(ev,))
        .unwrap();
    take_batch(server)
}

#[inline(never)]
fn step_f2(server: &mut Server, s7: SocketHandle, mix: &[String], ev: &serde_json::Value) -> usize {
    let mut b = server.broadcast_from(s7).unwrap();
    for m in &mix[..8] {
        b = b.to(m.as_str());
    }
    b.except(mix[8].as_str()).emit("news", &(ev,)).unwrap();
    take_batch(server)
}

#[inline(never)]
fn step_f3(server: &mut Server, s7: SocketHandle, ev: &serde_json::Value) -> usize {
    server
        .broadcast_from(s7)
        .unwrap()
        .emit("news", &(ev,))
        .unwrap();
    take_batch(server)
}

#[inline(never)]
fn step_f4(server: &mut Server, sockets: &[SocketHandle], mix: &[String], rng: &mut XorShift32) {
    for _ in 0..100_000 {
        let s = sockets[rng.next() as usize % N];
        let room = &mix[rng.next() as usize % 100];
        if server.leave(s, room).unwrap() {
            server.join(s, room).unwrap();
        } else {
            server.join(s, room).unwrap();
            server.leave(s, room).unwrap();
        }
    }
}

fn main() {
    let now = Instant::now();
    let mut config = Config::default();
    if std::env::var("RECOVERY").is_ok_and(|v| v == "1") {
        config.recovery = Some(roomcast::RecoveryConfig::default());
    }
    let mut server: Server = Server::new(config).unwrap();
    let mut sockets = Vec::with_capacity(N);
    let mix: Vec<String> = (0..100).map(|r| format!("mix-{r}")).collect();
    let mut rng = XorShift32(42);
    for i in 0..N {
        let HttpAction::AcceptWebSocket(conn) = server.handle_http(
            now,
            HttpRequest::get("EIO=4&transport=websocket").websocket(),
        ) else {
            panic!()
        };
        server.handle_ws_open(now, conn);
        server.handle_ws_message(now, conn, Frame::Text(Str::from_static("40")));
        let Some(Event::ConnectRequest { request, .. }) = server.poll_event() else {
            panic!()
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
    let ev = serde_json::json!({"id": 1, "text": "hello"});
    let s7 = sockets[7];
    let reps = 10;
    let (mut a, mut b, mut c) = (0, 0, 0);
    for _ in 0..reps {
        a += step_f1(&mut server, &ev);
        b += step_f2(&mut server, s7, &mix, &ev);
        c += step_f3(&mut server, s7, &ev);
    }
    let mut churn = XorShift32(7);
    step_f4(&mut server, &sockets, &mix, &mut churn);
    println!(
        "recipients per step: F1 {} F2 {} F3 {}",
        a / reps,
        b / reps,
        c / reps
    );
    if let Some(r) = server.recovery_stats() {
        println!(
            "recovery log: {} packets, {} bytes, {} bytes per packet",
            r.packets,
            r.packet_bytes,
            r.packet_bytes / r.packets.max(1)
        );
    }
}
