//! Two servers as nodes of one cluster, on the virtual clock, with the "network" between them
//! carried by the test: a broadcast leaves a node as one message and reaches the matching
//! sockets of the other, exactly as if they were on one node.

mod common;

use bytes::Bytes;
use common::Net;
use roomcast::engine::Frame;
use roomcast::{ClusterTransmit, Config, SeededRandom};

fn node(seed: u64) -> Net {
    // Spread: nearby seeds of the test generator may draw the same six uid characters.
    let seed = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut net = Net::with_random(Config::default(), Box::new(SeededRandom::new(seed)));
    net.server.join_cluster(roomcast::ClusterConfig::default());
    let root = net.server.namespace("/").unwrap();
    assert!(net.server.cluster_uid(root).is_some());
    net
}

fn published(net: &mut Net) -> Vec<ClusterTransmit> {
    std::iter::from_fn(|| net.server.poll_cluster_transmit()).collect()
}

/// Carries every message of `from` to `to`; returns how many sockets of `to` it reached.
fn carry(from: &mut Net, to: &mut Net) -> usize {
    let mut reached = 0;
    for t in published(from) {
        reached += to
            .server
            .handle_cluster_message(std::time::Instant::now(), &t.channel, &t.payload)
            .unwrap();
        // Every node also receives its own messages: each must drop its echo.
        assert_eq!(
            from.server
                .handle_cluster_message(std::time::Instant::now(), &t.channel, &t.payload)
                .unwrap(),
            0
        );
    }
    to.drain();
    from.drain();
    reached
}

#[test]
fn a_room_broadcast_reaches_the_rooms_members_on_the_other_node() {
    let (mut a, mut b) = (node(1), node(2));
    let (ca, sa) = a.client(&["/"]);
    let (cb, sb) = b.client(&["/"]);
    let (cb2, _) = b.client(&["/"]);
    a.server.join(sa[0], "red").unwrap();
    b.server.join(sb[0], "red").unwrap();
    for n in [&mut a, &mut b] {
        n.drain();
    }
    let root = a.server.namespace("/").unwrap();
    let local = a
        .server
        .to_namespace(root)
        .to("red")
        .emit("msg", &("hi",))
        .unwrap();
    a.drain();
    assert_eq!(local, 1);
    let out = published(&mut a);
    assert_eq!(out.len(), 1, "one message per broadcast");
    assert_eq!(out[0].channel, "socket.io#/#red#");
    for t in &out {
        assert_eq!(
            b.server
                .handle_cluster_message(std::time::Instant::now(), &t.channel, &t.payload)
                .unwrap(),
            1
        );
    }
    b.drain();
    assert_eq!(a.take_text(ca), [r#"42["msg","hi"]"#]);
    assert_eq!(b.take_text(cb), [r#"42["msg","hi"]"#]);
    assert!(b.take_text(cb2).is_empty(), "not in the room");
}

#[test]
fn broadcast_from_a_socket_excludes_it_everywhere_and_except_rooms_apply_remotely() {
    let (mut a, mut b) = (node(3), node(4));
    let (ca, sa) = a.client(&["/"]);
    let (cb, _) = b.client(&["/"]);
    let (cm, sm) = b.client(&["/"]);
    b.server.join(sm[0], "muted").unwrap();
    for n in [&mut a, &mut b] {
        n.drain();
    }
    a.server
        .broadcast_from(sa[0])
        .unwrap()
        .except("muted")
        .emit("news", &(1,))
        .unwrap();
    a.drain();
    assert_eq!(carry(&mut a, &mut b), 1);
    assert!(a.take_text(ca).is_empty(), "the sender is excluded");
    assert_eq!(b.take_text(cb), [r#"42["news",1]"#]);
    assert!(
        b.take_text(cm).is_empty(),
        "an except room of the other node"
    );
}

#[test]
fn binary_arguments_cross_nodes_as_attachments() {
    let (mut a, mut b) = (node(5), node(6));
    a.client(&["/"]);
    let (cb, _) = b.client(&["/"]);
    for n in [&mut a, &mut b] {
        n.drain();
    }
    let root = a.server.namespace("/").unwrap();
    a.server
        .to_namespace(root)
        .emit("file", &(Bytes::from_static(b"\x00\x01\xff"), "name"))
        .unwrap();
    a.drain();
    assert_eq!(carry(&mut a, &mut b), 1);
    assert_eq!(
        b.take(cb),
        [
            Frame::Text(r#"451-["file",{"_placeholder":true,"num":0},"name"]"#.into()),
            Frame::Binary(Bytes::from_static(b"\x00\x01\xff")),
        ]
    );
}

#[test]
fn local_broadcasts_stay_and_rooms_a_node_lacks_are_dropped() {
    let (mut a, mut b) = (node(7), node(8));
    a.client(&["/"]);
    let (cb, _) = b.client(&["/"]);
    for n in [&mut a, &mut b] {
        n.drain();
    }
    let root = a.server.namespace("/").unwrap();
    a.server.to_namespace(root).local().emit("x", &()).unwrap();
    assert!(published(&mut a).is_empty(), "local publishes nothing");
    a.server
        .to_namespace(root)
        .to("nobody-here")
        .emit("y", &())
        .unwrap();
    assert_eq!(carry(&mut a, &mut b), 0);
    assert!(b.take_text(cb).is_empty());
}

#[test]
fn what_the_emitter_and_node_nodes_publish_is_delivered() {
    let mut b = node(9);
    let (cb, sb) = b.client(&["/"]);
    b.server.join(sb[0], "red").unwrap();
    b.drain();
    // @socket.io/redis-emitter: `emitter.to("red").emit("msg", "x")` (redis-cluster.md §8).
    let emitter = b"\x93\xa7emitter\x83\xa4type\x02\xa4data\x92\xa3msg\xa1x\xa3nsp\xa1/\x83\xa5rooms\x91\xa3red\xa5flags\x80\xa6except\x90";
    assert_eq!(
        b.server
            .handle_cluster_message(std::time::Instant::now(), "socket.io#/#red#", emitter)
            .unwrap(),
        1
    );
    b.drain();
    assert_eq!(b.take_text(cb), [r#"42["msg","x"]"#]);
    // Another namespace's channel, and garbage: nothing, and a typed error.
    assert_eq!(
        b.server
            .handle_cluster_message(std::time::Instant::now(), "socket.io#/chat#", emitter)
            .unwrap(),
        0
    );
    assert!(b
        .server
        .handle_cluster_message(std::time::Instant::now(), "socket.io#/#", b"\xc1")
        .is_err());
    // A reserved event name from a publisher is refused, not sent.
    let reserved = b"\x93\xa1u\x83\xa4type\x02\xa4data\x91\xa7connect\xa3nsp\xa1/\x83\xa5rooms\x90\xa6except\x90\xa5flags\x80";
    assert!(b
        .server
        .handle_cluster_message(std::time::Instant::now(), "socket.io#/#", reserved)
        .is_err());
    b.drain();
    assert!(b.take_text(cb).is_empty());
}

#[test]
fn sockets_join_leave_and_disconnect_apply_on_every_node() {
    let (mut a, mut b) = (node(11), node(12));
    let (_, sa) = a.client(&["/"]);
    let (cb, sb) = b.client(&["/"]);
    let (_, sb2) = b.client(&["/"]);
    b.server.join(sb[0], "red").unwrap();
    for n in [&mut a, &mut b] {
        n.drain();
    }
    let root = a.server.namespace("/").unwrap();
    // socketsJoin of the members of "red", on every node: none here, one there.
    assert_eq!(a.server.to_namespace(root).to("red").join("blue"), 0);
    let out = published(&mut a);
    assert_eq!(out[0].channel, "socket.io-request#/#");
    for t in &out {
        assert_eq!(
            b.server
                .handle_cluster_message(std::time::Instant::now(), &t.channel, &t.payload)
                .unwrap(),
            1
        );
        assert_eq!(
            a.server
                .handle_cluster_message(std::time::Instant::now(), &t.channel, &t.payload)
                .unwrap(),
            0,
            "echo"
        );
    }
    let rooms = |n: &Net, s| {
        let mut r: Vec<String> = n.server.rooms_of(s).iter().map(|r| r.to_string()).collect();
        r.sort();
        r
    };
    assert!(rooms(&b, sb[0]).contains(&"blue".to_string()));
    assert!(!rooms(&b, sb2[0]).contains(&"blue".to_string()));
    assert!(!rooms(&a, sa[0]).contains(&"blue".to_string()));
    // socketsLeave for everyone but the room "red".
    a.server.to_namespace(root).except("red").leave("blue");
    carry(&mut a, &mut b);
    assert!(rooms(&b, sb[0]).contains(&"blue".to_string()), "excepted");
    // The emitter's join has no uid: everyone applies it (JSON, redis-cluster.md §8).
    let join = br#"{"type":2,"opts":{"rooms":[],"except":[]},"rooms":["orange"]}"#;
    assert_eq!(
        b.server
            .handle_cluster_message(std::time::Instant::now(), "socket.io-request#/#", join)
            .unwrap(),
        2
    );
    assert!(rooms(&b, sb2[0]).contains(&"orange".to_string()));
    // disconnectSockets of "blue" from the other node.
    a.server.to_namespace(root).to("blue").disconnect(false);
    carry(&mut a, &mut b);
    assert_eq!(b.take_text(cb).last().map(String::as_str), Some("41"));
    assert_eq!(b.server.socket_count(), 1);
}

#[test]
fn server_side_emit_reaches_the_other_nodes_servers_only() {
    let (mut a, mut b) = (node(13), node(14));
    let (cb, _) = b.client(&["/"]);
    for n in [&mut a, &mut b] {
        n.drain();
        n.take_events();
    }
    let root = a.server.namespace("/").unwrap();
    a.server
        .server_side_emit(
            root,
            "cluster-ping",
            &(serde_json::json!({"n": 1}), Bytes::from_static(b"\x07")),
        )
        .unwrap();
    assert_eq!(carry(&mut a, &mut b), 1);
    assert!(a.take_events().is_empty(), "not to itself");
    let events = b.take_events();
    let [roomcast::Event::ServerSideEmit { event, .. }] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(event.name(), "cluster-ping");
    let (obj, bin): (serde_json::Value, Bytes) = event.args().unwrap();
    assert_eq!(
        (obj, bin),
        (serde_json::json!({"n": 1}), Bytes::from_static(b"\x07"))
    );
    assert!(b.take_text(cb).is_empty(), "no client hears it");
    // What the emitter sends (redis-cluster.md §3).
    let emitter = br#"{"uid":"emitter","type":6,"data":["cluster-ping",{"tag":"a"}]}"#;
    assert_eq!(
        b.server
            .handle_cluster_message(std::time::Instant::now(), "socket.io-request#/#", emitter)
            .unwrap(),
        1
    );
    b.drain();
    assert!(matches!(
        &b.take_events()[..],
        [roomcast::Event::ServerSideEmit { event, .. }] if event.name() == "cluster-ping"
    ));
}

#[test]
fn requests_from_node_nodes_are_answered_once_on_the_shared_response_channel() {
    let mut b = node(15);
    let (_, sb) = b.client(&["/"]);
    b.server.join(sb[0], "red").unwrap();
    b.drain();
    let sid = b.server.sid(sb[0]).unwrap().to_string();
    // allRooms and fetchSockets of a Node node (redis-cluster.md §8).
    let all = br#"{"uid":"rN-oO1","requestId":"LRCXyf","type":1}"#;
    b.server
        .handle_cluster_message(std::time::Instant::now(), "socket.io-request#/#", all)
        .unwrap();
    let fetch =
        br#"{"uid":"rN-oO1","requestId":"YjWFpx","type":5,"opts":{"rooms":["red"],"except":[]}}"#;
    b.server
        .handle_cluster_message(std::time::Instant::now(), "socket.io-request#/#", fetch)
        .unwrap();
    let out = published(&mut b);
    assert_eq!(out.len(), 2, "one answer each");
    assert!(out.iter().all(|t| t.channel == "socket.io-response#/#"));
    let roomcast::cluster::classic::Response::AllRooms {
        request_id,
        mut rooms,
    } = roomcast::cluster::classic::decode_response(&out[0].payload).unwrap()
    else {
        panic!()
    };
    rooms.sort();
    let mut want = vec!["red".to_string(), sid.clone()];
    want.sort();
    assert_eq!((request_id.as_str(), rooms), ("LRCXyf", want));
    let roomcast::cluster::classic::Response::Fetch { sockets, .. } =
        roomcast::cluster::classic::decode_response(&out[1].payload).unwrap()
    else {
        panic!()
    };
    assert_eq!(sockets.len(), 1);
    assert_eq!(sockets[0].id, sid);
    // Its own request is not answered (the requester counts itself).
    let root = b.server.namespace("/").unwrap();
    let uid = b.server.cluster_uid(root).unwrap().to_string();
    let own = format!(r#"{{"uid":"{uid}","requestId":"x","type":1}}"#);
    b.server
        .handle_cluster_message(
            std::time::Instant::now(),
            "socket.io-request#/#",
            own.as_bytes(),
        )
        .unwrap();
    assert!(published(&mut b).is_empty());
}

// ---- Requests that wait for every node -------------------------------------------------------

use roomcast::{ClusterConfig, ClusterError, ClusterReply, ConnectionHandle, Event, SocketHandle};
use std::time::Duration;

/// Carries messages between the nodes until none is left, as Redis does (every node, the
/// sender included, receives each one); node counts are answered with the number of nodes.
fn settle(nodes: &mut [&mut Net]) {
    loop {
        let mut any = false;
        for i in 0..nodes.len() {
            for t in published(nodes[i]) {
                any = true;
                let ClusterTransmit {
                    channel,
                    payload,
                    count,
                    ..
                } = t;
                if let Some(c) = count {
                    let n = nodes.len();
                    nodes[i].server.handle_node_count(c, n);
                }
                for node in nodes.iter_mut() {
                    let now = node.now;
                    let r = node.server.handle_cluster_message(now, &channel, &payload);
                    if std::env::var("DBG").is_ok() {
                        eprintln!("{channel} {:?} -> {r:?}", String::from_utf8_lossy(&payload));
                    }
                }
            }
        }
        for n in nodes.iter_mut() {
            n.drain();
        }
        if !any {
            break;
        }
    }
}

/// A client joining `/` with auth `{"name": name}`, accepted with `data`.
fn named(net: &mut Net, name: &str, data: u32) -> (ConnectionHandle, SocketHandle) {
    let conn = net.ws_connect();
    net.ws_send(conn, &format!(r#"40{{"name":"{name}"}}"#));
    let (request, _, _) = net.take_connect_request();
    let s = net.server.accept(request, data).unwrap();
    net.drain();
    net.take_text(conn);
    net.take_events();
    (conn, s)
}

fn reply_of(events: Vec<Event>) -> (ClusterReply, Option<ClusterError>) {
    let mut replies: Vec<_> = events
        .into_iter()
        .filter_map(|e| match e {
            Event::ClusterReply { reply, error, .. } => Some((reply, error)),
            _ => None,
        })
        .collect();
    assert_eq!(replies.len(), 1, "one reply per request");
    replies.remove(0)
}

#[test]
fn fetch_sockets_gathers_every_nodes_sockets_with_their_handshake_and_data() {
    let (mut a, mut b) = (node(21), node(22));
    let (_, s1) = named(&mut a, "n1", 7);
    let (_, s2) = named(&mut b, "n2", 8);
    let (_, s3) = named(&mut b, "n3", 9);
    a.server.join(s1, "red").unwrap();
    b.server.join(s2, "red").unwrap();
    b.server.join(s3, "blue").unwrap();
    settle(&mut [&mut a, &mut b]);
    a.take_events();
    let root = a.server.namespace("/").unwrap();
    let now = a.now;
    a.server
        .to_namespace(root)
        .to("red")
        .fetch_sockets(now)
        .unwrap();
    settle(&mut [&mut a, &mut b]);
    let (ClusterReply::Sockets(mut sockets), None) = reply_of(a.take_events()) else {
        panic!()
    };
    sockets.sort_by_key(|x| x.data.as_u64());
    let names: Vec<_> = sockets
        .iter()
        .map(|s| {
            let auth = s.handshake.as_map().unwrap()[0].1.as_map().unwrap();
            (
                auth[0].1.as_str().unwrap().to_owned(),
                s.data.as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(names, [("n1".to_string(), 7), ("n2".to_string(), 8)]);
    let sid2 = b.server.sid(s2).unwrap();
    assert_eq!(sockets[1].id, sid2);
    assert!(sockets[1].rooms.contains(&"red".to_string()));
    assert!(sockets[1].rooms.contains(&sid2.to_string()));
    // `local`: this node's only, at once, nothing published.
    a.server
        .to_namespace(root)
        .local()
        .fetch_sockets(now)
        .unwrap();
    assert!(published(&mut a).is_empty());
    a.drain();
    let (ClusterReply::Sockets(local), None) = reply_of(a.take_events()) else {
        panic!()
    };
    assert_eq!(local.len(), 1);
}

#[test]
fn all_rooms_unites_every_nodes_rooms() {
    let (mut a, mut b) = (node(23), node(24));
    let (_, s1) = named(&mut a, "n1", 0);
    let (_, s2) = named(&mut b, "n2", 0);
    a.server.join(s1, "red").unwrap();
    b.server.join(s2, "red").unwrap();
    b.server.join(s2, "blue").unwrap();
    let root = a.server.namespace("/").unwrap();
    let now = a.now;
    a.server.all_rooms(now, root).unwrap();
    settle(&mut [&mut a, &mut b]);
    let (ClusterReply::Rooms(rooms), None) = reply_of(a.take_events()) else {
        panic!()
    };
    let mut want = vec![
        "blue".to_string(),
        "red".to_string(),
        a.server.sid(s1).unwrap().to_string(),
        b.server.sid(s2).unwrap().to_string(),
    ];
    want.sort();
    assert_eq!(rooms, want);
}

#[test]
fn server_side_emit_with_ack_takes_one_answer_per_other_node_and_times_out_with_what_came() {
    let (mut a, mut b, mut c) = (node(25), node(26), node(27));
    let root = a.server.namespace("/").unwrap();
    let now = a.now;
    a.server
        .server_side_emit_with_ack(now, root, "cluster-ask", &(1,))
        .unwrap();
    settle(&mut [&mut a, &mut b, &mut c]);
    // b answers (twice: only the first counts, the token is used up by the first); c is silent.
    let ack = b
        .take_events()
        .into_iter()
        .find_map(|e| match e {
            Event::ServerSideEmit { event, ack, .. } if event.name() == "cluster-ask" => ack,
            _ => None,
        })
        .expect("an ack to give");
    b.server.server_side_ack(ack, &"3302").unwrap();
    assert!(c
        .take_events()
        .iter()
        .any(|e| matches!(e, Event::ServerSideEmit { ack: Some(_), .. })));
    settle(&mut [&mut a, &mut b, &mut c]);
    assert!(a.take_events().is_empty(), "still waiting for c");
    a.advance(Duration::from_secs(5));
    let (ClusterReply::Responses(r), Some(err)) = reply_of(a.take_events()) else {
        panic!()
    };
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].deserialize::<(String,)>().unwrap().0, "3302");
    assert_eq!(
        err.to_string(),
        "timeout reached: only 1 responses received out of 2"
    );
}

#[test]
fn broadcast_with_acks_waits_for_every_nodes_count_and_clients() {
    let (mut a, mut b) = (node(28), node(29));
    let (ca, sa) = named(&mut a, "n1", 0);
    let (cb1, sb1) = named(&mut b, "n2", 0);
    let (cb2, sb2) = named(&mut b, "n3", 0);
    a.server.join(sa, "red").unwrap();
    b.server.join(sb1, "red").unwrap();
    b.server.join(sb2, "red").unwrap();
    let root = a.server.namespace("/").unwrap();
    let now = a.now;
    let (h, here) = a
        .server
        .to_namespace(root)
        .to("red")
        .emit_with_ack(
            now,
            "question",
            &(Bytes::from_static(b"\x01"),),
            Duration::from_secs(3),
        )
        .unwrap();
    assert_eq!(here, 1);
    settle(&mut [&mut a, &mut b]);
    // Each node draws its own ack id; the question reaches b's clients with its binary.
    for (on_a, conn) in [(true, ca), (false, cb1), (false, cb2)] {
        let net = if on_a { &mut a } else { &mut b };
        let frames = net.take_text(conn);
        assert_eq!(frames.len(), 2, "{frames:?}");
        let f = &frames[0];
        assert!(f.starts_with("451-"), "{f}");
        let id: String = f[4..].chars().take_while(char::is_ascii_digit).collect();
        net.take(conn);
        net.ws_send(conn, &format!(r#"43{id}["{}"]"#, conn.index()));
    }
    settle(&mut [&mut a, &mut b]);
    let events = a.take_events();
    let [Event::BroadcastAck {
        ack,
        replies,
        remote,
        expected,
        timed_out,
    }] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!((*ack, *expected, *timed_out), (h, 3, false));
    assert_eq!(replies.len(), 1);
    let mut got: Vec<String> = remote
        .iter()
        .map(|p| p.deserialize::<(String,)>().unwrap().0)
        .collect();
    got.sort();
    let mut want = vec![cb1.index().to_string(), cb2.index().to_string()];
    want.sort();
    assert_eq!(got, want);
    let _ = (sb1, sb2);
}

#[test]
fn a_broadcast_with_acks_times_out_with_the_answers_that_came() {
    let (mut a, mut b) = (node(30), node(31));
    let (_, sb) = named(&mut b, "n2", 0);
    b.server.join(sb, "red").unwrap();
    let root = a.server.namespace("/").unwrap();
    let now = a.now;
    a.server
        .to_namespace(root)
        .to("red")
        .emit_with_ack(now, "question", &(), Duration::from_secs(3))
        .unwrap();
    settle(&mut [&mut a, &mut b]);
    assert!(a.take_events().is_empty(), "b's client has not answered");
    a.advance(Duration::from_secs(3));
    let events = a.take_events();
    let [Event::BroadcastAck {
        remote,
        expected,
        timed_out: true,
        ..
    }] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!((remote.len(), *expected), (0, 1));
    // b forgets it at the same timeout.
    b.advance(Duration::from_secs(3));
    b.server.check_invariants().unwrap();
}

#[test]
fn a_request_without_a_node_count_ends_at_its_timeout_with_the_reference_error() {
    let mut a = node(32);
    let root = a.server.namespace("/").unwrap();
    let now = a.now;
    a.server.to_namespace(root).fetch_sockets(now).unwrap();
    // The transport could not count (Redis down): the token is dropped.
    let out = published(&mut a);
    assert_eq!(out.len(), 1);
    assert!(out[0].count.is_some());
    drop(out);
    a.advance(Duration::from_secs(5));
    let (ClusterReply::Sockets(s), Some(err)) = reply_of(a.take_events()) else {
        panic!()
    };
    assert!(s.is_empty());
    assert_eq!(
        err.to_string(),
        "timeout reached while waiting for fetchSockets response"
    );
    assert_eq!(a.server.pending_work(), 0);
}

#[test]
fn requests_and_the_outgoing_queue_are_bounded() {
    let mut net = Net::with_random(Config::default(), Box::new(SeededRandom::new(33)));
    let mut c = ClusterConfig::default();
    c.max_requests = 2;
    c.max_queued = 3;
    net.server.join_cluster(c);
    let root = net.server.namespace("/").unwrap();
    let now = net.now;
    net.server.all_rooms(now, root).unwrap();
    net.server.all_rooms(now, root).unwrap();
    assert!(matches!(
        net.server.all_rooms(now, root),
        Err(roomcast::Error::ClusterBusy)
    ));
    // Two requests queued; one more message fits, the next is dropped and counted.
    net.server.server_side_emit(root, "a", &()).unwrap();
    assert_eq!(net.server.cluster_dropped(), 0);
    net.server.server_side_emit(root, "b", &()).unwrap();
    assert_eq!(net.server.cluster_dropped(), 1);
    assert_eq!(published(&mut net).len(), 3);
}

#[test]
fn outside_a_cluster_requests_answer_at_once_with_this_node() {
    let mut net = Net::new(Config::default());
    let (_, s) = named(&mut net, "solo", 4);
    net.server.join(s, "red").unwrap();
    let root = net.server.namespace("/").unwrap();
    let now = net.now;
    net.server
        .to_namespace(root)
        .to("red")
        .fetch_sockets(now)
        .unwrap();
    net.server.all_rooms(now, root).unwrap();
    net.server
        .server_side_emit_with_ack(now, root, "x", &())
        .unwrap();
    net.drain();
    let replies: Vec<_> = net
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::ClusterReply {
                reply, error: None, ..
            } => Some(reply),
            _ => None,
        })
        .collect();
    assert_eq!(replies.len(), 3);
    assert!(matches!(&replies[0], ClusterReply::Sockets(v) if v.len() == 1));
    assert!(matches!(&replies[1], ClusterReply::Rooms(v) if v.len() == 2));
    assert!(matches!(&replies[2], ClusterReply::Responses(v) if v.is_empty()));
}

// ---- The sharded protocol ----------------------------------------------------------------------

use roomcast::cluster::adapter::{Protocol, Topic};
use roomcast::ClusterSubscription;

fn sharded_node(seed: u64) -> Net {
    let seed = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut net = Net::with_random(Config::default(), Box::new(SeededRandom::new(seed)));
    let mut c = ClusterConfig::default();
    c.protocol = Protocol::Sharded;
    net.server.join_cluster(c);
    net
}

fn subscriptions(net: &mut Net) -> Vec<ClusterSubscription> {
    std::iter::from_fn(|| net.server.poll_cluster_subscription()).collect()
}

#[test]
fn a_sharded_node_subscribes_to_its_channels_and_to_its_public_rooms() {
    let mut a = sharded_node(40);
    let root = a.server.namespace("/").unwrap();
    let uid = a.server.cluster_uid(root).unwrap().to_string();
    assert_eq!(uid.len(), 16);
    assert_eq!(
        subscriptions(&mut a),
        [ClusterSubscription::Subscribe(vec![
            Topic::Shard("socket.io#/#".into()),
            Topic::Shard(format!("socket.io#/#{uid}#")),
        ])]
    );
    let (_, s) = named(&mut a, "n1", 0);
    // Its own-id room is not a public room: no channel.
    assert!(subscriptions(&mut a).is_empty());
    a.server.join(s, "red").unwrap();
    let red = || vec![Topic::Shard("socket.io#/#red#".into())];
    assert_eq!(
        subscriptions(&mut a),
        [ClusterSubscription::Subscribe(red())]
    );
    a.server.leave(s, "red").unwrap();
    assert_eq!(
        subscriptions(&mut a),
        [ClusterSubscription::Unsubscribe(red())]
    );
    // A room deleted by a disconnection is dropped too.
    a.server.join(s, "blue").unwrap();
    subscriptions(&mut a);
    a.server.disconnect(s).unwrap();
    assert_eq!(
        subscriptions(&mut a),
        [ClusterSubscription::Unsubscribe(vec![Topic::Shard(
            "socket.io#/#blue#".into()
        )])]
    );
}

#[test]
fn sharded_nodes_broadcast_fetch_and_answer_on_the_requesters_channel() {
    let (mut a, mut b) = (sharded_node(41), sharded_node(42));
    let (ca, sa) = named(&mut a, "n1", 1);
    let (cb, sb) = named(&mut b, "n2", 2);
    a.server.join(sa, "red").unwrap();
    b.server.join(sb, "red").unwrap();
    let root = a.server.namespace("/").unwrap();
    a.server
        .to_namespace(root)
        .to("red")
        .emit("msg", &(Bytes::from_static(b"\x01\x02"), 0.5))
        .unwrap();
    a.drain();
    let out = published(&mut a);
    assert_eq!(out.len(), 1);
    assert!(out[0].sharded);
    assert_eq!(out[0].channel, "socket.io#/#red#");
    assert_ne!(out[0].payload[0], b'{', "binary: msgpack");
    for t in &out {
        let now = b.now;
        assert_eq!(
            b.server
                .handle_cluster_message(now, &t.channel, &t.payload)
                .unwrap(),
            1
        );
    }
    b.drain();
    assert_eq!(
        a.take_text(ca).len(),
        2,
        "the local member: text + attachment"
    );
    let got = b.take_text(cb);
    assert_eq!(got[0], r#"451-["msg",{"_placeholder":true,"num":0},0.5]"#);
    // fetchSockets: the count is SHARDNUMSUB of the main channel; the answer goes to a's channel.
    let now = a.now;
    a.server.to_namespace(root).fetch_sockets(now).unwrap();
    let request = published(&mut a);
    let count = request[0].count.as_ref().unwrap();
    assert!(count.sharded());
    assert_eq!(count.channel(), "socket.io#/#");
    let uid_a = a.server.cluster_uid(root).unwrap().to_string();
    let now = b.now;
    b.server
        .handle_cluster_message(now, &request[0].channel, &request[0].payload)
        .unwrap();
    let answer = published(&mut b);
    assert_eq!(answer[0].channel, format!("socket.io#/#{uid_a}#"));
    for t in request {
        if let Some(c) = t.count {
            a.server.handle_node_count(c, 2);
        }
    }
    let now = a.now;
    a.server
        .handle_cluster_message(now, &answer[0].channel, &answer[0].payload)
        .unwrap();
    a.drain();
    let (ClusterReply::Sockets(s), None) = reply_of(a.take_events()) else {
        panic!()
    };
    assert_eq!(s.len(), 2);
    // allRooms has no message in this protocol.
    assert!(matches!(
        a.server.all_rooms(now, root),
        Err(roomcast::Error::ClusterUnsupported(_))
    ));
}

#[test]
fn a_sharded_fetch_times_out_with_the_sharded_message() {
    let (mut a, mut b, mut c) = (sharded_node(43), sharded_node(44), sharded_node(45));
    let root = a.server.namespace("/").unwrap();
    let now = a.now;
    a.server.to_namespace(root).fetch_sockets(now).unwrap();
    // Only b hears it (c is stopped, still counted).
    let out = published(&mut a);
    for t in out {
        if let Some(count) = t.count {
            a.server.handle_node_count(count, 3);
        }
        let now = b.now;
        b.server
            .handle_cluster_message(now, &t.channel, &t.payload)
            .unwrap();
    }
    settle(&mut [&mut a, &mut b]);
    let _ = &mut c;
    a.advance(Duration::from_secs(5));
    let (_, Some(err)) = reply_of(a.take_events()) else {
        panic!()
    };
    assert_eq!(
        err.to_string(),
        "timeout reached: only 1 responses received out of 2"
    );
}

#[test]
fn room_subscriptions_the_transport_does_not_take_are_bounded_and_counted() {
    let seed = 46u64.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut a = Net::with_random(Config::default(), Box::new(SeededRandom::new(seed)));
    let mut c = ClusterConfig::default();
    c.protocol = Protocol::Sharded;
    c.max_queued = 2;
    a.server.join_cluster(c);
    let (_, s) = named(&mut a, "n1", 0);
    // The namespace's own channels are queued; one room fits, the next is dropped, counted.
    a.server.join(s, "r1").unwrap();
    assert_eq!(a.server.cluster_dropped(), 0);
    a.server.join(s, "r2").unwrap();
    assert_eq!(a.server.cluster_dropped(), 1);
    assert_eq!(subscriptions(&mut a).len(), 2);
}

#[test]
fn fetch_sockets_carries_the_handshake_of_the_sessions_first_request() {
    let (mut a, mut b) = (node(47), node(48));
    let mut info = roomcast::RequestInfo::new(
        "/socket.io/?EIO=4&transport=websocket&k=v",
        Some("127.0.0.1"),
        [("host", "127.0.0.1:3301")],
    );
    info.unix_ms = Some(1_796_148_032_210);
    let now = b.now;
    let request = roomcast::HttpRequest::get("EIO=4&transport=websocket&k=v")
        .websocket()
        .with_info(&info);
    let roomcast::HttpAction::AcceptWebSocket(conn) = b.server.handle_http(now, request) else {
        panic!()
    };
    b.server.handle_ws_open(now, conn);
    b.drain();
    assert_eq!(b.server.request_info(conn), Some(&info));
    b.ws_send(conn, r#"40{"name":"n2"}"#);
    let (request, _, _) = b.take_connect_request();
    b.server.accept(request, 5).unwrap();
    b.drain();
    let root = a.server.namespace("/").unwrap();
    let now = a.now;
    a.server.to_namespace(root).fetch_sockets(now).unwrap();
    settle(&mut [&mut a, &mut b]);
    let (ClusterReply::Sockets(s), None) = reply_of(a.take_events()) else {
        panic!()
    };
    let json = serde_json::to_string(&s[0].handshake).unwrap();
    assert_eq!(
        json,
        r#"{"headers":{"host":"127.0.0.1:3301"},"time":"Tue Dec 01 2026 18:00:32 GMT+0000 (Coordinated Universal Time)","address":"127.0.0.1","xdomain":false,"secure":false,"issued":1796148032210,"url":"/socket.io/?EIO=4&transport=websocket&k=v","query":{"EIO":"4","transport":"websocket","k":"v"},"auth":{"name":"n2"}}"#
    );
    // Gone with its session.
    b.server.close_connection(conn).unwrap();
    b.drain();
    assert_eq!(b.server.request_info(conn), None);
}

#[test]
fn a_long_polling_session_keeps_its_first_requests_info_too() {
    let mut b = node(49);
    let info = roomcast::RequestInfo::new(
        "/socket.io/?EIO=4&transport=polling",
        None,
        [("user-agent", "test")],
    );
    let now = b.now;
    let request = roomcast::HttpRequest::get("EIO=4&transport=polling").with_info(&info);
    let roomcast::HttpAction::Respond(r) = b.server.handle_http(now, request) else {
        panic!("polling handshake not answered")
    };
    let open = std::str::from_utf8(&r.body).unwrap();
    let sid = roomcast::engine::Handshake::from_json(open.strip_prefix('0').unwrap())
        .unwrap()
        .sid;
    b.drain();
    let s = b.poll_join(&sid, "/", 1);
    let conn = b.server.socket_connection(s).unwrap();
    assert_eq!(b.server.request_info(conn), Some(&info));
}

#[test]
fn other_nodes_answers_are_kept_up_to_the_bound_and_still_complete_the_wait() {
    use roomcast::cluster::classic::{encode_response, Response};
    let seed = 49u64.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut a = Net::with_random(Config::default(), Box::new(SeededRandom::new(seed)));
    let mut c = ClusterConfig::default();
    c.max_answers = 1;
    a.server.join_cluster(c);
    let root = a.server.namespace("/").unwrap();
    let now = a.now;
    a.server
        .to_namespace(root)
        .emit_with_ack(now, "question", &(), Duration::from_secs(3))
        .unwrap();
    let out = published(&mut a);
    let request_id = match roomcast::cluster::classic::decode_request(&out[0].payload).unwrap() {
        roomcast::cluster::classic::Request::BroadcastWithAck { request_id, .. } => request_id,
        other => panic!("{other:?}"),
    };
    for t in out {
        if let Some(count) = t.count {
            a.server.handle_node_count(count, 2);
        }
    }
    // Another node claims three clients and sends their answers: one is kept.
    let count = Response::ClientCount {
        request_id: request_id.clone(),
        count: 3,
    };
    let now = a.now;
    a.server
        .handle_cluster_message(now, "socket.io-response#/#", &encode_response(&count))
        .unwrap();
    for i in 0..3 {
        let ack = Response::BroadcastAck {
            request_id: request_id.clone(),
            packet: rmpv::Value::from(i),
        };
        a.server
            .handle_cluster_message(now, "socket.io-response#/#", &encode_response(&ack))
            .unwrap();
    }
    a.drain();
    let events = a.take_events();
    let [Event::BroadcastAck {
        remote,
        expected,
        timed_out: false,
        ..
    }] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!((remote.len(), *expected), (1, 3));
    assert_eq!(a.server.cluster_dropped(), 2);
}

/// A node whose clients speak `parser`.
fn node_with(seed: u64, parser: roomcast::packet::Parser) -> Net {
    let seed = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut config = Config::default();
    config.parser = parser;
    let mut net = Net::with_random(config, Box::new(SeededRandom::new(seed)));
    net.server.join_cluster(roomcast::ClusterConfig::default());
    net
}

#[test]
fn server_side_emits_read_the_same_on_msgpack_nodes() {
    use roomcast::packet::Parser;
    for (pa, pb) in [
        (Parser::Json, Parser::Msgpack),
        (Parser::Msgpack, Parser::Json),
        (Parser::Msgpack, Parser::Msgpack),
    ] {
        let (mut a, mut b) = (node_with(45, pa), node_with(46, pb));
        let root = a.server.namespace("/").unwrap();
        a.server
            .server_side_emit(
                root,
                "ping",
                &(serde_json::json!({"n": 1}), Bytes::from_static(b"\x07")),
            )
            .unwrap();
        assert_eq!(carry(&mut a, &mut b), 1, "{pa} → {pb}");
        let events = b.take_events();
        let [roomcast::Event::ServerSideEmit { event, .. }] = &events[..] else {
            panic!("{events:?}")
        };
        let (obj, bin): (serde_json::Value, Bytes) = event.args().unwrap();
        assert_eq!(
            (obj, bin),
            (serde_json::json!({"n": 1}), Bytes::from_static(b"\x07"))
        );
    }
}

#[test]
fn nodes_exchange_value_trees_whatever_their_clients_parser() {
    use roomcast::packet::{Packet, Parser};
    let msgpack_client = |net: &mut Net| {
        let conn = net.ws_connect();
        // {type: 0, nsp: "/"}
        net.ws_send_binary(conn, b"\x82\xa4type\x00\xa3nsp\xa1/");
        let (request, _, _) = net.take_connect_request();
        net.server.accept(request, 0).unwrap();
        net.drain();
        net.take(conn);
        net.take_events();
        conn
    };
    let decoded = |frames: Vec<Frame>| -> Vec<Packet> {
        frames
            .into_iter()
            .map(|f| {
                let Frame::Binary(b) = f else {
                    panic!("not msgpack: {f:?}")
                };
                Parser::Msgpack
                    .decoder(roomcast::Limits::default())
                    .push_binary(b)
                    .unwrap()
                    .unwrap()
            })
            .collect()
    };
    // JSON node → msgpack node, msgpack node → JSON node, msgpack → msgpack.
    for (pa, pb) in [
        (Parser::Json, Parser::Msgpack),
        (Parser::Msgpack, Parser::Json),
        (Parser::Msgpack, Parser::Msgpack),
    ] {
        let (mut a, mut b) = (node_with(41, pa), node_with(42, pb));
        let cb = match pb {
            Parser::Msgpack => msgpack_client(&mut b),
            _ => b.client(&["/"]).0,
        };
        let ca = match pa {
            Parser::Msgpack => msgpack_client(&mut a),
            _ => a.client(&["/"]).0,
        };
        for n in [&mut a, &mut b] {
            n.drain();
        }
        let root = a.server.namespace("/").unwrap();
        a.server
            .to_namespace(root)
            .emit("file", &(Bytes::from_static(b"\x00\xff"), "name"))
            .unwrap();
        a.drain();
        a.take(ca);
        assert_eq!(carry(&mut a, &mut b), 1, "{pa} → {pb}");
        let want = r#"["file",{"_placeholder":true,"num":0},"name"]"#;
        match pb {
            Parser::Msgpack => {
                let [Packet::Event { event, .. }] = &decoded(b.take(cb))[..] else {
                    panic!()
                };
                assert_eq!(event.data().json().as_str(), want);
                assert_eq!(
                    event.data().attachments(),
                    [Bytes::from_static(b"\x00\xff")]
                );
            }
            _ => assert_eq!(
                b.take(cb),
                [
                    Frame::Text(format!("451-{want}").into()),
                    Frame::Binary(Bytes::from_static(b"\x00\xff")),
                ]
            ),
        }
        // A server-side emit reads the same on a msgpack node (decoded through the JSON
        // codec, whatever the clients' parser).
        a.server
            .server_side_emit(root, "ping", &(serde_json::json!({"n": 1}),))
            .unwrap();
        assert_eq!(carry(&mut a, &mut b), 1);
        let events = b.take_events();
        let [roomcast::Event::ServerSideEmit { event, .. }] = &events[..] else {
            panic!("{events:?}")
        };
        let (obj,): (serde_json::Value,) = event.args().unwrap();
        assert_eq!(obj, serde_json::json!({"n": 1}));
    }
    // A msgpack client's event relayed by its node: notepack's `undefined` and Date reach the
    // other node as the JSON view has them (null, the ISO string), binary as binary.
    let (mut a, mut b) = (
        node_with(43, Parser::Msgpack),
        node_with(44, Parser::Msgpack),
    );
    let ca = msgpack_client(&mut a);
    let cb = msgpack_client(&mut b);
    // {type: 2, nsp: "/", data: ["relay", undefined, Date(0), bin [1]]}
    a.ws_send_binary(
        ca,
        b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x94\xa5relay\xd4\x00\x00\xd7\x00\0\0\0\0\0\0\0\0\xc4\x01\x01",
    );
    let Some(roomcast::Event::Message { socket, event, .. }) = a
        .take_events()
        .into_iter()
        .find(|e| matches!(e, roomcast::Event::Message { .. }))
    else {
        panic!()
    };
    let e = Parser::Msgpack
        .event_with_args_of("/", None, "news", &event)
        .unwrap();
    a.server.broadcast_from(socket).unwrap().emit_encoded(&e);
    a.drain();
    assert_eq!(carry(&mut a, &mut b), 1);
    let [Packet::Event { event, .. }] = &decoded(b.take(cb))[..] else {
        panic!()
    };
    assert_eq!(
        event.data().json().as_str(),
        r#"["news",null,"1970-01-01T00:00:00.000Z",{"_placeholder":true,"num":0}]"#
    );
}
