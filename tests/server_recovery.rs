//! Connection state recovery on the virtual clock: the reference's edge cases
//! (`shared/protocols/recovery.md` §1.4), what is never replayed, and the bounds at their edges.

mod common;

use common::Net;
use roomcast::{Config, DisconnectReason, Event, RecoveryConfig, SocketHandle};
use serde_json::Value;
use std::time::Duration;

fn config(f: impl FnOnce(&mut RecoveryConfig)) -> Config {
    let mut r = RecoveryConfig::default();
    r.max_disconnection_duration = Duration::from_secs(60);
    f(&mut r);
    let mut c = Config::default();
    c.recovery = Some(r);
    c
}

/// A client of one namespace over WebSocket.
struct Client {
    conn: roomcast::ConnectionHandle,
    socket: SocketHandle,
    sid: String,
    pid: Option<String>,
    /// The last offset received (the last string argument of the last event).
    offset: Option<String>,
    /// Events received: name and arguments, the offset stripped.
    got: Vec<(String, Vec<Value>)>,
}

/// The CONNECT reply's JSON, from `40{...}` / `40/nsp,{...}`.
fn connect_reply(text: &str) -> Option<Value> {
    let body = text.strip_prefix("40")?;
    let json = if body.starts_with('/') {
        &body[body.find(',')? + 1..]
    } else {
        body
    };
    serde_json::from_str(json).ok()
}

fn connect(net: &mut Net, nsp: &str, auth: Option<Value>) -> Client {
    let conn = net.ws_connect();
    connect_on(net, conn, nsp, auth)
}

fn connect_packet(nsp: &str, auth: Option<&Value>) -> String {
    let head = if nsp == "/" {
        "40".to_owned()
    } else {
        format!("40{nsp},")
    };
    match auth {
        Some(a) => format!("{head}{a}"),
        None => head,
    }
}

/// Sends a CONNECT and accepts it if the application is asked.
fn connect_on(
    net: &mut Net,
    conn: roomcast::ConnectionHandle,
    nsp: &str,
    auth: Option<Value>,
) -> Client {
    net.ws_send(conn, &connect_packet(nsp, auth.as_ref()));
    if net
        .events
        .iter()
        .any(|e| matches!(e, Event::ConnectRequest { .. }))
    {
        let (request, _, _) = net.take_connect_request();
        net.server.accept(request, 1).unwrap();
        net.drain();
    }
    let mut c = Client {
        conn,
        socket: SocketHandle::clone(&connected(net).0),
        sid: String::new(),
        pid: None,
        offset: None,
        got: Vec::new(),
    };
    read(net, &mut c);
    c
}

/// The socket of the last `Connected` event, and whether it was recovered.
fn connected(net: &mut Net) -> (SocketHandle, bool) {
    let i = net
        .events
        .iter()
        .rposition(|e| matches!(e, Event::Connected { .. }))
        .expect("connected");
    match net.events.remove(i) {
        Event::Connected {
            socket, recovered, ..
        } => (socket, recovered),
        _ => unreachable!(),
    }
}

/// Reads what the client was sent: events (offsets taken off) and the CONNECT reply.
fn read(net: &mut Net, c: &mut Client) -> Vec<String> {
    let texts = net.take_text(c.conn);
    for t in &texts {
        if let Some(reply) = connect_reply(t) {
            c.sid = reply["sid"].as_str().unwrap().to_owned();
            c.pid = reply.get("pid").and_then(Value::as_str).map(str::to_owned);
            continue;
        }
        let Some(at) = t.find('[') else { continue };
        let Ok(Value::Array(mut items)) = serde_json::from_str::<Value>(&t[at..]) else {
            continue;
        };
        // `42[`/`42/nsp,[` without an ack id carry the offset when recovery is on.
        let head = &t[2..at];
        let head = head.split_once('-').map_or(head, |(_, h)| h);
        let head = head.rsplit_once(',').map_or(head, |(_, h)| h);
        let acked = !head.is_empty();
        if c.pid.is_some() && !acked {
            if let Some(Value::String(o)) = items.last() {
                c.offset = Some(o.clone());
                items.pop();
            }
        }
        let name = items.remove(0).as_str().unwrap().to_owned();
        c.got.push((name, items));
    }
    texts
}

fn names(c: &Client) -> Vec<&str> {
    c.got.iter().map(|(n, _)| n.as_str()).collect()
}

fn auth_of(c: &Client) -> Value {
    serde_json::json!({"pid": c.pid, "offset": c.offset})
}

/// Drops a client's transport abruptly (`transport close`).
fn drop_transport(net: &mut Net, c: &Client) {
    net.server.handle_ws_closed(net.now, c.conn);
    net.drain();
}

#[test]
fn restores_the_session_and_the_missed_packets_in_order_before_the_connect_reply() {
    let mut net = Net::new(config(|_| {}));
    let root = net.server.namespace("/").unwrap();
    let mut a = connect(&mut net, "/", None);
    assert!(a.pid.is_some());
    net.server.join(a.socket, "room1").unwrap();
    net.server
        .to_namespace(root)
        .emit("hello", &("init",))
        .unwrap();
    net.drain();
    read(&mut net, &mut a);
    assert!(a.offset.is_some());
    drop_transport(&mut net, &a);

    net.server.to_namespace(root).emit("hello1", &()).unwrap();
    net.server
        .to_namespace(root)
        .to("room1")
        .emit("hello2", &())
        .unwrap();
    // An emit to the old socket id as a room reaches the stored session too.
    net.server
        .to_namespace(root)
        .to(a.sid.as_str())
        .emit("hello3", &())
        .unwrap();
    net.drain();

    let conn = net.ws_connect();
    net.ws_send(conn, &connect_packet("/", Some(&auth_of(&a))));
    let texts = net.take_text(conn);
    assert_eq!(texts.len(), 4, "{texts:?}");
    for (t, name) in texts.iter().zip(["hello1", "hello2", "hello3"]) {
        assert!(t.starts_with(&format!("42[\"{name}\"")), "{t}");
    }
    assert_eq!(
        texts[3],
        format!(
            r#"40{{"sid":"{}","pid":"{}"}}"#,
            a.sid,
            a.pid.as_deref().unwrap()
        )
    );
    // Middlewares are skipped by default: no connect request was raised.
    assert!(!net
        .events
        .iter()
        .any(|e| matches!(e, Event::ConnectRequest { .. })));
    let (socket, recovered) = connected(&mut net);
    assert!(recovered);
    assert_eq!(net.server.sid(socket), Some(a.sid.as_str()));
    let rooms: Vec<String> = net
        .server
        .rooms_of(socket)
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(rooms, [a.sid.clone(), "room1".to_owned()]);
    assert_eq!(net.server.data(socket), Some(&1));
    // Each replayed packet kept its own offset, in order.
    let offsets: Vec<String> = texts[..3]
        .iter()
        .map(|t| {
            let v: Value = serde_json::from_str(&t[2..]).unwrap();
            v.as_array()
                .unwrap()
                .last()
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(offsets.len(), 3);
    assert!(offsets.windows(2).all(|w| w[0] != w[1]));
    net.server.check_invariants().unwrap();
}

#[test]
fn the_first_socket_is_not_recovered_and_rooms_and_data_come_back() {
    let mut net = Net::new(config(|_| {}));
    let conn = net.ws_connect();
    net.ws_send(conn, "40");
    let (request, _, _) = net.take_connect_request();
    assert!(!request.is_recovery());
    let s = net.server.accept(request, 42).unwrap();
    net.drain();
    let (_, recovered) = connected(&mut net);
    assert!(!recovered);
    let mut a = Client {
        conn,
        socket: s,
        sid: String::new(),
        pid: None,
        offset: None,
        got: vec![],
    };
    read(&mut net, &mut a);
    net.server.join(s, "room1").unwrap();
    net.server.join(s, "room2").unwrap();
    *net.server.data_mut(s).unwrap() = 43;
    net.server.emit(s, "hi", &()).unwrap();
    net.drain();
    read(&mut net, &mut a);
    drop_transport(&mut net, &a);
    let b = connect(&mut net, "/", Some(auth_of(&a)));
    assert_eq!(b.sid, a.sid);
    assert_eq!(b.pid, a.pid);
    assert_eq!(net.server.data(b.socket), Some(&43));
    let mut rooms: Vec<String> = net
        .server
        .rooms_of(b.socket)
        .iter()
        .map(|r| r.to_string())
        .collect();
    rooms.sort();
    let mut want = vec![a.sid.clone(), "room1".into(), "room2".into()];
    want.sort();
    assert_eq!(rooms, want);
}

#[test]
fn with_middlewares_not_skipped_the_application_decides_and_sees_the_restored_data() {
    let mut net = Net::new(config(|r| r.skip_middlewares = false));
    let root = net.server.namespace("/").unwrap();
    let mut a = connect(&mut net, "/", None);
    net.server.to_namespace(root).emit("x", &()).unwrap();
    net.drain();
    read(&mut net, &mut a);
    *net.server.data_mut(a.socket).unwrap() = 9;
    drop_transport(&mut net, &a);
    net.server.to_namespace(root).emit("missed", &()).unwrap();
    net.drain();
    let conn = net.ws_connect();
    net.ws_send(conn, &connect_packet("/", Some(&auth_of(&a))));
    // Nothing is sent before the decision.
    assert!(net.take_text(conn).is_empty());
    let i = net
        .events
        .iter()
        .position(|e| {
            matches!(
                e,
                Event::ConnectRequest {
                    recovering: true,
                    ..
                }
            )
        })
        .expect("a recovering connect request");
    let Event::ConnectRequest { request, .. } = net.events.remove(i) else {
        unreachable!()
    };
    assert!(request.is_recovery());
    assert_eq!(net.server.restored_data(&request), Some(&9));
    // Packets broadcast while the application decides are replayed too.
    net.server
        .to_namespace(root)
        .emit("meanwhile", &())
        .unwrap();
    let s = net.server.accept(request, 10).unwrap();
    net.drain();
    let (_, recovered) = connected(&mut net);
    assert!(recovered);
    assert_eq!(net.server.sid(s), Some(a.sid.as_str()));
    assert_eq!(net.server.data(s), Some(&10));
    let mut b = Client {
        conn,
        socket: s,
        sid: String::new(),
        pid: a.pid.clone(),
        offset: None,
        got: vec![],
    };
    let texts = read(&mut net, &mut b);
    assert_eq!(names(&b), ["missed", "meanwhile"], "{texts:?}");
    assert_eq!(b.sid, a.sid);

    // Rejected, the session is gone: it restores once.
    drop_transport(&mut net, &b);
    let conn = net.ws_connect();
    net.ws_send(conn, &connect_packet("/", Some(&auth_of(&b))));
    let (request, _, _) = net.take_connect_request();
    assert!(request.is_recovery());
    net.server.reject::<()>(request, "no", None).unwrap();
    net.drain();
    let c = connect(&mut net, "/", Some(auth_of(&b)));
    assert_ne!(c.sid, a.sid);
    assert!(net.server.pending_work() > 0);
}

#[test]
fn an_unknown_session_gets_a_normal_connect() {
    let mut net = Net::new(config(|_| {}));
    let conn = net.ws_connect();
    net.ws_send(conn, r#"40{"pid":"foo","offset":"bar"}"#);
    let (request, _, auth) = net.take_connect_request();
    assert!(!request.is_recovery());
    assert_eq!(auth.as_deref(), Some(r#"{"pid":"foo","offset":"bar"}"#));
    net.server.accept(request, 0).unwrap();
    net.drain();
    let reply = connect_reply(&net.take_text(conn)[0]).unwrap();
    assert_eq!(reply["sid"].as_str().unwrap().len(), 20);
    assert_eq!(reply["pid"].as_str().unwrap().len(), 20);
    assert_ne!(reply["pid"], "foo");
}

#[test]
fn disabled_by_default_no_pid_no_offset_and_auth_is_not_read() {
    let mut net = Net::new(Config::default());
    let root = net.server.namespace("/").unwrap();
    let mut a = connect(&mut net, "/", None);
    assert_eq!(a.pid, None);
    net.server.to_namespace(root).emit("hello", &(1,)).unwrap();
    net.server.emit(a.socket, "direct", &(2,)).unwrap();
    net.drain();
    let texts = read(&mut net, &mut a);
    assert_eq!(texts, [r#"42["hello",1]"#, r#"42["direct",2]"#]);
    assert_eq!(net.server.recovery_stats(), None);
    drop_transport(&mut net, &a);
    let auth = serde_json::json!({"pid": "x".repeat(20), "offset": "y"});
    let conn = net.ws_connect();
    net.ws_send(conn, &connect_packet("/", Some(&auth)));
    let (request, _, _) = net.take_connect_request();
    assert!(!request.is_recovery());
}

#[test]
fn what_is_never_replayed() {
    let mut net = Net::new(config(|_| {}));
    let chat = net.server.add_namespace("/chat").unwrap();
    let mut a = connect(&mut net, "/", None);
    let other = connect(&mut net, "/", None);
    net.server.join(a.socket, "r1").unwrap();
    net.server.join(a.socket, "r2").unwrap();
    net.server.emit(a.socket, "init", &()).unwrap();
    net.drain();
    read(&mut net, &mut a);
    drop_transport(&mut net, &a);
    let now = net.now;
    fn b(net: &mut Net) -> roomcast::Broadcast<'_, u32> {
        let root = net.server.namespace("/").unwrap();
        net.server.to_namespace(root)
    }
    b(&mut net).emit("all", &()).unwrap();
    b(&mut net).to("r1").emit("r1", &()).unwrap();
    b(&mut net).except("r3").emit("except-r3", &()).unwrap();
    b(&mut net).except("r2").emit("except-r2", &()).unwrap();
    b(&mut net).to("r9").emit("r9", &()).unwrap();
    b(&mut net).volatile().emit("volatile", &()).unwrap();
    b(&mut net)
        .emit_with_ack(now, "with-ack", &(), Duration::from_secs(1))
        .unwrap();
    net.server.to_namespace(chat).emit("chat", &()).unwrap();
    net.server
        .emit_with_ack(now, other.socket, "direct-ack", &(), Duration::from_secs(1))
        .unwrap();
    net.server
        .broadcast_from(other.socket)
        .unwrap()
        .emit("from-other", &())
        .unwrap();
    // From itself (by id, as another node would send it): excluded.
    b(&mut net)
        .except(a.sid.as_str())
        .emit("except-self", &())
        .unwrap();
    net.drain();
    let mut c = connect(&mut net, "/", Some(auth_of(&a)));
    c.pid = a.pid.clone();
    assert_eq!(c.sid, a.sid);
    assert_eq!(names(&c), ["all", "r1", "except-r3", "from-other"]);
}

#[test]
fn a_session_restores_once_and_nothing_to_restore_is_a_fresh_socket() {
    let mut net = Net::new(config(|_| {}));
    let root = net.server.namespace("/").unwrap();
    // No offset yet (no event received): nothing to recover, as in the reference.
    let a = connect(&mut net, "/", None);
    drop_transport(&mut net, &a);
    let b = connect(
        &mut net,
        "/",
        Some(serde_json::json!({"pid": a.pid.clone()})),
    );
    assert_ne!(b.sid, a.sid);
    assert_ne!(b.pid, a.pid);

    let mut c = connect(&mut net, "/", None);
    net.server.to_namespace(root).emit("e", &()).unwrap();
    net.drain();
    read(&mut net, &mut c);
    drop_transport(&mut net, &c);
    let d = connect(&mut net, "/", Some(auth_of(&c)));
    assert_eq!(d.sid, c.sid);
    drop_transport(&mut net, &d);
    net.advance(Duration::from_millis(1));
    // d's session is stored again (it dropped); c's offset is older but complete: restored.
    let e = connect(&mut net, "/", Some(auth_of(&c)));
    assert_eq!(e.sid, c.sid);
    // Presented again while e is live: e is closed first, and restored once more.
    let f = connect(&mut net, "/", Some(auth_of(&c)));
    assert_eq!(f.sid, c.sid);
    assert_eq!(net.is_closed(e.conn), Some(DisconnectReason::ForcedClose));
    assert_eq!(net.server.socket_count(), 2); // b and f
}
