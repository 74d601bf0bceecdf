//! One node of a Socket.IO cluster over Redis (docs/EXAMPLES.md, "cluster"): roomcast nodes
//! and Node `socket.io` nodes with `@socket.io/redis-adapter` side by side, as one server.
//!
//! ```text
//! PORT=3301 REDIS_URL=redis://127.0.0.1:6379 cargo run --release --features redis --example cluster
//! ```
//!
//! Every client event carries an ack; the node answers with what the operation did, or
//! `{ error }`. Payloads travel as value trees with binary leaves (`rmpv`), so binary, floats
//! and UTF-8 reach clients on every node unchanged.

mod common;

use rmpv::Value;
use roomcast::cluster::adapter::Protocol;
use roomcast::cluster::value::{from_payload, ClusterArgs};
use roomcast::io::redis::{RedisAdapter, RedisAdapterOptions};
use roomcast::io::tokio::{BroadcastOp, Message, Options, RemoteSocket, Socket, SocketIo};
use roomcast::packet::Payload;
use roomcast::Config;
use serde::{Serialize, Serializer};
use std::time::Duration;

/// `socket.data`: the node that accepted the socket (with recovery, the node it came back on).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
struct NodeData {
    node: String,
}

type Io = SocketIo<NodeData>;

/// Arguments as value trees (binary leaves become attachments).
struct Args(Vec<Value>);

impl Serialize for Args {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ClusterArgs(&self.0).serialize(s)
    }
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_map()?
        .iter()
        .find_map(|(k, x)| (k.as_str() == Some(key)).then_some(x))
}

/// A room name: a string, or a number in its JS string form.
fn room_name(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => s.as_str().map(str::to_owned),
        Value::Integer(i) => Some(i.to_string()),
        Value::F64(f) => Some(f.to_string()),
        _ => None,
    }
}

/// A room or a list of rooms; absent means none.
fn rooms(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items.iter().filter_map(room_name).collect(),
        Some(v) => room_name(v).into_iter().collect(),
        None => Vec::new(),
    }
}

/// The JS default sort: by string form.
fn sorted(mut values: Vec<Value>) -> Vec<Value> {
    let key = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    values.sort_by_key(key);
    values
}

fn strings(items: impl IntoIterator<Item = String>) -> Value {
    Value::Array(items.into_iter().map(Value::from).collect())
}

/// The first argument of a received event or ack, binary included.
fn first_arg(p: &Payload, skip_name: bool) -> Value {
    match from_payload(p) {
        Ok(Value::Array(mut items)) => {
            let i = usize::from(skip_name);
            if items.len() > i {
                items.swap_remove(i)
            } else {
                Value::Nil
            }
        }
        _ => Value::Nil,
    }
}

fn error(message: impl ToString) -> Value {
    map(vec![("error", Value::from(message.to_string()))])
}

fn err_or_nil<E: ToString>(e: Option<E>) -> Value {
    e.map_or(Value::Nil, |e| Value::from(e.to_string()))
}

/// `(local ? nsp.local : nsp).to(rooms).except(except)`, or from the socket itself.
fn select(op: BroadcastOp<NodeData>, arg: &Value) -> BroadcastOp<NodeData> {
    let mut op = op;
    if get(arg, "local").and_then(Value::as_bool) == Some(true) {
        op = op.local();
    }
    for r in rooms(get(arg, "rooms")) {
        op = op.to(r);
    }
    for e in rooms(get(arg, "except")) {
        op = op.except(e);
    }
    op
}

/// The socket's rooms, sorted, its own id left out.
async fn own_rooms(socket: &Socket<NodeData>) -> Value {
    let mut rooms: Vec<String> = socket
        .rooms()
        .await
        .into_iter()
        .map(|r| r.to_string())
        .filter(|r| r != socket.id())
        .collect();
    rooms.sort();
    strings(rooms)
}

fn describe(s: &RemoteSocket<NodeData>) -> (String, Value) {
    let data: Value = s.data().unwrap_or(Value::Nil);
    let node = get(&data, "node").cloned().unwrap_or(Value::Nil);
    let name = s.handshake()["auth"]["name"]
        .as_str()
        .map_or(Value::Nil, Value::from);
    let mut rooms: Vec<String> = s.rooms().iter().filter(|r| *r != s.id()).cloned().collect();
    rooms.sort();
    let v = map(vec![
        ("id", Value::from(s.id())),
        ("node", node),
        ("name", name),
        ("rooms", strings(rooms)),
    ]);
    (s.id().to_owned(), v)
}

/// One client event: what the node does, and its answer.
async fn handle(
    io: Io,
    name: String,
    sharded: bool,
    socket: Socket<NodeData>,
    event: &str,
    arg: Value,
) -> Value {
    let nsp = socket.namespace().to_owned();
    match event {
        "whoami" => map(vec![
            ("node", Value::from(name)),
            ("id", Value::from(socket.id())),
            ("nsp", Value::from(nsp)),
        ]),
        "join" | "leave" => {
            for r in rooms(Some(&arg)) {
                if event == "join" {
                    socket.join(r);
                } else {
                    socket.leave(r);
                }
            }
            own_rooms(&socket).await
        }
        "to" | "broadcast" => {
            let base = if event == "to" {
                io.of(&nsp).broadcast()
            } else {
                socket.broadcast()
            };
            let payload = get(&arg, "payload").cloned().unwrap_or(Value::Nil);
            match select(base, &arg).emit("msg", &Args(vec![payload])) {
                Ok(()) => Value::from(true),
                Err(e) => error(e),
            }
        }
        "fetch" => match select(io.of(&nsp).broadcast(), &arg).fetch_sockets().await {
            Ok(sockets) => {
                let mut list: Vec<(String, Value)> = sockets.iter().map(describe).collect();
                list.sort_by(|a, b| a.0.cmp(&b.0));
                Value::Array(list.into_iter().map(|(_, v)| v).collect())
            }
            Err(e) => error(e),
        },
        "sockets-join" | "sockets-leave" => {
            let key = if event == "sockets-join" {
                "join"
            } else {
                "leave"
            };
            for room in rooms(get(&arg, key)) {
                let op = select(io.of(&nsp).broadcast(), &arg);
                if key == "join" {
                    op.sockets_join(&room).await;
                } else {
                    op.sockets_leave(&room).await;
                }
            }
            Value::from(true)
        }
        "server-emit" => {
            let payload = get(&arg, "payload").cloned().unwrap_or(Value::Nil);
            match io.server_side_emit(&nsp, "cluster-ping", Args(vec![payload])) {
                Ok(()) => Value::from(true),
                Err(e) => error(e),
            }
        }
        "server-emit-ack" => {
            let payload = get(&arg, "payload").cloned().unwrap_or(Value::Nil);
            match io
                .server_side_emit_with_ack(&nsp, "cluster-ask", Args(vec![payload]))
                .await
            {
                Ok(r) => {
                    let responses = r.responses.iter().map(|p| first_arg(p, false)).collect();
                    map(vec![
                        ("err", err_or_nil(r.error)),
                        ("responses", Value::Array(sorted(responses))),
                    ])
                }
                Err(e) => error(e),
            }
        }
        "broadcast-ack" => {
            let question = get(&arg, "question").cloned().unwrap_or(Value::Nil);
            let timeout = get(&arg, "timeout").and_then(Value::as_u64).unwrap_or(5000);
            let replies = select(io.of(&nsp).broadcast(), &arg)
                .timeout(Duration::from_millis(timeout))
                .emit_with_ack("question", Args(vec![question]))
                .await;
            let responses = replies.all().map(|p| first_arg(p, false)).collect();
            let err = replies.timed_out.then_some("operation has timed out");
            map(vec![
                ("err", err_or_nil(err)),
                ("responses", Value::Array(sorted(responses))),
            ])
        }
        "all-rooms" if sharded => error("unsupported"),
        "all-rooms" => match io.all_rooms(&nsp).await {
            Ok(Ok(rooms)) => map(vec![("rooms", strings(rooms))]),
            Ok(Err(e)) => error(e),
            Err(e) => error(e),
        },
        other => error(format!("unknown event {other}")),
    }
}

fn on_event(io: &Io, nsp: &str, event: &'static str, name: &str, sharded: bool) {
    let (io2, name) = (io.clone(), name.to_owned());
    io.of(nsp).on(event, move |socket, msg: Message<NodeData>| {
        let (io, name) = (io2.clone(), name.clone());
        async move {
            let arg = first_arg(msg.event.data(), true);
            if event == "disconnect-sockets" {
                // Acked first: the client may be among those disconnected.
                msg.ack(&Args(vec![Value::from(true)]));
                let close = get(&arg, "close").and_then(Value::as_bool).unwrap_or(false);
                select(io.of(socket.namespace()).broadcast(), &arg)
                    .disconnect_sockets(close)
                    .await;
                return;
            }
            // What waits for the other nodes runs beside the socket's next events, as a Node
            // handler does.
            let answer = handle(io, name, sharded, socket, event, arg).await;
            msg.ack(&Args(vec![answer]));
        }
    });
}

const EVENTS: &[&str] = &[
    "whoami",
    "join",
    "leave",
    "to",
    "broadcast",
    "fetch",
    "sockets-join",
    "sockets-leave",
    "disconnect-sockets",
    "server-emit",
    "server-emit-ack",
    "broadcast-ack",
    "all-rooms",
];

#[tokio::main]
async fn main() -> std::io::Result<()> {
    common::init_tracing();
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let protocol = match std::env::var("ADAPTER").as_deref() {
        Ok("classic") | Err(_) => Protocol::Classic,
        Ok("sharded") => Protocol::Sharded,
        Ok("streams") => Protocol::Streams,
        Ok(other) => {
            eprintln!("cluster: unknown ADAPTER {other:?}");
            std::process::exit(2);
        }
    };
    // `ClusterAdapter` protocols have no `allRooms`.
    let sharded = protocol != Protocol::Classic;
    let name = port.clone();
    let mut config = Config::default();
    // Streams: connection state recovery on, as `@socket.io/redis-streams-adapter` is used.
    if protocol == Protocol::Streams {
        let ms = match std::env::var("RECOVERY_MS").map(|v| v.parse::<u64>()) {
            Err(_) => 30_000,
            Ok(Ok(ms)) if ms > 0 => ms,
            Ok(_) => {
                eprintln!("cluster: RECOVERY_MS must be a positive number of milliseconds");
                std::process::exit(2);
            }
        };
        let mut r = roomcast::RecoveryConfig::default();
        r.max_disconnection_duration = Duration::from_millis(ms);
        r.skip_middlewares = true;
        config.recovery = Some(r);
    }
    let io: Io = SocketIo::new(config, Options::default());
    for nsp in ["/", "/chat"] {
        let node = name.clone();
        io.of(nsp).auth(move |_auth| {
            let node = node.clone();
            async move { Ok(NodeData { node }) }
        });
        for &event in EVENTS {
            on_event(&io, nsp, event, &name, sharded);
        }
        // As Node's connection handler runs again on recovery: the socket is this node's now.
        let (io2, node) = (io.clone(), name.clone());
        io.of(nsp).on_connection(move |socket| {
            if socket.recovered() {
                let (h, node) = (socket.handle(), node.clone());
                let _ = io2.call(move |ctx| {
                    if let Some(d) = ctx.server.data_mut(h) {
                        d.node = node;
                    }
                });
            }
            async {}
        });
        let (io2, node) = (io.clone(), name.clone());
        io.of(nsp).on_server_side("cluster-ping", move |m| {
            let payload = first_arg(m.event().data(), true);
            let ping = map(vec![
                ("node", Value::from(node.as_str())),
                ("payload", payload),
            ]);
            let _ = io2
                .of(m.namespace())
                .local()
                .emit("server-ping", &Args(vec![ping]));
            async {}
        });
        let node = name.clone();
        io.of(nsp).on_server_side("cluster-ask", move |m| {
            let _ = m.ack(&node);
            async {}
        });
    }
    // Subscribed before listening: a node that accepts connections is counted by the others.
    let mut options = RedisAdapterOptions::new(url);
    options.cluster.protocol = protocol;
    let adapter = RedisAdapter::attach(&io, options)
        .await
        .map_err(std::io::Error::other)?;
    let listener = common::listener().await?;
    let served = io.serve(listener, common::shutdown_signal()).await;
    adapter.close().await;
    served
}
