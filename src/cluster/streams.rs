//! The wire of `@socket.io/redis-streams-adapter` 0.3.1 (`shared/protocols/redis-cluster.md` §5):
//! the `ClusterAdapter` messages of [`sharded`](super::sharded) split over two transports, and
//! what connection state recovery keeps in Redis.
//!
//! - Broadcasts without acks, `socketsJoin`, `socketsLeave` and `disconnectSockets` are entries of
//!   a Redis **stream** (`XADD <stream> MAXLEN ~ 10000 * uid <uid> nsp <nsp> type <n> data <d>`),
//!   so that a reconnecting client can be given what it missed: an entry's id is the offset the
//!   client keeps. `data` is the JSON text of the message's data, or base64 of its msgpack when
//!   it holds binary.
//! - Broadcasts with acks, `serverSideEmit` and `fetchSockets` are published (Pub/Sub) on the
//!   namespace's main channel, responses on the requester's own channel: msgpack of the whole
//!   `{type, data, uid, nsp}` object (as `@msgpack/msgpack` writes it: smallest integer forms,
//!   float64 for every other number, `str8` from 32 bytes).
//! - A disconnected socket's session is `base64(msgpack({sid, pid, rooms, data}))` under
//!   `sio:session:<pid>`, with the recovery window as its TTL.
//!
//! Messages decode into, and encode from, the same types as the sharded protocol's
//! ([`Envelope`], [`Message`]): one mapping of the message set, two framings. Nothing here does
//! I/O; `io::redis` moves the fields and bytes.
//!
//! ```
//! use roomcast::cluster::streams::{decode_entry, stream_key, StreamId};
//! use roomcast::cluster::sharded::Message;
//!
//! // An entry as a Node node writes it for `io.to("red").emit("msg", 1)`.
//! let fields = [
//!     ("uid", "999787c989236ba7"),
//!     ("nsp", "/"),
//!     ("type", "3"),
//!     ("data", r#"{"packet":{"type":2,"data":["msg",1]},"opts":{"rooms":["red"],"except":[],"flags":{}}}"#),
//! ];
//! let e = decode_entry(&fields).unwrap();
//! assert!(matches!(e.message, Message::Broadcast(ref b) if b.opts.rooms == ["red"]));
//! assert_eq!(stream_key("socket.io", 1, "/"), "socket.io");
//! assert_eq!(StreamId::parse("1700000000000-7").unwrap().next().unwrap().to_string(), "1700000000000-8");
//! ```

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use rmpv::Value;

use super::classic::{
    json, map, msgpack, str_list, Broadcast, Fields, Options, Request, Response, WireError,
};
use super::sharded::{
    broadcast_parts, carries_binary, envelope_of, message_of, message_type, message_value,
    request_parts, response_parts,
};
use super::value::{normalize, MAX_DEPTH};

/// The channels of one namespace: the same layout as the sharded protocol's (main
/// `${prefix}#${nsp}#`, own `${prefix}#${nsp}#${uid}#`, a requester's for responses); room
/// channels are not used by this protocol.
pub use super::sharded::Channels;
pub use super::sharded::{Envelope, Message};

/// One stream entry as read (`XREAD`, `XRANGE`): its id, the offset clients keep, and its
/// fields in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    /// The entry id, `<ms>-<seq>`.
    pub id: String,
    /// Field names and values, as written.
    pub fields: Vec<(bytes::Bytes, bytes::Bytes)>,
}

/// The stream's default name (`streamName`).
pub const DEFAULT_STREAM_NAME: &str = "socket.io";
/// The Pub/Sub channels' default prefix (`channelPrefix`).
pub const DEFAULT_CHANNEL_PREFIX: &str = "socket.io";
/// The default prefix of session keys (`sessionKeyPrefix`).
pub const DEFAULT_SESSION_KEY_PREFIX: &str = "sio:session:";
/// The default approximate bound of the stream (`maxLen`, for `XADD … MAXLEN ~`).
pub const DEFAULT_MAX_LEN: u64 = 10_000;

/// Most fields an entry may have: Node writes four; anything far beyond is not an entry of
/// this protocol, and looking fields up stays cheap.
pub const MAX_FIELDS: usize = 32;
/// Longest `uid`, `nsp` or `type` field accepted in an entry (the payload is in `data`).
pub const MAX_NAME_LEN: usize = 4096;
/// Longest encoded session record accepted (base64 text); a session holds a socket's rooms
/// and `data`, nowhere near this.
pub const MAX_SESSION_LEN: usize = 1 << 20;

/// A stream entry's fields, in the order Node writes them: `uid, nsp, type`, then `data` when
/// the message has data. Values are text (`data` is JSON or base64).
pub type EntryFields = Vec<(&'static str, String)>;

/// The stream that holds namespace `nsp`'s entries: `stream_name` for one stream, else
/// `${stream_name}-${hashCode(nsp) % stream_count}` as Node computes it (Java's `hashCode`
/// over UTF-16 units in 32 bits, JavaScript's `%`, whose result has the dividend's sign:
/// `socket.io--1` is a real key; `-0` prints as `0`). A count of 0 is taken as 1.
///
/// Node's readers only read `-0` … `-(count-1)`: a namespace that hashes negative is written to
/// a stream nobody reads. Kept as is, to land where Node nodes write.
pub fn stream_key(stream_name: &str, stream_count: u32, nsp: &str) -> String {
    if stream_count <= 1 {
        return stream_name.to_owned();
    }
    let i = i64::from(hash_code(nsp)) % i64::from(stream_count);
    format!("{stream_name}-{i}")
}

/// Java's `String.hashCode` as the adapter writes it: `h = h * 31 + unit` over the UTF-16 code
/// units, wrapping in 32 bits.
pub fn hash_code(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)))
}

/// The key of the session of private id `pid`: `${prefix}${pid}`.
pub fn session_key(prefix: &str, pid: &str) -> String {
    format!("{prefix}{pid}")
}

/// How a message travels in this protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// An entry for the namespace's stream (`XADD`), fields in order.
    Stream(EntryFields),
    /// A payload to publish on the namespace's main channel ([`Channels::main`]).
    Publish(Vec<u8>),
}

/// The fields of an entry of message `kind` with `data` (Node's `RedisStreamsAdapter.encode`).
fn entry(kind: u64, data: Value, uid: &str, nsp: &str) -> EntryFields {
    let text = if carries_binary(kind, &data) {
        BASE64.encode(msgpack(&data))
    } else {
        String::from_utf8(json(&data)).unwrap_or_default()
    };
    vec![
        ("uid", uid.to_owned()),
        ("nsp", nsp.to_owned()),
        ("type", kind.to_string()),
        ("data", text),
    ]
}

/// The msgpack of the whole message, as published.
fn publication(kind: u64, data: Value, uid: &str, nsp: &str) -> Vec<u8> {
    msgpack(&message_value(kind, data, uid, nsp))
}

/// Encodes a broadcast without acks: always a stream entry (its id is the offset every
/// recipient gets).
pub fn encode_broadcast(b: &Broadcast) -> EntryFields {
    let (kind, data) = broadcast_parts(b);
    entry(kind, data, &b.uid, &b.packet.nsp)
}

/// Encodes a request for namespace `nsp`: joins, leaves and disconnects go to the stream (they
/// must stay in order with the broadcasts around them), broadcasts with acks, `serverSideEmit`
/// and `fetchSockets` are published. `None` for what `ClusterAdapter` has no message for
/// (`allRooms`, legacy requests, requests without a sender).
pub fn encode_request(r: &Request, nsp: &str) -> Option<Outgoing> {
    let (kind, uid, data) = request_parts(r)?;
    Some(match r {
        Request::Join { .. } | Request::Leave { .. } | Request::Disconnect { .. } => {
            Outgoing::Stream(entry(kind, data, uid, nsp))
        }
        _ => Outgoing::Publish(publication(kind, data, uid, nsp)),
    })
}

/// Encodes a response from node `uid`: published on the requester's channel
/// ([`Channels::responses_of`]). `None` for what this protocol has no message for.
pub fn encode_response(r: &Response, uid: &str, nsp: &str) -> Option<Vec<u8>> {
    let (kind, data) = response_parts(r)?;
    Some(publication(kind, data, uid, nsp))
}

/// Decodes a Pub/Sub payload: msgpack of `{type, data, uid, nsp}` (Node decodes msgpack only,
/// so JSON is refused too).
pub fn decode_publication(bytes: &[u8]) -> Result<Envelope, WireError> {
    let value = msgpack_value(bytes)?;
    envelope_of(&value)
}

/// One msgpack value filling `bytes`, normalized (what Node's writers produce made safe).
fn msgpack_value(bytes: &[u8]) -> Result<Value, WireError> {
    let mut rd = bytes;
    let mut value = rmpv::decode::read_value_with_max_depth(&mut rd, MAX_DEPTH)
        .map_err(|e| WireError::Undecodable(e.to_string()))?;
    if !rd.is_empty() {
        return Err(WireError::Undecodable("bytes after the value".into()));
    }
    normalize(&mut value, 0)?;
    Ok(value)
}

/// Decodes a stream entry from its fields, in any order (unknown fields are ignored; of a
/// repeated field the last counts, as in the object node-redis makes of the list). `uid`, `nsp` and `type` are required, `data` is JSON when it
/// starts with `{`, else base64 of msgpack.
pub fn decode_entry<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    fields: &[(K, V)],
) -> Result<Envelope, WireError> {
    if fields.len() > MAX_FIELDS {
        return Err(WireError::Malformed("too many fields"));
    }
    let get = |name: &str| {
        fields
            .iter()
            .rev()
            .find(|(k, _)| k.as_ref() == name.as_bytes())
            .map(|(_, v)| v.as_ref())
    };
    let text = |name: &'static str| -> Result<&str, WireError> {
        let v = get(name).ok_or(WireError::Malformed(name))?;
        if v.len() > MAX_NAME_LEN {
            return Err(WireError::Malformed(name));
        }
        std::str::from_utf8(v).map_err(|_| WireError::Malformed(name))
    };
    let uid = text("uid")?;
    let nsp = text("nsp")?;
    // Node skips entries with an empty `nsp` before decoding them.
    if nsp.is_empty() {
        return Err(WireError::Malformed("nsp"));
    }
    let kind = decimal(text("type")?).ok_or(WireError::Malformed("type"))?;
    let data = match get("data") {
        // Node drops a falsy `data` (absent or empty).
        None | Some([]) => None,
        Some(d) => Some(entry_data(d)?),
    };
    let message = message_of(uid, nsp, kind, data.as_ref())?;
    Ok(Envelope {
        uid: uid.to_owned(),
        nsp: nsp.to_owned(),
        message,
    })
}

/// An entry's `data`: JSON text if it starts with `{`, else base64 of msgpack.
fn entry_data(d: &[u8]) -> Result<Value, WireError> {
    if d.first() == Some(&b'{') {
        let mut value = serde_json::from_slice::<Value>(d)
            .map_err(|e| WireError::Undecodable(e.to_string()))?;
        normalize(&mut value, 0)?;
        Ok(value)
    } else {
        let raw = BASE64
            .decode(d)
            .map_err(|e| WireError::Undecodable(format!("data is not base64: {e}")))?;
        msgpack_value(&raw)
    }
}

/// A decimal number of at most 20 digits that fits in a `u64` (Node's `parseInt(type, 10)` is
/// laxer; nothing it accepts and this refuses is written by a node).
fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Whether a replayed broadcast reaches a session (`shouldIncludePacket` of the reference): its
/// rooms are empty or share one with the session's, and none of the session's rooms is
/// excepted. `session_rooms` includes the socket's own id.
pub fn should_include(session_rooms: &[String], opts: &Options) -> bool {
    let included = opts.rooms.is_empty() || session_rooms.iter().any(|r| opts.rooms.contains(r));
    included && !session_rooms.iter().any(|r| opts.except.contains(r))
}

// ---- Sessions ------------------------------------------------------------------------------------

/// What a node keeps of a disconnected socket, to give it back on recovery.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// The socket id (public).
    pub sid: String,
    /// The private id the client presents to recover.
    pub pid: String,
    /// Its rooms, its own id included (first, as Node lists them).
    pub rooms: Vec<String>,
    /// Its `socket.data` (nil when it had none).
    pub data: Value,
}

impl Session {
    /// The stored text: `base64(msgpack({sid, pid, rooms, data}))`, what Node's
    /// `persistSession` writes with `SET <key> <value> PX <ttl>`.
    pub fn encode(&self) -> String {
        let v = map(vec![
            ("sid", Value::from(self.sid.as_str())),
            ("pid", Value::from(self.pid.as_str())),
            ("rooms", str_list(&self.rooms)),
            ("data", self.data.clone()),
        ]);
        BASE64.encode(msgpack(&v))
    }

    /// Reads a stored session (keys in any order; `data` may be absent).
    pub fn decode(text: &[u8]) -> Result<Session, WireError> {
        if text.len() > MAX_SESSION_LEN {
            return Err(WireError::Malformed("session too long"));
        }
        let raw = BASE64
            .decode(text)
            .map_err(|e| WireError::Undecodable(format!("session is not base64: {e}")))?;
        let value = msgpack_value(&raw)?;
        let f = Fields::of(&value)?;
        Ok(Session {
            sid: f.str("sid")?,
            pid: f.str("pid")?,
            rooms: f.rooms("rooms")?,
            data: f.get("data").cloned().unwrap_or(Value::Nil),
        })
    }
}

// ---- Offsets -------------------------------------------------------------------------------------

/// A stream entry id `<ms>-<seq>`: the offset a client presents to recover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

/// An offset that is not `^[0-9]+-[0-9]+$` with both parts in `u64` (Node rejects the first
/// with `"invalid offset"`; Redis refuses the second).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid stream offset")]
pub struct InvalidOffset;

impl StreamId {
    /// Longest text accepted: two `u64`s and the dash.
    pub const MAX_LEN: usize = 41;

    /// Parses `<ms>-<seq>`: ASCII digits only (no sign, no spaces), each part at most 20 digits
    /// and within `u64`.
    pub fn parse(s: &str) -> Result<StreamId, InvalidOffset> {
        if s.len() > Self::MAX_LEN {
            return Err(InvalidOffset);
        }
        let (ms, seq) = s.split_once('-').ok_or(InvalidOffset)?;
        Ok(StreamId {
            ms: decimal(ms).ok_or(InvalidOffset)?,
            seq: decimal(seq).ok_or(InvalidOffset)?,
        })
    }

    /// The smallest id after this one, the start of an exclusive range (Node's `nextOffset`,
    /// for Redis before 6.2): `ms-(seq+1)`, or `(ms+1)-0` past the last sequence; `None` after
    /// the very last id.
    pub fn next(self) -> Option<StreamId> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => Some(StreamId {
                ms: self.ms.checked_add(1)?,
                seq: 0,
            }),
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Whether `s` is an offset this protocol can look up ([`StreamId::parse`] succeeds).
pub fn is_valid_offset(s: &str) -> bool {
    StreamId::parse(s).is_ok()
}

/// The message type of stream entries that recovery replays (a broadcast).
pub const REPLAYED_TYPE: u64 = message_type::BROADCAST;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::classic::{ClusterPacket, Flags};

    /// What two Node nodes wrote to Redis, captured by `tests/cluster/capture_streams.mjs`.
    const FIXTURE: &str = include_str!("../../tests/cluster/fixtures/streams/node.json");

    fn fixture() -> serde_json::Value {
        serde_json::from_str(FIXTURE).unwrap()
    }

    fn action<'f>(f: &'f serde_json::Value, name: &str) -> &'f serde_json::Value {
        f["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("no action {name} in the fixture"))
    }

    fn entry_fields(e: &serde_json::Value) -> Vec<(String, String)> {
        e["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|kv| {
                (
                    kv[0].as_str().unwrap().to_owned(),
                    kv[1].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Re-encodes a decoded message the way this protocol sends it.
    fn again(e: &Envelope) -> Outgoing {
        match &e.message {
            Message::Broadcast(b) => Outgoing::Stream(encode_broadcast(b)),
            Message::Request(r) => encode_request(r, &e.nsp).unwrap(),
            Message::Response(r) => Outgoing::Publish(encode_response(r, &e.uid, &e.nsp).unwrap()),
            Message::Heartbeat => panic!("no heartbeats in 0.3.1"),
        }
    }

    #[test]
    fn node_stream_entries_decode_and_encode_byte_for_byte() {
        let f = fixture();
        let mut seen = 0;
        for a in f["actions"].as_array().unwrap() {
            for e in a["stream"].as_array().unwrap() {
                let fields = entry_fields(e);
                let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
                assert_eq!(names, ["uid", "nsp", "type", "data"], "{}", a["name"]);
                let env = decode_entry(&fields).unwrap();
                let Outgoing::Stream(ours) = again(&env) else {
                    panic!("{} should go to the stream", a["name"]);
                };
                let ours: Vec<(String, String)> =
                    ours.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                assert_eq!(ours, fields, "{}", a["name"]);
                assert!(StreamId::parse(e["id"].as_str().unwrap()).is_ok());
                seen += 1;
            }
        }
        assert_eq!(seen, 7);
    }

    #[test]
    fn node_entries_mean_what_was_done() {
        let f = fixture();
        let one = |name: &str| decode_entry(&entry_fields(&action(&f, name)["stream"][0])).unwrap();
        let Message::Broadcast(b) = one("broadcast-room-except").message else {
            panic!()
        };
        assert_eq!(
            (b.opts.rooms.as_slice(), b.opts.except.as_slice()),
            (&["red".to_owned()][..], &["blue".to_owned()][..])
        );
        assert_eq!(b.packet.data[0], Value::from("msg"));
        assert_eq!(b.packet.nsp, "/");
        let Message::Broadcast(b) = one("broadcast-binary").message else {
            panic!()
        };
        let payload = b.packet.data[1].as_map().unwrap();
        let get = |k: &str| {
            payload
                .iter()
                .find(|(key, _)| key.as_str() == Some(k))
                .unwrap()
                .1
                .clone()
        };
        assert_eq!(get("bin"), Value::Binary(vec![0, 1, 2, 255]));
        assert_eq!(get("big"), Value::from(1u64 << 40));
        assert_eq!(get("neg2"), Value::from(-(1i64 << 35)));
        assert_eq!(get("f"), Value::F64(0.5));
        assert_eq!(get("s"), Value::from("héllo"));
        assert!(
            matches!(one("sockets-join").message, Message::Request(Request::Join { ref rooms, .. }) if rooms == &["yellow"])
        );
        assert!(
            matches!(one("sockets-leave").message, Message::Request(Request::Leave { ref rooms, .. }) if rooms == &["yellow"])
        );
        assert!(matches!(
            one("disconnect-sockets").message,
            Message::Request(Request::Disconnect { close: false, .. })
        ));
    }

    #[test]
    fn node_publications_decode_and_encode_byte_for_byte() {
        let f = fixture();
        let mut seen = 0;
        for a in f["actions"].as_array().unwrap() {
            for m in a["pubsub"].as_array().unwrap() {
                let bytes = hex(m["payload_hex"].as_str().unwrap());
                let env = decode_publication(&bytes).unwrap();
                let channels = Channels::new(DEFAULT_CHANNEL_PREFIX, &env.nsp, &env.uid);
                let channel = m["channel"].as_str().unwrap();
                match again(&env) {
                    Outgoing::Publish(ours) => assert_eq!(ours, bytes, "{}", a["name"]),
                    Outgoing::Stream(_) => panic!("{} should be published", a["name"]),
                }
                if let Message::Response(_) = env.message {
                    assert_ne!(channel, channels.main(), "responses go to the requester");
                    assert!(channel.starts_with(channels.main()) && channel.ends_with('#'));
                } else {
                    assert_eq!(channel, channels.main(), "{}", a["name"]);
                }
                seen += 1;
            }
        }
        // fetch + answer, serverSideEmit, with ack + answer, broadcast with ack + count + ack.
        assert_eq!(seen, 8);
    }

    #[test]
    fn node_publications_mean_what_was_done() {
        let f = fixture();
        let pubs = |name: &str| -> Vec<Envelope> {
            action(&f, name)["pubsub"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| decode_publication(&hex(m["payload_hex"].as_str().unwrap())).unwrap())
                .collect()
        };
        let fetch = pubs("fetch");
        let Message::Request(Request::Fetch {
            request_id, opts, ..
        }) = &fetch[0].message
        else {
            panic!()
        };
        assert_eq!(opts.rooms, ["red"]);
        let Message::Response(Response::Fetch {
            request_id: answered,
            sockets,
        }) = &fetch[1].message
        else {
            panic!()
        };
        assert_eq!(request_id, answered);
        assert_eq!(sockets.len(), 1);
        assert!(sockets[0].rooms.contains(&"red".to_owned()));
        let ack = pubs("broadcast-ack");
        assert!(
            matches!(&ack[0].message, Message::Request(Request::BroadcastWithAck { opts, .. }) if opts.flags.timeout == Some(3000))
        );
        assert!(matches!(
            &ack[1].message,
            Message::Response(Response::ClientCount { count: 1, .. })
        ));
        assert!(
            matches!(&ack[2].message, Message::Response(Response::BroadcastAck { packet, .. }) if packet.as_str() == Some("b1"))
        );
        let emit = pubs("server-emit");
        assert!(matches!(
            &emit[0].message,
            Message::Request(Request::ServerSideEmit {
                request_id: None,
                ..
            })
        ));
        let emit = pubs("server-emit-ack");
        assert!(matches!(
            &emit[0].message,
            Message::Request(Request::ServerSideEmit {
                request_id: Some(_),
                ..
            })
        ));
        assert!(matches!(
            &emit[1].message,
            Message::Response(Response::ServerSideEmit { .. })
        ));
    }

    #[test]
    fn the_node_session_record_decodes_and_encodes_byte_for_byte() {
        let f = fixture();
        let s = &f["session"];
        let value = s["value"].as_str().unwrap();
        let session = Session::decode(value.as_bytes()).unwrap();
        assert_eq!(session.sid, s["sid"].as_str().unwrap());
        assert_eq!(session.pid, s["pid"].as_str().unwrap());
        assert_eq!(session.rooms, [session.sid.clone(), "green".into()]);
        assert!(session
            .data
            .as_map()
            .is_some_and(|m| m[0].0.as_str() == Some("node")));
        assert_eq!(session.encode(), value);
        assert_eq!(
            session_key(DEFAULT_SESSION_KEY_PREFIX, &session.pid),
            s["key"].as_str().unwrap()
        );
        // Stored with the recovery window as its TTL (30000 ms in the capture).
        let set = action(&f, "session-stored")["monitor"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| l.as_str())
            .find(|l| l.contains("\"SET\""))
            .unwrap();
        assert!(
            set.ends_with(&format!("\"{value}\" \"PX\" \"30000\"")),
            "{set}"
        );
    }

    #[test]
    fn the_restore_reads_from_the_id_after_the_offset() {
        let f = fixture();
        let offset = f["session"]["offset"].as_str().unwrap();
        let id = StreamId::parse(offset).unwrap();
        let lines: Vec<&str> = action(&f, "session-restored")["monitor"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| l.as_str())
            .collect();
        let cmds: Vec<&str> = lines.iter().filter_map(|l| l.split("] ").nth(1)).collect();
        let key = f["session"]["key"].as_str().unwrap();
        assert_eq!(
            &cmds[..6],
            [
                "\"MULTI\"".to_owned(),
                format!("\"GET\" \"{key}\""),
                format!("\"DEL\" \"{key}\""),
                "\"EXEC\"".to_owned(),
                format!("\"XRANGE\" \"socket.io\" \"{offset}\" \"{offset}\""),
                format!("\"XRANGE\" \"socket.io\" \"{}\" \"+\"", id.next().unwrap()),
            ]
        );
        // What the recovered client was given: the missed broadcast, its entry id last.
        let missed = &action(&f, "session-restored")["result"]["missed"][0];
        let entry = &action(&f, "missed-broadcast")["stream"][0];
        assert_eq!(missed[1], entry["id"]);
    }

    #[test]
    fn stream_keys_hash_as_node_does() {
        // hashCode and `socket.io-${hashCode(nsp) % k}` for k = 2, 3, 7, 10, computed by
        // @socket.io/redis-streams-adapter 0.3.1 (dist/util.js) in Node 20.
        let cases: &[(&str, i32, [&str; 4])] = &[
            ("/", 47, ["1", "2", "5", "7"]),
            ("/chat", 46457863, ["1", "1", "4", "3"]),
            ("/admin", 1438238848, ["0", "1", "4", "8"]),
            ("/school", -2144977821, ["-1", "0", "0", "-1"]),
            ("/home", 46613902, ["0", "1", "6", "2"]),
            ("/é", 1690, ["0", "1", "3", "0"]),
            ("/😀", 1818066, ["0", "0", "5", "6"]),
            ("/ключ", 76715369, ["1", "2", "3", "9"]),
            (
                "/a-very-long-namespace-name-to-overflow-int32-many-times-over",
                766224470,
                ["0", "2", "4", "0"],
            ),
            ("", 0, ["0", "0", "0", "0"]),
            ("/x", 1577, ["1", "2", "2", "7"]),
            ("/custom", 1708878944, ["0", "2", "3", "4"]),
        ];
        for (nsp, hash, keys) in cases {
            assert_eq!(hash_code(nsp), *hash, "{nsp}");
            for (k, want) in [2, 3, 7, 10].into_iter().zip(keys) {
                assert_eq!(
                    stream_key("socket.io", k, nsp),
                    format!("socket.io-{want}"),
                    "{nsp} % {k}"
                );
            }
            assert_eq!(stream_key("socket.io", 1, nsp), "socket.io");
            assert_eq!(stream_key("socket.io", 0, nsp), "socket.io");
        }
    }

    #[test]
    fn offsets_are_checked_by_hand_and_bounded() {
        for ok in [
            "0-0",
            "1796174096391-0",
            "18446744073709551615-18446744073709551615",
        ] {
            assert!(is_valid_offset(ok), "{ok}");
        }
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "1",
            "1-2-3",
            "a-1",
            "1-a",
            "+1-2",
            " 1-2",
            "1-2 ",
            "1--2",
            "18446744073709551616-0",
            "0-18446744073709551616",
            "٣-1",
            "1-2\n",
            &"1".repeat(100),
            &format!("{}-0", "0".repeat(40)),
        ] {
            assert!(!is_valid_offset(bad), "{bad:?}");
        }
        let id = |s| StreamId::parse(s).unwrap();
        assert_eq!(id("5-7").next(), Some(id("5-8")));
        assert_eq!(id("5-18446744073709551615").next(), Some(id("6-0")));
        assert_eq!(id("18446744073709551615-18446744073709551615").next(), None);
        assert_eq!(id("00012-003").to_string(), "12-3");
        assert!(id("1-9") < id("2-0") && id("2-0") < id("2-1"));
    }

    #[test]
    fn the_split_follows_the_reference() {
        let opts = Options::default();
        let packet = ClusterPacket {
            nsp: "/".into(),
            data: vec![Value::from("ev")],
        };
        let to_stream = [
            Request::Join {
                uid: Some("u".into()),
                opts: opts.clone(),
                rooms: vec!["r".into()],
            },
            Request::Leave {
                uid: Some("u".into()),
                opts: opts.clone(),
                rooms: vec!["r".into()],
            },
            Request::Disconnect {
                uid: Some("u".into()),
                opts: opts.clone(),
                close: true,
            },
        ];
        for r in &to_stream {
            assert!(
                matches!(encode_request(r, "/"), Some(Outgoing::Stream(_))),
                "{r:?}"
            );
        }
        let published = [
            Request::Fetch {
                uid: "u".into(),
                request_id: "q".into(),
                opts: opts.clone(),
            },
            Request::ServerSideEmit {
                uid: "u".into(),
                request_id: None,
                data: vec![Value::from("ev")],
            },
            Request::ServerSideEmit {
                uid: "u".into(),
                request_id: Some("q".into()),
                data: vec![Value::from("ev")],
            },
            Request::BroadcastWithAck {
                uid: "u".into(),
                request_id: "q".into(),
                packet: packet.clone(),
                opts: Options {
                    flags: Flags {
                        timeout: Some(5),
                        ..Flags::default()
                    },
                    ..opts.clone()
                },
            },
        ];
        for r in &published {
            let Some(Outgoing::Publish(bytes)) = encode_request(r, "/") else {
                panic!("{r:?} should be published");
            };
            assert_eq!(
                decode_publication(&bytes).unwrap().message,
                Message::Request(r.clone())
            );
        }
        // Nothing for what ClusterAdapter has no message for.
        assert_eq!(
            encode_request(
                &Request::AllRooms {
                    uid: "u".into(),
                    request_id: "q".into()
                },
                "/"
            ),
            None
        );
        assert_eq!(
            encode_request(
                &Request::Join {
                    uid: None,
                    opts,
                    rooms: vec![]
                },
                "/"
            ),
            None
        );
    }

    #[test]
    fn binary_broadcasts_go_as_base64_msgpack_and_back() {
        let b = Broadcast {
            uid: "u".into(),
            packet: ClusterPacket {
                nsp: "/chat".into(),
                data: vec![Value::from("up"), Value::Binary(vec![0, 1, 0xff])],
            },
            opts: Options {
                rooms: vec!["a".into()],
                ..Options::default()
            },
        };
        let fields = encode_broadcast(&b);
        assert_eq!(fields[2], ("type", "3".to_owned()));
        assert!(!fields[3].1.starts_with('{'));
        let e = decode_entry(&fields).unwrap();
        assert_eq!((e.uid.as_str(), e.nsp.as_str()), ("u", "/chat"));
        assert_eq!(e.message, Message::Broadcast(b));
    }

    #[test]
    fn entries_decode_in_any_order_and_ignore_unknown_fields() {
        let data = r#"{"opts":{"rooms":["x"],"except":[],"flags":{}},"close":true}"#;
        let fields = [
            ("extra", "1"),
            ("data", data),
            ("type", "6"),
            ("nsp", "/n"),
            ("uid", "u"),
        ];
        let e = decode_entry(&fields).unwrap();
        assert_eq!(e.nsp, "/n");
        assert!(matches!(
            e.message,
            Message::Request(Request::Disconnect { close: true, .. })
        ));
    }

    #[test]
    fn garbage_entries_are_typed_errors() {
        let ok_data = r#"{"opts":{"rooms":[],"except":[],"flags":{}},"rooms":["y"]}"#;
        let long = "u".repeat(MAX_NAME_LEN + 1);
        let cases: Vec<Vec<(&[u8], &[u8])>> = vec![
            vec![],
            vec![
                (b"nsp", b"/"),
                (b"type", b"4"),
                (b"data", ok_data.as_bytes()),
            ],
            vec![
                (b"uid", b"u"),
                (b"type", b"4"),
                (b"data", ok_data.as_bytes()),
            ],
            vec![(b"uid", b"u"), (b"nsp", b""), (b"type", b"4")],
            vec![(b"uid", b"u"), (b"nsp", b"/"), (b"type", b"x")],
            vec![(b"uid", b"u"), (b"nsp", b"/"), (b"type", b"-3")],
            vec![(b"uid", b"u"), (b"nsp", b"/"), (b"type", b"99")],
            vec![
                (b"uid", b"u"),
                (b"nsp", b"/"),
                (b"type", b"999999999999999999999999"),
            ],
            vec![(b"uid", b"\xff"), (b"nsp", b"/"), (b"type", b"4")],
            vec![(b"uid", long.as_bytes()), (b"nsp", b"/"), (b"type", b"4")],
            vec![
                (b"uid", b"u"),
                (b"nsp", b"/"),
                (b"type", b"3"),
                (b"data", b"{"),
            ],
            vec![
                (b"uid", b"u"),
                (b"nsp", b"/"),
                (b"type", b"3"),
                (b"data", b"!!!"),
            ],
            vec![
                (b"uid", b"u"),
                (b"nsp", b"/"),
                (b"type", b"3"),
                (b"data", b"wQ=="),
            ],
            vec![
                (b"uid", b"u"),
                (b"nsp", b"/"),
                (b"type", b"3"),
                (b"data", b"gA=="),
            ],
            vec![
                (b"uid", b"u"),
                (b"nsp", b"/"),
                (b"type", b"3"),
                (b"data", b"{}"),
            ],
        ];
        for fields in &cases {
            assert!(decode_entry(fields).is_err(), "{fields:?}");
        }
        let many: Vec<(&str, &str)> = vec![("x", "y"); MAX_FIELDS + 1];
        assert!(decode_entry(&many).is_err());
        // JSON is not a Pub/Sub payload of this protocol; neither is trailing garbage.
        assert!(
            decode_publication(br#"{"type":9,"uid":"u","nsp":"/","data":{"packet":["e"]}}"#)
                .is_err()
        );
        assert!(decode_publication(b"\x80\x80").is_err());
        assert!(decode_publication(b"").is_err());
    }

    #[test]
    fn sessions_round_trip_and_garbage_is_refused() {
        let s = Session {
            sid: "s".into(),
            pid: "p".into(),
            rooms: vec!["s".into(), "r".into()],
            data: Value::Nil,
        };
        assert_eq!(Session::decode(s.encode().as_bytes()).unwrap(), s);
        for bad in [&b""[..], b"!!", b"gA==", b"kA==", b"wQ=="] {
            assert!(Session::decode(bad).is_err(), "{bad:?}");
        }
        assert!(Session::decode(&vec![b'A'; MAX_SESSION_LEN + 4]).is_err());
    }

    #[test]
    fn replay_selection_is_the_references() {
        let rooms = vec!["sid".to_owned(), "r1".to_owned(), "r2".to_owned()];
        let o = |rooms: &[&str], except: &[&str]| Options {
            rooms: rooms.iter().map(|s| s.to_string()).collect(),
            except: except.iter().map(|s| s.to_string()).collect(),
            flags: Flags::default(),
        };
        assert!(should_include(&rooms, &o(&[], &[])));
        assert!(should_include(&rooms, &o(&["r1"], &[])));
        assert!(should_include(&rooms, &o(&["sid"], &[])));
        assert!(should_include(&rooms, &o(&[], &["r3"])));
        assert!(!should_include(&rooms, &o(&["r3"], &[])));
        assert!(!should_include(&rooms, &o(&[], &["r2"])));
        assert!(!should_include(&rooms, &o(&["r1"], &["sid"])));
    }
}
