//! Two servers as nodes of one cluster, on the virtual clock, with the "network" between them
//! carried by the test: a broadcast leaves a node as one message and reaches the matching
//! sockets of the other, exactly as if they were on one node.

mod common;

use bytes::Bytes;
use common::Net;
use roomcast::engine::Frame;
use roomcast::{ClusterTransmit, Config, SeededRandom};

fn node(seed: u64) -> Net {
    let mut net = Net::with_random(Config::default(), Box::new(SeededRandom::new(seed)));
    net.server.join_cluster("socket.io");
    let root = net.server.namespace("/").unwrap();
    assert!(net.server.cluster_adapter(root).is_some());
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
            .handle_cluster_message(&t.channel, &t.payload)
            .unwrap();
        // Every node also receives its own messages: each must drop its echo.
        assert_eq!(
            from.server
                .handle_cluster_message(&t.channel, &t.payload)
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
                .handle_cluster_message(&t.channel, &t.payload)
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
            .handle_cluster_message("socket.io#/#red#", emitter)
            .unwrap(),
        1
    );
    b.drain();
    assert_eq!(b.take_text(cb), [r#"42["msg","x"]"#]);
    // Another namespace's channel, and garbage: nothing, and a typed error.
    assert_eq!(
        b.server
            .handle_cluster_message("socket.io#/chat#", emitter)
            .unwrap(),
        0
    );
    assert!(b
        .server
        .handle_cluster_message("socket.io#/#", b"\xc1")
        .is_err());
    // A reserved event name from a publisher is refused, not sent.
    let reserved = b"\x93\xa1u\x83\xa4type\x02\xa4data\x91\xa7connect\xa3nsp\xa1/\x83\xa5rooms\x90\xa6except\x90\xa5flags\x80";
    assert!(b
        .server
        .handle_cluster_message("socket.io#/#", reserved)
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
                .handle_cluster_message(&t.channel, &t.payload)
                .unwrap(),
            1
        );
        assert_eq!(
            a.server
                .handle_cluster_message(&t.channel, &t.payload)
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
            .handle_cluster_message("socket.io-request#/#", join)
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
            .handle_cluster_message("socket.io-request#/#", emitter)
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
        .handle_cluster_message("socket.io-request#/#", all)
        .unwrap();
    let fetch =
        br#"{"uid":"rN-oO1","requestId":"YjWFpx","type":5,"opts":{"rooms":["red"],"except":[]}}"#;
    b.server
        .handle_cluster_message("socket.io-request#/#", fetch)
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
    let uid = b.server.cluster_adapter(root).unwrap().0.to_string();
    let own = format!(r#"{{"uid":"{uid}","requestId":"x","type":1}}"#);
    b.server
        .handle_cluster_message("socket.io-request#/#", own.as_bytes())
        .unwrap();
    assert!(published(&mut b).is_empty());
}
