//! Engine.IO session scenarios on the virtual clock: handshake, heartbeat, long-polling,
//! upgrade, timeouts, close reasons and bad input.

mod common;

use bytes::Bytes;
use common::Net;
use roomcast::engine::Frame;
use roomcast::{
    Config, ConnectionHandle, DisconnectReason, Event, HttpAction, Limits, Method, SocketHandle,
    Str,
};
use std::time::Duration;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Short heartbeat timings, everything else default.
fn fast() -> Config {
    let mut c = Config::default();
    c.ping_interval = ms(300);
    c.ping_timeout = ms(200);
    c
}

fn polling(sid: &str) -> String {
    format!("EIO=4&transport=polling&sid={sid}")
}

/// Asserts an HTTP action is an immediate error answer with the reference's code and message.
fn assert_error(action: HttpAction, status: u16, code: u8, message: &str) {
    let HttpAction::Respond(r) = action else {
        panic!("expected an error response, got {action:?}")
    };
    assert_eq!(
        (r.status, r.content_type, r.body),
        (
            status,
            "application/json",
            Bytes::from(format!(r#"{{"code":{code},"message":"{message}"}}"#)),
        )
    );
    // The refusal is typed too (what the adapter reports as a `connection_error`).
    assert_eq!(r.error.map(|e| e.code()), Some(code));
}

fn root_emit(net: &mut Net, event: &str, arg: &str) -> usize {
    let root = net.server.namespace("/").unwrap();
    let n = net.server.to_namespace(root).emit(event, &(arg,)).unwrap();
    net.drain();
    n
}

/// The events about one connection closing: each socket's `Disconnected`, then
/// `ConnectionClosed`, all with `reason`.
fn assert_closed_events(
    events: &[Event],
    sockets: &[SocketHandle],
    conn: ConnectionHandle,
    reason: DisconnectReason,
) {
    let mine: Vec<&Event> = events
        .iter()
        .filter(|e| match e {
            Event::Disconnected { socket, .. } => sockets.contains(socket),
            Event::ConnectionClosed { conn: c, .. } => *c == conn,
            _ => false,
        })
        .collect();
    assert_eq!(mine.len(), sockets.len() + 1, "{events:?}");
    for (e, s) in mine.iter().zip(sockets) {
        assert!(
            matches!(e, Event::Disconnected { socket, reason: r, .. } if socket == s && *r == reason),
            "{e:?}"
        );
    }
    assert_eq!(
        *mine[sockets.len()],
        Event::ConnectionClosed { conn, reason }
    );
}

// ---- Handshake --------------------------------------------------------------------------

#[test]
fn polling_handshake_announces_config() {
    let config = {
        let mut c = Config::default();
        c.ping_interval = ms(300);
        c.ping_timeout = ms(200);
        c.limits = Limits {
            max_payload: 5000,
            ..Limits::default()
        };
        c
    };
    let mut net = Net::new(config);
    let HttpAction::Respond(r) = net.http(Method::Get, "EIO=4&transport=polling", false) else {
        panic!("handshake not answered at once")
    };
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "text/plain; charset=UTF-8");
    let body = std::str::from_utf8(&r.body).unwrap();
    let sid = roomcast::engine::Handshake::from_json(&body[1..])
        .unwrap()
        .sid;
    assert_eq!(
        body,
        format!(
            r#"0{{"sid":"{sid}","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,"maxPayload":5000}}"#
        )
    );
    assert_eq!(net.server.connection_count(), 1);
    // Nothing else is written, and no event: the session waits for a namespace.
    assert!(net.events.is_empty());
    assert!(
        net.get(&sid).is_err(),
        "nothing buffered after the handshake"
    );
}

#[test]
fn polling_handshake_without_upgrades_when_disabled() {
    let mut net = Net::new({
        let mut c = Config::default();
        c.allow_upgrades = false;
        c
    });
    let HttpAction::Respond(r) = net.http(Method::Get, "EIO=4&transport=polling", false) else {
        panic!()
    };
    let body = std::str::from_utf8(&r.body).unwrap();
    let sid = roomcast::engine::Handshake::from_json(&body[1..])
        .unwrap()
        .sid;
    assert_eq!(
        body,
        format!(
            r#"0{{"sid":"{sid}","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}}"#
        )
    );
    // And a WebSocket for that session is refused.
    let q = format!("EIO=4&transport=websocket&sid={sid}");
    assert_error(net.http(Method::Get, &q, true), 400, 3, "Bad request");
}

#[test]
fn transports_left_out_are_refused_with_code_0_and_not_offered() {
    // The reference's `transports: ["websocket"]`.
    let mut c = Config::default();
    c.transports = roomcast::Transports::WEBSOCKET;
    let mut net = Net::new(c);
    assert_error(
        net.http(Method::Get, "EIO=4&transport=polling", false),
        400,
        0,
        "Transport unknown",
    );
    assert!(matches!(
        net.http(Method::Get, "EIO=4&transport=websocket", true),
        HttpAction::AcceptWebSocket(_)
    ));
    // `["polling"]`: no upgrade offered, an upgrade request refused with code 0.
    let mut c = Config::default();
    c.transports = roomcast::Transports::POLLING;
    let mut net = Net::new(c);
    let HttpAction::Respond(r) = net.http(Method::Get, "EIO=4&transport=polling", false) else {
        panic!()
    };
    let body = std::str::from_utf8(&r.body).unwrap();
    let open = roomcast::engine::Handshake::from_json(&body[1..]).unwrap();
    assert!(open.upgrades.is_empty(), "{body}");
    let q = format!("EIO=4&transport=websocket&sid={}", open.sid);
    assert_error(net.http(Method::Get, &q, true), 400, 0, "Transport unknown");
}

#[test]
fn verify_makes_the_checks_before_allow_request_and_changes_nothing() {
    use roomcast::{HttpRequest, RequestError};
    let mut net = Net::new(Config::default());
    let s = &net.server;
    let check = |r: HttpRequest<'_>| s.verify(&r);
    assert_eq!(check(HttpRequest::get("EIO=4&transport=polling")), Ok(()));
    assert_eq!(
        check(HttpRequest::get("EIO=4&transport=websocket").websocket()),
        Ok(())
    );
    assert_eq!(
        check(HttpRequest::get("EIO=4&transport=pigeon")),
        Err(RequestError::UnknownTransport)
    );
    assert_eq!(
        check(HttpRequest::post("EIO=4&transport=polling", Some(1))),
        Err(RequestError::BadHandshakeMethod)
    );
    assert_eq!(
        check(HttpRequest::get("EIO=4&transport=websocket")),
        Err(RequestError::BadRequest)
    );
    assert_eq!(
        check(HttpRequest::get("EIO=4&transport=polling&sid=nope")),
        Err(RequestError::UnknownSid)
    );
    // The protocol version is checked later, as in the reference (after allowRequest).
    assert_eq!(check(HttpRequest::get("EIO=3&transport=polling")), Ok(()));
    assert_eq!(net.server.connection_count(), 0);
    let sid = net.polling_connect();
    let q = polling(&sid);
    assert_eq!(net.server.verify(&HttpRequest::get(&q)), Ok(()));
    assert_eq!(net.server.connection_count(), 1);
}

#[test]
fn websocket_handshake_has_no_upgrades() {
    let mut net = Net::new(fast());
    let HttpAction::AcceptWebSocket(conn) =
        net.http(Method::Get, "EIO=4&transport=websocket", true)
    else {
        panic!("websocket handshake refused")
    };
    // Nothing is written before the adapter says the WebSocket is open.
    assert!(net.take(conn).is_empty());
    net.server.handle_ws_open(net.now, conn);
    net.drain();
    let sid = net.server.connection_sid(conn).unwrap().to_string();
    assert_eq!(
        net.take_text(conn),
        [format!(
            r#"0{{"sid":"{sid}","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}}"#
        )]
    );
    // The session id is known to the polling side too (a polling request is refused as a
    // transport mismatch, not as an unknown session).
    assert_error(
        net.http(Method::Get, &polling(&sid), false),
        400,
        3,
        "Bad request",
    );
}

#[test]
fn websocket_handshake_without_upgrade_header_is_bad_request() {
    let mut net = Net::new(Config::default());
    assert_error(
        net.http(Method::Get, "EIO=4&transport=websocket", false),
        400,
        3,
        "Bad request",
    );
    assert_eq!(net.server.connection_count(), 0);
}

#[test]
fn session_ids_are_distinct() {
    let mut net = Net::new(Config::default());
    let a = net.polling_connect();
    let b = net.polling_connect();
    let c = net.ws_connect();
    let c = net.server.connection_sid(c).unwrap().to_string();
    assert_ne!(a, b);
    assert_ne!(a, c);
    assert_ne!(b, c);
    assert_eq!(net.server.connection_count(), 3);
}

// ---- Request errors -----------------------------------------------------------------------

#[test]
fn unknown_sid_is_code_1() {
    let mut net = Net::new(Config::default());
    let _live = net.polling_connect();
    assert_error(
        net.http(Method::Get, &polling("nope"), false),
        400,
        1,
        "Session ID unknown",
    );
    assert_error(
        net.http(Method::Post, &polling("nope"), false),
        400,
        1,
        "Session ID unknown",
    );
    assert_error(
        net.http(Method::Get, "EIO=4&transport=websocket&sid=nope", true),
        400,
        1,
        "Session ID unknown",
    );
    assert_eq!(net.server.connection_count(), 1);
}

#[test]
fn missing_or_unknown_transport_is_code_0() {
    let mut net = Net::new(Config::default());
    assert_error(
        net.http(Method::Get, "EIO=4", false),
        400,
        0,
        "Transport unknown",
    );
    assert_error(
        net.http(Method::Get, "EIO=4&transport=flashsocket", false),
        400,
        0,
        "Transport unknown",
    );
    let sid = net.polling_connect();
    assert_error(
        net.http(Method::Get, &format!("EIO=4&sid={sid}"), false),
        400,
        0,
        "Transport unknown",
    );
    assert_eq!(net.server.connection_count(), 1);
}

#[test]
fn post_handshake_is_code_2() {
    let mut net = Net::new(Config::default());
    assert_error(
        net.http(Method::Post, "EIO=4&transport=polling", false),
        400,
        2,
        "Bad handshake method",
    );
    assert_error(
        net.http(Method::Other, "EIO=4&transport=polling", false),
        400,
        2,
        "Bad handshake method",
    );
    assert_eq!(net.server.connection_count(), 0);
}

#[test]
fn other_protocol_versions_are_code_5() {
    let mut net = Net::new(Config::default());
    for q in [
        "EIO=3&transport=polling",
        "transport=polling",
        "EIO=5&transport=polling",
    ] {
        assert_error(
            net.http(Method::Get, q, false),
            400,
            5,
            "Unsupported protocol version",
        );
    }
    assert_error(
        net.http(Method::Get, "EIO=3&transport=websocket", true),
        400,
        5,
        "Unsupported protocol version",
    );
    assert_eq!(net.server.connection_count(), 0);
}

#[test]
fn polling_request_to_an_upgraded_session_is_code_3() {
    let mut net = Net::new(Config::default());
    let (sid, s) = net.polling_client(&["/"]);
    let conn = net.upgrade(&sid);
    assert_error(
        net.http(Method::Get, &polling(&sid), false),
        400,
        3,
        "Bad request",
    );
    assert_error(
        net.http(Method::Post, &polling(&sid), false),
        400,
        3,
        "Bad request",
    );
    // The session is not hurt by it.
    assert!(net.closed.is_empty());
    net.server.emit(s[0], "still", &()).unwrap();
    net.drain();
    assert_eq!(net.take_text(conn), [r#"42["still"]"#]);
}

// ---- Heartbeat ------------------------------------------------------------------------------

#[test]
fn websocket_heartbeat_answered_keeps_the_connection() {
    let mut net = Net::new(fast());
    let (conn, _) = net.client(&["/"]);
    for _ in 0..5 {
        net.advance(ms(299));
        assert!(net.take_text(conn).is_empty());
        net.advance(ms(1));
        assert_eq!(net.take_text(conn), ["2"]);
        net.advance(ms(150));
        net.ws_send(conn, "3");
        // The next ping comes one interval after the pong.
    }
    net.advance(ms(299));
    assert!(net.take_text(conn).is_empty());
    assert!(net.closed.is_empty(), "{:?}", net.closed);
    net.advance(ms(1));
    assert_eq!(net.take_text(conn), ["2"]);
    // A pong nobody asked for changes nothing.
    net.ws_send(conn, "3");
    net.ws_send(conn, "3");
    net.advance(ms(199));
    assert!(net.closed.is_empty());
}

#[test]
fn websocket_missing_pong_is_ping_timeout() {
    let mut net = Net::new(fast());
    let (conn, sockets) = net.client(&["/"]);
    let (other, _) = net.client(&["/"]);
    net.advance(ms(300));
    assert_eq!(net.take_text(conn), ["2"]);
    assert_eq!(net.take_text(other), ["2"]);
    net.ws_send(other, "3");
    net.advance(ms(199));
    assert!(net.closed.is_empty());
    net.advance(ms(1));
    assert_eq!(net.closed, [(conn, DisconnectReason::PingTimeout)]);
    let events = net.take_events();
    assert_closed_events(&events, &sockets, conn, DisconnectReason::PingTimeout);
    assert_eq!(net.server.connection_count(), 1);
    // Late input from the closed connection is ignored.
    net.ws_send(conn, "3");
    assert!(net.take_events().is_empty());
}

#[test]
fn ping_timeout_reason_is_displayed_like_the_reference() {
    assert_eq!(DisconnectReason::PingTimeout.to_string(), "ping timeout");
    assert_eq!(
        DisconnectReason::TransportClose.to_string(),
        "transport close"
    );
    assert_eq!(
        DisconnectReason::ServerShuttingDown.to_string(),
        "server shutting down"
    );
}

#[test]
fn polling_heartbeat_goes_through_get_and_post() {
    let mut net = Net::new(fast());
    let (sid, sockets) = net.polling_client(&["/"]);
    let conn = net.server.socket_connection(sockets[0]).unwrap();
    let held = net.get(&sid).unwrap_err();
    net.advance(ms(300));
    assert_eq!(net.take_answer(held).as_deref(), Some("2"));
    net.post(&sid, b"3");
    // Next round: the ping is buffered until the client polls.
    net.advance(ms(300));
    assert_eq!(net.get_text(&sid), "2");
    net.post(&sid, b"3");
    // Third round: not answered.
    let held = net.get(&sid).unwrap_err();
    net.advance(ms(300));
    assert_eq!(net.take_answer(held).as_deref(), Some("2"));
    let held = net.get(&sid).unwrap_err();
    net.advance(ms(200));
    assert_eq!(net.closed, [(conn, DisconnectReason::PingTimeout)]);
    // The held GET is released with a close packet.
    assert_eq!(net.take_answer(held).as_deref(), Some("1"));
    assert_closed_events(
        &net.take_events(),
        &sockets,
        conn,
        DisconnectReason::PingTimeout,
    );
    assert_error(
        net.http(Method::Get, &polling(&sid), false),
        400,
        1,
        "Session ID unknown",
    );
}

// ---- Long-polling ---------------------------------------------------------------------------

#[test]
fn get_returns_buffered_packets_joined_by_record_separator() {
    let mut net = Net::new(Config::default());
    let (sid, sockets) = net.polling_client(&["/"]);
    net.server.emit(sockets[0], "a", &(1,)).unwrap();
    net.server.emit(sockets[0], "b", &("two", 3)).unwrap();
    root_emit(&mut net, "c", "x");
    let HttpAction::Respond(r) = net.http(Method::Get, &polling(&sid), false) else {
        panic!()
    };
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "text/plain; charset=UTF-8");
    assert_eq!(
        &r.body[..],
        b"42[\"a\",1]\x1e42[\"b\",\"two\",3]\x1e42[\"c\",\"x\"]"
    );
    // Drained: the next GET waits.
    assert!(net.get(&sid).is_err());
}

#[test]
fn held_get_is_answered_when_something_is_emitted() {
    let mut net = Net::new(Config::default());
    let (sid, sockets) = net.polling_client(&["/"]);
    let held = net.get(&sid).unwrap_err();
    assert!(net.poll_answers.is_empty());
    net.server.emit(sockets[0], "hello", &("world",)).unwrap();
    net.server.emit(sockets[0], "again", &()).unwrap();
    net.drain();
    // Both emits of the same turn go in the one answer.
    assert_eq!(
        net.take_answer(held).as_deref(),
        Some("42[\"hello\",\"world\"]\x1e42[\"again\"]")
    );
    // The next emit waits for the next GET.
    net.server.emit(sockets[0], "later", &()).unwrap();
    net.drain();
    assert!(net.poll_answers.is_empty());
    assert_eq!(net.get_text(&sid), r#"42["later"]"#);
}

#[test]
fn post_carries_several_packets() {
    let mut net = Net::new(Config::default());
    let (sid, sockets) = net.polling_client(&["/"]);
    let r = net.post(&sid, b"42[\"a\",1]\x1e42[\"b\",2]\x1e3");
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "text/html");
    assert_eq!(&r.body[..], b"ok");
    let names: Vec<(SocketHandle, String)> = net
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Message { socket, event, .. } => Some((socket, event.name().to_string())),
            _ => None,
        })
        .collect();
    assert_eq!(names, [(sockets[0], "a".into()), (sockets[0], "b".into())]);
}

#[test]
fn second_concurrent_get_is_400_and_closes_the_session() {
    let mut net = Net::new(Config::default());
    let (sid, sockets) = net.polling_client(&["/"]);
    let conn = net.server.socket_connection(sockets[0]).unwrap();
    let (other, _) = net.client(&["/"]);
    let held = net.get(&sid).unwrap_err();
    assert_error(
        net.http(Method::Get, &polling(&sid), false),
        400,
        3,
        "Bad request",
    );
    assert_eq!(net.closed, [(conn, DisconnectReason::TransportError)]);
    assert_eq!(net.take_answer(held).as_deref(), Some("1"));
    assert_closed_events(
        &net.take_events(),
        &sockets,
        conn,
        DisconnectReason::TransportError,
    );
    assert_error(
        net.http(Method::Get, &polling(&sid), false),
        400,
        1,
        "Session ID unknown",
    );
    assert_eq!(root_emit(&mut net, "n", "x"), 1);
    assert_eq!(net.take_text(other), [r#"42["n","x"]"#]);
}

#[test]
fn concurrent_post_is_400_and_closes_the_session() {
    let mut net = Net::new(Config::default());
    let (sid, sockets) = net.polling_client(&["/"]);
    let conn = net.server.socket_connection(sockets[0]).unwrap();
    let HttpAction::ReadBody(first) = net.http(Method::Post, &polling(&sid), false) else {
        panic!()
    };
    assert_error(
        net.http(Method::Post, &polling(&sid), false),
        400,
        3,
        "Bad request",
    );
    assert_eq!(net.closed, [(conn, DisconnectReason::TransportError)]);
    assert_closed_events(
        &net.take_events(),
        &sockets,
        conn,
        DisconnectReason::TransportError,
    );
    // The first body, read too late, is refused and ignored.
    let r = net
        .server
        .handle_post_body(net.now, first, Bytes::from_static(b"42[\"x\"]"));
    net.drain();
    assert_eq!(r.status, 400);
    assert!(net.take_events().is_empty());
}

#[test]
fn sequential_posts_are_fine() {
    let mut net = Net::new(Config::default());
    let (sid, _) = net.polling_client(&["/"]);
    for _ in 0..3 {
        assert_eq!(&net.post(&sid, b"42[\"x\"]").body[..], b"ok");
    }
    assert!(net.closed.is_empty());
    assert_eq!(net.take_events().len(), 3);
}

#[test]
fn post_with_content_length_over_max_payload_is_413() {
    let config = {
        let mut c = Config::default();
        c.limits = Limits {
            max_payload: 100,
            ..Limits::default()
        };
        c
    };
    let mut net = Net::new(config);
    let (sid, sockets) = net.polling_client(&["/"]);
    let conn = net.server.socket_connection(sockets[0]).unwrap();
    // At the limit: read.
    let HttpAction::ReadBody(id) = net.http_with_length(Method::Post, &polling(&sid), Some(100))
    else {
        panic!()
    };
    let r = net
        .server
        .handle_post_body(net.now, id, Bytes::from_static(b"3"));
    net.drain();
    assert_eq!(r.status, 200);
    // Over: refused before the body is read.
    let HttpAction::Respond(r) = net.http_with_length(Method::Post, &polling(&sid), Some(101))
    else {
        panic!()
    };
    assert_eq!(r.status, 413);
    // The session is closed, as a broken transport.
    assert_eq!(net.closed, [(conn, DisconnectReason::TransportError)]);
}

#[test]
fn post_body_over_max_payload_is_413() {
    let config = {
        let mut c = Config::default();
        c.limits = Limits {
            max_payload: 20,
            ..Limits::default()
        };
        c
    };
    let mut net = Net::new(config);
    let (sid, sockets) = net.polling_client(&["/"]);
    let conn = net.server.socket_connection(sockets[0]).unwrap();
    // Exactly the limit is accepted.
    let exact = br#"42["abcdefghijklmn"]"#;
    assert_eq!(exact.len(), 20);
    assert_eq!(net.post(&sid, exact).status, 200);
    assert!(net.closed.is_empty());
    let r = net.post(&sid, br#"42["abcdefghijklmno"]"#);
    assert_eq!(r.status, 413);
    assert_eq!(net.closed, [(conn, DisconnectReason::TransportError)]);
}

#[test]
fn bad_post_body_is_400_and_parse_error() {
    let mut net = Net::new(Config::default());
    let (sid, sockets) = net.polling_client(&["/"]);
    let conn = net.server.socket_connection(sockets[0]).unwrap();
    let r = net.post(&sid, b"42[\"ok\"]\x1e9oops");
    assert_eq!(r.status, 400);
    assert_eq!(net.closed, [(conn, DisconnectReason::ParseError)]);
    let events = net.take_events();
    // The good packet before the bad one was delivered.
    assert!(
        matches!(&events[0], Event::Message { event, .. } if event.name() == "ok"),
        "{events:?}"
    );
    assert_closed_events(&events, &sockets, conn, DisconnectReason::ParseError);
}

#[test]
fn aborted_held_get_closes_the_session() {
    let mut net = Net::new(Config::default());
    let (sid, sockets) = net.polling_client(&["/"]);
    let conn = net.server.socket_connection(sockets[0]).unwrap();
    let held = net.get(&sid).unwrap_err();
    net.server.handle_request_aborted(net.now, held);
    net.drain();
    assert_eq!(net.closed, [(conn, DisconnectReason::TransportError)]);
    assert!(net.poll_answers.is_empty());
}

// ---- Upgrade ----------------------------------------------------------------------------------

#[test]
fn upgrade_from_polling_to_websocket() {
    let mut net = Net::new(Config::default());
    let (sid, sockets) = net.polling_client(&["/"]);
    let s = sockets[0];
    let held = net.get(&sid).unwrap_err();
    let q = format!("EIO=4&transport=websocket&sid={sid}");
    let HttpAction::AcceptWebSocket(conn) = net.http(Method::Get, &q, true) else {
        panic!("upgrade refused")
    };
    assert_eq!(net.server.socket_connection(s), Some(conn));
    net.server.handle_ws_open(net.now, conn);
    net.drain();
    // No open packet on an upgrading WebSocket.
    assert!(net.take(conn).is_empty());
    net.ws_send(conn, "2probe");
    assert_eq!(net.take_text(conn), ["3probe"]);
    // The held GET is released with a noop so the client can pause polling.
    assert_eq!(net.take_answer(held).as_deref(), Some("6"));
    // Emitted while the upgrade is under way: buffered, a GET only gets a noop.
    net.server.emit(s, "during", &(1,)).unwrap();
    net.drain();
    assert!(net.take(conn).is_empty());
    assert_eq!(net.get_text(&sid), "6");
    net.ws_send(conn, "5");
    assert_eq!(net.take_text(conn), [r#"42["during",1]"#]);
    // From now on, everything goes over the WebSocket, including pings and broadcasts.
    net.server.emit(s, "after", &()).unwrap();
    root_emit(&mut net, "all", "x");
    assert_eq!(net.take_text(conn), [r#"42["after"]"#, r#"42["all","x"]"#]);
    net.ws_send(conn, r#"42["up",true]"#);
    let events = net.take_events();
    // The upgrade is reported (`socket.conn.on("upgrade")`), then the event.
    assert!(
        matches!(&events[..], [Event::Upgraded { conn: c }, Event::Message { socket, event, .. }]
            if *c == conn && *socket == s && event.name() == "up"),
        "{events:?}"
    );
    net.advance(Config::default().ping_interval);
    assert_eq!(net.take_text(conn), ["2"]);
    net.ws_send(conn, "3");
    assert!(net.closed.is_empty());
}

#[test]
fn polling_goes_on_until_the_probe() {
    // As the reference: the session writes to long-polling while it can, until the probe
    // arrives; only then are packets held for the WebSocket.
    let mut net = Net::new(Config::default());
    let (sid, sockets) = net.polling_client(&["/"]);
    let held = net.get(&sid).unwrap_err();
    let q = format!("EIO=4&transport=websocket&sid={sid}");
    let HttpAction::AcceptWebSocket(conn) = net.http(Method::Get, &q, true) else {
        panic!()
    };
    net.server.handle_ws_open(net.now, conn);
    net.drain();
    net.server.emit(sockets[0], "early", &()).unwrap();
    net.drain();
    assert_eq!(net.take_answer(held).as_deref(), Some(r#"42["early"]"#));
    // The client polls again: held, then released with a noop by the probe.
    let held = net.get(&sid).unwrap_err();
    net.ws_send(conn, "2probe");
    assert_eq!(net.take_text(conn), ["3probe"]);
    assert_eq!(net.take_answer(held).as_deref(), Some("6"));
    net.ws_send(conn, "5");
    assert!(net.take(conn).is_empty(), "nothing delivered twice");
}

#[test]
fn upgrade_timeout_closes_the_websocket_and_polling_goes_on() {
    let config = {
        let mut c = Config::default();
        c.upgrade_timeout = ms(1000);
        c
    };
    let mut net = Net::new(config);
    let (sid, sockets) = net.polling_client(&["/"]);
    let q = format!("EIO=4&transport=websocket&sid={sid}");
    let HttpAction::AcceptWebSocket(conn) = net.http(Method::Get, &q, true) else {
        panic!()
    };
    net.server.handle_ws_open(net.now, conn);
    net.drain();
    net.advance(ms(999));
    assert!(net.ws_closed.is_empty());
    net.advance(ms(1));
    assert_eq!(net.ws_closed, [conn]);
    assert!(net.closed.is_empty());
    // Input on the dead WebSocket is ignored.
    net.ws_send(conn, "2probe");
    assert!(net.take(conn).is_empty());
    // Polling goes on.
    net.server.emit(sockets[0], "still", &()).unwrap();
    net.drain();
    assert_eq!(net.get_text(&sid), r#"42["still"]"#);
    assert_eq!(&net.post(&sid, br#"42["up"]"#).body[..], b"ok");
    assert_eq!(net.take_events().len(), 1);
    // And the client may try again.
    let conn2 = net.upgrade(&sid);
    net.server.emit(sockets[0], "ws", &()).unwrap();
    net.drain();
    assert_eq!(net.take_text(conn2), [r#"42["ws"]"#]);
}

#[test]
fn upgrade_timeout_after_probe_keeps_polling() {
    let config = {
        let mut c = Config::default();
        c.upgrade_timeout = ms(1000);
        c
    };
    let mut net = Net::new(config);
    let (sid, sockets) = net.polling_client(&["/"]);
    let q = format!("EIO=4&transport=websocket&sid={sid}");
    let HttpAction::AcceptWebSocket(conn) = net.http(Method::Get, &q, true) else {
        panic!()
    };
    net.server.handle_ws_open(net.now, conn);
    net.drain();
    net.ws_send(conn, "2probe");
    assert_eq!(net.take_text(conn), ["3probe"]);
    net.server.emit(sockets[0], "during", &()).unwrap();
    net.drain();
    net.advance(ms(1000));
    assert_eq!(net.ws_closed, [conn]);
    assert!(net.take(conn).is_empty());
    assert_eq!(net.get_text(&sid), r#"42["during"]"#);
    assert!(net.closed.is_empty());
}

#[test]
fn held_get_is_answered_after_a_failed_upgrade() {
    let config = {
        let mut c = Config::default();
        c.upgrade_timeout = ms(1000);
        c
    };
    let mut net = Net::new(config);
    let (sid, sockets) = net.polling_client(&["/"]);
    let held = net.get(&sid).unwrap_err();
    let q = format!("EIO=4&transport=websocket&sid={sid}");
    let HttpAction::AcceptWebSocket(conn) = net.http(Method::Get, &q, true) else {
        panic!()
    };
    net.server.handle_ws_open(net.now, conn);
    net.drain();
    // Emitted while the WebSocket is open but not probed yet.
    net.server.emit(sockets[0], "early", &()).unwrap();
    net.drain();
    net.advance(ms(1000));
    assert_eq!(net.ws_closed, [conn]);
    // The waiting GET gets what was buffered, not left hanging until the heartbeat fails.
    assert_eq!(net.take_answer(held).as_deref(), Some(r#"42["early"]"#));
    // Same when the WebSocket just closes instead.
    let held = net.get(&sid).unwrap_err();
    let HttpAction::AcceptWebSocket(conn) = net.http(Method::Get, &q, true) else {
        panic!()
    };
    net.server.handle_ws_open(net.now, conn);
    net.server.emit(sockets[0], "again", &()).unwrap();
    net.drain();
    net.server.handle_ws_closed(net.now, conn);
    net.drain();
    assert_eq!(net.take_answer(held).as_deref(), Some(r#"42["again"]"#));
    assert!(net.closed.is_empty());
}

#[test]
fn unexpected_packet_during_upgrade_aborts_it() {
    let mut net = Net::new(Config::default());
    let (sid, sockets) = net.polling_client(&["/"]);
    let q = format!("EIO=4&transport=websocket&sid={sid}");
    let HttpAction::AcceptWebSocket(conn) = net.http(Method::Get, &q, true) else {
        panic!()
    };
    net.server.handle_ws_open(net.now, conn);
    net.drain();
    // "5" before the probe.
    net.ws_send(conn, "5");
    assert_eq!(net.ws_closed, [conn]);
    assert!(net.closed.is_empty());
    net.server.emit(sockets[0], "x", &()).unwrap();
    net.drain();
    assert_eq!(net.get_text(&sid), r#"42["x"]"#);
}

#[test]
fn websocket_closed_during_upgrade_keeps_polling() {
    let mut net = Net::new(Config::default());
    let (sid, sockets) = net.polling_client(&["/"]);
    let q = format!("EIO=4&transport=websocket&sid={sid}");
    let HttpAction::AcceptWebSocket(conn) = net.http(Method::Get, &q, true) else {
        panic!()
    };
    net.server.handle_ws_open(net.now, conn);
    net.drain();
    net.ws_send(conn, "2probe");
    net.server.handle_ws_closed(net.now, conn);
    net.drain();
    assert!(net.closed.is_empty());
    assert!(net.take_events().is_empty());
    net.server.emit(sockets[0], "x", &()).unwrap();
    net.drain();
    assert_eq!(net.get_text(&sid), r#"42["x"]"#);
}

#[test]
fn second_websocket_for_a_session_is_opened_then_closed() {
    // The reference completes the WebSocket handshake of a second upgrade and closes that
    // WebSocket; the session is untouched.
    let mut net = Net::new(Config::default());
    let (sid, sockets) = net.polling_client(&["/"]);
    let q = format!("EIO=4&transport=websocket&sid={sid}");
    let HttpAction::AcceptWebSocket(conn) = net.http(Method::Get, &q, true) else {
        panic!()
    };
    // While the first is being accepted.
    assert_eq!(net.http(Method::Get, &q, true), HttpAction::AcceptAndClose);
    net.server.handle_ws_open(net.now, conn);
    net.drain();
    // While it is upgrading.
    assert_eq!(net.http(Method::Get, &q, true), HttpAction::AcceptAndClose);
    net.ws_send(conn, "2probe");
    assert_eq!(net.take_text(conn), ["3probe"]);
    // Probed, waiting for the upgrade packet.
    assert_eq!(net.http(Method::Get, &q, true), HttpAction::AcceptAndClose);
    net.ws_send(conn, "5");
    // After it upgraded.
    assert_eq!(net.http(Method::Get, &q, true), HttpAction::AcceptAndClose);
    // A WebSocket-only session: the same.
    let ws = net.ws_connect();
    let ws_sid = net.server.connection_sid(ws).unwrap().to_string();
    let q = format!("EIO=4&transport=websocket&sid={ws_sid}");
    assert_eq!(net.http(Method::Get, &q, true), HttpAction::AcceptAndClose);
    // A plain GET naming the WebSocket transport is still a bad request.
    assert_error(net.http(Method::Get, &q, false), 400, 3, "Bad request");
    assert!(net.closed.is_empty());
    assert!(net.ws_closed.is_empty());
    net.server.emit(sockets[0], "fine", &()).unwrap();
    net.drain();
    assert_eq!(net.take_text(conn), [r#"42["fine"]"#]);
}

// ---- Connect timeout ----------------------------------------------------------------------------

#[test]
fn connection_without_namespace_is_closed_at_connect_timeout() {
    let config = {
        let mut c = Config::default();
        c.connect_timeout = ms(1000);
        c
    };
    let mut net = Net::new(config);
    let idle = net.ws_connect();
    let (joined, _) = net.client(&["/"]);
    let polling_sid = net.polling_connect();
    let (polling_joined, _) = net.polling_client(&["/"]);
    // A connection whose request is still undecided has not joined yet.
    let pending = net.ws_connect();
    net.ws_send(pending, "40");
    let _ = net.take_connect_request();
    net.advance(ms(999));
    assert!(net.closed.is_empty());
    net.advance(ms(1));
    let mut closed: Vec<DisconnectReason> = net.closed.iter().map(|c| c.1).collect();
    closed.dedup();
    assert_eq!(closed, [DisconnectReason::ConnectTimeout]);
    assert_eq!(net.closed.len(), 3);
    assert_eq!(net.is_closed(idle), Some(DisconnectReason::ConnectTimeout));
    assert_eq!(
        net.is_closed(pending),
        Some(DisconnectReason::ConnectTimeout)
    );
    assert_eq!(net.is_closed(joined), None);
    let events = net.take_events();
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(
                e,
                Event::ConnectionClosed {
                    reason: DisconnectReason::ConnectTimeout,
                    ..
                }
            ))
            .count(),
        3
    );
    assert_error(
        net.http(Method::Get, &polling(&polling_sid), false),
        400,
        1,
        "Session ID unknown",
    );
    assert!(net.get(&polling_joined).is_err());
    // Long after, the joined ones are still there.
    net.advance(ms(10_000));
    assert_eq!(net.server.connection_count(), 2);
}

#[test]
fn connect_timeout_counts_only_a_namespace_held_at_the_deadline() {
    let config = {
        let mut c = Config::default();
        c.connect_timeout = ms(1000);
        c
    };
    let mut net = Net::new(config);
    let (conn, sockets) = net.client(&["/"]);
    net.ws_send(conn, "41");
    assert_eq!(
        net.disconnects(),
        [(sockets[0], DisconnectReason::ClientNamespaceDisconnect)]
    );
    net.advance(ms(1000));
    assert_eq!(net.is_closed(conn), Some(DisconnectReason::ConnectTimeout));
}

// ---- Close reasons ------------------------------------------------------------------------------

#[test]
fn client_close_packet_is_transport_close() {
    let mut net = Net::new(Config::default());
    let (conn, sockets) = net.client(&["/"]);
    net.ws_send(conn, "1");
    assert_eq!(net.closed, [(conn, DisconnectReason::TransportClose)]);
    assert_closed_events(
        &net.take_events(),
        &sockets,
        conn,
        DisconnectReason::TransportClose,
    );
    // Nothing is written back to a client that left.
    assert!(net.take(conn).is_empty());
    assert_eq!(net.server.socket_count(), 0);
    assert_eq!(net.server.connection_count(), 0);
}

#[test]
fn polling_close_packet_is_transport_close() {
    let mut net = Net::new(Config::default());
    let (sid, sockets) = net.polling_client(&["/"]);
    let conn = net.server.socket_connection(sockets[0]).unwrap();
    let held = net.get(&sid).unwrap_err();
    assert_eq!(&net.post(&sid, b"1").body[..], b"ok");
    assert_eq!(net.closed, [(conn, DisconnectReason::TransportClose)]);
    // As the reference: the pending GET is answered with a noop, then the session is gone.
    assert_eq!(net.take_answer(held).as_deref(), Some("6"));
    assert_error(
        net.http(Method::Get, &polling(&sid), false),
        400,
        1,
        "Session ID unknown",
    );
    assert_closed_events(
        &net.take_events(),
        &sockets,
        conn,
        DisconnectReason::TransportClose,
    );
}

#[test]
fn websocket_closed_is_transport_close() {
    let mut net = Net::new(Config::default());
    net.server.add_namespace("/chat").unwrap();
    let (conn, sockets) = net.client(&["/", "/chat"]);
    net.server.handle_ws_closed(net.now, conn);
    net.drain();
    assert_eq!(net.closed, [(conn, DisconnectReason::TransportClose)]);
    assert_closed_events(
        &net.take_events(),
        &sockets,
        conn,
        DisconnectReason::TransportClose,
    );
    assert!(net.take(conn).is_empty());
    // A second notice is harmless.
    net.server.handle_ws_closed(net.now, conn);
    net.drain();
    assert_eq!(net.closed.len(), 1);
    assert!(net.take_events().is_empty());
}

#[test]
fn close_connection_is_forced_close_with_a_close_packet() {
    let mut net = Net::new(Config::default());
    let (conn, sockets) = net.client(&["/"]);
    let (other, _) = net.client(&["/"]);
    net.server.close_connection(conn).unwrap();
    net.drain();
    assert_eq!(net.take_text(conn), ["1"]);
    assert_eq!(net.closed, [(conn, DisconnectReason::ForcedClose)]);
    assert_closed_events(
        &net.take_events(),
        &sockets,
        conn,
        DisconnectReason::ForcedClose,
    );
    assert!(matches!(
        net.server.close_connection(conn),
        Err(roomcast::Error::UnknownConnection)
    ));
    assert_eq!(root_emit(&mut net, "n", "x"), 1);
    assert_eq!(net.take_text(other), [r#"42["n","x"]"#]);
}

#[test]
fn close_connection_releases_a_held_get_with_a_close_packet() {
    let mut net = Net::new(Config::default());
    let (sid, sockets) = net.polling_client(&["/"]);
    let conn = net.server.socket_connection(sockets[0]).unwrap();
    let held = net.get(&sid).unwrap_err();
    net.server.close_connection(conn).unwrap();
    net.drain();
    assert_eq!(net.take_answer(held).as_deref(), Some("1"));
    assert_eq!(net.closed, [(conn, DisconnectReason::ForcedClose)]);
}

#[test]
fn shutdown_closes_everyone() {
    let mut net = Net::new(Config::default());
    let (ws, ws_sockets) = net.client(&["/"]);
    let (sid, poll_sockets) = net.polling_client(&["/"]);
    let poll = net.server.socket_connection(poll_sockets[0]).unwrap();
    let held = net.get(&sid).unwrap_err();
    let idle = net.ws_connect();
    net.server.shutdown();
    net.drain();
    assert_eq!(net.take_text(ws), ["1"]);
    assert_eq!(net.take_text(idle), ["1"]);
    assert_eq!(net.take_answer(held).as_deref(), Some("1"));
    let mut closed = net.closed.clone();
    closed.sort_by_key(|c| c.0);
    let mut expected = vec![
        (ws, DisconnectReason::ServerShuttingDown),
        (poll, DisconnectReason::ServerShuttingDown),
        (idle, DisconnectReason::ServerShuttingDown),
    ];
    expected.sort_by_key(|c| c.0);
    assert_eq!(closed, expected);
    let events = net.take_events();
    assert_closed_events(
        &events,
        &ws_sockets,
        ws,
        DisconnectReason::ServerShuttingDown,
    );
    assert_closed_events(
        &events,
        &poll_sockets,
        poll,
        DisconnectReason::ServerShuttingDown,
    );
    assert_closed_events(&events, &[], idle, DisconnectReason::ServerShuttingDown);
    assert_eq!(net.server.connection_count(), 0);
    assert_eq!(net.server.socket_count(), 0);
    // No timer is left to fire.
    net.advance(ms(100_000));
    assert!(net.take_events().is_empty());
}

#[test]
fn closed_slots_are_reused_without_confusing_stale_handles() {
    let mut net = Net::new(Config::default());
    let (old, old_sockets) = net.client(&["/"]);
    net.ws_send(old, "1");
    net.take_events();
    let (new, new_sockets) = net.client(&["/"]);
    assert_eq!(old.index(), new.index());
    assert_ne!(old, new);
    // Stale handles are refused, not routed to the newcomer.
    assert!(net.server.emit(old_sockets[0], "x", &()).is_err());
    assert!(net.server.close_connection(old).is_err());
    net.server
        .handle_ws_message(net.now, old, Frame::Text(Str::from("42[\"x\"]")));
    net.drain();
    assert!(net.take_events().is_empty());
    assert!(net.take(new).is_empty());
    net.server.emit(new_sockets[0], "y", &()).unwrap();
    net.drain();
    assert_eq!(net.take_text(new), [r#"42["y"]"#]);
}

// ---- Bad input (DESIGN §4) ------------------------------------------------------------------------

/// Sends `frames` from a client joined to `/` and `/admin`; checks it, and only it, is closed
/// with `reason`, and that a bystander still gets a broadcast.
fn assert_bad_input(name: &str, frames: &[Frame], reason: DisconnectReason) {
    assert_bad_input_after(name, frames, reason, 0)
}

/// As [`assert_bad_input`], when the first `messages` events sent were good.
fn assert_bad_input_after(name: &str, frames: &[Frame], reason: DisconnectReason, messages: usize) {
    let config = {
        let mut c = Config::default();
        c.limits = Limits {
            max_payload: 1000,
            ..Limits::default()
        };
        c
    };
    let mut net = Net::new(config);
    net.server.add_namespace("/admin").unwrap();
    net.server.add_namespace("/other").unwrap();
    let (bystander, by_sockets) = net.client(&["/", "/admin"]);
    let (victim, sockets) = net.client(&["/", "/other"]);
    for f in frames {
        net.server.handle_ws_message(net.now, victim, f.clone());
        net.drain();
    }
    assert_eq!(net.closed, [(victim, reason)], "{name}");
    let events = net.take_events();
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::Message { socket, .. } if sockets.contains(socket)))
            .count(),
        messages,
        "{name}: {events:?}"
    );
    assert_closed_events(&events, &sockets, victim, reason);
    assert_eq!(net.server.connection_count(), 1, "{name}");
    assert_eq!(
        net.server.connection_sockets(bystander),
        by_sockets,
        "{name}"
    );
    assert_eq!(root_emit(&mut net, "after", name), 1, "{name}");
    assert_eq!(
        net.take_text(bystander),
        [format!(r#"42["after","{name}"]"#)],
        "{name}"
    );
    net.ws_send(bystander, r#"42["still","here"]"#);
    assert!(
        matches!(&net.take_events()[..], [Event::Message { socket, .. }] if *socket == by_sockets[0]),
        "{name}"
    );
}

fn text(s: &str) -> Frame {
    Frame::Text(Str::from(s))
}

#[test]
fn unknown_engine_packet_type_closes() {
    assert_bad_input("engine type 9", &[text("9")], DisconnectReason::ParseError);
}

#[test]
fn empty_message_closes() {
    assert_bad_input("empty", &[text("")], DisconnectReason::ParseError);
}

#[test]
fn open_or_upgrade_from_client_closes() {
    assert_bad_input("open", &[text("0{}")], DisconnectReason::ParseError);
    assert_bad_input("upgrade", &[text("5")], DisconnectReason::ParseError);
}

#[test]
fn socketio_garbage_closes() {
    assert_bad_input("4xyz", &[text("4xyz")], DisconnectReason::ParseError);
    assert_bad_input(
        "bad json",
        &[text(r#"42["a",}"#)],
        DisconnectReason::ParseError,
    );
    assert_bad_input(
        "not array",
        &[text(r#"42{"a":1}"#)],
        DisconnectReason::ParseError,
    );
    assert_bad_input(
        "ack without id",
        &[text(r#"43["a"]"#)],
        DisconnectReason::ParseError,
    );
    assert_bad_input(
        "connect error from client",
        &[text(r#"44{"message":"x"}"#)],
        DisconnectReason::ParseError,
    );
}

#[test]
fn object_event_name_closes() {
    assert_bad_input(
        "object name",
        &[text(r#"42[{"toString":"foo"}]"#)],
        DisconnectReason::ParseError,
    );
}

#[test]
fn reserved_event_names_close() {
    for name in [
        "connect",
        "connect_error",
        "disconnect",
        "disconnecting",
        "newListener",
        "removeListener",
    ] {
        assert_bad_input(
            name,
            &[text(&format!(r#"42["{name}"]"#))],
            DisconnectReason::ParseError,
        );
    }
}

#[test]
fn placeholder_num_splice_closes() {
    assert_bad_input(
        "splice",
        &[text(r#"451-["a",{"_placeholder":true,"num":"splice"}]"#)],
        DisconnectReason::ParseError,
    );
}

#[test]
fn placeholder_num_out_of_range_closes() {
    assert_bad_input(
        "num 1 of 1",
        &[
            text(r#"451-["a",{"_placeholder":true,"num":1}]"#),
            Frame::Binary(Bytes::from_static(b"x")),
        ],
        DisconnectReason::ParseError,
    );
}

#[test]
fn too_many_attachments_close() {
    assert_bad_input(
        "11 attachments",
        &[text(r#"4511-["a"]"#)],
        DisconnectReason::ParseError,
    );
    assert_bad_input(
        "huge attachment count",
        &[text(r#"45999999999999999999999999-["a"]"#)],
        DisconnectReason::ParseError,
    );
}

#[test]
fn binary_without_header_closes() {
    assert_bad_input(
        "binary alone",
        &[Frame::Binary(Bytes::from_static(b"\x01\x02"))],
        DisconnectReason::ParseError,
    );
}

#[test]
fn extra_attachment_frame_closes() {
    // The packet is complete after its one attachment; the next binary frame has no header.
    assert_bad_input_after(
        "one attachment too many",
        &[
            text(r#"451-["a",{"_placeholder":true,"num":0}]"#),
            Frame::Binary(Bytes::from_static(b"\x01")),
            Frame::Binary(Bytes::from_static(b"\x02")),
        ],
        DisconnectReason::ParseError,
        1,
    );
}

#[test]
fn text_in_the_middle_of_a_binary_packet_closes() {
    assert_bad_input(
        "text during binary",
        &[
            text(r#"452-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#),
            Frame::Binary(Bytes::from_static(b"\x01")),
            text(r#"42["b"]"#),
        ],
        DisconnectReason::ParseError,
    );
}

#[test]
fn huge_ack_id_closes() {
    assert_bad_input(
        "huge ack id",
        &[text(r#"42999999999999999999999999["a"]"#)],
        DisconnectReason::ParseError,
    );
    assert_bad_input(
        "huge ack reply id",
        &[text(r#"43999999999999999999999999[]"#)],
        DisconnectReason::ParseError,
    );
}

#[test]
fn packet_for_a_namespace_not_joined_closes() {
    // `/admin` exists but this client did not join it.
    assert_bad_input(
        "event /admin",
        &[text(r#"42/admin,["x"]"#)],
        DisconnectReason::ParseError,
    );
    assert_bad_input(
        "ack /admin",
        &[text(r#"43/admin,0[]"#)],
        DisconnectReason::ParseError,
    );
    assert_bad_input(
        "disconnect /admin",
        &[text("41/admin,")],
        DisconnectReason::ParseError,
    );
    // And one that does not exist at all.
    assert_bad_input(
        "event /ghost",
        &[text(r#"42/ghost,["x"]"#)],
        DisconnectReason::ParseError,
    );
}

#[test]
fn second_connect_to_the_same_namespace_closes() {
    assert_bad_input(
        "second CONNECT /",
        &[text("40")],
        DisconnectReason::ParseError,
    );
    assert_bad_input(
        "second CONNECT /other",
        &[text("40/other,")],
        DisconnectReason::ParseError,
    );
}

#[test]
fn oversized_websocket_message_closes() {
    let big = format!(r#"42["a","{}"]"#, "x".repeat(1000));
    assert_bad_input(
        "oversized text",
        &[text(&big)],
        DisconnectReason::TransportError,
    );
    assert_bad_input(
        "oversized binary",
        &[
            text(r#"451-["a",{"_placeholder":true,"num":0}]"#),
            Frame::Binary(Bytes::from(vec![0u8; 1001])),
        ],
        DisconnectReason::TransportError,
    );
}

#[test]
fn websocket_message_at_max_payload_is_accepted() {
    let config = {
        let mut c = Config::default();
        c.limits = Limits {
            max_payload: 1000,
            ..Limits::default()
        };
        c
    };
    let mut net = Net::new(config);
    let (conn, sockets) = net.client(&["/"]);
    let msg = format!(r#"42["a","{}"]"#, "x".repeat(1000 - 10));
    assert_eq!(msg.len(), 1000);
    net.ws_send(conn, &msg);
    assert!(net.closed.is_empty());
    assert!(
        matches!(&net.take_events()[..], [Event::Message { socket, .. }] if *socket == sockets[0])
    );
}

#[test]
fn second_connect_while_the_first_is_undecided_closes() {
    let mut net = Net::new(Config::default());
    let conn = net.ws_connect();
    net.ws_send(conn, "40");
    net.ws_send(conn, "40");
    assert_eq!(net.closed, [(conn, DisconnectReason::ParseError)]);
    // The undecided request can no longer be accepted.
    let (request, _, _) = net.take_connect_request();
    assert!(matches!(
        net.server.accept(request, 0),
        Err(roomcast::Error::UnknownRequest)
    ));
}
