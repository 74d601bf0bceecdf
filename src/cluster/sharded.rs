//! The `ClusterAdapter` message set of `socket.io-adapter` 2.5 as `createShardedAdapter` of
//! `@socket.io/redis-adapter` 8.3 sends it over Redis sharded Pub/Sub
//! (`shared/protocols/redis-cluster.md` §4): every message one object `{type, data, uid, nsp}`,
//! JSON unless it carries binary (then msgpack), on the namespace's main channel, a room's
//! channel, or the requester's own channel for responses.
//!
//! Messages are read into, and written from, the same types as the classic protocol's
//! ([`Broadcast`], [`Request`], [`Response`]): the node acts on them the same way; only the
//! framing and the channels differ.

use super::classic::{
    decode_value, has_binary, json, map, msgpack, options, opts_value, remote_socket, str_list,
    Broadcast, ClusterPacket, Fields, Options, Request, Response, WireError,
};
use rmpv::Value;

/// Message type numbers (`MessageType` of `socket.io-adapter`).
pub mod message_type {
    /// Heartbeat variant only: a node starts.
    pub const INITIAL_HEARTBEAT: u64 = 1;
    /// Heartbeat variant only.
    pub const HEARTBEAT: u64 = 2;
    /// A broadcast (with a `requestId`: with acks).
    pub const BROADCAST: u64 = 3;
    /// `socketsJoin`.
    pub const SOCKETS_JOIN: u64 = 4;
    /// `socketsLeave`.
    pub const SOCKETS_LEAVE: u64 = 5;
    /// `disconnectSockets`.
    pub const DISCONNECT_SOCKETS: u64 = 6;
    /// `fetchSockets`.
    pub const FETCH_SOCKETS: u64 = 7;
    /// A node's sockets, to the requester.
    pub const FETCH_SOCKETS_RESPONSE: u64 = 8;
    /// `serverSideEmit` (with a `requestId`: with an ack).
    pub const SERVER_SIDE_EMIT: u64 = 9;
    /// A node's answer to a `serverSideEmit` with an ack.
    pub const SERVER_SIDE_EMIT_RESPONSE: u64 = 10;
    /// How many clients a node's part of a broadcast with acks reached.
    pub const BROADCAST_CLIENT_COUNT: u64 = 11;
    /// One client's answer to a broadcast with acks.
    pub const BROADCAST_ACK: u64 = 12;
    /// Heartbeat variant only: a node leaves.
    pub const ADAPTER_CLOSE: u64 = 13;
}

/// The channels of one namespace adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channels {
    main: String,
    own: String,
}

impl Channels {
    /// The channels for `prefix` (`channelPrefix`, default `socket.io`), namespace `nsp` and
    /// this node's `uid`.
    pub fn new(prefix: &str, nsp: &str, uid: &str) -> Self {
        Channels {
            main: format!("{prefix}#{nsp}#"),
            own: format!("{prefix}#{nsp}#{uid}#"),
        }
    }

    /// Every node's channel (`SSUBSCRIBE`d by all; counted with `PUBSUB SHARDNUMSUB`).
    pub fn main(&self) -> &str {
        &self.main
    }

    /// This node's response channel.
    pub fn own(&self) -> &str {
        &self.own
    }

    /// A room's channel (subscribed by the nodes that have the room, in `dynamic` mode).
    pub fn room(&self, room: &str) -> String {
        format!("{}{room}#", self.main)
    }

    /// A requester's response channel.
    pub fn responses_of(&self, requester: &str) -> String {
        format!("{}{requester}#", self.main)
    }

    /// Where a broadcast goes: a single room that does not look like a socket id (20
    /// characters, what the reference tests) has its own channel; the rest go to the main one.
    pub fn for_broadcast(&self, rooms: &[String]) -> String {
        match rooms {
            [room] if room.chars().count() != 20 => self.room(room),
            _ => self.main.clone(),
        }
    }
}

/// What a message on a channel of this protocol holds.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Message {
    /// A broadcast without acks.
    Broadcast(Broadcast),
    /// A request (a broadcast with acks among them).
    Request(Request),
    /// A response to a request.
    Response(Response),
    /// A heartbeat or a close (sent only by the heartbeat variant of the adapter): nothing to do.
    Heartbeat,
}

/// A decoded message: who sent it, for which namespace, and what.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The sender's uid (`"emitter"` is never used here: the emitter speaks the classic
    /// protocol only).
    pub uid: String,
    /// The namespace.
    pub nsp: String,
    /// The message.
    pub message: Message,
}

/// Decodes a message: JSON if it starts with `{`, else msgpack.
pub fn decode(bytes: &[u8]) -> Result<Envelope, WireError> {
    let value = decode_value(bytes)?;
    envelope_of(&value)
}

/// A decoded `{type, data, uid, nsp}` value as an envelope (the streams protocol's Pub/Sub
/// messages are the same objects in another framing).
pub(crate) fn envelope_of(value: &Value) -> Result<Envelope, WireError> {
    let f = Fields::of(value)?;
    let uid = f.str("uid")?;
    let nsp = f.opt_str("nsp").unwrap_or_else(|| "/".into());
    let kind = f.u64("type")?;
    let message = message_of(&uid, &nsp, kind, f.get("data"))?;
    Ok(Envelope { uid, nsp, message })
}

/// The message of type `kind` with `data` (absent: none) from node `uid` on namespace `nsp`:
/// the one mapping of `ClusterAdapter` messages to ours, shared with the streams protocol.
pub(crate) fn message_of(
    uid: &str,
    nsp: &str,
    kind: u64,
    data: Option<&Value>,
) -> Result<Message, WireError> {
    use message_type::*;
    let uid = uid.to_owned();
    let nsp = nsp.to_owned();
    let empty = Value::Map(Vec::new());
    let data = data.unwrap_or(&empty);
    let d = Fields::of(data)?;
    let opts = || match d.get("opts") {
        Some(o) => options(o),
        None => Ok(Options::default()),
    };
    let message = match kind {
        INITIAL_HEARTBEAT | HEARTBEAT | ADAPTER_CLOSE => Message::Heartbeat,
        BROADCAST => {
            let p = Fields::of(d.get("packet").ok_or(WireError::Malformed("packet"))?)?;
            let data = p
                .get("data")
                .and_then(Value::as_array)
                .filter(|d| d.first().is_some_and(Value::is_str))
                .ok_or(WireError::Malformed("packet data"))?;
            let packet = ClusterPacket {
                nsp: nsp.clone(),
                data: data.clone(),
            };
            match d.opt_str("requestId") {
                Some(request_id) => Message::Request(Request::BroadcastWithAck {
                    uid: uid.clone(),
                    request_id,
                    packet,
                    opts: opts()?,
                }),
                None => Message::Broadcast(Broadcast {
                    uid: uid.clone(),
                    packet,
                    opts: opts()?,
                }),
            }
        }
        SOCKETS_JOIN => Message::Request(Request::Join {
            uid: Some(uid.clone()),
            opts: opts()?,
            rooms: d.rooms("rooms")?,
        }),
        SOCKETS_LEAVE => Message::Request(Request::Leave {
            uid: Some(uid.clone()),
            opts: opts()?,
            rooms: d.rooms("rooms")?,
        }),
        DISCONNECT_SOCKETS => Message::Request(Request::Disconnect {
            uid: Some(uid.clone()),
            opts: opts()?,
            close: d.get("close").and_then(Value::as_bool).unwrap_or(false),
        }),
        FETCH_SOCKETS => Message::Request(Request::Fetch {
            uid: uid.clone(),
            request_id: d.str("requestId")?,
            opts: opts()?,
        }),
        SERVER_SIDE_EMIT => Message::Request(Request::ServerSideEmit {
            uid: uid.clone(),
            request_id: d.opt_str("requestId"),
            data: d
                .get("packet")
                .and_then(Value::as_array)
                .filter(|p| p.first().is_some_and(Value::is_str))
                .cloned()
                .ok_or(WireError::Malformed("packet"))?,
        }),
        FETCH_SOCKETS_RESPONSE => Message::Response(Response::Fetch {
            request_id: d.str("requestId")?,
            sockets: d
                .get("sockets")
                .and_then(Value::as_array)
                .ok_or(WireError::Malformed("sockets"))?
                .iter()
                .map(remote_socket)
                .collect::<Result<_, _>>()?,
        }),
        SERVER_SIDE_EMIT_RESPONSE => Message::Response(Response::ServerSideEmit {
            request_id: d.str("requestId")?,
            data: d.get("packet").cloned().unwrap_or(Value::Nil),
        }),
        BROADCAST_CLIENT_COUNT => Message::Response(Response::ClientCount {
            request_id: d.str("requestId")?,
            count: d.u64("clientCount")?,
        }),
        BROADCAST_ACK => Message::Response(Response::BroadcastAck {
            request_id: d.str("requestId")?,
            packet: d.get("packet").cloned().unwrap_or(Value::Nil),
        }),
        _ => return Err(WireError::Malformed("message type")),
    };
    Ok(message)
}

/// The event of a broadcast as this protocol carries it: no `nsp` (the envelope has it).
fn packet_value(p: &ClusterPacket) -> Value {
    map(vec![
        ("type", Value::from(2)),
        ("data", Value::Array(p.data.clone())),
    ])
}

/// Whether a message of type `kind` with `data` goes as msgpack: it is of a type that may carry
/// binary (the list of the reference) and does.
pub(crate) fn carries_binary(kind: u64, data: &Value) -> bool {
    use message_type::*;
    matches!(
        kind,
        BROADCAST
            | BROADCAST_ACK
            | FETCH_SOCKETS_RESPONSE
            | SERVER_SIDE_EMIT
            | SERVER_SIDE_EMIT_RESPONSE
    ) && has_binary(data)
}

/// The whole message object, keys in Node's order: `type, data` (set by `ClusterAdapter`),
/// then `uid, nsp` (added when it is published).
pub(crate) fn message_value(kind: u64, data: Value, uid: &str, nsp: &str) -> Value {
    map(vec![
        ("type", Value::from(kind)),
        ("data", data),
        ("uid", Value::from(uid)),
        ("nsp", Value::from(nsp)),
    ])
}

/// `{type, data, uid, nsp}`: msgpack when a message that may carry binary does, else JSON.
fn envelope(kind: u64, data: Value, uid: &str, nsp: &str) -> Vec<u8> {
    let binary = carries_binary(kind, &data);
    let v = message_value(kind, data, uid, nsp);
    if binary {
        msgpack(&v)
    } else {
        json(&v)
    }
}

/// The type and data of a broadcast without acks.
pub(crate) fn broadcast_parts(b: &Broadcast) -> (u64, Value) {
    let data = map(vec![
        ("packet", packet_value(&b.packet)),
        ("opts", opts_value(&b.opts)),
    ]);
    (message_type::BROADCAST, data)
}

/// Encodes a broadcast without acks.
pub fn encode_broadcast(b: &Broadcast) -> Vec<u8> {
    let (kind, data) = broadcast_parts(b);
    envelope(kind, data, &b.uid, &b.packet.nsp)
}

/// Encodes a request for namespace `nsp`; `None` for what this protocol has no message for
/// (`allRooms`, the legacy requests).
pub fn encode_request(r: &Request, nsp: &str) -> Option<Vec<u8>> {
    let (kind, uid, data) = request_parts(r)?;
    Some(envelope(kind, data, uid, nsp))
}

/// The type, sender and data of a request; `None` for what `ClusterAdapter` has no message for
/// (`allRooms`, the legacy requests, and joins, leaves and disconnects of the emitter).
pub(crate) fn request_parts(r: &Request) -> Option<(u64, &str, Value)> {
    use message_type::*;
    let (kind, uid, data) = match r {
        Request::Join { uid, opts, rooms } | Request::Leave { uid, opts, rooms } => {
            let kind = if matches!(r, Request::Join { .. }) {
                SOCKETS_JOIN
            } else {
                SOCKETS_LEAVE
            };
            let data = map(vec![("opts", opts_value(opts)), ("rooms", str_list(rooms))]);
            (kind, uid.as_deref()?, data)
        }
        Request::Disconnect { uid, opts, close } => {
            let data = map(vec![
                ("opts", opts_value(opts)),
                ("close", Value::from(*close)),
            ]);
            (DISCONNECT_SOCKETS, uid.as_deref()?, data)
        }
        Request::Fetch {
            uid,
            request_id,
            opts,
        } => {
            let data = map(vec![
                ("opts", opts_value(opts)),
                ("requestId", Value::from(request_id.as_str())),
            ]);
            (FETCH_SOCKETS, uid.as_str(), data)
        }
        Request::ServerSideEmit {
            uid,
            request_id,
            data,
        } => {
            let mut entries = Vec::new();
            if let Some(id) = request_id {
                entries.push(("requestId", Value::from(id.as_str())));
            }
            entries.push(("packet", Value::Array(data.clone())));
            (SERVER_SIDE_EMIT, uid.as_str(), map(entries))
        }
        Request::BroadcastWithAck {
            uid,
            request_id,
            packet,
            opts,
        } => {
            let data = map(vec![
                ("packet", packet_value(packet)),
                ("requestId", Value::from(request_id.as_str())),
                ("opts", opts_value(opts)),
            ]);
            (BROADCAST, uid.as_str(), data)
        }
        _ => return None,
    };
    Some((kind, uid, data))
}

/// Encodes a response from node `uid`; `None` for what this protocol has no message for.
pub fn encode_response(r: &Response, uid: &str, nsp: &str) -> Option<Vec<u8>> {
    let (kind, data) = response_parts(r)?;
    Some(envelope(kind, data, uid, nsp))
}

/// The type and data of a response; `None` for what this protocol has no message for.
pub(crate) fn response_parts(r: &Response) -> Option<(u64, Value)> {
    use message_type::*;
    let id = |s: &str| Value::from(s);
    let (kind, data) = match r {
        Response::Fetch {
            request_id,
            sockets,
        } => {
            let sockets = sockets
                .iter()
                .map(|s| {
                    map(vec![
                        ("id", Value::from(s.id.as_str())),
                        ("handshake", s.handshake.clone()),
                        ("rooms", str_list(&s.rooms)),
                        ("data", s.data.clone()),
                    ])
                })
                .collect();
            (
                FETCH_SOCKETS_RESPONSE,
                map(vec![
                    ("requestId", id(request_id)),
                    ("sockets", Value::Array(sockets)),
                ]),
            )
        }
        Response::ServerSideEmit { request_id, data } => (
            SERVER_SIDE_EMIT_RESPONSE,
            map(vec![
                ("requestId", id(request_id)),
                ("packet", data.clone()),
            ]),
        ),
        Response::ClientCount { request_id, count } => (
            BROADCAST_CLIENT_COUNT,
            map(vec![
                ("requestId", id(request_id)),
                ("clientCount", Value::from(*count)),
            ]),
        ),
        Response::BroadcastAck { request_id, packet } => (
            BROADCAST_ACK,
            map(vec![
                ("requestId", id(request_id)),
                ("packet", packet.clone()),
            ]),
        ),
        _ => return None,
    };
    Some((kind, data))
}

/// A node uid or request id as `ClusterAdapter` makes them: 8 random bytes in lowercase hex.
pub fn uid(rng: &mut dyn crate::RandomSource) -> Result<String, crate::RandomError> {
    let mut raw = [0u8; 8];
    rng.fill(&mut raw)?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observed_messages_decode_and_encode_byte_for_byte() {
        // redis-cluster.md §4.3, as two Node nodes sent them.
        let samples: &[&str] = &[
            r#"{"type":3,"data":{"packet":{"type":2,"data":["msg",{"tag":"t1"}]},"opts":{"rooms":["red"],"except":[],"flags":{}}},"uid":"bbeeb1e34e8b8888","nsp":"/"}"#,
            r#"{"type":4,"data":{"opts":{"rooms":["oCg7FKW8Rhz4r4GwAAAB"],"except":[],"flags":{}},"rooms":["yellow"]},"uid":"bbeeb1e34e8b8888","nsp":"/"}"#,
            r#"{"type":9,"data":{"requestId":"f76eef4460e39516","packet":["cluster-ask",{"q":1}]},"uid":"bbeeb1e34e8b8888","nsp":"/"}"#,
            r#"{"type":10,"data":{"requestId":"f76eef4460e39516","packet":"3392"},"uid":"4a019a369a11c38f","nsp":"/"}"#,
            r#"{"type":3,"data":{"packet":{"type":2,"data":["question",{"a":1}]},"requestId":"7618cb3a040dcb97","opts":{"rooms":["red"],"except":[],"flags":{"timeout":3000}}},"uid":"bbeeb1e34e8b8888","nsp":"/"}"#,
            r#"{"type":11,"data":{"requestId":"7618cb3a040dcb97","clientCount":1},"uid":"4a019a369a11c38f","nsp":"/"}"#,
            r#"{"type":12,"data":{"requestId":"7618cb3a040dcb97","packet":"n1a"},"uid":"4a019a369a11c38f","nsp":"/"}"#,
            r#"{"type":6,"data":{"opts":{"rooms":["VB5x"],"except":[],"flags":{}},"close":false},"uid":"bbeeb1e34e8b8888","nsp":"/"}"#,
        ];
        for s in samples {
            let e = decode(s.as_bytes()).unwrap();
            let again = match &e.message {
                Message::Broadcast(b) => encode_broadcast(b),
                Message::Request(r) => encode_request(r, &e.nsp).unwrap(),
                Message::Response(r) => encode_response(r, &e.uid, &e.nsp).unwrap(),
                Message::Heartbeat => unreachable!(),
            };
            assert_eq!(String::from_utf8(again).unwrap(), *s);
        }
    }

    #[test]
    fn a_fetch_request_and_its_answer_round_trip() {
        let r = r#"{"type":7,"data":{"opts":{"rooms":["red"],"except":[],"flags":{}},"requestId":"30659d83bbd6fead"},"uid":"bbeeb1e34e8b8888","nsp":"/"}"#;
        let e = decode(r.as_bytes()).unwrap();
        assert!(
            matches!(&e.message, Message::Request(Request::Fetch { request_id, .. }) if request_id == "30659d83bbd6fead")
        );
        let Message::Request(req) = &e.message else {
            panic!()
        };
        assert_eq!(
            String::from_utf8(encode_request(req, "/").unwrap()).unwrap(),
            r
        );
    }

    #[test]
    fn binary_switches_to_msgpack_and_back() {
        let b = Broadcast {
            uid: "u".into(),
            packet: ClusterPacket {
                nsp: "/chat".into(),
                data: vec![Value::from("msg"), Value::Binary(vec![0, 1, 0xff])],
            },
            opts: Options::default(),
        };
        let bytes = encode_broadcast(&b);
        assert_ne!(bytes[0], b'{');
        assert_eq!(decode(&bytes).unwrap().message, Message::Broadcast(b));
    }

    #[test]
    fn channels_follow_the_reference_layout() {
        let c = Channels::new("socket.io", "/", "abc");
        assert_eq!(c.main(), "socket.io#/#");
        assert_eq!(c.own(), "socket.io#/#abc#");
        assert_eq!(c.for_broadcast(&["red".into()]), "socket.io#/#red#");
        assert_eq!(c.for_broadcast(&["a".repeat(20)]), "socket.io#/#");
        assert_eq!(c.for_broadcast(&["a".into(), "b".into()]), "socket.io#/#");
    }

    #[test]
    fn garbage_is_a_typed_error() {
        for bad in [
            &b"{"[..],
            b"\xc1",
            b"{}",
            br#"{"uid":"x","type":99}"#,
            br#"{"uid":"x","type":3,"data":{}}"#,
        ] {
            assert!(decode(bad).is_err());
        }
    }

    #[test]
    fn uids_are_sixteen_hex_digits() {
        let mut rng = crate::SeededRandom::new(3);
        let u = uid(&mut rng).unwrap();
        assert_eq!(u.len(), 16);
        assert!(u
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }
}
