//! The server with `Config::parser = Parser::Msgpack`, on the virtual clock: CONNECT and its
//! reply (with `pid` when recovery is on), events and acks both ways, a broadcast written once
//! for every recipient, recovery's offsets as the last element of the data array and the replay
//! of missed packets, long-polling's `b<base64>` records, and a client speaking the default
//! parser closed.

mod common;

use bytes::Bytes;
use common::Net;
use rmpv::Value;
use roomcast::engine::Frame;
use roomcast::packet::{Encoded, Parser};
use roomcast::{Config, DisconnectReason, Event, RecoveryConfig, SocketHandle};

fn config(recovery: bool) -> Config {
    let mut c = Config::default();
    c.parser = Parser::Msgpack;
    if recovery {
        c.recovery = Some(RecoveryConfig::default());
    }
    c
}

fn s(x: &str) -> Value {
    Value::from(x)
}

fn packet(entries: Vec<(&str, Value)>) -> Vec<u8> {
    let mut b = Vec::new();
    let map = Value::Map(entries.into_iter().map(|(k, v)| (s(k), v)).collect());
    rmpv::encode::write_value(&mut b, &map).unwrap();
    b
}

fn read(b: &[u8]) -> Value {
    let mut rd = b;
    let v = rmpv::decode::read_value(&mut rd).unwrap();
    assert!(rd.is_empty());
    v
}

fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// The packets written to `conn`, each a msgpack map (no text frame may carry one).
fn packets(net: &mut Net, conn: roomcast::ConnectionHandle) -> Vec<Value> {
    net.take(conn)
        .into_iter()
        .filter_map(|f| match f {
            Frame::Binary(b) => Some(read(&b)),
            Frame::Text(t) => {
                assert!(!t.starts_with('4'), "a Socket.IO packet as text: {t}");
                None
            }
        })
        .collect()
}

/// Connects a WebSocket client to `/` with `auth`, accepts it; its CONNECT reply's data.
fn join(net: &mut Net, auth: Option<Value>) -> (roomcast::ConnectionHandle, SocketHandle, Value) {
    let conn = net.ws_connect();
    let mut entries = vec![("type", 0.into()), ("nsp", s("/"))];
    entries.push(("data", auth.unwrap_or(Value::Ext(0, vec![0]))));
    net.ws_send_binary(conn, &packet(entries));
    if let Some(i) = net
        .events
        .iter()
        .position(|e| matches!(e, Event::ConnectRequest { .. }))
    {
        let Event::ConnectRequest { request, .. } = net.events.remove(i) else {
            unreachable!()
        };
        net.server.accept(request, 1).unwrap();
        net.drain();
    }
    let i = net
        .events
        .iter()
        .rposition(|e| matches!(e, Event::Connected { .. }))
        .expect("connected");
    let Event::Connected { socket, .. } = net.events.remove(i) else {
        unreachable!()
    };
    let got = packets(net, conn);
    let reply = got
        .iter()
        .find(|p| field(p, "type") == Some(&0.into()))
        .expect("a CONNECT reply");
    assert_eq!(field(reply, "nsp"), Some(&s("/")));
    (conn, socket, field(reply, "data").unwrap().clone())
}

#[test]
fn connect_events_and_acks_both_ways() {
    let mut net = Net::new(config(false));
    let auth = Value::Map(vec![(s("token"), s("abc"))]);
    let conn = net.ws_connect();
    net.ws_send_binary(
        conn,
        &packet(vec![("type", 0.into()), ("data", auth), ("nsp", s("/"))]),
    );
    let Some(Event::ConnectRequest { request, auth, .. }) = net.take_events().into_iter().next()
    else {
        panic!("no connect request")
    };
    assert_eq!(auth.as_deref(), Some(r#"{"token":"abc"}"#));
    let socket = net.server.accept(request, 1).unwrap();
    net.drain();
    let reply = packets(&mut net, conn).remove(0);
    let data = field(&reply, "data").unwrap();
    assert!(field(data, "sid").unwrap().is_str());
    // No recovery, no `pid` (Node writes `pid: undefined`, read the same by the client).
    assert_eq!(field(data, "pid"), None);

    // An event with an ack id and binary, as the JS client writes it.
    net.ws_send_binary(
        conn,
        &packet(vec![
            ("type", 2.into()),
            (
                "data",
                Value::Array(vec![s("up"), Value::Binary(vec![1, 2, 3]), 7.into()]),
            ),
            ("options", Value::Map(vec![(s("compress"), true.into())])),
            ("id", 4.into()),
            ("nsp", s("/")),
        ]),
    );
    let Some(Event::Message { event, ack, .. }) = net
        .take_events()
        .into_iter()
        .find(|e| matches!(e, Event::Message { .. }))
    else {
        panic!("no message")
    };
    let (bytes, n): (Bytes, u32) = event.args().unwrap();
    assert_eq!((&bytes[..], n), (&[1u8, 2, 3][..], 7));
    net.server
        .ack(ack.unwrap(), &(bytes.clone(), "done"))
        .unwrap();
    net.drain();
    let ack = packets(&mut net, conn).remove(0);
    assert_eq!(field(&ack, "type"), Some(&3.into()));
    assert_eq!(field(&ack, "id"), Some(&4.into()));
    assert_eq!(
        field(&ack, "data"),
        Some(&Value::Array(vec![Value::Binary(vec![1, 2, 3]), s("done")]))
    );

    // The server's event asking for an ack, answered by the client.
    net.server
        .emit_with_ack(
            net.now,
            socket,
            "ask",
            &(1,),
            std::time::Duration::from_secs(5),
        )
        .unwrap();
    net.drain();
    let ask = packets(&mut net, conn).remove(0);
    let id = field(&ask, "id").unwrap().clone();
    net.ws_send_binary(
        conn,
        &packet(vec![
            ("type", 3.into()),
            ("id", id),
            ("data", Value::Array(vec![s("yes")])),
            ("nsp", s("/")),
        ]),
    );
    assert!(net
        .take_events()
        .iter()
        .any(|e| matches!(e, Event::Ack { .. })));

    // DISCONNECT from the client.
    net.ws_send_binary(conn, &packet(vec![("type", 1.into()), ("nsp", s("/"))]));
    assert!(net.server.sid(socket).is_none());
}

#[test]
fn a_broadcast_is_one_frame_for_every_recipient() {
    let mut net = Net::new(config(false));
    let clients: Vec<_> = (0..3).map(|_| join(&mut net, None)).collect();
    let root = net.server.namespace("/").unwrap();
    net.batches.clear();
    let reached = net
        .server
        .to_namespace(root)
        .emit("news", &(Bytes::from_static(b"\x00"), "x"))
        .unwrap();
    assert_eq!(reached, 3);
    net.drain();
    assert_eq!(net.batches, [3], "one transmit for all three");
    let frames: Vec<Vec<Frame>> = clients.iter().map(|c| net.take(c.0)).collect();
    let Frame::Binary(first) = &frames[0][0] else {
        panic!()
    };
    for f in &frames {
        assert_eq!(f.len(), 1);
        let Frame::Binary(b) = &f[0] else { panic!() };
        // The very same buffer.
        assert_eq!(b.as_ptr(), first.as_ptr());
    }
    assert_eq!(
        field(&read(first), "data"),
        Some(&Value::Array(vec![
            s("news"),
            Value::Binary(vec![0]),
            s("x")
        ]))
    );
}

#[test]
fn recovery_offsets_and_the_replay_under_msgpack() {
    let mut net = Net::new(config(true));
    let (conn, socket, data) = join(&mut net, None);
    let pid = field(&data, "pid").expect("a pid with recovery on").clone();
    let sid = field(&data, "sid").unwrap().clone();
    net.server.join(socket, "room1").unwrap();
    let root = net.server.namespace("/").unwrap();
    net.server.to_namespace(root).emit("hello", &(1,)).unwrap();
    net.drain();
    let got = packets(&mut net, conn);
    let Some(Value::Array(items)) = field(&got[0], "data") else {
        panic!()
    };
    assert_eq!(items.len(), 3, "name, argument, offset: {items:?}");
    let offset = items[2].clone();
    assert!(offset.is_str());

    net.server.handle_ws_closed(net.now, conn);
    net.drain();
    net.server
        .to_namespace(root)
        .to("room1")
        .emit("missed", &(Bytes::from_static(b"\x01"),))
        .unwrap();
    net.drain();

    // Back with pid and offset: the missed event first, then the CONNECT reply.
    let conn = net.ws_connect();
    net.ws_send_binary(
        conn,
        &packet(vec![
            ("type", 0.into()),
            (
                "data",
                Value::Map(vec![(s("pid"), pid.clone()), (s("offset"), offset)]),
            ),
            ("nsp", s("/")),
        ]),
    );
    let got = packets(&mut net, conn);
    assert_eq!(got.len(), 2, "{got:?}");
    let Some(Value::Array(items)) = field(&got[0], "data") else {
        panic!()
    };
    assert_eq!(items[..2], [s("missed"), Value::Binary(vec![1])]);
    assert!(items[2].is_str());
    assert_eq!(field(&got[1], "type"), Some(&0.into()));
    let data = field(&got[1], "data").unwrap();
    assert_eq!(field(data, "sid"), Some(&sid));
    assert_eq!(field(data, "pid"), Some(&pid));
    assert!(net.events.iter().any(|e| matches!(
        e,
        Event::Connected {
            recovered: true,
            ..
        }
    )));
}

#[test]
fn long_polling_carries_base64_records() {
    let mut net = Net::new(config(false));
    let sid = net.polling_connect();
    let connect = packet(vec![("type", 0.into()), ("nsp", s("/"))]);
    let mut body = b"b".to_vec();
    use base64::Engine as _;
    body.extend(
        base64::engine::general_purpose::STANDARD
            .encode(&connect)
            .bytes(),
    );
    net.post(&sid, &body);
    let Some(Event::ConnectRequest { request, .. }) = net.take_events().into_iter().next() else {
        panic!("no connect request")
    };
    net.server.accept(request, 1).unwrap();
    net.drain();
    let text = net.get_text(&sid);
    let record = text.strip_prefix('b').expect("a binary record");
    let reply = base64::engine::general_purpose::STANDARD
        .decode(record)
        .unwrap();
    assert_eq!(field(&read(&reply), "type"), Some(&0.into()));
}

#[test]
fn text_packets_and_garbage_close_the_connection() {
    for frame in [
        Frame::Text("40".into()),
        Frame::Binary(Bytes::from_static(b"\xc1")),
        Frame::Binary(Bytes::from(packet(vec![
            ("type", 5.into()),
            ("nsp", s("/")),
        ]))),
    ] {
        let mut net = Net::new(config(false));
        let conn = net.ws_connect();
        match frame {
            Frame::Text(t) => net.ws_send(conn, &t),
            Frame::Binary(b) => net.ws_send_binary(conn, &b),
        }
        assert_eq!(net.is_closed(conn), Some(DisconnectReason::ParseError));
    }
}

#[test]
fn the_server_encodes_with_its_parser() {
    let mut net = Net::new(config(false));
    assert_eq!(net.server.parser(), Parser::Msgpack);
    let (conn, socket, _) = join(&mut net, None);
    // A packet built with the server's parser is sent as it is.
    let e = net
        .server
        .parser()
        .event("/", None, "pre", &("built",))
        .unwrap();
    net.server.emit_encoded(socket, &e).unwrap();
    net.server.emit(socket, "direct", &()).unwrap();
    net.server.disconnect(socket).unwrap();
    net.drain();
    let got = packets(&mut net, conn);
    let names: Vec<Value> = got
        .iter()
        .map(|p| field(p, "type").unwrap().clone())
        .collect();
    assert_eq!(names, [2.into(), 2.into(), 1.into()]);
    // The JSON parser's packets stay JSON text (the caller's choice).
    assert_eq!(
        Encoded::event("/", None, "x", &()).unwrap().parser(),
        Parser::Json
    );
}
