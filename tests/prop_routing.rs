//! Model-based property test of the routing: random sequences of connects, disconnects (several
//! namespaces), joins, leaves and broadcasts (to, except, from a sender, namespace-wide),
//! checked against a naive model built on `BTreeSet`s. Every broadcast must reach exactly the
//! model's recipients, each once.

use proptest::prelude::*;
use roomcast::engine::Frame;
use roomcast::{
    Config, ConnectionHandle, Event, HttpAction, HttpRequest, SeededRandom, Server, SocketHandle,
    Str, Transmit,
};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

const NSPS: [&str; 3] = ["/", "/a", "/b"];
const ROOMS: [&str; 5] = ["r0", "r1", "r2", "r3", "r4"];
const CLIENTS: usize = 6;

#[derive(Debug, Clone)]
enum Op {
    /// Client `c` joins namespace `n` (a no-op if it already has).
    Connect {
        c: usize,
        n: usize,
    },
    /// The client leaves namespace `n` (by DISCONNECT packet, or the server disconnects it).
    Disconnect {
        c: usize,
        n: usize,
        by_server: bool,
    },
    /// The client's whole connection closes.
    Close {
        c: usize,
    },
    Join {
        c: usize,
        n: usize,
        room: usize,
    },
    Leave {
        c: usize,
        n: usize,
        room: usize,
    },
    /// A broadcast in namespace `n`: `to` rooms (a `None` entry names socket `own`'s id room),
    /// minus `except` rooms, from socket `from` if set.
    Broadcast {
        n: usize,
        to: Vec<Option<usize>>,
        except: Vec<usize>,
        own: usize,
        from: Option<usize>,
        volatile: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let c = 0..CLIENTS;
    let n = 0..NSPS.len();
    let room = 0..ROOMS.len();
    prop_oneof![
        3 => (c.clone(), n.clone()).prop_map(|(c, n)| Op::Connect { c, n }),
        1 => (c.clone(), n.clone(), any::<bool>()).prop_map(|(c, n, by_server)| Op::Disconnect { c, n, by_server }),
        1 => c.clone().prop_map(|c| Op::Close { c }),
        4 => (c.clone(), n.clone(), room.clone()).prop_map(|(c, n, room)| Op::Join { c, n, room }),
        2 => (c.clone(), n.clone(), room.clone()).prop_map(|(c, n, room)| Op::Leave { c, n, room }),
        4 => (
            n,
            prop::collection::vec(prop::option::weighted(0.85, room.clone()), 0..4),
            prop::collection::vec(room, 0..3),
            c.clone(),
            prop::option::of(c),
            any::<bool>(),
        )
            .prop_map(|(n, to, except, own, from, volatile)| Op::Broadcast { n, to, except, own, from, volatile }),
    ]
}

/// The model: which client has a socket in which namespace, in which rooms.
#[derive(Default)]
struct Model {
    /// (client, namespace) → rooms joined.
    sockets: BTreeMap<(usize, usize), BTreeSet<usize>>,
}

struct Sut {
    server: Server,
    now: Instant,
    conns: Vec<Option<ConnectionHandle>>,
    sockets: BTreeMap<(usize, usize), SocketHandle>,
    broadcasts: u64,
}

impl Sut {
    fn new() -> Self {
        let mut server =
            Server::with_random(Config::default(), Box::new(SeededRandom::new(3))).unwrap();
        for n in &NSPS[1..] {
            server.add_namespace(n).unwrap();
        }
        Sut {
            server,
            now: Instant::now(),
            conns: vec![None; CLIENTS],
            sockets: BTreeMap::new(),
            broadcasts: 0,
        }
    }

    /// Drains outputs; returns the WebSocket batches as (recipients, first frame text).
    fn drain(&mut self) -> Vec<(Vec<ConnectionHandle>, String)> {
        let mut out = Vec::new();
        while let Some(t) = self.server.poll_transmit() {
            if let Transmit::WebSocket { to, frames, .. } = t {
                let text = match &frames[0] {
                    Frame::Text(s) => s.to_string(),
                    Frame::Binary(_) => String::new(),
                };
                out.push((to.iter().collect::<Vec<_>>(), text));
            }
        }
        let mut requests = Vec::new();
        while let Some(e) = self.server.poll_event() {
            if let Event::ConnectRequest { request, .. } = e {
                requests.push(request);
            }
        }
        assert!(
            requests.is_empty(),
            "connect requests are accepted where they are made"
        );
        self.server.check_invariants().unwrap();
        out
    }

    fn conn(&mut self, c: usize) -> ConnectionHandle {
        if let Some(h) = self.conns[c] {
            return h;
        }
        let HttpAction::AcceptWebSocket(h) = self.server.handle_http(
            self.now,
            HttpRequest::get("EIO=4&transport=websocket").websocket(),
        ) else {
            panic!("handshake refused")
        };
        self.server.handle_ws_open(self.now, h);
        self.drain();
        self.conns[c] = Some(h);
        h
    }

    fn send(&mut self, h: ConnectionHandle, text: &str) {
        self.server
            .handle_ws_message(self.now, h, Frame::Text(Str::from(text)));
    }

    fn connect(&mut self, c: usize, n: usize) {
        let h = self.conn(c);
        let packet = if n == 0 {
            "40".to_string()
        } else {
            format!("40{},", NSPS[n])
        };
        self.send(h, &packet);
        let mut request = None;
        while let Some(e) = self.server.poll_event() {
            if let Event::ConnectRequest { request: r, .. } = e {
                request = Some(r);
            }
        }
        let socket = self
            .server
            .accept(request.expect("connect request"), ())
            .unwrap();
        self.sockets.insert((c, n), socket);
        self.drain();
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    let mut sut = Sut::new();
    for op in ops {
        match op {
            Op::Connect { c, n } => {
                if let std::collections::btree_map::Entry::Vacant(e) = model.sockets.entry((c, n)) {
                    e.insert(BTreeSet::new());
                    sut.connect(c, n);
                }
            }
            Op::Disconnect { c, n, by_server } => {
                if model.sockets.remove(&(c, n)).is_some() {
                    let socket = sut.sockets.remove(&(c, n)).unwrap();
                    if by_server {
                        sut.server.disconnect(socket).unwrap();
                    } else {
                        let h = sut.conns[c].unwrap();
                        let packet = if n == 0 {
                            "41".to_string()
                        } else {
                            format!("41{},", NSPS[n])
                        };
                        sut.send(h, &packet);
                    }
                    sut.drain();
                    prop_assert!(sut.server.sid(socket).is_none());
                }
            }
            Op::Close { c } => {
                if let Some(h) = sut.conns[c].take() {
                    model.sockets.retain(|(mc, _), _| *mc != c);
                    sut.sockets.retain(|(sc, _), _| *sc != c);
                    sut.server.close_connection(h).unwrap();
                    sut.drain();
                }
            }
            Op::Join { c, n, room } => {
                if let Some(rooms) = model.sockets.get_mut(&(c, n)) {
                    let fresh = rooms.insert(room);
                    let joined = sut.server.join(sut.sockets[&(c, n)], ROOMS[room]).unwrap();
                    prop_assert_eq!(joined, fresh);
                }
            }
            Op::Leave { c, n, room } => {
                if let Some(rooms) = model.sockets.get_mut(&(c, n)) {
                    let was = rooms.remove(&room);
                    let left = sut.server.leave(sut.sockets[&(c, n)], ROOMS[room]).unwrap();
                    prop_assert_eq!(left, was);
                }
            }
            Op::Broadcast {
                n,
                to,
                except,
                own,
                from,
                volatile,
            } => {
                let own_sid: Option<String> = sut
                    .sockets
                    .get(&(own, n))
                    .and_then(|s| sut.server.sid(*s))
                    .map(str::to_owned);
                let from_socket =
                    from.and_then(|f| sut.sockets.get(&(f, n)).copied().map(|s| (f, s)));
                // The model's answer.
                let in_room = |client: usize, room: &Option<usize>| match room {
                    Some(r) => model.sockets[&(client, n)].contains(r),
                    None => own_sid.is_some() && client == own,
                };
                let expected: BTreeSet<usize> = model
                    .sockets
                    .keys()
                    .filter(|(_, sn)| *sn == n)
                    .map(|(client, _)| *client)
                    .filter(|client| to.is_empty() || to.iter().any(|r| in_room(*client, r)))
                    .filter(|client| {
                        !except
                            .iter()
                            .any(|r| model.sockets[&(*client, n)].contains(r))
                    })
                    .filter(|client| from_socket.is_none_or(|(f, _)| f != *client))
                    .collect();
                // The server's.
                sut.broadcasts += 1;
                let name = format!("b{}", sut.broadcasts);
                let nsp = sut.server.namespace(NSPS[n]).unwrap();
                let mut b = match from_socket {
                    Some((_, s)) => sut.server.broadcast_from(s).unwrap(),
                    None => sut.server.to_namespace(nsp),
                };
                for r in &to {
                    b = match r {
                        Some(r) => b.to(ROOMS[*r]),
                        // A socket id that is not connected in this namespace names no one.
                        None => b.to(own_sid
                            .clone()
                            .unwrap_or_else(|| "AAAAAAAAAAAAAAAAAAAA".into())),
                    };
                }
                for r in &except {
                    b = b.except(ROOMS[*r]);
                }
                if volatile {
                    b = b.volatile();
                }
                let reached = b.emit(&name, &()).unwrap();
                let batches = sut.drain();
                let mut got: BTreeMap<ConnectionHandle, usize> = BTreeMap::new();
                for (to, text) in &batches {
                    if text.contains(&format!("\"{name}\"")) {
                        for c in to {
                            *got.entry(*c).or_default() += 1;
                        }
                    }
                }
                prop_assert!(
                    got.values().all(|&k| k == 1),
                    "someone got it twice: {got:?}"
                );
                let got: BTreeSet<usize> = got
                    .keys()
                    .map(|h| {
                        sut.conns
                            .iter()
                            .position(|c| *c == Some(*h))
                            .expect("known client")
                    })
                    .collect();
                prop_assert_eq!(&got, &expected);
                prop_assert_eq!(reached, expected.len());
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn broadcasts_reach_exactly_the_model_recipients(ops in prop::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
