//! The tokio adapter on a real socket: raw WebSocket and HTTP/1.1 clients against a `SocketIo`
//! served on 127.0.0.1. Every test is bounded in time.
#![cfg(feature = "tokio")]

use futures_util::{SinkExt, StreamExt};
use roomcast::io::tokio::{
    CallError, ListenerId, Options, OptionsError, Rejection, Socket, SocketIo,
};
use roomcast::packet::Encoded;
use roomcast::Config;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

const LIMIT: Duration = Duration::from_secs(30);

type Ws = WebSocketStream<TcpStream>;

async fn serve(io: &SocketIo) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let io = io.clone();
    tokio::spawn(async move { io.serve(listener, std::future::pending()).await });
    addr
}

/// The next text frame, answering heartbeats on the way.
async fn next_text(ws: &mut Ws) -> String {
    loop {
        let msg = timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("no frame within 5 s")
            .expect("connection closed")
            .expect("read failed");
        if let WsMessage::Text(t) = msg {
            if t.as_str() == "2" {
                ws.send(WsMessage::text("3")).await.unwrap();
                continue;
            }
            return t.as_str().to_owned();
        }
    }
}

/// A WebSocket client connected to namespace `nsp` (`"/"` or `"/name"`).
async fn ws_connect(addr: SocketAddr, nsp: &str) -> Ws {
    let stream = TcpStream::connect(addr).await.unwrap();
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    let open = next_text(&mut ws).await;
    assert!(open.starts_with("0{"), "{open}");
    let connect = if nsp == "/" {
        "40".to_owned()
    } else {
        format!("40{nsp},")
    };
    ws.send(WsMessage::text(connect)).await.unwrap();
    let connected = next_text(&mut ws).await;
    let want = if nsp == "/" {
        "40{".to_owned()
    } else {
        format!("40{nsp},{{")
    };
    assert!(connected.starts_with(&want), "{connected}");
    ws
}

/// One HTTP/1.1 request on its own connection: the status and the body.
async fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain;charset=UTF-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    (status, body.unwrap_or_default())
}

/// A long-polling session connected to `/`: its sid.
async fn polling_connect(addr: SocketAddr) -> String {
    let (status, body) = http(addr, "GET", "/socket.io/?EIO=4&transport=polling", b"").await;
    assert_eq!(status, 200, "{body}");
    let open: serde_json::Value = serde_json::from_str(&body[1..]).unwrap();
    let sid = open["sid"].as_str().unwrap().to_owned();
    let q = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(http(addr, "POST", &q, b"40").await, (200, "ok".to_owned()));
    let (status, body) = http(addr, "GET", &q, b"").await;
    assert_eq!(status, 200);
    assert!(body.starts_with("40{"), "{body}");
    sid
}

fn echo_server(options: Options) -> SocketIo {
    let io: SocketIo = SocketIo::new(Config::default(), options);
    io.of("/")
        .on("echo", |_, msg| async move { msg.ack(&msg.args_raw()) })
        .on("shout", |socket, msg| async move {
            let _ = socket.broadcast().emit("heard", &msg.args_raw());
            msg.ack(&("shouted",));
        });
    io
}

#[tokio::test]
async fn websocket_handshake_connect_event_and_ack() {
    timeout(LIMIT, async {
        let io = echo_server(Options::default());
        let addr = serve(&io).await;
        let mut ws = ws_connect(addr, "/").await;
        ws.send(WsMessage::text(r#"421["echo","hi",{"n":1}]"#))
            .await
            .unwrap();
        assert_eq!(next_text(&mut ws).await, r#"431["hi",{"n":1}]"#);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn polling_handshake_connect_event_and_ack() {
    timeout(LIMIT, async {
        let io = echo_server(Options::default());
        let addr = serve(&io).await;
        let sid = polling_connect(addr).await;
        let q = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
        let post = http(addr, "POST", &q, br#"427["echo",42]"#).await;
        assert_eq!(post, (200, "ok".to_owned()));
        assert_eq!(
            http(addr, "GET", &q, b"").await,
            (200, "437[42]".to_owned())
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn broadcast_reaches_every_other_socket() {
    timeout(LIMIT, async {
        let io = echo_server(Options::default());
        let addr = serve(&io).await;
        let mut a = ws_connect(addr, "/").await;
        let mut b = ws_connect(addr, "/").await;
        let mut c = ws_connect(addr, "/").await;
        a.send(WsMessage::text(r#"421["shout","hello"]"#))
            .await
            .unwrap();
        // The sender gets its ack, not the broadcast.
        assert_eq!(next_text(&mut a).await, r#"431["shouted"]"#);
        assert_eq!(next_text(&mut b).await, r#"42["heard","hello"]"#);
        assert_eq!(next_text(&mut c).await, r#"42["heard","hello"]"#);
    })
    .await
    .unwrap();
}

/// A server whose `n` handler records each event's number when it starts and when it ends,
/// and waits for a permit of `gate` in between.
type Log = Arc<Mutex<Vec<u64>>>;

fn gated_server(socket_queue: usize) -> (SocketIo, Arc<Semaphore>, Log, Log) {
    gated_server_with({
        let mut c = Options::default();
        c.socket_queue = socket_queue;
        c
    })
}

fn gated_server_with(options: Options) -> (SocketIo, Arc<Semaphore>, Log, Log) {
    let io: SocketIo = SocketIo::new(Config::default(), options);
    let gate = Arc::new(Semaphore::new(0));
    let started = Arc::new(Mutex::new(Vec::new()));
    let handled = Arc::new(Mutex::new(Vec::new()));
    let (g, s, h) = (gate.clone(), started.clone(), handled.clone());
    io.of("/").on("n", move |_, msg| {
        let (g, s, h) = (g.clone(), s.clone(), h.clone());
        async move {
            let (n,): (u64,) = msg.args().unwrap_or_else(|_| {
                let (n, _pad): (u64, String) = msg.args().unwrap();
                (n,)
            });
            s.lock().unwrap().push(n);
            g.acquire().await.unwrap().forget();
            h.lock().unwrap().push(n);
        }
    });
    (io, gate, started, handled)
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_socket_queue_stops_reading_the_websocket_and_loses_nothing() {
    timeout(LIMIT, async {
        const BOUND: usize = 4;
        const TOTAL: u64 = 4000;
        let (io, gate, started, handled) = gated_server(BOUND);
        let addr = serve(&io).await;
        let ws = ws_connect(addr, "/").await;
        let (mut sink, mut stream) = ws.split();
        // 16 KiB events: 64 MB in all, far more than the kernel's buffers on loopback.
        let pad = "x".repeat(16 * 1024);
        let sent = Arc::new(AtomicUsize::new(0));
        let sent2 = sent.clone();
        let sender = tokio::spawn(async move {
            for i in 0..TOTAL {
                let msg = format!(r#"42["n",{i},"{pad}"]"#);
                sink.send(WsMessage::text(msg)).await.unwrap();
                sent2.store(i as usize + 1, Ordering::SeqCst);
            }
            sink
        });
        // Drain what the server sends (nothing expected) so only the upstream can stall.
        tokio::spawn(async move { while stream.next().await.is_some() {} });

        // The client's writes stall: the count stops growing for a full second.
        let mut last = usize::MAX;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = sent.load(Ordering::SeqCst);
            if now == last {
                break;
            }
            last = now;
        }
        assert!(
            last < TOTAL as usize,
            "every write went through: the server kept reading"
        );
        // Handlers run concurrently, each holding its event's credit: the first BOUND started
        // (and wait), the rest are unread.
        assert_eq!(
            *started.lock().unwrap(),
            (0..BOUND as u64).collect::<Vec<_>>()
        );
        assert!(handled.lock().unwrap().is_empty());

        // Released, every event is handled, none lost or twice; each started in arrival order
        // (concurrent handlers may finish in any order, as in Node).
        gate.add_permits(TOTAL as usize);
        let _sink = sender.await.unwrap();
        wait_for("every event handled", || {
            handled.lock().unwrap().len() == TOTAL as usize
        })
        .await;
        let all: Vec<u64> = (0..TOTAL).collect();
        assert_eq!(*started.lock().unwrap(), all);
        let mut got = handled.lock().unwrap().clone();
        got.sort_unstable();
        assert_eq!(got, all);
        eprintln!("writes stalled after {last} of {TOTAL} events (bound {BOUND})");
    })
    .await
    .unwrap();
}

/// Floods 10 events of `frame_len` bytes at a gated handler, then disconnects the socket once
/// the reader had time to take what its credit allows: the events handled are those it read.
async fn events_read_ahead(options: Options, frame_len: usize) -> Vec<u64> {
    let (io, gate, started, handled) = gated_server_with(options);
    let addr = serve(&io).await;
    let mut ws = ws_connect(addr, "/").await;
    for i in 0..10u64 {
        // `42["n",<i>,"<pad>"]`: 12 bytes around the padding.
        let pad = "x".repeat(frame_len - 12);
        ws.send(WsMessage::text(format!(r#"42["n",{i},"{pad}"]"#)))
            .await
            .unwrap();
    }
    wait_for("the first handler", || !started.lock().unwrap().is_empty()).await;
    // Time for the reader to take what its credit allows (it cannot take more).
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Everything read so far is queued for the socket ahead of its disconnection; what the
    // server reads after it is for a namespace the client has left, and not handled.
    let left = io
        .query(|ctx| {
            let sockets: Vec<_> = ctx
                .server
                .namespace("/")
                .map_or(Vec::new(), |n| ctx.server.to_namespace(n).sockets());
            for s in &sockets {
                let _ = ctx.server.disconnect(*s);
            }
            sockets.len()
        })
        .await;
    assert_eq!(left, Some(1));
    gate.add_permits(100);
    // (The client may not see its `41`: the core closes the connection on the first event for
    // the namespace it left, with the rest of the flood unread, so TCP resets.)
    wait_for("the queued events", || !handled.lock().unwrap().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Handlers run concurrently: they may finish in any order.
    let mut got = handled.lock().unwrap().clone();
    got.sort_unstable();
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_reads_exactly_its_bound_of_events_ahead() {
    timeout(LIMIT, async {
        let options = {
            let mut c = Options::default();
            c.socket_queue = 4;
            c
        };
        assert_eq!(events_read_ahead(options, 20).await, vec![0, 1, 2, 3]);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_reads_exactly_its_bound_of_bytes_ahead() {
    timeout(LIMIT, async {
        // Room for 1,000 events but 3 x 16 KiB bytes: three are read, not four.
        let options = {
            let mut c = Options::default();
            c.socket_queue = 1000;
            c.socket_queue_bytes = 3 * 16 * 1024;
            c
        };
        assert_eq!(events_read_ahead(options, 16 * 1024).await, vec![0, 1, 2]);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_is_sent_even_when_the_call_queue_is_full() {
    timeout(LIMIT, async {
        let io: SocketIo = SocketIo::new(Config::default(), {
            let mut c = Options::default();
            c.call_queue = 8;
            c
        });
        let refused = Arc::new(AtomicUsize::new(0));
        let r = refused.clone();
        io.of("/").on("fill", move |socket, msg| {
            let r = r.clone();
            async move {
                // Hold the driver inside a call, so nothing drains while the queue is filled.
                let (started_tx, started_rx) = std::sync::mpsc::channel();
                socket
                    .io()
                    .call(move |_| {
                        let _ = started_tx.send(());
                        std::thread::sleep(Duration::from_millis(300));
                    })
                    .unwrap();
                tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
                    .await
                    .unwrap();
                let mut queued = 0;
                while socket.emit("filler", &(queued,)).is_ok() {
                    queued += 1;
                }
                r.store(queued + 1, Ordering::SeqCst);
                msg.ack(&("acked",));
            }
        });
        let addr = serve(&io).await;
        let mut ws = ws_connect(addr, "/").await;
        ws.send(WsMessage::text(r#"421["fill"]"#)).await.unwrap();
        let mut fillers = 0;
        loop {
            let t = next_text(&mut ws).await;
            if t == r#"431["acked"]"# {
                break;
            }
            assert_eq!(t, format!(r#"42["filler",{fillers}]"#));
            fillers += 1;
        }
        // The queue took some emits, refused the next, and still carried the ack.
        let queued = refused.load(Ordering::SeqCst) - 1;
        assert_eq!(fillers, queued);
        assert!(queued < 8, "{queued}");
        assert_eq!(io.refused_calls(), 0);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_from_the_client_pass_while_its_credit_is_used_up() {
    timeout(LIMIT, async {
        // One unit of credit, held by the running `ask` handler while it waits for the
        // client's answer: that answer must still be read.
        let io: SocketIo = SocketIo::new(Config::default(), {
            let mut c = Options::default();
            c.socket_queue = 1;
            c
        });
        io.of("/").on("ask", |socket, _| async move {
            let answer = socket
                .timeout(Duration::from_secs(10))
                .emit_with_ack("q", ("?",))
                .await;
            let answer = answer
                .map(|p| p.json().to_string())
                .unwrap_or_else(|e| e.to_string());
            let _ = socket.emit("got", &(answer,));
        });
        let addr = serve(&io).await;
        let mut ws = ws_connect(addr, "/").await;
        ws.send(WsMessage::text(r#"42["ask"]"#)).await.unwrap();
        let q = next_text(&mut ws).await;
        let id = q
            .strip_prefix("42")
            .and_then(|r| r.strip_suffix(r#"["q","?"]"#))
            .unwrap_or_else(|| panic!("{q}"));
        ws.send(WsMessage::text(format!(r#"43{id}["a"]"#)))
            .await
            .unwrap();
        let got = timeout(Duration::from_secs(3), next_text(&mut ws))
            .await
            .expect("the ack was not read: the handler is still waiting");
        assert!(
            got.starts_with(r#"42["got","#) && got.contains('a'),
            "{got}"
        );
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polling_post_past_its_credit_is_answered_once_handled() {
    timeout(LIMIT, async {
        let (io, gate, started, handled) = gated_server(2);
        let addr = serve(&io).await;
        let sid = polling_connect(addr).await;
        let q = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
        let body = (0..5)
            .map(|i| format!(r#"42["n",{i}]"#))
            .collect::<Vec<_>>()
            .join("\u{1e}");
        let post = tokio::spawn(async move { http(addr, "POST", &q, body.as_bytes()).await });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !post.is_finished(),
            "answered while its events had no credit"
        );
        // A POST's events all reach the handlers, which run at once; its answer (so the
        // client's next POST) waits until the three past the credit would fit.
        assert_eq!(*started.lock().unwrap(), vec![0, 1, 2, 3, 4]);
        gate.add_permits(5);
        let answer = timeout(Duration::from_secs(5), post)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(answer, (200, "ok".to_owned()));
        wait_for("every event handled", || handled.lock().unwrap().len() == 5).await;
        let mut got = handled.lock().unwrap().clone();
        got.sort_unstable();
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synchronous_calls_are_refused_when_the_call_queue_is_full() {
    timeout(LIMIT, async {
        let io: SocketIo = SocketIo::new(Config::default(), {
            let mut c = Options::default();
            c.call_queue = 4;
            c
        });
        // Inside a call the driver is busy with us, so the queue cannot drain meanwhile.
        let io2 = io.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        // Let the namespace registration of `SocketIo::new` drain first.
        io.query(|_| ()).await.unwrap();
        io.call(move |_| {
            let calls: Vec<bool> = (0..6).map(|_| io2.call(|_| {}).is_ok()).collect();
            let emit = io2.of("/").emit("x", &(1,));
            let refused_before = io2.refused_calls();
            let e = Encoded::event("/", None, "x", &(1,)).unwrap();
            io2.of("/").broadcast().emit_encoded(e);
            let _ = tx.send((calls, emit, refused_before, io2.refused_calls()));
        })
        .unwrap();
        let (calls, emit, before, after) = rx.await.unwrap();
        assert_eq!(calls, vec![true, true, true, true, false, false]);
        assert!(matches!(emit, Err(CallError::Full)), "{emit:?}");
        assert_eq!((before, after), (0, 1));
        // Drained, the queue takes calls again.
        assert_eq!(io.query(|ctx| ctx.server.socket_count()).await, Some(0));
        assert!(io.call(|_| {}).is_ok());
    })
    .await
    .unwrap();
}

#[test]
fn options_are_validated() {
    assert_eq!(Options::default().validate(), Ok(()));
    let bad = |o: Options| o.validate().unwrap_err();
    assert!(matches!(
        bad({
            let mut c = Options::default();
            c.socket_queue = 0;
            c
        }),
        OptionsError::Bound {
            name: "socket_queue",
            ..
        }
    ));
    assert!(matches!(
        bad({
            let mut c = Options::default();
            c.ws_queue = 3;
            c
        }),
        OptionsError::Bound {
            name: "ws_queue",
            ..
        }
    ));
    for o in [
        {
            let mut c = Options::default();
            c.input_queue = 0;
            c
        },
        {
            let mut c = Options::default();
            c.call_queue = 0;
            c
        },
    ] {
        assert!(matches!(bad(o), OptionsError::Bound { .. }));
    }
    assert!(matches!(
        bad({
            let mut c = Options::default();
            c.path = "socket.io".into();
            c
        }),
        OptionsError::Path(_)
    ));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = SocketIo::<()>::try_new(Config::default(), {
            let mut c = Options::default();
            c.socket_queue = 0;
            c
        });
        assert!(r.is_err());
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_disconnects_only_its_socket() {
    timeout(LIMIT, async {
        let io = echo_server(Options::default());
        io.of("/")
            .on("boom", |_, _| async move { panic!("handler boom") });
        io.of("/guarded")
            .auth(|_| async move { panic!("middleware boom") as Result<(), Rejection> });
        io.of("/fragile")
            .on_connection(|_| async move { panic!("connection boom") });
        let addr = serve(&io).await;
        let mut victim = ws_connect(addr, "/").await;
        let mut bystander = ws_connect(addr, "/").await;

        victim.send(WsMessage::text(r#"42["boom"]"#)).await.unwrap();
        assert_eq!(next_text(&mut victim).await, "41");

        // Code the driver runs for the application panics: the driver goes on.
        io.call(|_| panic!("call boom")).unwrap();
        assert_eq!(io.query(|_| -> u8 { panic!("query boom") }).await, None);

        // A panicking middleware refuses its client; a panicking connection handler
        // disconnects it.
        let mut guarded = ws_connect_raw(addr).await;
        guarded.send(WsMessage::text("40/guarded,")).await.unwrap();
        assert_eq!(
            next_text(&mut guarded).await,
            r#"44/guarded,{"message":"Internal server error"}"#
        );
        let mut fragile = ws_connect(addr, "/fragile").await;
        assert_eq!(next_text(&mut fragile).await, "41/fragile,");

        bystander
            .send(WsMessage::text(r#"421["echo","still here"]"#))
            .await
            .unwrap();
        assert_eq!(next_text(&mut bystander).await, r#"431["still here"]"#);
    })
    .await
    .unwrap();
}

/// A WebSocket past the Engine.IO handshake, connected to no namespace yet.
async fn ws_connect_raw(addr: SocketAddr) -> Ws {
    let stream = TcpStream::connect(addr).await.unwrap();
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    assert!(next_text(&mut ws).await.starts_with("0{"));
    ws
}

/// Sends a POST of `len` bytes (with or without Content-Length), all of it, then reads the
/// answer's status line.
async fn oversized_post(addr: SocketAddr, sid: &str, len: usize, chunked: bool) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {len}")
    };
    let head = format!(
        "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: text/plain;charset=UTF-8\r\n{framing}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'4'; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len());
        if chunked {
            s.write_all(format!("{n:x}\r\n").as_bytes()).await.unwrap();
        }
        s.write_all(&chunk[..n])
            .await
            .expect("the server reset the connection while the body was being sent");
        if chunked {
            s.write_all(b"\r\n").await.unwrap();
        }
        left -= n;
    }
    if chunked {
        s.write_all(b"0\r\n\r\n").await.unwrap();
    }
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)
        .await
        .expect("the answer was lost to a reset");
    String::from_utf8_lossy(&buf)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_post_is_answered_413_not_reset() {
    timeout(LIMIT, async {
        let io = echo_server(Options::default());
        let addr = serve(&io).await;
        for chunked in [false, true] {
            let sid = polling_connect(addr).await;
            let status = oversized_post(addr, &sid, 2_000_000, chunked).await;
            assert!(
                status.starts_with("HTTP/1.1 413"),
                "chunked {chunked}: {status}"
            );
            // The session is gone, as the reference server does.
            let q = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
            assert_eq!(http(addr, "GET", &q, b"").await.0, 400);
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_in_code_the_driver_runs_stop_only_their_own_work() {
    timeout(LIMIT, async {
        // A bare Engine.IO server whose message handler panics on "boom" and echoes the rest.
        let io = roomcast::io::tokio::EngineIo::new(Config::default(), Options::default());
        io.on_message(|ctx, conn, message| {
            if let roomcast::engine::Message::Text(t) = &message {
                assert_ne!(t.as_ref() as &str, "boom", "engine handler boom");
            }
            let _ = ctx.server.send_message(conn, message);
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let engine = io.clone();
        tokio::spawn(async move { engine.serve(listener, std::future::pending()).await });
        let mut victim = ws_connect_raw(addr).await;
        let mut bystander = ws_connect_raw(addr).await;
        victim.send(WsMessage::text("4boom")).await.unwrap();
        // The victim's connection is closed; the driver goes on for the other.
        let closed = timeout(Duration::from_secs(5), async {
            loop {
                match victim.next().await {
                    None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))) => break,
                    Some(Ok(_)) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "the panicking connection stayed open");
        bystander.send(WsMessage::text("4hello")).await.unwrap();
        assert_eq!(next_text(&mut bystander).await, "4hello");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_namespace_filter_or_disconnect_handler_is_contained() {
    timeout(LIMIT, async {
        let io = echo_server(Options::default());
        io.parent_namespace(|name| {
            assert!(name != "/explode", "filter boom");
            name.starts_with("/dyn-")
        });
        io.of("/")
            .on_disconnect(|_, _| async move { panic!("disconnect boom") });
        let addr = serve(&io).await;
        let mut a = ws_connect(addr, "/").await;
        // The filter's panic counts as "no such namespace".
        a.send(WsMessage::text("40/explode,")).await.unwrap();
        let refused = next_text(&mut a).await;
        assert!(refused.starts_with("44/explode,"), "{refused}");
        let _dyn = ws_connect(addr, "/dyn-1").await;
        // A disconnect handler's panic ends nothing else.
        a.send(WsMessage::text("41")).await.unwrap();
        let mut b = ws_connect(addr, "/").await;
        b.send(WsMessage::text(r#"421["echo",1]"#)).await.unwrap();
        assert_eq!(next_text(&mut b).await, "431[1]");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_slot_queues_slow_the_input_and_lose_nothing() {
    timeout(LIMIT, async {
        // Every bound at its smallest: readers wait for the driver, nothing is dropped.
        let io = echo_server({
            let mut c = Options::default();
            c.input_queue = 1;
            c.call_queue = 1;
            c.socket_queue = 1;
            c.socket_queue_bytes = 1;
            c
        });
        let addr = serve(&io).await;
        let mut clients = Vec::new();
        for c in 0..20u64 {
            clients.push(tokio::spawn(async move {
                let mut ws = ws_connect(addr, "/").await;
                for i in 0..50u64 {
                    let msg = format!(r#"42{i}["echo",{c},{i}]"#);
                    ws.send(WsMessage::text(msg)).await.unwrap();
                }
                for i in 0..50u64 {
                    assert_eq!(next_text(&mut ws).await, format!("43{i}[{c},{i}]"));
                }
            }));
        }
        for c in clients {
            c.await.unwrap();
        }
        assert_eq!(io.refused_calls(), 0);
    })
    .await
    .unwrap();
}

// ---- The WebSocket write path ----------------------------------------------------------------

/// A server whose `flood` handler broadcasts `n` events of `len` bytes to every other socket,
/// volatile or not, in bursts of 100 a millisecond apart (so a client that reads keeps up),
/// and whose disconnections are recorded with their reason.
fn flood_server(options: Options) -> (SocketIo, Arc<Mutex<Vec<roomcast::DisconnectReason>>>) {
    let io: SocketIo = SocketIo::new(Config::default(), options);
    let gone = Arc::new(Mutex::new(Vec::new()));
    let g = gone.clone();
    io.of("/")
        .on("flood", |socket, msg| async move {
            let (n, len, volatile): (usize, usize, bool) = msg.args().unwrap();
            let body = "x".repeat(len);
            for i in 0..n {
                if i % 100 == 99 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                // Retried while the call queue is full: every event must be emitted.
                loop {
                    let op = socket.broadcast();
                    let op = if volatile { op.volatile() } else { op };
                    match op.emit("news", &(i, &body)) {
                        Err(CallError::Full) => tokio::task::yield_now().await,
                        r => break r.unwrap(),
                    }
                }
            }
            msg.ack(&("done",));
        })
        .on_disconnect(move |_, reason| {
            let g = g.clone();
            async move { g.lock().unwrap().push(reason) }
        });
    (io, gone)
}

/// The numbers of the next `n` `news` events, in arrival order.
async fn news(ws: &mut Ws, n: usize) -> Vec<usize> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let t = next_text(ws).await;
        let args: (String, usize, String) = serde_json::from_str(t.get(2..).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{t}: {e}"));
        got.push(args.1);
    }
    got
}

/// The numbers of the `news` events that arrive until none has for `quiet`.
async fn news_until_quiet(ws: &mut Ws, quiet: Duration) -> Vec<usize> {
    let mut got = Vec::new();
    while let Ok(Some(Ok(m))) = timeout(quiet, ws.next()).await {
        if let WsMessage::Text(t) = m {
            if let Some(json) = t.as_str().strip_prefix("42") {
                let (_, i, _): (String, usize, String) = serde_json::from_str(json).unwrap();
                got.push(i);
            } else if t.as_str() == "2" {
                ws.send(WsMessage::text("3")).await.unwrap();
            }
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_and_the_others_get_everything_in_order() {
    timeout(LIMIT, async {
        let mut options = Options::default();
        options.ws_queue = 1024;
        let (io, gone) = flood_server(options);
        let addr = serve(&io).await;
        let mut publisher = ws_connect(addr, "/").await;
        let mut reader = ws_connect(addr, "/").await;
        // Connected, then never read again: TCP fills, then its queue.
        let stalled = ws_connect(addr, "/").await;
        // 20 MB: more than loopback TCP buffers and the queue hold.
        let n = 20_000;
        publisher
            .send(WsMessage::text(format!(r#"421["flood",{n},1024,false]"#)))
            .await
            .unwrap();
        assert_eq!(news(&mut reader, n).await, (0..n).collect::<Vec<_>>());
        assert_eq!(next_text(&mut publisher).await, r#"431["done"]"#);
        wait_for("the stalled client's disconnection", || {
            gone.lock()
                .unwrap()
                .contains(&roomcast::DisconnectReason::SlowConsumer)
        })
        .await;
        assert_eq!(
            gone.lock().unwrap().len(),
            1,
            "only the stalled client is gone"
        );
        drop(stalled);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volatile_events_skip_a_blocked_client_instead_of_closing_it() {
    timeout(LIMIT, async {
        let mut options = Options::default();
        options.ws_queue = 64;
        let (io, gone) = flood_server(options);
        let addr = serve(&io).await;
        let mut publisher = ws_connect(addr, "/").await;
        let mut stalled = ws_connect(addr, "/").await;
        let n = 20_000;
        publisher
            .send(WsMessage::text(format!(r#"421["flood",{n},1024,true]"#)))
            .await
            .unwrap();
        assert_eq!(next_text(&mut publisher).await, r#"431["done"]"#);
        // Still connected: what reached it (TCP's buffers, then its queue) is in order, and
        // the rest was skipped.
        let got = news_until_quiet(&mut stalled, Duration::from_millis(500)).await;
        assert!(!got.is_empty());
        assert!(got.windows(2).all(|w| w[1] > w[0]), "out of order: {got:?}");
        assert!(got.len() < n, "nothing was skipped");
        assert!(
            gone.lock().unwrap().is_empty(),
            "closed: {:?}",
            gone.lock().unwrap()
        );
        // And it is still served.
        stalled
            .send(WsMessage::text(r#"421["flood",1,10,false]"#))
            .await
            .unwrap();
        let t = loop {
            let t = next_text(&mut publisher).await;
            if t.starts_with(r#"42["news""#) {
                break t;
            }
        };
        assert_eq!(t, r#"42["news",0,"xxxxxxxxxx"]"#);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn frames_larger_than_the_socket_takes_at_once_arrive_whole() {
    timeout(LIMIT, async {
        let (io, _) = flood_server(Options::default());
        let addr = serve(&io).await;
        let mut publisher = ws_connect(addr, "/").await;
        let mut reader = ws_connect(addr, "/").await;
        let (n, len) = (40, 300_000);
        publisher
            .send(WsMessage::text(format!(r#"421["flood",{n},{len},false]"#)))
            .await
            .unwrap();
        for i in 0..n {
            let t = next_text(&mut reader).await;
            let (_, got, body): (String, usize, String) = serde_json::from_str(&t[2..]).unwrap();
            assert_eq!((got, body.len()), (i, len));
            assert!(body.bytes().all(|b| b == b'x'));
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn pings_are_answered_and_a_client_close_is_answered_then_the_connection_ends() {
    timeout(LIMIT, async {
        let io = echo_server(Options::default());
        let addr = serve(&io).await;
        let mut ws = ws_connect(addr, "/").await;
        ws.send(WsMessage::Ping(bytes::Bytes::from_static(b"are you there")))
            .await
            .unwrap();
        let pong = loop {
            match timeout(Duration::from_secs(5), ws.next()).await.unwrap() {
                Some(Ok(WsMessage::Pong(p))) => break p,
                Some(Ok(_)) => continue,
                other => panic!("no pong: {other:?}"),
            }
        };
        assert_eq!(&pong[..], b"are you there");
        ws.close(None).await.unwrap();
        // The server's close frame, then the end of the stream.
        let mut closed = false;
        while let Some(m) = timeout(Duration::from_secs(5), ws.next()).await.unwrap() {
            match m {
                Ok(WsMessage::Close(_)) => closed = true,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        assert!(closed, "no close frame from the server");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn frames_sent_with_the_upgrade_request_are_read() {
    timeout(LIMIT, async {
        let io = echo_server(Options::default());
        let addr = serve(&io).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        // The upgrade request and a CONNECT frame in one write: hyper reads both, and hands
        // the frame over with the socket.
        let mut bytes = format!(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {addr}\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        .into_bytes();
        let key = [9, 8, 7, 6];
        bytes.extend_from_slice(&[0x81, 0x82]);
        bytes.extend_from_slice(&key);
        bytes.extend(b"40".iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
        s.write_all(&bytes).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0; 4096];
        while !String::from_utf8_lossy(&got).contains("40{\"sid\"") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&got).to_lowercase();
        assert!(
            text.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
            "{text}"
        );
    })
    .await
    .unwrap();
}

/// A server handing each socket of `/` to the test, which registers and removes its listeners.
fn socket_server() -> (SocketIo, tokio::sync::mpsc::UnboundedReceiver<Socket<()>>) {
    let io: SocketIo = SocketIo::new(Config::default(), Options::default());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    io.of("/")
        .on_connection(move |socket| {
            let _ = tx.send(socket);
            async {}
        })
        .on("echo", |_, msg| async move { msg.ack(&msg.args_raw()) });
    (io, rx)
}

#[tokio::test]
async fn listeners_come_off_by_id_by_name_or_all_and_may_remove_themselves() {
    timeout(LIMIT, async {
        let (io, mut sockets) = socket_server();
        let addr = serve(&io).await;
        let mut ws = ws_connect(addr, "/").await;
        let socket = sockets.recv().await.unwrap();
        assert!(socket.event_names().is_empty());
        assert!(socket.off(socket.on("x", |_, _| async {})));
        assert!(
            socket.event_names().is_empty(),
            "an event goes with its last listener"
        );

        let own: Arc<Mutex<Option<ListenerId>>> = Arc::default();
        let o = own.clone();
        let first = socket.on("tick", move |s, _| {
            let id = o.lock().unwrap().take();
            assert!(
                id.is_some_and(|id| s.off(id)),
                "it removes itself as it runs"
            );
            let _ = s.emit("got", &("self-removing",));
            async {}
        });
        *own.lock().unwrap() = Some(first);
        socket.on("tick", |s, _| async move {
            let _ = s.emit("got", &("staying",));
        });
        socket.once("tick", |s, _| async move {
            let _ = s.emit("got", &("once",));
        });
        socket.on("sync", |_, msg| async move { msg.ack(&()) });
        assert_eq!(socket.listener_count("tick"), 3);
        assert_eq!(socket.event_names(), ["sync", "tick"]);

        ws.send(WsMessage::text(r#"42["tick"]"#)).await.unwrap();
        for what in ["self-removing", "staying", "once"] {
            assert_eq!(next_text(&mut ws).await, format!(r#"42["got","{what}"]"#));
        }
        assert_eq!(socket.listener_count("tick"), 1);
        assert!(!socket.off(first));
        ws.send(WsMessage::text(r#"42["tick"]"#)).await.unwrap();
        ws.send(WsMessage::text(r#"421["sync"]"#)).await.unwrap();
        assert_eq!(next_text(&mut ws).await, r#"42["got","staying"]"#);
        assert_eq!(next_text(&mut ws).await, "431[]");

        socket.on("order", |s, _| async move {
            let _ = s.emit("got", &(2,));
        });
        socket.prepend_listener("order", |s, _| async move {
            let _ = s.emit("got", &(1,));
        });
        ws.send(WsMessage::text(r#"42["order"]"#)).await.unwrap();
        assert_eq!(next_text(&mut ws).await, r#"42["got",1]"#);
        assert_eq!(next_text(&mut ws).await, r#"42["got",2]"#);
        socket.off_event("order");

        // `prepend_*` run first; `off_any*` remove them all, so emits are no longer decoded.
        let order: Arc<Mutex<Vec<String>>> = Arc::default();
        let entry = |tag: &'static str| {
            let order = order.clone();
            move |e: &roomcast::packet::Event| {
                order.lock().unwrap().push(format!("{tag} {}", e.name()));
            }
        };
        socket.on_any_outgoing(entry("out-2"));
        let out_1 = socket.prepend_any_outgoing(entry("out-1"));
        socket.on_any(entry("in-2"));
        let in_1 = socket.prepend_any(entry("in-1"));
        assert_eq!(socket.listeners_any()[0], in_1);
        assert_eq!(socket.listeners_any_outgoing()[0], out_1);
        socket.emit("out", &()).unwrap();
        assert_eq!(next_text(&mut ws).await, r#"42["out"]"#);
        ws.send(WsMessage::text(r#"421["sync"]"#)).await.unwrap();
        assert_eq!(next_text(&mut ws).await, "431[]");
        let seen = ["out-1 out", "out-2 out", "in-1 sync", "in-2 sync"];
        assert_eq!(*order.lock().unwrap(), seen);
        socket.off_any().off_any_outgoing();
        assert!(socket.listeners_any().is_empty() && socket.listeners_any_outgoing().is_empty());
        socket.emit("out", &()).unwrap();
        ws.send(WsMessage::text(r#"421["sync"]"#)).await.unwrap();
        assert_eq!(next_text(&mut ws).await, r#"42["out"]"#);
        assert_eq!(next_text(&mut ws).await, "431[]");
        assert_eq!(*order.lock().unwrap(), seen);

        // The names Node's socket emits itself count as its listeners'.
        socket.on_disconnect(|_, _| async {});
        assert_eq!(socket.event_names(), ["sync", "tick", "disconnect"]);
        socket.off_event("tick").off_event("disconnect");
        assert_eq!(socket.event_names(), ["sync"]);
        socket.on_error(|_, _| async {});
        socket.remove_all_listeners();
        assert!(socket.event_names().is_empty());
        ws.send(WsMessage::text(r#"421["sync"]"#)).await.unwrap();
        ws.send(WsMessage::text(r#"422["echo"]"#)).await.unwrap();
        // No answer to `sync` any more; the namespace's listener stays.
        assert_eq!(next_text(&mut ws).await, "432[]");
    })
    .await
    .unwrap();
}
