//! The Node server API on roomcast, one feature per event: what `tests/interop/api.test.mjs`
//! checks with the official client (docs/EXAMPLES.md, `api_tour`).
//!
//! - Middleware (`io.use`): a client needs `?token=secret` in its query; refused, its
//!   `connect_error` says why, with data. Its name (the `x-user` header, else the `name`
//!   query parameter) becomes the socket's data.
//! - `whoami`: id, data, query, header, address, as the socket sees them.
//! - `rename`: sets the data; `whoami` at once sees it (no round trip).
//! - `join`, `rooms`; leaving, each room's other members get `left-room` from a
//!   `disconnecting` listener, which still sees the rooms.
//! - `on_any` counts a socket's events (`counted`); `on_any_outgoing` what is emitted to it
//!   (`outgoing`).
//! - Packet middleware (`socket.use`): `forbidden` never reaches a listener; the error goes
//!   to `socket.on("error")`, which tells the client (`error` event), as Node apps do.
//! - Two listeners of `twice`, one fallback for events nobody listens to.
//! - `ask-me`: the server asks the client back (`socket.timeout(ms).emitWithAck`), and answers
//!   with what came or `timeout`; `ask-all`: the same to everyone (`io.timeout(ms)`), answered
//!   with each reply's socket id.
//! - `slow` then `fast`: `slow` awaits 300 ms between two emits; `fast` is answered in between
//!   (listeners run concurrently; emits before the first await keep their order).
//! - `fetch`: `io.fetchSockets()`, then on each other socket `emit`, `join`; `kick` disconnects
//!   them (remote-socket operations).
//! - Child namespaces `/dyn-*` of a parent namespace greet with their name.
//! - The transport (`whoami`), and `upgraded` when the connection moves to WebSocket;
//!   `volatile` answers with a volatile emit to the socket alone.
//! - `room-log`: the room life-cycle events of `/` seen so far (`create-room`...).
//! - Removing a socket's listeners: `off-setup` registers two `off-ping` listeners and
//!   removes the first by its id (`off`), `off-event` all of an event's
//!   (`removeAllListeners(ev)`); `once-setup` a `knock` listener that answers once;
//!   `any-setup` `on_any` / `on_any_outgoing` listeners, some prepended, logging their order
//!   (`any-log`), which `off-any` removes (`offAny`, `offAnyOutgoing`).
//! - `ask-remote`: a fetched socket is asked (`remoteSocket.timeout(ms).emitWithAck`, or with
//!   no timeout); answered with what came, `timeout`, or the socket's departure.

mod common;

use roomcast::io::tokio::{Options, Rejection, RoomEvent, SocketIo};
use roomcast::Config;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Default, Serialize, Deserialize)]
struct User {
    name: String,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    common::init_tracing();
    let mut config = Config::default();
    config.room_events = true;
    let io: SocketIo<User> = SocketIo::new(config, Options::default());

    io.use_(|socket| async move {
        let h = socket.handshake();
        if h.query_param("token").as_deref() != Some("secret") {
            return Err(Rejection::new("bad token").with_data(json!({"hint": "token=secret"})));
        }
        let name = h.header("x-user").or_else(|| h.query_param("name"));
        socket.set_data(User {
            name: name.unwrap_or_default(),
        });
        Ok(())
    });

    let log: Arc<Mutex<Vec<Value>>> = Arc::default();
    let l = log.clone();
    let root = io.of("/");
    root.on_room_event(move |_, e| {
        let entry = match e {
            RoomEvent::Created { room, .. } => json!(["create-room", room.as_str()]),
            RoomEvent::Deleted { room, .. } => json!(["delete-room", room.as_str()]),
            RoomEvent::Joined { room, id, .. } => json!(["join-room", room.as_str(), id.as_str()]),
            RoomEvent::Left { room, id, .. } => json!(["leave-room", room.as_str(), id.as_str()]),
            _ => return,
        };
        l.lock().unwrap().push(entry);
    });

    root.on_connection(|socket| async move {
        socket.on_upgrade(|socket| async move {
            let _ = socket.emit("upgraded", &(socket.transport(),));
        });
        let counted = Arc::new(AtomicUsize::new(0));
        let c = counted.clone();
        socket.on_any(move |_| {
            c.fetch_add(1, Ordering::Relaxed);
        });
        let outgoing = Arc::new(AtomicUsize::new(0));
        let o = outgoing.clone();
        socket.on_any_outgoing(move |_| {
            o.fetch_add(1, Ordering::Relaxed);
        });
        socket.on("counted", move |_, msg| {
            let (c, o) = (counted.clone(), outgoing.clone());
            async move { msg.ack(&([c.load(Ordering::Relaxed), o.load(Ordering::Relaxed)],)) }
        });
        socket.use_(|_, event| async move {
            if event.name() == "forbidden" {
                return Err(Rejection::new("not allowed").with_data(json!({"event": "forbidden"})));
            }
            Ok(())
        });
        socket.on_error(|socket, err| async move {
            let _ = socket.emit(
                "error",
                &(json!({"message": err.message, "data": err.data}),),
            );
        });
        socket.on_disconnecting(|socket, _| async move {
            for room in socket.rooms().await {
                if room != socket.id() {
                    let _ = socket
                        .to(room.clone())
                        .emit("left-room", &(socket.id(), room.as_str()));
                }
            }
        });
    });

    root.on("whoami", |socket, msg| async move {
        let h = socket.handshake();
        msg.ack(&(json!({
            "id": socket.id(),
            "name": socket.data().name,
            "query": h.query_param("name"),
            "header": h.header("x-user"),
            "address": h.address(),
            "xdomain": h.xdomain(),
            "transport": socket.transport(),
        }),));
    })
    .on("rename", |socket, msg| async move {
        if let Ok((name,)) = msg.args::<(String,)>() {
            socket.with_data(|u| u.name = name);
            msg.ack(&(socket.data().name,));
        }
    })
    .on("join", |socket, msg| async move {
        if let Ok((room,)) = msg.args::<(String,)>() {
            socket.join(room);
            msg.ack(&(socket.rooms().await,));
        }
    })
    .on("forbidden", |_, msg| async move {
        msg.ack(&("reached a listener",))
    })
    .on("volatile", |socket, _| async move {
        let _ = socket.volatile().emit("volatile", &("to me alone",));
    })
    .on("twice", |socket, _| async move {
        let _ = socket.emit("twice", &("first",));
    })
    .on("twice", |socket, _| async move {
        let _ = socket.emit("twice", &("second",));
    })
    .on_fallback(|_, msg| async move {
        msg.ack(&("nobody listens to", msg.name()));
    })
    .on("ask-me", |socket, msg| async move {
        let (ms,): (u64,) = msg.args().unwrap_or((1000,));
        let answer = socket
            .timeout(Duration::from_millis(ms))
            .emit_with_ack("question", ("what?",))
            .await;
        match answer {
            Ok(p) => msg.ack(&(p.deserialize::<(Value,)>().map(|a| a.0).unwrap_or_default(),)),
            Err(e) => msg.ack(&(e.to_string(),)),
        }
    })
    .on("ask-all", |socket, msg| async move {
        let (ms,): (u64,) = msg.args().unwrap_or((1000,));
        let replies = socket
            .io()
            .timeout(Duration::from_millis(ms))
            .emit_with_ack("poll", ())
            .await;
        let answers: Vec<Value> = replies
            .local
            .iter()
            .map(|r| {
                let (answer,): (Value,) = r.args.deserialize().unwrap_or_default();
                json!({"id": r.id.as_str(), "answer": answer})
            })
            .collect();
        msg.ack(&(json!({"answers": answers, "timedOut": replies.timed_out}),));
    })
    .on("slow", |socket, _| async move {
        let _ = socket.emit("order", &("slow-start",));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = socket.emit("order", &("slow-end",));
    })
    .on("fast", |socket, _| async move {
        let _ = socket.emit("order", &("fast",));
    })
    .on("fetch", |socket, msg| async move {
        let Ok(sockets) = socket.io().of("/").broadcast().fetch_sockets().await else {
            return msg.ack(&("fetch failed",));
        };
        let mut seen = Vec::new();
        for s in sockets.iter().filter(|s| s.id() != socket.id()) {
            let _ = s.emit("fetched", &(socket.id(),));
            s.join("fetched").await;
            let name = s.data::<User>().map(|u| u.name).unwrap_or_default();
            seen.push(json!({"id": s.id(), "name": name, "rooms": s.rooms()}));
        }
        msg.ack(&(seen,));
    })
    .on("kick", |socket, msg| async move {
        let sockets = socket
            .io()
            .in_("fetched")
            .fetch_sockets()
            .await
            .unwrap_or_default();
        for s in &sockets {
            s.disconnect(false).await;
        }
        msg.ack(&(sockets.len(),));
    })
    .on("off-setup", |socket, msg| async move {
        // Two listeners of `off-ping`; the first comes off at once.
        let a = socket.on("off-ping", |socket, _| async move {
            let _ = socket.emit("off-pong", &("a",));
        });
        socket.on("off-ping", |socket, _| async move {
            let _ = socket.emit("off-pong", &("b",));
        });
        let removed = socket.off(a);
        msg.ack(&(json!({
            "removed": removed,
            "again": socket.off(a),
            "names": socket.event_names(),
        }),));
    })
    .on("off-event", |socket, msg| async move {
        let (name,): (String,) = msg.args().unwrap_or_default();
        socket.off_event(&name);
        msg.ack(&(socket.listener_count(&name),));
    })
    .on("listener-count", |socket, msg| async move {
        let (name,): (String,) = msg.args().unwrap_or_default();
        msg.ack(&(socket.listener_count(&name),));
    })
    .on("once-setup", |socket, msg| async move {
        let greeting = String::from("first knock");
        // An `FnOnce`: it may give away what it owns.
        socket.once("knock", move |_, msg| async move { msg.ack(&(greeting,)) });
        msg.ack(&(socket.listener_count("knock"),));
    })
    .on("any-setup", |socket, msg| async move {
        let log: Arc<Mutex<Vec<Value>>> = Arc::default();
        let entry = |tag: &'static str| {
            let log = log.clone();
            move |e: &roomcast::packet::Event| log.lock().unwrap().push(json!([tag, e.name()]))
        };
        socket.on_any(entry("second"));
        socket.prepend_any(entry("first"));
        socket.on_any(entry("third"));
        socket.on_any_outgoing(entry("out-second"));
        socket.prepend_any_outgoing(entry("out-first"));
        socket.on("any-log", move |_, msg| {
            let log = log.lock().unwrap().clone();
            async move { msg.ack(&(log,)) }
        });
        let _ = socket.emit("any-hello", &());
        msg.ack(&([
            socket.listeners_any().len(),
            socket.listeners_any_outgoing().len(),
        ],));
    })
    .on("off-any", |socket, msg| async move {
        socket.off_any().off_any_outgoing();
        let _ = socket.emit("any-hello", &());
        msg.ack(&([
            socket.listeners_any().len(),
            socket.listeners_any_outgoing().len(),
        ],));
    })
    .on("ask-remote", |socket, msg| async move {
        // The socket asked is fetched (as from any node), then asked through its handle.
        let (id, ms): (String, Option<u64>) = msg.args().unwrap_or_default();
        let fetched = socket.io().in_(id).fetch_sockets().await;
        let Some(remote) = fetched.ok().and_then(|s| s.into_iter().next()) else {
            return msg.ack(&("no such socket",));
        };
        let answer = match ms {
            Some(ms) => {
                remote
                    .timeout(Duration::from_millis(ms))
                    .emit_with_ack("question", ("remote?",))
                    .await
            }
            None => remote.emit_with_ack("question", ("remote?",)).await,
        };
        match answer {
            Ok(p) => msg.ack(&(p.deserialize::<(Value,)>().map(|a| a.0).unwrap_or_default(),)),
            Err(e) => msg.ack(&(e.to_string(),)),
        }
    })
    .on("room-log", move |_, msg| {
        let log = log.clone();
        async move {
            let (room,): (String,) = msg.args().unwrap_or_default();
            let entries: Vec<Value> = log
                .lock()
                .unwrap()
                .iter()
                .filter(|e| e[1] == room.as_str())
                .cloned()
                .collect();
            msg.ack(&(entries,));
        }
    });

    io.parent_namespace(|name| name.starts_with("/dyn-"))
        .on_connection(|socket| async move {
            let _ = socket.emit("hello", &(socket.namespace(),));
        });

    let listener = common::listener().await?;
    io.serve(listener, common::shutdown_signal()).await
}
