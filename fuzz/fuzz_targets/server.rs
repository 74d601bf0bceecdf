//! The whole server driven by arbitrary sequences: handshakes over both transports, WebSocket
//! frames, long-polling GETs and POSTs, upgrades, aborted requests, time passing, and every
//! application call. After each step the server's indexes must be consistent (rooms both ways,
//! no empty room kept, no pending ack of a gone socket, no connection without its sid).
#![no_main]
use bytes::Bytes;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use roomcast::cluster::classic;
use roomcast::engine::Frame;
use roomcast::{
    AckRequest, ClusterConfig, Config, ConnectRequest, ConnectionHandle, Event, HttpAction,
    HttpRequest, Limits, Method, NodeCount, RequestId, SeededRandom, Server, ServerSideAck,
    SessionFound, SessionRestore, SocketHandle, Str, StreamOffset, Transmit,
};
use roomcast::cluster::streams::{self, StreamEntry};
use std::time::{Duration, Instant};

/// Pieces the generated messages are made of, so the fuzzer reaches deep states quickly.
const PIECES: &[&str] = &[
    "4",
    "0",
    "1",
    "2",
    "3",
    "5",
    "6",
    "40",
    "41",
    "42",
    "43",
    "44",
    "451-",
    "461-",
    "/a,",
    "/b,",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\"ev\"",
    "\"connect\"",
    "\"probe\"",
    "probe",
    "{\"_placeholder\":true,\"num\":0}",
    "{\"token\":1}",
    "1",
    "7",
    "99999999999999999999999",
    "\u{1e}",
    "b",
    "AQID",
    "null",
    "\"x\"",
    ":",
];

struct Driver {
    server: Server<u8>,
    now: Instant,
    conns: Vec<ConnectionHandle>,
    sids: Vec<String>,
    sockets: Vec<SocketHandle>,
    requests: Vec<ConnectRequest>,
    acks: Vec<AckRequest>,
    /// The last messages this node published (bounded).
    published: Vec<(String, Bytes)>,
    /// Node counts the "transport" owes (bounded: the oldest are dropped, as a transport
    /// that cannot count does).
    counts: Vec<NodeCount>,
    side_acks: Vec<ServerSideAck>,
    held: Vec<RequestId>,
    bodies: Vec<RequestId>,
    /// Streams protocol: entry ids owed (bounded: the oldest dropped, as a transport that
    /// gives up does), restores owed, sessions stored.
    offsets: Vec<StreamOffset>,
    restores: Vec<SessionRestore>,
    stored: Vec<Bytes>,
    entries: u64,
}

/// Keeps at most 8, dropping the oldest.
fn keep<T>(v: &mut Vec<T>, x: T) {
    if v.len() >= 8 {
        drop(v.remove(0));
    }
    v.push(x);
}

impl Driver {
    fn drain(&mut self) {
        while let Some(t) = self.server.poll_transmit() {
            if let Transmit::PollResponse { request, .. } = t {
                self.held.retain(|r| *r != request);
            }
        }
        while self.server.poll_cluster_subscription().is_some() {}
        while let Some(t) = self.server.poll_cluster_transmit() {
            if self.published.len() >= 8 {
                self.published.remove(0);
            }
            if let Some(c) = t.count {
                keep(&mut self.counts, c);
            }
            match t.command {
                roomcast::Command::Append {
                    offset: Some(o), ..
                } => keep(&mut self.offsets, o),
                roomcast::Command::Restore(r) => keep(&mut self.restores, r),
                roomcast::Command::SaveSession { .. } => keep(&mut self.stored, t.payload.clone()),
                _ => {}
            }
            self.published.push((t.channel, t.payload));
        }
        while let Some(e) = self.server.poll_event() {
            match e {
                Event::ConnectRequest { request, .. } => self.requests.push(request),
                Event::Connected { socket, .. } => self.sockets.push(socket),
                Event::Message { ack: Some(ack), .. } => self.acks.push(ack),
                Event::ServerSideEmit { ack: Some(ack), .. } if self.side_acks.len() < 8 => {
                    self.side_acks.push(ack)
                }
                _ => {}
            }
        }
        if let Err(e) = self.server.check_invariants() {
            panic!("invariant broken: {e}");
        }
    }

    /// A stream entry: another node's broadcast, or arbitrary fields.
    fn entry(&mut self, u: &mut Unstructured) -> Result<StreamEntry> {
        self.entries += 1;
        let id = format!("1700000000000-{}", self.entries);
        let fields = if u.arbitrary()? {
            let rooms = if u.arbitrary()? { r#"["r1"]"# } else { "[]" };
            let data = format!(
                r#"{{"packet":{{"type":2,"data":["{}",1]}},"opts":{{"rooms":{rooms},"except":[],"flags":{{}}}}}}"#,
                if u.arbitrary()? { "msg" } else { "connect" }
            );
            vec![
                ("uid", "0123456789abcdef".to_owned()),
                ("nsp", if u.arbitrary()? { "/" } else { "/a" }.to_owned()),
                ("type", "3".to_owned()),
                ("data", data),
            ]
            .into_iter()
            .map(|(k, v)| (Bytes::from(k), Bytes::from(v)))
            .collect()
        } else {
            let n = u.int_in_range(0..=5)?;
            (0..n)
                .map(|_| {
                    Ok((
                        Bytes::from(u.arbitrary::<Vec<u8>>()?),
                        Bytes::from(u.arbitrary::<Vec<u8>>()?),
                    ))
                })
                .collect::<Result<_>>()?
        };
        Ok(StreamEntry { id, fields })
    }

    fn text(u: &mut Unstructured) -> Result<String> {
        let mut s = String::new();
        for _ in 0..u.int_in_range(0..=8)? {
            if u.ratio(3, 4)? {
                s.push_str(u.choose(PIECES)?);
            } else {
                s.push(char::from(u.int_in_range(0x20..=0x7e)?));
            }
        }
        Ok(s)
    }

    fn http(
        &mut self,
        method: Method,
        query: &str,
        websocket: bool,
        len: Option<u64>,
    ) -> HttpAction {
        self.server.handle_http(self.now, {
            let mut r = HttpRequest::new(method, query);
            r.websocket = websocket;
            r.content_length = len;
            r
        })
    }

    fn step(&mut self, u: &mut Unstructured) -> Result<()> {
        let conn = |u: &mut Unstructured, d: &Driver| -> Result<Option<ConnectionHandle>> {
            Ok(if d.conns.is_empty() {
                None
            } else {
                Some(*u.choose(&d.conns)?)
            })
        };
        match u.int_in_range(0..=23)? {
            0 => {
                if let HttpAction::AcceptWebSocket(h) =
                    self.http(Method::Get, "EIO=4&transport=websocket", true, None)
                {
                    if u.ratio(9, 10)? {
                        self.server.handle_ws_open(self.now, h);
                    } else {
                        self.server.handle_ws_closed(self.now, h);
                    }
                    self.conns.push(h);
                }
            }
            1 => {
                if let HttpAction::Respond(r) =
                    self.http(Method::Get, "EIO=4&transport=polling", false, None)
                {
                    if let Some(json) = std::str::from_utf8(&r.body)
                        .ok()
                        .and_then(|t| t.strip_prefix('0'))
                    {
                        if let Ok(h) = roomcast::engine::Handshake::from_json(json) {
                            self.sids.push(h.sid);
                        }
                    }
                }
            }
            2 | 3 | 4 => {
                if let Some(h) = conn(u, self)? {
                    let text = Self::text(u)?;
                    self.server
                        .handle_ws_message(self.now, h, Frame::Text(Str::from(text)));
                }
            }
            5 => {
                if let Some(h) = conn(u, self)? {
                    let bytes: Vec<u8> = u.arbitrary()?;
                    self.server
                        .handle_ws_message(self.now, h, Frame::Binary(Bytes::from(bytes)));
                }
            }
            6 => {
                if let Some(h) = conn(u, self)? {
                    self.server.handle_ws_closed(self.now, h);
                }
            }
            7 => {
                if !self.sids.is_empty() {
                    let sid = u.choose(&self.sids)?.clone();
                    let q = format!("EIO=4&transport=polling&sid={sid}");
                    if let HttpAction::Hold(r) = self.http(Method::Get, &q, false, None) {
                        self.held.push(r);
                    }
                }
            }
            8 | 9 => {
                if !self.sids.is_empty() {
                    let sid = u.choose(&self.sids)?.clone();
                    let q = format!("EIO=4&transport=polling&sid={sid}");
                    let len = if u.ratio(1, 8)? {
                        Some(u.arbitrary()?)
                    } else {
                        None
                    };
                    if let HttpAction::ReadBody(r) = self.http(Method::Post, &q, false, len) {
                        if u.ratio(1, 6)? {
                            self.bodies.push(r);
                        } else {
                            let body = Self::text(u)?;
                            let _ = self.server.handle_post_body(self.now, r, Bytes::from(body));
                        }
                    }
                }
            }
            10 => {
                let pool = if u.arbitrary()? {
                    &mut self.held
                } else {
                    &mut self.bodies
                };
                if !pool.is_empty() {
                    let i = u.choose_index(pool.len())?;
                    let r = pool.swap_remove(i);
                    if u.arbitrary()? {
                        self.server.handle_request_aborted(self.now, r);
                    } else {
                        let _ =
                            self.server
                                .handle_post_body(self.now, r, Bytes::from_static(b"40"));
                    }
                }
            }
            11 => {
                if !self.sids.is_empty() {
                    let sid = u.choose(&self.sids)?.clone();
                    let q = format!("EIO=4&transport=websocket&sid={sid}");
                    if let HttpAction::AcceptWebSocket(h) = self.http(Method::Get, &q, true, None) {
                        self.server.handle_ws_open(self.now, h);
                        self.conns.push(h);
                    }
                }
            }
            12 => {
                let ms: u16 = u.arbitrary()?;
                self.now += Duration::from_millis(u64::from(ms) * 8);
                self.server.handle_timeout(self.now);
            }
            13 => {
                if !self.requests.is_empty() {
                    let i = u.choose_index(self.requests.len())?;
                    let r = self.requests.swap_remove(i);
                    if u.ratio(4, 5)? {
                        let _ = self.server.accept(r, 0);
                    } else {
                        let _ = self.server.reject(r, "no", Some(&1));
                    }
                }
            }
            14 | 15 => {
                if !self.sockets.is_empty() {
                    let s = *u.choose(&self.sockets)?;
                    let room = *u.choose(&["r1", "r2", "r3"])?;
                    if u.arbitrary()? {
                        let _ = self.server.join(s, room);
                    } else {
                        let _ = self.server.leave(s, room);
                    }
                }
            }
            16 => {
                if !self.sockets.is_empty() {
                    let s = *u.choose(&self.sockets)?;
                    // Now and then a timeout too large for the clock: it must mean "never".
                    let timeout = if u.ratio(1, 16)? {
                        Duration::MAX
                    } else {
                        Duration::from_millis(u.int_in_range(1..=5000)?)
                    };
                    match u.int_in_range(0..=3)? {
                        0 => drop(self.server.emit(s, "ev", &(1,))),
                        1 => drop(self.server.emit_with_ack(self.now, s, "ev", &(), timeout)),
                        2 if !self.acks.is_empty() => {
                            let i = u.choose_index(self.acks.len())?;
                            drop(self.server.ack(self.acks.swap_remove(i), &("a",)))
                        }
                        2 => {}
                        _ => drop(self.server.leave_all(s)),
                    }
                }
            }
            17 | 18 => {
                let nsp = self
                    .server
                    .namespace(if u.arbitrary()? { "/" } else { "/a" });
                let from = if !self.sockets.is_empty() && u.arbitrary()? {
                    Some(*u.choose(&self.sockets)?)
                } else {
                    None
                };
                let mut b = match (from, nsp) {
                    (Some(s), _) => match self.server.broadcast_from(s) {
                        Some(b) => b,
                        None => return Ok(()),
                    },
                    (None, Some(n)) => self.server.to_namespace(n),
                    (None, None) => return Ok(()),
                };
                for _ in 0..u.int_in_range(0..=2)? {
                    b = b.to(*u.choose(&["r1", "r2", "r3"])?);
                }
                if u.arbitrary()? {
                    b = b.except(*u.choose(&["r1", "r2", "r3"])?);
                }
                if u.arbitrary()? {
                    b = b.volatile();
                }
                match u.int_in_range(0..=4)? {
                    0 | 1 => drop(b.emit("news", &(Bytes::from_static(b"\x01"),))),
                    2 => drop(b.emit_with_ack(self.now, "q", &(), Duration::from_millis(100))),
                    3 => drop(b.join("r2")),
                    _ => drop(b.disconnect(u.arbitrary()?)),
                }
            }
            19 => {
                if !self.sockets.is_empty() {
                    let s = *u.choose(&self.sockets)?;
                    let _ = self.server.disconnect(s);
                }
            }
            20 => {
                if let Some(h) = conn(u, self)? {
                    let _ = self.server.set_blocked(h, u.arbitrary()?);
                }
            }
            21 => {
                if let Some(h) = conn(u, self)? {
                    if u.arbitrary()? {
                        let _ = self.server.close_connection(h);
                    } else {
                        self.server.handle_slow_consumer(self.now, h);
                    }
                }
            }
            22 => {
                if u.ratio(1, 20)? {
                    self.server.shutdown();
                }
            }
            _ => {
                // The cluster: this node's own echo (dropped), a broadcast of another node
                // built from the same pieces clients use, or raw bytes on a channel.
                let channel = *u.choose(&[
                    "socket.io#/#",
                    "socket.io#/#r1#",
                    "socket.io#/a#",
                    "socket.io-request#/#",
                    "socket.io-response#/#",
                    "socket.io#/#0123456789abcdef#",
                    "x",
                ])?;
                match u.int_in_range(0..=8)? {
                    6 if !self.offsets.is_empty() => {
                        let o = self.offsets.swap_remove(u.choose_index(self.offsets.len())?);
                        self.entries += 1;
                        let id = format!("1700000000000-{}", self.entries);
                        let id = match u.int_in_range(0..=2)? {
                            0 => None,
                            1 => Some(Self::text(u)?),
                            _ => Some(id),
                        };
                        self.server.handle_stream_offset(self.now, o, id.as_deref());
                    }
                    7 => {
                        let entry = self.entry(u)?;
                        let _ = self.server.handle_stream_entries(self.now, "socket.io", &[entry]);
                    }
                    8 => {
                        if !self.restores.is_empty() && u.arbitrary()? {
                            let r = self.restores.swap_remove(u.choose_index(self.restores.len())?);
                            let found = if u.arbitrary()? {
                                let session = match self.stored.is_empty() || u.arbitrary()? {
                                    true => Bytes::from(u.arbitrary::<Vec<u8>>()?),
                                    false => self.stored[u.choose_index(self.stored.len())?].clone(),
                                };
                                let n = u.int_in_range(0..=3)?;
                                let entries = (0..n).map(|_| self.entry(u)).collect::<Result<_>>()?;
                                Some(SessionFound {
                                    session,
                                    entries,
                                    complete: u.arbitrary()?,
                                })
                            } else {
                                None
                            };
                            self.server.handle_restore(self.now, r, found);
                        } else if !self.conns.is_empty() {
                            // A CONNECT presenting a stored session's pid.
                            let pid = self
                                .stored
                                .last()
                                .and_then(|s| streams::Session::decode(s).ok())
                                .map_or_else(|| "p".repeat(20), |s| s.pid);
                            let h = self.conns[u.choose_index(self.conns.len())?];
                            let text = format!(r#"40{{"pid":"{pid}","offset":"1700000000000-1"}}"#);
                            self.server
                                .handle_ws_message(self.now, h, Frame::Text(Str::from(text)));
                        }
                    }
                    0 if !self.published.is_empty() => {
                        let (c, p) = self.published[u.choose_index(self.published.len())?].clone();
                        let reached = self.server.handle_cluster_message(self.now, &c, &p);
                        assert!(matches!(reached, Ok(0)), "own echo delivered: {reached:?}");
                    }
                    2 if !self.counts.is_empty() => {
                        let c = self.counts.swap_remove(u.choose_index(self.counts.len())?);
                        self.server.handle_node_count(c, u.int_in_range(0..=3)?);
                    }
                    3 => {
                        let nsp = self
                            .server
                            .namespace(if u.arbitrary()? { "/" } else { "/a" });
                        if let Some(n) = nsp {
                            let _ = match u.int_in_range(0..=2)? {
                                0 => self.server.all_rooms(self.now, n).map(drop),
                                1 => self.server.to_namespace(n).fetch_sockets(self.now).map(drop),
                                _ => self
                                    .server
                                    .server_side_emit_with_ack(self.now, n, "ask", &(1,))
                                    .map(drop),
                            };
                        }
                    }
                    4 if !self.side_acks.is_empty() => {
                        let a = self.side_acks.swap_remove(u.choose_index(self.side_acks.len())?);
                        let _ = self.server.server_side_ack(a, &"me");
                    }
                    1 => {
                        let pick = |u: &mut Unstructured| -> Result<Vec<String>> {
                            let n = u.int_in_range(0..=2)?;
                            (0..n)
                                .map(|_| Ok(u.choose(&["r1", "r2", "r3"])?.to_string()))
                                .collect()
                        };
                        let message = classic::Broadcast {
                            uid: "other".into(),
                            packet: classic::ClusterPacket {
                                nsp: if u.arbitrary()? { "/" } else { "/a" }.into(),
                                data: vec![
                                    rmpv::Value::from(Self::text(u)?),
                                    rmpv::Value::Binary(vec![1, 2]),
                                ],
                            },
                            opts: classic::Options {
                                rooms: pick(u)?,
                                except: pick(u)?,
                                flags: classic::Flags::default(),
                            },
                        };
                        let _ = self.server.handle_cluster_message(
                            self.now,
                            channel,
                            &classic::encode_broadcast(&message),
                        );
                    }
                    _ => {
                        let bytes: Vec<u8> = u.arbitrary()?;
                        let _ = self.server.handle_cluster_message(self.now, channel, &bytes);
                    }
                }
            }
        }
        self.drain();
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let config = {
        let mut c = Config::default();
        c.ping_interval = Duration::from_millis(300);
        c.ping_timeout = Duration::from_millis(200);
        c.upgrade_timeout = Duration::from_millis(500);
        c.connect_timeout = Duration::from_millis(1000);
        c.limits = Limits {
            max_payload: 256,
            max_attachments: 3,
        };
        c.max_buffered_frames = 8;
        c.room_events = true;
        // The first byte's second bit turns connection state recovery on, with tiny bounds
        // (its third bit: whether the application decides recovering sockets).
        let flags = data.first().copied().unwrap_or(0);
        if flags & 2 != 0 {
            let mut r = roomcast::RecoveryConfig::default();
            r.max_disconnection_duration = Duration::from_millis(2000);
            r.skip_middlewares = flags & 4 == 0;
            r.max_log_packets = 16;
            r.max_log_bytes = 4096;
            r.max_sessions = 4;
            r.max_session_bytes = 2048;
            c.recovery = Some(r);
        }
        // Its fifth bit: empty child namespaces (`/dyn...`) are removed.
        c.cleanup_empty_child_namespaces = flags & 16 != 0;
        c
    };
    let mut server = Server::with_random(config, Box::new(SeededRandom::new(1))).unwrap();
    server.add_namespace("/a").unwrap();
    server.set_dynamic_namespaces(|n| n.starts_with("/dyn"));
    // The first byte picks the cluster protocol: all run the same node logic on different
    // wires.
    let flags = data.first().copied().unwrap_or(0);
    server.join_cluster({
        let mut c = ClusterConfig::default();
        // Its fourth bit: the streams protocol (with recovery on, the second bit, offsets and
        // sessions through the "transport").
        use roomcast::cluster::adapter::Protocol;
        c.protocol = match (flags & 8 != 0, flags & 1 != 0) {
            (true, _) => Protocol::Streams,
            (false, true) => Protocol::Sharded,
            (false, false) => Protocol::Classic,
        };
        c.requests_timeout = Duration::from_millis(500);
        c.max_requests = 4;
        c.max_queued = 16;
        c
    });
    for name in ["/", "/a"] {
        if let Some(nsp) = server.namespace(name) {
            let _ = server.cluster_uid(nsp);
        }
    }
    let mut d = Driver {
        server,
        now: Instant::now(),
        conns: Vec::new(),
        sids: Vec::new(),
        sockets: Vec::new(),
        requests: Vec::new(),
        acks: Vec::new(),
        published: Vec::new(),
        counts: Vec::new(),
        side_acks: Vec::new(),
        held: Vec::new(),
        bodies: Vec::new(),
        offsets: Vec::new(),
        restores: Vec::new(),
        stored: Vec::new(),
        entries: 0,
    };
    while !u.is_empty() {
        if d.step(&mut u).is_err() {
            break;
        }
    }
});
