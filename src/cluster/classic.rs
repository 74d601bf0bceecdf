//! The classic protocol of `@socket.io/redis-adapter` 8.3 (`createAdapter(pub, sub)`), which
//! `@socket.io/redis-emitter` 5.1 also speaks: its channels, and every message on them, decoded
//! from and encoded to the bytes Node nodes publish (`shared/protocols/redis-cluster.md` §2–3).
//!
//! Broadcasts, `BROADCAST` requests and `BROADCAST_ACK` responses are msgpack; every other
//! request and response is JSON; a receiver tells them apart by the first byte (`{`). Both
//! framings decode to one value tree first, then to a typed message, so field order and
//! framing never matter to the reader.

use super::value::{normalize, ValueError, MAX_DEPTH};
use rmpv::Value;

/// Why a message from the cluster was not understood. Such messages are dropped (as Node
/// does), never allowed to harm the node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Neither valid JSON nor valid msgpack.
    #[error("undecodable payload: {0}")]
    Undecodable(String),
    /// Decodable, but not a message of this protocol.
    #[error("not a cluster message: {0}")]
    Malformed(&'static str),
    /// A value in it could not be taken.
    #[error(transparent)]
    Value(#[from] ValueError),
}

/// Request type numbers (`RequestType` of the reference).
pub mod request_type {
    /// `allSockets` of nodes before 8.0.
    pub const SOCKETS: u64 = 0;
    /// `adapter.allRooms()`.
    pub const ALL_ROOMS: u64 = 1;
    /// `socketsJoin`.
    pub const REMOTE_JOIN: u64 = 2;
    /// `socketsLeave`.
    pub const REMOTE_LEAVE: u64 = 3;
    /// `disconnectSockets`.
    pub const REMOTE_DISCONNECT: u64 = 4;
    /// `fetchSockets`.
    pub const REMOTE_FETCH: u64 = 5;
    /// `serverSideEmit`, with or without an ack.
    pub const SERVER_SIDE_EMIT: u64 = 6;
    /// A broadcast with acks.
    pub const BROADCAST: u64 = 7;
    /// The count of clients a broadcast with acks reached on one node.
    pub const BROADCAST_CLIENT_COUNT: u64 = 8;
    /// One client's answer to a broadcast with acks.
    pub const BROADCAST_ACK: u64 = 9;
}

/// The channels of one namespace adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channels {
    broadcast: String,
    request: String,
    response: String,
    own_response: String,
}

impl Channels {
    /// The channels for `prefix` (the adapter's `key`, default `socket.io`), namespace `nsp`
    /// and this node's `uid`. Names are not escaped, as the reference's are not.
    pub fn new(prefix: &str, nsp: &str, uid: &str) -> Self {
        Channels {
            broadcast: format!("{prefix}#{nsp}#"),
            request: format!("{prefix}-request#{nsp}#"),
            response: format!("{prefix}-response#{nsp}#"),
            own_response: format!("{prefix}-response#{nsp}#{uid}#"),
        }
    }

    /// Where broadcasts to zero or several rooms go.
    pub fn broadcast(&self) -> &str {
        &self.broadcast
    }

    /// The pattern subscription that receives every broadcast (`PSUBSCRIBE`).
    pub fn broadcast_pattern(&self) -> String {
        format!("{}*", self.broadcast)
    }

    /// Where a broadcast to exactly one room goes.
    pub fn room(&self, room: &str) -> String {
        format!("{}{room}#", self.broadcast)
    }

    /// The channel of a broadcast to `rooms`: the room's own for exactly one, else the
    /// namespace's.
    pub fn for_rooms(&self, rooms: &[String]) -> String {
        match rooms {
            [room] => self.room(room),
            _ => self.broadcast.clone(),
        }
    }

    /// Where every request goes (and what `PUBSUB NUMSUB` counts nodes on).
    pub fn request(&self) -> &str {
        &self.request
    }

    /// The shared response channel (where a responder publishes).
    pub fn response(&self) -> &str {
        &self.response
    }

    /// This node's own response channel (responders with `publishOnSpecificResponseChannel`).
    pub fn own_response(&self) -> &str {
        &self.own_response
    }

    /// For a message on the broadcast pattern: `Some("")` for the namespace channel,
    /// `Some(room)` for a room channel, `None` for a channel of another namespace or adapter.
    pub fn room_of<'c>(&self, channel: &'c str) -> Option<&'c str> {
        let rest = channel.strip_prefix(self.broadcast.as_str())?;
        if rest.is_empty() {
            return Some("");
        }
        rest.strip_suffix('#')
    }
}

/// What `BroadcastFlags` carry across nodes. Unknown flags are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// Drop for clients that cannot take it now.
    pub volatile: bool,
    /// The `compress` flag, when set either way.
    pub compress: Option<bool>,
    /// For a broadcast with acks: how long the requester waits, in ms.
    pub timeout: Option<u64>,
    /// Set by `RemoteSocket.emit` with an ack.
    pub expect_single_response: bool,
}

/// Which sockets an operation selects on every node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Union of these rooms; every socket of the namespace when empty.
    pub rooms: Vec<String>,
    /// Minus the members of these rooms (a socket id names that socket).
    pub except: Vec<String>,
    /// The flags.
    pub flags: Flags,
}

/// A Socket.IO event as it travels: the namespace and `[name, ...args]`, binary as bin leaves.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterPacket {
    /// The namespace (`/` when absent on the wire).
    pub nsp: String,
    /// The event name followed by its arguments.
    pub data: Vec<Value>,
}

/// A broadcast from another node (or the emitter).
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    /// The sender's uid (`"emitter"` for the emitter).
    pub uid: String,
    /// The event.
    pub packet: ClusterPacket,
    /// Its selection.
    pub opts: Options,
}

/// A socket as `fetchSockets` returns it across nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteSocket {
    /// Its id.
    pub id: String,
    /// Its handshake (headers, query, address, auth, ...), as JSON-like data.
    pub handshake: Value,
    /// Its rooms, own id included.
    pub rooms: Vec<String>,
    /// Its data.
    pub data: Value,
}

/// A request on the request channel.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Request {
    /// The socket ids in `rooms` (nodes before 8.0).
    Sockets {
        /// The requester.
        uid: String,
        /// Answered with this id.
        request_id: String,
        /// The rooms.
        rooms: Vec<String>,
    },
    /// Every room of every node.
    AllRooms {
        /// The requester.
        uid: String,
        /// Answered with this id.
        request_id: String,
    },
    /// `socketsJoin`: every node, the requester included, joins the selection to `rooms`.
    Join {
        /// The requester; `None` from the emitter.
        uid: Option<String>,
        /// The selection.
        opts: Options,
        /// The rooms to join.
        rooms: Vec<String>,
    },
    /// `socketsLeave`.
    Leave {
        /// The requester; `None` from the emitter.
        uid: Option<String>,
        /// The selection.
        opts: Options,
        /// The rooms to leave.
        rooms: Vec<String>,
    },
    /// `disconnectSockets`.
    Disconnect {
        /// The requester; `None` from the emitter.
        uid: Option<String>,
        /// The selection.
        opts: Options,
        /// Whether to close the whole connections.
        close: bool,
    },
    /// `fetchSockets`.
    Fetch {
        /// The requester.
        uid: String,
        /// Answered with this id.
        request_id: String,
        /// The selection.
        opts: Options,
    },
    /// `serverSideEmit`: `data` is `[event, ...args]`; with a `request_id` the requester
    /// waits for one answer per node.
    ServerSideEmit {
        /// The requester (`"emitter"` for the emitter).
        uid: String,
        /// Set when an answer is wanted.
        request_id: Option<String>,
        /// The event and its arguments.
        data: Vec<Value>,
    },
    /// A broadcast with acks.
    BroadcastWithAck {
        /// The requester.
        uid: String,
        /// Answers (client count, then each ack) carry this id.
        request_id: String,
        /// The event (no ack id: each node draws its own).
        packet: ClusterPacket,
        /// Its selection; `flags.timeout` is the requester's wait.
        opts: Options,
    },
    /// The single-socket join, leave or disconnect of nodes before 7.0 (`sid` form): answered
    /// with a bare `{"requestId"}` by the node holding the socket.
    Legacy {
        /// The request type.
        kind: u64,
        /// Answered with this id.
        request_id: String,
        /// The socket.
        sid: String,
        /// The room, for a join or leave.
        room: Option<String>,
    },
}

/// A response on a response channel.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Response {
    /// To [`Request::Sockets`].
    Sockets {
        /// The request.
        request_id: String,
        /// Socket ids.
        sockets: Vec<String>,
    },
    /// To [`Request::AllRooms`].
    AllRooms {
        /// The request.
        request_id: String,
        /// Room names, socket-id rooms included.
        rooms: Vec<String>,
    },
    /// To [`Request::Fetch`].
    Fetch {
        /// The request.
        request_id: String,
        /// The node's matching sockets.
        sockets: Vec<RemoteSocket>,
    },
    /// One node's answer to a [`Request::ServerSideEmit`] with an ack.
    ServerSideEmit {
        /// The request.
        request_id: String,
        /// The listener's (first) callback argument.
        data: Value,
    },
    /// How many clients a node's part of a broadcast with acks reached (also 0).
    ClientCount {
        /// The request.
        request_id: String,
        /// The count.
        count: u64,
    },
    /// One client's answer to a broadcast with acks (its first argument).
    BroadcastAck {
        /// The request.
        request_id: String,
        /// The answer.
        packet: Value,
    },
    /// A bare `{"requestId"}`: the answer to a [`Request::Legacy`].
    Done {
        /// The request.
        request_id: String,
    },
}

// ---- Decoding ----------------------------------------------------------------------------------

/// Decodes a payload: JSON if it starts with `{`, else msgpack. Values are normalized.
pub(super) fn decode_value(bytes: &[u8]) -> Result<Value, WireError> {
    let mut value = if bytes.first() == Some(&b'{') {
        serde_json::from_slice::<Value>(bytes).map_err(|e| WireError::Undecodable(e.to_string()))?
    } else {
        let mut rd = bytes;
        let v = rmpv::decode::read_value_with_max_depth(&mut rd, MAX_DEPTH)
            .map_err(|e| WireError::Undecodable(e.to_string()))?;
        if !rd.is_empty() {
            return Err(WireError::Undecodable("bytes after the value".into()));
        }
        v
    };
    normalize(&mut value, 0)?;
    Ok(value)
}

/// A map's fields, looked up by name.
pub(super) struct Fields<'v>(&'v [(Value, Value)]);

impl<'v> Fields<'v> {
    pub(super) fn of(v: &'v Value) -> Result<Self, WireError> {
        v.as_map()
            .map(|m| Fields(m.as_slice()))
            .ok_or(WireError::Malformed("not a map"))
    }

    pub(super) fn get(&self, key: &str) -> Option<&'v Value> {
        self.0
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
            .filter(|v| !v.is_nil())
    }

    pub(super) fn str(&self, key: &'static str) -> Result<String, WireError> {
        self.get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(WireError::Malformed(key))
    }

    pub(super) fn opt_str(&self, key: &'static str) -> Option<String> {
        self.get(key).and_then(Value::as_str).map(str::to_owned)
    }

    pub(super) fn u64(&self, key: &'static str) -> Result<u64, WireError> {
        self.get(key)
            .and_then(Value::as_u64)
            .ok_or(WireError::Malformed(key))
    }

    pub(super) fn rooms(&self, key: &'static str) -> Result<Vec<String>, WireError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(v) => rooms(v).ok_or(WireError::Malformed(key)),
        }
    }

    pub(super) fn opts(&self) -> Result<Options, WireError> {
        match self.get("opts") {
            None => Ok(Options::default()),
            Some(v) => options(v),
        }
    }
}

/// A list of room names; a number names the room of its JavaScript string form.
pub(super) fn rooms(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|r| match r {
            Value::String(s) => s.as_str().map(str::to_owned),
            Value::Integer(i) => Some(i.to_string()),
            Value::F64(f) => Some(f.to_string()),
            _ => None,
        })
        .collect()
}

pub(super) fn options(v: &Value) -> Result<Options, WireError> {
    let f = Fields::of(v)?;
    let flags = match f.get("flags") {
        Some(flags) => {
            let g = Fields::of(flags)?;
            Flags {
                volatile: g.get("volatile").and_then(Value::as_bool).unwrap_or(false),
                compress: g.get("compress").and_then(Value::as_bool),
                timeout: g.get("timeout").and_then(|t| {
                    t.as_u64()
                        .or_else(|| t.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
                }),
                expect_single_response: g
                    .get("expectSingleResponse")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            }
        }
        None => Flags::default(),
    };
    Ok(Options {
        rooms: f.rooms("rooms")?,
        except: f.rooms("except")?,
        flags,
    })
}

pub(super) fn packet(v: &Value) -> Result<ClusterPacket, WireError> {
    let f = Fields::of(v)?;
    let data = f
        .get("data")
        .and_then(Value::as_array)
        .filter(|d| d.first().is_some_and(Value::is_str))
        .ok_or(WireError::Malformed("packet data"))?;
    Ok(ClusterPacket {
        nsp: f.opt_str("nsp").unwrap_or_else(|| "/".into()),
        data: data.clone(),
    })
}

/// Decodes a message received on the broadcast pattern: `[uid, packet, opts]`.
pub fn decode_broadcast(bytes: &[u8]) -> Result<Broadcast, WireError> {
    let value = decode_value(bytes)?;
    let [uid, p, opts] = value
        .as_array()
        .map(Vec::as_slice)
        .ok_or(WireError::Malformed("not an array"))?
    else {
        return Err(WireError::Malformed("not a 3-element array"));
    };
    Ok(Broadcast {
        uid: uid.as_str().ok_or(WireError::Malformed("uid"))?.to_owned(),
        packet: packet(p)?,
        opts: options(opts)?,
    })
}

/// Decodes a message received on the request channel.
pub fn decode_request(bytes: &[u8]) -> Result<Request, WireError> {
    use request_type::*;
    let value = decode_value(bytes)?;
    let f = Fields::of(&value)?;
    let kind = f.u64("type")?;
    // Nodes before 7.0 address one socket by `sid`.
    if matches!(kind, REMOTE_JOIN | REMOTE_LEAVE | REMOTE_DISCONNECT) && f.get("opts").is_none() {
        return Ok(Request::Legacy {
            kind,
            request_id: f.str("requestId")?,
            sid: f.str("sid")?,
            room: f.opt_str("room"),
        });
    }
    Ok(match kind {
        SOCKETS => Request::Sockets {
            uid: f.str("uid")?,
            request_id: f.str("requestId")?,
            rooms: f.rooms("rooms")?,
        },
        ALL_ROOMS => Request::AllRooms {
            uid: f.str("uid")?,
            request_id: f.str("requestId")?,
        },
        REMOTE_JOIN => Request::Join {
            uid: f.opt_str("uid"),
            opts: f.opts()?,
            rooms: f.rooms("rooms")?,
        },
        REMOTE_LEAVE => Request::Leave {
            uid: f.opt_str("uid"),
            opts: f.opts()?,
            rooms: f.rooms("rooms")?,
        },
        REMOTE_DISCONNECT => Request::Disconnect {
            uid: f.opt_str("uid"),
            opts: f.opts()?,
            close: f.get("close").and_then(Value::as_bool).unwrap_or(false),
        },
        REMOTE_FETCH => Request::Fetch {
            uid: f.str("uid")?,
            request_id: f.str("requestId")?,
            opts: f.opts()?,
        },
        SERVER_SIDE_EMIT => Request::ServerSideEmit {
            uid: f.str("uid")?,
            request_id: f.opt_str("requestId"),
            data: f
                .get("data")
                .and_then(Value::as_array)
                .filter(|d| d.first().is_some_and(Value::is_str))
                .cloned()
                .ok_or(WireError::Malformed("data"))?,
        },
        BROADCAST => Request::BroadcastWithAck {
            uid: f.str("uid")?,
            request_id: f.str("requestId")?,
            packet: packet(f.get("packet").ok_or(WireError::Malformed("packet"))?)?,
            opts: f.opts()?,
        },
        _ => return Err(WireError::Malformed("request type")),
    })
}

/// Decodes a message received on a response channel.
pub fn decode_response(bytes: &[u8]) -> Result<Response, WireError> {
    use request_type::*;
    let value = decode_value(bytes)?;
    let f = Fields::of(&value)?;
    let request_id = f.str("requestId")?;
    Ok(match f.get("type").and_then(Value::as_u64) {
        Some(SERVER_SIDE_EMIT) => Response::ServerSideEmit {
            request_id,
            data: f.get("data").cloned().unwrap_or(Value::Nil),
        },
        Some(BROADCAST_CLIENT_COUNT) => Response::ClientCount {
            request_id,
            count: f.u64("clientCount")?,
        },
        Some(BROADCAST_ACK) => Response::BroadcastAck {
            request_id,
            packet: f.get("packet").cloned().unwrap_or(Value::Nil),
        },
        _ => {
            if let Some(rooms_v) = f.get("rooms") {
                Response::AllRooms {
                    request_id,
                    rooms: rooms(rooms_v).ok_or(WireError::Malformed("rooms"))?,
                }
            } else if let Some(sockets) = f.get("sockets").and_then(Value::as_array) {
                if sockets.iter().all(Value::is_str) {
                    Response::Sockets {
                        request_id,
                        sockets: sockets
                            .iter()
                            .filter_map(|s| s.as_str().map(str::to_owned))
                            .collect(),
                    }
                } else {
                    Response::Fetch {
                        request_id,
                        sockets: sockets
                            .iter()
                            .map(remote_socket)
                            .collect::<Result<_, _>>()?,
                    }
                }
            } else {
                Response::Done { request_id }
            }
        }
    })
}

pub(super) fn remote_socket(v: &Value) -> Result<RemoteSocket, WireError> {
    let f = Fields::of(v)?;
    Ok(RemoteSocket {
        id: f.str("id")?,
        handshake: f.get("handshake").cloned().unwrap_or(Value::Nil),
        rooms: f.rooms("rooms")?,
        data: f.get("data").cloned().unwrap_or(Value::Nil),
    })
}

// ---- Encoding ------------------------------------------------------------------------------------

pub(super) fn str_list(items: &[String]) -> Value {
    Value::Array(items.iter().map(|s| Value::from(s.as_str())).collect())
}

/// A map with string keys, in the order given (as Node writes its objects).
pub(crate) fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

fn flags_value(flags: &Flags) -> Value {
    let mut entries = Vec::new();
    if flags.volatile {
        entries.push(("volatile", Value::from(true)));
    }
    if let Some(c) = flags.compress {
        entries.push(("compress", Value::from(c)));
    }
    if let Some(t) = flags.timeout {
        entries.push(("timeout", Value::from(t)));
    }
    if flags.expect_single_response {
        entries.push(("expectSingleResponse", Value::from(true)));
    }
    map(entries)
}

pub(super) fn opts_value(opts: &Options) -> Value {
    map(vec![
        ("rooms", str_list(&opts.rooms)),
        ("except", str_list(&opts.except)),
        ("flags", flags_value(&opts.flags)),
    ])
}

pub(super) fn packet_value(p: &ClusterPacket) -> Value {
    map(vec![
        ("type", Value::from(2)),
        ("data", Value::Array(p.data.clone())),
        ("nsp", Value::from(p.nsp.as_str())),
    ])
}

pub(super) fn msgpack(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut out, v);
    out
}

pub(super) fn json(v: &Value) -> Vec<u8> {
    // Values built here have string keys and no binary (JSON framing carries none).
    serde_json::to_vec(v).unwrap_or_default()
}

/// Encodes a broadcast: the msgpack `[uid, packet, opts]` every node (and the emitter) sends.
pub fn encode_broadcast(b: &Broadcast) -> Vec<u8> {
    msgpack(&Value::Array(vec![
        Value::from(b.uid.as_str()),
        packet_value(&b.packet),
        opts_value(&b.opts),
    ]))
}

/// Encodes a request: JSON, except a broadcast with acks (msgpack).
pub fn encode_request(r: &Request) -> Vec<u8> {
    use request_type::*;
    let id = |s: &str| Value::from(s);
    match r {
        Request::Sockets {
            uid,
            request_id,
            rooms,
        } => json(&map(vec![
            ("uid", id(uid)),
            ("requestId", id(request_id)),
            ("type", Value::from(SOCKETS)),
            ("rooms", str_list(rooms)),
        ])),
        Request::AllRooms { uid, request_id } => json(&map(vec![
            ("uid", id(uid)),
            ("requestId", id(request_id)),
            ("type", Value::from(ALL_ROOMS)),
        ])),
        Request::Join { uid, opts, rooms } | Request::Leave { uid, opts, rooms } => {
            let kind = if matches!(r, Request::Join { .. }) {
                REMOTE_JOIN
            } else {
                REMOTE_LEAVE
            };
            let mut entries = Vec::new();
            if let Some(uid) = uid {
                entries.push(("uid", id(uid)));
            }
            entries.push(("type", Value::from(kind)));
            entries.push(("opts", selection_value(opts)));
            entries.push(("rooms", str_list(rooms)));
            json(&map(entries))
        }
        Request::Disconnect { uid, opts, close } => {
            let mut entries = Vec::new();
            if let Some(uid) = uid {
                entries.push(("uid", id(uid)));
            }
            entries.push(("type", Value::from(REMOTE_DISCONNECT)));
            entries.push(("opts", selection_value(opts)));
            entries.push(("close", Value::from(*close)));
            json(&map(entries))
        }
        Request::Fetch {
            uid,
            request_id,
            opts,
        } => json(&map(vec![
            ("uid", id(uid)),
            ("requestId", id(request_id)),
            ("type", Value::from(REMOTE_FETCH)),
            ("opts", selection_value(opts)),
        ])),
        Request::ServerSideEmit {
            uid,
            request_id,
            data,
        } => {
            let mut entries = vec![("uid", id(uid))];
            if let Some(request_id) = request_id {
                entries.push(("requestId", id(request_id)));
            }
            entries.push(("type", Value::from(SERVER_SIDE_EMIT)));
            entries.push(("data", Value::Array(data.clone())));
            let v = map(entries);
            // Binary arguments cannot ride in JSON: msgpack carries them (receivers accept both).
            if has_binary(&v) {
                msgpack(&v)
            } else {
                json(&v)
            }
        }
        Request::BroadcastWithAck {
            uid,
            request_id,
            packet,
            opts,
        } => msgpack(&map(vec![
            ("uid", id(uid)),
            ("requestId", id(request_id)),
            ("type", Value::from(BROADCAST)),
            ("packet", packet_value(packet)),
            ("opts", opts_value(opts)),
        ])),
        Request::Legacy {
            kind,
            request_id,
            sid,
            room,
        } => {
            let mut entries = vec![
                ("requestId", id(request_id)),
                ("type", Value::from(*kind)),
                ("sid", id(sid)),
            ];
            if let Some(room) = room {
                entries.push(("room", id(room)));
            }
            json(&map(entries))
        }
    }
}

/// `opts` of requests that select sockets: rooms and except, no flags (as Node sends them).
pub(super) fn selection_value(opts: &Options) -> Value {
    map(vec![
        ("rooms", str_list(&opts.rooms)),
        ("except", str_list(&opts.except)),
    ])
}

/// Encodes a response: JSON, except a broadcast ack (msgpack) and anything carrying binary.
pub fn encode_response(r: &Response) -> Vec<u8> {
    use request_type::*;
    let v = match r {
        Response::Sockets {
            request_id,
            sockets,
        } => map(vec![
            ("requestId", Value::from(request_id.as_str())),
            ("sockets", str_list(sockets)),
        ]),
        Response::AllRooms { request_id, rooms } => map(vec![
            ("requestId", Value::from(request_id.as_str())),
            ("rooms", str_list(rooms)),
        ]),
        Response::Fetch {
            request_id,
            sockets,
        } => map(vec![
            ("requestId", Value::from(request_id.as_str())),
            (
                "sockets",
                Value::Array(
                    sockets
                        .iter()
                        .map(|s| {
                            map(vec![
                                ("id", Value::from(s.id.as_str())),
                                ("handshake", s.handshake.clone()),
                                ("rooms", str_list(&s.rooms)),
                                ("data", s.data.clone()),
                            ])
                        })
                        .collect(),
                ),
            ),
        ]),
        Response::ServerSideEmit { request_id, data } => map(vec![
            ("type", Value::from(SERVER_SIDE_EMIT)),
            ("requestId", Value::from(request_id.as_str())),
            ("data", data.clone()),
        ]),
        Response::ClientCount { request_id, count } => map(vec![
            ("type", Value::from(BROADCAST_CLIENT_COUNT)),
            ("requestId", Value::from(request_id.as_str())),
            ("clientCount", Value::from(*count)),
        ]),
        Response::BroadcastAck { request_id, packet } => {
            return msgpack(&map(vec![
                ("type", Value::from(BROADCAST_ACK)),
                ("requestId", Value::from(request_id.as_str())),
                ("packet", packet.clone()),
            ]))
        }
        Response::Done { request_id } => map(vec![("requestId", Value::from(request_id.as_str()))]),
    };
    if has_binary(&v) {
        msgpack(&v)
    } else {
        json(&v)
    }
}

pub(super) fn has_binary(v: &Value) -> bool {
    match v {
        Value::Binary(_) => true,
        Value::Array(items) => items.iter().any(has_binary),
        Value::Map(entries) => entries.iter().any(|(_, v)| has_binary(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The observed broadcast of `io.to("red").emit("msg", {tag:"t"})` (redis-cluster.md §2.3).
    const RED: &[u8] = b"\x93\xa6rN-oO1\x83\xa4type\x02\xa4data\x92\xa3msg\x81\xa3tag\xa1t\xa3nsp\xa1/\x83\xa5rooms\x91\xa3red\xa6except\x90\xa5flags\x80";

    #[test]
    fn the_observed_broadcast_decodes_and_encodes_byte_for_byte() {
        let b = decode_broadcast(RED).unwrap();
        assert_eq!(b.uid, "rN-oO1");
        assert_eq!(b.packet.nsp, "/");
        assert_eq!(
            b.packet.data,
            vec![
                Value::from("msg"),
                Value::Map(vec![(Value::from("tag"), Value::from("t"))])
            ]
        );
        assert_eq!(b.opts.rooms, ["red"]);
        assert!(b.opts.except.is_empty());
        assert_eq!(encode_broadcast(&b), RED);
    }

    #[test]
    fn the_emitters_key_order_and_uid_are_accepted() {
        // ["emitter", {type, data, nsp}, {rooms, flags, except}] (§8).
        let bytes = b"\x93\xa7emitter\x83\xa4type\x02\xa4data\x92\xa3msg\xa1x\xa3nsp\xa1/\x83\xa5rooms\x91\xa3red\xa5flags\x81\xa8volatile\xc3\xa6except\x90";
        let b = decode_broadcast(bytes).unwrap();
        assert_eq!(b.uid, "emitter");
        assert!(b.opts.flags.volatile);
        assert_eq!(b.opts.rooms, ["red"]);
    }

    #[test]
    fn channels_follow_the_reference_layout() {
        let c = Channels::new("socket.io", "/", "abc123");
        assert_eq!(c.broadcast(), "socket.io#/#");
        assert_eq!(c.broadcast_pattern(), "socket.io#/#*");
        assert_eq!(c.room("red"), "socket.io#/#red#");
        assert_eq!(c.request(), "socket.io-request#/#");
        assert_eq!(c.response(), "socket.io-response#/#");
        assert_eq!(c.own_response(), "socket.io-response#/#abc123#");
        assert_eq!(c.room_of("socket.io#/#"), Some(""));
        assert_eq!(c.room_of("socket.io#/#red#"), Some("red"));
        assert_eq!(c.room_of("socket.io#/chat#"), None);
        assert_eq!(c.for_rooms(&["a".into()]), "socket.io#/#a#");
        assert_eq!(c.for_rooms(&["a".into(), "b".into()]), "socket.io#/#");
    }

    #[test]
    fn observed_requests_decode() {
        let fetch = br#"{"uid":"rN-oO1","requestId":"YjWFpx","type":5,"opts":{"rooms":["red"],"except":[]}}"#;
        assert_eq!(
            decode_request(fetch).unwrap(),
            Request::Fetch {
                uid: "rN-oO1".into(),
                request_id: "YjWFpx".into(),
                opts: Options {
                    rooms: vec!["red".into()],
                    ..Options::default()
                }
            }
        );
        let join = br#"{"type":2,"opts":{"rooms":["EJaXE7uUlJSDmbOiAAAB"],"except":[]},"rooms":["orange"]}"#;
        assert!(matches!(
            decode_request(join).unwrap(),
            Request::Join { uid: None, ref rooms, .. } if rooms == &["orange"]
        ));
        let ask =
            br#"{"uid":"rN-oO1","requestId":"byXxk5","type":6,"data":["cluster-ask",{"q":1}]}"#;
        assert!(matches!(
            decode_request(ask).unwrap(),
            Request::ServerSideEmit { request_id: Some(ref id), .. } if id == "byXxk5"
        ));
        let with_ack = b"\x85\xa3uid\xa6rN-oO1\xa9requestId\xa6S2RmMO\xa4type\x07\xa6packet\x83\xa4type\x02\xa4data\x92\xa8question\xa1q\xa3nsp\xa1/\xa4opts\x83\xa5rooms\x91\xa3red\xa6except\x90\xa5flags\x81\xa7timeout\xcd\x0b\xb8";
        let Request::BroadcastWithAck { opts, packet, .. } = decode_request(with_ack).unwrap()
        else {
            panic!()
        };
        assert_eq!(opts.flags.timeout, Some(3000));
        assert_eq!(packet.data[0], Value::from("question"));
        let disconnect = br#"{"uid":"rN-oO1","type":4,"opts":{"rooms":["j8QIMr3rpNTa-Q3PAAAE"],"except":[]},"close":true}"#;
        assert!(matches!(
            decode_request(disconnect).unwrap(),
            Request::Disconnect { close: true, .. }
        ));
    }

    #[test]
    fn observed_responses_decode_and_round_trip() {
        let cases: [&[u8]; 4] = [
            br#"{"requestId":"LRCXyf","rooms":["C77r","Icr-","red","blue"]}"#,
            br#"{"type":6,"requestId":"byXxk5","data":"3392"}"#,
            br#"{"type":8,"requestId":"S2RmMO","clientCount":1}"#,
            b"\x83\xa4type\x09\xa9requestId\xa6S2RmMO\xa6packet\xa3n1a",
        ];
        for bytes in cases {
            let r = decode_response(bytes).unwrap();
            assert_eq!(decode_response(&encode_response(&r)).unwrap(), r);
        }
        assert_eq!(
            encode_response(&Response::ClientCount {
                request_id: "S2RmMO".into(),
                count: 0
            }),
            br#"{"type":8,"requestId":"S2RmMO","clientCount":0}"#
        );
        let fetch = br#"{"requestId":"YjWFpx","sockets":[{"id":"C77r","handshake":{"auth":{"name":"n1a"}},"rooms":["C77r","red"],"data":{"node":"3392"}}]}"#;
        let Response::Fetch { sockets, .. } = decode_response(fetch).unwrap() else {
            panic!()
        };
        assert_eq!(sockets[0].rooms, ["C77r", "red"]);
    }

    #[test]
    fn every_request_round_trips() {
        let opts = Options {
            rooms: vec!["a".into()],
            except: vec!["b".into()],
            flags: Flags::default(),
        };
        let packet = ClusterPacket {
            nsp: "/chat".into(),
            data: vec![Value::from("ev"), Value::Binary(vec![0, 1, 255])],
        };
        let requests = [
            Request::Sockets {
                uid: "u".into(),
                request_id: "r".into(),
                rooms: vec!["x".into()],
            },
            Request::AllRooms {
                uid: "u".into(),
                request_id: "r".into(),
            },
            Request::Join {
                uid: Some("u".into()),
                opts: opts.clone(),
                rooms: vec!["j".into()],
            },
            Request::Leave {
                uid: None,
                opts: opts.clone(),
                rooms: vec!["j".into()],
            },
            Request::Disconnect {
                uid: Some("u".into()),
                opts: opts.clone(),
                close: true,
            },
            Request::Fetch {
                uid: "u".into(),
                request_id: "r".into(),
                opts: opts.clone(),
            },
            Request::ServerSideEmit {
                uid: "u".into(),
                request_id: None,
                data: packet.data.clone(),
            },
            Request::BroadcastWithAck {
                uid: "u".into(),
                request_id: "r".into(),
                packet: packet.clone(),
                opts: Options {
                    flags: Flags {
                        timeout: Some(5),
                        ..Flags::default()
                    },
                    ..opts.clone()
                },
            },
            Request::Legacy {
                kind: 2,
                request_id: "r".into(),
                sid: "s".into(),
                room: Some("x".into()),
            },
        ];
        for r in requests {
            assert_eq!(decode_request(&encode_request(&r)).unwrap(), r, "{r:?}");
        }
    }

    #[test]
    fn garbage_is_a_typed_error() {
        for bytes in [
            &b""[..],
            b"{",
            b"\xc1",
            b"\x93\xa1u",
            b"\x92\xa1u\x80",
            br#"{"type":99,"uid":"u"}"#,
            b"\xdd\xff\xff\xff\xff",
            b"\xdb\xff\xff\xff\xff",
        ] {
            assert!(decode_request(bytes).is_err());
            assert!(decode_broadcast(bytes).is_err());
        }
    }
}
