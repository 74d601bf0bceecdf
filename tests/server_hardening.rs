//! Scenario tests on the virtual clock for the hardening of the core: stale handles across
//! slot reuse, user code that panics inside the core, time arithmetic at its limits, and ids
//! that refuse to degrade when randomness fails.

mod common;

use common::Net;
use roomcast::{
    Config, ConfigError, Event, HttpAction, RandomError, RandomSource, SeededRandom, Server,
};
use std::time::Duration;

// ---- Slots and generations ----------------------------------------------------------------------

#[test]
fn a_connection_slot_reused_past_256_times_never_accepts_a_stale_handle() {
    let mut net = Net::new(Config::default());
    let first = net.ws_connect();
    let first_sid = net.server.connection_sid(first).unwrap().to_string();
    net.ws_send(first, "1");
    let mut stale = vec![first];
    // An 8-bit generation wrapped after 256 reuses; go well past it on one slot.
    for _ in 0..600 {
        let conn = net.ws_connect();
        assert_eq!(conn.index(), first.index(), "the freed slot is reused");
        for old in &stale {
            assert_eq!(net.server.connection_sid(*old), None);
            assert!(net.server.close_connection(*old).is_err());
            assert!(net.server.connection_sockets(*old).is_empty());
        }
        stale.push(conn);
        net.ws_send(conn, "1");
    }
    let live = net.ws_connect();
    assert_ne!(net.server.connection_sid(live), Some(first_sid.as_str()));
    assert_eq!(net.server.connection_count(), 1);
    // A stale handle's input is ignored, not routed to the newcomer.
    net.server
        .handle_ws_message(net.now, first, roomcast::engine::Frame::Text("1".into()));
    net.drain();
    assert_eq!(net.server.connection_count(), 1);
    assert!(net.is_closed(live).is_none());
}

#[test]
fn a_socket_slot_reused_past_256_times_never_accepts_a_stale_handle() {
    let mut net = Net::new(Config::default());
    let conn = net.ws_connect();
    let first = net.join_nsp(conn, "/", 0);
    net.ws_send(conn, "41");
    net.take_events();
    net.take_text(conn);
    let mut stale = vec![first];
    for i in 0..600 {
        let s = net.join_nsp(conn, "/", i);
        assert_eq!(s.index(), first.index(), "the freed socket slot is reused");
        for old in &stale {
            assert!(net.server.emit(*old, "x", &()).is_err());
            assert!(net.server.join(*old, "r").is_err());
            assert_eq!(net.server.data(*old), None);
        }
        stale.push(s);
        net.ws_send(conn, "41");
        net.take_events();
        net.take_text(conn);
    }
    assert_eq!(net.server.socket_count(), 0);
}

// ---- User code inside the core ------------------------------------------------------------------

#[test]
fn a_panicking_dynamic_namespace_rule_refuses_that_namespace_only() {
    let mut net = Net::new(Config::default());
    net.server.set_dynamic_namespaces(|name| {
        if name == "/boom" {
            panic!("the application's rule failed");
        }
        name.starts_with("/dyn-")
    });
    let bystander = net.ws_connect();
    net.join_nsp(bystander, "/", 1);
    net.take_events();
    let conn = net.ws_connect();
    net.ws_send(conn, "40/boom,");
    assert_eq!(
        net.take_text(conn),
        [r#"44/boom,{"message":"Invalid namespace"}"#]
    );
    // The core goes on: the same connection and the others are served.
    let s = net.join_nsp(conn, "/dyn-a", 2);
    assert!(net.server.socket_namespace(s).is_some());
    assert!(net.closed.is_empty());
    net.ws_send(bystander, r#"42["still",1]"#);
    assert!(net
        .take_events()
        .iter()
        .any(|e| matches!(e, Event::Message { event, .. } if event.name() == "still")));
}

// ---- Time ------------------------------------------------------------------------------------------

#[test]
fn durations_too_large_for_the_clock_mean_no_timer() {
    let mut config = Config::default();
    config.ping_interval = Duration::MAX;
    config.ping_timeout = Duration::MAX;
    config.upgrade_timeout = Duration::MAX;
    config.connect_timeout = Duration::MAX;
    let mut net = Net::new(config);
    let idle = net.ws_connect();
    let (sid, _) = net.polling_client(&["/"]);
    net.upgrade(&sid);
    let (conn, s) = net.client(&["/"]);
    assert_eq!(net.server.poll_timeout(), None, "nothing is ever due");
    // Acks without an end: no timer either.
    let ack = net
        .server
        .emit_with_ack(net.now, s[0], "ask", &(), Duration::MAX)
        .unwrap();
    let nsp = net.server.namespace("/").unwrap();
    net.server
        .to_namespace(nsp)
        .emit_with_ack(net.now, "all", &(), Duration::MAX)
        .unwrap();
    net.drain();
    assert_eq!(net.server.poll_timeout(), None);
    // A year later nothing fired: no ping, no timeout, no close.
    net.advance(Duration::from_secs(365 * 24 * 3600));
    assert!(net.closed.is_empty());
    assert!(net.is_closed(idle).is_none());
    let events = net.take_events();
    assert!(!events.iter().any(|e| matches!(e, Event::Ack { .. })));
    // The answer still arrives whenever it comes.
    let frames = net.take_text(conn);
    let id = frames
        .iter()
        .find_map(|f| f.strip_prefix("42").and_then(|f| f.split('[').next()))
        .map(str::to_owned)
        .unwrap();
    net.ws_send(conn, &format!("43{id}[\"late\"]"));
    assert!(net.take_events().iter().any(|e| matches!(
        e,
        Event::Ack { ack: a, result: Ok(_), .. } if *a == ack
    )));
}

#[test]
fn an_invalid_config_is_refused_when_the_server_is_built() {
    let mut config = Config::default();
    config.ping_interval = Duration::ZERO;
    assert!(matches!(
        Server::<()>::new(config),
        Err(ConfigError::OutOfRange {
            name: "ping_interval",
            ..
        })
    ));
    let mut config = Config::default();
    config.max_buffered_frames = 0;
    assert!(Server::<()>::new(config).is_err());
}

// ---- Ids --------------------------------------------------------------------------------------------

/// Randomness that works `left` times, then fails for good.
struct Failing {
    left: usize,
    inner: SeededRandom,
}

impl RandomSource for Failing {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
        if self.left == 0 {
            return Err(RandomError);
        }
        self.left -= 1;
        self.inner.fill(buf)
    }
}

#[test]
fn without_randomness_no_session_is_created() {
    let rng = Failing {
        left: 0,
        inner: SeededRandom::new(1),
    };
    let mut net = Net::with_random(Config::default(), Box::new(rng));
    for websocket in [false, true] {
        let q = if websocket {
            "EIO=4&transport=websocket"
        } else {
            "EIO=4&transport=polling"
        };
        let HttpAction::Respond(r) = net.http(roomcast::Method::Get, q, websocket) else {
            panic!("a session was created without randomness")
        };
        assert_eq!(r.status, 503);
    }
    assert_eq!(net.server.connection_count(), 0);
}

#[test]
fn without_randomness_no_socket_is_created_and_the_client_is_told() {
    // Enough for the session id; the socket id then fails.
    let rng = Failing {
        left: 1,
        inner: SeededRandom::new(1),
    };
    let mut net = Net::with_random(Config::default(), Box::new(rng));
    let conn = net.ws_connect();
    net.ws_send(conn, "40");
    let (request, _, _) = net.take_connect_request();
    assert!(matches!(
        net.server.accept(request, 0),
        Err(roomcast::Error::Random(_))
    ));
    net.drain();
    assert_eq!(net.take_text(conn), [r#"44{"message":"Internal error"}"#]);
    assert_eq!(net.server.socket_count(), 0);
    assert!(net.is_closed(conn).is_none());
}

// ---- WebSockets that never open -----------------------------------------------------------------

#[test]
fn an_accepted_websocket_that_never_opens_does_not_hold_the_session() {
    let mut config = Config::default();
    config.upgrade_timeout = Duration::from_millis(1000);
    let mut net = Net::new(config);
    // A WebSocket-only session whose handshake never completes is closed at its first ping
    // deadline.
    let HttpAction::AcceptWebSocket(ws) =
        net.http(roomcast::Method::Get, "EIO=4&transport=websocket", true)
    else {
        panic!()
    };
    // An upgrade whose WebSocket never opens is abandoned; the session goes on polling.
    let (sid, sockets) = net.polling_client(&["/"]);
    let q = format!("EIO=4&transport=websocket&sid={sid}");
    let HttpAction::AcceptWebSocket(up) = net.http(roomcast::Method::Get, &q, true) else {
        panic!()
    };
    net.advance(Duration::from_millis(1001));
    assert_eq!(net.ws_closed, [up]);
    // The WebSocket-only session goes at its first ping deadline (one timer a session).
    assert!(net.is_closed(ws).is_none());
    net.advance(Duration::from_secs(25));
    assert_eq!(
        net.is_closed(ws),
        Some(roomcast::DisconnectReason::TransportError)
    );
    assert!(net.is_closed(up).is_none());
    net.server.emit(sockets[0], "still", &()).unwrap();
    net.drain();
    // Its heartbeat's ping, then the event.
    assert_eq!(net.get_text(&sid), "2\u{1e}42[\"still\"]");
    // And it may try again.
    assert!(matches!(
        net.http(roomcast::Method::Get, &q, true),
        HttpAction::AcceptWebSocket(_)
    ));
}

// ---- Request ids ------------------------------------------------------------------------------

#[test]
fn a_request_id_that_is_not_a_post_being_read_is_refused_and_changes_nothing() {
    let mut net = Net::new(Config::default());
    let (sid, sockets) = net.polling_client(&["/"]);
    let held = net.get(&sid).unwrap_err();
    // The held GET's id given as a POST body: 400, and the GET is still held.
    let r = net
        .server
        .handle_post_body(net.now, held, bytes::Bytes::from_static(b"1"));
    assert_eq!(r.status, 400);
    let r = net.server.handle_post_too_large(net.now, held);
    assert_eq!(r.status, 413);
    net.drain();
    assert!(net.closed.is_empty());
    net.server.emit(sockets[0], "still", &()).unwrap();
    net.drain();
    assert_eq!(net.take_answer(held).as_deref(), Some(r#"42["still"]"#));
}
