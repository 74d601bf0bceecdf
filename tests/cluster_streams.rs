//! The streams protocol (`@socket.io/redis-streams-adapter` 0.3) between two nodes on the
//! virtual clock, with connection state recovery on: the test plays Redis (one stream, the
//! session keys, Pub/Sub) and carries every command.

mod common;

use bytes::Bytes;
use common::Net;
use roomcast::cluster::adapter::Protocol;
use roomcast::cluster::streams::StreamEntry;
use roomcast::{
    ClusterConfig, Command, Config, ConnectionHandle, Event, RecoveryConfig, SeededRandom,
    SessionFound, StreamOffset,
};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

fn node(seed: u64) -> Net {
    let seed = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut config = Config::default();
    let mut r = RecoveryConfig::default();
    r.max_disconnection_duration = Duration::from_secs(30);
    config.recovery = Some(r);
    let mut net = Net::with_random(config, Box::new(SeededRandom::new(seed)));
    let mut c = ClusterConfig::default();
    c.protocol = Protocol::Streams;
    net.server.join_cluster(c);
    while net.server.poll_cluster_subscription().is_some() {}
    net
}

/// Redis, as far as the protocol uses it.
#[derive(Default)]
struct Redis {
    stream: Vec<StreamEntry>,
    keys: HashMap<String, (Bytes, Duration)>,
    /// Offsets not handed back yet (when the test holds them).
    held: Vec<(StreamOffset, String)>,
    hold: bool,
}

impl Redis {
    /// Runs every command of every node until none is left; each node reads the stream.
    fn pump(&mut self, nodes: &mut [&mut Net]) {
        loop {
            let mut any = false;
            for i in 0..nodes.len() {
                while let Some(t) = nodes[i].server.poll_cluster_transmit() {
                    any = true;
                    match t.command {
                        Command::Publish => {
                            for n in nodes.iter_mut() {
                                let now = n.now;
                                n.server
                                    .handle_cluster_message(now, &t.channel, &t.payload)
                                    .unwrap();
                            }
                        }
                        Command::Append { fields, offset, .. } => {
                            let id = format!("1700000000000-{}", self.stream.len());
                            self.stream.push(StreamEntry {
                                id: id.clone(),
                                fields: fields
                                    .into_iter()
                                    .map(|(k, v)| (Bytes::from(k), Bytes::from(v)))
                                    .collect(),
                            });
                            if let Some(token) = offset {
                                if self.hold {
                                    self.held.push((token, id));
                                } else {
                                    let now = nodes[i].now;
                                    nodes[i].server.handle_stream_offset(now, token, Some(&id));
                                }
                            }
                            for n in nodes.iter_mut() {
                                let now = n.now;
                                let last = self.stream.last().cloned().unwrap();
                                n.server
                                    .handle_stream_entries(now, "socket.io", &[last])
                                    .unwrap();
                            }
                        }
                        Command::SaveSession { ttl } => {
                            self.keys.insert(t.channel, (t.payload, ttl));
                        }
                        Command::Restore(token) => {
                            let found = self.keys.remove(&t.channel).and_then(|(session, _)| {
                                let at = self.stream.iter().position(|e| e.id == token.offset())?;
                                Some(SessionFound {
                                    session,
                                    entries: self.stream[at + 1..].to_vec(),
                                    complete: true,
                                })
                            });
                            let now = nodes[i].now;
                            nodes[i].server.handle_restore(now, token, found);
                        }
                        other => panic!("unexpected command {other:?}"),
                    }
                }
                nodes[i].drain();
            }
            if !any {
                break;
            }
        }
    }
}

/// Events a connection was sent: (text frame) list.
fn texts(net: &mut Net, conn: ConnectionHandle) -> Vec<String> {
    net.take_text(conn)
}

/// The last argument of an event frame (not its name), if it is a string.
fn last_arg(text: &str) -> Option<String> {
    let v: Value = serde_json::from_str(&text[text.find('[')?..]).ok()?;
    let items = v.as_array()?;
    (items.len() > 1).then(|| items.last()?.as_str().map(str::to_owned))?
}

fn connect(net: &mut Net, auth: Option<Value>) -> (ConnectionHandle, String, String) {
    let conn = net.ws_connect();
    let packet = match &auth {
        Some(a) => format!("40{a}"),
        None => "40".to_owned(),
    };
    net.ws_send(conn, &packet);
    accept_pending(net);
    let (sid, pid) = reply_of(net, conn).unwrap_or_default();
    (conn, sid, pid)
}

fn accept_pending(net: &mut Net) {
    if net
        .events
        .iter()
        .any(|e| matches!(e, Event::ConnectRequest { .. }))
    {
        let (request, _, _) = net.take_connect_request();
        net.server.accept(request, 0).unwrap();
        net.drain();
    }
}

fn reply_of(net: &mut Net, conn: ConnectionHandle) -> Option<(String, String)> {
    let t = net.inbox.get(&conn)?.iter().rev().find_map(|f| match f {
        roomcast::engine::Frame::Text(t) if t.starts_with("40{") => Some(t.to_string()),
        _ => None,
    })?;
    let v: Value = serde_json::from_str(&t[2..]).ok()?;
    Some((v["sid"].as_str()?.to_owned(), v["pid"].as_str()?.to_owned()))
}

#[test]
fn every_copy_of_a_broadcast_carries_its_stream_entry_id_on_every_node() {
    let (mut a, mut b) = (node(1), node(2));
    let mut redis = Redis::default();
    let (ca, _, _) = connect(&mut a, None);
    let (cb, sid_b, _) = connect(&mut b, None);
    texts(&mut a, ca);
    texts(&mut b, cb);
    let root = a.server.namespace("/").unwrap();
    // Held until its entry id is known: nothing reaches a's own socket before.
    a.server.to_namespace(root).emit("news", &(1,)).unwrap();
    a.drain();
    assert!(texts(&mut a, ca).is_empty());
    redis.pump(&mut [&mut a, &mut b]);
    let (ta, tb) = (texts(&mut a, ca), texts(&mut b, cb));
    assert_eq!(ta, [r#"42["news",1,"1700000000000-0"]"#]);
    assert_eq!(tb, ta);
    // A direct emit from b to its own socket goes through the stream too (as the reference).
    let sb = b.server.socket_by_sid(&sid_b).unwrap();
    b.server.emit(sb, "direct", &()).unwrap();
    redis.pump(&mut [&mut a, &mut b]);
    assert_eq!(texts(&mut b, cb), [r#"42["direct","1700000000000-1"]"#]);
    assert!(texts(&mut a, ca).is_empty());
    // local, volatile and with an ack: no offset, not in the stream.
    a.server.to_namespace(root).local().emit("l", &()).unwrap();
    a.server
        .to_namespace(root)
        .volatile()
        .emit("v", &())
        .unwrap();
    let now = a.now;
    a.server
        .to_namespace(root)
        .emit_with_ack(now, "q", &(), Duration::from_secs(1))
        .unwrap();
    redis.pump(&mut [&mut a, &mut b]);
    let got = texts(&mut a, ca);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got.iter().all(|t| last_arg(t).is_none()), "{got:?}");
    assert_eq!(
        redis.stream.len(),
        3,
        "the volatile broadcast is an entry too"
    );
}

#[test]
fn held_broadcasts_go_out_in_order_and_without_an_id_after_the_timeout() {
    let (mut a, mut b) = (node(3), node(4));
    let mut redis = Redis {
        hold: true,
        ..Redis::default()
    };
    let (ca, _, _) = connect(&mut a, None);
    texts(&mut a, ca);
    let root = a.server.namespace("/").unwrap();
    for i in 0..3 {
        a.server.to_namespace(root).emit("n", &(i,)).unwrap();
    }
    redis.pump(&mut [&mut a, &mut b]);
    assert!(texts(&mut a, ca).is_empty());
    // Ids back out of order: delivered in order, each once its own and all earlier ones came.
    let mut held = std::mem::take(&mut redis.held);
    let (t2, id2) = held.pop().unwrap();
    let now = a.now;
    a.server.handle_stream_offset(now, t2, Some(&id2));
    a.drain();
    assert!(texts(&mut a, ca).is_empty());
    let (t0, id0) = held.remove(0);
    a.server.handle_stream_offset(now, t0, Some(&id0));
    a.drain();
    assert_eq!(texts(&mut a, ca), [r#"42["n",0,"1700000000000-0"]"#]);
    // The middle one's id never comes: after the requests timeout it goes out without one,
    // and the one after it follows.
    drop(held);
    a.advance(Duration::from_secs(5));
    assert_eq!(
        texts(&mut a, ca),
        [r#"42["n",1]"#, r#"42["n",2,"1700000000000-2"]"#]
    );
    a.advance(Duration::from_secs(5));
    assert!(texts(&mut a, ca).is_empty());
}

#[test]
fn a_client_dropped_from_one_node_recovers_on_the_other_with_what_it_missed() {
    let (mut a, mut b) = (node(5), node(6));
    let mut redis = Redis::default();
    let (ca, sid, pid) = connect(&mut a, None);
    let s = a.server.socket_by_sid(&sid).unwrap();
    a.server.join(s, "r1").unwrap();
    a.server.join(s, "r2").unwrap();
    let root_a = a.server.namespace("/").unwrap();
    a.server.to_namespace(root_a).emit("first", &()).unwrap();
    redis.pump(&mut [&mut a, &mut b]);
    let offset = texts(&mut a, ca).last().and_then(|t| last_arg(t)).unwrap();
    // Dropped: its session goes to Redis.
    a.server.handle_ws_closed(a.now, ca);
    redis.pump(&mut [&mut a, &mut b]);
    let key = format!("sio:session:{pid}");
    assert_eq!(redis.keys[&key].1, Duration::from_secs(30));
    // Meanwhile, from both nodes.
    let root_b = b.server.namespace("/").unwrap();
    b.server
        .to_namespace(root_b)
        .emit("all-from-b", &())
        .unwrap();
    redis.pump(&mut [&mut a, &mut b]);
    a.server
        .to_namespace(root_a)
        .to("r1")
        .emit("r1-from-a", &())
        .unwrap();
    b.server
        .to_namespace(root_b)
        .to("r9")
        .emit("r9", &())
        .unwrap();
    b.server
        .to_namespace(root_b)
        .except("r2")
        .emit("except-r2", &())
        .unwrap();
    b.server
        .to_namespace(root_b)
        .except("r3")
        .emit("except-r3", &())
        .unwrap();
    b.server
        .to_namespace(root_b)
        .to(sid.as_str())
        .emit("to-its-id", &())
        .unwrap();
    b.server
        .to_namespace(root_b)
        .volatile()
        .emit("volatile", &())
        .unwrap();
    redis.pump(&mut [&mut a, &mut b]);

    // Back on b.
    let auth = serde_json::json!({"pid": pid, "offset": offset});
    let cb = b.ws_connect();
    b.ws_send(cb, &format!("40{auth}"));
    redis.pump(&mut [&mut a, &mut b]);
    let got = texts(&mut b, cb);
    let names: Vec<String> = got
        .iter()
        .filter(|t| t.starts_with("42"))
        .map(|t| {
            let v: Value = serde_json::from_str(&t[2..]).unwrap();
            v[0].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(names, ["all-from-b", "r1-from-a", "except-r3", "to-its-id"]);
    assert_eq!(
        got.last().unwrap(),
        &format!(r#"40{{"sid":"{sid}","pid":"{pid}"}}"#)
    );
    for t in got.iter().filter(|t| t.starts_with("42")) {
        assert!(last_arg(t).unwrap().starts_with("1700000000000-"), "{t}");
    }
    let recovered = b
        .take_events()
        .into_iter()
        .find_map(|e| match e {
            Event::Connected {
                socket, recovered, ..
            } => Some((socket, recovered)),
            _ => None,
        })
        .unwrap();
    assert!(recovered.1);
    let mut rooms: Vec<String> = b
        .server
        .rooms_of(recovered.0)
        .iter()
        .map(|r| r.to_string())
        .collect();
    rooms.sort();
    let mut want = vec![sid.clone(), "r1".into(), "r2".into()];
    want.sort();
    assert_eq!(rooms, want);
    // In its rooms cluster-wide: a room broadcast from a reaches it on b.
    a.server
        .to_namespace(root_a)
        .to("r2")
        .emit("live", &())
        .unwrap();
    redis.pump(&mut [&mut a, &mut b]);
    assert_eq!(texts(&mut b, cb).len(), 1);
    // The session was taken: presenting it again is a fresh socket.
    assert!(redis.keys.is_empty());
    let (_, sid2, _) = connect(&mut b, Some(auth));
    redis.pump(&mut [&mut a, &mut b]);
    assert_ne!(sid2, sid);
}

#[test]
fn what_cannot_be_restored_completely_is_a_fresh_socket() {
    let (mut a, mut b) = (node(7), node(8));
    let mut redis = Redis::default();
    // An offset that is not a stream id is not even asked for.
    let (c, _, _) = connect(
        &mut a,
        Some(serde_json::json!({"pid": "x".repeat(20), "offset": "abc"})),
    );
    redis.pump(&mut [&mut a, &mut b]);
    assert!(reply_of(&mut a, c).is_some());
    // An unknown session, then an incomplete replay.
    let auth = serde_json::json!({"pid": "y".repeat(20), "offset": "1-0"});
    let c = a.ws_connect();
    a.ws_send(c, &format!("40{auth}"));
    redis.pump(&mut [&mut a, &mut b]);
    accept_pending(&mut a);
    assert!(reply_of(&mut a, c).is_some());

    let (ca, sid, pid) = connect(&mut a, None);
    let root = a.server.namespace("/").unwrap();
    a.server.to_namespace(root).emit("e", &()).unwrap();
    redis.pump(&mut [&mut a, &mut b]);
    let offset = texts(&mut a, ca).last().and_then(|t| last_arg(t)).unwrap();
    a.server.handle_ws_closed(a.now, ca);
    redis.pump(&mut [&mut a, &mut b]);
    let cb = b.ws_connect();
    b.ws_send(
        cb,
        &format!("40{}", serde_json::json!({"pid": pid, "offset": offset})),
    );
    let Some(t) = b.server.poll_cluster_transmit() else {
        panic!("a restore command")
    };
    let Command::Restore(token) = t.command else {
        panic!("{t:?}")
    };
    let (session, _) = redis.keys.remove(&t.channel).unwrap();
    let now = b.now;
    b.server.handle_restore(
        now,
        token,
        Some(SessionFound {
            session,
            entries: vec![],
            complete: false,
        }),
    );
    b.drain();
    accept_pending(&mut b);
    let (sid2, _) = reply_of(&mut b, cb).unwrap();
    assert_ne!(sid2, sid);
    // A namespace disconnect keeps nothing.
    let (c2, sid3, _) = connect(&mut a, None);
    let s3 = a.server.socket_by_sid(&sid3).unwrap();
    a.server.disconnect(s3).unwrap();
    redis.pump(&mut [&mut a, &mut b]);
    let _ = c2;
    assert!(redis.keys.is_empty());
}
