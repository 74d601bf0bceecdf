//! A test driver for the core: fake clients over an in-memory "network" and a virtual clock
//! that jumps from one `poll_timeout` to the next. No sleeps, fully deterministic.
#![allow(dead_code)]

use bytes::Bytes;
use roomcast::engine::{self, Frame};
use roomcast::{
    Config, ConnectRequest, ConnectionHandle, DisconnectReason, Event, HttpAction, HttpRequest,
    HttpResponse, Method, RequestId, SeededRandom, Server, SocketHandle, Str, Transmit,
};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The server, what it wrote, and the clock.
pub struct Net {
    pub server: Server<u32>,
    pub now: Instant,
    /// WebSocket frames written to each connection, not yet read by the test.
    pub inbox: HashMap<ConnectionHandle, Vec<Frame>>,
    /// Answers to held GETs.
    pub poll_answers: HashMap<RequestId, Bytes>,
    /// Connections the server closed (whole session), with the reason.
    pub closed: Vec<(ConnectionHandle, DisconnectReason)>,
    /// WebSockets closed by a failed upgrade.
    pub ws_closed: Vec<ConnectionHandle>,
    /// Application events not yet read by the test.
    pub events: Vec<Event>,
    /// Largest batch seen (recipients of one transmit).
    pub batches: Vec<usize>,
}

impl Net {
    pub fn new(config: Config) -> Self {
        Self::with_random(config, Box::new(SeededRandom::new(7)))
    }

    /// A server drawing its ids from `rng`.
    pub fn with_random(config: Config, rng: Box<dyn roomcast::RandomSource + Send>) -> Self {
        Net {
            server: Server::with_random(config, rng).expect("valid config"),
            now: Instant::now(),
            inbox: HashMap::new(),
            poll_answers: HashMap::new(),
            closed: Vec::new(),
            ws_closed: Vec::new(),
            events: Vec::new(),
            batches: Vec::new(),
        }
    }

    /// Drains every output of the server into the fake network.
    pub fn drain(&mut self) {
        while let Some(t) = self.server.poll_transmit() {
            match t {
                Transmit::WebSocket { to, frames, .. } => {
                    self.batches.push(to.len());
                    for c in to {
                        self.inbox
                            .entry(c)
                            .or_default()
                            .extend(frames.iter().cloned());
                    }
                }
                Transmit::PollResponse { request, body, .. } => {
                    self.poll_answers.insert(request, body.clone());
                }
                Transmit::Close { conn, reason } => self.closed.push((conn, reason)),
                Transmit::CloseWebSocket { conn } => self.ws_closed.push(conn),
                t => panic!("unexpected transmit {t:?}"),
            }
        }
        while let Some(e) = self.server.poll_event() {
            self.events.push(e);
        }
        self.server.check_invariants().expect("invariants");
    }

    /// Moves the clock forward by `d`, firing every timer on the way.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = self.server.poll_timeout().filter(|t| *t <= end) {
            self.now = self.now.max(t);
            self.server.handle_timeout(self.now);
            self.drain();
        }
        self.now = end;
        self.server.handle_timeout(self.now);
        self.drain();
    }

    pub fn http(&mut self, method: Method, query: &str, websocket: bool) -> HttpAction {
        let a = self.server.handle_http(self.now, {
            let r = HttpRequest::new(method, query);
            if websocket {
                r.websocket()
            } else {
                r
            }
        });
        self.drain();
        a
    }

    /// A WebSocket-only session; returns the connection (its open packet is read).
    pub fn ws_connect(&mut self) -> ConnectionHandle {
        let HttpAction::AcceptWebSocket(conn) =
            self.http(Method::Get, "EIO=4&transport=websocket", true)
        else {
            panic!("websocket handshake refused")
        };
        self.server.handle_ws_open(self.now, conn);
        self.drain();
        let open = self.take_text(conn);
        assert_eq!(open.len(), 1);
        assert!(open[0].starts_with("0{\"sid\":"), "{open:?}");
        conn
    }

    /// A long-polling handshake; returns the Engine.IO session id.
    pub fn polling_connect(&mut self) -> String {
        let HttpAction::Respond(r) = self.http(Method::Get, "EIO=4&transport=polling", false)
        else {
            panic!("polling handshake not answered")
        };
        assert_eq!(r.status, 200);
        let text = std::str::from_utf8(&r.body).unwrap();
        let json = text.strip_prefix('0').expect("open packet");
        engine::Handshake::from_json(json).unwrap().sid
    }

    /// POSTs a payload to a polling session.
    pub fn post(&mut self, sid: &str, body: &[u8]) -> HttpResponse {
        let q = format!("EIO=4&transport=polling&sid={sid}");
        let HttpAction::ReadBody(id) = self.http(Method::Post, &q, false) else {
            panic!("POST not accepted")
        };
        let r = self
            .server
            .handle_post_body(self.now, id, Bytes::copy_from_slice(body));
        self.drain();
        r
    }

    /// GETs from a polling session: `Ok(body)` answered at once, `Err(id)` held.
    pub fn get(&mut self, sid: &str) -> Result<Bytes, RequestId> {
        let q = format!("EIO=4&transport=polling&sid={sid}");
        match self.http(Method::Get, &q, false) {
            HttpAction::Respond(r) => {
                assert_eq!(r.status, 200, "{r:?}");
                Ok(r.body)
            }
            HttpAction::Hold(id) => Err(id),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn ws_send(&mut self, conn: ConnectionHandle, text: &str) {
        self.server
            .handle_ws_message(self.now, conn, Frame::Text(Str::from(text)));
        self.drain();
    }

    pub fn ws_send_binary(&mut self, conn: ConnectionHandle, bytes: &[u8]) {
        self.server
            .handle_ws_message(self.now, conn, Frame::Binary(Bytes::copy_from_slice(bytes)));
        self.drain();
    }

    /// Every frame written to `conn` since last read.
    pub fn take(&mut self, conn: ConnectionHandle) -> Vec<Frame> {
        self.inbox.remove(&conn).unwrap_or_default()
    }

    /// Every text frame written to `conn` since last read, as strings (binary ones as `<bin N>`).
    pub fn take_text(&mut self, conn: ConnectionHandle) -> Vec<String> {
        self.take(conn)
            .into_iter()
            .map(|f| match f {
                Frame::Text(s) => s.to_string(),
                Frame::Binary(b) => format!("<bin {}>", b.len()),
            })
            .collect()
    }

    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Joins namespace `nsp` over a WebSocket connection and accepts it with `data`.
    pub fn join_nsp(&mut self, conn: ConnectionHandle, nsp: &str, data: u32) -> SocketHandle {
        let packet = if nsp == "/" {
            "40".to_string()
        } else {
            format!("40{nsp},")
        };
        self.ws_send(conn, &packet);
        let request = self
            .take_events()
            .into_iter()
            .find_map(|e| match e {
                Event::ConnectRequest { request, .. } => Some(request),
                _ => None,
            })
            .expect("connect request");
        let socket = self.server.accept(request, data).unwrap();
        self.drain();
        let out = self.take_text(conn);
        let prefix = if nsp == "/" {
            "40{\"sid\":".to_string()
        } else {
            format!("40{nsp},{{\"sid\":")
        };
        assert!(out.iter().any(|f| f.starts_with(&prefix)), "{out:?}");
        self.events
            .retain(|e| !matches!(e, Event::Connected { .. }));
        socket
    }

    /// A WebSocket client connected to the namespaces given, one socket each.
    pub fn client(&mut self, nsps: &[&str]) -> (ConnectionHandle, Vec<SocketHandle>) {
        let conn = self.ws_connect();
        let sockets = nsps.iter().map(|n| self.join_nsp(conn, n, 0)).collect();
        (conn, sockets)
    }

    pub fn is_closed(&self, conn: ConnectionHandle) -> Option<DisconnectReason> {
        self.closed
            .iter()
            .find(|(c, _)| *c == conn)
            .map(|(_, r)| *r)
    }

    // ---- Helpers added for the scenario tests (server_engine.rs, server_socketio.rs) ----

    /// An HTTP request with a `Content-Length`.
    pub fn http_with_length(
        &mut self,
        method: Method,
        query: &str,
        content_length: Option<u64>,
    ) -> HttpAction {
        let a = self.server.handle_http(self.now, {
            let mut r = HttpRequest::new(method, query);
            r.content_length = content_length;
            r
        });
        self.drain();
        a
    }

    /// Removes the first connect request from the unread events: the request, the namespace
    /// name asked for and the auth payload.
    pub fn take_connect_request(&mut self) -> (ConnectRequest, String, Option<String>) {
        let i = self
            .events
            .iter()
            .position(|e| matches!(e, Event::ConnectRequest { .. }))
            .unwrap_or_else(|| panic!("no connect request in {:?}", self.events));
        let Event::ConnectRequest {
            request,
            nsp_name,
            auth,
            ..
        } = self.events.remove(i)
        else {
            unreachable!()
        };
        (request, nsp_name.to_string(), auth.map(|a| a.to_string()))
    }

    /// An immediate answer to a GET on a polling session, as text (panics if it is held).
    pub fn get_text(&mut self, sid: &str) -> String {
        match self.get(sid) {
            Ok(body) => String::from_utf8(body.to_vec()).unwrap(),
            Err(id) => panic!("GET held ({id:?}), expected an immediate answer"),
        }
    }

    /// The answer written to a held GET, if any (removed).
    pub fn take_answer(&mut self, id: RequestId) -> Option<String> {
        self.poll_answers
            .remove(&id)
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
    }

    /// Joins namespace `nsp` over a polling session, accepts it with `data` and reads the
    /// CONNECT answer with a GET.
    pub fn poll_join(&mut self, sid: &str, nsp: &str, data: u32) -> SocketHandle {
        let packet = if nsp == "/" {
            "40".to_string()
        } else {
            format!("40{nsp},")
        };
        let r = self.post(sid, packet.as_bytes());
        assert_eq!(&r.body[..], b"ok");
        let (request, _, _) = self.take_connect_request();
        let socket = self.server.accept(request, data).unwrap();
        self.drain();
        let body = self.get_text(sid);
        let prefix = if nsp == "/" {
            "40{\"sid\":".to_string()
        } else {
            format!("40{nsp},{{\"sid\":")
        };
        assert!(body.starts_with(&prefix), "{body:?}");
        self.events
            .retain(|e| !matches!(e, Event::Connected { .. }));
        socket
    }

    /// A long-polling client connected to the namespaces given, one socket each; returns its
    /// Engine.IO session id and its sockets.
    pub fn polling_client(&mut self, nsps: &[&str]) -> (String, Vec<SocketHandle>) {
        let sid = self.polling_connect();
        let sockets = nsps.iter().map(|n| self.poll_join(&sid, n, 0)).collect();
        (sid, sockets)
    }

    /// Upgrades a polling session to WebSocket (probe, then upgrade); returns the connection.
    /// Frames written to the WebSocket during the upgrade are left in the inbox, minus `3probe`.
    pub fn upgrade(&mut self, sid: &str) -> ConnectionHandle {
        let q = format!("EIO=4&transport=websocket&sid={sid}");
        let HttpAction::AcceptWebSocket(conn) = self.http(Method::Get, &q, true) else {
            panic!("upgrade refused")
        };
        self.server.handle_ws_open(self.now, conn);
        self.drain();
        self.ws_send(conn, "2probe");
        let out = self.take_text(conn);
        assert_eq!(out, ["3probe"]);
        self.ws_send(conn, "5");
        conn
    }

    /// Reasons of the `Disconnected` events among the unread ones, per socket, in order.
    pub fn disconnects(&self) -> Vec<(SocketHandle, DisconnectReason)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Disconnected { socket, reason, .. } => Some((*socket, *reason)),
                _ => None,
            })
            .collect()
    }
}
