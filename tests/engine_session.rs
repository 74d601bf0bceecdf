//! The session layer used directly, as a bare Engine.IO server does: sessions open, carry
//! messages both ways, keep their heartbeat and close, on the virtual clock.

use roomcast::engine::session::{Engine, EngineEvent};
use roomcast::engine::{Frame, Message};
use roomcast::{Config, DisconnectReason, HttpAction, HttpRequest, SeededRandom, Str, Transmit};
use std::time::{Duration, Instant};

fn engine() -> Engine {
    let mut config = Config::default();
    config.ping_interval = Duration::from_millis(300);
    config.ping_timeout = Duration::from_millis(200);
    Engine::with_random(config, Box::new(SeededRandom::new(3))).unwrap()
}

fn written(e: &mut Engine) -> Vec<Frame> {
    let mut out = Vec::new();
    while let Some(t) = e.poll_transmit() {
        if let Transmit::WebSocket { frames, .. } = t {
            out.extend(frames.iter().cloned());
        }
    }
    out
}

#[test]
fn an_echo_server_over_the_session_layer() {
    let mut e = engine();
    let now = Instant::now();
    let HttpAction::AcceptWebSocket(conn) = e.handle_http(
        now,
        HttpRequest::get("EIO=4&transport=websocket").websocket(),
    ) else {
        panic!()
    };
    assert_eq!(e.poll_event(), None, "not open before its WebSocket is");
    e.handle_ws_open(now, conn);
    assert_eq!(e.poll_event(), Some(EngineEvent::Opened { conn }));
    e.handle_ws_message(now, conn, Frame::Text(Str::from_static("4hi")));
    e.handle_ws_message(now, conn, Frame::Binary(bytes::Bytes::from_static(&[1, 2])));
    while let Some(event) = e.poll_event() {
        if let EngineEvent::Message { conn, message } = event {
            e.send_message(conn, message).unwrap();
        }
    }
    let frames = written(&mut e);
    assert!(matches!(&frames[0], Frame::Text(t) if t.starts_with("0{")));
    assert_eq!(frames[1], Frame::Text(Str::from_static("4hi")));
    assert_eq!(frames[2], Frame::Binary(bytes::Bytes::from_static(&[1, 2])));
    // A message is not Socket.IO here: anything goes.
    e.handle_ws_message(now, conn, Frame::Text(Str::from_static("4not socket.io")));
    assert!(matches!(
        e.poll_event(),
        Some(EngineEvent::Message {
            message: Message::Text(_),
            ..
        })
    ));
}

#[test]
fn heartbeat_and_close_reasons() {
    let mut e = engine();
    let mut now = Instant::now();
    let HttpAction::AcceptWebSocket(conn) = e.handle_http(
        now,
        HttpRequest::get("EIO=4&transport=websocket").websocket(),
    ) else {
        panic!()
    };
    e.handle_ws_open(now, conn);
    written(&mut e);
    // Many rounds of ping and pong keep it open.
    for _ in 0..50 {
        now += Duration::from_millis(300);
        e.handle_timeout(now);
        assert_eq!(written(&mut e), [Frame::Text(Str::from_static("2"))]);
        e.handle_ws_message(now, conn, Frame::Text(Str::from_static("3")));
    }
    // Then silence: ping timeout.
    now += Duration::from_millis(300);
    e.handle_timeout(now);
    now += Duration::from_millis(200);
    e.handle_timeout(now);
    let events: Vec<_> = std::iter::from_fn(|| e.poll_event()).collect();
    assert!(events.contains(&EngineEvent::Closed {
        conn,
        reason: DisconnectReason::PingTimeout
    }));
    assert_eq!(e.connection_count(), 0);
    assert!(e
        .send_message(conn, Message::Text(Str::from_static("x")))
        .is_err());
    // Stale timer entries are bounded and run out.
    now += Duration::from_secs(60);
    e.handle_timeout(now);
    assert_eq!(e.timer_count(), 0);
}
