//! Property test of connection state recovery: for random interleavings of broadcasts (to
//! rooms, except rooms, from a sender), emits to one socket, joins, leaves, transports that
//! stall (packets lost on the wire), drops and reconnects, every client ends up having received
//! exactly the events of a twin that never dropped: nothing missing, nothing twice, in order.

mod common;

use common::Net;
use proptest::prelude::*;
use roomcast::engine::Frame;
use roomcast::{Config, ConnectionHandle, Event, RecoveryConfig, SocketHandle};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

const PEERS: usize = 4;
const ROOMS: [&str; 3] = ["r0", "r1", "r2"];

#[derive(Debug, Clone)]
enum Op {
    Join {
        c: usize,
        room: usize,
    },
    Leave {
        c: usize,
        room: usize,
    },
    Broadcast {
        to: Vec<usize>,
        except: Vec<usize>,
        from: Option<usize>,
    },
    Direct {
        c: usize,
    },
    /// The client stops receiving: what is written to it from now on is lost.
    Stall {
        c: usize,
    },
    /// Its transport closes (the server sees it).
    Drop {
        c: usize,
    },
    /// It comes back on a new connection with its pid and offset.
    Reconnect {
        c: usize,
    },
    /// Time passes (well within the recovery window).
    Wait {
        ms: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let c = 0..PEERS;
    let room = 0..ROOMS.len();
    let rooms = proptest::collection::vec(0..ROOMS.len(), 0..3);
    prop_oneof![
        1 => (c.clone(), room.clone()).prop_map(|(c, room)| Op::Join { c, room }),
        1 => (c.clone(), room).prop_map(|(c, room)| Op::Leave { c, room }),
        3 => (rooms.clone(), rooms, proptest::option::of(c.clone()))
            .prop_map(|(to, except, from)| Op::Broadcast { to, except, from }),
        1 => c.clone().prop_map(|c| Op::Direct { c }),
        1 => c.clone().prop_map(|c| Op::Stall { c }),
        1 => c.clone().prop_map(|c| Op::Drop { c }),
        2 => c.prop_map(|c| Op::Reconnect { c }),
        1 => (1u64..2000).prop_map(|ms| Op::Wait { ms }),
    ]
}

struct Peer {
    conn: ConnectionHandle,
    /// `None` while dropped.
    socket: Option<SocketHandle>,
    sid: String,
    pid: String,
    offset: Option<String>,
    stalled: bool,
    rooms: BTreeSet<usize>,
    got: Vec<u64>,
    expected: Vec<u64>,
}

struct World {
    net: Net,
    peers: Vec<Peer>,
    next_id: u64,
}

impl World {
    fn new() -> Self {
        let mut r = RecoveryConfig::default();
        r.max_disconnection_duration = Duration::from_secs(3600);
        let mut config = Config::default();
        config.recovery = Some(r);
        // No pings: the clock moves, but only transports the test drops close.
        config.ping_interval = Duration::MAX;
        config.ping_timeout = Duration::MAX;
        let mut w = World {
            net: Net::new(config),
            peers: Vec::new(),
            next_id: 0,
        };
        for _ in 0..PEERS {
            let conn = w.net.ws_connect();
            w.net.ws_send(conn, "40");
            let (request, _, _) = w.net.take_connect_request();
            let socket = w.net.server.accept(request, 0).unwrap();
            w.net.drain();
            w.peers.push(Peer {
                conn,
                socket: Some(socket),
                sid: String::new(),
                pid: String::new(),
                offset: None,
                stalled: false,
                rooms: BTreeSet::new(),
                got: Vec::new(),
                expected: Vec::new(),
            });
            let i = w.peers.len() - 1;
            w.read(i);
            // Every client gets an event first: recovery needs an offset (as in the reference).
            w.apply(Op::Direct { c: i });
        }
        w
    }

    /// Reads what reached peer `i`'s connection (nothing, if it is stalled: lost).
    fn read(&mut self, i: usize) {
        let p = &mut self.peers[i];
        let frames = self.net.inbox.remove(&p.conn).unwrap_or_default();
        if p.stalled {
            return;
        }
        for f in frames {
            let Frame::Text(t) = f else { continue };
            if let Some(json) = t.strip_prefix("40") {
                let v: Value = serde_json::from_str(json).unwrap();
                p.sid = v["sid"].as_str().unwrap().to_owned();
                p.pid = v["pid"].as_str().unwrap().to_owned();
                continue;
            }
            let json = t.strip_prefix("42").expect("an event");
            let v: Vec<Value> = serde_json::from_str(json).unwrap();
            assert_eq!(v.len(), 3, "[name, id, offset]: {t}");
            p.got.push(v[1].as_u64().unwrap());
            p.offset = Some(v[2].as_str().unwrap().to_owned());
        }
    }

    fn read_all(&mut self) {
        self.net.drain();
        for i in 0..self.peers.len() {
            self.read(i);
        }
    }

    /// Whether a peer (live or dropped, as its twin that never dropped) is selected.
    fn selected(&self, i: usize, to: &[usize], except: &[usize], from: Option<usize>) -> bool {
        let p = &self.peers[i];
        from != Some(i)
            && (to.is_empty() || to.iter().any(|r| p.rooms.contains(r)))
            && !except.iter().any(|r| p.rooms.contains(r))
    }

    fn apply(&mut self, op: Op) {
        let root = self.net.server.namespace("/").unwrap();
        match op {
            Op::Join { c, room } | Op::Leave { c, room } => {
                let Some(s) = self.peers[c].socket else {
                    return;
                };
                if matches!(op, Op::Join { .. }) {
                    self.net.server.join(s, ROOMS[room]).unwrap();
                    self.peers[c].rooms.insert(room);
                } else {
                    self.net.server.leave(s, ROOMS[room]).unwrap();
                    self.peers[c].rooms.remove(&room);
                }
            }
            Op::Broadcast { to, except, from } => {
                let sender = match from {
                    Some(f) => match self.peers[f].socket {
                        Some(s) => Some(s),
                        None => return,
                    },
                    None => None,
                };
                let id = self.next_id;
                self.next_id += 1;
                for i in 0..self.peers.len() {
                    if self.selected(i, &to, &except, from) {
                        self.peers[i].expected.push(id);
                    }
                }
                let mut b = match sender {
                    Some(s) => self.net.server.broadcast_from(s).unwrap(),
                    None => self.net.server.to_namespace(root),
                };
                for r in &to {
                    b = b.to(ROOMS[*r]);
                }
                for r in &except {
                    b = b.except(ROOMS[*r]);
                }
                b.emit("e", &(id,)).unwrap();
            }
            Op::Direct { c } => {
                let Some(s) = self.peers[c].socket else {
                    return;
                };
                let id = self.next_id;
                self.next_id += 1;
                self.peers[c].expected.push(id);
                self.net.server.emit(s, "e", &(id,)).unwrap();
            }
            Op::Stall { c } => {
                if self.peers[c].socket.is_some() {
                    self.peers[c].stalled = true;
                }
            }
            Op::Drop { c } => {
                if self.peers[c].socket.take().is_some() {
                    self.net
                        .server
                        .handle_ws_closed(self.net.now, self.peers[c].conn);
                    // What it was still sent never arrives.
                    self.peers[c].stalled = true;
                }
            }
            Op::Reconnect { c } => {
                if self.peers[c].socket.is_some() && !self.peers[c].stalled {
                    return;
                }
                self.read_all();
                let p = &self.peers[c];
                let auth = serde_json::json!({"pid": p.pid, "offset": p.offset});
                let conn = self.net.ws_connect();
                self.net.ws_send(conn, &format!("40{auth}"));
                let p = &mut self.peers[c];
                p.conn = conn;
                p.stalled = false;
                let socket = self
                    .net
                    .events
                    .iter()
                    .rev()
                    .find_map(|e| match e {
                        Event::Connected {
                            socket,
                            recovered: true,
                            ..
                        } => Some(*socket),
                        _ => None,
                    })
                    .expect("recovered");
                assert_eq!(self.net.server.sid(socket), Some(p.sid.as_str()));
                p.socket = Some(socket);
                self.net.events.clear();
            }
            Op::Wait { ms } => self.net.advance(Duration::from_millis(ms)),
        }
        self.read_all();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_recovered_client_receives_what_a_client_that_never_dropped_receives(
        ops in proptest::collection::vec(op(), 1..60)
    ) {
        let mut w = World::new();
        for op in ops {
            w.apply(op);
        }
        for c in 0..PEERS {
            w.apply(Op::Reconnect { c });
        }
        for (i, p) in w.peers.iter().enumerate() {
            prop_assert_eq!(&p.got, &p.expected, "peer {}", i);
        }
        w.net.server.check_invariants().unwrap();
    }
}
