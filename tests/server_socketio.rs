//! Socket.IO scenarios on the virtual clock: namespaces, sockets, rooms, broadcasts, acks,
//! binary packets and slow consumers.

mod common;

use bytes::Bytes;
use common::Net;
use roomcast::engine::Frame;
use roomcast::{
    AckError, Config, ConnectionHandle, DisconnectReason, Event, HttpAction, Method, SocketHandle,
    Str,
};
use std::time::Duration;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn with_chat() -> Net {
    let mut net = Net::new(Config::default());
    net.server.add_namespace("/chat").unwrap();
    net
}

fn sid_of(net: &Net, s: SocketHandle) -> String {
    net.server.sid(s).unwrap().to_string()
}

fn root(net: &Net) -> roomcast::NamespaceId {
    net.server.namespace("/").unwrap()
}

/// The `Message` events among `events`: (sender, name, JSON, ack id).
fn messages(events: &[Event]) -> Vec<(SocketHandle, String, String, Option<u64>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message { socket, event, ack } => Some((
                *socket,
                event.name().to_string(),
                event.data().json().to_string(),
                ack.as_ref().map(|a| a.id()),
            )),
            _ => None,
        })
        .collect()
}

/// The ack request of the one event among `events` that asked for an answer.
fn ack_request(events: Vec<Event>) -> roomcast::AckRequest {
    events
        .into_iter()
        .find_map(|e| match e {
            Event::Message { ack, .. } => ack,
            _ => None,
        })
        .expect("an event asking for an ack")
}

/// Sorted, for comparing selections regardless of order.
fn sorted(mut v: Vec<SocketHandle>) -> Vec<SocketHandle> {
    v.sort();
    v
}

// ---- Namespaces ---------------------------------------------------------------------------

#[test]
fn connect_to_unknown_namespace_is_invalid_namespace() {
    let mut net = Net::new(Config::default());
    let conn = net.ws_connect();
    net.ws_send(conn, "40/nope,");
    assert_eq!(
        net.take_text(conn),
        [r#"44/nope,{"message":"Invalid namespace"}"#]
    );
    net.ws_send(conn, r#"40/nope,{"token":"x"}"#);
    assert_eq!(
        net.take_text(conn),
        [r#"44/nope,{"message":"Invalid namespace"}"#]
    );
    assert!(net.take_events().is_empty());
    assert!(net.closed.is_empty());
    assert!(net.server.namespace("/nope").is_none());
    // The connection stays usable.
    let s = net.join_nsp(conn, "/", 0);
    net.server.emit(s, "hi", &()).unwrap();
    net.drain();
    assert_eq!(net.take_text(conn), [r#"42["hi"]"#]);
}

#[test]
fn connect_to_unknown_namespace_over_polling() {
    let mut net = Net::new(Config::default());
    let sid = net.polling_connect();
    assert_eq!(&net.post(&sid, b"40/nope,").body[..], b"ok");
    assert_eq!(
        net.get_text(&sid),
        r#"44/nope,{"message":"Invalid namespace"}"#
    );
    assert!(net.closed.is_empty());
}

#[test]
fn dynamic_namespaces_are_created_on_demand() {
    let mut net = Net::new(Config::default());
    net.server
        .set_dynamic_namespaces(|name| name.starts_with("/dyn-"));
    let (a, _) = net.client(&["/"]);
    net.ws_send(a, "40/dyn-1,");
    let (request, nsp_name, auth) = net.take_connect_request();
    assert_eq!((nsp_name.as_str(), auth), ("/dyn-1", None));
    let s1 = net.server.accept(request, 1).unwrap();
    net.drain();
    let out = net.take_text(a);
    assert_eq!(
        out,
        [format!(r#"40/dyn-1,{{"sid":"{}"}}"#, sid_of(&net, s1))]
    );
    let dyn1 = net.server.namespace("/dyn-1").expect("created");
    assert_eq!(net.server.socket_namespace(s1), Some(dyn1));
    assert_eq!(
        net.server.namespace_name(dyn1).unwrap().to_string(),
        "/dyn-1"
    );
    // Another matching name is another namespace.
    let (b, _) = net.client(&["/"]);
    let s2 = net.join_nsp(b, "/dyn-2", 2);
    let dyn2 = net.server.namespace("/dyn-2").unwrap();
    assert_ne!(dyn1, dyn2);
    // A second client of /dyn-1 joins the same namespace.
    let (c, _) = net.client(&["/"]);
    let s3 = net.join_nsp(c, "/dyn-1", 3);
    assert_eq!(net.server.socket_namespace(s3), Some(dyn1));
    assert_eq!(net.server.to_namespace(dyn1).emit("in", &(1,)).unwrap(), 2);
    net.drain();
    assert_eq!(net.take_text(a), [r#"42/dyn-1,["in",1]"#]);
    assert_eq!(net.take_text(c), [r#"42/dyn-1,["in",1]"#]);
    assert!(net.take_text(b).is_empty());
    assert_eq!(net.server.socket_namespace(s2), Some(dyn2));
    // A name that does not match is refused.
    net.ws_send(a, "40/other,");
    assert_eq!(
        net.take_text(a),
        [r#"44/other,{"message":"Invalid namespace"}"#]
    );
    assert!(net.server.namespace("/other").is_none());
    assert!(net.closed.is_empty());
}

/// The names of the namespace events among `events`: `+name` created, `-name` removed.
fn namespace_events(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::NamespaceCreated { name, .. } => Some(format!("+{name}")),
            Event::NamespaceRemoved { name, .. } => Some(format!("-{name}")),
            _ => None,
        })
        .collect()
}

fn dynamic(cleanup: bool) -> Net {
    let mut config = Config::default();
    config.cleanup_empty_child_namespaces = cleanup;
    let mut net = Net::new(config);
    net.server
        .set_dynamic_namespaces(|name| name.starts_with("/dyn-"));
    net
}

#[test]
fn a_child_whose_connects_are_all_refused_goes_at_once() {
    // Whatever the cleanup setting: refused clients must not make namespaces pile up.
    for cleanup in [false, true] {
        let mut net = dynamic(cleanup);
        let (a, _) = net.client(&["/"]);
        for i in 0..1_000 {
            net.ws_send(a, &format!("40/dyn-{i},"));
            let (request, ..) = net.take_connect_request();
            net.server.reject::<()>(request, "no", None).unwrap();
            net.drain();
        }
        assert_eq!(net.server.namespaces().count(), 1, "only / is left");
        let events = namespace_events(&net.take_events());
        assert_eq!(events.len(), 2_000);
        assert_eq!(events[..2], ["+/dyn-0", "-/dyn-0"]);
        assert_eq!(
            net.take_text(a).len(),
            1_000,
            "each refused with a CONNECT_ERROR"
        );
        assert!(net.closed.is_empty());
    }
}

#[test]
fn empty_children_go_when_asked_and_their_ids_go_stale() {
    let mut net = dynamic(true);
    let (a, _) = net.client(&["/"]);
    let (b, _) = net.client(&["/"]);
    net.join_nsp(a, "/dyn-1", 1);
    net.join_nsp(b, "/dyn-1", 2);
    let old = net.server.namespace("/dyn-1").unwrap();
    net.ws_send(a, "41/dyn-1,");
    assert_eq!(net.server.namespace("/dyn-1"), Some(old), "one socket left");
    net.ws_send(b, "41/dyn-1,");
    assert_eq!(net.server.namespace("/dyn-1"), None, "the last one left");
    let events = net.take_events();
    assert_eq!(namespace_events(&events), ["-/dyn-1"]);
    // Everything about it before its removal could be read with its id; after, it is stale.
    assert!(net.server.namespace_name(old).is_none());
    assert!(matches!(
        net.server.to_namespace(old).emit("x", &(1,)),
        Err(roomcast::Error::RemovedNamespace)
    ));
    // Asked for again: a new namespace, which the old id never reaches.
    let s = net.join_nsp(a, "/dyn-1", 3);
    let new = net.server.namespace("/dyn-1").unwrap();
    assert_ne!(new, old);
    assert_eq!(net.server.socket_namespace(s), Some(new));
    assert!(net.server.to_namespace(old).emit("x", &(1,)).is_err());
    assert_eq!(net.server.to_namespace(old).sockets(), []);
    assert!(net.server.members(old, &sid_of(&net, s)).is_empty());
    assert_eq!(net.server.to_namespace(new).emit("x", &(1,)).unwrap(), 1);
    net.drain();
    assert_eq!(net.take_text(a), [r#"42/dyn-1,["x",1]"#]);
    // A connection that closes takes the last socket with it.
    let now = net.now;
    net.server.handle_ws_closed(now, a);
    net.drain();
    assert_eq!(net.server.namespace("/dyn-1"), None);
    assert_eq!(net.server.namespaces().count(), 1);
}

#[test]
fn without_cleanup_children_stay_and_named_namespaces_always_do() {
    let mut net = dynamic(false);
    let (a, _) = net.client(&["/"]);
    net.join_nsp(a, "/dyn-1", 1);
    net.ws_send(a, "41/dyn-1,");
    assert!(
        net.server.namespace("/dyn-1").is_some(),
        "kept, as Node's default"
    );
    let mut net = dynamic(true);
    net.server.add_namespace("/dyn-2").unwrap();
    let (a, _) = net.client(&["/"]);
    net.join_nsp(a, "/dyn-2", 1);
    net.ws_send(a, "41/dyn-2,");
    assert!(
        net.server.namespace("/dyn-2").is_some(),
        "the application's own"
    );
    // A child the application names later becomes its own too.
    net.join_nsp(a, "/dyn-3", 1);
    net.server.add_namespace("/dyn-3").unwrap();
    net.ws_send(a, "41/dyn-3,");
    assert!(net.server.namespace("/dyn-3").is_some());
}

#[test]
fn a_pending_connect_keeps_an_empty_child() {
    let mut net = dynamic(true);
    let (a, _) = net.client(&["/"]);
    let (b, _) = net.client(&["/"]);
    net.join_nsp(a, "/dyn-1", 1);
    net.ws_send(b, "40/dyn-1,");
    let (pending, ..) = net.take_connect_request();
    net.ws_send(a, "41/dyn-1,");
    let nsp = net
        .server
        .namespace("/dyn-1")
        .expect("kept for the pending CONNECT");
    let s = net.server.accept(pending, 2).unwrap();
    assert_eq!(net.server.socket_namespace(s), Some(nsp));
    // A CONNECT cancelled by its client, or dropped with its connection, lets it go.
    net.ws_send(a, "40/dyn-1,");
    let _ = net.take_connect_request();
    net.ws_send(b, "41/dyn-1,");
    assert!(
        net.server.namespace("/dyn-1").is_some(),
        "a's CONNECT is pending"
    );
    net.ws_send(a, "41/dyn-1,");
    assert!(net.server.namespace("/dyn-1").is_none(), "cancelled");
    net.ws_send(b, "40/dyn-2,");
    let _ = net.take_connect_request();
    let now = net.now;
    net.server.handle_ws_closed(now, b);
    net.drain();
    assert!(
        net.server.namespace("/dyn-2").is_none(),
        "dropped with its connection"
    );
}

// ---- Accept and reject --------------------------------------------------------------------------

#[test]
fn accept_sends_a_fresh_socket_id() {
    let mut net = with_chat();
    let conn = net.ws_connect();
    let engine_sid = net.server.connection_sid(conn).unwrap().to_string();
    net.ws_send(conn, "40");
    let (request, nsp_name, auth) = net.take_connect_request();
    assert_eq!((nsp_name.as_str(), auth), ("/", None));
    let s = net.server.accept(request, 42).unwrap();
    net.drain();
    let sid = sid_of(&net, s);
    assert_eq!(net.take_text(conn), [format!(r#"40{{"sid":"{sid}"}}"#)]);
    assert_ne!(sid, engine_sid);
    assert_eq!(sid.len(), engine_sid.len());
    let events = net.take_events();
    assert!(
        matches!(&events[..], [Event::Connected { socket, sid: got, nsp, recovered: false }] if *socket == s && got.to_string() == sid && *nsp == root(&net)),
        "{events:?}"
    );
    assert_eq!(net.server.data(s), Some(&42));
    *net.server.data_mut(s).unwrap() += 1;
    assert_eq!(net.server.data(s), Some(&43));
    assert_eq!(net.server.socket_by_sid(&sid), Some(s));
    assert_eq!(net.server.socket_connection(s), Some(conn));
    // A second namespace on the same connection: another fresh id.
    net.ws_send(conn, "40/chat,");
    let (request, nsp_name, _) = net.take_connect_request();
    assert_eq!(nsp_name, "/chat");
    let c = net.server.accept(request, 0).unwrap();
    net.drain();
    let chat_sid = sid_of(&net, c);
    assert_eq!(
        net.take_text(conn),
        [format!(r#"40/chat,{{"sid":"{chat_sid}"}}"#)]
    );
    assert_ne!(chat_sid, sid);
    assert_ne!(chat_sid, engine_sid);
    assert_eq!(
        sorted(net.server.connection_sockets(conn)),
        sorted(vec![s, c])
    );
    assert_eq!(net.server.socket_count(), 2);
    // The request is spent: `accept` took it by value, so a second decision does not compile.
}

#[test]
fn auth_payload_is_delivered() {
    let mut net = with_chat();
    let conn = net.ws_connect();
    net.ws_send(conn, r#"40{"token":"abc","n":1}"#);
    let (_, nsp, auth) = net.take_connect_request();
    assert_eq!(
        (nsp.as_str(), auth.as_deref()),
        ("/", Some(r#"{"token":"abc","n":1}"#))
    );
    net.ws_send(conn, r#"40/chat,{"token":"def"}"#);
    let (_, nsp, auth) = net.take_connect_request();
    assert_eq!(
        (nsp.as_str(), auth.as_deref()),
        ("/chat", Some(r#"{"token":"def"}"#))
    );
    // Over polling too.
    let sid = net.polling_connect();
    net.post(&sid, br#"40{"token":"ghi"}"#);
    let (_, _, auth) = net.take_connect_request();
    assert_eq!(auth.as_deref(), Some(r#"{"token":"ghi"}"#));
}

#[test]
fn auth_that_is_not_an_object_closes() {
    let mut net = Net::new(Config::default());
    let conn = net.ws_connect();
    net.ws_send(conn, r#"40"token""#);
    assert_eq!(net.is_closed(conn), Some(DisconnectReason::ParseError));
    assert!(!net
        .take_events()
        .iter()
        .any(|e| matches!(e, Event::ConnectRequest { .. })));
}

#[test]
fn reject_sends_connect_error_with_message_and_data() {
    let mut net = with_chat();
    let conn = net.ws_connect();
    net.ws_send(conn, "40");
    let (request, _, _) = net.take_connect_request();
    net.server
        .reject(
            request,
            "not authorized",
            Some(&serde_json::json!({"reason": "banned", "retry": false})),
        )
        .unwrap();
    net.drain();
    assert_eq!(
        net.take_text(conn),
        [r#"44{"message":"not authorized","data":{"reason":"banned","retry":false}}"#]
    );
    // Without data, on another namespace.
    net.ws_send(conn, "40/chat,");
    let (request, _, _) = net.take_connect_request();
    net.server.reject::<()>(request, "nope", None).unwrap();
    net.drain();
    assert_eq!(net.take_text(conn), [r#"44/chat,{"message":"nope"}"#]);
    // The connection stays, and may try again.
    assert!(net.closed.is_empty());
    assert_eq!(net.server.socket_count(), 0);
    let s = net.join_nsp(conn, "/", 0);
    assert_eq!(net.server.socket_connection(s), Some(conn));
    assert!(
        net.take_events().is_empty(),
        "no Connected for rejected requests"
    );
}

#[test]
fn disconnect_before_the_decision_cancels_the_request() {
    let mut net = with_chat();
    let conn = net.ws_connect();
    net.ws_send(conn, "40/chat,");
    let (request, _, _) = net.take_connect_request();
    net.ws_send(conn, "41/chat,");
    assert!(net.closed.is_empty());
    assert!(matches!(
        net.server.accept(request, 0),
        Err(roomcast::Error::UnknownRequest)
    ));
    net.drain();
    assert!(net.take(conn).is_empty());
}

#[test]
fn request_of_a_closed_connection_cannot_be_decided() {
    let mut net = Net::new(Config::default());
    let conn = net.ws_connect();
    net.ws_send(conn, "40");
    let (request, _, _) = net.take_connect_request();
    net.ws_send(conn, "1");
    assert!(matches!(
        net.server.accept(request, 0),
        Err(roomcast::Error::UnknownRequest)
    ));
    let conn = net.ws_connect();
    net.ws_send(conn, "40");
    let (request, _, _) = net.take_connect_request();
    net.ws_send(conn, "1");
    assert!(matches!(
        net.server.reject::<()>(request, "x", None),
        Err(roomcast::Error::UnknownRequest)
    ));
    assert_eq!(net.server.socket_count(), 0);
}

// ---- Rooms --------------------------------------------------------------------------------------

#[test]
fn every_socket_is_in_its_own_room() {
    let mut net = Net::new(Config::default());
    let (a, sa) = net.client(&["/"]);
    let (b, sb) = net.client(&["/"]);
    let (sa, sb) = (sa[0], sb[0]);
    let nsp = root(&net);
    let sid_a = sid_of(&net, sa);
    let own: Vec<String> = net
        .server
        .rooms_of(sa)
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(own, [sid_a.as_str()]);
    assert_eq!(net.server.members(nsp, &sid_a), [sa]);
    // Own-id rooms are not listed as rooms.
    assert!(net.server.rooms(nsp).is_empty());
    assert_eq!(
        net.server
            .to_namespace(nsp)
            .to(sid_a.as_str())
            .emit("dm", &("x",))
            .unwrap(),
        1
    );
    net.drain();
    assert_eq!(net.take_text(a), [r#"42["dm","x"]"#]);
    assert!(net.take_text(b).is_empty());
    // From another socket: `socket.to(id)`.
    assert_eq!(
        net.server
            .broadcast_from(sb)
            .unwrap()
            .to(sid_a.as_str())
            .emit("dm", &())
            .unwrap(),
        1
    );
    net.drain();
    assert_eq!(net.take_text(a), [r#"42["dm"]"#]);
    // Own id rooms stay with their namespace: a /chat id does not reach / sockets.
    assert!(net.server.members(nsp, "no-such-room").is_empty());
    // After joining rooms, the own id stays first.
    net.server.join(sa, "r1").unwrap();
    net.server.join(sa, "r2").unwrap();
    let rooms: Vec<String> = net
        .server
        .rooms_of(sa)
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(rooms, [sid_a, "r1".into(), "r2".into()]);
}

#[test]
fn join_leave_rooms_of_and_members() {
    let mut net = Net::new(Config::default());
    let (_, s) = net.client(&["/"]);
    let (_, t) = net.client(&["/"]);
    let (s, t) = (s[0], t[0]);
    let nsp = root(&net);
    assert!(net.server.join(s, "a").unwrap());
    assert!(!net.server.join(s, "a").unwrap(), "already in");
    assert!(net.server.join(s, "b").unwrap());
    assert!(net.server.join(t, "a").unwrap());
    assert_eq!(sorted(net.server.members(nsp, "a")), sorted(vec![s, t]));
    assert_eq!(net.server.members(nsp, "b"), [s]);
    let mut rooms: Vec<(String, usize)> = net
        .server
        .rooms(nsp)
        .into_iter()
        .map(|(r, n)| (r.to_string(), n))
        .collect();
    rooms.sort();
    assert_eq!(rooms, [("a".into(), 2), ("b".into(), 1)]);
    assert!(net.server.leave(s, "a").unwrap());
    assert!(!net.server.leave(s, "a").unwrap(), "not in");
    assert!(!net.server.leave(s, "never").unwrap());
    assert_eq!(net.server.members(nsp, "a"), [t]);
    net.server.join(s, "c").unwrap();
    net.server.leave_all(s).unwrap();
    assert_eq!(net.server.rooms_of(s).len(), 1, "own room kept");
    assert_eq!(net.server.members(nsp, &sid_of(&net, s)), [s]);
    let rooms: Vec<String> = net
        .server
        .rooms(nsp)
        .into_iter()
        .map(|(r, _)| r.to_string())
        .collect();
    assert_eq!(rooms, ["a"]);
    // A gone socket is refused.
    net.server.disconnect(s).unwrap();
    assert!(net.server.join(s, "a").is_err());
    assert!(net.server.leave(s, "a").is_err());
    assert!(net.server.leave_all(s).is_err());
    assert!(net.server.rooms_of(s).is_empty());
}

#[test]
fn rooms_belong_to_one_namespace() {
    let mut net = with_chat();
    let (a, sa) = net.client(&["/"]);
    let (b, sb) = net.client(&["/chat"]);
    net.server.join(sa[0], "room").unwrap();
    net.server.join(sb[0], "room").unwrap();
    let chat = net.server.namespace("/chat").unwrap();
    assert_eq!(net.server.members(chat, "room"), [sb[0]]);
    assert_eq!(
        net.server
            .to_namespace(chat)
            .to("room")
            .emit("x", &())
            .unwrap(),
        1
    );
    net.drain();
    assert_eq!(net.take_text(b), [r#"42/chat,["x"]"#]);
    assert!(net.take_text(a).is_empty());
    // A socket id of /chat is no room of /.
    let chat_sid = sid_of(&net, sb[0]);
    let nsp = root(&net);
    assert!(net.server.members(nsp, &chat_sid).is_empty());
    assert_eq!(
        net.server
            .to_namespace(nsp)
            .to(chat_sid.as_str())
            .emit("x", &())
            .unwrap(),
        0
    );
}

#[test]
fn room_events_follow_the_room_life_cycle() {
    let mut net = Net::new({
        let mut c = Config::default();
        c.room_events = true;
        c
    });
    let nsp = root(&net);
    let conn = net.ws_connect();
    net.ws_send(conn, "40");
    let (request, _, _) = net.take_connect_request();
    let s = net.server.accept(request, 0).unwrap();
    net.drain();
    net.take_text(conn);
    let sid = Str::from(sid_of(&net, s));
    assert_eq!(
        net.take_events(),
        [
            Event::Connected {
                socket: s,
                sid: sid.clone(),
                nsp,
                recovered: false
            },
            Event::RoomCreated {
                nsp,
                room: sid.clone()
            },
            Event::RoomJoined {
                nsp,
                room: sid.clone(),
                socket: s,
                sid: sid.clone()
            },
        ]
    );
    let (_, t) = net.client(&["/"]);
    let t = t[0];
    let tid = Str::from(sid_of(&net, t));
    net.take_events();
    let room = Str::from("r");
    net.server.join(s, "r").unwrap();
    net.drain();
    assert_eq!(
        net.take_events(),
        [
            Event::RoomCreated {
                nsp,
                room: room.clone()
            },
            Event::RoomJoined {
                nsp,
                room: room.clone(),
                socket: s,
                sid: sid.clone()
            }
        ]
    );
    net.server.join(t, "r").unwrap();
    net.server.join(t, "r").unwrap();
    net.drain();
    assert_eq!(
        net.take_events(),
        [Event::RoomJoined {
            nsp,
            room: room.clone(),
            socket: t,
            sid: tid.clone()
        }]
    );
    net.server.leave(s, "r").unwrap();
    net.server.leave(s, "r").unwrap();
    net.drain();
    assert_eq!(
        net.take_events(),
        [Event::RoomLeft {
            nsp,
            room: room.clone(),
            socket: s,
            sid: sid.clone()
        }]
    );
    net.server.leave(t, "r").unwrap();
    net.drain();
    assert_eq!(
        net.take_events(),
        [
            Event::RoomLeft {
                nsp,
                room: room.clone(),
                socket: t,
                sid: tid.clone()
            },
            Event::RoomDeleted {
                nsp,
                room: room.clone()
            }
        ]
    );
    // Leaving everything at disconnect: each room, then the own room, then the socket.
    net.server.join(s, "x").unwrap();
    net.drain();
    net.take_events();
    net.ws_send(conn, "41");
    let x = Str::from("x");
    assert_eq!(
        net.take_events(),
        [
            Event::RoomLeft {
                nsp,
                room: x.clone(),
                socket: s,
                sid: sid.clone()
            },
            Event::RoomDeleted { nsp, room: x },
            Event::RoomLeft {
                nsp,
                room: sid.clone(),
                socket: s,
                sid: sid.clone()
            },
            Event::RoomDeleted {
                nsp,
                room: sid.clone()
            },
            Event::Disconnected {
                socket: s,
                sid: sid.clone(),
                nsp,
                reason: DisconnectReason::ClientNamespaceDisconnect,
                // Still readable, as Node's `disconnecting` reads them.
                rooms: vec![sid, Str::from("x")]
            },
        ]
    );
}

#[test]
fn no_room_events_by_default() {
    let mut net = Net::new(Config::default());
    let (conn, s) = net.client(&["/"]);
    net.server.join(s[0], "r").unwrap();
    net.server.leave(s[0], "r").unwrap();
    net.drain();
    assert!(net.take_events().is_empty());
    net.ws_send(conn, "41");
    let events = net.take_events();
    assert!(
        matches!(&events[..], [Event::Disconnected { .. }]),
        "{events:?}"
    );
}

// ---- Broadcasts -----------------------------------------------------------------------------

/// Four WebSocket clients on `/`: a in r1, b in r1 and r2, c in r2, d in none.
struct Four {
    net: Net,
    conns: [ConnectionHandle; 4],
    socks: [SocketHandle; 4],
}

fn four() -> Four {
    let mut net = with_chat();
    let mut conns = Vec::new();
    let mut socks = Vec::new();
    for _ in 0..4 {
        let (c, s) = net.client(&["/"]);
        conns.push(c);
        socks.push(s[0]);
    }
    net.server.join(socks[0], "r1").unwrap();
    net.server.join(socks[1], "r1").unwrap();
    net.server.join(socks[1], "r2").unwrap();
    net.server.join(socks[2], "r2").unwrap();
    net.batches.clear();
    Four {
        net,
        conns: conns.try_into().unwrap(),
        socks: socks.try_into().unwrap(),
    }
}

impl Four {
    /// Who got what since the last look: for each client, its frames.
    fn received(&mut self) -> [Vec<String>; 4] {
        self.net.drain();
        let conns = self.conns;
        conns.map(|c| self.net.take_text(c))
    }
}

#[test]
fn broadcast_to_rooms_is_a_deduplicated_union() {
    let mut f = four();
    let nsp = root(&f.net);
    let n = f
        .net
        .server
        .to_namespace(nsp)
        .to("r1")
        .to("r2")
        .emit("u", &(1,))
        .unwrap();
    assert_eq!(n, 3);
    let one = vec![r#"42["u",1]"#.to_string()];
    assert_eq!(
        f.received(),
        [one.clone(), one.clone(), one.clone(), vec![]]
    );
    // One frame, one batch of three recipients.
    assert_eq!(f.net.batches, [3]);
    // A room listed twice, and an unknown room, change nothing.
    let n = f
        .net
        .server
        .to_namespace(nsp)
        .to("r1")
        .to("r1")
        .to("ghost")
        .emit("u", &(2,))
        .unwrap();
    assert_eq!(n, 2);
    let two = vec![r#"42["u",2]"#.to_string()];
    assert_eq!(f.received(), [two.clone(), two, vec![], vec![]]);
}

#[test]
fn broadcast_except_removes_rooms() {
    let mut f = four();
    let nsp = root(&f.net);
    let x = vec![r#"42["x"]"#.to_string()];
    assert_eq!(
        f.net
            .server
            .to_namespace(nsp)
            .except("r1")
            .emit("x", &())
            .unwrap(),
        2
    );
    assert_eq!(f.received(), [vec![], vec![], x.clone(), x.clone()]);
    assert_eq!(
        f.net
            .server
            .to_namespace(nsp)
            .to("r2")
            .except("r1")
            .emit("x", &())
            .unwrap(),
        1
    );
    assert_eq!(f.received(), [vec![], vec![], x.clone(), vec![]]);
    assert_eq!(
        f.net
            .server
            .to_namespace(nsp)
            .except("r1")
            .except("r2")
            .emit("x", &())
            .unwrap(),
        1
    );
    assert_eq!(f.received(), [vec![], vec![], vec![], x.clone()]);
    // A socket id works as an except room.
    let sid_d = sid_of(&f.net, f.socks[3]);
    assert_eq!(
        f.net
            .server
            .to_namespace(nsp)
            .except(sid_d.as_str())
            .emit("x", &())
            .unwrap(),
        3
    );
    assert_eq!(f.received(), [x.clone(), x.clone(), x, vec![]]);
}

#[test]
fn broadcast_from_a_socket_excludes_it() {
    let mut f = four();
    let y = vec![r#"42["y"]"#.to_string()];
    assert_eq!(
        f.net
            .server
            .broadcast_from(f.socks[1])
            .unwrap()
            .emit("y", &())
            .unwrap(),
        3
    );
    assert_eq!(f.received(), [y.clone(), vec![], y.clone(), y.clone()]);
    // socket.to(room): the sender is excluded even though it is in the room.
    assert_eq!(
        f.net
            .server
            .broadcast_from(f.socks[1])
            .unwrap()
            .to("r1")
            .emit("y", &())
            .unwrap(),
        1
    );
    assert_eq!(f.received(), [y.clone(), vec![], vec![], vec![]]);
    assert_eq!(
        f.net
            .server
            .broadcast_from(f.socks[0])
            .unwrap()
            .to("r1")
            .to("r2")
            .except("r2")
            .emit("y", &())
            .unwrap(),
        0
    );
    assert!(f.received().iter().all(Vec::is_empty));
    // A gone sender has no broadcast.
    f.net.server.disconnect(f.socks[3]).unwrap();
    assert!(f.net.server.broadcast_from(f.socks[3]).is_none());
}

#[test]
fn namespace_wide_emit_reaches_only_that_namespace() {
    let mut net = with_chat();
    let (only_root, _) = net.client(&["/"]);
    let (only_chat, _) = net.client(&["/chat"]);
    let (both, _) = net.client(&["/", "/chat"]);
    let nsp = root(&net);
    let chat = net.server.namespace("/chat").unwrap();
    assert_eq!(net.server.to_namespace(nsp).emit("r", &()).unwrap(), 2);
    net.drain();
    assert_eq!(net.take_text(only_root), [r#"42["r"]"#]);
    assert!(net.take_text(only_chat).is_empty());
    assert_eq!(net.take_text(both), [r#"42["r"]"#]);
    assert_eq!(net.server.to_namespace(chat).emit("c", &("x",)).unwrap(), 2);
    net.drain();
    assert!(net.take_text(only_root).is_empty());
    assert_eq!(net.take_text(only_chat), [r#"42/chat,["c","x"]"#]);
    assert_eq!(net.take_text(both), [r#"42/chat,["c","x"]"#]);
}

#[test]
fn emit_to_one_socket() {
    let mut net = with_chat();
    let (a, sa) = net.client(&["/", "/chat"]);
    let (b, _) = net.client(&["/", "/chat"]);
    net.server.emit(sa[0], "one", &("a", 1, true)).unwrap();
    net.server
        .emit(sa[1], "two", &serde_json::json!({"k": [1, 2]}))
        .unwrap();
    net.server.emit(sa[1], "none", &()).unwrap();
    net.drain();
    assert_eq!(
        net.take_text(a),
        [
            r#"42["one","a",1,true]"#,
            r#"42/chat,["two",{"k":[1,2]}]"#,
            r#"42/chat,["none"]"#
        ]
    );
    assert!(net.take_text(b).is_empty());
    // Reserved names cannot be emitted.
    assert!(net.server.emit(sa[0], "disconnect", &()).is_err());
    assert!(net
        .server
        .to_namespace(root(&net))
        .emit("connect", &())
        .is_err());
    net.drain();
    assert!(net.take_text(a).is_empty());
}

#[test]
fn emit_to_a_polling_socket() {
    let mut net = with_chat();
    let (sid, s) = net.polling_client(&["/", "/chat"]);
    net.server.emit(s[1], "hi", &(1,)).unwrap();
    let chat = net.server.namespace("/chat").unwrap();
    assert_eq!(net.server.to_namespace(chat).emit("all", &()).unwrap(), 1);
    net.drain();
    assert_eq!(
        net.get_text(&sid),
        "42/chat,[\"hi\",1]\x1e42/chat,[\"all\"]"
    );
}

#[test]
fn volatile_skips_a_blocked_websocket() {
    let mut f = four();
    let nsp = root(&f.net);
    f.net.server.set_blocked(f.conns[0], true);
    let v = vec![r#"42["v"]"#.to_string()];
    assert_eq!(
        f.net
            .server
            .to_namespace(nsp)
            .volatile()
            .emit("v", &())
            .unwrap(),
        3
    );
    assert_eq!(f.received(), [vec![], v.clone(), v.clone(), v.clone()]);
    // Not volatile: written anyway (the adapter buffers it).
    assert_eq!(
        f.net
            .server
            .to_namespace(nsp)
            .to("r1")
            .emit("v", &())
            .unwrap(),
        2
    );
    assert_eq!(f.received(), [v.clone(), v.clone(), vec![], vec![]]);
    f.net.server.set_blocked(f.conns[0], false);
    assert_eq!(
        f.net
            .server
            .to_namespace(nsp)
            .to("r1")
            .volatile()
            .emit("v", &())
            .unwrap(),
        2
    );
    assert_eq!(f.received(), [v.clone(), v, vec![], vec![]]);
}

#[test]
fn volatile_skips_a_polling_client_without_a_held_get() {
    let mut net = Net::new(Config::default());
    let (sid, _) = net.polling_client(&["/"]);
    let (ws, _) = net.client(&["/"]);
    let nsp = root(&net);
    assert_eq!(
        net.server
            .to_namespace(nsp)
            .volatile()
            .emit("v", &(1,))
            .unwrap(),
        1
    );
    net.drain();
    assert_eq!(net.take_text(ws), [r#"42["v",1]"#]);
    let held = net.get(&sid).unwrap_err();
    // With a GET waiting, it goes through.
    assert_eq!(
        net.server
            .to_namespace(nsp)
            .volatile()
            .emit("v", &(2,))
            .unwrap(),
        2
    );
    net.drain();
    assert_eq!(net.take_answer(held).as_deref(), Some(r#"42["v",2]"#));
    // The GET was answered: skipped again.
    assert_eq!(
        net.server
            .to_namespace(nsp)
            .volatile()
            .emit("v", &(3,))
            .unwrap(),
        1
    );
    net.drain();
    assert!(net.get(&sid).is_err());
}

#[test]
fn bulk_operations_on_a_selection() {
    let mut f = four();
    let nsp = root(&f.net);
    let [a, b, c, d] = f.socks;
    assert_eq!(f.net.server.to_namespace(nsp).to("r1").join("r3"), 2);
    assert_eq!(sorted(f.net.server.members(nsp, "r3")), sorted(vec![a, b]));
    assert_eq!(
        sorted(f.net.server.to_namespace(nsp).to("r2").sockets()),
        sorted(vec![b, c])
    );
    assert_eq!(
        f.net.server.broadcast_from(b).unwrap().to("r3").sockets(),
        [a]
    );
    let mut fetched = f.net.server.to_namespace(nsp).to("r3").fetch();
    fetched.sort_by_key(|s| s.socket);
    assert_eq!(fetched.len(), 2);
    assert_eq!(fetched[0].socket, a);
    assert_eq!(fetched[0].sid.to_string(), sid_of(&f.net, a));
    let rooms: Vec<String> = fetched[1].rooms.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        rooms,
        [sid_of(&f.net, b), "r1".into(), "r2".into(), "r3".into()]
    );
    assert_eq!(f.net.server.to_namespace(nsp).except("r3").leave("r2"), 2);
    assert_eq!(f.net.server.members(nsp, "r2"), [b]);
    // disconnectSockets(false): the sockets leave, their connections stay.
    assert_eq!(f.net.server.to_namespace(nsp).to("r3").disconnect(false), 2);
    let got = f.received();
    assert_eq!(got[0], ["41"]);
    assert_eq!(got[1], ["41"]);
    assert!(got[2].is_empty() && got[3].is_empty());
    assert!(f.net.closed.is_empty());
    let mut gone = f.net.disconnects();
    gone.sort_by_key(|x| x.0);
    let mut expected = vec![
        (a, DisconnectReason::ServerNamespaceDisconnect),
        (b, DisconnectReason::ServerNamespaceDisconnect),
    ];
    expected.sort_by_key(|x| x.0);
    assert_eq!(gone, expected);
    assert!(f.net.server.members(nsp, "r3").is_empty());
    // disconnectSockets(true): whole connections close.
    f.net.take_events();
    assert_eq!(
        f.net.server.to_namespace(nsp).except("r1").disconnect(true),
        2
    );
    f.net.drain();
    let mut closed = f.net.closed.clone();
    closed.sort_by_key(|x| x.0);
    assert_eq!(
        closed,
        [
            (f.conns[2], DisconnectReason::ForcedClose),
            (f.conns[3], DisconnectReason::ForcedClose)
        ]
    );
    assert_eq!(f.net.server.socket_count(), 0);
    assert_eq!(f.net.server.connection_count(), 2);
    let _ = (c, d);
}

#[test]
fn bulk_disconnect_with_close_of_a_multi_namespace_connection() {
    let mut net = with_chat();
    let (conn, s) = net.client(&["/", "/chat"]);
    let chat = net.server.namespace("/chat").unwrap();
    assert_eq!(net.server.to_namespace(chat).disconnect(true), 1);
    net.drain();
    assert_eq!(net.closed, [(conn, DisconnectReason::ForcedClose)]);
    // As `socket.disconnect(true)` in the reference: every namespace of the connection is
    // told (so the client does not reconnect), then the connection closes.
    assert_eq!(net.take_text(conn), ["41", "41/chat,", "1"]);
    let mut gone = net.disconnects();
    gone.sort_by_key(|x| x.0);
    assert_eq!(
        gone,
        [
            (s[0], DisconnectReason::ServerNamespaceDisconnect),
            (s[1], DisconnectReason::ServerNamespaceDisconnect)
        ]
    );
}

// ---- Disconnect -------------------------------------------------------------------------------

#[test]
fn server_disconnect_tells_the_client_and_keeps_other_namespaces() {
    let mut net = with_chat();
    let (conn, s) = net.client(&["/", "/chat"]);
    let chat_sid = sid_of(&net, s[1]);
    net.server.disconnect(s[1]).unwrap();
    net.drain();
    assert_eq!(net.take_text(conn), ["41/chat,"]);
    let chat = net.server.namespace("/chat").unwrap();
    assert_eq!(
        net.take_events(),
        [Event::Disconnected {
            socket: s[1],
            sid: Str::from(chat_sid.as_str()),
            nsp: chat,
            reason: DisconnectReason::ServerNamespaceDisconnect,
            rooms: vec![Str::from(chat_sid.as_str())]
        }]
    );
    assert!(net.server.emit(s[1], "x", &()).is_err());
    assert!(net.server.socket_by_sid(&chat_sid).is_none());
    assert!(net.server.disconnect(s[1]).is_err());
    // The / socket and the connection live on.
    assert!(net.closed.is_empty());
    assert_eq!(net.server.connection_sockets(conn), [s[0]]);
    net.server.emit(s[0], "still", &()).unwrap();
    net.drain();
    assert_eq!(net.take_text(conn), [r#"42["still"]"#]);
    net.server.disconnect(s[0]).unwrap();
    net.drain();
    assert_eq!(net.take_text(conn), ["41"]);
    assert!(net.closed.is_empty());
    // Packets for the namespace it was removed from now break the rules.
    net.ws_send(conn, r#"42/chat,["late"]"#);
    assert_eq!(net.is_closed(conn), Some(DisconnectReason::ParseError));
}

#[test]
fn client_disconnect_leaves_one_namespace() {
    let mut net = with_chat();
    let (conn, s) = net.client(&["/", "/chat"]);
    net.server.join(s[1], "room").unwrap();
    net.ws_send(conn, "41/chat,");
    assert_eq!(
        net.disconnects(),
        [(s[1], DisconnectReason::ClientNamespaceDisconnect)]
    );
    net.take_events();
    assert!(net.take(conn).is_empty(), "nothing written back");
    let chat = net.server.namespace("/chat").unwrap();
    assert!(net.server.members(chat, "room").is_empty());
    assert!(net.closed.is_empty());
    net.ws_send(conn, r#"42["hey"]"#);
    assert_eq!(
        messages(&net.take_events()),
        [(s[0], "hey".into(), r#"["hey"]"#.into(), None)]
    );
    // It may come back, as a new socket.
    let again = net.join_nsp(conn, "/chat", 0);
    assert_ne!(again, s[1]);
    assert!(net.server.emit(s[1], "x", &()).is_err());
}

// ---- Events and acks ------------------------------------------------------------------------

#[test]
fn client_events_arrive_with_their_socket() {
    let mut net = with_chat();
    let (conn, s) = net.client(&["/", "/chat"]);
    net.ws_send(conn, r#"42["plain",1,{"a":[true,null]}]"#);
    net.ws_send(conn, r#"42/chat,["chat","x"]"#);
    net.ws_send(conn, r#"42[7,"numeric name"]"#);
    let events = net.take_events();
    assert_eq!(
        messages(&events),
        [
            (
                s[0],
                "plain".into(),
                r#"["plain",1,{"a":[true,null]}]"#.into(),
                None
            ),
            (s[1], "chat".into(), r#"["chat","x"]"#.into(), None),
            (s[0], "7".into(), r#"[7,"numeric name"]"#.into(), None),
        ]
    );
    let Event::Message { event, .. } = &events[0] else {
        panic!()
    };
    let (n, obj): (u32, serde_json::Value) = event.args().unwrap();
    assert_eq!((n, obj), (1, serde_json::json!({"a": [true, null]})));
}

#[test]
fn client_ack_request_is_answered_by_the_server() {
    let mut net = with_chat();
    let (conn, s) = net.client(&["/", "/chat"]);
    net.ws_send(conn, r#"421["question",2]"#);
    let events = net.take_events();
    assert_eq!(
        messages(&events),
        [(s[0], "question".into(), r#"["question",2]"#.into(), Some(1))]
    );
    net.server.ack(ack_request(events), &("answer", 4)).unwrap();
    net.drain();
    assert_eq!(net.take_text(conn), [r#"431["answer",4]"#]);
    net.ws_send(conn, r#"42/chat,17["q"]"#);
    let events = net.take_events();
    assert_eq!(
        messages(&events),
        [(s[1], "q".into(), r#"["q"]"#.into(), Some(17))]
    );
    net.server.ack(ack_request(events), &()).unwrap();
    net.drain();
    assert_eq!(net.take_text(conn), ["43/chat,17[]"]);
}

#[test]
fn emit_with_ack_gets_the_answer() {
    let mut net = with_chat();
    let (conn, s) = net.client(&["/", "/chat"]);
    let now = net.now;
    let h0 = net
        .server
        .emit_with_ack(now, s[0], "ask", &(1,), ms(5000))
        .unwrap();
    let h1 = net
        .server
        .emit_with_ack(now, s[0], "ask", &(2,), ms(5000))
        .unwrap();
    let hc = net
        .server
        .emit_with_ack(now, s[1], "ask", &(), ms(5000))
        .unwrap();
    net.drain();
    // Ack ids count per namespace.
    assert_eq!(
        net.take_text(conn),
        [r#"420["ask",1]"#, r#"421["ask",2]"#, r#"42/chat,0["ask"]"#]
    );
    // Answered out of order.
    net.ws_send(conn, r#"431["second"]"#);
    net.ws_send(conn, r#"43/chat,0[]"#);
    net.ws_send(conn, r#"430["first",{"ok":true}]"#);
    let events = net.take_events();
    let got: Vec<(roomcast::AckHandle, SocketHandle, String)> = events
        .iter()
        .map(|e| match e {
            Event::Ack {
                ack,
                socket,
                result: Ok(p),
            } => (*ack, *socket, p.json().to_string()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        [
            (h1, s[0], r#"["second"]"#.into()),
            (hc, s[1], "[]".into()),
            (h0, s[0], r#"["first",{"ok":true}]"#.into())
        ]
    );
    // A repeated or unknown answer is ignored.
    net.ws_send(conn, r#"430["again"]"#);
    net.ws_send(conn, r#"4399[]"#);
    assert!(net.take_events().is_empty());
    assert!(net.closed.is_empty());
    // The timers left behind fire nothing.
    net.advance(ms(10_000));
    assert!(net
        .take_events()
        .iter()
        .all(|e| !matches!(e, Event::Ack { .. })));
}

#[test]
fn emit_with_ack_times_out() {
    let mut net = Net::new(Config::default());
    let (conn, s) = net.client(&["/"]);
    let h = net
        .server
        .emit_with_ack(net.now, s[0], "ask", &(), ms(1000))
        .unwrap();
    net.drain();
    assert_eq!(net.take_text(conn), [r#"420["ask"]"#]);
    net.advance(ms(999));
    assert!(net.take_events().is_empty());
    net.advance(ms(1));
    assert_eq!(
        net.take_events(),
        [Event::Ack {
            ack: h,
            socket: s[0],
            result: Err(AckError::Timeout)
        }]
    );
    // A late answer is ignored.
    net.ws_send(conn, "430[1]");
    assert!(net.take_events().is_empty());
    assert!(net.closed.is_empty());
}

#[test]
fn emit_with_ack_fails_on_disconnect() {
    let mut net = with_chat();
    let (conn, s) = net.client(&["/", "/chat"]);
    let chat_sid = Str::from(sid_of(&net, s[1]));
    let h = net
        .server
        .emit_with_ack(net.now, s[1], "ask", &(), ms(1000))
        .unwrap();
    let h_root = net
        .server
        .emit_with_ack(net.now, s[0], "ask", &(), ms(1000))
        .unwrap();
    net.drain();
    net.ws_send(conn, "41/chat,");
    assert_eq!(
        net.take_events(),
        [
            Event::Ack {
                ack: h,
                socket: s[1],
                result: Err(AckError::Disconnected)
            },
            Event::Disconnected {
                socket: s[1],
                sid: chat_sid.clone(),
                nsp: net.server.namespace("/chat").unwrap(),
                reason: DisconnectReason::ClientNamespaceDisconnect,
                rooms: vec![chat_sid]
            }
        ]
    );
    // The other namespace's ack still waits, and times out normally.
    net.advance(ms(1000));
    assert_eq!(
        net.take_events(),
        [Event::Ack {
            ack: h_root,
            socket: s[0],
            result: Err(AckError::Timeout)
        }]
    );
    // Server-side disconnect fails the pending ack too.
    let h = net
        .server
        .emit_with_ack(net.now, s[0], "ask", &(), ms(1000))
        .unwrap();
    net.server.disconnect(s[0]).unwrap();
    net.drain();
    let events = net.take_events();
    assert_eq!(
        events[0],
        Event::Ack {
            ack: h,
            socket: s[0],
            result: Err(AckError::Disconnected)
        }
    );
    assert!(matches!(
        events[1],
        Event::Disconnected {
            reason: DisconnectReason::ServerNamespaceDisconnect,
            ..
        }
    ));
}

#[test]
fn emit_with_ack_fails_when_the_connection_closes() {
    let mut net = Net::new(Config::default());
    let (conn, s) = net.client(&["/"]);
    let h = net
        .server
        .emit_with_ack(net.now, s[0], "ask", &(), ms(1000))
        .unwrap();
    net.drain();
    net.server.handle_ws_closed(net.now, conn);
    net.drain();
    let events = net.take_events();
    assert_eq!(
        events[0],
        Event::Ack {
            ack: h,
            socket: s[0],
            result: Err(AckError::Disconnected)
        }
    );
    assert!(matches!(
        events[1],
        Event::Disconnected {
            reason: DisconnectReason::TransportClose,
            ..
        }
    ));
    // No timeout later.
    net.advance(ms(5000));
    assert!(net.take_events().is_empty());
}

#[test]
fn emit_with_ack_to_a_gone_socket_is_refused() {
    let mut net = Net::new(Config::default());
    let (conn, s) = net.client(&["/"]);
    net.ws_send(conn, r#"420["q"]"#);
    let request = ack_request(net.take_events());
    net.server.disconnect(s[0]).unwrap();
    assert!(net
        .server
        .emit_with_ack(net.now, s[0], "ask", &(), ms(1000))
        .is_err());
    assert!(net.server.ack(request, &()).is_err());
}

#[test]
fn broadcast_with_ack_shares_one_id_and_collects_every_answer() {
    let mut f = four();
    let nsp = root(&f.net);
    let now = f.net.now;
    let (h, n) = f
        .net
        .server
        .to_namespace(nsp)
        .except("r2")
        .emit_with_ack(now, "poll", &("q",), ms(1000))
        .unwrap();
    assert_eq!(n, 2);
    let got = f.received();
    assert_eq!(got[0], [r#"420["poll","q"]"#]);
    assert_eq!(got[3], [r#"420["poll","q"]"#]);
    assert!(got[1].is_empty() && got[2].is_empty());
    assert_eq!(f.net.batches, [2], "one shared frame");
    f.net.ws_send(f.conns[3], r#"430["d"]"#);
    assert!(f.net.take_events().is_empty(), "still waiting for one");
    // An answer from a socket that was not asked is ignored.
    f.net.ws_send(f.conns[1], r#"430["b"]"#);
    assert!(f.net.take_events().is_empty());
    f.net.ws_send(f.conns[0], r#"430["a"]"#);
    let events = f.net.take_events();
    let [Event::BroadcastAck {
        ack,
        replies,
        expected,
        timed_out,
        ..
    }] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!((*ack, *expected, *timed_out), (h, 2, false));
    let replies: Vec<(SocketHandle, String)> = replies
        .iter()
        .map(|(s, p)| (*s, p.json().to_string()))
        .collect();
    assert_eq!(
        replies,
        [
            (f.socks[3], r#"["d"]"#.into()),
            (f.socks[0], r#"["a"]"#.into())
        ]
    );
    // Nothing more at the deadline.
    f.net.advance(ms(2000));
    assert!(f
        .net
        .take_events()
        .iter()
        .all(|e| !matches!(e, Event::BroadcastAck { .. })));
    // The next broadcast takes the next id.
    let (_, n) = f
        .net
        .server
        .to_namespace(nsp)
        .emit_with_ack(f.net.now, "poll", &(), ms(1000))
        .unwrap();
    assert_eq!(n, 4);
    assert_eq!(
        f.received(),
        [(); 4].map(|_| vec![r#"421["poll"]"#.to_string()])
    );
}

#[test]
fn broadcast_with_ack_times_out_with_the_answers_so_far() {
    let mut f = four();
    let nsp = root(&f.net);
    let (h, n) = f
        .net
        .server
        .to_namespace(nsp)
        .emit_with_ack(f.net.now, "poll", &(), ms(1000))
        .unwrap();
    assert_eq!(n, 4);
    f.received();
    f.net.ws_send(f.conns[2], r#"430[3]"#);
    f.net.ws_send(f.conns[1], r#"430[2]"#);
    f.net.advance(ms(999));
    assert!(f.net.take_events().is_empty());
    f.net.advance(ms(1));
    let events = f.net.take_events();
    let [Event::BroadcastAck {
        ack,
        replies,
        expected,
        timed_out,
        ..
    }] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!((*ack, *expected, *timed_out), (h, 4, true));
    let replies: Vec<(SocketHandle, String)> = replies
        .iter()
        .map(|(s, p)| (*s, p.json().to_string()))
        .collect();
    assert_eq!(
        replies,
        [(f.socks[2], "[3]".into()), (f.socks[1], "[2]".into())]
    );
    // Late answers are ignored; no pending ack is left behind (the driver checks invariants).
    f.net.ws_send(f.conns[0], r#"430[1]"#);
    f.net.ws_send(f.conns[3], r#"430[4]"#);
    assert!(f.net.take_events().is_empty());
    assert!(f.net.closed.is_empty());
}

#[test]
fn broadcast_with_ack_stops_waiting_for_a_disconnected_recipient() {
    let mut f = four();
    let nsp = root(&f.net);
    let (h, n) = f
        .net
        .server
        .to_namespace(nsp)
        .to("r1")
        .emit_with_ack(f.net.now, "poll", &(), ms(1000))
        .unwrap();
    assert_eq!(n, 2);
    f.received();
    f.net.ws_send(f.conns[0], "430[1]");
    assert!(f.net.take_events().is_empty());
    f.net.ws_send(f.conns[1], "1");
    let events = f.net.take_events();
    let acks: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::BroadcastAck { .. }))
        .collect();
    let [Event::BroadcastAck {
        ack,
        replies,
        timed_out,
        ..
    }] = &acks[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!((*ack, *timed_out), (h, false));
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].0, f.socks[0]);
    f.net.advance(ms(2000));
    assert!(f
        .net
        .take_events()
        .iter()
        .all(|e| !matches!(e, Event::BroadcastAck { .. })));
}

#[test]
fn broadcast_with_ack_to_nobody_finishes_at_once() {
    let mut net = Net::new(Config::default());
    let nsp = root(&net);
    let (h, n) = net
        .server
        .to_namespace(nsp)
        .to("empty")
        .emit_with_ack(net.now, "poll", &(), ms(1000))
        .unwrap();
    assert_eq!(n, 0);
    net.drain();
    assert_eq!(
        net.take_events(),
        [Event::BroadcastAck {
            ack: h,
            replies: vec![],
            remote: vec![],
            expected: 0,
            timed_out: false
        }]
    );
}

#[test]
fn broadcast_with_ack_reaches_polling_clients_too() {
    let mut net = Net::new(Config::default());
    let (sid, s) = net.polling_client(&["/"]);
    let (ws, w) = net.client(&["/"]);
    let nsp = root(&net);
    let (h, n) = net
        .server
        .to_namespace(nsp)
        .emit_with_ack(net.now, "poll", &(), ms(1000))
        .unwrap();
    assert_eq!(n, 2);
    net.drain();
    assert_eq!(net.take_text(ws), [r#"420["poll"]"#]);
    assert_eq!(net.get_text(&sid), r#"420["poll"]"#);
    net.post(&sid, b"430[\"p\"]");
    net.ws_send(ws, r#"430["w"]"#);
    let events = net.take_events();
    let [Event::BroadcastAck {
        ack,
        replies,
        timed_out: false,
        ..
    }] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!(*ack, h);
    assert_eq!(
        replies.iter().map(|r| r.0).collect::<Vec<_>>(),
        [s[0], w[0]]
    );
}

// ---- Binary -------------------------------------------------------------------------------------

#[test]
fn client_binary_event_is_reassembled() {
    let mut net = Net::new(Config::default());
    let (conn, s) = net.client(&["/"]);
    net.ws_send(conn, r#"451-["file",{"_placeholder":true,"num":0},"name"]"#);
    assert!(net.take_events().is_empty(), "waits for the attachment");
    net.ws_send_binary(conn, &[1, 2, 3]);
    let events = net.take_events();
    let [Event::Message {
        socket,
        event,
        ack: None,
    }] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!(*socket, s[0]);
    assert_eq!(event.name(), "file");
    assert_eq!(event.data().attachments(), [Bytes::from_static(&[1, 2, 3])]);
    let (bytes, name): (Vec<u8>, String) = event.args().unwrap();
    assert_eq!((bytes, name.as_str()), (vec![1, 2, 3], "name"));
}

#[test]
fn client_binary_event_over_polling() {
    let mut net = Net::new(Config::default());
    let (sid, s) = net.polling_client(&["/"]);
    // Binary attachments travel base64-encoded, after a `b`.
    net.post(&sid, b"452-[\"two\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]\x1ebAQID\x1ebBA==");
    let events = net.take_events();
    let [Event::Message { socket, event, .. }] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(*socket, s[0]);
    assert_eq!(
        event.data().attachments(),
        [Bytes::from_static(&[1, 2, 3]), Bytes::from_static(&[4])]
    );
}

#[test]
fn client_binary_ack_answers_an_emit() {
    let mut net = Net::new(Config::default());
    let (conn, s) = net.client(&["/"]);
    let h = net
        .server
        .emit_with_ack(net.now, s[0], "get", &(), ms(1000))
        .unwrap();
    net.drain();
    net.take_text(conn);
    net.ws_send(conn, r#"461-0[{"_placeholder":true,"num":0}]"#);
    net.ws_send_binary(conn, b"xyz");
    let events = net.take_events();
    let [Event::Ack {
        ack,
        result: Ok(payload),
        ..
    }] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!(*ack, h);
    assert_eq!(payload.attachments(), [Bytes::from_static(b"xyz")]);
    let (bytes,): (Vec<u8>,) = payload.deserialize().unwrap();
    assert_eq!(bytes, b"xyz");
}

#[test]
fn server_binary_emit_is_header_then_attachments() {
    let mut net = Net::new(Config::default());
    let (conn, s) = net.client(&["/"]);
    let (other, _) = net.client(&["/"]);
    let (sid, _) = net.polling_client(&["/"]);
    net.server
        .emit(s[0], "file", &(Bytes::from_static(&[1, 2, 3]), "n"))
        .unwrap();
    net.drain();
    assert_eq!(
        net.take(conn),
        [
            Frame::Text(Str::from(
                r#"451-["file",{"_placeholder":true,"num":0},"n"]"#
            )),
            Frame::Binary(Bytes::from_static(&[1, 2, 3]))
        ]
    );
    let nsp = root(&net);
    let n = net
        .server
        .to_namespace(nsp)
        .emit(
            "two",
            &(Bytes::from_static(b"a"), Bytes::from_static(b"bc")),
        )
        .unwrap();
    assert_eq!(n, 3);
    net.drain();
    let expected = [
        Frame::Text(Str::from(
            r#"452-["two",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
        )),
        Frame::Binary(Bytes::from_static(b"a")),
        Frame::Binary(Bytes::from_static(b"bc")),
    ];
    assert_eq!(net.take(conn), expected);
    assert_eq!(net.take(other), expected);
    // Over polling: the attachments follow in the same payload, base64-encoded.
    assert_eq!(
        net.get_text(&sid),
        "452-[\"two\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]\x1ebYQ==\x1ebYmM="
    );
    // A binary ack.
    net.ws_send(conn, r#"423["want"]"#);
    let request = ack_request(net.take_events());
    net.server
        .ack(request, &(Bytes::from_static(&[9]),))
        .unwrap();
    net.drain();
    assert_eq!(
        net.take(conn),
        [
            Frame::Text(Str::from(r#"461-3[{"_placeholder":true,"num":0}]"#)),
            Frame::Binary(Bytes::from_static(&[9]))
        ]
    );
}

// ---- Slow consumers -----------------------------------------------------------------------------

#[test]
fn polling_client_that_never_reads_is_a_slow_consumer() {
    let mut net = Net::new({
        let mut c = Config::default();
        c.max_buffered_frames = 3;
        c
    });
    let (sid, s) = net.polling_client(&["/"]);
    let conn = net.server.socket_connection(s[0]).unwrap();
    let (ws, _) = net.client(&["/"]);
    for i in 0..3 {
        net.server.emit(s[0], "e", &(i,)).unwrap();
    }
    net.drain();
    assert!(net.closed.is_empty());
    // Volatile packets are dropped instead, and do not count.
    let nsp = root(&net);
    for _ in 0..5 {
        assert_eq!(
            net.server
                .to_namespace(nsp)
                .volatile()
                .emit("v", &())
                .unwrap(),
            1
        );
    }
    net.drain();
    assert!(net.closed.is_empty());
    assert_eq!(net.take_text(ws).len(), 5);
    // One frame more than the bound: closed.
    net.server.emit(s[0], "e", &(3,)).unwrap();
    net.drain();
    assert_eq!(net.closed, [(conn, DisconnectReason::SlowConsumer)]);
    assert_eq!(net.disconnects(), [(s[0], DisconnectReason::SlowConsumer)]);
    assert!(matches!(
        net.take_events().last(),
        Some(Event::ConnectionClosed {
            reason: DisconnectReason::SlowConsumer,
            ..
        })
    ));
    assert!(net.server.emit(s[0], "e", &()).is_err());
    // The bystander is fine.
    assert_eq!(net.server.to_namespace(nsp).emit("n", &()).unwrap(), 1);
    net.drain();
    assert_eq!(net.take_text(ws), [r#"42["n"]"#]);
    let q = format!("EIO=4&transport=polling&sid={sid}");
    let HttpAction::Respond(r) = net.http(Method::Get, &q, false) else {
        panic!()
    };
    assert_eq!(r.status, 400);
}

#[test]
fn reading_in_time_is_not_slow() {
    let mut net = Net::new({
        let mut c = Config::default();
        c.max_buffered_frames = 3;
        c
    });
    let (sid, s) = net.polling_client(&["/"]);
    for round in 0..5 {
        for i in 0..3 {
            net.server.emit(s[0], "e", &(round * 3 + i,)).unwrap();
        }
        net.drain();
        assert_eq!(net.get_text(&sid).split('\x1e').count(), 3);
    }
    assert!(net.closed.is_empty());
}

#[test]
fn binary_frames_count_toward_the_bound() {
    let mut net = Net::new({
        let mut c = Config::default();
        c.max_buffered_frames = 3;
        c
    });
    let (_, s) = net.polling_client(&["/"]);
    let conn = net.server.socket_connection(s[0]).unwrap();
    net.server
        .emit(s[0], "b", &(Bytes::from_static(b"x"),))
        .unwrap();
    net.drain();
    assert!(net.closed.is_empty());
    net.server
        .emit(s[0], "b", &(Bytes::from_static(b"y"),))
        .unwrap();
    net.drain();
    assert_eq!(net.closed, [(conn, DisconnectReason::SlowConsumer)]);
}

#[test]
fn websocket_slow_consumer_reported_by_the_adapter() {
    let mut net = Net::new(Config::default());
    let (conn, s) = net.client(&["/"]);
    net.server.handle_slow_consumer(net.now, conn);
    net.drain();
    assert_eq!(net.closed, [(conn, DisconnectReason::SlowConsumer)]);
    assert_eq!(net.disconnects(), [(s[0], DisconnectReason::SlowConsumer)]);
}
