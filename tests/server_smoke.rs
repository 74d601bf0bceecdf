mod common;
use common::Net;
use roomcast::{Config, Event};

#[test]
fn ws_client_connects_emits_and_receives_a_broadcast() {
    let mut net = Net::new(Config::default());
    let (a, sa) = net.client(&["/"]);
    let (b, _sb) = net.client(&["/"]);
    net.ws_send(a, r#"42["hello",1]"#);
    let ev = net.take_events();
    assert!(
        matches!(&ev[..], [Event::Message { socket, event, ack: None }] if *socket == sa[0] && event.name() == "hello"),
        "{ev:?}"
    );
    let n = net
        .server
        .broadcast_from(sa[0])
        .unwrap()
        .emit("news", &("x",))
        .unwrap();
    assert_eq!(n, 1);
    net.drain();
    assert_eq!(net.take_text(b), [r#"42["news","x"]"#]);
    assert!(net.take_text(a).is_empty());
}

#[test]
fn polling_client_handshake_connect_and_poll() {
    let mut net = Net::new(Config::default());
    let sid = net.polling_connect();
    let r = net.post(&sid, b"40");
    assert_eq!(&r.body[..], b"ok");
    let req = net
        .take_events()
        .into_iter()
        .find_map(|e| match e {
            Event::ConnectRequest { request, .. } => Some(request),
            _ => None,
        })
        .unwrap();
    net.server.accept(req, 0).unwrap();
    net.drain();
    let body = net.get(&sid).unwrap();
    assert!(body.starts_with(b"40{\"sid\":"), "{body:?}");
    let held = net.get(&sid).unwrap_err();
    let root = net.server.namespace("/").unwrap();
    net.server.to_namespace(root).emit("tick", &(1,)).unwrap();
    net.drain();
    assert_eq!(&net.poll_answers[&held][..], br#"42["tick",1]"#);
}
